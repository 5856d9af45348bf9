"""The uncertain inputs of one replication: drawn once, recorded, shared by twins.

Second-order Monte Carlo: each replication first draws its *inputs* (what a
planner cannot know exactly: outcome rates, dates, sizes, the programme delay,
the mean achieved share), each from its own named stream, then simulates the
day-to-day randomness of attempts, delays and incidents given them. Streams are
keyed by (owner, purpose) names, so new inputs never shift existing draws, and
scenarios compared under one seed share their input draws.

- `resolve_inputs`: the scenario with this replication's cohort sizes and
  meters-per-installation ratio, and the devices a state from totals left dumb
  at its rates (a copy only when some cohort states an ``installations_range``
  or such a state, or the ratio a range);
- `draw_parameters`: a cohort's uncertain outcome rates and ``then_success``;
- `meters_ratio`: the replication's meters per installation (a size stated in
  meters is converted with it, and counts shown in meters use it);
- `programme_factor`, `slip_day`: the shared programme-delay factor and a
  slipped date (the ramp policy calls these for ``{dist: slip}`` dates);
- `achieved_path`: the day-by-day achieved share of the cap and its drawn mean;
- `record_inputs`: every input draw of the replication as ``{key: value}``
  (what ``Results.inputs`` and the variance split read);
- `TwinStreams`: the same inputs with fresh day-to-day randomness: a *twin* of
  replication k estimates Var(Y | inputs) for the law of total variance;
- `with_inputs_from`: a continued scenario's streams, whose inputs are those of
  the replication its state came from (``inputs_from``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np

from migsim.model.base import OUTCOMES
from migsim.model.cohort import Cohort
from migsim.model.distributions import (
    BetaProbability,
    DirichletOutcomes,
    draw_probability,
    gate_reference,
)
from migsim.model.point import point_scenario
from migsim.model.scenario import Scenario
from migsim.model.state import InitialState
from migsim.model.uncertainty import AchievedThroughput, ShareBeta, SlipDate
from migsim.sim.streams import Streams

__all__ = [
    "INPUT_PURPOSES",
    "Parameters",
    "PinnedInputs",
    "TwinStreams",
    "achieved_path",
    "draw_parameters",
    "dumb_per_migrated",
    "input_label",
    "meters_ratio",
    "point_values",
    "programme_factor",
    "record_inputs",
    "resolve_inputs",
    "slip_day",
    "step_cap",
    "with_inputs_from",
]

#: Stream purposes that draw inputs (once per replication); every other purpose
#: is day-to-day randomness. Twins share the first and redraw the second.
INPUT_PURPOSES = frozenset(
    {
        "parameters",  # a cohort's Dirichlet outcome rates
        "hard_parameters",  # its hard cases' rates
        "stall_parameters",  # its stalls' then_success (Beta)
        "date",  # an uncertain date field
        "accepted",  # whether a gate condition is accepted
        "size",  # a cohort's installations (a range)
        "programme_delay",  # the programme-wide delay factor
        "achieved_mean",  # the mean achieved share of the cap
        "level",  # a schedule step's cap (a range)
        "ratio",  # meters per installation (a range)
    }
)
#: Spawn-key word that marks a twin's day-to-day streams (never a replication's).
_TWIN_TAG = 0x7477696E  # "twin"


def _name_key(name: str) -> int:
    """A stable 32-bit key for a stream name (as the engine's `Streams`)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def _generator(seed: int, *words: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=words))


def _input_generator(streams, owner: str, purpose: str) -> np.random.Generator:
    """A fresh generator of a replication's input stream: the same numbers on
    every call (and for its twins), so an input drawn in two places agrees.
    `PinnedInputs` name another replication's input streams."""
    seed = getattr(streams, "input_seed", streams.seed)
    replication = getattr(streams, "input_replication", streams.replication)
    return _generator(seed, replication, _name_key(owner), _name_key(purpose))


class TwinStreams(Streams):
    """Streams of twin ``twin`` (>= 1) of replication ``replication``.

    Input purposes (`INPUT_PURPOSES`) give exactly the replication's streams, so
    the twin draws the same inputs; every other purpose gets a fresh stream of
    its own, so the day-to-day randomness is new (per-unit and per-day streams
    too: `Streams` keys them by the twin). A `Streams` to the engine.
    """

    def __init__(self, seed: int, replication: int, twin: int):
        if twin < 1:
            raise ValueError("a twin is numbered from 1 (0 is the replication)")
        super().__init__(seed, replication)
        self.twin = twin

    def get(self, owner: str, purpose: str) -> np.random.Generator:
        key = (owner, purpose)
        generator = self._generators.get(key)
        if generator is None:
            words = [self.replication, _name_key(owner), _name_key(purpose)]
            if purpose not in INPUT_PURPOSES:
                words += [_TWIN_TAG, self.twin]
            generator = self._generators[key] = _generator(self.seed, *words)
        return generator


class PinnedInputs(Streams):
    """Streams whose input purposes are another replication's.

    A scenario continued from replication k's state (``inputs_from``) runs its
    replications on these: input purposes (`INPUT_PURPOSES`) give exactly the
    streams of replication k under its run seed, so the continuation draws k's
    inputs again (the same spec, the same numbers); every other purpose, and
    everything else the engine asks of its streams (seed, replication, per-unit
    streams, a twin's own numbers), is the wrapped streams' own.
    """

    _OWN = frozenset({"get", "input_seed", "input_replication", "_streams", "_inputs"})

    def __init__(self, streams: Streams, seed: int, replication: int):
        super().__init__(streams.seed, streams.replication)
        self._streams = streams
        self.input_seed = seed
        self.input_replication = replication
        self._inputs: dict[tuple[str, str], np.random.Generator] = {}

    def __getattribute__(self, name: str):
        if name in PinnedInputs._OWN or name.startswith("__"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "_streams"), name)

    def get(self, owner: str, purpose: str) -> np.random.Generator:
        if purpose not in INPUT_PURPOSES:
            return self._streams.get(owner, purpose)
        key = (owner, purpose)
        generator = self._inputs.get(key)
        if generator is None:
            generator = self._inputs[key] = _generator(
                self.input_seed,
                self.input_replication,
                _name_key(owner),
                _name_key(purpose),
            )
        return generator


