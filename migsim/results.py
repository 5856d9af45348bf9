"""Results: what many replications of one scenario produced, and their statistics.

`Results` holds the per-replication logs of a run and derives, on demand:

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migsim import __version__
from migsim.engine import FLOWS, STATES, RunLog, state_after
from migsim.operations import DefectRecord
from migsim.plots import backlog_fan_chart, plt
from migsim.scenario import Scenario

__all__ = [
    "FIGURES",
    "STATISTICS",
    "Results",
    "quantile",
    "statistics",
]

STATISTICS = ("mean", "p5", "p10", "p50", "p80", "p85", "p90", "p95")
_QUANTILES = {"p5": 0.05, "p10": 0.10, "p50": 0.50, "p80": 0.80, "p85": 0.85,
              "p90": 0.90, "p95": 0.95}
_IN_FLIGHT = ("pending", "queued", "stalled", "rolled_back", "impaired")


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
        Figure("clearance_day", "days",
               "days from start_date to the first end of day at which the backlog "
               "counts as cleared (+inf when not within the horizon)",
               None),  # read from the log
        Figure("migrated", "installations",
               "installations migrated (including impaired) at the horizon end",
               lambda c, a: _last(c, "migrated") + _last(c, "impaired")),
        Figure("dumb", "installations", "devices left dumb at the horizon end",
               lambda c, a: _last(c, "dumb")),
        Figure("active_dumb", "installations",
               "active installations left dumb at the horizon end",
               lambda c, a: _active_sum(_last(c, "dumb"), a)),
        Figure("dormant_dumb", "installations",
               "dormant installations left dumb at the horizon end",
               lambda c, a: _active_sum(_last(c, "dumb"), ~a)),
        Figure("abandoned", "installations",
               "installations abandoned after failing their last allowed attempt",
               lambda c, a: _last(c, "abandoned")),
        Figure("active_interrupted_installation_days", "installation-days",
               "sum over days of active installations impaired or stalled at the "
               "end of the day (a household without smart service that day)",
               lambda c, a: _active_sum((c["impaired"] + c["stalled"]).sum(axis=0), a)),
        Figure("peak_failure_backlog", "installations",
               "largest end-of-day count of stalled + rolled_back installations",
               lambda c, a: (c["stalled"] + c["rolled_back"]).max(axis=0)),
        Figure("attempts", "attempts", "migration attempts made, retries included",
               lambda c, a: c["attempts"].sum(axis=0)),
        Figure("unresolved", "installations",
               "installations still pending, queued, stalled, rolled back or "
               "impaired at the horizon end",
               lambda c, a: sum(_last(c, s) for s in _IN_FLIGHT)),
        # ---- operations (docs/operations-risk.md); 0 when a section is not used
        Figure("active_hit_by_defects", "installations",
               "attempts on active installations given a latent defect's outcome "
               "before the defect was found",
               lambda c, a: _active_sum(_total(c, "defect_hits"), a)),
        Figure("dormant_hit_by_defects", "installations",
               "attempts on dormant installations given a latent defect's outcome "
               "before the defect was found",
               lambda c, a: _active_sum(_total(c, "defect_hits"), ~a)),
        Figure("active_dumb_installation_days", "installation-days",
               "sum over days of active installations dumb at the end of the day "
               "(until recovered remotely, or to the horizon end)",
               lambda c, a: _active_sum(c["dumb"].sum(axis=0), a)),
        Figure("max_daily_active_interrupted", "installations",
               "largest end-of-day count of active installations impaired or "
               "stalled (the interrupted households on the worst day)",
               lambda c, a: _PEAK_SERIES["max_daily_active_interrupted"](c, a).max(
                   axis=0)),
        Figure("peak_els_backlog", "cases",
               "largest end-of-day count of ELS/MCC cases raised and not yet worked",
               lambda c, a: _PEAK_SERIES["peak_els_backlog"](c, a).max(axis=0)),
        Figure("active_prepayment_dumb", "installations",
               "active prepayment installations left dumb (awaiting a site visit) at "
               "the horizon end: the paper's 'grave' case",
               lambda c, a: _active_sum(_last(c, "prepayment_dumb")
                                        if "prepayment_dumb" in c
                                        else np.zeros_like(a, dtype=np.int64), a)),
        Figure("cos_alerts_lost", "events",
               "change-of-supplier events on migrated installations whose loss alert "
               "was not sent (issue 61224, until its fix)",
               lambda c, a: _total(c, "cos_alerts_lost")),
        Figure("ppmid_join_failures", "joins",
               "PPMID joins that failed on newly migrated active prepayment "
               "installations (issue 91342, until its fix)",
               lambda c, a: _total(c, "ppmid_join_failures")),
        Figure("excluded", "installations",
               "installations that can never be migrated remotely, abandoned at the "
               "horizon end (of abandoned)",
               lambda c, a: _last(c, "excluded") if "excluded" in c
               else np.zeros_like(a, dtype=np.int64)),
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


def _count(value: int | list[dict[str, int]]) -> int:
    return value if isinstance(value, int) else sum(g["count"] for g in value)


# --------------------------------------------------------------------------- results
class Results:
    """The outcome of `migsim.run`: per-replication logs and what derives from them.

    Parameters
    ----------
    scenario
        The resolved scenario that was run.
    seed
        The run seed; replication k used streams derived from ``(seed, k)``.
    logs
        One `RunLog` per replication, in replication order.
    timing
        Wall-clock facts (kept out of every table so results stay reproducible).
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        logs: list[RunLog],
        timing: dict[str, Any] | None = None,
    ):
        self.scenario = scenario
        self.seed = seed
        self.logs = sorted(logs, key=lambda log: log.replication)
        self.timing = dict(timing or {})
        self._active = np.array([c.mode == "active" for c in scenario.cohorts])
        self._sections: dict[str, Any] = {}

    @classmethod
    def combine(cls, parts: Sequence[Results]) -> Results:
        """One `Results` from runs of disjoint replication batches of one scenario.

        Batches that continue the numbering (``run(..., first_replication=k)``)
        combine to exactly what one run of the total count gives (timing apart).

        Raises
        ------
        ValueError
            When the parts differ in scenario or seed, or share a replication.
        """
        if not parts:
            raise ValueError("nothing to combine")
        first = parts[0]
        for part in parts[1:]:
            if part.scenario.sha256 != first.scenario.sha256 or part.seed != first.seed:
                raise ValueError("can only combine runs of one scenario and seed")
        logs = [log for part in parts for log in part.logs]
        if len({log.replication for log in logs}) != len(logs):
            raise ValueError("the parts share a replication")
        seconds = sum(p.timing.get("simulate_seconds", 0.0) for p in parts)
        timing = {
            **first.timing,
            "simulate_seconds": round(seconds, 4),
            "seconds_per_replication": round(seconds / len(logs), 6),
            "batches": len(parts),
        }
        return cls(first.scenario, first.seed, logs, timing)

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
    def n_replications(self) -> int:
        return len(self.logs)

    @property
    def replication_ids(self) -> np.ndarray:
        return np.array([log.replication for log in self.logs], dtype=np.int64)

    @property
    def cohort_names(self) -> list[str]:
        return [c.name for c in self.scenario.cohorts]

    @cached_property
    def dates(self) -> pd.DatetimeIndex:
        return pd.date_range(self.scenario.start_date, periods=self.scenario.horizon_days)

    def clearance_days(self, cohort: str | None = None) -> np.ndarray:
        """Clearance day per replication (+inf when not cleared), overall or of a cohort."""
        if cohort is None:
            days = [log.clearance_day for log in self.logs]
        else:
            index = self.cohort_names.index(cohort)
            days = [log.cohort_clearance_days[index] for log in self.logs]
        return np.array([math.inf if d is None else d for d in days], dtype=float)

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
            raise ValueError(f"{when} is outside {self.scenario.start_date}.."
                             f"{self.scenario.end_date}")
        state = state_after(self.scenario, self.seed, replication, day)
        log = next((g for g in self.logs if g.replication == replication), None)
        if log is not None:  # the re-simulation must agree with the recorded run
            for index, name in enumerate(self.cohort_names):
                recorded = [int(log.cohort_columns[s][day, index]) for s in STATES]
                exported = [_count(state["cohorts"][name][s]) for s in STATES]
                assert recorded == exported, (
                    f"state_on({when}, {replication}) disagrees with the run's log")
        return state

    def stacked(self, column: str) -> np.ndarray:
        """A cohort column of every replication: array (replications, days, cohorts)."""
        return np.stack([log.cohort_columns[column] for log in self.logs])

    # ------------------------------------------------------------------ figures
    @cached_property
    def _figure_values(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-replication figures: overall {name: (R,)} and per cohort {name: (R, C)}."""
        overall: dict[str, list[float]] = {name: [] for name in FIGURES}
        cohorts: dict[str, list[np.ndarray]] = {name: [] for name in FIGURES}
        for log in self.logs:
            columns = log.cohort_columns
            for name, figure in FIGURES.items():
                if name == "clearance_day":
                    per_cohort = np.array(
                        [math.inf if d is None else d for d in log.cohort_clearance_days],
                        dtype=float,
                    )
                    total = math.inf if log.clearance_day is None else log.clearance_day
                elif name in _PEAK_FIGURES:
                    series = _PEAK_SERIES[name](columns, self._active)
                    per_cohort = series.max(axis=0).astype(float)
                    total = float(series.sum(axis=1).max())
                else:
                    per_cohort = figure.compute(columns, self._active).astype(float)
                    total = float(per_cohort.sum())
                overall[name].append(total)
                cohorts[name].append(per_cohort)
        return (
            {k: np.array(v, dtype=float) for k, v in overall.items()},
            {k: np.stack(v) for k, v in cohorts.items()},
        )

    def figure(self, name: str, cohort: str | None = None) -> np.ndarray:
        """Values of one figure per replication, overall or for one cohort."""
        overall, per_cohort = self._figure_values
        if cohort is None:
            return overall[name]
        return per_cohort[name][:, self.cohort_names.index(cohort)]

    # ------------------------------------------------------------------ tables
    @cached_property
    def daily(self) -> pd.DataFrame:
        """One row per replication x date x cohort: end-of-day states and the day's flows."""
        n_reps, n_days, n_cohorts = self.n_replications, len(self.dates), len(
            self.cohort_names
        )
        frame = pd.DataFrame(
            {
                "replication": np.repeat(self.replication_ids, n_days * n_cohorts),
                "date": np.tile(np.repeat(self.dates.values, n_cohorts), n_reps),
                "cohort": pd.Categorical.from_codes(
                    np.tile(np.arange(n_cohorts), n_reps * n_days),
                    categories=self.cohort_names,
                ),
            }
        )
        for column in (*STATES, *FLOWS, *self._extra_cohort_columns()):
            frame[column] = self.stacked(column).reshape(-1)
        for column in self._day_columns():
            values = np.stack([log.day_columns[column] for log in self.logs])
            values = np.repeat(values.reshape(-1), n_cohorts)
            text = values.dtype.kind in "OU"
            frame[column] = pd.Categorical(values) if text else values
        return frame

    def _extra_cohort_columns(self) -> list[str]:
        first = self.logs[0].cohort_columns if self.logs else {}
        return [k for k in first if k not in STATES and k not in FLOWS]

    def _day_columns(self) -> list[str]:
        return list(self.logs[0].day_columns) if self.logs else []

    def _clearance_dates(self, days: np.ndarray) -> list[date | None]:
        return [
            None if not math.isfinite(d) else self.scenario.date_of(int(d)) for d in days
        ]

    @cached_property
    def replications(self) -> pd.DataFrame:
        """One row per replication: clearance date and day, then every figure."""
        overall, _ = self._figure_values
        days = overall["clearance_day"]
        frame = pd.DataFrame({"replication": self.replication_ids})
        frame["clearance_date"] = pd.to_datetime(self._clearance_dates(days))
        frame["clearance_day"] = pd.array(
            [None if not math.isfinite(d) else int(d) for d in days], dtype="Int64"
        )
        for name in FIGURES:
            if name != "clearance_day":
                frame[name] = overall[name]
        for name, values in self._policy_values().items():
            frame[name] = values
        return frame

    # ------------------------------------------------------------------ policy
    def no_go_days(self) -> np.ndarray:
        """No-go days (working days stopped by an incident) per replication."""
        return np.array(
            [int(log.day_columns["no_go"].sum()) for log in self.logs], dtype=np.int64
        )

    def rule_firings(self, rule: str) -> np.ndarray:
        """How often a capacity rule fired, per replication."""
        return np.array(
            [int((log.day_columns["rule_fired"] == rule).sum()) for log in self.logs],
            dtype=np.int64,
        )

    def gate_days(self, gate: str) -> np.ndarray:
        """The day each replication opened a gate (+inf: not within the horizon)."""
        horizon = self.scenario.horizon_days
        days = [log.gate_days.get(gate) for log in self.logs]
        return np.array(
            [math.inf if d is None or d >= horizon else max(d, 0) for d in days],
            dtype=float,
        )

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
            frame = pd.DataFrame({"replication": self.replication_ids, "cohort": cohort})
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
        rows = []
        for log in self.logs:
            for record in log.defects:
                rows.append(self._defect_row(log.replication, record))
        columns = ["replication", "cohort", "defect", "exists", "exposed_from_date",
                   "found_date", "found_day", "resumed_date", "installations_hit"]
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
                } if len(existed) else None,
                "found_day_when_existing": {
                    k: _json_number(v)
                    for k, v in statistics(
                        existed["found_day"].astype(float).fillna(math.inf)
                    ).items()
                } if len(existed) else None,
            }
        return out

    def series(self, name: str) -> np.ndarray:
        """A daily series of every replication: array (replications, days, cohorts).

        ``name`` is a `.daily` column, or ``"remaining"`` (installations not yet
        resolved: pending, queued, stalled, rolled back or impaired), or
        ``"cumulative_migrated"`` (migrated + impaired).
        """
        if name == "remaining":
            return sum(self.stacked(state) for state in _IN_FLIGHT)
        if name == "cumulative_migrated":
            return self.stacked("migrated") + self.stacked("impaired")
        return self.stacked(name)

    def bands(
        self,
        name: str,
        cohort: str | None = None,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    ) -> pd.DataFrame:
        """Per-date type-1 quantiles across replications of a daily series.

        Overall bands are quantiles of each replication's all-cohort total, never
        sums of per-cohort quantiles. Columns: ``date`` then ``p10, p50, ...``.
        """
        values = self.series(name)
        if cohort is None:
            values = values.sum(axis=2)
        else:
            values = values[:, :, self.cohort_names.index(cohort)]
        ordered = np.sort(values, axis=0)
        n = len(ordered)
        columns = {
            f"p{round(q * 100)}": ordered[max(0, math.ceil(q * n - 1e-12) - 1)]
            for q in quantiles
        }
        return pd.DataFrame({"date": self.dates, **columns})

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
            name: {k: _json_number(v) for k, v in statistics(self.figure(name, cohort)).items()}
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

    # ------------------------------------------------------------------ output
    def write(self, directory: str | Path, *, overwrite: bool = False,
              daily: bool = True) -> Path:
        """Write every output file to ``directory`` atomically.

        Files go to a temporary sibling directory that is renamed into place only
        when complete, so a failed write never leaves a directory that looks like
        a result. An existing directory is replaced only with ``overwrite``.
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
            if daily:
                self.daily.to_parquet(staging / "daily.parquet", index=False)
            self.replications.to_csv(staging / "replications.csv", index=False)
            self.cohort_replications.to_csv(
                staging / "cohort_replications.csv", index=False
            )
            if any(log.defects for log in self.logs):
                self.defects.to_csv(staging / "defects.csv", index=False)
            (staging / "summary.json").write_text(
                json.dumps(self.summary, indent=2) + "\n", encoding="utf-8"
            )
            (staging / "scenario.yaml").write_text(self.scenario.to_yaml(), encoding="utf-8")
            figure = backlog_fan_chart(self.backlog_bands(), self.scenario.name)
            figure.savefig(staging / "backlog.png", dpi=110)
            plt.close(figure)
            _replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target


def _replace_dir(staging: Path, target: Path) -> None:
    """Move a finished staging directory into place, replacing any old one."""
    if target.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, trash / "old")
        os.replace(staging, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, target)
