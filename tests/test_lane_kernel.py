"""The block engine's numba kernels give exactly the numpy passes' numbers.

`lane_kernel.KernelColumn` reads each replication's per-unit stream with its own
Philox (numpy's stream, word for word) and counts failing attempts into their
cells in one pass; the numpy path takes the uniforms from numpy's generators and
finds the cells with `CellTable`. Every uniform, count, hit and run log must be
the same on either path, and a small run must not load numba at all.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import cohort, load, outcomes, scenario, uniform
from conftest import day as nth_day
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_block import assert_same, scenarios_with_defects, scenarios_with_sections

import migsim
from migsim.sim import lane_kernel
from migsim.sim.allocation import share_pro_rata_rows
from migsim.sim.block import run_block
from migsim.sim.lane_queues import UNIT, CellTable, Column, Ready, edge_keys

# numba installed but the kernels failing to load or compile is a failure
# (`test_the_kernels_load`), not a skip: the path tests would compare nothing
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="no numba"
)

QUICK = settings(
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
#: counter words near a carry, and anywhere
WORDS = st.sampled_from([0, 1, 2**64 - 2, 2**64 - 1]) | st.integers(0, 2**64 - 1)
#: a defect's imposed outcome (a failure: stall, rollback, fix forward, dumb), or
#: -1: not hit
IMPOSED = st.sampled_from([-1, -1, 1, 2, 3, 4])


def _generators(seeds, counters, read) -> list[np.random.Generator]:
    made = []
    for seed, counter, k in zip(seeds, counters, read, strict=True):
        bits = np.random.Philox(seed, counter=np.array(counter, dtype=np.uint64))
        generator = np.random.Generator(bits)
        generator.random(k)  # part of a block of four words already read
        made.append(generator)
    return made


@st.composite
def streams(draw, most: int = 5):
    n = draw(st.integers(1, most))
    seeds = draw(st.lists(st.integers(0, 2**63), min_size=n, max_size=n))
    counters = draw(
        st.lists(st.tuples(WORDS, WORDS, WORDS, WORDS), min_size=n, max_size=n)
    )
    read = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    return seeds, counters, read


def _takes(draw, n: int, most: int = 40):
    """A few (reps, counts) reads: replications in order, some left out."""
    takes = []
    for _ in range(draw(st.integers(1, 4))):
        counts = np.array(draw(st.lists(st.integers(0, most), min_size=n, max_size=n)))
        reps = np.flatnonzero(counts)
        if len(reps):  # the engines read for attempting replications only
            takes.append((reps, counts[reps]))
    return takes


@QUICK
@given(streams(), st.data())
def test_kernel_streams_are_numpys_philox_streams(made, data):
    """Read in any sizes, replication after replication, each stream gives
    numpy's uniforms in order, across counter carries and part-read blocks."""
    kernel = lane_kernel.KernelColumn(_generators(*made), lane_kernel.kernels())
    reference = Column(_generators(*made))
    for reps, counts in _takes(data.draw, len(made[0])):
        np.testing.assert_array_equal(
            kernel.take(reps, counts), reference.take(reps, counts)
        )


@st.composite
def tables(draw, n: int, cells: int):
    """(rep, cells - 1) edges: the success edge first, then the failing cells'."""
    rows = []
    for _ in range(n):
        success = draw(st.floats(0.0, 1.0))
        rest = draw(
            st.lists(st.floats(success, 1.0), min_size=cells - 2, max_size=cells - 2)
        )
        rows.append([success, *sorted(rest)])
    return np.array(rows)


