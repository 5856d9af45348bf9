"""Dotted paths: how ``--set`` overrides, sweeps, levers and ``sources`` name a
field of a scenario (``cohorts.elster_dormant.outcomes.success``).

List items that carry a ``name`` (cohorts, capacity rules, gates, freezes) are
addressed by that name. Validation errors are reported with the same paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel

from migsim.common.errors import ScenarioError
from migsim.common.yamlio import parse_value
from migsim.model.base import NAME, OUTCOMES

__all__ = [
    "NAMED_TWICE",
    "error_messages",
    "error_path",
    "field_of",
    "flatten",
    "get_field",
    "is_named_list",
    "model_field",
    "repeated_field",
    "set_field",
    "set_fields",
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
        index = _item_index(node, part, _by_name)
        if index is None:
            raise ScenarioError(f"{origin}: {key}: no item named '{part}'")
        return node[index]
    raise ScenarioError(f"{origin}: {key}: '{part}' is below a value, not a section")


def _item_index(
    items: Sequence[Any], part: str, named: Callable[[Any, str], bool]
) -> int | None:
    """Where a path's ``part`` falls in a list: the item ``named`` it, else the
    item at that index; None for neither. A scenario's dict (`_child`) and
    its validated model (`model_field`) are walked alike."""
    for index, item in enumerate(items):
        if named(item, part):
            return index
    if part.isdigit() and int(part) < len(items):
        return int(part)
    return None


def set_field(
    data: dict[str, Any], key: str, value: Any, *, origin: str, text: bool = True
) -> None:
    """Set a dotted-path field of a scenario dict in place (it must exist).

    Setting ``...outcomes.<rate>`` rescales the sibling rates in proportion. A
    string ``value`` is read as YAML (text as typed), unless ``text`` is False.
    """
    value = _read_value(value, key, origin, text)
    parts = key.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = _child(node, part, key, origin)
    last = parts[-1]
    if isinstance(node, list):
        target = _child(node, last, key, origin)
        if isinstance(value, dict) and "name" not in value and _by_name(target, last):
            value = {"name": last, **value}  # still the item its path names
        node[node.index(target)] = value
        return
    _child(node, last, key, origin)  # must exist
    if len(parts) >= 2 and parts[-2] == "outcomes" and last in OUTCOMES:
        _rescale_together(node, {last: value}, key.rpartition(".")[0], origin)
    else:
        node[last] = value


def _read_value(value: Any, key: str, origin: str, text: bool) -> Any:
    """A value to set: text read as a scenario file reads it, a date as ISO text."""
    if text and isinstance(value, str):
        value = parse_value(value, f"{origin}: {key}", ScenarioError)
    if isinstance(value, date):
        value = value.isoformat()
    return value


def _rate_of(key: str) -> tuple[str, str] | None:
    """``(outcomes path, rate)`` of an outcome rate's path, else None."""
    prefix, _, last = key.rpartition(".")
    if prefix.rpartition(".")[2] == "outcomes" and last in OUTCOMES:
        return prefix, last
    return None


def set_fields(
    data: dict[str, Any],
    overrides: Mapping[str, Any],
    *,
    origin: str,
    text: bool = True,
) -> None:
    """Set several dotted-path fields (`set_field`).

    Outcome rates of one cohort set together keep the values given, and the
    rates not set share what is left in proportion. Set one after the other,
    the second rescaled the first: ``success 0.5`` and ``stall 0.05`` ran at
    success 0.63, while a sweep's table and a decision's candidates said 0.5.

    One field named two ways (a cohort by its index and by its name) is
    refused: it was set twice and the later value won without a word.
    """
    _refuse_named_twice(data, overrides, origin)
    # grouped by the outcomes they name, however named (`field_of`): rates of
    # one cohort by its index and by its name were two groups of one, set
    # one after the other, the second rescaling the first
    groups: dict[Any, tuple[str, dict[str, str]]] = {}
    for key in overrides:
        rate = _rate_of(key)
        if rate is not None:
            try:
                outcomes: Any = field_of(data, rate[0])
            except ScenarioError:  # names nothing: `set_field` says so
                outcomes = rate[0]
            groups.setdefault(outcomes, (rate[0], {}))[1][rate[1]] = key
    together = {
        k for _, keys in groups.values() if len(keys) > 1 for k in keys.values()
    }
    for key, value in overrides.items():
        if key not in together:
            set_field(data, key, value, origin=origin, text=text)
    for prefix, keys in groups.values():
        if len(keys) > 1:
            node = get_field(data, prefix, origin=origin)
            values = {}
            for name, key in keys.items():
                _child(node, name, key, origin)  # must exist
                values[name] = _read_value(overrides[key], key, origin, text)
            _rescale_together(node, values, prefix, origin)


