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
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
QUESTION = SCENARIOS / "questions" / "opsg_ramp_basis.yaml"
TIMEOUT = 20.0
MEMORY_LIMIT = 6 * 2**30  # bytes of address space per migsim process
MARKER = "MIGSIM_FUZZ_CASE"  # environment variable that tags a case's processes

STATES = (
    "pending",
    "queued",
    "stalled",
    "rolled_back",
    "impaired",
    "migrated",
    "dumb",
    "abandoned",
)
FIRST_LEVEL = ("successes", "stalls", "rollbacks", "fix_forwards", "dumbs")
FLOWS = (
    "attempts",
    *FIRST_LEVEL,
    "stall_completions",
    "stall_failures",
    "restorations",
    "abandons",
)
OUTCOMES = ("success", "stall", "rollback", "fix_forward", "dumb")

# Raw YAML scalars a hostile or careless planner might type, with what each is.
HOSTILE = {
    "zero": "0",
    "minus_one": "-1",
    "int64_max": str(2**63 - 1),
    "int64_over": str(2**63),
    "ten_to_30": "1000000000000000000000000000000",
    "ten_to_9": "1000000000",
    "ten_to_7": "10000000",
    "digits_5000": "9" * 5000,
    "float_max": "1e308",
    "float_neg_max": "-1e308",
    "float_tiny": "1e-300",
    "exp_small": "5e-4",
    "nan": ".nan",
    "inf": ".inf",
    "true": "true",
    "yes": "yes",
    "sexagesimal": "33:20",
    "octal_like": "0o17",
    "impossible_date": "2019-02-30",
    "date_far": "9999-12-31",
    "date_1970": "1970-01-01",
    "empty": "''",
    "null": "null",
    "list": "[1, 2]",
    "map": "{a: 1}",
    "text": "lots",
    "long_text": "x" * 10000,
    "control": '"a\\nb\\x00c"',
    "half": "0.5",
    "one": "1",
    "big_count": "100000000",
}
# Replacements that can never be right where the original value was a number.
_NOT_A_NUMBER = {"true", "yes", "sexagesimal"}
# ... or where it was a date.
_NOT_A_DATE = {"zero", "minus_one", "true", "half", "one", "int64_over", "float_max"}


