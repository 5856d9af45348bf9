"""A compiled lane's day: a `lanes.Lane`'s arrays handed to the kernels.

A lane that reads with the kernels (`lane_kernel`) and holds no stalls for a
release date (`lanes.Lane.compiled`) runs its day in two calls: `start_day`
(stalls due resolve, retries and eligible installations join the queue) and,
for its share of the cap, `take_and_attempt` (a lane with latent defects takes
and attempts in separate passes: what a defect strikes depends on what was
taken, and its hits are read column by column). Each updates the lane's arrays in
place, as its numpy passes do, and tests hold the two equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from migsim.sim.lane_outcomes import FLOW, kernel_inputs

if TYPE_CHECKING:
    from migsim.sim.lanes import Lane

__all__ = ["start_day", "take_and_attempt"]


def start_day(lane: Lane, day: int) -> None:
    """`lanes.Lane.resolve_stalls` then `lanes.Lane.release` by
    `_kernels.start_lane_day` (stalls due resolve; retries due rejoin the ready
    queue, restorations, eligibility), then remote recovery, whose streams are
    read in Python: the numpy passes' order."""
    assert lane.kernel is not None
    ready = lane.ready
    ready.reserve()  # the kernel writes the queue's next row in place
    ready.tail = lane.kernel.start_lane_day(
        day,
        *kernel_inputs(lane),
        lane.eligible,
        -1 if lane.up_front is None else lane.up_front,
        lane.retry_queued,
        lane.pending,
        lane.fresh,
        FLOW["restorations"],
        ready.rows_held,
        ready.totals,
        ready.tail,
    )
    if lane.recover_days is not None:
        lane._recover(day)


def take_and_attempt(
    lane: Lane, count: np.ndarray, day: int, hot: np.ndarray, hold: frozenset[str]
) -> np.ndarray:
    """`lanes.Lane.take` then `lanes.Lane.attempt` by `_kernels.attempt_lane`:
    ``count[r]`` taken and attempted (``hot[r]``: at the stressed rates; kinds
    in ``hold`` wait for ELS to work their case); the (rep, outcome, column)
    counts, for the desk's cases."""
    assert lane.kernel is not None and lane.streams is not None
    ready = lane.ready
    tables = tuple(lane._kernel_inputs()[0])
    ready.head, outcomes = lane.kernel.attempt_lane(
        np.ascontiguousarray(count, dtype=np.int64),
        day,
        "stall" in hold,
        "fix_forward" in hold,
        hot,
        lane.success,
        lane.stressed_success,
        ready.rows_held,
        ready.totals,
        ready.head,
        ready.tail,
        ready.order,
        lane.fresh,
        lane.retry_queued,
        lane.stressed_attempts,
        FLOW["attempts"],
        lane.per_class,
        lane.streams.state,
        lane.streams.buffer,
        tables + tables[:1] * (3 - len(tables)),  # one signature: 3 classes
        lane.cells,
        *kernel_inputs(lane),
    )
    return outcomes
