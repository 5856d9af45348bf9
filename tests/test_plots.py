"""Charts draw off-screen without pyplot: a caller's backend and figures are theirs."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest


@pytest.mark.slow
def test_drawing_a_chart_leaves_the_backend_and_pyplot_alone():
    code = """
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
import pandas as pd
from migsim.output.plots import backlog_fan_chart
from migsim.output.decision_plots import tornado_chart

bands = pd.DataFrame(
    {"date": pd.date_range("2020-01-01", periods=5), "p10": [5, 4, 3, 2, 0],
     "p50": [5, 4, 3, 2, 1], "p90": [5, 5, 4, 3, 2]}
)
table = pd.DataFrame({"figure": ["dumb_p90"], "field": ["capacity.daily_cap"],
                      "value_low": [10.0], "value_high": [4.0], "swing": [-6.0]})
for fig in (backlog_fan_chart(bands, "t"), tornado_chart(table)):
    fig.savefig("/dev/null", format="png")
print(matplotlib.get_backend(), plt.get_fignums())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["svg", "[]"]


def test_the_decision_charts_still_load_from_plots():
    from migsim.output import decision_plots, plots

    assert plots.frontier_chart is decision_plots.frontier_chart
    assert plots.sobol_chart is decision_plots.sobol_chart
    assert plots.tornado_chart is decision_plots.tornado_chart


# --------------------------------------------------------------------------- legible
def _drawn_texts(fig):
    """Every text a reader sees on ``fig``, with its window extent (after a draw).

    Tick labels count only for the ticks drawn now: an axis keeps stale tick
    objects beyond its view that are never drawn.
    """
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    drawn, ticks = set(), set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = (high - low) * 1e-9
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update((id(tick.label1), id(tick.label2)))
                if low - slack <= tick.get_loc() <= high + slack:
                    drawn.update((id(tick.label1), id(tick.label2)))
    texts = []
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text().strip():
            continue
        if id(text) in ticks and id(text) not in drawn:
            continue
        if text.axes is not None and not text.axes.get_visible():
            continue
        texts.append((text.get_text(), text.get_window_extent(renderer)))
    return texts


def assert_legible(fig, name: str) -> int:
    """No text of ``fig`` is clipped by its edges or overlaps another text."""
    width, height = fig.canvas.get_width_height()
    texts = _drawn_texts(fig)
    for text, box in texts:
        assert box.x0 >= -0.5 and box.y0 >= -0.5, (name, text, "clipped", box)
        assert box.x1 <= width + 0.5 and box.y1 <= height + 0.5, (
            name,
            text,
            "clipped",
            box,
        )
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1 :]:
            overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            assert overlap_x <= 0.5 or overlap_y <= 0.5, (name, a, b, "overlap")
    return len(texts)


@pytest.fixture(scope="module")
def two_runs():
    """A baseline and a faster what-if of the tiny scenario, paired."""
    from conftest import tiny

    import migsim

    base = migsim.run(tiny(), 12, seed=3)
    faster = migsim.run(tiny({"capacity.daily_cap": 150}, name="faster"), 12, seed=3)
    return base, faster


def test_shared_fan_chart_tells_scenarios_apart_without_colour(two_runs):
    """Printed in grey, the first scenarios' colours (Okabe-Ito blue, vermilion,
    green) are 46-58 in lightness: the medians, the clearance lines and the
    legend's swatches looked alike. Each scenario now has its own marker, on
    its median, atop its clearance lines and in the legend."""
    from datetime import date

    from migsim.output.scenario_charts import (
        ScenarioBands,
        scenario_colour,
        scenarios_fan_chart,
    )

    series = [
        ScenarioBands(
            run.scenario.name,
            run.bands("remaining", quantiles=(0.05, 0.1, 0.5, 0.9, 0.95)),
            date.fromisoformat(run.summary["clearance_date"]["p50"]),
            date.fromisoformat(run.summary["clearance_date"]["p90"]),
            scenario_colour(i),
        )
        for i, run in enumerate(two_runs)
    ]
    fig = scenarios_fan_chart(series, two_runs[0].scenario.installations)
    legend = next(
        lg
        for lg in fig.legends
        if any(t.get_text() for t in lg.get_texts())
        and two_runs[0].scenario.name in lg.get_texts()[0].get_text()
    )
    shapes = [h.get_marker() for h in legend.legend_handles]
    assert len(set(shapes)) == len(series) and "None" not in shapes
    for ax in fig.axes[:2]:
        for i, item in enumerate(series):
            drawn = [
                line
                for line in ax.get_lines()
                if line.get_color() == item.colour and line.get_marker() == shapes[i]
            ]
            # along the median, and atop the P50 and P90 lines
            assert len(drawn) >= 3, (ax.get_title(), item.name)


