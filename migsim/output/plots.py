"""Plots: tidy frames in, matplotlib figures out (never shown, never simulated).

Charts are `matplotlib.figure.Figure` objects on the non-interactive Agg canvas,
made without pyplot: matplotlib loads only when a chart is drawn, and drawing
never switches the backend of a caller (a Jupyter user keeps theirs) nor leaves
figures open in pyplot. They use planners' words in titles and axes, dates on
the x axis, and greys that survive a black-and-white printer.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from migsim.common.stats import quantile_index

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

__all__ = [
    "backlog_fan_chart",
    "clearance_distribution_chart",
    "cumulative_migrated_chart",
    "daily_attempts_chart",
    "date_limits",
    "forecast_fan_chart",
    "median_zero_date",
    "posterior_check_chart",
    "risk_chart",
    "sweep_chart",
]

BAND_COLOUR = "0.75"
LINE_COLOUR = "0.1"


def tint(colour: Any, amount: float) -> tuple[float, float, float]:
    """``colour`` mixed with white: 0 keeps it, 1 is white (for bands)."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(colour)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def _shades(colour: str | None) -> tuple[Any, Any, Any]:
    """(line, band, light band) colours: greys, or a scenario's colour and tints.

    A report passes each scenario's colour so it is the same in every chart.
    """
    if colour is None:
        return LINE_COLOUR, BAND_COLOUR, "0.87"
    return colour, tint(colour, 0.6), tint(colour, 0.82)


def _band(
    ax,
    bands: pd.DataFrame,
    colour: Any,
    label: str | None = None,
    *,
    low: str = "p10",
    high: str = "p90",
    alpha: float | None = None,
) -> None:
    """A shaded band, with no edge line, between two quantile columns of ``bands``."""
    style: dict[str, Any] = {} if label is None else {"label": label}
    if alpha is not None:
        style["alpha"] = alpha
    ax.fill_between(
        bands["date"], bands[low], bands[high], color=colour, linewidth=0, **style
    )


def _median(
    ax,
    bands: pd.DataFrame,
    colour: Any,
    label: str | None = None,
    *,
    linewidth: float = 1.8,
    linestyle: str | None = None,
) -> None:
    """The median (P50) line of a banded series."""
    style: dict[str, Any] = {} if label is None else {"label": label}
    if linestyle is not None:
        style["linestyle"] = linestyle
    ax.plot(bands["date"], bands["p50"], color=colour, linewidth=linewidth, **style)


def _fan(
    ax,
    bands: pd.DataFrame,
    line: Any = LINE_COLOUR,
    band: Any = BAND_COLOUR,
    *,
    label: str | None = "median (P50)",
    band_label: str | None = "P10-P90 of replications",
    outer: Any = None,
    outer_label: str | None = None,
    alpha: float | None = None,
    linewidth: float = 1.8,
    linestyle: str | None = None,
) -> None:
    """A fan: the P10-P90 band, over a P5-P95 one in ``outer``, then the median.

    Every fan chart draws these layers in this order, so the median stays on
    top; ``alpha`` is for the bands only, the median is always opaque.
    """
    if outer is not None:
        _band(ax, bands, outer, outer_label, low="p5", high="p95", alpha=alpha)
    _band(ax, bands, band, band_label, alpha=alpha)
    _median(ax, bands, line, label, linewidth=linewidth, linestyle=linestyle)


