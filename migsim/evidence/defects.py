"""Latent defects on an as-of date, read from actuals.

A run's exported state carries each latent defect as the replication left it
(``operations_state.defects``: whether it exists, its hits, when found); a
continuation from a state without them draws every defect afresh at its
``exists_probability``. Actuals say more, but only through what a programme
could see on the as-of date: a latent defect's hits look like ordinary failures
until it is found, so a ``defect_hits`` column (a run's own daily output has
one) is hindsight and is not read here. What shows is a found defect's halt:
from the day after it is found its cohort (or, with ``halt: all``, every
cohort) is not attempted until the fix is in.

So a defect that existed would, with its cohort attempted ``A`` times (all but
the excluded installations can be hit) up to the last day whose finding would
show by the as-of date, have been found unless its hits stayed below
``detected_after_cases``: ``q = P(Binomial(A, hit_share) < detected_after_cases)``
(and ``q = 0`` once exposed ``detected_after_days``). When the actuals show no
halt (the cohort attempted on every day the programme attempted, between its
first and last attempt), its chance of still being live falls from its prior
``p`` to ``p q / (p q + 1 - p)``; below `RULED_OUT` the state says it does not
exist. A found defect that was fixed before the as-of date would have shown a
halt too, so "no halt" rules out both.

On ``nov2019_operations`` with the ELS desk cut to 40 cases a day (seed 7), the
continuation from actuals on 3 April 2020 migrated 20 more (200 replications,
paired SE 3.3) than the one from the run's exact state: redrawn, the firmware
defect existed in 58 of 200 continuations (+66 where it did). Thousands of
attempts without a halt rule it out, and the bias goes.

A pause the actuals show can be the halt itself (`_halted`): a run of days the
cohort was not attempted while the programme attempted others (``halt: all``:
weekdays nobody attempted, which closures and no-go days mimic, so the notes
ask for a check), after enough reachable attempts for ``detected_after_cases``
hits to be plausible (or ``detected_after_days`` exposed), and as long as a fix
from ``fix_after_days`` can be (a one-day gap, or a gap longer than any fix, is
something else). The first such pause is the halt (a defect is found once); of
several defects of the cohort fitting it, the likeliest, prior times fit. The
state then says it exists, found on the cohort's last attempt before the pause
(hits go on to the found day, lag included, and the halt starts the day after;
a detection before a weekend puts the truth up to the lag later). A halt that
ended gives the fix as seen, to the cohort's next attempt; one still running
says only that the fix takes at least the days since it was found, so each
replication draws its own given that (``fix_days_at_least``), with its lower
median as ``fix_days``. Its hits are not seen: the fewest that find it are
written. On ``nov2019_operations`` (desk at 40, the defect made certain, seed
7), read on 21 February after a halt from 10 to 21 January, the exact state
with the defects read in its place continues exactly as the exact state (200
replications: +0.0 migrated), where the redraw at the prior 0.3 found it again
in 30% of them (-13.5, paired SE 2.4). Read a week into the halt, in 11
replications that found it, and continued 20 times each, itron_active's 30
days' migrations fell 506 short of the exact state's (SE 288) as those runs'
fixes happened to be short (17.4 days on average; the draw's mean is 20); the
redraw gave +72 (SE 295) from a mix of no halt at all (70%) and a new one.

A day the cohort had nothing to attempt (none attempted and, where the actuals
report ``queued``, none queued at its end) is no part of a pause: a halt holds a
queue, and a cohort that ran out of installations is not halted. Without the
``queued`` column such a cohort looks halted until its pause outlasts the
longest fix.

A pause that no defect's halt fits (too early to have found it, too short or
too long for its fix: a bank holiday, a supplier's day off, a cohort waiting on
its retries) is something else, so the attempts still rule the defect out or
not as if there had been none (before, any such pause left the defect at its
prior however many thousand attempts showed no halt). A defect exposed too
little to have been found, or one with an ``exists_probability`` of 1 and no
halt, is left to the forecast's draw, and the notes say which. So is a
cohort left out only on the as-of date (a pause still running counts from
`RUNNING_AT_LEAST` days); and when capacity goes in priority order a cohort's
own halt is not read (a cohort lower down goes without on days the others
take it all), so any pause of its own leaves its ``halt: cohort`` defects to
the draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from migsim.evidence.actuals import Actuals
from migsim.model.cohort import Cohort, LatentDefect
from migsim.model.scenario import Scenario

__all__ = ["RULED_OUT", "defect_states"]

#: The chance of being live below which a defect is taken as not existing.
RULED_OUT = 1e-3
#: The chance (of having been found by then, or of a fix that long) below which
#: a pause cannot be a defect's halt.
PLAUSIBLE = 0.01
#: Days (the programme attempting others) a pause still running on the as-of
#: date must have lasted to be read as a halt: a cohort left out for one day is
#: common enough (its queue waiting on retries, its supplier's day off) that
#: halting it for a whole fix on that alone would be the likelier mistake; a
#: real halt shows from the next day's actuals.
RUNNING_AT_LEAST = 2


def defect_states(
    scenario: Scenario, actuals: Actuals, as_of: date
) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``operations_state.defects`` the actuals up to ``as_of`` rule out
    or show found (by the cohort's halt), and what was assumed, in words (see
    the module doc)."""
    if not actuals.has("attempts") or not actuals.per_cohort:
        return [], []
    frame = actuals.frame[actuals.frame["date"] <= pd.Timestamp(as_of)]
    programme = frame.groupby("date")["attempts"].sum()  # every cohort's, by day
    states: list[dict[str, Any]] = []
    kept: list[str] = []
    found: list[str] = []
    # with capacity in priority order a cohort lower down goes without on
    # days the others take it all: its pauses are no sign of a halt
    ordered = scenario.capacity.allocation == "priority"
    for cohort in scenario.cohorts:
        if not cohort.latent_defects:
            continue
        rows = frame[frame["cohort"] == cohort.name]
        attempts = rows.groupby("date")["attempts"].sum()
        excluded = cohort.excluded.share if cohort.excluded else 0.0
        idle = _idle(rows) if actuals.has("queued") else None
        halted = _halted(cohort, attempts, programme, excluded, as_of, ordered, idle)
        if halted is not None:
            states.append(halted.state(cohort.name, as_of))
            found.append(halted.note(cohort, as_of))
        for defect in cohort.latent_defects:
            name = f"{cohort.name}.{defect.name}"
            if defect.exists_probability <= 0.0:
                continue
            if halted is not None:  # the halt masks what the others did
                if defect is not halted.defect:
                    kept.append(name)
                continue
            q = _unfound(defect, attempts, excluded, as_of)
            # a pause no halt fits (`_halted`: too early, too short or too long
            # for this defect's) is something else; under priority order no
            # halt is read, so any pause might be one
            unread = ordered and defect.halt == "cohort"
            paused = unread and _paused(attempts, programme, defect.halt, idle)
            if q is None or paused:
                kept.append(name)
                continue
            prior = defect.exists_probability
            live = prior * q / (prior * q + 1.0 - prior) if prior < 1.0 else 1.0
            if live >= RULED_OUT:
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
    return states, found + _notes(states, kept, as_of)


