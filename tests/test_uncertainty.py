"""Input uncertainty: evidence-based rates, slipped dates with a shared programme
delay, AR(1) achieved throughput, size ranges, point values, and the variance
split (law of total variance with twins; first-order shares)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import cohort, day, load, outcomes, scenario
from scipy import stats

import migsim
from migsim.common.errors import ScenarioError
from migsim.model.point import point_scenario
from migsim.model.uncertainty import AchievedThroughput, SlipDate
from migsim.results.variance import (
    first_order_share,
    input_groups,
    mean_ranks,
    split,
    within_variance,
    words,
)
from migsim.sim.dates import resolve_dates
from migsim.sim.engine import run_replication
from migsim.sim.inputs import TwinStreams, input_label
from migsim.sim.streams import Streams

PRIOR = {"success": 1, "stall": 1, "rollback": 1, "fix_forward": 1, "dumb": 1}
EVIDENCE = {"attempts": 2139, "success": 1982, "stall": 156, "dumb": 1}


def slip(planned, median, sigma, **extra):
    return {
        "dist": "slip",
        "planned": planned.isoformat(),
        "median_days": median,
        "sigma": sigma,
        **extra,
    }


def evidence_cohort(name="c", installations=200, **extra):
    data = cohort(
        name,
        installations,
        rates=outcomes(
            success=0.9, stall=0.05, rollback=0.03, fix_forward=0.01, dumb=0.01
        ),
        **extra,
    )
    # copies: a test that changes its cohort's evidence (its weight) changed
    # EVIDENCE for every later test in the process
    data["outcomes"] = {
        "dist": "dirichlet",
        "prior": dict(PRIOR),
        "evidence": dict(EVIDENCE),
    }
    return data


def uncertain_scenario(**extra):
    """Two cohorts with every kind of input: evidence, slips, sizes, throughput."""
    first = evidence_cohort("first", 300)
    first["eligible_from"] = slip(day(5), 6, 0.8, shared=True)
    first["installations_range"] = {"dist": "triangular", "low": 200, "high": 500}
    second = evidence_cohort("second", 300)
    second["eligible_from"] = slip(
        day(20), 6, 0.8, shared=True, black_swan={"probability": 0.2, "factor": 3}
    )
    data = scenario(
        first,
        second,
        cap=60,
        horizon_days=200,
        programme_delay={"dist": "lognormal", "median": 1, "sigma": 0.6},
        **extra,
    )
    data["capacity"]["achieved"] = {
        "dist": "ar1",
        "mean": {"dist": "beta", "alpha": 6, "beta": 4},
        "persistence": 0.7,
        "innovation_sd": 0.3,
    }
    return data


# --------------------------------------------------------------------------- rates
def test_evidence_and_prior_make_the_dirichlet_posterior():
    sc = load(scenario(evidence_cohort()))
    outcomes_ = sc.cohorts[0].outcomes
    expected = np.array([1983, 157, 1, 1, 2]) / (2139 + 5)
    np.testing.assert_allclose(outcomes_.mean(), expected)
    rng = np.random.default_rng(1)
    draws = np.array([outcomes_.as_array(rng) for _ in range(4000)])
    se = draws.std(axis=0) / math.sqrt(len(draws))
    assert (np.abs(draws.mean(axis=0) - expected) < 4 * se + 1e-12).all()
    # the posterior is as narrow as 2,139 attempts make it: sd of success ~0.0057
    assert draws[:, 0].std() == pytest.approx(
        math.sqrt(expected[0] * (1 - expected[0]) / (2144 + 1)), rel=0.1
    )


def test_evidence_is_dumped_not_its_sum_and_reloads_equal():
    sc = load(scenario(evidence_cohort()))
    dumped = sc.to_dict()["cohorts"][0]["outcomes"]
    assert set(dumped) == {"dist", "prior", "evidence"}
    assert load(sc.to_dict()).sha256 == sc.sha256
    changed = sc.with_overrides(
        {
            "cohorts.c.outcomes.evidence.dumb": 0,
            "cohorts.c.outcomes.evidence.success": 1983,
        }
    )
    assert changed.cohorts[0].outcomes.alpha.dumb == 1


@pytest.mark.parametrize(
    "outcomes_, message",
    [
        (
            {
                "dist": "dirichlet",
                "prior": PRIOR,
                "evidence": {**EVIDENCE, "attempts": 2000},
            },
            "sum to 2,139",
        ),
        ({"dist": "dirichlet", "evidence": EVIDENCE}, "needs its evidence"),
        (
            {"dist": "dirichlet", "prior": PRIOR, "evidence": EVIDENCE, "alpha": PRIOR},
            "not both",
        ),
    ],
)
def test_bad_evidence_is_one_line_naming_the_field(outcomes_, message):
    data = scenario(evidence_cohort())
    data["cohorts"][0]["outcomes"] = outcomes_
    with pytest.raises(ScenarioError, match=message) as caught:
        load(data)
    assert "cohorts.c.outcomes" in str(caught.value)


def test_rates_drawn_per_replication_have_the_posterior_mean():
    sc = load(scenario(evidence_cohort(installations=20), horizon_days=10))
    drawn = np.array(
        [
            run_replication(sc, 0, k).inputs["cohorts.c.outcomes.success"]
            for k in range(300)
        ]
    )
    mean = 1983 / 2144
    assert abs(drawn.mean() - mean) < 4 * drawn.std() / math.sqrt(len(drawn))
    assert drawn.std() > 0.003  # they vary between replications


# --------------------------------------------------------------------------- dates
def test_slip_quantiles_match_the_lognormal():
    spec = SlipDate(dist="slip", planned=day(0), median_days=30, sigma=0.7)
    rng = np.random.default_rng(3)
    slips = np.array([spec.slip_days(rng) for _ in range(20000)])
    law = stats.lognorm(s=0.7, scale=30)
    for q in (0.1, 0.5, 0.9, 0.99):
        assert np.quantile(slips, q) == pytest.approx(law.ppf(q), rel=0.04), q
    assert spec.point == day(0)


def test_a_black_swan_multiplies_the_slip_with_its_probability():
    spec = SlipDate(
        dist="slip",
        planned=day(0),
        median_days=10,
        sigma=0.0,
        black_swan={"probability": 1 / 6, "factor": 4},
    )
    rng = np.random.default_rng(4)
    slips = np.array([spec.slip_days(rng) for _ in range(12000)])
    assert set(np.round(slips, 9)) == {10.0, 40.0}
    assert (slips == 40).mean() == pytest.approx(1 / 6, abs=0.01)


def _cohort_days(data, replications=400):
    sc = load(data)
    out = []
    for k in range(replications):
        days = resolve_dates(sc, Streams(0, k)).days
        out.append(
            [days["cohorts.first.eligible_from"], days["cohorts.second.eligible_from"]]
        )
    return np.array(out, dtype=float)


def test_a_mid_programme_start_draws_its_dates_as_a_first_day_does():
    """Dates that cannot fall before day 0 (slips after planned days 5 and 20)
    need no redraw: a start with an operations state gives each replication the
    dates of the same scenario without one, a date passed before day 0 kept."""
    plain = load(uncertain_scenario())
    passed = uncertain_scenario()
    passed["operations_state"] = {
        "cap": 60,
        "dates_passed": {"cohorts.first.eligible_from": day(-3).isoformat()},
    }
    conditioned = uncertain_scenario()
    conditioned["operations_state"] = {"cap": 60}
    passed_sc, conditioned_sc = load(passed), load(conditioned)
    for k in range(30):
        first = resolve_dates(plain, Streams(0, k))
        assert resolve_dates(conditioned_sc, Streams(0, k)) == first
        later = resolve_dates(passed_sc, Streams(0, k)).days
        assert later == {**first.days, "cohorts.first.eligible_from": -3}


def test_a_shared_programme_delay_makes_cohort_dates_move_together():
    """log slip = log median + 0.8 Z_cohort + 0.6 Z_programme (+ a black swan for
    the second): correlation 0.36 / sqrt(1 x 1.19) = 0.33 before rounding."""
    planned = np.array([5, 20])
    shared = np.log1p(_cohort_days(uncertain_scenario()) - planned)
    assert np.corrcoef(shared.T)[0, 1] == pytest.approx(0.33, abs=0.12)
    data = uncertain_scenario()
    for c in data["cohorts"]:
        c["eligible_from"]["shared"] = False
    alone = np.log1p(_cohort_days(data) - planned)
    assert abs(np.corrcoef(alone.T)[0, 1]) < 0.12
    # the shared factor widens the dates: heavier spread
    assert np.quantile(shared[:, 0], 0.95) > np.quantile(alone[:, 0], 0.95)


def test_a_shared_slip_needs_a_programme_delay():
    data = uncertain_scenario()
    del data["programme_delay"]
    with pytest.raises(ScenarioError, match="needs a programme_delay"):
        load(data)


def test_slip_dates_work_in_gates_and_schedule_steps():
    data = scenario(cohort(installations=3000), cap=100, horizon_days=80)
    data["capacity"]["schedule"] = [
        {"name": "step", "from": slip(day(10), 5, 0.5), "daily_cap": 300}
    ]
    data["gates"] = [{"name": "fix", "opens_on": slip(day(3), 4, 1.0)}]
    data["cohorts"][0]["eligible_from"] = "fix"
    sc = load(data)
    log = run_replication(sc, 0, 1)
    step_day = int(log.inputs["capacity.schedule.step.from"])
    assert step_day >= 10
    assert log.day_columns["daily_cap"][step_day:].max() == 300
    # the cap steps up on the drawn day, not before it (0: a weekend)
    caps = log.day_columns["daily_cap"]
    assert set(caps[:step_day].tolist()) == {0, 100}
    assert set(caps[step_day:].tolist()) == {0, 300}
    gate = int(log.inputs["gates.fix"])
    assert gate >= 3
    assert log.cohort_columns["attempts"][:gate].sum() == 0
    # ... and the cohort starts on the first working day from the drawn gate
    attempted = np.flatnonzero(log.cohort_columns["attempts"][:, 0])
    assert attempted[0] == gate + np.flatnonzero(caps[gate:])[0]


# --------------------------------------------------------------------------- throughput
def test_ar1_achieved_share_has_its_mean_and_persistence():
    spec = AchievedThroughput(dist="ar1", mean=0.6, persistence=0.8, innovation_sd=0.4)
    path = spec.path(0.6, np.random.default_rng(5), 200_000)
    assert path.mean() == pytest.approx(0.6, abs=0.01)
    logit = np.log(path / (1 - path))
    lag1 = np.corrcoef(logit[:-1], logit[1:])[0, 1]
    assert lag1 == pytest.approx(0.8, abs=0.01)
    assert logit.std() == pytest.approx(spec.stationary_sd, rel=0.03)
    assert ((path > 0) & (path < 1)).all()


def test_the_engine_attempts_at_most_the_achieved_share_of_the_cap():
    data = scenario(cohort(installations=5000), cap=100, horizon_days=40)
    data["capacity"]["achieved"] = {
        "dist": "ar1",
        "mean": 0.5,
        "persistence": 0.9,
        "innovation_sd": 0.5,
    }
    log = run_replication(load(data), 0, 0)
    attempts = log.cohort_columns["attempts"][:, 0]
    achieved = log.day_columns["achieved_cap"]
    assert (attempts <= achieved).all()
    assert (attempts <= np.floor(log.day_columns["daily_cap"] * 1.0)).all()
    working = log.day_columns["daily_cap"] > 0
    assert 30 < attempts[working].mean() < 70  # about half of 100
    assert len(set(achieved[working].tolist())) > 5  # it varies from day to day


# --------------------------------------------------------------------------- sizes
def test_sizes_are_drawn_per_replication_and_conserved():
    sc = load(uncertain_scenario())
    sizes = []
    for k in range(30):
        log = run_replication(sc, 0, k)
        size = log.inputs["cohorts.first.installations"]
        assert 200 <= size <= 500
        states = [
            log.cohort_columns[s][:, 0]
            for s in (
                "pending",
                "queued",
                "stalled",
                "rolled_back",
                "impaired",
                "migrated",
                "dumb",
                "abandoned",
            )
        ]
        np.testing.assert_array_equal(sum(states), size)
        sizes.append(size)
    assert len(set(sizes)) > 10
    assert sc.cohort("first").installations == 300  # the point value


def test_a_size_range_must_hold_its_point_value():
    data = uncertain_scenario()
    data["cohorts"][0]["installations_range"]["low"] = 400
    with pytest.raises(ScenarioError, match="must lie in the range"):
        load(data)


# --------------------------------------------------------------------------- point
def test_point_values_are_planned_dates_means_and_modes():
    sc = load(uncertain_scenario())
    point = point_scenario(sc)
    assert point.uncertainty == "point"
    assert point.cohort("first").eligible_from == day(5)
    assert point.cohort("second").eligible_from == day(20)
    assert point.programme_delay is None
    assert point.cohort("first").installations_range is None
    assert point.capacity.achieved.mean == pytest.approx(0.6)
    assert point.cohort("first").outcomes.success == pytest.approx(1983 / 2144)
    assert point_scenario(point).sha256 == point.sha256
    assert run_replication(point, 0, 0).inputs == {}


def test_point_run_equals_the_point_scenario_and_the_switch():
    sc = load(uncertain_scenario())
    by_function = migsim.run(point_scenario(sc), replications=4)
    by_switch = migsim.run(sc.with_overrides({"uncertainty": "point"}), replications=4)
    for column in ("clearance_day", "attempts", "dumb"):
        np.testing.assert_array_equal(
            by_function.replications[column], by_switch.replications[column]
        )
    full = migsim.run(sc, replications=4)
    assert not full.replications["attempts"].equals(by_switch.replications["attempts"])


def test_cli_point_flag_runs_the_point_values(tmp_path):
    from click.testing import CliRunner

    from migsim.cli.main import main

    path = tmp_path / "u.yaml"
    path.write_text(load(uncertain_scenario()).to_yaml(), encoding="utf-8")
    runner = CliRunner()
    point = runner.invoke(
        main, ["run", str(path), "-n", "4", "-q", "--point", "--format", "json"]
    )
    assert point.exit_code == 0, point.output
    expected = migsim.run(point_scenario(load(uncertain_scenario())), replications=4)
    import json

    payload = json.loads(point.stdout)
    assert payload["clearance_date"] == expected.summary["clearance_date"]
    full = runner.invoke(main, ["run", str(path), "-n", "10", "-q"])
    assert "Where the uncertainty comes from" in full.output
    assert "clearance day: inputs" in full.output


# --------------------------------------------------------------------------- twins
def test_twins_share_the_inputs_and_redraw_the_days():
    sc = load(uncertain_scenario())
    base = run_replication(sc, 0, 7)
    twin = run_replication(sc, 0, 7, twin=1)
    other = run_replication(sc, 0, 7, twin=2)
    assert base.inputs == twin.inputs == other.inputs
    assert not np.array_equal(
        base.cohort_columns["stalls"], twin.cohort_columns["stalls"]
    )
    streams = TwinStreams(0, 7, 1)
    assert (
        streams.get("c", "parameters").random()
        == Streams(0, 7).get("c", "parameters").random()
    )
    assert (
        streams.get("c", "outcomes").random()
        != Streams(0, 7).get("c", "outcomes").random()
    )


def test_a_scenario_without_distributions_draws_and_records_nothing():
    data = scenario(cohort(rates=outcomes(success=0.9, stall=0.1)))
    log = run_replication(load(data), 0, 0)
    assert log.inputs == {}
    results = migsim.run(load(data), replications=5)
    split_ = results.summary["variance_split"]["clearance_day"]
    assert split_["twins"] == 0
    if split_["inputs_share"] is not None:
        assert split_["inputs_share"] == 0 and split_["day_to_day_share"] == 1


def test_common_seeds_share_input_draws_between_compared_scenarios():
    a = load(uncertain_scenario())
    b = a.with_overrides({"capacity.daily_cap": 90})
    for k in range(5):
        assert run_replication(a, 0, k).inputs == run_replication(b, 0, k).inputs


def test_uncertain_runs_are_the_same_for_any_worker_count(tmp_path):
    sc = load(uncertain_scenario())
    one = migsim.run(sc, replications=12, workers=1)
    two = migsim.run(sc, replications=12, workers=2)
    assert one.replications.equals(two.replications)
    assert one.inputs.equals(two.inputs)
    drop = ("timing",)
    assert {k: v for k, v in one.summary.items() if k not in drop} == {
        k: v for k, v in two.summary.items() if k not in drop
    }
    one.write(tmp_path / "a")
    two.write(tmp_path / "b")
    for name in ("replications.csv", "inputs.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (
            tmp_path / "b" / name
        ).read_bytes()


def test_twins_run_on_the_workers_the_same_for_any_worker_count(monkeypatch):
    import migsim.results.variance as variance

    sc = load(uncertain_scenario())
    one = migsim.run(sc, replications=23, workers=1)
    two = migsim.run(sc, replications=23, workers=2, batch_size=3)
    for results in (one, two):
        np.testing.assert_array_equal(results._twins.replications, [0, 1, 10, 20])

    def no_simulation(*args, **kwargs):
        raise AssertionError("the split simulated a twin in the main process")

    monkeypatch.setattr(variance, "simulate", no_simulation)
    assert one.variance_split() == two.variance_split()
    assert one.variance_split()["clearance_day"]["twins"] == 4
    for name in one._twins.overall:
        np.testing.assert_array_equal(
            one._twins.overall[name], two._twins.overall[name]
        )


def test_twins_are_the_same_when_runs_combine_or_come_from_logs():
    sc = load(uncertain_scenario())
    whole = migsim.run(sc, replications=24)
    parts = [
        migsim.run(sc, replications=12),
        migsim.run(sc, replications=12, first_replication=12),
    ]
    combined = migsim.Results.combine(parts)
    np.testing.assert_array_equal(combined._twins.replications, [0, 1, 10, 20])
    assert combined.variance_split() == whole.variance_split()
    logs = [run_replication(sc, sc.seed, k) for k in range(24)]
    from_logs = migsim.Results(sc, sc.seed, logs)
    assert from_logs._twins is None  # simulated when the split is first read
    assert from_logs.variance_split() == whole.variance_split()
    # the twin reruns its replication's inputs with fresh day-to-day randomness
    twin = run_replication(sc, sc.seed, 10, 1)
    assert twin.inputs == logs[10].inputs


# --------------------------------------------------------------------------- estimator
def _synthetic(n, twins, a=2.0, b=1.0, noise=1.0, seed=0):
    """Y = a X1 + b X2 + noise, X independent standard normal: known shares."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.standard_normal((3, n))
    y = a * x1 + b * x2 + noise * rng.standard_normal(n)
    twin = a * x1[:twins] + b * x2[:twins] + noise * rng.standard_normal(twins)
    groups = [np.array([p, q]) for p, q in zip(y[:twins], twin, strict=True)]
    return y, {"x1": x1, "x2": x2, "unused": x3}, groups


