"""The fuzz campaign's conservation checks of migsim's outputs, and the names and
paths they use.

`check_run_output` reads a ``run`` output folder and says what is wrong with it: the
eight states must partition each cohort every day, first-level outcomes must sum to
attempts, attempts stay within the day's cap, counts are never negative, and
clearance is reached only once enough installations are resolved.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
QUESTION = SCENARIOS / "questions" / "opsg_ramp_basis.yaml"

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
