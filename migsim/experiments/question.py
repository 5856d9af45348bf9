"""A decision question: its YAML schema, its loader and its lever grids.

A *question* file names a scenario, the *levers* a planner may move (any number
or date field, addressed as in ``--set``, over ``low..high`` in ``step``), an
*objective* and a *risk budget*. `load_question` validates it, resolves the
scenario and builds each lever's grid of candidate values;
`migsim.experiments.decide` answers it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from migsim.common.errors import QuestionError, ScenarioError
from migsim.common.stats import format_number, percent
from migsim.common.yamlio import read_yaml, shown
from migsim.experiments.study import MIGRATED_BY, FieldAxis, field_axis
from migsim.model import limits
from migsim.model.paths import NAMED_TWICE, error_messages, repeated_field
from migsim.model.scenario import Scenario, load_scenario
from migsim.results.results import FIGURES, STATISTICS

__all__ = [
    "BudgetSpec",
    "Lever",
    "LeverSpec",
    "ObjectiveSpec",
    "Question",
    "QuestionSpec",
    "load_question",
    "value_words",
]

Statistic = Literal["mean", "p5", "p10", "p50", "p80", "p85", "p90", "p95"]
QuantileStatistic = Literal["p5", "p10", "p50", "p80", "p85", "p90", "p95"]
assert STATISTICS == ("mean", "p5", "p10", "p50", "p80", "p85", "p90", "p95")
#: Planners' words for figures in a decision's answer; others are shown by name.
PHRASES = {
    "active_hit_by_defects": "active installations hit by a defect before it is found",
    "dormant_hit_by_defects": "dormant installations hit by a defect before found",
    "active_interrupted_installation_days": "active installation-days interrupted",
    "max_daily_active_interrupted": "active installations interrupted on the worst day",
    "peak_els_backlog": "ELS cases waiting at the peak",
    "peak_failure_backlog": "installations stalled or rolled back at the peak",
    "abandoned": "installations abandoned",
    "dumb": "devices left dumb",
    "active_dumb": "active devices left dumb",
    "dormant_dumb": "dormant devices left dumb",
}

#: Lever fields that are installations a day (their values read "5,000 a day").
_CAP_FIELDS = ("daily_cap", "max_cap")


# --------------------------------------------------------------------------- schema
class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_quoted_numbers(cls, data: Any) -> Any:
        """Refuse a quoted number (``max: "10000"``) where only a number belongs,
        as a scenario file does (`limits.check_input`): pydantic read it as the
        number, so a question took text a scenario refused. ``true`` is left
        to the fields' own checks (`_not_true_or_false`)."""
        if isinstance(data, dict):
            for name in cls.model_fields:
                if isinstance(data.get(name), str):
                    limits.check_input(cls, name, data[name])
        return data


def _not_true_or_false(value: Any, what: str = "a number") -> Any:
    """Refuse ``true``/``false`` where a number belongs: pydantic took ``low:
    true`` or ``max: true`` as the number 1 (YAML's yes is no number)."""
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not {what}")
    return value


