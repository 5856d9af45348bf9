"""Runner: many seeded replications of one scenario, on one or more processes.

Replication k always draws from streams derived from ``(seed, k)``, so its
numbers do not depend on the worker count, on how replications are batched, or
on which other replications run. Workers receive contiguous batches of
replication indices and results are put back in replication order.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from migsim.engine import RunLog, run_replication
from migsim.results import Results
from migsim.scenario import Scenario, load_scenario

__all__ = ["run", "run_batch"]


def run_batch(scenario: Scenario, seed: int, replications: list[int]) -> list[RunLog]:
    """Simulate the given replication indices in this process."""
    return [run_replication(scenario, seed, k) for k in replications]


def _batches(replications: range, workers: int) -> list[list[int]]:
    """Contiguous batches, a few per worker so a slow batch does not idle the rest."""
    size = max(1, math.ceil(len(replications) / (workers * 4)))
    ids = list(replications)
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def run(
    scenario: Scenario | str | Path | dict[str, Any],
    replications: int = 100,
    seed: int | None = None,
    workers: int = 1,
    *,
    first_replication: int = 0,
) -> Results:
    """Run ``replications`` seeded replications of a scenario.

    Parameters
    ----------
    scenario
        A `Scenario`, or anything `load_scenario` accepts.
    replications
        How many replications.
    seed
        Run seed; ``None`` takes the scenario's own ``seed``.
    workers
        Processes to use; results are identical for any value.
    first_replication
        Index of the first replication, so a later batch continues the numbering
        and a run of 100 then 100 more equals one run of 200.

    Returns
    -------
    Results
    """
    scenario = load_scenario(scenario)
    if replications < 1:
        raise ValueError("replications must be at least 1")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    seed = scenario.seed if seed is None else int(seed)
    ids = range(first_replication, first_replication + replications)
    started = time.perf_counter()
    workers = min(workers, replications)
    if workers == 1:
        logs = run_batch(scenario, seed, list(ids))
    else:
        logs = []
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(run_batch, scenario, seed, batch)
                for batch in _batches(ids, workers)
            ]
            for future in futures:
                logs.extend(future.result())
    elapsed = time.perf_counter() - started
    timing = {
        "simulate_seconds": round(elapsed, 4),
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "seconds_per_replication": round(elapsed / replications, 6),
    }
    return Results(scenario, seed, logs, timing)
