"""Hostile input to ``migsim serve``, the planner's explorer: an address it
cannot use is one line, exit status 2, never uvicorn's own log (issue 17); a
lever value, an upload or a request no scenario could hold is an error beside
its control, never a 500. Each test here failed before its fix."""

from __future__ import annotations

import signal
import time
from datetime import date, timedelta

import pytest
from conftest import SCENARIOS
from hostile import cli, one_line_exit_2
from test_explorer_levers import asgi_request

from migsim.common.errors import MigsimError
from migsim.model.scenario import load_scenario


@pytest.mark.parametrize("problem", ["in_use", "not_this_machine"])
def test_serve_on_an_address_it_cannot_use_is_one_line(problem):
    """uvicorn printed its own ERROR after the explorer had announced its
    address, and exited 3 (migsim's 'some replications failed')."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # 192.0.2.1 (TEST-NET-1) is no machine's: bind fails at once, no DNS
        host = "127.0.0.1" if problem == "in_use" else "192.0.2.1"
        started = time.monotonic()
        result = cli("serve", "--host", host, "--port", port)
    message = one_line_exit_2(result)
    assert message.startswith(f"Error: --host {host} --port {port}: cannot listen")
    assert "explorer on" not in result.output
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2019-02-30", "2019-02-30 is not a real date"),
        ("9" * 5000, "too large"),
        ("33:20", "base-60"),
    ],
)
def test_a_lever_value_no_file_could_hold_is_a_form_error(value, problem):
    """A lever or schedule value of 2019-02-30 or 5,000 digits was read with
    YAML 1.1's plain reader, whose ValueError was the explorer's 500 Internal
    Server Error (and 33:20 was the cap 2000); a rate lever's message quoted
    all 5,000 digits."""
    from migsim.app.levers import FormError, build

    base = load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    for path in ("capacity.daily_cap", "cohorts.itron_active.outcomes.stall"):
        with pytest.raises(FormError) as info:
            build(base, {path: value}, None)
        assert [field for field, _ in info.value.errors] == [path]
        assert len(str(info.value)) < 250, str(info.value)
    assert problem in _cap_error(base, value)
    row = {"from": value, "daily_cap": "2000"}
    with pytest.raises(FormError) as info:
        build(base, {}, [row])
    assert [field for field, _ in info.value.errors] == ["capacity.schedule.0.from"]
    assert len(str(info.value)) < 250, str(info.value)


def _cap_error(base, value: str) -> str:
    from migsim.app.levers import FormError, build

    with pytest.raises(FormError) as info:
        build(base, {"capacity.daily_cap": value}, None)
    return str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "horizon_days: 365",
            "horizon_days: 365\nhorizon_days: 30",
            "duplicate key 'horizon_days'",
        ),
        ("daily_cap: 2000", "daily_cap: 33:20", "33:20 is a base-60 number"),
        ("start_date: 2019-11-25", "start_date: 2019-02-30", "not a real date"),
    ],
)
def test_an_upload_is_read_as_strictly_as_a_file(old, new, problem):
    """The explorer read uploads with YAML 1.1's plain reader: a duplicate key
    kept the last value, 33:20 was the cap 2000, and 2019-02-30 was a 500."""
    from migsim.app.session import parse_upload

    text = (SCENARIOS / "nov2019_epcl.yaml").read_text()
    assert old in text
    with pytest.raises(MigsimError) as info:
        parse_upload("mine.yaml", text.replace(old, new, 1).encode())
    message = str(info.value)
    assert message.startswith("upload mine.yaml: YAML error at line "), message
    assert problem in message, message


def test_a_request_nested_too_deeply_is_a_form_error():
    """A JSON body nested 10,000 deep raised RecursionError: a 500."""
    from migsim.app.levers import FormError
    from migsim.app.server import json_object

    with pytest.raises(FormError, match="the request is not a JSON object"):
        json_object(b'{"a":' * 10_000)
    assert json_object(b'{"values": {}}') == {"values": {}}


def test_serve_refuses_more_replications_than_the_page_allows_a_run(monkeypatch):
    """``serve -n 100000`` started, then refused every run the page asked for
    ('replications: 100000 is outside 1..2000')."""
    import migsim.app.server
    from migsim.app.session import MAX_REPLICATIONS

    def never(*args, **kwargs):
        raise AssertionError("the server started")

    monkeypatch.setattr(migsim.app.server, "serve", never)
    message = one_line_exit_2(cli("serve", "-n", MAX_REPLICATIONS + 1))
    assert message == (
        f"Error: Invalid value for '-n' / '--replications': {MAX_REPLICATIONS + 1} "
        f"is more than a run of the page may have ({MAX_REPLICATIONS})."
    )


def test_a_deeply_nested_upload_is_refused_at_once():
    """An upload of 100,000 ``[`` (100 KB) held the server for minutes: the
    check for anchors read it first with the pure-Python YAML parser, whose
    time grows with the square of the nesting (5,000 deep: about 10 s)."""
    from migsim.app.session import parse_upload

    started = time.perf_counter()
    with pytest.raises(MigsimError, match="upload deep.yaml: YAML error at line 1"):
        parse_upload("deep.yaml", b"[" * 5_000)
    assert time.perf_counter() - started < 1.0


async def _request(
    app, method: str, path: str, body: bytes = b"", parts: list | None = None
) -> tuple[int, dict]:
    """One request to the explorer's ASGI app in this process (`asgi_request`):
    status and JSON. ``parts``: the messages the client sends instead of
    ``body`` whole."""
    import json

    status, answer = await asgi_request(app, method, path, body, parts)
    return status, json.loads(answer)


def test_reading_an_upload_never_holds_up_another_tab(monkeypatch):
    """The upload route read the scenario on the server's event loop: while
    one tab's upload was read, every other tab's requests (the status polls of
    its run) waited."""
    import asyncio

    import migsim.app.server
    from migsim.app.server import create_app

    def slow(filename, data):
        time.sleep(1.5)
        raise MigsimError(f"upload {filename}: slow")

    monkeypatch.setattr(migsim.app.server, "parse_upload", slow)
    app = create_app(SCENARIOS, replications=2)
    finished: list[str] = []

    async def request(method: str, path: str, body: bytes = b"") -> dict:
        answer = (await _request(app, method, path, body))[1]
        finished.append(path.rsplit("/", 1)[-1])
        return answer

    async def two_tabs() -> None:
        sid = (await request("POST", "/api/session"))["session"]
        other = (await request("POST", "/api/session"))["session"]
        finished.clear()
        upload = asyncio.create_task(
            request("POST", f"/api/session/{sid}/upload", b"name: x\n")
        )
        await asyncio.sleep(0.2)  # the upload is being read
        status = await asyncio.wait_for(
            request("GET", f"/api/session/{other}/status"), timeout=1.0
        )
        assert status == {"state": "idle"}
        assert (await upload)["errors"][0]["message"] == "upload scenario.yaml: slow"

    asyncio.run(two_tabs())
    assert finished == ["status", "upload"]


@pytest.mark.parametrize("route", ["run", "scenario"])
def test_a_request_too_large_is_named_so(route):
    """A request body over 1 MiB was read as an empty one: a run of valid
    values answered "replications: empty: enter a number", a choice of a
    bundled scenario "no bundled scenario named ''"."""
    import asyncio
    import json

    from migsim.app.server import create_app

    app = create_app(SCENARIOS, replications=2)
    request = {
        "values": {},
        "replications": 2,
        "key": "nov2019_epcl.yaml",
        "note": "x" * 1024 * 1024,
    }

    async def too_large() -> tuple[int, dict]:
        sid = (await _request(app, "POST", "/api/session"))[1]["session"]
        path = f"/api/session/{sid}/{route}"
        return await _request(app, "POST", path, json.dumps(request).encode())

    status, answer = asyncio.run(too_large())
    assert status == 400
    assert answer == {
        "errors": [
            {
                "field": "",
                "message": "the request is larger than the 1,048,576 bytes allowed",
            }
        ]
    }


def test_runs_at_once_are_bounded_and_a_run_too_many_is_refused(monkeypatch):
    """Each new tab (a POST to /api/session) could start a run, and a running
    session was never dropped: a client looping over new sessions ran as many
    simulations at once as it liked, each up to 2,000 replications twice."""
    import threading

    import migsim.runner.runner
    from migsim.app import session as tabs
    from migsim.app.levers import build

    limit = getattr(tabs, "MAX_RUNNING", 4)
    release = threading.Event()

    def simulating(*args, **kwargs):
        release.wait(30)
        raise MigsimError("stopped by the test")

    monkeypatch.setattr(migsim.runner.runner, "run", simulating)
    base = load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    built = build(base, {"capacity.daily_cap": "3000"}).scenario
    store = tabs.SessionStore()
    sessions = [store.create(base, "epcl") for _ in range(limit + 1)]
    try:
        runs = [s.start(built, [], 2000) for s in sessions[:limit]]
        with pytest.raises(MigsimError, match=f"{limit} runs are in progress already"):
            sessions[-1].start(built, [], 2000)
        with pytest.raises(MigsimError):  # a press in a running tab counts too
            sessions[0].start(built, [], 2000)
        assert sessions[0].current is runs[0]  # the refused press replaced nothing
    finally:
        release.set()
    deadline = time.monotonic() + 10
    while True:
        try:
            sessions[-1].start(built, [], 2)
            break
        except MigsimError:
            assert time.monotonic() < deadline, "no run started once the others ended"
            time.sleep(0.05)


def test_a_run_whose_page_went_away_stops(monkeypatch):
    """A tab closed (or a client gone) mid-run left its run going to the end,
    up to 2,000 replications twice, holding one of the few places for runs."""
    import migsim.runner.runner
    from migsim.app import session as tabs
    from migsim.app.levers import build

    def simulating(*args, progress, **kwargs):
        for _ in range(200):  # ten seconds of batches
            time.sleep(0.05)
            progress(1)
        raise MigsimError("ran to the end")

    monkeypatch.setattr(migsim.runner.runner, "run", simulating)
    monkeypatch.setattr(tabs, "UNWATCHED_SECONDS", 0.5, raising=False)
    base = load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    built = build(base, {"capacity.daily_cap": "3000"}).scenario
    session = tabs.SessionStore().create(base, "epcl")
    watched = session.start(built, [], 200)
    for _ in range(20):  # asked after: it goes on
        time.sleep(0.1)
        assert watched.status()["state"] == "running"
    deadline = time.monotonic() + 5
    while watched.state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)  # nobody asks now
    assert watched.state == "failed"
    assert watched.error.startswith("stopped: nobody asked after this run for 0.5 s")
    assert watched.done < 100


@pytest.mark.parametrize("number", ["abc", "1e5"])
def test_a_download_of_a_run_that_is_no_number_is_not_found(number):
    """A run number that was no whole number answered FastAPI's own 422, a
    shape the page does not read, echoing the input."""
    import asyncio

    from migsim.app.server import create_app

    app = create_app(SCENARIOS, replications=2)

    async def download() -> tuple[int, dict]:
        sid = (await _request(app, "POST", "/api/session"))[1]["session"]
        path = f"/api/session/{sid}/run/{number}/bands.csv"
        return await _request(app, "GET", path)

    status, answer = asyncio.run(download())
    assert status == 404
    assert list(answer) == ["errors"]
    assert answer["errors"][0]["message"].startswith("no such address: /api/session/")


def test_a_report_asked_for_many_times_at_once_is_drawn_once(monkeypatch):
    """Each of several requests at once for a run's report (a double click,
    or a client asking ten times) drew it anew, seconds each, one after the
    other: six at once took 36 s where one took 5."""
    import threading

    from migsim.app import session as tabs
    from migsim.app import view

    drawn: list[int] = []

    def report_html(loaded, built):
        drawn.append(1)
        time.sleep(0.3)
        return "<!DOCTYPE html>report"

    monkeypatch.setattr(view, "report_html", report_html)
    base = load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    session = tabs.SessionStore().create(base, "epcl")
    session.current = tabs.Run(1, base, [], 2, state="done", runs=(None, None))
    answers: list = []
    askers = [
        threading.Thread(target=lambda: answers.append(session.file(1, "report.html")))
        for _ in range(6)
    ]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(10)
    assert len(drawn) == 1
    assert [data for _, _, data in answers] == [b"<!DOCTYPE html>report"] * 6


def test_a_schedule_of_thousands_of_steps_is_refused_at_once():
    """A run request of 20,000 schedule rows, each bad, kept the server busy
    15 s and answered 3 MB of messages; 20,000 good ones were run."""
    from migsim.app import levers
    from migsim.app.levers import FormError, build

    most = getattr(levers, "MAX_STEPS", 400)
    base = load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    rows = [{"from": f"gate_{i}", "daily_cap": "x"} for i in range(20_000)]
    started = time.perf_counter()
    with pytest.raises(FormError) as info:
        build(base, {}, rows)
    assert time.perf_counter() - started < 0.5
    message = f"capacity.schedule: 20,000 steps, more than the {most} the page takes"
    assert info.value.errors == [("", message)]
    # on days of their own: two steps on one day are refused (the earlier
    # would never be in force); days past the horizon's end are allowed
    days = [date(2019, 11, 26) + timedelta(days=i) for i in range(most)]
    good = [{"from": d.isoformat(), "daily_cap": "3000"} for d in days]
    assert len(build(base, {}, good).scenario.capacity.schedule) == most


def test_the_bands_never_wait_for_a_report_being_drawn(monkeypatch):
    """Drawn once each, files must not queue behind each other: the bands of
    a run are at once while its report is drawn (seconds)."""
    import threading

    from migsim.app import session as tabs
    from migsim.app import view

    drawing = threading.Event()

    def report_html(loaded, built):
        drawing.set()
        time.sleep(2)
        return "report"

    monkeypatch.setattr(view, "report_html", report_html)
    monkeypatch.setattr(view, "bands_csv", lambda loaded, built: b"date\n")
    base = load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    session = tabs.SessionStore().create(base, "epcl")
    session.current = tabs.Run(1, base, [], 2, state="done", runs=(None, None))
    report = threading.Thread(target=session.file, args=(1, "report.html"))
    report.start()
    assert drawing.wait(5)
    started = time.perf_counter()
    assert session.file(1, "bands.csv")[2] == b"date\n"
    assert time.perf_counter() - started < 0.5
    report.join(10)


@pytest.mark.parametrize("route", ["run", "upload", "scenario"])
def test_a_client_gone_mid_request_is_no_traceback(route):
    """A client that sent part of a body and went away raised ClientDisconnect
    out of the route: a 500, and a traceback in the server's output."""
    import asyncio

    from migsim.app.server import create_app

    app = create_app(SCENARIOS, replications=2)

    async def gone() -> tuple[int, dict]:
        sid = (await _request(app, "POST", "/api/session"))[1]["session"]
        parts = [
            {"type": "http.request", "body": b'{"values": {', "more_body": True},
            {"type": "http.disconnect"},
        ]
        return await _request(app, "POST", f"/api/session/{sid}/{route}", parts=parts)

    assert asyncio.run(gone()) == (
        400,
        {"errors": [{"field": "", "message": "the request ended before its body did"}]},
    )


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no hang-up signal")
def test_a_closed_terminal_stops_the_explorer_as_ctrl_c_does():
    """SIGHUP (the terminal closed) broke into the server's event loop as a
    KeyboardInterrupt: a traceback and 'Aborted!' instead of a quiet stop."""
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "migsim", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # from a terminal: a suite run under nohup would pass its SIGHUP ignored
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 90  # a loaded machine starts it slowly
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        process.send_signal(signal.SIGHUP)
        output, _ = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "Traceback" not in output and "Aborted!" not in output


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no hang-up signal")
def test_the_explorer_started_with_nohup_outlives_its_terminal():
    """nohup starts a command with SIGHUP ignored: the explorer set its own
    handler for it all the same, and stopped when the terminal closed."""
    import socket
    import subprocess
    import sys
    import urllib.request

    def as_nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    page = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen(
        [sys.executable, "-m", "migsim", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=as_nohup,
    )
    try:
        deadline = time.monotonic() + 90  # a loaded machine starts it slowly
        while True:
            try:
                with urllib.request.urlopen(page, timeout=2):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert process.poll() is None
        with urllib.request.urlopen(page, timeout=5) as answer:
            assert answer.status == 200
    finally:
        process.terminate()
        process.wait(20)


@pytest.mark.parametrize(
    ("name", "shown", "problem"),
    [
        ("x" * 200_000, "200,000", "name: at most 200 bytes (it names a folder)"),
        (
            "[" + "1, " * 50_000 + "1]",
            "150,003",
            "name: Input should be a valid string",
        ),
    ],
)
def test_an_upload_whose_name_is_huge_is_named_in_a_short_line(name, shown, problem):
    """The name of an upload (not yet validated) was the prefix of its own
    error: a 200,000-character name made a message of 200 KB for the page."""
    from migsim.app.session import parse_upload

    text = (SCENARIOS / "nov2019_epcl.yaml").read_text()
    upload = text.replace("name: nov2019_epcl", f"name: {name}", 1)
    with pytest.raises(MigsimError) as info:
        parse_upload("mine.yaml", upload.encode())
    assert str(info.value) == (
        f"upload mine.yaml: {name[:80]!r}... ({shown} characters): {problem}"
    )
