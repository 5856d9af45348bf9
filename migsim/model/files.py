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

__all__ = ["read_scenario_file"]


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
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(p.name for p in (*chain, resolved))
        raise ScenarioError(f"{chain[0].name}: extends: cycle {cycle}")
    data = read_yaml(resolved, error=ScenarioError, shown=shown)
    if not isinstance(data, dict):
        raise ScenarioError(f"{shown}: a scenario must be a mapping of fields")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"{shown}: extends: must be a file path")
    base = read_scenario_file(path.parent / parent, (*chain, resolved))
    return _merge(base, data)
