"""What a run knows from its scenario alone, whether held in memory or read back.

`Results` (a run in memory) and `SavedRun` (a run read from the directory it
wrote) both answer the questions of `migsim.evidence.forecast.RunLike`. The
answers that come from the scenario alone are written once here, so a saved run
names its cohorts and dates exactly as the run that wrote it.
"""

from __future__ import annotations

from functools import cached_property

import pandas as pd

from migsim.model.scenario import Scenario

__all__ = ["ScenarioRun"]


class ScenarioRun:
    """Cohort names and dates of a run, from its ``scenario``.

    How many replications a run has is not here: `Results` counts the ones it
    holds, `SavedRun` reads the count from ``summary.json`` without reading
    the replications' table.
    """

    scenario: Scenario

    @property
    def cohort_names(self) -> list[str]:
        """Cohorts in the scenario's order, the order of every per-cohort table."""
        return [c.name for c in self.scenario.cohorts]

    @cached_property
    def dates(self) -> pd.DatetimeIndex:
        """Every simulated date: the start date and the horizon's days after it."""
        return pd.date_range(
            self.scenario.start_date, periods=self.scenario.horizon_days
        )
