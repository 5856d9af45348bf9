"""Where the uncertainty comes from: the variance split of a run's figures.

Every replication draws its inputs once (`migsim.sim.inputs`), then day-to-day
randomness given them. By the law of total variance, for a figure Y (the
clearance day, a risk count) and the inputs X:

    Var(Y) = Var(E[Y | X]) + E[Var(Y | X)]
             (the inputs)    (day-to-day randomness)

- E[Var(Y | X)] is estimated without bias from *twins*: a twin of replication k
  reuses k's input draws with fresh day-to-day streams, so for each twinned
  replication the sample variance of its group (itself and its twins) is an
  unbiased estimate of Var(Y | X_k), and their mean one of E[Var(Y | X)]. Which
  replications have a twin depends on k alone (`twinned`: one in ten, and
  replication 1), so the runner simulates them on its workers with the rest and
  any worker count, batching or combination of runs gives the same twins;
- Var(Y) is the sample variance over the replications;
- the inputs' share is 1 - E[Var(Y | X)] / Var(Y), clipped to [0, 1], with a
  standard error from the spread of the twin groups' variances.

Which inputs matter most: each input's first-order share Var(E[Y | X_j]) /
Var(Y), by the given-data (binned) estimator: the replications are sorted by the
input's draw, cut into bins of equal count, and the between-bin variance of Y,
less what within-bin noise alone would give (an ANOVA correction), is divided by
Var(Y). Inputs that move together (two dates scaled by one programme delay)
each carry their shared part, so first-order shares need not add up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

from migsim.common.stats import percent
from migsim.results.figures import FIGURES, FigureTable
from migsim.sim.block import simulate
from migsim.sim.inputs import input_label

__all__ = [
    "few_varying_words",
    "first_order_share",
    "group_share",
    "input_groups",
    "mean_ranks",
    "run_split",
    "split",
    "twin_count",
    "twin_table",
    "twinned",
    "within_variance",
    "words",
]

#: Inputs named in a split, at most, and the smallest share worth naming.
TOP_INPUTS = 5
MIN_SHARE = 0.01
#: Fewest replications off a figure's most common value for a split: below, its
#: variance rests on a handful of replications (2 of 200 abandoning one
#: installation) and a split of it would be read as a finding; it says so.
MIN_VARYING = 5


def twinned(replication: int) -> bool:
    """Whether replication k gets a twin: k = 0, 10, 20, ... (one in ten) and
    k = 1, so a small run still has two.

    A rule on k alone: the runner's workers, a run continued with
    ``first_replication`` and `Results.combine` all agree on the twins. Twins
    add about a tenth to a run's cost; a run without uncertain inputs has none
    (every variance is day-to-day).
    """
    return replication % 10 == 0 or replication == 1


def twin_count(replications: int, has_inputs: bool) -> int:
    """Twins of a run of replications 0 .. n-1 (`twinned`; none without inputs)."""
    if not has_inputs or replications < 2:
        return 0
    return sum(twinned(k) for k in range(replications))


def twin_table(results: Any) -> FigureTable | None:
    """The figures of a run's twins: those the runner simulated with the run, or,
    for `Results` made from logs, simulated here once (the same twins)."""
    table = getattr(results, "_twins", None)
    if table is not None:
        return table
    ids = [int(k) for k in results.replication_ids if twinned(int(k))]
    scenario, seed = results.scenario, results.seed
    logs = simulate(scenario, seed, ids, twin=1)
    return FigureTable.from_logs(scenario, logs) if logs else None


def within_variance(groups: Sequence[np.ndarray]) -> tuple[float, float]:
    """``(mean, standard error)`` of the groups' sample variances (ddof 1).

    Each group holds the values of one set of inputs (a replication and its
    twins); its sample variance is unbiased for Var(Y | X) at those inputs, so
    the mean is unbiased for E[Var(Y | X)].
    """
    variances = np.array([np.var(g, ddof=1) for g in groups if len(g) >= 2])
    if not len(variances):
        return math.nan, math.nan
    se = (
        float(np.std(variances, ddof=1) / math.sqrt(len(variances)))
        if len(variances) >= 2
        else math.nan
    )
    return float(variances.mean()), se


def _bins(x: np.ndarray, count: int) -> np.ndarray:
    """Bin index per value: equal-count bins by rank, ties always in one bin."""
    n = len(x)
    order = np.argsort(x, kind="stable")
    by_rank = (np.arange(n) * count) // n
    values, first, inverse = np.unique(x[order], return_index=True, return_inverse=True)
    if len(values) <= count:  # few distinct values: one bin each
        sorted_bins = inverse
    else:
        sorted_bins = by_rank[first][inverse]
    bins = np.empty(n, dtype=np.int64)
    bins[order] = sorted_bins
    return bins


def default_bins(n: int) -> int:
    """Bins of the given-data estimator: about the square root of the count."""
    return max(2, round(math.sqrt(n)))


def noise_floor(n: int) -> float:
    """Two standard deviations of a first-order share when the input does nothing.

    With no effect, the between-bin share of k equal-count bins of n values
    has sd about sqrt(2 (k - 1)) / n around zero (after the ANOVA correction);
    an input is named only above twice that, so few replications name few
    inputs rather than noise.
    """
    return 2.0 * math.sqrt(2.0 * (default_bins(n) - 1)) / n


def first_order_share(x: np.ndarray, y: np.ndarray, bins: int | None = None) -> float:
    """Var(E[Y | X]) / Var(Y) from given data (binned, ANOVA-corrected).

    ``bins`` defaults to about the square root of the count (at least 2).
    Infinite draws (a date that never comes) rank last. Returns a value in
    [0, 1]; 0 when Y does not vary.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < 4:
        return math.nan
    total = float(((y - y.mean()) ** 2).sum())
    if total <= 0:
        return 0.0
    finite = np.isfinite(x)
    if not finite.all():  # rank a never as later than anything drawn
        top = x[finite].max() + 1 if finite.any() else 0.0
        x = np.where(finite, x, top)
    count = bins or default_bins(n)
    index = _bins(x, count)
    used = np.unique(index)
    sums = np.bincount(index, weights=y)
    sizes = np.bincount(index)
    means = np.divide(sums, sizes, out=np.zeros_like(sums), where=sizes > 0)
    between = float((sizes * (means - y.mean()) ** 2).sum())
    within = total - between
    k = len(used)
    if k < 2:
        return 0.0
    noise = within / (n - k) if n > k else 0.0
    share = (between - (k - 1) * noise) / total
    return float(min(1.0, max(0.0, share)))