def test_report_charts_have_no_clipped_or_overlapping_text(two_runs):
    from datetime import date

    from migsim.output import plots
    from migsim.output.scenario_charts import (
        ScenarioBands,
        cohort_backlog_chart,
        scenario_colour,
        scenarios_fan_chart,
    )

    series = []
    for i, run in enumerate(two_runs):
        bands = run.bands("remaining", quantiles=(0.05, 0.1, 0.5, 0.9, 0.95))
        when = run.summary["clearance_date"]
        series.append(
            ScenarioBands(
                run.scenario.name,
                bands,
                date.fromisoformat(when["p50"]),
                date.fromisoformat(when["p90"]),
                scenario_colour(i),
            )
        )
    base = two_runs[0]
    charts = {
        "fan": scenarios_fan_chart(series, base.scenario.installations),
        "cohorts": cohort_backlog_chart(
            {c: base.bands("remaining", c) for c in base.cohort_names},
            "a scenario with a long name, as planners write them",
            scenario_colour(1),
        ),
        "backlog": plots.backlog_fan_chart(base.backlog_bands(), "tiny"),
        "cumulative": plots.cumulative_migrated_chart(
            base.bands("cumulative_migrated"),
            "cap5000_from_6_jan",
            1500,
            colour=scenario_colour(1),
            figsize=(6.2, 2.9),
        ),
        "attempts": plots.daily_attempts_chart(
            base.bands("attempts"),
            base.bands("successes"),
            "cap5000_from_6_jan",
            colour=scenario_colour(1),
            figsize=(6.2, 2.9),
        ),
        "clearance": plots.clearance_distribution_chart(
            pd.Series(pd.to_datetime(base.replications["clearance_date"])),
            "cap5000_from_6_jan",
            base.scenario.end_date,
            {"P50 4 Mar 2020": date(2024, 1, 18), "P90 9 Mar 2020": date(2024, 1, 19)},
            colour=scenario_colour(0),
            figsize=(6.2, 2.9),
        ),
        "risks": plots.risk_chart(
            {
                "active installation-days without smart service (installation-days)": (
                    base.figure("active_interrupted_installation_days") * 1000
                ),
                "devices left dumb (installations)": base.figure("dumb"),
                "peak failure backlog (stalled + rolled back) (installations)": (
                    base.figure("peak_failure_backlog")
                ),
                "installations abandoned (installations)": base.figure("abandoned"),
            },
            "tiny",
            columns=4,
            width=11,
        ),
    }
    for name, fig in charts.items():
        assert assert_legible(fig, name) > 5, name


@pytest.mark.parametrize("count", [4, 6])
def test_the_fan_chart_of_many_long_named_scenarios_is_legible(two_runs, count):
    """With four or more scenarios the legend of scenarios went to two columns:
    names as long as the bundled ones ran under the key of bands and lines
    ("nov2019_aggressive_ramp: P50 7 Apr 2020, ..." over "P10-P90 of
    replications"). One column each, the figure taller by the extra rows: no
    text overlaps, and the panels keep the height they have for three."""
    from datetime import date

    from migsim.output.scenario_charts import (
        ScenarioBands,
        scenario_colour,
        scenarios_fan_chart,
    )

    names = [
        "nov2019_epcl",
        "nov2019_cautious_ramp",
        "nov2019_aggressive_ramp",
        "nov2019_cautious_ramp_elster_active",
        "nov2019_conditions",
        "nov2019_operations",
    ]

    def chart(n: int):
        series = []
        for i, name in enumerate(names[:n]):
            run = two_runs[i % 2]
            when = run.summary["clearance_date"]
            series.append(
                ScenarioBands(
                    name,
                    run.bands("remaining", quantiles=(0.05, 0.1, 0.5, 0.9, 0.95)),
                    date.fromisoformat(when["p50"]),
                    None if i == 3 else date.fromisoformat(when["p90"]),
                    scenario_colour(i),
                )
            )
        return scenarios_fan_chart(series, two_runs[0].scenario.installations)

    fig = chart(count)
    assert assert_legible(fig, f"fan of {count}") > 20
    three = chart(3)
    three.draw(three.canvas.get_renderer())
    height = fig.axes[0].get_window_extent().height
    assert height == pytest.approx(three.axes[0].get_window_extent().height, abs=4)