def _refuse_named_twice(
    data: dict[str, Any], overrides: Mapping[str, Any], origin: str
) -> None:
    """Refuse two of ``overrides`` that name one field (`repeated_field`).
    A path that names nothing yet is left to `set_field` to judge."""
    if len(overrides) < 2:
        return
    try:
        repeated = repeated_field(data, overrides)
    except ScenarioError:
        return
    if repeated is not None:
        raise ScenarioError(
            f"{origin}: {repeated[1]}: the same field as {repeated[0]} {NAMED_TWICE}"
        )


def _rescale_together(
    rates: dict[str, Any], values: dict[str, Any], prefix: str, origin: str
) -> None:
    """Set outcome rates ``values`` of one cohort; the rates not set share what
    is left in proportion to their own (one rate: `set_field`; several:
    `set_fields`)."""
    for name, value in values.items():
        key = f"{prefix}.{name}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(
                f"{origin}: {key}: a rate must be a number, got {value!r}"
            )
        if not 0.0 <= value <= 1.0:
            raise ScenarioError(f"{origin}: {key}: rate {value} is outside [0, 1]")
    total = math.fsum(float(v) for v in values.values())
    named = " + ".join(values)
    if total > 1.0 + 1e-9:
        raise ScenarioError(
            f"{origin}: {prefix}: {named} are set to {total:g} together, more than 1"
        )
    others = [n for n in OUTCOMES if n not in values]
    # one rate's rest is a plain sum, as it always was (its runs' numbers stay)
    add = sum if len(values) == 1 else math.fsum
    rest = add(float(rates[n]) for n in others)
    if others and rest <= 0 and total < 1.0:
        where, which = (
            (f"{prefix}.{named}", "the other rates")
            if len(values) == 1
            else (prefix, "the rates not set")
        )
        raise ScenarioError(
            f"{origin}: {where}: cannot rescale {which}, they are all 0"
        )
    scale = (1.0 - total) / rest if rest > 0 else 0.0
    for other in others:
        rates[other] = float(rates[other]) * scale
    for name, value in values.items():
        rates[name] = float(value)


def _by_name(item: Any, part: str) -> bool:
    return isinstance(item, dict) and item.get("name") == part


def _model_named(item: Any, part: str) -> bool:
    return getattr(item, "name", None) == part


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


def model_field(model: BaseModel, path: str) -> tuple[type[BaseModel], str] | None:
    """The model class and field name a dotted path ends at, walked on a
    validated model (as `get_field` walks its dict), or None when the path
    does not end at a model's field. The field's declared type tells what it
    takes when its value does not: an unset field, or a value to be set in
    it. A list item of one of several kinds (a capacity rule) gives its own
    class's field."""
    node: Any = model
    *parents, last = path.split(".")
    for part in parents:
        if isinstance(node, BaseModel):
            node = getattr(node, part, None)
        elif isinstance(node, list | tuple):
            index = _item_index(node, part, _model_named)
            node = None if index is None else node[index]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    if not isinstance(node, BaseModel) or last not in type(node).model_fields:
        return None
    return type(node), last


def field_of(data: dict[str, Any], path: str) -> tuple[int, str]:
    """The field a dotted path names, whichever way it names it: its section
    (the same object however it is reached) and its key there; equal for a
    cohort's field named by the cohort's index and by its name. Two such
    paths moved one field twice: two levers of a question (each candidate set
    the field twice, the later won, and the answer gave both values), two
    sensitivity ranges (Sobol split one field's effect between two inputs)
    or two sweep fields. ``data`` is the scenario's dict, held while the
    identities are compared."""
    head, _, last = path.rpartition(".")
    parent = get_field(data, head, origin=path) if head else data
    if isinstance(parent, list):  # a list item itself: by its index or name
        return id(get_field(data, path, origin=path)), ""
    return id(parent), last


#: Why two paths of one field are refused (`repeated_field`), in every
#: message that refuses them (--set, a question's levers, sensitivity, sweep).
NAMED_TWICE = "(a list item by its index and by its name): give it once"


def repeated_field(
    data: dict[str, Any], paths: Iterable[str]
) -> tuple[str, str] | None:
    """The first of ``paths`` naming the same field as an earlier one
    (`field_of`), with that earlier one, or None when each names its own."""
    fields: dict[tuple[int, str], str] = {}
    for path in paths:
        earlier = fields.setdefault(field_of(data, path), path)
        if earlier != path:
            return earlier, path
    return None


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


