"""Run directories: a finished run read back from the files ``migsim run -o`` wrote.

`SavedRun` answers the same questions as `Results` (``summary``, ``figure``,
``clearance_days``, ``bands``, ``dates``, ``cohort_names``, ``scenario``,
``seed``, ``n_replications``, ``inputs``) from ``summary.json``,
``scenario.yaml``, ``replications.csv``, ``cohort_replications.csv``,
``inputs.csv`` and, for daily bands, ``daily.parquet``. It never simulates, so
a report of a run shows exactly the numbers of its ``summary.json``.

What it reads is checked first, so a damaged or hand-edited folder is one line
(a `MigsimError`) naming the file and the column or key: a table that is not
CSV, a missing column, a replication count of ``summary.json`` that its tables
do not hold (checked before anything is sized by it), a ``daily.parquet`` that
is not Parquet, lacks a column or rows, or names in its footer another scenario
(or seed) than ``summary.json`` (`daily.SCENARIO_KEY`: one copied in from
another run).

A table has no footer to say which run wrote it, so the writer records each
table's sha256 in ``summary.json`` (`FILES`, written by `write_tables` after the
tables and before ``summary.json``), and a table read here whose bytes do not
match, or that the record does not list, refuses the folder: a
``replications.csv`` of another run of the same shape, or a ``daily.parquet``
of the same scenario written by another migsim, would read as this run's. A
folder of an older migsim has no such record and reads as before. A folder
another migsim version wrote reads too, with one line on stderr saying which.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from migsim import __version__
from migsim.common.errors import MigsimError
from migsim.common.files import file_sha256
from migsim.common.yamlio import read_regular
from migsim.model.scenario import Scenario, load_scenario
from migsim.results.base import ScenarioRun
from migsim.results.daily import SCENARIO_KEY, file_bands, series_columns

__all__ = ["FILES", "SavedRun", "is_run_directory", "load_run", "write_tables"]

#: The key of ``summary.json`` recording the sha256 of each table of the folder,
#: ``{file name: sha256}``: how a reader tells the run's own tables from tables
#: copied in from another run (a CSV names no run).
FILES = "files"
#: The tables `Results.write` writes (those of them a run has), whose sha256
#: `FILES` records; any other name it lists is not looked at (not a path to open).
_TABLES = (
    "replications.csv",
    "cohort_replications.csv",
    "inputs.csv",
    "defects.csv",
    "daily.parquet",
)
#: Folders already said to be of another migsim version (once per folder).
_NOTED: set[Path] = set()


def write_tables(
    folder: Path, tables: dict[str, pd.DataFrame], *, daily: bool
) -> dict[str, str]:
    """Write each table as ``<name>.csv`` into ``folder``; return the sha256 of
    each file, ``daily.parquet`` too when ``daily`` (written there before), to
    record in ``summary.json`` as `FILES`.

    A CSV is hashed from the bytes written, never read back; ``daily.parquet``
    is streamed to disk during the run, so it is read once to hash it (about a
    tenth of a second for 10,000 replications of the November 2019 scenarios).
    """
    files = {"daily.parquet": file_sha256(folder / "daily.parquet")} if daily else {}
    for name, table in tables.items():
        data = table.to_csv(index=False).encode("utf-8")
        (folder / f"{name}.csv").write_bytes(data)
        files[f"{name}.csv"] = hashlib.sha256(data).hexdigest()
    return files


def is_run_directory(path: str | Path) -> bool:
    """A directory holding a ``summary.json`` (as ``migsim run -o`` writes)."""
    return (Path(path) / "summary.json").is_file()


class SavedRun(ScenarioRun):
    """A finished run read from its directory.

    Parameters
    ----------
    directory
        What ``migsim run -o`` (or `Results.write`) wrote.

    Raises
    ------
    MigsimError
        When a file is missing, or ``scenario.yaml`` no longer matches the
        ``scenario_sha256`` of ``summary.json``.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        if not is_run_directory(self.directory):
            raise MigsimError(
                f"{self.directory}: not a run directory (no summary.json)"
            )
        try:
            self.summary: dict[str, Any] = json.loads(
                (self.directory / "summary.json").read_text(encoding="utf-8")
            )
        except (OSError, ValueError) as exc:
            raise MigsimError(
                f"{self.directory}/summary.json: unreadable: {exc}"
            ) from None
        if not isinstance(self.summary, dict) or not all(
            isinstance(self.summary.get(k), int) for k in ("seed", "replications")
        ):
            raise MigsimError(
                f"{self.directory}/summary.json: not a run's summary (a JSON object "
                "with its seed and replications)"
            )
        _note_version(self.directory, self.summary.get("migsim_version"))
        self.scenario: Scenario = load_scenario(self.directory / "scenario.yaml")
        if self.scenario.sha256 != self.summary.get("scenario_sha256"):
            raise MigsimError(
                f"{self.directory}/scenario.yaml: does not match the run's "
                "scenario_sha256 (edited after the run?)"
            )
        self.seed: int = int(self.summary["seed"])
        lost = self.summary.get("failures")
        if isinstance(lost, dict):  # written, but never read back as a whole run
            raise MigsimError(
                f"{self.directory}: an incomplete run: {lost.get('failed')} of "
                f"{lost.get('requested')} replications failed (failures.json); "
                "rerun it"
            )
        n = self.n_replications
        if n < 1:
            raise MigsimError(
                f"{self.directory}/summary.json: key replications: {n} (at least 1)"
            )
        self._files = self._recorded_files()
        # the tables hold the count summary.json claims (before anything is sized
        # by it: a hand-edited count once allocated petabytes)
        self._replications = self._table("replications.csv", n)
        names = [c.name for c in self.scenario.cohorts]
        self._cohort_replications = self._table(
            "cohort_replications.csv", n, ["cohort", "replication"], names
        )
        for name in ("inputs.csv", "defects.csv"):  # read later, or never: now
            if self._files is not None and (self.directory / name).exists():
                self._check_recorded(name, _sha256(self.directory / name))

    def _table(
        self,
        name: str,
        n: int,
        columns: Sequence[str] = ("replication",),
        cohorts: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """A CSV table of the folder, checked: its ``columns``, and replications
        ``0 .. n-1`` once each (per cohort when ``cohorts``), sorted."""
        path = self.directory / name
        shown = f"{self.directory}/{name}"
        try:
            data = read_regular(path, None)
        except FileNotFoundError:
            raise MigsimError(f"{self.directory}: {name} is missing") from None
        except OSError as exc:
            raise MigsimError(
                f"{shown}: not a table migsim wrote: {_reason(exc)}"
            ) from None
        self._check_recorded(name, hashlib.sha256(data).hexdigest())
        try:
            frame = pd.read_csv(io.BytesIO(data))
        except ValueError as exc:  # pandas' parser errors are ValueErrors
            raise MigsimError(
                f"{shown}: not a table migsim wrote: {_reason(exc)}"
            ) from None
        for column in columns:
            if column not in frame.columns:
                raise MigsimError(f"{shown}: column {column}: missing")
        groups = (
            [frame]
            if cohorts is None
            else [frame[frame["cohort"] == c] for c in cohorts]
        )
        whose = (
            ["" for _ in groups]
            if cohorts is None
            else [f" of cohort {c}" for c in cohorts]
        )
        if sum(len(g) for g in groups) != len(frame):
            raise MigsimError(
                f"{shown}: column cohort: names a cohort the scenario does not have"
            )
        for group, of in zip(groups, whose, strict=True):
            ids = pd.to_numeric(group["replication"], errors="coerce").to_numpy()
            if len(ids) != n or not np.array_equal(np.sort(ids), np.arange(n)):
                raise MigsimError(
                    f"{shown}: column replication: {len(ids):,} rows{of}, not the "
                    f"{n:,} replications (0 to {n - 1:,}) of summary.json"
                )
        return frame.sort_values(
            ["cohort", "replication"] if cohorts else "replication"
        )

    def _recorded_files(self) -> dict[str, str] | None:
        """The sha256 of each table as ``summary.json`` records it (`FILES`);
        ``None`` for a folder of an older migsim, which recorded none. A table
        it lists must be there: a deleted ``inputs.csv`` or ``daily.parquet``
        is not read as "none was written"."""
        files = self.summary.get(FILES)
        if files is None:
            return None
        if not isinstance(files, dict) or not all(
            isinstance(v, str) for v in files.values()
        ):
            raise MigsimError(
                f"{self.directory}/summary.json: key {FILES}: not a mapping of "
                "file names to sha256s"
            )
        for name in _TABLES:
            if name in files and not (self.directory / name).exists():
                raise MigsimError(
                    f"{self.directory}: {name} is missing (summary.json lists it)"
                )
        return files

    def _check_recorded(self, name: str, sha256: str) -> None:
        """Refuse a table whose bytes (``sha256``) are not those the run
        recorded, or that it did not record: copied in from another run."""
        if self._files is None:  # an older migsim's folder: read as before
            return
        if name not in self._files:
            raise MigsimError(
                f"{self.directory}/{name}: not written by this run (summary.json's "
                f"{FILES} does not list it; copied in from another run?)"
            )
        if sha256 != self._files[name]:
            raise MigsimError(
                f"{self.directory}/{name}: not the file this run wrote (its sha256 "
                f"differs from summary.json's {FILES}; copied in from another run?)"
            )

    def _column(self, frame: pd.DataFrame, cohort: str | None, name: str) -> np.ndarray:
        """One figure's column as floats, or one line naming the file and column."""
        table = "replications.csv" if cohort is None else "cohort_replications.csv"
        shown = f"{self.directory}/{table}"
        if name not in frame.columns:
            raise MigsimError(f"{shown}: column {name}: missing")
        try:
            return frame[name].to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise MigsimError(f"{shown}: column {name}: not numbers") from None

    # ------------------------------------------------------------------ basics
    @property
    def n_replications(self) -> int:
        """The count the run wrote to ``summary.json``, without reading its tables."""
        return int(self.summary["replications"])

    @property
    def replication_ids(self) -> np.ndarray:
        """The replications held: ``0 .. n-1`` (the tables were checked to be)."""
        return np.arange(self.n_replications)

    @property
    def has_daily(self) -> bool:
        """Whether ``daily.parquet`` was written (not with ``--no-daily``)."""
        return (self.directory / "daily.parquet").exists()

    def _frame(self, cohort: str | None) -> pd.DataFrame:
        if cohort is None:
            return self._replications
        if cohort not in self.cohort_names:
            raise KeyError(cohort)
        frame = self._cohort_replications
        return frame[frame["cohort"] == cohort]

    # ------------------------------------------------------------------ figures
    def clearance_days(self, cohort: str | None = None) -> np.ndarray:
        """Clearance day per replication (+inf: not cleared), overall or of a cohort."""
        days = self._column(self._frame(cohort), cohort, "clearance_day")
        return np.where(np.isnan(days), math.inf, days)

    def figure(self, name: str, cohort: str | None = None) -> np.ndarray:
        """Values of one figure per replication, overall or for one cohort."""
        if name == "clearance_day":
            return self.clearance_days(cohort)
        return self._column(self._frame(cohort), cohort, name)

    # ------------------------------------------------------------------ bands
    def bands(
        self,
        name: str,
        cohort: str | None = None,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        scale: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Per-date type-1 quantiles across replications of a daily series.

        As `Results.bands`: ``name`` is a daily column, ``"remaining"`` or
        ``"cumulative_migrated"``; overall bands are quantiles of each
        replication's all-cohort total. Columns: ``date`` then ``p10, p50, ...``.
        ``scale``: a factor per replication, in replication order.
        """
        if not self.has_daily:
            raise MigsimError(
                f"{self.directory}: no daily.parquet (the run used --no-daily)"
            )
        path = self.directory / "daily.parquet"
        self._check_daily(path, series_columns(name, self.scenario).columns)
        try:  # chunk by chunk: memory does not grow with the daily rows of the run
            return file_bands(
                path,
                self.scenario,
                self.n_replications,
                name,
                cohort,
                quantiles,
                scale,
            )
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise MigsimError(
                f"{path}: not a daily.parquet migsim wrote: {_reason(exc)}"
            ) from None

    @cached_property
    def _daily_footer(self) -> tuple[pa.Schema, int]:
        """``daily.parquet``'s schema and row count, read once (a report asks
        for many bands of one run)."""
        import pyarrow.parquet as pq

        path = self.directory / "daily.parquet"
        if not path.is_file():
            raise MigsimError(f"{path}: not a regular file")
        try:
            metadata = pq.read_metadata(path)
            footer = metadata.schema.to_arrow_schema(), metadata.num_rows
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise MigsimError(f"{path}: not a Parquet file: {_reason(exc)}") from None
        named = (metadata.metadata or {}).get(SCENARIO_KEY)  # None: an older run
        if named is not None and named.decode(errors="replace") != self.scenario.sha256:
            raise MigsimError(
                f"{path}: holds the replications of another scenario or seed than "
                "this folder's summary.json (copied in from another run?)"
            )
        if self._files is not None:  # hashed once: the footer is read once
            self._check_recorded("daily.parquet", _sha256(path))
        return footer

    def _check_daily(self, path: Path, columns: Sequence[str]) -> None:
        """``daily.parquet`` is a Parquet file with ``columns`` of numbers and a
        row per replication, day and cohort (as the run's summary.json says)."""
        schema, rows = self._daily_footer
        for column in columns:
            if column not in schema.names:
                raise MigsimError(f"{path}: column {column}: missing")
            kind = schema.field(column).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
                raise MigsimError(f"{path}: column {column}: not numbers ({kind})")
        days, cohorts = self.scenario.horizon_days, len(self.scenario.cohorts)
        wanted = self.n_replications * days * cohorts
        if rows != wanted:
            raise MigsimError(
                f"{path}: {rows:,} rows, not one per replication, day and cohort "
                f"({self.n_replications:,} x {days:,} x {cohorts:,} = {wanted:,})"
            )

    # ------------------------------------------------------------------ inputs
    @cached_property
    def inputs(self) -> pd.DataFrame:
        """One row per replication, its input draws, as `Results.inputs`
        (``inputs.csv``; only ``replication`` when nothing was uncertain)."""
        path = self.directory / "inputs.csv"
        if not path.is_file():
            return self._replications[["replication"]].reset_index(drop=True)
        frame = self._table("inputs.csv", self.n_replications)
        return frame.reset_index(drop=True)


def _sha256(path: Path) -> str:
    """The sha256 of a table of the folder, or one line naming it."""
    try:
        return file_sha256(path)
    except OSError as exc:
        raise MigsimError(f"{path}: not a table migsim wrote: {_reason(exc)}") from None


def _note_version(directory: Path, version: object) -> None:
    """One line on stderr when another migsim version wrote the folder. It is
    read all the same (its summary's shape was checked), but that version may
    compute other numbers than this one. Said once per folder: a report or a
    session reads one folder more than once."""
    key = directory.resolve()
    if version == __version__ or key in _NOTED:
        return
    _NOTED.add(key)
    written = (
        f"migsim {version}"
        if isinstance(version, str)
        else "a migsim that did not record its version"
    )
    print(
        f"{directory}: written by {written}; read by migsim {__version__}",
        file=sys.stderr,
    )


def _reason(exc: BaseException, width: int = 120) -> str:
    """An exception's message on one line, cut to about ``width`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= width else text[:width] + "..."


def load_run(directory: str | Path) -> SavedRun:
    """Read a run directory; see `SavedRun`."""
    return SavedRun(directory)
