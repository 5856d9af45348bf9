"""Engine: one replication of a scenario, simulated at batch level on SimPy.

Why batches: the SMETS1 fleet is millions of installations, so the engine never
spends a process (or even a Python object) per installation. Each working day
each cohort attempts one *batch*; its first-level outcomes are one multinomial
draw; the delays of a group (stall resolution, rollback retry, fix-forward
restoration) are one multinomial over the delay's day distribution, kept in
ledgers keyed by due day. Cost grows with days x cohorts x distinct delays.

The day (a SimPy process ticking once per calendar day) runs in this order:

1. stall resolutions due today (completion or failure -> rollback/abandon);
2. retries rejoining the queue, restorations, cohorts becoming eligible;
3. the day's cap comes from the ramp policy (`migsim.policy`: calendar,
   schedule, rules, go/no-go; 0 on a day without migrations); the cap is shared
   between cohorts and each cohort's batch is attempted;
4. the end-of-day state of every cohort is recorded.

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

from migsim.policy import Policy, ResolvedDates, resolve_dates, working_days
from migsim.scenario import OUTCOMES, Cohort, Scenario

__all__ = [
    "FLOWS",
    "STATES",
    "Outcome",
    "RunLog",
    "Streams",
    "replication_seed",
    "run_replication",
    "share_pro_rata",
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


# --------------------------------------------------------------------------- sharing
def share_pro_rata(total: int, weights: list[int], limits: list[int]) -> list[int]:
    """Share ``total`` units in proportion to ``weights``, never above ``limits``.

    Each gets floor(total * w / sum(w)); the remainder goes one unit at a time by
    largest fractional part (ties in list order). A share above its limit is
    capped and the surplus re-shared the same way among the others (water-filling).
    """
    shares = [0] * len(weights)
    open_ = [i for i, (w, lim) in enumerate(zip(weights, limits)) if w > 0 and lim > 0]
    remaining = total
    while remaining > 0 and open_:
        weight_sum = sum(weights[i] for i in open_)
        base = {i: remaining * weights[i] // weight_sum for i in open_}
        left = remaining - sum(base.values())
        by_fraction = sorted(open_, key=lambda i: (-(remaining * weights[i] % weight_sum), i))
        for i in by_fraction[:left]:
            base[i] += 1
        capped = [i for i in open_ if shares[i] + base[i] >= limits[i]]
        if not capped:
            for i in open_:
                shares[i] += base[i]
            return shares
        for i in capped:
            remaining -= limits[i] - shares[i]
            shares[i] = limits[i]
        open_ = [i for i in open_ if i not in capped]
    return shares


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
        policy's ``daily_cap``, ``cap_rule``, ``no_go`` and ``rule_fired``.
    clearance_day, cohort_clearance_days
        First end of day at which the scenario (each cohort) counts as cleared;
        ``None`` when not within the horizon.
    """

    replication: int
    cohort_columns: dict[str, np.ndarray]
    day_columns: dict[str, np.ndarray] = field(default_factory=dict)
    clearance_day: int | None = None
    cohort_clearance_days: list[int | None] = field(default_factory=list)
    gate_days: dict[str, int | None] = field(default_factory=dict)  # None: never


