"""Charts of several scenarios on shared axes, each in its own colour and marker.

The report's first screen shows every scenario in one fan chart: the backlog
still to migrate on a linear axis (P5-P95 and P10-P90 bands, the median, a
marker at each scenario's P50 and P90 clearance dates) beside the same backlog
on a log axis over the last weeks, where the tail that sets the clearance date
lives. A scenario keeps its colour (`scenario_colour`) in every chart of a
report, so a reader matches them at a glance. matplotlib loads only when a
chart is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from migsim.output.plots import _fan, _subplots, date_limits, date_locator, tint

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

__all__ = [
    "SCENARIO_COLOURS",
    "SCENARIO_MARKERS",
    "ScenarioBands",
    "cohort_backlog_chart",
    "scenario_colour",
    "scenario_marker",
    "scenarios_fan_chart",
    "short_date",
    "tint",
]

#: Okabe-Ito colours: told apart by colour-blind readers; printed in grey the
#: first three are too close in lightness, so the shared chart adds a marker
#: each (`SCENARIO_MARKERS`). The first scenario (the baseline) is blue.
SCENARIO_COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
)


#: A shape per scenario on the shared chart. The Okabe-Ito blue, vermilion
#: and green are 46, 54 and 58 in lightness (CIE L*): printed in grey, three
#: medians, their clearance lines and their legend swatches looked alike.
SCENARIO_MARKERS = ("o", "s", "^", "D", "v", "P", "X")

#: The height of a row of the fan chart's legend, in inches (10 pt text).
_LEGEND_ROW = 0.21


def scenario_marker(index: int) -> str:
    """The marker of the report's ``index``-th scenario on the shared chart."""
    return SCENARIO_MARKERS[index % len(SCENARIO_MARKERS)]


def scenario_colour(index: int) -> str:
    """The colour of the report's ``index``-th scenario, the same in every chart."""
    return SCENARIO_COLOURS[index % len(SCENARIO_COLOURS)]


def short_date(when: date | pd.Timestamp) -> str:
    """``4 Mar 2020``: a date as the report writes it."""
    when = pd.Timestamp(when)
    return f"{when.day} {when:%b %Y}"


@dataclass(frozen=True)
class ScenarioBands:
    """One scenario's backlog bands and clearance dates, for a shared chart.

    Attributes
    ----------
    name
        The scenario's name (legend).
    bands
        ``date, p5, p10, p50, p90, p95`` of installations not yet resolved, in
        the report's units.
    p50, p90
        Clearance dates at P50 and P90; ``None`` when that quantile does not
        clear within the horizon.
    colour
        The scenario's colour (`scenario_colour`).
    """

    name: str
    bands: pd.DataFrame
    p50: date | None
    p90: date | None
    colour: str


def _until(series: Sequence[ScenarioBands]) -> pd.Timestamp:
    """A little after the last P95 backlog change of any scenario."""
    last = None
    for item in series:
        upper = item.bands["p95"].to_numpy()
        changes = (upper[1:] != upper[:-1]).nonzero()[0]
        index = (changes[-1] + 1) if len(changes) else len(upper) - 1
        margin = max(7, int(0.08 * index))
        end = item.bands["date"].iloc[min(len(upper) - 1, index + margin)]
        last = end if last is None else max(last, end)
    assert last is not None
    return pd.Timestamp(last)


