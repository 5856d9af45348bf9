"""A mid-programme start: a cohort's initial state shared out, and merged back;
each part's state exported (`export_parts`).

A scenario may start from a state (`Scenario.starting_from`): per cohort, the
partition of `records.STATES`, in-flight states either as bare counts or as
groups by (attempts made, days until due). The engine simulates a cohort as
parts (segment x class), so the state is shared between them on the way in
and the parts' exported states merged into one per cohort on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from migsim.model.scenario import Scenario
from migsim.model.state import InitialState
from migsim.sim.allocation import largest_remainder, share_pro_rata
from migsim.sim.records import STATES

__all__ = [
    "Group",
    "count_of",
    "export_parts",
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


#: States an excluded installation never reaches: every attempt rolls back.
_NEVER_EXCLUDED = frozenset({"stalled", "impaired", "migrated", "dumb"})
#: Where an excluded installation not yet abandoned is: waiting for its retry,
#: or queued for it. Excluded parts take these first (after the abandoned).
_EXCLUDED_FIRST = ("abandoned", "rolled_back", "queued")


def split_state(
    state: InitialState, sizes: list[int], kinds: list[str] | None = None
) -> list[dict]:
    """Share a cohort's initial state between its parts (segment x class).

    One part: the state as it is. Several (suppliers, hard cases, exclusions):
    every count and every group is shared in proportion to the parts'
    installations (largest remainder), then each part's queued first attempts
    take up the rounding so its states sum to its installations. An
    approximation: the state does not say which part an installation is in.

    What is known, given the parts' ``kinds``, is used: excluded installations
    are never stalled, impaired, migrated or dumb, and every attempt of theirs
    rolls back, so they make most of the abandoned and of the retries in
    flight. Excluded parts take the abandoned first, then the rolled-back and
    queued retries, each up to the room their other states leave; the rest is
    shared between the other parts in proportion.
    """
    plain = {name: getattr(state, name) for name in STATES}
    if len(sizes) == 1:
        return [{**plain, "recovering": state.recovering}]
    excluded = [kind == "excluded" for kind in (kinds or ["normal"] * len(sizes))]
    others = [0 if x else size for size, x in zip(sizes, excluded, strict=True)]
    parts: list[dict] = [{name: [] for name in STATES} for _ in sizes]
    for name, value in plain.items():
        if any(excluded) and name in _EXCLUDED_FIRST:
            continue  # below, once the room the other states leave is known
        weights = others if name in _NEVER_EXCLUDED else sizes
        _share(parts, name, value, weights)
    if any(excluded):
        for name in _EXCLUDED_FIRST:
            room = [
                max(0, size - _placed(part)) if x else 0
                for part, size, x in zip(parts, sizes, excluded, strict=True)
            ]
            _share(parts, name, plain[name], others, first=room)
    recovering = groups_of(state.recovering, attempts_made=1, days_until_due=1)
    for group in recovering:
        for part, n in zip(parts, largest_remainder(group.count, others), strict=True):
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


def _share(
    parts: list[dict],
    name: str,
    value,
    weights: list[int],
    first: list[int] | None = None,
) -> None:
    """Share one state (a count or groups) between the parts by ``weights``.

    With ``first`` (room per part), those parts first take up to their room,
    group by group in proportion; the rest goes by ``weights``. Held groups
    (ELS cases) go to the cohort's first part, as their cases do. First
    attempts (queued, none made) are left to take up the rounding.
    """
    room = list(first) if first is not None else [0] * len(parts)
    if isinstance(value, int):
        if name == "queued":
            value = [{"count": value, "attempts_made": 0, "days_until_due": 0}]
        else:
            taken = share_pro_rata(min(value, sum(room)), room, room)
            rest = largest_remainder(value - sum(taken), weights)
            for part, a, b in zip(parts, taken, rest, strict=True):
                part[name] = a + b
            return
    groups = groups_of(value, attempts_made=0, days_until_due=0)
    total = sum(g.count for g in groups if not g.held and g.attempts_made)
    quota = min(total, sum(room))
    to_first = (
        largest_remainder(
            quota, [g.count if not g.held and g.attempts_made else 0 for g in groups]
        )
        if quota
        else [0] * len(groups)
    )
    for group, head in zip(groups, to_first, strict=True):
        if group.held:  # held cases come back to the cohort's first part
            shares = [group.count] + [0] * (len(parts) - 1)
        elif name == "queued" and not group.attempts_made:
            shares = largest_remainder(
                group.count, weights if first is None else [0] * len(parts)
            )
        else:
            taken = share_pro_rata(head, room, room)
            room = [r - t for r, t in zip(room, taken, strict=True)]
            rest = largest_remainder(group.count - head, weights)
            shares = [a + b for a, b in zip(taken, rest, strict=True)]
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


def _placed(part: dict) -> int:
    """A part's installations placed so far, other than queued first attempts
    (which take up the rounding)."""
    return sum(
        count_of(part[name])
        if name != "queued"
        else sum(g["count"] for g in part[name] if g["attempts_made"])
        for name in STATES
    )


def part_states(scenario: Scenario, segments) -> list[list[dict] | None]:
    """Each segment's share of its cohort's ``initial_state``, by class.

    A state exported by a run lists every part (supplier x class) under
    ``parts``: each part takes up its own, exactly. Otherwise (or when the parts
    do not match this scenario's, e.g. other class shares) the state is shared
    out by `split_state`.
    """
    out: list[list[dict] | None] = [None] * len(segments)
    for c, cohort in enumerate(scenario.cohorts):
        state = cohort.initial_state
        if state is None:
            continue
        mine = [j for j, s in enumerate(segments) if s.cohort == c]
        exact = _exact_parts(state, [segments[j] for j in mine])
        if exact is not None:
            for j, parts in zip(mine, exact, strict=True):
                out[j] = parts
            continue
        sizes = [k.installations for j in mine for k in segments[j].classes]
        kinds = [k.kind for j in mine for k in segments[j].classes]
        shared = iter(split_state(state, sizes, kinds))
        for j in mine:
            out[j] = [next(shared) for _ in segments[j].classes]
    return out


def _exact_parts(state: InitialState, segments) -> list[list[dict]] | None:
    """The state's own parts for these segments, or ``None`` when they do not
    match them one to one (same supplier and class, same installations)."""
    if not state.parts:
        return None
    listed = {(p.supplier, p.kind): p for p in state.parts}
    wanted = [(s.label, k.kind, k.installations) for s in segments for k in s.classes]
    if len(listed) != len(wanted):
        return None
    out = []
    for segment in segments:
        parts = []
        for k in segment.classes:
            part = listed.get((segment.label, k.kind))
            if part is None or part.total != k.installations:
                return None
            parts.append(
                {name: getattr(part, name) for name in (*STATES, "recovering")}
            )
        out.append(parts)
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


# --------------------------------------------------------------------------- export
def export_parts(segment, day: int) -> list[dict]:
    """Each class's state of a segment (a `cohort.CohortState`) at the end of
    ``day``, as its ``export_state`` gives the segment's: a run continued from
    them takes up every class where it was.

    Pending, queued, stalled, rolled-back, recovering and held installations
    are kept by class (their columns). The resolved states are counted per
    segment: the excluded class's are its abandoned (it never migrates,
    stalls or goes dumb); the other classes' resolved installations (their
    size less what is pending or in flight) are shared between migrated,
    impaired, dumb awaiting a visit and abandoned in proportion to the
    segment's. That share cannot change what happens next: a resolved
    installation's class no longer matters, and the restorations' due days
    stay the segment's.
    """
    size, classes = segment.size, segment.segment.classes
    held = _held_by_column(segment)
    parts = []
    for k in range(len(classes)):
        columns = slice(k * size, (k + 1) * size)
        queued = [{"count": segment.fresh[k], "attempts_made": 0, "days_until_due": 0}]
        for due, counts in segment.retries:
            queued += [
                {
                    "count": int(n),
                    "attempts_made": made,
                    "days_until_due": due - day,
                }
                for made, n in enumerate(list(counts[columns]))
                if n
            ]
        stall_held, impaired_held = (
            held["stall"][columns],
            held["fix_forward"][columns],
        )
        part = {
            "pending": segment.pending_by_class[k],
            "queued": [g for g in queued if g["count"]],
            "stalled": _waiting(segment.stall_due[day + 1 :, columns])
            + _held_groups(stall_held),
            "rolled_back": _waiting(segment.retry_due[day + 1 :, columns]),
            "impaired": (
                [
                    {
                        "count": int(impaired_held.sum()),
                        "days_until_due": 1,
                        "held": True,
                    }
                ]
                if impaired_held.any()
                else []
            ),
            "recovering": (
                _waiting(segment.recover_due[day + 1 :, columns])
                if segment.recover_pmf is not None
                else []
            ),
        }
        parts.append(part)
    _share_resolved(segment, parts, day)
    return parts


def _held_by_column(segment) -> dict[str, np.ndarray]:
    """Installations held by open ELS cases of this segment, by column."""
    out = {
        "stall": np.zeros(segment.width, dtype=np.int64),
        "fix_forward": np.zeros(segment.width, dtype=np.int64),
    }
    for _raised, kind, _n, state, held in getattr(segment.els, "queue", ()):
        if state is segment and held is not None:
            out[kind] += held
    return out


def _share_resolved(segment, parts: list[dict], day: int) -> None:
    """Give each class its resolved states (see `export_parts`)."""
    classes = segment.segment.classes
    later = segment.restore_due[day + 1 :]
    impaired = [
        {"count": int(later[r]), "days_until_due": int(r + 1)}
        for r in np.flatnonzero(later)
    ]
    recovering = [count_of(p["recovering"]) for p in parts]
    totals = {  # the segment's resolved states, the excluded class's taken out
        "impaired": sum(g["count"] for g in impaired),
        "migrated": segment.migrated,
        "dumb": segment.dumb - sum(recovering),  # awaiting a site visit
        "abandoned": segment.abandoned - segment.excluded,
    }
    room = []
    for k, (c, part) in enumerate(zip(classes, parts, strict=True)):
        known = sum(
            count_of(part[name])
            for name in ("queued", "stalled", "rolled_back", "impaired")
        )
        known += part["pending"] + recovering[k]
        room.append(0 if k == segment.excluded_class else c.installations - known)
    for k, part in enumerate(parts):
        part.update(migrated=0, dumb=recovering[k], abandoned=0)
        if k == segment.excluded_class:
            part["abandoned"] = segment.excluded
    left = dict(totals)
    order = [k for k in range(len(parts)) if k != segment.excluded_class]
    for k in order[1:]:  # the first (normal) class takes what is left
        share = largest_remainder(room[k], list(left.values())) if room[k] else [0] * 4
        for name, n in zip(totals, share, strict=True):
            left[name] -= n
            _give(parts[k], name, n, impaired)
    for name, n in left.items():
        if order:
            _give(parts[order[0]], name, n, impaired)


def _give(part: dict, name: str, n: int, impaired: list[dict]) -> None:
    """Add ``n`` of a resolved state to a part; impaired ones are taken from
    the segment's restoration groups, latest due first."""
    if name != "impaired":
        part[name] += n
        return
    while n:
        group = impaired[-1]
        moved = min(n, group["count"])
        part["impaired"].insert(0, {**group, "count": moved})
        group["count"] -= moved
        n -= moved
        if not group["count"]:
            impaired.pop()


def _waiting(rows: np.ndarray) -> list[dict]:
    """Groups of a ledger's future rows of one class's columns (attempts made)."""
    return [
        {
            "count": int(rows[r, a]),
            "attempts_made": int(a),
            "days_until_due": int(r + 1),
        }
        for r, a in zip(*np.nonzero(rows), strict=True)
    ]


def _held_groups(by_made: np.ndarray) -> list[dict]:
    """Installations held by ELS cases, by attempts made (due once worked)."""
    return [
        {"count": int(n), "attempts_made": made, "days_until_due": 1, "held": True}
        for made, n in enumerate(by_made.tolist())
        if n
    ]
