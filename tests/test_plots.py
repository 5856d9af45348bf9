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
