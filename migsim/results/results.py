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
  counts: no-go days, each rule's firings, each gate's opening date;
- ``failures``: the replications that raised instead of finishing (a run goes
  on without them; its summary then has a ``failures`` section).

Statistics are the mean and inverted-CDF (type 1) quantiles, never interpolated,
so every reported date is one a replication produced. A replication that does
not clear counts as +inf: a quantile that falls on it is reported as "after" the
horizon end, and the mean clearance day is then undefined (``None``).

The figures are defined in `migsim.results.figures`, the daily rows and their
sources in `migsim.results.daily`, the statistics in `migsim.common.stats`; the
names other modules use are re-exported here.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from migsim import __version__
from migsim.common.files import SpillFile, name_spill, output_dir
from migsim.common.source import source_sha256
from migsim.common.stats import STATISTICS, json_number, quantile, statistics
from migsim.model.scenario import Scenario
from migsim.results.base import ScenarioRun
from migsim.results.daily import (
    EACH,
    Batch,
    DailyWriter,
    Failure,
    FileSource,
    LogSource,
    NoSource,
    bands_of,
    block_bands,
    daily_frame,
    daily_table,
    file_bands,
    series_columns,
    signed_sum,
    write_daily,
)
from migsim.results.figures import FIGURES, FigureTable
from migsim.results.rundir import FILES, write_tables
from migsim.results.variance import run_split
from migsim.sim.block import simulate
from migsim.sim.defects import DefectRecord
from migsim.sim.engine import state_after
from migsim.sim.records import STATES, RunLog

__all__ = [
    "FIGURES",
    "STATISTICS",
    "Batch",
    "ChartWriter",
    "DailyWriter",
    "Failure",
    "FigureTable",
    "Results",
    "daily_frame",
    "daily_table",
    "file_bands",
    "quantile",
    "replication_spans",
    "statistics",
]

#: Draws a run's charts into a folder being written (`Results.write`'s ``charts``).
ChartWriter = Callable[["Results", Path], None]


def _count(value: int | list[dict[str, int]]) -> int:
    return value if isinstance(value, int) else sum(g["count"] for g in value)


def replication_spans(ids: Iterable[int]) -> list[list[int]]:
    """Sorted replication indices as ``[first, last]`` runs of consecutive ones."""
    spans: list[list[int]] = []
    for k in sorted(ids):
        if spans and k == spans[-1][1] + 1:
            spans[-1][1] = k
        else:
            spans.append([k, k])
    return spans


