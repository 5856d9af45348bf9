"""Hostile command-line options: ``--set`` values, sweep grids and ranges,
option values no run could use, schedulers. Each error is one line naming the
option, exit status 2, nothing written (issue 17); each test here failed before
its fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BASELINE, SCENARIOS
from hostile import EPCL, cli, one_line_exit_2, write

from migsim.cli.main import main
from migsim.model.scenario import load_scenario


@pytest.fixture
def base(tmp_path) -> Path:
    """`EPCL` as a scenario file."""
    return write(tmp_path, EPCL, "base.yaml")


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("start_date=2019-02-30", "2019-02-30 is not a real date"),
        ("capacity.daily_cap=33:20", "33:20 is a base-60 number"),
        ("cohorts.itron_active.installations=true", "true/false is not a value"),
    ],
)
def test_set_values_are_read_as_a_file_reads_them(setting, problem):
    for command in ("validate", "run"):
        message = one_line_exit_2(cli(command, BASELINE, "--set", setting))
        assert problem in message, message


def test_set_takes_a_rate_in_exponent_notation_as_a_file_does(base):
    key = "cohorts.elster_dormant.outcomes.dumb"
    result = cli("validate", base, "--set", f"{key}=5e-4")
    assert result.exit_code == 0, result.output
    sc = load_scenario(base, {key: "5e-4"})
    assert sc.cohort("elster_dormant").outcomes.dumb == pytest.approx(5e-4)


@pytest.mark.parametrize(
    "args",
    [
        ["sweep", "-o", "sw", "--grid", "start_date=2019-02-30,2019-03-01"],
        ["sensitivity", "-o", "sens", "--range", "start_date=2019-02-30:2019-03-01"],
    ],
)
def test_grids_and_ranges_refuse_impossible_dates(tmp_path, args):
    command, *rest = args
    result = cli(command, BASELINE, "-n", "2", *rest, cwd=tmp_path)
    assert "2019-02-30 is not a real date" in one_line_exit_2(result)
    assert list(tmp_path.iterdir()) == []


def test_a_scheduler_that_is_not_an_address_is_refused_at_once():
    started = time.monotonic()
    message = one_line_exit_2(cli("run", BASELINE, "-n", "1", "--scheduler", "x y"))
    assert "not a scheduler address" in message
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("values", "problem"),
    [("{a: 1},2000", "is not a single value"), (".inf,2000", "not a finite number")],
)
def test_a_grid_of_maps_or_infinities_is_refused_before_the_store(
    tmp_path, values, problem
):
    result = cli(
        "sweep",
        BASELINE,
        "-n",
        "2",
        "-o",
        "sw",
        "--grid",
        f"capacity.daily_cap={values}",
        cwd=tmp_path,
    )
    assert problem in one_line_exit_2(result)
    assert list(tmp_path.iterdir()) == []


def test_a_quoted_number_in_a_grid_is_text_as_in_a_file(tmp_path):
    """Grid values were read as YAML twice: '2000' (text, quotes and all) was
    read again as the number 2000 and ran, where a file and --set refuse it;
    a name '1e3' became the number 1000.0."""
    import pandas as pd

    args = ("sweep", BASELINE, "-n", "2", "-q", "-o", "sw")
    message = one_line_exit_2(
        cli(*args, "--grid", "capacity.daily_cap='2000'", cwd=tmp_path)
    )
    assert message.endswith(
        "capacity.daily_cap: a number is needed here, not text '2000' "
        "(write it without quotes)"
    )
    assert list(tmp_path.iterdir()) == []
    result = cli(*args, "--grid", "name='1e3','a: b'", cwd=tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    table = pd.read_parquet(tmp_path / "sw" / "sweep.parquet")
    assert table["status"].tolist() == ["done", "done"]
    assert table["name"].tolist() == ["1e3", "a: b"]


def test_a_grid_mixing_text_and_numbers_records_the_bad_point(tmp_path):
    import pandas as pd

    result = cli(
        "sweep",
        BASELINE,
        "-n",
        "2",
        "-q",
        "-o",
        "sw",
        "--grid",
        "capacity.daily_cap=lots,2000",
        cwd=tmp_path,
    )
    assert result.exit_code == 0, (result.output, result.exception)
    table = pd.read_parquet(tmp_path / "sw" / "sweep.parquet")
    assert table["capacity.daily_cap"].tolist() == ["lots", "2000"]
    assert table["status"].tolist() == ["invalid", "done"]


@pytest.mark.parametrize(
    ("field", "values"),
    [("capacity.daily_cap", "true,2000"), ("name", "a,false")],
)
def test_true_or_false_in_a_grid_is_refused_as_set_refuses_it(tmp_path, field, values):
    """``--grid capacity.daily_cap=true,2000`` ran the first point as invalid
    and listed its value as 1 in sweep.parquet (the column of numbers made the
    bool one), while ``--set capacity.daily_cap=true`` is refused."""
    result = cli(
        "sweep", BASELINE, "-n", "2", "-o", "sw", "--grid", f"{field}={values}",
        cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        f"Error: --grid {field}: true/false is not a value here (a number or text is)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_date_distribution_named_by_a_map_is_one_line():
    message = one_line_exit_2(
        cli(
            "validate",
            SCENARIOS / "nov2019_conditions.yaml",
            "--set",
            "gates.fix_61224.opens_on.dist={a: 1}",
        )
    )
    assert "unknown date dist" in message


def test_a_sensitivity_range_of_infinities_is_one_line(tmp_path):
    result = cli(
        "sensitivity",
        BASELINE,
        "-n",
        "2",
        "--samples",
        "4",
        "-o",
        "sens",
        "--range",
        "capacity.daily_cap=.inf:.inf",
        cwd=tmp_path,
    )
    assert "low and high must be finite numbers" in one_line_exit_2(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["run", BASELINE, "-n", str(10**12)], "'-n' / '--replications'"),
        (["run", BASELINE, "--seed", str(2**64)], "'--seed'"),
        (["compare", BASELINE, "--seed", str(2**63)], "'--seed'"),
        (["run", BASELINE, "--precision", "nan"], "'--precision'"),
        (["run", BASELINE, "--precision", "inf"], "'--precision'"),
        (["run", BASELINE, "--precision", "1", "--precision-share", "nan"],
         "'--precision-share'"),
        (
            ["run", BASELINE, "--precision", "1", "--max-replications", "1e10"],
            "'--max-replications'",
        ),
        (["calibrate", BASELINE, "--actuals", "a.csv", "-o", "c.yaml",
          "--prior-strength", "nan"], "'--prior-strength'"),
        (["forecast", BASELINE, "--actuals", "a.csv", "--as-of", "2020-01-01",
          "--prior-strength", "inf"], "'--prior-strength'"),
        (["backtest", BASELINE, "--actuals", "a.csv", "--prior-strength", "1e308"],
         "'--prior-strength'"),
        (["backtest", BASELINE, "--actuals", "a.csv", "--prior-strength", "1e-308"],
         "'--prior-strength'"),
        (["sensitivity", BASELINE, "--method", "sobol", "--samples", str(2**40),
          "--range", "capacity.daily_cap=1000:2000"], "'--samples'"),
        (["decide", "q.yaml", "--max-replications", str(10**12)],
         "'--max-replications'"),
    ],
)  # fmt: skip
def test_option_values_no_run_could_use_are_one_line(tmp_path, args, option):
    """-n 10^12 raised MemoryError, --samples 2^40 asked NumPy for 16 TiB,
    --precision nan ran batches for ever (inf ran to --max-replications),
    --prior-strength nan raised
    ValueError and inf printed five lines, --seed 2^64 was refused as a
    '--set: seed': now click refuses each at once."""
    started = time.monotonic()
    message = one_line_exit_2(cli(*args, cwd=tmp_path))
    assert message.startswith(f"Error: Invalid value for {option}")
    assert time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--grid", "--range"])
def test_a_swept_field_given_twice_is_refused(tmp_path, option):
    """--grid capacity.daily_cap=1000 --grid capacity.daily_cap=2000 swept
    2000 only: the first was dropped without a word."""
    cap = "capacity.daily_cap"
    values = ["=1000", "=2000"] if option == "--grid" else ["=1:2", "=3:4"]
    lhs = ["--lhs", "2"] if option == "--range" else []
    result = cli(
        "sweep", BASELINE, "-n", "1", "-o", "sw", *lhs,
        option, cap + values[0], option, cap + values[1], cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        f"Error: {option} {cap}: given twice; list every value once "
        f"({option} FIELD=...)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_hypercube_range_of_one_value_is_refused(tmp_path):
    """--range FIELD=2000:2000 drew that one value at every point: with every
    range so, --lhs K ran K identical points (a grid refuses a repeated
    value)."""
    result = cli(
        "sweep", BASELINE, "-n", "1", "-o", "sw", "--lhs", "3",
        "--range", "capacity.daily_cap=2000:2000", cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        "Error: --range 'capacity.daily_cap=2000:2000': LOW equals HIGH, a range "
        "of one value: fix the field with --set FIELD=VALUE"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--lhs", str(10**9), "--range", "capacity.daily_cap=1:2"], "1,000,000,000"),
        (
            [
                "--grid",
                "capacity.daily_cap=" + ",".join(map(str, range(1, 401))),
                "--grid",
                "horizon_days=" + ",".join(map(str, range(1, 401))),
            ],
            "160,000",
        ),
    ],
)
def test_a_sweep_of_more_points_than_a_store_can_list_is_refused(
    tmp_path, args, problem
):
    """--lhs 10^9 raised MemoryError; a 3,000 x 3,000 grid ran for minutes
    before its first point."""
    result = cli("sweep", BASELINE, "-n", "1", "-o", "sw", *args, cwd=tmp_path)
    assert one_line_exit_2(result) == (
        f"Error: a sweep of {problem} points: at most 100,000 (split it into "
        "several sweeps)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "given"),
    [
        ((), "neither was given"),  # it said "not both"
        (
            ("--grid", "capacity.daily_cap=1000", "--lhs", "2", "--range", "seed=0:1"),
            "both were given",
        ),
    ],
)
def test_a_sweep_without_one_kind_of_points_says_which(tmp_path, args, given):
    message = one_line_exit_2(cli("sweep", BASELINE, "-n", "2", "-o", "sw", *args))
    assert message == (
        f"Error: a sweep needs either --grid or --lhs with --range ({given})"
    )


def test_range_without_lhs_says_so(tmp_path):
    result = cli(
        "sweep", BASELINE, "-n", "1", "-o", "sw", "--range", "horizon_days=1:2",
        cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == "Error: --range needs --lhs K"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["run", BASELINE, "--bogus"],
            "Error: No such option '--bogus'. Try 'migsim run --help' for help.",
        ),
        (
            ["run", BASELINE, "--replicaton", "3"],
            "Error: No such option '--replicaton'. (Did you mean one of: "
            "'--max-replications', '--precision', '--replications'?) "
            "Try 'migsim run --help' for help.",
        ),
        (
            ["sweep", BASELINE, "--grd", "horizon_days=30"],
            "Error: No such option '--grd'. Did you mean '--grid'? "
            "Try 'migsim sweep --help' for help.",
        ),
        (
            ["validate", BASELINE, "extra"],
            "Error: Got unexpected extra argument (extra). "
            "Try 'migsim validate --help' for help.",
        ),
        (
            ["runn", BASELINE],
            "Error: No such command 'runn'. Did you mean 'run'? "
            "Try 'migsim --help' for help.",
        ),
        (
            ["--bogus", "run", BASELINE],
            "Error: No such option '--bogus'. Try 'migsim --help' for help.",
        ),
    ],
)
def test_a_usage_error_is_one_line_naming_the_option(tmp_path, args, expected):
    """An unknown option, command or extra argument printed click's usage and
    'Try ... --help' lines before the error: three lines, not one."""
    result = CliRunner().invoke(main, [str(a) for a in args], prog_name="migsim")
    assert one_line_exit_2(result) == expected
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [[], ["run", "--help"], ["--help"], ["sweep", "-h"]])
def test_help_is_still_the_whole_help(args):
    result = CliRunner().invoke(main, args, prog_name="migsim")
    assert "Usage: migsim" in result.output and "Options:" in result.output
    assert result.exit_code == (2 if not args else 0)


def test_a_set_field_given_twice_is_refused(tmp_path):
    """--set capacity.daily_cap=1000 --set capacity.daily_cap=2000 ran at 2000:
    the first was dropped without a word (a file's duplicate key is an error,
    and so is a --grid field given twice)."""
    cap = "capacity.daily_cap"
    for command in (["validate", BASELINE], ["run", BASELINE, "-n", "1", "-q"]):
        result = cli(
            *command, "--set", f"{cap}=1000", "--set", f" {cap} =2000", cwd=tmp_path
        )
        assert one_line_exit_2(result) == (
            f"Error: --set {cap}: given twice; give each field once"
        )
    assert list(tmp_path.iterdir()) == []


def test_a_set_field_named_two_ways_is_refused(tmp_path):
    """A cohort's field by the cohort's index and by its name is one field:
    the later --set won without a word, as with one path given twice."""
    scenario = load_scenario(BASELINE)
    name = scenario.cohorts[0].name
    first, second = "cohorts.0.installations", f"cohorts.{name}.installations"
    for command in (["validate", BASELINE], ["run", BASELINE, "-n", "1", "-q"]):
        result = cli(
            *command, "--set", f"{first}=1000", "--set", f"{second}=2000", cwd=tmp_path
        )
        assert one_line_exit_2(result) == (
            f"Error: {BASELINE}: --set: {second}: the same field as {first} (a "
            "list item by its index and by its name): give it once"
        )
    assert list(tmp_path.iterdir()) == []
    # two fields of one cohort, or one field of each of two, are not one field
    both = {first: "1000", "cohorts.1.installations": "2000"}
    assert [c.installations for c in scenario.with_overrides(both).cohorts[:2]] == [
        1000,
        2000,
    ]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["run", BASELINE, "-n", "2"], "'-o' / '--outdir'"),
        (["compare", BASELINE, "-n", "2"], "'-o' / '--outdir'"),
        (["sweep", BASELINE, "-n", "2", "--grid", "horizon_days=30,40"], "--outdir"),
        (["sensitivity", BASELINE, "--range", "horizon_days=30:40"], "--outdir"),
        (["decide", "question.yaml"], "'-o' / '--outdir'"),
        (["forecast", BASELINE, "--actuals", "a.csv", "--as-of", "2019-11-05"], "-o"),
        (["backtest", BASELINE, "--actuals", "a.csv"], "'-o' / '--outdir'"),
        (["report", BASELINE, "-n", "2"], "'-o' / '--output'"),
        (["calibrate", BASELINE, "--actuals", "a.csv", "--no-check"], "--output"),
    ],
)
def test_an_empty_output_path_is_one_line_naming_the_option(tmp_path, args, option):
    """``-o ''`` named the current folder: report and calibrate raised
    ValueError (empty name), the others exited 0 and wrote nothing."""
    message = one_line_exit_2(cli(*args, "-o", "", cwd=tmp_path))
    assert option in message and "an empty path" in message, message
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_without_its_store_is_click_s_missing_option(tmp_path):
    """With click 8.2+ ``default=None`` counted as given: a TypeError, not the
    missing option --help promised."""
    result = cli(
        "sweep", BASELINE, "-n", "2", "--grid", "capacity.daily_cap=1000,2000",
        cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == "Error: Missing option '-o' / '--outdir'."
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["run", "compare"])
def test_a_by_date_before_the_start_is_refused_as_one_after_the_end_is(
    tmp_path, command
):
    """--by 1900-01-01 reported P(cleared by then) = 0%; a date after the
    horizon was already refused."""
    result = cli(command, BASELINE, "-n", "2", "-q", "--by", "1900-01-01", "-o", "o",
                 cwd=tmp_path)  # fmt: skip
    start = load_scenario(BASELINE).start_date
    which = f"{BASELINE}: " if command == "compare" else ""  # of the scenarios
    assert one_line_exit_2(result) == (
        f"Error: {which}--by 1900-01-01: before the scenario's start {start}; ask "
        "about a date from then on"
    )
    assert list(tmp_path.iterdir()) == []


def test_compare_given_a_run_folder_says_what_takes_one(tmp_path):
    """A run folder among compare's scenarios was "cannot read: not a regular
    file", which did not say that compare runs scenario files and report
    compares run folders."""
    import yaml
    from hostile import ACTUALS_SCENARIO

    write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    assert (
        cli("run", "sc.yaml", "-n", "2", "-q", "-o", "base", cwd=tmp_path).exit_code
        == 0
    )
    result = cli("compare", "sc.yaml", "base", "-n", "2", "-o", "cmp", cwd=tmp_path)
    assert one_line_exit_2(result) == (
        "Error: base: a run folder: compare runs scenario files (migsim report "
        "compares run folders, as they are)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "sc.yaml"]


def test_compare_names_the_scenario_a_by_date_is_outside(tmp_path):
    """Of two scenarios with different horizons, the line did not say which
    one --by fell outside."""
    import yaml
    from hostile import ACTUALS_SCENARIO

    longer = {**ACTUALS_SCENARIO, "name": "longer", "horizon_days": 30}
    write(tmp_path, yaml.safe_dump(longer), "longer.yaml")
    write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "short.yaml")
    result = cli(
        "compare", "longer.yaml", "short.yaml", "-n", "2", "--by", "2024-01-25",
        cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        "Error: short.yaml: --by 2024-01-25: after the horizon end 2024-01-20; "
        "extend horizon_days to ask about it"
    )
