"""Charts of decisions and sensitivity: the frontier, tornado and Sobol charts.

Like every chart in `migsim.output.plots`, they are Agg figures made without
pyplot, and matplotlib loads only when one is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from migsim.output.plots import BAND_COLOUR, LINE_COLOUR, _subplots

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

__all__ = ["frontier_chart", "sobol_chart", "tornado_chart"]


def frontier_chart(
    candidates: pd.DataFrame,
    objective: str,
    budgets: list[tuple[str, float, str]],
    title: str,
) -> Figure:
    """Objective against each risk figure over the evaluated candidates.

    Parameters
    ----------
    candidates
        One row per candidate: column ``objective``, per budget ``label`` (the
        estimate) and ``label_bound`` (its upper confidence bound), ``verdict``
        (``safe``/``unsafe``) and ``is_answer``.
    objective
        The objective's column, e.g. ``clearance_day_p50`` (the y axis).
    budgets
        ``(label, limit, axis label)`` per budget: one panel each, the limit drawn.
    """
    n = len(budgets)
    fig, axes = _subplots(
        1, n, figsize=(4.2 * n + 0.6, 4.0), layout="constrained", squeeze=False
    )
    safe = candidates["verdict"] == "safe"
    y = candidates[objective].astype(float)
    for ax, (label, limit, axis_label) in zip(axes[0], budgets, strict=True):
        x = candidates[label].astype(float)
        bound = candidates[f"{label}_bound"].astype(float)
        right = (bound - x).clip(lower=0)
        finite = right.where(right.abs() < float("inf"), 0)
        ax.errorbar(
            x,
            y,
            xerr=[0 * finite, finite],
            fmt="none",
            ecolor="0.6",
            elinewidth=0.8,
            capsize=2,
        )
        ax.scatter(x[safe], y[safe], color=LINE_COLOUR, s=28, label="safe", zorder=3)
        ax.scatter(
            x[~safe],
            y[~safe],
            facecolors="white",
            edgecolors=LINE_COLOUR,
            s=28,
            marker="o",
            label="unsafe",
            zorder=3,
        )
        answer = candidates["is_answer"].astype(bool)
        if answer.any():
            ax.scatter(
                x[answer],
                y[answer],
                facecolors="none",
                edgecolors=LINE_COLOUR,
                s=160,
                linewidths=1.6,
                label="answer",
                zorder=4,
            )
        ax.axvline(
            limit,
            color=LINE_COLOUR,
            linestyle="--",
            linewidth=1.0,
            label=f"budget {limit:,g}",
        )
        ax.set_xlabel(f"{axis_label} (bar: upper bound)")
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0][0].set_ylabel(objective.replace("_", " "))
    axes[0][-1].legend(frameon=False, fontsize="small")
    fig.suptitle(title)
    return fig


def _tick(value: float, _position: int) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == 0 else f"{value:.3g}"


def _panels(count: int, height: float) -> tuple[Figure, list]:
    columns = 1 if count == 1 else 2
    rows = -(-count // columns)
    fig, axes = _subplots(
        rows,
        columns,
        figsize=(6.2 * columns, height * rows),
        layout="constrained",
        squeeze=False,
    )
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def tornado_chart(table: pd.DataFrame, base: dict[str, float] | None = None) -> Figure:
    """Tornado per figure: its swing as each field goes from low to high.

    The other fields stay at base.

    Parameters
    ----------
    table
        ``figure, field, value_low, value_high, swing``; within a figure the rows
        are drawn in table order from the top (largest swing first).
    base
        Per figure, its value with every field at base (the centre line).
    """
    figures = list(dict.fromkeys(table["figure"]))
    n_fields = table["field"].nunique()
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig, axes = _panels(len(figures), 0.42 * n_fields + 1.5)
    for ax, name in zip(axes, figures, strict=True):
        rows = table[table["figure"] == name].iloc[::-1]
        positions = list(range(len(rows)))
        low = rows["value_low"].astype(float).to_numpy()
        high = rows["value_high"].astype(float).to_numpy()
        ax.barh(
            positions,
            abs(high - low),
            left=[min(a, b) for a, b in zip(low, high, strict=True)],
            color=BAND_COLOUR,
            edgecolor=LINE_COLOUR,
            linewidth=0.6,
        )
        ax.scatter(
            low,
            positions,
            marker="<",
            color=LINE_COLOUR,
            s=16,
            label="field at low",
            zorder=3,
        )
        ax.scatter(
            high,
            positions,
            marker=">",
            color=LINE_COLOUR,
            s=16,
            label="field at high",
            zorder=3,
        )
        if base and name in base and base[name] is not None:
            ax.axvline(
                base[name], color=LINE_COLOUR, linewidth=1.0, label="all at base"
            )
        ax.set_yticks(positions, rows["field"].tolist(), fontsize="small")
        ax.set_title(name.replace("_", " "), fontsize="medium")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(FuncFormatter(_tick))
        ax.grid(True, axis="x", color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].legend(frameon=False, fontsize="x-small")
    fig.suptitle("What moves each figure: one field at a time (largest swing on top)")
    return fig


def sobol_chart(table: pd.DataFrame) -> Figure:
    """First-order and total Sobol indices per figure, with confidence intervals.

    ``table``: ``figure, field, s1, s1_ci, st, st_ci``, largest total index first.
    """
    figures = list(dict.fromkeys(table["figure"]))
    n_fields = table["field"].nunique()
    fig, axes = _panels(len(figures), 0.5 * n_fields + 1.5)
    for ax, name in zip(axes, figures, strict=True):
        rows = table[table["figure"] == name].iloc[::-1]
        positions = list(range(len(rows)))
        ax.barh(
            [p + 0.2 for p in positions],
            rows["st"],
            height=0.38,
            xerr=rows["st_ci"],
            color=BAND_COLOUR,
            edgecolor=LINE_COLOUR,
            linewidth=0.6,
            label="total (ST)",
            ecolor="0.4",
        )
        ax.barh(
            [p - 0.2 for p in positions],
            rows["s1"],
            height=0.38,
            xerr=rows["s1_ci"],
            color=LINE_COLOUR,
            label="first order (S1)",
            ecolor="0.4",
        )
        ax.set_yticks(positions, rows["field"].tolist(), fontsize="small")
        ax.set_title(name.replace("_", " "), fontsize="medium")
        ax.grid(True, axis="x", color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].legend(frameon=False, fontsize="x-small")
    fig.suptitle(
        "What moves each figure: Sobol indices (bars: 95% confidence intervals)"
    )
    return fig
