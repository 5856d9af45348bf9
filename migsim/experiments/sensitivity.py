"""Sensitivity: which fields move the clearance day and the risks, and how much.

Two methods, both on figures named as in tables (``clearance_day_p50``,
``peak_failure_backlog_p90``), each computed over ``n`` replications with common
random numbers (replication k of every point uses the same streams):

- ``oat`` (one at a time): each field at its low and at its high value with the
  rest at base. The *swing* is ``|value_high - value_low|``; a tornado chart
  shows the fields largest swing first. Cost: (2k + 1) points for k fields.
  Each row also carries the 95% interval of the change ``value_high -
  value_low`` (``change_ci95_low``, ``change_ci95_high``), on the pairs of
  replications as `compare` takes it (Student-t for a mean, a seeded paired
  bootstrap for a quantile): a swing whose interval holds 0 may be the
  replications' noise, not the field's effect, and more replications would
  tell. Rate changes pair less well than caps (docs/scenario-reference.md,
  Randomness), so their intervals are the wider.
- ``sobol``: first-order (S1) and total (ST) Sobol indices with 95% confidence
  intervals, from SALib's Saltelli sampling (on a Sobol sequence) and analysis,
  second-order indices off. Cost: N (k + 2) points for N base samples and k
  fields, each point ``n`` replications; N at least 4 (`MIN_SOBOL_SAMPLES`).
  ``value_low`` and ``value_high`` are then the mean figure over the points
  with the field in the lowest and in the highest quarter of its range, and
  ``swing`` their difference's size.

A figure that is +inf in a replication (a backlog not cleared) is +inf in the
OAT table; Sobol needs finite outputs, so there a clearance day that is not
within the horizon counts as the horizon's length (said in the JSON).

Module flow: after ``study`` (field checks, the simulator) and ``decide``;
``migsim.output.experiment_files`` draws the chart and writes the folder.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from migsim import __version__
from migsim.common.errors import MigsimError, ScenarioError
from migsim.common.source import source_sha256
from migsim.common.stats import json_number
from migsim.common.yamlio import parse_value
from migsim.experiments.compare import (
    BOOTSTRAP_RESAMPLES,
    bootstrap_indices,
    paired_difference,
)
from migsim.experiments.study import (
    FieldAxis,
    Simulator,
    field_axis,
    statistic_of,
)
from migsim.model.limits import (
    MAX_SOBOL_SAMPLES,
    MIN_SOBOL_SAMPLES,
    run_seed,
    whole_number,
)
from migsim.model.paths import NAMED_TWICE, repeated_field
from migsim.model.scenario import Scenario
from migsim.results.results import FIGURES, STATISTICS

__all__ = ["FieldRange", "Sensitivity", "default_figures", "parse_range", "sensitivity"]

#: Figures left out of the default list: not risks (clearance_day is there at P50).
_NOT_RISKS = ("clearance_day", "migrated", "attempts")


def default_figures() -> list[str]:
    """``clearance_day_p50`` and the P90 of every risk figure in `results.FIGURES`."""
    return ["clearance_day_p50"] + [
        f"{name}_p90" for name in FIGURES if name not in _NOT_RISKS
    ]


def _split_figure(name: str) -> tuple[str, str]:
    figure, _, statistic = name.rpartition("_")
    if figure not in FIGURES or statistic not in STATISTICS:
        raise MigsimError(
            f"--figure {name}: expected NAME_STATISTIC with a figure of "
            f"{', '.join(FIGURES)} and a statistic of {', '.join(STATISTICS)}"
        )
    return figure, statistic


@dataclass(frozen=True)
class FieldRange:
    """One field's low and high values (typed as the field is)."""

    axis: FieldAxis
    low: Any
    high: Any

    @property
    def path(self) -> str:
        return self.axis.path