def with_inputs_from(scenario: Scenario, streams: Streams) -> Streams:
    """The streams a replication of ``scenario`` runs on: its own, or with
    ``inputs_from`` the continued replication's inputs (`PinnedInputs`)."""
    pinned = scenario.inputs_from
    if pinned is None:
        return streams
    return PinnedInputs(streams, pinned.seed, pinned.replication)


# --------------------------------------------------------------------------- draws
@dataclass(frozen=True)
class Parameters:
    """A cohort's uncertain parameters, drawn once per replication for all its
    segments: outcome rates by class kind (``normal``, ``hard``) and
    ``then_success``; ``None`` where the scenario states them as known."""

    rates: dict[str, np.ndarray]
    then_success: float | None


def draw_parameters(cohort: Cohort, streams) -> Parameters | None:
    """Draw a cohort's uncertain rates (Dirichlet, Beta) from its own streams.

    ``parameters`` (outcome rates), ``hard_parameters`` (the hard cases' rates)
    and ``stall_parameters`` (``then_success``); a cohort with known rates draws
    nothing and gets ``None``.
    """
    rates: dict[str, np.ndarray] = {}
    if isinstance(cohort.outcomes, DirichletOutcomes):
        rates["normal"] = cohort.outcomes.as_array(
            streams.get(cohort.name, "parameters")
        )
    hard = cohort.hard.outcomes if cohort.hard is not None else None
    if isinstance(hard, DirichletOutcomes):
        rates["hard"] = hard.as_array(streams.get(cohort.name, "hard_parameters"))
    then = cohort.stall.then_success if cohort.stall is not None else None
    drawn = None
    if isinstance(then, BetaProbability):
        drawn = then.draw(streams.get(cohort.name, "stall_parameters"))
    if not rates and drawn is None:
        return None
    return Parameters(rates, drawn)


def dumb_per_migrated(
    rates: np.ndarray, then_success: float, recovered_share: float = 0.0
) -> float:
    """Devices left dumb per installation migrated at these outcome rates
    (`OUTCOMES` order): dumb x (1 - recovered_share) / (success + fix forward
    + stall x then_success), since every other attempt, a remotely recovered
    device's included, is tried again."""
    rate = dict(zip(OUTCOMES, rates, strict=True))
    good = rate["success"] + rate["fix_forward"] + rate["stall"] * then_success
    left = rate["dumb"] * (1.0 - recovered_share)
    return float(left / good) if good > 0 else 0.0


class _FreshInputs:
    """A replication's input streams read afresh (`_input_generator`): a draw
    made here leaves the engine's own generators where they were, so both
    read the same numbers."""

    def __init__(self, streams):
        self._streams = streams

    def get(self, owner: str, purpose: str) -> np.random.Generator:
        return _input_generator(self._streams, owner, purpose)


