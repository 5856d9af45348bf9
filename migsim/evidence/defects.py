"""Latent defects on an as-of date, read from actuals.

A run's exported state carries each latent defect as the replication left it
(``operations_state.defects``: whether it exists, its hits, when found); a
continuation from a state without them draws every defect afresh at its
``exists_probability``. Actuals that report ``defect_hits`` say more: a defect
that existed would have given each attempt of its cohort it can reach (all but
the excluded installations) its outcome with probability ``hit_share``, so after
``A`` such attempts with no hit reported the chance it exists falls from its
prior ``p`` to ``p q / (p q + 1 - p)`` with ``q = (1 - hit_share) ** A``. When
that is below `RULED_OUT` the state says it does not exist.

On ``nov2019_operations`` with the ELS desk cut to 40 cases a day (seed 7), the
continuation from actuals on 3 April 2020 migrated 20 more (200 replications,
paired SE 3.3) than the one from the run's exact state: redrawn, the firmware
defect existed in 58 of 200 continuations (+66 where it did). No hit was
reported over 17,000 reachable attempts: it is ruled out, and the bias goes.

A defect with hits reported, or one the evidence does not rule out (too few
attempts, no ``defect_hits`` column, or an ``exists_probability`` of 1), is left
to the forecast's draw, as before.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from migsim.evidence.actuals import Actuals
from migsim.model.scenario import Scenario

__all__ = ["RULED_OUT", "defect_states"]

#: The chance of existing below which a defect is taken as not existing.
RULED_OUT = 1e-3


def defect_states(
    scenario: Scenario, actuals: Actuals, as_of: date
) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``operations_state.defects`` the actuals up to ``as_of`` rule out,
    and what was assumed, in words (`RULED_OUT`)."""
    if "defect_hits" not in actuals.frame.columns or not actuals.per_cohort:
        return [], []
    states: list[dict[str, Any]] = []
    kept: list[str] = []
    for cohort in scenario.cohorts:
        if not cohort.latent_defects:
            continue
        rows = actuals.cohort_frame(cohort.name)
        seen = rows["date"].dt.date <= as_of
        hits = float(rows.loc[seen, "defect_hits"].sum())
        attempts = (
            float(rows.loc[seen, "attempts"].sum()) if "attempts" in rows else 0.0
        )
        excluded = cohort.excluded.share if cohort.excluded else 0.0
        reachable = attempts * (1.0 - excluded)
        for defect in cohort.latent_defects:
            prior = defect.exists_probability
            name = f"{cohort.name}.{defect.name}"
            if prior <= 0.0:
                continue
            if hits > 0 or prior >= 1.0:
                kept.append(name)
                continue
            q = (1.0 - defect.hit_share) ** reachable
            chance = prior * q / (prior * q + 1.0 - prior)
            if chance >= RULED_OUT:
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
    notes = []
    if states:
        ruled = ", ".join(f"{s['cohort']}.{s['defect']}" for s in states)
        notes.append(
            f"latent defect {ruled}: no defect_hits reported up to {as_of} over "
            "enough attempts to rule it out (it does not exist in the forecast)"
        )
    if kept:
        notes.append(
            f"latent defect {', '.join(kept)}: not ruled out by the reported "
            "defect_hits; the forecast draws whether it exists at its "
            "exists_probability"
        )
    return states, notes
