"""Statistics: the one place migsim computes quantiles, intervals and JSON numbers.

Every layer reports the same kinds of numbers, so they are computed here once:

- type-1 (inverted-CDF) quantiles (`quantile`, `quantile_index`, `statistics`):
  never interpolated, so every reported date is one a replication produced, and
  a replication that did not clear (+inf) is a value like any other;
- distribution-free intervals of a type-1 quantile between two order statistics
  (`quantile_ranks`, `quantile_ci95`, `quantile_bounds`): no assumption about the
  shape of the distribution, and every end is a value a replication produced;
- the Student-t interval of a mean (`mean_ci95`);
- the continuous ranked probability score of an ensemble (`crps_ensemble`);
- intervals of a probability: Wilson's score interval (`proportion_ci95`), which
  stays inside [0, 1] and does not collapse when every replication agrees, and
  the exact binomial Clopper-Pearson bounds (`clopper_pearson`,
  `clopper_pearson_upper`), which the ramp policy and decide judge budgets on;
- `json_number` and `json_value`: numbers and values as JSON files hold them;
- `percent`: a share as every output writes it (never "100%" unless it is 1).

scipy loads only when a mean's interval (or a Clopper-Pearson bound) is asked
for, so ``import migsim`` and a one-replication run stay light; only
``scipy.special`` (`migsim.common.cdfs`), never the slower ``scipy.stats``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from migsim.common.cdfs import binom_cdf_beside, norm_ppf, t_ppf

__all__ = [
    "LEVEL",
    "QUANTILES",
    "STATISTICS",
    "clopper_pearson",
    "clopper_pearson_upper",
    "crps_ensemble",
    "format_number",
    "half_width",
    "json_number",
    "json_value",
    "mean_ci95",
    "percent",
    "proportion_ci95",
    "quantile",
    "quantile_bounds",
    "quantile_ci95",
    "quantile_index",
    "quantile_ranks",
    "statistic_quantile",
    "statistics",
]

#: Confidence level of every interval migsim reports.
LEVEL = 0.95
#: The statistics of every figure: the mean, then type-1 quantiles.
STATISTICS = ("mean", "p5", "p10", "p50", "p80", "p85", "p90", "p95")
#: The quantile statistics and their probabilities.
QUANTILES = {
    "p5": 0.05,
    "p10": 0.10,
    "p50": 0.50,
    "p80": 0.80,
    "p85": 0.85,
    "p90": 0.90,
    "p95": 0.95,
}
#: Slack for ``q * n`` landing a hair above a whole number (0.1 * 30 = 3.0000000004).
_EPS = 1e-12


# --------------------------------------------------------------------------- quantiles
def quantile_index(n: int, q: float) -> int:
    """0-based index of the type-1 q-quantile in ``n`` sorted values.

    The smallest x with F(x) >= q is the ceil(n q)-th value (1-based).

    >>> quantile_index(10, 0.5), quantile_index(10, 0.85), quantile_index(10, 0.0)
    (4, 8, 0)
    """
    return max(0, math.ceil(q * n - _EPS) - 1)


def quantile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """Inverted-CDF (type 1) quantile: the smallest x with F(x) >= q.

    Works with +inf (a replication that did not clear); never interpolates; nan
    for no values.

    >>> quantile([3, 1, 2, float("inf")], 0.75)
    3.0
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    if not len(ordered):
        return math.nan
    return float(ordered[quantile_index(len(ordered), q)])


def statistic_quantile(name: str) -> float | None:
    """The probability of a statistic name: ``"p85"`` -> 0.85, ``"mean"`` -> None."""
    return None if name == "mean" else int(name[1:]) / 100


