"""Sweeps: grid and Latin hypercube points, the store, resume after a kill."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import held_elsewhere

import migsim
from migsim.cli.main import main
from migsim.common.errors import MigsimError
from migsim.common.store import LOCK
from migsim.experiments.sweep import (
    SweepDefinition,
    figure_columns,
    grid_points,
    lhs_points,
    parse_grid,
    parse_range,
    read_sweep,
    run_sweep,
)
from migsim.results.results import FIGURES, statistics

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "name": "tiny_sweep",
    "start_date": "2020-01-06",
    "horizon_days": 30,
    "capacity": {"daily_cap": 200},
    "cohorts": [
        {
            "name": "alpha",
            "installations": 2000,
            "mode": "active",
            "outcomes": {
                "success": 0.9,
                "stall": 0.05,
                "rollback": 0.04,
                "fix_forward": 0.005,
                "dumb": 0.005,
            },
            "stall": {
                "resolves_after_days": {"dist": "uniform", "low": 1, "high": 3},
                "then_success": 0.8,
            },
            "rollback": {"retry_after_days": {"dist": "fixed", "days": 2}},
            "fix_forward": {"restored_after_days": {"dist": "fixed", "days": 1}},
        },
    ],
}


@pytest.fixture
def tiny_path(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(TINY))
    return path


# --------------------------------------------------------------------------- points
def test_grid_is_the_full_factorial_first_field_slowest():
    points = grid_points({"a": [1, 2], "b": ["x", "y", "z"]})
    assert points == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 2, "b": "z"},
    ]


def test_parse_grid_and_range():
    assert parse_grid("capacity.daily_cap=2000, 5000") == (
        "capacity.daily_cap",
        [2000, 5000],
    )
    assert parse_grid("x.y=0.9,2020-01-06") == ("x.y", [0.9, "2020-01-06"])
    assert parse_range("capacity.daily_cap=2000:20000") == (
        "capacity.daily_cap",
        (2000.0, 20000.0),
    )
    for bad in ("nofield", "a=", "a=1,,2"):
        with pytest.raises(MigsimError):
            parse_grid(bad)
    # a value twice is the same point run twice (2000 and 2000.0 alike)
    for twice in ("capacity.daily_cap=50,50", "capacity.daily_cap=2000, 2000.0"):
        with pytest.raises(MigsimError, match="listed twice"):
            parse_grid(twice)
    for bad in ("a=1", "a=x:2", "a=5:1", "=1:2"):
        with pytest.raises(MigsimError):
            parse_range(bad)


@pytest.mark.parametrize("k", [1, 2, 7, 50])
def test_lhs_puts_one_point_in_each_stratum(k):
    ranges = {"a": (0.0, 10.0), "b": (100.0, 103.0), "c": (-1.0, 1.0)}
    points = lhs_points(ranges, k, np.random.default_rng(k))
    assert len(points) == k
    for name, (low, high) in ranges.items():
        values = np.array([p[name] for p in points])
        assert ((values >= low) & (values <= high)).all()
        strata = np.floor((values - low) / (high - low) * k).astype(int)
        assert sorted(strata) == list(range(k)), name


def test_lhs_rounds_integer_fields_and_is_seeded():
    sc = migsim.load_scenario(TINY)
    definition = SweepDefinition(
        sc,
        replications=1,
        seed=3,
        lhs=5,
        ranges={
            "capacity.daily_cap": (100, 600),
            "cohorts.alpha.outcomes.success": (0.8, 0.95),
        },
    )
    points = definition.points()
    caps = [p["capacity.daily_cap"] for p in points]
    assert all(type(c) is int for c in caps)
    assert sorted((c - 100) * 5 // 500 for c in caps) == [0, 1, 2, 3, 4]
    assert all(type(p["cohorts.alpha.outcomes.success"]) is float for p in points)
    assert definition.points() == points  # its own seeded stream
    other = SweepDefinition(sc, 1, 4, lhs=5, ranges=definition.ranges)
    assert other.points() != points


def test_definition_errors():
    sc = migsim.load_scenario(TINY)
    with pytest.raises(MigsimError, match="either --grid or --lhs"):
        SweepDefinition(sc, 1, 0)
    with pytest.raises(MigsimError, match="either --grid or --lhs"):
        SweepDefinition(
            sc,
            1,
            0,
            grid={"capacity.daily_cap": [1]},
            lhs=2,
            ranges={"capacity.daily_cap": (1, 2)},
        )
    with pytest.raises(MigsimError, match="no such field"):
        SweepDefinition(sc, 1, 0, grid={"capacity.nope": [1]})
    with pytest.raises(MigsimError, match="not a numeric field"):
        SweepDefinition(sc, 1, 0, lhs=2, ranges={"capacity.allocation": (1, 2)})


def test_a_list_item_by_its_index_is_a_dimension_as_with_set(tiny_path, tmp_path):
    """``--grid cohorts.0.installations=...`` was "no such field" although
    ``--set`` and a question's lever take the same path; one field by its
    index and by its name is refused, as two levers on it are."""
    sc = migsim.load_scenario(TINY)
    lhs = SweepDefinition(sc, 1, 0, lhs=3, ranges={"cohorts.0.installations": (1, 9)})
    assert all(type(p["cohorts.0.installations"]) is int for p in lhs.points())
    grid = {"cohorts.0.installations": [500, 1000], "cohorts.alpha.max_attempts": [3]}
    table = run_sweep(SweepDefinition(sc, 1, 0, grid=grid), tmp_path / "s")
    assert table["cohorts.0.installations"].tolist() == [500, 1000]
    assert table["migrated_mean"].iloc[0] <= 500 < table["migrated_mean"].iloc[1]
    args = ["sweep", str(tiny_path), "-n", "1", "-o", str(tmp_path / "t")]
    args += ["--grid", "cohorts.0.installations=500,1000"]
    result = CliRunner().invoke(
        main, [*args, "--grid", "cohorts.alpha.installations=2000"]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "Error: tiny_sweep: sweep field cohorts.alpha.installations: the same "
        "field as cohorts.0.installations (a list item by its index and by its "
        "name): give it once"
    )
    assert not (tmp_path / "t").exists()


# --------------------------------------------------------------------------- store
def test_points_use_common_random_numbers(tmp_path):
    sc = migsim.load_scenario(TINY)
    definition = SweepDefinition(
        sc,
        replications=4,
        seed=11,
        grid={
            "capacity.daily_cap": [150, 250],
            "cohorts.alpha.outcomes.success": [0.9],
        },
    )
    table = run_sweep(definition, tmp_path / "store")
    assert list(table.columns) == [
        "point",
        "capacity.daily_cap",
        "cohorts.alpha.outcomes.success",
        *figure_columns(),
        "status",
        "error",
    ]
    assert not [c for c in table.columns if "second" in c or "time" in c]
    for values, (_, row) in zip(definition.points(), table.iterrows(), strict=True):
        direct = migsim.run(
            sc.with_overrides(values), replications=4, seed=11, daily=False
        )
        for name in FIGURES:
            for stat, value in statistics(direct.figure(name)).items():
                got = row[f"{name}_{stat}"]
                expected = math.isnan(got) if value is None else got == value
                assert expected, (name, stat)


@pytest.mark.slow
def test_invalid_points_are_recorded_and_not_fatal(tiny_path, tmp_path):
    store = tmp_path / "store"
    result = CliRunner().invoke(
        main,
        [
            "sweep",
            str(tiny_path),
            "--grid",
            "cohorts.alpha.outcomes.success=0.9,1.5",
            "--grid",
            "cohorts.alpha.max_attempts=0,2",
            "-n",
            "2",
            "-o",
            str(store),
        ],
    )
    assert result.exit_code == 0, result.output
    table = read_sweep(store)
    assert list(table["status"]) == ["invalid", "done", "invalid", "invalid"]
    assert "rate 1.5 is outside [0, 1]" in table["error"][2]
    assert "max_attempts" in table["error"][0]
    assert table["error"][1] is None or pd.isna(table["error"][1])
    assert np.isnan(table.loc[0, "clearance_day_p50"])
    manifest = json.loads((store / "manifest.json").read_text())
    assert [p["status"] for p in manifest["points"]] == list(table["status"])
    assert manifest["definition"]["replications"] == 2
    assert (store / "sweep.png").exists()
    assert "invalid: point 2" in result.output


def test_a_swept_start_date_gives_each_points_clearance_date_from_its_own_start(
    tiny_path, tmp_path
):
    """Clearance days count from each point's start_date: started a week later
    (same weekdays, no holidays), the same work clears a week later, where the
    table printed the first start's date for every point."""
    from migsim.output.plots import sweep_chart

    store = tmp_path / "store"
    result = CliRunner().invoke(
        main,
        [
            "sweep",
            str(tiny_path),
            "--grid",
            "start_date=2020-01-06,2020-01-13",
            "-n",
            "2",
            "-o",
            str(store),
        ],
    )
    assert result.exit_code == 0, result.output
    table = read_sweep(store)
    days = table["clearance_day_p50"].tolist()
    assert days[0] == days[1] and math.isfinite(days[0])
    first = (pd.Timestamp("2020-01-06") + pd.Timedelta(days=days[0])).date()
    later = (pd.Timestamp(first) + pd.Timedelta(days=7)).date()
    lines = {line.split()[1]: line for line in result.output.splitlines()[1:3]}
    assert first.isoformat() in lines["2020-01-06"]
    assert later.isoformat() in lines["2020-01-13"]
    figure = sweep_chart(
        table, "clearance_day_p50", "start_date", start_date=pd.Timestamp("2020-01-06")
    )
    drawn = figure.axes[0].lines[0].get_ydata()
    assert [pd.Timestamp(v).date() for v in drawn] == [first, later]


