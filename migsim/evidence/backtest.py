"""Forecasts from what happened, and backtests that score them.

A forecast *as of* a date D:

1. calibrates the scenario on the actuals dated up to D (`migsim.evidence.calibrate`);
2. takes the state at the end of D from the actuals (`state_from_actuals`);
3. runs the calibrated scenario forward from the day after D, with the rates'
   posterior drawn once per replication, to the scenario's horizon end.

A backtest makes forecasts as of one or more dates (by default the scenario's
start, i.e. the forecast a planner would have made before anything happened) and
scores each against the actual cumulative migrated on every later reported date:
the share of points inside the P10-P90 and P5-P95 bands, the median absolute
error of the P50 in installations and in days, the continuous ranked probability
score (`scoringrules.crps_ensemble`) and a PIT histogram. A point after the
horizon end counts as outside the bands.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scoringrules
from scipy import stats

from migsim import __version__
from migsim.common.errors import ActualsError, MigsimError
from migsim.common.files import output_dir
from migsim.common.stats import json_number, quantile
from migsim.evidence.actuals import Actuals
from migsim.evidence.calibrate import DEFAULT_PRIOR_STRENGTH, Calibration, calibrate
from migsim.model.scenario import (
    OUTCOMES,
    Scenario,
    gate_reference,
    load_scenario,
    probability_mean,
)
from migsim.output.plots import backtest_chart, forecast_fan_chart, plt
from migsim.results.results import Results
from migsim.runner.runner import run
from migsim.sim.engine import FLOWS, STATES
from migsim.sim.policy import working_days

__all__ = [
    "Backtest",
    "Forecast",
    "backtest",
    "forecast_as_of",
    "score",
    "score_points",
    "state_from_actuals",
    "write_forecast",
]

_IN_FLIGHT = ("stalled", "rolled_back", "impaired")
_PIT_BINS = 10
#: One-sided binomial test level for calling a band over- or underconfident.
_VERDICT_LEVEL = 0.05


# --------------------------------------------------------------------------- state
@functools.lru_cache(maxsize=128)
def _pmf(delay: Any) -> tuple[np.ndarray, np.ndarray]:
    """A delay's pmf, computed once per distinct (frozen, hashable) delay."""
    return delay.pmf()


def state_from_actuals(
    scenario: Scenario, actuals: Actuals, as_of: date
) -> tuple[dict[str, Any], list[str]]:
    """The state at the end of ``as_of`` from the actuals, as `Results.state_on` gives.

    - With end-of-day states: each cohort's last reported states on or before
      ``as_of``.
    - With daily flows only: the states rebuilt from running sums; the installations
      waiting to retry are those failed on day ``as_of - j`` times P(retry delay > j)
      (expected), the rest of the unresolved are queued.
    - With coarse figures: migrated as reported (a programme total shared between the
      cohorts in proportion to their eligible installations), devices left dumb
      estimated alongside at the scenario's rates; everything else eligible is
      queued, nothing in flight or abandoned.

    In-flight installations are known as counts only: the engine draws their days
    until due from the residual of their delay distributions, taking stalled and
    rolled-back ones to have made one attempt and queued ones none.

    Returns
    -------
    (state, notes)
        ``{"date", "cohorts": {name: initial_state}}`` and what was assumed, in words.
    """
    notes: list[str] = []
    used = actuals.up_to(as_of)
    cohorts: dict[str, dict[str, int]] = {}
    if used.kind == "flows" and used.has(*STATES) and used.per_cohort:
        for cohort in scenario.cohorts:
            cohorts[cohort.name] = _from_states(scenario, cohort, used, as_of, notes)
        notes.append(
            "in-flight installations are known as counts: their days until due are "
            "shared by the delays' residual given when they entered (from the "
            "reported flows), or, without flows, drawn from the steady-state residual"
        )
    elif (
        used.kind == "flows"
        and used.has(*FLOWS[1:])  # every flow after attempts
        and used.per_cohort
    ):
        for cohort in scenario.cohorts:
            cohorts[cohort.name] = _from_flows(scenario, cohort, used, as_of)
        notes.append(
            "no end-of-day states: the state on the as-of date is rebuilt from "
            "the flows (rolled back vs queued split by the retry delay, in "
            "expectation); in-flight days until due shared by the delays' residual "
            "given when they entered"
        )
    else:
        cohorts = _from_coarse(scenario, used, as_of)
        notes.append(
            "coarse actuals: only cumulative migrated is known on the as-of "
            "date; devices left dumb are estimated from it at the scenario's "
            "rates, every other eligible installation is taken as queued, none "
            "in flight or abandoned"
        )
    state: dict[str, Any] = {"date": as_of, "cohorts": cohorts}
    operations = _policy_state(scenario, used, as_of, notes)
    if operations is not None:
        state["operations_state"] = operations
    return state, notes


