"""Run charts: the pictures ``migsim run -o`` writes beside a run's tables.

`Results.write` draws nothing by itself (results sit below the output layer);
the CLI passes `write_run_charts` as its ``charts`` so a run folder gets its
``backlog.png``. matplotlib loads only when a chart is drawn, and never through
pyplot (a caller's backend is left alone).

Loading matplotlib and drawing take most of a second, about as long as every
other output file together, so `charts_aside` draws in a forked process while
the caller writes the tables: the same picture, on the machine's other core.
``migsim run -o`` goes further: `chart_painter` forks that process when the run
starts, so it loads matplotlib and builds a throw-away chart while the run
loads the scenario and simulates; handed the bands at the end, it only draws.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import pandas as pd

    from migsim.results.results import Results

__all__ = ["Painter", "chart_painter", "charts_aside", "write_run_charts"]

#: The file name and resolution of the backlog chart.
BACKLOG_PNG = "backlog.png"
DPI = 110
#: Bytes the painter's pipe is asked to hold (Linux allows 1 MiB unprivileged).
_PIPE_BYTES = 1 << 20


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


def _warm_up() -> None:
    """Make a small chart nobody sees: the first chart of a process costs three
    times the next (matplotlib's lazy imports, each artist class's first
    ``set``); rendering it as well would make the painter ready later for
    little (fonts load in a few milliseconds)."""
    import pandas as pd

    from migsim.output.plots import backlog_fan_chart

    bands = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=3),
            "p10": [2.0, 1.0, 0.0],
            "p50": [3.0, 2.0, 1.0],
            "p90": [4.0, 3.0, 2.0],
        }
    )
    backlog_fan_chart(bands, "warm-up")


def _painter_child(conn: Any, parent: int, main_thread: bool) -> None:
    """The painter: get ready, wait for one chart, draw it and leave.

    It ends when the run dismisses it (the pipe closes) or dies (the lifeline);
    an interrupt (Ctrl-C reaches the whole process group) is the run's to handle.
    Any failure is redrawn, and reported, by the parent.
    """
    from migsim.common.lifeline import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent, main_thread=main_thread)
    if os.getppid() != parent:  # the run died before the lifeline was in place
        os._exit(0)
    try:
        import migsim.output.plots  # noqa: F401 - what any chart needs

        if not conn.poll():  # no chart yet (or dismissed): time to warm up
            _warm_up()
    except Exception:  # the real chart then fails too, and is redrawn
        pass
    try:
        job = conn.recv()
    except (EOFError, OSError):  # dismissed: nothing to draw
        os._exit(0)
    _in_child(*job)


class Painter:
    """A forked process that gets matplotlib ready while a run simulates, then
    draws one ``backlog.png`` (`charts_aside`). Made by `chart_painter`."""

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        theirs, self._conn = context.Pipe(duplex=False)  # (reader, writer)
        _roomy(self._conn)
        _flush()
        self.process = context.Process(
            target=_painter_child,
            args=(
                theirs,
                os.getpid(),
                threading.current_thread() is threading.main_thread(),
            ),
            name="migsim-painter",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self.handed = False

    def hand(self, bands: pd.DataFrame, title: str, path: Path) -> bool:
        """Give the painter its chart; False when it cannot take it (gone)."""
        if self.handed or not self.process.is_alive():
            return False
        try:
            self._conn.send((bands, title, path))
        except OSError:
            return False
        self.handed = True
        self._conn.close()
        return True

    def dismiss(self) -> None:
        """End the painter: one never handed a chart is killed (it was only
        getting ready); one drawing is waited for, as `charts_aside` does."""
        if not self.handed:
            self._conn.close()
            self.process.kill()
        self.process.join()


@contextmanager
def chart_painter(wanted: bool = True) -> Iterator[Painter | None]:
    """A `Painter` for the ``with`` body (None where it cannot fork or is not
    ``wanted``); it is gone, killed if unused, when the body exits."""
    painter = Painter() if wanted and _can_fork() else None
    try:
        yield painter
    finally:
        if painter is not None:
            painter.dismiss()


def _roomy(conn: Any) -> None:
    """Let the pipe hold a long horizon's bands (five years: about 60 KB, near
    the 64 KB a pipe holds by default), so handing them over does not wait
    for a painter still getting ready; where the system refuses, it waits."""
    import fcntl

    try:
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (AttributeError, OSError):
        pass


def _flush() -> None:
    """Before a fork: nothing buffered may be written twice."""
    sys.stdout.flush()
    sys.stderr.flush()


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
    results: Any,
    folder: Path,
    backlog: pd.DataFrame | None = None,
    painter: Painter | None = None,
) -> Iterator[None]:
    """Draw the run's charts (`write_run_charts`) while the body of the ``with``
    writes the rest; they are complete when it exits.

    The bands are read here (unless given as ``backlog``), then a forked
    process draws them: ``painter``, made ready when the run started, or one
    forked now. Where a process cannot be forked, or the drawing failed
    there, the chart is drawn in this process after the body (so a failure
    raises its own error).
    """
    child = None
    path = Path(folder) / BACKLOG_PNG
    if results.has_daily:
        if backlog is None:
            backlog = results.backlog_bands()
        title = results.scenario.name
        if painter is not None and painter.hand(backlog, title, path):
            child = painter.process
        elif _can_fork():
            import multiprocessing

            _flush()
            child = multiprocessing.get_context("fork").Process(
                target=_in_child, args=(backlog, title, path), daemon=True
            )
            child.start()
    try:
        yield
    finally:
        if child is not None:
            child.join()
    if child is None or child.exitcode != 0:
        write_run_charts(results, folder, backlog)