def _numpy_cells(uniforms, reps, counts, success, chosen, hot, shape, free=None):
    """`lanes.Lane._draw`'s numpy passes on given uniforms (``free``: the
    attempts no defect struck)."""
    above = uniforms >= np.repeat(success[reps], counts)
    if free is not None:
        above &= free
    failing = np.flatnonzero(above)
    who = reps[np.searchsorted(np.cumsum(counts), failing, side="right")]
    keys = (uniforms[failing] * UNIT).astype(np.int64)
    cell = np.empty(len(who), dtype=np.int64)
    for table, mine in ((chosen[0], ~hot[who]), (chosen[1], hot[who])):
        cell[mine] = table.find(who[mine], keys[mine])
    n, cells = shape
    return np.bincount(who * cells + cell, minlength=n * cells).reshape(shape)


@QUICK
@given(streams(most=4), st.integers(3, 9), st.data())
def test_kernel_cells_are_the_numpy_passes_counts(made, cells, data):
    """Failing attempts land in the same cells, on a replication's plain or
    stressed table, as `CellTable.find` puts them; successes are not counted."""
    n = len(made[0])
    plain = data.draw(tables(n, cells))
    stressed = data.draw(tables(n, cells))
    hot = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    success = np.where(hot, stressed[:, 0], plain[:, 0])
    chosen = (CellTable(edge_keys(plain)), CellTable(edge_keys(stressed)))
    args = tuple((t.floor, t.shift, t.lookup, t.edges, t.rows) for t in chosen)
    kernel = lane_kernel.KernelColumn(_generators(*made), lane_kernel.kernels())
    reference = Column(_generators(*made))
    for reps, counts in _takes(data.draw, n, 300):
        got, hits = kernel.cells(reps, counts, success, hot, args, (n, cells))
        uniforms = reference.take(reps, counts)
        expected = _numpy_cells(
            uniforms, reps, counts, success, chosen, hot, (n, cells)
        )
        np.testing.assert_array_equal(got, expected)
        assert hits is None


@QUICK
@given(streams(most=4), st.data())
def test_defect_hits_and_given_cells_are_the_numpy_passes_counts(made, data):
    """An attempt a defect struck is read on its imposed outcome's cells alone
    (`lanes.Lane._given`), the others as usual; hits counted per replication."""
    n, sizes = len(made[0]), (1, 3, 2, 2, 3)
    starts = np.cumsum((0, *sizes[:-1]))
    cells = sum(sizes)
    plain = data.draw(tables(n, cells))
    given_edges = tuple(
        edge_keys(data.draw(tables(n, s + 1))[:, 1:]) for s in sizes[1:]
    )
    table = CellTable(edge_keys(plain))
    args = ((table.floor, table.shift, table.lookup, table.edges, table.rows),) * 2
    hot = np.zeros(n, dtype=np.bool_)
    kernel = lane_kernel.KernelColumn(_generators(*made), lane_kernel.kernels())
    reference = Column(_generators(*made))
    for reps, counts in _takes(data.draw, n, 200):
        total = int(counts.sum())
        struck = np.array(
            data.draw(st.lists(IMPOSED, min_size=total, max_size=total)),
            dtype=np.int8,
        )
        got, hits = kernel.cells(
            reps,
            counts,
            plain[:, 0].copy(),
            hot,
            args,
            (n, cells),
            struck,
            given_edges,
            starts,
        )
        uniforms = reference.take(reps, counts)
        rep = np.repeat(reps, counts)
        free = struck < 0
        expected = _numpy_cells(
            uniforms, reps, counts, plain[:, 0], (table, table), hot, (n, cells), free
        )
        for outcome in range(1, 5):
            mine = struck == outcome
            keys = (uniforms[mine] * UNIT).astype(np.int64)
            for r, key in zip(rep[mine].tolist(), keys.tolist(), strict=True):
                own = np.searchsorted(given_edges[outcome - 1][r], key, side="right")
                expected[r, starts[outcome] + own] += 1
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(hits, np.bincount(rep[~free], minlength=n))


