"""The report's first screen: the answer, one chart of every scenario, key risks.

A committee reads the first screen and perhaps nothing else, so it says when
the backlog clears under each scenario, shows every scenario on shared axes,
and lists the key risks with paired differences. A difference whose 95%
interval spans zero is noise at this replication count: it reads "no clear
difference", never a cost or a gain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from migsim.common.stats import percent
from migsim.evidence.intervals import RunLike
from migsim.model.policy import CONFIDENCE_METRICS, Condition, Rule
from migsim.model.scenario import Scenario
from migsim.output.html import (
    date_span,
    escape,
    format_count,
    format_date,
    img,
    signed,
    span,
    unit_word,
)
from migsim.output.meters import backlog_in_units
from migsim.output.report_sections import (
    OTHER_UNITS,
    RISK_FIGURES,
    UNIT_OF,
    risk_words,
    shown,
)
from migsim.results.figures import DUMB_INCLUDES_RECOVERABLE, dumb_may_recover
from migsim.sim.operations import OPERATIONS_FIGURES

__all__ = [
    "KEY_RISKS",
    "Verdict",
    "fan_figure",
    "headline",
    "key_risks_table",
    "ramp_basis",
    "risk_answer",
    "days_interval",
    "key_risk_names",
    "shift_words",
    "signed",
    "verdict",
]

#: The risks every first screen lists (when a run has them), in this order;
#: operations figures a scenario uses follow.
KEY_RISKS = (
    "active_interrupted_installation_days",
    "dumb",
    "peak_failure_backlog",
    "abandoned",
)
_MAX_KEY_RISKS = 7


class Verdict:
    """A paired difference judged against its 95% interval.

    ``kind`` is ``higher``/``lower`` when the whole interval is on one side of
    zero, ``same`` when every pair was equal, ``unbounded`` when too few
    replications clear to bound the interval, ``unclear`` when the interval
    spans zero, ``undefined`` when there is no difference to give.
    """

    def __init__(self, item: dict[str, Any] | None):
        item = item or {}
        self.diff: Any = item.get("diff")  # a number when kind is not undefined
        self.ci: Any = item.get("ci95")
        if self.diff is None:
            self.kind = "undefined"
        elif self.ci is None or None in self.ci:
            self.kind = "unbounded"  # too few replications clear to bound it
        elif self.ci[0] == self.ci[1] == self.diff == 0:
            self.kind = "same"
        elif self.ci[0] > 0:
            self.kind = "higher"
        elif self.ci[1] < 0:
            self.kind = "lower"
        else:
            self.kind = "unclear"

    @property
    def clear(self) -> bool:
        return self.kind in ("higher", "lower")

    def interval(self, scale: float = 1.0, days: bool = False) -> str:
        """``95% CI +2 to +5``; for ``days``, in the words of the shift itself
        ("95% CI 14 to 25 days earlier"), as the headline and the table say it."""
        if self.ci is None or None in self.ci:
            return "interval undefined"
        if days:
            return f"95% CI {days_interval(self.ci)}"
        return f"95% CI {signed(self.ci[0], scale)} to {signed(self.ci[1], scale)}"

    def cell(self, scale: float = 1.0, days: bool = False) -> str:
        """HTML: the difference when clear, else "no clear difference".

        ``days``: a difference of dates, said as days earlier or later.
        """
        if self.kind == "undefined":
            return '<span class="muted">undefined</span>'
        if self.kind == "same":
            return '<span class="muted">no difference</span>'
        if self.kind == "unbounded":
            word = signed(self.diff, scale)
            if days:
                later = "earlier" if self.diff < 0 else "later"
                word = f"{_days(self.diff)} {later}" if self.diff else "0 days"
            return (
                f'<span class="muted">{escape(word)}</span> <span class="note">'
                "(no interval: too few replications clear)</span>"
            )
        note = f' <span class="note">({escape(self.interval(scale, days))})</span>'
        if not self.clear:
            return '<span class="muted">no clear difference</span>' + note
        if days:
            word = "earlier" if self.diff < 0 else "later"
            text = f"{_days(self.diff)} {word}"
        else:
            text = signed(self.diff, scale)
        return f"<b>{escape(text)}</b>" + note


def verdict(comparison: dict, name: str, figure: str, statistic: str) -> Verdict:
    """The verdict on one figure of scenario ``name`` against the first."""
    entry = comparison["scenarios"][name]["figures"].get(figure, {})
    return Verdict(entry.get(statistic))


def _iso(value: str | None) -> date | None:
    if value is None or value.startswith("after"):
        return None
    return date.fromisoformat(value)


def _days(n: float) -> str:
    n = abs(round(n))
    return f"{n:,} day{'s' if n != 1 else ''}"


def shift_words(n: float) -> str:
    """A difference of dates in words: "21 days earlier", "3 days later"."""
    if round(n) == 0:
        return "0 days"
    return f"{_days(n)} {'earlier' if n < 0 else 'later'}"


def days_interval(ci: Sequence[float]) -> str:
    """A 95% interval of a date difference in the words of the shift:
    "14 to 25 days earlier", "2 to 9 days later", "3 days earlier to 5 days
    later" (the one sign convention of dates in the report)."""
    low, high = round(ci[0]), round(ci[1])
    if low == high:
        return shift_words(low)
    if high <= 0 and low < 0:
        return f"{-high:,} to {_days(low)} earlier"
    if low >= 0 and high > 0:
        return f"{low:,} to {_days(high)} later"
    return f"{shift_words(low)} to {shift_words(high)}"


