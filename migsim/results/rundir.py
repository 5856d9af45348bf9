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
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from migsim.common.errors import MigsimError
from migsim.common.yamlio import read_regular
from migsim.model.scenario import Scenario, load_scenario
from migsim.results.base import ScenarioRun
from migsim.results.daily import SCENARIO_KEY, file_bands, series_columns

__all__ = ["SavedRun", "is_run_directory", "load_run"]


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
        # the tables hold the count summary.json claims (before anything is sized
        # by it: a hand-edited count once allocated petabytes)
        self._replications = self._table("replications.csv", n)
        names = [c.name for c in self.scenario.cohorts]
        self._cohort_replications = self._table(
            "cohort_replications.csv", n, ["cohort", "replication"], names
        )

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
            frame = pd.read_csv(io.BytesIO(read_regular(path, None)))
        except FileNotFoundError:
            raise MigsimError(f"{self.directory}: {name} is missing") from None
        except (OSError, ValueError) as exc:  # pandas' parser errors are ValueErrors
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


def _reason(exc: BaseException, width: int = 120) -> str:
    """An exception's message on one line, cut to about ``width`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= width else text[:width] + "..."


def load_run(directory: str | Path) -> SavedRun:
    """Read a run directory; see `SavedRun`."""
    return SavedRun(directory)
