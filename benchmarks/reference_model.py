"""Per-installation SimPy reference model, used only as a speed yardstick.

migsim simulates migrations at batch level (cohorts of installations moving
together). To show what that buys, we need the obvious alternative to compare
against: one SimPy process per installation, each drawing its own random
numbers and waiting on its own events. This module is that alternative. It is
deliberately plain -- no vectorisation, no batching -- because its job is to be
an honest picture of the naive approach, not a competitor.

It reads the same scenario YAML as migsim, but as a plain dict (it does not
import migsim, so the two implementations stay independent and the benchmark
still has a baseline while migsim is being written).

Model (per installation)
------------------------
Time is in whole days; day ``d`` is ``start_date + d``. Each day:

1. at ``t = d`` (integer times), installations whose stall resolves, whose
   retry delay ends or whose fix-forward restoration is due act first;
2. at ``t = d + 0.5`` the dispatcher process hands out attempt tokens, up to
   ``daily_cap`` across all cohorts, on working days that are not closures
   (nor bank holidays, when ``calendar.bank_holidays`` names a region).

The half-day offset is what guarantees step 1 happens before step 2 without
relying on SimPy's event ordering within a timestep.

Allocation: ``pro_rata`` splits the cap in proportion to each cohort's queued
count (largest-remainder rounding, ties to file order); ``priority`` serves
cohorts in file order. Within a cohort, retries go first, oldest first, then
fresh installations in index order.

Attempt outcomes: success -> migrated; dumb -> terminal; fix_forward ->
impaired, migrated when restored; stall -> waits the drawn delay (and not
before ``release_on``), then migrated with probability ``then_success``,
otherwise fails like a rollback on that day; rollback -> waits the retry
delay and rejoins the queue. A failure on attempt ``max_attempts`` abandons
the installation.

The run stops at clearance (every installation migrated, dumb or abandoned)
or when the horizon ends. The clearance day is ``(clearance date -
start_date).days``, i.e. the day of the last terminal event.

Usage::

    python benchmarks/reference_model.py scenarios/nov2019_epcl.yaml --reps 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import itertools
import json
import math
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simpy
import yaml

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
OUTCOMES = ("success", "stall", "rollback", "fix_forward", "dumb")

# Offset of the dispatcher within each day; see the module docstring.
DISPATCH_OFFSET = 0.5


# --------------------------------------------------------------------------
# Scenario parsing
# --------------------------------------------------------------------------


def _as_date(value: Any) -> dt.date:
    """YAML gives ``date`` objects for bare ISO dates, strings if quoted."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


class Delay:
    """A delay distribution in whole days, drawn one installation at a time.

    Every draw is at least one day: a zero delay would land an event on the
    current day after the dispatcher has already run, which the daily
    schedule has no slot for.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.kind = spec["dist"]
        if self.kind == "fixed":
            self.days = int(spec["days"])
        elif self.kind == "uniform":
            self.low, self.high = int(spec["low"]), int(spec["high"])
        elif self.kind == "triangular":
            self.low = float(spec["low"])
            self.mode = float(spec["mode"])
            self.high = float(spec["high"])
        elif self.kind == "lognormal":
            self.mu = math.log(float(spec["median"]))
            self.sigma = float(spec["sigma"])
        else:
            raise ValueError(f"unknown delay distribution {self.kind!r}")

    def draw(self, rng: np.random.Generator) -> int:
        if self.kind == "fixed":
            days = self.days
        elif self.kind == "uniform":
            days = int(rng.integers(self.low, self.high + 1))  # inclusive
        elif self.kind == "triangular":
            days = math.ceil(rng.triangular(self.low, self.mode, self.high))
        else:  # lognormal: median * exp(sigma * Z)
            days = math.ceil(rng.lognormal(self.mu, self.sigma))
        return max(1, days)


# Used when a stall fails but the scenario has no rollback block (rollback
# rate 0): the installation still needs some retry delay.
NEXT_DAY = Delay({"dist": "fixed", "days": 1})


@dataclass
class Cohort:
    """One cohort's parameters plus its live attempt queue."""

    name: str
    installations: int
    eligible_day: int
    max_attempts: int
    cum_probs: list[float]
    stall_delay: Delay | None
    then_success: float
    release_day: int
    retry_delay: Delay
    restore_delay: Delay | None
    # Heap of (is_fresh, queued_day, seq, token): retries (is_fresh=0)
    # first, then oldest first; seq keeps fresh installations in index order.
    queue: list[tuple[int, int, int, simpy.Event]] = field(default_factory=list)

    def draw_outcome(self, rng: np.random.Generator) -> str:
        u = rng.random()
        for name, edge in zip(OUTCOMES, self.cum_probs, strict=True):
            if u < edge:
                return name
        return OUTCOMES[-1]


