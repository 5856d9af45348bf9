"""Calibration: learn a scenario's rates from actuals, keeping their uncertainty.

Per cohort, a conjugate Bayesian update:

- **Outcome rates.** Prior Dirichlet(N x p), centred on the scenario's rates p with a
  strength of N pseudo-attempts (default 100), or the scenario's own Dirichlet when
  its rates are already uncertain (stated evidence and prior); the attempts'
  first-level outcomes (successes, stalls, rollbacks, fix forwards, dumbs) are a
  multinomial sample, so the posterior is Dirichlet(N x p + counts). Each rate's
  marginal is Beta(alpha_i, sum(alpha) - alpha_i): its mean and 95% interval.
  Counts inferred by a class split (`migsim.evidence.classes`) are uncertain:
  the posterior keeps its mean and its concentration is lowered to carry their
  variance (`split_posterior`).
- **Stall ``then_success``.** Prior Beta(N x t, N x (1 - t)) on the scenario's t
  (its own Beta when it states one), updated with the stall completions and
  failures when both are reported; otherwise it keeps its prior.
- **Delays.** Where the actuals identify one (the stall delay from stalls and their
  resolutions, the fix-forward delay from fix forwards and restorations), a scale
  factor of the scenario's delay is fitted by maximum likelihood (resolutions as
  Poisson counts of the scheduled flows), with a profile-likelihood 95% interval.
  The retry delay is never identified: retries rejoining the queue are not reported.

The calibrated scenario carries the posteriors (``outcomes: {dist: dirichlet,
alpha: ...}``, ``then_success: {dist: beta, ...}``), drawn once per replication,
so parameter uncertainty widens every forecast made from it. Coarse actuals
(``cumulative_migrated`` only) update nothing, and say so.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter
from scipy import optimize, stats

from migsim import __version__
from migsim.common.errors import ActualsError, MigsimError
from migsim.common.source import source_sha256
from migsim.common.stats import json_number, quantile
from migsim.evidence.actuals import OUTCOME_COLUMNS, Actuals, as_of_date
from migsim.evidence.classes import normal_counts, prior_alpha, split_posterior
from migsim.evidence.inputs import InputUpdate, update_inputs
from migsim.evidence.priors import DEFAULT_PRIOR_STRENGTH
from migsim.evidence.starts import update_starts
from migsim.model.limits import MAX_CONCENTRATION
from migsim.model.scenario import (
    OUTCOMES,
    BetaProbability,
    Delay,
    Scenario,
    load_scenario,
    probability_mean,
)
from migsim.results.results import Results
from migsim.runner.runner import run

__all__ = [
    "DEFAULT_PRIOR_STRENGTH",
    "Calibration",
    "Estimate",
    "PosteriorCheck",
    "calibrate",
    "posterior_check",
]

_SECTION_OF = {"stall": "stall", "rollback": "rollback", "fix_forward": "fix_forward"}
#: Fewest resolutions from which a delay's scale is fitted.
_MIN_RESOLUTIONS = 30
_DELAY_ADAPTER: TypeAdapter = TypeAdapter(Delay)


@dataclass(frozen=True)
class Estimate:
    """Prior and posterior of one rate of one cohort.

    ``n`` is what the update saw: attempts for an outcome rate, stall resolutions
    for ``then_success``; ``observed`` the count of this outcome among them.
    """

    cohort: str
    rate: str
    prior_mean: float
    prior_low: float
    prior_high: float
    posterior_mean: float
    posterior_low: float
    posterior_high: float
    n: int
    observed: float

    def covers(self, value: float) -> bool:
        """Whether the 95% posterior interval contains ``value``."""
        return self.posterior_low <= value <= self.posterior_high


@dataclass(frozen=True)
class DelayEstimate:
    """A delay's fitted scale (1 = as in the scenario), from ``n`` resolutions.

    ``adopted``: the calibrated scenario uses the scaled delay, because the 95%
    interval of the scale excludes 1; otherwise the scenario's delay is kept.
    """

    cohort: str
    delay: str
    scale: float
    low: float
    high: float
    n: int
    prior_mean_days: float
    posterior_mean_days: float
    adopted: bool = True


@dataclass
class Calibration:
    """What `calibrate` learned: the calibrated scenario and the evidence behind it."""

    prior: Scenario
    scenario: Scenario
    actuals: Actuals
    as_of: date | None
    prior_strength: float
    estimates: list[Estimate]
    delays: list[DelayEstimate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    check: dict[str, Any] | None = None
    inputs: list[InputUpdate] = field(default_factory=list)

    @property
    def n_attempts(self) -> int:
        """Attempts behind the outcome rates, all cohorts together."""
        return sum(e.n for e in self.estimates if e.rate == "success")

    @property
    def updated(self) -> bool:
        return any(e.n for e in self.estimates)

    def table(self) -> pd.DataFrame:
        """One row per cohort x rate: prior and posterior mean and 95% interval."""
        return pd.DataFrame([e.__dict__ for e in self.estimates])

    def learned(self) -> str:
        """One sentence: what was learned from how many attempts."""
        if not self.updated:
            return (
                f"Nothing learned: {self.actuals.path} has no reported attempts "
                f"and outcomes{' up to ' + str(self.as_of) if self.as_of else ''}; "
                "the rates keep their prior."
            )
        parts = []
        for cohort in dict.fromkeys(e.cohort for e in self.estimates):
            rows = {e.rate: e for e in self.estimates if e.cohort == cohort}
            success = rows["success"]
            if not success.n:
                parts.append(f"{cohort}: no attempts, prior kept")
                continue
            text = (
                f"{cohort}: success {success.posterior_mean:.1%} "
                f"[{success.posterior_low:.1%}, {success.posterior_high:.1%}] from "
                f"{success.n:,} attempts (prior {success.prior_mean:.1%})"
            )
            stall = rows.get("then_success")
            if stall is not None and stall.n:
                text += (
                    f", stalls then succeed {stall.posterior_mean:.1%} from "
                    f"{stall.n:,} resolutions"
                )
            parts.append(text)
        until = f" up to {self.as_of}" if self.as_of else ""
        return (
            f"Learned from {self.n_attempts:,} attempts in {self.actuals.path}{until}: "
            + "; ".join(parts)
            + "."
        )

    def summary(self) -> dict[str, Any]:
        """JSON-able: prior, posteriors with 95% intervals, attempts behind each."""
        return {
            "migsim_version": __version__,
            "migsim_source_sha256": source_sha256(),
            "scenario": self.prior.name,
            "prior_scenario_sha256": self.prior.sha256,
            "calibrated_scenario_sha256": self.scenario.sha256,
            **self.actuals.provenance(),
            "actuals_first_date": self.actuals.first_date.isoformat(),
            "actuals_last_date": self.actuals.last_date.isoformat(),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "prior_strength": self.prior_strength,
            "n_attempts": self.n_attempts,
            "learned": self.learned(),
            "rates": [
                {
                    k: (round(v, 6) if isinstance(v, float) else v)
                    for k, v in e.__dict__.items()
                }
                for e in self.estimates
            ],
            "delays": [
                {
                    k: (round(v, 6) if isinstance(v, float) else v)
                    for k, v in d.__dict__.items()
                }
                for d in self.delays
            ],
            "inputs": [u.__dict__ for u in self.inputs],
            "notes": list(self.notes),
            "posterior_check": self.check,
        }

    def text(self) -> str:
        """The planner's summary: one row per rate, then delays, notes and the check."""
        lines = [
            f"Calibrated {self.prior.name} on {self.actuals.describe()}"
            + (f", up to {self.as_of}" if self.as_of else ""),
            f"Prior: the scenario's rates, worth {self.prior_strength:g} "
            "pseudo-attempts per cohort",
            "",
        ]
        header = (
            f"  {'cohort':<18}{'rate':<14}{'prior mean [95%]':>26}"
            f"{'posterior mean [95%]':>28}{'behind':>22}"
        )
        lines.append(header)
        for e in self.estimates:
            unit = "resolutions" if e.rate == "then_success" else "attempts"
            lines.append(
                f"  {e.cohort:<18}{e.rate:<14}"
                f"{_interval(e.prior_mean, e.prior_low, e.prior_high):>26}"
                f"{_interval(e.posterior_mean, e.posterior_low, e.posterior_high):>28}"
                f"{f'{e.n:,} {unit}':>22}"
            )
        for d in self.delays:
            lines.append(
                f"  {d.cohort:<18}{d.delay:<14} mean {d.prior_mean_days:.1f} -> "
                f"{d.posterior_mean_days:.1f} days (scale {d.scale:.2f} "
                f"[{d.low:.2f}, {d.high:.2f}], {d.n:,} resolutions)"
            )
        for u in self.inputs:
            lines.append(f"  {u}")
        lines += ["", self.learned()]
        lines += [f"Note: {note}" for note in self.notes]
        if self.check:
            lines.append(_check_text(self.check))
        return "\n".join(lines)