def _unfound(defect, attempts: pd.Series, excluded: float, as_of: date):
    """P(not found in time to show by ``as_of`` | it exists), or None before
    any attempt of its cohort: found at the end of a day, plus its lag, it
    halts from the next day, so days up to ``as_of - lag - 1`` count."""
    exposed = attempts[attempts > 0]
    if exposed.empty:
        return None
    last = pd.Timestamp(as_of - timedelta(days=defect.detection_lag_days + 1))
    seen = exposed[exposed.index <= last]
    if defect.detected_after_days is not None:
        days = (last - exposed.index[0]).days + 1
        if days >= defect.detected_after_days:
            return 0.0
    if defect.detected_after_cases is None:
        return 1.0
    reachable = int(round(float(seen.sum()) * (1.0 - excluded)))
    below = defect.detected_after_cases - 1
    return float(stats.binom.cdf(below, reachable, defect.hit_share))


def _paused(
    attempts: pd.Series,
    programme: pd.Series,
    halt: str,
    idle: pd.DatetimeIndex | None = None,
) -> bool:
    """Whether, between its first and last attempt, the cohort was not attempted
    on a day a found defect's halt would explain: a day the programme attempted
    others (``halt: cohort``), or any day nobody attempted (``halt: all``: no-go
    days and closures look the same, so this is cautious); not a day it had
    nothing to attempt (``idle``, `_idle`). Read where no halt is (capacity in
    priority order)."""
    active = attempts[attempts > 0]
    if active.empty:
        return False
    days = programme[(programme.index >= active.index[0])]
    days = days[days.index <= active.index[-1]]
    mine = attempts.reindex(days.index, fill_value=0)
    if halt == "all":
        every = pd.date_range(days.index[0], days.index[-1], freq="B")
        off = every.difference(days[days > 0].index)
    else:
        off = days.index[(days.to_numpy() > 0) & (mine.to_numpy() == 0)]
    return bool(len(off if idle is None else off.difference(idle)))


