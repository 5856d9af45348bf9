"""Helpers of the hostile-input tests (``test_hostile_*.py``): the command line
run in-process, and the rule it keeps: bad input gets one line on stderr and
exit status 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import cohort, scenario

from migsim.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
#: The November 2019 request with known rates (the bundled file's shape may
#: change; these tests edit this text by its lines): the fuzz campaign's own.
from fuzz_campaign import EPCL  # noqa: E402

__all__ = [
    "ACTUALS_SCENARIO",
    "EPCL",
    "HEADER",
    "cli",
    "one_line_exit_2",
    "replace_line",
    "write",
]


def cli(*args, cwd: Path | None = None):
    here = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args])
    finally:
        os.chdir(here)


def migsim_process(*args, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m migsim ARGS`` in its own process (for what only a process
    shows: its standard streams, a read that would block), within 60 s."""
    return subprocess.run(
        [sys.executable, "-m", "migsim", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line_exit_2(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def write(tmp_path: Path, text: str, name: str = "sc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace_line(text: str, key: str, value: str) -> str:
    return "\n".join(
        f"{key}: {value}" if line.startswith(f"{key}:") else line
        for line in text.splitlines()
    )


#: The header of daily actuals, and a small scenario (cohort ``a`` of 600
#: installations) for them.
HEADER = "date,cohort,attempts,successes,stalls,rollbacks,fix_forwards,dumbs"


ACTUALS_SCENARIO = scenario(
    cohort(
        "a",
        600,
        rates={
            "success": 0.8,
            "stall": 0.1,
            "rollback": 0.1,
            "fix_forward": 0.0,
            "dumb": 0.0,
        },
    ),
    cap=100,
    horizon_days=20,
    meters_per_installation=1.6,
)
