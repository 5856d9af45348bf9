"""Results: what many replications of one scenario produced, and their statistics.

`Results` holds one row of figures per replication and reaches the daily rows
(in the logs of a small in-memory run, or in the Parquet file a streamed run
wrote batch by batch) only on demand:

- ``daily``: the tidy day-by-day frame (one row per replication x date x cohort);
- ``replications``: one row per replication with the clearance date and figures;
- ``cohort_replications``: the same per cohort;
- ``defects``: one row per replication x latent defect (only with latent defects);
- ``summary``: statistics of every figure, plus provenance (seed, count, version,
  resolved scenario and its sha256), and under ``policy`` the ramp policy's
  counts: no-go days, each rule's firings, each gate's opening date.

Statistics are the mean and inverted-CDF (type 1) quantiles, never interpolated,
so every reported date is one a replication produced. A replication that does
not clear counts as +inf: a quantile that falls on it is reported as "after" the
horizon end, and the mean clearance day is then undefined (``None``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from migsim import __version__
from migsim.common.errors import MigsimError
from migsim.model.scenario import Scenario
from migsim.output.plots import backlog_fan_chart, plt
from migsim.sim.defects import DefectRecord
from migsim.sim.engine import run_replication, state_after
from migsim.sim.policy import DAY_COLUMNS
from migsim.sim.records import FLOWS, IN_FLIGHT, STATES, RunLog

__all__ = [
    "FIGURES",
    "STATISTICS",
    "Batch",
    "DailyWriter",
    "FigureTable",
    "Results",
    "daily_frame",
    "daily_table",
    "replace_dir",
    "file_bands",
    "quantile",
    "statistics",
]

STATISTICS = ("mean", "p5", "p10", "p50", "p80", "p85", "p90", "p95")
_QUANTILES = {
    "p5": 0.05,
    "p10": 0.10,
    "p50": 0.50,
    "p80": 0.80,
    "p85": 0.85,
    "p90": 0.90,
    "p95": 0.95,
}


@dataclass(frozen=True)
class Figure:
    """A named per-replication figure: its definition and how to compute it."""

    name: str
    unit: str
    definition: str
    compute: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray] | None


def _last(columns: dict[str, np.ndarray], name: str) -> np.ndarray:
    return columns[name][-1]


def _active_sum(values: np.ndarray, active: np.ndarray) -> np.ndarray:
    return np.where(active, values, 0)


def _column(columns: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A cohort column, or zeros when its operations section is not used."""
    if name in columns:
        return columns[name]
    return np.zeros_like(columns["attempts"])


def _total(columns: dict[str, np.ndarray], name: str) -> np.ndarray:
    return _column(columns, name).sum(axis=0)


#: Peak figures: a daily series per cohort; per cohort its largest day, overall
#: the largest day of the all-cohort total (never a sum of per-cohort peaks).
_PEAK_SERIES: dict[str, Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]] = {
    "peak_failure_backlog": lambda c, a: c["stalled"] + c["rolled_back"],
    "max_daily_active_interrupted": lambda c, a: np.where(
        a, c["impaired"] + c["stalled"], 0
    ),
    "peak_els_backlog": lambda c, a: _column(c, "els_cases_open"),
}


#: Every per-replication figure. Per cohort each is the cohort's own value; the
#: overall value is the figure of the replication's total, never a sum of
#: per-cohort quantiles. Arrays are (days, cohorts); results are per cohort.
FIGURES: dict[str, Figure] = {
    f.name: f
    for f in [
        Figure(
            "clearance_day",
            "days",
            "days from start_date to the first end of day at which the backlog "
            "counts as cleared (+inf when not within the horizon)",
            None,
        ),  # read from the log
        Figure(
            "migrated",
            "installations",
            "installations migrated (including impaired) at the horizon end",
            lambda c, a: _last(c, "migrated") + _last(c, "impaired"),
        ),
        Figure(
            "dumb",
            "installations",
            "devices left dumb at the horizon end",
            lambda c, a: _last(c, "dumb"),
        ),
        Figure(
            "active_dumb",
            "installations",
            "active installations left dumb at the horizon end",
            lambda c, a: _active_sum(_last(c, "dumb"), a),
        ),
        Figure(
            "dormant_dumb",
            "installations",
            "dormant installations left dumb at the horizon end",
            lambda c, a: _active_sum(_last(c, "dumb"), ~a),
        ),
        Figure(
            "abandoned",
            "installations",
            "installations abandoned after failing their last allowed attempt",
            lambda c, a: _last(c, "abandoned"),
        ),
        Figure(
            "active_interrupted_installation_days",
            "installation-days",
            "sum over days of active installations impaired or stalled at the "
            "end of the day (a household without smart service that day)",
            lambda c, a: _active_sum((c["impaired"] + c["stalled"]).sum(axis=0), a),
        ),
        Figure(
            "peak_failure_backlog",
            "installations",
            "largest end-of-day count of stalled + rolled_back installations",
            lambda c, a: (c["stalled"] + c["rolled_back"]).max(axis=0),
        ),
        Figure(
            "attempts",
            "attempts",
            "migration attempts made, retries included",
            lambda c, a: c["attempts"].sum(axis=0),
        ),
        Figure(
            "unresolved",
            "installations",
            "installations still pending, queued, stalled, rolled back or "
            "impaired at the horizon end",
            lambda c, a: sum(_last(c, s) for s in IN_FLIGHT),
        ),
        # ---- operations (docs/operations-risk.md); 0 when a section is not used
        Figure(
            "active_hit_by_defects",
            "installations",
            "attempts on active installations given a latent defect's outcome "
            "before the defect was found",
            lambda c, a: _active_sum(_total(c, "defect_hits"), a),
        ),
        Figure(
            "dormant_hit_by_defects",
            "installations",
            "attempts on dormant installations given a latent defect's outcome "
            "before the defect was found",
            lambda c, a: _active_sum(_total(c, "defect_hits"), ~a),
        ),
        Figure(
            "active_dumb_installation_days",
            "installation-days",
            "sum over days of active installations dumb at the end of the day "
            "(until recovered remotely, or to the horizon end)",
            lambda c, a: _active_sum(c["dumb"].sum(axis=0), a),
        ),
        Figure(
            "max_daily_active_interrupted",
            "installations",
            "largest end-of-day count of active installations impaired or "
            "stalled (the interrupted households on the worst day)",
            lambda c, a: _PEAK_SERIES["max_daily_active_interrupted"](c, a).max(axis=0),
        ),
        Figure(
            "peak_els_backlog",
            "cases",
            "largest end-of-day count of ELS/MCC cases raised and not yet worked",
            lambda c, a: _PEAK_SERIES["peak_els_backlog"](c, a).max(axis=0),
        ),
        Figure(
            "active_prepayment_dumb",
            "installations",
            "active prepayment installations left dumb (awaiting a site visit) at "
            "the horizon end: the paper's 'grave' case",
            lambda c, a: _active_sum(
                _last(c, "prepayment_dumb")
                if "prepayment_dumb" in c
                else np.zeros_like(a, dtype=np.int64),
                a,
            ),
        ),
        Figure(
            "cos_alerts_lost",
            "events",
            "change-of-supplier events on migrated installations whose loss alert "
            "was not sent (issue 61224, until its fix)",
            lambda c, a: _total(c, "cos_alerts_lost"),
        ),
        Figure(
            "ppmid_join_failures",
            "joins",
            "PPMID joins that failed on newly migrated active prepayment "
            "installations (issue 91342, until its fix)",
            lambda c, a: _total(c, "ppmid_join_failures"),
        ),
        Figure(
            "excluded",
            "installations",
            "installations that can never be migrated remotely, abandoned at the "
            "horizon end (of abandoned)",
            lambda c, a: (
                _last(c, "excluded")
                if "excluded" in c
                else np.zeros_like(a, dtype=np.int64)
            ),
        ),
    ]
}
_PEAK_FIGURES = set(_PEAK_SERIES)  # overall = peak of the daily total