def _subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float],
    layout: Literal["constrained"] = "constrained",
    squeeze: bool = True,
    gridspec_kw: dict[str, Any] | None = None,
) -> tuple[Figure, Any]:
    """A figure and its axes, as ``pyplot.subplots`` gives, without pyplot.

    The figure sits on an Agg canvas and is not registered with pyplot, so it
    needs no closing and leaves the caller's backend alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # a scenario may be named in any script: one the fonts lack draws as boxes,
    # without matplotlib's warning on the terminal for each chart
    warnings.filterwarnings(
        "ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning
    )
    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, gridspec_kw=gridspec_kw)
    return fig, axes


#: Charts drawn in `migsim.output.decision_plots`, still importable from here.
_DECISION_CHARTS = ("frontier_chart", "sobol_chart", "tornado_chart")
#: The backtest chart, drawn in `migsim.output.backtest_plots`, likewise.
_BACKTEST_CHARTS = ("backtest_chart",)


def __getattr__(name: str) -> Any:
    """Names loaded on first use, never on import.

    ``plt`` is for callers that still close figures with ``plt.close``: charts
    here are not pyplot figures, so closing them is not needed (and does
    nothing). The decision and sensitivity charts and the backtest chart live
    in their own modules.
    """
    if name == "plt":
        import matplotlib.pyplot

        return matplotlib.pyplot
    if name in _DECISION_CHARTS:
        from migsim.output import decision_plots

        return getattr(decision_plots, name)
    if name in _BACKTEST_CHARTS:
        from migsim.output import backtest_plots

        return getattr(backtest_plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _title(ax, text: str, fontsize: float = 12) -> None:
    """An axes title wrapped to the figure's width, so it is never clipped."""
    import textwrap

    width_px = ax.figure.get_figwidth() * ax.figure.dpi
    chars = max(20, int(width_px / (fontsize * 0.62 * ax.figure.dpi / 72)))
    ax.set_title("\n".join(textwrap.wrap(text, chars)), fontsize=fontsize)


def _date_axis(ax, until=None, dates: pd.Series | None = None) -> None:
    """Dates on the x axis: few enough ticks that their labels never touch.

    ``dates`` are the chart's days: when they span less than `MIN_DATE_SPAN`
    (a one-day horizon), the axis runs from the first over that span, where
    matplotlib widened one day to four years (and warned it could not place
    its ticks); otherwise it keeps its own left margin.
    """
    import matplotlib.dates as mdates

    if dates is not None and len(dates):
        first = pd.Timestamp(dates.iloc[0])
        last = pd.Timestamp(dates.iloc[-1] if until is None else until)
        if last - first < MIN_DATE_SPAN:
            date_limits(ax, first, last)
            until = None
    if until is not None:
        ax.set_xlim(right=pd.Timestamp(until))
    inches = ax.get_position().width * ax.figure.get_figwidth()
    locator = date_locator(minticks=3, maxticks=max(4, int(inches * 1.1)))
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)


def date_locator(minticks: int = 3, maxticks: int = 7):
    """matplotlib's `AutoDateLocator`, allowed enough monthly ticks for its
    longest monthly step (6): an axis under ``minticks`` years is ticked in
    months, and over 2-3 years with fewer ticks allowed it warned on the
    console that it could not place them (the full fleet's report did), then
    stepped by 6 months all the same."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=minticks, maxticks=maxticks)
    locator.maxticks[mdates.MONTHLY] = max(maxticks, 2 * minticks + 1)
    return locator


def date_limits(ax, start: Any, end: Any) -> None:
    """The x axis from ``start`` to ``end``, at least `MIN_DATE_SPAN` wide: a
    one-day horizon's chart starts and ends on one day, and matplotlib warned
    of identical limits (and could not place its date ticks)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    ax.set_xlim(start, max(end, start + MIN_DATE_SPAN))


#: The narrowest date axis: a few days, so the date ticks fall on days.
MIN_DATE_SPAN = pd.Timedelta(days=3)


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


def median_zero_date(bands: pd.DataFrame):
    """The first date from which the median backlog stays 0, or None.

    Type-1 quantiles: the median of the backlog is 0 on a day exactly when half
    the replications have cleared by then, so this is the P50 clearance date;
    on a linear axis the median looks cleared weeks before (a few hundred
    stalls and retries against tens of thousands).
    """
    import pandas as pd

    positive = (bands["p50"].to_numpy() > 0).nonzero()[0]
    last = positive[-1] + 1 if len(positive) else 0
    if last >= len(bands):
        return None
    return pd.Timestamp(bands["date"].iloc[last])


