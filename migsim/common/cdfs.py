"""The few distribution functions migsim evaluates, without loading scipy.stats.

Every run needs a handful of them: a lognormal or triangular delay's table, the
binomial CDF behind a quantile's interval, the Student-t and normal quantiles
behind a mean's and a share's. ``scipy.stats`` takes about half a second to
import (and each worker process pays it again); ``scipy.special``, where the
numbers come from, takes a fraction of that. So each function here is what
``scipy.stats`` computes, operation for operation, on the same special
functions: the same bits, which the tests check against ``scipy.stats``.

Even ``scipy.special`` costs a plain ``migsim run`` about a seventh of a second,
so the normal distribution's two functions (``ndtr``, ``ndtri``: Cephes
rational approximations, as scipy's own C++ evaluates them, in the same order,
on the same ``exp``, ``log`` and ``sqrt``) are here in Python, and the ranks of
a quantile's interval need the binomial CDF only to tell on which side of a
level each value lies (`binom_cdf_beside`). Only the Student-t quantile (a
mean's interval: two or more replications) and a value too near a level load
scipy, when first called, so ``import migsim`` stays light.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "binom_cdf",
    "binom_cdf_beside",
    "load_t_ppf",
    "lognormal_cdf",
    "lognormal_ppf",
    "norm_cdf",
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


#: How near a level `binom_cdf_beside` lets a value lie before it takes scipy's:
#: its values are within about 1e-13 of Boost's for n up to `_BESIDE_N` (3e-14
#: measured at n = 300,000), so a side it reports is Boost's side too.
_BESIDE_MARGIN = 1e-8
_BESIDE_N = 1_000_000


def binom_cdf_beside(n: int, p: float, levels: tuple[float, ...]) -> np.ndarray:
    """The binomial CDF (as `binom_cdf`) to compare with ``levels``, usually
    without scipy.

    Computed from the probabilities' ratios around the mode; where every value
    lies farther than `_BESIDE_MARGIN` from every level, each lies on the same
    side of each level as `binom_cdf`'s, so comparisons with the levels (the
    ranks of a quantile's interval) come out the same. Otherwise (a value near
    a level, n past `_BESIDE_N`, p at 0 or 1) it is `binom_cdf` itself.

    >>> cdf = binom_cdf_beside(20, 0.5, (0.025, 0.975))
    >>> int(np.flatnonzero(cdf <= 0.025)[-1]), int(np.flatnonzero(cdf >= 0.975)[0])
    (5, 14)
    """
    cdf = _binom_cdf_from_ratios(n, p)
    if cdf is None or any(
        np.abs(cdf - level).min() <= _BESIDE_MARGIN for level in levels
    ):
        return binom_cdf(n, p)
    return cdf


def _binom_cdf_from_ratios(n: int, p: float) -> np.ndarray | None:
    """P(B <= k), k = 0 .. n, to about 1e-13: each probability from its
    neighbour's by their ratio, outward from the mode (no overflow; the tails
    underflow to 0 long after they matter); None where p is 0 or 1 or n is
    past `_BESIDE_N`."""
    if not 0 < p < 1 or not 0 <= n <= _BESIDE_N:
        return None
    odds = p / (1 - p)
    mode = min(n, math.floor((n + 1) * p))
    k = np.arange(n + 1, dtype=float)
    weight = np.ones(n + 1)
    up = k[mode:n]
    weight[mode + 1 :] = np.cumprod((n - up) / (up + 1) * odds)
    down = k[mode:0:-1]  # mode .. 1: each gives the weight just below it
    weight[:mode] = np.cumprod(down / (n - down + 1) / odds)[::-1]
    below = np.cumsum(weight)
    return below / below[-1]


def load_t_ppf() -> None:
    """Load what `t_ppf` needs (scipy.special) now: for a caller with time to
    spare, such as a run waiting on its workers, so a summary's intervals do
    not wait for it later."""
    from scipy import special  # noqa: F401


def t_ppf(q: float, df: int) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom."""
    from scipy import special

    return float(special.stdtrit(df, q))