# --------------------------------------------------------------------------- stats
def quantile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """Inverted-CDF (type 1) quantile: the smallest x with F(x) >= q.

    Works with +inf (a replication that did not clear); never interpolates.
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    if not len(ordered):
        return math.nan
    index = max(0, math.ceil(q * len(ordered) - 1e-12) - 1)
    return float(ordered[index])


def statistics(values: Sequence[float] | np.ndarray) -> dict[str, float | None]:
    """Mean and type-1 quantiles; the mean is ``None`` when any value is +inf."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean()) if len(array) and np.isfinite(array).all() else None
    out: dict[str, float | None] = {"mean": mean}
    for name, q in _QUANTILES.items():
        out[name] = quantile(array, q)
    return out


def _json_number(value: float | None) -> float | int | None:
    """JSON-safe: +inf and nan become None; whole floats become ints."""
    if value is None or not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else round(float(value), 6)


# --------------------------------------------------------------------------- batches
def _per_cohort_days(days: list[int | None]) -> np.ndarray:
    return np.array([math.inf if d is None else d for d in days], dtype=float)


@dataclass
class FigureTable:
    """Per-replication figures of some replications: all a run keeps in memory.

    Attributes
    ----------
    replications
        Replication indices, ascending: array ``(r,)``.
    overall
        ``{figure: array (r,)}``: each replication's figure of its total.
    cohorts
        ``{figure: array (r, cohorts)}``: each replication's figure per cohort.
    extras
        ``{name: array (r,)}``: the ramp policy's counts per replication:
        ``no_go_days``, ``rule_firings.<rule>`` and ``gate_day.<gate>`` (+inf:
        not opened within the horizon).
    defects
        ``(replication, DefectRecord)`` per replication and latent defect, in
        replication order (empty without latent defects).
    """

    replications: np.ndarray
    overall: dict[str, np.ndarray]
    cohorts: dict[str, np.ndarray]
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    defects: list[tuple[int, DefectRecord]] = field(default_factory=list)

    @classmethod
    def from_logs(cls, scenario: Scenario, logs: Sequence[RunLog]) -> FigureTable:
        """Compute every figure of `FIGURES` for each log (in replication order)."""
        logs = sorted(logs, key=lambda log: log.replication)
        active = np.array([c.mode == "active" for c in scenario.cohorts])
        n_cohorts = len(scenario.cohorts)
        overall = {name: np.empty(len(logs)) for name in FIGURES}
        cohorts = {name: np.empty((len(logs), n_cohorts)) for name in FIGURES}
        for row, log in enumerate(logs):
            columns = log.cohort_columns
            for name, figure in FIGURES.items():
                if name == "clearance_day":
                    per_cohort = _per_cohort_days(log.cohort_clearance_days)
                    total = math.inf if log.clearance_day is None else log.clearance_day
                elif name in _PEAK_FIGURES:
                    series = _PEAK_SERIES[name](columns, active)
                    per_cohort = series.max(axis=0).astype(float)
                    total = float(series.sum(axis=1).max())
                else:
                    per_cohort = figure.compute(columns, active).astype(float)
                    total = float(per_cohort.sum())
                overall[name][row] = total
                cohorts[name][row] = per_cohort
        ids = np.array([log.replication for log in logs], dtype=np.int64)
        defects = [(log.replication, record) for log in logs for record in log.defects]
        return cls(ids, overall, cohorts, _policy_extras(scenario, logs), defects)

    @classmethod
    def concat(cls, tables: Sequence[FigureTable]) -> FigureTable:
        """Join tables of disjoint replications, in replication order."""
        assert tables, "nothing to join"
        ids = np.concatenate([t.replications for t in tables])
        order = np.argsort(ids, kind="stable")
        assert len(np.unique(ids)) == len(ids), "a replication appears twice"
        return cls(
            ids[order],
            {
                k: np.concatenate([t.overall[k] for t in tables])[order]
                for k in tables[0].overall
            },
            {
                k: np.concatenate([t.cohorts[k] for t in tables])[order]
                for k in tables[0].cohorts
            },
            {
                k: np.concatenate([t.extras[k] for t in tables])[order]
                for k in tables[0].extras
            },
            sorted((row for t in tables for row in t.defects), key=lambda r: r[0]),
        )


