"""Run charts: the pictures ``migsim run -o`` writes beside a run's tables.

`Results.write` draws nothing by itself (results sit below the output layer);
the CLI passes `write_run_charts` as its ``charts`` so a run folder gets its
``backlog.png``. matplotlib loads only when a chart is drawn, and never through
pyplot (a caller's backend is left alone).

Loading matplotlib and drawing take most of a second, about as long as every
other output file together, so `charts_aside` draws in another process while
the caller writes the tables: the same picture, on the machine's other core.
``migsim run -o`` makes that process ready when the run starts
(`migsim.output.painter.chart_painter`), so it has loaded matplotlib by the
time it is handed the bands.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from migsim.output.painter import Painter, chart_painter, drawn_aside

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import pandas as pd

    from migsim.results.results import Results

__all__ = ["Painter", "chart_painter", "charts_aside", "write_run_charts"]

#: The file name and resolution of the backlog chart.
BACKLOG_PNG = "backlog.png"
DPI = 110


def _draw_backlog(bands: pd.DataFrame, title: str, path: Path) -> None:
    from migsim.output.plots import backlog_fan_chart

    # an Agg figure outside pyplot: nothing to close after saving
    backlog_fan_chart(bands, title).savefig(path, dpi=DPI)


def write_run_charts(
    results: Results, folder: Path, backlog: pd.DataFrame | None = None
) -> None:
    """Draw ``backlog.png`` (the backlog fan chart) into ``folder``.

    Drawn whenever the run kept daily rows, also when ``daily.parquet`` itself is
    not written (``--no-daily``); a run without daily rows has no backlog to draw.
    ``backlog``: its bands (at least P10, P50 and P90) where the caller has them.
    """
    if not results.has_daily:
        return
    if backlog is None:
        backlog = results.backlog_bands()
    _draw_backlog(backlog, results.scenario.name, Path(folder) / BACKLOG_PNG)


@contextmanager
def charts_aside(
    results: Results,
    folder: Path,
    backlog: pd.DataFrame | None = None,
    painter: Painter | None = None,
) -> Iterator[None]:
    """Draw the run's charts (`write_run_charts`) while the body of the ``with``
    writes the rest; they are complete when it exits.

    The bands are read here (unless given as ``backlog``), then another process
    draws them (`migsim.output.painter.drawn_aside`): ``painter``, made ready
    when the run started, or one forked now; this one where neither can.
    """
    if not results.has_daily:
        yield
        return
    if backlog is None:
        backlog = results.backlog_bands()
    path = Path(folder) / BACKLOG_PNG
    with drawn_aside(painter, _draw_backlog, backlog, results.scenario.name, path):
        yield
