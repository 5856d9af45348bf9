"""The report's assumptions: what differs up front, every sourced field at the end.

Scenarios compared in one report share most of their assumptions. A reader
needs the few that differ next to the answer, highlighted, and every field with
its source once, in an appendix: one table with a value column per scenario,
where a value common to all is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migsim.evidence.intervals import RunLike
from migsim.model.scenario import Scenario
from migsim.output.html import escape, fold
from migsim.output.report_sections import assumption_rows, describe_value

__all__ = [
    "appendix_section",
    "differences_section",
    "differing_fields",
    "field_words",
    "flat_fields",
]

#: Field names in the planners' words; the rest are shown with spaces.
_WORDS = {
    "daily_cap": "daily cap",
    "max_cap": "highest cap",
    "eligible_from": "eligible from",
    "installations": "installations",
    "max_attempts": "attempts allowed",
    "horizon_days": "days simulated",
    "start_date": "first day",
    "then_success": "share of stalls that then succeed",
    "resolves_after_days": "days a stall takes to resolve",
    "retry_after_days": "days before a rollback is retried",
    "restored_after_days": "days before a fix forward is restored",
    "clearance_share": "share that counts as cleared",
    "meters_per_installation": "meters per installation",
    "allocation": "how the cap is shared",
    "schedule": "ramp schedule",
    "rules": "ramp rules",
    "outcomes": "outcome rates",
    "daily_capacity": "daily capacity",
}
_SECTIONS = {"capacity": "capacity", "calendar": "calendar", "els": "ELS/MCC"}


def field_words(path: str) -> str:
    """A dotted field path as a reader says it.

    ``cohorts.itron_active.eligible_from`` -> ``itron_active: eligible from``;
    ``capacity.rules.automation_step.max_cap`` -> ``ramp rule automation_step:
    highest cap``; unknown parts keep their name with spaces for underscores.
    """
    parts = path.split(".")
    if parts[0] in ("cohorts", "gates", "suppliers") and len(parts) >= 2:
        owner = parts[1] if parts[0] == "cohorts" else f"{parts[0][:-1]} {parts[1]}"
        rest = parts[2:]
    elif parts[:2] == ["capacity", "rules"] and len(parts) >= 3:
        owner, rest = f"ramp rule {parts[2]}", parts[3:]
    elif parts[:2] == ["capacity", "schedule"] and len(parts) >= 3:
        owner, rest = f"ramp step {parts[2]}", parts[3:]
    else:
        owner, rest = "", parts
    words = [_WORDS.get(p, _SECTIONS.get(p, p.replace("_", " "))) for p in rest]
    text = " ".join(w for w in words if w)
    if owner:
        return f"{owner}: {text}" if text else owner
    return text


def _step(step: dict[str, Any]) -> str:
    """A ramp step as planners say it: "5,000 a day from 6 Jan 2020"."""
    from datetime import date

    when = step.get("from")
    if isinstance(when, date):
        when = f"{when.day} {when:%b %Y}"
    elif isinstance(when, str):
        try:
            day = date.fromisoformat(when)
            when = f"{day.day} {day:%b %Y}"
        except ValueError:
            when = f"when {when} opens"
    else:
        when = f"an uncertain date ({describe_value(when)})"
    return f"{step.get('daily_cap', 0):,} a day from {when}"


def flat_fields(scenario: Scenario) -> dict[str, str]:
    """``{field path: value}``: named entities walked, other lists in one value.

    Cohorts, gates, suppliers and rules are matched by name across scenarios;
    a ramp schedule is one value, so adding a step reads as one change.
    """
    out: dict[str, str] = {}

    def walk(node: Any, key: str) -> None:
        named = (
            isinstance(node, list)
            and node
            and all(isinstance(i, dict) and i.get("name") for i in node)
            and key.split(".")[-1] in ("cohorts", "gates", "suppliers", "rules")
        )
        if isinstance(node, dict) and "dist" not in node and node:
            for child, value in node.items():
                walk(value, f"{key}.{child}" if key else child)
        elif named:
            for item in node:
                rest = {k: v for k, v in item.items() if k != "name"}
                walk(rest, f"{key}.{item['name']}")
        elif key == "capacity.schedule" and node:
            out[key] = "; ".join(_step(step) for step in node)
        else:
            out[key] = describe_value(node, key)

    data = scenario.to_dict()
    for skip in ("name", "description", "sources", "seed"):
        data.pop(skip, None)
    walk(data, "")
    return out


def differing_fields(scenarios: Sequence[Scenario]) -> list[tuple[str, list[str]]]:
    """``(path, values per scenario)`` for every field not the same in all."""
    # a field one scenario has as rows of its parts (ramp rules by name) reads
    # as those parts, as in the appendix: "not set" beside a scenario that has
    # rules said it had none
    tables = [
        {key: (value, "") for key, value in flat_fields(sc).items()} for sc in scenarios
    ]
    keys = list(dict.fromkeys(k for table in tables for k in table))
    out = []
    for key in keys:
        values = [_appendix_cell(table, key)[0] for table in tables]
        if len(set(values)) > 1:
            out.append((key, values))
    return out


def differences_section(runs: Sequence[RunLike]) -> str:
    """What differs between the scenarios, highlighted; nothing for one scenario."""
    if len(runs) < 2:
        return ""
    scenarios = [r.scenario for r in runs]
    rows = differing_fields(scenarios)
    names = [sc.name for sc in scenarios]
    if not rows:
        return (
            '<h2 id="differences">What differs between the scenarios</h2>'
            '<p class="note">Nothing: the scenarios differ only in name.</p>'
        )
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    fields = f"{len(rows)} field" + ("s" if len(rows) > 1 else "")
    body = []
    for key, values in rows:
        cells = "".join(
            f"<td>{escape(v)}</td>"
            if v == values[0]
            else f"<td><mark>{escape(v)}</mark></td>"
            for v in values
        )
        body.append(
            f'<tr class="diff"><th scope="row" title="{escape(key)}">'
            f"{escape(field_words(key))}</th>{cells}</tr>"
        )
    return (
        '<h2 id="differences">What differs between the scenarios</h2>'
        f'<table class="differences"><tr><th>assumption</th>{head}</tr>'
        + "".join(body)
        + "</table>"
        + f'<p class="note">Only what differs ({fields}); every assumption with '
        'its source is in <a href="#appendix">the appendix</a>.</p>'
    )


def _merged_keys(tables: Sequence[dict[str, Any]]) -> list[str]:
    """Every scenario's fields in one order: a field one scenario alone has goes
    after the field it follows there, and after the row of any section holding
    it (``capacity.schedule.full_rate`` under ``capacity.schedule``)."""
    keys: list[str] = []
    for table in tables:
        previous = ""
        for key in table:
            if key not in keys:
                at = keys.index(previous) + 1 if previous in keys else len(keys)
                for i, other in enumerate(keys):
                    if key.startswith(f"{other}."):
                        at = max(at, i + 1)
                keys.insert(at, key)
            previous = key
    return keys


def _appendix_cell(table: dict[str, tuple[str, str]], key: str) -> tuple[str, str]:
    """What a scenario has for a field: its value, the parts it has in rows
    below (a ramp schedule of named steps where another has "none"), or "not set"."""
    if key in table:
        return table[key]
    parts = [k[len(key) + 1 :].split(".")[0] for k in table if k.startswith(f"{key}.")]
    if parts:
        named = list(dict.fromkeys(parts))
        if all(part.isdigit() for part in named):  # a list's items: count them
            count = len(named)
            return f"{count} item{'s' * (count > 1)} (rows below)", ""
        return f"{', '.join(named)} (rows below)", ""
    return "not set", ""


def appendix_section(runs: Sequence[RunLike]) -> str:
    """Every assumption with its source: one row per field, a column per scenario."""
    scenarios = [r.scenario for r in runs]
    tables = [
        {key: (value, source) for key, value, source in assumption_rows(sc)}
        for sc in scenarios
    ]
    keys = _merged_keys(tables)
    several = len(scenarios) > 1
    head = "".join(f"<th>{escape(sc.name)}</th>" for sc in scenarios)
    rows = []
    for key in keys:
        cells = [_appendix_cell(table, key) for table in tables]
        values = [c[0] for c in cells]
        sources = list(dict.fromkeys(c[1] for c in cells if c[1]))
        same = len(set(values)) == 1
        if same:
            value_cells = f'<td colspan="{len(values)}">{escape(values[0])}</td>'
        else:
            value_cells = "".join(f"<td><mark>{escape(v)}</mark></td>" for v in values)
        source = "<br>".join(escape(s) for s in sources)
        rows.append(
            f"<tr{'' if same else ' class=diff'}><td><code>{escape(key)}</code></td>"
            f"{value_cells}<td class='source'>{source}</td></tr>"
        )
    described: dict[str, list[str]] = {}
    for sc in scenarios:  # a description shared by several is said once
        if sc.description:
            text = " ".join(sc.description.split())
            described.setdefault(text, []).append(sc.name)
    descriptions = "".join(
        f"<p><b>{escape(', '.join(names))}</b>: {escape(text)}</p>"
        for text, names in described.items()
    )
    value_head = head if several else "<th>value</th>"
    # the sources are the longest cells: the widest column keeps their rows short
    share = 37 / max(1, len(scenarios))
    columns = f'<col style="width:{share:.1f}%">' * max(1, len(scenarios))
    table = (
        '<table class="appendix">'
        + f'<colgroup><col style="width:19%">{columns}'
        + '<col style="width:44%"></colgroup>'
        + "<tr><th>field</th>"
        + value_head
        + "<th>source</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return fold(
        "appendix",
        ("h2", 'id="appendix"', "Appendix: every assumption and its source"),
        descriptions + table,
        f"{len(keys)} fields, each with its value and source: open to read",
    )
