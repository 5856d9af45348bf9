"""The state at the end of a date, rebuilt from actuals: where a forecast starts.

`state_from_actuals` turns what was reported up to a date (end-of-day states,
daily flows, or coarse cumulative figures) into the ``initial_state`` of every
cohort and, from the day columns, the ramp policy's state, in the shape
`Results.state_on` gives, so `Scenario.starting_from` runs forward from it.
"""

from __future__ import annotations

import functools
import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from migsim.common.errors import ActualsError
from migsim.evidence.actuals import Actuals
from migsim.evidence.actuals_checks import check_reported
from migsim.evidence.coarse import from_totals
from migsim.evidence.defects import defect_states
from migsim.evidence.desk import holds_stalls
from migsim.evidence.inflight import (
    attempt_tables,
    due_groups,
    due_weights,
    recoveries_by_row,
    recovering_weights,
    split_by_attempts,
)
from migsim.evidence.open_cases import OpenCases, open_cases
from migsim.model.scenario import Scenario, gate_reference
from migsim.model.state import InitialState
from migsim.sim.calendar import working_days
from migsim.sim.records import FLOWS, STATES

__all__ = ["state_from_actuals"]


# --------------------------------------------------------------------------- state
@functools.lru_cache(maxsize=128)
def _pmf(delay: Any) -> tuple[np.ndarray, np.ndarray]:
    """A delay's pmf, computed once per distinct (frozen, hashable) delay."""
    return delay.pmf()


