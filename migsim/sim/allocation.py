"""Sharing whole installations: pro rata with limits, largest remainder, MSM.

The engine never splits an installation: a day's cap, a cohort's installations
and a supplier's nomination are shared in integers, deterministically (ties in
list order), so the same scenario and seed always give the same shares.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "largest_remainder",
    "msm_shares",
    "share_pro_rata",
    "share_pro_rata_rows",
    "take_in_order",
]


def share_pro_rata(total: int, weights: list[int], limits: list[int]) -> list[int]:
    """Share ``total`` units in proportion to ``weights``, never above ``limits``.

    Each gets floor(total * w / sum(w)); the remainder goes one unit at a time by
    largest fractional part (ties in list order). A share above its limit is
    capped and the surplus re-shared the same way among the others (water-filling).
    """
    shares = [0] * len(weights)
    open_ = [
        i
        for i, (w, lim) in enumerate(zip(weights, limits, strict=True))
        if w > 0 and lim > 0
    ]
    remaining = total
    while remaining > 0 and open_:
        weight_sum = sum(weights[i] for i in open_)
        base = {i: remaining * weights[i] // weight_sum for i in open_}
        left = remaining - sum(base.values())
        by_fraction = sorted(
            open_, key=lambda i: (-(remaining * weights[i] % weight_sum), i)
        )
        for i in by_fraction[:left]:
            base[i] += 1
        capped = [i for i in open_ if shares[i] + base[i] >= limits[i]]
        if not capped:
            for i in open_:
                shares[i] += base[i]
            return shares
        for i in capped:
            remaining -= limits[i] - shares[i]
            shares[i] = limits[i]
        open_ = [i for i in open_ if i not in capped]
    return shares


def largest_remainder(total: int, shares: Sequence[float]) -> list[int]:
    """Split ``total`` by ``shares`` (largest remainder, ties in list order).

    Shares are read to 1e-9, so the split is exact and deterministic.
    """
    weights = [round(s * 1e9) for s in shares]
    if not any(weights):
        return [0] * len(shares)
    return share_pro_rata(total, weights, [total] * len(weights))


def msm_shares(cap: int, demands: list[int], dmin: int) -> list[int]:
    """Share a day's cap between suppliers by the Migration Scaling Methodology.

    Each supplier first gets DMIN_i = min(dmin, demand_i); the rest of the cap is
    shared in proportion to the remaining demand and never above it
    (water-filling). If the DMINs together exceed the cap, the cap is shared in
    proportion to them. Integer shares by largest remainder (`share_pro_rata`).

    >>> msm_shares(1000, [50, 300, 2000], 100)
    [50, 171, 779]
    >>> msm_shares(200, [500, 500, 40], 100)
    [84, 83, 33]
    """
    floors = [min(dmin, d) for d in demands]
    if sum(floors) >= cap:
        return share_pro_rata(cap, floors, floors)
    remaining = [d - f for d, f in zip(demands, floors, strict=True)]
    extra = share_pro_rata(cap - sum(floors), remaining, remaining)
    return [f + e for f, e in zip(floors, extra, strict=True)]


def share_pro_rata_rows(totals: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`share_pro_rata` of each row at once, each share limited to its weight.

    ``totals``: (rows,); ``weights``: (rows, k) non-negative integers. Row r
    gets exactly ``share_pro_rata(totals[r], weights[r], weights[r])``: floors,
    the remainder by largest fractional part (ties to the lower index), and a
    share reaching its weight capped with the surplus re-shared (water-filling;
    at most k rounds). The block engine shares a day's cap this way for every
    replication of a block in whole-array steps.
    """
    rows, k = weights.shape
    shares = np.zeros((rows, k), dtype=np.int64)
    remaining = np.asarray(totals, dtype=np.int64).copy()
    open_ = weights > 0
    index = np.arange(k)
    for _ in range(k):
        live = (remaining > 0) & open_.any(axis=1)
        if not live.any():
            break
        w = np.where(open_, weights, 0)
        weight_sum = w.sum(axis=1)
        safe = np.maximum(weight_sum, 1)[:, None]
        scaled = remaining[:, None] * w
        base = scaled // safe
        fraction = np.where(open_, scaled % safe, -1)  # closed ones never get +1
        left = remaining - base.sum(axis=1)
        # rank by (-fraction, index): a stable sort of -fraction keeps index order
        order = np.argsort(-fraction, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, index[None, :].repeat(rows, axis=0), axis=1)
        base += (rank < left[:, None]) & open_
        base[~live] = 0
        capped = open_ & live[:, None] & (shares + base >= weights)
        settled = live & ~capped.any(axis=1)
        shares += np.where(settled[:, None], base, 0)
        remaining[settled] = 0
        remaining -= np.where(capped, weights - shares, 0).sum(axis=1)
        shares = np.where(capped, weights, shares)
        open_ &= ~capped
    return shares


def take_in_order(counts: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Take up to ``budget[r]`` from each row of ``counts``, first column first.

    Row r takes all of each column until its budget runs out, then part of
    one: what a queue served first come, first served gives. The block engine
    shares a cap in priority order and takes due retries and ELS cases this
    way, for every replication at once.

    >>> take_in_order(np.array([[3, 4, 5]]), np.array([5])).tolist()
    [[3, 2, 0]]
    """
    before = np.cumsum(counts, axis=1) - counts
    return np.minimum(counts, np.maximum(budget[:, None] - before, 0))
