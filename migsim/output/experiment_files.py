"""The folders `migsim decide` and `migsim sensitivity` write, charts included.

The experiments return data (`Decision`, `Sensitivity`); this module draws their
charts and writes every file, each atomically, so a kill never leaves half a
file. matplotlib loads only when a chart is drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from migsim.experiments.decision import Decision
from migsim.experiments.question import BudgetSpec
from migsim.experiments.sensitivity import Sensitivity
from migsim.experiments.study import atomic_write

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

__all__ = [
    "frontier_figure",
    "sensitivity_figure",
    "write_decision",
    "write_sensitivity",
]


def _save_png(figure: Figure, path: Path) -> None:
    """Write a chart as PNG atomically (an Agg figure outside pyplot: no closing)."""
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))


# --------------------------------------------------------------------------- decide
def frontier_figure(decision: Decision) -> Figure:
    """Objective against each risk figure over the candidates (``frontier.png``)."""
    from migsim.output.decision_plots import frontier_chart

    q = decision.question
    budgets = [(b.label, b.limit, _budget_axis_label(b)) for b in q.budgets]
    return frontier_chart(
        decision.candidates_frame(),
        q.objective.label,
        budgets,
        f"{q.name}: candidates at {q.confidence:.0%} confidence",
    )


def _budget_axis_label(budget: BudgetSpec) -> str:
    if budget.kind == "chance":
        return f"P({budget.figure} > {budget.exceeds:,g})"
    return f"{budget.figure} {str(budget.statistic).upper()}"


def write_decision(decision: Decision, directory: str | Path) -> Path:
    """Write decision.json, candidates.csv, frontier.png, question.yaml and
    scenario.yaml into ``directory`` (each file atomically)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    _write_text(
        target / "decision.json", json.dumps(decision.to_dict(), indent=2) + "\n"
    )
    frame = decision.candidates_frame()
    atomic_write(target / "candidates.csv", lambda tmp: frame.to_csv(tmp, index=False))
    _save_png(frontier_figure(decision), target / "frontier.png")
    _write_text(target / "question.yaml", decision.question.to_yaml())
    _write_text(target / "scenario.yaml", decision.question.scenario.to_yaml())
    return target


# ------------------------------------------------------------------------ sensitivity
def sensitivity_figure(result: Sensitivity) -> Figure:
    """Tornado (oat) or Sobol index bars (sobol), one panel per figure."""
    from migsim.output.decision_plots import sobol_chart, tornado_chart

    if result.method == "oat":
        return tornado_chart(result.table, result.base)
    return sobol_chart(result.table)


def write_sensitivity(
    result: Sensitivity, directory: str | Path, *, overwrite: bool = False
) -> Path:
    """Write sensitivity.csv, sensitivity.json, tornado.png or sobol.png and
    scenario.yaml into ``directory`` (each file atomically).

    Raises
    ------
    FileExistsError
        When ``directory`` holds files and ``overwrite`` is not set.
    """
    target = Path(directory)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target} exists (use --overwrite to replace it)")
    target.mkdir(parents=True, exist_ok=True)
    atomic_write(
        target / "sensitivity.csv", lambda tmp: result.table.to_csv(tmp, index=False)
    )
    _write_text(
        target / "sensitivity.json", json.dumps(result.to_dict(), indent=2) + "\n"
    )
    name = "tornado.png" if result.method == "oat" else "sobol.png"
    _save_png(sensitivity_figure(result), target / name)
    _write_text(target / "scenario.yaml", result.scenario.to_yaml())
    return target


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
