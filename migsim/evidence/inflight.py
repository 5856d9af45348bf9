"""In-flight installations on an as-of date, detailed from actuals.

`migsim.evidence.state` rebuilds the counts of a cohort's states at the end of
a date; this module gives the in-flight ones their detail:

- **Days until due** (`due_weights`): an installation that entered a state on
  day ``as_of - a`` and is still there has a delay longer than ``a``; each due
  day is weighted by the inflow of each day times the probability of that delay.
- **Attempts made** (`attempt_tables`, `split_by_attempts`): late in a programme
  the retries in flight have made several attempts and are mostly hard cases.
  A mean-field replay of the cohort's queue by class (`migsim.evidence.classes`)
  over the reported rows gives the expected rolled-back, stalled and recovering
  installations by due day and attempts made; each group is shared over
  attempts made by it.
- **Dumb devices awaiting remote recovery** (`recovering_weights`): from the
  reported dumbs by day and the recovery delay, consistent with the reported
  recoveries; `awaiting_recovery` gives their expected count on every reported
  day (the backlog read from actuals counts them, as a run's does).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from migsim.evidence.actuals import Actuals
from migsim.evidence.classes import in_flight_by_attempts, row_counts
from migsim.model.scenario import Scenario
from migsim.sim.allocation import largest_remainder
from migsim.sim.delays import cached_pmf

__all__ = [
    "attempt_tables",
    "awaiting_recovery",
    "due_groups",
    "due_weights",
    "recovering_weights",
    "recoveries_by_row",
    "split_by_attempts",
]


def due_weights(
    inflow: np.ndarray,
    ages: np.ndarray,
    pmf: tuple[np.ndarray, np.ndarray],
    not_before: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Due days after the as-of date (1 = the next day) and their expected counts.

    ``inflow[i]`` entered ``ages[i]`` days before the as-of date; one that is
    still waiting has a delay longer than its age. Each due day is weighted by
    the inflow times the probability of that delay (``not_before``: no due day
    before it, as ``release_on`` does for stalls). The weights sum to the
    expected count still waiting.
    """
    days, probs = pmf
    entered = inflow > 0
    due = days[None, :] - ages[entered, None]
    if not_before is not None:
        due = np.maximum(due, not_before)
    mass = inflow[entered, None] * probs[None, :]
    waiting = due >= 1
    if not waiting.any():
        return np.zeros(0, dtype=int), np.zeros(0)
    keys, where = np.unique(due[waiting], return_inverse=True)
    return keys, np.bincount(where, weights=mass[waiting])


def _largest_remainder(n: int, weights: np.ndarray) -> np.ndarray:
    """``n`` shared in proportion to ``weights`` (`allocation.largest_remainder`)."""
    return np.array(largest_remainder(n, (weights / weights.sum()).tolist()), int)


def due_groups(n: int, keys: np.ndarray, weights: np.ndarray) -> list[dict[str, int]]:
    """``n`` installations shared over due days in proportion to the weights."""
    if n <= 0 or not len(keys) or weights.sum() <= 0:
        return []
    whole = _largest_remainder(n, weights)
    return [
        {"count": int(c), "days_until_due": int(k)}
        for k, c in zip(keys, whole, strict=True)
        if c
    ]


def split_by_attempts(
    groups: list[dict[str, int]], table: np.ndarray | None, top: int
) -> list[dict[str, int]]:
    """Share each group's count over attempts made 1..``top`` by the replay's table.

    ``table`` (days until due - 1, attempts made) holds the replay's expected
    counts; a group takes the row of its due day when that row has any (the
    joint distribution), else the state's overall shares. Largest remainders,
    the remainders carried from group to group, so the totals by attempts made
    keep the replay's shares even when the groups are small (a group of one
    would otherwise always take the most likely count). Without a table, or
    with nothing in it, every group made one attempt.
    """
    if table is None or table[:, 1 : top + 1].sum() <= 1e-9:
        return [{**g, "attempts_made": 1} for g in groups]
    overall = table[:, 1 : top + 1].sum(axis=0)
    carry = np.zeros(top)
    out: list[dict[str, int]] = []
    for group in groups:
        row = group["days_until_due"] - 1
        shares = table[row, 1 : top + 1] if row < len(table) else overall
        if shares.sum() <= 1e-9:
            shares = overall
        n = group["count"]
        target = n * shares / shares.sum() + carry
        whole = _largest_remainder(n, np.clip(target, 1e-12, None))
        carry = target - whole
        out.extend(
            {**group, "count": int(c), "attempts_made": m}
            for m, c in enumerate(whole.tolist(), start=1)
            if c
        )
    return out


def attempt_tables(
    scenario: Scenario, cohort, rows: pd.DataFrame, actuals: Actuals, as_of: date
) -> dict[str, np.ndarray] | None:
    """The replay's in-flight tables by due day and attempts made, or None.

    ``None`` when the rows lack what the replay needs: the outcome columns, or
    attempts to infer those missing from (as calibration reads them).
    """
    index = scenario.cohorts.index(cohort)
    prior = cohort.outcomes.as_array()
    counted = row_counts(rows, actuals, prior, cohort.name, [])
    if counted is None or not len(rows):
        return None
    counts, _ = counted
    return in_flight_by_attempts(
        scenario, index, rows, counts, actuals.frame, scenario.day_of(as_of)
    )