def statistics(values: Sequence[float] | np.ndarray) -> dict[str, float | None]:
    """Mean and type-1 quantiles; the mean is ``None`` when any value is +inf."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean()) if len(array) and np.isfinite(array).all() else None
    out: dict[str, float | None] = {"mean": mean}
    for name, q in QUANTILES.items():
        out[name] = quantile(array, q)
    return out


def crps_ensemble(observed: np.ndarray, ensembles: np.ndarray) -> np.ndarray:
    """The CRPS of each ensemble (a row of ``ensembles``) against its observed
    value: the CRPS of the ensemble's empirical distribution,
    ``mean|X - y| - mean|X - X'| / 2``.

    Computed as ``scoringrules.crps_ensemble`` does by default (its quantile
    decomposition on the sorted members; the same value to rounding), without
    that library: importing it compiles its numba kernels, about 4 s, in every
    process that scores a backtest.

    >>> [round(float(x), 4) for x in crps_ensemble(np.array([2.0, 5.0]),
    ...     np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))]
    [0.2222, 2.5556]
    """
    members = np.sort(np.asarray(ensembles, dtype=float), axis=-1)
    y = np.asarray(observed, dtype=float)[..., None]
    m = members.shape[-1]
    rank = np.arange(1, m + 1)
    above = (y < members).astype(float)  # the observation's CDF at each member
    integral = ((members - y) * (m * above - rank + 0.5)).sum(axis=-1)
    return (2 / m**2) * integral


# ---------------------------------------------------------------------- quantile CIs
@lru_cache(maxsize=1024)
def quantile_ranks(n: int, q: float) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) of the distribution-free 95% interval for the q-quantile.

    With B ~ Binomial(n, q) the count of replications at or below the true
    quantile, P(X_(l) <= x_q <= X_(u)) >= P(l <= B <= u - 1). We take the
    equal-tailed pair: the largest l with P(B <= l - 1) <= 2.5% and the smallest
    u with P(B <= u - 1) >= 97.5%. A rank that does not exist (too few
    replications for that tail) is ``None``: that side of the interval is open
    and more replications are needed. They depend only on n and q, and a run's
    summary asks for the same few for every figure and cohort: cached (the
    binomial CDF costs far more than the sort).

    >>> quantile_ranks(20, 0.5)
    (6, 15)
    >>> quantile_ranks(20, 0.95)
    (17, None)
    """
    tail = (1 - LEVEL) / 2
    cdf = binom_cdf_beside(n, q, (tail + _EPS, 1 - tail - _EPS))
    below = np.flatnonzero(cdf <= tail + _EPS)
    lower = int(below[-1]) + 1 if len(below) else None
    above = np.flatnonzero(cdf >= 1 - tail - _EPS)
    upper = int(above[0]) + 1 if len(above) else None
    if upper is not None and upper > n:
        upper = None
    return lower, upper


def quantile_ci95(
    values: Sequence[float] | np.ndarray, q: float
) -> tuple[float | None, float | None]:
    """Distribution-free 95% interval of the type-1 q-quantile: two order statistics.

    Either end is ``None`` when the replications are too few for that tail; an end
    may be +inf when it falls on a replication that did not clear.
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    lower, upper = quantile_ranks(len(ordered), q)
    return (
        None if lower is None else float(ordered[lower - 1]),
        None if upper is None else float(ordered[upper - 1]),
    )


def quantile_bounds(
    values: Sequence[float] | np.ndarray, q: float, confidence: float
) -> tuple[float, float]:
    """Distribution-free one-sided confidence bounds on the q-quantile.

    The upper bound is the order statistic X_(u), u the smallest index with
    P(Binomial(n, q) <= u - 1) >= confidence (+inf when no u <= n qualifies);
    the lower bound is X_(l), l the largest index with P(Binomial(n, q) >= l) >=
    confidence (-inf when none). Both hold for discrete figures too.

    >>> quantile_bounds(range(1, 30), 0.9, 0.95)     # 1 - 0.9 ** 29 = 0.953
    (23.0, 29.0)
    >>> quantile_bounds(range(1, 29), 0.9, 0.95)[1]  # 1 - 0.9 ** 28 = 0.948
    inf
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    lower_index, u = _order_ranks(n, float(q), float(confidence))
    upper = float(ordered[u - 1]) if u <= n else math.inf
    lower = float(ordered[lower_index - 1]) if lower_index >= 1 else -math.inf
    return lower, upper


