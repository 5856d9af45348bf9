"""Sensitivity: tornado swings and Sobol indices on scenarios whose answer is known.

The scenario is deterministic: 10,000 installations that all succeed, every day a
working day, so with a cap of c a day the backlog clears on day ceil(10,000 / c) - 1
whatever the seed. A closure after the horizon and the attempt limit (nobody
fails) cannot move anything.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import ALL_DAYS, cohort, outcomes, scenario, write_yaml

from migsim.cli.main import main
from migsim.common.errors import MigsimError
from migsim.experiments.sensitivity import parse_range, sensitivity
from migsim.model.scenario import load_scenario

NO_EFFECT_CLOSURE = "calendar.closures.0=2024-06-01:2024-07-01"  # after the horizon


def all_success() -> dict[str, Any]:
    return scenario(
        cohort("c", 10000),
        working_days=ALL_DAYS,
        horizon_days=40,
        closures=[date(2024, 5, 1)],
        name="all_success",
    )


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "scenario.yaml", all_success())


def test_tornado_swings_are_the_hand_computed_ones_and_no_effect_ranks_last(
    scenario_file, tmp_path
):
    out = tmp_path / "oat"
    result = CliRunner().invoke(
        main,
        [
            "sensitivity",
            str(scenario_file),
            "--range",
            NO_EFFECT_CLOSURE,
            "--range",
            "capacity.daily_cap=500:2000",
            "--figure",
            "clearance_day_p50",
            "--figure",
            "peak_failure_backlog_p90",
            "--figure",
            "abandoned_p90",
            "-n",
            "2",
            "--seed",
            "0",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "sensitivity.csv")
    assert list(table.columns[:5]) == [
        "field",
        "figure",
        "value_low",
        "value_high",
        "swing",
    ]
    clearance = table[table["figure"] == "clearance_day_p50"]
    assert clearance["field"].tolist() == ["capacity.daily_cap", "calendar.closures.0"]
    top = clearance.iloc[0]
    assert (top["value_low"], top["value_high"], top["swing"]) == (19, 4, 15)
    assert clearance.iloc[1]["swing"] == 0
    for _, rows in table.groupby("figure", sort=False):
        closure = rows[rows["field"] == "calendar.closures.0"]
        assert (closure["swing"] == 0).all()
        assert rows["swing"].iloc[-1] == 0  # zero swing is last in every figure
    assert len(table) == 2 * 3
    data = json.loads((out / "sensitivity.json").read_text())
    assert data["method"] == "oat" and data["points"] == 5
    assert data["base"]["clearance_day_p50"] == 9
    assert data["fields"]["capacity.daily_cap"] == {"low": 500, "high": 2000}
    assert (out / "tornado.png").stat().st_size > 10_000


@pytest.mark.slow
def test_sobol_total_index_is_one_for_the_only_field_that_matters():
    scenario = load_scenario(all_success())
    ranges = [
        parse_range(scenario, text)
        for text in (
            NO_EFFECT_CLOSURE,
            "capacity.daily_cap=500:2000",
            "cohorts.c.max_attempts=1:9",
        )
    ]
    result = sensitivity(
        scenario,
        ranges,
        "sobol",
        replications=1,
        seed=0,
        samples=64,
        figures=["clearance_day_p50", "dumb_p90"],
    )
    assert result.points == 64 * (3 + 2)
    table = result.table.set_index(["figure", "field"])
    assert list(result.table.columns) == [
        "field",
        "figure",
        "value_low",
        "value_high",
        "swing",
        "s1",
        "s1_ci",
        "st",
        "st_ci",
        "field_low",
        "field_high",
    ]
    cap = table.loc[("clearance_day_p50", "capacity.daily_cap")]
    assert cap["st"] == pytest.approx(1, abs=0.1)
    assert cap["s1"] == pytest.approx(1, abs=0.15)
    assert cap["value_low"] > cap["value_high"]  # a lower cap clears later
    for field in ("calendar.closures.0", "cohorts.c.max_attempts"):
        row = table.loc[("clearance_day_p50", field)]
        assert abs(row["st"]) < 0.05 and abs(row["s1"]) < 0.05
    assert (table.loc["dumb_p90", ["s1", "st", "swing"]] == 0).all().all()
    assert result.table["field"].iloc[0] == "capacity.daily_cap"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("capacity.no_such=1:2", "--range capacity.no_such: not a scenario field"),
        ("capacity.daily_cap=3000:2000", "low (3000) is above high (2000)"),
        ("capacity.daily_cap=2000", "expected FIELD=LOW:HIGH"),
        ("cohorts.c.outcomes=0:1", "a section, not a number or date field"),
        ("capacity.daily_cap=-5:10", "--range capacity.daily_cap"),
        # days counted from a later start read shorter: not a sensitivity
        ("start_date=2024-01-01:2024-02-01", "--range start_date: start_date cannot"),
        # a whole-number field: 500.5 ran as 500, 1e-300 as 0, without a word
        ("capacity.daily_cap=500.5:2000", "low 500.5 is not a whole number"),
        ("capacity.daily_cap=1e-300:2000", "low 1e-300 is not a whole number"),
        ("cohorts.c.max_attempts=1:2.5", "high 2.5 is not a whole number"),
    ],
)
def test_bad_ranges_exit_2_with_one_line(scenario_file, text, message):
    result = CliRunner().invoke(
        main, ["sensitivity", str(scenario_file), "--range", text, "-n", "1"]
    )
    assert result.exit_code == 2, result.output
    assert "\n" not in result.output.strip()
    assert message in result.output


def test_a_figure_given_twice_is_refused(scenario_file):
    """--figure dumb_p90 --figure dumb_p90 showed (and wrote) its rows twice."""
    args = ["sensitivity", str(scenario_file), "-n", "1"]
    args += ["--range", "capacity.daily_cap=500:2000"]
    result = CliRunner().invoke(main, [*args, "--figure", "dumb_p90"])
    assert result.exit_code == 0, result.output
    twice = ["--figure", "dumb_p90", "--figure", "dumb_p90"]
    result = CliRunner().invoke(main, [*args, *twice])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "Error: --figure dumb_p90: given twice; give each figure once"
    )


def test_one_field_named_two_ways_is_refused(scenario_file, tmp_path):
    """A cohort's field by the cohort's index and by its name were two ranges:
    OAT measured it twice, Sobol split its effect between two inputs that
    were one (each point set it twice, the later won). Refused before
    anything runs, as a question's levers are."""
    out = tmp_path / "out"
    args = ["sensitivity", str(scenario_file), "-n", "1", "-o", str(out)]
    args += ["--method", "sobol", "--samples", "4"]
    args += ["--range", "cohorts.0.installations=5000:10000"]
    args += ["--range", "cohorts.c.installations=6000:9000"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "Error: --range cohorts.c.installations: the same field as --range "
        "cohorts.0.installations (a list item by its index and by its name): "
        "give it once"
    )
    assert not out.exists()
    # two fields of one cohort are two ranges
    scenario = load_scenario(scenario_file)
    ranges = [
        parse_range(scenario, "cohorts.0.installations=5000:10000"),
        parse_range(scenario, "cohorts.c.max_attempts=1:5"),
    ]
    assert [r.path for r in sensitivity(scenario, ranges, replications=1).ranges] == [
        "cohorts.0.installations",
        "cohorts.c.max_attempts",
    ]