def _clearance_shift(v: Verdict) -> str:
    """ "12 days earlier (95% CI 10 to 14 days)" or "no clear difference"."""
    if v.kind == "undefined":
        return "a shift that cannot be measured (some replications do not clear)"
    if v.kind == "same":
        return "no change"
    if v.kind == "unbounded":
        return f"{shift_words(v.diff)}; no interval: too few replications clear"
    if not v.clear:
        return f"no clear difference in P50 ({v.interval(days=True)})"
    return f"{shift_words(v.diff)}, {v.interval(days=True)}"


def headline(
    runs: Sequence[RunLike],
    summaries: Sequence[dict],
    comparison: dict | None,
    scales: Sequence[float],
    units: str,
    decided: Mapping[str, str] | None = None,
) -> str:
    """The answer in plain words (HTML), every number tagged with its key.

    One line per scenario, in its chart colour: the basis on which its volumes
    rise (`ramp_basis`) and when its backlog clears, P50 first, then P10 and
    P90; each scenario after the first with its paired P50 shift. Kept to that
    so the answer of three scenarios fits a phone's first screen; what each
    risks is said under the chart (`risk_answer`). ``decided``: HTML that ends
    a scenario's line, by its name (a question's verdict on that scenario).
    """
    first, s0 = runs[0], summaries[0]
    unit = unit_word("installations", units)
    backlog, median = backlog_in_units(first, scales[0])
    # with drawn meters per installation: the P50 the fan chart starts from
    how = " (P50 over replications, each at its own meters per installation)"
    how = how if median else ""
    lines = [
        f"{_lead(0)}<b>{escape(first.scenario.name)}</b> at "
        f"{ramp_basis(first.scenario, s0, 0, scales[0], units)}: the backlog of "
        f"{escape(format_count(backlog))} {unit}{how} clears by "
        f"<b>{date_span(s0, 'clearance_date.p50', 0)}</b> (P50); "
        f"{_spread(s0, 0, first.scenario)}."
    ]
    if comparison is not None:
        for i, (run, summary) in enumerate(
            zip(runs[1:], summaries[1:], strict=True), start=1
        ):
            name = run.scenario.name
            shift = _clearance_shift(verdict(comparison, name, "clearance_day", "p50"))
            size = ""
            if run.scenario.installations != first.scenario.installations:
                own, _ = backlog_in_units(run, scales[i])
                size = (
                    f" (a backlog of {escape(format_count(own))} {unit}, not "
                    f"{escape(format_count(backlog))}: its counts differ with its "
                    "size, not only its plan)"
                )
            lines.append(
                f"{_lead(i)}<b>{escape(name)}</b>{size} at "
                f"{ramp_basis(run.scenario, summary, i, scales[i], units)} brings P50 "
                f"to <b>{date_span(summary, 'clearance_date.p50', i)}</b> "
                f"({escape(shift)}); {_spread(summary, i, run.scenario)}."
            )
    decided = decided or {}
    lines = [
        line + decided.get(runs[i].scenario.name, "") for i, line in enumerate(lines)
    ]
    return "".join(f'<span class="plan">{line}</span>' for line in lines)