def backlog_fan_chart(
    bands: pd.DataFrame,
    title: str,
    unit: str = "installations",
    until=None,
    colour: str | None = None,
) -> Figure:
    """Fan chart of installations not yet resolved: P10-P90 band and the median.

    Parameters
    ----------
    bands
        Columns ``date, p10, p50, p90`` (e.g. `Results.backlog_bands`).
    title
        Scenario name, shown in the title.
    until
        Last date shown (default: the end of ``bands``), e.g. soon after the
        latest clearance so the interesting months fill the chart.
    colour
        The scenario's colour (default greys).
    """
    line, band, _ = _shades(colour)
    fig, ax = _subplots(figsize=(8, 4.2), layout="constrained")
    _fan(ax, bands, line, band)
    _title(ax, f"Backlog still to migrate: {title}")
    ax.set_ylabel(f"{unit} not yet resolved")
    ax.set_xlabel("date")
    ax.set_ylim(bottom=0)
    zero = median_zero_date(bands)
    if zero is not None:  # the median's last few hundred vanish at this scale
        ax.axvline(
            zero,
            color=line,
            linestyle=":",
            linewidth=1,
            label=f"median reaches 0: {zero.day} {zero:%b %Y}, the P50\n"
            "clearance date (its last few hundred\nare too few to see at this scale)",
        )
    date_limits(
        ax, bands["date"].iloc[0], _active_until(bands) if until is None else until
    )
    _thousands(ax)
    _date_axis(ax)
    ax.legend(loc="upper right", framealpha=0.9, edgecolor="none")
    return fig


def _legend_size(fig) -> float:
    """Legend text size: smaller in the report's compact charts, so it covers less."""
    return 10.0 if fig.get_figheight() > 3.5 else 8.0


