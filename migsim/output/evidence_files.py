"""The files `migsim forecast`, `migsim backtest` and `migsim calibrate` write.

The evidence layer returns data (`Forecast`, `Backtest`, `PosteriorCheck`); this
module draws their charts and writes the folders, each staged beside its target
and moved into place whole, so a kill never leaves a half-written folder.
matplotlib loads only when a chart is drawn.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from migsim.common.files import output_dir
from migsim.evidence.backtest import Backtest
from migsim.evidence.calibrate import PosteriorCheck
from migsim.evidence.forecast import Forecast

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

__all__ = [
    "backtest_figure",
    "forecast_figure",
    "posterior_check_figure",
    "save_posterior_check",
    "write_backtest",
    "write_forecast",
]


def _save_png(figure: Figure, save: Callable[[Figure], None]) -> None:
    """Save a chart (an Agg figure outside pyplot: nothing to close after)."""
    save(figure)


# --------------------------------------------------------------------------- forecast
def forecast_figure(forecast: Forecast) -> Figure:
    """The actual backlog up to the as-of date, then the forecast's fan."""
    from migsim.output.plots import forecast_fan_chart

    remaining, bands = forecast.fan()
    return forecast_fan_chart(
        remaining, bands, forecast.as_of or forecast.start_date, forecast.prior.name
    )


def write_forecast(
    forecast: Forecast,
    directory: str | Path,
    *,
    overwrite: bool = False,
    daily: bool = True,
) -> Path:
    """The usual run outputs, with ``backlog.png`` showing actuals then the forecast,
    plus ``calibration.json`` and ``calibrated.yaml``; written atomically."""
    with output_dir(directory, overwrite=overwrite) as out:
        forecast.results.write_into(out, daily=daily)
        _save_png(
            forecast_figure(forecast),
            lambda chart: chart.savefig(out / "backlog.png", dpi=110),
        )
        (out / "calibration.json").write_text(
            json.dumps(forecast.calibration.summary(), indent=2) + "\n",
            encoding="utf-8",
        )
        (out / "calibrated.yaml").write_text(
            forecast.calibration.scenario.to_yaml(), encoding="utf-8"
        )
    return Path(directory)


# --------------------------------------------------------------------------- backtest
def backtest_figure(result: Backtest) -> Figure:
    """Per as-of date the forecast band with the actual points, and the PIT."""
    from migsim.output.backtest_plots import backtest_chart

    factor, unit = result.shown_in
    panels = result.panels()
    if factor != 1.0:  # drawn in the actuals' meters, as the text gives them
        for panel in panels:
            bands = panel["bands"] = panel["bands"].copy()
            for column in bands.columns[1:]:
                bands[column] = bands[column] * factor
            for side in ("before", "after"):
                points = panel[side] = panel[side].copy()
                points["cumulative_migrated"] = points["cumulative_migrated"] * factor
    return backtest_chart(
        panels, result.figures["pit_histogram"]["counts"], result.scenario.name, unit
    )


def write_backtest(
    result: Backtest, directory: str | Path, *, overwrite: bool = False
) -> Path:
    """Write backtest.json, backtest_points.csv, backtest.png and scenario.yaml
    (the scenario as resolved, whose sha256 backtest.json records) atomically."""
    with output_dir(directory, overwrite=overwrite) as out:
        (out / "backtest.json").write_text(
            json.dumps(result.summary(), indent=2) + "\n", encoding="utf-8"
        )
        (out / "scenario.yaml").write_text(result.scenario.to_yaml(), encoding="utf-8")
        result.points.to_csv(out / "backtest_points.csv", index=False)
        _save_png(
            backtest_figure(result),
            lambda chart: chart.savefig(out / "backtest.png", dpi=110),
        )
    return Path(directory)


# --------------------------------------------------------------------------- calibrate
def posterior_check_figure(check: PosteriorCheck) -> Figure:
    """The actual cumulative migrated against the calibrated scenario's bands."""
    from migsim.output.plots import posterior_check_chart

    return posterior_check_chart(check.bands, check.points, check.name)


def save_posterior_check(check: PosteriorCheck, path: str | Path) -> None:
    """Draw the check chart and write it to ``path`` as PNG (any suffix)."""
    _save_png(
        posterior_check_figure(check),
        lambda chart: chart.savefig(path, dpi=110, format="png"),
    )