@pytest.mark.slow
def test_changed_definition_is_refused_unless_fresh(tiny_path, tmp_path):
    store = tmp_path / "store"
    base = [
        "sweep",
        str(tiny_path),
        "--grid",
        "capacity.daily_cap=150,250",
        "-o",
        str(store),
        "--seed",
        "1",
    ]
    assert CliRunner().invoke(main, [*base, "-n", "2"]).exit_code == 0
    again = CliRunner().invoke(main, [*base, "-n", "2"])
    assert again.exit_code == 0  # same definition: nothing left to do
    for change in (["-n", "3"], ["-n", "2", "--set", "capacity.allocation=priority"]):
        refused = CliRunner().invoke(main, [*base, *change])
        assert refused.exit_code == 2, refused.output
        assert "holds a different sweep" in refused.output
        assert "--fresh" in refused.output
    other_values = CliRunner().invoke(
        main,
        [
            "sweep",
            str(tiny_path),
            "--grid",
            "capacity.daily_cap=150,300",
            "-o",
            str(store),
            "--seed",
            "1",
            "-n",
            "2",
        ],
    )
    assert other_values.exit_code == 2 and "grid" in other_values.output
    fresh = CliRunner().invoke(main, [*base, "-n", "3", "--fresh"])
    assert fresh.exit_code == 0, fresh.output
    assert (
        json.loads((store / "manifest.json").read_text())["definition"]["replications"]
        == 3
    )


