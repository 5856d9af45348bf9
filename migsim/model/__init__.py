"""The scenario schema: what a planner writes, validated, with the one loader."""

from migsim.model.scenario import Scenario, load_scenario

__all__ = ["Scenario", "load_scenario"]
