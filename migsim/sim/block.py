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

What runs here: calendars, closures, freezes, the schedule and its gates,
go/no-go incidents, the achieved share, pro-rata and priority allocation,
stalls (and their release dates), rollbacks, fix forwards and dumb outcomes,
uncertain rates, dates and sizes, twins. Scenarios with a section the block
does not run yet (suppliers, hard and excluded cases, remote recovery, consumer
exposure) run on the scalar engine: `supports` says which. Mid-programme starts
(forecasts from actuals) take up each replication's state as the scalar
engine placed it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from migsim.model.scenario import Scenario
from migsim.sim.allocation import share_pro_rata_rows
from migsim.sim.engine import _Model, run_replication
from migsim.sim.inputs import TwinStreams, with_inputs_from
from migsim.sim.lane_els import BlockDesk
from migsim.sim.lanes import MAX_BLOCK, Lane
from migsim.sim.operations import OPERATIONS_LEVELS
from migsim.sim.records import RunLog
from migsim.sim.streams import Streams

__all__ = ["MAX_BLOCK", "run_block", "run_blocks", "simulate", "supports"]

#: Drop stopped replications from the lanes once they are 1 in this many.
COMPACT_EVERY = 8


def supports(scenario: Scenario) -> str | None:
    """``None`` when the block engine runs ``scenario``, else the reason it does not."""
    if scenario.suppliers:
        return "suppliers"
    if scenario.capacity.allocation not in ("pro_rata", "priority"):
        return f"{scenario.capacity.allocation} allocation"
    for cohort in scenario.cohorts:
        reason = _cohort_reason(cohort)
        if reason:
            return f"cohort {cohort.name}: {reason}"
    return None


def _cohort_reason(cohort) -> str | None:
    if cohort.hard is not None or cohort.excluded is not None:
        return "hard or excluded cases"
    if cohort.suppliers:
        return "suppliers"
    if cohort.change_of_supplier is not None or cohort.ppmid_join is not None:
        return "consumer exposure"
    if cohort.dumb is not None and cohort.dumb.recovered_share:
        return "remote recovery"
    return None