def test_the_split_recovers_known_shares_on_a_synthetic_model():
    y, inputs, groups = _synthetic(4000, 1000)
    total = 2.0**2 + 1.0**2 + 1.0
    out = split(y, inputs, groups)
    assert out["inputs_share"] + out["day_to_day_share"] == pytest.approx(1.0)
    assert out["inputs_share"] == pytest.approx(5 / total, abs=0.05)
    shares = {t["input"]: t["share"] for t in out["top_inputs"]}
    assert shares["x1"] == pytest.approx(4 / total, abs=0.05)
    assert shares["x2"] == pytest.approx(1 / total, abs=0.05)
    assert shares.get("unused", 0.0) < 0.02
    assert [t["input"] for t in out["top_inputs"]][:2] == ["x1", "x2"]


def test_a_figure_a_handful_of_replications_move_gets_no_split():
    """2 of 200 replications abandon one installation: the split once read
    "inputs 100% (...)"; it says there is too little variation instead."""
    rng = np.random.default_rng(0)
    y = np.zeros(200)
    y[[108, 151]] = 1.0
    inputs = {"x": rng.standard_normal(200), "y": rng.standard_normal(200)}
    groups = [np.array([y[k], 0.0]) for k in range(0, 200, 10)]
    out = split(y, inputs, groups)
    assert out["inputs_share"] is None and out["day_to_day_share"] is None
    assert out["top_inputs"] == [] and (out["varying"], out["replications"]) == (2, 200)
    assert words(out) == (
        "too little variation to split (2 of 200 replications differ from the rest)"
    )
    y[:5] = 3.0  # five replications off the common value: split as before
    assert split(y, inputs, groups)["inputs_share"] is not None


