"""A segment's stalls at run time: due-day ledgers with their results drawn ahead.

A stall's resolution day, whether it then completes, and a failure's retry
delay all come from the stall's own uniform (what its attempt left of it, see
`draws`), drawn when the stall is scheduled. So the ledgers hold, by due day and
column (class x attempts made): every stall due, those of them that will fail,
and those failures by retry delay. A change of cap or rules moves the day a
stall is attempted, never whether it completes or how long it waits.
"""

from __future__ import annotations

import numpy as np

from migsim.sim.draws import Groups
from migsim.sim.streams import Categories

__all__ = ["StallLedgers"]


class StallLedgers:
    """Stalls by due day and column, the failing ones, their retry delays.

    Parameters
    ----------
    rows, width
        Ledger rows (days, the last collecting anything beyond) and columns.
    pmf
        The stall resolution delay's day table.
    then_success
        The probability that a stall completes when it resolves.
    retry_pmf
        The retry delay's day table (``None``: no failures are retried).
    last_columns
        Columns of a last attempt: their failures are abandoned, not retried.
    """

    def __init__(
        self,
        rows: int,
        width: int,
        pmf: tuple[np.ndarray, np.ndarray],
        then_success: float,
        retry_pmf: tuple[np.ndarray, np.ndarray] | None,
        last_columns: list[int],
    ):
        self.days = pmf[0]
        self.table = Categories(pmf[1]) if len(self.days) > 1 else None
        self.consecutive = _consecutive(self.days)
        self.then_success = then_success
        self.due = np.zeros((rows, width), dtype=np.int64)
        self.failing = np.zeros((rows, width), dtype=np.int64)
        retried = retry_pmf is not None and then_success < 1.0
        self.retry_days = retry_pmf[0] if retried else None
        # then: complete (category 0), or fail and retry after delay r (1 + r)
        self.then = None
        if then_success < 1.0:
            fail = 1.0 - then_success
            retry = retry_pmf[1] if retried else np.ones(1)
            self.then = Categories(np.concatenate([[then_success], fail * retry]))
        self.retry = (
            np.zeros((rows, len(self.retry_days), width), dtype=np.int64)
            if retried
            else None
        )
        self.last = frozenset(last_columns)

    def schedule(self, groups: Groups, day: int, floor: int | None) -> None:
        """Stalls raised (or worked) on ``day``, one uniform each; ``floor``:
        none resolves before that day (a release date, or the day ELS worked it)."""
        due = day + self.days
        span = None
        if floor is not None:
            due = np.minimum(np.maximum(due, floor), len(self.due) - 1)
        elif self.consecutive:
            span = slice(int(due[0]), int(due[-1]) + 1)
        for column, uniforms in groups:
            if self.table is None:  # a fixed delay
                slots, rest = np.zeros(len(uniforms), dtype=np.intp), uniforms
            else:
                slots, rest = self.table.split(uniforms)
            self._put(column, due, span, floor is not None, slots, rest)

    def place(self, row: int, column: int, uniforms: np.ndarray) -> None:
        """A group known to be due on ``row`` (a mid-programme start)."""
        slots = np.zeros(len(uniforms), dtype=np.intp)
        self._put(column, np.array([row]), slice(row, row + 1), False, slots, uniforms)

    def _put(self, column, due, span, floored, slots, rest) -> None:
        """Stall i resolves on ``due[slots[i]]``; what is left of its uniform,
        ``rest[i]``, read on the `then` table, says whether it completes
        (category 0) or fails and after which retry delay (category 1 + r).
        ``span``: ``due`` as a slice; ``floored``: due days may coincide."""
        if self.then is None:  # every stall completes
            counts = np.bincount(slots, minlength=len(due))
            _add(self.due[:, column], due, span, floored, counts)
            return
        width = self.then.size
        cells = slots * width + self.then.of(rest)
        table = np.bincount(cells, minlength=len(due) * width).reshape(-1, width)
        _add(self.due[:, column], due, span, floored, _rows(table))
        failing = table[:, 1:]
        fails = _rows(failing)
        if not fails.any():
            return
        _add(self.failing[:, column], due, span, floored, fails)
        if self.retry is not None and column not in self.last:
            # (abandoned when they fail from a last attempt)
            _add(self.retry[:, :, column], due, span, floored, failing)

    def retry_into(self, ledger: np.ndarray, day: int) -> None:
        """Put the retries of the stalls failing on ``day`` on the retry ledger."""
        ledger[day + self.retry_days] += self.retry[day]


def _rows(table: np.ndarray) -> np.ndarray:
    """Row sums (the ufunc directly: ``sum``'s wrapper costs more on tiny tables)."""
    return np.add.reduce(table, axis=1)


def _consecutive(days: np.ndarray) -> bool:
    return int(days[-1]) - int(days[0]) + 1 == len(days)


def _add(ledger, due, span, floored, counts) -> None:
    """Add counts by due day to one column of a ledger."""
    if span is not None:  # consecutive days: a slice is cheapest
        ledger[span] += counts
    elif floored:  # due days coincide after a floor
        np.add.at(ledger, due, counts)
    else:
        ledger[due] += counts
