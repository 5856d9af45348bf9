"""What a process builds once for every replication: the calendar and delay tables.

`prepare` runs before local workers are forked, so they share it; it must build
what replications use and draw nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from migsim.model.scenario import load_scenario
from migsim.sim.calendar import working_days
from migsim.sim.delays import cached_pmf
from migsim.sim.engine import run_replication
from migsim.sim.prepare import _delays, prepare


@pytest.fixture
def epcl():
    return load_scenario("scenarios/nov2019_epcl.yaml")


def test_every_delay_table_and_the_calendar_are_built(epcl):
    cached_pmf.cache_clear()
    prepare(epcl)
    delays = set(_delays(epcl))
    assert epcl.go_no_go.incident_duration_days in delays
    assert cached_pmf.cache_info().currsize == len(delays)
    hits = cached_pmf.cache_info().hits
    for delay in delays:
        cached_pmf(delay)
    assert cached_pmf.cache_info().hits == hits + len(delays)
    working = working_days(epcl)
    assert working is working_days(epcl.with_overrides({"seed": 99}))  # one array
    assert not working.flags.writeable


def test_preparing_changes_no_replication(epcl):
    before = run_replication(epcl, 3, 0)
    prepare(epcl)
    after = run_replication(epcl, 3, 0)
    for name, values in before.cohort_columns.items():
        assert np.array_equal(values, after.cohort_columns[name]), name
