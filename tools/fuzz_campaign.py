"""A fuzz and fault campaign of migsim's own: hostile inputs and unlucky operators.

Each case writes its inputs into a fresh folder, runs the ``migsim`` command line
there (as a subprocess, with a 20 s timeout and a memory limit) and sorts what
happened into one category:

- ``ok``: exit 0 and every output passes the conservation checks (the eight
  states partition each cohort every day, first-level outcomes sum to attempts,
  attempts stay within the day's cap, counts are never negative, clearance is
  reached only once enough installations are resolved);
- ``clean_error``: exit 2, one line on stderr, no traceback, nothing left behind;
- ``messy_error``: exit 2 but several lines (usage text, a warning, a stray
  exception printed after the error line);
- ``traceback``: a Python traceback (exit 1) or an unexpected exit status;
- ``crash``: killed by a signal (e.g. the memory limit);
- ``hang``: still running after the timeout;
- ``wrong_result``: exit 0 but a conservation or plausibility check fails, or an
  input that cannot be right (a duplicate key, ``33:20`` for a number, ``true``
  for a count, more outcomes than attempts in actuals) was accepted silently;
- ``disagree``: ``validate`` said valid, then ``run`` refused or crashed;
- ``leftovers``: the command ended (either way) but left temporary or staging
  files, a partial result, or worker processes behind.

Families: ``scenario`` (mutated bundled scenarios, special files), ``set``
(``--set``, ``sweep --grid`` and ``sensitivity --range`` values), ``question``
(mutated decision questions), ``actuals`` (mutated actuals for ``calibrate`` and
``forecast``) and ``fault`` (read-only and full output disks, ``-o .``,
``--overwrite`` of a foreign folder, SIGKILL of ``run -j 2`` and ``sweep -j 2``).
The second round's families (``yaml``, ``state``, ``actuals2``, ``fault2``: YAML
structure and encodings, continued states, CSV and Parquet dtypes, symbolic-link
and read-only outputs, SIGINT and SIGTERM mid-run) are made by `fuzz_kinds`;
``--round`` chooses the rounds.

Usage::

    python tools/fuzz_campaign.py --random 400 --jobs 2 --failures fuzz-failures.jsonl

It prints the counts per family and category and writes every case that is not
``ok`` or ``clean_error`` as one JSON line (its arguments, inputs and stderr).
The checks are importable (`check_run_output`) so the test suite uses the same.

This module is the command line; the campaign's parts live beside it:
`fuzz_checks` (the conservation checks), `fuzz_mutations` (the case records and
the first round's random mutations), `fuzz_catalogue` (the first round's fixed
cases), `fuzz_run` (running a case and sorting it into a category) and
`fuzz_kinds` (the second round). Their names used by the tests are imported here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fuzz_kinds
import fuzz_run
from fuzz_catalogue import EPCL, fault_catalogue, scenario_catalogue, set_catalogue
from fuzz_checks import check_daily, check_run_output
from fuzz_mutations import (
    HOSTILE,
    TINY,
    Case,
    Outcome,
    Step,
    _bundled,
    _csv,
    actuals_mutation,
    base_actuals,
    question_mutation,
    scenario_mutation,
    set_mutation,
)
from fuzz_run import _judge_outputs, _one_line_error, _snapshot, _staging, run_case

__all__ = [
    "EPCL",
    "HOSTILE",
    "TINY",
    "Case",
    "Outcome",
    "Step",
    "_bundled",
    "_judge_outputs",
    "_one_line_error",
    "_snapshot",
    "_staging",
    "actuals_mutation",
    "base_actuals",
    "build_cases",
    "check_daily",
    "check_run_output",
    "main",
    "question_mutation",
    "run_case",
    "scenario_mutation",
    "set_mutation",
]


# ============================================================================ main
def build_cases(n_random: int, seed: int, rows, rounds: str = "all") -> list[Case]:
    """The catalogued cases and ``n_random`` random ones of the chosen rounds
    (``1``: `fuzz_mutations`' and `fuzz_catalogue`'s kinds; ``2``: `fuzz_kinds`;
    ``all``: both)."""
    rng = random.Random(seed)
    bundled = _bundled()
    cases: list[Case] = []
    makers: list[tuple[float, Callable[[int], Case]]] = []
    if rounds in ("1", "all"):
        cases += scenario_catalogue() + set_catalogue() + fault_catalogue()
        makers += [
            (0.40, lambda i: scenario_mutation(bundled, rng, i)),
            (0.25, lambda i: set_mutation(bundled, rng, i)),
            (0.10, lambda i: question_mutation(rng, i)),
            (0.25, lambda i: actuals_mutation(rows, rng, i)),
        ]
    if rounds in ("2", "all"):
        cases += fuzz_kinds.catalogue(rows)
        makers += fuzz_kinds.makers(bundled, fuzz_kinds.base_state(), rng)
    total = sum(weight for weight, _ in makers)
    makers = [(weight / total, make) for weight, make in makers]
    for i in range(n_random):
        pick, acc = rng.random(), 0.0
        for weight, make in makers:
            acc += weight
            if pick <= acc:
                cases.append(make(i))
                break
        else:  # the weights' sum rounded below pick
            cases.append(makers[-1][1](i))
    return cases


def _record(outcome: Outcome) -> dict[str, Any]:
    case = outcome.case
    files = {}
    for rel, content in case.files.items():
        text = content if isinstance(content, str) else repr(content[:200])
        files[rel] = (
            text if len(text) < 20000 else text[:2000] + f"... ({len(text)} chars)"
        )
    return {
        "case": case.name,
        "family": case.family,
        "category": outcome.category,
        "detail": outcome.detail,
        "argv": [s.argv for s in case.steps],
        "stderr": outcome.stderr,
        "seconds": round(outcome.seconds, 2),
        "files": files,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random", type=int, default=400, help="random mutations")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--round",
        choices=["1", "2", "all"],
        default="all",
        help="1: the first round's kinds; 2: fuzz_kinds' (YAML structure, continued "
        "states, CSV/Parquet dtypes, links, SIGINT/SIGTERM); all: both",
    )
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", default=None, help="substring of case names to run")
    parser.add_argument(
        "--skip", default="", help="comma-separated substrings of case names to skip"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=fuzz_run.TIMEOUT,
        help="seconds a step may take before it is a hang (raise on a loaded machine)",
    )
    parser.add_argument("--failures", default="fuzz-failures.jsonl")
    parser.add_argument("--summary", default=None, help="write the counts as JSON")
    parser.add_argument(
        "--all", action="store_true", help="write every case, not only failures"
    )
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="migsim-fuzz-"))
    os.chmod(scratch, 0o777)
    (scratch / "mpl").mkdir(mode=0o777)
    os.chmod(scratch / "mpl", 0o777)
    rows = base_actuals(scratch)
    actuals_text = _csv(rows)
    cases = build_cases(args.random, args.seed, rows, args.round)
    if args.only:
        cases = [c for c in cases if args.only in c.name]
    skipped = [s for s in args.skip.split(",") if s]
    cases = [c for c in cases if not any(s in c.name for s in skipped)]
    fuzz_run.TIMEOUT = args.timeout  # run_case reads it
    print(
        f"{len(cases)} cases, {args.jobs} at a time, timeout {fuzz_run.TIMEOUT:.0f} s",
        flush=True,
    )
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with ThreadPoolExecutor(args.jobs) as pool:
        for k, outcome in enumerate(
            pool.map(lambda c: run_case(c, scratch, actuals_text), cases), 1
        ):
            outcomes.append(outcome)
            if outcome.category not in {"ok", "clean_error"}:
                print(
                    f"  {outcome.category:12s} {outcome.case.name}: {outcome.detail}",
                    flush=True,
                )
            if k % 50 == 0:
                print(
                    f"  ... {k}/{len(cases)} in {time.monotonic() - started:.0f} s",
                    flush=True,
                )
    shutil.rmtree(scratch, ignore_errors=True)

    table: dict[str, Counter] = defaultdict(Counter)
    for outcome in outcomes:
        table[outcome.case.family][outcome.category] += 1
        table["all"][outcome.category] += 1
    categories = [
        "ok",
        "clean_error",
        "messy_error",
        "traceback",
        "crash",
        "hang",
        "wrong_result",
        "disagree",
        "leftovers",
    ]
    print(f"\n{'family':10s}" + "".join(f"{c:>13s}" for c in categories))
    families = ("scenario", "set", "question", "actuals", "fault")
    families += ("yaml", "state", "actuals2", "fault2", "all")
    for family in families:
        print(f"{family:10s}" + "".join(f"{table[family][c]:13d}" for c in categories))
    with open(args.failures, "w") as handle:
        for outcome in outcomes:
            if args.all or outcome.category not in {"ok", "clean_error"}:
                handle.write(json.dumps(_record(outcome)) + "\n")
    if args.summary:
        Path(args.summary).write_text(
            json.dumps({f: dict(c) for f, c in table.items()}, indent=2) + "\n"
        )
    print(
        f"\n{len(outcomes)} cases in {time.monotonic() - started:.0f} s; "
        f"failures in {args.failures}"
    )
    bad = sum(v for k, v in table["all"].items() if k not in {"ok", "clean_error"})
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
