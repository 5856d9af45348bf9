"""Exports for spreadsheets: the bands, a weekly projection, and .xlsx workbooks.

A planner pastes a forecast into the programme's own workbook, so ``migsim run
-o`` writes beside its usual files:

- ``bands.csv``: per date and cohort (``all`` first, then each cohort), the P5,
  P10, P50, P90 and P95 across replications of the backlog (installations not
  yet resolved) and of cumulative migrated;
- ``weekly.csv``: per week (ending Sunday, and the horizon's last day), P10,
  P50 and P90 of cumulative migrated and of the backlog, all cohorts, and the
  week's days (7, fewer for a part week);
- ``results.xlsx``: the same tables with the clearance dates and risk figures
  (sheets ``summary``, ``weekly``, ``bands``, ``replications``), and ``run``:
  the migsim version, seed, replications, scenario and its sha256, command;
- ``bands_meters.csv``, when the scenario states ``meters_per_installation``:
  ``bands.csv`` in meters, each replication at its own ratio (DCC counts
  meters; the full fleet is stated in them).

``migsim compare -o`` writes ``comparison.csv`` (every figure and statistic of
each scenario, its value beside the first scenario's, the paired difference and
its 95% interval) and ``comparison.xlsx`` (with each scenario's own dates, and
``run``: the migsim version, seed, replications, each scenario's sha256 and the
command).
Overall bands are quantiles of each replication's all-cohort total, as
everywhere in migsim; every quantile is type 1 (a value a replication had).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from migsim.output.xlsx import Unsupported, column_width, write_workbook
from migsim.results.units import drawn_ratios, meters_ratios

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.evidence.intervals import RunLike
    from migsim.output.painter import Painter

__all__ = [
    "BAND_QUANTILES",
    "bands_table",
    "comparison_table",
    "meters_bands_table",
    "provenance_table",
    "scenario_dates_table",
    "summary_table",
    "weekly_table",
    "write_comparison_tables",
    "write_run_tables",
]

BAND_QUANTILES = (0.05, 0.1, 0.5, 0.9, 0.95)
_SERIES = {"remaining": "backlog", "cumulative_migrated": "cumulative_migrated"}


def _cohort_bands(
    run: RunLike, series: str, scales: Sequence[np.ndarray | None] = (None,)
) -> list[dict[str | None, pd.DataFrame]]:
    """A series' bands, overall (``None``) and per cohort, at each of
    ``scales`` (`Results.cohort_bands_at`): from one read of the daily rows
    where the run offers it."""
    every = getattr(run, "cohort_bands_at", None)
    if every is not None:
        return every(series, BAND_QUANTILES, scales)
    cohorts = (None, *run.cohort_names)
    return [
        {c: run.bands(series, c, BAND_QUANTILES, s) for c in cohorts} for s in scales
    ]


def _scales(run: RunLike) -> list[np.ndarray | None]:
    """The counts as they are, and with drawn ratios the meters at them."""
    ratios = drawn_ratios(run)
    return [None] if ratios is None else [None, ratios]


def bands_table(
    run: RunLike, by_series: dict[str, dict[str | None, pd.DataFrame]] | None = None
) -> pd.DataFrame:
    """``date, cohort, backlog_p5 ... backlog_p95, cumulative_migrated_p5 ...``.

    ``by_series``: the series' `_cohort_bands` where the caller has them already.
    """
    by_series = dict(by_series or {})
    for series in _SERIES:
        if series not in by_series:
            by_series[series] = _cohort_bands(run, series)[0]
    frames = []
    for cohort in (None, *run.cohort_names):
        frame = pd.DataFrame({"date": run.dates.date, "cohort": cohort or "all"})
        for series, prefix in _SERIES.items():
            bands = by_series[series][cohort]
            for column in bands.columns[1:]:
                frame[f"{prefix}_{column}"] = bands[column].to_numpy()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def meters_bands_table(
    run: RunLike,
    bands: pd.DataFrame,
    in_meters: dict[str, dict[str | None, pd.DataFrame]] | None = None,
) -> pd.DataFrame | None:
    """`bands_table` in meters, or None when the scenario states no
    ``meters_per_installation``.

    Each replication's counts at its own ratio (`meters_ratios`): with a
    ``meters_per_installation_range`` the quantiles are taken over those
    (``in_meters``: each series' bands at them, where the caller has them),
    so the bands carry the ratio's uncertainty; with a fixed ratio they are
    the installations' ``bands`` times it. Rounded to whole meters.
    """
    ratios = meters_ratios(run)
    if ratios is None:
        return None
    drawn = drawn_ratios(run)
    if drawn is None:
        out = bands.copy()
        counts = out.columns[2:]
        ratio = float(ratios[0]) if len(ratios) else 0.0
        out[counts] = (out[counts] * ratio).round().astype("int64")
        return out
    if in_meters is None:
        in_meters = {s: _cohort_bands(run, s, [drawn])[0] for s in _SERIES}
    out = bands_table(run, in_meters)
    counts = out.columns[2:]
    out[counts] = out[counts].round().astype("int64")
    return out


def weekly_table(run: RunLike, bands: pd.DataFrame | None = None) -> pd.DataFrame:
    """``week_ending``, P10/P50/P90 of cumulative migrated and of the backlog,
    and ``days``.

    Each value is the quantile across replications at the week's last day
    (Sunday, or the horizon's last day for a final part week). ``days`` is how
    many simulated days the row's week holds: 7, or fewer for a part week at
    either end (a horizon ending on a Monday gives a last row of 1 day).
    """
    if bands is None:
        bands = bands_table(run)
    overall = bands[bands["cohort"] == "all"].reset_index(drop=True)
    days = pd.to_datetime(overall["date"])
    keep = (days.dt.day_of_week == 6) | (days.index == len(days) - 1)
    weekly = overall[keep.to_numpy()]
    columns = {"date": "week_ending"}
    out = weekly[["date"]].rename(columns=columns)
    for prefix in ("cumulative_migrated", "backlog"):
        for stat in ("p10", "p50", "p90"):
            out[f"{prefix}_{stat}"] = weekly[f"{prefix}_{stat}"].to_numpy()
    # last: the columns before it keep the places they had
    ends = weekly.index.to_numpy()
    out["days"] = ends - [-1, *ends[:-1]]
    return out.reset_index(drop=True)


def summary_table(run: RunLike) -> pd.DataFrame:
    """One row per cohort (``all`` first): clearance dates and risk figures."""
    from migsim.output.report_sections import RISK_FIGURES

    summary = run.summary
    rows = []
    nodes = [("all", summary)] + [
        (name, summary["cohorts"][name]) for name in run.cohort_names
    ]
    for cohort, node in nodes:
        row: dict[str, Any] = {"cohort": cohort}
        row["cleared_share"] = node["cleared_share"]
        for stat, value in node["clearance_date"].items():
            row[f"clears_{stat}"] = _date_or_text(value)
        for name in RISK_FIGURES:
            stats = node["figures"].get(name)
            if stats is None:
                continue
            for stat in ("p50", "p90", "mean"):
                row[f"{name}_{stat}"] = stats.get(stat)
        rows.append(row)
    return pd.DataFrame(rows)


def _date_or_text(value: str | None) -> date | str | None:
    """An ISO date as a date (a spreadsheet date), "after ..." kept as text."""
    if value is None or value.startswith("after"):
        return value
    return date.fromisoformat(value)


def write_run_tables(
    run: RunLike,
    folder: Path,
    by_series: dict[str, list[dict[str | None, pd.DataFrame]]] | None = None,
) -> None:
    """Write ``bands.csv``, ``weekly.csv``, ``results.xlsx`` and (with a
    ``meters_per_installation``) ``bands_meters.csv`` into ``folder``.

    Needs the daily rows (a run with ``--no-daily`` kept none in memory gets
    only the summary sheet). ``by_series``: each series' `_cohort_bands` at
    `_scales`, where the caller has them already.
    """
    folder = Path(folder)
    sheets: dict[str, pd.DataFrame] = {"summary": summary_table(run)}
    if getattr(run, "has_daily", True):
        scales = _scales(run)
        at = dict(by_series or {})
        for series in _SERIES:  # one read a series, at every scale
            if series not in at:
                at[series] = _cohort_bands(run, series, scales)
        bands = bands_table(run, {s: at[s][0] for s in _SERIES})
        weekly = weekly_table(run, bands)
        bands.to_csv(folder / "bands.csv", index=False)
        weekly.to_csv(folder / "weekly.csv", index=False)
        in_meters = {s: at[s][1] for s in _SERIES} if len(scales) > 1 else None
        meters = meters_bands_table(run, bands, in_meters)
        if meters is not None:
            meters.to_csv(folder / "bands_meters.csv", index=False)
        sheets["weekly"] = weekly
        sheets["bands"] = bands
    replications = getattr(run, "replications", None)
    if isinstance(replications, pd.DataFrame):
        sheets["replications"] = replications
    sheets["run"] = provenance_table(run.summary)
    _write_xlsx(folder / "results.xlsx", sheets)


def provenance_table(
    record: dict[str, Any], scenarios: Sequence[tuple[str, Any]] | None = None
) -> pd.DataFrame:
    """What made a workbook's numbers, from its record (a run's summary or a
    comparison): the migsim version and source sha256, seed (as text: a
    64-bit seed is more digits than a spreadsheet number keeps),
    replications, the ``scenarios`` rows (default: the run's scenario name
    and sha256), and the command."""
    if scenarios is None:
        scenarios = [
            ("scenario", record["scenario"]["name"]),
            ("scenario_sha256", record["scenario_sha256"]),
        ]
    rows = [
        ("migsim_version", record["migsim_version"]),
        ("migsim_source_sha256", record.get("migsim_source_sha256")),
        ("seed", str(record["seed"])),
        ("replications", record["replications"]),
        *scenarios,
    ]
    if "command" in record:
        rows.append(("command", record["command"]))
    return pd.DataFrame(rows, columns=["field", "value"])


def write_run_outputs(
    results: Any, folder: Path, painter: Painter | None = None
) -> None:
    """The output layer's files of a run folder: ``backlog.png`` and the tables.

    Passed by the CLI as `Results.write`'s ``charts``, so they are written into
    the staging folder and appear with the rest, or not at all. ``painter``:
    the process made ready to draw the chart when the run started
    (`migsim.output.painter.chart_painter`), if any.
    """
    from migsim.output.run_charts import charts_aside

    by_series, backlog = None, None
    if results.has_daily:  # the backlog's bands: read once, for chart and tables
        by_series = {"remaining": _cohort_bands(results, "remaining", _scales(results))}
        backlog = by_series["remaining"][0][None]
    with charts_aside(results, folder, backlog, painter):  # drawn in another process
        write_run_tables(results, folder, by_series)


# --------------------------------------------------------------------------- compare
def comparison_table(
    comparison: dict[str, Any], runs: Sequence[RunLike]
) -> pd.DataFrame:
    """Every figure and statistic of each scenario against the first.

    Columns: ``scenario, figure, statistic, value, first_value, diff,
    ci95_low, ci95_high, clear`` (``yes`` when the interval excludes zero);
    clearance rows also give ``date`` and ``first_date``.
    """
    first = comparison["first"]
    scenarios = {r.scenario.name: r.scenario for r in runs}
    base = comparison["scenarios"][first]["figures"]
    rows = []
    for name, entry in comparison["scenarios"].items():
        if name == first:
            continue
        for figure, stats in entry["figures"].items():
            for stat, item in stats.items():
                ci = item.get("ci95") or [None, None]
                row = {
                    "scenario": name,
                    "figure": figure,
                    "statistic": stat,
                    "value": item.get("value"),
                    "first_value": base[figure][stat].get("value"),
                    "diff": item.get("diff"),
                    "ci95_low": ci[0],
                    "ci95_high": ci[1],
                    "clear": _clear(item),
                    "date": None,
                    "first_date": None,
                }
                if figure == "clearance_day" and stat != "mean":
                    row["date"] = _day_date(scenarios.get(name), row["value"])
                    row["first_date"] = _day_date(
                        scenarios.get(first), row["first_value"]
                    )
                rows.append(row)
    return pd.DataFrame(rows)


def _clear(item: dict[str, Any]) -> str:
    ci = item.get("ci95")
    if item.get("diff") is None or ci is None or None in ci:
        return "undefined"
    return "yes" if ci[0] > 0 or ci[1] < 0 else "no"


def _day_date(scenario: Any, day: float | None) -> date | None:
    if scenario is None or day is None:
        return None
    return scenario.date_of(int(day))


def scenario_dates_table(
    runs: Sequence[RunLike], by: Sequence[date] = ()
) -> pd.DataFrame:
    """Each scenario's own clearance dates (P10, P50, P90), cleared share and
    P(cleared by) each ``by`` date."""
    rows = []
    for run in runs:
        summary = run.summary
        row: dict[str, Any] = {"scenario": run.scenario.name}
        for stat in ("p10", "p50", "p90"):
            row[f"clears_{stat}"] = _date_or_text(summary["clearance_date"][stat])
        row["cleared_share"] = summary["cleared_share"]
        days = run.clearance_days()
        for when in by:
            limit = run.scenario.day_of(when)
            row[f"p_cleared_by_{when.isoformat()}"] = float((days <= limit).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def write_comparison_tables(
    comparison: dict[str, Any],
    runs: Sequence[RunLike],
    folder: Path,
    by: Sequence[date] = (),
) -> None:
    """Write ``comparison.csv`` and ``comparison.xlsx`` into ``folder``."""
    folder = Path(folder)
    table = comparison_table(comparison, runs)
    table.to_csv(folder / "comparison.csv", index=False)
    scenarios = [
        (f"scenario_sha256 {name}", entry["scenario_sha256"])
        for name, entry in comparison["scenarios"].items()
    ]
    _write_xlsx(
        folder / "comparison.xlsx",
        {
            "scenarios": scenario_dates_table(runs, by),
            "differences": table,
            "run": provenance_table(comparison, scenarios),
        },
    )


def _write_xlsx(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    """A workbook of ``sheets``; dates are spreadsheet dates, columns sized.

    Written directly (`migsim.output.xlsx`: the same file, far faster and in
    less memory); through pandas and openpyxl only for what that cannot write.
    """
    try:
        write_workbook(path, sheets)
    except Unsupported:
        _write_xlsx_with_pandas(path, sheets)


def _write_xlsx_with_pandas(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    """The same workbook through pandas and openpyxl (slow; handles anything)."""
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            sheet.freeze_panes = "A2"
            for i, column in enumerate(frame.columns, start=1):
                width = column_width(column)
                sheet.column_dimensions[sheet.cell(1, i).column_letter].width = width
