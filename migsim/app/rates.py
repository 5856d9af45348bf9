"""Outcome rates as levers: known rates, or the means of uncertain ones.

A planner thinks in rates: "93% succeed, 6.8% stall". A cohort's rates are
either known (five numbers summing to 1) or uncertain, a Dirichlet drawn once
per replication. Both show as five rates on the page; for a Dirichlet they are
its mean rates. Changing them:

- known rates go through ``--set``'s rule: one rate set alone rescales the
  other four in proportion; several are set as typed and must sum to 1;
- uncertain rates move the Dirichlet's centre and keep its spread: the new
  alphas are the loaded concentration (the sum of the alphas) times the new
  mean rates, so the planner's rates are as uncertain as the loaded ones were.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from migsim.common.yamlio import shown
from migsim.model.base import OUTCOMES

__all__ = ["MEAN_DIGITS", "is_uncertain", "new_outcomes", "outcome_values"]

#: Decimals of an uncertain rate's mean on the page (and so of "unchanged").
MEAN_DIGITS = 6
#: How far typed rates may miss 1 and still be read as summing to 1.
_SUM_TOLERANCE = 1e-5


def is_uncertain(outcomes: Any) -> bool:
    """Whether a cohort's validated outcomes are a distribution (a Dirichlet)."""
    return callable(getattr(outcomes, "mean", None)) and hasattr(outcomes, "alpha")


def outcome_values(outcomes: Any, data: Mapping[str, Any]) -> dict[str, float] | None:
    """The five rates a page shows: known rates as loaded, or a Dirichlet's
    mean rates rounded to `MEAN_DIGITS`; None when neither applies."""
    if is_uncertain(outcomes):
        mean = outcomes.mean()
        return {
            o: round(float(m), MEAN_DIGITS) for o, m in zip(OUTCOMES, mean, strict=True)
        }
    if all(isinstance(data.get(o), int | float) for o in OUTCOMES):
        return {o: data[o] for o in OUTCOMES}
    return None


def _number(path: str, value: Any, errors: list[tuple[str, str]]) -> float | None:
    """A typed rate, or None with the loader's message for a bad one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        got = shown(value) if isinstance(value, str) else repr(value)  # cut short
        errors.append((path, f"{path}: a rate must be a number, got {got}"))
        return None
    if not 0.0 <= value <= 1.0 or not math.isfinite(value):
        errors.append((path, f"{path}: rate {value} is outside [0, 1]"))
        return None
    return float(value)


def _uncertain_outcomes(
    prefix: str,
    outcomes: Any,
    changed: Mapping[str, Any],
    typed: Mapping[str, Any],
    errors: list[tuple[str, str]],
) -> dict[str, Any] | None:
    mean = dict(zip(OUTCOMES, (float(m) for m in outcomes.mean()), strict=True))
    checked = {o: _number(f"{prefix}.{o}", v, errors) for o, v in changed.items()}
    numbers = {o: v for o, v in checked.items() if v is not None}
    if len(numbers) < len(checked):
        return None
    rates: dict[str, float] = {}
    if len(numbers) == 1:
        (name, value), *_ = numbers.items()
        rest = 1.0 - mean[name]
        if rest <= 0 and value < 1:
            errors.append(
                (
                    f"{prefix}.{name}",
                    f"{prefix}.{name}: cannot rescale the other rates, they are all 0",
                )
            )
            return None
        scale = (1.0 - value) / rest if rest > 0 else 0.0
        rates = {o: (value if o == name else mean[o] * scale) for o in OUTCOMES}
    else:
        for o in OUTCOMES:
            number = _number(f"{prefix}.{o}", typed.get(o), errors)
            if number is None:
                return None
            rates[o] = number
        total = sum(rates.values())
        if abs(total - 1.0) > _SUM_TOLERANCE:
            first = f"{prefix}.{next(iter(changed))}"
            errors.append((first, f"{prefix}: rates sum to {total:.6g}, not 1"))
            return None
        rates = {o: r / total for o, r in rates.items()}
    concentration = sum(getattr(outcomes.alpha, o) for o in OUTCOMES)
    return {
        "dist": "dirichlet",
        "alpha": {o: concentration * rates[o] for o in OUTCOMES},
    }


def new_outcomes(
    prefix: str,
    outcomes: Any,
    data: Mapping[str, Any],
    changed: Mapping[str, Any],
    typed: Mapping[str, Any],
    errors: list[tuple[str, str]],
) -> dict[str, Any]:
    """Overrides for a cohort whose rates the page changed.

    Parameters
    ----------
    prefix
        The cohort's ``cohorts.<name>.outcomes`` path.
    outcomes, data
        The loaded outcomes: the validated model and its plain data.
    changed
        ``{outcome: value}`` of the rates that differ from the page's loaded ones.
    typed
        ``{outcome: value}`` of all five rates as the page sent them.
    errors
        Where problems go, as ``(path, message)``.
    """
    if is_uncertain(outcomes):
        built = _uncertain_outcomes(prefix, outcomes, changed, typed, errors)
        return {} if built is None else {prefix: built}
    if len(changed) == 1:
        (name, value), *_ = changed.items()
        return {f"{prefix}.{name}": value}
    rates = dict(data)
    rates.update({o: v for o, v in typed.items() if v is not None})
    return {prefix: rates}
