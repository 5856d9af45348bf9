"""Dotted paths: how ``--set`` overrides, sweeps, levers and ``sources`` name a
field of a scenario (``cohorts.elster_dormant.outcomes.success``).

List items that carry a ``name`` (cohorts, capacity rules, gates, freezes) are
addressed by that name. Validation errors are reported with the same paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import yaml

from migsim.common.errors import ScenarioError
from migsim.model.base import OUTCOMES

__all__ = [
    "error_path",
    "flatten",
    "get_field",
    "is_named_list",
    "set_field",
]


def is_named_list(value: Any) -> bool:
    """Whether a list's items all carry a ``name``, so paths address them by it."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(item, dict) and isinstance(item.get("name"), str)
            for item in value
        )
    )


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts (and named lists, by name) into dotted keys."""
    out: dict[str, Any] = {}
    items: Iterable[tuple[Any, Any]]
    if isinstance(data, dict) and data:
        items = data.items()
    elif is_named_list(data):
        items = ((item["name"], item) for item in data)
    else:
        return {prefix: data}
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, path))
    return out


def _child(node: Any, part: str, key: str, origin: str) -> Any:
    """One step of a dotted path: a dict key, a named list item, or a list index."""
    if isinstance(node, dict):
        if part not in node:
            raise ScenarioError(f"{origin}: {key}: no such field '{part}'")
        return node[part]
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and item.get("name") == part:
                return item
        if part.isdigit() and int(part) < len(node):
            return node[int(part)]
        raise ScenarioError(f"{origin}: {key}: no item named '{part}'")
    raise ScenarioError(f"{origin}: {key}: '{part}' is below a value, not a section")


def set_field(data: dict[str, Any], key: str, value: Any, *, origin: str) -> None:
    """Set a dotted-path field of a scenario dict in place (it must exist).

    Setting ``...outcomes.<rate>`` rescales the sibling rates in proportion.
    """
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{origin}: {key}: unreadable value {value!r}") from exc
    if isinstance(value, date):
        value = value.isoformat()
    parts = key.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = _child(node, part, key, origin)
    last = parts[-1]
    if isinstance(node, list):
        target = _child(node, last, key, origin)
        node[node.index(target)] = value
        return
    _child(node, last, key, origin)  # must exist
    if len(parts) >= 2 and parts[-2] == "outcomes" and last in OUTCOMES:
        _rescale_outcomes(node, last, value, key, origin)
    else:
        node[last] = value


def get_field(data: dict[str, Any], key: str, *, origin: str) -> Any:
    """The value at a dotted path of a scenario dict (as `set_field` addresses it).

    Raises
    ------
    ScenarioError
        When the path names no field.
    """
    node: Any = data
    for part in key.split("."):
        node = _child(node, part, key, origin)
    return node


def _rescale_outcomes(
    rates: dict[str, Any], name: str, value: Any, key: str, origin: str
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{origin}: {key}: a rate must be a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ScenarioError(f"{origin}: {key}: rate {value} is outside [0, 1]")
    others = [n for n in OUTCOMES if n != name]
    rest = sum(float(rates[n]) for n in others)
    if rest <= 0 and value < 1:
        raise ScenarioError(
            f"{origin}: {key}: cannot rescale the other rates, they are all 0"
        )
    scale = (1.0 - value) / rest if rest > 0 else 0.0
    for other in others:
        rates[other] = float(rates[other]) * scale
    rates[name] = float(value)


# --------------------------------------------------------------------------- errors
#: Tags of the unions a field may take, by field name: never part of a dotted path.
_UNION_TAGS = {
    "outcomes": ("rates", "dirichlet"),
    "then_success": ("value", "beta"),
    **{
        state: ("count", "groups")
        for state in ("queued", "stalled", "rolled_back", "impaired")
    },
}


def error_path(loc: tuple[Any, ...], data: Any) -> str:
    """Turn a pydantic error location into a dotted path, naming list items."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            item = node[part]
            name = item.get("name") if isinstance(item, dict) else None
            parts.append(str(name) if name else str(part))
            node = item
            continue
        if (
            isinstance(part, str)
            and part
            in {
                "fixed",
                "uniform",
                "triangular",
                "lognormal",
                "beta",
            }
            and isinstance(node, dict)
            and node.get("dist") == part
        ):
            continue  # discriminated-union tag, not a field
        if parts and part in _UNION_TAGS.get(parts[-1], ()):
            continue  # a tag of a union (rates or Dirichlet, count or groups)
        parts.append(str(part))
        node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"
