"""Sweeps: one scenario run at many parameter points, kept in a resumable store.

A sweep varies scenario fields, addressed by dotted path like ``--set``:

- a *grid* gives each field a list of values and runs the full factorial (the
  first field varies slowest);
- a *Latin hypercube* (``lhs``) of K points splits each field's range into K equal
  strata and takes one uniform draw in each, strata matched at random across
  fields; fields whose scenario value is an integer are rounded. Its draws come
  from their own stream of the sweep seed, never from a replication's.

Every point runs the same replications with the same seed, so replication k of
every point draws from the same streams (common random numbers): differences
between points are the parameters', not the noise's.

The store is a directory: ``manifest.json`` (definition, seed, migsim version,
points with status, timings and the ``migsim_source_sha256`` of the code that
computed each: a resumed sweep keeps points of other code, saying so), one
``points/<index>.parquet`` per finished point (written atomically, so a point is
done exactly when its file exists) and, when
all are finished, ``sweep.parquet``: one row per point, the swept fields as
columns named by dotted path, the figures as ``name_statistic`` columns, then
``status`` (``done`` or ``invalid``) and ``error``. No wall-clock column appears
in a table, so a sweep killed and rerun ends with exactly the files of one that
never stopped. Rerunning against a store of another definition is refused unless
``fresh`` (start over); the store is `migsim.common.store.Store`, shared with
decide. A point whose replication fails is ``failed`` as a whole (its
statistics would not be of every replication).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migsim import __version__
from migsim.common.errors import MigsimError, ScenarioError
from migsim.common.files import atomic_write
from migsim.common.source import source_sha256
from migsim.common.stats import STATISTICS, json_value, statistics
from migsim.common.store import SOURCE, Store, held
from migsim.common.yamlio import parse_value
from migsim.common.yamlio import shown as _shown
from migsim.experiments.study import SEED_IS_THE_RUNS
from migsim.model.limits import MAX_SWEEP_POINTS, check_input
from migsim.model.paths import (
    NAMED_TWICE,
    get_field,
    model_field,
    repeated_field,
)
from migsim.model.scenario import Scenario
from migsim.results.results import FIGURES
from migsim.runner.runner import executor, run

__all__ = [
    "SweepDefinition",
    "figure_columns",
    "grid_points",
    "lhs_points",
    "parse_grid",
    "parse_range",
    "read_sweep",
    "run_point",
    "run_sweep",
]

TABLE = "sweep.parquet"


def figure_columns() -> list[str]:
    """The figure columns of a sweep table: ``name_statistic`` for every figure."""
    return [f"{name}_{stat}" for name in FIGURES for stat in STATISTICS]


# --------------------------------------------------------------------------- definition
def _parse_value(text: str, where: str) -> Any:
    """A grid value read as a scenario file reads it (`parse_yaml`)."""
    value = parse_value(text, where)
    if isinstance(value, float) and not math.isfinite(value):
        raise MigsimError(f"{where}: {_shown(text)} is not a finite number")
    if isinstance(value, dict | list):  # one table column holds one kind of value
        raise MigsimError(
            f"{where}: {_shown(text)} is not a single value (a number, date or text)"
        )
    return json_value(value)


def parse_grid(item: str) -> tuple[str, list[Any]]:
    """``FIELD=v1,v2,...`` -> ``(field, [values])``, values read as YAML scalars."""
    key, sep, text = item.partition("=")
    parts = [v.strip() for v in text.split(",")]
    if not sep or not key.strip() or not any(parts) or not all(parts):
        raise MigsimError(f"--grid {item!r}: expected FIELD=VALUE,VALUE,...")
    where = f"--grid {key.strip()}"
    values = [_parse_value(v, where) for v in parts]
    twice = [v for i, v in enumerate(values) if v in values[:i]]
    if twice:  # the same point twice: the sweep would run it twice
        raise MigsimError(
            f"{where}: {twice[0]!r} is listed twice; list each value once"
        )
    return key.strip(), values


def parse_range(item: str) -> tuple[str, tuple[float, float]]:
    """``FIELD=LOW:HIGH`` -> ``(field, (low, high))``."""
    key, sep, bounds = item.partition("=")
    low, colon, high = bounds.partition(":")
    try:
        pair = (float(low), float(high))
    except ValueError:
        pair = None
    if not sep or not colon or not key.strip() or pair is None:
        raise MigsimError(f"--range {item!r}: expected FIELD=LOW:HIGH (numbers)")
    if not math.isfinite(pair[0]) or not math.isfinite(pair[1]) or pair[1] < pair[0]:
        raise MigsimError(f"--range {item!r}: need finite LOW <= HIGH")
    if pair[1] == pair[0]:  # every point would draw that one value
        raise MigsimError(
            f"--range {item!r}: LOW equals HIGH, a range of one value: fix the "
            "field with --set FIELD=VALUE"
        )
    return key.strip(), pair


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Full factorial of the grid, the first field varying slowest."""
    fields = list(grid)
    return [
        dict(zip(fields, combo, strict=True))
        for combo in itertools.product(*grid.values())
    ]


