"""Shared fixtures: tiny scenarios that run in milliseconds."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from migsim.scenario import Scenario, load_scenario

_TINY: dict[str, Any] = {
    "name": "tiny",
    "description": "A tiny two-cohort scenario for tests.",
    "start_date": "2020-01-06",  # a Monday
    "horizon_days": 120,
    "seed": 0,
    "calendar": {"working_days": ["Mon", "Tue", "Wed", "Thu", "Fri"]},
    "capacity": {"daily_cap": 100, "allocation": "pro_rata"},
    "meters_per_installation": 1.6,
    "cohorts": [
        {
            "name": "active_a",
            "installations": 600,
            "mode": "active",
            "outcomes": {"success": 0.85, "stall": 0.1, "rollback": 0.03,
                         "fix_forward": 0.01, "dumb": 0.01},
            "stall": {"resolves_after_days": {"dist": "uniform", "low": 2, "high": 10},
                      "then_success": 0.7},
            "rollback": {"retry_after_days": {"dist": "uniform", "low": 3, "high": 8}},
            "fix_forward": {"restored_after_days": {"dist": "fixed", "days": 2}},
        },
        {
            "name": "dormant_b",
            "installations": 900,
            "mode": "dormant",
            "outcomes": {"success": 0.9, "stall": 0.06, "rollback": 0.03,
                         "fix_forward": 0.005, "dumb": 0.005},
            "stall": {"resolves_after_days": {"dist": "uniform", "low": 2, "high": 10},
                      "then_success": 0.7},
            "rollback": {"retry_after_days": {"dist": "uniform", "low": 3, "high": 8}},
            "fix_forward": {"restored_after_days": {"dist": "fixed", "days": 2}},
        },
    ],
    "sources": {
        "capacity.daily_cap": "assumption: a round number for tests",
        "cohorts.active_a.outcomes": "seed paper (test reading)",
    },
}


def tiny_dict(**changes: Any) -> dict[str, Any]:
    """The tiny scenario as a dict, with top-level fields replaced."""
    data = copy.deepcopy(_TINY)
    data.update(changes)
    return data


def tiny(overrides: dict[str, Any] | None = None, **changes: Any) -> Scenario:
    """The tiny scenario, validated, with top-level changes and dotted overrides."""
    return load_scenario(tiny_dict(**changes), overrides)


@pytest.fixture
def tiny_scenario() -> Scenario:
    return tiny()


@pytest.fixture
def tiny_yaml(tmp_path):
    """Write scenario YAML files into tmp_path; returns a writer."""
    import yaml

    def write(name: str = "tiny", overrides: dict[str, Any] | None = None,
              **changes: Any):
        sc = tiny(overrides, name=name, **changes)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(sc.to_dict(), sort_keys=False))
        return path

    return write
