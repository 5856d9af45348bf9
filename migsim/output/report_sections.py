"""The report's first sections: the answer, assumptions, forecasts and charts.

A section is a function from runs (and their summaries) to an HTML string; it
never simulates. Risk figures are named here in the planners' words.
"""

from __future__ import annotations

import base64
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migsim.common.stats import percent
from migsim.evidence.intervals import RunLike
from migsim.model.scenario import Scenario
from migsim.output.html import (
    escape,
    format_date,
    html_table,
    img,
    interval_text,
    span,
    unit_word,
)
from migsim.output.plots import (
    clearance_distribution_chart,
    cumulative_migrated_chart,
    daily_attempts_chart,
)
from migsim.runner.precision import target_words
from migsim.sim.calendar import working_days
from migsim.sim.operations import OPERATIONS_FIGURES, figures_in_use

__all__ = [
    "OTHER_UNITS",
    "RISK_FIGURES",
    "UNIT_OF",
    "assumption_rows",
    "capacity_phrase",
    "charts_section",
    "describe_value",
    "forecast_section",
    "from_actuals",
    "risk_words",
    "shown",
]

#: Risk figures in the report, in order, with the planners' words. Figures that
#: a run does not have (operations sections not in this version) are skipped.
RISK_FIGURES = {
    "active_interrupted_installation_days": (
        "active installation-days without smart service"
    ),
    "dumb": "devices left dumb",
    "active_dumb": "active devices left dumb",
    "dormant_dumb": "dormant devices left dumb",
    "abandoned": "installations abandoned",
    "peak_failure_backlog": "peak failure backlog (stalled + rolled back)",
    # operations (docs/operations-risk.md): shown when the scenario uses them
    "max_daily_active_interrupted": "interrupted active installations, worst day",
    "active_dumb_installation_days": "active installation-days dumb",
    "active_prepayment_dumb": "active prepayment devices left dumb",
    "active_hit_by_defects": "active installations hit by a latent defect",
    "dormant_hit_by_defects": "dormant installations hit by a latent defect",
    "excluded": "installations never migratable remotely",
    "peak_els_backlog": "peak ELS/MCC case backlog",
    "cos_alerts_lost": "change-of-supplier loss alerts not sent",
    "ppmid_join_failures": "PPMID join failures",
    "no_go_days": "no-go days",
}


UNIT_OF = {
    "active_interrupted_installation_days": "installation-days",
    "dumb": "installations",
    "active_dumb": "installations",
    "dormant_dumb": "installations",
    "abandoned": "installations",
    "peak_failure_backlog": "installations",
    "migrated": "installations",
    "max_daily_active_interrupted": "installations",
    "active_dumb_installation_days": "installation-days",
    "active_prepayment_dumb": "installations",
    "active_hit_by_defects": "installations",
    "dormant_hit_by_defects": "installations",
    "excluded": "installations",
}


#: Risk figures that are not counts of installations: never scaled to meters.
OTHER_UNITS = {
    "peak_els_backlog": "cases",
    "cos_alerts_lost": "events",
    "ppmid_join_failures": "joins",
}


def risk_words(name: str, units: str) -> str:
    """A risk in the planners' words and the report's units: with --units meters
    "meters abandoned", "active meter-days without smart service", so a label
    never names installations over a count of meters."""
    words = RISK_FIGURES[name]
    return words if name in OTHER_UNITS else unit_word(words, units)


def shown(name: str, scenario: Scenario) -> bool:
    """A risk figure the report shows for a scenario (operations: only when used)."""
    return name not in OPERATIONS_FIGURES or name in figures_in_use(scenario)


_QUANTILE_STATS = ("p10", "p50", "p80", "p85", "p90", "p95")


def _when(spec: Any) -> str:
    """A schedule step's start: a date, the day a gate opens, or an uncertain date.

    A gate is said as one ("when gate mcc_automation opens", as the appendix
    and the basis say it): the bare name read "5,000/day from mcc_automation",
    which a committee member cannot place in time.
    """
    if isinstance(spec, date):
        return format_date(spec)
    if isinstance(spec, str):
        try:
            return format_date(date.fromisoformat(spec))
        except ValueError:
            return f"when gate {spec} opens"
    return "an uncertain date"


