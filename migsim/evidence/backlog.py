"""The backlog an actuals file shows: installations not yet resolved each day.

A run's backlog (the ``remaining`` series, `migsim.results.daily.series_columns`)
is its in-flight states and, with a dumb section, the dumb devices awaiting
remote recovery (``dumb`` less ``awaiting_site_visit``): the clearance rule
counts them. Read from actuals, the same count comes

- from end-of-day states: the in-flight states and the dumb awaiting remote
  recovery;
- from daily flows: the installations less those resolved: migrated
  (successes, stall completions and restorations), abandoned, and dumb and not
  awaiting remote recovery. The dumb are the dumbs less the dumb devices
  recovered remotely (``dumb_recoveries``), which are back in the backlog until
  they migrate, are abandoned or go dumb again: a device that went dumb, was
  recovered and then migrated leaves the backlog once;
- from coarse figures: the installations less cumulative migrated (dumb and
  abandoned unknown, taken as none).

The dumb awaiting remote recovery are the dumb less ``awaiting_site_visit``
where the file has that column; else, given the scenario, estimated from its
recovery delay as the state a forecast starts from estimates them
(`inflight.awaiting_recovery`; without ``dumb_recoveries`` the expected
recoveries stand in for the reported); else none: every dumb device counts as
resolved, as in a run without a dumb section.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from migsim.evidence.actuals import COARSE_COLUMN, Actuals
from migsim.evidence.inflight import awaiting_recovery, recoveries_by_row
from migsim.model.scenario import Scenario
from migsim.sim.records import AWAITING_VISIT, IN_FLIGHT

__all__ = ["remaining"]

#: Flows that resolve an installation for good (the dumb are counted apart).
RESOLVING = ("successes", "stall_completions", "restorations", "abandons")


def remaining(
    actuals: Actuals, installations: int, scenario: Scenario | None = None
) -> pd.DataFrame:
    """Installations not yet resolved at the end of each date, all cohorts:
    ``date, remaining`` (see the module docstring)."""
    frame = actuals.frame
    if actuals.kind == "flows" and actuals.has(*IN_FLIGHT) and actuals.per_cohort:
        value = frame[list(IN_FLIGHT)].sum(axis=1)
        if actuals.has("dumb"):
            value = value + _by_cohort(actuals, scenario, _recovering_of_states)
        return _total(frame.assign(value=value), 0.0)
    dumb_known = actuals.has("dumbs") or AWAITING_VISIT in frame.columns
    if actuals.kind == "flows" and actuals.has(*RESOLVING) and dumb_known:
        resolved = _by_cohort(actuals, scenario, _resolved_of_flows)
        return _total(frame.assign(value=-resolved), float(installations))
    migrated = actuals.cumulative_migrated()
    return pd.DataFrame(
        {
            "date": migrated["date"],
            "remaining": installations - migrated[COARSE_COLUMN],
        }
    )


def _total(frame: pd.DataFrame, base: float) -> pd.DataFrame:
    """``base`` plus each cohort's last reported ``value`` on each date (a
    cohort not yet reported adds nothing)."""
    wide = frame.pivot(index="date", columns="cohort", values="value").sort_index()
    total = base + wide.ffill().sum(axis=1)
    return pd.DataFrame({"date": total.index, "remaining": total.to_numpy()})


def _by_cohort(actuals: Actuals, scenario: Scenario | None, count) -> pd.Series:
    """``count(cohort, rows)`` for each cohort's rows (date order), aligned
    with the frame; ``cohort`` is the scenario's, or None without one."""
    cohorts = {c.name: c for c in scenario.cohorts} if scenario is not None else {}
    out = pd.Series(0.0, index=actuals.frame.index)
    for name, rows in actuals.frame.groupby("cohort", sort=False):
        rows = rows.sort_values("date", kind="stable")
        out.loc[rows.index] = count(cohorts.get(str(name)), rows)
    return out


def _recovering_of_states(cohort, rows: pd.DataFrame) -> np.ndarray:
    """The dumb awaiting remote recovery on each row, from the reported ``dumb``."""
    dumb = rows["dumb"].to_numpy(float)
    return np.clip(dumb - _awaiting_visit(cohort, rows, dumb), 0.0, None)


def _resolved_of_flows(cohort, rows: pd.DataFrame) -> np.ndarray:
    """Installations resolved by the end of each row's date, from the flows."""
    gone = np.cumsum(rows[list(RESOLVING)].sum(axis=1).to_numpy(float))
    if AWAITING_VISIT in rows.columns:  # the dumb counted as resolved, as reported
        return gone + rows[AWAITING_VISIT].to_numpy(float)
    if cohort is not None:  # reported, else expected at the cohort's recovery
        recovered = recoveries_by_row(cohort, rows)
    elif "dumb_recoveries" in rows.columns:
        recovered = rows["dumb_recoveries"].to_numpy(float)
    else:
        recovered = np.zeros(len(rows))
    dumb = np.cumsum(rows["dumbs"].to_numpy(float) - recovered)
    return gone + np.clip(_awaiting_visit(cohort, rows, dumb), 0.0, None)


def _awaiting_visit(cohort, rows: pd.DataFrame, dumb: np.ndarray) -> np.ndarray:
    """The dumb not awaiting remote recovery on each row: less those awaiting a
    site visit when reported, else less the estimate from the cohort's recovery
    (none without a scenario, or when it recovers none)."""
    if AWAITING_VISIT in rows.columns:
        return rows[AWAITING_VISIT].to_numpy(float)
    if cohort is None:
        return dumb
    return dumb - np.minimum(awaiting_recovery(cohort, rows), np.clip(dumb, 0, None))
