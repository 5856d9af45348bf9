"""Pairing benchmark: how well common seeds pair two scenarios that differ in one lever.

Targets (issue 14, measured on ``nov2019_epcl``, one seed):

1. cap 2,000 against cap 2,200, ``-n`` replications (default 60): the
   per-replication clearance days correlate at >= 0.9;
2. caps 2,000..2,600 by 50: a higher cap never clears later than the next lower
   cap in >= 99% of paired steps (same replication, adjacent caps).

Printed, in one run: the correlation, the variance of the paired difference
against the variance the difference would have under independent streams
(Var(A) + Var(B)), the paired and unpaired 95% half-widths of the mean
difference, the share of monotone steps on the grid, and seconds per replication.

Usage::

    python benchmarks/bench_pairing.py [-n 60] [--seed 1] [-j 2]
        [--grid-replications 60] [--scenario scenarios/nov2019_epcl.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = REPO_ROOT / "scenarios" / "nov2019_epcl.yaml"
CAPS = list(range(2000, 2601, 50))


def clearance_days(scenario, cap: int, n: int, seed: int, workers: int) -> np.ndarray:
    """Per-replication clearance days (+inf: not cleared) at a daily cap."""
    import migsim

    varied = scenario.with_overrides({"capacity.daily_cap": cap})
    results = migsim.run(
        varied, replications=n, seed=seed, workers=workers, daily=False
    )
    days = results.replications["clearance_day"].to_numpy(dtype=float)
    return np.where(np.isnan(days), np.inf, days)


def pair_report(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Correlation, variance ratio and half-widths of the paired difference b - a,
    over the replications that clear under both."""
    both = np.isfinite(a) & np.isfinite(b)
    a, b = a[both], b[both]
    n = len(a)
    diff = b - a
    var_paired = float(np.var(diff, ddof=1))
    var_independent = float(np.var(a, ddof=1) + np.var(b, ddof=1))
    return {
        "correlation": float(np.corrcoef(a, b)[0, 1]),
        "variance_ratio": var_paired / var_independent if var_independent else 0.0,
        "paired_half_width": 1.96 * np.sqrt(var_paired / n),
        "independent_half_width": 1.96 * np.sqrt(var_independent / n),
        "mean_difference": float(diff.mean()),
        "pairs": n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("-n", "--replications", type=int, default=60)
    parser.add_argument("--grid-replications", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-j", "--workers", type=int, default=2)
    args = parser.parse_args(argv)

    import migsim

    scenario = migsim.load_scenario(args.scenario)
    started = time.perf_counter()
    a = clearance_days(scenario, 2000, args.replications, args.seed, args.workers)
    b = clearance_days(scenario, 2200, args.replications, args.seed, args.workers)
    report = pair_report(a, b)
    print(
        f"{scenario.name}: cap 2,000 vs 2,200, {args.replications} replications, "
        f"seed {args.seed}"
    )
    print(
        f"  clearance-day correlation      {report['correlation']:.3f}  (target >= 0.9;"
        f" {report['pairs']} pairs that clear under both caps)"
    )
    print(
        f"  Var(paired diff)/(Var A+Var B) {report['variance_ratio']:.3f}"
        f"  ({1 / max(report['variance_ratio'], 1e-12):.1f}x fewer replications)"
    )
    print(
        f"  mean difference {report['mean_difference']:+.2f} days, 95% half-width "
        f"paired ±{report['paired_half_width']:.2f} against independent "
        f"±{report['independent_half_width']:.2f}"
    )
    grid = np.array(
        [
            clearance_days(
                scenario, cap, args.grid_replications, args.seed, args.workers
            )
            for cap in CAPS
        ]
    )
    later = grid[1:] > grid[:-1]  # higher cap, same replication, clears later
    steps = later.size
    print(
        f"  caps {CAPS[0]}..{CAPS[-1]} by 50, {args.grid_replications} replications: "
        f"a higher cap clears later in {int(later.sum())} of {steps} paired steps; "
        f"never later in {100 * (1 - later.mean()):.1f}% (target >= 99%)"
    )
    elapsed = time.perf_counter() - started
    total = 2 * args.replications + len(CAPS) * args.grid_replications
    print(
        f"  {total} replications in {elapsed:.1f} s "
        f"({1000 * elapsed / total:.1f} ms per replication, -j {args.workers})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
