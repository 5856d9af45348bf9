"""The one scenario loader: YAML files (with ``extends``), mappings and overrides.

A scenario is read from YAML with ``yaml.safe_load`` (never code), optionally
extending another file, validated in full by the schema models (which own every
default) and then frozen. Every error is one line naming the file and the
dotted field that is wrong.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migsim.common.errors import ScenarioError
from migsim.common.yamlio import read_yaml
from migsim.model.paths import is_named_list
from migsim.model.scenario import Scenario, validate_scenario

__all__ = [
    "load_scenario",
]


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


def _read_document(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
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
    base = _read_document(path.parent / parent, (*chain, resolved))
    return _merge(base, data)


def load_scenario(
    source: str | Path | Mapping[str, Any] | Scenario,
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """Load and validate a scenario from a YAML path or a dict.

    Parameters
    ----------
    source
        Path to a YAML file, a mapping with the same shape, or a `Scenario`.
    overrides
        Optional ``{dotted.path: value}`` applied before validation (as ``--set``).

    Raises
    ------
    ScenarioError
        With one line naming the file and the dotted field that is wrong.
    """
    if isinstance(source, Scenario):
        return source.with_overrides(overrides) if overrides else source
    if isinstance(source, Mapping):
        origin = str(source.get("name", "scenario"))
        data = copy.deepcopy(dict(source))
        if "extends" in data:
            raise ScenarioError(f"{origin}: extends: only a scenario file may extend")
    else:
        path = Path(source)
        origin = str(path)
        data = _read_document(path)
    scenario = validate_scenario(data, origin)
    if overrides:
        scenario = scenario.with_overrides(overrides, origin=f"{origin}: --set")
    return scenario
