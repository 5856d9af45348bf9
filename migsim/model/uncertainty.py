"""Input uncertainty: what a planner cannot know exactly, as stated distributions.

Second-order Monte Carlo draws every uncertain *input* once per replication (from
its own named random stream, so compared scenarios share the draws), and the
day-to-day randomness of attempts, delays and incidents inside it. This module
holds the schema pieces of the inputs that are not plain dates or rates:

- `OutcomeEvidence`: attempts and outcome counts observed (the seed paper's 2,139
  dormant Itron attempts); with a stated prior they make a cohort's Dirichlet
  outcome rates (``outcomes: {dist: dirichlet, prior: ..., evidence: ...}``);
- `SlipDate`: a planned date plus a heavy-tailed (lognormal) slip in days, with an
  optional "black swan" component that multiplies the slip, and ``shared: true``
  to scale it by the scenario's programme-wide delay factor;
- `ProgrammeDelay`: that factor, a lognormal multiplier drawn once per replication,
  giving dependence between the dates of several cohorts (one cause moves many);
- `AchievedThroughput`: the share of the day's cap achieved, as an AR(1) process on
  the logit scale around a mean share that is itself uncertain;
- `SizeRange`: a cohort's installations as a range where the size is an estimate
  (``from_meters``: a size converted from meters with the drawn ratio);
- `RatioRange`: the meters-per-installation ratio as a range (public counts are
  in meters, the simulation counts installations);
- `InputsFrom`: whose input draws a continued scenario keeps (the replication
  its state came from).

Each distribution has a *point* value (`point`), what ``uncertainty: point`` (and
``migsim run --point``) runs, so a planner sees what the uncertainty adds. The
models import only the schema's base (the rest of the schema imports them).
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, NonNegativeInt, model_serializer, model_validator

from migsim.model.base import OUTCOMES as _OUTCOMES
from migsim.model.base import SchemaModel as _Model

__all__ = [
    "AchievedThroughput",
    "BlackSwan",
    "CapRange",
    "InputsFrom",
    "OutcomeEvidence",
    "ProgrammeDelay",
    "RatioRange",
    "ShareBeta",
    "SizeRange",
    "SlipDate",
    "stationary_logit_mean",
]

#: Redraws of a slip that must not fall before its ``not_before``.
_REDRAWS = 1000
#: Slips are cut at 100 years: a date past every horizon, never past the calendar.
_LONGEST_SLIP = 36_525.0
#: Gauss-Hermite nodes for E[logistic(mu + s Z)], Z standard normal.
_HERMITE = np.polynomial.hermite.hermgauss(40)


# --------------------------------------------------------------------------- rates
class OutcomeEvidence(_Model):
    """Attempts observed and how they ended: the five counts sum to ``attempts``.

    With a stated Dirichlet ``prior`` the cohort's rates are
    Dirichlet(prior + weight x counts), drawn once per replication: the posterior
    of multinomial outcomes, whose mean is (prior + counts) / (prior total +
    attempts) at weight 1. A ``weight`` below 1 discounts evidence borrowed from
    other devices (a power prior): the mean moves less and the spread stays wider.
    """

    attempts: NonNegativeInt
    success: NonNegativeInt = 0
    stall: NonNegativeInt = 0
    rollback: NonNegativeInt = 0
    fix_forward: NonNegativeInt = 0
    dumb: NonNegativeInt = 0
    # how much it counts for this cohort (a power prior): 1 for the cohort's own
    # attempts, less for attempts borrowed from similar devices or modes
    weight: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0

    @model_validator(mode="after")
    def _counts_add_up(self) -> OutcomeEvidence:
        total = sum(getattr(self, name) for name in _OUTCOMES)
        if total != self.attempts:
            raise ValueError(
                f"outcome counts sum to {total:,}, not the {self.attempts:,} attempts"
            )
        return self

    def counts(self) -> np.ndarray:
        """The weighted counts in outcome order (success, stall, rollback,
        fix_forward, dumb): what they add to the prior's alphas."""
        counts = [getattr(self, name) for name in _OUTCOMES]
        return self.weight * np.array(counts, dtype=float)


# --------------------------------------------------------------------------- dates
class BlackSwan(_Model):
    """A rare, much larger slip: with ``probability`` the slip is ``factor`` times
    larger (reference class: 1 IT project in 6 overran its schedule by ~70%,
    Flyvbjerg and Budzier 2011; an assumption that it applies)."""

    probability: Annotated[float, Field(ge=0.0, le=1.0)]
    factor: Annotated[float, Field(ge=1.0)]


