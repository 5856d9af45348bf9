"""Hostile outputs and unlucky operators: output folders that cannot be
written or are not migsim's, killed runs and sweeps, stores and run folders
that are not what they claim, figures and summaries of odd results. Nothing is
left behind that looks like a result (issue 17); each test here failed before
its fix."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import BASELINE
from hostile import (
    ACTUALS_SCENARIO,
    EPCL,
    HEADER,
    cli,
    one_line_exit_2,
    replace_line,
    write,
)

from migsim.cli.main import main
from migsim.common.errors import MigsimError


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _started(pid: int) -> int:
    """When process ``pid`` started (clock ticks since boot)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def _interruptible() -> None:
    """In the child before exec: Ctrl-C as at a terminal (a test runner's
    worker may ignore it, and the command would inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def _a_long_run(
    tmp_path: Path,
    command: str,
    outdir: Path,
    *extra: str,
    children: int = 2,
    stderr: int = subprocess.DEVNULL,
):
    """``migsim COMMAND`` of a long scenario with ``-j 2`` in a child process,
    in its own process group (as a terminal runs it): yields it and its
    ``children`` (the workers, and for ``run -o`` the chart's painter), oldest
    first, once they run; whatever is left is killed after."""
    long = write(tmp_path, replace_line(EPCL, "horizon_days", "1800"))
    args = ["-n", "400", "-j", "2", "-q", "-o", str(outdir), *extra]
    parent = subprocess.Popen(
        [sys.executable, "-m", "migsim", command, str(long), *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_interruptible,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < children and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = _children(parent.pid)
        assert len(workers) >= children, "the workers never started"
        yield parent, sorted(workers, key=_started)
    finally:
        parent.kill()
        for pid in workers:  # a failed test's own workers
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find workers")
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_workers_end_when_their_parent_is_killed(tmp_path, command):
    extra = ["--grid", "capacity.daily_cap=1000,1500,2000,2500"]
    with _a_long_run(
        tmp_path, command, tmp_path / "out", *(extra if command == "sweep" else [])
    ) as (parent, workers):
        parent.send_signal(signal.SIGKILL)  # no shutdown code runs in the parent
        parent.wait()
        deadline = time.monotonic() + 5
        while any(_running(w) for w in workers):
            assert time.monotonic() < deadline, "workers outlived their parent"
            time.sleep(0.1)
    if command == "run":  # its streamed daily rows had no name: nothing is left
        assert [p.name for p in tmp_path.iterdir() if p.suffix != ".yaml"] == []


def _interrupt_handling() -> tuple[object, bool]:
    """In a pool worker: what SIGINT does there, and whether it is blocked."""
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return signal.getsignal(signal.SIGINT), blocked


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signals")
def test_pool_workers_leave_ctrl_c_to_the_command():
    """Ctrl-C reaches the whole process group: each worker printed its own
    KeyboardInterrupt traceback (waiting for work, or in its initializer).
    Now it only stops the call a worker runs, which it sends back."""
    from migsim.runner import runner

    with runner.executor(workers=2) as pool:
        answers = [answer for _, answer in pool.imap(_interrupt_handling, [()] * 4)]
    assert answers == [(runner._interrupt_call, False)] * 4


def _after_the_run(parent: subprocess.Popen, workers: list[int]) -> str:
    """The command's stderr once it ended; every worker gone with it."""
    _, err = parent.communicate(timeout=30)  # EOF: no worker holds the pipe
    deadline = time.monotonic() + 5
    while any(_running(w) for w in workers):
        assert time.monotonic() < deadline, "workers outlived the command"
        time.sleep(0.1)
    return err.decode()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find workers")
@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("stop", ["ctrl_c", "kill"])
def test_ctrl_c_or_kill_prints_aborted_and_leaves_no_worker_or_file(
    tmp_path, command, stop
):
    """SIGINT to the process group, as a terminal sends it, or SIGTERM to the
    command's process alone (``kill PID``): 'Aborted!', exit 1, no traceback
    from the workers, no process or spill file left (SIGTERM left the run's
    ``.out.partial-<pid>-...`` folder behind)."""
    sweep = ["--grid", "capacity.daily_cap=1000,1500,2000,2500"]
    with _a_long_run(
        tmp_path,
        command,
        tmp_path / "out",
        *(sweep if command == "sweep" else []),
        stderr=subprocess.PIPE,
    ) as (parent, workers):
        time.sleep(0.5)  # the workers are at work
        if stop == "kill":
            parent.terminate()
        else:
            os.killpg(parent.pid, signal.SIGINT)
        err = _after_the_run(parent, workers)
    # 1 after click's 'Aborted!'; now and then Ctrl-C's process ends by the
    # signal itself after printing it (-2, as before these workers changed)
    assert parent.returncode in ((1,) if stop == "kill" else (1, -signal.SIGINT)), err
    assert err.strip() == "Aborted!", err
    kept = ["out"] if command == "sweep" else []  # a sweep's store resumes
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".yaml"] == kept


