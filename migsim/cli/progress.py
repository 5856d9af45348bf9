"""Progress of long-running commands: a tqdm bar on stderr, only on a terminal.

Off a terminal (a pipe, a log file, a test) and with ``--quiet`` the bar is
silent, so what a command prints stays the same wherever it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

__all__ = ["progress_bar", "say", "stderr_is_terminal", "towards"]


def stderr_is_terminal() -> bool:
    """Whether someone is watching stderr (the bar would be noise anywhere else)."""
    return sys.stderr.isatty()


def progress_bar(total: int | None, unit: str, quiet: bool) -> Any:
    """A tqdm bar on stderr (done, rate, ETA); silent off a terminal or with --quiet.

    ``total=None`` counts without an end (e.g. a decision's candidates).
    """
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=quiet or not stderr_is_terminal(),
        leave=False,
    )


def towards(bar: Any) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that moves ``bar`` to ``done`` of ``total``.

    For work whose total is known only once it starts (a sensitivity's points).
    """

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    return update


def say(bar: Any, line: str) -> None:
    """Print a line on stderr; above the bar when one is showing, so it stays whole."""
    if bar.disable:
        click.echo(line, err=True)
    else:
        bar.write(line, file=sys.stderr)
