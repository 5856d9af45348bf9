"""migsim: a migration operations simulator for SMETS1 smart-meter migrations.

It answers OPSG's question to DCC, "on what basis will you increase volumes, and
when?", with seeded batch-level simulations of a planner's scenario.

>>> import migsim
>>> scenario = migsim.load_scenario("scenarios/nov2019_epcl.yaml")  # doctest: +SKIP
>>> results = migsim.run(scenario, replications=200, seed=0)       # doctest: +SKIP
>>> results.summary["clearance_date"]["p50"]                       # doctest: +SKIP
"""

__version__ = "0.1.0"

from migsim.errors import MigsimError, ScenarioError  # noqa: E402
from migsim.results import Results  # noqa: E402
from migsim.runner import run  # noqa: E402
from migsim.scenario import Scenario, load_scenario  # noqa: E402

__all__ = [
    "MigsimError",
    "Results",
    "Scenario",
    "ScenarioError",
    "__version__",
    "load_scenario",
    "run",
]