def _tail_start(series: Sequence[ScenarioBands], total: float) -> pd.Timestamp:
    """Where the tail panel starts: when the first median falls under a tenth."""
    starts = []
    for item in series:
        below = item.bands["p50"].to_numpy() <= 0.1 * total
        if below.any():
            starts.append(item.bands["date"].iloc[int(below.argmax())])
    if not starts:
        return pd.Timestamp(series[0].bands["date"].iloc[len(series[0].bands) // 2])
    return pd.Timestamp(min(starts)) - pd.Timedelta(days=7)


def _date_ticks(ax, maxticks: int) -> None:
    import matplotlib.dates as mdates

    locator = date_locator(minticks=2, maxticks=maxticks)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _draw_fan(ax, item: ScenarioBands, log: bool, index: int) -> None:
    """One scenario's fan in its colour, with its P50 and P90 clearance dates.

    Its marker (`scenario_marker`) sits along the falling median and atop each
    clearance line, so the scenarios are told apart without colour; each
    scenario's markers start a little further along, so they do not pile up.
    """
    marker = scenario_marker(index)
    quantiles = ["p5", "p10", "p50", "p90", "p95"]
    floor = 0.8 if log else 0.0  # a zero backlog sits just under 1 on a log axis
    frame = item.bands.assign(
        **{q: np.maximum(item.bands[q], floor) for q in quantiles}
    )
    _fan(
        ax,
        frame,
        item.colour,
        tint(item.colour, 0.55),
        label=None,
        band_label=None,
        outer=tint(item.colour, 0.8),
        alpha=0.55,
        linewidth=2.0,
    )
    falling = frame[item.bands["p50"].to_numpy() > 0]  # not the flat zero after
    ax.plot(
        falling["date"],
        falling["p50"],
        linestyle="none",
        marker=marker,
        markevery=(0.04 + 0.05 * (index % 4), 0.22),
        color=item.colour,
        markeredgecolor="white",
        markersize=6,
    )
    for when, style in ((item.p50, "--"), (item.p90, ":")):
        if when is not None:
            ax.axvline(
                pd.Timestamp(when), color=item.colour, linestyle=style, linewidth=1.3
            )
            ax.plot(  # atop the line: whose clearance date it is
                [pd.Timestamp(when)],
                [1.0],
                marker=marker,
                color=item.colour,
                markersize=6,
                transform=ax.get_xaxis_transform(),
                clip_on=False,
            )


def scenarios_fan_chart(
    series: Sequence[ScenarioBands],
    total: float,
    unit: str = "installations",
    width: float = 11.0,
) -> Figure:
    """Every scenario's backlog on shared axes, with a log-scaled tail panel.

    Parameters
    ----------
    series
        One `ScenarioBands` per scenario, in the report's order.
    total
        The backlog at the start (the y axis of the main panel reaches it).
    width
        Figure width in inches (100 dpi in the report).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator

    # the legend of scenarios is one column (two ran under the key's with names
    # as long as the bundled ones): each row past three makes the figure
    # taller, so the panels keep their height
    rows = max(0, len(series) - 3)
    fig, (main, tail) = _subplots(
        1,
        2,
        figsize=(width, 4.3 + _LEGEND_ROW * rows),
        layout="constrained",
        gridspec_kw={"width_ratios": [2.1, 1]},
    )
    start = min(item.bands["date"].iloc[0] for item in series)
    until = _until(series)
    for index, item in enumerate(series):
        _draw_fan(main, item, log=False, index=index)
        _draw_fan(tail, item, log=True, index=index)
    date_limits(main, start, until)
    main.set_ylim(0, max(total, 1) * 1.04)
    main.set_ylabel(f"{unit} still to migrate")
    main.set_title("Backlog still to migrate, every scenario", loc="left", fontsize=11)
    main.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    _date_ticks(main, 8)
    tail_from = _tail_start(series, total)
    date_limits(tail, tail_from, until)
    tail.set_yscale("log")
    top = max(float(item.bands["p95"].max()) for item in series)
    tail.set_ylim(0.8, max(10.0, min(top, 0.2 * max(total, 1)) * 1.5))
    tail.yaxis.set_major_locator(LogLocator(base=10, numticks=6))
    tail.yaxis.set_major_formatter(
        FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else "0")
    )
    tail.set_title("The last weeks, log scale", loc="left", fontsize=11)
    _date_ticks(tail, 4)
    for ax in (main, tail):
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    handles = []
    for index, item in enumerate(series):
        when = "not within the horizon"
        if item.p50 is not None:
            when = f"P50 {short_date(item.p50)}"
            when += f", P90 {short_date(item.p90)}" if item.p90 else ", P90 later"
        handles.append(
            Line2D(
                [],
                [],
                color=item.colour,
                linewidth=2,
                marker=scenario_marker(index),
                markeredgecolor="white",
                markersize=7,
                label=f"{item.name}: {when}",
            )
        )
    key = [
        Patch(color=tint("#555555", 0.55), label="P10-P90 of replications"),
        Patch(color=tint("#555555", 0.8), label="P5-P95"),
        Line2D([], [], color="0.3", linestyle="--", label="clears, P50"),
        Line2D([], [], color="0.3", linestyle=":", label="clears, P90"),
    ]
    fig.legend(
        handles=key, loc="outside lower right", ncol=2, frameon=False, fontsize=9
    )
    fig.legend(
        handles=handles,
        loc="outside lower left",
        frameon=False,
        fontsize=10,
    )
    return fig


def cohort_backlog_chart(
    bands: dict[str, pd.DataFrame],
    title: str,
    colour: str,
    unit: str = "installations",
    until=None,
    figsize: tuple[float, float] = (6.2, 3.3),
) -> Figure:
    """One scenario's backlog per cohort: medians and P10-P90 bands in its colour.

    Cohorts differ by line style, so the scenario keeps its one colour.
    """
    from matplotlib.ticker import FuncFormatter

    styles = ("-", "--", "-.", ":")
    fig, ax = _subplots(figsize=figsize, layout="constrained")
    for i, (cohort, frame) in enumerate(bands.items()):
        _fan(
            ax,
            frame,
            colour,
            tint(colour, 0.65),
            label=f"{cohort} (median, band P10-P90)",
            band_label=None,
            alpha=0.5,
            linewidth=1.6,
            linestyle=styles[i % len(styles)],
        )
    first = next(iter(bands.values()))
    date_limits(ax, first["date"].iloc[0], until or first["date"].iloc[-1])
    ax.set_ylim(bottom=0)
    ax.set_ylabel(f"{unit} still to migrate")
    ax.set_title(f"Backlog by cohort: {title}", loc="left", fontsize=10)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    _date_ticks(ax, 6)
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    return fig