class SlipDate(_Model):
    """A planned date plus a slip: ``median_days`` x exp(``sigma`` x Z) days.

    Drawn once per replication and rounded to the nearest day. The slip is never
    negative (a plan is rarely early); ``shared: true`` multiplies it by the
    scenario's ``programme_delay`` factor (the same draw for every shared date),
    and ``black_swan`` multiplies it by its factor with its probability. The point
    value is the planned date.
    """

    dist: Literal["slip"]
    planned: date
    median_days: Annotated[float, Field(ge=0.0)]
    sigma: Annotated[float, Field(ge=0.0)]
    black_swan: BlackSwan | None = None
    shared: bool = False
    # known not to have happened before this date: drawn conditioned on that
    not_before: date | None = None

    @property
    def point(self) -> date:
        """The planned date (or ``not_before``, when the plan is already past)."""
        if self.not_before is not None and self.not_before > self.planned:
            return self.not_before
        return self.planned

    def slip_days(
        self, rng: np.random.Generator, programme_factor: float = 1.0
    ) -> float:
        """One slip in (fractional) days; always draws two numbers from ``rng``."""
        normal = rng.standard_normal()
        uniform = rng.random()
        slip = self.median_days * math.exp(self.sigma * normal)
        if self.shared:
            slip *= programme_factor
        if self.black_swan is not None and uniform < self.black_swan.probability:
            slip *= self.black_swan.factor
        return slip

    def draw(self, rng: np.random.Generator, programme_factor: float = 1.0) -> date:
        """One date: the planned date plus the slip, to the nearest day.

        With ``not_before`` the slip is redrawn (the stream going on) until the
        date is not before it: the slip's law given what has not happened yet;
        after `_REDRAWS` misses the date is ``not_before`` itself.
        """
        if self.not_before is None:
            return self._slipped(rng, programme_factor)
        for _ in range(_REDRAWS):
            when = self._slipped(rng, programme_factor)
            if when >= self.not_before:
                return when
        return self.not_before

    def _slipped(self, rng: np.random.Generator, programme_factor: float) -> date:
        """The planned date plus one draw of the slip, to the nearest day."""
        slip = min(self.slip_days(rng, programme_factor), _LONGEST_SLIP)
        return self.planned + timedelta(days=math.floor(slip + 0.5))


class ProgrammeDelay(_Model):
    """A programme-wide delay factor: lognormal(median, sigma), drawn once per
    replication; it multiplies every slip marked ``shared: true``, so the slips
    of several cohorts move together when one cause (the programme) moves them.
    Its point value is the median."""

    dist: Literal["lognormal"]
    median: Annotated[float, Field(gt=0.0)] = 1.0
    sigma: Annotated[float, Field(ge=0.0)]

    @property
    def point(self) -> float:
        return self.median

    def draw(self, rng: np.random.Generator) -> float:
        return self.median * math.exp(self.sigma * rng.standard_normal())


# --------------------------------------------------------------------------- throughput
class ShareBeta(_Model):
    """An uncertain share: Beta(alpha, beta), drawn once per replication."""

    dist: Literal["beta"]
    alpha: Annotated[float, Field(gt=0.0)]
    beta: Annotated[float, Field(gt=0.0)]

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.beta(self.alpha, self.beta))


#: The largest exponent the logistic takes: exp(700) is finite (exp(710) is
#: not, and numpy warned of the overflow for a wild innovation_sd), and below
#: logit -700 the share is under 1e-304, as good as the 0 it was; an ordinary
#: logit never comes near, so its share keeps its bits.
_EXP_CAP = 700.0


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(np.minimum(-x, _EXP_CAP)))


def _mean_share(mu: float, scaled: np.ndarray, out: np.ndarray) -> float:
    """E[logistic(mu + spread x Z)], Z standard normal (Gauss-Hermite).

    ``scaled`` is spread x sqrt(2) x the nodes; ``out`` a buffer of their size.
    The logistic is computed in place (1 / (1 + exp(-x)), the same operations
    as `_logistic`, the exponent capped alike): the bisection calls this sixty
    times per replication.
    """
    weights = _HERMITE[1]
    np.add(mu, scaled, out=out)
    np.negative(out, out=out)
    np.minimum(out, _EXP_CAP, out=out)
    np.exp(out, out=out)
    np.add(1.0, out, out=out)
    np.divide(1.0, out, out=out)
    return float(weights @ out / math.sqrt(math.pi))


