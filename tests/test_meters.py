"""Meters per installation as a range: drawn once per replication, recorded, and
used per replication wherever counts are shown in meters (report bands and
tables, backtests against actuals in meters); a fleet stated in meters keeps its
size in meters whatever the ratio drawn."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import cohort, load, outcomes, scenario, tiny_dict, uniform, write_yaml

import migsim
from migsim.cli.main import main
from migsim.common.errors import ScenarioError
from migsim.common.stats import quantile
from migsim.evidence.actuals import read_actuals
from migsim.evidence.backtest import backtest
from migsim.model.point import point_scenario
from migsim.model.uncertainty import CapRange
from migsim.output.meters import InMeters, in_units
from migsim.results.rundir import load_run
from migsim.results.units import meters_ratios
from migsim.sim.engine import run_replication
from migsim.sim.inputs import input_label, resolve_inputs
from migsim.sim.streams import Streams

RATIO = {"dist": "triangular", "low": 1.4, "high": 1.9}


def ranged_tiny(**changes):
    """The tiny scenario with its ratio a range (its point 1.6)."""
    return load(tiny_dict(meters_per_installation_range=RATIO, **changes))


def test_the_ratio_range_draws_around_its_point_and_is_recorded():
    sc = ranged_tiny()
    ratios = [
        resolve_inputs(sc, Streams(0, k)).meters_per_installation for k in range(400)
    ]
    assert 1.4 <= min(ratios) and max(ratios) <= 1.9
    # triangular(1.4, 1.6, 1.9): mean (1.4 + 1.6 + 1.9) / 3
    assert abs(np.mean(ratios) - 1.6333) < 0.01
    log = run_replication(sc, 0, 3)
    assert log.inputs["meters_per_installation"] == ratios[3]
    assert input_label("meters_per_installation") == "meters per installation"
    # the sizes are stated in installations here: the ratio does not move them
    assert resolve_inputs(sc, Streams(0, 3)).installations == sc.installations


def test_the_point_value_is_the_stated_ratio_and_a_scenario_hashes_as_before():
    sc = ranged_tiny()
    point = point_scenario(sc)
    assert point.meters_per_installation == 1.6
    assert point.meters_per_installation_range is None
    plain = load(tiny_dict())
    assert "meters_per_installation_range" not in plain.to_dict()
    sized = load(
        tiny_dict(
            cohorts=[
                {**c, "installations_range": {"dist": "uniform", "low": 1, "high": 900}}
                for c in tiny_dict()["cohorts"]
            ]
        )
    )
    assert "from_meters" not in sized.to_dict()["cohorts"][0]["installations_range"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"meters_per_installation": None}, "needs meters_per_installation"),
        ({"meters_per_installation": 2.5}, "must lie in the range"),
    ],
)
def test_a_bad_ratio_range_is_one_line_naming_the_field(changes, message):
    with pytest.raises(ScenarioError, match=message) as error:
        ranged_tiny(**changes)
    assert "meters_per_installation" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_size_from_meters_needs_a_ratio_and_a_cap_cannot_be_in_meters():
    data = tiny_dict(meters_per_installation=None)
    data["cohorts"][0]["installations_range"] = {
        "dist": "uniform",
        "low": 500,
        "high": 700,
        "from_meters": True,
    }
    with pytest.raises(ScenarioError, match="from_meters"):
        load(data)
    with pytest.raises(ValueError, match="installations a day"):
        CapRange(dist="uniform", low=1, high=2, from_meters=True)


def test_a_size_stated_in_meters_is_converted_with_the_drawn_ratio():
    data = tiny_dict(meters_per_installation_range=RATIO)
    for c in data["cohorts"]:
        size = c["installations"]
        c["installations_range"] = {
            "dist": "triangular",
            "low": size - 100,
            "high": size + 100,
            "shared": True,
            "from_meters": True,
        }
    sc = load(data)
    meters, sizes, ratios = [], [], []
    for k in range(200):
        drawn = resolve_inputs(sc, Streams(0, k))
        ratio = drawn.meters_per_installation
        ratios.append(ratio)
        sizes.append(drawn.installations)
        meters.append(drawn.installations * ratio)
    # the meters stay in the stated range (its installations at the point 1.6)
    low = (sc.installations - 200) * 1.6
    high = (sc.installations + 200) * 1.6
    assert low - 2 * 1.9 <= min(meters) and max(meters) <= high + 2 * 1.9
    assert max(sizes) > sc.installations + 200  # fewer meters each: more premises
    assert np.corrcoef(ratios, sizes)[0, 1] < -0.5


@pytest.fixture(scope="module")
def ranged_run(tmp_path_factory):
    """A run of the tiny scenario with a ratio range, written by `migsim run -o`."""
    root = tmp_path_factory.mktemp("meters")
    path = write_yaml(root / "tiny.yaml", ranged_tiny().to_dict())
    out = root / "run"
    args = ["run", str(path), "-n", "30", "--seed", "2", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


def test_saved_and_live_runs_give_each_replication_its_ratio(ranged_run):
    saved = load_run(ranged_run)
    ratios = meters_ratios(saved)
    assert len(ratios) == 30 and np.ptp(ratios) > 0
    live = migsim.run(saved.scenario, replications=30, seed=2)
    np.testing.assert_array_equal(meters_ratios(live), ratios)
    # one fixed ratio: every replication has it
    fixed = migsim.run(load(tiny_dict()), replications=3, seed=2)
    np.testing.assert_array_equal(meters_ratios(fixed), [1.6, 1.6, 1.6])
    assert in_units(fixed, "meters") is fixed
    assert in_units(saved, "installations") is saved


def test_meter_bands_are_quantiles_of_each_replications_own_meters(ranged_run):
    saved = load_run(ranged_run)
    ratios = meters_ratios(saved)
    view = in_units(saved, "meters")
    assert isinstance(view, InMeters)
    paths = migsim.run(saved.scenario, replications=30, seed=2).series(
        "cumulative_migrated"
    )
    meters = paths.sum(axis=2) * ratios[:, None]
    bands = view.bands("cumulative_migrated", quantiles=(0.05, 0.5, 0.95))
    for day in (10, 30, 60):
        for q in (0.05, 0.5, 0.95):
            expected = quantile(meters[:, day], q)
            assert bands[f"p{round(q * 100)}"].iloc[day] * 1.6 == pytest.approx(
                expected
            )
    # wider than the installation band times one ratio, mid-programme
    fixed = saved.bands("cumulative_migrated", quantiles=(0.05, 0.95))
    day = 40
    width = (bands["p95"].iloc[day] - bands["p5"].iloc[day]) * 1.6
    assert width > (fixed["p95"].iloc[day] - fixed["p5"].iloc[day]) * 1.6


def test_a_run_folder_has_its_bands_in_meters_at_each_replications_ratio(
    ranged_run, tmp_path
):
    """``bands_meters.csv``: ``bands.csv``'s layout, each count the type-1
    quantile over replications of its installations times its own ratio
    (whole meters); with one fixed ratio, the bands times it; none without a
    ratio."""
    meters = pd.read_csv(ranged_run / "bands_meters.csv", parse_dates=["date"])
    plain = pd.read_csv(ranged_run / "bands.csv", parse_dates=["date"])
    assert list(meters.columns) == list(plain.columns)
    assert meters[["date", "cohort"]].equals(plain[["date", "cohort"]])
    saved = load_run(ranged_run)
    ratios = meters_ratios(saved)
    live = migsim.run(saved.scenario, replications=30, seed=2)
    paths = live.series("cumulative_migrated")
    overall = meters[meters["cohort"] == "all"].reset_index(drop=True)
    first = meters[meters["cohort"] == saved.cohort_names[0]].reset_index(drop=True)
    for day in (10, 30, 60):
        for q in (0.05, 0.5, 0.95):
            column = f"cumulative_migrated_p{round(q * 100)}"
            total = quantile(paths[:, day].sum(axis=1) * ratios, q)
            assert overall[column].iloc[day] == round(total)
            alone = quantile(paths[:, day, 0] * ratios, q)
            assert first[column].iloc[day] == round(alone)
    fixed = tmp_path / "fixed"
    path = write_yaml(tmp_path / "tiny.yaml", tiny_dict())
    args = ["run", str(path), "-n", "5", "-o", str(fixed), "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    at_one = pd.read_csv(fixed / "bands_meters.csv")
    counts = pd.read_csv(fixed / "bands.csv").iloc[:, 2:] * 1.6
    assert (at_one.iloc[:, 2:] == counts.round().astype("int64")).all().all()
    bare = tiny_dict()
    del bare["meters_per_installation"]
    path = write_yaml(tmp_path / "bare.yaml", bare)
    args = ["run", str(path), "-n", "5", "-o", str(tmp_path / "bare"), "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert not (tmp_path / "bare" / "bands_meters.csv").exists()


def test_the_report_in_meters_shows_each_replications_own_meters(
    ranged_run, tmp_path, monkeypatch
):
    """The figures' P90s in meters, each replication's count times its own
    ratio. Only the page's text is read: its charts are built but not
    rendered into PNG bytes, most of a report's time (as test_report's
    charts_unpainted)."""
    import migsim.output.html as html_module

    monkeypatch.setattr(html_module, "png_base64", lambda fig: "")
    saved = load_run(ranged_run)
    ratios = meters_ratios(saved)
    out = tmp_path / "m.html"
    result = CliRunner().invoke(
        main, ["report", str(ranged_run), "-o", str(out), "--units", "meters"]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    for name in ("dumb", "peak_failure_backlog"):
        meters = saved.figure(name) * ratios
        shown = re.search(
            rf'data-key="figures\.{name}\.p90" data-value="[^"]*" '
            rf'data-run="0">([^<]*)<',
            page,
        )
        assert shown is not None, name
        assert shown.group(1) == f"{quantile(meters, 0.9):,.0f}", name


def test_a_backtest_in_meters_converts_each_path_with_its_own_ratio(tmp_path):
    data = scenario(
        cohort(
            "a",
            1500,
            rates=outcomes(success=0.85, stall=0.08, rollback=0.05, dumb=0.02),
            stall={"resolves_after_days": uniform(1, 5), "then_success": 0.7},
            rollback={"retry_after_days": uniform(1, 4)},
        ),
        cap=120,
        horizon_days=25,
        meters_per_installation=2.0,
        meters_per_installation_range={"dist": "uniform", "low": 1.5, "high": 2.5},
    )
    sc = load(data)
    truth = migsim.run(sc, replications=1, seed=900)
    migrated = truth.series("cumulative_migrated").sum(axis=2)[0]
    frame = pd.DataFrame({"date": truth.dates, "cumulative_migrated": migrated * 2.0})
    path = tmp_path / "actuals.csv"
    frame.iloc[::5].to_csv(path, index=False)
    actuals = read_actuals(path, sc, unit="meters")
    result = backtest(sc, actuals, replications=40, seed=1)
    forecast = result.forecasts[0]
    ratios = meters_ratios(forecast.results)
    raw = forecast.results.series("cumulative_migrated").sum(axis=2)
    np.testing.assert_allclose(
        forecast.cumulative_migrated(), raw * (ratios / 2.0)[:, None]
    )
    point = result.points.iloc[-1]
    day = (pd.Timestamp(point["date"]) - pd.Timestamp(sc.start_date)).days
    assert point["p95"] == pytest.approx(quantile(raw[:, day] * ratios / 2.0, 0.95))
    # in installations the same forecast is not rescaled (the same truth, counted
    # in installations: a count above the cohort's size would be refused)
    counted = tmp_path / "installations.csv"
    frame.assign(cumulative_migrated=migrated).iloc[::5].to_csv(counted, index=False)
    in_installations = read_actuals(counted, sc, unit="installations")
    plain = backtest(sc, in_installations, replications=40, seed=1)
    np.testing.assert_array_equal(plain.forecasts[0].cumulative_migrated(), raw)
    # the text gives the scores in the actuals' unit: meters, at the point ratio
    # (they were labelled installations while holding meters / 2)
    figures = result.figures
    text = result.text()
    assert "installations" not in text.split("\n\n")[1]
    width = figures["band_width_p5_p95"] * 2.0
    assert f"{width:,.0f} meters" in text or f"{width:,.1f} meters" in text
    assert result.shown_in == (2.0, "meters") and plain.shown_in == (
        1.0,
        "installations",
    )
    assert "installations" in plain.text()


def test_a_display_only_ratio_is_never_credited_in_the_variance_split():
    from migsim.results.variance import _simulated_inputs

    draws = {"meters_per_installation": np.ones(3), "programme_delay": np.ones(3)}
    assert list(_simulated_inputs(ranged_tiny(), draws)) == ["programme_delay"]
    data = tiny_dict(meters_per_installation_range=RATIO)
    data["cohorts"][0]["installations_range"] = {
        "dist": "uniform",
        "low": 500,
        "high": 700,
        "from_meters": True,
    }
    assert list(_simulated_inputs(load(data), draws)) == list(draws)


def test_a_report_in_meters_names_meters_and_starts_where_its_chart_starts(
    ranged_run, monkeypatch
):
    """--units meters once said "installations abandoned (meters)", a backlog of
    the point ratio (118,400) over a chart whose median started near 120,600,
    and drew the band past the top of the axis."""
    import html

    import migsim.output.scenario_charts as charts
    from migsim.output.report import render_report

    drawn = {}

    def fan(series, total, unit):
        drawn.update(series=series, total=total)
        return charts.scenarios_fan_chart_unpatched(series, total, unit)

    monkeypatch.setattr(
        charts, "scenarios_fan_chart_unpatched", charts.scenarios_fan_chart, False
    )
    monkeypatch.setattr(charts, "scenarios_fan_chart", fan)
    saved = load_run(ranged_run)
    page = html.unescape(render_report([saved], units="meters"))
    answer = re.search(r'id="answer">(.*?)</p>', page, re.S).group(1)
    # the chart's median of each replication's installations x its own ratio
    start = quantile(saved.scenario.installations * meters_ratios(saved), 0.5)
    backlog = float(
        re.search(r"backlog of ([\d,]+) meters", answer)[1].replace(",", "")
    )
    assert backlog == pytest.approx(start, abs=0.5)
    assert backlog != round(saved.scenario.installations * 1.6)
    assert drawn["total"] >= drawn["series"][0].bands["p95"].max()
    table = page[page.index('id="key-risks"') :]
    labels = re.findall(
        r"<th scope='row'>(.*?) <span", table[: table.index("</table>")]
    )
    risks = [label for label in labels if not label.startswith("clears")]
    assert risks and not any("installation" in label for label in risks), risks
    assert "meters abandoned" in risks
