"""The explorer's web application (FastAPI) and `serve`, which runs it (uvicorn).

Routes, all under one page:

- ``GET /`` the page; ``GET /static/...`` its script and styles (package data).
- ``POST /api/session`` a new tab's session: its id, the bundled scenarios and
  the controls of the default one.
- ``POST /api/session/{id}/scenario`` load a bundled scenario by catalogue name;
  ``POST /api/session/{id}/upload`` load an uploaded one (the request body).
- ``POST /api/session/{id}/run`` build the scenario from the controls and start
  the run; ``GET /api/session/{id}/status`` its progress, then its result.
- ``GET /api/session/{id}/run/{n}/{file}`` the chart and the downloads of run n.

Bad input answers 400 with ``{"errors": [{"field", "message"}]}``, ``field``
being the dotted path of the control (``""`` for none): the page shows each
message beside its control, and the server goes on serving. Nothing is fetched
from or sent to anywhere but the browser that asked; bound to a loopback
address, requests for any other host name are refused (DNS rebinding).
Reading a scenario (an upload of 256 KB takes a second or so) and building a
run happen in a worker thread, never on the event loop, so meanwhile every
other tab's requests are answered.
"""

from __future__ import annotations

import io
import ipaddress
import json
import signal
import socket
import threading
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect

from migsim.app.levers import FormError, build, page_model
from migsim.app.session import (
    MAX_REPLICATIONS,
    MAX_UPLOAD_BYTES,
    Busy,
    Catalogue,
    Session,
    SessionStore,
    parse_upload,
    upload_name,
)
from migsim.common.errors import MigsimError
from migsim.model.scenario import Scenario

__all__ = [
    "DEFAULT_REPLICATIONS",
    "DEFAULT_SCENARIO",
    "create_app",
    "serve",
    "suggested_replications",
]

#: Replications per run unless the page asks for more: the loaded and the built
#: run together answer in a few seconds on a 2-core machine.
DEFAULT_REPLICATIONS = 40
#: The scenario a new tab starts with (a cautious ramp with rules to tune).
DEFAULT_SCENARIO = "nov2019_cautious_ramp.yaml"
_STATIC = {
    "explorer.js": "text/javascript; charset=utf-8",
    "explorer.css": "text/css; charset=utf-8",
}
_DOWNLOADS = ("bands.csv", "bands.xlsx", "scenario.yaml", "report.html")
_LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1", "[::1]"]
#: Largest JSON request (the page's run request is a few kilobytes).
MAX_REQUEST_BYTES = 1024 * 1024


def _static(name: str) -> bytes:
    return resources.files("migsim.app").joinpath("static", name).read_bytes()


def _errors(*pairs: tuple[str, str], status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"field": f, "message": m} for f, m in pairs]}, status_code=status
    )


def _expired() -> JSONResponse:
    return _errors(("", "this page's session has expired: reload the page"), status=404)


#: Cohort-days of a scenario (horizon days x cohorts) that the default
#: replications are sized for; the engine's cost grows about in proportion.
_SIZED_FOR = 1500
_FEWEST = 10


def suggested_replications(scenario: Scenario, default: int) -> int:
    """The page's replications for a scenario: the default, fewer for a scenario
    much larger than the bundled November 2019 ones (the full fleet runs five
    years of eight cohorts), so a first run still answers in seconds."""
    size = scenario.horizon_days * len(scenario.cohorts)
    scaled = round(default * _SIZED_FOR / size)
    return max(min(default, _FEWEST), min(default, scaled))


def _model(session: Session, replications: int) -> dict[str, Any]:
    return {
        "session": session.id,
        "source": session.source,
        "replications": suggested_replications(session.base, replications),
        "max_replications": MAX_REPLICATIONS,
        "model": page_model(session.base),
    }


