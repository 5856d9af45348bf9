"""A decision: the answer to a question, in the planners' words and as data.

`Decision` holds every evaluated candidate, the answer (the best safe one),
the least unsafe when none is safe and the first step beyond the answer that
breaks a budget; it gives the text, ``decision.json`` (`Decision.to_dict`) and
``candidates.csv`` (`Decision.candidates_frame`). The output layer
(`migsim.output.experiment_files`) writes them with the frontier chart;
`load_decision` reads a written decision back for the report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from migsim import __version__
from migsim.common.errors import MigsimError
from migsim.common.source import source_sha256
from migsim.common.stats import format_number, percent
from migsim.common.stats import json_number as _json
from migsim.common.stats import json_value as _json_value
from migsim.experiments.question import PHRASES, Question
from migsim.experiments.search import BudgetCheck, Candidate, Search
from migsim.experiments.study import fmt_date

__all__ = ["Decision", "SavedDecision", "is_decision_directory", "load_decision"]


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
    #: looks that may declare a candidate safe, the confidence of each and of
    #: the surely-broken checks (`search.Looks`: the error is spent over them)
    looks: int = 1
    look_confidence: list[float] | None = None
    unsafe_confidence: float | None = None

    # ------------------------------------------------------------------ saved
    @property
    def grid(self) -> int:
        """Candidates on the levers' grid."""
        return math.prod(len(lever.values) for lever in self.question.levers)

    @property
    def saved(self) -> dict[str, int]:
        """Replications not spent, against every grid value at ``replications``.

        ``by_screen``: candidates settled unsafe at the screen; ``by_search``:
        grid values never evaluated (each would have cost at least
        ``replications``); ``spent_doubling``: what the doublings of undecided
        candidates cost beyond ``replications``. ``total`` is ``by_screen +
        by_search - spent_doubling`` (negative when doubling cost more).
        ``not_doubled`` is apart from ``total``: the replications up to
        ``max_replications`` not run for the candidates doubling could not be
        expected to prove safe (`search.Looks.futile`); at most what the
        doublings would have cost, as one may have settled the candidate.
        With common random numbers that pair, the candidates' risks and
        objective are monotone in a lever far more often, so the bisection
        keeps to a few candidates instead of falling back to the whole grid.
        """
        full = self.grid * self.replications
        by_screen = sum(
            self.replications - c.replications
            for c in self.candidates
            if c.replications < self.replications
        )
        by_search = (self.grid - len(self.candidates)) * self.replications
        doubling = sum(
            c.replications - self.replications
            for c in self.candidates
            if c.replications > self.replications
        )
        not_doubled = sum(
            self.max_replications - c.replications
            for c in self.candidates
            if self.replications <= c.replications < self.max_replications
            and not c.safe
            and all(check.lower <= check.limit for check in c.checks)
        )
        return {
            "grid_at_initial": full,
            "by_screen": by_screen,
            "by_search": by_search,
            "spent_doubling": doubling,
            "total": full - self.spent,
            "not_doubled": not_doubled,
        }

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
        return f"; {what} {objective.statistic.upper()} {format_number(value)}"

    def _check_text(self, check: BudgetCheck, terse: bool = False) -> str:
        budget = check.budget
        level = percent(self.question.confidence)
        head = budget.words
        est, bound, limit = (
            budget.value_words(value)
            for value in (check.estimate, check.bound, check.limit)
        )
        if terse:  # what keeps a candidate from being safe
            if check.status == "unproven":
                return (
                    f"{head} {est}, within the {limit} budget, but its {level} "
                    f"bound {bound} is over it"
                )
            return f"{head} {est} ({level} bound {bound}), over the {limit} budget"
        verdict = {
            "within": f"within the {limit} budget",
            "broken": f"over the {limit} budget",
            "unproven": f"not shown within the {limit} budget",
        }[check.status]
        return f"{head} {est} ({level} bound {bound}), {verdict}."

    def _beyond_text(self, candidate: Candidate) -> str:
        """What keeps the next step from being safe: the budgets it breaks
        (estimate over the limit) apart from those it cannot be shown within
        (estimate within, bound over); "breaks" is said only of the first."""
        parts = []
        if candidate.broke:
            parts.append(
                f"breaks {_budgets_word(candidate.broke, 'a budget')}: "
                + "; ".join(self._check_text(c, terse=True) for c in candidate.broke)
            )
        if candidate.unproven:
            parts.append(
                f"{'and ' if parts else ''}is not shown within "
                f"{_budgets_word(candidate.unproven, 'its budget')} at "
                f"{percent(self.question.confidence)} confidence: "
                + "; ".join(self._check_text(c, terse=True) for c in candidate.unproven)
            )
        return f"{self._levers_phrase(candidate, False)} {'; '.join(parts)}."

    def text(self) -> str:
        """The answer in the planners' words."""
        q = self.question
        lines = [
            f"{q.name}: {len(self.candidates)} candidates evaluated, {self.spent:,} "
            f"replications (seed {self.seed}), every budget at "
            f"{percent(q.confidence)} confidence",
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
                lines.append(self._beyond_text(self.beyond))
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
                f"evaluated meets every budget at {percent(q.confidence)} "
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
        saved = self.saved
        if self.look_confidence is None:
            looks = ""
        elif self.looks == 1:
            looks = f"; one look per candidate, at {percent(q.confidence)}"
        else:
            looks = (
                f"; up to {self.looks} looks per candidate, at "
                + ", ".join(f"{c:.2%}" for c in self.look_confidence)
                + f" so that together they hold at {percent(q.confidence)}"
            )
        lines.append(
            f"Replications: {self.spent:,} against {saved['grid_at_initial']:,} for "
            f"every grid value at {self.replications:,} ({_saved_words(saved)}"
            f"{_not_doubled(saved['not_doubled'])}){looks}."
        )
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
            "unproven": [check.label for check in candidate.unproven],
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
                "looks": self.looks,
                "look_confidence": None
                if self.look_confidence is None
                else [_json(c) for c in self.look_confidence],
                "unsafe_confidence": None
                if self.unsafe_confidence is None
                else _json(self.unsafe_confidence),
                "saved": self.saved,
            },
            "migsim_version": __version__,
            "migsim_source_sha256": source_sha256(),
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
        """One row per evaluated candidate: levers, figures, bounds and verdict.

        ``verdict`` is ``safe`` (every budget within) or ``unsafe`` (not shown
        safe); ``broke`` lists the budgets whose status is ``broken`` (estimate
        over the limit) and ``unproven`` those whose estimate is within but
        whose upper bound is not, the same rule for every candidate.
        """
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
            row["unproven"] = ";".join(check.label for check in c.unproven)
            row["is_answer"] = self.answer is not None and c.index == self.answer.index
            rows.append(row)
        return pd.DataFrame(rows)


