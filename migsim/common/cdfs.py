"""The few distribution functions migsim evaluates, without loading scipy.stats.

Every run needs a handful of them: a lognormal or triangular delay's table, the
binomial CDF behind a quantile's interval, the Student-t and normal quantiles
behind a mean's and a share's. ``scipy.stats`` takes about half a second to
import (and each worker process pays it again); ``scipy.special``, where the
numbers come from, takes a fraction of that. So each function here is what
``scipy.stats`` computes, operation for operation, on the same special
functions: the same bits, which the tests check against ``scipy.stats``.

scipy loads only when a function here is first called, so ``import migsim``
stays light.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "binom_cdf",
    "lognormal_cdf",
    "lognormal_ppf",
    "norm_ppf",
    "t_ppf",
    "triangular_cdf",
]


def binom_cdf(n: int, p: float) -> np.ndarray:
    """P(B <= k) for k = 0 .. n, B ~ Binomial(n, p).

    What ``stats.binom.cdf(range(n + 1), n, p)`` gives.

    >>> [float(round(x, 4)) for x in binom_cdf(3, 0.5)]
    [0.125, 0.5, 0.875, 1.0]
    """
    try:  # the Boost function scipy.stats.binom calls (scipy >= 1.12 keeps it here)
        from scipy.special._ufuncs import _binom_cdf
    except ImportError:  # pragma: no cover - an older scipy: the slow import
        from scipy import stats

        return stats.binom.cdf(np.arange(n + 1), n, p)
    below = np.clip(_binom_cdf(np.arange(n, dtype=float), n, p), 0, 1)
    return np.append(below, 1.0)  # k = n is the support's end: exactly 1


def t_ppf(q: float, df: int) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom."""
    from scipy import special

    return float(special.stdtrit(df, q))


def norm_ppf(q: float) -> float:
    """The q-quantile of the standard normal."""
    from scipy import special

    return float(special.ndtri(q))


def lognormal_cdf(x: np.ndarray, sigma: float, median: float) -> np.ndarray:
    """``stats.lognorm(s=sigma, scale=median).cdf(x)`` for x > 0."""
    from scipy import special

    return special.ndtr(np.log(np.asarray(x, dtype=float) / median) / sigma)


def lognormal_ppf(q: float, sigma: float, median: float) -> float:
    """``stats.lognorm(s=sigma, scale=median).ppf(q)`` for 0 < q < 1.

    Computed on one-element arrays as scipy.stats does, so numpy takes the same
    path through ``exp``.
    """
    from scipy import special

    normal = special.ndtri(np.array([q]))
    return float((np.exp(np.array([sigma]) * normal) * median)[0])


def triangular_cdf(x: np.ndarray, c: float, loc: float, scale: float) -> np.ndarray:
    """``stats.triang(c, loc, scale).cdf(x)``: the mode at ``loc + c * scale``.

    The same formulas in the same order (where scipy's branches overlap, its
    later one wins, as here).
    """
    z = (np.asarray(x, dtype=float) - loc) / scale
    out = np.zeros(len(z))
    out[z >= 1] = 1.0
    inside = (z > 0) & (z < 1)
    t = z[inside]
    if c == 1:
        values = t * t
    else:
        values = (t * t - 2 * t + c) / (c - 1)
        below = t < c
        values[below] = t[below] * t[below] / c
    out[inside] = values
    return out
