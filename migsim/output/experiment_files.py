"""The folders `migsim decide` and `migsim sensitivity` write, charts included.

The experiments return data (`Decision`, `Sensitivity`); this module draws their
charts and writes each folder through `migsim.common.files.output_dir` (staged
beside its target, then renamed into place), so a kill never leaves half a
folder. matplotlib loads only when a chart is drawn, and the chart is drawn in
another process while the tables are written (`migsim.output.painter`): by the
``painter`` the command forked when it started, which has loaded matplotlib
while the experiment ran, where the caller passes one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from migsim.common.files import output_dir
from migsim.common.stats import percent
from migsim.common.store import ENTRIES, MANIFEST
from migsim.experiments.decision import Decision
from migsim.experiments.question import BudgetSpec
from migsim.experiments.sensitivity import Sensitivity
from migsim.output.painter import Painter, drawn_aside

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

__all__ = [
    "frontier_figure",
    "sensitivity_figure",
    "write_decision",
    "write_sensitivity",
]


def _save_png(figure: Figure, path: Path) -> None:
    """Write a chart as PNG (an Agg figure outside pyplot: no closing)."""
    figure.savefig(path, dpi=110, format="png")


# --------------------------------------------------------------------------- decide
def frontier_figure(decision: Decision) -> Figure:
    """Objective against each risk figure over the candidates (``frontier.png``)."""
    from migsim.output.decision_plots import frontier_chart
    from migsim.output.report_basis import lever_words

    q = decision.question
    budgets = [(b.label, b.limit, _budget_axis_label(b)) for b in q.budgets]
    lever = q.levers[0].path if len(q.levers) == 1 else None
    return frontier_chart(
        decision.candidates_frame(),
        q.objective.label,
        budgets,
        f"{q.name}: candidates at {percent(q.confidence)} confidence",
        start_date=q.scenario.start_date,
        lever=lever,
        lever_label=None if lever is None else lever_words(lever, q.scenario)[0],
    )


def _budget_axis_label(budget: BudgetSpec) -> str:
    """A budget's panel title in words: "P(more than 100 devices left dumb)"."""
    from migsim.output.report_sections import RISK_FIGURES

    what = RISK_FIGURES.get(budget.figure, budget.figure.replace("_", " "))
    if budget.kind == "chance":
        return f"P(more than {budget.exceeds:,g} {what})"
    return f"{what}, {str(budget.statistic).upper()}"


def _draw_frontier(decision: Decision, path: Path) -> None:
    _save_png(frontier_figure(decision), path)


def write_decision(
    decision: Decision,
    directory: str | Path,
    *,
    overwrite: bool = False,
    painter: Painter | None = None,
) -> Path:
    """Write decision.json, candidates.csv, frontier.png, question.yaml and
    scenario.yaml into ``directory``, atomically (staged, then renamed).

    An existing non-empty folder is replaced only with ``overwrite``, or when it
    is the store the decision was evaluated in (``decide(..., directory=...)``,
    as ``migsim decide -o`` does): its ``manifest.json`` and ``points`` are
    carried over, so a rerun still resumes from them. ``painter``: the process
    made ready to draw frontier.png (`migsim.output.painter.chart_painter`).
    """
    keep = ENTRIES if _evaluated_in(decision, Path(directory)) else ()
    with (
        output_dir(directory, overwrite=overwrite or bool(keep), keep=keep) as out,
        drawn_aside(painter, _draw_frontier, decision, out / "frontier.png"),
    ):
        _write_text(
            out / "decision.json", json.dumps(decision.to_dict(), indent=2) + "\n"
        )
        decision.candidates_frame().to_csv(out / "candidates.csv", index=False)
        _write_text(out / "question.yaml", decision.question.to_yaml())
        _write_text(out / "scenario.yaml", decision.question.scenario.to_yaml())
    return Path(directory)


def _evaluated_in(decision: Decision, folder: Path) -> bool:
    """Whether ``folder`` holds the store of this decision's definition."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    stored = manifest.get("definition") or {}
    return (
        stored.get("question_sha256") == decision.question.sha256
        and stored.get("scenario_sha256") == decision.question.scenario.sha256
        and stored.get("seed") == decision.seed
        and stored.get("replications") == decision.replications
        and stored.get("max_replications") == decision.max_replications
    )


# ------------------------------------------------------------------------ sensitivity
def sensitivity_figure(result: Sensitivity) -> Figure:
    """Tornado (oat) or Sobol index bars (sobol), one panel per figure."""
    from migsim.output.decision_plots import sobol_chart, tornado_chart

    if result.method == "oat":
        return tornado_chart(result.table, result.base)
    return sobol_chart(result.table)


def _draw_sensitivity(result: Sensitivity, path: Path) -> None:
    _save_png(sensitivity_figure(result), path)


def write_sensitivity(
    result: Sensitivity,
    directory: str | Path,
    *,
    overwrite: bool = False,
    painter: Painter | None = None,
) -> Path:
    """Write sensitivity.csv, sensitivity.json, tornado.png or sobol.png and
    scenario.yaml into ``directory``, atomically (staged, then renamed).

    Raises
    ------
    FileExistsError
        When ``directory`` holds files and ``overwrite`` is not set.
    """
    name = "tornado.png" if result.method == "oat" else "sobol.png"
    with (
        output_dir(directory, overwrite=overwrite) as out,
        drawn_aside(painter, _draw_sensitivity, result, out / name),
    ):
        result.table.to_csv(out / "sensitivity.csv", index=False)
        _write_text(
            out / "sensitivity.json", json.dumps(result.to_dict(), indent=2) + "\n"
        )
        _write_text(out / "scenario.yaml", result.scenario.to_yaml())
    return Path(directory)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
