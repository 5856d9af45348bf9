"""Comparison: paired differences, their intervals, what common random numbers buy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import tiny

import migsim
from migsim.common.errors import MigsimError
from migsim.experiments.compare import (
    bootstrap_indices,
    clearance_order,
    clearance_pairing,
    compare,
    compare_runs,
    paired_difference,
    pairing,
    pairing_words,
    rates_differ,
)
from migsim.results.results import FIGURES, STATISTICS

INF = math.inf


def test_clearance_order_by_hand():
    first = np.array([10, 12, 14, INF, INF])
    other = np.array([9, 12, 15, 20, INF])
    assert clearance_order(first, other) == {
        "p_clears_before_first": 0.4,  # 9 < 10, 20 < inf
        "p_clears_same_day": 0.2,  # 12 == 12
        "p_clears_after_first": 0.2,
        # both not cleared within the horizon: their order is unknown, not "same"
        "p_neither_clears": 0.2,
    }


def test_paired_difference_by_hand():
    first = np.array([10.0, 12.0, 14.0, 16.0])
    other = first + np.array([1.0, 3.0, 1.0, 3.0])
    indices = bootstrap_indices(4, 0, 500)
    diff, (low, high) = paired_difference(first, other, "mean", indices)
    assert diff == 2.0
    assert low < 2.0 < high
    from scipy import stats

    half = stats.t.ppf(0.975, 3) * np.std([1, 3, 1, 3], ddof=1) / 2
    assert (low, high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    # type-1 medians (2nd of 4): 12 and 15 (other is 11, 15, 15, 19) -> 3
    diff, (low, high) = paired_difference(first, other, "p50", indices)
    assert diff == 15.0 - 12.0 and low <= diff <= high
    # a mean with a non-cleared replication is undefined
    assert paired_difference(
        np.array([1.0, INF]), np.array([1.0, 2.0]), "mean", bootstrap_indices(2, 0, 10)
    ) == (None, None)


def _shifted(days: int, name: str = "later"):
    """The tiny scenario with every cohort eligible ``days`` later (a whole week)."""
    when = f"2020-01-{6 + days:02d}"
    return tiny(
        {
            "cohorts.active_a.eligible_from": when,
            "cohorts.dormant_b.eligible_from": when,
        },
        name=name,
    )


@pytest.fixture(scope="module")
def shifted_pair():
    return compare([tiny(), _shifted(14)], replications=8, seed=4)


def test_known_difference_is_covered(shifted_pair):
    """Starting two weeks later (same weekdays) shifts every replication by 14 days."""
    runs, comparison = shifted_pair
    assert np.array_equal(runs[1].clearance_days(), runs[0].clearance_days() + 14)
    entry = comparison["scenarios"]["later"]
    for stat in STATISTICS:
        item = entry["figures"]["clearance_day"][stat]
        assert item["diff"] == 14
        low, high = item["ci95"]
        assert low <= 14 <= high
    assert entry["p_clears_after_first"] == 1.0
    assert entry["p_clears_before_first"] == 0.0


def test_json_shape_is_pinned(shifted_pair):
    _, comparison = shifted_pair
    assert comparison["first"] == "tiny" and comparison["common_random_numbers"]
    assert set(comparison["scenarios"]) == {"tiny", "later"}
    for entry in comparison["scenarios"].values():
        assert set(entry["figures"]) == set(FIGURES)
        for stats in entry["figures"].values():
            assert set(stats) == set(STATISTICS)
            for item in stats.values():
                assert set(item) == {"value", "diff", "ci95"}
        for key in (
            "p_clears_before_first",
            "p_clears_same_day",
            "p_clears_after_first",
        ):
            assert 0.0 <= entry[key] <= 1.0
    base = comparison["scenarios"]["tiny"]
    assert base["p_clears_same_day"] == 1.0
    assert base["figures"]["clearance_day"]["p50"]["diff"] == 0


def test_the_comparison_carries_version_and_each_resolved_scenario(tiny_yaml):
    """comparison.json, and the JSON on stdout without -o, say what was run: the
    migsim version, seed and replication count, and each scenario as resolved
    (a --set override in it), so the numbers can be traced and run again."""
    import json

    from click.testing import CliRunner

    from migsim.cli.main import main

    paths = [str(tiny_yaml()), str(tiny_yaml("faster"))]
    args = ["compare", *paths, "-n", "3", "--seed", "5", "--format", "json", "-q"]
    args += ["--set", "capacity.daily_cap=150"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.stdout)
    assert comparison["migsim_version"] == migsim.__version__
    assert (comparison["seed"], comparison["replications"]) == (5, 3)
    for name in ("tiny", "faster"):
        entry = comparison["scenarios"][name]
        resolved = migsim.load_scenario(entry["scenario"])
        assert resolved.capacity.daily_cap == 150
        assert resolved.seed == entry["seed"] == 5
        assert resolved.sha256 == entry["scenario_sha256"]


def test_common_random_numbers_narrow_the_interval(shifted_pair):
    """Same seed: the paired CI of a change is narrower than with independent seeds."""
    _, crn = shifted_pair
    _, independent = compare(
        [tiny(), _shifted(14)], replications=8, seed=4, common_random_numbers=False
    )
    assert not independent["common_random_numbers"]

    def width(comparison, stat):
        low, high = comparison["scenarios"]["later"]["figures"]["clearance_day"][stat][
            "ci95"
        ]
        return high - low

    for stat in ("mean", "p50"):
        assert width(crn, stat) < width(independent, stat)
    assert width(independent, "mean") > 0


def test_bootstrap_is_seeded(shifted_pair):
    runs, comparison = shifted_pair
    again = compare_runs(runs)
    assert again == comparison


def test_names_must_differ():
    with pytest.raises(MigsimError, match="names must differ"):
        compare([tiny(), tiny()], replications=2, seed=0)


def test_replication_counts_must_agree_and_the_error_says_which():
    import migsim

    runs = [
        migsim.run(tiny(), replications=2, seed=0),
        migsim.run(_shifted(7), replications=3, seed=0),
    ]
    with pytest.raises(MigsimError) as caught:
        compare_runs(runs)
    message = str(caught.value)
    assert "same number of replications" in message
    assert "tiny 2" in message and "later 3" in message and "same -n" in message


def test_runs_of_other_replications_are_not_paired_as_common_random_numbers():
    """Pairs are replication k with replication k: runs of one seed and count but
    of other replications (a later batch) share no streams, so comparing them as
    common random numbers would be false; they are refused, saying which each
    holds."""
    runs = [
        migsim.run(tiny(), replications=2, seed=0),
        migsim.run(_shifted(7), replications=2, seed=0, first_replication=2),
    ]
    with pytest.raises(MigsimError) as caught:
        compare_runs(runs)
    message = str(caught.value)
    assert "same replications" in message
    assert "tiny 0-1" in message and "later 2-3" in message


def test_pairing_by_hand():
    """Var(other - first) against Var(first) + Var(other), and the correlation."""
    first = np.array([10.0, 12.0, 14.0, 16.0])
    shifted = pairing(first, first + 3.0)  # perfectly paired: no variance left
    assert shifted == {"variance_ratio": 0, "correlation": 1}
    other = np.array([16.0, 14.0, 12.0, 10.0])  # anti-paired: twice the variance
    assert pairing(first, other) == {"variance_ratio": 2, "correlation": -1}
    assert pairing(np.array([1.0, INF]), np.array([1.0, 2.0]))["variance_ratio"] is None
    assert pairing(np.ones(4), np.ones(4))["variance_ratio"] is None


def test_comparison_reports_what_pairing_bought(shifted_pair):
    """Every scenario entry has a pairing block per figure; common random
    numbers give a far smaller ratio than independent seeds."""
    _, crn = shifted_pair
    entry = crn["scenarios"]["later"]
    assert set(entry["pairing"]) == set(FIGURES)
    assert entry["pairing"]["clearance_day"]["variance_ratio"] == 0  # a pure shift
    _, independent = compare(
        [tiny(), _shifted(14)], replications=8, seed=4, common_random_numbers=False
    )
    ratio = independent["scenarios"]["later"]["pairing"]["clearance_day"]
    assert ratio["variance_ratio"] > 0.2


# --------------------------------------------------------------------------- CLI
def test_compare_writes_csv_and_xlsx_prints_own_dates_and_takes_by(tmp_path):
    """compare -o: comparison.csv and .xlsx beside comparison.json; the table shows
    each scenario's own dates and P(cleared by); no "-0" anywhere."""
    import json
    import re

    import pandas as pd
    import yaml
    from click.testing import CliRunner

    from migsim.cli.main import main

    paths = []
    for sc in (tiny(), tiny({"capacity.daily_cap": 150}, name="faster")):
        path = tmp_path / f"{sc.name}.yaml"
        path.write_text(yaml.safe_dump(sc.to_dict(), sort_keys=False))
        paths.append(str(path))
    out = tmp_path / "cmp"
    args = ["compare", *paths, "-n", "8", "--seed", "2", "--by", "2020-02-14"]
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert not re.search(r"(?<![\w.])[-+]0(?![\d.,])", text), text  # never -0 or +0
    comparison = json.loads((out / "comparison.json").read_text())
    summaries = {
        n: json.loads((out / n / "summary.json").read_text())
        for n in ("tiny", "faster")
    }
    # each scenario's own dates beside the differences
    head = text[: text.index("faster minus tiny")]
    for name, summary in summaries.items():
        line = next(ln for ln in head.splitlines() if ln.strip().startswith(name))
        p50 = pd.Timestamp(summary["clearance_date"]["p50"])
        assert f"{p50.day} {p50:%b %Y}" in line
    by = comparison["p_clear_by"]["2020-02-14"]
    assert by["tiny"]["p"] == summaries["tiny"]["p_clear_by"]["2020-02-14"]
    assert "diff" in by["faster"] and "by 2020-02-14" in head
    # the CSV: every figure and statistic, its value beside the first's, the pair
    table = pd.read_csv(out / "comparison.csv")
    assert set(table["scenario"]) == {"faster"}
    assert len(table) == len(FIGURES) * len(STATISTICS)
    row = table[(table["figure"] == "clearance_day") & (table["statistic"] == "p50")]
    item = comparison["scenarios"]["faster"]["figures"]["clearance_day"]["p50"]
    assert row["diff"].item() == item["diff"]
    assert [row["ci95_low"].item(), row["ci95_high"].item()] == item["ci95"]
    assert row["date"].item() == summaries["faster"]["clearance_date"]["p50"]
    assert row["first_date"].item() == summaries["tiny"]["clearance_date"]["p50"]
    assert set(table["clear"]) <= {"yes", "no", "undefined"}
    sheets = pd.read_excel(out / "comparison.xlsx", sheet_name=None)
    assert list(sheets) == ["scenarios", "differences", "run"]
    run = dict(zip(sheets["run"]["field"], sheets["run"]["value"], strict=True))
    assert run["migsim_version"] == comparison["migsim_version"] == migsim.__version__
    assert (int(run["seed"]), int(run["replications"])) == (2, 8)
    assert run["command"] == comparison["command"]
    for name, entry in comparison["scenarios"].items():
        assert run[f"scenario_sha256 {name}"] == entry["scenario_sha256"]
    assert sheets["scenarios"]["scenario"].tolist() == ["tiny", "faster"]
    assert len(sheets["differences"]) == len(table)
    # the runs keep every file they had, and gain the spreadsheet exports
    for name in ("summary.json", "backlog.png", "bands.csv", "weekly.csv"):
        assert (out / "faster" / name).is_file(), name


