"""Limits that say what they are: the bounds every scenario value is checked against.

A run allocates arrays sized by the horizon, the cohorts, ``max_attempts`` and the
longest delay, and counts installations in 64-bit integers. Values far outside
what a migration programme can be (a horizon of 10^9 days, 2^63 installations, a
Dirichlet alpha of 1e308) used to validate and then crash, overflow or run for
hours. Every bound here is checked by the schema (`SchemaModel` calls
`check_input` and `check_value` for every field), so a value outside gets one
line naming the file, the field and the bound, before anything runs. The bounds
leave ample room: the full SMETS1 fleet (8.1 million installations, 1,864 days)
uses a small fraction of each.

`check_memory` then estimates what one replication needs and compares it with
the memory this machine has free, for combinations (thousands of cohorts with
100 attempts over 20 years) that fit every single bound but not the machine.
"""

from __future__ import annotations

import enum
import math
import numbers
import os
import types
import typing
from datetime import date
from typing import Any

from migsim.common.errors import ScenarioError
from migsim.common.yamlio import shown as shown_text

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "LIMITS",
    "MAX_COHORTS",
    "MAX_DELAY_DAYS",
    "MAX_HORIZON_DAYS",
    "MAX_REPLICATIONS",
    "MAX_SOBOL_SAMPLES",
    "MAX_SWEEP_POINTS",
    "MIN_SOBOL_SAMPLES",
    "check_input",
    "check_memory",
    "check_value",
    "delay_support",
    "replication_bytes",
    "run_seed",
    "whole_number",
]

#: 20 years: the SMETS1 programme ran about four.
MAX_HORIZON_DAYS = 7305
#: 10 years: a stall, retry, restoration or recovery delay.
MAX_DELAY_DAYS = 3653
#: Dates a scenario may hold; the latest keeps every date of a run (start plus
#: horizon plus a delay) inside what daily tables can hold (year 2262).
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2200, 12, 31)
#: Cohorts in one scenario (the full fleet has 8).
MAX_COHORTS = 1000
#: Any other whole number (counts, days) and any other number's size.
MAX_COUNT = 10**9
MAX_NUMBER = 1e12
#: Per day: daily caps, nominations, ELS capacity (the programme peaked near 30,000).
MAX_PER_DAY = 10_000_000
#: Pseudo-attempts of a Dirichlet or Beta (calibrated alphas are counts of attempts).
MAX_CONCENTRATION = 1e10
#: Replications of one run (or of one sweep point, decision candidate...):
#: 10^12 asked for an index list that no memory holds.
MAX_REPLICATIONS = 1_000_000
#: Points of one sweep (a grid's product or a hypercube's K), and Sobol base
#: samples: both are listed in memory before the first runs.
MAX_SWEEP_POINTS = 100_000
MAX_SOBOL_SAMPLES = 2**16
#: Fewest Sobol base samples. The first 2^m points of a scrambled Sobol
#: sequence put one point in each 2^-m of every coordinate, so from 4 every
#: field has a point in the lowest and in the highest quarter of its range
#: (``value_low``, ``value_high``); at 2 one of them was empty in two draws of
#: three (a NaN swing), half of SALib's bootstrap resamples repeat one base
#: sample, and the 95% intervals held the known index about half the time.
MIN_SOBOL_SAMPLES = 4

_DAYS = (1, MAX_DELAY_DAYS, "days (10 years)")
_PER_DAY = (0, MAX_PER_DAY, "installations a day")
_CONCENTRATION = (0, MAX_CONCENTRATION, "pseudo-attempts")
_RUN_DAYS = (0, MAX_HORIZON_DAYS, "days (20 years)")
_INSTALLATIONS = (0, 100_000_000, "installations in one cohort")
# a day of a continued state, counted from its start_date (either way)
_STATE_DAYS = (-MAX_HORIZON_DAYS, MAX_HORIZON_DAYS, "days from start_date")

