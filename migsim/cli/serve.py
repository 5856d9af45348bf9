"""``migsim serve``: the planner's explorer, a local page over the engine.

The web application (`migsim.app`, FastAPI and uvicorn) loads only when the
command runs, so ``migsim --help`` stays quick.
"""

from __future__ import annotations

import click

from migsim.cli.options import workers_option
from migsim.cli.runs import bundled_scenarios_dir
from migsim.cli.shared import InputError
from migsim.common.errors import MigsimError

__all__ = ["serve"]


def _within_the_page(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """-n no larger than the page lets a run have: the page refused every run
    it started with (``replications: 100000 is outside 1..2000``)."""
    from migsim.app.session import MAX_REPLICATIONS

    if value > MAX_REPLICATIONS:
        raise click.BadParameter(
            f"{value} is more than a run of the page may have ({MAX_REPLICATIONS}).",
            ctx,
            param,
        )
    return value


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; the default answers this machine only.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "-n",
    "--replications",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    callback=_within_the_page,
    help="The page's default replications per run (a run answers in seconds; "
    "at most what the page allows a run).",
)
@workers_option()
def serve(host, port, replications, workers):
    """The planner's explorer: a local page to change levers, Run and compare.

    Open the address it prints in a browser. Nothing leaves this machine.
    """
    from migsim.app.server import serve as serve_explorer

    try:
        serve_explorer(
            bundled_scenarios_dir(),
            host,
            port,
            replications=replications,
            workers=workers,
            announce=click.echo,
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