def _own_dumb(cohort: Cohort, streams) -> InitialState:
    """A state from totals with its devices left dumb at this replication's
    rates (``dumb_estimated``: the totals said how many migrated, not how many
    went dumb on the way). At one estimate for every replication, the paths
    whose rates left many dumb were forecast as if few had been. The devices
    the state has awaiting remote recovery (``recovering``) are dumb on top of
    those left dumb, as the state counts them."""
    state = cohort.initial_state
    assert state is not None
    drawn = draw_parameters(cohort, _FreshInputs(streams))
    rates = (
        drawn.rates["normal"]
        if drawn is not None and "normal" in drawn.rates
        else cohort.outcomes.as_array()
    )
    if drawn is not None and drawn.then_success is not None:
        then = drawn.then_success
    else:
        then = (
            draw_probability(cohort.stall.then_success, None) if cohort.stall else 1.0
        )
    ratio = dumb_per_migrated(rates, then, cohort.recovered_share)
    recovering = sum(g.count for g in state.recovering)
    return state.with_dumb(round(state.migrated * ratio) + recovering)


def programme_factor(scenario: Scenario, streams) -> float:
    """The replication's programme-delay factor (1 without ``programme_delay``)."""
    delay = scenario.programme_delay
    if delay is None:
        return 1.0
    return delay.draw(_input_generator(streams, "programme", "programme_delay"))


def slip_day(spec: SlipDate, rng: np.random.Generator, scenario: Scenario, streams):
    """The day on the clock of a slipped date, drawn from its own stream ``rng``."""
    factor = programme_factor(scenario, streams) if spec.shared else 1.0
    return scenario.day_of(spec.draw(rng, factor))


#: Point versions of scenarios run with ``uncertainty: point``, by identity (the
#: scenario is kept alive with it, so an id is never reused while cached).
_POINT_CACHE: dict[int, tuple[Scenario, Scenario]] = {}


def point_values(scenario: Scenario) -> Scenario:
    """The scenario to simulate: itself, or with ``uncertainty: point`` its point
    version (`migsim.model.point.point_scenario`, made once per scenario)."""
    if scenario.uncertainty != "point":
        return scenario
    cached = _POINT_CACHE.get(id(scenario))
    if cached is None or cached[0] is not scenario:
        if len(_POINT_CACHE) >= 8:
            _POINT_CACHE.clear()
        cached = _POINT_CACHE[id(scenario)] = (scenario, point_scenario(scenario))
    return cached[1]


def meters_ratio(scenario: Scenario, streams) -> float | None:
    """The replication's meters per installation: drawn from its range on the
    input stream ``(meters, ratio)``, else the stated value (``None``: none)."""
    ratio = scenario.meters_per_installation
    spec = scenario.meters_per_installation_range
    if spec is None or ratio is None:
        return ratio
    return spec.draw(_input_generator(streams, "meters", "ratio"), ratio)


def resolve_inputs(scenario: Scenario, streams) -> Scenario:
    """The scenario with this replication's cohort sizes and ratio drawn.

    A size range ``from_meters`` is meters converted at the point ratio: the
    drawn size is converted again with the replication's own ratio (x point /
    drawn), so the cohort's meters stay in the stated range whatever the ratio.
    Without an ``installations_range`` or a ratio range the scenario itself
    comes back (no copy, no draw), so such runs cost and draw exactly what they
    did before.
    """
    ranged = [c for c in scenario.cohorts if c.installations_range is not None]
    spec = scenario.meters_per_installation_range
    states = {
        c.name: _own_dumb(c, streams)
        for c in scenario.cohorts
        if c.initial_state is not None and c.initial_state.dumb_estimated
    }
    if not ranged and spec is None and not states:
        return scenario
    ratio = meters_ratio(scenario, streams)
    point = scenario.meters_per_installation
    least = {
        c.name: _least_quantile(c, states.get(c.name), ratio, point) for c in ranged
    }
    shared: float | None = None  # the fleet's size: one quantile for every shared range
    cohorts = []
    for cohort in scenario.cohorts:
        size = cohort.installations_range
        if size is None:
            own = states.get(cohort.name)
            cohorts.append(
                cohort
                if own is None
                else cohort.model_copy(update={"initial_state": own})
            )
            continue
        if size.shared:
            if shared is None:  # drawn once, from its own stream, when first needed
                floor = max(least[c.name] for c in ranged if _shared(c))
                u = float(streams.get("fleet", "size").random())
                shared = floor + u * (1.0 - floor)
            drawn = size.at(shared, cohort.installations)
        else:
            u = float(streams.get(cohort.name, "size").random())
            floor = least[cohort.name]
            drawn = size.at(floor + u * (1.0 - floor), cohort.installations)
        if size.from_meters and ratio and point and ratio != point:
            drawn = math.floor(drawn * point / ratio + 0.5)  # same meters, this ratio
        fields: dict[str, object] = {"installations": drawn}
        fields["installations_range"] = None
        state = states.get(cohort.name, cohort.initial_state)
        if state is not None:  # a state from actuals: not seen yet
            state = state.with_size(drawn)
            fields.update(installations=state.total, initial_state=state)
        cohorts.append(cohort.model_copy(update=fields))
    update: dict[str, object] = {"cohorts": cohorts}
    if spec is not None:
        update.update(meters_per_installation=ratio, meters_per_installation_range=None)
    resolved = scenario.model_copy(update=update)
    resolved.__dict__.pop("sha256", None)  # a cached hash of the original
    return resolved


