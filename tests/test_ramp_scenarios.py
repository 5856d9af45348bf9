"""Ramp-policy scenarios: foundation numbers kept, extends, bundled ramps, bad input."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import migsim
from migsim.cli.main import main
from migsim.sim.records import FLOWS, STATES

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
SCENARIOS = ROOT / "scenarios"
RAMPS = ("nov2019_cautious_ramp", "nov2019_aggressive_ramp")


# --------------------------------------------------------------------------- unchanged
def test_a_scenario_without_the_new_sections_gives_the_foundation_numbers():
    """The golden frames (tests/golden/foundation_golden_*) with no ramp section."""
    results = migsim.run(GOLDEN / "foundation_golden.yaml", replications=3)
    frame = results.daily[["replication", "date", "cohort", *STATES, *FLOWS]].copy()
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    frame["cohort"] = frame["cohort"].astype(str)
    expected = pd.read_csv(GOLDEN / "foundation_golden_daily.csv")
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected)
    replications = pd.read_csv(GOLDEN / "foundation_golden_replications.csv")
    pd.testing.assert_series_equal(
        results.replications["attempts"], replications["attempts"]
    )


def test_baseline_with_bank_holidays_gives_the_numbers_of_its_closures_list():
    """nov2019_epcl.yaml swapped its closures list for bank_holidays: england.

    The bundled file now carries its input uncertainty (issue 13); its fixed-input
    version, kept in tests/golden, still gives the pinned foundation numbers.
    """
    golden = json.loads((GOLDEN / "foundation_hashes.json").read_text())["nov2019_epcl"]
    results = migsim.run(
        GOLDEN / "nov2019_epcl_fixed_inputs.yaml",
        replications=golden["replications"],
        seed=golden["seed"],
    )
    digest = hashlib.sha256()
    for log in results.logs:
        for name in (*STATES, *FLOWS):
            digest.update(
                np.ascontiguousarray(log.cohort_columns[name], dtype=np.int64).tobytes()
            )
    assert digest.hexdigest() == golden["sha256"]
    assert [log.clearance_day for log in results.logs] == golden["clearance_days"]


# --------------------------------------------------------------------------- extends
def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


COHORT = {
    "name": "a",
    "installations": 100,
    "mode": "dormant",
    "outcomes": {
        "success": 1.0,
        "stall": 0.0,
        "rollback": 0.0,
        "fix_forward": 0.0,
        "dumb": 0.0,
    },
}


def test_extends_chain_resolves_as_documented(tmp_path):
    write(
        tmp_path / "base.yaml",
        {
            "name": "base",
            "start_date": "2019-11-25",
            "horizon_days": 30,
            "calendar": {
                "working_days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                "closures": ["2019-12-02"],
            },
            "capacity": {"daily_cap": 50, "allocation": "priority"},
            "cohorts": [COHORT, {**COHORT, "name": "b", "installations": 200}],
            "sources": {"capacity.daily_cap": "base"},
        },
    )
    # a middle file in a sub-folder: its `extends` is relative to itself
    write(
        tmp_path / "sub" / "middle.yaml",
        {
            "extends": "../base.yaml",
            "name": "middle",
            "capacity": {"daily_cap": 80},  # maps merge: allocation kept
            "calendar": {"working_days": ["Mon", "Tue"]},  # other lists replace
            "cohorts": [
                {"name": "b", "installations": 300},  # named lists merge by name
                {**COHORT, "name": "c"},
            ],
            "gates": [{"name": "g", "opens_on": "2019-12-03"}],
        },
    )
    write(
        tmp_path / "top.yaml",
        {
            "extends": "sub/middle.yaml",
            "name": "top",
            "cohorts": [{"name": "a", "eligible_from": "g"}],
            "sources": {"cohorts.c.installations": "top"},
        },
    )
    sc = migsim.load_scenario(tmp_path / "top.yaml")
    assert sc.name == "top"
    assert sc.capacity.daily_cap == 80 and sc.capacity.allocation == "priority"
    assert sc.calendar.working_days == ["Mon", "Tue"]
    assert [str(d) for d in sc.calendar.closures] == ["2019-12-02"]
    assert [(c.name, c.installations) for c in sc.cohorts] == [
        ("a", 100),
        ("b", 300),
        ("c", 100),
    ]
    assert sc.cohort("a").eligible_from == "g" and sc.cohort("a").mode == "dormant"
    assert sc.sources == {
        "capacity.daily_cap": "base",
        "cohorts.c.installations": "top",
    }
    # the written scenario is fully resolved: no extends, reads back equal
    written = yaml.safe_load(sc.to_yaml())
    assert "extends" not in written
    assert migsim.load_scenario(written) == sc


def test_extends_cycle_is_one_line_exit_2(tmp_path):
    write(tmp_path / "a.yaml", {"extends": "b.yaml", "name": "a"})
    write(tmp_path / "b.yaml", {"extends": "a.yaml", "name": "b"})
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "a.yaml")])
    assert result.exit_code == 2
    assert "cycle" in result.output and "a.yaml -> b.yaml -> a.yaml" in result.output
    assert result.output.strip().count("\n") == 0
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- bad input
BASE = {
    "name": "bad",
    "start_date": "2019-11-25",
    "horizon_days": 30,
    "capacity": {"daily_cap": 50},
    "cohorts": [COHORT],
    "gates": [{"name": "g", "opens_on": "2019-12-03"}],
}
RULE = {
    "name": "r",
    "action": "raise_to",
    "cap": 100,
    "when": [{"metric": "stall_rate", "window": 2, "op": "<", "value": 0.1}],
}


def with_rule(**changes):
    rule = {**RULE, **changes}
    return {**BASE, "capacity": {"daily_cap": 50, "rules": [rule]}}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            with_rule(when=[{"metric": "vibes", "op": "<", "value": 1}]),
            "capacity.rules.r.when.0.metric: unknown metric 'vibes'",
        ),
        (
            with_rule(requires={"gate": "nope"}),
            "capacity.rules.r.requires.gate: unknown gate 'nope'",
        ),
        (  # a percentage typed as one: the rule would always fire
            with_rule(when=[{"metric": "stall_rate", "op": "<", "value": 8}]),
            "capacity.rules.r.when.0.value: 8 is not a share between 0 and 1, as "
            "stall_rate is (8% is 0.08)",
        ),
        (
            with_rule(
                when=[
                    {
                        "metric": "active_failure_rate_upper",
                        "op": "<",
                        "value": -0.01,
                        "confidence": 0.95,
                    }
                ]
            ),
            "capacity.rules.r.when.0.value: -0.01 is not a share between 0 and 1",
        ),
        (
            {**BASE, "cohorts": [{**COHORT, "eligible_from": "nope"}]},
            "cohorts.a.eligible_from: unknown gate 'nope'",
        ),
        (
            with_rule(cap=-1),
            "capacity.rules.r.cap: Input should be greater than or equal",
        ),
        (with_rule(action="cut_to", cap=None), "action cut_to needs cap"),
        (with_rule(factor=1.5), "action raise_to takes no factor"),
        (with_rule(action="halt_days", cap=None), "action halt_days needs days"),
        (
            with_rule(
                when=[
                    {"metric": "active_failure_rate_upper", "op": "<", "value": 0.001}
                ]
            ),
            "needs a confidence",
        ),
        (
            {
                **BASE,
                "gates": [
                    {"name": "g", "opens_on": "h"},
                    {"name": "h", "all_of": [{"name": "x", "fixed_on": "g"}]},
                ],
            },
            "gates open on each other in a cycle: g -> h -> g",
        ),
        (
            {**BASE, "gates": [{"name": "g", "opens_on": "2019-13-01"}]},
            "gates.g.opens_on: '2019-13-01' is neither a date",
        ),
        (
            {
                **BASE,
                "gates": [
                    {
                        "name": "g",
                        "opens_on": {
                            "dist": "triangular",
                            "low": "2019-12-05",
                            "mode": "2019-12-01",
                            "high": "2019-12-09",
                        },
                    }
                ],
            },
            "gates.g.opens_on: mode (2019-12-01) must lie in",
        ),
        (
            {
                **BASE,
                "capacity": {
                    "daily_cap": 50,
                    "schedule": [{"from": "2019-12-01", "daily_cap": -5}],
                },
            },
            "capacity.schedule.0.daily_cap",
        ),
        ({**BASE, "calendar": {"bank_holidays": "wales"}}, "calendar.bank_holidays"),
        (
            {
                **BASE,
                "calendar": {
                    "freezes": [{"name": "f", "from": "2019-12-05", "to": "2019-12-01"}]
                },
            },
            "to (2019-12-01) is before from (2019-12-05)",
        ),
        (
            {
                **BASE,
                "go_no_go": {
                    "incident_probability": 1.5,
                    "incident_duration_days": {"dist": "fixed", "days": 1},
                },
            },
            "go_no_go.incident_probability",
        ),
        (
            {
                **BASE,
                "cohorts": [
                    {
                        **COHORT,
                        "deferred": [
                            {"name": "s", "share": 0.7, "until": "g"},
                            {"name": "t", "share": 0.7, "until": "g"},
                        ],
                    }
                ],
            },
            "deferred shares sum to 1.4",
        ),
    ],
)
def test_bad_definitions_give_one_line_and_exit_2(tmp_path, data, expected):
    path = write(tmp_path / "bad.yaml", data)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert result.output.strip().count("\n") == 0
    assert result.output.startswith(f"Error: {path}: ")


@pytest.mark.parametrize(
    ("metric", "value"),
    [("stall_rate", 0.0), ("eventual_success_rate", 1.0), ("stalled_backlog", 8)],
)
def test_a_share_threshold_may_be_0_or_1_and_a_count_any_number(
    tmp_path, metric, value
):
    path = write(
        tmp_path / "ok.yaml",
        with_rule(when=[{"metric": metric, "op": "<", "value": value}]),
    )
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_set_addresses_rules_and_calendar_by_name():
    path = SCENARIOS / "nov2019_cautious_ramp.yaml"
    sc = migsim.load_scenario(
        path,
        {
            "capacity.rules.automation_step.max_cap": "8000",
            "calendar.bank_holidays": "scotland",
        },
    )
    rule = next(r for r in sc.capacity.rules if r.name == "automation_step")
    assert rule.max_cap == 8000 and sc.calendar.bank_holidays == "scotland"
    result = CliRunner().invoke(
        main, ["validate", str(path), "--set", "capacity.rules.automation_step.cap=5"]
    )
    assert result.exit_code == 2 and "takes no cap" in result.output


# --------------------------------------------------------------------------- bundled
def own_figures(data, prefix=""):
    """Dotted paths of the numbers and dates a scenario file itself states."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key not in {"name", "description", "extends", "sources"}:
                yield from own_figures(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            key = item.get("name", index) if isinstance(item, dict) else index
            yield from own_figures(item, f"{prefix}.{key}")
    elif isinstance(data, int | float | date) and not isinstance(data, bool):
        yield prefix


@pytest.mark.parametrize("name", ["nov2019_conditions", *RAMPS])
def test_every_figure_of_the_ramp_scenarios_has_a_source(name):
    path = SCENARIOS / f"{name}.yaml"
    document = yaml.safe_load(path.read_text())
    sources = migsim.load_scenario(path).sources
    missing = [
        figure
        for figure in own_figures(document)
        if not any(figure == key or figure.startswith(f"{key}.") for key in sources)
    ]
    assert not missing
    for key, text in sources.items():
        assert text.strip(), key


@pytest.mark.parametrize("name", RAMPS)
def test_ramps_extend_the_baseline_and_name_the_step_rule(name):
    sc = migsim.load_scenario(SCENARIOS / f"{name}.yaml")
    base = migsim.load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    assert sc.calendar.bank_holidays == "england"
    assert [c.name for c in sc.cohorts] == [c.name for c in base.cohorts]
    assert [c.installations for c in sc.cohorts] == [24000, 50000]
    assert "automation_step" in [r.name for r in sc.capacity.rules]
    gates = {g.name for g in sc.gates}
    assert {
        "fix_61224",
        "fix_91339_91340",
        "condition_91333",
        "condition_91342",
        "fix_91342",
        "mcc_automation",
        "split_supply",
    } <= gates
    assert sc.cohort("itron_active").eligible_from == "itron_active_entry"
    assert sc.cohort("elster_dormant").eligible_from == "elster_dormant_entry"


@pytest.mark.slow
def test_aggressive_ramp_clears_earlier_than_cautious_under_common_seeds():
    cautious, aggressive = (
        migsim.run(SCENARIOS / f"{name}.yaml", replications=30, seed=0)
        for name in RAMPS
    )
    assert np.median(aggressive.clearance_days()) < np.median(cautious.clearance_days())
    paired = aggressive.clearance_days() - cautious.clearance_days()
    assert np.median(paired) < 0
    # the same gates open on the same days in both (common random numbers)
    for a, b in zip(cautious.logs, aggressive.logs, strict=True):
        assert a.gate_days["mcc_automation"] == b.gate_days["mcc_automation"]
        assert a.gate_days["split_supply"] == b.gate_days["split_supply"]
    assert aggressive.daily.daily_cap.max() == 15000
    assert cautious.daily.daily_cap.max() <= 10000


@pytest.mark.slow
def test_cli_run_reports_and_writes_the_policy(tmp_path):
    outdir = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(SCENARIOS / "nov2019_cautious_ramp.yaml"),
            "-n",
            "2",
            "-o",
            str(outdir),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((outdir / "summary.json").read_text())
    assert set(summary["policy"]) == {"no_go_days", "rule_firings", "gates"}
    assert set(summary["policy"]["rule_firings"]) == {"stall_halt", "automation_step"}
    daily = pd.read_parquet(outdir / "daily.parquet")
    assert {"daily_cap", "cap_rule", "no_go", "rule_fired"} <= set(daily.columns)
    replications = pd.read_csv(outdir / "replications.csv")
    assert {
        "no_go_days",
        "automation_step_firings",
        "mcc_automation_opening_date",
    } <= set(replications.columns)
    written = yaml.safe_load((outdir / "scenario.yaml").read_text())
    assert "extends" not in written and written["name"] == "nov2019_cautious_ramp"
    assert migsim.load_scenario(written).sha256 == summary["scenario_sha256"]
