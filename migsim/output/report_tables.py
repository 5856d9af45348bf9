"""The report's table sections: risks, the comparison, provenance.

Like the other sections (`migsim.output.report_sections`), each turns finished
runs into HTML and never simulates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from migsim import __version__
from migsim.common.stats import percent
from migsim.evidence.intervals import RunLike
from migsim.experiments.compare import weak_pairing_note
from migsim.output.html import (
    escape,
    format_count,
    html_table,
    img,
    interval_text,
    signed,
    span,
    unit_word,
)
from migsim.output.plots import risk_chart
from migsim.output.report_first import days_interval, shift_words
from migsim.output.report_sections import (
    OTHER_UNITS,
    RISK_FIGURES,
    UNIT_OF,
    risk_words,
    shown,
)
from migsim.results.figures import DUMB_INCLUDES_RECOVERABLE, dumb_may_recover

__all__ = ["comparison_section", "provenance", "risk_section"]

#: Risk figures that are parts of another (``dumb``): in the table, not charted.
_PARTS = ("active_dumb", "dormant_dumb")


def risk_section(
    run: RunLike,
    summary: dict,
    index: int,
    scale: float,
    units: str,
    charts: bool = True,
    colour: str | None = None,
) -> str:
    """One scenario's risk figures (P50, P90, mean with its 95% CI) and chart."""
    sc = run.scenario
    names = [n for n in RISK_FIGURES if n in summary["figures"] and shown(n, sc)]
    rows = []
    for name in names:
        stats = summary["figures"][name]
        interval = summary["ci95"]["figures"].get(name, {}).get("mean")
        if name in OTHER_UNITS:  # not installations: never scaled to meters
            unit, row_scale = OTHER_UNITS[name], 1.0
        else:
            unit, row_scale = unit_word(UNIT_OF.get(name, "count"), units), scale
        rows.append(
            [
                escape(risk_words(name, units)),
                escape(unit),
                span(
                    f"figures.{name}.p50",
                    stats["p50"],
                    format_count(stats["p50"], row_scale),
                    index,
                ),
                span(
                    f"figures.{name}.p90",
                    stats["p90"],
                    format_count(stats["p90"], row_scale),
                    index,
                ),
                span(
                    f"figures.{name}.mean",
                    stats["mean"],
                    format_count(stats["mean"], row_scale),
                    index,
                )
                + ' <span class="ci">('
                + escape(interval_text(interval, "count", row_scale))
                + ")</span>",
            ]
        )
    go_no_go = getattr(sc, "go_no_go", None)
    policy = summary.get("policy") or {}
    if go_no_go is not None and "no_go_days" in policy:
        stats = policy["no_go_days"]
        rows.append(
            [
                escape(RISK_FIGURES["no_go_days"]),
                "working days",
                *(
                    span(
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
        html_table(
            ["risk", "unit", "P50", "P90", "mean (95% CI)"],
            rows,
            [False, False, True, True, True],
        ),
    ]
    if "dumb" in names and dumb_may_recover(sc):
        out.append(f'<p class="note">{escape(DUMB_INCLUDES_RECOVERABLE)}</p>')
    values = {}
    for name in names:
        data = run.figure(name)
        # the table says what never varies; active/dormant dumb are parts of dumb
        if name in UNIT_OF and name not in _PARTS and np.ptp(data) > 0:
            unit = unit_word(UNIT_OF[name], units)
            values[f"{risk_words(name, units)} ({unit})"] = data * scale
    if charts and values:  # one row of four: the table has every figure
        values = dict(list(values.items())[:4])
        figure = risk_chart(values, sc.name, colour=colour, columns=4, width=11)
        out.append(img(figure, f"Risk figures across replications: {sc.name}"))
    return "".join(out)


def _difference(diff: float | None, days: bool, factor: float) -> str:
    if diff is None:
        return "undefined"
    return shift_words(diff) if days else signed(diff, factor)


def _difference_interval(ci: list | None, name: str, factor: float) -> str:
    """A paired difference's interval in the sign convention of the difference:
    days earlier or later for dates, signed for risks (never "+825 (222 to ...)")."""
    if ci is None or None in ci:
        return interval_text(ci, "count", factor)
    if name == "clearance_day":
        return days_interval(ci)
    return f"{signed(ci[0], factor)} to {signed(ci[1], factor)}"


def comparison_section(
    runs: Sequence[RunLike], comparison: dict, scale: float, units: str
) -> str:
    first = comparison["first"]
    out = [
        f"<p>Each scenario against <b>{escape(first)}</b>, replication by replication "
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
        " Dates move days earlier or later; for the risks, negative means lower."
        " Intervals are 95%: "
        "Student-t for means, a seeded paired bootstrap for quantiles.</p>"
    )
    header = [
        "scenario",
        "figure",
        "P50 difference (95% CI)",
        "P90 difference (95% CI)",
        "mean difference (95% CI)",
    ]
    rows = []
    for run in runs[1:]:
        entry = comparison["scenarios"][run.scenario.name]
        for name in [
            "clearance_day",
            *[
                n
                for n in RISK_FIGURES
                if n in entry["figures"] and n in UNIT_OF and shown(n, run.scenario)
            ],
        ]:
            cells = [
                escape(run.scenario.name),
                escape(
                    "clearance (days)"
                    if name == "clearance_day"
                    else risk_words(name, units)
                ),
            ]
            factor = 1.0 if name == "clearance_day" else scale
            for stat in ("p50", "p90", "mean"):
                item = entry["figures"][name][stat]
                diff = item["diff"]
                cells.append(
                    escape(_difference(diff, name == "clearance_day", factor))
                    + ' <span class="ci">('
                    + escape(_difference_interval(item["ci95"], name, factor))
                    + ")</span>"
                )
            rows.append(cells)
    out.append(html_table(header, rows, [False, False, True, True, True]))
    keys = ["p_clears_before_first", "p_clears_same_day", "p_clears_after_first"]
    header = ["scenario", f"clears before {first}", "same day", f"after {first}"]
    entries = [comparison["scenarios"][run.scenario.name] for run in runs[1:]]
    if any(entry.get("p_neither_clears") for entry in entries):
        keys.append("p_neither_clears")  # their order is unknown
        header.append("neither clears within its horizon")
    order_rows = [
        [escape(run.scenario.name), *(percent(entry.get(k, 0.0)) for k in keys)]
        for run, entry in zip(runs[1:], entries, strict=True)
    ]
    out.append(html_table(header, order_rows, [False] + [True] * len(keys)))
    notes = [
        (run.scenario.name, weak_pairing_note(entry["pairing"]["clearance_day"]))
        for run, entry in zip(runs[1:], entries, strict=True)
        if "pairing" in entry
    ]
    for name, note in notes:  # beside the shares, which stay shown: they are data
        if note:
            who = f"<b>{escape(name)}</b>: " if len(notes) > 1 else ""
            out.append(f'<p class="note">{who}{escape(note)}</p>')
    return "".join(out)


def provenance(
    runs: Sequence[RunLike], summaries: Sequence[dict], command: str | None
) -> str:
    rows = []
    for i, (run, summary) in enumerate(zip(runs, summaries, strict=True)):
        rows.append(
            [
                escape(run.scenario.name),
                span(
                    "migsim_version",
                    summary["migsim_version"],
                    summary["migsim_version"],
                    i,
                ),
                "<code>" + escape(summary.get("command") or "not recorded") + "</code>",
                span("seed", summary["seed"], str(summary["seed"]), i),
                span(
                    "replications",
                    summary["replications"],
                    f"{summary['replications']:,}",
                    i,
                ),
                "<code>"
                + span(
                    "scenario_sha256",
                    summary["scenario_sha256"],
                    summary["scenario_sha256"],
                    i,
                )
                + "</code>",
                escape(str(getattr(run, "directory", "in memory"))),
            ]
        )
    table = html_table(
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
        f"<p>Report made by migsim {escape(__version__)}"
        + (f" with <code>{escape(command)}</code>" if command else "")
        + ".</p>"
    )
    return table + made
