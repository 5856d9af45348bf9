"""Per-unit draws of a day's batch: each attempt's outcome, from its own uniform.

The k-th attempt a segment makes in a column (class x attempts made) takes the
k-th uniform of that column's stream (`streams.UnitStreams`). Its outcome is the
category the uniform falls in (`streams.Categories`), and what is left of the
uniform is handed on, so the same uniform also decides the attempt's aftermath
(a stall's delay and result, a rollback's retry delay, a fix forward's
restoration, a dumb device's recovery). Units travel as *groups*: a list of
``(column, uniforms)`` pairs in column order; most days a segment attempts one
column, so the work is a handful of array operations per column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from migsim.model.base import OUTCOMES
from migsim.sim.defects import LiveDefect, hit_by_defects
from migsim.sim.streams import BELOW_ONE, Categories, UnitStreams

__all__ = ["Drawn", "Groups", "draw_outcomes", "unit_groups"]

#: Units by column: ``[(column, uniforms), ...]`` in column order.
Groups = list[tuple[int, np.ndarray]]


@dataclass(frozen=True)
class Drawn:
    """A batch's outcomes.

    Attributes
    ----------
    by_outcome
        Counts, outcomes x columns.
    after
        For each outcome other than success (index into OUTCOMES): its units'
        fresh uniforms as `Groups` (empty when it did not occur).
    hits
        Attempts given their outcome by a latent defect.
    """

    by_outcome: np.ndarray
    after: list[Groups]
    hits: int


def unit_groups(units: UnitStreams, by_column: np.ndarray) -> Groups:
    """Counts by column as groups, each unit its column's next uniform."""
    return [(c, units.take(c, n)) for c, n in enumerate(by_column.tolist()) if n]


def draw_outcomes(
    batch: np.ndarray,
    units: UnitStreams,
    tables: list[Categories],
    size: int,
    live: list[LiveDefect] | None = None,
    defect_columns: np.ndarray | None = None,
) -> Drawn:
    """Each attempt's outcome from its uniform; ``tables``: outcomes by class.

    ``size`` is the columns per class (column // size is the class). Live latent
    defects (`defects.live_defects`) hit attempts from their own streams first;
    a hit attempt's uniform is handed on whole (it is independent of the hit).
    """
    by_outcome = np.zeros((len(OUTCOMES), len(batch)), dtype=np.int64)
    after: list[Groups] = [[] for _ in OUTCOMES]
    hits = 0
    for column, n in enumerate(batch.tolist()):
        if not n:
            continue
        uniforms = units.take(column, n)
        table = tables[column // size]
        # successes need nothing more: only the others are sorted out
        # (array methods: numpy's function wrappers cost more than the work)
        failed = (uniforms >= table.edges[0]).nonzero()[0]
        mine = uniforms[failed]
        kinds = table.edges.searchsorted(mine, side="right")
        hit = None
        if live:
            struck = hit_by_defects(live, column, n, defect_columns)
            if struck is not None:
                mine, kinds, hit = _with_hits(failed, kinds, uniforms, struck)
                hits += int(np.count_nonzero(struck >= 0))
        total = len(kinds)
        by_outcome[0, column] = n - total
        if not total:
            continue
        counts = np.bincount(kinds, minlength=len(OUTCOMES))
        by_outcome[1:, column] = counts[1:]
        counts = counts.tolist()
        for kind in range(1, len(OUTCOMES)):
            if not counts[kind]:
                continue
            alone = counts[kind] == total  # all failures of one kind
            theirs = mine if alone else mine[kinds == kind]
            rest = (theirs - table.low[kind]) / table.width[kind]
            np.minimum(rest, BELOW_ONE, out=rest)
            if hit is not None:  # a hit's uniform is handed on whole
                whole = hit if alone else hit[kinds == kind]
                rest[whole] = theirs[whole]
            after[kind].append((column, rest))
            if alone:
                break
    return Drawn(by_outcome, after, hits)


def _with_hits(failed, kinds, uniforms, struck):
    """Give the attempts a live defect hit its outcome.

    Returns the failures' uniforms, outcomes and whether each was hit, in
    position order; a defect whose outcome is success leaves a success.
    """
    hit = np.flatnonzero(struck >= 0)
    keep = ~np.isin(failed, hit)
    harmful = hit[struck[hit] > 0]
    positions = np.concatenate([failed[keep], harmful])
    order = np.argsort(positions, kind="stable")
    mine = uniforms[positions[order]]
    kinds = np.concatenate([kinds[keep], struck[harmful]])[order]
    was_hit = np.concatenate([np.zeros(keep.sum(), bool), np.ones(len(harmful), bool)])
    return mine, kinds, was_hit[order]
