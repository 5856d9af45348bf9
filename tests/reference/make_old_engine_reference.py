"""Write the old engine's per-replication figures, for the distribution check.

Run ONCE, with the engine as it was before the per-unit random streams (commit
fbc4ee5 on main): it records, for each scenario, every replication's clearance
day and risk totals under a seed no test uses. `tests/test_streams.py` then
checks that the engine with per-unit streams draws from the same distributions
(two-sample KS and chi-square tests). Rerunning it on the new engine would
compare the new engine with itself: do not. The scenarios it ran are kept
beside it, resolved (``nov2019_epcl.yaml``, ``nov2019_cautious_ramp.yaml``), and
the check runs those copies.

    python tests/reference/make_old_engine_reference.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import migsim

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
#: Scenario files and replications; the seed is not one the tests use elsewhere.
SCENARIOS = ("nov2019_epcl.yaml", "nov2019_cautious_ramp.yaml")
REPLICATIONS = 400
SEED = 20240611
#: Figures kept: the clearance day and the risk totals a planner compares.
COLUMNS = [
    "clearance_day",
    "migrated",
    "dumb",
    "abandoned",
    "attempts",
    "active_interrupted_installation_days",
    "peak_failure_backlog",
    "active_hit_by_defects",
    "no_go_days",
]


def main() -> None:
    frames = []
    for name in SCENARIOS:
        scenario = migsim.load_scenario(ROOT / "scenarios" / name)
        results = migsim.run(scenario, replications=REPLICATIONS, seed=SEED, workers=2)
        table = results.replications[["replication", *COLUMNS]].copy()
        table.insert(0, "scenario", scenario.name)
        frames.append(table)
        print(name, "done", file=sys.stderr)
    import pandas as pd

    pd.concat(frames).to_csv(HERE / "old_engine_replications.csv", index=False)


if __name__ == "__main__":
    main()
