"""Calibration: the conjugate update by hand, recovery of known rates (coverage of the
95% intervals over seeded trials), narrowing with more days, uncertain rates drawn
once per replication, and scenarios with plain rates unchanged to the byte."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import (
    cohort,
    day,
    fixed,
    load,
    outcomes,
    scenario,
    simulate,
    uniform,
    write_yaml,
)
from hypothesis import given
from hypothesis import strategies as st

import migsim
from migsim.cli.main import main
from migsim.common.errors import ActualsError
from migsim.evidence.actuals import OUTCOME_COLUMNS, read_actuals
from migsim.evidence.calibrate import calibrate, posterior_check
from migsim.evidence.classes import split_posterior
from migsim.model.scenario import OUTCOMES
from migsim.sim.records import FLOWS, STATES

PRIOR_RATES = {
    "success": 0.85,
    "stall": 0.07,
    "rollback": 0.04,
    "fix_forward": 0.02,
    "dumb": 0.02,
}
PRIOR_THEN_SUCCESS = 0.7


def _cohort(rates=None, then_success=PRIOR_THEN_SUCCESS, installations=2000, **kw):
    return cohort(
        "c",
        installations,
        rates=outcomes(**(rates or PRIOR_RATES)),
        stall={"resolves_after_days": fixed(2), "then_success": then_success},
        rollback={"retry_after_days": fixed(3)},
        fix_forward={"restored_after_days": fixed(2)},
        **kw,
    )


def _actuals(tmp_path, sc, seed, name="actuals.parquet", replication=0):
    results = migsim.run(sc, replications=1, seed=seed, first_replication=replication)
    path = tmp_path / name
    results.daily.to_parquet(path, index=False)
    return read_actuals(path, sc)


# =========================================================================== by hand
def test_posterior_is_prior_strength_times_rates_plus_counts(tmp_path):
    sc = load(scenario(_cohort()))
    frame = pd.DataFrame(
        {
            "date": ["2024-01-01", "2024-01-02"],
            "cohort": ["c", "c"],
            "attempts": [100, 200],
            "successes": [90, 170],
            "stalls": [5, 20],
            "rollbacks": [3, 6],
            "fix_forwards": [1, 2],
            "dumbs": [1, 2],
            "stall_completions": [0, 4],
            "stall_failures": [0, 1],
        }
    )
    frame.to_csv(tmp_path / "a.csv", index=False)
    result = calibrate(sc, read_actuals(tmp_path / "a.csv", sc), prior_strength=50)
    alpha = result.scenario.cohort("c").outcomes.alpha
    counts = {"success": 260, "stall": 25, "rollback": 9, "fix_forward": 3, "dumb": 3}
    for name in OUTCOMES:
        assert getattr(alpha, name) == pytest.approx(
            50 * PRIOR_RATES[name] + counts[name]
        )
    then = result.scenario.cohort("c").stall.then_success
    assert (then.alpha, then.beta) == pytest.approx((35 + 4, 15 + 1))
    table = result.table().set_index("rate")
    assert table.loc["success", "n"] == 300
    total = 50 + 300
    assert table.loc["success", "posterior_mean"] == pytest.approx((42.5 + 260) / total)
    assert table.loc["then_success", "n"] == 5
    # the prior's 95% interval is Beta(50 p, 50 (1 - p))'s
    from scipy import stats

    low, high = stats.beta.ppf([0.025, 0.975], 42.5, 7.5)
    assert (table.loc["success", "prior_low"], table.loc["success", "prior_high"]) == (
        pytest.approx((low, high))
    )
    assert "calibrated" in result.scenario.sources["cohorts.c.outcomes"]


def test_missing_columns_keep_priors_and_say_so(tmp_path):
    sc = load(scenario(_cohort()))
    frame = pd.DataFrame(
        {
            "date": ["2024-01-01"],
            "cohort": ["c"],
            "attempts": [100],
            "successes": [80],
            "stalls": [10],
            "rollbacks": [10],
        }
    )
    frame.to_csv(tmp_path / "a.csv", index=False)
    result = calibrate(sc, read_actuals(tmp_path / "a.csv", sc))
    assert result.scenario.cohort("c").stall.then_success == PRIOR_THEN_SUCCESS
    assert any("then_success keeps its prior" in note for note in result.notes)
    # fix forwards and dumbs not reported: their (zero) lump is split by the prior
    alpha = result.scenario.cohort("c").outcomes.alpha
    assert alpha.fix_forward == pytest.approx(2) and alpha.dumb == pytest.approx(2)


def test_coarse_actuals_update_nothing_and_say_so(tmp_path):
    sc = load(scenario(_cohort()))
    pd.DataFrame({"date": ["2024-01-31"], "cumulative_migrated": [900]}).to_csv(
        tmp_path / "c.csv", index=False
    )
    result = calibrate(sc, read_actuals(tmp_path / "c.csv", sc))
    assert result.scenario.cohort("c").outcomes == sc.cohort("c").outcomes
    assert not result.updated and any("coarse" in note for note in result.notes)


def test_an_outcome_without_its_section_is_bad_input(tmp_path):
    sc = load(scenario(cohort("c", 100)))  # all success: no fix_forward section
    frame = pd.DataFrame(
        {
            "date": ["2024-01-01"],
            "cohort": ["c"],
            "attempts": [10],
            "successes": [9],
            "fix_forwards": [1],
        }
    )
    frame.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(ActualsError, match="no 'fix_forward' section"):
        calibrate(sc, read_actuals(tmp_path / "a.csv", sc))


# =========================================================================== recovery
@pytest.mark.slow
def test_recovery_95_percent_intervals_cover_the_true_rates(tmp_path):
    """True rates drawn from the prior, one simulated replication as actuals, then
    calibrate: the 95% posterior intervals must contain the truth ~95% of the time."""
    prior = scenario(_cohort(), cap=150, horizon_days=21)
    prior_sc = load(prior)
    hits, checks = 0, 0
    for trial in range(40):
        rng = np.random.default_rng(1000 + trial)
        rates = rng.dirichlet([100 * PRIOR_RATES[n] for n in OUTCOMES])
        then = rng.beta(100 * PRIOR_THEN_SUCCESS, 100 * (1 - PRIOR_THEN_SUCCESS))
        truth = dict(
            prior, cohorts=[_cohort(dict(zip(OUTCOMES, rates, strict=True)), then)]
        )
        truth_sc = load(truth)
        actuals = _actuals(tmp_path, truth_sc, seed=trial)
        result = calibrate(prior_sc, actuals, prior_strength=100)
        true_values = {
            **dict(zip(OUTCOMES, truth_sc.cohort("c").outcomes.mean(), strict=True)),
            "then_success": then,
        }
        for estimate in result.estimates:
            checks += 1
            hits += estimate.covers(true_values[estimate.rate])
    coverage = hits / checks
    print(f"coverage {coverage:.3f} over {checks} checks")
    assert 0.88 <= coverage <= 0.99, coverage


def test_intervals_narrow_as_more_days_are_given(tmp_path):
    sc = load(scenario(_cohort(), cap=100, horizon_days=30))
    actuals = _actuals(tmp_path, sc, seed=3)
    widths = []
    for last in (2, 6, 14):
        result = calibrate(sc, actuals, as_of=day(last))
        table = result.table().set_index("rate")
        widths.append(
            (table["posterior_high"] - table["posterior_low"])[list(OUTCOMES)]
        )
        assert result.n_attempts > 0
    assert (widths[1] < widths[0]).all() and (widths[2] < widths[1]).all()


def test_delay_scale_is_recovered_when_identified(tmp_path):
    truth = load(
        scenario(
            cohort(
                "c",
                3000,
                rates=outcomes(success=0.8, stall=0.2),
                stall={"resolves_after_days": uniform(3, 7), "then_success": 1.0},
            ),
            cap=200,
            horizon_days=30,
        )
    )
    prior = truth.with_overrides(
        {
            "cohorts.c.stall.resolves_after_days.low": 6,
            "cohorts.c.stall.resolves_after_days.high": 14,
        }
    )
    result = calibrate(prior, _actuals(tmp_path, truth, seed=8))
    (delay,) = result.delays
    assert delay.low <= 0.5 <= delay.high
    stall = result.scenario.cohort("c").stall.resolves_after_days
    assert (stall.low, stall.high) == (3, 7)


# ====================================================================== uncertain rates
def test_dirichlet_rates_are_drawn_once_per_replication():
    """Dirichlet(2, ..., 2): replications differ far more than binomial noise would."""
    alpha = {
        "success": 2.0,
        "stall": 0.0,
        "rollback": 0.0,
        "fix_forward": 0.0,
        "dumb": 2.0,
    }
    data = scenario(cohort("c", 2000), cap=2000, horizon_days=5)
    data["cohorts"][0]["outcomes"] = {"dist": "dirichlet", "alpha": alpha}
    sc = load(data)
    shares = []
    for replication in range(30):
        log = simulate(sc, seed=1, replication=replication)
        attempts = log.cohort_columns["attempts"].sum()
        shares.append(log.cohort_columns["dumbs"].sum() / attempts)
        assert log.cohort_columns["stalls"].sum() == 0  # alpha 0: never
    # Beta(2, 2) has sd 0.22; a binomial share of 2,000 attempts has sd ~0.011
    assert np.std(shares) > 0.1
    assert abs(np.mean(shares) - 0.5) < 0.12
    again = [
        simulate(sc, seed=1, replication=r).cohort_columns["dumbs"].sum()
        for r in range(3)
    ]
    assert again == [
        simulate(sc, seed=1, replication=r).cohort_columns["dumbs"].sum()
        for r in range(3)
    ]


def _stall_completion_shares(alpha: float, beta: float, n: int) -> np.ndarray:
    """The share of 2,000 stalls (all resolved on day 1) that complete, in each
    of ``n`` replications, with then_success ~ Beta(alpha, beta)."""
    data = scenario(
        cohort(
            "c",
            2000,
            rates=outcomes(stall=1.0),
            stall={
                "resolves_after_days": fixed(1),
                "then_success": {"dist": "beta", "alpha": alpha, "beta": beta},
            },
            rollback={"retry_after_days": fixed(50)},
        ),
        cap=2000,
        horizon_days=5,
    )
    sc, shares = load(data), []
    for r in range(n):
        columns = simulate(sc, 2, r).cohort_columns
        resolved = columns["stall_completions"].sum() + columns["stall_failures"].sum()
        assert resolved == 2000  # every stall completes or fails
        shares.append(columns["stall_completions"].sum() / 2000)
    return np.array(shares)


def test_beta_then_success_is_drawn_per_replication():
    """One draw of then_success per replication: the shares follow its Beta law
    (2,000 stalls add binomial noise of sd ~0.01 at most), alpha counting the
    completions. A symmetric Beta(1, 1) alone would not tell alpha from beta."""
    from scipy import stats

    shares = _stall_completion_shares(1, 1, 20)
    assert np.std(shares) > 0.15  # uniform(0, 1) has sd 0.29
    assert stats.kstest(shares, "uniform").pvalue > 0.01
    skewed = _stall_completion_shares(2, 6, 40)
    assert stats.kstest(skewed, stats.beta(2, 6).cdf).pvalue > 0.01
    assert abs(skewed.mean() - 0.25) < 4 * stats.beta(2, 6).std() / np.sqrt(40)


def test_plain_rates_give_the_same_numbers_as_before(rich_scenario):
    """Pinned from the foundation engine before uncertain rates and initial states
    (repinned with the golden files when the per-unit streams came, issue 14)."""
    data = rich_scenario
    sc = load(data)
    results = migsim.run(sc, replications=4, seed=11)
    digest = hashlib.sha256()
    for column in (*STATES, *FLOWS):
        digest.update(
            np.ascontiguousarray(results.stacked(column), dtype=np.int64).tobytes()
        )
    assert digest.hexdigest() == (
        "9a814309f5357d83a3555d34168b7b8484cb7d94f8baae1efb68da0daf6cdd30"
    )
    # and the resolved scenario (so its sha256) does not mention the new fields
    dumped = sc.to_dict()["cohorts"]
    assert all("initial_state" not in c for c in dumped)
    assert dumped[0]["outcomes"] == data["cohorts"][0]["outcomes"]


def test_dirichlet_scenario_errors_name_the_field():
    data = scenario(cohort("c", 10))
    data["cohorts"][0]["outcomes"] = {
        "dist": "dirichlet",
        "alpha": {
            "success": 1,
            "stall": 0,
            "rollback": 0,
            "fix_forward": 0,
            "dumb": -1,
        },
    }
    with pytest.raises(
        migsim.ScenarioError, match=r"cohorts\.c\.outcomes\.alpha\.dumb"
    ):
        load(data)
    data["cohorts"][0]["outcomes"]["alpha"]["dumb"] = 0
    data["cohorts"][0]["outcomes"]["alpha"]["stall"] = 1  # a stall needs its section
    with pytest.raises(migsim.ScenarioError, match="section 'stall' is required"):
        load(data)


# =========================================================================== cli
def test_cli_calibrate_writes_scenario_summary_and_check(tmp_path):
    data = scenario(_cohort(installations=800), cap=100, horizon_days=20)
    sc = load(data)
    scenario_path = write_yaml(tmp_path / "prior.yaml", data)
    results = migsim.run(sc, replications=1, seed=5)
    results.daily.to_csv(tmp_path / "actuals.csv", index=False)
    out = tmp_path / "cal" / "calibrated.yaml"
    result = CliRunner().invoke(
        main,
        [
            "calibrate",
            str(scenario_path),
            "--actuals",
            str(tmp_path / "actuals.csv"),
            "-o",
            str(out),
            "--prior-strength",
            "20",
            "-n",
            "20",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Posterior predictive check" in result.output and "attempts" in result.output
    calibrated = migsim.load_scenario(out)
    assert calibrated.cohort("c").outcomes.dist == "dirichlet"
    import json

    summary = json.loads((tmp_path / "cal" / "calibrated.calibration.json").read_text())
    assert summary["prior_strength"] == 20 and summary["n_attempts"] > 0
    assert summary["posterior_check"]["n_points"] == 20
    assert (tmp_path / "cal" / "calibrated.check.png").stat().st_size > 0
    again = CliRunner().invoke(
        main,
        [
            "calibrate",
            str(scenario_path),
            "--actuals",
            str(tmp_path / "actuals.csv"),
            "-o",
            str(out),
            "--no-check",
        ],
    )
    assert again.exit_code == 2 and "exists" in again.output
    # the calibrated scenario runs
    assert migsim.run(calibrated, replications=2, seed=1).n_replications == 2


def test_posterior_check_counts_points_inside_the_bands(tmp_path):
    sc = load(scenario(_cohort(installations=800), cap=100, horizon_days=20))
    result = calibrate(sc, _actuals(tmp_path, sc, seed=6))
    figures, check = posterior_check(result, replications=40, seed=2)
    assert figures["n_points"] == 20
    assert (
        figures["coverage_p5_p95"] >= 0.7
    )  # the actuals come from the scenario itself
    # what the check chart draws: the bands over the horizon and the 20 points
    assert len(check.points) == 20
    assert list(check.bands.columns) == ["date", "p5", "p10", "p50", "p90", "p95"]
    assert len(check.bands) == sc.horizon_days
    assert check.name == sc.name


def test_cli_calibrate_on_attempts_only_prints_its_check_without_crashing(tmp_path):
    """A valid actuals file holding only attempts gives the check no point: the
    text says so (it used to format ``None`` and exit 1 with a traceback after
    writing the calibrated scenario)."""
    data = scenario(_cohort(installations=800), cap=100, horizon_days=20)
    sc = load(data)
    scenario_path = write_yaml(tmp_path / "prior.yaml", data)
    daily = migsim.run(sc, replications=1, seed=5).daily
    daily[["date", "cohort", "attempts"]].to_csv(tmp_path / "a.csv", index=False)
    out = tmp_path / "calibrated.yaml"
    result = CliRunner().invoke(
        main,
        ["calibrate", str(scenario_path), "--actuals", str(tmp_path / "a.csv")]
        + ["-o", str(out), "-n", "4", "--seed", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "no actual point to check" in result.output
    assert "Written" in result.output and out.exists()
    summary = (tmp_path / "calibrated.calibration.json").read_text()
    assert '"n_points": 0' in summary and '"coverage_p5_p95": null' in summary


# =========================================================================== classes
OPERATIONS = "scenarios/nov2019_operations.yaml"


def _rate(result, cohort_name, rate):
    return next(
        e for e in result.estimates if e.cohort == cohort_name and e.rate == rate
    )


def _drawn(results, cohort) -> np.ndarray:
    """The normal outcome rates replication 0 ran with: its recorded input draws
    where the rates are uncertain, else the scenario's rates."""
    inputs = getattr(results, "inputs", None)
    keys = [f"cohorts.{cohort.name}.outcomes.{o}" for o in OUTCOMES]
    if inputs is not None and all(k in inputs.columns for k in keys):
        return np.array([float(inputs[k].iloc[0]) for k in keys])
    return cohort.outcomes.mean()


