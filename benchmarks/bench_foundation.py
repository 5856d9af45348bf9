"""Foundation benchmark: migsim against a per-installation SimPy reference.

The claim migsim has to back up is that batch-level simulation is fast enough
to run thousands of replications of a realistic scenario. A speed figure on
its own means little (it depends on the machine), so every migsim figure here
is a ratio against the naive per-installation model in
``reference_model.py``, measured in the same run on the same machine.

Stages, in order:

1. migsim, ``workers=1``: one warm-up replication (import-time and first-call
   costs, reported but not counted), then ``--migsim-reps`` replications timed
   end to end -- ``migsim.run`` including building its Results object.
2. migsim, ``workers=--workers``: ``--reps`` replications; wall time and
   replications per second.
3. reference model, ``--reference-reps`` replications, run in a child process
   so that its memory (one generator per installation) does not inflate the
   peak RSS attributed to migsim. It times itself; process start-up and
   scenario parsing are excluded.

Peak RSS comes from ``resource.getrusage``: ``RUSAGE_SELF`` for the stages run
in this process (a high-water mark, so each figure is "peak so far") and
``RUSAGE_CHILDREN`` for worker processes, which only covers children that have
exited by the time it is read.

Usage::

    python benchmarks/bench_foundation.py [--scenario scenarios/nov2019_epcl.yaml]
        [--reference-reps 2] [--migsim-reps 50] [--reps 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
REFERENCE_SCRIPT = BENCH_DIR / "reference_model.py"
DEFAULT_SCENARIO = Path("scenarios/nov2019_epcl.yaml")

MIGSIM_MISSING = """\
migsim is not importable, so only the reference model was timed.
  reason: {reason}
Install it into the project venv first, from the repository root:
  .venv/bin/pip install -e .
The benchmark needs migsim.load_scenario(path) and
migsim.run(scenario, replications=..., seed=..., workers=...)."""


@dataclass
class Stage:
    """One row of the results table."""

    label: str
    reps: int
    seconds: float
    peak_rss_mib: float | None = None

    @property
    def per_rep(self) -> float:
        return self.seconds / self.reps

    @property
    def reps_per_second(self) -> float:
        return self.reps / self.seconds


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size so far, in MiB (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def resolve_scenario(path: Path) -> Path:
    """Accept paths relative to the cwd or, failing that, to the repo root."""
    if path.exists() or path.is_absolute():
        return path
    candidate = REPO_ROOT / path
    return candidate if candidate.exists() else path


def import_migsim() -> tuple[ModuleType | None, str]:
    """Import migsim, falling back to the source tree next to this script.

    Returns the module (or None) and a note saying where it came from or why
    it could not be used. The fallback lets the benchmark run from a checkout
    that has not been ``pip install -e``'d yet.
    """
    try:
        migsim = importlib.import_module("migsim")
    except ImportError as exc:
        if not (REPO_ROOT / "migsim").is_dir():
            return None, str(exc)
        sys.path.insert(0, str(REPO_ROOT))
        try:
            migsim = importlib.import_module("migsim")
        except ImportError as exc2:
            return None, f"{exc} (and from {REPO_ROOT}: {exc2})"
    missing = [n for n in ("load_scenario", "run") if not hasattr(migsim, n)]
    if missing:
        # A directory without __init__.py imports as a namespace package.
        where = migsim.__file__ or f"{list(migsim.__path__)} (no __init__.py)"
        return None, f"migsim at {where} has no {', '.join(missing)} yet"
    version = getattr(migsim, "__version__", "?")
    return migsim, f"migsim {version} from {migsim.__file__}"


def time_migsim(migsim: ModuleType, scenario_path: Path, args) -> list[Stage]:
    """Stages 1 and 2: migsim serial and parallel, in this process."""
    stages = []
    t0 = time.perf_counter()
    scenario = migsim.load_scenario(scenario_path)
    load_s = time.perf_counter() - t0
    print(f"  load_scenario: {load_s:.3f}s", flush=True)

    t0 = time.perf_counter()
    migsim.run(scenario, replications=1, seed=args.seed, workers=1)
    warm_s = time.perf_counter() - t0
    print(f"  warm-up (1 rep, not counted): {warm_s:.3f}s", flush=True)

    t0 = time.perf_counter()
    migsim.run(scenario, replications=args.migsim_reps, seed=args.seed, workers=1)
    serial = Stage(
        "migsim workers=1",
        args.migsim_reps,
        time.perf_counter() - t0,
        peak_rss_mib(),
    )
    stages.append(serial)
    print(f"  {serial.label}: {serial.seconds:.2f}s", flush=True)

    t0 = time.perf_counter()
    migsim.run(scenario, replications=args.reps, seed=args.seed, workers=args.workers)
    parallel = Stage(
        f"migsim workers={args.workers}",
        args.reps,
        time.perf_counter() - t0,
        peak_rss_mib(),
    )
    stages.append(parallel)
    print(f"  {parallel.label}: {parallel.seconds:.2f}s", flush=True)
    children = peak_rss_mib(resource.RUSAGE_CHILDREN)
    print(f"  peak RSS of exited worker processes: {children:.0f} MiB", flush=True)
    return stages


def time_reference(scenario_path: Path, args) -> tuple[Stage, list[dict]]:
    """Stage 3: the per-installation reference, in a child process."""
    cmd = [
        sys.executable,
        str(REFERENCE_SCRIPT),
        str(scenario_path),
        "--reps",
        str(args.reference_reps),
        "--seed",
        str(args.seed),
        "--json",
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    reps = report["reps"]
    seconds = sum(r["seconds"] for r in reps)
    stage = Stage("reference (per-installation)", len(reps), seconds)
    stage.peak_rss_mib = report["peak_rss_mib"]
    return stage, reps


def print_table(reference: Stage, stages: list[Stage]) -> None:
    header = (
        f"{'stage':<30}{'reps':>6}{'wall s':>10}{'s/rep':>10}"
        f"{'reps/s':>10}{'speed-up':>10}{'peak RSS':>10}"
    )
    print(header)
    print("-" * len(header))
    for stage in [reference, *stages]:
        speedup = reference.per_rep / stage.per_rep
        rss = "-" if stage.peak_rss_mib is None else f"{stage.peak_rss_mib:.0f} MiB"
        print(
            f"{stage.label:<30}{stage.reps:>6}{stage.seconds:>10.2f}"
            f"{stage.per_rep:>10.4f}{stage.reps_per_second:>10.1f}"
            f"{speedup:>9.1f}x{rss:>10}"
        )
    print("speed-up = reference s/rep / stage s/rep (parallel: wall time / reps)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--reference-reps", type=int, default=2)
    parser.add_argument("--migsim-reps", type=int, default=50)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    scenario_path = resolve_scenario(args.scenario)
    if not scenario_path.exists():
        parser.error(f"scenario not found: {args.scenario}")

    print(f"scenario: {scenario_path}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    migsim, note = import_migsim()
    stages: list[Stage] = []
    if migsim is not None:
        print(note)
        stages = time_migsim(migsim, scenario_path, args)

    print(f"  reference: {args.reference_reps} rep(s) in a child process", flush=True)
    reference, reps = time_reference(scenario_path, args)
    days = [r["clearance_day"] for r in reps]
    cleared = [d for d in days if d is not None]
    mean = f"{statistics.mean(cleared):.1f}" if cleared else "n/a"
    print(f"  reference clearance days: {days} (mean {mean}; None = not cleared)")
    print()
    print_table(reference, stages)
    if migsim is None:
        print()
        print(MIGSIM_MISSING.format(reason=note))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
