"""Calibration of the input distributions the actuals inform.

Besides the outcome rates (`migsim.evidence.calibrate`), actuals say something
about the inputs a November 2019 forecast drew per replication:

- **Achieved throughput.** The share of the day's cap achieved is
  ``attempts / daily_cap`` on a working day whose queue was far from running
  dry (the programme attempted all it could). A halted cohort, and an active
  cohort's installations waiting for their supplier, take no share of the cap:
  the day still measures the share achieved, its queue counted without them.
  A day the nominations of the suppliers with work to attempt limited is a
  lower bound (censored: the mean and sd are a Tobit fit). With
  ``capacity.achieved`` (an AR(1) on the logit scale around an uncertain mean
  share, a Beta), the Beta is updated with the mean of the observed shares,
  by matching the moments of a normal likelihood to the Beta's (the prior's
  strength, for a mean stated as a number, is ``prior_strength`` pseudo-days).
  The mean's variance is the AR(1)'s own for those days (a short window shares
  one persistent deviation, which its spread about its own mean cannot show),
  or the observed spread over n (1 - r) / (1 + r) independent days (r: their
  lag-1 autocorrelation) when that is larger.
  With at least `_MIN_PAIRS` pairs of consecutive days both seen (neither a
  lower bound, whose logit is the bound's), the persistence and the
  innovation sd are the observed ones. A plain daily ``achieved_share`` becomes
  the Beta with the observed shares' mean and variance. Other limits the
  actuals cannot show (a supplier's demand below its nomination) make the
  share a lower bound.
- **Dates**, and the programme-wide delay behind their slips: see
  `migsim.evidence.starts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from migsim.evidence.actuals import Actuals
from migsim.model.scenario import Scenario
from migsim.model.uncertainty import stationary_logit_mean

__all__ = ["InputUpdate", "update_inputs"]

#: Fewest days behind an achieved-share update, and consecutive-day pairs
#: behind a persistence estimate.
_MIN_DAYS = 10
_MIN_PAIRS = 30
#: A usable day's queue holds at least this many days of the cap: near the end
#: of the queue one supplier's installations run out and the others'
#: nominations, not the share achieved, limit the day (the actuals do not say
#: whose installations are left).
_QUEUE_DAYS = 5
#: Observed shares are kept inside (0, 1) on the logit scale.
_CLIP = 0.005


@dataclass(frozen=True)
class InputUpdate:
    """One input the actuals informed: what it was, what it is, from what."""

    path: str
    before: str
    after: str
    behind: str

    def __str__(self) -> str:
        return f"{self.path}: {self.before} -> {self.after} ({self.behind})"


def update_inputs(
    scenario: Scenario,
    data: dict[str, Any],
    actuals: Actuals,
    prior_strength: float,
    notes: list[str],
    sources: dict[str, str],
) -> list[InputUpdate]:
    """Update ``data`` (the scenario's dict, being calibrated) in place: the
    achieved throughput (the dates: `migsim.evidence.starts`)."""
    return _throughput(scenario, data, actuals, prior_strength, notes, sources)


# --------------------------------------------------------------------------- throughput
def _observed_shares(
    scenario: Scenario, actuals: Actuals, notes: list[str]
) -> pd.DataFrame | None:
    """Each usable day's achieved share (``share``, indexed by date) and whether
    it is only a lower bound (``censored``: the suppliers' nominations, not the
    share achieved, limited the day); ``None`` when too few days are usable.

    Usable: a working day with a cap and attempts whose attemptable queue held
    at least `_QUEUE_DAYS` days of the cap (far from running dry). The cap goes
    to what can be attempted: a cohort with work queued and no attempts (a
    halt) and an active cohort's installations waiting for their supplier's
    business readiness take none of it, so such a day still measures the share
    achieved. Its queue counts only the cohorts that attempted, less the
    installations waiting for a supplier (`_waiting`), and its ceiling only the
    nominations of suppliers with work that could be attempted (`_ceiling`).
    """
    frame = actuals.frame
    if actuals.kind != "flows" or not actuals.has("attempts"):
        return None
    if "daily_cap" not in actuals.policy_columns:
        notes.append(
            "achieved throughput not updated: the actuals do not report daily_cap "
            "(the cap each day's attempts are measured against)"
        )
        return None
    by_day = frame.groupby("date").agg(
        attempts=("attempts", "sum"), cap=("daily_cap", "first")
    )
    attempting = frame[frame["attempts"] > 0]
    if actuals.has("queued"):  # far from running dry
        waiting = _waiting(scenario, attempting)
        by_day["queued"] = (
            (attempting["queued"] - waiting).groupby(attempting["date"]).sum()
        )
        by_day = by_day[by_day["queued"] >= _QUEUE_DAYS * by_day["cap"]]
    else:
        notes.append(
            "achieved throughput: queued not reported, so days whose queue ran dry "
            "are counted too (a lower bound of the share achieved)"
        )
    by_day = by_day[(by_day["cap"] > 0) & (by_day["attempts"] > 0)]
    if len(by_day) < _MIN_DAYS:
        notes.append(
            f"achieved throughput not updated: only {len(by_day)} days on which the "
            f"share achieved alone limited the attempts (at least {_MIN_DAYS} needed)"
        )
        return None
    ceiling = _ceiling(scenario, attempting).reindex(by_day.index)
    slack = len(scenario.suppliers)  # the nominations' shares round down
    censored = by_day["attempts"] >= ceiling - slack  # NaN (no ceiling): False
    return pd.DataFrame(
        {
            "share": (by_day["attempts"] / by_day["cap"]).clip(0.0, 1.0),
            "censored": censored.to_numpy(bool),
        },
        index=by_day.index,
    )


def _ready_days(scenario: Scenario) -> list[pd.Timestamp | None]:
    """Each supplier's business-readiness date where it is a fixed date (an
    uncertain one, whose day the actuals do not show, is taken as passed)."""
    return [
        pd.Timestamp(s.business_ready) if isinstance(s.business_ready, date) else None
        for s in scenario.suppliers
    ]


def _waiting(scenario: Scenario, rows: pd.DataFrame) -> pd.Series:
    """Of each (date, cohort) row's queue, the installations an active cohort
    holds for suppliers not yet business ready: never attempted before then,
    so all of the cohort's share of them (`operations.Operations.allocate`)."""
    ready = _ready_days(scenario)
    names = [s.name for s in scenario.suppliers]
    out = pd.Series(0.0, index=rows.index)
    for cohort in scenario.cohorts:
        if cohort.mode != "active" or not cohort.suppliers:
            continue
        mine = rows["cohort"] == cohort.name
        for name, share in cohort.suppliers.items():
            day = ready[names.index(name)]
            if day is not None:
                before = mine & (rows["date"] < day)
                out[before] += share * cohort.installations
    return out


