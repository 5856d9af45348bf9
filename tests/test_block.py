"""The block engine gives the scalar engine's numbers, replication by replication.

A block advances many replications through the day loop together; its results
must not depend on it: every column, day column, clearance day, gate day and
input draw of every replication equals `run_replication`'s, for any block size
and for twins. Random valid scenarios (the engine tests' strategy) and the
bundled scenarios are checked, with every operations section (suppliers, hard
and excluded cases, remote recovery, consumer exposure, latent defects, ELS).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from conftest import cohort, fixed, load, outcomes, scenario, uniform
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_engine import random_scenarios
from test_policy import CARRIED_RULE, IDLE_RULES, idle_tiny, stopped_then_continued

import migsim
from migsim.model.base import OUTCOMES
from migsim.sim import block
from migsim.sim.allocation import share_pro_rata, share_pro_rata_rows
from migsim.sim.block import (
    MAX_BLOCK,
    MIN_BLOCK,
    MIN_KERNEL_BLOCK,
    run_block,
    run_blocks,
    run_blocks_with_twins,
    supports,
    worth_a_block,
)
from migsim.sim.engine import run_replication, state_after
from migsim.sim.lane_policy import BlockPolicy

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
    assert block_log.defects == scalar_log.defects


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


@st.composite
def scenarios_with_sections(draw):
    """Random valid scenarios with latent defects and ELS (as above) whose
    cohorts may also have dumb devices recovered remotely, a prepayment share,
    hard and excluded cases and consumer exposure (change of supplier, PPMID
    joins), and be split between suppliers."""
    data = draw(scenarios_with_defects()).to_dict()
    for c in data["cohorts"]:
        if draw(st.booleans()):
            c["dumb"] = {
                "recovered_share": draw(st.sampled_from([0.0, 0.3, 1.0])),
                "recovered_after_days": draw(
                    st.sampled_from([fixed(1), fixed(4), uniform(2, 30)])
                ),
            }
        if c["mode"] == "active" and draw(st.booleans()):
            c["prepayment_share"] = draw(st.sampled_from([0.2, 1.0]))
            if draw(st.booleans()):
                c["ppmid_join"] = {
                    "failure_share": draw(st.sampled_from([0.1, 0.5])),
                    "until": draw(st.none() | _a_day(data)),
                }
        if draw(st.booleans()):
            weights = draw(st.lists(st.integers(0, 10), min_size=5, max_size=5))
            weights[0] += 1  # volume failures may take success down
            total = sum(weights)
            c["hard"] = {
                "share": draw(st.sampled_from([0.0, 0.1, 0.5])),
                "outcomes": dict(
                    zip(OUTCOMES, [w / total for w in weights], strict=True)
                ),
            }
        if draw(st.booleans()):
            c["excluded"] = {
                "share": draw(st.sampled_from([0.0, 0.05, 0.4])),
                "when": draw(st.sampled_from(["attempted", "up_front"])),
            }
        if draw(st.booleans()):
            c["change_of_supplier"] = {
                "annual_rate": draw(st.sampled_from([0.1, 2.0, 10.0])),
                "until": draw(st.none() | _a_day(data)),
            }
    if draw(st.booleans()):
        _with_suppliers(draw, data)
    return load(data)


def _with_suppliers(draw, data: dict) -> None:
    """Suppliers (business readiness, daily nominations) over the cohorts,
    the cap shared pro rata, in priority or by msm."""
    names = ["s0", "s1", "s2"][: draw(st.integers(1, 3))]
    data["suppliers"] = [
        {
            "name": name,
            "business_ready": draw(st.none() | _a_day(data)),
            "daily_nomination": draw(st.none() | st.integers(0, 400)),
        }
        for name in names
    ]
    for c in data["cohorts"]:
        weights = draw(
            st.lists(st.integers(0, 5), min_size=len(names), max_size=len(names))
        )
        if not any(weights) or draw(st.booleans()):
            weights[0] += 1
        total = sum(weights)
        c["suppliers"] = {n: w / total for n, w in zip(names, weights, strict=True)}
        if abs(sum(c["suppliers"].values()) - 1.0) > 1e-12:  # keep the sum exact
            c["suppliers"][names[0]] += 1.0 - sum(c["suppliers"].values())
    capacity = data["capacity"]
    capacity["allocation"] = draw(st.sampled_from(["pro_rata", "priority", "msm"]))
    if capacity["allocation"] == "msm":
        capacity["dmin"] = draw(st.integers(0, 300))


def _a_day(data: dict):
    """A date within (or just past) a scenario's horizon."""
    start = date.fromisoformat(str(data["start_date"]))
    days = st.integers(-2, int(data["horizon_days"]) + 2)
    return days.map(lambda d: (start + timedelta(days=d)).isoformat())


