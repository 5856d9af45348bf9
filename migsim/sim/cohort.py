"""A cohort segment at run time: counts by attempts made and due-day ledgers.

The engine keeps no object per installation: a segment's queue is counts of
first attempts and of due retries, and each delay (stall, retry, restoration,
remote recovery) is a ledger of counts by due day and column (class x attempts
made). `CohortState` runs the day's phases on them: stalls resolve, retries and
restorations come due, a batch is taken from the queue and its outcomes drawn,
each attempt's from its own uniform (`draws`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from migsim.model.cohort import Cohort
from migsim.model.distributions import (
    draw_probability,
)
from migsim.model.scenario import Scenario
from migsim.sim.allocation import share_pro_rata
from migsim.sim.dates import ResolvedDates
from migsim.sim.defects import live_defects
from migsim.sim.delays import ONE_DAY, cached_pmf, residual_pmf, schedule
from migsim.sim.draws import AftermathKey, attempt_tables, draw_batch, draw_counts
from migsim.sim.initial_state import (
    count_of,
    export_parts,
    groups_of,
    pending_schedule,
)
from migsim.sim.inputs import Parameters
from migsim.sim.operations import Operations
from migsim.sim.records import FLOWS, STATES
from migsim.sim.segments import Segment
from migsim.sim.stalls import StallLedgers
from migsim.sim.streams import Categories, Streams

__all__ = ["CohortState"]


class CohortState:
    """Counts and due-day ledgers of one cohort segment, no object per installation.

    Attempt counts are arrays indexed by attempts made (0..max_attempts), so an
    installation's history is only the number of its attempts. ``index`` is the
    cohort's index: the cohort's row is the sum of its segments' rows. A segment's
    sub-populations (`segments.SegmentClass`: normal, hard, excluded) share its
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
        parameters: Parameters | None = None,
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
        # per-unit streams (`streams.UnitStreams`), by column: the k-th attempt a
        # column makes gets the k-th uniform, and that one uniform decides its
        # outcome and all that follows (`draws`), so changing the cap or the
        # rules moves when an installation is attempted, not what happens to it.
        # Draws made later than the attempt (stalls and fix forwards worked by
        # ELS, a recovered dumb device's retry, a mid-programme start's groups)
        # use streams of their own.
        owner = segment.owner
        units = streams.units
        self.outcome_units = units(owner, "outcomes")
        self.stall_units = units(owner, "stall_delay")
        self.stall_result_units = units(owner, "stall_result")
        self.recovery_retry_units = units(owner, "retry_delay:recovery")
        self.restore_units = units(owner, "restore_delay")
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
            c.installations - p
            for c, p in zip(classes, self.pending_by_class, strict=True)
        ]
        self.pending = sum(self.pending_by_class)
        # operations (see migsim.sim.operations): all inert without their sections
        self.els = ops.desk
        self.defects = ops.defects_for(segment)
        kinds = [c.excluded for c in classes]
        self.excluded_class = next((k for k, e in enumerate(kinds) if e), None)
        # the excluded class, when it is abandoned without an attempt
        self.up_front_class = self.excluded_class if "up_front" in kinds else None
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
        self.prepayment_share = cohort.prepayment_share or 0.0  # excluded: never dumb
        self._build_tables()
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
                ONE_DAY,
            )
            if pmf is not None
        )
        if cohort.initial_state is not None:
            longest = max(longest, cohort.initial_state.longest_wait)
        rows = scenario.horizon_days + longest + 1
        # stalls by due day, with their results and retry delays drawn ahead
        self.stalls = StallLedgers(
            rows,
            self.width,
            (self.stall_pmf or ONE_DAY)[0],
            self.retry_pmf[0] if self.retry_pmf else None,
            self.last_columns,
        )
        self.retry_due = np.zeros((rows, self.width), dtype=np.int64)
        self.restore_due = np.zeros(rows, dtype=np.int64)
        if recovery:
            self.recover_due = np.zeros((rows, self.width), dtype=np.int64)
        self.stalled = self.rolled_back = self.impaired = 0
        self.migrated = self.dumb = self.abandoned = 0
        self.flows = dict.fromkeys(FLOWS, 0)  # day 0's: exclusions up front first
        if start is not None:
            self._start_from(start, streams.get(segment.owner, "initial_state"))
        elif self.up_front_class is not None:
            self._exclude_up_front(self.up_front_class)

    def _build_tables(self) -> None:
        """Each class's `draws.AttemptTable` (outcomes joined with what follows,
        normal and volume-stressed), and the aftermath's parts read later."""

        def probs(pmf):
            return None if pmf is None else tuple(pmf[1].tolist())

        def rates(each):
            return tuple(tuple(np.asarray(r, dtype=float).tolist()) for r in each)

        after = AftermathKey(
            probs(self.stall_pmf),
            float(self.then_success),
            probs(self.retry_pmf),
            probs(self.restore_pmf),
            float(self.recovered_share),
            probs(self.recover_pmf),
            float(self.prepayment_share),
        )
        self.tables, aftermath = attempt_tables(rates(self.rates), after)
        self.stressed_tables = attempt_tables(rates(self.stressed_rates), after)[0]
        self.stall_shape = aftermath.stall.shape  # (delays, then)
        table = self.tables[0]
        self.stall_cells = table.given[1]  # stalls worked by ELS
        self.then_cells = Categories(aftermath.stall[0] / aftermath.stall[0].sum())
        self.retry_cells = table.given[2]
        self.restore_cells = table.given[3]
        self.recovered_cells = len(aftermath.dumb) - 2  # then: prepayment, not

    def _exclude_up_front(self, k: int) -> None:
        """Excluded class ``k`` is abandoned without an attempt (in ``excluded``),
        and counted in the day's ``abandons``: the level is the flow's running
        total, so actuals read from a run's flows see them abandoned too."""
        gone = self.fresh[k]
        self.abandoned += gone
        self.excluded += gone
        self.flows["abandons"] += gone
        self.fresh[k] = 0

    # ---------------------------------------------------------------- mid-programme
    def _start_from(self, parts: list[dict], rng: np.random.Generator) -> None:
        """Take up a state given at the end of the day before day 0.

        ``parts`` holds one state per class of the segment (see
        `initial_state.split_state`), each an ``initial_state`` mapping. Groups
        keep their attempts made and due day (``days_until_due`` d is due on day
        d - 1). A bare count of an in-flight state has no detail: queued ones
        are first attempts; stalled, rolled-back and impaired ones made one
        attempt and their days until due are drawn from the residual of their
        delay (one multinomial from the segment's ``initial_state`` stream).
        """
        size = self.size
        self.pending_by_class = [part["pending"] for part in parts]
        self.pending = sum(self.pending_by_class)
        self.eligibility = pending_schedule(self.eligibility, self.pending_by_class)
        self.migrated = sum(part["migrated"] for part in parts)
        self.dumb = sum(part["dumb"] for part in parts)
        for k, part in enumerate(parts):
            for group in groups_of(
                part.get("recovering", []), attempts_made=1, days_until_due=1
            ):
                if self.recover_pmf is None:
                    break  # no recovery in this scenario: they await a site visit
                due = min(group.days_until_due - 1, len(self.recover_due) - 1)
                self.recover_due[due, k * size + group.attempts_made] += group.count
                self.awaiting_recovery += group.count
        self.awaiting_site_visit = self.dumb - self.awaiting_recovery
        self.abandoned = sum(part["abandoned"] for part in parts)
        if self.excluded_class is not None:
            self.excluded = parts[self.excluded_class]["abandoned"]
        retries: dict[int, np.ndarray] = {}
        self.fresh = [0] * len(parts)
        for k, part in enumerate(parts):
            for group in groups_of(part["queued"], attempts_made=0, days_until_due=0):
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
            self.stalled += count_of(part["stalled"])
            self._place(
                self.stalls.cells[:, 0],  # (its rows: days, columns)
                part["stalled"],
                self.stall_pmf,
                rng,
                base,
                self.release_day,
                failing=True,
            )
            self.rolled_back += count_of(part["rolled_back"])
            self._place(self.retry_due, part["rolled_back"], self.retry_pmf, rng, base)
            self.impaired += count_of(part["impaired"])
            restore = self.restore_due[:, None]  # restorations have no columns
            self._place(restore, part["impaired"], self.restore_pmf, rng, None)
        if self.prepayment_share and self.awaiting_site_visit:
            # a state does not say which dumb devices are prepayment: each batch
            # awaiting a visit had a binomial share, so the whole has one too
            # (drawn last, so the groups' draws above are as before)
            self.prepayment_dumb = int(
                rng.binomial(self.awaiting_site_visit, self.prepayment_share)
            )
        if self.up_front_class is not None:
            self._exclude_up_front(self.up_front_class)

    def _place(
        self, ledger, groups, pmf, rng, base, not_before=None, failing=False
    ) -> None:
        """Put in-flight groups on a ledger (``failing``: stalls, which may fail)."""
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
        for group in groups_of(groups, attempts_made=1, days_until_due=1):
            if group.held:
                continue  # its ELS case comes back through the desk's queue
            due = group.days_until_due - 1
            if not_before is not None:
                due = max(due, not_before)
            column = 0 if base is None else base + group.attempts_made
            row = min(due, len(ledger) - 1)
            if failing:  # a stall: whether it fails is drawn now
                uniforms = self.stall_result_units.take(column, group.count)
                self.stalls.place(row, column, self.then_cells.counts(uniforms))
            else:
                ledger[row, column] += group.count

    def export_state(self, day: int) -> dict:
        """The segment's state at the end of ``day``, as an ``initial_state`` mapping.

        In-flight states are listed by (attempts made, days until due), counting
        days from ``day``: a run started the next day from it continues this one.
        Classes are summed (a cohort of several parts is shared again on the way
        in, see `initial_state.split_state`).
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

    def export_parts(self, day: int) -> list[dict]:
        """Each class's state at the end of ``day`` (`initial_state.export_parts`)."""
        return export_parts(self, day)

    # ---------------------------------------------------------------- queries
    @property
    def stall_due(self) -> np.ndarray:
        """Stalls due, by day and column (from the stall ledger; for exports)."""
        return self.stalls.due

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
        """The end-of-day row in `STATES` order: each state is the segment's
        attribute of that name."""
        return [getattr(self, name) for name in STATES]

    # ---------------------------------------------------------------- phases
    def resolve_stalls(self, day: int) -> None:
        if not self.stalled:
            return
        n_due, failed = self.stalls.resolve(day)  # results drawn when scheduled
        if not n_due:
            return
        n_failed = 0 if failed is None else sum(failed.tolist())
        n_completed = n_due - n_failed
        self.stalled -= n_due
        self.migrated += n_completed
        self.flows["stall_completions"] += n_completed
        self.flows["stall_failures"] += n_failed
        if failed is not None:
            self._fail_stalls(failed, day)

    def _fail_stalls(self, failed: np.ndarray, day: int) -> None:
        """Stalls failing today roll back with the retry delays drawn with them."""
        waiting = self._abandon(failed)
        if waiting:
            self.rolled_back += waiting
            self.stalls.retry_into(self.retry_due, day)

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
                retries = draw_counts(
                    self.recovery_retry_units, recovered, self.retry_cells
                )
                self._fail(recovered, day, retries)
        if self.pending and day in self.eligibility:
            counts = self.eligibility[day]
            self.fresh = [f + n for f, n in zip(self.fresh, counts, strict=True)]
            self.pending_by_class = [
                p - n for p, n in zip(self.pending_by_class, counts, strict=True)
            ]
            self.pending -= sum(counts)
            if self.up_front_class is not None:
                self._exclude_up_front(self.up_front_class)

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
        """Draw the batch's outcomes and schedule what follows, per attempt.

        Each attempt's outcome and aftermath come from its own uniform
        (`draws.draw_batch`); live latent defects first hit attempts and give
        them their outcome; ``stressed`` reads the rest at the volume-stressed
        rates.
        """
        n = sum(batch.tolist())  # Python ints: numpy reductions of tiny arrays are slow
        if not n:
            return
        tables = self.tables
        if stressed:
            tables = self.stressed_tables
            self.stressed_attempts += n
        live = live_defects(self.defects, batch, day, self.defect_columns)
        drawn = draw_batch(
            batch, self.outcome_units, tables, self.size, live, self.defect_columns
        )
        by_outcome = drawn.by_outcome
        self.defect_hits += drawn.hits
        success, stall, rollback, fix_forward, dumb = by_outcome.sum(axis=1).tolist()
        flows = self.flows
        flows["attempts"] += n
        flows["successes"] += success
        flows["stalls"] += stall
        flows["rollbacks"] += rollback
        flows["fix_forwards"] += fix_forward
        flows["dumbs"] += dumb
        self.migrated += success

        def cells(outcome: int) -> list[tuple[int, np.ndarray]]:
            """Per column, the counts of one outcome's cells."""
            return [
                (c, tables[c // self.size].block(counts, outcome))
                for c, counts in drawn.cells
                if by_outcome[outcome, c]
            ]

        if dumb:
            self._dumb(by_outcome[4], day, cells(4))
        if stall:
            _needed(self.stall_pmf, "stall")
            self.stalled += stall
            if not self.els.raise_cases(day, "stall", stall, self, by_outcome[1]):
                for column, counts in cells(1):
                    table = counts.reshape(self.stall_shape)
                    self.stalls.schedule(column, table, day, self.release_day)
            # else: scheduled when ELS works the case (`worked`)
        if rollback:
            self.els.raise_cases(day, "rollback", rollback, self)
            self._fail(by_outcome[2], day, cells(2))
        if fix_forward:
            self.impaired += fix_forward
            if not self.els.raise_cases(
                day, "fix_forward", fix_forward, self, by_outcome[3]
            ):
                restored = np.sum([counts for _, counts in cells(3)], axis=0)
                self._restore(fix_forward, day, day, restored)

    def _restore(
        self,
        count: int,
        raised_day: int,
        not_before: int,
        counts: np.ndarray | None = None,
    ) -> None:
        """Schedule restoring ``count`` fix forwards raised on ``raised_day``.

        ``counts``: by restoration delay, read from their attempts' uniforms;
        ``None``: drawn now from the restorations stream (worked by ELS).
        """
        days = _needed(self.restore_pmf, "fix_forward")[0]
        if len(days) == 1 and not_before <= raised_day + int(days[0]):
            self.restore_due[raised_day + int(days[0])] += count  # a fixed delay
            return
        if counts is None:
            counts = self.restore_cells.counts(self.restore_units.take(0, count))
        due = raised_day + days
        if not_before > due[0]:  # worked late by ELS: not before that day
            np.add.at(self.restore_due, np.maximum(due, not_before), counts)
        else:
            self.restore_due[due] += counts

    def _dumb(self, by_attempt: np.ndarray, day: int, cells: list) -> None:
        """Dumb devices: a share recovered remotely later; the rest await a visit.

        ``cells``: per column, counts recovered by recovery delay, then awaiting
        a visit in prepayment mode, then not (read from their attempts' uniforms).
        """
        n = int(by_attempt.sum())
        self.dumb += n
        self.els.raise_cases(day, "dumb", n, self)
        k = self.recovered_cells
        if self.recover_pmf is not None:
            recovered = [(c, counts[:k]) for c, counts in cells]
            n_recovered = sum(int(counts.sum()) for _, counts in recovered)
            if n_recovered:
                self.awaiting_recovery += n_recovered
                schedule(self.recover_due, recovered, self.recover_pmf[0], day)
            n -= n_recovered
        self.awaiting_site_visit += n
        self.prepayment_dumb += sum(int(counts[k]) for _, counts in cells)

    def worked(
        self, kind: str, raised_day: int, by_attempt: np.ndarray, day: int
    ) -> None:
        """ELS worked these cases today: resolve on the later of delay end and today.

        Their delays and results are drawn now, from streams of their own
        (``stall_delay``, ``restore_delay``).
        """
        if kind == "stall":
            pmf = _needed(self.stall_pmf, "stall")
            floor = day if self.release_day is None else max(day, self.release_day)
            # no delay ends before the floor: the plain (faster) path
            plain = raised_day + int(pmf[0][0]) >= floor
            for column, counts in draw_counts(
                self.stall_units, by_attempt, self.stall_cells
            ):
                table = counts.reshape(self.stall_shape)
                self.stalls.schedule(
                    column, table, raised_day, None if plain else floor
                )
        else:
            self._restore(int(by_attempt.sum()), raised_day, day)

    def _abandon(self, by_attempt: np.ndarray) -> int:
        """Abandon the failures on their last attempt; how many are left to retry."""
        lasts = self.last_columns
        values = by_attempt.tolist()
        abandoned = sum(values[i] for i in lasts)
        if abandoned:
            self.abandoned += abandoned
            self.flows["abandons"] += abandoned
            if self.excluded_class is not None:
                self.excluded += values[lasts[self.excluded_class]]
        return sum(values) - abandoned

    def _fail(self, by_attempt: np.ndarray, day: int, cells: list) -> None:
        """Rollbacks and recovered dumb devices: abandon the last attempts, retry
        the rest (``cells``: per column, counts by retry delay)."""
        waiting = self._abandon(by_attempt)
        if not waiting:
            return
        self.rolled_back += waiting
        last = self.last_columns
        cells = [(c, counts) for c, counts in cells if c not in last]
        days = _needed(self.retry_pmf, "rollback")[0]
        schedule(self.retry_due, cells, days, day)

    def end_of_day(self) -> tuple[list[int], list[int]]:
        flows = list(self.flows.values())  # made by dict.fromkeys(FLOWS): in order
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


def _needed(
    pmf: tuple[np.ndarray, np.ndarray] | None, section: str
) -> tuple[np.ndarray, np.ndarray]:
    """The delay of ``section``: there whenever its outcome can happen (the schema
    requires the section for a non-zero rate), so its absence is a bug."""
    if pmf is None:
        raise RuntimeError(f"a {section} happened in a cohort without its delay")
    return pmf
