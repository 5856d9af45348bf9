"""Operations (issue 6): defects, volume failures, ELS, suppliers, throughput, exposure.

Tiny scenarios with fixed seeds; deterministic cases are checked exactly, the
stochastic ones against theory within a stated tolerance.
"""

from __future__ import annotations

import copy
import hashlib
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import migsim
from migsim.cli.main import main
from migsim.sim.allocation import largest_remainder, msm_shares
from migsim.sim.engine import run_replication, state_after
from migsim.sim.operations import OPERATIONS_FLOWS, OPERATIONS_LEVELS
from migsim.sim.records import FLOWS, STATES
from migsim.sim.segments import plan_segments

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
OUTCOME_NAMES = ("success", "stall", "rollback", "fix_forward", "dumb")
ALL_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
START = date(2020, 1, 6)  # a Monday


def cohort(name="c", n=1000, mode="active", **extra):
    base = {
        "name": name,
        "installations": n,
        "mode": mode,
        "max_attempts": 3,
        "outcomes": {
            "success": 1.0,
            "stall": 0.0,
            "rollback": 0.0,
            "fix_forward": 0.0,
            "dumb": 0.0,
        },
    }
    base.update(extra)
    return base


def scenario(cohorts, cap=100, horizon=30, days=ALL_DAYS, **extra):
    data = {
        "name": "tiny",
        "start_date": START.isoformat(),
        "horizon_days": horizon,
        "calendar": {"working_days": days},
        "capacity": {"daily_cap": cap},
        "cohorts": cohorts,
    }
    data.update(extra)
    return migsim.load_scenario(data)


def one(sc, replication=0, seed=0):
    return run_replication(sc, seed, replication)


def col(log, name, cohort_index=0):
    return log.cohort_columns[name][:, cohort_index]


# --------------------------------------------------------------------------- unchanged
def test_scenario_without_sections_is_unchanged():
    """No operations section: .daily is byte-identical to the foundation's."""
    columns = ["replication", "date", "cohort", *STATES, *FLOWS]
    results = migsim.run(GOLDEN / "foundation_golden.yaml", replications=3)
    operations = set(OPERATIONS_LEVELS + OPERATIONS_FLOWS) | {
        "els_backlog",
        "els_cases_raised",
        "els_cases_worked",
        "achieved_cap",
    }
    assert not operations & set(results.daily.columns)  # no operations columns appear
    expected = (GOLDEN / "foundation_golden_daily.csv").read_text()
    assert results.daily[columns].to_csv(index=False) == expected
    results = migsim.run(GOLDEN / "foundation_baseline.yaml", replications=2, seed=11)
    digest = hashlib.sha256(results.daily[columns].to_csv(index=False).encode())
    assert (
        digest.hexdigest()
        == (GOLDEN / "foundation_baseline_daily.sha256").read_text().strip()
    )
    assert results.defects.empty and results.summary["defects"] == {}


# --------------------------------------------------------------------------- defects
def defect(**extra):
    base = {
        "name": "fw",
        "exists_probability": 1.0,
        "hit_share": 1.0,
        "outcome": "dumb",
        "detected_after_cases": 10,
        "halt": "cohort",
        "fix_after_days": {"dist": "fixed", "days": 4},
    }
    base.update(extra)
    return base


@pytest.mark.parametrize(
    "cap, k, lag",
    [
        (3, 10, 0),
        (4, 10, 0),
        (5, 10, 0),
        (10, 10, 0),
        (20, 10, 0),
        (3, 10, 2),
        (7, 1, 1),
    ],
)
def test_defect_hits_before_detection_deterministic(cap, k, lag):
    """s = 1: found at the end of day ceil(k/cap)-1, then lag days more of hits."""
    sc = scenario(
        [
            cohort(
                n=10_000,
                latent_defects=[defect(detected_after_cases=k, detection_lag_days=lag)],
            )
        ],
        cap=cap,
        horizon=40,
    )
    log = one(sc)
    trigger = math.ceil(k / cap) - 1  # every day is a working day
    found = trigger + lag
    hits = col(log, "defect_hits")
    assert hits.sum() == cap * (found + 1)
    assert (hits[: found + 1] == cap).all() and not hits[found + 1 :].any()
    attempts = col(log, "attempts")
    fix = 4
    assert not attempts[found + 1 : found + 1 + fix].any()  # halted for the fix
    assert (attempts[found + 1 + fix :] == cap).all()  # resumed, hitting nothing
    assert (col(log, "defect_halt")[found + 1 : found + 1 + fix] == 1).all()
    record = log.defects[0]
    assert record.exists and record.found_day == found
    assert record.resumed_day == found + fix + 1
    assert record.installations_hit == hits.sum()


def expected_hits(cap: int, share: float, k: int, days: int = 400) -> float:
    """E[cumulative hits at the end of the first day they reach k]; Bin(cap, s)/day."""
    pmf = stats.binom.pmf(np.arange(cap + 1), cap, share)
    below = np.zeros(k)  # P(cumulative = j < k, not yet found)
    below[0] = 1.0
    expected = 0.0
    for _ in range(days):
        new = np.zeros(k)
        for j in np.flatnonzero(below > 1e-15):
            for h in range(cap + 1):
                total = j + h
                if total < k:
                    new[total] += below[j] * pmf[h]
                else:
                    expected += below[j] * pmf[h] * total
        below = new
    return expected