@QUICK
@given(scenarios_with_sections(), st.integers(0, 2**31), st.integers(1, 7))
def test_operations_sections_give_the_scalar_engines_numbers(sc, seed, n):
    assume(supports(sc) is None)
    assert_engines_agree(sc, seed, list(range(n)))


@QUICK
@given(scenarios_with_sections(), st.integers(0, 10**9 - 1), st.data())
def test_mid_programme_starts_with_sections_give_the_scalar_engines_numbers(
    sc, seed, data
):
    """A run continued from a replication's state, with the sections above
    (dumb devices still awaiting their remote recovery among them)."""
    assume(supports(sc) is None and sc.horizon_days > 2)
    day = data.draw(st.integers(0, sc.horizon_days - 2))
    later = sc.starting_from(state_after(sc, seed, 0, day))
    assume(supports(later) is None)
    assert_engines_agree(later, seed + 1, list(range(4)))


def test_dumb_devices_recovered_remotely_retry_as_the_scalar_engine_has_them():
    """Recovered devices come back through their own retry stream; those on
    their last attempt are abandoned; a continued run takes up the devices
    still awaiting recovery."""
    part = cohort(
        "a",
        4000,
        mode="active",
        rates=outcomes(success=0.6, rollback=0.1, dumb=0.3),
        rollback={"retry_after_days": uniform(1, 5)},
        max_attempts=3,
    )
    part["dumb"] = {"recovered_share": 0.6, "recovered_after_days": uniform(2, 9)}
    part["prepayment_share"] = 0.3
    sc = load(scenario(part, cap=500, horizon_days=80))
    assert supports(sc) is None
    logs = run_block(sc, 5, list(range(6)))
    for k, log in enumerate(logs):
        assert_same(log, run_replication(sc, 5, k))
        assert log.cohort_columns["dumb_recoveries"].sum() > 0
    later = sc.starting_from(state_after(sc, 5, 0, 12))
    assert supports(later) is None
    assert_engines_agree(later, 6, list(range(5)))


def test_consumer_exposure_is_drawn_as_the_scalar_engine_draws_it():
    """Change-of-supplier losses and PPMID join failures from each day's own
    stream; losses go on being drawn after a replication stops (small cohorts
    clear early), until the fix."""
    active = cohort("a", 300, mode="active", rates=outcomes(success=0.8, dumb=0.2))
    active["prepayment_share"] = 0.4
    active["ppmid_join"] = {"failure_share": 0.3}
    active["change_of_supplier"] = {"annual_rate": 5.0, "until": "2024-02-10"}
    dormant = cohort("d", 200, rates=outcomes(success=0.7, fix_forward=0.3))
    dormant["change_of_supplier"] = {"annual_rate": 2.0}
    sc = load(scenario(active, dormant, cap=60, horizon_days=60))
    assert supports(sc) is None
    logs = run_block(sc, 2, list(range(8)))
    for k, log in enumerate(logs):
        assert_same(log, run_replication(sc, 2, k))
        assert log.clearance_day is not None and log.clearance_day < 40
        lost = log.cohort_columns["cos_alerts_lost"]
        assert lost[log.clearance_day + 1 :].sum() > 0
        assert log.cohort_columns["ppmid_join_failures"].sum() > 0
    later = sc.starting_from(state_after(sc, 2, 0, 5))
    assert_engines_agree(later, 3, list(range(4)))


