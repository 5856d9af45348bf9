"""Scenario: the planner's description of a migration programme, as validated data.

A scenario is read from YAML with ``yaml.safe_load`` (never code), optionally
extending another file, validated in full by pydantic models that own every
default, and then frozen. Everything downstream (engine, runner, results) reads
these models and nothing else. Fields are addressed by *dotted paths*
(``cohorts.elster_dormant.outcomes.success``) in ``--set`` overrides, sweeps and
``sources``; list items that carry a ``name`` (cohorts, capacity rules, gates,
freezes) are addressed by that name.

Ramp policy (docs/ramp-policy.md) is optional data here too: bank holidays and
change freezes in ``calendar``, a ``capacity.schedule`` and ``capacity.rules``,
``go_no_go`` incidents and named ``gates``. Dates that may be uncertain
(`DateSpec`: a cohort's ``eligible_from``, ``stall.release_on``, a schedule
step's ``from``, a gate's opening) are a date, a date distribution drawn once per
replication, or the name of a gate; `migsim.sim.policy` resolves them per replication.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    NonPositiveInt,
    PlainSerializer,
    PlainValidator,
    PositiveInt,
    SerializationInfo,
    Tag,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from scipy import stats

from migsim.common.errors import ScenarioError
from migsim.model.uncertainty import (
    AchievedThroughput,
    OutcomeEvidence,
    ProgrammeDelay,
    SizeRange,
    SlipDate,
)

__all__ = [
    "ACTIONS",
    "METRICS",
    "OUTCOMES",
    "Calendar",
    "Capacity",
    "ChangeOfSupplier",
    "Cohort",
    "BetaProbability",
    "DateSpec",
    "Delay",
    "DirichletOutcomes",
    "DumbSpec",
    "Els",
    "Exclusion",
    "Gate",
    "HardCases",
    "InitialState",
    "LatentDefect",
    "OperationsState",
    "OutcomeRates",
    "Outcomes",
    "PpmidJoin",
    "RateIncrease",
    "Rule",
    "ShareDist",
    "Supplier",
    "VolumeFailures",
    "Scenario",
    "get_field",
    "load_scenario",
]

#: First-level outcomes of one attempt, in the order used everywhere.
OUTCOMES = ("success", "stall", "rollback", "fix_forward", "dumb")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
_RATE_TOLERANCE = 1e-9
#: Lognormal delays are cut at this quantile; the tail mass goes on the last day.
LOGNORMAL_CUT = 0.9999
#: Metrics a capacity rule may test (definitions in docs/ramp-policy.md).
METRICS = (
    "first_attempt_success_rate",  # successes / attempts
    "eventual_success_rate",  # (successes + stall completions) / resolved attempts
    "stall_rate",  # stalls / attempts
    "rollback_rate",  # rollbacks / attempts
    "dumb_count",  # devices left dumb
    "active_fix_forward_count",  # fix forwards of active installations
    "stalled_backlog",  # largest end-of-day stalled count
    "attempt_count",  # attempts made (a guard against tiny samples)
    "active_failure_rate_upper",  # Clopper-Pearson upper bound, cumulative
    "els_backlog",  # largest end-of-day ELS/MCC case backlog (needs an els section)
)
#: Metrics whose condition states a ``confidence``.
CONFIDENCE_METRICS = ("active_failure_rate_upper",)
#: Rule actions, by precedence kind (halt beats cut beats hold beats raise).
ACTIONS = {
    "halt_days": "halt",
    "cut_to": "cut",
    "hold": "hold",
    "raise_to": "raise",
    "step_factor": "raise",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    """Base for every scenario model: immutable, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- delays
class _DelayBase(_Model):
    """A delay in whole calendar days (at least 1), drawn in groups as counts.

    ``pmf()`` gives the discrete distribution on days; the engine draws a batch of
    ``n`` delays as one multinomial over it, so cost does not grow with ``n``.
    """

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(days, probabilities)``: days ascending, probabilities sum to 1."""
        raise NotImplementedError

    @property
    def mean(self) -> float:
        days, probs = self.pmf()
        return float(days @ probs)


def _ceil_pmf(cdf, low_day: int, high_day: int) -> tuple[np.ndarray, np.ndarray]:
    """Discretise a continuous delay by rounding up: P(D=k) = F(k) - F(k-1).

    Days below 1 are folded onto day 1, mass above ``high_day`` onto ``high_day``.
    """
    low_day = max(1, low_day)
    high_day = max(low_day, high_day)
    days = np.arange(low_day, high_day + 1)
    upper = cdf(days.astype(float))
    upper[-1] = 1.0
    lower = np.concatenate(([0.0], upper[:-1]))
    probs = np.clip(upper - lower, 0.0, None)
    probs /= probs.sum()
    keep = probs > 0
    return days[keep], probs[keep]


class FixedDelay(_DelayBase):
    """Always ``days`` days."""

    dist: Literal["fixed"]
    days: PositiveInt

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([self.days]), np.array([1.0])


class UniformDelay(_DelayBase):
    """Any whole day from ``low`` to ``high`` inclusive, equally likely."""

    dist: Literal["uniform"]
    low: PositiveInt
    high: PositiveInt

    @model_validator(mode="after")
    def _ordered(self) -> UniformDelay:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        return self

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        days = np.arange(self.low, self.high + 1)
        return days, np.full(len(days), 1.0 / len(days))


class TriangularDelay(_DelayBase):
    """Continuous triangular(low, mode, high), rounded up to whole days (minimum 1)."""

    dist: Literal["triangular"]
    low: Annotated[float, Field(ge=1)]
    mode: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> TriangularDelay:
        if not self.low <= self.mode <= self.high:
            raise ValueError(
                f"mode ({self.mode}) must lie in [low, high] = [{self.low}, {self.high}]"
            )
        return self

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        if self.high == self.low:
            return np.array([math.ceil(self.low)]), np.array([1.0])
        width = self.high - self.low
        dist = stats.triang(c=(self.mode - self.low) / width, loc=self.low, scale=width)
        return _ceil_pmf(dist.cdf, math.ceil(self.low), math.ceil(self.high))


class LognormalDelay(_DelayBase):
    """Lognormal with the given median (days) and sigma (of the log), rounded up.

    Cut at its 0.9999 quantile, with the tail mass on the last day, so the
    support is finite and grouped draws stay cheap.
    """

    dist: Literal["lognormal"]
    median: Annotated[float, Field(ge=1)]
    sigma: Annotated[float, Field(gt=0)]

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        dist = stats.lognorm(s=self.sigma, scale=self.median)
        last = math.ceil(float(dist.ppf(LOGNORMAL_CUT)))
        return _ceil_pmf(dist.cdf, 1, last)


Delay = Annotated[
    FixedDelay | UniformDelay | TriangularDelay | LognormalDelay,
    Field(discriminator="dist"),
]


# --------------------------------------------------------------------------- shares
class _ShareBase(_Model):
    """A share in [0, 1] drawn afresh each day (e.g. the share of the cap achieved)."""

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws, each in [0, 1]."""
        raise NotImplementedError

    @property
    def mean(self) -> float:
        raise NotImplementedError


class FixedShare(_ShareBase):
    """Always ``value``."""

    dist: Literal["fixed"]
    value: Probability

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value)

    @property
    def mean(self) -> float:
        return self.value


class UniformShare(_ShareBase):
    """Any value from ``low`` to ``high``, equally likely."""

    dist: Literal["uniform"]
    low: Probability
    high: Probability

    @model_validator(mode="after")
    def _ordered(self) -> UniformShare:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        return self

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


