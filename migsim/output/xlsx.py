"""Workbooks written directly: the file pandas and openpyxl write, without them.

``results.xlsx`` used to be written by ``DataFrame.to_excel`` through openpyxl,
which builds an object per cell and serialises each through ElementTree: about
half a second for a small run, more than a second for a thousand replications,
and memory that grows with them. A run's sheets are plain tables (text, whole
and decimal numbers, dates), so this module writes the same XML parts as text
and zips them the same way: the same workbook, byte for byte apart from the
times it was written at (the tests compare the two). A worksheet is encoded and
compressed row by row as it is made, so a sheet of ten thousand replications
is never held whole.

What it does not write as openpyxl would (a formula-like or error-like text, a
character a worksheet may not hold, a time span, a time zone, a sheet without
columns, an unusual sheet name) raises `Unsupported` before anything is
written, and the caller falls back to pandas.

How openpyxl decides what a cell holds, which this follows:

- pandas turns a missing value into ``""``, +-inf into ``"inf"`` / ``"-inf"``,
  numpy scalars into Python ones, and gives dates the format ``YYYY-MM-DD``
  (``YYYY-MM-DD HH:MM:SS`` with a time);
- numbers are written with ``%.16g``, booleans as 1/0, text inline (with
  ``xml:space="preserve"`` when it starts or ends with a space), dates as
  Excel serial days;
- number formats are numbered from 164 in the order pandas first sets them
  (openpyxl's own date format first), sheet by sheet, column by column; cell
  styles in the order the cells are saved, row by row.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migsim.output.xlsx_theme import THEME_XML

__all__ = ["Unsupported", "column_width", "write_workbook"]


class Unsupported(ValueError):
    """A workbook this module does not write as openpyxl would: use pandas."""


def column_width(name: Any) -> int:
    """A column's width in characters: its name's, within 10 to 40."""
    return max(10, min(40, len(str(name)) + 2))


# --------------------------------------------------------------------------- cells
#: openpyxl's date formats (set first), then pandas' (which replace them).
_FORMATS = {
    "date": ("yyyy-mm-dd", "YYYY-MM-DD"),
    "datetime": ("yyyy-mm-dd h:mm:ss", "YYYY-MM-DD HH:MM:SS"),
}
_EPOCH = dt.datetime(1899, 12, 30)
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
_ERROR_CODES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")
_SHEET_NAME = re.compile(r"[A-Za-z0-9_ .-]{1,31}")


def _escape(text: str) -> str:
    """Text as ElementTree escapes it."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _text_cell(text: str) -> str:
    """The inside and type of a text cell (after `_check_text`)."""
    if text == "":
        return ' t="inlineStr" />'
    stripped = text.strip()
    space = ' xml:space="preserve"' if stripped and text != stripped else ""
    return f' t="inlineStr"><is><t{space}>{_escape(text)}</t></is></c>'


def _check_text(text: str) -> str:
    """openpyxl's checks: cut at 32,767 characters; refuse what it would not keep."""
    if len(text) > 32767:
        warnings.warn(  # as pandas warns
            "Cell contents too long, truncated to 32767 characters",
            UserWarning,
            stacklevel=2,
        )
        text = text[:32767]
    if _ILLEGAL.search(text):
        raise Unsupported("a character a worksheet may not hold")
    if (len(text) > 1 and text.startswith("=")) or text in _ERROR_CODES:
        raise Unsupported(f"text openpyxl writes as a formula or error: {text!r}")
    return text


def _number(value: float) -> str:
    return f' t="n"><v>{value:.16g}</v></c>'


def _serial(value: dt.date) -> float:
    """Excel's serial day of a date or datetime (openpyxl's ``to_excel``)."""
    moment = (
        value
        if isinstance(value, dt.datetime)  # a pandas Timestamp too
        else dt.datetime.combine(value, dt.time())
    )
    days = (moment - _EPOCH).days
    if 0 < days <= 60:
        days -= 1
    seconds = (
        moment.hour * 3600
        + moment.minute * 60
        + moment.second
        + moment.microsecond / 10**6
    )
    return days + seconds / 86400


def _general(value: Any) -> tuple[str, str | None]:
    """One value as pandas hands it to openpyxl: ``(cell, date kind or None)``.

    ``cell`` is what follows the cell's reference: its type and content (a
    date's style goes before it, once it is numbered).
    """
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return _text_cell(""), None
    if getattr(value, "tzinfo", None) is not None:
        raise Unsupported("a time zone")
    if pd.api.types.is_float(value) and np.isinf(value):
        return _text_cell("inf" if value > 0 else "-inf"), None
    if pd.api.types.is_integer(value):
        return _number(int(value)), None
    if pd.api.types.is_float(value):
        return _number(float(value)), None
    if pd.api.types.is_bool(value):
        return f' t="b"><v>{"1" if value else "0"}</v></c>', None
    if isinstance(value, Decimal | dt.timedelta | dt.time):
        raise Unsupported(f"a {type(value).__name__}")
    if isinstance(value, dt.datetime):
        return _number(_serial(value)), "datetime"
    if isinstance(value, dt.date):
        return _number(_serial(value)), "date"
    return _text_cell(_check_text(str(value))), None