@QUICK
@given(streams(most=4), st.integers(1, 3), st.data())
def test_kernel_reads_on_one_outcomes_cells_are_the_numpy_passes_counts(made, b, data):
    """ELS, restoration and recovery reads: replication after replication,
    each its batches in order, every unit on one outcome's cells alone."""
    n = len(made[0])
    edges = edge_keys(data.draw(tables(n, 6))[:, 1:])
    kernel = lane_kernel.KernelColumn(_generators(*made), lane_kernel.kernels())
    reference = Column(_generators(*made))
    batches = np.array(
        data.draw(st.lists(st.integers(0, 50), min_size=b * n, max_size=b * n))
    ).reshape(b, n)
    batches[0, 0] += 1  # the engines read for replications with units only
    reps = np.flatnonzero(batches.sum(axis=0))
    got = kernel.given(reps, batches, edges)
    uniforms = reference.take(reps, batches.sum(axis=0)[reps])
    expected = np.zeros((b, n, edges.shape[1] + 1), dtype=np.int64)
    at = 0
    for r in reps.tolist():
        for k in range(b):
            keys = (uniforms[at : at + batches[k, r]] * UNIT).astype(np.int64)
            np.add.at(expected[k, r], np.searchsorted(edges[r], keys, "right"), 1)
            at += batches[k, r]
    np.testing.assert_array_equal(got, expected)


@st.composite
def ready_days(draw):
    """A few replications' retries due on several days (some empty), the
    columns' order, and each day's counts to take (some past all held)."""
    n, width = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    count = st.integers(0, 6)
    rows = draw(st.lists(st.lists(count, min_size=n * width, max_size=n * width)))
    order = draw(st.permutations(range(width)))
    takes = draw(st.lists(st.lists(st.integers(0, 25), min_size=n, max_size=n)))
    return n, width, rows, order, takes


@settings(QUICK)
@given(ready_days())
def test_retries_are_taken_as_the_numpy_pass_takes_them(case):
    """`Ready.take` in one compiled pass: the same (rep, made) taken, the same
    rows left and the same head, day after day, rows appended between takes
    (past the eight the queue starts with, so it makes room)."""
    n, width, rows, order, takes = case
    queues = [Ready(n, width, np.array(order)) for _ in range(2)]
    queues[1].kernel = lane_kernel.kernels()
    for day in range(max(len(rows), len(takes))):
        for queue in queues:
            if day < len(rows):
                queue.append(np.array(rows[day], dtype=np.int64).reshape(n, width))
        if day < len(takes):
            count = np.array(takes[day], dtype=np.int64)
            plain, compiled = (queue.take(count) for queue in queues)
            np.testing.assert_array_equal(compiled, plain)
        plain, compiled = queues
        assert (compiled.head, compiled.tail) == (plain.head, plain.tail)
        np.testing.assert_array_equal(compiled.rows_held, plain.rows_held)
        np.testing.assert_array_equal(compiled.totals, plain.totals)


@settings(QUICK)
@given(
    st.integers(1, 5).flatmap(
        lambda k: st.lists(
            st.tuples(
                st.integers(0, 10**9),
                st.lists(
                    st.integers(0, 3) | st.integers(0, 10**8), min_size=k, max_size=k
                ),
            ),
            min_size=1,
            max_size=6,
        )
    )
)
def test_a_cap_is_shared_as_the_numpy_pass_shares_it(rows):
    """`share_pro_rata_rows` in one compiled pass: the same shares, small
    weights (ties and water-filling) and the fleet's large ones."""
    totals = np.array([t for t, _ in rows])
    weights = np.array([w for _, w in rows])
    compiled = share_pro_rata_rows(totals, weights, lane_kernel.kernels())
    np.testing.assert_array_equal(compiled, share_pro_rata_rows(totals, weights))


# --------------------------------------------------------------- whole runs
def _both(monkeypatch, sc, seed: int, ids: list[int]) -> None:
    monkeypatch.setattr(lane_kernel, "USE", True)
    with_kernels = run_block(sc, seed, ids)
    monkeypatch.setattr(lane_kernel, "USE", False)
    for log, other in zip(with_kernels, run_block(sc, seed, ids), strict=True):
        assert_same(log, other)