class TriangularShare(_ShareBase):
    """Triangular(low, mode, high) on [0, 1]."""

    dist: Literal["triangular"]
    low: Probability
    mode: Probability
    high: Probability

    @model_validator(mode="after")
    def _ordered(self) -> TriangularShare:
        if not self.low <= self.mode <= self.high:
            raise ValueError(
                f"mode ({self.mode}) must lie in [low, high] = "
                f"[{self.low}, {self.high}]"
            )
        return self

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.high == self.low:
            return np.full(size, self.low)
        return rng.triangular(self.low, self.mode, self.high, size)

    @property
    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3


class BetaShare(_ShareBase):
    """Beta(alpha, beta): mean alpha / (alpha + beta)."""

    dist: Literal["beta"]
    alpha: Annotated[float, Field(gt=0)]
    beta: Annotated[float, Field(gt=0)]

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.beta(self.alpha, self.beta, size)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


ShareDist = Annotated[
    FixedShare | UniformShare | TriangularShare | BetaShare,
    Field(discriminator="dist"),
]


# --------------------------------------------------------------------------- dates
class TriangularDate(_Model):
    """A date drawn once per replication: triangular(low, mode, high) on the day
    clock, rounded to the nearest day (so ``low`` and ``high`` are reachable)."""

    dist: Literal["triangular"]
    low: date
    mode: date
    high: date

    @model_validator(mode="after")
    def _ordered(self) -> TriangularDate:
        if not self.low <= self.mode <= self.high:
            raise ValueError(
                f"mode ({self.mode}) must lie in [low, high] = "
                f"[{self.low}, {self.high}]"
            )
        return self


class UniformDate(_Model):
    """A date drawn once per replication: any day from ``low`` to ``high``
    inclusive, equally likely."""

    dist: Literal["uniform"]
    low: date
    high: date

    @model_validator(mode="after")
    def _ordered(self) -> UniformDate:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is before low ({self.low})")
        return self


_DATE_DISTS: dict[str, type[TriangularDate] | type[UniformDate] | type[SlipDate]] = {
    "triangular": TriangularDate,
    "uniform": UniformDate,
    "slip": SlipDate,  # planned date + heavy-tailed slip (model/uncertainty.py)
}
_LOOKS_LIKE_DATE = re.compile(r"^[0-9]{4}-")


def _parse_date_spec(
    value: Any,
) -> date | TriangularDate | UniformDate | SlipDate | str:
    """A date, a date distribution (``{dist: ...}``) or a gate's name."""
    if isinstance(value, TriangularDate | UniformDate | SlipDate):
        return value
    if isinstance(value, dict):
        kind = value.get("dist")
        if kind not in _DATE_DISTS:
            known = ", ".join(_DATE_DISTS)
            raise ValueError(f"unknown date dist {kind!r} (known: {known})")
        try:
            return _DATE_DISTS[kind].model_validate(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            raise ValueError(f"{where}: {message}" if where else message) from None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            if _LOOKS_LIKE_DATE.match(value) or not _NAME.match(value):
                raise ValueError(
                    f"{value!r} is neither a date (YYYY-MM-DD) nor a gate name"
                ) from None
            return value
    raise ValueError("expected a date, a date distribution {dist: ...} or a gate name")


#: A date that may be uncertain: a date, ``{dist: triangular|uniform, ...}`` over
#: dates (drawn once per replication), or the name of a gate (the day it opens).
def _dump_date_spec(value: Any, info: SerializationInfo) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode=info.mode)
    if isinstance(value, date) and info.mode == "json":
        return value.isoformat()
    return value


DateSpec = Annotated[
    date | TriangularDate | UniformDate | SlipDate | str,
    PlainValidator(_parse_date_spec),
    PlainSerializer(_dump_date_spec, return_type=Any),
]


def gate_reference(spec: Any) -> str | None:
    """The gate a `DateSpec` names, or ``None`` for a date or a distribution."""
    return spec if isinstance(spec, str) else None


# --------------------------------------------------------------------------- parts
class Freeze(_Model):
    """A change freeze: from ``from`` to ``to`` inclusive, the day's cap is
    multiplied by ``cap_factor`` (0: no migrations), rounded down."""

    model_config = ConfigDict(frozen=True, extra="forbid", serialize_by_alias=True)

    name: str = Field(min_length=1)
    from_: date = Field(alias="from")
    to: date
    cap_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.to < self.from_:
            raise ValueError(f"to ({self.to}) is before from ({self.from_})")
        return self


