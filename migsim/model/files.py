"""Scenario files: one YAML file and the ``extends`` chain under it, as plain data.

A scenario file is read with ``yaml.safe_load`` (data, never code; see
`migsim.common.yamlio`) and may extend another file, relative to itself: maps
merge, named lists (cohorts, rules, gates...) merge by name, other values are
replaced. `migsim.model.scenario.load_scenario` validates what this returns.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from migsim.common.errors import ScenarioError
from migsim.common.yamlio import read_yaml
from migsim.model.paths import is_named_list

__all__ = ["MAX_EXTENDS", "read_scenario_file"]

#: The longest ``extends`` chain followed (bundled scenarios use at most 2).
MAX_EXTENDS = 16


def _listed_twice(data: Any, prefix: str = "") -> str | None:
    """The dotted path and name of an item listed twice in one named list, if any.

    In a file that extends another, a named list merges into the base's by name,
    so a name given twice would silently merge into one item.
    """
    if isinstance(data, dict):
        for key, value in data.items():
            found = _listed_twice(value, f"{prefix}{key}.")
            if found:
                return found
    elif is_named_list(data):
        names = [item["name"] for item in data]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice is not None:
            return f"{prefix.rstrip('.')}: '{twice}' is listed twice"
        for item in data:
            found = _listed_twice(item, f"{prefix}{item['name']}.")
            if found:
                return found
    return None


def _merge(base: Any, override: Any) -> Any:
    """Deep merge for ``extends``: maps merge, named lists merge by name, other
    values are replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if is_named_list(base) and is_named_list(override):
        merged_list = [copy.deepcopy(item) for item in base]
        names = [item["name"] for item in merged_list]
        for item in override:
            if item["name"] in names:
                index = names.index(item["name"])
                merged_list[index] = _merge(merged_list[index], item)
            else:
                merged_list.append(item)
                names.append(item["name"])
        return merged_list
    return copy.deepcopy(override)


def read_scenario_file(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read one YAML file and resolve its ``extends`` chain (paths relative to it).

    Messages name the file as the user gave it (or as ``extends`` reached it).
    """
    shown = str(path)
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL: reading says so
        resolved = path.absolute()
    if resolved in chain:
        cycle = " -> ".join(p.name for p in (*chain, resolved))
        raise ScenarioError(f"{chain[0].name}: extends: cycle {cycle}")
    if len(chain) >= MAX_EXTENDS:
        raise ScenarioError(
            f"{chain[0].name}: extends: a chain of more than {MAX_EXTENDS} files"
        )
    data = read_yaml(resolved, error=ScenarioError, shown=shown)
    if not isinstance(data, dict):
        raise ScenarioError(f"{shown}: a scenario must be a mapping of fields")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"{shown}: extends: must be a file path")
    if not parent.strip() or (path.parent / parent).is_dir():
        # '' named this file's folder: '.: cannot read: not a regular file'
        raise ScenarioError(
            f"{shown}: extends: {parent!r} is not a scenario file (give the path "
            "of the file this one extends, relative to it)"
        )
    twice = _listed_twice(data)
    if twice:
        raise ScenarioError(f"{shown}: {twice}")
    base = read_scenario_file(path.parent / parent, (*chain, resolved))
    return _merge(base, data)
