"""Uncertain dates of one replication, drawn once, and the gates they open.

Every date field of a scenario (`Scenario.date_fields`: a date, a date
distribution or a gate's name) becomes a day on the clock. Each is drawn from
its own stream named by the field's dotted path, so a new gate never shifts
another date's draw. Gates open on their ``opens_on`` date, or on the latest
(``all_of``) or earliest (``any_of``) day their conditions are met; a gate that
never opens gives ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from migsim.model.cohort import Cohort
from migsim.model.distributions import TriangularDate, UniformDate, gate_reference
from migsim.model.scenario import Scenario
from migsim.model.uncertainty import SlipDate
from migsim.sim.inputs import slip_day

__all__ = ["NEVER", "ResolvedDates", "resolve_dates"]

#: A day far beyond any horizon: "never" for a gate that does not open.
NEVER = 10**9


@dataclass(frozen=True)
class ResolvedDates:
    """The uncertain dates of one replication, as days on the clock.

    Attributes
    ----------
    days
        ``{dotted.path: day}`` for every date field of the scenario
        (`Scenario.date_fields`); ``None`` when it names a gate that never opens.
    gate_days
        ``{gate: day}``: the day each gate opens, ``None`` when it never does.
    """

    days: dict[str, int | None]
    gate_days: dict[str, int | None]

    def day(self, path: str, default: int | None = None) -> int | None:
        """The resolved day of a date field; ``default`` when the field is unset."""
        return self.days[path] if path in self.days else default

    def eligibility(self, cohort: Cohort) -> dict[int, int]:
        """``{day: installations}`` of a cohort becoming eligible.

        All on its ``eligible_from`` day (0 when unset), except deferred shares,
        not before their ``until``; a gate that never opens gives `NEVER`.
        """
        prefix = f"cohorts.{cohort.name}"
        start = _or_never(self.day(f"{prefix}.eligible_from", 0))
        out = {start: cohort.installations}
        for item, count in zip(cohort.deferred, cohort.deferred_counts(), strict=True):
            day = max(
                start, _or_never(self.day(f"{prefix}.deferred.{item.name}.until"))
            )
            out[start] -= count
            out[day] = out.get(day, 0) + count
        return out

    def stall_release_day(self, cohort: Cohort) -> int | None:
        """The day before which no stall of the cohort resolves (``None``: none)."""
        if cohort.stall is None or cohort.stall.release_on is None:
            return None
        return _or_never(self.day(f"cohorts.{cohort.name}.stall.release_on"))


#: Redraws of a date that must not fall before a mid-programme start.
_REDRAWS = 200


def _or_never(day: int | None) -> int:
    return NEVER if day is None else day


def _draw_day(
    spec: TriangularDate | UniformDate, rng: np.random.Generator, scenario: Scenario
) -> int:
    low, high = scenario.day_of(spec.low), scenario.day_of(spec.high)
    if isinstance(spec, UniformDate):
        return int(rng.integers(low, high + 1))
    if high == low:
        return low
    return math.floor(rng.triangular(low, scenario.day_of(spec.mode), high) + 0.5)


def resolve_dates(scenario: Scenario, streams) -> ResolvedDates:
    """Draw every uncertain date of one replication and open the gates.

    Parameters
    ----------
    scenario
        The scenario.
    streams
        The replication's random streams (`streams.Streams`): a date field draws
        from ``streams.get(path, "date")``, an acceptance from
        ``streams.get(condition path, "accepted")``.
    """
    fields = scenario.date_fields()
    gates = {g.name: g for g in scenario.gates}
    days: dict[str, int | None] = {}
    gate_days: dict[str, int | None] = {}

    def resolve(path: str) -> int | None:
        if path not in days:
            spec = fields[path]
            name = gate_reference(spec)
            if name is not None:
                days[path] = open_gate(name)
            elif isinstance(spec, date):
                days[path] = scenario.day_of(spec)
            elif isinstance(spec, SlipDate):  # planned + slip (sim/inputs.py)
                days[path] = slip_day(
                    spec, streams.get(path, "date"), scenario, streams
                )
            else:
                days[path] = _draw_day(spec, streams.get(path, "date"), scenario)
        return days[path]

    def open_gate(name: str) -> int | None:
        if name in gate_days:
            return gate_days[name]
        gate = gates[name]
        if gate.opens_on is not None:
            day = resolve(f"gates.{name}.opens_on")
        else:
            kind = "all_of" if gate.all_of else "any_of"
            met: list[int | None] = []
            for condition in gate.conditions:
                path = f"gates.{name}.{kind}.{condition.name}"
                if condition.fixed_on is not None:
                    met.append(resolve(f"{path}.fixed_on"))
                    continue
                accepted = (
                    streams.get(path, "accepted").random() < condition.probability
                )
                on = resolve(f"{path}.accepted_on")
                met.append(on if accepted else None)
            known = [m for m in met if m is not None]
            if kind == "all_of":
                day = max(known) if len(known) == len(met) else None
            else:
                day = min(known) if known else None
        gate_days[name] = day
        return day

    state = scenario.operations_state
    passed = (
        {}
        if state is None
        else {p: scenario.day_of(d) for p, d in state.dates_passed.items()}
    )
    opened = (
        {}
        if state is None
        else {g: scenario.day_of(d) for g, d in state.gates_open.items()}
    )

    def draw_all() -> None:
        """One draw of every date and gate, those passed before day 0 kept: a
        redraw of a mid-programme start is the same draw, its streams going on."""
        days.clear()
        gate_days.clear()
        days.update(passed)
        gate_days.update(opened)
        for path in fields:
            resolve(path)
        for name in gates:
            open_gate(name)

    if state is None or not (
        state.condition_dates or state.dates_pending or state.gates_closed
    ):
        draw_all()
        return ResolvedDates(days, gate_days)
    # A mid-programme start: what passed is known; what had not happened by day 0
    # (everything else with condition_dates, or the listed dates and gates) is
    # drawn conditioned on that, jointly: all unknown dates are redrawn (their
    # streams going on) until every such date and gate falls on or after day 0.
    uncertain = [
        p
        for p, spec in fields.items()
        if p not in passed
        and not isinstance(spec, date)
        and gate_reference(spec) is None
    ]
    watched_paths = uncertain if state.condition_dates else list(state.dates_pending)
    watched_gates = (
        [g for g in gates if g not in opened]
        if state.condition_dates
        else list(state.gates_closed)
    )
    for _ in range(_REDRAWS):
        draw_all()
        if all(_not_before_start(days[p]) for p in watched_paths) and all(
            _not_before_start(gate_days[g]) for g in watched_gates
        ):
            break
    # no draw satisfied them: not before day 0 at least
    for resolved, names in ((days, watched_paths), (gate_days, watched_gates)):
        for name in names:
            day = resolved[name]
            if day is not None:
                resolved[name] = max(day, 0)
    return ResolvedDates(days, gate_days)


def _not_before_start(day: int | None) -> bool:
    """A date on or after day 0 of a mid-programme start, or one that never comes."""
    return day is None or day >= 0