class Calendar(_Model):
    """Which days migrations may run."""

    working_days: list[Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]] = (
        Field(default_factory=lambda: ["Mon", "Tue", "Wed", "Thu", "Fri"])
    )
    closures: list[date] = Field(default_factory=list)  # dates with no migrations
    # Great Britain bank holidays (from the `holidays` package): no migrations
    bank_holidays: Literal["england", "scotland", "none"] = "none"
    freezes: list[Freeze] = Field(default_factory=list)

    @field_validator("working_days")
    @classmethod
    def _unique_days(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("working_days lists a day twice")
        return value

    @field_validator("freezes")
    @classmethod
    def _unique_freezes(cls, freezes: list[Freeze]) -> list[Freeze]:
        _check_unique("freeze", [f.name for f in freezes])
        return freezes


class ScheduleStep(_Model):
    """A planned step change of the cap: ``daily_cap`` from date ``from`` on.

    The step sets the cap on its date (whatever rules did before) and, while it
    is in force, is the most a rule's step-up may reach.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", serialize_by_alias=True)

    name: str | None = None  # labels the step in .daily's cap_rule
    from_: DateSpec = Field(alias="from")
    daily_cap: NonNegativeInt


class Condition(_Model):
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
    def _confidence_where_needed(self) -> Condition:
        needs = self.metric in CONFIDENCE_METRICS
        if needs and self.confidence is None:
            raise ValueError(f"metric {self.metric} needs a confidence, e.g. 0.95")
        if not needs and self.confidence is not None:
            raise ValueError(f"metric {self.metric} takes no confidence")
        return self


class Requires(_Model):
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


class Rule(_Model):
    """An evidence-based capacity rule: when every condition holds (and its
    ``requires``), take ``action`` with the parameters given on the rule."""

    name: str = Field(min_length=1)
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


class Capacity(_Model):
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
        _check_unique("rule", [r.name for r in rules])
        return rules

    @field_validator("schedule")
    @classmethod
    def _unique_steps(cls, steps: list[ScheduleStep]) -> list[ScheduleStep]:
        _check_unique("schedule step", [s.name for s in steps if s.name])
        return steps


def _check_unique(kind: str, names: list[str]) -> None:
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"{kind} names must be unique: {', '.join(duplicated)}")


class GoNoGo(_Model):
    """Daily go/no-go on SMETS2 impact: incidents start on a calendar day with
    ``incident_probability`` and last ``incident_duration_days``; no migrations
    while one is open."""

    incident_probability: Probability
    incident_duration_days: Delay


class GateCondition(_Model):
    """One condition of a gate: met on a fix date (``fixed_on``), or by
    acceptance: on ``accepted_on`` with ``probability`` (drawn per replication;
    otherwise never)."""

    name: str = Field(min_length=1)
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


class Gate(_Model):
    """A named condition with an uncertain date: opens on ``opens_on``, or when
    ``all_of`` (every one) or ``any_of`` (the first) of its conditions is met."""

    name: str = Field(min_length=1)
    description: str = ""
    opens_on: DateSpec | None = None
    all_of: list[GateCondition] | None = None
    any_of: list[GateCondition] | None = None

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"gate name {name!r} must be letters, digits and _")
        return name

    @model_validator(mode="after")
    def _one_way(self) -> Gate:
        given = [k for k in ("opens_on", "all_of", "any_of") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of opens_on, all_of, any_of")
        conditions = self.conditions
        _check_unique("condition", [c.name for c in conditions])
        return self

    @property
    def conditions(self) -> list[GateCondition]:
        return list(self.all_of or self.any_of or [])


class OutcomeRates(_Model):
    """First-level outcome rates of one attempt; the five sum to 1."""

    success: Probability
    stall: Probability
    rollback: Probability
    fix_forward: Probability
    dumb: Probability

    @model_validator(mode="after")
    def _sum_to_one(self) -> OutcomeRates:
        total = sum(getattr(self, name) for name in OUTCOMES)
        if abs(total - 1.0) > _RATE_TOLERANCE:
            raise ValueError(f"rates sum to {total:.12g}, not 1")
        return self

    def mean(self) -> np.ndarray:
        """Rates in `OUTCOMES` order, renormalised to sum exactly to 1."""
        rates = np.array([getattr(self, name) for name in OUTCOMES], dtype=float)
        return rates / rates.sum()

    def as_array(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """The rates in `OUTCOMES` order (``rng`` is unused: the rates are known)."""
        return self.mean()

    def possible(self, outcome: str) -> bool:
        """Whether an attempt can have this outcome."""
        return getattr(self, outcome) > 0


class DirichletAlpha(_Model):
    """Concentration of a Dirichlet over the five outcome rates (pseudo-attempts)."""

    success: NonNegativeFloat
    stall: NonNegativeFloat
    rollback: NonNegativeFloat
    fix_forward: NonNegativeFloat
    dumb: NonNegativeFloat

    @model_validator(mode="after")
    def _some_mass(self) -> DirichletAlpha:
        if not any(getattr(self, name) > 0 for name in OUTCOMES):
            raise ValueError("at least one alpha must be above 0")
        return self


class DirichletOutcomes(_Model):
    """Uncertain outcome rates: Dirichlet(alpha), drawn once per replication.

    Either ``alpha`` directly (what `migsim calibrate` writes: prior strength x
    prior rate + observed counts), or a stated ``prior`` (Dirichlet alphas) and
    the ``evidence`` observed (`OutcomeEvidence`): alpha = prior + counts, the
    posterior; a dump then keeps prior and evidence, not the sum. An outcome with
    alpha 0 never happens.
    """

    dist: Literal["dirichlet"]
    alpha: DirichletAlpha | None = None
    prior: DirichletAlpha | None = None
    evidence: OutcomeEvidence | None = None

    @model_validator(mode="after")
    def _alpha_or_evidence(self) -> DirichletOutcomes:
        if self.evidence is None and self.prior is None:
            if self.alpha is None:
                raise ValueError("give alpha, or a prior and its evidence")
            return self
        if self.alpha is not None:
            raise ValueError("give alpha, or a prior and its evidence, not both")
        if self.prior is None or self.evidence is None:
            raise ValueError("a prior needs its evidence and evidence its prior")
        prior = [getattr(self.prior, name) for name in OUTCOMES]
        counts = self.evidence.counts()
        alpha = {n: a + c for n, a, c in zip(OUTCOMES, prior, counts, strict=True)}
        object.__setattr__(self, "alpha", DirichletAlpha(**alpha))  # the posterior
        return self

    @model_serializer(mode="wrap")
    def _prior_and_evidence_not_their_sum(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if self.evidence is not None:
            del data["alpha"]
        else:
            data.pop("prior", None)
            data.pop("evidence", None)
        return data

    def mean(self) -> np.ndarray:
        alpha = np.array([getattr(self.alpha, name) for name in OUTCOMES], dtype=float)
        return alpha / alpha.sum()

    def as_array(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """One draw of the rates from ``rng`` (without one: the mean rates)."""
        if rng is None:
            return self.mean()
        alpha = np.array([getattr(self.alpha, name) for name in OUTCOMES], dtype=float)
        draws = np.zeros(len(OUTCOMES))
        positive = alpha > 0  # a zero alpha is an outcome that never happens
        draws[positive] = rng.standard_gamma(alpha[positive])
        total = draws.sum()
        if total <= 0:  # every gamma underflowed (tiny alphas): fall back to the mean
            return self.mean()
        return draws / total

    def possible(self, outcome: str) -> bool:
        return getattr(self.alpha, outcome) > 0

    # the mean rates by name, as known rates have them
    success = property(lambda self: float(self.mean()[0]))
    stall = property(lambda self: float(self.mean()[1]))
    rollback = property(lambda self: float(self.mean()[2]))
    fix_forward = property(lambda self: float(self.mean()[3]))
    dumb = property(lambda self: float(self.mean()[4]))


def _dist_tag(tag: str, plain: str):
    """A discriminator: mappings with a ``dist`` key are ``tag``, the rest ``plain``."""

    def discriminate(value: Any) -> str:
        if isinstance(value, Mapping):
            return tag if "dist" in value else plain
        if isinstance(value, BaseModel):
            return tag if hasattr(value, "dist") else plain
        return plain

    return discriminate


#: Outcome rates: five known rates, or a Dirichlet over them (drawn per replication).
Outcomes = Annotated[
    Annotated[OutcomeRates, Tag("rates")]
    | Annotated[DirichletOutcomes, Tag("dirichlet")],
    Discriminator(_dist_tag("dirichlet", "rates")),
]


class BetaProbability(_Model):
    """An uncertain probability: Beta(alpha, beta), drawn once per replication."""

    dist: Literal["beta"]
    alpha: NonNegativeFloat
    beta: NonNegativeFloat

    @model_validator(mode="after")
    def _some_mass(self) -> BetaProbability:
        if self.alpha + self.beta <= 0:
            raise ValueError("alpha + beta must be above 0")
        return self

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def draw(self, rng: np.random.Generator) -> float:
        if self.beta == 0:
            return 1.0
        if self.alpha == 0:
            return 0.0
        return float(rng.beta(self.alpha, self.beta))


#: A probability that is known (a number) or uncertain (a Beta, drawn per replication).
UncertainProbability = Annotated[
    Annotated[Probability, Tag("value")] | Annotated[BetaProbability, Tag("beta")],
    Discriminator(_dist_tag("beta", "value")),
]


def probability_mean(value: float | BetaProbability) -> float:
    """The mean of a known or uncertain probability."""
    return value.mean if isinstance(value, BetaProbability) else float(value)


def draw_probability(
    value: float | BetaProbability, rng: np.random.Generator | None
) -> float:
    """A known probability as is; an uncertain one drawn from ``rng`` (or its mean)."""
    if isinstance(value, BetaProbability):
        return value.draw(rng) if rng is not None else value.mean
    return float(value)


class StallSpec(_Model):
    """A stalled attempt waits, then completes (migrated) or fails (a rollback)."""

    resolves_after_days: Delay
    then_success: UncertainProbability
    release_on: DateSpec | None = None  # common cause: no stall resolves before it


class RollbackSpec(_Model):
    """A rolled-back installation rejoins the queue after this delay."""

    retry_after_days: Delay


class FixForwardSpec(_Model):
    """A fixed-forward installation is migrated but impaired until restored."""

    restored_after_days: Delay


class RateIncrease(_Model):
    """Additions to first-level rates; success gives way by their sum."""

    stall: Probability = 0.0
    rollback: Probability = 0.0
    fix_forward: Probability = 0.0
    dumb: Probability = 0.0

    @property
    def total(self) -> float:
        return self.stall + self.rollback + self.fix_forward + self.dumb

    def apply(self, rates: np.ndarray) -> np.ndarray:
        """Rates (`OUTCOMES` order) with the increases added and success reduced."""
        added = np.array([0.0, self.stall, self.rollback, self.fix_forward, self.dumb])
        out = rates + added
        out[0] = max(0.0, rates[0] - self.total)
        return out / out.sum()


class LatentDefect(_Model):
    """A defect that may exist in a new migration type, hitting a share of attempts.

    Drawn once per replication. While it exists and is undetected it gives
    ``hit_share`` of the cohort's attempts the ``outcome``. It is found at the end
    of the first day on which its cumulative cases reach ``detected_after_cases``
    or on which it has been exposed ``detected_after_days`` days, plus
    ``detection_lag_days``; from the next day migrations halt (the cohort, or
    all cohorts) for ``fix_after_days``, and afterwards it hits nothing.
    """

    name: str = Field(min_length=1)
    exists_probability: Probability
    hit_share: Probability
    outcome: Literal["dumb", "fix_forward", "stall"]
    detected_after_cases: PositiveInt | None = None
    detected_after_days: PositiveInt | None = None
    detection_lag_days: NonNegativeInt = 0
    halt: Literal["cohort", "all"] = "cohort"
    fix_after_days: Delay

    @model_validator(mode="after")
    def _found_somehow(self) -> LatentDefect:
        if self.detected_after_cases is None and self.detected_after_days is None:
            raise ValueError(
                "give detected_after_cases or detected_after_days (or both)"
            )
        return self


class VolumeFailures(_Model):
    """Outcome rates that rise on days with more than ``above_attempts`` attempts.

    The day's attempts are counted over all cohorts (``counted: all``, since
    anomaly detection is DCC-wide) or the cohort's own. Until ``until`` (a
    settings change; ``None``: never within the horizon) a stressed day's rates
    are the cohort's plus ``increase``, success giving way.
    """

    above_attempts: NonNegativeInt
    counted: Literal["all", "cohort"] = "all"
    increase: RateIncrease
    until: DateSpec | None = None


class DumbSpec(_Model):
    """What happens to dumb devices: a share is recovered remotely after a delay.

    Recovered devices go back to ``rolled_back`` and are retried like a rollback
    (a dumb result on the last allowed attempt is then abandoned); the rest await
    a site visit (sub-count ``awaiting_site_visit`` of ``dumb``).
    """

    recovered_share: Probability = 0.0
    recovered_after_days: Delay | None = None

    @model_validator(mode="after")
    def _delay_if_recovered(self) -> DumbSpec:
        if self.recovered_share > 0 and self.recovered_after_days is None:
            raise ValueError(
                "recovered_after_days is required when recovered_share > 0"
            )
        return self


class HardCases(_Model):
    """A share of the cohort with its own (worse) first-level outcome rates."""

    share: Probability
    outcomes: Outcomes


class Exclusion(_Model):
    """A share that can never be migrated remotely (no WAN coverage, missing keys).

    ``attempted``: they are attempted, roll back every time and are abandoned
    after ``max_attempts``; ``up_front``: abandoned on the cohort's eligible day
    without an attempt. Either way they are counted in ``excluded`` (of ``abandoned``).
    """

    share: Probability
    when: Literal["attempted", "up_front"] = "attempted"


class ChangeOfSupplier(_Model):
    """Change-of-supplier events on migrated installations, some losing their alert."""

    annual_rate: Annotated[float, Field(ge=0.0, le=10.0)]  # per installation-year
    alert_loss_share: Probability = 1.0 / 3.0  # issue 61224: 1 in 3 alerts not sent
    until: DateSpec | None = None  # the fix; None: not fixed in the horizon


class PpmidJoin(_Model):
    """PPMID joins that fail for newly migrated active prepayment installations."""

    failure_share: Probability
    until: DateSpec | None = None  # the fix (issue 91342); None: never fixed


class DeferredShare(_Model):
    """A share of a cohort not migratable before ``until`` (e.g. split supply)."""

    name: str = Field(min_length=1)
    share: Probability
    until: DateSpec


class QueuedGroup(_Model):
    """Queued installations with the same history: attempts made so far, and for a
    retry how long it has been due (``days_until_due`` <= 0; 0 = due on the day of
    the state). Retries are served oldest due first."""

    count: NonNegativeInt
    attempts_made: NonNegativeInt = 0
    days_until_due: NonPositiveInt = 0


class WaitingGroup(_Model):
    """Stalled or rolled-back installations due on the same day with the same history.

    ``days_until_due`` counts from the day of the state: 1 = due on ``start_date``.
    ``attempts_made`` includes the attempt that stalled or rolled back.
    """

    count: NonNegativeInt
    attempts_made: PositiveInt = 1
    days_until_due: PositiveInt
    held: bool = False  # its ELS case not worked yet: due day drawn when it is


class ImpairedGroup(_Model):
    """Impaired (fixed-forward) installations restored on the same day."""

    count: NonNegativeInt
    days_until_due: PositiveInt
    held: bool = False  # its ELS case not worked yet: due day drawn when it is


def _count_or_groups(group: type[_Model]) -> Any:
    """A state's count (an int) or its list of groups, told apart before validation."""
    return Annotated[
        Annotated[NonNegativeInt, Tag("count")] | Annotated[list[group], Tag("groups")],
        Discriminator(lambda v: "groups" if isinstance(v, list) else "count"),
    ]