def test_ctrl_c_while_the_program_loads_is_aborted_not_a_traceback(monkeypatch, capsys):
    """A Ctrl-C in the first tenth of a second, while the command's modules
    load (before click's handling starts), ended in a KeyboardInterrupt
    traceback; the program's entry point says 'Aborted!' and exits 1, as at
    any later moment."""
    import sys

    from migsim.cli import entry

    class Interrupted:  # the import is where the Ctrl-C lands
        def find_spec(self, name, path=None, target=None):
            if name == "migsim.cli.main":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "migsim.cli.main")
    monkeypatch.setattr(sys, "meta_path", [Interrupted(), *sys.meta_path])
    try:
        entry()
    except KeyboardInterrupt:  # caught here, or it would stop the test run
        pytest.fail("the Ctrl-C came out of the program as a traceback")
    except SystemExit as stopped:
        assert stopped.code == 1
    else:
        pytest.fail("the program went on after a Ctrl-C")
    assert capsys.readouterr().err == "Aborted!\n"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find workers")
def test_a_killed_worker_is_one_line_and_leaves_no_worker_or_file(tmp_path):
    """kill -9 of one worker: a BrokenProcessPool traceback, exit 1."""
    with _a_long_run(
        tmp_path, "run", tmp_path / "out", children=3, stderr=subprocess.PIPE
    ) as (parent, children):
        worker = children[-1]  # the youngest: not the painter, forked first
        os.kill(worker, signal.SIGKILL)
        err = _after_the_run(parent, children)
    assert parent.returncode == 1, err
    assert err.strip() == (
        f"Error: a worker process died (killed?): process {worker} ended by "
        "signal SIGKILL"
    ), err
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".yaml"] == []


