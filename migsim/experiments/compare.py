"""Compare: scenarios run with common random numbers, differences with their CIs.

Replication k of every scenario draws from the same streams (the engine keys
them by run seed, replication and stable names), so run with one seed the
scenarios face the same luck, replication by replication. A difference is then
measured on *pairs*: for each figure and statistic, this scenario's value minus
the first scenario's, with a 95% interval:

- for the mean, the Student-t interval of the per-replication differences;
- for a quantile (type 1, as everywhere), a seeded *paired bootstrap*: resample
  replication indices with replacement, the same indices for both scenarios,
  and take the 2.5% and 97.5% type-1 quantiles of the resampled differences.

And, from the paired clearance days, the probabilities that a scenario clears
before, on the same day as, or after the first, as dates (a scenario that starts
later has its days counted from the first's start), and that neither clears
within its horizon (their order is unknown).

What the pairing bought (`pairing`): per figure, the variance of the paired
differences against the variance the difference would have with independent
streams, Var(A) + Var(B). Their ratio is the share of replications a paired
comparison needs for the same precision (0.07: about 14 times fewer).

Whether the order shares can be read as futures (`clearance_pairing`): they
count the pairs in which one scenario clears before the other, which says
something about the *change* only when replication k of both is the same
future. A change of cap or schedule keeps it so; a change of an outcome rate
does not: a retry's uniform falls to another installation once the number of
earlier failures changes, so the pairs' clearance days correlate weakly and
the better scenario clears later in many pairs by stream noise alone.
Measured on `tests/reference/nov2019_epcl.yaml` (fixed inputs), 100
replications, seed 0, the clearance days' correlation against the 2,000 cap
(5 Dec 2026): cap 2,200 0.95; Itron active success 0.93 -> 0.94 0.76;
Elster dormant success 0.93 -> 0.94 0.12 (the better scenario clears later
in 26% of the pairs, for a mean 0.8 days earlier), 0.93 -> 0.90 0.14; stall
``then_success`` 0.74 -> 0.80 in both cohorts 0.19. On the bundled
`scenarios/nov2019_epcl.yaml` (inputs drawn per replication, shared by the
pairs; 3% of the replications do not clear, so over the pairs where both
clear): cap 2,200 0.99; Elster dormant mean success +0.01 0.99, -0.03 0.98;
Itron +0.01 0.99. The shared inputs carry most of the spread, so the
correlation stays high, yet the rate changes still order a quarter of the
pairs against the change (Elster +0.01: 42% before, 25% after, for a mean
2 days earlier; the cap: 93% before, none after). So the rule is both: a
correlation below `WEAK_CORRELATION` (between the cap change and the rate
changes on fixed inputs), or outcome rates that differ (`rates_differ`);
and only where the pairs' order is mixed (some before, some after).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from migsim import __version__
from migsim.common.errors import MigsimError
from migsim.common.files import holds_nothing, output_dir
from migsim.common.source import source_sha256
from migsim.common.stats import (
    json_number,
    mean_ci95,
    quantile,
    quantile_index,
    statistic_quantile,
)
from migsim.evidence.intervals import RunLike
from migsim.model.base import OUTCOMES
from migsim.model.distributions import DirichletOutcomes
from migsim.model.scenario import Scenario
from migsim.results.results import (
    FIGURES,
    STATISTICS,
    ChartWriter,
    Results,
    replication_spans,
)
from migsim.runner.runner import run

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "bootstrap_indices",
    "clearance_order",
    "clearance_pairing",
    "compare",
    "compare_runs",
    "p_clear_by_pairs",
    "paired_difference",
    "pairing",
    "pairing_words",
    "rates_differ",
    "weak_pairing_note",
    "write_comparison",
]

#: Paired bootstrap resamples for the intervals of quantile differences.
BOOTSTRAP_RESAMPLES = 2000
#: spawn key of the bootstrap's own stream (apart from every simulation stream)
_BOOTSTRAP_KEY = 0xB007
#: Below this correlation of the paired clearance days, the order shares are
#: mostly stream noise (measured in the module docstring: cap changes 0.95 and
#: more, rate changes on fixed inputs 0.12 to 0.76).
WEAK_CORRELATION = 0.8


def _type1_rows(values: np.ndarray, q: float) -> np.ndarray:
    """Type-1 quantile of each row of a 2-D array (a partition, not a sort:
    the same value at a fraction of the cost)."""
    at = quantile_index(values.shape[1], q)
    return np.partition(values, at, axis=1)[:, at]


def paired_difference(
    first: np.ndarray,
    other: np.ndarray,
    statistic: str,
    indices: np.ndarray,
) -> tuple[float | None, tuple[float | None, float | None] | None]:
    """``statistic(other) - statistic(first)`` and its 95% interval, on paired values.

    Parameters
    ----------
    first, other
        Per-replication values of one figure, replication k at position k in both.
    statistic
        ``"mean"`` or a quantile name (``"p50"``).
    indices
        Bootstrap resamples of replication positions, shape (B, n), shared by all
        figures so the intervals are consistent with each other.

    Returns
    -------
    (diff, ci95)
        ``None`` where undefined (a mean with a replication that did not clear,
        or a quantile difference of two non-cleared values).
    """
    first = np.asarray(first, dtype=float)
    other = np.asarray(other, dtype=float)
    q = statistic_quantile(statistic)
    if q is None:
        if not (np.isfinite(first).all() and np.isfinite(other).all()):
            return None, None
        differences = other - first
        diff = float(differences.mean())
        ci = mean_ci95(differences)
        return diff, (ci if ci is not None else (diff, diff))
    with np.errstate(invalid="ignore"):
        diff = quantile(other, q) - quantile(first, q)
        boot = _type1_rows(other[indices], q) - _type1_rows(first[indices], q)
    if math.isnan(diff):
        return None, None
    if np.isnan(boot).any():
        return diff, None
    ordered = np.sort(boot)
    return diff, (quantile(ordered, 0.025), quantile(ordered, 0.975))


def clearance_order(first: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """P(other clears before / on the same day as / after first), over the pairs,
    and P(neither clears within the horizon): such a pair's order is unknown,
    so it is none of the three (it counted as "same day")."""
    first = np.asarray(first, dtype=float)
    other = np.asarray(other, dtype=float)
    neither = ~np.isfinite(first) & ~np.isfinite(other)
    return {
        "p_clears_before_first": float((other < first).mean()),
        "p_clears_same_day": float(((other == first) & ~neither).mean()),
        "p_clears_after_first": float((other > first).mean()),
        "p_neither_clears": float(neither.mean()),
    }


def pairing(first: np.ndarray, other: np.ndarray) -> dict[str, float | None]:
    """How much pairing reduced the variance of the difference ``other - first``.

    ``variance_ratio`` = Var(other - first) / (Var(first) + Var(other)) over
    the pairs (1: no gain, as with independent streams; below 1: the pairing's
    gain), and the pairs' ``correlation``. ``None`` where undefined: a
    replication that did not clear, fewer than two pairs, or no variation.
    """
    first = np.asarray(first, dtype=float)
    other = np.asarray(other, dtype=float)
    if len(first) < 2 or not (np.isfinite(first).all() and np.isfinite(other).all()):
        return {"variance_ratio": None, "correlation": None}
    independent = float(np.var(first, ddof=1) + np.var(other, ddof=1))
    if independent <= 0:
        return {"variance_ratio": None, "correlation": None}
    paired = float(np.var(other - first, ddof=1))
    spread = float(np.std(first) * np.std(other))
    correlation = (
        float(np.mean((first - first.mean()) * (other - other.mean())) / spread)
        if spread > 0
        else None
    )
    return {
        "variance_ratio": json_number(paired / independent),
        "correlation": None if correlation is None else json_number(correlation),
    }


def rates_differ(first: Scenario, other: Scenario) -> bool:
    """Whether a cohort both scenarios have attempts on other rates: the
    rates the engine draws its attempts' outcomes from (`_rate_laws`)."""
    ours, theirs = _rate_laws(first), _rate_laws(other)
    return any(ours[name] != theirs[name] for name in ours.keys() & theirs.keys())


