"""The OPSG notebook: saved with its outputs, its words match its code, and it
runs clean from top to bottom (with a few replications)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = (
    Path(__file__).resolve().parent.parent
    / "notebooks"
    / "opsg_backlog_projection.ipynb"
)


def _cells(notebook, kind: str) -> list[str]:
    return [c.source for c in notebook.cells if c.cell_type == kind]


def _text(notebook) -> str:
    outputs = [
        o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
    ]
    return "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs
    )


def test_notebook_is_saved_with_its_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
    assert all(c.outputs for c in code)  # every cell shows what it did
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    charts = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(charts) >= 2  # the fan chart, and both scenarios on one chart
    text = _text(notebook)
    assert "200 replications" in text  # saved from a full run, not the test's
    assert "The ramp clears first in" in text


def test_notebook_words_match_its_code():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    words = " ".join("\n".join(_cells(notebook, "markdown")).split())
    code = "\n".join(_cells(notebook, "code"))
    # the ramp the words describe is the ramp the code builds
    assert "2,000 a day now" in words and "5,000 a day once MCC" in words
    assert "10,000 a day once the success rate holds" in words
    assert '"cap": 5000' in code and '"cap": 10000' in code
    assert '"gate": "mcc_automation"' in code and '"value": 0.97' in code
    assert "at least 97%" in words and "10 working days" in words
    assert '"min_days_at_cap": 10' in code
    # a flat cap from day 0 is not a ramp; the report it ends with has both
    assert not re.search(r'"capacity\.daily_cap":\s*5000', code)
    assert "render_report(runs)" in code and "Two-scenario report" in code


def test_notebook_runs_clean(monkeypatch, tmp_path):
    monkeypatch.setenv("MIGSIM_NOTEBOOK_REPLICATIONS", "4")
    # the notebook writes its report to the system's temp folder: the test's own
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    outputs = [
        o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
    ]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"]
    text = _text(notebook)
    assert "4 replications" in text and "The ramp clears first in" in text
    assert "Two-scenario report" in text
    report = (tmp_path / "opsg_ramp_report.html").read_text(encoding="utf-8")
    assert report.startswith("<!DOCTYPE html>")
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
