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
replication numbering, up to ``max_replications``, unless doubling cannot be
expected to prove it (`search.Looks.futile`: a conditional power below 5%).
Each judging (the screen, then each doubling) is a look at the evidence: the
error 1 - confidence is spent over the known number of looks (`search.Looks`),
so a budget exactly at its limit is declared met with probability at most
1 - confidence over all of them.

One lever: a bisection for the edge of the safe range and, within it, for the
best objective, assuming risk and objective are monotone in the lever; the
assumption is then checked on every evaluated candidate and, where the verdicts
or the objective fail it, every candidate on the grid is evaluated. Monotone
is claimed (``search.monotone``) only when every budget's estimate was too
(`search.Search`). Several levers: Optuna's TPE sampler
with constraints (see ``docs/decision-support.md`` for why).

Module flow: `question` reads the file, `search` judges and searches the
candidates (simulating through ``study``), `decision` holds the answer, and this
module ties them together; ``migsim.output.experiment_files`` writes it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

from migsim import __version__
from migsim.common.errors import MigsimError
from migsim.common.store import MANIFEST, Store, held
from migsim.experiments.decision import Decision
from migsim.experiments.question import Question, load_question
from migsim.experiments.search import (
    Candidate,
    _Evaluator,
    _objective_key,
    _search_many,
    _search_one,
)
from migsim.experiments.study import Simulator
from migsim.model.limits import run_seed
from migsim.sim.prepare import prepare

__all__ = ["check_store", "decide"]


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
    restart: str = "--fresh",
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
        Start over: discard what the store in ``directory`` holds (of this
        definition or another) instead of resuming or refusing.
    restart
        How the caller's command says ``fresh``, in the message refusing a
        store of another definition.
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
        Bad input, a store of another definition, or a store another running
        decide is writing (held while this one runs:
        `migsim.common.store.held`).
    """
    if not isinstance(question, Question):
        question = load_question(question)
    definition = _definition(
        question, replications, seed, max_replications, trials, sampler
    )
    seed, max_replications = definition["seed"], definition["max_replications"]
    options = _store_options(definition, fresh, restart)
    with ExitStack() as holding:
        if directory is not None:  # a second decide there mixed its batches in
            holding.enter_context(held(directory, "decision"))
        made = directory is not None and (
            fresh or not (Path(directory) / MANIFEST).exists()
        )
        store = Store(directory, definition, pieces="batches", **options)
        if made:
            holding.push(_discard_if_unused(store))
        started = time.perf_counter()
        if scheduler is None and workers > 1:  # forked workers share what it loads
            prepare(question.scenario, max(1, replications // (2 * workers)))
        with Simulator(workers, scheduler=scheduler) as simulator:
            ev = _Evaluator(
                question,
                seed,
                replications,
                max_replications,
                simulator,
                store,
                progress,
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
        looks=len(ev.looks.sizes),
        look_confidence=ev.looks.safe_confidences,
        unsafe_confidence=ev.looks.unsafe_confidence,
    )


def _discard_if_unused(store: Store) -> Callable[..., bool]:
    """An exit callback removing a store this decide made, when bad input
    (`MigsimError`) stopped it before any batch finished: a scheduler
    address that is none, or levers that make no scenario together drawn
    first. Such a store holds no work, only a manifest that looks like a
    started decision. One holding a finished batch is kept: it resumes."""

    def discard(kind: type[BaseException] | None, *_: Any) -> bool:
        if (
            store.root is not None
            and kind is not None
            and issubclass(kind, MigsimError)
            and not any(store.points.glob("*.parquet"))
        ):
            shutil.rmtree(store.points, ignore_errors=True)
            (store.root / MANIFEST).unlink(missing_ok=True)
        return False  # the error goes on

    return discard


def check_store(
    question: Question,
    directory: str | Path | None,
    replications: int = 200,
    seed: int | None = None,
    *,
    max_replications: int | None = None,
    trials: int = 40,
    sampler: Literal["tpe", "nsga2"] = "tpe",
    fresh: bool = False,
    restart: str = "--fresh",
) -> None:
    """Refuse what `decide` with these arguments would refuse in ``directory``
    (a store of another definition, a folder that is not a store), writing
    nothing: for a command with other work to do first (``migsim report``
    runs its scenarios before it decides), so the refusal comes before it.

    Raises
    ------
    MigsimError
        As `decide` does for its store.
    """
    definition = _definition(
        question, replications, seed, max_replications, trials, sampler
    )
    Store.check(directory, definition, **_store_options(definition, fresh, restart))


def _store_options(
    definition: dict[str, Any], fresh: bool, restart: str
) -> dict[str, Any]:
    """How `decide` opens its store, and `check_store` checks it, alike."""
    return {
        "what": "decision",
        "fresh": fresh,
        "blank": {"definition": definition, "candidates": {}},
        "restart": restart,
    }


def _definition(
    question: Question,
    replications: int,
    seed: int | None,
    max_replications: int | None,
    trials: int,
    sampler: str,
) -> dict[str, Any]:
    """What a decision's store holds results of (its ``definition``), the
    defaults of ``seed`` and ``max_replications`` filled in."""
    if replications < 1:
        raise ValueError("replications must be at least 1")
    max_replications = (
        4 * replications if max_replications is None else max_replications
    )
    if max_replications < replications:
        raise MigsimError(
            f"--max-replications ({max_replications}) is below -n ({replications})"
        )
    definition: dict[str, Any] = {
        "question_sha256": question.sha256,
        "scenario_sha256": question.scenario.sha256,
        "seed": question.scenario.seed if seed is None else run_seed(seed),
        "replications": replications,
        "max_replications": max_replications,
        "migsim_version": __version__,
    }
    if len(question.levers) > 1:
        definition |= {"trials": trials, "sampler": sampler}
    return definition


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
