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

The mechanisms live beside this module: `segments` (cohorts split into
segments and classes), `allocation` (sharing the cap), `defects` (latent
defects), `els` (the ELS / MCC desk). `Operations` puts them together for one
replication. It reads only scenario models; the engine hands it its streams,
its resolved dates and its segment states (duck-typed) and calls its hooks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from migsim.model.scenario import Scenario
from migsim.sim.allocation import msm_shares, share_pro_rata
from migsim.sim.defects import DefectRecord, LiveDefect
from migsim.sim.els import ElsDesk, NoDesk
from migsim.sim.inputs import achieved_path
from migsim.sim.segments import Segment, plan_segments, split_eligibility

__all__ = [
    "OPERATIONS_FIGURES",
    "OPERATIONS_FLOWS",
    "OPERATIONS_LEVELS",
    "Operations",
    "figures_in_use",
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
        The replication's `streams.Streams` (anything with ``get(owner, purpose)``).
    working
        Boolean per day: a working day that is not a closure or bank holiday
        (ELS / MCC work on these days).
    dates
        The replication's `dates.ResolvedDates` (anything with ``day(path)`` and
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
        self._eligibility = split_eligibility(scenario, self.segments, dates)
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
        # required with msm (the schema checks it), unused by the other allocations
        self.dmin = scenario.capacity.dmin if scenario.capacity.dmin is not None else 0
        # ELS / MCC
        els = scenario.els
        self.desk = (
            ElsDesk(els.daily_capacity, els.cases_from, working, n_cohorts)
            if els is not None
            else NoDesk()
        )
        # latent defects: existence and fix delay drawn once, up front
        self.defects = [
            [
                LiveDefect(
                    spec,
                    c,
                    cohort.name,
                    streams.get(cohort.name, f"defect:{spec.name}"),
                    streams.units(cohort.name, f"defect:{spec.name}"),
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
        # per segment, the first day it may be attempted: an active segment
        # waits for its supplier's business readiness; -1: it never waits
        self.segment_ready_day = [
            self.ready_day[seg.supplier]
            if seg.supplier >= 0
            and self.active[seg.cohort]
            and self.ready_day[seg.supplier] > 0
            else -1
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
        # exposure draws: one per day on a count levers change, so each day
        # draws from its own stream (`Streams.on_day`) and pairs with that day
        self.streams = streams
        self.cos = [
            (
                c,
                cohort.name,
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
                cohort.name,
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
            if state.fix_days_at_least is not None:  # a halt still running
                defect.fix_days = defect.draw_fix_days(state.fix_days_at_least)

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

    def defects_for(self, segment: Segment) -> list[LiveDefect]:
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
                segment.cohort in halted or day < self.segment_ready_day[i]
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
                        table = (
                            self.levels[name]
                            if name in self.levels
                            else self.flows[name]
                        )
                        table[day, c] += value
        if "operational" in self.levels:
            operational = self.levels["operational"][day]
            for state in states:
                supplier = state.segment.supplier
                if supplier < 0 or day >= self.ready_day[supplier]:
                    operational[state.index] += state.migrated
        if "defect_halt" in self.levels:
            for c in self.halted(day):
                self.levels["defect_halt"][day, c] = 1
        desk = self.desk
        if "els_cases_open" in self.levels and isinstance(desk, ElsDesk):
            self.levels["els_cases_open"][day] = desk.open_by_cohort
            self.days["els_backlog"][day] = desk.open
            self.days["els_cases_raised"][day] = desk.raised
            self.days["els_cases_worked"][day] = desk.worked
            desk.raised = desk.worked = 0
        on_day = self.streams.on_day
        for c, owner, rate, until_day in self.cos:
            if day < until_day:
                exposed = int(
                    state_rows[c, 4] + state_rows[c, 5]
                )  # impaired + migrated
                if exposed:
                    rng = on_day(owner, "change_of_supplier", day)
                    self.flows["cos_alerts_lost"][day, c] = rng.binomial(exposed, rate)
        for c, owner, rate, until_day in self.ppmid:
            if day < until_day:
                # newly migrated: successes, fix forwards, completed stalls
                new = int(flow_rows[c, 1] + flow_rows[c, 4] + flow_rows[c, 6])
                if new:
                    rng = on_day(owner, "ppmid_join", day)
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
        migrated: dict[int, int] = {}
        for state in states:
            migrated[state.index] = (
                migrated.get(state.index, 0) + state.migrated + (state.impaired)
            )
        lost = self.flows.get("cos_alerts_lost")
        for c, owner, rate, until_day in self.cos:
            assert lost is not None  # the column exists with the section
            exposed = migrated.get(c, 0)
            if exposed:
                for t in range(day, min(horizon, until_day)):
                    rng = self.streams.on_day(owner, "change_of_supplier", t)
                    lost[t, c] = rng.binomial(exposed, rate)


def _day(dates, path: str, scenario: Scenario) -> int:
    """The resolved day of a date field; past the horizon for a gate never opening."""
    day = dates.day(path)
    return scenario.horizon_days + 1 if day is None else day


def _until(scenario: Scenario, dates, path: str) -> int:
    """Day index of a fix date; past the horizon when there is none (or never)."""
    return _day(dates, path, scenario)
