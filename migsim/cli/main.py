"""Command line: parse, call the library, write. Nothing here simulates by itself.

Exit status: 0 when the command did its job (also when its verdict is
negative), 2 for bad input (one line naming the file and field, no traceback),
anything else for an internal error, which keeps its traceback.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click

from migsim import __version__
from migsim.common.errors import MigsimError
from migsim.evidence.actuals import Actuals, read_actuals
from migsim.evidence.backtest import backtest as run_backtest
from migsim.evidence.calibrate import DEFAULT_PRIOR_STRENGTH, posterior_check
from migsim.evidence.calibrate import calibrate as run_calibrate
from migsim.evidence.forecast import annotate, check_by_dates, forecast_as_of
from migsim.experiments.compare import compare as compare_scenarios
from migsim.experiments.decide import decide as decide_question
from migsim.experiments.decision import is_decision_directory, load_decision
from migsim.experiments.question import load_question
from migsim.experiments.search import Candidate
from migsim.experiments.sensitivity import parse_range as parse_sensitivity_range
from migsim.experiments.sensitivity import sensitivity as measure_sensitivity
from migsim.experiments.sweep import (
    SweepDefinition,
    figure_columns,
    parse_grid,
    parse_range,
    run_sweep,
)
from migsim.model.scenario import Scenario, load_scenario
from migsim.output.evidence_files import (
    save_posterior_check,
    write_backtest,
    write_forecast,
)
from migsim.output.experiment_files import write_decision, write_sensitivity
from migsim.output.plots import plt, sweep_chart
from migsim.output.report import UNITS, render_report, unit_scale
from migsim.results.results import Results
from migsim.results.rundir import is_run_directory, load_run
from migsim.runner.precision import run_to_precision
from migsim.runner.runner import run as run_scenario
from migsim.sim.operations import figures_in_use

__all__ = ["main"]


class InputError(click.ClickException):
    """Bad input: printed as one line, exit status 2.

    Control characters from the input (a newline in a key or value) are shown
    escaped, so the message stays one line.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(_one_line(message))


def _one_line(text: str) -> str:
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text
    )


def bundled_scenarios_dir() -> Path:
    """The repository's ``scenarios/`` folder (migsim is installed editable)."""
    return Path(__file__).resolve().parents[2] / "scenarios"


def parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    """``--set key=value`` pairs; values are parsed later with yaml.safe_load."""
    overrides: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected FIELD=VALUE")
        overrides[key.strip()] = value.strip()
    return overrides


def load(path: str, sets: tuple[str, ...] = ()) -> Scenario:
    """Load a scenario for a command, turning bad input into exit status 2."""
    try:
        return load_scenario(path, parse_sets(sets) or None)
    except MigsimError as exc:
        raise InputError(str(exc)) from exc