def _float_cell(value: float) -> str:
    if value != value:  # nan: a missing value
        return _text_cell("")
    if value in (np.inf, -np.inf):
        return _text_cell("inf" if value > 0 else "-inf")
    return _number(value)


def _repeats(value: Any) -> bool:
    """Whether ``value``'s cell may be made once for all its repeats in a
    column (`_Column`): a date or a short text, whose cell depends on its value
    alone (a float's would not: -0.0 equals 0.0). The bands sheet of the full
    fleet has 16,776 dates and cohorts in 1,864 and 9 values, and making each
    cell took a fifth of the workbook's time."""
    kind = type(value)
    return kind is dt.date or (kind is str and len(value) <= 32767)


class _Column:
    """One column's cells, made as each row is written.

    A numpy column of whole or decimal numbers keeps its values (as Python
    numbers: their text is made per row, never all held at once); any other
    column is converted at once (`_general`), which checks every value before
    anything is written and registers its dates' formats in pandas' order.
    """

    def __init__(self, values: Iterable[Any], kind: str, styles: _Styles):
        self.formats: dict[int, int] = {}  # row index: number format of a date
        if kind in "iuf":
            self.values: list[Any] = list(values)
            self.cell: Callable[[Any], str] = _number if kind in "iu" else _float_cell
            return
        cells = []
        made: dict[Any, tuple[str, str | None]] = {}
        for i, value in enumerate(values):
            if _repeats(value):  # a run's bands: each date once a cohort
                known = made.get(value)
                if known is None:
                    known = made[value] = _general(value)
                cell, date_kind = known
            else:
                cell, date_kind = _general(value)
            cells.append(cell)
            if date_kind is not None:
                self.formats[i] = styles.format_id(date_kind)
        self.values, self.cell = cells, str


# --------------------------------------------------------------------------- styles
class _Styles:
    """The workbook's number formats and cell styles, numbered as openpyxl does."""

    def __init__(self) -> None:
        self.formats: list[str] = []
        self.cell_styles: list[int] = [0]  # numFmtIds; style 0 is the default

    def format_id(self, kind: str) -> int:
        """Register a date kind's formats (openpyxl's, then pandas'); pandas' id."""
        for code in _FORMATS[kind]:
            if code not in self.formats:
                self.formats.append(code)
        return 164 + self.formats.index(_FORMATS[kind][1])

    def style_id(self, format_id: int) -> int:
        if format_id not in self.cell_styles:
            self.cell_styles.append(format_id)
        return self.cell_styles.index(format_id)

    def xml(self) -> str:
        formats = "".join(
            f'<numFmt numFmtId="{164 + i}" formatCode="{code}" />'
            for i, code in enumerate(self.formats)
        )
        formats = (
            f'<numFmts count="{len(self.formats)}">{formats}</numFmts>'
            if self.formats
            else '<numFmts count="0" />'
        )
        xfs = "".join(
            f'<xf numFmtId="{fmt}" fontId="0" fillId="0" borderId="0" '
            'pivotButton="0" quotePrefix="0" xfId="0" />'
            for fmt in self.cell_styles
        )
        colours = "".join(f'<rgbColor rgb="{rgb}" />' for rgb in _COLOURS.split())
        return (
            f'<styleSheet xmlns="{_MAIN}">{formats}{_FONTS_TO_XFS}'
            f'<cellXfs count="{len(self.cell_styles)}">{xfs}</cellXfs>'
            f"{_CELL_STYLES}<colors><indexedColors>{colours}</indexedColors>"
            "</colors></styleSheet>"
        )


