"""The block engine gives the scalar engine's numbers, replication by replication.

A block advances many replications through the day loop together; its results
must not depend on it: every column, day column, clearance day, gate day and
input draw of every replication equals `run_replication`'s, for any block size
and for twins. Random valid scenarios (the engine tests' strategy) and the
bundled scenarios it runs are checked; scenarios with a section it does not run
yet are refused with the reason.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cohort, fixed, load, outcomes, scenario, uniform
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_engine import random_scenarios

import migsim
from migsim.sim.allocation import share_pro_rata, share_pro_rata_rows
from migsim.sim.block import MAX_BLOCK, run_block, run_blocks, supports
from migsim.sim.engine import run_replication, state_after

QUICK = settings(
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def assert_same(block_log, scalar_log) -> None:
    """Two run logs hold the same numbers."""
    assert block_log.replication == scalar_log.replication
    assert set(block_log.cohort_columns) == set(scalar_log.cohort_columns)
    for name, values in scalar_log.cohort_columns.items():
        np.testing.assert_array_equal(block_log.cohort_columns[name], values, name)
    assert set(block_log.day_columns) == set(scalar_log.day_columns)
    for name, values in scalar_log.day_columns.items():
        np.testing.assert_array_equal(block_log.day_columns[name], values, name)
    assert block_log.clearance_day == scalar_log.clearance_day
    assert block_log.cohort_clearance_days == scalar_log.cohort_clearance_days
    assert block_log.gate_days == scalar_log.gate_days
    assert block_log.inputs == scalar_log.inputs


def assert_engines_agree(sc, seed: int, ids: list[int], twin: int = 0) -> None:
    for block_log, k in zip(run_block(sc, seed, ids, twin), ids, strict=True):
        assert_same(block_log, run_replication(sc, seed, k, twin))


# ----------------------------------------------------------------------- equality
@QUICK
@given(random_scenarios(), st.integers(0, 2**31), st.integers(1, 9))
def test_random_scenarios_give_the_scalar_engines_numbers(sc, seed, n):
    assume(supports(sc) is None)
    assert_engines_agree(sc, seed, list(range(n)))


@st.composite
def scenarios_with_defects(draw):
    """Random valid scenarios whose cohorts may carry latent defects, with or
    without an ELS desk."""
    sc = draw(random_scenarios())
    data = sc.to_dict()
    for c in data["cohorts"]:
        for i in range(draw(st.integers(0, 2))):
            by_cases = draw(st.none() | st.integers(1, 50))
            c["latent_defects"] = [
                *c.get("latent_defects", []),
                {
                    "name": f"d{i}",
                    "exists_probability": draw(st.sampled_from([0.0, 0.5, 1.0])),
                    "hit_share": draw(st.sampled_from([0.0, 0.05, 0.5])),
                    "outcome": draw(st.sampled_from(["stall", "fix_forward", "dumb"])),
                    "detected_after_cases": by_cases,
                    "detected_after_days": draw(st.integers(1, 9))
                    if by_cases is None
                    else draw(st.none() | st.integers(1, 9)),
                    "detection_lag_days": draw(st.integers(0, 3)),
                    "halt": draw(st.sampled_from(["cohort", "all"])),
                    "fix_after_days": {"dist": "uniform", "low": 1, "high": 8},
                },
            ]
    if draw(st.booleans()):
        kinds = ["stall", "rollback", "fix_forward", "dumb"]
        data["els"] = {
            "daily_capacity": draw(st.integers(1, 400)),
            "cases_from": draw(st.lists(st.sampled_from(kinds), unique=True)),
        }
    return load(data)


@QUICK
@given(scenarios_with_defects(), st.integers(0, 2**31), st.integers(1, 7))
def test_defects_and_els_give_the_scalar_engines_numbers(sc, seed, n):
    assume(supports(sc) is None)
    assert_engines_agree(sc, seed, list(range(n)))


@QUICK
@given(scenarios_with_defects(), st.integers(0, 10**9 - 1), st.data())
def test_mid_programme_starts_give_the_scalar_engines_numbers(sc, seed, data):
    """A run continued from a replication's state (queued retries, stalls,
    rollbacks and restorations in flight, open ELS cases, defects, the policy)."""
    assume(supports(sc) is None and sc.horizon_days > 2)
    day = data.draw(st.integers(0, sc.horizon_days - 2))
    later = sc.starting_from(state_after(sc, seed, 0, day))
    assume(supports(later) is None)
    assert_engines_agree(later, seed + 1, list(range(4)))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "nov2019_epcl",
        "nov2019_conditions",
        "nov2019_cautious_ramp",
        "nov2019_aggressive_ramp",
        "nov2019_cautious_ramp_elster_active",
    ],
)
def test_bundled_scenarios_give_the_scalar_engines_numbers(name):
    sc = migsim.load_scenario(f"scenarios/{name}.yaml")
    assert supports(sc) is None
    assert_engines_agree(sc, 3, list(range(24)))


def test_twins_give_the_scalar_engines_numbers():
    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    assert_engines_agree(sc, 7, [0, 10, 20], twin=1)


def _without_defects(name: str):
    """A bundled scenario with its latent defects taken out."""
    data = migsim.load_scenario(f"scenarios/{name}.yaml").to_dict()
    for c in data["cohorts"]:
        c.pop("latent_defects", None)
    sources = data.get("sources", {})
    data["sources"] = {k: v for k, v in sources.items() if "latent_defects" not in k}
    return migsim.load_scenario(data)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nov2019_cautious_ramp", "nov2019_aggressive_ramp"])
def test_ramp_rules_and_volume_failures_give_the_scalar_engines_numbers(name):
    """Each replication's rules read the block's records of earlier days."""
    sc = _without_defects(name)
    assert supports(sc) is None
    assert_engines_agree(sc, 1, list(range(12)))


def test_a_stopped_replications_rules_are_asked_no_more():
    """Small cohorts clear on different days while others run on: the policy of
    one that stopped is left as the scalar engine leaves it."""
    data = _without_defects("nov2019_aggressive_ramp").to_dict()
    for c in data["cohorts"]:
        c["installations"] //= 20
    sc = migsim.load_scenario(data)
    logs = run_block(sc, 1, list(range(20)))
    assert len({log.clearance_day for log in logs}) > 5
    for k, log in enumerate(logs):
        assert_same(log, run_replication(sc, 1, k))


@pytest.mark.slow
def test_a_stall_release_date_holds_stalls_as_the_scalar_engine_does():
    """The validation scenario holds its stalls until a release date."""
    sc = migsim.load_scenario("scenarios/validation/itron_dormant_2019.yaml")
    assert supports(sc) is None
    assert_engines_agree(sc, 5, list(range(8)))


def test_the_full_fleet_runs_on_blocks():
    """The five-year fleet (schedule, gates, eight cohorts), cut to two years."""
    sc = migsim.load_scenario("scenarios/smets1_full_fleet.yaml", {"horizon_days": 700})
    assert supports(sc) is None
    assert_engines_agree(sc, 1, [0, 1, 2])


def test_results_do_not_depend_on_the_block_size():
    sc = load(
        scenario(
            cohort(
                "a",
                3000,
                rates=outcomes(success=0.8, stall=0.1, rollback=0.08, dumb=0.02),
                stall={"resolves_after_days": uniform(1, 6), "then_success": 0.7},
                rollback={"retry_after_days": uniform(2, 9)},
                max_attempts=3,
            ),
            cohort("b", 500, rates=outcomes(success=0.9, fix_forward=0.1)),
            cap=400,
            horizon_days=120,
        )
    )
    ids = list(range(11))
    whole = run_blocks(sc, 4, ids)
    for size in (1, 4):
        parts = [
            log
            for i in range(0, 11, size)
            for log in run_block(sc, 4, ids[i : i + size])
        ]
        for a, b in zip(whole, parts, strict=True):
            assert_same(a, b)


def test_replications_stopping_on_different_days_are_dropped_and_filled():
    """Most replications clear early, one cannot: the early ones are dropped
    from the block's lanes and their later days repeat their final state."""
    sc = load(
        scenario(
            cohort("a", 200, rates=outcomes(success=0.5, rollback=0.5), max_attempts=9),
            cap=50,
            horizon_days=90,
        )
    )
    ids = list(range(16))
    logs = run_block(sc, 0, ids)
    days = [log.clearance_day for log in logs]
    assert len(set(days)) > 3  # they stop on different days
    for log, k in zip(logs, ids, strict=True):
        assert_same(log, run_replication(sc, 0, k))


