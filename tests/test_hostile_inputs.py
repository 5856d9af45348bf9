"""Hostile inputs of experiments: decision questions and sweep definitions a
careless planner could write. Each error is one line naming the file (or
option) and the field, exit status 2, nothing run; each test here failed
before its fix."""

from __future__ import annotations

import pytest
import yaml
from conftest import cohort, scenario, write_yaml
from hostile import cli, one_line_exit_2, write

from migsim.common.errors import QuestionError
from migsim.experiments.question import load_question

_BUDGET = {"figure": "peak_failure_backlog", "statistic": "p90", "max": 10000}
_CHANCE = {"figure": "peak_failure_backlog", "exceeds": 100, "max_probability": 0.1}


def _question(**changes) -> dict:
    data = {
        "name": "cap_basis",
        "scenario": "scenario.yaml",
        "levers": {"capacity.daily_cap": {"low": 500, "high": 5000, "step": 500}},
        "objective": {"minimise": "clearance_day", "statistic": "p50"},
        "risk_budget": [_BUDGET],
        "confidence": 0.95,
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"risk_budget": [{**_BUDGET, "max": True}]}, "risk_budget.0.max"),
        ({"risk_budget": [{**_CHANCE, "exceeds": True}]}, "risk_budget.0.exceeds"),
        (
            {"risk_budget": [{**_CHANCE, "max_probability": True}]},
            "risk_budget.0.max_probability",
        ),
        ({"confidence": True}, "confidence"),
    ],
)
def test_true_in_a_questions_number_is_refused_naming_the_field(
    tmp_path, changes, field
):
    """``max_probability: true`` was a budget of 100% (every candidate safe),
    ``max: true`` or ``exceeds: true`` a limit of 1: YAML's yes read as the
    number 1, as levers already refused."""
    write_yaml(tmp_path / "scenario.yaml", scenario(cohort("c", 1000)))
    with pytest.raises(QuestionError) as caught:
        load_question(_question(**changes), base=tmp_path)
    assert str(caught.value) == f"cap_basis: {field}: true is not a number"


def test_confidence_yes_is_one_line_naming_the_field(tmp_path):
    """It was refused as "Input should be less than 1", naming no yes."""
    write_yaml(tmp_path / "scenario.yaml", scenario(cohort("c", 1000)))
    text = yaml.safe_dump(_question()).replace("confidence: 0.95", "confidence: yes")
    path = write(tmp_path, text, "question.yaml")
    line = one_line_exit_2(cli("decide", path, "-n", "2", "-o", tmp_path / "out"))
    assert line == f"Error: {path}: confidence: true is not a number"
    assert not (tmp_path / "out").exists()


_LEVER = {"low": 500, "high": 5000, "step": 500}


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"risk_budget": [{**_BUDGET, "max": "10000"}]}, "risk_budget.0.max", "10000"),
        (
            {"risk_budget": [{**_CHANCE, "exceeds": "100"}]},
            "risk_budget.0.exceeds",
            "100",
        ),
        (
            {"risk_budget": [{**_CHANCE, "max_probability": "0.1"}]},
            "risk_budget.0.max_probability",
            "0.1",
        ),
        ({"confidence": "0.9"}, "confidence", "0.9"),
        (
            {"levers": {"capacity.daily_cap": {**_LEVER, "low": "2000"}}},
            "levers.capacity.daily_cap.low",
            "2000",
        ),
        (
            {"levers": {"capacity.daily_cap": {**_LEVER, "step": "500"}}},
            "levers.capacity.daily_cap.step",
            "500",
        ),
    ],
)
def test_a_quoted_number_in_a_question_is_refused_as_in_a_scenario(
    tmp_path, changes, field, text
):
    """``max: "10000"``, ``confidence: "0.9"`` or a lever's ``low: "2000"``
    were read as numbers, while a scenario file refuses a quoted number."""
    write_yaml(tmp_path / "scenario.yaml", scenario(cohort("c", 1000)))
    with pytest.raises(QuestionError) as caught:
        load_question(_question(**changes), base=tmp_path)
    assert str(caught.value) == (
        f"cap_basis: {field}: a number is needed here, not text '{text}' "
        "(write it without quotes)"
    )


