"""The bundled full-fleet scenario: a forecast made in November 2019, its inputs
published or marked assumptions, its uncertainty stated, no hindsight dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

import migsim
from migsim.model.point import point_scenario
from migsim.model.uncertainty import SlipDate
from migsim.sim.inputs import resolve_inputs
from migsim.sim.streams import Streams

PATH = Path(__file__).resolve().parent.parent / "scenarios" / "smets1_full_fleet.yaml"
STATES = [
    "pending",
    "queued",
    "stalled",
    "rolled_back",
    "impaired",
    "migrated",
    "dumb",
    "abandoned",
]


def fleet():
    return migsim.load_scenario(PATH)


def test_fleet_covers_the_programme_from_november_2019_to_2024():
    sc = fleet()
    assert sc.start_date == date(2019, 11, 25)
    assert sc.end_date >= date(2024, 12, 31)
    assert sc.meters_per_installation == 1.6
    meters = sc.installations * sc.meters_per_installation
    assert 13e6 <= meters <= 15e6  # "roughly 13-15 million SMETS1 meters"
    low = sum(c.installations_range.low for c in sc.cohorts)
    high = sum(c.installations_range.high for c in sc.cohorts)
    assert low * 1.6 == 13e6 and high * 1.6 == 15e6  # the range, shared
    assert all(c.installations_range.shared for c in sc.cohorts)


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


def test_starts_come_from_the_published_plan_with_slips_not_hindsight():
    sc = fleet()
    planned = {"moc": date(2019, 9, 30), "foc": date(2019, 12, 12)}
    planned["edmi"] = planned["foc"]
    assert sc.cohort("ioc_dormant").eligible_from == date(2019, 11, 25)  # [seed]
    for cohort in sc.cohorts:
        if cohort.name == "ioc_dormant":
            continue
        spec = cohort.eligible_from
        assert isinstance(spec, SlipDate), cohort.name
        assert spec.shared and spec.black_swan is not None, cohort.name
        family = cohort.name.split("_")[0]
        if family in planned:
            assert spec.planned == planned[family], cohort.name
            assert spec.not_before is not None and spec.not_before.year == 2020
    text = PATH.read_text(encoding="utf-8")
    for hindsight in ("2020-02-21", "21 Feb 2020", "2021-06-01", "last cohort"):
        assert hindsight not in text, hindsight


def test_every_figure_and_distribution_is_cited_or_marked_as_assumption():
    sc = fleet()
    for key, text in sc.sources.items():
        assert text.startswith(("seed paper", "public", "assumption", "as ")), key
    for cohort in sc.cohorts:
        for field in ("installations", "eligible_from"):
            assert f"cohorts.{cohort.name}.{field}" in sc.sources
    for key in (
        "capacity.daily_cap",
        "capacity.achieved.mean",
        "programme_delay",
        "meters_per_installation",
        "start_date",
        "horizon_days",
        "calendar.bank_holidays",
        "cohorts.ioc_dormant.installations_range",
        "cohorts.ioc_dormant.outcomes.evidence",
        "cohorts.ioc_active.outcomes",
        "capacity.schedule.scaled_mcc.daily_cap_range",
    ):
        assert key in sc.sources, key
    for step in sc.capacity.schedule:
        assert any(k.startswith(f"capacity.schedule.{step.name}") for k in sc.sources)
    for gate in sc.gates:
        assert any(k.startswith(f"gates.{gate.name}") for k in sc.sources)


def test_capacity_ramps_as_the_paper_says_with_a_wide_ceiling():
    sc = fleet()
    caps = [sc.capacity.daily_cap] + [s.daily_cap for s in sc.capacity.schedule]
    assert caps[:3] == [2000, 5000, 10000]  # seed paper: 2,000 now, 5,000, 10,000
    assert caps == sorted(caps)
    ceiling = sc.capacity.schedule[-1].daily_cap_range
    assert ceiling.high / ceiling.low >= 3  # a WIDE range, not a fitted level
    assert ceiling.low <= 30_000 / 1.6 <= ceiling.high
    assert [s.from_ for s in sc.capacity.schedule] == [
        "mcc_automation",
        "success_holds",
        "scaled_mcc",
    ]


def test_one_fleet_replication_conserves_its_drawn_installations():
    sc = fleet()
    results = migsim.run(sc, replications=1, seed=0)
    daily = results.daily
    per_day = daily.groupby("date")[STATES].sum().sum(axis=1).to_numpy()
    drawn = results.inputs.filter(like=".installations").sum(axis=1).iloc[0]
    np.testing.assert_array_equal(per_day, drawn)
    ratio = results.inputs["meters_per_installation"].iloc[0]
    assert 13e6 - 8 <= drawn * ratio <= 15e6 + 8  # rounded per cohort
    attempts = daily.groupby("date")["attempts"].sum()
    caps = daily.groupby("date")["daily_cap"].first()
    assert (attempts <= caps).all()
    steps = [
        results.inputs[f"gates.{g}"].iloc[0]
        for g in ("mcc_automation", "success_holds", "scaled_mcc")
    ]
    assert steps == sorted(steps)  # the gates open in order


def test_the_ratio_is_a_range_and_the_fleet_stays_13_to_15_million_meters():
    sc = fleet()
    spec = sc.meters_per_installation_range
    assert (spec.low, sc.meters_per_installation, spec.high) == (1.4, 1.6, 1.9)
    assert all(c.installations_range.from_meters for c in sc.cohorts)
    assert "meters_per_installation_range" in sc.sources
    ratios, meters, sizes = [], [], []
    for k in range(40):
        drawn = resolve_inputs(sc, Streams(0, k))
        ratio = drawn.meters_per_installation
        size = drawn.installations
        ratios.append(ratio)
        sizes.append(size)
        meters.append(size * ratio)
    assert 1.4 <= min(ratios) and max(ratios) <= 1.9 and np.ptp(ratios) > 0.2
    assert 13e6 - 8 <= min(meters) and max(meters) <= 15e6 + 8
    # the size in installations moves against the ratio: the same meters
    assert np.corrcoef(ratios, sizes)[0, 1] < -0.7


def test_the_point_forecast_uses_the_planned_dates():
    point = point_scenario(fleet())
    assert point.cohort("moc_dormant").eligible_from == date(2020, 1, 6)  # not_before
    assert point.cohort("ioc_active").eligible_from == date(2019, 12, 9)
    assert point.installations == fleet().installations


def _state_from_totals(sc, tmp_path, rows: str, as_of: date):
    """The state (and notes) programme totals in meters give on ``as_of``."""
    from migsim.evidence.actuals import read_actuals
    from migsim.evidence.state import state_from_actuals

    path = tmp_path / "totals.csv"
    path.write_text("date,cumulative_migrated\n" + rows)
    return state_from_actuals(sc, read_actuals(path, sc, unit="meters"), as_of)


def test_a_forecast_from_programme_totals_keeps_the_fleet_13_to_15_million_meters(
    tmp_path,
):
    """Totals in meters say what had migrated, not how large the fleet is: the
    continued scenario keeps each cohort's size range, each replication draws
    it, and the installations not yet seen take the difference. Before, the
    state pinned the point sizes while the ratio was still drawn, so the fleet
    spanned 12.6-16.5 million meters in 60 replications, not the stated 13-15."""
    sc = fleet()
    totals = "2019-11-30,8000\n2019-12-31,30000\n2020-01-31,70000\n"
    state, notes = _state_from_totals(sc, tmp_path, totals, date(2020, 1, 31))
    assert state["sizes_known"] is False
    assert any("each replication draws it" in note for note in notes)
    continued = sc.starting_from(state)
    assert all(c.installations_range is not None for c in continued.cohorts)
    known = {c.name: c.initial_state for c in continued.cohorts}
    meters, sizes = [], []
    for k in range(60):
        drawn = resolve_inputs(continued, Streams(0, k))
        for cohort in drawn.cohorts:
            state_k, before = cohort.initial_state, known[cohort.name]
            assert state_k.total == cohort.installations
            # what had happened stays as the actuals said (the devices left
            # dumb on the way, which they do not say, at the replication's rates)
            assert state_k.migrated == before.migrated
            assert before.dumb_estimated and not state_k.dumb_estimated
        meters.append(drawn.installations * drawn.meters_per_installation)
        sizes.append(drawn.installations)
    assert 13e6 - 1e5 <= min(meters) and max(meters) <= 15e6 + 1e5
    assert np.ptp(sizes) > 5e5  # the size is still uncertain


def test_a_state_from_a_replication_keeps_its_drawn_sizes():
    """A replication's state knows its cohorts' sizes: the continuation takes
    them and draws none (its inputs are that replication's)."""
    sc = fleet()
    results = migsim.run(sc.with_overrides({"horizon_days": 40}), replications=1)
    state = results.state_on(date(2019, 12, 20), 0)
    continued = sc.starting_from(state)
    assert all(c.installations_range is None for c in continued.cohorts)
    drawn = results.inputs.filter(like="installations").iloc[0].sum()
    assert continued.installations == drawn


def test_a_cohort_the_totals_show_all_attempted_takes_its_point_size(tmp_path):
    """A cohort whose state holds no installation left unattempted (pending and
    queued first attempts 0) has none to take a drawn size's difference: it
    takes the point size, as the docs and its note say. Its state was taken as
    a holder all the same, so each replication's draw above the point added
    queued installations to a cohort the totals show finished, and a draw
    below it was the point: the fleet's size leaned upwards."""
    from migsim.model.state import InitialState

    assert InitialState(migrated=100, queued=0).size_holder is None
    assert InitialState(migrated=100, queued=[{"count": 0}]).size_holder is None
    sc = fleet()
    totals = "2019-11-30,8000\n2021-06-30,9000000\n2022-06-30,13500000\n"
    state, notes = _state_from_totals(sc, tmp_path, totals, date(2022, 6, 30))
    held = {n: InitialState.model_validate(s) for n, s in state["cohorts"].items()}
    done = [n for n, s in held.items() if s.migrated == s.total]
    assert "ioc_dormant" in done
    said = next(note for note in notes if "point size is taken" in note)
    assert all(name in said for name in done)
    continued = sc.starting_from(state)
    for cohort in continued.cohorts:
        assert (cohort.installations_range is None) == (cohort.name in done)
    for k in range(5):
        drawn = resolve_inputs(continued, Streams(0, k))
        assert drawn.cohort("ioc_dormant").installations == held["ioc_dormant"].total
