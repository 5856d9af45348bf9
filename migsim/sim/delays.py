"""Delays at run time: day tables, their residuals, and due-day ledgers.

A delay (stall resolution, rollback retry, fix-forward restoration, remote
recovery, defect fix) is a distribution over whole days. Its table is built once
per distinct delay; a group of installations is scheduled with one multinomial
draw over it, onto a ledger of counts by due day, never one item per installation.
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
    rng: np.random.Generator,
    by_attempt: np.ndarray,
    pmf: tuple[np.ndarray, np.ndarray],
    day: int,
    not_before: int | None = None,
) -> None:
    """Add counts (kept by attempt number) to a due-day ledger with drawn delays.

    One multinomial per attempt-number group over the delay's day distribution
    (scalar draws per group: numpy's array-broadcast path costs ~6x more):
    cost grows with the number of distinct delays, not with the count.
    ``not_before`` holds every due day at or after that day (a common cause).
    """
    days, probs = pmf
    if len(days) == 1 and not_before is None:
        ledger[day + int(days[0])] += by_attempt
        return
    first, last = int(days[0]), int(days[-1])
    if not_before is None and last - first + 1 == len(days):  # consecutive days
        # the ledger has rows up to the horizon + the longest delay; a slice
        # view is much cheaper to add to than fancy indexing
        rows = ledger[day + first : day + last + 1]
        for attempt, n in enumerate(by_attempt.tolist()):
            if n:
                rows[:, attempt] += rng.multinomial(n, probs)
        return
    due = day + days
    if not_before is not None:
        due = np.minimum(np.maximum(due, not_before), len(ledger) - 1)
    if len(days) == 1:
        ledger[due[0]] += by_attempt
        return
    for attempt, n in enumerate(by_attempt.tolist()):
        if not n:
            continue
        counts = rng.multinomial(n, probs)
        if not_before is None:
            ledger[due, attempt] += counts
        else:  # due days may coincide after the floor
            np.add.at(ledger[:, attempt], due, counts)
