"""Actuals: what really happened, read from a file and validated in full.

Two shapes are accepted, as CSV or Parquet (by the file's suffix):

- **daily flows**: one row per date x cohort with any of the flow columns of
  `Results.daily` (``attempts, successes, stalls, rollbacks, fix_forwards, dumbs,
  stall_completions, stall_failures, restorations, abandons``) and optionally the
  end-of-day states (``pending, queued, ..., abandoned``). A column may be missing
  where it was not reported. The ``.daily`` of any migsim run is valid actuals (a
  ``replication`` column selects one replication; other columns are ignored).
- **coarse**: ``date, cumulative_migrated`` (migrated + impaired at the end of that
  day), optionally per ``cohort``, e.g. monthly programme totals. They update no
  rates; backtests score forecasts against them.

Counts are installations, or meters (``unit="meters"``), converted with the
scenario's ``meters_per_installation``. Every problem is an `ActualsError` whose
one-line message names the file, the row (1 = the first row under the header) and
the column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from migsim.common.errors import ActualsError
from migsim.common.yamlio import read_regular
from migsim.common.yamlio import shown as _shortened
from migsim.evidence.actuals_checks import (
    COARSE_COLUMN,
    OUTCOME_COLUMNS,
    check_cohorts,
    check_rows,
    first,
    magnitude,
    plain,
)
from migsim.model.limits import LATEST_DATE
from migsim.model.scenario import Scenario, load_scenario
from migsim.sim.records import FLOWS, STATES

__all__ = [
    "CLASS_COLUMNS",
    "RECOVERY_COLUMNS",
    "COARSE_COLUMN",
    "OUTCOME_COLUMNS",
    "POLICY_COLUMNS",
    "Actuals",
    "as_of_date",
    "read_actuals",
]

#: Optional class columns of `.daily`: attempts made at volume-stressed rates and
#: latent-defect hits. Calibration sets them aside from the normal class's flows.
CLASS_COLUMNS = ("stressed_attempts", "defect_hits")
#: Optional: dumb devices recovered remotely each day and the dumb devices that
#: will not be, awaiting a site visit (`.daily` has both); the state on an as-of
#: date reads them (devices left awaiting recovery, dumb net of it).
RECOVERY_COLUMNS = ("dumb_recoveries", "awaiting_site_visit")
#: The ramp policy's day columns of `.daily` (the same on every cohort's row).
POLICY_COLUMNS = ("daily_cap", "cap_rule", "no_go", "rule_fired", "els_backlog")
_COUNT_COLUMNS = (*FLOWS, *STATES, COARSE_COLUMN)
_PARQUET = {".parquet", ".pq"}
Unit = Literal["installations", "meters"]


def as_of_date(value: object) -> date:
    """An as-of date given from Python, or a TypeError saying what one is.

    A string, a datetime (a pandas Timestamp is one) or a numpy datetime64 was
    compared with the scenario's dates deep inside: "'<=' not supported",
    "Cannot compare Timestamp with datetime.date" from pandas, or an
    AttributeError on ``isoformat``. A datetime is refused rather than cut to
    its day, as a row of actuals with a time of day is: the day is the unit.
    """
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise TypeError(
        f"as_of must be a datetime.date such as date(2024, 1, 31), not {value!r}"
    )


@dataclass(frozen=True)
class Actuals:
    """Validated actuals, in installations.

    Attributes
    ----------
    path
        The file as the user named it.
    kind
        ``"flows"`` (daily flows and maybe states) or ``"coarse"``
        (``cumulative_migrated`` only).
    unit
        The unit of the file (``installations`` or ``meters``); ``frame`` holds
        installations either way (meters divided by ``meters_per_installation``).
    frame
        One row per date x cohort: ``date`` (datetime64), ``cohort`` (a cohort
        name, or ``None`` for a programme-wide coarse file) and the count columns
        present, as floats, and any `CLASS_COLUMNS` (``stressed_attempts``,
        ``defect_hits``) and `RECOVERY_COLUMNS` (``dumb_recoveries``) the file has.
    columns
        The count columns present, in `_COUNT_COLUMNS` order.
    note
        What reading chose, in words (e.g. which replication of a run's daily).
    policy_columns
        The ramp policy's day columns present (`POLICY_COLUMNS`: ``daily_cap``,
        ``cap_rule``, ``no_go``, ``rule_fired``, ``els_backlog``, as a run's
        ``.daily`` has them): a forecast reads the policy's state from them.
    """

    path: str
    kind: Literal["flows", "coarse"]
    unit: Unit
    frame: pd.DataFrame
    columns: tuple[str, ...]
    note: str = ""
    policy_columns: tuple[str, ...] = ()
    #: the sha256 of the file's bytes as read: what a forecast learned from,
    #: whatever later became of the file at ``path``
    sha256: str = ""

    # ------------------------------------------------------------------ queries
    def has(self, *columns: str) -> bool:
        return all(c in self.columns for c in columns)

    @property
    def per_cohort(self) -> bool:
        return bool(self.frame["cohort"].notna().all())

    @property
    def first_date(self) -> date:
        return self.frame["date"].min().date()

    @property
    def last_date(self) -> date:
        return self.frame["date"].max().date()

    @property
    def n_attempts(self) -> int:
        """Attempts reported in the actuals (0 when not reported)."""
        return int(round(self.frame["attempts"].sum())) if self.has("attempts") else 0

    def provenance(self) -> dict[str, str]:
        """The keys a result file names its actuals by (calibration.json,
        backtest.json): the file as named, the sha256 of its bytes as read, its
        kind and its unit; enough to tell later which file it learned from."""
        return {
            "actuals": self.path,
            "actuals_sha256": self.sha256,
            "actuals_kind": self.kind,
            "actuals_unit": self.unit,
        }

    def up_to(self, when: date) -> Actuals:
        """The rows dated on or before ``when``."""
        return replace(self, frame=self.frame[self.frame["date"] <= pd.Timestamp(when)])

    def after(self, when: date) -> Actuals:
        """The rows dated after ``when``."""
        return replace(self, frame=self.frame[self.frame["date"] > pd.Timestamp(when)])

    def cohort_frame(self, cohort: str) -> pd.DataFrame:
        """The rows of one cohort (empty when it has none)."""
        frame = self._by_cohort.get(cohort)
        return frame if frame is not None else self.frame.iloc[:0]

    @cached_property
    def _by_cohort(self) -> dict[str, pd.DataFrame]:
        if self.frame["cohort"].isna().all():
            return {}
        return {str(k): g for k, g in self.frame.groupby("cohort", sort=False)}

    def can_track_migrated(self) -> bool:
        """Whether cumulative migrated (migrated + impaired) follows from the file."""
        return (
            self.kind == "coarse"
            or self.has("migrated", "impaired")
            or self.has("successes", "stall_completions", "fix_forwards")
        )

    def cumulative_migrated(self, by_cohort: bool = False) -> pd.DataFrame:
        """Migrated + impaired at the end of each reported date.

        From ``cumulative_migrated`` (coarse), the end-of-day states, or else the
        running sum of successes, stall completions and fix forwards (daily flows
        are then taken to start at the programme's start, with nothing migrated
        before the first row). Programme-wide totals carry each cohort's last
        reported figure forward. Columns ``date`` (and ``cohort``),
        ``cumulative_migrated``.
        """
        frame = self.frame
        if self.kind == "coarse":
            values = frame[COARSE_COLUMN]
        elif self.has("migrated", "impaired"):
            values = frame["migrated"] + frame["impaired"]
        elif self.has("successes", "stall_completions", "fix_forwards"):
            gained = (
                frame["successes"] + frame["stall_completions"] + frame["fix_forwards"]
            )
            values = gained.groupby(frame["cohort"], dropna=False, sort=False).cumsum()
        else:
            raise ActualsError(
                f"{self.path}: cumulative migrated cannot be derived: the file has "
                "neither cumulative_migrated, nor migrated and impaired, nor "
                "successes, "
                "stall_completions and fix_forwards"
            )
        tidy = pd.DataFrame(
            {
                "date": frame["date"],
                "cohort": frame["cohort"],
                COARSE_COLUMN: values.astype(float),
            }
        )
        if by_cohort or not self.per_cohort:
            out = tidy if by_cohort else tidy.drop(columns="cohort")
            return out.reset_index(drop=True)
        wide = tidy.pivot(index="date", columns="cohort", values=COARSE_COLUMN)
        total = wide.sort_index().ffill().fillna(0.0).sum(axis=1)
        return pd.DataFrame({"date": total.index, COARSE_COLUMN: total.to_numpy()})

    def remaining(
        self, installations: int, scenario: Scenario | None = None
    ) -> pd.DataFrame:
        """Installations not yet resolved at the end of each date, all cohorts,
        as a run counts its backlog: ``date, remaining``.

        In-flight installations and dumb devices awaiting remote recovery, from
        the end-of-day states, or else ``installations`` less those resolved by
        the daily flows (a device recovered remotely is back in the backlog:
        one that went dumb, was recovered and migrated leaves it once), or else
        less cumulative migrated. The dumb awaiting remote recovery are the dumb
        less ``awaiting_site_visit``, else estimated from ``scenario``'s recovery
        delay, else none (`migsim.evidence.backlog`).
        """
        from migsim.evidence.backlog import remaining  # it reads Actuals

        return remaining(self, installations, scenario)

    def describe(self) -> str:
        """One line: what the file holds."""
        cohorts = self.frame["cohort"].dropna().unique()
        where = (
            f"{len(cohorts)} cohort{'s' * (len(cohorts) != 1)}"
            if len(cohorts)
            else ("programme totals")
        )
        what = "daily flows" if self.kind == "flows" else "coarse cumulative migrated"
        return (
            f"{self.path}: {what}, {where}, {len(self.frame):,} rows, "
            f"{self.first_date} to {self.last_date}, in {self.unit}"
        )


# --------------------------------------------------------------------------- reading
def read_actuals(
    path: str | Path,
    scenario: Scenario | str | Path | dict[str, Any],
    unit: Unit = "installations",
    replication: int | None = None,
) -> Actuals:
    """Read and validate an actuals file against a scenario.

    Parameters
    ----------
    path
        A ``.csv`` or ``.parquet`` file (see the module docstring for its shape).
    scenario
        Names the cohorts and gives ``meters_per_installation`` and ``start_date``:
        a `Scenario` or anything `load_scenario` takes, as `calibrate` and
        `forecast_as_of` take it (a path or a dict failed on "'str' object has
        no attribute 'start_date'", once the whole file had been read).
    unit
        ``installations`` (default) or ``meters``.
    replication
        For a run's ``.daily`` holding several replications: the one to use
        (default: the lowest).

    Raises
    ------
    ActualsError
        One line naming the file, the row and the column: an unreadable file, an
        unknown cohort, a negative or fractional count, the five first-level
        outcomes summing to more than ``attempts``, a date out of order, repeated
        or before the scenario's start, a date with a time of day (midnight,
        as pandas writes a date-time column, is the date itself), a
        replication that is not a whole number from 0 (as a run numbers them).
    """
    scenario = load_scenario(scenario)
    shown = str(path)
    raw, sha256 = _read_raw(Path(path), shown)
    raw.columns = [str(c).strip() for c in raw.columns]
    rows = np.arange(1, len(raw) + 1)  # row numbers as a reader counts them
    note = ""
    if "replication" in raw.columns:
        keep, note = _one_replication(raw["replication"], rows, shown, replication)
        raw, rows = raw[keep], rows[keep]
    elif replication is not None:  # a run's daily output was meant, not this file
        raise ActualsError(
            f"{shown}: column replication: missing, so there is no replication "
            f"{replication} to choose (--actuals-replication is for a run's "
            "daily.parquet)"
        )
    if "date" not in raw.columns:
        listed = ", ".join(raw.columns) or "none"
        listed = listed if len(listed) <= 200 else listed[:200] + "..."
        raise ActualsError(f"{shown}: column date: missing (columns: {listed})")
    present = tuple(c for c in _COUNT_COLUMNS if c in raw.columns)
    coarse = COARSE_COLUMN in present
    if coarse and len(present) > 1:
        raise ActualsError(
            f"{shown}: column {COARSE_COLUMN}: a coarse file has only date, cohort and "
            f"{COARSE_COLUMN}; this one also has {', '.join(present[:-1])}"
        )
    if not present:
        raise ActualsError(
            f"{shown}: no count columns: expected daily flows ({', '.join(FLOWS)}) "
            f"or {COARSE_COLUMN}"
        )
    if raw.empty:
        raise ActualsError(f"{shown}: no rows")
    columns: dict[str, np.ndarray] = {
        "date": _dates(raw["date"], rows, shown, scenario),
        "cohort": _cohorts(raw, rows, shown, scenario, coarse),
    }
    for column in present:
        columns[column] = _counts(raw[column], rows, shown, column)
    check_rows(columns, rows, shown, present, coarse)
    extra = tuple(
        c
        for c in (*CLASS_COLUMNS, *RECOVERY_COLUMNS)
        if c in raw.columns and not coarse
    )
    for column in extra:
        columns[column] = _counts(raw[column], rows, shown, column)
    if unit == "meters":
        if scenario.meters_per_installation is None:
            raise ActualsError(
                f"{shown}: counts in meters need the scenario's meters_per_installation"
            )
        for column in (*present, *extra):
            columns[column] = columns[column] / scenario.meters_per_installation
    elif unit != "installations":
        raise ActualsError(f"{shown}: unknown unit {unit!r} (installations or meters)")
    check_cohorts(columns, rows, shown, scenario, present, unit)
    policy = tuple(c for c in POLICY_COLUMNS if c in raw.columns and not coarse)
    for column in ("daily_cap", "els_backlog"):
        if column in policy:
            columns[column] = _counts(raw[column], rows, shown, column)
    for column in ("cap_rule", "rule_fired"):
        if column in policy:
            text = raw[column].astype(object).where(raw[column].notna(), "")
            columns[column] = text.astype(str).str.strip().to_numpy(dtype=object)
    if "no_go" in policy:
        columns["no_go"] = _flags(raw["no_go"], rows, shown)
    frame = pd.DataFrame(columns)
    return Actuals(
        shown,
        "coarse" if coarse else "flows",
        unit,
        frame,
        present,
        note,
        policy,
        sha256,
    )


def _flags(column: pd.Series, rows: np.ndarray, shown: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=bool)
    text = column.astype(str).str.strip().str.lower()
    truth = {"true": True, "1": True, "false": False, "0": False, "": False}
    bad = ~text.isin(list(truth))
    if bad.any():
        i = first(bad.to_numpy())
        raise ActualsError(
            f"{shown}: row {rows[i]}, column no_go: not true or false: "
            f"{_as_written(column.iloc[i])}"
        )
    return text.map(truth).to_numpy(dtype=bool)


def _read_raw(path: Path, shown: str) -> tuple[pd.DataFrame, str]:
    """The file's rows as text (CSV) or as stored (Parquet), and the sha256
    of its bytes."""
    try:  # a regular file only: a FIFO or a device would block the reader
        data = read_regular(path, None)
    except FileNotFoundError:
        raise ActualsError(f"{shown}: no such file") from None
    except OSError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ActualsError(f"{shown}: cannot read: {reason}") from None
    digest = hashlib.sha256(data).hexdigest()
    parquet = path.suffix.lower() in _PARQUET
    if not parquet:
        _fields_within_header(data, shown)
    try:
        if parquet:  # its columns checked first: the reader fails on a name twice
            reader = _parquet_reader(data)
            _columns_once([str(n).strip() for n in reader.schema_arrow.names], shown)
            table = reader.read(use_threads=False, use_pandas_metadata=True)
            return table.to_pandas(use_threads=False), digest
        raw = pd.read_csv(
            io.BytesIO(data), dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except ActualsError:
        raise
    except pd.errors.EmptyDataError:
        raise ActualsError(f"{shown}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())
        raise ActualsError(f"{shown}: cannot read: {reason}") from None
    except (OSError, ValueError, ImportError) as exc:  # pyarrow's errors are these
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ActualsError(f"{shown}: cannot read: {reason}") from None
    return raw, digest


def _parquet_reader(data: bytes) -> pq.ParquetFile:
    """A reader of Parquet bytes that leaves Arrow's thread pools alone.

    Read from a Python file (``io.BytesIO``), with threads, Arrow's own threads
    fetched its pieces and dropped them after the read had returned; dropping
    one takes the interpreter's lock, and a process that ended meanwhile (a
    forecast refused right after reading, a quick calibrate) was aborted
    ("terminate called without an active exception"). The bytes are copied into
    Arrow's memory and read in this thread (`_read_raw` asks for no threads):
    no thread is started, none holds Python's objects, and the worker processes
    a forecast forks next are forked from a process without Arrow's threads.
    """
    stream = pa.BufferOutputStream()
    stream.write(data)
    return pq.ParquetFile(pa.BufferReader(stream.getvalue()))


def _fields_within_header(data: bytes, shown: str) -> None:
    """Refuse a CSV header naming a column twice (the reader renamed the second
    ``attempts.1``, then ignored it without a word) and a row with more fields
    than the header (the reader took the first fields as an index, and every
    column shifted: a good date was reported as "not a date: '0'")."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ActualsError(f"{shown}: cannot read: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    row = 0
    while True:
        try:
            fields = next(reader, None)
        except csv.Error as exc:  # e.g. a field over csv's limit of 131,072
            where = f"row {row + 1}" if header is not None else "header"
            raise ActualsError(f"{shown}: {where}: cannot read: {exc}") from None
        if fields is None:
            break
        if not fields:
            continue  # a blank line, as the reader skips it
        if header is None:
            header = [name.strip() for name in fields]
            _columns_once(header, shown)
            continue
        row += 1
        if len(fields) > len(header):
            raise ActualsError(
                f"{shown}: row {row}: {len(fields)} fields, more than the "
                f"{len(header)} columns of the header"
            )