def test_defect_hits_follow_from_k_and_s():
    """Stochastic: the mean number hit before detection matches the analytic value."""
    cap, share, k = 40, 0.05, 5
    sc = scenario(
        [
            cohort(
                n=100_000,
                latent_defects=[defect(hit_share=share, detected_after_cases=k)],
            )
        ],
        cap=cap,
        horizon=12,
    )
    hits = np.array([one(sc, r).defects[0].installations_hit for r in range(300)])
    theory = expected_hits(cap, share, k)
    standard_error = hits.std(ddof=1) / math.sqrt(len(hits))
    assert abs(hits.mean() - theory) < 4 * standard_error, (hits.mean(), theory)


def test_higher_cap_never_lowers_hits_under_common_seeds():
    """Under common seeds the k-th attempt keeps its uniform whatever the cap,
    so a replication's defect is found on the day the attempt that makes its
    fifth case is made, and the hits are those among every attempt made by the
    end of that day: the first multiple of the cap past that attempt. Doubling
    the cap can only move that multiple up, so in every replication, not only
    on average, the hits never fall (a cap of 160 after 100 can lower them)."""
    sc = scenario(
        [
            cohort(
                n=100_000,
                latent_defects=[defect(hit_share=0.01, detected_after_cases=5)],
            )
        ],
        cap=100,
        horizon=20,
    )
    hits = []  # a row per cap, a column per replication
    for cap in (100, 200, 400, 800, 1600):
        run = sc.with_overrides({"capacity.daily_cap": cap})
        hits.append([one(run, r).defects[0].installations_hit for r in range(40)])
    assert (np.diff(hits, axis=0) >= 0).all(), hits
    means = np.mean(hits, axis=1).tolist()
    assert all(b >= a for a, b in zip(means, means[1:], strict=False)), means
    assert means[-1] > 2 * means[0]  # the pace effect is large, not noise


def test_defect_found_after_days_of_exposure_and_halt_all():
    spec = defect(
        hit_share=0.0,
        detected_after_cases=None,
        detected_after_days=3,
        detection_lag_days=1,
        halt="all",
    )
    sc = scenario(
        [
            cohort("a", n=5000, eligible_from="2020-01-08", latent_defects=[spec]),
            cohort("b", n=5000, mode="dormant"),
        ],
        cap=100,
        horizon=20,
    )
    log = one(sc)
    first = 2  # a is eligible from day 2
    found = first + 3 - 1 + 1
    assert log.defects[0].exposed_from_day == first
    assert log.defects[0].found_day == found
    for c in (0, 1):  # halt: all cohorts stop
        attempts = col(log, "attempts", c)
        assert not attempts[found + 1 : found + 5].any()
        assert attempts[found + 5] > 0


def test_defect_existence_is_drawn_once_per_replication():
    spec = defect(exists_probability=0.3, hit_share=0.02, detected_after_cases=3)
    sc = scenario([cohort(n=20_000, latent_defects=[spec])], cap=500, horizon=15)
    results = migsim.run(sc, replications=200, seed=5)
    table = results.defects
    assert len(table) == 200
    assert 0.2 < table["exists"].mean() < 0.4
    assert (table.loc[~table["exists"], "installations_hit"] == 0).all()
    assert (table.loc[table["exists"], "installations_hit"] >= 3).all()
    figure = results.figure("active_hit_by_defects")
    assert figure.sum() == table["installations_hit"].sum()
    assert results.figure("dormant_hit_by_defects").sum() == 0


# --------------------------------------------------------------------------- volume
def test_volume_failures_above_threshold_until_date():
    stall = {"resolves_after_days": {"dist": "fixed", "days": 1}, "then_success": 1.0}
    spec = {"above_attempts": 150, "increase": {"stall": 1.0}, "until": "2020-01-16"}
    sc = scenario(
        [
            cohort("a", n=10_000, stall=stall, volume_failures=spec),
            cohort("b", n=10_000, mode="dormant"),
        ],
        cap=200,
        horizon=20,
    )
    log = one(sc)
    stalls = col(log, "stalls", 0)
    stressed = col(log, "stressed_attempts", 0)
    attempts = col(log, "attempts", 0)
    until = 10  # 2020-01-16
    assert (stressed[:until] == attempts[:until]).all() and attempts[:until].all()
    assert (stalls[:until] == attempts[:until]).all()  # stall rate 1 when stressed
    assert not stressed[until:].any() and not stalls[until:].any()
    # counted over the cohort alone, 100 a day is not above 150: never stressed
    calm = sc.with_overrides({"cohorts.a.volume_failures.counted": "cohort"})
    assert not col(one(calm), "stressed_attempts", 0).any()


def test_a_drawn_success_below_the_increase_gives_way_only_to_0():
    """As documented (operations-risk.md, 2): validation reads the point rates;
    a replication's drawn success below the increase stops at 0 and the
    stressed rates are rescaled, so stall comes out below drawn + increase."""
    from migsim.model.cohort import RateIncrease

    drawn = np.array([0.02, 0.3, 0.5, 0.08, 0.1])
    stressed = RateIncrease(stall=0.05).apply(drawn)
    assert stressed[0] == 0.0 and stressed.sum() == pytest.approx(1.0)
    assert stressed[1] == pytest.approx(0.35 / 1.03) and stressed[1] < 0.35
    assert stressed[2:] == pytest.approx(drawn[2:] / 1.03)
    # an increase of 0.05 on a point success of 0.02 is an error
    with pytest.raises(Exception, match="adds 0.05, more than outcomes.success"):
        scenario(
            [
                cohort(
                    outcomes=dict(
                        zip(OUTCOME_NAMES, [0.02, 0, 0, 0, 0.98], strict=True)
                    ),
                    volume_failures={"above_attempts": 1, "increase": {"dumb": 0.05}},
                )
            ]
        )


