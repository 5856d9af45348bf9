"""The basis for increasing volumes: a decision told in the planners' words.

`migsim decide` answers a question (how far may a lever go with every risk in
its budget). The report says that answer as a planner would: what the lever
does, from when, what the recommended value gives, and what the next step
would break; never a field path. A question about a scenario that is not among
the report's runs is refused: its answer would sit beside numbers it is not
about.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from migsim.common.errors import MigsimError
from migsim.common.stats import percent
from migsim.evidence.intervals import RunLike
from migsim.experiments.question import value_words
from migsim.experiments.search import verdict_words
from migsim.experiments.study import field_axis
from migsim.model.policy import Rule
from migsim.model.scenario import Scenario
from migsim.output.html import escape, format_date, format_number, html_table
from migsim.output.report_assumptions import field_words
from migsim.output.report_sections import RISK_FIGURES

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.experiments.decision import SavedDecision

__all__ = [
    "basis_section",
    "budget_notes",
    "check_question_scenario",
    "decided",
    "decision_scenario",
    "lever_words",
    "recommendation",
    "rule_words",
]

_OPS = {">=": "at least", ">": "above", "<": "below", "<=": "at most"}
_METRICS = {
    "first_attempt_success_rate": "first-attempt success rate",
    "eventual_success_rate": "eventual success rate",
    "stall_rate": "stall rate",
    "rollback_rate": "rollback rate",
    "dumb_count": "devices gone dumb",
    "active_fix_forward_count": "active fix forwards",
    "stalled_backlog": "installations stalled",
    "attempt_count": "attempts",
    "active_failure_rate_upper": "upper bound of the active failure rate",
    "els_backlog": "ELS/MCC cases waiting",
}


def check_question_scenario(question_scenario: str, run_names: Sequence[str]) -> None:
    """Refuse a question about a scenario none of the runs is.

    Raises
    ------
    MigsimError
        One line naming the question's scenario and the runs'.
    """
    if question_scenario not in run_names:
        raise MigsimError(
            f"--question asks about scenario {question_scenario}, which is not "
            f"among the report's runs ({', '.join(run_names)}); add a run of "
            f"{question_scenario} or ask a question about one of these"
        )


def decision_scenario(decision: SavedDecision) -> Scenario:
    """The scenario a saved decision answered (its ``scenario.yaml``)."""
    from migsim.model.scenario import load_scenario

    return load_scenario(decision.directory / "scenario.yaml")


def _rule(scenario: Scenario, name: str) -> Rule | None:
    return next((r for r in scenario.capacity.rules if r.name == name), None)


def _threshold(metric: str, value: float) -> str:
    if metric.endswith("_rate") or metric.endswith("_upper"):
        return percent(value)
    return f"{value:,.0f}"


def rule_words(rule: Rule, scenario: Scenario) -> str:
    """What a ramp rule does, e.g. "raises the cap by 50%, at most every 10
    working days, once MCC automation has passed, while ..."."""
    action = {
        "step_factor": f"raises the cap by {((rule.factor or 1) - 1):.0%}",
        "raise_to": f"raises the cap to {rule.cap or 0:,} a day",
        "cut_to": f"cuts the cap to {rule.cap or 0:,} a day",
        "hold": f"holds the cap for {rule.days} working days",
        "halt_days": f"halts migrations for {rule.days} working days",
    }[rule.action]
    parts = [action]
    if rule.requires.min_days_at_cap:
        parts.append(
            f"once the cap has held for {rule.requires.min_days_at_cap} working days"
        )
    if rule.requires.gate:
        gate = next((g for g in scenario.gates if g.name == rule.requires.gate), None)
        about = getattr(gate, "description", None)
        if about:  # "MCC tooling automation passes BAT": keep an acronym's capitals
            lower = about[1:2].islower()
            about = f"{about[0].lower() if lower else about[0]}{about[1:]}"
            parts.append(f"once {about} (gate {rule.requires.gate})")
        else:
            parts.append(f"once gate {rule.requires.gate} has opened")
    tests = []
    for c in rule.when:
        window = f"{c.window}-day " if c.window > 1 else ""
        rate = c.metric.endswith("_rate") or c.metric.endswith("_upper")
        tests.append(
            f"the {window}{_METRICS.get(c.metric, c.metric)} "
            f"{'is' if rate else 'are'} {_OPS[c.op]} {_threshold(c.metric, c.value)}"
        )
    if tests:
        parts.append("while " + " and ".join(tests))
    return ", ".join(parts)