def _shared(cohort) -> bool:
    size = cohort.installations_range
    return size is not None and size.shared


def _least_quantile(
    cohort, state: InitialState | None, ratio: float | None, point: float | None
) -> float:
    """The smallest quantile of a cohort's size range that holds what its
    state (a forecast from actuals that do not report sizes) already holds:
    a size below it is not possible, so it is drawn given that it is not
    (`SizeRange.least_quantile`). Sizes in meters are compared at the
    replication's ratio, as they are converted. 0 without a state; ``state``
    is the replication's own when it differs from the cohort's (`_own_dumb`)."""
    state = state or cohort.initial_state
    if state is None:
        return 0.0
    least = state.least_size
    size = cohort.installations_range
    if size.from_meters and ratio and point and ratio != point:
        # floor(v * point / ratio + 0.5) >= least: v >= (least - 0.5) * ratio / point
        least = math.ceil((least - 0.5) * ratio / point)
    return size.least_quantile(least, cohort.installations)


def _step_path(step, index: int) -> str:
    return f"capacity.schedule.{step.name or index}.daily_cap"


def step_cap(step, index: int, streams) -> int:
    """A schedule step's cap: as stated, or drawn from its range (an input)."""
    if step.daily_cap_range is None:
        return step.daily_cap
    rng = _input_generator(streams, _step_path(step, index), "level")
    return step.daily_cap_range.draw(rng, step.daily_cap)


def achieved_path(
    spec: AchievedThroughput, streams, n_days: int
) -> tuple[np.ndarray, float]:
    """``(daily shares, mean share)``: the mean drawn once (an input), the path
    from the day-to-day stream."""
    mean = spec.mean
    if isinstance(mean, ShareBeta):
        mean = mean.draw(streams.get("capacity", "achieved_mean"))
    path = spec.path(float(mean), streams.get("capacity", "achieved_path"), n_days)
    return path, float(mean)


# --------------------------------------------------------------------------- records
def _uncertain_dates(scenario: Scenario) -> list[str]:
    return [
        path
        for path, spec in scenario.date_fields().items()
        if not isinstance(spec, date) and gate_reference(spec) is None
    ]


def input_keys(scenario: Scenario) -> list[str]:
    """The keys `record_inputs` gives for this scenario, in a stable order."""
    keys: list[str] = []
    if scenario.programme_delay is not None:
        keys.append("programme_delay")
    if scenario.meters_per_installation_range is not None:
        keys.append("meters_per_installation")
    achieved = scenario.capacity.achieved
    if achieved is not None and isinstance(achieved.mean, ShareBeta):
        keys.append("capacity.achieved.mean")
    for cohort in scenario.cohorts:
        prefix = f"cohorts.{cohort.name}"
        if cohort.installations_range is not None:
            keys.append(f"{prefix}.installations")
        for section, outcomes in (
            ("outcomes", cohort.outcomes),
            ("hard.outcomes", cohort.hard.outcomes if cohort.hard else None),
        ):
            if isinstance(outcomes, DirichletOutcomes):
                keys += [
                    f"{prefix}.{section}.{o}" for o in OUTCOMES if outcomes.possible(o)
                ]
        then = cohort.stall.then_success if cohort.stall is not None else None
        if isinstance(then, BetaProbability):
            keys.append(f"{prefix}.stall.then_success")
    for index, step in enumerate(scenario.capacity.schedule):
        if step.daily_cap_range is not None:
            keys.append(_step_path(step, index))
    keys += _uncertain_dates(scenario)
    keys += [f"gates.{gate.name}" for gate in scenario.gates]
    return keys