def _autoregress(shocks: np.ndarray, phi: float) -> np.ndarray:
    """x_t = phi x_(t-1) + e_t from x_(-1) = 0: the AR(1) deviations of the shocks e_t.

    A loop over a year of days costs tens of microseconds; the linear filter
    that does the same (``scipy.signal.lfilter([1], [1, -phi], shocks)``, the
    same sums in the same order, so the same bits) costs half a second of import
    in every process that runs a replication.
    """
    out = shocks.tolist()
    x = 0.0
    for t, e in enumerate(out):
        x = e + phi * x
        out[t] = x
    return np.array(out)


def stationary_logit_mean(mean_share: float, spread: float) -> float:
    """The logit-scale level mu whose process has the stated mean share.

    The share is logistic(mu + X) with X stationary normal of sd ``spread``; its
    mean is not logistic(mu), so mu is solved (bisection on the monotone mean).
    """
    share = min(max(mean_share, 1e-6), 1 - 1e-6)
    if spread == 0:
        return math.log(share / (1 - share))
    scaled = spread * math.sqrt(2.0) * _HERMITE[0]
    buffer = np.empty_like(scaled)
    low, high = -30.0, 30.0
    for _ in range(60):
        middle = (low + high) / 2
        if _mean_share(middle, scaled, buffer) < share:
            low = middle
        else:
            high = middle
    return (low + high) / 2


class AchievedThroughput(_Model):
    """The share of the day's cap achieved: an AR(1) process on the logit scale.

    logit(share_t) = mu + x_t with x_t = ``persistence`` x x_(t-1) + e_t,
    e_t ~ N(0, ``innovation_sd``^2), started from its stationary law, one value
    per calendar day; mu is set so that the share's long-run mean is ``mean``.
    ``mean`` is a number or a Beta drawn once per replication (an input). The
    engine attempts at most floor(cap x share) that day.
    """

    dist: Literal["ar1"]
    mean: Annotated[float, Field(gt=0.0, le=1.0)] | ShareBeta
    persistence: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    innovation_sd: Annotated[float, Field(ge=0.0)] = 0.0

    @property
    def point(self) -> float:
        """The mean share (the Beta's mean when it is uncertain)."""
        return self.mean.mean if isinstance(self.mean, ShareBeta) else float(self.mean)

    @property
    def stationary_sd(self) -> float:
        """The sd of the logit deviation x_t in the long run."""
        return self.innovation_sd / math.sqrt(1.0 - self.persistence**2)

    def path(
        self, mean_share: float, rng: np.random.Generator, n_days: int
    ) -> np.ndarray:
        """``n_days`` daily shares in [0, 1] around ``mean_share``."""
        if mean_share >= 1.0 and self.innovation_sd == 0:
            return np.ones(n_days)
        spread = self.stationary_sd
        mu = stationary_logit_mean(mean_share, spread)
        if spread == 0 or n_days == 0:
            return np.full(n_days, float(_logistic(np.array(mu))))
        shocks = rng.standard_normal(n_days) * self.innovation_sd
        shocks[0] = shocks[0] / self.innovation_sd * spread  # stationary start
        phi = self.persistence
        deviation = shocks if phi == 0 else _autoregress(shocks, phi)
        return _logistic(mu + deviation)


