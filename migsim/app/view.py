"""What a finished explorer run shows and gives: the page's figures, the fan
chart, and the downloads (bands as CSV and XLSX, the built scenario, the report).

Everything comes from two runs with one seed, the scenario as loaded first and
the built one second, compared replication by replication by
`migsim.experiments.compare.compare_runs` (common random numbers). The chart is
the report's fan chart (`migsim.output.plots.backlog_fan_chart`) of the built
scenario with the loaded scenario's median drawn over it; the report is
`migsim.output.report.render_report` of the two runs.
"""

from __future__ import annotations

import io
import math
import threading
from typing import Any

import numpy as np
import pandas as pd

from migsim import __version__
from migsim.common.source import source_sha256
from migsim.common.stats import percent
from migsim.experiments.compare import pairing_words, weak_pairing_note
from migsim.output.report import RISK_FIGURES, render_report
from migsim.output.spreadsheets import provenance_table
from migsim.results import Results
from migsim.sim.operations import OPERATIONS_FIGURES, figures_in_use

__all__ = [
    "bands_csv",
    "bands_frame",
    "bands_xlsx",
    "chart_png",
    "report_html",
    "result_payload",
    "scenario_yaml",
]

#: Statistics the page shows for a figure, in order.
_SHOWN = ("p50", "p90", "mean")
#: One drawing at a time: two tabs may finish together, and matplotlib's
#: shared state (fonts, caches) is not promised to be safe across threads.
_DRAWING = threading.Lock()


def _risk_names(run: Results) -> list[str]:
    """Risk figures of the report that this scenario has (operations: when used)."""
    used = figures_in_use(run.scenario)
    return [
        name
        for name in RISK_FIGURES
        if name in run.summary["figures"]
        and (name not in OPERATIONS_FIGURES or name in used)
    ]


def _clearance(run: Results) -> dict[str, Any]:
    summary = run.summary
    ci = summary.get("ci95", {}).get("clearance_date", {})
    return {
        "scenario": run.scenario.name,
        "p50": summary["clearance_date"]["p50"],
        "p90": summary["clearance_date"]["p90"],
        "p50_ci95": ci.get("p50"),
        "p90_ci95": ci.get("p90"),
        "cleared_share": summary["cleared_share"],
        "cleared_share_text": percent(summary["cleared_share"]),
    }


def _risks(loaded: Results, built: Results) -> list[dict[str, Any]]:
    rows = []
    for name in _risk_names(built):
        stats = built.summary["figures"][name]
        before = loaded.summary["figures"].get(name, {})
        interval = built.summary.get("ci95", {}).get("figures", {}).get(name, {})
        rows.append(
            {
                "figure": name,
                "risk": RISK_FIGURES[name],
                **{k: stats[k] for k in _SHOWN},
                "mean_ci95": interval.get("mean"),
                "loaded_p50": before.get("p50"),
            }
        )
    return rows


def _comparison(built: Results, comparison: dict[str, Any]) -> dict[str, Any]:
    entry = comparison["scenarios"][built.scenario.name]
    rows = []
    for name in ["clearance_day", *_risk_names(built)]:
        label = "clearance (days)" if name == "clearance_day" else RISK_FIGURES[name]
        figure = entry["figures"][name]
        rows.append(
            {
                "figure": name,
                "label": label,
                **{
                    k: {"diff": figure[k]["diff"], "ci95": figure[k]["ci95"]}
                    for k in _SHOWN
                },
            }
        )
    return {
        "first": comparison["first"],
        "pairs": comparison["replications"],
        "seed": comparison["seed"],
        "common_random_numbers": comparison["common_random_numbers"],
        "rows": rows,
        "order": {
            k: percent(entry[k])
            for k in (
                "p_clears_before_first",
                "p_clears_same_day",
                "p_clears_after_first",
                "p_neither_clears",
            )
        },
        # what the pairing bought on the clearance day (the CLI's line), and
        # the note beside the order when the pairs are too weak to read it
        "pairing": pairing_words(entry["pairing"]["clearance_day"]),
        "order_note": weak_pairing_note(entry["pairing"]["clearance_day"]),
    }


def result_payload(
    loaded: Results, built: Results, comparison: dict[str, Any]
) -> dict[str, Any]:
    """The figures the page shows, as JSON-able data."""
    return {
        "scenario": built.scenario.name,
        "loaded": loaded.scenario.name,
        "replications": built.n_replications,
        "seed": built.seed,
        "clearance": {"built": _clearance(built), "loaded": _clearance(loaded)},
        "risks": _risks(loaded, built),
        "comparison": _comparison(built, comparison),
    }


# --------------------------------------------------------------------------- chart
def _active_until(*uppers: np.ndarray) -> int:
    """Index where the chart can end: a margin after either P90 backlog last
    changes (a year-long horizon cleared in three months is mostly zeros)."""
    last = 0
    for upper in uppers:
        changes = (upper[1:] != upper[:-1]).nonzero()[0]
        if len(changes):
            last = max(last, int(changes[-1]) + 1)
    size = min(len(u) for u in uppers)
    if not last:
        return size - 1
    return min(size - 1, last + max(7, int(0.15 * last)))


def chart_png(loaded: Results, built: Results) -> bytes:
    """The built scenario's backlog fan chart, the loaded scenario's median over it."""
    from migsim.output import plots

    ours, theirs = built.backlog_bands(), loaded.backlog_bands()
    end = _active_until(ours["p90"].to_numpy(), theirs["p90"].to_numpy())
    with _DRAWING:
        return _draw(
            plots, ours, theirs, end, loaded.scenario.name, built.scenario.name
        )


