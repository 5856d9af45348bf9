"""Hostile addresses for ``migsim serve``, the planner's explorer: one line,
exit status 2, never uvicorn's own log (issue 17); each test here failed before
its fix."""

from __future__ import annotations

import time

import pytest
from hostile import cli, one_line_exit_2


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