# --------------------------------------------------------------------------- sizes
class SizeRange(_Model):
    """A cohort's size as a range where it is an estimate: drawn once per
    replication, triangular(low, installations, high) or uniform on
    low..high; the cohort's ``installations`` is its point value (the mode)."""

    dist: Literal["triangular", "uniform"]
    low: NonNegativeInt
    high: NonNegativeInt
    # one scenario-wide quantile for every shared range (the fleet's size moves
    # all cohorts together); otherwise the cohort's own draw
    shared: bool = False
    # the range (and the point) are meters converted at the point ratio
    # (meters_per_installation): each replication converts again with its own
    # drawn ratio, so the size in meters stays in the stated range
    from_meters: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SizeRange:
        """A range whose ends are swapped is said so: it was refused as "the
        point value must lie in the range [30,000, 20,000]"."""
        if self.high < self.low:
            raise ValueError(f"high ({self.high:,}) is below low ({self.low:,})")
        return self

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler: Any) -> dict[str, Any]:
        """Leave out ``from_meters`` when false: a range dumps (and hashes) as
        before the field existed."""
        data = handler(self)
        if data.get("from_meters") is False:
            del data["from_meters"]
        return data

    def check(self, point: int) -> None:
        """The point value (the cohort's installations, the step's cap) must lie
        in the range."""
        if not self.low <= point <= self.high:
            raise ValueError(
                f"the point value ({point:,}) must lie in the range "
                f"[{self.low:,}, {self.high:,}]"
            )

    def draw(self, rng: np.random.Generator, installations: int) -> int:
        """One size from the cohort's own stream (a unit uniform, then `at`)."""
        return self.at(rng.random(), installations)

    def least_quantile(self, size: int, installations: int) -> float:
        """The smallest quantile whose size (`at`) is at least ``size``: 0 at
        or below ``low``, 1 above ``high``. Drawn as ``q + u (1 - q)``, a size
        is drawn from the range given that it is no smaller (bisection: `at`
        is monotone, and a few dozen halvings pin it to far below one
        installation)."""
        if size <= self.low:
            return 0.0
        if size > self.high:
            return 1.0
        below, above = 0.0, 1.0  # at(below) < size <= at(above)
        for _ in range(60):
            middle = (below + above) / 2
            if self.at(middle, installations) >= size:
                above = middle
            else:
                below = middle
        return above

    def at(self, quantile: float, installations: int) -> int:
        """The size at a quantile in [0, 1): the inverse of the range's CDF."""
        low, high, mode = float(self.low), float(self.high), float(installations)
        if high == low:
            return self.low
        if self.dist == "uniform":
            return min(self.high, self.low + math.floor(quantile * (high - low + 1)))
        cut = (mode - low) / (high - low)
        if quantile < cut:
            value = low + math.sqrt(quantile * (high - low) * (mode - low))
        else:
            value = high - math.sqrt((1 - quantile) * (high - low) * (high - mode))
        return min(self.high, max(self.low, math.floor(value + 0.5)))


class CapRange(SizeRange):
    """A schedule step's cap as a range where the level is an estimate (drawn
    once per replication; the step's ``daily_cap`` is its point value)."""

    @model_validator(mode="after")
    def _caps_are_installations(self) -> CapRange:
        if self.from_meters:
            raise ValueError("from_meters: a cap is stated in installations a day")
        return self


class RatioRange(_Model):
    """Meters per installation as a range: triangular(low, point, high) or
    uniform on [low, high], drawn once per replication; the scenario's
    ``meters_per_installation`` is its point value (the mode).

    Public programme counts are in meters and migsim counts installations: a
    replication's meters are its installations times its own ratio, so bands in
    meters carry the ratio's uncertainty as well as the programme's.
    """

    dist: Literal["triangular", "uniform"]
    low: Annotated[float, Field(gt=0.0)]
    high: Annotated[float, Field(gt=0.0)]

    @model_validator(mode="after")
    def _ordered(self) -> RatioRange:
        if self.high < self.low:
            raise ValueError(f"high ({self.high:g}) is below low ({self.low:g})")
        return self

    def check(self, point: float) -> None:
        """The point value (``meters_per_installation``) must lie in the range."""
        if not self.low <= point <= self.high:
            raise ValueError(
                f"the point value ({point:g}) must lie in the range "
                f"[{self.low:g}, {self.high:g}]"
            )

    def draw(self, rng: np.random.Generator, point: float) -> float:
        """One ratio from its own stream (a unit uniform, then `at`)."""
        return self.at(rng.random(), point)

    def at(self, quantile: float, point: float) -> float:
        """The ratio at a quantile in [0, 1): the inverse of the range's CDF."""
        low, high = self.low, self.high
        if high == low:
            return low
        if self.dist == "uniform":
            return low + quantile * (high - low)
        cut = (point - low) / (high - low)
        if quantile < cut:
            return low + math.sqrt(quantile * (high - low) * (point - low))
        return high - math.sqrt((1 - quantile) * (high - low) * (high - point))


# ---------------------------------------------------------------- continuation
class InputsFrom(_Model):
    """The replication whose input draws a continued scenario keeps.

    `Scenario.starting_from` sets it from a state `Results.state_on` exported:
    the state is replication ``replication``'s (under run seed ``seed``), so its
    future must have that replication's inputs (outcome rates, dates not reached
    yet, achieved-throughput level, caps, ratio), not fresh ones. Every
    replication of the continued run draws its inputs from that replication's
    input streams and its day-to-day randomness from its own. A distribution
    calibration changed draws anew from the same stream (the actuals updated it).
    """

    seed: NonNegativeInt
    replication: NonNegativeInt