def test_one_draw_under_two_keys_is_named_once():
    """A gate opening on its own drawn date records it twice (``gates.g`` and
    ``gates.g.opens_on``): the split named "gate g opening: 17%" and "gate g
    date: 17%", one draw counted twice."""
    y, inputs, groups = _synthetic(2000, 200)
    inputs = {"gates.g.opens_on": inputs["x1"], "x2": inputs["x2"]}
    inputs["gates.g"] = inputs["gates.g.opens_on"].copy()
    out = split(y, inputs, groups, input_label)
    named = [t["input"] for t in out["top_inputs"]]
    assert named == ["gates.g", "x2"]
    assert out["top_inputs"][0]["label"] == "gate g opening"


def test_the_twin_estimate_of_the_day_to_day_variance_is_unbiased():
    estimates = []
    for seed in range(200):
        _, _, groups = _synthetic(20, 20, noise=2.0, seed=seed)
        estimates.append(within_variance(groups)[0])
    estimates = np.array(estimates)
    se = estimates.std() / math.sqrt(len(estimates))
    assert abs(estimates.mean() - 4.0) < 4 * se


def test_first_order_share_handles_ties_and_never_dates():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, 3000).astype(float)  # three values: one bin each
    y = x + rng.standard_normal(3000)
    assert first_order_share(x, y) == pytest.approx(
        np.var(x) / (np.var(x) + 1), abs=0.04
    )
    x[x == 2] = math.inf  # a date that never came ranks last
    assert first_order_share(x, y) > 0.3
    assert first_order_share(rng.standard_normal(3000), y) < 0.02


