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
``every section, same workload`` (the target)
    the baseline with every operations section on, at the baseline's workload,
    so that the ratio is what the mechanisms cost (as ``bench_policy.py`` does
    for the ramp policy): each cohort with one supplier (MSM, a nomination that
    does not bind, readiness before the first eligible day), a hard class with
    the cohort's own rates and an excluded class taken out up front (two more
    classes per segment), ELS/MCC capacity large enough not to hold work back
    (every case still goes through the desk), a latent defect that exists and
    hits 1 attempt in 2,000 without being found, volume failures checked every
    day above a threshold the pace never reaches, remote dumb recovery,
    prepayment, change-of-supplier and PPMID exposure all the way, and an
    achieved share of the cap fixed at 1.
``realistic, one supplier`` (for information)
    the same sections with the numbers of ``nov2019_operations.yaml`` (worse
    hard cases, 1% excluded and attempted five times, 300 ELS cases a day, the
    defect found and halting, volume stalls above 1,500 a day) at the
    baseline's cap: more work, a longer tail.
``nov2019_operations`` (for information)
    the bundled scenario (three suppliers per cohort, each a segment), plus a
    PPMID section on the active cohort so that truly every section is on. Its
    calibrated throughput is ~43% of the cap, so it simulates about twice as
    many days: its ratio per replication includes that, its ratio per
    simulated day does not.

The script exits 1 if the target variant is above 2x the foundation.

Usage::

    python benchmarks/bench_operations.py [--reps 10] [--rounds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
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
TARGET = "every section, same workload"
LIMIT = 2.0

PPMID = {
    "cohorts.itron_active.ppmid_join": {"failure_share": 0.05, "until": "2020-02-03"}
}


def with_sections(same_workload: bool) -> migsim.Scenario:
    """The baseline with every section on, one supplier per cohort."""
    base = migsim.load_scenario(BASELINE).to_dict()
    ops = migsim.load_scenario(OPERATIONS).to_dict()
    source = {c["name"]: c for c in ops["cohorts"]}
    base["name"] = "sections_same_workload" if same_workload else "sections_realistic"
    base["capacity"].update(
        allocation="msm", dmin=100, achieved_share={"dist": "fixed", "value": 1.0}
    )
    base["suppliers"] = [
        {
            "name": "supplier_a",
            "business_ready": "2019-12-02",
            "daily_nomination": 5000,
        },
        {
            "name": "supplier_b",
            "business_ready": "2019-12-02",
            "daily_nomination": 5000,
        },
    ]
    base["els"] = {
        "daily_capacity": 100_000 if same_workload else 300,
        "cases_from": ["stall", "rollback", "fix_forward", "dumb"],
    }
    defect = dict(source["itron_active"]["latent_defects"][0], exists_probability=1.0)
    if same_workload:
        defect.update(
            hit_share=0.0005, detected_after_cases=None, detected_after_days=10_000
        )
    for cohort, supplier in zip(
        base["cohorts"], ("supplier_a", "supplier_b"), strict=True
    ):
        extra = copy.deepcopy(source[cohort["name"]])
        cohort["suppliers"] = {supplier: 1.0}
        for key in (
            "dumb",
            "volume_failures",
            "change_of_supplier",
            "hard",
            "excluded",
        ):
            cohort[key] = extra[key]
        cohort["change_of_supplier"]["until"] = None
        if same_workload:
            cohort["hard"]["outcomes"] = cohort["outcomes"]
            cohort["excluded"]["when"] = "up_front"
            cohort["volume_failures"]["above_attempts"] = 100_000
        else:
            cohort["volume_failures"]["above_attempts"] = 1500
    active = base["cohorts"][0]
    active["latent_defects"] = [defect]
    active["prepayment_share"] = 0.2
    active["ppmid_join"] = {"failure_share": 0.05}
    base["sources"] = {}
    return migsim.load_scenario(base)


def variants() -> dict[str, migsim.Scenario]:
    return {
        "foundation": migsim.load_scenario(BASELINE),
        TARGET: with_sections(same_workload=True),
        "realistic, one supplier": with_sections(same_workload=False),
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
        f"{'variant':<32}{'CPU s/rep':>11}{'ratio':>8}{'days/rep':>10}"
        f"{'CPU ms/day':>12}{'ratio/day':>11}"
    )
    print()
    print(header)
    print("-" * len(header))
    for name in scenarios:
        per_rep = statistics.median(cpu[name])
        per_day = per_rep / days[name]
        print(
            f"{name:<32}{per_rep:>11.4f}{per_rep / reference:>7.2f}x"
            f"{days[name]:>10.1f}{per_day * 1000:>12.3f}"
            f"{per_day / per_day_reference:>10.2f}x"
        )
    print("ratio = CPU s/rep / foundation's; ratio/day = the same per simulated day")
    ratio = statistics.median(cpu[TARGET]) / reference
    verdict = "within" if ratio <= LIMIT else "ABOVE"
    print(f"target '{TARGET}': {ratio:.2f}x, {verdict} {LIMIT:.0f}x")
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
