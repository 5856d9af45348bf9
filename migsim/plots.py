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

__all__ = ["backlog_fan_chart", "plt"]

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
