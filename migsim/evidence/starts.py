"""What the actuals say of when the cohorts became eligible, and of the
programme-wide delay behind their slips.

- **Dates that have happened.** A cohort that has made attempts by the as-of
  date became eligible on or before its first attempt: its uncertain
  ``eligible_from`` (or the ``opens_on`` of the gate it waits for) becomes that
  day, fixed. A cohort with none yet is known not to have become eligible: a
  slip date gets ``not_before`` the day after the as-of date, a uniform or
  triangular date its ``low`` (approximate: the triangle is cut, not
  conditioned). Programme-wide actuals (no cohort column) that show nothing by
  the as-of date say the same of every cohort; ones that show something say
  only that some cohort had started, not which. Other dates keep their
  distributions (a forecast from a state, `migsim forecast`, conditions them on
  not having passed).
- **The programme-wide delay.** Slips marked ``shared`` are scaled by one
  ``programme_delay`` factor, so a start seen late (or not seen yet) makes a
  large factor likelier, for the dates still to come too: two entries planned
  for 9 Dec 2019 and neither started by 31 Jan 2020 say the programme runs
  late, and the one still waiting should not be drawn as if the plan held.
  Each observation is a window for a date: after the last report that showed
  no attempt, on or before the first that showed one (first attempts are
  taken as the first eligible days, which a weekend can shift by a day or
  two). The factor's posterior given every window, on a grid of its log, is
  fitted back to a lognormal (its log's mean and sd), and each date still to
  come is then drawn given the factor and its own ``not_before``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from migsim.evidence.actuals import Actuals
from migsim.evidence.inputs import InputUpdate
from migsim.model.distributions import TriangularDate, UniformDate
from migsim.model.scenario import Scenario
from migsim.model.uncertainty import SlipDate

__all__ = ["update_starts"]

#: The laws of a date whose chance of falling after a day `_survival` knows.
_DATES = (date, UniformDate, TriangularDate, SlipDate)
#: The grid of the programme factor's log, in prior standard deviations.
_GRID = np.linspace(-8.0, 8.0, 3201)


@dataclass(frozen=True)
class _Window:
    """What the actuals show of the earliest of some dates (one date, or every
    cohort's for programme-wide actuals): later than ``after``, and on or
    before ``by`` (``None``: not bounded that side)."""

    paths: tuple[str, ...]
    after: date | None
    by: date | None


def update_starts(
    scenario: Scenario,
    data: dict[str, Any],
    actuals: Actuals,
    as_of: date,
    sources: dict[str, str],
) -> list[InputUpdate]:
    """Update ``data`` (the scenario's dict, being calibrated) in place: the
    programme delay first (it reads the dates as stated), then the dates."""
    paths = _date_paths(scenario)
    windows = _windows(actuals, as_of, paths)
    updates = _programme_delay(scenario, data, paths, windows, actuals, sources)
    return updates + _dates(data, paths, windows, actuals, as_of, sources)


# --------------------------------------------------------------------------- windows
def _date_paths(scenario: Scenario) -> dict[str, tuple[str, Any]]:
    """Each cohort's eligibility date as ``{cohort: (path, spec)}``: its own
    ``eligible_from``, its gate's ``opens_on``, or the scenario's start; the
    spec ``None`` where it is a gate of conditions (not a date to update)."""
    gates = {g.name: g for g in scenario.gates}
    out: dict[str, tuple[str, Any]] = {}
    for cohort in scenario.cohorts:
        spec = cohort.eligible_from
        if spec is None:
            spec = scenario.start_date
        if isinstance(spec, str):  # it waits for a gate: the gate's date
            gate = gates.get(spec)
            opens = gate.opens_on if gate is not None else None
            out[cohort.name] = (f"gates.{spec}.opens_on", opens)
        else:
            out[cohort.name] = (f"cohorts.{cohort.name}.eligible_from", spec)
    return out


def _windows(
    actuals: Actuals, as_of: date, paths: dict[str, tuple[str, Any]]
) -> list[_Window]:
    """Per date path (per-cohort actuals), or one for every cohort's dates
    (programme-wide actuals): after the last report with no attempt (or the
    as-of date), on or before the first with one."""
    counts = _start_counts(actuals)
    if counts is None:
        return []
    if not actuals.per_cohort:
        every = tuple(dict.fromkeys(path for path, _ in paths.values()))
        return [_window(every, counts, as_of)]
    by_path: dict[str, list[pd.DataFrame]] = {}
    for name, rows in counts.groupby("cohort", sort=False):
        if str(name) in paths:
            by_path.setdefault(paths[str(name)][0], []).append(rows)
    return [
        _window((path,), pd.concat(frames), as_of) for path, frames in by_path.items()
    ]


def _start_counts(actuals: Actuals) -> pd.DataFrame | None:
    """``date`` (and ``cohort``) with ``n``: the attempts reported, or the
    cumulative migrated of coarse figures (``None``: neither is reported)."""
    frame = actuals.frame
    column = (
        "attempts"
        if actuals.has("attempts")
        else ("cumulative_migrated" if actuals.kind == "coarse" else None)
    )
    if column is None:
        return None
    keys = ["date", "cohort"] if actuals.per_cohort else ["date"]
    return frame.groupby(keys, sort=True)[column].sum().rename("n").reset_index()


def _window(paths: tuple[str, ...], counts: pd.DataFrame, as_of: date) -> _Window:
    """The window of one series of counts (summed by date)."""
    series = counts.groupby("date", sort=True)["n"].sum()
    started = series[series > 0]
    if not len(started):
        return _Window(paths, as_of, None)
    first = started.index[0]
    before = series[series.index < first]
    after = before.index[-1].date() if len(before) else None
    return _Window(paths, after, first.date())


# --------------------------------------------------------------------------- dates
def _dates(
    data: dict[str, Any],
    paths: dict[str, tuple[str, Any]],
    windows: list[_Window],
    actuals: Actuals,
    as_of: date,
    sources: dict[str, str],
) -> list[InputUpdate]:
    """Eligibility dates (a cohort's own, or its gate's) that have happened
    become fixed; those that have not are known to be later than ``as_of``.
    A programme-wide window that shows a start names no date to fix."""
    names: dict[str, list[str]] = {}
    for name, (path, _) in paths.items():
        names.setdefault(path, []).append(name)
    updates = []
    for window in windows:
        if window.by is not None and len(window.paths) > 1:
            continue  # some cohort had started: which is not known
        for path in window.paths:
            holder, key = _holder(data, path)
            if holder is None or (
                path.startswith("cohorts.") and not isinstance(holder.get(key), dict)
            ):
                continue  # the scenario's start, or a fixed date
            waiting = ", ".join(names[path])
            before = _date_text(holder[key]) if holder.get(key) else "its conditions"
            if window.by is not None:  # on or before the first attempt
                holder.pop("all_of", None)
                holder.pop("any_of", None)
                holder[key] = window.by.isoformat()
                behind = f"first attempt of {waiting}"
                updates.append(
                    InputUpdate(path, before, f"{window.by} (happened)", behind)
                )
                sources[path] = f"calibrated: {behind} in {actuals.path} on {window.by}"
                continue
            after = as_of + timedelta(days=1)
            cut = _not_before(holder.get(key), after)
            if cut is None:  # a gate of conditions, or a fixed date: kept
                continue
            holder[key] = cut
            behind = f"no attempt of {waiting} up to {as_of}"
            updates.append(InputUpdate(path, before, _date_text(cut), behind))
            sources[path] = (
                f"{sources.get(path, '')}; not before {after}: {behind}".lstrip("; ")
            )
    return updates


def _holder(data: dict[str, Any], path: str) -> tuple[dict | None, str]:
    """The dict holding a date path's field in the scenario's data, and its key."""
    kind, name, key = path.split(".")
    items = data.get(kind) or []
    found = next((item for item in items if item.get("name") == name), None)
    return found, key


def _not_before(spec: Any, after: date) -> Any:
    """A date distribution known not to fall before ``after`` (``None``: keep)."""
    if not isinstance(spec, dict):
        return None
    out = dict(spec)
    kind = spec.get("dist")
    if kind == "slip":
        old = spec.get("not_before")
        out["not_before"] = (
            max(date.fromisoformat(str(old)), after).isoformat()
            if old
            else after.isoformat()
        )
        return out
    if kind in ("uniform", "triangular"):
        high = date.fromisoformat(str(spec["high"]))
        low = max(date.fromisoformat(str(spec["low"])), after)
        if low > high:
            return after.isoformat()  # later than the stated range: at least this
        out["low"] = low.isoformat()
        if kind == "triangular":
            out["mode"] = max(date.fromisoformat(str(spec["mode"])), low).isoformat()
        return out
    return None


def _date_text(spec: Any) -> str:
    if isinstance(spec, dict):
        kind = spec.get("dist")
        if kind == "slip":
            extra = (
                f", not before {spec['not_before']}" if spec.get("not_before") else ""
            )
            return (
                f"planned {spec['planned']} + slip (median "
                f"{spec['median_days']} days){extra}"
            )
        if kind in ("uniform", "triangular"):
            return f"{kind} {spec['low']}..{spec['high']}"
    return str(spec)


# ------------------------------------------------------------------ programme delay
def _programme_delay(
    scenario: Scenario,
    data: dict[str, Any],
    paths: dict[str, tuple[str, Any]],
    windows: list[_Window],
    actuals: Actuals,
    sources: dict[str, str],
) -> list[InputUpdate]:
    """``programme_delay`` given the windows of the dates its factor scales."""
    delay = scenario.programme_delay
    specs = dict(paths.values())
    if delay is None or delay.sigma == 0:
        return []
    told = [
        w
        for w in windows
        if any(_shared(specs[p]) for p in w.paths)
        and all(isinstance(specs[p], _DATES) for p in w.paths)
    ]
    if not told:
        return []
    log_f = math.log(delay.median) + delay.sigma * _GRID
    weight = np.exp(-0.5 * _GRID**2)
    for window in told:
        weight = weight * _likelihood(window, specs, log_f)
    total = weight.sum()
    if not total > 0 or not np.isfinite(total):
        return []  # the windows cannot all hold: the prior is kept
    weight = weight / total
    mean = float(weight @ log_f)
    sd = math.sqrt(max(float(weight @ (log_f - mean) ** 2), 0.0))
    median = math.exp(mean)
    if abs(median / delay.median - 1) < 1e-3 and abs(sd / delay.sigma - 1) < 1e-3:
        return []  # nothing learned (e.g. every window still before the plans)
    data["programme_delay"] = {
        "dist": "lognormal",
        "median": round(median, 4),
        "sigma": round(sd, 4),
    }
    behind = "; ".join(_window_text(w) for w in told)
    before = f"lognormal median {delay.median:g}, sigma {delay.sigma:g}"
    after = f"lognormal median {median:.2f}, sigma {sd:.2f}"
    sources["programme_delay"] = (
        f"{sources.get('programme_delay', '')}; calibrated from {before} "
        f"given {behind} in {actuals.path}"
    ).lstrip("; ")
    return [InputUpdate("programme_delay", before, after, behind)]


def _window_text(window: _Window) -> str:
    what = (
        ", ".join(p.split(".")[1] for p in window.paths)
        if len(window.paths) == 1
        else "any cohort"
    )
    if window.by is None:
        return f"no start of {what} up to {window.after}"
    since = f" after {window.after}" if window.after else ""
    return f"a start of {what}{since} on or before {window.by}"


def _likelihood(
    window: _Window, specs: dict[str, Any], log_f: np.ndarray
) -> np.ndarray:
    """P(the earliest of the window's dates falls in it | the factor), on
    the grid: the dates are independent given the factor."""
    later = np.ones_like(log_f)
    for path in window.paths:
        later = later * _survival(specs[path], window.after, log_f)
    if window.by is None:
        return later
    beyond = np.ones_like(log_f)
    for path in window.paths:
        beyond = beyond * _survival(specs[path], window.by, log_f)
    return np.clip(later - beyond, 0.0, None)


def _shared(spec: Any) -> bool:
    return isinstance(spec, SlipDate) and spec.shared


def _survival(spec: Any, day: date | None, log_f: np.ndarray) -> np.ndarray:
    """P(the date falls after ``day`` | the factor) on the grid, as the engine
    draws the date (rounded to the nearest day); ``spec`` one of `_DATES`."""
    if day is None:
        return np.ones_like(log_f)
    if isinstance(spec, date):
        return np.full_like(log_f, float(spec > day))
    if isinstance(spec, UniformDate):
        span = (spec.high - spec.low).days + 1
        left = min(max((spec.high - day).days, 0), span)
        return np.full_like(log_f, left / span)
    if isinstance(spec, TriangularDate):
        return np.full_like(log_f, _triangle_above(spec, day))
    survive = _slip_above(spec, (day - spec.planned).days, log_f)
    if spec.not_before is None:
        return survive
    if day < spec.not_before:  # conditioned on not falling before it
        return np.ones_like(log_f)
    floor = _slip_above(spec, (spec.not_before - spec.planned).days - 1, log_f)
    return survive / np.maximum(floor, 1e-300)


def _slip_above(spec: SlipDate, days: int, log_f: np.ndarray) -> np.ndarray:
    """P(planned + round(slip) > planned + days): a slip of at least days + 1/2."""
    x = days + 0.5
    if x <= 0:
        return np.ones_like(log_f)
    scale = spec.shared * log_f + math.log(max(spec.median_days, 1e-300))
    out = np.zeros_like(log_f)
    swan = spec.black_swan
    for share, factor in (
        ((1.0, 1.0),)
        if swan is None
        else ((1 - swan.probability, 1.0), (swan.probability, swan.factor))
    ):
        if spec.sigma == 0:
            out += share * (scale + math.log(factor) >= math.log(x))
        else:
            z = (math.log(x) - scale - math.log(factor)) / spec.sigma
            out += share * special.ndtr(-z)
    return out


def _triangle_above(spec: TriangularDate, day: date) -> float:
    """P(low + round(T) > day), T triangular on the day clock from ``low``."""
    width = (spec.high - spec.low).days
    x = (day - spec.low).days + 0.5
    if width == 0:
        return float(spec.low > day)
    if x <= 0:
        return 1.0
    if x >= width:
        return 0.0
    mode = (spec.mode - spec.low).days
    below = (
        x * x / (width * mode)
        if x <= mode
        else 1 - (width - x) ** 2 / (width * (width - mode))
    )
    return 1.0 - below
