"""Latent defects on an as-of date, read from actuals.

A run's exported state carries each latent defect as the replication left it
(``operations_state.defects``: whether it exists, its hits, when found); a
continuation from a state without them draws every defect afresh at its
``exists_probability``. Actuals say more, but only through what a programme
could see on the as-of date: a latent defect's hits look like ordinary failures
until it is found, so a ``defect_hits`` column (a run's own daily output has
one) is hindsight and is not read here. What shows is a found defect's halt:
from the day after it is found its cohort (or, with ``halt: all``, every
cohort) is not attempted until the fix is in.

So a defect that existed would, with its cohort attempted ``A`` times (all but
the excluded installations can be hit) up to the last day whose finding would
show by the as-of date, have been found unless its hits stayed below
``detected_after_cases``: ``q = P(Binomial(A, hit_share) < detected_after_cases)``
(and ``q = 0`` once exposed ``detected_after_days``). When the actuals show no
halt (the cohort attempted on every day the programme attempted, between its
first and last attempt), its chance of still being live falls from its prior
``p`` to ``p q / (p q + 1 - p)``; below `RULED_OUT` the state says it does not
exist. A found defect that was fixed before the as-of date would have shown a
halt too, so "no halt" rules out both.

On ``nov2019_operations`` with the ELS desk cut to 40 cases a day (seed 7), the
continuation from actuals on 3 April 2020 migrated 20 more (200 replications,
paired SE 3.3) than the one from the run's exact state: redrawn, the firmware
defect existed in 58 of 200 continuations (+66 where it did). Thousands of
attempts without a halt rule it out, and the bias goes.

A defect whose cohort shows a pause the halt could explain, one exposed too
little to have been found, or one with an ``exists_probability`` of 1, is left
to the forecast's draw, as before, and the notes say which.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from migsim.evidence.actuals import Actuals
from migsim.model.scenario import Scenario

__all__ = ["RULED_OUT", "defect_states"]

#: The chance of being live below which a defect is taken as not existing.
RULED_OUT = 1e-3


def defect_states(
    scenario: Scenario, actuals: Actuals, as_of: date
) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``operations_state.defects`` the actuals up to ``as_of`` rule out,
    and what was assumed, in words (see the module doc)."""
    if not actuals.has("attempts") or not actuals.per_cohort:
        return [], []
    frame = actuals.frame[actuals.frame["date"] <= pd.Timestamp(as_of)]
    programme = frame.groupby("date")["attempts"].sum()  # every cohort's, by day
    states: list[dict[str, Any]] = []
    kept: list[str] = []
    for cohort in scenario.cohorts:
        if not cohort.latent_defects:
            continue
        rows = frame[frame["cohort"] == cohort.name]
        attempts = rows.groupby("date")["attempts"].sum()
        excluded = cohort.excluded.share if cohort.excluded else 0.0
        for defect in cohort.latent_defects:
            name = f"{cohort.name}.{defect.name}"
            if defect.exists_probability <= 0.0:
                continue
            q = _unfound(defect, attempts, excluded, as_of)
            if q is None or _paused(attempts, programme, defect.halt):
                kept.append(name)
                continue
            prior = defect.exists_probability
            live = prior * q / (prior * q + 1.0 - prior) if prior < 1.0 else 1.0
            if live >= RULED_OUT:
                kept.append(name)
                continue
            states.append(
                {
                    "cohort": cohort.name,
                    "defect": defect.name,
                    "exists": False,
                    "hits": 0,
                    "first_exposed": None,
                    "found_day": None,
                    "fix_days": 1,
                }
            )
    return states, _notes(states, kept, as_of)


def _unfound(defect, attempts: pd.Series, excluded: float, as_of: date):
    """P(not found in time to show by ``as_of`` | it exists), or None before
    any attempt of its cohort: found at the end of a day, plus its lag, it
    halts from the next day, so days up to ``as_of - lag - 1`` count."""
    exposed = attempts[attempts > 0]
    if exposed.empty:
        return None
    last = pd.Timestamp(as_of - timedelta(days=defect.detection_lag_days + 1))
    seen = exposed[exposed.index <= last]
    if defect.detected_after_days is not None:
        days = (last - exposed.index[0]).days + 1
        if days >= defect.detected_after_days:
            return 0.0
    if defect.detected_after_cases is None:
        return 1.0
    reachable = int(round(float(seen.sum()) * (1.0 - excluded)))
    below = defect.detected_after_cases - 1
    return float(stats.binom.cdf(below, reachable, defect.hit_share))


def _paused(attempts: pd.Series, programme: pd.Series, halt: str) -> bool:
    """Whether, between its first and last attempt, the cohort was not attempted
    on a day a found defect's halt would explain: a day the programme attempted
    others (``halt: cohort``), or any day nobody attempted (``halt: all``: no-go
    days and closures look the same, so this is cautious)."""
    active = attempts[attempts > 0]
    if active.empty:
        return False
    days = programme[(programme.index >= active.index[0])]
    days = days[days.index <= active.index[-1]]
    mine = attempts.reindex(days.index, fill_value=0)
    if halt == "all":
        every = pd.date_range(days.index[0], days.index[-1], freq="B")
        return bool(len(every.difference(days[days > 0].index)))
    return bool(np.any((days.to_numpy() > 0) & (mine.to_numpy() == 0)))


def _notes(states: list[dict[str, Any]], kept: list[str], as_of: date) -> list[str]:
    notes = []
    if states:
        ruled = ", ".join(f"{s['cohort']}.{s['defect']}" for s in states)
        notes.append(
            f"latent defect {ruled}: attempted up to {as_of} without the halt its "
            "finding would have shown, enough to rule it out (it does not exist "
            "in the forecast)"
        )
    if kept:
        notes.append(
            f"latent defect {', '.join(kept)}: not ruled out by the attempts "
            "reported (too few, or a pause a halt could explain); the forecast "
            "draws whether it exists at its exists_probability"
        )
    return notes