def test_calibrate_on_nov2019_operations_keeps_the_classes_apart(tmp_path):
    """One replication of the operations scenario's own output: the normal class's
    rates come back as those it ran with. Folding the hard (5%), excluded (1%)
    classes in gave itron_active success 0.868 against 0.93, and a rollback rate
    a hundred times the scenario's, which doubled a calibrated run's rollbacks."""
    sc = migsim.load_scenario(OPERATIONS)
    results = migsim.run(sc, replications=1, seed=1)
    results.daily.to_parquet(tmp_path / "own.parquet", index=False)
    result = calibrate(sc, read_actuals(tmp_path / "own.parquet", sc))
    for c in sc.cohorts:
        truth = _drawn(results, c)
        success = _rate(result, c.name, "success")
        assert abs(success.posterior_mean - truth[0]) < 0.01, c.name
        rollback = _rate(result, c.name, "rollback")
        assert rollback.posterior_mean < truth[2] + 0.005, c.name
        # the normal class's attempts: about its 94% share, not all of them
        assert success.n < 0.95 * result.actuals.cohort_frame(c.name)["attempts"].sum()
    assert any("set aside hard cases" in note for note in result.notes)


def _volume_scenario(**extra):
    extra.setdefault("horizon_days", 25)
    return scenario(
        cohort(
            "c",
            30_000,
            rates=outcomes(success=0.93, stall=0.06, rollback=0.01),
            stall={"resolves_after_days": fixed(2), "then_success": 0.8},
        ),
        cap=3000,
        **extra,
    )