def _ceiling(scenario: Scenario, rows: pd.DataFrame) -> pd.Series:
    """By date, the most the suppliers' nominations let the cohorts that
    attempted (``rows``) attempt: the nominations of the suppliers with work
    among them that could be attempted that day. NaN where there is no such
    bound (a supplier without a nomination, or a cohort not split by supplier)."""
    suppliers = scenario.suppliers
    if not suppliers:
        return pd.Series(np.nan, index=pd.DatetimeIndex(rows["date"].unique()))
    ready = _ready_days(scenario)
    by_name = {c.name: c for c in scenario.cohorts}
    out = {}
    for when, cohorts in rows.groupby("date")["cohort"]:
        total: float = 0.0
        for j, supplier in enumerate(suppliers):
            if any(
                by_name[name].suppliers.get(supplier.name, 0) > 0
                and (
                    by_name[name].mode != "active"
                    or ready[j] is None
                    or when >= ready[j]
                )
                for name in cohorts
            ):
                nomination = supplier.daily_nomination
                total += np.nan if nomination is None else nomination
        if any(not by_name[name].suppliers for name in cohorts):
            total = np.nan
        out[when] = total
    return pd.Series(out, dtype=float)


def _censored_normal(
    values: np.ndarray, censored: np.ndarray
) -> tuple[float, float, float]:
    """Mean and sd of a normal fitted to values of which some are lower bounds
    (a Tobit model, by maximum likelihood), and the variance of that mean
    (independent days); the plain mean, sd and sd^2 / n without any.

    A lower bound says less than a value: with most days censored the mean
    is known only to lie above them, and its variance, from the likelihood's
    curvature (the observed information), is far larger than sd^2 / n.
    """
    n = len(values)
    mean, sd = float(values.mean()), float(values.std(ddof=1)) or 1e-3
    if not censored.any():
        return mean, sd, sd * sd / n
    if censored.all():  # only lower bounds: the mean is not pinned at all
        return mean, sd, math.inf

    seen, bounds = values[~censored], values[censored]
    constant = 0.5 * math.log(2 * math.pi) * len(seen)

    def negative(params: np.ndarray) -> float:
        # stats.norm's logpdf and logsf, written out: the fit calls it hundreds
        # of times, and scipy's distribution objects cost more than the sums
        mu, log_sd = params
        sigma = math.exp(log_sd)
        z = (seen - mu) / sigma
        log_values = -0.5 * float(z @ z) - len(seen) * log_sd - constant
        log_bounds = float(special.log_ndtr((mu - bounds) / sigma).sum())
        return -(log_values + log_bounds)

    fit = optimize.minimize(negative, [mean, math.log(sd)], method="Nelder-Mead")
    mu, sigma = float(fit.x[0]), float(math.exp(fit.x[1]))
    return mu, sigma, _mean_variance_of_fit(negative, fit.x, sigma * sigma / n)