def figure(plots, ours, theirs, end: int, loaded_name: str, built_name: str):
    """The chart's figure: the report's fan chart and the loaded median, with
    the report's legend (on a white ground: it may lie over the band)."""
    fig = plots.backlog_fan_chart(ours, built_name, until=ours["date"][end])
    ax = fig.axes[0]
    ax.plot(
        theirs["date"],
        theirs["p50"],
        color="0.45",
        linestyle="--",
        linewidth=1.4,
        label=f"as loaded ({loaded_name}): median",
    )
    ax.legend(loc="upper right", framealpha=0.9, edgecolor="none")
    return fig


def _draw(plots, ours, theirs, end: int, loaded_name: str, built_name: str) -> bytes:
    fig = figure(plots, ours, theirs, end, loaded_name, built_name)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)  # an Agg figure: nothing to close
    return buffer.getvalue()


# --------------------------------------------------------------------------- files
def bands_frame(loaded: Results, built: Results) -> pd.DataFrame:
    """Installations not yet resolved per date: P10/P50/P90 of both runs."""
    ours, theirs = built.backlog_bands(), loaded.backlog_bands()
    frame = pd.DataFrame({"date": ours["date"].dt.date})
    for column in ("p10", "p50", "p90"):
        frame[column] = ours[column].to_numpy()
    for column in ("p10", "p50", "p90"):
        frame[f"as_loaded_{column}"] = theirs[column].to_numpy()
    return frame


def bands_csv(loaded: Results, built: Results) -> bytes:
    return bands_frame(loaded, built).to_csv(index=False).encode("utf-8")


def _none_if_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _interval(name: str, interval: list | None) -> dict[str, Any]:
    """``{name low: ..., name high: ...}``; None for an end there is not."""
    low, high = interval if interval else (None, None)
    return {f"{name} low": _none_if_nan(low), f"{name} high": _none_if_nan(high)}


def _provenance(loaded: Results, built: Results) -> pd.DataFrame:
    """What made the numbers, both runs side by side: the rows of
    `provenance_table` (results.xlsx's run sheet), one column per run."""
    built_rows, loaded_rows = (
        provenance_table(
            {
                "migsim_version": __version__,
                "migsim_source_sha256": source_sha256(),
                "seed": run.seed,
                "replications": run.n_replications,
                "command": "migsim serve (explorer)",
            },
            [("scenario", run.scenario.name), ("scenario_sha256", run.scenario.sha256)],
        )
        for run in (built, loaded)
    )
    return pd.DataFrame(
        {
            "field": built_rows["field"],
            "built": built_rows["value"],
            "as loaded": loaded_rows["value"],
        }
    )


def bands_xlsx(
    loaded: Results, built: Results, payload: dict[str, Any], changes: list[str]
) -> bytes:
    """A workbook: the bands, the clearance dates, the risks, the comparison,
    what was changed and what was run (version, seed, replications, scenario
    sha256s), one sheet each (openpyxl), each figure with its 95% interval
    where the page shows one (an end too few replications can bound is an
    empty cell)."""
    clearance = pd.DataFrame(
        [
            {
                **{k: c[k] for k in ("scenario", "p50", "p90", "cleared_share")},
                **_interval("p50 95% CI", c["p50_ci95"]),
                **_interval("p90 95% CI", c["p90_ci95"]),
            }
            for c in (payload["clearance"]["built"], payload["clearance"]["loaded"])
        ]
    )
    risks = pd.DataFrame(
        [
            {
                "risk": r["risk"],
                "P50": r["p50"],
                "P90": r["p90"],
                "mean": r["mean"],
                **_interval("mean 95% CI", r["mean_ci95"]),
                "P50 as loaded": r["loaded_p50"],
            }
            for r in payload["risks"]
        ]
    )
    comparison = pd.DataFrame(
        [
            {
                "figure": r["label"],
                **{
                    column: value
                    for k in ("p50", "p90", "mean")
                    for column, value in {
                        f"{k} difference": _none_if_nan(r[k]["diff"]),
                        **_interval(f"{k} difference 95% CI", r[k]["ci95"]),
                    }.items()
                },
            }
            for r in payload["comparison"]["rows"]
        ]
    )
    sheets = {
        "bands": bands_frame(loaded, built),
        "clearance": clearance,
        "risks": risks,
        "comparison": comparison,
        "changes": pd.DataFrame({"changed": changes or ["nothing: as loaded"]}),
        "run": _provenance(loaded, built),
    }
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return buffer.getvalue()


def scenario_yaml(built: Results, loaded_from: str, changes: list[str]) -> str:
    """The built scenario as YAML that `migsim run` reads back, with a header
    saying where it came from and what changed (each on one comment line: an
    uploaded file's name may hold a line break)."""

    def one_line(text: str) -> str:
        return " ".join(text.split())

    lines = [
        f"# Built in the migsim explorer from {one_line(loaded_from)}.",
        "# Changed:" if changes else "# Nothing changed: the scenario as loaded.",
        *(f"#   {one_line(change)}" for change in changes),
    ]
    return "\n".join(lines) + "\n" + built.scenario.to_yaml()


def report_html(loaded: Results, built: Results) -> str:
    """The OPSG report of both runs, the loaded one first (the comparison's base)."""
    with _DRAWING:
        return render_report([loaded, built], command="migsim serve (explorer)")
