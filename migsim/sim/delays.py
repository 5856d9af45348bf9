"""Delays at run time: day tables, their residuals, and due-day ledgers.

A delay (stall resolution, rollback retry, fix-forward restoration, remote
recovery, defect fix) is a distribution over whole days. Its table is built once
per distinct delay; each installation of a group draws its delay from its own
uniform (`streams.UnitStreams`), and the group lands on a ledger of counts by
due day, never one item per installation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from migsim.sim.streams import UnitStreams, cumulative

__all__ = ["ONE_DAY", "cached_pmf", "delay_edges", "residual_pmf", "schedule"]

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


def delay_edges(pmf: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The category edges of a delay's day table (see `streams.cumulative`)."""
    return cumulative(pmf[1])


def schedule(
    ledger: np.ndarray,
    units: UnitStreams,
    by_attempt: np.ndarray,
    pmf: tuple[np.ndarray, np.ndarray],
    day: int,
    not_before: int | None = None,
    edges: np.ndarray | None = None,
    failing: tuple[np.ndarray, UnitStreams, float] | None = None,
) -> None:
    """Add counts (kept by attempt number) to a due-day ledger with drawn delays.

    Each installation's delay comes from its own uniform (``units``, by column):
    the k-th installation a column schedules gets the k-th uniform, and its
    delay is the day table's inverse CDF at it, so a change elsewhere (the cap,
    another day's count) leaves its delay in place. Counts by delay are then
    added per column. ``not_before`` holds every due day at or after that day
    (a common cause). ``edges``: `delay_edges` of ``pmf``, if already computed.

    ``failing`` = (ledger, units, success): each installation also draws, from
    its own uniform of ``units``, whether it fails when due (at or above
    ``success``); the failures land on that second ledger at the same due day.
    """
    days, probs = pmf
    fixed = len(days) == 1
    if fixed and not_before is None and failing is None:
        ledger[day + int(days[0])] += by_attempt
        return
    if edges is None and not fixed:
        edges = delay_edges(pmf)
    due = day + days
    if not_before is not None:
        due = np.minimum(np.maximum(due, not_before), len(ledger) - 1)
    # consecutive due days: a slice view is much cheaper than fancy indexing
    span = (
        slice(int(due[0]), int(due[-1]) + 1)
        if not fixed and not_before is None and len(due) == due[-1] - due[0] + 1
        else None
    )
    for attempt, n in enumerate(by_attempt.tolist()):
        if not n:
            continue
        slots = None
        if fixed:
            counts = n
        else:
            slots = np.searchsorted(edges, units.take(attempt, n), side="right")
            counts = np.bincount(slots, minlength=len(days))
        _add(ledger, attempt, due, counts, span, fixed)
        if failing is not None:
            fail_ledger, fail_units, success = failing
            fails = fail_units.take(attempt, n) >= success
            if fixed:
                _add(fail_ledger, attempt, due, int(fails.sum()), span, fixed)
            elif fails.any():
                failed = np.bincount(slots[fails], minlength=len(days))
                _add(fail_ledger, attempt, due, failed, span, fixed)


def _add(ledger, column, due, counts, span, fixed) -> None:
    """Add counts by delay to one column of a ledger at their due days."""
    if fixed:
        ledger[due[0], column] += counts
    elif span is not None:
        ledger[span, column] += counts
    else:  # due days may coincide after a floor
        np.add.at(ledger[:, column], due, counts)
