"""Judging and searching candidates: budgets' bounds, the evaluator, the search.

Every candidate (a set of lever values) runs with common random numbers:
replication k of every candidate uses the same streams. A budget is judged on a
one-sided confidence bound (`clopper_pearson` for a chance, `quantile_bounds`
for a quantile), never on the estimate alone. `_Evaluator` screens, completes
and doubles a candidate's replications until its budgets are decided, keeping
finished batches in the resumable store (`migsim.common.store.Store`, shared
with sweeps); `_search_one` bisects one lever and `_search_many` lets Optuna
search several. The bounds themselves live in `migsim.common.stats`.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from migsim.common.cdfs import norm_cdf, norm_ppf
from migsim.common.errors import MigsimError
from migsim.common.stats import clopper_pearson, quantile, quantile_bounds
from migsim.common.stats import json_number as _json
from migsim.common.stats import json_value as _json_value
from migsim.common.store import SOURCE, Store
from migsim.experiments.question import BudgetSpec, Lever, Question
from migsim.experiments.study import Simulator, statistic_of
from migsim.model.scenario import Scenario

__all__ = [
    "BudgetCheck",
    "Candidate",
    "Looks",
    "Search",
    "clopper_pearson",
    "judge",
    "quantile_bounds",
    "verdict_words",
]


# --------------------------------------------------------------------------- judging
@dataclass(frozen=True)
class BudgetCheck:
    """One budget judged on one candidate's replications.

    ``status``: ``within`` (the upper bound is within the limit), ``broken`` (the
    estimate is over it) or ``unproven``
    (the estimate is within, the upper bound is not: it cannot be shown within
    at the stated confidence, nor shown over).
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
        if self.estimate > self.limit:
            return "broken"
        return "unproven"

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


def verdict_words(statuses: Iterable[str]) -> str:
    """A candidate's verdict from its budgets' statuses: ``safe`` (every one
    within), ``unsafe`` (one broken) or ``not shown safe`` (none broken, one
    unproven). The CLI, the report and `Candidate.verdict` all say it so."""
    seen = set(statuses)
    if seen <= {"within"}:
        return "safe"
    return "unsafe" if "broken" in seen else "not shown safe"


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
        """The budgets it broke: status ``broken`` (estimate over the limit).

        One rule for every candidate; a budget whose estimate is within but
        whose upper bound is not is in `unproven`, never here.
        """
        return [check for check in self.checks if check.status == "broken"]

    @property
    def unproven(self) -> list[BudgetCheck]:
        """The budgets not shown within (estimate within, upper bound over)."""
        return [check for check in self.checks if check.status == "unproven"]

    @property
    def verdict(self) -> str:
        """``safe``, ``unsafe`` or ``not shown safe`` (`verdict_words`)."""
        return verdict_words(check.status for check in self.checks)

    @property
    def not_met(self) -> list[BudgetCheck]:
        """Every budget that keeps it from being safe: broken, then unproven."""
        return self.broke + self.unproven

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
def _batch(key: str, first: int, n: int) -> str:
    """The store's name for a batch of a candidate's replications."""
    return f"{hashlib.sha256(key.encode()).hexdigest()[:16]}-{first}-{n}"


def _keep(
    store: Store,
    key: str,
    levers: Mapping[str, Any],
    first: int,
    n: int,
    frame: pd.DataFrame,
) -> None:
    """Keep a finished batch; the manifest lists each candidate's batches."""
    if store.put(_batch(key, first, n), frame) is not None:
        _list(store, key, levers, first, n)


def _list(
    store: Store, key: str, levers: Mapping[str, Any], first: int, n: int
) -> None:
    """List a kept batch in the manifest, once: a batch read back that a kill
    stopped from being listed (its file was in place, the manifest not yet
    saved) is listed when it is read, where a run never killed listed it."""
    entry = store.manifest["candidates"].setdefault(
        key, {"levers": {k: _json_value(v) for k, v in levers.items()}, "batches": []}
    )
    name = _batch(key, first, n)
    batch = {
        "first_replication": first,
        "replications": n,
        "file": f"points/{store.path(name).name}",
        SOURCE: store.source(name),  # the code that computed it
    }
    listed = [b for b in entry["batches"] if b.get("file") == batch["file"]]
    if not listed:
        entry["batches"].append(batch)
        store.save()
    elif listed[0] != batch:  # listed by a migsim that did not record its code
        listed[0].update(batch)
        store.save()


