"""The shared helpers: statistics, atomic output folders and files, the store."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import held_elsewhere
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from migsim.common.errors import MigsimError
from migsim.common.files import (
    output_dir,
    refuse_existing,
    refuse_foreign,
    write_files,
)
from migsim.common.stats import (
    clopper_pearson,
    clopper_pearson_upper,
    crps_ensemble,
    json_number,
    percent,
    quantile,
    quantile_index,
)
from migsim.common.store import LOCK, Store, held
from migsim.experiments.compare import write_comparison


# --------------------------------------------------------------------------- stats
def test_crps_of_an_ensemble_is_that_of_its_empirical_distribution():
    """The energy form, mean|X - y| - mean|X - X'| / 2, on ensembles with ties,
    observations inside, on and outside them, and one member (the absolute
    error). Checked once against scoringrules.crps_ensemble (which it replaced):
    within 3e-16 relative on 1,200 such ensembles."""
    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 40):
        ensembles = rng.integers(0, 20, size=(50, m)).astype(float) * 2.5
        observed = rng.integers(-5, 60, size=50).astype(float)
        observed[:5] = ensembles[:5, 0]  # on a member
        spread = np.abs(ensembles[:, :, None] - ensembles[:, None, :]).mean((1, 2))
        energy = np.abs(ensembles - observed[:, None]).mean(1) - spread / 2
        np.testing.assert_allclose(crps_ensemble(observed, ensembles), energy)
    assert crps_ensemble(np.array([3.0]), np.array([[7.0]]))[0] == 4.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-50, 50), min_size=1, max_size=60),
    st.sampled_from([0.05, 0.1, 0.3, 0.5, 0.8, 0.85, 0.9, 0.95, 1.0]),
)
def test_type1_quantile_is_numpys_inverted_cdf(values, q):
    expected = np.quantile(np.array(values, dtype=float), q, method="inverted_cdf")
    assert quantile(values, q) == expected
    assert sorted(values)[quantile_index(len(values), q)] == expected


@pytest.mark.parametrize("n", [1, 7, 200, 2995])
def test_one_clopper_pearson_for_the_policy_and_for_decide(n):
    for failures in {f for f in (0, 1, n // 3, n - 1) if f < n}:
        upper = clopper_pearson_upper(failures, n, 0.95)
        assert upper == clopper_pearson(failures, n, 0.95)[1]
        assert upper == pytest.approx(stats.beta.ppf(0.95, failures + 1, n - failures))
    assert clopper_pearson_upper(n, n, 0.95) == 1.0
    assert clopper_pearson_upper(0, 0, 0.95) == 1.0  # no evidence yet


def test_a_share_reads_100_or_0_percent_only_when_it_is_exactly_1_or_0():
    """A share is never rounded onto "100%" or "0%", and a share not a whole
    percent keeps its half so it and its complement add up (97.5% / 2.5%)."""
    assert percent(1.0) == "100%" and percent(0.0) == "0%"
    assert percent(0.995) == "99.5%"  # 199 of 200 replications: not "100%"
    assert percent(0.9995) == "99.95%" and percent(0.0004) == "0.04%"
    assert percent(0.975) == "97.5%" and percent(1 - 0.975) == "2.5%"
    assert percent(0.98) == "98%" and percent(0.25) == "25%"
    assert percent(0.996907) == "99.7%"
    assert percent(1 - 1e-8) == "over 99.9999%" and percent(1e-8).startswith("under")
    assert percent(None) == "-" and percent(float("nan")) == "-"


def test_json_numbers_keep_each_files_rounding():
    assert json_number(None) is None and json_number(float("nan")) is None
    assert json_number(float("-inf")) is None
    assert json_number(7.0) == 7 and isinstance(json_number(7.0), int)
    assert json_number(1 / 3) == 0.333333
    assert json_number(1 / 3, 4, ints=None) == 0.3333
    assert isinstance(json_number(7.0, ints=None), float)
    assert json_number(2.9999999999) == 3.0 and isinstance(
        json_number(2.9999999999), float
    )
    assert json_number(2.9999999999, ints="rounded") == 3
    assert isinstance(json_number(2.9999999999, ints="rounded"), int)
    assert json_number(np.float64(2.5)) == 2.5


# --------------------------------------------------------------------------- folders
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_folder_appears_only_when_complete(tmp_path):
    target = tmp_path / "out"
    with output_dir(target) as staging:
        (staging / "a.txt").write_text("a")
        assert not target.exists()
        assert staging.parent == tmp_path and staging.name.startswith(".out.")
    assert (target / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_error_leaves_the_old_folder_and_no_staging(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), output_dir(target, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
        raise RuntimeError("chart failed")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_non_empty_folder_needs_overwrite_an_empty_one_does_not(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with output_dir(empty) as staging:
        (staging / "a.txt").write_text("a")
    assert (empty / "a.txt").exists()
    with pytest.raises(FileExistsError, match="use --overwrite"):
        with output_dir(empty):
            pass
    with output_dir(empty, overwrite=True) as staging:
        (staging / "b.txt").write_text("b")
    assert sorted(p.name for p in empty.iterdir()) == ["b.txt"]


def test_kept_entries_are_carried_into_the_new_folder(tmp_path):
    target = tmp_path / "out"
    (target / "points").mkdir(parents=True)
    (target / "points" / "1.parquet").write_text("p")
    (target / "manifest.json").write_text("{}")
    (target / "decision.json").write_text("old")
    with output_dir(target, overwrite=True, keep=("manifest.json", "points")) as out:
        (out / "decision.json").write_text("new")
    assert (target / "decision.json").read_text() == "new"
    assert (target / "points" / "1.parquet").read_text() == "p"
    assert (target / "manifest.json").exists()


def test_a_killed_writes_leftovers_are_cleared_and_a_live_ones_kept(tmp_path):
    target = tmp_path / "out"
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".out.partial-{dead}-abc"
    busy = tmp_path / f".out.partial-{alive}-abc"
    for folder in (stale, busy):
        folder.mkdir()
        (folder / "half.csv").write_text("x")
    with output_dir(target) as staging:
        (staging / "a.txt").write_text("a")
    assert not stale.exists() and busy.exists()


def test_a_kill_between_the_renames_puts_the_old_folder_back(tmp_path):
    target = tmp_path / "out"
    trash = tmp_path / f".out.old-{_dead_pid()}-abc"
    (trash / "old").mkdir(parents=True)
    (trash / "old" / "summary.json").write_text("{}")
    with pytest.raises(FileExistsError):  # the old result is back: not clobbered
        with output_dir(target):
            pass
    with output_dir(target, overwrite=True) as staging:
        (staging / "a.txt").write_text("a")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in target.iterdir()] == ["a.txt"]


def test_write_files_writes_all_or_none(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")

    def broken(path):
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        write_files({a: lambda p: p.write_text("new a"), b: broken})
    assert a.read_text() == "old a" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    write_files({a: lambda p: p.write_text("new a"), b: lambda p: p.write_text("b")})
    assert a.read_text() == "new a" and b.read_text() == "b"


def _interrupted_after_first_rename(monkeypatch, stop: int) -> None:
    """Signal ``stop`` to this process right after the first rename into
    place: as Ctrl-C or kill PID arriving between renames (the program turns
    both into KeyboardInterrupt)."""
    real, done = os.replace, []

    def replace(*args, **kwargs):
        real(*args, **kwargs)
        if not done:
            done.append(True)
            os.kill(os.getpid(), stop)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_between_the_renames_still_writes_all_or_none(
    tmp_path, monkeypatch, stop
):
    """calibrate's scenario and summary (write_files): Ctrl-C or kill PID
    between their renames left the new scenario beside the old summary."""
    previous = {
        stop: signal.signal(stop, _raise_interrupt)  # as the program has them
        for stop in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        a, b = tmp_path / "a.txt", tmp_path / "b.txt"
        a.write_text("old a")
        b.write_text("old b")
        _interrupted_after_first_rename(monkeypatch, stop)
        with pytest.raises(KeyboardInterrupt):
            write_files(
                {a: lambda p: p.write_text("new a"), b: lambda p: p.write_text("new b")}
            )
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
    assert {a.read_text(), b.read_text()} in ({"old a", "old b"}, {"new a", "new b"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_between_the_renames_leaves_the_folder_in_place(
    tmp_path, monkeypatch, stop
):
    """Replacing an output folder moves the old one aside, then renames the
    new one in; Ctrl-C or kill PID between the two left neither in place."""
    previous = {
        stop: signal.signal(stop, _raise_interrupt)  # as the program has them
        for stop in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        target = tmp_path / "out"
        target.mkdir()
        (target / "summary.json").write_text("old")
        _interrupted_after_first_rename(monkeypatch, stop)
        with pytest.raises(KeyboardInterrupt):
            with output_dir(target, overwrite=True) as staging:
                (staging / "summary.json").write_text("new")
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
    assert (target / "summary.json").read_text() in ("old", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no hang-up signal")
def test_a_closed_terminal_stops_a_write_as_ctrl_c_does(tmp_path):
    """SIGHUP (the terminal closed, the connection dropped) ended the command
    on the spot: the output folder it was staging stayed beside the target
    (.out.partial-<pid>-...), cleared only by a later write to the same path."""
    script = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from migsim.common.files import output_dir\n"
        "from migsim.common.lifeline import terminate_as_interrupt\n"
        "signal.signal(signal.SIGHUP, signal.SIG_DFL)  # from a terminal, not nohup\n"
        "terminate_as_interrupt()\n"
        "try:\n"
        "    with output_dir(Path(sys.argv[1])) as staging:\n"
        "        (staging / 'summary.json').write_text('half')\n"
        "        os.kill(os.getpid(), signal.SIGHUP)\n"
        "        time.sleep(30)\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "out")], timeout=60
    )
    assert done.returncode == 1
    assert list(tmp_path.iterdir()) == []


#: Code where a signal's handler runs but what it raises cannot propagate.
_SWALLOWED = {
    # numba compiling a kernel: LLVM calls llvmlite's object-cache callback
    # (ctypes), which calls numba's hook; the signal comes there
    "numba compiling": (
        "import numba\n"
        "from numba.core import codegen\n"
        "hook = codegen.JITCodeLibrary._object_compiled_hook.__func__\n"
        "def stop_once(cls, module, buf):\n"
        "    if not sent:\n"
        "        sent.append(os.getpid())\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    hook(cls, module, buf)\n"
        "codegen.JITCodeLibrary._object_compiled_hook = classmethod(stop_once)\n"
        "numba.njit(lambda x: x + 1)(1)\n"
    ),
    "a ctypes callback": (
        "import ctypes\n"
        "compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)\n"
        "def stop(a, b):\n"
        "    if not sent:\n"
        "        sent.append(os.getpid())\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return 0\n"
        "keys = (ctypes.c_int * 64)()\n"
        "size = ctypes.sizeof(ctypes.c_int)\n"
        "ctypes.CDLL(None).qsort(keys, 64, size, compare(stop))\n"
    ),
    "a __del__": (
        "class Stop:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        sent.append(sum(range(10)))  # Python code after the signal\n"
        "Stop()\n"
    ),
}


@pytest.mark.parametrize("where", list(_SWALLOWED))
def test_kill_pid_inside_code_c_calls_back_still_stops_the_command(where):
    """A ``kill PID`` whose handler ran in a callback from C (numba compiling
    the kernels on a cold cache: LLVM calls back llvmlite's object cache) or
    in a ``__del__`` raised KeyboardInterrupt where it cannot propagate:
    Python printed 'Exception ignored ...' with a traceback and dropped it,
    and the command ran on to the end."""
    if where == "numba compiling":
        pytest.importorskip("numba")
    script = (
        "import os, signal, sys\n"
        "from migsim.common.lifeline import terminate_as_interrupt\n"
        "terminate_as_interrupt()\n"
        "sent = []\n"
        "try:\n"
        + "".join(f"    {line}\n" for line in _SWALLOWED[where].splitlines())
        + "    print('ran on')\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopped\n", "")


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no hang-up signal")
def test_a_command_started_with_nohup_outlives_its_terminal():
    """nohup starts a command with SIGHUP ignored so that it outlives its
    terminal; the command then set its own handler for it, and its workers
    went back to dying of it: a long run under nohup stopped when the
    terminal closed."""
    script = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup starts it\n"
        "from migsim.common.lifeline import ignore_interrupts, terminate_as_interrupt\n"
        "terminate_as_interrupt()\n"
        "os.kill(os.getpid(), signal.SIGHUP)\n"
        "time.sleep(0.1)\n"
        "pid = os.fork()\n"
        "if pid == 0:  # a worker\n"
        "    ignore_interrupts()\n"
        "    os.kill(os.getpid(), signal.SIGHUP)\n"
        "    time.sleep(0.1)\n"
        "    os._exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "sys.exit(0 if status == 0 else 3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert done.returncode == 0


def test_a_stop_while_its_handlers_are_set_leaves_no_handler_of_stops_held(
    monkeypatch,
):
    """kill PID arriving while `stops_held` set its handlers one by one raised
    before it could restore any: Ctrl-C was noted by a handler nobody read,
    and ignored for the rest of the command (its cleanup included)."""
    from migsim.common import lifeline

    before = signal.getsignal(signal.SIGINT)
    real, calls = signal.signal, []

    def set_handler(signum, handler):
        calls.append(signum)
        if len(calls) == 2:  # SIGINT's is set: SIGTERM comes before its own is
            raise KeyboardInterrupt
        return real(signum, handler)

    monkeypatch.setattr(lifeline.signal, "signal", set_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with lifeline.stops_held():
                pass
    finally:
        monkeypatch.undo()
        now = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, before)
    assert now is before


class _Dropped:
    """What Python hands ``sys.unraisablehook`` for a KeyboardInterrupt that
    a callback from C could not raise."""

    exc_type = KeyboardInterrupt


def _leave() -> None:
    """A call of Python code: the first event after the interrupt was dropped."""


@pytest.fixture
def tracer_aside():
    """Coverage traces the tests (``.ci/run``), and with a tracer running too
    the re-raise takes the profiler's place (one of the two must go): these
    tests set that tracer aside while they run."""
    tracer = sys.gettrace()
    sys.settrace(None)
    yield
    sys.settrace(tracer)


def test_an_interrupt_raised_again_keeps_a_profile_function_running(tracer_aside):
    """The interrupt raised again after a callback dropped it replaced the
    profile function the user had running (migsim called from Python under a
    profiler), then dropped it. It now runs on, seeing every call, and the
    interrupt is still raised at the next line."""
    from migsim.common import lifeline

    seen: list[str] = []

    def record(frame, event, arg):
        if frame.f_code is _leave.__code__:
            seen.append(event)

    sys.setprofile(record)
    try:
        with pytest.raises(KeyboardInterrupt):
            lifeline._raised_again(_Dropped())
            seen.append("ran on")
        _leave()
        running, tracer = sys.getprofile(), sys.gettrace()
    finally:
        sys.setprofile(None)
    assert (running, tracer) == (record, None)
    assert seen == ["call", "return"]
    assert lifeline._traced == []


def test_an_interrupt_raised_again_keeps_cprofile_running(tracer_aside):
    """cProfile (a profiler written in C) runs on and counts the calls after
    the interrupt."""
    import cProfile
    import pstats

    from migsim.common import lifeline

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        _leave()
        with pytest.raises(KeyboardInterrupt):
            lifeline._raised_again(_Dropped())
            _leave()
        _leave()
        running = sys.getprofile()
    finally:
        profiler.disable()
    assert running is profiler
    calls = {
        name: count
        for (_, _, name), (_, count, *_) in pstats.Stats(profiler).stats.items()
    }
    assert calls["_leave"] == 2  # before and after: the one that raised never ran


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- store
def test_a_store_resumes_its_own_definition_and_refuses_another(tmp_path):
    root = tmp_path / "store"
    store = Store(root, {"seed": 1, "n": 2}, what="sweep")
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    store.put("0", frame)
    store.manifest["done"] = ["0"]
    store.save()
    again = Store(root, {"seed": 1, "n": 2}, what="sweep")
    assert again.manifest["done"] == ["0"] and again.has("0")
    pd.testing.assert_frame_equal(again.get("0"), frame)
    with pytest.raises(MigsimError, match=r"holds a different sweep .differs in -n."):
        Store(root, {"seed": 1, "n": 3}, what="sweep", names={"n": "-n"})
    fresh = Store(root, {"seed": 1, "n": 3}, what="sweep", fresh=True)
    assert not fresh.has("0") and "done" not in fresh.manifest
    stored = json.loads((root / "manifest.json").read_text())
    assert stored["definition"] == {"seed": 1, "n": 3}


def test_a_store_a_kill_moved_aside_is_put_back_and_resumed(tmp_path):
    """decide writes its decision over its own store: killed between the two
    renames, the store was left in .<dir>.old-<pid>-.../old, and a rerun began
    an empty store there instead (every batch simulated again)."""
    root = tmp_path / "store"
    store = Store(root, {"seed": 1}, what="decision")
    store.put("0", pd.DataFrame({"x": [1.0]}))
    trash = tmp_path / f".store.old-{_dead_pid()}-abc"
    trash.mkdir()
    root.rename(trash / "old")  # the first rename done, the second not
    again = Store(root, {"seed": 1}, what="decision")
    assert again.has("0")
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_a_store_keeps_the_writes_of_a_process_still_running(tmp_path):
    """Opening a store removed every temporary in it, also the one a sweep
    still running into the same folder was about to rename into place."""
    root = tmp_path / "store"
    Store(root, {"seed": 1}, what="sweep")
    busy = root / "points" / f".3.parquet.tmp-{os.getppid()}-ab"
    stale = root / "points" / f".4.parquet.tmp-{_dead_pid()}-ab"
    for path in (busy, stale):
        path.write_text("half")
    Store(root, {"seed": 1}, what="sweep")
    assert busy.exists() and not stale.exists()


def test_a_lock_file_no_process_holds_is_taken_whatever_it_names(tmp_path):
    """A killed sweep's lock names its process id; a later command started as
    the same id (each one is process 1 in a container) was refused as
    "another sweep is writing this store (process 1)", for good. What is held
    is the operating system's lock on the file, not the id in it: a file no
    process holds is taken, whichever process it names, even one that runs."""
    root = tmp_path / "store"
    root.mkdir()
    for named in (os.getpid(), os.getppid()):
        (root / LOCK).write_text(f"{named}\n")
        with held(root, "sweep"):
            assert (root / LOCK).read_text() == f"{os.getpid()}\n"
        assert list(root.iterdir()) == []


def test_a_lock_ends_with_its_process_not_with_its_file(tmp_path):
    """A store another process holds is refused, by `held` and by
    `Store.check`, naming that process; killed (SIGKILL, its lock file left
    behind), its store is taken at once, though a worker it forked under the
    lock still runs."""
    root = tmp_path / "store"
    with held_elsewhere(root, "sweep", worker=True) as holder:
        busy = f"{root}: another sweep is writing this store (process {holder.pid});"
        with pytest.raises(MigsimError) as refused:
            with held(root, "sweep"):
                pass
        assert str(refused.value).startswith(busy)
        with pytest.raises(MigsimError) as refused:
            Store.check(root, {"seed": 1}, what="sweep")
        assert str(refused.value).startswith(busy)
        assert [p.name for p in root.iterdir()] == [LOCK]
        holder.kill()
        os.kill(holder.worker, 0)  # runs on, its copy of the lock's descriptor closed
        assert [p.name for p in root.iterdir()] == [LOCK]
        Store.check(root, {"seed": 1}, what="sweep")
        with held(root, "sweep"):
            assert (root / LOCK).read_text() == f"{os.getpid()}\n"
        assert list(root.iterdir()) == []


def _race(root, barrier, conn, slower):
    """In a forked process: take the store in ``root`` at the barrier, any
    removal of a file ``slower`` seconds late (the window between judging a
    lock stale and removing it, widened), and hold it until told."""
    unlink = os.unlink

    def late(*args, **kwargs):
        time.sleep(slower)
        return unlink(*args, **kwargs)

    os.unlink = late
    barrier.wait()
    try:
        with held(root, "sweep"):
            conn.send("held")
            conn.recv()
    except MigsimError:
        conn.send("refused")


def test_two_commands_taking_a_stale_lock_at_once_end_with_one_holder(tmp_path):
    """Two commands finding a killed one's lock each judged it stale, then
    removed it to make their own: the later removal took the earlier one's
    fresh lock, and both wrote the store. Exactly one holds it now."""
    context = multiprocessing.get_context("fork")
    root = tmp_path / "store"
    root.mkdir()
    dead = _dead_pid()
    for _ in range(3):
        (root / LOCK).write_text(f"{dead}\n")
        barrier = context.Barrier(2)
        pipes = [context.Pipe() for _ in range(2)]
        racers = [
            context.Process(target=_race, args=(root, barrier, theirs, slower))
            for (_, theirs), slower in zip(pipes, (0.02, 0.05), strict=True)
        ]
        for racer in racers:
            racer.start()
        try:
            answers = [ours.recv() for ours, _ in pipes]
        finally:
            for (ours, _), racer in zip(pipes, racers, strict=True):
                if racer.is_alive():
                    ours.send("end")
                racer.join(30)
        assert sorted(answers) == ["held", "refused"]
        assert list(root.iterdir()) == []


def test_a_lock_that_is_not_a_regular_file_is_refused_and_not_followed(tmp_path):
    """The lock is opened to be taken (made if missing): a link named
    ``.migsim.lock`` is not followed (the file it points to was written
    over), nor a FIFO opened to wait; either is refused, left as it was."""
    root = tmp_path / "store"
    root.mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    (root / LOCK).symlink_to(tmp_path / "notes.txt")
    with pytest.raises(OSError, match="not a regular file"):
        with held(root, "sweep"):
            pass
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (root / LOCK).unlink()
    os.mkfifo(root / LOCK)
    with pytest.raises(OSError, match="not a regular file"):
        with held(root, "sweep"):
            pass
    assert [p.name for p in root.iterdir()] == [LOCK]


def test_a_folder_holding_only_a_lock_no_one_holds_is_empty(tmp_path):
    """A sweep killed before its first manifest leaves its folder holding only
    its lock: another command's output there was refused as existing, and
    with --overwrite as a folder migsim did not write. Held by no one, it is
    as good as empty (the result replaces it); held, it is refused."""
    root = tmp_path / "out"
    root.mkdir()
    (root / LOCK).write_text(f"{_dead_pid()}\n")
    refuse_existing(root, overwrite=False)
    refuse_foreign(root)
    with output_dir(root) as staging:
        (staging / "a.txt").write_text("a")
    assert [p.name for p in root.iterdir()] == ["a.txt"]
    root = tmp_path / "compared"  # compare checks its own kind of folder
    root.mkdir()
    (root / LOCK).write_text(f"{os.getpid()}\n")
    write_comparison([], {}, root, overwrite=True)
    assert [p.name for p in root.iterdir()] == ["comparison.json"]
    root = tmp_path / "busy"
    with held_elsewhere(root, "sweep"):
        with pytest.raises(FileExistsError, match="exists"):
            refuse_existing(root, overwrite=False)
        with pytest.raises(FileExistsError, match="not a folder migsim wrote"):
            refuse_foreign(root)


def test_a_fresh_start_interrupted_while_emptying_can_start_fresh_again(
    tmp_path, monkeypatch
):
    """Ctrl-C while --fresh emptied a store could leave its points without
    its manifest.json: a folder refused ever after, --fresh or not."""
    real = os.unlink
    removed = 0
    while True:
        root = tmp_path / f"store{removed}"
        old = Store(root, {"seed": 1}, what="sweep")
        for name in "01234":
            old.put(name, pd.DataFrame({"x": [1.0]}))
        calls = [0]

        def unlink(*args, stop=removed, calls=calls, **kwargs):
            if calls[0] == stop:
                raise KeyboardInterrupt
            calls[0] += 1
            return real(*args, **kwargs)

        with monkeypatch.context() as patched:
            patched.setattr(os, "unlink", unlink)
            try:
                Store(root, {"seed": 2}, what="sweep", fresh=True)
                break  # every file was removed without an interrupt
            except KeyboardInterrupt:
                pass
        again = Store(root, {"seed": 2}, what="sweep", fresh=True)
        assert again.definition == {"seed": 2} and not again.has("0")
        removed += 1
    assert removed >= 6  # an interrupt before each file's removal was tried


def test_fresh_never_empties_a_folder_that_is_not_a_store(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    for fresh in (False, True):
        with pytest.raises(MigsimError, match="not a decision store"):
            Store(root, {"seed": 1}, what="decision", fresh=fresh)
    assert (root / "keep.txt").read_text() == "mine"


def test_a_store_clears_writes_cut_short_and_none_keeps_nothing(tmp_path):
    root = tmp_path / "store"
    Store(root, {"seed": 1}, what="sweep")
    stray = root / "points" / f".3.parquet.tmp-{_dead_pid()}-ab"
    stray.write_text("half")
    Store(root, {"seed": 1}, what="sweep")
    assert not stray.exists()
    nothing = Store(None, {"seed": 1}, what="decision")
    assert nothing.put("0", pd.DataFrame({"x": [1]})) is None
    assert nothing.get("0") is None and not nothing.has("0")
