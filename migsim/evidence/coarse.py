"""A forecast's starting state from cumulative totals alone (coarse actuals).

Monthly or daily ``cumulative_migrated``, per cohort or for the programme,
say how many installations had migrated by the as-of date and nothing else:
`state.state_from_actuals` starts from each cohort untouched and this module
places the migrated, and the devices likely left dumb on the way.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np

from migsim.evidence.actuals import Actuals
from migsim.model.distributions import draw_probability
from migsim.model.scenario import OUTCOMES, Scenario

__all__ = ["from_totals"]

#: Draws of a cohort's rates behind `_dumb_per_migrated`'s median.
_RATE_DRAWS = 2001


def _dumb_per_migrated(cohort) -> float:
    """Devices left dumb per installation migrated, dumb / (success + fix
    forward + stall x then_success), at the median over the cohort's uncertain
    rates (fixed rates: their value).

    Actuals of migrations alone do not say how many devices went dumb on the
    way, and the state is one for every replication. The median, not the mean:
    a dumb rate's law is skewed (the baseline's active cohort: Beta(0.1, 29.9),
    mean 0.33%, median 0.002%), and at the mean every replication carried
    dumb devices most paths never had, so none could reach the full clearance
    those paths reached (synthetic truths scored against programme totals:
    P10-P90 coverage 59%). Drawn from a fixed seed: the same state every time.
    """
    rng = np.random.default_rng(0)
    ratios = np.empty(_RATE_DRAWS)
    for i in range(_RATE_DRAWS):
        rates = dict(zip(OUTCOMES, cohort.outcomes.as_array(rng), strict=True))
        then = draw_probability(cohort.stall.then_success, rng) if cohort.stall else 1.0
        good = rates["success"] + rates["fix_forward"] + rates["stall"] * then
        ratios[i] = rates["dumb"] / good if good > 0 else 0.0
    return float(np.median(ratios))


def _may_have_started(spec: Any, as_of: date) -> bool:
    """Whether a pending cohort's start can be on or before ``as_of``: a fixed
    date (then after it: no), an uncertain one's earliest day (a range's
    ``low``, a slip's planned date or ``not_before``: slips are never early),
    or a gate (its day unknown here: it may)."""
    if isinstance(spec, date):
        return spec <= as_of
    earliest = getattr(spec, "low", None) or getattr(spec, "point", None)
    return earliest is None or earliest <= as_of


def from_totals(
    scenario: Scenario, actuals: Actuals, as_of: date, cohorts: dict[str, dict]
) -> dict[str, dict]:
    """The ``cohorts``' states (each as if nothing had happened: pending or
    queued) with what cumulative totals say had migrated by ``as_of``.

    Totals per cohort are taken as they are; programme totals are shared by
    size, first between the cohorts known eligible, then what they cannot hold
    between those whose uncertain start may have passed (`_may_have_started`).
    A cohort given any becomes eligible, all of it queued; devices left dumb on
    the way are estimated at its median rates (`_dumb_per_migrated`); none is
    taken to be in flight or abandoned.
    """
    if actuals.frame.empty:
        return cohorts
    if actuals.per_cohort:
        figures = actuals.cumulative_migrated(by_cohort=True)
        migrated = {
            name: float(group["cumulative_migrated"].iloc[-1])
            for name, group in figures.groupby("cohort", sort=False)
        }
    else:
        total = float(actuals.cumulative_migrated()["cumulative_migrated"].iloc[-1])
        # shared by size between the cohorts known eligible, then what they
        # cannot hold between those whose uncertain start may have passed
        migrated, left = {}, total
        for may in (False, True):
            group = {
                c.name: c.installations
                for c in scenario.cohorts
                if bool(cohorts[c.name]["pending"]) == may
                and (not may or _may_have_started(c.eligible_from, as_of))
            }
            size = sum(group.values())
            for name, n in group.items():
                migrated[name] = min(left, size) * n / size if size else 0.0
            left -= min(left, size)
    for cohort in scenario.cohorts:
        state = cohorts[cohort.name]
        done = min(int(round(migrated.get(cohort.name, 0.0))), cohort.installations)
        if state["pending"] and done:
            state["pending"], state["queued"] = 0, cohort.installations
        # devices left dumb alongside them, at the scenario's typical rates
        dumb = int(round(done * _dumb_per_migrated(cohort)))
        dumb = min(dumb, cohort.installations - done)
        state["migrated"], state["dumb"] = done, dumb
        if state["pending"]:
            state["pending"] -= done + dumb
        else:
            state["queued"] -= done + dumb
    return cohorts