def test_signed_never_prints_minus_zero():
    from migsim.cli.text import signed

    assert [signed(v) for v in (-0.04, 0.0, -0.0, 0.04, -1.0, 2.5, -12.0)] == [
        "0",
        "0",
        "0",
        "0",
        "-1",
        "+2.5",
        "-12",
    ]


def test_scenarios_of_other_sizes_are_said_to_be_so(shifted_pair):
    """Differences in counts between a fleet of 1,200 and one of 1,500 are
    partly their sizes: the text and the report's headline say so, and only
    then."""
    from migsim.cli.text import comparison_text
    from migsim.output.report import render_report

    runs, comparison = shifted_pair
    assert {e["installations"] for e in comparison["scenarios"].values()} == {1500}
    assert "different numbers" not in comparison_text(comparison)
    assert "not only its plan" not in render_report(runs, charts=False)
    smaller = tiny({"cohorts.active_a.installations": 300}, name="smaller")
    runs, other = compare([tiny(), smaller], replications=4, seed=4)
    assert other["scenarios"]["smaller"]["installations"] == 1200
    assert (
        "The scenarios migrate different numbers of installations (tiny 1,500, "
        "smaller 1,200): their differences in counts are partly their sizes"
    ) in comparison_text(other)
    page = render_report(runs, charts=False)
    assert (
        "<b>smaller</b> (a backlog of 1,200 installations, not 1,500: its counts "
        "differ with its size, not only its plan) at "
    ) in page


