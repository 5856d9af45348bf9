"""How a study's replications are cut into bundles for the workers, and what
a decision prepares before they start.

A decision judges after every batch (a look), so each look waits for its
slowest worker: bundles shrink towards the end of a batch so the workers finish
together. Whatever the cut, every job's figures are those of its replications
in order, the same as simulating them in one go.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import cohort, outcomes, scenario

from migsim.common import stats
from migsim.experiments.question import BudgetSpec
from migsim.experiments.search import Looks
from migsim.experiments.study import (
    BLOCK_SHARE,
    MIN_BUNDLE,
    Simulator,
    _bundles,
    block_sizes,
    bundle_sizes,
    replication_figures,
)
from migsim.model.scenario import load_scenario
from migsim.results.results import FIGURES, Results
from migsim.sim import block
from migsim.sim.engine import run_replication


@pytest.mark.parametrize(
    ("total", "workers"),
    [(1, 2), (3, 2), (7, 4), (50, 1), (50, 2), (300, 2), (1000, 4)],
)
def test_bundles_cover_the_batch_and_shrink_towards_its_end(total, workers):
    sizes = bundle_sizes(total, workers)
    assert sum(sizes) == total
    assert sizes == sorted(sizes, reverse=True)
    assert len(sizes) >= min(total, workers)  # every worker gets some
    floor = min(MIN_BUNDLE, -(-total // workers))
    assert all(size >= floor for size in sizes[:-1])
    # the last bundles are small, so no worker waits long for another's
    assert sizes[-1] <= max(floor, -(-total // (2 * workers)))


@pytest.mark.parametrize(
    ("total", "workers"), [(1, 2), (3, 2), (50, 1), (50, 2), (300, 2), (800, 2)]
)
def test_blocks_are_equal_shares_one_per_worker_up_to_the_largest_block(total, workers):
    sizes = block_sizes(total, workers)
    assert sum(sizes) == total
    assert max(sizes) - min(sizes) <= 1
    assert max(sizes) <= BLOCK_SHARE <= block.MAX_BLOCK
    assert len(sizes) % workers == 0 or len(sizes) == total
    if total <= workers * BLOCK_SHARE:
        assert len(sizes) == min(total, workers)


def test_bundles_reach_across_jobs_in_replication_order():
    jobs = [("a", 0, 0, 5), ("b", 0, 10, 7)]
    bundles = _bundles(jobs, [4, 5, 3], None)
    laid = [(index, task[0], task[2]) for bundle in bundles for index, task in bundle]
    assert laid == [
        (0, "a", [0, 1, 2, 3]),
        (0, "a", [4]),
        (1, "b", [10, 11, 12, 13]),
        (1, "b", [14, 15, 16]),
    ]
    assert [sum(len(task[2]) for _, task in bundle) for bundle in bundles] == [4, 5, 3]


def _two_scenarios():
    base = scenario(
        cohort("c", 300, mode="active", rates=outcomes(success=0.8, stall=0.2)),
        cap=40,
        horizon_days=20,
    )
    low = load_scenario(base)
    return low, low.with_overrides({"capacity.daily_cap": 70})


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    "counts",
    [
        [(0, 9), (3, 14), (9, 2)],  # too few for blocks: one at a time
        [(0, 30), (3, 26)],  # shares of 28 run as blocks, a job's tail alone
    ],
)
def test_simulated_jobs_equal_their_replications_run_in_one_go(workers, counts):
    low, high = _two_scenarios()
    jobs = [
        (low if i % 2 == 0 else high, 5, first, n)
        for i, (first, n) in enumerate(counts)
    ]
    total = sum(n for _, n in counts)
    progress: list[tuple[int, int]] = []
    with Simulator(workers) as simulator:
        frames = simulator.run(jobs, progress=lambda *a: progress.append(a))
    for (sc, seed, first, n), frame in zip(jobs, frames, strict=True):
        direct = replication_figures(sc, seed, range(first, first + n))
        pd.testing.assert_frame_equal(frame, direct)
    assert progress[0] == (0, total) and progress[-1] == (total, total)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


def test_looks_find_their_bounds_ready_after_prepare():
    budgets = [
        BudgetSpec(figure="peak_els_backlog", statistic="p90", max=1500),
        BudgetSpec(figure="dumb", exceeds=100, max_probability=0.05),
    ]
    looks = Looks(0.95, 200, 800)
    looks.prepare(budgets)
    before = stats._order_ranks.cache_info()
    for n in (looks.screen, *looks.sizes):
        frame = pd.DataFrame({"peak_els_backlog": range(n), "dumb": range(n)})
        looks.next(frame, budgets)
    after = stats._order_ranks.cache_info()
    assert after.misses == before.misses  # every look's ranks were made up front
    assert after.hits > before.hits


def test_figures_on_blocks_are_the_scalar_engines(monkeypatch):
    low, _ = _two_scenarios()
    assert block.supports(low) is None
    ran: list[list[int]] = []
    real = block.run_blocks

    def spy(scenario, seed, replications, twin=0):
        ran.append(list(replications))
        return real(scenario, seed, replications, twin)

    monkeypatch.setattr("migsim.experiments.study.run_blocks", spy)
    ids = list(range(4, 4 + block.MIN_BLOCK))
    frame = replication_figures(low, 7, ids)
    assert ran == [ids]  # one block
    scalar = Results(low, 7, [run_replication(low, 7, k) for k in ids])
    assert frame["replication"].tolist() == ids
    for name in FIGURES:
        assert frame[name].tolist() == scalar.figure(name).tolist(), name
    few = ids[: block.MIN_KERNEL_BLOCK - 1]  # too few to be worth a block
    assert replication_figures(low, 7, few)["replication"].tolist() == few
    assert ran == [ids]


def test_a_block_that_fails_is_run_one_replication_at_a_time(monkeypatch):
    low, _ = _two_scenarios()

    def broken(*args, **kwargs):
        raise RuntimeError("a section the block cannot run")

    monkeypatch.setattr("migsim.experiments.study.run_blocks", broken)
    ids = range(block.MIN_BLOCK)
    frame = replication_figures(low, 7, ids)
    scalar = Results(low, 7, [run_replication(low, 7, k) for k in ids])
    assert frame["clearance_day"].tolist() == scalar.figure("clearance_day").tolist()
