"""CLI: run --by / --precision, compare and report, JSON on stdout, bad input exit 2."""

from __future__ import annotations

import json

from click.testing import CliRunner

from migsim.cli.main import main


def test_run_json_has_p_clear_by_and_intervals(tiny_yaml, tmp_path):
    path = tiny_yaml()
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(path),
            "-n",
            "6",
            "--seed",
            "1",
            "--by",
            "2020-01-06",
            "--by",
            "2020-05-01",
            "--format",
            "json",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)  # stdout is pure JSON; the table is on stderr
    assert summary["p_clear_by"] == {"2020-01-06": 0.0, "2020-05-01": 1.0}
    assert "ci95" in summary and summary["command"].startswith("migsim run")
    assert (
        "Backlog cleared" in result.stderr
        and "P(cleared by 2020-05-01)" in result.stderr
    )
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["p_clear_by"] == summary["p_clear_by"]
    assert written["ci95"] == summary["ci95"]


def test_run_precision_reports_the_count(tiny_yaml):
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(tiny_yaml()),
            "--precision",
            "3",
            "-n",
            "4",
            "--seed",
            "2",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)["precision"]
    assert info["met"] and info["batch"] == 4
    assert json.loads(result.stdout)["replications"] == info["replications"]
    assert f"precision: {info['replications']} replications needed" in result.stderr


def test_run_by_after_horizon_is_bad_input(tiny_yaml):
    result = CliRunner().invoke(
        main, ["run", str(tiny_yaml()), "-n", "2", "--by", "2030-01-01"]
    )
    assert result.exit_code == 2
    assert "after the horizon end" in result.output
    assert "Traceback" not in result.output


def test_compare_json_and_outdir(tiny_yaml, tmp_path):
    base = tiny_yaml("base")
    faster = tiny_yaml("faster", {"capacity.daily_cap": 150})
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        main,
        [
            "compare",
            str(base),
            str(faster),
            "-n",
            "5",
            "--seed",
            "2",
            "--format",
            "json",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    comparison = json.loads(result.stdout)
    entry = comparison["scenarios"]["faster"]
    assert entry["figures"]["clearance_day"]["p50"]["diff"] < 0
    low, high = entry["figures"]["clearance_day"]["mean"]["ci95"]
    assert low <= entry["figures"]["clearance_day"]["mean"]["diff"] <= high
    assert {
        "p_clears_before_first",
        "p_clears_same_day",
        "p_clears_after_first",
    } <= set(entry)
    assert "Compared with base" in result.stderr
    assert (
        json.loads((out / "comparison.json").read_text())["scenarios"]
        == comparison["scenarios"]
    )
    assert (out / "base" / "summary.json").is_file()
    assert (out / "faster" / "summary.json").is_file()


def test_compare_same_names_is_bad_input(tiny_yaml, tmp_path):
    path = tiny_yaml()
    result = CliRunner().invoke(main, ["compare", str(path), str(path), "-n", "2"])
    assert result.exit_code == 2 and "names must differ" in result.output


def test_report_of_missing_input_is_bad_input(tmp_path):
    result = CliRunner().invoke(
        main, ["report", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 2 and "no such file" in result.output


def test_compare_overwrite_replaces_only_a_compare_output(tiny_yaml, tmp_path):
    base, other = tiny_yaml("base"), tiny_yaml("other", {"capacity.daily_cap": 150})
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    args = ["compare", str(base), str(other), "-n", "2", "-o", str(precious)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "exists" in refused.output
    refused = CliRunner().invoke(main, [*args, "--overwrite"])
    assert (
        refused.exit_code == 2 and "not the output of migsim compare" in refused.output
    )
    assert (precious / "notes.txt").read_text() == "keep me"
