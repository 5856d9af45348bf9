"""Decision benchmark: the bundled OPSG question answered, and what the search saved.

Target (issue 8): the bundled question ``scenarios/questions/opsg_ramp_basis.yaml``
answered with ``-j 2`` in at most 2 minutes on the 2-core machine. Printed, in
one run:

1. ``migsim decide`` on the question (``-n``, ``--seed``, ``-j``): wall time,
   candidates evaluated, replications spent, the answer;
2. a reference measured in the same run: one plain ``migsim.run`` of the
   question's scenario with the same replications and workers, giving seconds
   per replication; from it, what evaluating every value of the lever grid at
   ``-n`` replications would have cost (the planner's hand search, automated),
   and the ratio of that to the search's replications.

Usage::

    python benchmarks/bench_decide.py [--question QUESTION.yaml] [-n 200]
        [--seed 0] [-j 2] [--max-replications 800]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_QUESTION = REPO_ROOT / "scenarios" / "questions" / "opsg_ramp_basis.yaml"
TARGET_SECONDS = 120.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--question", type=Path, default=DEFAULT_QUESTION)
    parser.add_argument("-n", "--replications", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-j", "--workers", type=int, default=2)
    parser.add_argument("--max-replications", type=int, default=None)
    args = parser.parse_args(argv)

    import migsim
    from migsim.experiments.decide import decide
    from migsim.experiments.question import load_question

    question = load_question(args.question)
    grid = math.prod(len(lever.values) for lever in question.levers)
    print(
        f"migsim {migsim.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"question {args.question} (grid of {grid} candidates), -n "
        f"{args.replications}, seed {args.seed}, -j {args.workers}"
    )

    started = time.perf_counter()
    decision = decide(
        question,
        args.replications,
        args.seed,
        args.workers,
        max_replications=args.max_replications,
    )
    wall = time.perf_counter() - started
    print()
    print(decision.text())
    print()
    print(
        f"decide: {wall:.1f} s wall, {len(decision.candidates)} candidates evaluated, "
        f"{decision.spent:,} replications spent "
        f"({'within' if wall <= TARGET_SECONDS else 'OVER'} the "
        f"{TARGET_SECONDS:.0f} s target)"
    )

    started = time.perf_counter()
    migsim.run(
        question.scenario, args.replications, seed=args.seed, workers=args.workers
    )
    reference = time.perf_counter() - started
    per_replication = reference / args.replications
    exhaustive = grid * args.replications
    print(
        f"reference: migsim run of the scenario, {args.replications} replications "
        f"-j {args.workers}: {reference:.1f} s ({per_replication * 1000:.1f} ms per "
        f"replication)"
    )
    print(
        f"every grid value at -n: {exhaustive:,} replications, about "
        f"{exhaustive * per_replication:.0f} s; the search spent "
        f"{decision.spent / exhaustive:.2f}x those replications and "
        f"{wall / (exhaustive * per_replication):.2f}x that time"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (this process): {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
