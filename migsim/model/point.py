"""Point values: the same scenario with every uncertain input fixed.

``uncertainty: point`` in a scenario (or ``migsim run --point``) runs it with each
input at its point value, so a planner sees what the uncertainty adds:

- outcome rates (Dirichlet) and a stall's ``then_success`` (Beta): their means;
- dates: a slip's planned date (or its ``not_before`` if later), a triangular
  date's mode, a uniform date's middle day (rounded down); the programme-delay
  factor goes (no slip to scale);
- achieved throughput: its mean share (the day-to-day AR(1) process stays);
- sizes and ramp caps: each cohort's stated ``installations`` and each step's
  ``daily_cap`` (the ranges go).

Day-to-day randomness (attempt outcomes, delays, incidents, latent defects, gate
acceptances) stays: a point run is still a Monte Carlo run, of the known inputs.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from migsim.model.base import OUTCOMES
from migsim.model.distributions import (
    BetaProbability,
    DirichletOutcomes,
    TriangularDate,
    UniformDate,
)
from migsim.model.paths import flatten, set_field
from migsim.model.scenario import Scenario
from migsim.model.uncertainty import ShareBeta, SlipDate

__all__ = ["date_point", "point_scenario"]


def date_point(spec: Any) -> Any:
    """The point value of a `DateSpec`: a date for a distribution, else as is."""
    if isinstance(spec, SlipDate):
        return spec.point  # the plan (or not_before, when the plan is past)
    if isinstance(spec, TriangularDate):
        return spec.mode
    if isinstance(spec, UniformDate):
        return spec.low + timedelta(days=(spec.high - spec.low).days // 2)
    return spec


def _rates(outcomes: DirichletOutcomes) -> dict[str, float]:
    mean = outcomes.mean()
    return {name: float(rate) for name, rate in zip(OUTCOMES, mean, strict=True)}


def point_scenario(scenario: Scenario) -> Scenario:
    """The scenario with every uncertain input at its point value (see module).

    The result says ``uncertainty: point``; applying this again changes nothing.
    """
    data = scenario.to_dict()
    origin = f"{scenario.name}: point values"
    changes: dict[str, Any] = {}
    for path, spec in scenario.date_fields().items():
        value = date_point(spec)
        if value is not spec and isinstance(value, date):
            changes[path] = value.isoformat()
    for cohort in scenario.cohorts:
        prefix = f"cohorts.{cohort.name}"
        if isinstance(cohort.outcomes, DirichletOutcomes):
            changes[f"{prefix}.outcomes"] = _rates(cohort.outcomes)
        if cohort.hard is not None and isinstance(
            cohort.hard.outcomes, DirichletOutcomes
        ):
            changes[f"{prefix}.hard.outcomes"] = _rates(cohort.hard.outcomes)
        then = cohort.stall.then_success if cohort.stall is not None else None
        if isinstance(then, BetaProbability):
            changes[f"{prefix}.stall.then_success"] = then.mean
    achieved = scenario.capacity.achieved
    if achieved is not None and isinstance(achieved.mean, ShareBeta):
        changes["capacity.achieved.mean"] = achieved.point
    for path, value in changes.items():
        set_field(data, path, value, origin=origin)
    for cohort in data["cohorts"]:
        cohort.pop("installations_range", None)
    for step in data["capacity"].get("schedule", []):
        step.pop("daily_cap_range", None)
    data.pop("programme_delay", None)  # shared slips are planned dates now
    data.pop("meters_per_installation_range", None)
    data["uncertainty"] = "point"
    data["sources"] = _sources_still_named(data)
    return Scenario.model_validate(data)


def _sources_still_named(data: dict[str, Any]) -> dict[str, str]:
    """The sources whose field is still there (a range or a prior has gone)."""
    fields = flatten({k: v for k, v in data.items() if k != "sources"})
    known = {k.rsplit(".", i)[0] for k in fields for i in range(k.count(".") + 1)}
    return {k: v for k, v in data.get("sources", {}).items() if k in known}