def capacity_phrase(scenario: Scenario, scale: float, units: str) -> str:
    """``2,000/day``, with the schedule's steps and the ramp rules: how far each
    rule that raises the cap may take it, then the names of the others.

    "2,000/day, raised by the automation step to at most 10,000/day (and the
    stall halt rule)", never the starting cap alone when a rule raises it. The
    headline says more: what each rule waits for and the evidence it needs
    (`migsim.output.report_first.ramp_basis`), in the same words for a flat
    cap and a dated step.
    """

    def per_day(cap: int) -> str:
        if units == "meters":
            return f"{cap:,} installations/day (about {cap * scale:,.0f} meters)"
        return f"{cap:,}/day"

    capacity = scenario.capacity
    phrase = per_day(capacity.daily_cap)
    for step in capacity.schedule:
        phrase += f", then {per_day(step.daily_cap)} from {_when(step.from_)}"
    others = []
    for rule in capacity.rules:
        name = rule.name.replace("_", " ")
        if rule.action == "raise_to":
            ceiling = min(rule.cap or 0, rule.max_cap or rule.cap or 0)
            phrase += f", raised by the {name} to {per_day(ceiling)}"
        elif rule.action == "step_factor":
            steps = f"{(rule.factor or 1) - 1:.0%} a step"
            phrase += (
                f", raised by the {name} to at most {per_day(rule.max_cap)}"
                if rule.max_cap is not None
                else f", raised by the {name} {steps} with no ceiling"
            )
        else:
            others.append(f"the {name}")
    if others:
        rules = "rule" if len(others) == 1 else "rules"
        phrase += f" (and {' and '.join(others)} {rules})"
    return phrase


def describe_value(node: Any, field: str = "") -> str:
    """A scenario field's value in one line: lists and mappings described, not walked.

    The appendix and the table of what differs both write values with this, so
    a value reads the same in each. A distribution is named with its parameters,
    and in days only when its ``field`` counts days (``resolves_after_days``):
    a share or a date drawn from a distribution is not a number of days.
    """
    if isinstance(node, dict) and "dist" in node:
        params = ", ".join(
            f"{k} {_parameter(v, k)}"
            for k, v in node.items()
            if k != "dist" and v is not None
        )
        unit = " days" if field.endswith("_days") else ""
        return f"{node['dist']} ({params}){unit}"
    if isinstance(node, dict):
        return ", ".join(
            f"{k} {describe_value(v, k)}" for k, v in node.items() if v is not None
        )
    if isinstance(node, bool):
        return "yes" if node else "no"
    if isinstance(node, list):
        if not node:
            return "none"
        compound = any(isinstance(item, dict | list) for item in node)
        return ("; " if compound else ", ").join(describe_value(i) for i in node)
    if isinstance(node, float):
        short = f"{node:g}"  # 0.3 not 0.30000000000000004, unless it loses digits
        return short if float(short) == node else repr(node)
    if isinstance(node, int) and not isinstance(node, bool) and abs(node) >= 10000:
        return f"{node:,}"
    return "not set" if node is None else str(node)


def _parameter(value: Any, name: str) -> str:
    """A distribution's parameter: a nested distribution or mapping described in
    parentheses (``mean beta (alpha 6, beta 4)``), never a Python dict."""
    text = describe_value(value, name)
    if isinstance(value, dict) and "dist" not in value:
        return f"({text})"
    return text


def assumption_rows(scenario: Scenario) -> list[tuple[str, str, str]]:
    """(field, value, source) for every rate, cap, delay, gate and date."""
    rows: list[tuple[str, str, str]] = []
    sources = scenario.sources

    def source(key: str) -> str:
        """The field's source, else its section's; with the sources given for
        its parts (``capacity.achieved.mean``: a distribution shown in one row)."""
        parts = key.split(".")
        own = None
        for i in range(len(parts), 0, -1):
            own = sources.get(".".join(parts[:i]))
            if own:
                break
        inner = [
            f"{path[len(key) + 1 :]}: {text}"
            for path, text in sources.items()
            if path.startswith(f"{key}.") and text
        ]
        if inner:
            return "; ".join([own, *inner] if own else inner)
        return own or "assumption (no source given)"

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict) and "dist" not in node:
            for child, value in node.items():
                walk(value, f"{key}.{child}" if key else child)
        elif isinstance(node, list) and node and all(isinstance(i, dict) for i in node):
            for i, item in enumerate(node):
                label = item.get("name") or str(i)
                scalar = all(not isinstance(v, dict | list) for v in item.values())
                if scalar and "dist" not in item:  # e.g. a rule's condition: one row
                    text = ", ".join(
                        f"{k} {describe_value(v, k)}"
                        for k, v in item.items()
                        if k != "name" and v is not None
                    )
                    rows.append((f"{key}.{label}", text, source(f"{key}.{label}")))
                    continue
                for child, value in item.items():
                    if child != "name":
                        walk(value, f"{key}.{label}.{child}")
        elif node is None and source(key).startswith("assumption (no source"):
            return  # an optional field left unset: nothing assumed
        else:
            rows.append((key, describe_value(node, key), source(key)))

    data = scenario.to_dict()
    for skip in ("name", "description", "sources", "seed"):
        data.pop(skip, None)
    walk(data, "")
    return rows