def _policy_state(
    scenario: Scenario, actuals: Actuals, as_of: date, notes: list[str]
) -> dict[str, Any] | None:
    """The ramp policy's state on ``as_of`` from the actuals' day columns.

    Needs ``daily_cap`` and ``cap_rule`` (as a run's ``.daily`` has them): the
    level in force is the cap of the last day labelled by a level (the scenario's
    ``daily_cap``, a schedule step, a raise or cut rule), in force since the first
    day of its last run; ``rule_fired`` gives each rule's firings and re-arm
    (halts and holds still running); the flows give the window history and
    ``no_go`` an open incident. Gates and uncertain dates are not in the actuals:
    they are drawn from their distributions (``condition_dates: false``).
    """
    capacity = scenario.capacity
    if actuals.kind != "flows" or actuals.frame.empty:
        return None
    reported = {"daily_cap", "cap_rule"} <= set(actuals.policy_columns)
    if not reported and (capacity.rules or capacity.schedule):
        notes.append(
            "the actuals do not report daily_cap and cap_rule: the forecast's cap is "
            "the scenario's (and its schedule's) on the as-of date, rules unfired"
        )
    frame = actuals.frame
    days = frame.groupby("date", sort=True).first()
    if not reported:
        days = days.assign(cap_rule="", daily_cap=np.nan)
    index = ((days.index - pd.Timestamp(scenario.start_date)).days).to_numpy()
    after = scenario.day_of(as_of) + 1
    working = working_days(scenario)
    steps = {
        step.name or f"schedule.{i}": step for i, step in enumerate(capacity.schedule)
    }
    rules = {r.name: r for r in capacity.rules}
    levels = {
        "daily_cap",
        *steps,
        *(n for n, r in rules.items() if r.kind in ("raise", "cut")),
    }
    labels = days["cap_rule"].to_numpy(dtype=object)
    caps = days["daily_cap"].to_numpy(dtype=float)
    fired_column = (
        days["rule_fired"].to_numpy(dtype=object)
        if "rule_fired" in actuals.policy_columns
        else None
    )
    step_days = {
        scenario.day_of(step.from_): (name, step.daily_cap)
        for name, step in steps.items()
        if isinstance(step.from_, date)
    }
    # replay the level: schedule steps, raises and cuts as fired (their effect
    # computed as the policy does, for a day that was closed by no-go or a
    # freeze), re-synced to the reported cap on days labelled by the level
    cap, label, since, ceiling = capacity.daily_cap, "daily_cap", 0, None
    for row, day in enumerate(index.tolist()):
        if day in step_days:
            label, cap = step_days[day]
            since, ceiling = day, cap
        fired = fired_column[row] if fired_column is not None else ""
        rule = rules.get(fired)
        if rule is not None and rule.kind in ("raise", "cut"):
            cap, label, since = _level_after(rule, cap, ceiling), rule.name, day
        if labels[row] == label and labels[row] in levels:
            cap = int(caps[row])
    at_cap = int(working[max(0, since) : after].sum())
    working_index = np.flatnonzero(working)

    def action_end(rule, fired: int) -> int:
        if rule.kind in ("halt", "hold"):
            done = np.flatnonzero(working_index >= fired)[: rule.days]
            return int(working_index[done[-1]]) + 1 if len(done) else len(working)
        return fired

    rule_states, halt_until, halt_rule, hold_until = {}, 0, "", 0
    for name, rule in rules.items():
        fired = [] if fired_column is None else index[fired_column == name].tolist()
        end = action_end(rule, fired[-1]) if fired else 0
        rule_states[name] = {"action_end": end - after, "firings": len(fired)}
        if fired and rule.kind == "halt" and end > after and end - after > halt_until:
            halt_until, halt_rule = end - after, name
        if fired and rule.kind == "hold" and end > after:
            hold_until = max(hold_until, end - after)
    history, before = _actuals_history(scenario, actuals, as_of, rules)
    open_days = 0
    if "no_go" in actuals.policy_columns:
        no_go = dict(
            zip(index.tolist(), days["no_go"].to_numpy(dtype=bool), strict=True)
        )
        day = after - 1
        while day >= 0 and not working[day]:  # closed days: open if the last
            day -= 1  # working day before them was a no-go day
        if day >= 0 and no_go.get(day, False):
            open_days = after - 1 - day
            while day >= 0 and (no_go.get(day, False) or not working[day]):
                open_days += 1
                day -= 1
    if reported:
        notes.append(
            "the ramp policy's state is read from the actuals' daily_cap, "
            "cap_rule and rule_fired"
        )
    gates_open, gates_closed, passed, pending = _eligibility_dates(
        scenario, actuals, as_of, notes
    )
    return {
        "gates_open": gates_open,
        "gates_closed": gates_closed,
        "dates_passed": passed,
        "dates_pending": pending,
        "cap": cap,
        "cap_rule": label,
        "days_at_cap": at_cap,
        "ceiling": ceiling,
        "halt_until": halt_until,
        "halt_rule": halt_rule,
        "hold_until": hold_until,
        "rules": rule_states,
        "history": history,
        "before_history": before,
        "incident_open_days": open_days,
        "condition_dates": False,
    }


