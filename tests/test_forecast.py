"""Forecast statistics: hand-computed quantiles, intervals and P(clear by date);
the in-flight state a forecast starts from, read from actuals."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from conftest import cohort, day, load, outcomes, scenario, uniform
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from test_backtest import _totals
from test_state import recovering_programme

import migsim
from migsim.common.errors import MigsimError
from migsim.evidence.actuals import read_actuals
from migsim.evidence.forecast import (
    annotate,
    ci95_section,
    forecast_as_of,
    mean_ci95,
    p_clear_by,
    p_clear_by_sections,
    proportion_ci95,
    quantile_ci95,
    quantile_ranks,
)
from migsim.evidence.state import state_from_actuals
from migsim.results.results import quantile
from migsim.sim.records import STATES

INF = math.inf
# ten replications' clearance days, one not cleared
DAYS = np.array([12, 10, 15, 10, 11, 20, 13, 11, 14, INF])


def test_type1_quantiles_by_hand():
    # sorted: 10 10 11 11 12 13 14 15 20 inf ; type 1 = x_(ceil(n q))
    assert quantile(DAYS, 0.10) == 10
    assert quantile(DAYS, 0.50) == 12  # ceil(5) = 5th
    assert quantile(DAYS, 0.80) == 15  # 8th
    assert quantile(DAYS, 0.85) == 20  # ceil(8.5) = 9th
    assert quantile(DAYS, 0.90) == 20  # 9th
    assert quantile(DAYS, 0.95) == INF  # 10th: not cleared


def test_p_clear_by_by_hand():
    assert p_clear_by(DAYS, 9) == 0.0
    assert p_clear_by(DAYS, 10) == 0.2
    assert p_clear_by(DAYS, 12) == 0.5
    assert p_clear_by(DAYS, 19) == 0.8
    assert p_clear_by(DAYS, 10_000) == 0.9  # the non-cleared one never counts


@settings(derandomize=True, deadline=None, max_examples=40)
@given(st.lists(st.integers(0, 200), min_size=1, max_size=30))
def test_p_clear_by_is_0_before_earliest_and_1_after_latest(days):
    array = np.array(days, dtype=float)
    assert p_clear_by(array, int(array.min()) - 1) == 0.0
    assert p_clear_by(array, int(array.max())) == 1.0
    # monotone in the date
    values = [p_clear_by(array, d) for d in range(-1, 202)]
    assert values == sorted(values)


def test_mean_ci95_by_hand_and_undefined():
    low, high = mean_ci95([10, 12, 14])
    half = stats.t.ppf(0.975, 2) * 2 / math.sqrt(3)
    assert low == pytest.approx(12 - half) and high == pytest.approx(12 + half)
    assert mean_ci95(DAYS) is None  # a replication did not clear: no mean
    assert mean_ci95([5]) is None
    assert mean_ci95([7, 7, 7]) == (7, 7)


def test_quantile_ranks_known_values():
    # classic table values for the median: n=20 -> (6, 15), n=10 -> (2, 9)
    assert quantile_ranks(20, 0.5) == (6, 15)
    assert quantile_ranks(10, 0.5) == (2, 9)
    # too few replications for the upper side of P95
    assert quantile_ranks(20, 0.95) == (17, None)
    assert quantile_ranks(5, 0.5) == (None, None)


@settings(derandomize=True, deadline=None, max_examples=60)
@given(n=st.integers(8, 400), q=st.sampled_from([0.05, 0.1, 0.5, 0.8, 0.85, 0.9, 0.95]))
def test_quantile_ranks_cover_at_least_95_percent(n, q):
    low, high = quantile_ranks(n, q)
    lower_tail = stats.binom.cdf(low - 1, n, q) if low is not None else 0.0
    upper_tail = 1 - stats.binom.cdf(high - 1, n, q) if high is not None else 0.0
    assert lower_tail <= 0.025 + 1e-9 and upper_tail <= 0.025 + 1e-9
    # the point estimate lies inside whenever both sides exist
    point = max(1, math.ceil(q * n - 1e-12))
    if low is not None:
        assert low <= point
    if high is not None:
        assert point <= high


def test_quantile_ci95_on_a_fixed_set():
    values = np.arange(1, 21, dtype=float)  # 1..20
    assert quantile_ci95(values, 0.5) == (6.0, 15.0)
    assert quantile_ci95(values, 0.95) == (17.0, None)


def test_quantile_interval_covers_in_repeated_sampling():
    """Distribution-free: >= 95% coverage of the true median of an exponential."""
    rng = np.random.default_rng(7)
    true_median = math.log(2)
    hits = 0
    for _ in range(400):
        low, high = quantile_ci95(rng.exponential(size=30), 0.5)
        hits += low <= true_median <= high
    assert hits / 400 >= 0.93  # nominal >= 0.95; 400 trials: sd ~1.1%


def test_proportion_ci95_wilson_by_hand():
    low, high = proportion_ci95(8, 10)
    z = stats.norm.ppf(0.975)
    centre = (0.8 + z * z / 20) / (1 + z * z / 10)
    half = z / (1 + z * z / 10) * math.sqrt(0.8 * 0.2 / 10 + z * z / 400)
    assert (low, high) == (pytest.approx(centre - half), pytest.approx(centre + half))
    assert proportion_ci95(0, 10)[0] == 0.0 and proportion_ci95(10, 10)[1] == 1.0
    assert proportion_ci95(10, 10)[0] < 1.0  # never zero width


@pytest.fixture(scope="module")
def tiny_run():
    from conftest import tiny

    return migsim.run(tiny(), replications=12, seed=2)


def test_annotate_adds_sections_to_the_summary(tiny_run):
    sc = tiny_run.scenario
    before, after = sc.start_date, sc.end_date  # earlier is refused (below)
    annotate(tiny_run, by=[after, before])
    summary = tiny_run.summary
    assert list(summary["p_clear_by"]) == [before.isoformat(), after.isoformat()]
    assert summary["p_clear_by"][before.isoformat()] == 0.0
    assert summary["p_clear_by"][after.isoformat()] == summary["cleared_share"]
    days = tiny_run.clearance_days()
    middle = sc.date_of(int(np.median(days)))
    extra = p_clear_by_sections(tiny_run, [middle])
    assert extra["p_clear_by"][middle.isoformat()] == float(
        (days <= sc.day_of(middle)).mean()
    )
    with pytest.raises(MigsimError, match="before the scenario's start"):
        p_clear_by_sections(tiny_run, [date(2019, 12, 1)])
    ci = summary["ci95"]
    assert ci == ci95_section(tiny_run)
    # the interval of every quantile date brackets the reported date
    for stat in ("p10", "p50", "p90"):
        low, high = ci["clearance_date"][stat]
        reported = summary["clearance_date"][stat]
        assert low is None or low <= reported
        assert high is None or reported <= high
    mean = summary["figures"]["clearance_day"]["mean"]
    low, high = ci["figures"]["clearance_day"]["mean"]
    assert low <= mean <= high
    assert set(ci["cohorts"]) == set(tiny_run.cohort_names)


def test_by_date_after_the_horizon_is_an_error(tiny_run):
    late = tiny_run.scenario.end_date.replace(year=tiny_run.scenario.end_date.year + 1)
    with pytest.raises(MigsimError, match="after the horizon end"):
        p_clear_by_sections(tiny_run, [late])


def test_annotate_cannot_replace_a_base_key(tiny_run):
    with pytest.raises(ValueError):
        tiny_run.annotate("figures", {})


# ====================================================== in-flight state from actuals
def _total(value) -> int:
    return value if isinstance(value, int) else sum(g["count"] for g in value)


def _mean_made(groups) -> float:
    return sum(g["count"] * g["attempts_made"] for g in groups) / _total(groups)


@pytest.mark.parametrize("states", [True, False], ids=["states", "flows only"])
def test_dumb_devices_awaiting_recovery_are_estimated_from_actuals(tmp_path, states):
    """From a run's own daily output, the devices awaiting remote recovery are
    close to the run's exact state (within 10% + 5: the estimate is an
    expectation, the run one draw), never more than the dumb, and their due days
    lie within the recovery delay; with flows only the dumb count is exact too
    (dumbs net of the reported recoveries)."""
    sc = recovering_programme()
    results = migsim.run(sc, replications=1, seed=1)
    unknown = ["awaiting_site_visit"] + ([] if states else list(STATES))
    daily = results.daily.drop(columns=unknown)  # which will recover: unreported
    daily.to_parquet(tmp_path / "daily.parquet", index=False)
    actuals = read_actuals(tmp_path / "daily.parquet", sc)
    for k in (6, 10, 13, 17):
        exact = results.state_on(day(k), 0)["cohorts"]["a"]
        state, notes = state_from_actuals(sc, actuals, day(k))
        read = state["cohorts"]["a"]
        waiting, truth = _total(read["recovering"]), _total(exact["recovering"])
        assert truth > 50 and abs(waiting - truth) <= 0.1 * truth + 5, (k, waiting)
        assert waiting <= read["dumb"] and read["dumb"] == exact["dumb"]
        assert all(1 <= g["days_until_due"] <= 15 for g in read["recovering"])
    assert any("awaiting remote recovery" in note for note in notes)


def test_reported_devices_awaiting_a_site_visit_leave_the_rest_recovering(tmp_path):
    """With ``awaiting_site_visit`` reported (the dumb devices that will not be
    recovered remotely), the devices awaiting remote recovery are known, not
    estimated: the dumb less them, on every as-of day, in each of three runs.
    The estimate alone (an expectation) was off by up to several devices, an
    error every replication of a forecast carried into its final migrated."""
    sc = recovering_programme()
    results = migsim.run(sc, replications=3, seed=1)
    results.daily.to_parquet(tmp_path / "daily.parquet", index=False)
    for replication in range(3):
        actuals = read_actuals(tmp_path / "daily.parquet", sc, replication=replication)
        for k in (6, 10, 13, 17):
            exact = results.state_on(day(k), replication)["cohorts"]["a"]
            read = state_from_actuals(sc, actuals, day(k))[0]["cohorts"]["a"]
            assert _total(read["recovering"]) == _total(exact["recovering"]) > 0
            assert read["dumb"] == exact["dumb"]
            assert all(1 <= g["days_until_due"] <= 15 for g in read["recovering"])


def test_a_forecast_from_actuals_keeps_the_devices_awaiting_recovery(tmp_path):
    """Continued from the state read from actuals on day 10, the final migrated
    mean is within 5 standard errors of the continuation from the run's exact
    state; dropping the recovering groups (as before they were read) leaves it
    short by over 100 (more than 30 standard errors)."""
    sc = recovering_programme()
    results = migsim.run(sc, replications=1, seed=1)
    results.daily.to_parquet(tmp_path / "daily.parquet", index=False)
    actuals = read_actuals(tmp_path / "daily.parquet", sc)
    exact = results.state_on(day(10), 0)
    read, _ = state_from_actuals(sc, actuals, day(10))
    lost = {**read, "cohorts": {"a": {**read["cohorts"]["a"], "recovering": []}}}

    def final(state) -> np.ndarray:
        run = migsim.run(sc.starting_from(state), replications=40, seed=3)
        return run.replications["migrated"].to_numpy(float)

    truth, forecast, without = final(exact), final(read), final(lost)
    se = math.hypot(*(x.std(ddof=1) / math.sqrt(len(x)) for x in (truth, forecast)))
    assert abs(forecast.mean() - truth.mean()) < 5 * se
    assert truth.mean() - without.mean() > max(100, 30 * se)


def _totals_of(results, every: int, k: int, per_cohort: bool) -> pd.DataFrame:
    """A run's cumulative migrated (migrated + impaired) as totals every
    ``every`` days up to day ``k`` (ending on it), per cohort or without the
    cohort column (programme totals)."""
    daily = results.daily
    days = (daily["date"] - pd.Timestamp(day(0))).dt.days
    kept = daily[(days <= k) & ((k - days) % every == 0)]
    totals = pd.DataFrame(
        {
            "date": kept["date"].dt.strftime("%Y-%m-%d"),
            "cohort": kept["cohort"],
            "cumulative_migrated": kept["migrated"] + kept["impaired"],
        }
    )
    return totals if per_cohort else totals.drop(columns="cohort")


@pytest.mark.parametrize(
    "every,per_cohort",
    [(1, True), (7, True), (7, False)],
    ids=["daily", "weekly", "weekly programme"],
)
def test_totals_place_the_devices_awaiting_recovery_among_the_dumb(
    tmp_path, every, per_cohort
):
    """From a run's own cumulative totals, the dumb devices awaiting remote
    recovery are ``recovering`` (retried after their recovery delay), close to
    the run's exact state (within 10% + 5), with due days within the delay;
    the dumb left for a site visit stay the median rates' estimate, and the
    partition sums to the cohort. They were counted among the installations
    not yet attempted (none recovering: 146 of the run's on day 10 queued), and
    each replication re-estimating the dumb kept the larger of the two counts,
    not both."""
    from migsim.sim.inputs import resolve_inputs
    from migsim.sim.streams import Streams

    sc = recovering_programme()
    results = migsim.run(sc, replications=1, seed=1)
    for k in (6, 10, 13, 17):
        path = tmp_path / f"totals{k}.csv"
        _totals_of(results, every, k, per_cohort).to_csv(path, index=False)
        exact = results.state_on(day(k), 0)["cohorts"]["a"]
        state, notes = state_from_actuals(sc, read_actuals(path, sc), day(k))
        assert any("a: dumb devices awaiting remote recovery" in n for n in notes)
        read = state["cohorts"]["a"]
        waiting, truth = _total(read.get("recovering", [])), _total(exact["recovering"])
        assert truth > 50 and abs(waiting - truth) <= 0.1 * truth + 5, (k, waiting)
        assert all(1 <= g["days_until_due"] <= 15 for g in read["recovering"])
        left, left_truth = read["dumb"] - waiting, exact["dumb"] - truth
        assert left == round(read["migrated"] * 0.1 * 0.3 / 0.8)  # median rates'
        assert abs(left - left_truth) <= 0.2 * left_truth + 5, (k, left)
        assert sum(_total(read.get(s, 0)) for s in STATES) == 3000
        # each replication keeps them beside its own estimate of the left dumb
        own = resolve_inputs(sc.starting_from(state), Streams(0, 0)).cohort("a")
        assert own.initial_state.dumb == read["dumb"]
        assert sum(g.count for g in own.initial_state.recovering) == waiting


def _hard_programme():
    """A tenth of hard cases failing half their attempts, up to 5 attempts."""
    data = scenario(
        cohort(
            "a",
            3000,
            rates=outcomes(success=0.95, stall=0.02, rollback=0.03),
            max_attempts=5,
            stall={"resolves_after_days": uniform(1, 4), "then_success": 0.5},
            rollback={"retry_after_days": uniform(2, 5)},
        ),
        cap=200,
        horizon_days=60,
    )
    data["cohorts"][0]["hard"] = {
        "share": 0.1,
        "outcomes": outcomes(success=0.4, stall=0.1, rollback=0.5),
    }
    return load(data)


@pytest.mark.parametrize("seed", [1, 2])
def test_in_flight_attempts_made_are_read_from_the_class_replay(tmp_path, seed):
    """Late in the run the rolled-back installations have made about 2 attempts
    (mostly hard cases retried): the state read from actuals has them within 0.3
    of the exact state's mean, by groups that sum to the count and stay within
    1..max_attempts - 1, where taking every one as a first failure gave 1.0."""
    sc = _hard_programme()
    results = migsim.run(sc, replications=1, seed=seed)
    results.daily.to_parquet(tmp_path / "daily.parquet", index=False)
    actuals = read_actuals(tmp_path / "daily.parquet", sc)
    for k in (17, 24):
        exact = results.state_on(day(k), 0)["cohorts"]["a"]["rolled_back"]
        state, notes = state_from_actuals(sc, actuals, day(k))
        read = state["cohorts"]["a"]["rolled_back"]
        assert _total(read) == _total(exact) > 20
        assert {g["attempts_made"] for g in read} <= {1, 2, 3, 4}
        assert abs(_mean_made(read) - _mean_made(exact)) < 0.3, k
        if k == 24:
            assert _mean_made(exact) > 1.7 and _mean_made(read) > 1.7
    assert any("shared over attempts made" in note for note in notes)


@pytest.mark.parametrize("seed", [1, 2])
def test_retries_queued_over_a_weekend_are_read_as_retries(tmp_path, seed):
    """On a Sunday the retries that fell due on the weekend wait in the queue: the
    state read from actuals has them (by attempts made, within a quarter of the
    exact state's count), where before every queued installation was taken as a
    first attempt (and, shared by class, as a normal one)."""
    sc = _hard_programme()
    results = migsim.run(sc, replications=1, seed=seed)
    results.daily.to_parquet(tmp_path / "daily.parquet", index=False)
    actuals = read_actuals(tmp_path / "daily.parquet", sc)
    for k in (13, 20, 27):  # Sundays
        exact = results.state_on(day(k), 0)["cohorts"]["a"]["queued"]
        state, notes = state_from_actuals(sc, actuals, day(k))
        read = state["cohorts"]["a"]["queued"]
        assert _total(read) == _total(exact)
        retries = [g for g in read if g["attempts_made"]]
        want = _total([g for g in exact if g["attempts_made"]])
        assert want > 10
        assert abs(_total(retries) - want) <= max(6, 0.25 * want), k
        assert {g["attempts_made"] for g in retries} <= {1, 2, 3, 4}
        assert all(g["days_until_due"] == 0 for g in retries)
    assert any("retries the replay expects due" in note for note in notes)


def test_without_outcomes_in_flight_installations_made_one_attempt(tmp_path):
    """States and failures reported, but neither attempts nor successes: no
    replay, so every stalled and rolled-back group made one attempt (a note says
    so)."""
    sc = _hard_programme()
    results = migsim.run(sc, replications=1, seed=1)
    kept = ["date", "cohort", *STATES, "stalls", "rollbacks", "stall_failures"]
    results.daily[kept].to_parquet(tmp_path / "daily.parquet", index=False)
    actuals = read_actuals(tmp_path / "daily.parquet", sc)
    state, notes = state_from_actuals(sc, actuals, day(24))
    read = state["cohorts"]["a"]
    assert _total(read["rolled_back"]) > 20
    assert {g["attempts_made"] for g in (*read["rolled_back"], *read["stalled"])} == {1}
    assert any("taken to have made one attempt" in note for note in notes)


def _tail_run(p50: str | None, remaining: list[int]):
    """A run-like with 10,000 installations, its median backlog ``remaining``
    from 1 Oct 2020 on, and its P50 clearance date ``p50``."""
    from types import SimpleNamespace

    dates = pd.date_range("2020-10-01", periods=len(remaining))
    bands = pd.DataFrame({"date": dates, "p50": remaining})
    return SimpleNamespace(
        scenario=SimpleNamespace(installations=10_000),
        has_daily=True,
        bands=lambda name, cohort=None, quantiles=(): bands,
        summary={"clearance_date": {"p50": p50}},
    )


def test_the_last_few_note_says_when_the_median_backlog_is_down_to_1_percent():
    """Clearance waits on the last installation: when the median backlog is
    down to 1% (100 of 10,000) weeks before the P50 clearance date, or that
    date is after the horizon, the note gives the date it got there."""
    from migsim.evidence.intervals import last_few_note

    backlog = [5_000, 1_000, 101, 100, 40, 3, 1, 1, 1, 1] + [1] * 30
    note = last_few_note(_tail_run("after 2020-11-09", backlog))
    assert note is not None
    assert "falls to 1% of the installations (100 of 10,000) by 2020-10-04" in note
    assert "is still 1 on 2020-11-09" in note  # the median on the last day
    within = last_few_note(_tail_run("2020-10-18", backlog))
    assert within is not None and within.endswith(
        "take it to the median clearance date, 2020-10-18."
    )
    assert "after 2020-11-09" in note
    # 14 days or more before a P50 clearance date inside the horizon: told
    assert last_few_note(_tail_run("2020-10-18", backlog)) is not None
    # within 14 days: clearance is not waiting on stragglers, no note
    assert last_few_note(_tail_run("2020-10-17", backlog)) is None
    # the median never gets down to 1%: nothing to say
    assert last_few_note(_tail_run("after 2020-11-09", [5_000] * 40)) is None


@pytest.mark.parametrize("opens_on", ["fixed", "uncertain"])
def test_without_the_cap_columns_a_gated_step_before_the_as_of_date_holds(
    tmp_path, opens_on
):
    """Actuals without daily_cap and cap_rule (flows a programme reports) say
    nothing of a step behind a gate: the gate is drawn, and a step drawn before
    the as-of date is in force from the day after it, as in a run from the
    start. Before, the step was skipped as already taken while the state's cap
    was the scenario's first: the bundled fleet scenario, forecast from such
    actuals, ran at 2,000 a day for ever after its 5,000 and 10,000 steps."""
    when = (
        day(5).isoformat()
        if opens_on == "fixed"
        else {"dist": "uniform", "low": day(3).isoformat(), "high": day(8).isoformat()}
    )
    data = scenario(cohort("a", 60_000), cap=1000, horizon_days=60)
    data["gates"] = [{"name": "automation", "opens_on": when}]
    data["capacity"]["schedule"] = [
        {"name": "step", "from": "automation", "daily_cap": 3000}
    ]
    sc = load(data)
    results = migsim.run(sc, replications=1, seed=1)
    daily = results.daily.drop(columns=["daily_cap", "cap_rule"])
    daily.to_parquet(tmp_path / "daily.parquet", index=False)
    actuals = read_actuals(tmp_path / "daily.parquet", sc)
    state, notes = state_from_actuals(sc, actuals, day(20))
    assert any("do not report daily_cap and cap_rule" in n for n in notes)
    forward = migsim.run(sc.starting_from(state), replications=4, seed=2)
    caps = forward.daily.groupby(["replication", "date"])["daily_cap"].first()
    assert caps.max() == 3000
    assert (caps[caps > 0] == 3000).all()


def test_a_forecast_mid_month_starts_from_the_last_month_end_total(tmp_path):
    """Monthly totals and an as-of date on the 15th: what migrated after the
    month's end is not known, so the forecast starts from the month end's state
    and simulates the half month (it started on the 15th from the month end's
    total, dropping two weeks of migrations), and says so."""
    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    path = _totals(tmp_path, [0, 11436, 34908])
    actuals = read_actuals(path, sc)
    mid = forecast_as_of(sc, actuals, date(2020, 3, 16), replications=8, seed=1)
    end = forecast_as_of(sc, actuals, date(2020, 2, 29), replications=8, seed=1)
    assert mid.scenario.start_date == end.scenario.start_date
    assert any("end on 2020-02-29" in note for note in mid.notes)
    assert not any("end on" in note for note in end.notes)
    # a weekend after the last row is no gap worth a note
    weekend = forecast_as_of(sc, actuals, date(2020, 3, 1), replications=2, seed=1)
    assert not any("end on" in note for note in weekend.notes)


def test_a_start_inside_the_gap_after_the_actuals_is_the_forecasts_to_draw(tmp_path):
    """Actuals end on day 7, the forecast is made on day 21: cohort b's start
    (uniform on days 10-14) is not yet seen in them, so the forecast draws it
    in its own range; it was conditioned on no attempt by day 21 and became a
    fixed day 22, outside its range."""
    a, b = cohort("a", 3000), cohort("b", 3000)
    b["eligible_from"] = {
        "dist": "uniform",
        "low": day(10).isoformat(),
        "high": day(14).isoformat(),
    }
    sc = load(scenario(a, b, cap=200, horizon_days=60))
    full = migsim.run(sc, replications=1, seed=1)
    path = tmp_path / "actuals.parquet"
    full.daily[full.daily["date"] <= pd.Timestamp(day(7))].to_parquet(path)
    f = forecast_as_of(sc, read_actuals(path, sc), day(21), replications=12, seed=3)
    daily = f.results.daily
    first = daily[(daily.cohort == "b") & (daily.attempts > 0)].groupby("replication")
    starts = set(first["date"].min().dt.date)
    assert starts <= {day(k) for k in range(10, 15)} and len(starts) > 1


def test_a_forecast_says_the_day_of_the_state_it_starts_from(tmp_path):
    """As of 16 Mar from monthly totals: the text, summary.json and the report
    say the state is the actuals' last day by then, 29 Feb."""
    from migsim.output.report_sections import from_actuals

    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    path = tmp_path / "monthly.csv"
    pd.DataFrame(
        {"date": ["2020-01-31", "2020-02-29"], "cumulative_migrated": [11436, 34908]}
    ).to_csv(path, index=False)
    f = forecast_as_of(sc, read_actuals(path, sc), date(2020, 3, 16), 2, seed=1)
    assert "Forecast as of 2020-03-16 from the state on 2020-02-29" in (
        f.summary_text()
    )
    info = f.results.forecast
    assert info["as_of"] == "2020-03-16" and info["state_date"] == "2020-02-29"
    html = from_actuals(None, {"forecast": info})
    assert "as of 16 Mar 2020, from their last day by then, 29 Feb 2020" in html


def _two_cohorts(b_from: date | None = None):
    """Two cohorts of 6,000 (90% success, 10% rollback) sharing 300 a day,
    every day a working day; ``b`` eligible from ``b_from`` (default: the start)."""
    rates = outcomes(success=0.9, rollback=0.1)
    return load(
        scenario(
            cohort("a", 6000, rates=rates),
            cohort("b", 6000, rates=rates, eligible_from=b_from),
            cap=300,
            horizon_days=70,
            working_days=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        )
    )


def _cohort_totals(results, path, last: dict[str, int], every: int = 1):
    """A run's per-cohort cumulative migrated (migrated + impaired), every
    ``every`` days from day 0, cohort ``c`` up to day ``last[c]``, as a CSV."""
    daily = results.daily
    k = (daily["date"] - pd.Timestamp(day(0))).dt.days
    upto = daily["cohort"].astype(str).map(last).to_numpy()
    kept = daily[(k <= upto) & (k % every == 0)]
    pd.DataFrame(
        {
            "date": kept["date"].dt.strftime("%Y-%m-%d"),
            "cohort": kept["cohort"],
            "cumulative_migrated": kept["migrated"] + kept["impaired"],
        }
    ).to_csv(path, index=False)
    return path


def test_a_cohort_reported_two_weeks_before_the_others_is_simulated_since(tmp_path):
    """Per-cohort totals where b's last figure is from day 16 and a's from day
    30: the forecast as of day 30 starts from the state on day 16 and simulates
    both cohorts since (as it simulates the days after the programme's last
    total), so the bands of each cohort cover the run's own figures. b was
    taken as it stood on day 16 (frozen), its P95 on day 31 2,467 against
    the run's 4,308: two weeks of its migrations lost."""
    sc = _two_cohorts()
    truth = migsim.run(sc, replications=1, seed=1)
    path = _cohort_totals(truth, tmp_path / "t.csv", {"a": 30, "b": 16})
    forecast = forecast_as_of(sc, read_actuals(path, sc), day(30), 40, seed=2)
    assert forecast.start_date == day(17)
    assert any(n.startswith("b: last reported on 2024-01-17") for n in forecast.notes)
    assert forecast.results.summary["forecast"]["state_date"] == "2024-01-17"
    assert "from the state on 2024-01-17 (the last day all the actuals reach" in (
        forecast.summary_text()
    )
    exact = truth.state_on(day(16), 0)["cohorts"]
    for name in ("a", "b"):  # the state's day is one both report exactly
        start = forecast.scenario.cohort(name).initial_state
        assert start.migrated == exact[name]["migrated"]
    paths = forecast.results.series("cumulative_migrated")
    daily = truth.daily.set_index(["date", "cohort"])
    for k in (31, 35, 40):
        i = (day(k) - forecast.start_date).days
        for j, name in enumerate(("a", "b")):
            row = daily.loc[(pd.Timestamp(day(k)), name)]
            actual = float(row["migrated"] + row["impaired"])
            values = paths[:, i, j].astype(float)
            assert quantile(values, 0.05) <= actual <= quantile(values, 0.95), (
                k,
                name,
                actual,
            )


def test_the_others_figures_on_a_stale_cohorts_day_are_read_between_reports(
    tmp_path,
):
    """a reports weekly (days 0, 7, ..., 28), b daily up to day 16: a's
    figure on day 16 is read linearly between its reports of days 14 and 21
    (known by the forecast's as-of date, day 30), not frozen at day 14's;
    a state read as of day 16 alone still takes day 14's (nothing after its
    ``known_by`` is read), and a cohort that holds all its installations sets
    no day."""
    from migsim.evidence.coarse import reported_through

    sc = _two_cohorts()
    truth = migsim.run(sc, replications=1, seed=1)
    weekly = _cohort_totals(truth, tmp_path / "w.csv", {"a": 30, "b": 30}, every=7)
    frame = pd.read_csv(weekly)
    daily = _cohort_totals(truth, tmp_path / "d.csv", {"a": 30, "b": 16})
    mixed = pd.concat(
        [frame[frame["cohort"] == "a"], pd.read_csv(daily).query("cohort == 'b'")]
    )
    mixed.sort_values(["cohort", "date"]).to_csv(tmp_path / "m.csv", index=False)
    actuals = read_actuals(tmp_path / "m.csv", sc)
    assert reported_through(sc, actuals.up_to(day(30))) == (day(16), ["b"])
    a = frame[frame["cohort"] == "a"].set_index("date")["cumulative_migrated"]
    at14, at21 = float(a["2024-01-15"]), float(a["2024-01-22"])
    state, _ = state_from_actuals(sc, actuals, day(16), known_by=day(30))
    assert state["cohorts"]["a"]["migrated"] == round(at14 + (at21 - at14) * 2 / 7)
    exact = truth.state_on(day(16), 0)["cohorts"]["a"]["migrated"]
    assert abs(state["cohorts"]["a"]["migrated"] - exact) < 0.02 * exact
    alone, _ = state_from_actuals(sc, actuals, day(16))
    assert alone["cohorts"]["a"]["migrated"] == at14
    done = pd.DataFrame(
        {
            "date": ["2024-01-05", "2024-01-20", "2024-01-31"],
            "cohort": ["b", "a", "a"],
            "cumulative_migrated": [6000, 4000, 6000 - 100],
        }
    )
    done.to_csv(tmp_path / "done.csv", index=False)
    finished = read_actuals(tmp_path / "done.csv", sc)
    assert reported_through(sc, finished) == (day(30), [])


def test_a_cohort_the_actuals_never_mention_is_refused_once_it_was_eligible(
    tmp_path,
):
    """Per-cohort actuals without a row of b: b was forecast untouched (all
    6,000 queued) though the scenario had it migrating since the start. Now
    the forecast is refused in one line naming the file and the cohort, for
    totals and for daily flows alike; a b that is not yet eligible on the
    state's day stays pending, and a row of 0 says b had not started."""
    sc = _two_cohorts()
    truth = migsim.run(sc, replications=1, seed=1)
    path = _cohort_totals(truth, tmp_path / "a.csv", {"a": 20, "b": -1})
    message = (
        f"{path}: column cohort: no rows up to 2024-01-21 for b (eligible from "
        "2024-01-01): the forecast would take it as untouched; add its figures "
        "(a row of 0 if nothing had happened to it)"
    )
    with pytest.raises(MigsimError) as refused:
        forecast_as_of(sc, read_actuals(path, sc), day(20), 4, seed=1)
    assert str(refused.value) == message
    flows = tmp_path / "flows.csv"
    truth.daily[truth.daily["cohort"] == "a"].to_csv(flows, index=False)
    with pytest.raises(MigsimError, match="for b \\(eligible from 2024-01-01\\)"):
        state_from_actuals(sc, read_actuals(flows, sc), day(20))
    later = _two_cohorts(b_from=day(25))
    state, _ = state_from_actuals(later, read_actuals(path, later), day(20))
    assert state["cohorts"]["b"]["pending"] == 6000
    assert state["cohorts"]["b"]["migrated"] == 0
    zero = pd.read_csv(path)
    zero.loc[len(zero)] = ["2024-01-21", "b", 0]
    zero.to_csv(tmp_path / "zero.csv", index=False)
    state, _ = state_from_actuals(sc, read_actuals(tmp_path / "zero.csv", sc), day(20))
    assert state["cohorts"]["b"]["queued"] == 6000


def test_a_cohort_whose_migrations_had_stopped_sets_no_day(tmp_path):
    """b finished with 5,880 of its 6,000 migrated (the rest left dumb or
    excluded) and its total is reported flat from day 14 to day 21, then no
    more; a is reported up to day 35. b's figure, short of its size, set the
    day a forecast as of day 35 started from: day 21, a's two weeks of figures
    since unused. Unchanged for a week, b is taken as stopped: the forecast
    starts from day 35 with b as it stood. A cohort of estimated size at the
    top of its range is stopped too; daily totals flat over a weekend are not."""
    from migsim.evidence.coarse import reported_through

    sc = _two_cohorts()
    rows = [(0, "b", 0), (7, "b", 4000), (14, "b", 5880), (21, "b", 5880)]
    rows += [(k, "a", 150 * k) for k in range(0, 36, 7)]
    frame = pd.DataFrame(rows, columns=["day", "cohort", "cumulative_migrated"])
    frame.insert(0, "date", [day(k).isoformat() for k in frame.pop("day")])
    frame.to_csv(tmp_path / "flat.csv", index=False)
    actuals = read_actuals(tmp_path / "flat.csv", sc)
    assert reported_through(sc, actuals) == (day(35), [])
    forecast = forecast_as_of(sc, actuals, day(35), 4, seed=1)
    assert forecast.start_date == day(36)
    starts = {c.name: c.initial_state.migrated for c in forecast.scenario.cohorts}
    assert starts == {"a": 5250, "b": 5880}
    assert "b on 2024-01-22: last reported before the other cohorts" in " ".join(
        forecast.notes
    )
    ranged = sc.to_dict()
    ranged["cohorts"][1]["installations_range"] = {
        "dist": "uniform",
        "low": 5000,
        "high": 6000,
    }
    ranged = load(ranged)
    top = frame[(frame["cohort"] == "a") | (frame["date"] == day(7).isoformat())]
    top = top.replace({"cumulative_migrated": {4000: 6000}})
    top.to_csv(tmp_path / "top.csv", index=False)
    assert reported_through(ranged, read_actuals(tmp_path / "top.csv", ranged)) == (
        day(35),
        [],
    )
    daily = [(k, "b", 300 * min(k, 4)) for k in range(7)]  # flat days 4 to 6
    daily += [(k, "a", 150 * k) for k in range(0, 15, 7)]
    weekend = pd.DataFrame(daily, columns=["day", "cohort", "cumulative_migrated"])
    weekend.insert(0, "date", [day(k).isoformat() for k in weekend.pop("day")])
    weekend.to_csv(tmp_path / "weekend.csv", index=False)
    assert reported_through(sc, read_actuals(tmp_path / "weekend.csv", sc)) == (
        day(6),
        ["b"],
    )


def test_a_cohort_flat_over_a_closure_has_not_stopped(tmp_path):
    """b's total stood still from day 14 to its last report on day 26 over a
    ten-day closure (days 15 to 24): a week by the calendar, two working days,
    yet b was taken as stopped and the forecast as of day 35 started from
    day 35 with b frozen, its migrations since the closure lost. The still
    period is counted in the scenario's working days: b is not stopped, and
    the forecast starts from its last report. Flat from day 7 over the same
    closure (nine working days), b is stopped."""
    from migsim.evidence.coarse import reported_through

    closed = _two_cohorts().to_dict()
    closed["calendar"]["closures"] = [day(k).isoformat() for k in range(15, 25)]
    sc = load(closed)

    def through(b_rows):
        rows = [(k, "b", n) for k, n in b_rows]
        rows += [(k, "a", 150 * k) for k in range(0, 36, 7)]
        frame = pd.DataFrame(rows, columns=["day", "cohort", "cumulative_migrated"])
        frame.insert(0, "date", [day(k).isoformat() for k in frame.pop("day")])
        path = tmp_path / "totals.csv"
        frame.to_csv(path, index=False)
        return reported_through(sc, read_actuals(path, sc))

    flat_over_closure = [(0, 0), (7, 2000), (14, 4000), (26, 4000)]
    assert through(flat_over_closure) == (day(26), ["b"])
    flat_since_day_7 = [(0, 0), (7, 4000), (14, 4000), (26, 4000)]
    assert through(flat_since_day_7) == (day(35), [])


def test_working_days_between_counts_within_the_horizon_only():
    """The count `_stopped` and the forecast's gap note share: the calendar's
    working days after one date up to another. A span that ends before the
    scenario's start counted nearly its whole horizon (a negative slice)."""
    from migsim.sim.calendar import working_days, working_days_between

    closed = _two_cohorts().to_dict()
    closed["calendar"]["closures"] = [day(k).isoformat() for k in range(15, 25)]
    sc = load(closed)
    open_days = working_days(sc)
    assert working_days_between(sc, day(14), day(26)) == open_days[15:27].sum() == 2
    assert working_days_between(sc, day(7), day(26)) == open_days[8:27].sum() == 9
    assert working_days_between(sc, day(-20), day(-5)) == 0
    assert working_days_between(sc, day(-20), day(2)) == open_days[:3].sum()
    end = sc.horizon_days
    assert working_days_between(sc, day(end - 3), day(end + 30)) == (
        open_days[end - 2 :].sum()
    )


def test_a_cohort_yet_to_open_is_known_at_none_until_it_opens(tmp_path):
    """b opens on day 30 (a fixed eligible_from) and its one row, a 0 on day
    0, says it had not started; a is reported daily to day 20. That row set
    the day a forecast as of day 20 started from: day 0, a's twenty days of
    figures unused (with no row of b at all it started from day 20). Nothing
    migrates before a cohort opens, so b's figures reach day 29: the forecast
    starts from day 20. A b opening on day 10 is known only to day 9."""
    from migsim.evidence.coarse import reported_through

    rows = [(day(k).isoformat(), "a", 150 * k) for k in range(21)]
    rows.append((day(0).isoformat(), "b", 0))
    frame = pd.DataFrame(rows, columns=["date", "cohort", "cumulative_migrated"])
    frame.to_csv(tmp_path / "t.csv", index=False)
    later = _two_cohorts(b_from=day(30))
    actuals = read_actuals(tmp_path / "t.csv", later)
    assert reported_through(later, actuals) == (day(20), [])
    forecast = forecast_as_of(later, actuals, day(20), 4, seed=1)
    assert forecast.start_date == day(21)
    starts = {c.name: c.initial_state for c in forecast.scenario.cohorts}
    assert (starts["a"].migrated, starts["b"].migrated) == (3000, 0)
    assert starts["b"].pending == 6000
    assert not any("older than the others" in n for n in forecast.notes)
    sooner = _two_cohorts(b_from=day(10))
    assert reported_through(sooner, read_actuals(tmp_path / "t.csv", sooner)) == (
        day(9),
        ["b"],
    )
