"""Rewrite the golden files that tests other than test_golden.py pin.

For a deliberate change of the engine's numbers only (say why in the commit).
Each file is computed exactly as the test that reads it computes it:

- ``foundation_baseline_daily.sha256``:
  tests/test_operations.py::test_scenario_without_sections_is_unchanged;
- ``foundation_hashes.json``:
  tests/test_ramp_scenarios.py::test_baseline_with_bank_holidays_...

``foundation_golden_*.csv`` are rewritten by
``MIGSIM_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py``.

    python tests/golden/regenerate_engine_files.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

import migsim
from migsim.sim.records import FLOWS, STATES

GOLDEN = Path(__file__).resolve().parent
COLUMNS = ["replication", "date", "cohort", *STATES, *FLOWS]


def operations_files() -> None:
    results = migsim.run(GOLDEN / "foundation_baseline.yaml", replications=2, seed=11)
    digest = hashlib.sha256(results.daily[COLUMNS].to_csv(index=False).encode())
    (GOLDEN / "foundation_baseline_daily.sha256").write_text(digest.hexdigest() + "\n")


def ramp_files() -> None:
    hashes = json.loads((GOLDEN / "foundation_hashes.json").read_text())
    for name, entry in hashes.items():
        results = migsim.run(  # the bundled file's fixed-input version, as the test
            GOLDEN / f"{name}_fixed_inputs.yaml",
            replications=entry["replications"],
            seed=entry["seed"],
        )
        digest = hashlib.sha256()
        for log in results.logs:
            for column in (*STATES, *FLOWS):
                digest.update(
                    np.ascontiguousarray(
                        log.cohort_columns[column], dtype=np.int64
                    ).tobytes()
                )
        entry["sha256"] = digest.hexdigest()
        entry["clearance_days"] = [log.clearance_day for log in results.logs]
    (GOLDEN / "foundation_hashes.json").write_text(json.dumps(hashes, indent=2) + "\n")


if __name__ == "__main__":
    operations_files()
    ramp_files()
