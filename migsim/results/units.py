"""Counts in meters: each replication at its own meters per installation.

migsim simulates installations (premises); public programme counts are meters.
A scenario states ``meters_per_installation`` and, where the ratio is an
estimate, ``meters_per_installation_range``, drawn once per replication (an
input, recorded as ``meters_per_installation`` in ``inputs.csv``). A
replication's meters are its installations times its own ratio, so a band in
meters carries the ratio's uncertainty as well as the programme's; multiplying
installation bands by one fixed ratio would not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RATIO_INPUT", "drawn_ratios", "meters_ratios"]

#: The input key of a drawn ratio (`migsim.sim.inputs.record_inputs`).
RATIO_INPUT = "meters_per_installation"


def meters_ratios(run: Any) -> np.ndarray | None:
    """Each replication's meters per installation, in replication order.

    ``run`` is a `Results` or a saved run (anything with ``scenario``,
    ``n_replications`` and ``inputs``). The drawn ratios when the scenario
    states a range, else its fixed ratio for every replication; ``None`` when
    the scenario has no ``meters_per_installation``.
    """
    point = run.scenario.meters_per_installation
    if point is None:
        return None
    inputs = run.inputs
    if RATIO_INPUT in inputs.columns:
        ordered = inputs.sort_values("replication")
        return ordered[RATIO_INPUT].to_numpy(dtype=float)
    return np.full(run.n_replications, float(point))


def drawn_ratios(run: Any) -> np.ndarray | None:
    """`meters_ratios` where the replications' ratios differ (a
    ``meters_per_installation_range``); None for one ratio or none."""
    ratios = meters_ratios(run)
    if ratios is None or not len(ratios) or np.ptp(ratios) == 0:
        return None
    return ratios
