"""A forecast's starting state from cumulative totals alone (coarse actuals).

Monthly or daily ``cumulative_migrated``, per cohort or for the programme,
say how many installations had migrated by the as-of date and nothing else:
`state.state_from_actuals` starts from each cohort untouched and this module
places the migrated, and the devices likely left dumb on the way.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from migsim.evidence.actuals import Actuals
from migsim.model.distributions import draw_probability
from migsim.model.scenario import Scenario
from migsim.sim.dates import resolve_dates
from migsim.sim.inputs import dumb_per_migrated
from migsim.sim.streams import Streams

__all__ = ["from_totals"]

#: Draws of a cohort's rates behind `_dumb_per_migrated`'s median.
_RATE_DRAWS = 2001
#: Replications' dates behind `_p_started`.
_DATE_DRAWS = 400


def _dumb_per_migrated(cohort) -> float:
    """Devices left dumb per installation migrated (`dumb_per_migrated`) at
    the median over the cohort's uncertain rates (fixed rates: their value).

    Actuals of migrations alone do not say how many devices went dumb on the
    way. The state states this typical estimate, and each replication
    re-estimates it at its own rates (``dumb_estimated``,
    `migsim.sim.inputs.resolve_inputs`). The median, not the mean: a dumb
    rate's law is skewed (the baseline's active cohort: Beta(0.1, 29.9), mean
    0.33%, median 0.002%), and the mean is far from most replications' own.
    Drawn from a fixed seed: the same state every time.
    """
    rng = np.random.default_rng(0)
    ratios = np.empty(_RATE_DRAWS)
    for i in range(_RATE_DRAWS):
        rates = cohort.outcomes.as_array(rng)
        then = draw_probability(cohort.stall.then_success, rng) if cohort.stall else 1.0
        ratios[i] = dumb_per_migrated(rates, then, cohort.recovered_share)
    return float(np.median(ratios))


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


def from_totals(
    scenario: Scenario,
    actuals: Actuals,
    as_of: date,
    cohorts: dict[str, dict],
    notes: list[str],
) -> dict[str, dict]:
    """The ``cohorts``' states (each as if nothing had happened: pending or
    queued) with what cumulative totals say had migrated by ``as_of``.

    Totals per cohort are taken as they are, and a cohort with any has started.
    A programme total is shared in proportion to each cohort's size times the
    chance its start had passed (`_p_started`: a known start 1, one planned
    later 0), none over its size; a pending cohort then counts as started when
    its start more likely than not had (a share alone does not make it so: 50
    installations over one cohort's size made every cohort eligible at once).
    One still pending keeps its start drawn by each replication. Devices left
    dumb on the way are estimated at the cohort's median rates
    (`_dumb_per_migrated`), and by each replication at its own; none is taken
    to be in flight or abandoned.
    """
    if actuals.frame.empty:
        return cohorts
    started = dict.fromkeys(cohorts, 1.0)
    if actuals.per_cohort:
        figures = actuals.cumulative_migrated(by_cohort=True)
        migrated = {
            name: float(group["cumulative_migrated"].iloc[-1])
            for name, group in figures.groupby("cohort", sort=False)
        }
        lasts = figures.groupby("cohort", sort=False)["date"].max()
        stale = lasts[lasts < lasts.max()]
        if len(stale):
            notes.append(
                "a cohort's last figure is older than the others': "
                + ", ".join(f"{name} on {day.date()}" for name, day in stale.items())
                + "; it is taken as it stood then"
            )
    else:
        total = float(actuals.cumulative_migrated()["cumulative_migrated"].iloc[-1])
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
    for cohort in scenario.cohorts:
        state = cohorts[cohort.name]
        done = min(int(round(migrated.get(cohort.name, 0.0))), cohort.installations)
        if state["pending"] and done and started[cohort.name] >= 0.5:
            state["pending"], state["queued"] = 0, cohort.installations
        # devices left dumb alongside them, at the scenario's typical rates
        dumb = int(round(done * _dumb_per_migrated(cohort)))
        dumb = min(dumb, cohort.installations - done)
        state["migrated"], state["dumb"] = done, dumb
        state["dumb_estimated"] = done > 0  # each replication's at its own rates
        if state["pending"]:
            state["pending"] -= done + dumb
        else:
            state["queued"] -= done + dumb
    return cohorts
