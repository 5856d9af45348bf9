"""Per-tab state of the explorer: the scenario loaded, the run in flight, its result.

Each browser tab gets its own `Session` (a random id the page holds in memory,
never a cookie shared between tabs), so two tabs running at once never see each
other's results. A session runs one thing at a time: a new run supersedes the
one in flight, which stops at its next finished batch and is never shown. A
run nobody asks after for `UNWATCHED_SECONDS` (its page was closed) stops so too.

A run is two runs with one seed: the scenario as loaded and the built one, so
replication k of both meets the same luck (common random numbers). The loaded
run is kept (`LoadedRuns`) for the next run, of any tab, with the same
scenario, replications and seed: it is the same run whoever made it.

Scenarios come from the bundled folder (chosen by a name from `catalogue`,
never a path from the browser) or from an upload: YAML text, size-limited,
read as strictly as a scenario file, without anchors, validated by `load_scenario` as a
mapping (so ``extends``, which would open a file, is refused).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from migsim.common.errors import MigsimError, ScenarioError
from migsim.common.yamlio import parse_yaml
from migsim.model.scenario import Scenario, load_scenario

__all__ = [
    "MAX_REPLICATIONS",
    "MAX_RUNNING",
    "MAX_UPLOAD_BYTES",
    "Busy",
    "Catalogue",
    "LoadedRuns",
    "Run",
    "Session",
    "SessionStore",
    "parse_upload",
]

#: Largest scenario upload accepted (a scenario file is a few kilobytes).
MAX_UPLOAD_BYTES = 256 * 1024
#: Most replications one run may ask for (a local page, not a batch service).
MAX_REPLICATIONS = 2000
#: Sessions kept (least recently used dropped first, never one that is running).
MAX_SESSIONS = 32
#: Runs simulating at once, all tabs together (one superseded but still finishing
#: its batch counts): each further press of Run is refused until one ends.
MAX_RUNNING = 4
#: Seconds a run goes on with nobody asking after it (the page asks four times a
#: second, a hidden tab at least once a minute): then the tab is taken as closed
#: and the run stops at its next finished batch, freeing its place.
UNWATCHED_SECONDS = 180.0
_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Superseded(Exception):
    """Raised inside a run whose session has started a newer one."""


class Unwatched(Exception):
    """Raised inside a run nobody has asked after for `UNWATCHED_SECONDS`."""


class Busy(MigsimError):
    """A run refused: `MAX_RUNNING` runs are simulating already."""


# --------------------------------------------------------------------------- inputs
class Catalogue:
    """The bundled scenarios, by the name the page shows (their relative path)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._paths: dict[str, Path] = {}
        self.entries: list[dict[str, str]] = []
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*.yaml")):
            try:
                scenario = load_scenario(path)
            except MigsimError:
                continue  # not a scenario (a question file)
            key = path.relative_to(self.root).as_posix()
            self._paths[key] = path
            about = " ".join(scenario.description.split())
            self.entries.append({"key": key, "name": scenario.name, "about": about})

    def load(self, key: str) -> Scenario:
        """A bundled scenario by its catalogue name; any other name is refused."""
        path = self._paths.get(key)
        if path is None:
            raise ScenarioError(f"scenario: no bundled scenario named {key!r}")
        return load_scenario(path)

    def default(self, preferred: str) -> str | None:
        keys = [e["key"] for e in self.entries]
        return preferred if preferred in keys else (keys[0] if keys else None)


def _has_alias(text: str) -> bool:
    """Whether YAML text uses anchors/aliases (refused: they can expand a small
    upload into a huge document). Asked of text `parse_yaml` has read, with the
    C parser where there is one: the pure-Python one takes time growing with the
    square of the nesting (an upload of 100,000 ``[`` held the server minutes)."""
    for event in yaml.parse(text, Loader=_PARSER):
        if isinstance(event, yaml.AliasEvent):
            return True
    return False


#: Characters of an uploaded file's name shown in a message or a label.
NAME_SHOWN = 60


def upload_name(filename: str) -> str:
    """An uploaded file's name as the page shows it: its last part, cut to
    `NAME_SHOWN` characters (a browser sends what the user's disk holds)."""
    name = Path(filename or "scenario.yaml").name or "scenario.yaml"
    if len(name) <= NAME_SHOWN:
        return name
    return f"{name[: NAME_SHOWN - 20]}...{name[-17:]}"


