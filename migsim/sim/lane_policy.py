"""Ramp rules across a block of replications: `policy.Policy.cap`, as arrays.

With ramp rules a replication's cap depends on its own records of earlier days,
so the block engine asked each replication's `Policy` for its cap, day by day:
a Python call per replication per day, the largest single cost of a ramp
scenario's block. `BlockPolicy` keeps the same state (level, its label and
since when, the schedule step in force, halts, holds, each rule's last action
and firings) as arrays with a replication axis, and runs the same day in the
same order: ingest the previous day's flows, apply schedule steps, check the
rules by precedence then file order (the first that may fire wins), set the
cap. Every comparison reads the same integers and floats as the scalar policy,
so the caps, labels and firings are the scalar policy's, number for number.

At the end (`write_back`) each replication's `Policy` is left as the scalar
engine leaves it, so its ``day_columns`` fill the days after it stopped.
A mid-programme start carrying a rule history (days before day 0) keeps the
per-replication path (`supports`).
"""

from __future__ import annotations

import numpy as np

from migsim.common.stats import clopper_pearson_upper
from migsim.sim.policy import RATE_METRICS, Policy

__all__ = ["BlockPolicy", "supports"]

#: A day after every horizon: "never" for gates and schedule steps.
_NEVER = 1 << 40
_OPS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


def supports(policies: list[Policy]) -> bool:
    """Whether `BlockPolicy` runs these policies: with rules and no history
    before day 0 (a mid-programme start's window history stays scalar)."""
    return all(p.rules and p.history_days == 0 and not p.attempt_days for p in policies)


def _gate_days(policies: list[Policy], gate: str) -> np.ndarray:
    """The day ``gate`` opened in each replication (`_NEVER`: not yet)."""
    days = [p.dates.gate_days[gate] for p in policies]
    return np.array([_NEVER if d is None else d for d in days], dtype=np.int64)


