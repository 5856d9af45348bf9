"""Backtests: forecasts made in the past, scored against what happened next.

A backtest makes forecasts as of one or more dates (`forecast_as_of`; by default
as of the scenario's start, i.e. the forecast a planner would have made before
anything happened) and scores each against the actual cumulative migrated on
every later reported date: the share of points inside the P10-P90 and P5-P95
bands, the median absolute error of the P50 in installations and in days, the
continuous ranked probability score (`migsim.common.stats.crps_ensemble`) and a PIT
histogram. A point after the horizon end counts as outside the bands.
`migsim.output.evidence_files` draws and writes the result.

Calibration alone is not enough: a band wide enough covers everything. So each
backtest also reports **sharpness**, to be maximised subject to calibration:

- the mean width of the P5-P95 band, in installations and relative to the
  actual value it should hold (``band_width_p5_p95``,
  ``band_width_p5_p95_relative``);
- the CRPS against that of a **naive forecast**, the persistence of the recent
  daily rate (the actual cumulative migrated on the as-of date plus, per day
  ahead, its mean daily gain over the last 28 days, capped at the scenario's
  installations), and the skill
  ``1 - CRPS / CRPS(naive)`` (1: perfect; 0: no better than the naive; below 0:
  worse). A point forecast's CRPS is its absolute error. From the scenario's
  start there is no recent rate, so no naive forecast: skill counts only the
  points of forecasts made after actuals had arrived.

A rolling backtest (``every="month"``, ``migsim backtest --every month``) makes
a forecast as of the start and the end of every month with actuals, and
`Backtest.rolling` tabulates how the band narrows as actuals arrive.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from migsim import __version__
from migsim.common.errors import MigsimError
from migsim.common.source import source_sha256
from migsim.common.stats import clopper_pearson, crps_ensemble, json_number, quantile
from migsim.evidence.actuals import Actuals, as_of_date
from migsim.evidence.calibrate import DEFAULT_PRIOR_STRENGTH
from migsim.evidence.forecast import Forecast, check_as_of, forecast_as_of
from migsim.model.limits import run_seed
from migsim.model.scenario import Scenario, load_scenario

__all__ = [
    "Backtest",
    "backtest",
    "monthly_as_of",
    "naive_forecast",
    "score",
    "score_points",
]

_PIT_BINS = 10
#: The naive forecast persists the mean daily gain over this many days.
NAIVE_WINDOW_DAYS = 28
#: One-sided binomial test level for calling a band over- or underconfident.
_VERDICT_LEVEL = 0.05


# --------------------------------------------------------------------------- backtest
@dataclass
class Backtest:
    """Forecasts as of one or more dates, scored against the later actuals."""

    scenario: Scenario
    actuals: Actuals
    forecasts: list[Forecast]
    points: pd.DataFrame  # one row per (as_of, actual point after it)
    replications: int
    seed: int

    @cached_property
    def figures(self) -> dict[str, Any]:
        """Pooled over every as-of date: coverage, errors, CRPS, PIT, the verdict."""
        return score(self.points)

    @property
    def shown_in(self) -> tuple[float, str]:
        """``(factor, unit)`` for the counts a reader sees: against actuals in
        meters, the scores (held in installations at the point ratio, as the
        actuals were read) times that ratio, in meters; else installations.
        A median error of 409,217 "installations" against a file in meters
        was 654,747 meters."""
        point = self.scenario.meters_per_installation
        if self.actuals.unit == "meters" and point:
            return float(point), "meters"
        return 1.0, "installations"

    def per_as_of(self) -> list[dict[str, Any]]:
        out = []
        for forecast in self.forecasts:
            label = _label(forecast, self.scenario)
            figures = score(self.points[self.points["as_of"] == label])
            figures["as_of"] = label
            figures["learned"] = forecast.calibration.learned()
            figures["n_attempts_learned_from"] = forecast.calibration.n_attempts
            figures["notes"] = forecast.notes
            out.append(figures)
        return out

    def summary(self) -> dict[str, Any]:
        """What ``backtest.json`` holds."""
        return {
            "migsim_version": __version__,
            "migsim_source_sha256": source_sha256(),
            "scenario": self.scenario.name,
            "scenario_sha256": self.scenario.sha256,
            **self.actuals.provenance(),
            "seed": self.seed,
            "replications": self.replications,
            "as_of": [_label(f, self.scenario) for f in self.forecasts],
            **self.figures,
            "forecasts": self.per_as_of(),
        }

    def text(self) -> str:
        f = self.figures
        lines = [
            f"Backtest of {self.scenario.name} against {self.actuals.describe()}",
            f"{self.replications} replications per forecast, seed {self.seed}; "
            "forecasts as of "
            + ", ".join(_label(x, self.scenario) for x in self.forecasts),
            "",
        ]
        if not f["n_points"]:
            lines.append(f["verdict"])
            return "\n".join(lines)
        factor, unit = self.shown_in
        lines += [
            f"  actual points scored                {f['n_points']:>10,}"
            + (
                f"  ({f['n_beyond_horizon']} after the horizon end, counted outside)"
                if f["n_beyond_horizon"]
                else ""
            ),
            f"  inside P10-P90 (nominal 80%)        {f['coverage_p10_p90']:>10.0%}",
            f"  inside P5-P95 (nominal 90%)         {f['coverage_p5_p95']:>10.0%}",
            f"  median abs. error of P50            "
            f"{_num(_times(f['mae_installations'], factor)):>10} {unit}",
            f"  median abs. error of P50            {_num(f['mae_days']):>10} days"
            + (
                ""
                if f["mae_days"] is not None
                else " (the P50 curve never reaches most actual points)"
            ),
            *_sharpness_lines(f, factor, unit),
            "",
            f["verdict"],
        ]
        if len(self.forecasts) > 1:
            lines += ["", *_rolling_lines(self.rolling())]
        return "\n".join(lines)

    def rolling(self) -> pd.DataFrame:
        """One row per as-of date: how the forecast narrows as actuals arrive.

        Columns ``as_of, n_points, band_width_p5_p95_relative,
        coverage_p5_p95, coverage_p10_p90, crps_mean, crps_skill``.
        """
        rows = []
        for figures in self.per_as_of():
            rows.append({k: figures[k] for k in _ROLLING_COLUMNS})
        return pd.DataFrame(rows, columns=list(_ROLLING_COLUMNS))

    def panels(self) -> list[dict[str, Any]]:
        """Per forecast, what ``backtest.png`` draws: its as-of date, the bands of
        cumulative migrated, the actual points before and after that date, and
        the number of those after it scored and the share inside P10-P90 (as in
        ``backtest.json``, so the chart's panel titles and the file agree)."""
        migrated = (
            self.actuals.cumulative_migrated()
            if self.actuals.can_track_migrated()
            else pd.DataFrame({"date": [], "cumulative_migrated": []})
        )
        panels = []
        for forecast in self.forecasts:
            cut = pd.Timestamp(forecast.as_of or self.scenario.start_date)
            bands = forecast.cumulative_bands((0.05, 0.1, 0.5, 0.9, 0.95))
            label = _label(forecast, self.scenario)
            scored = score(self.points[self.points["as_of"] == label])
            panels.append(
                {
                    "as_of": label,
                    "bands": bands,
                    "before": migrated[migrated["date"] <= cut],
                    "after": migrated[migrated["date"] > cut],
                    "n_points": scored["n_points"],
                    "coverage_p10_p90": scored["coverage_p10_p90"],
                }
            )
        return panels


_ROLLING_COLUMNS = (
    "as_of",
    "n_points",
    "band_width_p5_p95_relative",
    "coverage_p5_p95",
    "coverage_p10_p90",
    "crps_mean",
    "crps_skill",
)


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None or _missing(value) else value * factor


def _sharpness_lines(f: dict[str, Any], factor: float, unit: str) -> list[str]:
    """Sharpness beside calibration: band width, CRPS and its skill, in
    ``unit`` (the counts times ``factor``: `Backtest.shown_in`)."""
    width = _times(f["band_width_p5_p95"], factor)
    relative = f["band_width_p5_p95_relative"]
    lines = [
        f"  mean P5-P95 width                   {_num(width):>10} {unit}"
        + (f" ({relative:.1%} of the actual)" if relative is not None else ""),
        f"  mean CRPS                           "
        f"{_num(_times(f['crps_mean'], factor)):>10} {unit}",
    ]
    if f["crps_skill"] is None:
        why = (
            "no naive forecast: from the start there is no recent rate to persist"
            if not f["n_naive_points"]
            else "the naive forecast hit every point"
        )
        lines.append(f"  CRPS skill against a naive forecast {'-':>10}  ({why})")
        return lines
    lines += [
        f"  mean CRPS of the naive forecast     "
        f"{_num(_times(f['crps_naive_mean'], factor)):>10}"
        f" {unit} (persisting the last {NAIVE_WINDOW_DAYS} days' rate, "
        f"{f['n_naive_points']:,} points)",
        f"  CRPS skill against it               {f['crps_skill']:>10.2f}"
        "  (1 perfect, 0 no better, below 0 worse)",
    ]
    return lines


def _rolling_lines(table: pd.DataFrame) -> list[str]:
    """The rolling table: as-of date against band width, coverage and skill."""
    lines = [
        "How the forecast narrows as actuals arrive:",
        f"  {'as of':<12}{'points':>8}{'P5-P95 width':>14}{'in P5-P95':>11}"
        f"{'in P10-P90':>12}{'CRPS':>12}{'skill':>8}",
    ]
    for row in table.itertuples(index=False):
        lines.append(
            f"  {row.as_of:<12}{row.n_points:>8,}"
            f"{_share(row.band_width_p5_p95_relative):>14}"
            f"{_share(row.coverage_p5_p95):>11}{_share(row.coverage_p10_p90):>12}"
            f"{_num(row.crps_mean):>12}"
            f"{'-' if _missing(row.crps_skill) else f'{row.crps_skill:.2f}':>8}"
        )
    lines.append(
        "  (P5-P95 width relative to the actual; skill of the CRPS against "
        "the naive forecast)"
    )
    return lines


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _share(value: float | None) -> str:
    return "-" if _missing(value) else f"{value:.0%}"


def _label(forecast: Forecast, scenario: Scenario) -> str:
    return (forecast.as_of or scenario.start_date).isoformat()


def _num(value: float | None) -> str:
    if value is None or _missing(value):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def backtest(
    scenario: Scenario | str,
    actuals: Actuals,
    as_of: list[date] | None = None,
    replications: int = 200,
    seed: int | None = None,
    workers: int = 1,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    progress: Callable[[int], None] | None = None,
    every: str | None = None,
) -> Backtest:
    """Forecast as of each date and score every later actual point.

    Parameters
    ----------
    as_of
        Dates the forecasts are made on (default: the scenario's start, with no
        actuals used). A date equal to the start also means "from the start".
    every
        ``"month"``: a rolling backtest, adding the start and the last day of
        every month with actuals (`monthly_as_of`) to ``as_of``.
    progress
        Called with the replications each finished batch adds, over every
        forecast (``replications`` per distinct as-of date).
    """
    sc = load_scenario(scenario)
    seed = sc.seed if seed is None else run_seed(seed)
    if isinstance(as_of, date):  # iterating it said "object is not iterable"
        raise TypeError(f"as_of is a list of dates: [{as_of!r}], not {as_of!r}")
    as_of = [as_of_date(d) for d in as_of or []]
    if not actuals.can_track_migrated():
        actuals.cumulative_migrated()  # raises the ActualsError that says why
    if every is not None:
        as_of += monthly_as_of(sc, actuals, every)
    dates: list[date | None] = (
        [None]
        if not as_of
        else [None if d == sc.start_date else d for d in sorted(set(as_of))]
    )
    observed = actuals.cumulative_migrated()
    _check_scorable(sc, actuals, observed, dates)  # before any forecast runs
    forecasts, frames = [], []
    for when in dates:
        forecast = forecast_as_of(
            sc, actuals, when, replications, seed, workers, prior_strength, progress
        )
        forecasts.append(forecast)
        frames.append(score_points(forecast, observed))
    points = pd.concat(frames, ignore_index=True)
    return Backtest(sc, actuals, forecasts, points, replications, seed)


def _check_scorable(
    scenario: Scenario,
    actuals: Actuals,
    observed: pd.DataFrame,
    dates: list[date | None],
) -> None:
    """Refuse an as-of date with no actual point after it: its forecast has
    nothing to be scored on (the backtest said 'nothing to score' and wrote an
    empty result), or one outside the scenario (refused after the forecasts
    before it had run)."""
    last = observed["date"].max().date() if len(observed) else None
    for when in dates:
        if when is not None:
            check_as_of(scenario, when, actuals)
        if last is None or (when or scenario.start_date) >= last:
            name = actuals.path or "the actuals"
            ends = f"end on {last}" if last is not None else "have no points"
            cut = f"--as-of {when}" if when is not None else "the scenario's start"
            raise MigsimError(
                f"{cut}: no actual point after it to score ({name}: the actuals "
                f"{ends}); give an as-of date before the last actual"
            )


def monthly_as_of(
    scenario: Scenario, actuals: Actuals, every: str = "month"
) -> list[date]:
    """The as-of dates of a rolling backtest: the scenario's start and the last
    day of every month that ends after it and before the last actual date (and
    before the scenario's end), so every forecast has later points to score."""
    if every != "month":
        raise MigsimError(f"--every {every}: only 'month' is supported")
    last = min(actuals.last_date, scenario.end_date)
    out = [scenario.start_date]
    month_end = _month_end(scenario.start_date)
    while month_end < last:
        if month_end > scenario.start_date:
            out.append(month_end)
        month_end = _month_end(month_end + timedelta(days=1))
    return out


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _since(observed: pd.DataFrame) -> pd.Series:
    """Each point's first date at its value: its own, or for a point level with
    the ones before it (a finished programme's last total, month after month)
    the first of them. Scored against that point's date, a forecast that
    finished on time read as months early. Rows of several paths laid end to
    end stay apart (a path starts where the dates go back)."""
    since: list[pd.Timestamp] = []
    previous: tuple[pd.Timestamp, float] | None = None
    for when, value in zip(
        observed["date"], observed["cumulative_migrated"], strict=True
    ):
        level = previous is not None and when > previous[0] and value == previous[1]
        since.append(since[-1] if level else when)
        previous = (when, value)
    return pd.Series(since, index=observed.index, dtype=observed["date"].dtype)


def naive_forecast(observed: pd.DataFrame, cut: date) -> tuple[float, float] | None:
    """The naive forecast as of ``cut``: ``(level, daily rate)``, or ``None``.

    The level is the last actual cumulative migrated on or before ``cut``; the
    rate is the mean daily gain from the latest point at least
    `NAIVE_WINDOW_DAYS` days before it (else the earliest) to it. ``None``
    when fewer than two actual points precede the cut (e.g. from the start).
    """
    before = observed[observed["date"] <= pd.Timestamp(cut)].sort_values("date")
    if len(before) < 2:
        return None
    last = before.iloc[-1]
    window = before[
        before["date"] <= last["date"] - pd.Timedelta(NAIVE_WINDOW_DAYS, "D")
    ]
    first = window.iloc[-1] if len(window) else before.iloc[0]
    days = (last["date"] - first["date"]).days
    if days <= 0:
        return None
    rate = (last["cumulative_migrated"] - first["cumulative_migrated"]) / days
    level = float(last["cumulative_migrated"])
    # the level is the last point's; carry it to the cut at the same rate
    level += rate * (pd.Timestamp(cut) - last["date"]).days
    return level, float(rate)


def score_points(forecast: Forecast, observed: pd.DataFrame) -> pd.DataFrame:
    """Every actual point after the as-of date with the forecast's view of it.

    Parameters
    ----------
    observed
        ``date, cumulative_migrated`` (all cohorts), e.g. `Actuals.cumulative_migrated`.

    Returns
    -------
    pandas.DataFrame
        One row per point: ``as_of, date, actual``, the forecast's ``p5 .. p95``
        on that date, ``beyond_horizon``, ``error_installations`` (P50 - actual),
        ``error_days`` (first day the P50 curve reaches the actual, minus the
        first day the actuals had reached it: the point's own, unless it
        stands level with the points before it), ``crps`` and ``pit``
        (mid-PIT: ties count half); ``naive`` and ``crps_naive``, the naive
        forecast of the point and its CRPS (its absolute error), empty when
        there is none (`naive_forecast`).
    """
    cut = forecast.as_of or forecast.prior.start_date
    since = _since(observed)
    later = observed[observed["date"] > pd.Timestamp(cut)]
    naive = naive_forecast(observed, cut) if forecast.as_of is not None else None
    paths = forecast.cumulative_migrated()
    p50_curve = np.array([quantile(paths[:, d], 0.5) for d in range(paths.shape[1])])
    start = pd.Timestamp(forecast.start_date)
    rows: list[dict[str, Any]] = []
    ensembles: list[np.ndarray] = []
    observed_values: list[float] = []
    for when, actual, first in zip(
        later["date"], later["cumulative_migrated"], since[later.index], strict=True
    ):
        day = (when - start).days
        row: dict[str, Any] = {
            "as_of": cut.isoformat(),
            "date": when.date().isoformat(),
            "actual": float(actual),
        }
        if naive is not None:  # never more than the installations there are
            guess = naive[0] + naive[1] * (when - pd.Timestamp(cut)).days
            guess = min(guess, float(forecast.prior.installations))
            row.update(naive=guess, crps_naive=abs(guess - float(actual)))
        if day >= paths.shape[1]:
            row.update(beyond_horizon=True)
            rows.append(row)
            continue
        values = paths[:, day].astype(float)
        qs = {
            f"p{round(q * 100)}": quantile(values, q)
            for q in (0.05, 0.1, 0.5, 0.9, 0.95)
        }
        reached = np.flatnonzero(p50_curve >= actual)
        row.update(
            qs,
            beyond_horizon=False,
            error_installations=qs["p50"] - actual,
            error_days=(
                float(reached[0] - max((first - start).days, 0))
                if len(reached)
                else math.inf
            ),
            pit=float(
                ((values < actual).sum() + 0.5 * (values == actual).sum()) / len(values)
            ),
        )
        rows.append(row)
        ensembles.append(values)
        observed_values.append(float(actual))
    columns = [
        "as_of",
        "date",
        "actual",
        "p5",
        "p10",
        "p50",
        "p90",
        "p95",
        "beyond_horizon",
        "error_installations",
        "error_days",
        "crps",
        "pit",
        "naive",
        "crps_naive",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    if ensembles:  # one vectorised call: the CRPS of each point's ensemble
        crps = crps_ensemble(np.array(observed_values), np.stack(ensembles))
        frame.loc[~frame["beyond_horizon"].astype(bool), "crps"] = np.asarray(
            crps, float
        )
    return frame


def score(points: pd.DataFrame) -> dict[str, Any]:
    """Coverage, errors, CRPS, PIT histogram and the verdict of scored points.

    ``points`` as `score_points` gives (several forecasts' points may be pooled:
    they are told apart by ``as_of``). A point after the horizon end counts as
    outside both bands and has no error, CRPS or PIT.
    """
    n = len(points)
    beyond = (
        points["beyond_horizon"].astype(bool).to_numpy() if n else np.zeros(0, bool)
    )
    inside = points[~beyond] if n else points
    in80_mask = (
        (
            (points["p10"] <= points["actual"])
            & (points["actual"] <= points["p90"])
            & ~beyond
        )
        if n
        else pd.Series(dtype=bool)
    )
    in80 = int(in80_mask.sum())
    in90 = int(
        ((inside["p5"] <= inside["actual"]) & (inside["actual"] <= inside["p95"])).sum()
    )
    above = int((inside["actual"] > inside["p90"]).sum())
    below = int((inside["actual"] < inside["p10"]).sum())
    pit_counts = (
        np.histogram(inside["pit"].to_numpy(float), bins=_PIT_BINS, range=(0.0, 1.0))[0]
        if len(inside)
        else np.zeros(_PIT_BINS)
    )
    days = inside["error_days"].abs().to_numpy(float) if len(inside) else np.array([])
    # the verdict weighs the points the forecast was uncertain about: once every
    # replication has finished, the band is one number and the actual on it
    settled = (
        ((points["p5"] == points["p95"]) & (points["actual"] == points["p5"])).to_numpy(
            bool
        )
        & ~beyond
        if n
        else np.zeros(0, bool)
    )
    judged = points[~settled] if n else points
    n_effective = _effective_n(judged) if len(judged) else 0.0
    figures = {
        "n_points": int(n),
        "n_beyond_horizon": int(beyond.sum()),
        "coverage_p10_p90": float(in80 / n) if n else None,
        "coverage_p5_p95": float(in90 / n) if n else None,
        "points_above_p90": above,
        "points_below_p10": below,
        "n_settled": int(settled.sum()),
        "n_effective": round(n_effective, 2),
        "mae_installations": json_number(
            np.median(np.abs(inside["error_installations"])) if len(inside) else None,
            4,
            ints=None,
        ),
        "mae_days": json_number(
            float(np.median(days)) if len(days) else None, 4, ints=None
        ),
        "crps_mean": json_number(
            float(inside["crps"].mean()) if len(inside) else None, 4, ints=None
        ),
        **_sharpness(inside),
        "pit_histogram": {
            "edges": [round(i / _PIT_BINS, 2) for i in range(_PIT_BINS + 1)],
            "counts": [int(c) for c in pit_counts],
        },
    }
    judged_in80 = int(in80_mask[~settled].sum()) if n else 0
    figures.update(
        _verdict(
            len(judged), judged_in80, n_effective, above, below, int(settled.sum())
        )
    )
    return figures


def _sharpness(inside: pd.DataFrame) -> dict[str, Any]:
    """Band width (absolute and relative to the actual) and the CRPS skill.

    The relative width counts points with an actual above 0; the skill pools
    the points that have a naive forecast (the same points in both means).
    """
    width = (inside["p95"] - inside["p5"]).to_numpy(float) if len(inside) else []
    actual = inside["actual"].to_numpy(float) if len(inside) else np.array([])
    positive = actual > 0
    relative = (
        float(np.mean(np.asarray(width)[positive] / actual[positive]))
        if positive.any()
        else None
    )
    has_naive = (
        inside["crps_naive"].notna().to_numpy()
        if len(inside) and "crps_naive" in inside
        else np.zeros(len(inside), bool)
    )
    crps = inside["crps"].to_numpy(float)[has_naive] if has_naive.any() else []
    naive = inside["crps_naive"].to_numpy(float)[has_naive] if has_naive.any() else []
    naive_mean = float(np.mean(naive)) if len(naive) else None
    skill = None  # no naive forecast, or a perfect one (skill undefined)
    if naive_mean:
        skill = 1.0 - float(np.mean(crps)) / naive_mean
    return {
        "band_width_p5_p95": json_number(
            float(np.mean(width)) if len(width) else None, 4, ints=None
        ),
        "band_width_p5_p95_relative": json_number(relative, 6, ints=None),
        "n_naive_points": int(has_naive.sum()),
        "crps_naive_mean": json_number(naive_mean, 4, ints=None),
        "crps_skill": json_number(skill, 4, ints=None),
    }


def _effective_n(points: pd.DataFrame) -> float:
    """Independent points the scored points are worth.

    Points of one path are autocorrelated: a path ahead of its forecast stays
    ahead. A forecast's points weigh like n (1 - r) / (1 + r) (an AR(1)
    approximation, at least 1), r the lag-1 autocorrelation of their PITs'
    normal scores: a smooth series, where the inside-or-outside record alone
    read an isolated miss as no persistence at all. Forecasts of one path from
    different dates score the same days and share their errors (a path ahead
    of one is ahead of the next), by an amount one path cannot measure: they
    are worth what the most telling of them is, not their sum. (Summed, 13
    monthly forecasts of one `nov2019_operations` path were "worth" 258 points
    and called it underconfident; over 18 paths its forecasts were not.)
    """
    return max(
        (
            _worth(_normal_scores(group))
            for _, group in points.groupby("as_of", sort=False)
        ),
        default=0.0,
    )


def _normal_scores(points: pd.DataFrame) -> np.ndarray:
    """The points' PITs as standard normal scores (a point beyond the horizon,
    with no PIT, as a miss above: PIT 1)."""
    pit = points["pit"].astype(float).fillna(1.0).to_numpy()
    return stats.norm.ppf(np.clip(pit, 0.005, 0.995))


def _worth(z: np.ndarray) -> float:
    """n (1 - r) / (1 + r) for a series with lag-1 autocorrelation r (1 for a
    constant or short series)."""
    if len(z) < 3 or z.std() == 0:
        return 1.0 if len(z) else 0.0
    r = float(np.corrcoef(z[:-1], z[1:])[0, 1]) if z[:-1].std() and z[1:].std() else 1.0
    r = min(max(r, 0.0), 0.999)
    return min(len(z), max(1.0, len(z) * (1 - r) / (1 + r)))


#: Below this P10-P90 coverage a forecaster is called overconfident whatever the test.
_FAR_BELOW = 0.5
#: A coverage the test cannot reject is called consistent only this close to 80%;
#: further off, the points are too few to tell (one path's record of 54% is no
#: endorsement of an 80% band, though it cannot prove it too narrow either).
_CLOSE = 0.1


def _verdict(
    n: int, inside: int, n_effective: float, above: int, below: int, settled: int = 0
) -> dict[str, Any]:
    """Over- or underconfidence of the 80% band, in words.

    A one-sided binomial test of the coverage against 80% on the effective number
    of points (see `_effective_n`), at the 5% level; a coverage below 50% is
    called overconfident whatever the test, as the covered share is then "far
    fewer" than 80% by any reading. A coverage the test cannot reject is
    called consistent within `_CLOSE` of 80%; further off, the points are too
    few to tell (``overconfident`` None, and the coverages they cannot rule
    out). ``n`` and ``inside`` leave out the ``settled`` points: once every
    replication has finished, the band is one number and the actual on it,
    which says nothing of the band's width.
    """
    if not n:
        text = "No actual point after the as-of date: nothing to score."
        if settled:
            text = (
                f"Nothing to weigh: on all {settled:,} points after the as-of date "
                "every replication had finished, and the actual was their total."
            )
        return {"overconfident": None, "verdict": text}
    share = inside / n
    m = max(1, round(n_effective))
    k = round(share * m)
    low = stats.binom.cdf(k, m, 0.8)
    high = stats.binom.sf(k - 1, m, 0.8)
    missed = above + below
    side = ""
    if missed:
        if above >= 0.75 * missed:
            side = (
                " The programme ran ahead of the forecast: most misses are above "
                "the band."
            )
        elif below >= 0.75 * missed:
            side = (
                " The programme ran behind the forecast: most misses are below "
                "the band."
            )
    worth = (
        f" (correlated: worth about {max(1, round(n_effective))} independent "
        f"point{'s' * (round(n_effective) > 1)}"
    )
    if settled:  # certain, and right: no evidence either way
        worth += (
            f"; {settled:,} more, on which every replication had finished and "
            "the actual was their total, are not weighed"
        )
    worth += ")"
    if share < 0.8 and (low < _VERDICT_LEVEL or share < _FAR_BELOW):
        text = (
            f"Overconfident: the P10-P90 band, nominally 80%, covers only {share:.0%} "
            f"of the {n:,} actual points{worth}; the real outcome is outside what the "
            "forecast allowed for, or the forecast is biased." + side
        )
        over = True
    elif share > 0.8 and high < _VERDICT_LEVEL:
        text = (
            f"Underconfident: the P10-P90 band covers {share:.0%} of the {n:,} actual "
            f"points{worth}, more than its nominal 80%; the forecast is wider than it "
            "needs to be."
        )
        over = False
    elif abs(share - 0.8) <= _CLOSE:
        text = (
            f"Consistent with its stated uncertainty: the P10-P90 band covers "
            f"{share:.0%} of the {n:,} actual points{worth}, against a nominal 80%."
            + side
        )
        over = False
    else:
        lo, hi = clopper_pearson(k, m, 0.95)  # one-sided 95% each: a 90% interval
        text = (
            f"Too few independent points to judge: the P10-P90 band covers "
            f"{share:.0%} of the {n:,} actual points{worth}, against a nominal 80%, "
            f"and so few cannot tell the two apart (any coverage from {lo:.0%} to "
            f"{hi:.0%} fits them, at 90%). Score more paths or a longer record "
            "before trusting the band either way." + side
        )
        over = None
    return {"overconfident": over, "verdict": text}
