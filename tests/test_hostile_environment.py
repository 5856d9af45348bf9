"""A hostile environment: the process's standard streams closed (``>&-``,
``<&-``, ``2>&-``). Run as the program is (``python -m migsim``), since the
streams are the process's own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from hostile import (
    ACTUALS_SCENARIO,
    HEADER,
    cli,
    migsim_process,
    one_line_exit_2,
    write,
)


def _migsim_with(tmp_path, closed: str) -> subprocess.CompletedProcess:
    """``migsim run`` of a tiny scenario with ``closed`` (``<&-`` ...) applied."""
    write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO))
    command = f"exec '{sys.executable}' -m migsim run sc.yaml -n 2 -q -o out {closed}"
    return subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_closed_standard_output_is_one_line_and_writes_nothing(tmp_path):
    """It was an AttributeError traceback (``sys.stdout`` is None), after the
    output folder's staging had begun."""
    done = _migsim_with(tmp_path, ">&-")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "Error: standard output is closed: the answer could not be printed "
        "(send it to /dev/null to discard it)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.yaml"]


@pytest.mark.parametrize("closed", ["<&-", "2>&-", "<&- 2>&-"])
def test_a_closed_standard_input_or_error_does_not_stop_a_run(tmp_path, closed):
    """With standard input closed the chart's painter got the pipe of its job
    as descriptor 0, which its start closes: the run waited for it for ever."""
    done = _migsim_with(tmp_path, closed)
    assert done.returncode == 0, done.stderr
    assert "Written to out/" in done.stdout
    assert (tmp_path / "out" / "bands.csv").is_file()
    assert (tmp_path / "out" / "backlog.png").is_file()


@pytest.mark.parametrize("command", ["run", "calibrate"])
def test_overwrite_never_replaces_a_fifo_or_device(tmp_path, command):
    """``-o /dev/null --overwrite`` (run with the rights to) replaced the
    device with a folder of results, or calibrate's with a YAML file; a FIFO
    in a planner's own folder went the same way."""
    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO))
    target = tmp_path / ("out" if command == "run" else "out.yaml")
    os.mkfifo(target)
    if command == "run":
        args = ["run", sc, "-n", "2", "-q"]
    else:
        actuals = write(tmp_path, f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n", "a.csv")
        args = ["calibrate", sc, "--actuals", actuals, "--no-check"]
    message = one_line_exit_2(cli(*args, "-o", target, "--overwrite"))
    assert message == (
        f"Error: {target}: not a file or folder (a device, FIFO or socket); "
        "not replacing it"
    )
    assert target.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["sc.yaml", target.name] + (["a.csv"] if command != "run" else [])
    )


def test_a_sweep_store_whose_manifest_is_a_fifo_is_one_line_not_a_wait(tmp_path):
    """Resuming read ``manifest.json`` with a plain read: a FIFO there waited
    for ever (``/dev/zero`` linked there filled memory)."""
    write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO))
    (tmp_path / "sw").mkdir()
    os.mkfifo(tmp_path / "sw" / "manifest.json")
    args = [
        "sweep",
        "sc.yaml",
        "-n",
        "1",
        "-q",
        "-o",
        "sw",
        "--grid",
        "capacity.daily_cap=50",
    ]
    done = migsim_process(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "Error: sw/manifest.json: cannot read: not a regular file; rerun with "
        "--fresh to start over\n"
    )
    assert sorted(p.name for p in (tmp_path / "sw").iterdir()) == ["manifest.json"]
