"""The backtest chart: a panel per forecast's as-of date, in a grid, and the PIT.

A rolling backtest (``--every month``) makes a dozen forecasts or more, and in
one row their panels shrank to slivers with the legend repeated in each. So the
panels sit in a grid of at most `MAX_COLUMNS` columns, share one y scale and
one date range (a band is compared with the next at a glance, the narrowing is
visible), carry one legend for the figure, and each title says how many of the
actual points after its as-of date fell inside P10-P90. Past `MAX_PANELS`
as-of dates the chart draws evenly spaced ones and says so: the figure stays
within about 1,630 x 2,200 px at the 110 dpi `migsim backtest` saves at, and
``backtest.json`` and ``backtest_points.csv`` still hold every forecast.

Like every chart in `migsim.output.plots`, it is an Agg figure made without
pyplot, and matplotlib loads only when it is drawn.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from migsim.output.plots import (
    ACTUAL_COLOUR,
    BAND_COLOUR,
    LINE_COLOUR,
    _actuals_fan,
    _date_axis,
    _subplots,
    _thousands,
    date_limits,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

__all__ = ["MAX_COLUMNS", "MAX_PANELS", "backtest_chart", "grid_shape", "shown_as_of"]

#: Panels to a row: four stay legible on a landscape page or a laptop screen.
MAX_COLUMNS = 4
#: As-of dates drawn at most (two years of month ends); more are thinned evenly.
MAX_PANELS = 24
#: Inches per panel, for the title lines and the legend above the grid, and
#: the most the figure may be tall (panels get shorter beyond that).
PANEL_WIDTH = 3.7
PANEL_HEIGHT = 2.8
HEADING_HEIGHT = 1.3
MAX_HEIGHT = 20.0
#: Legend entries, in the order a reader meets them in a panel.
_LEGEND_ORDER = (
    "P5-P95",
    "P10-P90",
    "median (P50)",
    "actuals up to the as-of date (used)",
    "actuals after it (scored)",
    "as-of date",
    "PIT if calibrated (flat)",
)


def shown_as_of(n: int, most: int = MAX_PANELS) -> list[int]:
    """Which of ``n`` as-of dates get a panel: all, or ``most`` evenly spaced.

    The first and the last are always drawn: the forecast made before anything
    happened and the one made with the most actuals.
    """
    if n <= most:
        return list(range(n))
    if most < 2:
        return [n - 1][:most]
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def grid_shape(panels: int) -> tuple[int, int]:
    """(rows, columns) of the grid for ``panels`` forecast panels and the PIT's."""
    cells = panels + 1
    columns = min(MAX_COLUMNS, cells)
    return math.ceil(cells / columns), columns


def backtest_chart(
    panels: Sequence[dict[str, Any]],
    pit_counts: Sequence[int],
    title: str,
    unit: str = "installations",
) -> Figure:
    """Backtest: per as-of date the forecast band with the actual points, and the PIT.

    Parameters
    ----------
    panels
        One per as-of date, in date order (`Backtest.panels`): ``{"as_of",
        "bands" (date, p5, p10, p50, p90, p95 of cumulative migrated), "before"
        and "after" (date, cumulative_migrated)}``, and optionally ``n_points``
        and ``coverage_p10_p90`` of the points scored after it (the title).
    pit_counts
        Counts of the probability integral transform in equal bins, pooled over
        every as-of date.
    """
    drawn = [panels[i] for i in shown_as_of(len(panels))]
    rows, columns = grid_shape(len(drawn))
    height = min(PANEL_HEIGHT, (MAX_HEIGHT - HEADING_HEIGHT) / rows)
    fig, axes = _subplots(
        rows,
        columns,
        figsize=(PANEL_WIDTH * columns, height * rows + HEADING_HEIGHT),
        squeeze=False,
    )
    cells = list(axes.flat)
    for ax in cells[len(drawn) + 1 :]:
        ax.remove()
    forecast_axes = cells[: len(drawn)]
    for i, (ax, panel) in enumerate(zip(forecast_axes, drawn, strict=True)):
        if i:
            ax.sharex(forecast_axes[0])
            ax.sharey(forecast_axes[0])
        _forecast_panel(ax, panel)
        if i % columns == 0:
            ax.set_ylabel(f"{unit} migrated\n(cumulative)")
        else:
            ax.tick_params(labelleft=False)
        if i + columns < len(drawn):  # a forecast panel below shows the dates
            ax.tick_params(labelbottom=False)
            ax.xaxis.offsetText.set_visible(False)
    if drawn:
        first = forecast_axes[0]
        date_limits(first, *_date_range(drawn))
        first.set_ylim(0, _top(drawn))
        _thousands(first)
        for ax in forecast_axes:
            _date_axis(ax)
    _pit_panel(cells[len(drawn)], pit_counts, len(panels))
    fig.suptitle(_heading(title, panels, len(drawn), fig.get_figwidth()), fontsize=11)
    found: dict[str, Any] = {}
    for ax in cells[: len(drawn) + 1]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(label, handle)
    labels = [label for label in _LEGEND_ORDER if label in found]
    fig.legend(
        [found[label] for label in labels],
        labels,
        loc="outside lower center",
        ncol=len(labels) if columns >= 4 else math.ceil(len(labels) / 2),
        frameon=False,
        fontsize=8.5,
    )
    return fig


