"""migsim.common.cdfs gives scipy.stats' numbers bit for bit, without scipy.stats.

A delay's table, a quantile's interval ranks and a mean's interval all feed the
golden files, so equal to the last bit is the test, not close.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import signal, special, stats

from migsim.common import cdfs
from migsim.common.cdfs import (
    binom_cdf,
    binom_cdf_beside,
    lognormal_cdf,
    lognormal_ppf,
    norm_cdf,
    norm_ppf,
    t_ppf,
    triangular_cdf,
)
from migsim.model.distributions import LognormalDelay, TriangularDelay
from migsim.model.uncertainty import AchievedThroughput, _autoregress


@pytest.mark.parametrize("n", [0, 1, 2, 19, 20, 100, 999, 1000, 4321])
@pytest.mark.parametrize("p", [0.05, 0.1, 0.5, 0.85, 0.9, 0.95, 0.975, 0.99])
def test_binomial_cdf_is_scipy_stats(n, p):
    expected = stats.binom.cdf(np.arange(n + 1), n, p)
    assert np.array_equal(binom_cdf(n, p), expected)


def _bits(values) -> np.ndarray:
    return np.asarray(values, dtype=float).view(np.int64)


def test_the_normal_cdf_is_scipys_bit_for_bit():
    """Cephes in Python: every branch (|x| below 1, to 8, beyond; both signs;
    underflow), and the values lognormal delay tables give it."""
    rng = np.random.default_rng(8)
    days = np.arange(1, 400, dtype=float)
    tables = [np.log(days / m) / s for m, s in rng.uniform((1, 0.05), (60, 2), (50, 2))]
    x = np.concatenate(
        [
            rng.normal(0, 3, 20000),
            rng.uniform(-40, 40, 5000),
            np.linspace(-12, 12, 4801),
            *tables,
            [0.0, -0.0, 1.0, -1.0, math.sqrt(2), -math.sqrt(2), 8 * math.sqrt(2)],
            [-38.6, 38.6, math.inf, -math.inf],
        ]
    )
    mine = np.array([cdfs._ndtr(v) for v in x.tolist()])
    assert np.array_equal(_bits(mine), _bits(special.ndtr(x)))
    assert math.isnan(cdfs._ndtr(math.nan))


def test_the_normal_quantile_is_scipys_bit_for_bit():
    rng = np.random.default_rng(9)
    y = np.concatenate(
        [
            rng.uniform(0, 1, 20000),
            10 ** rng.uniform(-300, 0, 5000),  # the tails: z beyond 2 and beyond 8
            1 - 10 ** rng.uniform(-16, 0, 5000),
            [0.5, 0.975, 0.9999, 0.025, math.exp(-2), 1 - math.exp(-2), 5e-324],
            [0.0, 1.0, -0.5, 1.5],
        ]
    )
    mine = np.array([cdfs._ndtri(v) for v in y.tolist()])
    expected = special.ndtri(y)
    assert np.array_equal(_bits(mine), _bits(expected))


@pytest.mark.parametrize("n", [0, 1, 2, 7, 19, 20, 100, 999, 1000, 4321, 100_000])
@pytest.mark.parametrize("p", [0.001, 0.05, 0.1, 0.5, 0.85, 0.9, 0.95, 0.975, 0.99])
def test_binomial_cdf_from_ratios_is_near_scipys(n, p):
    """Far nearer than the margin `binom_cdf_beside` keeps from every level."""
    fast = cdfs._binom_cdf_from_ratios(n, p)
    assert np.abs(fast - binom_cdf(n, p)).max() < cdfs._BESIDE_MARGIN / 100
    assert fast[-1] == 1.0 and np.all(np.diff(fast) >= 0)


def test_binomial_cdf_beside_levels_compares_as_scipys():
    rng = np.random.default_rng(10)
    for _ in range(300):
        n, p = int(rng.integers(0, 3000)), float(rng.uniform(0.01, 0.99))
        levels = tuple(float(v) for v in rng.uniform(0, 1, 2))
        fast, exact = binom_cdf_beside(n, p, levels), binom_cdf(n, p)
        for level in levels:
            assert np.array_equal(fast <= level, exact <= level)
            assert np.array_equal(fast >= level, exact >= level)


def test_binomial_cdf_beside_a_level_too_near_is_scipys(monkeypatch):
    """A value within the margin of a level (here: exactly on it) is Boost's."""
    assert np.array_equal(binom_cdf_beside(1, 0.5, (0.5,)), binom_cdf(1, 0.5))
    assert np.array_equal(binom_cdf_beside(4, 0.0, (0.5,)), binom_cdf(4, 0.0))
    calls = []
    monkeypatch.setattr(cdfs, "binom_cdf", lambda n, p: calls.append(n))
    binom_cdf_beside(20, 0.5, (0.025, 0.975))
    assert calls == []  # far from both levels: no scipy
    binom_cdf_beside(1, 0.5, (0.5,))
    assert calls == [1]