def test_inputs_are_named_in_planners_words():
    assert input_label("cohorts.foc_active.eligible_from") == "foc_active start date"
    assert input_label("capacity.achieved.mean").startswith("achieved throughput")
    assert input_label("programme_delay") == "programme-wide delay"
    assert input_label("capacity.schedule.automated_mcc.from") == (
        "ramp step automated_mcc date"
    )
    assert input_label("cohorts.ioc_active.outcomes.success") == (
        "ioc_active success rate"
    )
    assert input_label("gates.mcc.opens_on") == "gate mcc date"
    assert input_label("gates.g.all_of.fix.fixed_on") == "gate g: fix date"
    assert input_label("gates.g") == "gate g opening"
    assert input_label("capacity.schedule.top.daily_cap") == "ramp step top cap"
    for key in (
        "cohorts.c.stall.release_on",
        "suppliers.s.business_ready",
        "cohorts.c.deferred.split.until",
        "cohorts.c.installations",
    ):
        assert input_label(key) != key


def test_a_run_records_inputs_and_splits_the_clearance_variance(tmp_path):
    results = migsim.run(load(uncertain_scenario()), replications=40)
    inputs = results.inputs
    assert len(inputs) == 40
    assert "programme_delay" in inputs and "cohorts.second.eligible_from" in inputs
    split_ = results.summary["variance_split"]["clearance_day"]
    assert split_["twins"] == 5  # replications 0, 1, 10, 20 and 30
    assert split_["inputs_share"] + split_["day_to_day_share"] == pytest.approx(1)
    assert split_["inputs_share"] > 0.5  # slips and throughput dominate here
    assert split_["top_inputs"]
    results.write(tmp_path / "out")
    assert (tmp_path / "out" / "inputs.csv").exists()