def test_a_quoted_number_in_a_question_file_is_one_line_and_runs_nothing(tmp_path):
    write_yaml(tmp_path / "scenario.yaml", scenario(cohort("c", 1000)))
    text = yaml.safe_dump(_question()).replace("max: 10000", "max: '10000'")
    path = write(tmp_path, text, "question.yaml")
    line = one_line_exit_2(cli("decide", path, "-n", "2", "-o", tmp_path / "out"))
    assert line == (
        f"Error: {path}: risk_budget.0.max: a number is needed here, not text "
        "'10000' (write it without quotes)"
    )
    assert not (tmp_path / "out").exists()


def test_seed_is_refused_as_a_lever_a_range_and_a_sweep_field(tmp_path):
    """Every candidate, sample and point runs the same replications under the
    command's seed: a sweep over ``seed`` gave the same row at every value,
    sensitivity a swing of 0 for it ("the seed does not matter") and decide a
    lever that moved nothing."""
    from migsim.common.errors import MigsimError
    from migsim.experiments.sensitivity import parse_range
    from migsim.experiments.sweep import SweepDefinition
    from migsim.model.scenario import load_scenario

    why = (
        "every value runs the same replications under the run's seed (common "
        "random numbers), so they would all give the same results; run again "
        "with --seed for other replications"
    )
    path = write_yaml(tmp_path / "scenario.yaml", scenario(cohort("c", 1000)))
    base = load_scenario(path)
    lever = {"seed": {"low": 1, "high": 3, "step": 1}}
    with pytest.raises(QuestionError) as caught:
        load_question(_question(levers=lever), base=tmp_path)
    assert str(caught.value) == (
        f"cap_basis: levers.seed: seed cannot be varied here: {why}"
    )
    with pytest.raises(MigsimError) as caught:
        parse_range(base, "seed=1:5")
    assert str(caught.value) == f"--range seed: seed cannot be varied here: {why}"
    with pytest.raises(MigsimError) as caught:
        SweepDefinition(base, replications=2, seed=0, grid={"seed": [1, 2]})
    assert str(caught.value) == f"{base.name}: sweep field seed: {why}"


def test_a_source_for_a_field_at_its_default_names_a_field(tmp_path):
    """``uncertainty: full`` and a null ``programme_delay`` are left out of the
    scenario's dump (it hashes as before them): a source for either was
    refused as "sources names no field", and a scenario run with ``--set
    uncertainty=point`` (whose source that notes) could not be set back to
    ``full``: a sweep over ``uncertainty=point,full`` had that point invalid."""
    from migsim.model.scenario import load_scenario

    data = scenario(cohort("c", 1000))
    data.update(uncertainty="full", programme_delay=None)
    data["sources"] = {
        "uncertainty": "assumption: inputs drawn per replication",
        "programme_delay": "assumption: no programme-wide cause of delay",
    }
    stated = load_scenario(data)
    assert stated.uncertainty == "full" and stated.programme_delay is None
    assert set(stated.sources) == {"uncertainty", "programme_delay"}
    point = load_scenario(write_yaml(tmp_path / "s.yaml", scenario(cohort("c", 1000))))
    point = load_scenario(point, {"uncertainty": "point"})
    assert point.sources["uncertainty"].startswith("assumption: set with --set")
    assert point.with_overrides({"uncertainty": "full"}).uncertainty == "full"