def _check_text(check: dict[str, Any]) -> str:
    """The posterior predictive check in one sentence.

    Actuals that cannot track cumulative migrated (e.g. attempts only) give no
    point to check, and coverage is then undefined (``None``): say so instead
    of formatting it.
    """
    if not check["n_points"]:
        return (
            "Posterior predictive check: no actual point to check (the actuals "
            "cannot track cumulative migrated: that needs the migrated and "
            "impaired states, or successes, stall completions and fix forwards, "
            "or cumulative_migrated)."
        )
    return (
        f"Posterior predictive check: {check['inside_p5_p95']} of "
        f"{check['n_points']} actual points inside the simulated P5-P95 band "
        f"of cumulative migrated ({check['coverage_p5_p95']:.0%}), "
        f"{check['coverage_p10_p90']:.0%} inside P10-P90."
    )


def _interval(mean: float, low: float, high: float) -> str:
    return f"{mean:.4f} [{low:.4f}, {high:.4f}]"


# --------------------------------------------------------------------------- update
def _beta_interval(a: float, b: float) -> tuple[float, float, float]:
    """Mean and central 95% interval of Beta(a, b), degenerate when a or b is 0."""
    if b <= 0:
        return 1.0, 1.0, 1.0
    if a <= 0:
        return 0.0, 0.0, 0.0
    mean = a / (a + b)
    try:
        low, high = stats.beta.ppf([0.025, 0.975], a, b)
    except OverflowError:  # Boost, for a and b near the smallest float (1e-308)
        low = high = math.nan
    if math.isnan(low) or math.isnan(high):  # the limit as a, b -> 0: Bernoulli
        low = 0.0 if 1 - mean > 0.025 else 1.0
        high = 1.0 if mean > 0.025 else 0.0
    return mean, float(low), float(high)


