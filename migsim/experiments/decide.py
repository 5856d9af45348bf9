"""Decide: the best lever values whose risks stay inside a budget, with confidence.

OPSG asked DCC "on what basis will you increase volumes, and when?". A *question*
file answers it as data: a scenario, the *levers* a planner may move (any number or
date field of the scenario, addressed as in ``--set``, over ``low..high`` in
``step``), an *objective* (a figure's statistic to minimise or maximise) and a
*risk budget*: the largest quantile of a figure, or the largest probability that
a figure exceeds a threshold, that OPSG accepts.

`decide` evaluates candidate lever values with common random numbers
(replication k of every candidate uses the same streams), judges each candidate
*safe* only when every budget holds with the stated confidence, and returns the
safe candidate with the best objective (ties go to the lower risk). A budget is
judged on an upper confidence bound, never on the estimate alone:

- a chance constraint ``P(figure > exceeds) <= max_probability`` on the exact
  binomial (Clopper-Pearson) upper bound of the exceedance probability;
- a quantile budget ``p90(figure) <= max`` on a distribution-free upper bound:
  the order statistic X_(u) with the smallest u such that
  P(Binomial(n, 0.9) <= u - 1) >= confidence.

When the evidence does not yet decide a budget (its bound is above the limit but
its lower bound is not), the candidate's replications are doubled, continuing the
replication numbering, up to ``max_replications``.

One lever: a bisection for the edge of the safe range and, within it, for the
best objective, assuming risk and objective are monotone in the lever; the
assumption is then checked on every evaluated candidate and, where it fails,
every candidate on the grid is evaluated. Several levers: Optuna's TPE sampler
with constraints (see ``docs/decision-support.md`` for why).

Module flow: after ``study`` (which simulates through ``runner``), before
``sensitivity``, ``report`` and ``cli``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import stats

from migsim import __version__
from migsim.common.errors import MigsimError, QuestionError, ScenarioError
from migsim.common.yamlio import read_yaml
from migsim.experiments.study import (
    MIGRATED_BY,
    FieldAxis,
    Simulator,
    atomic_write,
    field_axis,
    fmt_date,
    statistic_of,
)
from migsim.model.scenario import Scenario, load_scenario
from migsim.output.plots import frontier_chart, plt
from migsim.results.results import FIGURES, STATISTICS, quantile

__all__ = [
    "BudgetCheck",
    "Candidate",
    "Decision",
    "Question",
    "QuestionSpec",
    "SavedDecision",
    "clopper_pearson",
    "decide",
    "is_decision_directory",
    "judge",
    "load_decision",
    "load_question",
    "quantile_bounds",
]

Statistic = Literal["mean", "p5", "p10", "p50", "p80", "p85", "p90", "p95"]
QuantileStatistic = Literal["p5", "p10", "p50", "p80", "p85", "p90", "p95"]
assert STATISTICS == ("mean", "p5", "p10", "p50", "p80", "p85", "p90", "p95")
#: The objective may also be installations migrated (incl. impaired) by a date.
#: Planners' words for figures in the answer; others are shown by name.
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
_CAP_FIELDS = ("daily_cap", "max_cap")


# --------------------------------------------------------------------------- bounds
def clopper_pearson(count: int, n: int, confidence: float) -> tuple[float, float]:
    """One-sided exact binomial bounds on a probability from ``count`` of ``n``.

    Returns ``(lower, upper)``: each holds on its own with probability at least
    ``confidence`` (Clopper-Pearson, via beta quantiles).

    >>> round(clopper_pearson(0, 200, 0.95)[1], 6)   # 1 - 0.05 ** (1 / 200)
    0.014867
    """
    if not 0 <= count <= n or n < 1:
        raise ValueError(f"need 0 <= count <= n and n >= 1, got {count} of {n}")
    upper = (
        1.0 if count == n else float(stats.beta.ppf(confidence, count + 1, n - count))
    )
    lower = (
        0.0
        if count == 0
        else float(stats.beta.ppf(1 - confidence, count, n - count + 1))
    )
    return lower, upper


def quantile_bounds(
    values: Sequence[float] | np.ndarray, q: float, confidence: float
) -> tuple[float, float]:
    """Distribution-free one-sided confidence bounds on the q-quantile.

    The upper bound is the order statistic X_(u), u the smallest index with
    P(Binomial(n, q) <= u - 1) >= confidence (+inf when no u <= n qualifies);
    the lower bound is X_(l), l the largest index with P(Binomial(n, q) >= l) >=
    confidence (-inf when none). Both hold for discrete figures too.

    >>> quantile_bounds(range(1, 30), 0.9, 0.95)     # 1 - 0.9 ** 29 = 0.953
    (23.0, 29.0)
    >>> quantile_bounds(range(1, 29), 0.9, 0.95)[1]  # 1 - 0.9 ** 28 = 0.948
    inf
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    cdf = stats.binom.cdf(np.arange(n + 1), n, q)
    reach = np.flatnonzero(cdf >= confidence - 1e-12)
    u = int(reach[0]) + 1 if len(reach) else n + 1
    upper = float(ordered[u - 1]) if u <= n else math.inf
    below = np.flatnonzero(cdf <= 1 - confidence + 1e-12)
    lower_index = int(below[-1]) + 1 if len(below) else 0
    lower = float(ordered[lower_index - 1]) if lower_index >= 1 else -math.inf
    return lower, upper