#: ``(model, field) -> (lowest, highest, unit)``: the documented bounds.
LIMITS: dict[tuple[str, str], tuple[float, float, str]] = {
    ("Scenario", "horizon_days"): (1, MAX_HORIZON_DAYS, "days (20 years)"),
    ("Scenario", "seed"): (0, 2**63 - 1, "(a 64-bit seed)"),
    ("Scenario", "meters_per_installation"): (0, 100, "meters"),
    ("Scenario", "clearance_share"): (0.01, 1, "(a share of the installations)"),
    ("Cohort", "installations"): _INSTALLATIONS,
    ("Cohort", "max_attempts"): (1, 100, "attempts"),
    ("Capacity", "daily_cap"): _PER_DAY,
    ("Capacity", "dmin"): _PER_DAY,
    ("ScheduleStep", "daily_cap"): _PER_DAY,
    ("Rule", "cap"): _PER_DAY,
    ("Rule", "max_cap"): _PER_DAY,
    ("Rule", "factor"): (1, 100, "(a multiple of the cap)"),
    ("Rule", "days"): _RUN_DAYS,
    ("Condition", "window"): _RUN_DAYS,
    ("Requires", "min_days_at_cap"): _RUN_DAYS,
    ("Supplier", "daily_nomination"): _PER_DAY,
    ("Els", "daily_capacity"): _PER_DAY,
    ("LatentDefect", "detected_after_days"): _RUN_DAYS,
    ("LatentDefect", "detection_lag_days"): _RUN_DAYS,
    ("OperationsState", "cap"): _PER_DAY,
    ("OperationsState", "ceiling"): _PER_DAY,
    ("FixedDelay", "days"): _DAYS,
    ("UniformDelay", "low"): _DAYS,
    ("UniformDelay", "high"): _DAYS,
    ("TriangularDelay", "low"): _DAYS,
    ("TriangularDelay", "mode"): _DAYS,
    ("TriangularDelay", "high"): _DAYS,
    ("LognormalDelay", "median"): _DAYS,
    ("LognormalDelay", "sigma"): (0, 5, "(log-days)"),
    ("DefectState", "first_exposed"): _STATE_DAYS,
    ("DefectState", "found_day"): _STATE_DAYS,
    ("DefectState", "fix_days_at_least"): _DAYS,
    ("WaitingGroup", "days_until_due"): _DAYS,
    ("ImpairedGroup", "days_until_due"): _DAYS,
    **{
        ("DirichletAlpha", outcome): _CONCENTRATION
        for outcome in ("success", "stall", "rollback", "fix_forward", "dumb")
    },
    ("BetaProbability", "alpha"): _CONCENTRATION,
    ("BetaProbability", "beta"): _CONCENTRATION,
    ("BetaShare", "alpha"): _CONCENTRATION,
    ("BetaShare", "beta"): _CONCENTRATION,
    ("ShareBeta", "alpha"): _CONCENTRATION,
    ("ShareBeta", "beta"): _CONCENTRATION,
    ("SlipDate", "median_days"): (0, MAX_DELAY_DAYS, "days (10 years)"),
    ("SlipDate", "sigma"): (0, 5, "(log-days)"),
    ("BlackSwan", "factor"): (1, 100, "(times the slip)"),
    ("ProgrammeDelay", "median"): (0, 100, "(a delay factor)"),
    ("ProgrammeDelay", "sigma"): (0, 5, "(log of the factor)"),
    ("SizeRange", "low"): _INSTALLATIONS,
    ("SizeRange", "high"): _INSTALLATIONS,
    ("RatioRange", "low"): (0, 100, "meters"),
    ("RatioRange", "high"): (0, 100, "meters"),
    ("CapRange", "low"): _PER_DAY,
    ("CapRange", "high"): _PER_DAY,
}
#: The standard normal quantile of `LOGNORMAL_CUT` (0.9999), where lognormal
#: delays are cut.
_Z_CUT = 3.719016485455709


def _kinds(annotation: Any) -> str:
    return str(annotation)


def _has_bool(value: Any, annotation: str) -> bool:
    """A ``true``/``false`` given for this field, or among a plain list's or
    mapping's values (a nested model checks its own fields)."""
    if isinstance(value, bool):
        return True
    if isinstance(value, list | tuple):
        return any(isinstance(v, bool) for v in value)
    if isinstance(value, dict) and "dict[" in annotation:
        return any(isinstance(v, bool) for v in value.values())
    return False


def _takes(annotation: Any) -> tuple[bool, bool]:
    """Whether a field's type takes a number, and whether it takes text (a
    ``str``, a text ``Literal``, an enum, a date written as text, or a value a
    plain validator reads itself)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        number, text = _takes(base)
        custom = any(type(m).__name__ == "PlainValidator" for m in meta)
        return number, text or custom
    if origin in (typing.Union, types.UnionType):
        kinds = [_takes(arg) for arg in typing.get_args(annotation)]
        return any(n for n, _ in kinds), any(t for _, t in kinds)
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        return (
            any(isinstance(v, int | float) and not isinstance(v, bool) for v in values),
            any(isinstance(v, str) for v in values),
        )
    if annotation in (int, float):
        return True, False
    if isinstance(annotation, type):
        return False, issubclass(annotation, str | date | enum.Enum)
    return False, True  # a type this check does not know: left to pydantic


def _text_for_a_number(value: Any, annotation: Any) -> str | None:
    """Text given where only a number belongs (``"365"``: pydantic would read it
    as 365), for this field or among a plain list's or mapping's values."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _text_for_a_number(value, typing.get_args(annotation)[0])
    if isinstance(value, list | tuple) and origin in (list, tuple):
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        return next(
            (t for v in value if (t := _text_for_a_number(v, inner)) is not None),
            None,
        )
    if isinstance(value, dict) and origin is dict:
        args = typing.get_args(annotation)
        inner = args[1] if len(args) == 2 else Any
        return next(
            (
                t
                for v in value.values()
                if (t := _text_for_a_number(v, inner)) is not None
            ),
            None,
        )
    if isinstance(value, str):
        number, text = _takes(annotation)
        if number and not text:
            return value
    return None


