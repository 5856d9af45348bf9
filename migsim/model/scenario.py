"""Scenario: the planner's description of a migration programme, as validated data.

A `Scenario` gathers the calendar and capacity (`migsim.model.policy`), the
cohorts (`migsim.model.cohort`) and, for a run that continues another, the
mid-programme state (`migsim.model.state`); it checks what spans them (names,
gates, sources) and derives what every layer downstream reads (dates, flat
fields, the hash that identifies the inputs).

`load_scenario` is the one way in: a YAML file (read by `migsim.model.files`,
``extends`` resolved), a mapping or a `Scenario`, with ``--set`` overrides;
`Scenario.with_overrides` and `Scenario.starting_from` make new scenarios. Every
error is one `ScenarioError` line naming the file and the dotted field.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from migsim.common.errors import ScenarioError
from migsim.common.yamlio import shown
from migsim.model.base import OUTCOMES, WEEKDAYS, SchemaModel, check_unique
from migsim.model.cohort import Cohort, Els, LatentDefect, Supplier
from migsim.model.distributions import (
    LOGNORMAL_CUT,
    BetaProbability,
    Delay,
    DirichletOutcomes,
    TriangularDate,
    UniformDate,
    draw_probability,
    gate_reference,
    probability_mean,
)
from migsim.model.files import read_scenario_file
from migsim.model.paths import error_messages, flatten, get_field, set_fields
from migsim.model.policy import (
    METRICS,
    RESERVED_CAP_LABELS,
    Calendar,
    Capacity,
    Gate,
    GoNoGo,
    Rule,
    gate_cycle,
    gate_date_fields,
)
from migsim.model.state import InitialState, OperationsState
from migsim.model.uncertainty import (
    InputsFrom,
    ProgrammeDelay,
    RatioRange,
    SlipDate,
)

__all__ = [
    "Scenario",
    "load_scenario",
    # Schema names callers imported from here before the model layer was split:
    # they live in the modules imported above and stay importable from here, so
    # code written against the old layout keeps working. New code imports them
    # from the module that holds them.
    "LOGNORMAL_CUT",
    "METRICS",
    "OUTCOMES",
    "WEEKDAYS",
    "BetaProbability",
    "Cohort",
    "Delay",
    "DirichletOutcomes",
    "InitialState",
    "LatentDefect",
    "Rule",
    "TriangularDate",
    "UniformDate",
    "draw_probability",
    "gate_reference",
    "get_field",
    "probability_mean",
]


class Scenario(SchemaModel):
    """A whole migration scenario: calendar, capacity, cohorts and their sources."""

    name: str = Field(min_length=1)
    description: str = ""
    start_date: date
    horizon_days: PositiveInt
    seed: NonNegativeInt = 0
    calendar: Calendar = Field(default_factory=Calendar)
    capacity: Capacity
    clearance_share: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    meters_per_installation: Annotated[float, Field(gt=0.0)] | None = None
    # an estimate: drawn per replication (meters_per_installation is its point)
    meters_per_installation_range: RatioRange | None = None
    cohorts: list[Cohort] = Field(min_length=1)
    go_no_go: GoNoGo | None = None
    gates: list[Gate] = Field(default_factory=list)
    suppliers: list[Supplier] = Field(default_factory=list)
    els: Els | None = None
    operations_state: OperationsState | None = None  # None: a programme's first day
    # a continuation keeps the input draws of the replication it continues
    inputs_from: InputsFrom | None = None
    # multiplies every date slip marked shared (model/uncertainty.py)
    programme_delay: ProgrammeDelay | None = None
    # full: inputs drawn per replication; point: every input at its point value
    uncertainty: Literal["full", "point"] = "full"
    sources: dict[str, str] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler: Any) -> dict[str, Any]:
        """Leave out an absent ``operations_state`` (as ``initial_state``), and the
        uncertainty fields at their defaults: a scenario hashes as before them."""
        data = handler(self)
        if data.get("operations_state", ...) is None:
            del data["operations_state"]
        for unused in (
            "programme_delay",
            "meters_per_installation_range",
            "inputs_from",
        ):
            if data.get(unused, ...) is None:
                del data[unused]
        if data.get("uncertainty") == "full":
            del data["uncertainty"]
        return data

    @model_validator(mode="after")
    def _shared_slips_need_a_programme_delay(self) -> Scenario:
        shared = [
            path
            for path, spec in self.date_fields().items()
            if isinstance(spec, SlipDate) and spec.shared
        ]
        if shared and self.programme_delay is None:
            raise ValueError(
                f"{shared[0]}: a shared slip needs a programme_delay "
                "(the factor it shares)"
            )
        return self

    @model_validator(mode="after")
    def _meters_ranges_need_a_ratio(self) -> Scenario:
        """A ratio range needs its point value; a size converted from meters
        needs the ratio it was converted with."""
        point = self.meters_per_installation
        if self.meters_per_installation_range is not None:
            if point is None:
                raise ValueError(
                    "meters_per_installation_range: needs meters_per_installation "
                    "(its point value)"
                )
            try:
                self.meters_per_installation_range.check(point)
            except ValueError as exc:
                raise ValueError(f"meters_per_installation_range: {exc}") from None
        for cohort in self.cohorts:
            size = cohort.installations_range
            if size is not None and size.from_meters and point is None:
                raise ValueError(
                    f"cohorts.{cohort.name}.installations_range.from_meters: needs "
                    "meters_per_installation (the ratio the range was converted at)"
                )
        return self

    @model_validator(mode="after")
    def _operations_state_names_exist(self) -> Scenario:
        state = self.operations_state
        if state is None:
            return self
        rules = {r.name for r in self.capacity.rules}
        unknown = sorted(set(state.rules) - rules)
        if unknown:
            raise ValueError(
                f"operations_state.rules: unknown rule {', '.join(unknown)}"
            )
        cohorts = {c.name for c in self.cohorts}
        defects = {(c.name, d.name) for c in self.cohorts for d in c.latent_defects}
        unknown = sorted(
            f"{d.cohort}.{d.defect}"
            for d in state.defects
            if (d.cohort, d.defect) not in defects
        )
        if unknown:
            raise ValueError(
                f"operations_state.defects: unknown defect {', '.join(unknown)}"
            )
        unknown = sorted({case.cohort for case in state.els_queue} - cohorts)
        if unknown:
            raise ValueError(
                f"operations_state.els_queue: unknown cohort {', '.join(unknown)}"
            )
        self._els_cases_held(state)
        self._els_cases_fit(state)
        gates = {g.name for g in self.gates}
        unknown = sorted(set(state.gates_open) - gates)
        if unknown:
            raise ValueError(
                f"operations_state.gates_open: unknown gate {', '.join(unknown)}"
            )
        unknown = sorted(set(state.gates_closed) - gates)
        if unknown:
            raise ValueError(
                f"operations_state.gates_closed: unknown gate {', '.join(unknown)}"
            )
        fields = self.date_fields()
        named = set(state.dates_passed) | set(state.dates_pending)
        unknown = sorted(named - set(fields))
        if unknown:
            raise ValueError(f"operations_state: no date field {', '.join(unknown)}")
        late = [
            k
            for k, v in {**state.gates_open, **state.dates_passed}.items()
            if v >= self.start_date
        ]
        if late:
            raise ValueError(
                f"operations_state: {', '.join(sorted(late))} passed on or after "
                f"start_date {self.start_date}"
            )
        return self

    def _els_cases_held(self, state: OperationsState) -> None:
        """The desk's stall and fix-forward cases hold exactly the cohort's
        ``held: true`` groups (as `Results.state_on` exports them): a case
        without its installations resolved them twice, driving stalled or
        impaired below 0, and a held group without a case never resolved."""
        for cohort in self.cohorts:
            for kind, name in (("stall", "stalled"), ("fix_forward", "impaired")):
                cases = sum(
                    c.count
                    for c in state.els_queue
                    if c.cohort == cohort.name and c.kind == kind
                )
                groups = getattr(cohort.initial_state, name, 0)
                held = (
                    sum(g.count for g in groups if g.held)
                    if isinstance(groups, list)
                    else 0
                )
                if cases != held:
                    raise ValueError(
                        f"operations_state.els_queue: cohort {cohort.name}'s "
                        f"{kind} cases hold {cases:,} installations but its "
                        f"initial_state.{name} has {held:,} held: true"
                    )

    def _els_cases_fit(self, state: OperationsState) -> None:
        """Each open case names a supplier of the scenario and holds its count
        by attempts made (and by class) within the cohort's max_attempts: an
        unknown supplier went to the cohort's first, attempts past the limit
        were clipped (below 0 indexed from the end), and counts that did not add
        up held installations that were never released."""
        suppliers = {s.name for s in self.suppliers}
        cohorts = {c.name: c for c in self.cohorts}
        for i, case in enumerate(state.els_queue):
            where = f"operations_state.els_queue.{i}"
            if case.supplier and case.supplier not in suppliers:
                raise ValueError(
                    f"{where}.supplier: no supplier named '{case.supplier}' in "
                    "suppliers"
                )
            most = cohorts[case.cohort].max_attempts
            unknown = sorted(set(case.by_class) - {"normal", "hard", "excluded"})
            if unknown:
                raise ValueError(
                    f"{where}.by_class: no class '{unknown[0]}' (normal, hard or "
                    "excluded)"
                )
            for field, made in (
                ("attempts", [case.attempts]),
                ("by_class", list(case.by_class.values())),
            ):
                if not made:
                    continue
                for m in sorted(m for counts in made for m in counts):
                    if not 0 <= m <= most:
                        raise ValueError(
                            f"{where}.{field}: attempts made {m} is outside 0 to "
                            f"{most} (max_attempts of {case.cohort})"
                        )
                total = sum(n for counts in made for n in counts.values())
                if (made != [{}]) and total != case.count:
                    raise ValueError(
                        f"{where}.{field}: they add up to {total:,}, not the "
                        f"case's count {case.count:,}"
                    )

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, name: str) -> str:
        """The name names output folders (``compare -o``, a report's runs): a
        slash or ``..`` would write outside them."""
        if (
            name in {".", ".."}
            or any(c in name for c in "/\\")
            or not all(c.isprintable() for c in name)
            or name != name.strip()
        ):
            raise ValueError(
                f"{name!r}: a scenario name names a folder: no '/', '\\', "
                "control characters, spaces at its ends, '.' or '..'"
            )
        if len(name.encode("utf-8")) > 200:
            raise ValueError("at most 200 bytes (it names a folder)")
        return name

    @field_validator("cohorts")
    @classmethod
    def _unique_names(cls, cohorts: list[Cohort]) -> list[Cohort]:
        check_unique("cohort", [c.name for c in cohorts])
        return cohorts

    @field_validator("suppliers")
    @classmethod
    def _unique_suppliers(cls, suppliers: list[Supplier]) -> list[Supplier]:
        check_unique("supplier", [s.name for s in suppliers])
        return suppliers

    @model_validator(mode="after")
    def _suppliers_known(self) -> Scenario:
        known = {s.name for s in self.suppliers}
        for cohort in self.cohorts:
            unknown = sorted(set(cohort.suppliers) - known)
            if unknown:
                raise ValueError(
                    f"cohorts.{cohort.name}.suppliers: no supplier named "
                    f"{', '.join(unknown)} in suppliers"
                )
            # a part of a state that names no supplier here (a typo, a state of
            # another scenario) would not be taken up: the state was shared out
            # in proportion instead, without a word
            parts = cohort.initial_state.parts if cohort.initial_state else []
            for i, part in enumerate(parts):
                if part.supplier and part.supplier not in known:
                    raise ValueError(
                        f"cohorts.{cohort.name}.initial_state.parts.{i}.supplier: no "
                        f"supplier named '{part.supplier}' in suppliers (leave out "
                        "parts to share the state in proportion)"
                    )
        if self.capacity.allocation == "msm":
            if self.capacity.dmin is None:
                raise ValueError(
                    "capacity.dmin: required with allocation msm (MSM 4.0 sets DMIN, "
                    "the flat allocation, at 100 installations a day)"
                )
            unsplit = [c.name for c in self.cohorts if not c.suppliers]
            if unsplit:
                raise ValueError(
                    "capacity.allocation: msm shares the cap between suppliers, so "
                    "every cohort needs a suppliers split "
                    f"(missing: {', '.join(unsplit)})"
                )
        return self

    @model_validator(mode="after")
    def _els_metric_needs_els(self) -> Scenario:
        for rule in self.capacity.rules:
            if self.els is None and any(c.metric == "els_backlog" for c in rule.when):
                raise ValueError(
                    f"capacity.rules.{rule.name}.when: metric els_backlog needs an "
                    "els section (ELS/MCC capacity)"
                )
        return self

    @field_validator("gates")
    @classmethod
    def _unique_gates(cls, gates: list[Gate]) -> list[Gate]:
        check_unique("gate", [g.name for g in gates])
        return gates

    @model_validator(mode="after")
    def _gates_exist_without_cycles(self) -> Scenario:
        gates = {g.name: g for g in self.gates}
        references = [
            (path, gate_reference(spec)) for path, spec in self.date_fields().items()
        ]
        references += [
            (f"capacity.rules.{r.name}.requires.gate", r.requires.gate)
            for r in self.capacity.rules
        ]
        for path, name in references:
            if name is not None and name not in gates:
                raise ValueError(f"{path}: unknown gate {name!r}")
        cycle = gate_cycle(gates)
        if cycle:
            raise ValueError(
                f"gates.{cycle[0]}: gates open on each other in a cycle: "
                + " -> ".join(cycle)
            )
        return self

    def date_fields(self) -> dict[str, Any]:
        """Every `DateSpec` field that is set, as ``{dotted.path: spec}``.

        The paths name the fields (and, in `migsim.sim.policy`, the random streams
        their draws use), with named list items by name.
        """
        out: dict[str, Any] = {}
        for cohort in self.cohorts:
            prefix = f"cohorts.{cohort.name}"
            if cohort.eligible_from is not None:
                out[f"{prefix}.eligible_from"] = cohort.eligible_from
            if cohort.stall is not None and cohort.stall.release_on is not None:
                out[f"{prefix}.stall.release_on"] = cohort.stall.release_on
            for item in cohort.deferred:
                out[f"{prefix}.deferred.{item.name}.until"] = item.until
            for section in ("volume_failures", "change_of_supplier", "ppmid_join"):
                spec = getattr(cohort, section)
                if spec is not None and spec.until is not None:
                    out[f"{prefix}.{section}.until"] = spec.until
        for supplier in self.suppliers:
            if supplier.business_ready is not None:
                path = f"suppliers.{supplier.name}.business_ready"
                out[path] = supplier.business_ready
        for index, step in enumerate(self.capacity.schedule):
            out[f"capacity.schedule.{step.name or index}.from"] = step.from_
        for gate in self.gates:
            out.update(gate_date_fields(gate))
        return out

    @model_validator(mode="after")
    def _rule_and_step_names_distinct(self) -> Scenario:
        """Each name labels cap_rule, so each is one no other item and none of
        migsim's own labels has; the message names the field (it named only
        the label, and the explorer showed it beside no control)."""
        named = [(f"capacity.rules.{r.name}", r.name) for r in self.capacity.rules]
        named += [
            (f"capacity.schedule.{s.name}", s.name)
            for s in self.capacity.schedule
            if s.name
        ]
        named += [(f"calendar.freezes.{f.name}", f.name) for f in self.calendar.freezes]
        first: dict[str, str] = {}
        problems = []
        for where, name in named:
            if name in RESERVED_CAP_LABELS:
                problems.append(
                    f"{where}.name: {name} is a cap_rule label of migsim's own "
                    f"({', '.join(RESERVED_CAP_LABELS)}); choose another name"
                )
            elif name in first:
                problems.append(
                    f"{where}.name: {name} names {first[name]} too; capacity rules, "
                    "schedule steps and freezes need distinct names (they label "
                    "cap_rule)"
                )
            else:
                first[name] = where
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _pending_only_when_eligible_later(self) -> Scenario:
        for cohort in self.cohorts:
            state = cohort.initial_state
            eligible = cohort.eligible_from or self.start_date
            if not isinstance(eligible, date) or cohort.deferred:
                continue  # uncertain, gated or deferred: pending may wait for them
            if state is not None and state.pending and eligible < self.start_date:
                raise ValueError(
                    f"cohorts.{cohort.name}.initial_state.pending: {state.pending:,} "
                    f"pending, but the cohort was eligible from {eligible}, before "
                    f"start_date {self.start_date}"
                )
        return self

    @model_validator(mode="after")
    def _sources_name_fields(self) -> Scenario:
        """Every source names a field. The dump leaves out fields at their
        defaults (``uncertainty: full``, a null ``programme_delay``: see
        `_omit_unused`), but they are fields all the same: a source for one was
        refused as naming no field, and a run's ``scenario.yaml`` after ``--set
        uncertainty=point`` (which notes its source) could not be set back to
        ``full``."""
        known = set(flatten(self.model_dump(mode="json", exclude={"sources"})))
        named = _prefixes(known) | (set(type(self).model_fields) - {"sources"})
        unknown = [key for key in self.sources if key not in named]
        if unknown:
            raise ValueError(f"sources names no field: {', '.join(sorted(unknown))}")
        return self

    # ------------------------------------------------------------------ derived
    @property
    def end_date(self) -> date:
        """The last simulated date (inclusive)."""
        return self.start_date + timedelta(days=self.horizon_days - 1)

    @property
    def installations(self) -> int:
        return sum(c.installations for c in self.cohorts)

    def cohort(self, name: str) -> Cohort:
        for cohort in self.cohorts:
            if cohort.name == name:
                return cohort
        raise KeyError(name)

    def day_of(self, when: date) -> int:
        """Day index of a date on the simulation clock (0 = start_date)."""
        return (when - self.start_date).days

    def date_of(self, day: int) -> date:
        return self.start_date + timedelta(days=int(day))

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain JSON-able data (dates as ISO strings)."""
        return self.model_dump(mode="json")

    def flat(self) -> dict[str, Any]:
        """Every field as ``{dotted.path: value}``; named list items by name."""
        return flatten(self.to_dict())

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @cached_property
    def sha256(self) -> str:
        """Hash of the resolved scenario's canonical JSON: identifies the inputs."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def to_yaml(self) -> str:
        """A YAML document that `load_scenario` reads back to an equal scenario."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def starting_from(self, state: Mapping[str, Any]) -> Scenario:
        """A scenario that continues from a state, to the same horizon end.

        ``state`` is ``{"date": d, "cohorts": {name: initial_state},
        "operations_state": ...}`` as `Results.state_on` gives (the end of day
        ``d``); the new scenario starts on the day after ``d`` with each cohort's
        ``initial_state`` (and the ``operations_state``) set, and ends on this
        scenario's ``end_date``. A state that names ``inputs_from`` (a
        replication's, as `Results.state_on` gives) makes every replication of the
        new scenario keep that replication's input draws (`InputsFrom`); a state
        from actuals has none, and the inputs are drawn afresh. A cohort's
        estimated size (``installations_range``) becomes the state's total,
        unless the state says ``sizes_known: false`` (actuals that do not
        report sizes): then each replication still draws it, and what the state
        has not seen (its pending or queued installations) takes the difference.
        """
        when = state["date"]
        when = date.fromisoformat(when) if isinstance(when, str) else when
        start = when + timedelta(days=1)
        origin = f"{self.name}: state on {when}"
        if not self.start_date <= start <= self.end_date:
            raise ScenarioError(
                f"{origin}: the day after it is outside "
                f"{self.start_date}..{self.end_date}"
            )
        data = self.to_dict()
        data["start_date"] = start.isoformat()
        data["horizon_days"] = (self.end_date - start).days + 1
        cohorts = state["cohorts"]
        missing = [c["name"] for c in data["cohorts"] if c["name"] not in cohorts]
        if missing:
            raise ScenarioError(f"{origin}: no state for cohort {', '.join(missing)}")
        # a state that does not know its cohorts' sizes (from actuals that do
        # not report them) leaves them estimated; a replication's knows them
        unseen = state.get("sizes_known") is False and state.get("inputs_from") is None
        for cohort in data["cohorts"]:
            cohort["initial_state"] = copy.deepcopy(dict(cohorts[cohort["name"]]))
            held = InitialState.model_validate(cohort["initial_state"])
            if cohort.get("installations_range") is None:
                continue
            if not unseen or held.size_holder is None:
                # the state holds the size this replication drew: now known
                del cohort["installations_range"]
                cohort["installations"] = held.total
                _size_now_known(data.get("sources"), cohort["name"], when)
            # else a state from actuals: the size stays an estimate, each
            # replication's draw moving what the state has not seen
            # (`InitialState.with_size`)
        data.pop("operations_state", None)
        if state.get("operations_state") is not None:
            data["operations_state"] = copy.deepcopy(dict(state["operations_state"]))
        data.pop("inputs_from", None)
        if state.get("inputs_from") is not None:
            # the state is that replication's: its future keeps its inputs
            data["inputs_from"] = dict(state["inputs_from"])
        return _validate(data, origin)

    def with_overrides(
        self, overrides: Mapping[str, Any], *, origin: str = "--set", text: bool = True
    ) -> Scenario:
        """A new scenario with dotted-path fields replaced, then re-validated.

        Setting one outcome rate rescales the other four in proportion so the five
        still sum to 1. String values are text as typed, parsed with
        ``yaml.safe_load`` (so ``"5000"`` is an int and ``"2020-01-06"`` a date);
        with ``text=False`` they are values already read (a sweep's grid values,
        a name), set as they are: read again, a quoted ``'100'`` became the
        number 100 and a name ``"plan: B"`` a mapping.
        """
        data = self.to_dict()
        data.setdefault("uncertainty", self.uncertainty)  # --set uncertainty=point
        set_fields(data, overrides, origin=origin, text=text)
        return _validate(data, origin)


