"""Runner and results at scale: streamed daily rows, batches, workers, Dask."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import local_cluster

import migsim
from migsim.cli.main import main
from migsim.common.errors import MigsimError
from migsim.results.results import Results
from migsim.runner.runner import default_batch_size, run_batch
from migsim.sim.block import MIN_BLOCK

TINY = {
    "name": "tiny_scale",
    "start_date": "2020-01-06",
    "horizon_days": 40,
    "capacity": {"daily_cap": 300},
    "cohorts": [
        {
            "name": "alpha",
            "installations": 3000,
            "mode": "active",
            "outcomes": {
                "success": 0.9,
                "stall": 0.06,
                "rollback": 0.03,
                "fix_forward": 0.005,
                "dumb": 0.005,
            },
            "stall": {
                "resolves_after_days": {"dist": "uniform", "low": 1, "high": 4},
                "then_success": 0.7,
            },
            "rollback": {
                "retry_after_days": {
                    "dist": "triangular",
                    "low": 2,
                    "mode": 3,
                    "high": 6,
                }
            },
            "fix_forward": {"restored_after_days": {"dist": "fixed", "days": 2}},
        },
        {
            "name": "beta",
            "installations": 2000,
            "mode": "dormant",
            "eligible_from": "2020-01-13",
            "max_attempts": 2,
            "outcomes": {
                "success": 0.8,
                "stall": 0.0,
                "rollback": 0.2,
                "fix_forward": 0.0,
                "dumb": 0.0,
            },
            "rollback": {"retry_after_days": {"dist": "fixed", "days": 3}},
        },
    ],
}


@pytest.fixture(scope="module")
def tiny():
    return migsim.load_scenario(TINY)


def test_streamed_daily_equals_in_memory_daily(tiny):
    streamed = migsim.run(tiny, replications=7, seed=5, batch_size=3)
    seeded = tiny.with_overrides({"seed": 5})  # a run records the seed it used
    in_memory = Results(seeded, 5, run_batch(seeded, 5, list(range(7))))
    assert streamed.daily_path is not None and streamed.daily_path.exists()
    pd.testing.assert_frame_equal(streamed.daily, in_memory.daily)
    # read raw, text day columns (cap_rule, ...) are categories in the order
    # their row groups met them; Results.daily sorts them as the in-memory frame
    pd.testing.assert_frame_equal(
        pd.read_parquet(streamed.daily_path), in_memory.daily, check_categorical=False
    )
    pd.testing.assert_frame_equal(streamed.replications, in_memory.replications)
    pd.testing.assert_frame_equal(
        streamed.cohort_replications, in_memory.cohort_replications
    )
    for series in ("remaining", "cumulative_migrated", "attempts", "stalled"):
        for cohort in (None, "alpha", "beta"):
            pd.testing.assert_frame_equal(
                streamed.bands(series, cohort, (0.05, 0.5, 0.8, 1.0)),
                in_memory.bands(series, cohort, (0.05, 0.5, 0.8, 1.0)),
            )
    np.testing.assert_array_equal(
        streamed.stacked("queued"), in_memory.stacked("queued")
    )
    summary = dict(streamed.summary, timing=None)
    assert summary == dict(in_memory.summary, timing=None)


def test_bands_are_exact_type1_quantiles_of_the_file(tiny):
    results = migsim.run(tiny, replications=9, seed=1, batch_size=2)
    daily = results.daily
    remaining = (
        daily[["pending", "queued", "stalled", "rolled_back", "impaired"]]
        .sum(axis=1)
        .groupby([daily["replication"], daily["date"]])
        .sum()
        .unstack("date")
        .to_numpy()
    )
    bands = results.bands("remaining", None, (0.1, 0.5, 0.9))
    ordered = np.sort(remaining, axis=0)
    # type 1 with n = 9: q=0.1 -> 1st, 0.5 -> 5th, 0.9 -> 9th smallest
    np.testing.assert_array_equal(bands["p10"], ordered[0])
    np.testing.assert_array_equal(bands["p50"], ordered[4])
    np.testing.assert_array_equal(bands["p90"], ordered[8])


@pytest.mark.slow
def test_results_do_not_depend_on_workers_or_batch_size(tiny):
    one = migsim.run(tiny, replications=6, seed=2, workers=1)
    two = migsim.run(tiny, replications=6, seed=2, workers=2, batch_size=1)
    odd = migsim.run(tiny, replications=6, seed=2, workers=2, batch_size=4)
    for other in (two, odd):
        pd.testing.assert_frame_equal(one.daily, other.daily)
        pd.testing.assert_frame_equal(one.replications, other.replications)
    # same batch size, any worker count: the very same bytes
    same = migsim.run(tiny, replications=6, seed=2, workers=2)
    assert one.daily_path.read_bytes() == same.daily_path.read_bytes()


def test_continued_numbering_equals_one_run(tiny):
    whole = migsim.run(tiny, replications=4, seed=9)
    tail = migsim.run(tiny, replications=2, seed=9, first_replication=2)
    expected = whole.daily[whole.daily["replication"] >= 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(tail.daily, expected)


def test_batch_size_bounds_rows_and_ignores_workers(tiny):
    fleet = migsim.load_scenario("scenarios/smets1_full_fleet.yaml")
    # batches run as blocks: larger, bounded by rows (a quarter over, to even
    # them out), never too small for a block, and in a multiple of 4 equal
    # batches, so 2 or 4 workers get the same work
    assert default_batch_size(fleet, 10_000) == 25  # 400 batches, not 417
    assert default_batch_size(fleet, 100) == 25  # 4, not 24 + 24 + 24 + 24 + 4
    assert default_batch_size(tiny, 1) == 1
    assert default_batch_size(tiny, 160) == 40
    ops = migsim.load_scenario("scenarios/nov2019_operations.yaml")
    rows_bound = 50_000 // (ops.horizon_days * 2)
    for count in (97, 999, 1_000, 10_000, 12_345):
        size = default_batch_size(ops, count)
        batches = -(-count // size)
        assert MIN_BLOCK <= size <= rows_bound * 5 // 4
        if batches <= 16:  # few batches: 4, 8, ... of them, the last not short
            assert batches % 4 == 0
            assert count - (batches - 1) * size > size // 2


def test_logs_of_a_streamed_run_are_re_simulated_exactly(tiny):
    streamed = migsim.run(tiny, replications=3, seed=6, first_replication=2)
    direct = run_batch(tiny, 6, [2, 3, 4])
    for log, expected in zip(streamed.logs, direct, strict=True):
        assert log.replication == expected.replication
        assert log.clearance_day == expected.clearance_day
        for name, values in expected.cohort_columns.items():
            np.testing.assert_array_equal(log.cohort_columns[name], values)


def test_no_daily_keeps_figures_only(tiny, tmp_path):
    results = migsim.run(tiny, replications=3, seed=0, daily=False)
    assert results.daily_path is None and not results.has_daily
    assert len(results.replications) == 3
    with pytest.raises(MigsimError, match="no daily rows"):
        results.daily  # noqa: B018
    with pytest.raises(MigsimError):
        results.backlog_bands()
    written = results.write(tmp_path / "out")
    assert not (written / "daily.parquet").exists()
    assert (written / "summary.json").exists()


def test_spill_file_removed_with_results(tiny):
    results = migsim.run(tiny, replications=2, seed=0)
    spill = results.daily_path
    held = os.stat(spill)
    assert held.st_size > 0
    del results
    import gc

    gc.collect()
    # gone: no file by that path, or (a number reused) not the same file
    assert not spill.exists() or os.stat(spill).st_ino != held.st_ino


def test_a_nameless_spill_file_leaves_no_folder_and_links_into_outputs(tiny, tmp_path):
    (tmp_path / "spill").mkdir()
    results = migsim.run(tiny, replications=3, seed=0, spill_dir=tmp_path / "spill")
    assert list((tmp_path / "spill").iterdir()) == []  # no name while it runs
    written = results.write(tmp_path / "out") / "daily.parquet"
    assert os.stat(written).st_nlink == 1  # its one name
    del results
    import gc

    gc.collect()
    assert pd.read_parquet(written)["replication"].nunique() == 3


def test_without_nameless_files_the_spill_is_a_private_folder(
    tiny, tmp_path, monkeypatch
):
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)  # as on macOS
    results = migsim.run(tiny, replications=2, seed=0, spill_dir=tmp_path)
    folder = results.daily_path.parent
    assert folder.name.startswith("migsim-daily-") and folder.exists()
    # private: in the folder asked for, only this user may enter it, and it
    # holds the run's rows
    assert folder.parent == tmp_path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in folder.iterdir()] == ["daily.parquet"]
    assert pd.read_parquet(results.daily_path)["replication"].nunique() == 2
    del results
    import gc

    gc.collect()
    assert not folder.exists()


def test_write_links_the_streamed_file(tiny, tmp_path):
    results = migsim.run(tiny, replications=3, seed=0, spill_dir=tmp_path)
    target = results.write(tmp_path / "out")
    written = target / "daily.parquet"
    assert written.read_bytes() == results.daily_path.read_bytes()
    assert os.stat(written).st_ino == os.stat(results.daily_path).st_ino  # a hard link
    pd.testing.assert_frame_equal(
        pd.read_parquet(written), results.daily, check_categorical=False
    )


@pytest.mark.slow
def test_cli_run_writes_streamed_outputs_quietly(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(TINY))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["run", str(path), "-n", "3", "--seed", "1", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "rep/s" not in result.output  # no progress bar off a terminal
    assert {p.name for p in out.iterdir()} >= {
        "daily.parquet",
        "backlog.png",
        "summary.json",
        "replications.csv",
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("migsim-daily")]
    no_daily = tmp_path / "run2"
    result = CliRunner().invoke(
        main, ["run", str(path), "-n", "3", "-o", str(no_daily), "--no-daily", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert not (no_daily / "daily.parquet").exists()
    assert (no_daily / "backlog.png").exists()


@pytest.mark.slow
def test_dask_local_cluster_gives_local_results(tiny, tmp_path):
    with local_cluster(
        tmp_path, n_workers=2, threads_per_worker=1, protocol="tcp"
    ) as cluster:
        address = cluster.scheduler_address
        remote = migsim.run(
            tiny, replications=5, seed=4, scheduler=address, batch_size=2
        )
        local = migsim.run(tiny, replications=5, seed=4)
        pd.testing.assert_frame_equal(remote.daily, local.daily)
        pd.testing.assert_frame_equal(remote.replications, local.replications)
        assert remote.timing["scheduler"] == address
        path = tmp_path / "tiny.yaml"
        path.write_text(json.dumps(TINY))
        args = [
            "sweep",
            str(path),
            "--grid",
            "capacity.daily_cap=200,400",
            "-n",
            "3",
            "--seed",
            "1",
            "-q",
        ]
        on_cluster = CliRunner().invoke(
            main, [*args, "-o", str(tmp_path / "dask"), "--scheduler", address]
        )
        assert on_cluster.exit_code == 0, on_cluster.output
    on_processes = CliRunner().invoke(
        main, [*args, "-o", str(tmp_path / "local"), "-j", "2"]
    )
    assert on_processes.exit_code == 0, on_processes.output
    assert (tmp_path / "dask" / "sweep.parquet").read_bytes() == (
        tmp_path / "local" / "sweep.parquet"
    ).read_bytes()


@pytest.mark.slow
def test_unreachable_scheduler_is_bad_input(tiny, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("migsim.runner.runner.CONNECT_TIMEOUT", 1)
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(TINY))
    result = CliRunner().invoke(
        main, ["run", str(path), "-n", "1", "--scheduler", "tcp://127.0.0.1:1"]
    )
    assert result.exit_code == 2
    assert "cannot connect" in result.output


def test_combined_streamed_runs_equal_one_run(tiny):
    whole = migsim.run(tiny, replications=6, seed=7, batch_size=2)
    parts = [
        migsim.run(tiny, replications=2, seed=7, first_replication=4),
        migsim.run(tiny, replications=4, seed=7, first_replication=0, batch_size=3),
    ]
    combined = Results.combine(parts)
    pd.testing.assert_frame_equal(combined.daily, whole.daily)
    pd.testing.assert_frame_equal(combined.replications, whole.replications)
    pd.testing.assert_frame_equal(combined.backlog_bands(), whole.backlog_bands())
    assert combined.timing["batches"] == 2
    in_memory = Results.combine(
        [
            Results(tiny, 7, run_batch(tiny, 7, [0, 1])),
            Results(tiny, 7, run_batch(tiny, 7, [2])),
        ]
    )
    pd.testing.assert_frame_equal(
        in_memory.daily, whole.daily[whole.daily.replication < 3]
    )
    with pytest.raises(ValueError, match="share a replication"):
        Results.combine([parts[0], parts[0]])
    with pytest.raises(ValueError, match="one scenario and seed"):
        Results.combine([parts[0], migsim.run(tiny, replications=1, seed=8)])


def test_saved_run_bands_equal_results_bands(tiny, tmp_path):
    from migsim.results.rundir import load_run

    results = migsim.run(tiny, replications=5, seed=3, batch_size=2)
    saved = load_run(results.write(tmp_path / "run"))
    for series in ("remaining", "cumulative_migrated", "daily_cap"):
        for cohort in (None, "beta"):
            pd.testing.assert_frame_equal(
                saved.bands(series, cohort), results.bands(series, cohort)
            )
