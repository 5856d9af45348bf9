"""The report in meters: each replication's counts at its own ratio.

``migsim report --units meters`` multiplies counts by the scenario's
``meters_per_installation``. Where that ratio is an estimate (a
``meters_per_installation_range``, drawn once per replication), one fixed
multiplier would hide its uncertainty: `in_units` gives the report a view of
the run whose per-replication counts are installations x (the replication's
ratio / the point ratio). The report still multiplies by the point ratio, so
what it shows is each replication's installations x its own ratio, and every
statistic, band and paired difference is taken over those.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from migsim.common.stats import json_number, quantile, statistics
from migsim.results.units import drawn_ratios

__all__ = ["InMeters", "backlog_in_units", "in_units"]

#: Figures that are not counts of installations: never converted to meters.
NOT_COUNTS = frozenset(
    {"clearance_day", "peak_els_backlog", "cos_alerts_lost", "ppmid_join_failures"}
)


def in_units(run: Any, units: str) -> Any:
    """The run as the report should read it in ``units``: itself, or in meters
    an `InMeters` view when its replications drew different ratios."""
    if units != "meters":
        return run
    ratios = drawn_ratios(run)
    if ratios is None:
        return run  # one fixed ratio: the report's multiplier says it all
    return InMeters(run, ratios)


def backlog_in_units(run: Any, scale: float) -> tuple[float, bool]:
    """The backlog the report states, in its units, and whether it is a P50.

    The installations times ``scale``; for an `InMeters` view (drawn ratios) the
    type-1 median over replications of the installations at each one's own
    ratio, as the fan chart's median starts (the point ratio gave 118,400
    meters against a chart starting near 120,600).
    """
    total = float(run.scenario.installations) * scale
    if not isinstance(run, InMeters):
        return total, False
    return quantile(total * run.factors, 0.5), True


class InMeters:
    """A run whose count figures and bands are scaled per replication.

    Each replication's counts are multiplied by its ratio over the point ratio
    (so the report's point multiplier gives its own meters); dates, shares and
    counts of other things are unchanged. Everything else reads through.
    """

    def __init__(self, run: Any, ratios: np.ndarray):
        self._run = run
        point = float(run.scenario.meters_per_installation)
        self.factors = np.asarray(ratios, dtype=float) / point

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)

    def figure(self, name: str, cohort: str | None = None) -> np.ndarray:
        values = self._run.figure(name, cohort)
        if name in NOT_COUNTS:
            return values
        return np.asarray(values, dtype=float) * self.factors

    def bands(
        self,
        name: str,
        cohort: str | None = None,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    ) -> pd.DataFrame:
        return self._run.bands(name, cohort, quantiles, scale=self.factors)

    @cached_property
    def summary(self) -> dict[str, Any]:
        """The run's summary with every count figure's statistics taken over the
        scaled replications (its ``ci95`` is left for the report to recompute
        from them)."""
        out = dict(self._run.summary)
        out.pop("ci95", None)
        out["figures"] = self._statistics(out.get("figures", {}), None)
        cohorts = {}
        for name, section in out.get("cohorts", {}).items():
            section = dict(section)
            section["figures"] = self._statistics(section.get("figures", {}), name)
            cohorts[name] = section
        out["cohorts"] = cohorts
        return out

    def _statistics(
        self, figures: dict[str, Any], cohort: str | None
    ) -> dict[str, Any]:
        out = dict(figures)
        for name in figures:
            if name in NOT_COUNTS:
                continue
            values = self.figure(name, cohort)
            out[name] = {k: json_number(v) for k, v in statistics(values).items()}
        return out
