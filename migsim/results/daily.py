"""Daily rows: one row per replication x date x cohort, in memory or streamed.

- `daily_frame` / `daily_table`: the tidy rows of some replications' logs, as a
  pandas frame or an Arrow table built straight from the arrays;
- `Batch`: what a worker sends back for a batch of replications (figures, daily
  rows and the replications that failed); `DailyWriter` appends batches to one
  Parquet file in replication order;
- sources: where a `Results` reads daily series from (the logs, the Parquet
  file chunk by chunk, or nothing for a run that kept no daily rows);
- `file_bands`: per-date type-1 quantile bands of a ``daily.parquet`` on disk,
  holding only the ``(replications, days)`` matrix of the series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from migsim.common.errors import MigsimError
from migsim.common.files import named_as
from migsim.common.stats import quantile_index
from migsim.model.scenario import Scenario
from migsim.results.figures import FigureTable, add_up
from migsim.sim.policy import DAY_COLUMNS
from migsim.sim.records import AWAITING_VISIT, FLOWS, IN_FLIGHT, STATES, RunLog

__all__ = [
    "EACH",
    "Batch",
    "SCENARIO_KEY",
    "DailyWriter",
    "Failure",
    "FileSource",
    "LogSource",
    "NoSource",
    "Series",
    "daily_frame",
    "daily_table",
    "bands_of",
    "file_bands",
    "series_columns",
    "signed_sum",
    "with_scenario",
    "write_daily",
]


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
    for column, values in _log_columns(logs, n_cohorts):
        text = values.dtype.kind in "OU"
        frame[column] = pd.Categorical(values) if text else values
    return frame


def _log_columns(
    logs: Sequence[RunLog], n_cohorts: int
) -> Iterator[tuple[str, np.ndarray]]:
    """The daily columns after ``replication, date, cohort`` of some logs
    (in replication order), one at a time, flat in row order: the states, the
    flows, any extra cohort columns, then the day columns, each repeated on
    every cohort row of its date. `daily_frame` and `daily_table` both take
    them from here, so the two give the same columns in the same order."""
    first = logs[0] if logs else None
    extra = [
        k
        for k in (first.cohort_columns if first else {})
        if k not in STATES and k not in FLOWS
    ]
    for column in (*STATES, *FLOWS, *extra):
        flat = (
            np.stack([log.cohort_columns[column] for log in logs]).reshape(-1)
            if logs
            else np.array([], dtype=np.int64)
        )
        yield column, flat
    for column in first.day_columns if first else {}:
        values = np.stack([log.day_columns[column] for log in logs])
        yield column, np.repeat(values.reshape(-1), n_cohorts)


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
    for column, values in _log_columns(logs, n_cohorts):
        array = pa.array(values)
        if values.dtype.kind in "OU":  # text: a category, as in `daily_frame`
            array = array.dictionary_encode()
        columns[column] = array
    return pa.table(columns)


@dataclass(frozen=True)
class Failure:
    """A replication that raised instead of finishing: recorded, not fatal.

    ``error`` is one line (exception type and message); ``traceback`` the whole
    story. Replication ``replication`` of run seed ``seed`` reproduces it alone
    (its streams depend on nothing else).
    """

    replication: int
    seed: int
    error: str
    traceback: str

    def to_dict(self, *, traceback: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "replication": self.replication,
            "seed": self.seed,
            "error": self.error,
        }
        if traceback:
            out["traceback"] = self.traceback
        return out


@dataclass
class Batch:
    """What a worker sends back for a batch of replications: figures and daily rows.

    ``daily`` is a pyarrow table of `daily_frame` rows, or ``None`` when the run
    keeps no daily rows (or every replication of the batch failed).
    ``day_columns`` names the columns that hold one value per date (repeated on
    every cohort row). ``failures`` are the replications that raised; the
    figures and daily rows are those of the others. ``twins``: the figures of
    the batch's twins (`migsim.results.variance.twinned`), or ``None``.
    """

    figures: FigureTable
    daily: pa.Table | None
    day_columns: list[str]
    failures: list[Failure] = field(default_factory=list)
    twins: FigureTable | None = None

    @classmethod
    def from_logs(
        cls,
        scenario: Scenario,
        logs: Sequence[RunLog],
        daily: bool,
        failures: Sequence[Failure] = (),
        twins: Sequence[RunLog] = (),
    ) -> Batch:
        table = daily_table(scenario, logs) if daily and logs else None
        days = list(logs[0].day_columns) if logs else []
        twin_table = FigureTable.from_logs(scenario, twins) if twins else None
        return cls(
            FigureTable.from_logs(scenario, logs),
            table,
            days,
            list(failures),
            twin_table,
        )


#: The key of ``daily.parquet``'s footer naming the resolved scenario (seed
#: included) whose replications it holds: a run folder's ``summary.json`` says
#: the same, so a ``daily.parquet`` copied in from another run is told apart.
SCENARIO_KEY = b"migsim_scenario_sha256"


def with_scenario(schema: pa.Schema, scenario_sha256: str | None) -> pa.Schema:
    """``schema`` with `SCENARIO_KEY` in its metadata (as it was without one)."""
    if scenario_sha256 is None:
        return schema
    return schema.with_metadata(
        {**(schema.metadata or {}), SCENARIO_KEY: scenario_sha256.encode()}
    )


def write_daily(frame: pd.DataFrame, path: Path, scenario_sha256: str) -> None:
    """Daily rows held in memory to ``daily.parquet``, naming their scenario."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = with_scenario(table.schema, scenario_sha256)
    pq.write_table(table.replace_schema_metadata(schema.metadata), path)