def _rate_laws(scenario: Scenario) -> dict[str, tuple[Any, ...]]:
    """Per cohort, what its attempts' outcomes are drawn from: its outcome
    rates, its hard cases' share and rates, and its stalls' ``then_success``
    (`migsim.sim.inputs.draw_parameters` draws the uncertain ones). Each as
    the engine reads it: known rates renormalised (``mean``), a Dirichlet by
    its alphas however given (a ``prior`` and its ``evidence`` are their sum),
    so that one law written two ways is not a change; a hard-case change is."""

    def law(outcomes: Any) -> tuple[Any, ...] | None:
        if outcomes is None:
            return None
        if isinstance(outcomes, DirichletOutcomes):
            alpha = outcomes.alpha
            return ("dirichlet", *(float(getattr(alpha, o)) for o in OUTCOMES))
        return ("rates", *(float(rate) for rate in outcomes.mean()))

    return {
        cohort.name: (
            law(cohort.outcomes),
            None
            if cohort.hard is None
            else (cohort.hard.share, law(cohort.hard.outcomes)),
            None if cohort.stall is None else cohort.stall.then_success,
        )
        for cohort in scenario.cohorts
    }


def clearance_pairing(
    first: np.ndarray, other: np.ndarray, *, rates_differ: bool = False
) -> dict[str, Any]:
    """The clearance day's `pairing`, and whether its pairs are too weak to
    read the order shares (``p_clears_before_first`` ...) as futures.

    ``cleared_correlation`` is the pairs' correlation over those where both
    clear within the horizon (``correlation`` is undefined once one does not:
    the bundled scenarios leave a few uncleared). ``weak`` is true when

    - the scenarios' outcome rates differ (``rates_differ``, as measured in the
      module docstring: where inputs are drawn per replication, the shared
      inputs keep the correlation high while the retries' stream noise still
      orders a quarter of the pairs against the change), or
    - ``cleared_correlation`` is below `WEAK_CORRELATION`, or cannot be
      measured (fewer than two pairs clear under both);

    and not when one scenario's clearance day never varies over those pairs
    (each pair's order is then a fixed day against the other's own luck:
    nothing for the streams to pair), nor when no pair is ordered against the
    others (none clears before, or none after): there is then no share to
    mislead, and a large change lowers the correlation by acting on each
    replication's drawn inputs, not by noise (the bundled scenario at a cap
    of 5,000 against 2,000, 200 replications: correlation 0.80 over the pairs
    where both clear, 98% of the pairs before, none after).
    """
    first = np.asarray(first, dtype=float)
    other = np.asarray(other, dtype=float)
    both = np.isfinite(first) & np.isfinite(other)
    correlation = pairing(first[both], other[both])["correlation"]
    fixed = both.sum() >= 2 and correlation is None  # no spread: nothing to pair
    low = correlation is None or correlation < WEAK_CORRELATION
    mixed = bool((other < first).any() and (other > first).any())
    return {
        **pairing(first, other),
        "cleared_correlation": correlation,
        "rates_differ": rates_differ,
        "weak": mixed and (rates_differ or (low and not fixed)),
    }