def _eligibility_dates(scenario: Scenario, actuals: Actuals, as_of: date, notes):
    """Gates and uncertain dates of cohort eligibility, read from ``pending``.

    A cohort whose ``eligible_from`` is a gate or a date distribution became
    eligible on the first reported day its pending count fell below its
    installations (then that gate opened, or that date passed, on that day); if
    none fell by ``as_of``, it had not. A single deferred share whose ``until``
    is uncertain passed when pending reached 0. Other gates and dates are not in
    the actuals and are drawn from their distributions.
    """
    gates_open: dict[str, date] = {}
    passed: dict[str, date] = {}
    gates_closed: list[str] = []
    pending_paths: list[str] = []
    if not actuals.has("pending"):
        return gates_open, gates_closed, passed, pending_paths

    def record(path: str, spec, when: date | None) -> None:
        gate = gate_reference(spec)
        if gate is not None:
            if when is None:
                gates_closed.append(gate)
            else:
                gates_open.setdefault(gate, when)
        elif not isinstance(spec, date):
            if when is None:
                pending_paths.append(path)
            else:
                passed[path] = when

    for cohort in scenario.cohorts:
        rows = actuals.cohort_frame(cohort.name)
        if rows.empty:
            continue
        left = rows["pending"].to_numpy(float)
        dates = rows["date"].dt.date.to_numpy()
        prefix = f"cohorts.{cohort.name}"
        spec = cohort.eligible_from
        if spec is not None and not isinstance(spec, date):
            fell = np.flatnonzero(left < cohort.installations)
            record(
                f"{prefix}.eligible_from", spec, dates[fell[0]] if len(fell) else None
            )
        if len(cohort.deferred) == 1 and not isinstance(cohort.deferred[0].until, date):
            item = cohort.deferred[0]
            emptied = np.flatnonzero(left == 0)
            record(
                f"{prefix}.deferred.{item.name}.until",
                item.until,
                dates[emptied[0]] if len(emptied) else None,
            )
    if gates_open or gates_closed or passed or pending_paths:
        notes.append(
            "gates and uncertain dates of eligibility are read from the pending "
            "counts; the others are drawn from their distributions"
        )
    closed = sorted(set(gates_closed) - set(gates_open))  # open for one: open
    return gates_open, closed, passed, pending_paths


def _level_after(rule, level: int, ceiling: int | None) -> int:
    """The level a raise or cut sets (as `Policy` does: rounded down, bounded)."""
    if rule.kind == "cut":
        return min(level, rule.cap)
    bounds = [b for b in (rule.max_cap, ceiling) if b is not None]
    target = (
        rule.cap
        if rule.action == "raise_to"
        else math.floor(level * rule.factor + 1e-9)
    )
    return max(level, min([target, *bounds]))


def _actuals_history(scenario, actuals: Actuals, as_of: date, rules) -> tuple:
    """The window history a policy's rules read, from the actuals' flows."""
    window = max((r.window for r in rules.values()), default=0)
    if not window:
        return [], {}
    frame = actuals.frame
    flows = [c for c in FLOWS if actuals.has(c)]
    active_names = {c.name for c in scenario.cohorts if c.mode == "active"}
    total = frame.groupby("date")[flows].sum()
    active = frame[frame["cohort"].isin(active_names)].groupby("date")[flows].sum()
    stalled = (
        frame.groupby("date")["stalled"].sum()
        if actuals.has("stalled")
        else pd.Series(dtype=float)
    )
    start = pd.Timestamp(scenario.start_date)
    dates = pd.date_range(start, pd.Timestamp(as_of))
    total = total.reindex(dates, fill_value=0)
    active = active.reindex(dates, fill_value=0)
    stalled = stalled.reindex(dates, fill_value=0)
    tried = (
        np.flatnonzero(total["attempts"].to_numpy() > 0)
        if "attempts" in flows
        else np.array([], dtype=int)
    )
    if not len(tried):
        return [], {}
    first = int(tried[-window] if len(tried) >= window else tried[0])

    def counts(row) -> dict[str, int]:
        return {n: int(round(float(v))) for n, v in row.items() if v}

    els = (
        frame.groupby("date")["els_backlog"].first()
        if "els_backlog" in actuals.policy_columns
        else pd.Series(dtype=float)
    ).reindex(dates, fill_value=0)
    history = [
        {
            "flows": counts(total.iloc[i]),
            "active": counts(active.iloc[i]),
            "stalled": int(round(float(stalled.iloc[i]))),
            "els_backlog": int(round(float(els.iloc[i]))),
        }
        for i in range(first, len(dates))
    ]
    before = {
        "flows": counts(total.iloc[:first].sum()),
        "active": counts(active.iloc[:first].sum()),
        "stalled": 0,
    }
    return history, before


def _eligible_after(
    scenario: Scenario, cohort, as_of: date, rows: pd.DataFrame | None = None
) -> bool:
    """Whether the cohort is still pending at the end of ``as_of``.

    An uncertain or gated ``eligible_from`` is taken as passed once the actuals
    report attempts of the cohort.
    """
    spec = cohort.eligible_from
    if spec is None or isinstance(spec, date):
        return (spec or scenario.start_date) > as_of
    return rows is None or "attempts" not in rows or not (rows["attempts"] > 0).any()


def _fit_total(
    counts: dict[str, int], cohort, actuals: Actuals, as_of: date, absorb: str
) -> dict[str, int]:
    """Make the states sum to the cohort's installations (rounding of meters)."""
    gap = cohort.installations - sum(counts.values())
    if gap and actuals.unit == "installations" and absorb != "rebuilt":
        raise ActualsError(
            f"{actuals.path}: cohort {cohort.name}: the states on {as_of} sum to "
            f"{sum(counts.values()):,}, not the cohort's {cohort.installations:,} "
            "installations"
        )
    target = "pending" if counts.get("pending") else "queued"
    counts[target] = counts.get(target, 0) + gap
    if counts[target] < 0:
        raise ActualsError(
            f"{actuals.path}: cohort {cohort.name}: the actuals up to {as_of} "
            "account for "
            f"{-gap:,} more installations than the cohort's {cohort.installations:,}"
        )
    return counts


