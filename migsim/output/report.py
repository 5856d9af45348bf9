"""Report: one self-contained HTML page for OPSG, from finished runs.

The first screen is the answer: when the backlog clears under each scenario in
plain words, one fan chart of every scenario on shared axes, and the key risks
with paired differences (noise reads "no clear difference"); with a decision,
the recommendation against the risk budget. Then what differs between the
scenarios, the basis of the decision, where the uncertainty comes from, each
scenario in detail, the paired comparison, an appendix of every sourced
assumption and the provenance. Images are PNGs embedded as base64, styles are
inline (with a print stylesheet for A4): the file opens in any browser with no
network.

A report renders runs; it never simulates (the CLI runs scenario files first).
Every number taken from a run's summary is printed inside an element carrying
``data-key`` (its dotted path in ``summary.json``) and ``data-value`` (the raw
value), so a test can check the page against ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from migsim import __version__
from migsim.common.errors import MigsimError
from migsim.evidence.forecast import (
    RunLike,
    ci95_section,
    p_clear_by_sections,
)
from migsim.experiments.compare import compare_runs
from migsim.output.html import (
    CSS,
    UNITS,
    escape,
    fold,
    format_count,
    format_date,
    unit_scale,
    wide_tables,
)
from migsim.output.meters import in_units
from migsim.output.report_assumptions import appendix_section, differences_section
from migsim.output.report_basis import (
    basis_section,
    budget_notes,
    check_question_scenario,
    decided,
    decision_scenario,
    recommendation,
)
from migsim.output.report_first import (
    fan_figure,
    headline,
    key_risks_table,
    risk_answer,
)
from migsim.output.report_sections import (
    RISK_FIGURES,
    charts_section,
    forecast_section,
    from_actuals,
)
from migsim.output.report_tables import (
    comparison_section,
    provenance,
    risk_section,
)
from migsim.output.report_uncertainty import variance_section
from migsim.output.scenario_charts import scenario_colour

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.experiments.decision import SavedDecision

__all__ = [
    "RISK_FIGURES",
    "UNITS",
    "format_count",
    "format_date",
    "render_report",
    "unit_scale",
]


#: The most scenarios whose chart shrinks to fit a desktop's first screen
#: beside their answer: three lines of a long ramp basis take about 340 px at
#: 1280 wide, leaving the chart some 75% of its size at 800 px high; the six
#: bundled nov2019 plans, set compact (`COMPACT_SCENARIOS`), about 78%. More
#: would leave it too small to read: it keeps its size under the answer.
FIT_SCENARIOS = 6

#: From this many scenarios a desktop sets the answer compact (html.CSS,
#: .lead.many): in the answer's own type four lines of the bundled ramps took
#: 346 px at 1280 x 800 and pushed the chart's lower half below the fold.
COMPACT_SCENARIOS = 4


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
        A finished decision (`migsim.experiments.decision.load_decision`): its
        recommendation on the first screen, then the section "Basis for
        increasing volumes" with its frontier and evidence. Its scenario must
        be among the runs.

    Raises
    ------
    MigsimError
        For ``--units meters`` without ``meters_per_installation``, runs that
        cannot be compared (different replication counts, same names), or a
        decision about a scenario none of the runs is.
    """
    if not runs:
        raise MigsimError("a report needs at least one run")
    verdict = {}  # the question's answer in a sentence, on its scenario's line
    if decision is not None:
        about = decision_scenario(decision).name
        check_question_scenario(about, [r.scenario.name for r in runs])
        verdict[about] = decided(decision)
    scales = [unit_scale(run.scenario, units) for run in runs]
    runs = [in_units(run, units) for run in runs]  # each replication's own ratio
    summaries = [_summary(run, by) for run in runs]
    comparison = compare_runs(runs) if len(runs) > 1 else None
    names = [r.scenario.name for r in runs]
    title = "When the SMETS1 backlog clears: " + ", ".join(names)
    first = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">migsim {escape(__version__)}: {len(runs)} scenario(s), '
        f"{runs[0].n_replications:,} replications each, counts in {escape(units)}. "
        "OPSG asked DCC: on what basis will volumes increase, and when?</p>",
        f'<p class="answer" id="answer">'
        f"{headline(runs, summaries, comparison, scales, units, verdict)}</p>",
    ]
    if charts:
        first.append(fan_figure(runs, summaries, scales, units))
    # the title, the answer and the chart fill a desktop's first screen: the
    # chart shrinks to fit (html.CSS, .lead.fit) when there are few enough
    # scenarios that it keeps a readable size; from four the answer is set
    # compact (.lead.many) to leave it that size
    classes = ["lead"]
    if len(runs) <= FIT_SCENARIOS:
        classes.append("fit")
    if len(runs) >= COMPACT_SCENARIOS:
        classes.append("many")
    first = [f'<div class="{" ".join(classes)}">', *first, "</div>"]
    if decision is not None:  # under the chart: above, it pushed the chart off
        first.append(  # a desktop's first screen
            f'<p class="answer recommendation" id="recommendation">'
            f"{recommendation(decision, runs)}</p>"
        )
    first.append(risk_answer(runs, summaries, comparison, scales, units))
    budgets = budget_notes(decision) if decision is not None else None
    first.append(key_risks_table(runs, summaries, comparison, scales, units, budgets))
    body = ['<section class="first-screen">', *first, "</section>"]
    body.append(differences_section(runs))
    if decision is not None:
        body.append(basis_section(decision))
    body.append(variance_section(runs, summaries))
    body.append('<h2 id="detail">Each scenario in detail</h2>')
    for i, (run, summary) in enumerate(zip(runs, summaries, strict=True)):
        colour = scenario_colour(i)
        parts = []
        if run.scenario.description:
            parts.append(
                f'<p class="note">{escape(" ".join(run.scenario.description.split()))}'
                "</p>"
            )
        parts.append(from_actuals(run, summary))
        parts.append(forecast_section(run, summary, i, scales[i], units))
        parts.append(risk_section(run, summary, i, scales[i], units, charts, colour))
        if charts:
            parts.append(charts_section(run, summary, scales[i], units, colour))
        body.append(
            fold(
                f"detail-{i}",
                (
                    "h3",
                    f'id="detail-{i}"',
                    f'<span class="swatch" style="background:{colour}"></span>'
                    + escape(run.scenario.name),
                ),
                "\n".join(part for part in parts if part),
                "its dates, risks and charts: open to read"
                if charts
                else "its dates and risks: open to read",
                unfolded=len(runs) == 1,  # a report of one: its detail is the read
            )
        )
    if comparison is not None:
        body.append('<h2 id="comparison">Paired comparison, every figure</h2>')
        body.append(comparison_section(runs, comparison, scales[0], units))
    body.append(appendix_section(runs))
    body.append('<h2 id="provenance">Provenance</h2>')
    body.append(provenance(runs, summaries, command))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        + wide_tables("\n".join(part for part in body if part))
        + "</body></html>\n"
    )
