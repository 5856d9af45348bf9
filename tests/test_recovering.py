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
    installations: int = 1000,
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
                "installations": installations // cohorts,
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


# ----------------------------------------------------------- backlog from flows
#: 10 installations, one cohort. Day 0: ten attempts, 8 succeed and 2 go dumb;
#: day 1: both recovered remotely (back to rolled back); day 3: both retried and
#: migrated. The backlog the run would count at each day's end: the 2 devices,
#: awaiting recovery, then waiting to retry, then none (all 10 migrated).
STORY = {
    "attempts": [10, 0, 0, 2],
    "successes": [8, 0, 0, 2],
    "dumbs": [2, 0, 0, 0],
    "dumb_recoveries": [0, 2, 0, 0],
    "rollbacks": [0, 0, 0, 0],
}
STORY_BACKLOG = [2, 2, 2, 0]


def story_scenario(recovered_share: float = 1.0):
    return recovering_scenario(
        horizon=10,
        installations=10,
        dumb=0.2,
        rollback=0.05,
        recovered_share=recovered_share,
        recovered_after={"dist": "fixed", "days": 1},
    )


def story_actuals(tmp_path, sc, drop=(), **extra):
    import pandas as pd

    from migsim.evidence.actuals import read_actuals
    from migsim.sim.records import FLOWS

    frame = pd.DataFrame(
        {
            "date": pd.date_range(sc.start_date, periods=4).strftime("%Y-%m-%d"),
            "cohort": "c0",
            **{f: STORY.get(f, [0, 0, 0, 0]) for f in FLOWS},
            "dumb_recoveries": STORY["dumb_recoveries"],
            **extra,
        }
    ).drop(columns=list(drop))
    path = tmp_path / "flows.csv"
    frame.to_csv(path, index=False)
    return read_actuals(path, sc)


def test_flows_backlog_counts_a_recovered_device_once(tmp_path):
    """Read from flows, a device that went dumb, was recovered and then migrated
    left the backlog once, when it migrated. It was counted gone once as dumb and
    again as migrated: the backlog read 0, 0, 0, -2 (10 installations, 12 gone)."""
    sc = story_scenario()
    # the run's own sub-count of the dumb: none awaits a site visit
    actual = story_actuals(tmp_path, sc, awaiting_site_visit=[0, 0, 0, 0])
    remaining = actual.remaining(10)["remaining"].tolist()
    assert remaining == STORY_BACKLOG
    # conservation: what is left is what has not migrated
    assert remaining[-1] == 10 - sum(STORY["successes"])


@pytest.mark.parametrize("drop", [(), ("dumb_recoveries",)])
def test_flows_backlog_estimates_devices_awaiting_recovery(tmp_path, drop):
    """Without ``awaiting_site_visit``, the scenario's recovery delay says which
    dumb devices still await recovery (here all, for one day: the estimate is
    exact), as the state a forecast starts from estimates them; without the
    reported recoveries, the expected ones stand in."""
    sc = story_scenario()
    actual = story_actuals(tmp_path, sc, drop=drop)
    assert actual.remaining(10, sc)["remaining"].tolist() == STORY_BACKLOG


def test_flows_backlog_without_recovery_detail(tmp_path):
    """With neither ``awaiting_site_visit`` nor a scenario, a dumb device counts
    as resolved while dumb (as in a run without a dumb section), but a recovered
    one is back in the backlog until it migrates, and leaves it once."""
    sc = story_scenario()
    actual = story_actuals(tmp_path, sc)
    assert actual.remaining(10)["remaining"].tolist() == [0, 2, 2, 0]


def test_flows_backlog_is_the_runs_own_backlog(tmp_path):
    """A run's daily without its end-of-day states (flows, recoveries and the
    dumb awaiting a site visit) gives the run's own backlog, every day."""
    from migsim.evidence.actuals import read_actuals
    from migsim.sim.records import STATES

    sc = recovering_scenario(
        horizon=40,
        dumb=0.2,
        recovered_share=0.7,
        recovered_after={"dist": "uniform", "low": 1, "high": 8},
        stall=0.1,
        rollback=0.05,
        cohorts=2,
    )
    results = migsim.run(sc, replications=2, seed=3)
    daily = results.daily
    one = daily[daily["replication"] == 1].drop(columns=[*STATES, "replication"])
    path = tmp_path / "flows.csv"
    one.to_csv(path, index=False)
    actual = read_actuals(path, sc)
    assert actual.has("successes") and not actual.has("dumb")
    remaining = actual.remaining(sc.installations)["remaining"].to_numpy()
    expected = results.series("remaining")[1].sum(axis=1)
    assert remaining.tolist() == expected.tolist()
    # the case does recover devices that then migrate
    recovered = one["dumb_recoveries"].sum()
    assert recovered > 0 and remaining.min() >= 0


