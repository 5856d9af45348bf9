"""Engine: one replication of a scenario, simulated at batch level on SimPy.

Why batches: the SMETS1 fleet is millions of installations, so the engine never
spends a process (or even a Python object) per installation. Each working day
each cohort attempts one *batch*; its first-level outcomes are one multinomial
draw; the delays of a group (stall resolution, rollback retry, fix-forward
restoration) are one multinomial over the delay's day distribution, kept in
ledgers keyed by due day. Cost grows with days x cohorts x distinct delays.

The day (a SimPy process ticking once per calendar day) runs in this order:

0. ELS / MCC work open cases (only with an ``els`` section; see `operations`);
1. stall resolutions due today (completion or failure -> rollback/abandon);
2. retries rejoining the queue, restorations, remote dumb recoveries, cohorts
   becoming eligible;
3. the day's cap comes from the ramp policy (`migsim.sim.policy`: calendar,
   schedule, rules, go/no-go; 0 on a day without migrations); operations may
   lower it to the share achieved that day; the cap is shared between cohorts
   (and their segments) and each segment's batch is attempted;
4. the end-of-day state of every cohort is recorded (then operations detect
   defects and draw consumer exposure).

A cohort is simulated as one or more *segments* (`operations.Segment`: its
supplier splits, each holding its hard and excluded classes), each with its own
queue and ledgers; without those sections a cohort is exactly one segment and
runs as the foundation did.

The engine is a pure function of (scenario, replication streams): no globals,
files, printing or pandas.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import simpy

from migsim.model.scenario import (
    OUTCOMES,
    BetaProbability,
    Cohort,
    DirichletOutcomes,
    InitialState,
    Scenario,
    draw_probability,
)
from migsim.sim.inputs import (
    TwinStreams,
    point_values,
    record_inputs,
    resolve_inputs,
)
from migsim.sim.operations import (
    DefectRecord,
    Operations,
    Segment,
    cached_pmf,
    hit_by_defects,
    largest_remainder,
    share_pro_rata,
)
from migsim.sim.policy import Policy, ResolvedDates, resolve_dates, working_days

__all__ = [
    "FLOWS",
    "STATES",
    "Outcome",
    "RunLog",
    "Streams",
    "replication_seed",
    "residual_pmf",
    "run_replication",
    "share_pro_rata",
    "state_after",
    "working_days",
]

#: The partition: every installation is in exactly one state at the end of a day.
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
_RESOLVED = ("migrated", "dumb", "abandoned")


class Outcome(str, Enum):
    """First-level outcome of one attempt."""

    SUCCESS = "success"
    STALL = "stall"
    ROLLBACK = "rollback"
    FIX_FORWARD = "fix_forward"
    DUMB = "dumb"


assert tuple(o.value for o in Outcome) == OUTCOMES


# --------------------------------------------------------------------------- seeding
def _name_key(name: str) -> int:
    """A stable 32-bit key for a stream name (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def replication_seed(seed: int, replication: int) -> np.random.SeedSequence:
    """The seed sequence of replication k: the k-th child of ``SeedSequence(seed)``."""
    return np.random.SeedSequence(seed, spawn_key=(replication,))


class Streams:
    """Independent generators per (owner, purpose), keyed by stable names.

    Adding a cohort or a scenario section adds streams; it never shifts the
    numbers another cohort draws, because each stream's seed depends only on the
    run seed, the replication and its own names.
    """

    def __init__(self, seed: int, replication: int):
        self.seed = seed
        self.replication = replication
        self._generators: dict[tuple[str, str], np.random.Generator] = {}

    def get(self, owner: str, purpose: str) -> np.random.Generator:
        key = (owner, purpose)
        generator = self._generators.get(key)
        if generator is None:
            sequence = np.random.SeedSequence(
                self.seed,
                spawn_key=(self.replication, _name_key(owner), _name_key(purpose)),
            )
            generator = self._generators[key] = np.random.default_rng(sequence)
        return generator


# --------------------------------------------------------------------------- records
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
        What each latent defect did (`operations.DefectRecord`); empty without any.
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


# --------------------------------------------------------------------------- cohorts
class _CohortState:
    """Counts and due-day ledgers of one cohort segment, no object per installation.

    Attempt counts are arrays indexed by attempts made (0..max_attempts), so an
    installation's history is only the number of its attempts. ``index`` is the
    cohort's index: the cohort's row is the sum of its segments' rows. A segment's
    sub-populations (`operations.SegmentClass`: normal, hard, excluded) share its
    queue and ledgers: class k uses columns ``k * size + attempts made``, so
    they cost extra draws only when they have installations in a column.
    """

    def __init__(
        self,
        cohort: Cohort,
        segment: Segment,
        scenario: Scenario,
        streams: Streams,
        dates: ResolvedDates,
        ops: Operations,
        parameters: _Parameters | None = None,
        start: list[dict] | None = None,
    ):
        self.cohort = cohort
        self.segment = segment
        self.index = segment.cohort
        self.active = cohort.mode == "active"
        self.size = cohort.max_attempts + 1
        classes = segment.classes
        self.width = self.size * len(classes)  # columns: class x attempts made
        self.rates = [c.rates for c in classes]
        self.stressed_rates = [c.stressed_rates for c in classes]
        if parameters is not None:  # uncertain rates, drawn once for the cohort
            for k, c in enumerate(classes):
                drawn = parameters.rates.get(c.kind)
                if drawn is not None:
                    increase = cohort.volume_failures
                    self.rates[k] = drawn
                    self.stressed_rates[k] = (
                        drawn if increase is None else increase.increase.apply(drawn)
                    )
        owner = segment.owner
        self.outcome_rng = streams.get(owner, "outcomes")
        self.stall_rng = streams.get(owner, "stall_delay")
        self.stall_result_rng = streams.get(owner, "stall_result")
        self.retry_rng = streams.get(owner, "retry_delay")
        self.restore_rng = streams.get(owner, "restore_delay")
        stall, fix_forward = cohort.stall, cohort.fix_forward
        self.stall_pmf = cached_pmf(stall.resolves_after_days) if stall else None
        self.retry_pmf = (
            cached_pmf(cohort.rollback.retry_after_days) if cohort.rollback else None
        )
        self.restore_pmf = (
            cached_pmf(fix_forward.restored_after_days) if fix_forward else None
        )
        self.release_day = dates.stall_release_day(cohort)
        self.then_success = 1.0
        if cohort.stall is not None:
            self.then_success = (
                parameters.then_success
                if parameters is not None and parameters.then_success is not None
                else draw_probability(cohort.stall.then_success, None)
            )
        total = segment.installations
        self.total = total
        # {day > 0: installations of each class becoming eligible that day} (ramp
        # policy: gates, deferred shares); the rest are eligible from the start
        self.eligibility = {d: n for d, n in ops.eligibility(segment).items() if d > 0}
        self.pending_by_class = [
            sum(n[k] for n in self.eligibility.values()) for k in range(len(classes))
        ]
        self.fresh = [  # first attempts queued, by class
            c.installations - p for c, p in zip(classes, self.pending_by_class)
        ]
        self.pending = sum(self.pending_by_class)
        # operations (see migsim.sim.operations): all inert without their sections
        self.els = ops.desk
        self.defects = ops.defects_for(segment)
        kinds = [c.excluded for c in classes]
        self.excluded_class = next((k for k, e in enumerate(kinds) if e), None)
        self.excluded_up_front = "up_front" in kinds
        self.last_columns = [
            k * self.size + cohort.max_attempts for k in range(len(kinds))
        ]
        self.defect_columns = (  # columns a latent defect can hit (None: all)
            None
            if self.excluded_class is None
            else np.array(
                [
                    k != self.excluded_class
                    for k in range(len(kinds))
                    for _ in range(self.size)
                ]
            )
        )
        recovery = cohort.dumb if cohort.dumb and cohort.dumb.recovered_share else None
        self.recovered_share = recovery.recovered_share if recovery else 0.0
        self.recover_pmf = (
            cached_pmf(recovery.recovered_after_days) if recovery else None
        )
        if recovery:
            self.recovery_rng = streams.get(owner, "dumb_recovery")
            self.recovery_delay_rng = streams.get(owner, "recovery_delay")
        self.prepayment_share = cohort.prepayment_share or 0.0  # excluded: never dumb
        if self.prepayment_share:
            self.prepayment_rng = streams.get(owner, "prepayment")
        self.awaiting_recovery = self.awaiting_site_visit = self.prepayment_dumb = 0
        self.defect_hits = self.stressed_attempts = self.dumb_recoveries = 0
        self.excluded = 0  # abandoned of the excluded class
        # ready retries: deque of [due_day, counts by column], oldest first
        self.retries: deque[list] = deque()
        self.retry_queued = 0
        # due-day ledgers, rows = day: stalls by attempt number, rollbacks by
        # attempts made, restorations; the last row collects anything beyond
        longest = max(
            int(pmf[0][-1])
            for pmf in (
                self.stall_pmf,
                self.retry_pmf,
                self.restore_pmf,
                self.recover_pmf,
                _ONE_DAY,
            )
            if pmf is not None
        )
        if cohort.initial_state is not None:
            longest = max(longest, cohort.initial_state.longest_wait)
        rows = scenario.horizon_days + longest + 1
        self.stall_due = np.zeros((rows, self.width), dtype=np.int64)
        self.retry_due = np.zeros((rows, self.width), dtype=np.int64)
        self.restore_due = np.zeros(rows, dtype=np.int64)
        if recovery:
            self.recover_due = np.zeros((rows, self.width), dtype=np.int64)
        self.stalled = self.rolled_back = self.impaired = 0
        self.migrated = self.dumb = self.abandoned = 0
        if self.excluded_up_front:
            self._exclude_up_front()
        self.flows = dict.fromkeys(FLOWS, 0)
        if start is not None:
            self._start_from(start, streams.get(segment.owner, "initial_state"))

    def _exclude_up_front(self) -> None:
        """The excluded class is abandoned without an attempt (in ``excluded``)."""
        k = self.excluded_class
        self.abandoned += self.fresh[k]
        self.excluded += self.fresh[k]
        self.fresh[k] = 0

    # ---------------------------------------------------------------- mid-programme
    def _start_from(self, parts: list[dict], rng: np.random.Generator) -> None:
        """Take up a state given at the end of the day before day 0.

        ``parts`` holds one state per class of the segment (see `_split_state`),
        each an ``initial_state`` mapping. Groups keep their attempts made and
        due day (``days_until_due`` d is due on day d - 1). A bare count of an
        in-flight state has no detail: queued ones are first attempts; stalled,
        rolled-back and impaired ones made one attempt and their days until due
        are drawn from the residual of their delay (one multinomial from the
        segment's ``initial_state`` stream).
        """
        size = self.size
        self.pending_by_class = [part["pending"] for part in parts]
        self.pending = sum(self.pending_by_class)
        self.eligibility = _pending_schedule(self.eligibility, self.pending_by_class)
        self.migrated = sum(part["migrated"] for part in parts)
        self.dumb = sum(part["dumb"] for part in parts)
        for part in parts:
            for group in _groups(
                part.get("recovering", []), attempts_made=1, days_until_due=1
            ):
                if self.recover_pmf is None:
                    break  # no recovery in this scenario: they await a site visit
                due = min(group.days_until_due - 1, len(self.recover_due) - 1)
                self.recover_due[due, group.attempts_made] += group.count
                self.awaiting_recovery += group.count
        self.awaiting_site_visit = self.dumb - self.awaiting_recovery
        self.abandoned = sum(part["abandoned"] for part in parts)
        if self.excluded_class is not None:
            self.excluded = parts[self.excluded_class]["abandoned"]
        retries: dict[int, np.ndarray] = {}
        self.fresh = [0] * len(parts)
        for k, part in enumerate(parts):
            for group in _groups(part["queued"], attempts_made=0, days_until_due=0):
                if not group.attempts_made:
                    self.fresh[k] += group.count
                    continue
                row = retries.setdefault(
                    group.days_until_due - 1, np.zeros(self.width, dtype=np.int64)
                )
                row[k * size + group.attempts_made] += group.count
                self.retry_queued += group.count
        self.retries = deque([due, retries[due]] for due in sorted(retries))
        for k, part in enumerate(parts):
            base = k * size
            self.stalled += _count(part["stalled"])
            self._place(
                self.stall_due,
                part["stalled"],
                self.stall_pmf,
                rng,
                base,
                self.release_day,
            )
            self.rolled_back += _count(part["rolled_back"])
            self._place(self.retry_due, part["rolled_back"], self.retry_pmf, rng, base)
            self.impaired += _count(part["impaired"])
            restore = self.restore_due[:, None]  # restorations have no columns
            self._place(restore, part["impaired"], self.restore_pmf, rng, None)
        if self.excluded_up_front:
            self._exclude_up_front()

    def _place(self, ledger, groups, pmf, rng, base, not_before=None) -> None:
        if isinstance(groups, int):
            if not groups:
                return
            days, probs = residual_pmf(pmf)
            counts = rng.multinomial(groups, probs) if len(days) > 1 else [groups]
            groups = [
                {"count": int(n), "attempts_made": 1, "days_until_due": int(d)}
                for d, n in zip(days, counts, strict=True)
                if n
            ]
        for group in _groups(groups, attempts_made=1, days_until_due=1):
            if group.held:
                continue  # its ELS case comes back through the desk's queue
            due = group.days_until_due - 1
            if not_before is not None:
                due = max(due, not_before)
            column = 0 if base is None else base + group.attempts_made
            ledger[min(due, len(ledger) - 1), column] += group.count

    def export_state(self, day: int) -> dict:
        """The segment's state at the end of ``day``, as an ``initial_state`` mapping.

        In-flight states are listed by (attempts made, days until due), counting
        days from ``day``: a run started the next day from it continues this one.
        Classes are summed (a cohort of several parts is shared again on the way
        in, see `_split_state`).
        """
        size = self.size
        queued = [{"count": sum(self.fresh), "attempts_made": 0, "days_until_due": 0}]
        for due, counts in self.retries:
            by_made = np.zeros(size, dtype=np.int64)
            np.add.at(by_made, np.arange(self.width) % size, counts)
            queued += [
                {"count": int(n), "attempts_made": made, "days_until_due": due - day}
                for made, n in enumerate(by_made.tolist())
                if n
            ]

        def waiting(ledger: np.ndarray) -> list[dict]:
            rows = ledger[day + 1 :]
            folded = np.zeros((len(rows), size), dtype=np.int64)
            for column in np.flatnonzero(rows.any(axis=0)):
                folded[:, column % size] += rows[:, column]
            return [
                {
                    "count": int(folded[r, a]),
                    "attempts_made": int(a),
                    "days_until_due": int(r + 1),
                }
                for r, a in zip(*np.nonzero(folded), strict=True)
            ]

        recovering = waiting(self.recover_due) if self.recover_pmf is not None else []
        later = self.restore_due[day + 1 :]
        held_stalls = np.zeros(size, dtype=np.int64)
        held_impaired = 0
        for _raised, kind, _n, state, held in getattr(self.els, "queue", ()):
            if state is self and held is not None:
                if kind == "stall":
                    np.add.at(held_stalls, np.arange(self.width) % size, held)
                else:
                    held_impaired += int(held.sum())
        return {
            "pending": self.pending,
            "queued": [g for g in queued if g["count"]],
            "stalled": waiting(self.stall_due)
            + [
                {
                    "count": int(n),
                    "attempts_made": made,
                    "days_until_due": 1,
                    "held": True,
                }
                for made, n in enumerate(held_stalls.tolist())
                if n
            ],
            "rolled_back": waiting(self.retry_due),
            "impaired": [
                {"count": int(later[r]), "days_until_due": int(r + 1)}
                for r in np.flatnonzero(later)
            ]
            + (
                [{"count": held_impaired, "days_until_due": 1, "held": True}]
                if held_impaired
                else []
            ),
            "migrated": self.migrated,
            "dumb": self.dumb,
            "abandoned": self.abandoned,
            **({"recovering": recovering} if recovering else {}),
        }

    # ---------------------------------------------------------------- queries
    @property
    def queued(self) -> int:
        return sum(self.fresh) + self.retry_queued

    @property
    def resolved(self) -> int:
        """Migrated, dumb or abandoned (a dumb device awaiting remote recovery: not)."""
        return self.migrated + self.dumb + self.abandoned - self.awaiting_recovery

    @property
    def done(self) -> bool:
        return self.resolved == self.total

    def state_row(self) -> list[int]:
        return [
            self.pending,
            self.queued,
            self.stalled,
            self.rolled_back,
            self.impaired,
            self.migrated,
            self.dumb,
            self.abandoned,
        ]

    # ---------------------------------------------------------------- phases
    def resolve_stalls(self, day: int) -> None:
        if not self.stalled:
            return
        by_attempt = self.stall_due[day].tolist()  # Python ints: cheap to scan
        if not any(by_attempt):
            return
        failed = np.zeros(self.width, dtype=np.int64)
        n_completed = n_failed = 0
        for attempt, n in enumerate(by_attempt):
            if not n:
                continue
            # scalar draws: far cheaper than array broadcasting
            ok = int(self.stall_result_rng.binomial(n, self.then_success))
            n_completed += ok
            n_failed += n - ok
            failed[attempt] = n - ok
        self.stalled -= n_completed + n_failed
        self.migrated += n_completed
        self.flows["stall_completions"] += n_completed
        self.flows["stall_failures"] += n_failed
        if n_failed:
            self._fail(failed, day)

    def release(self, day: int) -> None:
        """Retries due today rejoin the queue; restorations; eligibility."""
        if self.rolled_back:
            by_attempts = self.retry_due[day].tolist()  # sums of tiny arrays: lists
            n_due = sum(by_attempts)
            if n_due:
                self.rolled_back -= n_due
                self.retry_queued += n_due
                self.retries.append([day, by_attempts])
        if self.impaired:
            restored = int(self.restore_due[day])
            if restored:
                self.impaired -= restored
                self.migrated += restored
                self.flows["restorations"] += restored
        if self.recover_pmf is not None and self.awaiting_recovery:
            recovered = self.recover_due[day]
            n_recovered = int(recovered.sum())
            if n_recovered:  # back to rolled_back, retried like a rollback
                self.dumb -= n_recovered
                self.awaiting_recovery -= n_recovered
                self.dumb_recoveries += n_recovered
                self._fail(recovered.copy(), day)
        if self.pending and day in self.eligibility:
            counts = self.eligibility[day]
            self.fresh = [f + n for f, n in zip(self.fresh, counts)]
            self.pending_by_class = [
                p - n for p, n in zip(self.pending_by_class, counts, strict=True)
            ]
            self.pending -= sum(counts)
            if self.excluded_up_front:
                self._exclude_up_front()

    def take(self, count: int) -> np.ndarray:
        """Remove ``count`` from the queue; return them by attempt number.

        Due retries go first, oldest due first (within one due day, those with
        more attempts made first, then by class), then first attempts, shared
        between classes in proportion to their first-attempt queues.
        """
        size = self.size
        batch = np.zeros(self.width, dtype=np.int64)
        while count and self.retries:
            counts = self.retries[0][1]  # a list of Python ints
            for made in range(size - 1, 0, -1):
                for column in range(made, self.width, size):
                    if not count:
                        break
                    moved = min(count, counts[column])
                    if moved:
                        counts[column] -= moved
                        batch[column + 1] += moved
                        count -= moved
                        self.retry_queued -= moved
            if not any(counts):
                self.retries.popleft()
        fresh = self.fresh
        if len(fresh) == 1:
            moved = min(count, fresh[0])
            fresh[0] -= moved
            batch[1] += moved
        elif count:
            for k, moved in enumerate(share_pro_rata(count, fresh, fresh)):
                fresh[k] -= moved
                batch[k * size + 1] += moved
        return batch

    def attempt(self, batch: np.ndarray, day: int, stressed: bool = False) -> None:
        """Draw the batch's first-level outcomes and schedule what follows.

        Live latent defects first take their hits out of the batch; ``stressed``
        draws the rest at the volume-stressed rates.
        """
        n = sum(batch.tolist())  # Python ints: numpy reductions of tiny arrays are slow
        if not n:
            return
        rates = self.rates
        if stressed:
            rates = self.stressed_rates
            self.stressed_attempts += n
        hit = None
        if self.defects:
            batch, hit = hit_by_defects(self.defects, batch, day, self.defect_columns)
        by_outcome = np.zeros((len(OUTCOMES), self.width), dtype=np.int64)
        size = self.size
        for attempt, count in enumerate(batch.tolist()):  # class: attempt // size
            if count:
                by_outcome[:, attempt] = self.outcome_rng.multinomial(
                    count, rates[attempt // size]
                )
        if hit is not None:
            by_outcome += hit
            self.defect_hits += int(hit.sum())
        success, stall, rollback, fix_forward, dumb = by_outcome.sum(axis=1).tolist()
        flows = self.flows
        flows["attempts"] += n
        flows["successes"] += success
        flows["stalls"] += stall
        flows["rollbacks"] += rollback
        flows["fix_forwards"] += fix_forward
        flows["dumbs"] += dumb
        self.migrated += success
        if dumb:
            self._dumb(by_outcome[4], day)
        if stall:
            self._stall(by_outcome[1], day)
        if rollback:
            self.els.raise_cases(day, "rollback", rollback, self)
            self._fail(by_outcome[2], day)
        if fix_forward:
            self.impaired += fix_forward
            if not self.els.raise_cases(
                day, "fix_forward", fix_forward, self, by_outcome[3]
            ):
                self._restore(fix_forward, day, day)

    def _restore(self, count: int, raised_day: int, not_before: int) -> None:
        """Schedule restoring ``count`` fix forwards raised on ``raised_day``."""
        days, probs = self.restore_pmf
        if len(days) == 1 and not_before <= raised_day + int(days[0]):
            self.restore_due[raised_day + int(days[0])] += count  # a fixed delay
            return
        counts = (
            self.restore_rng.multinomial(count, probs) if len(days) > 1 else [count]
        )
        due = raised_day + days
        if not_before > due[0]:  # worked late by ELS: not before that day
            np.add.at(self.restore_due, np.maximum(due, not_before), counts)
        else:
            self.restore_due[due] += counts

    def _stall(self, by_attempt: np.ndarray, day: int) -> None:
        n = sum(by_attempt.tolist())
        self.stalled += n
        if self.els.raise_cases(day, "stall", n, self, by_attempt):
            return  # scheduled when ELS works the case (`worked`)
        _schedule(
            self.stall_due,
            self.stall_rng,
            by_attempt,
            self.stall_pmf,
            day,
            self.release_day,
        )

    def _dumb(self, by_attempt: np.ndarray, day: int) -> None:
        """Dumb devices: a share recovered remotely later; the rest await a visit."""
        n = int(by_attempt.sum())
        self.dumb += n
        self.els.raise_cases(day, "dumb", n, self)
        left = n
        if self.recover_pmf is not None:
            recovered = np.zeros(self.width, dtype=np.int64)
            for attempt in np.flatnonzero(by_attempt):
                recovered[attempt] = self.recovery_rng.binomial(
                    int(by_attempt[attempt]), self.recovered_share
                )
            n_recovered = int(recovered.sum())
            if n_recovered:
                self.awaiting_recovery += n_recovered
                _schedule(
                    self.recover_due,
                    self.recovery_delay_rng,
                    recovered,
                    self.recover_pmf,
                    day,
                )
                left -= n_recovered
        self.awaiting_site_visit += left
        if self.prepayment_share and left:
            self.prepayment_dumb += int(
                self.prepayment_rng.binomial(left, self.prepayment_share)
            )

    def worked(
        self, kind: str, raised_day: int, by_attempt: np.ndarray, day: int
    ) -> None:
        """ELS worked these cases today: resolve on the later of delay end and today."""
        if kind == "stall":
            floor = day if self.release_day is None else max(day, self.release_day)
            if raised_day + int(self.stall_pmf[0][0]) >= floor:
                floor = None  # no delay ends before it: the plain (faster) path
            _schedule(
                self.stall_due,
                self.stall_rng,
                by_attempt,
                self.stall_pmf,
                raised_day,
                floor,
            )
        else:
            self._restore(int(by_attempt.sum()), raised_day, day)

    def _fail(self, by_attempt: np.ndarray, day: int) -> None:
        """Failed attempts (rollbacks, failed stalls): abandon the last, retry the rest."""
        lasts = self.last_columns
        values = by_attempt.tolist()
        abandoned = sum(values[i] for i in lasts)
        if abandoned:
            self.abandoned += abandoned
            self.flows["abandons"] += abandoned
            if self.excluded_class is not None:
                self.excluded += int(by_attempt[lasts[self.excluded_class]])
            by_attempt = by_attempt.copy()
            by_attempt[lasts] = 0
        waiting = sum(by_attempt.tolist()) if abandoned else sum(values)
        if not waiting:
            return
        self.rolled_back += waiting
        _schedule(self.retry_due, self.retry_rng, by_attempt, self.retry_pmf, day)

    def end_of_day(self) -> tuple[list[int], list[int]]:
        flows = [self.flows[name] for name in FLOWS]
        self.flows = dict.fromkeys(FLOWS, 0)
        return self.state_row(), flows

    def operations_row(self) -> dict[str, int]:
        """Sub-counts and the day's operations flows (which are then reset)."""
        row = {
            "awaiting_site_visit": self.awaiting_site_visit,
            "prepayment_dumb": self.prepayment_dumb,
            "excluded": self.excluded,
            "defect_hits": self.defect_hits,
            "stressed_attempts": self.stressed_attempts,
            "dumb_recoveries": self.dumb_recoveries,
        }
        self.defect_hits = self.stressed_attempts = self.dumb_recoveries = 0
        return row


@dataclass(frozen=True)
class _Parameters:
    """A cohort's uncertain parameters, drawn once per replication for all its
    segments: outcome rates by class kind (``normal``, ``hard``) and
    ``then_success``; ``None`` where the scenario states them as known."""

    rates: dict[str, np.ndarray]
    then_success: float | None


def _draw_parameters(cohort: Cohort, streams: Streams) -> _Parameters | None:
    """Draw a cohort's uncertain rates (Dirichlet, Beta) from its own streams.

    ``parameters`` (outcome rates), ``hard_parameters`` (the hard cases' rates)
    and ``stall_parameters`` (``then_success``); a cohort with known rates draws
    nothing and gets ``None``.
    """
    rates: dict[str, np.ndarray] = {}
    if isinstance(cohort.outcomes, DirichletOutcomes):
        rates["normal"] = cohort.outcomes.as_array(
            streams.get(cohort.name, "parameters")
        )
    hard = cohort.hard.outcomes if cohort.hard is not None else None
    if isinstance(hard, DirichletOutcomes):
        rates["hard"] = hard.as_array(streams.get(cohort.name, "hard_parameters"))
    then = cohort.stall.then_success if cohort.stall is not None else None
    drawn = None
    if isinstance(then, BetaProbability):
        drawn = then.draw(streams.get(cohort.name, "stall_parameters"))
    if not rates and drawn is None:
        return None
    return _Parameters(rates, drawn)


@dataclass(frozen=True)
class _Group:
    count: int
    attempts_made: int
    days_until_due: int
    held: bool = False  # held by an ELS desk (see `ElsCase`): not in a ledger


def _groups(value, **defaults: int) -> list[_Group]:
    """A state's groups (models or mappings), or a bare count as one group."""
    if isinstance(value, int):
        return [_Group(value, defaults["attempts_made"], defaults["days_until_due"])]
    out = []
    for group in value:
        get = (
            group.get
            if isinstance(group, dict)
            else (lambda k, d=None, g=group: getattr(g, k, d))
        )
        out.append(
            _Group(
                int(get("count")),
                int(get("attempts_made", defaults["attempts_made"])),
                int(get("days_until_due", defaults["days_until_due"])),
                bool(get("held", False)),
            )
        )
    return out


def _count(value) -> int:
    return (
        value
        if isinstance(value, int)
        else sum(g.count for g in _groups(value, attempts_made=0, days_until_due=0))
    )


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


def _split_state(state: InitialState, sizes: list[int]) -> list[dict]:
    """Share a cohort's initial state between its parts (segment x class).

    One part: the state as it is. Several (suppliers, hard cases, exclusions):
    every count and every group is shared in proportion to the parts'
    installations (largest remainder), then each part's queued first attempts
    take up the rounding so its states sum to its installations. An
    approximation: the state does not say which part an installation is in.
    """
    plain = {name: getattr(state, name) for name in _PARTITION}
    if len(sizes) == 1:
        return [{**plain, "recovering": state.recovering}]
    parts: list[dict] = [{} for _ in sizes]
    for name, value in plain.items():
        if isinstance(value, int):
            for part, n in zip(parts, largest_remainder(value, sizes), strict=True):
                part[name] = n
            continue
        for part in parts:
            part[name] = []
        for group in _groups(value, attempts_made=0, days_until_due=0):
            shares = (  # held cases come back to the cohort's first part
                [group.count] + [0] * (len(sizes) - 1)
                if group.held
                else largest_remainder(group.count, sizes)
            )
            for part, n in zip(parts, shares, strict=True):
                if n:
                    part[name].append(
                        {
                            "count": n,
                            "attempts_made": group.attempts_made,
                            "days_until_due": group.days_until_due,
                            "held": group.held,
                        }
                    )
    recovering = _groups(state.recovering, attempts_made=1, days_until_due=1)
    for group in recovering:
        for part, n in zip(parts, largest_remainder(group.count, sizes), strict=True):
            room = part["dumb"] - _count(part.get("recovering", []))
            if min(n, room) > 0:
                part.setdefault("recovering", []).append(
                    {
                        "count": min(n, room),
                        "attempts_made": group.attempts_made,
                        "days_until_due": group.days_until_due,
                    }
                )
    for part, size in zip(parts, sizes, strict=True):
        gap = size - sum(_count(part[name]) for name in _PARTITION)
        if isinstance(part["queued"], int):  # a bare count: first attempts
            part["queued"] = [
                {"count": part["queued"], "attempts_made": 0, "days_until_due": 0}
            ]
        queued = part["queued"]
        fresh = sum(g["count"] for g in queued if not g["attempts_made"])
        queued[:] = [g for g in queued if g["attempts_made"]]
        fresh += gap  # first attempts take up the rounding...
        if fresh < 0:  # ...and pending what they cannot
            part["pending"] = max(0, part["pending"] + fresh)
            fresh = 0
        if fresh:
            queued.insert(0, {"count": fresh, "attempts_made": 0, "days_until_due": 0})
    return parts


def _pending_schedule(
    eligibility: dict[int, list[int]], pending: list[int]
) -> dict[int, list[int]]:
    """When the pending installations of a mid-programme state become eligible.

    Per class, the scenario's eligibility days after the start, latest first,
    take up the pending count (what became eligible earlier already left
    ``pending``); any pending left over (eligible on or before the start) is
    released on day 0.
    """
    out: dict[int, list[int]] = {}
    for k, left in enumerate(pending):
        for day in sorted(eligibility, reverse=True):
            take = min(left, eligibility[day][k])
            if take:
                out.setdefault(day, [0] * len(pending))[k] += take
                left -= take
        if left:
            out.setdefault(0, [0] * len(pending))[k] += left
    return out


def residual_pmf(pmf: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Days still to wait of something in flight, when only the count is known.

    Under a steady inflow, an item seen in flight has r more days to wait with
    probability proportional to P(D >= r), r = 1 .. the longest delay (the
    residual, or equilibrium, distribution of the delay D).
    """
    days, probs = pmf
    last = int(days[-1])
    mass = np.zeros(last + 1)
    mass[days] = probs
    survival = mass[::-1].cumsum()[::-1][1:]  # P(D >= r) for r = 1 .. last
    return np.arange(1, last + 1), survival / survival.sum()


def _needed(total: int, share: float) -> int:
    """Resolved installations needed to count as cleared (guarding float noise)."""
    return min(total, int(np.ceil(share * total - 1e-9)))


_ONE_DAY = (np.array([1]), np.array([1.0]))


def _schedule(
    ledger: np.ndarray,
    rng: np.random.Generator,
    by_attempt: np.ndarray,
    pmf: tuple[np.ndarray, np.ndarray],
    day: int,
    not_before: int | None = None,
) -> None:
    """Add counts (kept by attempt number) to a due-day ledger with drawn delays.

    One multinomial per attempt-number group over the delay's day distribution
    (scalar draws per group: numpy's array-broadcast path costs ~6x more):
    cost grows with the number of distinct delays, not with the count.
    ``not_before`` holds every due day at or after that day (a common cause).
    """
    days, probs = pmf
    if len(days) == 1 and not_before is None:
        ledger[day + int(days[0])] += by_attempt
        return
    first, last = int(days[0]), int(days[-1])
    if not_before is None and last - first + 1 == len(days):  # consecutive days
        # the ledger has rows up to the horizon + the longest delay; a slice
        # view is much cheaper to add to than fancy indexing
        rows = ledger[day + first : day + last + 1]
        for attempt, n in enumerate(by_attempt.tolist()):
            if n:
                rows[:, attempt] += rng.multinomial(n, probs)
        return
    due = day + days
    if not_before is not None:
        due = np.minimum(np.maximum(due, not_before), len(ledger) - 1)
    if len(days) == 1:
        ledger[due[0]] += by_attempt
        return
    for attempt, n in enumerate(by_attempt.tolist()):
        if not n:
            continue
        counts = rng.multinomial(n, probs)
        if not_before is None:
            ledger[due, attempt] += counts
        else:  # due days may coincide after the floor
            np.add.at(ledger[:, attempt], due, counts)


# --------------------------------------------------------------------------- model
class _Model:
    """The replication's world: cohort states, the calendar and the recorders."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, streams: Streams):
        self.env = env
        scenario = point_values(scenario)  # uncertainty: point fixes the inputs
        self.given, self.streams = scenario, streams
        scenario = resolve_inputs(scenario, streams)  # this replication's sizes
        self.scenario = scenario
        self.dates = resolve_dates(scenario, streams)
        n_days, n_cohorts = scenario.horizon_days, len(scenario.cohorts)
        self.states = np.zeros((n_days, n_cohorts, len(STATES)), dtype=np.int64)
        self.flows = np.zeros((n_days, n_cohorts, len(FLOWS)), dtype=np.int64)
        # the ELS case backlog: written by operations, read by rule metrics
        els_backlog = np.zeros(n_days, dtype=np.int64) if scenario.els else None
        self.policy = Policy(
            scenario,
            streams,
            self.dates,
            self.flows,
            self.states,
            FLOWS,
            STATES,
            els_backlog=els_backlog,
        )
        self.ops = Operations(
            scenario, streams, self.policy.working, self.dates, els_backlog
        )
        parameters = [_draw_parameters(c, streams) for c in scenario.cohorts]
        self.parameters = parameters
        starts = _part_states(scenario, self.ops.segments)
        self.cohorts = [  # one state per segment (per cohort without operations)
            _CohortState(
                scenario.cohorts[s.cohort],
                s,
                scenario,
                streams,
                self.dates,
                self.ops,
                parameters[s.cohort],
                starts[j],
            )
            for j, s in enumerate(self.ops.segments)
        ]
        start = scenario.operations_state
        if start is not None and start.els_queue:
            self._reopen_cases(start.els_queue)
        self.need = _needed(scenario.installations, scenario.clearance_share)
        self.cohort_need = [
            _needed(c.installations, scenario.clearance_share) for c in scenario.cohorts
        ]
        self.member = np.zeros((n_cohorts, len(self.cohorts)), dtype=np.int64)
        for j, cohort in enumerate(self.cohorts):
            self.member[cohort.index, j] = 1  # cohort x segment
        self.clearance_day: int | None = None
        self.cohort_clearance: list[int | None] = [None] * n_cohorts
        env.process(self._days())

    def _days(self):
        for day in range(self.scenario.horizon_days):
            self._step(day)
            if all(c.done for c in self.cohorts) and self.ops.quiet():  # all resolved
                self._fill_from(day + 1)
                return
            yield self.env.timeout(1)

    def _step(self, day: int) -> None:
        self.ops.start_of_day(day)
        for cohort in self.cohorts:
            cohort.resolve_stalls(day)
        for cohort in self.cohorts:
            cohort.release(day)
        cap = self.policy.cap(day)
        if cap:
            self._attempts(day, cap)
        self._record(day)

    def _attempts(self, day: int, cap: int) -> None:
        queues = [c.queued for c in self.cohorts]
        shares = self.ops.allocate(day, cap, queues)
        stressed = self.ops.stressed(day, shares)
        for cohort, share, hot in zip(self.cohorts, shares, stressed):
            if share:
                cohort.attempt(cohort.take(share), day, hot)

    def _record(self, day: int) -> None:
        rows = [cohort.end_of_day() for cohort in self.cohorts]
        # a cohort's row is the sum of its segments' rows
        self.states[day] = self.member @ np.array([state for state, _ in rows])
        self.flows[day] = self.member @ np.array([flow for _, flow in rows])
        self.ops.record(day, self.cohorts, self.states[day], self.flows[day])
        resolved = self.member @ np.array([cohort.resolved for cohort in self.cohorts])
        for i, (done, need) in enumerate(zip(resolved.tolist(), self.cohort_need)):
            if self.cohort_clearance[i] is None and done >= need:
                self.cohort_clearance[i] = day
        if self.clearance_day is None and int(resolved.sum()) >= self.need:
            self.clearance_day = day

    def _fill_from(self, day: int) -> None:
        """Nothing is left in flight: later days repeat the final state, no flows."""
        if day < self.scenario.horizon_days:
            self.states[day:] = self.states[day - 1]
            self.ops.fill_from(day, self.cohorts)

    def _reopen_cases(self, cases) -> None:
        """Put a mid-programme start's open ELS cases back on the desk, in order.

        Each goes to its cohort's first segment; held installations are placed in
        that segment's class-0 columns by attempts made (an approximation for a
        cohort of several parts).
        """
        desk = self.ops.desk
        first = {}
        for segment in self.cohorts:
            first.setdefault(segment.cohort.name, segment)
        for case in cases:
            if not hasattr(desk, "queue") or case.cohort not in first:
                continue
            state = first[case.cohort]
            held = None
            if case.kind in ("stall", "fix_forward"):
                held = np.zeros(state.width, dtype=np.int64)
                for made, n in case.attempts.items():
                    held[min(int(made), state.size - 1)] += n
            desk.queue.append([case.raised - 1, case.kind, case.count, state, held])
            desk.open += case.count
            desk.open_by_cohort[state.index] += case.count

    def _open_cases(self, day: int) -> list[dict]:
        """The ELS desk's open cases at the end of ``day``, oldest first."""
        out = []
        for raised, kind, count, state, held in getattr(self.ops.desk, "queue", ()):
            attempts: dict[int, int] = {}
            if held is not None:
                folded = np.zeros(state.size, dtype=np.int64)
                np.add.at(folded, np.arange(state.width) % state.size, held)
                attempts = {m: int(n) for m, n in enumerate(folded.tolist()) if n}
            out.append(
                {
                    "cohort": state.cohort.name,
                    "kind": kind,
                    "count": int(count),
                    "raised": raised - day,
                    "attempts": attempts,
                }
            )
        return out

    def export_state(self, day: int) -> dict:
        """Every cohort's state at the end of ``day`` (see `state_after`)."""
        cohorts: dict[str, dict] = {}
        for segment in self.cohorts:
            part = segment.export_state(day)
            name = segment.cohort.name
            cohorts[name] = (
                part if name not in cohorts else _merge_states(cohorts[name], part)
            )
        return {
            "date": self.scenario.date_of(day),
            "cohorts": cohorts,
            "operations_state": {
                **self.policy.export_state(day),
                "els_queue": self._open_cases(day),
                "defects": self.ops.defect_state(day),
            },
        }

    def collect(self, replication: int) -> RunLog:
        columns = {name: self.states[:, :, j] for j, name in enumerate(STATES)}
        columns.update({name: self.flows[:, :, j] for j, name in enumerate(FLOWS)})
        policy = self.policy.day_columns()
        extra_cohort, extra_day = self.ops.columns(policy["daily_cap"])
        columns.update(extra_cohort)
        return RunLog(
            replication=replication,
            cohort_columns=columns,
            day_columns={**policy, **extra_day},
            clearance_day=self.clearance_day,
            cohort_clearance_days=list(self.cohort_clearance),
            gate_days=dict(self.dates.gate_days),
            defects=self.ops.defect_records(),
            inputs=record_inputs(
                self.given,
                self.scenario,
                self.streams,
                self.dates,
                self.parameters,
                self.ops.achieved_mean,
            ),
        )


def _part_states(scenario: Scenario, segments) -> list[list[dict] | None]:
    """Each segment's share of its cohort's ``initial_state``, by class."""
    out: list[list[dict] | None] = [None] * len(segments)
    for c, cohort in enumerate(scenario.cohorts):
        if cohort.initial_state is None:
            continue
        mine = [j for j, s in enumerate(segments) if s.cohort == c]
        sizes = [k.installations for j in mine for k in segments[j].classes]
        parts = iter(_split_state(cohort.initial_state, sizes))
        for j in mine:
            out[j] = [next(parts) for _ in segments[j].classes]
    return out


def _merge_states(a: dict, b: dict) -> dict:
    """Two parts' exported states as one: counts added, groups merged."""
    out = {}
    for name in (*_PARTITION, "recovering"):
        if name not in a and name not in b:
            continue
        a.setdefault(name, [])
        b.setdefault(name, [])
        if isinstance(a[name], int):
            out[name] = a[name] + b[name]
            continue
        merged: dict[tuple, int] = {}
        for group in [*a[name], *b[name]]:
            key = (
                group.get("attempts_made"),
                group["days_until_due"],
                bool(group.get("held", False)),
            )
            merged[key] = merged.get(key, 0) + group["count"]
        out[name] = [
            {
                "count": n,
                **({"attempts_made": m} if m is not None else {}),
                "days_until_due": d,
                **({"held": True} if held else {}),
            }
            for (m, d, held), n in sorted(
                merged.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0] or 0)
            )
        ]
    return out


def run_replication(
    scenario: Scenario, seed: int, replication: int, twin: int = 0
) -> RunLog:
    """Simulate replication ``replication`` of ``scenario`` under run seed ``seed``.

    Replication k draws only from streams derived from ``(seed, k)``, so it gives
    the same numbers whatever the worker count or which other replications run.
    ``twin`` >= 1 simulates a twin of it: the same input draws, fresh day-to-day
    randomness (`migsim.sim.inputs.TwinStreams`).
    """
    env = simpy.Environment()
    streams = (
        TwinStreams(seed, replication, twin) if twin else Streams(seed, replication)
    )
    model = _Model(env, scenario, streams)
    env.run(until=scenario.horizon_days)
    return model.collect(replication)


def state_after(scenario: Scenario, seed: int, replication: int, day: int) -> dict:
    """The state at the end of ``day`` of replication ``replication``.

    The replication is simulated again up to that day (it draws the same numbers),
    and its state exported as ``{"date", "cohorts": {name: initial_state},
    "operations_state"}``: the partition, with queued retries, stalls, rollbacks
    and restorations by (attempts made, days until due), and the ramp policy's
    state (`Policy.export_state`). `Scenario.starting_from` turns it into a
    scenario that continues the run from the next day.
    """
    if not 0 <= day < scenario.horizon_days:
        raise ValueError(
            f"day {day} is outside the horizon (0..{scenario.horizon_days - 1})"
        )
    env = simpy.Environment()
    model = _Model(env, scenario, Streams(seed, replication))
    env.run(until=day + 1)
    return model.export_state(day)
