"""Tiny scenario builders shared by the tests.

Scenarios are built as plain dicts (the YAML shape) and validated with
``migsim.load_scenario(dict)``, so every test also exercises the schema. The
builders fill only what a test does not care about; a test states what matters.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import migsim
from migsim.common.errors import MigsimError
from migsim.common.store import held
from migsim.model.scenario import OUTCOMES, Scenario, load_scenario
from migsim.sim.engine import run_replication
from migsim.sim.records import RunLog

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
BASELINE = SCENARIOS / "nov2019_epcl.yaml"
VALIDATION = SCENARIOS / "validation" / "itron_dormant_2019.yaml"


def pytest_configure(config: pytest.Config) -> None:
    """Once, before the test workers start (not in each): compile migsim's
    modules, and its numba kernels into their cache, as `.ci/run` does.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (this workplace sets it), no
    process keeps what it compiles: each worker and each `migsim` a test
    starts as a subprocess compiled the whole package again, and on a fresh
    clone each worker compiled the kernels too (the README's test command
    from a fresh clone: 331 s, against 262 s once both were done)."""
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: done already
        return
    import compileall

    compileall.compile_dir(Path(migsim.__file__).parent, quiet=2)
    from migsim.sim.lane_kernel import warm_up

    try:
        warm_up()
    except RuntimeError:  # the kernels' own tests say why; the rest run on numpy
        pass


#: A Monday: day 0 of most test scenarios.
MONDAY = date(2024, 1, 1)
ALL_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


# ------------------------------------------------------------------------------- delays
def fixed(days: int) -> dict[str, Any]:
    return {"dist": "fixed", "days": days}


def uniform(low: int, high: int) -> dict[str, Any]:
    return {"dist": "uniform", "low": low, "high": high}


def triangular(low: float, mode: float, high: float) -> dict[str, Any]:
    return {"dist": "triangular", "low": low, "mode": mode, "high": high}


def lognormal(median: float, sigma: float) -> dict[str, Any]:
    return {"dist": "lognormal", "median": median, "sigma": sigma}


# -------------------------------------------------------------------------------- parts
def outcomes(**rates: float) -> dict[str, float]:
    """All five outcome rates; those not given are 0 (default: all success)."""
    unknown = set(rates) - set(OUTCOMES)
    assert not unknown, unknown
    if not rates:
        rates = {"success": 1.0}
    return {name: float(rates.get(name, 0.0)) for name in OUTCOMES}


def cohort(
    name: str = "c",
    installations: int = 1000,
    *,
    mode: str = "dormant",
    rates: dict[str, float] | None = None,
    max_attempts: int = 5,
    eligible_from: date | None = None,
    stall: dict[str, Any] | None = None,
    rollback: dict[str, Any] | None = None,
    fix_forward: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One cohort as a dict; ``rates`` from `outcomes` (default all success).

    Sections needed by a non-zero rate get a default (stall: fixed 2 days, then
    all succeed; rollback: retry after 3 days; fix forward: restored after 2).
    """
    rates = rates or outcomes()
    data: dict[str, Any] = {
        "name": name,
        "installations": installations,
        "mode": mode,
        "max_attempts": max_attempts,
        "outcomes": rates,
    }
    if eligible_from is not None:
        data["eligible_from"] = eligible_from.isoformat()
    if stall is None and rates["stall"] > 0:
        stall = {"resolves_after_days": fixed(2), "then_success": 1.0}
    if rollback is None and (
        rates["rollback"] > 0 or (stall is not None and stall["then_success"] < 1)
    ):
        rollback = {"retry_after_days": fixed(3)}
    if fix_forward is None and rates["fix_forward"] > 0:
        fix_forward = {"restored_after_days": fixed(2)}
    for key, section in (
        ("stall", stall),
        ("rollback", rollback),
        ("fix_forward", fix_forward),
    ):
        if section is not None:
            data[key] = section
    return data