def test_state_from_flows_nets_reported_recoveries(tmp_path):
    """Recoveries the actuals report are netted from the dumb even when the
    scenario recovers none: the two devices are migrated, not dumb as well
    (the flows accounted for 12 of 10 installations)."""
    from migsim.evidence.state import state_from_actuals

    sc = story_scenario(recovered_share=0.0)
    actual = story_actuals(tmp_path, sc)
    state, _ = state_from_actuals(sc, actual, actual.last_date)
    counts = state["cohorts"]["c0"]
    assert counts["migrated"] == sum(STORY["successes"]) == 10
    assert counts.get("dumb", 0) == 0


@pytest.mark.parametrize("reported", [True, False])
def test_awaiting_recovery_is_the_states_estimate_on_every_date(tmp_path, reported):
    """The backlog's estimate of the dumb awaiting remote recovery, on every
    date at once, is the one the state a forecast starts from makes on that
    date (`recovering_weights` over the rows up to it)."""
    from migsim.evidence.actuals import read_actuals
    from migsim.evidence.inflight import awaiting_recovery, recovering_weights
    from migsim.sim.records import STATES

    sc = recovering_scenario(
        horizon=30,
        dumb=0.2,
        recovered_share=0.7,
        recovered_after={"dist": "uniform", "low": 2, "high": 9},
        rollback=0.05,
    )
    daily = migsim.run(sc, replications=1, seed=5).daily
    drop = [*STATES, "replication", "awaiting_site_visit"]
    if not reported:
        drop.append("dumb_recoveries")
    daily.drop(columns=drop).to_csv(tmp_path / "f.csv", index=False)
    rows = read_actuals(tmp_path / "f.csv", sc).cohort_frame("c0")
    cohort = sc.cohorts[0]
    at_once = awaiting_recovery(cohort, rows)
    one_by_one = [
        recovering_weights(cohort, rows.iloc[: i + 1], when.date())[1].sum()
        for i, when in enumerate(rows["date"])
    ]
    assert at_once == pytest.approx(one_by_one, abs=1e-9)
    assert max(one_by_one) > 1  # devices do await recovery in the case


@pytest.mark.parametrize("share", [0.5, 0.0])
def test_report_and_summary_say_dumb_includes_devices_awaiting_recovery(share):
    """The dumb figures count every dumb device, those awaiting remote recovery
    too: where dumb devices may be recovered, the report (headline and risk
    tables) and the printed summary say so; where none can be, they do not."""
    from migsim.cli.text import summary_text
    from migsim.output.report import render_report

    sc = recovering_scenario(recovered_share=share)
    results = migsim.run(sc, replications=3, seed=0)
    # with recovery (30 days, past the horizon) some dumb devices still await it
    visit = results.stacked("awaiting_site_visit").sum(axis=2)[:, -1]
    awaiting = results.figure("dumb") - visit
    assert (awaiting > 0).all() == (share > 0)
    said = "including those still awaiting remote recovery, which may yet be recovered"
    page = " ".join(render_report([results], charts=False).split())
    assert (page.count(said) == 2) == (share > 0)  # key risks and the risk table
    assert ("devices dumb (some may yet be recovered remotely)" in page) == (share > 0)
    assert (said in " ".join(summary_text(results).split())) == (share > 0)


def test_awaiting_recovery_on_twenty_years_of_daily_rows_stays_small():
    """20 years of daily rows (the longest horizon) with a 60-day recovery
    delay: the estimate works a window of young days per row, not every pair
    of rows (about 3 GB of temporary arrays before), and on gapped rows it
    still is the state's own estimate."""
    import tracemalloc

    import pandas as pd

    from migsim.evidence.inflight import awaiting_recovery, recovering_weights

    sc = recovering_scenario(
        horizon=30,
        dumb=0.2,
        recovered_share=0.6,
        recovered_after={"dist": "uniform", "low": 5, "high": 60},
    )
    cohort = sc.cohorts[0]
    n = 7305
    rng = np.random.default_rng(3)
    rows = pd.DataFrame(
        {
            "date": pd.date_range("2019-11-25", periods=n, freq="D"),
            "dumbs": rng.poisson(4.0, n).astype(float),
        }
    )
    tracemalloc.start()
    waiting = awaiting_recovery(cohort, rows)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 60e6
    assert np.isfinite(waiting).all() and waiting[-1] > 0
    gapped = rows.iloc[::3].reset_index(drop=True).tail(200).reset_index(drop=True)
    at_once = awaiting_recovery(cohort, gapped)
    for i in (0, 17, 20, 199):
        one = recovering_weights(cohort, gapped.iloc[: i + 1], gapped["date"][i].date())
        assert at_once[i] == pytest.approx(one[1].sum(), abs=1e-9)