def record_inputs(
    scenario: Scenario,
    resolved: Scenario,
    streams,
    dates,
    parameters: list,
    achieved_mean: float | None,
) -> dict[str, float]:
    """Every input draw of one replication, keyed as `input_keys` (+inf: a date
    or gate that never comes). ``parameters`` are the engine's per-cohort drawn
    rates (``None`` where known)."""
    out: dict[str, float] = {}
    ordered = input_keys(scenario)
    keys = set(ordered)
    if "programme_delay" in keys:
        out["programme_delay"] = programme_factor(scenario, streams)
    if "meters_per_installation" in keys:
        out["meters_per_installation"] = float(resolved.meters_per_installation or 0)
    if "capacity.achieved.mean" in keys and achieved_mean is not None:
        out["capacity.achieved.mean"] = achieved_mean
    for cohort, drawn, drawn_params in zip(
        scenario.cohorts, resolved.cohorts, parameters, strict=True
    ):
        prefix = f"cohorts.{cohort.name}"
        if f"{prefix}.installations" in keys:
            out[f"{prefix}.installations"] = float(drawn.installations)
        if drawn_params is None:
            continue
        for kind, section in (("normal", "outcomes"), ("hard", "hard.outcomes")):
            rates = drawn_params.rates.get(kind)
            if rates is None:
                continue
            for name, rate in zip(OUTCOMES, rates.tolist(), strict=True):
                key = f"{prefix}.{section}.{name}"
                if key in keys:
                    out[key] = rate
        if drawn_params.then_success is not None:
            out[f"{prefix}.stall.then_success"] = drawn_params.then_success
    for index, step in enumerate(scenario.capacity.schedule):
        if step.daily_cap_range is not None:
            out[_step_path(step, index)] = float(step_cap(step, index, streams))
    for path in _uncertain_dates(scenario):
        day = dates.days.get(path)
        out[path] = math.inf if day is None else float(day)
    for gate in scenario.gates:
        day = dates.gate_days.get(gate.name)
        out[f"gates.{gate.name}"] = math.inf if day is None else float(day)
    return {key: out[key] for key in ordered if key in out}


# --------------------------------------------------------------------------- words
_RATE_WORDS = {
    "success": "success rate",
    "stall": "stall rate",
    "rollback": "rollback rate",
    "fix_forward": "fix-forward rate",
    "dumb": "dumb rate",
}


def input_label(key: str, labels: Mapping[str, str] | None = None) -> str:
    """An input key in a planner's words ("foc_active start date")."""
    if labels and key in labels:
        return labels[key]
    parts = key.split(".")
    if key == "programme_delay":
        return "programme-wide delay"
    if key == "meters_per_installation":
        return "meters per installation"
    if key == "capacity.achieved.mean":
        return "achieved throughput (share of the cap)"
    if parts[0] == "gates" and len(parts) == 2:
        return f"gate {parts[1]} opening"
    if parts[0] == "capacity" and parts[1] == "schedule":
        what = "cap" if parts[-1] == "daily_cap" else "date"
        return f"ramp step {parts[2]} {what}"
    if parts[0] == "suppliers":
        return f"supplier {parts[1]} ready date"
    if parts[0] == "gates" and len(parts) >= 5:  # a condition of the gate
        return f"gate {parts[1]}: {parts[3]} date"
    if parts[0] == "gates":
        return f"gate {parts[1]} date"
    if parts[0] == "cohorts":
        cohort, rest = parts[1], ".".join(parts[2:])
        if rest == "eligible_from":
            return f"{cohort} start date"
        if rest == "installations":
            return f"{cohort} size"
        if rest == "stall.then_success":
            return f"{cohort} stall completion rate"
        if rest == "outcomes":
            return f"{cohort} outcome rates"
        if rest == "hard.outcomes":
            return f"{cohort} hard-case outcome rates"
        if rest.startswith("outcomes."):
            return f"{cohort} {_RATE_WORDS[parts[-1]]}"
        if rest.startswith("hard.outcomes."):
            return f"{cohort} hard-case {_RATE_WORDS[parts[-1]]}"
        if rest.endswith(".until"):
            return f"{cohort} {rest.removesuffix('.until').replace('.', ' ')} date"
        if rest == "stall.release_on":
            return f"{cohort} stall release date"
    return key