# --------------------------------------------------------------------------- more
def test_not_before_conditions_a_slip_on_what_has_not_happened():
    spec = SlipDate(
        dist="slip", planned=day(0), median_days=30, sigma=0.8, not_before=day(40)
    )
    rng = np.random.default_rng(6)
    days = np.array([(spec.draw(rng) - day(0)).days for _ in range(5000)])
    assert days.min() >= 40
    law = stats.lognorm(s=0.8, scale=30)  # the lognormal given it is >= 39.5
    tail = law.sf(39.5)
    assert np.median(days) == pytest.approx(law.isf(tail / 2), rel=0.05)
    assert spec.point == day(40)


def test_borrowed_evidence_counts_with_its_weight():
    data = scenario(evidence_cohort())
    data["cohorts"][0]["outcomes"]["evidence"]["weight"] = 0.25
    alpha = load(data).cohorts[0].outcomes.alpha
    assert alpha.success == pytest.approx(1 + 0.25 * 1982)
    assert alpha.stall == pytest.approx(1 + 0.25 * 156)


def test_shared_sizes_move_together_and_keep_their_ranges():
    data = uncertain_scenario()
    data["cohorts"][1]["installations_range"] = {
        "dist": "uniform",
        "low": 100,
        "high": 900,
        "shared": True,
    }
    data["cohorts"][0]["installations_range"]["shared"] = True
    sc = load(data)
    sizes = np.array(
        [
            [
                run_replication(sc, 0, k).inputs[f"cohorts.{c}.installations"]
                for c in ("first", "second")
            ]
            for k in range(40)
        ]
    )
    assert (sizes[:, 0] >= 200).all() and (sizes[:, 0] <= 500).all()
    assert (sizes[:, 1] >= 100).all() and (sizes[:, 1] <= 900).all()
    assert stats.spearmanr(sizes[:, 0], sizes[:, 1])[0] > 0.99


