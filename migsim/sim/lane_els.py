"""ELS / MCC across a block of replications: one first-in-first-out desk each.

The block engine's `els.ElsDesk`. Every replication's desk holds the same
sequence of case batches (a batch per cohort, kind and day, in the order the
scalar engine raises them), each with its own count per replication (zero where
that replication raised none, which takes nothing and changes no order). A
working day's capacity is taken batch by batch, oldest first, for every
replication at once; a stall or fix-forward batch handed back is split, where
only part of it is worked, most attempts made first, as `els._split_off` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from migsim.sim.allocation import take_in_order

__all__ = ["BlockDesk"]


class BlockDesk:
    """The ELS / MCC desks of a block's replications.

    ``lanes``: the block's lanes (their ``worked`` takes batches back);
    ``working``: the calendar's working days (the same in every replication).
    """

    def __init__(self, els, working: np.ndarray, n: int, n_cohorts: int, width: int):
        self.capacity = els.daily_capacity
        self.kinds = frozenset(els.cases_from)
        self.gated = self.kinds & {"stall", "fix_forward"}
        self.working = working
        self.n, self.width = n, width
        self.counts = np.zeros((n, 16), dtype=np.int64)  # (rep, batch)
        self.held = np.zeros((n, 16, width), dtype=np.int64)  # gated batches
        self.batches: list[tuple[int, str, Any]] = []  # (raised, kind, lane)
        self.head = 0
        self.open = np.zeros(n, dtype=np.int64)
        self.open_by_cohort = np.zeros((n, n_cohorts), dtype=np.int64)
        self.raised = np.zeros(n, dtype=np.int64)  # today
        self.worked = np.zeros(n, dtype=np.int64)  # today

    def raise_cases(
        self, day: int, kind: str, count: np.ndarray, lane, by_attempt=None
    ) -> bool:
        """Queue each replication's ``count`` cases (one batch); True when the
        desk hands them back when worked (stalls, fix forwards)."""
        if kind not in self.kinds or not count.any():
            return False
        gated = kind in self.gated
        row = self._next_row()
        self.counts[:, row] = count
        if gated:
            self.held[:, row, : by_attempt.shape[1]] = by_attempt
        self.batches.append((day, kind, lane))
        self.open += count
        self.open_by_cohort[:, lane.index] += count
        self.raised += count
        return gated

    def take_up(self, queues: list, lanes: list) -> None:
        """A mid-programme start's open cases, as each replication's scalar
        desk reopened them (`engine._Model._reopen_cases`): the same batches
        in every replication, in order."""
        first = queues[0]
        for e, (raised, kind, _, state, _) in enumerate(first):
            lane = next(lane for lane in lanes if lane.segment == state.segment)
            count = np.array([queue[e][2] for queue in queues], dtype=np.int64)
            row = self._next_row()
            self.counts[:, row] = count
            for r, queue in enumerate(queues):
                held = queue[e][4]
                if held is not None:
                    self.held[r, row, : len(held)] = held
            self.batches.append((raised, kind, lane))
            self.open += count
            self.open_by_cohort[:, lane.index] += count

    def _next_row(self) -> int:
        """The row the next batch takes (room made when the arrays are full)."""
        if len(self.batches) == self.counts.shape[1]:
            self._grow()
        return len(self.batches)

    def _grow(self) -> None:
        """Room for more batches: those worked out (before the head) are
        dropped first, and the arrays doubled only when that is not enough."""
        head = self.head
        self.batches = self.batches[head:]
        self.head = 0
        kept = len(self.batches)
        size = self.counts.shape[1]
        if 2 * kept > size:
            size *= 2
        counts = np.zeros((self.n, size), dtype=np.int64)
        held = np.zeros((self.n, size, self.width), dtype=np.int64)
        counts[:, :kept] = self.counts[:, head:]
        held[:, :kept] = self.held[:, head:]
        self.counts, self.held = counts, held

    def work(self, day: int) -> None:
        """Work up to the capacity of cases raised before today, oldest first:
        each batch takes what the capacity leaves after the batches before it."""
        if not self.working[day] or not self.open.any():
            return
        head = end = self.head
        while end < len(self.batches) and self.batches[end][0] < day:
            end += 1  # raised today: worked from tomorrow
        counts = self.counts[:, head:end]  # a view: worked cases leave it
        before = np.cumsum(counts, axis=1) - counts
        taken = np.minimum(np.maximum(self.capacity - before, 0), counts)
        handed: dict[tuple[int, str], tuple[Any, list]] = {}  # back to lanes
        for j in np.flatnonzero(taken.any(axis=0)).tolist():
            raised, kind, lane = self.batches[head + j]
            if kind in self.gated:
                part = _split_off(self.held[:, head + j, : lane.size], taken[:, j])
                handed.setdefault((id(lane), kind), (lane, []))[1].append(
                    (raised, part)
                )
            self.open_by_cohort[:, lane.index] -= taken[:, j]
        counts -= taken
        worked = taken.sum(axis=1)
        self.open -= worked
        self.worked += worked
        for (_, kind), (lane, batches) in handed.items():
            lane.worked(kind, batches, day)  # each lane's streams, batch by batch
        while self.head < len(self.batches) and not self.counts[:, self.head].any():
            self.head += 1

    def end_of_day(self) -> None:
        self.raised[:] = 0
        self.worked[:] = 0

    def keep(self, live: np.ndarray) -> None:
        self.counts, self.held = self.counts[live], self.held[live]
        self.open, self.open_by_cohort = self.open[live], self.open_by_cohort[live]
        self.raised, self.worked = self.raised[live], self.worked[live]
        self.n = len(live)


def _split_off(held: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Take ``taken[r]`` from (rep, column) counts, most attempts made first
    (the held counts are reduced in place); the part taken."""
    part = take_in_order(held[:, ::-1], taken)[:, ::-1]
    held -= part
    return part
