"""Precision loop: batches continue the numbering, stop at the first batch on target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import tiny

import migsim
from migsim.results.results import Results
from migsim.runner import precision as precision_module
from migsim.runner.precision import check, run_to_precision


def _without_timing(summary):
    return {k: v for k, v in summary.items() if k not in ("timing", "precision")}


def test_combined_batches_equal_one_run():
    sc = tiny()
    parts = [migsim.run(sc, 4, seed=5), migsim.run(sc, 3, seed=5, first_replication=4)]
    combined = Results.combine(parts)
    whole = migsim.run(sc, 7, seed=5)
    assert _without_timing(combined.summary) == _without_timing(whole.summary)
    pd.testing.assert_frame_equal(combined.bands("remaining"), whole.bands("remaining"))
    assert combined.timing["batches"] == 2


def test_combine_refuses_overlap_and_mismatch():
    sc = tiny()
    a = migsim.run(sc, 2, seed=5)
    with pytest.raises(ValueError, match="share"):
        Results.combine([a, migsim.run(sc, 2, seed=5, first_replication=1)])
    with pytest.raises(ValueError, match="one scenario and seed"):
        Results.combine([a, migsim.run(sc, 2, seed=6, first_replication=2)])


def test_check_switches_target_when_some_do_not_clear():
    assert check(np.array([10.0, 12.0, 14.0]), 5.0, 0.05).target == "mean_clearance_day"
    c = check(np.array([10.0, np.inf, 14.0]), 5.0, 0.05)
    assert c.target == "cleared_share" and c.goal == 0.05 and not c.met


def test_stops_at_the_first_batch_meeting_the_target():
    sc = tiny()
    results = run_to_precision(sc, 2.5, batch=4, seed=3, max_replications=40)
    info = results.summary["precision"]
    batches = info["batches"]
    assert info["met"] and info["target"] == "mean_clearance_day"
    assert [b["met"] for b in batches] == [False] * (len(batches) - 1) + [True]
    assert all(b["half_width"] is None or b["half_width"] > 2.5 for b in batches[:-1])
    assert batches[-1]["half_width"] <= 2.5
    assert info["replications"] == results.n_replications == 4 * len(batches)
    # the result is exactly one run of the final count
    whole = migsim.run(sc, results.n_replications, seed=3)
    assert _without_timing(results.summary) == _without_timing(whole.summary)


def test_stops_at_the_first_batch_with_a_scripted_sequence(monkeypatch):
    """Whatever the data, the loop stops right after the first batch that meets it."""
    widths = iter([9.0, 4.0, 0.9, 0.5])
    real = precision_module.check

    def scripted(days, goal, share):
        found = real(days, goal, share)
        return precision_module.Check(found.target, next(widths), goal, len(days))

    monkeypatch.setattr(precision_module, "check", scripted)
    results = run_to_precision(tiny(), 1.0, batch=2, seed=0, max_replications=20)
    assert results.n_replications == 6
    assert [b["met"] for b in results.summary["precision"]["batches"]] == [
        False,
        False,
        True,
    ]


def test_stops_at_the_maximum_and_says_the_target_was_not_met():
    results = run_to_precision(tiny(), 0.001, batch=3, seed=1, max_replications=7)
    info = results.summary["precision"]
    assert not info["met"] and results.n_replications == 7
    assert [b["replications"] for b in info["batches"]] == [3, 6, 7]


def test_targets_the_cleared_share_when_some_do_not_clear():
    short = tiny(horizon_days=30)  # too short for most replications to clear
    results = run_to_precision(
        short, 1.0, batch=5, seed=0, max_replications=10, share=0.5
    )
    info = results.summary["precision"]
    assert info["target"] == "cleared_share"
    assert not np.isfinite(results.clearance_days()).all()


def test_the_run_table_and_the_report_name_the_target_alike():
    from migsim.cli.text import _uncertainty_lines
    from migsim.runner.precision import target_words

    for target, words in (
        ("mean_clearance_day", "on the mean clearance day: met"),
        ("cleared_share", "on P(cleared by the horizon end), as some replications"),
    ):
        precision = {
            "target": target,
            "goal": {"mean_clearance_day": 1.0, "cleared_share": 0.02},
            "met": True,
            "replications": 40,
            "half_width": 0.5,
        }
        line = _uncertainty_lines({"precision": precision})[-1]
        assert words in line and target_words(target) in line
