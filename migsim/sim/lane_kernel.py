"""The block engine's compiled passes (numba), loaded only when a block pays for them.

A lane with enough work reads its columns' uniforms and failing cells with the
kernels of `migsim.sim._kernels` instead of a dozen numpy passes per column and
day: the same uniforms in the same order, the same counts (tests hold the two
paths equal). numba is imported on first use (about a second with its compiled
kernels cached, several seconds when they are compiled), so small runs, and
``import migsim``, never load it; if it cannot be loaded, or a kernel not
compiled, every block runs the numpy passes (`failure` says why). A block uses
them from `KERNEL_WORK` installations across its replications, each counted
`DESK_WEIGHT` times behind an ELS desk (`block_work`: blocks whose attempts save
more than loading numba costs), and every block once they are loaded.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the kernels' module imports no model at run time
    from migsim.model.scenario import Scenario

__all__ = [
    "DESK_WEIGHT",
    "KERNEL_WORK",
    "USE",
    "KernelColumn",
    "LaneStreams",
    "block_work",
    "kernels",
    "planned_work",
    "wanted",
    "would_use",
    "warm_up",
]

#: Installations across a block's replications from which its lanes use the
#: kernels (with `USE` None; once loaded, every block uses them): from there
#: the time they save (about 80 ns an installation, measured on
#: `nov2019_epcl`) pays for loading numba (about a second).
KERNEL_WORK = 10_000_000
#: An installation behind an ELS desk counts this many times in a block's
#: work: the desk's reads (each case's delay from its own uniforms, worked days
#: after it was raised) are where the numpy passes are dearest. Measured in
#: blocks of 24, CPU time saved a replication by the kernels: 80 ms on
#: `nov2019_operations` (74,000 installations, a desk) against 6 ms on
#: `nov2019_epcl` (74,000, none): 13 times more.
DESK_WEIGHT = 13

#: None: by `KERNEL_WORK`; True: every block uses the kernels; False: none
#: (the results are the same: tests compare the two paths)
USE: bool | None = None

_loaded: ModuleType | None = None
#: why the kernels could not be loaded or compiled (None: not tried, or loaded)
failure: BaseException | None = None


def block_work(installations: int, desk: bool) -> int:
    """A block's work, for `wanted`: its ``installations`` summed over its
    replications, weighted by `DESK_WEIGHT` behind an ELS ``desk``."""
    return installations * (DESK_WEIGHT if desk else 1)


def planned_work(scenario: Scenario, replications: int) -> int:
    """`block_work` of a block of ``replications`` of ``scenario``, before they
    draw their sizes: its stated installations."""
    desk = scenario.els is not None
    return block_work(replications * scenario.installations, desk)


def wanted(work: int) -> bool:
    """Whether a block of ``work`` (`block_work`) should read its uniforms
    with the kernels; loads them if so."""
    return would_use(work) and kernels() is not None


def would_use(work: int) -> bool:
    """Whether a block of ``work`` would read with the kernels (`wanted`),
    without loading them: to choose between a block and one replication at a
    time before either runs."""
    if USE is False or failure is not None:
        return False
    return USE is True or work >= KERNEL_WORK or _loaded is not None


def kernels() -> ModuleType | None:
    """The compiled kernels, loaded and compiled (or read from numba's cache)
    at first call; None if that fails, for good: numba missing or broken
    (llvmlite's library not loading is an OSError), or a kernel that does not
    compile. The block then runs the numpy passes, which give the same
    numbers, instead of stopping mid-run at a kernel's first call."""
    global _loaded, failure
    if _loaded is None and failure is None:
        try:
            from migsim.sim import _kernels

            _exercise(_kernels)
        except Exception as error:  # noqa: BLE001 - any of them: the numpy passes
            failure = error
            return None
        _loaded = _kernels
    return _loaded


def _philox_states(
    generators: list[np.random.Generator],
) -> tuple[np.ndarray, np.ndarray]:
    """Each Philox generator's state as the kernels hold it: (counter, key,
    buffer position) and the buffer's four words, one row per generator."""
    state = np.zeros((len(generators), 7), dtype=np.uint64)
    buffer = np.zeros((len(generators), 4), dtype=np.uint64)
    for r, generator in enumerate(generators):
        held = generator.bit_generator.state
        if held["bit_generator"] != "Philox":
            raise ValueError("the kernels read Philox streams only")
        state[r, :4] = held["state"]["counter"]
        state[r, 4:6] = held["state"]["key"]
        state[r, 6] = held["buffer_pos"]
        buffer[r] = held["buffer"]
    return state, buffer


class KernelColumn:
    """`lane_queues.Column` read by the kernels: each replication's stream is
    its Philox generator's state, advanced by the kernels (the generators are
    not: the column reads them from where they stand, and only the column)."""

    def __init__(self, generators: list[np.random.Generator], module: ModuleType):
        self.state, self.buffer = _philox_states(generators)
        self.module = module

    def take(self, reps: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The next ``counts[i]`` uniforms of replication ``reps[i]``, in order."""
        return self.module.draw_uniforms(
            self.state, self.buffer, reps.astype(np.int64), counts.astype(np.int64)
        )

    def cells(
        self,
        reps: np.ndarray,
        counts: np.ndarray,
        success: np.ndarray,
        hot: np.ndarray,
        tables: tuple,
        shape: tuple[int, int],
        struck: np.ndarray | None = None,
        given: tuple = (),
        starts: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(rep, cells) counts of failing attempts (`_kernels.draw_cells`) and,
        where a defect ``struck`` some, the hits per replication."""
        args = (
            self.state,
            self.buffer,
            reps.astype(np.int64),
            counts.astype(np.int64),
            success,
            hot,
            tables,
            shape[0],
            shape[1],
        )
        if struck is None:
            return self.module.draw_cells(*args), None
        assert starts is not None
        return self.module.draw_cells_struck(
            *args, struck, given, np.asarray(starts, dtype=np.int64)
        )

    def given(
        self, reps: np.ndarray, batches: np.ndarray, edges: np.ndarray
    ) -> np.ndarray:
        """(batch, rep, cells) counts of units read on one outcome's cells
        alone (`_kernels.read_given`)."""
        return self.module.read_given(
            self.state,
            self.buffer,
            reps.astype(np.int64),
            np.ascontiguousarray(batches, dtype=np.int64),
            edges,
        )

    def keep(self, live: np.ndarray) -> None:
        """Keep only the replications at positions ``live`` (in order)."""
        self.state, self.buffer = self.state[live], self.buffer[live]


class LaneStreams:
    """Every per-unit column stream of a lane, stacked (column, rep, ...), so
    that one kernel call (`_kernels.draw_lane`) reads a whole day's columns.

    ``columns[c]`` is column c's `KernelColumn` over its own rows of the
    stack (views: the column and the stack advance the same state), for the
    passes that still read one column at a time; ``None`` for column 0,
    never attempted. `keep` keeps both.
    """

    def __init__(
        self,
        generators: list[list[np.random.Generator] | None],
        module,
        n: int | None = None,
    ):
        if n is None:
            n = len(next(g for g in generators if g is not None))
        self.state = np.zeros((len(generators), n, 7), dtype=np.uint64)
        self.buffer = np.zeros((len(generators), n, 4), dtype=np.uint64)
        self.module = module
        self.columns: list[KernelColumn | None] = [None] * len(generators)
        for c, column in enumerate(generators):
            if column is not None:
                self.add(c, column)

    def add(self, c: int, generators: list[np.random.Generator]) -> None:
        """Column ``c``'s streams (one generator per replication), read from
        where they stand: columns can be added as they are first needed."""
        self.state[c], self.buffer[c] = _philox_states(generators)
        self.columns[c] = KernelColumn([], self.module)
        self._view()

    def _view(self) -> None:
        for c, column in enumerate(self.columns):
            if column is not None:
                column.state, column.buffer = self.state[c], self.buffer[c]

    def keep(self, live: np.ndarray) -> None:
        """Keep only the replications at positions ``live`` (in order)."""
        # contiguous again: the kernels are compiled for C-ordered streams
        self.state = np.ascontiguousarray(self.state[:, live])
        self.buffer = np.ascontiguousarray(self.buffer[:, live])
        self._view()


def warm_up() -> bool:
    """Compile the kernels (or load them from numba's cache, beside
    `migsim.sim._kernels` and `_draw_kernels`, or in numba's user-wide cache),
    so that a later process only loads them; False without numba, and the
    reason raised if numba is there but the kernels do not load or compile.
    ``.ci/run`` calls it once before the tests, whose workers would each
    compile them otherwise (and the tests comparing the two paths would not
    run)."""
    if kernels() is not None:
        return True
    if isinstance(failure, ImportError) and failure.name in ("numba", "llvmlite"):
        return False
    raise RuntimeError("the block engine's kernels did not load") from failure


def _exercise(module: ModuleType) -> None:
    """Call every kernel once with the argument types the block engine
    passes: they are compiled (or loaded from the cache) here, once."""
    from migsim.sim.lane_queues import CellTable, edge_keys

    generators = [np.random.Generator(np.random.Philox(k)) for k in range(2)]
    column = KernelColumn(generators, module)
    reps, counts = np.arange(2), np.array([3, 5])
    edges = np.array([[0.5, 0.7, 0.9], [0.6, 0.8, 0.95]])
    table = CellTable(edge_keys(edges))
    tables = ((table.floor, table.shift, table.lookup, table.edges, table.rows),) * 2
    hot = np.zeros(2, dtype=np.bool_)
    given = (edge_keys(edges),) * 4
    starts = np.array([0, 1, 2, 3, 4])
    column.take(reps, counts)
    column.cells(reps, counts, edges[:, 0].copy(), hot, tables, (2, 4))
    struck = np.full(8, -1, dtype=np.int8)
    column.cells(
        reps, counts, edges[:, 0].copy(), hot, tables, (2, 4), struck, given, starts
    )
    column.given(reps, counts[None], given[0])
    # a lane of two columns (attempts made 0, 1) and 8 cells: success, a
    # stall (one delay x two ways out), a rollback, a fix forward, a dumb
    # device (recovered, prepayment, not)
    spec = np.array(
        [0, 1, 3, 4, 5, 2, -1, 1, 6, 9, 1, 2, 3, 4, 5, 6, 7], dtype=np.int64
    )
    days = tuple(np.array([1], dtype=np.int64) for _ in range(4))
    levels = tuple(np.zeros(2, dtype=np.int64) for _ in range(10))
    flows = np.zeros((2, 10), dtype=np.int64)
    last = np.array([False, True])  # by column: the class's last attempt
    ledgers = (
        np.zeros((4, 2, 2, 2), dtype=np.int64),
        np.zeros((4, 2, 2), dtype=np.int64),
        np.zeros((4, 2), dtype=np.int64),
        np.zeros((4, 2, 2), dtype=np.int64),
    )
    module.schedule_lane(
        np.ones((1, 2, 8), dtype=np.int64),
        np.full((2, 2), 9, dtype=np.int64),
        np.array([1]),
        0,
        False,
        False,
        spec,
        days,
        last,
        flows,
        levels,
        ledgers,
    )
    # (`resolve_stalls` and `release_lane` run only inside `start_lane_day`:
    # their own entry points would be loaded for nothing)
    eligible = np.ones((3, 2, 2), dtype=np.int64)  # (day, rep, class)
    fresh = np.zeros((2, 2), dtype=np.int64)
    ready = np.zeros((2, 8, 2), dtype=np.int64)
    module.start_lane_day(
        2, spec, days, last, flows, levels, ledgers, eligible, 1, levels[0],
        levels[1], fresh, 0, ready, ready.sum(axis=2), 0,
    )  # fmt: skip
    held = np.zeros((2, 8, 3), dtype=np.int64)
    module.take_ready(held, held.sum(axis=2), 0, 1, np.arange(3), counts)
    streams = LaneStreams([None, generators], module)
    # four cells: two delays x two ways out (then)
    ledger = np.zeros((12, 2, 2, 2), dtype=np.int64)  # (ring, column, rep, then)
    module.stalls_worked(
        streams.state,
        streams.buffer,
        np.array([1]),
        np.stack([np.zeros_like(counts), counts], axis=1)[None],  # (batch, rep, column)
        given[0],
        np.array([0]),
        np.array([1, 2]),
        0,
        ledger,
    )
    module.share_rows(counts, np.array([[2, 0, 1], [4, 4, 0]]))
    module.draw_lane(
        streams.state,
        streams.buffer,
        np.array([[0, 3], [0, 5]]),
        np.array([1]),
        2,
        edges[None, :, 0].copy(),
        hot,
        (tables,) * 3,
        4,
    )
    ready = np.zeros((2, 8, 2), dtype=np.int64)
    module.attempt_lane(
        counts, 0, False, False, hot, edges[None, :, 0].copy(),
        edges[None, :, 0].copy(),
        ready, ready.sum(axis=2), 0, 0, np.arange(2), np.full((2, 1), 9),
        *levels[:2], 0, 2, streams.state, streams.buffer, (tables,) * 3, 8,
        spec, days, last, flows, levels, ledgers,
    )  # fmt: skip
