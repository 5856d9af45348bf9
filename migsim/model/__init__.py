"""The scenario schema: what a planner writes, validated, with the one loader.

Modules, from the parts up: `base` (the base model, outcome names),
`distributions` (delays, shares, uncertain dates, outcome rates, probabilities),
`policy` (calendar, capacity, rules, gates), `state` (mid-programme state),
`cohort` (cohorts and their operations risks), `scenario` (`Scenario` and
`load_scenario`), `paths` (dotted field paths) and `files` (scenario YAML files
and their ``extends`` chains).
"""

from migsim.model.scenario import Scenario, load_scenario

__all__ = ["Scenario", "load_scenario"]