def test_a_run_uses_blocks_and_keeps_its_numbers(monkeypatch):
    """`migsim.run` on a scenario the block engine runs gives the same tables
    as the scalar engine one replication at a time."""
    import migsim.runner.runner as runner

    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    blocks = migsim.run(sc, replications=6, seed=2, batch_size=3)
    monkeypatch.setattr(runner, "supports", lambda scenario: "off for the test")
    scalar = migsim.run(sc, replications=6, seed=2, batch_size=3)
    assert blocks.replications.equals(scalar.replications)
    assert blocks.daily.equals(scalar.daily)


# ----------------------------------------------------------------------- refusals
_HARD = {"success": 0.5, "stall": 0.5, "rollback": 0, "fix_forward": 0, "dumb": 0}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"suppliers": [{"name": "s"}]}, "suppliers"),
        (
            {"cohorts.0.hard": {"share": 0.1, "outcomes": _HARD}},
            "cohort c: hard or excluded cases",
        ),
    ],
)
def test_sections_it_does_not_run_are_refused_with_the_reason(change, reason):
    data = scenario(
        cohort(
            rates=outcomes(success=0.9, stall=0.1),
            stall={"resolves_after_days": fixed(2), "then_success": 1.0},
        )
    )
    sc = load(data).with_overrides(change)
    assert supports(sc) == reason
    with pytest.raises(ValueError, match=reason):
        run_block(sc, 0, [0])


def test_a_block_holds_at_most_max_block_replications():
    sc = load(scenario())
    with pytest.raises(ValueError, match="a block holds"):
        run_block(sc, 0, list(range(MAX_BLOCK + 1)))


# ----------------------------------------------------------------------- sharing
@QUICK
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5000),
            st.lists(st.integers(0, 3000), min_size=1, max_size=6),
        ),
        min_size=1,
        max_size=8,
    ).filter(lambda rows: len({len(w) for _, w in rows}) == 1)
)
def test_sharing_rows_at_once_is_sharing_each_row(rows):
    totals = np.array([t for t, _ in rows])
    weights = np.array([w for _, w in rows])
    shared = share_pro_rata_rows(totals, weights)
    for (total, w), got in zip(rows, shared, strict=True):
        assert got.tolist() == share_pro_rata(total, w, w)