# --------------------------------------------------------------------------- sheets
def _column_letter(index: int) -> str:
    """1 -> A, 27 -> AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


class _Sheet:
    """One frame's cells, formats registered column by column as pandas sets them."""

    def __init__(self, frame: pd.DataFrame, styles: _Styles):
        if not len(frame.columns):
            raise Unsupported("a sheet without columns")
        self.letters = [_column_letter(j) for j in range(1, len(frame.columns) + 1)]
        self.widths = [column_width(c) for c in frame.columns]
        # the header row is one more "column" of cells, read first
        self.header = _Column(list(frame.columns), "O", styles)
        self.columns = []
        for j in range(frame.shape[1]):
            series = frame.iloc[:, j]
            kind = series.dtype.kind if isinstance(series.dtype, np.dtype) else "O"
            values = series.to_numpy().tolist() if kind in "iuf" else series
            self.columns.append(_Column(values, kind, styles))
        self.rows = len(frame)

    def _row(self, row: int) -> Iterable[tuple[str, int | None]]:
        """Row ``row``'s cells (1 is the header) with their date formats."""
        if row == 1:
            header = self.header
            return ((c, header.formats.get(j)) for j, c in enumerate(header.values))
        i = row - 2
        return (
            (c.cell(c.values[i]), c.formats.get(i) if c.formats else None)
            for c in self.columns
        )

    def xml(self, styles: _Styles) -> Iterator[str]:
        """The worksheet part, in pieces; cell styles are numbered here, row by row."""
        last = f"{self.letters[-1]}{self.rows + 1}"
        cols = "".join(
            f'<col width="{width:.16g}" customWidth="1" min="{j}" max="{j}" />'
            for j, width in enumerate(self.widths, start=1)
        )
        yield f"{_SHEET_TOP.format(ref=f'A1:{last}')}<cols>{cols}</cols><sheetData>"
        for row in range(1, self.rows + 2):
            parts = [f'<row r="{row}">']
            for letter, (cell, format_id) in zip(
                self.letters, self._row(row), strict=True
            ):
                if format_id is None:
                    parts.append(f'<c r="{letter}{row}"{cell}')
                else:
                    style = styles.style_id(format_id)
                    parts.append(f'<c r="{letter}{row}" s="{style}"{cell}')
            parts.append("</row>")
            yield "".join(parts)
        yield f"</sheetData>{_SHEET_TAIL}"


# --------------------------------------------------------------------------- package
def write_workbook(path: str | Path, sheets: dict[str, pd.DataFrame]) -> None:
    """Write ``sheets`` (name: frame, in order) to an .xlsx file at ``path``.

    Each sheet has the frame's columns as a header row (frozen below it), no
    index, and columns `column_width` wide. Raises `Unsupported` (writing
    nothing) for what it does not write as pandas and openpyxl would.
    """
    names = list(sheets)
    if not names or not all(_SHEET_NAME.fullmatch(n) for n in names):
        raise Unsupported(f"sheet names {names}")
    styles = _Styles()
    built = [_Sheet(frame, styles) for frame in sheets.values()]  # checks every value
    now = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as book:
        book.writestr("docProps/app.xml", _APP)
        book.writestr("docProps/core.xml", _CORE.format(now=now))
        book.writestr("xl/theme/theme1.xml", THEME_XML)
        for index, sheet in enumerate(built, start=1):  # cell styles numbered in order
            _write_streamed(book, f"xl/worksheets/sheet{index}.xml", sheet.xml(styles))
        book.writestr("xl/styles.xml", styles.xml())
        book.writestr("_rels/.rels", _ROOT_RELS)
        book.writestr("xl/workbook.xml", _workbook_xml(names))
        book.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(names)))
        book.writestr("[Content_Types].xml", _content_types(len(names)))


def _write_streamed(book: zipfile.ZipFile, name: str, pieces: Iterable[str]) -> None:
    """A member as openpyxl adds a worksheet (a private file's attributes), its
    text encoded and compressed as it comes, never held whole."""
    info = zipfile.ZipInfo(name, date_time=time.localtime(time.time())[:6])
    info.external_attr = 0o100600 << 16  # a regular file readable by its owner
    info.compress_type = zipfile.ZIP_DEFLATED
    with book.open(info, "w") as out:
        batch: list[str] = []
        size = 0
        for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if size >= 1 << 16:
                out.write("".join(batch).encode("utf-8"))
                batch, size = [], 0
        out.write("".join(batch).encode("utf-8"))


def _each(count: int, make: Callable[[int], str]) -> str:
    return "".join(make(i) for i in range(1, count + 1))


def _workbook_xml(names: Iterable[str]) -> str:
    sheets = "".join(
        f'<sheet name="{name}" sheetId="{i}" state="visible" r:id="rId{i}" />'
        for i, name in enumerate(names, start=1)
    )
    return (
        f'<workbook xmlns:r="{_RELS_NS}" xmlns="{_MAIN}"><workbookPr />'
        '<workbookProtection /><bookViews><workbookView visibility="visible" '
        'minimized="0" showHorizontalScroll="1" showVerticalScroll="1" '
        'showSheetTabs="1" tabRatio="600" firstSheet="0" activeTab="0" '
        f'autoFilterDateGrouping="1" /></bookViews><sheets>{sheets}</sheets>'
        '<definedNames /><calcPr calcId="124519" fullCalcOnLoad="1" /></workbook>'
    )


