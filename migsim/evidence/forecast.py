"""Forecast: clearance dates and risks with their Monte Carlo uncertainty.

A run of R replications estimates each figure; a different R (or seed) would
give a slightly different estimate. This module says by how much, so a reader
can see whether more replications are needed:

- a mean gets a Student-t 95% confidence interval (``mean_ci95``);
- a type-1 quantile gets a *distribution-free* 95% interval between two order
  statistics of the replications (``quantile_ci95``): no assumption about the
  shape of the distribution, and every end point is a value a replication
  produced (a date, when the figure is the clearance day);
- a probability (the share of replications cleared by a date) gets a Wilson 95%
  score interval (``proportion_ci95``), which stays inside [0, 1] and does not
  collapse to zero width when every replication agrees.

The intervals are computed in `migsim.common.stats` (re-exported here);
`migsim.evidence.intervals` applies them to a run (re-exported here too).
``annotate`` adds them to a run's summary (``ci95``, ``p_clear_by``,
``p_clear_by_ci95``, ``p_clear_by_cohort``), so ``summary.json`` carries them;
it lives apart so that a plain run does not load the calibration this module
needs.

`forecast_as_of` makes a forecast from actuals: it calibrates the scenario on the
actuals up to a date (`migsim.evidence.calibrate`), takes the state at the end of
that date (`migsim.evidence.state`) and runs the calibrated scenario forward from
the day after, the rates' posterior drawn once per replication. `Forecast.fan`
gives the actual backlog joined to the forecast's bands (``backlog.png``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from migsim.common.errors import MigsimError
from migsim.common.stats import (
    LEVEL,
    half_width,
    mean_ci95,
    proportion_ci95,
    quantile_ci95,
    quantile_ranks,
    statistic_quantile,
)
from migsim.evidence.actuals import Actuals, as_of_date
from migsim.evidence.actuals_checks import check_reported
from migsim.evidence.calibrate import DEFAULT_PRIOR_STRENGTH, Calibration, calibrate
from migsim.evidence.coarse import reported_through
from migsim.evidence.intervals import (
    RunLike,
    annotate,
    check_by_dates,
    ci95_section,
    last_few_note,
    p_clear_by,
    p_clear_by_sections,
)
from migsim.evidence.state import state_from_actuals
from migsim.model.limits import run_seed
from migsim.model.scenario import Scenario, load_scenario
from migsim.results.daily import bands_of
from migsim.results.results import Results
from migsim.results.units import meters_ratios
from migsim.runner.runner import run
from migsim.sim.calendar import working_days_between

__all__ = [
    "LEVEL",
    "Forecast",
    "ForecastResults",
    "RunLike",
    "annotate",
    "check_as_of",
    "check_by_dates",
    "ci95_section",
    "forecast_as_of",
    "half_width",
    "last_few_note",
    "mean_ci95",
    "p_clear_by",
    "p_clear_by_sections",
    "proportion_ci95",
    "quantile_ci95",
    "quantile_ranks",
    "statistic_quantile",
]


# --------------------------------------------------------------------------- forecast
class ForecastResults(Results):
    """`Results` of a forecast: the summary also says what was learned and from what."""

    def __init__(self, results: Results, forecast: dict[str, Any]):
        # share the run's figures and daily rows (a streamed run keeps no logs:
        # passing .logs would re-simulate it); keep it alive, as it owns the
        # spill file
        self.__dict__.update(results.__dict__)
        self.__dict__.pop("summary", None)
        self._wrapped = results
        self.forecast = forecast

    @cached_property
    def summary(self) -> dict[str, Any]:
        out = dict(super().summary)
        out["forecast"] = self.forecast
        return out


@dataclass
class Forecast:
    """A forecast as of a date: what was learned, the state, and the simulated future.

    Attributes
    ----------
    as_of
        The day the forecast is made (``None``: from the scenario's start, none
        used); the actuals used are those up to it.
    calibration
        The update of the rates on the actuals up to the state's day.
    scenario
        What was run: the calibrated scenario starting the day after the state's
        day (the last day of actuals on or before ``as_of``: `_last_known`) from
        the state on it (or from its start).
    results
        The simulated replications.
    """

    as_of: date | None
    prior: Scenario
    calibration: Calibration
    scenario: Scenario
    results: ForecastResults
    notes: list[str] = field(default_factory=list)

    @property
    def start_date(self) -> date:
        return self.scenario.start_date

    def cumulative_migrated(self) -> np.ndarray:
        """(replications, days) cumulative migrated, all cohorts, from the start.

        Against actuals in meters, where the ratio is drawn per replication, each
        replication's migrations after the start are converted with its own ratio
        (x its ratio / the point ratio, in the point ratio's installations, as
        the actuals are): the forecast in meters carries the ratio's
        uncertainty. What had migrated by the start is known and stays as it is.
        """
        paths = self.results.series("cumulative_migrated").sum(axis=2)
        ratios = meters_ratios(self.results)
        point = self.scenario.meters_per_installation
        if self.calibration.actuals.unit != "meters" or ratios is None or not point:
            return paths
        factors = ratios / float(point)
        if not len(factors) or np.ptp(factors) == 0 and factors[0] == 1:
            return paths
        known = sum(
            c.initial_state.count("migrated") + c.initial_state.count("impaired")
            for c in self.scenario.cohorts
            if c.initial_state is not None
        )
        return known + (paths - known) * factors[:, None]

    def cumulative_bands(
        self, quantiles: Sequence[float] = (0.05, 0.1, 0.5, 0.9, 0.95)
    ) -> pd.DataFrame:
        """Type-1 quantiles per date of `cumulative_migrated` (``date, p5, ...``)."""
        return bands_of(
            self.cumulative_migrated().astype(float), self.results.dates, quantiles
        )

    def summary_text(self) -> str:
        lines = [self.calibration.learned()]
        lines += [f"Learned: {u}" for u in self.calibration.inputs]
        if self.as_of is not None:
            state_day = self.start_date - timedelta(days=1)
            lines.append(
                f"Forecast as of {self.as_of} from the state on {state_day} (the "
                f"last day all the actuals reach by then), run from "
                f"{self.start_date} to {self.scenario.end_date}."
            )
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def fan(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """What ``backlog.png`` draws: the actual backlog, then the forecast's bands.

        Returns ``(remaining, bands)``: the actuals' ``date, remaining`` (up to
        the as-of date) and the P5..P95 bands of installations remaining, joined
        to the last actual point so the fan starts where the actuals end.
        """
        actual = self.calibration.actuals
        if self.as_of is not None:
            actual = actual.up_to(self.as_of)
        remaining = (
            actual.remaining(self.prior.installations, self.prior)
            if not actual.frame.empty
            else pd.DataFrame({"date": [], "remaining": []})
        )
        bands = self.results.bands("remaining", quantiles=(0.05, 0.1, 0.5, 0.9, 0.95))
        if len(remaining) and self.as_of is not None:  # join the fan to the actuals
            last = remaining.iloc[[-1]]
            joint = {
                c: last["remaining"].to_numpy() for c in bands.columns if c != "date"
            }
            bands = pd.concat(
                [pd.DataFrame({"date": last["date"].to_numpy(), **joint}), bands],
                ignore_index=True,
            )
        return remaining, bands


def check_as_of(
    scenario: Scenario, as_of: date, actuals: Actuals | None = None
) -> None:
    """Refuse an as-of date a forecast cannot start from: outside the scenario
    (or not a date, `as_of_date`); given the ``actuals``, also per-cohort ones
    that never mention a cohort the scenario has eligible by the state's day
    (`actuals_checks.check_reported`), so that a backtest refuses before any forecast
    runs."""
    as_of = as_of_date(as_of)
    if not scenario.start_date <= as_of < scenario.end_date:
        raise MigsimError(
            f"--as-of {as_of}: must be on or after the scenario's start "
            f"{scenario.start_date} and before its end {scenario.end_date}"
        )
    if actuals is not None:
        known, _ = _last_known(scenario, actuals, as_of)
        check_reported(scenario, actuals.up_to(as_of), known)


def _last_known(
    scenario: Scenario, actuals: Actuals, as_of: date
) -> tuple[date, list[str]]:
    """The day a forecast made on ``as_of`` starts from: the last day of the
    actuals on or before it, and the cohorts behind it when it is earlier.
    Monthly totals as of the 15th end on the last month's end; starting from
    them on the 15th dropped half a month of migrations (70,570 migrated by 15
    Mar 2020 started as 58,862). Per-cohort totals: the last day every
    cohort's figures reach (`coarse.reported_through`), for the same reason.
    No actuals by then, or none since the scenario's start: ``as_of`` itself."""
    seen = actuals.up_to(as_of)
    if seen.frame.empty or seen.last_date < scenario.start_date:
        return as_of, []
    if seen.kind == "coarse" and seen.per_cohort:
        return reported_through(scenario, seen)
    return seen.last_date, []


