"""Commands on runs of scenarios: run, compare, report, validate, scenarios.

Each command loads what it needs when called, so ``migsim --help`` stays quick.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from migsim.cli.options import (
    FiniteFloatRange,
    by_option,
    format_option,
    outdir_option,
    output_option,
    overwrite_option,
    quiet_option,
    scheduler_option,
    sets_option,
    simulation_options,
)
from migsim.cli.progress import progress_bar
from migsim.cli.shared import (
    InputError,
    by_dates,
    command_line,
    emit,
    file_output,
    load,
    painter_for,
    refuse_existing,
    refuse_inputs_as_outputs,
)
from migsim.common.errors import MigsimError
from migsim.common.files import (
    SpillFile,
    atomic_text,
    clear_stale_temporaries,
    follow_link,
    make_folder,
    output_dir,
)
from migsim.model.limits import MAX_REPLICATIONS
from migsim.output.html import UNITS

if TYPE_CHECKING:  # loaded by the command that needs it (start-up cost)
    from migsim.experiments.question import Question

__all__ = ["bundled_scenarios_dir", "compare", "report", "run", "scenarios", "validate"]

#: Exit status of a run that finished with failed replications.
REPLICATIONS_FAILED = 3


@click.command()
@click.argument("scenario")
@simulation_options
@outdir_option(
    "Write daily.parquet, replications.csv, cohort_replications.csv, "
    "summary.json, scenario.yaml, backlog.png, bands.csv, weekly.csv and "
    "results.xlsx here; and, where they apply, inputs.csv, defects.csv, "
    "bands_meters.csv and failures.json (docs/scenario-reference.md)."
)
@overwrite_option()
@click.option("--no-daily", is_flag=True, help="Do not write daily.parquet.")
@format_option("json: the summary as JSON on stdout, table on stderr.")
@by_option
@click.option(
    "--point",
    is_flag=True,
    help="Run every uncertain input at its point value (means, planned dates, "
    "modes; as 'uncertainty: point'): what the uncertainty adds.",
)
@click.option(
    "--precision",
    type=FiniteFloatRange(min=0, min_open=True),
    default=None,
    metavar="DAYS",
    help="Run batches of -n replications (default 20) until the 95% CI "
    "of the mean clearance day is within +-DAYS.",
)
@click.option(
    "--precision-share",
    type=FiniteFloatRange(0, 1, min_open=True),
    default=0.05,
    show_default=True,
    help="With --precision, when some replications do not clear: the "
    "half-width target for P(cleared by the horizon end).",
)
@click.option(
    "--max-replications",
    type=click.IntRange(2, MAX_REPLICATIONS),
    default=2000,
    show_default=True,
    help="With --precision: stop here whatever the width.",
)
@click.option(
    "--fail-fast",
    is_flag=True,
    help="Stop at the first replication that fails (default: record it, go on "
    "with the others, and exit 3).",
)
@scheduler_option()
@quiet_option()
@click.pass_context
def run(
    ctx,
    scenario,
    replications,
    seed,
    workers,
    sets,
    outdir,
    overwrite,
    no_daily,
    fmt,
    by,
    point,
    precision,
    precision_share,
    max_replications,
    fail_fast,
    scheduler,
    quiet,
):
    """Run seeded replications of SCENARIO and summarise when the backlog clears.

    A replication that fails is recorded (failures.json) and the others go on;
    the run then exits 3. With --fail-fast the first failure stops the run.
    """
    painter = painter_for(ctx, outdir)  # the chart's process, ready early
    from migsim.cli.text import failures_text, summary_text
    from migsim.common.cdfs import load_t_ppf
    from migsim.evidence.intervals import annotate, check_by_dates
    from migsim.model.point import point_scenario
    from migsim.output.spreadsheets import write_run_outputs
    from migsim.runner.precision import run_to_precision
    from migsim.runner.runner import run as run_scenario

    sc = load(scenario, sets)
    if point:
        sc = point_scenario(sc)
    refuse_existing(outdir, overwrite, inputs=[scenario])
    by = by_dates(by)
    try:
        check_by_dates(sc, by)
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    # the spill file sits beside OUTDIR, so daily.parquet is hard-linked, not copied
    spill_dir = None
    if outdir:
        try:  # here, not in the run, whose message named its spill file
            spill_dir = follow_link(outdir).resolve().parent
            make_folder(spill_dir)
            SpillFile(spill_dir).close()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a loop of links
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InputError(f"{outdir}: cannot write there: {reason}") from None
    if precision is None:
        with progress_bar(replications, "rep", quiet) as bar:
            try:
                results = run_scenario(
                    sc,
                    replications=replications,
                    seed=seed,
                    workers=workers,
                    scheduler=scheduler,
                    spill_dir=spill_dir,
                    progress=_first_back(
                        bar.update,
                        load_t_ppf if replications > 1 and workers > 1 else None,
                    ),
                    fail_fast=fail_fast,
                )
            except MigsimError as exc:
                raise InputError(str(exc)) from exc
    else:
        source = ctx.get_parameter_source("replications")
        batch = replications if source is click.core.ParameterSource.COMMANDLINE else 20
        if batch < 2 or batch > max_replications:
            raise InputError(
                f"--precision: batch size -n {batch} must be between 2 and "
                f"--max-replications {max_replications}"
            )
        with progress_bar(max_replications, "rep", quiet) as bar:

            def checked(check) -> None:
                bar.update(check.replications - bar.n)
                bar.set_postfix_str(f"half-width {check.half_width:.3g}")

            results = run_to_precision(
                sc,
                precision,
                batch=batch,
                seed=seed,
                workers=workers,
                max_replications=max_replications,
                share=precision_share,
                progress=checked,
                fail_fast=fail_fast,
            )
    annotate(results, by)
    results.annotate("command", command_line())
    text = summary_text(results)
    if results.failures:
        text += "\n\n" + failures_text(results)
    if outdir:
        results.write(
            outdir,
            overwrite=overwrite,
            daily=not no_daily,
            charts=partial(write_run_outputs, painter=painter),
        )
    emit(text, results.summary, fmt, written=outdir)
    if results.failures:
        ctx.exit(REPLICATIONS_FAILED)


def _first_back(
    update: Callable[[int], None], load: Callable[[], None] | None
) -> Callable[[int], None]:
    """``update`` for a run's progress; with the first batch back it also calls
    ``load`` once: the workers go on with the queued batches meanwhile, so what
    the summary needs later (a mean's interval: scipy.special) loads for free."""
    pending = [load] if load is not None else []

    def progress(done: int) -> None:
        update(done)
        if pending:
            pending.pop()()

    return progress


@click.command()
@click.argument("scenarios", nargs=-1, required=True)
@simulation_options
@outdir_option(
    "Write each scenario's run to OUTDIR/<name>/, comparison.json, "
    "comparison.csv and comparison.xlsx."
)
@overwrite_option()
@format_option("json: the comparison as JSON on stdout, table on stderr.")
@by_option
@quiet_option()
def compare(
    scenarios, replications, seed, workers, sets, outdir, overwrite, fmt, by, quiet
):
    """Run SCENARIOS with common random numbers and compare each with the first.

    --set applies to every scenario. The seed defaults to the first scenario's.
    """
    from migsim.cli.text import comparison_text
    from migsim.evidence.intervals import annotate, check_by_dates
    from migsim.experiments.compare import compare as compare_scenarios
    from migsim.experiments.compare import p_clear_by_pairs, write_comparison
    from migsim.output.spreadsheets import write_comparison_tables, write_run_outputs
    from migsim.results.rundir import is_run_directory

    for path in scenarios:
        if is_run_directory(path):  # was "cannot read: not a regular file"
            raise InputError(
                f"{path}: a run folder: compare runs scenario files (migsim "
                "report compares run folders, as they are)"
            )
    loaded = [load(path, sets) for path in scenarios]
    # compare checks its own kind of folder
    refuse_existing(outdir, overwrite, foreign=False, inputs=scenarios)
    by = by_dates(by)
    for path, sc in zip(scenarios, loaded, strict=True):
        try:
            check_by_dates(sc, by)
        except MigsimError as exc:  # which of the scenarios: they may differ
            raise InputError(f"{path}: {exc}") from exc
    names = [sc.name for sc in loaded]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(
            f"scenario names must differ to compare: {', '.join(duplicated)} "
            "(rename one)"
        )
    seed = loaded[0].seed if seed is None else seed
    with progress_bar(replications * len(loaded), "rep", quiet) as bar:
        runs, comparison = compare_scenarios(
            loaded, replications, seed, workers, progress=bar.update
        )
    command = command_line()
    for results in runs:
        annotate(results, by)
        results.annotate("command", command)
    comparison = {"command": command, **comparison}
    if by:
        comparison["p_clear_by"] = p_clear_by_pairs(runs, by)
    summaries = {r.scenario.name: r.summary for r in runs}
    text = comparison_text(comparison, summaries)
    if outdir:
        try:
            write_comparison(
                runs,
                comparison,
                outdir,
                overwrite=overwrite,
                charts=write_run_outputs,
                files=lambda out: write_comparison_tables(comparison, runs, out, by),
            )
        except MigsimError as exc:
            raise InputError(str(exc)) from exc
    emit(text, comparison, fmt, written=outdir)


def _asked(question: str | None) -> Question | None:
    """The question file given to ``--question``, loaded once (its every lever
    value is validated, a fraction of a second); None for a decided folder."""
    from migsim.experiments.decision import is_decision_directory
    from migsim.experiments.question import load_question

    if question is None or is_decision_directory(question):
        return None
    return load_question(question)


def _decision_for_report(
    question: str,
    asked: Question | None,
    target: Path,
    replications: int,
    seed: int | None,
    workers: int,
    overwrite: bool,
):
    """A decision directory as given, or the question ``asked`` decided beside
    the report."""
    from migsim.common.store import held
    from migsim.experiments.decide import decide as decide_question
    from migsim.experiments.decision import load_decision
    from migsim.output.experiment_files import write_decision

    if asked is None:
        return load_decision(question)
    where = _decision_store(target)
    with held(where, "decision"):  # over the decision and the write replacing it
        result = decide_question(
            asked,
            replications,
            seed,
            workers,
            directory=where,
            fresh=overwrite,
            restart="--overwrite",
        )
        write_decision(result, where)
    return load_decision(where)


def _decision_store(target: Path) -> Path:
    """Where a report decides a question file: ``<report name>_decision/``."""
    return target.with_name(target.stem + "_decision")


def _check_decision_store(
    asked: Question | None,
    target: Path,
    replications: int,
    seed: int | None,
    overwrite: bool,
) -> None:
    """Refuse, before any scenario runs, the store `_decision_for_report` would
    refuse (another -n or seed, a folder that is not a store): it came only
    after the report's runs, their minutes lost."""
    from migsim.experiments.decide import check_store

    if asked is None:
        return  # a decided folder is read as it is: nothing is decided
    check_store(
        asked,
        _decision_store(target),
        replications,
        seed,
        fresh=overwrite,
        restart="--overwrite",
    )


def _question_scenario(question: str, asked: Question | None) -> str:
    """The name of the scenario a question (file or decided folder) is about."""
    from migsim.model.scenario import load_scenario

    if asked is None:
        return load_scenario(Path(question) / "scenario.yaml").name
    return asked.scenario.name


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="RUN_OR_SCENARIO...")
@simulation_options
@output_option("The HTML file to write.")
@overwrite_option("Replace an existing report and the runs beside it.")
@click.option(
    "--units",
    type=click.Choice(UNITS),
    default="installations",
    show_default=True,
    help="meters: counts times the scenario's meters_per_installation.",
)
@by_option
@click.option(
    "--question",
    "question",
    default=None,
    metavar="QUESTION",
    help="Add 'Basis for increasing volumes': a decision directory (from "
    "migsim decide -o) or a question file, decided first (-n, --seed, "
    "-j) into <report name>_decision/ beside the report.",
)
@quiet_option()
def report(
    inputs,
    replications,
    seed,
    workers,
    sets,
    output,
    overwrite,
    units,
    by,
    question,
    quiet,
):
    """Write a self-contained HTML report for OPSG of runs or scenarios.

    Each input is a run directory (from `migsim run -o`) or a scenario file;
    scenario files are run first (-n, --seed, -j, --set) into
    <report name>_runs/<scenario name>/ beside the report.
    """
    from migsim.evidence.intervals import annotate, check_by_dates
    from migsim.output.report import render_report, unit_scale
    from migsim.output.report_basis import check_question_scenario
    from migsim.output.spreadsheets import write_run_outputs
    from migsim.results.rundir import load_run
    from migsim.runner.runner import run as run_scenario

    target = file_output(output)
    refuse_inputs_as_outputs([output], [*inputs, question])
    refuse_existing(output, overwrite)
    by = by_dates(by)
    runs_dir = target.with_name(target.stem + "_runs")
    written: list[Path] = []  # the runs this report wrote
    made = not runs_dir.exists()  # a failed report leaves no empty runs folder
    before = _identity(target)  # the page in place before (or None)
    try:
        # a folder is a run (one without summary.json is named so, not read
        # as a scenario file: "cannot read: not a regular file")
        scenario_inputs = [p for p in inputs if not Path(p).is_dir()]
        loaded = {p: load(p, sets) for p in scenario_inputs}
        for sc in loaded.values():
            unit_scale(sc, units)
            check_by_dates(sc, by)
        saved = {p: load_run(p) for p in inputs if p not in loaded}
        asked = _asked(question)
        if question is not None:  # refused before anything runs
            names = [
                loaded[p].name if p in loaded else saved[p].scenario.name
                for p in inputs
            ]
            check_question_scenario(_question_scenario(question, asked), names)
            _check_decision_store(asked, target, replications, seed, overwrite)
        scenarios = [loaded[p] for p in inputs if p in loaded]
        _refuse_colliding_runs(
            scenarios, [r.scenario.name for r in saved.values()], runs_dir, overwrite
        )
        carry = (  # --overwrite: the runs folder is replaced as a whole
            _carried_runs(runs_dir, [*inputs, question], [s.name for s in scenarios])
            if overwrite and runs_dir.is_dir()
            else None
        )
        with _runs_folder(runs_dir, carry) as into:
            with progress_bar(replications * len(loaded), "rep", quiet) as bar:
                for sc in scenarios:
                    results = run_scenario(
                        sc,
                        replications=replications,
                        seed=seed,
                        workers=workers,
                        progress=bar.update,
                        fail_fast=True,  # a report is never of a partial run
                    )
                    annotate(results, by)
                    results.annotate("command", command_line())
                    where = into / sc.name
                    results.write(where, overwrite=overwrite, charts=write_run_outputs)
                    written.append(where)
            decision = None
            if question is not None:  # before the runs folder is replaced
                decision = _decision_for_report(
                    question, asked, target, replications, seed, workers, overwrite
                )
        for path, sc in loaded.items():  # read back where they now are
            saved[path] = load_run(runs_dir / sc.name)
        page = render_report(
            [saved[p] for p in inputs],
            units=units,
            by=by,
            command=command_line(),
            decision=decision,
        )
        # inside: a page the disk refused (full, read-only) left its runs
        make_folder(target.parent)
        clear_stale_temporaries(target)  # what a killed report left
        atomic_text(target, page)
    except BaseException as exc:
        # a failed report leaves no run that looks finished; a Ctrl-C held
        # while the page was renamed into place comes after it: its runs stay
        for where in written if _identity(target) == before else []:
            shutil.rmtree(where, ignore_errors=True)
        if made and runs_dir.is_dir() and not any(runs_dir.iterdir()):
            runs_dir.rmdir()
        if isinstance(exc, MigsimError):
            raise InputError(str(exc)) from exc
        raise
    size = target.stat().st_size  # bytes on disk, not characters
    click.echo(f"Report written to {output} ({len(inputs)} run(s), {size:,} bytes)")


