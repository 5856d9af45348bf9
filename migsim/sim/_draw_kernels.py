"""Compiled (numba) draws of the block engine: per-unit uniforms and their cells.

Imported only through `_kernels` (and so `lane_kernel.kernels`: numba is loaded
on first use, never at ``import migsim``). Every kernel gives exactly what the
numpy passes of `lanes.Lane._draw` and `lane_queues.Column.take` give: each
stream's uniforms are numpy's own, word for word (the kernels run numpy's
Philox4x64-10 from each generator's saved counter, key and buffer, and make a
double of a word's top 53 bits as ``Generator.random`` does; calling numpy's
``next_double`` from the kernel gave the same numbers at 10.5 ns a uniform
against 7 ns), read in the same order, and the cell of a failing uniform is the
`lane_queues.CellTable` look-up.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from migsim.sim.lane_queues import UNIT

__all__ = [
    "compiled",
    "draw_cells",
    "draw_cells_struck",
    "draw_lane",
    "draw_uniforms",
    "read_given",
    "stalls_worked",
]


_M0, _M1 = np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157)
_W0, _W1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B)
_ONE, _SHIFT = np.uint64(1), np.uint64(11)
_HALF_ULP = 1.0 / UNIT  # 2**-53


def compiled(function):
    """``njit`` with numba's on-disk cache (beside this module, or numba's
    user-wide cache where the install is read-only); with no writable cache
    directory at all (a read-only install and home), compiled in each process
    rather than failing the import (numba raises RuntimeError at decoration)."""
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(nogil=True)(function)


@intrinsic
def _mulhilo(typingctx, a, b):
    """The high and low words of the 128-bit product of two uint64."""
    signature = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, sig, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        low = builder.trunc(product, ir.IntType(64))
        high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), low.type)
        return context.make_tuple(builder, sig.return_type, (high, low))

    return signature, codegen


@njit(inline="always")
def _round(c0, c1, c2, c3, k0, k1):
    hi0, lo0 = _mulhilo(_M0, c0)  # type: ignore[call-arg, var-annotated]
    hi1, lo1 = _mulhilo(_M1, c2)
    return hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0


@njit(inline="always")
def _philox(c0, c1, c2, c3, k0, k1):
    """Philox4x64-10 (Salmon et al. 2011) of one counter under one key."""
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    for _ in range(9):
        k0 += _W0
        k1 += _W1
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    return c0, c1, c2, c3


@njit(inline="always")
def _next_counter(c0, c1, c2, c3):
    """A Philox counter's next value: its low word plus one, with the carry."""
    c0 += _ONE
    if c0 == 0:
        c1 += _ONE
        if c1 == 0:
            c2 += _ONE
            if c2 == 0:
                c3 += _ONE
    return c0, c1, c2, c3


@njit(inline="always")
def _fill(state: np.ndarray, buffer: np.ndarray, r: int, out: np.ndarray, count: int):
    """Stream r's next ``count`` uniforms into ``out[:count]``, as numpy's
    Philox gives them (its ``philox_next64``, then 53 bits): ``state[r]`` is
    (counter 0-3, key 0-1, buffer position) and ``buffer[r]`` its four words."""
    c0, c1, c2, c3 = state[r, 0], state[r, 1], state[r, 2], state[r, 3]
    k0, k1 = state[r, 4], state[r, 5]
    at = int(state[r, 6])
    b0, b1, b2, b3 = buffer[r, 0], buffer[r, 1], buffer[r, 2], buffer[r, 3]
    j = 0
    while j < count and at < 4:  # what the buffer still holds
        word = b0 if at == 0 else b1 if at == 1 else b2 if at == 2 else b3
        out[j] = np.float64(word >> _SHIFT) * _HALF_ULP
        at += 1
        j += 1
    while j < count:  # four words at a time
        c0, c1, c2, c3 = _next_counter(c0, c1, c2, c3)
        b0, b1, b2, b3 = _philox(c0, c1, c2, c3, k0, k1)
        out[j] = np.float64(b0 >> _SHIFT) * _HALF_ULP
        at = 1
        if j + 1 < count:
            out[j + 1] = np.float64(b1 >> _SHIFT) * _HALF_ULP
            at = 2
        if j + 2 < count:
            out[j + 2] = np.float64(b2 >> _SHIFT) * _HALF_ULP
            at = 3
        if j + 3 < count:
            out[j + 3] = np.float64(b3 >> _SHIFT) * _HALF_ULP
            at = 4
        j += 4
    state[r, 0], state[r, 1], state[r, 2], state[r, 3] = c0, c1, c2, c3
    state[r, 6] = at
    buffer[r, 0], buffer[r, 1], buffer[r, 2], buffer[r, 3] = b0, b1, b2, b3