def _idle(rows: pd.DataFrame) -> pd.DatetimeIndex:
    """The days the cohort had nothing to attempt: none attempted and none
    queued at the end of the day (anything that came due, or became eligible,
    and was not attempted would still be queued). A halt holds a queue, so such
    a day is no part of one: a cohort that ran out of installations is not
    halted."""
    day = rows.groupby("date")[["attempts", "queued"]].sum()
    return day.index[(day["attempts"] == 0) & (day["queued"] == 0)]


def _notes(states: list[dict[str, Any]], kept: list[str], as_of: date) -> list[str]:
    notes = []
    if any(not s["exists"] for s in states):
        ruled = ", ".join(
            f"{s['cohort']}.{s['defect']}" for s in states if not s["exists"]
        )
        notes.append(
            f"latent defect {ruled}: attempted up to {as_of} without the halt its "
            "finding would have shown, enough to rule it out (it does not exist "
            "in the forecast)"
        )
    if kept:
        notes.append(
            f"latent defect {', '.join(kept)}: not ruled out by the attempts "
            "reported (too few, or a pause a halt could explain); the forecast "
            "draws whether it exists at its exists_probability"
        )
    return notes


# ---------------------------------------------------------------- halts seen
@dataclass(frozen=True)
class Pause:
    """Days in a row the cohort was not attempted when a halt would show:
    ``first`` to ``until``, after its attempt on ``last``; ``resumed``: its
    next attempt (None: not by the as-of date, the pause still running)."""

    last: pd.Timestamp
    first: pd.Timestamp
    until: pd.Timestamp
    resumed: pd.Timestamp | None