def _identity(path: Path) -> tuple[int, int] | None:
    """The file at ``path`` (device and inode), None if there is none: a page
    renamed into place is another file than the one there before."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _refuse_colliding_runs(
    scenarios: list[Any], given: list[str], runs_dir: Path, overwrite: bool
):
    """Before anything runs: every scenario of a report gets its own folder
    ``runs_dir/<name>``, free or replaceable (a second scenario of one name
    used to fail after the first had been run and written), and no input's
    name is another's (``given``: the scenario names of the runs given; one
    of them named as a scenario was refused only after the scenarios ran)."""
    names = [sc.name for sc in scenarios]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(
            f"scenario names must differ in a report: {', '.join(twice)} (each "
            f"runs into {runs_dir}/<name>/; rename one, or give a file once)"
        )
    every = [*given, *names]
    twice = sorted({n for n in every if every.count(n) > 1})
    if twice:
        raise InputError(
            f"scenario names must differ in a report: {', '.join(twice)} (given "
            "as runs or scenario files more than once; rename one, or give it once)"
        )
    for name in names:
        refuse_existing(runs_dir / name, overwrite)


#: Names of what a killed write left in a folder (`migsim.common.files`):
#: ``.<name>.partial-``, ``.old-`` and ``.tmp-<pid>-<random>``.
_LEFTOVER = re.compile(r"^\..+\.(partial|old|tmp)-\d+-")


def _carried_runs(
    runs_dir: Path, given: list[str | None], names: list[str]
) -> list[str]:
    """Before anything runs, for a report with --overwrite over its runs
    folder: the entries carried into the new folder that replaces it (the
    report's inputs that are in it), refusing anything there that a report
    did not write (a folder of the user's, a run of `migsim run`), and a
    scenario that would run into one of its inputs.

    Every other entry is a run an earlier report wrote: with --overwrite it
    is not carried, so the folder holds exactly this report's runs."""
    here = runs_dir.resolve()
    if Path.cwd().resolve().is_relative_to(here):
        raise InputError(
            f"{runs_dir}: holds the current folder; the report replaces it as "
            "a whole with --overwrite (run it from elsewhere)"
        )
    inputs: dict[Path, str] = {}
    for path in given:
        if path is None:
            continue
        whole = Path(path).resolve()
        if whole.is_relative_to(here) and whole.parent != here:
            raise InputError(
                f"{path}: is inside {runs_dir}/, which the report replaces as a "
                "whole with --overwrite; copy it elsewhere first"
            )
        inputs[whole] = path
    carry = []
    for entry in sorted(runs_dir.iterdir()):
        given_as = None if entry.is_symlink() else inputs.get(entry.resolve())
        if given_as is not None:
            if entry.name in names:
                raise InputError(
                    f"{entry}: is the input {given_as}; scenario {entry.name} "
                    "would run into it (rename the scenario, or move the run)"
                )
            carry.append(entry.name)
        elif not _LEFTOVER.match(entry.name) and not _written_by_a_report(entry):
            raise InputError(
                f"{entry}: not a run a report wrote; the report replaces "
                f"{runs_dir}/ as a whole with --overwrite (move it out first)"
            )
    return carry


def _written_by_a_report(entry: Path) -> bool:
    """Whether ``entry`` is a run folder that ``migsim report`` wrote (its
    summary.json records the command), never a link or a folder of the user's."""
    if entry.is_symlink() or not entry.is_dir():
        return False
    try:
        summary = json.loads((entry / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    command = summary.get("command") if isinstance(summary, dict) else None
    return isinstance(command, str) and command.startswith("migsim report ")


@contextmanager
def _runs_folder(runs_dir: Path, carry: list[str] | None) -> Iterator[Path]:
    """Where a report writes the runs of its scenarios.

    ``carry`` None: into ``runs_dir`` itself, beside what is there. A list
    (`_carried_runs`, for --overwrite): into a new folder staged beside it,
    with those entries carried over, that replaces it as a whole when the
    block ends well (`migsim.common.files.output_dir`); an error or a kill
    leaves the old folder as it was. A new folder with nothing in it is
    removed: the report has no runs of its own."""
    if carry is None:
        yield runs_dir
        return
    with output_dir(runs_dir, overwrite=True, keep=carry) as staging:
        yield staging
    if runs_dir.is_dir() and not any(runs_dir.iterdir()):
        runs_dir.rmdir()


@click.command()
@click.argument("scenario")
@sets_option()
def validate(scenario, sets):
    """Check SCENARIO and say what is wrong with it, if anything."""
    from migsim.model.limits import check_memory

    sc = load(scenario, sets)
    try:  # whatever validates, runs: the memory estimate is checked here too
        check_memory(sc)
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    click.echo(
        f"{scenario}: valid: {sc.name}, {len(sc.cohorts)} cohorts, "
        f"{sc.installations:,} installations, {sc.horizon_days} days"
    )


def bundled_scenarios_dir() -> Path:
    """The repository's ``scenarios/`` folder (migsim is installed editable)."""
    return Path(__file__).resolve().parents[2] / "scenarios"


def _shown_path(path: Path) -> str:
    """``path`` as it works from here: relative under the cwd, else absolute."""
    here = Path.cwd().resolve()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


@click.command()
def scenarios():
    """List the bundled scenarios with their descriptions."""
    from migsim.model.scenario import load_scenario

    root = bundled_scenarios_dir()
    paths = sorted(root.rglob("*.yaml")) if root.is_dir() else []
    if not paths:
        click.echo("no bundled scenarios found", err=True)
        return
    for path in paths:
        try:
            sc = load_scenario(path)
            about = " ".join(sc.description.split())
        except MigsimError:
            continue  # not a scenario (e.g. a question file)
        click.echo(f"{_shown_path(path)}\n    {about}")