def test_overwrite_refuses_a_folder_migsim_did_not_write(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious.txt").write_text("mine")
    message = one_line_exit_2(
        cli("run", BASELINE, "-n", "1", "-o", keep, "--overwrite")
    )
    assert "not a folder migsim wrote" in message
    assert [p.name for p in keep.iterdir()] == ["precious.txt"]


def test_outdir_naming_the_working_folder_is_one_line(tmp_path):
    (tmp_path / "summary.json").write_text('{"migsim_version": "0"}')  # migsim's
    result = cli(
        "run", BASELINE, "-n", "1", "-q", "-o", ".", "--overwrite", cwd=tmp_path
    )
    assert "is the current folder or holds it" in one_line_exit_2(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_outdir_naming_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = cli("run", BASELINE, "-n", "1", "-o", "afile", cwd=tmp_path)
    assert "'afile' is a file" in one_line_exit_2(result)


@pytest.mark.parametrize("errno", [28, 30])
def test_a_disk_that_refuses_the_write_is_one_line_and_leaves_nothing(
    tmp_path, monkeypatch, errno
):
    from migsim.results.results import Results

    def refuse(self, directory, *args, **kwargs):
        raise OSError(errno, os.strerror(errno), str(directory))

    monkeypatch.setattr(Results, "write", refuse)
    result = cli("run", BASELINE, "-n", "1", "-q", "-o", "out", cwd=tmp_path)
    assert one_line_exit_2(result) == f"Error: out: {os.strerror(errno)}"
    del result  # the spill folder goes with the results, at the latest at exit
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_a_rerun_removes_the_spill_folder_a_killed_run_left(tmp_path):
    stale = tmp_path / "migsim-daily-999999999-abcd"  # no such process
    stale.mkdir()
    (stale / "daily.parquet").write_bytes(b"partial")
    result = cli("run", BASELINE, "-n", "1", "-q", "-o", "out", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _killed_at_write(outdir: Path, k: int, args: list[str]) -> bool:
    """Run a command in a forked child that dies (os._exit, like SIGKILL: no
    cleanup runs) at its k-th rename into place; True if it got that far."""
    pid = os.fork()
    if pid == 0:  # the child: count renames, die at the k-th
        real, count = os.replace, [0]

        def replace(*args, **kwargs):
            count[0] += 1
            if count[0] == k:
                os._exit(99)
            return real(*args, **kwargs)

        os.replace = replace
        try:
            CliRunner().invoke(main, [*args, "-o", str(outdir)])
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 99


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to kill mid-write")
def test_a_sweep_store_survives_a_kill_at_every_write(tmp_path):
    """Killed at its first manifest write, between a point and the manifest, or
    while writing the table, a rerun resumes and ends as a sweep never killed."""
    tiny = write(tmp_path, replace_line(EPCL, "horizon_days", "60"), "tiny.yaml")
    args = [
        "sweep",
        str(tiny),
        "-n",
        "2",
        "-q",
        "--grid",
        "capacity.daily_cap=1000,2000",
    ]
    whole = tmp_path / "whole"
    assert CliRunner().invoke(main, [*args, "-o", str(whole)]).exit_code == 0
    k = 1
    while True:
        store = tmp_path / f"killed{k}"
        if not _killed_at_write(store, k, args):
            break  # the sweep finished before its k-th write: every write tried
        resumed = CliRunner().invoke(main, [*args, "-o", str(store)])
        assert resumed.exit_code == 0, (k, resumed.output)
        assert (store / "sweep.parquet").read_bytes() == (
            whole / "sweep.parquet"
        ).read_bytes(), k
        assert not [p for p in store.rglob(".*")], k  # no temporaries left
        k += 1
    assert k > 4  # manifest, points, manifest again, table: each was a kill point


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to kill mid-write")
def test_a_forecast_killed_at_any_write_leaves_nothing_once_rerun(tmp_path):
    """A forecast staged its run's files in a second folder beside its own
    staging folder (``..fc.partial-<pid>-....partial-...``) and renamed that
    over it; killed there, it left folders that no rerun removed."""
    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    actuals = write(tmp_path, "date,cumulative_migrated\n2024-01-03,200\n", "a.csv")
    args = ["forecast", str(sc), "--actuals", str(actuals), "--as-of", "2024-01-03"]
    args += ["-n", "2", "-q"]
    k = 1
    while _killed_at_write(tmp_path / "fc", k, args):
        again = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "fc")])
        assert again.exit_code == 0, (k, again.output)
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "a.csv",
            "fc",
            "sc.yaml",
        ], k
        shutil.rmtree(tmp_path / "fc")
        k += 1
    assert k > 1  # the forecast's folder was renamed into place at least once


