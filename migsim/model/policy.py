"""The ramp policy a scenario may state (docs/ramp-policy.md).

Which days migrations may run (`Calendar`: working days, closures, bank holidays,
change freezes); the daily cap, its planned ``schedule`` and evidence-based
``rules`` (`Capacity`); go/no-go incidents (`GoNoGo`); and named `Gate`
conditions with uncertain opening dates. `migsim.sim.policy` applies them day by
day.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_serializer,
    model_validator,
)

from migsim.model.base import Name, Probability, SchemaModel, check_unique
from migsim.model.distributions import DateSpec, Delay, ShareDist, gate_reference
from migsim.model.uncertainty import AchievedThroughput, CapRange

__all__ = [
    "ACTIONS",
    "CONFIDENCE_METRICS",
    "METRICS",
    "RESERVED_CAP_LABELS",
    "Calendar",
    "Capacity",
    "Condition",
    "Freeze",
    "Gate",
    "GateCondition",
    "GoNoGo",
    "Requires",
    "Rule",
    "ScheduleStep",
    "gate_cycle",
    "gate_date_fields",
]


#: Metrics a capacity rule may test (definitions in docs/ramp-policy.md).
METRICS = (
    "first_attempt_success_rate",  # successes / attempts
    "eventual_success_rate",  # (successes + stall completions) / resolved attempts
    "stall_rate",  # stalls / attempts
    "rollback_rate",  # rollbacks / attempts
    "dumb_count",  # devices gone dumb in the window (recovered ones included)
    "active_fix_forward_count",  # fix forwards of active installations
    "stalled_backlog",  # largest end-of-day stalled count
    "attempt_count",  # attempts made (a guard against tiny samples)
    "active_failure_rate_upper",  # Clopper-Pearson upper bound, cumulative
    "els_backlog",  # largest end-of-day ELS/MCC case backlog (needs an els section)
)
#: Metrics whose condition states a ``confidence``.
CONFIDENCE_METRICS = ("active_failure_rate_upper",)
#: Metrics that are shares of attempts, from 0 to 1: so are their thresholds.
SHARE_METRICS = tuple(m for m in METRICS if m.endswith(("_rate", "_rate_upper")))
#: Rule actions, by precedence kind (halt beats cut beats hold beats raise).
ACTIONS = {
    "halt_days": "halt",
    "cut_to": "cut",
    "hold": "hold",
    "raise_to": "raise",
    "step_factor": "raise",
}
#: cap_rule labels migsim itself uses (so no rule, step or freeze may take them).
RESERVED_CAP_LABELS = ("daily_cap", "closed", "no_go")


# --------------------------------------------------------------------------- capacity
class Freeze(SchemaModel):
    """A change freeze: from ``from`` to ``to`` inclusive, the day's cap is
    multiplied by ``cap_factor`` (0: no migrations), rounded down."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", serialize_by_alias=True, defer_build=True
    )

    name: Name
    from_: date = Field(alias="from")
    to: date
    cap_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.to < self.from_:
            raise ValueError(f"to ({self.to}) is before from ({self.from_})")
        return self


Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _monday_to_friday() -> list[Weekday]:
    return ["Mon", "Tue", "Wed", "Thu", "Fri"]


class Calendar(SchemaModel):
    """Which days migrations may run."""

    working_days: list[Weekday] = Field(default_factory=_monday_to_friday)
    closures: list[date] = Field(default_factory=list)  # dates with no migrations
    # Great Britain bank holidays (from the `holidays` package): no migrations
    bank_holidays: Literal["england", "scotland", "none"] = "none"
    freezes: list[Freeze] = Field(default_factory=list)

    @field_validator("working_days")
    @classmethod
    def _unique_days(cls, value: list[str]) -> list[str]:
        if not value:  # no schedule step or rule can open a day: nothing migrates
            raise ValueError(
                "no working day: list at least one (e.g. [Mon, Tue, Wed, Thu, Fri]) "
                "or leave working_days out for Monday to Friday"
            )
        if len(set(value)) != len(value):
            raise ValueError("working_days lists a day twice")
        return value

    @field_validator("freezes")
    @classmethod
    def _unique_freezes(cls, freezes: list[Freeze]) -> list[Freeze]:
        check_unique("freeze", [f.name for f in freezes])
        return freezes