def recoveries_by_row(cohort, rows: pd.DataFrame) -> np.ndarray:
    """Dumb devices recovered remotely on each row's day: reported, else expected.

    Expected: each day's dumbs times the recovered share, spread over the
    recovery delay's pmf (onto the rows' dates; rows missing days lose them).
    """
    if "dumb_recoveries" in rows.columns:
        return rows["dumb_recoveries"].to_numpy(float)
    dumb = cohort.dumb
    if dumb is None or not dumb.recovered_share or "dumbs" not in rows.columns:
        return np.zeros(len(rows))
    if not len(rows):
        return np.zeros(0)
    days, probs = cached_pmf(dumb.recovered_after_days)
    index = (rows["date"] - rows["date"].min()).dt.days.to_numpy()
    span = np.zeros(int(index.max()) + int(days.max()) + 1)
    for d, p in zip(days.tolist(), probs.tolist(), strict=True):
        np.add.at(span, index + d, rows["dumbs"].to_numpy(float) * p)
    return span[index] * dumb.recovered_share


def recovering_weights(
    cohort, rows: pd.DataFrame, as_of: date
) -> tuple[np.ndarray, np.ndarray, float]:
    """Dumb devices awaiting remote recovery at the end of ``as_of``.

    A dumb device of day ``as_of - a`` is recovered by then with probability
    s x P(D <= a) and still awaiting recovery with s x P(D > a) (s the
    recovered share, D the recovery delay). The reported recoveries (the
    ``dumb_recoveries`` column) are used as follows: they are shared between
    the days the devices went dumb in proportion to the recoveries expected from
    each, taken out of that day's dumbs, and each device left awaits recovery
    with the conditional probability s P(D > a) / (1 - s P(D <= a)). When as
    many were reported as expected this is the unconditional estimate; more
    reported recoveries leave fewer awaiting, fewer leave more. Without the
    column, the expected recoveries stand in for the reported.

    Returns the due days (1 = the next day), their expected counts (the
    residual of the delay given the age, as for stalls) and the expected
    recoveries so far.
    """
    dumb = cohort.dumb
    if dumb is None or not dumb.recovered_share or "dumbs" not in rows.columns:
        return np.zeros(0, dtype=int), np.zeros(0), 0.0
    share = float(dumb.recovered_share)
    pmf = cached_pmf(dumb.recovered_after_days)
    days, probs = pmf
    ages = (pd.Timestamp(as_of) - rows["date"]).dt.days.to_numpy()
    dumbs = rows["dumbs"].to_numpy(float)
    done = np.array([probs[days <= a].sum() for a in ages.tolist()]).reshape(-1)
    expected = dumbs * share * done  # recovered by the as-of date, by day of origin
    total = float(expected.sum())
    reported = (
        float(rows["dumb_recoveries"].sum())
        if "dumb_recoveries" in rows.columns
        else total
    )
    taken = expected * (reported / total) if total > 0 else np.zeros_like(expected)
    left = np.clip(dumbs - taken, 0, None)
    inflow = np.divide(
        left * share,
        1.0 - share * done,
        out=np.zeros_like(left),
        where=1.0 - share * done > 1e-12,
    )
    keys, weights = due_weights(inflow, ages, pmf)
    return keys, weights, total


def awaiting_recovery(cohort, rows: pd.DataFrame) -> np.ndarray:
    """Dumb devices expected to await remote recovery at the end of each row's
    date: `recovering_weights`' expected count (the sum of its weights) as of
    that date, from the rows up to it, for every row at once.

    Zeros when the cohort recovers none (no ``dumb.recovered_share``) or the
    rows report no ``dumbs``. ``rows`` are one cohort's, in date order, one a
    date. Only the days of origin younger than the delay's longest are worked
    pair by pair; the older ones, all recovered by then if at all, enter as
    one sum: time and memory grow with the rows times the delay's span, not
    with the rows squared (20 years of daily rows would have taken gigabytes).
    """
    n = len(rows)
    dumb = cohort.dumb
    if dumb is None or not dumb.recovered_share or "dumbs" not in rows.columns:
        return np.zeros(n)
    if not n:
        return np.zeros(0)
    share = float(dumb.recovered_share)
    days, probs = cached_pmf(dumb.recovered_after_days)
    cdf = np.cumsum(np.bincount(np.clip(days, 0, None), weights=probs))
    last, c = len(cdf) - 1, float(cdf[-1])  # from age `last` on, P(D <= age) = c
    when = (rows["date"] - rows["date"].min()).dt.days.to_numpy()
    dumbs = rows["dumbs"].to_numpy(float)
    # (as-of row i, k): origin row i - k, the young ones (age < last) only
    first = np.searchsorted(when, when - last, side="right")
    width = int((np.arange(n) - first).max()) + 1
    origin = np.arange(n)[:, None] - np.arange(width)[None, :]
    young = origin >= first[:, None]
    origin = np.where(young, origin, 0)
    ages = when[:, None] - when[origin]
    done = np.where(young, cdf[np.clip(ages, 0, last)], 0.0)  # P(D <= age)
    own = np.where(young, dumbs[origin], 0.0)
    cumulative = np.cumsum(dumbs)
    old = np.where(first > 0, cumulative[first - 1], 0.0)  # dumbs of older rows
    expected = own * share * done  # recovered by each as-of date, by origin
    total = expected.sum(axis=1) + old * share * c
    reported = (
        np.cumsum(rows["dumb_recoveries"].to_numpy(float))
        if "dumb_recoveries" in rows.columns
        else total
    )
    ratio = np.divide(reported, total, out=np.zeros(n), where=total > 0)
    left = np.clip(own - expected * ratio[:, None], 0, None)
    still = 1.0 - share * done
    inflow = np.divide(
        left * share, still, out=np.zeros_like(left), where=still > 1e-12
    )
    waiting = (inflow * (1.0 - done)).sum(axis=1)  # each still waits: D > its age
    if 1.0 - share * c > 1e-12:  # the older rows' devices, in one sum
        kept = old * np.clip(1.0 - share * c * ratio, 0, None)
        waiting += kept * share / (1.0 - share * c) * (1.0 - c)
    return waiting
