"""Plots: tidy frames in, matplotlib figures out (never shown, never simulated).

Charts use the non-interactive Agg backend, planners' words in titles and axes,
dates on the x axis, and greys that survive a black-and-white printer.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["backlog_fan_chart", "frontier_chart", "plt", "sobol_chart", "tornado_chart"]

BAND_COLOUR = "0.75"
LINE_COLOUR = "0.1"


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)


def _active_until(bands: pd.DataFrame) -> pd.Timestamp:
    """Where the chart can end: a margin after the P90 backlog last changes.

    A year-long horizon with a backlog cleared in three months would otherwise
    leave most of the chart a flat line at zero.
    """
    dates = bands["date"]
    upper = bands["p90"].to_numpy()
    changes = (upper[1:] != upper[:-1]).nonzero()[0]
    if not len(changes):
        return dates.iloc[-1]
    last = changes[-1] + 1
    margin = max(7, int(0.15 * last))
    return dates.iloc[min(len(dates) - 1, last + margin)]


def backlog_fan_chart(bands: pd.DataFrame, title: str, unit: str = "installations") -> Figure:
    """Fan chart of installations not yet resolved: P10-P90 band and the median.

    Parameters
    ----------
    bands
        Columns ``date, p10, p50, p90`` (e.g. `Results.backlog_bands`).
    title
        Scenario name, shown in the title.
    """
    fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
    ax.fill_between(bands["date"], bands["p10"], bands["p90"], color=BAND_COLOUR,
                    label="P10-P90 of replications", linewidth=0)
    ax.plot(bands["date"], bands["p50"], color=LINE_COLOUR, linewidth=1.8,
            label="median (P50)")
    ax.set_title(f"Backlog still to migrate: {title}")
    ax.set_ylabel(f"{unit} not yet resolved")
    ax.set_xlabel("date")
    ax.set_ylim(bottom=0)
    ax.set_xlim(bands["date"].iloc[0], _active_until(bands))
    ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    _date_axis(ax)
    ax.legend(frameon=False)
    return fig


# --------------------------------------------------------------------------- decisions
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
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 0.6, 4.0), layout="constrained",
                             squeeze=False)
    safe = candidates["verdict"] == "safe"
    y = candidates[objective].astype(float)
    for ax, (label, limit, axis_label) in zip(axes[0], budgets):
        x = candidates[label].astype(float)
        bound = candidates[f"{label}_bound"].astype(float)
        right = (bound - x).clip(lower=0)
        finite = right.where(right.abs() < float("inf"), 0)
        ax.errorbar(x, y, xerr=[0 * finite, finite], fmt="none", ecolor="0.6",
                    elinewidth=0.8, capsize=2)
        ax.scatter(x[safe], y[safe], color=LINE_COLOUR, s=28, label="safe", zorder=3)
        ax.scatter(x[~safe], y[~safe], facecolors="white", edgecolors=LINE_COLOUR,
                   s=28, marker="o", label="unsafe", zorder=3)
        answer = candidates["is_answer"].astype(bool)
        if answer.any():
            ax.scatter(x[answer], y[answer], facecolors="none", edgecolors=LINE_COLOUR,
                       s=160, linewidths=1.6, label="answer", zorder=4)
        ax.axvline(limit, color=LINE_COLOUR, linestyle="--", linewidth=1.0,
                   label=f"budget {limit:,g}")
        ax.set_xlabel(f"{axis_label} (bar: upper bound)")
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0][0].set_ylabel(objective.replace("_", " "))
    axes[0][-1].legend(frameon=False, fontsize="small")
    fig.suptitle(title)
    return fig


def _panels(count: int, height: float) -> tuple[Figure, list]:
    columns = 1 if count == 1 else 2
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.2 * columns, height * rows),
                             layout="constrained", squeeze=False)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def tornado_chart(table: pd.DataFrame, base: dict[str, float] | None = None) -> Figure:
    """Tornado per figure: its swing as each field goes from low to high, the rest at base.

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
    fig, axes = _panels(len(figures), 0.42 * n_fields + 1.5)
    for ax, name in zip(axes, figures):
        rows = table[table["figure"] == name].iloc[::-1]
        positions = list(range(len(rows)))
        low = rows["value_low"].astype(float).to_numpy()
        high = rows["value_high"].astype(float).to_numpy()
        ax.barh(positions, abs(high - low), left=[min(a, b) for a, b in zip(low, high)],
                color=BAND_COLOUR, edgecolor=LINE_COLOUR, linewidth=0.6)
        ax.scatter(low, positions, marker="<", color=LINE_COLOUR, s=16,
                   label="field at low", zorder=3)
        ax.scatter(high, positions, marker=">", color=LINE_COLOUR, s=16,
                   label="field at high", zorder=3)
        if base and name in base and base[name] is not None:
            ax.axvline(base[name], color=LINE_COLOUR, linewidth=1.0, label="all at base")
        ax.set_yticks(positions, rows["field"].tolist(), fontsize="small")
        ax.set_title(name.replace("_", " "), fontsize="medium")
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
    for ax, name in zip(axes, figures):
        rows = table[table["figure"] == name].iloc[::-1]
        positions = list(range(len(rows)))
        ax.barh([p + 0.2 for p in positions], rows["st"], height=0.38,
                xerr=rows["st_ci"], color=BAND_COLOUR, edgecolor=LINE_COLOUR,
                linewidth=0.6, label="total (ST)", ecolor="0.4")
        ax.barh([p - 0.2 for p in positions], rows["s1"], height=0.38,
                xerr=rows["s1_ci"], color=LINE_COLOUR, label="first order (S1)",
                ecolor="0.4")
        ax.set_yticks(positions, rows["field"].tolist(), fontsize="small")
        ax.set_title(name.replace("_", " "), fontsize="medium")
        ax.grid(True, axis="x", color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].legend(frameon=False, fontsize="x-small")
    fig.suptitle("What moves each figure: Sobol indices (bars: 95% confidence intervals)")
    return fig