# --------------------------------------------------------------------------- options
def simulation_options(func):
    """The options every simulating command shares: -n, --seed, -j, --set."""
    options = [
        click.option(
            "-n",
            "--replications",
            type=click.IntRange(min=1),
            default=200,
            show_default=True,
            help="Seeded replications to run.",
        ),
        click.option(
            "--seed",
            type=click.IntRange(min=0),
            default=None,
            help="Run seed (default: the scenario's seed).",
        ),
        click.option(
            "-j",
            "--workers",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Worker processes; results do not depend on it.",
        ),
        click.option(
            "--set",
            "sets",
            multiple=True,
            metavar="FIELD=VALUE",
            help="Override a scenario field by dotted path (repeatable).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def progress_bar(total: int, unit: str, quiet: bool):
    """A tqdm bar on stderr (done, rate, ETA); silent off a terminal or with --quiet."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=quiet or not sys.stderr.isatty(),
        leave=False,
    )


def scheduler_option(func):
    return click.option(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        help="Run on this Dask distributed cluster instead of local processes "
        "(identical results).",
    )(func)


def quiet_option(func):
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar.")(func)


# --------------------------------------------------------------------------- text
def _fmt_int(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _table(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    """A plain-text table whose columns fit their widest cell (dates, 'after ...')."""
    label_width = max([len(title)] + [len(row[0]) + 2 for row in rows]) + 2
    widths = [
        max([len(headers[j])] + [len(row[j + 1]) for row in rows]) + 2
        for j in range(len(headers))
    ]
    head = f"{title:<{label_width}}" + "".join(
        f"{h:>{w}}" for h, w in zip(headers, widths)
    )
    body = [
        f"  {row[0]:<{label_width - 2}}"
        + "".join(f"{cell:>{w}}" for cell, w in zip(row[1:], widths))
        for row in rows
    ]
    return [head, *body]


#: Summary rows of the operations figures, each after the row it details, shown
#: when the scenario's sections use it (`operations.figures_in_use`).
_OPERATIONS_ROWS = (
    ("active_dumb", "    of which prepayment (grave)", "active_prepayment_dumb"),
    ("abandoned", "  of which excluded (never remote)", "excluded"),
    (
        "active_interrupted_installation_days",
        "active dumb installation-days",
        "active_dumb_installation_days",
    ),
    (
        "active_dumb_installation_days",
        "largest daily active interrupted",
        "max_daily_active_interrupted",
    ),
    ("peak_failure_backlog", "active hit by latent defects", "active_hit_by_defects"),
    ("peak_failure_backlog", "dormant hit by latent defects", "dormant_hit_by_defects"),
    ("peak_failure_backlog", "peak ELS case backlog", "peak_els_backlog"),
    ("peak_els_backlog", "CoS loss alerts not sent", "cos_alerts_lost"),
    ("peak_els_backlog", "PPMID join failures", "ppmid_join_failures"),
)


def summary_text(results: Results) -> str:
    """The planner's summary: clearance dates with spread, then risk totals."""
    summary = results.summary
    sc = results.scenario
    lines = [
        f"{sc.name}: {summary['replications']} replications, seed {summary['seed']}, "
        f"{sc.installations:,} installations, {sc.start_date} to {sc.end_date}",
        "",
    ]

    def clearance_row(label: str, dates: dict[str, str], share: float) -> list[str]:
        return [label, dates["p10"], dates["p50"], dates["p90"], f"{share:.0%}"]

    rows = [
        clearance_row(
            "all cohorts", summary["clearance_date"], summary["cleared_share"]
        )
    ]
    rows += [
        clearance_row(name, cohort["clearance_date"], cohort["cleared_share"])
        for name, cohort in summary["cohorts"].items()
    ]
    lines += _table("Backlog cleared", ["P10", "P50", "P90", "cleared"], rows)
    if summary["cleared_share"] < 1:
        lines.append(
            "  (a date 'after' the horizon end means some replications did not "
            "clear; their mean clearance day is undefined)"
        )
    lines += _uncertainty_lines(summary)
    rows_spec = [
        ("devices left dumb", "dumb"),
        ("  of which active", "active_dumb"),
        ("installations abandoned", "abandoned"),
        (
            "active interrupted installation-days",
            "active_interrupted_installation_days",
        ),
        ("peak failure backlog", "peak_failure_backlog"),
    ]
    used = figures_in_use(results.scenario)
    for after, label, name in _OPERATIONS_ROWS:
        if name in used:
            at = next(i for i, row in enumerate(rows_spec) if row[1] == after) + 1
            while at < len(rows_spec) and rows_spec[at][0].startswith("  "):
                at += 1  # keep "of which" rows under their total
            rows_spec.insert(at, (label, name))
    rows = []
    for label, name in rows_spec:
        stats = summary["figures"][name]
        rows.append(
            [
                label,
                _fmt_int(stats["p50"]),
                _fmt_int(stats["p90"]),
                _fmt_int(stats["mean"]),
            ]
        )
    lines += [
        "",
        *_table("Risks (totals per replication)", ["P50", "P90", "mean"], rows),
    ]
    lines += _policy_lines(results)
    return "\n".join(lines)


def _uncertainty_lines(summary: dict[str, Any]) -> list[str]:
    """Monte Carlo uncertainty, P(clear by date) and precision, if the summary has them."""
    lines: list[str] = []
    ci = summary.get("ci95")
    if ci:
        dates = ci["clearance_date"]

        def bound(value: str | None) -> str:
            return "needs more replications" if value is None else value

        lines.append(
            f"  95% CI of the P50 date: {bound(dates['p50'][0])} to "
            f"{bound(dates['p50'][1])}; of the P90 date: {bound(dates['p90'][0])}"
            f" to {bound(dates['p90'][1])}"
        )
        mean = summary["figures"]["clearance_day"]["mean"]
        interval = ci["figures"]["clearance_day"]["mean"]
        if mean is not None and interval is not None:
            lines.append(
                f"  mean clearance day {mean:,.1f} (95% CI {interval[0]:,.1f} "
                f"to {interval[1]:,.1f})"
            )
    for when, p in summary.get("p_clear_by", {}).items():
        interval = summary.get("p_clear_by_ci95", {}).get(when)
        extra = f" (95% CI {interval[0]:.0%} to {interval[1]:.0%})" if interval else ""
        lines.append(f"  P(cleared by {when}) = {p:.1%}{extra}")
    precision = summary.get("precision")
    if precision:
        target = (
            "mean clearance day"
            if precision["target"] == "mean_clearance_day"
            else "P(cleared by the horizon end), since some replications do not clear"
        )
        goal = precision["goal"][precision["target"]]
        verdict = "met" if precision["met"] else "NOT met (maximum count reached)"
        lines.append(
            f"  precision: {precision['replications']} replications needed for "
            f"a 95% CI half-width of {goal} on the {target}: {verdict} "
            f"(half-width {precision['half_width']})"
        )
    return lines


def _command_line() -> str:
    """The command as typed: ``migsim`` and the arguments the group received."""
    ctx = click.get_current_context(silent=True)
    argv = ctx.meta.get("migsim.argv") if ctx is not None else None
    if argv is None:
        argv = sys.argv[1:]
    return shlex.join(["migsim", *argv])


def _by_dates(values: tuple[Any, ...]) -> list[date]:
    return [v.date() if hasattr(v, "date") else v for v in values]


by_option = click.option(
    "--by",
    "by",
    multiple=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="DATE",
    help="Also give P(backlog cleared by DATE) (repeatable).",
)


class _Group(click.Group):
    """The command group; remembers the arguments for provenance."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["migsim.argv"] = list(args)
        return super().parse_args(ctx, args)


def _policy_lines(results: Results) -> list[str]:
    """Ramp policy: no-go days, rule firings and gate dates, if the scenario has them."""
    sc, policy = results.scenario, results.summary["policy"]
    counts = []
    if sc.go_no_go is not None:
        counts.append(("no-go days", policy["no_go_days"]))
    counts += [
        (f"rule {name} fired", stats) for name, stats in policy["rule_firings"].items()
    ]
    lines: list[str] = []
    if counts:
        rows = [
            [
                label,
                _fmt_int(stats["p50"]),
                _fmt_int(stats["p90"]),
                "-" if stats["mean"] is None else f"{stats['mean']:.1f}",
            ]
            for label, stats in counts
        ]
        lines += [
            "",
            *_table("Ramp policy (per replication)", ["P50", "P90", "mean"], rows),
        ]
    if policy["gates"]:
        rows = [
            [
                name,
                gate["opening_date"]["p10"],
                gate["opening_date"]["p50"],
                gate["opening_date"]["p90"],
                f"{gate['opened_share']:.0%}",
            ]
            for name, gate in policy["gates"].items()
        ]
        lines += ["", *_table("Gate opens", ["P10", "P50", "P90", "opened"], rows)]
    return lines


def _emit(text: str, payload: Any, fmt: str) -> None:
    """Print a command's result: the table, or JSON on stdout and the table on stderr.

    ``payload`` is only serialised for ``--format json``.
    """
    if fmt == "json":
        click.echo(text, err=True)
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(text)


# --------------------------------------------------------------------------- commands
@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migsim")
def main() -> None:
    """migsim: when does the SMETS1 migration backlog clear, and at what risk?"""


@main.command()
@click.argument("scenario")
@simulation_options
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write daily.parquet, replications.csv, summary.json, scenario.yaml "
    "and backlog.png here.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTDIR.")
@click.option("--no-daily", is_flag=True, help="Do not write daily.parquet.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: the summary as JSON on stdout, table on stderr.",
)
@by_option
@click.option(
    "--precision",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="DAYS",
    help="Run batches of -n replications (default 20) until the 95% CI "
    "of the mean clearance day is within +-DAYS.",
)
@click.option(
    "--precision-share",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.05,
    show_default=True,
    help="With --precision, when some replications do not clear: the "
    "half-width target for P(cleared by the horizon end).",
)
@click.option(
    "--max-replications",
    type=click.IntRange(min=2),
    default=2000,
    show_default=True,
    help="With --precision: stop here whatever the width.",
)
@scheduler_option
@quiet_option
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
    precision,
    precision_share,
    max_replications,
    scheduler,
    quiet,
):
    """Run seeded replications of SCENARIO and summarise when the backlog clears."""
    sc = load(scenario, sets)
    if outdir and Path(outdir).exists() and not overwrite:
        raise InputError(f"{outdir}: exists (use --overwrite to replace it)")
    by = _by_dates(by)
    try:
        check_by_dates(sc, by)
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    # the spill file sits beside OUTDIR, so daily.parquet is hard-linked, not copied
    spill_dir = None
    if outdir:
        spill_dir = Path(outdir).resolve().parent
        spill_dir.mkdir(parents=True, exist_ok=True)
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
                    progress=bar.update,
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
        results = run_to_precision(
            sc,
            precision,
            batch=batch,
            seed=seed,
            workers=workers,
            max_replications=max_replications,
            share=precision_share,
        )
    annotate(results, by)
    results.annotate("command", _command_line())
    text = summary_text(results)
    if outdir:
        results.write(outdir, overwrite=overwrite, daily=not no_daily)
        text += f"\n\nWritten to {outdir}/"
    _emit(text, results.summary, fmt)


def _cell(column: str, row, start) -> str:
    value = row[column]
    if column.startswith("clearance_day") and isinstance(value, float):
        if value != value:
            return "-"
        if value == float("inf"):
            return "not cleared"
        return (start + timedelta(days=int(value))).isoformat()
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def sweep_text(table, fields: list[str], figure: str, scenario: Scenario) -> str:
    """One line per point: its values, the chosen figure and its status."""
    columns = ["point", *fields, figure, "status"]
    rows = [[str(c) for c in columns]]
    for _, row in table.iterrows():
        cells = [_cell(c, row, scenario.start_date) for c in columns]
        if row["status"] == "invalid":
            cells[-1] = f"invalid: {row['error']}"
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns) - 1)]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(r[:-1], widths)) + "  " + r[-1]
        for r in rows
    )


@main.command()
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
@click.option(
    "-o",
    "--outdir",
    required=True,
    type=click.Path(file_okay=False),
    help="The sweep store; rerunning the same sweep resumes it.",
)
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
@scheduler_option
@quiet_option
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
    sc = load(scenario, sets)
    try:
        parsed_grid = dict(parse_grid(item) for item in grid)
        parsed_ranges = dict(parse_range(item) for item in ranges)
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
    figure.savefig(Path(outdir) / "sweep.png", dpi=110)
    plt.close(figure)
    click.echo(sweep_text(table, fields, chart_figure, sc))
    counts = table["status"].value_counts().to_dict()
    tally = ", ".join(f"{v} {k}" for k, v in counts.items())
    click.echo(
        f"\n{len(table)} points ({tally}), "
        f"{definition.replications} replications each, seed {definition.seed}. "
        f"Written to {outdir}/ (sweep.parquet, sweep.png, manifest.json)"
    )


def _pairing_line(pairing: dict[str, Any] | None) -> str:
    """What pairing bought on the clearance day, in a planner's words."""
    ratio = None if pairing is None else pairing.get("variance_ratio")
    if ratio is None:
        return "  pairing: undefined (a replication did not clear, or no variation)"
    gain = f", about {1 / ratio:,.0f}x fewer replications" if 0 < ratio < 1 else ""
    return (
        f"  pairing: the clearance-day difference varies {ratio:.2f}x as much as "
        f"with independent streams (correlation {pairing['correlation']:.2f}"
        f"{gain} for the same precision)"
    )


def comparison_text(comparison: dict[str, Any]) -> str:
    """Each scenario against the first: paired differences with 95% CIs."""
    first = comparison["first"]
    crn = (
        "common random numbers"
        if comparison["common_random_numbers"]
        else "independent seeds"
    )
    lines = [
        f"Compared with {first}: {comparison['replications']} paired replications, "
        f"seed {comparison['seed']}, {crn}. Negative = earlier or lower.",
        "",
    ]

    def number(value: float) -> str:
        text = f"{value:+,.1f}"
        return text[:-2] if text.endswith(".0") else text

    def cell(item: dict[str, Any]) -> str:
        if item["diff"] is None:
            return "undefined"
        ci = item["ci95"]
        bounds = (
            ""
            if ci is None
            else " [{}, {}]".format(*("?" if v is None else number(v) for v in ci))
        )
        return f"{number(item['diff'])}{bounds}"

    for name, entry in comparison["scenarios"].items():
        if name == first:
            continue
        rows = []
        for figure, label in (
            ("clearance_day", "clearance day (days)"),
            ("dumb", "devices left dumb"),
            ("active_dumb", "  of which active"),
            ("abandoned", "installations abandoned"),
            (
                "active_interrupted_installation_days",
                "active interrupted installation-days",
            ),
            ("peak_failure_backlog", "peak failure backlog"),
        ):
            stats = entry["figures"][figure]
            rows.append(
                [label, cell(stats["p50"]), cell(stats["p90"]), cell(stats["mean"])]
            )
        lines += _table(f"{name} minus {first} [95% CI]", ["P50", "P90", "mean"], rows)
        lines.append(
            f"  clears before {first}: {entry['p_clears_before_first']:.0%}, "
            f"same day: {entry['p_clears_same_day']:.0%}, "
            f"after: {entry['p_clears_after_first']:.0%}"
        )
        lines.append(_pairing_line(entry.get("pairing", {}).get("clearance_day")))
        lines.append("")
    return "\n".join(lines).rstrip()


@main.command()
@click.argument("scenarios", nargs=-1, required=True)
@simulation_options
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write each scenario's run to OUTDIR/<name>/ and comparison.json.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTDIR.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: the comparison as JSON on stdout, table on stderr.",
)
def compare(scenarios, replications, seed, workers, sets, outdir, overwrite, fmt):
    """Run SCENARIOS with common random numbers and compare each with the first.

    --set applies to every scenario. The seed defaults to the first scenario's.
    """
    loaded = [load(path, sets) for path in scenarios]
    if outdir and Path(outdir).exists() and not overwrite:
        raise InputError(f"{outdir}: exists (use --overwrite to replace it)")
    names = [sc.name for sc in loaded]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(
            f"scenario names must differ to compare: {', '.join(duplicated)} "
            "(rename one)"
        )
    seed = loaded[0].seed if seed is None else seed
    runs, comparison = compare_scenarios(loaded, replications, seed, workers)
    command = _command_line()
    for results in runs:
        annotate(results)
        results.annotate("command", command)
    comparison = {"command": command, **comparison}
    text = comparison_text(comparison)
    if outdir:
        target = Path(outdir)
        if target.exists() and overwrite:
            if any(target.iterdir()) and not (target / "comparison.json").exists():
                raise InputError(
                    f"{outdir}: not the output of migsim compare; not replacing it"
                )
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for results in runs:
            results.write(target / results.scenario.name)
        (target / "comparison.json").write_text(
            json.dumps(comparison, indent=2) + "\n", encoding="utf-8"
        )
        text += f"\n\nWritten to {outdir}/"
    _emit(text, comparison, fmt)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="RUN_OR_SCENARIO...")