def test_a_later_start_date_is_a_later_clearance_date():
    """Scenarios starting on different dates are compared on dates: the same
    run started two weeks later (same weekdays, no holidays) clears every
    replication 14 days later, though on the same day number of its own."""
    later = tiny(
        {
            "start_date": "2020-01-20",
            "cohorts.active_a.eligible_from": "2020-01-20",
            "cohorts.dormant_b.eligible_from": "2020-01-20",
        },
        name="later_start",
    )
    runs, comparison = compare([tiny(), later], replications=6, seed=4)
    assert np.array_equal(runs[1].clearance_days(), runs[0].clearance_days())
    entry = comparison["scenarios"]["later_start"]
    for stat in STATISTICS:
        item = entry["figures"]["clearance_day"][stat]
        assert item["diff"] == 14, stat
        assert item["ci95"] == [14, 14], stat
        # its value stays on its own day numbers, as its own summary has it
        assert item["value"] == runs[1].summary["figures"]["clearance_day"][stat]
    assert entry["p_clears_after_first"] == 1.0
    assert entry["p_clears_same_day"] == 0.0


def test_pairs_that_neither_clear_are_not_said_to_clear_the_same_day():
    """A horizon too short for either scenario: no pair's order is known. The
    text, the report's table and the figures say 'neither', never 'same day'."""
    from migsim.cli.text import comparison_text
    from migsim.output.report_tables import comparison_section

    short = tiny(horizon_days=3)
    runs, comparison = compare(
        [short, tiny({"capacity.daily_cap": 300}, name="more", horizon_days=3)],
        replications=4,
        seed=4,
    )
    entry = comparison["scenarios"]["more"]
    assert entry["p_neither_clears"] == 1.0 and entry["p_clears_same_day"] == 0.0
    assert "same day: 0%, after: 0%, neither within its horizon: 100%" in (
        comparison_text(comparison)
    )
    assert "neither clears within its horizon" in comparison_section(
        runs, comparison, 1.0, "installations"
    )