# --------------------------------------------------------------------------- results
class Results(ScenarioRun):
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
    spill
        The `SpillFile` holding ``daily_path``: it goes with this object.
    failures
        The replications that raised instead of finishing; the figures and daily
        rows are those of the others.
    twins
        The figures of the run's twins, simulated with it (the runner's); ``None``:
        the variance split simulates them when first read.
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
        spill: SpillFile | None = None,
        failures: Sequence[Failure] = (),
        twins: FigureTable | None = None,
    ):
        self.scenario = scenario
        self._twins = twins
        self.seed = seed
        self.timing = dict(timing or {})
        #: Replications that raised, in replication order (empty: a complete run).
        self.failures: list[Failure] = sorted(failures, key=lambda f: f.replication)
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
            self._source = LogSource(scenario, self._logs)
        else:
            assert figures is not None, "give logs or figures"
            self._table = figures
            self._source = NoSource()
            if self.daily_path is not None:
                self._source = FileSource(
                    self.daily_path,
                    scenario.horizon_days,
                    len(scenario.cohorts),
                    len(figures.replications),
                    day_columns,
                )
        if spill is not None:
            weakref.finalize(self, spill.close)

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
        failures = [f for p in parts for f in p.failures]
        every = [*ids.tolist(), *(f.replication for f in failures)]
        if len(set(every)) != len(every):
            raise ValueError("the parts share a replication")
        seconds = sum(p.timing.get("simulate_seconds", 0.0) for p in parts)
        timing = {
            **first.timing,
            "simulate_seconds": round(seconds, 4),
            "seconds_per_replication": round(seconds / max(1, len(every)), 6),
            "batches": len(parts),
        }
        twins = None  # twins follow the replications (variance.twinned)
        tables = [p._twins for p in parts if p._twins is not None]
        if len(tables) == len(parts):
            twins = FigureTable.concat(tables)
        if all(p._logs is not None for p in parts):
            logs = [log for p in parts for log in p._logs or []]
            return cls(
                first.scenario, first.seed, logs, timing, failures=failures, twins=twins
            )
        figures = FigureTable.concat([p._table for p in parts])
        if not all(p.daily_path is not None for p in parts):
            if any(p.has_daily for p in parts):
                raise ValueError("cannot combine runs with and without daily rows")
            return cls(
                first.scenario,
                first.seed,
                timing=timing,
                figures=figures,
                failures=failures,
                twins=twins,
            )
        owned = SpillFile(spill_dir)
        path = owned.path
        groups = []  # (first replication, file, row group)
        for part in parts:
            parquet = pq.ParquetFile(part.daily_path)
            for index in range(parquet.num_row_groups):
                head = parquet.read_row_group(index, columns=["replication"])
                groups.append((int(head.column(0)[0].as_py()), part.daily_path, index))
        writer = DailyWriter(path, first.scenario.sha256, owned.where)
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
            spill=owned,
            failures=failures,
            twins=twins,
        )

    def annotate(self, key: str, value: Any) -> None:
        """Add a section to `summary` (and so to summary.json), e.g. ``ci95``.

        Later layers (forecast, precision) use this; a key of the base summary
        cannot be replaced.
        """
        if key in self._base_summary or key in ("failures", FILES):
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
            self.__dict__["_resimulated"] = simulate(
                self.scenario, self.seed, [int(k) for k in self._table.replications]
            )
        return self.__dict__["_resimulated"]

    @property
    def n_replications(self) -> int:
        """The replications held: those that finished (failures are not counted)."""
        return len(self._table.replications)

    @property
    def replication_ids(self) -> np.ndarray:
        return self._table.replications.copy()

    def clearance_days(self, cohort: str | None = None) -> np.ndarray:
        """Clearance day per replication (+inf: not cleared), overall or of a cohort."""
        return self.figure("clearance_day", cohort).copy()

    def state_on(self, when: date | str, replication: int) -> dict[str, Any]:
        """The state of one replication at the end of a date, to start a run from.

        ``{"date", "cohorts": {name: initial_state}, "operations_state",
        "inputs_from"}``: every state of the partition, with in-flight
        installations by (attempts made, days until due), the ramp policy's state
        and the replication whose input draws its future keeps.
        ``scenario.starting_from(state)`` continues the replication from the next
        day, with its inputs (rates, dates not reached, throughput level, caps);
        its clearance dates have the distribution of this replication's from then
        on. The replication is re-simulated to that date from its own streams.
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

    def _add_figures(self, frame: pd.DataFrame, cohort: str | None) -> None:
        """Clearance date and day, then every other figure, of ``cohort``
        (``None``: overall) as columns of ``frame``: `replications` and
        `cohort_replications` give the same columns in the same order."""
        days = self.figure("clearance_day", cohort)
        frame["clearance_date"] = pd.to_datetime(self._clearance_dates(days))
        frame["clearance_day"] = pd.array(
            [None if not math.isfinite(d) else int(d) for d in days], dtype="Int64"
        )
        for name in FIGURES:
            if name != "clearance_day":
                frame[name] = self.figure(name, cohort)

    @cached_property
    def replications(self) -> pd.DataFrame:
        """One row per replication: clearance date and day, then every figure."""
        frame = pd.DataFrame({"replication": self.replication_ids})
        self._add_figures(frame, None)
        for name, values in self._policy_values().items():
            frame[name] = values
        return frame

    # ------------------------------------------------------------------ inputs
    @cached_property
    def inputs(self) -> pd.DataFrame:
        """One row per replication: its input draws (`migsim.sim.inputs`).

        Columns ``replication`` then one per input key: dates and gates as days
        on the clock (+inf: never within the horizon), rates and shares as
        fractions, sizes as installations. Empty of inputs when nothing is
        uncertain.
        """
        frame = pd.DataFrame({"replication": self.replication_ids})
        for name, values in self._input_draws().items():
            frame[name] = values
        return frame

    def _input_draws(self) -> dict[str, np.ndarray]:
        extras = self._table.extras
        return {k[6:]: extras[k] for k in extras if k.startswith("input.")}

    def variance_split(self) -> dict[str, Any]:
        """How much of each figure's variance the inputs explain, and which
        (`migsim.results.variance.run_split`; its twins are simulated once)."""
        if "_variance_split" not in self.__dict__:
            self.__dict__["_variance_split"] = run_split(self)
        return self.__dict__["_variance_split"]

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
            return {k: json_number(v) for k, v in statistics(values).items()}

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
            frame = pd.DataFrame(
                {"replication": self.replication_ids, "cohort": cohort}
            )
            self._add_figures(frame, cohort)
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
                    k: json_number(v)
                    for k, v in statistics(rows["installations_hit"]).items()
                },
                "installations_hit_when_existing": {
                    k: json_number(v)
                    for k, v in statistics(existed["installations_hit"]).items()
                }
                if len(existed)
                else None,
                "found_day_when_existing": {
                    k: json_number(v)
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
        resolved: in flight, or dumb awaiting remote recovery), or
        ``"cumulative_migrated"`` (migrated + impaired). Loads the whole series.
        """
        return signed_sum(self.stacked, *series_columns(name, self.scenario))

    def bands(
        self,
        name: str,
        cohort: str | None = None,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        scale: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Per-date type-1 quantiles across replications of a daily series.

        Overall bands are quantiles of each replication's all-cohort total, never
        sums of per-cohort quantiles. Columns: ``date`` then ``p10, p50, ...``.
        Only the ``(replications, days)`` matrix of the series is held, never the
        daily rows. ``scale``: a factor per replication, in replication order
        (e.g. its meters per installation), applied before the quantiles.
        """
        index = None if cohort is None else self.cohort_names.index(cohort)
        matrix = self._source.matrix(series_columns(name, self.scenario), index)
        return bands_of(matrix, self.dates, quantiles, scale)

    def cohort_bands(
        self,
        name: str,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        scale: np.ndarray | None = None,
    ) -> dict[str | None, pd.DataFrame]:
        """`bands` of the total (key ``None``) and of every cohort, in that order.

        The same frames as one `bands` call each, from one read of the daily
        rows (a run's tables want them all: ``bands.csv``, ``results.xlsx``).
        ``scale``: as `bands`'.
        """
        return self.cohort_bands_at(name, quantiles, [scale])[0]

    def cohort_bands_at(
        self,
        name: str,
        quantiles: Sequence[float],
        scales: Sequence[np.ndarray | None],
    ) -> list[dict[str | None, pd.DataFrame]]:
        """`cohort_bands` at each of ``scales`` (``None``: the counts as they
        are), from one read of the daily rows: ``bands.csv`` and
        ``bands_meters.csv`` (a second read raised the peak memory of 10,000
        baseline replications by 8 MB)."""
        cohorts = [None, *self.cohort_names]
        try:
            block = self._source.matrix(series_columns(name, self.scenario), EACH)
        except ValueError:  # a per-date column: no value per cohort to split
            block = None
        if block is None or block.dtype.kind != "i":  # sums in `bands`' order
            return [
                {c: self.bands(name, c, quantiles, scale) for c in cohorts}
                for scale in scales
            ]
        return block_bands(block, self.dates, quantiles, scales, self.cohort_names)

    def backlog_bands(self, cohort: str | None = None) -> pd.DataFrame:
        """Remaining installations per date: P10, P50 and P90 across replications."""
        return self.bands("remaining", cohort)

    # ------------------------------------------------------------------ summary
    def _date_statistics(self, days: np.ndarray) -> dict[str, str | None]:
        """Clearance dates per statistic, ISO; "after <horizon end>" if not cleared."""
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
                k: json_number(v)
                for k, v in statistics(self.figure(name, cohort)).items()
            }
            for name in FIGURES
        }

    @cached_property
    def summary(self) -> dict[str, Any]:
        """Statistics of every figure with provenance; what summary.json holds.

        Sections added with `annotate` follow the base keys. A run with failed
        replications adds ``failures`` (how many were asked for, how many
        failed, and each one's replication, seed and error), so its summary
        never reads as complete; a complete run's summary has no such key.
        """
        return {**self._base_summary, **self._failure_section(), **self._sections}

    def _failure_section(self) -> dict[str, Any]:
        if not self.failures:
            return {}
        return {
            "failures": {
                "requested": self.n_replications + len(self.failures),
                "failed": len(self.failures),
                "replications": [f.to_dict(traceback=False) for f in self.failures],
            }
        }

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
        # seed and replications name replications 0 .. n-1; a run of others
        # (first_replication, parts combined with a gap) says which it holds
        ids = [*self.replication_ids.tolist(), *(f.replication for f in self.failures)]
        spans = replication_spans(ids)
        held = {} if spans == [[0, len(ids) - 1]] else {"replication_ids": spans}
        return {
            "migsim_version": __version__,
            "migsim_source_sha256": source_sha256(),
            "seed": self.seed,
            "replications": self.n_replications,
            **held,
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
            "variance_split": self.variance_split(),
            "timing": self.timing,
        }

    @property
    def has_daily(self) -> bool:
        """Whether daily rows were kept (so `daily`, `bands` and backlog.png work)."""
        return not isinstance(self._source, NoSource)

    # ------------------------------------------------------------------ output
    def write(
        self,
        directory: str | Path,
        *,
        overwrite: bool = False,
        daily: bool = True,
        charts: ChartWriter | None = None,
    ) -> Path:
        """Write every output file to ``directory`` atomically.

        Files go to a staging folder beside it that is renamed into place only
        when complete (`migsim.common.files.output_dir`), so a failed write
        never leaves a folder that looks like a result. An existing non-empty
        folder is replaced only with ``overwrite``. A streamed ``daily.parquet``
        is hard-linked (or copied) from the run's file, never rebuilt in memory.
        A run that kept no daily rows writes no ``daily.parquet``; a run with
        failed replications also writes ``failures.json``.

        A library call draws nothing: charts (``backlog.png`` for ``migsim run
        -o``) come from the output layer, which the caller passes as ``charts``,
        e.g. `migsim.output.run_charts.write_run_charts`; it is called with this
        `Results` and the staging folder, and a chart that fails fails the write.
        """
        with output_dir(directory, overwrite=overwrite) as staging:
            self.write_into(staging, daily=daily, charts=charts)
        return Path(directory)

    def write_into(
        self, staging: Path, *, daily: bool = True, charts: ChartWriter | None = None
    ) -> None:
        """Write the files of `write` into ``staging``, a folder that a caller
        is writing whole (`migsim.common.files.output_dir`) with files of its
        own: staged again beside it, a kill left folders no rerun removed."""
        if daily and self.has_daily:
            if self.daily_path is not None:
                name_spill(self.daily_path, staging / "daily.parquet")
            else:
                write_daily(self.daily, staging / "daily.parquet", self.scenario.sha256)
        tables = {"replications": self.replications}
        tables["cohort_replications"] = self.cohort_replications
        if self._table.defects:
            tables["defects"] = self.defects
        if self._input_draws():
            tables["inputs"] = self.inputs
        files = write_tables(staging, tables, daily=daily and self.has_daily)
        texts: dict[str, Any] = {"summary.json": {**self.summary, FILES: files}}
        if self.failures:
            texts["failures.json"] = [f.to_dict() for f in self.failures]
        for name, data in texts.items():
            text = json.dumps(data, indent=2) + "\n"
            (staging / name).write_text(text, encoding="utf-8")
        (staging / "scenario.yaml").write_text(
            self.scenario.to_yaml(), encoding="utf-8"
        )
        if charts is not None:
            charts(self, staging)
