"""backlog.png drawn aside (a forked process, or a painter made ready when the run
started) is the picture drawn in place; the painter never outlives its run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

import migsim
from migsim.output import painter as painters
from migsim.output import run_charts
from migsim.output.run_charts import charts_aside, write_run_charts


@pytest.fixture(scope="module")
def results():
    return migsim.run("scenarios/nov2019_epcl.yaml", replications=4, seed=3)


def test_drawn_aside_is_drawn_in_place(results, tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "aside").mkdir()
    write_run_charts(results, tmp_path / "here")
    with charts_aside(results, tmp_path / "aside"):
        assert painters._can_fork()  # Linux, no other threads: it forks
    here = (tmp_path / "here" / "backlog.png").read_bytes()
    assert (tmp_path / "aside" / "backlog.png").read_bytes() == here


def test_without_a_fork_it_is_drawn_after_the_body(results, tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    (tmp_path / "after").mkdir()
    write_run_charts(results, tmp_path / "here")
    monkeypatch.setattr(painters, "_can_fork", lambda: False)
    with charts_aside(results, tmp_path / "after"):
        assert not (tmp_path / "after" / "backlog.png").exists()
    assert (tmp_path / "after" / "backlog.png").stat().st_size > 0
    here = (tmp_path / "here" / "backlog.png").read_bytes()
    assert (tmp_path / "after" / "backlog.png").read_bytes() == here


def test_a_chart_that_fails_fails_with_its_own_error(results, tmp_path, monkeypatch):
    def broken(*args):
        raise ValueError("no picture")

    monkeypatch.setattr(run_charts, "_draw_backlog", broken)
    with pytest.raises(ValueError, match="no picture"):
        with charts_aside(results, tmp_path):
            pass


def test_a_painter_made_ready_early_draws_the_same_picture(results, tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "painted").mkdir()
    write_run_charts(results, tmp_path / "here")
    with run_charts.chart_painter() as painter:
        assert painter is not None and painter.process.is_alive()
        with charts_aside(results, tmp_path / "painted", painter=painter):
            assert painter.handed  # the painter drew it, no second fork
        assert painter.process.exitcode == 0
    here = (tmp_path / "here" / "backlog.png").read_bytes()
    assert (tmp_path / "painted" / "backlog.png").read_bytes() == here


def test_an_unused_painter_is_gone_when_the_run_ends(tmp_path):
    with run_charts.chart_painter() as painter:
        pass
    assert not painter.process.is_alive()
    assert painter.process.exitcode is not None
    assert list(tmp_path.iterdir()) == []
    with run_charts.chart_painter(wanted=False) as nobody:
        assert nobody is None


def _broken(*args):
    """A drawing that fails (at module level: a painter is sent it by pickle)."""
    raise ValueError("no picture")


def test_a_painter_that_fails_fails_with_its_own_error(results, tmp_path, monkeypatch):
    monkeypatch.setattr(run_charts, "_draw_backlog", _broken)
    with run_charts.chart_painter() as painter:
        with pytest.raises(ValueError, match="no picture"):
            with charts_aside(results, tmp_path, painter=painter):
                assert painter.handed  # it failed there, then here
        assert painter.process.exitcode == 1


def test_a_job_that_does_not_pickle_is_drawn_by_a_fork(tmp_path):
    drawn = tmp_path / "drawn.txt"

    def local(path):  # defined here: no pickle can name it
        path.write_text("drawn")

    with painters.chart_painter() as painter:
        with painters.drawn_aside(painter, local, drawn):
            assert not painter.handed
    assert drawn.read_text() == "drawn"


def test_a_painter_that_is_gone_is_replaced_by_a_fork(results, tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "forked").mkdir()
    write_run_charts(results, tmp_path / "here")
    with run_charts.chart_painter() as painter:
        painter.process.kill()
        painter.process.join()
        with charts_aside(results, tmp_path / "forked", painter=painter):
            assert not painter.handed
    assert (tmp_path / "forked" / "backlog.png").stat().st_size > 0
    here = (tmp_path / "here" / "backlog.png").read_bytes()
    assert (tmp_path / "forked" / "backlog.png").read_bytes() == here


def test_a_painter_dies_with_a_killed_run(tmp_path):
    script = (
        "import os, signal, sys\n"
        "from migsim.output.run_charts import chart_painter\n"
        "with chart_painter() as painter:\n"
        "    print(painter.process.pid, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    pid = int(done.stdout.split()[0])
    for _ in range(100):  # the kernel's signal, or the lifeline within 0.25 s
        if not _running(pid):
            break
        time.sleep(0.05)
    assert not _running(pid)


def test_a_chart_drawn_aside_without_a_painter_dies_with_a_killed_run(tmp_path):
    """A chart drawn in a process forked for it (a report's or compare's runs,
    no painter) went on drawing after its command was killed."""
    script = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from migsim.output.painter import drawn_aside\n"
        "def draw(path):\n"
        "    path.write_text(str(os.getpid()))\n"
        "    time.sleep(60)\n"
        "path = Path(sys.argv[1])\n"
        "with drawn_aside(None, draw, path):\n"
        "    while not path.exists() or not path.read_text():\n"
        "        time.sleep(0.01)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    drawn = tmp_path / "drawn"
    done = subprocess.run(  # no pipes: the drawing process would hold them
        [sys.executable, "-c", script, str(drawn)], timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    pid = int(drawn.read_text())
    for _ in range(100):  # the kernel's signal, or the lifeline within 0.25 s
        if not _running(pid):
            break
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for init is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def _refuse():
    raise ValueError("does not unpickle here")


class _Unpicklable:
    """Pickles, but its unpickling raises (as a job might in the painter)."""

    def __reduce__(self):
        return (_refuse, ())


def _write_drawn(path, _what) -> None:
    path.write_text("drawn")


def test_a_job_the_painter_cannot_read_is_drawn_here_quietly(tmp_path, capfd):
    drawn = tmp_path / "drawn.txt"
    with painters.chart_painter() as painter:
        with painters.drawn_aside(painter, _write_drawn, drawn, _Unpicklable()):
            assert painter.handed
        assert painter.process.exitcode == 1
    assert drawn.read_text() == "drawn"
    assert "Traceback" not in capfd.readouterr().err