def test_volume_stressed_days_are_set_aside(tmp_path):
    """Every day above 2,000 attempts stalls 10 points more: those days teach the
    normal rates nothing (folded in, success would come out near 0.83)."""
    data = _volume_scenario()
    data["cohorts"][0]["volume_failures"] = {
        "above_attempts": 2000,
        "increase": {"stall": 0.10},
        "until": day(10).isoformat(),
    }
    sc = load(data)
    actuals = _actuals(tmp_path, sc, seed=3)
    result = calibrate(sc, actuals)
    success = _rate(result, "c", "success")
    assert abs(success.posterior_mean - 0.93) < 0.01
    stressed = actuals.frame["stressed_attempts"].sum()
    assert stressed > 0
    assert success.n == pytest.approx(actuals.n_attempts - stressed, abs=1)
    # without the stressed_attempts column the rule tells the stressed days
    plain = actuals.frame.drop(columns="stressed_attempts")
    plain.to_csv(tmp_path / "plain.csv", index=False)
    again = calibrate(sc, read_actuals(tmp_path / "plain.csv", sc))
    assert _rate(again, "c", "success").n == success.n


@pytest.mark.parametrize("when", ["attempted", "up_front"])
def test_hard_and_excluded_classes_are_set_aside(tmp_path, when):
    data = _volume_scenario(horizon_days=40)
    data["capacity"]["daily_cap"] = 1500
    data["cohorts"][0]["hard"] = {
        "share": 0.1,
        "outcomes": outcomes(success=0.5, stall=0.2, rollback=0.3),
    }
    data["cohorts"][0]["excluded"] = {"share": 0.05, "when": when}
    sc = load(data)
    result = calibrate(sc, _actuals(tmp_path, sc, seed=4))
    for rate, value in (("success", 0.93), ("stall", 0.06), ("rollback", 0.01)):
        assert abs(_rate(result, "c", rate).posterior_mean - value) < 0.006, rate