def _columns_once(names: list[str], shown: str) -> None:
    """Refuse a column named twice (once spaces are stripped): which of the two
    was meant is unknown."""
    seen: dict[str, int] = {}
    for k, name in enumerate(names, 1):
        if name in seen:
            named = name if len(name) <= 40 else _shortened(name)
            raise ActualsError(
                f"{shown}: column {named}: given twice (columns {seen[name]} and {k})"
            )
        seen[name] = k


def _one_replication(
    column: pd.Series, rows: np.ndarray, shown: str, replication: int | None
) -> tuple[np.ndarray, str]:
    """The rows of one replication (the chosen one, else the lowest) and a note
    saying which, when the file holds several.

    A run numbers its replications 0, 1, 2, ...: a replication of -1 was taken
    as the lowest and read as the history, a Parquet true as replication 1, and
    an infinite one was an OverflowError traceback.
    """
    if pd.api.types.is_bool_dtype(column):
        raise ActualsError(
            f"{shown}: row {rows[0]}, column replication: true/false is not a "
            "replication number"
        )
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        i = first(bad)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column replication: not a whole "
            f"number: {_as_written(column.iloc[i])}"
        )
    negative = values < 0
    if negative.any():
        i = first(negative)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column replication: negative: "
            f"{plain(values[i])} (a run numbers its replications from 0)"
        )
    ids = sorted(int(v) for v in np.unique(values))
    if not ids:  # a header and no rows
        raise ActualsError(f"{shown}: no rows")
    chosen = ids[0] if replication is None else replication
    if chosen not in ids:
        raise ActualsError(
            f"{shown}: column replication: no replication {chosen} "
            f"(the file has {ids[0]}..{ids[-1]})"
        )
    note = ""
    if len(ids) > 1:
        note = f"{shown} holds {len(ids)} replications; using replication {chosen}"
    return values == chosen, note