class InitialState(_Model):
    """A cohort's state at the end of the day before ``start_date``: a mid-way start.

    Every state of the partition, summing to ``installations``. In-flight states are
    a count (coarse: the detail is drawn per replication, see the calibration and
    forecasting reference) or a list of groups by (attempts made, days until due).
    """

    pending: NonNegativeInt = 0
    queued: _count_or_groups(QueuedGroup) = 0
    stalled: _count_or_groups(WaitingGroup) = 0
    rolled_back: _count_or_groups(WaitingGroup) = 0
    impaired: _count_or_groups(ImpairedGroup) = 0
    migrated: NonNegativeInt = 0
    dumb: NonNegativeInt = 0
    abandoned: NonNegativeInt = 0
    # of the dumb: devices awaiting remote recovery (a cohort's dumb section)
    recovering: list[WaitingGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _recovering_of_dumb(self) -> InitialState:
        waiting = sum(g.count for g in self.recovering)
        if waiting > self.dumb:
            raise ValueError(
                f"recovering: {waiting:,} is more than the {self.dumb:,} dumb"
            )
        return self

    def count(self, state: str) -> int:
        """Installations in one state of the partition."""
        value = getattr(self, state)
        return value if isinstance(value, int) else sum(g.count for g in value)

    @property
    def total(self) -> int:
        return sum(self.count(state) for state in _PARTITION)

    @property
    def longest_wait(self) -> int:
        """The latest due day among the detailed groups (0 when none)."""
        days = [
            g.days_until_due
            for state in ("stalled", "rolled_back", "impaired", "recovering")
            if isinstance(getattr(self, state), list)
            for g in getattr(self, state)
        ]
        return max(days, default=0)


#: The partition of states, as the engine names them (kept here for validation).
_PARTITION = (
    "pending",
    "queued",
    "stalled",
    "rolled_back",
    "impaired",
    "migrated",
    "dumb",
    "abandoned",
)


class Cohort(_Model):
    """Installations that share a device model combination, mode and rates."""

    name: str = Field(min_length=1)
    installations: NonNegativeInt
    # an estimate: drawn per replication (installations is its point value)
    installations_range: SizeRange | None = None
    mode: Literal["dormant", "active"]
    eligible_from: DateSpec | None = None  # None: the scenario's start_date
    deferred: list[DeferredShare] = Field(default_factory=list)
    max_attempts: PositiveInt = 5
    outcomes: Outcomes
    stall: StallSpec | None = None
    rollback: RollbackSpec | None = None
    fix_forward: FixForwardSpec | None = None
    # operations (all optional; see docs/operations-risk.md)
    dumb: DumbSpec | None = None
    hard: HardCases | None = None
    excluded: Exclusion | None = None
    latent_defects: list[LatentDefect] = Field(default_factory=list)
    volume_failures: VolumeFailures | None = None
    suppliers: dict[str, Probability] = Field(default_factory=dict)  # name -> share
    prepayment_share: Probability | None = None  # active only; None: not modelled
    change_of_supplier: ChangeOfSupplier | None = None
    ppmid_join: PpmidJoin | None = None
    initial_state: InitialState | None = None  # None: everything queued (or pending)

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler: Any) -> dict[str, Any]:
        """Leave out an absent ``initial_state``, so a scenario that does not use it
        dumps (and hashes) exactly as before the field existed."""
        data = handler(self)
        for unused in ("initial_state", "installations_range"):
            if data.get(unused, ...) is None:
                del data[unused]
        return data

    @model_validator(mode="after")
    def _size_range_fits(self) -> Cohort:
        if self.installations_range is not None:
            self.installations_range.check(self.installations)
            if self.initial_state is not None:
                raise ValueError(
                    "installations_range: a cohort with an initial_state has a "
                    "known size"
                )
        return self

    @field_validator("deferred")
    @classmethod
    def _shares_fit(cls, deferred: list[DeferredShare]) -> list[DeferredShare]:
        _check_unique("deferred share", [d.name for d in deferred])
        total = sum(d.share for d in deferred)
        if total > 1.0 + _RATE_TOLERANCE:
            raise ValueError(f"deferred shares sum to {total:.12g}, above 1")
        return deferred

    def deferred_counts(self) -> list[int]:
        """Installations in each deferred share (rounded to nearest; never above
        the cohort)."""
        counts, left = [], self.installations
        for item in self.deferred:
            count = min(left, math.floor(item.share * self.installations + 0.5))
            counts.append(count)
            left -= count
        return counts

    @model_validator(mode="after")
    def _delays_where_needed(self) -> Cohort:
        for outcome in ("stall", "rollback", "fix_forward"):
            if self.outcomes.possible(outcome) and getattr(self, outcome) is None:
                raise ValueError(
                    f"section '{outcome}' is required when outcomes.{outcome} > 0"
                )
        for outcome, where in self._outcomes_used():
            if outcome in ("stall", "rollback", "fix_forward") and (
                getattr(self, outcome) is None
            ):
                raise ValueError(f"section '{outcome}' is required by {where}")
        fails = self.stall is not None and probability_mean(self.stall.then_success) < 1
        if fails and self.rollback is None:
            raise ValueError(
                "section 'rollback' is required: failed stalls roll back and retry"
            )
        self._check_operations()
        return self

    @model_validator(mode="after")
    def _initial_state_fits(self) -> Cohort:
        state = self.initial_state
        if state is None:
            return self
        if state.total != self.installations:
            raise ValueError(
                f"initial_state: the states sum to {state.total:,}, not the "
                f"{self.installations:,} installations"
            )
        limits = {
            "queued": self.max_attempts - 1,
            "stalled": self.max_attempts,
            "rolled_back": self.max_attempts - 1,
        }
        for name, limit in limits.items():
            groups = getattr(state, name)
            if isinstance(groups, list):
                for group in groups:
                    if group.attempts_made > limit:
                        raise ValueError(
                            f"initial_state.{name}: attempts_made "
                            f"{group.attempts_made} is above {limit} (max_attempts "
                            f"{self.max_attempts})"
                        )
        if (
            isinstance(state.rolled_back, int)
            and state.rolled_back
            and (self.max_attempts < 2)
        ):
            raise ValueError(
                "initial_state.rolled_back: with max_attempts 1 nothing waits to retry"
            )
        for name in ("stalled", "rolled_back", "impaired"):
            section = {
                "stalled": "stall",
                "rolled_back": "rollback",
                "impaired": "fix_forward",
            }[name]
            if state.count(name) and getattr(self, section) is None:
                raise ValueError(
                    f"initial_state.{name}: section '{section}' is required for "
                    f"{name} installations"
                )
        return self

    def _outcomes_used(self) -> list[tuple[str, str]]:
        """Outcomes the operations sections can produce, with the field that does."""
        used: list[tuple[str, str]] = []
        if self.hard is not None:
            rates = self.hard.outcomes
            used += [(o, "hard.outcomes") for o in OUTCOMES if getattr(rates, o)]
        if self.volume_failures is not None:
            inc = self.volume_failures.increase
            where = "volume_failures.increase"
            used += [(o, where) for o in OUTCOMES[1:] if getattr(inc, o)]
        used += [(d.outcome, f"latent_defects.{d.name}") for d in self.latent_defects]
        if (
            self.excluded is not None
            and self.excluded.when == "attempted"
            and (self.max_attempts > 1)
        ):
            used.append(("rollback", "excluded (attempted: they roll back and retry)"))
        if (
            self.dumb is not None
            and self.dumb.recovered_share > 0
            and (self.max_attempts > 1)
        ):
            used.append(("rollback", "dumb.recovered_share (recovered devices retry)"))
        return used

    def _check_operations(self) -> None:
        hard = self.hard.share if self.hard else 0.0
        excluded = self.excluded.share if self.excluded else 0.0
        if hard + excluded > 1 + _RATE_TOLERANCE:
            raise ValueError(f"hard.share + excluded.share = {hard + excluded:.6g} > 1")
        names = [d.name for d in self.latent_defects]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"latent_defects names must be unique: {', '.join(twice)}")
        if self.volume_failures is not None:
            total = self.volume_failures.increase.total
            hard_rates = self.hard.outcomes if self.hard else None
            for label, rates in (
                ("outcomes", self.outcomes),
                ("hard.outcomes", hard_rates),
            ):
                if rates is not None and rates.success + _RATE_TOLERANCE < total:
                    raise ValueError(
                        f"volume_failures.increase: adds {total:.6g}, more than "
                        f"{label}.success ({rates.success:.6g}) can give way"
                    )
        if self.suppliers:
            total = sum(self.suppliers.values())
            if abs(total - 1.0) > _RATE_TOLERANCE:
                raise ValueError(f"suppliers: shares sum to {total:.12g}, not 1")
        if self.mode != "active":
            if self.prepayment_share:
                raise ValueError("prepayment_share applies to active cohorts only")
            if self.ppmid_join is not None:
                raise ValueError("ppmid_join applies to active cohorts only")
        elif self.ppmid_join is not None and not self.prepayment_share:
            raise ValueError(
                "ppmid_join needs prepayment_share > 0 (PPMIDs join prepayment meters)"
            )