def _not_a_quoted_number(value: Any) -> Any:
    """Refuse text that reads as a number where a number or a date belongs
    (a lever's ``low: "2000"``): pydantic read it as 2000, and a field that
    also takes text (a date) is not refused by `_Model._no_quoted_numbers`."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value  # a date as text, or text pydantic refuses itself
        raise ValueError(
            f"a number is needed here, not text {shown(value)} (write it "
            "without quotes)"
        )
    return value


class LeverSpec(_Model):
    """A field a planner may move: ``low`` to ``high`` in ``step`` (days for dates)."""

    low: dt.date | int | float
    high: dt.date | int | float
    # an infinite step made the first candidate low + 0 x inf, not a number
    step: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    label: str | None = (
        None  # the planner's name for it, e.g. "the cap after MCC automation"
    )

    @field_validator("low", "high", "step", mode="before")
    @classmethod
    def _not_true_or_false(cls, value: Any) -> Any:
        return _not_a_quoted_number(_not_true_or_false(value, "a number or a date"))

    @model_validator(mode="after")
    def _ordered(self) -> LeverSpec:
        dates = [isinstance(v, dt.date) for v in (self.low, self.high)]
        if any(dates) and not all(dates):
            raise ValueError("low and high must both be dates or both numbers")
        if self.low > self.high:  # type: ignore[operator]
            raise ValueError(
                f"low ({self.low}) is above high ({self.high}): an empty range"
            )
        return self


class ObjectiveSpec(_Model):
    """What makes one safe candidate better than another."""

    minimise: str | None = None
    maximise: str | None = None
    statistic: Statistic = "p50"
    date: dt.date | None = None  # only for maximise: migrated_by

    @model_validator(mode="after")
    def _one_figure(self) -> ObjectiveSpec:
        if (self.minimise is None) == (self.maximise is None):
            raise ValueError("give exactly one of minimise or maximise")
        figure = self.figure
        if figure != MIGRATED_BY and figure not in FIGURES:
            raise ValueError(f"no figure named '{figure}' (known: {_known_figures()})")
        if (figure == MIGRATED_BY) != (self.date is not None):
            raise ValueError("a date is needed for migrated_by, and only for it")
        return self

    @property
    def figure(self) -> str:
        return self.minimise if self.minimise is not None else str(self.maximise)

    @property
    def direction(self) -> Literal["minimise", "maximise"]:
        return "minimise" if self.minimise is not None else "maximise"

    @property
    def label(self) -> str:
        return f"{self.figure}_{self.statistic}"


def value_words(kind: str, value: float) -> str:
    """An estimate, bound or limit of a budget of ``kind`` (``chance`` or
    ``quantile``) in words: a chance is a percent (`percent`), a quantile a
    number (`format_number`). The text, decision.json's readers and the report
    write them so."""
    return percent(value) if kind == "chance" else format_number(value)


class BudgetSpec(_Model):
    """One risk OPSG accepts: a quantile at most ``max``, or a chance at most
    ``max_probability`` that the figure exceeds ``exceeds``."""

    figure: str
    statistic: QuantileStatistic | None = None
    # a NaN limit was judged as never met ("not shown within the - budget")
    max: Annotated[float, Field(allow_inf_nan=False)] | None = None
    exceeds: Annotated[float, Field(allow_inf_nan=False)] | None = None
    max_probability: (
        Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None
    ) = None

    @field_validator("max", "exceeds", "max_probability", mode="before")
    @classmethod
    def _not_true_or_false(cls, value: Any) -> Any:
        """``max_probability: true`` was a budget of 100%, ``max: true`` of 1."""
        return _not_true_or_false(value)

    @model_validator(mode="after")
    def _one_form(self) -> BudgetSpec:
        if self.figure not in FIGURES:
            raise ValueError(
                f"no figure named '{self.figure}' (known: {_known_figures()})"
            )
        quantile_form = self.statistic is not None or self.max is not None
        chance_form = self.exceeds is not None or self.max_probability is not None
        if quantile_form == chance_form:
            raise ValueError(
                "give either statistic and max (a quantile budget) or exceeds and "
                "max_probability (a chance budget)"
            )
        if quantile_form and (self.statistic is None or self.max is None):
            raise ValueError("a quantile budget needs both statistic and max")
        if chance_form and (self.exceeds is None or self.max_probability is None):
            raise ValueError("a chance budget needs both exceeds and max_probability")
        self._limit_possible()
        return self

    def _limit_possible(self) -> None:
        """Refuse a limit below 0 on a figure that is never negative.

        Every figure a budget may name is a count (installations, attempts,
        cases, installation-days) or a day number (`Figure.never_negative`): a
        ``max`` below 0 can never be met (each candidate was judged unsafe,
        "over the -1 budget"), and ``exceeds`` below 0 is exceeded by every
        replication (the chance is 1 whatever the plan). A figure that is a
        difference could fall below 0, and a limit below 0 on it would stand.
        """
        if not FIGURES[self.figure].never_negative:
            return
        for name in ("max", "exceeds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                consequence = (
                    "no candidate could meet it"
                    if name == "max"
                    else "every replication exceeds it"
                )
                raise ValueError(
                    f"{name} is {value:g}, but {self.figure} (in "
                    f"{FIGURES[self.figure].unit}) is never below 0: {consequence}"
                )

    @property
    def kind(self) -> Literal["quantile", "chance"]:
        return "chance" if self.exceeds is not None else "quantile"

    @property
    def limit(self) -> float:
        return float(self.max_probability if self.kind == "chance" else self.max)  # type: ignore[arg-type]

    def value_words(self, value: float) -> str:
        """An estimate, bound or limit of this budget as every output writes
        it: a chance as a percent, a quantile as a number (`value_words`)."""
        return value_words(self.kind, value)

    @property
    def words(self) -> str:
        """The budgeted figure in planners' words: "P(more than 100 devices left
        dumb)", "ELS cases waiting at the peak P90"."""
        what = PHRASES.get(self.figure, self.figure)
        if self.kind == "chance":
            return f"P(more than {self.exceeds:,g} {what})"
        return f"{what} {str(self.statistic).upper()}"

    @property
    def label(self) -> str:
        """Column name: ``figure_p90`` or ``p_figure_gt_100``."""
        if self.kind == "chance":
            return f"p_{self.figure}_gt_{self.exceeds:g}"
        return f"{self.figure}_{self.statistic}"


