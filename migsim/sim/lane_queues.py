"""Per-replication queues of the block engine: uniform streams and due retries.

`Column` holds one per-unit stream (`streams.UnitStreams.generator`) for every
replication of a block, read in order and refilled in growing chunks, so the
k-th attempt of a column of replication r takes the k-th uniform of r's stream.
`Ready` holds the retries that came due and wait to be taken, oldest due day
first, for every replication at once. Uniforms are multiples of 2**-53, so
"u falls at or above edge e" is the integer test ``u * 2**53 >= ceil(e * 2**53)``
(`edge_keys`): with the replication in the high bits (`REPLICATION_KEY`), one
`numpy.searchsorted` reads every replication's own table at once, exactly.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from migsim.sim.allocation import take_in_order

__all__ = [
    "CellTable",
    "FIRST_READ",
    "MAX_BLOCK",
    "MAX_READ",
    "REPLICATION_KEY",
    "UNIT",
    "Column",
    "Ready",
    "edge_keys",
]

#: 2**53: a uniform times UNIT is an exact integer (numpy's doubles are k / 2**53).
UNIT = float(1 << 53)
#: Keys of replication r start at r * REPLICATION_KEY (2**54 > any uniform key).
REPLICATION_KEY = 1 << 54
#: Replications a block may hold: keys stay within int64.
MAX_BLOCK = 256
#: Uniforms a stream reads at its first refill; later refills double, to this.
FIRST_READ, MAX_READ = 256, 4096


#: A `CellTable` looks up a failing key in 2**LOOKUP_BITS bins of its range.
LOOKUP_BITS = 12


def edge_keys(edges: np.ndarray) -> np.ndarray:
    """Integer edges: u >= e exactly when u * UNIT >= the key (see module doc)."""
    return np.ceil(np.asarray(edges) * UNIT).astype(np.int64)


class Column:
    """One column's per-unit uniforms for every replication of the block."""

    def __init__(self, generators: list[np.random.Generator]):
        self.generators = generators
        self.buffers = [np.empty(0)] * len(generators)
        self.pos = np.zeros(len(generators), dtype=np.int64)
        self.size = np.zeros(len(generators), dtype=np.int64)
        self.read = np.full(len(generators), FIRST_READ, dtype=np.int64)

    def take(self, reps: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The next ``counts[i]`` uniforms of replication ``reps[i]``, in order."""
        for r in np.flatnonzero(self.pos[reps] + counts > self.size[reps]).tolist():
            self._refill(int(reps[r]), int(counts[r]))
        pos = self.pos[reps]
        buffers = self.buffers
        out = np.concatenate(
            [
                buffers[r][p : p + n]
                for r, p, n in zip(
                    reps.tolist(), pos.tolist(), counts.tolist(), strict=True
                )
            ]
        )
        self.pos[reps] = pos + counts
        return out

    def keep(self, live: np.ndarray) -> None:
        """Keep only the replications at positions ``live`` (in order)."""
        self.generators = [self.generators[r] for r in live.tolist()]
        self.buffers = [self.buffers[r] for r in live.tolist()]
        self.pos, self.size, self.read = (
            self.pos[live],
            self.size[live],
            self.read[live],
        )

    def _refill(self, r: int, need: int) -> None:
        tail = self.buffers[r][self.pos[r] :]
        words = max(int(self.read[r]), need - len(tail))
        self.read[r] = min(2 * self.read[r], MAX_READ)
        fresh = self.generators[r].random(words)
        self.buffers[r] = np.concatenate([tail, fresh]) if len(tail) else fresh
        self.pos[r] = 0
        self.size[r] = len(self.buffers[r])


class Ready:
    """Retries due and not yet taken, by due day (oldest first), for every
    replication: a queue of (rep, made) rows in one array, so taking reads
    a view, and only the rows a day's counts can reach."""

    def __init__(self, n: int, width: int, order: np.ndarray | None = None):
        # the order retries of one due day are taken in: by column (attempts
        # made), most first; with classes, most attempts made, then class
        order = np.arange(width)[::-1] if order is None else order
        self.order = np.ascontiguousarray(order, dtype=np.int64)
        self.inverse = np.argsort(self.order)
        self.rows_held = np.zeros((n, 8, width), dtype=np.int64)
        self.totals = np.zeros((n, 8), dtype=np.int64)  # per row
        self.head = self.tail = 0
        #: The compiled passes (`lane_kernel.kernels`), set by a lane that
        #: reads with them: `take` in one pass instead of a dozen numpy calls.
        self.kernel: ModuleType | None = None

    @property
    def rows(self) -> int:
        return self.tail - self.head

    def reserve(self) -> None:
        """Room for one more row at the back (`append`'s, or a kernel's:
        `_kernels.release_lane` writes row ``tail``)."""
        if self.tail == self.rows_held.shape[1]:
            self._make_room()

    def append(self, due: np.ndarray) -> None:
        """Add the (rep, made) retries due today at the back."""
        self.reserve()
        self.rows_held[:, self.tail] = due
        self.totals[:, self.tail] = due.sum(axis=1)
        self.tail += 1

    def _make_room(self) -> None:
        held = self.rows_held[:, self.head : self.tail]
        totals = self.totals[:, self.head : self.tail]
        size = max(8, 2 * held.shape[1])
        self.rows_held = np.zeros((held.shape[0], size, held.shape[2]), np.int64)
        self.totals = np.zeros((held.shape[0], size), dtype=np.int64)
        self.rows_held[:, : held.shape[1]] = held
        self.totals[:, : held.shape[1]] = totals
        self.head, self.tail = 0, held.shape[1]

    def take(self, count: np.ndarray) -> np.ndarray:
        """Take up to ``count[r]`` in order (oldest due day, then `order`):
        (rep, column) taken.

        A replication whose count covers all it holds takes it all; only the
        few whose count ends inside their queue are read row by row.
        """
        head, tail = self.head, self.tail
        if self.kernel is not None:  # one compiled pass, the same counts
            taken, self.head = self.kernel.take_ready(
                self.rows_held,
                self.totals,
                head,
                tail,
                self.order,
                np.ascontiguousarray(count, dtype=np.int64),
            )
            return taken
        held = self.totals[:, head:tail].sum(axis=1)
        taken = np.zeros((len(count), self.rows_held.shape[2]), dtype=np.int64)
        whole = np.flatnonzero((count >= held) & (held > 0))
        if len(whole):
            taken[whole] = self.rows_held[whole, head:tail].sum(axis=1)
            self.rows_held[whole, head:tail] = 0
            self.totals[whole, head:tail] = 0
        part = np.flatnonzero((count > 0) & (count < held))
        if len(part):
            window = self.rows_held[part, head:tail]  # (rep, due day, made)
            ordered = window[:, :, self.order]
            order = ordered.reshape(len(part), -1)  # most made first
            took = take_in_order(order, count[part])
            by_due = took.reshape(window.shape)[:, :, self.inverse]
            self.rows_held[part, head:tail] = window - by_due
            self.totals[part, head:tail] -= by_due.sum(axis=2)
            taken[part] = by_due.sum(axis=1)
        left = np.flatnonzero(self.totals[:, head:tail].any(axis=0))
        self.head = head + int(left[0]) if len(left) else tail
        return taken

    def keep(self, live: np.ndarray) -> None:
        self.rows_held = self.rows_held[live]
        self.totals = self.totals[live]


class CellTable:
    """Every replication's attempt table, read for failing attempts.

    ``ints`` (rep, cells - 1) are the tables' edges as keys (`edge_keys`); the
    first is the success edge, so a failing key lies in [ints[r, 0], UNIT).
    That range is cut into 2**LOOKUP_BITS bins; a bin holds the cell its first
    key falls in, and a key steps forward over the few edges inside its bin to
    its own cell: exactly ``searchsorted(ints[r], key, "right")``, at a fraction
    of a binary search's cost over every replication's edges.
    """

    def __init__(self, ints: np.ndarray):
        n, size = ints.shape
        self.floor = ints[:, 0].copy()
        width = (1 << 53) - self.floor
        bits = np.frexp(width.astype(float))[1].astype(np.int64)  # bit length
        self.shift = np.maximum(bits - LOOKUP_BITS, 0)
        bins = 1 << LOOKUP_BITS
        # an edge's first bin whose start lies at or above it
        step = np.left_shift(1, self.shift)[:, None]
        first = np.minimum(
            (ints - self.floor[:, None] + step - 1) >> self.shift[:, None], bins
        )
        # a bin's cell: how many edges lie at or below its start (edges above
        # every bin's start count for none)
        dtype = np.int16 if size < 1 << 15 else np.int32
        self.lookup = np.zeros((n, bins), dtype=dtype)
        rows = np.broadcast_to(np.arange(n)[:, None], first.shape)
        inside = first < bins
        np.add.at(self.lookup, (rows[inside], first[inside]), 1)
        np.cumsum(self.lookup, axis=1, out=self.lookup)
        self.edges = np.concatenate([ints, np.full((n, 1), 1 << 62)], axis=1)
        self.rows = np.arange(n)  # each replication's row, as replications stop

    def find(self, who: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """The cell of each failing ``keys[i]`` in replication ``who[i]``'s table."""
        row = self.rows[who]
        bins = (keys - self.floor[row]) >> self.shift[row]
        cell = self.lookup.ravel()[(row << LOOKUP_BITS) + bins].astype(np.int64)
        edges = self.edges.ravel()
        base = row * self.edges.shape[1]
        ahead = np.flatnonzero(keys >= edges[base + cell])
        while len(ahead):  # over the edges inside the key's bin
            cell[ahead] += 1
            ahead = ahead[keys[ahead] >= edges[base[ahead] + cell[ahead]]]
        return cell

    def keep(self, live: np.ndarray) -> None:
        """Keep only the replications at positions ``live`` (in order): their
        rows stay where they are (copying the look-ups would cost more)."""
        self.rows = self.rows[live]
