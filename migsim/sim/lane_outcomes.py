"""What a day's attempts set going in a lane: their outcomes counted and what
follows each put on the lane's ledgers (`lanes.Lane.attempt`).

Stalls resolve after their delay (or wait for ELS to work their case), rollbacks
are retried after theirs (or abandoned on their class's last attempt), fix
forwards are restored, dumb devices wait for a site visit or recover remotely.
Two paths give the same numbers (tests hold them equal): one compiled pass
(`_kernels.schedule_lane`) for a lane that reads with the kernels and holds no
stalls for a release date, and whole-array numpy passes otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from migsim.sim.records import FLOWS

if TYPE_CHECKING:
    from migsim.sim.lanes import Lane

__all__ = ["FLOW", "OUTCOME_FLOWS", "kernel_inputs", "schedule"]

#: a flow's column in a lane's ``flows`` (rep, flow)
FLOW = {name: i for i, name in enumerate(FLOWS)}
#: the flows of the five outcomes, in outcome order
OUTCOME_FLOWS = np.array(
    [
        FLOW[name]
        for name in ("successes", "stalls", "rollbacks", "fix_forwards", "dumbs")
    ]
)


def schedule(lane: Lane, batch, counts, columns, day, hold) -> np.ndarray:
    """Count the outcomes of the attempts of ``columns`` ((column, rep,
    cells) failures ``counts`` of ``batch``) and schedule what follows,
    every column at once; kinds in ``hold`` wait for ELS to work their
    case (`lanes.Lane.worked`). (rep, outcome, column) counts."""
    if lane.compiled:  # one compiled pass
        assert lane.kernel is not None
        return lane.kernel.schedule_lane(
            counts,
            batch,
            columns,
            day,
            "stall" in hold,
            "fix_forward" in hold,
            *kernel_inputs(lane),
        )
    by = np.add.reduceat(counts, lane.starts, axis=2)  # (column, rep, outcome)
    by[:, :, 0] = batch[:, columns].T - by[:, :, 1:].sum(axis=2)
    total = by.sum(axis=0)
    lane.flows[:, OUTCOME_FLOWS] += total
    migrated, stall, rollback, fix_forward, dumb = total.T
    lane.migrated += migrated
    lane.stalled += stall
    if "stall" not in hold and stall.any():
        table = lane._block(counts, 1).reshape(*counts.shape[:2], *lane.stall_shape)
        if lane.held is None:
            rows = lane._rows(lane.stall_days, day)[:, None]
            lane.stall_cells[rows, columns] += table.transpose(2, 0, 1, 3)
        else:  # a release date holds some aside
            for column, part in zip(columns.tolist(), table, strict=True):
                lane._add_stalls(column, part, day, day)
    if rollback.any():
        _roll_back(lane, counts, by[:, :, 2], columns, day)
    lane.impaired += fix_forward
    if "fix_forward" not in hold and fix_forward.any():
        assert lane.restore_days is not None
        rows = lane._rows(lane.restore_days, day)
        lane.restore_due[rows] += lane._block(counts, 3).sum(axis=0).T
    if dumb.any():
        _dumb(lane, counts, dumb, columns, day)
    outcomes = np.zeros((lane.n, 5, lane.size), dtype=np.int64)
    outcomes[:, :, columns] = by.transpose(1, 2, 0)
    return outcomes


def kernel_inputs(lane: Lane) -> tuple:
    """What `_kernels.schedule_lane` reads besides the day's attempts, and
    all `_kernels.resolve_stalls` reads besides the day: the cells' layout
    and the delays (made once), and the counts and ledgers they add to (as
    they stand: keeping replications replaces them)."""
    if lane._schedule_made is None:
        spec = [*lane.starts[:5], lane.then]
        spec.append(-1 if lane.excluded_last is None else int(lane.excluded_last))
        spec.append(-1 if lane.recover_days is None else lane.recovered_cells)
        spec += [lane.prepayment_cell, FLOW["abandons"], *OUTCOME_FLOWS]
        spec += [FLOW["stall_completions"], FLOW["stall_failures"]]
        days = tuple(
            np.array([] if d is None else d, dtype=np.int64)  # writable
            for d in (
                lane.stall_days,
                lane.retry_days,
                lane.restore_days,
                lane.recover_days,
            )
        )
        lane._schedule_made = (np.array(spec, dtype=np.int64), days)
    spec, days = lane._schedule_made
    levels = (
        lane.migrated,
        lane.stalled,
        lane.rolled_back,
        lane.abandoned,
        lane.excluded,
        lane.impaired,
        lane.dumb,
        lane.prepayment_dumb,
        lane.awaiting_site_visit,
        lane.awaiting_recovery,
    )
    ledgers = (lane.stall_cells, lane.retry_due, lane.restore_due, lane.recover_due)
    return spec, days, lane.is_last, lane.flows, levels, ledgers


def _roll_back(lane: Lane, counts, rollback, columns, day) -> None:
    """Rollbacks ((column, rep) ``rollback`` of ``columns``): abandoned on
    their class's last attempt, else retried after their delay."""
    by_column = np.zeros((lane.n, lane.size), dtype=np.int64)
    by_column[:, columns] = rollback.T
    lane.rolled_back += rollback.sum(axis=0) - lane._abandon_lasts(by_column)
    retried = ~lane.is_last[columns]
    if retried.any():
        assert lane.retry_days is not None
        rows = lane._rows(lane.retry_days, day)[:, None]
        retries = lane._block(counts[retried], 2)  # (column, rep, delay)
        lane.retry_due[rows, columns[retried]] += retries.transpose(2, 0, 1)


def _dumb(lane: Lane, counts, dumb, columns, day) -> None:
    """Dumb devices: awaiting a site visit, or remote recovery after its delay."""
    lane.dumb += dumb
    lane.prepayment_dumb += counts[:, :, lane.prepayment_cell].sum(axis=0)
    if lane.recover_days is None:
        lane.awaiting_site_visit += dumb
        return
    recovered = lane._block(counts, 4)[:, :, : lane.recovered_cells]
    n_recovered = recovered.sum(axis=(0, 2))
    lane.awaiting_recovery += n_recovered
    lane.awaiting_site_visit += dumb - n_recovered
    rows = lane._rows(lane.recover_days, day)[:, None]
    lane.recover_due[rows, columns] += recovered.transpose(2, 0, 1)