# --------------------------------------------------------------------------- looks
#: The smallest screen worth taking: below it every candidate gets ``-n`` at once.
_MIN_SCREEN = 30
#: A doubling is not run when some undecided budget's conditional power (the
#: chance that it ends proven within, `Looks.futile`) is below this.
FUTILITY = 0.05


@dataclass(frozen=True)
class Looks:
    """When a candidate's budgets are judged, and at what confidence each time.

    A candidate is judged at its *screen* (a quarter of ``replications``, when
    that is at least 30; only a surely broken budget settles it there), then at
    ``replications`` and, while undecided, at each doubling up to
    ``max_replications``. Each judging is a look at the evidence, and a budget
    sitting exactly at its limit would be declared met by *some* look more
    often than by one: so the error 1 - confidence is spent over the looks
    that can declare a candidate safe (`sizes`): half of it at the first,
    where most candidates are decided, the other half shared by the doublings
    (all of it when there is one look). By Bonferroni, the chance of declaring
    such a budget met at any look stays within 1 - confidence. A budget is
    *surely broken* on its lower bound, at 1 - (1 - confidence) / `count` at
    every look, the screen included: the same guarantee the other way.

    A candidate is not doubled when doubling cannot be expected to prove it
    safe (`futile`): stopping early only ever declares fewer candidates safe,
    so the error above still holds (a non-binding futility stop).
    """

    confidence: float
    replications: int
    max_replications: int

    @property
    def screen(self) -> int:
        quarter = self.replications // 4
        return quarter if quarter >= _MIN_SCREEN else self.replications

    @property
    def sizes(self) -> list[int]:
        """Replication counts at which a candidate may be judged safe."""
        sizes = [self.replications]
        while sizes[-1] < self.max_replications:
            sizes.append(min(2 * sizes[-1], self.max_replications))
        return sizes

    @property
    def count(self) -> int:
        """Every look, the screen too when it is one of its own."""
        return len(self.sizes) + (self.screen < self.replications)

    @property
    def safe_confidences(self) -> list[float]:
        """The confidence of the upper bounds at each of `sizes`."""
        error, looks = 1.0 - self.confidence, len(self.sizes)
        if looks == 1:
            return [self.confidence]
        later = error / 2 / (looks - 1)
        return [1.0 - error / 2] + [1.0 - later] * (looks - 1)

    @property
    def unsafe_confidence(self) -> float:
        """The confidence of the lower bounds, at every look."""
        return 1.0 - (1.0 - self.confidence) / self.count

    def prepare(self, budgets: Sequence[BudgetSpec]) -> None:
        """Judge blank evidence at every look size and confidence, up front.

        The bounds' ranks depend only on the count and the confidence and are
        cached, so the looks find them ready. For a chance budget (a
        Clopper-Pearson bound) it also loads scipy before a local process pool
        forks its workers: they inherit it instead of each loading it again,
        and the parent no longer loads it at its first look while the workers
        wait.
        """
        sizes = self.sizes
        for n in sorted({self.screen, *sizes}):
            blank = pd.DataFrame({b.figure: np.zeros(n) for b in budgets})
            judge(blank, budgets, self.unsafe_confidence)
            if n in sizes:
                judge(blank, budgets, self.safe_confidences[sizes.index(n)])

    def next(
        self, frame: pd.DataFrame, budgets: Sequence[BudgetSpec]
    ) -> tuple[tuple[BudgetCheck, ...], int]:
        """Judge a candidate's replications so far (a look); how many more it
        needs (0: settled, safe or not, or out of replications)."""
        n = len(frame)
        lower = judge(frame, budgets, self.unsafe_confidence)
        sizes = self.sizes
        if n in sizes:
            upper = judge(frame, budgets, self.safe_confidences[sizes.index(n)])
            checks = tuple(
                replace(up, lower=low.lower)
                for up, low in zip(upper, lower, strict=True)
            )
        else:
            checks = lower
        if any(c.lower > c.limit for c in checks):  # surely over
            return checks, 0
        if n < self.replications:
            return checks, self.replications - n  # past the screen
        if all(c.status == "within" for c in checks) or n >= self.max_replications:
            return checks, 0
        if self.futile(checks, n):
            return checks, 0
        return checks, min(2 * n, self.max_replications) - n

    def futile(self, checks: Sequence[BudgetCheck], n: int) -> bool:
        """Whether some undecided budget is unlikely to be proven within by
        doubling up to ``max_replications`` (stochastic curtailment).

        A budget's conditional power: the chance that its upper bound at the
        last look is within the limit, were the truth its estimate now. Its
        standard error is read off the bound's half-width at this look's
        confidence; the final estimate averages this look's and the rest's
        (``sd = se sqrt(n (N - n)) / N``), and the final half-width shrinks by
        ``sqrt(n / N)`` at the last look's confidence. Below `FUTILITY` the
        candidate stops, its budget ``unproven`` (or ``broken``): a budget whose
        estimate is over its limit, or just under it with a wide bound, is not
        doubled to a maximum it almost surely cannot pass.
        """
        sizes, last = self.sizes, self.max_replications
        if n not in sizes or n >= last:
            return False
        z_now = norm_ppf(self.safe_confidences[sizes.index(n)])
        z_end = norm_ppf(self.safe_confidences[-1])
        for check in checks:
            half = check.bound - check.estimate
            if check.status == "within" or not 0 < half < math.inf:
                continue
            se = half / z_now
            end_half = z_end * se * math.sqrt(n / last)
            spread = se * math.sqrt(n * (last - n)) / last
            power = norm_cdf((check.limit - end_half - check.estimate) / spread)
            if power < FUTILITY:
                return True
        return False


