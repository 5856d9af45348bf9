"""YAML read strictly into plain data, with errors that name the file.

Every layer that reads YAML (scenario files, decision questions, ``--set`` values,
sweep grids and ranges) reads it here, so a planner sees one kind of message
whatever the input: ``<file>: no such file``, ``<file>: cannot read: <reason>``
or ``<file>: YAML error at line N: <problem>``. Checking what the data must hold,
and naming the dotted field that is wrong, is the caller's job.

The reader is ``yaml.safe_load`` (data, never code) made strict, because YAML 1.1
quietly turns some typing slips into wrong numbers:

- a key given twice in one mapping is an error (YAML keeps the last silently);
- ``33:20`` is an error, not the base-60 number 2000; ``0100`` (octal 64 in
  YAML 1.1), ``0x10`` and ``0b10`` are errors: whole numbers are written in decimal;
- ``5e-4`` is the number 0.0005 (YAML 1.1 read it as text), as in YAML 1.2;
- an impossible date (``2019-02-30``) is an error naming it;
- a key read as true, false, null or a date (``yes:``, ``off:``, ``~:``,
  ``2019-12-25:``) is an error naming it as written: keys are names (or whole
  numbers, as a continued state's counts by attempts made);
- whole numbers beyond 64 bits (``2**63`` and up) and floats that overflow to
  infinity (``1e400``) are errors;
- a character YAML may not hold (NUL, other control characters) is an error
  naming its line and column;
- nesting deeper than `MAX_DEPTH`, and anchors and aliases that expand to more
  than `MAX_NODES` values (a "billion laughs"), are errors;
- only a regular file of at most `MAX_BYTES` is read (not a FIFO, a device or a
  directory), so reading never blocks and never fills memory.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from migsim.common.errors import MigsimError

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "describe",
    "open_regular",
    "parse_yaml",
    "read_regular",
    "read_yaml",
    "shown",
]

#: The largest YAML file read (bytes). Bundled scenarios are at most ~12 KB; a
#: calibrated full fleet stays far below this.
MAX_BYTES = 1_000_000
#: The deepest nesting of maps and lists (scenarios nest about 6 deep).
MAX_DEPTH = 32
#: The most values a document may hold once aliases are expanded.
MAX_NODES = 200_000
#: Whole numbers must fit a signed 64-bit integer.
_INT64 = 2**63

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BAD_NUMBER_TAG = "tag:migsim,2024:bad-number"

_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*|[0-9][0-9_]*)
            (?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)
# base 60 (33:20), leading zeros (0100: octal in YAML 1.1), hex, octal, binary
_BAD_NUMBER = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
        |[-+]?0[0-9_]+
        |[-+]?0[xX][0-9a-fA-F_]+
        |[-+]?0[oO]?[0-7_]+
        |[-+]?0[bB][01_]+)$""",
    re.X,
)


class _StrictLoader(_BASE):  # type: ignore[misc, valid-type]
    """``safe_load`` without YAML 1.1's silent surprises (see the module docstring)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *base" keys may be overridden, by design
                key = self.construct_object(key_node, deep=True)
                _check_key(key, key_node)
                try:
                    first = seen.get(key)
                    seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:
                    continue  # an unhashable key: the base loader reports it
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first given at line {first})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        text = str(self.construct_scalar(node)).replace("_", "")
        digits = text.lstrip("+-")
        if len(digits) > 19 or abs(int(text)) >= _INT64:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"whole number {_short(text)} is too large (at most 2**63 - 1)",
                node.start_mark,
            )
        return int(text)

    def construct_yaml_float(self, node):
        text = str(self.construct_scalar(node))
        value = super().construct_yaml_float(node)
        if value in (float("inf"), float("-inf")) and "inf" not in text.lower():
            raise yaml.constructor.ConstructorError(
                None, None, f"number {_short(text)} is too large", node.start_mark
            )
        return value

    def construct_bad_number(self, node):
        text = str(self.construct_scalar(node))
        if ":" in text:
            problem = (
                f"{text} is a base-60 number in YAML 1.1 (not a time or a ratio): "
                "write the number, or quote it as text"
            )
        else:
            problem = f"{text}: write whole numbers in decimal, without leading zeros"
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            text = self.construct_scalar(node)
            raise yaml.constructor.ConstructorError(
                None, None, f"{text} is not a real date", node.start_mark
            ) from None


def _check_key(key: Any, node: yaml.Node) -> None:
    """Refuse a key YAML 1.1 reads as true, false, null or a date: ``yes:`` was
    reported as key ``1`` (pydantic's place for True), ``null:`` as ``None``."""
    if isinstance(key, bool):
        what = str(key).lower()
    elif key is None:
        what = "null"
    elif isinstance(key, (date, datetime)):
        what = "a date"
    else:
        return
    written = getattr(node, "value", None)
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"key {shown(written) if isinstance(written, str) else '?'} is YAML for "
        f"{what}, not a name: quote it if it is one",
        node.start_mark,
    )


def shown(text: str, width: int = 40) -> str:
    """``text`` quoted for a one-line message, cut to about ``width`` characters."""
    if len(text) <= width:
        return repr(text)
    return f"{text[:width]!r}... ({len(text):,} characters)"


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"


# YAML 1.1's number resolvers are replaced by the stricter ones above.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in _BASE.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(_BAD_NUMBER_TAG, _BAD_NUMBER, list("-+0123456789"))
_StrictLoader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_StrictLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))
_StrictLoader.add_constructor(_INT_TAG, _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor(_FLOAT_TAG, _StrictLoader.construct_yaml_float)
_StrictLoader.add_constructor(_BAD_NUMBER_TAG, _StrictLoader.construct_bad_number)
_StrictLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp
)


