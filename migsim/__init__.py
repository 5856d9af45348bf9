"""migsim: a migration operations simulator for SMETS1 smart-meter migrations.

It answers OPSG's question to DCC, "on what basis will you increase volumes, and
when?", with seeded batch-level simulations of a planner's scenario.

>>> import migsim
>>> scenario = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
>>> [(c.name, c.installations) for c in scenario.cohorts]
[('itron_active', 24000), ('elster_dormant', 50000)]
>>> results = migsim.run(scenario, replications=200, seed=0)  # doctest: +SKIP
>>> results.summary["clearance_date"]["p50"]  # doctest: +SKIP
'2020-03-05'

The names below load on first use, so ``import migsim`` stays light: it loads
neither pandas nor matplotlib until a run or a chart needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "MigsimError": "migsim.common.errors",
    "ScenarioError": "migsim.common.errors",
    "Results": "migsim.results",
    "run": "migsim.runner",
    "Scenario": "migsim.model",
    "load_scenario": "migsim.model",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from migsim.common.errors import MigsimError, ScenarioError
    from migsim.model import Scenario, load_scenario
    from migsim.results import Results
    from migsim.runner import run


def __getattr__(name: str) -> Any:
    """Load a public name from its module the first time it is asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'migsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "MigsimError",
    "Results",
    "Scenario",
    "ScenarioError",
    "__version__",
    "load_scenario",
    "run",
]