def calibrate(
    scenario: Scenario | str,
    actuals: Actuals,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    as_of: date | None = None,
) -> Calibration:
    """Update a scenario's rates (and identified delays) from actuals.

    Parameters
    ----------
    scenario
        The prior: its rates are the prior means.
    actuals
        From `read_actuals` (installations).
    prior_strength
        How many attempts the prior is worth (pseudo-attempts), > 0.
    as_of
        Use only the actuals dated on or before this date, one of the
        scenario's (its start to its horizon's last day).

    Returns
    -------
    Calibration
        With ``.scenario`` the calibrated scenario.

    Raises
    ------
    ActualsError
        When the actuals show an outcome the scenario has no section for (e.g. fix
        forwards without a restoration delay).
    MigsimError
        When ``as_of`` is outside the scenario's dates.
    """
    scenario = load_scenario(scenario)
    # inf or 1e11 came back as "alpha: Input should be a valid number" or over
    # its limit, naming fields the caller never gave; text or None as "'>' not
    # supported"; True was a prior worth one attempt
    if isinstance(prior_strength, bool) or not isinstance(prior_strength, Real):
        raise TypeError(f"prior_strength must be a number, not {prior_strength!r}")
    if not 0 < prior_strength <= MAX_CONCENTRATION:
        raise ValueError(
            f"prior_strength must be above 0 and at most {MAX_CONCENTRATION:,.0f} "
            f"(pseudo-attempts), not {prior_strength!r}"
        )
    # outside the scenario's dates, as forecast and backtest refuse: before its
    # start no actual is used; after its end every actual up to then was, a
    # date past the horizon taken without a word
    as_of = None if as_of is None else as_of_date(as_of)
    if as_of is not None and not scenario.start_date <= as_of <= scenario.end_date:
        raise MigsimError(
            f"--as-of {as_of}: must be on or after the scenario's start "
            f"{scenario.start_date} and on or before its end {scenario.end_date}"
        )
    used = actuals.up_to(as_of) if as_of is not None else actuals
    notes: list[str] = []
    if actuals.note:
        notes.append(actuals.note)
    estimates: list[Estimate] = []
    delays: list[DelayEstimate] = []
    data = scenario.to_dict()
    sources = dict(data.get("sources", {}))
    coarse = used.kind == "coarse"
    if coarse:
        notes.append(
            f"{actuals.path} holds coarse cumulative figures only: no rate is "
            "updated (the scenario's rates are kept as they are)"
        )
    for index, (cohort_data, cohort) in enumerate(
        zip(data["cohorts"], scenario.cohorts, strict=True)
    ):
        name = cohort.name
        prior = cohort.outcomes.mean()
        frame = used.cohort_frame(name) if not coarse else used.frame.iloc[:0]
        if not coarse:
            _check_sections(cohort, frame, used, actuals.path)
        counts_n = (
            None
            if coarse
            else normal_counts(scenario, index, frame, used, prior, notes)
        )
        none = np.zeros(len(OUTCOMES))
        counts, n, spread = counts_n if counts_n is not None else (none, 0, none)
        alpha_prior = prior_alpha(cohort.outcomes, prior, prior_strength)
        alpha, lowered = split_posterior(alpha_prior, counts, spread)
        if lowered > 1.0005:
            notes.append(
                f"{name}: the class split's uncertainty lowers the outcome rates' "
                f"concentration {lowered:.2f}-fold (means kept; law of total "
                "variance, the rate it widens most sets it)"
            )
        for i, outcome in enumerate(OUTCOMES):
            pm, pl, ph = _beta_interval(
                alpha_prior[i], alpha_prior.sum() - alpha_prior[i]
            )
            qm, ql, qh = _beta_interval(alpha[i], alpha.sum() - alpha[i])
            estimates.append(
                Estimate(name, outcome, pm, pl, ph, qm, ql, qh, n, float(counts[i]))
            )
        if not coarse:
            cohort_data["outcomes"] = {
                "dist": "dirichlet",
                "alpha": {
                    o: json_number(a, ints="rounded")
                    for o, a in zip(OUTCOMES, alpha, strict=True)
                },
            }
            old = [k for k in sources if k.startswith(f"cohorts.{name}.outcomes")]
            was = "; ".join(f"{k.rsplit('.', 1)[-1]}: {sources.pop(k)}" for k in old)
            sources[f"cohorts.{name}.outcomes"] = (
                f"calibrated by migsim {__version__} from {n:,} attempts in "
                f"{actuals.path}"
                + (f" up to {as_of}" if as_of else "")
                + f"; prior {prior_strength:g} pseudo-attempts centred on the "
                "scenario's "
                "rates" + (f" ({was})" if was else "")
            )
        if cohort.stall is not None:
            _update_then_success(
                cohort,
                cohort_data,
                frame,
                used,
                prior_strength,
                estimates,
                notes,
                sources,
                coarse,
                as_of,
            )
        if not coarse:
            delays += _fit_delays(
                cohort, cohort_data, frame, used, scenario, notes, sources
            )
    inputs = update_inputs(scenario, data, used, prior_strength, notes, sources)
    inputs += update_starts(scenario, data, used, as_of or used.last_date, sources)
    data["sources"] = sources
    calibrated = load_scenario(data)
    return Calibration(
        scenario,
        calibrated,
        actuals,
        as_of,
        float(prior_strength),
        estimates,
        delays,
        notes,
        inputs=inputs,
    )