def test_a_ramp_step_cap_may_be_a_range():
    data = scenario(cohort(installations=100_000), cap=100, horizon_days=30)
    data["capacity"]["schedule"] = [
        {
            "name": "scaled",
            "from": day(7).isoformat(),
            "daily_cap": 300,
            "daily_cap_range": {"dist": "triangular", "low": 200, "high": 600},
        }
    ]
    sc = load(data)
    caps = []
    for k in range(20):
        log = run_replication(sc, 0, k)
        cap = log.inputs["capacity.schedule.scaled.daily_cap"]
        assert log.day_columns["daily_cap"][7:].max() == cap
        # the drawn cap is in force from the step's day on, the first before it
        # (0: a weekend), and a queue of 100,000 uses all of it
        assert set(log.day_columns["daily_cap"][:7].tolist()) == {0, 100}
        assert set(log.day_columns["daily_cap"][7:].tolist()) == {0, cap}
        attempts = log.cohort_columns["attempts"][:, 0]
        assert (attempts == log.day_columns["daily_cap"]).all()
        caps.append(cap)
    assert min(caps) >= 200 and max(caps) <= 600 and len(set(caps)) > 5
    assert point_scenario(sc).capacity.schedule[0].daily_cap_range is None


def test_a_state_of_a_drawn_size_continues_with_that_size():
    sc = load(uncertain_scenario())
    results = migsim.run(sc, replications=2)
    state = results.state_on(day(30), 1)
    drawn = results.inputs["cohorts.first.installations"].iloc[1]
    later = sc.starting_from(state)
    assert later.cohort("first").installations == drawn
    assert later.cohort("first").installations_range is None
    log = run_replication(later, 0, 0)
    total = sum(
        log.cohort_columns[s][:, 0]
        for s in (
            "pending",
            "queued",
            "stalled",
            "rolled_back",
            "impaired",
            "migrated",
            "dumb",
            "abandoned",
        )
    )
    assert (total == drawn).all()