def test_a_sweep_over_uncertainty_is_a_sweep_of_known_fields(tmp_path):
    """``uncertainty: full`` is the default, left out of the scenario's flat
    dump: ``--grid uncertainty=point,full`` (what the uncertainty adds, under
    common random numbers) was refused as "no such field" although ``--set
    uncertainty=point`` sets it."""
    from migsim.experiments.sweep import SweepDefinition
    from migsim.model.scenario import load_scenario

    base = load_scenario(write_yaml(tmp_path / "s.yaml", scenario(cohort("c", 1000))))
    grid = {"uncertainty": ["point", "full"]}
    sweep = SweepDefinition(base, replications=2, seed=0, grid=grid)
    points = [base.with_overrides(p, text=False) for p in sweep.points()]
    assert [p.uncertainty for p in points] == ["point", "full"]


def test_a_dirichlet_of_one_possible_outcome_splits_the_variance():
    """A cohort whose Dirichlet gives every alpha but one 0 records one rate
    (always 1) under the group ``cohorts.c.outcomes``: a run of 24
    replications or more (where the variance is split) stopped on a KeyError
    for that group's name and wrote no summary."""
    import numpy as np

    from migsim.results.variance import input_groups

    inputs = {
        "programme_delay": np.linspace(0.5, 2.0, 24),
        "cohorts.c.outcomes.dumb": np.ones(24),
        "cohorts.d.installations": np.arange(24.0)[::-1],
    }
    assert input_groups(inputs) == {
        "cohorts.c.outcomes": ["cohorts.c.outcomes.dumb"],
        "cohorts.d.installations": ["cohorts.d.installations"],
        "programme_delay": ["programme_delay"],
    }


def test_a_decisions_confidence_is_written_as_every_share_is(tmp_path):
    """The answer wrote its confidence to a whole percent: 0.975 read "98%"
    and 0.99999 "100%" (a certainty the question never claimed); it is
    written as every other share (`percent`)."""
    from migsim.experiments.decide import decide

    data = scenario(cohort("c", 200), cap=500, horizon_days=10)
    write_yaml(tmp_path / "scenario.yaml", data)
    lever = {"capacity.daily_cap": {"low": 500, "high": 1000, "step": 500}}
    question = load_question(_question(levers=lever, confidence=0.99999), base=tmp_path)
    first = decide(question, replications=2, seed=0).text().splitlines()[0]
    assert first.endswith("every budget at 99.999% confidence")


def test_two_levers_naming_one_field_are_refused(tmp_path):
    """A cohort's field by the cohort's index and by its name were two
    levers: every candidate set the field twice (the later won) and the
    answer gave it two values at once."""
    write_yaml(tmp_path / "scenario.yaml", scenario(cohort("c", 1000)))
    levers = {
        "cohorts.0.installations": {"low": 1000, "high": 2000, "step": 1000},
        "cohorts.c.installations": {"low": 3000, "high": 4000, "step": 1000},
    }
    with pytest.raises(QuestionError) as caught:
        load_question(_question(levers=levers), base=tmp_path)
    assert str(caught.value) == (
        "cap_basis: levers.cohorts.c.installations: the same field as "
        "levers.cohorts.0.installations (a list item by its index and by its "
        "name): give it once"
    )
    # two fields of one cohort are two levers
    del levers["cohorts.c.installations"]
    levers["cohorts.c.max_attempts"] = {"low": 1, "high": 3, "step": 1}
    assert len(load_question(_question(levers=levers), base=tmp_path).levers) == 2


def test_a_sweep_does_not_rewrite_its_manifest_after_every_point(tmp_path, monkeypatch):
    """The manifest lists every point (24 MB at the 100,000 a sweep may
    have) and was written in full, synced, after each point: 1.7 s a point,
    two days of writing for a sweep of a small scenario. It is written again
    once ten times its last write's duration has passed, and in full at the
    end; a point's file still says that it is finished."""
    import json
    import time

    from migsim.common.store import Store
    from migsim.experiments.sweep import SweepDefinition, run_sweep
    from migsim.model.scenario import load_scenario

    writes = []
    save = Store.save

    def slow_save(self):  # a manifest that takes 50 ms to write
        writes.append(1)
        time.sleep(0.05)
        save(self)

    monkeypatch.setattr(Store, "save", slow_save)
    data = scenario(cohort("c", 100), horizon_days=5)
    base = load_scenario(write_yaml(tmp_path / "s.yaml", data))
    grid = {"capacity.daily_cap": [10, 20, 30, 40, 50, 60]}
    sweep = SweepDefinition(base, replications=1, seed=0, grid=grid)
    run_sweep(sweep, tmp_path / "store")
    assert len(writes) < 2 + len(grid["capacity.daily_cap"])  # was one a point
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert [p["status"] for p in manifest["points"]] == ["done"] * 6