def _check_sections(cohort, frame: pd.DataFrame, actuals: Actuals, path: str) -> None:
    """Every outcome the actuals report needs its section (its delay)."""
    for i, outcome in enumerate(OUTCOMES):
        section = _SECTION_OF.get(outcome)
        column = OUTCOME_COLUMNS[i]
        seen = float(frame[column].sum()) if actuals.has(column) else 0.0
        if section and seen > 0 and getattr(cohort, section) is None:
            raise ActualsError(
                f"{path}: cohort {cohort.name}: the actuals show {seen:,.0f} "
                f"{OUTCOME_COLUMNS[i]} but the scenario has no '{section}' section "
                "(its delay): add one to calibrate"
            )


def _update_then_success(
    cohort,
    cohort_data,
    frame,
    actuals,
    strength,
    estimates,
    notes,
    sources,
    coarse,
    as_of,
) -> None:
    name = cohort.name
    then = cohort.stall.then_success
    if isinstance(then, BetaProbability):  # already uncertain: its own prior
        a0, b0 = float(then.alpha), float(then.beta)
    else:
        prior_t = probability_mean(then)
        a0, b0 = strength * prior_t, strength * (1 - prior_t)
    known = not coarse and actuals.has("stall_completions", "stall_failures")
    done = float(frame["stall_completions"].sum()) if known else 0.0
    failed = float(frame["stall_failures"].sum()) if known else 0.0
    if failed > 0 and cohort.rollback is None:
        raise ActualsError(
            f"{actuals.path}: cohort {name}: the actuals show {failed:,.0f} "
            "stall_failures but the scenario has no 'rollback' section: add one"
        )
    pm, pl, ph = _beta_interval(a0, b0)
    qm, ql, qh = _beta_interval(a0 + done, b0 + failed)
    estimates.append(
        Estimate(
            name,
            "then_success",
            pm,
            pl,
            ph,
            qm,
            ql,
            qh,
            int(round(done + failed)),
            done,
        )
    )
    if coarse:
        return
    if not known:
        notes.append(
            f"{name}: stall then_success keeps its prior (stall completions "
            "and failures not reported)"
        )
        return
    cohort_data["stall"]["then_success"] = {
        "dist": "beta",
        "alpha": json_number(a0 + done, ints="rounded"),
        "beta": json_number(b0 + failed, ints="rounded"),
    }
    key = f"cohorts.{name}.stall.then_success"
    sources[key] = (
        f"calibrated from {done + failed:,.0f} stall resolutions in "
        f"{actuals.path}"
        + (f" up to {as_of}" if as_of else "")
        + f"; prior {strength:g} pseudo-resolutions"
        + (f" ({sources[key]})" if key in sources else "")
    )