def _parse_cohort(raw: dict[str, Any], start: dt.date) -> Cohort:
    outcomes = raw["outcomes"]
    probs = [float(outcomes.get(name, 0.0)) for name in OUTCOMES]
    total = sum(probs)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"cohort {raw['name']}: outcome rates sum to {total}")
    cum = list(itertools.accumulate(p / total for p in probs))

    stall = raw.get("stall") or {}
    rollback = raw.get("rollback") or {}
    fix_forward = raw.get("fix_forward") or {}
    eligible = _as_date(raw.get("eligible_from", start))
    release = stall.get("release_on")
    return Cohort(
        name=raw["name"],
        installations=int(raw["installations"]),
        eligible_day=max(0, (eligible - start).days),
        max_attempts=int(raw["max_attempts"]),
        cum_probs=cum,
        stall_delay=Delay(stall["resolves_after_days"]) if stall else None,
        then_success=float(stall.get("then_success", 1.0)),
        release_day=(_as_date(release) - start).days if release else 0,
        retry_delay=(Delay(rollback["retry_after_days"]) if rollback else NEXT_DAY),
        restore_delay=(
            Delay(fix_forward["restored_after_days"]) if fix_forward else None
        ),
    )


# --------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------


@dataclass
class ReferenceResult:
    """Outcome of one replication."""

    clearance_day: int | None  # None: not cleared within the horizon
    migrated: int
    dumb: int
    abandoned: int
    attempts: int
    days_simulated: int


def _bank_holidays(region: str) -> set[dt.date]:
    """Great Britain bank holidays (scenario key calendar.bank_holidays)."""
    if region == "none":
        return set()
    import holidays  # a migsim dependency; only needed when a scenario uses it

    subdiv = {"england": "ENG", "scotland": "SCT"}[region]
    return set(holidays.country_holidays("GB", subdiv=subdiv, years=range(2000, 2051)))


