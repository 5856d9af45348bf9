"""YAML files read safely into plain data, with errors that name the file.

Every layer that reads a YAML file (scenarios, decision questions) reads it here,
so a planner sees one kind of message whatever the file: ``yaml.safe_load`` only
(data, never code), and ``<file>: no such file``, ``<file>: cannot read:
<reason>`` or ``<file>: YAML error at line N: <problem>``. Checking what the data
must hold, and naming the dotted field that is wrong, is the caller's job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migsim.common.errors import MigsimError

__all__ = ["read_yaml"]


def read_yaml(
    path: str | Path,
    *,
    error: type[MigsimError] = MigsimError,
    shown: str | None = None,
) -> Any:
    """The plain data (dicts, lists, scalars) of one YAML file.

    Parameters
    ----------
    path
        The file to read (UTF-8).
    error
        The `MigsimError` subclass to raise, so the caller's kind of input
        (scenario, question) is what the CLI reports.
    shown
        How messages name the file (default: ``path`` as given).

    Raises
    ------
    MigsimError
        (as ``error``) one line naming the file: missing, unreadable, or not YAML
        (with the line of the first problem).
    """
    shown = str(path) if shown is None else shown
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{shown}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise error(f"{shown}: cannot read: {reason}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise error(f"{shown}: YAML error{where}: {problem}") from None