# --------------------------------------------------------------------------- ELS
@pytest.mark.parametrize("n, capacity", [(10, 3), (12, 3), (1, 5), (100, 7)])
def test_els_backlog_drains_in_ceil_n_over_c_working_days(n, capacity):
    """n dumb cases raised on day 0 (a Thursday); ELS works c per working day."""
    sc = migsim.load_scenario(
        {
            "name": "els",
            "start_date": "2020-01-09",
            "horizon_days": 60,
            "capacity": {"daily_cap": n},
            "els": {"daily_capacity": capacity},
            "cohorts": [
                cohort(
                    n=n,
                    outcomes={
                        "success": 0.0,
                        "stall": 0.0,
                        "rollback": 0.0,
                        "fix_forward": 0.0,
                        "dumb": 1.0,
                    },
                )
            ],
        }
    )
    log = one(sc)
    backlog = log.day_columns["els_backlog"]
    working = [
        d for d in range(1, 60) if (date(2020, 1, 9) + timedelta(d)).weekday() < 5
    ]
    need = math.ceil(n / capacity)
    assert backlog[0] == n
    for j, day in enumerate(working[:need], start=1):
        assert backlog[day] == max(0, n - j * capacity)
    assert backlog[working[need - 1]] == 0 and backlog[working[need - 1] - 1] > 0


@pytest.mark.parametrize("delay, expected_days", [(1, [1, 2, 3, 4]), (3, [3, 3, 3, 4])])
def test_stalls_resolve_on_later_of_delay_and_worked_day(delay, expected_days):
    stall = {
        "resolves_after_days": {"dist": "fixed", "days": delay},
        "then_success": 1.0,
    }
    sc = scenario(
        [
            cohort(
                n=10,
                stall=stall,
                outcomes={
                    "success": 0.0,
                    "stall": 1.0,
                    "rollback": 0.0,
                    "fix_forward": 0.0,
                    "dumb": 0.0,
                },
            )
        ],
        cap=10,
        horizon=10,
        els={"daily_capacity": 3},
    )
    completions = col(one(sc), "stall_completions")
    # worked 3, 3, 3, 1 on days 1-4; each resolves max(delay, worked day)
    expected = np.zeros(10, dtype=int)
    for day, count in zip(expected_days, [3, 3, 3, 1], strict=True):
        expected[day] += count
    assert completions.tolist() == expected.tolist()


def test_dumb_recovery_goes_back_to_rolled_back_and_retries():
    outcomes = {
        "success": 0.0,
        "stall": 0.0,
        "rollback": 0.0,
        "fix_forward": 0.0,
        "dumb": 1.0,
    }
    sc = scenario(
        [
            cohort(
                n=50,
                max_attempts=2,
                outcomes=outcomes,
                rollback={"retry_after_days": {"dist": "fixed", "days": 2}},
                dumb={
                    "recovered_share": 1.0,
                    "recovered_after_days": {"dist": "fixed", "days": 3},
                },
            )
        ],
        cap=50,
        horizon=20,
    )
    log = one(sc)
    assert col(log, "dumb")[:3].tolist() == [50, 50, 50]
    assert col(log, "dumb_recoveries")[3] == 50 and col(log, "rolled_back")[3] == 50
    assert col(log, "attempts")[5] == 50  # retried after the retry delay
    assert col(log, "dumb_recoveries")[8] == 50  # second recovery: last attempt
    assert col(log, "abandoned")[8] == 50 and col(log, "abandons")[8] == 50
    assert not col(log, "awaiting_site_visit").any()
    assert log.clearance_day == 8  # not cleared while awaiting recovery


# --------------------------------------------------------------------------- suppliers
def test_msm_worked_example_by_hand():
    # DMIN: min(100, demand) = 50, 100, 100 (250); the other 750 in proportion to
    # remaining demand 0 : 200 : 1900 -> 71.43 and 678.57 -> 71 and 679 by largest
    # remainder.
    assert msm_shares(1000, [50, 300, 2000], 100) == [50, 171, 779]
    # DMINs (100, 100, 40) exceed the cap 200: shared in proportion to them,
    # 83.3, 83.3, 33.3 -> the remainder unit goes to the first tie.
    assert msm_shares(200, [500, 500, 40], 100) == [84, 83, 33]
    # Demand below the cap: everyone gets all they asked for.
    assert msm_shares(1000, [10, 200, 300], 100) == [10, 200, 300]


@settings(derandomize=True, deadline=None, max_examples=200)
@given(
    cap=st.integers(0, 5000),
    dmin=st.integers(0, 300),
    demands=st.lists(st.integers(0, 4000), min_size=1, max_size=6),
)
def test_msm_properties(cap, dmin, demands):
    shares = msm_shares(cap, demands, dmin)
    assert sum(shares) == min(cap, sum(demands))
    assert all(0 <= s <= d for s, d in zip(shares, demands, strict=True))
    floors = [min(dmin, d) for d in demands]
    if sum(floors) <= cap:
        assert all(s >= f for s, f in zip(shares, floors, strict=True))