def test_frontier_chart_dates_labels_and_one_legend():
    from migsim.output.decision_plots import frontier_chart

    caps = list(range(4000, 31000, 1000))
    frame = pd.DataFrame(
        {
            "candidate": range(len(caps)),
            "capacity.rules.automation_step.max_cap": caps,
            "clearance_day_p50": [400 - c / 200 for c in caps],
            "a_p90": [200000 + c * 2 for c in caps],
            "a_p90_bound": [201000 + c * 2 for c in caps],
            "b": [min(1.0, c / 40000) for c in caps],
            "b_bound": [min(1.0, c / 35000) for c in caps],
            "c_p90": [3000 + c / 10 for c in caps],
            "c_p90_bound": [3100 + c / 10 for c in caps],
            "d_p90": [900 + c / 30 for c in caps],
            "d_p90_bound": [950 + c / 30 for c in caps],
        }
    )
    frame["verdict"] = ["safe" if c <= 12000 else "unsafe" for c in caps]
    frame["is_answer"] = [c == 12000 for c in caps]
    budgets = [
        ("a_p90", 240000.0, "active installation-days interrupted P90"),
        ("b", 0.05, "P(more than 100 active hit by a defect)"),
        ("c_p90", 5000.0, "active interrupted on the worst day P90"),
        ("d_p90", 1500.0, "ELS cases waiting at the peak P90"),
    ]
    from datetime import date

    fig = frontier_chart(
        frame,
        "clearance_day_p50",
        budgets,
        "opsg_ramp_basis: candidates at 95% confidence",
        start_date=date(2019, 11, 25),
        lever="capacity.rules.automation_step.max_cap",
    )
    assert assert_legible(fig, "frontier") > 10
    texts = [t for t, _ in _drawn_texts(fig)]
    assert sum(1 for ax in fig.axes if ax.get_legend()) == 0  # one figure legend
    assert len(fig.legends) == 1
    assert any("12,000" in t for t in texts)  # the answer's point is labelled
    assert any("budget" in t for t in texts)  # budget lines are labelled
    assert any(t in ("Feb", "Mar", "2020", "Apr") or "2020" in t for t in texts)


def test_frontier_chart_labels_a_date_levers_points_with_their_dates():
    """A date lever (an eligibility date, a gate's, a schedule step's: decide
    takes them) labels its points with dates; it raised ValueError, could not
    convert string to float, after every candidate had run."""
    from datetime import date

    from migsim.output.decision_plots import frontier_chart

    starts = ["2024-01-01", "2024-01-08", "2024-01-15"]
    frame = pd.DataFrame(
        {
            "candidate": range(3),
            "cohorts.c.eligible_from": starts,
            "clearance_day_p50": [11.0, 18.0, 25.0],
            "a_p90": [0.0, 1.0, 2.0],
            "a_p90_bound": [1.0, 2.0, 3.0],
            "verdict": ["safe", "safe", "safe"],
            "is_answer": [True, False, False],
        }
    )
    fig = frontier_chart(
        frame,
        "clearance_day_p50",
        [("a_p90", 5.0, "devices left dumb P90")],
        "q: candidates at 95% confidence",
        start_date=date(2024, 1, 1),
        lever="cohorts.c.eligible_from",
    )
    texts = [t for t, _ in _drawn_texts(fig)]
    assert "2024-01-01" in texts  # the answer's point