def parse_range(scenario: Scenario, text: str) -> FieldRange:
    """``FIELD=LOW:HIGH`` checked against the scenario (values read as YAML).

    Raises
    ------
    MigsimError
        One line naming the option and the field.
    """
    path, sep, span = text.partition("=")
    low_text, colon, high_text = span.partition(":")
    where = f"--range {path.strip()}"
    if not sep or not colon or not path.strip():
        raise MigsimError(f"--range {text!r}: expected FIELD=LOW:HIGH")
    low, high = parse_value(low_text, where), parse_value(high_text, where)
    axis = field_axis(
        scenario, path.strip(), low, where=where, error=MigsimError, in_days=True
    )
    for end, value in (("low", low), ("high", high)):
        whole = not isinstance(value, float) or not math.isfinite(value)
        if axis.kind == "int" and not whole and not value.is_integer():
            # it was rounded without a word (100.5 ran as 100, 1e-300 as 0)
            raise MigsimError(
                f"{where}: {end} {value:g} is not a whole number, as the field is"
            )
    try:
        low, high = (
            axis.from_number(axis.to_number(low)),
            axis.from_number(axis.to_number(high)),
        )
    except (TypeError, ValueError, AttributeError, OverflowError):
        kind = "dates" if axis.kind == "date" else "finite numbers"
        raise MigsimError(f"{where}: low and high must be {kind}") from None
    if axis.to_number(low) > axis.to_number(high):
        raise MigsimError(
            f"{where}: low ({low}) is above high ({high}): an empty range"
        )
    for value in (low, high):
        try:
            scenario.with_overrides({axis.path: axis.to_json(value)}, origin=where)
        except ScenarioError as exc:
            raise MigsimError(str(exc)) from None
    return FieldRange(axis, low, high)


@dataclass
class Sensitivity:
    """A sensitivity study's table and provenance."""

    method: Literal["oat", "sobol"]
    scenario: Scenario
    ranges: list[FieldRange]
    figures: list[str]
    table: pd.DataFrame
    base: dict[str, float | None]
    seed: int
    replications: int
    points: int
    samples: int | None
    timing: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """What sensitivity.json holds."""
        rows = json.loads(self.table.to_json(orient="records"))
        out: dict[str, Any] = {
            "method": self.method,
            "scenario": self.scenario.name,
            "fields": {
                r.path: {"low": r.axis.to_json(r.low), "high": r.axis.to_json(r.high)}
                for r in self.ranges
            },
            "figures": self.figures,
            "rows": rows,
            "seed": self.seed,
            "replications": self.replications,
            "points": self.points,
            "model_runs": self.points * self.replications,
            "migsim_version": __version__,
            "migsim_source_sha256": source_sha256(),
            "scenario_sha256": self.scenario.sha256,
            "timing": self.timing,
        }
        if self.method == "oat":
            out["base"] = {k: json_number(v, ints=None) for k, v in self.base.items()}
        else:
            out["samples"] = self.samples
            out["note"] = (
                "a clearance day not within the horizon counts as the "
                "horizon's length; second-order indices are off"
            )
        return out


def _value(frame: pd.DataFrame, name: str) -> float:
    figure, statistic = _split_figure(name)
    return statistic_of(frame[figure].to_numpy(dtype=float), statistic)


def _swing(low: float, high: float) -> float:
    if low == high:  # also both +inf: the field does not move it
        return 0.0
    return abs(high - low)


