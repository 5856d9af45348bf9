"""Command line, in-process with click's CliRunner: outputs, exit codes, one-line
errors, and a resolved scenario.yaml that reproduces its run."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import BASELINE, VALIDATION, write_yaml
from test_scenario import BAD_INPUTS, _base

import migsim
from migsim.cli.main import main
from migsim.cli.shared import emit
from migsim.model.base import OUTCOMES
from migsim.results.results import FIGURES, STATISTICS

OUTPUT_FILES = (
    "daily.parquet",
    "replications.csv",
    "summary.json",
    "scenario.yaml",
    "backlog.png",
    "bands.csv",
    "weekly.csv",
    "results.xlsx",
)
SUMMARY_KEYS = (
    "seed",
    "replications",
    "scenario_sha256",
    "migsim_version",
    "scenario",
    "figures",
    "timing",
)


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_bad_input(result, *fragments: str) -> str:
    """Exit 2, exactly one line of output, no traceback; returns the line."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# ============================================================================= baseline
@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("cli") / "tmp"
    result = invoke("run", BASELINE, "-n", 20, "-o", outdir, "--format", "json")
    assert result.exit_code == 0, result.output
    return result, outdir


def test_run_writes_every_output_file(baseline_run):
    _, outdir = baseline_run
    for name in OUTPUT_FILES:
        assert (outdir / name).is_file(), name
    assert (outdir / "backlog.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    daily = pd.read_parquet(outdir / "daily.parquet")
    assert len(daily) == 20 * 365 * 2


def test_summary_json_has_the_contract_keys(baseline_run):
    _, outdir = baseline_run
    summary = json.loads((outdir / "summary.json").read_text())
    for key in SUMMARY_KEYS:
        assert key in summary, key
    assert summary["replications"] == 20 and summary["seed"] == 0
    assert summary["migsim_version"] == migsim.__version__
    assert summary["scenario"]["name"] == "nov2019_epcl"
    for name in (
        "clearance_day",
        "active_interrupted_installation_days",
        "active_dumb",
        "dormant_dumb",
        "abandoned",
        "peak_failure_backlog",
    ):
        assert tuple(summary["figures"][name]) == STATISTICS, name
    assert "simulate_seconds" in json.dumps(summary["timing"])


def test_the_summary_says_when_the_median_backlog_is_down_to_the_last_few(
    baseline_run,
):
    """The baseline's median backlog is down to 1% weeks before its P50
    clearance date: the terminal's summary says when, and the bands agree."""
    result, outdir = baseline_run
    summary = json.loads((outdir / "summary.json").read_text())
    bands = pd.read_csv(outdir / "bands.csv", parse_dates=["date"])
    median = bands[bands["cohort"] == "all"].set_index("date")["backlog_p50"]
    reached = median[median <= 740].index[0].date()
    p50 = summary["clearance_date"]["p50"]
    assert (date.fromisoformat(p50) - reached).days >= 14
    assert (
        f"falls to 1% of the installations (740 of 74,000) by {reached.isoformat()}"
        f"; the last few (stalls and retries) take it to the median clearance "
        f"date, {p50}." in " ".join(result.stderr.split())
    )


def test_replications_csv_columns(baseline_run):
    _, outdir = baseline_run
    table = pd.read_csv(outdir / "replications.csv")
    figures = [f for f in FIGURES if f != "clearance_day"]
    assert list(table.columns[: 3 + len(figures)]) == [
        "replication",
        "clearance_date",
        "clearance_day",
        *figures,
    ]
    for word in ("time", "second", "runtime", "wall", "elapsed"):
        assert not [c for c in table.columns if word in c]
    assert table["replication"].tolist() == list(range(20))


def test_bands_csv_and_weekly_projection_for_a_spreadsheet(baseline_run):
    _, outdir = baseline_run
    bands = pd.read_csv(outdir / "bands.csv", parse_dates=["date"])
    stats = ("p5", "p10", "p50", "p90", "p95")
    assert list(bands.columns) == [
        "date",
        "cohort",
        *(f"backlog_{s}" for s in stats),
        *(f"cumulative_migrated_{s}" for s in stats),
    ]
    assert list(dict.fromkeys(bands["cohort"])) == [
        "all",
        "itron_active",
        "elster_dormant",
    ]
    overall = bands[bands["cohort"] == "all"]
    assert len(overall) == 365 and overall["date"].is_monotonic_increasing
    # quantiles in order, and what is migrated plus the backlog never exceeds the fleet
    for prefix in ("backlog", "cumulative_migrated"):
        values = overall[[f"{prefix}_{s}" for s in stats]].to_numpy()
        assert (values[:, :-1] <= values[:, 1:]).all()
    assert overall["backlog_p50"].iloc[0] == 74000
    assert (overall["cumulative_migrated_p50"] <= 74000).all()
    # the all-cohort band is of each replication's total, as the run's own bands
    from migsim.results.rundir import load_run

    run = load_run(outdir)
    total = run.bands("remaining", quantiles=(0.05, 0.1, 0.5, 0.9, 0.95))
    assert (overall["backlog_p95"].to_numpy() == total["p95"].to_numpy()).all()
    cohort = run.bands("cumulative_migrated", "itron_active", quantiles=(0.1,))
    itron = bands[bands["cohort"] == "itron_active"]
    assert (itron["cumulative_migrated_p10"].to_numpy() == cohort["p10"]).all()
    weekly = pd.read_csv(outdir / "weekly.csv", parse_dates=["week_ending"])
    assert list(weekly.columns) == [
        "week_ending",
        "cumulative_migrated_p10",
        "cumulative_migrated_p50",
        "cumulative_migrated_p90",
        "backlog_p10",
        "backlog_p50",
        "backlog_p90",
        "days",  # added last: the columns before it keep their places
    ]
    sundays = weekly["week_ending"].iloc[:-1]
    assert (sundays.dt.day_of_week == 6).all() and len(weekly) == 53
    # a part week says so: the horizon's last day (a Monday) is a 1-day week
    assert weekly["days"].iloc[-1] == 1 and (weekly["days"].iloc[:-1] == 7).all()
    assert weekly["days"].sum() == len(overall)
    on_sundays = overall.set_index("date").loc[weekly["week_ending"]]
    assert (
        on_sundays["backlog_p50"].to_numpy() == weekly["backlog_p50"].to_numpy()
    ).all()


def test_results_xlsx_holds_the_same_tables(baseline_run):
    _, outdir = baseline_run
    sheets = pd.read_excel(outdir / "results.xlsx", sheet_name=None)
    assert list(sheets) == ["summary", "weekly", "bands", "replications", "run"]
    summary = json.loads((outdir / "summary.json").read_text())
    # the workbook alone traces its numbers: what summary.json records of the run
    run = dict(zip(sheets["run"]["field"], sheets["run"]["value"], strict=True))
    for key in ("migsim_version", "scenario_sha256", "command"):
        assert run[key] == summary[key], key
    assert run["scenario"] == summary["scenario"]["name"]
    assert int(run["seed"]) == summary["seed"]
    assert int(run["replications"]) == summary["replications"] == 20
    first = sheets["summary"].iloc[0]
    assert first["cohort"] == "all"
    assert (
        pd.Timestamp(first["clears_p50"]).date().isoformat()
        == (summary["clearance_date"]["p50"])
    )
    assert first["dumb_p90"] == summary["figures"]["dumb"]["p90"]
    weekly = pd.read_csv(outdir / "weekly.csv")
    assert sheets["weekly"]["backlog_p90"].tolist() == weekly["backlog_p90"].tolist()
    assert len(sheets["bands"]) == len(pd.read_csv(outdir / "bands.csv"))
    assert len(sheets["replications"]) == 20


def test_format_json_prints_parseable_json_on_stdout(baseline_run):
    result, outdir = baseline_run
    printed = json.loads(result.stdout)
    written = json.loads((outdir / "summary.json").read_text())
    assert printed["figures"] == written["figures"]
    assert printed["scenario_sha256"] == written["scenario_sha256"]


def test_emit_names_the_folder_written_after_the_table_in_either_format(capsys):
    """Every command that writes -o says so in one wording, after its table;
    with --format json that line goes with the table to stderr, so stdout
    stays pure JSON."""
    emit("the table", {"a": 1}, "table", written="out/run 1")
    assert capsys.readouterr() == ("the table\n\nWritten to out/run 1/\n", "")
    emit("the table", {"a": 1}, "json", written="out")
    printed = capsys.readouterr()
    assert json.loads(printed.out) == {"a": 1}
    assert printed.err == "the table\n\nWritten to out/\n"
    emit("the table", {"a": 1}, "table")  # nothing written: no such line
    assert capsys.readouterr().out == "the table\n"


def test_scenario_yaml_is_the_resolved_scenario(baseline_run):
    _, outdir = baseline_run
    written = migsim.load_scenario(outdir / "scenario.yaml")
    assert written == migsim.load_scenario(BASELINE)
    summary = json.loads((outdir / "summary.json").read_text())
    assert written.sha256 == summary["scenario_sha256"]


def test_run_refuses_an_existing_outdir(baseline_run):
    _, outdir = baseline_run
    before = (outdir / "replications.csv").read_bytes()
    assert_bad_input(invoke("run", BASELINE, "-n", 1, "-o", outdir), str(outdir))
    assert (outdir / "replications.csv").read_bytes() == before


# ============================================================================ tiny runs
@pytest.fixture
def tiny_file(tmp_path, rich_scenario):
    return write_yaml(tmp_path / "tiny.yaml", rich_scenario)


def test_overwrite_replaces_an_existing_outdir(tiny_file, tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    # an earlier run's output (a summary.json names the migsim that wrote it)
    (outdir / "summary.json").write_text('{"migsim_version": "0.1.0"}')
    (outdir / "old.txt").write_text("old")
    result = invoke("run", tiny_file, "-n", 2, "-o", outdir, "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (outdir / "old.txt").exists() and (outdir / "summary.json").exists()


def test_the_table_summarises_clearance_and_risks(tiny_file):
    result = invoke("run", tiny_file, "-n", 3)
    assert result.exit_code == 0, result.output
    text = result.output
    for fragment in (
        "P10",
        "P50",
        "P90",
        "all cohorts",
        "active_a",
        "dormant_b",
        "dumb",
        "abandoned",
        "interrupted",
    ):
        assert fragment in text, fragment


def test_set_rescales_rates_and_scenario_yaml_reproduces_the_run(tiny_file, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    result = invoke(
        "run",
        tiny_file,
        "-n",
        4,
        "-o",
        first,
        "--set",
        "cohorts.active_a.outcomes.success=0.85",
        "--set",
        "capacity.daily_cap=120",
    )
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load((first / "scenario.yaml").read_text())
    assert resolved["capacity"]["daily_cap"] == 120
    rates = resolved["cohorts"][0]["outcomes"]
    original = yaml.safe_load(tiny_file.read_text())["cohorts"][0]["outcomes"]
    assert rates["success"] == 0.85
    assert sum(rates.values()) == pytest.approx(1.0, abs=1e-12)
    for name in OUTCOMES[1:]:
        assert rates[name] == pytest.approx(original[name] * 0.15 / (1 - 0.8))
    result = invoke("run", first / "scenario.yaml", "-n", 4, "-o", second)
    assert result.exit_code == 0, result.output
    assert (first / "replications.csv").read_bytes() == (
        second / "replications.csv"
    ).read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_parquet(first / "daily.parquet"),
        pd.read_parquet(second / "daily.parquet"),
    )
    sha = [
        json.loads((d / "summary.json").read_text())["scenario_sha256"]
        for d in (first, second)
    ]
    assert sha[0] == sha[1]


def test_a_set_value_is_never_credited_to_the_source_of_the_value_it_replaced(
    tmp_path,
):
    """--set changes a value, so the resolved scenario (scenario.yaml, and the
    report's assumptions drawn from it) marks that field as an assumption set
    with --set, keeping what it replaced and that value's source; a field not
    changed keeps its source as it was."""
    original = migsim.load_scenario(BASELINE)
    out = tmp_path / "run"
    result = invoke(
        "run", BASELINE, "-n", 1, "-o", out, "--set", "capacity.daily_cap=2600"
    )
    assert result.exit_code == 0, result.output
    resolved = migsim.load_scenario(out / "scenario.yaml")
    assert resolved.capacity.daily_cap == 2600
    note = resolved.sources["capacity.daily_cap"]
    assert note.startswith("assumption: set with --set")
    assert "2,000" in note and original.sources["capacity.daily_cap"] in note
    kept = "cohorts.itron_active.installations"
    assert resolved.sources[kept] == original.sources[kept]
    again = invoke("run", out / "scenario.yaml", "-n", 1, "--format", "json", "-q")
    summary = json.loads(again.stdout)
    assert summary["scenario_sha256"] == resolved.sha256  # it reproduces as written
    # a field set to null goes, and its source with it (it used to be refused)
    removed = "meters_per_installation_range"
    assert removed in original.sources
    result = invoke(
        "run", BASELINE, "-n", 1, "-o", out, "--overwrite", "--set", f"{removed}=null"
    )
    assert result.exit_code == 0, result.output
    resolved = migsim.load_scenario(out / "scenario.yaml")
    assert resolved.meters_per_installation_range is None
    assert removed not in resolved.sources


def test_a_set_true_or_false_says_the_value_it_replaced_as_written():
    """A boolean replaced by --set was noted as a number: 'value before 1'
    for a range's ``shared: true``."""
    fleet = BASELINE.parent / "smets1_full_fleet.yaml"
    field = "cohorts.ioc_dormant.installations_range.shared"
    assert migsim.load_scenario(fleet).cohort("ioc_dormant").installations_range.shared
    resolved = migsim.load_scenario(fleet, {field: False})
    assert resolved.sources[field] == "assumption: set with --set (value before true)"


def test_a_set_keeps_the_source_of_a_field_that_is_null_and_untouched():
    """Any --set dropped every source naming a field whose value is null (a
    cohort's prepayment_share, not modelled, with its reason): only the
    source of a field the override removed goes with it."""
    from migsim.common.yamlio import parse_yaml

    data = parse_yaml(BASELINE.read_text())
    field = "cohorts.elster_dormant.prepayment_share"
    data["sources"][field] = "assumption: dormant, so no prepayment to model"
    assert migsim.load_scenario(data).cohort("elster_dormant").prepayment_share is None
    resolved = migsim.load_scenario(data, {"horizon_days": 400})
    assert resolved.sources[field] == data["sources"][field]


def test_seed_option_is_recorded_and_reproduces(tiny_file, tmp_path):
    runs = []
    for name in ("a", "b"):
        result = invoke("run", tiny_file, "-n", 3, "--seed", 7, "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
        runs.append((tmp_path / name / "replications.csv").read_bytes())
    assert runs[0] == runs[1]
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["seed"] == 7
    other = invoke("run", tiny_file, "-n", 3, "--seed", 8, "-o", tmp_path / "c")
    assert other.exit_code == 0
    assert (tmp_path / "c" / "replications.csv").read_bytes() != runs[0]


def test_an_internal_error_keeps_its_traceback(tiny_file, monkeypatch):
    import migsim.runner.runner as runner

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(runner, "run", broken)
    result = invoke("run", tiny_file, "-n", 1)
    assert result.exit_code not in (0, 2)
    assert isinstance(result.exception, RuntimeError)


# ======================================================================= other commands
def test_validate_accepts_a_good_scenario():
    for path in (BASELINE, VALIDATION):
        result = invoke("validate", path)
        assert result.exit_code == 0, result.output
        assert "valid" in result.output


def test_scenarios_lists_the_bundled_ones_with_descriptions():
    result = invoke("scenarios")
    assert result.exit_code == 0
    assert "nov2019_epcl.yaml" in result.output
    assert "itron_dormant_2019.yaml" in result.output
    assert "2,000-a-day" in result.output  # a description, not only names


@pytest.mark.slow
def test_scenarios_paths_open_from_any_directory(tmp_path, monkeypatch):
    root = BASELINE.resolve().parents[1]
    monkeypatch.chdir(root)
    listed = [
        line for line in invoke("scenarios").output.splitlines() if line[:1] != " "
    ]
    assert "scenarios/nov2019_epcl.yaml" in listed  # relative from the repository
    monkeypatch.chdir(tmp_path)
    elsewhere = [
        line for line in invoke("scenarios").output.splitlines() if line[:1] != " "
    ]
    assert len(elsewhere) == len(listed)
    for line in elsewhere:
        assert Path(line).is_file(), line
        assert invoke("validate", line).exit_code == 0


# ============================================================= progress and --quiet
def _long_running(command: str, tmp_path, tiny_yaml) -> list[str]:
    """Arguments that make ``command`` do a little real work on the tiny scenario."""
    scenario = tiny_yaml()
    actuals = tmp_path / "actuals.csv"
    if command in ("forecast", "backtest", "calibrate"):
        run = migsim.run(migsim.load_scenario(scenario), replications=1, seed=5)
        run.daily.to_csv(actuals, index=False)
    question = write_yaml(
        tmp_path / "question.yaml",
        {
            "name": "cap",
            "scenario": scenario.name,
            "levers": {"capacity.daily_cap": {"low": 50, "high": 150, "step": 50}},
            "objective": {"minimise": "clearance_day", "statistic": "p50"},
            "risk_budget": [
                {"figure": "peak_failure_backlog", "statistic": "p90", "max": 1e6}
            ],
        },
    )
    by_command = {
        "run": ["run", scenario, "-n", 3],
        # +-5 days: four batches of 2 on the tiny scenario (+-1 ran 35, 3 s)
        "run --precision": ["run", scenario, "--precision", 5, "-n", 2],
        "compare": ["compare", scenario, tiny_yaml("other"), "-n", 2],
        "sweep": ["sweep", scenario, "--grid", "capacity.daily_cap=80,120", "-n", 2]
        + ["-o", tmp_path / "sweep"],
        "decide": ["decide", question, "-n", 2],
        "sensitivity": ["sensitivity", scenario, "-n", 2]
        + ["--range", "capacity.daily_cap=80:120"],
        "forecast": ["forecast", scenario, "--actuals", actuals, "-n", 2]
        + ["--as-of", "2020-02-03"],
        "backtest": ["backtest", scenario, "--actuals", actuals, "-n", 2]
        + ["--as-of", "2020-02-03"],
        "calibrate": ["calibrate", scenario, "--actuals", actuals, "-n", 2]
        + ["-o", tmp_path / "calibrated.yaml", "--overwrite"],
    }
    return [str(a) for a in by_command[command]]


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        "run",
        "run --precision",
        "compare",
        "sweep",
        "decide",
        "sensitivity",
        "forecast",
        "backtest",
        "calibrate",
    ],
)
def test_long_running_commands_show_progress_on_a_terminal_unless_quiet(
    command, tmp_path, tiny_yaml, monkeypatch
):
    args = _long_running(command, tmp_path, tiny_yaml)
    unit = {"sweep": "point", "decide": "candidate"}.get(command, "rep")
    off_terminal = CliRunner().invoke(main, args)
    assert off_terminal.exit_code == 0, off_terminal.output
    assert f"{unit}/s" not in off_terminal.stderr
    monkeypatch.setattr("migsim.cli.progress.stderr_is_terminal", lambda: True)
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code == 0, shown.output
    assert f"{unit}/s" in shown.stderr  # tqdm's rate: the bar was drawn
    assert shown.stdout == off_terminal.stdout  # the bar never touches stdout
    quiet = CliRunner().invoke(main, [*args, "--quiet"])
    assert quiet.exit_code == 0, quiet.output
    assert f"{unit}/s" not in quiet.stderr
    assert quiet.stdout == off_terminal.stdout


def test_decide_quiet_drops_the_line_per_candidate(tmp_path, tiny_yaml):
    args = _long_running("decide", tmp_path, tiny_yaml)
    assert "candidate 0:" in CliRunner().invoke(main, args).stderr
    assert "candidate 0:" not in CliRunner().invoke(main, [*args, "-q"]).stderr


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and migsim.__version__ in result.output


# ============================================================================ bad input
@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_scenario_exits_2_with_one_line(tmp_path, case, command):
    edit, field = BAD_INPUTS[case]
    data = _base()
    edit(data)
    path = write_yaml(tmp_path / "bad.yaml", data)
    args = [command, path] + (["-n", 1] if command == "run" else [])
    assert_bad_input(invoke(*args), str(path), field)


@pytest.mark.parametrize("command", ["run", "validate"])
def test_missing_file_exits_2(tmp_path, command):
    assert_bad_input(invoke(command, tmp_path / "absent.yaml"), "absent.yaml")


@pytest.mark.parametrize("text", ["name: x\n  bad: [\n", "a: [1, 2\n", "just text\n"])
def test_unreadable_yaml_exits_2(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    assert_bad_input(invoke("run", path, "-n", 1), str(path))


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("cohorts.nope.installations=3", "cohorts.nope"),
        ("cohorts.c.colour=3", "cohorts.c.colour"),
        ("capacity.daily_cap=lots", "capacity.daily_cap"),
        ("capacity.daily_cap=-5", "capacity.daily_cap"),
        ("cohorts.c.outcomes.success=1.5", "cohorts.c.outcomes.success"),
        ("cohorts.c.mode=sleepy", "cohorts.c.mode"),
        ("nonsense", "nonsense"),
    ],
)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_set_exits_2_naming_the_field(tmp_path, setting, field, command):
    path = write_yaml(tmp_path / "s.yaml", _base())
    args = [command, path, "--set", setting] + (["-n", 1] if command == "run" else [])
    assert_bad_input(invoke(*args), field)


# ============================================= formerly known bugs, now fixed
def test_the_table_keeps_its_columns_apart_and_aligned(tmp_path):
    data = _base()
    data["horizon_days"] = 3  # too short to clear: a negative verdict, still exit 0
    path = write_yaml(tmp_path / "short.yaml", data)
    result = invoke("run", path, "-n", 2)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row = next(line for line in lines if line.startswith("  all cohorts"))
    assert len(re.findall(r"(?:^|\s)after \d{4}-\d{2}-\d{2}", row)) == 3, row
    header = next(line for line in lines if line.startswith("Risks"))
    p50_end = header.index("P50") + 3
    start = lines.index(header) + 1
    for line in lines[start:]:
        if not line.strip():
            break
        first_value = re.search(r"\S+(?=\s+\S+\s+\S+$)", line)
        assert first_value.end() == p50_end, line


@pytest.mark.parametrize("where", ["key", "cohort name", "dist tag"])
def test_an_error_stays_one_line_when_the_input_holds_a_newline(tmp_path, where):
    data = _base()
    if where == "key":
        data["cohorts"][0]["col\nour"] = 1
    elif where == "cohort name":
        data["cohorts"][0]["name"] = "a\nb"
        data["cohorts"][0]["installations"] = -1
    else:
        data["cohorts"][0]["rollback"]["retry_after_days"] = {"dist": "wei\nbull"}
    path = write_yaml(tmp_path / "newline.yaml", data)
    assert_bad_input(invoke("validate", path), str(path))


def test_scenario_yaml_of_a_seeded_run_reproduces_it_without_the_seed(
    tiny_file, tmp_path
):
    first, second = tmp_path / "first", tmp_path / "second"
    result = invoke("run", tiny_file, "-n", 3, "--seed", 7, "-o", first)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((first / "scenario.yaml").read_text())["seed"] == 7
    result = invoke("run", first / "scenario.yaml", "-n", 3, "-o", second)
    assert result.exit_code == 0, result.output
    assert (first / "replications.csv").read_bytes() == (
        second / "replications.csv"
    ).read_bytes()
    default = invoke("run", tiny_file, "-n", 3, "-o", tmp_path / "default")
    assert default.exit_code == 0, default.output
    assert (first / "replications.csv").read_bytes() != (
        tmp_path / "default" / "replications.csv"
    ).read_bytes()