class BlockPolicy:
    """The ramp policies of a block's replications, advanced together.

    ``flows`` and ``states``: the block's ``(rep, day, cohort, k)`` records;
    ``els_backlog``: its ``(rep, day)`` ELS backlog (``None`` without ELS).
    """

    def __init__(
        self,
        policies: list[Policy],
        flows: np.ndarray,
        states: np.ndarray,
        els_backlog: np.ndarray | None,
    ):
        first = policies[0]
        self.policies = policies
        self.flows, self.states, self.els = flows, states, els_backlog
        n, horizon = len(policies), first.scenario.horizon_days
        self.horizon = horizon
        self.rules = first.rules
        self.working = first.working
        self.working_before = first.working_before
        self.working_index = first.working_index
        self.column = first.flow_column
        self.stalled_at = first.stalled_state
        self.active = first.active
        self.track_active = first.track_active
        self.names: list[str] = []
        self._labels: np.ndarray | None = None  # `names` as an array
        self.codes: dict[str, int] = {}
        self._code("")
        # per replication: the calendar's drawn incidents and freezes
        self.no_go = np.stack([p.no_go for p in policies])
        self.factor = np.stack([p.factor for p in policies])
        labels = np.stack([p.freeze_label for p in policies]).astype(str)
        unique, inverse = np.unique(labels, return_inverse=True)
        codes = np.array([self._code(str(s)) for s in unique], dtype=np.int64)
        self.freeze = codes[inverse.reshape(n, horizon)]
        # the drawn schedule steps, padded with steps that never come
        width = max(1, max(len(p.steps) for p in policies))
        self.step_day = np.full((n, width), _NEVER, dtype=np.int64)
        self.step_cap = np.zeros((n, width), dtype=np.int64)
        self.step_label = np.zeros((n, width), dtype=np.int64)
        for r, p in enumerate(policies):
            for i, step in enumerate(p.steps):
                self.step_day[r, i], self.step_cap[r, i] = step.day, step.cap
                self.step_label[r, i] = self._code(step.label)
        self._take_up(policies)
        gates = {r.requires.gate for r in self.rules if r.requires.gate is not None}
        self.gates = {g: _gate_days(policies, g) for g in gates}
        # running totals over cohorts of days before d (all; active cohorts)
        width_f = flows.shape[3]
        self.cum = np.zeros((n, horizon + 1, width_f), dtype=np.int64)
        self.active_cum = np.zeros_like(self.cum) if self.track_active else None
        self.stalled = np.zeros((n, horizon), dtype=np.int64)
        self.attempt_days = np.zeros((n, horizon), dtype=np.int64)
        self.n_attempt_days = np.zeros(n, dtype=np.int64)
        # attempt days before day d (bisect on the ascending attempt days)
        self.attempts_before = np.zeros((n, horizon + 1), dtype=np.int64)
        # results: each replication's cap, its label and the rule fired, by day
        self.daily_cap = np.zeros((n, horizon), dtype=np.int64)
        self.cap_rule = np.zeros((n, horizon), dtype=np.int64)
        self.rule_fired = np.zeros((n, horizon), dtype=np.int64)
        self.rule_codes = [self._code(rule.name) for rule in self.rules]

    def _code(self, name: str) -> int:
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
        return code

    def _take_up(self, policies: list[Policy]) -> None:
        """The state each policy starts in (a mid-programme start's included)."""
        self.level = np.array([p.level for p in policies], dtype=np.int64)
        self.label = np.array([self._code(p.level_label) for p in policies])
        self.since = np.array([p.level_since for p in policies], dtype=np.int64)
        self.at_cap_before = np.array([p.at_cap_before for p in policies])
        self.ceiling = np.array(
            [_NEVER if p.ceiling is None else p.ceiling for p in policies]
        )
        self.has_ceiling = np.array([p.ceiling is not None for p in policies])
        self.next_step = np.array([p.next_step for p in policies], dtype=np.int64)
        self.halt_until = np.array([p.halt_until for p in policies], dtype=np.int64)
        self.halt_rule = np.array([self._code(p.halt_rule) for p in policies])
        self.hold_until = np.array([p.hold_until for p in policies], dtype=np.int64)
        states = [[p.rule_state[r.name] for r in self.rules] for p in policies]
        self.action_end = np.array(
            [[s.action_end for s in row] for row in states], dtype=np.int64
        ).reshape(len(policies), len(self.rules))
        self.firings = np.array(
            [[s.firings for s in row] for row in states], dtype=np.int64
        ).reshape(len(policies), len(self.rules))

    # ------------------------------------------------------------------ the day
    def caps(self, day: int, asked: np.ndarray) -> np.ndarray:
        """Day ``day``'s cap of the replications ``asked`` (block positions;
        those still running), as `Policy.cap` gives each."""
        if day:
            self._ingest(day - 1)
        self._apply_steps(day, asked)
        if self.working[day]:
            self._check_rules(day, asked[day >= self.halt_until[asked]])
        return self._set_cap(day, asked)

    def _ingest(self, day: int) -> None:
        """Day ``day``'s flows (complete) into the running totals."""
        row = self.flows[:, day].sum(axis=1)
        self.cum[:, day + 1] = self.cum[:, day] + row
        if self.active_cum is not None:
            active = self.flows[:, day, self.active].sum(axis=1)
            self.active_cum[:, day + 1] = self.active_cum[:, day] + active
        self.stalled[:, day] = self.states[:, day, :, self.stalled_at].sum(axis=1)
        attempted = row[:, 0] > 0
        self.attempt_days[attempted, self.n_attempt_days[attempted]] = day
        self.n_attempt_days += attempted
        self.attempts_before[:, day + 1] = self.attempts_before[:, day] + attempted

    def _apply_steps(self, day: int, asked: np.ndarray) -> None:
        width = self.step_day.shape[1]
        while True:
            at = self.next_step[asked]
            due = at < width
            due[due] = self.step_day[asked[due], at[due]] <= day
            if not due.any():
                return
            r, i = asked[due], at[due]
            self.level[r], self.label[r] = self.step_cap[r, i], self.step_label[r, i]
            self.since[r], self.at_cap_before[r] = day, 0
            self.ceiling[r], self.has_ceiling[r] = self.step_cap[r, i], True
            self.next_step[r] += 1

    def _set_cap(self, day: int, asked: np.ndarray) -> np.ndarray:
        level = self.level[asked]
        cap, label = level.copy(), self.label[asked]
        factor = self.factor[asked, day]
        frozen = factor < 1
        cap[frozen] = np.floor(level[frozen] * factor[frozen] + 1e-9)
        label = np.where(frozen, self.freeze[asked, day], label)
        no_go = self.no_go[asked, day]
        cap[no_go], label[no_go] = 0, self._code("no_go")
        halted = day < self.halt_until[asked]
        cap[halted], label[halted] = 0, self.halt_rule[asked[halted]]
        if not self.working[day]:
            cap[:], label[:] = 0, self._code("closed")
        self.daily_cap[asked, day], self.cap_rule[asked, day] = cap, label
        return cap

    # ------------------------------------------------------------------ rules
    def _check_rules(self, day: int, undecided: np.ndarray) -> None:
        """Fire, for each replication, the first rule that may fire today."""
        for i, rule in enumerate(self.rules):
            if not len(undecided):
                return
            r = undecided
            end = self.action_end[r, i]
            may = day >= end
            new_days = self.n_attempt_days[r] - self.attempts_before[r, end]
            may &= new_days >= rule.window
            if rule.kind == "raise":
                may &= day >= self.hold_until[r]
            gate = rule.requires.gate
            if gate is not None:
                may &= self.gates[gate][r] <= day
            at_cap = self.working_before[day] - self.working_before[self.since[r]]
            may &= at_cap + self.at_cap_before[r] >= rule.requires.min_days_at_cap
            new_level, changes = self._effect(rule, r)
            may &= changes
            for condition in rule.when:
                if may.any():
                    may[may] = self._holds(condition, day, r[may])
            if may.any():
                self._fire(i, rule, day, r[may], new_level[may])
                undecided = undecided[~may]

    def _effect(self, rule, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The level a raise or cut would set, and where it changes anything
        (`Policy._effect`); halts and holds always act."""
        level = self.level[r]
        if rule.kind in ("halt", "hold"):
            return np.full(len(r), -1), np.ones(len(r), dtype=bool)
        if rule.kind == "cut":
            return np.full(len(r), rule.cap), rule.cap < level
        if rule.action == "raise_to":
            target = np.full(len(r), rule.cap, dtype=np.int64)
        else:
            target = np.floor(level * rule.factor + 1e-9).astype(np.int64)
        if rule.max_cap is not None:
            target = np.minimum(target, rule.max_cap)
        target = np.where(
            self.has_ceiling[r], np.minimum(target, self.ceiling[r]), target
        )
        return target, target > level

    def _fire(self, i: int, rule, day: int, r: np.ndarray, new: np.ndarray) -> None:
        self.firings[r, i] += 1
        self.rule_fired[r, day] = self.rule_codes[i]
        if rule.kind in ("halt", "hold"):
            last = self.working_before[day] + rule.days - 1
            end = (
                self.horizon
                if last >= len(self.working_index)
                else int(self.working_index[last]) + 1
            )
            if rule.kind == "halt":
                self.halt_until[r], self.halt_rule[r] = end, self.rule_codes[i]
            else:
                self.hold_until[r] = np.maximum(self.hold_until[r], end)
            self.action_end[r, i] = end
        else:
            self.level[r], self.label[r], self.since[r] = new, self.rule_codes[i], day
            self.at_cap_before[r] = 0
            self.action_end[r, i] = day

    # ------------------------------------------------------------------ metrics
    def _holds(self, condition, day: int, r: np.ndarray) -> np.ndarray:
        count = self.n_attempt_days[r]
        out = count >= condition.window
        if not out.any():
            return out
        r = r[out]
        start = self.attempt_days[r, count[out] - condition.window]
        value = self._metric(condition.metric, r, start, day, condition.confidence)
        holds = ~np.isnan(value) & _OPS[condition.op](value, condition.value)
        out[out] = holds
        return out

    def _window_sum(self, names, r, start, day: int, active: bool = False):
        cum = self.active_cum if active else self.cum
        assert cum is not None
        columns = [self.column[name] for name in names]
        now, then = cum[r, day][:, columns], cum[r, start][:, columns]
        return (now - then).sum(axis=1)

    def _metric(self, name: str, r, start, day: int, confidence) -> np.ndarray:
        """`Policy.metric` for replications ``r``, each over its own window."""
        if name in RATE_METRICS:
            numerator, denominator = RATE_METRICS[name]
            below = self._window_sum(denominator, r, start, day)
            above = self._window_sum(numerator, r, start, day)
            out = np.full(len(r), np.nan)
            some = below != 0
            out[some] = above[some] / below[some]
            return out
        if name in ("dumb_count", "attempt_count", "active_fix_forward_count"):
            flow = {"dumb_count": "dumbs", "attempt_count": "attempts"}.get(
                name, "fix_forwards"
            )
            active = name == "active_fix_forward_count"
            return self._window_sum((flow,), r, start, day, active).astype(float)
        if name in ("stalled_backlog", "els_backlog"):
            totals = self.stalled if name == "stalled_backlog" else self.els
            assert totals is not None  # the schema requires an els section
            first = int(start.min())
            span = totals[r, first:day]
            days = np.arange(first, day)
            return np.where(days >= start[:, None], span, -1).max(axis=1).astype(float)
        if name == "active_failure_rate_upper":  # since the programme's start
            failures = self._window_sum(("dumbs", "fix_forwards"), r, 0, day, True)
            trials = self._window_sum(("attempts",), r, 0, day, True)
            return np.array(
                [
                    clopper_pearson_upper(f, t, confidence)
                    for f, t in zip(failures.tolist(), trials.tolist(), strict=True)
                ],
                dtype=float,
            )
        raise AssertionError(f"metric {name} not implemented")  # pragma: no cover

    # ------------------------------------------------------------------ output
    def _names(self) -> np.ndarray:
        """The labels by code, as an array (made again only when a code was added)."""
        if self._labels is None or len(self._labels) != len(self.names):
            self._labels = np.array(self.names, dtype=object)
        return self._labels

    def write_back(self, r: int) -> None:
        """Leave replication ``r``'s `Policy` as its scalar run leaves it (its
        ``last_day`` set by the block): the state ``day_columns`` reads."""
        names = self._names()
        p = self.policies[r]
        last = p.last_day + 1
        p.daily_cap[:last] = self.daily_cap[r, :last]
        p.cap_rule[:last] = names[self.cap_rule[r, :last]]
        p.rule_fired[:last] = names[self.rule_fired[r, :last]]
        p.level, p.level_label = int(self.level[r]), self.names[self.label[r]]
        p.level_since = int(self.since[r])
        p.at_cap_before = int(self.at_cap_before[r])
        p.ceiling = int(self.ceiling[r]) if self.has_ceiling[r] else None
        p.next_step = int(self.next_step[r])
        p.halt_until = int(self.halt_until[r])
        p.halt_rule = self.names[self.halt_rule[r]]
        p.hold_until = int(self.hold_until[r])
        for i, rule in enumerate(self.rules):
            state = p.rule_state[rule.name]
            state.action_end = int(self.action_end[r, i])
            state.firings = int(self.firings[r, i])
