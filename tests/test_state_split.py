"""Sharing a state without parts between a cohort's parts (`split_state`): both
margins exact (every part sums to its installations, every group is shared out
whole), classes by how likely their installations are to be where the state
says, and a finished programme continues without a phantom attempt."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cohort, day, load, outcomes, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migsim.model.state import InitialState
from migsim.sim.allocation import share_table
from migsim.sim.engine import run_replication
from migsim.sim.initial_state import PartOdds, count_of, groups_of, split_state
from migsim.sim.records import STATES

NORMAL = (0.93, 0.05, 0.01, 0.005, 0.005)
HARD = (0.6, 0.2, 0.17, 0.02, 0.01)
EXCLUDED = (0.0, 0.0, 1.0, 0.0, 0.0)


def _by_key(value) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for g in groups_of(value, attempts_made=0, days_until_due=0):
        key = (g.attempts_made, g.days_until_due)
        out[key] = out.get(key, 0) + g.count
    return out


# ------------------------------------------------------------------ share_table
@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=5),
    rows=st.integers(1, 7),
    data=st.data(),
)
def test_share_table_keeps_both_margins(sizes, rows, data):
    total = sum(sizes)
    cuts = sorted(
        data.draw(st.lists(st.integers(0, total), min_size=rows - 1, max_size=rows - 1))
    )
    counts = np.diff([0, *cuts, total])
    weights = np.array(
        data.draw(
            st.lists(
                st.lists(
                    st.sampled_from([0.0, 0.01, 0.5, 1.0, 7.0]),
                    min_size=len(sizes),
                    max_size=len(sizes),
                ),
                min_size=rows,
                max_size=rows,
            )
        )
    )
    table = share_table(counts, sizes, weights)
    assert (table >= 0).all()
    assert table.sum(axis=1).tolist() == counts.tolist()
    assert table.sum(axis=0).tolist() == sizes


def test_share_table_follows_the_weights_where_the_margins_allow():
    """Independent rows and columns: the table is the product of the margins."""
    table = share_table([60, 40], [50, 50], np.ones((2, 2)))
    assert table.tolist() == [[30, 30], [20, 20]]
    # a zero is kept when the margins can be met without it
    table = share_table([10, 90], [20, 80], np.array([[0.0, 1.0], [1.0, 1.0]]))
    assert table[0, 0] == 0 and table.sum(axis=0).tolist() == [20, 80]


# ------------------------------------------------------------------ split_state
def _parts(*sizes_rates, max_attempts=5, then=0.74):
    return [
        PartOdds(n, rates, then, max_attempts, up_front)
        for n, rates, up_front in sizes_rates
    ]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    counts=st.lists(st.integers(0, 300), min_size=7, max_size=7),
    made=st.integers(1, 4),
    suppliers=st.integers(1, 3),
)
def test_every_part_sums_to_its_installations(counts, made, suppliers):
    """Whatever the state, each part's states sum to its installations and every
    state's groups are shared out whole: nothing is made or lost (before, each
    state was rounded on its own and a part could gain a phantom first attempt)."""
    queued, stalled, rolled_back, impaired, migrated, dumb, abandoned = counts
    state = InitialState.model_validate(
        {
            "pending": 0,
            "queued": [
                {"count": queued // 2, "attempts_made": 0, "days_until_due": 0},
                {
                    "count": queued - queued // 2,
                    "attempts_made": made,
                    "days_until_due": 0,
                },
            ],
            "stalled": [{"count": stalled, "attempts_made": made, "days_until_due": 2}],
            "rolled_back": [
                {"count": rolled_back, "attempts_made": made, "days_until_due": 3}
            ],
            "impaired": impaired,
            "migrated": migrated,
            "dumb": dumb,
            "abandoned": abandoned,
        }
    )
    total = sum(counts)
    shares = [0.94, 0.05, 0.01] * suppliers
    sizes = np.floor(np.array(shares) / sum(shares) * total).astype(int)
    sizes[0] += total - sizes.sum()
    parts = _parts(
        *[
            (int(n), rates, False)
            for n, rates in zip(
                sizes, [NORMAL, HARD, EXCLUDED] * suppliers, strict=True
            )
        ]
    )
    out = split_state(state, parts)
    for part, p in zip(out, parts, strict=True):
        assert sum(count_of(part[name]) for name in STATES) == p.installations
    for name in STATES:
        whole = _by_key(getattr(state, name))
        shared: dict = {}
        for part in out:
            for key, n in _by_key(part[name]).items():
                shared[key] = shared.get(key, 0) + n
        assert {k: v for k, v in shared.items() if v} == {
            k: v for k, v in whole.items() if v
        }, name


def test_retries_after_failed_attempts_are_mostly_hard_cases():
    """Bayes on the class rates: 5% hard cases failing 21% per attempt against
    1.8% for the normal ones. Against installations never attempted, a retry
    after m failed attempts is a hard case with odds multiplied by
    (0.21 / 0.018)^m (the fit to the parts' sizes scales whole columns, so it
    keeps this cross-ratio): after one failed attempt about 4 in 10 retries are
    hard cases, after two about 9 in 10."""
    parts = _parts(
        (95_000, (0.93, 0.05, 0.008, 0.006, 0.006), False),
        (5_000, HARD, False),
        then=0.8,
    )
    fail_n, fail_h = 0.008 + 0.05 * 0.2, 0.17 + 0.2 * 0.2
    hard_share = {}
    for made in (1, 2):
        state = InitialState.model_validate(
            {
                "queued": 50_000,
                "rolled_back": [
                    {"count": 1000, "attempts_made": made, "days_until_due": 2}
                ],
                "migrated": 49_000,
            }
        )
        normal, hard = split_state(state, parts)
        retries = count_of(hard["rolled_back"]) / count_of(normal["rolled_back"])
        fresh = count_of(hard["queued"]) / count_of(normal["queued"])
        assert retries / fresh == pytest.approx((fail_h / fail_n) ** made, rel=0.03)
        hard_share[made] = count_of(hard["rolled_back"]) / 1000
    assert 0.3 < hard_share[1] < 0.45 and hard_share[2] > 0.85


def test_excluded_are_never_migrated_and_take_the_abandoned():
    parts = _parts((900, NORMAL, False), (100, EXCLUDED, False))
    state = InitialState.model_validate(
        {
            "migrated": 850,
            "dumb": 5,
            "abandoned": 95,
            "rolled_back": [{"count": 50, "attempts_made": 3, "days_until_due": 1}],
        }
    )
    normal, excluded = split_state(state, parts)
    assert excluded["migrated"] == excluded["dumb"] == 0
    assert excluded["abandoned"] == 95
    assert count_of(excluded["rolled_back"]) == 5  # the room its abandoned leave
    assert normal["migrated"] == 850


def test_a_finished_programme_continues_without_a_phantom_attempt():
    """A fully resolved state read from actuals (no parts) for a cohort of three
    suppliers with hard cases and exclusions: the continued run attempts nothing
    and keeps its counts (before, the rounding gave a part a first attempt that
    migrated one installation too many)."""
    data = scenario(
        cohort("c", 50_000, rates=outcomes(success=0.95, rollback=0.05)),
        cap=2000,
        horizon_days=20,
    )
    c = data["cohorts"][0]
    c["rollback"] = {"retry_after_days": {"dist": "fixed", "days": 2}}
    c["hard"] = {"share": 0.05, "outcomes": outcomes(success=0.6, rollback=0.4)}
    c["excluded"] = {"share": 0.01, "when": "attempted"}
    c["suppliers"] = {"a": 0.4, "b": 0.35, "c": 0.25}
    data["suppliers"] = [{"name": n} for n in "abc"]
    sc = load(data)
    state = {
        "date": day(-1),
        "cohorts": {"c": {"migrated": 49_333, "dumb": 166, "abandoned": 501}},
    }
    log = run_replication(sc.starting_from(state), seed=1, replication=0)
    assert log.cohort_columns["attempts"].sum() == 0
    assert log.cohort_columns["migrated"][-1, 0] == 49_333
    assert log.cohort_columns["abandoned"][-1, 0] == 501