def sensitivity(
    scenario: Scenario,
    ranges: Sequence[FieldRange],
    method: Literal["oat", "sobol"] = "oat",
    replications: int = 50,
    seed: int | None = None,
    workers: int = 1,
    *,
    samples: int = 64,
    figures: Sequence[str] | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Sensitivity:
    """Measure how much each field moves each figure.

    Parameters
    ----------
    scenario
        The base scenario.
    ranges
        Fields with their low and high values (see `parse_range`).
    method
        ``oat`` or ``sobol``.
    replications
        Replications per point (common random numbers across points).
    seed
        Run seed; ``None`` takes the scenario's own.
    workers
        Processes; results do not depend on it.
    samples
        Sobol: base samples N, a power of 2 from `MIN_SOBOL_SAMPLES` (4) to
        `MAX_SOBOL_SAMPLES` (points = N (k + 2)); fewer raise ValueError.
    figures
        ``name_statistic`` figures (default: `default_figures`).
    scheduler
        Address of a running Dask scheduler to run the points on instead.
    progress
        Called as ``progress(replications_done, replications_total)`` over all
        the points (see `Simulator.run`).
    """
    if not ranges:
        raise MigsimError("give at least one --range FIELD=LOW:HIGH")
    paths = [r.path for r in ranges]
    if len(set(paths)) != len(paths):
        raise MigsimError("--range: a field is given twice")
    repeated = repeated_field(scenario.to_dict(), paths)
    if repeated is not None:  # Sobol split the field's effect between the two
        raise MigsimError(
            f"--range {repeated[1]}: the same field as --range {repeated[0]} "
            + NAMED_TWICE
        )
    figures = list(figures or default_figures())
    for k, name in enumerate(figures):
        _split_figure(name)
        if name in figures[:k]:  # its rows were shown twice
            raise MigsimError(f"--figure {name}: given twice; give each figure once")
    seed = scenario.seed if seed is None else run_seed(seed)
    if seed != scenario.seed:  # as a run's: scenario.yaml reproduces it without --seed
        scenario = scenario.with_overrides({"seed": seed})
    started = time.perf_counter()
    with Simulator(workers, scheduler=scheduler) as simulator:
        if method == "oat":
            table, base, points = _oat(
                scenario, list(ranges), figures, replications, seed, simulator, progress
            )
            n_samples = None
        elif method == "sobol":
            # too few leave a field's quarter empty (`MIN_SOBOL_SAMPLES`)
            samples = whole_number(
                "samples", samples, MIN_SOBOL_SAMPLES, MAX_SOBOL_SAMPLES
            )
            if samples & (samples - 1):
                raise MigsimError(
                    f"--samples {samples}: must be a power of 2 (e.g. 64)"
                )
            table, points = _sobol(
                scenario,
                list(ranges),
                figures,
                replications,
                seed,
                simulator,
                samples,
                progress,
            )
            base, n_samples = {}, samples
        else:
            raise MigsimError(f"--method {method}: expected oat or sobol")
    timing = {"seconds": round(time.perf_counter() - started, 3), "workers": workers}
    return Sensitivity(
        method,
        scenario,
        list(ranges),
        figures,
        table,
        base,
        seed,
        replications,
        points,
        n_samples,
        timing,
    )


def _set(scenario: Scenario, values: Mapping[FieldRange, Any]) -> Scenario:
    return scenario.with_overrides(
        {r.path: r.axis.to_json(value) for r, value in values.items()},
        origin="sensitivity",
    )


def _oat(scenario, ranges, figures, replications, seed, simulator, progress=None):
    jobs = [(scenario, seed, 0, replications)]
    for r in ranges:
        jobs += [
            (_set(scenario, {r: r.low}), seed, 0, replications),
            (_set(scenario, {r: r.high}), seed, 0, replications),
        ]
    frames = simulator.run(jobs, progress=progress)
    base = {name: _value(frames[0], name) for name in figures}
    indices = bootstrap_indices(replications, seed, BOOTSTRAP_RESAMPLES)
    rows = []
    for i, r in enumerate(ranges):
        low_frame, high_frame = frames[1 + 2 * i], frames[2 + 2 * i]
        for name in figures:
            low, high = _value(low_frame, name), _value(high_frame, name)
            ci = _change_ci(low_frame, high_frame, name, indices)
            rows.append(
                {
                    "field": r.path,
                    "figure": name,
                    "value_low": low,
                    "value_high": high,
                    "swing": _swing(low, high),
                    "change_ci95_low": ci[0],
                    "change_ci95_high": ci[1],
                    "field_low": r.axis.to_json(r.low),
                    "field_high": r.axis.to_json(r.high),
                    "value_base": base[name],
                    "order": i,
                }
            )
    table = _rank(pd.DataFrame(rows), figures, "swing")
    return table, base, len(jobs)


def _change_ci(
    low: pd.DataFrame, high: pd.DataFrame, name: str, indices: np.ndarray
) -> tuple[float, float]:
    """95% interval of ``value_high - value_low`` on the replication pairs
    (`compare.paired_difference`); NaN where it is undefined (a mean or both
    quantiles over a backlog not cleared)."""
    if not low["replication"].equals(high["replication"]):
        raise RuntimeError("sensitivity points ran different replications")
    figure, statistic = _split_figure(name)
    _, ci = paired_difference(
        low[figure].to_numpy(dtype=float),
        high[figure].to_numpy(dtype=float),
        statistic,
        indices,
    )
    if ci is None or ci[0] is None or ci[1] is None:
        return math.nan, math.nan
    return float(ci[0]), float(ci[1])


def _rank(table: pd.DataFrame, figures: list[str], by: str) -> pd.DataFrame:
    """Within each figure (given order), largest ``by`` first, ties in field order."""
    table = table.assign(
        _figure=table["figure"].map({f: i for i, f in enumerate(figures)})
    )
    table = table.sort_values(
        ["_figure", by, "order"], ascending=[True, False, True], kind="stable"
    )
    return table.drop(columns=["_figure", "order"]).reset_index(drop=True)


def _sobol(
    scenario, ranges, figures, replications, seed, simulator, samples, progress=None
):
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    bounds = [[r.axis.to_number(r.low), r.axis.to_number(r.high)] for r in ranges]
    for pair in bounds:
        if pair[0] == pair[1]:
            pair[1] = pair[0] + 1e-9  # SALib needs a width; the value stays put
    problem = {
        "num_vars": len(ranges),
        "names": [r.path for r in ranges],
        "bounds": bounds,
    }
    points = sobol_sample.sample(problem, samples, calc_second_order=False, seed=seed)
    jobs = [
        (
            _set(
                scenario,
                {r: r.axis.from_number(x) for r, x in zip(ranges, row, strict=True)},
            ),
            seed,
            0,
            replications,
        )
        for row in points
    ]
    frames = simulator.run(jobs, progress=progress)
    rows = []
    for name in figures:
        outputs = np.array([_value(frame, name) for frame in frames], dtype=float)
        if name.startswith("clearance_day_"):
            outputs = np.where(np.isfinite(outputs), outputs, scenario.horizon_days)
        if np.ptp(outputs) == 0:
            indices = {
                key: np.zeros(len(ranges)) for key in ("S1", "S1_conf", "ST", "ST_conf")
            }
        else:
            indices = sobol_analyze.analyze(
                problem, outputs, calc_second_order=False, conf_level=0.95, seed=seed
            )
        for i, r in enumerate(ranges):
            column = points[:, i]
            width = bounds[i][1] - bounds[i][0]
            lowest = column <= bounds[i][0] + width / 4
            highest = column >= bounds[i][1] - width / 4
            if r.axis.to_number(r.low) == r.axis.to_number(r.high):
                # a field held at one value is at its low and its high at every
                # point: the quarters of SALib's token width split the other
                # fields' points and gave it a swing it never had
                lowest = highest = np.ones(len(column), dtype=bool)
            low = float(outputs[lowest].mean()) if lowest.any() else math.nan
            high = float(outputs[highest].mean()) if highest.any() else math.nan
            rows.append(
                {
                    "field": r.path,
                    "figure": name,
                    "value_low": low,
                    "value_high": high,
                    "swing": _swing(low, high),
                    "s1": float(indices["S1"][i]),
                    "s1_ci": float(indices["S1_conf"][i]),
                    "st": float(indices["ST"][i]),
                    "st_ci": float(indices["ST_conf"][i]),
                    "field_low": r.axis.to_json(r.low),
                    "field_high": r.axis.to_json(r.high),
                    "order": i,
                }
            )
    return _rank(pd.DataFrame(rows), figures, "st"), len(jobs)
