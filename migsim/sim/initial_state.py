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

from migsim.model.distributions import probability_mean
from migsim.model.scenario import Scenario
from migsim.model.state import InitialState
from migsim.sim.allocation import largest_remainder, share_pro_rata, share_table
from migsim.sim.records import STATES

__all__ = [
    "Group",
    "PartOdds",
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


@dataclass(frozen=True)
class PartOdds:
    """What a part of a cohort (segment x class) makes likely, for sharing a state.

    ``rates`` are the class's first-level outcome rates (`OUTCOMES` order),
    ``then_success`` the cohort's, ``up_front`` whether the class is excluded
    before any attempt (abandoned on its eligible day).
    """

    installations: int
    rates: tuple[float, ...]
    then_success: float = 1.0
    max_attempts: int = 5
    up_front: bool = False

    def odds(self, state: str, made: int) -> float:
        """P(an installation of this part is in ``state`` having made ``made``
        attempts), up to a factor common to the parts: never attempted, 1; a
        retry after ``m`` failed attempts, fail^m (fail: the chance an attempt
        rolls back or stalls and fails); stalled at attempt m, fail^(m-1) x
        stall; abandoned, fail^max_attempts; resolved, the share of resolutions
        that end that way."""
        if state == "pending" or (state == "queued" and not made):
            return 1.0
        if self.up_front:
            return 1.0 if state == "abandoned" else 0.0
        success, stall, rollback, fix_forward, dumb = self.rates
        fail = min(1.0, rollback + stall * (1.0 - self.then_success))
        m = max(made, 1)
        if state in ("queued", "rolled_back"):
            return fail**m
        if state == "stalled":
            return fail ** (m - 1) * stall
        if state == "abandoned":
            return fail**self.max_attempts
        if fail >= 1.0:
            return 0.0
        resolved = (1.0 - fail**self.max_attempts) / (1.0 - fail)
        if state == "impaired":
            return fix_forward / (1.0 - fail)
        if state == "migrated":
            return resolved * (success + stall * self.then_success + fix_forward)
        return resolved * dumb  # dumb


def split_state(state: InitialState, parts: list[PartOdds]) -> list[dict]:
    """Share a cohort's initial state between its parts (segment x class).

    One part: the state as it is. Several (suppliers, hard cases, exclusions):
    the state does not say which part an installation is in, so each group
    (every state's count, every in-flight group by attempts made) is shared in
    proportion to each part's installations times how likely its installations
    are to be there (`PartOdds.odds`), fitted so that every part's states sum to
    its installations exactly (`allocation.share_table`).

    So a retry after two failed attempts is far more likely a hard case than a
    normal one (5% hard cases failing 22% per attempt against 1.8%: about 9 in
    10 of them), excluded installations (every attempt rolls back) are never
    stalled, impaired, migrated or dumb and make most of the abandoned, and
    installations never attempted are shared in proportion. Held groups (ELS
    cases) go to the cohort's first part, as their cases do.
    """
    plain = {name: getattr(state, name) for name in STATES}
    if len(parts) == 1:
        return [{**plain, "recovering": state.recovering}]
    out: list[dict] = [
        {
            name: 0 if isinstance(value, int) and name != "queued" else []
            for name, value in plain.items()
        }
        for _ in parts
    ]
    rows: list[tuple[str, Group]] = []
    free = [p.installations for p in parts]
    for name, value in plain.items():
        if isinstance(value, int):
            made = 0 if name == "queued" else 1
            rows.append((name, Group(value, made, 0)))
            continue
        for group in groups_of(value, attempts_made=0, days_until_due=0):
            if group.held:  # back to the cohort's first part, as its case
                _put(out[0], name, group, group.count)
                free[0] -= group.count
            else:
                rows.append((name, group))
    weights = np.array(
        [
            [p.installations * p.odds(name, g.attempts_made) for p in parts]
            for name, g in rows
        ]
    ).reshape(len(rows), len(parts))
    table = share_table([g.count for _, g in rows], free, weights)
    for (name, group), shares in zip(rows, table, strict=True):
        for part, n in zip(out, shares.tolist(), strict=True):
            if n:
                _put(part, name, group, n, bare=isinstance(plain[name], int))
    for group in groups_of(state.recovering, attempts_made=1, days_until_due=1):
        room = [count_of(p["dumb"]) - count_of(p.get("recovering", [])) for p in out]
        for part, n in zip(out, share_pro_rata(group.count, room, room), strict=True):
            if n:
                part.setdefault("recovering", []).append(
                    {
                        "count": n,
                        "attempts_made": group.attempts_made,
                        "days_until_due": group.days_until_due,
                    }
                )
    return out


def _put(part: dict, name: str, group: Group, n: int, bare: bool = False) -> None:
    """``n`` installations of ``group`` to a part's state ``name``."""
    if bare and name != "queued":
        part[name] += n
        return
    part[name].append(
        {
            "count": n,
            "attempts_made": group.attempts_made,
            "days_until_due": group.days_until_due,
            "held": group.held,
        }
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
        then = probability_mean(cohort.stall.then_success) if cohort.stall else 1.0
        odds = [
            PartOdds(
                k.installations,
                tuple(float(r) for r in k.rates),
                then,
                cohort.max_attempts,
                k.excluded == "up_front",
            )
            for j in mine
            for k in segments[j].classes
        ]
        shared = iter(split_state(state, odds))
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
