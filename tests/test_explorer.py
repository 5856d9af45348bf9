"""The explorer (`migsim serve`) in a real browser: Debian's Chromium, headless,
driven by Playwright. The server runs as ``migsim serve --port P`` in a
subprocess, as a planner starts it.

Skipped (saying why) only when Playwright or Chromium is missing; `.ci/run`
installs Chromium, and Playwright comes with the test extras. Playwright's own
browser download is never used.
"""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path

import pytest

import migsim

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCENARIO = ROOT / "scenarios" / "nov2019_cautious_ramp.yaml"
REPLICATIONS = 40  # the page's default
RESULT_TIMEOUT = 15_000  # ms: "a P50 date and a chart within 15 s"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True
    )
expect = sync_api.expect
# A browser and a server process per module: seconds, not milliseconds.
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """``migsim serve --port P`` in a subprocess; its address once it answers."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "migsim", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30  # "answers within 30 s"
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"migsim serve did not answer on {url}:\n{output}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(
        accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    yield context
    context.close()


class Tab:
    """One browser tab on the explorer, recording page errors."""

    def __init__(self, context, url: str):
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", self._console)
        self.page.goto(url)
        expect(self.page.locator("body[data-ready]")).to_have_count(1)

    def _console(self, message) -> None:
        """Console errors count, but for the 400 that carries bad input's
        messages (Chromium logs every 4xx answer)."""
        if message.type == "error" and "status of 400" not in message.text:
            self.errors.append(message.text)

    def cap(self, value: str) -> None:
        self.page.get_by_label("Daily cap", exact=True).fill(value)

    def run(self) -> None:
        self.page.get_by_role("button", name="Run", exact=True).click()

    def field(self, path: str):
        return self.page.locator(f'input[data-path="{path}"]')

    def error(self, path: str):
        return self.page.locator(f'[data-error-for="{path}"]')

    def wait_result(self, change: str, timeout: int = RESULT_TIMEOUT):
        """Wait until the result of the run that made ``change`` is shown
        (within ``timeout`` ms: a run that shares the machine with another
        tab's is given longer)."""
        expect(self.page.locator("#changes")).to_contain_text(change, timeout=timeout)
        expect(self.page.locator("#result")).to_be_visible()
        # the chart may still be drawing: on a loaded machine, longer than the
        # 5 s an expectation waits by default
        expect(self.page.locator("#progress")).to_be_hidden(timeout=RESULT_TIMEOUT)
        return self.page.locator("#p50").get_attribute("data-value")


@cache
def _expected_p50(daily_cap: int, replications: int = REPLICATIONS) -> str:
    """What the library says for the same scenario, replications and seed."""
    scenario = migsim.load_scenario(SCENARIO, {"capacity.daily_cap": daily_cap})
    results = migsim.run(scenario, replications=replications, seed=scenario.seed)
    return results.summary["clearance_date"]["p50"]


@pytest.fixture(scope="module")
def at_5000(server, browser):
    """A tab that set the daily cap to 5,000 and ran: the tab, its P50 date and
    the seconds from Run to the result. One run serves the result test and the
    downloads test (each ran the same 40 replications on the server before)."""
    context = browser.new_context(
        accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    tab = Tab(context, server)
    tab.cap("5000")
    started = time.monotonic()
    tab.run()
    expect(tab.page.locator("#progress")).to_be_visible()
    p50 = tab.wait_result("Daily cap: 2,000 → 5,000")
    seconds = time.monotonic() - started
    yield tab, p50, seconds
    context.close()


def test_daily_cap_then_run_shows_the_p50_date_and_the_chart(at_5000, tmp_path):
    tab, p50, seconds = at_5000
    page = tab.page
    assert seconds < RESULT_TIMEOUT / 1000
    assert p50 == _expected_p50(5000)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", p50)
    expect(page.locator(".headline .label").first).to_have_text("P50")
    expect(page.locator("#p50")).to_contain_text(p50[:4])
    chart = page.locator("#chart")
    expect(chart).to_be_visible()
    page.wait_for_function("document.querySelector('#chart').naturalWidth > 0")
    expect(page.locator("#risks tbody tr").first).to_contain_text(
        "active installation-days"
    )
    expect(page.locator("#comparison tbody tr").first).to_contain_text(
        "clearance (days)"
    )
    expect(page.locator("#paired")).to_contain_text("common random numbers")
    # what the pairing bought, as the CLI says it; a cap change pairs closely
    # (correlation 0.86), so no note that the order is stream noise
    expect(page.locator("#pairing")).to_contain_text(
        "Pairing on the clearance day: the clearance-day difference varies 0.15x"
    )
    expect(page.locator("#pairing")).to_contain_text("about 7x fewer replications")
    expect(page.locator("#order")).to_contain_text("of pairs")
    expect(page.locator("#order-note")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    assert not tab.errors, tab.errors
    print(f"\nRun to result: {seconds:.1f} s")


def test_a_second_run_replaces_the_first(server, context):
    tab = Tab(context, server)
    # 20: the first is still running when the second is pressed (the loaded
    # scenario runs first), and the second is checked against the library
    tab.page.get_by_label("Replications").fill("20")
    tab.cap("3000")
    tab.run()
    expect(tab.page.locator("#progress")).to_be_visible()
    tab.cap("6000")  # while the first is still running
    tab.run()
    p50 = tab.wait_result("Daily cap: 2,000 → 6,000")
    assert p50 == _expected_p50(6000, 20)
    expect(tab.page.locator("#changes")).not_to_contain_text("3,000")
    assert not tab.errors, tab.errors


def test_a_refused_press_of_run_leaves_the_run_in_flight_to_finish(server, context):
    """A press of Run refused (bad input) while a run was in flight stopped
    watching that run: its progress went, its result never came, and the
    result pane stayed blank while the server ran it to the end."""
    tab = Tab(context, server)
    page = tab.page
    # seconds: still in flight below (60 of each run: four times the second
    # the refused press takes on a loaded machine). No other test asks for 60:
    # the server does not run the loaded scenario again at a count it has run
    page.get_by_label("Replications").fill("60")
    tab.cap("3500")
    tab.run()
    expect(page.locator("#progress")).to_be_visible()
    tab.cap("-5")
    tab.run()
    expect(tab.error("capacity.daily_cap")).to_contain_text(
        "capacity.daily_cap: Input should be greater than or equal to 0"
    )
    expect(page.locator("#progress")).to_be_visible()
    expect(page.locator("#changes")).to_contain_text(
        "Daily cap: 2,000 → 3,500", timeout=4 * RESULT_TIMEOUT
    )
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#progress")).to_be_hidden()
    assert not tab.errors, tab.errors


def test_an_interval_end_too_few_replications_can_bound_is_shown_as_such(
    server, context
):
    """With 20 replications no order statistic bounds the P90 date from above
    (1 - 0.9 ** 20 < 0.975): the page dropped the P90 date's interval
    altogether, so the headline looked as certain as a point."""
    tab = Tab(context, server)
    page = tab.page
    page.get_by_label("Replications").fill("20")
    tab.cap("4500")
    tab.run()
    tab.wait_result("Daily cap: 2,000 → 4,500")
    note = page.locator("#p90-note")
    expect(note).to_contain_text("95% CI ")
    expect(note).to_contain_text(" to ? (? : too few replications to bound it)")
    expect(note).to_contain_text("as loaded ")
    assert not tab.errors, tab.errors


def test_the_run_bar_in_view_says_how_far_the_run_is(server, browser):
    """At a laptop's height, pressing Run from the foot of the form (beside
    Replications) left the progress bar scrolled out of view: nothing on the
    screen but faded results said a run was going on, or how far it was."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = Tab(context, server)
    page = tab.page
    # 50: no other test asks for it, so the loaded scenario runs too
    page.get_by_label("Replications").fill("50")
    tab.cap("2750")
    tab.run()
    note = page.locator("#run-note")
    # 50 asked for: the loaded scenario runs first, so two runs' worth
    expect(note).to_contain_text(" of 100 replications (two runs of 50)")
    expect(note).to_be_in_viewport()
    expect(page.locator("#changes")).to_contain_text(
        "Daily cap: 2,000 → 2,750", timeout=4 * RESULT_TIMEOUT
    )
    expect(note).to_have_text("runs the scenario as loaded and yours")
    assert not tab.errors, tab.errors
    context.close()


def test_on_a_phone_the_results_never_scroll_the_page_sideways(server, browser):
    """At 390 px the risk and comparison tables (a mean with its interval on
    one line) made the page 642 px wide: a phone showed it zoomed out, or
    scrolled sideways. Each table now fits, or scrolls in its own box. And the
    answer, below the whole form there, is scrolled into view once it comes."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    tab = Tab(context, server)
    page = tab.page
    page.get_by_label("Replications").fill("10")
    tab.cap("3000")
    tab.run()
    tab.wait_result("Daily cap: 2,000 → 3,000")
    # the answer, below the whole form on one column, is brought into view
    expect(page.locator("#p50")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("window.innerWidth") == 390  # not zoomed out to fit
    for table in ("#risks", "#comparison"):
        box = page.locator(table).locator("xpath=..").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert not tab.errors, tab.errors
    context.close()


def test_bad_input_is_named_beside_its_field_and_the_server_keeps_serving(
    server, context
):
    tab = Tab(context, server)
    page = tab.page
    # a rate above 1
    page.get_by_text("Outcome rates: itron_active").click()
    rate = "cohorts.itron_active.outcomes.success"
    tab.field(rate).fill("1.5")
    tab.run()
    expect(tab.error(rate)).to_contain_text(f"{rate}: rate 1.5 is outside [0, 1]")
    expect(tab.field(rate)).to_have_attribute("aria-invalid", "true")
    tab.field(rate).fill(tab.field(rate).get_attribute("data-loaded"))
    # an empty cap, and no replications: both named at once
    tab.cap("")
    page.get_by_label("Replications").fill("")
    tab.run()
    expect(tab.error("capacity.daily_cap")).to_contain_text("capacity.daily_cap: empty")
    expect(tab.error("replications")).to_contain_text("replications: empty")
    expect(tab.error(rate)).to_be_empty()
    # 10: enough for the good upload's run at the end to show a result
    page.get_by_label("Replications").fill("10")
    # a schedule step from an unknown gate
    page.get_by_role("button", name="Add step").click()
    page.get_by_label("step from (date or gate)").fill("no_such_gate")
    page.get_by_label("step daily cap").fill("8000")
    tab.cap("4000")
    tab.run()
    expect(tab.error("capacity.schedule.0.from")).to_contain_text(
        "unknown gate 'no_such_gate'"
    )
    # a broken upload
    upload = page.get_by_label("Or upload a scenario (YAML)")
    upload.set_input_files(
        {"name": "broken.yaml", "mimeType": "text/yaml", "buffer": b"name: [unclosed\n"}
    )
    expect(tab.error("upload")).to_contain_text(
        "upload broken.yaml: YAML error at line"
    )
    upload.set_input_files(
        {
            "name": "extends.yaml",
            "mimeType": "text/yaml",
            "buffer": b"extends: /etc/passwd\nname: x\n",
        }
    )
    expect(tab.error("upload")).to_contain_text("extends: an upload cannot extend")
    assert not tab.errors, tab.errors
    # still serving: a good upload loads, and runs
    upload.set_input_files(str(ROOT / "scenarios" / "nov2019_epcl.yaml"))
    expect(tab.error("upload")).to_be_empty()
    expect(page.locator("#scenario")).to_have_value("")
    expect(page.get_by_label("Daily cap", exact=True)).to_have_value("2000")
    tab.cap("2500")
    tab.run()
    tab.wait_result("Daily cap: 2,000 → 2,500")
    expect(page.locator("#result-title")).to_contain_text("nov2019_epcl_explored")


def test_text_typed_in_a_number_box_is_named_as_such_not_as_empty(server, context):
    """A planner whose finger slipped ("2500-", "1e", "--5") saw that in the
    box and was told "capacity.daily_cap: empty": a number box gives the page
    no value for text that is not a number (Chromium keeps letters out of it;
    other browsers let "abc" in too)."""
    tab = Tab(context, server)
    page = tab.page
    box = page.get_by_label("Daily cap", exact=True)
    box.click()
    box.press("Control+a")
    box.press_sequentially("2500-")
    replications = page.get_by_label("Replications")
    replications.fill("")  # a box left empty is still "empty"
    tab.run()
    expect(tab.error("capacity.daily_cap")).to_have_text(
        "capacity.daily_cap: not a number: type digits only, such as 2500 or 0.95"
    )
    expect(tab.error("replications")).to_have_text(
        "replications: empty: enter a number"
    )
    expect(tab.field("capacity.daily_cap")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#progress")).to_be_hidden()
    assert not tab.errors, tab.errors


def test_two_tabs_running_at_once_keep_their_own_results(server, context):
    first, second = Tab(context, server), Tab(context, server)
    # 20 replications each: two results that differ need no more (the loaded
    # scenario at 20 is run already, by the tests above)
    for tab in (first, second):
        tab.page.get_by_label("Replications").fill("20")
    first.cap("5000")
    second.cap("1500")
    first.run()
    second.run()
    # two runs at once share the cores: each is given twice one run's time
    p50_first = first.wait_result("Daily cap: 2,000 → 5,000", 2 * RESULT_TIMEOUT)
    p50_second = second.wait_result("Daily cap: 2,000 → 1,500", 2 * RESULT_TIMEOUT)
    assert p50_first == _expected_p50(5000, 20)
    assert p50_second == _expected_p50(1500, 20)
    assert p50_first != p50_second
    expect(first.page.locator("#changes")).not_to_contain_text("1,500")
    expect(second.page.locator("#changes")).not_to_contain_text("5,000")
    assert not first.errors and not second.errors


def _download(page, name: str, target: Path) -> Path:
    with page.expect_download() as info:
        page.get_by_role("link", name=name).click()
    path = target / info.value.suggested_filename
    info.value.save_as(path)
    return path


def test_downloads_arrive_and_parse(server, at_5000, tmp_path):
    import openpyxl

    tab, p50, _ = at_5000
    page = tab.page
    scenario = migsim.load_scenario(SCENARIO)

    path = _download(page, "Bands (CSV)", tmp_path)
    assert path.name == "nov2019_cautious_ramp_explored_bands.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert list(rows[0]) == [
        "date",
        "p10",
        "p50",
        "p90",
        "as_loaded_p10",
        "as_loaded_p50",
        "as_loaded_p90",
    ]
    assert len(rows) == scenario.horizon_days
    assert rows[0]["date"] == scenario.start_date.isoformat()
    for row in rows:
        assert int(row["p10"]) <= int(row["p50"]) <= int(row["p90"])
    medians = [int(r["p50"]) for r in rows]
    assert medians == sorted(medians, reverse=True)  # a backlog only goes down
    cleared = next(r["date"] for r in rows if int(r["p50"]) == 0)
    assert cleared <= p50  # the median backlog is empty by the P50 clearance date

    path = _download(page, "Bands and tables (XLSX)", tmp_path)
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == [
        "bands",
        "clearance",
        "risks",
        "comparison",
        "changes",
        "run",
    ]
    clearance = list(book["clearance"].values)
    assert clearance[0][:3] == ("scenario", "p50", "p90")
    assert clearance[1][1] == p50
    assert len(list(book["bands"].values)) == scenario.horizon_days + 1

    path = _download(page, "Scenario built (YAML)", tmp_path)
    built = migsim.load_scenario(path)
    assert built.capacity.daily_cap == 5000
    assert built.name == "nov2019_cautious_ramp_explored"
    assert "set in the explorer" in built.sources["capacity.daily_cap"]

    path = _download(page, "Report (HTML)", tmp_path)
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "nov2019_cautious_ramp_explored" in html and "Paired comparison" in html

    sid = page.evaluate("state.sid")
    stale = page.request.get(f"{server}api/session/{sid}/run/999/bands.csv")
    assert stale.status == 404
    assert "not this page's latest result" in stale.json()["errors"][0]["message"]
    other = page.request.get(f"{server}api/session/no-such-tab/run/1/bands.csv")
    assert other.status == 404
    assert not tab.errors, tab.errors


def test_the_server_answers_only_to_its_own_host_names(server):
    """Bound to 127.0.0.1 it refuses other host names (a DNS-rebinding page)."""
    ok = urllib.request.Request(server, headers={"Host": "localhost"})
    with urllib.request.urlopen(ok, timeout=5) as response:
        assert response.status == 200
    foreign = urllib.request.Request(server, headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(foreign, timeout=5)
    assert caught.value.code == 400