def _from_states(scenario, cohort, actuals: Actuals, as_of: date, notes) -> dict:
    rows = actuals.cohort_frame(cohort.name)
    if rows.empty:
        return _untouched(scenario, cohort, as_of)
    last = rows.iloc[-1]
    if last["date"].date() != as_of:
        notes.append(
            f"{cohort.name}: states last reported on {last['date'].date()}, "
            f"taken as the state on {as_of}"
        )
    counts = {s: int(round(float(last[s]))) for s in STATES}
    if counts["pending"] and not _eligible_after(scenario, cohort, as_of, rows):
        counts["queued"] += counts.pop("pending")
        counts["pending"] = 0
    counts = _fit_total(counts, cohort, actuals, as_of, "states")
    return _by_age(scenario, cohort, rows, as_of, counts)


#: Where each in-flight state comes from, and the delay it waits.
_INFLOW = {
    "stalled": (("stalls",), "stall", "resolves_after_days"),
    "rolled_back": (("rollbacks", "stall_failures"), "rollback", "retry_after_days"),
    "impaired": (("fix_forwards",), "fix_forward", "restored_after_days"),
}


def _by_age(
    scenario: Scenario, cohort, rows: pd.DataFrame, as_of: date, counts: dict[str, Any]
) -> dict[str, Any]:
    """Give in-flight counts their days until due from the history of their inflow.

    An installation that entered a state on day ``as_of - a`` and is still there
    has a delay longer than ``a``; its days until due follow the delay's residual
    given that age. Over the reported inflow (stalls; rollbacks and stall failures
    less abandons; fix forwards) this weighs each due day by the count that entered
    each day times the probability of that delay (``release_on`` applied to
    stalls), and shares the reported count in proportion (largest remainders).
    They are taken to have made one attempt. A state whose inflow is not reported
    keeps its bare count, and the engine draws the detail from the steady-state
    residual instead.
    """
    out = dict(counts)
    ages = (pd.Timestamp(as_of) - rows["date"]).dt.days.to_numpy()
    available = set(rows.columns)
    for state, (columns, section, field_name) in _INFLOW.items():
        n = out.get(state, 0)
        spec = getattr(cohort, section)
        if not n or spec is None or not available.issuperset(columns):
            continue
        if state == "rolled_back" and cohort.max_attempts < 2:
            continue
        inflow = sum(rows[c].to_numpy(float) for c in columns)
        if state == "rolled_back" and "abandons" in available:
            inflow = np.clip(inflow - rows["abandons"].to_numpy(float), 0, None)
        days, probs = _pmf(getattr(spec, field_name))
        entered = inflow > 0
        # due day relative to as_of (1 = the next day), one row per day of inflow
        due = days[None, :] - ages[entered, None]
        if state == "stalled" and isinstance(spec.release_on, date):
            due = np.maximum(due, (spec.release_on - as_of).days)
        mass = inflow[entered, None] * probs[None, :]
        waiting = due >= 1
        if not waiting.any():
            continue
        keys, where = np.unique(due[waiting], return_inverse=True)
        weights = np.bincount(where, weights=mass[waiting])
        share = weights * n / weights.sum()
        whole = np.floor(share).astype(int)
        order = np.argsort(-(share - whole), kind="stable")
        whole[order[: n - whole.sum()]] += 1
        groups = [
            {"count": int(c), "days_until_due": int(k)}
            for k, c in zip(keys, whole, strict=True)
            if c
        ]
        if state != "impaired":
            for group in groups:
                group["attempts_made"] = 1
        out[state] = groups
    return out


def _untouched(scenario: Scenario, cohort, as_of: date) -> dict[str, int]:
    pending = _eligible_after(scenario, cohort, as_of)
    n = cohort.installations
    return {"pending": n if pending else 0, "queued": 0 if pending else n}


def _from_flows(scenario, cohort, actuals: Actuals, as_of: date) -> dict:
    rows = actuals.cohort_frame(cohort.name)
    if rows.empty:
        return _untouched(scenario, cohort, as_of)
    total = rows.sum(numeric_only=True)
    migrated = total["successes"] + total["stall_completions"] + total["restorations"]
    impaired = total["fix_forwards"] - total["restorations"]
    stalled = total["stalls"] - total["stall_completions"] - total["stall_failures"]
    counts = {
        "pending": cohort.installations
        if _eligible_after(scenario, cohort, as_of, rows)
        else 0,
        "stalled": stalled,
        "impaired": impaired,
        "migrated": migrated,
        "dumb": total["dumbs"],
        "abandoned": total["abandons"],
    }
    waiting = 0.0
    if cohort.rollback is not None:
        days, probs = cohort.rollback.retry_after_days.pmf()
        failed = (rows["rollbacks"] + rows["stall_failures"]).to_numpy()
        ago = (pd.Timestamp(as_of) - rows["date"]).dt.days.to_numpy()
        still = np.array([probs[days > j].sum() for j in ago])  # P(retry delay > j)
        waiting = float((failed * still).sum())  # abandons ignored: a small overcount
    counts = {k: int(round(float(v))) for k, v in counts.items()}
    if min(counts.values()) < 0:
        bad = min(counts, key=counts.get)
        raise ActualsError(
            f"{actuals.path}: cohort {cohort.name}: the flows up to {as_of} "
            f"leave {counts[bad]:,} {bad}: they do not add up"
        )
    unresolved = cohort.installations - sum(counts.values())
    counts["rolled_back"] = max(0, min(int(round(waiting)), unresolved))
    counts["queued"] = 0
    counts = _fit_total(counts, cohort, actuals, as_of, "rebuilt")
    return _by_age(scenario, cohort, rows, as_of, counts)


