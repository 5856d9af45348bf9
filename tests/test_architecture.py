"""Architecture: modules import one way along FLOW; nothing imports the CLI.

A module may import (absolutely) only from modules to its left. A new module must
be placed in FLOW (say where it sits); modules not written yet are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import migsim

PKG = Path(migsim.__file__).resolve().parent
FLOW = [
    "errors",
    "scenario",
    "policy",
    "operations",
    "engine",
    "actuals",
    "plots",
    "results",
    "runner",
    "sweep",  # grid and Latin hypercube sweeps into a resumable store
    "forecast",  # intervals and P(clear by date) from a finished run
    "precision",  # batches of replications until the forecast is precise enough
    "compare",  # common-random-number comparisons of scenarios
    "rundir",  # a finished run read back from its directory
    "calibrate",  # rates learned from actuals, posterior predictive check
    "backtest",  # forecasts as of a date from actuals, and their scores
    "study",  # many variants of a scenario, kept as per-replication figures
    "decide",  # questions, confidence bounds, the search, the decision
    "sensitivity",  # one-at-a-time swings and Sobol indices
    "report",
    "cli",
]
EXISTING = [name for name in FLOW if (PKG / f"{name}.py").exists()]


def _modules() -> list[str]:
    """Top-level modules and subpackages of migsim (not __init__ / __main__)."""
    names = {p.stem for p in PKG.glob("*.py") if not p.stem.startswith("__")}
    names |= {
        p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    return sorted(names)


def _source_files(name: str) -> list[Path]:
    path = PKG / f"{name}.py"
    return [path] if path.exists() else sorted((PKG / name).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every migsim module a file imports, as (module, level); level > 0 is relative."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                found.append((module, node.level))
            elif module == "migsim":
                found += [(f"migsim.{alias.name}", 0) for alias in node.names]
            else:
                found.append((module, 0))
    return found


def _migsim_modules(path: Path) -> set[str]:
    out = set()
    for module, _level in _imports(path):
        if module.startswith("migsim."):
            out.add(module.split(".")[1])
    return out


def test_the_existing_modules_are_found():
    assert {"errors", "scenario", "engine", "results", "runner", "cli"} <= set(EXISTING)


def test_every_module_has_a_place_in_the_flow():
    unplaced = [name for name in _modules() if name not in FLOW]
    assert not unplaced, f"add {unplaced} to FLOW in tests/test_architecture.py"


@pytest.mark.parametrize("name", EXISTING)
def test_imports_flow_one_way(name):
    later = set(FLOW[FLOW.index(name) + 1 :]) | {name}
    for path in _source_files(name):
        wrong = _migsim_modules(path) & later
        assert not wrong, f"{name} imports {sorted(wrong)} (to its right in FLOW)"


@pytest.mark.parametrize("name", _modules())
def test_imports_are_absolute(name):
    for path in _source_files(name):
        relative = [m for m, level in _imports(path) if level]
        assert not relative, f"{path.name}: relative imports {relative}"


def test_nothing_imports_the_cli():
    for path in PKG.rglob("*.py"):
        if path.stem in ("cli", "__main__"):
            continue
        assert "cli" not in _migsim_modules(path), path.name


def test_errors_imports_nothing():
    assert _imports(PKG / "errors.py") == []


def test_only_the_cli_uses_click():
    for path in PKG.rglob("*.py"):
        if path.stem in ("cli", "__main__") or "cli" in path.parts[len(PKG.parts) : -1]:
            continue
        assert "click" not in {m.split(".")[0] for m, _ in _imports(path)}, path.name


def test_the_engine_is_free_of_tables_plots_and_files():
    roots = {m.split(".")[0] for m, _ in _imports(PKG / "engine.py")}
    assert not roots & {"pandas", "matplotlib", "click", "yaml", "os", "pathlib"}


def test_the_package_reexports_by_name():
    source = (PKG / "__init__.py").read_text(encoding="utf-8")
    assert "import *" not in source
    for name in migsim.__all__:
        assert hasattr(migsim, name), name