def _policy_extras(scenario: Scenario, logs: Sequence[RunLog]) -> dict[str, np.ndarray]:
    """Per replication: no-go days, each rule's firings, each gate's opening day."""
    horizon = scenario.horizon_days

    def day_count(log: RunLog, column: str, value: Any = True) -> int:
        values = log.day_columns.get(column)
        return 0 if values is None else int((values == value).sum())

    extras = {
        "no_go_days": np.array([day_count(log, "no_go") for log in logs], dtype=float)
    }
    for rule in scenario.capacity.rules:
        extras[f"rule_firings.{rule.name}"] = np.array(
            [day_count(log, "rule_fired", rule.name) for log in logs], dtype=float
        )
    for gate in scenario.gates:
        days = [log.gate_days.get(gate.name) for log in logs]
        extras[f"gate_day.{gate.name}"] = np.array(
            [math.inf if d is None or d >= horizon else max(d, 0) for d in days],
            dtype=float,
        )
    return extras


def daily_frame(scenario: Scenario, logs: Sequence[RunLog]) -> pd.DataFrame:
    """Tidy daily rows of some replications: one row per replication x date x cohort.

    Columns: ``replication, date, cohort``, the states, the flows, then any extra
    cohort columns and day columns the engine recorded (a day column repeats on
    every cohort row of its date).
    """
    logs = sorted(logs, key=lambda log: log.replication)
    names = [c.name for c in scenario.cohorts]
    # nanoseconds: the unit that survives a Parquet round trip unchanged
    dates = pd.date_range(scenario.start_date, periods=scenario.horizon_days, unit="ns")
    n_reps, n_days, n_cohorts = len(logs), len(dates), len(names)
    ids = np.array([log.replication for log in logs], dtype=np.int64)
    frame = pd.DataFrame(
        {
            "replication": np.repeat(ids, n_days * n_cohorts),
            "date": np.tile(np.repeat(dates.values, n_cohorts), n_reps),
            "cohort": pd.Categorical.from_codes(
                np.tile(np.arange(n_cohorts), n_reps * n_days), categories=names
            ),
        }
    )
    first = logs[0] if logs else None
    extra = [
        k
        for k in (first.cohort_columns if first else {})
        if k not in STATES and k not in FLOWS
    ]
    for column in (*STATES, *FLOWS, *extra):
        frame[column] = (
            np.stack([log.cohort_columns[column] for log in logs]).reshape(-1)
            if logs
            else np.array([], dtype=np.int64)
        )
    for column in first.day_columns if first else {}:
        values = np.stack([log.day_columns[column] for log in logs])
        values = np.repeat(values.reshape(-1), n_cohorts)
        text = values.dtype.kind in "OU"
        frame[column] = pd.Categorical(values) if text else values
    return frame


def daily_table(scenario: Scenario, logs: Sequence[RunLog]) -> pa.Table:
    """`daily_frame` as an Arrow table, built straight from the arrays (no pandas).

    The cohort is a dictionary column (read back as a pandas category), the date
    a nanosecond timestamp, counts stay int64; pandas reads it back equal to
    `daily_frame`.
    """
    logs = sorted(logs, key=lambda log: log.replication)
    names = [c.name for c in scenario.cohorts]
    n_days, n_cohorts = scenario.horizon_days, len(names)
    ids = np.array([log.replication for log in logs], dtype=np.int64)
    dates = np.datetime64(scenario.start_date, "ns") + np.arange(
        n_days, dtype="timedelta64[D]"
    ).astype("timedelta64[ns]")
    code_type = np.int8 if n_cohorts < 128 else np.int32
    codes = np.tile(np.arange(n_cohorts, dtype=code_type), len(logs) * n_days)
    columns = {
        "replication": pa.array(np.repeat(ids, n_days * n_cohorts)),
        "date": pa.array(np.tile(np.repeat(dates, n_cohorts), len(logs))),
        "cohort": pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(names)),
    }
    first = logs[0] if logs else None
    extra = [
        k
        for k in (first.cohort_columns if first else {})
        if k not in STATES and k not in FLOWS
    ]
    for column in (*STATES, *FLOWS, *extra):
        values = (
            np.stack([log.cohort_columns[column] for log in logs]).reshape(-1)
            if logs
            else np.array([], dtype=np.int64)
        )
        columns[column] = pa.array(values)
    for column in first.day_columns if first else {}:
        values = np.stack([log.day_columns[column] for log in logs])
        array = pa.array(np.repeat(values.reshape(-1), n_cohorts))
        if values.dtype.kind in "OU":  # text: a category, as in `daily_frame`
            array = array.dictionary_encode()
        columns[column] = array
    return pa.table(columns)


