"""How many replications? migsim's batch rule against Hoad, Robinson & Davies (2010).

Both rules decide, from the clearance days seen so far, when the 95% confidence
interval of the mean clearance day is narrow enough (half-width <= DAYS):

- ``batch(b)``: migsim's ``--precision``: run b replications, then b more at a
  time, and stop at the first batch whose interval meets the target;
- ``hrd``: the replication algorithm of Hoad, Robinson & Davies (2010, JORS
  61(11) 1632-1644): start with 3 replications, add one at a time; when the
  target is first met at N, run a look-ahead of f(kLimit, N) more (kLimit = 5,
  f = kLimit for N <= 100, else floor(kLimit * N / 100)) and accept N only if the
  target stays met throughout, else carry on. HRD state precision relative to
  the mean (%); here it is the absolute half-width in days, as migsim asks.
  The replications actually run are N + look-ahead; we score the interval of
  all of them (as migsim would report them), and also HRD's own N.

To compare the rules without simulating thousands of times, the script first
simulates a *pool* of replications of a scenario (clearance days), then replays
each rule many times on bootstrap resamples of the pool, whose mean stands for
the true mean. For each rule it prints the minimum, mean and P90 of replications used,
the share of trials that stopped while the *true* half-width at that count
(t * pool sd / sqrt(N)) still exceeded the target (premature stops), and the
coverage of the final 95% interval (how often it contains the pool mean).

    python benchmarks/bench_precision.py --pool 1000 --trials 2000 --days 1
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import migsim  # noqa: E402
from migsim.evidence.forecast import mean_ci95  # noqa: E402


def half_widths(streams: np.ndarray) -> np.ndarray:
    """95% CI half-width of the mean after n = 1..cap replications, per stream.

    Column n-1 holds the half-width after n; +inf for n = 1. (The same t interval
    as `migsim.evidence.forecast.mean_ci95`, computed incrementally.)
    """
    n = np.arange(1, streams.shape[1] + 1)
    total = np.cumsum(streams, axis=1)
    squares = np.cumsum(streams**2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = (squares - total**2 / n) / (n - 1)
        t = stats.t.ppf(0.975, n - 1)
        out = t * np.sqrt(np.clip(variance, 0, None)) / np.sqrt(n)
    out[:, 0] = np.inf
    return out


def rule_batch(hw: np.ndarray, days: float, batch: int) -> int:
    cap = len(hw)
    n = batch
    while n < cap and hw[n - 1] > days:
        n += batch
    return min(n, cap)


def _look_ahead(n: int, k_limit: int = 5) -> int:
    return k_limit if n <= 100 else math.floor(k_limit * n / 100)


def rule_hrd(hw: np.ndarray, days: float) -> tuple[int, int]:
    """Return (HRD's N_sol, replications actually run)."""
    cap = len(hw)
    n = 3
    while n < cap:
        if hw[n - 1] <= days:
            end = min(cap, n + _look_ahead(n))
            if (hw[n:end] <= days).all():
                return n, end
            n = end
            continue
        n += 1
    return cap, cap


def score(
    name: str,
    counts: list[int],
    streams: np.ndarray,
    truth: float,
    sd: float,
    days: float,
) -> str:
    counts_a = np.array(counts)
    premature = np.mean(
        stats.t.ppf(0.975, counts_a - 1) * sd / np.sqrt(counts_a) > days
    )
    covered = []
    for stream, n in zip(streams, counts_a, strict=True):
        ci = mean_ci95(stream[:n])
        covered.append(ci is not None and ci[0] <= truth <= ci[1])
    return (
        f"{name:<26}{counts_a.min():>6}{counts_a.mean():>10.1f}"
        f"{np.quantile(counts_a, 0.9):>8.0f}"
        f"{premature:>12.1%}{np.mean(covered):>11.1%}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios/nov2019_epcl.yaml"))
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE"
    )
    parser.add_argument(
        "--pool", type=int, default=1000, help="replications in the pool"
    )
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument(
        "--days",
        type=float,
        action="append",
        help="half-width targets (repeatable; default 0.5, 1, 2)",
    )
    parser.add_argument("--cap", type=int, default=5000, help="maximum replications")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-j", "--workers", type=int, default=1)
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.sets) or None
    scenario = migsim.load_scenario(args.scenario, overrides)
    started = time.perf_counter()
    pool = migsim.run(
        scenario, replications=args.pool, seed=args.seed, workers=args.workers
    ).clearance_days()
    if not np.isfinite(pool).all():
        print(
            "some pool replications do not clear; the mean is undefined",
            file=sys.stderr,
        )
        return 1
    truth, sd = float(pool.mean()), float(pool.std(ddof=1))
    print(
        f"pool: {args.pool} replications of {scenario.name} in "
        f"{time.perf_counter() - started:.1f} s; mean clearance day {truth:.2f}, "
        f"sd {sd:.2f}, {len(np.unique(pool))} distinct values"
    )
    rng = np.random.default_rng(12345)
    streams = rng.choice(pool, size=(args.trials, args.cap), replace=True)
    widths = half_widths(streams)
    for days in args.days or [0.5, 1.0, 2.0]:
        ideal = math.ceil((1.96 * sd / days) ** 2)
        print(
            f"\ntarget half-width {days} days (fixed-n ideal with the pool sd: {ideal})"
        )
        print(
            f"{'rule':<26}{'min N':>6}{'mean N':>10}{'P90 N':>8}"
            f"{'premature':>12}{'coverage':>11}"
        )
        for batch in (10, 20, 50):
            counts = [rule_batch(w, days, batch) for w in widths]
            print(score(f"batch({batch})", counts, streams, truth, sd, days))
        hrd = [rule_hrd(w, days) for w in widths]
        print(score("hrd, all run", [h[1] for h in hrd], streams, truth, sd, days))
        print(score("hrd, N_sol", [h[0] for h in hrd], streams, truth, sd, days))
    return 0


if __name__ == "__main__":
    sys.exit(main())