def scenario(
    *cohorts: dict[str, Any],
    cap: int = 1000,
    allocation: str = "pro_rata",
    start_date: date = MONDAY,
    horizon_days: int = 60,
    working_days: list[str] | None = None,
    closures: list[date] = (),
    clearance_share: float | None = None,
    seed: int = 0,
    name: str = "tiny",
    **extra: Any,
) -> dict[str, Any]:
    """A whole scenario dict (default: one all-success cohort of 1,000)."""
    data: dict[str, Any] = {
        "name": name,
        "start_date": start_date.isoformat(),
        "horizon_days": horizon_days,
        "seed": seed,
        "calendar": {
            "working_days": list(working_days or ALL_DAYS[:5]),
            "closures": [d.isoformat() for d in closures],
        },
        "capacity": {"daily_cap": cap, "allocation": allocation},
        "cohorts": list(cohorts) or [cohort()],
    }
    if clearance_share is not None:
        data["clearance_share"] = clearance_share
    data.update(extra)
    return data


def load(data: dict[str, Any]) -> Scenario:
    return migsim.load_scenario(data)


def simulate(
    data: dict[str, Any] | Scenario, seed: int = 0, replication: int = 0
) -> RunLog:
    """One replication straight from the engine."""
    sc = data if isinstance(data, Scenario) else load(data)
    return run_replication(sc, seed, replication)


def column(log: RunLog, name: str, index: int = 0) -> np.ndarray:
    """One cohort's daily series from a run log."""
    return log.cohort_columns[name][:, index]


def day(offset: int, start: date = MONDAY) -> date:
    return start + timedelta(days=offset)


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def rich_scenario() -> dict[str, Any]:
    """Two small cohorts using every section: closures, eligibility, release_on."""
    return scenario(
        cohort(
            "active_a",
            400,
            mode="active",
            rates=outcomes(
                success=0.8, stall=0.1, rollback=0.05, fix_forward=0.03, dumb=0.02
            ),
            max_attempts=3,
            stall={
                "resolves_after_days": uniform(1, 4),
                "then_success": 0.7,
                "release_on": day(9).isoformat(),
            },
            rollback={"retry_after_days": triangular(1, 2, 5)},
            fix_forward={"restored_after_days": lognormal(2, 0.5)},
        ),
        cohort(
            "dormant_b",
            300,
            rates=outcomes(success=0.85, stall=0.1, rollback=0.05),
            eligible_from=day(3),
            stall={"resolves_after_days": fixed(2), "then_success": 0.5},
            rollback={"retry_after_days": uniform(2, 4)},
        ),
        cap=90,
        horizon_days=40,
        closures=[day(2), day(15)],
        name="rich",
        sources={"capacity.daily_cap": "assumption: small enough to bind"},
    )


# ----------------------------------------------------------------- forecasts and report
# A two-cohort scenario (active + dormant, with sources and meters) for the forecast,
# comparison and report tests.
_TINY: dict[str, Any] = {
    "name": "tiny",
    "description": "A tiny two-cohort scenario for tests.",
    "start_date": "2020-01-06",  # a Monday
    "horizon_days": 120,
    "seed": 0,
    "calendar": {"working_days": ["Mon", "Tue", "Wed", "Thu", "Fri"]},
    "capacity": {"daily_cap": 100, "allocation": "pro_rata"},
    "meters_per_installation": 1.6,
    "cohorts": [
        {
            "name": "active_a",
            "installations": 600,
            "mode": "active",
            "outcomes": {
                "success": 0.85,
                "stall": 0.1,
                "rollback": 0.03,
                "fix_forward": 0.01,
                "dumb": 0.01,
            },
            "stall": {
                "resolves_after_days": {"dist": "uniform", "low": 2, "high": 10},
                "then_success": 0.7,
            },
            "rollback": {"retry_after_days": {"dist": "uniform", "low": 3, "high": 8}},
            "fix_forward": {"restored_after_days": {"dist": "fixed", "days": 2}},
        },
        {
            "name": "dormant_b",
            "installations": 900,
            "mode": "dormant",
            "outcomes": {
                "success": 0.9,
                "stall": 0.06,
                "rollback": 0.03,
                "fix_forward": 0.005,
                "dumb": 0.005,
            },
            "stall": {
                "resolves_after_days": {"dist": "uniform", "low": 2, "high": 10},
                "then_success": 0.7,
            },
            "rollback": {"retry_after_days": {"dist": "uniform", "low": 3, "high": 8}},
            "fix_forward": {"restored_after_days": {"dist": "fixed", "days": 2}},
        },
    ],
    "sources": {
        "capacity.daily_cap": "assumption: a round number for tests",
        "cohorts.active_a.outcomes": "seed paper (test reading)",
    },
}


