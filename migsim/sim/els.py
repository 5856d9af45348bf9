"""ELS / MCC at run time: the desk that works cases first in, first out.

Early Life Support and the Migration Control Centre work a limited number of
cases per working day. A stall or fix forward whose case is queued resolves no
earlier than the day its case is worked, so a backlog slows recovery.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["ElsDesk", "NoDesk"]


class NoDesk:
    """No ELS section: cases are not counted and never gate anything."""

    open = 0

    def raise_cases(self, day, kind, count, state, by_attempt=None) -> bool:
        return False

    def work(self, day: int) -> None:
        return None


def _split_off(by_attempt: np.ndarray, count: int) -> np.ndarray:
    """Take ``count`` from counts by attempt number, most attempts made first."""
    part = np.zeros_like(by_attempt)
    for attempt in range(len(by_attempt) - 1, -1, -1):
        moved = min(count, int(by_attempt[attempt]))
        if moved:
            part[attempt] = moved
            by_attempt[attempt] -= moved
            count -= moved
            if not count:
                break
    return part


class ElsDesk:
    """ELS / MCC: a FIFO of case batches ``[day raised, kind, count, ...]``.

    On each working day, before anything else happens, the desk works up to
    ``daily_capacity`` cases raised on earlier days, oldest first (a batch may be
    split). A worked stall or fix-forward batch is handed back to its segment,
    which schedules its resolution on the later of its drawn delay's end and
    the day worked. Rollback and dumb cases are load only.
    """

    def __init__(
        self, capacity: int, kinds: Iterable[str], working: np.ndarray, n_cohorts: int
    ):
        self.capacity = capacity
        self.kinds = frozenset(kinds)
        self.gated = self.kinds & {"stall", "fix_forward"}
        self.working = working
        self.queue: deque[list[Any]] = deque()
        self.open = 0
        self.open_by_cohort = [0] * n_cohorts
        self.raised = 0  # today
        self.worked = 0  # today

    def raise_cases(
        self, day: int, kind: str, count: int, state, by_attempt=None
    ) -> bool:
        """Queue ``count`` cases; True when the desk will hand them back when worked."""
        if kind not in self.kinds or not count:
            return False
        gated = kind in self.gated
        held = by_attempt.copy() if gated else None
        self.queue.append([day, kind, count, state, held])
        self.open += count
        self.open_by_cohort[state.index] += count
        self.raised += count
        return gated

    def work(self, day: int) -> None:
        if not self.open or not self.working[day]:
            return
        left = self.capacity
        while left and self.queue:
            entry = self.queue[0]
            raised, kind, count, state, held = entry
            if raised >= day:
                break  # raised today: worked from tomorrow
            taken = min(left, count)
            if held is not None:
                part = held if taken == count else _split_off(held, taken)
                state.worked(kind, raised, part, day)
            if taken == count:
                self.queue.popleft()
            else:
                entry[2] = count - taken
            left -= taken
            self.open -= taken
            self.open_by_cohort[state.index] -= taken
            self.worked += taken
