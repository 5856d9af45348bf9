"""Architecture: layers import one way along LAYERS; nothing heavy on import.

A module may import (absolutely) only from its own layer or the layers above it
in LAYERS. A new layer must be placed in LAYERS (say where it sits).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import migsim

PKG = Path(migsim.__file__).resolve().parent
LAYERS = [
    "common",  # errors, statistics, YAML reading, atomic output folders, stores
    "model",  # the scenario schema and its one loader
    "sim",  # one replication: engine, policy and operations at run time
    "results",  # the results container and saved run directories
    "runner",  # replications on local processes or Dask; precision targets
    "evidence",  # actuals, calibration, state from actuals, forecasts, backtests
    "experiments",  # study, sweep, compare, sensitivity, decide
    "output",  # charts and the OPSG report
    "app",  # the planner's explorer: a local web page (migsim serve)
    "cli",  # the migsim command
]
MAX_LINES = 800


def _layers() -> list[str]:
    return sorted(
        p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )


@cache
def _tree(path: Path) -> ast.Module:
    """A file's syntax tree, parsed once per test process (several tests read
    every module's imports: parsing the package took about a second each)."""
    return ast.parse(path.read_text(encoding="utf-8"))


@cache
def _imports(path: Path) -> tuple[tuple[str, int], ...]:
    """Every module a file imports, as (module, level); level > 0 is relative."""
    found = []
    for node in ast.walk(_tree(path)):
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
    return tuple(found)


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (not inside functions): paid on import."""
    names = set()
    for node in _tree(path).body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module or "")
    return names


def _migsim_layers(path: Path) -> set[str]:
    return {
        module.split(".")[1]
        for module, _level in _imports(path)
        if module.startswith("migsim.") and module.split(".")[1] in LAYERS
    }


def test_migsim_is_only_layers():
    loose = sorted(
        p.name for p in PKG.glob("*.py") if p.name not in ("__init__.py", "__main__.py")
    )
    assert not loose, f"put {loose} into a layer"
    assert _layers() == sorted(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_flow_one_way(layer):
    below = set(LAYERS[LAYERS.index(layer) + 1 :])
    for path in sorted((PKG / layer).rglob("*.py")):
        wrong = _migsim_layers(path) & below
        assert not wrong, f"{path.relative_to(PKG)} imports {sorted(wrong)} (below it)"


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_are_absolute(layer):
    for path in (PKG / layer).rglob("*.py"):
        relative = [m for m, level in _imports(path) if level]
        assert not relative, f"{path.name}: relative imports {relative}"


def test_no_module_is_over_the_size_limit():
    long = {
        str(p.relative_to(PKG)): n
        for p in PKG.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_tool_is_over_the_size_limit():
    """The scripts under ``tools/`` (the fuzz campaign) keep to the same limit."""
    tools = PKG.parent / "tools"
    if not tools.is_dir():
        pytest.skip("no tools/ beside the package (an installed copy)")
    long = {
        p.name: n
        for p in tools.glob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"tools over {MAX_LINES} lines: {long}"


def test_common_imports_no_layer():
    for path in (PKG / "common").rglob("*.py"):
        assert _migsim_layers(path) <= {"common"}, path.name


def test_only_the_cli_uses_click():
    for path in PKG.rglob("*.py"):
        if "cli" in path.relative_to(PKG).parts:
            continue
        assert "click" not in {m.split(".")[0] for m, _ in _imports(path)}, path.name


def test_the_simulation_is_free_of_tables_plots_and_files():
    for path in (PKG / "sim").rglob("*.py"):
        roots = {m.split(".")[0] for m, _ in _imports(path)}
        assert not roots & {"pandas", "matplotlib", "click", "yaml", "os", "pathlib"}


def test_only_the_output_layer_draws():
    for path in PKG.rglob("*.py"):
        if "output" in path.relative_to(PKG).parts:
            continue
        roots = {m.split(".")[0] for m, _ in _imports(path)}
        assert "matplotlib" not in roots, path.relative_to(PKG)


def test_matplotlib_loads_only_when_drawing():
    for path in (PKG / "output").rglob("*.py"):
        top = {m.split(".")[0] for m in _top_level_imports(path)}
        assert "matplotlib" not in top, path.relative_to(PKG)


def test_the_package_reexports_by_name():
    source = (PKG / "__init__.py").read_text(encoding="utf-8")
    assert "import *" not in source
    for name in migsim.__all__:
        assert hasattr(migsim, name), name


def _fresh(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_import_migsim_leaves_the_matplotlib_backend_alone():
    code = (
        "import matplotlib; matplotlib.use('svg'); import sys, migsim;"
        "migsim.Scenario; print(matplotlib.get_backend())"
    )
    assert _fresh(code) == "svg"


@pytest.mark.slow
def test_import_migsim_loads_nothing_heavy():
    code = (
        "import sys, migsim, migsim.cli.main;"
        "heavy = ('matplotlib', 'pandas', 'scipy', 'distributed', 'numba');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    assert _fresh(code) == "[]"


def test_drawing_a_decision_loads_no_scipy():
    """A painter forked before the search loaded scipy draws frontier.png: had
    the chart's modules imported the evidence layer's scipy for a type, it
    would pay a second for it after the search."""
    code = (
        "import sys, migsim.output.experiment_files, migsim.output.decision_plots;"
        "import migsim.output.report_basis;"  # frontier_figure's words for the lever
        "print('scipy' in sys.modules)"
    )
    assert _fresh(code) == "False"


def test_a_runs_summary_loads_no_scipy_stats():
    """The variance split ranks the input draws (`variance.mean_ranks`): with
    ``scipy.stats.rankdata`` every run's parent imported scipy.stats (about
    half a second) after its last replication, for that one call."""
    scenario = PKG.parent / "scenarios" / "nov2019_epcl.yaml"
    code = (
        "import sys, migsim;"
        f"r = migsim.run({str(scenario)!r}, replications=12, seed=1);"
        "split = r.summary['variance_split'];"
        "print(bool(split['clearance_day']), 'scipy.stats' in sys.modules)"
    )
    assert _fresh(code) == "True False"
