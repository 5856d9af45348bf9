"""Command line: parse, call the library, write. Nothing here simulates by itself.

Exit status: 0 when the command did its job (also when its verdict is
negative), 2 for bad input (one line naming the file and field, no traceback)
or an output that cannot be written (a read-only or full disk: one line naming
the path; nothing is left behind),
3 when ``migsim run`` finished but some replications failed (what succeeded is
written, with a ``failures`` record), 1 when the work was stopped from outside:
Ctrl-C ("Aborted!") or a worker process that died, killed or out of memory (one
line naming it; nothing is written, no worker is left), anything else for an
internal error, which keeps its traceback.

One module per family of commands (`migsim.cli.runs`, `migsim.cli.sweep`,
`migsim.cli.decide`, `migsim.cli.evidence`, `migsim.cli.serve`); options
shared between commands are declared once in `migsim.cli.options`. Command
modules import pandas, SciPy, matplotlib and Dask only inside the commands, so
``migsim --help`` answers without loading them.
"""

from __future__ import annotations

import gc
import os
import sys

import click

from migsim import __version__
from migsim.cli.decide import decide, sensitivity
from migsim.cli.evidence import backtest, calibrate, forecast
from migsim.cli.runs import compare, report, run, scenarios, validate
from migsim.cli.serve import serve
from migsim.cli.shared import InputError
from migsim.cli.sweep import sweep
from migsim.common.errors import WorkerDied
from migsim.common.lifeline import terminate_as_interrupt

__all__ = ["main"]


class _Group(click.Group):
    """The command group; remembers the arguments for provenance, and turns
    what the machine refuses (a read-only or full disk, a path that is a file)
    and an option's bad value into one line and exit status 2."""

    def main(self, args=None, *more, **options):
        """Run a command; as the program itself (arguments from ``sys.argv``),
        end without the interpreter's last garbage collections.

        A run leaves about a hundred thousand objects (pandas, pydantic, the
        results) that Python's shutdown sweeps for cycles more than once, about
        a tenth of a second after the work is done. `gc.freeze` sets them
        aside first: the process exits as before (files are closed, exit
        handlers run), only sooner.
        """
        if args is not None:  # called from Python (a test runner): leave gc be
            return super().main(args, *more, **options)
        _standard_streams()
        terminate_as_interrupt()
        try:
            return super().main(args, *more, **options)
        finally:
            gc.freeze()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["migsim.argv"] = list(args)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # an unknown option before the command
            raise _usage_error(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:  # one line, not the usage text
            raise InputError(exc.format_message()) from None
        except click.UsageError as exc:  # an unknown command, option or argument
            raise _usage_error(exc) from None
        except OSError as exc:
            raise InputError(_os_error(exc)) from None
        except WorkerDied as exc:  # exit status 1, as for Ctrl-C
            raise click.ClickException(str(exc)) from None


def _standard_streams() -> None:
    """Put ``/dev/null`` where a standard stream was closed (``>&-``), then
    refuse a closed standard output: one line, exit status 2, before any work.

    Python leaves ``sys.stdout`` as None for a closed descriptor 1: the first
    print or flush was an AttributeError traceback. Worse, the first file a
    command opened got the free descriptor, and a forked process writing to
    its standard output would have written into that file. A closed standard
    input or error is only filled (migsim reads no input; errors still set the
    exit status); the answer printed on standard output has nowhere to go, so
    the command is refused rather than run with its summary lost.
    """
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    if not closed:
        return
    for fd in closed:  # lowest free descriptor first: each lands on its own
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    if 0 in closed:
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own
    if 1 in closed:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    if 2 in closed:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    if 1 in closed:
        click.echo(
            "Error: standard output is closed: the answer could not be printed "
            "(send it to /dev/null to discard it)",
            err=True,
        )
        sys.exit(2)


def _usage_error(exc: click.UsageError) -> click.ClickException:
    """A usage error (``No such option '--bogus'``, with click's close match if
    any) as one line pointing at the command's help, instead of the usage text
    and the error on three; ``migsim`` alone still prints the whole help."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return exc
    message = exc.format_message().rstrip()
    if not message.endswith((".", "?", "!", "?)")):
        message += "."
    where = exc.ctx.command_path if exc.ctx is not None else "migsim"
    return InputError(f"{message} Try '{where} --help' for help.")


def _os_error(exc: OSError) -> str:
    """``<path>: <reason>`` for an error the operating system raised."""
    reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    if exc.filename is None:
        return reason
    return f"{exc.filename}: {reason}"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migsim")
def main() -> None:
    """migsim: when does the SMETS1 migration backlog clear, and at what risk?"""


for _command in (
    run,
    sweep,
    compare,
    report,
    validate,
    decide,
    sensitivity,
    scenarios,
    calibrate,
    forecast,
    backtest,
    serve,
):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
