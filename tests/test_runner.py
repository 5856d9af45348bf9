"""Runner: seeded replications are reproducible whatever the batch or worker count,
and the model responds to capacity in the right direction."""

from __future__ import annotations

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
