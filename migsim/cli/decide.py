"""``migsim decide`` and ``migsim sensitivity``: the basis for increasing volumes.

decide searches the ramp levers for the fastest ramp within a risk budget;
sensitivity measures how much each field moves the clearance day and each risk.
"""

from __future__ import annotations

from contextlib import ExitStack

import click

from migsim.cli.options import (
    EXISTING_CLUSTER_HELP,
    format_option,
    outdir_option,
    overwrite_option,
    quiet_option,
    replications_option,
    scheduler_option,
    seed_option,
    simulation_options,
    workers_option,
)
from migsim.cli.progress import progress_bar, say, towards
from migsim.cli.shared import (
    InputError,
    emit,
    load,
    painter_for,
    refuse_existing,
    refuse_inputs_as_outputs,
    refuse_unwritable,
)
from migsim.common.errors import MigsimError
from migsim.model.limits import (
    MAX_REPLICATIONS,
    MAX_SOBOL_SAMPLES,
    MIN_SOBOL_SAMPLES,
)

__all__ = ["decide", "sensitivity"]


@click.command()
@click.argument("question")
@replications_option("Replications every candidate gets first.")
@seed_option()
@workers_option()
@click.option(
    "--max-replications",
    type=click.IntRange(1, MAX_REPLICATIONS),
    default=None,
    help="Double a candidate's replications while its evidence is not "
    "decisive and more could decide it, up to this many (default: 4 x N).",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="Several levers: Optuna trials.",
)
@click.option(
    "--sampler",
    type=click.Choice(["tpe", "nsga2"]),
    default="tpe",
    show_default=True,
    help="Several levers: Optuna's sampler.",
)
@outdir_option(
    "Write decision.json, candidates.csv and frontier.png here; "
    "finished batches are kept so a killed run resumes."
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Discard finished batches of another definition in OUTDIR.",
)
@scheduler_option(EXISTING_CLUSTER_HELP)
@format_option("json: decision.json on stdout, text on stderr.")
@quiet_option("No progress bar, no line per candidate.")
@click.pass_context
def decide(
    ctx,
    question,
    replications,
    seed,
    workers,
    max_replications,
    trials,
    sampler,
    outdir,
    fresh,
    scheduler,
    fmt,
    quiet,
):
    """Find the fastest ramp whose risks stay inside the budget of QUESTION.

    Exits 0 whether or not a safe candidate exists; 2 for a bad question.
    """
    if outdir:  # the decision is written over OUTDIR: a question in it was deleted
        refuse_inputs_as_outputs([outdir], [question])
        refuse_unwritable(outdir, inside=True)  # its batches are written into it
        refuse_unwritable(outdir)  # and the decision replaces it
    painter = painter_for(ctx, outdir)  # the chart's process, ready early
    from migsim.cli.text import candidate_line
    from migsim.common.store import held
    from migsim.experiments.decide import decide as decide_question
    from migsim.experiments.question import load_question
    from migsim.output.experiment_files import write_decision

    with ExitStack() as holding:
        if outdir:  # held over the search and over the write that replaces it
            try:
                holding.enter_context(held(outdir, "decision"))
            except MigsimError as exc:
                raise InputError(str(exc)) from exc
        with progress_bar(None, "candidate", quiet) as bar:

            def evaluated(candidate) -> None:
                bar.update(1)
                if not quiet:
                    say(bar, candidate_line(candidate))

            try:
                loaded = load_question(question)
                result = decide_question(
                    loaded,
                    replications,
                    seed,
                    workers,
                    max_replications=max_replications,
                    trials=trials,
                    sampler=sampler,
                    directory=outdir,
                    fresh=fresh,
                    scheduler=scheduler,
                    progress=evaluated,
                )
            except MigsimError as exc:
                raise InputError(str(exc)) from exc
        text = result.text()
        if outdir:
            write_decision(result, outdir, painter=painter)
    emit(text, result.to_dict(), fmt, written=outdir)


