"""The OPSG report: self-contained, numbers equal summary.json, renders in a browser."""

from __future__ import annotations

import html
import json
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import tiny, write_yaml

import migsim
from migsim.cli.main import main
from migsim.cli.text import summary_text
from migsim.common.stats import percent
from migsim.evidence.forecast import annotate
from migsim.output.report import (
    format_count,
    format_date,
    render_report,
)
from migsim.output.report_sections import assumption_rows, describe_value
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
        return percent(value)
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_report_sections_and_self_contained(report_html):
    page = report_html.read_text()
    order = [
        'class="first-screen"',
        'id="answer"',
        'id="key-risks"',
        'id="differences"',
        'id="detail"',
        'id="comparison"',
        'id="appendix"',
        'id="provenance"',
    ]
    positions = [page.index(marker) for marker in order]
    assert positions == sorted(positions)
    answer = re.search(r'id="answer">(.*?)</p>', page, re.S).group(1)
    assert "clears by" in answer and "faster</b> at 150/day brings P50 to" in answer
    # one fan chart of every scenario on the first screen, before the risks
    first = page[page.index('class="first-screen"') : page.index("</section>")]
    assert first.count("<img") == 1 and "every scenario: tiny, faster" in first
    assert "@media print" in page and "size:A4" in page
    # images embedded, nothing fetched from anywhere
    assert page.count('src="data:image/png;base64,') >= 9
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # in-page links only
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


def test_a_value_reads_the_same_in_the_appendix_and_the_differences():
    from migsim.output.report_assumptions import flat_fields

    scenario = tiny()
    appendix = {key: value for key, value, _ in assumption_rows(scenario)}
    flat = flat_fields(scenario)
    for key in set(appendix) & set(flat):
        assert appendix[key] == flat[key], key
    # a distribution is in days only where its field counts days
    share = {"dist": "beta", "alpha": 14.8, "beta": 5.2}
    assert describe_value(share, "stall.then_success") == "beta (alpha 14.8, beta 5.2)"
    delay = {"dist": "uniform", "low": 2, "high": 10}
    assert (
        describe_value(delay, "x.resolves_after_days")
        == "uniform (low 2, high 10) days"
    )
    assert describe_value(["Mon", "Tue"]) == "Mon, Tue"
    assert describe_value([{"a": 1}, {"a": 2}]) == "a 1; a 2"
    assert describe_value(250000) == "250,000"
    assert describe_value(2.0) == "2"
    assert describe_value(1 / 3) == repr(1 / 3)  # no digits lost
    assert describe_value([]) == "none" and describe_value(None) == "not set"


def test_appendix_values_read_as_words_never_python():
    """The OPSG appendix once showed "ar1 (mean {'dist': 'beta', ...})",
    "black_swan {'probability': 0.1667, 'factor': 3.0}" and "not_before None"."""
    from conftest import BASELINE

    rows = {k: v for k, v, _ in assumption_rows(migsim.load_scenario(BASELINE))}
    assert rows["capacity.achieved"] == (
        "ar1 (mean beta (alpha 6, beta 4), persistence 0.8, innovation_sd 0.35)"
    )
    slip = rows["cohorts.itron_active.eligible_from"]
    assert "black_swan (probability 0.1667, factor 3)" in slip
    assert "shared yes" in slip and "not_before" not in slip
    outcomes = rows["cohorts.elster_dormant.outcomes"]
    assert outcomes.startswith("dirichlet (prior (success 0.5, stall 0.5,")
    for value in rows.values():
        assert not re.search(r"[{}']|None|True|False", value), value
    from conftest import SCENARIOS

    ramp = migsim.load_scenario(SCENARIOS / "nov2019_aggressive_ramp.yaml")
    rows = {k: v for k, v, _ in assumption_rows(ramp)}
    assert rows["capacity.rules.stall_halt.when.1"].endswith("value 1000")


def test_a_row_shows_the_sources_given_for_its_parts():
    """``capacity.achieved`` and ``cohorts.*.outcomes`` read "assumption (no
    source given)" although the scenario sources ``capacity.achieved.mean`` and
    ``outcomes.prior``/``outcomes.evidence``."""
    from conftest import BASELINE

    scenario = migsim.load_scenario(BASELINE)
    rows = {k: s for k, _, s in assumption_rows(scenario)}
    achieved = rows["capacity.achieved"]
    assert achieved.startswith("mean: " + scenario.sources["capacity.achieved.mean"])
    assert "persistence: assumption: good and bad days" in achieved
    for cohort in ("itron_active", "elster_dormant"):
        text = rows[f"cohorts.{cohort}.outcomes"]
        for part in ("prior", "evidence"):
            given = scenario.sources[f"cohorts.{cohort}.outcomes.{part}"]
            assert f"{part}: {given}" in text
        assert "no source given" not in text


@pytest.mark.slow
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


@pytest.mark.slow
def test_report_from_scenario_files_runs_them_beside_it(
    tiny_yaml, tmp_path, charts_unpainted
):
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


