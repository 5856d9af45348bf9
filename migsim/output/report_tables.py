"""The report's table sections: risks, the comparison, provenance, the basis.

Like the other sections (`migsim.output.report_sections`), each turns finished
runs into HTML and never simulates.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from migsim import __version__
from migsim.evidence.forecast import RunLike
from migsim.output.html import (
    escape,
    format_count,
    format_number,
    html_table,
    img,
    interval_text,
    span,
    unit_word,
)
from migsim.output.plots import risk_chart
from migsim.output.report_sections import (
    OTHER_UNITS,
    RISK_FIGURES,
    UNIT_OF,
    shown,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.experiments.decision import SavedDecision

__all__ = ["basis_section", "comparison_section", "provenance", "risk_section"]


def risk_section(
    run: RunLike,
    summary: dict,
    index: int,
    scale: float,
    units: str,
    charts: bool = True,
) -> str:
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
                escape(RISK_FIGURES[name]),
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
                + '<br><span class="note">95% CI '
                + escape(interval_text(interval, "count", row_scale))
                + "</span>",
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
        f"<h3>{escape(sc.name)}</h3>",
        html_table(
            ["risk", "unit", "P50", "P90", "mean"],
            rows,
            [False, False, True, True, True],
        ),
    ]
    values = {}
    for name in names:
        if name in UNIT_OF:
            unit = unit_word(UNIT_OF[name], units)
            values[f"{RISK_FIGURES[name]} ({unit})"] = run.figure(name) * scale
    if charts:
        out.append(img(risk_chart(values, sc.name), "Risk figures across replications"))
    return "".join(out)


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
                if n in entry["figures"] and n in UNIT_OF and shown(n, run.scenario)
            ],
        ]:
            cells = [
                escape(run.scenario.name),
                escape(
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
                    escape(text)
                    + '<br><span class="note">95% CI '
                    + escape(interval_text(item["ci95"], "count", factor))
                    + "</span>"
                )
            rows.append(cells)
    out.append(html_table(header, rows, [False, False, True, True, True]))
    order_rows = [
        [
            escape(run.scenario.name),
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
        html_table(
            ["scenario", f"clears before {first}", "same day", f"after {first}"],
            order_rows,
            [False, True, True, True],
        )
    )
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


def basis_section(decision: SavedDecision) -> str:
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
                cells.append(escape(f"{value:.1%}"))
            elif isinstance(value, int | float | np.number) and not isinstance(
                value, bool
            ):
                cells.append(escape(format_number(float(value))))
            else:
                cells.append(escape("" if pd.isna(value) else value))
        if bool(row["is_answer"]):
            cells = [f"<b>{c}</b>" for c in cells]
        rows.append(cells)
    numeric = [c not in ("verdict", "broke") for c in columns]
    png = base64.b64encode(decision.frontier_png).decode("ascii")
    replications = data["replications"]
    return "\n".join(
        [
            '<h2 id="basis">Basis for increasing volumes</h2>',
            f"<p>The question <code>{escape(data['question'])}</code>: the best "
            f"{escape(', '.join(levers))} whose risks stay inside the budget, "
            f"every budget judged on its {data['confidence']:.0%} upper confidence "
            "bound (Clopper-Pearson for a chance, an order statistic for a "
            "quantile).</p>",
            '<p class="answer" id="basis-answer">'
            + "<br>".join(escape(line) for line in answer)
            + "</p>",
            '<img alt="frontier: objective against each risk figure" '
            f'src="data:image/png;base64,{png}">',
            "<h3>Evidence: every candidate evaluated</h3>",
            html_table(columns, rows, numeric),
            f'<p class="note">{escape(search)} '
            f"{data['candidates_evaluated']} candidates, "
            f"{replications['spent']:,} replications (at first "
            f"{replications['initial']:,} each, doubled up to {replications['max']:,} "
            f"where the evidence was not decisive), seed {data['seed']}; question "
            f"sha256 <code>{escape(data['question_sha256'])}</code>, scenario sha256 "
            f"<code>{escape(data['scenario_sha256'])}</code>.</p>",
        ]
    )
