"""Figures: what each replication is scored on, and the table of them a run keeps.

`FIGURES` names every per-replication figure (clearance day, installations
migrated, dumb, abandoned, interrupted installation-days, peaks, defect hits...)
with its unit, its definition in planners' words and how it is computed from a
replication's daily cohort columns. `FigureTable` holds those figures for some
replications: one row per replication, overall and per cohort, plus the ramp
policy's counts. It is all a run keeps in memory; daily rows live elsewhere
(`migsim.results.daily`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from migsim.model.scenario import Scenario
from migsim.sim.defects import DefectRecord
from migsim.sim.records import AWAITING_VISIT, IN_FLIGHT, RunLog

__all__ = [
    "DUMB_INCLUDES_RECOVERABLE",
    "FIGURES",
    "Figure",
    "FigureTable",
    "add_up",
    "dumb_may_recover",
]

#: What the dumb figures (``dumb``, ``active_dumb``, ``dormant_dumb``) count,
#: said where they are shown when a scenario recovers dumb devices remotely.
DUMB_INCLUDES_RECOVERABLE = (
    "Devices left dumb count every device dumb at the horizon end, including "
    "those still awaiting remote recovery, which may yet be recovered; the "
    "backlog and the unresolved figure count those as not resolved."
)


def dumb_may_recover(scenario: Scenario) -> bool:
    """Whether any cohort recovers dumb devices remotely (``dumb.recovered_share``):
    then the dumb figures include devices that may still be recovered."""
    return any(
        c.dumb is not None and c.dumb.recovered_share > 0 for c in scenario.cohorts
    )


@dataclass(frozen=True)
class Figure:
    """A named per-replication figure: its definition and how to compute it."""

    name: str
    unit: str
    definition: str
    compute: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray] | None
    #: A count (installations, attempts, cases, installation-days) or a day
    #: number: never below 0, so a limit below 0 on it can never be met. A
    #: difference (a change from a baseline) would set it False.
    never_negative: bool = True


def _last(columns: dict[str, np.ndarray], name: str) -> np.ndarray:
    return columns[name][-1]


def add_up(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """The element-wise sum of one or more arrays, as ``sum(arrays)`` makes it
    (same dtype), but always an array: an empty input is a mistake, not 0."""
    total: np.ndarray | None = None
    for array in arrays:
        total = 0 + array if total is None else total + array
    if total is None:
        raise ValueError("add_up: no arrays to add")
    return total


def _recovering(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Dumb devices awaiting remote recovery at the horizon end, per cohort: not
    resolved (the clearance rule waits for them). Without a dumb section no
    device is recovered: every dumb one awaits a site visit."""
    if AWAITING_VISIT not in columns:
        return np.zeros_like(_last(columns, "dumb"))
    return _last(columns, "dumb") - _last(columns, AWAITING_VISIT)


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
            "devices left dumb at the horizon end, including those still awaiting "
            "remote recovery (which may yet be recovered)",
            lambda c, a: _last(c, "dumb"),
        ),
        Figure(
            "active_dumb",
            "installations",
            "active installations left dumb at the horizon end, including those "
            "still awaiting remote recovery",
            lambda c, a: _active_sum(_last(c, "dumb"), a),
        ),
        Figure(
            "dormant_dumb",
            "installations",
            "dormant installations left dumb at the horizon end, including those "
            "still awaiting remote recovery",
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
            "installations not resolved at the horizon end: pending, queued, "
            "stalled, rolled back or impaired, or dumb awaiting remote recovery",
            lambda c, a: add_up(_last(c, s) for s in IN_FLIGHT) + _recovering(c),
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


# --------------------------------------------------------------------------- table
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
                if figure.compute is None:  # clearance_day: read from the log
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
        extras = _policy_extras(scenario, logs)
        for key in logs[0].inputs if logs else ():  # input draws (sim/inputs.py)
            extras[f"input.{key}"] = np.array([log.inputs[key] for log in logs])
        return cls(ids, overall, cohorts, extras, defects)

    @classmethod
    def concat(cls, tables: Sequence[FigureTable]) -> FigureTable:
        """Join tables of disjoint replications, in replication order.

        A table of no replications (a batch whose every replication failed)
        adds nothing: its keys, without the input draws of a replication that
        ran, never decide the joined table's.
        """
        assert tables, "nothing to join"
        tables = [t for t in tables if len(t.replications)] or list(tables[:1])
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