# ============================================================================ checks
def _finite_numbers(node: Any, path: str, problems: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _finite_numbers(value, f"{path}.{key}", problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _finite_numbers(value, f"{path}[{i}]", problems)
    elif isinstance(node, float) and not math.isfinite(node):
        problems.append(f"summary{path} is {node}")


def _cohort_sizes(scenario: dict[str, Any]) -> dict[str, int]:
    return {c["name"]: int(c["installations"]) for c in scenario.get("cohorts", [])}


def _mean_success(outcomes: dict[str, Any]) -> float | None:
    """The mean first-level success rate of a cohort's outcomes (rates or Dirichlet).

    Computed with fractions so alphas near the float limit do not overflow here.
    """
    if not isinstance(outcomes, dict):
        return None
    if outcomes.get("dist") == "dirichlet":
        alpha = outcomes.get("alpha", {})
        try:
            values = {k: Fraction(str(float(alpha.get(k, 0)))) for k in OUTCOMES}
        except (TypeError, ValueError):
            return None
        total = sum(values.values())
        return float(values["success"] / total) if total > 0 else None
    try:
        return float(outcomes.get("success", 0))
    except (TypeError, ValueError):
        return None


def _ranged(scenario: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Cohorts whose size is drawn per replication: name -> (low, high)."""
    out = {}
    for cohort in scenario.get("cohorts", []):
        size = cohort.get("installations_range")
        if isinstance(size, dict) and size.get("from_meters"):
            out[cohort["name"]] = (0, math.inf)  # a range in meters: any size
        elif isinstance(size, dict):
            out[cohort["name"]] = (int(size["low"]), int(size["high"]))
    return out


def check_daily(daily, scenario: dict[str, Any]) -> list[str]:
    """Conservation of a run's daily frame against its scenario (as written)."""
    import numpy as np
    import pandas as pd

    problems: list[str] = []
    sizes = _cohort_sizes(scenario)
    if daily.empty:
        return ["daily.parquet has no rows"]
    states = daily[list(STATES)].to_numpy()
    flows = daily[list(FLOWS)].to_numpy()
    if (states < 0).any():
        column = STATES[int(np.argwhere(states < 0)[0][1])]
        problems.append(f"negative state {column}")
    if (flows < 0).any():
        column = FLOWS[int(np.argwhere(flows < 0)[0][1])]
        problems.append(f"negative flow {column}")
    ranged = _ranged(scenario)  # sizes drawn per replication
    names = daily["cohort"].astype(str)
    totals = states.astype(float).sum(axis=1)
    fixed = ~names.isin(list(ranged)).to_numpy()
    expected = names.map(sizes).to_numpy(dtype=float)
    if not np.array_equal(totals[fixed], expected[fixed]):
        problems.append("states do not partition the cohort on some day")
    for name, (low, high) in ranged.items():
        mine = (names == name).to_numpy()
        sums = pd.Series(totals[mine]).groupby(daily["replication"].to_numpy()[mine])
        if (sums.nunique() > 1).any():
            problems.append(f"cohort {name}: its size changes from day to day")
        elif not sums.first().between(low, high).all():
            problems.append(f"cohort {name}: a size outside its range")
    first = daily[list(FIRST_LEVEL)].to_numpy().astype(float).sum(axis=1)
    if not np.array_equal(first, daily["attempts"].to_numpy(dtype=float)):
        problems.append("first-level outcomes do not sum to attempts")
    if "daily_cap" in daily:
        per_day = daily.groupby(["replication", "date"], observed=True).agg(
            attempts=("attempts", "sum"), cap=("daily_cap", "max")
        )
        if (per_day["attempts"] > per_day["cap"]).any():
            problems.append("attempts above the day's cap")
    for name, group in daily.groupby(daily["cohort"].astype(str), observed=True):
        attempts = group["attempts"].sum()
        cohort = next(
            (c for c in scenario.get("cohorts", []) if c["name"] == name), None
        )
        success = _mean_success(cohort.get("outcomes")) if cohort else None
        if success is not None and success >= 0.5 and attempts >= 1000:
            realised = group["successes"].sum() / attempts
            if realised < 0.05:
                problems.append(
                    f"cohort {name}: success {realised:.3f} of attempts where "
                    f"the scenario's mean is {success:.3f}"
                )
    return problems


def check_run_output(outdir: Path) -> list[str]:
    """Conservation and plausibility of a run's output folder; [] when all hold."""
    import pandas as pd

    problems: list[str] = []
    outdir = Path(outdir)
    try:
        summary = json.loads((outdir / "summary.json").read_text())
        scenario = yaml.safe_load((outdir / "scenario.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return [f"unreadable output: {exc}"]
    _finite_numbers(summary.get("figures", {}), ".figures", problems)
    sizes = _cohort_sizes(scenario)
    if not _ranged(scenario) and summary.get("installations") != sum(sizes.values()):
        problems.append("summary installations differ from the cohorts' sum")
    share = summary.get("cleared_share")
    if not isinstance(share, int | float) or not 0 <= share <= 1:
        problems.append(f"cleared_share {share!r} outside [0, 1]")
    start, end = summary.get("start_date"), summary.get("end_date")
    for value in (summary.get("clearance_date") or {}).values():
        if value is None or str(value).startswith("after "):
            continue  # not cleared within the horizon
        if not (start <= value <= end):
            problems.append(f"clearance date {value} outside {start}..{end}")
            break
    for key in ("start_date", "end_date"):
        value = scenario.get(key) if key == "start_date" else None
        if isinstance(value, int) and not isinstance(value, bool):
            problems.append(f"{key} is a number ({value}), not a date")
    daily_path = outdir / "daily.parquet"
    if daily_path.exists():
        daily = pd.read_parquet(daily_path)
        problems += check_daily(daily, scenario)
        problems += _check_clearance(outdir, daily, scenario)
    return problems


def _check_clearance(outdir: Path, daily, scenario: dict[str, Any]) -> list[str]:
    """A replication counts as cleared only once the clearance share is resolved."""
    import pandas as pd

    reps_path = outdir / "replications.csv"
    if not reps_path.exists():
        return []
    reps = pd.read_csv(reps_path)
    share = float(scenario.get("clearance_share", 1.0))
    total = sum(_cohort_sizes(scenario).values())
    if _ranged(scenario):
        return []  # the total is drawn per replication
    resolved = (
        daily.assign(resolved=daily["migrated"] + daily["dumb"] + daily["abandoned"])
        .groupby(["replication", "date"], observed=True)["resolved"]
        .sum()
    )
    for row in reps.itertuples():
        if pd.isna(row.clearance_date) or total == 0:
            continue
        when = pd.Timestamp(row.clearance_date)
        done = resolved.get((row.replication, when))
        if done is None:
            return [f"replication {row.replication}: clearance date not in daily"]
        if done < share * total or done == 0:
            return [
                f"replication {row.replication}: cleared on {row.clearance_date} "
                f"with {done} of {total} installations resolved"
            ]
    return []


# ============================================================================ cases
@dataclass
class Step:
    """One migsim invocation of a case; ``kind`` says how to judge its outputs."""

    argv: list[str]
    kind: str = "plain"  # validate | run | calibrate | forecast | sweep | plain
    outputs: tuple[str, ...] = ()  # paths (relative to the case) the step writes
    fault: str | None = None  # readonly | fsize | kill
    kill_after: float = 0.0


@dataclass
class Case:
    """Inputs written into a fresh folder, then steps run there in order."""

    name: str
    family: str
    steps: list[Step]
    files: dict[str, str | bytes] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    must_refuse: str | None = None  # why exit 0 would be a wrong result
    keep: tuple[str, ...] = ()  # files a refusal must leave untouched


@dataclass
class Outcome:
    case: Case
    category: str
    detail: str = ""
    stderr: str = ""
    seconds: float = 0.0


def _raw_dump(data: Any, raws: dict[str, str]) -> str:
    """YAML text of ``data`` where placeholder strings become raw scalars."""
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)
    for token, raw in raws.items():
        for quoted in (f"'{token}'", f'"{token}"', token):
            text = text.replace(quoted, raw)
    return text


def _leaves(node: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _leaves(value, (*path, i))
    else:
        out.append((path, node))
    return out


def _dotted(data: Any, path: tuple) -> str | None:
    """The --set address of a leaf (named list items by name), or None."""
    parts, node = [], data
    for part in path:
        if isinstance(part, int):
            item = node[part]
            if not (isinstance(item, dict) and isinstance(item.get("name"), str)):
                return None
            parts.append(item["name"])
        else:
            parts.append(str(part))
        node = node[part]
    return ".".join(parts)


def _put(data: Any, path: tuple, value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _bundled() -> dict[str, dict[str, Any]]:
    """Every bundled scenario, with ``extends`` resolved by migsim's own loader."""
    sys.path.insert(0, str(ROOT))
    from migsim.model.scenario import load_scenario

    out = {}
    for path in sorted(SCENARIOS.rglob("*.yaml")):
        if "questions" in path.parts:
            continue
        out[path.stem] = load_scenario(path).to_dict()
    return out


def _is_date(value: Any) -> bool:
    return isinstance(value, date | datetime) or (
        isinstance(value, str) and len(value) == 10 and value[4] == "-"
    )


def _fast(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A bundled scenario cut to a short horizon (most runs stay under a second)."""
    data = copy.deepcopy(data)
    if rng.random() < 0.7:
        data["horizon_days"] = min(int(data.get("horizon_days", 365)), 200)
    return data


def _run_steps(
    name: str,
    validate_first: bool = True,
    extra: list[str] | None = None,
    sets: list[str] | None = None,
) -> list[Step]:
    """``validate`` (with the same ``--set``s) then ``run``: the two must agree."""
    sets = sets or []
    steps = [Step(["validate", name, *sets], "validate")] if validate_first else []
    extra = [*(extra or []), *sets]
    argv = ["run", name, "-n", "2", "-q", "-o", "out", *(extra or [])]
    steps.append(Step(argv, "run", ("out",)))
    return steps


def scenario_mutation(bundled, rng: random.Random, index: int) -> Case:
    """A bundled scenario with one leaf replaced by a hostile raw scalar."""
    stem = rng.choice(sorted(bundled))
    data = _fast(bundled[stem], rng)
    path, original = rng.choice(_leaves(data))
    label, raw = rng.choice(sorted(HOSTILE.items()))
    _put(data, path, "@@RAW@@")
    text = _raw_dump(data, {"@@RAW@@": raw})
    where = ".".join(map(str, path))
    must = None
    if isinstance(original, int | float) and not isinstance(original, bool):
        if label in _NOT_A_NUMBER:
            must = f"{label} accepted for the number {where}"
    if _is_date(original) and label in _NOT_A_DATE:
        must = f"{label} accepted for the date {where}"
    if label == "impossible_date":
        must = f"impossible date accepted at {where}"
    return Case(
        f"scenario/{stem}/{where}={label}#{index}",
        "scenario",
        _run_steps("sc.yaml"),
        {"sc.yaml": text},
        must_refuse=must,
    )


def set_mutation(bundled, rng: random.Random, index: int) -> Case:
    """A bundled scenario with a hostile ``--set``, sweep grid or sensitivity range."""
    stem = rng.choice(sorted(bundled))
    data = _fast(bundled[stem], rng)
    leaves = [(p, v) for p, v in _leaves(data) if _dotted(data, p)]
    path, original = rng.choice(leaves)
    key = _dotted(data, path)
    if rng.random() < 0.1:
        key += ".nope"
    label, raw = rng.choice(sorted(HOSTILE.items()))
    raw = raw.strip("'\"") if label in {"empty", "control"} else raw
    text = yaml.safe_dump(data, sort_keys=False, width=10**6)
    must = None
    if label == "impossible_date":
        must = f"impossible date accepted for {key}"
    elif isinstance(original, int | float) and not isinstance(original, bool):
        if label in _NOT_A_NUMBER:
            must = f"{label} accepted for the number {key}"
    which = rng.random()
    if which < 0.7:
        steps = _run_steps("sc.yaml", sets=["--set", f"{key}={raw}"])
    elif which < 0.9:
        other = "1" if label != "one" else "2"
        argv = ["sweep", "sc.yaml", "-n", "2", "-q", "-o", "sw"]
        steps = [Step([*argv, "--grid", f"{key}={raw},{other}"], "sweep", ("sw",))]
        must = None  # a sweep records a point's error in its table: exit 0 is fine
    else:
        argv = ["sensitivity", "sc.yaml", "-n", "2", "--samples", "2", "-o", "sens"]
        steps = [Step([*argv, "--range", f"{key}={raw}:{raw}"], "plain", ("sens",))]
        must = None
    return Case(
        f"set/{stem}/{key}={label}#{index}",
        "set",
        steps,
        {"sc.yaml": text},
        must_refuse=must,
    )


def _small_question() -> dict[str, Any]:
    question = yaml.safe_load(QUESTION.read_text())
    question["scenario"] = str(SCENARIOS / "nov2019_cautious_ramp_elster_active.yaml")
    lever = next(iter(question["levers"]))
    question["levers"][lever] = {"low": 4000, "high": 6000, "step": 2000}
    return question


def question_mutation(rng: random.Random, index: int) -> Case:
    """The bundled question, shrunk to two candidates, with one hostile leaf."""
    question = _small_question()
    path, _ = rng.choice(_leaves(question))
    label, raw = rng.choice(sorted(HOSTILE.items()))
    _put(question, path, "@@RAW@@")
    text = _raw_dump(question, {"@@RAW@@": raw})
    where = ".".join(map(str, path))
    argv = ["decide", "q.yaml", "-n", "2", "--max-replications", "2", "-o", "dec"]
    return Case(
        f"question/{where}={label}#{index}",
        "question",
        [Step(argv, "plain", ("dec",))],
        {"q.yaml": text},
        must_refuse=f"impossible date at {where}"
        if label == "impossible_date"
        else None,
    )


TINY = {
    "name": "tiny",
    "start_date": "2024-01-01",
    "horizon_days": 20,
    "seed": 1,
    "calendar": {"working_days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]},
    "capacity": {"daily_cap": 100},
    "meters_per_installation": 1.6,
    "cohorts": [
        {
            "name": "a",
            "installations": 600,
            "mode": "dormant",
            "max_attempts": 3,
            "outcomes": {
                "success": 0.8,
                "stall": 0.1,
                "rollback": 0.1,
                "fix_forward": 0.0,
                "dumb": 0.0,
            },
            "stall": {
                "resolves_after_days": {"dist": "fixed", "days": 2},
                "then_success": 0.9,
            },
            "rollback": {"retry_after_days": {"dist": "fixed", "days": 3}},
        },
        {
            "name": "b",
            "installations": 300,
            "mode": "active",
            "eligible_from": "2024-01-04",
            "outcomes": {
                "success": 0.9,
                "stall": 0.0,
                "rollback": 0.1,
                "fix_forward": 0.0,
                "dumb": 0.0,
            },
            "rollback": {"retry_after_days": {"dist": "fixed", "days": 2}},
        },
    ],
}


def base_actuals(workdir: Path) -> list[dict[str, Any]]:
    """Daily flows of one replication of `TINY` (the first 10 days), as CSV rows."""
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    import migsim

    daily = migsim.run(migsim.load_scenario(TINY), replications=1, seed=3).daily
    daily = daily[daily["date"] < pd.Timestamp("2024-01-11")]
    columns = ["date", "cohort", *FLOWS, *STATES]
    frame = daily[columns].copy()
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    frame["cohort"] = frame["cohort"].astype(str)
    return frame.to_dict("records")


def _csv(rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0]) if rows else ["date"]
    lines = [",".join(columns)]
    lines += [",".join(str(row.get(c, "")) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


_IMPLAUSIBLE = ("outcomes_above_attempts", "completions_above_stalls", "absurd", "far")


def actuals_mutation(rows, rng: random.Random, index: int) -> Case:
    """Valid actuals of the tiny scenario with one cell or row made hostile."""
    rows = copy.deepcopy(rows)
    busy = [i for i, r in enumerate(rows) if r["attempts"] > 0]
    i = rng.choice(busy)
    kind = rng.choice(
        ["cell", "cell", "outcomes_above_attempts", "completions_above_stalls"]
        + ["absurd", "far", "coarse_above", "date"]
    )
    must = None
    if kind == "cell":
        column = rng.choice([c for c in rows[0] if c != "date"])
        label, raw = rng.choice(sorted(HOSTILE.items()))
        rows[i][column] = raw.strip("'")
        what = f"{column}={label}"
    elif kind == "outcomes_above_attempts":
        rows[i]["successes"] = rows[i]["attempts"] + 50
        rows[i]["migrated"] = rows[i]["migrated"]  # states left as they were
        what = "successes>attempts"
        must = "more outcomes than attempts"
    elif kind == "completions_above_stalls":
        for row in rows:
            if row["cohort"] == rows[i]["cohort"]:
                row["stall_completions"] = row["stall_completions"] + 40
        what = "stall_completions>stalls"
        must = "more stall completions than stalls"
    elif kind == "absurd":
        value = rng.choice(["1000000000000000000000000000000", "1e308"])
        for column in ("attempts", "successes"):
            rows[i][column] = value
        for column in ("stalls", "rollbacks", "fix_forwards", "dumbs"):
            rows[i][column] = 0
        what = f"attempts={value}"
        must = "absurd magnitudes"
    elif kind == "far":
        rows = [r for r in rows if r["date"] == rows[-1]["date"]]
        for row in rows:
            row["date"] = "9999-12-31"
        what = "date 9999-12-31"
        must = "a date past the scenario's end"
    elif kind == "coarse_above":
        rows = [
            {"date": "2024-01-05", "cumulative_migrated": 100},
            {"date": "2024-01-08", "cumulative_migrated": 10**7},
        ]
        what = "cumulative_migrated above the fleet"
        must = "cumulative above the cohort"
    else:
        rows[i]["date"] = rng.choice(["2024-02-30", "2023-12-31", "24-01-05", "0"])
        what = f"date={rows[i]['date']}"
    text = _csv(rows)
    scenario = yaml.safe_dump(TINY, sort_keys=False)
    if rng.random() < 0.5:
        argv = ["calibrate", "sc.yaml", "--actuals", "a.csv", "-o", "cal.yaml"]
        steps = [Step([*argv, "-n", "2"], "calibrate", ("cal.yaml",))]
    else:
        argv = ["forecast", "sc.yaml", "--actuals", "a.csv", "--as-of", "2024-01-08"]
        steps = [Step([*argv, "-n", "2", "-o", "fc"], "forecast", ("fc",))]
    return Case(
        f"actuals/{kind}/{what}#{index}",
        "actuals",
        steps,
        {"sc.yaml": scenario, "a.csv": text},
        must_refuse=must,
    )


# ------------------------------------------------------------------ fixed catalogue
#: The November 2019 request with known rates: the catalogue edits it by its lines
#: (the bundled file's shape changes as the model grows).
EPCL = """\
name: nov2019_epcl
description: >-
  The November 2019 EPCL request as the paper states it: 24,000 active Itron and
  50,000 dormant Elster installations at the 2,000-a-day cap OPSG accepted.
start_date: 2019-11-25
horizon_days: 365
seed: 0
calendar:
  working_days: [Mon, Tue, Wed, Thu, Fri]
capacity:
  daily_cap: 2000
  allocation: pro_rata
clearance_share: 1.0
meters_per_installation: 1.6
cohorts:
  - name: itron_active
    installations: 24000
    mode: active
    eligible_from: 2019-12-09
    max_attempts: 5
    outcomes: {success: 0.93, stall: 0.068, rollback: 0.0005, fix_forward: 0.001, dumb: 0.0005}
    stall: {resolves_after_days: {dist: uniform, low: 2, high: 10}, then_success: 0.74}
    rollback: {retry_after_days: {dist: triangular, low: 3, mode: 7, high: 15}}
    fix_forward: {restored_after_days: {dist: fixed, days: 2}}
  - name: elster_dormant
    installations: 50000
    mode: dormant
    eligible_from: 2019-12-09
    max_attempts: 5
    outcomes: {success: 0.93, stall: 0.068, rollback: 0.0005, fix_forward: 0.001, dumb: 0.0005}
    stall: {resolves_after_days: {dist: uniform, low: 2, high: 10}, then_success: 0.74}
    rollback: {retry_after_days: {dist: triangular, low: 3, mode: 7, high: 15}}
    fix_forward: {restored_after_days: {dist: fixed, days: 2}}
"""  # noqa: E501


def _epcl_text() -> str:
    return EPCL


def _with_line(text: str, line: str) -> str:
    return text.replace("\nhorizon_days:", f"\n{line}\nhorizon_days:", 1)


def _replace_line(text: str, key: str, value: str) -> str:
    out = []
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            line = f"{key}: {value}"
        out.append(line)
    return "\n".join(out) + "\n"


def _mkfifo(path: str) -> Callable[[Path], None]:
    return lambda d: os.mkfifo(d / path)


def _symlink_loop(d: Path) -> None:
    (d / "a.yaml").symlink_to(d / "b.yaml")
    (d / "b.yaml").symlink_to(d / "a.yaml")


def _chain(n: int) -> dict[str, str]:
    files = {"s0.yaml": _epcl_text()}
    for k in range(1, n):
        files[f"s{k}.yaml"] = f"extends: s{k - 1}.yaml\nname: s{k}\n"
    return files


def scenario_catalogue() -> list[Case]:
    """The hostile scenario files the issue lists, each once."""
    epcl = _epcl_text()
    fast = _replace_line(epcl, "horizon_days", "200")
    deep = "a: " + "[" * 1000 + "]" * 1000 + "\n"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    twice = (
        "extends: nov2019_epcl.yaml\nname: twice\ncohorts:\n"
        "  - name: extra\n    installations: 10\n    mode: dormant\n"
        "    outcomes: {success: 1, stall: 0, rollback: 0, fix_forward: 0, dumb: 0}\n"
    )
    # "extra" twice in one extending file: it would merge into one cohort silently
    child = "extends: mid.yaml\nname: child\ncohorts:\n"
    child += (
        "  - {name: extra, installations: 5}\n  - {name: extra, installations: 7}\n"
    )
    cases = [
        ("duplicate_key", {"sc.yaml": _with_line(fast, "horizon_days: 30")}, "dup"),
        ("sexagesimal_cap", {"sc.yaml": fast.replace("2000\n", "33:20\n", 1)}, "sex"),
        ("bool_horizon", {"sc.yaml": _replace_line(fast, "horizon_days", "true")}, "b"),
        ("start_date_0", {"sc.yaml": _replace_line(fast, "start_date", "0")}, "0"),
        (
            "impossible_start",
            {"sc.yaml": _replace_line(fast, "start_date", "2019-02-30")},
            "d",
        ),
        (
            "past_9999",
            {"sc.yaml": _replace_line(fast, "start_date", "9999-06-01")},
            None,
        ),
        ("digits_5000", {"sc.yaml": _replace_line(fast, "seed", "9" * 5000)}, None),
        ("int64_over_cap", {"sc.yaml": fast.replace("2000\n", f"{2**63}\n", 1)}, None),
        ("installations_2_63", {"sc.yaml": fast.replace("24000", str(2**63), 1)}, None),
        ("deep_nesting", {"sc.yaml": deep}, None),
        ("anchor_bomb", {"sc.yaml": bomb}, None),
        (
            "python_tag",
            {"sc.yaml": "name: !!python/object/apply:os.system ['true']\n"},
            None,
        ),
        ("empty_file", {"sc.yaml": ""}, None),
        ("binary", {"sc.yaml": bytes(range(256)) * 4}, None),
        ("comments_20mb", {"sc.yaml": "# x\n" * 5_000_000 + fast}, None),
        (
            "max_attempts_1e9",
            {"sc.yaml": fast.replace("max_attempts: 5", "max_attempts: 1000000000", 1)},
            None,
        ),
        (
            "horizon_1e9",
            {"sc.yaml": _replace_line(fast, "horizon_days", "1000000000")},
            None,
        ),
        (
            "delay_1e9",
            {"sc.yaml": fast.replace("days: 2}", "days: 1000000000}", 1)},
            None,
        ),
        (
            "delay_1e7",
            {"sc.yaml": fast.replace("days: 2}", "days: 10000000}", 1)},
            None,
        ),
        (
            "lognormal_1e308",
            {
                "sc.yaml": fast.replace(
                    "{dist: fixed, days: 2}",
                    "{dist: lognormal, median: 1e308, sigma: 1}",
                    1,
                )
            },
            None,
        ),
        (
            "clearance_1e-300",
            {"sc.yaml": _replace_line(fast, "clearance_share", "1e-300")},
            None,
        ),
        (
            "cohort_twice_extends",
            {
                "base.yaml": epcl,
                "mid.yaml": twice.replace("nov2019_epcl.yaml", "base.yaml"),
                "sc.yaml": child,
            },
            "twice",
        ),
    ]
    out = []
    for name, files, must in cases:
        out.append(
            Case(
                f"scenario/catalogue/{name}",
                "scenario",
                _run_steps("sc.yaml"),
                files,
                must_refuse=None if must is None else f"{name} accepted",
            )
        )
    rates = "{success: 0.93, stall: 0.068, rollback: 0.0005, fix_forward: 0.001, "
    rates += "dumb: 0.0005}"
    alpha = "{dist: dirichlet, alpha: {success: 1e308, stall: 1e308, rollback: 1, "
    alpha += "fix_forward: 1, dumb: 1}}"
    dirichlet = fast.replace(f"outcomes: {rates}", f"outcomes: {alpha}", 1)
    out.append(
        Case(
            "scenario/catalogue/dirichlet_1e308",
            "scenario",
            _run_steps("sc.yaml"),
            {"sc.yaml": dirichlet},
        )
    )
    specials = [
        ("fifo", _mkfifo("sc.yaml"), "sc.yaml"),
        ("symlink_loop", _symlink_loop, "a.yaml"),
        ("directory", lambda d: (d / "sc.yaml").mkdir(), "sc.yaml"),
        ("dev_zero", None, "/dev/zero"),
        ("missing", None, "nope.yaml"),
    ]
    for name, setup, target in specials:
        out.append(
            Case(
                f"scenario/catalogue/{name}",
                "scenario",
                [Step(["validate", target], "validate"), *_run_steps(target, False)],
                setup=setup,
            )
        )
    for n, name in ((40, "extends_40"), (1500, "extends_1500")):
        out.append(
            Case(
                f"scenario/catalogue/{name}",
                "scenario",
                _run_steps(f"s{n - 1}.yaml"),
                _chain(n),
            )
        )
    cycle = {"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}
    out.append(
        Case(
            "scenario/catalogue/extends_cycle", "scenario", _run_steps("a.yaml"), cycle
        )
    )
    return out


def set_catalogue() -> list[Case]:
    fast = _replace_line(_epcl_text(), "horizon_days", "200")
    rate = "cohorts.elster_dormant.outcomes.dumb"
    cases = [
        ("exp_rate", f"{rate}=5e-4", None),
        ("impossible_date", "start_date=2019-02-30", "impossible date"),
        ("sexagesimal", "capacity.daily_cap=33:20", "sexagesimal"),
        ("bool_count", "cohorts.itron_active.installations=true", "bool"),
        ("horizon_past_9999", "start_date=9999-01-01", None),
    ]
    out = [
        Case(
            f"set/catalogue/{name}",
            "set",
            _run_steps("sc.yaml", sets=["--set", s]),
            {"sc.yaml": fast},
            must_refuse=must and f"{must} accepted",
        )
        for name, s, must in cases
    ]
    out.append(
        Case(
            "set/catalogue/scheduler_not_url",
            "set",
            _run_steps("sc.yaml", False, extra=["--scheduler", "not-a-url"]),
            {"sc.yaml": fast},
        )
    )
    grid = ["sweep", "sc.yaml", "-n", "2", "-q", "-o", "sw", "--grid"]
    out.append(
        Case(
            "set/catalogue/grid_impossible_date",
            "set",
            [Step([*grid, "start_date=2019-02-30,2019-03-01"], "sweep", ("sw",))],
            {"sc.yaml": fast},
        )
    )
    rng = [
        "sensitivity",
        "sc.yaml",
        "-n",
        "2",
        "--samples",
        "2",
        "-o",
        "sens",
        "--range",
    ]
    out.append(
        Case(
            "set/catalogue/range_impossible_date",
            "set",
            [Step([*rng, "start_date=2019-02-30:2019-03-01"], "plain", ("sens",))],
            {"sc.yaml": fast},
        )
    )
    question = _small_question()
    question["objective"] = {
        "maximise": "migrated_by",
        "date": "@@D@@",
        "statistic": "mean",
    }
    out.append(
        Case(
            "question/catalogue/impossible_date",
            "question",
            [Step(["decide", "q.yaml", "-n", "2", "-o", "dec"], "plain", ("dec",))],
            {"q.yaml": _raw_dump(question, {"@@D@@": "2020-02-30"})},
        )
    )
    return out


def fault_catalogue() -> list[Case]:
    """Unlucky operators: read-only or full disks, odd output folders, killed runs."""
    fast = _replace_line(_epcl_text(), "horizon_days", "200")
    files = {"sc.yaml": fast}
    tiny = yaml.safe_dump(TINY, sort_keys=False)
    run = ["run", "sc.yaml", "-n", "2", "-q"]
    out = []
    for fault in ("readonly", "full"):
        commands = [
            ("run", [*run, "-o", "ro/out"], "run", ("ro/out",)),
            (
                "sweep",
                [
                    "sweep",
                    "sc.yaml",
                    "-n",
                    "2",
                    "-q",
                    "-o",
                    "ro/sw",
                    "--grid",
                    "capacity.daily_cap=1000,2000",
                ],
                "sweep",
                ("ro/sw",),
            ),
            (
                "calibrate",
                [
                    "calibrate",
                    "tiny.yaml",
                    "--actuals",
                    "a.csv",
                    "-o",
                    "ro/cal.yaml",
                    "-n",
                    "2",
                ],
                "calibrate",
                ("ro/cal.yaml",),
            ),
            (
                "forecast",
                [
                    "forecast",
                    "tiny.yaml",
                    "--actuals",
                    "a.csv",
                    "--as-of",
                    "2024-01-08",
                    "-n",
                    "2",
                    "-o",
                    "ro/fc",
                ],
                "forecast",
                ("ro/fc",),
            ),
            (
                "report",
                ["report", "sc.yaml", "-n", "2", "-o", "ro/report.html"],
                "plain",
                ("ro/report.html",),
            ),
        ]
        for name, argv, kind, outputs in commands:
            out.append(
                Case(
                    f"fault/{fault}/{name}",
                    "fault",
                    [Step(argv, kind, outputs, fault=fault)],
                    {**files, "tiny.yaml": tiny, "a.csv": "@@ACTUALS@@"},
                    setup=lambda d: (d / "ro").mkdir(),
                )
            )
    out.append(
        Case(
            "fault/outdir_dot",
            "fault",
            [Step([*run, "-o", ".", "--overwrite"], "plain")],
            files,
        )
    )
    out.append(
        Case(
            "fault/outdir_dot_no_overwrite",
            "fault",
            [Step([*run, "-o", "."], "plain")],
            files,
        )
    )
    out.append(
        Case(
            "fault/outdir_is_file",
            "fault",
            [Step([*run, "-o", "afile"], "plain")],
            {**files, "afile": "x"},
            keep=("afile",),
        )
    )
    out.append(
        Case(
            "fault/overwrite_foreign",
            "fault",
            [Step([*run, "-o", "keep", "--overwrite"], "plain")],
            {**files, "keep/precious.txt": "mine"},
            keep=("keep/precious.txt",),
            must_refuse="--overwrite replaced a folder migsim did not write",
        )
    )
    long = _replace_line(_epcl_text(), "horizon_days", "1800")
    out.append(
        Case(
            "fault/kill_run_j2",
            "fault",
            [
                Step(
                    ["run", "sc.yaml", "-n", "400", "-j", "2", "-q", "-o", "out"],
                    "run",
                    ("out",),
                    fault="kill",
                    kill_after=5.0,
                )
            ],
            {"sc.yaml": long},
        )
    )
    out.append(
        Case(
            "fault/kill_sweep_j2",
            "fault",
            [
                Step(
                    [
                        "sweep",
                        "sc.yaml",
                        "-n",
                        "100",
                        "-j",
                        "2",
                        "-q",
                        "-o",
                        "sw",
                        "--grid",
                        "capacity.daily_cap=1000,1500,2000,2500",
                    ],
                    "sweep",
                    ("sw",),
                    fault="kill",
                    kill_after=5.0,
                )
            ],
            {"sc.yaml": long},
        )
    )
    return out


# ============================================================================ running
def _preexec() -> None:
    """In the child: its own process group, a memory limit, and Ctrl-C's default
    action (a shell without job control starts background jobs ignoring it)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _command(step: Step, case_dir: Path) -> list[str]:
    """The command line of a step; a disk fault wraps it in a mount namespace.

    ``readonly`` bind-mounts ``ro/`` read-only (writes fail with EROFS);
    ``full`` mounts a 32 KiB tmpfs on ``ro/`` (writes fail with ENOSPC) and
    lists what is left on it afterwards, since the mount ends with the command.
    """
    cmd = [sys.executable, "-m", "migsim", *step.argv]
    if step.fault == "readonly":
        script = 'mount --bind -o ro ro ro && exec "$@"'
    elif step.fault == "readonly_out":  # the output folder itself, a mount point
        script = f'mount --bind -o ro {step.outputs[0]} {step.outputs[0]} && exec "$@"'
    elif step.fault == "full":
        listing = case_dir.parent / f"{case_dir.name}.full"
        script = (
            'mount -t tmpfs -o size=32k tmpfs ro && { "$@"; rc=$?; '
            f"find ro -mindepth 1 > {listing}; exit $rc; }}"
        )
    else:
        return cmd
    return ["unshare", "-m", "sh", "-c", script, "sh", *cmd]


def _environment(case_dir: Path, tag: str) -> dict[str, str]:
    temp = case_dir.parent / f"{case_dir.name}.tmp"
    temp.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        TMPDIR=str(temp),
        PYTHONPATH=str(ROOT),
        MPLCONFIGDIR=str(case_dir.parent / "mpl"),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        HOME=str(case_dir.parent),
        **{MARKER: tag},
    )
    return env


def _tagged_processes(tag: str) -> list[int]:
    """Processes still carrying this case's marker in their environment."""
    found = []
    needle = f"{MARKER}={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _snapshot(directory: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(directory):
        rel = Path(dirpath).relative_to(directory)
        for name in (*dirnames, *filenames):
            out.add(str(rel / name))
    return out


def _outside_leftovers(case_dir: Path) -> set[str]:
    """Files a step left in its TMPDIR, or on the full disk it wrote to."""
    left = {f"$TMPDIR/{n}" for n in _snapshot(case_dir.parent / f"{case_dir.name}.tmp")}
    listing = case_dir.parent / f"{case_dir.name}.full"
    if listing.exists():
        left |= set(listing.read_text().split())
        listing.unlink()
    return left


def _resumable_store(step: Step, case_dir: Path, name: str, new: set[str]) -> bool:
    """A sweep's store (its manifest, finished points) is meant to outlive a
    failed run, which resumes it: not a leftover. Its temporaries are."""
    if step.kind != "sweep" or not step.outputs:
        return False
    store = step.outputs[0]
    inside = name == store or name.startswith(f"{store}/")
    manifest = f"{store}/manifest.json"
    return (
        inside
        and (manifest in new or (case_dir / manifest).is_file())
        and not Path(name).name.startswith(".")
    )


def _one_line_error(stderr: str) -> tuple[bool, str]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback" in stderr:
        return False, "traceback"
    if len(lines) != 1:
        return False, f"{len(lines)} lines on stderr"
    return True, ""


def _judge_outputs(step: Step, case_dir: Path) -> list[str]:
    problems: list[str] = []
    if step.kind in {"run", "forecast"} and step.outputs:
        target = case_dir / step.outputs[0]
        if target.is_dir():
            problems += check_run_output(target)
        else:
            problems.append(f"{step.outputs[0]} missing after exit 0")
    if step.kind == "calibrate":
        target = case_dir / step.outputs[0]
        try:
            data = yaml.safe_load(target.read_text())
            for cohort in data["cohorts"]:
                rates = cohort["outcomes"]
                if rates.get("dist") != "dirichlet":
                    values = [float(rates[k]) for k in OUTCOMES]
                    if not (abs(sum(values) - 1) < 1e-6 and min(values) >= 0):
                        problems.append(f"calibrated rates of {cohort['name']} invalid")
        except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
            problems.append(f"calibrated scenario unreadable: {exc}")
    if step.kind == "sweep":
        if not (case_dir / step.outputs[0] / "sweep.parquet").exists():
            problems.append("sweep.parquet missing after exit 0")
    return problems


def _staging(names: set[str]) -> list[str]:
    """Names that look like temporary or staging files of an interrupted write."""
    markers = ("migsim-daily-", ".tmp", ".old.", ".staging", ".partial")
    return sorted(
        n
        for n in names
        if Path(n).name.startswith(".") or any(m in Path(n).name for m in markers)
    )


def run_case(case: Case, scratch: Path, actuals_text: str) -> Outcome:
    """Write a case's inputs into a fresh folder, run its steps, judge them."""
    case_dir = Path(tempfile.mkdtemp(prefix="case-", dir=scratch))
    os.chmod(case_dir, 0o777)
    for rel, content in case.files.items():
        path = case_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "@@ACTUALS@@":
            content = actuals_text
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    if case.setup:
        case.setup(case_dir)
    for dirpath, dirnames, filenames in os.walk(case_dir):
        for name in (*dirnames, *filenames):
            path = Path(dirpath) / name
            if not path.is_symlink() and not path.is_fifo():
                os.chmod(path, 0o777 if path.is_dir() else 0o666)
    if (case_dir / "ro").is_dir():
        os.chmod(case_dir / "ro", 0o555)
    started = time.monotonic()
    try:
        return _run_steps_of(case, case_dir, started)
    finally:
        for pid in _tagged_processes(case_dir.name):
            try:
                os.kill(pid, signal.SIGKILL)  # processes this case started
            except ProcessLookupError:
                pass
        shutil.rmtree(case_dir, ignore_errors=True)
        shutil.rmtree(case_dir.parent / f"{case_dir.name}.tmp", ignore_errors=True)


def _run_steps_of(case: Case, case_dir: Path, started: float) -> Outcome:
    env = _environment(case_dir, case_dir.name)
    validated = False
    stderr = ""
    for step in case.steps:
        before = _snapshot(case_dir)
        proc = subprocess.Popen(
            _command(step, case_dir),
            cwd=case_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_preexec,
        )
        if step.fault in INTERRUPTS:
            return _judge_kill(case, step, proc, case_dir, before, started)
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return Outcome(case, "hang", f"{step.argv[0]} over {TIMEOUT:.0f} s")
        stderr = err.decode(errors="replace")
        seconds = time.monotonic() - started
        after = _snapshot(case_dir)
        new = after - before | _outside_leftovers(case_dir)
        code = proc.returncode
        if code < 0:
            return Outcome(case, "crash", f"signal {-code}", stderr[-3000:], seconds)
        if code not in (0, 2) or "Traceback" in stderr:
            if validated and step.kind == "run":
                return Outcome(
                    case,
                    "disagree",
                    "validate ok, run crashed",
                    stderr[-3000:],
                    seconds,
                )
            return Outcome(case, "traceback", f"exit {code}", stderr[-3000:], seconds)
        if code == 2:
            if validated and step.kind == "run":
                return Outcome(
                    case,
                    "disagree",
                    "validate ok, run refused",
                    stderr[-3000:],
                    seconds,
                )
            ok, why = _one_line_error(stderr)
            if not ok:
                return Outcome(case, "messy_error", why, stderr[-3000:], seconds)
            new = {n for n in new if not _resumable_store(step, case_dir, n, new)}
            if new:
                return Outcome(
                    case,
                    "leftovers",
                    f"left {sorted(new)[:5]}",
                    stderr[-3000:],
                    seconds,
                )
            for rel in case.keep:
                if not (case_dir / rel).exists():
                    return Outcome(
                        case, "wrong_result", f"{rel} deleted", stderr, seconds
                    )
            return Outcome(case, "clean_error", "", stderr, seconds)
        # exit 0
        if case.must_refuse:
            return Outcome(
                case, "wrong_result", case.must_refuse, stderr[-3000:], seconds
            )
        for rel in case.keep:
            if not (case_dir / rel).exists():
                return Outcome(case, "wrong_result", f"{rel} deleted", stderr, seconds)
        problems = _judge_outputs(step, case_dir)
        if problems:
            return Outcome(
                case, "wrong_result", "; ".join(problems[:3]), stderr[-3000:], seconds
            )
        stray = _staging(new) + sorted(n for n in new if n.startswith("$TMPDIR/"))
        if stray:
            return Outcome(case, "leftovers", f"left {stray[:5]}", stderr, seconds)
        validated = step.kind == "validate"
    return Outcome(case, "ok", "", stderr[-500:], time.monotonic() - started)


#: How a step is interrupted mid-way: SIGKILL to the parent only (its workers
#: must notice by themselves), SIGINT to the process group (Ctrl-C in a
#: terminal) or SIGTERM to the parent (``kill PID``).
INTERRUPTS = ("kill", "sigint", "sigterm")


def _judge_kill(case, step, proc, case_dir, before, started) -> Outcome:
    """Interrupt a step mid-run (`INTERRUPTS`); workers must follow, nothing may
    stay behind, no traceback is printed, and a rerun must finish (a sweep or a
    decision resuming its store, to the same result as a run never stopped)."""
    time.sleep(step.kill_after)
    if proc.poll() is not None:
        err = proc.stderr.read().decode(errors="replace")
        return Outcome(
            case,
            "ok" if proc.returncode == 0 else "traceback",
            "finished before the kill",
            err[-2000:],
        )
    if step.fault == "sigint":
        os.killpg(proc.pid, signal.SIGINT)
    elif step.fault == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        proc.kill()
    try:
        _, err_bytes = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Outcome(case, "hang", f"still running 30 s after {step.fault}")
    stopped = err_bytes.decode(errors="replace")
    if "Traceback" in stopped or len(stopped.strip().splitlines()) > 1:
        category = "traceback" if "Traceback" in stopped else "messy_error"
        return Outcome(case, category, f"after {step.fault}", stopped[-3000:])
    deadline = time.monotonic() + 5
    survivors = _tagged_processes(case_dir.name)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.2)
        survivors = _tagged_processes(case_dir.name)
    seconds = time.monotonic() - started
    if survivors:
        return Outcome(
            case,
            "leftovers",
            f"{len(survivors)} worker(s) outlived the killed parent",
            "",
            seconds,
        )
    # a rerun must clean up stale staging and finish (a sweep resumes)
    env = _environment(case_dir, case_dir.name)
    argv = [a for a in step.argv]
    if step.kind == "run":
        argv = [*argv[: argv.index("-n") + 1], "2", *argv[argv.index("-n") + 2 :]]
        argv.append("--overwrite")
    rerun = subprocess.run(
        [sys.executable, "-m", "migsim", *argv],
        cwd=case_dir,
        env=env,
        capture_output=True,
        timeout=600,
        preexec_fn=_preexec,
    )
    err = rerun.stderr.decode(errors="replace")
    if rerun.returncode != 0:
        return Outcome(
            case,
            "traceback" if "Traceback" in err else "messy_error",
            f"rerun after the kill: exit {rerun.returncode}",
            err[-3000:],
            seconds,
        )
    stray = _staging(_snapshot(case_dir))
    stray += sorted(n for n in _outside_leftovers(case_dir) if n.startswith("$TMPDIR/"))
    if stray:
        return Outcome(case, "leftovers", f"after rerun: {stray[:5]}", err, seconds)
    problems = _judge_outputs(step, case_dir) + _same_as_uninterrupted(
        step, case_dir, env
    )
    if problems:
        return Outcome(case, "wrong_result", "; ".join(problems[:3]), err, seconds)
    return Outcome(case, "ok", f"{step.fault}, no workers left, rerun clean", err)


#: The files of a resumed store that must equal a store never interrupted.
_SAME = {"sweep": ("sweep.parquet",), "decide": ("candidates.csv",)}


def _same_as_uninterrupted(step: Step, case_dir: Path, env) -> list[str]:
    """A sweep or decision resumed after an interrupt, against one run whole."""
    names = _SAME.get(step.kind, ())
    if not names or step.fault == "kill":  # the first round's kills: as before
        return []
    store = step.outputs[0]
    argv = [a if a != store else f"{store}.whole" for a in step.argv]
    whole = subprocess.run(
        [sys.executable, "-m", "migsim", *argv],
        cwd=case_dir,
        env=env,
        capture_output=True,
        timeout=900,
        preexec_fn=_preexec,
    )
    if whole.returncode != 0:
        return [f"the uninterrupted run failed: exit {whole.returncode}"]
    return [
        f"{store}/{name} differs from a {step.kind} never interrupted"
        for name in names
        if (case_dir / store / name).read_bytes()
        != (case_dir / f"{store}.whole" / name).read_bytes()
    ]


# ============================================================================ main
def build_cases(n_random: int, seed: int, rows, rounds: str = "all") -> list[Case]:
    """The catalogued cases and ``n_random`` random ones of the chosen rounds
    (``1``: this module's kinds; ``2``: `fuzz_kinds`; ``all``: both)."""
    import fuzz_kinds

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
    global TIMEOUT
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
        default=TIMEOUT,
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
    TIMEOUT = args.timeout
    print(
        f"{len(cases)} cases, {args.jobs} at a time, timeout {TIMEOUT:.0f} s",
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