def test_largest_remainder_split():
    assert largest_remainder(10, [0.5, 0.3, 0.2]) == [5, 3, 2]
    assert largest_remainder(7, [1 / 3, 1 / 3, 1 / 3]) == [3, 2, 2]
    assert largest_remainder(24000, [0.5, 0.3, 0.2]) == [12000, 7200, 4800]


def test_msm_allocation_in_the_engine():
    suppliers = [{"name": "x"}, {"name": "y"}, {"name": "z"}]
    sc = scenario(
        [
            cohort("a", n=50, suppliers={"x": 1.0}),
            cohort("b", n=300, suppliers={"y": 1.0}),
            cohort("c", n=2000, suppliers={"z": 1.0}),
        ],
        cap=1000,
        horizon=3,
        suppliers=suppliers,
        capacity={"daily_cap": 1000, "allocation": "msm", "dmin": 100},
    )
    log = one(sc)
    assert log.cohort_columns["attempts"][0].tolist() == [50, 171, 779]


def test_active_never_attempted_before_supplier_ready():
    suppliers = [
        {"name": "early", "business_ready": "2020-01-06"},
        {"name": "late", "business_ready": "2020-01-13"},
    ]
    sc = scenario(
        [
            cohort("active_late", n=500, suppliers={"late": 1.0}),
            cohort("dormant_late", n=500, mode="dormant", suppliers={"late": 1.0}),
            cohort("active_mixed", n=1000, suppliers={"early": 0.3, "late": 0.7}),
        ],
        cap=1000,
        horizon=30,
        suppliers=suppliers,
    )
    log = one(sc)
    ready = 7
    attempts = log.cohort_columns["attempts"]
    operational = log.cohort_columns["operational"]
    migrated = log.cohort_columns["migrated"]
    assert not attempts[:ready, 0].any() and attempts[ready, 0] > 0
    assert migrated[ready - 1, 1] == 500  # dormant: migrated before, not operational
    assert not operational[:ready, 1].any()
    assert (operational[ready:, 1] == migrated[ready:, 1]).all()
    # the mixed cohort only attempts its early supplier's 300 before the date
    assert attempts[:ready, 2].sum() == 300
    assert (operational[:ready, 2] == migrated[:ready, 2]).all()


def test_nominations_limit_a_supplier():
    suppliers = [{"name": "x", "daily_nomination": 30}, {"name": "y"}]
    sc = scenario(
        [cohort("a", n=1000, suppliers={"x": 0.5, "y": 0.5})],
        cap=100,
        horizon=3,
        suppliers=suppliers,
    )
    assert col(one(sc), "attempts")[0] == 100  # y takes what x cannot
    sc = scenario(
        [cohort("a", n=1000, suppliers={"x": 1.0})],
        cap=100,
        horizon=3,
        suppliers=suppliers,
    )
    assert col(one(sc), "attempts").tolist() == [30, 30, 30]


def test_achieved_share_of_the_cap():
    sc = scenario(
        [cohort(n=10_000)],
        cap=1000,
        horizon=5,
        capacity={
            "daily_cap": 1000,
            "achieved_share": {"dist": "fixed", "value": 0.61},
        },
    )
    log = one(sc)
    assert col(log, "attempts").tolist() == [610] * 5
    assert log.day_columns["achieved_cap"].tolist() == [610] * 5
    sc = sc.with_overrides(
        {"capacity.achieved_share": {"dist": "uniform", "low": 0.2, "high": 0.6}}
    )
    attempts = col(one(sc), "attempts")
    assert (
        (attempts >= 200).all() and (attempts <= 600).all() and len(set(attempts)) > 1
    )


# ------------------------------------------------------------------- hard, excluded
@pytest.mark.parametrize("when", ["attempted", "up_front"])
def test_excluded_installations_are_never_migrated(when):
    n, share, attempts_allowed = 1000, 0.1, 3
    rollback = {"retry_after_days": {"dist": "fixed", "days": 1}}
    sc = scenario(
        [
            cohort(
                n=n,
                excluded={"share": share, "when": when},
                rollback=rollback,
                max_attempts=attempts_allowed,
            )
        ],
        cap=250,
        horizon=30,
    )
    log = one(sc)
    excluded = round(n * share)
    assert col(log, "migrated")[-1] == n - excluded
    assert col(log, "abandoned")[-1] == excluded == col(log, "excluded")[-1]
    tries = attempts_allowed if when == "attempted" else 0
    assert col(log, "attempts").sum() == n - excluded + tries * excluded


@pytest.mark.parametrize("eligible_day", [0, 4])
def test_up_front_exclusions_count_in_abandons_on_the_day_they_become_eligible(
    eligible_day,
):
    """``abandons`` counts every installation abandoned that day, so the level
    ``abandoned`` is the running total of the flow: exclusions up front are
    abandoned (without an attempt) on the day their cohort becomes eligible."""
    n, share = 1000, 0.1
    sc = scenario(
        [
            cohort(
                n=n,
                eligible_from=(START + timedelta(days=eligible_day)).isoformat(),
                excluded={"share": share, "when": "up_front"},
            )
        ],
        cap=250,
        horizon=12,
    )
    log = one(sc)
    abandons, abandoned = col(log, "abandons"), col(log, "abandoned")
    assert abandons[eligible_day] == round(n * share) == abandoned[-1]
    assert abandons.sum() == round(n * share)
    assert (np.cumsum(abandons) == abandoned).all()