def test_a_cohorts_outcome_rates_count_once_in_the_split():
    """Rates of one Dirichlet draw are judged together, not as overlapping parts.

    Y depends on the stall rate alone; success moves against it (they share a
    draw). Listed apart, both would carry most of the variance (shares adding
    to far more than 1); as one group they carry it once.
    """
    rng = np.random.default_rng(7)
    n = 600
    rates = rng.dirichlet([90.0, 8.0, 1.0, 1.0], size=n)
    other = rng.uniform(size=n)
    y = 1000 * rates[:, 1] + 0.5 * rng.standard_normal(n)
    keys = ["success", "stall", "rollback", "dumb"]
    inputs = {f"cohorts.a.outcomes.{k}": rates[:, i] for i, k in enumerate(keys)}
    inputs["capacity.achieved.mean"] = other
    twins = [np.array([v, v + 0.5 * rng.standard_normal()]) for v in y[:60]]
    out = split(y, inputs, twins, input_label)
    tops = {t["input"]: t["share"] for t in out["top_inputs"]}
    assert list(tops) == ["cohorts.a.outcomes"]
    assert tops["cohorts.a.outcomes"] > 0.9
    assert out["top_inputs"][0]["label"] == "a outcome rates"
    assert sum(tops.values()) <= out["inputs_share"] + 1e-9


