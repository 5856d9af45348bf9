"""Options that several commands share, each declared once here.

A command's own wording of an option's help (what ``--format json`` prints,
what ``--overwrite`` replaces) is passed in; the name, type and default are
the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from migsim.evidence.priors import DEFAULT_PRIOR_STRENGTH
from migsim.model.limits import MAX_CONCENTRATION, MAX_REPLICATIONS

__all__ = [
    "DATE",
    "FiniteFloatRange",
    "OutputPath",
    "actuals_options",
    "by_option",
    "format_option",
    "outdir_option",
    "output_option",
    "overwrite_option",
    "quiet_option",
    "replications_option",
    "scheduler_option",
    "seed_option",
    "sets_option",
    "simulation_options",
    "workers_option",
]

Decorator = Callable[[Any], Any]

#: A date on the command line: 2020-03-01.
DATE = click.DateTime(formats=["%Y-%m-%d"])

#: The two wordings of --scheduler (run and sweep; decide and sensitivity).
CLUSTER_HELP = (
    "Run on this Dask distributed cluster instead of local processes "
    "(identical results)."
)
EXISTING_CLUSTER_HELP = (
    "Run on an existing Dask cluster instead of local processes; results are identical."
)


class FiniteFloatRange(click.FloatRange):
    """A `click.FloatRange` that also refuses ``nan`` (which compares false with
    either bound, so click let ``--precision nan`` through: a run without end)
    and an infinite value (``--precision inf`` asked for no precision at all)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number.", param, ctx)
        if math.isinf(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class OutputPath(click.Path):
    """A `click.Path` a command writes: refuses the empty path, which named the
    current folder (``-o ''``: a traceback, or a run that wrote nothing)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value == "":
            self.fail("an empty path names nothing to write.", param, ctx)
        return super().convert(value, param, ctx)


def _all(options: list[Decorator]) -> Decorator:
    """Apply several options so that --help lists them in the order given."""

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def format_option(help: str) -> Decorator:
    """``--format table|json``: JSON on stdout for scripts, the table otherwise."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help=help,
    )


def overwrite_option(
    help: str = "Replace an existing OUTDIR that migsim wrote, whole (files added "
    "to it since are lost too).",
) -> Decorator:
    """``--overwrite``: without it, a command refuses to replace its output."""
    return click.option("--overwrite", is_flag=True, help=help)


def quiet_option(help: str = "No progress bar.") -> Decorator:
    """``-q/--quiet``: no progress on stderr, even on a terminal."""
    return click.option("-q", "--quiet", is_flag=True, help=help)


def replications_option(help: str = "Seeded replications to run.") -> Decorator:
    """``-n/--replications``."""
    return click.option(
        "-n",
        "--replications",
        type=click.IntRange(1, MAX_REPLICATIONS),
        default=200,
        show_default=True,
        help=help,
    )


def seed_option() -> Decorator:
    """``--seed``: the run seed; by default the scenario's own."""
    return click.option(
        "--seed",
        type=click.IntRange(min=0, max=2**63 - 1),  # a 64-bit seed, as in a file
        default=None,
        help="Run seed (default: the scenario's seed).",
    )


def workers_option() -> Decorator:
    """``-j/--workers``: processes; never changes a result."""
    return click.option(
        "-j",
        "--workers",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Worker processes (at most 4 per core are started); results do not "
        "depend on it.",
    )


def sets_option() -> Decorator:
    """``--set FIELD=VALUE``: override scenario fields by dotted path."""
    return click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="FIELD=VALUE",
        help="Override a scenario field by dotted path (repeatable).",
    )


def scheduler_option(help: str = CLUSTER_HELP) -> Decorator:
    """``--scheduler``: a Dask cluster to run on; results are identical."""
    return click.option(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        help=help,
    )


def outdir_option(help: str, *, required: bool = False) -> Decorator:
    """``-o/--outdir``: the folder a command writes. Required, it has no
    default at all (click 8.2 and later take ``default=None`` as a value given,
    so a missing ``-o`` reached the command as None)."""
    default: dict[str, Any] = {} if required else {"default": None}
    return click.option(
        "-o",
        "--outdir",
        required=required,
        type=OutputPath(file_okay=False),
        help=help,
        **default,
    )


def output_option(help: str) -> Decorator:
    """``-o/--output``: the file a command writes (required)."""
    return click.option(
        "-o",
        "--output",
        "output",
        required=True,
        type=OutputPath(dir_okay=False),
        help=help,
    )


def simulation_options(func):
    """The options every simulating command shares: -n, --seed, -j, --set."""
    return _all(
        [replications_option(), seed_option(), workers_option(), sets_option()]
    )(func)


by_option = click.option(
    "--by",
    "by",
    multiple=True,
    type=DATE,
    metavar="DATE",
    help="Also give P(backlog cleared by DATE) (repeatable).",
)


def actuals_options(func):
    """The options of commands that read actuals."""
    return _all(
        [
            click.option(
                "--actuals",
                "actuals_path",
                required=True,
                metavar="FILE",
                help="Actuals: CSV or Parquet, daily flows per date x cohort, or "
                "date, cumulative_migrated (see "
                "docs/calibration-and-forecasting.md).",
            ),
            click.option(
                "--actuals-unit",
                type=click.Choice(["installations", "meters"]),
                default="installations",
                show_default=True,
                help="Unit of the actuals' counts; meters are converted with the "
                "scenario's meters_per_installation.",
            ),
            click.option(
                "--actuals-replication",
                type=click.IntRange(min=0),
                default=None,
                help="For a run's daily output holding several replications: "
                "the one to use (default: the lowest).",
            ),
            click.option(
                "--prior-strength",
                # below 0.01 the prior's alphas round to 0 in the written
                # scenario (6 decimals): a calibration no scenario can hold
                type=FiniteFloatRange(0.01, MAX_CONCENTRATION),
                default=DEFAULT_PRIOR_STRENGTH,
                show_default=True,
                help="How many attempts the scenario's rates are worth, per cohort.",
            ),
        ]
    )(func)