def test_hard_cases_have_their_own_rates():
    hard = {
        "share": 0.2,
        "outcomes": {
            "success": 0.0,
            "stall": 0.0,
            "rollback": 1.0,
            "fix_forward": 0.0,
            "dumb": 0.0,
        },
    }
    rollback = {"retry_after_days": {"dist": "fixed", "days": 1}}
    sc = scenario(
        [cohort(n=1000, hard=hard, rollback=rollback, max_attempts=2)],
        cap=500,
        horizon=20,
    )
    log = one(sc)
    assert col(log, "migrated")[-1] == 800
    assert col(log, "abandoned")[-1] == 200
    assert col(log, "rollbacks").sum() == 400
    [segment] = plan_segments(sc)
    assert [(c.kind, c.installations) for c in segment.classes] == [
        ("normal", 800),
        ("hard", 200),
    ]


def test_segments_split_by_largest_remainder():
    sc = migsim.load_scenario(ROOT / "scenarios" / "nov2019_operations.yaml")
    segments = plan_segments(sc)
    for c, spec in enumerate(sc.cohorts):
        assert (
            sum(s.installations for s in segments if s.cohort == c)
            == spec.installations
        )
    assert (
        segments[0].owner == "itron_active"
    )  # the main segment keeps the cohort's streams


# --------------------------------------------------------------------------- exposure
def test_cos_alerts_and_ppmid_failures_until_their_fixes():
    sc = scenario(
        [
            cohort(
                n=100,
                prepayment_share=1.0,
                change_of_supplier={
                    # 10 a year: ~7 alerts expected in the 3 days (none: p = 0.001)
                    "annual_rate": 10.0,
                    "alert_loss_share": 1.0,
                    "until": "2020-01-09",
                },
                ppmid_join={"failure_share": 1.0, "until": "2020-01-08"},
            )
        ],
        cap=40,
        horizon=12,
    )
    log = one(sc)
    migrated = col(log, "migrated")
    lost = col(log, "cos_alerts_lost")
    assert not lost[3:].any() and lost[:3].sum() > 0
    assert (lost[:3] <= migrated[:3]).all()
    failures = col(log, "ppmid_join_failures")
    assert failures.tolist()[:3] == [40, 40, 0] and not failures[3:].any()


def test_prepayment_dumb_is_a_sub_count_of_active_dumb():
    outcomes = {
        "success": 0.5,
        "stall": 0.0,
        "rollback": 0.0,
        "fix_forward": 0.0,
        "dumb": 0.5,
    }
    sc = scenario(
        [cohort(n=2000, outcomes=outcomes, prepayment_share=0.25)], cap=500, horizon=10
    )
    results = migsim.run(sc, replications=20)
    dumb = results.figure("active_dumb")
    prepayment = results.figure("active_prepayment_dumb")
    assert (prepayment <= dumb).all()
    assert abs(prepayment.sum() / dumb.sum() - 0.25) < 0.03


def test_a_continued_run_keeps_the_prepayment_share_of_the_dumb_it_starts_with():
    """A state does not carry which dumb devices are prepayment, but they are
    there: the continued run starts with a binomial share of those awaiting a
    site visit (the model's own draw per dumb batch), so its
    ``active_prepayment_dumb`` at the horizon end is not only the new ones."""
    outcomes = {
        "success": 0.8,
        "stall": 0.0,
        "rollback": 0.0,
        "fix_forward": 0.0,
        "dumb": 0.2,
    }
    sc = scenario(
        [cohort(n=2000, outcomes=outcomes, prepayment_share=0.5)],
        cap=200,
        horizon=30,
        days=ALL_DAYS[:5],
    )
    carried, dumb = [], []
    for k in range(20):
        state = state_after(sc, 0, k, 4)  # a Friday: the run goes on on a Saturday
        later = run_replication(sc.starting_from(state), 0, k)
        assert col(later, "attempts")[0] == 0
        dumb.append(col(later, "dumb")[0])
        carried.append(col(later, "prepayment_dumb")[0])
        assert dumb[-1] == state["cohorts"]["c"]["dumb"] > 0
        assert col(later, "prepayment_dumb")[-1] >= carried[-1]
    assert all(0 <= c <= d for c, d in zip(carried, dumb, strict=True))
    assert abs(sum(carried) / sum(dumb) - 0.5) < 0.05  # 20 x about 200 devices


# --------------------------------------------------------------------------- properties
EVERYTHING = {
    "suppliers": [
        {"name": "x", "business_ready": "2020-01-09", "daily_nomination": 60},
        {"name": "y"},
    ],
    "els": {"daily_capacity": 20},
}


