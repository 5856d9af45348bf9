"""The fuzz campaign's cases and its first round of random mutations.

`Step`, `Case` and `Outcome` are what every case is made of and judged into;
`scenario_mutation`, `set_mutation`, `question_mutation` and `actuals_mutation`
each give one case with a hostile value (`HOSTILE`) in a bundled scenario, a
``--set``, the bundled question or the actuals of `TINY` (`base_actuals`).
"""

from __future__ import annotations

import copy
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from fuzz_checks import FLOWS, QUESTION, ROOT, SCENARIOS, STATES


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
        argv = ["sensitivity", "sc.yaml", "-n", "2", "--samples", "4", "-o", "sens"]
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