def _lead(index: int) -> str:
    """The scenario's colour, as in the chart, before its name."""
    from migsim.output.scenario_charts import scenario_colour

    return f'<span class="swatch" style="background:{scenario_colour(index)}"></span>'


def _spread(summary: dict, index: int, scenario: Scenario) -> str:
    """How sure the date is: "P10 1 Apr 2020, P90 3 Jun 2020", and the share
    of replications that do not clear within the horizon."""
    words = (
        f"P10 {date_span(summary, 'clearance_date.p10', index)}, "
        f"P90 {date_span(summary, 'clearance_date.p90', index)}"
    )
    if summary["cleared_share"] < 1:
        words += (
            f"; in {percent(1 - summary['cleared_share'])} of replications it does "
            f"not clear by {escape(format_date(scenario.end_date))}"
        )
    return words


def risk_answer(
    runs: Sequence[RunLike],
    summaries: Sequence[dict],
    comparison: dict | None,
    scales: Sequence[float],
    units: str,
) -> str:
    """What each scenario risks, in words (a paragraph under the fan chart).

    One scenario: what it leaves behind (P50, P90). Several: each against the
    first, clear differences of the key risks with their intervals, then those
    the runs cannot tell apart ("no clear difference").
    """
    if comparison is None or len(runs) == 1:
        recoverable = dumb_may_recover(runs[0].scenario)
        text = _single_risks(summaries[0], scales[0], units, recoverable).strip()
    else:
        first = escape(runs[0].scenario.name)
        text = "".join(
            f'<span class="plan">{_lead(i)}<b>{escape(run.scenario.name)}</b> '
            f"against {first}: "
            + _risk_sentence(runs, comparison, i, scales[i], units)
            + "</span>"
            for i, run in enumerate(runs[1:], start=1)
        )
    return f'<p class="risks" id="risk-answer">{text}</p>'


#: A rule's metric as the first screen says it (short: the detail says more).
_METRIC_WORDS = {
    "first_attempt_success_rate": "first-attempt success",
    "eventual_success_rate": "eventual success",
    "stall_rate": "stall rate",
    "rollback_rate": "rollback rate",
    "dumb_count": "devices gone dumb",
    "active_fix_forward_count": "active fix forwards",
    "stalled_backlog": "stalled",
    "attempt_count": "attempts",
    "active_failure_rate_upper": "active failure rate",
    "els_backlog": "ELS/MCC cases waiting",
}
_SIGNS = {">=": "\u2265", ">": ">", "<": "<", "<=": "\u2264"}