def everything_scenario(
    seed_shift: int, cap: int, defect_share: float, threshold: int, allocation: str
) -> migsim.Scenario:
    def full(name, mode, n):
        c = cohort(
            name,
            n=n,
            mode=mode,
            max_attempts=3,
            outcomes={
                "success": 0.8,
                "stall": 0.08,
                "rollback": 0.06,
                "fix_forward": 0.03,
                "dumb": 0.03,
            },
            stall={
                "resolves_after_days": {"dist": "uniform", "low": 1, "high": 4},
                "then_success": 0.7,
            },
            rollback={
                "retry_after_days": {
                    "dist": "triangular",
                    "low": 1,
                    "mode": 2,
                    "high": 4,
                }
            },
            fix_forward={"restored_after_days": {"dist": "fixed", "days": 2}},
            dumb={
                "recovered_share": 0.5,
                "recovered_after_days": {"dist": "uniform", "low": 2, "high": 5},
            },
            hard={
                "share": 0.1,
                "outcomes": {
                    "success": 0.5,
                    "stall": 0.2,
                    "rollback": 0.2,
                    "fix_forward": 0.05,
                    "dumb": 0.05,
                },
            },
            excluded={
                "share": 0.03,
                "when": "attempted" if seed_shift % 2 else "up_front",
            },
            suppliers={"x": 0.6, "y": 0.4},
            latent_defects=[
                defect(
                    exists_probability=0.7,
                    hit_share=defect_share,
                    outcome=["dumb", "stall", "fix_forward"][seed_shift % 3],
                    detected_after_cases=4,
                    fix_after_days={"dist": "uniform", "low": 1, "high": 3},
                )
            ],
            volume_failures={
                "above_attempts": threshold,
                "increase": {"stall": 0.05, "dumb": 0.01},
                "until": "2020-01-20",
            },
            change_of_supplier={"annual_rate": 0.5, "until": "2020-01-25"},
        )
        if mode == "active":
            c["prepayment_share"] = 0.3
            c["ppmid_join"] = {"failure_share": 0.2}
        return c

    data = {
        "name": "everything",
        "start_date": START.isoformat(),
        "horizon_days": 40,
        "capacity": {
            "daily_cap": cap,
            "allocation": allocation,
            "dmin": 30,
            "achieved_share": {"dist": "uniform", "low": 0.5, "high": 1.0},
        },
        "cohorts": [
            full("act", "active", 700 + 37 * seed_shift),
            full("dor", "dormant", 900),
        ],
        **copy.deepcopy(EVERYTHING),
    }
    return migsim.load_scenario(data)


def check_conservation(log, sc):
    columns = log.cohort_columns
    states = sum(columns[s] for s in STATES)
    sizes = np.array([c.installations for c in sc.cohorts])
    assert (states == sizes).all()
    outcomes = sum(
        columns[f]
        for f in ("successes", "stalls", "rollbacks", "fix_forwards", "dumbs")
    )
    assert (outcomes == columns["attempts"]).all()
    assert (columns["operational"] <= columns["migrated"]).all()
    assert (columns["awaiting_site_visit"] <= columns["dumb"]).all()
    assert (columns["prepayment_dumb"] <= columns["awaiting_site_visit"]).all()
    assert (columns["excluded"] <= columns["abandoned"]).all()
    assert (columns["defect_hits"] <= columns["attempts"]).all()
    assert (columns["stressed_attempts"] <= columns["attempts"]).all()
    assert (
        log.day_columns["els_backlog"] == columns["els_cases_open"].sum(axis=1)
    ).all()
    for state in STATES:
        assert (columns[state] >= 0).all(), state
    assert (columns["attempts"].sum(axis=1) <= sc.capacity.daily_cap).all()


@pytest.mark.slow
@settings(derandomize=True, deadline=None, max_examples=25)
@given(
    seed_shift=st.integers(0, 50),
    cap=st.integers(1, 300),
    defect_share=st.sampled_from([0.0, 0.05, 0.5]),
    threshold=st.integers(0, 200),
    allocation=st.sampled_from(["msm", "pro_rata", "priority"]),
    replication=st.integers(0, 1000),
)
def test_conservation_with_every_section_on(
    seed_shift, cap, defect_share, threshold, allocation, replication
):
    sc = everything_scenario(seed_shift, cap, defect_share, threshold, allocation)
    log = run_replication(sc, 7, replication)
    check_conservation(log, sc)
    again = run_replication(sc, 7, replication)
    for name, values in log.cohort_columns.items():
        assert np.array_equal(values, again.cohort_columns[name]), name
    assert log.defects == again.defects


def test_every_operations_column_appears_and_determinism_across_workers():
    sc = everything_scenario(1, 150, 0.05, 100, "msm")
    one_worker = migsim.run(sc, replications=4, seed=2, workers=1)
    two_workers = migsim.run(sc, replications=4, seed=2, workers=2)
    pd.testing.assert_frame_equal(one_worker.daily, two_workers.daily)
    pd.testing.assert_frame_equal(one_worker.defects, two_workers.defects)
    for name in (*OPERATIONS_LEVELS, *OPERATIONS_FLOWS, "els_backlog", "achieved_cap"):
        assert name in one_worker.daily.columns, name
    other = migsim.run(sc, replications=4, seed=3)
    assert not other.daily.equals(one_worker.daily)


