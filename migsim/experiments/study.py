"""Study: many variants of one scenario, simulated and kept as figures only.

Decision support and sensitivity analysis both run one scenario at many values
of a few fields. This module holds what they share:

- `FieldAxis`: a scenario field (number or date) moved along a number line, and
  `field_axis`, which checks that a dotted path names such a field;
- `replication_figures`: simulate replications and keep one row of figures per
  replication (never the daily logs, so a study's memory stays small);
- `Simulator`: run replication ranges of many scenario variants in this process,
  on a local process pool or on an existing Dask cluster (``scheduler``), with
  results that do not depend on where they ran.

Module flow: after ``runner``; ``decide`` and ``sensitivity`` import it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from migsim.common.errors import MigsimError, ScenarioError
from migsim.common.stats import quantile
from migsim.model.scenario import Scenario, get_field
from migsim.results.results import FIGURES, Results
from migsim.runner.runner import executor, run_batch

__all__ = [
    "MIGRATED_BY",
    "FieldAxis",
    "Simulator",
    "field_axis",
    "fmt_date",
    "replication_figures",
    "statistic_of",
]

#: Figure column for installations migrated (incl. impaired) by a given date.
MIGRATED_BY = "migrated_by"


def statistic_of(values: Sequence[float] | np.ndarray, name: str) -> float:
    """A statistic over replications: the mean (+inf if any is) or a type-1 quantile."""
    array = np.asarray(values, dtype=float)
    if name == "mean":
        return float(array.mean()) if np.isfinite(array).all() else math.inf
    return quantile(array, int(name[1:]) / 100)


def fmt_date(when: dt.date) -> str:
    return f"{when.day} {when:%b %Y}"


# --------------------------------------------------------------------------- fields
@dataclass(frozen=True)
class FieldAxis:
    """A scenario field moved along a number line (dates as day ordinals)."""

    path: str
    kind: Literal["int", "float", "date"]
    current: Any

    def to_number(self, value: Any) -> float:
        return float(value.toordinal()) if self.kind == "date" else float(value)

    def from_number(self, number: float) -> Any:
        if self.kind == "date":
            return dt.date.fromordinal(int(round(number)))
        if self.kind == "int":
            return int(round(number))
        return float(round(number, 12))

    def format(self, value: Any) -> str:
        if self.kind == "date":
            return fmt_date(value)
        if self.kind == "int":
            return f"{int(value):,}"
        return f"{float(value):g}"

    def to_json(self, value: Any) -> Any:
        return value.isoformat() if self.kind == "date" else value


def field_axis(
    scenario: Scenario,
    path: str,
    sample: Any = None,
    *,
    where: str,
    error: type[MigsimError] = MigsimError,
) -> FieldAxis:
    """Check that ``path`` names a number or date field of the scenario; say which.

    ``sample`` (a value the caller will set) decides the kind of a field that is
    unset (None) in the scenario. Errors name ``where`` (file and key).
    """
    try:
        current = get_field(scenario.to_dict(), path, origin=where)
    except ScenarioError as exc:
        message = str(exc).removeprefix(f"{where}: {path}: ")
        raise error(f"{where}: not a scenario field ({message})") from None
    if current is None:
        current = sample
    if isinstance(current, bool):
        raise error(f"{where}: a yes/no field cannot be a range")
    if isinstance(current, int):
        return FieldAxis(path, "int", current)
    if isinstance(current, float):
        return FieldAxis(path, "float", current)
    if isinstance(current, dt.date):
        return FieldAxis(path, "date", current)
    if isinstance(current, str):
        try:
            return FieldAxis(path, "date", dt.date.fromisoformat(current))
        except ValueError:
            pass
    shape = (
        "a section"
        if isinstance(current, dict)
        else "a list"
        if isinstance(current, list)
        else "not a number or date"
    )
    raise error(f"{where}: {shape}, not a number or date field")


# --------------------------------------------------------------------------- figures
def replication_figures(
    scenario: Scenario,
    seed: int,
    replications: Iterable[int],
    migrated_by: dt.date | None = None,
) -> pd.DataFrame:
    """Simulate replications and keep only their figures: one row per replication.

    Columns: ``replication``, every figure of `results.FIGURES` (overall), and
    ``migrated_by`` (migrated incl. impaired at the end of that date) when given.
    """
    logs = run_batch(scenario, seed, list(replications))
    results = Results(scenario, seed, logs)
    columns: dict[str, np.ndarray] = {"replication": results.replication_ids}
    columns.update({name: results.figure(name) for name in FIGURES})
    if migrated_by is not None:
        day = scenario.day_of(migrated_by)
        done = (
            results.stacked("migrated")[:, day, :]
            + results.stacked("impaired")[:, day, :]
        )
        columns[MIGRATED_BY] = done.sum(axis=1).astype(float)
    frame = pd.DataFrame(columns)
    return frame


def _figures_bundle(
    tasks: list[tuple[Scenario, int, list[int], dt.date | None]],
) -> list[pd.DataFrame]:
    return [replication_figures(*task) for task in tasks]


class Simulator:
    """Runs replication ranges of many scenarios, in this process or elsewhere.

    Where is `migsim.runner.runner.executor`'s choice: this process (one worker), a
    local process pool, or an existing Dask cluster (``scheduler``). Jobs are cut into
    contiguous replication chunks and packed into bundles of about the same size,
    so every worker stays busy whether there are a few large jobs (decide) or many
    small ones (Sobol); chunks are put back in replication order, so results do
    not depend on where they ran. A context manager.
    """

    def __init__(self, workers: int = 1, *, scheduler: str | None = None):
        self._pool = executor(max(1, workers), scheduler)
        self.workers = self._pool.workers

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.close()

    def run(
        self,
        jobs: Sequence[tuple[Scenario, int, int, int]],
        migrated_by: dt.date | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[pd.DataFrame]:
        """Figures of each ``(scenario, seed, first_replication, replications)`` job.

        ``progress(done, total)`` is told the replications finished so far, of
        all the jobs', first with none done and then after every bundle.
        """
        if not jobs:
            return []
        total = sum(job[3] for job in jobs)
        size = max(1, math.ceil(total / (self.workers * 3)))
        chunks = [
            (
                index,
                (
                    sc,
                    seed,
                    list(range(start, min(first + n, start + size))),
                    migrated_by,
                ),
            )
            for index, (sc, seed, first, n) in enumerate(jobs)
            for start in range(first, first + n, size)
        ]
        bundles: list[list[tuple[int, Any]]] = [[]]
        for chunk in chunks:
            if sum(len(task[2]) for _, task in bundles[-1]) + len(chunk[1][2]) > size:
                bundles.append([])
            bundles[-1].append(chunk)
        calls = [([task for _, task in bundle],) for bundle in bundles]
        parts: list[list[pd.DataFrame]] = [[] for _ in jobs]
        done = 0
        if progress is not None:
            progress(done, total)
        for number, frames in self._pool.imap(_figures_bundle, calls):
            for (index, _), frame in zip(bundles[number], frames, strict=True):
                parts[index].append(frame)
            if progress is not None:
                done += sum(len(task[2]) for _, task in bundles[number])
                progress(done, total)
        return [pd.concat(frames, ignore_index=True) for frames in parts]