def _from_coarse(scenario: Scenario, actuals: Actuals, as_of: date) -> dict:
    cohorts = {c.name: _untouched(scenario, c, as_of) for c in scenario.cohorts}
    if actuals.frame.empty:
        return cohorts
    if actuals.per_cohort:
        figures = actuals.cumulative_migrated(by_cohort=True)
        migrated = {
            name: float(group["cumulative_migrated"].iloc[-1])
            for name, group in figures.groupby("cohort", sort=False)
        }
    else:
        total = float(actuals.cumulative_migrated()["cumulative_migrated"].iloc[-1])
        eligible = {
            c.name: (0 if cohorts[c.name]["pending"] else c.installations)
            for c in scenario.cohorts
        }
        weight = sum(eligible.values())
        migrated = {
            name: total * n / weight if weight else 0.0 for name, n in eligible.items()
        }
    for cohort in scenario.cohorts:
        state = cohorts[cohort.name]
        done = min(int(round(migrated.get(cohort.name, 0.0))), cohort.installations)
        if state["pending"] and done:
            state["pending"], state["queued"] = 0, cohort.installations
        # devices left dumb alongside them, at the scenario's rates: per attempt
        # that ended, dumb / (success + fix forward + stall x then_success)
        rates = dict(zip(OUTCOMES, cohort.outcomes.mean(), strict=True))
        then = probability_mean(cohort.stall.then_success) if cohort.stall else 1.0
        good = rates["success"] + rates["fix_forward"] + rates["stall"] * then
        dumb = int(round(done * rates["dumb"] / good)) if good > 0 else 0
        dumb = min(dumb, cohort.installations - done)
        state["migrated"], state["dumb"] = done, dumb
        if state["pending"]:
            state["pending"] -= done + dumb
        else:
            state["queued"] -= done + dumb
    return cohorts


# --------------------------------------------------------------------------- forecast
class ForecastResults(Results):
    """`Results` of a forecast: the summary also says what was learned and from what."""

    def __init__(self, results: Results, forecast: dict[str, Any]):
        # share the run's figures and daily rows (a streamed run keeps no logs:
        # passing .logs would re-simulate it); keep it alive, as it owns the
        # spill file
        self.__dict__.update(results.__dict__)
        self.__dict__.pop("summary", None)
        self._wrapped = results
        self.forecast = forecast

    @cached_property
    def summary(self) -> dict[str, Any]:
        out = dict(Results.summary.func(self))
        out["forecast"] = self.forecast
        return out


@dataclass
class Forecast:
    """A forecast as of a date: what was learned, the state, and the simulated future.

    Attributes
    ----------
    as_of
        The last date of actuals used (``None``: from the scenario's start, none used).
    calibration
        The update of the rates on the actuals up to ``as_of``.
    scenario
        What was run: the calibrated scenario starting the day after ``as_of`` from
        the state on ``as_of`` (or from its start).
    results
        The simulated replications.
    """

    as_of: date | None
    prior: Scenario
    calibration: Calibration
    scenario: Scenario
    results: ForecastResults
    notes: list[str] = field(default_factory=list)

    @property
    def start_date(self) -> date:
        return self.scenario.start_date

    def cumulative_migrated(self) -> np.ndarray:
        """(replications, days) cumulative migrated, all cohorts, from the start."""
        return self.results.series("cumulative_migrated").sum(axis=2)

    def summary_text(self) -> str:
        lines = [self.calibration.learned()]
        if self.as_of is not None:
            lines.append(
                f"Forecast from the state on {self.as_of} (the actuals), run from "
                f"{self.start_date} to {self.scenario.end_date}."
            )
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _check_as_of(scenario: Scenario, as_of: date) -> None:
    if not scenario.start_date <= as_of < scenario.end_date:
        raise MigsimError(
            f"--as-of {as_of}: must be on or after the scenario's start "
            f"{scenario.start_date} and before its end {scenario.end_date}"
        )