class ReferenceModel:
    """One replication of the per-installation model."""

    def __init__(self, scenario: dict[str, Any], seed: int | None = None) -> None:
        self.start = _as_date(scenario["start_date"])
        self.horizon = int(scenario["horizon_days"])
        self.rng = np.random.default_rng(
            scenario.get("seed", 0) if seed is None else seed
        )
        calendar = scenario.get("calendar") or {}
        working = calendar.get("working_days", WEEKDAYS[:5])
        self.working_weekdays = {WEEKDAYS.index(day[:3].title()) for day in working}
        self.closures = {_as_date(day) for day in calendar.get("closures") or []}
        self.closures |= _bank_holidays(calendar.get("bank_holidays", "none"))
        capacity = scenario["capacity"]
        self.daily_cap = int(capacity["daily_cap"])
        self.allocation = capacity.get("allocation", "pro_rata")
        if self.allocation not in ("pro_rata", "priority"):
            raise ValueError(f"unknown allocation {self.allocation!r}")
        self.cohorts = [_parse_cohort(c, self.start) for c in scenario["cohorts"]]

        self.env = simpy.Environment()
        self.cleared = self.env.event()
        self.outstanding = sum(c.installations for c in self.cohorts)
        self.counts = {"migrated": 0, "dumb": 0, "abandoned": 0}
        self.attempts = 0
        self.clearance_day: int | None = None
        self._seq = itertools.count()

    # -- calendar ----------------------------------------------------------

    def is_attempt_day(self, day: int) -> bool:
        date = self.start + dt.timedelta(days=day)
        return date.weekday() in self.working_weekdays and date not in self.closures

    # -- bookkeeping -------------------------------------------------------

    def today(self) -> int:
        return int(self.env.now)

    def wait_until(self, day: int) -> simpy.Timeout:
        """Sleep until the start of ``day`` (integer time: before dispatch)."""
        return self.env.timeout(day - self.env.now)

    def finish(self, state: str) -> None:
        self.counts[state] += 1
        self.outstanding -= 1
        if self.outstanding == 0:
            self.clearance_day = self.today()
            self.cleared.succeed()

    def enqueue(self, cohort: Cohort, retry: bool) -> simpy.Event:
        token = self.env.event()
        entry = (0 if retry else 1, self.today(), next(self._seq), token)
        heapq.heappush(cohort.queue, entry)
        return token

    # -- processes ---------------------------------------------------------

    def installation(self, cohort: Cohort):
        """Life of one installation: queue, attempt, react to the outcome."""
        rng = self.rng
        yield self.wait_until(cohort.eligible_day)
        attempts = 0
        while True:
            yield self.enqueue(cohort, retry=attempts > 0)
            attempts += 1
            outcome = cohort.draw_outcome(rng)
            if outcome == "success":
                self.finish("migrated")
                return
            if outcome == "dumb":
                self.finish("dumb")
                return
            if outcome == "fix_forward":
                yield self.wait_until(self.today() + cohort.restore_delay.draw(rng))
                self.finish("migrated")
                return
            if outcome == "stall":
                resolve = self.today() + cohort.stall_delay.draw(rng)
                yield self.wait_until(max(resolve, cohort.release_day))
                if rng.random() < cohort.then_success:
                    self.finish("migrated")
                    return
            # Rollback, or a stall that resolved as a failure.
            if attempts >= cohort.max_attempts:
                self.finish("abandoned")
                return
            yield self.wait_until(self.today() + cohort.retry_delay.draw(rng))

    def allocate(self, cap: int) -> list[int]:
        """Split today's cap into per-cohort attempt counts."""
        queued = [len(c.queue) for c in self.cohorts]
        total = sum(queued)
        if total <= cap:
            return queued
        if self.allocation == "priority":
            shares = []
            for q in queued:
                take = min(q, cap)
                shares.append(take)
                cap -= take
            return shares
        # pro_rata, largest remainder; each share <= its queue since cap < total.
        exact = [cap * q / total for q in queued]
        shares = [math.floor(x) for x in exact]
        spare = cap - sum(shares)
        order = sorted(range(len(exact)), key=lambda i: shares[i] - exact[i])
        for i in order[:spare]:
            shares[i] += 1
        return shares

    def dispatcher(self):
        """Hand out attempt tokens once per day, after that day's wake-ups."""
        yield self.env.timeout(DISPATCH_OFFSET)
        for day in range(self.horizon):
            if self.is_attempt_day(day):
                shares = self.allocate(self.daily_cap)
                for cohort, share in zip(self.cohorts, shares, strict=True):
                    for _ in range(share):
                        heapq.heappop(cohort.queue)[3].succeed()
                    self.attempts += share
            yield self.env.timeout(1)

    def run(self) -> ReferenceResult:
        for cohort in self.cohorts:
            for _ in range(cohort.installations):
                self.env.process(self.installation(cohort))
        self.env.process(self.dispatcher())
        if self.outstanding:
            # Stop at clearance, or just after the last day's dispatch: events
            # at t = horizon would belong to a day outside the horizon.
            horizon_end = self.env.timeout(self.horizon - 0.25)
            self.env.run(until=self.env.any_of([self.cleared, horizon_end]))
        else:
            self.clearance_day = 0
        cleared = self.clearance_day is not None
        return ReferenceResult(
            clearance_day=self.clearance_day,
            migrated=self.counts["migrated"],
            dumb=self.counts["dumb"],
            abandoned=self.counts["abandoned"],
            attempts=self.attempts,
            days_simulated=self.clearance_day + 1 if cleared else self.horizon,
        )


def load_scenario(path: str | Path) -> dict[str, Any]:
    """Read a scenario YAML as a plain dict (deliberately not via migsim)."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def run_reference(scenario: dict[str, Any], seed: int | None = None) -> ReferenceResult:
    """Run one replication; ``seed`` overrides the scenario's own seed."""
    return ReferenceModel(scenario, seed).run()


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size so far, in MiB (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (timings, results, peak RSS) instead of text; "
        "bench_foundation.py uses this to run the reference in its own process",
    )
    args = parser.parse_args(argv)

    scenario = load_scenario(args.scenario)
    base_seed = scenario.get("seed", 0) if args.seed is None else args.seed
    reps = []
    for rep in range(args.reps):
        t0 = time.perf_counter()
        result = run_reference(scenario, seed=base_seed + rep)
        elapsed = time.perf_counter() - t0
        reps.append({"seed": base_seed + rep, "seconds": elapsed, **asdict(result)})
        if not args.json:
            print(f"rep {rep}: {result} in {elapsed:.2f}s")
    if args.json:
        print(json.dumps({"reps": reps, "peak_rss_mib": peak_rss_mib()}))
    else:
        print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