def _replications(value: Any) -> int:
    text = "" if value is None else str(value).strip()
    if not text:
        raise FormError([("replications", "replications: empty: enter a number")])
    try:
        count = int(text)
    except ValueError:
        raise FormError(
            [("replications", f"replications: {text!r} is not a whole number")]
        ) from None
    if not 1 <= count <= MAX_REPLICATIONS:
        raise FormError(
            [
                (
                    "replications",
                    f"replications: {count} is outside 1..{MAX_REPLICATIONS}",
                )
            ]
        )
    return count


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit`` bytes (read no further)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict[str, Any]:
    body = await _body(request, MAX_REQUEST_BYTES)
    if body is None:  # was read as an empty request: "replications: empty"
        limit = f"{MAX_REQUEST_BYTES:,}"
        raise FormError([("", f"the request is larger than the {limit} bytes allowed")])
    return json_object(body)


def json_object(body: bytes | None) -> dict[str, Any]:
    """A request body as a JSON object; anything else is a `FormError`."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # nested too deep: was a 500
        data = None
    if not isinstance(data, dict):
        raise FormError([("", "the request is not a JSON object")])
    return data


def create_app(
    scenarios_dir: str | Path,
    *,
    replications: int = DEFAULT_REPLICATIONS,
    workers: int = 1,
    allowed_hosts: list[str] | None = None,
) -> FastAPI:
    """The explorer application.

    Parameters
    ----------
    scenarios_dir
        The bundled scenarios folder (as ``migsim scenarios`` lists it).
    replications
        The page's default replications per run.
    workers
        Processes per run (results do not depend on it).
    allowed_hosts
        Host names the server answers to (None: any).
    """
    catalogue = Catalogue(Path(scenarios_dir))
    store = SessionStore()
    app = FastAPI(title="migsim explorer", docs_url=None, redoc_url=None)
    if allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.exception_handler(FormError)
    async def form_error(_request: Request, exc: FormError) -> JSONResponse:
        return _errors(*exc.errors)

    @app.exception_handler(ClientDisconnect)
    async def gone(_request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # a client gone mid-request was a 500 and a traceback in the log
        return _errors(("", "the request ended before its body did"))

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, _exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422 was another shape, echoing the input
        return _errors(("", f"no such address: {request.url.path[:200]}"), status=404)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(_static("explorer.html"))

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in _STATIC:
            return Response(status_code=404)
        return Response(_static(name), media_type=_STATIC[name])

    @app.post("/api/session")
    async def new_session() -> JSONResponse:
        key = catalogue.default(DEFAULT_SCENARIO)
        if key is None:
            return _errors(("scenario", f"no bundled scenarios in {scenarios_dir}"))
        session = store.create(await run_in_threadpool(catalogue.load, key), key)
        return JSONResponse(
            {
                **_model(session, replications),
                "catalogue": catalogue.entries,
                "scenario": key,
            }
        )

    @app.post("/api/session/{sid}/scenario")
    async def choose(sid: str, request: Request) -> JSONResponse:
        session = store.get(sid)
        if session is None:
            return _expired()
        key = str((await _json(request)).get("key", ""))
        try:
            base = await run_in_threadpool(catalogue.load, key)
        except MigsimError as exc:
            return _errors(("scenario", str(exc)))
        session.use(base, key)
        return JSONResponse(_model(session, replications))

    @app.post("/api/session/{sid}/upload")
    async def upload(sid: str, request: Request) -> JSONResponse:
        session = store.get(sid)
        if session is None:
            return _expired()
        filename = unquote(request.headers.get("x-filename", "scenario.yaml"))
        data = await _body(request, MAX_UPLOAD_BYTES)
        if data is None:
            return _errors(
                (
                    "upload",
                    f"upload: larger than the {MAX_UPLOAD_BYTES:,} bytes allowed",
                )
            )
        try:
            base = await run_in_threadpool(parse_upload, filename, data)
        except MigsimError as exc:
            return _errors(("upload", str(exc)))
        session.use(base, f"an upload ({upload_name(filename)})")
        return JSONResponse(_model(session, replications))

    @app.post("/api/session/{sid}/run")
    async def start(sid: str, request: Request) -> JSONResponse:
        session = store.get(sid)
        if session is None:
            return _expired()
        form = await _json(request)
        values = form.get("values") or {}
        schedule = form.get("schedule")
        if (
            not isinstance(values, dict)
            or not isinstance(schedule, list | None)
            or not all(isinstance(row, dict) for row in schedule or [])
        ):  # a schedule row that is not an object was a 500 (AttributeError)
            raise FormError([("", "the request's values are malformed")])
        errors = []
        try:
            count = _replications(form.get("replications"))
        except FormError as exc:
            errors += exc.errors
        try:
            built = await run_in_threadpool(build, session.base, values, schedule)
        except FormError as exc:
            errors += exc.errors
        if errors:  # every problem at once, each beside its control
            raise FormError(errors)
        try:
            run = session.start(built.scenario, built.changes, count, workers)
        except Busy as exc:
            return _errors(("", str(exc)), status=503)
        return JSONResponse({"run": run.number}, status_code=202)

    # A sync route: FastAPI runs it in a worker thread, so drawing a report
    # (seconds) never holds up another tab's requests.

    @app.get("/api/session/{sid}/status")
    async def status(sid: str) -> JSONResponse:
        session = store.get(sid)
        if session is None:
            return _expired()
        run = session.current
        return JSONResponse(run.status() if run else {"state": "idle"})

    @app.get("/api/session/{sid}/run/{number}/{kind}")
    def download(sid: str, number: int, kind: str) -> Response:
        session = store.get(sid)
        if session is None:
            return _expired()
        if kind not in (*_DOWNLOADS, "chart.png"):
            return Response(status_code=404)
        found = session.file(number, kind)
        if found is None:
            return _errors(
                ("", f"run {number} is not this page's latest result"), status=404
            )
        filename, media, data = found
        how = "inline" if kind == "chart.png" else "attachment"
        return Response(
            data,
            media_type=media,
            headers={
                "Content-Disposition": f'{how}; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )

    return app


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warm_up() -> None:
    """Import what a run needs (pandas, SciPy, the engine, matplotlib) before the
    first request, so the first press of Run costs what the others do, and load
    the engine's compiled kernels: with them loaded a run's batches of 12 and
    more run as blocks (`migsim.sim.block.worth_a_block`), the same numbers
    faster (40 replications of `nov2019_epcl`: 1.03 s, 0.41 s with them)."""
    import pandas as pd

    import migsim.app.view  # noqa: F401
    import migsim.experiments.compare  # noqa: F401
    import migsim.runner.runner  # noqa: F401
    from migsim.output import plots
    from migsim.sim.lane_kernel import kernels

    kernels()  # None where numba cannot load: the numpy passes, the same numbers

    dates = pd.date_range("2020-01-01", periods=3)
    bands = pd.DataFrame({"date": dates, "p10": [2, 1, 0], "p50": [2, 1, 0]})
    bands["p90"] = bands["p50"]
    plots.backlog_fan_chart(bands, "warm-up").savefig(io.BytesIO(), format="png")


def serve(
    scenarios_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    replications: int = DEFAULT_REPLICATIONS,
    workers: int = 1,
    announce=print,
) -> None:
    """Run the explorer until interrupted (Ctrl+C)."""
    import uvicorn

    listening = listen_on(host, port)  # before anything says it is running
    allowed = _LOOPBACK_NAMES if _loopback(host) else None
    warm_up()
    app = create_app(
        scenarios_dir,
        replications=replications,
        workers=workers,
        allowed_hosts=allowed,
    )
    shown = f"[{host}]" if ":" in host else host
    announce(f"migsim explorer on http://{shown}:{port}/ (Ctrl+C to stop)")
    if allowed is None:
        announce(
            f"warning: bound to {host}, not a loopback address: anyone who can "
            "reach this machine can use the page"
        )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    if (
        hasattr(signal, "SIGHUP")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN  # not nohup's
    ):
        # a closed terminal stops it as Ctrl+C does (uvicorn handles SIGINT
        # and SIGTERM only; the command's own handler broke into its loop)
        signal.signal(signal.SIGHUP, server.handle_exit)
    server.run(sockets=[listening])


def listen_on(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, as uvicorn binds one.

    Raises
    ------
    MigsimError
        The address cannot be used (a name that does not resolve, a port in
        use or reserved): uvicorn printed its own error after the explorer had
        announced its address, and exited 3.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise MigsimError(
            f"--host {host} --port {port}: cannot listen there: {reason}"
        ) from None
    sock.set_inheritable(True)
    return sock