@dataclass
class Batch:
    """What a worker sends back for a batch of replications: figures and daily rows.

    ``daily`` is a pyarrow table of `daily_frame` rows, or ``None`` when the run
    keeps no daily rows. ``day_columns`` names the columns that hold one value per
    date (repeated on every cohort row).
    """

    figures: FigureTable
    daily: pa.Table | None
    day_columns: list[str]

    @classmethod
    def from_logs(
        cls, scenario: Scenario, logs: Sequence[RunLog], daily: bool
    ) -> Batch:
        table = daily_table(scenario, logs) if daily else None
        days = list(logs[0].day_columns) if logs else []
        return cls(FigureTable.from_logs(scenario, logs), table, days)


class DailyWriter:
    """Appends batches of daily rows to one Parquet file, one row group per batch.

    Batches must arrive in replication order, so the file reads back sorted by
    ``replication, date, cohort`` whatever the worker count.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._writer: pq.ParquetWriter | None = None

    def append(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# --------------------------------------------------------------------------- sources
def _reduce(block: np.ndarray, cohort: int | None, per_date: bool) -> np.ndarray:
    """``(reps, days, cohorts)`` -> ``(reps, days)``: a cohort, or the total.

    A ``per_date`` column holds one value per date repeated on every cohort row:
    it is taken once, never summed over cohorts.
    """
    if per_date:
        return block[:, :, 0]
    return block.sum(axis=2) if cohort is None else block[:, :, cohort]


class _LogSource:
    """Daily series held in memory as the replications' logs."""

    def __init__(self, scenario: Scenario, logs: list[RunLog]):
        self.scenario = scenario
        self.logs = logs
        self.n_cohorts = len(scenario.cohorts)

    def frame(self) -> pd.DataFrame:
        return daily_frame(self.scenario, self.logs)

    def stacked(self, column: str) -> np.ndarray:
        if self.logs and column not in self.logs[0].cohort_columns:
            values = np.stack([log.day_columns[column] for log in self.logs])
            return np.repeat(values[:, :, None], self.n_cohorts, axis=2)
        return np.stack([log.cohort_columns[column] for log in self.logs])

    def matrix(self, columns: Sequence[str], cohort: int | None) -> np.ndarray:
        per_date = set(self.logs[0].day_columns) if self.logs else set()
        return sum(_reduce(self.stacked(c), cohort, c in per_date) for c in columns)


