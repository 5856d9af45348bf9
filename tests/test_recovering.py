"""Dumb devices awaiting remote recovery are unresolved: the backlog and the
``unresolved`` figure count them, as the clearance rule does.

A run is cleared on the first day its backlog (the ``remaining`` series) falls
to what the clearance share leaves; before, a scenario whose dumb devices were
all awaiting recovery read "not cleared" with a backlog of 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import migsim
from migsim.results.rundir import load_run

OUTCOMES = ("success", "stall", "rollback", "fix_forward", "dumb")


def recovering_scenario(
    *,
    horizon: int = 20,
    dumb: float = 0.2,
    recovered_share: float = 1.0,
    recovered_after: dict | None = None,
    clearance_share: float = 1.0,
    cohorts: int = 1,
    stall: float = 0.0,
    rollback: float = 0.0,
):
    shares = [1.0 - dumb - stall - rollback, stall, rollback, 0.0, dumb]
    data = {
        "name": "recovering",
        "start_date": "2020-01-06",
        "horizon_days": horizon,
        "calendar": {"working_days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]},
        "capacity": {"daily_cap": 200},
        "clearance_share": clearance_share,
        "cohorts": [
            {
                "name": f"c{i}",
                "installations": 1000 // cohorts,
                "mode": "active" if i % 2 == 0 else "dormant",
                "max_attempts": 4,
                "outcomes": dict(zip(OUTCOMES, shares, strict=True)),
                "stall": {
                    "resolves_after_days": {"dist": "uniform", "low": 1, "high": 6},
                    "then_success": 0.7,
                },
                "rollback": {"retry_after_days": {"dist": "fixed", "days": 2}},
                # the first cohort only: a cohort without a section shares the
                # column, its dumb devices all awaiting a site visit
                **(
                    {
                        "dumb": {
                            "recovered_share": recovered_share,
                            "recovered_after_days": recovered_after
                            or {"dist": "fixed", "days": 30},
                        }
                    }
                    if i == 0
                    else {}
                ),
            }
            for i in range(cohorts)
        ],
    }
    return migsim.load_scenario(data)


def test_devices_awaiting_recovery_are_in_the_backlog_and_unresolved(tmp_path):
    # 1,000 installations, 20% dumb, all recovered after 30 days: at day 20
    # every dumb device still awaits recovery, so nothing is cleared
    results = migsim.run(recovering_scenario(), replications=3, seed=0)
    assert results.replications["clearance_day"].isna().all()
    dumb = results.figure("dumb")
    assert (dumb > 150).all()
    # was 0 (only the in-flight states were summed)
    assert results.figure("unresolved").tolist() == dumb.tolist()
    remaining = results.series("remaining").sum(axis=2)
    assert remaining[:, -1].tolist() == dumb.tolist()
    bands = results.backlog_bands()
    assert bands.iloc[-1][["p10", "p50", "p90"]].tolist() == sorted(dumb.tolist())
    # the saved run reads the same backlog from daily.parquet
    results.write(tmp_path / "out")
    saved = load_run(tmp_path / "out")
    assert saved.bands("remaining").equals(bands)


def test_nothing_changes_without_recovery():
    # a dumb section that recovers nothing: every dumb device awaits a visit
    results = migsim.run(
        recovering_scenario(recovered_share=0.0, horizon=40), replications=2, seed=0
    )
    assert results.figure("unresolved").tolist() == [0, 0]
    assert results.backlog_bands().iloc[-1][["p10", "p90"]].tolist() == [0, 0]
    assert not results.replications["clearance_day"].isna().any()


CASES = [
    # (seed, horizon, dumb, recovered share, delay high, clearance share, cohorts)
    (seed, horizon, dumb, share, high, clearance, cohorts)
    for seed, (horizon, dumb, share, high, clearance, cohorts) in enumerate(
        [
            (25, 0.2, 1.0, 12, 1.0, 1),
            (40, 0.1, 0.5, 20, 1.0, 2),
            (30, 0.3, 0.8, 8, 0.9, 2),
            (60, 0.05, 1.0, 30, 1.0, 3),
            (18, 0.15, 0.6, 5, 0.95, 1),
            (45, 0.25, 0.9, 25, 0.8, 3),
        ]
    )
]


@pytest.mark.parametrize("seed,horizon,dumb,share,high,clearance,cohorts", CASES)
def test_cleared_exactly_when_the_backlog_reaches_the_clearance_threshold(
    seed, horizon, dumb, share, high, clearance, cohorts
):
    """For every replication (and cohort): the clearance day is the first day
    the backlog is at most what the clearance share leaves, and the
    ``unresolved`` figure is the backlog's last value (0 iff cleared at share 1)."""
    sc = recovering_scenario(
        horizon=horizon,
        dumb=dumb,
        recovered_share=share,
        recovered_after={"dist": "uniform", "low": 1, "high": high},
        clearance_share=clearance,
        cohorts=cohorts,
        stall=0.1,
        rollback=0.05,
    )
    results = migsim.run(sc, replications=8, seed=seed)
    remaining = results.series("remaining")  # (replications, days, cohorts)
    sizes = [c.installations for c in sc.cohorts]
    scopes = [(None, remaining.sum(axis=2), sum(sizes))] + [
        (c.name, remaining[:, :, i], sizes[i]) for i, c in enumerate(sc.cohorts)
    ]
    seen_recovering = 0
    for name, backlog, size in scopes:
        allowed = size - min(size, math.ceil(clearance * size - 1e-9))
        days = results.clearance_days(name)
        unresolved = results.figure("unresolved", name)
        for k in range(len(backlog)):
            at_most = np.flatnonzero(backlog[k] <= allowed)
            first = float(at_most[0]) if len(at_most) else math.inf
            assert days[k] == first, (name, k)
            assert unresolved[k] == backlog[k, -1], (name, k)
            if clearance == 1.0:
                assert (unresolved[k] == 0) == math.isfinite(days[k]), (name, k)
    # the cases do exercise devices awaiting recovery at some day's end
    dumb, visit = results.stacked("dumb"), results.stacked("awaiting_site_visit")
    seen_recovering = int((dumb - visit).max())
    assert seen_recovering > 0


def test_actuals_backlog_counts_devices_awaiting_recovery(tmp_path):
    """A run's daily read back as actuals gives the run's own backlog (the line
    a forecast chart draws up to its as-of date)."""
    from migsim.evidence.actuals import read_actuals

    sc = recovering_scenario()
    results = migsim.run(sc, replications=2, seed=0)
    results.write(tmp_path / "out")
    actual = read_actuals(tmp_path / "out" / "daily.parquet", sc, replication=1)
    remaining = actual.remaining(sc.installations)["remaining"].to_numpy()
    expected = results.series("remaining")[1].sum(axis=1)
    assert remaining.tolist() == expected.tolist()
    assert remaining[-1] > 150  # was 0: the dumb devices left out