@click.command()
@click.argument("scenario")
@click.option(
    "--range",
    "ranges",
    multiple=True,
    metavar="FIELD=LOW:HIGH",
    help="A field and its low and high values (repeatable).",
)
@click.option(
    "--method",
    type=click.Choice(["oat", "sobol"]),
    default="oat",
    show_default=True,
    help="One at a time (tornado) or Sobol indices.",
)
@simulation_options
@click.option(
    "--samples",
    type=int,
    default=64,
    show_default=True,
    help=f"Sobol: base samples N, a power of 2 from {MIN_SOBOL_SAMPLES} to "
    f"{MAX_SOBOL_SAMPLES:,} (fewer leave a field's lowest or highest quarter "
    "without a point); N x (fields + 2) points. Ignored by oat.",
)
@click.option(
    "--figure",
    "figures",
    multiple=True,
    metavar="NAME_STATISTIC",
    help="Figures to measure (default: clearance_day_p50 and the P90 of "
    "every risk figure).",
)
@outdir_option("Write sensitivity.csv, sensitivity.json and the chart here.")
@overwrite_option()
@scheduler_option(EXISTING_CLUSTER_HELP)
@format_option("json: sensitivity.json on stdout.")
@quiet_option()
@click.pass_context
def sensitivity(
    ctx,
    scenario,
    ranges,
    method,
    replications,
    seed,
    workers,
    sets,
    samples,
    figures,
    outdir,
    overwrite,
    scheduler,
    fmt,
    quiet,
):
    """Measure how much each --range field moves the clearance day and each risk."""
    if method == "sobol":
        _check_samples(samples)
    painter = painter_for(ctx, outdir)  # the chart's process, ready early
    from migsim.cli.text import fmt_float
    from migsim.experiments.sensitivity import parse_range as parse_sensitivity_range
    from migsim.experiments.sensitivity import sensitivity as measure_sensitivity
    from migsim.output.experiment_files import write_sensitivity

    sc = load(scenario, sets)
    refuse_existing(outdir, overwrite, inputs=[scenario])
    try:
        parsed = [parse_sensitivity_range(sc, text) for text in ranges]
        with progress_bar(None, "rep", quiet) as bar:
            result = measure_sensitivity(
                sc,
                parsed,
                method,
                replications,
                seed,
                workers,
                samples=samples,
                figures=figures or None,
                scheduler=scheduler,
                progress=towards(bar),
            )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    columns = ["figure", "field", "value_low", "value_high", "swing"]
    shown = result.table
    if method == "sobol":
        columns += ["s1", "st"]
    else:
        shown = shown.assign(**{CHANGE_CI: _change_ci_text(shown)})
        columns.append(CHANGE_CI)
    table = shown[columns].to_string(index=False, float_format=fmt_float)
    text = (
        f"{sc.name}: {method}, {result.points} points x {replications} "
        f"replications (seed {result.seed})\n\n{table}"
    )
    if method == "oat":
        text += (
            f"\n\n{CHANGE_CI}: of value_high - value_low, on paired replications; "
            "one that holds 0 may be noise: run more replications to tell."
        )
    if outdir:
        write_sensitivity(result, outdir, overwrite=overwrite, painter=painter)
    emit(text, result.to_dict(), fmt, written=outdir)


def _check_samples(samples: int) -> None:
    """Sobol's range of ``--samples``, checked here rather than by click: oat
    ignores the option (as the Python API does), and ``--method oat
    --samples 2`` was refused for a value nothing would use. The message is
    click's own."""
    if not MIN_SOBOL_SAMPLES <= samples <= MAX_SOBOL_SAMPLES:
        raise click.BadParameter(
            f"{samples} is not in the range "
            f"{MIN_SOBOL_SAMPLES}<=x<={MAX_SOBOL_SAMPLES}.",
            param_hint="'--samples'",
        )


#: The printed column of an OAT row's 95% interval of its change.
CHANGE_CI = "change 95% CI"


def _change_ci_text(table) -> list[str]:
    """Each row's ``[low, high]`` interval of its change, "-" where undefined."""
    from migsim.cli.text import fmt_float

    out = []
    for low, high in zip(
        table["change_ci95_low"], table["change_ci95_high"], strict=True
    ):
        if low != low or high != high:  # NaN: a backlog not cleared
            out.append("-")
        else:
            out.append(f"[{fmt_float(low)}, {fmt_float(high)}]")
    return out