class _FileSource:
    """Daily series in a Parquet file written by `DailyWriter`, read chunk by chunk.

    Rows are in ``replication, date, cohort`` order, so whole replications are
    consecutive blocks of ``days x cohorts`` rows; each chunk is reduced to rows
    of the ``(replications, days)`` matrix of the wanted series before the next is
    read, so at most one chunk of daily rows is in memory.
    """

    def __init__(
        self,
        path: Path,
        n_days: int,
        n_cohorts: int,
        n_reps: int,
        day_columns: Sequence[str],
    ):
        self.path = path
        self.n_days, self.n_cohorts, self.n_reps = n_days, n_cohorts, n_reps
        self.day_columns = set(day_columns)

    def frame(self) -> pd.DataFrame:
        frame = pd.read_parquet(self.path)
        for column in self.day_columns:
            if isinstance(frame[column].dtype, pd.CategoricalDtype):
                # row groups carry their own dictionaries: sort the union, as
                # `daily_frame`'s categories are
                categories = frame[column].cat.categories
                frame[column] = frame[column].cat.reorder_categories(sorted(categories))
        return frame

    def _blocks(self, columns: Sequence[str]):
        """``{column: (reps, days, cohorts)}`` for consecutive whole replications."""
        per_rep = self.n_days * self.n_cohorts
        parquet = pq.ParquetFile(self.path)
        size = per_rep * max(1, (1 << 16) // per_rep)
        carry: dict[str, np.ndarray] = {}
        # one thread: a decoding thread pool keeps more freed memory resident
        for batch in parquet.iter_batches(
            batch_size=size, columns=list(columns), use_threads=False
        ):
            values = {c: batch.column(c).to_numpy() for c in columns}
            if carry:
                values = {c: np.concatenate([carry[c], values[c]]) for c in columns}
            whole = len(values[columns[0]]) // per_rep
            carry = {c: v[whole * per_rep :] for c, v in values.items()}
            if whole:
                yield {
                    c: v[: whole * per_rep].reshape(whole, self.n_days, self.n_cohorts)
                    for c, v in values.items()
                }
        assert not carry or not len(carry[columns[0]]), "file ends mid-replication"

    def stacked(self, column: str) -> np.ndarray:
        return np.concatenate([block[column] for block in self._blocks([column])])

    def matrix(self, columns: Sequence[str], cohort: int | None) -> np.ndarray:
        """The ``(replications, days)`` series; int32 while the counts fit in it."""
        out: np.ndarray | None = None
        filled = 0
        for block in self._blocks(columns):
            reduced = sum(
                _reduce(block[c], cohort, c in self.day_columns) for c in columns
            )
            if out is None:
                narrow = reduced.dtype.kind == "i" and reduced.dtype.itemsize > 4
                out = np.empty(
                    (self.n_reps, self.n_days),
                    dtype=np.int32 if narrow else reduced.dtype,
                )
            if (
                out.dtype == np.int32
                and len(reduced)
                and (reduced.max() > _INT32_MAX or reduced.min() < -_INT32_MAX)
            ):
                out = out.astype(reduced.dtype)
            out[filled : filled + len(reduced)] = reduced
            filled += len(reduced)
        assert out is not None and filled == self.n_reps, "daily file is incomplete"
        return out


_INT32_MAX = np.iinfo(np.int32).max


class _NoSource:
    """A run that kept no daily rows (``run(..., daily=False)``)."""

    def _refuse(self, *args: Any) -> Any:
        raise MigsimError(
            "this run kept no daily rows (it ran with daily=False): daily series "
            "and bands are not available"
        )

    frame = matrix = stacked = _refuse


def _count(value: int | list[dict[str, int]]) -> int:
    return value if isinstance(value, int) else sum(g["count"] for g in value)


# --------------------------------------------------------------------------- results
class Results:
    """The outcome of `migsim.run`: per-replication figures, and daily rows on demand.

    A `Results` holds in memory only one row of figures per replication. Its daily
    rows live either in the replications' logs (when built from logs, for small
    runs and tests) or in a Parquet file the runner streamed them to (`daily`
    reads it back on access; `bands` reduces it chunk by chunk), so memory does not
    grow with the daily rows of many replications.

    Parameters
    ----------
    scenario
        The resolved scenario that was run.
    seed
        The run seed; replication k used streams derived from ``(seed, k)``.
    logs
        One `RunLog` per replication; ``None`` when ``figures`` is given.
    timing
        Wall-clock facts (kept out of every table so results stay reproducible).
    figures
        Precomputed figures (what the runner passes instead of logs).
    daily_path
        The Parquet file of daily rows that goes with ``figures``; ``None``: no
        daily rows were kept.
    day_columns
        Which columns of ``daily_path`` hold one value per date.
    owned_dir
        A temporary directory (holding the spill file) removed with this object.
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        logs: list[RunLog] | None = None,
        timing: dict[str, Any] | None = None,
        *,
        figures: FigureTable | None = None,
        daily_path: str | Path | None = None,
        day_columns: Sequence[str] = (),
        owned_dir: str | Path | None = None,
    ):
        self.scenario = scenario
        self.seed = seed
        self.timing = dict(timing or {})
        self._active = np.array([c.mode == "active" for c in scenario.cohorts])
        self._sections: dict[str, Any] = {}
        #: The Parquet file of daily rows (``daily.parquet`` or the spill file).
        self.daily_path = Path(daily_path) if daily_path is not None else None
        self._logs: list[RunLog] | None = None
        self._source: Any
        if logs is not None:
            assert figures is None and daily_path is None, "logs or figures, not both"
            self._logs = sorted(logs, key=lambda log: log.replication)
            self._table = FigureTable.from_logs(scenario, self._logs)
            self._source = _LogSource(scenario, self._logs)
        else:
            assert figures is not None, "give logs or figures"
            self._table = figures
            self._source = _NoSource()
            if self.daily_path is not None:
                self._source = _FileSource(
                    self.daily_path,
                    scenario.horizon_days,
                    len(scenario.cohorts),
                    len(figures.replications),
                    day_columns,
                )
        if owned_dir is not None:
            weakref.finalize(self, shutil.rmtree, str(owned_dir), True)

    @classmethod
    def combine(
        cls, parts: Sequence[Results], *, spill_dir: str | Path | None = None
    ) -> Results:
        """One `Results` from runs of disjoint replications of one scenario and seed.

        Runs that continue the numbering (``run(..., first_replication=k)``)
        combine to exactly what one run of the total count gives (timing apart).
        Parts built from logs combine in memory; streamed parts are merged row
        group by row group into a new spill file (in ``spill_dir``), so memory
        stays flat here too.

        Raises
        ------
        ValueError
            When the parts differ in scenario or seed, share a replication, or
            mix parts with and without daily rows.
        """
        if not parts:
            raise ValueError("nothing to combine")
        first = parts[0]
        for part in parts[1:]:
            if part.scenario.sha256 != first.scenario.sha256 or part.seed != first.seed:
                raise ValueError("can only combine runs of one scenario and seed")
        ids = np.concatenate([p._table.replications for p in parts])
        if len(np.unique(ids)) != len(ids):
            raise ValueError("the parts share a replication")
        seconds = sum(p.timing.get("simulate_seconds", 0.0) for p in parts)
        timing = {
            **first.timing,
            "simulate_seconds": round(seconds, 4),
            "seconds_per_replication": round(seconds / len(ids), 6),
            "batches": len(parts),
        }
        if all(p._logs is not None for p in parts):
            logs = [log for p in parts for log in p._logs or []]
            return cls(first.scenario, first.seed, logs, timing)
        figures = FigureTable.concat([p._table for p in parts])
        if not all(p.daily_path is not None for p in parts):
            if any(p.has_daily for p in parts):
                raise ValueError("cannot combine runs with and without daily rows")
            return cls(first.scenario, first.seed, timing=timing, figures=figures)
        owned = Path(tempfile.mkdtemp(prefix="migsim-daily-", dir=spill_dir))
        path = owned / "daily.parquet"
        groups = []  # (first replication, file, row group)
        for part in parts:
            parquet = pq.ParquetFile(part.daily_path)
            for index in range(parquet.num_row_groups):
                head = parquet.read_row_group(index, columns=["replication"])
                groups.append((int(head.column(0)[0].as_py()), part.daily_path, index))
        writer = DailyWriter(path)
        try:
            for _, source, index in sorted(groups):
                writer.append(pq.ParquetFile(source).read_row_group(index))
        finally:
            writer.close()
        day_columns = sorted(set().union(*(p._source.day_columns for p in parts)))
        return cls(
            first.scenario,
            first.seed,
            timing=timing,
            figures=figures,
            daily_path=path,
            day_columns=day_columns,
            owned_dir=owned,
        )

    def annotate(self, key: str, value: Any) -> None:
        """Add a section to `summary` (and so to summary.json), e.g. ``ci95``.

        Later layers (forecast, precision) use this; a key of the base summary
        cannot be replaced.
        """
        if key in self._base_summary:
            raise ValueError(f"summary already has {key!r}")
        self._sections[key] = value
        self.__dict__.pop("summary", None)

    # ------------------------------------------------------------------ basics
    @property
    def logs(self) -> list[RunLog]:
        """The replications' logs, in replication order.

        A streamed run keeps no logs; asking for them re-simulates its
        replications (replication k is a pure function of the scenario, the seed
        and k, so they are exactly the logs the run had) and keeps them.
        """
        if self._logs is not None:
            return self._logs
        if "_resimulated" not in self.__dict__:
            self.__dict__["_resimulated"] = [
                run_replication(self.scenario, self.seed, int(k))
                for k in self._table.replications
            ]
        return self.__dict__["_resimulated"]

    @property
    def n_replications(self) -> int:
        return len(self._table.replications)

    @property
    def replication_ids(self) -> np.ndarray:
        return self._table.replications.copy()

    @property
    def cohort_names(self) -> list[str]:
        return [c.name for c in self.scenario.cohorts]

    @cached_property
    def dates(self) -> pd.DatetimeIndex:
        return pd.date_range(
            self.scenario.start_date, periods=self.scenario.horizon_days
        )

    def clearance_days(self, cohort: str | None = None) -> np.ndarray:
        """Clearance day per replication (+inf when not cleared), overall or of a cohort."""
        return self.figure("clearance_day", cohort).copy()

    def state_on(self, when: date | str, replication: int) -> dict[str, Any]:
        """The state of one replication at the end of a date, to start a run from.

        ``{"date", "cohorts": {name: initial_state}, "operations_state"}``: every
        state of the partition, with in-flight installations by (attempts made,
        days until due), and the ramp policy's state. ``scenario.starting_from(
        state)`` continues the replication from the next day; its clearance dates
        have the distribution of this run's from then on. The replication is
        re-simulated to that date from its own streams.
        """
        when = date.fromisoformat(when) if isinstance(when, str) else when
        day = self.scenario.day_of(when)
        if not 0 <= day < self.scenario.horizon_days:
            raise ValueError(
                f"{when} is outside {self.scenario.start_date}.."
                f"{self.scenario.end_date}"
            )
        state = state_after(self.scenario, self.seed, replication, day)
        recorded = self._recorded_states(replication, day)
        if recorded is not None:  # the re-simulation must agree with the recorded run
            for index, name in enumerate(self.cohort_names):
                exported = [_count(state["cohorts"][name][s]) for s in STATES]
                assert recorded[index] == exported, (
                    f"state_on({when}, {replication}) disagrees with the run's log"
                )
        return state

    def _recorded_states(self, replication: int, day: int) -> list[list[int]] | None:
        """The states of one replication's cohorts at the end of a day, as run:
        from the logs, or read from the daily file (one date of one replication);
        ``None`` when the run kept neither or does not have that replication."""
        if self._logs is not None:
            log = next((g for g in self._logs if g.replication == replication), None)
            if log is None:
                return None
            return [
                [int(log.cohort_columns[s][day, i]) for s in STATES]
                for i in range(len(self.cohort_names))
            ]
        if self.daily_path is None or replication not in self._table.replications:
            return None
        rows = pq.read_table(
            self.daily_path,
            columns=["cohort", *STATES],
            filters=[
                ("replication", "==", replication),
                ("date", "==", pd.Timestamp(self.scenario.date_of(day))),
            ],
        ).to_pandas()
        rows["cohort"] = rows["cohort"].astype(str)
        rows = rows.set_index("cohort").loc[self.cohort_names]
        return [[int(v) for v in row] for row in rows[list(STATES)].to_numpy()]

    def stacked(self, column: str) -> np.ndarray:
        """A daily column of every replication: array (replications, days, cohorts).

        Loads the whole column into memory; `bands` does not need to.
        """
        return self._source.stacked(column)

    # ------------------------------------------------------------------ figures
    def figure(self, name: str, cohort: str | None = None) -> np.ndarray:
        """Values of one figure per replication, overall or for one cohort."""
        if cohort is None:
            return self._table.overall[name]
        return self._table.cohorts[name][:, self.cohort_names.index(cohort)]

    # ------------------------------------------------------------------ tables
    @property
    def daily(self) -> pd.DataFrame:
        """One row per replication x date x cohort: end-of-day states, the day's flows.

        For a streamed run this reads ``daily.parquet`` (or the spill file) back on
        every access: keep the frame if you need it twice.
        """
        if self._logs is not None:
            if "_daily" not in self.__dict__:
                self.__dict__["_daily"] = self._source.frame()
            return self.__dict__["_daily"]
        return self._source.frame()

    def _clearance_dates(self, days: np.ndarray) -> list[date | None]:
        return [
            None if not math.isfinite(d) else self.scenario.date_of(int(d))
            for d in days
        ]

    @cached_property
    def replications(self) -> pd.DataFrame:
        """One row per replication: clearance date and day, then every figure."""
        days = self.figure("clearance_day")
        frame = pd.DataFrame({"replication": self.replication_ids})
        frame["clearance_date"] = pd.to_datetime(self._clearance_dates(days))
        frame["clearance_day"] = pd.array(
            [None if not math.isfinite(d) else int(d) for d in days], dtype="Int64"
        )
        for name in FIGURES:
            if name != "clearance_day":
                frame[name] = self.figure(name)
        for name, values in self._policy_values().items():
            frame[name] = values
        return frame

    # ------------------------------------------------------------------ policy
    def no_go_days(self) -> np.ndarray:
        """No-go days (working days stopped by an incident) per replication."""
        return self._table.extras["no_go_days"].astype(np.int64)

    def rule_firings(self, rule: str) -> np.ndarray:
        """How often a capacity rule fired, per replication."""
        return self._table.extras[f"rule_firings.{rule}"].astype(np.int64)

    def gate_days(self, gate: str) -> np.ndarray:
        """The day each replication opened a gate (+inf: not within the horizon)."""
        return self._table.extras[f"gate_day.{gate}"].copy()

    def _policy_values(self) -> dict[str, Any]:
        """`replications` columns of the ramp policy: no-go days, firings, gates."""
        out: dict[str, Any] = {"no_go_days": self.no_go_days()}
        for rule in self.scenario.capacity.rules:
            out[f"{rule.name}_firings"] = self.rule_firings(rule.name)
        for gate in self.scenario.gates:
            days = self.gate_days(gate.name)
            dates = self._clearance_dates(days)
            out[f"{gate.name}_opening_date"] = pd.to_datetime(dates)
        return out

    def _policy_summary(self) -> dict[str, Any]:
        def stats(values: np.ndarray) -> dict[str, Any]:
            return {k: _json_number(v) for k, v in statistics(values).items()}

        gates = {}
        for gate in self.scenario.gates:
            days = self.gate_days(gate.name)
            gates[gate.name] = {
                "opened_share": float(np.isfinite(days).mean()) if len(days) else None,
                "opening_date": self._date_statistics(days),
            }
        return {
            "no_go_days": stats(self.no_go_days()),
            "rule_firings": {
                rule.name: stats(self.rule_firings(rule.name))
                for rule in self.scenario.capacity.rules
            },
            "gates": gates,
        }

    @cached_property
    def cohort_replications(self) -> pd.DataFrame:
        """As `replications`, one row per replication x cohort."""
        frames = []
        for cohort in self.cohort_names:
            days = self.figure("clearance_day", cohort)
            frame = pd.DataFrame(
                {"replication": self.replication_ids, "cohort": cohort}
            )
            frame["clearance_date"] = pd.to_datetime(self._clearance_dates(days))
            frame["clearance_day"] = pd.array(
                [None if not math.isfinite(d) else int(d) for d in days], dtype="Int64"
            )
            for name in FIGURES:
                if name != "clearance_day":
                    frame[name] = self.figure(name, cohort)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def defects(self) -> pd.DataFrame:
        """One row per replication x latent defect: did it exist, when found, hits.

        Columns ``replication, cohort, defect, exists, exposed_from_date,
        found_date, found_day, resumed_date, installations_hit`` (dates empty
        when it never happened within the horizon). Empty without latent defects.
        """
        rows = [
            self._defect_row(replication, record)
            for replication, record in self._table.defects
        ]
        columns = [
            "replication",
            "cohort",
            "defect",
            "exists",
            "exposed_from_date",
            "found_date",
            "found_day",
            "resumed_date",
            "installations_hit",
        ]
        frame = pd.DataFrame(rows, columns=columns)
        for column in ("exposed_from_date", "found_date", "resumed_date"):
            frame[column] = pd.to_datetime(frame[column])
        frame["found_day"] = frame["found_day"].astype("Int64")
        frame["exists"] = frame["exists"].astype(bool)
        frame["installations_hit"] = frame["installations_hit"].astype(np.int64)
        return frame

    def _defect_row(self, replication: int, record: DefectRecord) -> dict[str, Any]:
        def when(day: int | None) -> date | None:
            return None if day is None else self.scenario.date_of(day)

        return {
            "replication": replication,
            "cohort": record.cohort,
            "defect": record.defect,
            "exists": record.exists,
            "exposed_from_date": when(record.exposed_from_day),
            "found_date": when(record.found_day),
            "found_day": record.found_day,
            "resumed_date": when(record.resumed_day),
            "installations_hit": record.installations_hit,
        }

    def _defect_summary(self) -> dict[str, Any]:
        """Per defect: share of replications where it existed / was found, hits."""
        out: dict[str, Any] = {}
        frame = self.defects
        for (cohort, defect), rows in frame.groupby(["cohort", "defect"], sort=False):
            existed = rows[rows["exists"]]
            found = existed["found_day"].dropna()
            out[f"{cohort}.{defect}"] = {
                "existed_share": float(rows["exists"].mean()),
                "found_share_of_existing": (
                    float(len(found) / len(existed)) if len(existed) else None
                ),
                "installations_hit": {
                    k: _json_number(v)
                    for k, v in statistics(rows["installations_hit"]).items()
                },
                "installations_hit_when_existing": {
                    k: _json_number(v)
                    for k, v in statistics(existed["installations_hit"]).items()
                }
                if len(existed)
                else None,
                "found_day_when_existing": {
                    k: _json_number(v)
                    for k, v in statistics(
                        existed["found_day"].astype(float).fillna(math.inf)
                    ).items()
                }
                if len(existed)
                else None,
            }
        return out

    def series(self, name: str) -> np.ndarray:
        """A daily series of every replication: array (replications, days, cohorts).

        ``name`` is a `.daily` column, or ``"remaining"`` (installations not yet
        resolved: pending, queued, stalled, rolled back or impaired), or
        ``"cumulative_migrated"`` (migrated + impaired). Loads the whole series.
        """
        return sum(self.stacked(column) for column in _series_columns(name))

    def bands(
        self,
        name: str,
        cohort: str | None = None,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    ) -> pd.DataFrame:
        """Per-date type-1 quantiles across replications of a daily series.

        Overall bands are quantiles of each replication's all-cohort total, never
        sums of per-cohort quantiles. Columns: ``date`` then ``p10, p50, ...``.
        Only the ``(replications, days)`` matrix of the series is held, never the
        daily rows.
        """
        index = None if cohort is None else self.cohort_names.index(cohort)
        matrix = self._source.matrix(_series_columns(name), index)
        return _bands(matrix, self.dates, quantiles)

    def backlog_bands(self, cohort: str | None = None) -> pd.DataFrame:
        """Remaining installations per date: P10, P50 and P90 across replications."""
        return self.bands("remaining", cohort)

    # ------------------------------------------------------------------ summary
    def _date_statistics(self, days: np.ndarray) -> dict[str, str | None]:
        """Clearance dates per statistic, ISO; "after <horizon end>" when not cleared."""
        out: dict[str, str | None] = {}
        for name, value in statistics(days).items():
            if name == "mean":
                continue
            if value is None or not math.isfinite(value):
                out[name] = f"after {self.scenario.end_date.isoformat()}"
            else:
                out[name] = self.scenario.date_of(int(value)).isoformat()
        return out

    def _figure_statistics(self, cohort: str | None) -> dict[str, dict[str, Any]]:
        return {
            name: {
                k: _json_number(v)
                for k, v in statistics(self.figure(name, cohort)).items()
            }
            for name in FIGURES
        }

    @cached_property
    def summary(self) -> dict[str, Any]:
        """Statistics of every figure with provenance; what summary.json holds.

        Sections added with `annotate` follow the base keys.
        """
        return {**self._base_summary, **self._sections}

    @cached_property
    def _base_summary(self) -> dict[str, Any]:
        days = self.clearance_days()
        cohorts = {}
        for cohort in self.cohort_names:
            cohort_days = self.clearance_days(cohort)
            cohorts[cohort] = {
                "cleared_share": float(np.isfinite(cohort_days).mean()),
                "clearance_date": self._date_statistics(cohort_days),
                "figures": self._figure_statistics(cohort),
            }
        return {
            "migsim_version": __version__,
            "seed": self.seed,
            "replications": self.n_replications,
            "scenario_sha256": self.scenario.sha256,
            "scenario": self.scenario.to_dict(),
            "start_date": self.scenario.start_date.isoformat(),
            "end_date": self.scenario.end_date.isoformat(),
            "installations": self.scenario.installations,
            "cleared_share": float(np.isfinite(days).mean()) if len(days) else None,
            "clearance_date": self._date_statistics(days),
            "figures": self._figure_statistics(None),
            "cohorts": cohorts,
            "policy": self._policy_summary(),
            "defects": self._defect_summary(),
            "timing": self.timing,
        }

    @property
    def has_daily(self) -> bool:
        """Whether daily rows were kept (so `daily`, `bands` and backlog.png work)."""
        return not isinstance(self._source, _NoSource)

    # ------------------------------------------------------------------ output
    def write(
        self, directory: str | Path, *, overwrite: bool = False, daily: bool = True
    ) -> Path:
        """Write every output file to ``directory`` atomically.

        Files go to a temporary sibling directory that is renamed into place only
        when complete, so a failed write never leaves a directory that looks like
        a result. An existing directory is replaced only with ``overwrite``. A
        streamed ``daily.parquet`` is hard-linked (or copied) from the run's file,
        never rebuilt in memory. A run that kept no daily rows writes neither
        ``daily.parquet`` nor ``backlog.png``.
        """
        target = Path(directory)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists (use --overwrite to replace it)")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; results are not
        try:
            if daily and self.has_daily:
                if self.daily_path is not None:
                    _link_or_copy(self.daily_path, staging / "daily.parquet")
                else:
                    self.daily.to_parquet(staging / "daily.parquet", index=False)
            self.replications.to_csv(staging / "replications.csv", index=False)
            self.cohort_replications.to_csv(
                staging / "cohort_replications.csv", index=False
            )
            if self._table.defects:
                self.defects.to_csv(staging / "defects.csv", index=False)
            (staging / "summary.json").write_text(
                json.dumps(self.summary, indent=2) + "\n", encoding="utf-8"
            )
            (staging / "scenario.yaml").write_text(
                self.scenario.to_yaml(), encoding="utf-8"
            )
            if self.has_daily:
                figure = backlog_fan_chart(self.backlog_bands(), self.scenario.name)
                figure.savefig(staging / "backlog.png", dpi=110)
                plt.close(figure)
            replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target


def _series_columns(name: str) -> tuple[str, ...]:
    """The daily columns a series sums: ``remaining``, ``cumulative_migrated``."""
    if name == "remaining":
        return IN_FLIGHT
    if name == "cumulative_migrated":
        return ("migrated", "impaired")
    return (name,)


def _bands(
    matrix: np.ndarray, dates: pd.DatetimeIndex, quantiles: Sequence[float]
) -> pd.DataFrame:
    """Type-1 quantiles per date of a ``(replications, days)`` matrix (sorted in
    place: the caller hands it over)."""
    matrix.sort(axis=0)
    n = len(matrix)
    widen = np.int64 if matrix.dtype.kind == "i" else matrix.dtype
    columns = {
        f"p{round(q * 100)}": matrix[max(0, math.ceil(q * n - 1e-12) - 1)].astype(widen)
        for q in quantiles
    }
    return pd.DataFrame({"date": dates, **columns})


def file_bands(
    path: str | Path,
    scenario: Scenario,
    replications: int,
    name: str,
    cohort: str | None = None,
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
) -> pd.DataFrame:
    """`Results.bands` of a ``daily.parquet`` on disk, read chunk by chunk.

    Only the ``(replications, days)`` matrix of the series is held. The policy's
    day columns (one value per date) are counted once, not once per cohort.
    """
    names = [c.name for c in scenario.cohorts]
    index = None if cohort is None else names.index(cohort)
    source = _FileSource(
        Path(path), scenario.horizon_days, len(names), replications, DAY_COLUMNS
    )
    dates = pd.date_range(scenario.start_date, periods=scenario.horizon_days)
    return _bands(source.matrix(_series_columns(name), index), dates, quantiles)


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link a finished file (same file system), else copy it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def replace_dir(staging: Path, target: Path) -> None:
    """Move a finished staging directory into place, replacing any old one.

    Shared by every command that writes an output directory atomically.
    """
    if target.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, trash / "old")
        os.replace(staging, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, target)