def pairing_words(clearance: dict[str, Any] | None) -> str:
    """What pairing bought on the clearance day, in a planner's words (the
    CLI's pairing line and the explorer's, from `clearance_pairing`)."""
    ratio = None if clearance is None else clearance.get("variance_ratio")
    if clearance is None or ratio is None:
        cleared = None if clearance is None else clearance.get("cleared_correlation")
        if cleared is not None:  # the bundled scenarios: a few never clear
            return (
                "undefined over all pairs (a replication did not clear); "
                f"correlation {cleared:.2f} over the pairs where both clear"
            )
        return "undefined (a replication did not clear, or no variation)"
    # "about 1x fewer" says nothing: below 1.5x the pairing bought little
    gain = f", about {1 / ratio:,.0f}x fewer replications" if 0 < ratio < 2 / 3 else ""
    correlation = clearance.get("correlation")
    said = (  # undefined when one scenario's clearance day does not vary
        "undefined" if correlation is None else f"{correlation:.2f}"
    )
    return (
        f"the clearance-day difference varies {ratio:.2f}x as much as "
        f"with independent streams (correlation {said}{gain} for the same precision)"
    )


def weak_pairing_note(clearance: dict[str, Any] | None) -> str:
    """The sentence shown beside the order shares when `clearance_pairing`
    says the pairs are weak, else "": the shares stay shown (they are data),
    but a planner is told not to read them as the change's effect."""
    if not clearance or not clearance.get("weak"):
        return ""
    correlation = clearance.get("cleared_correlation")
    if correlation is not None and correlation < WEAK_CORRELATION:
        said = f" (clearance-day correlation {correlation:.2f})"
    elif correlation is None and not clearance.get("rates_differ"):
        said = " (fewer than two pairs clear under both)"
    else:
        said = ""
    why = (
        "These scenarios differ in outcome rates, which the random streams pair "
        "only weakly"
        if clearance.get("rates_differ")
        else "The random streams pair these scenarios only weakly"
    )
    return (
        f"{why}{said}: the shares of pairs clearing before and after are largely "
        "stream noise, not the change. Read the clearance-day difference and "
        "its interval instead."
    )


def _offset(base: RunLike, current: RunLike) -> int:
    """Days from the first scenario's start to this one's: a clearance day of
    ``current`` plus this is the same date on ``base``'s day numbers (scenarios
    compared may start on different dates: a later start, a forecast)."""
    return (current.scenario.start_date - base.scenario.start_date).days


