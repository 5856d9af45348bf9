"""Worker processes that end when the process that started them dies.

A killed ``migsim run -j 2`` (SIGKILL, an OOM kill) gets no
chance to shut its process pool down, and its workers used to live on for many
minutes, holding the parent's pipes and finishing work nobody would read. A pool
started with `die_with_parent` as its initializer gives each worker a daemon
thread that watches its parent and ends the worker within `INTERVAL` seconds of
the parent's death (the worker is re-parented, so ``os.getppid()`` changes). On
Linux the worker also asks the kernel for SIGKILL the moment its parent exits
(``PR_SET_PDEATHSIG``), when the pool's processes were started from the
parent's main thread, where that signal cannot fire early.

Ctrl-C at a terminal reaches the whole process group, and each worker printed
its own KeyboardInterrupt. A worker forked inside `interrupts_held` starts
with SIGINT blocked and calls `ignore_interrupts` first: the interrupt is the
command's to handle, even one that comes mid-fork.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "INTERVAL",
    "alive",
    "die_with_parent",
    "ignore_interrupts",
    "interrupts_held",
    "stops_held",
    "terminate_as_interrupt",
]

#: Seconds between a worker's looks at its parent.
INTERVAL = 0.25
#: Exit status of a worker whose parent died (EX_SOFTWARE).
ORPHANED = 70
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, main_thread: bool = False) -> None:
    """Pool initializer: end this worker when process ``parent`` is gone.

    Parameters
    ----------
    parent
        The pid of the process that starts the pool (``os.getpid()`` there).
    main_thread
        Whether the pool's processes are started from the parent's main thread,
        so the kernel's parent-death signal may be used as well.
    """
    forked = os.getppid()  # the parent, or a fork server that dies with it
    if main_thread and forked == parent and sys.platform.startswith("linux"):
        _kernel_signal()
    if not alive(parent):  # the parent died before this worker started
        os._exit(ORPHANED)
    watcher = threading.Thread(
        target=_watch, args=(parent, forked), name="migsim-lifeline", daemon=True
    )
    watcher.start()


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (signal 0 asks without sending anything):
    a worker's parent, or the writer of a staging folder or temporary file
    (`migsim.common.files`). A process of another user's is alive too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's (cannot be our parent)
        return True
    return True


def _watch(parent: int, forked: int) -> None:
    while True:
        time.sleep(INTERVAL)
        if os.getppid() != forked or not alive(parent):
            os._exit(ORPHANED)


def _kernel_signal() -> None:
    """Ask Linux to SIGKILL this process when the thread that forked it exits."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no libc or no prctl: the watcher suffices
        pass


#: What stops a command from outside besides Ctrl-C: ``kill PID`` and, where
#: there is one, a hang-up (the terminal closed, the connection dropped).
STOPS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: What `interrupts_held` holds back: Ctrl-C and the `STOPS`.
_HELD = {signal.SIGINT, *STOPS}


def terminate_as_interrupt() -> None:
    """In the program's main process: SIGTERM (``kill PID``) and SIGHUP (a
    closed terminal) stop it as Ctrl-C does, so what it was writing is removed
    and its workers are stopped (it left ``.out.partial-<pid>-...`` folders
    and ``.<file>.tmp-...`` files that only a rerun to the same path cleared).
    Forked children go back to dying of them (`ignore_interrupts`): the pool
    ends its workers so. One the process was started ignoring stays ignored
    (``nohup``: a command meant to outlive its terminal). An interrupt that
    Python had to drop (its handler ran in a callback from C, as while numba
    compiles, or in a ``__del__``) is raised again (`_raised_again`)."""
    global _unraisable
    for stop in _heeded():
        signal.signal(stop, _interrupted)
    if sys.unraisablehook is not _raised_again:
        _unraisable = sys.unraisablehook
        sys.unraisablehook = _raised_again


def _heeded() -> list[int]:
    """The `STOPS` the process was not started ignoring (``nohup``)."""
    return [s for s in STOPS if signal.getsignal(s) is not signal.SIG_IGN]


