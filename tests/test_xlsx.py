"""migsim.output.xlsx writes the workbook pandas and openpyxl write, byte for byte.

Apart from when it was written: the document's created and modified times and
each zip member's time. Everything else is compared: every member's bytes, its
compressed bytes and its zip attributes.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import zipfile

import numpy as np
import pandas as pd
import pytest

from migsim.output.spreadsheets import _write_xlsx, _write_xlsx_with_pandas
from migsim.output.xlsx import Unsupported, write_workbook

_TIMES = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _members(path) -> list[tuple]:
    """Each member's name, attributes, content and compressed bytes (no times)."""
    raw = path.read_bytes()
    out = []
    with zipfile.ZipFile(path) as book:
        for info in book.infolist():
            content = book.read(info.filename)
            offset = info.header_offset
            name_len, extra_len = struct.unpack("<HH", raw[offset + 26 : offset + 30])
            start = offset + 30 + name_len + extra_len
            packed = raw[start : start + info.compress_size]
            if info.filename == "docProps/core.xml":  # the times it was written
                content, packed = _TIMES.sub(b"T", content), b""
            attributes = (info.compress_type, info.external_attr, info.flag_bits)
            out.append((info.filename, attributes, info.file_size, content, packed))
    return out


def _same_as_pandas(tmp_path, sheets) -> None:
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    write_workbook(ours, sheets)
    _write_xlsx_with_pandas(theirs, sheets)
    assert _members(ours) == _members(theirs)


SHEETS = {
    "numbers": {
        "a": pd.DataFrame(
            {
                "whole": np.arange(5),
                "big": [1, 2**60, -3, 0, 7],
                "decimal": [0.1, 1 / 3, np.nan, np.inf, -np.inf],
                "f32": np.array([1.1, 2.2, np.nan, 4, 5], dtype=np.float32),
                "u8": np.array([1, 2, 3, 4, 5], dtype=np.uint8),
                "flag": [True, False, True, True, False],
            }
        )
    },
    "dates and text": {
        "first": pd.DataFrame(
            {
                "at": [dt.datetime(2020, 1, 1, 5, 3, 2, 123456), pd.NaT],
                "day": [dt.date(2020, 1, 2), None],
            }
        ),
        "second": pd.DataFrame(
            {
                "day": [dt.date(1900, 1, 5), dt.date(1900, 3, 1)],
                "stamp": pd.to_datetime(["2020-01-01 10:00", None]),
                "é–": ["café – <&>", float("inf")],
                "text": [" leading", "  "],
                "mixed": [True, None],
            }
        ),
    },
    "objects": {
        "x": pd.DataFrame(
            {
                1: pd.array([1, None], dtype="Int64"),
                2.5: pd.array(["a", None], dtype="string"),
                "category": pd.Categorical(["u", None]),
                "l" * 50: ["line\nbreak", 'tab\t"quote"'],
            }
        )
    },
    "header only": {"x": pd.DataFrame({"a": pd.Series([], dtype=float)})},
}


@pytest.mark.parametrize("name", list(SHEETS))
def test_same_file_as_pandas_and_openpyxl(tmp_path, name):
    _same_as_pandas(tmp_path, SHEETS[name])


def test_a_large_sheet_is_the_same_file(tmp_path):
    frame = pd.DataFrame(
        {"n": np.arange(20_000), "f": np.linspace(0, 1, 20_000), "t": ["x"] * 20_000}
    )
    _same_as_pandas(tmp_path, {"rows": frame})


@pytest.mark.parametrize(
    "sheets",
    [
        {"q": pd.DataFrame({"t": ["=1+1"]})},  # openpyxl: a formula
        {"q": pd.DataFrame({"t": ["#N/A"]})},  # an error value
        {"q": pd.DataFrame({"t": [dt.timedelta(days=1)]})},
        {"q": pd.DataFrame()},
        {"naïve (1)": pd.DataFrame({"t": [1]})},  # a name it does not check
    ],
)
def test_what_it_does_not_write_goes_to_pandas(tmp_path, sheets):
    with pytest.raises(Unsupported):
        write_workbook(tmp_path / "ours.xlsx", sheets)
    assert not (tmp_path / "ours.xlsx").exists()
    _write_xlsx(tmp_path / "fallback.xlsx", sheets)  # pandas writes it instead
    assert zipfile.is_zipfile(tmp_path / "fallback.xlsx")


def test_a_character_no_worksheet_holds_is_refused_as_before(tmp_path):
    sheets = {"q": pd.DataFrame({"t": ["a\x01"]})}
    with pytest.raises(Unsupported):
        write_workbook(tmp_path / "ours.xlsx", sheets)
    with pytest.raises(Exception, match="cannot be used in worksheets"):
        _write_xlsx(tmp_path / "theirs.xlsx", sheets)


def _repeated() -> dict[str, pd.DataFrame]:
    """A run's bands sheet in small: each date once a cohort, and object
    columns whose equal values make different cells (-0.0 and 0.0, 1 and
    True, a date and a datetime of its midnight)."""
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    return {
        "bands": pd.DataFrame(
            {
                "date": days * 3,
                "cohort": ["all"] * 40 + ["ioc"] * 40 + [" moc"] * 40,
                "p50": np.arange(120),
            }
        ),
        "mixed": pd.DataFrame(
            {
                "x": [-0.0, 0.0, 1, True, 1.0, dt.date(2020, 1, 1)] * 2,
                "y": [dt.datetime(2020, 1, 1), dt.date(2020, 1, 1)] * 6,
            }
        ),
    }


def test_repeated_values_are_the_same_file(tmp_path):
    _same_as_pandas(tmp_path, _repeated())


def test_a_repeated_date_or_text_is_converted_once(tmp_path, monkeypatch):
    """Each date and text of a column made its cell again at every repeat:
    a fifth of the full fleet's workbook time (16,776 rows of 1,864 dates
    and 9 cohorts)."""
    import migsim.output.xlsx as xlsx

    seen: list[object] = []
    general = xlsx._general

    def counted(value):
        seen.append(value)
        return general(value)

    monkeypatch.setattr(xlsx, "_general", counted)
    write_workbook(tmp_path / "ours.xlsx", {"bands": _repeated()["bands"]})
    assert sorted(map(str, seen)) == sorted(
        ["date", "cohort", "p50"]  # the header row
        + [str(dt.date(2020, 1, 1) + dt.timedelta(days=i)) for i in range(40)]
        + ["all", "ioc", " moc"]
    )