def _split_programme(alpha=None, hard=None, hard_share=0.25, excluded=0.02):
    """Hard cases (by default a quarter, whose outcomes overlap the normal
    class's), excluded installations (by default 2%), and normal rates drawn
    per replication from the Dirichlet ``alpha`` the calibration takes as its
    prior (so its 95% intervals should cover the drawn rates 95% of the
    time)."""
    data = scenario(_cohort(installations=20_000), cap=600, horizon_days=30)
    c = data["cohorts"][0]
    alpha = alpha or {
        "success": 340,
        "stall": 20,
        "rollback": 12,
        "fix_forward": 16,
        "dumb": 12,
    }
    c["outcomes"] = {"dist": "dirichlet", "alpha": alpha}
    c["rollback"] = {"retry_after_days": uniform(2, 5)}
    hard = hard or outcomes(
        success=0.55, stall=0.15, rollback=0.1, fix_forward=0.1, dumb=0.1
    )
    c["hard"] = {"share": hard_share, "outcomes": hard}
    if excluded:
        c["excluded"] = {"share": excluded, "when": "attempted"}
    return load(data)


def _covered(sc, results, tmp_path, rates) -> np.ndarray:
    """(replication, rate): whether calibrating on each replication's own daily
    output gives a 95% interval of the normal ``rates`` that holds its drawn one."""
    n = len(results.replication_ids)
    inside = np.zeros((n, len(rates)), dtype=bool)
    for r in range(n):
        path = tmp_path / f"truth{r}.parquet"
        results.daily[results.daily.replication == r].to_parquet(path, index=False)
        result = calibrate(sc, read_actuals(path, sc))
        for j, o in enumerate(rates):
            drawn = float(results.inputs[f"cohorts.c.outcomes.{o}"].iloc[r])
            inside[r, j] = _rate(result, "c", o).covers(drawn)
    return inside


