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
    format_count,
    format_date,
    html_table,
    unit_scale,
)
from migsim.output.report_sections import (
    RISK_FIGURES,
    answer,
    assumption_rows,
    charts_section,
    forecast_section,
    from_actuals,
)
from migsim.output.report_tables import (
    basis_section,
    comparison_section,
    provenance,
    risk_section,
)

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
        A finished decision (`migsim.experiments.decision.load_decision`): adds the
        section "Basis for increasing volumes" with its answer, frontier and
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
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">SMETS1 migration forecast by migsim {escape(__version__)}, '
        f"{len(runs)} scenario(s), {first.n_replications:,} replications each. "
        f"Counts in {escape(units)}.</p>",
        "<h2>1. The question and the answer</h2>",
        "<p>OPSG asked DCC: on what basis will volumes increase, and when? "
        "When does the backlog clear, how sure is that, and what does it risk?</p>",
        f'<p class="answer" id="answer">'
        f"{answer(runs, summaries, comparison, scales[0], units)}</p>",
    ]
    if decision is not None:
        body.append(basis_section(decision))
    body.append("<h2>2. Assumptions</h2>")
    for run in runs:
        sc = run.scenario
        body.append(f"<h3>{escape(sc.name)}</h3>")
        if sc.description:
            body.append(f"<p>{escape(' '.join(sc.description.split()))}</p>")
        body.append(
            html_table(
                ["field", "value", "source"],
                [[escape(k), escape(v), escape(s)] for k, v, s in assumption_rows(sc)],
            )
        )
    body.append("<h2>3. Forecasts</h2>")
    for i, (run, summary) in enumerate(zip(runs, summaries, strict=True)):
        body.append(from_actuals(run, summary))
        body.append(forecast_section(run, summary, i, scales[i], units))
        if charts:
            body.append(charts_section(run, summary, scales[i], units))
    body.append("<h2>4. Risks</h2>")
    for i, (run, summary) in enumerate(zip(runs, summaries, strict=True)):
        body.append(risk_section(run, summary, i, scales[i], units, charts))
    body.append("<h2>5. Comparison</h2>")
    if comparison is not None:
        body.append(comparison_section(runs, comparison, scales[0], units))
    else:
        body.append(
            '<p class="note">One scenario: nothing to compare. Give several '
            "runs or scenario files to compare them.</p>"
        )
    body.append("<h2>6. Provenance</h2>")
    body.append(provenance(runs, summaries, command))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
