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


def _web_app(folder):
    """Someone's folder that happens to hold a manifest.json (a web app's)."""
    folder.mkdir()
    (folder / "manifest.json").write_text('{"name": "My app", "start_url": "/"}')
    (folder / "index.html").write_text("<html></html>\n")
    return sorted(p.name for p in folder.iterdir())


def test_overwrite_refuses_a_folder_whose_manifest_migsim_did_not_write(tmp_path):
    """Any manifest.json made a folder migsim's: --overwrite replaced it."""
    before = _web_app(tmp_path / "app")
    result = cli(
        "run", BASELINE, "-n", "1", "-q", "-o", "app", "--overwrite", cwd=tmp_path
    )
    assert one_line_exit_2(result).startswith(
        "Error: app: not a folder migsim wrote (it holds none of summary.json, "
        "manifest.json,"
    )
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == before


def test_fresh_refuses_a_folder_whose_manifest_migsim_did_not_write(tmp_path):
    """The sweep said 'not a sweep manifest; rerun with --fresh', and --fresh
    emptied the folder, index.html and all."""
    before = _web_app(tmp_path / "app")
    for fresh in ([], ["--fresh"]):
        result = cli("sweep", BASELINE, *SWEEP, "-o", "app", *fresh, cwd=tmp_path)
        assert one_line_exit_2(result) == (
            "Error: app: exists and is not a sweep store (its manifest.json is "
            "not one migsim wrote); choose another folder"
        )
    question = write_question(tmp_path)
    result = cli(
        "decide", question, "-n", "3", "-q", "-o", "app", "--fresh", cwd=tmp_path
    )
    assert one_line_exit_2(result) == (
        "Error: app: exists and is not a decision store (its manifest.json is "
        "not one migsim wrote); choose another folder"
    )
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == before


def test_overwrite_and_fresh_still_replace_what_migsim_wrote(tmp_path):
    assert cli("sweep", BASELINE, *SWEEP, "-o", "st", cwd=tmp_path).exit_code == 0
    result = cli(
        "sweep",
        BASELINE,
        *SWEEP[:-3],
        "-n",
        "2",
        "-q",
        "-o",
        "st",
        "--fresh",
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert cli("run", BASELINE, "-n", "1", "-q", "-o", "r", cwd=tmp_path).exit_code == 0
    again = cli(
        "run", BASELINE, "-n", "2", "-q", "-o", "r", "--overwrite", cwd=tmp_path
    )
    assert again.exit_code == 0, again.output
    assert '"replications": 2' in (tmp_path / "r" / "summary.json").read_text()


def test_a_report_of_a_run_folder_without_its_summary_names_it(tmp_path):
    """A folder without summary.json was read as a scenario file: 'run: cannot
    read: not a regular file'."""
    assert (
        cli("run", BASELINE, "-n", "1", "-q", "-o", "run", cwd=tmp_path).exit_code == 0
    )
    (tmp_path / "run" / "summary.json").unlink()
    result = cli("report", "run", "-o", "r.html", cwd=tmp_path)
    assert one_line_exit_2(result) == (
        "Error: run: not a run directory (no summary.json)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