class DailyWriter:
    """Appends batches of daily rows to one Parquet file, one row group per batch.

    Batches must arrive in replication order, so the file reads back sorted by
    ``replication, date, cohort`` whatever the worker count. With
    ``scenario_sha256`` the file's footer names the scenario (`SCENARIO_KEY`).
    """

    def __init__(
        self,
        path: str | Path,
        scenario_sha256: str | None = None,
        shown: str | Path | None = None,
    ):
        self.path = Path(path)
        self.scenario_sha256 = scenario_sha256
        #: What a failed write names: a nameless spill file's folder
        #: (`SpillFile.where`), not ``/proc/self/fd/N``, nor nothing at all.
        self.shown = Path(shown) if shown is not None else self.path
        self._writer: pq.ParquetWriter | None = None

    def append(self, table: pa.Table) -> None:
        try:
            if self._writer is None:
                schema = with_scenario(table.schema, self.scenario_sha256)
                self._writer = pq.ParquetWriter(self.path, schema)
            self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        except OSError as exc:  # a full disk: "Error writing bytes to file..."
            raise named_as(exc, self.path, self.shown) from exc

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except OSError as exc:
                raise named_as(exc, self.path, self.shown) from exc


# --------------------------------------------------------------------------- sources
#: `matrix`'s ``cohort`` for every cohort at once: ``(reps, days, cohorts)``.
EACH = "each"


def _reduce(block: np.ndarray, cohort: int | str | None, per_date: bool) -> np.ndarray:
    """``(reps, days, cohorts)`` -> ``(reps, days)``: a cohort, or the total
    (or, with `EACH`, the block as it is).

    A ``per_date`` column holds one value per date repeated on every cohort row:
    it is taken once, never summed over cohorts (nor split by cohort).
    """
    if per_date:
        if cohort == EACH:
            raise ValueError("a per-date column has no value per cohort")
        return block[:, :, 0]
    if cohort == EACH:
        return block
    if cohort is None:
        return block.sum(axis=2)
    assert isinstance(cohort, int)
    return block[:, :, cohort]


class LogSource:
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

    def matrix(self, series: Series, cohort: int | str | None) -> np.ndarray:
        per_date = set(self.logs[0].day_columns) if self.logs else set()
        return signed_sum(
            lambda c: _reduce(self.stacked(c), cohort, c in per_date), *series
        )