# --------------------------------------------------------------------------- schema
class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LeverSpec(_Model):
    """A field a planner may move: ``low`` to ``high`` in ``step`` (days for dates)."""

    low: dt.date | int | float
    high: dt.date | int | float
    step: Annotated[float, Field(gt=0)]
    label: str | None = (
        None  # the planner's name for it, e.g. "the cap after MCC automation"
    )

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


class BudgetSpec(_Model):
    """One risk OPSG accepts: a quantile at most ``max``, or a chance at most
    ``max_probability`` that the figure exceeds ``exceeds``."""

    figure: str
    statistic: QuantileStatistic | None = None
    max: float | None = None
    exceeds: float | None = None
    max_probability: Annotated[float, Field(ge=0.0, le=1.0)] | None = None

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
        return self

    @property
    def kind(self) -> Literal["quantile", "chance"]:
        return "chance" if self.exceeds is not None else "quantile"

    @property
    def limit(self) -> float:
        return float(self.max_probability if self.kind == "chance" else self.max)  # type: ignore[arg-type]

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
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95


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


def _grid(axis: FieldAxis, spec: LeverSpec, where: str) -> tuple[Any, ...]:
    low, high, step = axis.to_number(spec.low), axis.to_number(spec.high), spec.step
    if axis.kind in ("int", "date"):
        for name, value in (("low", low), ("high", high), ("step", step)):
            if not float(value).is_integer():
                unit = "days" if axis.kind == "date" else "numbers"
                raise QuestionError(
                    f"{where}.{name}: must be whole {unit}, got {value:g}"
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


def _question_error(exc: ValidationError, origin: str) -> QuestionError:
    messages = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        messages.append(f"{where}: {message}")
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
    try:
        spec = QuestionSpec.model_validate(data)
    except ValidationError as exc:
        raise _question_error(exc, origin) from None
    scenario_path = folder / spec.scenario
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as exc:
        raise QuestionError(f"{origin}: scenario: {exc}") from None
    levers = []
    for path, lever_spec in spec.levers.items():
        where = f"{origin}: levers.{path}"
        axis = field_axis(
            scenario, path, lever_spec.low, where=where, error=QuestionError
        )
        if (axis.kind == "date") != isinstance(lever_spec.low, dt.date):
            kind = "a date" if axis.kind == "date" else "a number"
            raise QuestionError(
                f"{where}: the field is {kind}; low and high must be too"
            )
        values = _grid(axis, lever_spec, where)
        for end in ("low", "high"):
            value = values[0] if end == "low" else values[-1]
            try:
                scenario.with_overrides(
                    {path: axis.to_json(value)}, origin=f"{where}.{end}"
                )
            except ScenarioError as exc:
                raise QuestionError(str(exc)) from None
        levers.append(Lever(axis, values, lever_spec.label))
    objective = spec.objective
    if objective.date is not None and not (
        scenario.start_date <= objective.date <= scenario.end_date
    ):
        raise QuestionError(
            f"{origin}: objective.date: {objective.date} is outside the scenario's "
            f"{scenario.start_date} to {scenario.end_date}"
        )
    return Question(spec, scenario, tuple(levers), origin)


# --------------------------------------------------------------------------- judging
@dataclass(frozen=True)
class BudgetCheck:
    """One budget judged on one candidate's replications.

    ``status``: ``within`` (the upper bound is within the limit), ``broken`` (the
    estimate is over it) or ``unproven`` (the estimate is within, the bound is not).
    """

    budget: BudgetSpec
    replications: int
    estimate: float
    lower: float
    bound: float
    count: int | None  # chance budgets: replications exceeding the threshold

    @property
    def label(self) -> str:
        return self.budget.label

    @property
    def limit(self) -> float:
        return self.budget.limit

    @property
    def status(self) -> Literal["within", "broken", "unproven"]:
        if self.bound <= self.limit:
            return "within"
        return "broken" if self.estimate > self.limit else "unproven"

    def usage(self, value: float | None = None) -> float:
        """A value (default: the estimate) as a share of the limit (for ranking)."""
        value = self.estimate if value is None else value
        if self.limit > 0:
            return value / self.limit
        return value - self.limit

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "figure": self.budget.figure}
        if self.budget.kind == "chance":
            out.update(
                exceeds=_json(self.budget.exceeds),
                max_probability=_json(self.limit),
                exceedances=self.count,
            )
        else:
            out.update(statistic=self.budget.statistic, max=_json(self.limit))
        out.update(
            estimate=_json(self.estimate),
            bound=_json(self.bound),
            lower=_json(self.lower),
            status=self.status,
            replications=self.replications,
        )
        return out