def test_sobol_needs_a_power_of_two_and_known_figures():
    scenario = load_scenario(all_success())
    ranges = [parse_range(scenario, "capacity.daily_cap=500:2000")]
    with pytest.raises(MigsimError, match="power of 2"):
        sensitivity(scenario, ranges, "sobol", samples=48)
    with pytest.raises(MigsimError, match="NAME_STATISTIC"):
        sensitivity(scenario, ranges, "oat", figures=["clearance_day_p99"])


def test_sobol_refuses_fewer_than_four_samples(scenario_file, tmp_path):
    """--samples 2 ran, and in two draws of three a field had no point in its
    lowest or highest quarter: value_low or value_high, and the swing, NaN.
    The first N points of a scrambled Sobol sequence put one in each 1/N of a
    field's range, so from 4 both quarters hold a point whatever the seed."""
    scenario = load_scenario(all_success())
    ranges = [
        parse_range(scenario, text)
        for text in ("capacity.daily_cap=500:2000", "cohorts.c.max_attempts=1:9")
    ]
    with pytest.raises(ValueError, match=r"^samples must be 4 to 65,536, not 2$"):
        sensitivity(scenario, ranges, "sobol", replications=1, seed=0, samples=2)
    for seed in range(3):
        result = sensitivity(
            scenario,
            ranges,
            "sobol",
            replications=1,
            seed=seed,
            samples=4,
            figures=["clearance_day_p50"],
        )
        numbers = result.table[["value_low", "value_high", "swing", "s1", "st"]]
        assert numbers.notna().all().all(), (seed, result.table)
        cap = result.table.set_index("field").loc["capacity.daily_cap"]
        assert cap["value_low"] > cap["value_high"]  # a lower cap clears later
        assert cap["s1_ci"] > 0 and cap["st_ci"] > 0
    out = tmp_path / "s"
    args = ["sensitivity", str(scenario_file), "--method", "sobol", "-n", "1"]
    args += ["--range", "capacity.daily_cap=500:2000", "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--samples", "2"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "Error: Invalid value for '--samples': 2 is not in the range 4<=x<=65536."
    )
    assert not out.exists()