class FileSource:
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
        # no pre-buffering: it reads ahead across row groups, holding tens of
        # megabytes more for a large run (and is slower on a local file)
        parquet = pq.ParquetFile(self.path, pre_buffer=False)
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

    def matrix(self, series: Series, cohort: int | str | None) -> np.ndarray:
        """The ``(replications, days)`` `Series` (``(replications, days,
        cohorts)`` for `EACH`); int32 while the counts fit in it."""
        out: np.ndarray | None = None
        filled = 0
        for block in self._blocks(series.columns):
            parts = {
                c: _reduce(block[c], cohort, c in self.day_columns)
                for c in series.columns
            }
            reduced = signed_sum(parts.__getitem__, *series)
            if out is None:
                narrow = reduced.dtype.kind == "i" and reduced.dtype.itemsize > 4
                out = np.empty(
                    (self.n_reps, *reduced.shape[1:]),
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


class NoSource:
    """A run that kept no daily rows (``run(..., daily=False)``)."""

    def _refuse(self, *args: Any) -> Any:
        raise MigsimError(
            "this run kept no daily rows (it ran with daily=False): daily series "
            "and bands are not available"
        )

    frame = matrix = stacked = _refuse


def signed_sum(
    read: Callable[[str], np.ndarray], columns: Sequence[str], minus: Sequence[str]
) -> np.ndarray:
    """``columns`` added up (each read by ``read``), less ``minus`` added up: a
    `Series` (``signed_sum(read, *series)``)."""
    total = add_up(read(c) for c in columns)
    return total - add_up(read(c) for c in minus) if minus else total


# --------------------------------------------------------------------------- bands
class Series(NamedTuple):
    """The daily columns a series adds up (``plus``), less those in ``minus``."""

    plus: tuple[str, ...]
    minus: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the series reads."""
        return (*self.plus, *self.minus)


def series_columns(name: str, scenario: Scenario) -> Series:
    """The daily columns of a series: ``remaining``, ``cumulative_migrated`` or
    a column of its own.

    ``remaining`` is what the clearance rule counts as not yet resolved: the
    in-flight states and, when a cohort has a dumb section (``scenario``'s), the
    dumb devices awaiting remote recovery (``dumb`` less those awaiting a site
    visit). So a run is cleared on the first day ``remaining`` falls to what the
    clearance share leaves, and a backlog of 0 means cleared.
    """
    if name == "remaining":
        if any(c.dumb is not None for c in scenario.cohorts):
            return Series((*IN_FLIGHT, "dumb"), (AWAITING_VISIT,))
        return Series(IN_FLIGHT)
    if name == "cumulative_migrated":
        return Series(("migrated", "impaired"))
    return Series((name,))


def bands_of(
    matrix: np.ndarray,
    dates: pd.DatetimeIndex,
    quantiles: Sequence[float],
    scale: np.ndarray | None = None,
) -> pd.DataFrame:
    """Type-1 quantiles per date of a ``(replications, days)`` matrix (sorted in
    place: the caller hands it over).

    ``scale``, one factor per replication (row), multiplies each replication's
    series before the quantiles: counts in meters at each replication's own
    meters per installation.
    """
    if scale is not None:
        return _scaled_bands(matrix, dates, quantiles, scale)
    matrix.sort(axis=0)
    n = len(matrix)
    widen = np.int64 if matrix.dtype.kind == "i" else matrix.dtype
    columns = {
        f"p{round(q * 100)}": matrix[quantile_index(n, q)].astype(widen)
        for q in quantiles
    }
    return pd.DataFrame({"date": dates, **columns})


def block_bands(
    block: np.ndarray,
    dates: pd.DatetimeIndex,
    quantiles: Sequence[float],
    scales: Sequence[np.ndarray | None],
    cohorts: Sequence[str],
) -> list[dict[str | None, pd.DataFrame]]:
    """`bands_of` the total (key ``None``) and each of the ``cohorts`` of a
    ``(replications, days, cohorts)`` block of whole counts, at each of
    ``scales``.

    The total is summed as narrow as it fits (the same in any order), and
    `SCALED_DAYS` days at a time (`_day_bands`): the whole total beside the
    block (10,000 replications of the baseline: 15 MB) was the largest part of
    what a run's peak memory grew by with the replications. Scaled bands copy
    what they sort; the counts as they are sort in place (each slice read
    once), so they come last.
    """
    limit = np.iinfo(block.dtype).max // max(1, block.shape[2])
    largest = max(int(block.max(initial=0)), -int(block.min(initial=0)))
    dtype = block.dtype if largest <= limit else np.int64

    def total(start: int, stop: int) -> np.ndarray:
        return block[:, start:stop].sum(axis=2, dtype=dtype)

    last = sorted(range(len(scales)), key=lambda i: scales[i] is None)
    out: list[dict[str | None, pd.DataFrame]] = [{} for _ in scales]
    for i in last:
        out[i][None] = _day_bands(
            total, block.shape[:2], dtype, dates, quantiles, scales[i]
        )
    for index, cohort in enumerate(cohorts):
        for i in last:
            out[i][cohort] = bands_of(block[:, :, index], dates, quantiles, scales[i])
    return out


#: Days scaled (or summed) and sorted at a time by `_day_bands`.
SCALED_DAYS = 64


def _scaled_bands(
    matrix: np.ndarray,
    dates: pd.DatetimeIndex,
    quantiles: Sequence[float],
    scale: np.ndarray,
) -> pd.DataFrame:
    """`bands_of` with each row times its factor, `SCALED_DAYS` days at a
    time: the scaled copy of the whole matrix (10,000 replications of the
    baseline: 29 MB a series) raised the run's peak memory by 20 MB when
    ``bands_meters.csv`` was written; a few days' copy does not."""
    return _day_bands(
        lambda start, stop: matrix[:, start:stop],
        matrix.shape,
        matrix.dtype,
        dates,
        quantiles,
        scale,
    )


def _day_bands(
    days_of: Callable[[int, int], np.ndarray],
    shape: tuple[int, int],
    dtype: Any,
    dates: pd.DatetimeIndex,
    quantiles: Sequence[float],
    scale: np.ndarray | None,
) -> pd.DataFrame:
    """`bands_of` a ``(replications, days)`` matrix of ``shape`` and ``dtype``
    that is never held whole: ``days_of(start, stop)`` gives its days
    ``start:stop``, a new array sorted in place (or, with ``scale``, a view
    scaled into a copy), `SCALED_DAYS` days at a time."""
    n, days = shape
    factors = None if scale is None else np.asarray(scale, dtype=float)[:, None]
    widen = np.dtype(float if factors is not None else dtype)
    if widen.kind == "i":
        widen = np.dtype(np.int64)
    rows = [quantile_index(n, q) for q in quantiles]
    columns = {f"p{round(q * 100)}": np.empty(days, widen) for q in quantiles}
    for start in range(0, days, SCALED_DAYS):
        part = days_of(start, start + SCALED_DAYS)
        if factors is not None:
            part = part * factors
        part.sort(axis=0)
        for column, row in zip(columns.values(), rows, strict=True):
            column[start : start + SCALED_DAYS] = part[row]
    return pd.DataFrame({"date": dates, **columns})


def file_bands(
    path: str | Path,
    scenario: Scenario,
    replications: int,
    name: str,
    cohort: str | None = None,
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    scale: np.ndarray | None = None,
) -> pd.DataFrame:
    """`Results.bands` of a ``daily.parquet`` on disk, read chunk by chunk.

    Only the ``(replications, days)`` matrix of the series is held. The policy's
    day columns (one value per date) are counted once, not once per cohort.
    ``scale``: a factor per replication (see `bands_of`).
    """
    names = [c.name for c in scenario.cohorts]
    index = None if cohort is None else names.index(cohort)
    source = FileSource(
        Path(path), scenario.horizon_days, len(names), replications, DAY_COLUMNS
    )
    dates = pd.date_range(scenario.start_date, periods=scenario.horizon_days)
    matrix = source.matrix(series_columns(name, scenario), index)
    return bands_of(matrix, dates, quantiles, scale)