def judge(
    frame: pd.DataFrame, budgets: Sequence[BudgetSpec], confidence: float
) -> tuple[BudgetCheck, ...]:
    """Judge each budget on a candidate's per-replication figures."""
    checks = []
    n = len(frame)
    for budget in budgets:
        values = frame[budget.figure].to_numpy(dtype=float)
        if budget.kind == "chance":
            count = int((values > float(budget.exceeds)).sum())  # type: ignore[arg-type]
            lower, upper = clopper_pearson(count, n, confidence)
            checks.append(BudgetCheck(budget, n, count / n, lower, upper, count))
        else:
            q = int(str(budget.statistic)[1:]) / 100
            lower, upper = quantile_bounds(values, q, confidence)
            checks.append(
                BudgetCheck(budget, n, quantile(values, q), lower, upper, None)
            )
    return tuple(checks)


@dataclass
class Candidate:
    """One evaluated set of lever values: its replications' figures and verdict."""

    index: int
    levers: dict[str, Any]
    frame: pd.DataFrame = field(repr=False)
    checks: tuple[BudgetCheck, ...]
    common: int  # replications every candidate has (the first `common`)

    @property
    def replications(self) -> int:
        return len(self.frame)

    @property
    def safe(self) -> bool:
        return all(check.status == "within" for check in self.checks)

    @property
    def broke(self) -> list[BudgetCheck]:
        """The budgets it broke (estimate over the limit), else those not shown met.

        A candidate stopped at the screen because one budget was surely over
        has the others undecided; those are not what broke it.
        """
        broken = [check for check in self.checks if check.status == "broken"]
        return broken or [check for check in self.checks if check.status != "within"]

    def statistic(self, figure: str, name: str, *, common: bool = False) -> float:
        values = self.frame[figure].to_numpy(dtype=float)
        return statistic_of(values[: self.common] if common else values, name)

    def risk_key(self) -> tuple[float, float]:
        """Lower is less risky: the largest share of a budget used, then the sum."""
        shares = [check.usage() for check in self.checks]
        return (max(shares), sum(shares))

    def unsafe_key(self) -> tuple[int, float, float]:
        """Lower is less unsafe: budgets broken, then bounds as shares of limits."""
        shares = [check.usage(check.bound) for check in self.checks]
        not_met = sum(check.status != "within" for check in self.checks)
        return (not_met, max(shares), sum(shares))


def _key(levers: Mapping[str, Any]) -> str:
    return json.dumps(
        {k: _json_value(v) for k, v in sorted(levers.items())}, sort_keys=True
    )


# --------------------------------------------------------------------------- store
class _Store:
    """Finished replication batches of each candidate, kept so a killed decide resumes.

    ``manifest.json`` holds the definition (question and scenario hashes, seed,
    counts, version) and, per candidate, its lever values and finished batches;
    each batch is ``points/<candidate key>-<first>-<n>.parquet``, written
    atomically. A store of another definition is refused unless ``fresh``.
    """

    def __init__(
        self, directory: str | Path | None, definition: dict[str, Any], fresh: bool
    ):
        self.directory = None if directory is None else Path(directory)
        self.definition = definition
        self.manifest: dict[str, Any] = {"definition": definition, "candidates": {}}
        if self.directory is None:
            return
        manifest = self.directory / "manifest.json"
        if manifest.exists():
            old = json.loads(manifest.read_text(encoding="utf-8"))
            if fresh:
                for path in (self.directory / "points").glob("*.parquet"):
                    path.unlink()
            elif old.get("definition") != definition:
                changed = sorted(
                    k
                    for k in definition | old.get("definition", {})
                    if definition.get(k) != old.get("definition", {}).get(k)
                )
                raise MigsimError(
                    f"{self.directory}: holds a decision with another "
                    f"{', '.join(changed)} (use --fresh to start over)"
                )
            else:
                self.manifest = old
        elif self.directory.exists() and any(self.directory.iterdir()):
            raise MigsimError(
                f"{self.directory}: exists and is not a decide directory "
                "(choose another)"
            )
        (self.directory / "points").mkdir(parents=True, exist_ok=True)
        self._save_manifest()

    def _file(self, key: str, first: int, n: int) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        assert self.directory is not None
        return self.directory / "points" / f"{digest}-{first}-{n}.parquet"

    def get(self, key: str, first: int, n: int) -> pd.DataFrame | None:
        if self.directory is None:
            return None
        path = self._file(key, first, n)
        return pd.read_parquet(path) if path.exists() else None

    def put(
        self, key: str, levers: dict[str, Any], first: int, n: int, frame: pd.DataFrame
    ) -> None:
        if self.directory is None:
            return
        path = self._file(key, first, n)
        atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
        entry = self.manifest["candidates"].setdefault(
            key,
            {"levers": {k: _json_value(v) for k, v in levers.items()}, "batches": []},
        )
        entry["batches"].append(
            {
                "first_replication": first,
                "replications": n,
                "file": f"points/{path.name}",
            }
        )
        self._save_manifest()

    def _save_manifest(self) -> None:
        assert self.directory is not None
        text = json.dumps(self.manifest, indent=2) + "\n"
        atomic_write(
            self.directory / "manifest.json",
            lambda tmp: tmp.write_text(text, encoding="utf-8"),
        )


# --------------------------------------------------------------------------- evaluation
#: The smallest screen worth taking: below it every candidate gets ``-n`` at once.
_MIN_SCREEN = 30


