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
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from migsim.common.errors import MigsimError, ScenarioError
from migsim.common.stats import quantile
from migsim.common.yamlio import shown as _shown
from migsim.model.paths import model_field
from migsim.model.scenario import Scenario, get_field
from migsim.results.results import FIGURES, Results
from migsim.runner.runner import executor, run_batch
from migsim.sim.block import MAX_BLOCK, run_blocks, worth_a_block
from migsim.sim.records import RunLog

__all__ = [
    "MIGRATED_BY",
    "SEED_IS_THE_RUNS",
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


#: Why ``seed`` is no lever, range or sweep field: every candidate, sample or
#: point runs the same replications under the command's seed, so one with
#: another ``seed`` gave exactly the same numbers (a sweep over seeds looked
#: like an answer that no seed changes).
SEED_IS_THE_RUNS = (
    "every value runs the same replications under the run's seed (common "
    "random numbers), so they would all give the same results; run again "
    "with --seed for other replications"
)


def field_axis(
    scenario: Scenario,
    path: str,
    sample: Any = None,
    *,
    where: str,
    error: type[MigsimError] = MigsimError,
    in_days: bool = False,
) -> FieldAxis:
    """Check that ``path`` names a number or date field of the scenario; say which.

    A field that is unset (None) in the scenario takes its kind from its
    declared type (`_declared_kind`), else from ``sample`` (a value the caller
    will set). Errors name ``where`` (file and key). With
    ``in_days`` (a caller that compares the figures of its values as day
    numbers: decide, sensitivity) ``start_date`` is refused: every day number
    counts from it, so a later start would look no slower.
    """
    if path == "seed":
        raise error(f"{where}: seed cannot be varied here: {SEED_IS_THE_RUNS}")
    if in_days and path == "start_date":
        raise error(
            f"{where}: start_date cannot be varied here: every figure's days count "
            "from it, so its values' clearance days would not compare; use a "
            "cohort's eligible_from or a schedule step's from"
        )
    try:
        current = get_field(scenario.to_dict(), path, origin=where)
    except ScenarioError as exc:
        message = str(exc).removeprefix(f"{where}: {path}: ")
        raise error(f"{where}: not a scenario field ({message})") from None
    if current is None:
        current = sample
        kind = _declared_kind(scenario, path)
        if kind is not None and current is not None and not isinstance(current, bool):
            return FieldAxis(path, kind, current)
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
        else f"a text field ({_shown(str(current))})"
    )
    raise error(f"{where}: {shape}, not a number or date field")


def _declared_kind(
    scenario: Scenario, path: str
) -> Literal["int", "float", "date"] | None:
    """The kind an unset field's declared type gives it, or None (a section,
    text, or a path the model does not resolve).

    An unset field has no value to tell its kind, and the value to be set
    did: ``meters_per_installation`` (a float) moved from 1 to 2 made a
    whole-number lever, and its step of 0.5 was refused as "must be whole
    numbers".
    """
    found = model_field(scenario, path)
    if found is None:
        return None
    model, name = found
    return _kind_of(model.model_fields[name].annotation)