def test_report_takes_quiet_and_counts_the_replications_it_runs(
    tiny_yaml, tmp_path, monkeypatch, charts_unpainted
):
    """``report`` runs its scenario files like ``run`` and ``compare`` do: with
    their progress (every replication counted) and their ``-q`` (it had
    neither: "No such option '-q'")."""
    import migsim.cli.runs as runs

    bars = []
    real = runs.progress_bar

    def recording(total, unit, quiet):
        bars.append(real(total, unit, quiet))
        return bars[-1]

    monkeypatch.setattr(runs, "progress_bar", recording)
    out = tmp_path / "opsg.html"
    args = ["report", str(tiny_yaml("tiny")), "-n", "3", "-q", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Report written to {out} (1 run(s), ")
    (bar,) = bars
    assert bar.total == 3 and bar.n == 3


@pytest.fixture
def charts_unpainted(monkeypatch):
    """The report's charts built but not rendered into PNG bytes (an empty
    image): most of a report's time, and nothing a test of its files, its
    --overwrite or its refusals reads. The charts themselves are tested with
    their pixels (test_plots, and here the headless-browser tests)."""
    import migsim.output.html as html_module

    monkeypatch.setattr(html_module, "png_base64", lambda fig: "")


def _summaries(folder: Path) -> dict[str, bytes]:
    """Each run folder of ``folder`` by name, as its summary.json's bytes."""
    return {p.name: (p / "summary.json").read_bytes() for p in folder.iterdir()}


def test_report_overwrite_leaves_exactly_its_own_runs(
    tiny_yaml, tmp_path, charts_unpainted
):
    """--overwrite with fewer scenarios left the older report's run folders
    beside the new ones: r_runs/ now holds exactly this report's runs."""
    a, b = tiny_yaml("a"), tiny_yaml("b")
    out, runs = tmp_path / "r.html", tmp_path / "r_runs"
    args = ["-n", "2", "-q", "-o", str(out)]
    assert CliRunner().invoke(main, ["report", str(a), str(b), *args]).exit_code == 0
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b"]
    again = CliRunner().invoke(main, ["report", str(a), *args, "--overwrite"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in runs.iterdir()) == ["a"]
    assert _check_numbers(out.read_text(), [runs / "a"]) > 30
    assert str(runs / "a") in out.read_text()  # where it is, not where it was staged


def test_report_overwrite_keeps_its_inputs_and_refuses_what_it_did_not_write(
    tiny_yaml, tmp_path, charts_unpainted
):
    """A run folder inside r_runs/ given as an input is carried into the new
    folder; a scenario that would run into it, a run of `migsim run` or a file
    of the user's there is refused (exit 2) before anything runs, and kept."""
    a, b = tiny_yaml("a"), tiny_yaml("b")
    out, runs = tmp_path / "r.html", tmp_path / "r_runs"
    args = ["-n", "2", "-q", "-o", str(out), "--overwrite"]
    assert CliRunner().invoke(main, ["report", str(a), *args]).exit_code == 0
    kept = _summaries(runs)
    given = CliRunner().invoke(main, ["report", str(runs / "a"), str(b), *args])
    assert given.exit_code == 0, given.output
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b"]
    assert _summaries(runs)["a"] == kept["a"]  # the input, as it was
    c = tiny_yaml("c")  # a run of scenario b in r_runs/c, and scenario c
    run_c = ["run", str(b), "-n", "2", "-q", "-o", str(runs / "c")]
    assert CliRunner().invoke(main, run_c).exit_code == 0
    before = _summaries(runs)
    into = CliRunner().invoke(main, ["report", str(runs / "c"), str(c), *args])
    assert into.exit_code == 2
    assert into.output.strip().splitlines() == [
        f"Error: {runs / 'c'}: is the input {runs / 'c'}; scenario c would run "
        "into it (rename the scenario, or move the run)"
    ]
    assert _summaries(runs) == before
    shutil.rmtree(runs / "c")
    mine = ["run", str(b), "-n", "2", "-q", "-o", str(runs / "mine")]
    assert CliRunner().invoke(main, mine).exit_code == 0
    (runs / "notes.txt").write_text("mine\n")
    refused = CliRunner().invoke(main, ["report", str(a), *args])
    assert refused.exit_code == 2
    assert refused.output.strip().splitlines() == [
        f"Error: {runs / 'mine'}: not a run a report wrote; the report replaces "
        f"{runs}/ as a whole with --overwrite (move it out first)"
    ]
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b", "mine", "notes.txt"]


def test_a_run_and_a_scenario_of_one_name_are_refused_before_running(
    tiny_yaml, tmp_path, monkeypatch
):
    """A run given beside a scenario file of the same name was refused ("names
    must differ to compare") only after the scenario had been simulated."""
    a = tiny_yaml("a")
    assert (
        CliRunner()
        .invoke(main, ["run", str(a), "-n", "2", "-q", "-o", str(tmp_path / "mine")])
        .exit_code
        == 0
    )
    ran = _counting_runs(monkeypatch)
    out = tmp_path / "r.html"
    args = ["report", str(tmp_path / "mine"), str(a), "-n", "2", "-q", "-o", str(out)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert refused.output.strip().splitlines() == [
        "Error: scenario names must differ in a report: a (given as runs or "
        "scenario files more than once; rename one, or give it once)"
    ]
    assert ran == [] and not out.exists() and not (tmp_path / "r_runs").exists()


def test_a_failed_report_overwrite_leaves_the_runs_it_would_have_replaced(
    tiny_yaml, tmp_path, monkeypatch, charts_unpainted
):
    """A report with --overwrite that fails part way (its second scenario)
    had already replaced the first run, then removed it: the earlier
    report's runs were lost. The new runs folder replaces the old only whole."""
    from migsim.common.errors import MigsimError

    a, b = tiny_yaml("a"), tiny_yaml("b")
    out, runs = tmp_path / "r.html", tmp_path / "r_runs"
    args = ["report", str(a), str(b), "-n", "2", "-q", "-o", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    before, page = _summaries(runs), out.read_bytes()
    ran = _counting_runs(monkeypatch)
    from migsim.runner import runner

    counting = runner.run

    def failing(scenario, *rest, **options):
        if scenario.name == "b":
            raise MigsimError("b: refused part way")
        return counting(scenario, *rest, **options)

    monkeypatch.setattr(runner, "run", failing)
    failed = CliRunner().invoke(main, [*args, "--overwrite", "--seed", "5"])
    assert failed.exit_code == 2 and "b: refused part way" in failed.output
    assert ran == ["a"]
    assert _summaries(runs) == before and out.read_bytes() == page
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_render_from_results_equals_render_from_directory(run_dirs):
    saved = load_run(run_dirs[0])
    results = annotate(
        migsim.run(saved.scenario, 10, seed=3), [pd.Timestamp("2020-02-14").date()]
    )
    results.annotate("command", saved.summary["command"])
    assert SPAN.findall(render_report([results], charts=False)) == SPAN.findall(
        render_report([saved], charts=False)
    )


@pytest.mark.slow
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
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WHAT_IF = [
    "--set",
    "name=cap5000_from_6_jan",
    "--set",
    "capacity.schedule=[{from: 2020-01-06, daily_cap: 5000}]",
]


def test_a_report_removes_what_a_killed_report_left_beside_it(
    run_dirs, tmp_path, charts_unpainted
):
    """A report killed while writing left .report.html.tmp-<pid>-<random>; the
    next report wrote report.html and left that beside it."""
    (tmp_path / ".report.html.tmp-999999999-abcd1234").write_text("<html")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(run_dirs[0]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


@pytest.fixture(scope="module")
def opsg_report(tmp_path_factory):
    """The OPSG baseline and a what-if (cap 5,000 a day from 6 Jan 2020), reported."""
    from conftest import BASELINE

    root = tmp_path_factory.mktemp("opsg")
    runner = CliRunner()
    dirs = []
    for name, extra in (("nov2019_epcl", []), ("cap5000_from_6_jan", WHAT_IF)):
        out = root / name
        args = ["run", str(BASELINE), "-n", "6", "--seed", "1", "-o", str(out)]
        result = runner.invoke(main, [*args, *extra, "--quiet"])
        assert result.exit_code == 0, result.output
        dirs.append(out)
    page = root / "report.html"
    result = runner.invoke(main, ["report", *map(str, dirs), "-o", str(page)])
    assert result.exit_code == 0, result.output
    # the size it prints is the file's, in bytes (the page has non-ASCII text)
    assert f"{page.stat().st_size:,} bytes" in result.output
    assert len(page.read_text()) < page.stat().st_size
    return page


_TEXT_TOP = """(name) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let best = null;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const at = node.textContent.indexOf(name);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + name.length);
    const box = range.getBoundingClientRect();
    if (box.width > 0 && (best === null || box.top < best.top))
      best = {top: box.top, bottom: box.bottom};
  }
  return best;
}"""
_CHARTS = """() => [...document.querySelectorAll('img, svg')].map(e => {
  const box = e.getBoundingClientRect();
  return {top: box.top, bottom: box.bottom, width: box.width,
          loaded: e.tagName.toLowerCase() === 'svg' || e.naturalWidth > 0};
})"""


@contextmanager
def _chromium_page(width: int, height: int):
    """A page of headless chromium at this viewport; the test is skipped
    without Playwright or Debian's chromium (`.ci/run` installs both). The
    browser is started once per test process (`_shared_browser`): a launch
    costs about a second, and the report's tests open a dozen pages."""
    page = _shared_browser().new_page(viewport={"width": width, "height": height})
    try:
        yield page
    finally:
        page.close()


_BROWSER: dict[str, Any] = {}


def _shared_browser():
    """This process's headless chromium, started at the first page asked for."""
    if "browser" not in _BROWSER:
        sync_api = pytest.importorskip("playwright.sync_api")
        if not CHROMIUM.exists():
            pytest.skip("no /usr/bin/chromium (.ci/run installs Debian's chromium)")
        playwright = sync_api.sync_playwright().start()
        _BROWSER["playwright"] = playwright
        _BROWSER["browser"] = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
    return _BROWSER["browser"]


@pytest.fixture(scope="module", autouse=True)
def _browser_closed_after_the_module():
    yield
    if "browser" in _BROWSER:
        _BROWSER.pop("browser").close()
        _BROWSER.pop("playwright").stop()


def test_first_screen_in_headless_chromium(opsg_report, tmp_path):
    """At 1280 x 900 the first screen holds a chart and both scenario names."""
    with _chromium_page(1280, 900) as page:
        page.goto(opsg_report.resolve().as_uri())
        height = page.evaluate("document.documentElement.scrollHeight")
        width = page.evaluate("document.documentElement.scrollWidth")
        charts = page.evaluate(_CHARTS)
        names = {
            name: page.evaluate(_TEXT_TOP, name)
            for name in ("nov2019_epcl", "cap5000_from_6_jan")
        }
        answer = page.inner_text("#answer")
        page.screenshot(path=str(tmp_path / "first_screen.png"))
        # the reference parts fold on screen, and all open to be printed
        folds = "() => [...document.querySelectorAll('.fold-toggle')]"
        folded = page.evaluate(folds + ".map(t => t.checked)")
        appendix_seen = page.is_visible("table.appendix")
        page.click("label[for=fold-appendix]")  # a click on its title opens it
        opened = page.is_visible("table.appendix")
        page.click("label[for=fold-appendix]")
        # a link to the appendix opens it
        page.goto(opsg_report.resolve().as_uri() + "#appendix")
        linked = page.is_visible("table.appendix")
        page.emulate_media(media="print")
        printed = page.is_visible("table.appendix") and page.is_visible(
            "#detail-1 ~ .fold-body img"
        )
        tall_printed = page.evaluate("document.documentElement.scrollHeight")
    assert height <= 7000, f"the page is {height} px tall"
    assert folded == [False, False, False] and not appendix_seen  # 2 runs, appendix
    assert opened and linked and printed and tall_printed > height + 2000
    assert width <= 1280  # nothing wider than the window
    first = [c for c in charts if c["top"] < 900 and c["loaded"] and c["width"] > 600]
    assert first and first[0]["bottom"] <= 900, charts[:2]
    for name, box in names.items():
        assert box is not None and box["bottom"] <= 900, (name, box)
    assert "the backlog of 74,000 installations" in answer
    assert "cap5000_from_6_jan at 2,000/day, then 5,000/day from 6 Jan 2020" in answer


def test_a_phone_scrolls_wide_tables_not_the_page(opsg_report, tmp_path):
    """At 390 px the key risks table (wider than a phone for two scenarios) and the
    provenance widened the whole page: the answer and the charts slid sideways
    with them. Each table now scrolls in its own box; the page fits the phone."""
    with _chromium_page(390, 844) as page:
        page.goto(opsg_report.resolve().as_uri())
        page.evaluate(
            "document.querySelectorAll('.fold-toggle')"
            ".forEach(t => { t.checked = true; })"
        )
        width = page.evaluate("document.documentElement.scrollWidth")
        key = page.evaluate(
            "(() => { const t = document.querySelector('#key-risks');"
            " return [t.scrollWidth, t.parentElement.clientWidth]; })()"
        )
        fan = page.evaluate(
            "document.querySelector('.first-screen img').getBoundingClientRect().width"
        )
        page.screenshot(path=str(tmp_path / "phone.png"))
    assert fan >= 700  # the fan chart keeps a readable size and pans in its box
    assert key[0] > 390  # the table is wider than the phone ...
    assert key[1] <= 390  # ... its box is not
    assert width <= 390, f"the page is {width} px wide at 390"


def test_two_scenario_report_shows_only_what_differs_up_front(opsg_report):
    page = opsg_report.read_text()
    differences = page[page.index('id="differences"') : page.index('id="detail"')]
    assert differences.count('<tr class="diff">') == 1
    assert "ramp schedule" in differences and "<mark>" in differences
    assert "5,000 a day from 6 Jan 2020" in differences
    appendix = page[page.index('id="appendix"') : page.index('id="provenance"')]
    assert appendix.count("<tr") > 40  # every sourced field, once
    assert "seed paper, 13 Nov 2019" in appendix


def test_what_differs_names_the_rules_a_scenario_has_never_not_set():
    """nov2019_epcl has no ramp rules and no gates; the ramps have both. The
    table of differences read "capacity ramp rules: none | not set | not set"
    (and the same for gates), saying the ramps had none, while the rows under
    it listed their rules' conditions."""
    from migsim.output.report_assumptions import differing_fields

    root = Path(__file__).resolve().parents[1] / "scenarios"
    epcl, cautious = (
        migsim.load_scenario(root / f"{name}.yaml")
        for name in ("nov2019_epcl", "nov2019_cautious_ramp")
    )
    rows = dict(differing_fields([epcl, cautious]))
    assert rows["capacity.rules"] == [
        "none",
        "stall_halt, automation_step (rows below)",
    ]
    assert rows["gates"][0] == "none"
    assert rows["gates"][1].startswith("fix_") and "(rows below)" in rows["gates"][1]
    for values in rows.values():
        if values[1] == "not set":  # only a field the ramp really lacks
            assert values[0] != "none"


def test_a_step_from_a_gate_reads_as_the_day_it_opens():
    """The headline read "then 5,000/day from mcc_automation, then 15,000/day
    from full_rate": gate names where a reader looks for a time."""
    from migsim.output.report_sections import capacity_phrase

    root = Path(__file__).resolve().parents[1] / "scenarios"
    aggressive = migsim.load_scenario(root / "nov2019_aggressive_ramp.yaml")
    phrase = capacity_phrase(aggressive, 1.0, "installations")
    assert phrase.startswith(
        "2,000/day, then 5,000/day from when gate mcc_automation opens, "
        "then 15,000/day from when gate full_rate opens, "
    ), phrase
    dated = migsim.load_scenario(
        root / "nov2019_epcl.yaml",
        {"capacity.schedule": [{"from": "2020-01-06", "daily_cap": 5000}]},
    )
    assert ", then 5,000/day from 6 Jan 2020" in capacity_phrase(
        dated, 1.0, "installations"
    )


# --------------------------------------------------------------------------- noise
def test_noise_is_no_clear_difference_never_a_cost():
    """Two runs of the same scenario with independent luck: every risk differs a
    little by chance; none is said to be a cost (or a gain)."""
    from migsim.experiments.compare import compare_runs
    from migsim.output.report_first import KEY_RISKS, Verdict
    from migsim.output.report_sections import RISK_FIGURES

    sc = tiny({"capacity.daily_cap": 120})
    first = migsim.run(sc, 20, seed=1)
    again = migsim.run(sc.with_overrides({"name": "same_again"}), 20, seed=2)
    comparison = compare_runs([first, again])
    page = render_report([first, again], charts=False)
    # what each risks is said under the chart, apart from the answer's dates
    answer = html.unescape(
        re.search(r'id="risk-answer">(.*?)</p>', page, re.S).group(1)
    )
    noisy = 0
    for name in KEY_RISKS:
        verdict = Verdict(
            comparison["scenarios"]["same_again"]["figures"][name]["mean"]
        )
        if verdict.kind == "unclear":
            noisy += verdict.diff != 0
            assert f"more {RISK_FIGURES[name]}" not in answer
            assert f"fewer {RISK_FIGURES[name]}" not in answer
            assert RISK_FIGURES[name] in answer.rsplit("no clear difference in")[-1]
    assert noisy >= 1  # a non-zero difference inside its interval was tested
    assert "at the cost of" not in answer
    table = page[page.index('id="key-risks"') :]
    assert "no clear difference" in table[: table.index("</table>")]


def test_verdict_reads_an_interval_across_zero_as_no_clear_difference():
    from migsim.output.html import signed
    from migsim.output.report_first import Verdict

    unclear = Verdict({"diff": 18, "ci95": [-46, 87]})
    assert unclear.kind == "unclear" and "no clear difference" in unclear.cell()
    assert "+18" not in unclear.cell()
    assert Verdict({"diff": 30, "ci95": [4, 60]}).cell().startswith("<b>+30</b>")
    assert (
        Verdict({"diff": -12, "ci95": [-15, -9]})
        .cell(days=True)
        .startswith("<b>12 days earlier</b>")
    )
    assert Verdict({"diff": 0, "ci95": [0, 0]}).kind == "same"
    unbounded = Verdict({"diff": -42, "ci95": [None, -10]})  # some never clear
    assert unbounded.kind == "unbounded" and not unbounded.clear
    assert "42 days earlier" in unbounded.cell(days=True)
    assert "<b>" not in unbounded.cell(days=True)
    assert [signed(v) for v in (-0.4, 0.0, -3.0, 2.6)] == ["0", "0", "-3", "+3"]


# --------------------------------------------------------------------------- question
def _fake_decision(folder: Path, scenario) -> Path:
    """A decision folder (as `migsim decide -o` writes) about ``scenario``."""
    folder.mkdir(parents=True)
    (folder / "decision.json").write_text("{}")
    (folder / "candidates.csv").write_text("candidate\n0\n")
    (folder / "frontier.png").write_bytes(b"")
    (folder / "scenario.yaml").write_text(scenario.to_yaml())
    return folder


def test_a_question_about_another_scenario_is_refused(run_dirs, tmp_path):
    """The mixed case: runs of tiny and faster, a decision about another scenario."""
    decision = _fake_decision(tmp_path / "decided", tiny(name="elsewhere"))
    out = tmp_path / "r.html"
    args = ["report", str(run_dirs[0]), str(run_dirs[1]), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--question", str(decision)])
    assert result.exit_code == 2
    message = result.output.strip().splitlines()
    assert len(message) == 1 and "scenario elsewhere" in message[0]
    assert "tiny, faster" in message[0]
    assert not out.exists()


def _cap_question(folder: Path, scenario: Path, low: int, high: int, step: int) -> Path:
    """question.yaml in ``folder``: the daily cap of ``scenario`` on a grid,
    the P50 clearance day its objective, a P90 budget of devices left dumb."""
    from test_decide import question_dict

    lever = {"capacity.daily_cap": {"low": low, "high": high, "step": step}}
    budget = [{"figure": "dumb", "statistic": "p90", "max": 1000}]
    data = question_dict(scenario=str(scenario), levers=lever, risk_budget=budget)
    return write_yaml(folder / "question.yaml", data)


def test_a_question_file_about_another_scenario_is_refused_before_running(
    tiny_yaml, tmp_path
):

    other = tiny_yaml("other")
    question = _cap_question(tmp_path, other, low=50, high=200, step=50)
    scenario = tiny_yaml("tiny")
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        main,
        [
            "report",
            str(scenario),
            "-n",
            "2",
            "-o",
            str(out),
            "--question",
            str(question),
        ],
    )
    assert result.exit_code == 2 and "asks about scenario other" in result.output
    assert not (tmp_path / "r_runs").exists() and not (tmp_path / "r_decision").exists()


def test_a_report_whose_decision_store_differs_names_its_own_option(
    tiny_yaml, tmp_path, charts_unpainted
):
    """A report's <name>_decision store of another -n was refused with "rerun
    with --fresh", an option report does not have (its --overwrite does it)."""
    scenario = tiny_yaml("tiny")
    question = _cap_question(tmp_path, scenario, low=100, high=200, step=100)
    out = tmp_path / "r.html"
    args = ["report", str(scenario), "-q", "-o", str(out), "--question", str(question)]
    assert CliRunner().invoke(main, [*args, "-n", "2"]).exit_code == 0
    out.unlink()
    shutil.rmtree(tmp_path / "r_runs")
    refused = CliRunner().invoke(main, [*args, "-n", "3"])
    assert refused.exit_code == 2
    message = refused.output.strip().splitlines()
    assert len(message) == 1 and "--overwrite" in message[0], message
    assert "--fresh" not in message[0]
    assert not out.exists() and not (tmp_path / "r_runs").exists()
    again = CliRunner().invoke(main, [*args, "-n", "3", "--overwrite"])
    assert again.exit_code == 0, again.output


def test_a_reports_question_file_is_read_once(
    tiny_yaml, tmp_path, monkeypatch, charts_unpainted
):
    """Loading a question validates its every lever value (a fraction of a
    second on the bundled one); the report read the file three times, to
    check its scenario, its store and then to decide it. Once is enough."""
    import migsim.experiments.question as question_module

    scenario = tiny_yaml("tiny")
    question = _cap_question(tmp_path, scenario, low=100, high=200, step=100)
    loads: list[str] = []
    real = question_module.load_question

    def load_question(path, *args, **kwargs):
        loads.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(question_module, "load_question", load_question)
    out = tmp_path / "r.html"
    args = ["report", str(scenario), "-q", "-n", "2", "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--question", str(question)])
    assert result.exit_code == 0, result.output
    assert loads == [str(question)]
    assert json.loads((tmp_path / "r_decision" / "decision.json").read_text())


def _counting_runs(monkeypatch) -> list[str]:
    """The names of the scenarios `migsim report` runs from now on."""
    from migsim.runner import runner

    ran: list[str] = []
    real = runner.run

    def run(scenario, *args, **kwargs):
        ran.append(scenario.name)
        return real(scenario, *args, **kwargs)

    monkeypatch.setattr(runner, "run", run)
    return ran


@pytest.mark.parametrize("store", ["another -n", "not a store"])
def test_a_report_refuses_its_decision_store_before_running_a_scenario(
    tiny_yaml, tmp_path, monkeypatch, store, charts_unpainted
):
    """The report's <name>_decision/ of another definition was refused only
    after every scenario of the report had been simulated (minutes lost)."""
    scenario = tiny_yaml("tiny")
    question = _cap_question(tmp_path, scenario, low=100, high=200, step=100)
    out = tmp_path / "r.html"
    args = ["report", str(scenario), "-q", "-o", str(out), "--question", str(question)]
    if store == "another -n":
        assert CliRunner().invoke(main, [*args, "-n", "2"]).exit_code == 0
        out.unlink()
        shutil.rmtree(tmp_path / "r_runs")
        expected = "r_decision: holds a different decision (differs in replications"
    else:
        (tmp_path / "r_decision").mkdir()
        (tmp_path / "r_decision" / "notes.txt").write_text("mine\n")
        expected = "r_decision: exists and is not a decision store"
    ran = _counting_runs(monkeypatch)
    refused = CliRunner().invoke(main, [*args, "-n", "3"])
    assert refused.exit_code == 2
    assert len(refused.output.strip().splitlines()) == 1, refused.output
    assert expected in refused.output
    assert ran == []  # refused before the scenario ran
    assert not out.exists() and not (tmp_path / "r_runs").exists()


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


# --------------------------------------------------------------------------- variance
def test_variance_split_says_where_the_uncertainty_comes_from():
    """When a run's summary has a variance split (uncertain inputs), the report
    shows it and names the evidence that would narrow each input."""
    results = migsim.run(tiny(), 4, seed=1)
    results.summary["variance_split"] = {
        "clearance_day": {
            "variance": 40.0,
            "inputs_share": 0.8,
            "day_to_day_share": 0.2,
            "inputs_share_se": 0.05,
            "twins": 2,
            "censored": 0.0,
            "top_inputs": [
                {
                    "input": "programme_delay",
                    "label": "programme-wide delay",
                    "share": 0.5,
                },
                {
                    "input": "cohorts.active_a.outcomes.stall",
                    "label": "active_a stall rate",
                    "share": 0.2,
                },
            ],
        },
        "figures": {
            "dumb": {
                "inputs_share": 0.3,
                "day_to_day_share": 0.7,
                "top_inputs": [
                    {
                        "input": "cohorts.active_a.outcomes.dumb",
                        "label": "active_a dumb rate",
                        "share": 0.3,
                    }
                ],
            }
        },
    }
    page = render_report([results], charts=False)
    section = page[page.index('id="uncertainty"') : page.index('id="detail"')]
    assert "80%" in section and "20%" in section
    assert "programme-wide delay" in section and "confirmed dates" in section
    assert "outcomes of the next migrations of active_a" in section
    assert "active_a stall rate: 20%" in section
    plain = render_report([migsim.run(tiny(), 4, seed=1)], charts=False)
    assert 'id="uncertainty"' not in plain  # nothing to say without a split


# --------------------------------------------------------------------------- shares
def test_a_cleared_share_reads_the_same_in_the_terminal_and_the_report():
    """199 of 200 clear: never "100%"; 97.5% cleared is "2.5%" not clearing (the
    terminal once said 98% and the report 3%)."""
    results = migsim.run(tiny(), 4, seed=1)
    cohort = results.cohort_names[0]
    results.summary["cleared_share"] = 0.975
    results.summary["cohorts"][cohort]["cleared_share"] = 0.995
    text = summary_text(results)
    rows = {line.split()[0]: line for line in text.splitlines() if line[:2] == "  "}
    assert rows["all"].endswith(" 97.5%") and rows[cohort].endswith(" 99.5%")
    page = html.unescape(render_report([results], charts=False))
    answer = re.search(r'id="answer">(.*?)</p>', page, re.S).group(1)
    assert "in 2.5% of replications it does not clear" in answer
    cells = re.findall(r'data-key="[^"]*cleared_share"[^>]*>([^<]*)<', page)
    assert cells == ["97.5%", "99.5%"] + ["100%"] * (len(cells) - 2)


# --------------------------------------------------------------------------- bounds
def test_an_interval_of_a_count_never_goes_below_zero_nor_reads_minus_0():
    """2 of 200 replications abandon one installation: the mean's Student-t
    interval was [-0.0039, 0.0239] and the report printed "0 (-0 to 0)"."""
    from migsim.evidence.intervals import ci95_section

    results = migsim.run(tiny(), 4, seed=1)
    rare = np.array([0.0] * 198 + [1.0, 1.0])
    results.figure = lambda name, cohort=None: rare  # every figure: rare events
    results.summary.pop("ci95", None)
    ci = ci95_section(results)
    for name, stats in ci["figures"].items():
        low, high = stats["mean"]
        assert low == 0 and high == pytest.approx(0.023909), name
    assert format_count(-0.0039) == "0" and format_count(-0.3, 1.6) == "0"
    text = summary_text(migsim.run(tiny(), 4, seed=1))
    assert "-0 " not in text and not text.rstrip().endswith("-0")


def test_the_appendix_says_what_each_scenario_has_for_a_field():
    """``capacity.schedule`` read "none | not set" for a scenario with a schedule
    (its steps were rows at the end of the table)."""
    from conftest import SCENARIOS

    from migsim.output.report_assumptions import appendix_section

    runs = []
    for name in ("nov2019_cautious_ramp", "nov2019_aggressive_ramp"):
        scenario = migsim.load_scenario(SCENARIOS / f"{name}.yaml")
        runs.append(type("Run", (), {"scenario": scenario})())
    page = html.unescape(appendix_section(runs))
    rows = re.findall(r"<tr[^>]*><td><code>([^<]*)</code></td>(.*?)</tr>", page)
    keys = [key for key, _ in rows]
    cells = dict(rows)
    schedule = re.findall(r"<td><mark>([^<]*)</mark></td>", cells["capacity.schedule"])
    assert schedule == ["none", "automation_jump, full_rate (rows below)"]
    at = keys.index("capacity.schedule")
    assert keys[at + 1 : at + 3] == [
        "capacity.schedule.automation_jump",
        "capacity.schedule.full_rate",
    ]
    # a list's items are counted, not named by their indices ("0 (rows below)")
    plain = migsim.load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    stepped = plain.with_overrides(
        {"capacity.schedule": [{"from": "2020-01-06", "daily_cap": 5000}]}
    )
    runs = [type("Run", (), {"scenario": sc})() for sc in (plain, stepped)]
    page = html.unescape(appendix_section(runs))
    rows = dict(re.findall(r"<tr[^>]*><td><code>([^<]*)</code></td>(.*?)</tr>", page))
    schedule = re.findall(r"<td><mark>([^<]*)</mark></td>", rows["capacity.schedule"])
    assert schedule == ["none", "1 item (rows below)"]


def test_a_date_shift_and_its_interval_use_one_sign_convention():
    """The headline said "21 days earlier, 95% CI 14 to 25 days" and the table
    "21 days earlier (95% CI -25 to -14)": both now say the interval in the
    shift's own words, as does the full comparison table."""
    from migsim.output.report_first import Verdict, _clearance_shift, days_interval
    from migsim.output.report_tables import _difference_interval

    earlier = Verdict({"diff": -21, "ci95": [-25, -14]})
    assert _clearance_shift(earlier) == "21 days earlier, 95% CI 14 to 25 days earlier"
    assert earlier.cell(days=True) == (
        '<b>21 days earlier</b> <span class="note">'
        "(95% CI 14 to 25 days earlier)</span>"
    )
    assert _difference_interval([-25, -14], "clearance_day", 1.0) == (
        "14 to 25 days earlier"
    )
    assert days_interval([-3, 5]) == "3 days earlier to 5 days later"
    assert days_interval([2, 9]) == "2 to 9 days later"
    assert days_interval([-1, -1]) == "1 day earlier"
    unclear = Verdict({"diff": 1, "ci95": [-3, 5]})
    assert "-3" not in _clearance_shift(unclear) + unclear.cell(days=True)
    assert _difference_interval([222, 1810], "dumb", 1.0) == "+222 to +1,810"


def test_the_cap_phrase_says_how_far_a_ramp_rule_raises_the_cap():
    """A plan that starts at 2,000 a day and whose automation step may raise it
    to 10,000 is not "at 2,000/day": the headline's phrase says both ends, and
    names the rules that do not raise the cap."""
    from migsim.model.scenario import load_scenario
    from migsim.output.report_sections import capacity_phrase

    root = Path(__file__).parent.parent / "scenarios"
    cautious = load_scenario(root / "nov2019_cautious_ramp_elster_active.yaml")
    assert capacity_phrase(cautious, 1.0, "installations") == (
        "2,000/day, raised by the automation step to at most 10,000/day "
        "(and the stall halt rule)"
    )
    aggressive = load_scenario(root / "nov2019_aggressive_ramp.yaml")
    assert capacity_phrase(aggressive, 1.0, "installations").endswith(
        "raised by the automation step to at most 15,000/day "
        "(and the stall halt and the stall cut rules)"
    )
    plain = load_scenario(root / "nov2019_epcl.yaml")
    assert capacity_phrase(plain, 1.0, "installations") == "2,000/day"


def test_the_first_screen_lists_every_budget_of_the_question():
    """The elster-active scenario has more risks than the first screen's seven:
    the question's budgeted figures are listed whatever else is, each with its
    budget (peak ELS backlog was left out, shown only lower down)."""
    from types import SimpleNamespace

    from migsim.model.scenario import load_scenario
    from migsim.output.report_first import key_risk_names, key_risks_table
    from migsim.output.report_sections import RISK_FIGURES

    root = Path(__file__).parent.parent / "scenarios"
    sc = load_scenario(root / "nov2019_cautious_ramp_elster_active.yaml")
    summary = {
        "figures": {name: {"p50": 10.0, "p90": 20.0} for name in RISK_FIGURES},
        "clearance_date": {"p50": "2020-09-01", "p90": "2020-11-01"},
    }
    runs = [SimpleNamespace(scenario=sc, summary=summary)]
    budgeted = [
        "active_hit_by_defects",
        "max_daily_active_interrupted",
        "peak_els_backlog",
    ]
    assert "peak_els_backlog" not in key_risk_names(runs)  # seven before it
    names = key_risk_names(runs, None, budgeted)
    assert set(budgeted) <= set(names) and len(names) == 7
    budgets = {
        "active_hit_by_defects": "budget: P(more than 100) at most 5%",
        "max_daily_active_interrupted": "budget: P90 at most 5,000",
        "peak_els_backlog": "budget: P90 at most 1,500",
    }
    table = key_risks_table(runs, [summary], None, [1.0], "installations", budgets)
    for figure, budget in budgets.items():
        assert f"{RISK_FIGURES[figure]} <span class='note'>(" in table
        assert f"; {budget})</span>" in table


# --------------------------------------------------------------------------- basis
def _plain(markup: str) -> str:
    """HTML as the reader sees its text."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_the_ramp_basis_says_the_cap_and_what_raises_it():
    """Without --question nothing on the first screen said on what basis volumes
    rise: the headline said "2,000/day, raised by the automation step to at most
    10,000/day", naming a rule, not what it waits for nor the evidence it needs.
    Each scenario's basis now says its cap, the gate it waits for (with the P50
    day the gate opened in the run, tagged with its key), the cadence, the
    evidence and the ceiling; the rules that halt or cut follow, smaller."""
    from migsim.output.report_first import ramp_basis

    root = Path(__file__).resolve().parents[1] / "scenarios"
    cautious, aggressive, epcl = (
        migsim.load_scenario(root / f"{name}.yaml")
        for name in ("nov2019_cautious_ramp", "nov2019_aggressive_ramp", "nov2019_epcl")
    )
    gates = {
        name: {"opened_share": 1.0, "opening_date": {"p50": day}}
        for name, day in (("mcc_automation", "2020-01-15"), ("full_rate", "2020-02-17"))
    }
    summary = {"policy": {"gates": gates}}
    basis = ramp_basis(cautious, summary, 2, 1.0, "installations")
    assert _plain(basis) == (
        "2,000/day until MCC tooling automation passes Business Acceptance Testing "
        "(P50 15 Jan 2020), then +50% every 10 working days while 10-day eventual "
        "success \u2265 97% and stalled < 500, up to 10,000/day (halt 3 working days "
        "if 5-day stall rate > 8% and 5-day attempts \u2265 1,000)"
    )
    assert (
        '<span data-key="policy.gates.mcc_automation.opening_date.p50" '
        'data-value="2020-01-15" data-run="2">15 Jan 2020</span>'
    ) in basis
    assert '<span class="note">(halt 3 working days' in basis  # brakes: smaller
    basis = _plain(ramp_basis(aggressive, summary, 1, 1.0, "installations"))
    assert basis.startswith(
        "2,000/day, then 5,000/day once MCC tooling automation passes Business "
        "Acceptance Testing (P50 15 Jan 2020), then 15,000/day once MCC automation "
        "has passed and mid-February 2020 has come (P50 17 Feb 2020); and +100% "
        "every 3 working days while 3-day eventual success \u2265 95%, up to "
        "15,000/day ("
    ), basis
    assert basis.count("P50") == 2  # a gate's date is said once
    assert "cut to 5,000/day if stalled > 4,000" in basis
    # a flat cap and a dated step read as the cap phrase reads them
    assert ramp_basis(epcl, {}, 0, 1.0, "installations") == "2,000/day"
    dated = epcl.with_overrides(
        {"capacity.schedule": [{"from": "2020-01-06", "daily_cap": 5000}]}
    )
    assert ramp_basis(dated, {}, 0, 1.0, "installations") == (
        "2,000/day, then 5,000/day from 6 Jan 2020"
    )
    # in meters the cap says both units, and a rule's counts say theirs
    meters = _plain(ramp_basis(cautious, {}, 0, 1.6, "meters"))
    assert meters.startswith("2,000 installations/day (about 3,200 meters) until MCC")
    assert "stalled < 500 installations" in meters and "(P50" not in meters


def test_a_dumb_count_rule_is_said_as_devices_gone_dumb():
    """`dumb_count` counts devices that went dumb within the rule's window,
    recovered ones included (docs/ramp-policy.md): "devices left dumb" is the
    horizon figure's name, and said of a rule it misread the brake."""
    from migsim.output.report_basis import rule_words
    from migsim.output.report_first import ramp_basis

    root = Path(__file__).resolve().parents[1] / "scenarios"
    epcl = migsim.load_scenario(root / "nov2019_epcl.yaml")
    brake = {
        "name": "dumb_brake",
        "action": "halt_days",
        "days": 2,
        "when": [{"metric": "dumb_count", "window": 5, "op": ">", "value": 3}],
    }
    braked = epcl.with_overrides({"capacity.rules": [brake]})
    words = rule_words(braked.capacity.rules[0], braked)
    assert words == (
        "halts migrations for 2 working days, while the 5-day devices gone dumb "
        "are above 3"
    )
    basis = _plain(ramp_basis(braked, {}, 0, 1.0, "installations"))
    assert "5-day devices gone dumb > 3" in basis and "left dumb" not in basis


def _answer_lines(page: str) -> list[str]:
    """The answer's lines, one per scenario, as HTML."""
    answer = re.search(r'id="answer">(.*?)</p>', page, re.S).group(1)
    return re.findall(r'<span class="plan">(.*?)(?=<span class="plan">|$)', answer)


@pytest.fixture(scope="module")
def ramps_report(tmp_path_factory):
    """The three bundled November 2019 plans (cautious, aggressive, conditions
    alone), a few replications each, reported: the longest first screen."""
    from conftest import SCENARIOS

    root = tmp_path_factory.mktemp("ramps")
    page = root / "report.html"
    files = [
        str(SCENARIOS / f"{name}.yaml")
        for name in (
            "nov2019_cautious_ramp",
            "nov2019_aggressive_ramp",
            "nov2019_conditions",
        )
    ]
    args = ["report", *files, "-n", "3", "--seed", "0", "-q", "-o", str(page)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    runs = [root / "report_runs" / Path(f).stem for f in files]
    return page, runs


@pytest.mark.slow
def test_the_answer_gives_each_scenarios_basis_and_clearance_dates(ramps_report):
    """One line per scenario: its basis for increasing volumes and when its
    backlog clears, P50 with P10 and P90, each number equal to its summary;
    what each risks against the first is said under the chart, not in it."""
    from migsim.output.report_first import ramp_basis

    page_path, runs = ramps_report
    page = page_path.read_text()
    answer = re.search(r'id="answer">(.*?)</p>', page, re.S).group(1)
    lines = _answer_lines(page)
    assert len(lines) == 3
    for i, (line, run) in enumerate(zip(lines, runs, strict=True)):
        summary = json.loads((run / "summary.json").read_text())
        scenario = migsim.load_scenario(run / "scenario.yaml")
        assert f"<b>{scenario.name}</b>" in line
        assert ramp_basis(scenario, summary, i, 1.0, "installations") in line
        for stat in ("p10", "p50", "p90"):
            assert f'data-key="clearance_date.{stat}"' in line, (i, stat)
            assert f'data-run="{i}"' in line
        text = _plain(line)
        assert ("P10 " in text) and ("P90 " in text) and ("P50" in text)
    assert "P50 to" in _plain(lines[1]) and "clears by" in _plain(lines[0])
    assert "on average" not in answer  # the risks are said under the chart
    risks = page[page.index('id="risk-answer"') :]
    risks = risks[: risks.index("</p>")]
    assert "against nov2019_cautious_ramp" in risks
    first = page[page.index('class="first-screen"') : page.index("</section>")]
    assert first.index('id="answer"') < first.index("<img") < first.index("risk-answer")
    assert _check_numbers(page, runs) > 60


_PLAN_BOXES = """() => [...document.querySelectorAll('#answer .plan')].map(line => {
  const dates = [...line.querySelectorAll('[data-key^="clearance_date."]')];
  return {bottom: line.getBoundingClientRect().bottom, text: line.innerText,
          dates: dates.map(d => [d.dataset.key, d.getBoundingClientRect().bottom])};
})"""


@pytest.mark.slow
@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_each_basis_and_clearance_date_is_on_the_first_screen(
    ramps_report, tmp_path, width, height
):
    """The headline of three scenarios was about 30 lines on a phone: the chart
    and every scenario after the first were below the fold. Now each scenario's
    basis and its P10/P50/P90 clearance dates lie within the first screen of a
    desktop and of a phone, the chart starts on the desktop's first screen, and
    the page is never wider than the window."""
    page_path, _ = ramps_report
    with _chromium_page(width, height) as page:
        page.goto(page_path.resolve().as_uri())
        boxes = page.evaluate(_PLAN_BOXES)
        chart = page.evaluate(
            "document.querySelector('.first-screen img').getBoundingClientRect().top"
        )
        wide = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(tmp_path / f"first_{width}.png"))
    assert len(boxes) == 3
    for box in boxes:
        assert box["bottom"] <= height, box["text"]
        assert "working days while" in box["text"] or "2,000/day brings" in box["text"]
        keys = sorted(key for key, _ in box["dates"])
        assert keys == [f"clearance_date.{s}" for s in ("p10", "p50", "p90")]
        assert all(bottom <= height for _, bottom in box["dates"]), box
    if width > 1000:
        assert chart < height - 200, chart  # the answer's chart is there to see
    assert wide <= width, f"the page is {wide} px wide at {width}"


@pytest.mark.slow
def test_four_scenarios_answer_and_chart_fit_a_desktops_first_screen(
    ramps_report, tmp_path
):
    """Four bundled plans (EPCL, the cautious and aggressive ramps, the
    cautious ramp with Elster active): their answer lines, 346 px in the
    answer's own type at 1280 x 800 (40 replications each), pushed the lower
    half of the fan chart below the fold (it ended at 897 px), and the chart
    did not shrink. From four scenarios the answer is set compact and the chart
    shrinks to the rest: every scenario's line with its three dates and the
    whole chart, at no less than 90% of its size (shrunk under the answer in
    its own type it kept 78%), are on a desktop's first screen. On a phone
    each line and its dates are on the first screen, the chart follows, and
    the page is never wider than the window. Checked on the three plans the
    ramps report ran and the cautious ramp with Elster active (the longest
    name), -n 3 each."""
    from conftest import SCENARIOS

    _, ramps = ramps_report  # cautious, aggressive, conditions: -n 3 --seed 0
    runner = CliRunner()
    name = "nov2019_cautious_ramp_elster_active"
    args = ["run", str(SCENARIOS / f"{name}.yaml"), "-n", "3", "--seed", "0"]
    result = runner.invoke(main, [*args, "-q", "-o", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    runs = [*ramps, tmp_path / name]
    page_path = tmp_path / "report.html"
    result = runner.invoke(main, ["report", *map(str, runs), "-o", str(page_path)])
    assert result.exit_code == 0, result.output
    boxes = {"answer": "#answer", "chart": ".first-screen img"}
    seen = _desktop_and_phone(page_path, boxes, tmp_path / "four")
    chart = seen[1280]["chart"]
    assert 0 < chart["top"] and chart["bottom"] <= 800, chart
    assert chart["width"] >= 0.9 * chart["natural"], chart  # still readable
    lines = seen[1280]["lines"]
    assert [line["text"].split(" ")[0] for line in lines] == [r.name for r in runs]
    for line in lines:
        keys = sorted(key for key, _ in line["dates"])
        assert keys == [f"clearance_date.{s}" for s in ("p10", "p50", "p90")]
        assert line["bottom"] <= chart["top"], line["text"]  # above the chart
        assert all(bottom <= 800 for _, bottom in line["dates"]), line
    phone = seen[390]
    for line in phone["lines"]:
        assert line["bottom"] <= 844, line["text"]
    assert phone["chart"]["top"] >= phone["answer"]["bottom"]
    assert phone["chart"]["width"] >= 760  # pans in its box, as with fewer
    assert phone["wide"] <= 390, f"the page is {phone['wide']} px wide at 390"
    # nothing dropped from the lines: every number equals its summary
    assert _check_numbers(page_path.read_text(), runs) > 60


def test_a_long_scenario_name_does_not_widen_a_phone_page(tmp_path):
    """nov2019_cautious_ramp_elster_active in the title and the answer, one word
    of 35 characters in a large font, made the page 416 px wide at 390: the
    whole page slid sideways. A name breaks where it must; nothing else does."""
    name = "a_scenario_name_long_enough_to_widen_a_phone"
    results = migsim.run(tiny(name=name), 3, seed=0)
    page_path = tmp_path / "report.html"
    page_path.write_text(render_report([results], charts=False), encoding="utf-8")
    with _chromium_page(390, 844) as page:
        page.goto(page_path.resolve().as_uri())
        width = page.evaluate("document.documentElement.scrollWidth")
        answer = page.evaluate(
            "document.querySelector('#answer').getBoundingClientRect().bottom"
        )
    assert width <= 390, f"the page is {width} px wide at 390"
    assert answer <= 844


@pytest.fixture(scope="module")
def question_reports(tmp_path_factory):
    """The bundled OPSG question decided (a few replications) into a report of
    its scenario and the two bundled ramps; and, from those runs and that
    decision, a report of its scenario and the aggressive ramp alone."""
    from conftest import SCENARIOS

    root = tmp_path_factory.mktemp("question")
    names = [
        "nov2019_cautious_ramp_elster_active",
        "nov2019_cautious_ramp",
        "nov2019_aggressive_ramp",
    ]
    question = SCENARIOS / "questions" / "opsg_ramp_basis.yaml"
    three = root / "three.html"
    files = [str(SCENARIOS / f"{name}.yaml") for name in names]
    args = ["report", *files, "-n", "3", "--seed", "1", "-q", "-o", str(three)]
    result = CliRunner().invoke(main, [*args, "--question", str(question)])
    assert result.exit_code == 0, result.output
    runs = [root / "three_runs" / name for name in names]
    decision = root / "three_decision"
    two = root / "two.html"
    args = ["report", str(runs[0]), str(runs[2]), "-o", str(two)]
    result = CliRunner().invoke(main, [*args, "--question", str(decision)])
    assert result.exit_code == 0, result.output
    return {"two": (two, [runs[0], runs[2]]), "three": (three, runs)}, decision


_BOX = """(selector) => {
  const e = document.querySelector(selector);
  const box = e.getBoundingClientRect();
  return {top: box.top, bottom: box.bottom, width: box.width,
          natural: e.naturalWidth || 0};
}"""


def _desktop_and_phone(page_path: Path, boxes: dict[str, str], shot: Path) -> dict:
    """The report at 1280 x 800 and at 390 x 844, by width: its answer's plan
    lines, the box of each of ``boxes`` (name: CSS selector) and the page's
    width; a screenshot of each, ``<shot>_<width>.png``, to look at."""
    seen = {}
    for width, height in ((1280, 800), (390, 844)):
        with _chromium_page(width, height) as page:
            page.goto(page_path.resolve().as_uri())
            seen[width] = {
                "lines": page.evaluate(_PLAN_BOXES),
                **{name: page.evaluate(_BOX, css) for name, css in boxes.items()},
                "wide": page.evaluate("document.documentElement.scrollWidth"),
            }
            page.screenshot(path=f"{shot}_{width}.png")
    return seen


@pytest.mark.slow
def test_with_a_question_the_chart_and_each_basis_fit_a_desktops_first_screen(
    question_reports, tmp_path
):
    """With --question the recommendation, about eight lines at 1280 px, sat
    between the answer and the fan chart: at 1280 x 800 the chart began at
    516 px for two scenarios and 652 px for three, most of it below the fold.
    Now the question's verdict ends its scenario's line and the recommendation
    follows the chart, whole: at 1280 x 800 every scenario's basis with its
    three dates and the whole chart (shrunk to fit, for three, to no less than
    70% of its size) are on the first screen. A phone is never scrolled
    sideways, and there too each basis and its dates come first."""
    reports, decision_dir = question_reports
    for which, (page_path, runs) in reports.items():  # one decision for both
        _question_report_fits(page_path, runs, decision_dir, tmp_path, which)


def _question_report_fits(page_path, runs, decision_dir, shots: Path, which: str):
    """`test_with_a_question_the_chart_and_each_basis_fit_a_desktops_first_screen`
    for one report."""
    from migsim.experiments.decision import load_decision
    from migsim.output.report_basis import recommendation

    boxes = {"chart": ".first-screen img", "recommendation": "#recommendation"}
    seen = _desktop_and_phone(page_path, boxes, shots / f"question_{which}")
    desktop = seen[1280]["chart"]
    assert 0 < desktop["top"] and desktop["bottom"] <= 800, desktop
    assert desktop["width"] >= 0.7 * desktop["natural"], desktop  # still readable
    for width, height in ((1280, 800), (390, 844)):
        lines, chart = seen[width]["lines"], seen[width]["chart"]
        assert len(lines) == len(runs)
        for line in lines:
            keys = sorted(key for key, _ in line["dates"])
            assert keys == [f"clearance_date.{s}" for s in ("p10", "p50", "p90")]
            assert line["bottom"] <= height, (width, line["text"])
            assert all(bottom <= height for _, bottom in line["dates"]), line
        assert seen[width]["recommendation"]["top"] >= chart["bottom"]
        assert seen[width]["wide"] <= width, f"the page is {seen[width]['wide']} px"
    assert seen[390]["chart"]["width"] >= 760  # pans in its box, as without one
    # nothing dropped: every number, the verdict from decision.json, the whole
    # recommendation
    page = page_path.read_text()
    assert _check_numbers(page, runs) > 40
    decision = json.loads((decision_dir / "decision.json").read_text())
    shown = decision["answer_candidate"] or decision["least_unsafe"]
    (cap,) = shown["levers"].values()
    first_line = _plain(_answer_lines(page)[0])
    assert f"{cap:,} a day (why, and the risk budget: below)." in first_line
    paragraph = re.search(r'id="recommendation">(.*?)</p>', page, re.S).group(1)
    saved = load_decision(decision_dir)
    assert paragraph == recommendation(saved, [load_run(run) for run in runs])


@pytest.mark.parametrize(
    ("count", "classes"),
    [(1, "lead fit"), (3, "lead fit"), (4, "lead fit many"), (6, "lead fit many")]
    + [(7, "lead many")],
)
def test_the_first_screen_fits_up_to_six_scenarios_compact_from_four(count, classes):
    """The chart shrinks beside the answer (.lead.fit) for up to six
    scenarios, and from four the answer is set compact (.lead.many) so that it
    leaves the chart its size; seven keep the chart's size under the answer."""
    sc = tiny({"capacity.daily_cap": 500})
    run = migsim.run(sc, 2, seed=1)
    runs = [run] + [
        migsim.run(sc.with_overrides({"name": f"tiny_{i}"}), 2, seed=1)
        for i in range(1, count)
    ]
    page = render_report(runs, charts=False)
    assert re.findall(r'<div class="(lead[^"]*)">', page) == [classes]
