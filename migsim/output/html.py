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
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from migsim.common.errors import MigsimError

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.model.scenario import Scenario

__all__ = [
    "CSS",
    "UNITS",
    "count_span",
    "date_span",
    "escape",
    "format_count",
    "format_date",
    "format_number",
    "html_table",
    "img",
    "interval_text",
    "png_base64",
    "span",
    "unit_scale",
    "unit_word",
]

CSS = """
body{font-family:Georgia,'Times New Roman',serif;color:#111;background:#fff;
max-width:1000px;margin:2em auto;padding:0 1.2em;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #999;
padding-bottom:.15em;margin-top:1.8em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #bbb;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
p.answer{font-size:1.25em;background:#f2f2f2;border-left:5px solid #333;
padding:.6em .9em}img{max-width:100%;height:auto;border:1px solid #ddd;margin:.4em 0}
.note{color:#444;font-size:.9em}code{font-size:.9em;word-break:break-all}
td{overflow-wrap:break-word}
"""


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
    """A count in the report's units, thousands separated; "-" when undefined."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value * scale:,.0f}"


def format_number(value: float) -> str:
    """A candidate's number: integers in full, others to 3 figures; inf unbounded."""
    if not math.isfinite(value):
        return "unbounded" if value > 0 else "-"
    if value.is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


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
        return f"{format_date(low)} to {format_date(high)}"
    return f"{format_count(low, scale)} to {format_count(high, scale)}"