def test_oat_ignores_samples_that_only_sobol_uses(scenario_file):
    """``--method oat --samples 2`` was refused ('2 is not in the range
    4<=x<=65536') for an option oat never reads: it is ignored, as the
    Python API ignores it, and the tornado is the one of the default."""
    args = ["sensitivity", str(scenario_file), "-n", "1", "-q", "--format", "json"]
    args += ["--range", "capacity.daily_cap=500:2000", "--figure", "clearance_day_p50"]
    answers = []
    for samples in ("2", str(2**40), "64"):
        result = CliRunner().invoke(main, [*args, "--samples", samples])
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        answer.pop("timing")
        answers.append(answer)
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["method"] == "oat" and "samples" not in answers[0]


def test_its_scenario_yaml_records_the_seed_used(scenario_file, tmp_path):
    """sensitivity.json gave the seed used (--seed 3) while scenario.yaml
    kept the file's (0): the written scenario did not reproduce the study
    without --seed, as a run's does."""
    out = tmp_path / "s"
    args = ["sensitivity", str(scenario_file), "--range", "capacity.daily_cap=500:2000"]
    args += ["-n", "2", "--seed", "3", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    written = load_scenario(out / "scenario.yaml")
    recorded = json.loads((out / "sensitivity.json").read_text())
    assert written.seed == recorded["seed"] == 3
    assert written.sha256 == recorded["scenario_sha256"]


def test_each_change_carries_the_paired_interval_compare_would_give():
    """The 95% interval of each OAT change is `compare.paired_difference` on the
    two points' own replications (replication k against replication k); a field
    that moves nothing has [0, 0] even where the figure is random (common
    random numbers), and a deterministic change has its own value at both ends."""
    import numpy as np

    from migsim.experiments.compare import (
        BOOTSTRAP_RESAMPLES,
        bootstrap_indices,
        paired_difference,
    )
    from migsim.runner.runner import run

    rates = outcomes(success=0.8, stall=0.15, rollback=0.05)
    data = scenario(
        cohort(
            "c",
            3000,
            rates=rates,
            stall={
                "resolves_after_days": {"dist": "uniform", "low": 1, "high": 9},
                "then_success": 0.7,
            },
        ),
        cap=400,
        working_days=ALL_DAYS,
        horizon_days=80,
        closures=[date(2024, 5, 1)],
        name="noisy",
    )
    base = load_scenario(data)
    ranges = [
        parse_range(base, "cohorts.0.outcomes.success=0.75:0.85"),
        parse_range(base, NO_EFFECT_CLOSURE),
    ]
    figures = ["clearance_day_p50", "peak_failure_backlog_mean", "dumb_p90"]
    result = sensitivity(base, ranges, replications=30, seed=3, figures=figures)
    table = result.table.set_index(["field", "figure"])
    indices = bootstrap_indices(30, 3, BOOTSTRAP_RESAMPLES)
    low = run(base.with_overrides({"cohorts.0.outcomes.success": 0.75}), 30, seed=3)
    high = run(base.with_overrides({"cohorts.0.outcomes.success": 0.85}), 30, seed=3)
    for name in figures:
        figure, statistic = name.rsplit("_", 1)
        diff, ci = paired_difference(
            low.figure(figure), high.figure(figure), statistic, indices
        )
        row = table.loc[("cohorts.0.outcomes.success", name)]
        assert row["value_high"] - row["value_low"] == pytest.approx(diff)
        assert (row["change_ci95_low"], row["change_ci95_high"]) == (
            pytest.approx(ci[0]),
            pytest.approx(ci[1]),
        )
        still = table.loc[("calendar.closures.0", name)]
        assert (still["change_ci95_low"], still["change_ci95_high"]) == (0, 0)
    # the backlog's mean moves, and its interval says so (it excludes 0)
    backlog = table.loc[("cohorts.0.outcomes.success", "peak_failure_backlog_mean")]
    assert backlog["change_ci95_high"] < 0
    assert np.isfinite(table["change_ci95_low"]).all()


def test_a_deterministic_change_is_its_own_interval_and_the_table_prints_it(
    scenario_file,
):
    result = CliRunner().invoke(
        main,
        [
            "sensitivity",
            str(scenario_file),
            "--range",
            "capacity.daily_cap=500:2000",
            "--figure",
            "clearance_day_p50",
            "-n",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "change 95% CI" in result.output
    assert "[-15, -15]" in result.output  # day 19 at 500 a day, day 4 at 2,000


def test_the_tornado_hatches_only_moved_bars_whose_interval_holds_zero():
    from migsim.output.decision_plots import _within_noise

    rows = pd.DataFrame(
        {
            "swing": [3.0, 2.0, 0.0, 1.0],
            "change_ci95_low": [-5.0, 1.0, 0.0, float("nan")],
            "change_ci95_high": [1.0, 4.0, 0.0, float("nan")],
        }
    )
    assert _within_noise(rows).tolist() == [True, False, False, False]
    assert not _within_noise(rows.drop(columns=["change_ci95_low"])).any()


def test_the_table_and_its_intervals_do_not_depend_on_the_worker_count():
    """Same seed, same table (intervals included) with one process or two."""
    base = load_scenario(
        scenario(
            cohort("c", 2000, rates=outcomes(success=0.85, stall=0.1, rollback=0.05)),
            cap=300,
            working_days=ALL_DAYS,
            horizon_days=60,
            name="noisy",
        )
    )
    ranges = [parse_range(base, "capacity.daily_cap=200:400")]
    figures = ["clearance_day_p50", "peak_failure_backlog_p90"]
    one, two = (
        sensitivity(base, ranges, replications=12, seed=5, figures=figures, workers=j)
        for j in (1, 2)
    )
    pd.testing.assert_frame_equal(one.table, two.table)
    assert one.table["change_ci95_low"].notna().all()


def test_a_range_over_a_text_field_is_refused_in_one_line(scenario_file):
    """A text field's range said "not a number or date" twice."""
    args = ["sensitivity", str(scenario_file), "--range", "name=1:2", "-n", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "--range name: a text field ('all_success')" in result.output
    assert "Traceback" not in result.output


def test_sobol_gives_a_field_held_at_one_value_no_swing():
    """A range whose ends are equal holds its field still, so every point has
    it at its low and at its high. Its value_low and value_high were the means
    over the quarters of the token width SALib is given, which split the cap's
    points instead: a swing of 2.9 days for a field that never moved."""
    scenario = load_scenario(all_success())
    ranges = [
        parse_range(scenario, text)
        for text in ("capacity.daily_cap=500:2000", "cohorts.c.max_attempts=3:3")
    ]
    result = sensitivity(
        scenario,
        ranges,
        "sobol",
        replications=1,
        seed=0,
        samples=8,
        figures=["clearance_day_p50"],
    )
    table = result.table.set_index("field")
    held = table.loc["cohorts.c.max_attempts"]
    cap = table.loc["capacity.daily_cap"]
    assert held["swing"] == 0 and held["s1"] == 0 and held["st"] == 0
    assert held["value_low"] == held["value_high"]
    # every point's mean: the cap's low and high quarters lie either side of it
    assert cap["value_high"] < held["value_low"] < cap["value_low"]