def state_from_actuals(
    scenario: Scenario, actuals: Actuals, as_of: date, known_by: date | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The state at the end of ``as_of`` from the actuals, as `Results.state_on` gives.

    ``known_by`` (on or after ``as_of``; default ``as_of``) is the day the
    actuals are known up to, a forecast's as-of date when it starts from an
    earlier day (`coarse.reported_through`): per-cohort totals dated after
    ``as_of`` but by then place a cohort's figure on ``as_of`` between its
    reports. Nothing after ``known_by`` is read. Per-cohort actuals must
    mention every cohort that the scenario has eligible by ``as_of``
    (`actuals_checks.check_reported`).

    - With end-of-day states: each cohort's last reported states on or before
      ``as_of``.
    - With daily flows only: the states rebuilt from running sums; the installations
      waiting to retry are those failed on day ``as_of - j`` times P(retry delay > j)
      (expected), the rest of the unresolved are queued.
    - With coarse figures: `coarse.from_totals` (migrated as reported, a programme
      total shared by size times the chance each cohort had started; devices
      left dumb estimated at the cohort's median rates, and by each replication
      at its own; with remote recovery, those still awaiting it estimated from
      the recovery delay; everything else eligible
      queued, nothing in flight or abandoned).

    In-flight installations then get their detail (`_by_age`): days until due from
    the residual of their delays given when they entered, attempts made from a
    replay of the cohort's queue by class, and the dumb devices awaiting remote
    recovery as ``recovering`` groups. Queued ones are taken to have made none.
    With an ELS desk and per-cohort flows, the operations state carries the
    desk's open cases (``els_queue``, `open_cases`), and the stalled and impaired
    installations they hold are ``held`` groups. Latent defects that attempts
    without a halt rule out do not exist; one whose halt shows was found
    (`defects.defect_states`).

    Returns
    -------
    (state, notes)
        ``{"date", "cohorts": {name: initial_state}}`` and what was assumed, in words.
    """
    notes: list[str] = []
    found: set[str] = set()  # what _by_age estimated, for the notes
    used = actuals.up_to(as_of)
    known = actuals.up_to(max(known_by or as_of, as_of))  # read no further
    check_reported(scenario, known, as_of)
    cohorts: dict[str, dict[str, int]] = {}
    desk = open_cases(scenario, used, as_of) if used.per_cohort else None
    if used.kind == "flows" and used.has(*STATES) and used.per_cohort:
        for cohort in scenario.cohorts:
            cohorts[cohort.name] = _from_states(
                scenario, cohort, used, as_of, notes, found, desk
            )
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
            cohorts[cohort.name] = _from_flows(
                scenario, cohort, used, as_of, found, desk
            )
        _sizes_unseen(scenario, cohorts, "no end-of-day states", notes)
        notes.append(
            "no end-of-day states: the state on the as-of date is rebuilt from "
            "the flows (rolled back vs queued split by the retry delay, in "
            "expectation); in-flight days until due shared by the delays' residual "
            "given when they entered"
        )
    else:
        cohorts = from_totals(
            scenario,
            known,
            as_of,
            {c.name: _untouched(scenario, c, as_of) for c in scenario.cohorts},
            notes,
        )
        _sizes_unseen(scenario, cohorts, "cumulative totals", notes)
        notes.append(
            "coarse actuals: only cumulative migrated is known on the state's "
            "day; devices left dumb are estimated from it by each replication at "
            "its own rates (the state gives the median rates' count), every other "
            "eligible installation is taken as queued, none in flight or abandoned"
        )
    notes.extend(_FOUND[k] for k in sorted(found))
    state: dict[str, Any] = {"date": as_of, "cohorts": cohorts}
    if not (used.kind == "flows" and used.has(*STATES) and used.per_cohort):
        state["sizes_known"] = False  # `Scenario.starting_from` keeps the ranges
    operations = _policy_state(scenario, used, as_of, notes)
    if operations is not None:
        state["operations_state"] = operations
        if desk is not None:  # the ELS desk's open cases
            operations["els_queue"] = desk.queue()
            notes.append(desk.note())
        defects, found_notes = defect_states(scenario, used, as_of)
        if defects:  # latent defects ruled out, or found by their halt
            operations["defects"] = defects
        notes.extend(found_notes)
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
    # a step at an uncertain date or a gate took effect on the first day it
    # labels (or not yet, when it labels none)
    stepped = _uncertain_steps(steps, labels, days.index) if reported else []
    for label, _, step, when in stepped:
        if when is not None:
            step_days[scenario.day_of(when)] = (label, step.daily_cap)
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
        scenario, actuals, as_of, notes, stepped
    )
    if fired_column is not None:  # a rule that fired had its gate open by then
        for gate, when in _gates_by_firings(rules, fired_column, days.index).items():
            gates_open.setdefault(gate, when)
        gates_closed = [g for g in gates_closed if g not in gates_open]
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
        # without the cap's labels a step is not known to have been taken: one
        # drawn before the as-of date is in force from the day after it
        "steps_known": reported,
    }


def _gates_by_firings(
    rules: dict[str, Any], fired: np.ndarray, dates: pd.DatetimeIndex
) -> dict[str, date]:
    """Gates that rules requiring them show open: the first day such a rule
    fired (the gate opened then or earlier; taken as then, an upper bound)."""
    out: dict[str, date] = {}
    for name, rule in rules.items():
        gate = rule.requires.gate
        hits = np.flatnonzero(fired == name)
        if gate is not None and len(hits):
            when = dates[hits[0]].date()
            out[gate] = min(out.get(gate, when), when)
    return out


def _uncertain_steps(
    steps: dict[str, Any], labels: np.ndarray, dates: pd.DatetimeIndex
) -> list[tuple[str, str, Any, date | None]]:
    """Schedule steps at an uncertain date or a gate: (their ``cap_rule`` label,
    the path of their ``from``, the step, the first day the actuals label with
    it, or None)."""
    out = []
    for index, (label, step) in enumerate(steps.items()):
        if isinstance(step.from_, date):
            continue
        hits = np.flatnonzero(labels == label)
        when = dates[hits[0]].date() if len(hits) else None
        path = f"capacity.schedule.{step.name or index}.from"
        out.append((label, path, step, when))
    return out


def _eligibility_dates(
    scenario: Scenario, actuals: Actuals, as_of: date, notes, stepped=()
):
    """Gates and uncertain dates that the actuals show have happened, or not.

    A cohort whose ``eligible_from`` is a gate or a date distribution became
    eligible on the first reported day its pending count fell below its
    installations (the states' sum that day, when they are reported: a cohort
    of estimated size), and then that gate opened, or that date passed; if none
    fell by ``as_of``, it had not. A single deferred share whose ``until`` is
    uncertain passed when pending reached 0. A schedule step at an uncertain
    date or a gate (``stepped``, from `_uncertain_steps`) took effect on the
    first day the actuals' ``cap_rule`` names it, or not by ``as_of``. Other
    gates and dates are not in the actuals and are drawn from their
    distributions.
    """
    gates_open: dict[str, date] = {}
    passed: dict[str, date] = {}
    gates_closed: list[str] = []
    pending_paths: list[str] = []

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

    for _, path, step, when in stepped:
        record(path, step.from_, when)
    for cohort in scenario.cohorts:
        rows = actuals.cohort_frame(cohort.name)
        if rows.empty or not actuals.has("pending"):
            continue
        left = rows["pending"].to_numpy(float)
        size = (
            rows[list(STATES)].to_numpy(float).sum(axis=1)
            if actuals.has(*STATES)
            else cohort.installations
        )
        dates = rows["date"].dt.date.to_numpy()
        prefix = f"cohorts.{cohort.name}"
        spec = cohort.eligible_from
        if spec is not None and not isinstance(spec, date):
            fell = np.flatnonzero(left < size)
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
            "gates and uncertain dates of eligibility and of schedule steps are "
            "read from the pending counts and the cap's labels; the others are "
            "drawn from their distributions"
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


def _from_states(
    scenario, cohort, actuals: Actuals, as_of: date, notes, found: set[str], desk=None
) -> dict:
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
    if cohort.installations_range is None:
        counts = _fit_total(counts, cohort, actuals, as_of, "states")
    else:  # an estimated size: the reported states say what it is
        _check_size(cohort, sum(counts.values()), rows, actuals, as_of)
        notes.append(_size_note(cohort, sum(counts.values())))
    return _by_age(scenario, cohort, rows, as_of, counts, actuals, found, desk)


def _sizes_unseen(
    scenario: Scenario, cohorts: dict[str, dict], what: str, notes: list[str]
) -> None:
    """Say what becomes of the cohorts of estimated size when the actuals
    (``what``) do not report their sizes: each replication still draws it,
    and the installations the state has not seen take the difference (its
    pending or queued first attempts); or, with none left to take it, the
    point size."""
    drawn: list[str] = []
    point: list[str] = []
    for cohort in scenario.cohorts:
        if cohort.installations_range is not None:
            held = InitialState.model_validate(cohorts[cohort.name])
            (drawn if held.size_holder else point).append(cohort.name)
    if drawn:
        whose = (
            "every cohort"
            if len(drawn) == len(scenario.cohorts) > 1
            else ", ".join(drawn)
        )
        notes.append(
            f"{what}: the size of {whose} is not reported, so each "
            "replication draws it from the scenario's range; the installations "
            "not yet attempted (pending or queued) take the difference"
        )
    if point:
        notes.append(
            f"{what}: the size of {', '.join(point)} is not reported, so the "
            "scenario's point size is taken (none is left unattempted to take a "
            "drawn size's difference)"
        )


#: What `_by_age` estimated, in words (one note each).
_FOUND = {
    "attempts": "stalled and rolled-back installations (and dumb devices awaiting "
    "recovery) are shared over attempts made by a mean-field replay of each "
    "cohort's queue by class at the calibrated rates",
    "no attempts": "attempts made are not known (no attempts reported): stalled "
    "and rolled-back installations are taken to have made one attempt",
    "recovering": "dumb devices awaiting remote recovery are estimated from the "
    "reported dumbs by day, the recovery delay and the reported recoveries; the "
    "other dumb devices await a site visit",
    "queued": "of the queued installations, the retries the replay expects due "
    "and not yet taken are retries (by attempts made, served first); the rest "
    "are first attempts",
}


def _check_size(
    cohort, total: int, rows: pd.DataFrame, actuals: Actuals, as_of: date
) -> None:
    """Refuse a size from the states that the flows contradict: each success
    is a different installation, so the states cannot sum to fewer
    installations than the successes reported up to ``as_of``."""
    if "successes" not in rows:
        return
    successes = int(round(float(rows["successes"].sum())))
    if total < successes:
        raise ActualsError(
            f"{actuals.path}: cohort {cohort.name}: the states on {as_of} sum to "
            f"{total:,} installations, fewer than the {successes:,} successes "
            "reported up to then"
        )


def _size_note(cohort, total: int) -> str:
    """Say that a cohort of estimated size takes the size its states report."""
    size = cohort.installations_range
    unit = "meters" if size.from_meters else "installations"
    return (
        f"{cohort.name}: its size is taken from the reported states, {total:,} "
        f"installations (the scenario estimated {size.low:,} to {size.high:,} "
        f"{unit})"
    )


#: Where each in-flight state comes from, and the delay it waits.
_INFLOW = {
    "stalled": (("stalls",), "stall", "resolves_after_days"),
    "rolled_back": (("rollbacks", "stall_failures"), "rollback", "retry_after_days"),
    "impaired": (("fix_forwards",), "fix_forward", "restored_after_days"),
}


def _by_age(
    scenario: Scenario,
    cohort,
    rows: pd.DataFrame,
    as_of: date,
    counts: dict[str, Any],
    actuals: Actuals,
    found: set[str],
    desk: OpenCases | None = None,
) -> dict[str, Any]:
    """Detail the in-flight counts: days until due, attempts made, recovering.

    Days until due: an installation that entered a state on day ``as_of - a``
    and is still there has a delay longer than ``a``; its days until due follow
    the delay's residual given that age. Over the reported inflow (stalls;
    rollbacks, stall failures and dumb devices recovered, less abandons; fix
    forwards) this weighs each due day by the count that entered each day times
    the probability of that delay (``release_on`` applied to stalls), and shares
    the reported count in proportion (largest remainders). A state whose inflow
    is not reported keeps its bare count, and the engine draws the detail from
    the steady-state residual instead.

    Attempts made: stalled and rolled-back groups are shared over attempts made
    by a replay of the cohort's queue by class (`inflight.attempt_tables`);
    without attempts reported, they are taken to have made one.

    With an ELS desk (``desk``, `open_cases.OpenCases`) that takes stalls or fix
    forwards, as many stalled or impaired as the cohort's open cases of that
    kind are ``held`` groups (their case not worked yet); the rest wait only for
    their delay, over the inflow whose cases were worked by ``as_of``.

    Dumb devices awaiting remote recovery (a cohort's ``dumb.recovered_share``)
    are the dumb less those reported ``awaiting_site_visit``, else estimated from
    the reported dumbs and recoveries (`inflight.recovering_weights`, which also
    gives their due days), never more than the dumb, as ``recovering`` groups
    detailed the same way.
    """
    out = dict(counts)
    ages = (pd.Timestamp(as_of) - rows["date"]).dt.days.to_numpy()
    available = set(rows.columns)
    tables = attempt_tables(scenario, cohort, rows, actuals, as_of)
    recovers = bool(cohort.dumb and cohort.dumb.recovered_share)
    for state, (columns, section, field_name) in _INFLOW.items():
        n = out.get(state, 0)
        spec = getattr(cohort, section)
        if not n or spec is None or not available.issuperset(columns):
            continue
        if state == "rolled_back" and cohort.max_attempts < 2:
            continue
        inflow = sum(rows[c].to_numpy(float) for c in columns)
        if state == "rolled_back":  # recovered dumb devices, reported or expected
            inflow = inflow + recoveries_by_row(cohort, rows)
        if state == "rolled_back" and "abandons" in available:
            inflow = np.clip(inflow - rows["abandons"].to_numpy(float), 0, None)
        not_before = None
        if state == "stalled" and isinstance(spec.release_on, date):
            not_before = (spec.release_on - as_of).days
        held: list[dict[str, Any]] = []
        if desk is not None and desk.gates(section):  # open cases hold these
            table = None if tables is None else tables["held"]
            held = desk.held_groups(cohort, section, n, table)
            n -= sum(g["count"] for g in held)
            inflow = inflow * desk.worked_share(rows)  # the rest wait their delay
        keys, weights = due_weights(
            inflow, ages, _pmf(getattr(spec, field_name)), not_before
        )
        if state == "stalled" and tables is not None and holds_stalls(scenario):
            keys, weights = _ledger_due(tables["stalled"], keys, weights)
        groups = due_groups(n, keys, weights)
        if held and n and not groups:  # none expected: due the next day
            groups = [{"count": n, "days_until_due": 1}]
        if not groups and not held:
            continue
        if state != "impaired":
            top = cohort.max_attempts - (state == "rolled_back")
            groups = split_by_attempts(
                groups, None if tables is None else tables[state], top
            )
            found.add("attempts" if tables is not None else "no attempts")
        out[state] = groups + held
    queued = out.get("queued", 0)
    if tables is not None and isinstance(queued, int) and queued:
        out["queued"] = _queued_retries(queued, tables["queued"], cohort)
        found.add("queued")
    dumb = int(out.get("dumb", 0))
    if recovers and dumb:
        keys, weights, _ = recovering_weights(cohort, rows, as_of)
        n = min(int(round(float(weights.sum()))), dumb)
        seen = rows.loc[rows["date"] == pd.Timestamp(as_of)]
        if "awaiting_site_visit" in seen.columns and len(seen):  # the rest recover
            awaiting = int(round(float(seen["awaiting_site_visit"].iloc[-1])))
            n = dumb - min(awaiting, dumb)
            if n and not weights.sum() > 0:  # overdue by the delay: due tomorrow
                keys, weights = np.array([1]), np.array([1.0])
        groups = due_groups(n, keys, weights)
        if groups:
            out["recovering"] = split_by_attempts(
                groups,
                None if tables is None else tables["recovering"],
                cohort.max_attempts,
            )
        found.add("recovering")
    return out


def _ledger_due(
    table: np.ndarray, keys: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Stalls' due days from the replay's ledger, which holds them for the desk.

    A stall whose case the desk has not worked resolves no earlier than the day
    it is worked, so when the desk backs up the residual of the delay given the
    stall's age says too early; and `split_by_attempts` reads the replay's row of
    each group's due day, which only means something on the replay's own days.
    With no mass in the ledger (no rows near the date): the residual's days.
    """
    due = table.sum(axis=1)
    if due.sum() <= 1e-9:
        return keys, weights
    days = np.flatnonzero(due > 1e-9)
    return days + 1, due[days]


def _queued_retries(n: int, table: np.ndarray, cohort) -> list[dict[str, int]]:
    """The queued count as first attempts and the retries the replay expects due
    and not yet taken (a closed day or a cap that retries alone fill leaves
    them), by attempts made; they are served first, as due today."""
    retries = min(n, int(round(float(table[:, 1:].sum()))))
    groups = split_by_attempts(
        [{"count": retries, "days_until_due": 1}] if retries else [],
        table,
        cohort.max_attempts - 1,
    )
    fresh = [{"count": n - retries, "attempts_made": 0, "days_until_due": 0}]
    return fresh[: 1 if n > retries else 0] + [
        {**g, "days_until_due": 0} for g in groups
    ]


def _untouched(scenario: Scenario, cohort, as_of: date) -> dict[str, int]:
    pending = _eligible_after(scenario, cohort, as_of)
    n = cohort.installations
    return {"pending": n if pending else 0, "queued": 0 if pending else n}


def _from_flows(
    scenario, cohort, actuals: Actuals, as_of: date, found: set[str], desk=None
) -> dict:
    rows = actuals.cohort_frame(cohort.name)
    if rows.empty:
        return _untouched(scenario, cohort, as_of)
    total = rows.sum(numeric_only=True)
    # dumb devices recovered remotely went back to be retried: reported (even
    # when the scenario recovers none), or expected at the cohort's recovery
    recovered = recoveries_by_row(cohort, rows)
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
        "dumb": total["dumbs"] - recovered.sum(),
        "abandoned": total["abandons"],
    }
    waiting = 0.0
    if cohort.rollback is not None:
        days, probs = cohort.rollback.retry_after_days.pmf()
        failed = (rows["rollbacks"] + rows["stall_failures"]).to_numpy() + recovered
        ago = (pd.Timestamp(as_of) - rows["date"]).dt.days.to_numpy()
        still = np.array([probs[days > j].sum() for j in ago])  # P(retry delay > j)
        waiting = float((failed * still).sum())  # abandons ignored: a small overcount
    counts = {k: int(round(float(v))) for k, v in counts.items()}
    if min(counts.values()) < 0:
        bad = min(counts, key=counts.__getitem__)
        raise ActualsError(
            f"{actuals.path}: cohort {cohort.name}: the flows up to {as_of} "
            f"leave {counts[bad]:,} {bad}: they do not add up"
        )
    unresolved = cohort.installations - sum(counts.values())
    counts["rolled_back"] = max(0, min(int(round(waiting)), unresolved))
    counts["queued"] = 0
    counts = _fit_total(counts, cohort, actuals, as_of, "rebuilt")
    return _by_age(scenario, cohort, rows, as_of, counts, actuals, found, desk)
