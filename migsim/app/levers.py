"""Levers: the controls a planner thinks in, and the scenario they build.

A planner testing a volume increase changes the daily cap, the capacity
schedule's steps, the thresholds of the ramp rules and the outcome rates; the
explorer shows those as controls (`page_model`) and builds the scenario to run
from the values the page sends back (`build`). Building goes through
`Scenario.with_overrides`, the path ``--set`` takes, so a bad value gets the
loader's own message naming the dotted field (``capacity.daily_cap: Input should
be greater than or equal to 0``), and the page shows it beside that control.

Only levers of the scenario as loaded can be set, each by its dotted path; a
value equal to the loaded one is not an override, so running an unchanged page
runs the scenario as loaded (under another name, so the two can be compared).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from migsim.app.rates import is_uncertain, new_outcomes, outcome_values
from migsim.common.errors import MigsimError, ScenarioError
from migsim.common.yamlio import parse_yaml
from migsim.model.base import OUTCOMES
from migsim.model.paths import get_field
from migsim.model.scenario import Scenario

__all__ = [
    "BUILT_SUFFIX",
    "MAX_STEPS",
    "SCHEDULE",
    "Built",
    "FormError",
    "Lever",
    "build",
    "levers",
    "page_model",
    "schedule_rows",
]

#: Appended to the loaded scenario's name: the comparison needs two names.
BUILT_SUFFIX = "_explored"
#: The dotted path of the schedule, edited as a whole (steps added or removed).
SCHEDULE = "capacity.schedule"
#: Where messages that name no control are shown on the page.
GENERAL = ""
#: Most schedule steps the page takes (a step a working day for over a year).
MAX_STEPS = 400
#: Rule parameters a planner tunes, with what they mean on the page.
_RULE_PARAMETERS = {
    "cap": "new cap",
    "factor": "step factor",
    "max_cap": "never above",
    "days": "working days",
}
_OPERATORS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}
_ORIGIN = "explorer"


@dataclass(frozen=True)
class Lever:
    """One control: a scenario field by dotted path, as the page shows it."""

    path: str
    label: str
    section: str
    kind: str  # "int", "number" or "rate" (a probability in [0, 1])
    value: int | float
    note: str = ""


class FormError(MigsimError):
    """Values that do not build a valid scenario; each message names its field.

    ``errors`` is a list of ``(path, message)``: the dotted path of the control
    the message belongs beside (``""`` when it names none), and the message.
    """

    def __init__(self, errors: Sequence[tuple[str, str]]):
        self.errors = list(errors)
        super().__init__("; ".join(message for _, message in self.errors))


@dataclass
class Built:
    """The scenario built from the page, and what differs from the one loaded."""

    scenario: Scenario
    changes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- levers
def _rule_levers(rule: dict[str, Any]) -> list[Lever]:
    section = f"Ramp rule: {rule['name']}"
    out = []
    for i, condition in enumerate(rule["when"]):
        window = condition["window"]
        metric = condition["metric"].replace("_", " ")
        days = "day" if window == 1 else f"{window} days"
        out.append(
            Lever(
                path=f"capacity.rules.{rule['name']}.when.{i}.value",
                label=f"{metric} {_OPERATORS[condition['op']]}",
                section=section,
                kind="rate" if condition["metric"].endswith("_rate") else "number",
                value=condition["value"],
                note=f"threshold over the last {days} with attempts "
                f"({condition['metric']} {condition['op']} value)",
            )
        )
    for name, label in _RULE_PARAMETERS.items():
        value = rule.get(name)
        if value is None:
            continue
        out.append(
            Lever(
                path=f"capacity.rules.{rule['name']}.{name}",
                label=label,
                section=section,
                kind="number" if name == "factor" else "int",
                value=value,
                note=f"{rule['action']}: {name}",
            )
        )
    return out


def _outcome_levers(model: Any, cohort: dict[str, Any]) -> list[Lever]:
    values = outcome_values(model.outcomes, cohort["outcomes"])
    if values is None:
        return []
    uncertain = is_uncertain(model.outcomes)
    section = f"Outcome rates: {cohort['name']}"
    note = "share of attempts; change one and the others rescale to sum to 1"
    if uncertain:
        section += " (uncertain: mean rates)"
        note += "; the rates stay as uncertain as loaded, around the new means"
    out = [
        Lever(
            path=f"cohorts.{cohort['name']}.outcomes.{outcome}",
            label=outcome.replace("_", " "),
            section=section,
            kind="rate",
            value=values[outcome],
            note=note,
        )
        for outcome in OUTCOMES
    ]
    stall = cohort.get("stall") or {}
    if isinstance(stall.get("then_success"), int | float):
        out.append(
            Lever(
                path=f"cohorts.{cohort['name']}.stall.then_success",
                label="stalls completing",
                section=section,
                kind="rate",
                value=stall["then_success"],
                note="share of stalls that complete without a new attempt",
            )
        )
    return out


def levers(scenario: Scenario) -> list[Lever]:
    """The controls for a scenario, in the order the page shows them."""
    data = scenario.to_dict()
    out = [
        Lever(
            path="capacity.daily_cap",
            label="Daily cap",
            section="Capacity",
            kind="int",
            value=data["capacity"]["daily_cap"],
            note="installations attempted per working day, all cohorts together, "
            "until the first schedule step or rule changes it",
        )
    ]
    for rule in data["capacity"]["rules"]:
        out += _rule_levers(rule)
    for model, cohort in zip(scenario.cohorts, data["cohorts"], strict=True):
        out += _outcome_levers(model, cohort)
    return out


def schedule_rows(scenario: Scenario) -> list[dict[str, Any]]:
    """The capacity schedule as rows of ``name``, ``from`` and ``daily_cap``;
    ``origin`` is the step's index, so an edited row keeps the step's other
    fields (an uncertain cap's range, say)."""
    rows = []
    for i, step in enumerate(scenario.to_dict()["capacity"]["schedule"]):
        when = step["from"]
        rows.append(
            {
                "origin": i,
                "name": step.get("name") or "",
                "from": when if isinstance(when, str) else json.dumps(when),
                "daily_cap": step["daily_cap"],
            }
        )
    return rows


def page_model(scenario: Scenario) -> dict[str, Any]:
    """What the page needs to draw the controls of a scenario (JSON-able)."""
    gates = [g.name for g in scenario.gates]
    return {
        "name": scenario.name,
        "description": " ".join(scenario.description.split()),
        "seed": scenario.seed,
        "start_date": scenario.start_date.isoformat(),
        "end_date": scenario.end_date.isoformat(),
        "installations": scenario.installations,
        "gates": gates,
        "levers": [asdict(lever) for lever in levers(scenario)],
        "schedule": schedule_rows(scenario),
    }


# --------------------------------------------------------------------------- build
def _parsed(text: str) -> Any:
    """A typed value read as a scenario file reads it (strictly: 33:20 and
    2019-02-30 are errors, not the number 2000 and a 500)."""
    try:
        return parse_yaml(text)
    except yaml.YAMLError:
        return text  # with_overrides says it is unreadable, naming the field


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return not isinstance(a, bool) and math.isclose(a, b, rel_tol=0, abs_tol=1e-12)
    return a == b


def _lever_overrides(
    base: Scenario, values: Mapping[str, Any], errors: list[tuple[str, str]]
) -> dict[str, Any]:
    """Overrides for the levers whose value differs from the loaded one.

    Outcome rates of a cohort: one changed rate is set alone (the others rescale
    in proportion, as ``--set`` does); several changed are set together as
    typed, and must then sum to 1.
    """
    known = {lever.path: lever for lever in levers(base)}
    overrides: dict[str, Any] = {}
    rates: dict[str, dict[str, Any]] = {}
    for path, raw in values.items():
        lever = known.get(path)
        if lever is None:
            errors.append((GENERAL, f"{path}: not a control of {base.name}"))
            continue
        text = "" if raw is None else str(raw).strip()
        if not text:
            errors.append((path, f"{path}: empty: enter a number"))
            continue
        value = _parsed(text)
        if _same(value, lever.value):
            continue
        cohort, _, outcome = path.rpartition(".outcomes.")
        if outcome in OUTCOMES:
            rates.setdefault(cohort, {})[outcome] = value
        else:
            overrides[path] = text
    data = base.to_dict()
    for prefix, changed in rates.items():
        name = prefix.removeprefix("cohorts.")
        model = base.cohort(name)
        typed = {  # a rate the page did not send is as loaded
            o: _parsed(str(values[p])) if p in values else known[p].value
            for o in OUTCOMES
            for p in [f"{prefix}.outcomes.{o}"]
        }
        plain = get_field(data, f"{prefix}.outcomes", origin=_ORIGIN)
        overrides.update(
            new_outcomes(
                f"{prefix}.outcomes", model.outcomes, plain, changed, typed, errors
            )
        )
    return overrides


def _step(
    row: Mapping[str, Any], loaded: list[dict[str, Any]], where: str, errors: list
) -> dict[str, Any]:
    """One schedule step from a row: the loaded step it came from (``origin``)
    with the typed name, date and cap. A typed cap replaces the loaded one and
    its range (``daily_cap_range``): the planner states the cap."""
    name = str(row.get("name") or "").strip()
    when = str(row.get("from") or "").strip()
    cap = str(row.get("daily_cap") or "").strip()
    if not when:
        errors.append((f"{where}.from", f"{where}.from: empty: enter a date or gate"))
    if not cap:
        errors.append(
            (f"{where}.daily_cap", f"{where}.daily_cap: empty: enter a number")
        )
    origin = row.get("origin")
    index = origin if isinstance(origin, int) and not isinstance(origin, bool) else -1
    step = copy.deepcopy(loaded[index]) if 0 <= index < len(loaded) else {}
    parsed = _parsed(when)  # a date, a gate's name or a date distribution
    step["from"] = parsed if isinstance(parsed, dict) else when
    value = _parsed(cap)
    if not _same(value, step.get("daily_cap")):
        for key in [k for k in step if k.startswith("daily_cap_")]:
            del step[key]
    step["daily_cap"] = value
    if name:
        step["name"] = name
    elif "name" in step:
        step["name"] = None
    return step


def _schedule_override(
    base: Scenario, rows: Sequence[Mapping[str, Any]], errors: list[tuple[str, str]]
) -> list[dict[str, Any]] | None:
    """The schedule as typed, or None when it is the loaded one."""
    loaded = base.to_dict()["capacity"]["schedule"]
    steps = [
        _step(row, loaded, f"{SCHEDULE}.{i}", errors) for i, row in enumerate(rows)
    ]
    return None if steps == loaded else steps


def _field_of(message: str, paths: Sequence[str]) -> str:
    """The control a loader message belongs beside: the path it names, or the
    control under the section it names (``cohorts.x.outcomes: rates sum...``)."""
    named = message.split(":", 1)[0].strip()
    if named in paths:
        return named
    for path in paths:
        if path.startswith(named + ".") or named.startswith(path + "."):
            return path
    return GENERAL


def _errors_of(exc: ScenarioError, paths: Sequence[str]) -> list[tuple[str, str]]:
    text = str(exc).removeprefix(f"{_ORIGIN}: ")
    return [(_field_of(part, paths), part) for part in text.split("; ")]


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def _schedule_text(steps: list[dict[str, Any]]) -> str:
    if not steps:
        return "none"
    return ", ".join(f"{_show(s['daily_cap'])} from {s['from']}" for s in steps)


def _changes(base: Scenario, built: Scenario) -> list[str]:
    """What differs, in the page's words: each lever, the schedule, then any
    other field by its dotted path (the rates a changed rate rescaled are levers)."""
    old, new = base.to_dict(), built.to_dict()
    after = {lever.path: lever.value for lever in levers(built)}
    out = []
    for lever in levers(base):
        a, b = lever.value, after.get(lever.path)
        if not _same(a, b):
            out.append(f"{lever.section}: {lever.label}: {_show(a)} → {_show(b)}")
    a_steps, b_steps = old["capacity"]["schedule"], new["capacity"]["schedule"]
    if a_steps != b_steps:
        out.append(
            f"Schedule steps: {_schedule_text(a_steps)} → {_schedule_text(b_steps)}"
        )
    return out


def _noted_sources(base: Scenario, built: Scenario) -> dict[str, str]:
    """Sources with every changed field marked as set in the explorer, so the
    built scenario (and its report's assumptions) never cites a paper for a
    value a planner typed. Sources of fields that are gone (the evidence of
    rates replaced by the planner's) are dropped."""
    old, new = base.flat(), built.flat()
    prefixes = {k.rsplit(".", i)[0] for k in new for i in range(k.count(".") + 1)}
    sources = {k: v for k, v in base.sources.items() if k in prefixes}
    for path in sorted(new):
        if path in ("name", "sources") or path.startswith("sources."):
            continue
        if old.get(path) == new[path]:
            continue
        was = sources.get(path)
        note = f"assumption: set in the explorer (loaded value {_show(old.get(path))}"
        sources[path] = note + (f"; its source: {was})" if was else ")")
    return sources


def build(
    base: Scenario,
    values: Mapping[str, Any],
    schedule: Sequence[Mapping[str, Any]] | None = None,
) -> Built:
    """The scenario to run: ``base`` with the page's values, named apart.

    Parameters
    ----------
    base
        The scenario as loaded (bundled or uploaded).
    values
        ``{dotted path: text}`` of the levers (`levers`); unchanged values are
        not overrides.
    schedule
        Rows of ``name``, ``from``, ``daily_cap`` replacing the capacity
        schedule, or None to keep it.

    Raises
    ------
    FormError
        Every problem found, each beside its control.
    """
    if schedule is not None and len(schedule) > MAX_STEPS:  # 20,000 bad rows: 15 s
        raise FormError(
            [
                (
                    GENERAL,
                    f"{SCHEDULE}: {len(schedule):,} steps, more than the "
                    f"{MAX_STEPS} the page takes",
                )
            ]
        )
    errors: list[tuple[str, str]] = []
    overrides = _lever_overrides(base, values, errors)
    if schedule is not None:
        steps = _schedule_override(base, schedule, errors)
        if steps is not None:
            overrides[SCHEDULE] = steps
    # a changed control first: a message naming only its section ("capacity.
    # rules.stall_halt: action halt_days needs days") goes beside the control
    # typed in, not the section's first
    paths = sorted(
        (lever.path for lever in levers(base)), key=lambda p: p not in overrides
    )
    paths += [
        f"{SCHEDULE}.{i}.{k}"
        for i in range(len(schedule or ()))
        for k in ("name", "from", "daily_cap")
    ]
    overrides["sources"] = {}  # set below, once the fields they name are known
    try:
        built = base.with_overrides(overrides, origin=_ORIGIN)
        built = built.with_overrides(  # values, not text: a name "plan: B" stays one
            {
                "name": base.name + BUILT_SUFFIX,
                "sources": _noted_sources(base, built),
            },
            origin=_ORIGIN,
            text=False,
        )
    except ScenarioError as exc:
        # with the empty fields' messages, so one press of Run names them all
        named = {path for path, _ in errors}
        more = [e for e in _errors_of(exc, paths) if e[0] not in named]
        raise FormError(errors + more) from None
    if errors:
        raise FormError(errors)
    return Built(built, _changes(base, built))
