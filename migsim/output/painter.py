"""Charts drawn in another process while this one works.

Loading matplotlib and drawing a first chart take a second or more, as long as
every other output file of a command together, and a command that has finished
simulating has nothing else for the machine's other core to do. So a chart is
drawn aside (`drawn_aside`): in a forked process while the command writes its
tables, or, better, by a `Painter` forked when the command starts, which loads
matplotlib and builds a throw-away chart while the command simulates and, handed
its job at the end, only draws.

A job is a module-level function that draws one file and its arguments (sent
through a pipe, so they pickle). Where nothing can fork, or the drawing failed
in the other process, the chart is drawn here after the body, so a failure
raises its own error. ``migsim run`` (``backlog.png``), ``migsim decide``
(``frontier.png``) and ``migsim sensitivity`` use it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Painter", "chart_painter", "drawn_aside"]

#: Bytes the painter's pipe is asked to hold (Linux allows 1 MiB unprivileged).
_PIPE_BYTES = 1 << 20

Draw = Callable[..., None]


def _in_child(draw: Draw, *args: Any) -> None:
    """The forked process: draw, then leave without running the parent's exit
    handlers (any failure is redrawn, and reported, by the parent)."""
    try:
        draw(*args)
    except BaseException:  # the parent redraws it, and raises what went wrong
        os._exit(1)
    os._exit(0)


def _aside_child(parent: int, main_thread: bool, draw: Draw, *args: Any) -> None:
    """A process forked to draw one chart (no painter): it ends with the
    command (the lifeline), as the painter and the pool's workers do; a
    command killed while it drew left it drawing into a folder nobody reads."""
    from migsim.common.lifeline import die_with_parent

    die_with_parent(parent, main_thread=main_thread)
    if os.getppid() != parent:  # the command died before the lifeline was in place
        os._exit(0)
    _in_child(draw, *args)


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


def _painter_child(conn: Any, command_end: Any, parent: int, main_thread: bool) -> None:
    """The painter: get ready, wait for one job, draw it and leave.

    It ends when it has drawn, when the command dismisses it (killed: worker
    processes forked later hold the pipe's other end too, so it may never read
    its end closed) or when the command dies (the lifeline); an interrupt
    (Ctrl-C reaches the whole process group) is the command's to handle. Any
    failure is redrawn, and reported, by the parent.
    """
    from migsim.common.lifeline import die_with_parent, ignore_interrupts

    ignore_interrupts()  # forked with SIGINT held (`Painter`)
    command_end.close()  # only the command writes
    die_with_parent(parent, main_thread=main_thread)
    if os.getppid() != parent:  # the command died before the lifeline was in place
        os._exit(0)
    try:
        import migsim.output.plots  # noqa: F401 - what any chart needs

        if not conn.poll():  # no job yet (or dismissed): time to warm up
            _warm_up()
    except Exception:  # the real chart then fails too, and is redrawn
        pass
    try:
        job = conn.recv()
    except (EOFError, OSError):  # dismissed: nothing to draw
        os._exit(0)
    except BaseException:  # a job that does not unpickle here: drawn by the parent
        os._exit(1)
    _in_child(*job)


class Painter:
    """A forked process that gets matplotlib ready while a command works, then
    draws one chart (`drawn_aside`). Made by `chart_painter`."""

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
                self._conn,
                os.getpid(),
                threading.current_thread() is threading.main_thread(),
            ),
            name="migsim-painter",
            daemon=True,
        )
        from migsim.common.lifeline import interrupts_held

        with interrupts_held():  # no KeyboardInterrupt before it ignores them
            self.process.start()
        theirs.close()
        self.handed = False

    def hand(self, draw: Draw, *args: Any) -> bool:
        """Give the painter its job, ``draw(*args)``; False when it cannot take
        it (gone, or the job does not pickle: a function defined in a test)."""
        if self.handed or not self.process.is_alive():
            return False
        try:
            self._conn.send((draw, *args))
        except Exception:  # noqa: BLE001 - gone or unpicklable: a fork draws it
            return False
        self.handed = True
        self._conn.close()
        return True

    def dismiss(self) -> None:
        """End the painter: one never handed a job is killed (it was only
        getting ready); one drawing is waited for, as `drawn_aside` does."""
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


@contextmanager
def drawn_aside(painter: Painter | None, draw: Draw, *args: Any) -> Iterator[None]:
    """``draw(*args)`` (it writes its file) done while the body of the ``with``
    writes the rest; it is complete when the body exits.

    ``painter``, made ready when the command started, draws it, else a process
    forked now. Where no process can be forked, or the drawing failed there,
    it is drawn in this process after the body (so a failure raises its own
    error).
    """
    child = None
    if painter is not None and painter.hand(draw, *args):
        child = painter.process
    elif _can_fork():
        import multiprocessing

        _flush()
        main_thread = threading.current_thread() is threading.main_thread()
        child = multiprocessing.get_context("fork").Process(
            target=_aside_child,
            args=(os.getpid(), main_thread, draw, *args),
            daemon=True,
        )
        child.start()
    try:
        yield
    finally:
        if child is not None:
            child.join()
    if child is None or child.exitcode != 0:
        draw(*args)


def _roomy(conn: Any) -> None:
    """Let the pipe hold a large job (a five-year run's bands are about 60 KB,
    near the 64 KB a pipe holds by default), so handing it over does not wait
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