@simulation_options
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False),
    required=True,
    help="The HTML file to write.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing report and the runs beside it.",
)
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
def report(
    inputs, replications, seed, workers, sets, output, overwrite, units, by, question
):
    """Write a self-contained HTML report for OPSG of runs or scenarios.

    Each input is a run directory (from `migsim run -o`) or a scenario file;
    scenario files are run first (-n, --seed, -j, --set) into
    <report name>_runs/<scenario name>/ beside the report.
    """
    target = Path(output)
    if target.exists() and not overwrite:
        raise InputError(f"{output}: exists (use --overwrite to replace it)")
    by = _by_dates(by)
    runs_dir = target.with_name(target.stem + "_runs")
    runs: list[Any] = []
    try:
        scenario_inputs = [p for p in inputs if not is_run_directory(p)]
        loaded = {p: load(p, sets) for p in scenario_inputs}
        for sc in loaded.values():
            unit_scale(sc, units)
            check_by_dates(sc, by)
        for path in inputs:
            if path in loaded:
                sc = loaded[path]
                where = runs_dir / sc.name
                if where.exists() and not overwrite:
                    raise InputError(f"{where}: exists (use --overwrite to replace it)")
                results = run_scenario(
                    sc, replications=replications, seed=seed, workers=workers
                )
                annotate(results, by)
                results.annotate("command", _command_line())
                results.write(where, overwrite=overwrite)
                runs.append(load_run(where))
            else:
                runs.append(load_run(path))
        decision = None
        if question is not None:
            decision = _decision_for_report(
                question, target, replications, seed, workers, overwrite
            )
        page = render_report(
            runs, units=units, by=by, command=_command_line(), decision=decision
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
    click.echo(f"Report written to {output} ({len(runs)} run(s), {len(page):,} bytes)")


@main.command()
@click.argument("scenario")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Override a scenario field by dotted path (repeatable).",
)
def validate(scenario, sets):
    """Check SCENARIO and say what is wrong with it, if anything."""
    sc = load(scenario, sets)
    click.echo(
        f"{scenario}: valid: {sc.name}, {len(sc.cohorts)} cohorts, "
        f"{sc.installations:,} installations, {sc.horizon_days} days"
    )