@pytest.mark.parametrize("els", [False, True])
@pytest.mark.parametrize("when", ["attempted", "up_front"])
def test_a_lane_day_in_two_kernel_calls_is_the_numpy_passes_day(monkeypatch, when, els):
    """A compiled lane with no latent defect runs its day as `start_lane_day`
    (`resolve_stalls`, `release_lane`) and `attempt_lane`: hard cases sharing
    first attempts with the normal class (`share_rows`), exclusions up front
    or when attempted, volume-stressed days, dumb devices recovered remotely,
    and ELS holding stalls and fix forwards until worked give the numpy
    passes' logs."""
    part = cohort(
        "a",
        3000,
        rates=outcomes(success=0.7, stall=0.1, rollback=0.1, fix_forward=0.05,
                       dumb=0.05),
        stall={"resolves_after_days": uniform(1, 4), "then_success": 0.5},
        rollback={"retry_after_days": uniform(1, 6)},
        fix_forward={"restored_after_days": uniform(1, 3)},
        max_attempts=3,
        eligible_from=nth_day(8),  # joins the queue (and excludes) on a later day
    )  # fmt: skip
    part["hard"] = {"share": 0.3, "outcomes": outcomes(success=0.3, rollback=0.7)}
    part["excluded"] = {"share": 0.1, "when": when}
    part["dumb"] = {"recovered_share": 0.5, "recovered_after_days": uniform(2, 5)}
    part["volume_failures"] = {
        "above_attempts": 150,
        "counted": "all",
        "increase": {"stall": 0.06},
    }
    data = scenario(part, cohort("b", 800), cap=300, horizon_days=70)
    if els:
        data["els"] = {"daily_capacity": 60, "cases_from": ["stall", "fix_forward"]}
    sc = load(data)
    calls = {"start_lane_day": 0, "attempt_lane": 0}
    module = lane_kernel.kernels()
    for name in calls:
        kernel = getattr(module, name)

        def counted(*args, name=name, kernel=kernel):
            calls[name] += 1
            return kernel(*args)

        monkeypatch.setattr(module, name, counted)
    _both(monkeypatch, sc, 5, list(range(6)))
    assert min(calls.values()) > 0, calls


@settings(QUICK, max_examples=10)
@given(scenarios_with_defects() | scenarios_with_sections(), st.integers(0, 2**31))
def test_random_blocks_run_the_same_with_the_kernels(sc, seed):
    with pytest.MonkeyPatch.context() as monkeypatch:
        _both(monkeypatch, sc, seed, list(range(4)))


def test_a_run_with_the_kernels_equals_one_without(monkeypatch):
    """End to end, on the decision's scenario (latent defects striking, ELS
    reading stalls and restorations, ramp rules): the same replications table
    and daily rows. (The fleet runs on the kernels in `test_block`.)"""
    sc = migsim.load_scenario(
        "scenarios/nov2019_cautious_ramp_elster_active.yaml", {"horizon_days": 150}
    )
    runs = []
    for use in (True, False):
        monkeypatch.setattr(lane_kernel, "USE", use)
        runs.append(migsim.run(sc, replications=24, seed=4, workers=1))
    with_kernels, without = runs
    assert with_kernels.replications.equals(without.replications)
    assert with_kernels.daily.equals(without.daily)
    hit = with_kernels.figure("active_hit_by_defects")
    hit = hit + with_kernels.figure("dormant_hit_by_defects")
    assert hit.sum() > 0  # defects struck


