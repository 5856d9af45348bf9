"""Keep a cohort's classes apart when learning its normal rates from actuals.

Actuals report a cohort's flows summed over its sub-populations: the normal
installations, the hard cases (their own worse rates), the excluded ones (every
attempt rolls back until abandoned), attempts made on volume-stressed days (stalls
rise) and latent-defect hits. Folding them all into one rate biases the normal
class: on one replication of ``nov2019_operations``'s own output, itron_active's
success comes out at 0.868 against the scenario's 0.93, and the calibrated
scenario then doubles its rollbacks, because the hard and excluded classes are
still simulated on top of the folded rates.

So calibration learns the normal class's rates from the normal class's flows
only. The class of an attempt is not reported, so it is inferred (an EM
algorithm over a mean-field replay of the cohort's queue):

- **Replay.** Day by day, the reported attempts are taken as the engine takes
  them: due retries first (oldest due first, more attempts made first, then by
  class), then first attempts shared between classes in proportion to their
  first-attempt queues. Each class's failures (rollbacks, failed stalls,
  recovered dumbs) come back as retries after the scenario's delays, so the
  retry pool fills with hard and excluded installations as it does in a run.
  Stalls fail at the share the reported stall resolutions show (`_then_success`)
  and wait for the ELS desk to work their case when the desk gates them
  (`migsim.evidence.desk`). One queue per cohort stands for the engine's one per
  supplier segment: the classes are shared alike between segments and the
  segments' retries go first in each, so pooling them changes nothing measurable
  (nov2019_operations at known rates, three suppliers, 40 runs: the rolled
  back's mean attempts made within 0.015 of the exact state's on average).
- **E-step.** Each day's reported outcome counts are shared between classes in
  proportion to (the class's expected attempts that day) x (its rate of that
  outcome): the normal class at the current estimate, the hard and excluded
  classes at the scenario's rates (assumptions, not learned here), all at their
  stressed rates on a stressed day. The shares found feed the replay's retries.
- **M-step.** The normal rates are the normal class's counts on calm days over
  its attempts on those days. Stressed days' counts are set aside (their rates
  are the stressed ones), and so are reported defect hits.

The normal class's counts on calm days then enter the Dirichlet update as the
observed multinomial sample, but they are inferred, not observed: which class
a day's dumbs came from is uncertain, and a hard case's failure misread as a
normal one also misplaces its retries, and with them the classes' attempts on
later days. So the split is imputed again (``_IMPUTATIONS`` times, at the EM's
rates): each day's count of each outcome is shared between the classes by a
multinomial draw at the E-step's weights, and the replay retries what each
draw gave each class. The spread of the normal class's counts over the
imputations, or where larger the binomial noise of the other classes' counts
(`_others_variance`), is ``ClassSplit.variance``; `split_posterior` carries it
into the posterior by the law of total variance (see there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd

from migsim.evidence.actuals import OUTCOME_COLUMNS, Actuals
from migsim.evidence.desk import WorkedDays, worked_days
from migsim.evidence.priors import DEFAULT_PRIOR_STRENGTH
from migsim.model.scenario import (
    OUTCOMES,
    BetaProbability,
    Cohort,
    DirichletOutcomes,
    Scenario,
    probability_mean,
)
from migsim.sim.delays import cached_pmf
from migsim.sim.segments import plan_segments

__all__ = [
    "ClassSplit",
    "class_kinds",
    "has_classes",
    "in_flight_by_attempts",
    "normal_class_counts",
    "normal_counts",
    "prior_alpha",
    "row_counts",
    "split_posterior",
]

#: EM stops when a step moves no normal rate by more than this, or after
#: _MAX_ROUNDS passes of the replay.
_TOLERANCE = 2e-5
_MAX_ROUNDS = 25
#: Imputations of the class split behind its variance, from a fixed seed (the
#: same actuals give the same calibration). They run as worlds of one replay
#: pass, so more cost little: on ``nov2019_operations``' itron_active, over six
#: seeds, the variances' coefficient of variation was 0.16-0.23 with 40 and
#: 0.04-0.10 with 200 (about 0.2 s more), and a calibration's widths should
#: not turn on the seed.
_IMPUTATIONS = 200
_IMPUTATION_SEED = 20191113


@dataclass(frozen=True)
class ClassSplit:
    """What the normal class did, as inferred from a cohort's actuals.

    Attributes
    ----------
    counts
        The normal class's first-level outcomes on calm days (`OUTCOMES` order).
    attempts
        Their sum: the normal class's attempts on calm days.
    set_aside
        Attempts not used, by why: ``hard``, ``excluded`` (their classes),
        ``stressed`` (the normal class's attempts on volume-stressed days) and
        ``defect`` (reported latent-defect hits).
    rounds
        Passes of the replay the EM took to converge.
    variance
        The variance of each of ``counts`` from the split (`OUTCOMES` order),
        over imputations of it (see the module's docstring).
    """

    counts: np.ndarray
    attempts: float
    set_aside: dict[str, float]
    rounds: int
    variance: np.ndarray

    def describe(self, cohort: str, total: float) -> str:
        """One sentence for the calibration's notes."""
        parts = [
            f"{_WHY[k]} {v:,.0f}" for k, v in self.set_aside.items() if round(v) > 0
        ]
        return (
            f"{cohort}: normal rates learned from the normal class's "
            f"{self.attempts:,.0f} of {total:,.0f} attempts; set aside "
            + (", ".join(parts) if parts else "none")
            + " (classes told apart by EM over a replay of the queue at the "
            "scenario's hard and excluded rates)"
        )


_WHY = {
    "hard": "hard cases",
    "excluded": "excluded",
    "stressed": "volume-stressed",
    "defect": "defect hits",
}


def row_counts(
    frame: pd.DataFrame,
    actuals: Actuals,
    prior: np.ndarray,
    cohort: str,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per reported row: first-level outcome counts (rows x `OUTCOMES`) and attempts.

    Outcome columns not reported share each row's unexplained attempts in
    proportion to the prior rates (approximate, and said in ``notes``); without
    attempts they cannot be inferred: ``None`` (no update).
    """
    present = [c for c in OUTCOME_COLUMNS if actuals.has(c)]
    counts = np.zeros((len(frame), len(OUTCOME_COLUMNS)))
    for i, c in enumerate(OUTCOME_COLUMNS):
        if c in present:
            counts[:, i] = frame[c].to_numpy(dtype=float)
    if len(present) == len(OUTCOME_COLUMNS):
        attempts = (
            frame["attempts"].to_numpy(dtype=float)
            if actuals.has("attempts")
            else counts.sum(axis=1)
        )
        return counts, attempts
    if not actuals.has("attempts"):
        if present:
            notes.append(
                f"{cohort}: outcome rates not updated: without attempts, the "
                f"missing columns ({', '.join(set(OUTCOME_COLUMNS) - set(present))}) "
                "cannot be inferred"
            )
        return None
    attempts = frame["attempts"].to_numpy(dtype=float)
    missing = [i for i, c in enumerate(OUTCOME_COLUMNS) if c not in present]
    lumps = attempts - counts.sum(axis=1)
    lump = float(lumps.sum())
    weights = prior[missing]
    if lump > 0 and weights.sum() <= 0:
        notes.append(
            f"{cohort}: outcome rates not updated: {lump:,.0f} attempts have "
            "unreported outcomes that the prior rules out"
        )
        return None
    if lump > 0:
        counts[:, missing] = np.maximum(lumps, 0)[:, None] * weights / weights.sum()
        notes.append(
            f"{cohort}: {', '.join(OUTCOME_COLUMNS[i] for i in missing)} not "
            f"reported: their {lump:,.0f} attempts are split in proportion to the "
            "prior rates (approximate)"
        )
    return counts, attempts


def normal_counts(
    scenario: Scenario,
    index: int,
    frame: pd.DataFrame,
    actuals: Actuals,
    prior: np.ndarray,
    notes: list[str],
) -> tuple[np.ndarray, int, np.ndarray] | None:
    """The counts the normal outcome rates learn from, their variance from the
    class split (zeros without classes), or None (no update).

    A cohort with hard cases, exclusions, volume-stressed days or latent defects
    reports their flows mixed with the normal class's: only the normal class's
    calm-day counts are kept (see the module's docstring), so the calibrated
    scenario does not simulate those classes twice.
    """
    cohort = scenario.cohorts[index]
    rows = row_counts(frame, actuals, prior, cohort.name, notes)
    if rows is None:
        return None
    counts, attempts = rows
    if not has_classes(cohort):
        return counts.sum(axis=0), int(round(attempts.sum())), np.zeros(len(OUTCOMES))
    split = normal_class_counts(scenario, index, frame, counts, actuals.frame)
    notes.append(split.describe(cohort.name, float(attempts.sum())))
    return split.counts, int(round(split.attempts)), split.variance


def split_posterior(
    prior: np.ndarray, counts: np.ndarray, variance: np.ndarray
) -> tuple[np.ndarray, float]:
    """The Dirichlet alphas of the normal rates when ``counts`` are inferred with
    ``variance`` (`ClassSplit.variance`), and the factor by which the
    concentration was lowered (1: not at all).

    By the law of total variance, each rate's posterior variance is the
    Dirichlet's given the counts, m(1 - m)/(S + 1) with m = (prior + counts)/S,
    plus the variance of its mean (prior_o + c_o)/(S0 + sum(c)) over the
    split, by the delta method ((1 - m_o)^2 V_o + m_o^2 sum_(j != o) V_j)/S^2
    (the outcomes are shared independently). A Dirichlet has one
    concentration for all five rates: the mean is kept and the concentration
    set to the lowest any rate's variance asks for, so every rate is at least
    as uncertain as the split makes it; the cost is that rates the split hardly
    touches (success, on ``nov2019_operations``) come out wider than theirs.
    """
    alpha = prior + counts
    total = float(alpha.sum())
    if total <= 0 or not np.any(variance > 0):
        return alpha, 1.0
    mean = alpha / total
    given = mean * (1 - mean) / (total + 1)
    spread = (
        (1 - mean) ** 2 * variance + mean**2 * (variance.sum() - variance)
    ) / total**2
    inner = (mean > 0) & (mean < 1) & (given + spread > 0)
    if not inner.any():
        return alpha, 1.0
    wanted = mean[inner] * (1 - mean[inner]) / (given + spread)[inner] - 1
    concentration = min(total, float(wanted.min()))
    return mean * concentration, total / concentration


def has_classes(cohort: Cohort) -> bool:
    """Whether a cohort's flows mix more than its normal class's outcomes."""
    return bool(
        cohort.hard is not None
        or cohort.excluded is not None
        or cohort.volume_failures is not None
        or cohort.latent_defects
    )


@dataclass
class _Class:
    """One class of the cohort, summed over its supplier segments."""

    kind: str
    installations: int
    rates: np.ndarray
    stressed_rates: np.ndarray
    attempted: bool  # False: excluded up front, never attempted


def class_kinds(scenario: Scenario, index: int) -> list[str]:
    """The kinds of a cohort's classes in the replay's order (normal first)."""
    return [c.kind for c in _cohort_classes(scenario, index)]


def _cohort_classes(scenario: Scenario, index: int) -> list[_Class]:
    out: dict[str, _Class] = {}
    for segment in plan_segments(scenario):
        if segment.cohort != index:
            continue
        for c in segment.classes:
            if c.kind in out:
                out[c.kind].installations += c.installations
            else:
                out[c.kind] = _Class(
                    c.kind,
                    c.installations,
                    np.array(c.rates, dtype=float),
                    np.array(c.stressed_rates, dtype=float),
                    c.excluded != "up_front",
                )
    normal = out.pop("normal", None)
    return ([normal] if normal is not None else []) + list(out.values())


def _stressed_days(
    cohort: Cohort, scenario: Scenario, frame: pd.DataFrame, every: pd.DataFrame
) -> np.ndarray:
    """Per row of ``frame``: was the cohort volume-stressed that day?

    From a reported ``stressed_attempts`` column when there is one (a run's daily
    has it); else from the rule: the day's attempts (all cohorts' or the
    cohort's, as ``counted`` says) above ``above_attempts``, before ``until``
    when that is a fixed date (an uncertain ``until`` is not known: the rule is
    applied throughout, which sets aside at most a few calm days).
    """
    spec = cohort.volume_failures
    if spec is None:
        return np.zeros(len(frame), dtype=bool)
    if "stressed_attempts" in frame.columns:
        return frame["stressed_attempts"].to_numpy() > 0
    if spec.counted == "all":
        totals = every.groupby("date")["attempts"].sum()
        count = frame["date"].map(totals).to_numpy()
    else:
        count = frame["attempts"].to_numpy()
    out = count > spec.above_attempts
    if isinstance(spec.until, date):
        out &= (frame["date"] < pd.Timestamp(spec.until)).to_numpy()
    return out


def normal_class_counts(
    scenario: Scenario,
    index: int,
    frame: pd.DataFrame,
    counts: np.ndarray,
    every: pd.DataFrame,
) -> ClassSplit:
    """The normal class's calm-day outcome counts of one cohort (see module doc).

    Parameters
    ----------
    scenario, index
        The prior scenario and the cohort's index in it.
    frame
        The cohort's actuals rows (``date``, ``attempts`` and optional
        ``stressed_attempts``, ``defect_hits``), one per reported date.
    counts
        Per row, the first-level outcome counts (`OUTCOMES` order).
    every
        All cohorts' rows (for a stress rule counted over all cohorts).
    """
    replay, rows, defect = _replay_of(scenario, index, frame, counts, every)
    shares, rounds = _expectation_maximisation(replay, rows)
    calm = ~rows.stressed
    normal = shares[calm, 0, :].sum(axis=0)
    variance = np.maximum(
        _imputed_variance(replay, rows, normal, index),
        _others_variance(replay.classes, shares[calm]),
    )
    by_class = shares.sum(axis=(0, 2))
    classes = replay.classes
    set_aside = {c.kind: float(by_class[k]) for k, c in enumerate(classes) if k}
    set_aside["stressed"] = float(shares[~calm, 0, :].sum())
    set_aside["defect"] = defect
    return ClassSplit(normal, float(normal.sum()), set_aside, rounds, variance)


def _imputed_variance(
    replay: _Replay, rows: _Rows, normal: np.ndarray, index: int
) -> np.ndarray:
    """The variance of the normal class's calm-day counts over ``_IMPUTATIONS``
    draws of the split at the EM's normal rates (zeros without counts)."""
    if normal.sum() <= 0:
        return np.zeros(len(normal))
    calm = ~rows.stressed
    replay.rng = np.random.default_rng([_IMPUTATION_SEED, index])
    try:
        shares = replay.run(*rows, normal / normal.sum(), worlds=_IMPUTATIONS)
        draws = shares[calm, :, 0, :].sum(axis=0)  # imputation x outcome
    finally:
        replay.rng = None
    return draws.var(axis=0, ddof=1)


def _others_variance(classes: list[_Class], shares: np.ndarray) -> np.ndarray:
    """The binomial variance of the other classes' counts, by outcome
    (``shares``: calm rows x classes x outcomes, at the EM's rates): the
    normal class's counts are what their expected counts leave, so their
    noise is the normal class's too. The imputations, drawn at fixed rates,
    give about n_normal * n_other / (n_normal + n_other) an outcome and miss
    it where the normal class has few (nov2019_operations, 29 Feb 2020: 926
    hard attempts roll back 157 +- 11 times beside ~30 normal rollbacks,
    imputed +- 5); `normal_class_counts` keeps the larger of the two."""
    expected = shares[:, 1:, :].sum(axis=0)  # class x outcome
    rates = np.array([c.rates for c in classes[1:]], dtype=float).reshape(
        expected.shape
    )
    return (expected * (1.0 - rates)).sum(axis=0)


def _expectation_maximisation(replay: _Replay, rows: _Rows) -> tuple[np.ndarray, int]:
    """Each row's outcome counts shared by class (rows, classes, 5) at the EM's
    normal rates, from the replay's own (the scenario's) as the start; and the
    passes of the replay taken.

    Plain EM crawls here: the normal class's rollback rate against the hard
    class's is a weakly identified direction (on ``nov2019_operations`` it
    moved 0.0069 to 0.0079 over 30 rounds, 3e-5 a round). So its steps are
    extrapolated (SQUAREM, Varadhan and Roland 2008, scheme S3): two EM steps
    give the direction and its curvature, the jump is along them, and one
    more EM step from the jump keeps it stable. A jump that leaves the
    simplex is pulled back towards the plain second step.
    """
    calm = ~rows.stressed

    def step(estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shares = replay.run(*rows, estimate)[:, 0]
        normal = shares[calm, 0, :].sum(axis=0)
        return shares, normal / normal.sum() if normal.sum() > 0 else estimate

    estimate = replay.classes[0].rates.copy()
    shares, new = step(estimate)
    passes = 1
    while np.abs(new - estimate).max() >= _TOLERANCE and passes + 2 <= _MAX_ROUNDS:
        _, second = step(new)
        r = new - estimate
        v = second - new - r
        alpha = -float(np.linalg.norm(r)) / max(float(np.linalg.norm(v)), 1e-300)
        alpha = min(alpha, -1.0)
        jump = estimate - 2 * alpha * r + alpha**2 * v
        for _ in range(8):  # pull back towards ``second`` (alpha = -1)
            if jump.min() >= 0:
                break
            alpha = (alpha - 1) / 2
            jump = estimate - 2 * alpha * r + alpha**2 * v
        if jump.min() < 0:
            jump = second
        estimate = jump / jump.sum()
        shares, new = step(estimate)
        passes += 2
    return shares, passes


def prior_alpha(outcomes, prior: np.ndarray, strength: float) -> np.ndarray:
    """The prior's Dirichlet alphas: the scenario's own when its rates are
    already uncertain (stated evidence and prior, or an earlier calibration:
    do not calibrate again on actuals it already holds), else ``strength``
    pseudo-attempts at its rates."""
    if isinstance(outcomes, DirichletOutcomes):
        return np.array([getattr(outcomes.alpha, o) for o in OUTCOMES], dtype=float)
    return strength * prior


class _Rows(NamedTuple):
    """What the replay takes per reported row on or after the start: day number,
    attempts and outcome counts (reported defect hits taken out of the dumbs),
    whether the day was stressed."""

    day: np.ndarray
    attempts: np.ndarray
    counts: np.ndarray
    stressed: np.ndarray


def _replay_of(
    scenario: Scenario,
    index: int,
    frame: pd.DataFrame,
    counts: np.ndarray,
    every: pd.DataFrame,
) -> tuple[_Replay, _Rows, float]:
    """A cohort's replay (its classes apart), the rows it takes, and the
    reported defect hits set aside."""
    cohort = scenario.cohorts[index]
    counts = np.array(counts, dtype=float)
    attempts = counts.sum(axis=1)
    if "defect_hits" in frame.columns:  # hits came out of the batch as dumbs
        hits = np.minimum(frame["defect_hits"].to_numpy(dtype=float), counts[:, 4])
        counts[:, 4] -= hits
        attempts = attempts - hits
        defect = float(hits.sum())
    else:
        defect = 0.0
    stressed = _stressed_days(cohort, scenario, frame, every)
    day = (frame["date"] - pd.Timestamp(scenario.start_date)).dt.days.to_numpy()
    keep = day >= 0
    rows = _Rows(day[keep], attempts[keep], counts[keep], stressed[keep])
    replay = _Replay(scenario, cohort, _cohort_classes(scenario, index))
    replay.then_success = _then_success(cohort, frame)
    if cohort.stall is not None:
        replay.desk = worked_days(scenario, every)
    return replay, rows, defect


def _then_success(cohort: Cohort, frame: pd.DataFrame) -> float:
    """The share of the replay's stalls that complete: the scenario's, updated
    with the reported stall completions and failures when there are any.

    The replay's stall failures come back as retries with one more attempt
    made, so this share sets how many of the in-flight retries are first
    failures. A replication (and a real programme) has its own share, which
    need not be the scenario's: one of ``nov2019_operations`` drew 0.88 against
    the scenario's 0.74, and the replay at 0.74 then put 10% more first
    failures among the rolled back than there were. The update is the Beta
    one calibration makes (the scenario's own Beta, or its share worth
    `DEFAULT_PRIOR_STRENGTH` resolutions); on a calibrated scenario, whose
    Beta already holds these resolutions, they count twice, which moves its
    mean by a fraction of its (already small) distance from the reported share.
    """
    if cohort.stall is None:
        return 1.0
    then = cohort.stall.then_success
    if isinstance(then, BetaProbability):
        a, b = float(then.alpha), float(then.beta)
    else:
        t = probability_mean(then)
        a, b = DEFAULT_PRIOR_STRENGTH * t, DEFAULT_PRIOR_STRENGTH * (1 - t)
    if {"stall_completions", "stall_failures"} <= set(frame.columns):
        a += float(frame["stall_completions"].sum())
        b += float(frame["stall_failures"].sum())
    return a / (a + b) if a + b > 0 else probability_mean(then)


def in_flight_by_attempts(
    scenario: Scenario,
    index: int,
    frame: pd.DataFrame,
    counts: np.ndarray,
    every: pd.DataFrame,
    after: int,
) -> dict[str, np.ndarray]:
    """What the replay expects still in flight after day ``after``, by due day.

    The normal class's rates are learned from the same rows first (the EM, its
    calm-day counts added to the scenario's prior as calibration adds them),
    then one pass of the replay at them; its ledgers are read for the days
    after ``after``: per state (``rolled_back``, ``stalled``, ``recovering``)
    an array (days until due - 1, attempts made) summed over classes; row 0 is
    due on ``after + 1``. ``queued``: the retries due and not yet taken at the
    end of the last row's day, one row by attempts made. ``held``: the stalls
    whose ELS case the desk has not worked by ``after`` (they are on no
    ledger), by the day they were raised, class (`class_kinds`) and attempts
    made.

    Why learn the rates here: how many of the in-flight retries are first
    failures turns on the normal class's rollback and stall rates against the
    hard and excluded classes'. A scenario read as stated (not calibrated) has
    rates the programme need not have: on ``nov2019_operations``, seed 5,
    itron_active's normal class stalled 1.4% of the time against the
    scenario's 6.7%, and the replay at the scenario's rates read the rolled
    back's mean attempts made 0.1 to 0.28 short. On a calibrated scenario the
    learned rates are close to its own (the data count twice, harmless against
    thousands of attempts).
    """
    replay, rows, _ = _replay_of(scenario, index, frame, counts, every)
    shares, _ = _expectation_maximisation(replay, rows)
    cohort = scenario.cohorts[index]
    prior = cohort.outcomes.mean()
    alpha = prior_alpha(cohort.outcomes, prior, DEFAULT_PRIOR_STRENGTH)
    alpha = alpha + shares[~rows.stressed, 0, :].sum(axis=0)
    replay.hold_after = after
    replay.run(*rows, alpha / alpha.sum() if alpha.sum() > 0 else prior)
    out = {}
    for state, ledger in (
        ("rolled_back", replay.retry_due),
        ("stalled", replay.stall_due),
        ("recovering", replay.recover_due),
    ):
        table = ledger[after + 1 :, 0].sum(axis=1)
        # a ledger shorter than after + 1 (no rows near the date): nothing known
        out[state] = table if len(table) else np.zeros((1, replay.size))
    waiting = np.zeros((1, replay.size))
    for pool in replay.ready:  # due retries the capacity (or a closed day) left
        waiting[0] += pool[0].sum(axis=0)
    out["queued"] = waiting
    out["held"] = replay.held[:, 0]  # stalls whose case is open after ``after``
    return out


class _Replay:
    """A mean-field replay of one cohort's queue, classes apart (floats, not draws).

    Columns are attempts made (0..max_attempts) per class, as in the engine.
    State has a leading axis of worlds: one for the EM's shares, one per
    imputation of the split (they share the rows and rates, not the draws),
    so the imputations cost one pass of the day loop, not one each.
    """

    def __init__(self, scenario: Scenario, cohort: Cohort, classes: list[_Class]):
        self.classes = classes
        self.size = cohort.max_attempts + 1
        self.retry = (
            cached_pmf(cohort.rollback.retry_after_days) if cohort.rollback else None
        )
        self.stall = (
            cached_pmf(cohort.stall.resolves_after_days) if cohort.stall else None
        )
        self.then_success = (
            probability_mean(cohort.stall.then_success) if cohort.stall else 1.0
        )
        recovery = cohort.dumb if cohort.dumb and cohort.dumb.recovered_share else None
        self.recovered_share = recovery.recovered_share if recovery else 0.0
        self.recover = cached_pmf(recovery.recovered_after_days) if recovery else None
        release = cohort.stall.release_on if cohort.stall else None
        self.release = scenario.day_of(release) if isinstance(release, date) else None
        self.increase = (
            cohort.volume_failures.increase if cohort.volume_failures else None
        )
        self.longest = max(
            [int(p[0][-1]) for p in (self.retry, self.stall, self.recover) if p] + [1]
        )
        #: The ELS desk's worked days (`desk.worked_days`): None, stalls are not
        #: held for it.
        self.desk: WorkedDays | None = None
        #: A day after which stalls the desk works stay held: kept by the day
        #: they were raised (``held``) instead of on the stall ledger.
        self.hold_after: int | None = None
        #: Impute the split: each day's outcomes drawn between the classes
        #: (multinomial, at the E-step's weights) instead of shared at them.
        self.rng: np.random.Generator | None = None

    def run(
        self,
        days: np.ndarray,
        attempts: np.ndarray,
        counts: np.ndarray,
        stressed: np.ndarray,
        normal: np.ndarray,
        worlds: int = 1,
    ) -> np.ndarray:
        """Each reported row's outcome counts shared by class, in each world:
        (rows, worlds, classes, 5). More than one world needs ``rng`` (the
        worlds differ only by their draws of the split)."""
        k_n, size = len(self.classes), self.size
        end = int(days.max()) + 1 if len(days) else 1
        if self.desk is not None:  # stalls held until the desk has worked them
            end = max(end, self.desk.last + 1)
        horizon = end + 2 * self.longest + 1
        self.retry_due = np.zeros((horizon, worlds, k_n, size))
        self.stall_due = np.zeros((horizon, worlds, k_n, size))
        self.recover_due = np.zeros((horizon, worlds, k_n, size))
        self.held = np.zeros((end, worlds, k_n, size))  # by day raised
        self.ready: list[np.ndarray] = []  # retries due, oldest first
        fresh = np.array(
            [c.installations if c.attempted else 0 for c in self.classes], float
        )
        fresh = np.repeat(fresh[None, :], worlds, axis=0)
        rates = [c.rates for c in self.classes]
        rates[0] = normal
        stressed_rates = [c.stressed_rates for c in self.classes]
        stressed_rates[0] = (
            normal if self.increase is None else self.increase.apply(normal)
        )
        out = np.zeros((len(days), worlds, k_n, counts.shape[1]))
        order = np.argsort(days, kind="stable")
        last = -1
        for row in order:
            day = int(days[row])
            for between in range(last + 1, day + 1):
                self._start_of_day(between)
            last = day
            batch = self._take(attempts[row], fresh)
            table = np.array(stressed_rates if stressed[row] else rates)
            out[row] = self._share(batch, table, counts[row])
            if self.rng is not None:
                out[row] = self._draw(out[row])
            self._consequences(out[row], batch, day)
        return out

    # ---------------------------------------------------------------- the day
    def _start_of_day(self, day: int) -> None:
        """Stalls resolve (failures retried), retries fall due, dumbs recover."""
        failed = self.stall_due[day] * (1.0 - self.then_success)
        self._fail(failed, day)
        due = self.retry_due[day]
        if due.any():
            self.ready.append(due.copy())
        recovered = self.recover_due[day]
        if recovered.any():
            self._fail(recovered.copy(), day)

    def _take(self, count: float, fresh: np.ndarray) -> np.ndarray:
        """Attempts by (world, class, attempts made after this one), as `take`
        orders them: due retries oldest first, the most attempts made first
        within a day's, then fresh installations in proportion to the classes
        left (``fresh``, world x class, is taken from)."""
        worlds, k_n = fresh.shape
        batch = np.zeros((worlds, k_n, self.size))
        left = np.full(worlds, float(count))
        if self.ready and count > 1e-9:
            pools = np.stack(self.ready)  # pool, world, class, made
            # the order taken: pool, then made from the most down to 1, then class
            queue = pools[..., :0:-1].transpose(1, 0, 3, 2).reshape(worlds, -1)
            before = np.cumsum(queue, axis=1) - queue
            taken = np.clip(left[:, None] - before, 0.0, queue)
            left -= taken.sum(axis=1)
            shaped = taken.reshape(worlds, len(pools), self.size - 1, k_n)
            pools[..., :0:-1] -= shaped.transpose(1, 0, 3, 2)
            by_made = shaped.sum(axis=1)[:, ::-1, :].transpose(0, 2, 1)  # made 1..
            batch[:, :, 2:] += by_made[:, :, :-1]
            batch[:, :, -1] += by_made[:, :, -1]
            self.ready = [p for p in pools if p.sum(axis=(1, 2)).max() > 1e-9]
        remaining = fresh.sum(axis=1)
        moved = np.minimum(np.maximum(left, 0.0), remaining)
        share = np.divide(
            fresh,
            remaining[:, None],
            out=np.zeros_like(fresh),
            where=remaining[:, None] > 0,
        )
        moved = moved[:, None] * share
        fresh -= moved
        batch[:, :, 1] += moved
        return batch

    def _share(
        self, batch: np.ndarray, rates: np.ndarray, observed: np.ndarray
    ) -> np.ndarray:
        """The E-step: a day's outcome counts shared in proportion to the classes'
        expected counts of each outcome; with no expected count anywhere, the
        outcome goes to the normal class."""
        expected = batch.sum(axis=2)[:, :, None] * rates  # world x class x outcome
        total = expected.sum(axis=1, keepdims=True)
        weights = np.where(total > 0, expected / np.where(total > 0, total, 1), 0.0)
        weights[:, 0] = np.where(total[:, 0] > 0, weights[:, 0], 1.0)
        return weights * observed[None, None, :]

    def _draw(self, shared: np.ndarray) -> np.ndarray:
        """One draw of a day's split in each world: each outcome's whole count
        shared between the classes by a multinomial at ``shared``'s proportions
        (a fractional remainder, from outcomes inferred in proportion, as it was)."""
        assert self.rng is not None
        total = shared.sum(axis=1)  # world x outcome
        out = shared.copy()
        for o in np.flatnonzero((total > 0).any(axis=0)):
            whole = np.floor(total[:, o] + 1e-9).astype(np.int64)
            share = np.clip(shared[:, :, o], 0.0, None)
            sums = share.sum(axis=1, keepdims=True)
            share = np.where(sums > 0, share / np.where(sums > 0, sums, 1), 0.0)
            share[:, 0] = np.where(sums[:, 0] > 0, share[:, 0], 1.0)
            whole = np.where(sums[:, 0] > 0, whole, 0)
            drawn = self.rng.multinomial(whole, share)
            out[:, :, o] = drawn + (total[:, o] - whole)[:, None] * share
        return out

    def _consequences(self, shared: np.ndarray, batch: np.ndarray, day: int) -> None:
        """Schedule what each class's stalls, rollbacks and dumbs do next."""
        attempts = batch.sum(axis=2, keepdims=True)
        # each class's attempts by attempts made
        spread = batch / np.where(attempts > 0, attempts, 1)
        _, stall, rollback, _, dumb = (shared[..., i, None] * spread for i in range(5))
        self._fail(rollback, day)
        if self.stall is not None and stall.any():
            if self.desk is None:
                self._schedule(self.stall_due, stall, self.stall, day, self.release)
            else:  # each share resolves no earlier than the day its case is worked
                release = -1 if self.release is None else self.release
                for worked, share in zip(*self.desk.on(day), strict=True):
                    held = stall * share
                    if self.hold_after is not None and worked > self.hold_after:
                        self.held[day] += held  # its case still open
                        continue
                    floor = max(int(worked), release)
                    self._schedule(self.stall_due, held, self.stall, day, floor)
        if self.recover is not None and dumb.any():
            self._schedule(
                self.recover_due, dumb * self.recovered_share, self.recover, day
            )

    def _fail(self, by_made: np.ndarray, day: int) -> None:
        """Failed attempts: the last allowed is abandoned, the rest retried later."""
        if self.retry is None or not by_made.any():
            return
        retried = by_made.copy()
        retried[..., self.size - 1] = 0.0
        self._schedule(self.retry_due, retried, self.retry, day)

    def _schedule(self, ledger, by_made, pmf, day, not_before=None) -> None:
        days, probs = pmf
        due = day + days
        if not_before is not None:
            due = np.maximum(due, not_before)
        due = np.minimum(due, len(ledger) - 1)
        for d, p in zip(due.tolist(), probs.tolist(), strict=True):
            ledger[d] += by_made * p
