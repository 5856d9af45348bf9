"""What a decision says about its candidates, on made-up evidence (no simulation).

Each candidate's budget checks are set by hand (estimate, bounds), so the words
of the text, ``decision.json``, ``candidates.csv`` and the report can be checked
against the exact rule: ``broken`` (estimate over the limit), ``unproven``
(estimate within, upper bound over) and ``within``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import write_yaml

from migsim.experiments.decision import Decision, SavedDecision
from migsim.experiments.question import load_question
from migsim.experiments.search import BudgetCheck, Candidate, Search

PEAK = {"figure": "peak_failure_backlog", "statistic": "p90", "max": 10000}
DUMB = {"figure": "dumb", "exceeds": 0, "max_probability": 0.05}
LEVER = "capacity.daily_cap"


def _question(tmp_path: Path):
    from test_decide import all_stall_scenario, question_dict

    write_yaml(tmp_path / "scenario.yaml", all_stall_scenario())
    path = write_yaml(
        tmp_path / "question.yaml", question_dict(risk_budget=[PEAK, DUMB])
    )
    return load_question(path)


def _candidate(question, index, cap, day, checks, n=30) -> Candidate:
    """A candidate at ``cap`` clearing on ``day``, its checks (estimate,
    lower, bound) per budget in the question's order."""
    frame = pd.DataFrame(
        {
            "clearance_day": [float(day)] * n,
            "peak_failure_backlog": [0.0] * n,
            "dumb": [0.0] * n,
        }
    )
    judged = tuple(
        BudgetCheck(budget, n, est, low, up, 0 if budget.kind == "chance" else None)
        for budget, (est, low, up) in zip(question.budgets, checks, strict=True)
    )
    return Candidate(index, {LEVER: cap}, frame, judged, n)


@pytest.fixture
def evidence(tmp_path):
    """2,000 safe; 2,100 unproven on both budgets; 2,500 broken on the peak and
    unproven on the chance."""
    q = _question(tmp_path)
    safe = _candidate(q, 0, 2000, 14, [(9000, 8500, 9800), (0.0, 0.0, 0.04)])
    unproven = _candidate(q, 1, 2100, 14, [(9800, 9000, 10400), (0.0, 0.0, 0.095)])
    broken = _candidate(q, 2, 2500, 12, [(12000, 11000, 13000), (0.0, 0.0, 0.095)])
    return q, safe, unproven, broken


def _decision(q, candidates, answer, beyond) -> Decision:
    return Decision(
        q,
        candidates,
        answer,
        None,
        beyond,
        Search("bisection", True, "checked"),
        0,
        30,
        120,
        sum(c.replications for c in candidates),
        30,
        {},
    )


def _saved(decision: Decision, tmp_path: Path) -> SavedDecision:
    return SavedDecision(
        tmp_path, decision.to_dict(), decision.candidates_frame(), frontier_png=b""
    )


