"""Hostile Python-API calls: arguments of ``migsim.run`` (and of what runs
through it: compare, forecast, backtest, the calibration check) that no run can
use. Each is a TypeError or ValueError naming the argument, raised before
anything runs, never a silently different run; each test here failed before
its fix."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from conftest import SCENARIOS
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


@pytest.fixture
def tiny_actuals(tmp_path):
    from hostile import HEADER

    from migsim.evidence.actuals import read_actuals
    from migsim.model.scenario import load_scenario

    scenario = load_scenario(ACTUALS_SCENARIO)
    path = tmp_path / "actuals.csv"
    path.write_text(
        f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n2024-01-02,a,100,80,10,10,0,0\n"
    )
    return scenario, read_actuals(path, scenario)


def _forecast(scenario, actuals, seed):
    from migsim.evidence.forecast import forecast_as_of

    forecast_as_of(scenario, actuals, date(2024, 1, 2), replications=2, seed=seed)


def _backtest(scenario, actuals, seed):
    from migsim.evidence.backtest import backtest

    backtest(scenario, actuals, [date(2024, 1, 1)], replications=2, seed=seed)


def _sensitivity(scenario, actuals, seed):
    from migsim.experiments.sensitivity import parse_range, sensitivity

    ranges = [parse_range(scenario, "capacity.daily_cap=50:150")]
    sensitivity(scenario, ranges, replications=2, seed=seed)


@pytest.mark.parametrize("entry", [_forecast, _backtest, _sensitivity])
@pytest.mark.parametrize("seed", [2.5, True])
def test_every_entry_that_runs_checks_its_seed_as_run_does(
    stopped_before_running, monkeypatch, tiny_actuals, entry, seed
):
    """Each took int(seed) before handing it to the run: 2.5 ran seed 2, True
    seed 1, without a word."""
    import migsim.experiments.study as study

    def reached(*args, **kwargs):
        raise AssertionError("the study went ahead")

    monkeypatch.setattr(study, "executor", reached)
    with pytest.raises((TypeError, ValueError)) as info:
        entry(*tiny_actuals, seed)
    assert str(info.value) == f"seed must be a whole number, not {seed!r}"


def test_decide_checks_its_seed_as_run_does(monkeypatch):
    """decide wrote int(seed) into its definition: 2.5 decided with seed 2."""
    import migsim.experiments.study as study
    from migsim.experiments.decide import decide

    def reached(*args, **kwargs):
        raise AssertionError("the study went ahead")

    monkeypatch.setattr(study, "executor", reached)
    question = SCENARIOS / "questions" / "opsg_ramp_basis.yaml"
    with pytest.raises(ValueError, match=r"^seed must be a whole number, not 2\.5$"):
        decide(question, replications=2, seed=2.5)


def _calibrate_as_of(scenario, actuals, as_of):
    from migsim.evidence.calibrate import calibrate

    calibrate(scenario, actuals, as_of=as_of)


def _forecast_as_of(scenario, actuals, as_of):
    from migsim.evidence.forecast import forecast_as_of

    forecast_as_of(scenario, actuals, as_of, replications=2, seed=0)


def _backtest_as_of(scenario, actuals, as_of):
    from migsim.evidence.backtest import backtest

    backtest(scenario, actuals, [as_of], replications=2, seed=0)


NOT_DATES = {
    # '<=' not supported between instances of 'datetime.date' and 'str'
    "text": ("2024-01-02", "'2024-01-02'"),
    # Cannot compare Timestamp with datetime.date (from pandas)
    "a pandas Timestamp": (
        pd.Timestamp("2024-01-02"),
        "Timestamp('2024-01-02 00:00:00')",
    ),
    # can't compare datetime.datetime to datetime.date
    "a datetime": (datetime(2024, 1, 2, 12), "datetime.datetime(2024, 1, 2, 12, 0)"),
    # AttributeError: 'numpy.datetime64' object has no attribute 'isoformat'
    "a numpy datetime64": (np.datetime64("2024-01-02"), "np.datetime64('2024-01-02')"),
}


@pytest.mark.parametrize("entry", [_calibrate_as_of, _forecast_as_of, _backtest_as_of])
@pytest.mark.parametrize("case", list(NOT_DATES))
def test_an_as_of_that_is_not_a_date_is_a_type_error(
    stopped_before_running, tiny_actuals, entry, case
):
    value, shown = NOT_DATES[case]
    with pytest.raises(TypeError) as info:
        entry(*tiny_actuals, value)
    assert str(info.value) == (
        f"as_of must be a datetime.date such as date(2024, 1, 31), not {shown}"
    )


def test_a_backtest_s_as_of_is_a_list_of_dates(stopped_before_running, tiny_actuals):
    """One date for the list: "'datetime.date' object is not iterable"."""
    from migsim.evidence.backtest import backtest

    with pytest.raises(TypeError) as info:
        backtest(*tiny_actuals, date(2024, 1, 1), replications=2, seed=0)
    assert str(info.value) == (
        "as_of is a list of dates: [datetime.date(2024, 1, 1)], not "
        "datetime.date(2024, 1, 1)"
    )


BAD_PRIOR_STRENGTHS = {
    # alpha: Input should be a valid number (fields the caller never gave)
    "infinity": (float("inf"), ValueError, "above 0 and at most 10,000,000,000"),
    # alpha: 80,000,000,402 is outside the limit
    "1e11": (1e11, ValueError, "above 0 and at most 10,000,000,000"),
    # a prior worth one attempt
    "True": (True, TypeError, "a number, not True"),
    # '>' not supported between instances of 'str' and 'int'
    "text": ("100", TypeError, "a number, not '100'"),
}


@pytest.mark.parametrize("case", list(BAD_PRIOR_STRENGTHS))
def test_calibrate_names_a_prior_strength_no_prior_can_have(tiny_actuals, case):
    from migsim.evidence.calibrate import calibrate

    value, kind, words = BAD_PRIOR_STRENGTHS[case]
    with pytest.raises(kind) as info:
        calibrate(*tiny_actuals, prior_strength=value)
    assert str(info.value).startswith(f"prior_strength must be {words}")


@pytest.mark.parametrize(
    ("source", "overrides", "message"),
    [
        # expected str, bytes or os.PathLike object, not NoneType (pathlib)
        (None, None, "a scenario is a path, a mapping of its fields or a "
         "Scenario, not NoneType"),
        (5, None, "a scenario is a path, a mapping of its fields or a Scenario, "
         "not int"),
        # 'tuple' object has no attribute 'rpartition'
        (ACTUALS_SCENARIO, [("capacity.daily_cap", 50)], "overrides must be a "
         "mapping of dotted fields to values, such as {'capacity.daily_cap': "
         "5000}, not list"),
    ],
)  # fmt: skip
def test_load_scenario_says_what_it_takes(source, overrides, message):
    with pytest.raises(TypeError) as info:
        migsim.load_scenario(source, overrides)
    assert str(info.value) == message


@pytest.mark.parametrize("given", ["a path", "a dict"])
def test_read_actuals_takes_a_scenario_as_calibrate_does(tmp_path, given):
    """calibrate and forecast_as_of take a path or a dict; read_actuals failed
    on "'str' object has no attribute 'start_date'" once it had read the
    whole file."""
    import yaml
    from hostile import HEADER

    from migsim.evidence.actuals import read_actuals

    path = tmp_path / "actuals.csv"
    path.write_text(f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n")
    scenario = tmp_path / "sc.yaml"
    scenario.write_text(yaml.safe_dump(ACTUALS_SCENARIO))
    source = str(scenario) if given == "a path" else ACTUALS_SCENARIO
    actuals = read_actuals(path, source)
    assert actuals.describe() == (
        f"{path}: daily flows, 1 cohort, 1 rows, 2024-01-01 to 2024-01-01, in "
        "installations"
    )
    assert actuals.frame["successes"].tolist() == [80]
