"""The calendar of one run: which days can have migrations.

A day is a working day when it is one of the scenario's working weekdays and
not a closure or a Great Britain bank holiday of its region; a go/no-go
incident, while open, stops migrations on a working day too. The ramp policy
(`policy`) and the ELS / MCC desk (`operations`) read these.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays
import numpy as np

from migsim.model.base import WEEKDAYS
from migsim.model.policy import GoNoGo
from migsim.model.scenario import Scenario
from migsim.model.state import OperationsState
from migsim.sim.delays import cached_pmf

__all__ = [
    "bank_holidays",
    "incident_days",
    "incident_left",
    "working_days",
    "working_days_between",
]

#: Subdivision codes of Great Britain's bank-holiday calendars in `holidays`.
_REGIONS = {"england": "ENG", "scotland": "SCT"}


@lru_cache(maxsize=32)
def _bank_holiday_set(region: str, first_year: int, last_year: int) -> frozenset[date]:
    if region == "none":
        return frozenset()
    calendar = holidays.country_holidays(
        "GB", subdiv=_REGIONS[region], years=range(first_year, last_year + 1)
    )
    return frozenset(calendar)


def bank_holidays(region: str, first: date, last: date) -> list[date]:
    """Great Britain bank holidays of ``region`` from ``first`` to ``last``.

    >>> [str(d) for d in bank_holidays("scotland", date(2020, 1, 1), date(2020, 1, 31))]
    ['2020-01-01', '2020-01-02']
    """
    days = _bank_holiday_set(region, first.year, last.year)
    return sorted(d for d in days if first <= d <= last)


def working_days(scenario: Scenario) -> np.ndarray:
    """Boolean per simulated day: a working weekday, not a closure or bank holiday.

    Read-only: one array per calendar and horizon, shared by every replication
    (each used to build its own, a Python loop over the days).
    """
    calendar = scenario.calendar
    return _working_days(
        tuple(calendar.working_days),
        tuple(calendar.closures),
        calendar.bank_holidays,
        scenario.start_date,
        scenario.horizon_days,
    )


def working_days_between(scenario: Scenario, after: date, through: date) -> int:
    """The scenario's working days after ``after`` up to ``through`` (as the
    engine counts them, `working_days`; days outside its horizon count none):
    whether totals flat over that span had stood still over working days at
    all (a forecast's gap after its actuals, a cohort's stopped totals)."""
    first, last = scenario.day_of(after), scenario.day_of(through)
    return int(working_days(scenario)[max(0, first + 1) : max(0, last + 1)].sum())


@lru_cache(maxsize=64)
def _working_days(
    weekdays: tuple[str, ...],
    closures: tuple[date, ...],
    region: str,
    start: date,
    horizon: int,
) -> np.ndarray:
    allowed = {WEEKDAYS.index(name) for name in weekdays}
    end = start + timedelta(days=horizon - 1)
    closed = set(closures) | set(bank_holidays(region, start, end))
    closed_days = {(d - start).days for d in closed}
    out = np.array(
        [
            (start + timedelta(days=day)).weekday() in allowed
            and day not in closed_days
            for day in range(horizon)
        ]
    )
    out.setflags(write=False)
    return out


def incident_days(scenario: Scenario, streams) -> np.ndarray:
    """Boolean per day: an incident open (no migrations). All False without go_no_go.

    On each calendar day an incident starts with ``incident_probability``
    (whether or not one is open) and stays open for its drawn duration.
    """
    n = scenario.horizon_days
    open_ = np.zeros(n, dtype=bool)
    spec = scenario.go_no_go
    if spec is None:
        return open_
    starts = np.flatnonzero(
        streams.get("go_no_go", "incident_start").random(n) < spec.incident_probability
    )
    days, probs = cached_pmf(spec.incident_duration_days)
    durations = streams.get("go_no_go", "incident_duration").choice(
        days, size=len(starts), p=probs
    )
    for start, duration in zip(starts, durations, strict=True):
        open_[start : start + int(duration)] = True
    return open_


def incident_left(go_no_go: GoNoGo, streams, start: OperationsState) -> int:
    """Days an incident open for ``incident_open_days`` at the start stays open.

    Its remaining days r follow the duration's residual given its age a:
    P(r) proportional to P(D = a + r), r >= 0 (one open period is taken as one
    incident). Drawn from the ``go_no_go`` ``incident_open`` stream.
    """
    days, probs = cached_pmf(go_no_go.incident_duration_days)
    age = start.incident_open_days
    keep = days >= age
    if not keep.any():
        return 0
    rng = streams.get("go_no_go", "incident_open")
    return int(rng.choice(days[keep] - age, p=probs[keep] / probs[keep].sum()))
