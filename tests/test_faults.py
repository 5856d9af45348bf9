"""Faults of the machine, not of the input: a disk that refuses a write
part-way (a full disk, a file size limit). Each is one line naming the output
the user gave, exit status 2, and nothing left behind that looks like a
result. Each test here failed before its fix."""

from __future__ import annotations

import json
import os
import resource
import signal
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BASELINE
from hostile import EPCL, cli, one_line_exit_2, replace_line, write

import migsim.cli.runs as runs
import migsim.output.report as report
import migsim.output.spreadsheets as spreadsheets
import migsim.runner.runner  # noqa: F401 - loaded here once, not in each child
from migsim.cli.main import main
from migsim.model.scenario import load_scenario
from migsim.results.results import Results

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

#: A scenario of 60 days: a replication runs in a few milliseconds.
TINY = replace_line(EPCL, "horizon_days", "60")


def _limited(cwd: Path, args: list[str], patch=None) -> tuple[int, str]:
    """``migsim ARGS`` in a forked child (the limit is the child's alone), its
    files limited to 1 byte (as ``ulimit -f``: a write past it fails with
    EFBIG, Python ignoring SIGXFSZ); with ``patch`` (called in the child with
    the function that sets the limit) only from where that puts it. Returns
    the exit status and stderr."""
    read, written = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing of its runs after it is done
        try:
            os.close(read)
            os.chdir(cwd)
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]

            def limit() -> None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))

            patch(limit) if patch is not None else limit()
            result = CliRunner().invoke(main, args)
            answer = [result.exit_code, result.stderr]
            os.write(written, json.dumps(answer).encode())
        finally:
            os._exit(0)
    os.close(written)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    code, err = json.loads(answer)
    return code, err


def test_a_full_disk_under_the_daily_rows_names_where_they_go(tmp_path):
    """The run's streamed daily rows (a nameless file beside OUTDIR) failed in
    Arrow: 'Error: Error writing bytes to file. Detail: [errno 27] File too
    large', naming no file."""
    write(tmp_path, TINY)
    code, err = _limited(tmp_path, ["run", "sc.yaml", "-n", "1", "-q", "-o", "out"])
    assert (code, err) == (2, f"Error: {tmp_path.resolve()}: File too large\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.yaml"]


def test_a_full_disk_under_a_run_folder_names_the_folder(tmp_path):
    """A file of the run folder failed with 'Error: File too large' (a
    failed write names no file): now the folder given, as a disk refusing the
    folder itself is named."""

    def at_write(limit):
        real = Results.write

        def write_limited(self, *args, **kwargs):
            limit()
            return real(self, *args, **kwargs)

        Results.write = write_limited

    write(tmp_path, TINY)
    args = ["run", "sc.yaml", "-n", "1", "-q", "-o", "out"]
    code, err = _limited(tmp_path, args, at_write)
    assert (code, err) == (2, "Error: out: File too large\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.yaml"]


def test_a_report_whose_page_the_disk_refuses_leaves_no_runs(tmp_path):
    """The page is written after the scenarios ran into r_runs/: a disk that
    refused it left those runs behind (and said only 'Error: File too
    large')."""

    def at_page(limit):
        real = runs.atomic_text
        # the page and the run's charts and workbook are not what is tested
        # here (and take seconds): a page of one line, a run of its tables
        report.render_report = lambda *args, **kwargs: "<html></html>"
        spreadsheets.write_run_outputs = lambda *args, **kwargs: None

        def page_limited(*args, **kwargs):
            limit()
            return real(*args, **kwargs)

        runs.atomic_text = page_limited

    write(tmp_path, TINY)
    args = ["report", "sc.yaml", "-n", "1", "-q", "-o", "r.html"]
    code, err = _limited(tmp_path, args, at_page)
    assert (code, err) == (2, "Error: r.html: File too large\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.yaml"]


def test_an_output_of_a_long_legal_name_is_written_and_replaced(tmp_path):
    """A name of 240 bytes is legal (a file system allows 255), but its
    staging folder's name, ``.<name>.partial-<pid>-<random>``, was not: 'File
    name too long', exit 2, for a folder the user may name (``run -o``)."""
    from migsim.common.files import output_dir

    target = tmp_path / ("ü" * 120)  # 240 bytes in UTF-8
    for text in ("first", "second"):  # a staging folder, then a trash folder
        with output_dir(target, overwrite=True) as staging:
            (staging / "summary.json").write_text(text)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert (target / "summary.json").read_text() == "second"