@lru_cache(maxsize=4096)
def _order_ranks(n: int, q: float, confidence: float) -> tuple[int, int]:
    """The 1-based ranks of `quantile_bounds`' order statistics (0, n + 1: none).

    They depend only on n, q and the confidence, and decide asks for the same
    few again and again (the binomial CDF costs far more than the sort).
    """
    cdf = binom_cdf_beside(n, q, (confidence - _EPS, 1 - confidence + _EPS))
    reach = np.flatnonzero(cdf >= confidence - _EPS)
    u = int(reach[0]) + 1 if len(reach) else n + 1
    below = np.flatnonzero(cdf <= 1 - confidence + _EPS)
    lower_index = int(below[-1]) + 1 if len(below) else 0
    return lower_index, u


# --------------------------------------------------------------------------- means
def mean_ci95(
    values: Sequence[float] | np.ndarray, floor: float = -math.inf
) -> tuple[float, float] | None:
    """Student-t 95% confidence interval of the mean.

    ``None`` when it is undefined: fewer than two values, or a value is +inf (a
    replication that did not clear has no clearance day, so no mean). ``floor``
    is the quantity's natural bound (0 for a count or a day): the interval is
    clipped there, since the mean cannot be below it (two replications of 200
    abandoning one installation gave [-0.0039, 0.0239]).

    >>> [round(x, 3) for x in mean_ci95([10, 12, 14])]
    [7.032, 16.968]
    >>> [round(x, 4) for x in mean_ci95([0] * 198 + [1, 1], floor=0)]
    [0.0, 0.0239]
    """
    array = np.asarray(values, dtype=float)
    if len(array) < 2 or not np.isfinite(array).all():
        return None
    mean = float(array.mean())
    half = (
        t_ppf(0.5 + LEVEL / 2, len(array) - 1)
        * float(array.std(ddof=1))
        / math.sqrt(len(array))
    )
    return (max(float(floor), mean - half), max(float(floor), mean + half))


def half_width(interval: tuple[float, float] | None) -> float:
    """Half the width of an interval; +inf when it is undefined."""
    if interval is None:
        return math.inf
    return (interval[1] - interval[0]) / 2


