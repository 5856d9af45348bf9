"""Run charts: the pictures ``migsim run -o`` writes beside a run's tables.

`Results.write` draws nothing by itself (results sit below the output layer);
the CLI passes `write_run_charts` as its ``charts`` so a run folder gets its
``backlog.png``. matplotlib loads only when a chart is drawn, and never through
pyplot (a caller's backend is left alone).

Loading matplotlib and drawing take most of a second, about as long as every
other output file together, so `charts_aside` draws in a forked process while
the caller writes the tables: the same picture, on the machine's other core.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import pandas as pd

    from migsim.results.results import Results

__all__ = ["charts_aside", "write_run_charts"]

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


def _in_child(bands: pd.DataFrame, title: str, path: Path) -> None:
    """The forked process: draw, then leave without running the parent's exit
    handlers (any failure is redrawn, and reported, by the parent)."""
    try:
        _draw_backlog(bands, title, path)
    except BaseException:  # the parent redraws it, and raises what went wrong
        os._exit(1)
    os._exit(0)


def _can_fork() -> bool:
    """Fork only on Linux (elsewhere a forked process may not draw safely), and
    only beside background (daemon) threads such as a progress bar's monitor:
    the child draws and leaves, touching nothing another thread might hold."""
    import multiprocessing

    if not sys.platform.startswith("linux"):
        return False
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    return "fork" in multiprocessing.get_all_start_methods() and all(
        t.daemon for t in others
    )


@contextmanager
def charts_aside(
    results: Any, folder: Path, backlog: pd.DataFrame | None = None
) -> Iterator[None]:
    """Draw the run's charts (`write_run_charts`) while the body of the ``with``
    writes the rest; they are complete when it exits.

    The bands are read here (unless given as ``backlog``), then a forked
    process draws them. Where a process cannot be forked, or the drawing failed
    there, the chart is drawn in this process after the body (so a failure
    raises its own error).
    """
    child = None
    path = Path(folder) / BACKLOG_PNG
    if results.has_daily and _can_fork():
        import multiprocessing

        if backlog is None:
            backlog = results.backlog_bands()
        sys.stdout.flush()  # nothing buffered may be written twice
        sys.stderr.flush()
        child = multiprocessing.get_context("fork").Process(
            target=_in_child, args=(backlog, results.scenario.name, path), daemon=True
        )
        child.start()
    try:
        yield
    finally:
        if child is not None:
            child.join()
    if child is None or child.exitcode != 0:
        write_run_charts(results, folder, backlog)
