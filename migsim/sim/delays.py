"""Delays at run time: day tables, their residuals, and due-day ledgers.

A delay (stall resolution, rollback retry, fix-forward restoration, remote
recovery, defect fix) is a distribution over whole days. Its table is built once
per distinct delay; each installation's delay is read from its own uniform
(`draws`), and a group lands on a ledger of counts by due day, never one item
per installation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

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
    cells: list[tuple[int, np.ndarray]],
    days: np.ndarray,
    day: int,
    not_before: int | None = None,
) -> None:
    """Add counts by delay to a due-day ledger (rows: days, columns: class x
    attempts made).

    ``cells``: per column, the counts of its units by delay (``days``), each
    unit's delay read from its own uniform (`draws`); ``not_before`` holds every
    due day at or after that day (a common cause).
    """
    due = day + days
    span = None
    if not_before is not None:  # due days may coincide after the floor
        due = np.minimum(np.maximum(due, not_before), len(ledger) - 1)
    elif int(days[-1]) - int(days[0]) + 1 == len(days):
        span = slice(int(due[0]), int(due[-1]) + 1)  # a slice view is cheapest
    for column, counts in cells:
        if span is not None:
            ledger[span, column] += counts
        elif not_before is None:
            ledger[due, column] += counts
        else:
            np.add.at(ledger[:, column], due, counts)
