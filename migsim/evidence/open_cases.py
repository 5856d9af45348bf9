"""The ELS / MCC desk's open cases on an as-of date, read from actuals.

A state a run exports carries the desk's queue (``operations_state.els_queue``):
the cases not yet worked, oldest first, and for stall and fix-forward cases the
installations they hold (the ``held: true`` groups of each cohort's
``initial_state``). Read from actuals, the queue is rebuilt as follows:

- **How many are open** at the end of the as-of date: the cases raised less the
  cases worked (`desk.desk_counts`): from the reported ``els_backlog`` on the
  days it is there, else from the desk's rule (its daily capacity, on working
  days).
- **Which**: first in, first out, the open cases are the most recently raised:
  numbered by cumulative count, the cases raised on day r still open are those of
  (raised up to r - 1, raised up to r] above the cumulative worked count.
- **Whose**: each day's open cases are shared between cohorts and kinds (the
  desk's ``cases_from``) in proportion to that day's reported flows of each
  (stalls, fix forwards, rollbacks, dumbs), as whole cases by largest
  remainders over all days at once.
- **What they hold**: a stall or fix forward is one case holding one
  installation, so a cohort's open stall cases are as many of its stalled
  installations marked ``held`` (class and attempts made shared by the class
  replay's stalls still held on the day raised, `classes.in_flight_by_attempts`:
  the cases name their class, ``by_class``, so a hard case held comes back a
  hard case), and its
  open fix-forward cases as many impaired ones. A cohort whose reported stalled
  (or impaired) are fewer than its cases loses the oldest of them (a note says
  how many). Rollback and dumb cases hold nothing.
- **No supplier**: actuals report flows by cohort, not by supplier, so the
  cases name none and a continuation reopens them, with the installations they
  hold, on the cohort's first supplier segment. That costs little: on
  ``nov2019_operations`` with the desk cut to 40 a day, the exact state stripped
  of its parts migrates 1.6 and 2.3 fewer (200 replications, paired) with its
  cases' suppliers than without, held installations placed with their cases.

The stalls and fix forwards whose case was worked wait only for their delay:
their due days are the residual of the delay given their age, over each day's
inflow times the share of that day's cases worked by the as-of date
(`OpenCases.worked_share`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from migsim.evidence.actuals import Actuals
from migsim.evidence.classes import class_kinds
from migsim.evidence.desk import FLOW_OF, desk_counts
from migsim.model.scenario import Scenario
from migsim.sim.allocation import largest_remainder

__all__ = ["OpenCases", "open_cases"]

#: The order the engine raises a day's cases in (`sim.lanes`).
_KINDS = ("dumb", "stall", "rollback", "fix_forward")
#: The in-flight state a kind's cases hold.
_HOLDS = {"stall": "stalled", "fix_forward": "impaired"}


class OpenCases:
    """The desk's open cases at the end of the as-of date (day ``as_of``),
    by (day raised, cohort, kind), as whole cases.

    ``counts[r, c, k]``: the cases of cohort ``c`` and kind ``kinds[k]`` (in the
    engine's order) raised on day ``r`` and open; ``flows[r, c, k]``: the cases
    raised (the reported flow); ``open_share[r]``: the share of day ``r``'s
    cases still open (0 beyond the days reported).
    """

    def __init__(
        self,
        scenario: Scenario,
        kinds: Sequence[str],
        flows: np.ndarray,
        counts: np.ndarray,
        open_share: np.ndarray,
        as_of: int,
        source: str,
    ):
        self.scenario = scenario
        self.kinds = list(kinds)
        self.flows = flows
        self.counts = counts
        self.open_share = open_share
        self.as_of = as_of
        self.source = source
        #: The flow columns of the desk's kinds that the actuals lack.
        self.unreported: list[str] = []
        self.reported = int(counts.sum())
        self.attempts: dict[tuple[int, int, int], dict[int, int]] = {}
        self.by_class: dict[tuple[int, int, int], dict[str, dict[int, int]]] = {}
        self.settled: set[tuple[int, int]] = set()  # (cohort, kind) held as groups

    def gates(self, kind: str) -> bool:
        """Whether this kind's cases hold their installations."""
        return kind in _HOLDS and kind in self.kinds

    def worked_share(self, rows: pd.DataFrame) -> np.ndarray:
        """The share of each row's day's cases worked by the as-of date."""
        day = (rows["date"] - pd.Timestamp(self.scenario.start_date)).dt.days
        day = day.to_numpy()
        inside = (day >= 0) & (day < len(self.open_share))
        out = np.ones(len(day))
        out[inside] = 1.0 - self.open_share[day[inside]]
        return out

    def held_groups(
        self, cohort, kind: str, n: int, held: np.ndarray | None
    ) -> list[dict[str, Any]]:
        """The ``held: true`` groups of a cohort's stalled (``kind`` "stall") or
        impaired ("fix_forward") installations: one per open case, at most
        ``n`` (the oldest cases dropped first, as rollback or dumb cases of
        their day when it raised any, else left out). A stall's class and
        attempts made are shared by ``held``, the replay's held stalls by (day
        raised, class, attempts made); without it, each is normal and made
        one."""
        c = self.scenario.cohorts.index(cohort)
        k = self.kinds.index(kind)
        self.settled.add((c, k))
        cases = self.counts[:, c, k]
        excess = int(cases.sum()) - max(n, 0)
        for r in np.flatnonzero(cases):  # oldest first
            if excess <= 0:
                break
            dropped = min(excess, int(cases[r]))
            cases[r] -= dropped
            excess -= dropped
            self._to_load(int(r), dropped, c)
        days = np.flatnonzero(cases)
        if kind != "stall":
            for r in days:
                self.attempts[(int(r), c, k)] = {1: int(cases[r])}
            total = int(cases.sum())
            return (
                [{"count": total, "days_until_due": 1, "held": True}] if total else []
            )
        return self._split_stalls(cohort, c, k, held)

    def _split_stalls(
        self, cohort, c: int, k: int, held: np.ndarray | None
    ) -> list[dict[str, Any]]:
        """Each day's open stall cases by class and attempts made, in proportion
        to the replay's held stalls of that day (the day's row, else all days'),
        largest remainders with the remainders carried from day to day (so the
        totals keep the replay's shares); as held groups by attempts made."""
        top = self.scenario.cohorts[c].max_attempts
        kinds = class_kinds(self.scenario, c) if held is not None else ["normal"]
        table = held[:, :, 1 : top + 1] if held is not None else np.zeros((0, 1, top))
        overall = table.sum(axis=0)
        if overall.sum() <= 1e-9:  # nothing known: all normal, one attempt
            overall = np.zeros_like(overall)
            overall[0, 0] = 1.0
        cases = self.counts[:, c, k]
        carry = np.zeros_like(overall)
        by_made = np.zeros(top, dtype=np.int64)
        for r in np.flatnonzero(cases).tolist():
            n = int(cases[r])
            row = table[r] if r < len(table) else overall
            shares = row if row.sum() > 1e-9 else overall
            target = n * shares / shares.sum() + carry
            weights = np.clip(target, 1e-12, None).ravel()
            whole = np.reshape(
                largest_remainder(n, (weights / weights.sum()).tolist()), target.shape
            )
            carry = target - whole
            by_made += whole.sum(axis=0)
            self.attempts[(r, c, k)] = {
                m + 1: int(v) for m, v in enumerate(whole.sum(axis=0).tolist()) if v
            }
            if len(kinds) > 1:
                self.by_class[(r, c, k)] = {
                    kind: {m + 1: int(v) for m, v in enumerate(made.tolist()) if v}
                    for kind, made in zip(kinds, whole, strict=True)
                    if made.any()
                }
        return [
            {"count": int(v), "attempts_made": m + 1, "days_until_due": 1, "held": True}
            for m, v in enumerate(by_made.tolist())
            if v
        ]

    def _to_load(self, day: int, n: int, cohort: int) -> None:
        """Cases taken from a kind that holds installations, given to the
        rollback and dumb cases raised the same day (by their flows), if any:
        the same cohort's when it raised some, else every cohort's."""
        load = [k for k, kind in enumerate(self.kinds) if kind not in _HOLDS]
        weights = np.zeros((self.counts.shape[1], len(load)))
        weights[cohort] = self.flows[day][cohort, load]
        if weights.sum() <= 0:
            weights = self.flows[day][:, load]
        if weights.sum() > 0:
            whole = largest_remainder(n, (weights / weights.sum()).ravel().tolist())
            self.counts[day][:, load] += np.reshape(whole, weights.shape)

    def queue(self) -> list[dict[str, Any]]:
        """The ``els_queue`` entries, oldest first (a day's in the engine's order).

        Stall and fix-forward cases of a cohort whose installations were not
        held as groups (`held_groups` not called: none in flight) are left out.
        """
        out = []
        for r, c, k in zip(*np.nonzero(self.counts), strict=True):
            kind = self.kinds[k]
            if kind in _HOLDS and (c, k) not in self.settled:
                continue
            out.append(
                {
                    "cohort": self.scenario.cohorts[c].name,
                    "kind": kind,
                    "count": int(self.counts[r, c, k]),
                    "raised": int(r) - self.as_of,
                    "attempts": self.attempts.get((int(r), int(c), int(k)), {}),
                    "by_class": self.by_class.get((int(r), int(c), int(k)), {}),
                }
            )
        return out

    def note(self) -> str:
        carried = sum(case["count"] for case in self.queue())
        text = (
            f"the ELS desk's {self.reported:,} open cases ({self.source}) are the "
            "most recently raised (first in, first out), shared between cohorts "
            "and kinds by each day's reported flows; the stalls and fix forwards "
            "they hold are held until the desk works them"
        )
        if self.unreported:
            text += (
                f" (no {', '.join(self.unreported)} column: the cases of that kind "
                "are not known)"
            )
        if carried < self.reported:
            text += (
                f" ({self.reported - carried:,} of them left out: more than the "
                "stalled or impaired reported)"
            )
        return text


def open_cases(scenario: Scenario, actuals: Actuals, as_of: date) -> OpenCases | None:
    """The desk's open cases at the end of ``as_of`` from per-cohort flows, or
    None (no ``els`` section, or no rows to read them from)."""
    els = scenario.els
    every = actuals.frame
    if els is None or actuals.kind != "flows" or not len(every):
        return None
    desk = desk_counts(scenario, every)
    if desk is None:
        return None
    raised, worked = desk
    day = scenario.day_of(as_of)
    raised_to, worked_to = np.cumsum(raised), np.cumsum(worked)
    last = min(day, len(raised) - 1)
    done = worked_to[last]  # cases numbered up to this are worked
    before = np.concatenate([[0.0], raised_to[:-1]])
    share = np.clip(raised_to - np.maximum(before, done), 0.0, raised)
    share = np.divide(share, raised, out=np.zeros_like(raised), where=raised > 1e-9)
    share[last + 1 :] = 0.0
    kinds = [k for k in _KINDS if k in els.cases_from]
    names = [c.name for c in scenario.cohorts]
    flows = np.zeros((len(raised), len(names), len(kinds)))
    rows = (every["date"] - pd.Timestamp(scenario.start_date)).dt.days.to_numpy()
    cohort = every["cohort"].map({n: i for i, n in enumerate(names)}).to_numpy()
    keep = (rows >= 0) & (rows <= last) & pd.notna(cohort)
    for k, kind in enumerate(kinds):
        if FLOW_OF[kind] in every.columns:
            values = every[FLOW_OF[kind]].to_numpy(float)[keep]
            np.add.at(flows, (rows[keep], cohort[keep].astype(int), k), values)
    weights = flows * share[:, None, None]
    total = int(round(float(raised_to[last] - done)))
    counts = np.zeros(weights.shape, dtype=np.int64)
    if total > 0 and weights.sum() > 0:
        whole = largest_remainder(total, (weights / weights.sum()).ravel().tolist())
        counts = np.array(whole, dtype=np.int64).reshape(weights.shape)
    reported = "els_backlog" in every.columns and not every["els_backlog"].isna().all()
    source = "the reported els_backlog" if reported else "the desk's daily capacity"
    cases = OpenCases(scenario, kinds, flows, counts, share, day, source)
    cases.unreported = [FLOW_OF[k] for k in kinds if FLOW_OF[k] not in every.columns]
    return cases