def test_the_class_split_uncertainty_keeps_the_intervals_honest(tmp_path):
    """The normal class's counts are inferred (which class a day's dumbs came
    from is not reported), not observed. Fed to the Dirichlet as exact counts,
    the 95% intervals of the five normal rates covered the drawn rates 81% of
    the time over these 60 replications (78% to 87% by rate; the rates'
    z-scores had sd 1.35 to 1.81). With the split's imputed variance carried
    by the law of total variance: 94% (88% to 98%; z sd 0.93 to 1.26), and
    94% to 96% on three other seeds. Pooled coverage must lie within three
    binomial sds of 95%, and each rate's within three of its own."""
    sc = _split_programme()
    results = migsim.run(sc, replications=60, seed=11)
    inside = _covered(sc, results, tmp_path, OUTCOMES)
    sd = np.sqrt(0.95 * 0.05 / inside.size)
    assert abs(inside.mean() - 0.95) < 3 * sd, inside.mean(axis=0)
    sd_one = np.sqrt(0.95 * 0.05 / 60)
    assert np.all(np.abs(inside.mean(axis=0) - 0.95) < 3 * sd_one), inside.mean(axis=0)


def test_the_other_classes_noise_is_the_normal_rates_too(tmp_path):
    """A rare normal outcome beside a class that has many of it: the normal
    class's rollbacks are what is left when the hard cases' expected ones are
    taken out, so the hard cases' binomial noise is theirs. Imputing the split
    at fixed rates missed it: the normal rollback rate's 95% interval held the
    drawn rate in 60-73% of 30 replications on three seeds (90-93% with it)."""
    sc = _split_programme(
        alpha={"success": 380, "stall": 20, "rollback": 1, "fix_forward": 4, "dumb": 4},
        hard=outcomes(
            success=0.6, stall=0.1, rollback=0.25, fix_forward=0.03, dumb=0.02
        ),
        hard_share=0.1,
        excluded=0,
    )
    n = 30
    results = migsim.run(sc, replications=n, seed=11, twins=False)
    inside = _covered(sc, results, tmp_path, ["rollback"])
    assert inside.mean() >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / n), inside.mean()


# =========================================================================== inputs
def _throughput_scenario():
    data = scenario(
        _cohort(installations=60_000),
        cap=1000,
        horizon_days=120,
    )
    data["capacity"]["achieved"] = {
        "dist": "ar1",
        "mean": {"dist": "beta", "alpha": 2, "beta": 2},
        "persistence": 0.5,
        "innovation_sd": 0.3,
    }
    return data


def test_calibration_learns_the_achieved_throughput(tmp_path):
    """Daily attempts against the cap update the uncertain mean share achieved
    (a Beta(2, 2) prior: 0.5, 95% 0.09-0.91): the posterior is centred near the
    share the replication drew and much narrower."""
    from scipy import stats

    sc = load(_throughput_scenario())
    for seed in (1, 2, 3):
        results = migsim.run(sc, replications=1, seed=seed)
        results.daily.to_parquet(tmp_path / "own.parquet", index=False)
        actuals = read_actuals(tmp_path / "own.parquet", sc)
        result = calibrate(sc, actuals, as_of=day(60))
        drawn = float(results.inputs["capacity.achieved.mean"].iloc[0])
        mean = result.scenario.capacity.achieved.mean
        low, high = stats.beta.ppf([0.005, 0.995], mean.alpha, mean.beta)
        assert low <= drawn <= high, (seed, drawn, mean)
        assert abs(mean.mean - drawn) < 0.05, (seed, drawn, mean)
        assert mean.alpha + mean.beta > 10 * 4  # far stronger than the prior
        assert any(u.path == "capacity.achieved.mean" for u in result.inputs)
    assert "capacity.achieved.mean" in result.summary()["inputs"][0]["path"]