#: The hook `_raised_again` hands every other unraisable exception to.
_unraisable: Any = sys.__unraisablehook__


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _raised_again(unraisable: Any) -> None:
    """``sys.unraisablehook``: a KeyboardInterrupt that could not be raised
    where its signal was handled is raised again at the next point that can.

    Python runs a signal's handler between any two bytecodes, also in code
    that C called back (LLVM calls llvmlite's object-cache callback while
    numba compiles the kernels on a cold cache) or in a ``__del__``, where an
    exception is printed ("Exception ignored on calling ctypes callback
    function ...") and dropped: a ``kill PID`` then printed a traceback and
    the command ran on to the end. Here `_raise_on_leaving` is set as the
    profiler: it raises it at the next call, builtin call or return of Python
    code, whence it propagates (or, in the next callback, is dropped and comes
    here again). Anything else goes to the hook that was there before.

    A profiler the user had running (``cProfile`` around a call of migsim
    from Python) was replaced by that hook, and Python drops a profiler that
    raises: the profiling ended with the interrupt. With one running, the
    hook is set as the tracer instead (`_trace_to_raise`), and the profiler
    runs on untouched. (With a tracer running too, one of them must go: the
    profiler, as before.)"""
    if unraisable.exc_type is not None and issubclass(
        unraisable.exc_type, KeyboardInterrupt
    ):
        if sys.getprofile() in (None, _raise_on_leaving) or sys.gettrace():
            sys.setprofile(_raise_on_leaving)
        else:
            _trace_to_raise(sys._getframe(1))
        return
    _unraisable(unraisable)


#: The frames `_trace_to_raise` set `_raise_on_leaving` on, to clear again.
_traced: list[Any] = []


def _trace_to_raise(frame: Any) -> None:
    """Set `_raise_on_leaving` as the tracer: on a call of Python code, and
    on the next line of ``frame`` and of each frame that called it (a frame
    already running is traced only through its own ``f_trace``)."""
    sys.settrace(_raise_on_leaving)
    while frame is not None:
        frame.f_trace = _raise_on_leaving
        _traced.append(frame)
        frame = frame.f_back


def _raise_on_leaving(frame: Any, event: str, arg: Any) -> Any:
    """The profiler (or tracer) `_raised_again` sets: the dropped
    KeyboardInterrupt, raised at the first event outside that hook (one
    raised there would be dropped again, for good)."""
    if frame.f_code is _raised_again.__code__:
        return _raise_on_leaving
    if sys.getprofile() is _raise_on_leaving:
        sys.setprofile(None)
    if sys.gettrace() is _raise_on_leaving:
        sys.settrace(None)
    while _traced:  # a tracer set later (a debugger) must not raise it again
        _traced.pop().f_trace = None
    raise KeyboardInterrupt


def ignore_interrupts(handler: Any = signal.SIG_IGN) -> None:
    """In a forked worker, first: ignore SIGINT (or hand it to ``handler``, one
    that prints nothing), then unblock it and the `STOPS`: one that came
    while `interrupts_held` reaches it now. SIGTERM and SIGHUP end it, whatever
    its parent made of them (`terminate_as_interrupt`), unless ignored
    (``nohup``: the command goes on, and so must its workers)."""
    for stop in _heeded():
        signal.signal(stop, signal.SIG_DFL)
    signal.signal(signal.SIGINT, handler)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT and the `STOPS` back in this thread while it forks: a child
    starts with them blocked until `ignore_interrupts`; this process gets one
    that came meanwhile on leaving.

    A ``kill PID`` that landed mid-fork raised its KeyboardInterrupt inside
    the fork's own handlers (logging's lock, re-taken in the parent), where
    Python prints it as ignored and goes on: a sweep stopped so finished
    with exit status 0, or hung after 'Aborted!' with its pool half made."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    # the mask is the child's (inherited); the handlers hold one that the
    # kernel gives to another thread of this process (a progress bar's)
    with stops_held():
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def stops_held() -> Iterator[None]:
    """Hold Ctrl-C, ``kill PID`` and a hang-up back for a step that
    must not be cut in two (renaming a set of finished files into place): one
    that comes meanwhile is noted, and raised again on leaving, where the
    program's own handler takes it. Handlers are the main thread's: in
    another thread this holds nothing (a signal mask would not do: the
    kernel gives a process's signal to any thread that does not block it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def note(signum: int, frame: Any) -> None:
        came.append(signum)

    previous: dict[int, Any] = {}
    try:  # a stop while the handlers are set still restores those set
        for stop in (signal.SIGINT, *STOPS):
            if signal.getsignal(stop) is signal.SIG_IGN:
                continue  # nothing to hold (``nohup``), and a child forked
                # meanwhile must find it ignored still (`ignore_interrupts`)
            previous[stop] = signal.signal(stop, note)
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, signal.SIG_DFL if handler is None else handler)
        if came:
            signal.raise_signal(came[0])