def norm_cdf(x: float) -> float:
    """The standard normal CDF at ``x`` (``special.ndtr(x)``)."""
    return _ndtr(x)


def norm_ppf(q: float) -> float:
    """The q-quantile of the standard normal (``special.ndtri(q)``)."""
    return _ndtri(q)


def lognormal_cdf(x: np.ndarray, sigma: float, median: float) -> np.ndarray:
    """``stats.lognorm(s=sigma, scale=median).cdf(x)`` for x > 0."""
    z = np.log(np.asarray(x, dtype=float) / median) / sigma
    return np.array([_ndtr(v) for v in z.ravel().tolist()]).reshape(z.shape)


def lognormal_ppf(q: float, sigma: float, median: float) -> float:
    """``stats.lognorm(s=sigma, scale=median).ppf(q)`` for 0 < q < 1.

    Computed on one-element arrays as scipy.stats does, so numpy takes the same
    path through ``exp``.
    """
    normal = np.array([_ndtri(q)])
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


# ----------------------------------------------------------- the normal, as Cephes
# scipy.special.ndtr and ndtri are Cephes' (scipy's xsf/cephes/ndtr.h, ndtri.h):
# these are the same coefficients and the same operations in the same order, so
# the same doubles (the tests compare them with scipy's on many values).
_NDTR_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1,
           7.46321056442269912687e0, 4.86371970985681366614e1,
           1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3,
           5.57535335369399327526e2)  # fmt: skip
_NDTR_Q = (1.32281951154744992508e1, 8.67072140885989742329e1,
           3.54937778887819891062e2, 9.75708501743205489753e2,
           1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)  # fmt: skip
_NDTR_R = (5.64189583547755073984e-1, 1.27536670759978104416e0,
           5.01905042251180477414e0, 6.16021097993053585195e0,
           7.40974269950448939160e0, 2.97886665372100240670e0)  # fmt: skip
_NDTR_S = (2.26052863220117276590e0, 9.39603524938001434673e0,
           1.20489539808096656605e1, 1.70814450747565897222e1,
           9.60896809063285878198e0, 3.36907645100081516050e0)  # fmt: skip
_NDTR_T = (9.60497373987051638749e0, 9.00260197203842689217e1,
           2.23200534594684319226e3, 7.00332514112805075473e3,
           5.55923013010394962768e4)  # fmt: skip
_NDTR_U = (3.35617141647503099647e1, 5.21357949780152679795e2,
           4.59432382970980127987e3, 2.26290000613890934246e4,
           4.92673942608635921086e4)  # fmt: skip
_NDTRI_P0 = (-5.99633501014107895267e1, 9.80010754185999661536e1,
             -5.66762857469070293439e1, 1.39312609387279679503e1,
             -1.23916583867381258016e0)  # fmt: skip
_NDTRI_Q0 = (1.95448858338141759834e0, 4.67627912898881538453e0,
             8.63602421390890590575e1, -2.25462687854119370527e2,
             2.00260212380060660359e2, -8.20372256168333339912e1,
             1.59056225126211695515e1, -1.18331621121330003142e0)  # fmt: skip
_NDTRI_P1 = (4.05544892305962419923e0, 3.15251094599893866154e1,
             5.71628192246421288162e1, 4.40805073893200834700e1,
             1.46849561928858024014e1, 2.18663306850790267539e0,
             -1.40256079171354495875e-1, -3.50424626827848203418e-2,
             -8.57456785154685413611e-4)  # fmt: skip
_NDTRI_Q1 = (1.57799883256466749731e1, 4.53907635128879210584e1,
             4.13172038254672030440e1, 1.50425385692907503408e1,
             2.50464946208309415979e0, -1.42182922854787788574e-1,
             -3.80806407691578277194e-2, -9.33259480895457427372e-4)  # fmt: skip
