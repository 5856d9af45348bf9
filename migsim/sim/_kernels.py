"""Compiled (numba) passes of the block engine: a lane's queue and ledgers, and
its day's attempts in one call; with the draws (`_draw_kernels`), every kernel
`lane_kernel.kernels` loads.

Imported only through `lane_kernel.kernels` (numba is loaded on first use, never
at ``import migsim``). Each pass gives exactly what the numpy passes of
`lanes.Lane` and `lane_outcomes` give (tests hold them equal): a lane that reads
with the kernels and holds no stalls for a release date runs its day as
`start_lane_day` (`resolve_stalls`, then `release_lane`) and `attempt_lane`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from migsim.sim._draw_kernels import (
    compiled,
    draw_cells,
    draw_cells_struck,
    draw_lane,
    draw_uniforms,
    read_given,
    stalls_worked,
)

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
    "start_lane_day",
    "take_ready",
]


@compiled
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


@compiled
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


@compiled
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
    abandons: int,
) -> int:  # pragma: no cover - compiled
    """`lanes.Lane.release` in one pass, remote recovery aside: the retries due
    today (``retry_due``'s row, (column, rep)) rejoin the queue as the ready
    queue's row ``tail`` (``held`` (rep, due day, column), ``totals``: room
    made by the caller), fix forwards due are restored, and today's eligible
    installations (``eligible[day]`` (rep, class)) join ``fresh``, those of
    class ``up_front`` (-1: none) abandoned at once (in the flow
    ``abandons``); the lane's counts
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
                flows[r, abandons] += gone
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


@compiled
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


@compiled
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


@compiled
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


@compiled
def start_lane_day(
    day: int,
    spec: np.ndarray,
    days: tuple,
    is_last: np.ndarray,
    flows: np.ndarray,
    levels: tuple,
    ledgers: tuple,
    eligible: np.ndarray,
    up_front: int,
    retry_queued: np.ndarray,
    pending: np.ndarray,
    fresh: np.ndarray,
    restorations: int,
    held: np.ndarray,
    totals: np.ndarray,
    tail: int,
) -> int:  # pragma: no cover - compiled
    """The start of a lane's day in one call: `resolve_stalls`, then
    `release_lane` (its counts taken from ``levels`` as `schedule_lane` reads
    them: migrated, rolled back, abandoned, excluded, impaired). The ready
    queue's tail after."""
    resolve_stalls(day, spec, days, is_last, flows, levels, ledgers)
    migrated, rolled_back, abandoned, excluded = (
        levels[0],
        levels[2],
        levels[3],
        levels[4],
    )
    return release_lane(
        day, ledgers[1], ledgers[2], eligible, up_front, rolled_back, retry_queued,
        levels[5], migrated, pending, abandoned, excluded, fresh, flows,
        restorations, held, totals, tail, spec[9],
    )  # fmt: skip