def _compact(value: float, _position: int = 0) -> str:
    """A tick number short enough for a narrow panel: 9,600, 320k, 1.2M."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.3g}M"
    if abs(value) >= 1e5:
        return f"{value / 1e3:,.0f}k"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"


def _thousands(ax, axis: str = "y") -> None:
    """Thousands separated, no decimals, on the y (or x) axis of ``ax``."""
    from matplotlib.ticker import StrMethodFormatter

    getattr(ax, f"{axis}axis").set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def cumulative_migrated_chart(
    bands: pd.DataFrame,
    title: str,
    target: float,
    plan: pd.DataFrame | None = None,
    unit: str = "installations",
    until=None,
    colour: str | None = None,
    figsize: tuple[float, float] = (8, 4.2),
) -> Figure:
    """Cumulative migrated (P10-P90 band, median) against the target to migrate.

    Parameters
    ----------
    bands
        Columns ``date, p10, p50, p90`` of cumulative migrated.
    target
        The count that clears the backlog: a horizontal dashed line.
    plan
        Optional ``date, planned`` frame: the most the cap allows if every attempt
        succeeded (a dotted line), to show how far failures and retries lag it.
    """
    line, band, _ = _shades(colour)
    fig, ax = _subplots(figsize=figsize, layout="constrained")
    _fan(ax, bands, line, band)
    ax.axhline(
        target,
        color="0.35",
        linestyle="--",
        linewidth=1.2,
        label=f"target: {target:,.0f} {unit}",
    )
    if plan is not None:
        ax.plot(
            plan["date"],
            plan["planned"],
            color="0.45",
            linestyle=":",
            linewidth=1.4,
            label="at full daily cap, every attempt a success",
        )
    _title(ax, f"Migrated so far against the target: {title}")
    ax.set_ylabel(f"{unit} migrated (cumulative)")
    ax.set_xlabel("date")
    ax.set_ylim(0, target * 1.08 if target > 0 else 1)
    _thousands(ax)
    _date_axis(ax, until, bands["date"])
    ax.legend(frameon=False, loc="lower right", fontsize=_legend_size(fig))
    return fig


def daily_attempts_chart(
    attempts: pd.DataFrame,
    successes: pd.DataFrame,
    title: str,
    unit: str = "installations",
    until=None,
    colour: str | None = None,
    figsize: tuple[float, float] = (8, 4.2),
) -> Figure:
    """Daily attempts and first-time successes: medians with P10-P90 bands.

    Both frames have columns ``date, p10, p50, p90``. Days on which no
    replication attempted anything (weekends, closures) are left out so the
    lines join working days. Attempts are a solid dark line over a light band,
    successes a dashed line over a darker band, so the two stay apart in
    greyscale.
    """
    days = attempts["date"]
    busy = (attempts["p90"] > 0).to_numpy()
    attempts, successes = attempts[busy], successes[busy]
    line, band, light = _shades(colour)
    fig, ax = _subplots(figsize=figsize, layout="constrained")
    _band(ax, attempts, "0.85" if colour is None else light, "attempts, P10-P90")
    _band(ax, successes, "0.65" if colour is None else band, "successes, P10-P90")
    _median(ax, attempts, line, "attempts, median", linewidth=1.2)
    _median(
        ax,
        successes,
        "0.3" if colour is None else "0.15",
        "successes at that attempt, median",
        linewidth=1.2,
        linestyle="--",
    )
    _title(ax, f"Migration attempts and successes per working day: {title}")
    ax.set_ylabel(f"{unit} per day")
    ax.set_xlabel("date")
    ax.set_ylim(
        bottom=0,
        top=max(1.0, float(attempts["p90"].max()) * (1.35 if figsize[1] > 3.5 else 1.9))
        if len(attempts)
        else 1.0,
    )
    _thousands(ax)
    _date_axis(ax, until, days)
    ax.legend(frameon=False, loc="upper right", fontsize=_legend_size(fig), ncol=2)
    return fig


def clearance_distribution_chart(
    dates: pd.Series,
    title: str,
    end_date,
    markers: Mapping[str, object] | None = None,
    colour: str | None = None,
    figsize: tuple[float, float] = (8, 3.8),
) -> Figure:
    """How often each clearance date came up across replications.

    Parameters
    ----------
    dates
        Clearance date per replication; ``NaT`` for one that did not clear.
    end_date
        The horizon end, named in the note about replications that did not clear.
    markers
        ``{label: date}`` drawn as vertical lines (e.g. P50 and P90).
    """
    line, band, _ = _shades(colour)
    fig, ax = _subplots(figsize=figsize, layout="constrained")
    cleared = pd.to_datetime(dates.dropna())
    counts = cleared.value_counts().sort_index()
    total = len(dates)
    if len(counts):
        ax.bar(
            counts.index,
            counts.to_numpy() / total * 100,
            width=0.9,
            color="0.45" if colour is None else band,
            label="share of replications clearing that day",
        )
    styles = ["--", ":", "-."]
    for i, (label, when) in enumerate((markers or {}).items()):
        if when is not None and not pd.isna(when):
            ax.axvline(
                pd.Timestamp(when),
                color=LINE_COLOUR,
                linestyle=styles[i % len(styles)],
                linewidth=1.3,
                label=label,
            )
    not_cleared = total - len(cleared)
    if not_cleared:
        ax.text(
            0.99,
            0.95,
            f"{not_cleared} of {total} replications not cleared by {end_date:%d %b %Y}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=9,
            # on white: a P50 or P90 line behind it crossed the words
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
            zorder=5,
        )
    _title(ax, f"When the backlog clears: {title}")
    ax.set_ylabel("% of replications")
    ax.set_xlabel("clearance date")
    ax.set_ylim(bottom=0, top=(counts.max() / total * 100 * 1.45) if len(counts) else 1)
    _date_axis(ax)
    if ax.get_legend_handles_labels()[0]:  # none when nothing cleared, no markers
        ax.legend(frameon=False, loc="upper left", fontsize=min(9, _legend_size(fig)))
    return fig


def risk_chart(
    values: Mapping[str, np.ndarray],
    title: str,
    colour: str | None = None,
    columns: int = 2,
    width: float = 8.0,
) -> Figure:
    """Small multiples: the spread of each risk figure across replications.

    Parameters
    ----------
    values
        ``{label with unit: per-replication values}``; each panel is a histogram
        with the median (P50, dashed) and P90 (dotted) marked.
    colour
        The scenario's colour for the bars (default grey).
    columns, width
        Panels per row and the figure's width in inches; long labels wrap to
        the panel's width.
    """
    import textwrap

    line, band, _ = _shades(colour)
    n = max(1, len(values))
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    fig, axes = _subplots(
        rows,
        cols,
        figsize=(width, 2.5 * rows + 0.4),
        layout="constrained",
        squeeze=False,
    )
    wrap = max(20, int(width / cols * 9))
    for ax, (label, data) in zip(axes.flat, values.items(), strict=False):
        data = np.asarray(data, dtype=float)
        data = data[np.isfinite(data)]
        if len(data) and np.ptp(data) == 0:
            ax.text(
                0.5,
                0.5,
                f"every replication: {data[0]:,.0f}",
                transform=ax.transAxes,
                ha="center",
                va="center",
            )
            ax.set_yticks([])
            ax.set_xticks([])
        elif len(data):
            ax.hist(
                data,
                bins=min(20, max(1, len(np.unique(data)))),
                color="0.55" if colour is None else band,
                edgecolor="white",
                linewidth=0.5,
            )
            ordered = np.sort(data)
            for q, style, name in ((0.5, "--", "P50"), (0.9, ":", "P90")):
                value = ordered[quantile_index(len(ordered), q)]
                ax.axvline(
                    value,
                    color=line,
                    linestyle=style,
                    linewidth=1.3,
                    label=f"{name} {value:,.0f}",
                )
            ax.legend(frameon=False, fontsize=8)
            from matplotlib.ticker import FuncFormatter, MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.xaxis.set_major_formatter(FuncFormatter(_compact))
        ax.set_title("\n".join(textwrap.wrap(label, wrap)), fontsize=9)
        ax.set_ylabel("replications", fontsize=9)
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    for ax in list(axes.flat)[len(values) :]:
        ax.set_visible(False)
    fig.suptitle(f"Risks across replications: {title}")
    return fig


# --------------------------------------------------------------------------- actuals
ACTUAL_COLOUR = "0.0"
OUTER_BAND_COLOUR = "0.87"


def _actuals_fan(ax, bands: pd.DataFrame) -> None:
    """P5-P95 (light, when given), P10-P90 (darker) and the median, in greys."""
    has_outer = "p5" in bands and "p95" in bands
    _fan(
        ax,
        bands,
        band_label="P10-P90",
        outer=OUTER_BAND_COLOUR if has_outer else None,
        outer_label="P5-P95",
        linewidth=1.6,
    )


def posterior_check_chart(
    bands: pd.DataFrame,
    points: pd.DataFrame | None,
    title: str,
    unit: str = "installations",
) -> Figure:
    """Posterior predictive check: actual cumulative migrated against simulated bands.

    Parameters
    ----------
    bands
        ``date, p5, p10, p50, p90, p95`` of cumulative migrated (calibrated scenario).
    points
        ``date, cumulative_migrated`` of the actuals (or None when not derivable).
    """
    fig, ax = _subplots(figsize=(8, 4.2), layout="constrained")
    _actuals_fan(ax, bands)
    end = bands["date"].iloc[-1]
    if points is not None and len(points):
        ax.plot(
            points["date"],
            points["cumulative_migrated"],
            "o",
            color=ACTUAL_COLOUR,
            markersize=3,
            label="actuals",
        )
        last = points["date"].max()
        span = last - bands["date"].iloc[0]
        end = min(end, last + span * 0.15 + pd.Timedelta(days=7))
    date_limits(ax, bands["date"].iloc[0], end)
    _title(ax, f"Posterior predictive check: {title}")
    ax.set_ylabel(f"{unit} migrated (cumulative)")
    ax.set_xlabel("date")
    ax.set_ylim(bottom=0)
    _thousands(ax)
    _date_axis(ax)
    ax.legend(frameon=False, loc="upper left")
    return fig


def forecast_fan_chart(
    actual: pd.DataFrame,
    bands: pd.DataFrame,
    as_of,
    title: str,
    unit: str = "installations",
) -> Figure:
    """Backlog still to migrate: actuals up to the as-of date, then the forecast fan.

    Parameters
    ----------
    actual
        ``date, remaining`` (installations not yet resolved, from the actuals).
    bands
        ``date, p10, p50, p90`` (and optionally ``p5, p95``) of the forecast backlog.
    as_of
        The date the forecast was made (a vertical line).
    """
    fig, ax = _subplots(figsize=(8, 4.2), layout="constrained")
    _actuals_fan(ax, bands)
    if len(actual):
        ax.plot(
            actual["date"],
            actual["remaining"],
            color=ACTUAL_COLOUR,
            linewidth=1.4,
            marker="o",
            markersize=2.5,
            label="actuals",
        )
    ax.axvline(pd.Timestamp(as_of), color="0.4", linestyle="--", linewidth=0.9)
    ax.annotate(
        f"as of {pd.Timestamp(as_of).date()}",
        (pd.Timestamp(as_of), 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -12),
        textcoords="offset points",
        fontsize=8,
        color="0.3",
    )
    start = actual["date"].iloc[0] if len(actual) else bands["date"].iloc[0]
    date_limits(ax, start, _active_until(bands))
    _title(ax, f"Backlog still to migrate, actuals then forecast: {title}")
    ax.set_ylabel(f"{unit} not yet resolved")
    ax.set_xlabel("date")
    ax.set_ylim(bottom=0)
    _thousands(ax)
    _date_axis(ax)
    ax.legend(frameon=False)
    return fig


def sweep_chart(
    table: pd.DataFrame,
    figure: str,
    x: str,
    by: str | None = None,
    *,
    title: str = "",
    start_date=None,
) -> Figure:
    """A sweep's figure against one swept field, one line (or colour) per another.

    Parameters
    ----------
    table
        A sweep table (`sweep.parquet`): swept fields, ``name_statistic`` columns
        and ``status``; only points with status ``done`` are drawn.
    figure
        The column to draw, e.g. ``clearance_day_p50``.
    x, by
        Swept fields for the x axis and for the lines (grid) or colours (Latin
        hypercube, when ``by`` has more than eight values).
    start_date
        With a ``clearance_day_*`` figure, draw dates (start_date + days; a
        swept ``start_date`` column gives each point's own).
    """
    done = table[table["status"] == "done"].sort_values(x)
    as_dates = start_date is not None and figure.startswith("clearance_day")

    def values(frame: pd.DataFrame):
        y = frame[figure].astype(float)
        if as_dates:
            y = y.where(y.abs() != float("inf"))  # not cleared: no point
            # a swept start date is each point's own: its days count from it
            start = (
                pd.to_datetime(frame["start_date"].astype(str))
                if "start_date" in frame
                else pd.Timestamp(start_date)
            )
            return start + pd.to_timedelta(y, unit="D")
        return y

    fig, ax = _subplots(figsize=(8, 4.2), layout="constrained")
    if by is None:
        ax.plot(done[x], values(done), marker="o", color=LINE_COLOUR)
    elif done[by].nunique() <= 8:
        greys = [str(g) for g in (0.05, 0.35, 0.55, 0.7, 0.2, 0.45, 0.62, 0.78)]
        markers = "osD^v<>p"
        for i, (level, group) in enumerate(done.groupby(by, sort=True)):
            ax.plot(
                group[x],
                values(group),
                marker=markers[i % 8],
                color=greys[i % 8],
                label=f"{by} = {level}",
            )
        ax.legend(frameon=False, fontsize="small")
    else:
        points = ax.scatter(
            done[x],
            values(done),
            c=done[by],
            cmap="Greys",
            edgecolors="0.2",
            linewidths=0.5,
        )
        fig.colorbar(points, ax=ax, label=by)
    ax.set_xlabel(x)
    ax.set_ylabel(("date: " if as_dates else "") + figure)
    ax.set_title(f"{figure} across the sweep{': ' + title if title else ''}")
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    if as_dates:
        import matplotlib.dates as mdates

        ax.yaxis.set_major_locator(date_locator())
        ax.yaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    return fig
