"""Compiled (numba) passes of the block engine: per-unit uniforms and cells.

Imported only through `lane_kernel.kernels` (numba is loaded on first use, never
at ``import migsim``). Every kernel gives exactly what the numpy passes of
`lanes.Lane._draw` and `lane_queues.Column.take` give: each stream's uniforms are
numpy's own, word for word (the kernels run numpy's Philox4x64-10 from each
generator's saved counter, key and buffer, and make a double of a word's top 53
bits as ``Generator.random`` does; calling numpy's ``next_double`` from the kernel
gave the same numbers at 10.5 ns a uniform against 7 ns), read in the same order,
and the cell of a failing uniform is the `lane_queues.CellTable` look-up.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from migsim.sim.lane_queues import UNIT

__all__ = [
    "attempt_lane",
    "draw_cells",
    "draw_cells_struck",
    "draw_lane",
    "draw_uniforms",
    "read_given",
    "release_lane",
    "resolve_stalls",
    "schedule_lane",
    "share_rows",
    "stalls_worked",
    "take_ready",
]


_M0, _M1 = np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157)
_W0, _W1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B)
_ONE, _SHIFT = np.uint64(1), np.uint64(11)
_HALF_ULP = 1.0 / UNIT  # 2**-53


def _compiled(function):
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
        c0 += _ONE
        if c0 == 0:  # the carry
            c1 += _ONE
            if c1 == 0:
                c2 += _ONE
                if c2 == 0:
                    c3 += _ONE
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


@_compiled
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
        c0 += _ONE
        if c0 == 0:  # the carry
            c1 += _ONE
            if c1 == 0:
                c2 += _ONE
                if c2 == 0:
                    c3 += _ONE
        b0, b1, b2, b3 = _philox(c0, c1, c2, c3, k0, k1)
        kept = _keep_key(b0, threshold, keys, kept)
        kept = _keep_key(b1, threshold, keys, kept)
        kept = _keep_key(b2, threshold, keys, kept)
        kept = _keep_key(b3, threshold, keys, kept)
        at = 4
        j += 4
    if j < count:  # the last one to three, and the rest of their block kept
        c0 += _ONE
        if c0 == 0:
            c1 += _ONE
            if c1 == 0:
                c2 += _ONE
                if c2 == 0:
                    c3 += _ONE
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


@_compiled
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


@_compiled
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


@_compiled
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


@_compiled
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


@_compiled
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


@_compiled
def share_rows(totals: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`allocation.share_pro_rata_rows` row by row: ``totals[r]`` shared in
    proportion to ``weights[r]`` (rows, k), each share at most its weight:
    floors, the remainder one each by largest fractional part (ties to the
    lower index), shares reaching their weight capped and the surplus shared
    again among the rest (water-filling)."""
    rows, k = weights.shape
    shares = np.zeros((rows, k), dtype=np.int64)
    is_open = np.empty(k, dtype=np.bool_)
    base = np.empty(k, dtype=np.int64)
    fraction = np.empty(k, dtype=np.int64)
    for r in range(rows):
        remaining = totals[r]
        for i in range(k):
            is_open[i] = weights[r, i] > 0
        while remaining > 0:
            weight_sum = 0
            for i in range(k):
                if is_open[i]:
                    weight_sum += weights[r, i]
            if weight_sum == 0:
                break
            left = remaining
            for i in range(k):
                base[i] = 0
                fraction[i] = -1  # closed: never gets one more
                if is_open[i]:
                    scaled = remaining * weights[r, i]
                    base[i] = scaled // weight_sum
                    fraction[i] = scaled % weight_sum
                    left -= base[i]
            for _ in range(left):  # the largest fraction first, ties to the lower index
                best = -1
                for i in range(k):
                    if fraction[i] >= 0 and (best < 0 or fraction[i] > fraction[best]):
                        best = i
                base[best] += 1
                fraction[best] = -1
            capped = False
            for i in range(k):
                if is_open[i] and shares[r, i] + base[i] >= weights[r, i]:
                    capped = True
            if not capped:
                for i in range(k):
                    if is_open[i]:
                        shares[r, i] += base[i]
                break
            for i in range(k):
                if is_open[i] and shares[r, i] + base[i] >= weights[r, i]:
                    remaining -= weights[r, i] - shares[r, i]
                    shares[r, i] = weights[r, i]
                    is_open[i] = False
    return shares