def _cells(table: str) -> list[list[str]]:
    """The text of every cell of an HTML table, row by row."""
    from html.parser import HTMLParser

    rows: list[list[str]] = []

    class Cells(HTMLParser):
        cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                rows.append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                rows[-1].append("".join(self.cell).strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    Cells().feed(table)
    return rows


def test_broke_lists_broken_budgets_only_and_unproven_apart(evidence):
    q, safe, unproven, broken = evidence
    assert [c.status for c in unproven.checks] == ["unproven", "unproven"]
    assert unproven.broke == []  # not "broke" a budget its estimate is within
    assert [c.label for c in unproven.unproven] == [
        "peak_failure_backlog_p90",
        "p_dumb_gt_0",
    ]
    # broken on one budget: the unproven one is listed too, apart
    assert [c.label for c in broken.broke] == ["peak_failure_backlog_p90"]
    assert [c.label for c in broken.unproven] == ["p_dumb_gt_0"]
    decision = _decision(q, [safe, unproven, broken], safe, unproven)
    frame = decision.candidates_frame().set_index(LEVER).fillna("")
    assert frame.loc[2000, ["verdict", "broke", "unproven"]].tolist() == [
        "safe",
        "",
        "",
    ]
    assert frame.loc[2100, ["broke", "unproven"]].tolist() == [
        "",
        "peak_failure_backlog_p90;p_dumb_gt_0",
    ]
    assert frame.loc[2500, ["broke", "unproven"]].tolist() == [
        "peak_failure_backlog_p90",
        "p_dumb_gt_0",
    ]
    nxt = decision.to_dict()["next_candidate"]
    assert nxt["broke"] == [] and nxt["unproven"] == [
        "peak_failure_backlog_p90",
        "p_dumb_gt_0",
    ]


def test_the_evidence_table_applies_one_rule_to_every_row(evidence, tmp_path):
    from migsim.output.report_basis import _evidence_table

    q, safe, unproven, broken = evidence
    decision = _decision(q, [safe, unproven, broken], safe, unproven)
    table = _evidence_table(_saved(decision, tmp_path), None)
    rows = {row[0]: row for row in _cells(table)[1:]}
    peak, chance = (
        "peak failure backlog (stalled + rolled back) (P90)",
        "the chance of more than 0 devices left dumb",
    )
    assert rows["2,000 a day"][-3:] == ["safe", "", ""]
    assert rows["2,100 a day"][-3:] == ["not shown safe", "", f"{peak}; {chance}"]
    assert rows["2,500 a day"][-3:] == ["unsafe", peak, chance]


def test_the_cli_the_report_and_the_candidate_give_one_verdict(evidence):
    from migsim.cli.text import candidate_line

    _, safe, unproven, broken = evidence
    said = {c.levers[LEVER]: c.verdict for c in (safe, unproven, broken)}
    assert said == {2000: "safe", 2100: "not shown safe", 2500: "unsafe"}
    assert candidate_line(safe).endswith(": safe (30 replications)")
    assert ": not shown safe: peak_failure_backlog_p90 unproven, " in (
        candidate_line(unproven)
    )
    assert ": unsafe: peak_failure_backlog_p90 broken, p_dumb_gt_0 unproven " in (
        candidate_line(broken)
    )


def test_an_unproven_next_step_is_not_said_to_break_the_budget(evidence, tmp_path):
    from migsim.output.report_basis import recommendation

    q, safe, unproven, broken = evidence
    decision = _decision(q, [safe, unproven, broken], safe, unproven)
    text = decision.text()
    assert "breaks a budget" not in text and "breaks budgets" not in text
    assert (
        "2,100 a day is not shown within its budgets at 95% confidence: installations "
        "stalled or rolled back at the peak P90 9,800, within the 10,000 budget, "
        "but its 95% bound 10,400 is over it; P(more than 0 devices left dumb) "
        "0%, within the 5% budget, but its 95% bound 9.5% is over it." in text
    )
    words = recommendation(_saved(decision, tmp_path), [])
    # the recommended value is set against where the plan has the lever now
    assert (
        "Recommended: the daily cap at 2,000 a day. The plan has it at 1,000 a day "
        "now." in words
    )
    assert "would break" not in words
    assert (
        "The next step, 2,100 a day, cannot be shown within the budget at 95% "
        "confidence: peak failure backlog (stalled + rolled back) (P90) 9,800 is "
        "within its budget of 10,000, but its upper bound 10,400 is over it; the "
        "chance of more than 0 devices left dumb 0% is within its budget of "
        "5%, but its upper bound 9.5% is over it." in words
    )


def test_a_broken_next_step_breaks_it_and_its_unproven_budget_is_said_apart(
    evidence, tmp_path
):
    from migsim.output.report_basis import recommendation

    q, safe, unproven, broken = evidence
    decision = _decision(q, [safe, broken], safe, broken)
    text = decision.text()
    assert (
        "2,500 a day breaks a budget: installations stalled or rolled back at the peak "
        "P90 12,000 (95% bound 13,000), over the 10,000 budget; and is not shown "
        "within its budget at 95% confidence: P(more than 0 devices left dumb) 0%, "
        "within the 5% budget, but its 95% bound 9.5% is over it." in text
    )
    words = recommendation(_saved(decision, tmp_path), [])
    assert (
        "The next step, 2,500 a day, would break the budget: peak failure backlog "
        "(stalled + rolled back) (P90) would reach 12,000 against a budget of "
        "10,000. Nor can it be shown within the budget at 95% confidence: the "
        "chance of more than 0 devices left dumb 0% is within its budget of "
        "5%, but its upper bound 9.5% is over it." in words
    )


def test_what_was_saved_adds_up(evidence):
    """1,380 for every one of the 46 grid values at 30: the search saved 43 x 30
    = 1,290, the screen 30 - 8 = 22, and doubling cost 90 + 30 = 120 more:
    1,380 - (8 + 120 + 60) = 1,192 = 1,290 + 22 - 120."""
    q, *_ = evidence
    screened = _candidate(q, 0, 5000, 10, [(20000, 19000, 21000), (0, 0, 1)], n=8)
    doubled = _candidate(q, 1, 2100, 14, [(9800, 9000, 10400), (0, 0, 0.02)], n=120)
    once = _candidate(q, 2, 2000, 14, [(9000, 8500, 9800), (0, 0, 0.04)], n=60)
    decision = _decision(q, [screened, doubled, once], once, doubled)
    saved = decision.saved
    assert (saved["grid_at_initial"], saved["by_search"], saved["by_screen"]) == (
        1380,
        1290,
        22,
    )
    assert saved["spent_doubling"] == 120
    assert saved["total"] == 1192 == 1290 + 22 - 120
    assert (
        "(saved 1,192: 1,290 by the search and 22 by the screen, less 120 spent "
        "doubling undecided candidates" in decision.text()
    )


def test_every_budget_is_noted_for_the_first_screen(evidence, tmp_path):
    from migsim.output.report_basis import budget_notes

    q, safe, unproven, broken = evidence
    decision = _decision(q, [safe, unproven], safe, unproven)
    assert budget_notes(_saved(decision, tmp_path)) == {
        "peak_failure_backlog": "budget: P90 at most 10,000",
        "dumb": "budget: P(more than 0) at most 5%",
    }