def test_a_file_of_a_long_legal_name_is_written(tmp_path):
    """The same for a file (a report, a calibrated scenario): its temporary
    ``.<name>.tmp-<pid>-<random>`` was 256 bytes or more for a name of 236."""
    from migsim.common.files import atomic_text

    page = tmp_path / ("p" * 231 + ".html")
    atomic_text(page, "<html></html>")
    assert [p.name for p in tmp_path.iterdir()] == [page.name]
    assert page.read_text() == "<html></html>"


class _InterruptingDate(date):
    """A date whose first reading in YAML's form brings a Ctrl-C, as one that
    lands while pydantic calls migsim's serializers (`_dump_date_spec`)."""

    sent = False

    def isoformat(self) -> str:
        if not _InterruptingDate.sent:
            _InterruptingDate.sent = True
            signal.raise_signal(signal.SIGINT)
        return super().isoformat()


@pytest.fixture
def ctrl_c():
    """Ctrl-C raises KeyboardInterrupt here, as in the program (a test
    runner's worker may ignore it); the next date brings one."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    _InterruptingDate.sent = False
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_while_a_scenario_is_validated_is_an_interrupt(ctrl_c):
    """Pydantic makes an exception in a serializer or validator a validation
    error: a Ctrl-C there was a ScenarioError ('Error calling function
    `_dump_date_spec`: KeyboardInterrupt'), so a sweep killed while it built a
    point's scenario recorded the point 'invalid', and its resume kept it."""
    data = load_scenario(BASELINE).to_dict()
    data["cohorts"][0]["eligible_from"] = _InterruptingDate(2019, 12, 9)
    with pytest.raises(KeyboardInterrupt):
        load_scenario(data)
    assert _InterruptingDate.sent


def test_a_ctrl_c_while_a_scenario_is_written_out_is_an_interrupt(ctrl_c):
    """In a serializer it came out as a PydanticSerializationError (a
    traceback, exit 1, not 'Aborted!'); in a discriminator pydantic only
    warned and went on, and the command finished with its interrupt lost."""
    scenario = load_scenario(BASELINE)
    cohort = scenario.cohorts[0].model_copy(
        update={"eligible_from": _InterruptingDate(2019, 12, 9)}
    )
    changed = scenario.model_copy(update={"cohorts": [cohort]})
    with pytest.raises(KeyboardInterrupt):
        changed.to_yaml()
    assert _InterruptingDate.sent


def test_a_folder_another_command_wrote_meanwhile_is_not_replaced(tmp_path):
    """Two runs with one ``-o``, both started while it was free: both said
    they had written it (exit 0), and the later one's folder silently replaced
    the earlier's. Without --overwrite the later one now refuses, one line,
    and leaves the other's result and no staging folder."""
    from migsim.common.files import output_dir

    target = tmp_path / "out"
    with pytest.raises(FileExistsError) as refused:
        with output_dir(target) as staging:
            (staging / "summary.json").write_text("mine")
            target.mkdir()  # the other run's folder, renamed into place first
            (target / "summary.json").write_text("theirs")
    assert str(refused.value) == (
        f"{target}: written by another command while this one ran; not "
        "replacing it (use --overwrite to replace it)"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (target / "summary.json").read_text() == "theirs"


def test_an_empty_folder_made_meanwhile_is_still_taken(tmp_path):
    """An empty folder is no result: ``-o`` takes it, as it does one that was
    there at the start."""
    from migsim.common.files import output_dir

    target = tmp_path / "out"
    with output_dir(target) as staging:
        (staging / "summary.json").write_text("mine")
        target.mkdir()
    assert (target / "summary.json").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_folder_that_cannot_be_moved_aside_is_named_as_given(tmp_path, monkeypatch):
    """--overwrite moves the old folder into a trash folder beside it first:
    a parent made read-only while a decision ran said 'Error:
    dir/.out.old-30513-x6wkzv69: Permission denied', a name the user never
    gave. The old folder stays as it was."""
    import tempfile

    from migsim.common.files import output_dir

    real = tempfile.mkdtemp

    def refused(*args, prefix="", **kwargs):
        if ".old-" in prefix:  # the parent turned read-only after staging
            raise PermissionError(13, "Permission denied", f"{prefix}abcd")
        return real(*args, prefix=prefix, **kwargs)

    target = tmp_path / "out"
    target.mkdir()
    (target / "summary.json").write_text('{"migsim_version": "0"}')
    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    with pytest.raises(PermissionError) as refused_error:
        with output_dir(target, overwrite=True) as staging:
            (staging / "summary.json").write_text("new")
    assert str(refused_error.value) == f"[Errno 13] Permission denied: '{target}'"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (target / "summary.json").read_text() == '{"migsim_version": "0"}'


def test_an_output_under_a_file_says_the_file_is_not_a_folder(tmp_path):
    """``-o notes.txt/out`` said '... cannot write there: File exists' (run)
    or 'Error: notes.txt: File exists' (forecast, backtest, sensitivity,
    calibrate): mkdir's own reason, as though the file being there were the
    fault."""
    write(tmp_path, TINY)
    (tmp_path / "notes.txt").write_text("mine")
    result = cli("run", "sc.yaml", "-n", "1", "-o", "notes.txt/out", cwd=tmp_path)
    assert one_line_exit_2(result) == "Error: notes.txt: Not a directory"
    from migsim.common.files import output_dir  # forecast's, backtest's, ...

    with pytest.raises(NotADirectoryError) as refused:
        with output_dir(tmp_path / "notes.txt" / "out"):
            pass
    assert str(refused.value) == (
        f"[Errno 20] Not a directory: '{tmp_path / 'notes.txt'}'"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "sc.yaml"]


def test_an_output_under_a_file_is_refused_before_any_work(tmp_path, monkeypatch):
    """``forecast``, ``backtest``, ``sensitivity`` and ``calibrate`` found an
    output under a file only when they wrote their result, after all their
    work: each command's refusal now comes first (here, sensitivity's
    measuring would fail the test), and nothing is made."""
    import migsim.experiments.sensitivity as sensitivity

    def measured(*args, **kwargs):
        raise AssertionError("measured before the output was checked")

    monkeypatch.setattr(sensitivity, "sensitivity", measured)
    write(tmp_path, TINY)
    (tmp_path / "notes.txt").write_text("mine")
    args = ["--range", "capacity.daily_cap=50:150", "-n", "2"]
    result = cli("sensitivity", "sc.yaml", *args, "-o", "notes.txt/a/b", cwd=tmp_path)
    assert one_line_exit_2(result) == "Error: notes.txt: Not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "sc.yaml"]


#: Each command with an output, its arguments up to ``-o``.
_OUTPUTS = {
    "run": ["run", "sc.yaml", "-n", "1"],
    "sweep": ["sweep", "sc.yaml", "--grid", "capacity.daily_cap=50,100", "-n", "1"],
    "decide": ["decide", str(BASELINE.parent / "questions" / "opsg_ramp_basis.yaml")],
    "sensitivity": ["sensitivity", "sc.yaml", "--range", "capacity.daily_cap=50:150"],
    "forecast": ["forecast", "sc.yaml", "--actuals", "a.csv", "--as-of", "2019-12-01"],
    "backtest": ["backtest", "sc.yaml", "--actuals", "a.csv"],
    "calibrate": ["calibrate", "sc.yaml", "--actuals", "a.csv"],
    "report": ["report", "sc.yaml", "-n", "1"],
}


def _unwritable(monkeypatch, folder: Path) -> None:
    """``folder`` unwritable as `migsim.common.files` asks (``os.access``):
    root may write in any folder, so a chmod proves nothing there."""
    import migsim.common.files as files

    real = os.access
    monkeypatch.setattr(
        files.os,
        "access",
        lambda path, mode, **kw: (
            os.fspath(path) != str(folder) and real(path, mode, **kw)
        ),
    )


@pytest.mark.parametrize("command", list(_OUTPUTS))
def test_an_output_in_a_folder_that_cannot_be_written_is_refused_first(
    tmp_path, monkeypatch, command
):
    """``-o read-only/out`` was found only when the result was written, after
    all the work (or, for run, said 'cannot write there' of its spill file):
    refused first, naming the output and the folder, nothing made. The folder
    is made unwritable by ``os.access`` here: root may write in any folder."""
    write(tmp_path, TINY)
    (tmp_path / "a.csv").write_text("date,cohort,migrated\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    _unwritable(monkeypatch, locked)
    output = "locked/out.yaml" if command == "calibrate" else "locked/out"
    result = cli(*_OUTPUTS[command], "-o", output, cwd=tmp_path)
    assert one_line_exit_2(result) == (
        f"Error: {output}: cannot write there: {locked} is not writable"
    )
    assert list(locked.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "locked", "sc.yaml"]


def test_a_store_is_checked_where_it_is_written(tmp_path, monkeypatch):
    """A sweep store is written into: one that is there needs only itself
    writable (its parent may be read-only), one that is not needs its parent."""
    import migsim.common.files as files

    store = tmp_path / "store"
    store.mkdir()
    _unwritable(monkeypatch, tmp_path)
    files.refuse_unwritable(store, inside=True)
    with pytest.raises(PermissionError, match=f"{tmp_path} is not writable"):
        files.refuse_unwritable(store)
    with pytest.raises(PermissionError, match=f"{tmp_path} is not writable"):
        files.refuse_unwritable(tmp_path / "new", inside=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a read-only folder")
def test_a_read_only_folder_is_refused_before_the_run(tmp_path):
    """As the test above, with the folder's own permissions."""
    write(tmp_path, TINY)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = cli("run", "sc.yaml", "-n", "1", "-o", "locked/a/out", cwd=tmp_path)
        assert one_line_exit_2(result) == (
            f"Error: locked/a/out: cannot write there: {locked} is not writable"
        )
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_a_one_file_output_named_as_a_folder_is_refused(tmp_path):
    """``report -o d/r.html/`` wrote the page as the file ``d/r.html`` (the
    slash dropped by pathlib), as ``calibrate -o cal.yaml/`` did its
    scenario: a name ending in a separator names a folder, and these
    commands write one file. Refused first, nothing made."""
    write(tmp_path, TINY)
    (tmp_path / "actuals.csv").write_text("date,cohort,migrated\n")
    report = cli("report", "sc.yaml", "-n", "2", "-o", "d/r.html/", cwd=tmp_path)
    assert one_line_exit_2(report) == (
        "Error: d/r.html/: names a folder; this command writes one file (e.g. d/r.html)"
    )
    args = ["--actuals", "actuals.csv", "-o", "cal.yaml/"]
    calibrate = cli("calibrate", "sc.yaml", *args, cwd=tmp_path)
    assert one_line_exit_2(calibrate).startswith("Error: cal.yaml/: names a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actuals.csv", "sc.yaml"]


def test_a_file_that_cannot_be_renamed_into_place_is_named_as_given(
    tmp_path, monkeypatch
):
    """A sweep store made read-only while it ran said 'Error:
    dir/out/.sweep.png.tmp-2964-c1590434: Permission denied': the rename of
    a finished temporary into place named the temporary."""
    from migsim.common.files import atomic_text

    def read_only(source, target, *args, **kwargs):  # rename(2) in such a folder
        raise PermissionError(13, "Permission denied", os.fspath(source))

    chart = tmp_path / "sweep.png"
    chart.write_text("old")
    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(PermissionError) as refused:
        atomic_text(chart, "new")
    assert str(refused.value) == f"[Errno 13] Permission denied: '{chart}'"
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.png"]
    assert chart.read_text() == "old"


def _stops_blocked() -> bool:
    """In a pool worker: whether SIGTERM is blocked there."""
    return signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signals")
def test_a_kill_while_the_pool_forks_comes_after_the_fork():
    """``kill PID`` is an interrupt (`terminate_as_interrupt`), but only Ctrl-C
    was held while the pool forked: one that landed there was raised inside
    the fork's own handlers and printed as ignored (a sensitivity run so
    stopped exited 0), or left the pool half made and the command hung after
    'Aborted!'. Now it comes once the fork is done; the workers still die
    of SIGTERM (it is not left blocked there)."""
    from migsim.common.lifeline import interrupts_held, terminate_as_interrupt
    from migsim.runner import runner

    previous = signal.getsignal(signal.SIGTERM)
    terminate_as_interrupt()
    reached = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_held():
                os.kill(os.getpid(), signal.SIGTERM)
                reached = True  # the fork's work goes on to its end
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert reached
    with runner.executor(workers=2) as pool:
        answers = [blocked for _, blocked in pool.imap(_stops_blocked, [()] * 2)]
    assert answers == [False, False]
