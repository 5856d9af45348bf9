"""Errors: the kinds migsim raises.

`MigsimError` and its subclasses are *bad input*: the user can fix them, the CLI
prints one line and exits 2. `WorkerDied` is a run stopped from outside (a
worker process killed): the CLI prints one line and exits 1, as for Ctrl-C.
Anything else is a bug and keeps its traceback.
This module imports nothing so every other module can use it.
"""

__all__ = [
    "ActualsError",
    "MigsimError",
    "QuestionError",
    "ScenarioError",
    "WorkerDied",
]


class MigsimError(Exception):
    """Root of every user-facing error."""


class ScenarioError(MigsimError, ValueError):
    """An invalid scenario (or override of one); the message names file and field."""


class ActualsError(MigsimError, ValueError):
    """An actuals file is unreadable or invalid; the message names file, row, column."""


class QuestionError(MigsimError, ValueError):
    """A decision question is invalid; the message names file and key."""


class WorkerDied(RuntimeError):
    """A worker process of a run ended without a word (killed, out of memory):
    the run stopped there. Not bad input, not a bug: the message says which
    worker and how it ended."""