def forecast_as_of(
    scenario: Scenario | str,
    actuals: Actuals,
    as_of: date | None,
    replications: int = 200,
    seed: int | None = None,
    workers: int = 1,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> Forecast:
    """Calibrate on the actuals up to ``as_of``, start from its state, run forward.

    ``as_of=None`` forecasts from the scenario's start with no actuals (the rates
    keep their prior, drawn per replication with ``prior_strength``).
    """
    prior = load_scenario(scenario)
    seed = prior.seed if seed is None else int(seed)
    if as_of is None:  # nothing learned: the scenario as it is
        calibration = calibrate(
            prior, actuals.up_to(prior.start_date - timedelta(days=1)), prior_strength
        )
        forward, notes = (
            prior,
            [
                "from the scenario's start: no actuals used, the "
                "scenario's rates as they are"
            ],
        )
    else:
        _check_as_of(prior, as_of)
        calibration = calibrate(prior, actuals, prior_strength, as_of=as_of)
        state, notes = state_from_actuals(calibration.scenario, actuals, as_of)
        forward = calibration.scenario.starting_from(state)
    results = run(
        forward, replications=replications, seed=seed, workers=workers, fail_fast=True
    )
    info = {
        "as_of": as_of.isoformat() if as_of else None,
        "actuals": actuals.path,
        "actuals_unit": actuals.unit,
        "n_attempts_learned_from": calibration.n_attempts,
        "learned": calibration.learned(),
        "notes": [*calibration.notes, *notes],
        "calibration": calibration.summary(),
    }
    return Forecast(
        as_of,
        prior,
        calibration,
        forward,
        ForecastResults(results, info),
        [*calibration.notes, *notes],
    )


def write_forecast(
    forecast: Forecast,
    directory: str | Path,
    *,
    overwrite: bool = False,
    daily: bool = True,
) -> Path:
    """The usual run outputs, with ``backlog.png`` showing actuals then the forecast,
    plus ``calibration.json`` and ``calibrated.yaml``; written atomically."""
    with output_dir(directory, overwrite=overwrite) as out:
        forecast.results.write(out, daily=daily)
        actual = forecast.calibration.actuals
        if forecast.as_of is not None:
            actual = actual.up_to(forecast.as_of)
        remaining = (
            actual.remaining(forecast.prior.installations)
            if not actual.frame.empty
            else pd.DataFrame({"date": [], "remaining": []})
        )
        bands = forecast.results.bands(
            "remaining", quantiles=(0.05, 0.1, 0.5, 0.9, 0.95)
        )
        if len(remaining) and forecast.as_of is not None:  # join the fan to the actuals
            last = remaining.iloc[[-1]]
            joint = {
                c: last["remaining"].to_numpy() for c in bands.columns if c != "date"
            }
            bands = pd.concat(
                [pd.DataFrame({"date": last["date"].to_numpy(), **joint}), bands],
                ignore_index=True,
            )
        chart = forecast_fan_chart(
            remaining, bands, forecast.as_of or forecast.start_date, forecast.prior.name
        )
        chart.savefig(out / "backlog.png", dpi=110)
        plt.close(chart)
        (out / "calibration.json").write_text(
            json.dumps(forecast.calibration.summary(), indent=2) + "\n",
            encoding="utf-8",
        )
        (out / "calibrated.yaml").write_text(
            forecast.calibration.scenario.to_yaml(), encoding="utf-8"
        )
    return Path(directory)


# --------------------------------------------------------------------------- backtest
@dataclass
class Backtest:
    """Forecasts as of one or more dates, scored against the later actuals."""

    scenario: Scenario
    actuals: Actuals
    forecasts: list[Forecast]
    points: pd.DataFrame  # one row per (as_of, actual point after it)
    replications: int
    seed: int

    @cached_property
    def figures(self) -> dict[str, Any]:
        """Pooled over every as-of date: coverage, errors, CRPS, PIT, the verdict."""
        return score(self.points)

    def per_as_of(self) -> list[dict[str, Any]]:
        out = []
        for forecast in self.forecasts:
            label = _label(forecast, self.scenario)
            figures = score(self.points[self.points["as_of"] == label])
            figures["as_of"] = label
            figures["learned"] = forecast.calibration.learned()
            figures["n_attempts_learned_from"] = forecast.calibration.n_attempts
            figures["notes"] = forecast.notes
            out.append(figures)
        return out

    def summary(self) -> dict[str, Any]:
        """What ``backtest.json`` holds."""
        return {
            "migsim_version": __version__,
            "scenario": self.scenario.name,
            "scenario_sha256": self.scenario.sha256,
            "actuals": self.actuals.path,
            "actuals_kind": self.actuals.kind,
            "actuals_unit": self.actuals.unit,
            "seed": self.seed,
            "replications": self.replications,
            "as_of": [_label(f, self.scenario) for f in self.forecasts],
            **self.figures,
            "forecasts": self.per_as_of(),
        }

    def text(self) -> str:
        f = self.figures
        lines = [
            f"Backtest of {self.scenario.name} against {self.actuals.describe()}",
            f"{self.replications} replications per forecast, seed {self.seed}; "
            "forecasts as of "
            + ", ".join(_label(x, self.scenario) for x in self.forecasts),
            "",
        ]
        if not f["n_points"]:
            lines.append(f["verdict"])
            return "\n".join(lines)
        lines += [
            f"  actual points scored                {f['n_points']:>10,}"
            + (
                f"  ({f['n_beyond_horizon']} after the horizon end, counted outside)"
                if f["n_beyond_horizon"]
                else ""
            ),
            f"  inside P10-P90 (nominal 80%)        {f['coverage_p10_p90']:>10.0%}",
            f"  inside P5-P95 (nominal 90%)         {f['coverage_p5_p95']:>10.0%}",
            f"  median abs. error of P50            {_num(f['mae_installations']):>10}"
            " installations",
            f"  median abs. error of P50            {_num(f['mae_days']):>10} days"
            + (
                ""
                if f["mae_days"] is not None
                else " (the P50 curve never reaches most actual points)"
            ),
            f"  mean CRPS                           {_num(f['crps_mean']):>10}"
            " installations",
            "",
            f["verdict"],
        ]
        return "\n".join(lines)

    def write(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write backtest.json, backtest_points.csv and backtest.png atomically."""
        with output_dir(directory, overwrite=overwrite) as out:
            (out / "backtest.json").write_text(
                json.dumps(self.summary(), indent=2) + "\n", encoding="utf-8"
            )
            self.points.to_csv(out / "backtest_points.csv", index=False)
            chart = backtest_chart(
                self._panels(),
                self.figures["pit_histogram"]["counts"],
                self.scenario.name,
            )
            chart.savefig(out / "backtest.png", dpi=110)
            plt.close(chart)
        return Path(directory)

    def _panels(self) -> list[dict[str, Any]]:
        migrated = (
            self.actuals.cumulative_migrated()
            if self.actuals.can_track_migrated()
            else pd.DataFrame({"date": [], "cumulative_migrated": []})
        )
        panels = []
        for forecast in self.forecasts:
            cut = pd.Timestamp(forecast.as_of or self.scenario.start_date)
            bands = forecast.results.bands(
                "cumulative_migrated", quantiles=(0.05, 0.1, 0.5, 0.9, 0.95)
            )
            panels.append(
                {
                    "as_of": _label(forecast, self.scenario),
                    "bands": bands,
                    "before": migrated[migrated["date"] <= cut],
                    "after": migrated[migrated["date"] > cut],
                }
            )
        return panels


def _label(forecast: Forecast, scenario: Scenario) -> str:
    return (forecast.as_of or scenario.start_date).isoformat()


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def backtest(
    scenario: Scenario | str,
    actuals: Actuals,
    as_of: list[date] | None = None,
    replications: int = 200,
    seed: int | None = None,
    workers: int = 1,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> Backtest:
    """Forecast as of each date and score every later actual point.

    Parameters
    ----------
    as_of
        Dates the forecasts are made on (default: the scenario's start, with no
        actuals used). A date equal to the start also means "from the start".
    """
    sc = load_scenario(scenario)
    seed = sc.seed if seed is None else int(seed)
    if not actuals.can_track_migrated():
        actuals.cumulative_migrated()  # raises the ActualsError that says why
    dates: list[date | None] = (
        [None]
        if not as_of
        else [None if d == sc.start_date else d for d in sorted(set(as_of))]
    )
    observed = actuals.cumulative_migrated()
    forecasts, frames = [], []
    for when in dates:
        forecast = forecast_as_of(
            sc, actuals, when, replications, seed, workers, prior_strength
        )
        forecasts.append(forecast)
        frames.append(score_points(forecast, observed))
    points = pd.concat(frames, ignore_index=True)
    return Backtest(sc, actuals, forecasts, points, replications, seed)


def score_points(forecast: Forecast, observed: pd.DataFrame) -> pd.DataFrame:
    """Every actual point after the as-of date with the forecast's view of it.

    Parameters
    ----------
    observed
        ``date, cumulative_migrated`` (all cohorts), e.g. `Actuals.cumulative_migrated`.

    Returns
    -------
    pandas.DataFrame
        One row per point: ``as_of, date, actual``, the forecast's ``p5 .. p95``
        on that date, ``beyond_horizon``, ``error_installations`` (P50 - actual),
        ``error_days`` (first day the P50 curve reaches the actual, minus the
        point's day), ``crps`` and ``pit`` (mid-PIT: ties count half).
    """
    cut = forecast.as_of or forecast.prior.start_date
    later = observed[observed["date"] > pd.Timestamp(cut)]
    paths = forecast.cumulative_migrated()
    p50_curve = np.array([quantile(paths[:, d], 0.5) for d in range(paths.shape[1])])
    start = pd.Timestamp(forecast.start_date)
    rows: list[dict[str, Any]] = []
    ensembles: list[np.ndarray] = []
    observed_values: list[float] = []
    for when, actual in zip(later["date"], later["cumulative_migrated"], strict=True):
        day = (when - start).days
        row: dict[str, Any] = {
            "as_of": cut.isoformat(),
            "date": when.date().isoformat(),
            "actual": float(actual),
        }
        if day >= paths.shape[1]:
            row.update(beyond_horizon=True)
            rows.append(row)
            continue
        values = paths[:, day].astype(float)
        qs = {
            f"p{round(q * 100)}": quantile(values, q)
            for q in (0.05, 0.1, 0.5, 0.9, 0.95)
        }
        reached = np.flatnonzero(p50_curve >= actual)
        row.update(
            qs,
            beyond_horizon=False,
            error_installations=qs["p50"] - actual,
            error_days=(float(reached[0] - day) if len(reached) else math.inf),
            pit=float(
                ((values < actual).sum() + 0.5 * (values == actual).sum()) / len(values)
            ),
        )
        rows.append(row)
        ensembles.append(values)
        observed_values.append(float(actual))
    columns = [
        "as_of",
        "date",
        "actual",
        "p5",
        "p10",
        "p50",
        "p90",
        "p95",
        "beyond_horizon",
        "error_installations",
        "error_days",
        "crps",
        "pit",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    if ensembles:  # one vectorised call: the CRPS of each point's ensemble
        crps = scoringrules.crps_ensemble(
            np.array(observed_values), np.stack(ensembles)
        )
        frame.loc[~frame["beyond_horizon"].astype(bool), "crps"] = np.asarray(
            crps, float
        )
    return frame


def score(points: pd.DataFrame) -> dict[str, Any]:
    """Coverage, errors, CRPS, PIT histogram and the verdict of scored points.

    ``points`` as `score_points` gives (several forecasts' points may be pooled:
    they are told apart by ``as_of``). A point after the horizon end counts as
    outside both bands and has no error, CRPS or PIT.
    """
    n = len(points)
    beyond = (
        points["beyond_horizon"].astype(bool).to_numpy() if n else np.zeros(0, bool)
    )
    inside = points[~beyond] if n else points
    in80_mask = (
        (
            (points["p10"] <= points["actual"])
            & (points["actual"] <= points["p90"])
            & ~beyond
        )
        if n
        else pd.Series(dtype=bool)
    )
    in80 = int(in80_mask.sum())
    in90 = int(
        ((inside["p5"] <= inside["actual"]) & (inside["actual"] <= inside["p95"])).sum()
    )
    above = int((inside["actual"] > inside["p90"]).sum())
    below = int((inside["actual"] < inside["p10"]).sum())
    pit_counts = (
        np.histogram(inside["pit"].to_numpy(float), bins=_PIT_BINS, range=(0.0, 1.0))[0]
        if len(inside)
        else np.zeros(_PIT_BINS)
    )
    days = inside["error_days"].abs().to_numpy(float) if len(inside) else np.array([])
    n_effective = _effective_n(points["as_of"], in80_mask) if n else 0.0
    figures = {
        "n_points": int(n),
        "n_beyond_horizon": int(beyond.sum()),
        "coverage_p10_p90": float(in80 / n) if n else None,
        "coverage_p5_p95": float(in90 / n) if n else None,
        "points_above_p90": above,
        "points_below_p10": below,
        "n_effective": round(n_effective, 2),
        "mae_installations": json_number(
            np.median(np.abs(inside["error_installations"])) if len(inside) else None,
            4,
            ints=None,
        ),
        "mae_days": json_number(
            float(np.median(days)) if len(days) else None, 4, ints=None
        ),
        "crps_mean": json_number(
            float(inside["crps"].mean()) if len(inside) else None, 4, ints=None
        ),
        "pit_histogram": {
            "edges": [round(i / _PIT_BINS, 2) for i in range(_PIT_BINS + 1)],
            "counts": [int(c) for c in pit_counts],
        },
    }
    figures.update(_verdict(n, in80, n_effective, above, below))
    return figures


def _effective_n(groups: pd.Series, inside: pd.Series) -> float:
    """Independent points the inside/outside record is worth, per forecast summed.

    Points of one path are autocorrelated: with lag-1 autocorrelation r of the
    inside indicator, n points weigh like n (1 - r) / (1 + r) (an AR(1)
    approximation), at least 1 per forecast; a constant record counts as 1.
    """
    total = 0.0
    for _, flags in inside.astype(float).groupby(groups.to_numpy(), sort=False):
        x = flags.to_numpy()
        if len(x) < 3 or x.std() == 0:
            total += 1.0 if len(x) else 0.0
            continue
        r = (
            float(np.corrcoef(x[:-1], x[1:])[0, 1])
            if x[:-1].std() and x[1:].std()
            else 1.0
        )
        r = min(max(r, 0.0), 0.999)
        total += min(len(x), max(1.0, len(x) * (1 - r) / (1 + r)))
    return total


#: Below this P10-P90 coverage a forecaster is called overconfident whatever the test.
_FAR_BELOW = 0.5


def _verdict(
    n: int, inside: int, n_effective: float, above: int, below: int
) -> dict[str, Any]:
    """Over- or underconfidence of the 80% band, in words.

    A one-sided binomial test of the coverage against 80% on the effective number
    of points (see `_effective_n`), at the 5% level; a coverage below 50% is
    called overconfident whatever the test, as the covered share is then "far
    fewer" than 80% by any reading.
    """
    if not n:
        return {
            "overconfident": None,
            "verdict": "No actual point after the as-of date: nothing to score.",
        }
    share = inside / n
    m = max(1, round(n_effective))
    k = round(share * m)
    low = stats.binom.cdf(k, m, 0.8)
    high = stats.binom.sf(k - 1, m, 0.8)
    missed = above + below
    side = ""
    if missed:
        if above >= 0.75 * missed:
            side = (
                " The programme ran ahead of the forecast: most misses are above "
                "the band."
            )
        elif below >= 0.75 * missed:
            side = (
                " The programme ran behind the forecast: most misses are below "
                "the band."
            )
    worth = (
        f" (correlated: worth about {max(1, round(n_effective))} independent "
        f"point{'s' * (round(n_effective) > 1)})"
    )
    if share < 0.8 and (low < _VERDICT_LEVEL or share < _FAR_BELOW):
        text = (
            f"Overconfident: the P10-P90 band, nominally 80%, covers only {share:.0%} "
            f"of the {n:,} actual points{worth}; the real outcome is outside what the "
            "forecast allowed for, or the forecast is biased." + side
        )
        over = True
    elif share > 0.8 and high < _VERDICT_LEVEL:
        text = (
            f"Underconfident: the P10-P90 band covers {share:.0%} of the {n:,} actual "
            f"points{worth}, more than its nominal 80%; the forecast is wider than it "
            "needs to be."
        )
        over = False
    else:
        text = (
            f"Consistent with its stated uncertainty: the P10-P90 band covers "
            f"{share:.0%} of the {n:,} actual points{worth}, against a nominal 80%."
            + side
        )
        over = False
    return {"overconfident": over, "verdict": text}