@pytest.mark.parametrize(
    ("where", "spec", "expected"),
    [
        (
            ("cohorts", 0, "installations_range"),
            {"dist": "uniform", "low": 1200, "high": 800},
            "cohorts.c.installations_range: high (800) is below low (1,200)",
        ),
        (
            ("meters_per_installation_range",),
            {"dist": "triangular", "low": 2.0, "high": 1.2},
            "meters_per_installation_range: high (1.2) is below low (2)",
        ),
    ],
)
def test_a_range_with_its_ends_swapped_says_so(where, spec, expected):
    """It was refused as "the point value (1,000) must lie in the range
    [1,200, 800]": true, but not what was wrong."""
    from migsim.common.errors import ScenarioError
    from migsim.model.scenario import load_scenario

    data = scenario(cohort("c", 1000), meters_per_installation=1.6)
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = spec
    with pytest.raises(ScenarioError) as caught:
        load_scenario(data)
    assert str(caught.value) == f"tiny: {expected}"


def test_an_infinite_step_is_refused_before_a_candidate_is_made(tmp_path):
    """``step: .inf`` on a lever of a float field made its first candidate
    low + 0 x inf, not a number: the decision started, left its store and
    was refused mid-way, naming no lever."""
    write_yaml(tmp_path / "scenario.yaml", scenario(cohort("c", 1000)))
    lever = {"clearance_share": {"low": 0.5, "high": 1.0, "step": float("inf")}}
    with pytest.raises(QuestionError) as caught:
        load_question(_question(levers=lever), base=tmp_path)
    assert str(caught.value) == (
        "cap_basis: levers.clearance_share.step: Input should be a finite number"
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (  # refused as "Input should be less than 1"
            {"confidence": float("nan")},
            "confidence: Input should be a finite number",
        ),
        (  # refused as "Input should be less than or equal to 1"
            {"risk_budget": [{**_CHANCE, "max_probability": float("nan")}]},
            "risk_budget.0.max_probability: Input should be a finite number",
        ),
        (  # the count was written with all its 300 digits
            {"levers": {"clearance_share": {"low": 0.5, "high": 1, "step": 1e-300}}},
            "levers.clearance_share.step: 1e-300 from low to high is 5e+299 values, "
            "more than the 10,000 a lever may take: take a larger step",
        ),
    ],
)
def test_a_question_says_what_is_wrong_with_a_number(tmp_path, changes, expected):
    write_yaml(tmp_path / "scenario.yaml", scenario(cohort("c", 1000)))
    with pytest.raises(QuestionError) as caught:
        load_question(_question(**changes), base=tmp_path)
    assert str(caught.value) == f"cap_basis: {expected}"


def test_a_scenario_given_to_decide_is_named_as_one(tmp_path):
    """``migsim decide scenario.yaml`` listed "Field required" for each key of a
    question and "unknown key" for each of the scenario's, never saying what
    the file was. A file with a question's key and a stray scenario key is
    still refused key by key."""
    path = write_yaml(tmp_path / "scenario.yaml", scenario(cohort("c", 1000)))
    out = tmp_path / "out"
    line = one_line_exit_2(cli("decide", path, "-n", "2", "-o", out))
    assert line == (
        f"Error: {path}: this is a scenario file; decide takes a question file "
        "(see docs/decision-support.md)"
    )
    assert not out.exists()
    with pytest.raises(QuestionError) as caught:
        load_question(_question(cohorts=[]), base=tmp_path)
    assert str(caught.value) == "cap_basis: cohorts: unknown key"