def input_groups(inputs: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
    """Inputs drawn together, as one named group: a cohort's outcome rates.

    The rates of one Dirichlet draw move together (they sum to 1), so their
    separate first-order shares would each carry the others' part and add up to
    far more than the whole; the planner's question is "how much do this
    cohort's outcome rates matter", so they are judged as one input.

    Single inputs that one draw sets together (`_one_draw`: the same order in
    every replication) are one group too.

    One draw recorded under two keys counts once: a gate that opens on its own
    drawn date records it as the date (``gates.g.opens_on``) and as the gate's
    opening (``gates.g``), the same values in every replication; the shorter
    key is kept (the gate, "gate g opening"), so the split does not name one
    draw twice.
    """
    groups: dict[str, list[str]] = {}
    for key in inputs:
        parts = key.split(".")
        grouped = parts[0] == "cohorts" and parts[-2:-1] == ["outcomes"]
        groups.setdefault(".".join(parts[:-1]) if grouped else key, []).append(key)
    kept: list[str] = []
    for name in sorted(groups, key=lambda k: (k.count("."), len(k))):
        keys = groups[name]
        same = any(
            len(keys) == len(groups[other])
            and all(
                np.array_equal(inputs[a], inputs[b])
                for a, b in zip(keys, groups[other], strict=True)
            )
            for other in kept
        )
        if not same:
            kept.append(name)
    return _one_draw(
        {name: keys for name, keys in groups.items() if name in kept}, inputs
    )


#: The name of the cohorts' sizes when one draw sets them all (a ``shared``
#: size range: the fleet's size moves every cohort).
SIZES = "cohorts.installations"


def _one_draw(
    groups: dict[str, list[str]], inputs: Mapping[str, np.ndarray]
) -> dict[str, list[str]]:
    """Single inputs in the same order in every replication, as one group:
    one draw sets them all (the cohorts of a ``shared`` size range each
    record a size, in proportion). Each carried the whole draw's share, so
    the full fleet's split named "edmi_active size: 24%, edmi_dormant size:
    24%, foc_active size: 24%" for one uncertain fleet size. "The same order"
    is a rank correlation of at least `ONE_DRAW`: sizes rounded to whole
    installations can swap two near-equal replications. Cohort sizes so
    joined are named `SIZES`; other inputs by their first key.

    A group of one key is read by its key, not its name: a cohort whose
    Dirichlet allows one outcome only records one rate under the group
    ``cohorts.<name>.outcomes`` (a run of 24 replications or more failed on
    that name with a KeyError)."""
    alone = sorted(
        n
        for n, keys in groups.items()
        if len(keys) == 1 and np.ptp(inputs[keys[0]]) > 0
    )
    # tied values share their mean rank: ranked by position instead, two
    # inputs at one value in nearly every replication ranked alike
    ranks = {n: mean_ranks(inputs[groups[n][0]]) for n in alone}
    joined: dict[str, list[str]] = {}
    for name in alone:
        for first, members in joined.items():
            if np.corrcoef(ranks[first], ranks[name])[0, 1] >= ONE_DRAW:
                members.append(name)
                break
        else:
            joined[name] = [name]
    out = {n: keys for n, keys in groups.items() if n not in ranks}
    for first, members in joined.items():
        keys = [groups[m][0] for m in members]
        sizes = len(keys) > 1 and all(_is_size(k) for k in keys)
        out[SIZES if sizes else first] = keys
    return out


#: The rank correlation from which two inputs count as one draw (`_one_draw`).
ONE_DRAW = 0.999


def mean_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, tied values sharing their mean rank: what
    ``scipy.stats.rankdata`` gives by default, without importing
    ``scipy.stats`` (about half a second, paid by every run's parent after its
    last replication, for this call alone). The values must be finite: a run's
    input draws, which `_one_draw` ranks only where they vary."""
    values = np.ravel(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1  # each sorted value's group of ties
    edges = np.r_[np.flatnonzero(starts), len(values)]  # groups' first positions
    mean = (edges[:-1] + edges[1:] + 1) / 2.0  # ranks first+1 .. last: their mean
    ranks = np.empty(len(values))
    ranks[order] = mean[group]
    return ranks


def _is_size(key: str) -> bool:
    parts = key.split(".")
    return len(parts) == 3 and parts[0] == "cohorts" and parts[2] == "installations"


def group_share(xs: Sequence[np.ndarray], y: np.ndarray) -> float:
    """First-order share of a group of inputs (one input: `first_order_share`).

    For several inputs drawn together: the larger of the best single member's
    binned share and the adjusted R^2 of a linear fit on all members (a lower
    bound of Var(E[Y | group]) / Var(Y) that is honest about the fitted terms).
    """
    single = max(first_order_share(x, y) for x in xs)
    n = len(y)
    if len(xs) == 1 or n <= len(xs) + 2:
        return single
    design = np.column_stack([np.ones(n), *xs])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    rank = np.linalg.matrix_rank(design) - 1
    r2 = 1.0 - float(np.var(y - design @ coef)) / float(np.var(y))
    adjusted = 1.0 - (1.0 - r2) * (n - 1) / max(1, n - rank - 1)
    return max(single, adjusted)


def split(
    y: np.ndarray,
    inputs: Mapping[str, np.ndarray],
    twin_groups: Sequence[np.ndarray],
    label: Callable[[str], str] = str,
    *,
    grouped: Callable[[], dict[str, list[str]]] | None = None,
) -> dict[str, object]:
    """The variance split of one figure (see module).

    Parameters
    ----------
    y
        The figure per replication (finite: censor +inf before calling).
    inputs
        ``{input key: draws per replication}``, aligned with ``y``.
    twin_groups
        For each twinned replication, its value and its twins' values.
    label
        An input key in a planner's words.
    grouped
        Gives `input_groups` of ``inputs`` (default: works them out): a run
        splits a dozen figures over the same inputs (`run_split`).

    Returns
    -------
    dict
        ``variance``; ``inputs_share`` and ``day_to_day_share`` (summing to 1;
        ``None`` when Y does not vary); ``inputs_share_se``; ``twins``;
        ``top_inputs``: the inputs with the largest first-order shares, as
        ``{"input", "label", "share"}``, largest first, each above
        ``named_above`` (`noise_floor`, at least 1%). When fewer than
        `MIN_VARYING` replications differ from the most common value, no split:
        ``varying`` (how many do) and ``replications`` instead, shares ``None``.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    variance = float(np.var(y, ddof=1)) if n >= 2 else math.nan
    out: dict[str, object] = {
        "variance": _round(variance),
        "inputs_share": None,
        "day_to_day_share": None,
        "inputs_share_se": None,
        "twins": len(twin_groups),
        "top_inputs": [],
    }
    if not n >= 2 or not variance > 0:
        return out
    varying = n - int(np.unique(y, return_counts=True)[1].max())
    if varying < MIN_VARYING:  # a handful of replications: nothing to split
        out.update(varying=varying, replications=n)
        return out
    if not inputs:  # nothing uncertain but the day-to-day
        out.update(inputs_share=0.0, day_to_day_share=1.0, inputs_share_se=0.0)
        return out
    within, se = within_variance(twin_groups)
    if math.isnan(within):
        return out
    share = min(1.0, max(0.0, 1.0 - within / variance))
    out["inputs_share"] = _round(share)
    out["day_to_day_share"] = _round(1.0 - share)
    out["inputs_share_se"] = None if math.isnan(se) else _round(se / variance)
    # an input's first-order share is at most the inputs' share: cap the noise
    groups = input_groups(inputs) if grouped is None else grouped()
    shares = {
        key: min(share, group_share([inputs[k] for k in keys], y))
        for key, keys in groups.items()
    }
    floor = max(MIN_SHARE, noise_floor(n))
    out["named_above"] = _round(floor)
    ranked = sorted(
        ((s, k) for k, s in shares.items() if s >= floor),
        key=lambda item: (-item[0], item[1]),
    )
    out["top_inputs"] = [
        {
            "input": key,
            "label": _group_label(key, groups[key], label),
            "share": _round(s),
        }
        for s, key in ranked[:TOP_INPUTS]
    ]
    return out


def _group_label(key: str, keys: Sequence[str], label: Callable[[str], str]) -> str:
    """A group in a planner's words: the cohorts' sizes set by one draw, or
    the first input of one draw and how many more it sets."""
    if key == SIZES:
        return f"cohort sizes (one draw for {len(keys)} cohorts)"
    singles = [k for k in keys if not k.startswith(key + ".")]
    if len(singles) > 1:
        return f"{label(key)} (one draw with {len(singles) - 1} more)"
    return label(key)


def words(entry: Mapping[str, Any]) -> str:
    """One split as a planner reads it: "inputs 93% (final cohort start date:
    45%; ...), day-to-day 7%"."""
    share = entry.get("inputs_share")
    if entry.get("varying") is not None:
        return few_varying_words(entry)
    if share is None:
        return "does not vary"
    tops = "; ".join(
        f"{t['label']}: {percent(t['share'])}" for t in entry.get("top_inputs", [])
    )
    text = f"inputs {percent(share)}"
    if tops:
        text += f" ({tops})"
    return text + f", day-to-day {percent(entry['day_to_day_share'])}"


def few_varying_words(entry: Mapping[str, Any]) -> str:
    """Why a figure has no split: "too little variation to split (2 of 200
    replications differ from the rest)"."""
    k, n = entry["varying"], entry["replications"]
    verb = "differs" if k == 1 else "differ"
    return (
        f"too little variation to split ({k} of {n:,} replications {verb} from "
        "the rest)"
    )


def _round(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def _simulated_inputs(
    scenario: Any, inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The inputs that can move a figure counted in installations.

    The meters-per-installation ratio changes what is simulated only when some
    size is stated in meters (``from_meters``); otherwise it only converts counts
    for display, and naming it would credit it with noise.
    """
    converts = any(
        c.installations_range is not None and c.installations_range.from_meters
        for c in scenario.cohorts
    )
    return {
        key: values
        for key, values in inputs.items()
        if converts or key != "meters_per_installation"
    }


def run_split(results: Any) -> dict[str, Any]:
    """The variance split of a run (`migsim.results.Results`) for its summary.

    ``{"clearance_day": split, "figures": {name: split}}``: the clearance day
    (a replication that does not clear counts at the horizon end; ``censored``
    says how many did not) and every figure that varies. The twins are those of
    the `twinned` replications (`twin_table`).
    """
    scenario = results.scenario
    inputs = _simulated_inputs(scenario, results._input_draws())
    twins = twin_table(results) if inputs and results.n_replications >= 2 else None
    rows: list[tuple[int, int]] = []  # (replication's row, its twin's row)
    if twins is not None:
        where = {int(k): i for i, k in enumerate(results.replication_ids)}
        rows = [
            (where[int(k)], j)
            for j, k in enumerate(twins.replications)
            if int(k) in where
        ]

    @cache
    def grouped() -> dict[str, list[str]]:
        """The groups once for every figure: they depend on the inputs alone,
        and working them out took 20 ms a figure on the full fleet."""
        return input_groups(inputs)

    def one(name: str, cap: float = math.inf) -> dict[str, Any]:
        y = np.minimum(results.figure(name), cap)
        groups = []
        if twins is not None:
            mine = np.minimum(twins.overall[name], cap)
            groups = [np.array([y[i], mine[j]]) for i, j in rows]
        return split(y, inputs, groups, input_label, grouped=grouped)

    clearance = one("clearance_day", float(scenario.horizon_days))
    days = results.clearance_days()
    clearance["censored"] = float((~np.isfinite(days)).mean()) if len(days) else 0.0
    figures = {
        name: one(name)
        for name in FIGURES
        if name != "clearance_day" and np.ptp(results.figure(name)) > 0
    }
    return {"clearance_day": clearance, "figures": figures}