def test_the_manifest_carries_the_resolved_base_scenario(tiny_path, tmp_path):
    """A sweep's numbers trace to what was swept: manifest.json holds the base
    scenario as resolved (--set applied), the one whose sha256 it records, and a
    store made before it held one gains it when the sweep is rerun."""
    store = tmp_path / "store"
    args = ["sweep", str(tiny_path), "--grid", "capacity.daily_cap=150,250"]
    args += ["--set", "horizon_days=20", "-n", "2", "--seed", "1", "-o", str(store)]
    assert CliRunner().invoke(main, args).exit_code == 0
    manifest = json.loads((store / "manifest.json").read_text())
    resolved = migsim.load_scenario(manifest["scenario"])
    assert resolved.horizon_days == 20
    assert resolved.sha256 == manifest["definition"]["scenario_sha256"]
    del manifest["scenario"]  # as an older migsim wrote it
    (store / "manifest.json").write_text(json.dumps(manifest))
    assert CliRunner().invoke(main, args).exit_code == 0
    again = json.loads((store / "manifest.json").read_text())
    assert migsim.load_scenario(again["scenario"]).sha256 == resolved.sha256


def test_store_that_is_not_a_sweep_is_refused(tiny_path, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "keep.txt").write_text("mine")
    result = CliRunner().invoke(
        main,
        ["sweep", str(tiny_path), "--grid", "capacity.daily_cap=150", "-o", str(store)],
    )
    assert result.exit_code == 2 and "not a sweep store" in result.output