class ScheduleStep(SchemaModel):
    """A planned step change of the cap: ``daily_cap`` from date ``from`` on.

    The step sets the cap on its date (whatever rules did before) and, while it
    is in force, is the most a rule's step-up may reach.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", serialize_by_alias=True, defer_build=True
    )

    name: Name | None = None  # labels the step in .daily's cap_rule
    from_: DateSpec = Field(alias="from")
    daily_cap: NonNegativeInt
    # an estimate: the cap drawn per replication (daily_cap is its point value)
    daily_cap_range: CapRange | None = None

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if data.get("daily_cap_range", ...) is None:
            del data["daily_cap_range"]
        return data

    @model_validator(mode="after")
    def _cap_range_fits(self) -> ScheduleStep:
        if self.daily_cap_range is not None:
            self.daily_cap_range.check(self.daily_cap)
        return self


class Condition(SchemaModel):
    """One test of a rule: ``metric`` over the last ``window`` attempt days
    compared with ``value`` by ``op``."""

    metric: str
    window: PositiveInt = 1
    op: Literal["<", "<=", ">", ">="]
    value: float
    confidence: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
        return metric

    @model_validator(mode="after")
    def _share_between_0_and_1(self) -> Condition:
        """A rate's threshold outside [0, 1] makes a rule that always or never
        fires, silently: most likely a percentage typed as one (8 for 8%)."""
        if self.metric in SHARE_METRICS and not 0.0 <= self.value <= 1.0:
            raise ValueError(
                f"value: {self.value:g} is not a share between 0 and 1, as "
                f"{self.metric} is (8% is 0.08)"
            )
        return self

    @model_validator(mode="after")
    def _confidence_where_needed(self) -> Condition:
        needs = self.metric in CONFIDENCE_METRICS
        if needs and self.confidence is None:
            raise ValueError(f"metric {self.metric} needs a confidence, e.g. 0.95")
        if not needs and self.confidence is not None:
            raise ValueError(f"metric {self.metric} takes no confidence")
        return self


class Requires(SchemaModel):
    """What must be true, besides the conditions, before a rule may fire."""

    gate: str | None = None  # the gate must have opened
    min_days_at_cap: NonNegativeInt = 0  # working days since the cap last changed


#: Parameters each action needs; every other action parameter must be absent.
_ACTION_PARAMETERS = {
    "raise_to": ("cap",),
    "step_factor": ("factor",),
    "hold": ("days",),
    "cut_to": ("cap",),
    "halt_days": ("days",),
}
_OPTIONAL_PARAMETERS = {"raise_to": ("max_cap",), "step_factor": ("max_cap",)}


class Rule(SchemaModel):
    """An evidence-based capacity rule: when every condition holds (and its
    ``requires``), take ``action`` with the parameters given on the rule."""

    name: Name
    when: list[Condition] = Field(default_factory=list)
    requires: Requires = Field(default_factory=Requires)
    action: Literal["raise_to", "step_factor", "hold", "cut_to", "halt_days"]
    cap: NonNegativeInt | None = None  # raise_to, cut_to: the new cap
    factor: Annotated[float, Field(gt=1.0)] | None = None  # step_factor
    max_cap: NonNegativeInt | None = None  # raise_to, step_factor: never above
    days: PositiveInt | None = None  # halt_days, hold: working days it lasts

    @model_validator(mode="after")
    def _parameters_fit_action(self) -> Rule:
        needed = _ACTION_PARAMETERS[self.action]
        allowed = needed + _OPTIONAL_PARAMETERS.get(self.action, ())
        missing = [p for p in needed if getattr(self, p) is None]
        if missing:
            raise ValueError(f"action {self.action} needs {', '.join(missing)}")
        extra = [
            p
            for p in ("cap", "factor", "max_cap", "days")
            if p not in allowed and getattr(self, p) is not None
        ]
        if extra:
            raise ValueError(f"action {self.action} takes no {', '.join(extra)}")
        return self

    @property
    def kind(self) -> str:
        """``halt``, ``cut``, ``hold`` or ``raise``: decides precedence."""
        return ACTIONS[self.action]

    @property
    def window(self) -> int:
        """New attempt days needed before the rule may fire again."""
        return max((c.window for c in self.when), default=0)


class Capacity(SchemaModel):
    """How many installations may be attempted per working day, and how shared."""

    daily_cap: NonNegativeInt
    allocation: Literal["pro_rata", "priority", "msm"] = "pro_rata"
    dmin: NonNegativeInt | None = None  # msm (required): a supplier's flat allocation
    achieved_share: ShareDist | None = None  # None: the whole cap is usable every day
    # or a persistent (AR(1)) achieved share around an uncertain mean
    achieved: AchievedThroughput | None = None
    schedule: list[ScheduleStep] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler: Any) -> dict[str, Any]:
        """Leave out an absent ``achieved`` (a scenario hashes as before it)."""
        data = handler(self)
        if data.get("achieved", ...) is None:
            del data["achieved"]
        return data

    @model_validator(mode="after")
    def _one_achieved_share(self) -> Capacity:
        if self.achieved is not None and self.achieved_share is not None:
            raise ValueError("give achieved_share or achieved, not both")
        return self

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, rules: list[Rule]) -> list[Rule]:
        check_unique("rule", [r.name for r in rules])
        return rules

    @field_validator("schedule")
    @classmethod
    def _unique_steps(cls, steps: list[ScheduleStep]) -> list[ScheduleStep]:
        check_unique("schedule step", [s.name for s in steps if s.name])
        first: dict[date | str, str] = {}
        for index, step in enumerate(steps):
            if not isinstance(step.from_, (date, str)):
                continue  # uncertain dates may meet on a day: the later wins then
            label = step.name or f"step {index}"
            if step.from_ in first:
                raise ValueError(
                    f"{first[step.from_]} and {label} both start on {step.from_}: "
                    "only the later in the file would take effect"
                )
            first[step.from_] = label
        return steps


class GoNoGo(SchemaModel):
    """Daily go/no-go on SMETS2 impact: incidents start on a calendar day with
    ``incident_probability`` and last ``incident_duration_days``; no migrations
    while one is open."""

    incident_probability: Probability
    incident_duration_days: Delay


class GateCondition(SchemaModel):
    """One condition of a gate: met on a fix date (``fixed_on``), or by
    acceptance: on ``accepted_on`` with ``probability`` (drawn per replication;
    otherwise never)."""

    name: Name
    fixed_on: DateSpec | None = None
    accepted_on: DateSpec | None = None
    probability: Probability | None = None

    @model_validator(mode="after")
    def _one_way(self) -> GateCondition:
        if (self.fixed_on is None) == (self.accepted_on is None):
            raise ValueError("give exactly one of fixed_on, accepted_on")
        if self.accepted_on is not None and self.probability is None:
            raise ValueError("accepted_on needs a probability")
        if self.fixed_on is not None and self.probability is not None:
            raise ValueError("a fix takes no probability (use accepted_on)")
        return self


class Gate(SchemaModel):
    """A named condition with an uncertain date: opens on ``opens_on``, or when
    ``all_of`` (every one) or ``any_of`` (the first) of its conditions is met."""

    name: Name
    description: str = ""
    opens_on: DateSpec | None = None
    all_of: list[GateCondition] | None = None
    any_of: list[GateCondition] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Gate:
        given = [k for k in ("opens_on", "all_of", "any_of") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of opens_on, all_of, any_of")
        conditions = self.conditions
        check_unique("condition", [c.name for c in conditions])
        return self

    @property
    def conditions(self) -> list[GateCondition]:
        return list(self.all_of or self.any_of or [])


# --------------------------------------------------------------------------- gates
def gate_date_fields(gate: Gate) -> dict[str, Any]:
    """A gate's `DateSpec` fields as ``{dotted.path: spec}``, for
    `Scenario.date_fields`."""
    prefix = f"gates.{gate.name}"
    if gate.opens_on is not None:
        return {f"{prefix}.opens_on": gate.opens_on}
    kind = "all_of" if gate.all_of else "any_of"
    out = {}
    for condition in gate.conditions:
        field = "fixed_on" if condition.fixed_on is not None else "accepted_on"
        out[f"{prefix}.{kind}.{condition.name}.{field}"] = getattr(condition, field)
    return out


def _gate_references(gate: Gate) -> list[str]:
    """The gates this gate opens on (by name)."""
    names = (gate_reference(spec) for spec in gate_date_fields(gate).values())
    return [name for name in names if name is not None]


def gate_cycle(gates: dict[str, Gate]) -> list[str] | None:
    """A cycle of gates opening on each other (as names, first repeated), if any."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        visiting.append(name)
        for nxt in _gate_references(gates[name]):
            if nxt in visiting:
                return [*visiting[visiting.index(nxt) :], nxt]
            if nxt not in done and nxt in gates:
                found = visit(nxt)
                if found:
                    return found
        visiting.pop()
        done.add(name)
        return None

    for name in gates:
        if name not in done:
            found = visit(name)
            if found:
                return found
    return None
