"""Operations benchmark: the baseline with every operations section on, against
the foundation's time per replication, measured in the same run.

Issue 6's target: with every section on, the baseline stays within 2x the
foundation's time per replication. The variants, all timed end to end with
``migsim.run(..., workers=1)`` (Results included), interleaved round by round
so that a busy machine slows every variant alike; each variant's figure is the
median over rounds of its CPU seconds per replication (``time.process_time``,
so other processes on a shared machine do not count):

``foundation``
    ``scenarios/nov2019_epcl.yaml`` as it is: no operations section, the
    foundation's code path. The reference of every ratio.
``every section, same pace``
    the baseline with every section on in its simplest form: each cohort with
    one supplier (MSM, nominations, business readiness), hard cases and
    exclusions (3 segments per cohort), ELS/MCC capacity, a latent defect that
    surely exists, volume-dependent stalls, remote dumb recovery, prepayment,
    change-of-supplier and PPMID exposure, and an achieved share of the cap
    fixed at 1 -- so the throughput, and the number of simulated days, stay the
    baseline's. This is what the mechanisms cost.
``  without hard/excluded``
    the same without the two sub-populations (1 segment per cohort).
``nov2019_operations``
    the bundled scenario with every section on as a planner would use it
    (three suppliers, hard cases, exclusions: 9 segments per cohort), plus a
    PPMID section on the active cohort (the bundled scenario has no active
    Elster, the cohort 91342 concerns) so that truly every section is on. Its
    calibrated throughput is ~43% of the cap, so it simulates about twice as
    many days as the baseline: its ratio per replication includes that, and
    the ratio per simulated day does not.

Usage::

    python benchmarks/bench_operations.py [--reps 10] [--rounds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

import migsim  # noqa: E402

BASELINE = REPO_ROOT / "scenarios" / "nov2019_epcl.yaml"
OPERATIONS = REPO_ROOT / "scenarios" / "nov2019_operations.yaml"

PPMID = {
    "cohorts.itron_active.ppmid_join": {"failure_share": 0.05, "until": "2020-02-03"}
}


def same_pace(sub_populations: bool = True) -> migsim.Scenario:
    """The baseline with every section on, one supplier per cohort, at its pace."""
    base = migsim.load_scenario(BASELINE).to_dict()
    ops = migsim.load_scenario(OPERATIONS).to_dict()
    base["name"] = "sections_same_pace"
    base["capacity"].update(
        allocation="msm", dmin=100, achieved_share={"dist": "fixed", "value": 1.0}
    )
    base["suppliers"] = [
        {
            "name": "supplier_a",
            "business_ready": "2019-12-16",
            "daily_nomination": 1600,
        },
        {
            "name": "supplier_b",
            "business_ready": "2020-01-06",
            "daily_nomination": 1600,
        },
    ]
    base["els"] = {
        "daily_capacity": 300,
        "cases_from": ["stall", "rollback", "fix_forward", "dumb"],
    }
    source = {c["name"]: c for c in ops["cohorts"]}
    for cohort, supplier in zip(
        base["cohorts"], ("supplier_a", "supplier_b"), strict=True
    ):
        extra = source[cohort["name"]]
        cohort["suppliers"] = {supplier: 1.0}
        keys = ["dumb", "volume_failures", "change_of_supplier"]
        keys += ["hard", "excluded"] if sub_populations else []
        for key in keys:
            cohort[key] = extra[key]
        cohort["volume_failures"]["above_attempts"] = 1500  # it triggers at this pace
    active = base["cohorts"][0]
    active["latent_defects"] = [
        dict(source["itron_active"]["latent_defects"][0], exists_probability=1.0)
    ]
    active["prepayment_share"] = 0.2
    active["ppmid_join"] = PPMID["cohorts.itron_active.ppmid_join"]
    base["sources"] = {}
    return migsim.load_scenario(base)


def variants() -> dict[str, migsim.Scenario]:
    return {
        "foundation": migsim.load_scenario(BASELINE),
        "every section, same pace": same_pace(),
        "  without hard/excluded": same_pace(sub_populations=False),
        "nov2019_operations": migsim.load_scenario(OPERATIONS).with_overrides(PPMID),
    }


def simulated_days(results) -> float:
    """Mean days simulated per replication: to clearance, or the whole horizon."""
    days = results.clearance_days()
    horizon = results.scenario.horizon_days
    return statistics.mean(
        min(horizon, d + 1) if d != float("inf") else horizon for d in days
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10, help="replications per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, migsim {migsim.__version__}"
    )
    scenarios = variants()
    for scenario in scenarios.values():  # warm-up: imports, pmf tables
        migsim.run(scenario, replications=1, seed=args.seed)
    cpu: dict[str, list[float]] = {name: [] for name in scenarios}
    days: dict[str, float] = {}
    for round_ in range(args.rounds):
        for name, scenario in scenarios.items():
            started = time.process_time()
            results = migsim.run(scenario, replications=args.reps, seed=args.seed)
            cpu[name].append((time.process_time() - started) / args.reps)
            days[name] = simulated_days(results)
        print(f"  round {round_ + 1}/{args.rounds} done", flush=True)

    reference = statistics.median(cpu["foundation"])
    per_day_reference = reference / days["foundation"]
    header = (
        f"{'variant':<24}{'CPU s/rep':>11}{'ratio':>8}{'days/rep':>10}"
        f"{'CPU ms/day':>12}{'ratio/day':>11}"
    )
    print()
    print(header)
    print("-" * len(header))
    for name in scenarios:
        per_rep = statistics.median(cpu[name])
        per_day = per_rep / days[name]
        print(
            f"{name:<24}{per_rep:>11.4f}{per_rep / reference:>7.2f}x"
            f"{days[name]:>10.1f}{per_day * 1000:>12.3f}"
            f"{per_day / per_day_reference:>10.2f}x"
        )
    print("ratio = CPU s/rep / foundation's; ratio/day = the same per simulated day")
    return 0


if __name__ == "__main__":
    sys.exit(main())
