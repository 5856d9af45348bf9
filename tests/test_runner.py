"""Runner: seeded replications are reproducible whatever the batch or worker count,
and the model responds to capacity in the right direction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import cohort, day, lognormal, outcomes, scenario, triangular, uniform

import migsim
from migsim.results.results import statistics
from migsim.sim.records import FLOWS, STATES
from migsim.sim.streams import replication_seed

RATES = outcomes(success=0.9, stall=0.06, rollback=0.02, fix_forward=0.015, dumb=0.005)


def _noisy(name: str, installations: int, **kw) -> dict:
    return cohort(
        name,
        installations,
        rates=RATES,
        stall={"resolves_after_days": uniform(2, 6), "then_success": 0.7},
        rollback={"retry_after_days": triangular(2, 4, 9)},
        fix_forward={"restored_after_days": lognormal(2, 0.4)},
        **kw,
    )


@pytest.fixture
def two_cohorts() -> dict:
    return scenario(
        _noisy("a", 3000, mode="active"),
        _noisy("b", 2000, eligible_from=day(4)),
        cap=400,
        horizon_days=50,
        closures=[day(10)],
    )


def test_same_seed_gives_an_identical_daily_frame(two_cohorts):
    a = migsim.run(two_cohorts, replications=4, seed=11)
    b = migsim.run(two_cohorts, replications=4, seed=11)
    pd.testing.assert_frame_equal(a.daily, b.daily)
    pd.testing.assert_frame_equal(a.replications, b.replications)


def test_the_scenario_seed_is_the_default(two_cohorts):
    two_cohorts["seed"] = 11
    a = migsim.run(two_cohorts, replications=2)
    b = migsim.run(two_cohorts, replications=2, seed=11)
    assert a.seed == 11
    pd.testing.assert_frame_equal(a.daily, b.daily)


def test_different_seeds_differ(two_cohorts):
    a = migsim.run(two_cohorts, replications=2, seed=1).daily
    b = migsim.run(two_cohorts, replications=2, seed=2).daily
    assert not a[list(FLOWS)].equals(b[list(FLOWS)])


def test_replications_differ_from_each_other(two_cohorts):
    daily = migsim.run(two_cohorts, replications=2, seed=1).daily
    first, second = (
        daily[daily.replication == k][list(STATES)].to_numpy() for k in (0, 1)
    )
    assert not np.array_equal(first, second)


def test_one_and_two_workers_give_identical_results(two_cohorts):
    a = migsim.run(two_cohorts, replications=6, seed=5, workers=1)
    b = migsim.run(two_cohorts, replications=6, seed=5, workers=2)
    pd.testing.assert_frame_equal(a.daily, b.daily)
    pd.testing.assert_frame_equal(a.replications, b.replications)
    assert b.replications["replication"].tolist() == list(range(6))


def test_a_pool_starts_at_most_a_few_processes_per_core(two_cohorts, monkeypatch):
    """``-j 10000`` asked a decision's pool for ten thousand processes, which it
    forked at its first call on a two-core machine (and held Ctrl-C and kill
    until they had all started). A pool starts at most `PER_CORE` per core; the
    results are those of any worker count."""
    import os

    from migsim.experiments.study import Simulator
    from migsim.runner.runner import PER_CORE, executor

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    sc = migsim.load_scenario(two_cohorts)
    with executor(10_000) as pool:
        assert pool.workers == 2 * PER_CORE
    with Simulator(10_000) as simulator:
        assert simulator.workers == 2 * PER_CORE
        many = simulator.run([(sc, 5, 0, 6)])
    with Simulator(1) as simulator:
        one = simulator.run([(sc, 5, 0, 6)])
    pd.testing.assert_frame_equal(many[0], one[0])
    with executor(3) as pool:  # a count within the limit is as asked
        assert pool.workers == 3


def test_replication_k_is_the_same_alone_or_in_a_batch(two_cohorts):
    batch = migsim.run(two_cohorts, replications=5, seed=3)
    alone = migsim.run(two_cohorts, replications=1, seed=3, first_replication=3)
    pd.testing.assert_frame_equal(
        batch.daily[batch.daily.replication == 3].reset_index(drop=True), alone.daily
    )
    later = migsim.run(two_cohorts, replications=2, seed=3, first_replication=3)
    pd.testing.assert_frame_equal(
        batch.replications.iloc[3:].reset_index(drop=True), later.replications
    )


@pytest.mark.parametrize("allocation", ["pro_rata", "priority"])
def test_adding_a_cohort_leaves_another_cohorts_draws_unchanged(allocation):
    """With a cap that never binds (pro_rata), or the new cohort last in priority
    order, cohort ``a`` sees exactly the same numbers."""
    cap = 10_000 if allocation == "pro_rata" else 300
    alone = scenario(_noisy("a", 3000), cap=cap, allocation=allocation, horizon_days=50)
    both = scenario(
        _noisy("a", 3000),
        _noisy("b", 2000),
        cap=cap,
        allocation=allocation,
        horizon_days=50,
    )
    a = migsim.run(alone, replications=3, seed=8).daily
    b = migsim.run(both, replications=3, seed=8).daily
    b = b[b.cohort == "a"].reset_index(drop=True)
    b["cohort"] = b["cohort"].cat.remove_unused_categories()
    pd.testing.assert_frame_equal(a, b)


def test_a_cohort_keeps_its_draws_whatever_its_position():
    first = scenario(_noisy("a", 1000), _noisy("b", 1000), cap=10_000, horizon_days=40)
    second = scenario(_noisy("b", 1000), _noisy("a", 1000), cap=10_000, horizon_days=40)
    a = migsim.run(first, replications=2, seed=4).daily
    b = migsim.run(second, replications=2, seed=4).daily
    columns = list(STATES) + list(FLOWS)
    for name in ("a", "b"):
        assert np.array_equal(
            a[a.cohort == name][columns].to_numpy(),
            b[b.cohort == name][columns].to_numpy(),
        )


def test_bad_run_arguments_are_rejected(two_cohorts):
    with pytest.raises(ValueError):
        migsim.run(two_cohorts, replications=0)
    with pytest.raises(ValueError):
        migsim.run(two_cohorts, replications=1, workers=0)


def test_run_accepts_a_path():
    from conftest import VALIDATION

    results = migsim.run(VALIDATION, replications=2)
    assert results.scenario.name == "itron_dormant_2019"
    assert results.seed == results.scenario.seed


def test_raising_the_cap_never_clears_later_under_common_seeds():
    """Mean and quantiles of the clearance day over 30 common-seed replications do
    not rise with the cap (1,000 -> 2,000 -> 4,000), and fall from 1,000 to 2,000."""
    base = scenario(
        _noisy("a", 12_000, mode="active"),
        _noisy("b", 10_000),
        horizon_days=80,
        closures=[day(3), day(17)],
    )
    stats = {}
    for cap in (1000, 2000, 4000):
        base["capacity"]["daily_cap"] = cap
        days = migsim.run(base, replications=30, seed=0).clearance_days()
        assert np.isfinite(days).all(), cap
        stats[cap] = statistics(days)
    for low, high in ((1000, 2000), (2000, 4000)):
        for name in ("mean", "p10", "p50", "p90"):
            assert stats[high][name] <= stats[low][name], (low, high, name)
    assert stats[2000]["mean"] < stats[1000]["mean"] - 10
    assert stats[4000]["mean"] < stats[2000]["mean"]


@pytest.mark.parametrize(("seed", "k"), [(0, 0), (0, 7), (20191113, 3)])
def test_replication_k_draws_from_the_kth_child_of_the_run_seed(seed, k):
    child = np.random.SeedSequence(seed).spawn(k + 1)[k]
    ours = replication_seed(seed, k)
    assert ours.entropy == child.entropy and ours.spawn_key == child.spawn_key
    assert np.array_equal(ours.generate_state(4), child.generate_state(4))


# --------------------------------------------------------------------------- failures
def _fail_on(monkeypatch, bad: int) -> None:
    """Make replication ``bad`` raise; every other replication runs as usual."""
    import migsim.runner.runner as runner

    real = runner.run_replication
    real_blocks = runner.run_blocks_with_twins

    def flaky(scenario, seed, k):
        if k == bad:
            raise ZeroDivisionError(f"injected in replication {k}")
        return real(scenario, seed, k)

    def flaky_blocks(scenario, seed, ids, twinned):
        # a block cannot say which of its replications failed: the runner
        # falls back to one at a time, which does
        if bad in ids:
            raise ZeroDivisionError("injected in a block")
        return real_blocks(scenario, seed, ids, twinned)

    monkeypatch.setattr(runner, "run_replication", flaky)
    monkeypatch.setattr(runner, "run_blocks_with_twins", flaky_blocks)


def test_a_failing_replication_is_recorded_and_the_run_goes_on(
    two_cohorts, monkeypatch, tmp_path
):
    clean = migsim.run(two_cohorts, replications=6, seed=5, batch_size=2)
    _fail_on(monkeypatch, 3)
    broken = migsim.run(two_cohorts, replications=6, seed=5, batch_size=2)
    assert [f.replication for f in broken.failures] == [3]
    failure = broken.failures[0]
    assert failure.seed == 5
    assert failure.error == "ZeroDivisionError: injected in replication 3"
    assert "flaky" in failure.traceback
    # the others are exactly the replications of a clean run
    assert broken.replication_ids.tolist() == [0, 1, 2, 4, 5]
    kept = clean.replications[clean.replications["replication"] != 3]
    pd.testing.assert_frame_equal(
        broken.replications, kept.reset_index(drop=True), check_dtype=False
    )
    daily = clean.daily[clean.daily["replication"] != 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(broken.daily, daily, check_categorical=False)
    # never a result that looks complete
    assert "failures" not in clean.summary
    assert broken.summary["failures"] == {
        "requested": 6,
        "failed": 1,
        "replications": [
            {"replication": 3, "seed": 5, "error": failure.error},
        ],
    }
    assert broken.summary["replications"] == 5
    out = broken.write(tmp_path / "out")
    record = json.loads((out / "failures.json").read_text())
    assert (
        record[0]["replication"] == 3 and "ZeroDivisionError" in record[0]["traceback"]
    )
    assert not (clean.write(tmp_path / "clean") / "failures.json").exists()


@pytest.mark.parametrize("bad", [0, 2])
def test_a_batch_that_lost_every_replication_leaves_the_others_as_they_were(
    two_cohorts, monkeypatch, bad
):
    """Results never depend on the batch size, failures included: batches of one
    where one replication fails keep the others' figures and input draws as
    batches of two do (an emptied batch first lost every input column, and in
    the middle stopped the run)."""
    uncertain = {
        **two_cohorts,
        "meters_per_installation": 1.6,
        "meters_per_installation_range": {
            "dist": "triangular",
            "low": 1.4,
            "high": 1.9,
        },
    }
    _fail_on(monkeypatch, bad)
    ones = migsim.run(uncertain, replications=4, seed=5, batch_size=1)
    pairs = migsim.run(uncertain, replications=4, seed=5, batch_size=2)
    assert [f.replication for f in ones.failures] == [bad]
    assert ones.replication_ids.tolist() == [k for k in range(4) if k != bad]
    pd.testing.assert_frame_equal(ones.replications, pairs.replications)
    assert "meters_per_installation" in ones.inputs.columns
    pd.testing.assert_frame_equal(ones.inputs, pairs.inputs)


def test_a_run_folder_with_failures_is_named_incomplete_when_read_back(
    two_cohorts, monkeypatch, tmp_path
):
    """A run that lost replications is written (exit 3) but never read back as
    a whole run (a report or comparison of it would pair and count the wrong
    replications): the folder is refused as incomplete, saying how many failed,
    not as tables that disagree with their summary."""
    from migsim.common.errors import MigsimError
    from migsim.results.rundir import load_run

    _fail_on(monkeypatch, 1)
    out = migsim.run(two_cohorts, replications=4, seed=5).write(tmp_path / "run")
    with pytest.raises(MigsimError) as caught:
        load_run(out)
    message = str(caught.value)
    assert "incomplete" in message and "1 of 4 replications failed" in message
    assert "failures.json" in message


def test_fail_fast_stops_at_the_first_failure(two_cohorts, monkeypatch):
    from migsim.runner.runner import ReplicationFailed

    _fail_on(monkeypatch, 1)
    with pytest.raises(ReplicationFailed, match="replication 1 .seed 5.") as info:
        migsim.run(two_cohorts, replications=4, seed=5, fail_fast=True)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.failure.replication == 1


def test_a_run_where_every_replication_fails_raises(two_cohorts, monkeypatch):
    from migsim.runner.runner import ReplicationFailed

    _fail_on(monkeypatch, 0)
    with pytest.raises(ReplicationFailed):
        migsim.run(two_cohorts, replications=1, seed=5)


@pytest.mark.slow
def test_the_cli_run_with_a_failure_writes_what_succeeded_and_exits_3(
    two_cohorts, monkeypatch, tmp_path
):
    from click.testing import CliRunner

    from migsim.cli.main import main

    path = tmp_path / "two.yaml"
    path.write_text(json.dumps(two_cohorts))
    clean_dir, broken_dir = tmp_path / "clean", tmp_path / "broken"
    args = ["run", str(path), "-n", "5", "--seed", "2", "-q"]
    assert CliRunner().invoke(main, [*args, "-o", str(clean_dir)]).exit_code == 0
    _fail_on(monkeypatch, 2)
    result = CliRunner().invoke(main, [*args, "-o", str(broken_dir)])
    assert result.exit_code == 3, result.output
    assert "INCOMPLETE: 1 of 5 replications failed" in result.output
    assert "replication 2 (seed 2): ZeroDivisionError" in result.output
    summary = json.loads((broken_dir / "summary.json").read_text())
    assert summary["failures"]["failed"] == 1 and summary["replications"] == 4
    assert json.loads((broken_dir / "failures.json").read_text())[0]["seed"] == 2
    clean = pd.read_csv(clean_dir / "replications.csv")
    broken = pd.read_csv(broken_dir / "replications.csv")
    pd.testing.assert_frame_equal(
        broken, clean[clean["replication"] != 2].reset_index(drop=True)
    )
    assert (broken_dir / "backlog.png").exists()
    stopped = CliRunner().invoke(
        main, [*args, "-o", str(tmp_path / "stopped"), "--fail-fast"]
    )
    assert stopped.exit_code == 1
    assert "replication 2 (seed 2) failed" in str(stopped.exception)
    assert not (tmp_path / "stopped").exists()


def test_failures_survive_combining_batches(two_cohorts, monkeypatch):
    _fail_on(monkeypatch, 4)
    first = migsim.run(two_cohorts, replications=3, seed=5)
    second = migsim.run(two_cohorts, replications=3, seed=5, first_replication=3)
    whole = migsim.Results.combine([first, second])
    assert [f.replication for f in whole.failures] == [4]
    assert whole.replication_ids.tolist() == [0, 1, 2, 3, 5]
    assert whole.summary["failures"]["requested"] == 6