class Supplier(_Model):
    """An energy supplier: its business readiness and daily migration demand.

    A migrated installation is *operational* only once its supplier is ready; an
    *active* installation is not attempted before then (it would lose service).
    """

    name: str = Field(min_length=1)
    business_ready: DateSpec | None = None  # None: ready from the start
    daily_nomination: NonNegativeInt | None = None  # None: demand = eligible queue


class Els(_Model):
    """Early Life Support and the Migration Control Centre as limited capacity.

    Each first-level outcome named in ``cases_from`` raises one case per
    installation; cases are worked first in, first out, ``daily_capacity`` per
    working day, from the day after they are raised.
    """

    daily_capacity: PositiveInt
    cases_from: list[Literal["stall", "rollback", "fix_forward", "dumb"]] = Field(
        default_factory=lambda: ["stall", "rollback", "fix_forward", "dumb"]
    )

    @field_validator("cases_from")
    @classmethod
    def _unique_kinds(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("cases_from lists an outcome twice")
        return value


def _gate_date_fields(gate: Gate) -> dict[str, Any]:
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
    names = (gate_reference(spec) for spec in _gate_date_fields(gate).values())
    return [name for name in names if name is not None]


def _gate_cycle(gates: dict[str, Gate]) -> list[str] | None:
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


#: cap_rule labels migsim itself uses (so no rule, step or freeze may take them).
RESERVED_CAP_LABELS = ("daily_cap", "closed", "no_go")


# --------------------------------------------------------------------------- mid-way
class PolicyDay(_Model):
    """One day of a ramp policy's window history: the day's flows summed over all
    cohorts (``flows``) and over the active cohorts (``active``), by flow column
    name, and the stalled installations at its end."""

    flows: dict[str, NonNegativeInt] = Field(default_factory=dict)
    active: dict[str, NonNegativeInt] = Field(default_factory=dict)
    stalled: NonNegativeInt = 0
    els_backlog: NonNegativeInt = 0  # ELS cases open at its end (with an els section)


class RuleState(_Model):
    """Where a capacity rule stands: the day its last action ended (relative to
    ``start_date``: 0 or below is in the past) and how often it fired so far."""

    action_end: int = 0
    firings: NonNegativeInt = 0


class ElsCase(_Model):
    """A batch of open ELS / MCC cases, not yet worked: raised ``-raised`` days
    before the state's day (0: on it). Stall and fix-forward cases hold their
    installations (``attempts``: counts by attempts made; they are the ``held``
    groups of the cohort's ``initial_state``)."""

    cohort: str
    kind: Literal["stall", "fix_forward", "rollback", "dumb"]
    count: PositiveInt
    raised: NonPositiveInt
    attempts: dict[int, NonNegativeInt] = Field(default_factory=dict)


class DefectState(_Model):
    """A latent defect as a replication left it: whether it exists, the
    installations it hit so far, the day it was first exposed and found (relative
    to ``start_date``; ``None``: not yet) and its drawn fix delay in days."""

    cohort: str
    defect: str
    exists: bool
    hits: NonNegativeInt = 0
    first_exposed: int | None = None
    found_day: int | None = None
    fix_days: PositiveInt = 1


class OperationsState(_Model):
    """The scenario-wide state at the end of the day before ``start_date``.

    Set with each cohort's ``initial_state`` (what `Results.state_on` exports),
    it lets a run continue another: the cap in force and for how long, the
    schedule step in force, halts and holds still running, each rule's re-arm
    state and the window history its metrics read, an open incident, and the
    gates and uncertain dates already passed (those not yet passed are drawn
    conditioned on not having happened before ``start_date``). Day numbers count
    from ``start_date`` (day 0).
    """

    cap: NonNegativeInt  # the cap level in force (before freezes, halts, no-go)
    cap_rule: str = "daily_cap"  # what set it (labels .daily's cap_rule)
    days_at_cap: NonNegativeInt = 0  # working days at that level so far
    ceiling: NonNegativeInt | None = None  # the schedule step in force, if any
    halt_until: int = 0  # first day free of a running halt (0: none)
    halt_rule: str = ""
    hold_until: int = 0  # first day free of a running hold (0: none)
    rules: dict[str, RuleState] = Field(default_factory=dict)
    history: list[PolicyDay] = Field(default_factory=list)  # last days, oldest first
    before_history: PolicyDay = Field(default_factory=PolicyDay)  # totals before it
    incident_open_days: NonNegativeInt = 0  # an incident open this long (0: none)
    gates_open: dict[str, date] = Field(default_factory=dict)  # opened on
    dates_passed: dict[str, date] = Field(default_factory=dict)  # drawn, passed
    # True: gates and uncertain dates not listed above had not passed by the state
    # (drawn conditioned on that); False: unknown (drawn from their distributions),
    # except those listed as not passed yet:
    condition_dates: bool = True
    gates_closed: list[str] = Field(default_factory=list)
    dates_pending: list[str] = Field(default_factory=list)
    els_queue: list[ElsCase] = Field(default_factory=list)  # oldest first
    defects: list[DefectState] = Field(default_factory=list)


# --------------------------------------------------------------------------- scenario
class Scenario(_Model):
    """A whole migration scenario: calendar, capacity, cohorts and their sources."""

    name: str = Field(min_length=1)
    description: str = ""
    start_date: date
    horizon_days: PositiveInt
    seed: NonNegativeInt = 0
    calendar: Calendar = Field(default_factory=Calendar)
    capacity: Capacity
    clearance_share: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    meters_per_installation: Annotated[float, Field(gt=0.0)] | None = None
    cohorts: list[Cohort] = Field(min_length=1)
    go_no_go: GoNoGo | None = None
    gates: list[Gate] = Field(default_factory=list)
    suppliers: list[Supplier] = Field(default_factory=list)
    els: Els | None = None
    operations_state: OperationsState | None = None  # None: a programme's first day
    # multiplies every date slip marked shared (model/uncertainty.py)
    programme_delay: ProgrammeDelay | None = None
    # full: inputs drawn per replication; point: every input at its point value
    uncertainty: Literal["full", "point"] = "full"
    sources: dict[str, str] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler: Any) -> dict[str, Any]:
        """Leave out an absent ``operations_state`` (as ``initial_state``), and the
        uncertainty fields at their defaults: a scenario hashes as before them."""
        data = handler(self)
        if data.get("operations_state", ...) is None:
            del data["operations_state"]
        if data.get("programme_delay", ...) is None:
            del data["programme_delay"]
        if data.get("uncertainty") == "full":
            del data["uncertainty"]
        return data

    @model_validator(mode="after")
    def _shared_slips_need_a_programme_delay(self) -> Scenario:
        shared = [
            path
            for path, spec in self.date_fields().items()
            if isinstance(spec, SlipDate) and spec.shared
        ]
        if shared and self.programme_delay is None:
            raise ValueError(
                f"{shared[0]}: a shared slip needs a programme_delay "
                "(the factor it shares)"
            )
        return self

    @model_validator(mode="after")
    def _operations_state_names_exist(self) -> Scenario:
        state = self.operations_state
        if state is None:
            return self
        rules = {r.name for r in self.capacity.rules}
        unknown = sorted(set(state.rules) - rules)
        if unknown:
            raise ValueError(
                f"operations_state.rules: unknown rule {', '.join(unknown)}"
            )
        cohorts = {c.name for c in self.cohorts}
        defects = {(c.name, d.name) for c in self.cohorts for d in c.latent_defects}
        unknown = sorted(
            f"{d.cohort}.{d.defect}"
            for d in state.defects
            if (d.cohort, d.defect) not in defects
        )
        if unknown:
            raise ValueError(
                f"operations_state.defects: unknown defect {', '.join(unknown)}"
            )
        unknown = sorted({case.cohort for case in state.els_queue} - cohorts)
        if unknown:
            raise ValueError(
                f"operations_state.els_queue: unknown cohort {', '.join(unknown)}"
            )
        gates = {g.name for g in self.gates}
        unknown = sorted(set(state.gates_open) - gates)
        if unknown:
            raise ValueError(
                f"operations_state.gates_open: unknown gate {', '.join(unknown)}"
            )
        unknown = sorted(set(state.gates_closed) - gates)
        if unknown:
            raise ValueError(
                f"operations_state.gates_closed: unknown gate {', '.join(unknown)}"
            )
        fields = self.date_fields()
        named = set(state.dates_passed) | set(state.dates_pending)
        unknown = sorted(named - set(fields))
        if unknown:
            raise ValueError(f"operations_state: no date field {', '.join(unknown)}")
        late = [
            k
            for k, v in {**state.gates_open, **state.dates_passed}.items()
            if v >= self.start_date
        ]
        if late:
            raise ValueError(
                f"operations_state: {', '.join(sorted(late))} passed on or after "
                f"start_date {self.start_date}"
            )
        return self

    @field_validator("cohorts")
    @classmethod
    def _unique_names(cls, cohorts: list[Cohort]) -> list[Cohort]:
        _check_unique("cohort", [c.name for c in cohorts])
        return cohorts

    @field_validator("suppliers")
    @classmethod
    def _unique_suppliers(cls, suppliers: list[Supplier]) -> list[Supplier]:
        names = [s.name for s in suppliers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"supplier names must be unique: {', '.join(duplicated)}")
        return suppliers

    @model_validator(mode="after")
    def _suppliers_known(self) -> Scenario:
        known = {s.name for s in self.suppliers}
        for cohort in self.cohorts:
            unknown = sorted(set(cohort.suppliers) - known)
            if unknown:
                raise ValueError(
                    f"cohorts.{cohort.name}.suppliers: no supplier named "
                    f"{', '.join(unknown)} in suppliers"
                )
        if self.capacity.allocation == "msm":
            if self.capacity.dmin is None:
                raise ValueError(
                    "capacity.dmin: required with allocation msm (MSM 4.0 sets DMIN, "
                    "the flat allocation, at 100 installations a day)"
                )
            unsplit = [c.name for c in self.cohorts if not c.suppliers]
            if unsplit:
                raise ValueError(
                    "capacity.allocation: msm shares the cap between suppliers, so "
                    "every cohort needs a suppliers split "
                    f"(missing: {', '.join(unsplit)})"
                )
        return self

    @model_validator(mode="after")
    def _els_metric_needs_els(self) -> Scenario:
        for rule in self.capacity.rules:
            if self.els is None and any(c.metric == "els_backlog" for c in rule.when):
                raise ValueError(
                    f"capacity.rules.{rule.name}.when: metric els_backlog needs an "
                    "els section (ELS/MCC capacity)"
                )
        return self

    @field_validator("gates")
    @classmethod
    def _unique_gates(cls, gates: list[Gate]) -> list[Gate]:
        _check_unique("gate", [g.name for g in gates])
        return gates

    @model_validator(mode="after")
    def _gates_exist_without_cycles(self) -> Scenario:
        gates = {g.name: g for g in self.gates}
        references = [
            (path, gate_reference(spec)) for path, spec in self.date_fields().items()
        ]
        references += [
            (f"capacity.rules.{r.name}.requires.gate", r.requires.gate)
            for r in self.capacity.rules
        ]
        for path, name in references:
            if name is not None and name not in gates:
                raise ValueError(f"{path}: unknown gate {name!r}")
        cycle = _gate_cycle(gates)
        if cycle:
            raise ValueError(
                f"gates.{cycle[0]}: gates open on each other in a cycle: "
                + " -> ".join(cycle)
            )
        return self

    def date_fields(self) -> dict[str, Any]:
        """Every `DateSpec` field that is set, as ``{dotted.path: spec}``.

        The paths name the fields (and, in `migsim.sim.policy`, the random streams
        their draws use), with named list items by name.
        """
        out: dict[str, Any] = {}
        for cohort in self.cohorts:
            prefix = f"cohorts.{cohort.name}"
            if cohort.eligible_from is not None:
                out[f"{prefix}.eligible_from"] = cohort.eligible_from
            if cohort.stall is not None and cohort.stall.release_on is not None:
                out[f"{prefix}.stall.release_on"] = cohort.stall.release_on
            for item in cohort.deferred:
                out[f"{prefix}.deferred.{item.name}.until"] = item.until
            for section in ("volume_failures", "change_of_supplier", "ppmid_join"):
                spec = getattr(cohort, section)
                if spec is not None and spec.until is not None:
                    out[f"{prefix}.{section}.until"] = spec.until
        for supplier in self.suppliers:
            if supplier.business_ready is not None:
                path = f"suppliers.{supplier.name}.business_ready"
                out[path] = supplier.business_ready
        for index, step in enumerate(self.capacity.schedule):
            out[f"capacity.schedule.{step.name or index}.from"] = step.from_
        for gate in self.gates:
            out.update(_gate_date_fields(gate))
        return out

    @model_validator(mode="after")
    def _rule_and_step_names_distinct(self) -> Scenario:
        labels = [r.name for r in self.capacity.rules]
        labels += [s.name for s in self.capacity.schedule if s.name]
        labels += [f.name for f in self.calendar.freezes]
        clash = sorted({n for n in labels if labels.count(n) > 1} & set(labels))
        reserved = sorted(set(labels) & set(RESERVED_CAP_LABELS))
        if clash:
            raise ValueError(
                "capacity rules, schedule steps and freezes need distinct names "
                f"(they label cap_rule): {', '.join(clash)}"
            )
        if reserved:
            raise ValueError(
                f"reserved cap_rule label used as a name: {', '.join(reserved)}"
            )
        return self

    @model_validator(mode="after")
    def _pending_only_when_eligible_later(self) -> Scenario:
        for cohort in self.cohorts:
            state = cohort.initial_state
            eligible = cohort.eligible_from or self.start_date
            if not isinstance(eligible, date) or cohort.deferred:
                continue  # uncertain, gated or deferred: pending may wait for them
            if state is not None and state.pending and eligible < self.start_date:
                raise ValueError(
                    f"cohorts.{cohort.name}.initial_state.pending: {state.pending:,} "
                    f"pending, but the cohort was eligible from {eligible}, before "
                    f"start_date {self.start_date}"
                )
        return self

    @model_validator(mode="after")
    def _sources_name_fields(self) -> Scenario:
        known = set(_flatten(self.model_dump(mode="json", exclude={"sources"})))
        prefixes = {k.rsplit(".", i)[0] for k in known for i in range(k.count(".") + 1)}
        unknown = [key for key in self.sources if key not in known | prefixes]
        if unknown:
            raise ValueError(f"sources names no field: {', '.join(sorted(unknown))}")
        return self

    # ------------------------------------------------------------------ derived
    @property
    def end_date(self) -> date:
        """The last simulated date (inclusive)."""
        return self.start_date + timedelta(days=self.horizon_days - 1)

    @property
    def installations(self) -> int:
        return sum(c.installations for c in self.cohorts)

    def cohort(self, name: str) -> Cohort:
        for cohort in self.cohorts:
            if cohort.name == name:
                return cohort
        raise KeyError(name)

    def day_of(self, when: date) -> int:
        """Day index of a date on the simulation clock (0 = start_date)."""
        return (when - self.start_date).days

    def date_of(self, day: int) -> date:
        return self.start_date + timedelta(days=int(day))

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain JSON-able data (dates as ISO strings)."""
        return self.model_dump(mode="json")

    def flat(self) -> dict[str, Any]:
        """Every field as ``{dotted.path: value}``; named list items by name."""
        return _flatten(self.to_dict())

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @cached_property
    def sha256(self) -> str:
        """Hash of the resolved scenario's canonical JSON: identifies the inputs."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def to_yaml(self) -> str:
        """A YAML document that `load_scenario` reads back to an equal scenario."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def starting_from(self, state: Mapping[str, Any]) -> Scenario:
        """A scenario that continues from a state, to the same horizon end.

        ``state`` is ``{"date": d, "cohorts": {name: initial_state},
        "operations_state": ...}`` as `Results.state_on` gives (the end of day
        ``d``); the new scenario starts on the day after ``d`` with each cohort's
        ``initial_state`` (and the ``operations_state``) set, and ends on this
        scenario's ``end_date``.
        """
        when = state["date"]
        when = date.fromisoformat(when) if isinstance(when, str) else when
        start = when + timedelta(days=1)
        origin = f"{self.name}: state on {when}"
        if not self.start_date <= start <= self.end_date:
            raise ScenarioError(
                f"{origin}: the day after it is outside "
                f"{self.start_date}..{self.end_date}"
            )
        data = self.to_dict()
        data["start_date"] = start.isoformat()
        data["horizon_days"] = (self.end_date - start).days + 1
        cohorts = state["cohorts"]
        missing = [c["name"] for c in data["cohorts"] if c["name"] not in cohorts]
        if missing:
            raise ScenarioError(f"{origin}: no state for cohort {', '.join(missing)}")
        for cohort in data["cohorts"]:
            cohort["initial_state"] = copy.deepcopy(dict(cohorts[cohort["name"]]))
            if cohort.pop("installations_range", None) is not None:
                # the state holds the size this replication drew: now known
                cohort["installations"] = InitialState.model_validate(
                    cohort["initial_state"]
                ).total
        data.pop("operations_state", None)
        if state.get("operations_state") is not None:
            data["operations_state"] = copy.deepcopy(dict(state["operations_state"]))
        return _validate(data, origin)

    def with_overrides(
        self, overrides: Mapping[str, Any], *, origin: str = "--set"
    ) -> Scenario:
        """A new scenario with dotted-path fields replaced, then re-validated.

        Setting one outcome rate rescales the other four in proportion so the five
        still sum to 1. String values are parsed with ``yaml.safe_load`` (so
        ``"5000"`` is an int and ``"2020-01-06"`` a date).
        """
        data = self.to_dict()
        data.setdefault("uncertainty", self.uncertainty)  # --set uncertainty=point
        for key, value in overrides.items():
            set_field(data, key, value, origin=origin)
        return _validate(data, origin)


# --------------------------------------------------------------------------- paths
def _is_named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(item, dict) and isinstance(item.get("name"), str)
            for item in value
        )
    )


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts (and named lists, by name) into dotted keys."""
    out: dict[str, Any] = {}
    if isinstance(data, dict) and data:
        items = data.items()
    elif _is_named_list(data):
        items = ((item["name"], item) for item in data)
    else:
        return {prefix: data}
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        out.update(_flatten(value, path))
    return out


