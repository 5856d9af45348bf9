"""The scenario schema: what a planner writes, validated, with the one loader.

Modules, from the parts up: `base` (the base model, outcome names),
`distributions` (delays, shares, uncertain dates, outcome rates, probabilities),
`policy` (calendar, capacity, rules, gates), `state` (mid-programme state),
`cohort` (cohorts and their operations risks), `scenario` (`Scenario`), `paths`
(dotted field paths) and `loader` (`load_scenario`: YAML, ``extends``, overrides).
"""

from migsim.model.loader import load_scenario
from migsim.model.scenario import Scenario

__all__ = ["Scenario", "load_scenario"]
