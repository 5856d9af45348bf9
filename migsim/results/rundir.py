"""Run directories: a finished run read back from the files ``migsim run -o`` wrote.

`SavedRun` answers the same questions as `Results` (``summary``, ``figure``,
``clearance_days``, ``bands``, ``dates``, ``cohort_names``, ``scenario``,
``seed``, ``n_replications``, ``inputs``) from ``summary.json``,
``scenario.yaml``, ``replications.csv``, ``cohort_replications.csv``,
``inputs.csv`` and, for daily bands, ``daily.parquet``. It never simulates, so
a report of a run shows exactly the numbers of its ``summary.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migsim.common.errors import MigsimError
from migsim.model.scenario import Scenario, load_scenario
from migsim.results.base import ScenarioRun
from migsim.results.daily import file_bands

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
        for name in ("replications.csv", "cohort_replications.csv"):
            if not (self.directory / name).is_file():
                raise MigsimError(f"{self.directory}: {name} is missing")

    # ------------------------------------------------------------------ basics
    @property
    def n_replications(self) -> int:
        """The count the run wrote to ``summary.json``, without reading its tables."""
        return int(self.summary["replications"])

    @property
    def has_daily(self) -> bool:
        """Whether ``daily.parquet`` was written (not with ``--no-daily``)."""
        return (self.directory / "daily.parquet").exists()

    @cached_property
    def _replications(self) -> pd.DataFrame:
        return pd.read_csv(self.directory / "replications.csv").sort_values(
            "replication"
        )

    @cached_property
    def _cohort_replications(self) -> pd.DataFrame:
        return pd.read_csv(self.directory / "cohort_replications.csv").sort_values(
            ["cohort", "replication"]
        )

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
        days = self._frame(cohort)["clearance_day"].to_numpy(
            dtype=float, na_value=np.nan
        )
        return np.where(np.isnan(days), math.inf, days)

    def figure(self, name: str, cohort: str | None = None) -> np.ndarray:
        """Values of one figure per replication, overall or for one cohort."""
        if name == "clearance_day":
            return self.clearance_days(cohort)
        return self._frame(cohort)[name].to_numpy(dtype=float)

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
        # chunk by chunk: memory does not grow with the daily rows of the run
        return file_bands(
            self.directory / "daily.parquet",
            self.scenario,
            self.n_replications,
            name,
            cohort,
            quantiles,
            scale,
        )

    # ------------------------------------------------------------------ inputs
    @cached_property
    def inputs(self) -> pd.DataFrame:
        """One row per replication, its input draws, as `Results.inputs`
        (``inputs.csv``; only ``replication`` when nothing was uncertain)."""
        path = self.directory / "inputs.csv"
        if not path.is_file():
            return self._replications[["replication"]].reset_index(drop=True)
        frame = pd.read_csv(path).sort_values("replication")
        return frame.reset_index(drop=True)


def load_run(directory: str | Path) -> SavedRun:
    """Read a run directory; see `SavedRun`."""
    return SavedRun(directory)
