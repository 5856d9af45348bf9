"""What every part of the scenario schema shares: the base model, the outcome
names, probabilities and unique names.

Every schema model is frozen (a validated scenario never changes; overrides make
a new one) and forbids unknown keys (a misspelt field is an error that names it).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "NAME",
    "OUTCOMES",
    "RATE_TOLERANCE",
    "WEEKDAYS",
    "Probability",
    "SchemaModel",
    "check_unique",
]


#: First-level outcomes of one attempt, in the order used everywhere.
OUTCOMES = ("success", "stall", "rollback", "fix_forward", "dumb")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
#: How far rates that must sum to 1 may miss it (floating-point rounding).
RATE_TOLERANCE = 1e-9
#: A name that a `DateSpec` or a rule may refer to (a gate's).
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SchemaModel(BaseModel):
    """Base for every scenario model: immutable, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def check_unique(kind: str, names: list[str]) -> None:
    """Refuse items that share a name: dotted paths address them by name."""
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"{kind} names must be unique: {', '.join(duplicated)}")