# --------------------------------------------------------------------------- cohorts
class _CohortState:
    """Counts and due-day ledgers of one cohort; never one object per installation.

    Attempt counts are arrays indexed by attempts made (0..max_attempts), so an
    installation's history is only the number of its attempts.
    """

    def __init__(
        self,
        cohort: Cohort,
        index: int,
        scenario: Scenario,
        streams: Streams,
        dates: ResolvedDates,
    ):
        self.cohort = cohort
        self.index = index
        self.active = cohort.mode == "active"
        self.size = cohort.max_attempts + 1
        self.rates = cohort.outcomes.as_array()
        # {day > 0: installations becoming eligible that day} (ramp policy: gates,
        # deferred shares); the rest are eligible from the start
        self.eligibility = {d: n for d, n in dates.eligibility(cohort).items() if d > 0}
        self.outcome_rng = streams.get(cohort.name, "outcomes")
        self.stall_rng = streams.get(cohort.name, "stall_delay")
        self.stall_result_rng = streams.get(cohort.name, "stall_result")
        self.retry_rng = streams.get(cohort.name, "retry_delay")
        self.restore_rng = streams.get(cohort.name, "restore_delay")
        self.stall_pmf = cohort.stall.resolves_after_days.pmf() if cohort.stall else None
        self.retry_pmf = (
            cohort.rollback.retry_after_days.pmf() if cohort.rollback else None
        )
        self.restore_pmf = (
            cohort.fix_forward.restored_after_days.pmf() if cohort.fix_forward else None
        )
        self.release_day = dates.stall_release_day(cohort)
        self.then_success = cohort.stall.then_success if cohort.stall else 1.0
        total = cohort.installations
        self.need = _needed(total, scenario.clearance_share)
        self.pending = sum(self.eligibility.values())
        self.fresh = total - self.pending
        # ready retries: deque of [due_day, counts by attempts made], oldest first
        self.retries: deque[list] = deque()
        self.retry_queued = 0
        # due-day ledgers, rows = day: stalls by attempt number, rollbacks by
        # attempts made, restorations; the last row collects anything beyond
        longest = max(
            int(pmf[0][-1])
            for pmf in (self.stall_pmf, self.retry_pmf, self.restore_pmf, _ONE_DAY)
            if pmf is not None
        )
        rows = scenario.horizon_days + longest + 1
        self.stall_due = np.zeros((rows, self.size), dtype=np.int64)
        self.retry_due = np.zeros((rows, self.size), dtype=np.int64)
        self.restore_due = np.zeros(rows, dtype=np.int64)
        self.stalled = self.rolled_back = self.impaired = 0
        self.migrated = self.dumb = self.abandoned = 0
        self.flows = dict.fromkeys(FLOWS, 0)

    # ---------------------------------------------------------------- queries
    @property
    def queued(self) -> int:
        return self.fresh + self.retry_queued

    @property
    def resolved(self) -> int:
        return self.migrated + self.dumb + self.abandoned

    @property
    def done(self) -> bool:
        return self.resolved == self.cohort.installations

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
        by_attempt = self.stall_due[day]
        groups = np.flatnonzero(by_attempt)
        if not len(groups):
            return
        failed = np.zeros(self.size, dtype=np.int64)
        n_completed = n_failed = 0
        for attempt in groups:  # scalar draws: far cheaper than array broadcasting
            n = int(by_attempt[attempt])
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
        by_attempts = self.retry_due[day]
        n_due = int(by_attempts.sum())
        if n_due:
            self.rolled_back -= n_due
            self.retry_queued += n_due
            self.retries.append([day, by_attempts.copy()])
        restored = int(self.restore_due[day])
        if restored:
            self.impaired -= restored
            self.migrated += restored
            self.flows["restorations"] += restored
        if self.pending and day in self.eligibility:
            self.fresh += self.eligibility[day]
            self.pending -= self.eligibility[day]

    def take(self, count: int) -> np.ndarray:
        """Remove ``count`` from the queue; return them by attempt number.

        Due retries go first, oldest due first (within one due day, those with
        more attempts made first), then first attempts.
        """
        batch = np.zeros(self.size, dtype=np.int64)
        while count and self.retries:
            counts = self.retries[0][1]
            for made in range(self.size - 1, 0, -1):
                if not count:
                    break
                moved = min(count, int(counts[made]))
                if moved:
                    counts[made] -= moved
                    batch[made + 1] += moved
                    count -= moved
                    self.retry_queued -= moved
            if not counts.any():
                self.retries.popleft()
        moved = min(count, self.fresh)
        self.fresh -= moved
        batch[1] += moved
        return batch

    def attempt(self, batch: np.ndarray, day: int) -> None:
        """Draw the batch's first-level outcomes and schedule what follows."""
        n = int(batch.sum())
        if not n:
            return
        groups = np.flatnonzero(batch)
        by_outcome = np.zeros((len(OUTCOMES), self.size), dtype=np.int64)
        for attempt in groups:
            by_outcome[:, attempt] = self.outcome_rng.multinomial(
                int(batch[attempt]), self.rates
            )
        success, stall, rollback, fix_forward, dumb = (
            int(x) for x in by_outcome.sum(axis=1)
        )
        flows = self.flows
        flows["attempts"] += n
        flows["successes"] += success
        flows["stalls"] += stall
        flows["rollbacks"] += rollback
        flows["fix_forwards"] += fix_forward
        flows["dumbs"] += dumb
        self.migrated += success
        self.dumb += dumb
        if stall:
            self._stall(by_outcome[1], day)
        if rollback:
            self._fail(by_outcome[2], day)
        if fix_forward:
            self.impaired += fix_forward
            days, probs = self.restore_pmf
            counts = (
                self.restore_rng.multinomial(fix_forward, probs)
                if len(days) > 1
                else [fix_forward]
            )
            self.restore_due[day + days] += counts

    def _stall(self, by_attempt: np.ndarray, day: int) -> None:
        self.stalled += int(by_attempt.sum())
        _schedule(
            self.stall_due, self.stall_rng, by_attempt, self.stall_pmf, day,
            self.release_day,
        )

    def _fail(self, by_attempt: np.ndarray, day: int) -> None:
        """Failed attempts (rollbacks, failed stalls): abandon the last, retry the rest."""
        last = self.cohort.max_attempts
        abandoned = int(by_attempt[last])
        if abandoned:
            self.abandoned += abandoned
            self.flows["abandons"] += abandoned
            by_attempt = by_attempt.copy()
            by_attempt[last] = 0
        waiting = int(by_attempt.sum())
        if not waiting:
            return
        self.rolled_back += waiting
        _schedule(self.retry_due, self.retry_rng, by_attempt, self.retry_pmf, day)

    def end_of_day(self) -> tuple[list[int], list[int]]:
        flows = [self.flows[name] for name in FLOWS]
        self.flows = dict.fromkeys(FLOWS, 0)
        return self.state_row(), flows


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
    due = day + days  # the ledger has rows up to the horizon + the longest delay
    if not_before is not None:
        due = np.minimum(np.maximum(due, not_before), len(ledger) - 1)
    if len(days) == 1:
        ledger[due[0]] += by_attempt
        return
    for attempt in np.flatnonzero(by_attempt):
        counts = rng.multinomial(int(by_attempt[attempt]), probs)
        if not_before is None:
            ledger[due, attempt] += counts
        else:  # due days may coincide after the floor
            np.add.at(ledger[:, attempt], due, counts)