# --------------------------------------------------------------------------- backtest
def _backtest_panels(n: int) -> list[dict]:
    """``n`` forecasts of a 1,000-installation programme, 9 days apart, each with
    the actuals before and after its as-of date and the share scored in P10-P90."""
    import numpy as np

    dates = pd.date_range("2024-01-01", periods=400)
    actual = pd.DataFrame(
        {"date": dates, "cumulative_migrated": np.minimum(np.arange(400) * 4.0, 1000)}
    )
    panels = []
    for i in range(n):
        as_of = dates[0] + pd.Timedelta(days=9 * i)
        ahead = dates[dates >= as_of]
        mid = np.minimum(
            actual["cumulative_migrated"].iloc[9 * i] + 3.5 * np.arange(len(ahead)),
            1000,
        )
        bands = pd.DataFrame({"date": ahead, "p50": mid})
        for q, spread in (("p5", -0.2), ("p10", -0.1), ("p90", 0.1), ("p95", 0.2)):
            bands[q] = np.clip(mid * (1 + spread), 0, 1000)
        panels.append(
            {
                "as_of": str(as_of.date()),
                "bands": bands,
                "before": actual[actual["date"] <= as_of],
                "after": actual[actual["date"] > as_of],
                "n_points": 400 - 9 * i - 1,
                "coverage_p10_p90": 0.5 + i / 100,
            }
        )
    return panels


@pytest.mark.parametrize(
    ("n", "shape", "shown"),
    [(1, (1, 2), 1), (3, (1, 4), 3), (13, (4, 4), 13), (40, (7, 4), 24)],
)
def test_backtest_chart_is_a_grid_with_shared_axes_and_one_legend(n, shape, shown):
    """One panel per as-of date (at most 24, evenly spaced) and the PIT's, four to
    a row at most; one y scale and date range; one legend; bounded in size."""
    from migsim.output.backtest_plots import backtest_chart

    panels = _backtest_panels(n)
    fig = backtest_chart(panels, [5, 9, 12, 10, 8, 11, 9, 10, 14, 12], "tiny")
    forecasts, pit = fig.axes[:-1], fig.axes[-1]
    assert len(forecasts) == shown
    assert pit.get_subplotspec().get_gridspec().get_geometry() == shape
    assert {ax.get_subplotspec().num1 for ax in fig.axes} == set(range(shown + 1))
    # every forecast panel on one scale; the date range holds every as-of date
    assert len({ax.get_ylim() for ax in forecasts}) == 1
    assert len({ax.get_xlim() for ax in forecasts}) == 1
    assert forecasts[0].get_ylim()[0] == 0 and forecasts[0].get_ylim()[1] >= 1000
    low, high = forecasts[0].get_xlim()
    import matplotlib.dates as mdates

    assert low <= mdates.date2num(pd.Timestamp(panels[-1]["as_of"])) < high
    # one legend for the figure, none in a panel; the PIT's flat line is in it
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["P5-P95", "P10-P90", "median (P50)"]
    assert "PIT if calibrated (flat)" in labels and len(labels) == 7
    assert pit.lines[0].get_ydata()[0] == pytest.approx(0.1)  # 10% a bin
    # titles: the as-of date and its share in P10-P90; first and last always drawn
    titles = [ax.get_title() for ax in forecasts]
    assert titles[0] == "as of 2024-01-01\n50% inside P10-P90 (399 points)"
    assert titles[-1].startswith(f"as of {panels[-1]['as_of']}\n")
    assert titles == sorted(titles)  # in date order
    assert pit.get_title().startswith("PIT histogram\n100 points")
    heading = fig.get_suptitle()
    assert f"{n} forecast" in heading and "(nominal 80%)" in heading
    assert ("showing 24 of 40 as-of dates" in heading) == (n == 40)
    # at the 110 dpi `migsim backtest` saves at: within a screen or two, and legible
    fig.set_dpi(110)
    width, height = fig.canvas.get_width_height()
    assert width <= 1650 and height <= 2250, (width, height)
    assert height <= 460 if n <= 3 else height > width / 2
    assert assert_legible(fig, f"backtest {n}") > 10


