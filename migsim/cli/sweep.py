"""``migsim sweep``: a scenario at every point of a grid or Latin hypercube."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from migsim.cli.options import (
    outdir_option,
    quiet_option,
    scheduler_option,
    simulation_options,
)
from migsim.cli.progress import progress_bar
from migsim.cli.shared import (
    InputError,
    load,
    refuse_inputs_as_outputs,
    refuse_unwritable,
)
from migsim.common.errors import MigsimError
from migsim.common.files import atomic_write

__all__ = ["sweep"]


@click.command()
@click.argument("scenario")
@simulation_options
@click.option(
    "--grid",
    multiple=True,
    metavar="FIELD=V1,V2,...",
    help="A swept field and its values (repeatable: full factorial).",
)
@click.option(
    "--lhs",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="Latin hypercube of K points over the --range fields.",
)
@click.option(
    "--range",
    "ranges",
    multiple=True,
    metavar="FIELD=LOW:HIGH",
    help="A field's range for --lhs (repeatable); integers are rounded.",
)
@outdir_option("The sweep store; rerunning the same sweep resumes it.", required=True)
@click.option(
    "--fresh", is_flag=True, help="Replace a store that holds a different sweep."
)
@click.option(
    "--chart",
    "chart_figure",
    default="clearance_day_p50",
    show_default=True,
    metavar="FIGURE_STATISTIC",
    help="The figure column sweep.png draws.",
)
@click.option(
    "--chart-x",
    default=None,
    metavar="FIELD",
    help="Swept field on the chart's x axis (default: the first).",
)
@click.option(
    "--chart-by",
    default=None,
    metavar="FIELD",
    help="Swept field for the chart's lines (default: the second, if any).",
)
@scheduler_option()
@quiet_option()
def sweep(
    scenario,
    replications,
    seed,
    workers,
    sets,
    grid,
    lhs,
    ranges,
    outdir,
    fresh,
    chart_figure,
    chart_x,
    chart_by,
    scheduler,
    quiet,
):
    """Run SCENARIO at every point of a grid or Latin hypercube, resumably.

    Writes OUTDIR/manifest.json, OUTDIR/points/<index>.parquet,
    OUTDIR/sweep.parquet and OUTDIR/sweep.png.
    """
    from migsim.cli.text import sweep_text
    from migsim.experiments.sweep import (
        SweepDefinition,
        figure_columns,
        parse_grid,
        parse_range,
        run_sweep,
    )
    from migsim.output.plots import sweep_chart

    if fresh:  # --fresh empties the store: a scenario kept in it was deleted
        refuse_inputs_as_outputs([outdir], [scenario])
    refuse_unwritable(outdir, inside=True)  # the store is written into
    sc = load(scenario, sets)
    try:
        parsed_grid = _once("--grid", [parse_grid(item) for item in grid])
        parsed_ranges = _once("--range", [parse_range(item) for item in ranges])
        definition = SweepDefinition(
            scenario=sc,
            replications=replications,
            seed=sc.seed if seed is None else seed,
            grid=parsed_grid,
            ranges=parsed_ranges,
            lhs=lhs,
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    fields = definition.fields
    if chart_figure not in figure_columns():
        raise InputError(
            f"--chart {chart_figure}: not a figure column "
            "(e.g. clearance_day_p50, active_dumb_p90)"
        )
    x = chart_x or fields[0]
    by = chart_by or (fields[1] if len(fields) > 1 and fields[1] != x else None)
    for option, name in (("--chart-x", x), ("--chart-by", by)):
        if name is not None and name not in fields:
            raise InputError(f"{option} {name}: not a swept field")
    if by == x:  # one field on both axes drew a line per point, each a dot
        raise InputError(
            f"--chart-by {by}: the same field as --chart-x; give another swept field"
        )
    bar = None

    def progress(done: int, total: int, reps: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar(total, "point", quiet)
        bar.update(done - bar.n)
        bar.set_postfix_str(f"{reps:,} replications", refresh=False)

    try:
        table = run_sweep(
            definition,
            outdir,
            workers=workers,
            scheduler=scheduler,
            fresh=fresh,
            progress=progress,
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    finally:
        if bar is not None:
            bar.close()
    figure = sweep_chart(
        table, chart_figure, x, by, title=sc.name, start_date=sc.start_date
    )
    atomic_write(
        Path(outdir) / "sweep.png",
        lambda temporary: figure.savefig(temporary, dpi=110, format="png"),
    )
    click.echo(sweep_text(table, fields, chart_figure, sc))
    counts = table["status"].value_counts().to_dict()
    tally = ", ".join(f"{v} {k}" for k, v in counts.items())
    click.echo(
        f"\n{len(table)} points ({tally}), "
        f"{definition.replications} replications each, seed {definition.seed}. "
        f"Written to {outdir}/ (sweep.parquet, sweep.png, manifest.json)"
    )


def _once(option: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``{field: values}``, refusing a field given twice (the first was dropped)."""
    fields = [name for name, _ in pairs]
    twice = sorted({name for name in fields if fields.count(name) > 1})
    if twice:
        raise MigsimError(
            f"{option} {', '.join(twice)}: given twice; list every value once "
            f"({option} FIELD=...)"
        )
    return dict(pairs)