def _fmt_float(value: float) -> str:
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _candidate_line(candidate: Candidate) -> str:
    levers = ", ".join(f"{k}={v}" for k, v in candidate.levers.items())
    verdict = (
        "safe"
        if candidate.safe
        else "unsafe: " + ", ".join(f"{c.label} {c.status}" for c in candidate.broke)
    )
    return (
        f"  candidate {candidate.index}: {levers}: {verdict} "
        f"({candidate.replications} replications)"
    )


@main.command()
@click.argument("question")
@click.option(
    "-n",
    "--replications",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Replications every candidate gets first.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Run seed (default: the scenario's seed).",
)
@click.option(
    "-j",
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes; results do not depend on it.",
)
@click.option(
    "--max-replications",
    type=click.IntRange(min=1),
    default=None,
    help="Double a candidate's replications while its evidence is not "
    "decisive, up to this many (default: 4 x N).",
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
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write decision.json, candidates.csv and frontier.png here; "
    "finished batches are kept so a killed run resumes.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Discard finished batches of another definition in OUTDIR.",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Run on an existing Dask cluster instead of local processes; "
    "results are identical.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: decision.json on stdout, text on stderr.",
)
def decide(
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
):
    """Find the fastest ramp whose risks stay inside the budget of QUESTION.

    Exits 0 whether or not a safe candidate exists; 2 for a bad question.
    """
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
            progress=lambda c: click.echo(_candidate_line(c), err=True),
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    text = result.text()
    if outdir:
        write_decision(result, outdir)
        text += f"\n\nWritten to {outdir}/"
    _emit(text, result.to_dict(), fmt)


def _decision_for_report(
    question: str,
    target: Path,
    replications: int,
    seed: int | None,
    workers: int,
    overwrite: bool,
):
    """A decision directory as given, or a question decided beside the report."""
    if is_decision_directory(question):
        return load_decision(question)
    where = target.with_name(target.stem + "_decision")
    result = decide_question(
        load_question(question),
        replications,
        seed,
        workers,
        directory=where,
        fresh=overwrite,
    )
    write_decision(result, where)
    return load_decision(where)


@main.command()
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
    type=click.IntRange(min=2),
    default=64,
    show_default=True,
    help="Sobol: base samples N, a power of 2; N x (fields + 2) points.",
)
@click.option(
    "--figure",
    "figures",
    multiple=True,
    metavar="NAME_STATISTIC",
    help="Figures to measure (default: clearance_day_p50 and the P90 of "
    "every risk figure).",
)
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write sensitivity.csv, sensitivity.json and the chart here.",
)
@click.option("--overwrite", is_flag=True, help="Replace files in an existing OUTDIR.")
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Run on an existing Dask cluster instead of local processes; "
    "results are identical.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: sensitivity.json on stdout.",
)
def sensitivity(
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
):
    """Measure how much each --range field moves the clearance day and each risk."""
    sc = load(scenario, sets)
    target = Path(outdir) if outdir else None
    if target and target.exists() and any(target.iterdir()) and not overwrite:
        raise InputError(f"{outdir}: exists (use --overwrite to replace it)")
    try:
        parsed = [parse_sensitivity_range(sc, text) for text in ranges]
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
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    columns = ["figure", "field", "value_low", "value_high", "swing"]
    if method == "sobol":
        columns += ["s1", "st"]
    table = result.table[columns].to_string(index=False, float_format=_fmt_float)
    text = (
        f"{sc.name}: {method}, {result.points} points x {replications} "
        f"replications (seed {result.seed})\n\n{table}"
    )
    if outdir:
        write_sensitivity(result, outdir, overwrite=True)
        text += f"\n\nWritten to {outdir}/"
    _emit(text, result.to_dict(), fmt)