def lever_words(path: str, scenario: Scenario | None = None) -> tuple[str, str]:
    """``(name, what it does)`` of a lever, in words: no field path.

    ``capacity.rules.automation_step.max_cap`` -> ("the highest cap the
    automation step may reach", "the automation step raises the cap by 50% ...").
    """
    parts = path.split(".")
    if path == "capacity.daily_cap":
        start = ""
        if scenario is not None:
            starts = [c.eligible_from for c in scenario.cohorts]
            first = min(
                (d for d in starts if isinstance(d, date)), default=scenario.start_date
            )
            start = f", from {format_date(max(first, scenario.start_date))}"
        return (
            "the daily cap",
            f"the daily cap sets the most installations attempted on a working day"
            f"{start}",
        )
    if len(parts) == 4 and parts[:2] == ["capacity", "rules"]:
        rule_name = parts[2].replace("_", " ")
        rule = None if scenario is None else _rule(scenario, parts[2])
        does = (
            ""
            if rule is None or scenario is None
            else f"the {rule_name} {rule_words(rule, scenario)}"
        )
        if parts[3] == "max_cap":
            return f"the highest cap the {rule_name} may reach", does
        return f"the {rule_name}'s {field_words(parts[3])}", does
    if len(parts) == 4 and parts[:2] == ["capacity", "schedule"]:
        does = f"ramp step {parts[2]} is a planned change of the daily cap"
        if parts[3] == "daily_cap":
            return f"the cap of ramp step {parts[2]}", does
        return f"the date ramp step {parts[2]} starts", does
    if len(parts) == 3 and parts[0] == "cohorts" and parts[2] == "eligible_from":
        return (
            f"when {parts[1]} may start",
            f"{parts[1]} is migrated from that day (its EPCL entry)",
        )
    return field_words(path), ""


def _value_words(path: str, value: Any) -> str:
    if isinstance(value, int | float) and path.endswith("cap"):
        return f"{value:,.0f} a day"
    if isinstance(value, str):
        try:
            return format_date(date.fromisoformat(value))
        except ValueError:
            return value
    return format_number(float(value)) if isinstance(value, int | float) else str(value)


def budget_notes(decision: SavedDecision) -> dict[str, str]:
    """Each budgeted figure of a decision with its budgets in words, for the
    first screen's risk table: {"peak_els_backlog": "budget: P90 at most 1,500"}."""
    notes: dict[str, list[str]] = {}
    for check in decision.data["budgets"]:
        if "exceeds" in check:
            words = (
                f"P(more than {check['exceeds']:,g}) at most "
                f"{value_words('chance', check['max_probability'])}"
            )
        else:
            words = (
                f"{str(check['statistic']).upper()} at most "
                f"{value_words('quantile', float(check['max']))}"
            )
        notes.setdefault(check["figure"], []).append(words)
    return {figure: "budget: " + ", ".join(w) for figure, w in notes.items()}


def _current_words(scenario: Scenario | None, path: str) -> str:
    """The lever's value in the scenario as planned ("The plan has it at 10,000
    a day now."): the point the recommended value moves from. No scenario name:
    the first screen keeps to planners' words, no identifiers."""
    if scenario is None:
        return ""
    try:
        current = field_axis(scenario, path, where=path).current
    except MigsimError:
        return ""
    value = current.isoformat() if isinstance(current, date) else current
    return f"The plan has it at {_value_words(path, value)} now."