def test_the_order_of_a_pair_is_known_only_within_both_horizons():
    """A scenario starting two weeks later ends two weeks later: it clears on
    its own day 11 (after the first's horizon has ended), while the first did
    not clear within its 15 days. It was 'before the first' in every pair; the
    first might have cleared after its end, unseen: neither is known."""
    from datetime import date

    from conftest import cohort, load, scenario

    def pair(horizon: int) -> dict:
        base = load(
            scenario(
                cohort("a", 14000),
                cap=1000,
                horizon_days=horizon,
                start_date=date(2020, 1, 6),
                name="base",
            )
        )
        later = base.with_overrides(
            {"start_date": "2020-01-20", "capacity.daily_cap": 1500, "name": "later"}
        )
        runs = [migsim.run(s, replications=4, seed=1) for s in (base, later)]
        return compare_runs(runs)["scenarios"]["later"]

    short, long = pair(15), pair(60)
    assert short["p_neither_clears"] == 1.0 and short["p_clears_before_first"] == 0
    assert short["figures"]["clearance_day"]["p50"]["diff"] is None  # not known
    assert long["p_clears_after_first"] == 1.0  # 20 Jan + 11 days after 6 Jan + 17
    assert long["figures"]["clearance_day"]["p50"]["diff"] == 8