@main.command()
def scenarios():
    """List the bundled scenarios with their descriptions."""
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
        click.echo(f"{path.relative_to(root.parent)}\n    {about}")


# --------------------------------------------------------------------------- actuals
def actuals_options(func):
    """The options of commands that read actuals."""
    options = [
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
            type=click.FloatRange(min=0, min_open=True),
            default=DEFAULT_PRIOR_STRENGTH,
            show_default=True,
            help="How many attempts the scenario's rates are worth, per cohort.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load_actuals(path: str, scenario: Scenario, unit: str, replication) -> Actuals:
    try:
        return read_actuals(path, scenario, unit, replication)
    except MigsimError as exc:
        raise InputError(str(exc)) from exc


def _refuse_existing(path: str | None, overwrite: bool) -> None:
    if path and Path(path).exists() and not overwrite:
        raise InputError(f"{path}: exists (use --overwrite to replace it)")


_DATE = click.DateTime(formats=["%Y-%m-%d"])


@main.command()
@click.argument("scenario")
@actuals_options
@click.option(
    "--as-of",
    type=_DATE,
    default=None,
    help="Use only the actuals dated on or before this date.",
)
@simulation_options
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The calibrated scenario (YAML); the summary goes beside it as "
    "<name>.calibration.json and the check chart as <name>.check.png.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option(
    "--no-check",
    is_flag=True,
    help="Skip the posterior predictive check (no simulation).",
)
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
):
    """Learn SCENARIO's rates from actuals; write the calibrated scenario."""
    sc = load(scenario, sets)
    target = Path(output)
    stem = target.with_suffix("")
    paths = [target, Path(f"{stem}.calibration.json"), Path(f"{stem}.check.png")]
    for path in paths:
        _refuse_existing(str(path), overwrite)
    actuals = load_actuals(actuals_path, sc, actuals_unit, actuals_replication)
    try:
        result = run_calibrate(
            sc, actuals, prior_strength, as_of=as_of.date() if as_of else None
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    check = None
    if not no_check:
        _, check = posterior_check(result, replications, seed, workers)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = [path.with_name(f".{path.name}.tmp") for path in paths]
    try:
        staged[0].write_text(result.scenario.to_yaml(), encoding="utf-8")
        staged[1].write_text(
            json.dumps(result.summary(), indent=2) + "\n", encoding="utf-8"
        )
        if check is not None:
            save_posterior_check(check, staged[2])
        for tmp, path in zip(staged, paths):
            if tmp.exists():
                tmp.replace(path)
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
    written = [str(p) for p in paths if p.exists()]
    click.echo(result.text() + f"\n\nWritten {', '.join(written)}")


@main.command()
@click.argument("scenario")
@actuals_options
@click.option(
    "--as-of",
    type=_DATE,
    required=True,
    help="The last date of actuals to use: the forecast starts the day after.",
)
@simulation_options
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write the usual run outputs here (backlog.png shows actuals then "
    "the forecast), plus calibration.json and calibrated.yaml.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTDIR.")
@click.option("--no-daily", is_flag=True, help="Do not write daily.parquet.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: the summary as JSON on stdout, table on stderr.",
)
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
):
    """Forecast SCENARIO from actuals up to a date: calibrate, start, run forward."""
    sc = load(scenario, sets)
    _refuse_existing(outdir, overwrite)
    actuals = load_actuals(actuals_path, sc, actuals_unit, actuals_replication)
    try:
        result = forecast_as_of(
            sc, actuals, as_of.date(), replications, seed, workers, prior_strength
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    text = result.summary_text() + "\n\n" + summary_text(result.results)
    if outdir:
        write_forecast(result, outdir, overwrite=overwrite, daily=not no_daily)
        text += f"\n\nWritten to {outdir}/"
    _emit(text, result.results.summary, fmt)


@main.command()
@click.argument("scenario")
@actuals_options
@click.option(
    "--as-of",
    "as_of",
    type=_DATE,
    multiple=True,
    help="A date to forecast from (repeatable; default: the scenario's start).",
)
@simulation_options
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write backtest.json, backtest_points.csv and backtest.png here.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTDIR.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: backtest.json on stdout, table on stderr.",
)
def backtest(
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
    fmt,
):
    """Score SCENARIO's forecasts against what actually happened."""
    sc = load(scenario, sets)
    _refuse_existing(outdir, overwrite)
    actuals = load_actuals(actuals_path, sc, actuals_unit, actuals_replication)
    try:
        dates = [d.date() for d in as_of]
        result = run_backtest(
            sc, actuals, dates, replications, seed, workers, prior_strength
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    text = result.text()
    if outdir:
        write_backtest(result, outdir, overwrite=overwrite)
        text += f"\n\nWritten to {outdir}/"
    _emit(text, result.summary(), fmt)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
