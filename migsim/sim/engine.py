"""Engine: one replication of a scenario, simulated at batch level on SimPy.

Why batches: the SMETS1 fleet is millions of installations, so the engine never
spends a process (or even a Python object) per installation. Each working day
each cohort attempts one *batch*; each attempt in it reads its outcome and
aftermath (stall resolution and result, retry delay, fix-forward restoration,
recovery) from its own uniform (`draws`: the k-th attempt of a column takes the
k-th uniform of its stream, so compared scenarios pair), and the batch is
counted into ledgers keyed by due day. Cost grows with days x cohorts x columns,
plus a few nanoseconds per attempt.

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

A cohort is simulated as one or more *segments* (`segments.Segment`: its
supplier splits, each holding its hard and excluded classes), each with its own
queue and ledgers; without those sections a cohort is exactly one segment and
runs as the foundation did.

The engine is a pure function of (scenario, replication streams): no globals,
files, printing or pandas.

Where the parts live: `cohort` (a segment's counts and ledgers, the day's
phases), `delays` (delay tables and ledgers), `initial_state` (a mid-programme
start), `streams` (random streams), `records` (state and flow names, the
`RunLog`); the ramp policy in `policy` with `calendar` and `dates`; operations
in `operations`. This module holds the day loop.
"""

from __future__ import annotations

import numpy as np
import simpy

from migsim.model.scenario import Scenario
from migsim.sim.cohort import CohortState
from migsim.sim.dates import resolve_dates
from migsim.sim.els import ElsDesk
from migsim.sim.initial_state import merge_states, part_states
from migsim.sim.inputs import (
    TwinStreams,
    draw_parameters,
    point_values,
    record_inputs,
    resolve_inputs,
    with_inputs_from,
)
from migsim.sim.operations import Operations
from migsim.sim.policy import Policy
from migsim.sim.records import FLOWS, STATES, RunLog
from migsim.sim.streams import Streams

__all__ = ["run_replication", "state_after"]


