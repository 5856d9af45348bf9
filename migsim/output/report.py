"""Report: one self-contained HTML page for OPSG, from finished runs.

The page answers the question in two sentences, lists every assumption with its
source, shows the forecasts and charts, the risks, a comparison when several
runs are given, and where the numbers came from. Images are PNGs embedded as
base64, styles are inline: the file opens in any browser with no network.

A report renders runs; it never simulates (the CLI runs scenario files first).
Every number taken from a run's summary is printed inside an element carrying
``data-key`` (its dotted path in ``summary.json``) and ``data-value`` (the raw
value), so a test can check the page against ``summary.json``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migsim import __version__
from migsim.common.errors import MigsimError
from migsim.evidence.forecast import (
    RunLike,
    ci95_section,
    p_clear_by_sections,
)
from migsim.experiments.compare import compare_runs
from migsim.experiments.decision import SavedDecision
from migsim.model.scenario import Scenario
from migsim.output.plots import (
    backlog_fan_chart,
    clearance_distribution_chart,
    cumulative_migrated_chart,
    daily_attempts_chart,
    plt,
    risk_chart,
)
from migsim.sim.calendar import working_days
from migsim.sim.operations import OPERATIONS_FIGURES, figures_in_use

__all__ = ["RISK_FIGURES", "UNITS", "format_date", "render_report", "unit_scale"]

UNITS = ("installations", "meters")
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
_UNIT_OF = {
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
_OTHER_UNITS = {
    "peak_els_backlog": "cases",
    "cos_alerts_lost": "events",
    "ppmid_join_failures": "joins",
}


def _shown(name: str, scenario: Scenario) -> bool:
    """A risk figure the report shows for a scenario (operations: only when used)."""
    return name not in OPERATIONS_FIGURES or name in figures_in_use(scenario)


_QUANTILE_STATS = ("p10", "p50", "p80", "p85", "p90", "p95")
_CSS = """
body{font-family:Georgia,'Times New Roman',serif;color:#111;background:#fff;
max-width:1000px;margin:2em auto;padding:0 1.2em;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #999;
padding-bottom:.15em;margin-top:1.8em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #bbb;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
p.answer{font-size:1.25em;background:#f2f2f2;border-left:5px solid #333;
padding:.6em .9em}img{max-width:100%;height:auto;border:1px solid #ddd;margin:.4em 0}
.note{color:#444;font-size:.9em}code{font-size:.9em;word-break:break-all}
td{overflow-wrap:break-word}
"""


# --------------------------------------------------------------------------- format
def format_date(value: str | date | None) -> str:
    """``2020-02-14`` -> ``14 Feb 2020``; ``after 2020-11-22`` -> ``after 22 Nov 2020``.

    ``None`` (an interval side too few replications can bound) reads as such.
    """
    if value is None:
        return "needs more replications"
    if isinstance(value, date):
        return f"{value.day} {value:%b %Y}"
    if value.startswith("after "):
        return "after " + format_date(date.fromisoformat(value[6:]))
    return format_date(date.fromisoformat(value))


def format_count(value: float | None, scale: float = 1.0) -> str:
    """A count in the report's units, thousands separated; "-" when undefined."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value * scale:,.0f}"


def unit_scale(scenario: Scenario, units: str) -> float:
    """Multiplier from installations to the report's units."""
    if units not in UNITS:
        raise MigsimError(f"--units {units}: expected one of {', '.join(UNITS)}")
    if units == "installations":
        return 1.0
    if scenario.meters_per_installation is None:
        raise MigsimError(
            f"{scenario.name}: --units meters needs meters_per_installation in the "
            "scenario"
        )
    return float(scenario.meters_per_installation)


def _unit_word(unit: str, units: str) -> str:
    if units == "meters":
        return unit.replace("installations", "meters").replace("installation", "meter")
    return unit


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _span(key: str, value: Any, text: str, run: int | None = None) -> str:
    raw = "null" if value is None else value
    attr = "" if run is None else f' data-run="{run}"'
    return f'<span data-key="{_e(key)}" data-value="{_e(raw)}"{attr}>{_e(text)}</span>'


def _date_span(summary: dict, key: str, run: int) -> str:
    node: Any = summary
    for part in key.split("."):
        node = node[part]
    return _span(key, node, format_date(node), run)


def _count_span(summary: dict, key: str, scale: float, run: int) -> str:
    node: Any = summary
    for part in key.split("."):
        node = node[part]
    return _span(key, node, format_count(node, scale), run)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return data


def _img(fig, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{_png(fig)}">'


# --------------------------------------------------------------------------- parts
def _from_actuals(run: RunLike, summary: dict[str, Any]) -> str:
    """For a ``migsim forecast`` directory: what it learned, and its fan chart.

    The chart (``backlog.png``: actuals up to the as-of date, then the forecast)
    is embedded as the forecast wrote it.
    """
    info = summary.get("forecast")
    if not info:
        return ""
    parts = [
        f'<p class="note">Forecast from actuals ({_e(info["actuals"])}) as of '
        f"{_e(format_date(info['as_of']))}: {_e(info['learned'])}</p>"
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


def _summary(run: RunLike, by: Sequence[date]) -> dict[str, Any]:
    """The run's summary, with the forecast sections computed if it lacks them."""
    summary = dict(run.summary)
    if "ci95" not in summary:
        summary["ci95"] = ci95_section(run)
    if by:
        extra = p_clear_by_sections(run, by)
        for key, value in extra.items():
            merged = dict(summary.get(key, {}))
            merged.update(value)
            summary[key] = merged
    return summary


def _when(spec: Any) -> str:
    """A schedule step's start: a date, a gate's name, or an uncertain date."""
    if isinstance(spec, date):
        return format_date(spec)
    if isinstance(spec, str):
        try:
            return format_date(date.fromisoformat(spec))
        except ValueError:
            return spec
    return "an uncertain date"


def _capacity_phrase(scenario: Scenario, scale: float, units: str) -> str:
    """``2,000/day``, with the schedule's steps and the number of ramp rules."""

    def per_day(cap: int) -> str:
        if units == "meters":
            return f"{cap:,} installations/day (about {cap * scale:,.0f} meters)"
        return f"{cap:,}/day"

    capacity = scenario.capacity
    phrase = per_day(capacity.daily_cap)
    for step in capacity.schedule:
        phrase += f", then {per_day(step.daily_cap)} from {_when(step.from_)}"
    if capacity.rules:
        count = len(capacity.rules)
        phrase += f" (adjusted by {count} ramp rule{'s' if count > 1 else ''})"
    return phrase


def _answer(
    runs: Sequence[RunLike],
    summaries: Sequence[dict],
    comparison: dict | None,
    scale: float,
    units: str,
) -> str:
    first, s0 = runs[0], summaries[0]
    total = first.scenario.installations
    unit = _unit_word("installations", units)
    sentence = (
        f"At {_e(_capacity_phrase(first.scenario, scale, units))} the backlog of "
        f"{_e(format_count(total, scale))} {unit} ({_e(first.scenario.name)}) "
        "clears by "
        f"{_date_span(s0, 'clearance_date.p50', 0)} (P50), "
        f"{_date_span(s0, 'clearance_date.p90', 0)} (P90)"
    )
    if s0["cleared_share"] < 1:
        not_cleared = 1 - s0["cleared_share"]
        sentence += (
            f"; in {not_cleared:.0%} of replications it does not clear by "
            f"{_e(format_date(first.scenario.end_date))}"
        )
    sentence += "."
    if len(runs) > 1 and comparison is not None:
        parts = []
        for i, (run, summary) in enumerate(
            zip(runs[1:], summaries[1:], strict=True), start=1
        ):
            diff = comparison["scenarios"][run.scenario.name]["figures"]
            p50 = diff["clearance_day"]["p50"]["diff"]
            shift = "" if p50 is None else f" ({'+' if p50 > 0 else ''}{p50:,.0f} days)"
            costs = []
            for name in (
                "active_interrupted_installation_days",
                "dumb",
                "peak_failure_backlog",
                "abandoned",
            ):
                d = diff[name]["p50"]["diff"]
                if d is not None and d > 0:
                    costs.append(f"+{format_count(d, scale)} {_e(RISK_FIGURES[name])}")
            cost = (
                ("at the cost of " + ", ".join(costs) + " (P50)")
                if costs
                else "with no increase in the risk figures at P50"
            )
            parts.append(
                f"{_e(run.scenario.name)} at "
                f"{_e(_capacity_phrase(run.scenario, scale, units))} brings P50 to "
                f"{_date_span(summary, 'clearance_date.p50', i)}{_e(shift)} and P90 to "
                f"{_date_span(summary, 'clearance_date.p90', i)}, {cost}."
            )
        return sentence + " " + " ".join(parts)
    figures = s0["figures"]
    dumb = _span(
        "figures.dumb.p50",
        figures["dumb"]["p50"],
        format_count(figures["dumb"]["p50"], scale),
        0,
    )
    days = _span(
        "figures.active_interrupted_installation_days.p50",
        figures["active_interrupted_installation_days"]["p50"],
        format_count(figures["active_interrupted_installation_days"]["p50"], scale),
        0,
    )
    peak = _span(
        "figures.peak_failure_backlog.p90",
        figures["peak_failure_backlog"]["p90"],
        format_count(figures["peak_failure_backlog"]["p90"], scale),
        0,
    )
    return (
        sentence + f" On the way it leaves {dumb} devices dumb and "
        f"{days} {_e(_unit_word('installation', units))}-days of active smart "
        f"service interrupted (P50), with up to {peak} {unit} stalled or rolled "
        "back at once (P90)."
    )


def _describe(value: Any) -> str:
    if isinstance(value, dict) and "dist" in value:
        params = ", ".join(f"{k} {v}" for k, v in value.items() if k != "dist")
        return f"{value['dist']} ({params}) days"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "none"
    if value is None:
        return "not set"
    return str(value)


def _assumption_rows(scenario: Scenario) -> list[tuple[str, str, str]]:
    """(field, value, source) for every rate, cap, delay, gate and date."""
    rows: list[tuple[str, str, str]] = []
    sources = scenario.sources

    def source(key: str) -> str:
        parts = key.split(".")
        for i in range(len(parts), 0, -1):
            found = sources.get(".".join(parts[:i]))
            if found:
                return found
        return "assumption (no source given)"

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
                        f"{k} {v}"
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
            rows.append((key, _describe(node), source(key)))

    data = scenario.to_dict()
    for skip in ("name", "description", "sources", "seed"):
        data.pop(skip, None)
    walk(data, "")
    return rows


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[bool] | None = None,
) -> str:
    numeric = numeric or [False] * len(header)
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = "".join(
            f'<td class="n">{c}</td>' if numeric[i] else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def _interval_text(interval: list | None, kind: str, scale: float = 1.0) -> str:
    if interval is None:
        return "undefined"
    low, high = interval
    if kind == "date":
        return f"{format_date(low)} to {format_date(high)}"
    return f"{format_count(low, scale)} to {format_count(high, scale)}"


def _forecast_section(
    run: RunLike, summary: dict, index: int, scale: float, units: str
) -> str:
    sc = run.scenario
    out = [f"<h3>{_e(sc.name)}</h3>"]
    ci = summary["ci95"]
    header = ["backlog cleared", *[s.upper() for s in _QUANTILE_STATS], "cleared"]
    rows = []

    def row(label: str, prefix: str, node: dict, ci_node: dict) -> list[str]:
        cells = [_e(label)]
        for stat in _QUANTILE_STATS:
            cells.append(
                _span(
                    f"{prefix}clearance_date.{stat}",
                    node["clearance_date"][stat],
                    format_date(node["clearance_date"][stat]),
                    index,
                )
                + '<br><span class="note">95% CI '
                + _e(_interval_text(ci_node["clearance_date"][stat], "date"))
                + "</span>"
            )
        cells.append(
            _span(
                f"{prefix}cleared_share",
                node["cleared_share"],
                f"{node['cleared_share']:.0%}",
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
    out.append(_table(header, rows, [False] + [True] * (len(header) - 1)))
    mean = summary["figures"]["clearance_day"]["mean"]
    if mean is None:
        out.append(
            '<p class="note">The mean clearance day is undefined: some '
            "replications do not clear within the horizon (a date shown as "
            '"after" the horizon end falls on one of them).</p>'
        )
    else:
        interval = ci["figures"]["clearance_day"]["mean"]
        out.append(
            "<p>Mean clearance day: "
            + _span("figures.clearance_day.mean", mean, f"{mean:,.1f}", index)
            + f" days after {_e(format_date(sc.start_date))} (95% CI "
            + (_e(f"{interval[0]:,.1f} to {interval[1]:,.1f}") if interval else "-")
            + ").</p>"
        )
    out.append(
        '<p class="note">Dates are inverted-CDF (type 1) quantiles across '
        f"{run.n_replications} replications, so each is a date a replication "
        "produced. The 95% intervals are distribution-free (order statistics); "
        '"needs more replications" means too few replications to bound that side.'
        "</p>"
    )
    gates = (summary.get("policy") or {}).get("gates") or {}
    if gates:
        gate_rows = [
            [
                _e(name),
                *(
                    _span(
                        f"policy.gates.{name}.opening_date.{k}",
                        gate["opening_date"][k],
                        format_date(gate["opening_date"][k]),
                        index,
                    )
                    for k in ("p10", "p50", "p90")
                ),
                _span(
                    f"policy.gates.{name}.opened_share",
                    gate["opened_share"],
                    f"{gate['opened_share']:.0%}",
                    index,
                ),
            ]
            for name, gate in gates.items()
        ]
        out.append(
            _table(
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
                    _e(format_date(when)),
                    _span(f"p_clear_by.{when}", p, f"{p:.0%}", index),
                    _e(
                        "-"
                        if interval is None
                        else f"{interval[0]:.0%} to {interval[1]:.0%}"
                    ),
                ]
            )
        out.append(
            _table(
                ["cleared by", "probability", "95% CI"], by_rows, [False, True, True]
            )
        )
    precision = summary.get("precision")
    if precision:
        target = (
            "the mean clearance day"
            if precision["target"] == "mean_clearance_day"
            else "P(cleared by the horizon end), as some replications do not clear"
        )
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


def _charts(run: RunLike, summary: dict, scale: float, units: str) -> str:
    sc = run.scenario
    unit = _unit_word("installations", units)
    if not getattr(run, "has_daily", True):
        return (
            '<p class="note">Daily charts are not available: this run was '
            "written with --no-daily.</p>"
        )
    out = []
    days = run.clearance_days()
    finite = days[np.isfinite(days)]
    until = (
        sc.end_date
        if len(finite) < len(days) or not len(finite)
        else min(sc.end_date, sc.date_of(int(finite.max()) + 21))
    )

    def scaled(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for column in frame.columns:
            if column != "date":
                frame[column] = frame[column] * scale
        return frame

    out.append(
        _img(
            backlog_fan_chart(
                scaled(run.bands("remaining")),
                f"{sc.name}, all cohorts",
                unit,
                until,
            ),
            "Backlog fan chart, all cohorts",
        )
    )
    for cohort in run.cohort_names:
        out.append(
            _img(
                backlog_fan_chart(
                    scaled(run.bands("remaining", cohort)),
                    f"{sc.name}, {cohort}",
                    unit,
                    until,
                ),
                f"Backlog fan chart, {cohort}",
            )
        )
    total = sc.installations * scale
    plan = _plan(sc, run.dates, scale)
    out.append(
        _img(
            cumulative_migrated_chart(
                scaled(run.bands("cumulative_migrated")),
                sc.name,
                total,
                plan,
                unit,
                until,
            ),
            "Cumulative migrated against the target",
        )
    )
    out.append(
        _img(
            daily_attempts_chart(
                scaled(run.bands("attempts")),
                scaled(run.bands("successes")),
                sc.name,
                unit,
                until,
            ),
            "Daily attempts and successes",
        )
    )
    dates = pd.Series(
        [sc.date_of(int(d)) if math.isfinite(d) else pd.NaT for d in days]
    )
    markers = {}
    for stat in ("p50", "p90"):
        value = summary["clearance_date"][stat]
        markers[f"{stat.upper()} {format_date(value)}"] = (
            None if value.startswith("after") else date.fromisoformat(value)
        )
    out.append(
        _img(
            clearance_distribution_chart(dates, sc.name, sc.end_date, markers),
            "Distribution of clearance dates",
        )
    )
    return "".join(out)


def _risk_section(
    run: RunLike,
    summary: dict,
    index: int,
    scale: float,
    units: str,
    charts: bool = True,
) -> str:
    sc = run.scenario
    names = [n for n in RISK_FIGURES if n in summary["figures"] and _shown(n, sc)]
    rows = []
    for name in names:
        stats = summary["figures"][name]
        interval = summary["ci95"]["figures"].get(name, {}).get("mean")
        if name in _OTHER_UNITS:  # not installations: never scaled to meters
            unit, row_scale = _OTHER_UNITS[name], 1.0
        else:
            unit, row_scale = _unit_word(_UNIT_OF.get(name, "count"), units), scale
        rows.append(
            [
                _e(RISK_FIGURES[name]),
                _e(unit),
                _span(
                    f"figures.{name}.p50",
                    stats["p50"],
                    format_count(stats["p50"], row_scale),
                    index,
                ),
                _span(
                    f"figures.{name}.p90",
                    stats["p90"],
                    format_count(stats["p90"], row_scale),
                    index,
                ),
                _span(
                    f"figures.{name}.mean",
                    stats["mean"],
                    format_count(stats["mean"], row_scale),
                    index,
                )
                + '<br><span class="note">95% CI '
                + _e(_interval_text(interval, "count", row_scale))
                + "</span>",
            ]
        )
    go_no_go = getattr(sc, "go_no_go", None)
    policy = summary.get("policy") or {}
    if go_no_go is not None and "no_go_days" in policy:
        stats = policy["no_go_days"]
        rows.append(
            [
                _e(RISK_FIGURES["no_go_days"]),
                "working days",
                *(
                    _span(
                        f"policy.no_go_days.{k}",
                        stats[k],
                        format_count(stats[k]),
                        index,
                    )
                    for k in ("p50", "p90", "mean")
                ),
            ]
        )
    out = [
        f"<h3>{_e(sc.name)}</h3>",
        _table(
            ["risk", "unit", "P50", "P90", "mean"],
            rows,
            [False, False, True, True, True],
        ),
    ]
    values = {}
    for name in names:
        if name in _UNIT_OF:
            unit = _unit_word(_UNIT_OF[name], units)
            values[f"{RISK_FIGURES[name]} ({unit})"] = run.figure(name) * scale
    if charts:
        out.append(
            _img(risk_chart(values, sc.name), "Risk figures across replications")
        )
    return "".join(out)


def _comparison_section(
    runs: Sequence[RunLike], comparison: dict, scale: float, units: str
) -> str:
    first = comparison["first"]
    out = [
        f"<p>Each scenario against <b>{_e(first)}</b>, replication by replication "
        f"({comparison['replications']} pairs). "
    ]
    if comparison["common_random_numbers"]:
        out.append(
            "All runs used seed "
            f"{comparison['seed']}, so replication k of each faced the same "
            "random numbers (common random numbers)."
        )
    else:
        out.append(
            "The runs used different seeds: the pairs are independent, so "
            "the intervals are wider than with common random numbers."
        )
    out.append(
        " Negative differences mean earlier or lower. Intervals are 95%: "
        "Student-t for means, a seeded paired bootstrap for quantiles.</p>"
    )
    header = [
        "scenario",
        "figure",
        "P50 difference",
        "P90 difference",
        "mean difference",
    ]
    rows = []
    for run in runs[1:]:
        entry = comparison["scenarios"][run.scenario.name]
        for name in [
            "clearance_day",
            *[
                n
                for n in RISK_FIGURES
                if n in entry["figures"] and n in _UNIT_OF and _shown(n, run.scenario)
            ],
        ]:
            cells = [
                _e(run.scenario.name),
                _e(
                    "clearance (days)"
                    if name == "clearance_day"
                    else RISK_FIGURES[name]
                ),
            ]
            factor = 1.0 if name == "clearance_day" else scale
            for stat in ("p50", "p90", "mean"):
                item = entry["figures"][name][stat]
                diff = item["diff"]
                text = "undefined" if diff is None else f"{diff * factor:+,.0f}"
                cells.append(
                    _e(text)
                    + '<br><span class="note">95% CI '
                    + _e(_interval_text(item["ci95"], "count", factor))
                    + "</span>"
                )
            rows.append(cells)
    out.append(_table(header, rows, [False, False, True, True, True]))
    order_rows = [
        [
            _e(run.scenario.name),
            *(
                f"{comparison['scenarios'][run.scenario.name][k]:.0%}"
                for k in (
                    "p_clears_before_first",
                    "p_clears_same_day",
                    "p_clears_after_first",
                )
            ),
        ]
        for run in runs[1:]
    ]
    out.append(
        _table(
            ["scenario", f"clears before {first}", "same day", f"after {first}"],
            order_rows,
            [False, True, True, True],
        )
    )
    return "".join(out)


def _provenance(
    runs: Sequence[RunLike], summaries: Sequence[dict], command: str | None
) -> str:
    rows = []
    for i, (run, summary) in enumerate(zip(runs, summaries, strict=True)):
        rows.append(
            [
                _e(run.scenario.name),
                _span(
                    "migsim_version",
                    summary["migsim_version"],
                    summary["migsim_version"],
                    i,
                ),
                "<code>" + _e(summary.get("command") or "not recorded") + "</code>",
                _span("seed", summary["seed"], str(summary["seed"]), i),
                _span(
                    "replications",
                    summary["replications"],
                    f"{summary['replications']:,}",
                    i,
                ),
                "<code>"
                + _span(
                    "scenario_sha256",
                    summary["scenario_sha256"],
                    summary["scenario_sha256"],
                    i,
                )
                + "</code>",
                _e(str(getattr(run, "directory", "in memory"))),
            ]
        )
    table = _table(
        [
            "scenario",
            "migsim version",
            "command",
            "seed",
            "replications",
            "scenario sha256",
            "run directory",
        ],
        rows,
    )
    made = (
        f"<p>Report made by migsim {_e(__version__)}"
        + (f" with <code>{_e(command)}</code>" if command else "")
        + ".</p>"
    )
    return table + made


# --------------------------------------------------------------------------- basis
def _basis_section(decision: SavedDecision) -> str:
    """The answer of `migsim decide`, its frontier and the evidence per candidate."""
    data = decision.data
    text = data["text"].split("\n")
    answer = [line.strip() for line in text[2:] if line.strip()]
    search = answer.pop() if answer and answer[-1].startswith("Search:") else ""
    frame = decision.candidates
    levers = list(data["levers"])
    budgets = [b["label"] for b in data["budgets"]]
    objective = f"{data['objective']['figure']}_{data['objective']['statistic']}"
    columns = ["candidate", *levers, "replications", objective]
    for label in budgets:
        columns += [label, f"{label}_bound"]
    columns += ["verdict", "broke"]
    ordered = frame.sort_values([*levers, "candidate"])
    rows = []
    for _, row in ordered.iterrows():
        cells = []
        for column in columns:
            value = row[column]
            if column.startswith("p_") and isinstance(value, float):
                cells.append(_e(f"{value:.1%}"))
            elif isinstance(value, int | float | np.number) and not isinstance(
                value, bool
            ):
                cells.append(_e(_number(float(value))))
            else:
                cells.append(_e("" if pd.isna(value) else value))
        if bool(row["is_answer"]):
            cells = [f"<b>{c}</b>" for c in cells]
        rows.append(cells)
    numeric = [c not in ("verdict", "broke") for c in columns]
    png = base64.b64encode(decision.frontier_png).decode("ascii")
    replications = data["replications"]
    return "\n".join(
        [
            '<h2 id="basis">Basis for increasing volumes</h2>',
            f"<p>The question <code>{_e(data['question'])}</code>: the best "
            f"{_e(', '.join(levers))} whose risks stay inside the budget, every budget "
            f"judged on its {data['confidence']:.0%} upper confidence bound "
            "(Clopper-Pearson for a chance, an order statistic for a quantile).</p>",
            '<p class="answer" id="basis-answer">'
            + "<br>".join(_e(line) for line in answer)
            + "</p>",
            '<img alt="frontier: objective against each risk figure" '
            f'src="data:image/png;base64,{png}">',
            "<h3>Evidence: every candidate evaluated</h3>",
            _table(columns, rows, numeric),
            f'<p class="note">{_e(search)} {data["candidates_evaluated"]} candidates, '
            f"{replications['spent']:,} replications (at first "
            f"{replications['initial']:,} each, doubled up to {replications['max']:,} "
            f"where the evidence was not decisive), seed {data['seed']}; question "
            f"sha256 <code>{_e(data['question_sha256'])}</code>, scenario sha256 "
            f"<code>{_e(data['scenario_sha256'])}</code>.</p>",
        ]
    )


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "unbounded" if value > 0 else "-"
    if value.is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


# --------------------------------------------------------------------------- page
def render_report(
    runs: Sequence[RunLike],
    *,
    units: str = "installations",
    by: Sequence[date] = (),
    command: str | None = None,
    charts: bool = True,
    decision: SavedDecision | None = None,
) -> str:
    """The OPSG report of one or more finished runs, as one HTML string.

    Parameters
    ----------
    runs
        `Results` or `migsim.results.rundir.SavedRun` objects; the first is the baseline
        of the comparison.
    units
        ``installations`` or ``meters`` (needs ``meters_per_installation`` in
        every scenario); dates and probabilities are unaffected.
    by
        Dates for P(cleared by that date), added to those the runs already have.
    command
        The command line that made the report, for the provenance section.
    charts
        Draw the charts (the slow part); ``False`` gives the tables alone.
    decision
        A finished decision (`migsim.experiments.decision.load_decision`): adds
        the section "Basis for increasing volumes" with its answer, frontier and
        evidence.

    Raises
    ------
    MigsimError
        For ``--units meters`` without ``meters_per_installation``, or runs that
        cannot be compared (different replication counts, same names).
    """
    if not runs:
        raise MigsimError("a report needs at least one run")
    scales = [unit_scale(run.scenario, units) for run in runs]
    summaries = [_summary(run, by) for run in runs]
    comparison = compare_runs(runs) if len(runs) > 1 else None
    first = runs[0]
    title = "Migration forecast: " + ", ".join(r.scenario.name for r in runs)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="note">SMETS1 migration forecast by migsim {_e(__version__)}, '
        f"{len(runs)} scenario(s), {first.n_replications:,} replications each. "
        f"Counts in {_e(units)}.</p>",
        "<h2>1. The question and the answer</h2>",
        "<p>OPSG asked DCC: on what basis will volumes increase, and when? "
        "When does the backlog clear, how sure is that, and what does it risk?</p>",
        f'<p class="answer" id="answer">'
        f"{_answer(runs, summaries, comparison, scales[0], units)}</p>",
    ]
    if decision is not None:
        body.append(_basis_section(decision))
    body.append("<h2>2. Assumptions</h2>")
    for run in runs:
        sc = run.scenario
        body.append(f"<h3>{_e(sc.name)}</h3>")
        if sc.description:
            body.append(f"<p>{_e(' '.join(sc.description.split()))}</p>")
        body.append(
            _table(
                ["field", "value", "source"],
                [[_e(k), _e(v), _e(s)] for k, v, s in _assumption_rows(sc)],
            )
        )
    body.append("<h2>3. Forecasts</h2>")
    for i, (run, summary) in enumerate(zip(runs, summaries, strict=True)):
        body.append(_from_actuals(run, summary))
        body.append(_forecast_section(run, summary, i, scales[i], units))
        if charts:
            body.append(_charts(run, summary, scales[i], units))
    body.append("<h2>4. Risks</h2>")
    for i, (run, summary) in enumerate(zip(runs, summaries, strict=True)):
        body.append(_risk_section(run, summary, i, scales[i], units, charts))
    body.append("<h2>5. Comparison</h2>")
    if comparison is not None:
        body.append(_comparison_section(runs, comparison, scales[0], units))
    else:
        body.append(
            '<p class="note">One scenario: nothing to compare. Give several '
            "runs or scenario files to compare them.</p>"
        )
    body.append("<h2>6. Provenance</h2>")
    body.append(_provenance(runs, summaries, command))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