@dataclass(frozen=True)
class Halt:
    """A defect taken as found, from its halt: found at the end of ``found``
    (its detection lag included, as the engine counts it), the cohort first
    attempted on ``exposed``; the fix ``fix_days`` long, or, the halt still
    running, at least ``at_least`` (``fix_days`` then its conditional median).
    ``rivals``: the cohort's other defects that could have made the halt."""

    defect: LatentDefect
    pause: Pause
    found: pd.Timestamp
    exposed: pd.Timestamp
    attempts: int
    fix_days: int
    at_least: int | None
    rivals: tuple[str, ...]

    def state(self, cohort: str, as_of: date) -> dict[str, Any]:
        """As a `DefectState`, days from the day after ``as_of``. Its hits
        are not seen (hindsight): the fewest that find it are written."""
        day0 = pd.Timestamp(as_of + timedelta(days=1))
        state = {
            "cohort": cohort,
            "defect": self.defect.name,
            "exists": True,
            "hits": self.defect.detected_after_cases or 0,
            "first_exposed": (self.exposed - day0).days,
            "found_day": (self.found - day0).days,
            "fix_days": self.fix_days,
        }
        if self.at_least is not None:
            state["fix_days_at_least"] = self.at_least
        return state

    def note(self, cohort: Cohort, as_of: date) -> str:
        """What was read, in a planner's words."""
        pause, name = self.pause, f"{cohort.name}.{self.defect.name}"
        when = "while others were" if self.defect.halt == "cohort" else "by anyone"
        text = (
            f"latent defect {name}: {cohort.name} was not attempted from "
            f"{pause.first.date()} {when}, after {self.attempts:,} attempts; "
            f"taken as the halt its finding makes: found on {self.found.date()}"
        )
        if self.at_least is None:
            assert pause.resumed is not None
            text += (
                f", fixed after {self.fix_days} days (attempted again from "
                f"{pause.resumed.date()}); it hits nothing more in the forecast"
            )
        else:
            text += (
                f"; still halted on {as_of}, its fix has taken at least "
                f"{self.at_least} days, so each replication draws its fix delay "
                f"given that (median {self.fix_days} days)"
            )
        if self.defect.halt == "all":
            text += (
                "; with halt: all a weekday nobody attempted may also be a "
                "closure or a no-go day, so check this is the defect's halt"
            )
        if self.rivals:
            text += (
                f"; put down to {self.defect.name}, the likeliest (prior times "
                f"the chance of this halt) of it and {', '.join(self.rivals)}"
            )
        return text


def _halted(
    cohort: Cohort,
    attempts: pd.Series,
    programme: pd.Series,
    excluded: float,
    as_of: date,
    ordered: bool = False,
    idle: pd.DatetimeIndex | None = None,
) -> Halt | None:
    """The cohort's halt and the defect it is put down to, or None. Each
    defect's first pause it fits (found by then, a fix that long) counts;
    the earliest such pause is the halt (a defect is found once), and of the
    defects fitting it, the likeliest by prior times that fit. ``ordered``
    (capacity in priority order): a cohort's own halt is not read; ``idle``:
    the days it had nothing to attempt (`_idle`), in no pause."""
    fits = []
    for defect in cohort.latent_defects:
        if defect.exists_probability <= 0.0:
            continue
        if ordered and defect.halt == "cohort":
            continue
        for pause in _pauses(attempts, programme, defect.halt, as_of, idle):
            fit = _fit(defect, pause, attempts, excluded)
            if fit is not None:
                fits.append(
                    (pause.first, -defect.exists_probability * fit, defect, pause)
                )
                break
    if not fits:
        return None
    fits.sort(key=lambda f: (f[0], f[1]))
    first, _, defect, pause = fits[0]
    rivals = tuple(f[2].name for f in fits[1:] if f[0] == first)
    return _halt(defect, pause, attempts, excluded, rivals)


def _pauses(
    attempts: pd.Series,
    programme: pd.Series,
    halt: str,
    as_of: date,
    idle: pd.DatetimeIndex | None = None,
) -> list[Pause]:
    """The cohort's pauses after its first attempt, up to ``as_of``: runs of
    days the programme attempted others and not it (``halt: cohort``), or of
    weekdays nobody attempted (``halt: all``; closures and no-go days look the
    same, so such a pause is only a guess). One still running counts from
    `RUNNING_AT_LEAST` such days. A day the cohort had nothing to attempt
    (``idle``, `_idle`) is in none."""
    active = attempts[attempts > 0].index
    if active.empty:
        return []
    if halt == "all":
        days = pd.date_range(active[0], pd.Timestamp(as_of), freq="B")
        off = programme.reindex(days, fill_value=0).to_numpy() == 0
    else:
        days = programme.index[(programme.index >= active[0]) & (programme > 0)]
        off = attempts.reindex(days, fill_value=0).to_numpy() == 0
    if idle is not None:  # nothing to attempt: no sign of a halt
        off &= ~days.isin(idle)
    pauses = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], off.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        first, until = days[start], days[stop - 1]
        after = active[active > until]
        if not len(after) and stop - start < RUNNING_AT_LEAST:
            continue  # left out on the last day or so: too soon to say
        pauses.append(
            Pause(
                last=active[active < first][-1],
                first=first,
                until=until,
                resumed=after[0] if len(after) else None,
            )
        )
    return pauses