@pytest.mark.parametrize("when", ["attempted", "up_front"])
def test_hard_and_excluded_cases_run_as_the_scalar_engine_runs_them(when):
    """Classes share the segment's queue (retries by most attempts made, then
    class; first attempts pro rata), each with its own rates; the excluded
    class is never hit by a defect and counts in ``excluded``."""
    part = cohort(
        "a",
        3000,
        rates=outcomes(success=0.7, stall=0.1, rollback=0.15, dumb=0.05),
        stall={"resolves_after_days": uniform(1, 4), "then_success": 0.5},
        rollback={"retry_after_days": uniform(1, 6)},
        max_attempts=3,
    )
    part["hard"] = {"share": 0.3, "outcomes": outcomes(success=0.3, rollback=0.7)}
    part["excluded"] = {"share": 0.1, "when": when}
    part["latent_defects"] = [
        {
            "name": "d",
            "exists_probability": 1.0,
            "hit_share": 0.2,
            "outcome": "stall",
            "detected_after_days": 9,
            "fix_after_days": fixed(3),
        }
    ]
    data = scenario(part, cohort("b", 800), cap=300, horizon_days=70)
    data["els"] = {"daily_capacity": 90, "cases_from": ["stall"]}
    sc = load(data)
    assert supports(sc) is None
    logs = run_block(sc, 8, list(range(6)))
    for k, log in enumerate(logs):
        assert_same(log, run_replication(sc, 8, k))
        assert log.cohort_columns["excluded"][-1, 0] > 250
    later = sc.starting_from(state_after(sc, 8, 0, 9))
    assert supports(later) is None
    assert_engines_agree(later, 9, list(range(4)))


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


@pytest.mark.parametrize("rule", IDLE_RULES, ids=lambda r: r["action"])
def test_a_block_with_nothing_in_flight_checks_no_rule(rule):
    """Rules as arrays (`BlockPolicy`): a replication with nothing in flight
    from day 0 is asked no cap, as the scalar engine asks it none."""
    sc = idle_tiny([rule])
    assert isinstance(block._Block(sc, 0, [(0, 0)]).policy, BlockPolicy)
    logs = run_block(sc, 0, [0, 1, 2])
    for k, log in enumerate(logs):
        assert set(log.day_columns["rule_fired"].tolist()) == {""}
        assert log.day_columns["daily_cap"][0] == 100
        assert_same(log, run_replication(sc, 0, k))


def test_a_block_continuing_a_stopped_run_checks_no_rule():
    """Each replication's own policy (a start with a rule history): a
    continuation with nothing left to attempt fires no rule on its first day."""
    later = stopped_then_continued([CARRIED_RULE])
    assert block._Block(later, 0, [(0, 0)]).policy is None  # the per-replication path
    logs = run_block(later, 0, [0, 1])
    for k, log in enumerate(logs):
        assert set(log.day_columns["rule_fired"].tolist()) == {""}
        assert log.day_columns["daily_cap"][0] == 100
        assert_same(log, run_replication(later, 0, k))


@pytest.mark.slow
def test_a_stall_release_date_holds_stalls_as_the_scalar_engine_does():
    """The validation scenario holds its stalls until a release date."""
    sc = migsim.load_scenario("scenarios/validation/itron_dormant_2019.yaml")
    assert supports(sc) is None
    assert_engines_agree(sc, 5, list(range(8)))


def test_twins_sharing_their_replications_block_give_the_scalar_numbers():
    """Twins run in their replications' block; only replications the rule
    twins get one, and each is the scalar engine's twin."""
    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    ids = list(range(25))
    done, twins = run_blocks_with_twins(sc, 3, ids, lambda k: k % 10 == 0)
    assert [log.replication for log in twins] == [0, 10, 20]
    for log, k in zip(done, ids, strict=True):
        assert_same(log, run_replication(sc, 3, k))
    for log in twins:
        assert_same(log, run_replication(sc, 3, log.replication, 1))
    point = sc.with_overrides({"uncertainty": "point"})  # draws no inputs
    assert run_blocks_with_twins(point, 3, [0, 1], lambda k: True)[1] == []


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


def test_small_batches_run_one_at_a_time_large_ones_as_blocks(monkeypatch):
    """From `MIN_BLOCK` a batch runs as a block; from `MIN_KERNEL_BLOCK` only
    where the block would read with the kernels (loaded, or work enough to
    load them), and never below."""
    from migsim.sim import lane_kernel

    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    monkeypatch.setattr(lane_kernel, "USE", False)
    assert not worth_a_block(sc, MIN_BLOCK - 1)
    assert worth_a_block(sc, MIN_BLOCK)
    monkeypatch.setattr(lane_kernel, "USE", None)
    monkeypatch.setattr(lane_kernel, "_loaded", None)
    assert not worth_a_block(sc, MIN_BLOCK - 1)  # 23 x 74,000: too little work
    monkeypatch.setattr(lane_kernel, "_loaded", lane_kernel)  # as if loaded
    assert worth_a_block(sc, MIN_KERNEL_BLOCK)
    assert not worth_a_block(sc, MIN_KERNEL_BLOCK - 1)
    monkeypatch.setattr(lane_kernel, "failure", OSError("no llvmlite"))
    assert not worth_a_block(sc, MIN_BLOCK - 1)