def _workbook_rels(count: int) -> str:
    sheets = _each(
        count,
        lambda i: (
            f'<Relationship Type="{_RELS_NS}/worksheet" '
            f'Target="/xl/worksheets/sheet{i}.xml" Id="rId{i}" />'
        ),
    )
    return (
        f'<Relationships xmlns="{_PACKAGE}/relationships">{sheets}'
        f'<Relationship Type="{_RELS_NS}/styles" Target="styles.xml" '
        f'Id="rId{count + 1}" /><Relationship Type="{_RELS_NS}/theme" '
        f'Target="theme/theme1.xml" Id="rId{count + 2}" /></Relationships>'
    )


def _content_types(count: int) -> str:
    office = "application/vnd.openxmlformats-officedocument"
    sheets = _each(
        count,
        lambda i: (
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
            f'ContentType="{office}.spreadsheetml.worksheet+xml" />'
        ),
    )
    return (
        f'<Types xmlns="{_PACKAGE}/content-types"><Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml" />'
        '<Default Extension="xml" ContentType="application/xml" />'
        '<Override PartName="/xl/styles.xml" '
        f'ContentType="{office}.spreadsheetml.styles+xml" />'
        '<Override PartName="/xl/theme/theme1.xml" '
        f'ContentType="{office}.theme+xml" />'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml" />'
        '<Override PartName="/docProps/app.xml" '
        f'ContentType="{office}.extended-properties+xml" />{sheets}'
        '<Override PartName="/xl/workbook.xml" '
        f'ContentType="{office}.spreadsheetml.sheet.main+xml" /></Types>'
    )


# --------------------------------------------------------------------------- constants
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PACKAGE = "http://schemas.openxmlformats.org/package/2006"
_RELS_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_APP = (
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
    'extended-properties"><Application>Microsoft Excel Compatible / Openpyxl 3.1.5'
    "</Application><AppVersion>3.1</AppVersion></Properties>"
)
_CORE = (
    f'<cp:coreProperties xmlns:cp="{_PACKAGE}/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<dc:creator>openpyxl</dc:creator>"
    '<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
    '<dcterms:modified xsi:type="dcterms:W3CDTF">{now}</dcterms:modified>'
    "</cp:coreProperties>"
)
_ROOT_RELS = (
    f'<Relationships xmlns="{_PACKAGE}/relationships">'
    f'<Relationship Type="{_RELS_NS}/officeDocument" Target="xl/workbook.xml" '
    'Id="rId1" /><Relationship '
    f'Type="{_PACKAGE}/relationships/metadata/core-properties" '
    'Target="docProps/core.xml" Id="rId2" />'
    f'<Relationship Type="{_RELS_NS}/extended-properties" '
    'Target="docProps/app.xml" Id="rId3" /></Relationships>'
)
_SHEET_TOP = (
    f'<worksheet xmlns="{_MAIN}"><sheetPr><outlinePr summaryBelow="1" '
    'summaryRight="1" /><pageSetUpPr /></sheetPr><dimension ref="{ref}" />'
    '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
    'activePane="bottomLeft" state="frozen" /><selection pane="bottomLeft" '
    'activeCell="A1" sqref="A1" /></sheetView></sheetViews>'
    '<sheetFormatPr baseColWidth="8" defaultRowHeight="15" />'
)
_SHEET_TAIL = (
    '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" '
    'footer="0.5" /></worksheet>'
)
_FONTS_TO_XFS = (
    '<fonts count="1"><font><name val="Calibri" /><family val="2" />'
    '<color theme="1" /><sz val="11" /><scheme val="minor" /></font></fonts>'
    '<fills count="2"><fill><patternFill /></fill><fill><patternFill '
    'patternType="gray125" /></fill></fills><borders count="1"><border><left />'
    "<right /><top /><bottom /><diagonal /></border></borders>"
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
    'borderId="0" /></cellStyleXfs>'
)
_CELL_STYLES = (
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0" '
    'hidden="0" /></cellStyles><tableStyles count="0" '
    'defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16" />'
)
#: The 64 indexed colours of every stylesheet openpyxl writes.
_COLOURS = """
    00000000 00FFFFFF 00FF0000 0000FF00 000000FF 00FFFF00 00FF00FF 0000FFFF
    00000000 00FFFFFF 00FF0000 0000FF00 000000FF 00FFFF00 00FF00FF 0000FFFF
    00800000 00008000 00000080 00808000 00800080 00008080 00C0C0C0 00808080
    009999FF 00993366 00FFFFCC 00CCFFFF 00660066 00FF8080 000066CC 00CCCCFF
    00000080 00FF00FF 00FFFF00 0000FFFF 00800080 00800000 00008080 000000FF
    0000CCFF 00CCFFFF 00CCFFCC 00FFFF99 0099CCFF 00FF99CC 00CC99FF 00FFCC99
    003366FF 0033CCCC 0099CC00 00FFCC00 00FF9900 00FF6600 00666699 00969696
    00003366 00339966 00003300 00333300 00993300 00993366 00333399 00333333
"""
