"""Engine against the floor: ``migsim run`` end to end against a vectorised probe.

Target (issue 14): ``migsim run scenarios/nov2019_epcl.yaml -n 1000 -j 2 --seed 1
-o DIR`` end to end at most 8x the probe's 1,000 replications, measured in the
same run. The probe is ``../shared/bench/proto_vector.py`` (not part of migsim:
the baseline's batch model at its barest, vectorised across replications, one
core, no output); it is run as a child process, as is ``migsim run``, so process
start, Parquet and the PNG are in migsim's time.

Printed, in one run: the probe's wall time, ``migsim run``'s wall time, their
ratio, and migsim's in-process CPU seconds per replication (``workers=1``, no
daily rows, after a warm-up) -- the per-replication cost to compare before and
after an engine change; the block engine's and the scalar engine's CPU per
replication on the same replications (their numbers are identical); with
``--fleet-reps 100``, ``migsim run`` of the full fleet against its 6 s target
(``--scenario`` runs another scenario, e.g. the fixed-input
``tests/reference/nov2019_epcl.yaml`` that an older migsim on ``PYTHONPATH``
can read too).

Usage::

    python benchmarks/bench_floor.py [-n 1000] [-j 2] [--seed 1]
        [--probe /work/shared/bench/proto_vector.py] [--inline 100]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIO = REPO_ROOT / "scenarios" / "nov2019_epcl.yaml"
DEFAULT_PROBE = REPO_ROOT.parent / "shared" / "bench" / "proto_vector.py"
TARGET_RATIO = 8.0
FLEET = REPO_ROOT / "scenarios" / "smets1_full_fleet.yaml"
FLEET_TARGET = 6.0


def timed(command: list[str]) -> tuple[float, str]:
    """Wall seconds and standard output of a child process (which must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{command[0]} failed:\n{done.stderr}")
    return elapsed, done.stdout


def inline_seconds_per_replication(path: Path, n: int, seed: int) -> float:
    """migsim's own cost per replication in this process: no pool, no daily rows,
    CPU seconds (steadier than wall time on a shared machine)."""
    import migsim

    scenario = migsim.load_scenario(path)
    migsim.run(scenario, replications=1, seed=seed, daily=False)  # warm-up
    started = time.process_time()
    migsim.run(scenario, replications=n, seed=seed, daily=False)
    return (time.process_time() - started) / n


def engine_seconds(path: Path, n: int, seed: int) -> tuple[float, float]:
    """CPU seconds per replication of the block engine and of the scalar engine
    (one replication at a time), simulating the same replications."""
    import migsim
    from migsim.sim.block import run_blocks, supports
    from migsim.sim.engine import run_replication

    scenario = migsim.load_scenario(path)
    if supports(scenario) is not None:
        raise SystemExit(f"the block engine does not run {path}: {supports(scenario)}")
    ids = list(range(n))
    run_blocks(scenario, seed, ids[:2])  # warm-up
    started = time.process_time()
    run_blocks(scenario, seed, ids)
    block = (time.process_time() - started) / n
    started = time.process_time()
    for k in ids:
        run_replication(scenario, seed, k)
    return block, (time.process_time() - started) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--replications", type=int, default=1000)
    parser.add_argument("-j", "--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--probe", type=Path, default=DEFAULT_PROBE)
    parser.add_argument(
        "--inline", type=int, default=100, help="in-process replications"
    )
    parser.add_argument(
        "--scenario",
        type=Path,
        default=SCENARIO,
        help="scenario for migsim (the probe is always the baseline's barest model)",
    )
    parser.add_argument(
        "--fleet-reps",
        type=int,
        default=0,
        help="also time `migsim run` of this many full-fleet replications",
    )
    args = parser.parse_args(argv)
    if not args.probe.exists():
        raise SystemExit(f"no probe at {args.probe}")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    probe_s, probe_out = timed(
        [sys.executable, str(args.probe), "74000", "2000", str(args.replications)]
    )
    print(f"probe    {probe_s:7.2f} s  ({probe_out.strip()})")
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        command = [sys.executable, "-m", "migsim", "run", str(args.scenario)]
        command += ["-n", str(args.replications), "-j", str(args.workers)]
        command += ["--seed", str(args.seed), "-o", str(Path(tmp) / "run")]
        migsim_s, _ = timed(command)
    ratio = migsim_s / probe_s
    print(
        f"migsim   {migsim_s:7.2f} s  (`migsim run -n {args.replications} -j "
        f"{args.workers}` end to end)"
    )
    print(f"ratio    {ratio:7.1f}x the probe (target <= {TARGET_RATIO:.0f}x)")
    per_rep = inline_seconds_per_replication(args.scenario, args.inline, args.seed)
    print(
        f"inline   {1000 * per_rep:7.2f} ms CPU per replication "
        f"({args.inline} replications, workers=1, no daily rows)"
    )
    block, scalar = engine_seconds(args.scenario, args.inline, args.seed)
    print(
        f"engines  block {1000 * block:.2f} ms, scalar {1000 * scalar:.2f} ms CPU per "
        f"replication: {scalar / block:.1f}x (the same {args.inline} replications, "
        "the same numbers)"
    )
    if args.fleet_reps:
        with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
            command = [sys.executable, "-m", "migsim", "run", str(FLEET)]
            command += ["-n", str(args.fleet_reps), "-j", str(args.workers)]
            command += ["--seed", str(args.seed), "-o", str(Path(tmp) / "run")]
            fleet_s, _ = timed(command)
        print(
            f"fleet    {fleet_s:7.2f} s  (`migsim run smets1_full_fleet -n "
            f"{args.fleet_reps} -j {args.workers}`; target <= {FLEET_TARGET:.0f} s)"
        )
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
