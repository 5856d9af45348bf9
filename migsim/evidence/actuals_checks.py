"""Actuals' checks across rows and columns: what one cell cannot show.

Outcomes within attempts, counts within their cohort, resolutions within their
causes, dates in order, cumulative counts that never fall, migrated
installations that never fall nor outnumber their cohort. Each refusal is an
`ActualsError` naming the file, the row and the column (`migsim.evidence.actuals`
reads the file and calls them). `check_reported` is the forecast's: per-cohort
actuals that never mention a cohort already eligible on the state's day.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from migsim.common.errors import ActualsError
from migsim.model.scenario import Scenario

if TYPE_CHECKING:
    from migsim.evidence.actuals import Actuals

__all__ = [
    "COARSE_COLUMN",
    "OUTCOME_COLUMNS",
    "check_cohorts",
    "check_reported",
    "check_rows",
    "first",
    "largest_size",
    "magnitude",
    "plain",
]

#: The first-level outcome columns, in `OUTCOMES` order; they sum to ``attempts``.
OUTCOME_COLUMNS = ("successes", "stalls", "rollbacks", "fix_forwards", "dumbs")
COARSE_COLUMN = "cumulative_migrated"


def check_rows(
    columns: dict[str, np.ndarray],
    rows: np.ndarray,
    shown: str,
    present: tuple,
    coarse: bool,
) -> None:
    """The checks of the counts as written: outcomes within attempts, dates in
    order per cohort, a cumulative count that never falls."""
    if "attempts" in present and any(c in present for c in OUTCOME_COLUMNS):
        _outcomes_within_attempts(columns, rows, shown, present)
    _dates_in_order(columns, rows, shown)
    if coarse:
        _cumulative_never_falls(columns, rows, shown)


def check_cohorts(
    columns: dict[str, np.ndarray],
    rows: np.ndarray,
    shown: str,
    scenario: Scenario,
    present: tuple,
    unit: str,
) -> None:
    """The checks against the scenario's cohorts, on counts in installations:
    each count within its cohort, resolutions within their causes, migrated
    installations never falling nor outnumbering their cohort."""
    _within_cohorts(columns, rows, shown, scenario, present, unit)
    _resolutions_within_causes(columns, rows, shown, scenario, present)
    _migrated_within_cohorts(columns, rows, shown, scenario, present, unit)


def first(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _outcomes_within_attempts(
    columns: dict[str, np.ndarray], rows: np.ndarray, shown: str, present: tuple
) -> None:
    outcomes = [c for c in OUTCOME_COLUMNS if c in present]
    total = np.sum([columns[c] for c in outcomes], axis=0)  # at least one present
    over = total > columns["attempts"]
    if over.any():
        i = first(over)
        raise ActualsError(
            f"{shown}: row {rows[i]}, column attempts: {', '.join(outcomes)} sum to "
            f"{plain(total[i])}, more than attempts ({plain(columns['attempts'][i])})"
        )


def _within_cohorts(
    columns: dict[str, np.ndarray],
    rows: np.ndarray,
    shown: str,
    scenario: Scenario,
    present: tuple,
    unit: str,
) -> None:
    """No count can exceed the installations it is about.

    Each installation is attempted at most once a day, and is in one state at a
    time, so a day's flow or state of a cohort is at most the cohort's size (the
    programme's, for programme-wide rows); so is a cumulative count.
    """
    sizes = {c.name: largest_size(c) for c in scenario.cohorts}
    cohorts = columns["cohort"]
    limit = np.array([sizes.get(c, sum(sizes.values())) for c in cohorts], dtype=float)
    limit = limit * _stretch(scenario, unit)
    whose = np.array(
        [f"cohort {c}'s" if c in sizes else "the scenario's" for c in cohorts]
    )
    slack = 1e-6 * np.maximum(limit, 1.0)  # meters / meters_per_installation
    for column in present:
        over = columns[column] > limit + slack
        if over.any():
            i = first(over)
            value = columns[column][i]
            if unit == "meters":
                value *= scenario.meters_per_installation or 1.0
            raise ActualsError(
                f"{shown}: row {rows[i]}, column {column}: {magnitude(value)} "
                f"{unit} is more than {whose[i]} {limit[i]:,.0f} installations"
            )


def _migrated_within_cohorts(
    columns: dict[str, np.ndarray],
    rows: np.ndarray,
    shown: str,
    scenario: Scenario,
    present: tuple,
    unit: str,
) -> None:
    """Migrated installations, as backtests and forecasts read them, never fall
    and never outnumber their cohort.

    From the end-of-day states, migrated + impaired (an installation migrated
    stays migrated: a fix forward is restored to migrated); from daily flows,
    the running sum of successes, stall completions and fix forwards (those
    reported). A
    backtest scored its forecasts against either without a word (2,700
    migrated of a cohort of 1,000; a total falling from 500 to 100).
    """
    gains = [
        c for c in ("successes", "stall_completions", "fix_forwards") if c in present
    ]
    if "migrated" in present and "impaired" in present:
        what, states, column = "migrated + impaired", True, "migrated"
        values = columns["migrated"] + columns["impaired"]
    elif gains:
        what, states, column = f"{' + '.join(gains)} so far", False, gains[0]
        values = np.sum([columns[c] for c in gains], axis=0)
    else:
        return
    cohorts = pd.Series(columns["cohort"])
    stretch = _stretch(scenario, unit)
    for name, index in cohorts.groupby(cohorts, sort=False).groups.items():
        at = np.asarray(index)
        series = values[at] if states else np.cumsum(values[at])
        if states and (np.diff(series) < 0).any():
            k = first(np.diff(series) < 0) + 1
            raise ActualsError(
                f"{shown}: row {rows[at[k]]}, column {column}: {what} is "
                f"{plain(series[k])}, below the {plain(series[k - 1])} before it "
                f"for cohort {name} (an installation migrated stays migrated)"
            )
        size = largest_size(scenario.cohort(str(name)))
        limit = size * stretch * (1 + 1e-6)
        over = series > limit
        if over.any():
            k = first(over)
            raise ActualsError(
                f"{shown}: row {rows[at[k]]}, column {column}: {what} is "
                f"{plain(round(series[k], 6))} installations, more than cohort "
                f"{name}'s {size:,}"
            )


def _stretch(scenario: Scenario, unit: str) -> float:
    """How far above its size a cohort's count in meters may read: actuals in
    meters are converted at the point ratio, and the true one may be as high
    as the range's top."""
    ratios = scenario.meters_per_installation_range
    if unit == "meters" and ratios is not None and scenario.meters_per_installation:
        return max(1.0, ratios.high / scenario.meters_per_installation)
    return 1.0


def largest_size(cohort) -> int:
    """A cohort's size, or the top of its range when it is uncertain."""
    size = getattr(cohort, "installations_range", None)
    return (
        max(cohort.installations, size.high)
        if size is not None
        else (cohort.installations)
    )


def magnitude(value: float) -> str:
    return plain(value) if abs(value) < 1e15 else f"{value:.3g}"


#: A resolution and what it resolves: stalls complete or fail, fix forwards are
#: restored; neither can run ahead of its cause (plus what was there at the start).
_RESOLVES = (
    (("stall_completions", "stall_failures"), "stalls", "stalled"),
    (("restorations",), "fix_forwards", "impaired"),
)


def _resolutions_within_causes(
    columns: dict[str, np.ndarray],
    rows: np.ndarray,
    shown: str,
    scenario: Scenario,
    present: tuple,
) -> None:
    """Cumulative stall completions (and failures) stay within cumulative stalls,
    restorations within fix forwards, per cohort, counting the cohort's initial
    state; checked from the scenario's first day only (earlier causes are unknown)."""
    cohorts = pd.Series(columns["cohort"]).fillna("")
    start = np.datetime64(scenario.start_date, "ns")
    for effects, cause, state in _RESOLVES:
        if cause not in present or not any(e in present for e in effects):
            continue
        done = np.sum([columns[e] for e in effects if e in present], axis=0)
        for name, index in cohorts.groupby(cohorts, sort=False).groups.items():
            at = np.asarray(index)
            if not name or columns["date"][at[0]] != start:
                continue
            cohort = scenario.cohort(name)
            before = cohort.initial_state.count(state) if cohort.initial_state else 0
            over = np.cumsum(done[at]) > np.cumsum(columns[cause][at]) + before
            if over.any():
                i = at[first(over)]
                named = " + ".join(e for e in effects if e in present)
                raise ActualsError(
                    f"{shown}: row {rows[i]}, column {effects[0]}: {named} so far "
                    f"exceed {cause} so far for cohort {name} (a {state} "
                    "installation resolves once)"
                )


def _dates_in_order(
    columns: dict[str, np.ndarray], rows: np.ndarray, shown: str
) -> None:
    dates = pd.Series(columns["date"])
    key = pd.Series(columns["cohort"]).fillna("")
    previous = dates.groupby(key, sort=False).shift(1)
    bad = (previous.notna() & (dates <= previous)).to_numpy()
    if not bad.any():
        return
    i = first(bad)
    when, before = pd.Timestamp(dates[i]).date(), pd.Timestamp(previous[i]).date()
    cohort = columns["cohort"][i]
    whose = f" for cohort {cohort}" if cohort else ""
    problem = "repeats" if when == before else f"follows {before}"
    raise ActualsError(
        f"{shown}: row {rows[i]}, column date: {when} {problem}{whose} "
        "(dates must increase)"
    )


def _cumulative_never_falls(
    columns: dict[str, np.ndarray], rows: np.ndarray, shown: str
) -> None:
    """Refuse a cumulative count below the one before it (of its cohort):
    backtests scored forecasts against such a file without a word."""
    values = pd.Series(columns[COARSE_COLUMN])
    key = pd.Series(columns["cohort"]).fillna("")
    previous = values.groupby(key, sort=False).shift(1)
    bad = (previous.notna() & (values < previous)).to_numpy()
    if not bad.any():
        return
    i = first(bad)
    cohort = columns["cohort"][i]
    whose = f" of cohort {cohort}" if cohort else ""
    raise ActualsError(
        f"{shown}: row {rows[i]}, column {COARSE_COLUMN}: {plain(values[i])} is "
        f"below the {plain(previous[i])} before it{whose} (a cumulative count "
        "never falls)"
    )


def check_reported(scenario: Scenario, actuals: Actuals, as_of: date) -> None:
    """Refuse per-cohort actuals that never mention a cohort the scenario has
    eligible by ``as_of`` (from its start, or a fixed ``eligible_from`` on or
    before it).

    Its state would have been every installation still to do, as if nothing
    had happened to it, even when the scenario had it migrating for months.
    Simulating its own prior from the start beside the others' actuals is not
    something a state on one day can hold, and the file most likely left it
    out by mistake; a row of 0 says it had not started. A cohort whose start
    is uncertain or gated may not have started: it stays pending, its start
    drawn by each replication.
    """
    if actuals.frame.empty or not actuals.per_cohort:
        return
    seen = set(actuals.frame["cohort"].astype(str))
    missing = [
        (c.name, c.eligible_from or scenario.start_date)
        for c in scenario.cohorts
        if c.name not in seen
        and (c.eligible_from is None or isinstance(c.eligible_from, date))
        and (c.eligible_from or scenario.start_date) <= as_of
    ]
    if missing:
        names = ", ".join(f"{name} (eligible from {when})" for name, when in missing)
        raise ActualsError(
            f"{actuals.path}: column cohort: no rows up to {as_of} for "
            f"{names}: the forecast would take it as untouched; add its "
            "figures (a row of 0 if nothing had happened to it)"
        )