def _size_now_known(sources: dict | None, cohort: str, when: date) -> None:
    """A cohort's estimated size is known from a state: its source says so."""
    old = (
        sources.pop(f"cohorts.{cohort}.installations_range", None) if sources else None
    )
    if sources is not None and old is not None:
        sources[f"cohorts.{cohort}.installations"] = (
            f"the state on {when}: the installations it holds (estimated before: {old})"
        )


def _validate(data: Any, origin: str) -> Scenario:
    """Validate plain data as a `Scenario`; errors name ``origin`` and each
    dotted field that is wrong, on one line."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin}: a scenario must be a mapping of fields")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        # a whole-scenario check (no location) names its own field
        messages = error_messages(exc.errors(), data)
        raise ScenarioError(f"{origin}: {'; '.join(messages)}") from None


# --------------------------------------------------------------------------- loading
#: Characters of a mapping's name shown as the origin of its messages.
_ORIGIN_SHOWN = 80


def load_scenario(
    source: str | Path | Mapping[str, Any] | Scenario,
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """Load and validate a scenario from a YAML path or a dict.

    Parameters
    ----------
    source
        Path to a YAML file, a mapping with the same shape, or a `Scenario`.
    overrides
        Optional ``{dotted.path: value}`` applied before validation (as ``--set``).

    Raises
    ------
    ScenarioError
        With one line naming the file and the dotted field that is wrong.
    TypeError
        When ``source`` or ``overrides`` is of no type above.
    """
    # a list of pairs failed on 'tuple' has no attribute 'rpartition'; None or
    # a number as "expected str, bytes or os.PathLike object" from pathlib
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(
            "overrides must be a mapping of dotted fields to values, such as "
            f"{{'capacity.daily_cap': 5000}}, not {type(overrides).__name__}"
        )
    if isinstance(source, Scenario):
        return _set_with_sources(source, overrides, "--set") if overrides else source
    if not isinstance(source, Mapping | str | os.PathLike):
        raise TypeError(
            "a scenario is a path, a mapping of its fields or a Scenario, not "
            f"{type(source).__name__}"
        )
    if isinstance(source, Mapping):
        # the name before it is validated: an upload's name of 200,000
        # characters was the prefix of its own one-line error
        origin = str(source.get("name", "scenario"))
        if len(origin) > _ORIGIN_SHOWN:
            origin = shown(origin, _ORIGIN_SHOWN)
        data = copy.deepcopy(dict(source))
        if "extends" in data:
            raise ScenarioError(f"{origin}: extends: only a scenario file may extend")
    else:
        path = Path(source)
        origin = str(path)
        data = read_scenario_file(path)
    scenario = _validate(data, origin)
    if overrides:
        scenario = _set_with_sources(scenario, overrides, f"{origin}: --set")
    return scenario


def _set_with_sources(
    scenario: Scenario, overrides: Mapping[str, Any], origin: str
) -> Scenario:
    """`Scenario.with_overrides`, with every field whose value changed marked in
    ``sources`` as an assumption set with --set (the value it replaced and that
    value's source kept in the note): a paper is never cited for a set value.
    The source of a field the override removed (set to null) goes with it."""
    before = scenario.to_dict()
    before.setdefault("uncertainty", scenario.uncertainty)
    data = copy.deepcopy(before)
    set_fields(data, overrides, origin=origin)
    new = flatten({k: v for k, v in data.items() if k != "sources"})
    new = {path: value for path, value in new.items() if value is not None}
    old = flatten({k: v for k, v in before.items() if k != "sources"})
    # what held a value before and holds none now; a field null all along
    # (a reason it is not modelled) keeps its source
    gone = _prefixes(p for p, v in old.items() if v is not None) - _prefixes(new)
    sources = {
        k: v
        for k, v in (data.get("sources") or {}).items()
        if not any(k == g or k.startswith(g + ".") for g in gone)
    }
    for path in sorted(new):
        if path in ("name", "description", "seed") or old.get(path, old) == new[path]:
            continue
        was = sources.get(path)
        try:
            value = get_field(before, path, origin=origin)
        except ScenarioError:  # a field below a section the override added
            value = None
        whole = isinstance(value, int) and not isinstance(value, bool)
        shown = f"{value:,}" if whole else json.dumps(value)  # true, not 1
        note = f"assumption: set with --set (value before {shown}"
        sources[path] = note + (f"; its source: {was})" if was else ")")
    data["sources"] = sources
    return _validate(data, origin)


def _prefixes(paths: Iterable[str]) -> set[str]:
    """Each dotted path and every section above it."""
    return {p.rsplit(".", i)[0] for p in paths for i in range(p.count(".") + 1)}