def _kind_of(annotation: Any) -> Literal["int", "float", "date"] | None:
    """``int``, ``float`` (also for ``int | float``) or ``date`` from a field's
    type, through ``Annotated`` and ``| None``; None for anything else."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kind_of(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = {
            _kind_of(arg)
            for arg in typing.get_args(annotation)
            if arg is not type(None)
        }
        if kinds == {"int", "float"}:
            return "float"
        return kinds.pop() if len(kinds) == 1 else None
    if annotation is bool:
        return None
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    if annotation is dt.date:
        return "date"
    return None


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
    logs = _simulate(scenario, seed, list(replications))
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


def _simulate(scenario: Scenario, seed: int, replications: list[int]) -> list[RunLog]:
    """The replications' logs: as one block when that is faster (the block
    engine runs the scenario and there are enough of them), else one at a
    time; the same numbers either way.

    Like the runner, a block that raises is run again one replication at a
    time, so the error is the scalar engine's own, naming its replication.
    """
    if worth_a_block(scenario, len(replications)):
        try:
            return run_blocks(scenario, seed, replications)
        except Exception:  # noqa: S110 - one at a time below says which one fails
            pass
    return run_batch(scenario, seed, replications)


def _figures_bundle(
    tasks: list[tuple[Scenario, int, list[int], dt.date | None]],
) -> list[pd.DataFrame]:
    return [replication_figures(*task) for task in tasks]


#: Fewest replications a bundle is cut to (but the last): each bundle costs a
#: round trip and a small table, so the tail of a batch is not cut finer.
MIN_BUNDLE = 4


#: Replications in a bundle run as a block, at most: a block's cost per
#: replication falls with its size up to about a hundred and hardly beyond
#: (measured on the bundled question), while its memory keeps growing (about
#: 1.4 MiB a replication there).
BLOCK_SHARE = min(128, MAX_BLOCK)


def block_sizes(total: int, workers: int) -> list[int]:
    """Replications per bundle when the bundles run as blocks: equal shares.

    A block's cost per replication falls with its size, so each worker gets
    one large share of the batch (more when a share would exceed
    `BLOCK_SHARE`), all of about the same size so the workers finish together.
    """
    count = max(workers, math.ceil(total / BLOCK_SHARE))
    count = min(total, workers * math.ceil(count / workers))
    return [total // count + (i < total % count) for i in range(count)]


def bundle_sizes(total: int, workers: int) -> list[int]:
    """Replications per bundle for ``total`` replications on ``workers``, largest first.

    Guided self-scheduling: each bundle takes a ``2 x workers``-th of what is
    left (at least `MIN_BUNDLE`), so the first bundles are large (few round
    trips) and the last are small, and the workers finish a batch together
    instead of one waiting for the other's last large bundle: a decision judges
    after each batch (a look), so every look waits for its slowest worker.
    """
    sizes = []
    left = total
    least = min(MIN_BUNDLE, math.ceil(total / workers))  # a few: one each
    while left > 0:
        size = min(left, max(least, math.ceil(left / (2 * workers))))
        sizes.append(size)
        left -= size
    return sizes


class Simulator:
    """Runs replication ranges of many scenarios, in this process or elsewhere.

    Where is `migsim.runner.runner.executor`'s choice: this process (one worker), a
    local process pool, or an existing Dask cluster (``scheduler``). The jobs'
    replications, laid end to end, are cut into bundles: equal shares run as
    blocks when each share is worth a block for every job's scenario
    (`block_sizes`), else bundles of decreasing size run one replication at a
    time (`bundle_sizes`), so every worker stays
    busy to the end whether there are a few large jobs (decide) or many small
    ones (Sobol). Bundles come back as they finish and are put back in
    replication order, so results do not depend on where they ran. A context
    manager.
    """

    def __init__(self, workers: int = 1, *, scheduler: str | None = None):
        self._pool = executor(max(1, workers), scheduler)
        self.workers = self._pool.workers

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._pool.__exit__(*exc)  # aborts its workers on an error or Ctrl-C

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
        sizes = block_sizes(total, self.workers)
        if not all(worth_a_block(job[0], min(sizes)) for job in jobs):
            sizes = bundle_sizes(total, self.workers)  # they run one at a time
        bundles = _bundles(jobs, sizes, migrated_by)
        calls = [([task for _, task in bundle],) for bundle in bundles]
        parts: list[list[tuple[int, pd.DataFrame]]] = [[] for _ in jobs]
        done = 0
        if progress is not None:
            progress(done, total)
        for number, frames in self._pool.imap(_figures_bundle, calls, ordered=False):
            for (index, task), frame in zip(bundles[number], frames, strict=True):
                parts[index].append((task[2][0], frame))
            if progress is not None:
                done += sum(len(task[2]) for _, task in bundles[number])
                progress(done, total)
        return [
            pd.concat(
                [frame for _, frame in sorted(part, key=lambda p: p[0])],
                ignore_index=True,
            )
            for part in parts
        ]


def _bundles(
    jobs: Sequence[tuple[Scenario, int, int, int]],
    sizes: Sequence[int],
    migrated_by: dt.date | None,
) -> list[list[tuple[int, tuple[Scenario, int, list[int], dt.date | None]]]]:
    """The jobs' replications, laid end to end, cut into bundles of ``sizes``.

    A bundle is a list of ``(job index, (scenario, seed, replications,
    migrated_by))``: one task per job it reaches into, each a contiguous run of
    that job's replications.
    """
    bundles: list[list[tuple[int, Any]]] = []
    pending = iter(sizes)
    room = 0
    for index, (sc, seed, first, n) in enumerate(jobs):
        start, end = first, first + n
        while start < end:
            if room == 0:
                room = next(pending)
                bundles.append([])
            stop = min(end, start + room)
            bundles[-1].append(
                (index, (sc, seed, list(range(start, stop)), migrated_by))
            )
            room -= stop - start
            start = stop
    return bundles
