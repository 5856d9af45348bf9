"""A replication continued from a mid-programme state keeps the inputs it was
drawn with: its outcome rates, the dates it had not reached yet, its achieved
throughput level, ramp caps, programme delay and meters per installation are
those of the uninterrupted replication; only the day-to-day randomness is new."""

from __future__ import annotations

import math

import numpy as np
from conftest import day, load
from test_uncertainty import uncertain_scenario

import migsim
from migsim.sim.engine import run_replication


def ranged_scenario():
    """Every kind of input, a gate with an uncertain acceptance and a ramp cap."""
    data = uncertain_scenario(
        meters_per_installation=1.6,
        meters_per_installation_range={"dist": "uniform", "low": 1.4, "high": 1.9},
    )
    data["gates"] = [
        {
            "name": "go",
            "any_of": [
                {
                    "name": "fix",
                    "probability": 0.7,
                    "accepted_on": {
                        "dist": "slip",
                        "planned": day(25).isoformat(),
                        "median_days": 10,
                        "sigma": 0.8,
                        "shared": True,
                    },
                }
            ],
        }
    ]
    data["capacity"]["schedule"] = [
        {
            "name": "more",
            "from": "go",
            "daily_cap": 90,
            "daily_cap_range": {"dist": "triangular", "low": 70, "high": 140},
        }
    ]
    return load(data)


#: A part of the key of each kind of input `ranged_scenario` draws: outcome
#: rates, start dates, the achieved throughput level, a ramp cap, the
#: programme delay, meters per installation and a gate.
KINDS = (
    ".outcomes.",
    ".eligible_from",
    "capacity.achieved.mean",
    "capacity.schedule.",
    "programme_delay",
    "meters_per_installation",
    "gates.",
)


def _same_inputs(continued: dict, original: dict, offset: int) -> None:
    """The continued replication's draws are the original's (dates and gates on
    the later clock: ``offset`` days fewer). Every kind of input is among them:
    a kind the record lost for both would otherwise go unchecked."""
    keys = [k for k in original if not k.endswith(".installations")]
    assert [kind for kind in KINDS if not any(kind in k for k in keys)] == []
    assert set(continued) == set(keys)
    for key in keys:
        value = original[key]
        dated = key.startswith("gates.") or key.endswith(("eligible_from", "_on"))
        if dated and math.isfinite(value):
            value -= offset
        assert continued[key] == value, key


def test_a_continued_replication_keeps_the_inputs_it_was_drawn_with():
    sc = ranged_scenario()
    results = migsim.run(sc, replications=6, seed=4)
    cut = 30
    for k in (2, 5):
        state = results.state_on(day(cut), k)
        later = sc.starting_from(state)
        original = run_replication(sc, 4, k).inputs
        # every replication of the continuation is replication k's future
        for j in (0, k, 9):
            continued = run_replication(later, 4, j).inputs
            _same_inputs(continued, original, cut + 1)
        # ... under any seed of the continued run: the inputs are k's of seed 4
        _same_inputs(run_replication(later, 11, 0).inputs, original, cut + 1)


def test_the_continuation_redraws_only_the_day_to_day():
    sc = ranged_scenario()
    results = migsim.run(sc, replications=3, seed=4)
    later = sc.starting_from(results.state_on(day(20), 1))
    paths = [run_replication(later, 4, j).cohort_columns["migrated"] for j in (0, 1)]
    assert not np.array_equal(*paths)  # fresh day-to-day randomness
    forward = migsim.run(later, replications=8, seed=4)
    inputs = forward.inputs.drop(columns="replication")
    assert (inputs.nunique() == 1).all()  # one set of inputs: replication 1's


def test_a_state_says_whose_inputs_it_continues_and_passes_them_on():
    sc = ranged_scenario()
    results = migsim.run(sc, replications=3, seed=4)
    state = results.state_on(day(20), 2)
    assert state["inputs_from"] == {"seed": 4, "replication": 2}
    later = sc.starting_from(state)
    assert later.inputs_from.seed == 4 and later.inputs_from.replication == 2
    again = migsim.load_scenario(later.to_dict())
    assert again.inputs_from == later.inputs_from
    # a continuation of the continuation still continues replication 2 of seed 4
    second = migsim.run(later, replications=2, seed=0).state_on(day(40), 1)
    assert second["inputs_from"] == {"seed": 4, "replication": 2}
    original = run_replication(sc, 4, 2).inputs
    _same_inputs(
        run_replication(later.starting_from(second), 0, 0).inputs, original, 41
    )
    # a scenario that is no continuation dumps as before the field existed
    assert "inputs_from" not in sc.to_dict()