def _child(node: Any, part: str, key: str, origin: str) -> Any:
    """One step of a dotted path: a dict key, a named list item, or a list index."""
    if isinstance(node, dict):
        if part not in node:
            raise ScenarioError(f"{origin}: {key}: no such field '{part}'")
        return node[part]
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and item.get("name") == part:
                return item
        if part.isdigit() and int(part) < len(node):
            return node[int(part)]
        raise ScenarioError(f"{origin}: {key}: no item named '{part}'")
    raise ScenarioError(f"{origin}: {key}: '{part}' is below a value, not a section")


def set_field(data: dict[str, Any], key: str, value: Any, *, origin: str) -> None:
    """Set a dotted-path field of a scenario dict in place (it must exist).

    Setting ``...outcomes.<rate>`` rescales the sibling rates in proportion.
    """
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{origin}: {key}: unreadable value {value!r}") from exc
    if isinstance(value, date):
        value = value.isoformat()
    parts = key.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = _child(node, part, key, origin)
    last = parts[-1]
    if isinstance(node, list):
        target = _child(node, last, key, origin)
        node[node.index(target)] = value
        return
    _child(node, last, key, origin)  # must exist
    if len(parts) >= 2 and parts[-2] == "outcomes" and last in OUTCOMES:
        _rescale_outcomes(node, last, value, key, origin)
    else:
        node[last] = value