@_compiled
def take_ready(
    held: np.ndarray,
    totals: np.ndarray,
    head: int,
    tail: int,
    order: np.ndarray,
    count: np.ndarray,
) -> tuple[np.ndarray, int]:  # pragma: no cover - compiled
    """`lane_queues.Ready.take` in one pass: up to ``count[r]`` retries taken
    from rows ``head..tail`` of ``held`` (rep, due day, made), oldest due day
    first and within it in ``order``, both ``held`` and ``totals`` (rep, due
    day) reduced in place; (rep, made) taken, and the first row any
    replication still holds (``tail`` when none)."""
    n, width = held.shape[0], held.shape[2]
    taken = np.zeros((n, width), dtype=np.int64)
    for r in range(n):
        left = count[r]
        row = head
        while left > 0 and row < tail:
            if totals[r, row] > 0:
                for i in range(width):
                    c = order[i]
                    part = min(left, held[r, row, c])
                    if part > 0:
                        held[r, row, c] -= part
                        totals[r, row] -= part
                        taken[r, c] += part
                        left -= part
                        if left == 0:
                            break
            row += 1
    first = tail
    for row in range(head, tail):
        for r in range(n):
            if totals[r, row] > 0:
                first = row
                break
        if first < tail:
            break
    return taken, first


@_compiled
def release_lane(
    day: int,
    retry_due: np.ndarray,
    restore_due: np.ndarray,
    eligible: np.ndarray,
    up_front: int,
    rolled_back: np.ndarray,
    retry_queued: np.ndarray,
    impaired: np.ndarray,
    migrated: np.ndarray,
    pending: np.ndarray,
    abandoned: np.ndarray,
    excluded: np.ndarray,
    fresh: np.ndarray,
    flows: np.ndarray,
    restorations: int,
    held: np.ndarray,
    totals: np.ndarray,
    tail: int,
) -> int:  # pragma: no cover - compiled
    """`lanes.Lane.release` in one pass, remote recovery aside: the retries due
    today (``retry_due``'s row, (column, rep)) rejoin the queue as the ready
    queue's row ``tail`` (``held`` (rep, due day, column), ``totals``: room
    made by the caller), fix forwards due are restored, and today's eligible
    installations (``eligible[day]`` (rep, class)) join ``fresh``, those of
    class ``up_front`` (-1: none) abandoned at once; the lane's counts
    (by replication) moved as they go. The ready queue's tail after (one
    more when any retry was due)."""
    row = day % retry_due.shape[0]
    due = retry_due[row]  # (column, rep)
    width, n = due.shape
    any_due = False
    for c in range(width):
        for r in range(n):
            if due[c, r]:
                any_due = True
    if any_due:
        for r in range(n):
            total = 0
            for c in range(width):
                held[r, tail, c] = due[c, r]
                total += due[c, r]
                due[c, r] = 0
            totals[r, tail] = total
            rolled_back[r] -= total
            retry_queued[r] += total
        tail += 1
    restored = restore_due[row]
    for r in range(n):
        if restored[r]:
            impaired[r] -= restored[r]
            migrated[r] += restored[r]
            flows[r, restorations] += restored[r]
            restored[r] = 0
    today = eligible[day]  # (rep, class)
    any_eligible = False
    for r in range(n):
        for k in range(today.shape[1]):
            if today[r, k]:
                any_eligible = True
    if any_eligible:
        for r in range(n):
            for k in range(today.shape[1]):
                fresh[r, k] += today[r, k]
                pending[r] -= today[r, k]
            if up_front >= 0:
                gone = fresh[r, up_front]
                abandoned[r] += gone
                excluded[r] += gone
                fresh[r, up_front] = 0
    return tail


@njit(inline="always")
def _failed(levels, flows, r, c, last, count, excluded_last, abandons):
    """``count`` failures of column ``c`` in replication ``r``: abandoned on
    their class's last attempt (the excluded class's counted as excluded too),
    else rolled back to wait for their retry (`lanes.Lane._abandon_lasts`)."""
    if last:
        levels[3][r] += count  # abandoned
        flows[r, abandons] += count
        if c == excluded_last:
            levels[4][r] += count  # excluded
    else:
        levels[2][r] += count  # rolled back