# --------------------------------------------------------------------------- delays
def _scaled(delay: dict[str, Any], scale: float) -> dict[str, Any]:
    """A delay's dict with its days multiplied by ``scale`` (at least 1 day)."""
    out = dict(delay)
    if delay["dist"] == "fixed":
        out["days"] = max(1, round(delay["days"] * scale))
    elif delay["dist"] == "uniform":
        out["low"] = max(1, round(delay["low"] * scale))
        out["high"] = max(out["low"], round(delay["high"] * scale))
    elif delay["dist"] == "triangular":
        low = max(1.0, delay["low"] * scale)
        out["low"], out["mode"], out["high"] = (
            json_number(low, ints="rounded"),
            json_number(max(low, delay["mode"] * scale), ints="rounded"),
            json_number(max(low, delay["high"] * scale), ints="rounded"),
        )
    elif delay["dist"] == "lognormal":
        out["median"] = json_number(max(1.0, delay["median"] * scale), ints="rounded")
    return out


def _delay_mean(delay: dict[str, Any]) -> float:
    return _DELAY_ADAPTER.validate_python(delay).mean


@functools.lru_cache(maxsize=512)
def _delay_pmf(items: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The pmf of a delay given as sorted (key, value) pairs (cached: the scale grid
    repeats delays once rounded to whole days)."""
    return _DELAY_ADAPTER.validate_python(dict(items)).pmf()


def _expected_resolutions(
    starts: np.ndarray,
    delay: dict[str, Any],
    n_days: int,
    not_before: int | None = None,
) -> np.ndarray:
    """Expected resolutions per day of items started per day with this delay."""
    days, probs = _delay_pmf(tuple(sorted(delay.items())))
    if not_before is None:  # a convolution of the starts with the delay's pmf
        kernel = np.zeros(int(days[-1]) + 1)
        kernel[days] = probs
        return np.convolve(starts, kernel)[:n_days]
    out = np.zeros(n_days)
    for start in np.flatnonzero(starts):
        due = np.maximum(start + days, not_before)
        keep = due < n_days
        np.add.at(out, due[keep], starts[start] * probs[keep])
    return out


def _fit_delays(cohort, cohort_data, frame, actuals, scenario, notes, sources):
    """Fit the scale of the stall and fix-forward delays where the actuals allow."""
    out = []
    specs = (
        (
            "stall",
            "resolves_after_days",
            "stalls",
            ("stall_completions", "stall_failures"),
        ),
        ("fix_forward", "restored_after_days", "fix_forwards", ("restorations",)),
    )
    for section, field_name, started, ended in specs:
        if getattr(cohort, section) is None:
            continue
        if not actuals.has(started, *ended) or frame.empty:
            notes.append(
                f"{cohort.name}: {section} delay kept (the actuals do not report "
                f"{started} and {' and '.join(ended)})"
            )
            continue
        day_index = (
            frame["date"] - pd.Timestamp(scenario.start_date)
        ).dt.days.to_numpy()
        n_days = int(day_index.max()) + 1
        starts = np.zeros(n_days)
        ends = np.zeros(n_days)
        np.add.at(starts, day_index, frame[started].to_numpy())
        np.add.at(ends, day_index, frame[list(ended)].sum(axis=1).to_numpy())
        if ends.sum() < _MIN_RESOLUTIONS:
            notes.append(
                f"{cohort.name}: {section} delay kept (only {ends.sum():,.0f} "
                f"resolutions reported, fewer than {_MIN_RESOLUTIONS})"
            )
            continue
        delay = cohort_data[section][field_name]
        release = None
        if section == "stall" and isinstance(cohort.stall.release_on, date):
            release = scenario.day_of(cohort.stall.release_on)  # uncertain: ignored
        fit = _fit_scale(starts, ends, delay, release)
        if fit is None:
            notes.append(
                f"{cohort.name}: {section} delay kept (not identified by the "
                "actuals: the likelihood is flat in its scale)"
            )
            continue
        scale, low, high = fit
        adopted = not low <= 1.0 <= high
        new = _scaled(delay, scale) if adopted else delay
        if adopted:  # the actuals show the scenario's delay is off
            cohort_data[section][field_name] = new
            sources[f"cohorts.{cohort.name}.{section}.{field_name}"] = (
                f"scale {scale:.2f} (95% {low:.2f}-{high:.2f}) of the scenario's "
                f"delay, fitted to {ends.sum():,.0f} resolutions in {actuals.path}"
            )
        else:
            notes.append(
                f"{cohort.name}: {section} delay kept: the actuals agree with it "
                f"(fitted scale {scale:.2f}, 95% {low:.2f}-{high:.2f}, includes 1)"
            )
        out.append(
            DelayEstimate(
                cohort.name,
                f"{section}_delay",
                scale,
                low,
                high,
                int(ends.sum()),
                _delay_mean(delay),
                _delay_mean(new),
                adopted,
            )
        )
    return out


def _fit_scale(
    starts: np.ndarray, ends: np.ndarray, delay: dict[str, Any], release: int | None
) -> tuple[float, float, float] | None:
    """Maximum-likelihood scale of a delay, resolutions taken as Poisson counts.

    The profile log-likelihood is evaluated on a grid of scales (0.25x to 4x); the
    95% interval is where it lies within 1.92 of its maximum. ``None`` when the
    likelihood barely changes over the grid (nothing to learn).
    """
    grid = np.exp(np.linspace(math.log(0.25), math.log(4.0), 81))
    loglik = np.empty(len(grid))
    for i, scale in enumerate(grid):
        expected = _expected_resolutions(
            starts, _scaled(delay, scale), len(ends), release
        )
        expected = np.maximum(expected, 1e-9)
        loglik[i] = float(np.sum(ends * np.log(expected) - expected))
    if loglik.max() - loglik.min() < 2.0:
        return None
    best = int(np.argmax(loglik))
    if best > 0 and best < len(grid) - 1:  # refine between the neighbours

        def negative(log_scale: float) -> float:
            expected = _expected_resolutions(
                starts, _scaled(delay, math.exp(log_scale)), len(ends), release
            )
            expected = np.maximum(expected, 1e-9)
            return -float(np.sum(ends * np.log(expected) - expected))

        result = optimize.minimize_scalar(
            negative,
            bounds=(math.log(grid[best - 1]), math.log(grid[best + 1])),
            method="bounded",
        )
        scale = math.exp(result.x)
        peak = max(-result.fun, loglik[best])
    else:
        scale, peak = float(grid[best]), float(loglik[best])
    inside = grid[loglik >= peak - 1.92]
    low, high = float(inside.min()), float(inside.max())
    return scale, min(low, scale), max(high, scale)


# --------------------------------------------------------------------------- check
@dataclass(frozen=True)
class PosteriorCheck:
    """What the check chart (``<name>.check.png``) draws.

    Attributes
    ----------
    bands
        ``date, p5, p10, p50, p90, p95`` of the calibrated scenario's cumulative
        migrated (all cohorts).
    points
        The actuals' ``date, cumulative_migrated``; ``None`` when they cannot
        track it.
    name
        The scenario's name, for the title.
    """

    bands: pd.DataFrame
    points: pd.DataFrame | None
    name: str


def posterior_check(
    calibration: Calibration,
    replications: int = 200,
    seed: int | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], PosteriorCheck]:
    """Posterior predictive check: the actuals against the calibrated scenario's bands.

    Runs the calibrated scenario from its start and compares the actual cumulative
    migrated (all cohorts) on each reported date with the simulated P5-P95 and
    P10-P90 bands. Returns the figures (also stored on the calibration) and the
    bands and points the check chart draws
    (`migsim.output.evidence_files.posterior_check_figure`). ``progress`` is
    called with the replications each finished batch adds.
    """
    results = run(
        calibration.scenario,
        replications=replications,
        seed=seed,
        workers=workers,
        fail_fast=True,
        progress=progress,
    )
    figures, bands, points = _check_figures(calibration, results)
    calibration.check = figures
    return figures, PosteriorCheck(bands, points, calibration.prior.name)


def _check_figures(calibration: Calibration, results: Results):
    actuals = calibration.actuals
    if calibration.as_of is not None:
        actuals = actuals.up_to(calibration.as_of)
    points = actuals.cumulative_migrated() if actuals.can_track_migrated() else None
    bands = results.bands("cumulative_migrated", quantiles=(0.05, 0.1, 0.5, 0.9, 0.95))
    series = results.series("cumulative_migrated").sum(axis=2)
    n = inside90 = inside80 = 0
    if points is not None:
        days = (points["date"] - pd.Timestamp(results.scenario.start_date)).dt.days
        for day, actual in zip(days, points["cumulative_migrated"], strict=True):
            n += 1
            if day >= series.shape[1]:
                continue
            values = series[:, day]
            inside90 += quantile(values, 0.05) <= actual <= quantile(values, 0.95)
            inside80 += quantile(values, 0.10) <= actual <= quantile(values, 0.90)
    figures = {
        "replications": results.n_replications,
        "seed": results.seed,
        "n_points": n,
        "inside_p5_p95": int(inside90),
        "inside_p10_p90": int(inside80),
        "coverage_p5_p95": inside90 / n if n else None,
        "coverage_p10_p90": inside80 / n if n else None,
    }
    return figures, bands, points