class _Evaluator:
    """Evaluates candidates with common random numbers and sequential doubling.

    Each candidate first runs a *screen* of a quarter of ``replications`` (when
    that is at least 30): if a budget is then already surely broken (its lower
    bound over the limit) the candidate is unsafe and costs no more. Otherwise
    it runs to ``replications`` (every candidate that may be safe has those, the
    common random numbers the objective is compared on) and, while a budget is
    undecided, doubles up to ``max_replications``, continuing the numbering.
    """

    def __init__(
        self,
        question: Question,
        seed: int,
        replications: int,
        max_replications: int,
        simulator: Simulator,
        store: _Store,
        progress: Callable[[Candidate], None] | None,
    ):
        self.question = question
        self.seed = seed
        self.replications = replications
        self.max_replications = max_replications
        self.simulator = simulator
        self.store = store
        self.progress = progress
        self.candidates: dict[str, Candidate] = {}
        self.spent = 0
        # a screen of a quarter of the replications settles surely unsafe candidates
        quarter = replications // 4
        self.screen = quarter if quarter >= _MIN_SCREEN else replications

    @property
    def evaluated(self) -> list[Candidate]:
        return sorted(self.candidates.values(), key=lambda c: c.index)

    def one(self, levers: Mapping[str, Any]) -> Candidate:
        return self.many([levers])[0]

    def many(self, many: Sequence[Mapping[str, Any]]) -> list[Candidate]:
        """Evaluate candidates together (their batches share the workers)."""
        todo: dict[str, dict[str, Any]] = {}
        for levers in many:
            key = _key(levers)
            if key not in self.candidates and key not in todo:
                todo[key] = dict(levers)
        frames: dict[str, pd.DataFrame] = {}
        wanted = {key: (0, self.screen) for key in todo}
        migrated_by = self.question.objective.date
        while wanted:
            missing = []
            for key, (first, n) in wanted.items():
                stored = self.store.get(key, first, n)
                if stored is not None:
                    frames[key] = _concat(frames.get(key), stored)
                else:
                    missing.append(key)
            jobs = [
                (self.question.scenario_at(todo[key]), self.seed, *wanted[key])
                for key in missing
            ]
            for key, frame in zip(
                missing, self.simulator.run(jobs, migrated_by), strict=True
            ):
                first, n = wanted[key]
                self.store.put(key, todo[key], first, n, frame)
                frames[key] = _concat(frames.get(key), frame)
            self.spent += sum(n for _, n in wanted.values())
            wanted = {}
            for key, frame in frames.items():
                if key in self.candidates:
                    continue
                checks = judge(frame, self.question.budgets, self.question.confidence)
                n = len(frame)
                surely_over = any(c.lower > c.limit for c in checks)
                if n < self.replications and not surely_over:
                    wanted[key] = (n, self.replications - n)  # past the screen
                    continue
                settled = surely_over or all(c.status == "within" for c in checks)
                if settled or n >= self.max_replications:
                    candidate = Candidate(
                        len(self.candidates),
                        todo[key],
                        frame,
                        checks,
                        self.replications,
                    )
                    self.candidates[key] = candidate
                    if self.progress is not None:
                        self.progress(candidate)
                else:
                    wanted[key] = (n, min(2 * n, self.max_replications) - n)
        return [self.candidates[_key(levers)] for levers in many]


