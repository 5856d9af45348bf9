"""Text the commands print: the run summary, sweep and comparison tables.

Plain text in columns that fit their widest cell, so the output reads the same
in a terminal, a log file and the README.
"""

from __future__ import annotations

import textwrap
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from migsim.common.stats import percent

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.experiments.search import Candidate
    from migsim.model.scenario import Scenario
    from migsim.results.results import Results

__all__ = [
    "candidate_line",
    "comparison_text",
    "scenario_dates_text",
    "signed",
    "failures_text",
    "fmt_float",
    "summary_text",
    "sweep_text",
    "text_table",
]


def _fmt_int(value: Any) -> str:
    return "-" if value is None else f"{round(value) + 0:,.0f}"  # never "-0"


def fmt_float(value: float) -> str:
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def text_table(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    """A plain-text table whose columns fit their widest cell (dates, 'after ...')."""
    label_width = max([len(title)] + [len(row[0]) + 2 for row in rows]) + 2
    widths = [
        max([len(headers[j])] + [len(row[j + 1]) for row in rows]) + 2
        for j in range(len(headers))
    ]
    head = f"{title:<{label_width}}" + "".join(
        f"{h:>{w}}" for h, w in zip(headers, widths, strict=True)
    )
    body = [
        f"  {row[0]:<{label_width - 2}}"
        + "".join(f"{cell:>{w}}" for cell, w in zip(row[1:], widths, strict=True))
        for row in rows
    ]
    return [head, *body]


#: Summary rows of the operations figures, each after the row it details, shown
#: when the scenario's sections use it (`operations.figures_in_use`).
_OPERATIONS_ROWS = (
    ("active_dumb", "    of which prepayment (grave)", "active_prepayment_dumb"),
    ("abandoned", "  of which excluded (never remote)", "excluded"),
    (
        "active_interrupted_installation_days",
        "active dumb installation-days",
        "active_dumb_installation_days",
    ),
    (
        "active_dumb_installation_days",
        "largest daily active interrupted",
        "max_daily_active_interrupted",
    ),
    ("peak_failure_backlog", "active hit by latent defects", "active_hit_by_defects"),
    ("peak_failure_backlog", "dormant hit by latent defects", "dormant_hit_by_defects"),
    ("peak_failure_backlog", "peak ELS case backlog", "peak_els_backlog"),
    ("peak_els_backlog", "CoS loss alerts not sent", "cos_alerts_lost"),
    ("peak_els_backlog", "PPMID join failures", "ppmid_join_failures"),
)


def failures_text(results: Results) -> str:
    """Which replications failed: the run's numbers are of the others only."""
    asked = results.n_replications + len(results.failures)
    lines = [
        f"INCOMPLETE: {len(results.failures)} of {asked} replications failed; "
        "the figures above are of the other "
        f"{results.n_replications} (rerun one alone with its seed and index)."
    ]
    lines += [
        f"  replication {f.replication} (seed {f.seed}): {f.error}"
        for f in results.failures
    ]
    return "\n".join(lines)


def summary_text(results: Results) -> str:
    """The planner's summary: clearance dates with spread, then risk totals."""
    from migsim.evidence.intervals import last_few_note

    summary = results.summary
    sc = results.scenario
    lines = [
        f"{sc.name}: {summary['replications']} replications, seed {summary['seed']}, "
        f"{sc.installations:,} installations, {sc.start_date} to {sc.end_date}",
        "",
    ]

    def clearance_row(label: str, dates: dict[str, str], share: float) -> list[str]:
        return [label, dates["p10"], dates["p50"], dates["p90"], percent(share)]

    rows = [
        clearance_row(
            "all cohorts", summary["clearance_date"], summary["cleared_share"]
        )
    ]
    rows += [
        clearance_row(name, cohort["clearance_date"], cohort["cleared_share"])
        for name, cohort in summary["cohorts"].items()
    ]
    lines += text_table("Backlog cleared", ["P10", "P50", "P90", "cleared"], rows)
    if any(str(cell).startswith("after") for row in rows for cell in row[1:4]):
        lines.append(
            "  (a date 'after' the horizon end means some replications did not "
            "clear; their mean clearance day is undefined)"
        )
    last_few = last_few_note(results)
    if last_few:
        lines.append(f"  {last_few}")
    lines += _uncertainty_lines(summary)
    lines += _variance_lines(summary)
    rows_spec = [
        ("devices left dumb", "dumb"),
        ("  of which active", "active_dumb"),
        ("installations abandoned", "abandoned"),
        (
            "active interrupted installation-days",
            "active_interrupted_installation_days",
        ),
        ("peak failure backlog", "peak_failure_backlog"),
    ]
    from migsim.results.figures import DUMB_INCLUDES_RECOVERABLE, dumb_may_recover
    from migsim.sim.operations import figures_in_use

    used = figures_in_use(results.scenario)
    for after, label, name in _OPERATIONS_ROWS:
        if name in used:
            anchors = [row[1] for row in rows_spec]
            # after its anchor row; at the end when that row is not shown (CoS
            # alerts without ELS raised StopIteration once the run was done)
            at = anchors.index(after) + 1 if after in anchors else len(rows_spec)
            while at < len(rows_spec) and rows_spec[at][0].startswith("  "):
                at += 1  # keep "of which" rows under their total
            rows_spec.insert(at, (label, name))
    rows = []
    for label, name in rows_spec:
        stats = summary["figures"][name]
        rows.append(
            [
                label,
                _fmt_int(stats["p50"]),
                _fmt_int(stats["p90"]),
                _fmt_int(stats["mean"]),
            ]
        )
    lines += [
        "",
        *text_table("Risks (totals per replication)", ["P50", "P90", "mean"], rows),
    ]
    if dumb_may_recover(results.scenario):
        lines.append(f"  Note: {DUMB_INCLUDES_RECOVERABLE}")
    lines += _policy_lines(results)
    return "\n".join(lines)


def _variance_lines(summary: dict[str, Any]) -> list[str]:
    """Where the spread of the clearance day and the risks comes from."""
    from migsim.results.variance import words

    split = summary.get("variance_split")
    if not split:
        return []
    lines = ["", "Where the uncertainty comes from (share of the variance):"]
    lines.append(f"  clearance day: {words(split['clearance_day'])}")
    for name, entry in split["figures"].items():  # the risks, not the totals
        said = entry.get("inputs_share") is not None or "varying" in entry
        if name not in _NOT_RISKS and said:
            lines.append(f"  {name.replace('_', ' ')}: {words(entry)}")
    return lines


#: Figures that are totals of the run rather than risks (summary.json has them).
_NOT_RISKS = ("migrated", "attempts", "unresolved", "dormant_dumb")


def _uncertainty_lines(summary: dict[str, Any]) -> list[str]:
    """Monte Carlo uncertainty, P(clear by date) and precision, if there are any."""
    lines: list[str] = []
    ci = summary.get("ci95")
    if ci:
        dates = ci["clearance_date"]

        def bound(value: str | None) -> str:
            return "needs more replications" if value is None else value

        lines.append(
            f"  95% CI of the P50 date: {bound(dates['p50'][0])} to "
            f"{bound(dates['p50'][1])}; of the P90 date: {bound(dates['p90'][0])}"
            f" to {bound(dates['p90'][1])}"
        )
        mean = summary["figures"]["clearance_day"]["mean"]
        interval = ci["figures"]["clearance_day"]["mean"]
        if mean is not None and interval is not None:
            lines.append(
                f"  mean clearance day {mean:,.1f} (95% CI {interval[0]:,.1f} "
                f"to {interval[1]:,.1f})"
            )
    for when, p in summary.get("p_clear_by", {}).items():
        interval = summary.get("p_clear_by_ci95", {}).get(when)
        extra = (
            f" (95% CI {percent(interval[0])} to {percent(interval[1])})"
            if interval
            else ""
        )
        lines.append(f"  P(cleared by {when}) = {percent(p)}{extra}")
    precision = summary.get("precision")
    if precision:
        from migsim.runner.precision import target_words

        target = target_words(precision["target"])
        goal = precision["goal"][precision["target"]]
        verdict = "met" if precision["met"] else "NOT met (maximum count reached)"
        lines.append(
            f"  precision: {precision['replications']} replications needed for "
            f"a 95% CI half-width of {goal} on {target}: {verdict} "
            f"(half-width {precision['half_width']})"
        )
    return lines


def _policy_lines(results: Results) -> list[str]:
    """Ramp policy: no-go days, rule firings and gate dates, if there are any."""
    sc, policy = results.scenario, results.summary["policy"]
    counts = []
    if sc.go_no_go is not None:
        counts.append(("no-go days", policy["no_go_days"]))
    counts += [
        (f"rule {name} fired", stats) for name, stats in policy["rule_firings"].items()
    ]
    lines: list[str] = []
    if counts:
        rows = [
            [
                label,
                _fmt_int(stats["p50"]),
                _fmt_int(stats["p90"]),
                "-" if stats["mean"] is None else f"{stats['mean']:.1f}",
            ]
            for label, stats in counts
        ]
        lines += [
            "",
            *text_table("Ramp policy (per replication)", ["P50", "P90", "mean"], rows),
        ]
    if policy["gates"]:
        rows = [
            [
                name,
                gate["opening_date"]["p10"],
                gate["opening_date"]["p50"],
                gate["opening_date"]["p90"],
                percent(gate["opened_share"]),
            ]
            for name, gate in policy["gates"].items()
        ]
        lines += ["", *text_table("Gate opens", ["P10", "P50", "P90", "opened"], rows)]
    return lines


def _cell(column: str, row, start) -> str:
    value = row[column]
    if column.startswith("clearance_day") and isinstance(value, float):
        if value != value:
            return "-"
        if value == float("inf"):
            return "not cleared"
        return (start + timedelta(days=int(value))).isoformat()
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _point_start(row, start):
    """A sweep point's own start date: the swept ``start_date`` when it is one
    of the fields (its clearance days count from it), else the scenario's."""
    value = row.get("start_date")
    if value is None or value != value:  # not swept, or an invalid point's
        return start
    return date.fromisoformat(str(value)[:10])


def sweep_text(table, fields: list[str], figure: str, scenario: Scenario) -> str:
    """One line per point: its values, the chosen figure and its status."""
    columns = ["point", *fields, figure, "status"]
    rows = [[str(c) for c in columns]]
    for _, row in table.iterrows():
        start = _point_start(row, scenario.start_date)
        cells = [_cell(c, row, start) for c in columns]
        if row["status"] == "invalid":
            cells[-1] = f"invalid: {row['error']}"
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns) - 1)]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(r[:-1], widths, strict=True))
        + "  "
        + r[-1]
        for r in rows
    )


