"""Ramp rules evaluated as arrays across a block (`lane_policy.BlockPolicy`)
give each replication's scalar `Policy` caps, labels and firings.

Random valid scenarios get random rules of every action and metric, schedule
steps (some with drawn caps), freezes and go/no-go incidents; every block is
compared, replication by replication, with `engine.run_replication`.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_block import assert_engines_agree
from test_engine import random_scenarios

import migsim
from migsim.model.policy import CONFIDENCE_METRICS, METRICS
from migsim.sim.block import _Block
from migsim.sim.lane_policy import BlockPolicy

RULES = settings(
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_ACTIONS = ("raise_to", "step_factor", "hold", "cut_to", "halt_days")


@st.composite
def _conditions(draw, els: bool):
    metrics = [m for m in METRICS if els or m != "els_backlog"]
    metric = draw(st.sampled_from(metrics))
    rate = metric.endswith("_rate") or metric == "active_failure_rate_upper"
    value = draw(st.floats(0, 1) if rate else st.integers(0, 400).map(float))
    out = {
        "metric": metric,
        "window": draw(st.integers(1, 4)),
        "op": draw(st.sampled_from(["<", "<=", ">", ">="])),
        "value": value,
    }
    if metric in CONFIDENCE_METRICS:
        out["confidence"] = draw(st.sampled_from([0.8, 0.95]))
    return out


@st.composite
def _rule(draw, name: str, els: bool):
    action = draw(st.sampled_from(_ACTIONS))
    rule = {
        "name": name,
        "action": action,
        "when": draw(st.lists(_conditions(els), min_size=0, max_size=2)),
        "requires": {"min_days_at_cap": draw(st.integers(0, 4))},
    }
    if action in ("raise_to", "cut_to"):
        rule["cap"] = draw(st.integers(0, 2000))
    if action == "step_factor":
        rule["factor"] = draw(st.sampled_from([1.1, 1.5, 2.0, 1.37]))
    if action in ("raise_to", "step_factor") and draw(st.booleans()):
        rule["max_cap"] = draw(st.integers(0, 2500))
    if action in ("hold", "halt_days"):
        rule["days"] = draw(st.integers(1, 5))
    return rule


@st.composite
def scenarios_with_rules(draw):
    """A random scenario with rules, schedule steps, freezes and incidents."""
    data = draw(random_scenarios()).to_dict()
    start = date.fromisoformat(str(data["start_date"]))
    day = lambda k: (start + timedelta(days=k)).isoformat()  # noqa: E731
    capacity = data["capacity"]
    names = [f"r{i}" for i in range(draw(st.integers(1, 4)))]
    capacity["rules"] = [draw(_rule(name, False)) for name in names]
    steps = []
    for i in range(draw(st.integers(0, 2))):
        step = {"name": f"s{i}", "from": day(draw(st.integers(0, 40)))}
        step["daily_cap"] = draw(st.integers(0, 1500))
        if draw(st.booleans()):
            low = step["daily_cap"]
            step["daily_cap_range"] = {"dist": "uniform", "low": low, "high": low + 500}
        steps.append(step)
    capacity["schedule"] = steps
    calendar = data.setdefault("calendar", {})
    if draw(st.booleans()):
        first = draw(st.integers(0, 30))
        calendar["freezes"] = [
            {
                "name": "freeze",
                "from": day(first),
                "to": day(first + draw(st.integers(0, 10))),
                "cap_factor": draw(st.sampled_from([0.0, 0.5, 0.33])),
            }
        ]
    if draw(st.booleans()):
        data["go_no_go"] = {
            "incident_probability": 0.1,
            "incident_duration_days": {"dist": "fixed", "days": 2},
        }
    return migsim.load_scenario(data)


@RULES
@given(scenarios_with_rules(), st.integers(0, 2**31), st.integers(1, 9))
def test_rules_as_arrays_give_each_policys_caps(sc, seed, n):
    block = _Block(sc, seed, [(k, 0) for k in range(n)])
    assert isinstance(block.policy, BlockPolicy)  # the array path is the one tested
    assert_engines_agree(sc, seed, list(range(n)))