#: The names of a tagged union's members (``dist: beta``): never part of a path.
_DIST_TAGS = {"fixed", "uniform", "triangular", "lognormal", "beta"}
#: Plain types pydantic names the members of a union after.
_TYPE_TAGS = {"int", "float", "str", "bool", "date", "datetime", "none"}


def _is_tag(
    part: Any, node: Any, parts: list[str], last_missing: bool, tagged: bool
) -> bool:
    """Whether a location part is pydantic's name for a union member or a
    validator, not a field (a field or item name matches `NAME`; pydantic's tags,
    ``constrained-float``, ``function-after[_check(), ShareBeta]``, may not): one
    of `_UNION_TAGS`, a distribution's ``dist`` (once
    per mapping: ``beta.beta`` is the tag then the field), or, when the data has
    no such key there, not a name (``constrained-float``), a model's class name
    (``ShareBeta``) or a plain type (``float``)."""
    if not isinstance(part, str) or last_missing:
        return False
    if parts and part in _UNION_TAGS.get(parts[-1], ()):
        return True
    if isinstance(node, dict) and part in node:
        return not tagged and part in _DIST_TAGS and node.get("dist") == part
    return (
        not NAME.fullmatch(part)
        or part[:1].isupper()
        or part in _TYPE_TAGS
        or part in _DIST_TAGS
    )


def _walk(loc: tuple[Any, ...], data: Any, missing: bool) -> tuple[list[str], int, Any]:
    """The dotted parts of a pydantic location, how many of its parts come
    before its first union tag (``len(loc)`` when it has none), and the data
    there."""
    parts: list[str] = []
    node = data
    first_tag = len(loc)
    tagged = False  # whether this mapping's dist tag was passed
    for k, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            item = node[part]
            name = item.get("name") if isinstance(item, dict) else None
            # an item's name only when it is one: a name of 5 read as an index
            named = isinstance(name, str) and NAME.fullmatch(name) is not None
            parts.append(str(name) if named else str(part))
            node, tagged = item, False
            continue
        if _is_tag(part, node, parts, missing and k == len(loc) - 1, tagged):
            first_tag = min(first_tag, k)
            tagged = True
            continue
        parts.append(str(part))
        node, tagged = (node.get(part) if isinstance(node, dict) else None), False
    return parts, first_tag, node


def error_path(loc: tuple[Any, ...], data: Any) -> str:
    """Turn a pydantic error location into a dotted path, naming list items by
    their names and leaving out pydantic's tags of union members and validators."""
    return ".".join(_walk(loc, data, False)[0]) or "(top level)"


def _field_named(message: str, node: Any) -> tuple[str, str] | None:
    """A model's own check that names its field first (``daily_cap: true/false
    is not a value here``): that field, and the rest of the message."""
    key, sep, rest = message.partition(": ")
    if sep and isinstance(node, dict) and key in node and NAME.fullmatch(key):
        return key, rest
    return None


#: The most problems one message lists; the rest are counted.
MAX_MESSAGES = 10


def error_messages(
    errors: list[Any], data: Any, *, unknown: str = "unknown field"
) -> list[str]:
    """``path: problem`` for each of pydantic's errors, as a planner reads them.

    A value of a union (a number or a distribution) that fits none of its
    members is reported by the members it came closest to: a distribution with a
    bad ``alpha`` is ``...mean.alpha: Input should be greater than 0``, not that
    and "Input should be a valid number" from the number member as well. An
    error with no location (a whole-scenario check) is its message alone.
    """
    found = []
    for error in errors:
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = unknown
        parts, first_tag, node = _walk(loc, data, error["type"] == "missing")
        named = _field_named(message, node) if error["type"] == "value_error" else None
        if named is not None:  # the field's path, as pydantic's own errors have it
            parts, message = [*parts, named[0]], named[1]
        # the member did not take the value at all (a mapping is not a number)
        refused = first_tag == len(loc) - 1 and error["type"].endswith("_type")
        found.append((loc[:first_tag], refused, parts, message))
    closer = {prefix for prefix, refused, _, _ in found if not refused}
    # a dict keeps them in order, once each: a list's "not in" made a file of
    # 50,000 unknown keys take minutes
    lines: dict[str, None] = {}
    for prefix, refused, parts, message in found:
        if refused and prefix in closer:
            continue
        lines[f"{'.'.join(parts)}: {message}" if parts else message] = None
    messages = list(lines)
    if len(messages) > MAX_MESSAGES:  # one line a planner can read
        more = len(messages) - MAX_MESSAGES
        messages = [*messages[:MAX_MESSAGES], f"and {more:,} more"]
    return messages