def check_input(model: type, field: str, value: Any, shown: str = "") -> Any:
    """Refuse values that YAML or pydantic would silently turn into something else.

    ``true`` where a number belongs (it would read as 1), text where only a
    number belongs (``"365"`` would read as 365: a quoted number validated and
    ran) and a number where a date belongs (``start_date: 0`` would read as
    1970-01-01) are errors.
    """
    info = getattr(model, "model_fields", {}).get(field)
    if info is None:
        return value
    where = f"{shown or field}: "
    annotation = _kinds(info.annotation)
    if "bool" not in annotation and _has_bool(value, annotation):
        raise ValueError(f"{where}true/false is not a value here (a number or text is)")
    text = _text_for_a_number(value, info.annotation)
    if text is not None:
        raise ValueError(
            f"{where}a number is needed here, not text {shown_text(text)} "
            "(write it without quotes)"
        )
    wants_date = "datetime.date" in annotation and not any(
        kind in annotation for kind in ("int", "float", "str")
    )
    numbers = value if isinstance(value, list) else [value]
    if wants_date and any(
        isinstance(v, int | float) and not isinstance(v, bool) for v in numbers
    ):
        raise ValueError(f"{where}a date (YYYY-MM-DD) is needed here, not a number")
    return value


def _dates(value: Any) -> list[date]:
    if isinstance(value, date):
        return [value]
    if isinstance(value, list | tuple):
        return [d for v in value for d in _dates(v)]
    if isinstance(value, dict):
        return [d for v in value.values() for d in _dates(v)]
    return []


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    return []


def _fmt(bound: float) -> str:
    if isinstance(bound, int) or float(bound).is_integer():
        return f"{int(bound):,}"
    return f"{bound:g}"


def check_value(model: type, field: str, value: Any) -> Any:
    """Check a validated field against its documented bound (`LIMITS`), or the
    general ones: dates within `EARLIEST_DATE`..`LATEST_DATE`, whole numbers up
    to `MAX_COUNT`, other numbers up to `MAX_NUMBER` in size."""
    for day in _dates(value):
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise ValueError(
                f"{day} is outside the dates a scenario may hold "
                f"({EARLIEST_DATE} to {LATEST_DATE})"
            )
    bound = LIMITS.get((model.__name__, field))
    for number in _numbers(value):
        if bound is not None:
            low, high, unit = bound
            if not low <= number <= high:
                raise ValueError(
                    f"{_fmt(number) if abs(number) < 1e15 else f'{number:.3g}'} is "
                    f"outside the limit {_fmt(low)} to {_fmt(high)} {unit}"
                )
        elif isinstance(number, int) and abs(number) > MAX_COUNT:
            raise ValueError(_beyond(f"{number:,}", number, f"{MAX_COUNT:,}"))
        elif isinstance(number, float) and abs(number) > MAX_NUMBER:
            raise ValueError(_beyond(f"{number:.3g}", number, f"{MAX_NUMBER:g}"))
    if field == "cohorts" and isinstance(value, list) and len(value) > MAX_COHORTS:
        raise ValueError(f"{len(value):,} cohorts: the limit is {MAX_COHORTS:,}")
    return value


def delay_support(delay: Any) -> int:
    """The longest delay a delay distribution can give, in whole days."""
    kind = getattr(delay, "dist", None)
    if kind == "fixed":
        return int(delay.days)
    if kind == "lognormal":
        return math.ceil(delay.median * math.exp(delay.sigma * _Z_CUT))
    return math.ceil(delay.high)


def check_model(model: Any) -> None:
    """Bounds that involve several fields of one model (a lognormal's tail)."""
    if getattr(model, "dist", None) == "lognormal" and hasattr(model, "sigma"):
        longest = delay_support(model)
        if longest > MAX_DELAY_DAYS:
            raise ValueError(
                f"its 0.9999 quantile is {longest:,} days, above the limit "
                f"{MAX_DELAY_DAYS:,} days (10 years): lower median or sigma"
            )