_NDTRI_P2 = (3.23774891776946035970e0, 6.91522889068984211695e0,
             3.93881025292474443415e0, 1.33303460815807542389e0,
             2.01485389549179081538e-1, 1.23716634817820021358e-2,
             3.01581553508235416007e-4, 2.65806974686737550832e-6,
             6.23974539184983293730e-9)  # fmt: skip
_NDTRI_Q2 = (6.02427039364742014255e0, 3.67983563856160859403e0,
             1.37702099489081330271e0, 2.16236993594496635890e-1,
             1.34204006088543189037e-2, 3.28014464682127739104e-4,
             2.89247864745380683936e-6, 6.79019408009981274425e-9)  # fmt: skip
_SQRT1_2 = 0.70710678118654752440  # M_SQRT1_2
_SQRT2PI = 2.50662827463100050242
_MAXLOG = 7.09782712893383996843e2
_EXP_M2 = 0.13533528323661269189  # exp(-2)


def _polevl(x: float, coef: tuple[float, ...]) -> float:
    """Cephes ``polevl``: the polynomial with these coefficients, highest first."""
    ans = coef[0]
    for c in coef[1:]:
        ans = ans * x + c
    return ans


def _p1evl(x: float, coef: tuple[float, ...]) -> float:
    """Cephes ``p1evl``: as `_polevl` with a leading coefficient 1 left out."""
    ans = x + coef[0]
    for c in coef[1:]:
        ans = ans * x + c
    return ans


def _erfc(a: float) -> float:
    if math.isnan(a):
        return math.nan
    x = -a if a < 0.0 else a
    if x < 1.0:
        return 1.0 - _erf(a)
    z = -a * a
    if z < -_MAXLOG:
        return 2.0 if a < 0 else 0.0
    z = math.exp(z)
    if x < 8.0:
        p, q = _polevl(x, _NDTR_P), _p1evl(x, _NDTR_Q)
    else:
        p, q = _polevl(x, _NDTR_R), _p1evl(x, _NDTR_S)
    y = (z * p) / q
    if a < 0:
        y = 2.0 - y
    if y != 0.0:
        return y
    return 2.0 if a < 0 else 0.0


def _erf(x: float) -> float:
    if math.isnan(x):
        return math.nan
    if x < 0.0:
        return -_erf(-x)
    if abs(x) > 1.0:
        return 1.0 - _erfc(x)
    z = x * x
    return x * _polevl(z, _NDTR_T) / _p1evl(z, _NDTR_U)


def _ndtr(a: float) -> float:
    """The standard normal CDF: ``scipy.special.ndtr(a)``."""
    if math.isnan(a):
        return math.nan
    x = a * _SQRT1_2
    z = abs(x)
    if z < 1.0:
        return 0.5 + 0.5 * _erf(x)
    y = 0.5 * _erfc(z)
    return 1.0 - y if x > 0 else y


def _ndtri(y0: float) -> float:
    """The standard normal quantile: ``scipy.special.ndtri(y0)``."""
    if y0 == 0.0:
        return -math.inf
    if y0 == 1.0:
        return math.inf
    if not 0.0 < y0 < 1.0:  # outside [0, 1], or nan
        return math.nan
    negate = True
    y = y0
    if y > 1.0 - _EXP_M2:
        y = 1.0 - y
        negate = False
    if y > _EXP_M2:
        y = y - 0.5
        y2 = y * y
        x = y + y * (y2 * _polevl(y2, _NDTRI_P0) / _p1evl(y2, _NDTRI_Q0))
        return x * _SQRT2PI
    x = math.sqrt(-2.0 * math.log(y))
    x0 = x - math.log(x) / x
    z = 1.0 / x
    if x < 8.0:
        x1 = z * _polevl(z, _NDTRI_P1) / _p1evl(z, _NDTRI_Q1)
    else:
        x1 = z * _polevl(z, _NDTRI_P2) / _p1evl(z, _NDTRI_Q2)
    x = x0 - x1
    return -x if negate else x
