"""Commands that learn from actuals: calibrate, forecast, backtest."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from migsim.cli.options import (
    DATE,
    actuals_options,
    format_option,
    outdir_option,
    output_option,
    overwrite_option,
    quiet_option,
    simulation_options,
)
from migsim.cli.progress import progress_bar
from migsim.cli.shared import (
    InputError,
    emit,
    file_output,
    load,
    load_actuals,
    refuse_existing,
    refuse_inputs_as_outputs,
)
from migsim.common.errors import MigsimError
from migsim.common.files import (
    clear_stale_temporaries,
    follow_link,
    make_folder,
    write_files,
)
from migsim.common.lifeline import stops_held

__all__ = ["backtest", "calibrate", "forecast"]


@click.command()
@click.argument("scenario")
@actuals_options
@click.option(
    "--as-of",
    type=DATE,
    default=None,
    help="Use only the actuals dated on or before this date (one of the "
    "scenario's, from its start to its horizon's last day).",
)
@simulation_options
@output_option(
    "The calibrated scenario (YAML); the summary goes beside it as "
    "<name>.calibration.json and the check chart as <name>.check.png."
)
@overwrite_option("Replace existing output files.")
@click.option(
    "--no-check",
    is_flag=True,
    help="Skip the posterior predictive check (no simulation).",
)
@quiet_option()
def calibrate(
    scenario,
    actuals_path,
    actuals_unit,
    actuals_replication,
    prior_strength,
    as_of,
    replications,
    seed,
    workers,
    sets,
    output,
    overwrite,
    no_check,
    quiet,
):
    """Learn SCENARIO's rates from actuals; write the calibrated scenario."""
    from migsim.evidence.calibrate import calibrate as run_calibrate
    from migsim.evidence.calibrate import posterior_check
    from migsim.output.evidence_files import save_posterior_check

    target = file_output(output)
    sc = load(scenario, sets)
    stem = target.with_suffix("")
    paths = [target, Path(f"{stem}.calibration.json"), Path(f"{stem}.check.png")]
    refuse_inputs_as_outputs(paths, [scenario, actuals_path])
    for path in paths:
        refuse_existing(str(path), overwrite)
    actuals = load_actuals(
        actuals_path, sc, actuals_unit, actuals_replication, scenario
    )
    try:
        result = run_calibrate(
            sc, actuals, prior_strength, as_of=as_of.date() if as_of else None
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    check = None
    if not no_check:
        with progress_bar(replications, "rep", quiet) as bar:
            _, check = posterior_check(
                result, replications, seed, workers, progress=bar.update
            )
    make_folder(target.parent)
    yaml_text = result.scenario.to_yaml()
    json_text = json.dumps(result.summary(), indent=2) + "\n"
    writers: dict[str | Path, Callable[[Path], Any]] = {
        paths[0]: lambda tmp: tmp.write_text(yaml_text, encoding="utf-8"),
        paths[1]: lambda tmp: tmp.write_text(json_text, encoding="utf-8"),
    }
    if check is not None:
        writers[paths[2]] = lambda tmp: save_posterior_check(check, tmp)
    clear_stale_temporaries(*paths)  # what a killed calibrate left
    # without a check: the new files and no old chart, or the old set whole
    with stops_held() if check is None else nullcontext():
        write_files(writers)  # all of them, or none
        if check is None:  # an earlier calibrate's chart is not this one's check
            follow_link(paths[2]).unlink(missing_ok=True)
    written = [str(p) for p in paths if p.exists()]
    click.echo(result.text() + f"\n\nWritten {', '.join(written)}")


@click.command()
@click.argument("scenario")
@actuals_options
@click.option(
    "--as-of",
    type=DATE,
    required=True,
    help="The last date of actuals to use: the forecast starts the day after.",
)
@simulation_options
@outdir_option(
    "Write the usual run outputs here (backlog.png shows actuals then "
    "the forecast), plus calibration.json and calibrated.yaml."
)
@overwrite_option()
@click.option("--no-daily", is_flag=True, help="Do not write daily.parquet.")
@format_option("json: the summary as JSON on stdout, table on stderr.")
@quiet_option()
def forecast(
    scenario,
    actuals_path,
    actuals_unit,
    actuals_replication,
    prior_strength,
    as_of,
    replications,
    seed,
    workers,
    sets,
    outdir,
    overwrite,
    no_daily,
    fmt,
    quiet,
):
    """Forecast SCENARIO from actuals up to a date: calibrate, start, run forward."""
    from migsim.cli.text import summary_text
    from migsim.evidence.forecast import forecast_as_of
    from migsim.output.evidence_files import write_forecast

    sc = load(scenario, sets)
    refuse_existing(outdir, overwrite, inputs=[scenario, actuals_path])
    actuals = load_actuals(
        actuals_path, sc, actuals_unit, actuals_replication, scenario
    )
    try:
        with progress_bar(replications, "rep", quiet) as bar:
            result = forecast_as_of(
                sc,
                actuals,
                as_of.date(),
                replications,
                seed,
                workers,
                prior_strength,
                progress=bar.update,
            )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    text = result.summary_text() + "\n\n" + summary_text(result.results)
    if outdir:
        write_forecast(result, outdir, overwrite=overwrite, daily=not no_daily)
    emit(text, result.results.summary, fmt, written=outdir)


@click.command()
@click.argument("scenario")
@actuals_options
@click.option(
    "--as-of",
    "as_of",
    type=DATE,
    multiple=True,
    help="A date to forecast from (repeatable; default: the scenario's start).",
)
@click.option(
    "--every",
    type=click.Choice(["month"]),
    default=None,
    help="A rolling backtest: also forecast from the start and the last day of "
    "every month with actuals, and print how the band narrows as they arrive.",
)
@simulation_options
@outdir_option(
    "Write backtest.json, backtest_points.csv, backtest.png and scenario.yaml here."
)
@overwrite_option()
@format_option("json: backtest.json on stdout, table on stderr.")
@quiet_option()
def backtest(
    scenario,
    actuals_path,
    actuals_unit,
    actuals_replication,
    prior_strength,
    as_of,
    every,
    replications,
    seed,
    workers,
    sets,
    outdir,
    overwrite,
    fmt,
    quiet,
):
    """Score SCENARIO's forecasts against what actually happened."""
    from migsim.evidence.backtest import backtest as run_backtest
    from migsim.evidence.backtest import monthly_as_of
    from migsim.output.evidence_files import write_backtest

    sc = load(scenario, sets)
    refuse_existing(outdir, overwrite, inputs=[scenario, actuals_path])
    actuals = load_actuals(
        actuals_path, sc, actuals_unit, actuals_replication, scenario
    )
    try:
        dates = [d.date() for d in as_of]
        if every:
            dates += monthly_as_of(sc, actuals, every)
        forecasts = max(1, len(set(dates)))  # one per distinct as-of date
        with progress_bar(replications * forecasts, "rep", quiet) as bar:
            result = run_backtest(
                sc,
                actuals,
                dates,
                replications,
                seed,
                workers,
                prior_strength,
                progress=bar.update,
            )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    text = result.text()
    if outdir:
        write_backtest(result, outdir, overwrite=overwrite)
    emit(text, result.summary(), fmt, written=outdir)