@_compiled
def schedule_lane(
    counts: np.ndarray,
    batch: np.ndarray,
    columns: np.ndarray,
    day: int,
    hold_stall: bool,
    hold_fix: bool,
    spec: np.ndarray,
    days: tuple,
    is_last: np.ndarray,
    flows: np.ndarray,
    levels: tuple,
    ledgers: tuple,
) -> np.ndarray:  # pragma: no cover - compiled
    """`lanes.Lane._schedule` in one pass (a lane without a release date):
    the outcomes of ``columns``' attempts (``batch``, their failures by cell
    ``counts`` (column i, rep, cell)) counted, and what follows put on the
    ledgers; (rep, outcome, column) counts.

    ``spec``: the outcomes' first cells (5), then ``then``, the excluded
    class's last column (-1: none), the recovered cells (-1: dumb devices wait
    for a site visit), the prepayment cell, the abandons' flow and the
    outcomes' five flows. ``days``: the stall, retry, restore and recovery
    delays. ``levels``: migrated, stalled, rolled back, abandoned, excluded,
    impaired, dumb, prepayment dumb, awaiting a site visit, awaiting
    recovery. ``ledgers``: stall cells (ring, column, rep, then), retries due
    (ring, column, rep), restorations due (ring, rep), recoveries due (ring,
    column, rep)."""
    stall_days, retry_days, restore_days, recover_days = days
    migrated, stalled = levels[0], levels[1]  # the failures' by `_failed`
    impaired, dumb, prepayment, site_visit, recovering = levels[5:]
    stall_cells, retry_due, restore_due, recover_due = ledgers
    n, width, cells = batch.shape[0], batch.shape[1], counts.shape[2]
    then, excluded_last, recovered = spec[5], spec[6], spec[7]
    prepayment_cell, abandons = spec[8], spec[9]
    ring = stall_cells.shape[0]
    outcomes = np.zeros((n, 5, width), dtype=np.int64)
    for i in range(len(columns)):
        c = columns[i]
        last = is_last[c]
        for r in range(n):
            row = counts[i, r]
            failed = 0
            for o in range(1, 5):
                end = spec[o + 1] if o < 4 else cells
                part = 0
                for k in range(spec[o], end):
                    part += row[k]
                outcomes[r, o, c] = part
                failed += part
            outcomes[r, 0, c] = batch[r, c] - failed
            # (a cell's count is added only where there is one: most cells of
            # a day's attempts are empty, and each add touches its own row)
            if not hold_stall:  # stalls: due after their delay, by their then
                for d in range(len(stall_days)):
                    for t in range(then):
                        part = row[spec[1] + d * then + t]
                        if part:
                            due = (day + stall_days[d]) % ring
                            stall_cells[due, c, r, t] += part
            rollbacks = outcomes[r, 2, c]
            _failed(levels, flows, r, c, last, rollbacks, excluded_last, abandons)
            if not last and rollbacks:
                for d in range(len(retry_days)):
                    part = row[spec[2] + d]
                    if part:
                        retry_due[(day + retry_days[d]) % ring, c, r] += part
            if not hold_fix and outcomes[r, 3, c]:
                for d in range(len(restore_days)):
                    part = row[spec[3] + d]
                    if part:
                        restore_due[(day + restore_days[d]) % ring, r] += part
            dumbs = outcomes[r, 4, c]
            prepayment[r] += row[prepayment_cell]
            if recovered < 0:
                site_visit[r] += dumbs
            else:
                back = 0
                for d in range(recovered):
                    part = row[spec[4] + d]
                    if part:
                        back += part
                        recover_due[(day + recover_days[d]) % ring, c, r] += part
                recovering[r] += back
                site_visit[r] += dumbs - back
    for r in range(n):
        for o in range(5):
            total = 0
            for i in range(len(columns)):
                total += outcomes[r, o, columns[i]]
            flows[r, spec[10 + o]] += total
            if o == 0:
                migrated[r] += total
            elif o == 1:
                stalled[r] += total
            elif o == 3:
                impaired[r] += total
            elif o == 4:
                dumb[r] += total
    return outcomes


