"""Ramp policy at run time: the capacity schedule, rules and go/no-go days.

The scenario states a ramp policy as data (docs/ramp-policy.md); `Policy` turns
it into the cap of each day of one replication. At the start of every day the
engine asks `Policy.cap`; the policy applies schedule steps, checks the rules
on working days on figures to the end of the previous day (read from the
engine's own state and flow arrays), and answers 0 on closed, halted and no-go
days. It reads the replication's calendar (`calendar`: working days, bank
holidays, incidents) and its uncertain dates and gates (`dates`).

A scenario without ramp-policy sections gets a policy precomputed once per
replication, with no random draws, so its numbers are exactly those of the
foundation.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from migsim.common.stats import clopper_pearson_upper
from migsim.model.distributions import gate_reference
from migsim.model.policy import METRICS, Rule
from migsim.model.scenario import Scenario
from migsim.sim.calendar import incident_days, incident_left, working_days
from migsim.sim.dates import ResolvedDates
from migsim.sim.inputs import step_cap

__all__ = ["DAY_COLUMNS", "Policy", "clopper_pearson_upper"]

#: `.daily` day columns the policy adds.
DAY_COLUMNS = ("daily_cap", "cap_rule", "no_go", "rule_fired")


#: Precedence of action kinds: the first that fires on a day wins.
_PRECEDENCE = ("halt", "cut", "hold", "raise")
RATE_METRICS = {  # numerator flows / denominator flows, over the window
    "first_attempt_success_rate": (("successes",), ("attempts",)),
    "eventual_success_rate": (
        ("successes", "stall_completions"),
        (
            "successes",
            "rollbacks",
            "fix_forwards",
            "dumbs",
            "stall_completions",
            "stall_failures",
        ),
    ),
    "stall_rate": (("stalls",), ("attempts",)),
    "rollback_rate": (("rollbacks",), ("attempts",)),
}
#: Metrics that read the active cohorts' flows apart.
_ACTIVE_METRICS = ("active_fix_forward_count", "active_failure_rate_upper")
_COMPARE = {
    "<": float.__lt__,
    "<=": float.__le__,
    ">": float.__gt__,
    ">=": float.__ge__,
}


@dataclass
class _RuleState:
    action_end: int = 0  # first day after the rule's last action
    firings: int = 0


@dataclass
class _Step:
    day: int
    cap: int
    label: str


class Policy:
    """The cap of every day of one replication.

    Parameters
    ----------
    scenario
        The scenario.
    streams
        The replication's random streams (go/no-go incidents).
    dates
        The replication's `ResolvedDates` (schedule steps, rule gates).
    flows, states
        The engine's ``(days, cohorts, k)`` arrays, read (never written) for
        rule metrics: day d's row is complete once day d has ended.
    flow_names, state_names
        The names along their last axis (``attempts`` must come first).
    els_backlog
        The ELS/MCC case backlog at the end of each day (``(days,)``, filled by
        the engine's operations as days end; read for the ``els_backlog``
        metric), or ``None`` without an ``els`` section.
    """

    def __init__(
        self,
        scenario: Scenario,
        streams,
        dates: ResolvedDates,
        flows: np.ndarray,
        states: np.ndarray,
        flow_names: tuple[str, ...],
        state_names: tuple[str, ...],
        els_backlog: np.ndarray | None = None,
    ):
        assert flow_names[0] == "attempts"
        self.scenario, self.dates = scenario, dates
        self.flows, self.states = flows, states
        self.els_backlog = els_backlog
        n = scenario.horizon_days
        capacity = scenario.capacity
        self.last_day = -1
        self.working = working_days(scenario)
        start = scenario.operations_state  # a mid-programme start, or None
        self.incident = incident_days(scenario, streams)
        if start is not None and start.incident_open_days and scenario.go_no_go:
            self.incident[: incident_left(scenario.go_no_go, streams, start)] = True
        self.no_go = self.incident & self.working
        self.factor = np.ones(n)
        self.freeze_label = np.full(n, "", dtype=object)
        for freeze in scenario.calendar.freezes:  # the lowest factor wins
            first = max(0, scenario.day_of(freeze.from_))
            last = min(n - 1, scenario.day_of(freeze.to))
            if last < first:
                continue
            span = slice(first, last + 1)
            lower = freeze.cap_factor < self.factor[span]
            self.factor[span] = np.where(lower, freeze.cap_factor, self.factor[span])
            self.freeze_label[span] = np.where(
                lower, freeze.name, self.freeze_label[span]
            )
        steps = []
        for index, step in enumerate(capacity.schedule):
            day = dates.day(f"capacity.schedule.{step.name or index}.from")
            if start is not None and start.steps_known and day is not None and day < 0:
                continue  # in force before a mid-programme start: see `ceiling`
            if day is not None and day < n:
                label = step.name or f"schedule.{index}"
                cap = step_cap(step, index, streams)  # a range: drawn (inputs.py)
                # steps before day 0 all start on day 0, the latest drawn last
                steps.append((max(0, day), day, index, _Step(max(0, day), cap, label)))
        self.steps = [s for *_, s in sorted(steps, key=lambda t: t[:3])]
        self.daily_cap = np.zeros(n, dtype=np.int64)
        self.cap_rule = np.full(n, "", dtype=object)
        self.rule_fired = np.full(n, "", dtype=object)
        self.level, self.level_label, self.level_since = (
            capacity.daily_cap,
            "daily_cap",
            0,
        )
        self.ceiling: int | None = None  # the schedule step in force, if any
        self.next_step = 0
        self.halt_until = self.hold_until = 0
        self.halt_rule = ""
        # working days at the level before day 0 (a mid-programme start)
        self.at_cap_before = 0
        # by precedence, stable so file order decides within a kind
        self.rules = sorted(capacity.rules, key=lambda r: _PRECEDENCE.index(r.kind))
        self.rule_state = {r.name: _RuleState() for r in self.rules}
        self.flow_names, self.state_names = flow_names, state_names
        self.active = np.array([c.mode == "active" for c in scenario.cohorts])
        self.history_days = 0  # days of history before day 0 (a mid-programme start)
        self._history_stalled: list[int] = []
        self._history_els: list[int] = []
        if start is not None:
            self._take_up(start)
        if self.rules:
            self.attempt_days: list[int] = []  # days with attempts, ascending
            self.working_before = np.concatenate(([0], np.cumsum(self.working)))
            self.working_index = np.flatnonzero(self.working)
            self.windows = {r.name: r.window for r in self.rules}
            self.flow_column = {name: i for i, name in enumerate(flow_names)}
            self.stalled_state = state_names.index("stalled")
            # flows summed over cohorts and over days before k, as Python ints:
            # a window's total is one subtraction (all cohorts; active cohorts)
            self._cum = [[0] * len(flow_names)]
            self._active_cum = [[0] * len(flow_names)]
            metrics = {c.metric for r in self.rules for c in r.when}
            self.track_active = bool(metrics & set(_ACTIVE_METRICS))
            if start is not None:
                self._take_up_history(start)
        else:
            self._precompute()

    # ------------------------------------------------------------------ mid-way
    def _take_up(self, start) -> None:
        """Start from an `OperationsState`: the cap in force, halts, holds, rules."""
        self.level, self.level_label, self.level_since = start.cap, start.cap_rule, 0
        self.at_cap_before = start.days_at_cap
        self.ceiling = start.ceiling
        self.halt_until, self.halt_rule = start.halt_until, start.halt_rule
        self.hold_until = start.hold_until
        for name, rule in start.rules.items():
            self.rule_state[name] = _RuleState(rule.action_end, rule.firings)

    def _take_up_history(self, start) -> None:
        """The window history: days -h .. -1 before day 0, as running totals."""
        names = self.flow_names
        self.history_days = len(start.history)
        first = start.before_history
        self._cum = [[first.flows.get(n, 0) for n in names]]
        self._active_cum = [[first.active.get(n, 0) for n in names]]
        for offset, past in enumerate(start.history):
            row = [past.flows.get(n, 0) for n in names]
            self._cum.append([a + b for a, b in zip(self._cum[-1], row, strict=True)])
            row = [past.active.get(n, 0) for n in names]
            self._active_cum.append(
                [a + b for a, b in zip(self._active_cum[-1], row, strict=True)]
            )
            if past.flows.get("attempts", 0):
                self.attempt_days.append(offset - self.history_days)
        self._history_stalled = [past.stalled for past in start.history]
        self._history_els = [past.els_backlog for past in start.history]

    def export_state(self, day: int) -> dict:
        """The policy's state at the end of ``day``, as an ``operations_state``.

        Day numbers count from the next day (day + 1 is day 0 of a run continued
        from it). The history holds every day from the ``window``-th last day
        with attempts (the longest window of any rule) to ``day``.
        """
        after = day + 1
        if self.rules:
            level, label, ceiling = self.level, self.level_label, self.ceiling
            since, before = self.level_since, self.at_cap_before
            # the plan's steps after the replication stopped (or before day 0
            # when it never ran): the engine asked no cap on those days
            for step in self.steps[self.next_step :]:
                if step.day <= day:
                    level, label, ceiling = step.cap, step.label, step.cap
                    since, before = step.day, 0
            at_cap = (
                int(self.working_before[after] - self.working_before[since]) + before
            )
        else:  # the plan decides: replay the steps up to ``day``
            level, label, ceiling = self.level, self.level_label, self.ceiling
            at_cap = 0
            for step in self.steps:
                if step.day <= day:
                    level, label, ceiling = step.cap, step.label, step.cap
        open_days = 0
        while open_days <= day and self.incident[day - open_days]:
            open_days += 1
        fields = self.scenario.date_fields()
        passed = {  # uncertain dates drawn and passed (plain dates and gates aside)
            path: self.scenario.date_of(d)
            for path, d in self.dates.days.items()
            if d is not None
            and d <= day
            and not isinstance(fields[path], date)
            and gate_reference(fields[path]) is None
        }
        out = {
            "cap": int(level),
            "cap_rule": str(label),
            "days_at_cap": at_cap,
            "ceiling": ceiling,
            "halt_until": max(0, self.halt_until - after),
            "halt_rule": self.halt_rule if self.halt_until > after else "",
            "hold_until": max(0, self.hold_until - after),
            "rules": {
                name: {"action_end": rule.action_end - after, "firings": rule.firings}
                for name, rule in self.rule_state.items()
            },
            "history": [],
            "before_history": {},
            "incident_open_days": open_days,
            "gates_open": {
                g: self.scenario.date_of(d)
                for g, d in self.dates.gate_days.items()
                if d is not None and d <= day
            },
            "dates_passed": passed,
        }
        if self.rules:
            out["history"], out["before_history"] = self._export_history(day)
        return out

    def _day_row(self, day: int) -> dict:
        """One day's flows (all and active cohorts) and stalled, history included."""
        names = self.flow_names
        if day < 0:
            i = day + self.history_days
            flows = [b - a for a, b in zip(self._cum[i], self._cum[i + 1], strict=True)]
            pairs = zip(self._active_cum[i], self._active_cum[i + 1], strict=True)
            active = [b - a for a, b in pairs]
            stalled = self._history_stalled[i]
            els = self._history_els[i]
        else:
            flows = self.flows[day].sum(axis=0).tolist()
            active = self.flows[day, self.active].sum(axis=0).tolist()
            stalled = int(self.states[day, :, self.stalled_state].sum())
            els = int(self.els_backlog[day]) if self.els_backlog is not None else 0
        return {
            "flows": {n: int(v) for n, v in zip(names, flows, strict=True) if v},
            "active": {n: int(v) for n, v in zip(names, active, strict=True) if v},
            "stalled": stalled,
            "els_backlog": els,
        }

    def _export_history(self, day: int) -> tuple[list[dict], dict]:
        attempted = self.flows[: day + 1, :, 0].sum(axis=1)
        attempts = [d for d in self.attempt_days if d < 0]
        attempts += np.flatnonzero(attempted).tolist()
        window = max(self.windows.values(), default=0)
        if not attempts or not window:
            return [], {}
        first = attempts[-window] if len(attempts) >= window else attempts[0]
        names = self.flow_names
        totals = list(self._cum[0])
        active = list(self._active_cum[0])
        for past in range(-self.history_days, first):
            row = self._day_row(past)
            totals = [
                t + row["flows"].get(n, 0) for t, n in zip(totals, names, strict=True)
            ]
            active = [
                t + row["active"].get(n, 0) for t, n in zip(active, names, strict=True)
            ]
        before = {
            "flows": {n: v for n, v in zip(names, totals, strict=True) if v},
            "active": {n: v for n, v in zip(names, active, strict=True) if v},
            "stalled": 0,
        }
        return [self._day_row(d) for d in range(first, day + 1)], before

    # ------------------------------------------------------------------ no rules
    def _precompute(self) -> None:
        """Without rules every day's cap is known up front."""
        n = self.scenario.horizon_days
        level = np.full(n, self.level, dtype=np.int64)
        label = np.full(n, self.level_label, dtype=object)
        for step in self.steps:
            level[step.day :] = step.cap
            label[step.day :] = step.label
        frozen = self.factor < 1
        cap = np.where(
            frozen, np.floor(level * self.factor + 1e-9).astype(np.int64), level
        )
        label = np.where(frozen, self.freeze_label, label)
        cap[self.no_go] = 0
        label[self.no_go] = "no_go"
        cap[~self.working] = 0
        label[~self.working] = "closed"
        self.daily_cap, self.cap_rule = cap, label

    # ------------------------------------------------------------------ the hook
    def cap(self, day: int) -> int:
        """The cap for day ``day`` (0: no attempts); call once per day, in order."""
        self.last_day = day
        if not self.rules:
            return int(self.daily_cap[day])
        if day:
            self._ingest(day - 1)
        self._apply_steps(day)
        if self.working[day] and day >= self.halt_until:
            self._check_rules(day)
        return self._set_cap(day)

    def _ingest(self, day: int) -> None:
        """Add the flows of day ``day`` (complete) to the running totals."""
        row = self.flows[day].sum(axis=0).tolist()
        last = self._cum[-1]
        self._cum.append([a + b for a, b in zip(last, row, strict=True)])
        if row[0]:
            self.attempt_days.append(day)
        if self.track_active:
            row = self.flows[day, self.active].sum(axis=0).tolist()
            last = self._active_cum[-1]
            self._active_cum.append([a + b for a, b in zip(last, row, strict=True)])

    def _apply_steps(self, day: int) -> None:
        while (
            self.next_step < len(self.steps) and self.steps[self.next_step].day <= day
        ):
            step = self.steps[self.next_step]
            self.level, self.level_label, self.level_since = step.cap, step.label, day
            self.at_cap_before = 0
            self.ceiling = step.cap
            self.next_step += 1

    def _set_cap(self, day: int) -> int:
        if not self.working[day]:
            cap, label = 0, "closed"
        elif day < self.halt_until:
            cap, label = 0, self.halt_rule
        elif self.no_go[day]:
            cap, label = 0, "no_go"
        elif self.factor[day] < 1:
            cap = math.floor(self.level * self.factor[day] + 1e-9)
            label = self.freeze_label[day]
        else:
            cap, label = self.level, self.level_label
        self.daily_cap[day] = cap
        self.cap_rule[day] = label
        return cap

    # ------------------------------------------------------------------ rules
    def _check_rules(self, day: int) -> None:
        """Fire the first rule, by precedence then file order, that may fire today."""
        for rule in self.rules:
            state = self.rule_state[rule.name]
            if day < state.action_end:
                continue  # its hold is still running
            new_days = len(self.attempt_days) - bisect.bisect_left(
                self.attempt_days, state.action_end
            )
            if new_days < self.windows[rule.name]:
                continue  # not yet window new attempt days since its last action
            if rule.kind == "raise" and day < self.hold_until:
                continue
            gate = rule.requires.gate
            if gate is not None:
                opened = self.dates.gate_days[gate]
                if opened is None or opened > day:
                    continue
            at_cap = self.working_before[day] - self.working_before[self.level_since]
            at_cap += self.at_cap_before
            if at_cap < rule.requires.min_days_at_cap:
                continue
            new_level = self._effect(rule)
            if new_level is None:
                continue  # nothing to raise or cut: not a firing
            if all(self._holds(condition, day) for condition in rule.when):
                self._fire(rule, day, new_level)
                return

    def _effect(self, rule: Rule) -> int | None:
        """The level a raise or cut would set (None: no change); halts and holds: -1."""
        if rule.kind in ("halt", "hold"):
            return -1
        if rule.kind == "cut":
            assert rule.cap is not None  # the schema requires it
            return rule.cap if rule.cap < self.level else None
        bounds = [b for b in (rule.max_cap, self.ceiling) if b is not None]
        if rule.action == "raise_to":
            assert rule.cap is not None
            target = rule.cap
        else:
            assert rule.factor is not None
            target = math.floor(self.level * rule.factor + 1e-9)
        new = min([target, *bounds])
        return new if new > self.level else None

    def _after_working_days(self, day: int, count: int) -> int:
        """The day after the ``count``-th working day from ``day`` (a working day)."""
        last = self.working_before[day] + count - 1
        if last >= len(self.working_index):
            return self.scenario.horizon_days
        return int(self.working_index[last]) + 1

    def _fire(self, rule: Rule, day: int, new_level: int) -> None:
        state = self.rule_state[rule.name]
        state.firings += 1
        self.rule_fired[day] = rule.name
        if rule.kind in ("halt", "hold"):
            assert rule.days is not None  # the schema requires it
            end = self._after_working_days(day, rule.days)
            if rule.kind == "halt":
                self.halt_until, self.halt_rule = end, rule.name
            else:
                self.hold_until = max(self.hold_until, end)
            state.action_end = end
        else:
            self.level, self.level_label, self.level_since = new_level, rule.name, day
            self.at_cap_before = 0
            state.action_end = day

    # ------------------------------------------------------------------ metrics
    def _holds(self, condition, day: int) -> bool:
        if len(self.attempt_days) < condition.window:
            return False  # an empty (or partial) window never fires
        start = self.attempt_days[-condition.window]
        value = self.metric(condition.metric, start, day, condition.confidence)
        return not math.isnan(value) and _COMPARE[condition.op](value, condition.value)

    def _window_sum(
        self, names: tuple[str, ...], start: int, day: int, active: bool = False
    ) -> int:
        """Flows ``names`` summed over days ``start`` .. ``day - 1`` and cohorts."""
        cum = self._active_cum if active else self._cum
        now, then = cum[day + self.history_days], cum[start + self.history_days]
        return sum(now[self.flow_column[n]] - then[self.flow_column[n]] for n in names)

    def metric(
        self, name: str, start: int, day: int, confidence: float | None = None
    ) -> float:
        """A rule metric over days ``start`` .. ``day - 1`` (see docs/ramp-policy.md).

        Rates are NaN when their denominator is 0 (so no condition holds).
        """
        if name in RATE_METRICS:
            numerator, denominator = RATE_METRICS[name]
            below = self._window_sum(denominator, start, day)
            above = self._window_sum(numerator, start, day)
            return above / below if below else math.nan
        if name == "dumb_count":
            return float(self._window_sum(("dumbs",), start, day))
        if name == "attempt_count":
            return float(self._window_sum(("attempts",), start, day))
        if name == "active_fix_forward_count":
            return float(self._window_sum(("fix_forwards",), start, day, active=True))
        if name == "stalled_backlog":
            past = (
                self._history_stalled[start + self.history_days :] if start < 0 else []
            )
            recent = self.states[max(0, start) : day, :, self.stalled_state].sum(axis=1)
            return float(max([*past, *recent.tolist()]))
        if name == "els_backlog":
            assert self.els_backlog is not None  # the schema requires an els section
            past = self._history_els[start + self.history_days :] if start < 0 else []
            recent = self.els_backlog[max(0, start) : day].tolist()
            return float(max([*past, *recent]))
        if name == "active_failure_rate_upper":  # since the programme's start
            first = -self.history_days
            failures = self._window_sum(
                ("dumbs", "fix_forwards"), first, day, active=True
            )
            trials = self._window_sum(("attempts",), first, day, active=True)
            assert confidence is not None  # the schema requires it
            return clopper_pearson_upper(failures, trials, confidence)
        raise AssertionError(f"metric {name} not implemented")  # pragma: no cover

    # ------------------------------------------------------------------ output
    def day_columns(self) -> dict[str, np.ndarray]:
        """``daily_cap``, ``cap_rule``, ``no_go`` and ``rule_fired`` for every day.

        Days after the engine stopped (nothing left to migrate) keep the cap the
        plan gives them, with no rule checked and no no-go day: an incident then
        loses no migrations, so the cap is not 0 nor its ``cap_rule`` ``no_go``
        there either (a row read "no_go" beside ``no_go`` False).
        """
        n = self.scenario.horizon_days
        stopped = slice(self.last_day + 1, n)
        if self.no_go[stopped].any():
            self.no_go[stopped] = False
            if not self.rules:
                self._precompute()  # the same days to the stop; the plan after
        if self.rules:
            for day in range(self.last_day + 1, n):
                self._apply_steps(day)
                self._set_cap(day)
        columns = {
            "daily_cap": self.daily_cap,
            "cap_rule": self.cap_rule.astype(str),
            "no_go": self.no_go.copy(),
            "rule_fired": self.rule_fired.astype(str),
        }
        assert tuple(columns) == DAY_COLUMNS
        return columns


assert set(RATE_METRICS) | {
    "dumb_count",
    "active_fix_forward_count",
    "stalled_backlog",
    "active_failure_rate_upper",
    "attempt_count",
    "els_backlog",
} == set(METRICS)
