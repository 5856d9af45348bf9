"""Precision: run replications in batches until the forecast is precise enough.

``run_to_precision`` runs a first batch, then further batches that continue the
replication numbering (so the result is exactly one run of the final count),
and stops at the first batch after which the 95% confidence interval of the
mean clearance day has a half-width of at most ``days`` (or at
``max_replications``). When some replication does not clear within the horizon
the mean clearance day is undefined, so the target becomes the Wilson interval
of P(cleared by the horizon end), with half-width ``share`` (and the summary
says so).

Why batches and an absolute target, rather than the replication algorithm of
Hoad, Robinson & Davies (2010), which adds one replication at a time from three
with a relative (percent of the mean) target and a look-ahead: see
``docs/forecasts-and-report.md`` and ``benchmarks/bench_precision.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from migsim.common.stats import half_width, json_number, mean_ci95, proportion_ci95
from migsim.model.scenario import Scenario, load_scenario
from migsim.results.results import Results
from migsim.runner.runner import run

__all__ = ["Check", "check", "run_to_precision", "target_words"]


@dataclass(frozen=True)
class Check:
    """The precision of one set of clearance days against the target."""

    target: str  # "mean_clearance_day" or "cleared_share"
    half_width: float  # days, or a probability for cleared_share
    goal: float
    replications: int

    @property
    def met(self) -> bool:
        return self.half_width <= self.goal

    def as_dict(self) -> dict[str, Any]:
        return {
            "replications": self.replications,
            "target": self.target,
            "half_width": json_number(self.half_width, ints=None),
            "met": self.met,
        }


def target_words(target: str) -> str:
    """The precision target as a reader says it, for the run table and the report.

    The share cleared stands in when some replication does not clear, and the
    words say so, or a reader would wonder why it is not the mean clearance day.
    """
    if target == "mean_clearance_day":
        return "the mean clearance day"
    return "P(cleared by the horizon end), as some replications do not clear"


def check(days: np.ndarray, days_goal: float, share_goal: float) -> Check:
    """Precision: CI of the mean clearance day, or of the share cleared if some fail."""
    days = np.asarray(days, dtype=float)
    if np.isfinite(days).all():
        return Check(
            "mean_clearance_day", half_width(mean_ci95(days)), days_goal, len(days)
        )
    cleared = int(np.isfinite(days).sum())
    return Check(
        "cleared_share",
        half_width(proportion_ci95(cleared, len(days))),
        share_goal,
        len(days),
    )


def run_to_precision(
    scenario: Scenario | str | Path | dict[str, Any],
    days: float,
    *,
    batch: int = 20,
    seed: int | None = None,
    workers: int = 1,
    max_replications: int = 2000,
    share: float = 0.05,
    progress: Callable[[Check], None] | None = None,
    fail_fast: bool = False,
) -> Results:
    """Run batches of replications until the mean clearance day is known to ``days``.

    Parameters
    ----------
    scenario
        A `Scenario` or anything `load_scenario` accepts.
    days
        Target half-width (days) of the 95% CI of the mean clearance day.
    batch
        Replications in the first and in each further batch.
    seed, workers
        As for `migsim.run`.
    max_replications
        Stop here even if the target is not met (the last batch is cut to fit).
    share
        Target half-width of the 95% CI of P(cleared by the horizon end), used
        instead when some replication does not clear.
    progress
        Called with the `Check` after each batch.
    fail_fast
        As for `migsim.run`: stop at the first failing replication instead of
        recording it and going on (the check then counts the others).

    Returns
    -------
    Results
        Equal to one run of the final count, with a ``precision`` summary
        section: target, goal, half-width reached, replications, met, batches.
    """
    if days <= 0 or share <= 0:
        raise ValueError("precision targets must be positive")
    if batch < 2 or max_replications < batch:
        raise ValueError("need batch >= 2 and max_replications >= batch")
    scenario = load_scenario(scenario)
    parts: list[Results] = []
    checks: list[Check] = []
    done = 0
    while True:
        size = min(batch, max_replications - done)
        part = run(
            scenario,
            replications=size,
            seed=seed,
            workers=workers,
            first_replication=done,
            fail_fast=fail_fast,
        )
        parts.append(part)
        done += size
        clearance = np.concatenate([p.clearance_days() for p in parts])
        checks.append(check(clearance, days, share))
        if progress is not None:
            progress(checks[-1])
        if checks[-1].met or done >= max_replications:
            break
    results = Results.combine(parts)
    last = checks[-1]
    results.annotate(
        "precision",
        {
            "target": last.target,
            "goal": {"mean_clearance_day": days, "cleared_share": share},
            "half_width": last.as_dict()["half_width"],
            "met": last.met,
            "replications": done,
            "batch": batch,
            "max_replications": max_replications,
            "batches": [c.as_dict() for c in checks],
        },
    )
    return results