@_compiled
def attempt_lane(
    count: np.ndarray,
    day: int,
    hold_stall: bool,
    hold_fix: bool,
    hot: np.ndarray,
    success: np.ndarray,
    stressed_success: np.ndarray,
    held: np.ndarray,
    totals: np.ndarray,
    head: int,
    tail: int,
    order: np.ndarray,
    fresh: np.ndarray,
    retry_queued: np.ndarray,
    stressed_attempts: np.ndarray,
    attempts_flow: int,
    per_class: int,
    state: np.ndarray,
    buffer: np.ndarray,
    tables: tuple,
    cells: int,
    spec: np.ndarray,
    days: tuple,
    is_last: np.ndarray,
    flows: np.ndarray,
    levels: tuple,
    ledgers: tuple,
) -> tuple[int, np.ndarray]:  # pragma: no cover - compiled
    """`lanes.Lane.take` then `lanes.Lane.attempt` in one call, for a lane
    that reads with the kernels, holds no stalls for a release date and has
    no latent defects: ``count[r]`` taken (due retries
    first, `take_ready`, then first attempts, shared between classes by
    `share_rows`), each attempt read from its own uniform (`draw_lane`, on
    the stressed table where ``hot[r]``) and what follows scheduled
    (`schedule_lane`; stalls and fix forwards whose ELS case must be worked
    first held with ``hold_stall``, ``hold_fix``). The ready queue's first row
    still held after, and the (rep, outcome, column) counts."""
    n, width = count.shape[0], is_last.shape[0]
    batch = np.zeros((n, width), dtype=np.int64)
    left = count.copy()
    if tail > head:  # due retries first: made m is attempt m + 1
        taken, head = take_ready(held, totals, head, tail, order, count)
        for r in range(n):
            moved = 0
            for c in range(width - 1):
                batch[r, c + 1] += taken[r, c]
                moved += taken[r, c]
            moved += taken[r, width - 1]
            retry_queued[r] -= moved
            left[r] -= moved
    if fresh.shape[1] == 1:
        for r in range(n):
            first = min(left[r], fresh[r, 0])
            fresh[r, 0] -= first
            batch[r, 1] += first
    else:  # shared between classes in proportion to their queues
        shares = share_rows(left, fresh)
        for r in range(n):
            for k in range(fresh.shape[1]):
                fresh[r, k] -= shares[r, k]
                batch[r, 1 + k * per_class] += shares[r, k]
    chosen = success.copy()
    for r in range(n):
        attempts = 0
        for c in range(width):
            attempts += batch[r, c]
        flows[r, attempts_flow] += attempts
        if hot[r]:
            stressed_attempts[r] += attempts
            for k in range(success.shape[0]):
                chosen[k, r] = stressed_success[k, r]
    wanted = 0
    for c in range(width):
        for r in range(n):
            if batch[r, c]:
                wanted += 1
                break
    columns = np.empty(wanted, dtype=np.int64)
    wanted = 0
    for c in range(width):
        for r in range(n):
            if batch[r, c]:
                columns[wanted] = c
                wanted += 1
                break
    counts = draw_lane(
        state, buffer, batch, columns, per_class, chosen, hot, tables, cells
    )
    outcomes = schedule_lane(
        counts, batch, columns, day, hold_stall, hold_fix, spec, days, is_last,
        flows, levels, ledgers,
    )  # fmt: skip
    return head, outcomes


@_compiled
def resolve_stalls(
    day: int,
    spec: np.ndarray,
    days: tuple,
    is_last: np.ndarray,
    flows: np.ndarray,
    levels: tuple,
    ledgers: tuple,
) -> None:  # pragma: no cover - compiled
    """`lanes.Lane.resolve_stalls` in one pass (a lane without a release
    date): the stalls due today complete (then 0) or fail, their failures
    retried after their delay (then 1 + d) or abandoned on their class's last
    attempt, and today's row of the stall ledger cleared. ``spec``, ``days``,
    ``levels`` and ``ledgers`` as `schedule_lane` reads them (``spec[15]``,
    ``spec[16]``: the completions' and failures' flows)."""
    retry_days = days[1]
    migrated, stalled = levels[0], levels[1]  # the failures' by `_failed`
    stall_cells, retry_due = ledgers[0], ledgers[1]
    ring, width, n, then = stall_cells.shape
    row = day % ring
    excluded_last, abandons = spec[6], spec[9]
    completions, failures = spec[15], spec[16]
    for c in range(width):
        last = is_last[c]
        for r in range(n):
            cell = stall_cells[row, c, r]
            done = cell[0]
            failed = 0
            for t in range(1, then):
                part = cell[t]
                if part == 0:  # most are: no row touched
                    continue
                failed += part
                if not last and t <= len(retry_days):  # (a stall fails only
                    # with a rollback section: its delays, one a then)
                    retry_due[(day + retry_days[t - 1]) % ring, c, r] += part
                cell[t] = 0
            if done == 0 and failed == 0:
                continue
            cell[0] = 0
            stalled[r] -= done + failed
            migrated[r] += done
            flows[r, completions] += done
            flows[r, failures] += failed
            _failed(levels, flows, r, c, last, failed, excluded_last, abandons)
