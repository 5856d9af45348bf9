"""Actuals: a run's daily output is valid actuals; every bad file is one line naming
the file, row and column; the CLI exits 2 and leaves no output behind."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import cohort, day, load, outcomes, scenario, write_yaml

import migsim
from migsim.cli.main import main
from migsim.common.errors import ActualsError, MigsimError
from migsim.evidence.actuals import read_actuals
from migsim.sim.records import FLOWS, STATES


@pytest.fixture(scope="module")
def two_cohorts():
    return scenario(
        cohort("a", 600, rates=outcomes(success=0.8, stall=0.1, rollback=0.1)),
        cohort("b", 300, eligible_from=day(3)),
        cap=100,
        horizon_days=20,
        meters_per_installation=1.6,
    )


@pytest.fixture(scope="module")
def run_daily(two_cohorts):
    return migsim.run(load(two_cohorts), replications=3, seed=4).daily


def test_the_daily_output_of_a_run_is_valid_actuals(tmp_path, two_cohorts, run_daily):
    sc = load(two_cohorts)
    path = tmp_path / "daily.parquet"
    run_daily.to_parquet(path, index=False)
    actuals = read_actuals(path, sc)
    assert actuals.kind == "flows" and actuals.has(*FLOWS, *STATES)
    assert "3 replications; using replication 0" in actuals.note
    one = run_daily[run_daily["replication"] == 0]
    assert len(actuals.frame) == len(one)
    assert actuals.frame["attempts"].sum() == one["attempts"].sum()
    # the same replication, chosen, as CSV
    one2 = run_daily[run_daily["replication"] == 2]
    one2.to_csv(tmp_path / "rep2.csv", index=False)
    assert read_actuals(tmp_path / "rep2.csv", sc).frame["successes"].sum() == (
        one2["successes"].sum()
    )
    assert read_actuals(path, sc, replication=2).frame["successes"].sum() == (
        one2["successes"].sum()
    )


def test_cumulative_migrated_agrees_between_states_and_flows(
    tmp_path, two_cohorts, run_daily
):
    sc = load(two_cohorts)
    one = run_daily[run_daily["replication"] == 1]
    with_states = read_actuals(_csv(tmp_path / "s.csv", one), sc)
    flows_only = read_actuals(
        _csv(tmp_path / "f.csv", one.drop(columns=list(STATES))), sc
    )
    a = with_states.cumulative_migrated()
    b = flows_only.cumulative_migrated()
    assert a["cumulative_migrated"].tolist() == b["cumulative_migrated"].tolist()
    expected = (one["migrated"] + one["impaired"]).groupby(one["date"]).sum()
    assert a["cumulative_migrated"].tolist() == expected.tolist()


def test_missing_columns_are_allowed(tmp_path, two_cohorts):
    frame = pd.DataFrame(
        {
            "date": ["2024-01-01", "2024-01-02"],
            "cohort": ["a", "a"],
            "attempts": [100, 100],
            "successes": [80, 85],
        }
    )
    actuals = read_actuals(_csv(tmp_path / "few.csv", frame), load(two_cohorts))
    assert actuals.columns == ("attempts", "successes")
    assert not actuals.can_track_migrated()


def test_coarse_files_programme_wide_and_per_cohort(tmp_path, two_cohorts):
    sc = load(two_cohorts)
    total = pd.DataFrame(
        {"date": ["2024-01-31", "2024-02-29"], "cumulative_migrated": [160, 480]}
    )
    actuals = read_actuals(_csv(tmp_path / "t.csv", total), sc, unit="meters")
    assert actuals.kind == "coarse" and not actuals.per_cohort
    assert actuals.cumulative_migrated()["cumulative_migrated"].tolist() == [
        100.0,
        300.0,
    ]
    per = pd.DataFrame(
        {
            "date": ["2024-01-10", "2024-01-10", "2024-01-20"],
            "cohort": ["a", "b", "a"],
            "cumulative_migrated": [50, 10, 90],
        }
    )
    actuals = read_actuals(_csv(tmp_path / "p.csv", per), sc)
    totals = actuals.cumulative_migrated()
    assert totals["cumulative_migrated"].tolist() == [60.0, 100.0]  # b carried forward


def _csv(path, frame: pd.DataFrame):
    frame.to_csv(path, index=False)
    return path


GOOD = "date,cohort,attempts,successes,stalls,rollbacks,fix_forwards,dumbs\n"
ROW1 = "2024-01-01,a,100,80,10,10,0,0\n"
BAD_FILES = {
    "unknown cohort": (
        GOOD + ROW1 + "2024-01-02,zz,100,80,10,10,0,0\n",
        "row 2, column cohort",
    ),
    "negative count": (
        GOOD + ROW1 + "2024-01-02,a,100,80,-10,10,0,0\n",
        "row 2, column stalls",
    ),
    "outcomes above attempts": (
        GOOD + ROW1 + "2024-01-02,a,100,90,10,10,0,0\n",
        "row 2, column attempts",
    ),
    "date out of order": (
        GOOD + ROW1 + "2024-01-03,a,1,1,0,0,0,0\n2024-01-02,a,1,1,0,0,0,0\n",
        "row 3, column date",
    ),
    "date repeated": (GOOD + ROW1 + ROW1, "row 2, column date"),
    "not a date": (GOOD + "Jan 1st,a,100,80,10,10,0,0\n", "row 1, column date"),
    "not a number": (
        GOOD + "2024-01-01,a,lots,80,10,10,0,0\n",
        "row 1, column attempts",
    ),
    "fraction": (GOOD + "2024-01-01,a,100.5,80,10,10,0,0\n", "row 1, column attempts"),
    "empty cell": (GOOD + "2024-01-01,a,100,,10,10,0,0\n", "row 1, column successes"),
    "before start": (GOOD + "2023-12-31,a,100,80,10,10,0,0\n", "row 1, column date"),
    "no date column": ("cohort,attempts\na,1\n", "column date"),
    "no count column": ("date,cohort\n2024-01-01,a\n", "no count columns"),
    "mixed shapes": (
        "date,cumulative_migrated,attempts\n2024-01-01,5,5\n",
        "column cumulative_migrated",
    ),
    "empty file": ("", "empty file"),
    "month only": (  # was read as 2024-01-01, a month's total dated on its first
        GOOD + ROW1 + "2024-01,a,100,80,10,10,0,0\n",
        "row 2, column date: not a date: '2024-01' (write YYYY-MM-DD)",
    ),
    "today": (  # was read as the date the command ran
        GOOD + ROW1 + "today,a,100,80,10,10,0,0\n",
        "row 2, column date: not a date: 'today'",
    ),
    "migrated falls": (  # backtests scored against it without a word
        "date,cohort,migrated,impaired\n2024-01-01,a,500,20\n2024-01-02,a,100,20\n",
        "row 2, column migrated: migrated + impaired is 120, below the 520 before "
        "it for cohort a",
    ),
    "more migrated than the cohort": (  # b has 300: 2 x 200 successes
        GOOD + "2024-01-01,b,200,200,0,0,0,0\n2024-01-02,b,200,200,0,0,0,0\n"
        "2024-01-03,b,200,200,0,0,0,0\n",
        "row 2, column successes: successes + fix_forwards so far is 400 "
        "installations, more than cohort b's 300",
    ),
    "time of day": (  # was read as 2024-01-02, the half day counted as a whole
        GOOD + ROW1 + "2024-01-02 14:30,a,100,80,10,10,0,0\n",
        "row 2, column date: '2024-01-02 14:30' has a time of day",
    ),
    "time of day with an offset": (
        GOOD + ROW1 + "2024-01-02T23:00:00-05:00,a,100,80,10,10,0,0\n",
        "row 2, column date: '2024-01-02T23:00:00-05:00' has a time of day",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_actuals_name_file_row_and_column(tmp_path, two_cohorts, case):
    text, where = BAD_FILES[case]
    path = tmp_path / "bad_actuals.csv"
    path.write_text(text)
    with pytest.raises(ActualsError) as info:
        read_actuals(path, load(two_cohorts))
    message = str(info.value)
    assert message.startswith(f"{path}: ") and where in message, message
    assert "\n" not in message
    assert isinstance(info.value, MigsimError)


@pytest.mark.parametrize(
    "when", ["2024-01-02 00:00:00", "2024-01-02T00:00", "2024-01-02T00:00:00+01:00"]
)
def test_a_midnight_date_time_is_the_date(tmp_path, two_cohorts, when):
    # pandas writes a datetime column so; midnight (wall time) is the day itself
    path = tmp_path / "a.csv"
    path.write_text(GOOD + ROW1 + f"{when},a,100,80,10,10,0,0\n")
    assert read_actuals(path, load(two_cohorts)).last_date == date(2024, 1, 2)


def test_a_parquet_date_time_with_a_time_of_day_is_refused(tmp_path, two_cohorts):
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "cohort": ["a", "a"],
            "attempts": [100, 100],
        }
    )
    frame.to_parquet(tmp_path / "midnight.parquet")
    assert read_actuals(tmp_path / "midnight.parquet", load(two_cohorts)).last_date
    frame["date"] += pd.Timedelta(hours=14)
    frame.to_parquet(tmp_path / "afternoon.parquet")
    with pytest.raises(ActualsError, match="row 1, column date: 2024-01-01 14:00:00 "):
        read_actuals(tmp_path / "afternoon.parquet", load(two_cohorts))


def test_unreadable_and_missing_files(tmp_path, two_cohorts):
    garbage = tmp_path / "broken.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(ActualsError, match=r"broken\.parquet: cannot read"):
        read_actuals(garbage, load(two_cohorts))
    with pytest.raises(ActualsError, match=r"nope\.csv: no such file"):
        read_actuals(tmp_path / "nope.csv", load(two_cohorts))


#: Reads Parquet actuals in a fresh process: its threads before and after.
_THREADS_AROUND_A_READ = """
import os, sys
from migsim.evidence.actuals import read_actuals
from migsim.model.scenario import load_scenario
scenario = load_scenario(sys.argv[1])
before = len(os.listdir("/proc/self/task"))
actuals = read_actuals(sys.argv[2], scenario)
print(before, len(os.listdir("/proc/self/task")), len(actuals.frame))
"""


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="counts threads in /proc"
)
def test_reading_parquet_actuals_starts_no_thread(tmp_path, two_cohorts, run_daily):
    """Read from a Python file, Parquet actuals started Arrow's threads, which
    dropped the file's pieces after the read had returned. A forecast refused
    right after reading, or one whose threads lagged under load, then ended
    with "terminate called without an active exception" (SIGABRT), and a
    forecast's worker processes were forked beside those threads. The read
    starts none, so neither can happen."""
    path = tmp_path / "daily.parquet"
    run_daily.to_parquet(path, index=False)
    sc = write_yaml(tmp_path / "sc.yaml", two_cohorts)
    done = subprocess.run(
        [sys.executable, "-c", _THREADS_AROUND_A_READ, str(sc), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    before, after, rows = (int(word) for word in done.stdout.split())
    assert rows == (run_daily["replication"] == 0).sum()
    assert after == before


def test_meters_need_meters_per_installation(tmp_path):
    sc = load(scenario(cohort("a", 100)))
    path = _csv(
        tmp_path / "m.csv",
        pd.DataFrame({"date": ["2024-01-05"], "cumulative_migrated": [16]}),
    )
    with pytest.raises(ActualsError, match="meters_per_installation"):
        read_actuals(path, sc, unit="meters")


@pytest.mark.parametrize("command", ["calibrate", "forecast", "backtest"])
@pytest.mark.parametrize(
    "case",
    [
        "unknown cohort",
        "outcomes above attempts",
        "date repeated",
        "not a date",
        "time of day",
    ],
)
def test_cli_bad_actuals_exit_2_one_line_no_output(
    tmp_path, two_cohorts, command, case
):
    scenario_path = write_yaml(tmp_path / "sc.yaml", two_cohorts)
    actuals = tmp_path / "actuals.csv"
    actuals.write_text(BAD_FILES[case][0])
    out = tmp_path / ("out.yaml" if command == "calibrate" else "out")
    args = [
        command,
        str(scenario_path),
        "--actuals",
        str(actuals),
        "-o",
        str(out),
        "-n",
        "2",
    ]
    if command == "forecast":
        args += ["--as-of", "2024-01-05"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "actuals.csv: row" in lines[0], result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actuals.csv", "sc.yaml"]


def test_cli_as_of_outside_the_horizon_is_bad_input(tmp_path, two_cohorts):
    scenario_path = write_yaml(tmp_path / "sc.yaml", two_cohorts)
    actuals = tmp_path / "actuals.csv"
    actuals.write_text(GOOD + ROW1)
    result = CliRunner().invoke(
        main,
        [
            "forecast",
            str(scenario_path),
            "--actuals",
            str(actuals),
            "--as-of",
            "2025-01-01",
            "-n",
            "2",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2 and "--as-of 2025-01-01" in result.output
    assert not (tmp_path / "out").exists()
    assert date(2024, 1, 1) == load(two_cohorts).start_date


def test_a_replication_chosen_from_a_file_without_replications_is_refused(
    tmp_path, two_cohorts, run_daily
):
    """--actuals-replication 5 with a CSV of one history was ignored without a
    word: the planner meant another file (a run's daily.parquet)."""
    sc = load(two_cohorts)
    path = tmp_path / "one.csv"
    run_daily[run_daily["replication"] == 0].drop(columns="replication").to_csv(
        path, index=False
    )
    with pytest.raises(ActualsError) as caught:
        read_actuals(path, sc, replication=5)
    assert str(caught.value) == (
        f"{path}: column replication: missing, so there is no replication 5 to "
        "choose (--actuals-replication is for a run's daily.parquet)"
    )
    assert len(read_actuals(path, sc).frame) > 0  # without the option it reads


def test_what_learned_from_actuals_records_the_files_sha256(tmp_path, two_cohorts):
    """The actuals were recorded by path alone: a file changed or replaced
    after a forecast left nothing to tell which figures it learned from. The
    sha256 of the bytes read goes into calibration, forecast and backtest
    records, and stays with the actuals cut at a date."""
    import hashlib

    from migsim.evidence.calibrate import calibrate

    sc = load(two_cohorts)
    total = pd.DataFrame(
        {"date": ["2024-01-31", "2024-02-29"], "cumulative_migrated": [160, 480]}
    )
    path = _csv(tmp_path / "t.csv", total)
    actuals = read_actuals(path, sc)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert actuals.sha256 == digest
    assert actuals.up_to(date(2024, 2, 1)).sha256 == digest
    assert calibrate(sc, actuals).summary()["actuals_sha256"] == digest


def test_result_files_name_their_actuals_by_one_set_of_keys(tmp_path, two_cohorts):
    """calibration.json and backtest.json name the actuals they learned from by
    the same four keys, in this order (`Actuals.provenance`): the file as
    named, its sha256, its kind and its unit (meters here, as the file was
    written, though the counts are held in installations)."""
    import hashlib

    from migsim.evidence.calibrate import calibrate

    sc = load(two_cohorts)
    total = pd.DataFrame(
        {"date": ["2024-01-31", "2024-02-29"], "cumulative_migrated": [160, 480]}
    )
    path = _csv(tmp_path / "t.csv", total)
    actuals = read_actuals(str(path), sc, unit="meters")
    named = actuals.provenance()
    assert list(named.items()) == [
        ("actuals", str(path)),
        ("actuals_sha256", hashlib.sha256(path.read_bytes()).hexdigest()),
        ("actuals_kind", "coarse"),
        ("actuals_unit", "meters"),
    ]
    keys = list(calibrate(sc, actuals).summary())
    at = keys.index("actuals")
    assert keys[at - 1 : at + 5] == [
        "calibrated_scenario_sha256",
        *named,
        "actuals_first_date",
    ]
