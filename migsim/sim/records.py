"""Run records: the names of a replication's states and flows, and its log.

Every installation is in exactly one of `STATES` at the end of a day; `FLOWS`
count what moved that day. `RunLog` is what one replication hands back: plain
arrays, so the results layer can build tables from it without the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from migsim.model.base import OUTCOMES
from migsim.model.state import STATES as MODEL_STATES
from migsim.sim.defects import DefectRecord

__all__ = ["AWAITING_VISIT", "FLOWS", "IN_FLIGHT", "STATES", "Outcome", "RunLog"]

#: The partition: every installation is in exactly one state at the end of a day.
STATES = MODEL_STATES
#: The states not yet resolved (the rest are migrated, dumb and abandoned): what
#: a run still has to do, the ``unresolved`` figure and the ``remaining`` series,
#: together with the dumb devices awaiting remote recovery (see `AWAITING_VISIT`).
IN_FLIGHT = ("pending", "queued", "stalled", "rolled_back", "impaired")
assert STATES[: len(IN_FLIGHT)] == IN_FLIGHT
#: The sub-count of ``dumb`` awaiting a site visit, a cohort column only when a
#: cohort has a dumb section. The rest of the dumb await remote recovery: they
#: will be attempted again, so they are not resolved and a run is not cleared
#: while any are (``dumb`` less this column counts them; without the column no
#: device is recovered and every dumb one is resolved).
AWAITING_VISIT = "awaiting_site_visit"
#: Flows of one day: first-level outcomes of the day's attempts, then transitions.
FLOWS = (
    "attempts",
    "successes",
    "stalls",
    "rollbacks",
    "fix_forwards",
    "dumbs",
    "stall_completions",
    "stall_failures",
    "restorations",
    "abandons",
)


class Outcome(StrEnum):
    """First-level outcome of one attempt."""

    SUCCESS = "success"
    STALL = "stall"
    ROLLBACK = "rollback"
    FIX_FORWARD = "fix_forward"
    DUMB = "dumb"


assert tuple(o.value for o in Outcome) == OUTCOMES


@dataclass
class RunLog:
    """Everything one replication produced, as plain arrays.

    Attributes
    ----------
    replication
        Index k of the replication (its seed stream).
    cohort_columns
        ``{column: int64 array (days, cohorts)}``: the eight states at the end of
        each day, then the day's flows (see `STATES`, `FLOWS`).
    day_columns
        ``{column: array (days,)}``: scenario-wide daily values: the ramp
        policy's ``daily_cap``, ``cap_rule``, ``no_go`` and ``rule_fired``;
        operations add the ELS backlog and the achieved cap.
    clearance_day, cohort_clearance_days
        First end of day at which the scenario (each cohort) counts as cleared;
        ``None`` when not within the horizon.
    defects
        What each latent defect did (`defects.DefectRecord`); empty without any.
    """

    replication: int
    cohort_columns: dict[str, np.ndarray]
    day_columns: dict[str, np.ndarray] = field(default_factory=dict)
    clearance_day: int | None = None
    cohort_clearance_days: list[int | None] = field(default_factory=list)
    gate_days: dict[str, int | None] = field(default_factory=dict)  # None: never
    defects: list[DefectRecord] = field(default_factory=list)
    #: the replication's input draws (`migsim.sim.inputs.record_inputs`)
    inputs: dict[str, float] = field(default_factory=dict)
