"""Probability distributions a scenario may use, each knowing how it is drawn.

Delays in whole days (``pmf()``: the engine draws a batch of delays as one
multinomial), daily shares, uncertain dates (`DateSpec`: a date, a date
distribution drawn once per replication, or the name of a gate, resolved per
replication by `migsim.sim.policy`), outcome rates (known, or a Dirichlet) and
probabilities (known, or a Beta).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    NonNegativeFloat,
    PlainSerializer,
    PlainValidator,
    PositiveInt,
    SerializationInfo,
    Tag,
    ValidationError,
    model_serializer,
    model_validator,
)

from migsim.common.cdfs import lognormal_cdf, lognormal_ppf, triangular_cdf
from migsim.common.yamlio import shown
from migsim.model.base import NAME, OUTCOMES, RATE_TOLERANCE, Probability, SchemaModel
from migsim.model.paths import error_messages
from migsim.model.uncertainty import OutcomeEvidence, SlipDate

__all__ = [
    "LOGNORMAL_CUT",
    "BetaProbability",
    "BetaShare",
    "DateSpec",
    "Delay",
    "DirichletAlpha",
    "DirichletOutcomes",
    "FixedDelay",
    "FixedShare",
    "LognormalDelay",
    "OutcomeRates",
    "Outcomes",
    "ShareDist",
    "TriangularDate",
    "TriangularDelay",
    "TriangularShare",
    "UncertainProbability",
    "UniformDate",
    "UniformDelay",
    "UniformShare",
    "draw_probability",
    "gate_reference",
    "probability_mean",
]


#: Lognormal delays are cut at this quantile; the tail mass goes on the last day.
LOGNORMAL_CUT = 0.9999


def _mode_within(low: Any, mode: Any, high: Any) -> None:
    """Refuse a triangular mode outside [low, high]: delays, shares and dates
    (numbers or dates alike) say it in the same words."""
    if not low <= mode <= high:
        raise ValueError(f"mode ({mode}) must lie in [low, high] = [{low}, {high}]")


# --------------------------------------------------------------------------- delays
class _DelayBase(SchemaModel):
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
        _mode_within(self.low, self.mode, self.high)
        return self

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        if self.high == self.low:
            return np.array([math.ceil(self.low)]), np.array([1.0])
        width = self.high - self.low
        c = (self.mode - self.low) / width

        def cdf(x: np.ndarray) -> np.ndarray:
            return triangular_cdf(x, c, self.low, width)

        return _ceil_pmf(cdf, math.ceil(self.low), math.ceil(self.high))


class LognormalDelay(_DelayBase):
    """Lognormal with the given median (days) and sigma (of the log), rounded up.

    Cut at its 0.9999 quantile, with the tail mass on the last day, so the
    support is finite and grouped draws stay cheap.
    """

    dist: Literal["lognormal"]
    median: Annotated[float, Field(ge=1)]
    sigma: Annotated[float, Field(gt=0)]

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        last = math.ceil(lognormal_ppf(LOGNORMAL_CUT, self.sigma, self.median))

        def cdf(x: np.ndarray) -> np.ndarray:
            return lognormal_cdf(x, self.sigma, self.median)

        return _ceil_pmf(cdf, 1, last)


Delay = Annotated[
    FixedDelay | UniformDelay | TriangularDelay | LognormalDelay,
    Field(discriminator="dist"),
]


# --------------------------------------------------------------------------- shares
class _ShareBase(SchemaModel):
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
        _mode_within(self.low, self.mode, self.high)
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
class TriangularDate(SchemaModel):
    """A date drawn once per replication: triangular(low, mode, high) on the day
    clock, rounded to the nearest day (so ``low`` and ``high`` are reachable)."""

    dist: Literal["triangular"]
    low: date
    mode: date
    high: date

    @model_validator(mode="after")
    def _ordered(self) -> TriangularDate:
        _mode_within(self.low, self.mode, self.high)
        return self


class UniformDate(SchemaModel):
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
        if not isinstance(kind, str) or kind not in _DATE_DISTS:
            known = ", ".join(_DATE_DISTS)
            raise ValueError(f"unknown date dist {kind!r} (known: {known})")
        try:
            return _DATE_DISTS[kind].model_validate(value)
        except ValidationError as exc:
            raise ValueError(error_messages(exc.errors(), value)[0]) from None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            if _LOOKS_LIKE_DATE.match(value) or not NAME.match(value):
                raise ValueError(
                    f"{shown(value)} is neither a date (YYYY-MM-DD) nor a gate name"
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


# --------------------------------------------------------------------------- outcomes
class OutcomeRates(SchemaModel):
    """First-level outcome rates of one attempt; the five sum to 1."""

    success: Probability
    stall: Probability
    rollback: Probability
    fix_forward: Probability
    dumb: Probability

    @model_validator(mode="after")
    def _sum_to_one(self) -> OutcomeRates:
        total = sum(getattr(self, name) for name in OUTCOMES)
        if abs(total - 1.0) > RATE_TOLERANCE:
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


class DirichletAlpha(SchemaModel):
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


class DirichletOutcomes(SchemaModel):
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
    @property
    def success(self) -> float:
        return float(self.mean()[0])

    @property
    def stall(self) -> float:
        return float(self.mean()[1])

    @property
    def rollback(self) -> float:
        return float(self.mean()[2])

    @property
    def fix_forward(self) -> float:
        return float(self.mean()[3])

    @property
    def dumb(self) -> float:
        return float(self.mean()[4])


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


class BetaProbability(SchemaModel):
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
