"""The bundled full-fleet scenario: published inputs, marked assumptions, shape."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

import migsim

PATH = Path(__file__).resolve().parent.parent / "scenarios" / "smets1_full_fleet.yaml"


def fleet():
    return migsim.load_scenario(PATH)


def test_fleet_covers_the_programme_from_november_2019_to_2024():
    sc = fleet()
    assert sc.start_date == date(2019, 11, 25)
    assert sc.end_date >= date(2024, 12, 31)
    assert sc.meters_per_installation == 1.6
    meters = sc.installations * sc.meters_per_installation
    assert 13e6 <= meters <= 15e6  # "roughly 13-15 million SMETS1 meters"


def test_cohorts_are_ioc_moc_foc_edmi_split_dormant_and_active():
    sc = fleet()
    shares = {"ioc": 0.22, "moc": 0.32, "foc": 0.42, "edmi": 0.04}
    total = sc.installations
    for family, share in shares.items():
        dormant, active = sc.cohort(f"{family}_dormant"), sc.cohort(f"{family}_active")
        assert (dormant.mode, active.mode) == ("dormant", "active")
        size = dormant.installations + active.installations
        assert abs(size / total - share) < 0.001, family
    assert len(sc.cohorts) == 8
    moc_meters = (
        sc.cohort("moc_dormant").installations + sc.cohort("moc_active").installations
    ) * sc.meters_per_installation
    assert moc_meters > 4e6  # "more than four million" meters
    # MOC, "the last cohort to finish", starts last
    moc_start = min(
        sc.cohort("moc_dormant").eligible_from, sc.cohort("moc_active").eligible_from
    )
    assert all(
        c.eligible_from <= moc_start for c in sc.cohorts if not c.name.startswith("moc")
    )


def test_every_cohort_figure_is_cited_or_marked_as_assumption():
    sc = fleet()
    for key, text in sc.sources.items():
        assert text.startswith(("seed paper", "public", "assumption")), key
    for cohort in sc.cohorts:
        for field in ("installations", "eligible_from"):
            assert f"cohorts.{cohort.name}.{field}" in sc.sources
    for key in (
        "capacity.daily_cap",
        "meters_per_installation",
        "start_date",
        "horizon_days",
        "calendar.bank_holidays",
    ):
        assert key in sc.sources
    for step in sc.capacity.schedule:
        assert any(k.startswith(f"capacity.schedule.{step.name}") for k in sc.sources)


def test_capacity_ramps_from_the_2019_cap_to_the_proven_peak():
    sc = fleet()
    caps = [sc.capacity.daily_cap] + [s.daily_cap for s in sc.capacity.schedule]
    assert caps[0] == 2000  # seed paper
    assert caps == sorted(caps)
    assert caps[-1] * sc.meters_per_installation == 30_000  # meters per working day


def test_one_fleet_replication_conserves_installations():
    sc = fleet()
    results = migsim.run(sc, replications=1, seed=0)
    daily = results.daily
    caps = set(daily["daily_cap"].unique()) - {0}  # 0: weekends and bank holidays
    assert caps == {2000, 5000, 10000, 18750}
    states = [
        "pending",
        "queued",
        "stalled",
        "rolled_back",
        "impaired",
        "migrated",
        "dumb",
        "abandoned",
    ]
    per_day = daily.groupby("date")[states].sum().sum(axis=1).to_numpy()
    np.testing.assert_array_equal(per_day, sc.installations)
    attempts = daily.groupby("date")["attempts"].sum()
    caps = daily.groupby("date")["daily_cap"].first()
    assert (attempts <= caps).all()
