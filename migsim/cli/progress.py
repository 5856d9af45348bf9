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


class _SilentBar:
    """What commands use of a tqdm bar, showing nothing: the bar off a terminal
    or with --quiet, without loading tqdm or starting its monitor thread."""

    disable = True

    def __init__(self, total: int | None):
        self.total = total
        self.n = 0

    def __enter__(self) -> _SilentBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        """Nothing to redraw."""

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Nothing to show it on."""

    def close(self) -> None:
        """Nothing to clear."""


def progress_bar(total: int | None, unit: str, quiet: bool) -> Any:
    """A tqdm bar on stderr (done, rate, ETA); silent off a terminal or with --quiet.

    ``total=None`` counts without an end (e.g. a decision's candidates).
    """
    if quiet or not stderr_is_terminal():
        return _SilentBar(total)
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
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