#: A date as text begins with its year, month and day (``2019-12-02``,
#: ``2019/12/02``, ``20191202``), then maybe a time: pandas also read
#: ``2019-12`` and ``2019`` as the first of the month or year (a month's total
#: dated on its first day) and ``today`` and ``now`` as the clock's date.
_DAY_GIVEN = re.compile(
    r"[0-9]{4}(?:-[0-9]{1,2}-[0-9]{1,2}|/[0-9]{1,2}/[0-9]{1,2}|[0-9]{4})(?:[T ]|$)"
)


def _wall_time(text: str) -> pd.Timestamp:
    """One date-time as written, its time zone (if any) dropped; NaT if none."""
    value = pd.to_datetime(text, format="ISO8601", errors="coerce")
    return value.tz_localize(None) if value.tzinfo is not None else value


def _dates(
    column: pd.Series, rows: np.ndarray, shown: str, scenario: Scenario
) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(column):
        dates = pd.Series(column.to_numpy())
    else:
        text = column.astype(str).str.strip()
        dayless = ~text.str.match(_DAY_GIVEN).to_numpy(dtype=bool)
        if dayless.any():
            i = first(dayless)
            raise ActualsError(
                f"{shown}: row {rows[i]}, column date: not a date: "
                f"{_as_written(column.iloc[i])} (write YYYY-MM-DD)"
            )
        try:
            dates = pd.to_datetime(text, format="ISO8601", errors="coerce")
        except ValueError:  # mixed time zones: each date as written (wall time)
            dates = pd.Series([_wall_time(t) for t in text], dtype="datetime64[us]")
        dates = dates.reset_index(drop=True)
    if dates.dt.tz is not None:
        dates = dates.dt.tz_localize(None)
    bad = dates.isna().to_numpy()
    if bad.any():
        i = first(bad)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column date: not a date: "
            f"{_as_written(column.iloc[i])} (write YYYY-MM-DD)"
        )
    # compare as days: nanosecond timestamps end in 2262 and would wrap silently
    stamps = dates.to_numpy()
    days = stamps.astype("datetime64[D]")
    timed = stamps != days  # a time of day was cut off: 14:30 counted as the day
    if timed.any():
        i = first(timed)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column date: {_as_written(column.iloc[i])} "
            "has a time of day (write YYYY-MM-DD: a row counts a whole day)"
        )
    early = days < np.datetime64(scenario.start_date, "D")
    if early.any():
        i = first(early)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column date: {days[i]} is before the "
            f"scenario's start_date {scenario.start_date}"
        )
    late = days > np.datetime64(LATEST_DATE, "D")
    if late.any():
        i = first(late)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column date: {days[i]} is after "
            f"{LATEST_DATE}, the latest date a scenario may hold"
        )
    return days.astype("datetime64[ns]")