class QuestionSpec(_Model):
    """A decision question as written in its YAML file."""

    name: str = Field(min_length=1)
    description: str = ""
    scenario: str = Field(min_length=1)  # path relative to the question file
    levers: dict[str, LeverSpec] = Field(min_length=1)
    objective: ObjectiveSpec
    risk_budget: list[BudgetSpec] = Field(min_length=1)
    # NaN was refused as "should be less than 1"
    confidence: Annotated[float, Field(gt=0.5, lt=1.0, allow_inf_nan=False)] = 0.95

    @field_validator("confidence", mode="before")
    @classmethod
    def _not_true_or_false(cls, value: Any) -> Any:
        """``confidence: yes`` was refused as "should be less than 1"."""
        return _not_true_or_false(value)


def _known_figures() -> str:
    return ", ".join(FIGURES)


@dataclass(frozen=True)
class Lever:
    """A lever of a question: its field, its grid of candidate values and its label."""

    axis: FieldAxis
    values: tuple[Any, ...]
    label: str | None

    @property
    def path(self) -> str:
        return self.axis.path

    def phrase(self, value: Any) -> str:
        unit = " a day" if self.path.rsplit(".", 1)[-1] in _CAP_FIELDS else ""
        return f"{self.axis.format(value)}{unit}"


#: The most values one lever may take (``low`` to ``high`` in ``step``); counted
#: before any is built (a step of 1e-12 once ran out of memory).
MAX_LEVER_VALUES = 10_000
#: The longest single lever whose every value is validated before a decision
#: runs (`_every_value_valid`: 13-25 ms a value on the bundled question).
CHECKED_VALUES = 400


def _whole_numbers(axis: FieldAxis, spec: LeverSpec, where: str) -> None:
    """A whole-number or date lever moves in whole numbers (days)."""
    low, high, step = axis.to_number(spec.low), axis.to_number(spec.high), spec.step
    if axis.kind in ("int", "date"):
        for name, value in (("low", low), ("high", high), ("step", step)):
            if not float(value).is_integer():
                unit = "days" if axis.kind == "date" else "numbers"
                raise QuestionError(
                    f"{where}.{name}: must be whole {unit}, got {value:g}"
                )


def _grid(axis: FieldAxis, spec: LeverSpec, where: str) -> tuple[Any, ...]:
    """The lever's values, low to high in step, once their count is allowed."""
    low, high, step = axis.to_number(spec.low), axis.to_number(spec.high), spec.step
    steps = (high - low) / step
    # the count built below: whole steps, and high when it falls between them
    many = math.ceil(steps - 1e-9) + 1 if math.isfinite(steps) else math.inf
    if many > MAX_LEVER_VALUES:
        unit = " days" if axis.kind == "date" else ""
        shown = f"{many:,}" if many < 1e15 else f"{many:.3g}"  # not 300 digits
        raise QuestionError(
            f"{where}.step: {step:g}{unit} from low to high is {shown} values, more "
            f"than the {MAX_LEVER_VALUES:,} a lever may take: take a larger step"
        )
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    numbers = [low + i * step for i in range(count)]
    if high - numbers[-1] > 1e-9 * max(1.0, abs(high)):
        numbers.append(high)
    return tuple(axis.from_number(x) for x in numbers)


# --------------------------------------------------------------------------- question
@dataclass(frozen=True)
class Question:
    """A validated question with its resolved scenario and lever grids."""

    spec: QuestionSpec
    scenario: Scenario
    levers: tuple[Lever, ...]
    origin: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def budgets(self) -> list[BudgetSpec]:
        return self.spec.risk_budget

    @property
    def objective(self) -> ObjectiveSpec:
        return self.spec.objective

    @property
    def confidence(self) -> float:
        return self.spec.confidence

    @property
    def sha256(self) -> str:
        """Hash of the question's canonical JSON (the scenario has its own hash)."""
        text = json.dumps(
            self.spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def scenario_at(self, levers: Mapping[str, Any]) -> Scenario:
        """The scenario with the given lever values set."""
        axes = {lever.path: lever.axis for lever in self.levers}
        values = {path: axes[path].to_json(value) for path, value in levers.items()}
        return self.scenario.with_overrides(values, origin=f"{self.origin}: levers")

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.spec.model_dump(mode="json", exclude_none=True),
            sort_keys=False,
            allow_unicode=True,
        )