def _needed(total: int, share: float) -> int:
    """Resolved installations needed to count as cleared (guarding float noise)."""
    return min(total, int(np.ceil(share * total - 1e-9)))


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
        parameters = [draw_parameters(c, streams) for c in scenario.cohorts]
        self.parameters = parameters
        starts = part_states(scenario, self.ops.segments)
        self.cohorts = [  # one state per segment (per cohort without operations)
            CohortState(
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
        # the stop test on the state before day 0: a programme with nothing in
        # flight from the start (no installations, or a continuation of a run
        # that had stopped) is not running, so its policy is asked no cap and
        # no ramp rule is checked; its `.daily` shows the plan, as after a stop
        self.running = not self.settled()
        env.process(self._days())

    def settled(self) -> bool:
        """Nothing left in flight and nothing pending: the replication stops."""
        return all(c.done for c in self.cohorts) and self.ops.quiet()

    def _days(self):
        for day in range(self.scenario.horizon_days):
            self._step(day)
            if self.settled():
                self._fill_from(day + 1)
                return
            yield self.env.timeout(1)

    def _step(self, day: int) -> None:
        self.ops.start_of_day(day)
        for cohort in self.cohorts:
            cohort.resolve_stalls(day)
        for cohort in self.cohorts:
            cohort.release(day)
        cap = self.policy.cap(day) if self.running else 0
        if cap:
            self._attempts(day, cap)
        self._record(day)

    def _attempts(self, day: int, cap: int) -> None:
        queues = [c.queued for c in self.cohorts]
        shares = self.ops.allocate(day, cap, queues)
        stressed = self.ops.stressed(day, shares)
        for cohort, share, hot in zip(self.cohorts, shares, stressed, strict=True):
            if share:
                cohort.attempt(cohort.take(share), day, hot)

    def _record(self, day: int) -> None:
        rows = [cohort.end_of_day() for cohort in self.cohorts]
        # a cohort's row is the sum of its segments' rows (states and flows
        # side by side: one array and one product a day)
        both = self.member @ np.array([state + flow for state, flow in rows])
        width = self.states.shape[2]
        self.states[day] = both[:, :width]
        self.flows[day] = both[:, width:]
        self.ops.record(day, self.cohorts, self.states[day], self.flows[day])
        resolved = self.member @ np.array([cohort.resolved for cohort in self.cohorts])
        for i, (done, need) in enumerate(
            zip(resolved.tolist(), self.cohort_need, strict=True)
        ):
            if self.cohort_clearance[i] is None and done >= need:
                self.cohort_clearance[i] = day
        if self.clearance_day is None and int(resolved.sum()) >= self.need:
            self.clearance_day = day

    def _fill_from(self, day: int) -> None:
        """Nothing is left in flight: later days repeat the final state, no flows."""
        if day < self.scenario.horizon_days:
            self.states[day:] = self.states[day - 1]
            self.ops.fill_from(day, self.cohorts)

    def _split(self, name: str) -> bool:
        """Whether a cohort runs as several parts (segments x classes)."""
        return (
            sum(len(s.segment.classes) for s in self.cohorts if s.cohort.name == name)
            > 1
        )

    def _reopen_cases(self, cases) -> None:
        """Put a mid-programme start's open ELS cases back on the desk, in order.

        Each goes to its part: the segment of its ``supplier`` and, for held
        installations, the columns of each class in ``by_class``. A case without
        them (a state not exported by a run) goes to its cohort's first segment,
        its held installations to the class-0 columns (an approximation for a
        cohort of several parts).
        """
        desk = self.ops.desk
        segments: dict[tuple[str, str], CohortState] = {}
        first: dict[str, CohortState] = {}
        for segment in self.cohorts:
            name = segment.cohort.name
            first.setdefault(name, segment)
            segments[(name, segment.segment.label)] = segment
        for case in cases:
            if not isinstance(desk, ElsDesk) or case.cohort not in first:
                continue
            state = segments.get((case.cohort, case.supplier), first[case.cohort])
            held = None
            if case.kind in ("stall", "fix_forward"):
                held = _held(state, case)
            desk.queue.append([case.raised - 1, case.kind, case.count, state, held])
            desk.open += case.count
            desk.open_by_cohort[state.index] += case.count

    def _open_cases(self, day: int) -> list[dict]:
        """The ELS desk's open cases at the end of ``day``, oldest first."""
        out = []
        for raised, kind, count, state, held in getattr(self.ops.desk, "queue", ()):
            attempts: dict[int, int] = {}
            by_class: dict[str, dict[int, int]] = {}
            if held is not None:
                folded = np.zeros(state.size, dtype=np.int64)
                np.add.at(folded, np.arange(state.width) % state.size, held)
                attempts = {m: int(n) for m, n in enumerate(folded.tolist()) if n}
                for k, c in enumerate(state.segment.classes):
                    made = held[k * state.size : (k + 1) * state.size].tolist()
                    if any(made):
                        by_class[c.kind] = {m: int(n) for m, n in enumerate(made) if n}
            case = {
                "cohort": state.cohort.name,
                "kind": kind,
                "count": int(count),
                "raised": raised - day,
                "attempts": attempts,
            }
            if self._split(state.cohort.name):
                if state.segment.label:
                    case["supplier"] = state.segment.label
                if by_class:
                    case["by_class"] = by_class
            out.append(case)
        return out

    def export_state(self, day: int) -> dict:
        """Every cohort's state at the end of ``day`` (see `state_after`).

        A cohort run as several parts (supplier segments, hard and excluded
        classes) also lists each part's state under ``parts``, so a run
        continued from it takes up every part where it stood.
        """
        cohorts: dict[str, dict] = {}
        parts: dict[str, list[dict]] = {}
        for segment in self.cohorts:
            part = segment.export_state(day)
            name = segment.cohort.name
            cohorts[name] = (
                part if name not in cohorts else merge_states(cohorts[name], part)
            )
            if self._split(name):
                parts.setdefault(name, []).extend(
                    {"supplier": segment.segment.label, "kind": c.kind, **state}
                    for c, state in zip(
                        segment.segment.classes, segment.export_parts(day), strict=True
                    )
                )
        for name, listed in parts.items():
            cohorts[name]["parts"] = listed
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


def _held(state: CohortState, case) -> np.ndarray:
    """A reopened case's held installations, by the segment's columns."""
    held = np.zeros(state.width, dtype=np.int64)
    kinds = [c.kind for c in state.segment.classes]
    if case.by_class and all(kind in kinds for kind in case.by_class):
        for kind, made in case.by_class.items():
            base = kinds.index(kind) * state.size
            for m, n in made.items():
                held[base + min(int(m), state.size - 1)] += n
        return held
    for made, n in case.attempts.items():
        held[min(int(made), state.size - 1)] += n
    return held


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
    model = _Model(env, scenario, with_inputs_from(scenario, streams))
    env.run(until=scenario.horizon_days)
    return model.collect(replication)


def state_after(scenario: Scenario, seed: int, replication: int, day: int) -> dict:
    """The state at the end of ``day`` of replication ``replication``.

    The replication is simulated again up to that day (it draws the same numbers),
    and its state exported as ``{"date", "cohorts": {name: initial_state},
    "operations_state", "inputs_from"}``: the partition, with queued retries,
    stalls, rollbacks and restorations by (attempts made, days until due), the
    ramp policy's state (`Policy.export_state`) and whose input draws the future
    keeps. `Scenario.starting_from` turns it into a scenario that continues the
    run from the next day.
    """
    if not 0 <= day < scenario.horizon_days:
        raise ValueError(
            f"day {day} is outside the horizon (0..{scenario.horizon_days - 1})"
        )
    env = simpy.Environment()
    model = _Model(
        env, scenario, with_inputs_from(scenario, Streams(seed, replication))
    )
    env.run(until=day + 1)
    state = model.export_state(day)
    # whose inputs this future has: this replication's, or the one it continues
    pinned = scenario.inputs_from
    state["inputs_from"] = (
        {"seed": seed, "replication": replication}
        if pinned is None
        else {"seed": pinned.seed, "replication": pinned.replication}
    )
    return state