def _mean_variance_of_fit(negative, at: np.ndarray, floor: float) -> float:
    """The variance of a fit's first parameter: the inverse of the negative
    log-likelihood's Hessian at ``at`` (central differences), at least
    ``floor``; infinite where the curvature does not pin it."""
    step = 1e-4
    hessian = np.empty((2, 2))
    for a in range(2):
        for b in range(2):
            da, db = np.eye(2)[a] * step, np.eye(2)[b] * step
            hessian[a, b] = (
                negative(at + da + db)
                - negative(at + da - db)
                - negative(at - da + db)
                + negative(at - da - db)
            ) / (4 * step * step)
    if not np.all(np.isfinite(hessian)) or np.linalg.det(hessian) <= 0:
        return math.inf
    variance = float(np.linalg.inv(hessian)[0, 0])
    return max(variance, floor) if variance > 0 else math.inf


def _beta_text(alpha: float, beta: float) -> str:
    return f"Beta({alpha:.1f}, {beta:.1f}), mean {alpha / (alpha + beta):.3f}"


def _throughput(scenario, data, actuals, prior_strength, notes, sources):
    capacity = scenario.capacity
    achieved = getattr(capacity, "achieved", None)
    if achieved is None and capacity.achieved_share is None:
        return []
    observed = _observed_shares(scenario, actuals, notes)
    if observed is None:
        return []
    shares = observed["share"]
    values = shares.to_numpy(float)
    limited = observed["censored"].to_numpy(bool)
    mean, sd, var_mean = _censored_normal(values, limited)
    n, var = len(values), sd * sd
    if limited.any():
        notes.append(
            f"achieved throughput: on {int(limited.sum())} of {n} days the "
            "suppliers' nominations, not the share achieved, limited the attempts: "
            "those days count as lower bounds (a censored fit)"
        )
    logit = np.log(
        np.clip(values, _CLIP, 1 - _CLIP) / (1 - np.clip(values, _CLIP, 1 - _CLIP))
    )
    # pairs of consecutive days, both seen (a lower bound's logit is the
    # bound's: a run of them would read as persistence and no innovation)
    pairs = np.flatnonzero(np.diff(shares.index.to_numpy()) == np.timedelta64(1, "D"))
    pairs = pairs[~limited[pairs] & ~limited[pairs + 1]]
    r = (
        float(np.corrcoef(logit[pairs], logit[pairs + 1])[0, 1])
        if len(pairs) >= 3 and logit[pairs].std() and logit[pairs + 1].std()
        else 0.0
    )
    r = min(max(r, 0.0), 0.99)
    n_eff = max(1.0, n * (1 - r) / (1 + r))
    if achieved is None:  # a plain daily share: its observed mean and variance
        behind = _behind(n, n_eff)
        alpha, beta = _beta_of(mean, max(var, 1e-6))
        before = str(capacity.achieved_share.model_dump(mode="json"))
        data["capacity"]["achieved_share"] = {
            "dist": "beta",
            "alpha": round(alpha, 4),
            "beta": round(beta, 4),
        }
        sources["capacity.achieved_share"] = f"calibrated from {behind}"
        return [
            InputUpdate(
                "capacity.achieved_share", before, _beta_text(alpha, beta), behind
            )
        ]
    prior = achieved.mean
    if isinstance(prior, float | int):
        a0, b0 = float(prior) * prior_strength, (1 - float(prior)) * prior_strength
    else:
        a0, b0 = prior.alpha, prior.beta
    mu0 = a0 / (a0 + b0)
    v0 = mu0 * (1 - mu0) / (a0 + b0 + 1)
    persistence, innovation = achieved.persistence, achieved.innovation_sd
    v_model = _mean_variance(shares.index, mean, persistence, innovation)
    if len(pairs) >= _MIN_PAIRS:  # the AR(1) the forecast will run with
        persistence = r
        seen_sd = float(logit[~limited].std(ddof=1))  # 30+ pairs: days to spare
        innovation = seen_sd * math.sqrt(max(1 - r * r, 0.0))
        # a persistence read from a few dozen pairs is noisy and biased low
        # (0.21-0.64 where 0.8 made the days): the mean's variance is the
        # larger of the scenario's process's and the fitted one's
        v_model = max(
            v_model, _mean_variance(shares.index, mean, persistence, innovation)
        )
    # independent days' variance of the mean (the Tobit's, for lower bounds),
    # widened for their autocorrelation, or the AR(1)'s own when larger
    v_data = max(max(var_mean, 1e-6 / n) * n / n_eff, v_model)
    n_eff = max(min(n_eff, max(var, 1e-6) / v_data), 1e-3)
    behind = _behind(n, n_eff)
    v1 = 1.0 / (1.0 / v0 + 1.0 / v_data)
    mu1 = min(max(v1 * (mu0 / v0 + mean / v_data), 1e-4), 1 - 1e-4)
    alpha, beta = _beta_of(mu1, v1)
    block = data["capacity"]["achieved"]
    block["mean"] = {"dist": "beta", "alpha": round(alpha, 4), "beta": round(beta, 4)}
    updates = [
        InputUpdate(
            "capacity.achieved.mean",
            _beta_text(a0, b0),
            _beta_text(alpha, beta),
            behind,
        )
    ]
    sources["capacity.achieved.mean"] = (
        f"calibrated from {behind}: observed mean share {mean:.3f}"
    )
    if len(pairs) >= _MIN_PAIRS:
        was = (
            f"persistence {achieved.persistence:g}, "
            f"innovation sd {achieved.innovation_sd:g}"
        )
        block["persistence"] = round(r, 4)
        block["innovation_sd"] = round(innovation, 4)
        now = f"persistence {r:.2f}, innovation sd {innovation:.2f}"
        updates.append(
            InputUpdate(
                "capacity.achieved (AR(1))",
                was,
                now,
                f"{len(pairs)} pairs of consecutive days seen (not lower bounds)",
            )
        )
        sources["capacity.achieved.persistence"] = (
            "calibrated: lag-1 autocorrelation of the logit share over "
            f"{len(pairs)} pairs of consecutive days seen (not lower bounds)"
        )
        sources["capacity.achieved.innovation_sd"] = (
            "calibrated: the seen days' logit share sd x sqrt(1 - persistence^2)"
        )
    return updates


