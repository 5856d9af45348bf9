"""What every command shares: bad input as exit status 2, loading inputs, printing.

Light on import (click only): the libraries a command needs load inside it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from migsim.common import files
from migsim.common.errors import MigsimError

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.evidence.actuals import Actuals
    from migsim.model.scenario import Scenario
    from migsim.output.painter import Painter

__all__ = [
    "InputError",
    "by_dates",
    "command_line",
    "emit",
    "file_output",
    "load",
    "load_actuals",
    "painter_for",
    "parse_sets",
    "refuse_existing",
    "refuse_inputs_as_outputs",
]


class InputError(click.ClickException):
    """Bad input: printed as one line, exit status 2.

    Control characters from the input (a newline in a key or value) are shown
    escaped, so the message stays one line.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(_one_line(message))


def painter_for(ctx: click.Context, outdir: str | None) -> Painter | None:
    """The process that draws the command's chart into ``outdir``, forked now
    so it loads matplotlib while the command works (`migsim.output.painter`);
    gone when the command ends. None without ``outdir``, or where it cannot
    fork. pandas is loaded first, so the painter shares it."""
    import pandas  # noqa: F401

    from migsim.output.painter import chart_painter

    return ctx.with_resource(chart_painter(wanted=outdir is not None))


def _one_line(text: str) -> str:
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text
    )


def parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    """``--set key=value`` pairs; values are parsed later with yaml.safe_load."""
    overrides: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected FIELD=VALUE")
        if key.strip() in overrides:  # the first was dropped without a word
            raise InputError(f"--set {key.strip()}: given twice; give each field once")
        overrides[key.strip()] = value.strip()
    return overrides


def load(path: str, sets: tuple[str, ...] = ()) -> Scenario:
    """Load a scenario for a command, turning bad input into exit status 2."""
    from migsim.model.scenario import load_scenario

    try:
        return load_scenario(path, parse_sets(sets) or None)
    except MigsimError as exc:
        raise InputError(str(exc)) from exc


def load_actuals(
    path: str,
    scenario: Scenario,
    unit: Literal["installations", "meters"],
    replication: int | None,
    scenario_path: str,
) -> Actuals:
    """Read a command's actuals, turning bad input into exit status 2.

    Counts in meters without the scenario's ratio are the scenario's problem:
    said of its file and field, before the actuals are read (the reader named
    the actuals file, and only once the whole of it had been checked)."""
    from migsim.evidence.actuals import read_actuals

    if unit == "meters" and scenario.meters_per_installation is None:
        raise InputError(
            f"{scenario_path}: meters_per_installation: missing, and "
            "--actuals-unit meters needs it to read the actuals"
        )
    try:
        return read_actuals(path, scenario, unit, replication)
    except MigsimError as exc:
        raise InputError(str(exc)) from exc


def refuse_existing(
    path: str | Path | None,
    overwrite: bool,
    *,
    foreign: bool = True,
    inputs: Sequence[str | Path | None] = (),
) -> None:
    """Refuse to replace an existing output unless --overwrite says so.

    Bad input (exit 2): a file, or a folder with files in it; an empty folder is
    not a result (the rule of `migsim.common.files.refuse_existing`). With
    --overwrite, a non-empty folder that migsim did not write is refused too
    (`migsim.common.files.refuse_foreign`), unless ``foreign`` is false
    because the command checks its own kind of folder (compare). An output
    that is, holds or lies inside one of ``inputs`` is refused first
    (`refuse_inputs_as_outputs`); one under a file, or in a folder that
    cannot be written, after it (`migsim.common.files.refuse_under_file`,
    `migsim.common.files.refuse_unwritable`).
    """
    if path:
        refuse_inputs_as_outputs([path], inputs)
    try:
        if path:
            files.refuse_existing(path, overwrite)
            files.refuse_under_file(path)
            files.refuse_unwritable(path)
            if overwrite and foreign:  # a result, never a folder of the user's
                files.refuse_foreign(path)
    except FileExistsError as exc:
        raise InputError(str(exc)) from None
    except (NotADirectoryError, PermissionError) as exc:
        raise InputError(f"{exc.filename}: {exc.strerror}") from None


def refuse_unwritable(path: str | Path, *, inside: bool = False) -> None:
    """Bad input (exit 2): an output in a folder that cannot be written
    (`migsim.common.files.refuse_unwritable`), for a command that writes
    into a store it resumes (sweep, decide) and so has no `refuse_existing`."""
    try:
        files.refuse_unwritable(path, inside=inside)
    except PermissionError as exc:
        raise InputError(f"{exc.filename}: {exc.strerror}") from None


def file_output(output: str) -> Path:
    """A command's output that is one file (a report's page, a calibrated
    scenario), refused when its name ends in a separator: ``-o d/r.html/``
    names a folder, and `pathlib` dropped the slash, so the page was written
    as the file ``d/r.html``."""
    if output.endswith(("/", os.sep)):
        raise InputError(
            f"{output}: names a folder; this command writes one file "
            f"(e.g. {output.rstrip('/' + os.sep) or 'report.html'})"
        )
    return Path(output)


def refuse_inputs_as_outputs(
    outputs: Sequence[str | Path], inputs: Sequence[str | Path | None]
) -> None:
    """Refuse an output that is one of the command's inputs (the scenario, the
    actuals, a question, a run folder), holds one or lies inside one: with
    --overwrite the input was replaced or its folder deleted (a backtest
    ``--actuals out/daily.parquet -o out`` deleted its actuals), and a report
    written into an input run's folder replaced the run's own file."""
    for output in outputs:
        for given in inputs:
            if given is None:
                continue
            if _same_file(output, given):
                raise InputError(
                    f"{output}: is the input {given}; write the output elsewhere"
                )
            if _within(given, output):
                raise InputError(
                    f"{output}: holds the input {given}, which writing the "
                    "output would delete; write the output elsewhere"
                )
            if _within(output, given):
                raise InputError(
                    f"{output}: is inside the input {given}; write the output elsewhere"
                )


def _within(inner: str | Path, outer: str | Path) -> bool:
    """Whether ``inner`` lies inside the existing folder ``outer``."""
    try:
        if not Path(outer).is_dir():
            return False
        top, path = Path(outer).resolve(), Path(inner).resolve()
    except (OSError, RuntimeError):  # a loop of links
        return False
    return path != top and path.is_relative_to(top)


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).exists() and Path(b).exists() and Path(a).samefile(b)
    except OSError:
        return False


def by_dates(values: tuple[Any, ...]) -> list[date]:
    """``--by`` values (click gives datetimes) as dates."""
    return [v.date() if hasattr(v, "date") else v for v in values]


def command_line() -> str:
    """The command as typed: ``migsim`` and the arguments the group received."""
    ctx = click.get_current_context(silent=True)
    argv = ctx.meta.get("migsim.argv") if ctx is not None else None
    if argv is None:
        argv = sys.argv[1:]
    return shlex.join(["migsim", *argv])


def emit(text: str, payload: Any, fmt: str, written: str | None = None) -> None:
    """Print a command's result: the table, or JSON on stdout and the table on stderr.

    ``payload`` is only serialised for ``--format json``. ``written``: the
    folder (-o) the command has written its files to, named after the table
    in the one wording every command uses (``Written to OUTDIR/``); pass it
    only once the files are there.
    """
    if written:
        text += f"\n\nWritten to {written}/"
    if fmt == "json":
        click.echo(text, err=True)
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(text)
