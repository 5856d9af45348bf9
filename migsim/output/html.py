"""Small HTML and number-format helpers of the OPSG report.

Every number taken from a run's summary is printed by `span` inside an element
carrying ``data-key`` (its dotted path in ``summary.json``) and ``data-value``
(the raw value), so a test can check the page against ``summary.json``. Images
are PNGs embedded as base64, so the page needs no network.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from migsim.common.errors import MigsimError
from migsim.common.stats import format_number  # re-exported: the report's numbers

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.model.scenario import Scenario

__all__ = [
    "CSS",
    "UNITS",
    "count_span",
    "date_span",
    "escape",
    "fold",
    "format_count",
    "format_date",
    "format_number",
    "html_table",
    "img",
    "interval_text",
    "png_base64",
    "signed",
    "span",
    "unit_scale",
    "unit_word",
    "wide_tables",
]

# .lead.fit: on a desktop at least 760 px high the title, the answer and the
# fan chart form one column no taller than the window, the chart shrinking
# (never growing) to what the answer leaves: it and the answer are the first
# screen. Narrower or shorter windows, and paper, keep the chart at its size.
# .lead.many (four or more scenarios): there the answer takes a smaller, tighter
# type, so its lines leave the chart most of its height.
CSS = """
body{font-family:Georgia,'Times New Roman',serif;color:#111;background:#fff;
max-width:1140px;margin:.8em auto;padding:0 1.2em;line-height:1.4}
h1{font-size:1.5em;margin:.2em 0 .1em}h2{border-bottom:1px solid #999;
padding-bottom:.15em;margin-top:1.4em}h3{margin:1em 0 .3em}
p.meta{color:#444;font-size:.85em;margin:.1em 0 .5em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.88em}
th,td{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
p.answer{font-size:1.08em;background:#f2f2f2;border-left:5px solid #333;
padding:.45em .8em;margin:.3em 0 .4em}p.recommendation{border-left-color:#0072B2}
.plan{display:block}.plan+.plan{margin-top:.3em}p.risks{margin:.2em 0 .4em}
h1,h2,h3,p.answer,p.risks{overflow-wrap:anywhere}
img{max-width:100%;height:auto;border:1px solid #ddd;margin:.3em 0}
.note{color:#444;font-size:.85em}.ci{color:#444;font-size:.78em;white-space:nowrap}.muted{color:#666}code{font-size:.9em;
word-break:break-all}td{overflow-wrap:break-word}
table.key{font-size:.86em;margin:.2em 0 .3em}table.key th[scope=row]{font-weight:normal}
mark{background:#ffe58a;padding:0 .15em}tr.diff th,tr.diff td:first-child{
background:#fff6cc}table.appendix{font-size:.78em;table-layout:fixed;width:100%;
line-height:1.25}
table.appendix td{padding:.1em .4em}table.appendix td.source{color:#333}
table.evidence{font-size:.78em}
.fold-toggle{position:absolute;opacity:0;width:1px;height:1px}
.fold-body{display:none}.fold-toggle:checked~.fold-body,
.fold:has(:target)>.fold-body{display:block}
.fold-head label{cursor:pointer}.fold-head label::before{content:"\\25B8\\00A0";
color:#555}.fold-toggle:checked~.fold-head label::before{content:"\\25BE\\00A0"}
.fold-head .note{font-weight:normal;font-size:.85rem;margin-left:.6em}
.fold-toggle:focus-visible~.fold-head label{outline:2px solid #0072B2}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:.4em}.grid img{margin:0}
.wide{overflow-x:auto;max-width:100%}.wide>table{margin-right:0}
.fan img{min-width:760px}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.4em;
vertical-align:-.05em;border-radius:2px}
@media (max-width:600px){body{padding:0 .6em;margin:.4em auto;line-height:1.3}
h1{font-size:1.12em}p.meta{font-size:.8em}p.answer{font-size:.95em;
padding:.35em .55em;border-left-width:4px}}
@media screen and (min-width:1000px) and (min-height:760px){
.lead.fit{display:flex;flex-direction:column;max-height:calc(100vh - .8em)}
.lead.fit>*{flex:none;margin-top:0}.lead.fit>.fan{flex:0 1 auto;min-height:0;
display:flex;flex-direction:column;align-items:flex-start}
.lead.fit>.fan img{flex:0 1 auto;min-height:0;min-width:0}
.lead.many p.answer{font-size:.92em;line-height:1.3;padding:.35em .7em}
.lead.many .plan+.plan{margin-top:.2em}}
@page{size:A4;margin:14mm 12mm}
@media print{body{max-width:none;margin:0;padding:0;font-size:10pt}
.first-screen{break-after:page}h2{break-after:avoid}h3{break-after:avoid}
img{break-inside:avoid;border:none}.wide{overflow:visible}.fan img{min-width:0}
tr,.grid img{break-inside:avoid}
p.answer{background:none;border-left-width:3px}a{color:inherit;
text-decoration:none}mark{background:none;font-weight:bold}
table.appendix{font-size:7.5pt}.fold-body{display:block}
.fold-head label::before,.fold-head .note{display:none}}
"""


_TABLE = re.compile(r"<table\b.*?</table>", re.S)


def wide_tables(page: str) -> str:
    """Each table in a box that scrolls sideways on its own.

    A table of several scenarios is wider than a phone (the key risks are about
    850 px): unboxed, it widened the whole page, so the answer and every chart
    slid sideways with it at 390 px. Boxed, only the table scrolls. The report's
    tables are never nested, so the shortest match is the whole table.
    """
    return _TABLE.sub(lambda m: f'<div class="wide">{m.group(0)}</div>', page)


def fold(
    key: str,
    heading: tuple[str, str, str],
    body: str,
    hint: str,
    *,
    unfolded: bool = False,
) -> str:
    """A section folded on screen, open on paper: its heading, a ``hint`` of
    what opening it shows, then ``body``.

    ``heading`` is (tag, attributes, inner HTML), e.g. ``("h2", 'id="appendix"',
    "Appendix")``; its text toggles the body (a checkbox, ``fold-<key>``, and
    CSS alone: the page has no script), shown from the start if ``unfolded``.
    Reference parts fold, so a committee's page stays short and the answer's
    sections are read first; the print stylesheet shows every body.
    """
    tag, attributes, inner = heading
    toggle = f"fold-{key}"
    return (
        f'<div class="fold"><input type="checkbox" class="fold-toggle" '
        f'id="{toggle}"{" checked" if unfolded else ""}>'
        f'<{tag} {attributes} class="fold-head"><label for="{toggle}">{inner}</label>'
        f'<span class="note">{escape(hint)}</span></{tag}>'
        f'<div class="fold-body">{body}</div></div>'
    )


UNITS = ("installations", "meters")


def format_date(value: str | date | None) -> str:
    """``2020-02-14`` -> ``14 Feb 2020``; ``after 2020-11-22`` -> ``after 22 Nov 2020``.

    ``None`` (an interval side too few replications can bound) reads as such.
    """
    if value is None:
        return "needs more replications"
    if isinstance(value, date):
        return f"{value.day} {value:%b %Y}"
    if value.startswith("after "):
        return "after " + format_date(date.fromisoformat(value[6:]))
    return format_date(date.fromisoformat(value))


def format_count(value: float | None, scale: float = 1.0) -> str:
    """A count in the report's units, thousands separated; "-" when undefined.

    Never "-0": a value that rounds to zero reads "0".
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{round(value * scale) + 0:,.0f}"


def signed(value: float, scale: float = 1.0, digits: int = 0) -> str:
    """``+12``, ``-3`` or ``0``: a difference with its sign, never ``-0``."""
    scaled = round(value * scale, digits)
    if scaled == 0:
        return "0"
    return f"{scaled:+,.{digits}f}"


def unit_scale(scenario: Scenario, units: str) -> float:
    """Multiplier from installations to the report's units."""
    if units not in UNITS:
        raise MigsimError(f"--units {units}: expected one of {', '.join(UNITS)}")
    if units == "installations":
        return 1.0
    if scenario.meters_per_installation is None:
        raise MigsimError(
            f"{scenario.name}: --units meters needs meters_per_installation in the "
            "scenario"
        )
    return float(scenario.meters_per_installation)


def unit_word(unit: str, units: str) -> str:
    """A unit in the report's units: installations become meters with --units meters."""
    if units == "meters":
        return unit.replace("installations", "meters").replace("installation", "meter")
    return unit


def escape(text: Any) -> str:
    """Any value as HTML text, quotes escaped (it also fills attributes)."""
    return html.escape(str(text), quote=True)


def span(key: str, value: Any, text: str, run: int | None = None) -> str:
    """``text`` tagged with the summary key and raw value it shows (for tests)."""
    raw = "null" if value is None else value
    attr = "" if run is None else f' data-run="{run}"'
    return (
        f'<span data-key="{escape(key)}" data-value="{escape(raw)}"{attr}>'
        f"{escape(text)}</span>"
    )


def date_span(summary: dict, key: str, run: int) -> str:
    """The date at dotted ``key`` of a summary, formatted and tagged."""
    node: Any = summary
    for part in key.split("."):
        node = node[part]
    return span(key, node, format_date(node), run)


def count_span(summary: dict, key: str, scale: float, run: int) -> str:
    """The count at dotted ``key`` of a summary, in the report's units and tagged."""
    node: Any = summary
    for part in key.split("."):
        node = node[part]
    return span(key, node, format_count(node, scale), run)


def png_base64(fig) -> str:
    """A chart as base64 PNG text, to embed: the page needs no image files."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return data


def img(fig, alt: str) -> str:
    """An ``<img>`` holding the chart itself."""
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{png_base64(fig)}">'


def html_table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[bool] | None = None,
) -> str:
    """A table; ``numeric`` columns are right-aligned. Cells are HTML already."""
    numeric = numeric or [False] * len(header)
    out = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = "".join(
            f'<td class="n">{c}</td>' if numeric[i] else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def interval_text(interval: list | None, kind: str, scale: float = 1.0) -> str:
    """A 95% interval of dates or counts; "undefined" when there is none."""
    if interval is None:
        return "undefined"
    low, high = interval
    if kind == "date":
        return _date_range(low, high)
    return f"{format_count(low, scale)} to {format_count(high, scale)}"


def _date_range(low: str | None, high: str | None) -> str:
    """``25 Feb-2 Mar 2020``: a range of dates, the year said once when shared."""
    if (
        low is None
        or high is None
        or low.startswith("after")
        or high.startswith("after")
    ):  # "?": a side too few replications can bound
        ends = ["?" if v is None else format_date(v) for v in (low, high)]
        return f"{ends[0]} to {ends[1]}"
    a, b = date.fromisoformat(low), date.fromisoformat(high)
    if a == b:
        return format_date(a)
    if a.year == b.year:
        return f"{a.day} {a:%b}\u2013{format_date(b)}"
    return f"{format_date(a)}\u2013{format_date(b)}"