def test_inputs_one_draw_sets_count_once_in_the_split():
    """The cohorts of a ``shared`` size range each record a size, in
    proportion: one draw. Listed apart, the full fleet's split named three
    cohorts' sizes at 24% each for one uncertain fleet size; now they are one
    entry, and so is any other set of inputs in the same order in every
    replication. Inputs merely correlated stay apart."""
    rng = np.random.default_rng(11)
    n = 400
    q = rng.uniform(size=n)
    ratio = rng.uniform(1.4, 1.9, size=n)
    inputs = {
        f"cohorts.{name}.installations": np.floor(scale * (0.9 + 0.2 * q) / ratio * 1e6)
        for name, scale in (("a", 1.0), ("b", 2.0), ("c", 0.5))
    }
    inputs["meters_per_installation"] = ratio
    slip = rng.uniform(size=n)
    inputs["cohorts.a.eligible_from"] = 10 * slip
    inputs["cohorts.b.eligible_from"] = 10 * slip + rng.uniform(size=n)  # not one draw
    y = (
        inputs["cohorts.b.installations"] / 1e5
        + 5 * slip
        + 0.3 * rng.standard_normal(n)
    )
    twins = [np.array([v, v + rng.standard_normal()]) for v in y[:40]]
    out = split(y, inputs, twins, input_label)
    tops = {t["input"]: t for t in out["top_inputs"]}
    sizes = [k for k in tops if k.endswith("installations")]
    assert sizes == ["cohorts.installations"]
    assert (
        tops["cohorts.installations"]["label"]
        == "cohort sizes (one draw for 3 cohorts)"
    )
    assert {"cohorts.a.eligible_from", "cohorts.b.eligible_from"} <= set(tops)
    groups = input_groups(inputs)
    assert groups["cohorts.installations"] == [
        f"cohorts.{c}.installations" for c in "abc"
    ]
    assert groups["meters_per_installation"] == ["meters_per_installation"]


def test_inputs_mostly_at_one_value_are_not_taken_for_one_draw():
    """`_one_draw` ranked tied values by their replication's position: two
    independent inputs at one value in nearly every replication (a date that
    mostly falls before the start, a rare event) had near-equal ranks in
    those, a rank correlation over 0.999, and were named one input. Tied
    values share one rank; inputs of one draw stay one."""
    n = 400
    rare_a, rare_b = np.zeros(n), np.zeros(n)
    rare_a[[380, 395]] = [1.0, 2.0]  # in other replications than rare_b's
    rare_b[[370, 390]] = [1.0, 3.0]
    same = np.zeros(n)
    same[[380, 395]] = [5.0, 7.0]  # set by the draw that sets rare_a
    groups = input_groups({"a": rare_a, "b": rare_b, "c": same})
    assert groups["a"] == ["a", "c"] and groups["b"] == ["b"]


def test_mean_ranks_are_scipys_rankdata():
    """`mean_ranks` stands in for ``scipy.stats.rankdata`` in `_one_draw`: the
    same float64 ranks, bit for bit, with and without ties."""
    rng = np.random.default_rng(14)
    for size in (1, 2, 7, 200, 1001):
        for values in (
            rng.normal(size=size),
            rng.integers(0, 4, size).astype(float),
            np.round(rng.normal(size=size), 1),
            np.zeros(size),
        ):
            mine, theirs = mean_ranks(values), stats.rankdata(values)
            assert mine.dtype == theirs.dtype
            assert mine.tobytes() == theirs.tobytes()
    assert mean_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_a_runs_split_groups_its_inputs_once(monkeypatch):
    """Which inputs are one draw depends on the inputs alone, yet every
    figure's split worked it out again (a dozen times a run: 0.24 s of the
    full fleet's serial end). Once now, and the same split."""
    from conftest import BASELINE

    import migsim.results.variance as variance

    results = migsim.run(BASELINE, replications=40, seed=3)
    before = variance.run_split(results)
    calls: list[int] = []
    groups = variance.input_groups

    def counted(inputs):
        calls.append(len(inputs))
        return groups(inputs)

    monkeypatch.setattr(variance, "input_groups", counted)
    after = variance.run_split(results)
    assert len(calls) == 1
    assert after == before
    named = [after["clearance_day"], *after["figures"].values()]
    assert sum(bool(s["top_inputs"]) for s in named) >= 2