def test_evenly_spaced_as_of_dates_keep_the_first_and_the_last():
    from migsim.output.backtest_plots import grid_shape, shown_as_of

    assert shown_as_of(24) == list(range(24))
    for n in (25, 40, 100):
        chosen = shown_as_of(n)
        gaps = {b - a for a, b in zip(chosen, chosen[1:], strict=False)}
        assert len(chosen) == 24 and chosen[0] == 0 and chosen[-1] == n - 1
        assert max(gaps) - min(gaps) <= 1, gaps  # evenly spaced
    assert [grid_shape(k) for k in (1, 2, 3, 4, 7, 24)] == [
        (1, 2),
        (1, 3),
        (1, 4),
        (2, 4),
        (2, 4),
        (7, 4),
    ]


def test_the_backtest_chart_still_loads_from_plots():
    from migsim.output import backtest_plots, plots

    assert plots.backtest_chart is backtest_plots.backtest_chart


def test_a_tornado_draws_only_the_figures_a_field_moved():
    """A page of empty panels (the baseline's defect and ELS figures, moved by
    no field) hid the few that answer the question: those get a note instead."""
    from migsim.output.decision_plots import tornado_chart

    table = pd.DataFrame(
        {
            "figure": ["clearance_day_p50", "abandoned_p90", "peak_els_backlog_p90"],
            "field": ["capacity.daily_cap"] * 3,
            "value_low": [210.0, 0.0, 0.0],
            "value_high": [152.0, 0.0, 0.0],
            "swing": [-58.0, 0.0, 0.0],
        }
    )
    fig = tornado_chart(table, {"clearance_day_p50": 172.0})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["clearance day p50"]
    note = fig.get_supxlabel()
    assert "abandoned p90" in note and "peak els backlog p90" in note
    nothing = table.assign(value_high=table["value_low"], swing=0.0)
    titles = [ax.get_title() for ax in tornado_chart(nothing).axes if ax.get_visible()]
    assert len(titles) == 3  # nothing moved: every figure, not an empty page


def test_the_backlog_chart_marks_where_its_median_reaches_zero():
    """backlog.png's median looked cleared mid-April against a P50 clearance of
    13 May: with type-1 quantiles the median reaches 0 on the P50 clearance
    date, and the chart marks and says so (its last hundreds are invisible)."""
    from conftest import tiny

    import migsim
    from migsim.output.plots import backlog_fan_chart, median_zero_date

    results = migsim.run(tiny(), 9, seed=2)
    bands = results.bands("remaining")
    zero = median_zero_date(bands)
    assert zero.date().isoformat() == results.summary["clearance_date"]["p50"]
    labels = backlog_fan_chart(bands, "tiny").axes[0].get_legend_handles_labels()[1]
    assert any(label.startswith("median reaches 0: ") for label in labels)
    assert "the P50\nclearance date" in labels[-1]


@pytest.mark.parametrize("minticks", [2, 3])
@pytest.mark.parametrize("maxticks", [4, 5, 8])
def test_date_ticks_are_placed_without_a_warning_over_any_span(minticks, maxticks):
    """A date axis of few ticks over 2-3 years made matplotlib warn on the
    console that it could not pick an interval (the full fleet's report, its
    tail panel and its charts by scenario); `date_locator` lets its monthly
    steps give enough ticks, and a year or more marks at least two dates (a
    yearly step tried first marked one, labelled "00:00")."""
    import warnings

    import matplotlib.pyplot as plt

    from migsim.output.plots import date_locator

    end = pd.Timestamp("2024-12-31")
    fig, ax = plt.subplots(figsize=(3, 2))
    try:
        for days in range(10, 3000, 9):
            ax.set_xlim(end - pd.Timedelta(days=days), end)
            ax.xaxis.set_major_locator(date_locator(minticks, maxticks))
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                ticks = ax.xaxis.get_majorticklocs()
            low, high = ax.get_xlim()
            shown = [t for t in ticks if low <= t <= high]
            assert len(shown) <= max(maxticks, 2 * minticks + 1) + 1, days
            assert len(shown) >= (2 if days >= 365 else 1), days  # one: "00:00"
    finally:
        plt.close(fig)