def test_the_learned_achieved_share_covers_the_drawn_one_at_its_rate(tmp_path):
    """Calibration on synthetic truths: 60 replications each draw a mean share
    from Beta(8, 8) and a persistent AR(1) path around it (persistence 0.8, as in
    nov2019_epcl); from each one's first ten working days, the posterior's P10-P90
    holds the drawn mean in about 80% of them and its P5-P95 in about 90%
    (tolerance: three binomial sds, 0.15 and 0.11, below; a little above). A
    window that short shares one deviation from the mean, which its own spread
    cannot show: read as independent-ish days, the posterior was about half as
    wide as it should be and covered 55% and 77%."""
    from scipy import stats

    data = scenario(cohort("c", 40_000), cap=1000, horizon_days=20)
    data["capacity"]["achieved"] = {
        "dist": "ar1",
        "mean": {"dist": "beta", "alpha": 8, "beta": 8},
        "persistence": 0.8,
        "innovation_sd": 0.35,
    }
    sc = load(data)
    truths = migsim.run(sc, replications=60, seed=77)
    truths.daily.to_parquet(tmp_path / "truths.parquet", index=False)
    drawn = truths.inputs["capacity.achieved.mean"].to_numpy(float)
    pits = []
    for replication, share in enumerate(drawn):
        actuals = read_actuals(tmp_path / "truths.parquet", sc, replication=replication)
        mean = calibrate(sc, actuals, as_of=day(14)).scenario.capacity.achieved.mean
        pits.append(stats.beta.cdf(share, mean.alpha, mean.beta))
    pits = np.array(pits)
    inside_80 = float(np.mean((pits > 0.1) & (pits < 0.9)))
    inside_90 = float(np.mean((pits > 0.05) & (pits < 0.95)))
    assert 0.65 <= inside_80 <= 0.93, (inside_80, np.round(pits, 2))
    assert 0.79 <= inside_90 <= 0.99, (inside_90, np.round(pits, 2))


def _supplied_throughput(horizon_days: int = 30, mean=(8, 8)):
    """An active and a dormant cohort over two suppliers of 300 a day each,
    the second business ready on day 20, against a cap of 1,000 at an
    uncertain mean share: before day 20 the active cohort's half for the
    second supplier waits, and on many days the nominations, not the share,
    limit the attempts."""
    data = scenario(
        cohort("act", 20_000, mode="active"),
        cohort("dor", 40_000),
        cap=1000,
        horizon_days=horizon_days,
    )
    for entry in data["cohorts"]:
        entry["suppliers"] = {"a": 0.5, "b": 0.5}
    data["suppliers"] = [
        {"name": "a", "daily_nomination": 300},
        {"name": "b", "daily_nomination": 300, "business_ready": day(20).isoformat()},
    ]
    data["capacity"]["achieved"] = {
        "dist": "ar1",
        "mean": {"dist": "beta", "alpha": mean[0], "beta": mean[1]},
        "persistence": 0.8,
        "innovation_sd": 0.35,
    }
    return load(data)


def test_days_before_a_supplier_is_ready_measure_the_share_achieved(tmp_path):
    """Calibration on synthetic truths, as above, with suppliers: 40 truths'
    first 18 days (a supplier not yet ready, the nominations binding on many
    days, read as lower bounds) learn the drawn mean share, the posterior's
    P10-P90 holding it in about 80% of them. Before, no day before the last
    supplier's readiness counted, and the forecast kept the prior however fast
    the programme ran."""
    from scipy import stats

    sc = _supplied_throughput()
    truths = migsim.run(sc, replications=40, seed=78)
    truths.daily.to_parquet(tmp_path / "truths.parquet", index=False)
    drawn = truths.inputs["capacity.achieved.mean"].to_numpy(float)
    pits, strengths = [], []
    for replication, share in enumerate(drawn):
        actuals = read_actuals(tmp_path / "truths.parquet", sc, replication=replication)
        mean = calibrate(sc, actuals, as_of=day(18)).scenario.capacity.achieved.mean
        pits.append(stats.beta.cdf(share, mean.alpha, mean.beta))
        strengths.append(mean.alpha + mean.beta)
    pits = np.array(pits)
    inside_80 = float(np.mean((pits > 0.1) & (pits < 0.9)))
    assert 0.62 <= inside_80 <= 0.95, (inside_80, np.round(pits, 2))
    # learned where the share was seen (below the ceiling), not left at the prior
    below = drawn < 0.5
    assert np.median(np.array(strengths)[below]) > 3 * 16, strengths


def test_a_halted_cohort_and_a_waiting_supplier_leave_the_day_usable(tmp_path):
    """A day one cohort is halted (work queued, no attempts) still measures the
    share: the cap goes to the others. Its queue counts only the cohorts that
    attempted, less the active installations waiting for their supplier, and
    its ceiling only the nominations of suppliers with work to attempt."""
    from migsim.evidence.inputs import _ceiling, _observed_shares

    sc = _supplied_throughput()
    run = migsim.run(sc, replications=1, seed=5)
    daily = run.daily
    halted = (daily["cohort"] == "act") & daily["date"].isin(
        pd.to_datetime([day(3), day(4)])
    )
    daily.loc[halted, ["attempts", *OUTCOME_COLUMNS]] = 0  # as a halt shows
    daily.to_parquet(tmp_path / "own.parquet", index=False)
    actuals = read_actuals(tmp_path / "own.parquet", sc)
    shares = _observed_shares(sc, actuals, [])
    assert shares is not None
    worked = daily.groupby("date")["attempts"].sum() > 0
    assert set(shares.index) == set(worked[worked].index)  # every day counts
    frame = actuals.frame
    ceiling = _ceiling(sc, frame[frame["attempts"] > 0])
    # before day 20 the dormant cohort has work for both suppliers, so both
    # nominations bound the day; on a day the active cohort attempted alone,
    # only the ready supplier's would
    assert ceiling[pd.Timestamp(day(3))] == 600
    alone = frame[(frame["cohort"] == "act") & (frame["date"] == pd.Timestamp(day(3)))]
    assert _ceiling(sc, alone.assign(attempts=1)).iloc[0] == 300