@pytest.mark.parametrize(
    "manifest",
    ["[1, 2]", '{"definition": 5}', '{"definition": {}, "points": {}}', "{broken"],
)
def test_a_store_whose_manifest_is_not_one_is_one_line_and_fresh_replaces_it(
    tmp_path, manifest
):
    """A manifest.json holding a list raised AttributeError; one that was not
    JSON said 'rerun with --fresh', and --fresh said the same again."""
    store = tmp_path / "sw"
    store.mkdir()
    (store / "manifest.json").write_text(manifest)
    args = ["sweep", BASELINE, "-n", "1", "-q", "-o", "sw"]
    args += ["--grid", "horizon_days=30"]
    message = one_line_exit_2(cli(*args, cwd=tmp_path))
    assert message.startswith("Error: sw/manifest.json: ")
    assert message.endswith("rerun with --fresh to start over")
    result = cli(*args, "--fresh", cwd=tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert (store / "sweep.parquet").is_file()


def test_a_sweep_manifest_whose_points_are_not_the_sweeps_is_one_line(tmp_path):
    args = ["sweep", BASELINE, "-n", "1", "-q", "-o", "sw"]
    args += ["--grid", "horizon_days=30,31"]
    assert cli(*args, cwd=tmp_path).exit_code == 0
    manifest = tmp_path / "sw" / "manifest.json"
    stored = json.loads(manifest.read_text())
    stored["points"] = stored["points"][:1]
    manifest.write_text(json.dumps(stored))
    assert one_line_exit_2(cli(*args, cwd=tmp_path)) == (
        "Error: sw/manifest.json: its points are not this sweep's 2 points; "
        "rerun with --fresh to start over"
    )


def test_a_sweep_whose_every_point_is_invalid_is_one_line_and_leaves_nothing(
    tmp_path,
):
    """It exited 0 and wrote a store, a table and a chart that looked like a result."""
    args = ["sweep", BASELINE, "-n", "1", "-q", "-o", "sw"]
    result = cli(*args, "--grid", "capacity.daily_cap=abc,-5", cwd=tmp_path)
    message = one_line_exit_2(result)
    assert message == (
        "Error: every point of the sweep is invalid (2), nothing was run; point 0: "
        "capacity.daily_cap: a number is needed here, not text 'abc' (write it "
        "without quotes)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_point_of_a_sweep_store_is_computed_again(tmp_path):
    """A point file that is not Parquet stopped the rerun with ArrowInvalid."""
    args = ["sweep", BASELINE, "-n", "1", "-q", "-o", "sw"]
    args += ["--grid", "horizon_days=30,31"]
    assert cli(*args, cwd=tmp_path).exit_code == 0
    whole = (tmp_path / "sw" / "sweep.parquet").read_bytes()
    (tmp_path / "sw" / "points" / "0.parquet").write_text("garbage\n")
    result = cli(*args, cwd=tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "sw/points/0.parquet: damaged (Parquet magic bytes not found in footer. "
        "Either the file is corrupted or this is); removed, it is computed again"
    ]
    assert (tmp_path / "sw" / "sweep.parquet").read_bytes() == whole


@pytest.mark.parametrize("summary", ["[]", '{"seed": "0", "replications": 2}'])
def test_a_report_of_a_run_folder_whose_summary_is_not_one_is_one_line(
    tmp_path, summary
):
    """A summary.json holding a list raised AttributeError."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(summary)
    (run / "scenario.yaml").write_text(EPCL)
    message = one_line_exit_2(cli("report", run, "-o", tmp_path / "r.html"))
    assert message == (
        f"Error: {run}/summary.json: not a run's summary (a JSON object with its "
        "seed and replications)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("same", ["file", "name"])
def test_a_report_of_two_scenarios_of_one_name_runs_neither(tmp_path, same):
    """Both run into <report>_runs/<name>/: the second was refused after the
    first had been run and written, which stayed behind looking finished."""
    write(tmp_path, EPCL, "a.yaml")
    write(tmp_path, EPCL.replace("daily_cap: 2000", "daily_cap: 3000"), "b.yaml")
    second = "a.yaml" if same == "file" else "b.yaml"
    result = cli("report", "a.yaml", second, "-n", "1", "-o", "r.html", cwd=tmp_path)
    assert one_line_exit_2(result) == (
        "Error: scenario names must differ in a report: nov2019_epcl (each runs "
        "into r_runs/<name>/; rename one, or give a file once)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml", "b.yaml"]


def test_a_report_that_fails_after_a_run_leaves_no_run_behind(tmp_path, monkeypatch):
    import migsim.output.report as report_module

    def broken(*args, **kwargs):
        raise MigsimError("the page cannot be drawn")

    monkeypatch.setattr(report_module, "render_report", broken)
    write(tmp_path, EPCL, "a.yaml")
    result = cli("report", "a.yaml", "-n", "1", "-o", "r.html", cwd=tmp_path)
    assert one_line_exit_2(result) == "Error: the page cannot be drawn"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml"]


def test_a_report_never_writes_over_its_scenario(tmp_path):
    write(tmp_path, EPCL, "a.yaml")
    result = cli(
        "report", "a.yaml", "-n", "1", "-o", "a.yaml", "--overwrite", cwd=tmp_path
    )
    assert one_line_exit_2(result) == (
        "Error: a.yaml: is the input a.yaml; write the output elsewhere"
    )
    assert (tmp_path / "a.yaml").read_text() == EPCL


@pytest.fixture(scope="module")
def actuals_run(tmp_path_factory) -> Path:
    """A run folder of the small actuals scenario (its daily.parquet is actuals)."""
    where = tmp_path_factory.mktemp("a_run")
    write(where, yaml.safe_dump(ACTUALS_SCENARIO))
    result = cli("run", "sc.yaml", "-n", "2", "-q", "-o", "run", cwd=where)
    assert result.exit_code == 0, result.output
    return where


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (  # the backtest deleted its own actuals (run/ replaced as a whole)
            (
                "backtest", "sc.yaml", "--actuals", "run/daily.parquet",
                "-o", "run", "--overwrite",
            ),
            "run: holds the input run/daily.parquet, which writing the output "
            "would delete",
        ),
        (
            (
                "forecast", "sc.yaml", "--actuals", "run/daily.parquet",
                "--as-of", "2024-01-05", "-o", "run", "--overwrite",
            ),
            "run: holds the input run/daily.parquet",
        ),
        (
            ("run", "run/scenario.yaml", "-o", "run", "--overwrite"),
            "run: holds the input run/scenario.yaml",
        ),
        (  # the report replaced the run's own daily.parquet
            ("report", "run", "-o", "run/daily.parquet", "--overwrite"),
            "run/daily.parquet: is inside the input run",
        ),
    ],
)  # fmt: skip
def test_an_output_never_deletes_or_replaces_an_input_it_holds(
    tmp_path, actuals_run, args, expected
):
    shutil.copytree(actuals_run, tmp_path, dirs_exist_ok=True)
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    daily = (tmp_path / "run" / "daily.parquet").read_bytes()
    message = one_line_exit_2(cli(*args, "-n", "2", "-q", cwd=tmp_path))
    assert message.startswith(f"Error: {expected}"), message
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before
    assert (tmp_path / "run" / "daily.parquet").read_bytes() == daily


def test_a_comparison_with_a_scenario_that_always_clears_on_one_day(tmp_path):
    """compare of a scenario whose clearance day never varies with one whose
    does crashed on the pairing line (its correlation is undefined)."""
    steady = yaml.safe_load(EPCL)
    steady["name"] = "steady"
    for c in steady["cohorts"]:
        c["outcomes"] = {
            "success": 1.0, "stall": 0.0, "rollback": 0.0, "fix_forward": 0.0,
            "dumb": 0.0,
        }  # fmt: skip
        c["eligible_from"] = steady["start_date"]
    write(tmp_path, EPCL, "base.yaml")
    write(tmp_path, yaml.safe_dump(steady), "steady.yaml")
    result = cli("compare", "base.yaml", "steady.yaml", "-n", "3", "-q", cwd=tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "(correlation undefined for the same precision)" in result.output


def test_every_file_of_a_run_folder_has_the_umask_s_mode(tmp_path):
    """daily.parquet, linked from the run's private spill file, stayed 0600
    while every other file of the folder was readable by the group."""
    old = os.umask(0o022)
    try:
        result = cli("run", BASELINE, "-n", "1", "-q", "-o", "out", cwd=tmp_path)
    finally:
        os.umask(old)
    assert result.exit_code == 0, (result.output, result.exception)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert "daily.parquet" in modes
    assert set(modes.values()) == {0o644}, modes


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_an_outdir_where_nothing_can_be_written_is_named_as_given():
    """The message named the run's spill file (/proc/migsim-daily-123-abcd), a
    path the user never gave."""
    message = one_line_exit_2(cli("run", BASELINE, "-n", "1", "-q", "-o", "/proc/out"))
    assert message == "Error: /proc/out: cannot write there: No such file or directory"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_an_output_that_cannot_be_staged_is_named_as_given(tmp_path):
    """The message named the staging folder or temporary file beside the
    output (/proc/.o.partial-123-abcd), not the output given."""
    from migsim.common.files import atomic_text, output_dir

    with pytest.raises(OSError) as caught, output_dir("/proc/o"):
        pass
    assert caught.value.filename == "/proc/o"
    with pytest.raises(OSError) as caught:
        atomic_text("/proc/o.yaml", "x")
    assert caught.value.filename == "/proc/o.yaml"
    message = one_line_exit_2(
        cli("sensitivity", BASELINE, "-n", "1", "-q", "-o", "/proc/o",
            "--range", "capacity.daily_cap=1000:2000")
    )  # fmt: skip
    assert message == "Error: /proc/o: No such file or directory"


def test_a_tornado_of_a_figure_that_never_clears_draws_without_warnings():
    """sensitivity -o over a range where the backlog never clears printed
    NumPy and matplotlib RuntimeWarnings (inf - inf) and drew nothing sensible."""
    import warnings

    import pandas as pd

    from migsim.output.decision_plots import tornado_chart

    inf = float("inf")
    table = pd.DataFrame(
        {
            "figure": ["clearance_day_p50", "clearance_day_p50", "dumb_p90"],
            "field": ["horizon_days", "capacity.daily_cap", "horizon_days"],
            "value_low": [inf, 90.0, 0.0],
            "value_high": [inf, 120.0, 8.0],
            "swing": [0.0, 30.0, 8.0],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = tornado_chart(table, {"clearance_day_p50": inf, "dumb_p90": 4.0})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["clearance day p50 (not cleared: not drawn)", "dumb p90"]
    bars = fig.axes[0].patches
    assert [round(b.get_width()) for b in bars] == [30]  # the finite row only


def test_a_summary_with_cos_alerts_but_no_els_prints(tmp_path):
    """The 'CoS loss alerts not sent' row was placed after the ELS backlog's:
    a scenario with change_of_supplier and no els section ran, then raised
    StopIteration printing its summary (exit 1, nothing written)."""
    data = yaml.safe_load(EPCL)
    data["horizon_days"] = 60
    data["cohorts"][0]["change_of_supplier"] = {
        "annual_rate": 0.18,
        "alert_loss_share": 0.5,
        "until": "2020-01-06",
    }
    path = write(tmp_path, yaml.safe_dump(data))
    result = cli("run", path, "-n", "2", "-q")
    assert result.exit_code == 0, (result.output, result.exception)
    risks = result.output.split("Risks (totals per replication)")[1].splitlines()
    labels = [line[:40].strip() for line in risks[1:] if line.strip()]
    assert labels[:2] == ["devices left dumb", "of which active"]
    assert "CoS loss alerts not sent" in labels
    assert labels.index("CoS loss alerts not sent") > labels.index(
        "peak failure backlog"
    )


def test_an_outdir_that_is_a_symbolic_link_is_written_where_it_points(tmp_path):
    """``-o out --overwrite`` with ``out -> elsewhere/out`` replaced the link by
    a new folder: the results went beside the link, and the folder it pointed
    to kept the earlier run's results, looking like this run's. An empty
    linked folder was refused as 'exists', where an empty folder is taken."""
    where = tmp_path / "disk" / "out"
    where.mkdir(parents=True)
    (tmp_path / "out").symlink_to(where)
    args = ["run", BASELINE, "-n", "1", "-q", "-o", "out"]
    first = cli(*args, cwd=tmp_path)
    assert first.exit_code == 0, (first.output, first.exception)
    assert (tmp_path / "out").is_symlink() and (where / "summary.json").is_file()
    old = json.loads((where / "summary.json").read_text())
    again = cli(*args, "--seed", "7", "--overwrite", cwd=tmp_path)
    assert again.exit_code == 0, (again.output, again.exception)
    assert (tmp_path / "out").is_symlink()
    new = json.loads((where / "summary.json").read_text())
    assert (old["seed"], new["seed"]) == (0, 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "out"]
    assert sorted(p.name for p in where.parent.iterdir()) == ["out"]


def test_an_outdir_link_to_nowhere_is_written_where_it_points(tmp_path):
    (tmp_path / "out").symlink_to(tmp_path / "later")
    result = cli("run", BASELINE, "-n", "1", "-q", "-o", "out", cwd=tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert (tmp_path / "out").is_symlink()
    assert (tmp_path / "later" / "summary.json").is_file()


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
@pytest.mark.parametrize("command", ["run", "sensitivity", "calibrate"])
def test_an_output_that_is_a_symbolic_link_loop_is_one_line(
    tmp_path, overwrite, command
):
    """``-o loop --overwrite`` with loop -> loop2 -> loop raised RuntimeError
    ('Symlink loop') with a traceback; without --overwrite it said 'exists'."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    if command == "calibrate":
        write(tmp_path, "date,cumulative_migrated\n2019-12-20,100\n", "a.csv")
        extra = ["--actuals", "a.csv", "--no-check"]
    elif command == "sensitivity":
        extra = ["--range", "capacity.daily_cap=1000:2000", "--samples", "4"]
    else:
        extra = []
    result = cli(
        command, BASELINE, "-n", "1", "-q", "-o", "loop", *extra, *overwrite,
        cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == ("Error: loop: Too many levels of symbolic links")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["loop", "loop2", *(["a.csv"] if command == "calibrate" else [])]
    )


def test_a_calibrated_scenario_is_written_through_a_link(tmp_path):
    """calibrate -o cal.yaml --overwrite, cal.yaml a link to the shared copy,
    replaced the link by a file: the shared copy kept the old rates."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "cal.yaml").write_text("old: true\n")
    (tmp_path / "cal.yaml").symlink_to(shared / "cal.yaml")
    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    rows = f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n"
    actuals = write(tmp_path, rows, "a.csv")
    result = cli(
        "calibrate", sc, "--actuals", actuals, "-o", "cal.yaml", "--overwrite",
        "--no-check", cwd=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    assert (tmp_path / "cal.yaml").is_symlink()
    calibrated = yaml.safe_load((shared / "cal.yaml").read_text())
    assert calibrated["cohorts"][0]["outcomes"]["alpha"]["success"] >= 80
    assert sorted(p.name for p in shared.iterdir()) == ["cal.yaml"]


@pytest.mark.parametrize("fails", ["moving_the_old_aside", "moving_the_new_in"])
def test_a_replace_that_the_disk_refuses_leaves_the_old_folder_and_no_trash(
    tmp_path, monkeypatch, fails
):
    """``run -o out --overwrite`` with out a mount point (rename: EBUSY) said
    so in one line but left an empty ``.out.old-<pid>-<random>`` beside it; a
    failure to move the new folder in left the old one in that trash and no
    ``out`` at all."""
    import errno

    from migsim.common import files

    target = tmp_path / "out"
    target.mkdir()
    (target / "summary.json").write_text("{}")
    real = os.replace

    def refuse(src, dst, *args, **kwargs):
        old_aside = Path(src) == target
        new_in = Path(dst) == target and ".partial-" in Path(src).name
        if old_aside if fails == "moving_the_old_aside" else new_in:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(files.os, "replace", refuse)
    with (
        pytest.raises(OSError, match="busy"),
        files.output_dir(target, overwrite=True) as staging,
    ):
        (staging / "summary.json").write_text('{"new": 1}')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (target / "summary.json").read_text() == "{}"


def test_a_clearance_chart_of_a_run_that_never_clears_draws_without_warnings():
    """``report`` of a scenario whose backlog never clears in its horizon printed
    matplotlib's 'No artists with labels found to put in legend' on stderr."""
    import warnings

    import pandas as pd

    from migsim.output.plots import clearance_distribution_chart

    never = pd.Series([pd.NaT, pd.NaT])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = clearance_distribution_chart(never, "t", pd.Timestamp("2020-01-23"))
    ax = fig.axes[0]
    assert ax.get_legend() is None
    assert [t.get_text() for t in ax.texts] == [
        "2 of 2 replications not cleared by 23 Jan 2020"
    ]


@pytest.fixture(scope="module")
def a_run(tmp_path_factory):
    """A finished two-replication run folder (copied by each test that damages it)."""
    where = tmp_path_factory.mktemp("run")
    write(where, EPCL, "base.yaml")
    result = cli("run", "base.yaml", "-n", "2", "-q", "-o", "okout", cwd=where)
    assert result.exit_code == 0, result.output
    return where / "okout"


def _parquet_of_other_columns(path: Path) -> None:
    import pandas as pd

    pd.DataFrame({"x": [1]}).to_parquet(path)


def _summary_of(replications: int):
    def damage(path: Path) -> None:
        summary = json.loads(path.read_text())
        summary["replications"] = replications
        path.write_text(json.dumps(summary))

    return damage


@pytest.mark.parametrize(
    ("name", "damage", "expected"),
    [
        (
            "daily.parquet",
            lambda p: p.write_text("garbage\n"),
            "daily.parquet: not a Parquet file: Parquet magic bytes not found",
        ),
        (
            "daily.parquet",
            _parquet_of_other_columns,
            "daily.parquet: column pending: missing",
        ),
        (
            "replications.csv",
            lambda p: p.write_text("a,b\n1,2\n"),
            "replications.csv: column replication: missing",
        ),
        (
            "replications.csv",
            lambda p: (p.unlink(), p.symlink_to("/etc/passwd")),
            "replications.csv: not a table migsim wrote: ",
        ),
        (
            "cohort_replications.csv",
            lambda p: p.write_text("cohort,replication\nnobody,0\n"),
            "cohort_replications.csv: column cohort: names a cohort the scenario",
        ),
        (
            "summary.json",
            _summary_of(1_000_000_000_000),
            "replications.csv: column replication: 2 rows, not the "
            "1,000,000,000,000 replications",
        ),
    ],
)
def test_a_report_of_a_damaged_run_folder_is_one_line(
    tmp_path, a_run, name, damage, expected
):
    """Each crashed with a traceback (ArrowInvalid, KeyError, ParserError) or,
    for a count of 10**12 replications, tried to allocate 1.3 PiB. In a folder
    of an older migsim (no sha256 of its tables in summary.json, which refuses
    any changed table: tests/test_saved_runs.py) these checks are all there is."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(a_run, run)
    summary = json.loads((run / "summary.json").read_text())
    del summary["files"]
    (run / "summary.json").write_text(json.dumps(summary))
    damage(run / name)
    message = one_line_exit_2(cli("report", "run", "-o", "r.html", cwd=tmp_path))
    assert message.startswith(f"Error: run/{expected}"), message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_daily_parquet_copied_in_from_another_run_is_refused(tmp_path, a_run):
    """Another run of the same shape (another seed) has a daily.parquet of the
    same columns and rows: copied into a run folder, the report drew its bands
    beside this run's figures, exit 0. Its footer names its scenario (seed
    included), as summary.json does, written streamed or from memory."""
    import shutil

    import pyarrow.parquet as pq

    import migsim
    from migsim.results.daily import SCENARIO_KEY
    from migsim.results.results import Results
    from migsim.sim.block import simulate

    def named(folder: Path) -> str:
        return (
            pq.read_metadata(folder / "daily.parquet").metadata[SCENARIO_KEY].decode()
        )

    summary = json.loads((a_run / "summary.json").read_text())
    assert named(a_run) == summary["scenario_sha256"]  # streamed by the runner
    write(tmp_path, EPCL, "base.yaml")
    other = cli(
        "run", "base.yaml", "-n", "2", "--seed", "9", "-q", "-o", "other", cwd=tmp_path
    )
    assert other.exit_code == 0, other.output
    scenario = migsim.load_scenario(tmp_path / "base.yaml").with_overrides({"seed": 9})
    kept = Results(scenario, 9, simulate(scenario, 9, [0, 1]))  # rows in memory
    assert kept.daily_path is None
    kept.write(tmp_path / "memory")
    assert named(tmp_path / "memory") == named(tmp_path / "other")
    assert named(tmp_path / "other") != summary["scenario_sha256"]
    run = tmp_path / "run"
    shutil.copytree(a_run, run)
    shutil.copy(tmp_path / "other" / "daily.parquet", run / "daily.parquet")
    message = one_line_exit_2(cli("report", "run", "-o", "r.html", cwd=tmp_path))
    assert message == (
        "Error: run/daily.parquet: holds the replications of another scenario or "
        "seed than this folder's summary.json (copied in from another run?)"
    )
    assert not (tmp_path / "r.html").exists()


def test_the_charts_of_a_one_day_horizon_draw_without_warnings(tmp_path):
    """horizon_days: 1 printed matplotlib's 'identical low and high xlims' for
    run -o and report (and 'AutoDateLocator was unable to pick an appropriate
    interval': one day was widened to four years)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one_day = ["-n", "2", "--set", "horizon_days=1"]
        ran = cli("run", BASELINE, *one_day, "-q", "-o", "out", cwd=tmp_path)
        reported = cli("report", "out", "-o", "out.html", cwd=tmp_path)
        run_first = cli("report", BASELINE, *one_day, "-o", "r.html", cwd=tmp_path)
    for result in (ran, reported, run_first):
        assert result.exit_code == 0, (result.output, result.exception)
        assert "Warning" not in result.stderr