def _saved_words(saved: dict[str, int]) -> str:
    """What the search, the screen and the doublings saved or cost, in words
    that add up: "saved 360: 1,020 by the search and 0 by the screen, less 660
    spent doubling undecided candidates"."""
    total = saved["total"]
    head = f"saved {total:,}:" if total >= 0 else f"{-total:,} more: saved"
    words = (
        f"{head} {saved['by_search']:,} by the search and "
        f"{saved['by_screen']:,} by the screen"
    )
    if saved["spent_doubling"]:
        words += (
            f", less {saved['spent_doubling']:,} spent doubling undecided candidates"
        )
    return words


def _not_doubled(replications: int) -> str:
    """The replications not spent doubling candidates that could not be
    expected to pass, in the decision's last line (nothing when none)."""
    if not replications:
        return ""
    return f"; {replications:,} more not spent doubling a candidate unlikely to pass"


def _lever_name(path: str) -> str:
    """A lever in planners' words, never its field path ("the daily cap", "the
    highest cap the automation step may reach")."""
    parts = path.split(".")
    if path == "capacity.daily_cap":
        return "the daily cap"
    if len(parts) == 4 and parts[:2] == ["capacity", "rules"] and parts[3] == "max_cap":
        return f"the highest cap the {parts[2].replace('_', ' ')} may reach"
    if len(parts) == 4 and parts[:2] == ["capacity", "schedule"]:
        what = "cap" if parts[3] == "daily_cap" else "start date"
        return f"the {what} of ramp step {parts[2].replace('_', ' ')}"
    if len(parts) == 3 and parts[0] == "cohorts" and parts[2] == "eligible_from":
        return f"when {parts[1]} may start"
    return "the " + " ".join(p.replace("_", " ") for p in parts)


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
    """Read a finished decision directory written by
    `migsim.output.experiment_files.write_decision`.

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


# --------------------------------------------------------------------------- format
def _budgets_word(checks: list, one: str) -> str:
    """``one`` ("a budget", "its budget") for one check, its plural for more."""
    if len(checks) == 1:
        return one
    return "budgets" if one.startswith("a ") else one + "s"
