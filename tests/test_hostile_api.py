"""Hostile Python-API calls: arguments of ``migsim.run`` (and of what runs
through it: compare, forecast, backtest, the calibration check) that no run can
use. Each is a TypeError or ValueError naming the argument, raised before
anything runs, never a silently different run; each test here failed before
its fix."""

from __future__ import annotations

import numpy as np
import pytest
from hostile import ACTUALS_SCENARIO

import migsim
import migsim.runner.runner as runner


@pytest.fixture
def stopped_before_running(monkeypatch):
    """A run that gets past its argument checks stops at once (the old code
    allocated 10**10 replication numbers there, or ran a different seed)."""

    def reached(*args, **kwargs):
        raise AssertionError("the run went ahead")

    monkeypatch.setattr(runner, "check_memory", reached)


BAD_ARGUMENTS = {
    # ran seed 2 without a word
    "a fractional seed": (
        {"seed": 2.5},
        ValueError,
        "seed must be a whole number, not 2.5",
    ),
    # ran seed 1
    "a seed of True": ({"seed": True}, TypeError, "seed must be a whole number"),
    # ran one replication
    "True replications": (
        {"replications": True},
        TypeError,
        "replications must be a whole number, not True",
    ),
    # listed 10**10 replication numbers: MemoryError, or the machine's memory
    "10**10 replications": (
        {"replications": 10**10},
        ValueError,
        "replications must be 1 to 1,000,000, not 10,000,000,000",
    ),
    "fractional replications": (
        {"replications": 2.5},
        ValueError,
        "replications must be a whole number, not 2.5",
    ),
    # '<' not supported between instances of 'str' and 'int'
    "replications as text": (
        {"replications": "2"},
        TypeError,
        "replications must be a whole number, not '2'",
    ),
    # ran replication -1: its run folder was then refused by migsim itself
    "a negative first replication": (
        {"first_replication": -1},
        ValueError,
        "first_replication must be 0 to 9,223,372,036,854,775,806, not -1",
    ),
    # OverflowError deep in the daily table
    "a first replication past int64": (
        {"first_replication": 2**64},
        ValueError,
        "first_replication must be 0 to",
    ),
    # AssertionError: nothing to join
    "a negative batch size": (
        {"batch_size": -1},
        ValueError,
        "batch_size must be at least 1, not -1",
    ),
    "a fractional worker count": (
        {"workers": 2.5},
        ValueError,
        "workers must be a whole number, not 2.5",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_run_refuses_arguments_no_run_can_use(stopped_before_running, case):
    given, kind, message = BAD_ARGUMENTS[case]
    arguments = {"replications": 2, "seed": 0, **given}
    with pytest.raises(kind) as info:
        migsim.run(ACTUALS_SCENARIO, **arguments)
    assert str(info.value).startswith(message)


def test_run_takes_whole_numbers_of_any_numeric_type():
    """numpy integers and whole floats are the numbers they hold, as scenario
    fields take them: the same run as plain ints."""
    plain = migsim.run(ACTUALS_SCENARIO, replications=3, seed=5, first_replication=1)
    other = migsim.run(
        ACTUALS_SCENARIO,
        replications=np.int64(3),
        seed=5.0,
        first_replication=np.uint8(1),
        batch_size=np.int32(2),
    )
    assert other.seed == plain.seed == 5
    assert list(other.replication_ids) == list(plain.replication_ids) == [1, 2, 3]
    assert np.array_equal(
        other.clearance_days(), plain.clearance_days(), equal_nan=True
    )
