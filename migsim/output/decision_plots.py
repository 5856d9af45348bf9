"""Charts of decisions and sensitivity: the frontier, tornado and Sobol charts.

Like every chart in `migsim.output.plots`, they are Agg figures made without
pyplot, and matplotlib loads only when one is drawn.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from migsim.experiments.question import value_words
from migsim.output.plots import BAND_COLOUR, LINE_COLOUR, _subplots, date_locator

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

__all__ = ["frontier_chart", "sobol_chart", "tornado_chart"]


def frontier_chart(
    candidates: pd.DataFrame,
    objective: str,
    budgets: list[tuple[str, float, str]],
    title: str,
    *,
    start_date: date | None = None,
    lever: str | None = None,
    lever_label: str | None = None,
) -> Figure:
    """Objective against each risk figure over the evaluated candidates.

    One panel per budget (two to a row), the budget drawn and labelled, points
    labelled with their lever value where the label has room (the answer
    first), one legend for every panel, and dates rather than day numbers.

    Parameters
    ----------
    candidates
        One row per candidate: column ``objective``, per budget ``label`` (the
        estimate) and ``label_bound`` (its upper confidence bound), ``verdict``
        (``safe``/``unsafe``), ``is_answer`` and the lever's column.
    objective
        The objective's column, e.g. ``clearance_day_p50`` (the y axis).
    budgets
        ``(label, limit, axis label)`` per budget: one panel each, the limit drawn.
    start_date
        With a ``clearance_day_*`` objective: draw dates (start + days).
    lever, lever_label
        The lever's column (its values label the points) and its name in words.
    """
    import math

    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

    n = len(budgets)
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    fig, axes = _subplots(
        rows,
        cols,
        figsize=(5.8 * cols, 3.5 * rows + 1.0),
        layout="constrained",
        squeeze=False,
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    days = candidates[objective].astype(float)
    as_dates = start_date is not None and objective.startswith("clearance_day")
    if as_dates:
        # a candidate that does not clear within the horizon has no date to draw
        candidates = candidates[days.abs() != float("inf")]
        days = candidates[objective].astype(float)
        y = pd.Timestamp(start_date) + pd.to_timedelta(days, unit="D")
    else:
        y = days
    safe = (candidates["verdict"] == "safe").to_numpy()
    answer = candidates["is_answer"].astype(bool).to_numpy()
    for ax, (label, limit, axis_label) in zip(flat, budgets, strict=False):
        x = candidates[label].astype(float)
        bound = candidates[f"{label}_bound"].astype(float)
        right = (bound - x).clip(lower=0)
        finite = right.where(right.abs() < float("inf"), 0)
        drawn = (y.notna() & x.notna()).to_numpy()  # a candidate that never clears
        ax.errorbar(
            x[drawn],
            y[drawn],
            xerr=[0 * finite[drawn], finite[drawn]],
            fmt="none",
            ecolor="0.6",
            elinewidth=0.8,
            capsize=2,
        )
        ax.scatter(x[safe], y[safe], color=LINE_COLOUR, s=26, zorder=3)
        ax.scatter(
            x[~safe],
            y[~safe],
            facecolors="white",
            edgecolors=LINE_COLOUR,
            s=26,
            zorder=3,
        )
        if answer.any():
            ax.scatter(
                x[answer],
                y[answer],
                facecolors="none",
                edgecolors="#D55E00",
                s=170,
                linewidths=1.8,
                zorder=4,
            )
        ax.axvline(limit, color="#D55E00", linestyle="--", linewidth=1.1)
        chance = axis_label.startswith("P(")
        shown = value_words("chance" if chance else "quantile", limit)
        ax.annotate(
            f"budget {shown}",
            xy=(limit, 1),
            xycoords=("data", "axes fraction"),
            xytext=(-3, -4),
            textcoords="offset points",
            ha="right",
            va="top",
            rotation=90,
            fontsize=8,
            color="#D55E00",
        )
        ax.set_title(axis_label, fontsize=10, loc="left")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(
            PercentFormatter(1.0, decimals=0) if chance else FuncFormatter(_tick)
        )
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
        if as_dates:
            import matplotlib.dates as mdates

            locator = date_locator(minticks=3, maxticks=5)
            ax.yaxis.set_major_locator(locator)
            ax.yaxis.set_major_formatter(mdates.DateFormatter("%-d %b %Y"))
    statistic = objective.rsplit("_", 1)[-1].upper()
    for ax in flat[:n:cols]:
        ax.set_ylabel(
            f"backlog clears ({statistic})" if as_dates else objective.replace("_", " ")
        )
    for ax in flat[max(0, n - cols) : n]:
        ax.set_xlabel("estimate; bar to its upper confidence bound", fontsize=9)
    handles = [
        Line2D([], [], marker="o", color=LINE_COLOUR, linestyle="", label="safe"),
        Line2D(
            [],
            [],
            marker="o",
            markerfacecolor="white",
            color=LINE_COLOUR,
            linestyle="",
            label="not shown safe",
        ),
        Line2D(
            [],
            [],
            marker="o",
            markerfacecolor="none",
            markeredgecolor="#D55E00",
            markersize=12,
            linestyle="",
            label="the answer",
        ),
        Line2D([], [], color="#D55E00", linestyle="--", label="risk budget"),
    ]
    heading = (
        title if lever_label is None else f"{title}\npoints labelled by {lever_label}"
    )
    suptitle = fig.suptitle(heading, fontsize=11)
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False)
    if lever is not None and lever in candidates:
        every = _label_points(fig, flat[:n], budgets, candidates, y, lever, answer)
        if not every and lever_label is not None:  # say so, not "every point"
            suptitle.set_text(f"{heading} where a label fits")
    return fig


#: Where a point's label may go, tried in turn (offset in points, alignment):
#: above right, below right, above left, below left.
_LABEL_PLACES = (
    ((5, 4), "left", "bottom"),
    ((5, -4), "left", "top"),
    ((-5, 4), "right", "bottom"),
    ((-5, -4), "right", "top"),
)


def _label_points(fig, axes, budgets, candidates, y, lever, answer) -> bool:
    """Label points with their lever value where the label has room; whether
    every drawn point got one.

    The layout is fixed first, so every label is placed where it will be drawn.
    Each label tries the places of `_LABEL_PLACES` in turn and takes the first
    that neither touches another text, another candidate's point or bar, or
    the panel's budget line, nor leaves its panel; with none, it is left out.
    The answer is labelled first, then the others from the highest value down.
    """
    fig.draw_without_rendering()  # the layout, without painting a pixel
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    values = candidates[lever].to_numpy()
    order = sorted(
        range(len(values)), key=lambda i: (not answer[i], _descending(values[i]))
    )
    taken = _text_boxes(fig, renderer)  # every label placed is added to it
    every = True
    for ax, (label, limit, _axis) in zip(axes, budgets, strict=False):
        inside = ax.get_window_extent(renderer)
        x = candidates[label].astype(float).to_numpy()
        bound = candidates[f"{label}_bound"].astype(float).to_numpy()
        bars = _bar_boxes(ax, x, bound, y, answer)
        line = _line_box(ax, limit)
        for i in order:
            if pd.isna(y.iloc[i]) or not pd.notna(x[i]):
                continue
            others = [bar for j, bar in bars.items() if j != i] + [line]
            for offset, ha, va in _LABEL_PLACES:
                text = ax.annotate(
                    _lever_text(values[i]),
                    (x[i], y.iloc[i]),
                    xytext=offset,
                    textcoords="offset points",
                    ha=ha,
                    va=va,
                    fontsize=7.5,
                    color="#D55E00" if answer[i] else "0.25",
                    fontweight="bold" if answer[i] else "normal",
                )
                box = text.get_window_extent(renderer)
                clear = inside.contains(box.x0, box.y0) and inside.contains(
                    box.x1, box.y1
                )
                if clear and not any(box.overlaps(o) for o in taken + others):
                    taken.append(box)
                    break
                text.remove()
            else:
                every = False
    return every


def _descending(value) -> float:
    """A lever value's sort key, highest first: a number, or a date lever's
    ISO date (decide's date levers: an eligibility, a gate, a step)."""
    try:
        return -float(value)
    except (TypeError, ValueError):
        return -float(pd.Timestamp(str(value)).value)


def _lever_text(value) -> str:
    """A point's label: a number as the axis ticks read, a date as its date."""
    try:
        return _tick(float(value), 0)
    except (TypeError, ValueError):
        return str(value)[:10]


def _line_box(ax, limit: float):
    """The display box of a panel's budget line, a point either side."""
    from matplotlib.transforms import Bbox

    pad = ax.figure.dpi / 72
    panel = ax.get_window_extent()
    x = ax.transData.transform([(limit, 0)])[0][0]
    return Bbox([[x - pad, panel.y0], [x + pad, panel.y1]])


def _bar_boxes(ax, x, bound, y, answer=None) -> dict:
    """Display boxes of each candidate's point and bar in a panel, by row: a
    label laid over another candidate's bar reads as another number ("30,000"
    struck through reads "80,000"). The answer's point has its ring about it."""
    from matplotlib.transforms import Bbox

    boxes = {}
    for i in range(len(x)):
        # a point's marker, 3 points about its centre; the answer's ring, 8
        pad = (8 if answer is not None and answer[i] else 3) * ax.figure.dpi / 72
        if pd.isna(y.iloc[i]) or not np.isfinite(x[i]):
            continue
        level = ax.yaxis.convert_units(y.iloc[i])  # a date where dates are drawn
        end = bound[i] if np.isfinite(bound[i]) else x[i]
        (x0, y0), (x1, _) = ax.transData.transform([(x[i], level), (end, level)])
        boxes[i] = Bbox([[x0 - pad, y0 - pad], [max(x0, x1) + pad, y0 + pad]])
    return boxes


def _text_boxes(fig, renderer) -> list:
    """Window extents of every text drawn now (tick labels of drawn ticks only)."""
    from matplotlib.text import Text

    stale = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = (high - low) * 1e-9
            for tick in axis.get_major_ticks():
                if not low - slack <= tick.get_loc() <= high + slack:
                    stale.update({id(tick.label1), id(tick.label2)})
    return [
        t.get_window_extent(renderer)
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and id(t) not in stale
    ]


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


def tornado_chart(
    table: pd.DataFrame, base: dict[str, float | None] | None = None
) -> Figure:
    """Tornado per figure: its swing as each field goes from low to high.

    The other fields stay at base.

    Parameters
    ----------
    table
        ``figure, field, value_low, value_high, swing``; within a figure the rows
        are drawn in table order from the top (largest swing first).
    base
        Per figure, its value with every field at base (the centre line).

    A figure no field moved (every swing zero: in the baseline, the defect and
    ELS figures of sections it does not have) gets no panel of its own, only
    its name in a note below the panels: a page of empty panels hid the few
    that answer the question.
    """
    import textwrap

    from matplotlib.ticker import FuncFormatter, MaxNLocator

    swing = table["swing"].astype(float)
    moved = swing.ne(0) | swing.isna()  # +inf - +inf: a figure that never cleared
    figures = list(dict.fromkeys(table.loc[moved, "figure"]))
    still = [f for f in dict.fromkeys(table["figure"]) if f not in figures]
    if not figures:  # nothing moved: show them all rather than nothing
        figures, still = still, []
    n_fields = table["field"].nunique()
    fig, axes = _panels(len(figures), 0.42 * n_fields + 1.5)
    noisy = False
    for ax, name in zip(axes, figures, strict=True):
        rows = table[table["figure"] == name].iloc[::-1]
        positions = list(range(len(rows)))
        low = rows["value_low"].astype(float).to_numpy()
        high = rows["value_high"].astype(float).to_numpy()
        # a clearance day of +inf (not cleared by the horizon end) has no place
        # on the axis: its bar and marker are left out and the panel says so
        drawn = np.isfinite(low) & np.isfinite(high)
        at = np.asarray(positions)
        noise = _within_noise(rows) & drawn
        noisy |= bool(noise.any())
        for mine, hatch in ((drawn & ~noise, None), (noise, NOISE_HATCH)):
            if mine.any():
                ax.barh(
                    at[mine],
                    abs(high[mine] - low[mine]),
                    left=np.minimum(low[mine], high[mine]),
                    color="white" if hatch else BAND_COLOUR,
                    edgecolor=LINE_COLOUR,
                    hatch=hatch,
                    linewidth=0.6,
                )
        low = np.where(np.isfinite(low), low, np.nan)  # NaN: scatter skips it
        high = np.where(np.isfinite(high), high, np.nan)
        title = name.replace("_", " ")
        if not drawn.all():
            title += " (not cleared: not drawn)"
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
        centre = base.get(name) if base else None
        if centre is not None and np.isfinite(centre):
            ax.axvline(centre, color=LINE_COLOUR, linewidth=1.0, label="all at base")
        ax.set_yticks(positions, rows["field"].tolist(), fontsize="small")
        ax.set_title(title, fontsize="medium")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(FuncFormatter(_tick))
        ax.grid(True, axis="x", color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].legend(frameon=False, fontsize="x-small")
    fig.suptitle("What moves each figure: one field at a time (largest swing on top)")
    notes = []
    if noisy:
        notes.append(
            "Hatched: within noise (the 95% interval of the change holds 0); "
            "more replications would tell."
        )
    if still:
        names = ", ".join(name.replace("_", " ") for name in still)
        notes.append(f"Not moved by any field (no panel): {names}.")
    if notes:
        note = "\n".join(textwrap.fill(note, 110) for note in notes)
        fig.supxlabel(note, fontsize="small", ha="left", x=0.01)
    return fig


#: Hatch of a tornado bar whose change may be the replications' noise.
NOISE_HATCH = "////"


def _within_noise(rows: pd.DataFrame) -> np.ndarray:
    """Rows that moved but whose change's 95% interval holds 0 (tables from
    before the intervals: none)."""
    if "change_ci95_low" not in rows:
        return np.zeros(len(rows), dtype=bool)
    low = rows["change_ci95_low"].astype(float).to_numpy()
    high = rows["change_ci95_high"].astype(float).to_numpy()
    moved = rows["swing"].astype(float).to_numpy() != 0
    return moved & (low <= 0) & (high >= 0)


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