# --------------------------------------------------------------------- probabilities
def proportion_ci95(successes: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval of a probability estimated as ``successes / n``.

    >>> [round(x, 4) for x in proportion_ci95(20, 20)]
    [0.8389, 1.0]
    """
    if n <= 0:
        return (0.0, 1.0)
    z = norm_ppf(0.5 + LEVEL / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def _beta_quantile(p: float, a: float, b: float) -> float:
    """The p-quantile of Beta(a, b) (what Clopper-Pearson bounds are made of)."""
    from scipy import special

    return float(special.betaincinv(a, b, p))


def _upper(count: int, n: int, confidence: float) -> float:
    """The Clopper-Pearson upper bound for ``0 <= count < n``: both callers' formula."""
    return _beta_quantile(confidence, count + 1, n - count)


def clopper_pearson(count: int, n: int, confidence: float) -> tuple[float, float]:
    """One-sided exact binomial bounds on a probability from ``count`` of ``n``.

    Returns ``(lower, upper)``: each holds on its own with probability at least
    ``confidence`` (Clopper-Pearson, via beta quantiles).

    >>> round(clopper_pearson(0, 200, 0.95)[1], 6)   # 1 - 0.05 ** (1 / 200)
    0.014867
    """
    if not 0 <= count <= n or n < 1:
        raise ValueError(f"need 0 <= count <= n and n >= 1, got {count} of {n}")
    upper = 1.0 if count == n else _upper(count, n, confidence)
    lower = 0.0 if count == 0 else _beta_quantile(1 - confidence, count, n - count + 1)
    return lower, upper


def clopper_pearson_upper(failures: int, trials: int, confidence: float) -> float:
    """One-sided Clopper-Pearson upper bound on a failure rate.

    The smallest p with P(X <= failures | trials, p) <= 1 - confidence, i.e. the
    ``confidence`` quantile of Beta(failures + 1, trials - failures); 1 when
    there are no trials or every trial failed (no evidence yet: a rule on it
    must not relax).

    >>> round(clopper_pearson_upper(0, 2995, 0.95), 6)  # "rule of three"
    0.001
    """
    if trials <= 0 or failures >= trials:
        return 1.0
    return _upper(failures, trials, confidence)


# --------------------------------------------------------------------------- JSON
def json_number(
    value: float | None,
    digits: int = 6,
    *,
    ints: Literal["exact", "rounded"] | None = "exact",
) -> float | int | None:
    """A number as a JSON file holds it: ``None`` for None, +-inf and nan.

    Rounded to ``digits`` decimals. ``ints`` says when a whole number is written
    as an int: ``"exact"`` when the value itself is whole (checked before
    rounding, so 2.0000000001 stays a float), ``"rounded"`` when it is whole
    after rounding, ``None`` never. Each output file keeps the choice it was
    first written with, so its bytes do not change.

    >>> json_number(3.0), json_number(1 / 3), json_number(float("inf"))
    (3, 0.333333, None)
    >>> json_number(2.0000000001), json_number(2.0000000001, ints="rounded")
    (2.0, 2)
    >>> json_number(5.0, ints=None), json_number(0.123456, 4, ints=None)
    (5.0, 0.1235)
    """
    if value is None or not math.isfinite(value):
        return None
    number = float(value)
    if ints == "exact" and number.is_integer():
        return int(number)
    rounded = round(number, digits)
    if ints == "rounded" and rounded.is_integer():
        return int(rounded)
    return rounded


def json_value(value: Any) -> Any:
    """A lever or field value as JSON holds it: dates as ISO text, numpy as Python.

    >>> json_value(dt.date(2020, 1, 31)), json_value(np.int64(7))
    ('2020-01-31', 7)
    """
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- words
#: Most decimals `percent` gives a share before saying "under"/"over".
_PERCENT_DIGITS = 4


def format_number(value: float) -> str:
    """A figure's number as every output writes it: integers in full, others
    to 3 significant figures (whole from 100); inf reads "unbounded".

    >>> format_number(1500.0), format_number(2.345), format_number(1234.5)
    ('1,500', '2.35', '1,234')
    """
    if not math.isfinite(value):
        return "unbounded" if value > 0 else "-"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


def percent(share: float | None) -> str:
    """A share in [0, 1] as every output writes it: the one percent format.

    A whole percent is written whole (0.98 -> "98%"); any other share with one
    decimal (0.975 -> "97.5%", so a share and its complement add up to 100),
    and more when one would round it to "0%" or "100%": only a share that is
    exactly 0 or 1 reads "0%" or "100%". ``None`` and nan read "-".

    >>> percent(1.0), percent(0.98), percent(0.975), percent(1 - 0.975)
    ('100%', '98%', '97.5%', '2.5%')
    >>> percent(0.9995), percent(0.0004), percent(1e-9), percent(None)
    ('99.95%', '0.04%', 'under 0.0001%', '-')
    """
    if share is None or not math.isfinite(share):
        return "-"
    value = round(float(share) * 100, 9)  # 0.975 * 100 is 97.49999999999999
    if value.is_integer():
        return f"{value:.0f}%"
    for digits in range(1, _PERCENT_DIGITS + 1):
        rounded = round(value, digits)
        if 0 < rounded < 100:
            return f"{rounded:.{digits}f}%"
    limit = 10.0**-_PERCENT_DIGITS
    return f"under {limit:g}%" if value < 50 else f"over {100 - limit:g}%"