def _concat(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    return (
        new.reset_index(drop=True)
        if old is None
        else pd.concat([old, new], ignore_index=True)
    )


# --------------------------------------------------------------------------- search
@dataclass(frozen=True)
class Search:
    """How the candidates were chosen, and whether monotonicity held where assumed."""

    method: str
    monotone: bool | None
    note: str


def _objective_key(question: Question, candidate: Candidate) -> float:
    """Lower is better: the objective on the replications every candidate has."""
    value = candidate.statistic(
        question.objective.figure, question.objective.statistic, common=True
    )
    return value if question.objective.direction == "minimise" else -value


def _search_one(ev: _Evaluator, lever: Lever) -> Search:
    """Bisection on a monotone lever, checked; every grid value where it fails."""
    grid = lever.values
    path = lever.path
    last = len(grid) - 1

    def at(i: int) -> Candidate:
        return ev.one({path: grid[i]})

    def objective(i: int) -> float:
        return _objective_key(ev.question, at(i))

    if last == 0:
        at(0)
        return Search("single", None, "the lever's range holds one value")
    ev.many([{path: grid[0]}, {path: grid[last]}])
    safe_low, safe_high = at(0).safe, at(last).safe
    region: tuple[int, int] | None = None
    if safe_low != safe_high:
        inside, outside = (0, last) if safe_low else (last, 0)
        while abs(outside - inside) > 1:
            middle = (inside + outside) // 2
            if at(middle).safe:
                inside = middle
            else:
                outside = middle
        region = (0 if safe_low else last, inside)
        _probe(ev, lever, outside, last if safe_low else 0)
    elif safe_low:
        region = (0, last)
    else:
        _probe(ev, lever, 0, last)
    if region is not None and region[0] != region[1]:
        end, edge = region
        inward = edge - 1 if edge > end else edge + 1
        if objective(edge) < objective(end) and objective(inward) == objective(edge):
            # the best is at the edge and ties inward: the lowest risk among the
            # ties is the tied value farthest from the edge (monotone objective)
            worse, equal = end, inward
            while abs(equal - worse) > 1:
                middle = (worse + equal) // 2
                if objective(middle) == objective(edge):
                    equal = middle
                else:
                    worse = middle
    problems = _monotone_problems(ev, lever)
    if not problems:
        return Search(
            "bisection",
            True,
            "risk and objective were monotone in the lever over every "
            "evaluated candidate",
        )
    verdicts_ok = "verdicts" not in problems[0]
    indices = range(len(grid))
    if verdicts_ok and region is not None:
        low, high = sorted(region)
        indices = range(low, high + 1)
    ev.many([{path: grid[i]} for i in indices])
    where = "the safe range" if verdicts_ok and region is not None else "the whole grid"
    return Search(
        "exhaustive", False, f"{'; '.join(problems)}: evaluated every value in {where}"
    )


def _probe(ev: _Evaluator, lever: Lever, first: int, last: int) -> None:
    """Check a range monotonicity says is unsafe at its thirds (not yet evaluated)."""
    low, high = sorted((first, last))
    span = high - low
    picks = sorted({low + round(span * k / 3) for k in (1, 2)} - {low, high})
    ev.many([{lever.path: lever.values[i]} for i in picks])


def _monotone_problems(ev: _Evaluator, lever: Lever) -> list[str]:
    """What contradicts monotonicity among the evaluated candidates, if anything."""
    ordered = sorted(
        ev.evaluated, key=lambda c: lever.axis.to_number(c.levers[lever.path])
    )
    problems = []
    verdicts = [c.safe for c in ordered]
    if verdicts != sorted(verdicts) and verdicts != sorted(verdicts, reverse=True):
        problems.append(
            "verdicts were not monotone in the lever (a safe value lies "
            "beyond an unsafe one)"
        )
    keys = [_objective_key(ev.question, c) for c in ordered if c.safe]
    if keys != sorted(keys) and keys != sorted(keys, reverse=True):
        problems.append("the objective was not monotone in the lever over safe values")
    return problems


def _search_many(ev: _Evaluator, trials: int, seed: int, sampler: str) -> Search:
    """Optuna with constraints over the lever grids (indices, so steps are kept)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    levers = ev.question.levers

    if sampler == "nsga2":
        chosen: optuna.samplers.BaseSampler = optuna.samplers.NSGAIISampler(seed=seed)
    else:
        chosen = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, n_startup_trials=max(4, min(10, trials // 3))
        )
    study = optuna.create_study(direction="minimize", sampler=chosen)
    study.enqueue_trial({lever.path: 0 for lever in levers})
    study.enqueue_trial({lever.path: len(lever.values) - 1 for lever in levers})

    def objective(trial: optuna.trial.Trial) -> float:
        values = {
            lever.path: lever.values[
                trial.suggest_int(lever.path, 0, len(lever.values) - 1)
            ]
            for lever in levers
        }
        candidate = ev.one(values)
        for check in candidate.checks:  # feasible when <= 0
            trial.set_constraint(
                check.label,
                _finite(check.usage(check.bound) - check.usage(check.limit)),
            )
        return _finite(_objective_key(ev.question, candidate))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=trials)
    name = "NSGA-II" if sampler == "nsga2" else "TPE"
    return Search(
        f"optuna-{sampler}",
        None,
        f"Optuna {name} with constraints, {trials} trials over the lever grids",
    )


def _finite(value: float) -> float:
    return float(np.clip(value, -1e12, 1e12))


# --------------------------------------------------------------------------- decision
@dataclass
class Decision:
    """The answer to a question, with every evaluated candidate and the evidence."""

    question: Question
    candidates: list[Candidate]
    answer: Candidate | None
    least_unsafe: Candidate | None
    beyond: Candidate | None
    search: Search
    seed: int
    replications: int
    max_replications: int
    spent: int
    screen: int
    timing: dict[str, Any]

    # ------------------------------------------------------------------ text
    def _levers_phrase(self, candidate: Candidate, verb: bool) -> str:
        parts: list[str] = []
        for lever in self.question.levers:
            value = candidate.levers[lever.path]
            name = lever.label or _lever_name(lever.path)
            if verb:
                current = lever.axis.current
                try:
                    word = (
                        "Raise"
                        if value > current
                        else "Lower"
                        if value < current
                        else "Keep"
                    )
                except TypeError:
                    word = "Set"
                preposition = "at" if word == "Keep" else "to"
                word = word if not parts else word.lower()
                parts.append(f"{word} {name} {preposition} {lever.phrase(value)}")
            else:
                parts.append(
                    f"{name} {lever.phrase(value)}"
                    if len(self.question.levers) > 1 or lever.label
                    else lever.phrase(value)
                )
        return ", ".join(parts)

    def _clearance(self, candidate: Candidate) -> str:
        parts = []
        for name in ("p50", "p90"):
            day = candidate.statistic("clearance_day", name)
            when = (
                f"after {fmt_date(self.question.scenario.end_date)}"
                if not math.isfinite(day)
                else fmt_date(self.question.scenario.date_of(int(day)))
            )
            parts.append(f"{when} ({name.upper()})")
        return "the backlog clears by " + ", ".join(parts)

    def _objective_text(self, candidate: Candidate) -> str:
        objective = self.question.objective
        if objective.figure == "clearance_day":
            return ""
        value = candidate.statistic(objective.figure, objective.statistic)
        what = (
            f"migrated by {fmt_date(objective.date)}"
            if objective.date
            else PHRASES.get(objective.figure, objective.figure)
        )
        return f"; {what} {objective.statistic.upper()} {_fmt_number(value)}"

    def _check_text(self, check: BudgetCheck, terse: bool = False) -> str:
        budget = check.budget
        level = f"{self.question.confidence:.0%}"
        what = PHRASES.get(budget.figure, budget.figure)
        if budget.kind == "chance":
            head = f"P(more than {budget.exceeds:,g} {what})"
            est, bound, limit = (
                f"{check.estimate:.1%}",
                f"{check.bound:.1%}",
                _pct(check.limit),
            )
        else:
            head = f"{what} {str(budget.statistic).upper()}"
            est, bound, limit = (
                _fmt_number(check.estimate),
                _fmt_number(check.bound),
                _fmt_number(check.limit),
            )
        if terse:
            return f"{head} {est} (bound {bound})"
        verdict = {
            "within": f"within the {limit} budget",
            "broken": f"over the {limit} budget",
            "unproven": f"not shown within the {limit} budget",
        }[check.status]
        return f"{head} {est} ({level} bound {bound}), {verdict}."

    def text(self) -> str:
        """The answer in the planners' words."""
        q = self.question
        lines = [
            f"{q.name}: {len(self.candidates)} candidates evaluated, {self.spent:,} "
            f"replications (seed {self.seed}), every budget at "
            f"{q.confidence:.0%} confidence",
            "",
        ]
        if self.answer is not None:
            a = self.answer
            lines.append(
                f"{self._levers_phrase(a, True)}: {self._clearance(a)}"
                f"{self._objective_text(a)}."
            )
            lines += [f"  {self._check_text(check)}" for check in a.checks]
            if self.beyond is not None:
                broke = "; ".join(
                    self._check_text(c, terse=True) for c in self.beyond.broke
                )
                lines.append(
                    f"{self._levers_phrase(self.beyond, False)} breaks it: {broke}."
                )
            else:
                where = (
                    "every value in the lever's range is within the budget"
                    if len(q.levers) == 1
                    else "no candidate evaluated with as good an objective is unsafe"
                )
                lines.append(f"Nothing beyond it breaks a budget: {where}.")
        else:
            lines.append(
                f"No candidate is safe: none of the {len(self.candidates)} "
                f"evaluated meets every budget at {q.confidence:.0%} "
                "confidence, so there is no answer."
            )
            if self.least_unsafe is not None:
                lu = self.least_unsafe
                lines.append(
                    f"The least unsafe is {self._levers_phrase(lu, False)}: "
                    f"{self._clearance(lu)}."
                )
                lines += [f"  {self._check_text(check)}" for check in lu.checks]
        lines += ["", f"Search: {self.search.method}; {self.search.note}."]
        return "\n".join(lines)

    # ------------------------------------------------------------------ data
    def _candidate_dict(self, candidate: Candidate | None) -> dict[str, Any] | None:
        if candidate is None:
            return None
        objective = self.question.objective
        return {
            "candidate": candidate.index,
            "levers": {k: _json_value(v) for k, v in candidate.levers.items()},
            "replications": candidate.replications,
            "safe": candidate.safe,
            "objective": _json(
                candidate.statistic(objective.figure, objective.statistic)
            ),
            "clearance_date": {
                name: self._date_or_after(candidate.statistic("clearance_day", name))
                for name in ("p50", "p90")
            },
            "budgets": [check.to_dict() for check in candidate.checks],
            "broke": [check.label for check in candidate.broke],
        }

    def _shown(self) -> Candidate:
        """The answer, or the least unsafe when there is none."""
        shown = self.answer or self.least_unsafe
        assert shown is not None, "a decision evaluates at least one candidate"
        return shown

    def _date_or_after(self, day: float) -> str:
        sc = self.question.scenario
        return (
            sc.date_of(int(day)).isoformat()
            if math.isfinite(day)
            else f"after {sc.end_date.isoformat()}"
        )

    def to_dict(self) -> dict[str, Any]:
        """What decision.json holds."""
        q = self.question
        answer = self.answer
        objective = q.objective
        return {
            "question": q.name,
            "answer": None
            if answer is None
            else {k: _json_value(v) for k, v in answer.levers.items()},
            "least_unsafe": self._candidate_dict(self.least_unsafe),
            "objective": {
                "figure": objective.figure,
                "statistic": objective.statistic,
                "direction": objective.direction,
                "date": None if objective.date is None else objective.date.isoformat(),
                "value": None
                if answer is None
                else _json(answer.statistic(objective.figure, objective.statistic)),
            },
            "budgets": [c.to_dict() for c in self._shown().checks],
            "confidence": q.confidence,
            "answer_candidate": self._candidate_dict(answer),
            "next_candidate": self._candidate_dict(self.beyond),
            "text": self.text(),
            "search": {
                "method": self.search.method,
                "monotone": self.search.monotone,
                "note": self.search.note,
            },
            "candidates_evaluated": len(self.candidates),
            "seed": self.seed,
            "replications": {
                "screen": self.screen,
                "initial": self.replications,
                "max": self.max_replications,
                "answer": None if answer is None else answer.replications,
                "spent": self.spent,
            },
            "migsim_version": __version__,
            "question_sha256": q.sha256,
            "scenario_sha256": q.scenario.sha256,
            "levers": {
                lever.path: {
                    "low": _json_value(lever.values[0]),
                    "high": _json_value(lever.values[-1]),
                    "candidates": len(lever.values),
                }
                for lever in q.levers
            },
            "timing": self.timing,
        }

    def candidates_frame(self) -> pd.DataFrame:
        """One row per evaluated candidate: levers, figures, bounds and verdict."""
        q = self.question
        objective = q.objective
        rows = []
        for c in self.candidates:
            row: dict[str, Any] = {"candidate": c.index}
            row.update({k: _json_value(v) for k, v in c.levers.items()})
            row["replications"] = c.replications
            row[objective.label] = c.statistic(objective.figure, objective.statistic)
            for name in ("p50", "p90"):
                row.setdefault(
                    f"clearance_day_{name}", c.statistic("clearance_day", name)
                )
            for check in c.checks:
                row[check.label] = check.estimate
                row[f"{check.label}_bound"] = check.bound
                row[f"{check.label}_status"] = check.status
            row["verdict"] = "safe" if c.safe else "unsafe"
            row["broke"] = ";".join(check.label for check in c.broke)
            row["is_answer"] = self.answer is not None and c.index == self.answer.index
            rows.append(row)
        return pd.DataFrame(rows)

    def frontier(self):
        """Objective against each risk figure over the candidates (a Figure)."""
        q = self.question
        budgets = [(b.label, b.limit, _budget_axis_label(b)) for b in q.budgets]
        return frontier_chart(
            self.candidates_frame(),
            q.objective.label,
            budgets,
            f"{q.name}: candidates at {q.confidence:.0%} confidence",
        )

    def write(self, directory: str | Path) -> Path:
        """Write decision.json, candidates.csv, frontier.png, question.yaml and
        scenario.yaml into ``directory`` (each file atomically)."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        atomic_write(
            target / "decision.json", lambda tmp: tmp.write_text(text, encoding="utf-8")
        )
        frame = self.candidates_frame()
        atomic_write(
            target / "candidates.csv", lambda tmp: frame.to_csv(tmp, index=False)
        )
        figure = self.frontier()
        atomic_write(
            target / "frontier.png",
            lambda tmp: figure.savefig(tmp, dpi=110, format="png"),
        )
        plt.close(figure)
        atomic_write(
            target / "question.yaml",
            lambda tmp: tmp.write_text(self.question.to_yaml(), encoding="utf-8"),
        )
        atomic_write(
            target / "scenario.yaml",
            lambda tmp: tmp.write_text(
                self.question.scenario.to_yaml(), encoding="utf-8"
            ),
        )
        return target


def _lever_name(path: str) -> str:
    """A lever in planners' words where the path is a known kind, else the path."""
    parts = path.split(".")
    if path == "capacity.daily_cap":
        return "the daily cap (capacity.daily_cap)"
    if len(parts) == 4 and parts[:2] == ["capacity", "rules"] and parts[3] == "max_cap":
        return f"the cap rule {parts[2]} may reach ({path})"
    return path


def _budget_axis_label(budget: BudgetSpec) -> str:
    if budget.kind == "chance":
        return f"P({budget.figure} > {budget.exceeds:,g})"
    return f"{budget.figure} {str(budget.statistic).upper()}"


# --------------------------------------------------------------------------- saved
@dataclass(frozen=True)
class SavedDecision:
    """A decision read back from its directory (what a report renders).

    Attributes
    ----------
    directory
        Where ``decision.json``, ``candidates.csv`` and ``frontier.png`` are.
    data
        ``decision.json`` as a dict.
    candidates
        ``candidates.csv`` as a frame.
    frontier_png
        The bytes of ``frontier.png``.
    """

    directory: Path
    data: dict[str, Any]
    candidates: pd.DataFrame
    frontier_png: bytes


def is_decision_directory(path: str | Path) -> bool:
    """Whether ``path`` holds a finished decision (``decision.json`` and friends)."""
    folder = Path(path)
    return folder.is_dir() and all(
        (folder / name).exists()
        for name in ("decision.json", "candidates.csv", "frontier.png")
    )


def load_decision(path: str | Path) -> SavedDecision:
    """Read a finished decision directory written by `Decision.write`.

    Raises
    ------
    MigsimError
        When the directory does not hold a finished decision.
    """
    folder = Path(path)
    if not is_decision_directory(folder):
        raise MigsimError(
            f"{path}: not a decision directory (no decision.json, candidates.csv "
            "and frontier.png; run migsim decide -o first)"
        )
    data = json.loads((folder / "decision.json").read_text(encoding="utf-8"))
    return SavedDecision(
        folder,
        data,
        pd.read_csv(folder / "candidates.csv"),
        (folder / "frontier.png").read_bytes(),
    )


# --------------------------------------------------------------------------- entry
def decide(
    question: Question | str | Path,
    replications: int = 200,
    seed: int | None = None,
    workers: int = 1,
    *,
    max_replications: int | None = None,
    trials: int = 40,
    sampler: Literal["tpe", "nsga2"] = "tpe",
    directory: str | Path | None = None,
    fresh: bool = False,
    scheduler: str | None = None,
    progress: Callable[[Candidate], None] | None = None,
) -> Decision:
    """Find the best lever values whose risks stay inside the budget.

    Parameters
    ----------
    question
        A `Question`, or the path of a question file.
    replications
        Replications every candidate gets first (the common random numbers).
    seed
        Run seed; ``None`` takes the scenario's own.
    workers
        Processes; results do not depend on it.
    max_replications
        A candidate whose evidence is not decisive gets its replications doubled
        up to this many (default: 4 x ``replications``).
    trials
        Several levers: how many Optuna trials.
    sampler
        Several levers: ``tpe`` (default) or ``nsga2``.
    directory
        Where finished batches are stored (``manifest.json``, ``points/``), so a
        killed run resumes; ``None`` keeps them in memory.
    fresh
        Discard a store of another definition instead of refusing it.
    scheduler
        Address of a running Dask scheduler (``tcp://HOST:PORT``) to run the
        batches on instead; results are identical.
    progress
        Called with each candidate once it is judged.

    Returns
    -------
    Decision

    Raises
    ------
    QuestionError, ScenarioError, MigsimError
        Bad input, or a store of another definition.
    """
    if not isinstance(question, Question):
        question = load_question(question)
    if replications < 1:
        raise ValueError("replications must be at least 1")
    max_replications = (
        4 * replications if max_replications is None else max_replications
    )
    if max_replications < replications:
        raise MigsimError(
            f"--max-replications ({max_replications}) is below -n ({replications})"
        )
    seed = question.scenario.seed if seed is None else int(seed)
    definition = {
        "question_sha256": question.sha256,
        "scenario_sha256": question.scenario.sha256,
        "seed": seed,
        "replications": replications,
        "max_replications": max_replications,
        "migsim_version": __version__,
    }
    if len(question.levers) > 1:
        definition |= {"trials": trials, "sampler": sampler}
    store = _Store(directory, definition, fresh)
    started = time.perf_counter()
    with Simulator(workers, scheduler=scheduler) as simulator:
        ev = _Evaluator(
            question, seed, replications, max_replications, simulator, store, progress
        )
        if len(question.levers) == 1:
            search = _search_one(ev, question.levers[0])
        else:
            search = _search_many(ev, trials, seed, sampler)
    candidates = ev.evaluated
    answer, least, beyond = _choose(question, candidates)
    timing = {"seconds": round(time.perf_counter() - started, 3), "workers": workers}
    return Decision(
        question,
        candidates,
        answer,
        least,
        beyond,
        search,
        seed,
        replications,
        max_replications,
        ev.spent,
        ev.screen,
        timing,
    )


def _choose(
    question: Question, candidates: list[Candidate]
) -> tuple[Candidate | None, Candidate | None, Candidate | None]:
    """The answer, the least unsafe (when there is no answer) and the next beyond."""
    safe = [c for c in candidates if c.safe]
    if not safe:
        least = min(candidates, key=lambda c: (c.unsafe_key(), c.index))
        return None, least, None
    answer = min(
        safe, key=lambda c: (_objective_key(question, c), c.risk_key(), c.index)
    )
    best = _objective_key(question, answer)
    unsafe = [c for c in candidates if not c.safe]
    if len(question.levers) == 1:
        beyond_pool = unsafe  # the step (beyond the answer) that breaks a budget
    else:
        beyond_pool = [c for c in unsafe if _objective_key(question, c) <= best]
    if not beyond_pool:
        return answer, None, None

    def distance(c: Candidate) -> float:
        total = 0.0
        for lever in question.levers:
            span = (
                lever.axis.to_number(lever.values[-1])
                - lever.axis.to_number(lever.values[0])
                or 1.0
            )
            total += (
                (
                    lever.axis.to_number(c.levers[lever.path])
                    - lever.axis.to_number(answer.levers[lever.path])
                )
                / span
            ) ** 2
        return total

    return (
        answer,
        None,
        min(
            beyond_pool,
            key=lambda c: (distance(c), _objective_key(question, c), c.index),
        ),
    )


# --------------------------------------------------------------------------- format
def _fmt_number(value: float) -> str:
    if not math.isfinite(value):
        return "unbounded" if value > 0 else "-"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


def _pct(value: float) -> str:
    return f"{value * 100:.3g}%"


def _json(value: float | None) -> float | int | None:
    if value is None or not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else round(float(value), 6)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value
