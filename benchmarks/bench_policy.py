"""Ramp-policy benchmark: the cost of every ramp-policy section, as a ratio.

The claim to back up (issue 4): with every section on (bank holidays, a change
freeze, a capacity schedule, rules of every kind checked every working day,
go/no-go incidents, gates with uncertain dates and deferred shares), the
baseline stays within 2x the foundation's time per replication.

All figures are ratios against the foundation path measured in the same run,
on the same machine: ``scenarios/nov2019_epcl.yaml``, which uses none of the
new sections (its numbers are exactly the foundation engine's).

Stages, each ``migsim.run(scenario, replications=--reps, workers=1)`` end to
end (Results included), after one untimed warm-up replication each:

1. ``foundation``: the baseline as it is.
2. ``every section on``: the baseline with every ramp-policy section added, set
   so the workload stays the baseline's (gates open on the baseline's date,
   rules are checked every working day but never change the cap), so the ratio
   is the policy's own overhead.
3. ``cautious ramp``, ``aggressive ramp``: the bundled ramps, for information
   (their clearance, and so the simulated days, differ from the baseline's).

Stages are interleaved over ``--rounds`` rounds (in reverse order every other
round) and each keeps its fastest round, so a noisy neighbour on a shared
machine skews the ratios less; the load average is printed with the results.

Usage::

    python benchmarks/bench_policy.py [--reps 20] [--rounds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

import migsim  # noqa: E402

SCENARIOS = REPO_ROOT / "scenarios"
TARGET = 2.0


def every_section_on(baseline: migsim.Scenario) -> migsim.Scenario:
    """The baseline with every ramp-policy section on, at the baseline's workload."""
    data = copy.deepcopy(baseline.to_dict())
    always_true = {"metric": "attempt_count", "window": 1, "op": ">=", "value": 0}
    data["calendar"]["freezes"] = [
        {
            "name": "christmas",
            "from": "2019-12-23",
            "to": "2020-01-03",
            "cap_factor": 1.0,
        }
    ]
    data["capacity"]["schedule"] = [
        {"name": "plan", "from": "2020-06-01", "daily_cap": 2000}  # after clearance
    ]
    data["capacity"]["rules"] = [
        {
            "name": "halt",
            "action": "halt_days",
            "days": 3,
            "when": [
                {"metric": "stall_rate", "window": 5, "op": ">", "value": 0.5},
                {"metric": "attempt_count", "window": 5, "op": ">=", "value": 1000},
            ],
        },
        {
            "name": "cut",
            "action": "cut_to",
            "cap": 1000,
            "when": [
                {"metric": "stalled_backlog", "window": 1, "op": ">", "value": 1e9}
            ],
        },
        {
            "name": "hold",
            "action": "hold",
            "days": 2,
            "when": [
                {"metric": "dumb_count", "window": 10, "op": ">", "value": 1e9},
                {
                    "metric": "active_fix_forward_count",
                    "window": 10,
                    "op": ">",
                    "value": 1e9,
                },
            ],
        },
        {
            "name": "automation_step",
            "action": "step_factor",
            "factor": 1.5,
            "max_cap": 10000,
            "requires": {"gate": "automation", "min_days_at_cap": 1},
            "when": [
                always_true,
                {
                    "metric": "eventual_success_rate",
                    "window": 10,
                    "op": ">=",
                    "value": 0.97,
                },
                {
                    "metric": "first_attempt_success_rate",
                    "window": 10,
                    "op": ">=",
                    "value": 0.9,
                },
                {"metric": "rollback_rate", "window": 10, "op": "<", "value": 0.01},
                {
                    "metric": "active_failure_rate_upper",
                    "op": "<",
                    "value": 0.0,
                    "confidence": 0.95,
                },
            ],
        },  # a bound is never below 0: never fires
    ]
    data["go_no_go"] = {
        "incident_probability": 0.0,
        "incident_duration_days": {"dist": "uniform", "low": 1, "high": 2},
    }
    data["gates"] = [
        {
            "name": "fix",
            "opens_on": {"dist": "uniform", "low": "2019-12-09", "high": "2019-12-09"},
        },
        {
            "name": "entry",
            "all_of": [
                {"name": "fix", "fixed_on": "fix"},
                {"name": "forum", "accepted_on": "2019-12-02", "probability": 1.0},
            ],
        },
        {
            "name": "automation",
            "any_of": [
                {
                    "name": "bat",
                    "accepted_on": {
                        "dist": "triangular",
                        "low": "2019-12-09",
                        "mode": "2020-01-06",
                        "high": "2020-02-03",
                    },
                    "probability": 0.7,
                },
                {"name": "retest", "fixed_on": "2020-02-24"},
            ],
        },
    ]
    for cohort in data["cohorts"]:
        cohort["eligible_from"] = "entry"
        cohort["deferred"] = [{"name": "split_supply", "share": 0.0, "until": "fix"}]
    return migsim.load_scenario(data)


def time_stage(scenario: migsim.Scenario, reps: int, seed: int) -> tuple[float, float]:
    """Seconds per replication of one timed run, and its median clearance day."""
    started = time.perf_counter()
    results = migsim.run(scenario, replications=reps, seed=seed, workers=1)
    seconds = time.perf_counter() - started
    days = sorted(results.clearance_days())
    return seconds / reps, days[len(days) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    baseline = migsim.load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    stages = {
        "foundation (nov2019_epcl)": baseline,
        "every section on": every_section_on(baseline),
        "cautious ramp": migsim.load_scenario(SCENARIOS / "nov2019_cautious_ramp.yaml"),
        "aggressive ramp": migsim.load_scenario(
            SCENARIOS / "nov2019_aggressive_ramp.yaml"
        ),
    }
    print(
        f"migsim {migsim.__version__}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    for scenario in stages.values():  # warm-up: imports, caches, first calls
        migsim.run(scenario, replications=1, seed=args.seed)
    best: dict[str, float] = {}
    medians: dict[str, float] = {}
    for round_ in range(args.rounds):
        order = list(stages.items())
        for label, scenario in order if round_ % 2 == 0 else order[::-1]:
            per_rep, median = time_stage(scenario, args.reps, args.seed)
            best[label] = min(best.get(label, per_rep), per_rep)
            medians[label] = median
        print(f"  round {round_ + 1}/{args.rounds} done", flush=True)

    reference = best["foundation (nov2019_epcl)"]
    print()
    header = (
        f"{'stage':<28}{'reps':>6}{'s/rep':>10}{'ratio':>8}{'median clearance':>18}"
    )
    print(header)
    print("-" * len(header))
    for label, per_rep in best.items():
        print(
            f"{label:<28}{args.reps:>6}{per_rep:>10.4f}{per_rep / reference:>7.2f}x"
            f"{medians[label]:>18.0f}"
        )
    ratio = best["every section on"] / reference
    verdict = "within" if ratio <= TARGET else "ABOVE"
    print(
        f"\nevery section on: {ratio:.2f}x the foundation per replication "
        f"({verdict} the {TARGET:.0f}x target); best of {args.rounds} rounds; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