def _question_error(exc: ValidationError, origin: str, data: Any) -> QuestionError:
    messages = error_messages(exc.errors(), data, unknown="unknown key")
    return QuestionError(f"{origin}: {'; '.join(messages)}")


def load_question(
    source: str | Path | Mapping[str, Any], *, base: str | Path | None = None
) -> Question:
    """Read and validate a question file, its scenario and its levers.

    Parameters
    ----------
    source
        Path to the YAML question, or a mapping of the same shape.
    base
        Folder the ``scenario`` path is relative to, for a mapping (default: the
        current folder); a file's own folder otherwise.

    Raises
    ------
    QuestionError, ScenarioError
        With one line naming the file and the key that is wrong.
    """
    if isinstance(source, Mapping):
        data: Any = dict(source)
        origin = str(data.get("name", "question"))
        folder = Path(base) if base is not None else Path.cwd()
    else:
        origin = str(source)
        folder = Path(source).parent
        data = read_yaml(source, error=QuestionError)
    if not isinstance(data, dict):
        raise QuestionError(f"{origin}: a question must be a mapping of keys")
    _not_a_scenario(data, origin)
    try:
        spec = QuestionSpec.model_validate(data)
    except ValidationError as exc:
        raise _question_error(exc, origin, data) from None
    scenario_path = folder / spec.scenario
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as exc:
        raise QuestionError(f"{origin}: scenario: {exc}") from None
    levers = []
    windows: list[list[tuple[dt.date, dt.date]]] = []
    for path, lever_spec in spec.levers.items():
        where = f"{origin}: levers.{path}"
        axis = field_axis(
            scenario,
            path,
            lever_spec.low,
            where=where,
            error=QuestionError,
            in_days=True,
        )
        if (axis.kind == "date") != isinstance(lever_spec.low, dt.date):
            kind = "a date" if axis.kind == "date" else "a number"
            raise QuestionError(
                f"{where}: the field is {kind}; low and high must be too"
            )
        _whole_numbers(axis, lever_spec, where)
        ends = []
        for end in ("low", "high"):  # the field's limits, before the grid is built
            value = axis.from_number(axis.to_number(getattr(lever_spec, end)))
            try:
                moved = scenario.with_overrides(
                    {path: axis.to_json(value)}, origin=f"{where}.{end}"
                )
            except ScenarioError as exc:
                raise QuestionError(str(exc)) from None
            ends.append((moved.start_date, moved.end_date))
        values = _grid(axis, lever_spec, where)
        levers.append(Lever(axis, values, lever_spec.label))
        windows.append(ends)
    repeated = repeated_field(scenario.to_dict(), spec.levers)
    if repeated is not None:
        raise QuestionError(
            f"{origin}: levers.{repeated[1]}: the same field as levers.{repeated[0]} "
            + NAMED_TWICE
        )
    if len(levers) == 1 and len(levers[0].values) <= CHECKED_VALUES:
        _every_value_valid(scenario, levers[0], f"{origin}: levers.{levers[0].path}")
    elif len(levers) > 1:
        _combinations_valid(scenario, levers, origin)
    if spec.objective.date is not None:
        _objective_date_within(spec.objective.date, scenario, levers, windows, origin)
    return Question(spec, scenario, tuple(levers), origin)


def _not_a_scenario(data: dict[str, Any], origin: str) -> None:
    """Refuse a scenario file given where a question belongs (``migsim decide
    scenario.yaml``): it was refused key by key, a line of "Field required"
    and "unknown key" for each, that never said what the file was. A file
    with a scenario's own keys (``cohorts``, ``capacity``, ``extends``...) and
    none of a question's is one."""
    asked, modelled = set(QuestionSpec.model_fields), set(Scenario.model_fields)
    scenario_only = (modelled - asked) | {"extends"}
    question_only = asked - modelled  # levers, objective, risk_budget...
    if data.keys() & scenario_only and not data.keys() & question_only:
        raise QuestionError(
            f"{origin}: this is a scenario file; decide takes a question file "
            "(see docs/decision-support.md)"
        )


