"""The ELS / MCC desk as the actuals show it: the day each day's cases are worked.

The engine's desk (`migsim.sim.els`) works cases first in, first out, a
limited number per working day, and a stall resolves no earlier than the day
its case is worked. When the desk backs up, stalls wait for it: their failures
come back as retries later than their resolution delay says, so fewer of the
in-flight retries are first failures than a replay that ignores the desk
expects. On ``nov2019_operations`` with the desk cut from 300 to 40 cases a day,
a replay without the desk put the mean attempts made of the rolled back 0.07 to
0.14 below the exact state's, with every rate known.

First in, first out makes the desk a matter of cumulative counts, whichever
cohort raised a case: the cases raised on day r are those numbered
(raised up to r - 1, raised up to r], and they are worked on the days whose
cumulative worked count passes through that interval. The cases raised each day
are the reported flows of the kinds the desk takes (``els.cases_from``) summed
over cohorts; the cases worked each day come from the reported ``els_backlog``
on the days it is there (worked = the cases open before the day + raised - the
day's backlog), else from the desk's rule (its daily capacity, on working days,
cases raised on earlier days). Cases still open after the last reported day are
worked at the desk's capacity on the working days that follow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from migsim.model.scenario import Scenario
from migsim.sim.calendar import working_days

__all__ = ["FLOW_OF", "WorkedDays", "desk_counts", "holds_stalls", "worked_days"]

#: The flow column of each kind of ELS case.
FLOW_OF = {
    "stall": "stalls",
    "rollback": "rollbacks",
    "fix_forward": "fix_forwards",
    "dumb": "dumbs",
}


class WorkedDays:
    """For each day cases were raised: the days they are worked, and what share.

    ``on(day)`` gives ``(days, shares)`` (shares summing to 1); a day without
    cases gives the next day, as the desk would work one raised then.
    """

    def __init__(self, raised: np.ndarray, worked: np.ndarray):
        self._raised_to = np.cumsum(raised)
        self._worked_to = np.cumsum(worked)
        self.last = len(worked) - 1
        self._known: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def on(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        if day not in self._known:  # the replay asks again each EM round
            self._known[day] = self._on(day)
        return self._known[day]

    def _on(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        if day < 0 or day >= len(self._raised_to):
            return np.array([day + 1]), np.ones(1)
        hi = self._raised_to[day]
        lo = self._raised_to[day - 1] if day else 0.0
        if hi - lo <= 1e-9:
            return np.array([day + 1]), np.ones(1)
        done = self._worked_to
        first = int(np.searchsorted(done, lo, side="right"))
        last = min(int(np.searchsorted(done, hi - 1e-9, side="left")), len(done) - 1)
        days = np.arange(max(first, day + 1), max(last, day + 1) + 1)
        before = np.concatenate([[0.0], done])[days]
        share = np.minimum(done[days], hi) - np.maximum(before, lo)
        share = np.clip(share, 0.0, None)
        if share.sum() <= 1e-12:
            return np.array([max(last, day + 1)]), np.ones(1)
        return days, share / share.sum()


def holds_stalls(scenario: Scenario) -> bool:
    """Whether stalls wait for the ELS desk to work their case."""
    return scenario.els is not None and "stall" in scenario.els.cases_from


def worked_days(scenario: Scenario, every: pd.DataFrame) -> WorkedDays | None:
    """The desk's worked days from all cohorts' rows, or None (no desk gates stalls).

    ``every`` holds every cohort's reported rows (``date`` and flow columns,
    ``els_backlog`` when reported). Only stalls matter to the replay: the desk
    gates fix forwards too, but those do not come back as attempts.
    """
    if not holds_stalls(scenario):
        return None
    counts = desk_counts(scenario, every)
    return None if counts is None else WorkedDays(*counts)


def desk_counts(
    scenario: Scenario, every: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray] | None:
    """The cases raised and worked each day since ``start_date`` (the days after
    the last reported one work off what is left at capacity), or None (no desk
    or no rows on or after ``start_date``)."""
    els = scenario.els
    if els is None or not len(every):
        return None
    day = (every["date"] - pd.Timestamp(scenario.start_date)).dt.days.to_numpy()
    keep = day >= 0
    if not keep.any():
        return None
    reported = int(day[keep].max()) + 1
    raised = np.zeros(reported)
    for kind in els.cases_from:
        column = FLOW_OF[kind]
        if column in every.columns:
            np.add.at(raised, day[keep], every[column].to_numpy(float)[keep])
    working = working_days(scenario)
    capacity = float(els.daily_capacity)
    worked = np.zeros(reported)
    backlog = np.full(reported, np.nan)  # NaN: not reported that day
    if "els_backlog" in every.columns:
        backlog[day[keep]] = every["els_backlog"].to_numpy(float)[keep]
    open_before = 0.0  # raised on earlier days and not yet worked
    for d in range(reported):
        if not np.isnan(backlog[d]):  # what the backlog says was worked
            worked[d] = min(max(open_before + raised[d] - backlog[d], 0.0), open_before)
        elif d < len(working) and working[d]:  # the desk's rule
            worked[d] = min(capacity, open_before)
        open_before += raised[d] - worked[d]
    # the cases open after the last reported day: at capacity on working days
    tail: list[float] = []
    d = reported
    while open_before > 1e-9 and capacity > 0:
        today = capacity if d >= len(working) or working[d] else 0.0
        tail.append(min(today, open_before))
        open_before -= tail[-1]
        d += 1
    raised = np.concatenate([raised, np.zeros(len(tail))])
    return raised, np.concatenate([worked, tail])
