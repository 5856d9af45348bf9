"""Golden results: a tiny scenario, a fixed seed, CSVs in tests/golden/.

Regenerate deliberately with ``MIGSIM_REGENERATE_GOLDEN=1`` (see
tests/golden/README.md); otherwise any change in the numbers fails here.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import pandas as pd
import pytest

import migsim

GOLDEN = Path(__file__).resolve().parent / "golden"
REPLICATIONS = 3
REGENERATE = os.environ.get("MIGSIM_REGENERATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def results():
    return migsim.run(GOLDEN / "foundation_golden.yaml", replications=REPLICATIONS)


def _round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as its CSV reads back: what the golden file can hold."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


@pytest.mark.parametrize("table", ["daily", "replications"])
def test_results_match_the_golden_files(results, table):
    actual = _round_trip(getattr(results, table))
    path = GOLDEN / f"foundation_golden_{table}.csv"
    if REGENERATE:
        getattr(results, table).to_csv(path, index=False)
        warnings.warn(
            f"regenerated {path}; review the diff before committing", stacklevel=1
        )
    expected = pd.read_csv(path)
    missing = [c for c in expected.columns if c not in actual.columns]
    assert not missing, f"pinned columns missing: {missing}"
    pd.testing.assert_frame_equal(actual[list(expected.columns)], expected)


def test_the_golden_run_is_not_trivial(results):
    """The pinned run must exercise what it is meant to pin."""
    daily = results.daily
    for column in (
        "stall_completions",
        "stall_failures",
        "rollbacks",
        "fix_forwards",
        "restorations",
        "dumbs",
    ):
        assert daily[column].sum() > 0, column
    assert results.scenario.seed == results.seed
