"""What every ``migsim run`` pays whatever its replications: backlog.png's
painter never outlives the command, and the program ends without Python's
last garbage collections (a process exiting needs none)."""

from __future__ import annotations

import gc
import multiprocessing
import sys

import pytest
from click.testing import CliRunner
from conftest import BASELINE

from migsim.cli import main as cli_main


def test_a_run_draws_its_chart_and_leaves_no_painter(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli_main.main, ["run", str(BASELINE), "-n", "2", "-o", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "backlog.png").stat().st_size > 0
    assert multiprocessing.active_children() == []


def test_a_refused_run_leaves_no_painter(tmp_path):
    result = CliRunner().invoke(
        cli_main.main,
        ["run", str(BASELINE), "--set", "nonsense=1", "-o", str(tmp_path / "x")],
    )
    assert result.exit_code == 2
    assert multiprocessing.active_children() == []
    assert not (tmp_path / "x").exists()


def test_the_program_skips_the_last_collections(monkeypatch):
    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(sys, "argv", ["migsim", "--version"])
    with pytest.raises(SystemExit):
        cli_main.main()  # as the console script calls it
    assert frozen == [True]
    with pytest.raises(SystemExit):
        cli_main.main(["--version"])  # from Python: the caller's gc is left alone
    assert frozen == [True]


def test_the_first_batch_back_loads_what_the_intervals_need():
    from migsim.cli.runs import _first_back

    seen: list[object] = []
    progress = _first_back(seen.append, lambda: seen.append("load"))
    for done in (5, 5, 3):
        progress(done)
    assert seen == [5, "load", 5, 3]  # once, after the bar has moved
    quiet: list[int] = []
    progress = _first_back(quiet.append, None)  # one replication or worker
    progress(1)
    assert quiet == [1]