def _worked_between(scenario: Scenario, known: date, as_of: date) -> bool:
    """Whether a working day lies after ``known`` up to ``as_of`` (a gap worth
    a note: a weekend after Friday's actuals is not)."""
    return working_days_between(scenario, known, as_of) > 0


def forecast_as_of(
    scenario: Scenario | str,
    actuals: Actuals,
    as_of: date | None,
    replications: int = 200,
    seed: int | None = None,
    workers: int = 1,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    progress: Callable[[int], None] | None = None,
) -> Forecast:
    """Calibrate on the actuals up to ``as_of``, start from its state, run forward.

    ``as_of=None`` forecasts from the scenario's start with no actuals (the rates
    keep their prior, drawn per replication with ``prior_strength``).
    ``progress`` is called with the replications each finished batch adds.
    """
    prior = load_scenario(scenario)
    seed = prior.seed if seed is None else run_seed(seed)
    if as_of is None:  # nothing learned: the scenario as it is
        calibration = calibrate(
            prior, actuals.up_to(prior.start_date - timedelta(days=1)), prior_strength
        )
        forward, notes = (
            prior,
            [
                "from the scenario's start: no actuals used, the "
                "scenario's rates as they are"
            ],
        )
    else:
        check_as_of(prior, as_of)
        known, behind = _last_known(prior, actuals, as_of)
        # conditioned on what the actuals show by the state's day, not by
        # as_of: a start inside the gap is the forecast's to draw
        calibration = calibrate(prior, actuals, prior_strength, as_of=known)
        state, notes = state_from_actuals(
            calibration.scenario, actuals, known, known_by=as_of
        )
        if behind:
            notes.append(
                f"{', '.join(behind)}: last reported on {known}, before the "
                f"other cohorts' figures up to {as_of}: the forecast starts "
                "from the state on that day and simulates every cohort after it "
                "(the others' figures on it read linearly between their "
                "reports; their later figures are not used)"
            )
        elif _worked_between(prior, known, as_of):
            notes.append(
                f"the actuals up to {as_of} end on {known}: the forecast starts "
                "from that day's state (what happened after it is not known)"
            )
        forward = calibration.scenario.starting_from(state)
    results = run(
        forward,
        replications=replications,
        seed=seed,
        workers=workers,
        progress=progress,
        fail_fast=True,
    )
    info = {
        "as_of": as_of.isoformat() if as_of else None,
        # the day whose state the forecast starts from (the actuals' last by as_of)
        "state_date": (forward.start_date - timedelta(days=1)).isoformat()
        if as_of
        else None,
        "actuals": actuals.path,
        "actuals_sha256": actuals.sha256,
        "actuals_unit": actuals.unit,
        "n_attempts_learned_from": calibration.n_attempts,
        "learned": calibration.learned(),
        "notes": [*calibration.notes, *notes],
        "calibration": calibration.summary(),
    }
    return Forecast(
        as_of,
        prior,
        calibration,
        forward,
        ForecastResults(results, info),
        [*calibration.notes, *notes],
    )
