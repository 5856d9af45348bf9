"""Compiled (numba) passes of the block engine: per-unit uniforms and cells.

Imported only through `lane_kernel.kernels` (numba is loaded on first use, never
at ``import migsim``). Every kernel gives exactly what the numpy passes of
`lanes.Lane._draw` and `lane_queues.Column.take` give: each stream's uniforms are
numpy's own (`Generator.random` reads ``bitgen_t.next_double`` value after value;
these kernels call the same function of the same state), read in the same order,
and the cell of a failing uniform is the `lane_queues.CellTable` look-up.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["draw_cells", "draw_uniforms"]


@intrinsic
def _next_double(typingctx, state, function):  # type: ignore[no-untyped-def]
    """``function(state)``: a bit generator's ``next_double`` by address."""
    signature = types.float64(types.uintp, types.uintp)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        state_address, function_address = args
        uintp = context.get_value_type(types.uintp)
        fnty = ir.FunctionType(ir.DoubleType(), (uintp,))
        fn = cgutils.get_or_insert_function(builder.module, fnty, "next_double")
        pointer = builder.inttoptr(function_address, fn.type)
        return builder.call(pointer, (state_address,))

    return signature, codegen


@njit(cache=True, nogil=True)
def draw_uniforms(
    states: np.ndarray, functions: np.ndarray, reps: np.ndarray, counts: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """The next ``counts[i]`` uniforms of stream ``reps[i]``, stream after stream."""
    out = np.empty(counts.sum())
    at = 0
    for i in range(len(reps)):
        state, function = states[reps[i]], functions[reps[i]]
        for _ in range(counts[i]):
            out[at] = _next_double(state, function)
            at += 1
    return out


@njit(cache=True, nogil=True)
def draw_cells(
    states: np.ndarray,
    functions: np.ndarray,
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
    for i in range(len(reps)):
        r = reps[i]
        state, function, edge = states[r], functions[r], success[r]
        floor, shift, lookup, edges, rows = tables[1] if hot[r] else tables[0]
        row = rows[r]
        base, step = floor[row], shift[row]
        for _ in range(counts[i]):
            u = _next_double(state, function)
            if u >= edge:
                key = np.int64(u * 9007199254740992.0)
                cell = np.int64(lookup[row, (key - base) >> step])
                while key >= edges[row, cell]:
                    cell += 1
                out[r, cell] += 1
    return out


@njit(cache=True, nogil=True)
def draw_cells_struck(
    states: np.ndarray,
    functions: np.ndarray,
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
    at = 0
    for i in range(len(reps)):
        r = reps[i]
        state, function, edge = states[r], functions[r], success[r]
        floor, shift, lookup, edges, rows = tables[1] if hot[r] else tables[0]
        row = rows[r]
        base, step = floor[row], shift[row]
        for _ in range(counts[i]):
            u = _next_double(state, function)
            outcome = struck[at]
            at += 1
            if outcome >= 0:
                key = np.int64(u * 9007199254740992.0)
                own = np.searchsorted(given[outcome - 1][r], key, side="right")
                out[r, starts[outcome] + own] += 1
                hits[r] += 1
            elif u >= edge:
                key = np.int64(u * 9007199254740992.0)
                cell = np.int64(lookup[row, (key - base) >> step])
                while key >= edges[row, cell]:
                    cell += 1
                out[r, cell] += 1
    return out, hits


@njit(cache=True, nogil=True)
def read_given(
    states: np.ndarray,
    functions: np.ndarray,
    reps: np.ndarray,
    batches: np.ndarray,
    edges: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    """(batch, rep, cells) counts of ``batches[b, r]`` units of replication r
    read on one outcome's cells alone (``edges[r]``, as keys), each its
    stream's next uniform: replication after replication, each its batches
    in order (`lanes.Lane._read`)."""
    out = np.zeros((batches.shape[0], batches.shape[1], edges.shape[1] + 1), np.int64)
    for i in range(len(reps)):
        r = reps[i]
        state, function = states[r], functions[r]
        for b in range(batches.shape[0]):
            for _ in range(batches[b, r]):
                key = np.int64(_next_double(state, function) * 9007199254740992.0)
                out[b, r, np.searchsorted(edges[r], key, side="right")] += 1
    return out