def parse_upload(filename: str, data: bytes) -> Scenario:
    """A scenario from uploaded bytes; every problem is a `ScenarioError` that
    names the upload (and the field, from the loader)."""
    shown = f"upload {upload_name(filename)}"
    if len(data) > MAX_UPLOAD_BYTES:
        raise ScenarioError(
            f"{shown}: {len(data):,} bytes, more than the {MAX_UPLOAD_BYTES:,} allowed"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{shown}: not UTF-8 text") from None
    try:
        content = parse_yaml(text)  # as strictly as a scenario file, nesting bounded
        if _has_alias(text):
            raise ScenarioError(f"{shown}: YAML anchors and aliases are not accepted")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ScenarioError(f"{shown}: YAML error{where}: {problem}") from None
    if not isinstance(content, dict):
        raise ScenarioError(f"{shown}: a scenario must be a mapping of fields")
    if "extends" in content:
        raise ScenarioError(
            f"{shown}: extends: an upload cannot extend another file; upload the "
            "resolved scenario (scenario.yaml of a run, or this page's download)"
        )
    try:
        return load_scenario(content)
    except ScenarioError as exc:
        raise ScenarioError(f"{shown}: {exc}") from None


# --------------------------------------------------------------------------- runs
class LoadedRuns:
    """Runs of scenarios as loaded, shared by every tab, the latest few kept.

    A run is a pure function of the scenario (its hash), the replications and
    the seed, so a tab that finds one here gets exactly what it would compute:
    sharing it mixes nothing, and the second tab on a scenario answers sooner.
    """

    def __init__(self, limit: int = 4):
        self.limit = limit
        self._runs: OrderedDict[tuple[str, int, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> Any:
        with self._lock:
            found = self._runs.get(key)
            if found is not None:
                self._runs.move_to_end(key)
            return found

    def put(self, key: tuple[str, int, int], results: Any) -> None:
        with self._lock:
            self._runs[key] = results
            while len(self._runs) > self.limit:
                self._runs.popitem(last=False)


@dataclass
class Run:
    """One press of Run: its progress, then its result and files."""

    number: int
    built: Scenario
    changes: list[str]
    replications: int
    state: str = "running"  # running, done, failed, superseded
    stage: str = "starting"
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.perf_counter)
    asked: float = field(default_factory=time.monotonic)  # its status, last asked
    seconds: float | None = None
    error: str | None = None
    payload: dict[str, Any] | None = None
    chart: bytes | None = None
    runs: tuple[Any, Any] | None = None  # (loaded, built) Results
    files: dict[str, bytes] = field(default_factory=dict)
    # each file drawn once: a second request for it (a double click) waits,
    # and only for that file (a report takes seconds, the bands do not)
    drawing: dict[str, threading.Lock] = field(default_factory=dict)

    def unwatched(self) -> bool:
        return time.monotonic() - self.asked > UNWATCHED_SECONDS

    def status(self) -> dict[str, Any]:
        """What the page shows of the run; asking keeps the run going."""
        self.asked = time.monotonic()
        out: dict[str, Any] = {
            "run": self.number,
            "state": self.state,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,  # both runs' replications when the loaded one runs too
            "replications": self.replications,
            "elapsed": round(time.perf_counter() - self.started, 2),
        }
        if self.seconds is not None:
            out["elapsed"] = self.seconds
        if self.state == "done":
            out["seconds"] = self.seconds
            out["result"] = {**(self.payload or {}), "changes": self.changes}
        if self.state == "failed":
            out["error"] = self.error
        return out


class Session:
    """One browser tab: its scenario as loaded and its latest run."""

    def __init__(
        self,
        sid: str,
        base: Scenario,
        source: str,
        loaded: LoadedRuns | None = None,
        slots: threading.BoundedSemaphore | None = None,
    ):
        self.id = sid
        self.base = base
        self.source = source  # where the scenario came from, for the YAML header
        self.lock = threading.Lock()
        self.current: Run | None = None
        self.counter = 0
        self.touched = time.monotonic()
        self.loaded_runs = loaded if loaded is not None else LoadedRuns()
        # shared by every tab of a store: runs simulating at once
        self.slots = slots or threading.BoundedSemaphore(MAX_RUNNING)

    def running(self) -> bool:
        return self.current is not None and self.current.state == "running"

    def use(self, base: Scenario, source: str) -> None:
        """Load another scenario; a run in flight is superseded."""
        with self.lock:
            self.base, self.source = base, source
            self.counter += 1
            self.current = None

    def start(
        self, built: Scenario, changes: list[str], replications: int, workers: int = 1
    ) -> Run:
        """Start a run in a thread; the run it replaces stops at its next batch.

        Raises
        ------
        Busy
            `MAX_RUNNING` runs are simulating already (the one in flight goes on).
        """
        if not self.slots.acquire(blocking=False):
            raise Busy(
                f"{MAX_RUNNING} runs are in progress already (this page's and other "
                "tabs'): press Run again when one has finished"
            )
        with self.lock:
            self.counter += 1
            run = Run(self.counter, built, changes, replications)
            self.current = run
            base = self.base
        thread = threading.Thread(
            target=self._work,
            args=(run, base, workers),
            name=f"migsim-explorer-{self.id[:6]}-{run.number}",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException:
            self.slots.release()
            raise
        return run

    def _is_current(self, run: Run) -> bool:
        return self.current is run

    def _loaded(self, base: Scenario, run: Run, workers: int, tick) -> Any:
        from migsim.evidence.forecast import annotate
        from migsim.runner.runner import run as simulate

        key = (base.sha256, run.replications, base.seed)
        cached = self.loaded_runs.get(key)
        if cached is not None:
            return cached
        run.stage = f"running {base.name} as loaded"
        results = simulate(
            base, run.replications, seed=base.seed, workers=workers, progress=tick
        )
        annotate(results)
        self.loaded_runs.put(key, results)
        return results

    def _work(self, run: Run, base: Scenario, workers: int) -> None:
        try:
            self._simulate(run, base, workers)
        finally:
            self.slots.release()

    def _simulate(self, run: Run, base: Scenario, workers: int) -> None:
        from migsim.app import view
        from migsim.evidence.forecast import annotate
        from migsim.experiments.compare import compare_runs
        from migsim.runner.runner import run as simulate

        def tick(count: int) -> None:
            if not self._is_current(run):
                raise Superseded
            if run.unwatched():
                raise Unwatched
            run.done += count

        try:
            key = (base.sha256, run.replications, base.seed)
            fresh = self.loaded_runs.get(key) is None
            run.total = run.replications * (2 if fresh else 1)
            loaded = self._loaded(base, run, workers, tick)
            run.stage = f"running {run.built.name}"
            built = simulate(
                run.built,
                run.replications,
                seed=base.seed,  # the loaded run's seed: common random numbers
                workers=workers,
                progress=tick,
            )
            annotate(built)
            run.stage = "comparing and drawing"
            comparison = compare_runs([loaded, built])
            payload = view.result_payload(loaded, built, comparison)
            chart = view.chart_png(loaded, built)
        except Unwatched:
            self._finish(
                run,
                error=f"stopped: nobody asked after this run for {UNWATCHED_SECONDS:g}"
                " s (was its page closed?); press Run to run it again",
            )
            return
        except Superseded:
            run.state = run.stage = "superseded"
            return
        except MigsimError as exc:
            self._finish(run, error=str(exc))
            return
        except Exception as exc:  # keep serving; the page shows what went wrong
            self._finish(run, error=f"internal error: {type(exc).__name__}: {exc}")
            raise
        with self.lock:
            if not self._is_current(run):
                run.state = run.stage = "superseded"
                return
            run.payload, run.chart, run.runs = payload, chart, (loaded, built)
            run.seconds = round(time.perf_counter() - run.started, 2)
            run.stage, run.state = "done", "done"

    def _finish(self, run: Run, *, error: str) -> None:
        with self.lock:
            if self._is_current(run):
                run.error, run.state, run.stage = error, "failed", "failed"

    def file(self, number: int, kind: str) -> tuple[str, str, bytes] | None:
        """A download of a finished run: (filename, media type, bytes), or None
        when that run is not this session's latest finished one."""
        from migsim.app import view

        with self.lock:
            run = self.current
        if run is None or run.number != number or run.state != "done" or not run.runs:
            return None
        loaded, built = run.runs
        name = run.built.name
        with self.lock:
            drawing = run.drawing.setdefault(kind, threading.Lock())
        with drawing:  # a second request for a file waits for the first's
            if kind not in run.files:
                if kind == "bands.csv":
                    data = view.bands_csv(loaded, built)
                elif kind == "bands.xlsx":
                    payload = run.payload or {}
                    data = view.bands_xlsx(loaded, built, payload, run.changes)
                elif kind == "scenario.yaml":
                    data = view.scenario_yaml(built, self.source, run.changes).encode()
                elif kind == "report.html":
                    data = view.report_html(loaded, built).encode("utf-8")
                elif kind == "chart.png":
                    data = run.chart or b""
                else:
                    return None
                run.files[kind] = data
        media = {
            "bands.csv": "text/csv",
            "bands.xlsx": "application/vnd.openxmlformats-officedocument"
            ".spreadsheetml.sheet",
            "scenario.yaml": "application/x-yaml",
            "report.html": "text/html",
            "chart.png": "image/png",
        }[kind]
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)  # an uploaded name, in a header
        filename = f"{safe}.yaml" if kind == "scenario.yaml" else f"{safe}_{kind}"
        return filename, media, run.files[kind]


class SessionStore:
    """The live sessions by id; the least recently used idle one goes first."""

    def __init__(self, limit: int = MAX_SESSIONS):
        self.limit = limit
        self.loaded_runs = LoadedRuns()
        self.slots = threading.BoundedSemaphore(MAX_RUNNING)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, base: Scenario, source: str) -> Session:
        session = Session(
            secrets.token_urlsafe(16), base, source, self.loaded_runs, self.slots
        )
        with self._lock:
            self._sessions[session.id] = session
            idle = [s for s in self._sessions.values() if not s.running()]
            while len(self._sessions) > self.limit and idle:
                del self._sessions[idle.pop(0).id]
        return session

    def get(self, sid: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None:
                self._sessions.move_to_end(sid)
                session.touched = time.monotonic()
        return session
