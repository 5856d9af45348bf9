"""Per-unit draws: one uniform decides an attempt's outcome and all that follows.

The k-th attempt a segment makes in a column (class x attempts made) takes the
k-th uniform of that column's stream (`streams.UnitStreams`). The uniform is
read on one categorical table (`AttemptTable`) whose cells are the outcome
*and* its aftermath: success; stall x resolution delay x (completes, or fails
and retries after delay r); rollback x retry delay; fix forward x restoration
delay; dumb x (recovered after delay d, or awaiting a visit, in or out of
prepayment mode). The cells are laid out outcome by outcome, so reading the
table is the nested inverse CDF: the outcome from the uniform, then each later
choice from what is left of it. An installation's attempt therefore has the
same outcome, delay and result whatever the cap, schedule or rules; they only
move the day it happens.

A batch is counted, not followed: per column, the cells the attempts fell in
(`Drawn.cells`), which the segment adds to its due-day ledgers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from migsim.model.base import OUTCOMES
from migsim.sim.defects import LiveDefect, hit_by_defects
from migsim.sim.streams import Categories, UnitStreams

__all__ = [
    "Aftermath",
    "AftermathKey",
    "AttemptTable",
    "Drawn",
    "attempt_tables",
    "draw_batch",
    "draw_counts",
]

STALL, ROLLBACK, FIX_FORWARD, DUMB = 1, 2, 3, 4
_ONE = np.ones(1)


@dataclass(frozen=True)
class Aftermath:
    """What follows each outcome other than success, as probabilities of cells.

    ``stall``: resolution delay x (complete, fail and retry after delay r), a
    (delays, 1 + retry delays) table; ``rollback``: by retry delay;
    ``fix_forward``: by restoration delay; ``dumb``: recovered by recovery delay,
    then (not recovered) in prepayment mode, not in prepayment mode.
    """

    stall: np.ndarray
    rollback: np.ndarray
    fix_forward: np.ndarray
    dumb: np.ndarray

    @classmethod
    def of(
        cls,
        stall_delay: np.ndarray | None,
        then_success: float,
        retry_delay: np.ndarray | None,
        restore_delay: np.ndarray | None,
        recovered_share: float,
        recovery_delay: np.ndarray | None,
        prepayment_share: float,
    ) -> Aftermath:
        """Tables from the delays' day probabilities (``None``: the section is
        absent and its outcome never happens, or waits one fixed delay)."""
        retry = _ONE if retry_delay is None else retry_delay
        then = (
            np.concatenate([[then_success], (1.0 - then_success) * retry])
            if then_success < 1.0
            else np.array([1.0, *([0.0] * len(retry))])
        )
        stall = np.outer(_ONE if stall_delay is None else stall_delay, then)
        recovered = recovered_share * (
            _ONE if recovery_delay is None else recovery_delay
        )
        visit = (1.0 - recovered_share) * np.array(
            [prepayment_share, 1.0 - prepayment_share]
        )
        return cls(
            stall=stall,
            rollback=retry,
            fix_forward=_ONE if restore_delay is None else restore_delay,
            dumb=np.concatenate([recovered, visit]),
        )

    def blocks(self) -> list[np.ndarray]:
        """Each outcome's cells (flat), success first."""
        return [
            _ONE,
            self.stall.ravel(),
            self.rollback,
            self.fix_forward,
            self.dumb,
        ]


class AttemptTable:
    """One class's outcome rates joined with the segment's aftermath: the cells
    of one attempt, read with one uniform (see the module docstring)."""

    def __init__(
        self,
        rates: np.ndarray,
        aftermath: Aftermath,
        given: list[Categories] | None = None,
    ):
        blocks = aftermath.blocks()
        self.sizes = [len(b) for b in blocks]
        self.starts = np.cumsum([0, *self.sizes[:-1]]).tolist()
        self.cells = Categories(
            np.concatenate([p * b for p, b in zip(rates, blocks, strict=True)])
        )
        self.success = self.cells.edges[0]  # below it: success, nothing follows
        # each outcome's cells alone: for attempts a defect gives their outcome
        # (the aftermath's alone: tables of one aftermath may share them)
        self.given = [Categories(b) for b in blocks] if given is None else given

    def block(self, counts: np.ndarray, outcome: int) -> np.ndarray:
        """The counts of one outcome's cells."""
        start = self.starts[outcome]
        return counts[start : start + self.sizes[outcome]]


def _array(values: tuple[float, ...] | None) -> np.ndarray | None:
    return None if values is None else np.array(values)


