"""Command line: parse, call the library, write. Nothing here simulates by itself.

Exit status: 0 when the command did its job (also when its verdict is
negative), 2 for bad input (one line naming the file and field, no traceback),
3 when ``migsim run`` finished but some replications failed (what succeeded is
written, with a ``failures`` record), anything else for an internal error, which
keeps its traceback.

One module per family of commands (`migsim.cli.runs`, `migsim.cli.sweep`,
`migsim.cli.decide`, `migsim.cli.evidence`, `migsim.cli.serve`); options
shared between commands are declared once in `migsim.cli.options`. Command
modules import pandas, SciPy, matplotlib and Dask only inside the commands, so
``migsim --help`` answers without loading them.
"""

from __future__ import annotations

import sys

import click

from migsim import __version__
from migsim.cli.decide import decide, sensitivity
from migsim.cli.evidence import backtest, calibrate, forecast
from migsim.cli.runs import compare, report, run, scenarios, validate
from migsim.cli.serve import serve
from migsim.cli.sweep import sweep

__all__ = ["main"]


class _Group(click.Group):
    """The command group; remembers the arguments for provenance."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["migsim.argv"] = list(args)
        return super().parse_args(ctx, args)


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