def _on_first_clock(base: RunLike, current: RunLike) -> tuple[np.ndarray, np.ndarray]:
    """Both runs' clearance days as dates: on the first's day numbers, and
    each past the earlier of the two horizons' ends counted not cleared (inf).

    A scenario whose horizon ends later could clear after the other's end,
    when the other's replication might have cleared too, unseen: only within
    the common horizon is the order of a pair known. With the same start and
    end, nothing changes."""
    start = base.scenario.start_date
    last = (min(base.scenario.end_date, current.scenario.end_date) - start).days
    theirs = base.clearance_days().astype(float)
    ours = current.clearance_days().astype(float) + _offset(base, current)
    return (
        np.where(theirs > last, np.inf, theirs),
        np.where(ours > last, np.inf, ours),
    )


def bootstrap_indices(n: int, seed: int, resamples: int) -> np.ndarray:
    """(resamples, n) replication positions for `paired_difference`, from the
    run seed's own bootstrap stream (apart from every simulation stream)."""
    rng = np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(_BOOTSTRAP_KEY,))
    )
    return rng.integers(0, n, size=(resamples, n))


def _span_words(ids: np.ndarray) -> str:
    """Replication indices in words: ``0-9``, ``0-3, 5-9``."""
    spans = replication_spans(int(k) for k in ids)
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def compare_runs(
    runs: Sequence[RunLike], *, resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, Any]:
    """Paired differences of every run against the first.

    Runs are paired replication by replication: replication k of each is
    compared with replication k of the first, so they must hold the same
    replications (the same count, and the same indices).
    Common random numbers hold when every run used the same seed (reported as
    ``common_random_numbers``); otherwise the pairs are independent and the
    intervals are still valid, only wider. Clearance days are compared as
    dates: a scenario starting later has its days counted from the first's
    start for the difference and the order (its ``value`` stays its own).

    Returns
    -------
    dict
        ``migsim_version``, ``first`` (name), ``seed``, ``replications``,
        ``common_random_numbers``, ``bootstrap_resamples`` and ``scenarios``:
        per scenario name its ``scenario`` (resolved), ``scenario_sha256``,
        ``seed``, ``installations`` (stated: a difference
        in counts between scenarios of other sizes is partly their size),
        ``figures`` ({figure: {statistic:
        {"value", "diff", "ci95"}}}), ``pairing`` ({figure: `pairing`}; the
        clearance day's is `clearance_pairing`, with ``weak``) and
        ``p_clears_before_first``, ``p_clears_same_day``,
        ``p_clears_after_first`` and ``p_neither_clears`` (the four add up to 1).
    """
    if len(runs) < 1:
        raise ValueError("nothing to compare")
    names = [r.scenario.name for r in runs]
    counts = {r.n_replications for r in runs}
    if len(counts) != 1:
        each = ", ".join(f"{r.scenario.name} {r.n_replications}" for r in runs)
        raise MigsimError(
            "runs to compare must have the same number of replications (they are "
            f"paired replication by replication): {each}; run them with the same -n"
        )
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise MigsimError(
            f"scenario names must differ to compare: {', '.join(duplicated)}"
        )
    held = [np.asarray(r.replication_ids) for r in runs]
    if any(not np.array_equal(ids, held[0]) for ids in held[1:]):
        each = ", ".join(
            f"{r.scenario.name} {_span_words(ids)}"
            for r, ids in zip(runs, held, strict=True)
        )
        raise MigsimError(
            "runs to compare must hold the same replications (they are paired "
            f"replication by replication, k with k): {each}"
        )
    base = runs[0]
    n = base.n_replications
    indices = bootstrap_indices(n, base.seed, resamples)
    scenarios: dict[str, Any] = {}
    for current in runs:
        figures: dict[str, Any] = {}
        paired: dict[str, Any] = {}
        # clearance days compared as dates (a value stays on its own day numbers)
        dates = _on_first_clock(base, current)
        for name in FIGURES:
            ours, theirs = current.figure(name), base.figure(name)
            shifted = ours
            if name == "clearance_day":
                theirs, shifted = dates
            figures[name] = {}
            paired[name] = (
                clearance_pairing(
                    theirs,
                    shifted,
                    rates_differ=rates_differ(base.scenario, current.scenario),
                )
                if name == "clearance_day"
                else pairing(theirs, shifted)
            )
            for statistic in STATISTICS:
                q = statistic_quantile(statistic)
                value = (
                    (float(ours.mean()) if np.isfinite(ours).all() else None)
                    if q is None
                    else quantile(ours, q)
                )
                diff, ci = paired_difference(theirs, shifted, statistic, indices)
                figures[name][statistic] = {
                    "value": json_number(value),
                    "diff": json_number(diff),
                    "ci95": None
                    if ci is None
                    else [json_number(ci[0]), json_number(ci[1])],
                }
        scenarios[current.scenario.name] = {
            "scenario": current.scenario.to_dict(),
            "scenario_sha256": current.scenario.sha256,
            "seed": current.seed,
            "installations": current.scenario.installations,
            "figures": figures,
            "pairing": paired,
            **clearance_order(*dates),
        }
    return {
        "migsim_version": __version__,
        "migsim_source_sha256": source_sha256(),
        "first": base.scenario.name,
        "seed": base.seed,
        "replications": n,
        "common_random_numbers": len({r.seed for r in runs}) == 1,
        "bootstrap_resamples": resamples,
        "scenarios": scenarios,
    }