def test_the_persistence_is_read_from_days_seen_not_from_lower_bounds(tmp_path):
    """A run of days the nominations limited shows the bound's share each day:
    read as values, it looked like a persistent share with almost no day-to-day
    innovation. The AR(1) is fitted on pairs of consecutive days both seen;
    where fewer than 30 such pairs remain, the scenario's (persistence 0.8,
    innovation sd 0.35) is kept."""
    sc = _supplied_throughput(horizon_days=90, mean=(2, 2))
    truths = migsim.run(sc, replications=16, seed=79)
    truths.daily.to_parquet(tmp_path / "truths.parquet", index=False)
    drawn = truths.inputs["capacity.achieved.mean"].to_numpy(float)
    read = []
    for replication in range(len(drawn)):
        actuals = read_actuals(tmp_path / "truths.parquet", sc, replication=replication)
        result = calibrate(sc, actuals, as_of=day(80))
        refit = [u for u in result.inputs if u.path == "capacity.achieved (AR(1))"]
        read.append((result.scenario.capacity.achieved, refit))
    high, low = drawn > 0.72, drawn < 0.4  # the nominations' 600 bind / never do
    assert high.sum() >= 3 and low.sum() >= 3, np.round(drawn, 2)
    for achieved, refit in (read[i] for i in np.flatnonzero(high)):
        assert not refit, refit
        assert (achieved.persistence, achieved.innovation_sd) == (0.8, 0.35)
    for achieved, refit in (read[i] for i in np.flatnonzero(low)):
        assert refit and "seen (not lower bounds)" in refit[0].behind
        assert 0.15 < achieved.innovation_sd < 0.7, achieved


@pytest.mark.slow
def test_lower_bounds_pin_the_mean_share_less_than_values():
    """A day the nominations limited is a lower bound: the Tobit mean's variance
    comes from the likelihood's curvature, not sd^2 / n as if every day were a
    value. On 120 sets of 12 normal days (mean 0.6, sd 0.1) censored at a
    bound, mean +- 1.28 sd of the mean holds the true mean in about 80% of them
    with half the days censored (sd / sqrt(n): 64%) and in far more than
    sd / sqrt(n)'s 31% with five in six censored (a fit of few values is
    skewed; the prior carries the rest)."""
    from migsim.evidence.inputs import _censored_normal

    values = np.array([0.5, 0.6, 0.7, 0.55])
    mean, sd, var = _censored_normal(values, np.zeros(4, bool))
    assert (mean, var) == (values.mean(), sd * sd / 4)
    assert _censored_normal(values, np.ones(4, bool))[2] == np.inf
    rng = np.random.default_rng(1)
    for bound, low, high in ((0.6, 0.72, 0.92), (0.5, 0.5, 0.85)):
        inside, naive = [], []
        while len(inside) < 120:
            days = rng.normal(0.6, 0.1, 12)
            censored = days >= bound
            if censored.all() or not censored.any():
                continue
            mean, sd, var = _censored_normal(np.minimum(days, bound), censored)
            inside.append(abs(mean - 0.6) <= 1.2816 * np.sqrt(var))
            naive.append(abs(mean - 0.6) <= 1.2816 * sd / np.sqrt(12))
        assert low <= np.mean(inside) <= high, (bound, np.mean(inside))
        assert np.mean(inside) > np.mean(naive) + 0.15, (bound, np.mean(naive))


def test_a_date_that_has_happened_becomes_fixed(tmp_path):
    """A cohort's uncertain eligibility date is fixed at its first attempt once
    it has happened; before then it is known not to have happened yet."""
    data = scenario(
        _cohort(installations=3000),
        cohort("late", 2000, rates=outcomes(success=1.0)),
        cap=200,
        horizon_days=60,
    )
    data["cohorts"][1]["eligible_from"] = {
        "dist": "slip",
        "planned": day(5).isoformat(),
        "median_days": 10,
        "sigma": 0.5,
    }
    sc = load(data)
    results = migsim.run(sc, replications=1, seed=2)
    results.daily.to_parquet(tmp_path / "own.parquet", index=False)
    actuals = read_actuals(tmp_path / "own.parquet", sc)
    rows = actuals.cohort_frame("late")
    first = rows[rows["attempts"] > 0]["date"].min().date()
    after = calibrate(sc, actuals, as_of=first + pd.Timedelta(days=3))
    assert after.scenario.cohort("late").eligible_from == first
    before = calibrate(sc, actuals, as_of=first - pd.Timedelta(days=2))
    spec = before.scenario.cohort("late").eligible_from
    assert spec.not_before == first - pd.Timedelta(days=1)
    # the calibrated scenarios run, and the fixed date holds in every replication
    log = migsim.run(after.scenario, replications=3, seed=1).daily
    late = log[(log["cohort"] == "late") & (log["attempts"] > 0)]
    assert late.groupby("replication")["date"].min().dt.date.eq(first).all()


