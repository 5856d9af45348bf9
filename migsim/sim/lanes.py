"""A cohort across a block of replications: counts and ledgers with a replication axis.

`Lane` is the block engine's `cohort.CohortState`: the same queue, ledgers and
day phases, each held as one array whose first axis (or second, for ledgers
whose first axis is the due day) is the replication. A day's phases are
whole-array operations over the block, so the Python cost of a day is paid once
per block, not once per replication.

Each attempt still reads its outcome and aftermath from its own uniform: the
k-th attempt of a column of replication r takes the k-th uniform of r's stream
(`streams.UnitStreams.generator`), exactly as the scalar engine does, so the two
engines give the same numbers. Uniforms are multiples of 2**-53, so "u falls at
or above edge e" is the integer test ``u * 2**53 >= ceil(e * 2**53)``; with the
replication in the high bits, one `numpy.searchsorted` reads every
replication's own table at once, exactly.

A lane that reads with the compiled kernels (`lane_kernel`) and holds no stalls
for a release date runs its day in two kernel calls (`lane_compiled`); tests
hold every path to the numpy passes' numbers.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from migsim.sim import lane_compiled
from migsim.sim.allocation import share_pro_rata_rows
from migsim.sim.cohort import CohortState
from migsim.sim.lane_defects import LaneDefects
from migsim.sim.lane_els import BlockDesk
from migsim.sim.lane_kernel import KernelColumn, LaneStreams
from migsim.sim.lane_outcomes import FLOW as _FLOW
from migsim.sim.lane_outcomes import schedule
from migsim.sim.lane_queues import (
    MAX_BLOCK,
    REPLICATION_KEY,
    UNIT,
    CellTable,
    Column,
    Ready,
    edge_keys,
)
from migsim.sim.lane_start import last_due, take_up
from migsim.sim.records import FLOWS

__all__ = ["MAX_BLOCK", "Lane"]


def _any(live: np.ndarray | None) -> bool:
    """Whether any latent defect is live (striking attempts) in any replication."""
    return live is not None and bool(live.any())


class Lane:
    """One cohort segment for R replications.

    Built from the replications' scalar `CohortState` objects, which did the
    set-up (rates drawn, tables, eligibility, delays); the lane takes their
    starting counts and tables and runs the days itself. Its classes (normal,
    hard, excluded) share its queue and ledgers: columns are class x attempts
    made, ``per_class`` columns each, as in the scalar segment. Its counts are
    attributes named as `records.STATES` are, and its day's flows ``flows``:
    the block records them by those names at the end of each day.
    """

    def __init__(
        self,
        states: list[CohortState],
        horizon: int,
        defects: LaneDefects | None = None,
        kernel: ModuleType | None = None,
    ):
        first = states[0]
        n = self.n = len(states)
        self.index = first.index
        self.segment = first.segment
        self.size = width = first.width
        self.per_class = first.size  # columns of a class: attempts made 0..max
        classes = len(first.segment.classes)
        # the last attempt's column of each class: its failures abandon
        self.lasts = np.array(first.last_columns)
        self.up_front = first.up_front_class  # abandoned when eligible
        self.is_last = np.isin(np.arange(width), self.lasts)  # by column
        excluded = first.excluded_class  # its last failures count in ``excluded``
        self.excluded_last = None if excluded is None else self.lasts[excluded]
        # columns a latent defect can hit (the excluded class's: never)
        self.defect_columns = first.defect_columns
        self.total = np.array([s.total for s in states], dtype=np.int64)
        self.pending = np.array([s.pending for s in states], dtype=np.int64)
        self.fresh = np.array([s.fresh for s in states], dtype=np.int64)  # (rep, k)
        self.eligible = np.zeros((horizon, n, classes), dtype=np.int64)
        for r, state in enumerate(states):
            for day, counts in state.eligibility.items():
                if day < horizon:
                    self.eligible[day, r] += counts
        self._tables(states)
        self._delays(first, states, horizon)
        zeros = np.zeros(n, dtype=np.int64)
        self.retry_queued = zeros.copy()
        self.stalled, self.rolled_back = zeros.copy(), zeros.copy()
        self.impaired, self.migrated = zeros.copy(), zeros.copy()
        self.dumb = zeros.copy()
        # abandoned (of them excluded): up-front exclusions are there from the start
        self.abandoned = np.array([s.abandoned for s in states], dtype=np.int64)
        self.excluded = np.array([s.excluded for s in states], dtype=np.int64)
        self.awaiting_site_visit, self.prepayment_dumb = zeros.copy(), zeros.copy()
        self.stressed_attempts = zeros.copy()  # today's, reset at the end of day
        # remote recovery of dumb devices: awaiting it (not resolved), and
        # today's recoveries (reset at the end of day)
        self.awaiting_recovery, self.dumb_recoveries = zeros.copy(), zeros.copy()
        # due-day ledgers as ring buffers (row: day mod `ring`), then column
        # first: scheduling a column adds one (delays, rep, ...) block
        ring = self.ring
        self.stall_cells = np.zeros((ring, width, n, self.then), dtype=np.int64)
        self.retry_due = np.zeros((ring, width, n), dtype=np.int64)
        self.restore_due = np.zeros((ring, n), dtype=np.int64)
        self.recover_due = np.zeros(
            (ring if self.recover_days is not None else 0, width, n), dtype=np.int64
        )
        # retries due and not yet taken, oldest due day first: (rep, column) each
        per = self.per_class
        order = [c for made in range(per - 1, 0, -1) for c in range(made, width, per)]
        order += range(0, width, per)  # attempts made 0: never retries
        self.ready = Ready(n, width, np.array(order))
        # a stall release date: stalls due before it wait for it, held aside
        # (the date may lie beyond the ring), and resolve on it together
        floors = [s.release_day for s in states]
        self.floor = np.array([-1 if f is None else f for f in floors], np.int64)
        self.held = (
            np.zeros((n, self.then, width), dtype=np.int64)
            if any(f is not None for f in floors)
            else None
        )
        self.flows = np.zeros((n, len(FLOWS)), dtype=np.int64)
        # day 0's flows so far: exclusions up front, abandoned in the set-up
        self.flows[:, _FLOW["abandons"]] = [s.flows["abandons"] for s in states]
        if any(s.cohort.initial_state is not None for s in states):
            take_up(self, states, horizon)
        self.defect_hits = zeros.copy()  # today's, reset at the end of day
        # latent defects (`lane_defects`): only where this cohort has any; the
        # cohort's segments share them (hits, exposure and streams)
        self.defects = defects
        # ELS (`lane_els.BlockDesk`), set by the block; streams read when a
        # case is worked, by (units, column), made at first use
        self.desk: BlockDesk | None = None
        self._stall_units = [s.stall_units for s in states]
        self._restore_units = [s.restore_units for s in states]
        self._recovery_units = [s.recovery_retry_units for s in states]
        self._later: dict[tuple[str, int], Column | KernelColumn] = {}
        self._stacked_stalls: LaneStreams | None = None  # `_stall_streams`
        self._schedule_made: tuple | None = None  # `lane_outcomes.kernel_inputs`
        units = [s.outcome_units for s in states]
        self.kernel = kernel  # the compiled passes (`lane_kernel`), or None
        self.ready.kernel = kernel
        generators = [
            [u.generator(c) for u in units] if c else None for c in range(width)
        ]
        # the kernels read a day's columns in one call (`_draw_all`)
        self.streams = None if kernel is None else LaneStreams(generators, kernel)
        self.columns: list[Column | KernelColumn | None] = (
            [None if g is None else Column(g) for g in generators]
            if self.streams is None
            else list(self.streams.columns)
        )

    def _column(self, generators: list) -> Column | KernelColumn:
        if self.kernel is None:
            return Column(generators)
        return KernelColumn(generators, self.kernel)

    def _tables(self, states: list[CohortState]) -> None:
        """Every replication's attempt table of each class as integer keys (see
        the module doc): (class, rep, ...) arrays."""
        tables = [s.tables[0] for s in states]
        first = tables[0]
        self.starts, self.sizes = first.starts, first.sizes
        self.cells = first.cells.size
        for state in states:
            if any(t.sizes != self.sizes for t in state.tables):
                raise ValueError("the block's replications differ in table shape")
        classes = range(len(states[0].tables))
        edges = np.stack(  # (class, rep, cells - 1)
            [np.stack([s.tables[k].cells.edges for s in states]) for k in classes]
        )
        self.success = edges[:, :, 0].copy()
        # each class's tables, read for failing attempts (`CellTable`)
        self.cell_tables = [CellTable(ints) for ints in edge_keys(edges)]
        # volume-stressed rates (`operations.Operations.stressed`), read instead
        # on a replication's stressed days
        stressed = np.stack(
            [
                np.stack([s.stressed_tables[k].cells.edges for s in states])
                for k in classes
            ]
        )
        self.stressed_success = stressed[:, :, 0].copy()
        self.stressed_cell_tables = [
            table
            if np.array_equal(stressed_ints, table.edges[:, :-1])
            else CellTable(stressed_ints)
            for table, stressed_ints in zip(
                self.cell_tables, edge_keys(stressed), strict=True
            )
        ]
        # each outcome's cells alone, for attempts a defect gives their outcome
        self.given_ints = {
            o: edge_keys(np.stack([t.given[o].edges for t in tables]))
            for o in range(1, len(self.sizes))
        }
        self._key_tables()
        self.stall_shape = states[0].stall_shape
        self.then = self.stall_shape[1]
        self.recovered_cells = states[0].recovered_cells  # cells by recovery delay
        self.prepayment_cell = self.starts[4] + self.recovered_cells

    def _keyed(self, ints: np.ndarray) -> np.ndarray:
        offset = np.arange(self.n, dtype=np.int64)[:, None] * REPLICATION_KEY
        return (ints + offset).ravel()

    def _key_tables(self) -> None:
        """Each outcome's edges keyed by replication (`_keyed`), made once per
        set of replications rather than at every read."""
        self.given_keys = {o: self._keyed(i) for o, i in self.given_ints.items()}
        self._kernel_made: tuple[list[tuple], tuple] | None = None  # made at use

    def _delays(self, first: CohortState, states, horizon: int) -> None:
        """Each delay's days, and the ring length: longer than any delay (and
        any wait a mid-programme start placed), so a row is read (and cleared)
        before anything due a ring later lands on it."""
        self.stall_days = np.array(first.stalls.days)  # writable: one kernel signature
        self.retry_days = first.stalls.retry_days
        restore = first.restore_pmf
        self.restore_days = None if restore is None else restore[0]
        recover = first.recover_pmf
        self.recover_days = None if recover is None else recover[0]
        longest = max(
            int(days[-1])
            for days in (
                self.stall_days,
                self.retry_days,
                self.restore_days,
                self.recover_days,
            )
            if days is not None
        )
        placed = max(last_due(state, horizon) for state in states)
        self.ring = max(longest, placed) + 1

    #: arrays with a replication axis: (name, axis)
    _BY_REPLICATION = (
        ("total", 0),
        ("pending", 0),
        ("fresh", 0),
        ("eligible", 1),
        ("success", 1),
        ("stressed_success", 1),
        ("excluded", 0),
        ("stressed_attempts", 0),
        ("defect_hits", 0),
        ("retry_queued", 0),
        ("stalled", 0),
        ("rolled_back", 0),
        ("impaired", 0),
        ("migrated", 0),
        ("dumb", 0),
        ("abandoned", 0),
        ("awaiting_site_visit", 0),
        ("prepayment_dumb", 0),
        ("awaiting_recovery", 0),
        ("dumb_recoveries", 0),
        ("stall_cells", 2),
        ("retry_due", 2),
        ("restore_due", 1),
        ("recover_due", 2),
        ("flows", 0),
        ("floor", 0),
    )

    def keep(self, live: np.ndarray) -> None:
        """Keep only the replications at positions ``live``: those that stopped
        (nothing left in flight) cost nothing on the days after."""
        for name, axis in self._BY_REPLICATION:
            setattr(self, name, np.take(getattr(self, name), live, axis=axis))
        self.ready.keep(live)
        self.given_ints = {o: ints[live] for o, ints in self.given_ints.items()}
        if self.held is not None:
            self.held = self.held[live]
        self.n = len(live)
        self._key_tables()
        for table in {
            id(t): t for t in self.cell_tables + self.stressed_cell_tables
        }.values():
            table.keep(live)
        if self.streams is not None:
            self.streams.keep(live)
        else:
            for column in self.columns:
                if column is not None:
                    column.keep(live)
        self._stall_units = [self._stall_units[r] for r in live.tolist()]
        self._restore_units = [self._restore_units[r] for r in live.tolist()]
        self._recovery_units = [self._recovery_units[r] for r in live.tolist()]
        for stream in self._later.values():
            stream.keep(live)
        if self._stacked_stalls is not None:
            self._stacked_stalls.keep(live)

    # ---------------------------------------------------------------- queries
    @property
    def queued(self) -> np.ndarray:
        return self.fresh.sum(axis=1) + self.retry_queued

    @property
    def compiled(self) -> bool:
        """Whether the ledgers are worked by the kernels (`_kernels`): the lane
        reads with them and holds no stalls for a release date (the numpy
        passes hold those aside, `_add_stalls`)."""
        return self.kernel is not None and self.held is None

    @property
    def resolved(self) -> np.ndarray:
        """Migrated, dumb or abandoned (a dumb device awaiting remote recovery: not)."""
        return self.migrated + self.dumb + self.abandoned - self.awaiting_recovery

    # ---------------------------------------------------------------- phases
    def _rows(self, days: np.ndarray, day: int) -> np.ndarray:
        """Ring rows of a delay's due days from ``day``."""
        return (day + days) % self.ring

    def start_day(self, day: int) -> None:
        """Stalls due today resolve (`resolve_stalls`), then retries due,
        restorations and eligible installations join (`release`): in one
        compiled call where the lane is `compiled` (`lane_compiled.start_day`).
        Each lane's own state only: lanes may start their days in any order."""
        if self.compiled:
            lane_compiled.start_day(self, day)
            return
        self.resolve_stalls(day)
        self.release(day)

    def resolve_stalls(self, day: int) -> None:
        """Stalls due today complete or fail (results drawn when scheduled)."""
        row = day % self.ring
        today = self.stall_cells[row]  # (column, rep, then)
        if self.held is not None:
            released = np.flatnonzero(self.floor == day)
            if len(released):
                today[:, released] += self.held[released].transpose(2, 0, 1)
                self.held[released] = 0
        if not today.any():
            return
        due = today.sum(axis=2).T  # (rep, column)
        n_due = due.sum(axis=1)
        failing = due - today[:, :, 0].T
        n_failed = failing.sum(axis=1)
        self.stalled -= n_due
        self.migrated += n_due - n_failed
        self.flows[:, _FLOW["stall_completions"]] += n_due - n_failed
        self.flows[:, _FLOW["stall_failures"]] += n_failed
        if n_failed.any():
            self.rolled_back += n_failed - self._abandon_lasts(failing)
            retries = today[:, :, 1:].copy()  # (column, rep, retry delay)
            retries[self.lasts] = 0
            days = self.retry_days
            assert days is not None  # a stall can fail only with a rollback section
            self.retry_due[self._rows(days, day)] += retries.transpose(2, 0, 1)
        today[:] = 0

    def release(self, day: int) -> None:
        """Retries due today rejoin the queue; restorations; eligibility."""
        row = day % self.ring
        due = self.retry_due[row]  # (column, rep)
        if due.any():
            n_due = due.sum(axis=0)
            self.rolled_back -= n_due
            self.retry_queued += n_due
            self.ready.append(due.T)
            due[:] = 0
        restored = self.restore_due[row]
        if restored.any():
            self.impaired -= restored
            self.migrated += restored
            self.flows[:, _FLOW["restorations"]] += restored
            restored[:] = 0
        if self.recover_days is not None:
            self._recover(day)
        eligible = self.eligible[day]  # (rep, class)
        if eligible.any():
            self.fresh += eligible
            self.pending -= eligible.sum(axis=1)
            if self.up_front is not None:  # abandoned without an attempt
                gone = self.fresh[:, self.up_front].copy()
                self.abandoned += gone
                self.excluded += gone
                self.flows[:, _FLOW["abandons"]] += gone
                self.fresh[:, self.up_front] = 0

    def _recover(self, day: int) -> None:
        """Dumb devices recovered remotely today go back to rolled_back and are
        retried like a rollback, each retry delay read from its column's next
        uniform in the recovery stream (`cohort.CohortState.release`); those on
        their last attempt are abandoned."""
        recovered = self.recover_due[day % self.ring]  # (column, rep)
        if not recovered.any():
            return
        n_recovered = recovered.sum(axis=0)
        self.dumb -= n_recovered
        self.awaiting_recovery -= n_recovered
        self.dumb_recoveries += n_recovered
        self.rolled_back += n_recovered - self._abandon_lasts(recovered.T)
        for column in np.flatnonzero(recovered.any(axis=1)).tolist():
            counts = self._read("recovery", column, recovered[column], 2)
            if not self.is_last[column]:
                assert self.retry_days is not None  # required with recovery
                rows = self._rows(self.retry_days, day)
                self.retry_due[rows, column] += counts.T
        recovered[:] = 0

    def take(self, count: np.ndarray) -> np.ndarray:
        """Remove ``count[r]`` from each queue: due retries first (oldest due,
        then most attempts made), then first attempts; (rep, column) batch."""
        batch = np.zeros((self.n, self.size), dtype=np.int64)
        if self.ready.rows:
            taken = self.ready.take(count)  # (rep, made)
            batch[:, 1:] += taken[:, :-1]  # made m: attempt m + 1
            moved = taken.sum(axis=1)
            self.retry_queued -= moved
            count = count - moved
        if self.fresh.shape[1] == 1:
            fresh = np.minimum(count, self.fresh[:, 0])
            self.fresh[:, 0] -= fresh
            batch[:, 1] += fresh
        elif count.any():  # shared between classes in proportion to their queues
            fresh = share_pro_rata_rows(count, self.fresh, self.kernel)
            self.fresh -= fresh
            batch[:, 1 :: self.per_class] += fresh
        return batch

    def take_and_attempt(
        self, count: np.ndarray, day: int, stressed: np.ndarray | None = None
    ) -> None:
        """`take` ``count[r]`` from each queue and `attempt` them: in one
        compiled call (`_kernels.attempt_lane`) where the lane reads with the
        kernels and has no latent defects (a defect's exposure depends on what
        was taken, and its hits are read column by column)."""
        if not (self.compiled and self.defects is None):
            self.attempt(self.take(count), day, stressed)
            return
        desk = self.desk
        outcomes = lane_compiled.take_and_attempt(
            self,
            count,
            day,
            self._hot(stressed),
            desk.gated if desk is not None else frozenset(),
        )
        if desk is not None:
            self._raise_cases(day, outcomes)

    def attempt(
        self, batch: np.ndarray, day: int, stressed: np.ndarray | None = None
    ) -> None:
        """Every column's attempts, read from their own uniforms, and what follows;
        ``stressed[r]``: replication r attempts at its volume-stressed rates."""
        attempts = batch.sum(axis=1)
        self.flows[:, _FLOW["attempts"]] += attempts
        success = self.success
        if stressed is not None and stressed.any():
            self.stressed_attempts += np.where(stressed, attempts, 0)
            success = np.where(stressed, self.stressed_success, success)
        else:
            stressed = None
        live = None
        if self.defects is not None:  # exposed by attempts they can reach
            reachable = batch
            if self.defect_columns is not None:
                reachable = np.where(self.defect_columns, batch, 0)
            live = self.defects.expose(day, reachable.sum(axis=1) > 0)
        desk = self.desk
        hold: frozenset[str] = desk.gated if desk is not None else frozenset()
        columns = np.flatnonzero(batch.any(axis=0))
        if self.streams is not None and not _any(live):  # one kernel call
            counts = self._draw_all(batch, columns, success, stressed)
        else:
            counts = np.stack(
                [
                    self._draw(column, batch[:, column], success, stressed, live)
                    for column in columns.tolist()
                ]
            )
        outcomes = self._schedule(batch, counts, columns, day, hold)
        if desk is not None:
            self._raise_cases(day, outcomes)

    def _raise_cases(self, day: int, outcomes: np.ndarray) -> None:
        """The day's ELS cases of (rep, outcome, column) ``outcomes``, in the
        order the scalar engine raises them."""
        desk = self.desk
        assert desk is not None
        totals = outcomes.sum(axis=2)
        for outcome, kind in ((4, "dumb"), (1, "stall"), (2, "rollback")):
            desk.raise_cases(day, kind, totals[:, outcome], self, outcomes[:, outcome])
        desk.raise_cases(day, "fix_forward", totals[:, 3], self, outcomes[:, 3])

    def _draw_all(self, batch, columns, success, stressed) -> np.ndarray:
        """(column, rep, cells) counts of every column's failing attempts in
        one kernel call (`_kernels.draw_lane`): `_draw` of each column, where
        no latent defect strikes."""
        assert self.streams is not None and self.kernel is not None
        tables = tuple(self._kernel_inputs()[0])
        return self.kernel.draw_lane(
            self.streams.state,
            self.streams.buffer,
            batch,
            columns,
            self.per_class,
            success,
            self._hot(stressed),
            tables + tables[:1] * (3 - len(tables)),  # one signature: 3 classes
            self.cells,
        )

    def _draw(
        self,
        column: int,
        n: np.ndarray,
        success: np.ndarray,
        stressed: np.ndarray | None = None,
        live: np.ndarray | None = None,
    ) -> np.ndarray:
        """(rep, cells) counts of one column's failing attempts (its class's
        ``success`` edges; ``stressed[r]``: r reads its stressed table)."""
        k = column // self.per_class
        success = success[k]
        reps = np.flatnonzero(n)
        column_units = self.columns[column]
        assert column_units is not None  # column 0 is never attempted
        counts_of = n[reps]
        reached = self.defect_columns is None or self.defect_columns[column]
        striking = live is not None and self.defects is not None and reached
        if isinstance(column_units, KernelColumn):
            struck = None
            if striking:
                assert live is not None and self.defects is not None
                struck = self.defects.strike(column, reps, counts_of, live)
            counts, hits = column_units.cells(
                reps,
                counts_of,
                success,
                self._hot(stressed),
                self._kernel_inputs()[0][k],
                (self.n, self.cells),
                struck,
                self._kernel_inputs()[1],
                self.starts,
            )
            if hits is not None:
                self.defect_hits += hits
            return counts
        uniforms = column_units.take(reps, counts_of)
        # the success test in floats, as the scalar engine makes it; only the
        # failing few (a few percent) get integer keys for their cell
        above = uniforms >= np.repeat(success[reps], counts_of)
        struck = None
        if striking:
            assert live is not None and self.defects is not None
            struck = self.defects.strike(column, reps, counts_of, live)
            if struck is not None:
                above &= struck < 0
        failing = np.flatnonzero(above)
        ends = np.cumsum(counts_of)
        who = reps[np.searchsorted(ends, failing, side="right")]
        keys = (uniforms[failing] * UNIT).astype(np.int64)
        if stressed is None:
            cell = self.cell_tables[k].find(who, keys)
        else:  # each replication on its own day's table
            hot = stressed[who]
            cell = np.empty(len(who), dtype=np.int64)
            for table, mine in (
                (self.cell_tables[k], ~hot),
                (self.stressed_cell_tables[k], hot),
            ):
                cell[mine] = table.find(who[mine], keys[mine])
        cells = self.cells
        counts = np.bincount(who * cells + cell, minlength=self.n * cells).reshape(
            self.n, cells
        )
        if struck is not None:
            self._count_hits(counts, uniforms, struck, np.repeat(reps, counts_of))
        return counts

    def _hot(self, stressed: np.ndarray | None) -> np.ndarray:
        if stressed is None:
            return np.zeros(self.n, dtype=np.bool_)
        return stressed.astype(np.bool_)

    def _kernel_inputs(self) -> tuple[list[tuple], tuple]:
        """Each class's tables, plain and stressed, and each outcome's cells
        alone (`given_ints`, outcome 1 first), as the kernels read them; made
        once per set of replications."""
        if self._kernel_made is None:
            tables = [
                tuple(
                    (t.floor, t.shift, t.lookup, t.edges, t.rows)
                    for t in (plain, stressed)
                )
                for plain, stressed in zip(
                    self.cell_tables, self.stressed_cell_tables, strict=True
                )
            ]
            given = tuple(self.given_ints[o] for o in range(1, len(self.sizes)))
            self._kernel_made = (tables, given)
        return self._kernel_made

    def _count_hits(
        self, counts: np.ndarray, uniforms: np.ndarray, struck: np.ndarray, rep
    ) -> None:
        """Attempts a defect hit, read on their imposed outcome's cells alone
        with their own uniforms (`draws._add_hits`)."""
        hit = struck >= 0
        self.defect_hits += np.bincount(rep[hit], minlength=self.n)
        for outcome in np.unique(struck[hit]).tolist():
            mine = np.flatnonzero(struck == outcome)
            given = self._given(outcome, uniforms[mine], rep[mine])
            start = self.starts[outcome]
            counts[:, start : start + given.shape[1]] += given

    def _given(
        self,
        outcome: int,
        uniforms: np.ndarray,
        who: np.ndarray,
        rows: int | None = None,
    ) -> np.ndarray:
        """(rep, cells) counts of units (replication ``who``) read on one
        outcome's cells alone, each with its own uniform; with ``rows``,
        ``who`` is row * n + rep and the counts are (row, rep, cells)."""
        size = self.given_ints[outcome].shape[1] + 1
        rep = who if rows is None else who % self.n
        keys = (uniforms * UNIT).astype(np.int64) + rep * REPLICATION_KEY
        cell = np.searchsorted(self.given_keys[outcome], keys, side="right")
        cell -= rep * (size - 1)
        shape = (self.n, size) if rows is None else (rows, self.n, size)
        counts = np.bincount(who * size + cell, minlength=int(np.prod(shape)))
        return counts.reshape(shape)

    def _block(self, counts: np.ndarray, outcome: int) -> np.ndarray:
        """An outcome's cells of (..., cells) counts."""
        start = self.starts[outcome]
        return counts[..., start : start + self.sizes[outcome]]

    def _schedule(self, batch, counts, columns, day, hold) -> np.ndarray:
        """`lane_outcomes.schedule`: (rep, outcome, column) counts."""
        return schedule(self, batch, counts, columns, day, hold)

    def _add_stalls(self, column: int, table: np.ndarray, day: int, floor: int) -> None:
        """Put (rep, delay, then) stalls raised on ``day`` on the ledger: due
        after their delay, not before ``floor`` (the day ELS worked them) nor
        before the cohort's release date (held aside until it comes)."""
        due = day + self.stall_days
        if self.held is not None:
            early = (due[None, :] < self.floor[:, None]) & (self.floor[:, None] > floor)
            self.held[:, :, column] += (table * early[:, :, None]).sum(axis=1)
            table = table * ~early[:, :, None]
        if due[0] >= floor:
            rows = self._rows(self.stall_days, day)
            self.stall_cells[rows, column] += table.transpose(1, 0, 2)
            return
        for d, due_day in enumerate(np.maximum(due, floor).tolist()):
            self.stall_cells[due_day % self.ring, column] += table[:, d]

    def worked(
        self, kind: str, batches: list[tuple[int, np.ndarray]], day: int
    ) -> None:
        """ELS worked these (raised day, (rep, column) cases) batches today, in
        the desk's order: their delays drawn now, from streams of their own,
        resolving on the later of delay end and today
        (`cohort.CohortState.worked`). The batches of one stream are read in
        one pass: each replication's units take its stream's uniforms in the
        same order as batch after batch would."""
        if kind == "stall":
            parts = np.stack([part for _, part in batches])  # (batch, rep, column)
            raised_on = np.array([when for when, _ in batches], dtype=np.int64)
            columns = np.flatnonzero(parts.any(axis=(0, 1)))
            if self.compiled:
                assert self.kernel is not None
                streams = self._stall_streams(columns)  # every column in one call
                self.kernel.stalls_worked(
                    streams.state,
                    streams.buffer,
                    columns,
                    parts,
                    self.given_ints[1],
                    raised_on,
                    self.stall_days,
                    day,
                    self.stall_cells,
                )
                return
            for column in columns.tolist():
                counts = self._read("stall", column, parts[:, :, column], 1)
                for (raised, _), batch in zip(batches, counts, strict=True):
                    table = batch.reshape(self.n, *self.stall_shape)
                    self._add_stalls(column, table, raised, day)
            return
        days = self.restore_days
        assert days is not None
        drawn = []
        for raised, part in batches:
            count = part.sum(axis=1)
            if len(days) == 1 and day <= raised + int(days[0]):  # a fixed delay
                self.restore_due[(raised + int(days[0])) % self.ring] += count
            else:
                drawn.append((raised, count))
        if not drawn:
            return
        read = self._read("restore", 0, np.stack([count for _, count in drawn]), 3)
        for (raised, _), counts in zip(drawn, read, strict=True):
            for d, due_day in enumerate(np.maximum(raised + days, day).tolist()):
                self.restore_due[due_day % self.ring] += counts[:, d]

    def _stall_streams(self, columns: np.ndarray) -> LaneStreams:
        """The stall reads' streams of every column stacked, for the kernels:
        each column's made at its first worked stall (as `_stream` makes them)."""
        assert self.kernel is not None
        if self._stacked_stalls is None:
            width = self.stall_cells.shape[1]
            self._stacked_stalls = LaneStreams([None] * width, self.kernel, self.n)
        stack = self._stacked_stalls
        for column in columns.tolist():
            if stack.columns[column] is None:
                stack.add(column, [u.generator(column) for u in self._stall_units])
        return stack

    def _stream(self, purpose: str, column: int) -> Column | KernelColumn:
        """Column ``column``'s per-unit stream for ``purpose`` (stall, restore
        or recovery reads), made at first use."""
        key = (purpose, column)
        stream = self._later.get(key)
        if stream is None:
            units = {
                "stall": self._stall_units,
                "restore": self._restore_units,
                "recovery": self._recovery_units,
            }[purpose]
            stream = self._later[key] = self._column(
                [u.generator(column) for u in units]
            )
        return stream

    def _read(
        self, purpose: str, column: int, n: np.ndarray, outcome: int
    ) -> np.ndarray:
        """(rep, cells) counts of ``n[r]`` units read on one outcome's cells,
        each unit its column's next uniform in the stall (or restoration)
        stream (`draws.draw_counts`); for ``n`` of (batch, rep), (batch, rep,
        cells): each replication reads its batches' units one batch after
        another."""
        stream = self._stream(purpose, column)
        batches = n if n.ndim == 2 else n[None]
        total = batches.sum(axis=0)
        reps = np.flatnonzero(total)
        if isinstance(stream, KernelColumn):
            edges = self.given_ints[outcome]
            counts = stream.given(reps, batches, edges)
            return counts if n.ndim == 2 else counts[0]
        uniforms = stream.take(reps, total[reps])
        # replication after replication, each its batches' units in order
        mine = batches[:, reps].T  # (rep, batch)
        row = np.arange(len(batches))[None, :] * self.n + reps[:, None]
        who = np.repeat(row.ravel(), mine.ravel())
        counts = self._given(outcome, uniforms, who, len(batches))
        return counts if n.ndim == 2 else counts[0]

    def _abandon_lasts(self, by_column: np.ndarray) -> np.ndarray:
        """Abandon the (rep, column) failures on their class's last attempt;
        how many that is, per replication."""
        gone = by_column[:, self.lasts].sum(axis=1)
        self.abandoned += gone
        self.flows[:, _FLOW["abandons"]] += gone
        if self.excluded_last is not None:
            self.excluded += by_column[:, self.excluded_last]
        return gone
