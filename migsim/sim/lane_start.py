"""A lane's mid-programme start: each replication's counts and ledgers as its
scalar state placed them (`cohort.CohortState._start_from`), taken up by the
block engine's `lanes.Lane`."""

from __future__ import annotations

import numpy as np

from migsim.sim.cohort import CohortState

__all__ = ["last_due", "take_up"]


def _rows_held(ledger: np.ndarray, horizon: int) -> list[int]:
    """Rows (days) of a scalar ledger holding anything due within the horizon."""
    flat = ledger.reshape(len(ledger), -1)[:horizon]
    return np.flatnonzero(flat.any(axis=1)).tolist()


def last_due(state: CohortState, horizon: int) -> int:
    """The latest day a mid-programme start placed anything on (0: none),
    leaving out stalls held for a release date."""
    if state.cohort.initial_state is None:
        return 0
    rows = [0, *_rows_held(state.retry_due, horizon)]
    rows += _rows_held(state.restore_due, horizon)
    if state.recover_pmf is not None:
        rows += _rows_held(state.recover_due, horizon)
    floor = state.release_day
    rows += [r for r in _rows_held(state.stalls.cells, horizon) if r != floor]
    return max(rows)


def take_up(lane, states: list[CohortState], horizon: int) -> None:
    """Put each replication's counts and ledgers on ``lane`` (a `lanes.Lane`,
    whose ledgers are rings of `lanes.Lane.ring` days) as its state holds them."""
    for name in (
        "retry_queued",
        "stalled",
        "rolled_back",
        "impaired",
        "migrated",
        "dumb",
        "abandoned",
        "awaiting_site_visit",
        "prepayment_dumb",
        "awaiting_recovery",
    ):
        getattr(lane, name)[:] = [getattr(s, name) for s in states]
    for r, state in enumerate(states):
        floor = state.release_day
        for row in _rows_held(state.stalls.cells, horizon):
            cells = state.stalls.cells[row]  # (then, column)
            if floor is not None and row >= lane.ring:  # held for its release
                lane.held[r] += cells
            else:
                lane.stall_cells[row, :, r] += cells.T
        for row in _rows_held(state.retry_due, horizon):
            lane.retry_due[row, :, r] += state.retry_due[row]
        for row in _rows_held(state.restore_due, horizon):
            lane.restore_due[row, r] += state.restore_due[row]
        if lane.recover_days is not None:
            for row in _rows_held(state.recover_due, horizon):
                lane.recover_due[row, :, r] += state.recover_due[row]
    dues = sorted({due for s in states for due, _ in s.retries})
    for due in dues:  # queued retries, oldest due first
        queued = np.zeros((lane.n, lane.size), dtype=np.int64)
        for r, state in enumerate(states):
            for when, counts in state.retries:
                if when == due:
                    queued[r] += counts
        lane.ready.append(queued)