def signed(value: float, digits: int = 1) -> str:
    """A difference with its sign, trailing ".0" dropped, never "-0" or "+0"."""
    rounded = round(value, digits)
    if rounded == 0:
        return "0"
    text = f"{rounded:+,.{digits}f}"
    return text[:-2] if digits == 1 and text.endswith(".0") else text


def _short_date(value: str | None) -> str:
    """``2020-03-04`` -> ``4 Mar 2020``; "after ..." and None kept readable."""
    from datetime import date

    if value is None:
        return "-"
    if value.startswith("after "):
        return "after " + _short_date(value[6:])
    when = date.fromisoformat(value)
    return f"{when.day} {when:%b %Y}"


def scenario_dates_text(
    summaries: dict[str, dict[str, Any]], by: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """Each scenario's own clearance dates (P10, P50, P90), cleared share and
    P(cleared by) each ``--by`` date, one row per scenario."""
    dates = list(by or {})
    headers = ["P10", "P50", "P90", "cleared", *(f"by {d}" for d in dates)]
    rows = []
    for name, summary in summaries.items():
        clearance = summary["clearance_date"]
        row = [name, *(_short_date(clearance[s]) for s in ("p10", "p50", "p90"))]
        row.append(percent(summary["cleared_share"]))
        for when in dates:
            row.append(percent(by[when][name]["p"]))  # type: ignore[index]
        rows.append(row)
    return text_table("backlog clears", headers, rows)


def _size_note(comparison: dict[str, Any]) -> str:
    """A sentence when the compared scenarios migrate different numbers of
    installations (their counts then differ with their size, not only their
    plan), else ""."""
    sizes = {
        name: entry.get("installations")
        for name, entry in comparison["scenarios"].items()
    }
    if len(set(sizes.values())) < 2 or None in sizes.values():
        return ""
    each = ", ".join(f"{name} {size:,}" for name, size in sizes.items())
    return (
        f"The scenarios migrate different numbers of installations ({each}): "
        "their differences in counts are partly their sizes, not only their plans."
    )


def comparison_text(
    comparison: dict[str, Any], summaries: dict[str, dict[str, Any]] | None = None
) -> str:
    """Each scenario's own dates, then against the first: paired differences with
    95% CIs (a difference whose interval spans zero is marked "no clear"), the
    order of the pairs' clearance days, with a note when the pairs are too
    weak to read it as the change's, and what the pairing bought."""
    from migsim.experiments.compare import pairing_words, weak_pairing_note

    first = comparison["first"]
    crn = (
        "common random numbers"
        if comparison["common_random_numbers"]
        else "independent seeds"
    )
    lines = [
        f"Compared with {first}: {comparison['replications']} paired replications, "
        f"seed {comparison['seed']}, {crn}. Negative = earlier or lower.",
        "",
    ]
    sizes = _size_note(comparison)
    if sizes:
        lines[-1:-1] = [sizes]
    by = comparison.get("p_clear_by")
    if summaries:
        lines += scenario_dates_text(summaries, by)
        lines.append("")

    def cell(item: dict[str, Any]) -> str:
        if item["diff"] is None:
            return "undefined"
        ci = item["ci95"]
        bounds = (
            ""
            if ci is None
            else " [{}, {}]".format(*("?" if v is None else signed(v) for v in ci))
        )
        return f"{signed(item['diff'])}{bounds}"

    for name, entry in comparison["scenarios"].items():
        if name == first:
            continue
        rows = []
        for figure, label in (
            ("clearance_day", "clearance day (days)"),
            ("dumb", "devices left dumb"),
            ("active_dumb", "  of which active"),
            ("abandoned", "installations abandoned"),
            (
                "active_interrupted_installation_days",
                "active interrupted installation-days",
            ),
            ("peak_failure_backlog", "peak failure backlog"),
        ):
            stats = entry["figures"][figure]
            rows.append(
                [label, cell(stats["p50"]), cell(stats["p90"]), cell(stats["mean"])]
            )
        for when, per in (by or {}).items():
            item = per[name]
            rows.append(
                [
                    f"P(cleared by {when}) (points)",
                    "",
                    "",
                    cell(
                        {
                            "diff": None
                            if item["diff"] is None
                            else item["diff"] * 100,
                            "ci95": None
                            if item["ci95"] is None
                            else [v * 100 for v in item["ci95"]],
                        }
                    ),
                ]
            )
        lines += text_table(
            f"{name} minus {first} [95% CI]", ["P50", "P90", "mean"], rows
        )
        neither = entry.get("p_neither_clears") or 0.0
        lines.append(
            f"  clears before {first}: {percent(entry['p_clears_before_first'])}, "
            f"same day: {percent(entry['p_clears_same_day'])}, "
            f"after: {percent(entry['p_clears_after_first'])}"
            + (f", neither within its horizon: {percent(neither)}" if neither else "")
        )
        clearance = entry.get("pairing", {}).get("clearance_day")
        note = weak_pairing_note(clearance)
        if note:  # beside the shares it is about, wrapped like a paragraph
            lines.append(
                textwrap.fill(note, 88, initial_indent="  ", subsequent_indent="  ")
            )
        lines.append(f"  pairing: {pairing_words(clearance)}")
        lines.append("")
    return "\n".join(lines).rstrip()


def candidate_line(candidate: Candidate) -> str:
    levers = ", ".join(f"{k}={v}" for k, v in candidate.levers.items())
    verdict = candidate.verdict
    if not candidate.safe:
        verdict += ": " + ", ".join(f"{c.label} {c.status}" for c in candidate.not_met)
    return (
        f"  candidate {candidate.index}: {levers}: {verdict} "
        f"({candidate.replications} replications)"
    )