def from_actuals(run: RunLike, summary: dict[str, Any]) -> str:
    """For a ``migsim forecast`` directory: what it learned, and its fan chart.

    The chart (``backlog.png``: actuals up to the as-of date, then the forecast)
    is embedded as the forecast wrote it.
    """
    info = summary.get("forecast")
    if not info:
        return ""
    state_date = info.get("state_date") or info["as_of"]
    since = (
        ""
        if state_date == info["as_of"]
        else f", from their last day by then, {format_date(state_date)}"
    )
    parts = [
        f'<p class="note">Forecast from actuals ({escape(info["actuals"])}) as of '
        f"{escape(format_date(info['as_of']))}{escape(since)}: "
        f"{escape(info['learned'])}</p>"
    ]
    directory = getattr(run, "directory", None)
    chart = None if directory is None else Path(directory) / "backlog.png"
    if chart is not None and chart.is_file():
        data = base64.b64encode(chart.read_bytes()).decode("ascii")
        parts.append(
            '<img alt="backlog: actuals then forecast" '
            f'src="data:image/png;base64,{data}">'
        )
    return "\n".join(parts)


def forecast_section(
    run: RunLike, summary: dict, index: int, scale: float, units: str
) -> str:
    sc = run.scenario
    out: list[str] = []
    ci = summary["ci95"]
    header = ["backlog cleared", *[s.upper() for s in _QUANTILE_STATS], "cleared"]
    rows = []

    def row(label: str, prefix: str, node: dict, ci_node: dict) -> list[str]:
        cells = [escape(label)]
        for stat in _QUANTILE_STATS:
            cells.append(
                span(
                    f"{prefix}clearance_date.{stat}",
                    node["clearance_date"][stat],
                    format_date(node["clearance_date"][stat]),
                    index,
                )
                + '<br><span class="ci">'
                + escape(interval_text(ci_node["clearance_date"][stat], "date"))
                + "</span>"
            )
        cells.append(
            span(
                f"{prefix}cleared_share",
                node["cleared_share"],
                percent(node["cleared_share"]),
                index,
            )
        )
        return cells

    rows.append(row("all cohorts", "", summary, ci))
    for cohort in run.cohort_names:
        rows.append(
            row(
                cohort,
                f"cohorts.{cohort}.",
                summary["cohorts"][cohort],
                ci["cohorts"][cohort],
            )
        )
    out.append(html_table(header, rows, [False] + [True] * (len(header) - 1)))
    mean = summary["figures"]["clearance_day"]["mean"]
    if mean is None:
        text = (
            "The mean clearance day is undefined: some replications do not clear "
            'within the horizon (a date shown as "after" the horizon end falls on one '
            "of them)."
        )
    else:
        interval = ci["figures"]["clearance_day"]["mean"]
        text = (
            "Mean clearance day: "
            + span("figures.clearance_day.mean", mean, f"{mean:,.1f}", index)
            + f" days after {escape(format_date(sc.start_date))} (95% CI "
            + (escape(f"{interval[0]:,.1f} to {interval[1]:,.1f}") if interval else "-")
            + ")."
        )
    if index == 0:  # how to read the table, said once
        text += (
            f" Dates are inverted-CDF (type 1) quantiles across {run.n_replications} "
            "replications, so each is a date a replication produced. Under each "
            "date, its 95% interval, distribution-free (order statistics); a "
            '"?" side needs more replications to bound it.'
        )
    out.append(f'<p class="note">{text}</p>')
    gates = (summary.get("policy") or {}).get("gates") or {}
    if gates:
        gate_rows = [
            [
                escape(name),
                *(
                    span(
                        f"policy.gates.{name}.opening_date.{k}",
                        gate["opening_date"][k],
                        format_date(gate["opening_date"][k]),
                        index,
                    )
                    for k in ("p10", "p50", "p90")
                ),
                span(
                    f"policy.gates.{name}.opened_share",
                    gate["opened_share"],
                    percent(gate["opened_share"]),
                    index,
                ),
            ]
            for name, gate in gates.items()
        ]
        out.append(
            html_table(
                ["gate opens", "P10", "P50", "P90", "opened"],
                gate_rows,
                [False, True, True, True, True],
            )
        )
    if summary.get("p_clear_by"):
        by_rows = []
        for when, p in summary["p_clear_by"].items():
            interval = summary.get("p_clear_by_ci95", {}).get(when)
            by_rows.append(
                [
                    escape(format_date(when)),
                    span(f"p_clear_by.{when}", p, percent(p), index),
                    escape(
                        "-"
                        if interval is None
                        else f"{percent(interval[0])} to {percent(interval[1])}"
                    ),
                ]
            )
        out.append(
            html_table(
                ["cleared by", "probability", "95% CI"], by_rows, [False, True, True]
            )
        )
    precision = summary.get("precision")
    if precision:
        target = target_words(precision["target"])
        out.append(
            f'<p class="note">Replications: {precision["replications"]}, run in '
            f"batches of {precision['batch']} until the 95% CI half-width of {target} "
            f"was {precision['goal'][precision['target']]} or less "
            f"({'met' if precision['met'] else 'not met by the maximum count'}).</p>"
        )
    return "".join(out)