def lhs_points(
    ranges: Mapping[str, tuple[float, float]],
    k: int,
    rng: np.random.Generator,
    integer_fields: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """A Latin hypercube of ``k`` points: each range in ``k`` strata, one draw each.

    Stratum j of a range ``[low, high]`` is ``[low + j w, low + (j+1) w)`` with
    ``w = (high - low) / k``; each field's strata are matched to points by an
    independent random permutation. Values of ``integer_fields`` are rounded.
    """
    if k < 1:
        raise MigsimError("--lhs: need at least one point")
    columns: dict[str, list[Any]] = {}
    for name, (low, high) in ranges.items():
        strata = rng.permutation(k)
        draws = (strata + rng.random(k)) / k
        values = low + draws * (high - low)
        if name in integer_fields:
            columns[name] = [int(round(v)) for v in values]
        else:
            columns[name] = [float(v) for v in values]
    return [{name: columns[name][i] for name in ranges} for i in range(k)]


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def _lhs_rng(seed: int) -> np.random.Generator:
    """The Latin hypercube's own stream: never one a replication draws from.

    Replications use spawn keys ``(k,)`` and ``(k, owner, purpose)``; this one is
    ``(key("sweep"), key("latin_hypercube"))``, of another length.
    """
    sequence = np.random.SeedSequence(
        seed, spawn_key=(_key("sweep"), _key("latin_hypercube"))
    )
    return np.random.default_rng(sequence)


@dataclass(frozen=True)
class SweepDefinition:
    """What a sweep is: the base scenario, its dimensions, count and seed.

    Two runs with equal definitions produce equal stores; a store only resumes a
    sweep of its own definition.
    """

    scenario: Scenario
    replications: int
    seed: int
    grid: dict[str, list[Any]] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    lhs: int | None = None

    def __post_init__(self) -> None:
        if self.ranges and self.lhs is None and not self.grid:
            raise MigsimError("--range needs --lhs K")
        if bool(self.grid) == (self.lhs is not None):
            given = "both were given" if self.grid else "neither was given"
            raise MigsimError(
                f"a sweep needs either --grid or --lhs with --range ({given})"
            )
        if self.lhs is not None and not self.ranges:
            raise MigsimError("--lhs needs at least one --range FIELD=LOW:HIGH")
        count = math.prod(len(v) for v in self.grid.values()) if self.grid else 0
        if max(count, self.lhs or 0) > MAX_SWEEP_POINTS:
            raise MigsimError(
                f"a sweep of {max(count, self.lhs or 0):,} points: at most "
                f"{MAX_SWEEP_POINTS:,} (split it into several sweeps)"
            )
        if self.replications < 1:
            raise MigsimError("a sweep needs at least one replication per point")
        # each field resolved as ``--set`` resolves it (list items by name or
        # index): a path by index was "no such field" here, though ``--set``
        # and a point set it
        data = self.scenario.to_dict()
        # a field at its default is left out of the dump (``uncertainty:
        # full``), but ``--set`` and a point set it all the same
        top = set(type(self.scenario).model_fields)
        known: dict[str, Any] = {}
        for name in self.fields:
            if name == "seed":
                raise ScenarioError(
                    f"{self.scenario.name}: sweep field seed: {SEED_IS_THE_RUNS}"
                )
            if name in top and name not in data:
                continue
            try:
                known[name] = get_field(data, name, origin=name)
            except ScenarioError:
                raise ScenarioError(
                    f"{self.scenario.name}: sweep field {name}: no such field"
                ) from None
        repeated = repeated_field(data, known)
        if repeated is not None:  # each point set it twice, the later won
            raise ScenarioError(
                f"{self.scenario.name}: sweep field {repeated[1]}: the same field "
                f"as {repeated[0]} {NAMED_TWICE}"
            )
        for name, values in self.grid.items():
            self._no_true_or_false(name, values)
        for name in self.ranges:
            if not isinstance(known.get(name), int | float) or isinstance(
                known.get(name), bool
            ):
                raise ScenarioError(
                    f"{self.scenario.name}: --range {name}: not a numeric field"
                )

    def _no_true_or_false(self, name: str, values: Sequence[Any]) -> None:
        """Refuse ``true``/``false`` in the grid of a field that takes no yes/no,
        as ``--set`` does (`limits.check_input`): the point ran as invalid and
        its value was listed as 1 in sweep.parquet (the column of numbers
        made the bool one)."""
        found = model_field(self.scenario, name)
        if found is None or not any(isinstance(v, bool) for v in values):
            return
        model, field_name = found
        for value in values:
            if isinstance(value, bool):
                try:
                    check_input(model, field_name, value, shown=f"--grid {name}")
                except ValueError as exc:
                    raise MigsimError(str(exc)) from None

    @property
    def fields(self) -> list[str]:
        return list(self.grid) if self.grid else list(self.ranges)

    def points(self) -> list[dict[str, Any]]:
        """The sweep's points, in index order."""
        if self.grid:
            return grid_points(self.grid)
        data = self.scenario.to_dict()
        integers = [n for n in self.ranges if type(get_field(data, n, origin=n)) is int]
        return lhs_points(self.ranges, self.lhs or 0, _lhs_rng(self.seed), integers)

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON data (what ``manifest.json`` stores and compares)."""
        return {
            "scenario_name": self.scenario.name,
            "scenario_sha256": self.scenario.sha256,
            "replications": self.replications,
            "seed": self.seed,
            "grid": {k: [json_value(v) for v in vs] for k, vs in self.grid.items()},
            "lhs": None
            if self.lhs is None
            else {
                "points": self.lhs,
                "ranges": {k: list(v) for k, v in self.ranges.items()},
            },
            # as decide's: points simulated by another version are not mixed in
            "migsim_version": __version__,
        }


# --------------------------------------------------------------------------- points
def run_point(
    scenario: Scenario, index: int, values: dict[str, Any], replications: int, seed: int
) -> dict[str, Any]:
    """Run one point; never raises: an invalid or failing point is a record.

    Returns ``{index, values, status, error, figures, seconds}`` where ``status``
    is ``done``, ``invalid`` (the values make the scenario invalid; ``error`` says
    why) or ``failed`` (an internal error; ``error`` holds its traceback).
    """
    started = time.perf_counter()
    record: dict[str, Any] = {
        "index": index,
        "values": values,
        "figures": {},
        "status": "done",
        "error": None,
    }
    try:
        # read once already (`parse_grid`): a quoted '100' stays text
        point = scenario.with_overrides(values, origin=f"point {index}", text=False)
    except ScenarioError as exc:
        record.update(status="invalid", error=str(exc))
    else:
        try:
            results = run(
                point,
                replications,
                seed=seed,
                workers=1,
                daily=False,
                fail_fast=True,
                twins=False,  # a sweep reads figures, never the variance split
            )
            record["figures"] = {
                f"{name}_{stat}": (math.nan if value is None else float(value))
                for name in FIGURES
                for stat, value in statistics(results.figure(name)).items()
            }
        except Exception:  # per-point failures are data (style rule 11)
            record.update(status="failed", error=traceback.format_exc())
    record["seconds"] = round(time.perf_counter() - started, 4)
    return record


def _point_frame(record: dict[str, Any], fields: Sequence[str]) -> pd.DataFrame:
    """The one-row table of a finished point, columns in `sweep.parquet` order."""
    row: dict[str, Any] = {"point": record["index"]}
    for name in fields:
        row[name] = record["values"][name]
    for column in figure_columns():
        row[column] = float(record["figures"].get(column, math.nan))
    row["status"] = record["status"]
    row["error"] = record["error"]
    frame = pd.DataFrame([row])
    frame["point"] = frame["point"].astype("int64")
    frame["status"] = frame["status"].astype(object)
    frame["error"] = frame["error"].astype(object)
    return frame


# --------------------------------------------------------------------------- store
#: A sweep writes its manifest after a point once this many times the last
#: write's duration has passed since it (`_Sweep.record`): at most about a
#: tenth of a sweep's time goes to rewriting it.
_SAVE_SHARE = 10.0

#: How a changed definition key is named when a store refuses a rerun.
_NAMES = {
    "scenario_sha256": "scenario",
    "scenario_name": "scenario name",
    "replications": "-n",
    "migsim_version": "migsim version",
}


class _Sweep:
    """The sweep's store (`migsim.common.store.Store`): a status per point, one
    ``points/<index>.parquet`` per finished point, and the final table."""

    def __init__(
        self, root: Path, definition: SweepDefinition, points: list[dict], fresh: bool
    ):
        self.definition = definition
        self.points = points
        self._saved_at = self._save_cost = 0.0  # when and how long the last write
        wanted = definition.to_dict()
        blank = {
            "migsim_version": __version__,
            "definition": wanted,
            "points": [
                {
                    "index": i,
                    "values": {k: json_value(v) for k, v in values.items()},
                    "status": "pending",
                    "error": None,
                    "seconds": None,
                    SOURCE: None,
                }
                for i, values in enumerate(points)
            ],
            "timings": {"runs": []},
        }
        self.store = Store(
            root,
            wanted,
            what="sweep",
            fresh=fresh,
            blank=blank,
            names=_NAMES,
            pieces="points",
        )
        self.manifest = self.store.manifest
        entries = self.manifest["points"]
        if len(entries) != len(points) or any(
            not isinstance(e, dict) or e.get("index") != i or "status" not in e
            for i, e in enumerate(entries)
        ):
            raise MigsimError(
                f"{root}/manifest.json: its points are not this sweep's "
                f"{len(points):,} points; rerun with --fresh to start over"
            )
        for entry in self.manifest["points"]:
            name = str(entry["index"])
            if self.store.has(name):
                if entry["status"] not in ("done", "invalid"):
                    # finished after the manifest was last written: read its status
                    stored = self.store.get(name, columns=["status"])
                    assert stored is not None
                    entry["status"] = stored["status"].iloc[0]
                # the code that computed it, as the point's own file says
                entry[SOURCE] = self.store.source(name)
            elif entry["status"] in ("done", "invalid", "running"):
                entry["status"] = "pending"
                entry[SOURCE] = None
        self.manifest["migsim_version"] = __version__
        self.manifest["migsim_source_sha256"] = source_sha256()
        # the base scenario as resolved, whose sha256 the definition holds (set
        # here, not in the blank, so a store made before it was kept resumes)
        self.manifest["scenario"] = definition.scenario.to_dict()
        self.save()

    def todo(self) -> list[int]:
        return [
            e["index"]
            for e in self.manifest["points"]
            if not self.store.has(str(e["index"]))
        ]

    def record(self, result: dict[str, Any]) -> None:
        """Store a point's result: its file first, then the manifest.

        The manifest lists every point, so it grows with the sweep (24 MB at
        100,000 points) and was written in full, synced, after each one: a
        sweep of 100,000 points of a small scenario wrote for 1.7 s per point
        (two days) to simulate for a few milliseconds. It is written only once
        the time since the last write is `_SAVE_SHARE` times what that write
        took (every point while it is small). A point's file says it is
        finished (the store reads the status of a point the manifest lacks
        from its file), so a kill loses no point, only the timings of the
        last few; the run's end writes the manifest in full.
        """
        if result["status"] in ("done", "invalid"):
            frame = _point_frame(result, self.definition.fields)
            self.store.put(str(result["index"]), frame)
        entry = self.manifest["points"][result["index"]]
        entry.update(status=result["status"], error=result["error"])
        entry.update(seconds=result["seconds"], **{SOURCE: source_sha256()})
        if time.perf_counter() - self._saved_at >= _SAVE_SHARE * self._save_cost:
            self.save()

    def save(self) -> None:
        started = time.perf_counter()
        self.store.save()
        self._saved_at = time.perf_counter()
        self._save_cost = self._saved_at - started

    def table(self) -> pd.DataFrame:
        frames = [self.store.get(str(i)) for i in range(len(self.points))]
        table = pd.concat(frames, ignore_index=True)
        for name in self.definition.fields:  # a grid of text and numbers (one
            values = table[name].dropna()  # of them invalid) is one column of text
            if values.dtype == object and len({type(v) for v in values}) > 1:
                table[name] = table[name].map(lambda v: v if pd.isna(v) else str(v))
        assert self.store.root is not None
        atomic_write(
            self.store.root / TABLE,
            lambda temporary: table.to_parquet(temporary, index=False),
        )
        return table


def read_sweep(store: str | Path) -> pd.DataFrame:
    """The table of a finished sweep store (``sweep.parquet``)."""
    path = Path(store) / TABLE
    if not path.exists():
        raise MigsimError(f"{store}: no {TABLE} (the sweep has not finished)")
    return pd.read_parquet(path)


def run_sweep(
    definition: SweepDefinition,
    store: str | Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    fresh: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
) -> pd.DataFrame:
    """Run (or resume) a sweep into ``store`` and return its table.

    Points already finished in the store are skipped. Points run in parallel on
    ``workers`` local processes or on a Dask cluster (``scheduler``); each
    point's replications run one after another in its worker.

    Parameters
    ----------
    definition
        The sweep.
    store
        Its directory (created if missing).
    workers, scheduler
        Where points run (see `migsim.runner.runner.executor`).
    fresh
        Start over: discard what the store holds (another sweep's, or this
        one's) instead of resuming or refusing.
    progress
        Called as ``progress(points_done, points_to_run, replications_done)``
        once before the first point and after each point of this run.

    Returns
    -------
    pandas.DataFrame
        One row per point (`sweep.parquet`).

    Raises
    ------
    MigsimError
        The store holds another sweep (and not ``fresh``), the folder holds
        files that are not a sweep store, bad dimensions, or every point is
        invalid (the store is then removed: nothing was run), or another
        running sweep is writing the store (`migsim.common.store.held`).
    RuntimeError
        A point failed with an internal error (its traceback is in the manifest);
        the other points were still run and stored.
    """
    root = Path(store)
    points = definition.points()
    with held(root, "sweep"):  # a second sweep here would lose one's records
        return _run(definition, root, points, workers, scheduler, fresh, progress)


def _run(
    definition: SweepDefinition,
    root: Path,
    points: list[dict[str, Any]],
    workers: int,
    scheduler: str | None,
    fresh: bool,
    progress: Callable[[int, int, int], None] | None,
) -> pd.DataFrame:
    """`run_sweep` in a store this process holds."""
    sweep_store = _Sweep(root, definition, points, fresh)
    todo = sweep_store.todo()
    started = time.perf_counter()
    failures: list[dict[str, Any]] = []
    if progress is not None:
        progress(0, len(todo), 0)
    if todo:
        workers = max(1, min(workers, len(todo)))
        with executor(workers, scheduler) as pool:
            calls = [
                (
                    definition.scenario,
                    i,
                    points[i],
                    definition.replications,
                    definition.seed,
                )
                for i in todo
            ]
            finished = 0
            for _, result in pool.imap(run_point, calls, ordered=False):
                sweep_store.record(result)
                finished += 1
                if result["status"] == "failed":
                    failures.append(result)
                if progress is not None:
                    progress(finished, len(todo), finished * definition.replications)
    sweep_store.manifest["timings"]["runs"].append(
        {
            "points_run": len(todo),
            "seconds": round(time.perf_counter() - started, 4),
            "workers": workers,
            "scheduler": scheduler,
        }
    )
    sweep_store.save()
    entries = sweep_store.manifest["points"]
    if entries and all(e["status"] == "invalid" for e in entries):
        # nothing was run: a store of only invalid points is not a result
        shutil.rmtree(root, ignore_errors=True)
        raise MigsimError(
            f"every point of the sweep is invalid ({len(entries):,}), nothing was "
            f"run; {entries[0]['error']}"
        )
    if failures:
        first = failures[0]
        raise RuntimeError(
            f"{len(failures)} sweep point(s) failed; point {first['index']}:\n"
            f"{first['error']}"
        )
    return sweep_store.table()
