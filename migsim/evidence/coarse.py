"""A forecast's starting state from cumulative totals alone (coarse actuals).

Monthly or daily ``cumulative_migrated``, per cohort or for the programme,
say how many installations had migrated by the as-of date and nothing else:
`state.state_from_actuals` starts from each cohort untouched and this module
places the migrated, the devices likely left dumb on the way, and, where a
cohort recovers dumb devices remotely, those likely still awaiting recovery.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from migsim.evidence.actuals import COARSE_COLUMN, Actuals
from migsim.evidence.actuals_checks import largest_size
from migsim.evidence.inflight import (
    due_groups,
    recovering_weights,
    split_by_attempts,
)
from migsim.model.distributions import draw_probability
from migsim.model.scenario import Scenario
from migsim.sim.calendar import working_days_between
from migsim.sim.dates import resolve_dates
from migsim.sim.inputs import dumb_per_migrated
from migsim.sim.streams import Streams

__all__ = ["from_totals", "reported_through"]

#: Draws of a cohort's rates behind `_dumb_ratios`' medians.
_RATE_DRAWS = 2001
#: Replications' dates behind `_p_started`.
_DATE_DRAWS = 400
#: Days a cohort's total stands still before its last report for `_stopped`
#: to take its migrations as stopped, and among them at least a week's working
#: days of the scenario's calendar: a weekend, a bank holiday or a closure
#: (ten days at Christmas) leaves totals flat without stopping anything.
_STILL_DAYS = 7


def _dumb_ratios(cohort) -> tuple[float, float]:
    """Devices left dumb per installation migrated (`dumb_per_migrated`), and
    the devices that went dumb per installation migrated, recovered remotely
    later or not (`_recovering` reads when): both medians over the same draws
    of the cohort's uncertain rates (fixed rates: their value; the draws are
    the cost).

    Actuals of migrations alone do not say how many devices went dumb on the
    way. The state states this typical estimate, and each replication
    re-estimates it at its own rates (``dumb_estimated``,
    `migsim.sim.inputs.resolve_inputs`). The median, not the mean: a dumb
    rate's law is skewed (the baseline's active cohort: Beta(0.1, 29.9), mean
    0.33%, median 0.002%), and the mean is far from most replications' own.
    Drawn from a fixed seed: the same state every time.
    """
    rng = np.random.default_rng(0)
    left, gone = np.empty(_RATE_DRAWS), np.empty(_RATE_DRAWS)
    for i in range(_RATE_DRAWS):
        rates = cohort.outcomes.as_array(rng)
        then = draw_probability(cohort.stall.then_success, rng) if cohort.stall else 1.0
        left[i] = dumb_per_migrated(rates, then, cohort.recovered_share)
        gone[i] = dumb_per_migrated(rates, then)
    return float(np.median(left)), float(np.median(gone))


def _p_started(scenario: Scenario, as_of: date) -> dict[str, float]:
    """P(each cohort is eligible by the end of ``as_of``), over `_DATE_DRAWS`
    replications' dates drawn as a run draws them (slips with the programme
    delay and black swans, gates as they open), from a fixed seed: the same
    state every time. A fixed date gives 0 or 1."""
    day = (as_of - scenario.start_date).days
    hits = dict.fromkeys((c.name for c in scenario.cohorts), 0)
    for k in range(_DATE_DRAWS):
        dates = resolve_dates(scenario, Streams(0, k))
        for cohort in scenario.cohorts:
            start = dates.day(f"cohorts.{cohort.name}.eligible_from", 0)
            hits[cohort.name] += start is not None and start <= day
    return {name: n / _DATE_DRAWS for name, n in hits.items()}


def _shared(
    total: float, sizes: dict[str, int], weights: dict[str, float]
) -> tuple[dict[str, float], float]:
    """``total`` shared in proportion to ``weights``, none over its size (what
    a full one cannot hold goes to the others); and what none could hold."""
    share = dict.fromkeys(sizes, 0.0)
    left, open_ = total, {n for n in sizes if weights[n] > 0}
    while open_ and left > 1e-9:
        weight = sum(weights[n] for n in open_)
        full = {n for n in open_ if left * weights[n] / weight >= sizes[n] - share[n]}
        if not full:
            for n in open_:
                share[n] += left * weights[n] / weight
            return share, 0.0
        for n in full:
            left -= sizes[n] - share[n]
            share[n] = float(sizes[n])
        open_ -= full
    return share, max(0.0, left)


def _anchor(scenario: Scenario, cohort, first: date) -> date:
    """The day before the cohort could start (its fixed ``eligible_from``,
    else the scenario's start; no later than its ``first`` reported figure):
    nothing had migrated by the end of it, where a cohort's figures are read
    linearly from."""
    opens = cohort.eligible_from if isinstance(cohort.eligible_from, date) else None
    anchor = min(max(opens or scenario.start_date, scenario.start_date), first)
    return anchor - timedelta(days=1)


def _stopped(scenario: Scenario, cohort, figures: pd.DataFrame) -> bool:
    """Whether a cohort's totals (``figures``, in date order) say its
    migrations had stopped by its last report: its last figure holds the most
    installations it can have (`largest_size`: the top of an estimated size's
    range), or equals its figure on a report at least `_STILL_DAYS` before
    with a week's working days between them (as many as the calendar's
    working weekdays; `migsim.sim.calendar.working_days`, as the engine
    counts them: a total flat over a ten-day Christmas closure had stood
    still for a week, and its cohort was taken as stopped, the migrations it
    resumed with after the closure lost).

    A cohort that finished seldom reaches its size (devices left dumb,
    installations excluded or abandoned), and a file may stop reporting it:
    its last figure, one that had not moved for a week, then set the day a
    forecast started from, and every other cohort's figures since were left
    unused (one finished on day 2 and reported flat to day 20 started a
    forecast as of day 40 from day 20). Taken as it stood, a stopped cohort
    loses no migration."""
    last = figures.iloc[-1]
    figure = float(last[COARSE_COLUMN])
    if figure >= largest_size(cohort):
        return True
    still = figures["date"][figures[COARSE_COLUMN].astype(float) == figure]
    since, until = still.iloc[0], last["date"]  # a total never falls: no gap
    if (until - since).days < _STILL_DAYS:
        return False
    open_days = working_days_between(scenario, since.date(), until.date())
    return open_days >= len(scenario.calendar.working_days)


def _known_until(scenario: Scenario, cohort, figures: pd.DataFrame):
    """The last day a cohort's totals (``figures``, in date order) say where
    it stood: its last report or, when a fixed ``eligible_from`` comes after
    it, the day before that (nothing migrates before the cohort opens: a row
    of 0 on day 0 of a cohort opening on day 30 started a forecast as of day
    20 from day 0, every other cohort's figures since unused). ``None`` when
    its migrations had stopped (`_stopped`): it stands as last reported on
    any later day."""
    if _stopped(scenario, cohort, figures):
        return None
    last = figures["date"].iloc[-1]
    opens = cohort.eligible_from if isinstance(cohort.eligible_from, date) else None
    if opens is None:
        return last
    return max(last, pd.Timestamp(opens - timedelta(days=1)))


def reported_through(scenario: Scenario, actuals: Actuals) -> tuple[date, list[str]]:
    """The last day every cohort's per-cohort totals reach, and the cohorts
    whose figures end there (none when they all reach the last day).

    Totals say nothing of the days after a cohort's last figure. A state on a
    later day took that figure as if it were exact then (frozen, its
    migrations since lost; two weeks of a cohort at 150 a day started 2,100
    behind), so a forecast starts from this day instead and simulates every
    day after it, as it does after the programme's last total; the other
    cohorts' figures on it are read linearly between their reports
    (`from_totals`). A cohort's figures reach the day before it opens
    (`_known_until`), and one whose migrations had stopped sets no day.
    """
    figures = actuals.cumulative_migrated(by_cohort=True)
    latest = figures["date"].max()
    behind = {}
    for name, group in figures.groupby("cohort", sort=False):
        until = _known_until(scenario, scenario.cohort(str(name)), group)
        if until is not None and until < latest:
            behind[str(name)] = until
    day = min(behind.values(), default=latest)
    return day.date(), [name for name, until in behind.items() if until == day]


def _figures_on(
    scenario: Scenario, cohort, group: pd.DataFrame, as_of: date
) -> pd.DataFrame:
    """A cohort's figures up to ``as_of``, with its figure on ``as_of`` read
    linearly between its reports around it (from none on the day before it
    could start, `_anchor`) when it has one after ``as_of`` and none on it:
    the coarse path's reading of the days between reports."""
    when = pd.Timestamp(as_of)
    before, later = group[group["date"] <= when], group[group["date"] > when]
    if later.empty or (len(before) and before["date"].iloc[-1] == when):
        return before
    anchor = pd.Timestamp(_anchor(scenario, cohort, group["date"].min().date()))
    if when <= anchor:
        return before
    known = group.iloc[: len(before) + 1]  # the reports up to the first after
    days = [0, *(known["date"] - anchor).dt.days]
    value = np.interp((when - anchor).days, days, [0.0, *known[COARSE_COLUMN]])
    row = pd.DataFrame({"date": [when], "cohort": [cohort.name], COARSE_COLUMN: value})
    return pd.concat([before, row], ignore_index=True)


def _recovering(
    scenario: Scenario,
    cohort,
    history: pd.DataFrame,
    as_of: date,
    per_migrated: float,
    room: int,
) -> list[dict[str, int]]:
    """Dumb devices awaiting remote recovery at the end of ``as_of``, as
    ``recovering`` groups (a cohort with ``dumb.recovered_share``), from the
    cohort's cumulative migrated (``history``: ``date, cumulative_migrated``).

    Totals say neither when devices went dumb nor which were recovered: each
    day's migrations are read off them (linear between the reported figures,
    from none the day before the cohort could start), the devices that went
    dumb alongside at ``per_migrated`` (every one, recovered later or not;
    `_dumb_ratios`), and those still awaiting recovery on ``as_of``
    estimated from the scenario's recovered share and recovery delay, as from
    daily flows that report no recoveries (`inflight.recovering_weights`,
    which gives their due days too). Before, they were counted among the
    installations not yet attempted. At most ``room`` (what the cohort has
    left); attempts made: one.
    """
    dumb = cohort.dumb
    if dumb is None or not dumb.recovered_share or history.empty or room <= 0:
        return []
    anchor = _anchor(scenario, cohort, history["date"].min().date())
    reported = (history["date"] - pd.Timestamp(anchor)).dt.days.to_numpy()
    days = np.arange(int(reported.max()) + 1)
    cumulative = np.interp(
        days, [0, *reported], [0.0, *history[COARSE_COLUMN].to_numpy(float)]
    )
    rows = pd.DataFrame(
        {
            "date": pd.Timestamp(anchor) + pd.to_timedelta(days[1:], unit="D"),
            "dumbs": np.diff(cumulative) * per_migrated,
        }
    )
    keys, weights, _ = recovering_weights(cohort, rows, as_of)
    n = min(int(round(float(weights.sum()))), room)
    return split_by_attempts(due_groups(n, keys, weights), None, cohort.max_attempts)


def from_totals(
    scenario: Scenario,
    actuals: Actuals,
    as_of: date,
    cohorts: dict[str, dict],
    notes: list[str],
) -> dict[str, dict]:
    """The ``cohorts``' states (each as if nothing had happened: pending or
    queued) with what cumulative totals say had migrated by ``as_of``.

    Totals per cohort are taken as they are, and a cohort with any has started;
    ``actuals`` may run past ``as_of`` (up to the forecast's as-of date), and a
    cohort's figure on ``as_of`` is then read linearly between its reports
    around it (`_figures_on`), not taken from its report before it.
    A programme total is shared in proportion to each cohort's size times the
    chance its start had passed (`_p_started`: a known start 1, one planned
    later 0), none over its size; a pending cohort then counts as started when
    its start more likely than not had (a share alone does not make it so: 50
    installations over one cohort's size made every cohort eligible at once).
    One still pending keeps its start drawn by each replication. Devices left
    dumb on the way are estimated at the cohort's median rates
    (`_dumb_ratios`), and by each replication at its own; with a dumb
    section that recovers a share remotely, the dumb also hold those still
    awaiting recovery (`_recovering`: a programme total's history shared as its
    last figure is); none is taken to be in flight or abandoned.
    """
    if actuals.up_to(as_of).frame.empty:
        return cohorts
    started = dict.fromkeys(cohorts, 1.0)
    if actuals.per_cohort:
        figures = actuals.cumulative_migrated(by_cohort=True)
        history = {}
        for name, group in figures.groupby("cohort", sort=False):
            cohort = scenario.cohort(str(name))
            rows = _figures_on(scenario, cohort, group, as_of)
            if len(rows):
                history[str(name)] = rows
        migrated = {
            name: float(group[COARSE_COLUMN].iloc[-1])
            for name, group in history.items()
        }
        lasts = {n: g["date"].iloc[-1] for n, g in history.items()}
        latest = max(lasts.values(), default=None)
        older = {n: day for n, day in lasts.items() if day < latest}
        until = {
            n: _known_until(scenario, scenario.cohort(n), history[n]) for n in older
        }
        stopped = [n for n in older if until[n] is None]
        stale = {  # neither stopped nor yet to open
            n: day
            for n, day in older.items()
            if until[n] is not None and until[n] < latest
        }
        if stopped:
            notes.append(
                ", ".join(f"{n} on {older[n].date()}" for n in stopped)
                + ": last reported before the other cohorts, at its size or "
                "unchanged for a week before: its migrations are taken to have "
                "stopped, its figure as it stood then"
            )
        if stale:  # a forecast starts from `reported_through` instead
            notes.append(
                "a cohort's last figure is older than the others': "
                + ", ".join(f"{name} on {day.date()}" for name, day in stale.items())
                + "; it is taken as it stood then (a forecast starts from "
                "that day, not from a later one)"
            )
    else:
        programme = actuals.up_to(as_of).cumulative_migrated()
        total = float(programme[COARSE_COLUMN].iloc[-1])
        started = _p_started(scenario, as_of)
        sizes = {c.name: c.installations for c in scenario.cohorts}
        migrated, left = _shared(
            total, sizes, {n: sizes[n] * started[n] for n in sizes}
        )
        if left >= 1:
            notes.append(
                f"the programme total on {as_of} ({total:,.0f}) is more than the "
                f"cohorts that can have started hold: {left:,.0f} are left out"
            )
        history = {
            name: programme.assign(
                **{COARSE_COLUMN: programme[COARSE_COLUMN] * share / total}
            )
            for name, share in migrated.items()
            if share > 0
        }
    recovering: list[str] = []
    for cohort in scenario.cohorts:
        state = cohorts[cohort.name]
        done = min(int(round(migrated.get(cohort.name, 0.0))), cohort.installations)
        if state["pending"] and done and started[cohort.name] >= 0.5:
            state["pending"], state["queued"] = 0, cohort.installations
        # devices left dumb alongside them, at the scenario's typical rates
        left, gone = _dumb_ratios(cohort)
        dumb = min(int(round(done * left)), cohort.installations - done)
        if done and cohort.name in history:  # and those awaiting remote recovery
            room = cohort.installations - done - dumb
            waiting = _recovering(
                scenario, cohort, history[cohort.name], as_of, gone, room
            )
            if waiting:
                state["recovering"] = waiting
                dumb += sum(g["count"] for g in waiting)
                recovering.append(cohort.name)
        state["migrated"], state["dumb"] = done, dumb
        state["dumb_estimated"] = done > 0  # each replication's at its own rates
        if state["pending"]:
            state["pending"] -= done + dumb
        else:
            state["queued"] -= done + dumb
    if recovering:
        notes.append(
            f"{', '.join(recovering)}: dumb devices awaiting remote recovery are "
            "estimated from the migrations the totals show, the median rates and "
            "the scenario's recovered share and recovery delay"
        )
    return cohorts