# --------------------------------------------------------------------------- evaluation


class _Evaluator:
    """Evaluates candidates with common random numbers and sequential doubling.

    Each candidate first runs a *screen* of a quarter of ``replications`` (when
    that is at least 30): if a budget is then already surely broken (its lower
    bound over the limit) the candidate is unsafe and costs no more. Otherwise
    it runs to ``replications`` (every candidate that may be safe has those, the
    common random numbers the objective is compared on) and, while a budget is
    undecided, doubles up to ``max_replications``, continuing the numbering,
    unless doubling cannot be expected to prove it (`Looks.futile`).
    Every look judges at the confidence `Looks` spends on it.
    """

    def __init__(
        self,
        question: Question,
        seed: int,
        replications: int,
        max_replications: int,
        simulator: Simulator,
        store: Store,
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
        self.looks = Looks(question.confidence, replications, max_replications)
        # a screen of a quarter of the replications settles surely unsafe candidates
        self.screen = self.looks.screen
        # False once no screen can settle a candidate (`_search_one`): each then
        # runs its replications at once, in fewer and larger blocks
        self.screening = True
        self.looks.prepare(question.budgets)
        self._scenarios: dict[str, Scenario] = {}  # a candidate's, made once

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
        first_look = self.screen if self.screening else self.replications
        wanted = {key: (0, first_look) for key in todo}
        migrated_by = self.question.objective.date
        while wanted:
            missing = []
            for key, (first, n) in wanted.items():
                stored = self.store.get(_batch(key, first, n))
                if stored is not None:
                    _list(self.store, key, todo[key], first, n)
                    frames[key] = _concat(frames.get(key), stored)
                else:
                    missing.append(key)
            jobs = [
                (self._scenario(key, todo[key]), self.seed, *wanted[key])
                for key in missing
            ]
            for key, frame in zip(
                missing, self.simulator.run(jobs, migrated_by), strict=True
            ):
                first, n = wanted[key]
                _keep(self.store, key, todo[key], first, n, frame)
                frames[key] = _concat(frames.get(key), frame)
            self.spent += sum(n for _, n in wanted.values())
            wanted = {}
            for key, frame in frames.items():
                if key in self.candidates:
                    continue
                checks, more = self.looks.next(frame, self.question.budgets)
                n = len(frame)
                if not more:
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
                    wanted[key] = (n, more)
        return [self.candidates[_key(levers)] for levers in many]

    def _scenario(self, key: str, levers: Mapping[str, Any]) -> Scenario:
        """A candidate's scenario, validated once however many looks it takes."""
        if key not in self._scenarios:
            self._scenarios[key] = self.question.scenario_at(levers)
        return self._scenarios[key]


def _concat(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    return (
        new.reset_index(drop=True)
        if old is None
        else pd.concat([old, new], ignore_index=True)
    )


# --------------------------------------------------------------------------- search
@dataclass(frozen=True)
class Search:
    """How the candidates were chosen, and whether monotonicity held.

    ``monotone`` (``search.monotone`` in ``decision.json``): with one lever,
    ``True`` when, over every evaluated candidate in lever order, the verdicts,
    the objective and every budget's estimate each only rose or only fell;
    ``False`` when any of them turned back (``note`` says which, where, and
    whether within their confidence intervals); ``None`` when nothing was
    checked (a single value, or several levers). ``False`` does not by itself
    mean the search fell back to every value: ``method`` (``exhaustive``) says
    that, and it does so only when the verdicts, or the objective over the safe
    values, turned back (what the bisection relies on).
    """

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
    # with each budget monotone in the lever, common random numbers put every
    # replication of a value between the ends between the ends' replications,
    # so its screen's lower bounds too: when neither end was settled at its
    # screen, no value between them can be, and they skip it
    ev.screening = any(at(i).replications < ev.replications for i in (0, last))
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
        turns = _turns_back(ev, lever)
        if not turns:
            return Search(
                "bisection",
                True,
                "risk and objective were monotone in the lever over every "
                "evaluated candidate",
            )
        shown = "; ".join(turns[:_SHOWN_TURNS])
        if len(turns) > _SHOWN_TURNS:
            shown += f"; and {len(turns) - _SHOWN_TURNS} more"
        return Search(
            "bisection",
            False,
            "the verdicts, and the objective over the safe values, were monotone "
            "in the lever, as the bisection assumes, but not every budget's "
            f"estimate was: {shown}",
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


#: Turns of an estimate a search note lists; the rest are counted.
_SHOWN_TURNS = 3


def _turns_back(ev: _Evaluator, lever: Lever) -> list[str]:
    """Where a budget's estimate, or the objective, turns back as the lever
    goes from its low to its high end, over every evaluated candidate.

    Each budget's estimates (and the objective's values), in lever order,
    should only rise or only fall; where one does neither, the steps against
    its overall direction (first to last) are named, with the values on each
    side and whether the two candidates' confidence intervals of that budget
    overlap (sampling noise can then explain the turn).
    """
    ordered = sorted(
        ev.evaluated, key=lambda c: lever.axis.to_number(c.levers[lever.path])
    )
    if len(ordered) < 3:
        return []
    at = [lever.phrase(c.levers[lever.path]) for c in ordered]
    turns = []
    for j, budget in enumerate(c.budget for c in ordered[0].checks):
        checks = [c.checks[j] for c in ordered]
        for a, b in _against([c.estimate for c in checks]):
            first, then = checks[a], checks[b]
            overlap = max(first.lower, then.lower) <= min(first.bound, then.bound)
            turns.append(
                f"{budget.words} {budget.value_words(first.estimate)} at {at[a]}, then "
                f"{budget.value_words(then.estimate)} at {at[b]} "
                + (
                    "(their confidence intervals overlap)"
                    if overlap
                    else "(beyond their confidence intervals)"
                )
            )
    objective = ev.question.objective
    values = [
        c.statistic(objective.figure, objective.statistic, common=True) for c in ordered
    ]
    what = f"the objective ({objective.figure.replace('_', ' ')} "
    what += f"{objective.statistic.upper()})"
    for a, b in _against(values):
        turns.append(
            f"{what} {values[a]:,.4g} at {at[a]}, then {values[b]:,.4g} at {at[b]}"
        )
    return turns


def _against(values: Sequence[float]) -> list[tuple[int, int]]:
    """Steps (i, k) between neighbouring values (NaN skipped) that go against
    the overall direction, first value to last; none when they only rise or
    only fall."""
    kept = [(i, v) for i, v in enumerate(values) if not math.isnan(v)]
    numbers = [v for _, v in kept]
    if numbers == sorted(numbers) or numbers == sorted(numbers, reverse=True):
        return []
    rising = numbers[-1] >= numbers[0]
    return [
        (i, k)
        for (i, u), (k, w) in zip(kept, kept[1:], strict=False)
        if (w < u if rising else w > u)
    ]


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

    refused: list[MigsimError] = []

    def objective(trial: optuna.trial.Trial) -> float:
        values = {
            lever.path: lever.values[
                trial.suggest_int(lever.path, 0, len(lever.values) - 1)
            ]
            for lever in levers
        }
        try:
            candidate = ev.one(values)
        except MigsimError as exc:  # levers that make no scenario together
            # raised through Optuna, it logged the trial's traceback first
            refused.append(exc)
            trial.study.stop()
            return 0.0
        for check in candidate.checks:  # feasible when <= 0
            trial.set_constraint(
                check.label,
                _finite(check.usage(check.bound) - check.usage(check.limit)),
            )
        return _finite(_objective_key(ev.question, candidate))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=trials)
    if refused:
        raise refused[0]
    name = "NSGA-II" if sampler == "nsga2" else "TPE"
    return Search(
        f"optuna-{sampler}",
        None,
        f"Optuna {name} with constraints, {trials} trials over the lever grids",
    )


def _finite(value: float) -> float:
    return float(np.clip(value, -1e12, 1e12))
