"""A segment's stalls at run time: one ledger, results drawn ahead.

A stall's resolution day, whether it then completes, and a failure's retry
delay all come from the stall's own uniform (read with its attempt's, see
`draws`), so they are known when the stall is scheduled. The ledger counts
stalls by due day, then (0: completes; 1 + r: fails and retries after retry
delay r) and column (class x attempts made): scheduling is one addition, and
the day's resolutions are read off one row. A change of cap or rules moves the
day a stall is attempted, never whether it completes or how long it waits.
"""

from __future__ import annotations

import numpy as np

__all__ = ["StallLedgers"]


class StallLedgers:
    """Stalls by due day, then and column.

    Parameters
    ----------
    rows, width
        Ledger rows (days, the last collecting anything beyond) and columns.
    days
        The stall resolution delay's days.
    retry_days
        The retry delay's days (``None``: there is no rollback section, so no
        stall may fail).
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
        self.retry_days = retry_days
        then = 1 + (1 if retry_days is None else len(retry_days))
        self._shape = (rows, then, width)
        self._cells: np.ndarray | None = None
        self.rows = rows
        self.last = sorted(last_columns)
        # 0 on a last attempt's columns, 1 elsewhere: one multiplication drops
        # the abandoned failures (cheaper than a copy and a fancy assignment)
        self.keep = np.ones(width, dtype=np.int64)
        self.keep[self.last] = 0
        self.retry_span = retry_days is not None and _consecutive(retry_days)
        # the delays' first and last days as Python ints: slice bounds
        self.first, self.final = int(days[0]), int(days[-1])
        if retry_days is not None:
            self.retry_first = int(retry_days[0])
            self.retry_final = int(retry_days[-1])

    @property
    def cells(self) -> np.ndarray:
        """Stalls by (due day, then, column), made on first use: the block
        engine builds every replication's scalar state for its set-up and
        keeps its stalls on its own lanes, so a ledger it never touches costs
        no memory (it was over half of a block's memory per replication)."""
        if self._cells is None:
            self._cells = np.zeros(self._shape, dtype=np.int64)
        return self._cells

    @property
    def due(self) -> np.ndarray:
        """Stalls due, by day and column."""
        return self.cells.sum(axis=1)

    def schedule(
        self, column: int, table: np.ndarray, day: int, floor: int | None
    ) -> None:
        """Add one column's stalls raised (or worked) on ``day``.

        ``table`` counts them by (resolution delay, then). ``floor``: none
        resolves before that day (a release date, or the day ELS worked it).
        """
        if floor is None and self.consecutive:  # a slice view: the cheapest addition
            self.cells[day + self.first : day + self.final + 1, :, column] += table
            return
        due = day + self.days
        if floor is not None:  # due days may coincide after the floor
            due = np.minimum(np.maximum(due, floor), self.rows - 1)
            np.add.at(self.cells[:, :, column], due, table)
        else:
            self.cells[due, :, column] += table

    def place(self, row: int, column: int, then: np.ndarray) -> None:
        """A group known to be due on ``row`` (a mid-programme start), by then."""
        self.cells[row, :, column] += then

    def resolve(self, day: int) -> tuple[int, np.ndarray | None]:
        """Stalls due on ``day``: how many, and those failing by column (``None``
        when none fails)."""
        today = self.cells[day]
        due = np.add.reduce(today, axis=0)
        n_due = sum(due.tolist())
        if not n_due:
            return 0, None
        failing = due - today[0]
        return n_due, failing if failing.any() else None

    def retry_into(self, ledger: np.ndarray, day: int) -> None:
        """Put the retries of the stalls failing on ``day`` on the retry ledger
        (failures from a last attempt are abandoned, so left out)."""
        retries = self.cells[day, 1:]
        if self.last:
            retries = retries * self.keep
        days = self.retry_days
        assert days is not None  # a stall can fail only with a rollback section
        if self.retry_span:
            ledger[day + self.retry_first : day + self.retry_final + 1] += retries
        else:
            ledger[day + days] += retries


def _consecutive(days: np.ndarray) -> bool:
    return int(days[-1]) - int(days[0]) + 1 == len(days)