def ramp_basis(
    scenario: Scenario, summary: dict, index: int, scale: float, units: str
) -> str:
    """The basis on which a scenario's volumes rise, short and in words (HTML).

    The starting cap; each planned step and what starts it (a date, or a gate
    said by its description with the P50 date it opened in the run); each rule
    that raises the cap, with its cadence, its evidence and its ceiling; then,
    smaller, the rules that halt or cut: "2,000/day until MCC tooling
    automation passes Business Acceptance Testing (P50 15 Jan 2020), then +50%
    every 10 working days while 10-day eventual success >= 97% and stalled <
    500, up to 10,000/day (halt 3 days if ...)". A flat cap is "2,000/day", a
    dated step "2,000/day, then 5,000/day from 6 Jan 2020", as
    `capacity_phrase` says them.
    """
    capacity = scenario.capacity
    said: set[str] = set()

    def per_day(cap: int) -> str:
        if units == "meters":
            return f"{cap:,} installations/day (about {cap * scale:,.0f} meters)"
        return f"{cap:,}/day"

    def gate(name: str) -> str:
        """A gate by its description, with its P50 opening date the first time."""
        found = next((g for g in scenario.gates if g.name == name), None)
        about = found.description if found is not None else ""
        if about:  # "MCC tooling automation passes BAT": keep an acronym's capitals
            words = escape(
                about[0].lower() + about[1:] if about[1:2].islower() else about
            )
        else:
            words = f"gate {escape(name)} opens"
        if name in said:
            return words
        said.add(name)
        gates = summary.get("policy", {}).get("gates", {})
        if name in gates and "opening_date" in gates[name]:
            key = f"policy.gates.{name}.opening_date.p50"
            words += f" (P50 {date_span(summary, key, index)})"
        return words

    phrase = start = escape(per_day(capacity.daily_cap))
    for step in capacity.schedule:
        begins: Any = step.from_
        if isinstance(begins, str):
            try:
                begins = date.fromisoformat(begins)
            except ValueError:  # a gate's name: the step waits for it
                cap = escape(per_day(step.daily_cap))
                phrase += f", then {cap} once {gate(str(step.from_))}"
                continue
        when = format_date(begins) if isinstance(begins, date) else "an uncertain date"
        phrase += f", then {escape(per_day(step.daily_cap))} from {escape(when)}"
    brakes = []
    for rule in capacity.rules:
        if rule.action not in ("step_factor", "raise_to"):
            brakes.append(_brake_words(rule, per_day, units))
            continue
        needs = rule.requires.gate
        if needs and needs not in said:
            # the starting cap alone before it: it holds until the gate opens
            said_gate = gate(needs)
            phrase += (
                f" until {said_gate}, then"
                if phrase == start
                else f"; once {said_gate},"
            )
        else:
            phrase += "; and" if capacity.schedule else ", then"
        phrase += " " + _raise_words(rule, per_day, units)
    if brakes:
        phrase += f' <span class="note">({"; ".join(brakes)})</span>'
    return phrase


def _raise_words(rule: Rule, per_day: Any, units: str) -> str:
    """ "+50% every 10 working days while ..., up to 10,000/day" (escaped)."""
    days = rule.requires.min_days_at_cap
    if rule.action == "step_factor":
        words = f"+{(rule.factor or 1) - 1:.0%}"
        words += f" every {days} working days" if days else " each working day"
    else:
        ceiling = min(rule.cap or 0, rule.max_cap or rule.cap or 0)
        words = f"to {per_day(ceiling)}"
        words += f" after {days} working days at the cap" if days else ""
    if rule.when:
        words += " while " + " and ".join(_condition(c, units) for c in rule.when)
    if rule.action == "step_factor":
        words += (
            f", up to {per_day(rule.max_cap)}"
            if rule.max_cap is not None
            else ", with no ceiling"
        )
    return escape(words)


def _brake_words(rule: Rule, per_day: Any, units: str) -> str:
    """ "halt 3 days if 5-day stall rate > 8% and ..." (escaped)."""
    days = f"{rule.days} working day{'s' if rule.days != 1 else ''}"
    words = {
        "halt_days": f"halt {days}",
        "cut_to": f"cut to {per_day(rule.cap or 0)}",
        "hold": f"hold the cap {days}",
    }.get(rule.action, rule.name.replace("_", " "))
    if rule.requires.min_days_at_cap:
        words += f" after {rule.requires.min_days_at_cap} working days at the cap"
    if rule.when:
        words += " if " + " and ".join(_condition(c, units) for c in rule.when)
    return escape(words)


def _condition(condition: Condition, units: str) -> str:
    """ "10-day eventual success >= 97%", "stalled < 500" (text)."""
    words = _METRIC_WORDS.get(condition.metric, condition.metric.replace("_", " "))
    if condition.metric in CONFIDENCE_METRICS and condition.confidence is not None:
        words += f" ({percent(condition.confidence)} upper bound)"
    window = f"{condition.window}-day " if condition.window > 1 else ""
    metric = condition.metric
    if metric.endswith("_rate") or metric.endswith("_upper"):
        value = percent(condition.value)
    else:
        value = f"{condition.value:,.0f}"
        if units == "meters" and metric in ("stalled_backlog", "attempt_count"):
            value += " installations"
    return f"{window}{words} {_SIGNS[condition.op]} {value}"


