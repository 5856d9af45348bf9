"""Results: type-1 statistics, not-cleared handling, figure definitions, tables
and files."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import MONDAY, cohort, load, outcomes, scenario

import migsim
from migsim.output.run_charts import write_run_charts
from migsim.results.daily import daily_frame, daily_table
from migsim.results.results import FIGURES, STATISTICS, Results, quantile, statistics
from migsim.sim.engine import run_replication
from migsim.sim.records import FLOWS, STATES, RunLog

ISSUE_FIGURES = (
    "clearance_day",
    "active_interrupted_installation_days",
    "active_dumb",
    "dormant_dumb",
    "abandoned",
    "peak_failure_backlog",
)
SUMMARY_KEYS = (
    "seed",
    "replications",
    "scenario_sha256",
    "migsim_version",
    "scenario",
    "figures",
    "timing",
)


# ============================================================================ quantiles
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # n = 10: the smallest x with F(x) >= q is the ceil(q n)-th smallest
        (
            range(1, 11),
            {"p5": 1, "p10": 1, "p50": 5, "p80": 8, "p85": 9, "p90": 9, "p95": 10},
        ),
        # n = 20: q n is a whole number for every statistic (float-noise edge)
        (
            range(1, 21),
            {"p5": 1, "p10": 2, "p50": 10, "p80": 16, "p85": 17, "p90": 18, "p95": 19},
        ),
        # n = 100
        (
            range(100, 0, -1),
            {"p5": 5, "p10": 10, "p50": 50, "p80": 80, "p85": 85, "p90": 90, "p95": 95},
        ),
        (
            [3, 1, 2],
            {"p5": 1, "p10": 1, "p50": 2, "p80": 3, "p85": 3, "p90": 3, "p95": 3},
        ),
        ([7], {"p5": 7, "p50": 7, "p95": 7}),
        ([4, 4, 9, 1], {"p5": 1, "p10": 1, "p50": 4, "p80": 9, "p95": 9}),
    ],
)
def test_type_1_quantiles_by_hand(values, expected):
    stats = statistics(list(values))
    for name, value in expected.items():
        assert stats[name] == value, name
        q = int(name[1:]) / 100
        assert quantile(list(values), q) == value


def test_quantiles_never_interpolate():
    stats = statistics([1, 10])
    assert stats["p50"] == 1 and stats["p95"] == 10 and stats["mean"] == 5.5


def test_statistics_have_the_contract_names():
    assert STATISTICS == ("mean", "p5", "p10", "p50", "p80", "p85", "p90", "p95")
    assert tuple(statistics([1, 2, 3])) == STATISTICS


def test_not_cleared_is_plus_infinity_and_makes_the_mean_undefined():
    stats = statistics([1, 3, 5, math.inf])
    assert stats["mean"] is None
    assert stats["p50"] == 3 and stats["p5"] == 1
    assert stats["p80"] == math.inf and stats["p95"] == math.inf
    assert quantile([], 0.5) != quantile([], 0.5)  # nan for no values


# ============================================================================ hand logs
def _two_cohorts(horizon: int = 4):
    return load(
        scenario(
            cohort("a", 10, mode="active"),
            cohort("b", 10),
            horizon_days=horizon,
        )
    )


def _log(sc, k, clearance, cohort_clearance=None, **columns) -> RunLog:
    """A run log of the engine with hand-set clearance and cohort columns: every
    installation migrated, unless ``columns`` say otherwise. Starting from a real
    log keeps whatever day columns the engine records."""
    log = run_replication(sc, 0, k)
    shape = (sc.horizon_days, len(sc.cohorts))
    cols = {name: np.zeros(shape, dtype=np.int64) for name in (*STATES, *FLOWS)}
    for name, value in columns.items():
        cols[name] = np.asarray(value, dtype=np.int64).reshape(shape)
    others = sum(cols[s] for s in STATES if s != "migrated")
    cols["migrated"] = np.array([c.installations for c in sc.cohorts]) - others
    log.cohort_columns.update(cols)
    log.clearance_day = clearance
    log.cohort_clearance_days = cohort_clearance or [clearance] * shape[1]
    return log


def test_not_cleared_replications_in_tables_and_summary(tmp_path):
    sc = _two_cohorts(horizon=12)
    days = [5, None, 2, 9]
    results = Results(sc, 0, [_log(sc, k, d) for k, d in enumerate(days)])
    summary = results.summary
    start, end = sc.start_date, sc.end_date
    assert summary["clearance_date"]["p10"] == (start + timedelta(2)).isoformat()
    assert summary["clearance_date"]["p50"] == (start + timedelta(5)).isoformat()
    assert summary["clearance_date"]["p80"] == f"after {end.isoformat()}"
    assert summary["clearance_date"]["p95"] == f"after {end.isoformat()}"
    figure = summary["figures"]["clearance_day"]
    assert figure["mean"] is None and figure["p50"] == 5 and figure["p80"] is None
    assert summary["cleared_share"] == 0.75
    json.dumps(summary, allow_nan=False)  # strict JSON: no Infinity, no NaN
    table = results.replications
    assert table["clearance_day"].tolist()[0] == 5 and table[
        "clearance_day"
    ].isna().tolist() == [False, True, False, False]
    assert table["clearance_date"].isna().tolist() == [False, True, False, False]
    assert table["clearance_date"][3] == pd.Timestamp(start + timedelta(9))
    results.write(tmp_path / "out")
    csv = pd.read_csv(tmp_path / "out" / "replications.csv", keep_default_na=False)
    assert (
        csv["clearance_date"].tolist()[1] == ""
        and csv["clearance_day"].tolist()[1] == ""
    )


def test_the_cohort_table_has_the_overall_tables_columns_per_cohort():
    """`cohort_replications` gives each cohort's clearance (a blank where it
    did not clear) and figures, in the columns and order of `replications`."""
    sc = _two_cohorts(horizon=12)
    logs = [_log(sc, 0, None, [4, None]), _log(sc, 1, 7, [7, 3])]
    results = Results(sc, 0, logs)
    table = results.cohort_replications
    figures = [f for f in FIGURES if f != "clearance_day"]
    assert list(table.columns) == [
        "replication",
        "cohort",
        "clearance_date",
        "clearance_day",
        *figures,
    ]
    assert list(results.replications.columns[1 : 3 + len(figures)]) == list(
        table.columns[2:]
    )
    assert table["cohort"].tolist() == ["a", "a", "b", "b"]
    assert table["replication"].tolist() == [0, 1, 0, 1]
    assert table["clearance_day"].tolist()[:2] == [4, 7]
    assert table["clearance_day"].isna().tolist() == [False, False, True, False]
    assert table["clearance_day"].dtype == "Int64"
    start = pd.Timestamp(sc.start_date)
    assert table["clearance_date"].tolist()[3] == start + pd.Timedelta(days=3)
    assert pd.isna(table["clearance_date"][2])
    for name in figures:
        for cohort_name, rows in table.groupby("cohort"):
            expected = results.figure(name, str(cohort_name))
            assert rows[name].tolist() == expected.tolist()


def test_figures_follow_their_definitions():
    sc = _two_cohorts()
    log = _log(
        sc,
        0,
        None,
        stalled=[[0, 0], [5, 1], [1, 7], [0, 0]],
        impaired=[[2, 0], [2, 0], [0, 0], [0, 3]],
        rolled_back=[[0, 0], [0, 0], [1, 0], [0, 0]],
        dumb=[[0, 0], [0, 0], [0, 0], [3, 4]],
        abandoned=[[0, 0], [0, 0], [0, 0], [1, 2]],
        attempts=[[4, 6], [0, 0], [2, 1], [0, 0]],
    )
    results = Results(sc, 0, [log])
    assert results.figure("peak_failure_backlog", "a")[0] == 5
    assert results.figure("peak_failure_backlog", "b")[0] == 7
    assert results.figure("peak_failure_backlog")[0] == 9  # day 2: 1 + 1 + 7, not 5 + 7
    # active: impaired or stalled at the end of a day; dormant cohorts do not count
    assert results.figure("active_interrupted_installation_days")[0] == 4 + 6
    assert results.figure("active_interrupted_installation_days", "b")[0] == 0
    assert (
        results.figure("active_dumb")[0] == 3 and results.figure("dormant_dumb")[0] == 4
    )
    assert results.figure("dumb")[0] == 7 and results.figure("abandoned")[0] == 3
    assert results.figure("attempts")[0] == 13
    assert results.figure("unresolved")[0] == 3  # impaired at the horizon end
    assert results.figure("migrated")[0] == 20 - 7 - 3  # impaired counts as migrated


def test_overall_statistics_are_of_each_replications_total():
    sc = _two_cohorts()
    logs = [
        _log(sc, 0, 3, dumb=[[0, 0]] * 3 + [[0, 5]]),
        _log(sc, 1, 3, dumb=[[0, 0]] * 3 + [[5, 0]]),
    ]
    summary = Results(sc, 0, logs).summary
    assert summary["cohorts"]["a"]["figures"]["dumb"]["p50"] == 0
    assert summary["cohorts"]["b"]["figures"]["dumb"]["p50"] == 0
    assert summary["figures"]["dumb"]["p50"] == 5  # not 0 + 0


def test_extra_log_columns_appear_in_the_daily_frame():
    sc = _two_cohorts()
    log = _log(sc, 0, 1)
    log.cohort_columns["operational"] = np.arange(8).reshape(4, 2)
    log.day_columns["cap_in_force"] = np.array([7, 8, 9, 10])
    daily = Results(sc, 0, [log]).daily
    columns = list(daily.columns)
    assert columns[3 + len(STATES) + len(FLOWS)] == "operational"  # cohort extras first
    assert columns[-1] == "cap_in_force"  # then day columns
    assert daily["operational"].tolist() == list(range(8))
    assert daily["cap_in_force"].tolist() == [7, 7, 8, 8, 9, 9, 10, 10]


def test_the_arrow_daily_table_reads_back_as_the_daily_frame():
    """Extra cohort columns, a numeric and a text day column, of replications
    given out of order: the table written to daily.parquet is the frame."""
    sc = _two_cohorts()
    logs = []
    for k in (1, 0):
        log = _log(sc, k, 1)
        log.cohort_columns["operational"] = np.arange(8).reshape(4, 2) + 10 * k
        log.day_columns["cap_in_force"] = np.array([7, 8, 9, 10]) + k
        log.day_columns["cap_rule"] = np.array(["daily_cap", "r", "r", "s"])
        logs.append(log)
    frame = daily_frame(sc, logs)
    table = daily_table(sc, logs)
    assert table.column_names == list(frame.columns)
    assert table.column_names[3 + len(STATES) + len(FLOWS)] == "operational"
    assert {"cap_in_force", "cap_rule"} <= set(table.column_names)
    pd.testing.assert_frame_equal(table.to_pandas(), frame, check_categorical=False)
    assert frame["cap_rule"].dtype == "category"
    assert frame["cap_in_force"].tolist()[:2] == [7, 7]
    assert frame["operational"].tolist()[8:10] == [10, 11]


# ============================================================================ real runs
@pytest.fixture(scope="module")
def results() -> Results:
    sc = scenario(
        cohort(
            "a",
            300,
            mode="active",
            rates=outcomes(
                success=0.8, stall=0.1, rollback=0.05, fix_forward=0.03, dumb=0.02
            ),
        ),
        cohort("b", 200, rates=outcomes(success=0.9, rollback=0.1)),
        cap=60,
        horizon_days=30,
    )
    return migsim.run(sc, replications=5, seed=2)


def test_daily_has_one_row_per_replication_date_and_cohort(results):
    daily = results.daily
    sc = results.scenario
    assert list(daily.columns[:3]) == ["replication", "date", "cohort"]
    assert list(daily.columns[3 : 3 + len(STATES) + len(FLOWS)]) == [*STATES, *FLOWS]
    assert len(daily) == 5 * sc.horizon_days * 2
    assert daily["cohort"].dtype == "category"
    for (_, _name), rows in daily.groupby(["replication", "cohort"], observed=True):
        dates = pd.DatetimeIndex(rows["date"])
        assert dates[0] == pd.Timestamp(MONDAY) and dates.is_monotonic_increasing
        assert (dates[1:] - dates[:-1] == pd.Timedelta(days=1)).all()  # weekends too
        assert len(dates) == sc.horizon_days
    assert sorted(daily["replication"].unique()) == list(range(5))


def test_replications_table_columns(results):
    table = results.replications
    assert list(table.columns[:3]) == ["replication", "clearance_date", "clearance_day"]
    figures = [f for f in FIGURES if f != "clearance_day"]
    assert (
        list(table.columns[3 : 3 + len(figures)]) == figures
    )  # later columns may follow
    assert table["replication"].tolist() == list(range(5))
    for word in ("time", "second", "runtime", "wall", "elapsed"):
        assert not [c for c in table.columns if word in c]
    cleared = table.dropna(subset=["clearance_day"])
    assert (
        cleared["clearance_date"]
        == pd.Timestamp(MONDAY)
        + pd.to_timedelta(cleared["clearance_day"].astype(int), unit="D")
    ).all()


def test_every_issue_figure_is_defined():
    for name in ISSUE_FIGURES:
        assert name in FIGURES and FIGURES[name].definition


def test_the_summary_names_the_code_that_made_it(results, tmp_path):
    """The version changes only at a release; the numbers can change between.
    The summary also records the sha256 of migsim's Python source, which any
    change to a source file changes and nothing else does."""
    from migsim.common.source import source_sha256

    assert results.summary["migsim_source_sha256"] == source_sha256()
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    (package / "notes.txt").write_text("not code")
    first = source_sha256(package)
    (package / "notes.txt").write_text("still not code")
    assert source_sha256.__wrapped__(package) == first
    (package / "sub" / "b.py").write_text("y = 3\n")
    assert source_sha256.__wrapped__(package) != first


def test_a_summary_of_other_replications_than_the_first_n_names_them(results):
    """seed and replications name replications 0 .. n-1; a run of others (a later
    batch, parts combined with a gap) says which it holds, so the recorded values
    reproduce its numbers; a run of 0 .. n-1 has no such key."""
    assert "replication_ids" not in results.summary
    sc = results.scenario
    later = migsim.run(sc, replications=3, seed=2, first_replication=2)
    assert later.summary["replication_ids"] == [[2, 4]]
    again = migsim.run(sc, replications=5, seed=2)
    assert later.replications.equals(again.replications.iloc[2:].reset_index(drop=True))
    first = migsim.run(sc, replications=1, seed=2)
    gapped = Results.combine([first, later])
    assert gapped.summary["replication_ids"] == [[0, 0], [2, 4]]


def test_summary_holds_provenance_and_figures(results):
    summary = results.summary
    for key in SUMMARY_KEYS:
        assert key in summary, key
    assert summary["seed"] == 2 and summary["replications"] == 5
    assert summary["migsim_version"] == migsim.__version__
    canonical = json.dumps(summary["scenario"], sort_keys=True, separators=(",", ":"))
    assert summary["scenario_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert migsim.load_scenario(summary["scenario"]) == results.scenario
    assert set(summary["figures"]) == set(FIGURES)
    for name, stats in summary["figures"].items():
        assert tuple(stats) == STATISTICS, name
        per_replication = results.figure(name)
        if name == "clearance_day":
            per_replication = (
                results.replications["clearance_day"].astype(float).to_numpy()
            )
        assert stats["p50"] == quantile(per_replication, 0.5), name
    assert set(summary["cohorts"]) == {"a", "b"}
    json.dumps(summary, allow_nan=False)


def test_backlog_bands_are_type_1_quantiles_of_the_total(results):
    bands = results.backlog_bands()
    remaining = results.series("remaining").sum(axis=2)  # (replications, days)
    assert list(bands.columns) == ["date", "p10", "p50", "p90"]
    for d in (0, 5, 12):
        assert bands["p50"][d] == quantile(remaining[:, d], 0.5)
        assert bands["p90"][d] == quantile(remaining[:, d], 0.9)
    assert (remaining <= 500).all() and (np.diff(remaining, axis=1) <= 0).all()


def test_write_refuses_an_existing_directory_and_replaces_it_when_told(
    results, tmp_path
):
    target = tmp_path / "out"
    results.write(target, charts=write_run_charts)
    names = sorted(p.name for p in target.iterdir())
    for expected in (
        "backlog.png",
        "daily.parquet",
        "replications.csv",
        "scenario.yaml",
        "summary.json",
    ):
        assert expected in names
    with pytest.raises(FileExistsError):
        results.write(target)
    (target / "stale.txt").write_text("old")
    results.write(target, overwrite=True)
    assert not (target / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left behind
    daily = pd.read_parquet(target / "daily.parquet")
    assert len(daily) == len(results.daily)
    assert (
        daily[list(STATES)].to_numpy() == results.daily[list(STATES)].to_numpy()
    ).all()


def test_a_failed_write_leaves_no_directory(results, tmp_path):
    def broken(results, folder):
        (folder / "half.png").write_bytes(b"\x89PNG")
        raise RuntimeError("plot failed")

    with pytest.raises(RuntimeError):
        results.write(tmp_path / "out", charts=broken)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_old_directory(results, tmp_path):
    target = results.write(tmp_path / "out")
    before = (target / "summary.json").read_bytes()

    def broken(results, folder):
        raise RuntimeError("plot failed")

    with pytest.raises(RuntimeError):
        results.write(target, overwrite=True, charts=broken)
    assert (target / "summary.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_library_write_draws_nothing(results, tmp_path):
    """Charts belong to the output layer: a plain write holds tables only."""
    target = results.write(tmp_path / "out")
    assert not list(target.glob("*.png"))


@pytest.mark.parametrize("held", ["file", "logs"])
def test_cohort_bands_are_each_cohorts_bands_from_one_read(held):
    """`cohort_bands` gives, in one read, what `bands` gives cohort by cohort."""
    sc = migsim.load_scenario("scenarios/nov2019_epcl.yaml")
    if held == "file":
        results = migsim.run(sc, replications=6, seed=2)
    else:
        results = Results(sc, 2, logs=[run_replication(sc, 2, k) for k in range(6)])
    quantiles = (0.05, 0.5, 0.95)
    for name in ("remaining", "cumulative_migrated", "attempts", "daily_cap"):
        every = results.cohort_bands(name, quantiles=quantiles)
        assert list(every) == [None, *results.cohort_names]
        for who, frame in every.items():
            expected = results.bands(name, who, quantiles=quantiles)
            pd.testing.assert_frame_equal(frame, expected)


def test_block_bands_never_hold_the_whole_total():
    """The total's bands are summed and sorted a few days at a time: the whole
    ``(replications, days)`` total beside the block was most of what a run's
    peak memory grew by with the replications. The bands are those of the
    whole total, and of each cohort's slice, as `bands_of` gives them."""
    import tracemalloc

    from migsim.results.daily import bands_of, block_bands

    rng = np.random.default_rng(5)
    block = rng.integers(0, 50_000, size=(3000, 365, 2), dtype=np.int32)
    dates = pd.date_range("2019-11-25", periods=365)
    quantiles = (0.05, 0.5, 0.95)
    ratios = rng.uniform(1.4, 1.9, size=3000)
    total = block.sum(axis=2)
    expected = [
        {None: bands_of(total.copy(), dates, quantiles, scale)}
        | {
            c: bands_of(block[:, :, i].copy(), dates, quantiles, scale)
            for i, c in enumerate(("a", "b"))
        }
        for scale in (ratios, None)
    ]
    tracemalloc.start()
    got = block_bands(block, dates, quantiles, [ratios, None], ["a", "b"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    for want, have in zip(expected, got, strict=True):
        assert list(have) == [None, "a", "b"]
        for who in want:
            pd.testing.assert_frame_equal(have[who], want[who])
    # the whole total, int32 as the block: 4.4 MB (held with a scaled chunk
    # before: 7.6 MB at its peak; now 2.4 MB)
    assert peak < block.nbytes / block.shape[2], peak