def _behind(n: int, n_eff: float) -> str:
    worth = f"{n_eff:.0f}" if n_eff >= 1 else f"{n_eff:.1g}"
    return f"{n} days of attempts against the cap (worth {worth} independent)"


def _mean_variance(
    days: pd.DatetimeIndex, mean: float, persistence: float, innovation: float
) -> float:
    """The variance of the mean of the shares observed on ``days`` (calendar
    dates, gaps allowed) under the AR(1) on the logit scale that makes them.

    A window of days shares its persistent deviation from the long-run mean, so
    their spread about their own mean misses it: with persistence 0.8 and
    innovation sd 0.35, the spread of ten working days about their own mean,
    over ten, is an eighth of the variance of that mean. The covariance of the
    logits of days i and j is sd^2 x persistence^|t_i - t_j| (sd the stationary
    sd); on the share scale it is scaled by the squared slope of the mean share
    in the logit level, E[p (1 - p)] (delta method).
    """
    if innovation <= 0 or len(days) == 0:
        return 0.0
    sd = innovation / math.sqrt(1.0 - persistence**2)
    level = stationary_logit_mean(min(max(mean, 1e-4), 1 - 1e-4), sd)
    nodes, weights = np.polynomial.hermite.hermgauss(40)
    p = 1.0 / (1.0 + np.exp(-(level + sd * math.sqrt(2.0) * nodes)))
    slope = float(weights @ (p * (1 - p)) / math.sqrt(math.pi))
    t = ((days - days[0]) / pd.Timedelta(days=1)).to_numpy(float)
    logit_var = sd * sd * _mean_power_of_lags(t, persistence)
    return slope * slope * logit_var


def _mean_power_of_lags(t: np.ndarray, r: float) -> float:
    """The mean of r^|t_i - t_j| over all pairs (i, j), in one pass over the
    sorted times: with s_j the sum of r^(t_j - t_i) over i < j,
    s_j = r^(t_j - t_(j-1)) (s_(j-1) + 1). The pairs themselves (an n x n
    table) took gigabytes for years of daily actuals."""
    t = np.sort(t)
    n = len(t)
    gaps = r ** np.diff(t)
    total, s = float(n), 0.0
    for gap in gaps.tolist():
        s = gap * (s + 1.0)
        total += 2.0 * s
    return total / (n * n)


def _beta_of(mean: float, var: float) -> tuple[float, float]:
    """The Beta with this mean and variance (its strength at least 2)."""
    strength = max(mean * (1 - mean) / var - 1.0, 2.0)
    return mean * strength, (1 - mean) * strength