def _single_risks(
    summary: dict, scale: float, units: str, recoverable: bool = False
) -> str:
    """The risks of one run in a sentence; ``recoverable``: its dumb devices
    include some awaiting remote recovery, and the sentence says so."""
    figures = summary["figures"]

    def tagged(name: str, stat: str) -> str:
        value = figures[name][stat]
        return span(f"figures.{name}.{stat}", value, format_count(value, scale), 0)

    unit = unit_word("installations", units)
    return (
        f" On the way it leaves {tagged('dumb', 'p50')} devices dumb"
        + (" (some may yet be recovered remotely)" if recoverable else "")
        + " and "
        f"{tagged('active_interrupted_installation_days', 'p50')} "
        f"{escape(unit_word('installation', units))}-days of active smart service "
        f"interrupted (P50), with up to {tagged('peak_failure_backlog', 'p90')} "
        f"{unit} stalled or rolled back at once (P90)."
    )


def _risk_sentence(
    runs: Sequence[RunLike], comparison: dict, index: int, scale: float, units: str
) -> str:
    """Clear differences of the key risks (means of pairs), then the unclear ones."""
    name = runs[index].scenario.name
    clear, unclear = [], []
    for figure in key_risk_names(runs, comparison):
        v = verdict(comparison, name, figure, "mean")
        words = risk_words(figure, units)
        factor = 1.0 if figure in OTHER_UNITS else scale
        if v.clear:
            more = "more" if v.diff > 0 else "fewer"
            clear.append(
                f"{more} {escape(words)} ({escape(signed(v.diff, factor))} on average, "
                f"{escape(v.interval(factor))})"
            )
        elif v.kind != "undefined":
            unclear.append(escape(words))
    out = []
    if clear:
        out.append("it brings " + "; ".join(clear))
    if unclear:
        out.append("no clear difference in " + ", ".join(unclear))
    if not out:
        return "its risks cannot be compared."
    return (", ".join(out) if not clear else "; ".join(out)) + "."


def key_risk_names(
    runs: Sequence[RunLike],
    comparison: dict | None = None,
    required: Sequence[str] = (),
) -> list:
    """The risks the first screen lists: the core four, then operations in use.

    ``required`` (a decision's budgeted figures) are always listed, whatever
    the limit of `_MAX_KEY_RISKS`: the other risks make room for them.
    """
    figures = runs[0].summary.get("figures", {})
    names = [n for n in KEY_RISKS if n in figures]
    for name in OPERATIONS_FIGURES:
        if name in RISK_FIGURES and any(
            shown(name, r.scenario) and name in r.summary.get("figures", {})
            for r in runs
        ):
            names.append(name)
    must = [n for n in dict.fromkeys(required) if n in RISK_FIGURES and n in figures]
    names += [n for n in must if n not in names]
    room = max(0, _MAX_KEY_RISKS - len(must))
    kept = []
    for name in names:
        if name in must:
            kept.append(name)
        elif room:
            kept.append(name)
            room -= 1
    return kept


