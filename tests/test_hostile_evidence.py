"""Hostile evidence: implausible actuals for ``calibrate`` and ``forecast``,
priors at the float limits, decision questions. Each error is one line naming
the file, row and column, exit status 2, nothing written (issue 17); each test
here failed before its fix."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml
from conftest import SCENARIOS
from hostile import (
    ACTUALS_SCENARIO,
    HEADER,
    cli,
    migsim_process,
    one_line_exit_2,
    write,
)

from migsim.common.errors import MigsimError
from migsim.model.scenario import load_scenario

IMPLAUSIBLE = {
    "absurd attempts": (
        f"{HEADER}\n2024-01-01,a,1000000000000000000000000000000,"
        "1000000000000000000000000000000,0,0,0,0\n",
        "row 1, column attempts: 1e+30 installations is more than cohort a's 600",
    ),
    "float max": (
        f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n2024-01-02,a,1e308,0,0,0,0,0\n",
        "row 2, column attempts: 1e+308 installations is more than cohort a's",
    ),
    "completions above stalls": (
        f"{HEADER},stall_completions\n2024-01-01,a,100,80,10,10,0,0,0\n"
        "2024-01-02,a,100,80,10,10,0,0,25\n",
        "row 2, column stall_completions: stall_completions so far exceed stalls",
    ),
    "cumulative above the cohort": (
        "date,cumulative_migrated\n2024-01-05,100\n2024-01-08,10000000\n",
        "row 2, column cumulative_migrated: 10000000 installations is more than "
        "the scenario's 600",
    ),
    "a date past year 2262": (
        f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n9999-12-31,a,1,1,0,0,0,0\n",
        "row 2, column date: 9999-12-31 is after 2200-12-31",
    ),
}


@pytest.mark.parametrize("case", list(IMPLAUSIBLE))
def test_implausible_actuals_are_refused_with_row_and_column(tmp_path, case):
    from migsim.evidence.actuals import read_actuals

    text, where = IMPLAUSIBLE[case]
    path = write(tmp_path, text, "actuals.csv")
    with pytest.raises(MigsimError) as info:
        read_actuals(path, load_scenario(ACTUALS_SCENARIO))
    assert where in str(info.value), str(info.value)


def test_meters_are_compared_with_the_cohort_in_meters(tmp_path):
    from migsim.evidence.actuals import read_actuals

    sc = load_scenario(ACTUALS_SCENARIO)
    fits = write(tmp_path, "date,cumulative_migrated\n2024-01-05,960\n", "m.csv")
    assert read_actuals(fits, sc, unit="meters").frame["cumulative_migrated"][0] == 600
    over = write(tmp_path, "date,cumulative_migrated\n2024-01-05,961\n", "o.csv")
    with pytest.raises(MigsimError, match="961 meters is more than the scenario's"):
        read_actuals(over, sc, unit="meters")


@pytest.mark.parametrize("command", ["calibrate", "forecast"])
def test_the_cli_refuses_implausible_actuals_and_writes_nothing(tmp_path, command):
    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    actuals = write(tmp_path, IMPLAUSIBLE["absurd attempts"][0], "actuals.csv")
    args = [command, sc, "--actuals", actuals, "-n", "2", "-o", tmp_path / "out"]
    if command == "forecast":
        args += ["--as-of", "2024-01-05"]
    message = one_line_exit_2(cli(*args))
    assert "column attempts" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actuals.csv", "sc.yaml"]


def test_calibrate_on_actuals_holding_only_attempts_says_there_is_nothing_to_check(
    tmp_path,
):
    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    actuals = write(
        tmp_path, "date,cohort,attempts\n2024-01-01,a,100\n2024-01-02,a,100\n", "a.csv"
    )
    result = cli(
        "calibrate", sc, "--actuals", actuals, "-n", "2", "-o", "cal.yaml", cwd=tmp_path
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert "no actual point to check" in result.output


def test_a_prior_of_almost_no_attempts_calibrates(tmp_path):
    """Dirichlet alphas near the smallest float (1e-309) made Boost's Beta
    quantile overflow (a traceback); as both Beta parameters go to 0 the prior
    is a Bernoulli, whose central 95% interval is [0, 1] when neither end holds
    97.5%."""
    from migsim.evidence.calibrate import _beta_interval

    assert _beta_interval(0.8e-308, 0.2e-308) == (pytest.approx(0.8), 0.0, 1.0)
    assert _beta_interval(1e-308, 1.0)[1:] == (0.0, 0.0)
    low, high = _beta_interval(2.0, 3.0)[1:]
    assert 0.067 < low < 0.068 and 0.805 < high < 0.806  # scipy's, as before
    data = copy.deepcopy(ACTUALS_SCENARIO)
    alpha = {"success": 8e-309, "stall": 1e-309, "rollback": 1e-309}
    alpha |= {"fix_forward": 0, "dumb": 0}
    data["cohorts"][0]["outcomes"] = {"dist": "dirichlet", "alpha": alpha}
    sc = write(tmp_path, yaml.safe_dump(data), "sc.yaml")
    actuals = write(tmp_path, f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n", "a.csv")
    result = cli(
        "calibrate", sc, "--actuals", actuals, "-o", tmp_path / "c.yaml",
        "--no-check",
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    calibrated = yaml.safe_load((tmp_path / "c.yaml").read_text())["cohorts"][0]
    assert calibrated["outcomes"]["alpha"]["success"] == 80  # the counts


@pytest.mark.parametrize("target", ["sc.yaml", "actuals.csv"])
def test_calibrate_never_writes_over_its_own_inputs(tmp_path, target):
    """-o naming the scenario or the actuals, with --overwrite, replaced them."""
    text = yaml.safe_dump(ACTUALS_SCENARIO)
    write(tmp_path, text, "sc.yaml")
    rows = f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n"
    write(tmp_path, rows, "actuals.csv")
    result = cli(
        "calibrate", "sc.yaml", "--actuals", "actuals.csv", "-o", f"./{target}",
        "--overwrite", "--no-check", cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        f"Error: {target}: is the input {target}; write the output elsewhere"
    )
    assert (tmp_path / "sc.yaml").read_text() == text
    assert (tmp_path / "actuals.csv").read_text() == rows


#: What a calibrate without its check leaves beside its inputs (`_calibration_inputs`).
CALIBRATED = ["actuals.csv", "c.calibration.json", "c.yaml", "sc.yaml"]


def _calibration_inputs(tmp_path) -> None:
    """A scenario and one day of its actuals: sc.yaml and actuals.csv."""
    write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    write(tmp_path, f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n", "actuals.csv")


def _calibrate(tmp_path, *options: str):
    """calibrate sc.yaml on actuals.csv into c.yaml, in ``tmp_path``."""
    return cli(
        "calibrate", "sc.yaml", "--actuals", "actuals.csv", "-o", "c.yaml",
        *options, cwd=tmp_path,
    )  # fmt: skip


def test_calibrate_removes_what_a_killed_calibrate_left_beside_its_files(tmp_path):
    """A calibrate killed while writing left .c.yaml.tmp-<pid>-<random> and its
    siblings; calibrating again wrote the files and left those beside them."""
    _calibration_inputs(tmp_path)
    stale = [  # pid 999999999: no such process
        f".{name}.tmp-999999999-abcd1234"
        for name in ("c.yaml", "c.calibration.json", "c.check.png")
    ]
    for name in stale:
        write(tmp_path, "partial", name)
    result = _calibrate(tmp_path, "--no-check")
    assert result.exit_code == 0, (result.output, result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == CALIBRATED


def test_calibrate_overwritten_without_a_check_leaves_no_old_check_chart(tmp_path):
    """calibrate --overwrite --no-check over an earlier calibrate with its check
    kept the old c.check.png beside the new scenario (and said it wrote it): a
    chart of another calibration read as this one's."""
    _calibration_inputs(tmp_path)
    first = _calibrate(tmp_path, "-n", "2", "-q")
    assert first.exit_code == 0, (first.output, first.exception)
    assert (tmp_path / "c.check.png").is_file()
    again = _calibrate(tmp_path, "--no-check", "--overwrite")
    assert again.exit_code == 0, (again.output, again.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == CALIBRATED
    assert "c.check.png" not in again.output


def test_calibrate_without_a_check_that_fails_to_write_keeps_the_old_set(
    tmp_path, monkeypatch
):
    """calibrate --overwrite --no-check removed the earlier check chart before
    writing: a write that then failed (a full disk) left the earlier
    calibration without its chart, where its files are written all or none."""
    import errno

    import migsim.cli.evidence as evidence

    _calibration_inputs(tmp_path)
    first = _calibrate(tmp_path, "-n", "2", "-q")
    assert first.exit_code == 0, (first.output, first.exception)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(writers):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(evidence, "write_files", full)
    again = _calibrate(tmp_path, "--no-check", "--overwrite")
    assert again.exit_code != 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_question_with_an_impossible_date_is_one_line(tmp_path):
    question = yaml.safe_load(
        (SCENARIOS / "questions/opsg_ramp_basis.yaml").read_text()
    )
    question["scenario"] = str(SCENARIOS / "nov2019_cautious_ramp_elster_active.yaml")
    text = yaml.safe_dump(question).replace(
        "confidence: 0.95", "confidence: 0.95\nwhen: 2020-02-30"
    )
    path = write(tmp_path, text, "q.yaml")
    message = one_line_exit_2(cli("decide", path, "-n", "2"))
    assert "2020-02-30 is not a real date" in message


@pytest.mark.parametrize(
    ("lever", "expected"),
    [
        (  # built 100 million values first: ~60 s at 8 GB before exiting 2
            ("capacity.rules.automation_step.max_cap", 4000, 100_000_000, 1),
            "levers.capacity.rules.automation_step.max_cap.high: capacity.rules."
            "automation_step.max_cap: 100,000,000 is outside the limit",
        ),
        (  # ran out of memory
            ("capacity.rules.automation_step.max_cap", 4000, 1e11, 1),
            "levers.capacity.rules.automation_step.max_cap.high: capacity.rules."
            "automation_step.max_cap: 100,000,000,000 is outside the limit",
        ),
        (  # within the limits, but 9 million values
            ("capacity.rules.automation_step.max_cap", 4000, 9_000_000, 1),
            "levers.capacity.rules.automation_step.max_cap.step: 1 from low to "
            "high is 8,996,001 values, more than the 10,000 a lever may take",
        ),
        (
            ("clearance_share", 0.5, 1.0, 1e-12),
            "levers.clearance_share.step: 1e-12 from low to high is "
            "500,000,000,001 values, more than the 10,000 a lever may take",
        ),
    ],
)
def test_a_lever_of_too_many_values_is_refused_before_they_are_built(
    tmp_path, lever, expected
):
    path, low, high, step = lever
    question = yaml.safe_load(
        (SCENARIOS / "questions/opsg_ramp_basis.yaml").read_text()
    )
    question["scenario"] = str(SCENARIOS / "nov2019_cautious_ramp_elster_active.yaml")
    question["levers"] = {path: {"low": low, "high": high, "step": step}}
    q = write(tmp_path, yaml.safe_dump(question), "q.yaml")
    message = one_line_exit_2(cli("decide", q, "-n", "2", "-o", tmp_path / "out"))
    assert message.startswith(f"Error: {q}: {expected}"), message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.yaml"]


def test_a_decision_whose_candidates_never_clear_still_draws_its_frontier(tmp_path):
    question = yaml.safe_load(
        (SCENARIOS / "questions/opsg_ramp_basis.yaml").read_text()
    )
    question["scenario"] = str(SCENARIOS / "nov2019_cautious_ramp_elster_active.yaml")
    lever = next(iter(question["levers"]))
    question["levers"][lever] = {"low": 4000, "high": 6000, "step": 2000}
    quantile = next(b for b in question["risk_budget"] if "max" in b)
    quantile["max"] = 0  # nothing is safe (-1 is refused)
    path = write(tmp_path, yaml.safe_dump(question), "q.yaml")
    result = cli(
        "decide", path, "-n", "2", "--max-replications", "2", "-o", "dec", cwd=tmp_path
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert (tmp_path / "dec" / "frontier.png").stat().st_size > 0
    # the case named: at 4,000 a day the P50 never clears (no date to draw),
    # at 6,000 it does, and with nothing safe there is no answer
    frame = pd.read_csv(tmp_path / "dec" / "candidates.csv").set_index(lever)
    p50 = frame["clearance_day_p50"]
    assert p50[4000] == float("inf") and 0 < p50[6000] < float("inf")
    assert frame["verdict"].tolist() == ["unsafe", "unsafe"]
    assert not frame["is_answer"].any()
    assert "No candidate is safe" in result.output


def _daily_rows() -> pd.DataFrame:
    """Three days of daily flows of cohort ``a`` of `ACTUALS_SCENARIO`."""
    return pd.DataFrame(
        {
            "date": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "cohort": ["a"] * 3,
            "attempts": [100, 100, 100],
            "successes": [80, 78, 81],
            "stalls": [10, 12, 9],
            "rollbacks": [10, 10, 10],
            "fix_forwards": [0, 0, 0],
            "dumbs": [0, 0, 0],
        }
    )


@pytest.mark.parametrize("column", ["successes", "attempts"])
def test_true_or_false_is_not_a_count_in_parquet_actuals(tmp_path, column):
    """A Parquet boolean column of counts was read as 0 and 1: successes of
    true, true, true calibrated as 3 successes in 300 attempts."""
    from migsim.evidence.actuals import read_actuals

    frame = _daily_rows()
    frame[column] = frame[column] > 0
    frame.to_parquet(tmp_path / "a.parquet")
    with pytest.raises(MigsimError) as info:
        read_actuals(tmp_path / "a.parquet", load_scenario(ACTUALS_SCENARIO))
    assert str(info.value) == (
        f"{tmp_path / 'a.parquet'}: row 1, column {column}: true/false is not a count"
    )


def test_a_column_given_twice_in_csv_actuals_is_refused(tmp_path):
    """A second ``attempts`` column was renamed ``attempts.1`` by the reader and
    ignored without a word: which of the two was meant is unknown."""
    from migsim.evidence.actuals import read_actuals

    frame = _daily_rows()
    text = frame.to_csv(index=False).replace("dumbs", "attempts", 1)
    path = write(tmp_path, text, "a.csv")
    with pytest.raises(MigsimError) as info:
        read_actuals(path, load_scenario(ACTUALS_SCENARIO))
    assert str(info.value) == f"{path}: column attempts: given twice (columns 3 and 8)"


@pytest.mark.parametrize("second", ["date", "attempts", " date"])
def test_a_column_given_twice_in_parquet_actuals_is_refused(tmp_path, second):
    """Parquet keeps two columns of one name (or of names equal once their
    spaces are stripped): reading the pair as one column was a traceback."""
    from migsim.evidence.actuals import read_actuals

    frame = _daily_rows()
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(frame.columns)
    arrays = [pa.array(frame[c]) for c in [*columns, second.strip()]]
    pq.write_table(
        pa.Table.from_arrays(arrays, names=[*columns, second]), tmp_path / "a.parquet"
    )
    with pytest.raises(MigsimError) as info:
        read_actuals(tmp_path / "a.parquet", load_scenario(ACTUALS_SCENARIO))
    k = columns.index(second.strip()) + 1
    assert str(info.value) == (
        f"{tmp_path / 'a.parquet'}: column {second.strip()}: given twice "
        f"(columns {k} and {len(columns) + 1})"
    )


def test_dates_with_and_without_a_time_zone_are_read_as_written(tmp_path):
    """One date written with a UTC offset among dates without raised pandas'
    'Mixed timezones detected' ValueError: a traceback, exit 1."""
    from migsim.evidence.actuals import read_actuals

    frame = _daily_rows()
    frame.loc[1, "date"] = "2024-01-02T00:00:00-05:00"
    path = write(tmp_path, frame.to_csv(index=False), "a.csv")
    actuals = read_actuals(path, load_scenario(ACTUALS_SCENARIO))
    days = actuals.frame["date"].dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2024-01-01", "2024-01-02", "2024-01-03"]  # the date as written
    result = cli(
        "calibrate", write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml"),
        "--actuals", path, "-o", tmp_path / "c.yaml", "--no-check",
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)


NUMPY_CELLS = {
    "cohort": (
        [5, 5, 5],
        "row 1, column cohort: unknown cohort 5 (the scenario has a)",
    ),
    "no_go": ([0, 0, 5], "row 3, column no_go: not true or false: 5"),
    "replication": (
        [0.0, 1.5, 0.0],
        "row 2, column replication: not a whole number: 1.5",
    ),
    "date": ([1.5, 2.5, 3.5], "row 1, column date: not a date: 1.5 (write YYYY-MM-DD)"),
    "attempts": (
        [100.0, float("nan"), 100.0],
        "row 2, column attempts: empty (leave a column out where it was not reported)",
    ),
}


@pytest.mark.parametrize("column", list(NUMPY_CELLS))
def test_a_parquet_cell_is_shown_as_a_plain_number(tmp_path, column):
    """A number read from Parquet was shown as numpy writes it: 'unknown cohort
    np.int64(5)', 'not a whole number: np.float64(1.5)', 'not a number:
    np.float64(nan)' for an empty cell."""
    from migsim.evidence.actuals import read_actuals

    values, where = NUMPY_CELLS[column]
    frame = _daily_rows()
    frame[column] = values
    frame.to_parquet(tmp_path / "a.parquet")
    with pytest.raises(MigsimError) as info:
        read_actuals(tmp_path / "a.parquet", load_scenario(ACTUALS_SCENARIO))
    assert str(info.value) == f"{tmp_path / 'a.parquet'}: {where}"


BAD_REPLICATIONS = {
    # a replication migsim never writes was read as the history (the lowest)
    ".csv -1": ("-1", "row 1, column replication: negative: -1 (a run numbers "
                "its replications from 0)"),
    ".parquet -1": (-1, "row 1, column replication: negative: -1 (a run numbers "
                    "its replications from 0)"),
    ".csv 2.5": ("2.5", "row 1, column replication: not a whole number: '2.5'"),
    ".csv a": ("a", "row 1, column replication: not a whole number: 'a'"),
    # an OverflowError traceback
    ".csv inf": ("inf", "row 1, column replication: not a whole number: 'inf'"),
    ".parquet inf": (float("inf"), "row 1, column replication: not a whole "
                     "number: inf"),
    # read as replication 1
    ".parquet true": (True, "row 1, column replication: true/false is not a "
                      "replication number"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_REPLICATIONS))
def test_a_replication_a_run_never_writes_is_one_line(tmp_path, case):
    """A run numbers its replications 0, 1, 2, ...; any other replication in
    an actuals file is refused, naming the file, row and column."""
    from migsim.evidence.actuals import read_actuals

    value, where = BAD_REPLICATIONS[case]
    suffix = case.split()[0]
    frame = _daily_rows()
    frame.insert(0, "replication", [value] * 3)
    path = tmp_path / f"a{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    with pytest.raises(MigsimError) as info:
        read_actuals(path, load_scenario(ACTUALS_SCENARIO))
    assert str(info.value) == f"{path}: {where}"


ONE_LINE_ACTUALS = {
    # a 2,000,000-character cell was a 2 MB message; over csv's field limit
    # it is the row that cannot be read, under it the cell is shortened
    "a cell of 2,000,000 characters": (
        f"{HEADER}\n2024-01-01,{'x' * 2_000_000},100,80,10,10,0,0\n",
        "row 1: cannot read: field larger than field limit (131072)",
    ),
    "a cell of 100,000 characters": (
        f"{HEADER}\n2024-01-01,{'x' * 100_000},100,80,10,10,0,0\n",
        f"row 1, column cohort: unknown cohort '{'x' * 40}'... (100,000 "
        "characters) (the scenario has a)",
    ),
    # every row with two fields more than the header: the reader took the first
    # two as an index and reported "row 1, column date: not a date: '0'"
    "rows with more fields than the header": (
        f"{HEADER}\n"
        + "".join(f"2024-01-0{d},a,100,80,10,10,0,0,0,0\n" for d in (1, 2, 3)),
        "row 1: 10 fields, more than the 8 columns of the header",
    ),
    # taken as the lowest replication and read as the history
    "a replication of -1": (
        f"replication,{HEADER}\n0,2024-01-01,a,100,80,10,10,0,0\n"
        "-1,2024-01-01,a,100,80,10,10,0,0\n",
        "row 2, column replication: negative: -1 (a run numbers its "
        "replications from 0)",
    ),
    # accepted, and backtests scored forecasts against it
    "a cumulative count that falls": (
        "date,cumulative_migrated\n2024-01-05,500\n2024-01-31,100\n",
        "row 2, column cumulative_migrated: 100 is below the 500 before it (a "
        "cumulative count never falls)",
    ),
}


@pytest.mark.parametrize("case", list(ONE_LINE_ACTUALS))
@pytest.mark.parametrize("command", ["calibrate", "forecast"])
def test_actuals_problems_are_one_short_line_naming_the_row(tmp_path, command, case):
    text, where = ONE_LINE_ACTUALS[case]
    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    actuals = write(tmp_path, text, "actuals.csv")
    args = [command, sc, "--actuals", actuals, "-n", "2", "-o", tmp_path / "out"]
    if command == "forecast":
        args += ["--as-of", "2024-01-05"]
    message = one_line_exit_2(cli(*args))
    assert message == f"Error: {actuals}: {where}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actuals.csv", "sc.yaml"]


@pytest.mark.parametrize("command", ["calibrate", "forecast"])
def test_actuals_from_a_fifo_are_refused_not_waited_for(tmp_path, command):
    """Reading actuals from a FIFO blocked for ever (the YAML reader refused it)."""
    import os

    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    os.mkfifo(tmp_path / "f")
    args = [command, str(sc), "--actuals", "f", "-n", "2", "-o", "out"]
    if command == "forecast":
        args += ["--as-of", "2024-01-05"]
    done = migsim_process(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "Error: f: cannot read: not a regular file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "sc.yaml"]


COARSE = "date,cumulative_migrated\n2024-01-02,60\n2024-01-03,130\n2024-01-05,250\n"


@pytest.mark.parametrize("as_of", ["2024-01-05", "2024-01-10"])
def test_a_backtest_with_nothing_after_its_as_of_date_is_refused(tmp_path, as_of):
    """--as-of on or after the last actual: 'nothing to score', exit 0 and an
    empty backtest folder."""
    write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    write(tmp_path, COARSE, "m.csv")
    result = cli(
        "backtest", "sc.yaml", "--actuals", "m.csv", "--as-of", "2024-01-03",
        "--as-of", as_of, "-n", "2", "-q", "-o", "bt", cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        f"Error: --as-of {as_of}: no actual point after it to score (m.csv: the "
        "actuals end on 2024-01-05); give an as-of date before the last actual"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "sc.yaml"]


#: Where each command of the --as-of tests writes.
_AS_OF_OUTPUT = {
    "calibrate": ["-o", "c.yaml", "--no-check"],
    "forecast": ["-o", "x"],
    "backtest": ["-o", "x"],
}


def _as_of_refused(tmp_path, command: str, as_of: str) -> str:
    """``command`` on the actuals scenario as of ``as_of``: its one line (exit
    2), checked to have written nothing."""
    write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    write(tmp_path, COARSE, "m.csv")
    result = cli(
        command, "sc.yaml", "--actuals", "m.csv", "--as-of", as_of,
        "-n", "2", "-q", *_AS_OF_OUTPUT[command], cwd=tmp_path,
    )  # fmt: skip
    message = one_line_exit_2(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "sc.yaml"]
    return message


@pytest.mark.parametrize("command", ["calibrate", "forecast", "backtest"])
def test_an_as_of_date_before_the_start_is_refused_by_every_command(tmp_path, command):
    """calibrate --as-of 2000-01-01 learned from no actuals and exited 0, where
    forecast and backtest refused the date."""
    message = _as_of_refused(tmp_path, command, "2000-01-01")
    assert message.startswith(
        "Error: --as-of 2000-01-01: must be on or after the scenario's start 2024-01-01"
    ), message


@pytest.mark.parametrize("command", ["calibrate", "forecast", "backtest"])
def test_an_as_of_date_after_the_horizon_is_refused_by_every_command(tmp_path, command):
    """calibrate --as-of a day after the horizon's end learned from every
    actual up to it and exited 0, where forecast and backtest refused the
    date; calibrate as of the horizon's last day still learns from them all."""
    message = _as_of_refused(tmp_path, command, "2024-01-21")
    assert message.startswith(
        "Error: --as-of 2024-01-21: must be on or after the scenario's start "
        "2024-01-01 and "
    ), message
    assert message.endswith(" its end 2024-01-20"), message
    if command == "calibrate":
        result = cli(
            command, "sc.yaml", "--actuals", "m.csv", "--as-of", "2024-01-20",
            *_AS_OF_OUTPUT[command], cwd=tmp_path,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert (tmp_path / "c.yaml").exists()


@pytest.mark.parametrize("chosen", [[], ["--actuals-replication", "1"]])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_run_s_daily_output_without_rows_is_one_line(tmp_path, suffix, chosen):
    """A header with a replication column and no rows: choosing the lowest
    replication of none was an IndexError."""
    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    frame = _daily_rows().iloc[0:0]
    frame.insert(0, "replication", pd.Series([], dtype="int64"))
    path = tmp_path / f"a{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    args = ("forecast", sc, "--actuals", path, "--as-of", "2024-01-02", "-n", "2")
    message = one_line_exit_2(cli(*args, *chosen, "-o", tmp_path / "out"))
    assert message.endswith(f"{path}: no rows")
    assert not (tmp_path / "out").exists()


def test_a_far_date_among_dates_with_a_time_zone_is_one_line(tmp_path):
    """Dates read one by one (some with a UTC offset) were held in nanoseconds:
    a date past 2262 among them was an OutOfBoundsDatetime traceback."""
    from migsim.evidence.actuals import read_actuals

    frame = _daily_rows()
    frame.loc[1, "date"] = "2024-01-02T00:00:00-05:00"
    frame.loc[2, "date"] = "2999-01-01"
    path = write(tmp_path, frame.to_csv(index=False), "a.csv")
    with pytest.raises(MigsimError) as info:
        read_actuals(path, load_scenario(ACTUALS_SCENARIO))
    assert str(info.value) == (
        f"{path}: row 3, column date: 2999-01-01 is after 2200-12-31, the latest "
        "date a scenario may hold"
    )


def test_a_result_folder_is_refused_before_the_actuals_are_read(tmp_path):
    """forecast and backtest refuse an -o folder that holds a result before
    they read the actuals (here a file that would be refused too): a refused
    folder costs no reading of a long file, and says the same in both."""
    _calibration_inputs(tmp_path)
    write(tmp_path, IMPLAUSIBLE["absurd attempts"][0], "absurd.csv")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").write_text("{}")
    for command in ("forecast", "backtest"):
        result = cli(
            command, "sc.yaml", "--actuals", "absurd.csv", "--as-of", "2024-01-01",
            "-o", "out", cwd=tmp_path,
        )  # fmt: skip
        assert one_line_exit_2(result) == (
            "Error: out: exists (use --overwrite to replace it)"
        )


@pytest.mark.parametrize("command", ["calibrate", "forecast", "backtest"])
def test_actuals_in_meters_without_the_ratio_name_the_scenario(tmp_path, command):
    """The line named the actuals file for a field the scenario lacks, and
    only once the whole file had been read and checked (here, a file that
    would be refused too)."""
    data = copy.deepcopy(ACTUALS_SCENARIO)
    del data["meters_per_installation"]
    write(tmp_path, yaml.safe_dump(data), "sc.yaml")
    write(tmp_path, IMPLAUSIBLE["absurd attempts"][0], "absurd.csv")
    result = cli(
        command, "sc.yaml", "--actuals", "absurd.csv", "--actuals-unit", "meters",
        "--as-of", "2024-01-02", "-n", "2", "-o", "out", cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        "Error: sc.yaml: meters_per_installation: missing, and --actuals-unit "
        "meters needs it to read the actuals"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["absurd.csv", "sc.yaml"]


@pytest.mark.parametrize("command", ["forecast", "backtest"])
def test_per_cohort_actuals_without_an_eligible_cohort_are_refused(tmp_path, command):
    """Per-cohort totals of a alone, for a scenario whose cohort b was eligible
    from the start: the forecast took b as untouched (all 600 still to do) and
    exited 0. Now one line names the file and the cohort, exit 2, nothing
    written; a backtest refuses before any forecast runs."""
    two = copy.deepcopy(ACTUALS_SCENARIO)
    two["cohorts"].append({**copy.deepcopy(two["cohorts"][0]), "name": "b"})
    write(tmp_path, yaml.safe_dump(two), "sc.yaml")
    rows = "".join(f"{line[:11]}a,{line[11:]}\n" for line in COARSE.splitlines()[1:])
    write(tmp_path, "date,cohort,cumulative_migrated\n" + rows, "m.csv")
    result = cli(
        command, "sc.yaml", "--actuals", "m.csv", "--as-of", "2024-01-04",
        "-n", "2", "-q", "-o", "x", cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        "Error: m.csv: column cohort: no rows up to 2024-01-03 for b (eligible "
        "from 2024-01-01): the forecast would take it as untouched; add its "
        "figures (a row of 0 if nothing had happened to it)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "sc.yaml"]
