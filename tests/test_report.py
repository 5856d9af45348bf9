"""The OPSG report: self-contained, numbers equal summary.json, renders in a browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import tiny

import migsim
from migsim.cli.main import main
from migsim.evidence.forecast import annotate
from migsim.output.report import (
    format_count,
    format_date,
    render_report,
)
from migsim.output.report_sections import assumption_rows
from migsim.results.rundir import load_run

SPAN = re.compile(
    r'<span data-key="([^"]+)" data-value="([^"]*)" data-run="(\d+)">([^<]*)</span>'
)


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    """Two runs written by `migsim run -o` (same seed: common random numbers)."""
    import yaml

    root = tmp_path_factory.mktemp("runs")
    runner = CliRunner()
    dirs = []
    for sc in (tiny(), tiny({"capacity.daily_cap": 150}, name="faster")):
        path = root / f"{sc.name}.yaml"
        path.write_text(yaml.safe_dump(sc.to_dict(), sort_keys=False))
        out = root / sc.name
        result = runner.invoke(
            main,
            [
                "run",
                str(path),
                "-n",
                "10",
                "--seed",
                "3",
                "-o",
                str(out),
                "--by",
                "2020-02-14",
            ],
        )
        assert result.exit_code == 0, result.output
        dirs.append(out)
    return dirs


@pytest.fixture(scope="module")
def report_html(run_dirs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(main, ["report", *map(str, run_dirs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _lookup(summary: dict, key: str):
    node = summary
    for part in key.split("."):
        node = node[part]
    return node


def _expected_text(key: str, value, scale: float = 1.0) -> str:
    last = key.split(".")[-1]
    if ".clearance_date." in f".{key}" or ".opening_date." in key:
        return format_date(value)
    if last in ("cleared_share", "opened_share") or key.startswith("p_clear_by"):
        return f"{value:.0%}"
    if key == "figures.clearance_day.mean":
        return f"{value:,.1f}"
    if key.startswith("figures."):
        return format_count(value, scale)
    if key.startswith("policy.no_go_days."):
        return format_count(value)
    if key == "replications":
        return f"{value:,}"
    return str(value)


def _check_numbers(page: str, run_dirs, scale: float = 1.0) -> int:
    summaries = [json.loads((d / "summary.json").read_text()) for d in run_dirs]
    checked = 0
    for key, raw, run, text in SPAN.findall(page):
        value = _lookup(summaries[int(run)], key)
        assert html.unescape(raw) == ("null" if value is None else str(value)), key
        assert html.unescape(text) == _expected_text(key, value, scale), key
        checked += 1
    return checked


def test_report_numbers_equal_summary_json(report_html, run_dirs):
    page = report_html.read_text()
    checked = _check_numbers(page, run_dirs)
    keys = {k for k, *_ in SPAN.findall(page)}
    # the headline dates, per-cohort dates, risks, P(clear by) and provenance
    for key in (
        "clearance_date.p50",
        "clearance_date.p90",
        "clearance_date.p95",
        "cohorts.active_a.clearance_date.p80",
        "figures.dumb.p90",
        "figures.peak_failure_backlog.mean",
        "p_clear_by.2020-02-14",
        "seed",
        "replications",
        "scenario_sha256",
        "migsim_version",
    ):
        assert key in keys
    assert checked > 60


def test_report_sections_and_self_contained(report_html):
    page = report_html.read_text()
    for heading in (
        "1. The question and the answer",
        "2. Assumptions",
        "3. Forecasts",
        "4. Risks",
        "5. Comparison",
        "6. Provenance",
    ):
        assert heading in page
    answer = re.search(r'id="answer">(.*?)</p>', page, re.S).group(1)
    assert "clears by" in answer and "faster at 150/day brings P50 to" in answer
    # images embedded, nothing fetched from anywhere
    assert page.count('src="data:image/png;base64,') >= 10
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page and "<link" not in page
    # the command that made the runs is in the provenance
    assert "migsim run" in page and "migsim report" in page


def test_assumptions_table_lists_every_field_with_its_source():
    rows = {key: (value, source) for key, value, source in assumption_rows(tiny())}
    assert rows["capacity.daily_cap"] == ("100", "assumption: a round number for tests")
    # a source given for a section covers its fields
    assert rows["cohorts.active_a.outcomes.stall"][1] == "seed paper (test reading)"
    assert (
        rows["cohorts.dormant_b.outcomes.success"][1] == "assumption (no source given)"
    )
    assert (
        rows["cohorts.active_a.stall.resolves_after_days"][0]
        == "uniform (low 2, high 10) days"
    )
    assert "name" not in rows and "sources" not in rows


def test_report_in_meters_scales_counts_not_dates(run_dirs, tmp_path):
    out = tmp_path / "m.html"
    result = CliRunner().invoke(
        main, ["report", str(run_dirs[0]), "-o", str(out), "--units", "meters"]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert _check_numbers(page, run_dirs[:1], scale=1.6) > 30
    assert "backlog of 2,400 meters" in page  # 1,500 installations x 1.6


def test_meters_without_meters_per_installation_is_bad_input(tmp_path):
    import yaml

    data = tiny().to_dict()
    data["meters_per_installation"] = None
    path = tmp_path / "no_meters.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(
        main,
        [
            "report",
            str(path),
            "-n",
            "2",
            "-o",
            str(tmp_path / "r.html"),
            "--units",
            "meters",
        ],
    )
    assert result.exit_code == 2
    assert "meters_per_installation" in result.output
    assert not (tmp_path / "r_runs").exists()  # checked before running anything


def test_report_from_scenario_files_runs_them_beside_it(tiny_yaml, tmp_path):
    path = tiny_yaml("tiny")
    out = tmp_path / "out" / "opsg.html"
    args = ["report", str(path), "-n", "4", "--seed", "1", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "out" / "opsg_runs" / "tiny"
    assert (run_dir / "summary.json").is_file()
    assert _check_numbers(out.read_text(), [run_dir]) > 30
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "exists" in again.output


def test_render_from_results_equals_render_from_directory(run_dirs):
    saved = load_run(run_dirs[0])
    results = annotate(
        migsim.run(saved.scenario, 10, seed=3), [pd.Timestamp("2020-02-14").date()]
    )
    results.annotate("command", saved.summary["command"])
    assert SPAN.findall(render_report([results], charts=False)) == SPAN.findall(
        render_report([saved], charts=False)
    )


def test_saved_run_answers_like_results(run_dirs):
    saved = load_run(run_dirs[0])
    results = migsim.run(saved.scenario, 10, seed=3)
    for cohort in (None, *saved.cohort_names):
        assert np.array_equal(
            saved.clearance_days(cohort), results.clearance_days(cohort)
        )
        for name in ("dumb", "peak_failure_backlog", "clearance_day"):
            assert np.array_equal(
                saved.figure(name, cohort), results.figure(name, cohort)
            )
        for series in ("remaining", "cumulative_migrated", "attempts"):
            pd.testing.assert_frame_equal(
                saved.bands(series, cohort),
                results.bands(series, cohort),
                check_dtype=False,
            )


# --------------------------------------------------------------------------- browser
def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_report_renders_in_headless_chromium(report_html, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip(
            "no Chromium binary on PATH (.ci/run installs Debian's chromium; "
            "this machine could not)"
        )
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,2000",
    ]
    url = report_html.resolve().as_uri()
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", url],
        check=True,
        timeout=120,
        capture_output=True,
    )
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    grey = pixels.mean(axis=2)
    assert (grey < 0.5).mean() > 0.005  # text and charts, not a blank page
    assert grey.std() > 0.05
    dom = subprocess.run(
        [*flags, "--dump-dom", url],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    ).stdout
    answer = re.search(r'id="answer">(.*?)</p>', dom, re.S)
    assert answer and "the backlog of 1,500 installations" in answer.group(1)
    assert "clears by" in answer.group(1)


def test_report_of_a_ramp_with_gates_and_incidents(tmp_path):
    """Gate dates and no-go days from the policy summary also equal summary.json."""
    from conftest import SCENARIOS

    sc = migsim.load_scenario(SCENARIOS / "nov2019_conditions.yaml")
    results = annotate(migsim.run(sc, 3, seed=0))
    results.write(tmp_path / "run", daily=False)
    saved = load_run(tmp_path / "run")
    page = render_report([saved], charts=False)
    keys = {k for k, *_ in SPAN.findall(page)}
    assert "policy.no_go_days.p50" in keys
    assert any(k.startswith("policy.gates.") for k in keys)
    assert _check_numbers(page, [tmp_path / "run"]) > 30
