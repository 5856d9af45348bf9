"""Operations: why pace matters, as mechanisms the engine runs each day.

With fixed per-attempt rates a faster ramp only changes *when* failures happen,
never how many. The mechanisms here make pace a risk decision, each from an
optional scenario section (a scenario without them runs exactly as before):

- **latent defects** in a new migration type: drawn once per replication; while
  undetected they hit a share of the cohort's attempts, and since a whole day's
  batch is exposed before its cases are seen, more installations are hit before
  detection at a higher pace; detection halts the cohort (or all) until a fix;
- **volume-dependent failures**: above a threshold of attempts a day the rates
  rise (success giving way) until a settings change;
- **ELS / MCC capacity**: cases are worked first in, first out, a limited number
  per working day; stalls resolve and fix forwards are restored no earlier than
  the day their case is worked; a share of dumb devices is recovered remotely;
- **suppliers**: cohorts split across suppliers (largest remainder), capacity
  shared by the Migration Scaling Methodology (``msm``: flat DMIN, then water-
  filling on remaining demand), daily nominations, business readiness (active
  installations wait for it; migrated ones are *operational* only after it);
- **throughput**: a day-to-day achieved share of the cap;
- **hard cases and exclusions**: sub-populations with worse rates, or that can
  never be migrated remotely;
- **consumer exposure**: change-of-supplier alerts lost and PPMID join failures
  until their fixes, prepayment devices left dumb.

Hard cases, exclusions and supplier splits make a cohort a set of *segments*
(`Segment`), each with its own queue, rates and ledgers in the engine; the
cohort's row in ``.daily`` is the sum of its segments. Everything here is
batch level: counts and FIFO batches, never an object per installation or case.

Place in the module flow: errors -> scenario -> policy -> operations -> engine.
This module reads only scenario models; the engine hands it its streams, its
resolved dates and its segment states (duck-typed) and calls its hooks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from migsim.model.scenario import OUTCOMES, Cohort, LatentDefect, Scenario
from migsim.sim.inputs import achieved_path

__all__ = [
    "OPERATIONS_FIGURES",
    "OPERATIONS_FLOWS",
    "OPERATIONS_LEVELS",
    "DefectRecord",
    "Operations",
    "Segment",
    "SegmentClass",
    "cached_pmf",
    "figures_in_use",
    "largest_remainder",
    "msm_shares",
    "plan_segments",
    "share_pro_rata",
]

#: Sub-counts (end-of-day levels) per cohort; each appears in ``.daily`` only when
#: the section that produces it is used. ``operational`` of ``migrated``,
#: ``awaiting_site_visit`` and ``prepayment_dumb`` of ``dumb``, ``excluded`` of
#: ``abandoned``; ``els_cases_open``: the cohort's ELS cases not yet worked;
#: ``defect_halt``: 1 on a day the cohort may not be attempted (a found defect).
OPERATIONS_LEVELS = (
    "operational",
    "awaiting_site_visit",
    "prepayment_dumb",
    "excluded",
    "els_cases_open",
    "defect_halt",
)
#: Extra flows of one day per cohort, each present only when its section is used.
OPERATIONS_FLOWS = (
    "defect_hits",  # attempts given a latent defect's outcome
    "stressed_attempts",  # attempts made at volume-stressed rates
    "dumb_recoveries",  # dumb devices recovered remotely (back to rolled_back)
    "cos_alerts_lost",  # change-of-supplier events whose loss alert is not sent
    "ppmid_join_failures",  # PPMID joins failing on newly migrated prepayment sites
)
#: The figures operations add to `results.FIGURES` (0 when a section is unused).
OPERATIONS_FIGURES = (
    "active_hit_by_defects",
    "dormant_hit_by_defects",
    "active_dumb_installation_days",
    "max_daily_active_interrupted",
    "peak_els_backlog",
    "active_prepayment_dumb",
    "cos_alerts_lost",
    "ppmid_join_failures",
    "excluded",
)
_EXCLUDED_RATES = np.array([0.0, 0.0, 1.0, 0.0, 0.0])  # every attempt rolls back


def figures_in_use(scenario: Scenario) -> frozenset[str]:
    """The operations figures a scenario's sections can make non-zero.

    Summaries and reports show these and skip the rest: a scenario without an
    operations section gets none (its output stays the foundation's).
    """
    cohorts = scenario.cohorts
    used: set[str] = set()
    for mode in ("active", "dormant"):
        if any(c.latent_defects for c in cohorts if c.mode == mode):
            used.add(f"{mode}_hit_by_defects")
    if scenario.els is not None:
        used.add("peak_els_backlog")
    if any(c.prepayment_share for c in cohorts):
        used.add("active_prepayment_dumb")
    if any(c.change_of_supplier for c in cohorts):
        used.add("cos_alerts_lost")
    if any(c.ppmid_join for c in cohorts):
        used.add("ppmid_join_failures")
    if any(c.excluded for c in cohorts):
        used.add("excluded")
    sections = (
        used
        or scenario.suppliers
        or scenario.capacity.achieved_share
        or scenario.capacity.achieved
        or any(c.hard or c.dumb or c.volume_failures for c in cohorts)
    )
    if sections:  # foundation quantities worth showing once operations are on
        used |= {"active_dumb_installation_days", "max_daily_active_interrupted"}
    return frozenset(used)


# --------------------------------------------------------------------------- sharing
@lru_cache(maxsize=1024)
def cached_pmf(delay) -> tuple[np.ndarray, np.ndarray]:
    """``delay.pmf()`` computed once per distinct delay (read-only arrays).

    Delays are frozen models, so equal delays share one table; building a
    triangular or lognormal table costs milliseconds, far more than a day.
    """
    days, probs = delay.pmf()
    days.setflags(write=False)
    probs.setflags(write=False)
    return days, probs


def share_pro_rata(total: int, weights: list[int], limits: list[int]) -> list[int]:
    """Share ``total`` units in proportion to ``weights``, never above ``limits``.

    Each gets floor(total * w / sum(w)); the remainder goes one unit at a time by
    largest fractional part (ties in list order). A share above its limit is
    capped and the surplus re-shared the same way among the others (water-filling).
    """
    shares = [0] * len(weights)
    open_ = [
        i
        for i, (w, lim) in enumerate(zip(weights, limits, strict=True))
        if w > 0 and lim > 0
    ]
    remaining = total
    while remaining > 0 and open_:
        weight_sum = sum(weights[i] for i in open_)
        base = {i: remaining * weights[i] // weight_sum for i in open_}
        left = remaining - sum(base.values())
        by_fraction = sorted(
            open_, key=lambda i: (-(remaining * weights[i] % weight_sum), i)
        )
        for i in by_fraction[:left]:
            base[i] += 1
        capped = [i for i in open_ if shares[i] + base[i] >= limits[i]]
        if not capped:
            for i in open_:
                shares[i] += base[i]
            return shares
        for i in capped:
            remaining -= limits[i] - shares[i]
            shares[i] = limits[i]
        open_ = [i for i in open_ if i not in capped]
    return shares


def largest_remainder(total: int, shares: list[float]) -> list[int]:
    """Split ``total`` by ``shares`` (largest remainder, ties in list order).

    Shares are read to 1e-9, so the split is exact and deterministic.
    """
    weights = [round(s * 1e9) for s in shares]
    if not any(weights):
        return [0] * len(shares)
    return share_pro_rata(total, weights, [total] * len(weights))


def msm_shares(cap: int, demands: list[int], dmin: int) -> list[int]:
    """Share a day's cap between suppliers by the Migration Scaling Methodology.

    Each supplier first gets DMIN_i = min(dmin, demand_i); the rest of the cap is
    shared in proportion to the remaining demand and never above it
    (water-filling). If the DMINs together exceed the cap, the cap is shared in
    proportion to them. Integer shares by largest remainder (`share_pro_rata`).

    >>> msm_shares(1000, [50, 300, 2000], 100)
    [50, 171, 779]
    >>> msm_shares(200, [500, 500, 40], 100)
    [84, 83, 33]
    """
    floors = [min(dmin, d) for d in demands]
    if sum(floors) >= cap:
        return share_pro_rata(cap, floors, floors)
    remaining = [d - f for d, f in zip(demands, floors, strict=True)]
    extra = share_pro_rata(cap - sum(floors), remaining, remaining)
    return [f + e for f, e in zip(floors, extra, strict=True)]


# --------------------------------------------------------------------------- segments
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
        made = []
        for supplier, _ in suppliers:
            parts = []
            for kind, _ in classes:
                count = next(counts)
                if kind == "hard":
                    rates = cohort.hard.outcomes.as_array()
                elif kind == "excluded":
                    rates = _EXCLUDED_RATES
                else:
                    rates = cohort.outcomes.as_array()
                stressed = (
                    rates
                    if increase is None or kind == "excluded"
                    else increase.apply(rates)
                )
                excluded = cohort.excluded.when if kind == "excluded" else None
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


# --------------------------------------------------------------------------- defects
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


class _Defect:
    """Runtime state of one latent defect (existence and fix delay drawn up front)."""

    def __init__(self, spec: LatentDefect, cohort: int, cohort_name: str, rng):
        self.spec = spec
        self.cohort = cohort
        self.cohort_name = cohort_name
        self.rng = rng
        self.exists = bool(rng.random() < spec.exists_probability)
        days, probs = cached_pmf(spec.fix_after_days)
        self.fix_days = int(days[rng.choice(len(days), p=probs)])
        self.outcome = OUTCOMES.index(spec.outcome)
        self.hit_share = spec.hit_share
        self.hits = 0
        self.first_exposed: int | None = None
        self.found_day: int | None = None

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


def hit_by_defects(
    defects: list[_Defect],
    batch: np.ndarray,
    day: int,
    columns: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Draw the installations of a batch that live defects hit.

    Returns the batch left for the ordinary outcome draw and the hits as an
    array (outcomes x column), or ``None`` when no defect is live. Each live
    defect hits ``Binomial(n, hit_share)`` of what earlier defects left, in the
    ``columns`` it can reach (a boolean mask; ``None``: all). Excluded
    installations are never reached: their attempts always roll back.
    """
    live = [d for d in defects if d.live(day)]
    if not live:
        return batch, None
    rest = batch.copy()
    reachable = rest.copy() if columns is None else np.where(columns, rest, 0)
    if not reachable.any():
        return batch, None
    hit = np.zeros((len(OUTCOMES), len(batch)), dtype=np.int64)
    for defect in live:
        if defect.first_exposed is None:
            defect.first_exposed = day
        if not defect.hit_share:
            continue
        for attempt in np.flatnonzero(reachable):
            n = int(defect.rng.binomial(int(rest[attempt]), defect.hit_share))
            if n:
                hit[defect.outcome, attempt] += n
                rest[attempt] -= n
                reachable[attempt] -= n
                defect.hits += n
    return rest, hit


# --------------------------------------------------------------------------- ELS
class _NoDesk:
    """No ELS section: cases are not counted and never gate anything."""

    open = 0

    def raise_cases(self, day, kind, count, state, by_attempt=None) -> bool:
        return False

    def work(self, day: int) -> None:
        return None


def _split_off(by_attempt: np.ndarray, count: int) -> np.ndarray:
    """Take ``count`` from counts by attempt number, most attempts made first."""
    part = np.zeros_like(by_attempt)
    for attempt in range(len(by_attempt) - 1, -1, -1):
        moved = min(count, int(by_attempt[attempt]))
        if moved:
            part[attempt] = moved
            by_attempt[attempt] -= moved
            count -= moved
            if not count:
                break
    return part


class ElsDesk:
    """ELS / MCC: a FIFO of case batches ``[day raised, kind, count, ...]``.

    On each working day, before anything else happens, the desk works up to
    ``daily_capacity`` cases raised on earlier days, oldest first (a batch may be
    split). A worked stall or fix-forward batch is handed back to its segment,
    which schedules its resolution on the later of its drawn delay's end and
    the day worked. Rollback and dumb cases are load only.
    """

    def __init__(
        self, capacity: int, kinds: list[str], working: np.ndarray, n_cohorts: int
    ):
        self.capacity = capacity
        self.kinds = frozenset(kinds)
        self.gated = self.kinds & {"stall", "fix_forward"}
        self.working = working
        self.queue: deque[list[Any]] = deque()
        self.open = 0
        self.open_by_cohort = [0] * n_cohorts
        self.raised = 0  # today
        self.worked = 0  # today

    def raise_cases(
        self, day: int, kind: str, count: int, state, by_attempt=None
    ) -> bool:
        """Queue ``count`` cases; True when the desk will hand them back when worked."""
        if kind not in self.kinds or not count:
            return False
        gated = kind in self.gated
        held = by_attempt.copy() if gated else None
        self.queue.append([day, kind, count, state, held])
        self.open += count
        self.open_by_cohort[state.index] += count
        self.raised += count
        return gated

    def work(self, day: int) -> None:
        if not self.open or not self.working[day]:
            return
        left = self.capacity
        while left and self.queue:
            entry = self.queue[0]
            raised, kind, count, state, held = entry
            if raised >= day:
                break  # raised today: worked from tomorrow
            taken = min(left, count)
            if held is not None:
                part = held if taken == count else _split_off(held, taken)
                state.worked(kind, raised, part, day)
            if taken == count:
                self.queue.popleft()
            else:
                entry[2] = count - taken
            left -= taken
            self.open -= taken
            self.open_by_cohort[state.index] -= taken
            self.worked += taken


# --------------------------------------------------------------------------- runtime
class Operations:
    """One replication's operations: segments, defects, ELS, suppliers, exposure.

    The engine builds one per replication and calls, each day: `start_of_day`
    (ELS works), `allocate` and `stressed` (the day's attempts), `record` (end
    of day: detection, exposure draws, extra columns); `quiet` before stopping
    early and `fill_from` after; `columns` and `defect_records` at the end.

    Parameters
    ----------
    scenario
        The resolved scenario.
    streams
        The replication's `engine.Streams` (anything with ``get(owner, purpose)``).
    working
        Boolean per day: a working day that is not a closure or bank holiday
        (ELS / MCC work on these days).
    dates
        The replication's `policy.ResolvedDates` (anything with ``day(path)`` and
        ``eligibility(cohort)``): supplier readiness, fix dates, eligibility.
    els_backlog
        An array ``(days,)`` to record the ELS backlog in (the engine shares it
        with the ramp policy's ``els_backlog`` metric); ``None``: a new one.
    """

    def __init__(
        self,
        scenario: Scenario,
        streams,
        working: np.ndarray,
        dates,
        els_backlog: np.ndarray | None = None,
    ):
        self.scenario = scenario
        self.working = working
        self.segments = plan_segments(scenario)
        self._eligibility = _split_eligibility(scenario, self.segments, dates)
        n_days, n_cohorts = scenario.horizon_days, len(scenario.cohorts)
        self.n_cohorts = n_cohorts
        self.active = [c.mode == "active" for c in scenario.cohorts]
        self.by_cohort = [
            [i for i, s in enumerate(self.segments) if s.cohort == c]
            for c in range(n_cohorts)
        ]
        self.by_supplier = [
            [i for i, s in enumerate(self.segments) if s.supplier == j]
            for j in range(len(scenario.suppliers))
        ]
        self.allocation = scenario.capacity.allocation
        self.dmin = scenario.capacity.dmin
        # ELS / MCC
        els = scenario.els
        self.desk = (
            ElsDesk(els.daily_capacity, els.cases_from, working, n_cohorts)
            if els is not None
            else _NoDesk()
        )
        # latent defects: existence and fix delay drawn once, up front
        self.defects = [
            [
                _Defect(
                    spec,
                    c,
                    cohort.name,
                    streams.get(cohort.name, f"defect:{spec.name}"),
                )
                for spec in cohort.latent_defects
            ]
            for c, cohort in enumerate(scenario.cohorts)
        ]
        self._all_defects = [d for ds in self.defects for d in ds]
        start = scenario.operations_state  # a mid-programme start, or None
        if start is not None and start.defects:
            self._take_up_defects(start.defects)
        self._existing = [d for d in self._all_defects if d.exists]
        # throughput: the share of the cap achieved, one draw per day
        share = scenario.capacity.achieved_share
        self.achieved = (
            share.sample(streams.get("capacity", "achieved_share"), n_days)
            if share is not None
            else None
        )
        self.achieved_mean: float | None = None  # an AR(1) share's drawn mean
        if scenario.capacity.achieved is not None:  # persistent (sim/inputs.py)
            self.achieved, self.achieved_mean = achieved_path(
                scenario.capacity.achieved, streams, n_days
            )
        # suppliers (a gate that never opens: never ready)
        self.ready_day = [
            -1
            if s.business_ready is None
            else _day(dates, f"suppliers.{s.name}.business_ready", scenario)
            for s in scenario.suppliers
        ]
        self.nominations = [
            (j, s.daily_nomination)
            for j, s in enumerate(scenario.suppliers)
            if s.daily_nomination is not None and self.by_supplier[j]
        ]
        self._waits_for_supplier = [
            seg.supplier >= 0
            and self.active[seg.cohort]
            and self.ready_day[seg.supplier] > 0
            for seg in self.segments
        ]
        # volume-dependent failures
        self.volume = [
            (
                c,
                cohort.volume_failures,
                None
                if cohort.volume_failures.until is None
                else dates.day(f"cohorts.{cohort.name}.volume_failures.until"),
            )
            for c, cohort in enumerate(scenario.cohorts)
            if cohort.volume_failures
        ]
        self._calm = [False] * len(self.segments)
        # consumer exposure
        self.cos = [
            (
                c,
                streams.get(cohort.name, "change_of_supplier"),
                cohort.change_of_supplier.annual_rate
                / 365.0
                * cohort.change_of_supplier.alert_loss_share,
                _until(
                    scenario, dates, f"cohorts.{cohort.name}.change_of_supplier.until"
                ),
            )
            for c, cohort in enumerate(scenario.cohorts)
            if cohort.change_of_supplier
        ]
        self.ppmid = [
            (
                c,
                streams.get(cohort.name, "ppmid_join"),
                (cohort.prepayment_share or 0.0) * cohort.ppmid_join.failure_share,
                _until(scenario, dates, f"cohorts.{cohort.name}.ppmid_join.until"),
            )
            for c, cohort in enumerate(scenario.cohorts)
            if cohort.ppmid_join
        ]
        self.simple = (
            len(self.segments) == n_cohorts
            and not scenario.suppliers
            and not self._all_defects
        )
        self._build_columns(n_days, n_cohorts, els_backlog)

    # ---------------------------------------------------------------- columns
    def _build_columns(
        self, n_days: int, n_cohorts: int, els_backlog: np.ndarray | None
    ) -> None:
        sc = self.scenario
        cohorts = sc.cohorts
        wanted = {
            "operational": bool(sc.suppliers),
            "awaiting_site_visit": any(c.dumb is not None for c in cohorts),
            "prepayment_dumb": any(c.prepayment_share for c in cohorts),
            "excluded": any(c.excluded is not None for c in cohorts),
            "els_cases_open": sc.els is not None,
            "defect_halt": bool(self._all_defects),
            "defect_hits": bool(self._all_defects),
            "stressed_attempts": bool(self.volume),
            "dumb_recoveries": any(
                c.dumb is not None and c.dumb.recovered_share > 0 for c in cohorts
            ),
            "cos_alerts_lost": bool(self.cos),
            "ppmid_join_failures": bool(self.ppmid),
        }
        self.levels = {
            name: np.zeros((n_days, n_cohorts), dtype=np.int64)
            for name in OPERATIONS_LEVELS
            if wanted[name]
        }
        self.flows = {
            name: np.zeros((n_days, n_cohorts), dtype=np.int64)
            for name in OPERATIONS_FLOWS
            if wanted[name]
        }
        day_names: list[str] = []
        if sc.els is not None:
            day_names += ["els_backlog", "els_cases_raised", "els_cases_worked"]
        if self.achieved is not None:
            day_names.append("achieved_cap")
        self.days = {name: np.zeros(n_days, dtype=np.int64) for name in day_names}
        if els_backlog is not None and "els_backlog" in self.days:
            self.days["els_backlog"] = els_backlog  # shared with the policy's metric
        self.recording = bool(self.levels or self.flows or self.days)
        # what each segment row carries, for `record`
        self._segment_fields = [
            name
            for name in (
                "awaiting_site_visit",
                "prepayment_dumb",
                "excluded",
                "defect_hits",
                "stressed_attempts",
                "dumb_recoveries",
            )
            if name in self.levels or name in self.flows
        ]

    def columns(
        self, daily_cap: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Extra ``(cohort_columns, day_columns)`` for the run log.

        ``daily_cap`` is the ramp policy's cap of every day; ``achieved_cap`` is
        it times the day's achieved share, rounded down, as `allocate` used it.
        """
        if "achieved_cap" in self.days:
            self.days["achieved_cap"] = np.floor(
                daily_cap * self.achieved + 1e-9
            ).astype(np.int64)
        return {**self.levels, **self.flows}, dict(self.days)

    def _take_up_defects(self, states) -> None:
        """Defects as a mid-programme state left them (days from the new day 0)."""
        known = {(d.cohort_name, d.spec.name): d for d in self._all_defects}
        for state in states:
            defect = known.get((state.cohort, state.defect))
            if defect is None:
                continue
            defect.exists, defect.hits = state.exists, state.hits
            defect.first_exposed = state.first_exposed
            defect.found_day = state.found_day
            defect.fix_days = state.fix_days

    def defect_state(self, day: int) -> list[dict[str, Any]]:
        """Every latent defect at the end of ``day``, days counted from ``day + 1``.

        Its existence and fix delay are as drawn for the replication (carried, so
        a continued run keeps them, found or not).
        """
        after = day + 1
        return [
            {
                "cohort": d.cohort_name,
                "defect": d.spec.name,
                "exists": d.exists,
                "hits": d.hits,
                "first_exposed": None
                if d.first_exposed is None
                else d.first_exposed - after,
                "found_day": None if d.found_day is None else d.found_day - after,
                "fix_days": d.fix_days,
            }
            for d in self._all_defects
        ]

    def defect_records(self) -> list[DefectRecord]:
        horizon = self.scenario.horizon_days
        return [d.record(horizon) for d in self._all_defects]

    def eligibility(self, segment: Segment) -> dict[int, list[int]]:
        """``{day: installations of each class}`` of a segment becoming eligible."""
        return self._eligibility[self.segments.index(segment)]

    def defects_for(self, segment: Segment) -> list[_Defect]:
        """The defects (existing in this replication) a segment's attempts meet."""
        return [d for d in self.defects[segment.cohort] if d.exists]

    # ---------------------------------------------------------------- days
    def start_of_day(self, day: int) -> None:
        """ELS / MCC work the open cases (before stalls resolve)."""
        self.desk.work(day)

    def halted(self, day: int) -> set[int]:
        """Cohorts that may not be attempted today because a found defect halts them."""
        out: set[int] = set()
        for defect in self._existing:
            if defect.halts(day):
                if defect.spec.halt == "all":
                    return set(range(self.n_cohorts))
                out.add(defect.cohort)
        return out

    def allocate(self, day: int, cap: int, queues: list[int]) -> list[int]:
        """Attempts per segment today, given the cap in force and the queues."""
        if self.achieved is not None:
            cap = int(np.floor(cap * self.achieved[day] + 1e-9))
        if self.simple:
            return self._share(cap, queues)
        available = list(queues)
        halted = self.halted(day) if self._existing else ()
        for i, segment in enumerate(self.segments):
            if available[i] and (
                segment.cohort in halted
                or (
                    self._waits_for_supplier[i]
                    and day < self.ready_day[segment.supplier]
                )
            ):
                available[i] = 0
        for j, nomination in self.nominations:
            members = self.by_supplier[j]
            wanted = [available[i] for i in members]
            if sum(wanted) > nomination:
                for i, n in zip(
                    members, share_pro_rata(nomination, wanted, wanted), strict=True
                ):
                    available[i] = n
        shares = [0] * len(self.segments)
        if self.allocation == "msm":
            groups = self.by_supplier
            demands = [sum(available[i] for i in g) for g in groups]
            totals = msm_shares(cap, demands, self.dmin)
        else:
            groups = self.by_cohort
            totals = self._share(cap, [sum(available[i] for i in g) for g in groups])
        for members, total in zip(groups, totals, strict=True):
            if not total:
                continue
            if len(members) == 1:
                shares[members[0]] = total
            else:
                wanted = [available[i] for i in members]
                for i, n in zip(
                    members, share_pro_rata(total, wanted, wanted), strict=True
                ):
                    shares[i] = n
        return shares

    def _share(self, cap: int, queues: list[int]) -> list[int]:
        """The foundation's split of the cap between cohorts: pro rata or priority."""
        if self.allocation == "priority":
            shares, left = [], cap
            for queued in queues:
                shares.append(min(queued, left))
                left -= shares[-1]
            return shares
        return share_pro_rata(cap, queues, queues)

    def stressed(self, day: int, shares: list[int]) -> list[bool]:
        """Per segment: are today's attempts made at volume-stressed rates?"""
        if not self.volume:
            return self._calm
        out = [False] * len(self.segments)
        total = sum(shares)
        for cohort, spec, until_day in self.volume:
            if until_day is not None and day >= until_day:
                continue
            members = self.by_cohort[cohort]
            count = total if spec.counted == "all" else sum(shares[i] for i in members)
            if count > spec.above_attempts:
                for i in members:
                    out[i] = True
        return out

    def record(
        self, day: int, states: list, state_rows: np.ndarray, flow_rows: np.ndarray
    ) -> None:
        """End of day: detect defects, draw exposure, record the extra columns.

        ``states`` are the engine's segment states (in `segments` order);
        ``state_rows`` / ``flow_rows`` the day's cohort rows (cohorts x STATES /
        FLOWS), already summed over segments.
        """
        if not self.recording:
            return
        for defect in self._existing:
            defect.end_of_day(day)
        fields = self._segment_fields
        if fields:
            for state in states:
                row = state.operations_row()
                c = state.index
                for name in fields:
                    value = row[name]
                    if value:
                        (
                            self.levels.get(name)
                            if name in self.levels
                            else self.flows[name]
                        )[day, c] += value
        if "operational" in self.levels:
            operational = self.levels["operational"][day]
            for state in states:
                supplier = state.segment.supplier
                if supplier < 0 or day >= self.ready_day[supplier]:
                    operational[state.index] += state.migrated
        if "defect_halt" in self.levels:
            for c in self.halted(day):
                self.levels["defect_halt"][day, c] = 1
        if "els_cases_open" in self.levels:
            desk = self.desk
            self.levels["els_cases_open"][day] = desk.open_by_cohort
            self.days["els_backlog"][day] = desk.open
            self.days["els_cases_raised"][day] = desk.raised
            self.days["els_cases_worked"][day] = desk.worked
            desk.raised = desk.worked = 0
        for c, rng, rate, until_day in self.cos:
            if day < until_day:
                exposed = int(
                    state_rows[c, 4] + state_rows[c, 5]
                )  # impaired + migrated
                if exposed:
                    self.flows["cos_alerts_lost"][day, c] = rng.binomial(exposed, rate)
        for c, rng, rate, until_day in self.ppmid:
            if day < until_day:
                # newly migrated: successes, fix forwards, completed stalls
                new = int(flow_rows[c, 1] + flow_rows[c, 4] + flow_rows[c, 6])
                if new:
                    self.flows["ppmid_join_failures"][day, c] = rng.binomial(new, rate)

    def quiet(self) -> bool:
        """Nothing left for operations to do that needs a simulated day."""
        return not self.desk.open

    def fill_from(self, day: int, states: list) -> None:
        """The run stopped early at ``day``: extend levels, draw what remains."""
        horizon = self.scenario.horizon_days
        if day >= horizon:
            return
        for name, array in self.levels.items():
            if name != "defect_halt":
                array[day:] = array[day - 1]
        if "operational" in self.levels:
            operational = self.levels["operational"]
            for state in states:  # the copied row counts segments ready by then
                supplier = state.segment.supplier
                if supplier >= 0 and self.ready_day[supplier] >= day:
                    operational[self.ready_day[supplier] :, state.index] += (
                        state.migrated
                    )
        if "defect_halt" in self.levels:
            for t in range(day, horizon):
                for c in self.halted(t):
                    self.levels["defect_halt"][t, c] = 1
        migrated = {}
        for state in states:
            migrated[state.index] = (
                migrated.get(state.index, 0) + state.migrated + (state.impaired)
            )
        for c, rng, rate, until_day in self.cos:
            last = min(horizon, until_day)
            if last > day and migrated.get(c, 0):
                self.flows["cos_alerts_lost"][day:last, c] = rng.binomial(
                    migrated[c], rate, size=last - day
                )


def _day(dates, path: str, scenario: Scenario) -> int:
    """The resolved day of a date field; past the horizon for a gate never opening."""
    day = dates.day(path)
    return scenario.horizon_days + 1 if day is None else day


def _until(scenario: Scenario, dates, path: str) -> int:
    """Day index of a fix date; past the horizon when there is none (or never)."""
    return _day(dates, path, scenario)


def _split_eligibility(
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
