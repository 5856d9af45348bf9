"""Latent defects at run time: drawn once, hitting attempts until found.

A latent defect of a new migration type exists in a replication with its
probability; while live it gives a share of the cohort's attempts its outcome.
A whole day's batch is exposed before its cases are seen, so a faster pace means
more installations hit before detection; detection halts the cohort (or all)
until the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from migsim.model.base import OUTCOMES
from migsim.model.cohort import LatentDefect
from migsim.sim.delays import cached_pmf

__all__ = ["DefectRecord", "LiveDefect", "hit_by_defects", "live_defects"]


@dataclass(frozen=True)
class DefectRecord:
    """What one latent defect did in one replication.

    Attributes
    ----------
    cohort, defect
        Cohort name and defect name.
    exists
        Whether the defect existed in this replication (drawn once).
    exposed_from_day
        First day the cohort was attempted while it existed (None: never).
    found_day
        Day (end of) on which it was found; None when not within the horizon.
    resumed_day
        First day migrations may resume after the fix (found + fix delay + 1).
    installations_hit
        Installations it gave its outcome before it was found.
    """

    cohort: str
    defect: str
    exists: bool
    exposed_from_day: int | None
    found_day: int | None
    resumed_day: int | None
    installations_hit: int


class LiveDefect:
    """Runtime state of one latent defect (existence and fix delay drawn up front)."""

    def __init__(
        self, spec: LatentDefect, cohort: int, cohort_name: str, rng, units=None
    ):
        self.spec = spec
        self.cohort = cohort
        self.cohort_name = cohort_name
        self.rng = rng
        self.units = units  # per-attempt uniforms (`streams.UnitStreams`), by column
        self.exists = bool(rng.random() < spec.exists_probability)
        self.fix_days = self.draw_fix_days(1)
        self.outcome = OUTCOMES.index(spec.outcome)
        self.hit_share = spec.hit_share
        self.hits = 0
        self.first_exposed: int | None = None
        self.found_day: int | None = None

    def draw_fix_days(self, at_least: int) -> int:
        """A fix delay from ``fix_after_days`` given it is at least ``at_least``
        days (1: unconditioned): a halt seen still running when a state was
        read from actuals has lasted that long, so shorter fixes are ruled out;
        each replication draws its own. Beyond the longest delay: the longest."""
        days, probs = cached_pmf(self.spec.fix_after_days)
        if at_least > days[0]:
            keep = days >= at_least
            if not keep.any():
                return int(days[-1])
            days, probs = days[keep], probs[keep] / probs[keep].sum()
        return int(days[self.rng.choice(len(days), p=probs)])

    def live(self, day: int) -> bool:
        """It exists and still hits attempts (up to and including its found day)."""
        return self.exists and (self.found_day is None or day <= self.found_day)

    def halts(self, day: int) -> bool:
        found = self.found_day
        return found is not None and found < day <= found + self.fix_days

    def end_of_day(self, day: int) -> None:
        if not self.exists or self.found_day is not None:
            return
        spec = self.spec
        by_cases = spec.detected_after_cases is not None and (
            self.hits >= spec.detected_after_cases
        )
        by_days = (
            spec.detected_after_days is not None
            and self.first_exposed is not None
            and day - self.first_exposed + 1 >= spec.detected_after_days
        )
        if by_cases or by_days:
            self.found_day = day + spec.detection_lag_days

    def record(self, horizon_days: int) -> DefectRecord:
        found = (
            self.found_day
            if (self.found_day is not None and self.found_day < horizon_days)
            else None
        )
        return DefectRecord(
            cohort=self.cohort_name,
            defect=self.spec.name,
            exists=self.exists,
            exposed_from_day=self.first_exposed,
            found_day=found,
            resumed_day=None if found is None else found + self.fix_days + 1,
            installations_hit=self.hits,
        )


def live_defects(
    defects: list[LiveDefect],
    batch: np.ndarray,
    day: int,
    columns: np.ndarray | None = None,
) -> list[LiveDefect]:
    """The live defects that can hit some of today's batch (by column counts).

    A defect is exposed from the first day a batch holds installations it can
    reach (``columns``: a boolean mask; ``None``: all); excluded installations
    are never reached, their attempts always roll back. Returned: those with a
    hit share, in order.
    """
    if not defects:
        return []
    live = [d for d in defects if d.live(day)]
    if not live:
        return []
    reachable = batch if columns is None else np.where(columns, batch, 0)
    if not reachable.any():
        return []
    for defect in live:
        if defect.first_exposed is None:
            defect.first_exposed = day
    return [d for d in live if d.hit_share]


def hit_by_defects(
    live: list[LiveDefect],
    column: int,
    count: int,
    columns: np.ndarray | None = None,
) -> np.ndarray | None:
    """Which of a column's ``count`` attempts the live defects hit.

    Each attempt has its own uniform in each defect's stream (by column, taken
    for every attempt so the k-th attempt keeps its uniform): a defect hits it
    below ``hit_share`` unless an earlier defect did. Returns each attempt's
    imposed outcome (an index into OUTCOMES; -1: not hit), or ``None`` when none
    is hit.
    """
    if columns is not None and not columns[column]:
        return None
    struck = np.full(count, -1, dtype=np.intp)
    for defect in live:
        hits = (defect.units.take(column, count) < defect.hit_share) & (struck < 0)
        n = int(np.count_nonzero(hits))
        if n:
            struck[hits] = defect.outcome
            defect.hits += n
    return struck if (struck >= 0).any() else None
