"""Scale benchmark: speed against the reference, many replications, memory, full fleet.

Every figure of issue 7 in one run, on this machine, with the reference measured
in the same run (absolute timings move with the machine and its load; the
ratios are what to quote):

1. reference: ``--reference-reps`` replications of the per-installation SimPy
   model (``reference_model.py``) on the baseline, in a child process;
2. migsim ``workers=1``: ``--migsim-reps`` baseline replications through
   ``migsim.run`` (daily rows streamed to a spill file, Results included), after
   one untimed warm-up: seconds per replication and the speed-up;
3. migsim ``workers=--workers``: ``--reps`` (1,000) baseline replications;
4. where the time goes: engine, figures, daily rows to Arrow, Parquet write,
   measured piece by piece in this process on the baseline and the fleet;
5. memory: ``migsim run`` as a subprocess for ``--memory-small`` (100) and
   ``--memory-large`` (10,000) baseline replications with ``-j --workers -o``:
   peak RSS of the largest process (``RUSAGE_CHILDREN``) and of the whole
   process tree (sampled from /proc every 50 ms), and their ratio;
6. the bundled full fleet: ``--fleet-reps`` (100) replications with
   ``workers=--workers``.

Targets (issue 7, 2-core machine): speed-up >= 100x; 1,000 baseline replications
<= 10 s; 100 full-fleet replications <= 30 s; large/small peak memory <= 1.5.

Usage::

    python benchmarks/bench_scale.py [--reps 1000] [--workers 2] [--fleet-reps 100]
        [--memory-small 100] [--memory-large 10000] [--skip-memory]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from bench_foundation import Stage, peak_rss_mib, time_reference  # noqa: E402

BASELINE = REPO_ROOT / "scenarios" / "nov2019_epcl.yaml"
FLEET = REPO_ROOT / "scenarios" / "smets1_full_fleet.yaml"


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its waited-for children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


# --------------------------------------------------------------------------- memory
def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (KiB)."""
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    todo.extend(int(p) for p in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_cli_measured(args: list[str]) -> tuple[float, float, float | None]:
    """Run ``migsim`` in a child process: (wall s, largest-process MiB, tree MiB)."""
    wrapper = (
        "import resource, subprocess, sys, json\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'rc': p.returncode, 'maxrss_kib': r}))\n"
    )
    command = [
        sys.executable,
        "-c",
        wrapper,
        sys.executable,
        "-m",
        "migsim.cli.main",
        *args,
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak_tree = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not stop.is_set():
            peak_tree = max(peak_tree, _tree_rss_kib(process.pid))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    if Path("/proc").is_dir():
        sampler.start()
    out, _ = process.communicate()
    stop.set()
    wall = time.perf_counter() - started
    import json

    report = json.loads(out.strip().splitlines()[-1])
    if report["rc"] != 0:
        raise SystemExit(f"migsim {' '.join(args)} failed with {report['rc']}")
    tree = peak_tree / 1024 if peak_tree else None
    return wall, report["maxrss_kib"] / 1024, tree


# --------------------------------------------------------------------------- breakdown
def breakdown(scenario, reps: int, seed: int) -> dict[str, float]:
    """Seconds per piece of a workers=1 run, batch by batch as the runner does
    (on the block engine when a batch is worth a block)."""
    from migsim.results.results import DailyWriter, FigureTable, daily_table
    from migsim.runner.runner import default_batch_size
    from migsim.sim.block import simulate

    parts = dict.fromkeys(
        ("engine", "figures", "daily rows to Arrow", "Parquet write"), 0.0
    )
    size = default_batch_size(scenario, reps)
    with tempfile.TemporaryDirectory() as folder:
        writer = DailyWriter(Path(folder) / "daily.parquet")
        for first in range(0, reps, size):
            t0 = time.perf_counter()
            ids = list(range(first, min(reps, first + size)))
            logs = simulate(scenario, seed, ids)  # as the runner: blocks if worth it
            t1 = time.perf_counter()
            FigureTable.from_logs(scenario, logs)
            t2 = time.perf_counter()
            table = daily_table(scenario, logs)
            t3 = time.perf_counter()
            writer.append(table)
            t4 = time.perf_counter()
            parts["engine"] += t1 - t0
            parts["figures"] += t2 - t1
            parts["daily rows to Arrow"] += t3 - t2
            parts["Parquet write"] += t4 - t3
        writer.close()
    return parts


def print_breakdown(label: str, parts: dict[str, float], reps: int) -> None:
    total = sum(parts.values())
    cells = ", ".join(
        f"{k} {v / reps * 1000:.1f} ms ({v / total:.0%})" for k, v in parts.items()
    )
    print(f"  {label}, per replication: {cells}")


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--reference-reps", type=int, default=2)
    parser.add_argument("--migsim-reps", type=int, default=100)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fleet-reps", type=int, default=100)
    parser.add_argument("--memory-small", type=int, default=100)
    parser.add_argument("--memory-large", type=int, default=10_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import migsim

    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"migsim {migsim.__version__}"
    )
    baseline = migsim.load_scenario(BASELINE)
    fleet = migsim.load_scenario(FLEET)
    rows: list[Stage] = []

    print(
        f"  reference: {args.reference_reps} baseline rep(s) in a child process",
        flush=True,
    )
    cpu: dict[str, float] = {}
    c0 = cpu_seconds()
    reference, _ = time_reference(BASELINE, args)
    cpu[reference.label] = cpu_seconds() - c0  # includes its start-up

    migsim.run(baseline, replications=1, seed=args.seed)  # warm-up, not counted
    t0, c0 = time.perf_counter(), cpu_seconds()
    migsim.run(baseline, replications=args.migsim_reps, seed=args.seed, workers=1)
    rows.append(
        Stage(
            "baseline workers=1",
            args.migsim_reps,
            time.perf_counter() - t0,
            peak_rss_mib(),
        )
    )
    print(f"  {rows[-1].label}: {rows[-1].seconds:.2f}s", flush=True)

    cpu[rows[-1].label] = cpu_seconds() - c0
    t0, c0 = time.perf_counter(), cpu_seconds()
    migsim.run(baseline, replications=args.reps, seed=args.seed, workers=args.workers)
    rows.append(
        Stage(
            f"baseline workers={args.workers}",
            args.reps,
            time.perf_counter() - t0,
            peak_rss_mib(),
        )
    )
    print(f"  {rows[-1].label}: {rows[-1].seconds:.2f}s", flush=True)

    cpu[rows[-1].label] = cpu_seconds() - c0
    t0, c0 = time.perf_counter(), cpu_seconds()
    migsim.run(
        fleet, replications=args.fleet_reps, seed=args.seed, workers=args.workers
    )
    rows.append(
        Stage(
            f"full fleet workers={args.workers}",
            args.fleet_reps,
            time.perf_counter() - t0,
            peak_rss_mib(),
        )
    )
    cpu[rows[-1].label] = cpu_seconds() - c0
    print(f"  {rows[-1].label}: {rows[-1].seconds:.2f}s", flush=True)

    print("\nWhere the time goes (workers=1, piece by piece):")
    print_breakdown("baseline", breakdown(baseline, 100, args.seed), 100)
    print_breakdown("full fleet", breakdown(fleet, 6, args.seed), 6)

    memory = []
    if not args.skip_memory:
        print(
            "\nPeak memory of `migsim run` (subprocess, baseline, "
            f"-j {args.workers}, -o OUTDIR with daily.parquet):",
            flush=True,
        )
        with tempfile.TemporaryDirectory() as folder:
            for n in (args.memory_small, args.memory_large):
                out = Path(folder) / f"run{n}"
                wall, largest, tree = run_cli_measured(
                    [
                        "run",
                        str(BASELINE),
                        "-n",
                        str(n),
                        "--seed",
                        str(args.seed),
                        "-j",
                        str(args.workers),
                        "-o",
                        str(out),
                        "-q",
                    ]
                )
                size = (out / "daily.parquet").stat().st_size / 2**20
                memory.append((n, wall, largest, tree))
                tree_text = "-" if tree is None else f"{tree:.0f} MiB"
                print(
                    f"  n={n:>6}: {wall:7.1f}s wall, largest process {largest:.0f} "
                    f"MiB, process tree {tree_text}, daily.parquet {size:.1f} MiB",
                    flush=True,
                )

    print()
    header = (
        f"{'stage':<30}{'reps':>7}{'wall s':>9}{'s/rep':>9}{'reps/s':>9}"
        f"{'speed-up':>10}{'peak RSS':>10}{'CPU s':>9}"
    )
    print(header)
    print("-" * len(header))
    for stage in [reference, *rows]:
        speedup = reference.per_rep / stage.per_rep
        rss = "-" if stage.peak_rss_mib is None else f"{stage.peak_rss_mib:.0f} MiB"
        print(
            f"{stage.label:<30}{stage.reps:>7}{stage.seconds:>9.2f}"
            f"{stage.per_rep:>9.4f}{stage.reps_per_second:>9.1f}"
            f"{speedup:>9.0f}x{rss:>10}{cpu[stage.label]:>9.1f}"
        )
    print(
        "speed-up = reference s/rep / stage s/rep (for parallel stages: wall / reps);"
        "\nthe fleet row's speed-up compares against the *baseline* reference;"
        "\nCPU s = user + system seconds of this process and its workers (less "
        "sensitive\nto other load than wall time)."
    )
    print(
        f"load average now {os.getloadavg()[0]:.1f} (2 CPUs: above 2 means others "
        "share them)"
    )

    serial, parallel, whole_fleet = rows
    print("\nTargets:")
    checks = [
        (
            f"speed-up workers=1 >= 100x: {reference.per_rep / serial.per_rep:.0f}x",
            reference.per_rep / serial.per_rep >= 100,
        ),
        (
            f"{args.reps} baseline reps with -j {args.workers} <= 10 s: "
            f"{parallel.seconds:.1f} s",
            parallel.seconds <= 10,
        ),
        (
            f"{args.fleet_reps} full-fleet reps with -j {args.workers} <= 30 s: "
            f"{whole_fleet.seconds:.1f} s",
            whole_fleet.seconds <= 30,
        ),
    ]
    if len(memory) == 2:
        (_, _, small, small_tree), (_, _, large, large_tree) = memory
        ratio = large / small
        tree_ratio = (large_tree / small_tree) if small_tree and large_tree else None
        extra = "" if tree_ratio is None else f" (process tree {tree_ratio:.2f})"
        checks.append(
            (
                f"peak memory {args.memory_large} / {args.memory_small} reps "
                f"<= 1.5: {ratio:.2f}{extra}",
                ratio <= 1.5,
            )
        )
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
    print(
        f"  on an idle machine (CPU s / {args.workers} workers, a lower bound): "
        f"{args.reps} baseline reps ~{cpu[parallel.label] / args.workers:.1f} s, "
        f"{args.fleet_reps} full-fleet reps "
        f"~{cpu[whole_fleet.label] / args.workers:.1f} s"
    )
    print(
        "(timings on a shared machine vary with its load; the speed-up is a ratio "
        "measured in this run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
