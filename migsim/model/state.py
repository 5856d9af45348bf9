"""Mid-programme state: where a run starts when it continues another.

A cohort's `InitialState` (the partition of its installations, in-flight states
as counts or groups by history) and the scenario-wide `OperationsState` (the cap
in force, rules' re-arm state and window history, open ELS cases, latent defects,
gates and dates already passed). `Results.state_on` exports both and
`Scenario.starting_from` reads them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    NonNegativeInt,
    NonPositiveInt,
    PositiveInt,
    Tag,
    model_serializer,
    model_validator,
)

from migsim.model.base import SchemaModel

__all__ = [
    "DefectState",
    "ElsCase",
    "ImpairedGroup",
    "InitialState",
    "OperationsState",
    "PartState",
    "PolicyDay",
    "QueuedGroup",
    "RuleState",
    "WaitingGroup",
]


# --------------------------------------------------------------------------- cohorts
class QueuedGroup(SchemaModel):
    """Queued installations with the same history: attempts made so far, and for a
    retry how long it has been due (``days_until_due`` <= 0; 0 = due on the day of
    the state). Retries are served oldest due first."""

    count: NonNegativeInt
    attempts_made: NonNegativeInt = 0
    days_until_due: NonPositiveInt = 0


class WaitingGroup(SchemaModel):
    """Stalled or rolled-back installations due on the same day with the same history.

    ``days_until_due`` counts from the day of the state: 1 = due on ``start_date``.
    ``attempts_made`` includes the attempt that stalled or rolled back.
    """

    count: NonNegativeInt
    attempts_made: PositiveInt = 1
    days_until_due: PositiveInt
    held: bool = False  # its ELS case not worked yet: due day drawn when it is


class ImpairedGroup(SchemaModel):
    """Impaired (fixed-forward) installations restored on the same day."""

    count: NonNegativeInt
    days_until_due: PositiveInt
    held: bool = False  # its ELS case not worked yet: due day drawn when it is


def _count_or_groups(value: Any) -> str:
    """Tell a count (an int) from a list of groups, before validation."""
    return "groups" if isinstance(value, list) else "count"


# An in-flight state as a count or as its groups (spelled out for type checkers).
QueuedState = Annotated[
    Annotated[NonNegativeInt, Tag("count")]
    | Annotated[list[QueuedGroup], Tag("groups")],
    Discriminator(_count_or_groups),
]
WaitingState = Annotated[
    Annotated[NonNegativeInt, Tag("count")]
    | Annotated[list[WaitingGroup], Tag("groups")],
    Discriminator(_count_or_groups),
]
ImpairedState = Annotated[
    Annotated[NonNegativeInt, Tag("count")]
    | Annotated[list[ImpairedGroup], Tag("groups")],
    Discriminator(_count_or_groups),
]


class _Partition(SchemaModel):
    """Every state of the partition; in-flight states a count or groups."""

    pending: NonNegativeInt = 0
    queued: QueuedState = 0
    stalled: WaitingState = 0
    rolled_back: WaitingState = 0
    impaired: ImpairedState = 0
    migrated: NonNegativeInt = 0
    dumb: NonNegativeInt = 0
    abandoned: NonNegativeInt = 0
    # of the dumb: devices awaiting remote recovery (a cohort's dumb section)
    recovering: list[WaitingGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _recovering_of_dumb(self) -> _Partition:
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


class PartState(_Partition):
    """The state of one part of a cohort: a supplier's segment and one class.

    The engine simulates a cohort as parts (supplier x class: ``normal``,
    ``hard``, ``excluded``), each with its own queue columns. A run exports each
    part's state (`Results.state_on`), so a continued run takes up each part
    where it stood: the excluded installations stay excluded, the hard cases
    hard. ``supplier`` is ``""`` for a cohort not split between suppliers.
    """

    supplier: str = ""
    kind: Literal["normal", "hard", "excluded"] = "normal"


class InitialState(_Partition):
    """A cohort's state at the end of the day before ``start_date``: a mid-way start.

    Every state of the partition, summing to ``installations``. In-flight states are
    a count (coarse: the detail is drawn per replication, see the calibration and
    forecasting reference) or a list of groups by (attempts made, days until due).

    ``parts`` (optional) holds the same state per supplier segment and class, as
    a run exports it; they add up to the cohort's states. Without them (e.g. a
    state read from actuals) the state is shared between the parts in proportion
    to their installations, except that excluded installations are never
    migrated, stalled or dumb and take the abandoned first.
    """

    parts: list[PartState] = Field(default_factory=list)
    # ``dumb`` is an estimate (totals say how many migrated, not how many went
    # dumb): each replication re-estimates it at its own rates (`with_dumb`)
    dumb_estimated: bool = False

    @model_validator(mode="after")
    def _parts_add_up(self) -> InitialState:
        if not self.parts:
            return self
        keys = [(p.supplier, p.kind) for p in self.parts]
        if len(set(keys)) != len(keys):
            raise ValueError("parts: a supplier and class appear twice")
        for state in (*_PARTITION, "recovering"):
            whole = (
                sum(g.count for g in self.recovering)
                if state == "recovering"
                else self.count(state)
            )
            summed = sum(
                sum(g.count for g in p.recovering)
                if state == "recovering"
                else p.count(state)
                for p in self.parts
            )
            if summed != whole:
                raise ValueError(
                    f"parts: their {state} add up to {summed:,}, not {whole:,}"
                )
        return self

    @model_serializer(mode="wrap")
    def _omit_no_parts(self, handler: Any) -> dict[str, Any]:
        """Leave out empty ``parts`` and a false ``dumb_estimated``, so a state
        without them dumps (and hashes) exactly as before the fields existed."""
        data = handler(self)
        for key in ("parts", "dumb_estimated"):
            if not data.get(key, ...):
                data.pop(key, None)
        return data

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

    @property
    def size_holder(self) -> str | None:
        """Which state takes the difference when the cohort's size is drawn
        (an ``installations_range`` beside this state): its pending
        installations, else its queued first attempts (a count, or the group
        with no attempt made). A state from actuals that do not report sizes
        says what had happened, not how large the cohort is, so the ones it
        has not seen yet are the size's to move. None when it has ``parts``
        (a run's state: its size is known) or no queued first attempts."""
        if self.parts:
            return None
        if self.pending:
            return "pending"
        if isinstance(self.queued, int):
            return "queued" if self.queued else None
        if self._first_attempts() is not None:
            return "queued"
        return None

    def _first_attempts(self) -> int | None:
        """The position of the queued group with no attempt made, if any
        (of some installations)."""
        if isinstance(self.queued, int):
            return None
        return next(
            (i for i, g in enumerate(self.queued) if g.attempts_made == 0 and g.count),
            None,
        )

    def _spare(self) -> int:
        """What `size_holder` holds: the installations a drawn size moves."""
        i = self._first_attempts()
        if self.size_holder == "queued" and i is not None:
            return self.queued[i].count  # type: ignore[index]
        return self.count(self.size_holder) if self.size_holder else 0

    @property
    def least_size(self) -> int:
        """The smallest size `with_size` can give: what the state holds apart
        from the installations that take a drawn size's difference (a size
        drawn for it is drawn at least this large: `sim.inputs`)."""
        return self.total - self._spare()

    def with_size(self, size: int) -> InitialState:
        """This state for a cohort of ``size`` installations: the difference
        goes to `size_holder`, which cannot go below 0 (a size under
        `least_size`, which draws avoid, is taken as that)."""
        if self.size_holder is None:
            raise ValueError("the state's size is known (parts, no first attempts)")
        return self._holding(max(0, size - self.least_size))

    def with_dumb(self, dumb: int) -> InitialState:
        """This state with ``dumb`` devices left dumb, one replication's estimate
        (``dumb_estimated``): the difference is taken from or given to
        `size_holder`, which cannot go below 0, nor the dumb below those
        recovering. Without a holder (every installation attempted) the
        state's own estimate stands."""
        known = {"dumb_estimated": False}
        if self.size_holder is None:
            return self.model_copy(update=known)
        spare = self._spare()
        recovering = sum(g.count for g in self.recovering)
        dumb = min(max(dumb, recovering), self.dumb + spare)
        holding = self._holding(spare + self.dumb - dumb)
        return holding.model_copy(update={"dumb": dumb, **known})

    def _holding(self, count: int) -> InitialState:
        """This state with `size_holder` holding ``count`` installations."""
        holder = self.size_holder
        assert holder is not None
        i = self._first_attempts()
        if holder == "queued" and i is not None:
            groups = list(self.queued)  # type: ignore[arg-type]
            groups[i] = groups[i].model_copy(update={"count": count})
            return self.model_copy(update={"queued": groups})
        return self.model_copy(update={holder: count})


#: The states an installation can be in, in the engine's order: one
#: partition, named here (the lowest layer that needs it) and reused by the
#: simulation (`migsim.sim.records.STATES`).
STATES = (
    "pending",  # not yet eligible
    "queued",  # eligible, waiting for an attempt (first or retry)
    "stalled",  # attempt stuck mid-way, waiting to complete or fail
    "rolled_back",  # reversed; waiting for its retry delay
    "impaired",  # migrated by fix forward, not yet restored
    "migrated",
    "dumb",
    "abandoned",  # failed its last allowed attempt
)
_PARTITION = STATES


# --------------------------------------------------------------------------- operations
class PolicyDay(SchemaModel):
    """One day of a ramp policy's window history: the day's flows summed over all
    cohorts (``flows``) and over the active cohorts (``active``), by flow column
    name, and the stalled installations at its end."""

    flows: dict[str, NonNegativeInt] = Field(default_factory=dict)
    active: dict[str, NonNegativeInt] = Field(default_factory=dict)
    stalled: NonNegativeInt = 0
    els_backlog: NonNegativeInt = 0  # ELS cases open at its end (with an els section)


class RuleState(SchemaModel):
    """Where a capacity rule stands: the day its last action ended (relative to
    ``start_date``: 0 or below is in the past) and how often it fired so far."""

    action_end: int = 0
    firings: NonNegativeInt = 0


class ElsCase(SchemaModel):
    """A batch of open ELS / MCC cases, not yet worked: raised ``-raised`` days
    before the state's day (0: on it). Stall and fix-forward cases hold their
    installations (``attempts``: counts by attempts made; they are the ``held``
    groups of the cohort's ``initial_state``)."""

    cohort: str
    kind: Literal["stall", "fix_forward", "rollback", "dumb"]
    count: PositiveInt
    raised: NonPositiveInt
    attempts: dict[int, NonNegativeInt] = Field(default_factory=dict)
    # the part it belongs to (cohorts split between suppliers or classes): the
    # supplier's segment, and the held installations by class, then attempts made
    supplier: str = ""
    by_class: dict[str, dict[int, NonNegativeInt]] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _omit_unsplit(self, handler: Any) -> dict[str, Any]:
        """Leave out the part of an unsplit cohort's case (dumps as before)."""
        data = handler(self)
        if data.get("supplier", ...) == "":
            del data["supplier"]
        if not data.get("by_class", ...):
            data.pop("by_class", None)
        return data


class DefectState(SchemaModel):
    """A latent defect as a replication left it: whether it exists, the
    installations it hit so far, the day it was first exposed and found (relative
    to ``start_date``; ``None``: not yet) and its drawn fix delay in days.

    ``fix_days_at_least``: the fix delay is only known to be at least this (a
    halt still running when the state was read from actuals); each replication
    then draws its own from the defect's ``fix_after_days`` given that, and
    ``fix_days`` (that draw's median) is what a single number would say.
    """

    cohort: str
    defect: str
    exists: bool
    hits: NonNegativeInt = 0
    first_exposed: int | None = None
    found_day: int | None = None
    fix_days: PositiveInt = 1
    fix_days_at_least: PositiveInt | None = None


class OperationsState(SchemaModel):
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
    # True: ``cap`` and ``ceiling`` include every schedule step before day 0 (a
    # run's state); False: the cap's history is unknown (actuals without
    # daily_cap and cap_rule), so a step drawn before day 0 is in force from day
    # 0, as in a run from the start
    steps_known: bool = True
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
