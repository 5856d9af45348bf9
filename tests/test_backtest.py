"""Forecasts from actuals and backtests: a scenario's own paths are covered at about
the nominal rate, a much faster programme is flagged, outputs and keys are as
documented, and the forecast starts from the actuals' state."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import cohort, day, load, outcomes, scenario, uniform, write_yaml

import migsim
from migsim.cli.main import main
from migsim.common.errors import ScenarioError
from migsim.evidence.actuals import ActualsError, read_actuals
from migsim.evidence.backtest import backtest, score, score_points
from migsim.evidence.forecast import forecast_as_of


def _programme(cap: int = 120):
    return scenario(
        cohort(
            "a",
            1500,
            rates=outcomes(success=0.85, stall=0.08, rollback=0.05, dumb=0.02),
            stall={"resolves_after_days": uniform(1, 5), "then_success": 0.7},
            rollback={"retry_after_days": uniform(1, 4)},
        ),
        cap=cap,
        horizon_days=25,
        meters_per_installation=2.0,
    )


@pytest.fixture(scope="module")
def programme():
    return load(_programme())


@pytest.fixture(scope="module")
def own_paths(programme):
    """Thirty paths of the programme itself (seeds unrelated to the forecast's)."""
    return migsim.run(programme, replications=30, seed=500)


def _observed(results, replication):
    series = results.series("cumulative_migrated").sum(axis=2)[replication]
    return pd.DataFrame({"date": results.dates, "cumulative_migrated": series})


def _write_daily(results, replication, path):
    daily = results.daily
    daily[daily["replication"] == replication].to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_own_paths_are_covered_at_about_the_nominal_rate(
    tmp_path, programme, own_paths
):
    actuals = read_actuals(_write_daily(own_paths, 0, tmp_path / "a.csv"), programme)
    forecast = forecast_as_of(programme, actuals, None, replications=100, seed=1)
    # every path's points scored in one call (each point is scored alone)
    observed = pd.concat(
        [_observed(own_paths, r) for r in range(own_paths.n_replications)],
        ignore_index=True,
    )
    points = score_points(forecast, observed)
    figures = score(points)
    assert figures["n_points"] == 30 * 24  # every date after the start, each path
    assert 0.70 <= figures["coverage_p10_p90"] <= 0.95, figures["coverage_p10_p90"]
    assert 0.80 <= figures["coverage_p5_p95"] <= 0.99, figures["coverage_p5_p95"]
    assert figures["coverage_p5_p95"] >= figures["coverage_p10_p90"]
    assert figures["overconfident"] is False
    # a flat PIT: no tenth of the range holds more than twice its share
    counts = np.array(figures["pit_histogram"]["counts"])
    assert counts.sum() == 30 * 24 and counts.max() < 2 * counts.mean()


def test_a_point_level_with_the_ones_before_it_is_timed_from_the_first(
    tmp_path, programme, own_paths
):
    """A finished programme's total, reported again and again, was timed from
    each report's own date: a forecast that finished on time read as weeks or
    months early (the baseline against one of its own paths: a median timing
    error of 196 days where its P50 was 14 installations off; 7 days now).
    Against its own P50 curve every point is 0 days off, the level tail too,
    and so are two such paths laid end to end."""
    from migsim.common.stats import quantile

    actuals = read_actuals(_write_daily(own_paths, 0, tmp_path / "a.csv"), programme)
    forecast = forecast_as_of(programme, actuals, None, replications=40, seed=1)
    paths = forecast.cumulative_migrated()
    p50 = [quantile(paths[:, d], 0.5) for d in range(paths.shape[1])]
    observed = pd.DataFrame(
        {
            "date": pd.date_range(pd.Timestamp(forecast.start_date), periods=len(p50)),
            "cumulative_migrated": p50,
        }
    )
    level = np.flatnonzero(np.diff(p50) == 0) + 1
    assert len(level) and p50[level[-1]] > 0  # a level tail after the rise
    points = score_points(forecast, observed)
    assert (points["error_days"] == 0).all()
    twice = pd.concat([observed, observed], ignore_index=True)
    assert (score_points(forecast, twice)["error_days"] == 0).all()


def test_a_much_faster_programme_is_flagged(tmp_path, programme):
    fast = migsim.run(load(_programme(cap=300)), replications=1, seed=9)
    actuals = read_actuals(_write_daily(fast, 0, tmp_path / "fast.csv"), programme)
    result = backtest(programme, actuals, replications=60, seed=1)
    figures = result.figures
    assert figures["coverage_p10_p90"] < 0.5
    assert figures["overconfident"] is True
    assert figures["points_above_p90"] > 10 * max(1, figures["points_below_p10"])
    assert (
        "Overconfident" in figures["verdict"]
        and "ahead of the forecast" in (figures["verdict"])
    )
    # the chart's panel titles say what backtest.json says
    (panel,) = result.panels()
    (scored,) = result.per_as_of()
    assert panel["n_points"] == scored["n_points"] == figures["n_points"] > 0
    assert panel["coverage_p10_p90"] == scored["coverage_p10_p90"] < 0.5


@pytest.mark.slow
def test_cli_backtest_writes_json_with_the_documented_keys(
    tmp_path, programme, own_paths
):
    scenario_path = write_yaml(tmp_path / "sc.yaml", _programme())
    # coarse monthly-ish programme totals in meters, one point beyond the horizon
    observed = _observed(own_paths, 3).iloc[[6, 13, 20]]
    coarse = pd.DataFrame(
        {
            "date": list(observed["date"].dt.date) + [day(40)],
            "cumulative_migrated": list(observed["cumulative_migrated"] * 2) + [3000],
        }
    )
    coarse.to_csv(tmp_path / "monthly.csv", index=False)
    out = tmp_path / "bt"
    result = CliRunner().invoke(
        main,
        [
            "backtest",
            str(scenario_path),
            "--actuals",
            str(tmp_path / "monthly.csv"),
            "--actuals-unit",
            "meters",
            "--as-of",
            "2024-01-01",
            "--as-of",
            "2024-01-10",
            "-n",
            "30",
            "--seed",
            "2",
            "-o",
            str(out),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "backtest.json").read_text())
    assert summary["as_of"] == ["2024-01-01", "2024-01-10"]
    for key in (
        "n_points",
        "coverage_p10_p90",
        "coverage_p5_p95",
        "crps_mean",
        "mae_installations",
        "mae_days",
        "pit_histogram",
        "verdict",
    ):
        assert key in summary, key
    # points on 7, 14, 21 Jan and 10 Feb (after the horizon end, 25 Jan): as of the
    # start all 4 count, as of 10 Jan the last 3
    assert summary["n_points"] == 7 and summary["n_beyond_horizon"] == 2
    assert 0 <= summary["coverage_p10_p90"] <= summary["coverage_p5_p95"] <= 5 / 7
    assert [f["n_points"] for f in summary["forecasts"]] == [4, 3]
    assert summary["crps_mean"] >= 0
    # two forecasts and the PIT: one row of three panels, not a strip
    from PIL import Image

    assert Image.open(out / "backtest.png").size == (1221, 451)
    points = pd.read_csv(out / "backtest_points.csv")
    assert len(points) == 7 and points["beyond_horizon"].sum() == 2
    assert "coarse" in " ".join(summary["forecasts"][1]["notes"])


def test_cli_backtest_writes_the_resolved_scenario_its_json_names(tmp_path):
    """backtest -o keeps what was scored: scenario.yaml, the scenario as resolved
    (--set applied), whose sha256 is the one backtest.json records."""
    scenario_path = write_yaml(tmp_path / "sc.yaml", _programme())
    truth = migsim.run(load(_programme()), replications=1, seed=500)
    _write_daily(truth, 0, tmp_path / "a.csv")
    out = tmp_path / "bt"
    result = CliRunner().invoke(
        main,
        ["backtest", str(scenario_path), "--actuals", str(tmp_path / "a.csv")]
        + ["-n", "2", "--seed", "3", "--set", "capacity.daily_cap=110"]
        + ["-o", str(out), "-q"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "backtest.json").read_text())
    resolved = migsim.load_scenario(out / "scenario.yaml")
    assert resolved.capacity.daily_cap == 110
    assert resolved.sha256 == summary["scenario_sha256"]
    assert (summary["seed"], summary["replications"]) == (3, 2)


def test_forecast_starts_from_the_actuals_state(tmp_path, programme, own_paths):
    path = _write_daily(own_paths, 5, tmp_path / "actuals.csv")
    actuals = read_actuals(path, programme)
    forecast = forecast_as_of(programme, actuals, day(9), replications=20, seed=3)
    assert forecast.scenario.start_date == day(10)
    state = forecast.scenario.cohort("a").initial_state
    row = own_paths.daily[(own_paths.daily["replication"] == 5)].iloc[9]
    assert state.migrated == row["migrated"]
    assert state.count("stalled") == row["stalled"] and isinstance(state.stalled, list)
    assert (
        forecast.calibration.n_attempts == own_paths.stacked("attempts")[5, :10].sum()
    )
    assert forecast.scenario.cohort("a").outcomes.dist == "dirichlet"
    # the first forecast day starts where the actuals ended
    first = forecast.results.series("cumulative_migrated").sum(axis=2)[:, 0]
    assert (first >= row["migrated"] + row["impaired"]).all()


@pytest.mark.slow
def test_cli_forecast_writes_the_usual_outputs_and_what_was_learned(
    tmp_path, own_paths
):
    scenario_path = write_yaml(tmp_path / "sc.yaml", _programme())
    actuals = _write_daily(own_paths, 1, tmp_path / "actuals.csv")
    out = tmp_path / "fc"
    result = CliRunner().invoke(
        main,
        [
            "forecast",
            str(scenario_path),
            "--actuals",
            str(actuals),
            "--as-of",
            "2024-01-08",
            "-n",
            "10",
            "--seed",
            "4",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Learned from" in result.output and "attempts" in result.output
    for name in (
        "daily.parquet",
        "replications.csv",
        "summary.json",
        "scenario.yaml",
        "backlog.png",
        "calibration.json",
        "calibrated.yaml",
    ):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["forecast"]["as_of"] == "2024-01-08"
    assert summary["forecast"]["n_attempts_learned_from"] > 0
    assert summary["start_date"] == "2024-01-09"
    # the report takes the forecast directory and says what was learned
    from migsim.output.report import render_report
    from migsim.results.rundir import load_run

    html = render_report([load_run(out)], charts=False)
    assert "Forecast from actuals" in html and "Learned from" in html
    # scenario.yaml reproduces the forecast run
    rerun = migsim.run(
        migsim.load_scenario(out / "scenario.yaml"), replications=10, seed=4
    )
    assert rerun.replications["migrated"].tolist() == (
        pd.read_csv(out / "replications.csv")["migrated"].tolist()
    )


@pytest.mark.slow
def test_forecasts_from_each_path_continue_the_programme(tmp_path):
    """Forecast each of 40 paths from its actuals of day 12, one replication each:
    the forecast clearance dates have the distribution of the paths' own."""
    from scipy import stats
    from test_state import _stochastic

    sc = load(_stochastic())
    results = migsim.run(sc, replications=40, seed=1)
    path = tmp_path / "daily.parquet"
    results.daily.to_parquet(path, index=False)
    k = 12
    forecast = []
    for replication in range(40):
        actuals = read_actuals(path, sc, replication=replication)
        one = forecast_as_of(sc, actuals, day(k), replications=1, seed=50 + replication)
        forecast.append(one.results.clearance_days()[0] + k + 1)
    original = results.clearance_days()
    assert np.isfinite(forecast).all()
    assert stats.mannwhitneyu(original, forecast).pvalue > 0.01
    assert stats.ks_2samp(original, forecast).pvalue > 0.01


def test_the_policy_state_is_read_from_a_runs_daily(tmp_path):
    """From a run's .daily (daily_cap, cap_rule, rule_fired, no_go and the flows),
    the forecast's operations_state is the run's own, gates and dates aside."""
    from test_state import _policy_scenario

    from migsim.evidence.state import state_from_actuals

    sc = load(_policy_scenario())
    results = migsim.run(sc, replications=3, seed=1)
    path = tmp_path / "daily.parquet"
    results.daily.to_parquet(path, index=False)
    fields = (
        "cap",
        "cap_rule",
        "days_at_cap",
        "ceiling",
        "halt_until",
        "halt_rule",
        "hold_until",
        "rules",
        "history",
        "before_history",
    )
    fired: set[int] = set()
    for replication in range(3):
        actuals = read_actuals(path, sc, replication=replication)
        for k in (10, 22, 41):
            exact = results.state_on(day(k), replication)["operations_state"]
            state, notes = state_from_actuals(sc, actuals, day(k))
            read = state["operations_state"]
            assert {f: read[f] for f in fields} == {f: exact[f] for f in fields}, (
                replication,
                k,
            )
            assert read["condition_dates"] is False
            # the eligibility gates, read from the pending counts
            for gate in ("entry", "late"):
                opened = exact["gates_open"].get(gate)
                if opened is None:
                    assert gate in read["gates_closed"], (replication, k, gate)
                else:
                    assert read["gates_open"][gate] == opened, (replication, k, gate)
            # the ramp rule requires the automation gate: once it fired, the
            # gate is known open, on its first firing day at the latest
            rows = results.daily[
                (results.daily["replication"] == replication)
                & (results.daily["date"] <= pd.Timestamp(day(k)))
                & (results.daily["rule_fired"] == "ramp")
            ]
            if len(rows):
                first = rows["date"].min().date()
                assert read["gates_open"]["automation"] == first, (replication, k)
                assert exact["gates_open"]["automation"] <= first
                fired.add(k)
            else:
                assert "automation" not in read["gates_open"]
    assert fired, "the ramp rule fired in some replication by some day"
    assert any("daily_cap, cap_rule and rule_fired" in note for note in notes)


def test_a_segmented_programme_forecasts_from_its_actuals(tmp_path):
    """Suppliers, hard cases, exclusions and ELS: bare counts from the actuals are
    shared between a cohort's parts and the forecast conserves installations."""
    from test_state import _segmented

    from migsim.sim.records import STATES

    data = _segmented()
    data["els"] = {"daily_capacity": 30, "cases_from": ["stall", "rollback"]}
    sc = load(data)
    results = migsim.run(sc, replications=1, seed=4)
    path = tmp_path / "daily.parquet"
    results.daily.to_parquet(path, index=False)
    forecast = forecast_as_of(
        sc, read_actuals(path, sc), day(10), replications=2, seed=1
    )
    for log in forecast.results.logs:
        assert (sum(log.cohort_columns[n] for n in STATES) == 2000).all()
    assert np.isfinite(forecast.results.clearance_days()).all()


def _stepped_programme():
    """A cohort of estimated size, eligible at a gate with an uncertain date, and
    a cap step at another gate, also uncertain."""
    data = scenario(
        cohort(
            "a",
            3000,
            rates=outcomes(success=0.9, rollback=0.1),
            rollback={"retry_after_days": uniform(1, 4)},
        ),
        cohort(
            "b",
            2000,
            rates=outcomes(success=0.95, rollback=0.05),
            rollback={"retry_after_days": uniform(1, 4)},
        ),
        cap=100,
        horizon_days=60,
    )
    data["cohorts"][1]["eligible_from"] = "entry"
    data["cohorts"][1]["installations_range"] = {
        "dist": "uniform",
        "low": 1500,
        "high": 2500,
    }
    data["gates"] = [
        {
            "name": "entry",
            "opens_on": {
                "dist": "uniform",
                "low": day(3).isoformat(),
                "high": day(12).isoformat(),
            },
        },
        {
            "name": "automation",
            "opens_on": {
                "dist": "uniform",
                "low": day(8).isoformat(),
                "high": day(30).isoformat(),
            },
        },
    ]
    data["capacity"]["schedule"] = [
        {"name": "automated", "from": "automation", "daily_cap": 250}
    ]
    data["sources"] = {"cohorts.b.installations_range": "assumption: a test's"}
    return load(data)


def test_steps_at_gates_and_estimated_sizes_are_read_from_the_actuals(tmp_path):
    """A cap step at a gate that the actuals label has happened: the forecast
    continues at its cap with the gate open on that day (before, it went back
    to the cap before the step); one not labelled yet is known not to have
    happened. A cohort of estimated size takes the size its states report, and
    its eligibility is read against that size (before, every cohort smaller
    than the point size looked eligible from the first day)."""
    from migsim.evidence.state import state_from_actuals
    from migsim.model.state import InitialState

    sc = _stepped_programme()
    results = migsim.run(sc, replications=4, seed=3)
    path = tmp_path / "daily.parquet"
    results.daily.to_parquet(path, index=False)
    fields = ("cap", "cap_rule", "ceiling")  # days at cap: only rules read it
    seen = set()
    for replication in range(4):
        actuals = read_actuals(path, sc, replication=replication)
        for k in (6, 20, 35):
            exact = results.state_on(day(k), replication)
            state, notes = state_from_actuals(sc, actuals, day(k))
            read = state["operations_state"]
            assert {f: read[f] for f in fields} == {
                f: exact["operations_state"][f] for f in fields
            }, (replication, k)
            for gate in ("entry", "automation"):
                opened = exact["operations_state"]["gates_open"].get(gate)
                if opened is None:
                    assert gate in read["gates_closed"], (replication, k, gate)
                elif gate == "entry":  # pending falls on its day
                    assert read["gates_open"][gate] == opened, (replication, k)
                else:  # the step shows on the first day open for migrations
                    late = (read["gates_open"][gate] - opened).days
                    assert 0 <= late <= 2, (replication, k, late)
                seen.add((gate, opened is None))
            size = InitialState.model_validate(exact["cohorts"]["b"]).total
            assert (
                sum(
                    v if isinstance(v, int) else sum(g["count"] for g in v)
                    for n, v in state["cohorts"]["b"].items()
                    if n != "recovering"
                )
                == size
            )
            assert any("its size is taken from the reported states" in n for n in notes)
            continued = sc.starting_from(state)
            assert continued.cohorts[1].installations == size
            assert (
                "assumption: a test's" in continued.sources["cohorts.b.installations"]
            )
    assert seen == {
        (g, closed) for g in ("entry", "automation") for closed in (True, False)
    }


def test_flows_alone_do_not_say_an_estimated_size_and_the_notes_say_so(tmp_path):
    """Without end-of-day states the size of a cohort of estimated size is not
    reported: the rebuilt state holds the scenario's point size, the forecast
    keeps the range, and each replication's draw moves the first attempts
    still queued (before, the range was dropped: every replication had the
    point size). The installations are conserved to each drawn size."""
    from migsim.evidence.state import state_from_actuals
    from migsim.model.state import InitialState
    from migsim.sim.records import STATES

    sc = _stepped_programme()
    results = migsim.run(sc, replications=1, seed=3)
    path = tmp_path / "flows.csv"
    results.daily.drop(columns=list(STATES)).to_csv(path, index=False)
    state, notes = state_from_actuals(sc, read_actuals(path, sc), day(20))
    held = InitialState.model_validate(state["cohorts"]["b"])
    assert held.total == 2000
    assert any(
        "the size of b is not reported, so each replication draws it" in note
        for note in notes
    )
    continued = sc.starting_from(state)
    assert continued.cohorts[1].installations_range is not None
    forward = migsim.run(continued, replications=6, seed=1)
    sizes = forward.inputs["cohorts.b.installations"].to_numpy()
    assert len(set(sizes)) > 1 and sizes.min() >= 1500 and sizes.max() <= 2500
    last = forward.daily[forward.daily["date"] == forward.daily["date"].max()]
    b = last[last["cohort"] == "b"].sort_values("replication")
    assert (b[list(STATES)].sum(axis=1).to_numpy() == sizes).all()
    assert (b["migrated"].to_numpy() >= held.migrated).all()


def test_a_size_drawn_below_what_a_state_holds_is_that_state(tmp_path):
    """`InitialState.with_size` moves only the installations not yet seen, never
    below none; a state with no first attempt left to take the difference has
    a known size."""
    from migsim.model.state import InitialState

    state = InitialState(
        migrated=50, queued=[{"count": 30}, {"count": 5, "attempts_made": 1}]
    )
    assert state.size_holder == "queued"
    assert state.with_size(100).queued[0].count == 45
    assert state.with_size(100).total == 100
    assert state.with_size(10).total == 55  # the migrated and the retries stay
    assert InitialState(migrated=5, pending=3).with_size(2).pending == 0
    retries = [{"count": 2, "attempts_made": 1}]
    assert InitialState(migrated=5, queued=retries).size_holder is None
    sc = _stepped_programme().to_dict()
    sc["cohorts"][1]["initial_state"] = {
        "migrated": 1500,
        "queued": [{"count": 500, "attempts_made": 1}],
    }
    with pytest.raises(ScenarioError, match="installations_range: .* has a known size"):
        migsim.load_scenario(sc)


def test_states_that_the_flows_contradict_are_refused(tmp_path):
    """A cohort of estimated size takes its size from the reported states, but
    not a size smaller than the successes reported (each is an installation):
    states zeroed on the forecast date give one line naming the file, the
    cohort and both counts (before, the size was taken as 0 with a note)."""
    from migsim.evidence.state import state_from_actuals
    from migsim.sim.records import STATES

    sc = _stepped_programme()
    results = migsim.run(sc, replications=1, seed=3)
    frame = results.daily.copy()
    frame = frame[frame["date"] <= pd.Timestamp(day(20))]
    b = (frame["cohort"] == "b") & (frame["date"] == pd.Timestamp(day(20)))
    successes = int(frame.loc[frame["cohort"] == "b", "successes"].sum())
    assert successes > 0
    frame.loc[b, list(STATES)] = 0
    path = tmp_path / "zeroed.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ActualsError) as caught:  # migrated falls: refused on reading
        state_from_actuals(sc, read_actuals(path, sc), day(20))
    message = str(caught.value)
    assert str(path) in message and "cohort b" in message
    assert "column migrated: migrated + impaired is 0, below the" in message
    # migrated never reported for b (it never falls): the states still sum to 0
    frame.loc[frame["cohort"] == "b", ["migrated", "impaired"]] = 0
    frame.to_csv(path, index=False)
    with pytest.raises(ActualsError) as caught:
        state_from_actuals(sc, read_actuals(path, sc), day(20))
    message = str(caught.value)
    assert str(path) in message and "cohort b" in message
    assert f"sum to 0 installations, fewer than the {successes:,} successes" in message


# =========================================================================== sharpness
def _uncertain(point: bool = False):
    """A small programme with input uncertainty: Dirichlet outcome rates, an
    uncertain eligibility date and the share of the cap achieved each day.
    ``point``: the same at point values (the means, the mode date)."""
    alpha = {"success": 30, "stall": 3, "rollback": 4, "fix_forward": 1, "dumb": 2}
    rates = {k: v / sum(alpha.values()) for k, v in alpha.items()}
    first = cohort(
        "a",
        3000,
        rates=outcomes(**rates),
        stall={"resolves_after_days": uniform(1, 5), "then_success": 0.7},
        rollback={"retry_after_days": uniform(1, 4)},
        fix_forward={"restored_after_days": uniform(1, 3)},
    )
    if not point:
        first["outcomes"] = {"dist": "dirichlet", "alpha": alpha}
    second = cohort("b", 2000, rates=outcomes(success=0.95, rollback=0.05))
    second["eligible_from"] = (
        day(15).isoformat()
        if point
        else {
            "dist": "triangular",
            "low": day(5).isoformat(),
            "mode": day(15).isoformat(),
            "high": day(40).isoformat(),
        }
    )
    data = scenario(first, second, cap=150, horizon_days=60)
    data["capacity"]["achieved_share"] = (
        {"dist": "fixed", "value": 0.7}
        if point
        else {"dist": "uniform", "low": 0.4, "high": 1.0}
    )
    return load(data)


def _pits(forecast, truths, rng):
    """One mid-PIT per synthetic truth, each on a day drawn at random (so the
    PITs are not those of one day only), through the backtest's own scoring:
    one point per truth, all scored in one call (each point is scored alone)."""
    paths = truths.series("cumulative_migrated").sum(axis=2)
    dates = truths.dates
    days = rng.integers(5, paths.shape[1], size=len(paths))
    observed = pd.DataFrame(
        {
            "date": [dates[d] for d in days],
            "cumulative_migrated": paths[np.arange(len(paths)), days].astype(float),
        }
    )
    points = score_points(forecast, observed)
    assert len(points) == len(paths)  # every point scored, in the truths' order
    return points["pit"].to_numpy(float)


@pytest.mark.slow
def test_forecasts_from_the_start_are_calibrated_on_synthetic_truths(tmp_path):
    """200 synthetic truths, each one replication's path of the scenario's own
    input distributions (its own streams), scored against one shared forecast
    ensemble made from the start (valid: truths and ensemble come from the
    same distribution): their PITs are uniform (KS and chi-square tests, level
    1%). The same truths against the scenario at its point values are not: a
    forecast without the inputs' uncertainty is overconfident."""
    from scipy import stats

    sc = _uncertain()
    truths = migsim.run(sc, replications=200, seed=4242)
    _write_daily(truths, 0, tmp_path / "a.csv")
    actuals = read_actuals(tmp_path / "a.csv", sc)
    forecast = forecast_as_of(sc, actuals, None, replications=300, seed=7)
    pits = _pits(forecast, truths, np.random.default_rng(1))
    ks = stats.kstest(pits, "uniform")
    counts = np.histogram(pits, bins=10, range=(0, 1))[0]
    chi2 = stats.chisquare(counts)
    assert ks.pvalue > 0.01, (ks, counts)
    assert chi2.pvalue > 0.01, (chi2, counts)
    point = forecast_as_of(_uncertain(point=True), actuals, None, 300, seed=7)
    narrow = _pits(point, truths, np.random.default_rng(1))
    assert stats.kstest(narrow, "uniform").pvalue < 1e-4
    # the point forecast's band is much narrower: what the uncertainty adds
    width = score(score_points(forecast, _observed(truths, 0)))
    thin = score(score_points(point, _observed(truths, 0)))
    assert thin["band_width_p5_p95"] < 0.5 * width["band_width_p5_p95"]


def test_the_naive_forecast_persists_the_recent_daily_rate():
    from migsim.evidence.backtest import naive_forecast

    dates = [pd.Timestamp(day(d)) for d in range(41)]
    steady = pd.DataFrame(
        {"date": dates, "cumulative_migrated": [10.0 * d for d in range(41)]}
    )
    assert naive_forecast(steady, day(35)) == (350.0, 10.0)
    # the rate of the last 28 days only: a faster start does not count
    faster = steady.assign(
        cumulative_migrated=[50.0 * d if d < 5 else 200 + 10.0 * d for d in range(41)]
    )
    assert naive_forecast(faster, day(40))[1] == pytest.approx(10.0)
    # monthly points: the rate between the last two; one point: no forecast
    monthly = steady.iloc[[0, 30]]
    assert naive_forecast(monthly, day(34)) == (340.0, 10.0)
    assert naive_forecast(steady.iloc[[0]], day(3)) is None


def test_sharpness_and_skill_are_scored_beside_coverage():
    points = pd.DataFrame(
        {
            "as_of": ["2024-01-10"] * 2,
            "date": ["2024-01-11", "2024-01-12"],
            "actual": [100.0, 200.0],
            "p5": [90.0, 150.0],
            "p10": [95.0, 160.0],
            "p50": [100.0, 190.0],
            "p90": [105.0, 210.0],
            "p95": [110.0, 250.0],
            "beyond_horizon": [False, False],
            "error_installations": [0.0, -10.0],
            "error_days": [0.0, 1.0],
            "crps": [2.0, 6.0],
            "pit": [0.5, 0.6],
            "naive": [120.0, 160.0],
            "crps_naive": [20.0, 40.0],
        }
    )
    figures = score(points)
    assert figures["band_width_p5_p95"] == pytest.approx(60.0)  # (20 + 100) / 2
    assert figures["band_width_p5_p95_relative"] == pytest.approx(0.35)  # .2, .5
    assert figures["crps_naive_mean"] == pytest.approx(30.0)
    assert figures["crps_skill"] == pytest.approx(1 - 4.0 / 30.0, abs=1e-4)
    assert figures["n_naive_points"] == 2
    # from the start there is no naive forecast: no skill, and the text says why
    start = score(points.assign(naive=np.nan, crps_naive=np.nan))
    assert start["crps_skill"] is None and start["n_naive_points"] == 0


def test_cli_rolling_backtest_shows_the_forecast_narrowing(tmp_path):
    # at 36 a day the programme clears between days 63 and 77 whatever the luck,
    # so the last forecast (29 Feb, day 59) still has something to forecast
    data = _programme(cap=36)
    data["horizon_days"] = 80
    sc = load(data)
    path = write_yaml(tmp_path / "sc.yaml", data)
    own = migsim.run(sc, replications=1, seed=31)
    _write_daily(own, 0, tmp_path / "a.csv")
    out = tmp_path / "bt"
    result = CliRunner().invoke(
        main,
        ["backtest", str(path), "--actuals", str(tmp_path / "a.csv")]
        + ["--every", "month", "-n", "40", "--seed", "3", "-o", str(out), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    # as of the start (1 Jan 2024) and the ends of January and February
    summary = json.loads((out / "backtest.json").read_text())
    assert summary["as_of"] == ["2024-01-01", "2024-01-31", "2024-02-29"]
    assert "How the forecast narrows as actuals arrive" in result.output
    assert "mean P5-P95 width" in result.output and "CRPS skill" in result.output
    widths = [f["band_width_p5_p95_relative"] for f in summary["forecasts"]]
    assert widths[0] > widths[1] > widths[2] > 0  # narrower as actuals arrive
    assert summary["forecasts"][0]["crps_skill"] is None  # no naive from the start
    assert summary["forecasts"][1]["crps_skill"] is not None
    points = pd.read_csv(out / "backtest_points.csv")
    assert {"naive", "crps_naive"} <= set(points.columns)


def _classes_programme():
    """Hard cases, exclusions and dumb devices recovered remotely: the parts of a
    state that actuals do not report."""
    data = scenario(
        cohort(
            "a",
            3000,
            rates=outcomes(success=0.9, stall=0.03, rollback=0.04, dumb=0.03),
            max_attempts=4,
            stall={"resolves_after_days": uniform(1, 4), "then_success": 0.6},
            rollback={"retry_after_days": uniform(2, 5)},
        ),
        cap=250,
        horizon_days=70,
    )
    c = data["cohorts"][0]
    c["hard"] = {
        "share": 0.1,
        "outcomes": outcomes(success=0.4, stall=0.1, rollback=0.45, dumb=0.05),
    }
    c["excluded"] = {"share": 0.02, "when": "attempted"}
    c["dumb"] = {"recovered_share": 0.5, "recovered_after_days": uniform(4, 12)}
    return load(data)


@pytest.mark.slow
def test_forecasts_from_actuals_continue_each_path_without_bias(tmp_path):
    """Forecast each of 30 paths from its own actuals of day 13 (a Sunday, with
    retries waiting, hard cases, excluded installations and recoverable dumb
    devices in flight), one replication each: the final migrated and abandoned
    counts differ from the path's own by noise alone (paired, mean within 3
    standard errors). Before the state knew classes, attempts made, recovering
    devices and queued retries, the abandoned count ran 14 short (standard error
    0.6): retries in flight were given back the attempts they had spent, as
    normal installations."""
    sc = _classes_programme()
    results = migsim.run(sc, replications=30, seed=2)
    path = tmp_path / "daily.parquet"
    results.daily.to_parquet(path, index=False)
    final = results.replications
    gaps: dict[str, list[float]] = {"migrated": [], "abandoned": []}
    for replication in range(30):
        actuals = read_actuals(path, sc, replication=replication)
        one = forecast_as_of(
            sc, actuals, day(13), replications=1, seed=70 + replication
        )
        for figure, gap in gaps.items():
            own = float(final[figure].iloc[replication])
            gap.append(float(one.results.replications[figure].iloc[0]) - own)
    for figure, gap in gaps.items():
        x = np.array(gap)
        se = x.std(ddof=1) / np.sqrt(len(x))
        assert abs(x.mean()) <= 3 * max(se, 0.5), (figure, x.mean(), se)


def _points(pit: np.ndarray, as_of: str = "2020-01-01", settled: int = 0):
    """Scored points of one forecast with these PITs: the actual 100 on a band
    around a P50 set by the PIT (a normal with sd 10), then ``settled`` points
    on which every replication had finished (the band one number, the actual on
    it)."""
    from scipy import stats

    p50 = 100 - 10 * stats.norm.ppf(np.clip(pit, 0.005, 0.995))
    dates = pd.date_range("2020-01-02", periods=len(pit) + settled)
    band = {
        f"p{q}": np.concatenate([p50 + 10 * stats.norm.ppf(q / 100), [500.0] * settled])
        for q in (5, 10, 90, 95)
    }
    return pd.DataFrame(
        {
            "as_of": as_of,
            "date": dates.strftime("%Y-%m-%d"),
            "actual": np.concatenate([[100.0] * len(pit), [500.0] * settled]),
            **band,
            "p50": np.concatenate([p50, [500.0] * settled]),
            "beyond_horizon": False,
            "error_installations": 0.0,
            "error_days": 0.0,
            "crps": 1.0,
            "pit": np.concatenate([pit, [0.5] * settled]),
            "naive": np.nan,
            "crps_naive": np.nan,
        }
    )


def test_one_paths_record_is_worth_few_points():
    """A path's PITs drift slowly (a path ahead of its forecast stays ahead): 300
    points whose PIT wanders inside the band, with one isolated miss, weigh like
    a handful, not 300 (read from the inside-or-outside record alone, the miss
    looked like no persistence at all). Five forecasts of the same path are
    worth what one is, not five times it; and points on which every
    replication had finished (certain, and right) are not weighed."""
    rng = np.random.default_rng(4)
    walk = np.cumsum(rng.normal(0, 0.05, 300))
    pit = 0.5 + 0.35 * np.tanh(walk)
    pit[150] = 0.97  # one isolated miss above the band
    one = score(_points(pit))
    assert one["coverage_p10_p90"] == pytest.approx(299 / 300)
    assert one["n_effective"] < 15
    # not underconfident on one path's say-so, and not an endorsement either
    assert one["overconfident"] is None
    assert one["verdict"].startswith("Too few independent points to judge")
    assert "Underconfident" not in one["verdict"]
    five = score(
        pd.concat(
            [_points(pit, f"2020-01-0{k}") for k in range(1, 6)], ignore_index=True
        )
    )
    assert five["n_effective"] == one["n_effective"]
    settled = score(_points(pit, settled=200))
    assert settled["n_settled"] == 200 and settled["n_points"] == 500
    assert settled["n_effective"] == one["n_effective"]
    assert "200 more, on which every replication had finished" in settled["verdict"]
    assert "covers 100% of the 300 actual points" in settled["verdict"]


def test_a_wandering_path_far_from_80_percent_is_not_called_consistent():
    """One path that runs below its band for long stretches (its PIT a slow
    wave about the P10): about half its points inside P10-P90, worth a handful of
    independent points. The test cannot call it overconfident, but the verdict
    must not call 54% "consistent" with 80% either: it says the points are too
    few, and the coverages they cannot rule out include both."""
    # the PIT a slow wave about 0.1: below the P10 about half the time
    pit = 0.11 + 0.1 * np.sin(2 * np.pi * np.arange(300) / 100)
    one = score(_points(pit))
    share = one["coverage_p10_p90"]
    assert 0.5 <= share < 0.7, share
    assert one["n_effective"] < 10
    assert one["overconfident"] is None
    verdict = one["verdict"]
    assert verdict.startswith("Too few independent points to judge"), verdict
    assert "Consistent" not in verdict
    low, high = (
        int(x) / 100 for x in re.search(r"from (\d+)% to (\d+)%", verdict).groups()
    )
    assert low <= share <= high and low < 0.8 <= high


def test_many_independent_points_near_80_percent_are_consistent():
    """Independent points (PITs uniform, no drift) whose coverage is 78%: close
    to nominal and not rejected, so the verdict is consistent, not "too few"."""
    rng = np.random.default_rng(2)
    pit = rng.uniform(0.0, 1.0, 400)
    # exactly 78% inside P10-P90: 312 inside, the rest split either side
    pit[:312] = rng.uniform(0.11, 0.89, 312)
    pit[312:356] = rng.uniform(0.0, 0.09, 44)
    pit[356:] = rng.uniform(0.91, 1.0, 44)
    rng.shuffle(pit)
    figures = score(_points(pit))
    assert figures["coverage_p10_p90"] == pytest.approx(0.78)
    assert figures["n_effective"] > 300
    assert figures["overconfident"] is False
    assert figures["verdict"].startswith("Consistent with its stated uncertainty")


def test_programme_totals_are_shared_between_cohorts_whose_start_is_uncertain(
    tmp_path,
):
    """Coarse programme-wide totals (date, cumulative_migrated) and cohorts with
    an uncertain start (the bundled baseline's slipped entry dates): what had
    migrated by the as-of date is in the forecast's state, shared by size. It
    was dropped: no cohort counted as surely eligible, so 34,908 migrated by
    29 Feb 2020 became a state with none migrated and a backtest whose P5 a
    month later (19,100) was below what had migrated already."""
    from datetime import date

    from migsim.evidence.coarse import _p_started
    from migsim.evidence.state import state_from_actuals
    from migsim.model.state import InitialState

    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    path = _totals(tmp_path, [0, 11436, 34908])
    actuals = read_actuals(path, sc)
    state, _ = state_from_actuals(sc, actuals, date(2020, 2, 29))
    cohorts = state["cohorts"]
    assert sum(c["migrated"] for c in cohorts.values()) == 34908
    # by size times the chance each had started by then (both nearly sure)
    p = _p_started(sc, date(2020, 2, 29))
    assert min(p.values()) > 0.9
    weights = {"itron_active": 24000 * p["itron_active"]}
    weights["elster_dormant"] = 50000 * p["elster_dormant"]
    assert cohorts["itron_active"]["migrated"] == round(
        34908 * weights["itron_active"] / sum(weights.values())
    )
    for name, c in cohorts.items():
        assert c["pending"] == 0
        assert InitialState(**c).total == sc.cohort(name).installations
    # a day after the planned starts neither has likely started: a small total
    # is shared, and each keeps its start drawn by each replication (a share
    # alone made every cohort eligible at once)
    early = tmp_path / "early.csv"
    pd.DataFrame({"date": ["2019-12-10"], "cumulative_migrated": [100]}).to_csv(
        early, index=False
    )
    soon, _ = state_from_actuals(sc, read_actuals(early, sc), date(2019, 12, 10))
    assert max(_p_started(sc, date(2019, 12, 10)).values()) < 0.5
    assert sum(c["migrated"] for c in soon["cohorts"].values()) == 100
    for name, c in soon["cohorts"].items():
        assert c["pending"] == sc.cohort(name).installations - c["migrated"] - c["dumb"]
    # nothing had migrated by the end of December: the cohorts may still wait
    before, _ = state_from_actuals(sc, actuals, date(2019, 12, 31))
    assert all(c["migrated"] == 0 for c in before["cohorts"].values())
    # a cohort surely not yet eligible (a fixed later date) gets none
    later = sc.with_overrides({"cohorts.itron_active.eligible_from": "2020-06-01"})
    state, _ = state_from_actuals(later, read_actuals(path, later), date(2020, 2, 29))
    assert state["cohorts"]["itron_active"]["migrated"] == 0
    assert state["cohorts"]["elster_dormant"]["migrated"] == 34908
    # nor one whose slipped start is planned later (a slip is never early)
    slipped = sc.with_overrides(
        {"cohorts.itron_active.eligible_from.planned": "2020-06-01"}
    )
    state, _ = state_from_actuals(
        slipped, read_actuals(path, slipped), date(2020, 2, 29)
    )
    assert state["cohorts"]["itron_active"]["migrated"] == 0
    assert state["cohorts"]["itron_active"]["pending"] == 24000
    assert state["cohorts"]["elster_dormant"]["migrated"] == 34908


def test_programme_totals_carry_the_dumb_devices_of_typical_rates_not_mean_ones(
    tmp_path,
):
    """Coarse totals say nothing of devices left dumb: the state holds those of
    the cohort's median rates. The active Itron dumb rate is Beta(0.1, 29.9)
    (mean 0.33%, median 0.002%): at the mean every replication carried
    about 33 dumb devices no typical path had, and the forecast could not reach
    the clearance such paths reach (P10-P90 coverage 59% on 20 synthetic truths,
    71% now)."""
    from datetime import date

    from migsim.evidence.coarse import _dumb_ratios
    from migsim.evidence.state import state_from_actuals

    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    active = sc.cohort("itron_active")
    assert _dumb_ratios(active)[0] < 1e-4  # a typical path: none in 10,000
    assert _dumb_ratios(active)[0] == _dumb_ratios(active)[0]  # fixed seed
    known = migsim.load_scenario("tests/reference/nov2019_epcl.yaml")  # fixed rates
    fixed = known.cohort("itron_active")
    rates = dict(
        zip(
            ("success", "stall", "rollback", "fix_forward", "dumb"),
            fixed.outcomes.mean(),
            strict=True,
        )
    )
    ratio = rates["dumb"] / (
        rates["success"] + rates["fix_forward"] + rates["stall"] * 0.74
    )
    assert fixed.stall.then_success == 0.74 and rates["dumb"] > 0
    assert _dumb_ratios(fixed)[0] == pytest.approx(ratio)  # their own ratio
    path = _totals(tmp_path, [0, 9350])
    state, _ = state_from_actuals(known, read_actuals(path, known), date(2020, 1, 31))
    active_state = state["cohorts"]["itron_active"]
    assert active_state["migrated"] > 0
    assert active_state["dumb"] == round(active_state["migrated"] * ratio)
    # known rates: every replication's own estimate is the state's
    from migsim.sim.inputs import resolve_inputs
    from migsim.sim.streams import Streams

    forward = known.starting_from(state)
    for k in range(4):
        own = resolve_inputs(forward, Streams(0, k)).cohort("itron_active")
        assert own.initial_state.dumb == active_state["dumb"]


def test_devices_recovered_remotely_are_not_estimated_left_dumb(tmp_path):
    """Totals do not say how many devices went dumb; where a cohort recovers a
    share of its dumb devices remotely, those were retried and are inside the
    migrated total, so the state estimates only the rest as left dumb: half
    the ratio at a recovered share of one half, in the state and in each
    replication's own estimate (beside those still awaiting recovery)."""
    from datetime import date

    from migsim.evidence.coarse import _dumb_ratios
    from migsim.evidence.state import state_from_actuals
    from migsim.sim.inputs import resolve_inputs
    from migsim.sim.streams import Streams

    known = migsim.load_scenario("tests/reference/nov2019_epcl.yaml")  # fixed rates
    recovering = known.with_overrides(
        {
            "cohorts.itron_active.dumb": {
                "recovered_share": 0.5,
                "recovered_after_days": {"dist": "fixed", "days": 10},
            }
        }
    )
    whole = _dumb_ratios(known.cohort("itron_active"))[0]
    assert whole > 0
    half = _dumb_ratios(recovering.cohort("itron_active"))[0]
    assert half == pytest.approx(whole / 2)
    path = _totals(tmp_path, [0, 20000])
    state, _ = state_from_actuals(
        recovering, read_actuals(path, recovering), date(2020, 1, 31)
    )
    stated = state["cohorts"]["itron_active"]
    # the dumb also hold those still awaiting remote recovery
    waiting = sum(g["count"] for g in stated.get("recovering", []))
    assert stated["dumb"] - waiting == round(stated["migrated"] * half)
    forward = recovering.starting_from(state)
    own = resolve_inputs(forward, Streams(0, 0)).cohort("itron_active")
    assert own.initial_state.dumb == stated["dumb"]


@pytest.mark.slow
def test_each_replication_carries_the_devices_its_own_rates_left_dumb(tmp_path):
    """Programme totals say how many migrated, not how many went dumb on the
    way: the state states the typical estimate and says it is one
    (``dumb_estimated``), and each replication of the forecast re-estimates it
    at the rates it drew (the ones its inputs record), taking the difference
    from the installations still queued. At one estimate for every
    replication, 4 of 20 synthetic truths ended below the forecast's P5 (their
    rates had left more devices dumb than the median's): P10-P90 coverage of
    the final counts was 65%."""
    from datetime import date

    from migsim.evidence.state import state_from_actuals
    from migsim.model.state import InitialState
    from migsim.sim.inputs import dumb_per_migrated, resolve_inputs
    from migsim.sim.streams import Streams

    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    actuals = read_actuals(_totals(tmp_path, [0, 30000]), sc)
    forecast = forecast_as_of(sc, actuals, date(2020, 1, 31), 30, seed=4)
    state, _ = state_from_actuals(
        forecast.calibration.scenario, actuals, date(2020, 1, 31)
    )
    inputs = forecast.results.inputs
    for name, stated in state["cohorts"].items():
        assert stated["dumb_estimated"] is True
        counts = []
        for k in range(30):
            row = inputs.iloc[k]
            rates = np.array(
                [row[f"cohorts.{name}.outcomes.{o}"] for o in OUTCOME_NAMES]
            )
            then = row[f"cohorts.{name}.stall.then_success"]
            own = resolve_inputs(forecast.scenario, Streams(4, k)).cohort(name)
            expected = round(stated["migrated"] * dumb_per_migrated(rates, then))
            assert own.initial_state.dumb == expected
            assert own.initial_state.total == InitialState(**stated).total
            assert not own.initial_state.dumb_estimated
            counts.append(expected)
        assert len(set(counts)) >= 5  # the rates differ, so do the counts
    # a state that says nothing of it dumps (and hashes) as before the field
    assert "dumb_estimated" not in InitialState(pending=5).model_dump()


OUTCOME_NAMES = ("success", "stall", "rollback", "fix_forward", "dumb")


def _totals(folder, cumulative: list[int]):
    """Monthly programme totals from 31 Dec 2019, as a CSV in ``folder``."""
    dates = ["2019-12-31", "2020-01-31", "2020-02-29"][: len(cumulative)]
    path = folder / "totals.csv"
    pd.DataFrame({"date": dates, "cumulative_migrated": cumulative}).to_csv(
        path, index=False
    )
    return path


def test_a_cohorts_older_last_figure_is_noted(tmp_path):
    """Per-cohort totals where one cohort's last row is a month older: a state
    read as of the later day carries its figure as it stood then, and a note
    says so (it said nothing); a forecast starts from the older day instead
    (test_forecast)."""
    from datetime import date

    from migsim.evidence.state import state_from_actuals

    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    path = tmp_path / "cohorts.csv"
    pd.DataFrame(
        {
            "date": ["2020-01-31", "2020-01-31", "2020-02-29"],
            "cohort": ["itron_active", "elster_dormant", "elster_dormant"],
            "cumulative_migrated": [3000, 8000, 20000],
        }
    ).to_csv(path, index=False)
    state, notes = state_from_actuals(sc, read_actuals(path, sc), date(2020, 2, 29))
    assert state["cohorts"]["itron_active"]["migrated"] == 3000
    assert any(
        "last figure is older than the others': itron_active on 2020-01-31" in n
        for n in notes
    )


def test_a_size_is_drawn_given_that_it_holds_what_the_state_holds():
    """A cohort of estimated size whose state (from totals) already holds 1,400
    of a uniform 1,000-2,000 range is drawn from 1,400-2,000, not clamped:
    before, the draws under 1,400 all became 1,400 with nothing left to do,
    and the forecast cleared early. A shared range is drawn at the quantile
    every cohort allows; without a state the draws are as before."""
    from scipy import stats

    from migsim.sim.inputs import resolve_inputs
    from migsim.sim.streams import Streams

    def programme(state_a, state_b, shared):
        a = cohort("a", 1500, rates=outcomes(success=1.0))
        b = cohort("b", 1500, rates=outcomes(success=1.0))
        for c, state in ((a, state_a), (b, state_b)):
            c["installations_range"] = {
                "dist": "uniform",
                "low": 1000,
                "high": 2000,
                "shared": shared,
            }
            if state is not None:
                c["initial_state"] = state
        return load(scenario(a, b, cap=100, horizon_days=30))

    held = {"migrated": 1400, "queued": 100}
    alone = programme(held, None, shared=False)
    sizes = np.array(
        [[c.installations for c in resolve_inputs(alone, Streams(0, k)).cohorts]
         for k in range(400)]
    )  # fmt: skip
    assert sizes[:, 0].min() >= 1400
    assert stats.kstest((sizes[:, 0] - 1400) / 601, "uniform").pvalue > 0.01
    free = programme(None, None, shared=False)
    before = [
        resolve_inputs(free, Streams(0, k)).cohorts[1].installations for k in range(400)
    ]
    np.testing.assert_array_equal(sizes[:, 1], before)  # b, without a state: as before
    together = programme(held, {"migrated": 1100, "queued": 400}, shared=True)
    both = np.array(
        [[c.installations for c in resolve_inputs(together, Streams(0, k)).cohorts]
         for k in range(200)]
    )  # fmt: skip
    assert both[:, 0].min() >= 1400 and (both[:, 0] == both[:, 1]).all()
