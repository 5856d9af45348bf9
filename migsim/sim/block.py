"""Block engine: a block of replications advanced through the day loop together.

The scalar engine (`engine`) pays Python's cost for every cohort of every day
of every replication. Here one SimPy process (the clock) ticks the days of a
whole block, and each day's phases are whole-array operations with a
replication axis (`lanes.Lane`): the ramp policy's caps and the achieved share
are arrays known up front, the cap is shared between cohorts for every
replication at once (`allocation.share_pro_rata_rows`), and outcome counts,
delays and ledgers are array calls over the block.

Set-up is the scalar engine's own: each replication's inputs, dates, policy,
operations and tables are built by `engine._Model`, so every input draw is the
same, and each attempt reads the same uniform of the same stream. A block's
results are therefore identical to the scalar engine's, replication by
replication, for any block size or worker count: the block structure is not
part of the seed contract. `tests/test_block.py` checks it.

What runs here: every section the scalar engine runs. Calendars, closures,
freezes, the schedule and its gates, go/no-go incidents, the achieved share,
pro-rata, priority and msm allocation, suppliers (each cohort's segments are
lanes, its row their sum; business readiness, nominations, ``operational``),
stalls (and their release dates), rollbacks, fix forwards and dumb outcomes
(and their remote recovery), hard and excluded cases, latent defects, ELS,
consumer exposure, uncertain rates, dates and sizes, twins. Mid-programme
starts (forecasts from actuals) take up each replication's state as the scalar
engine placed it. Replications whose drawn sizes left them with different
segments or classes cannot share lanes: such a block runs one replication at a
time on the scalar engine (the same numbers either way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from migsim.model.scenario import Scenario
from migsim.sim.allocation import msm_shares, share_pro_rata_rows, take_in_order
from migsim.sim.engine import _Model, run_replication
from migsim.sim.inputs import TwinStreams, input_keys, with_inputs_from
from migsim.sim.lane_defects import LaneDefects
from migsim.sim.lane_els import BlockDesk
from migsim.sim.lane_kernel import (
    block_work,
    kernels,
    planned_work,
    wanted,
    would_use,
)
from migsim.sim.lane_policy import BlockPolicy
from migsim.sim.lane_policy import supports as arrays_run
from migsim.sim.lane_queues import Column
from migsim.sim.lanes import MAX_BLOCK, Lane
from migsim.sim.operations import OPERATIONS_LEVELS
from migsim.sim.records import FLOWS, STATES, RunLog
from migsim.sim.streams import Streams

__all__ = [
    "MAX_BLOCK",
    "MIN_BLOCK",
    "MIN_KERNEL_BLOCK",
    "run_block",
    "run_blocks",
    "run_blocks_with_twins",
    "simulate",
    "supports",
    "worth_a_block",
]

#: Replications below which a batch runs one at a time (see `worth_a_block`).
MIN_BLOCK = 24
#: The same where the block reads with the compiled kernels: CPU a replication
#: in blocks of 12 against one at a time, kernels loaded, was 0.46-0.94 on five
#: bundled scenarios (0.94: the cautious ramp with Elster active, whose ramp
#: rules and defects cost most per block; in blocks of 8 it was 1.17).
MIN_KERNEL_BLOCK = 12
#: Operations levels each lane keeps (a cohort's: the sum of its lanes').
_LANE_LEVELS = (
    "awaiting_site_visit",
    "prepayment_dumb",
    "excluded",
    "stressed_attempts",
    "defect_hits",
    "dumb_recoveries",
)
#: Drop stopped replications from the lanes once they are 1 in this many.
COMPACT_EVERY = 8


def supports(scenario: Scenario) -> str | None:
    """``None`` when the block engine runs ``scenario``, else the reason it does not.

    It runs every section the scalar engine runs; the hook stays so that a
    section new to the scalar engine can be refused here until the block runs
    it (the runner and `simulate` ask it).
    """
    del scenario  # every scenario: nothing to refuse
    return None


class _Mismatch(Exception):
    """The block's replications were planned with different segments or classes
    (sizes drawn per replication can leave a class or a supplier empty)."""


class _Block:
    """The replications of one block: their scalar set-up, then shared days."""

    def __init__(self, scenario: Scenario, seed: int, members: list[tuple[int, int]]):
        # a member is (replication, twin): a replication's twins may share its
        # block (their streams are their own; nothing else differs)
        self.ids = [k for k, _ in members]
        self.models = [
            _Model(simpy.Environment(), scenario, with_inputs_from(scenario, s))
            for s in (
                TwinStreams(seed, k, twin) if twin else Streams(seed, k)
                for k, twin in members
            )
        ]
        first = self.models[0]
        self.horizon = horizon = scenario.horizon_days
        plan = _plan(first)
        if any(_plan(model) != plan for model in self.models):
            raise _Mismatch
        n = len(members)
        n_cohorts = len(scenario.cohorts)
        # one lane per segment (a cohort's row is the sum of its segments')
        # the compiled passes (`lane_kernel`) for a block with many attempts
        work = sum(int(state.total) for m in self.models for state in m.cohorts)
        desk = scenario.els is not None
        self.kernel = kernel = kernels() if wanted(block_work(work, desk)) else None
        self.lanes = [
            Lane([m.cohorts[j] for m in self.models], horizon, kernel=kernel)
            for j in range(len(first.cohorts))
        ]
        self._share_defects(n_cohorts)
        self._suppliers(scenario)
        # ramp rules: each replication's policy decides its cap day by day (it
        # reads the block's records of earlier days); without, caps are known
        self.rules = bool(first.policy.rules)
        self.cap = np.stack([m.policy.daily_cap for m in self.models], axis=1)
        shares = [m.ops.achieved for m in self.models]
        self.achieved = None  # (day, rep): the share of the cap achieved
        if all(share is not None for share in shares):
            self.achieved = np.stack(shares, axis=1)  # type: ignore[arg-type]
        self.offered = self._offered(self.cap, self.achieved)
        self.volume = _volume(self.models)
        self.priority = scenario.capacity.allocation == "priority"
        # results, replication first; each model's arrays become views of them
        self.states = np.zeros((n, horizon, n_cohorts, first.states.shape[2]), int)
        self.flows = np.zeros((n, horizon, n_cohorts, first.flows.shape[2]), int)
        # operations' extra columns (levels and flows): (rep, day, cohort)
        self.levels = {
            name: np.zeros((n, horizon, n_cohorts), dtype=np.int64)
            for name in (*first.ops.levels, *first.ops.flows)
        }
        # operations' day columns (the ELS backlog, cases raised and worked,
        # the achieved cap): (rep, day)
        self.day_columns: dict[str, np.ndarray] = {
            name: np.zeros((n, horizon), dtype=np.int64) for name in first.ops.days
        }
        # what `_record` reads from every lane each day, in its order
        self._tallied = (
            *STATES,
            *(name for name in _LANE_LEVELS if name in self.levels),
            "resolved",
        )
        # consumer exposure: drawn per replication, from streams of the day
        self.exposed = bool(first.ops.cos or first.ops.ppmid)
        self.desk: BlockDesk | None = None
        if scenario.els is not None:
            width = max(lane.size for lane in self.lanes)
            self.desk = BlockDesk(
                scenario.els, first.policy.working, n, n_cohorts, width
            )
            for lane in self.lanes:
                lane.desk = self.desk
            queues = [list(getattr(m.ops.desk, "queue", ())) for m in self.models]
            if any(queues):
                self.desk.take_up(queues, self.lanes)
        for r, model in enumerate(self.models):
            for name, array in self.day_columns.items():
                model.ops.days[name] = array[r]
            if "els_backlog" in self.day_columns:  # a ramp rule's metric reads it
                model.policy.els_backlog = model.ops.days["els_backlog"]
            model.states, model.flows = self.states[r], self.flows[r]
            # the ramp rules' metrics read the records of earlier days
            model.policy.states, model.policy.flows = model.states, model.flows
            for name, array in self.levels.items():
                table = (
                    model.ops.levels if name in model.ops.levels else model.ops.flows
                )
                table[name] = array[r]
        self.need = np.array([m.need for m in self.models])
        self.cohort_need = np.array([m.cohort_need for m in self.models])  # (rep, c)
        # ramp rules as arrays across the block (else each policy, day by day)
        self.policy: BlockPolicy | None = None
        policies = [m.policy for m in self.models]
        if self.rules and arrays_run(policies):
            els = self.day_columns.get("els_backlog")
            self.policy = BlockPolicy(policies, self.flows, self.states, els)
        self.clearance = np.full(n, -1)
        self.cohort_clearance = np.full((n, n_cohorts), -1)
        self.stop = np.full(n, -1)  # the day the scalar engine would stop at
        # nothing in flight from the start: never asked a cap (`_Model.running`)
        self.running = np.array([m.running for m in self.models])
        # the replications still running, by position in the block: those that
        # stopped are dropped from the lanes, so they cost nothing after
        self.live = np.arange(n)
        self._halts_on: tuple[int, np.ndarray | None] = (-1, None)

    def _share_defects(self, n_cohorts: int) -> None:
        """Each cohort's latent defects, shared by its segments' lanes (as the
        scalar segments share the `LiveDefect` objects and their streams)."""
        self.defect_sets: list[tuple[int, LaneDefects]] = []
        for c in range(n_cohorts):
            objects = [m.ops.defects[c] for m in self.models]
            mine = [lane for lane in self.lanes if lane.index == c]
            if not objects[0] or not mine:
                continue
            shared = LaneDefects(objects, max(lane.size for lane in mine), Column)
            self.defect_sets.append((c, shared))
            for lane in mine:
                lane.defects = shared

    def _suppliers(self, scenario: Scenario) -> None:
        """Who shares the cap with whom (`operations.Operations.allocate`)."""
        ops = [m.ops for m in self.models]
        first = ops[0]
        self.cohort_of = np.array([lane.index for lane in self.lanes])
        self.by_cohort = [np.array(g, dtype=np.intp) for g in first.by_cohort]
        self.by_supplier = [np.array(g, dtype=np.intp) for g in first.by_supplier]
        self.member = np.zeros((len(self.lanes), len(scenario.cohorts)), np.int64)
        self.member[np.arange(len(self.lanes)), self.cohort_of] = 1
        self.lane_per_cohort = np.array_equal(
            self.cohort_of, np.arange(len(scenario.cohorts))
        )
        self.msm, self.dmin = first.allocation == "msm", first.dmin
        # (rep, supplier): the day each supplier is ready (business readiness)
        self.ready_day = np.array([o.ready_day for o in ops], dtype=np.int64).reshape(
            len(ops), len(scenario.suppliers)
        )
        # (rep, segment): the first day a segment may be attempted
        self.waits: np.ndarray | None = None
        if any(day >= 0 for day in first.segment_ready_day):
            self.waits = np.array([o.segment_ready_day for o in ops], dtype=np.int64)
        self.nominations = [
            (
                self.by_supplier[j],
                np.array([dict(o.nominations)[j] for o in ops], dtype=np.int64),
            )
            for j, _ in first.nominations
        ]
        # (rep, segment): the migrated count of a replication when it stopped
        self.final_migrated = np.zeros((len(ops), len(self.lanes)), np.int64)

    def days(self, env: simpy.Environment):
        for day in range(self.horizon):
            self.step(day)
            running = self.stop[self.live] < 0
            if not running.any():
                return
            if (~running).sum() * COMPACT_EVERY >= len(running):
                self._compact(np.flatnonzero(running))
            yield env.timeout(1)

    def _compact(self, keep: np.ndarray) -> None:
        """Drop the replications that stopped from every lane."""
        for lane in self.lanes:
            lane.keep(keep)
        if self.desk is not None:
            self.desk.keep(keep)
        for _, defects in self.defect_sets:
            defects.keep(keep)
        self.live = self.live[keep]

    def step(self, day: int) -> None:
        lanes = self.lanes
        if self.desk is not None:  # ELS / MCC work open cases first
            self.desk.work(day)
        for lane in lanes:
            lane.start_day(day)
        live = self.live
        if self.policy is not None:  # a stopped replication's is asked no more
            running = (self.stop[live] < 0) & self.running[live]
            cap = np.zeros(len(live), dtype=np.int64)
            cap[running] = self.policy.caps(day, live[running])
            achieved = None if self.achieved is None else self.achieved[day, live]
            offered = self._offered(cap, achieved)
        elif self.rules:
            running = ((self.stop[live] < 0) & self.running[live]).tolist()
            cap = np.array(
                [
                    self.models[r].policy.cap(day) if on else 0
                    for r, on in zip(live.tolist(), running, strict=True)
                ]
            )
            achieved = None if self.achieved is None else self.achieved[day, live]
            offered = self._offered(cap, achieved)
        else:
            cap, offered = self.cap[day, live], self.offered[day, live]
        if cap.any():
            queued = np.stack([lane.queued for lane in lanes], axis=1)
            shares = self._allocate(day, offered, queued)
            stressed = self._stressed(day, shares)
            for j, (lane, share) in enumerate(zip(lanes, shares.T, strict=True)):
                if share.any():
                    hot = None if stressed is None else stressed[:, j]
                    lane.take_and_attempt(share, day, hot)
        self._record(day)

    @staticmethod
    def _offered(cap: np.ndarray, achieved: np.ndarray | None) -> np.ndarray:
        """The cap after the achieved share, rounded down as `allocate` does."""
        if achieved is None:
            return cap
        return np.floor(cap * achieved + 1e-9).astype(np.int64)

    def _stressed(self, day: int, shares: np.ndarray) -> np.ndarray | None:
        """(rep, segment): attempts made at volume-stressed rates today."""
        if not self.volume:
            return None
        out = np.zeros(shares.shape, dtype=bool)
        total = shares.sum(axis=1)
        by_cohort = shares @ self.member
        for cohort, spec, until in self.volume:
            count = total if spec.counted == "all" else by_cohort[:, cohort]
            hot = (count > spec.above_attempts) & (day < until[self.live])
            out[:, self.by_cohort[cohort]] |= hot[:, None]
        return out

    def _allocate(self, day: int, cap: np.ndarray, queued: np.ndarray) -> np.ndarray:
        """(rep, segment) attempts today (`operations.Operations.allocate`):
        halted cohorts and segments waiting for their supplier take none, a
        supplier's nomination bounds its segments, the cap is shared between
        cohorts (or suppliers, by msm) and then between their segments."""
        live = self.live
        available = queued
        halted = self._halted(day)
        if halted is not None:  # a found defect halts its cohort (or all)
            available = np.where(halted[:, self.cohort_of], 0, available)
        if self.waits is not None:  # active segments wait for their supplier
            available = np.where(day < self.waits[live], 0, available)
        for members, nomination in self.nominations:
            wanted = available[:, members]
            over = wanted.sum(axis=1) > nomination[live]
            if over.any():
                available = available.copy()
                available[:, members] = np.where(
                    over[:, None],
                    share_pro_rata_rows(nomination[live], wanted, self.kernel),
                    wanted,
                )
        if self.msm:
            groups = self.by_supplier
            demands = np.stack([available[:, g].sum(axis=1) for g in groups], axis=1)
            totals = np.array(
                [
                    msm_shares(int(c), d, self.dmin)
                    for c, d in zip(cap.tolist(), demands.tolist(), strict=True)
                ],
                dtype=np.int64,
            ).reshape(len(cap), len(groups))
        else:
            groups = self.by_cohort
            totals = self._share(cap, self._by_cohort(available))
            if self.lane_per_cohort:  # a cohort's share is its one lane's
                return totals
        shares = np.zeros_like(available)
        for members, total in zip(groups, totals.T, strict=True):
            if len(members) == 1:
                shares[:, members[0]] = total
            elif len(members):
                shares[:, members] = share_pro_rata_rows(
                    total, available[:, members], self.kernel
                )
        return shares

    def _halted(self, day: int) -> np.ndarray | None:
        """(rep, cohort): may not be attempted today, a found defect halting it
        (`operations.Operations.halted`); ``None`` without latent defects.
        Asked twice a day (the cap's share, the records), made once: a defect
        found today halts from a later day."""
        if not self.defect_sets:
            return None
        if self._halts_on[0] == day:
            return self._halts_on[1]
        out = np.zeros((len(self.live), len(self.cohort_need[0])), dtype=bool)
        every = np.zeros(len(self.live), dtype=bool)
        for cohort, defects in self.defect_sets:
            halts = defects.halts(day)
            out[:, cohort] |= halts.any(axis=1)
            every |= (halts & defects.halts_all).any(axis=1)
        out[every] = True
        self._halts_on = (day, out)
        return out

    def _share(self, cap: np.ndarray, queued: np.ndarray) -> np.ndarray:
        """(rep, cohort) attempts of the (rep, cohort) ``queued``: pro rata
        (largest remainder) or in priority."""
        if not self.priority:
            return share_pro_rata_rows(cap, queued, self.kernel)
        return take_in_order(queued, cap)

    def _record(self, day: int) -> None:
        live = self.live
        done = np.ones(len(live), dtype=bool)
        running = self.stop[live] < 0  # a stopped replication detects no more
        for _, defects in self.defect_sets:
            defects.detect(day, running)
        halted = self._halted(day)
        if halted is not None and "defect_halt" in self.levels:
            self.levels["defect_halt"][live, day] = halted
        lanes = self.lanes
        # every lane's states, levels, resolved and flows: (lane, figure, rep),
        # one copy, one sum by cohort
        tallied = self._tallied
        t = len(tallied)
        tally = np.empty((len(lanes), t + len(FLOWS), len(live)), dtype=np.int64)
        for j, lane in enumerate(lanes):  # (an array made of a nested list: 4x as long)
            tally[j, :t] = [getattr(lane, name) for name in tallied]
            tally[j, t:] = lane.flows.T
        by = self._by_cohort(tally.transpose(2, 0, 1))  # (rep, cohort, figure)
        n_states, at = len(STATES), len(tallied) - 1  # resolved's row
        # each part copied contiguous first: adding a strided one at [live, day]
        # is ten times slower (measured on the fleet: 105 us against 10 a day)
        part = np.ascontiguousarray
        self.states[live, day] += part(by[:, :, :n_states])
        for i, name in enumerate(tallied[n_states:at], n_states):
            self.levels[name][live, day] += part(by[:, :, i])
        resolved = by[:, :, at]
        self.flows[live, day] += part(by[:, :, at + 1 :])
        operational = self.levels.get("operational")
        if operational is not None:  # migrated, once the supplier is ready
            migrated = np.stack([self._operational(lane, day) for lane in lanes], 1)
            operational[live, day] += self._by_cohort(migrated)
        for j, lane in enumerate(lanes):
            lane.flows[:] = 0
            lane.stressed_attempts[:] = 0
            lane.defect_hits[:] = 0
            lane.dumb_recoveries[:] = 0
            done &= tally[j, at] == lane.total
        if self.exposed:
            self._expose(day)
        desk = self.desk
        if desk is not None:
            if "els_cases_open" in self.levels:
                self.levels["els_cases_open"][live, day] = desk.open_by_cohort
            columns = self.day_columns
            columns["els_backlog"][live, day] = desk.open
            columns["els_cases_raised"][live, day] = desk.raised
            columns["els_cases_worked"][live, day] = desk.worked
            desk.end_of_day()
            done &= desk.open == 0  # the scalar engine stops only when quiet
        cohorts = self.cohort_clearance[live]
        new = (cohorts < 0) & (resolved >= self.cohort_need[live])
        cohorts[new] = day
        self.cohort_clearance[live] = cohorts
        cleared = (self.clearance[live] < 0) & (resolved.sum(axis=1) >= self.need[live])
        self.clearance[live[cleared]] = day
        stopping = done & (self.stop[live] < 0)
        if stopping.any():
            self.stop[live[stopping]] = day
            for j, lane in enumerate(self.lanes):
                self.final_migrated[live[stopping], j] = lane.migrated[stopping]

    def _by_cohort(self, values: np.ndarray) -> np.ndarray:
        """(rep, cohort, ...) sums of (rep, segment, ...) lane values: a
        cohort's row is the sum of its segments'."""
        if self.lane_per_cohort:
            return values
        if values.ndim == 2:
            return values @ self.member
        return np.matmul(self.member.T, values)

    def _operational(self, lane: Lane, day: int) -> np.ndarray:
        """A lane's migrated installations, where its supplier is ready."""
        supplier = lane.segment.supplier
        if supplier < 0:
            return lane.migrated
        ready = day >= self.ready_day[self.live, supplier]
        return np.where(ready, lane.migrated, 0)

    def _expose(self, day: int) -> None:
        """Consumer exposure drawn for each running replication, from its own
        stream of the day (`operations.Operations.record`)."""
        states, flows = self.states[:, day], self.flows[:, day]
        lost = self.levels.get("cos_alerts_lost")
        failed = self.levels.get("ppmid_join_failures")
        for r in self.live.tolist():
            ops = self.models[r].ops
            on_day = ops.streams.on_day
            for c, owner, rate, until_day in ops.cos:
                exposed = int(states[r, c, 4] + states[r, c, 5])  # impaired + migrated
                if day < until_day and exposed:
                    rng = on_day(owner, "change_of_supplier", day)
                    lost[r, day, c] = rng.binomial(exposed, rate)  # type: ignore[index]
            for c, owner, rate, until_day in ops.ppmid:
                # newly migrated: successes, fix forwards, completed stalls
                new = int(flows[r, c, 1] + flows[r, c, 4] + flows[r, c, 6])
                if day < until_day and new:
                    rng = on_day(owner, "ppmid_join", day)
                    failed[r, day, c] = rng.binomial(new, rate)  # type: ignore[index]

    def _expose_after(self, r: int, stop: int) -> None:
        """Change-of-supplier losses on the days after replication ``r``
        stopped, on its final counts (`operations.Operations.fill_from`)."""
        ops = self.models[r].ops
        final = self.states[r, stop]
        lost = self.levels.get("cos_alerts_lost")
        for c, owner, rate, until_day in ops.cos:
            exposed = int(final[c, 4] + final[c, 5])
            if exposed:
                for t in range(stop + 1, min(self.horizon, until_day)):
                    rng = ops.streams.on_day(owner, "change_of_supplier", t)
                    lost[r, t, c] = rng.binomial(exposed, rate)  # type: ignore[index]

    def _operational_after(self, r: int, stop: int) -> None:
        """After replication ``r`` stopped, a segment whose supplier becomes
        ready later turns operational then (`operations.Operations.fill_from`)."""
        operational = self.levels["operational"]
        for j, lane in enumerate(self.lanes):
            supplier = lane.segment.supplier
            if supplier >= 0:
                ready = int(self.ready_day[r, supplier])
                if ready > stop:
                    operational[r, ready:, lane.index] += self.final_migrated[r, j]

    def logs(self) -> list[RunLog]:
        for _, defects in self.defect_sets:
            defects.write_back()
        levels = [
            array
            for name, array in self.levels.items()
            if name in OPERATIONS_LEVELS and name != "defect_halt"
        ]
        halt = self.levels.get("defect_halt")
        out = []
        for r, (k, model) in enumerate(zip(self.ids, self.models, strict=True)):
            stop = int(self.stop[r])
            if not self.running[r]:
                model.policy.last_day = -1  # asked no day's cap
            else:
                model.policy.last_day = stop if stop >= 0 else self.horizon - 1
            if self.policy is not None:
                self.policy.write_back(r)
            if 0 <= stop < self.horizon - 1:  # nothing left in flight: repeat it
                self.states[r, stop + 1 :] = self.states[r, stop]
                for array in levels:
                    array[r, stop + 1 :] = array[r, stop]
                if self.exposed:
                    self._expose_after(r, stop)
                if "operational" in self.levels:
                    self._operational_after(r, stop)
                if halt is not None:  # halts still run their course
                    for day in range(stop + 1, self.horizon):
                        halt[r, day] = 0
                        for c in model.ops.halted(day):
                            halt[r, day, c] = 1
            model.clearance_day = _day(self.clearance[r])
            model.cohort_clearance = [_day(d) for d in self.cohort_clearance[r]]
            out.append(model.collect(k))
        return out


def _day(value) -> int | None:
    return None if value < 0 else int(value)


def _volume(models: list[_Model]) -> list[tuple[int, Any, np.ndarray]]:
    """Volume failures: (cohort, spec, the day each replication's ends)."""
    first = models[0].ops.volume
    return [
        (
            cohort,
            spec,
            np.array(
                [
                    m.ops.volume[i][2] if m.ops.volume[i][2] is not None else 1 << 62
                    for m in models
                ]
            ),
        )
        for i, (cohort, spec, _) in enumerate(first)
    ]


def _plan(model: _Model) -> list[tuple]:
    """A replication's segments and their classes: a block's must agree."""
    return [
        (s.index, s.segment.label, tuple(c.kind for c in s.segment.classes))
        for s in model.cohorts
    ]


def run_block(
    scenario: Scenario, seed: int, replications: list[int], twin: int = 0
) -> list[RunLog]:
    """Simulate ``replications`` of ``scenario`` together (at most `MAX_BLOCK`).

    The same logs, number for number, as `engine.run_replication` for each of
    them (``twin``: as their twins); ``supports(scenario)`` must be ``None``.
    """
    return _run_members(scenario, seed, [(k, twin) for k in replications])


def _run_members(
    scenario: Scenario, seed: int, members: list[tuple[int, int]]
) -> list[RunLog]:
    """The logs of one block's (replication, twin) members, in order."""
    reason = supports(scenario)
    if reason is not None:
        raise ValueError(f"the block engine does not run {reason}")
    if not 0 < len(members) <= MAX_BLOCK:
        raise ValueError(f"a block holds 1 to {MAX_BLOCK} replications")
    try:
        block = _Block(scenario, seed, members)
    except _Mismatch:  # rare: the scalar engine, one replication at a time
        return [run_replication(scenario, seed, k, twin) for k, twin in members]
    env = simpy.Environment()
    env.process(block.days(env))
    env.run(until=scenario.horizon_days)
    return block.logs()


def run_blocks_with_twins(
    scenario: Scenario,
    seed: int,
    replications: list[int],
    twinned: Callable[[int], bool],
) -> tuple[list[RunLog], list[RunLog]]:
    """The replications' logs and the logs of the twins of those ``twinned``
    says to twin and that drew inputs (as the runner asks): twins run in the
    same blocks as the replications, not as a small block (or one at a time)
    of their own."""
    ids = list(replications)
    members = [(k, 0) for k in ids]
    if input_keys(scenario):
        members += [(k, 1) for k in ids if twinned(k)]
    logs = [
        log
        for i in range(0, len(members), MAX_BLOCK)
        for log in _run_members(scenario, seed, members[i : i + MAX_BLOCK])
    ]
    done, twins = logs[: len(ids)], logs[len(ids) :]
    drew = {log.replication for log in done if log.inputs}
    return done, [log for log in twins if log.replication in drew]


def run_blocks(
    scenario: Scenario, seed: int, replications: list[int], twin: int = 0
) -> list[RunLog]:
    """`run_block` over any number of replications, `MAX_BLOCK` at a time."""
    ids = list(replications)
    return [
        log
        for i in range(0, len(ids), MAX_BLOCK)
        for log in run_block(scenario, seed, ids[i : i + MAX_BLOCK], twin)
    ]


def worth_a_block(scenario: Scenario, replications: int) -> bool:
    """Whether ``replications`` of ``scenario`` run faster as a block than one
    at a time: the block engine runs it, and there are enough of them to spread
    a day's fixed cost (measured: blocks win from about 16-32 replications,
    depending on the scenario's sections; from `MIN_KERNEL_BLOCK` where the
    block reads with the kernels). The numbers are the same either way."""
    if replications < MIN_KERNEL_BLOCK or supports(scenario) is not None:
        return False
    if replications >= MIN_BLOCK:
        return True
    return would_use(planned_work(scenario, replications))


def simulate(
    scenario: Scenario, seed: int, replications: list[int], twin: int = 0
) -> list[RunLog]:
    """The logs of ``replications``: on blocks when that is faster
    (`worth_a_block`), else one at a time (the same numbers either way)."""
    if worth_a_block(scenario, len(replications)):
        return run_blocks(scenario, seed, replications, twin)
    return [run_replication(scenario, seed, k, twin) for k in replications]