def _plan(sc: Scenario, dates: pd.DatetimeIndex, scale: float) -> pd.DataFrame | None:
    """Cumulative installations at a flat cap if every attempt succeeded.

    Only for a flat cap with plain eligibility dates: under a schedule, rules,
    gates or incidents the cap in force is itself uncertain, so no single line.
    """
    starts = [c.eligible_from or sc.start_date for c in sc.cohorts]
    flat = (
        not sc.capacity.schedule
        and not sc.capacity.rules
        and getattr(sc, "go_no_go", None) is None
        and all(isinstance(d, date) for d in starts)
    )
    if not flat:
        return None
    first_day = min(sc.day_of(d) for d in starts if isinstance(d, date))
    can_attempt = working_days(sc) & (np.arange(sc.horizon_days) >= first_day)
    planned = (
        np.minimum(np.cumsum(can_attempt) * sc.capacity.daily_cap, sc.installations)
        * scale
    )
    return pd.DataFrame({"date": dates, "planned": planned})


def charts_section(
    run: RunLike, summary: dict, scale: float, units: str, colour: str | None = None
) -> str:
    """One scenario's charts, two to a row, in the scenario's colour."""
    from migsim.output.scenario_charts import cohort_backlog_chart

    sc = run.scenario
    unit = unit_word("installations", units)
    if not getattr(run, "has_daily", True):
        return (
            '<p class="note">Daily charts are not available: this run was '
            "written with --no-daily.</p>"
        )
    days = run.clearance_days()
    finite = days[np.isfinite(days)]
    until = (
        sc.end_date
        if len(finite) < len(days) or not len(finite)
        else min(sc.end_date, sc.date_of(int(finite.max()) + 21))
    )
    size = (6.2, 2.7)

    def scaled(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for column in frame.columns:
            if column != "date":
                frame[column] = frame[column] * scale
        return frame

    shade = colour or "#333333"
    charts = [
        img(
            cohort_backlog_chart(
                {c: scaled(run.bands("remaining", c)) for c in run.cohort_names},
                sc.name,
                shade,
                unit,
                until,
                figsize=size,
            ),
            f"Backlog by cohort: {sc.name}",
        ),
        img(
            cumulative_migrated_chart(
                scaled(run.bands("cumulative_migrated")),
                sc.name,
                sc.installations * scale,
                _plan(sc, run.dates, scale),
                unit,
                until,
                colour=colour,
                figsize=size,
            ),
            f"Cumulative migrated against the target: {sc.name}",
        ),
        img(
            daily_attempts_chart(
                scaled(run.bands("attempts")),
                scaled(run.bands("successes")),
                sc.name,
                unit,
                until,
                colour=colour,
                figsize=size,
            ),
            f"Daily attempts and successes: {sc.name}",
        ),
    ]
    dates = pd.Series(
        [sc.date_of(int(d)) if math.isfinite(d) else pd.NaT for d in days]
    )
    markers = {}
    for stat in ("p50", "p90"):
        value = summary["clearance_date"][stat]
        markers[f"{stat.upper()} {format_date(value)}"] = (
            None if value.startswith("after") else date.fromisoformat(value)
        )
    charts.append(
        img(
            clearance_distribution_chart(
                dates, sc.name, sc.end_date, markers, colour=colour, figsize=size
            ),
            f"Distribution of clearance dates: {sc.name}",
        )
    )
    return '<div class="grid">' + "".join(charts) + "</div>"
