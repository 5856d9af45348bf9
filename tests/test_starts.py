"""What actuals say of the cohorts' starts and of the programme-wide delay
behind their slips (`migsim.evidence.starts`): the posterior the calibration
fits matches brute-force conditioning of the scenario's own draws, and a
forecast from totals that show nothing yet draws its starts after the as-of
date."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

import migsim
from migsim.evidence.actuals import read_actuals
from migsim.evidence.calibrate import calibrate
from migsim.evidence.forecast import forecast_as_of

BASELINE = "scenarios/nov2019_epcl.yaml"


def _totals(folder, rows: dict[str, float], cohort: str | None = None):
    """Monthly cumulative totals (programme-wide, or one cohort's) as a CSV."""
    frame = pd.DataFrame(
        {"date": list(rows), "cumulative_migrated": list(rows.values())}
    )
    if cohort is not None:
        frame.insert(1, "cohort", cohort)
    path = folder / "totals.csv"
    frame.to_csv(path, index=False)
    return path


def _prior_draws(sc, n: int, seed: int = 11):
    """``n`` joint draws of the programme factor and each cohort's start, as
    the scenario states them (slips shared through the factor, black swans,
    rounding to the nearest day)."""
    rng = np.random.default_rng(seed)
    delay = sc.programme_delay
    log_f = math.log(delay.median) + delay.sigma * rng.standard_normal(n)
    starts = {}
    for cohort in sc.cohorts:
        spec = cohort.eligible_from
        slip = spec.median_days * np.exp(spec.sigma * rng.standard_normal(n))
        slip = slip * np.exp(log_f) if spec.shared else slip
        swan = rng.random(n) < spec.black_swan.probability
        slip = np.where(swan, slip * spec.black_swan.factor, slip)
        starts[cohort.name] = np.floor(slip + 0.5)  # days after the plan
    return log_f, starts


def _fitted(calibration) -> tuple[float, float]:
    delay = calibration.scenario.programme_delay
    return math.log(delay.median), delay.sigma


def _day(sc, when: date) -> int:
    """Days from the cohorts' (shared) planned date."""
    return (when - sc.cohorts[0].eligible_from.planned).days


def test_no_start_by_the_as_of_date_makes_a_late_programme_likelier(tmp_path):
    """Programme totals of 0 up to 31 Jan 2020: neither entry (both planned for
    9 Dec 2019) had started. The programme factor is fitted to its posterior,
    which matches brute-force rejection of the scenario's own joint draws
    (both starts after 31 Jan) in its log's mean and sd; every slip is known
    not to fall before 1 Feb. Before, nothing was learned from such totals."""
    sc = migsim.load_scenario(BASELINE)
    path = _totals(tmp_path, {"2019-12-31": 0, "2020-01-31": 0})
    result = calibrate(sc, read_actuals(path, sc), as_of=date(2020, 1, 31))
    log_f, starts = _prior_draws(sc, 400_000)
    cut = _day(sc, date(2020, 1, 31))
    kept = log_f[(starts["itron_active"] > cut) & (starts["elster_dormant"] > cut)]
    assert len(kept) > 5000
    mean, sd = _fitted(result)
    assert mean == pytest.approx(kept.mean(), abs=0.02)
    assert sd == pytest.approx(kept.std(), abs=0.02)
    assert math.exp(mean) > 2.0  # against the prior's median of 1
    for cohort in result.scenario.cohorts:
        assert cohort.eligible_from.not_before == date(2020, 2, 1)
    changed = {u.path for u in result.inputs}
    assert "programme_delay" in changed
    assert "cohorts.elster_dormant.eligible_from" in changed
    assert "programme_delay" in result.scenario.sources


def test_a_cohorts_start_seen_in_a_month_says_how_late_the_programme_runs(tmp_path):
    """Per-cohort monthly totals: itron_active shows none on 31 Dec and some on
    31 Jan, so its start fell in January (its date becomes the first report
    that shows it, as before). The factor's posterior matches rejection of
    the joint draws on that window."""
    sc = migsim.load_scenario(BASELINE)
    path = _totals(tmp_path, {"2019-12-31": 0, "2020-01-31": 900}, "itron_active")
    result = calibrate(sc, read_actuals(path, sc), as_of=date(2020, 1, 31))
    log_f, starts = _prior_draws(sc, 400_000)
    low, high = _day(sc, date(2019, 12, 31)), _day(sc, date(2020, 1, 31))
    kept = log_f[(starts["itron_active"] > low) & (starts["itron_active"] <= high)]
    mean, sd = _fitted(result)
    assert mean == pytest.approx(kept.mean(), abs=0.02)
    assert sd == pytest.approx(kept.std(), abs=0.02)
    assert result.scenario.cohort("itron_active").eligible_from == date(2020, 1, 31)
    # the cohort the actuals do not name keeps its date as stated
    elster = result.scenario.cohort("elster_dormant").eligible_from
    assert elster.not_before is None


def test_a_programme_total_says_that_some_cohort_started_not_which(tmp_path):
    """Programme totals of 0 on 31 Dec and 5,000 on 31 Jan: the earlier of the
    two starts fell in January. No date is fixed (which cohort is not known);
    the factor's posterior matches rejection on the earlier start."""
    sc = migsim.load_scenario(BASELINE)
    path = _totals(tmp_path, {"2019-12-31": 0, "2020-01-31": 5000})
    result = calibrate(sc, read_actuals(path, sc), as_of=date(2020, 1, 31))
    log_f, starts = _prior_draws(sc, 400_000)
    first = np.minimum(starts["itron_active"], starts["elster_dormant"])
    low, high = _day(sc, date(2019, 12, 31)), _day(sc, date(2020, 1, 31))
    kept = log_f[(first > low) & (first <= high)]
    mean, sd = _fitted(result)
    assert mean == pytest.approx(kept.mean(), abs=0.02)
    assert sd == pytest.approx(kept.std(), abs=0.02)
    assert [u.path for u in result.inputs] == ["programme_delay"]
    for cohort in result.scenario.cohorts:
        assert cohort.eligible_from == sc.cohort(cohort.name).eligible_from


def test_totals_before_the_planned_starts_teach_nothing(tmp_path):
    """Nothing by 30 Nov 2019, before the 9 Dec plans: every slip is possible,
    so the programme delay keeps its prior."""
    sc = migsim.load_scenario(BASELINE)
    path = _totals(tmp_path, {"2019-11-30": 0})
    result = calibrate(sc, read_actuals(path, sc), as_of=date(2019, 11, 30))
    assert result.scenario.programme_delay == sc.programme_delay
    assert "programme_delay" not in {u.path for u in result.inputs}


def test_a_forecast_from_totals_that_show_nothing_starts_later(tmp_path):
    """A forecast as of 31 Jan 2020 from programme totals of 0: every
    replication draws both starts on or after 1 Feb, and half of them more
    than two weeks later (the programme runs late). Before, the starts were
    drawn as if nothing were known: most fell before 1 Feb, so both cohorts
    started at once on the forecast's first day. The summary says what the
    actuals taught."""
    sc = migsim.load_scenario(BASELINE)
    path = _totals(tmp_path, {"2019-12-31": 0, "2020-01-31": 0})
    forecast = forecast_as_of(
        sc, read_actuals(path, sc), date(2020, 1, 31), replications=40, seed=3
    )
    inputs = forecast.results.inputs
    for name in ("itron_active", "elster_dormant"):
        days = inputs[f"cohorts.{name}.eligible_from"]
        assert (days >= 0).all()
        assert days.median() > 14
    assert "Learned: programme_delay: lognormal median 1, sigma 0.6 ->" in (
        forecast.summary_text()
    )


def test_a_start_seen_in_daily_flows_is_fixed_as_before(tmp_path):
    """Daily flows of one replication: the cohort's first attempt fixes its
    date (as before this module), and the factor moves towards the one that
    replication drew."""
    sc = migsim.load_scenario(BASELINE)
    truth = migsim.run(sc, replications=1, seed=5)
    drawn = truth.inputs.iloc[0]
    cut = date(2020, 4, 30)
    daily = truth.daily[truth.daily["date"] <= pd.Timestamp(cut)]
    path = tmp_path / "flows.parquet"
    daily.to_parquet(path)
    result = calibrate(sc, read_actuals(path, sc), as_of=cut)
    for name in ("itron_active", "elster_dormant"):
        rows = daily[(daily.cohort == name) & (daily.attempts > 0)]
        first = rows["date"].min().date()
        assert result.scenario.cohort(name).eligible_from == first
        assert first - timedelta(days=4) <= sc.date_of(
            int(drawn[f"cohorts.{name}.eligible_from"])
        )
    prior = sc.programme_delay
    fitted = result.scenario.programme_delay
    assert fitted.sigma < prior.sigma  # two starts seen: the factor is surer
    assert abs(math.log(fitted.median / drawn["programme_delay"])) < abs(
        math.log(prior.median / drawn["programme_delay"])
    )
