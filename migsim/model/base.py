"""What every part of the scenario schema shares: the base model, the outcome
names, probabilities and unique names.

Every schema model is frozen (a validated scenario never changes; overrides make
a new one) and forbids unknown keys (a misspelt field is an error that names it).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from migsim.common.lifeline import stops_held
from migsim.model import limits

__all__ = [
    "NAME",
    "Name",
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


def _a_name(name: str) -> str:
    if not NAME.fullmatch(name):
        from migsim.common.yamlio import shown

        raise ValueError(
            f"{shown(name)} is not a name: letters, digits and _, not starting "
            "with a digit (names are parts of dotted paths and --set keys)"
        )
    return name


#: The name of a cohort, rule, gate, freeze, supplier or schedule step: dotted
#: paths and ``--set`` keys address items by it, so ``a.b`` or ``../x`` cannot be.
Name = Annotated[str, AfterValidator(_a_name)]


class SchemaModel(BaseModel):
    """Base for every scenario model: immutable, unknown keys are errors.

    Numbers must be finite, and every field is checked against the documented
    bounds of `migsim.model.limits` (so whatever validates, runs); ``true`` is not
    a number and a number is not a date.
    """

    # schemas are built on first use, not at import: a command pays only for
    # the models it validates (import of the model was ~0.3 s of fixed cost)
    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, defer_build=True
    )

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate, with Ctrl-C and ``kill PID`` held until it is done.

        Pydantic turns an exception raised in a validator into a validation
        error, and the signal handler raises KeyboardInterrupt wherever the
        program is: a Ctrl-C that landed in one made a sweep point's scenario
        'invalid' ('Error calling function `_omit_unused`: KeyboardInterrupt'),
        recorded so in the store and kept by the resume. Held, it is raised
        once validation ends, as an interrupt.
        """
        with stops_held():
            return super().model_validate(obj, **kwargs)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """Dump, with Ctrl-C and ``kill PID`` held until it is done: in a
        serializer one came out as a PydanticSerializationError, and in a
        discriminator pydantic only warned and went on (the command finished,
        exit status 0, its interrupt lost); see `model_validate`."""
        with stops_held():
            return super().model_dump(**kwargs)

    @model_validator(mode="before")
    @classmethod
    def _no_silent_conversion(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                key = field.alias or name
                if key in data:
                    limits.check_input(cls, name, data[key], shown=key)
        return data

    @field_validator("*", mode="after")
    @classmethod
    def _within_limits(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None  # "*" validators always run on a field
        return limits.check_value(cls, info.field_name, value)

    @model_validator(mode="after")
    def _within_joint_limits(self) -> Any:
        limits.check_model(self)
        return self


def check_unique(kind: str, names: list[str]) -> None:
    """Refuse items that share a name: dotted paths address them by name."""
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"{kind} names must be unique: {', '.join(duplicated)}")