def _found_on(defect: LatentDefect, pause: Pause, exposed: pd.Timestamp):
    """The day it is taken as found (its lag included): the cohort's last
    attempt before the pause (hits go on to the found day, and the halt starts
    the day after; a detection on the last working day before a weekend, its lag
    running into it, puts the truth up to the lag later). Found by days alone:
    no earlier than the days and lag allow."""
    if defect.detected_after_cases is None and defect.detected_after_days:
        lag = defect.detection_lag_days + defect.detected_after_days - 1
        by_days = exposed + pd.Timedelta(days=lag)
        return min(max(pause.last, by_days), pause.first - pd.Timedelta(days=1))
    return pause.last


def _fit(
    defect: LatentDefect, pause: Pause, attempts: pd.Series, excluded: float
) -> float | None:
    """How well the pause fits the defect's halt: the chance it was found by
    then (by its hits among the reachable attempts up to the pause, or by its
    days exposed) times that of a fix as long as the pause, or None when
    either is below `PLAUSIBLE` (a pause too early, too short or too long)."""
    exposed = attempts[attempts > 0].index[0]
    found = _found_on(defect, pause, exposed)
    detected = 0.0
    if defect.detected_after_days is not None:
        latest = pause.first - pd.Timedelta(days=defect.detection_lag_days + 1)
        if (latest - exposed).days + 1 >= defect.detected_after_days:
            detected = 1.0
    if defect.detected_after_cases is not None:
        seen = float(attempts[attempts.index <= pause.last].sum())
        reachable = int(round(seen * (1.0 - excluded)))
        below = defect.detected_after_cases - 1
        detected = max(
            detected, float(stats.binom.sf(below, reachable, defect.hit_share))
        )
    low, high = _fix_range(pause, found)
    days, probs = defect.fix_after_days.pmf()
    fix = float(probs[(days >= low) & (days <= high)].sum())
    if detected < PLAUSIBLE or fix < PLAUSIBLE:
        return None
    return detected * fix


def _fix_range(pause: Pause, found: pd.Timestamp) -> tuple[int, float]:
    """The fix delays the pause allows: halted on ``until`` (found < until <=
    found + fix), and, resumed, attempted again no earlier than found + fix + 1."""
    low = max((pause.until - found).days, 1)
    if pause.resumed is None:
        return low, float("inf")
    return low, float((pause.resumed - found).days - 1)


def _halt(
    defect: LatentDefect,
    pause: Pause,
    attempts: pd.Series,
    excluded: float,
    rivals: tuple[str, ...],
) -> Halt:
    """The found state: a halt that ended took its observed length (to the
    cohort's next attempt); one still running, at least as long as it has run,
    each replication drawing its own (`DefectState.fix_days_at_least`), with
    the conditional median as the single number."""
    exposed = attempts[attempts > 0].index[0]
    found = _found_on(defect, pause, exposed)
    low, high = _fix_range(pause, found)
    at_least = None
    if pause.resumed is not None:
        fix = int(high)
    else:
        days, probs = defect.fix_after_days.pmf()
        keep = days >= low
        if keep.any():
            share = np.cumsum(probs[keep]) / probs[keep].sum()
            fix = int(days[keep][np.searchsorted(share, 0.5 - 1e-9)])  # lower median
        else:
            fix = low
        at_least = low
    return Halt(
        defect=defect,
        pause=pause,
        found=found,
        exposed=exposed,
        attempts=int(attempts[attempts.index <= pause.last].sum()),
        fix_days=fix,
        at_least=at_least,
        rivals=rivals,
    )