def test_a_section_that_changes_nothing_leaves_the_draws_alone():
    """Streams are per (owner, purpose): an absent defect or an empty hard share
    adds streams but never shifts the numbers the cohorts draw."""
    stall = {
        "resolves_after_days": {"dist": "uniform", "low": 1, "high": 5},
        "then_success": 0.7,
    }
    rollback = {"retry_after_days": {"dist": "uniform", "low": 1, "high": 3}}
    outcomes = {
        "success": 0.8,
        "stall": 0.1,
        "rollback": 0.1,
        "fix_forward": 0.0,
        "dumb": 0.0,
    }
    plain = [
        cohort("a", n=800, outcomes=outcomes, stall=stall, rollback=rollback),
        cohort(
            "b",
            n=600,
            mode="dormant",
            outcomes=outcomes,
            stall=stall,
            rollback=rollback,
        ),
    ]
    extra = copy.deepcopy(plain)
    extra[0]["latent_defects"] = [defect(exists_probability=0.0)]
    extra[1]["hard"] = {"share": 0.0, "outcomes": outcomes}
    a = one(scenario(plain, cap=150, horizon=30), replication=4)
    b = one(scenario(extra, cap=150, horizon=30), replication=4)
    for name in (*STATES, *FLOWS):
        assert np.array_equal(a.cohort_columns[name], b.cohort_columns[name]), name
    assert not b.cohort_columns["defect_hits"].any()


# --------------------------------------------------------------------------- results
def test_results_write_defects_and_figures(tmp_path):
    sc = everything_scenario(0, 150, 0.05, 100, "msm")
    results = migsim.run(sc, replications=3)
    out = results.write(tmp_path / "out")
    defects = pd.read_csv(out / "defects.csv")
    assert list(defects.columns) == [
        "replication",
        "cohort",
        "defect",
        "exists",
        "exposed_from_date",
        "found_date",
        "found_day",
        "resumed_date",
        "installations_hit",
    ]
    assert len(defects) == 6
    summary = results.summary
    for name in (
        "active_hit_by_defects",
        "dormant_hit_by_defects",
        "active_dumb_installation_days",
        "max_daily_active_interrupted",
        "peak_els_backlog",
        "active_prepayment_dumb",
        "cos_alerts_lost",
        "ppmid_join_failures",
        "excluded",
    ):
        assert set(summary["figures"][name]) == {
            "mean",
            "p5",
            "p10",
            "p50",
            "p80",
            "p85",
            "p90",
            "p95",
        }
        assert name in results.replications.columns
    assert set(summary["defects"]) == {"act.fw", "dor.fw"}
    peak = results.figure("peak_els_backlog")
    assert (
        peak == [log.day_columns["els_backlog"].max() for log in results.logs]
    ).all()
    interrupted = results.series("impaired") + results.series("stalled")
    expected = interrupted[:, :, 0].max(axis=1)  # cohort 0 is the active one
    assert (results.figure("max_daily_active_interrupted") == expected).all()


def test_bundled_operations_scenario_calibration():
    """Early throughput: ~40,600 installations by 18 Feb 2020 lies inside the
    P5-P95 band (the entry dates and the mean share are uncertain), and the
    typical best day is near the proven 1,229."""
    results = migsim.run(
        ROOT / "scenarios" / "nov2019_operations.yaml", replications=20
    )
    day = results.scenario.day_of(date(2020, 2, 18))
    migrated = results.series("cumulative_migrated").sum(axis=2)[:, day]
    assert np.quantile(migrated, 0.05) < 40_600 < np.quantile(migrated, 0.95)
    best = results.series("attempts").sum(axis=2).max(axis=1)
    assert 1_000 < np.median(best) < 1_500
    assert best.max() <= 2_000  # never above the cap


# --------------------------------------------------------------------------- errors
BAD = [
    ("cohorts.0.latent_defects", [defect(hit_share=1.5)], "hit_share"),
    ("cohorts.0.latent_defects", [defect(detected_after_cases=None)], "detected_after"),
    (
        "cohorts.0.latent_defects",
        [defect(outcome="stall")],
        "section 'stall' is required",
    ),
    ("cohorts.0.latent_defects", [defect(outcome="melt")], "outcome"),
    ("cohorts.0.latent_defects", [defect(), defect()], "unique"),
    (
        "cohorts.0.latent_defects",
        [defect(fix_after_days={"dist": "fixed", "days": 0})],
        "days",
    ),
    ("cohorts.0.suppliers", {"nobody": 1.0}, "no supplier named nobody"),
    ("cohorts.0.suppliers", {"x": 0.5}, "shares sum"),
    (
        "capacity",
        {"daily_cap": 10, "allocation": "msm", "dmin": 5},
        "every cohort needs a suppliers split",
    ),
    ("capacity.allocation", "msm", "capacity.dmin: required"),
    ("capacity.dmin", -1, "dmin"),
    (
        "capacity.achieved_share",
        {"dist": "uniform", "low": 0.8, "high": 0.2},
        "below low",
    ),
    ("capacity.achieved_share", {"dist": "gamma"}, "achieved_share"),
    ("els", {"daily_capacity": 0}, "daily_capacity"),
    ("els", {"daily_capacity": 5, "cases_from": ["stall", "nothing"]}, "cases_from"),
    (
        "cohorts.0.volume_failures",
        {"above_attempts": 5, "increase": {"dumb": 0.7}},
        "can give way",
    ),
    (
        "cohorts.0.volume_failures",
        {"above_attempts": 5, "increase": {"success": 0.1}},
        "success",
    ),
    (
        "cohorts.0",
        cohort(
            "a",
            hard={
                "share": 0.7,
                "outcomes": {
                    "success": 1.0,
                    "stall": 0.0,
                    "rollback": 0.0,
                    "fix_forward": 0.0,
                    "dumb": 0.0,
                },
            },
            excluded={"share": 0.5, "when": "up_front"},
        ),
        "> 1",
    ),
    ("cohorts.0.excluded", {"share": 0.1}, "section 'rollback' is required"),
    ("cohorts.0.dumb", {"recovered_share": 0.5}, "recovered_after_days"),
    ("cohorts.1.prepayment_share", 0.2, "active cohorts only"),
    ("cohorts.0.ppmid_join", {"failure_share": 0.1}, "prepayment_share"),
    ("suppliers", [{"name": "x"}, {"name": "x"}], "unique"),
]


