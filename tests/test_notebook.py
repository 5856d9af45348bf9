"""The OPSG notebook runs clean from top to bottom (with a few replications)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = (
    Path(__file__).resolve().parent.parent
    / "notebooks"
    / "opsg_backlog_projection.ipynb"
)


@pytest.mark.slow
def test_notebook_runs_clean(monkeypatch):
    monkeypatch.setenv("MIGSIM_NOTEBOOK_REPLICATIONS", "4")
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
    text = "".join(o.get("text", "") for o in outputs)
    assert "4 replications" in text and "ramp clears first" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the fan chart
