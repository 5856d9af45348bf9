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

from migsim.evidence.forecast import RunLike
from migsim.output.html import escape, html_table
from migsim.output.report_sections import RISK_FIGURES

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
    return "-" if value is None else f"{value:.0%}"


def _rows(split: dict[str, Any]) -> list[list[str]]:
    rows = []
    for top in split.get("top_inputs", []):
        rows.append(
            [
                escape(top["label"]),
                escape(_share(top["share"])),
                escape(evidence_for(top["input"], top["label"])),
            ]
        )
    return rows


def variance_section(runs: Sequence[RunLike], summaries: Sequence[dict]) -> str:
    """The split for each run that has one; nothing when none has."""
    parts = []
    for run, summary in zip(runs, summaries, strict=True):
        split = summary.get("variance_split")
        if not split:
            continue
        clearance = split.get("clearance_day") or {}
        inputs, daily = clearance.get("inputs_share"), clearance.get("day_to_day_share")
        parts.append(f"<h3>{escape(run.scenario.name)}</h3>")
        if inputs is None:
            parts.append('<p class="note">The clearance day does not vary.</p>')
            continue
        parts.append(
            f"<p>Of the spread in the clearance day, about <b>{_share(inputs)}</b> "
            "comes from what is not yet known about the inputs (it narrows as "
            f"evidence arrives) and <b>{_share(daily)}</b> from day-to-day "
            "randomness (no evidence removes it).</p>"
        )
        rows = _rows(clearance)
        if rows:
            parts.append(
                html_table(
                    ["input", "share of the spread", "evidence that would narrow it"],
                    rows,
                    [False, True, False],
                )
            )
        risks = []
        for name, entry in (split.get("figures") or {}).items():
            if name in RISK_FIGURES and entry.get("inputs_share") is not None:
                tops = entry.get("top_inputs") or []
                lead = f"; mostly {tops[0]['label']}" if tops else ""
                risks.append(
                    f"{RISK_FIGURES[name]}: inputs {_share(entry['inputs_share'])}"
                    f"{lead}"
                )
        if risks:
            parts.append('<p class="note">Risks: ' + escape("; ".join(risks)) + ".</p>")
    if not parts:
        return ""
    return (
        '<h2 id="uncertainty">Where the uncertainty comes from</h2>'
        + "".join(parts)
        + '<p class="note">Shares are first-order: inputs that move together '
        "each carry their shared part, so they need not add up.</p>"
    )