def bad_document(field: str, value) -> dict:
    data = {
        "name": "bad",
        "start_date": "2020-01-06",
        "horizon_days": 30,
        "capacity": {"daily_cap": 100},
        "suppliers": [{"name": "x"}],
        "cohorts": [
            cohort(
                "a",
                outcomes={
                    "success": 0.6,
                    "stall": 0.0,
                    "rollback": 0.0,
                    "fix_forward": 0.0,
                    "dumb": 0.4,
                },
            ),
            cohort("b", mode="dormant"),
        ],
    }
    node = data
    parts = field.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize("field, value, needle", BAD)
def test_bad_definitions_exit_2_with_one_line(tmp_path, field, value, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad_document(field, value)))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert needle in lines[0], lines[0]
    assert "bad.yaml" in lines[0]


@pytest.mark.slow
def test_cli_runs_the_operations_scenario(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(ROOT / "scenarios" / "nov2019_operations.yaml"),
            "-n",
            "2",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "peak ELS case backlog" in result.output
    assert "of which prepayment (grave)" in result.output
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {
        "daily.parquet",
        "replications.csv",
        "summary.json",
        "scenario.yaml",
        "backlog.png",
    } <= written
    again = migsim.load_scenario(tmp_path / "out" / "scenario.yaml")
    assert (
        again.sha256
        == migsim.load_scenario(ROOT / "scenarios" / "nov2019_operations.yaml").sha256
    )


# --------------------------------------------------------------------------- policy
def test_els_backlog_is_a_rule_metric():
    outcomes = {
        "success": 0.0,
        "stall": 0.0,
        "rollback": 0.0,
        "fix_forward": 0.0,
        "dumb": 1.0,
    }
    rule = {
        "name": "els_halt",
        "action": "halt_days",
        "days": 2,
        "when": [{"metric": "els_backlog", "window": 1, "op": ">", "value": 50}],
    }
    sc = scenario(
        [cohort(n=10_000, outcomes=outcomes)],
        cap=100,
        horizon=10,
        capacity={"daily_cap": 100, "rules": [rule]},
        els={"daily_capacity": 10},
    )
    log = one(sc)
    assert log.day_columns["els_backlog"][0] == 100
    assert log.day_columns["rule_fired"][1] == "els_halt"
    assert col(log, "attempts")[:4].tolist() == [100, 0, 0, 100]


def test_els_backlog_metric_needs_an_els_section(tmp_path):
    rule = {
        "name": "els_halt",
        "action": "halt_days",
        "days": 2,
        "when": [{"metric": "els_backlog", "op": ">", "value": 50}],
    }
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(bad_document("capacity", {"daily_cap": 10, "rules": [rule]}))
    )
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert "metric els_backlog needs an els section" in result.output


def test_readiness_and_settings_change_may_be_gates_or_drawn_dates():
    gates = [
        {
            "name": "ready",
            "opens_on": {"dist": "uniform", "low": "2020-01-08", "high": "2020-01-20"},
        },
        {"name": "settings", "opens_on": "2020-01-12"},
    ]
    stall = {"resolves_after_days": {"dist": "fixed", "days": 1}, "then_success": 1.0}
    sc = scenario(
        [
            cohort(
                "act",
                n=20_000,
                suppliers={"late": 1.0},
                stall=stall,
                volume_failures={
                    "above_attempts": 0,
                    "until": "settings",
                    "increase": {"stall": 0.5},
                },
            )
        ],
        cap=100,
        horizon=30,
        gates=gates,
        suppliers=[{"name": "late", "business_ready": "ready"}],
    )
    days = set()
    for replication in range(6):
        log = one(sc, replication)
        ready = log.gate_days["ready"]
        days.add(ready)
        attempts = col(log, "attempts")
        assert not attempts[:ready].any() and attempts[ready] == 100
        stressed = col(log, "stressed_attempts")
        assert (stressed[ready:6] == 100).all() and not stressed[6:].any()
    assert len(days) > 1  # drawn per replication


def test_summary_and_report_show_operations_figures_only_when_used():
    from migsim.output.report import render_report
    from migsim.sim.operations import figures_in_use

    plain = migsim.run(GOLDEN / "foundation_golden.yaml", replications=3)
    assert figures_in_use(plain.scenario) == frozenset()
    html = render_report([plain], charts=False)
    assert "ELS/MCC" not in html and "latent defect" not in html
    sc = everything_scenario(0, 150, 0.05, 100, "msm")
    busy = migsim.run(sc.with_overrides({"cohorts.dor.latent_defects": []}), 3)
    used = figures_in_use(busy.scenario)
    assert "dormant_hit_by_defects" not in used and "active_hit_by_defects" in used
    html = render_report([busy], charts=False)
    assert "peak ELS/MCC case backlog" in html and "cases" in html