def _budget_words(check: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(what, estimate, limit)`` of a budget check in words."""
    what = RISK_FIGURES.get(check["figure"], check["figure"].replace("_", " "))
    if "exceeds" in check:
        return (
            f"the chance of more than {check['exceeds']:,g} {what}",
            value_words("chance", check["estimate"]),
            value_words("chance", check["max_probability"]),
        )
    return (
        f"{what} ({str(check['statistic']).upper()})",
        value_words("quantile", float(check["estimate"])),
        value_words("quantile", float(check["max"])),
    )


def _gate_timing(scenario: Scenario | None, path: str, runs: Sequence[RunLike]) -> str:
    """From when the lever acts: the gate its rule waits for, as the run saw it."""
    parts = path.split(".")
    if scenario is None or parts[:2] != ["capacity", "rules"] or len(parts) < 3:
        return ""
    rule = _rule(scenario, parts[2])
    if rule is None or not rule.requires.gate:
        return ""
    gate = rule.requires.gate
    for run in runs:
        if run.scenario.name != scenario.name:
            continue
        opening = ((run.summary.get("policy") or {}).get("gates") or {}).get(gate)
        if opening:
            dates = opening["opening_date"]
            return (
                f"It can act from when gate {gate} opens: "
                f"{format_date(dates['p50'])} at P50 (P10 {format_date(dates['p10'])}, "
                f"P90 {format_date(dates['p90'])}) in the run of {scenario.name}."
            )
    return f"It can act only once gate {gate} has opened."


def _head(data: Mapping[str, Any], path: str, scenario: Scenario | None) -> str:
    """The answer for one lever, without its full stop: "Recommended: the daily
    cap at 2,000 a day", or "No safe value of ...; the least unsafe is ...". The
    recommendation opens with it and the first screen's answer repeats it."""
    name, _ = lever_words(path, scenario)
    if data.get("answer_candidate"):
        value = _value_words(path, data["answer_candidate"]["levers"][path])
        return f"Recommended: {name} at {value}"
    value = _value_words(path, data["least_unsafe"]["levers"][path])
    return f"No safe value of {name}; the least unsafe is {value}"


def decided(decision: SavedDecision) -> str:
    """The decision in a sentence (HTML), for its scenario's line of the answer.

    The whole recommendation (what the lever does, from when, the risk budget,
    the next step) is a paragraph of about eight lines at 1280 px: above the
    fan chart it pushed most of the chart below a desktop's first screen. It
    now sits under the chart; the answer keeps its verdict and links to it.
    """
    data = decision.data
    if not (data.get("answer_candidate") or data.get("least_unsafe")):
        return ' <a href="#recommendation">The question\'s answer: below.</a>'
    scenario = decision_scenario(decision)  # the report has read it already
    heads = [_head(data, path, scenario) for path in data["levers"]]
    link = '<a href="#recommendation">why, and the risk budget: below</a>'
    return " " + ". ".join(escape(head) for head in heads) + f" ({link})."


def recommendation(decision: SavedDecision, runs: Sequence[RunLike]) -> str:
    """The decision's answer as planners say it (HTML, one paragraph)."""
    data = decision.data
    try:
        scenario: Scenario | None = decision_scenario(decision)
    except (MigsimError, OSError):
        scenario = None
    shown = data.get("answer_candidate") or data.get("least_unsafe")
    level = percent(data["confidence"])
    lines = []
    for path in data["levers"]:
        _, does = lever_words(path, scenario)
        if shown is not None:
            lines.append(_head(data, path, scenario) + ".")
            now = _current_words(scenario, path)
            if now:
                lines.append(now)
        if does:
            lines.append(f"What it does: {does[0].upper()}{does[1:]}.")
        timing = _gate_timing(scenario, path, runs)
        if timing:
            lines.append(timing)
    if shown is not None:
        dates = shown["clearance_date"]
        lines.append(
            f"With it the backlog clears by {format_date(dates['p50'])} (P50), "
            f"{format_date(dates['p90'])} (P90)."
        )
        held = []
        for check in shown["budgets"]:
            what, estimate, limit = _budget_words(check)
            status = {
                "within": "within",
                "broken": "over",
                "unproven": "not shown within",
            }[check["status"]]
            held.append(f"{what} {estimate}, {status} the budget of {limit}")
        lines.append(
            f"Risk budget, judged at {level} confidence: " + "; ".join(held) + "."
        )
    beyond = data.get("next_candidate")
    if beyond is not None:
        step = ", ".join(
            _value_words(path, value) for path, value in beyond["levers"].items()
        )
        lines += _beyond_words(beyond, step, level)
    elif shown is not None and data.get("answer_candidate"):
        lines.append("No value in the range asked about breaks the budget.")
    return " ".join(escape(line) for line in lines)


def _beyond_words(beyond: Mapping[str, Any], step: str, level: str) -> list[str]:
    """Why the next step is not recommended: the budgets it breaks (estimate
    over the limit) and, apart, those it cannot be shown within at ``level``
    confidence (estimate within, upper bound over: the bound is quoted)."""
    broken = [c for c in beyond["budgets"] if c["status"] == "broken"]
    unproven = [c for c in beyond["budgets"] if c["status"] == "unproven"]
    lines = []
    if broken:
        words = []
        for check in broken:
            what, estimate, limit = _budget_words(check)
            words.append(f"{what} would reach {estimate} against a budget of {limit}")
        lines.append(
            f"The next step, {step}, would break the budget: " + "; ".join(words) + "."
        )
    if unproven:
        words = []
        for check in unproven:
            what, estimate, limit = _budget_words(check)
            words.append(
                f"{what} {estimate} is within its budget of {limit}, but its upper "
                f"bound {_bound_words(check)} is over it"
            )
        lead = (
            "Nor can it be shown within"
            if broken
            else f"The next step, {step}, cannot be shown within"
        )
        lines.append(
            f"{lead} the budget at {level} confidence: " + "; ".join(words) + "."
        )
    return lines


def _bound_words(check: Mapping[str, Any]) -> str:
    """A budget check's upper bound as its estimate is written ("unbounded":
    too few replications to bound it)."""
    bound = check.get("bound")
    if bound is None:
        return "unbounded"
    return value_words("chance" if "exceeds" in check else "quantile", float(bound))


def _evidence_table(decision: SavedDecision, scenario: Scenario | None) -> str:
    """Every candidate evaluated, columns in words, dates for clearance days."""
    data = decision.data
    frame = decision.candidates
    levers = list(data["levers"])
    budgets = data["budgets"]
    objective = f"{data['objective']['figure']}_{data['objective']['statistic']}"
    header = [lever_words(p, scenario)[0] for p in levers] + ["replications"]
    columns: list[tuple[str, str]] = [(p, "lever") for p in levers]
    columns.append(("replications", "count"))
    if objective.startswith("clearance_day"):
        header.append(f"clears ({data['objective']['statistic'].upper()})")
        columns.append((objective, "day"))
    else:
        header.append(objective.replace("_", " "))
        columns.append((objective, "number"))
    for check in budgets:
        what = _budget_words(check)[0]
        header += [what, "upper bound"]
        kind = "share" if "exceeds" in check else "number"
        columns += [(check["label"], kind), (f"{check['label']}_bound", kind)]
    header += ["verdict", "breaks", "not shown within"]
    labels = {c["label"]: _budget_words(c)[0] for c in budgets}
    rows = []
    ordered = frame.sort_values([*levers, "candidate"])
    for _, row in ordered.iterrows():
        cells = []
        for column, kind in columns:
            value = row[column]
            if kind == "lever":
                cells.append(escape(_value_words(column, value)))
            elif kind == "day":
                cells.append(escape(_day(scenario, value)))
            elif kind == "share":
                cells.append(escape(percent(float(value))))
            else:
                cells.append(escape(format_number(float(value))))
        broke, unproven = _not_met(row, labels)
        statuses = [str(row.get(f"{label}_status")) for label in labels]
        cells.append(escape(verdict_words(statuses)))
        cells.append(escape("; ".join(broke)))
        cells.append(escape("; ".join(unproven)))
        if bool(row["is_answer"]):
            cells = [f"<b>{c}</b>" for c in cells]
        rows.append(cells)
    numeric = [True] * (len(header) - 3) + [False, False, False]
    return html_table(header, rows, numeric).replace(
        "<table>", '<table class="evidence">'
    )


def _not_met(row: pd.Series, labels: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """A candidate's budgets, in words, whose status is ``broken`` and
    ``unproven``: one rule for every row, read off its ``<label>_status``."""
    broke, unproven = [], []
    for label, words in labels.items():
        status = row.get(f"{label}_status")
        if status == "broken":
            broke.append(words)
        elif status == "unproven":
            unproven.append(words)
    return broke, unproven


def _day(scenario: Scenario | None, value: float) -> str:
    if scenario is None or not math.isfinite(float(value)):
        return "not within the horizon" if scenario else format_number(float(value))
    return format_date(scenario.date_of(int(value)))


def basis_section(decision: SavedDecision) -> str:
    """The decision's frontier and evidence, for the body of the report."""
    data = decision.data
    try:
        scenario: Scenario | None = decision_scenario(decision)
    except (MigsimError, OSError):
        scenario = None
    png = base64.b64encode(decision.frontier_png).decode("ascii")
    replications = data["replications"]
    search = data.get("search", {})
    levers = " and ".join(lever_words(p, scenario)[0] for p in data["levers"])
    return "\n".join(
        [
            '<h2 id="basis">Basis for increasing volumes</h2>',
            f"<p>The question <code>{escape(data['question'])}</code> asks how far "
            f"{escape(levers)} may go with every risk inside its budget, each "
            f"budget judged on its {percent(data['confidence'])} upper confidence "
            "bound (Clopper-Pearson for a chance, an order statistic for a quantile). "
            'Its answer is <a href="#recommendation">on the first screen</a>; the '
            "chart shows each candidate against each budget.</p>",
            '<img alt="frontier: what each candidate gives against each budget" '
            f'src="data:image/png;base64,{png}">',
            "<h3>Evidence: every candidate evaluated</h3>",
            _evidence_table(decision, scenario),
            f'<p class="note">Search: {escape(search.get("method", ""))}; '
            f"{escape(search.get('note', ''))}. {data['candidates_evaluated']} "
            f"candidates, {replications['spent']:,} replications (at first "
            f"{replications['initial']:,} each, doubled up to {replications['max']:,} "
            f"where the evidence was not decisive), seed {data['seed']}, decided "
            f"by migsim {escape(str(data.get('migsim_version', 'unknown')))}; question "
            f"sha256 <code>{escape(data['question_sha256'])}</code>, scenario sha256 "
            f"<code>{escape(data['scenario_sha256'])}</code>.</p>",
        ]
    )