def get_field(data: dict[str, Any], key: str, *, origin: str) -> Any:
    """The value at a dotted path of a scenario dict (as `set_field` addresses it).

    Raises
    ------
    ScenarioError
        When the path names no field.
    """
    node: Any = data
    for part in key.split("."):
        node = _child(node, part, key, origin)
    return node


def _rescale_outcomes(
    rates: dict[str, Any], name: str, value: Any, key: str, origin: str
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{origin}: {key}: a rate must be a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ScenarioError(f"{origin}: {key}: rate {value} is outside [0, 1]")
    others = [n for n in OUTCOMES if n != name]
    rest = sum(float(rates[n]) for n in others)
    if rest <= 0 and value < 1:
        raise ScenarioError(
            f"{origin}: {key}: cannot rescale the other rates, they are all 0"
        )
    scale = (1.0 - value) / rest if rest > 0 else 0.0
    for other in others:
        rates[other] = float(rates[other]) * scale
    rates[name] = float(value)


# --------------------------------------------------------------------------- loading
#: Tags of the unions a field may take, by field name: never part of a dotted path.
_UNION_TAGS = {
    "outcomes": ("rates", "dirichlet"),
    "then_success": ("value", "beta"),
    **{
        state: ("count", "groups")
        for state in ("queued", "stalled", "rolled_back", "impaired")
    },
}


def _error_path(loc: tuple[Any, ...], data: Any) -> str:
    """Turn a pydantic error location into a dotted path, naming list items."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            item = node[part]
            name = item.get("name") if isinstance(item, dict) else None
            parts.append(str(name) if name else str(part))
            node = item
            continue
        if (
            isinstance(part, str)
            and part
            in {
                "fixed",
                "uniform",
                "triangular",
                "lognormal",
                "beta",
            }
            and isinstance(node, dict)
            and node.get("dist") == part
        ):
            continue  # discriminated-union tag, not a field
        if parts and part in _UNION_TAGS.get(parts[-1], ()):
            continue  # a tag of a union (rates or Dirichlet, count or groups)
        parts.append(str(part))
        node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def _validate(data: Any, origin: str) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin}: a scenario must be a mapping of fields")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            if not error["loc"]:  # a whole-scenario check names its own field
                messages.append(message)
                continue
            messages.append(f"{_error_path(error['loc'], data)}: {message}")
        raise ScenarioError(f"{origin}: {'; '.join(messages)}") from None


def _merge(base: Any, override: Any) -> Any:
    """Deep merge for ``extends``: maps merge, named lists merge by name, else replace."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if _is_named_list(base) and _is_named_list(override):
        merged_list = [copy.deepcopy(item) for item in base]
        names = [item["name"] for item in merged_list]
        for item in override:
            if item["name"] in names:
                index = names.index(item["name"])
                merged_list[index] = _merge(merged_list[index], item)
            else:
                merged_list.append(item)
                names.append(item["name"])
        return merged_list
    return copy.deepcopy(override)


def _read_document(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read one YAML file and resolve its ``extends`` chain (paths relative to it).

    Messages name the file as the user gave it (or as ``extends`` reached it).
    """
    shown = str(path)
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(p.name for p in (*chain, resolved))
        raise ScenarioError(f"{chain[0].name}: extends: cycle {cycle}")
    try:
        text = resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{shown}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ScenarioError(f"{shown}: cannot read: {reason}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ScenarioError(f"{shown}: YAML error{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{shown}: a scenario must be a mapping of fields")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"{shown}: extends: must be a file path")
    base = _read_document(path.parent / parent, (*chain, resolved))
    return _merge(base, data)


def load_scenario(
    source: str | Path | Mapping[str, Any] | Scenario,
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """Load and validate a scenario from a YAML path or a dict.

    Parameters
    ----------
    source
        Path to a YAML file, a mapping with the same shape, or a `Scenario`.
    overrides
        Optional ``{dotted.path: value}`` applied before validation (as ``--set``).

    Raises
    ------
    ScenarioError
        With one line naming the file and the dotted field that is wrong.
    """
    if isinstance(source, Scenario):
        return source.with_overrides(overrides) if overrides else source
    if isinstance(source, Mapping):
        origin = str(source.get("name", "scenario"))
        data = copy.deepcopy(dict(source))
        if "extends" in data:
            raise ScenarioError(f"{origin}: extends: only a scenario file may extend")
    else:
        path = Path(source)
        origin = str(path)
        data = _read_document(path)
    scenario = _validate(data, origin)
    if overrides:
        scenario = scenario.with_overrides(overrides, origin=f"{origin}: --set")
    return scenario