class AftermathKey(NamedTuple):
    """`Aftermath.of`'s arguments as plain numbers and tuples: hashable, so the
    tables built from them are cached by them."""

    stall_delay: tuple[float, ...] | None
    then_success: float
    retry_delay: tuple[float, ...] | None
    restore_delay: tuple[float, ...] | None
    recovered_share: float
    recovery_delay: tuple[float, ...] | None
    prepayment_share: float


@lru_cache(maxsize=256)
def attempt_tables(
    rates: tuple[tuple[float, ...], ...], after: AftermathKey
) -> tuple[list[AttemptTable], Aftermath]:
    """An `AttemptTable` per rates (class), and the aftermath they share.

    Built once per distinct set of rates and delays: building one costs more
    than a replication's day of draws, and a run's replications mostly share
    them. Where each replication draws its own rates, they still mostly share
    the aftermath.
    """
    aftermath, given = _aftermath(after)
    return [AttemptTable(np.array(r), aftermath, given) for r in rates], aftermath


@lru_cache(maxsize=256)
def _aftermath(after: AftermathKey) -> tuple[Aftermath, list[Categories]]:
    """`Aftermath.of` and each outcome's cells alone (`AttemptTable.given`),
    once per distinct set of delays: a run whose replications draw their own
    outcome rates (an uncertain input) built the same ones in every one."""
    aftermath = Aftermath.of(
        _array(after.stall_delay),
        after.then_success,
        _array(after.retry_delay),
        _array(after.restore_delay),
        after.recovered_share,
        _array(after.recovery_delay),
        after.prepayment_share,
    )
    return aftermath, [Categories(b) for b in aftermath.blocks()]


@dataclass(frozen=True)
class Drawn:
    """A batch's outcomes: counts (outcomes x columns) and, per column that
    had any failure, the counts of its cells (`AttemptTable`)."""

    by_outcome: np.ndarray
    cells: list[tuple[int, np.ndarray]]
    hits: int


def draw_batch(
    batch: np.ndarray,
    units: UnitStreams,
    tables: list[AttemptTable],
    size: int,
    live: list[LiveDefect] | None = None,
    defect_columns: np.ndarray | None = None,
) -> Drawn:
    """Each attempt's cell from its uniform; ``tables``: by class.

    ``size`` is the columns per class (column // size is the class). Live latent
    defects (`defects.live_defects`) hit attempts from their own streams first;
    a hit attempt's uniform is read on its imposed outcome's cells alone.
    """
    by_outcome = np.zeros((len(OUTCOMES), len(batch)), dtype=np.int64)
    cells = []
    hits = 0
    for column, n in enumerate(batch.tolist()):
        if not n:
            continue
        uniforms = units.take(column, n)
        table = tables[column // size]
        failing = uniforms >= table.success
        struck = None
        if live:
            struck = hit_by_defects(live, column, n, defect_columns)
            if struck is not None:
                failing &= struck < 0
        mine = uniforms[failing]
        if struck is None and not len(mine):  # all succeeded: nothing follows
            by_outcome[0, column] = n
            continue
        # (array methods: numpy's function wrappers cost more than the work)
        counts = np.bincount(
            table.cells.edges.searchsorted(mine, side="right"),
            minlength=table.cells.size,
        )
        if struck is not None:
            hits += _add_hits(counts, table, uniforms, struck)
        totals = np.add.reduceat(counts, table.starts).tolist()
        failed = sum(totals) - totals[0]
        totals[0] = n - failed
        by_outcome[:, column] = totals
        if failed:
            cells.append((column, counts))
    return Drawn(by_outcome, cells, hits)


def _add_hits(counts, table, uniforms, struck) -> int:
    """Count the attempts a defect hit into their imposed outcome's cells."""
    hit = struck >= 0
    for outcome in np.unique(struck[hit]).tolist():
        theirs = uniforms[struck == outcome]
        start = table.starts[outcome]
        counts[start : start + table.sizes[outcome]] += table.given[outcome].counts(
            theirs
        )
    return int(np.count_nonzero(hit))


def draw_counts(
    units: UnitStreams, by_column: np.ndarray, table: Categories
) -> list[tuple[int, np.ndarray]]:
    """Counts by column read on ``table``, each unit its column's next uniform
    (draws made later than the attempt: ELS, recoveries, a mid-programme start)."""
    return [
        (c, table.counts(units.take(c, n)))
        for c, n in enumerate(by_column.tolist())
        if n
    ]
