"""backlog.png drawn aside (a forked process) is the picture drawn in place."""

from __future__ import annotations

import pytest

import migsim
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
        assert run_charts._can_fork()  # Linux, no other threads: it forks
    here = (tmp_path / "here" / "backlog.png").read_bytes()
    assert (tmp_path / "aside" / "backlog.png").read_bytes() == here


def test_without_a_fork_it_is_drawn_after_the_body(results, tmp_path, monkeypatch):
    monkeypatch.setattr(run_charts, "_can_fork", lambda: False)
    with charts_aside(results, tmp_path):
        assert not (tmp_path / "backlog.png").exists()
    assert (tmp_path / "backlog.png").stat().st_size > 0


def test_a_chart_that_fails_fails_with_its_own_error(results, tmp_path, monkeypatch):
    def broken(*args):
        raise ValueError("no picture")

    monkeypatch.setattr(run_charts, "_draw_backlog", broken)
    with pytest.raises(ValueError, match="no picture"):
        with charts_aside(results, tmp_path):
            pass
