"""A mid-programme start: a cohort's initial state shared out, and merged back.

A scenario may start from a state (`Scenario.starting_from`): per cohort, the
partition of `records.STATES`, in-flight states either as bare counts or as
groups by (attempts made, days until due). The engine simulates a cohort as
parts (segment x class), so the state is shared between them on the way in
and the parts' exported states merged into one per cohort on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migsim.model.scenario import Scenario
from migsim.model.state import InitialState
from migsim.sim.allocation import largest_remainder
from migsim.sim.records import STATES

__all__ = [
    "Group",
    "count_of",
    "groups_of",
    "merge_states",
    "part_states",
    "pending_schedule",
    "split_state",
]


@dataclass(frozen=True)
class Group:
    count: int
    attempts_made: int
    days_until_due: int
    held: bool = False  # held by an ELS desk (see `els.ElsDesk`): not in a ledger


def groups_of(value: Any, **defaults: int) -> list[Group]:
    """A state's groups (models or mappings), or a bare count as one group."""
    if isinstance(value, int):
        return [Group(value, defaults["attempts_made"], defaults["days_until_due"])]
    return [
        Group(
            int(_field(group, "count")),
            int(_field(group, "attempts_made", defaults["attempts_made"])),
            int(_field(group, "days_until_due", defaults["days_until_due"])),
            bool(_field(group, "held", False)),
        )
        for group in value
    ]


def _field(group: Any, name: str, default: Any = None) -> Any:
    """A field of a group given as a mapping or as an object (a schema model)."""
    if isinstance(group, dict):
        return group.get(name, default)
    return getattr(group, name, default)


def count_of(value) -> int:
    return (
        value
        if isinstance(value, int)
        else sum(g.count for g in groups_of(value, attempts_made=0, days_until_due=0))
    )


def split_state(state: InitialState, sizes: list[int]) -> list[dict]:
    """Share a cohort's initial state between its parts (segment x class).

    One part: the state as it is. Several (suppliers, hard cases, exclusions):
    every count and every group is shared in proportion to the parts'
    installations (largest remainder), then each part's queued first attempts
    take up the rounding so its states sum to its installations. An
    approximation: the state does not say which part an installation is in.
    """
    plain = {name: getattr(state, name) for name in STATES}
    if len(sizes) == 1:
        return [{**plain, "recovering": state.recovering}]
    parts: list[dict] = [{} for _ in sizes]
    for name, value in plain.items():
        if isinstance(value, int):
            for part, n in zip(parts, largest_remainder(value, sizes), strict=True):
                part[name] = n
            continue
        for part in parts:
            part[name] = []
        for group in groups_of(value, attempts_made=0, days_until_due=0):
            shares = (  # held cases come back to the cohort's first part
                [group.count] + [0] * (len(sizes) - 1)
                if group.held
                else largest_remainder(group.count, sizes)
            )
            for part, n in zip(parts, shares, strict=True):
                if n:
                    part[name].append(
                        {
                            "count": n,
                            "attempts_made": group.attempts_made,
                            "days_until_due": group.days_until_due,
                            "held": group.held,
                        }
                    )
    recovering = groups_of(state.recovering, attempts_made=1, days_until_due=1)
    for group in recovering:
        for part, n in zip(parts, largest_remainder(group.count, sizes), strict=True):
            room = part["dumb"] - count_of(part.get("recovering", []))
            if min(n, room) > 0:
                part.setdefault("recovering", []).append(
                    {
                        "count": min(n, room),
                        "attempts_made": group.attempts_made,
                        "days_until_due": group.days_until_due,
                    }
                )
    for part, size in zip(parts, sizes, strict=True):
        gap = size - sum(count_of(part[name]) for name in STATES)
        if isinstance(part["queued"], int):  # a bare count: first attempts
            part["queued"] = [
                {"count": part["queued"], "attempts_made": 0, "days_until_due": 0}
            ]
        queued = part["queued"]
        fresh = sum(g["count"] for g in queued if not g["attempts_made"])
        queued[:] = [g for g in queued if g["attempts_made"]]
        fresh += gap  # first attempts take up the rounding...
        if fresh < 0:  # ...and pending what they cannot
            part["pending"] = max(0, part["pending"] + fresh)
            fresh = 0
        if fresh:
            queued.insert(0, {"count": fresh, "attempts_made": 0, "days_until_due": 0})
    return parts


def part_states(scenario: Scenario, segments) -> list[list[dict] | None]:
    """Each segment's share of its cohort's ``initial_state``, by class."""
    out: list[list[dict] | None] = [None] * len(segments)
    for c, cohort in enumerate(scenario.cohorts):
        if cohort.initial_state is None:
            continue
        mine = [j for j, s in enumerate(segments) if s.cohort == c]
        sizes = [k.installations for j in mine for k in segments[j].classes]
        parts = iter(split_state(cohort.initial_state, sizes))
        for j in mine:
            out[j] = [next(parts) for _ in segments[j].classes]
    return out


def pending_schedule(
    eligibility: dict[int, list[int]], pending: list[int]
) -> dict[int, list[int]]:
    """When the pending installations of a mid-programme state become eligible.

    Per class, the scenario's eligibility days after the start, latest first,
    take up the pending count (what became eligible earlier already left
    ``pending``); any pending left over (eligible on or before the start) is
    released on day 0.
    """
    out: dict[int, list[int]] = {}
    for k, left in enumerate(pending):
        for day in sorted(eligibility, reverse=True):
            take = min(left, eligibility[day][k])
            if take:
                out.setdefault(day, [0] * len(pending))[k] += take
                left -= take
        if left:
            out.setdefault(0, [0] * len(pending))[k] += left
    return out


def merge_states(a: dict, b: dict) -> dict:
    """Two parts' exported states as one: counts added, groups merged."""
    out = {}
    for name in (*STATES, "recovering"):
        if name not in a and name not in b:
            continue
        a.setdefault(name, [])
        b.setdefault(name, [])
        if isinstance(a[name], int):
            out[name] = a[name] + b[name]
            continue
        merged: dict[tuple, int] = {}
        for group in [*a[name], *b[name]]:
            key = (
                group.get("attempts_made"),
                group["days_until_due"],
                bool(group.get("held", False)),
            )
            merged[key] = merged.get(key, 0) + group["count"]
        out[name] = [
            {
                "count": n,
                **({"attempts_made": m} if m is not None else {}),
                "days_until_due": d,
                **({"held": True} if held else {}),
            }
            for (m, d, held), n in sorted(
                merged.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0] or 0)
            )
        ]
    return out
