"""Hostile stores: sweep and decision folders that hold an input or someone
else's files, and what ``--fresh`` and ``--overwrite`` may then delete. Each
test here failed before its fix."""

from __future__ import annotations

import shutil

from conftest import BASELINE, write_yaml
from hostile import cli, one_line_exit_2
from test_decide import question_dict, write_question

SWEEP = ["--grid", "horizon_days=30", "-n", "1", "-q"]


def test_a_question_kept_in_its_decision_folder_is_refused_not_deleted(tmp_path):
    """The decision is written over its folder: a rerun of a question kept
    beside its answer (``decide out/q.yaml -o out``) deleted the question."""
    write_question(tmp_path)
    asked = question_dict(scenario=str(tmp_path / "scenario.yaml"))
    path = write_yaml(tmp_path / "q.yaml", asked)
    out = tmp_path / "out"
    assert cli("decide", path, "-n", "3", "-q", "-o", out).exit_code == 0
    kept = write_yaml(out / "q.yaml", asked)
    message = one_line_exit_2(cli("decide", kept, "-n", "3", "-q", "-o", out))
    assert message == (
        f"Error: {out}: holds the input {kept}, which writing the output would "
        "delete; write the output elsewhere"
    )
    assert kept.read_text() == path.read_text()


def test_a_scenario_kept_in_its_sweep_store_is_refused_by_fresh_not_deleted(
    tmp_path,
):
    """--fresh empties the store: the scenario swept from inside it went too."""
    assert cli("sweep", BASELINE, *SWEEP, "-o", "st", cwd=tmp_path).exit_code == 0
    kept = tmp_path / "st" / "s.yaml"
    shutil.copy(BASELINE, kept)
    result = cli("sweep", "st/s.yaml", *SWEEP, "-o", "st", "--fresh", cwd=tmp_path)
    assert one_line_exit_2(result) == (
        "Error: st: holds the input st/s.yaml, which writing the output would "
        "delete; write the output elsewhere"
    )
    assert kept.read_bytes() == BASELINE.read_bytes()
    # without --fresh the store resumes and the scenario stays
    assert cli("sweep", "st/s.yaml", *SWEEP, "-o", "st", cwd=tmp_path).exit_code == 0
    assert kept.is_file()
