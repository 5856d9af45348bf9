"""Where the uncertainty comes from, and which evidence would narrow it.

A run whose scenario draws its inputs (rates from evidence, slipping dates,
achieved throughput) splits each figure's variance into the inputs' part and
the day-to-day part (``variance_split`` in ``summary.json``). The report shows
that split for the clearance day and names, for each input that matters, the
evidence that would narrow it: day-to-day randomness no evidence removes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migsim.common.stats import percent
from migsim.evidence.intervals import RunLike
from migsim.output.html import escape, html_table
from migsim.results.variance import words

__all__ = ["evidence_for", "variance_section"]


def evidence_for(key: str, label: str) -> str:
    """The evidence that would narrow one uncertain input, in planners' words."""
    parts = key.split(".")
    if key == "programme_delay":
        return (
            "confirmed dates for the open fixes (61224, 91339/91340) that gate "
            "EPCL entry"
        )
    if key == "capacity.achieved.mean":
        return "a few weeks of achieved daily volumes against the cap (MCC actuals)"
    if parts[0] == "gates":
        what = label.removeprefix("gate ")
        return f"a committed date for {what} (a passed test, a signed-off fix)"
    if parts[0] == "capacity" and len(parts) > 1 and parts[1] == "schedule":
        return "a committed date and cap for that ramp step"
    if parts[0] == "suppliers":
        return "the supplier's confirmed business-readiness date"
    if key == "cohorts.installations":  # one draw sets every cohort's size
        return "a firm count of installations from the suppliers"
    if parts[0] == "cohorts" and len(parts) >= 3:
        cohort, rest = parts[1], ".".join(parts[2:])
        if rest == "eligible_from" or rest.endswith("until"):
            return f"a confirmed EPCL entry date for {cohort}"
        if rest == "installations":
            return f"a firm count of {cohort} installations from the suppliers"
        if rest.startswith("outcomes.") or rest.startswith("hard.outcomes."):
            return (
                f"outcomes of the next migrations of {cohort} (each thousand "
                "attempts narrows the rate)"
            )
        if rest.startswith("stall."):
            return f"how the stalled {cohort} migrations resolve"
    return "more evidence on this input"


def _share(value: Any) -> str:
    return percent(value)


def variance_section(runs: Sequence[RunLike], summaries: Sequence[dict]) -> str:
    """One table: per run with a split, the inputs' share of the spread in the
    clearance day, day-to-day randomness, the inputs that matter most and the
    evidence that would narrow each. Nothing when no run has a split."""
    rows, uncertain = [], False
    for run, summary in zip(runs, summaries, strict=True):
        split = (summary.get("variance_split") or {}).get("clearance_day")
        if not split:
            continue
        # twins are run only when some input is drawn: without, all is day-to-day
        if not split.get("twins") and not split.get("top_inputs"):
            rows.append([escape(run.scenario.name), "0%", "100%", "none drawn", ""])
            continue
        uncertain = True
        if split.get("varying") is not None:
            rows.append([escape(run.scenario.name), "-", "-", escape(words(split)), ""])
            continue
        if split.get("inputs_share") is None:
            rows.append([escape(run.scenario.name), "-", "-", "does not vary", ""])
            continue
        tops = split.get("top_inputs") or []
        rows.append(
            [
                escape(run.scenario.name),
                f"<b>{escape(_share(split['inputs_share']))}</b>",
                escape(_share(split.get("day_to_day_share"))),
                "<br>".join(
                    f"{escape(t['label'])}: {escape(_share(t['share']))}" for t in tops
                )
                or "none above the noise",
                "<br>".join(escape(evidence_for(t["input"], t["label"])) for t in tops),
            ]
        )
    if not uncertain:
        return ""
    return (
        '<h2 id="uncertainty">Where the uncertainty comes from</h2>'
        "<p>The spread in each scenario's clearance day splits into what is not yet "
        "known about the inputs (rates, dates, throughput: it narrows as evidence "
        "arrives) and day-to-day randomness (no evidence removes it).</p>"
        + html_table(
            [
                "scenario",
                "from the inputs",
                "day-to-day",
                "inputs that matter most (share of the spread)",
                "evidence that would narrow them",
            ],
            rows,
            [False, True, True, False, False],
        )
        + '<p class="note">Shares are first-order: inputs that move together each '
        "carry their shared part, so they need not add up. The risks' splits are "
        "in each run's summary.json (variance_split).</p>"
    )