def test_a_run_uses_blocks_and_keeps_its_numbers(monkeypatch):
    """`migsim.run` on a scenario the block engine runs gives the same tables
    as the scalar engine one replication at a time."""
    import migsim.runner.runner as runner
    import migsim.sim.block as block

    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    monkeypatch.setattr(block, "MIN_BLOCK", 2)  # small batches as blocks too
    blocks = migsim.run(sc, replications=6, seed=2, batch_size=3)
    monkeypatch.setattr(runner, "worth_a_block", lambda scenario, n: False)
    scalar = migsim.run(sc, replications=6, seed=2, batch_size=3)
    assert blocks.replications.equals(scalar.replications)
    assert blocks.daily.equals(scalar.daily)


# ----------------------------------------------------------------------- sections
@pytest.mark.slow
def test_the_operations_scenario_gives_the_scalar_engines_numbers():
    """Every operations section at once: suppliers (msm, readiness,
    nominations), hard and excluded cases, latent defects, ELS, volume
    failures, remote recovery and consumer exposure."""
    sc = migsim.load_scenario("scenarios/nov2019_operations.yaml")
    assert supports(sc) is None
    assert_engines_agree(sc, 3, list(range(12)))


def test_replications_planned_differently_run_one_at_a_time():
    """Sizes drawn per replication can leave a class empty in some of them:
    the block then runs them on the scalar engine, with its numbers."""
    part = cohort("a", 12, rates=outcomes(success=0.8, rollback=0.2))
    part["installations_range"] = {"dist": "uniform", "low": 1, "high": 30}
    part["hard"] = {"share": 0.05, "outcomes": outcomes(success=0.5, rollback=0.5)}
    sc = load(scenario(part, cap=5, horizon_days=30))
    with pytest.raises(block._Mismatch):
        block._Block(sc, 1, [(k, 0) for k in range(12)])
    assert_engines_agree(sc, 1, list(range(12)))


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


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(2, 80),
    st.sampled_from([0.0, 0.3, 0.93, 0.999999, 1.0, None]),
    st.integers(0, 2**32 - 1),
)
def test_the_cell_look_up_is_a_binary_search(n, size, success, seed):
    """`CellTable.find` gives each failing key the cell a binary search of its
    replication's edges gives: ties on edges, empty cells, edges at 1, a success
    edge of 1 (nothing fails), and after replications stop."""
    from migsim.sim.lane_queues import UNIT, CellTable, edge_keys

    rng = np.random.default_rng(seed)
    low = rng.random(n)[:, None] if success is None else np.full((n, 1), success)
    rest = low + np.sort(rng.random((n, size - 1)), axis=1) * (1 - low)
    rest[:, -1:] = np.where(rng.random((n, 1)) < 0.3, 1.0, rest[:, -1:])
    if size > 3:
        rest[:, 1] = rest[:, 2]  # an empty cell
    ints = edge_keys(np.concatenate([low, rest], axis=1))
    table = CellTable(ints)
    rows = np.arange(n)
    for _ in range(2):
        who = rng.integers(0, len(rows), 400)
        floor = ints[rows[who], 0]
        who, floor = who[floor < UNIT], floor[floor < UNIT]
        keys = floor + (rng.random(len(who)) * (int(UNIT) - floor)).astype(np.int64)
        on_edge = ints[rows[who], rng.integers(0, size, len(who))]
        keys = np.where((rng.random(len(who)) < 0.3) & (on_edge < UNIT), on_edge, keys)
        expected = [
            np.searchsorted(ints[rows[w]], k, "right")
            for w, k in zip(who, keys, strict=True)
        ]
        assert table.find(who, keys).tolist() == [int(e) for e in expected]
        live = np.sort(
            rng.choice(len(rows), size=max(1, len(rows) // 2), replace=False)
        )
        table.keep(live)
        rows = rows[live]
