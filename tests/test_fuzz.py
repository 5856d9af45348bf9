"""A fuzz test of migsim's own: hostile scenarios (values, YAML structure, continued
states), ``--set`` values, questions and actuals through the command line,
in-process.

Every input must end one of two ways: exit 2 with one line on stderr and nothing
left behind, or exit 0 with outputs that pass the conservation checks (and only
for an input that can be right). The mutations and checks are those of the longer
campaign, ``tools/fuzz_campaign.py`` and ``tools/fuzz_kinds.py``; this test runs a
fixed, small sample of them.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from migsim.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import fuzz_campaign as fc  # noqa: E402
import fuzz_kinds as fk  # noqa: E402

#: Longest a single in-process command may take before the test calls it a hang.
HANG_SECONDS = 20


@pytest.fixture(scope="module")
def bundled():
    return fc._bundled()


@pytest.fixture(scope="module")
def continued():
    return fk.base_state()


@pytest.fixture(scope="module")
def actuals_rows():
    return fc.base_actuals(Path(tempfile.gettempdir()))


class Hang(Exception):
    """A command ran longer than `HANG_SECONDS`."""


@contextmanager
def _deadline(seconds: int):
    def expire(signum, frame):
        raise Hang(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _inside(directory: Path):
    here = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(here)


def _write(case: fc.Case, directory: Path) -> None:
    for rel, content in case.files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def judge(case: fc.Case) -> tuple[str, str]:
    """Run a case's steps in-process in a fresh folder: (category, detail)."""
    with tempfile.TemporaryDirectory() as tmp, _inside(Path(tmp)):
        directory = Path(tmp)
        _write(case, directory)
        validated = False
        for step in case.steps:
            before = fc._snapshot(directory)
            try:
                with _deadline(HANG_SECONDS):
                    result = CliRunner().invoke(main, step.argv)
            except Hang as exc:
                return "hang", f"{step.argv[0]} {exc}"
            new = fc._snapshot(directory) - before
            if result.exception is not None and not isinstance(
                result.exception, SystemExit
            ):
                return "traceback", repr(result.exception)
            if result.exit_code == 2:
                if validated and step.kind == "run":
                    return "disagree", result.stderr
                one_line, why = fc._one_line_error(result.stderr)
                if not one_line:
                    return "messy_error", f"{why}: {result.stderr[:300]}"
                if new:
                    return "leftovers", str(sorted(new)[:5])
                return "clean_error", result.stderr.strip()
            if result.exit_code != 0:
                return "traceback", f"exit {result.exit_code}: {result.output[:300]}"
            if case.must_refuse:
                return "wrong_result", case.must_refuse
            problems = fc._judge_outputs(step, directory)
            if problems:
                return "wrong_result", "; ".join(problems)
            stray = fc._staging(new)
            if stray:
                return "leftovers", str(stray)
            validated = step.kind == "validate"
        return "ok", ""


FAMILIES = ("scenario", "set", "question", "actuals", "yaml", "state")


@given(family=st.sampled_from(FAMILIES), rng=st.randoms(use_true_random=False))
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # the case name says enough
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_hostile_input_is_refused_in_one_line_or_gives_a_conserving_result(
    bundled, actuals_rows, continued, family, rng: random.Random
):
    if family == "yaml":
        case = fk.yaml_mutation(bundled, rng, 0)
    elif family == "state":
        case = fk.state_mutation(continued, rng, 0)
    elif family == "scenario":
        case = fc.scenario_mutation(bundled, rng, 0)
    elif family == "set":
        case = fc.set_mutation(bundled, rng, 0)
    elif family == "question":
        case = fc.question_mutation(rng, 0)
    else:
        case = fc.actuals_mutation(actuals_rows, rng, 0)
    category, detail = judge(case)
    assert category in {"ok", "clean_error"}, f"{case.name}: {category}: {detail}"