# --------------------------------------------------------------------------- model
class _Model:
    """The replication's world: cohort states, the calendar and the recorders."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, streams: Streams):
        self.env = env
        self.scenario = scenario
        self.dates = resolve_dates(scenario, streams)
        self.cohorts = [
            _CohortState(c, i, scenario, streams, self.dates)
            for i, c in enumerate(scenario.cohorts)
        ]
        n_days, n_cohorts = scenario.horizon_days, len(self.cohorts)
        self.states = np.zeros((n_days, n_cohorts, len(STATES)), dtype=np.int64)
        self.flows = np.zeros((n_days, n_cohorts, len(FLOWS)), dtype=np.int64)
        self.policy = Policy(
            scenario, streams, self.dates, self.flows, self.states, FLOWS, STATES
        )
        self.need = _needed(scenario.installations, scenario.clearance_share)
        self.clearance_day: int | None = None
        self.cohort_clearance: list[int | None] = [None] * n_cohorts
        env.process(self._days())

    def _days(self):
        for day in range(self.scenario.horizon_days):
            self._step(day)
            if all(c.done for c in self.cohorts):  # nothing left in flight
                self._fill_from(day + 1)
                return
            yield self.env.timeout(1)

    def _step(self, day: int) -> None:
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
        if self.scenario.capacity.allocation == "priority":
            shares, left = [], cap
            for queued in queues:
                shares.append(min(queued, left))
                left -= shares[-1]
        else:
            shares = share_pro_rata(cap, queues, queues)
        for cohort, share in zip(self.cohorts, shares):
            if share:
                cohort.attempt(cohort.take(share), day)

    def _record(self, day: int) -> None:
        resolved = 0
        for i, cohort in enumerate(self.cohorts):
            state, flows = cohort.end_of_day()
            self.states[day, i] = state
            self.flows[day, i] = flows
            resolved += cohort.resolved
            if self.cohort_clearance[i] is None and cohort.resolved >= cohort.need:
                self.cohort_clearance[i] = day
        if self.clearance_day is None and resolved >= self.need:
            self.clearance_day = day

    def _fill_from(self, day: int) -> None:
        """Nothing is left in flight: later days repeat the final state, no flows."""
        if day < self.scenario.horizon_days:
            self.states[day:] = self.states[day - 1]

    def collect(self, replication: int) -> RunLog:
        columns = {name: self.states[:, :, j] for j, name in enumerate(STATES)}
        columns.update({name: self.flows[:, :, j] for j, name in enumerate(FLOWS)})
        return RunLog(
            replication=replication,
            cohort_columns=columns,
            day_columns=self.policy.day_columns(),
            clearance_day=self.clearance_day,
            cohort_clearance_days=list(self.cohort_clearance),
            gate_days=dict(self.dates.gate_days),
        )


def run_replication(scenario: Scenario, seed: int, replication: int) -> RunLog:
    """Simulate replication ``replication`` of ``scenario`` under run seed ``seed``.

    Replication k draws only from streams derived from ``(seed, k)``, so it gives
    the same numbers whatever the worker count or which other replications run.
    """
    env = simpy.Environment()
    model = _Model(env, scenario, Streams(seed, replication))
    env.run(until=scenario.horizon_days)
    return model.collect(replication)