@pytest.mark.parametrize("statistic", ["mean", "p50"])
def test_paired_intervals_cover_a_known_change(statistic):
    """Calibration on a synthetic truth: pairs (x, 0.8 x + 0.6 e + 0.5) of
    standard normals x, e have a change of exactly 0.5 in the mean and in the
    median; the 95% interval, on 60 pairs, holds it in at least 90% of 200
    trials (the type-1 quantile's bootstrap is conservative: about 98%)."""
    rng = np.random.default_rng(11)
    held = 0
    for trial in range(200):
        x = rng.normal(size=60)
        y = 0.8 * x + 0.6 * rng.normal(size=60) + 0.5
        _, (low, high) = paired_difference(
            x, y, statistic, bootstrap_indices(60, trial, 1000)
        )
        held += low <= 0.5 <= high
    assert held >= 180


def test_a_difference_of_clearance_chances_stays_within_minus_one_to_one():
    """With few pairs, the t interval of P(cleared by) differences reached
    past what a difference of two shares can be: -1.42 to 0.42 (printed as
    -141.9 points) with 4 pairs of which two differed."""
    from datetime import date

    from hostile import ACTUALS_SCENARIO

    from migsim.experiments.compare import p_clear_by_pairs

    later = {**ACTUALS_SCENARIO, "name": "later", "start_date": "2024-01-08"}
    runs = [migsim.run(s, replications=4, seed=0) for s in (ACTUALS_SCENARIO, later)]
    entry = p_clear_by_pairs(runs, [date(2024, 1, 15)])["2024-01-15"]["later"]
    assert entry["diff"] == -0.5
    assert entry["ci95"] == [-1.0, pytest.approx(0.4187, abs=1e-4)]


# ------------------------------------------------------------ weak pairs' order
def test_clearance_pairing_says_when_the_order_is_stream_noise_by_hand():
    """weak: a correlation below 0.8 over the pairs where both clear, or none
    measurable, or rates that differ; never when one day is fixed, nor when
    no pair is ordered against the others."""
    first = np.array([10.0, 12.0, 14.0, 16.0, INF])
    close = clearance_pairing(first, first + np.array([1.0, 1.0, 2.0, 1.0, 0.0]))
    assert close["correlation"] is None  # a pair that did not clear ...
    assert close["cleared_correlation"] == pytest.approx(0.98, abs=0.01)  # ... here
    assert close["weak"] is False and close["rates_differ"] is False
    loose = clearance_pairing(first, np.array([14.0, 10.0, 16.0, 12.0, INF]))
    assert loose["cleared_correlation"] == 0 and loose["weak"]
    assert clearance_pairing(first, first - 10.0, rates_differ=False)["weak"] is False
    mixed = first + np.array([1.0, -0.5, 1.0, -0.5, 0.0])  # correlation 0.98
    assert clearance_pairing(first, mixed, rates_differ=True)["weak"] is True
    assert clearance_pairing(first, first - 2, rates_differ=True)["weak"] is False
    unmeasured = clearance_pairing(np.array([10, INF, 12]), np.array([9, 12, INF]))
    assert unmeasured["cleared_correlation"] is None and unmeasured["weak"] is True
    # every pair earlier: nothing to mislead, whatever the correlation
    assert clearance_pairing(first, first - np.array([9, 1, 12, 2, 0]))["weak"] is False
    fixed = clearance_pairing(np.full(4, 20.0), np.array([18.0, 19.0, 21.0, 22.0]))
    assert fixed["cleared_correlation"] is None and fixed["weak"] is False


@pytest.fixture(scope="module")
def rate_and_cap():
    """The tiny scenario against a higher cap (pairs closely) and a higher
    dormant success rate (pairs weakly: correlation 0.77 at 12 pairs)."""
    return compare(
        [
            tiny(),
            tiny({"capacity.daily_cap": 110}, name="cap"),
            tiny({"cohorts.dormant_b.outcomes.success": 0.92}, name="rate"),
        ],
        replications=12,
        seed=4,
    )


def test_a_rate_change_is_weak_pairing_a_cap_change_is_not(rate_and_cap):
    _, comparison = rate_and_cap
    cap = comparison["scenarios"]["cap"]["pairing"]["clearance_day"]
    rate = comparison["scenarios"]["rate"]["pairing"]["clearance_day"]
    for block in (cap, rate):  # the keys it had, and the verdict beside them
        assert set(block) == {
            "variance_ratio",
            "correlation",
            "cleared_correlation",
            "rates_differ",
            "weak",
        }
    assert cap["weak"] is False and cap["cleared_correlation"] > 0.95
    assert rate["weak"] is True and rate["rates_differ"] is True
    assert rate["cleared_correlation"] < 0.8
    assert comparison["scenarios"]["tiny"]["pairing"]["clearance_day"]["weak"] is False
    assert not rates_differ(tiny(), tiny({"capacity.daily_cap": 110}))
    assert rates_differ(tiny(), tiny({"cohorts.active_a.stall.then_success": 0.8}))