def test_bad_chart_and_field_are_bad_input(tiny_path, tmp_path):
    args = ["sweep", str(tiny_path), "-o", str(tmp_path / "s")]
    for extra, message in (
        (["--grid", "capacity.daily_cap=1", "--chart", "nope_p50"], "not a figure"),
        (["--grid", "capacity.daily_cap=1", "--chart-x", "seed"], "not a swept field"),
        (["--grid", "capacity.nope=1"], "no such field"),
        (["--lhs", "3"], "--range"),
    ):
        result = CliRunner().invoke(main, [*args, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output
        assert "Traceback" not in result.output


def test_chart_by_the_chart_x_field_is_refused_before_the_store(tiny_path, tmp_path):
    """``--chart-by`` equal to ``--chart-x`` ran the whole sweep and drew one
    field against itself, a line a point."""
    from hostile import one_line_exit_2

    store = tmp_path / "s"
    grid = ["--grid", "capacity.daily_cap=100,200", "--grid", "capacity.dmin=1,2"]
    result = CliRunner().invoke(
        main,
        ["sweep", str(tiny_path), *grid, "-o", str(store), "--chart-x",
         "capacity.dmin", "--chart-by", "capacity.dmin"],
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        "Error: --chart-by capacity.dmin: the same field as --chart-x; give "
        "another swept field"
    )
    assert not store.exists()


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_files(tmp_path):
    """A sweep killed (SIGKILL) mid-way and rerun ends as one that never stopped."""
    scenario = str(ROOT / "scenarios" / "nov2019_epcl.yaml")
    grid = ["--grid", "capacity.daily_cap=800,1000,1200,1400,1600,1800"]
    args = ["sweep", scenario, *grid, "-n", "4", "--seed", "3", "-q"]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    process = subprocess.Popen(
        [sys.executable, "-m", "migsim.cli", *args, "-o", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    points = killed / "points"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if points.is_dir() and list(points.glob("[0-9]*.parquet")):
            break
        time.sleep(0.005)
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    finished_at_kill = sorted(p.name for p in points.glob("[0-9]*.parquet"))
    assert 1 <= len(finished_at_kill) < 6
    assert not (killed / "sweep.parquet").exists()
    assert (killed / LOCK).is_file()  # the killed sweep's: taken over below

    resumed = CliRunner().invoke(main, [*args, "-o", str(killed)])
    assert resumed.exit_code == 0, resumed.output
    assert CliRunner().invoke(main, [*args, "-o", str(whole)]).exit_code == 0
    for index in range(6):
        name = f"{index}.parquet"
        assert (points / name).read_bytes() == (whole / "points" / name).read_bytes()
    assert (killed / "sweep.parquet").read_bytes() == (
        whole / "sweep.parquet"
    ).read_bytes()
    table = read_sweep(killed)
    assert list(table["point"]) == list(range(6))
    assert (table["status"] == "done").all()
    assert not list(points.glob(".*"))  # no temporary file left behind
    manifest = json.loads((killed / "manifest.json").read_text())
    assert [p["status"] for p in manifest["points"]] == ["done"] * 6
    assert len(manifest["timings"]["runs"]) == 1  # the killed run never recorded one
    assert not (killed / LOCK).exists()


def test_a_second_sweep_on_a_store_in_use_is_refused(tiny_path, tmp_path):
    """Two sweeps on one store at once each wrote the manifest from its own
    copy: one invocation's timing entry (and its points' statuses) was lost.
    A sweep holds the store while it runs; a second one is refused, the store
    as it was; the lock goes with the sweep, even one that fails."""
    store = tmp_path / "store"
    args = ["sweep", str(tiny_path), "--grid", "capacity.daily_cap=100,200", "-n", "1"]
    args += ["-q", "-o", str(store)]
    store.mkdir()
    with held_elsewhere(store, "sweep") as holder:
        busy = CliRunner().invoke(main, args)
        assert (busy.exit_code, busy.stderr) == (
            2,
            f"Error: {store}: another sweep is writing this store (process "
            f"{holder.pid}); wait for it to end, or stop it (a stopped one "
            "resumes where it was)\n",
        )
        assert [p.name for p in store.iterdir()] == [LOCK]
    (store / "points").write_text("not a folder")  # the store fails as it opens
    assert CliRunner().invoke(main, args).exit_code != 0
    assert sorted(p.name for p in store.iterdir()) == ["points"]


def test_a_store_of_another_migsim_version_is_not_resumed(tiny_path, tmp_path):
    """A sweep's store recorded its version beside the definition, not in it:
    a newer migsim resumed an older store without a word, mixing points
    simulated by two versions (decide's store already refused it)."""
    store = tmp_path / "store"
    args = ["sweep", str(tiny_path), "--grid", "capacity.daily_cap=150,250"]
    args += ["-n", "2", "--seed", "1", "-o", str(store)]
    assert CliRunner().invoke(main, args).exit_code == 0
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["definition"]["migsim_version"] = "0.0.1"  # as an older one wrote it
    (store / "manifest.json").write_text(json.dumps(manifest))
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2, refused.output
    assert "migsim version" in refused.output and "--fresh" in refused.output


def test_a_store_of_another_sweep_is_refused_before_any_point_runs(
    tiny_path, tmp_path, monkeypatch
):
    """The refusal of a store of another definition comes before the points'
    workers are started, not after minutes of simulation."""
    import migsim.experiments.sweep as sweep_module

    store = tmp_path / "store"
    args = ["sweep", str(tiny_path), "--grid", "capacity.daily_cap=150,250"]
    args += ["--seed", "1", "-o", str(store)]
    assert CliRunner().invoke(main, [*args, "-n", "2"]).exit_code == 0
    before = (store / "manifest.json").read_bytes()

    def no_runs(*_args, **_kwargs):
        raise AssertionError("a point was run")

    monkeypatch.setattr(sweep_module, "executor", no_runs)
    refused = CliRunner().invoke(main, [*args, "-n", "3"])
    assert refused.exit_code == 2, refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert "holds a different sweep (differs in -n)" in refused.output
    assert (store / "manifest.json").read_bytes() == before


def test_a_resumed_sweep_names_the_code_of_each_point(tiny_path, tmp_path, monkeypatch):
    """Within one version the code may change between a kill and its rerun: the
    points computed before were credited to the new code without a word. Each
    point now carries the migsim_source_sha256 it was computed with, and a
    resume over points of other code says so in one line, once to this code."""
    import migsim.common.store as store_module
    import migsim.experiments.sweep as sweep_module
    from migsim.common.source import source_sha256

    store = tmp_path / "store"
    args = ["sweep", str(tiny_path), "--grid", "capacity.daily_cap=150,250"]
    args += ["-n", "2", "--seed", "1", "-q", "-o", str(store)]
    older = "0" * 64
    with monkeypatch.context() as patched:  # the code before an edit
        for module in (store_module, sweep_module):
            patched.setattr(module, "source_sha256", lambda: older, raising=False)
        assert CliRunner().invoke(main, args).exit_code == 0
    (store / "points" / "1.parquet").unlink()  # as if killed before point 1
    (store / "sweep.parquet").unlink()
    resumed = CliRunner().invoke(main, args)
    assert resumed.exit_code == 0, resumed.output
    warning = [line for line in resumed.stderr.splitlines() if line.strip()]
    assert warning == [
        f"{store}: 1 of 1 finished points were computed by other migsim source "
        "than this (migsim_source_sha256 differs or was not recorded); kept, each "
        "with its own in manifest.json; rerun with --fresh to compute them again "
        "with this code"
    ]
    points = json.loads((store / "manifest.json").read_text())["points"]
    assert [p["migsim_source_sha256"] for p in points] == [older, source_sha256()]
    again = CliRunner().invoke(main, args)  # told once: not again to this code
    assert again.exit_code == 0 and again.stderr == ""
    points = json.loads((store / "manifest.json").read_text())["points"]
    assert [p["migsim_source_sha256"] for p in points] == [older, source_sha256()]
    fresh = CliRunner().invoke(main, [*args, "--fresh"])
    assert fresh.exit_code == 0 and fresh.stderr == ""
    points = json.loads((store / "manifest.json").read_text())["points"]
    assert [p["migsim_source_sha256"] for p in points] == [source_sha256()] * 2