def _cohorts(
    raw: pd.DataFrame, rows: np.ndarray, shown: str, scenario: Scenario, coarse: bool
) -> np.ndarray:
    names = [c.name for c in scenario.cohorts]
    if "cohort" not in raw.columns:
        if coarse:
            return np.full(len(raw), None, dtype=object)  # programme totals
        if len(names) == 1:
            return np.full(len(raw), names[0], dtype=object)
        raise ActualsError(
            f"{shown}: column cohort: missing (the scenario has "
            f"{len(names)} cohorts: {', '.join(names)})"
        )
    cohorts = raw["cohort"].astype(str).str.strip().to_numpy(dtype=object)
    unknown = ~np.isin(cohorts, names)
    if unknown.any():
        i = first(unknown)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column cohort: unknown cohort "
            f"{_as_written(raw['cohort'].iloc[i])} (the scenario has "
            f"{', '.join(names)})"
        )
    return cohorts


def _counts(column: pd.Series, rows: np.ndarray, shown: str, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):  # a Parquet boolean: 0 and 1, silently
        raise ActualsError(
            f"{shown}: row {rows[0]}, column {name}: true/false is not a count"
        )
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=float)
    else:
        values = pd.to_numeric(
            column.astype(str).str.strip(), errors="coerce"
        ).to_numpy(dtype=float)
    missing = np.isnan(values)
    if missing.any():
        i = first(missing)
        shown_value = column.iloc[i]
        if _as_written(shown_value) == "empty" or (
            isinstance(shown_value, str) and not shown_value.strip()
        ):
            reason = "empty (leave a column out where it was not reported)"
        else:
            reason = f"not a number: {_as_written(shown_value)}"
        raise ActualsError(f"{shown}: row {rows[i]}, column {name}: {reason}")
    negative = values < 0
    if negative.any():
        i = first(negative)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column {name}: negative count {plain(values[i])}"
        )
    fractional = ~np.isfinite(values) | (values != np.round(values))
    if fractional.any():
        i = first(fractional)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column {name}: not a whole number: "
            f"{plain(values[i])}"
        )
    return values


def _as_written(value: Any) -> str:
    """A cell as a message shows it: text quoted, a number plain (``5``, not
    ``np.int64(5)``), a Parquet null ``empty``."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return "empty"
    if isinstance(value, str):
        return _shortened(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "empty" if math.isnan(value) else magnitude(value)
    return str(value)