def _printed(code: str) -> str:
    """What ``code`` prints, run in a fresh Python (numba not yet loaded)."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.mark.slow
def test_small_blocks_do_not_load_numba():
    """The baseline's blocks are too small to pay for loading numba; a block of
    as many installations behind an ELS desk is not (its reads are where the
    numpy passes are dearest), nor are the fleet's."""
    code = (
        "import sys, migsim; from migsim.sim.block import run_blocks;"
        "sc = migsim.load_scenario('scenarios/nov2019_epcl.yaml',"
        " {'horizon_days': 60});"
        "run_blocks(sc, 1, list(range(84))); print('numba' in sys.modules);"
        "sc = migsim.load_scenario('scenarios/nov2019_operations.yaml',"
        " {'horizon_days': 30});"
        "run_blocks(sc, 1, list(range(24))); print('numba' in sys.modules)"
    )
    assert _printed(code).split() == ["False", "True"]
    assert lane_kernel.wanted(lane_kernel.KERNEL_WORK)
    baseline = 84 * 74_000  # nov2019_epcl's blocks
    assert lane_kernel.block_work(baseline, desk=False) < lane_kernel.KERNEL_WORK
    operations = 24 * 74_000  # nov2019_operations' smallest block
    assert lane_kernel.block_work(operations, desk=True) >= lane_kernel.KERNEL_WORK


def test_kernels_are_off_or_on_when_asked(monkeypatch):
    monkeypatch.setattr(lane_kernel, "USE", False)
    assert not lane_kernel.wanted(10**12)
    monkeypatch.setattr(lane_kernel, "USE", True)
    assert lane_kernel.wanted(0)


def test_the_kernels_load():
    """With numba installed the kernels load and compile: were they to fail,
    blocks would quietly run the numpy passes, and the tests above with them."""
    assert lane_kernel.kernels() is not None, repr(lane_kernel.failure)
    assert lane_kernel.warm_up()


def test_kernels_that_do_not_compile_leave_the_numpy_passes(monkeypatch):
    """A kernel that does not compile (or numba failing to load: llvmlite's
    library raises OSError) is found when they are loaded, not at a block's
    first attempt: every block then runs the numpy passes, even when asked
    for the kernels, and ``warm_up`` (CI) raises the reason."""

    def broken(module):
        raise OSError("could not load llvmlite's shared library")

    monkeypatch.setattr(lane_kernel, "_loaded", None)
    monkeypatch.setattr(lane_kernel, "failure", None)
    monkeypatch.setattr(lane_kernel, "_exercise", broken)
    monkeypatch.setattr(lane_kernel, "USE", True)
    assert lane_kernel.kernels() is None
    assert isinstance(lane_kernel.failure, OSError)
    assert not lane_kernel.wanted(10**12)
    with pytest.raises(RuntimeError, match="did not load") as raised:
        lane_kernel.warm_up()
    assert raised.value.__cause__ is lane_kernel.failure
    missing = ImportError("No module named 'numba'", name="numba")
    monkeypatch.setattr(lane_kernel, "failure", missing)
    assert lane_kernel.warm_up() is False  # numba not installed: not an error


def test_no_writable_cache_compiles_in_the_process():
    """An install numba cannot cache beside (read-only site-packages) and no
    writable user-wide cache (a read-only home): numba refuses ``cache=True``
    at decoration (RuntimeError), which failed the import; the kernels are
    compiled in the process instead."""
    code = (
        "from numba.core import caching\n"
        "def refuse(self): raise PermissionError(13, 'Read-only file system')\n"
        "caching._CacheLocator.ensure_cache_path = refuse\n"
        "from migsim.sim import _kernels\n"
        "print(type(_kernels.draw_cells._cache).__name__)\n"
    )
    assert _printed(code) == "NullCache"


#: a bundled scenario, and the kernel calls its whole horizon must make
EXERCISED = {
    "nov2019_epcl": ("keep", "lane"),
    "nov2019_aggressive_ramp": (
        "keep",
        "struck",
        "stressed",
        "lane",
    ),  # volume failures
    "nov2019_operations": ("keep", "struck", "given", "lane", "worked"),  # ELS
}


