"""Command line: parse, call the library, write. Nothing here simulates by itself.

Exit status: 0 when the command did its job (also when its verdict is
negative), 2 for bad input (one line naming the file and field, no traceback),
anything else for an internal error, which keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from migsim import __version__
from migsim.decide import Candidate, load_question
from migsim.decide import decide as decide_question
from migsim.errors import MigsimError
from migsim.results import Results
from migsim.runner import run as run_scenario
from migsim.scenario import Scenario, load_scenario
from migsim.sensitivity import parse_range
from migsim.sensitivity import sensitivity as measure_sensitivity

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
    return Path(__file__).resolve().parent.parent / "scenarios"


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
        click.option("-n", "--replications", type=click.IntRange(min=1), default=200,
                     show_default=True, help="Seeded replications to run."),
        click.option("--seed", type=click.IntRange(min=0), default=None,
                     help="Run seed (default: the scenario's seed)."),
        click.option("-j", "--workers", type=click.IntRange(min=1), default=1,
                     show_default=True, help="Worker processes; results do not depend on it."),
        click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
                     help="Override a scenario field by dotted path (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


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

    rows = [clearance_row("all cohorts", summary["clearance_date"],
                          summary["cleared_share"])]
    rows += [clearance_row(name, cohort["clearance_date"], cohort["cleared_share"])
             for name, cohort in summary["cohorts"].items()]
    lines += _table("Backlog cleared", ["P10", "P50", "P90", "cleared"], rows)
    if summary["cleared_share"] < 1:
        lines.append("  (a date 'after' the horizon end means some replications did not "
                     "clear; their mean clearance day is undefined)")
    rows = []
    for label, name in (
        ("devices left dumb", "dumb"),
        ("  of which active", "active_dumb"),
        ("installations abandoned", "abandoned"),
        ("active interrupted installation-days", "active_interrupted_installation_days"),
        ("peak failure backlog", "peak_failure_backlog"),
    ):
        stats = summary["figures"][name]
        rows.append([label, _fmt_int(stats["p50"]), _fmt_int(stats["p90"]),
                     _fmt_int(stats["mean"])])
    lines += ["", *_table("Risks (totals per replication)", ["P50", "P90", "mean"], rows)]
    lines += _policy_lines(results)
    return "\n".join(lines)


def _policy_lines(results: Results) -> list[str]:
    """Ramp policy: no-go days, rule firings and gate dates, if the scenario has them."""
    sc, policy = results.scenario, results.summary["policy"]
    counts = []
    if sc.go_no_go is not None:
        counts.append(("no-go days", policy["no_go_days"]))
    counts += [(f"rule {name} fired", stats)
               for name, stats in policy["rule_firings"].items()]
    lines: list[str] = []
    if counts:
        rows = [
            [label, _fmt_int(stats["p50"]), _fmt_int(stats["p90"]),
             "-" if stats["mean"] is None else f"{stats['mean']:.1f}"]
            for label, stats in counts
        ]
        lines += ["", *_table("Ramp policy (per replication)", ["P50", "P90", "mean"],
                              rows)]
    if policy["gates"]:
        rows = [
            [name, gate["opening_date"]["p10"], gate["opening_date"]["p50"],
             gate["opening_date"]["p90"], f"{gate['opened_share']:.0%}"]
            for name, gate in policy["gates"].items()
        ]
        lines += ["", *_table("Gate opens", ["P10", "P50", "P90", "opened"], rows)]
    return lines


# --------------------------------------------------------------------------- commands
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migsim")
def main() -> None:
    """migsim: when does the SMETS1 migration backlog clear, and at what risk?"""


@main.command()
@click.argument("scenario")
@simulation_options
@click.option("-o", "--outdir", type=click.Path(file_okay=False), default=None,
              help="Write daily.parquet, replications.csv, summary.json, scenario.yaml "
                   "and backlog.png here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTDIR.")
@click.option("--no-daily", is_flag=True, help="Do not write daily.parquet.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="json: the summary as JSON on stdout, table on stderr.")
def run(scenario, replications, seed, workers, sets, outdir, overwrite, no_daily, fmt):
    """Run seeded replications of SCENARIO and summarise when the backlog clears."""
    sc = load(scenario, sets)
    if outdir and Path(outdir).exists() and not overwrite:
        raise InputError(f"{outdir}: exists (use --overwrite to replace it)")
    results = run_scenario(sc, replications=replications, seed=seed, workers=workers)
    text = summary_text(results)
    if outdir:
        results.write(outdir, overwrite=overwrite, daily=not no_daily)
        text += f"\n\nWritten to {outdir}/"
    if fmt == "json":
        click.echo(text, err=True)
        click.echo(json.dumps(results.summary, indent=2))
    else:
        click.echo(text)


@main.command()
@click.argument("scenario")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="Override a scenario field by dotted path (repeatable).")
def validate(scenario, sets):
    """Check SCENARIO and say what is wrong with it, if anything."""
    sc = load(scenario, sets)
    click.echo(f"{scenario}: valid: {sc.name}, {len(sc.cohorts)} cohorts, "
               f"{sc.installations:,} installations, {sc.horizon_days} days")


def _fmt_float(value: float) -> str:
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _candidate_line(candidate: Candidate) -> str:
    levers = ", ".join(f"{k}={v}" for k, v in candidate.levers.items())
    verdict = "safe" if candidate.safe else "unsafe: " + ", ".join(
        f"{c.label} {c.status}" for c in candidate.broke)
    return (f"  candidate {candidate.index}: {levers}: {verdict} "
            f"({candidate.replications} replications)")


@main.command()
@click.argument("question")
@click.option("-n", "--replications", type=click.IntRange(min=1), default=200,
              show_default=True, help="Replications every candidate gets first.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Run seed (default: the scenario's seed).")
@click.option("-j", "--workers", type=click.IntRange(min=1), default=1,
              show_default=True, help="Worker processes; results do not depend on it.")
@click.option("--max-replications", type=click.IntRange(min=1), default=None,
              help="Double a candidate's replications while its evidence is not "
                   "decisive, up to this many (default: 4 x N).")
@click.option("--trials", type=click.IntRange(min=1), default=40, show_default=True,
              help="Several levers: Optuna trials.")
@click.option("--sampler", type=click.Choice(["tpe", "nsga2"]), default="tpe",
              show_default=True, help="Several levers: Optuna's sampler.")
@click.option("-o", "--outdir", type=click.Path(file_okay=False), default=None,
              help="Write decision.json, candidates.csv and frontier.png here; "
                   "finished batches are kept so a killed run resumes.")
@click.option("--fresh", is_flag=True,
              help="Discard finished batches of another definition in OUTDIR.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="json: decision.json on stdout, text on stderr.")
def decide(question, replications, seed, workers, max_replications, trials, sampler,
           outdir, fresh, fmt):
    """Find the fastest ramp whose risks stay inside the budget of QUESTION.

    Exits 0 whether or not a safe candidate exists; 2 for a bad question.
    """
    try:
        loaded = load_question(question)
        result = decide_question(
            loaded, replications, seed, workers, max_replications=max_replications,
            trials=trials, sampler=sampler, directory=outdir, fresh=fresh,
            progress=lambda c: click.echo(_candidate_line(c), err=True),
        )
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    text = result.text()
    if outdir:
        result.write(outdir)
        text += f"\n\nWritten to {outdir}/"
    if fmt == "json":
        click.echo(text, err=True)
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(text)


@main.command()
@click.argument("scenario")
@click.option("--range", "ranges", multiple=True, metavar="FIELD=LOW:HIGH",
              help="A field and its low and high values (repeatable).")
@click.option("--method", type=click.Choice(["oat", "sobol"]), default="oat",
              show_default=True, help="One at a time (tornado) or Sobol indices.")
@simulation_options
@click.option("--samples", type=click.IntRange(min=2), default=64, show_default=True,
              help="Sobol: base samples N, a power of 2; N x (fields + 2) points.")
@click.option("--figure", "figures", multiple=True, metavar="NAME_STATISTIC",
              help="Figures to measure (default: clearance_day_p50 and the P90 of "
                   "every risk figure).")
@click.option("-o", "--outdir", type=click.Path(file_okay=False), default=None,
              help="Write sensitivity.csv, sensitivity.json and the chart here.")
@click.option("--overwrite", is_flag=True, help="Replace files in an existing OUTDIR.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="json: sensitivity.json on stdout.")
def sensitivity(scenario, ranges, method, replications, seed, workers, sets, samples,
                figures, outdir, overwrite, fmt):
    """Measure how much each --range field moves the clearance day and each risk."""
    sc = load(scenario, sets)
    target = Path(outdir) if outdir else None
    if target and target.exists() and any(target.iterdir()) and not overwrite:
        raise InputError(f"{outdir}: exists (use --overwrite to replace it)")
    try:
        parsed = [parse_range(sc, text) for text in ranges]
        result = measure_sensitivity(sc, parsed, method, replications, seed, workers,
                                     samples=samples, figures=figures or None)
    except MigsimError as exc:
        raise InputError(str(exc)) from exc
    columns = ["figure", "field", "value_low", "value_high", "swing"]
    if method == "sobol":
        columns += ["s1", "st"]
    table = result.table[columns].to_string(index=False, float_format=_fmt_float)
    text = (f"{sc.name}: {method}, {result.points} points x {replications} "
            f"replications (seed {result.seed})\n\n{table}")
    if outdir:
        result.write(outdir, overwrite=True)
        text += f"\n\nWritten to {outdir}/"
    if fmt == "json":
        click.echo(text, err=True)
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(text)


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
