"""Delays at run time: day tables, their residuals, and due-day ledgers.

A delay (stall resolution, rollback retry, fix-forward restoration, remote
recovery, defect fix) is a distribution over whole days. Its table is built once
per distinct delay; each installation of a group draws its delay from its own
uniform (`streams.UnitStreams`), and the group lands on a ledger of counts by
due day, never one item per installation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from migsim.sim.streams import Categories

if TYPE_CHECKING:
    from migsim.sim.draws import Groups

__all__ = ["ONE_DAY", "cached_pmf", "residual_pmf", "schedule"]

#: A delay of exactly one day (the shortest any ledger must hold).
ONE_DAY = (np.array([1]), np.array([1.0]))


@lru_cache(maxsize=1024)
def cached_pmf(delay) -> tuple[np.ndarray, np.ndarray]:
    """``delay.pmf()`` computed once per distinct delay (read-only arrays).

    Delays are frozen models, so equal delays share one table; building a
    triangular or lognormal table costs milliseconds, far more than a day.
    """
    days, probs = delay.pmf()
    days.setflags(write=False)
    probs.setflags(write=False)
    return days, probs


def residual_pmf(pmf: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Days still to wait of something in flight, when only the count is known.

    Under a steady inflow, an item seen in flight has r more days to wait with
    probability proportional to P(D >= r), r = 1 .. the longest delay (the
    residual, or equilibrium, distribution of the delay D).
    """
    days, probs = pmf
    last = int(days[-1])
    mass = np.zeros(last + 1)
    mass[days] = probs
    survival = mass[::-1].cumsum()[::-1][1:]  # P(D >= r) for r = 1 .. last
    return np.arange(1, last + 1), survival / survival.sum()


def schedule(
    ledger: np.ndarray,
    groups: Groups,
    pmf: tuple[np.ndarray, np.ndarray],
    day: int,
    not_before: int | None = None,
    table: Categories | None = None,
) -> None:
    """Add units to a due-day ledger (rows: days, columns: class x attempts made).

    Each unit's delay is the day table's inverse CDF at its own uniform (from a
    per-unit stream, or what is left of the uniform that decided its outcome),
    so a change elsewhere (the cap, another day's count) leaves each delay in
    place. ``groups``: the units' uniforms by column (`draws.Groups`);
    ``not_before`` holds every due day at or after that day (a common cause);
    ``table``: the delay's `Categories`, if already built.
    """
    days, probs = pmf
    if len(days) == 1:  # a fixed delay: nothing to draw
        due = day + int(days[0])
        if not_before is not None:
            due = min(max(due, not_before), len(ledger) - 1)
        for column, uniforms in groups:
            ledger[due, column] += len(uniforms)
        return
    if table is None:
        table = Categories(probs)
    due = day + days
    if not_before is not None:  # due days may coincide after the floor
        due = np.minimum(np.maximum(due, not_before), len(ledger) - 1)
    span = (
        slice(int(due[0]), int(due[-1]) + 1)
        if not_before is None and int(days[-1]) - int(days[0]) + 1 == len(days)
        else None
    )
    for column, uniforms in groups:
        counts = table.counts(uniforms)
        if span is not None:  # consecutive days: a slice view is cheapest
            ledger[span, column] += counts
        elif not_before is None:
            ledger[due, column] += counts
        else:
            np.add.at(ledger[:, column], due, counts)
