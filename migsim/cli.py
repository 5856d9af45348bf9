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
from migsim.errors import MigsimError
from migsim.operations import OPERATIONS_FLOWS, OPERATIONS_LEVELS
from migsim.results import Results
from migsim.runner import run as run_scenario
from migsim.scenario import Scenario, load_scenario

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


#: Summary rows of the operations figures: (row it follows, label, figure, column
#: that shows its section is used; None: any operations section).
_OPERATIONS_ROWS = (
    ("active_dumb", "    of which prepayment (grave)", "active_prepayment_dumb",
     "prepayment_dumb"),
    ("abandoned", "  of which excluded (never remote)", "excluded", "excluded"),
    ("active_interrupted_installation_days", "active dumb installation-days",
     "active_dumb_installation_days", None),
    ("active_dumb_installation_days", "largest daily active interrupted",
     "max_daily_active_interrupted", None),
    ("peak_failure_backlog", "active hit by latent defects", "active_hit_by_defects",
     "defect_hits"),
    ("active_hit_by_defects", "dormant hit by latent defects", "dormant_hit_by_defects",
     "defect_hits"),
    ("peak_failure_backlog", "peak ELS case backlog", "peak_els_backlog",
     "els_cases_open"),
    ("peak_els_backlog", "CoS loss alerts not sent", "cos_alerts_lost",
     "cos_alerts_lost"),
    ("peak_els_backlog", "PPMID join failures", "ppmid_join_failures",
     "ppmid_join_failures"),
)


def _operations_columns(results: Results) -> set[str]:
    """Operations columns the run produced (empty without operations sections)."""
    if not results.logs:
        return set()
    log = results.logs[0]
    return set(OPERATIONS_LEVELS + OPERATIONS_FLOWS) & set(log.cohort_columns)


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
    rows_spec = [
        ("devices left dumb", "dumb"),
        ("  of which active", "active_dumb"),
        ("installations abandoned", "abandoned"),
        ("active interrupted installation-days", "active_interrupted_installation_days"),
        ("peak failure backlog", "peak_failure_backlog"),
    ]
    used = _operations_columns(results)
    for after, label, name, column in _OPERATIONS_ROWS:
        if column in used or (column is None and used):
            at = next(i for i, row in enumerate(rows_spec) if row[1] == after) + 1
            while at < len(rows_spec) and rows_spec[at][0].startswith("  "):
                at += 1  # keep "of which" rows under their total
            rows_spec.insert(at, (label, name))
    rows = []
    for label, name in rows_spec:
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