def _forecast_panel(ax, panel: dict[str, Any]) -> None:
    """One forecast: its bands, the actuals it used (filled) and scored (open)."""
    _actuals_fan(ax, panel["bands"])
    before, after = panel["before"], panel["after"]
    if len(before):
        ax.plot(
            before["date"],
            before["cumulative_migrated"],
            "o",
            color=ACTUAL_COLOUR,
            markersize=2.5,
            label=_LEGEND_ORDER[3],
        )
    if len(after):
        ax.plot(
            after["date"],
            after["cumulative_migrated"],
            "o",
            mfc="white",
            color=ACTUAL_COLOUR,
            markersize=3,
            markeredgewidth=0.7,
            label=_LEGEND_ORDER[4],
        )
    ax.axvline(
        pd.Timestamp(panel["as_of"]),
        color="0.4",
        linestyle="--",
        linewidth=0.9,
        label=_LEGEND_ORDER[5],
    )
    ax.set_title(_panel_title(panel), fontsize=9.5)


def _panel_title(panel: dict[str, Any]) -> str:
    """``as of 2020-02-29`` and, below, the share of its scored points in P10-P90."""
    head = f"as of {panel['as_of']}"
    if "coverage_p10_p90" not in panel:
        return head
    if not panel.get("n_points"):
        return f"{head}\nno later actuals to score"
    return (
        f"{head}\n{panel['coverage_p10_p90']:.0%} inside P10-P90 "
        f"({panel['n_points']:,} points)"
    )


def _pit_panel(ax, pit_counts: Sequence[int], forecasts: int) -> None:
    """The PIT as shares of the points, against the flat share of a calibrated one."""
    from matplotlib.ticker import PercentFormatter

    bins = len(pit_counts)
    total = sum(pit_counts)
    shares = [c / total if total else 0.0 for c in pit_counts]
    ax.bar(
        [i / bins for i in range(bins)],
        shares,
        width=1 / bins,
        align="edge",
        color=BAND_COLOUR,
        edgecolor=LINE_COLOUR,
        linewidth=0.6,
    )
    ax.axhline(
        1 / bins,
        color=LINE_COLOUR,
        linestyle=":",
        linewidth=1.3,
        label=_LEGEND_ORDER[6],
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max([*shares, 1 / bins]) * 1.15)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    pooled = {1: "its as-of date", 2: "both as-of dates"}.get(
        forecasts, f"all {forecasts} as-of dates"
    )
    ax.set_title(f"PIT histogram\n{total:,} points, {pooled}", fontsize=9.5)
    ax.set_xlabel("forecast CDF at the actual")
    ax.set_ylabel("share of points")


def _heading(title: str, panels: Sequence[dict], drawn: int, width: float) -> str:
    """The figure's title, the pooled coverage, and which as-of dates are drawn."""
    n = len(panels)
    lines = [f"Backtest: {title}"]
    points = sum(p.get("n_points") or 0 for p in panels)
    if all("coverage_p10_p90" in p for p in panels):
        inside = sum(
            (p["coverage_p10_p90"] or 0) * (p.get("n_points") or 0) for p in panels
        )
        lines.append(
            f"{n} forecast{'s' if n != 1 else ''}, {points:,} actual points scored"
            + (
                f": {inside / points:.0%} inside P10-P90 (nominal 80%)"
                if points
                else ""
            )
        )
    if drawn < n:
        lines.append(
            f"showing {drawn} of {n} as-of dates, evenly spaced; "
            "backtest.json and backtest_points.csv hold all"
        )
    chars = max(30, int(width * 72 / (11 * 0.6)))
    return "\n".join(line for text in lines for line in textwrap.wrap(text, chars))


def _date_range(drawn: Sequence[dict]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """From the first actual or forecast day to a margin after the last change.

    The last change is where any band or the actuals stop moving, or the last
    as-of date: a programme cleared in spring would otherwise leave most of
    every panel flat lines to the horizon's end.
    """
    starts, ends = [], []
    for panel in drawn:
        bands = panel["bands"]
        starts.append(bands["date"].iloc[0])
        ends.append(pd.Timestamp(panel["as_of"]))
        columns = [c for c in ("p5", "p10", "p50", "p90", "p95") if c in bands]
        ends.append(_moving_until(bands["date"], bands[columns]))
        for part in ("before", "after"):
            actual = panel[part]
            if len(actual):
                starts.append(actual["date"].iloc[0])
                migrated = actual[["cumulative_migrated"]]
                ends.append(_moving_until(actual["date"], migrated))
    start, end = min(starts), max(ends)
    margin = max(pd.Timedelta(days=7), (end - start) * 0.06)
    return start, end + margin


def _moving_until(dates: pd.Series, values: pd.DataFrame) -> pd.Timestamp:
    """The last date on which any of ``values`` differs from the day before."""
    moved = values.diff().fillna(0).ne(0).any(axis=1).to_numpy()
    where = moved.nonzero()[0]
    return pd.Timestamp(dates.iloc[where[-1] if len(where) else 0])


def _top(drawn: Sequence[dict]) -> float:
    """The shared y scale's top: the highest band or actual point, plus room."""
    highs = [1.0]
    for panel in drawn:
        bands = panel["bands"]
        columns = [c for c in ("p95", "p90", "p50") if c in bands]
        highs.append(float(bands[columns].to_numpy().max()))
        for part in ("before", "after"):
            if len(panel[part]):
                highs.append(float(panel[part]["cumulative_migrated"].max()))
    return max(highs) * 1.05
