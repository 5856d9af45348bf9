"""A cohort: installations that share a device model combination, mode and rates,
with what happens after each outcome, the operations risks that apply to them,
and the suppliers and ELS capacity that serve them (docs/operations-risk.md).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    Field,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_serializer,
    model_validator,
)

from migsim.model.base import (
    OUTCOMES,
    RATE_TOLERANCE,
    Name,
    Probability,
    SchemaModel,
    check_unique,
)
from migsim.model.distributions import (
    DateSpec,
    Delay,
    Outcomes,
    UncertainProbability,
    probability_mean,
)
from migsim.model.state import InitialState
from migsim.model.uncertainty import SizeRange

__all__ = [
    "ChangeOfSupplier",
    "Cohort",
    "DeferredShare",
    "DumbSpec",
    "Els",
    "Exclusion",
    "FixForwardSpec",
    "HardCases",
    "LatentDefect",
    "PpmidJoin",
    "RateIncrease",
    "RollbackSpec",
    "StallSpec",
    "Supplier",
    "VolumeFailures",
]


# ------------------------------------------------------------------- after an outcome
class StallSpec(SchemaModel):
    """A stalled attempt waits, then completes (migrated) or fails (a rollback)."""

    resolves_after_days: Delay
    then_success: UncertainProbability
    release_on: DateSpec | None = None  # common cause: no stall resolves before it


class RollbackSpec(SchemaModel):
    """A rolled-back installation rejoins the queue after this delay."""

    retry_after_days: Delay


class FixForwardSpec(SchemaModel):
    """A fixed-forward installation is migrated but impaired until restored."""

    restored_after_days: Delay


# -------------------------------------------------------------------- operations risk
class RateIncrease(SchemaModel):
    """Additions to first-level rates; success gives way by their sum."""

    stall: Probability = 0.0
    rollback: Probability = 0.0
    fix_forward: Probability = 0.0
    dumb: Probability = 0.0

    @property
    def total(self) -> float:
        return self.stall + self.rollback + self.fix_forward + self.dumb

    def apply(self, rates: np.ndarray) -> np.ndarray:
        """Rates (`OUTCOMES` order) with the increases added and success reduced.

        Success stops at 0 and the rates are rescaled to sum to 1: a drawn
        success below `total` (validation checks only the point rates) gives
        failure rates below ``rates + increase`` (docs/operations-risk.md, 2).
        """
        added = np.array([0.0, self.stall, self.rollback, self.fix_forward, self.dumb])
        out = rates + added
        out[0] = max(0.0, rates[0] - self.total)
        return out / out.sum()


class LatentDefect(SchemaModel):
    """A defect that may exist in a new migration type, hitting a share of attempts.

    Drawn once per replication. While it exists and is undetected it gives
    ``hit_share`` of the cohort's attempts the ``outcome``. It is found at the end
    of the first day on which its cumulative cases reach ``detected_after_cases``
    or on which it has been exposed ``detected_after_days`` days, plus
    ``detection_lag_days``; from the next day migrations halt (the cohort, or
    all cohorts) for ``fix_after_days``, and afterwards it hits nothing.
    """

    name: Name
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


class VolumeFailures(SchemaModel):
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


class DumbSpec(SchemaModel):
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


class HardCases(SchemaModel):
    """A share of the cohort with its own (worse) first-level outcome rates."""

    share: Probability
    outcomes: Outcomes


class Exclusion(SchemaModel):
    """A share that can never be migrated remotely (no WAN coverage, missing keys).

    ``attempted``: they are attempted, roll back every time and are abandoned
    after ``max_attempts``; ``up_front``: abandoned on the cohort's eligible day
    without an attempt. Either way they are counted in ``excluded`` (of ``abandoned``).
    """

    share: Probability
    when: Literal["attempted", "up_front"] = "attempted"


class ChangeOfSupplier(SchemaModel):
    """Change-of-supplier events on migrated installations, some losing their alert."""

    annual_rate: Annotated[float, Field(ge=0.0, le=10.0)]  # per installation-year
    alert_loss_share: Probability = 1.0 / 3.0  # issue 61224: 1 in 3 alerts not sent
    until: DateSpec | None = None  # the fix; None: not fixed in the horizon


class PpmidJoin(SchemaModel):
    """PPMID joins that fail for newly migrated active prepayment installations."""

    failure_share: Probability
    until: DateSpec | None = None  # the fix (issue 91342); None: never fixed


class DeferredShare(SchemaModel):
    """A share of a cohort not migratable before ``until`` (e.g. split supply)."""

    name: Name
    share: Probability
    until: DateSpec


# --------------------------------------------------------------------------- cohorts
class Cohort(SchemaModel):
    """Installations that share a device model combination, mode and rates."""

    name: Name
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
            state = self.initial_state
            if state is not None and state.size_holder is None:
                raise ValueError(
                    "installations_range: a cohort whose initial_state has parts, "
                    "or no pending or queued first attempts, has a known size"
                )
        return self

    @field_validator("deferred")
    @classmethod
    def _shares_fit(cls, deferred: list[DeferredShare]) -> list[DeferredShare]:
        check_unique("deferred share", [d.name for d in deferred])
        total = sum(d.share for d in deferred)
        if total > 1.0 + RATE_TOLERANCE:
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

    @property
    def recovered_share(self) -> float:
        """The share of its dumb devices recovered remotely (0 without a
        ``dumb`` section): they are retried, not left dumb."""
        return self.dumb.recovered_share if self.dumb is not None else 0.0

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
            "recovering": self.max_attempts,
        }
        # the parts' groups too (and recovering): past the limit they indexed
        # beyond the engine's columns, after validation (IndexError in the run)
        wholes: list[tuple[str, Any]] = [("initial_state", state)]
        wholes += [(f"initial_state.parts.{i}", p) for i, p in enumerate(state.parts)]
        for where, whole in wholes:
            for name, limit in limits.items():
                groups = getattr(whole, name)
                for group in groups if isinstance(groups, list) else []:
                    if group.attempts_made > limit:
                        raise ValueError(
                            f"{where}.{name}: attempts_made {group.attempts_made} "
                            f"is above {limit} (max_attempts {self.max_attempts})"
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
        if hard + excluded > 1 + RATE_TOLERANCE:
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
                if rates is not None and rates.success + RATE_TOLERANCE < total:
                    raise ValueError(
                        f"volume_failures.increase: adds {total:.6g}, more than "
                        f"{label}.success ({rates.success:.6g}) can give way"
                    )
        if self.suppliers:
            total = sum(self.suppliers.values())
            if abs(total - 1.0) > RATE_TOLERANCE:
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


class Supplier(SchemaModel):
    """An energy supplier: its business readiness and daily migration demand.

    A migrated installation is *operational* only once its supplier is ready; an
    *active* installation is not attempted before then (it would lose service).
    """

    name: Name
    business_ready: DateSpec | None = None  # None: ready from the start
    daily_nomination: NonNegativeInt | None = None  # None: demand = eligible queue


#: The outcomes whose installations raise an ELS/MCC case.
CaseSource = Literal["stall", "rollback", "fix_forward", "dumb"]


def _every_case_source() -> list[CaseSource]:
    return ["stall", "rollback", "fix_forward", "dumb"]


class Els(SchemaModel):
    """Early Life Support and the Migration Control Centre as limited capacity.

    Each first-level outcome named in ``cases_from`` raises one case per
    installation; cases are worked first in, first out, ``daily_capacity`` per
    working day, from the day after they are raised.
    """

    daily_capacity: PositiveInt
    cases_from: list[CaseSource] = Field(default_factory=_every_case_source)

    @field_validator("cases_from")
    @classmethod
    def _unique_kinds(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("cases_from lists an outcome twice")
        return value