class _Block:
    """The replications of one block: their scalar set-up, then shared days."""

    def __init__(self, scenario: Scenario, seed: int, ids: list[int], twin: int):
        self.ids = ids
        self.models = [
            _Model(simpy.Environment(), scenario, with_inputs_from(scenario, s))
            for s in (
                TwinStreams(seed, k, twin) if twin else Streams(seed, k) for k in ids
            )
        ]
        first = self.models[0]
        self.horizon = horizon = scenario.horizon_days
        for model in self.models:
            _check(model)
        n = len(ids)
        n_cohorts = len(scenario.cohorts)
        self.lanes = [
            Lane(
                [m.cohorts[j] for m in self.models],
                horizon,
                [m.ops.defects[m.cohorts[j].index] for m in self.models],
            )
            for j in range(len(first.cohorts))
        ]
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
        self.clearance = np.full(n, -1)
        self.cohort_clearance = np.full((n, n_cohorts), -1)
        self.stop = np.full(n, -1)  # the day the scalar engine would stop at
        # the replications still running, by position in the block: those that
        # stopped are dropped from the lanes, so they cost nothing after
        self.live = np.arange(n)

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
        self.live = self.live[keep]

    def step(self, day: int) -> None:
        lanes = self.lanes
        if self.desk is not None:  # ELS / MCC work open cases first
            self.desk.work(day)
        for lane in lanes:
            lane.resolve_stalls(day)
        for lane in lanes:
            lane.release(day)
        live = self.live
        if self.rules:  # a stopped replication's policy is asked no more
            running = (self.stop[live] < 0).tolist()
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
            queues = [lane.queued for lane in lanes]
            halted = self._halted(day)
            if halted is not None:  # a found defect halts its cohort (or all)
                queues = [
                    np.where(halted[:, lane.index], 0, q)
                    for lane, q in zip(lanes, queues, strict=True)
                ]
            shares = self._share(offered, queues)
            stressed = self._stressed(day, shares)
            for j, (lane, share) in enumerate(zip(lanes, shares.T, strict=True)):
                if share.any():
                    hot = None if stressed is None else stressed[:, j]
                    lane.attempt(lane.take(share), day, hot)
        self._record(day)

    @staticmethod
    def _offered(cap: np.ndarray, achieved: np.ndarray | None) -> np.ndarray:
        """The cap after the achieved share, rounded down as `allocate` does."""
        if achieved is None:
            return cap
        return np.floor(cap * achieved + 1e-9).astype(np.int64)

    def _stressed(self, day: int, shares: np.ndarray) -> np.ndarray | None:
        """(rep, cohort): attempts made at volume-stressed rates today."""
        if not self.volume:
            return None
        out = np.zeros(shares.shape, dtype=bool)
        total = shares.sum(axis=1)
        for cohort, spec, until in self.volume:
            count = total if spec.counted == "all" else shares[:, cohort]
            out[:, cohort] |= (count > spec.above_attempts) & (day < until[self.live])
        return out

    def _halted(self, day: int) -> np.ndarray | None:
        """(rep, cohort): may not be attempted today, a found defect halting it
        (`operations.Operations.halted`); ``None`` without latent defects."""
        with_defects = [lane for lane in self.lanes if lane.defects is not None]
        if not with_defects:
            return None
        out = np.zeros((len(self.live), len(self.cohort_need[0])), dtype=bool)
        every = np.zeros(len(self.live), dtype=bool)
        for lane in with_defects:
            assert lane.defects is not None
            halts = lane.defects.halts(day)
            out[:, lane.index] |= halts.any(axis=1)
            every |= (halts & lane.defects.halts_all).any(axis=1)
        out[every] = True
        return out

    def _share(self, cap: np.ndarray, queues: list[np.ndarray]) -> np.ndarray:
        """(rep, cohort) attempts: pro rata (largest remainder) or in priority."""
        queued = np.stack(queues, axis=1)
        if not self.priority:
            return share_pro_rata_rows(cap, queued)
        before = np.cumsum(queued, axis=1) - queued
        return np.clip(cap[:, None] - before, 0, queued)

    def _record(self, day: int) -> None:
        live = self.live
        resolved = np.zeros((len(live), self.cohort_need.shape[1]), dtype=np.int64)
        done = np.ones(len(live), dtype=bool)
        running = self.stop[live] < 0  # a stopped replication detects no more
        for lane in self.lanes:
            if lane.defects is not None:
                lane.defects.detect(day, running)
        halted = self._halted(day)
        if halted is not None and "defect_halt" in self.levels:
            self.levels["defect_halt"][live, day] = halted
        for lane in self.lanes:
            states, flows = lane.end_of_day()
            self.states[live, day, lane.index] = states
            self.flows[live, day, lane.index] = flows
            for name, values in (
                ("awaiting_site_visit", lane.awaiting_site_visit),
                ("prepayment_dumb", lane.prepayment_dumb),
                ("stressed_attempts", lane.stressed_attempts),
                ("defect_hits", lane.defect_hits),
            ):
                if name in self.levels:
                    self.levels[name][live, day, lane.index] = values
            lane.stressed_attempts[:] = 0
            lane.defect_hits[:] = 0
            resolved[:, lane.index] += lane.resolved
            done &= lane.resolved == lane.total
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
        self.stop[live[done & (self.stop[live] < 0)]] = day

    def logs(self) -> list[RunLog]:
        for lane in self.lanes:
            if lane.defects is not None:
                lane.defects.write_back()
        levels = [
            array
            for name, array in self.levels.items()
            if name in OPERATIONS_LEVELS and name != "defect_halt"
        ]
        halt = self.levels.get("defect_halt")
        out = []
        for r, (k, model) in enumerate(zip(self.ids, self.models, strict=True)):
            stop = int(self.stop[r])
            model.policy.last_day = stop if stop >= 0 else self.horizon - 1
            if 0 <= stop < self.horizon - 1:  # nothing left in flight: repeat it
                self.states[r, stop + 1 :] = self.states[r, stop]
                for array in levels:
                    array[r, stop + 1 :] = array[r, stop]
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


def _check(model: _Model) -> None:
    """What `supports` promises, on the replication as built."""
    if len(model.cohorts) != len(model.scenario.cohorts):
        raise ValueError("the block engine runs one segment per cohort")
    for state in model.cohorts:
        if len(state.segment.classes) != 1:
            raise ValueError("the block engine runs one class per cohort")


def run_block(
    scenario: Scenario, seed: int, replications: list[int], twin: int = 0
) -> list[RunLog]:
    """Simulate ``replications`` of ``scenario`` together (at most `MAX_BLOCK`).

    The same logs, number for number, as `engine.run_replication` for each of
    them (``twin``: as their twins); ``supports(scenario)`` must be ``None``.
    """
    reason = supports(scenario)
    if reason is not None:
        raise ValueError(f"the block engine does not run {reason}")
    if not 0 < len(replications) <= MAX_BLOCK:
        raise ValueError(f"a block holds 1 to {MAX_BLOCK} replications")
    block = _Block(scenario, seed, list(replications), twin)
    env = simpy.Environment()
    env.process(block.days(env))
    env.run(until=scenario.horizon_days)
    return block.logs()


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


def simulate(
    scenario: Scenario, seed: int, replications: list[int], twin: int = 0
) -> list[RunLog]:
    """The logs of ``replications``: on blocks when the block engine runs the
    scenario, else one at a time (the same numbers either way)."""
    if supports(scenario) is None:
        return run_blocks(scenario, seed, replications, twin)
    return [run_replication(scenario, seed, k, twin) for k in replications]