def tiny_dict(**changes: Any) -> dict[str, Any]:
    """The tiny scenario as a dict, with top-level fields replaced."""
    data = copy.deepcopy(_TINY)
    data.update(changes)
    return data


def tiny(overrides: dict[str, Any] | None = None, **changes: Any) -> Scenario:
    """The tiny scenario, validated, with top-level changes and dotted overrides."""
    return load_scenario(tiny_dict(**changes), overrides)


@pytest.fixture
def tiny_scenario() -> Scenario:
    return tiny()


@pytest.fixture
def tiny_yaml(tmp_path):
    """Write scenario YAML files into tmp_path; returns a writer."""

    def write(
        name: str = "tiny", overrides: dict[str, Any] | None = None, **changes: Any
    ):
        sc = tiny(overrides, name=name, **changes)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(sc.to_dict(), sort_keys=False))
        return path

    return write


@contextmanager
def local_cluster(scratch: Path, **options: Any) -> Iterator[Any]:
    """A Dask ``LocalCluster`` of threads (``options``: its workers, protocol)
    whose scratch space is ``scratch``, a test's own folder: Dask's default is
    the system's temp folder, where ``dask-scratch-space`` was left behind.
    Skips the test where Dask's ``distributed`` is not installed."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with (
        dask.config.set({"temporary-directory": str(scratch)}),
        distributed.LocalCluster(
            processes=False, dashboard_address=None, **options
        ) as cluster,
    ):
        yield cluster


class _Holder:
    """A forked process holding a store (`held_elsewhere`)."""

    def __init__(self, root: Path, what: str, worker: bool) -> None:
        ours, theirs = multiprocessing.Pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                ours.close()
                self._hold(root, what, theirs, worker)
            finally:
                os._exit(0)
        theirs.close()
        self._conn, self.ended = ours, False
        state, self.worker = ours.recv()
        assert state == "held", self.worker

    @staticmethod
    def _hold(root: Path, what: str, conn: Any, worker: bool) -> None:
        try:
            with held(root, what):
                pid = os.fork() if worker else None
                if pid == 0:  # the worker: runs on until killed
                    try:
                        time.sleep(60)
                    finally:
                        os._exit(0)
                conn.send(("held", pid))
                conn.recv()
        except MigsimError as exc:
            conn.send(("refused", str(exc)))
        except EOFError:  # the test ended first
            pass

    def kill(self) -> None:
        """SIGKILL it (its lock file stays behind) and wait until it is gone."""
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.ended = True

    def end(self) -> None:
        if not self.ended:
            self._conn.send("end")  # it lets the store go and exits
            os.waitpid(self.pid, 0)
            self.ended = True
        if self.worker is not None:
            try:
                os.kill(self.worker, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def held_elsewhere(
    root: Path, what: str = "sweep", worker: bool = False
) -> Iterator[_Holder]:
    """The store in ``root`` held (`migsim.common.store.held`) by another
    process until the block ends: a forked child that takes it and waits on a
    pipe (its ``pid``; ``kill()`` it to see its lock end with it). With
    ``worker``, it forks a worker of its own while holding the store (as a
    command forks its pool): its ``worker``, killed when the block ends."""
    holder = _Holder(root, what, worker)
    try:
        yield holder
    finally:
        holder.end()
