"""Hostile input to ``migsim serve``, the planner's explorer: an address it
cannot use is one line, exit status 2, never uvicorn's own log (issue 17); a
lever value, an upload or a request no scenario could hold is an error beside
its control, never a 500. Each test here failed before its fix."""

from __future__ import annotations

import signal
import time

import pytest
from conftest import SCENARIOS
from hostile import cli, one_line_exit_2

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
    )
    try:
        deadline = time.monotonic() + 30
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