@pytest.mark.parametrize("name", sorted(EXERCISED))
def test_bundled_blocks_to_the_end_run_the_same_with_the_kernels(monkeypatch, name):
    """Whole horizons, so that replications stop and the block keeps the rest
    (`LaneStreams.keep` after its streams were read), with volume-stressed
    tables, defect hits (a column at a time) and ELS reads on the kernels,
    a day's columns in one call (`draw_lane`) and the stalls ELS worked put
    on the ledger by the kernel that reads them (`stalls_worked`): the same
    run logs."""
    module = lane_kernel.kernels()
    assert module is not None  # loaded: its own calls not counted
    seen = dict.fromkeys(("keep", "stressed", "struck", "given", "lane", "worked"), 0)
    column = lane_kernel.KernelColumn
    keep, cells, given = lane_kernel.LaneStreams.keep, column.cells, column.given
    draw_lane, stalls_worked = module.draw_lane, module.stalls_worked
    attempt_lane = module.attempt_lane

    def counted_keep(self, live):
        seen["keep"] += 1
        return keep(self, live)

    def counted_cells(self, reps, counts, success, hot, *rest):
        seen["stressed"] += bool(hot.any())
        seen["struck"] += len(rest) > 2 and rest[2] is not None
        return cells(self, reps, counts, success, hot, *rest)

    def counted_given(self, *args):
        seen["given"] += 1
        return given(self, *args)

    def counted_lane(*args):
        seen["lane"] += 1
        seen["stressed"] += bool(args[6].any())
        return draw_lane(*args)

    def counted_attempt(*args):  # `draw_lane` called inside the kernel
        seen["lane"] += 1
        seen["stressed"] += bool(args[4].any())
        return attempt_lane(*args)

    monkeypatch.setattr(lane_kernel.LaneStreams, "keep", counted_keep)
    monkeypatch.setattr(column, "cells", counted_cells)
    monkeypatch.setattr(column, "given", counted_given)

    def counted_worked(*args):
        seen["worked"] += 1
        return stalls_worked(*args)

    monkeypatch.setattr(module, "draw_lane", counted_lane)
    monkeypatch.setattr(module, "attempt_lane", counted_attempt)
    monkeypatch.setattr(module, "stalls_worked", counted_worked)
    sc = migsim.load_scenario(f"scenarios/{name}.yaml")
    _both(monkeypatch, sc, 7, list(range(4)))
    assert all(seen[kind] > 0 for kind in EXERCISED[name]), seen


@pytest.mark.slow
def test_the_block_engine_calls_only_the_signatures_warmed_up():
    """Each kernel as the block engine calls it on the bundled scenarios has
    the argument types `warm_up` compiles (and CI caches): a read-only or
    strided array where the warm-up passed a plain one is another signature,
    compiled in every process that meets it (seconds each)."""
    code = (
        "import json, migsim; from migsim.sim import block, lane_kernel as lk;"
        "lk.USE = True; m = lk.kernels();"
        "names = ('draw_lane', 'stalls_worked', 'draw_cells', 'draw_cells_struck',"
        " 'read_given', 'draw_uniforms', 'take_ready', 'schedule_lane',"
        " 'resolve_stalls', 'share_rows', 'release_lane',"
        " 'attempt_lane', 'start_lane_day');"
        "warm = {k: len(getattr(m, k).signatures) for k in names};"
        "[block.run_block(migsim.load_scenario(f'scenarios/{s}.yaml',"
        " {'horizon_days': 150}), 1, list(range(24))) for s in"
        " ('nov2019_cautious_ramp_elster_active', 'nov2019_operations',"
        " 'nov2019_aggressive_ramp', 'smets1_full_fleet')];"
        "print(json.dumps({k: len(getattr(m, k).signatures) - warm[k] for k in names}))"
    )
    added = json.loads(_printed(code))
    assert added == dict.fromkeys(added, 0)