def test_rates_differ_reads_the_laws_the_engine_draws_from():
    """A hard-case rate change was not a rate change (no note beside an order
    its streams pair as weakly as any), and one Dirichlet written as alphas
    and as a prior and its evidence was one (a note over nothing changed)."""
    hard = {"share": 0.1, "outcomes": tiny().cohorts[1].outcomes.model_dump()}
    worse = {**hard["outcomes"], "success": 0.8, "stall": 0.16}
    assert rates_differ(
        tiny({"cohorts.dormant_b.hard": hard}),
        tiny({"cohorts.dormant_b.hard": {**hard, "outcomes": worse}}),
    )
    assert rates_differ(
        tiny({"cohorts.dormant_b.hard": hard}),
        tiny({"cohorts.dormant_b.hard": {**hard, "share": 0.2}}),
    )
    alpha = {"success": 92, "stall": 4, "rollback": 2, "fix_forward": 1, "dumb": 1}
    prior = {"success": 2, "stall": 1, "rollback": 1, "fix_forward": 1, "dumb": 0}
    counts = {"success": 90, "stall": 3, "rollback": 1, "fix_forward": 0, "dumb": 1}
    given = {"dist": "dirichlet", "alpha": alpha}
    summed = {
        "dist": "dirichlet",
        "prior": prior,
        "evidence": {"attempts": 95, **counts},
    }
    assert not rates_differ(
        tiny({"cohorts.dormant_b.outcomes": given}),
        tiny({"cohorts.dormant_b.outcomes": summed}),
    )
    assert rates_differ(
        tiny({"cohorts.dormant_b.outcomes": given}),
        tiny({"cohorts.dormant_b.outcomes": {**given, "alpha": {**alpha, "dumb": 2}}}),
    )


def test_the_order_is_flagged_only_where_the_pairs_are_weak(rate_and_cap):
    """The CLI text, the report's comparison table and the explorer's panel
    keep the order shares and add the note beside them for the rate change
    only; the explorer says what pairing bought, as the CLI does."""
    from migsim.app.view import _comparison
    from migsim.cli.text import comparison_text
    from migsim.output.report_tables import comparison_section

    runs, comparison = rate_and_cap
    note = "largely stream noise, not the change"
    text = comparison_text(comparison)
    cap_part, rate_part = text.split("rate minus tiny")
    assert "clears before tiny" in cap_part and note not in cap_part
    assert "differ in outcome rates" in " ".join(rate_part.split())
    assert note in " ".join(rate_part.split())
    assert "(clearance-day correlation 0.77)" in " ".join(rate_part.split())
    assert "clears before tiny" in rate_part and "pairing:" in rate_part
    section = comparison_section(runs, comparison, 1.0, "installations")
    assert section.count(note) == 1 and "<b>rate</b>: These scenarios" in section
    assert "<b>cap</b>" not in section
    assert "clears before tiny" in section  # the shares stay shown
    alone = comparison_section(runs[:2], comparison, 1.0, "installations")
    assert note not in alone
    weak, strong = _comparison(runs[2], comparison), _comparison(runs[1], comparison)
    assert note in weak["order_note"] and strong["order_note"] == ""
    assert "about 41x fewer replications" in strong["pairing"]
    assert weak["order"]["p_clears_after_first"] == "8.3%"  # shown all the same


def test_pairing_words_claim_a_saving_only_where_pairing_bought_one():
    """A variance ratio near 1 printed "about 1x fewer replications": no
    saving is claimed below 1.5x; a real one is given as a rounded factor."""
    strong = pairing_words({"variance_ratio": 0.1, "correlation": 0.9})
    assert "about 10x fewer replications" in strong
    for ratio in (0.7, 0.95, 1.2):
        said = pairing_words({"variance_ratio": ratio, "correlation": 0.1})
        assert "fewer" not in said and f"{ratio:.2f}x as much" in said
