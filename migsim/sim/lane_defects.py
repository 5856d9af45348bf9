"""Latent defects of one cohort across a block of replications.

The block engine's `defects`: each replication's defects exist (or not) and
take their fix delays as drawn up front by `defects.LiveDefect`; here their
run-time state (hits, first exposure, found day) is held as (rep, defect)
arrays, and the attempts they hit are read from each defect's own per-unit
stream, exactly as `defects.hit_by_defects` reads them: while a defect is live,
every attempt of a column takes its next uniform in that defect's column
stream, and one below the hit share is hit unless an earlier defect hit it.
The `LiveDefect` objects get their state back when a replication leaves the
block, so records and exports read them as after a scalar run.
"""

from __future__ import annotations

import numpy as np

from migsim.model.base import OUTCOMES
from migsim.sim.defects import LiveDefect

__all__ = ["LaneDefects"]

#: "never" for a day that may be negative (days before a mid-programme start)
_NONE = -(1 << 40)


def _days(days: list[list[int | None]]) -> np.ndarray:
    return np.array(
        [[_NONE if d is None else d for d in row] for row in days], np.int64
    )


class LaneDefects:
    """The latent defects of one cohort, for every replication of a block.

    ``defects[r]``: replication r's `LiveDefect` objects for the cohort, in
    the scenario's order (those that do not exist included); ``columns`` makes
    a per-unit column stream from one generator per replication.
    """

    def __init__(self, defects: list[list[LiveDefect]], width: int, columns):
        self.objects = defects
        self.specs = [d.spec for d in defects[0]]
        self.exists = np.array([[d.exists for d in ds] for ds in defects], dtype=bool)
        self.fix_days = np.array([[d.fix_days for d in ds] for ds in defects])
        # as drawn, or as a mid-programme start left them (`Operations`)
        self.hits = np.array([[d.hits for d in ds] for ds in defects], np.int64)
        self.first_exposed = _days([[d.first_exposed for d in ds] for ds in defects])
        self.found = _days([[d.found_day for d in ds] for ds in defects])
        self.hit_share = [spec.hit_share for spec in self.specs]
        self.outcome = [OUTCOMES.index(spec.outcome) for spec in self.specs]
        self.halts_all = np.array([spec.halt == "all" for spec in self.specs])
        self.columns = [
            [
                columns([ds[i].units.generator(c) for ds in defects]) if c else None
                for c in range(width)
            ]
            for i in range(len(self.specs))
        ]

    # ---------------------------------------------------------------- queries
    def live(self, day: int) -> np.ndarray:
        """(rep, defect): it exists and still hits attempts (to its found day)."""
        return self.exists & ((self.found == _NONE) | (day <= self.found))

    def halts(self, day: int) -> np.ndarray:
        """(rep, defect): found, and its fix not yet in (the cohort is halted)."""
        found = self.found
        return (found != _NONE) & (found < day) & (day <= found + self.fix_days)

    # ---------------------------------------------------------------- phases
    def expose(self, day: int, attempted: np.ndarray) -> np.ndarray:
        """Mark first exposure where a live defect meets today's batch
        (``attempted[r]``: replication r attempts the cohort); the live ones."""
        live = self.live(day) & attempted[:, None]
        self.first_exposed[live & (self.first_exposed == _NONE)] = day
        return live

    def strike(
        self, column: int, reps: np.ndarray, counts: np.ndarray, live: np.ndarray
    ) -> np.ndarray | None:
        """Each of the column's attempts' imposed outcome (-1: not hit), the
        attempts laid out replication after replication (``reps``, ``counts``);
        ``None`` when no defect hits any."""
        struck = np.full(int(counts.sum()), -1, dtype=np.int8)  # an outcome
        for i, share in enumerate(self.hit_share):
            on = live[reps, i]
            if not share or not on.any():
                continue
            stream = self.columns[i][column]
            assert stream is not None  # column 0 is never attempted
            mine, their = reps[on], counts[on]
            uniforms = stream.take(mine, their)
            hit = uniforms < share
            if on.all():  # every attempt reads this defect's stream
                where = None
                hit &= struck < 0
            else:  # the attempts of the replications it reaches
                starts = (np.cumsum(counts) - counts)[on]
                offsets = np.cumsum(their) - their
                where = np.arange(len(uniforms)) + np.repeat(starts - offsets, their)
                hit &= struck[where] < 0
            index = np.flatnonzero(hit)
            if len(index):
                struck[index if where is None else where[index]] = self.outcome[i]
                who = mine[np.searchsorted(np.cumsum(their), index, side="right")]
                self.hits[:, i] += np.bincount(who, minlength=len(self.hits))
        return struck if (struck >= 0).any() else None

    def detect(self, day: int, running: np.ndarray) -> None:
        """End of day: defects found by cases or days (`LiveDefect.end_of_day`)."""
        open_ = self.exists & (self.found == _NONE) & running[:, None]
        if not open_.any():
            return
        for i, spec in enumerate(self.specs):
            found = np.zeros(len(open_), dtype=bool)
            if spec.detected_after_cases is not None:
                found |= self.hits[:, i] >= spec.detected_after_cases
            if spec.detected_after_days is not None:
                exposed = self.first_exposed[:, i]
                found |= (exposed != _NONE) & (
                    day - exposed + 1 >= spec.detected_after_days
                )
            self.found[open_[:, i] & found, i] = day + spec.detection_lag_days

    # ---------------------------------------------------------------- block
    def keep(self, live: np.ndarray) -> None:
        """Keep the replications at ``live``; the others' objects get their state."""
        dropped = np.setdiff1d(np.arange(len(self.objects)), live)
        self.write_back(dropped)
        self.objects = [self.objects[r] for r in live.tolist()]
        for name in ("exists", "fix_days", "hits", "first_exposed", "found"):
            setattr(self, name, getattr(self, name)[live])
        for streams in self.columns:
            for stream in streams:
                if stream is not None:
                    stream.keep(live)

    def write_back(self, positions: np.ndarray | None = None) -> None:
        """Put the run-time state back on the `LiveDefect` objects."""
        rows = range(len(self.objects)) if positions is None else positions.tolist()
        for r in rows:
            for i, defect in enumerate(self.objects[r]):
                defect.hits = int(self.hits[r, i])
                exposed, found = int(self.first_exposed[r, i]), int(self.found[r, i])
                defect.first_exposed = None if exposed == _NONE else exposed
                defect.found_day = None if found == _NONE else found