def _every_value_valid(scenario: Scenario, lever: Lever, where: str) -> None:
    """Refuse a lever with a value between its ends that makes no scenario.

    The bisection may visit any value of the grid (and falls back to every one
    when monotonicity fails), and a field's valid values need not be an
    interval: a schedule step's date that falls on another step's makes none.
    Found mid-search, such a value was refused after the replications of the
    values before it, naming neither lever nor value. Validating a scenario
    takes 13-25 ms for the bundled question's, less than a tenth of one of
    its replications, so every value is validated here, before anything runs
    (the ends were, with messages naming low or high), up to `CHECKED_VALUES`
    of them (about 10 s at most). A longer grid, and several levers, are not:
    Optuna draws their combinations as it goes, from a product of grids too
    large to validate, and a value or combination that makes no scenario is
    refused in one line when it is drawn.
    """
    for value in lever.values[1:-1]:
        try:
            scenario.with_overrides(
                {lever.path: lever.axis.to_json(value)}, origin=where
            )
        except ScenarioError as exc:
            reason = str(exc).removeprefix(f"{where}: ")
            raise QuestionError(
                f"{where}: {lever.axis.to_json(value)}, a value between low and "
                f"high, makes no valid scenario: {reason}"
            ) from None


def _combinations_valid(scenario: Scenario, levers: list[Lever], origin: str) -> None:
    """Refuse several levers whose values make no scenario together.

    Each lever's ends were validated alone, but levers on related fields may
    be valid one by one and not together: a delay's ``low`` lever at 9 and its
    ``high`` lever at 5. Found when Optuna drew them, such a combination was
    refused after the candidates before it had run, and their store was left
    behind. Every combination is validated here when the grids' product is at
    most `CHECKED_VALUES` (what one lever's values may cost, `_every_value_valid`);
    a larger one is sampled, up to as many: its corners (the first two trials
    are two of them), then each value of each lever with the others all at
    their lows and all at their highs. A combination beyond these that makes
    no scenario is still refused when it is drawn.
    """
    grids = [lever.values for lever in levers]
    if math.prod(len(values) for values in grids) <= CHECKED_VALUES:
        combinations: Iterable[tuple[Any, ...]] = itertools.product(*grids)
    else:
        corners = itertools.product(*((values[0], values[-1]) for values in grids))
        ends = [tuple(v[0] for v in grids), tuple(v[-1] for v in grids)]
        lines = (
            end[:i] + (value,) + end[i + 1 :]
            for i, values in enumerate(grids)
            for value in values
            for end in ends
        )
        unique = dict.fromkeys(itertools.chain(corners, lines))
        combinations = itertools.islice(unique, CHECKED_VALUES)
    where = f"{origin}: levers"
    for combination in combinations:
        try:
            scenario.with_overrides(
                {
                    lever.path: lever.axis.to_json(value)
                    for lever, value in zip(levers, combination, strict=True)
                },
                origin=where,
            )
        except ScenarioError as exc:
            at = ", ".join(
                f"{lever.path} = {lever.axis.format(value)}"
                for lever, value in zip(levers, combination, strict=True)
            )
            reason = str(exc).removeprefix(f"{where}: ")
            raise QuestionError(
                f"{where}: {at} make no valid scenario together: {reason}"
            ) from None


def _objective_date_within(
    when: dt.date,
    scenario: Scenario,
    levers: list[Lever],
    windows: list[list[tuple[dt.date, dt.date]]],
    origin: str,
) -> None:
    """Refuse an objective date outside the horizon of any candidate.

    A lever on ``horizon_days`` moves the horizon's end, monotonely in its
    value, so the ends of its range bound every candidate's (``start_date``
    is refused as a lever before: `study.field_axis`).
    """
    base = (scenario.start_date, scenario.end_date)
    movers = [
        lever
        for lever, ends in zip(levers, windows, strict=True)
        if any(window != base for window in ends)
    ]
    for corner in itertools.product(*((m.values[0], m.values[-1]) for m in movers)):
        settings = {
            m.path: m.axis.to_json(v) for m, v in zip(movers, corner, strict=True)
        }
        try:
            moved = scenario.with_overrides(settings, origin=f"{origin}: levers")
        except ScenarioError:  # never a candidate: nothing is measured on it
            continue
        if not moved.start_date <= when <= moved.end_date:
            at = ", ".join(
                f"{m.path} = {m.axis.format(v)}"
                for m, v in zip(movers, corner, strict=True)
            )
            raise QuestionError(
                f"{origin}: objective.date: {when} is outside the scenario's "
                f"{moved.start_date} to {moved.end_date}"
                + (f" (with {at})" if at else "")
            )