def compare(
    scenarios: Sequence[Scenario],
    replications: int,
    seed: int,
    workers: int = 1,
    *,
    common_random_numbers: bool = True,
    resamples: int = BOOTSTRAP_RESAMPLES,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Any], dict[str, Any]]:
    """Run every scenario with one seed (common random numbers) and compare them.

    ``common_random_numbers=False`` gives scenario i the seed ``seed + i``
    instead: independent runs, only to show what common random numbers buy.
    ``progress`` is called with the replications each finished batch adds,
    over all the scenarios' runs (``replications`` x scenarios in all).

    Returns
    -------
    (runs, comparison)
        The `Results` of each scenario, and `compare_runs` of them.
    """
    runs = [
        run(
            sc,
            replications=replications,
            seed=seed if common_random_numbers else seed + i,
            workers=workers,
            fail_fast=True,  # pairs need every replication of every scenario
            progress=progress,
        )
        for i, sc in enumerate(scenarios)
    ]
    return runs, compare_runs(runs, resamples=resamples)


def write_comparison(
    runs: Sequence[Results],
    comparison: dict[str, Any],
    directory: str | Path,
    *,
    overwrite: bool = False,
    charts: ChartWriter | None = None,
    files: Callable[[Path], None] | None = None,
) -> Path:
    """Write each run to ``<directory>/<scenario name>/`` and ``comparison.json``.

    The folder is written atomically (staged, then renamed into place); an
    existing non-empty folder is replaced only with ``overwrite``, and never
    one that is not the output of a comparison (no ``comparison.json``).
    ``charts`` draws each run's charts (see `Results.write`); ``files`` adds
    files beside ``comparison.json`` (the output layer's CSV and workbook),
    called with the staging folder so they appear with the rest or not at all.
    """
    target = Path(directory)
    if overwrite and target.is_dir() and not holds_nothing(target):
        if not (target / "comparison.json").exists():
            raise MigsimError(
                f"{directory}: not the output of migsim compare; not replacing it"
            )
    with output_dir(target, overwrite=overwrite) as out:
        for results in runs:
            results.write(out / results.scenario.name, charts=charts)
        (out / "comparison.json").write_text(
            json.dumps(comparison, indent=2) + "\n", encoding="utf-8"
        )
        if files is not None:
            files(out)
    return target


def p_clear_by_pairs(
    runs: Sequence[RunLike], dates: Sequence[date]
) -> dict[str, dict[str, Any]]:
    """P(cleared by each date) per scenario, and its paired difference from the first.

    Returns ``{iso date: {scenario: {"p", "diff", "ci95"}}}``: ``p`` the share
    of replications cleared on or before the date, ``diff`` this scenario's
    share minus the first's over the paired replications, ``ci95`` the
    Student-t interval of the per-pair differences of the indicators (the
    first scenario's own entry has no difference), clipped to -1..1.
    """
    base = runs[0]
    out: dict[str, dict[str, Any]] = {}
    for when in dates:
        first = (base.clearance_days() <= base.scenario.day_of(when)).astype(float)
        entry: dict[str, Any] = {}
        for current in runs:
            ours = (current.clearance_days() <= current.scenario.day_of(when)).astype(
                float
            )
            item: dict[str, Any] = {"p": json_number(float(ours.mean()))}
            if current is not base:
                differences = ours - first
                # a difference of two shares lies in -1..1: a few pairs' t
                # interval reached past it (-1.42 to 0.42 with 4 pairs)
                ci = mean_ci95(differences, floor=-1.0)
                ci = None if ci is None else (ci[0], min(1.0, ci[1]))
                item["diff"] = json_number(float(differences.mean()))
                item["ci95"] = (
                    None if ci is None else [json_number(ci[0]), json_number(ci[1])]
                )
            entry[current.scenario.name] = item
        out[when.isoformat()] = entry
    return out
