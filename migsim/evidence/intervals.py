"""A run's Monte Carlo intervals: the ``ci95`` and ``p_clear_by`` summary sections.

A run of R replications estimates each figure; a different R (or seed) would
give a slightly different estimate. `annotate` adds to a run's summary by how
much (``ci95``, ``p_clear_by``, ``p_clear_by_ci95``, ``p_clear_by_cohort``), so
``summary.json`` carries them; the intervals themselves are computed in
`migsim.common.stats` (see `migsim.evidence.forecast` for what each one is).

Every ``migsim run`` annotates its results, so this module is kept apart from
the forecast from actuals: a plain run never loads calibration, the actuals'
readers or the optimisers behind them. Everything here reads only the public
`Results` API (``figure``, ``clearance_days``, ``cohort_names``, ``scenario``,
``n_replications``), so it works on a saved run too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from migsim.common.errors import MigsimError
from migsim.common.stats import (
    LEVEL,
    json_number,
    mean_ci95,
    proportion_ci95,
    quantile_ci95,
    statistic_quantile,
)
from migsim.model.scenario import Scenario
from migsim.results.results import FIGURES, STATISTICS, Results

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import pandas as pd

__all__ = [
    "RunLike",
    "annotate",
    "check_by_dates",
    "ci95_section",
    "last_few_note",
    "p_clear_by",
    "p_clear_by_sections",
]


class RunLike(Protocol):
    """What the statistics need from a run: `Results`, or a run read back from disk."""

    scenario: Scenario
    seed: int

    @property
    def n_replications(self) -> int: ...

    @property
    def replication_ids(self) -> np.ndarray: ...

    @property
    def cohort_names(self) -> list[str]: ...

    def figure(self, name: str, cohort: str | None = None) -> np.ndarray: ...

    def clearance_days(self, cohort: str | None = None) -> np.ndarray: ...

    def bands(
        self,
        name: str,
        cohort: str | None = None,
        quantiles: Sequence[float] = ...,
        scale: np.ndarray | None = ...,
    ) -> pd.DataFrame: ...

    @property
    def dates(self) -> pd.DatetimeIndex: ...

    @property
    def summary(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- intervals
def p_clear_by(days: Sequence[float] | np.ndarray, day: int) -> float:
    """Share of replications whose clearance day is at or before ``day``.

    A replication that did not clear (+inf) never counts as cleared.

    >>> p_clear_by([3, 5, 5, float("inf")], 5)
    0.75
    """
    array = np.asarray(days, dtype=float)
    return float((array <= day).mean()) if len(array) else math.nan


# --------------------------------------------------------------------------- sections
#: The natural bound of every figure: each is a count or a day number, never
#: below 0, so neither is its mean's interval.
_FLOOR = 0.0


def _interval(values: np.ndarray, statistic: str) -> list[float | int | None] | None:
    q = statistic_quantile(statistic)
    if q is None:
        ci = mean_ci95(values, floor=_FLOOR)
        return None if ci is None else [json_number(ci[0]), json_number(ci[1])]
    low, high = quantile_ci95(values, q)
    return [json_number(low), json_number(high)]


def _date_text(scenario: Scenario, day: float | None) -> str | None:
    if day is None:
        return None
    if not math.isfinite(day):
        return f"after {scenario.end_date.isoformat()}"
    return scenario.date_of(int(day)).isoformat()


def _date_intervals(
    scenario: Scenario, days: np.ndarray
) -> dict[str, list[str | None]]:
    out = {}
    for statistic in STATISTICS:
        q = statistic_quantile(statistic)
        if q is None:
            continue
        low, high = quantile_ci95(days, q)
        out[statistic] = [_date_text(scenario, low), _date_text(scenario, high)]
    return out


def _figure_intervals(run: RunLike, cohort: str | None) -> dict[str, dict[str, Any]]:
    return {
        name: {s: _interval(run.figure(name, cohort), s) for s in STATISTICS}
        for name in FIGURES
    }


def ci95_section(run: RunLike) -> dict[str, Any]:
    """The ``ci95`` summary section: 95% intervals of every statistic.

    ``clearance_date`` holds ISO dates (``"after <end>"`` for a replication that
    did not clear; ``None`` where too few replications bound that side);
    ``figures`` mirrors the summary's ``figures`` with ``[low, high]`` per
    statistic (``None`` for a mean that is undefined); ``cleared_share`` is the
    Wilson interval of the share cleared within the horizon.
    """
    days = run.clearance_days()
    out: dict[str, Any] = {
        "level": LEVEL,
        "cleared_share": _cleared_share(days),
        "clearance_date": _date_intervals(run.scenario, days),
        "figures": _figure_intervals(run, None),
        "cohorts": {},
    }
    for cohort in run.cohort_names:
        cohort_days = run.clearance_days(cohort)
        out["cohorts"][cohort] = {
            "cleared_share": _cleared_share(cohort_days),
            "clearance_date": _date_intervals(run.scenario, cohort_days),
            "figures": _figure_intervals(run, cohort),
        }
    return out


def _share_interval(successes: int, n: int) -> list[float | int | None]:
    """The Wilson interval as summary.json holds it (floats, six decimals)."""
    return [json_number(v, ints=None) for v in proportion_ci95(successes, n)]


def _cleared_share(days: np.ndarray) -> list[float | int | None]:
    return _share_interval(int(np.isfinite(days).sum()), len(days))


def check_by_dates(scenario: Scenario, dates: Iterable[date]) -> list[date]:
    """The ``--by`` dates, sorted and unique; a date after the horizon end or
    before the start is an error.

    After the horizon end a replication that has not cleared may or may not
    clear by then, so the probability is unknown: extend ``horizon_days``.
    Before the start nothing has run: the 0% it gave answered no question (a
    mistyped year).
    """
    out = sorted(set(dates))
    early = [d for d in out if d < scenario.start_date]
    if early:
        raise MigsimError(
            f"--by {early[0].isoformat()}: before the scenario's start "
            f"{scenario.start_date.isoformat()}; ask about a date from then on"
        )
    late = [d for d in out if d > scenario.end_date]
    if late:
        raise MigsimError(
            f"--by {late[0].isoformat()}: after the horizon end "
            f"{scenario.end_date.isoformat()}; extend horizon_days to ask about it"
        )
    return out


def p_clear_by_sections(run: RunLike, dates: Iterable[date]) -> dict[str, Any]:
    """``p_clear_by`` ({ISO date: p}), its Wilson ``p_clear_by_ci95`` and per cohort.

    Dates must be within the scenario, from its start to the horizon end (see
    `check_by_dates`).
    """
    dates = check_by_dates(run.scenario, dates)
    days = run.clearance_days()
    n = len(days)
    p, ci, cohorts = {}, {}, {}
    for when in dates:
        key = when.isoformat()
        value = p_clear_by(days, run.scenario.day_of(when))
        p[key] = value
        ci[key] = _share_interval(round(value * n), n)
    for cohort in run.cohort_names:
        cohort_days = run.clearance_days(cohort)
        cohorts[cohort] = {
            when.isoformat(): p_clear_by(cohort_days, run.scenario.day_of(when))
            for when in dates
        }
    return {"p_clear_by": p, "p_clear_by_ci95": ci, "p_clear_by_cohort": cohorts}


def annotate(results: Results, by: Iterable[date] = ()) -> Results:
    """Add ``ci95`` and the ``p_clear_by`` sections to a run's summary; returns it.

    Parameters
    ----------
    results
        A finished run.
    by
        Dates to give P(cleared by that date) for (``--by``).
    """
    results.annotate("ci95", ci95_section(results))
    for key, value in p_clear_by_sections(results, by).items():
        results.annotate(key, value)
    return results


#: The share of the installations left that counts as "the last few".
LAST_FEW = 0.01
#: Days between the median backlog reaching the last few and the median
#: clearance date from which the gap is worth telling a planner.
LAST_FEW_DAYS = 14


def last_few_note(results: RunLike) -> str | None:
    """A line for when the median clearance date waits on the last few
    installations: the date the median backlog falls to `LAST_FEW` of the
    installations, when the P50 clearance date is `LAST_FEW_DAYS` or more
    later (or after the horizon). Clearance is the last installation resolved,
    so one stalled installation can hold the date back for weeks while the
    programme is, to a planner, done; None otherwise (or with no daily rows)."""
    if not getattr(results, "has_daily", True):
        return None
    scenario = results.scenario
    limit = max(1, int(LAST_FEW * scenario.installations))
    median = results.bands("remaining", quantiles=(0.5,))
    below = median.loc[median["p50"] <= limit, "date"]
    if below.empty:
        return None
    reached = below.iloc[0].date()
    p50 = results.summary["clearance_date"]["p50"]
    if p50 is None:
        return None
    if not p50.startswith("after"):
        if (date.fromisoformat(p50) - reached).days < LAST_FEW_DAYS:
            return None
    head = (
        f"The median backlog falls to {LAST_FEW:.0%} of the installations "
        f"({limit:,} of "
        f"{scenario.installations:,}) by {reached.isoformat()}"
    )
    if p50.startswith("after"):
        end = median.iloc[-1]
        return (
            f"{head} and is still {int(end['p50']):,} on "
            f"{end['date'].date().isoformat()}: the median clearance date, {p50}, "
            "waits on the last few (stalls and retries)."
        )
    return (
        f"{head}; the last few (stalls and retries) take it to the median "
        f"clearance date, {p50}."
    )