def _check_nesting(text: str) -> None:
    """Refuse deep nesting before the composer recurses into it."""
    depth = 0
    for event in yaml.parse(text, Loader=_BASE):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Problem().with_(
                    f"nested deeper than {MAX_DEPTH} levels", event.start_mark
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: yaml.Node | None) -> None:
    """Refuse aliases that expand to more than `MAX_NODES` values, or loop."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _Problem().with_("an alias refers to itself", node.start_mark)
        if depth > 2 * MAX_DEPTH:
            raise _Problem().with_(
                f"aliases nest deeper than {2 * MAX_DEPTH} levels", node.start_mark
            )
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k, depth + 1) + size(v, depth + 1)
                if total > MAX_NODES:
                    break
        open_nodes.discard(key)
        if total > MAX_NODES:
            raise _Problem().with_(
                f"more than {MAX_NODES:,} values once aliases are expanded",
                node.start_mark,
            )
        sizes[key] = total
        return total

    if root is not None:
        size(root, 0)


class _Problem(yaml.YAMLError):
    """A structural problem found before construction, with where it starts."""

    problem = "invalid YAML"
    problem_mark = None

    #: whether `describe` names the column too (a character is hard to see)
    column = False

    def with_(self, problem: str, mark: Any, column: bool = False) -> _Problem:
        self.problem, self.problem_mark, self.column = problem, mark, column
        return self


#: What YAML refuses to read (its reader's own test), and its line breaks.
_UNPRINTABLE = yaml.reader.Reader.NON_PRINTABLE
_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _check_characters(text: str) -> None:
    """Refuse a character YAML may not hold (NUL, other control characters),
    naming its line and column: the reader's own error has only an offset."""
    found = _UNPRINTABLE.search(text)
    if found is None:
        return
    at = found.start()
    breaks = list(_BREAK.finditer(text, 0, at))
    column = at - (breaks[-1].end() if breaks else 0)
    mark = yaml.Mark("<text>", at, len(breaks), column, text, at)
    code = ord(found.group())
    raise _Problem().with_(
        f"character U+{code:04X}{' (NUL)' if code == 0 else ''} is not allowed "
        "in YAML: remove it",
        mark,
        column=True,
    )


def parse_yaml(text: str) -> Any:
    """Plain data of YAML text, read strictly; raises `yaml.YAMLError`."""
    _check_characters(text)
    _check_nesting(text)
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        _check_expansion(node)
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def parse_value(
    text: str, where: str, error: Callable[[str], Exception] = MigsimError
) -> Any:
    """One value given outside a file (``--set``, a grid, a range), read as a
    scenario file reads it: 5e-4 a number, 33:20 an error. One that cannot be
    read raises ``error`` with ``where: unreadable value '...': problem``."""
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise error(f"{where}: unreadable value {shown(text)}: {problem}") from None


def describe(exc: yaml.YAMLError) -> str:
    """``at line N: problem`` for a YAML error (no newlines, no source excerpt)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    if mark is not None and getattr(exc, "column", False):
        where += f", column {mark.column + 1}"
    problem = getattr(exc, "problem", None) or "invalid YAML"
    return f"{where}: {problem}"


def open_regular(path: str | Path) -> io.BufferedReader:
    """A regular file opened for reading in binary, without blocking: a FIFO,
    a device or a directory is refused (``IsADirectoryError``: "not a regular
    file") instead of hanging. `read_regular` and `files.file_sha256` open
    through it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(0, "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular(path: str | Path, max_bytes: int | None = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (``None``: any size).

    Opened without blocking (`open_regular`), so a FIFO, a device or a
    directory is refused (``IsADirectoryError``: "not a regular file") instead
    of hanging; a larger file is an ``OSError`` ("larger than N bytes"). Every
    reader of a file a user names (YAML, actuals, a run folder's tables) reads
    through this.
    """
    with open_regular(path) as handle:
        if max_bytes is not None and os.fstat(handle.fileno()).st_size > max_bytes:
            raise OSError(0, f"larger than {max_bytes:,} bytes")
        data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise OSError(0, f"larger than {max_bytes:,} bytes")
    return data


def _read_text(path: Path) -> str:
    """A regular file's text, at most `MAX_BYTES`; never blocks on a FIFO."""
    return read_regular(path).decode("utf-8")


def read_yaml(
    path: str | Path,
    *,
    error: type[MigsimError] = MigsimError,
    shown: str | None = None,
) -> Any:
    """The plain data (dicts, lists, scalars) of one YAML file, read strictly.

    Parameters
    ----------
    path
        The file to read (UTF-8, a regular file of at most `MAX_BYTES`).
    error
        The `MigsimError` subclass to raise, so the caller's kind of input
        (scenario, question) is what the CLI reports.
    shown
        How messages name the file (default: ``path`` as given).

    Raises
    ------
    MigsimError
        (as ``error``) one line naming the file: missing, unreadable, too large,
        not a regular file, or not YAML (with the line of the first problem).
    """
    shown = str(path) if shown is None else shown
    if not shown.isprintable():  # a NUL or a line break named in a YAML path
        shown = repr(shown)[1:-1]
    try:
        text = _read_text(Path(path))
    except FileNotFoundError:
        raise error(f"{shown}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, not UTF-8
        reason = getattr(exc, "strerror", None) or str(exc)
        raise error(f"{shown}: cannot read: {reason}") from None
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        raise error(f"{shown}: YAML error{describe(exc)}") from None
