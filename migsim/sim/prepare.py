"""What every replication of a scenario builds first, built once in this process.

The first replication in a fresh process loads the bank-holiday calendars and
builds the run's calendar and delay tables (their quantiles, `common.cdfs`):
paid again by every worker. Local workers are forked from the main process and
share what it has loaded and cached when they start, so the runner calls
`prepare` first and the cost is paid once. The same holds for the block
engine's compiled kernels (`lane_kernel`: about a second to load in each
process) when the run's blocks are large enough to use them. Nothing here
draws a random number: replications are the same with or without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from migsim.model.distributions import (
    FixedDelay,
    LognormalDelay,
    TriangularDelay,
    UniformDelay,
)
from migsim.model.scenario import Scenario
from migsim.sim.calendar import working_days
from migsim.sim.delays import cached_pmf
from migsim.sim.lane_kernel import planned_work, wanted

__all__ = ["prepare"]

_DELAYS = (FixedDelay, UniformDelay, TriangularDelay, LognormalDelay)


def _delays(value: Any) -> Iterator[Any]:
    """Every delay distribution anywhere in a scenario (sections, cohorts, lists)."""
    if isinstance(value, _DELAYS):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _delays(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _delays(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _delays(item)


def prepare(scenario: Scenario, block: int = 0) -> None:
    """Build the calendar and every delay table of ``scenario`` (cached), and
    load the kernels if blocks of ``block`` replications will use them."""
    working_days(scenario)
    for delay in _delays(scenario):
        cached_pmf(delay)
    if block:
        # loads them when they will be used
        wanted(planned_work(scenario, block))