@compiled
def draw_uniforms(
    state: np.ndarray, buffer: np.ndarray, reps: np.ndarray, counts: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """The next ``counts[i]`` uniforms of stream ``reps[i]``, stream after stream."""
    out = np.empty(counts.sum())
    at = 0
    for i in range(len(reps)):
        _fill(state, buffer, reps[i], out[at:], counts[i])
        at += counts[i]
    return out


@njit(inline="always")
def _table(tables, hot, r):
    """Replication r's row of its table (plain, or stressed when ``hot[r]``):
    (row, floor key, shift, lookup, edges) for `_cell`."""
    floor, shift, lookup, edges, rows = tables[1] if hot[r] else tables[0]
    row = rows[r]
    return row, floor[row], shift[row], lookup, edges


@njit(inline="always")
def _cell(key, row, base, step, lookup, edges):
    """`lane_queues.CellTable.find` of one failing key."""
    cell = np.int64(lookup[row, (key - base) >> step])
    while key >= edges[row, cell]:
        cell += 1
    return cell


@njit(inline="always")
def _threshold(edge):
    """The smallest key (a word's top 53 bits) whose uniform is at or above
    ``edge``: u = key / 2**53 >= edge exactly when key >= ceil(edge * 2**53)
    (scaling by a power of two is exact); 2**53, no key, from an edge of 1."""
    if edge >= 1.0 or edge != edge:  # none fails (NaN: no u is >= it)
        return np.uint64(UNIT)
    if edge <= 0.0:
        return np.uint64(0)
    return np.uint64(np.ceil(edge * UNIT))


@njit(inline="always")
def _keep_key(word, threshold, keys, kept):
    """Keep a word's key in ``keys[kept]``; the next index past it if it
    fails (at or above ``threshold``), else ``kept``: no branch per unit."""
    key = word >> _SHIFT
    keys[kept] = key
    return kept + (key >= threshold)


@njit(inline="always")
def _fail(state, buffer, r, count, edge, table, keys, out):
    """Stream r's next ``count`` uniforms; each at or above ``edge`` fails and
    is counted in ``out`` at its cell of ``table`` (a `_table` row).

    `_fill` and a float test, fused: each word's key (its top 53 bits: the
    uniform times 2**53) is tested against the edge's integer threshold as
    Philox makes it, without a branch, and only the failing keys are kept
    (``keys``, room for ``count`` and one) and looked up after; the same counts
    and the same stream state after, word for word."""
    row, base, step, lookup, edges = table
    threshold = _threshold(edge)
    c0, c1, c2, c3 = state[r, 0], state[r, 1], state[r, 2], state[r, 3]
    k0, k1 = state[r, 4], state[r, 5]
    at = int(state[r, 6])
    b0, b1, b2, b3 = buffer[r, 0], buffer[r, 1], buffer[r, 2], buffer[r, 3]
    kept = 0
    j = 0
    while j < count and at < 4:  # what the buffer still holds
        word = b0 if at == 0 else b1 if at == 1 else b2 if at == 2 else b3
        kept = _keep_key(word, threshold, keys, kept)
        at += 1
        j += 1
    while j + 4 <= count:  # four words at a time
        c0, c1, c2, c3 = _next_counter(c0, c1, c2, c3)
        b0, b1, b2, b3 = _philox(c0, c1, c2, c3, k0, k1)
        kept = _keep_key(b0, threshold, keys, kept)
        kept = _keep_key(b1, threshold, keys, kept)
        kept = _keep_key(b2, threshold, keys, kept)
        kept = _keep_key(b3, threshold, keys, kept)
        at = 4
        j += 4
    if j < count:  # the last one to three, and the rest of their block kept
        c0, c1, c2, c3 = _next_counter(c0, c1, c2, c3)
        b0, b1, b2, b3 = _philox(c0, c1, c2, c3, k0, k1)
        at = count - j
        kept = _keep_key(b0, threshold, keys, kept)
        if at > 1:
            kept = _keep_key(b1, threshold, keys, kept)
        if at > 2:
            kept = _keep_key(b2, threshold, keys, kept)
    state[r, 0], state[r, 1], state[r, 2], state[r, 3] = c0, c1, c2, c3
    state[r, 6] = at
    buffer[r, 0], buffer[r, 1], buffer[r, 2], buffer[r, 3] = b0, b1, b2, b3
    for i in range(kept):
        out[_cell(np.int64(keys[i]), row, base, step, lookup, edges)] += 1


@compiled
def draw_cells(
    state: np.ndarray,
    buffer: np.ndarray,
    reps: np.ndarray,
    counts: np.ndarray,
    success: np.ndarray,
    hot: np.ndarray,
    tables: tuple,
    n: int,
    cells: int,
) -> np.ndarray:  # pragma: no cover - compiled
    """(rep, cells) counts of ``counts[i]`` attempts of replication ``reps[i]``:
    each reads its stream's next uniform; one at or above ``success[rep]``
    fails, counted in its cell of table ``tables[hot[rep]]`` (`CellTable`:
    floor, shift, lookup, edges and rows); successes are not counted."""
    out = np.zeros((n, cells), dtype=np.int64)
    keys = np.empty(counts.max() + 1 if len(counts) else 1, dtype=np.uint64)
    for i in range(len(reps)):
        r = reps[i]
        table = _table(tables, hot, r)
        _fail(state, buffer, r, counts[i], success[r], table, keys, out[r])
    return out


@compiled
def draw_lane(
    state: np.ndarray,
    buffer: np.ndarray,
    batch: np.ndarray,
    columns: np.ndarray,
    per_class: int,
    success: np.ndarray,
    hot: np.ndarray,
    tables: tuple,
    cells: int,
) -> np.ndarray:  # pragma: no cover - compiled
    """`draw_cells` of every column of a lane's day in one call: (column i,
    rep, cells) counts of ``batch[rep, columns[i]]`` attempts, each reading
    column ``columns[i]``'s stream (``state[columns[i]]``, ``buffer[...]``),
    of class ``columns[i] // per_class`` (``success[k]``, ``tables[k]``)."""
    n = batch.shape[0]
    out = np.zeros((len(columns), n, cells), dtype=np.int64)
    keys = np.empty(batch.max() + 1 if batch.size else 1, dtype=np.uint64)
    for i in range(len(columns)):
        c = columns[i]
        k = c // per_class
        for r in range(n):
            if batch[r, c]:
                table = _table(tables[k], hot, r)
                _fail(
                    state[c],
                    buffer[c],
                    r,
                    batch[r, c],
                    success[k, r],
                    table,
                    keys,
                    out[i, r],
                )
    return out


@compiled
def draw_cells_struck(
    state: np.ndarray,
    buffer: np.ndarray,
    reps: np.ndarray,
    counts: np.ndarray,
    success: np.ndarray,
    hot: np.ndarray,
    tables: tuple,
    n: int,
    cells: int,
    struck: np.ndarray,
    given: tuple,
    starts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """`draw_cells` where a latent defect imposed ``struck[j]`` (-1: none) on
    attempt j (attempts replication after replication): a hit attempt is read
    on its imposed outcome's cells alone (``given[outcome - 1][rep]``'s edges,
    as `lanes.Lane._count_hits`), the rest as `draw_cells`; and the hits, per
    replication."""
    out = np.zeros((n, cells), dtype=np.int64)
    hits = np.zeros(n, dtype=np.int64)
    uniforms = np.empty(counts.max() if len(counts) else 0)
    at = 0
    for i in range(len(reps)):
        r = reps[i]
        edge = success[r]
        row, base, step, lookup, edges = _table(tables, hot, r)
        _fill(state, buffer, r, uniforms, counts[i])
        for j in range(counts[i]):
            u = uniforms[j]
            outcome = struck[at + j]
            if outcome >= 0:
                key = np.int64(u * UNIT)
                own = np.searchsorted(given[outcome - 1][r], key, side="right")
                out[r, starts[outcome] + own] += 1
                hits[r] += 1
            elif u >= edge:
                key = np.int64(u * UNIT)
                out[r, _cell(key, row, base, step, lookup, edges)] += 1
        at += counts[i]
    return out, hits


@compiled
def read_given(
    state: np.ndarray,
    buffer: np.ndarray,
    reps: np.ndarray,
    batches: np.ndarray,
    edges: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    """(batch, rep, cells) counts of ``batches[b, r]`` units of replication r
    read on one outcome's cells alone (``edges[r]``, as keys), each its
    stream's next uniform: replication after replication, each its batches
    in order (`lanes.Lane._read`)."""
    out = np.zeros((batches.shape[0], batches.shape[1], edges.shape[1] + 1), np.int64)
    uniforms = np.empty(batches.max() if batches.size else 0)
    for i in range(len(reps)):
        r = reps[i]
        for b in range(batches.shape[0]):
            _fill(state, buffer, r, uniforms, batches[b, r])
            for j in range(batches[b, r]):
                key = np.int64(uniforms[j] * UNIT)
                out[b, r, np.searchsorted(edges[r], key, side="right")] += 1
    return out


@compiled
def stalls_worked(
    state: np.ndarray,
    buffer: np.ndarray,
    columns: np.ndarray,
    batches: np.ndarray,
    edges: np.ndarray,
    raised: np.ndarray,
    days: np.ndarray,
    day: int,
    ledger: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """`read_given` of the stalls ELS worked today in a lane's ``columns``
    (``batches[b, r, c]`` of column c raised on ``raised[b]``, read from
    column c's streams ``state[c]``, ``buffer[c]``), each put straight on its
    due row of ``ledger`` ((ring, column, rep, then): `lanes.Lane.stall_cells`):
    a unit in cell d x then + t is due ``days[d]`` after it was raised, not
    before today (`lanes.Lane._add_stalls`)."""
    ring, then = ledger.shape[0], ledger.shape[3]
    uniforms = np.empty(batches.max() if batches.size else 0)
    for i in range(len(columns)):
        c = columns[i]
        for r in range(batches.shape[1]):
            for b in range(batches.shape[0]):
                count = batches[b, r, c]
                if count == 0:
                    continue
                _fill(state[c], buffer[c], r, uniforms, count)
                for j in range(count):
                    key = np.int64(uniforms[j] * UNIT)
                    cell = np.searchsorted(edges[r], key, side="right")
                    due = max(raised[b] + days[cell // then], day)
                    ledger[due % ring, c, r, cell % then] += 1
