"""Segments: the parts of a cohort the engine simulates, each with its own queue.

Supplier splits make a cohort several segments (one per supplier); hard cases
and exclusions make a segment several classes (sub-populations with their own
rates) that share its queue and ledgers. A cohort without those sections is
exactly one segment of one class, and runs as the foundation did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from migsim.model.cohort import Cohort
from migsim.model.scenario import Scenario
from migsim.sim.allocation import largest_remainder, share_pro_rata

__all__ = ["Segment", "SegmentClass", "plan_segments", "split_eligibility"]

_EXCLUDED_RATES = np.array([0.0, 0.0, 1.0, 0.0, 0.0])  # every attempt rolls back


@dataclass(frozen=True, eq=False)
class SegmentClass:
    """One sub-population of a segment: normal, hard or excluded installations.

    Attributes
    ----------
    kind
        ``normal``, ``hard`` (the cohort's ``hard.outcomes``) or ``excluded``
        (every attempt rolls back).
    installations
        Its count (largest remainder over the cohort's supplier x class cells).
    rates, stressed_rates
        First-level outcome rates, and the rates on a volume-stressed day.
    excluded
        ``None``, or how the class is excluded: ``attempted`` / ``up_front``.
    """

    kind: str
    installations: int
    rates: np.ndarray
    stressed_rates: np.ndarray
    excluded: str | None = None


@dataclass(frozen=True, eq=False)
class Segment:
    """The part of a cohort one supplier serves (the whole cohort when unsplit).

    Each segment has its own queue and ledgers in the engine; its classes
    (normal, hard, excluded) share them, each in its own columns.

    Attributes
    ----------
    cohort
        Index of its cohort in the scenario.
    label
        ``""`` for an unsplit cohort; otherwise the supplier's name.
    owner
        Owner name of its random streams: the cohort's name for the cohort's
        first segment, ``cohort/supplier`` for the others.
    classes
        Its sub-populations, normal first; classes with no installations are
        dropped (a segment keeps at least one).
    supplier
        Index into ``scenario.suppliers``; -1 when the cohort is not split.
    """

    cohort: int
    label: str
    owner: str
    classes: tuple[SegmentClass, ...]
    supplier: int = -1

    @property
    def installations(self) -> int:
        return sum(c.installations for c in self.classes)


def _classes(cohort: Cohort) -> list[tuple[str, float]]:
    hard = cohort.hard.share if cohort.hard else 0.0
    excluded = cohort.excluded.share if cohort.excluded else 0.0
    classes = [("normal", max(0.0, 1.0 - hard - excluded))]
    if cohort.hard is not None:
        classes.append(("hard", hard))
    if cohort.excluded is not None:
        classes.append(("excluded", excluded))
    return classes


def _class_rates(cohort: Cohort, kind: str) -> tuple[np.ndarray, str | None]:
    """A class's outcome rates, and when excluded installations are excluded."""
    if kind == "hard" and cohort.hard is not None:
        return cohort.hard.outcomes.as_array(), None
    if kind == "excluded" and cohort.excluded is not None:
        return _EXCLUDED_RATES, cohort.excluded.when
    return cohort.outcomes.as_array(), None


def plan_segments(scenario: Scenario) -> list[Segment]:
    """Every cohort's segments, in cohort order, then supplier order.

    A cohort's installations are split over its (supplier x class) cells in one
    largest-remainder split; suppliers without installations are dropped, but a
    cohort always keeps at least one segment.
    """
    supplier_index = {s.name: i for i, s in enumerate(scenario.suppliers)}
    segments: list[Segment] = []
    for c, cohort in enumerate(scenario.cohorts):
        suppliers = list(cohort.suppliers.items()) or [("", 1.0)]
        classes = _classes(cohort)
        cells = [a * b for _, a in suppliers for _, b in classes]
        counts = iter(largest_remainder(cohort.installations, cells))
        increase = cohort.volume_failures.increase if cohort.volume_failures else None
        made: list[Segment] = []
        for supplier, _ in suppliers:
            parts = []
            for kind, _ in classes:
                count = next(counts)
                rates, excluded = _class_rates(cohort, kind)
                stressed = (
                    rates
                    if increase is None or kind == "excluded"
                    else increase.apply(rates)
                )
                parts.append(SegmentClass(kind, count, rates, stressed, excluded))
            kept = tuple(p for p in parts if p.installations) or tuple(parts[:1])
            made.append(
                Segment(
                    cohort=c,
                    label=supplier,
                    owner=cohort.name if not made else f"{cohort.name}/{supplier}",
                    classes=kept,
                    supplier=supplier_index.get(supplier, -1),
                )
            )
        kept_segments = [s for s in made if s.installations] or made[:1]
        segments.extend(kept_segments)
    return segments


def split_eligibility(
    scenario: Scenario, segments: list[Segment], dates
) -> list[dict[int, list[int]]]:
    """Share each cohort's eligibility days between its segments' classes, exactly.

    Day by day (ascending), the installations becoming eligible are shared in
    proportion to what each (segment, class) cell still has pending, by largest
    remainder; so each cell's days sum to its installations and a cohort's day
    totals are unchanged. A cohort with one segment and one class keeps its own.
    """
    out: list[dict[int, list[int]]] = [{} for _ in segments]
    for c, cohort in enumerate(scenario.cohorts):
        cells = [
            (i, k)
            for i, s in enumerate(segments)
            if s.cohort == c
            for k in range(len(s.classes))
        ]
        left = [segments[i].classes[k].installations for i, k in cells]
        for day, count in sorted(dates.eligibility(cohort).items()):
            split = share_pro_rata(count, left, left) if len(cells) > 1 else [count]
            for (i, k), n in zip(cells, split, strict=True):
                counts = out[i].setdefault(day, [0] * len(segments[i].classes))
                counts[k] += n
            left = [a - b for a, b in zip(left, split, strict=True)]
    return out
