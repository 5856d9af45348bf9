"""Run charts: the pictures ``migsim run -o`` writes beside a run's tables.

`Results.write` draws nothing by itself (results sit below the output layer);
the CLI passes `write_run_charts` as its ``charts`` so a run folder gets its
``backlog.png``. matplotlib loads only when a chart is drawn, and never through
pyplot (a caller's backend is left alone).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.results.results import Results

__all__ = ["write_run_charts"]


def write_run_charts(results: Results, folder: Path) -> None:
    """Draw ``backlog.png`` (the backlog fan chart) into ``folder``.

    Drawn whenever the run kept daily rows, also when ``daily.parquet`` itself is
    not written (``--no-daily``); a run without daily rows has no backlog to draw.
    """
    if not results.has_daily:
        return
    from migsim.output.plots import backlog_fan_chart

    # an Agg figure outside pyplot: nothing to close after saving
    figure = backlog_fan_chart(results.backlog_bands(), results.scenario.name)
    figure.savefig(Path(folder) / "backlog.png", dpi=110)