def test_days_the_nominations_limited_count_as_lower_bounds():
    """Shares above the suppliers' nominations are seen only as the nominations'
    share: a censored (Tobit) fit recovers the mean that plain averaging
    understates."""
    from migsim.evidence.inputs import _censored_normal

    rng = np.random.default_rng(3)
    shares = rng.normal(0.6, 0.1, size=400)
    bound = 0.6  # half the days above it
    seen = np.minimum(shares, bound)
    mean, sd, _ = _censored_normal(seen, seen >= bound)
    assert seen.mean() < 0.57 < 0.59 < shares.mean()
    assert mean == pytest.approx(0.6, abs=0.015)
    assert sd == pytest.approx(0.1, abs=0.015)


def test_stated_evidence_is_its_own_prior(tmp_path):
    """Rates stated with evidence (a prior and the attempts seen) are the prior
    as stated: the posterior adds the actuals' counts to those alphas, instead of
    re-centring on the mean with --prior-strength pseudo-attempts."""
    data = scenario(_cohort(installations=800), cap=100, horizon_days=10)
    evidence = {"attempts": 1000, "success": 900, "stall": 60, "rollback": 40}
    prior = {"success": 1, "stall": 1, "rollback": 1, "fix_forward": 1, "dumb": 1}
    data["cohorts"][0]["outcomes"] = {
        "dist": "dirichlet",
        "prior": prior,
        "evidence": evidence,
    }
    data["cohorts"][0]["stall"]["then_success"] = {
        "dist": "beta",
        "alpha": 7,
        "beta": 3,
    }
    sc = load(data)
    actuals = _actuals(tmp_path, sc, seed=2)
    result = calibrate(sc, actuals, prior_strength=100)
    frame = actuals.cohort_frame("c")
    alpha = result.scenario.cohort("c").outcomes.alpha
    for outcome, column in zip(OUTCOMES, OUTCOME_COLUMNS, strict=True):
        stated = prior[outcome] + evidence.get(outcome, 0)
        assert getattr(alpha, outcome) == pytest.approx(stated + frame[column].sum())
    then = result.scenario.cohort("c").stall.then_success
    assert then.alpha == pytest.approx(7 + frame["stall_completions"].sum())
    assert then.beta == pytest.approx(3 + frame["stall_failures"].sum())


def test_the_split_posterior_keeps_the_means_and_carries_the_split_variance():
    """`split_posterior`: no split variance leaves the Dirichlet as it is; with
    one, the means stay and every rate's variance is at least the Dirichlet's
    given the counts plus the spread of its mean over the split (law of total
    variance, delta method), equal for the rate that asks most."""
    prior = np.array([93.0, 3.0, 2.0, 1.0, 1.0])
    counts = np.array([9_300.0, 310.0, 190.0, 110.0, 90.0])
    alpha, lowered = split_posterior(prior, counts, np.zeros(5))
    assert lowered == 1.0
    np.testing.assert_array_equal(alpha, prior + counts)
    variance = np.array([0.0, 0.0, 400.0, 0.0, 900.0])  # rollbacks, dumbs inferred
    alpha, lowered = split_posterior(prior, counts, variance)
    total = (prior + counts).sum()
    mean = (prior + counts) / total
    np.testing.assert_allclose(alpha / alpha.sum(), mean)
    assert lowered == pytest.approx(total / alpha.sum()) and lowered > 1.5
    given = mean * (1 - mean) / (total + 1)
    spread = (1 - mean) ** 2 * variance + mean**2 * (variance.sum() - variance)
    wanted = given + spread / total**2
    have = mean * (1 - mean) / (alpha.sum() + 1)
    assert np.all(have >= wanted * (1 - 1e-9))
    assert np.isclose(have / wanted, 1.0).any()


@given(
    st.lists(st.integers(0, 3000), min_size=1, max_size=60),
    st.sampled_from([0.0, 0.3, 0.8, 0.999, 1.0]),
)
def test_the_mean_of_a_persistence_over_lags_is_the_pairwise_one(times, r):
    """`inputs._mean_power_of_lags` (one pass) is the mean of r^|t_i - t_j|
    over every pair, gaps, repeats and unsorted times included; and it takes
    20 years of daily times without the n x n table."""
    from migsim.evidence.inputs import _mean_power_of_lags

    t = np.array(times, dtype=float)
    pairwise = float((r ** np.abs(t[:, None] - t[None, :])).mean())
    assert _mean_power_of_lags(t, r) == pytest.approx(pairwise, rel=1e-12, abs=1e-15)


def test_twenty_years_of_daily_shares_need_no_table_of_pairs():
    import tracemalloc

    from migsim.evidence.inputs import _mean_power_of_lags

    t = np.arange(7305, dtype=float)
    tracemalloc.start()
    value = _mean_power_of_lags(t, 0.8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5e6
    # n + 2 sum over lags k of (n - k) r^k: about n (1 + r) / (1 - r) pairs' worth
    assert value * 7305 == pytest.approx((1 + 0.8) / (1 - 0.8), rel=1e-3)
