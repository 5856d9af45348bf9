"""Charts draw off-screen without pyplot: a caller's backend and figures are theirs."""

from __future__ import annotations

import subprocess
import sys


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