def key_risks_table(
    runs: Sequence[RunLike],
    summaries: Sequence[dict],
    comparison: dict | None,
    scales: Sequence[float],
    units: str,
    budgets: Mapping[str, str] | None = None,
) -> str:
    """Clearance dates and key risks per scenario, with the paired differences.

    ``budgets``: a decision's budgeted figures, each with its budget in words
    ("budget: P90 at most 1,500"); every one is listed, its budget beside it.
    """
    budgets = budgets or {}
    names = [r.scenario.name for r in runs]
    diffs = names[1:] if comparison is not None else []
    head = ["", *names, *(f"{n} minus {names[0]}" for n in diffs)]
    rows = []
    for stat in ("p50", "p90"):
        cells = [f"clears ({stat.upper()})"]
        cells += [
            date_span(s, f"clearance_date.{stat}", i) for i, s in enumerate(summaries)
        ]
        for name in diffs:
            v = verdict(comparison, name, "clearance_day", stat)  # type: ignore[arg-type]
            cells.append(v.cell(days=True))
        rows.append(cells)
    listed = key_risk_names(runs, comparison, list(budgets))
    for figure in listed:
        other = figure in OTHER_UNITS
        unit = OTHER_UNITS[figure] if other else unit_word(UNIT_OF[figure], units)
        note = f"{unit}; {escape(budgets[figure])}" if figure in budgets else unit
        cells = [
            f"{escape(risk_words(figure, units))} <span class='note'>({note})</span>"
        ]
        for i, s in enumerate(summaries):
            stats = s["figures"].get(figure)
            if stats is None:
                cells.append("-")
                continue
            factor = 1.0 if other else scales[i]
            cells.append(
                span(
                    f"figures.{figure}.p50",
                    stats["p50"],
                    format_count(stats["p50"], factor),
                    i,
                )
                + '<span class="note"> P50, </span>'
                + span(
                    f"figures.{figure}.p90",
                    stats["p90"],
                    format_count(stats["p90"], factor),
                    i,
                )
                + '<span class="note"> P90</span>'
            )
        for name in diffs:
            v = verdict(comparison, name, figure, "mean")  # type: ignore[arg-type]
            cells.append(v.cell(1.0 if other else scales[0]))
        rows.append(cells)
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + f"<th scope='row'>{cells[0]}</th>"
        + "".join(f'<td class="n">{c}</td>' for c in cells[1:])
        + "</tr>"
        for cells in rows
    )
    note = (
        '<p class="note">Differences are paired, replication by replication: for '
        "dates the P50 and P90 difference (paired bootstrap), for risks the mean of "
        "the pairs (Student-t). Where the 95% interval spans zero the runs cannot "
        "tell the scenarios apart: it reads &ldquo;no clear difference&rdquo;.</p>"
        if diffs
        else ""
    )
    dumb = {"dumb", "active_dumb", "dormant_dumb"} & set(listed)
    if dumb and any(dumb_may_recover(r.scenario) for r in runs):
        note += f'<p class="note">{escape(DUMB_INCLUDES_RECOVERABLE)}</p>'
    return f'<table class="key" id="key-risks"><tr>{header}</tr>{body}</table>{note}'


def fan_figure(
    runs: Sequence[RunLike],
    summaries: Sequence[dict],
    scales: Sequence[float],
    units: str,
) -> str:
    """The one fan chart of every scenario (an ``<img>``), or a note why not."""
    from migsim.output.scenario_charts import (
        ScenarioBands,
        scenario_colour,
        scenarios_fan_chart,
    )

    if not all(getattr(r, "has_daily", True) for r in runs):
        return (
            '<p class="note">No fan chart: a run was written with --no-daily, '
            "so its daily backlog is not kept.</p>"
        )
    series = []
    for i, (run, summary) in enumerate(zip(runs, summaries, strict=True)):
        bands = run.bands("remaining", quantiles=(0.05, 0.1, 0.5, 0.9, 0.95))
        for column in ("p5", "p10", "p50", "p90", "p95"):
            bands[column] = bands[column] * scales[i]
        series.append(
            ScenarioBands(
                run.scenario.name,
                bands,
                _iso(summary["clearance_date"]["p50"]),
                _iso(summary["clearance_date"]["p90"]),
                scenario_colour(i),
            )
        )
    # the axis holds every band: with drawn meters per installation the P95
    # starts above the installations at the point ratio (it was clipped)
    total = max(
        max(r.scenario.installations * scales[i] for i, r in enumerate(runs)),
        *(float(s.bands["p95"].max()) for s in series),
    )
    figure = scenarios_fan_chart(series, total, unit_word("installations", units))
    names = ", ".join(r.scenario.name for r in runs)
    # on a phone the chart keeps a readable width and pans in its box (shrunk
    # to 350 px its labels were 4 px high)
    chart = img(figure, f"Backlog still to migrate, every scenario: {names}")
    return f'<div class="wide fan">{chart}</div>'