# ------------------------------------------------------------------------ memory
def _delays(cohort: Any) -> list[Any]:
    found = []
    for section, name in (
        ("stall", "resolves_after_days"),
        ("rollback", "retry_after_days"),
        ("fix_forward", "restored_after_days"),
        ("dumb", "recovered_after_days"),
    ):
        part = getattr(cohort, section, None)
        delay = getattr(part, name, None) if part is not None else None
        if delay is not None:
            found.append(delay)
    return found


def replication_bytes(scenario: Any) -> int:
    """About how many bytes one replication allocates at its peak.

    Each cohort segment keeps due-day ledgers of (horizon + longest delay) rows by
    (classes x attempts) columns: retries, restorations and recoveries one each,
    stalls one per result (completes, or fails and retries after each day of the
    retry delay); the run log keeps every day's states and flows. Supplier
    splits and hard or excluded classes are counted at their most.
    """
    days = scenario.horizon_days
    total = days * len(scenario.cohorts) * 20 * 8  # the log: states + flows
    for cohort in scenario.cohorts:
        longest = max([1, *(delay_support(d) for d in _delays(cohort))])
        rows = days + longest + 1
        width = (cohort.max_attempts + 1) * 3
        segments = max(1, len(getattr(cohort, "suppliers", None) or {}))
        rollback = getattr(cohort, "rollback", None)
        retry = getattr(rollback, "retry_after_days", None)
        then = 1 + (delay_support(retry) if retry is not None else 1)
        total += segments * (3 + then) * rows * width * 8
    return total


def free_memory() -> int | None:
    """Bytes this process may still allocate: free memory, or its own limit."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = None
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            available = soft if available is None else min(available, soft)
    except (ImportError, OSError, ValueError):
        pass
    return available


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(scenario: Any, workers: int = 1) -> None:
    """Refuse a run whose replications would not fit in this machine's free memory.

    Raises
    ------
    ScenarioError
        Naming the scenario, the estimate, what drives it and what is free.
    """
    one = replication_bytes(scenario)
    need = one * max(1, workers)
    free = free_memory()
    if free is None or need <= free // 2:
        return
    if one <= free // 2:  # one fits: it is the workers, not the scenario
        raise ScenarioError(
            f"{scenario.name}: {workers:,} workers at a time need about "
            f"{_gib(need)} of memory ({_gib(one)} a replication), more than half "
            f"of the {_gib(free)} free here: use at most -j "
            f"{max(1, (free // 2) // one)}"
        )
    raise ScenarioError(
        f"{scenario.name}: a replication needs about "
        f"{_gib(need / max(1, workers))} of memory "
        f"({len(scenario.cohorts)} cohorts x {scenario.horizon_days:,} days x "
        f"max_attempts x delay days; {workers} at a time), more than half of the "
        f"{_gib(free)} free here: shorten horizon_days or the longest delays, or "
        "lower max_attempts"
    )


def _beyond(shown: str, number: float, limit: str) -> str:
    """A number past the unit-less bounds, said the right way round: -1e308
    read "is above the limit 1e+12"."""
    if number < 0:
        return f"{shown} is below the limit -{limit}"
    return f"{shown} is above the limit {limit}"


def whole_number(name: str, value: Any, low: int, high: int | None) -> int:
    """``value`` as an int in ``low..high`` (no upper bound when None), or a
    TypeError/ValueError naming the argument: the Python API's counts and
    seeds, which no schema checks.

    A whole float (2.0) is taken, as scenario fields take it. Without this
    check, seed=2.5 ran seed 2 and True ran 1 replication without a word,
    10**10 replications asked for an index list no memory holds (the command
    line stops at `MAX_REPLICATIONS`), a negative first_replication wrote a run
    folder migsim then refused to read, and batch_size=-1 failed deep inside
    with an AssertionError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a whole number, not {value!r}")
    if isinstance(value, numbers.Integral):
        whole = int(value)
    elif math.isfinite(value) and float(value).is_integer():
        whole = int(float(value))
    else:
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if whole < low or (high is not None and whole > high):
        span = f"at least {low:,}" if high is None else f"{low:,} to {high:,}"
        raise ValueError(f"{name} must be {span}, not {whole:,}")
    return whole


def run_seed(seed: Any) -> int:
    """A run seed given to the Python API, checked as a scenario's ``seed`` is
    (`whole_number`): int(2.5) ran seed 2 without a word."""
    low, high, _ = LIMITS[("Scenario", "seed")]
    return whole_number("seed", seed, int(low), int(high))
