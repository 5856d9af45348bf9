"""A segment's stalls at run time: due-day ledgers with their results drawn ahead.

A stall's resolution day, whether it then completes, and a failure's retry
delay all come from the stall's own uniform (read with its attempt's, see
`draws`), so they are known when the stall is scheduled. The ledgers hold, by
due day and column (class x attempts made): every stall due, those of them
that will fail, and those failures by retry delay. A change of cap or rules
moves the day a stall is attempted, never whether it completes or how long it
waits.
"""

from __future__ import annotations

import numpy as np

__all__ = ["StallLedgers"]


class StallLedgers:
    """Stalls by due day and column, the failing ones, their retry delays.

    Parameters
    ----------
    rows, width
        Ledger rows (days, the last collecting anything beyond) and columns.
    days
        The stall resolution delay's days.
    retry_days
        The retry delay's days (``None``: failures are never retried).
    last_columns
        Columns of a last attempt: their failures are abandoned, not retried.
    """

    def __init__(
        self,
        rows: int,
        width: int,
        days: np.ndarray,
        retry_days: np.ndarray | None,
        last_columns: list[int],
    ):
        self.days = days
        self.consecutive = _consecutive(days)
        self.due = np.zeros((rows, width), dtype=np.int64)
        self.failing = np.zeros((rows, width), dtype=np.int64)
        self.retry_days = retry_days
        self.retry = (
            None
            if retry_days is None
            else np.zeros((rows, len(retry_days), width), dtype=np.int64)
        )
        self.last = frozenset(last_columns)

    def schedule(
        self, column: int, table: np.ndarray, day: int, floor: int | None
    ) -> None:
        """Add one column's stalls raised (or worked) on ``day``.

        ``table`` counts them by (resolution delay, then): then 0 completes,
        1 + r fails and retries after retry delay r. ``floor``: none resolves
        before that day (a release date, or the day ELS worked it).
        """
        due = day + self.days
        if floor is not None:
            due = np.minimum(np.maximum(due, floor), len(self.due) - 1)
            self._add(column, due, None, True, table)
        elif self.consecutive:
            self._add(column, due, slice(int(due[0]), int(due[-1]) + 1), False, table)
        else:
            self._add(column, due, None, False, table)

    def place(self, row: int, column: int, then: np.ndarray) -> None:
        """A group known to be due on ``row`` (a mid-programme start), counted by
        then (as in `schedule`)."""
        self._add(column, np.array([row]), slice(row, row + 1), False, then[None, :])

    def _add(self, column, due, span, floored, table) -> None:
        """``span``: ``due`` as a slice; ``floored``: due days may coincide."""
        total = _rows(table)
        _put(self.due[:, column], due, span, floored, total)
        fails = total - table[:, 0]
        if not fails.any():
            return
        _put(self.failing[:, column], due, span, floored, fails)
        if self.retry is not None and column not in self.last:
            # (failures from a last attempt are abandoned, not retried)
            _put(self.retry[:, :, column], due, span, floored, table[:, 1:])

    def retry_into(self, ledger: np.ndarray, day: int) -> None:
        """Put the retries of the stalls failing on ``day`` on the retry ledger."""
        ledger[day + self.retry_days] += self.retry[day]


def _rows(table: np.ndarray) -> np.ndarray:
    """Row sums (the ufunc directly: ``sum``'s wrapper costs more on tiny tables)."""
    return np.add.reduce(table, axis=1)


def _consecutive(days: np.ndarray) -> bool:
    return int(days[-1]) - int(days[0]) + 1 == len(days)


def _put(ledger, due, span, floored, counts) -> None:
    """Add counts by due day to one column of a ledger."""
    if span is not None:  # consecutive days: a slice is cheapest
        ledger[span] += counts
    elif floored:  # due days coincide after a floor
        np.add.at(ledger, due, counts)
    else:
        ledger[due] += counts