def test_t_and_normal_quantiles_are_scipy_stats():
    for df in [1, 2, 5, 19, 99, 999, 9999]:
        assert t_ppf(0.975, df) == float(stats.t.ppf(0.975, df))
    assert norm_ppf(0.975) == float(stats.norm.ppf(0.975))
    for x in [-8.5, -2.17, -0.3, 0.0, 1.22, 5.0]:
        assert norm_cdf(x) == float(stats.norm.cdf(x))


def test_lognormal_is_scipy_stats():
    """Equal to scipy on every day a delay's table reads, up to its 99.99%
    point: each day of the first 300, then 700 drawn from the rest (a wide
    lognormal's table runs to 10^5 days, and the cdf is one Python call a day)."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        median, sigma = float(rng.uniform(1, 60)), float(rng.uniform(0.05, 2))
        dist = stats.lognorm(s=sigma, scale=median)
        assert lognormal_ppf(0.9999, sigma, median) == float(dist.ppf(0.9999))
        last = math.ceil(dist.ppf(0.9999))
        days = np.arange(1, min(last, 300) + 1)
        if last > 300:
            days = np.union1d(days, rng.integers(301, last + 1, size=700))
        days = days.astype(float)
        assert np.array_equal(lognormal_cdf(days, sigma, median), dist.cdf(days))


def test_triangular_is_scipy_stats_at_every_mode():
    rng = np.random.default_rng(6)
    for i in range(300):
        low = float(rng.uniform(1, 20))
        width = float(rng.uniform(0.5, 40))
        # the mode at either end (scipy's overlapping branches) and inside
        c = (0.0, 1.0, float(rng.uniform()))[i % 3]
        days = np.arange(0, math.ceil(low + width) + 2).astype(float)
        expected = stats.triang(c=c, loc=low, scale=width).cdf(days)
        assert np.array_equal(triangular_cdf(days, c, low, width), expected)


def _table(cdf, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """A delay's table from a scipy.stats cdf, rounded up as `_ceil_pmf` does."""
    days = np.arange(first, last + 1)
    upper = cdf(days.astype(float))
    upper[-1] = 1.0
    probs = np.clip(upper - np.concatenate(([0.0], upper[:-1])), 0.0, None)
    probs /= probs.sum()
    return days[probs > 0], probs[probs > 0]


def test_delay_tables_keep_their_numbers():
    """The tables are those scipy.stats made, to the bit."""
    lognormal = stats.lognorm(s=0.8, scale=4)
    expected = _table(lognormal.cdf, 1, math.ceil(float(lognormal.ppf(0.9999))))
    days, probs = LognormalDelay(dist="lognormal", median=4, sigma=0.8).pmf()
    assert np.array_equal(days, expected[0]) and np.array_equal(probs, expected[1])
    width = 9.2 - 2
    triangular = stats.triang(c=(3.5 - 2) / width, loc=2, scale=width)
    expected = _table(triangular.cdf, 2, 10)
    days, probs = TriangularDelay(dist="triangular", low=2, mode=3.5, high=9.2).pmf()
    assert np.array_equal(days, expected[0]) and np.array_equal(probs, expected[1])


def test_autoregression_is_the_linear_filter():
    rng = np.random.default_rng(7)
    for phi in (0.1, 0.5, 0.8, 0.95, 0.999):
        shocks = rng.standard_normal(400) * 0.35
        expected = signal.lfilter([1.0], [1.0, -phi], shocks)
        assert np.array_equal(_autoregress(shocks, phi), expected)


def test_achieved_path_needs_no_scipy():
    """A replication's throughput path and delay tables load no scipy.stats."""
    code = (
        "import sys, numpy as np\n"
        "from migsim.model.uncertainty import AchievedThroughput\n"
        "from migsim.model.distributions import LognormalDelay, TriangularDelay\n"
        "spec = AchievedThroughput(dist='ar1', mean=0.6, persistence=0.8,"
        " innovation_sd=0.35)\n"
        "spec.path(0.6, np.random.default_rng(1), 365)\n"
        "LognormalDelay(dist='lognormal', median=4, sigma=0.8).pmf()\n"
        "TriangularDelay(dist='triangular', low=2, mode=3, high=9).pmf()\n"
        "print(sorted(m for m in ('scipy.stats', 'scipy.signal') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert AchievedThroughput  # the class the subprocess used


def test_a_one_replication_run_loads_no_scipy(tmp_path):
    """Delay tables, interval ranks and a share's interval: scipy-free; only a
    mean's interval (two or more replications) needs scipy.special."""
    code = (
        "import sys\n"
        "from migsim.cli.main import main\n"
        f"main(['run', 'scenarios/nov2019_epcl.yaml', '-n', '1', '-o', r'{tmp_path}',"
        " '--quiet', '--overwrite'], standalone_mode=False)\n"
        "print('scipy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == "False"
    assert (tmp_path / "summary.json").exists()
