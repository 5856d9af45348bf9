"""Random streams of one replication, keyed so that compared scenarios pair.

Three kinds, all derived only from ``(seed, replication)`` and the stream's own
names, so a replication's numbers never depend on the worker count, on which
other replications run, or on the cohorts and sections added beside it:

- `Streams.get` (owner, purpose): a generator for draws made once per
  replication, up front, in a fixed number (uncertain rates, dates, the
  incident calendar, defect existence, achieved throughput). Nothing a lever
  changes can shift them.
- `Streams.units` (owner, purpose) then ``take(column, n)``: *per-unit*
  uniforms. The k-th unit a stream serves gets the k-th uniform of that stream,
  however the units are batched into days. The k-th first attempt of a cohort
  segment's class gets the same uniform whatever the cap, schedule or rules, so
  its outcome is the same; outcome counts, delays (inverse CDF of the delay's
  day table) and yes/no draws are all taken from the units' own uniforms.
- `Streams.on_day` (owner, purpose, day): a generator for draws made once a
  day on a count that levers change (consumer exposure): day d's draw comes
  from day d's own counter range, so a change on one day shifts no other day.

Per-unit and per-day streams are read from one counter-based generator
(Philox-4x64, key = hash of ``(seed, replication)``): uniform k of stream
(owner, purpose, column) is word ``k mod 4`` of the block at counter
``(k // 4 + 1, column, hash(purpose), hash(owner))``. A stream is read in
chunks of growing size; the chunk sizes change which calls compute a
uniform, never its value.
"""

from __future__ import annotations

import functools
import hashlib
from typing import cast

import numpy as np
from numpy.random.bit_generator import ISeedSequence

__all__ = [
    "Categories",
    "Streams",
    "UnitStreams",
    "below",
    "counts_below",
    "cumulative",
    "replication_seed",
]

#: Words (uniforms) read by a per-unit stream's first refill; later refills double.
FIRST_CHUNK = 64
#: The largest chunk a refill reads beyond what the caller asked for (it bounds
#: the uniforms computed and never used).
MAX_CHUNK = 4096
#: The largest double below 1: a rescaled uniform is kept on [0, 1).
BELOW_ONE = np.nextafter(1.0, 0.0)


@functools.lru_cache(maxsize=4096)
def _name_key(name: str) -> int:
    """A stable 32-bit key for a stream name (Python's hash() is salted);
    remembered: every replication's set-up asks for the same few names."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


@functools.lru_cache(maxsize=4096)
def _wide_key(name: str) -> int:
    """A stable 64-bit key for a stream name, one word of the Philox counter."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def replication_seed(seed: int, replication: int) -> np.random.SeedSequence:
    """The seed sequence of replication k: the k-th child of ``SeedSequence(seed)``."""
    return np.random.SeedSequence(seed, spawn_key=(replication,))


def cumulative(probs: np.ndarray) -> np.ndarray:
    """Edges of the categories of ``probs`` on [0, 1): a uniform u falls in
    category i when ``edges[i-1] <= u < edges[i]`` (see `counts_below`).

    The cumulative sum is divided by its last value, so trailing categories of
    probability 0 end exactly at 1.0 and can never be drawn.
    """
    total = np.cumsum(np.asarray(probs, dtype=float))
    edges = total[:-1] / total[-1]
    edges.setflags(write=False)
    return edges


def counts_below(uniforms: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many units fall in each category (``len(edges) + 1`` counts)."""
    return np.bincount(
        np.searchsorted(edges, uniforms, side="right"), minlength=len(edges) + 1
    )


class Categories:
    """A probability table read with per-unit uniforms, and what is left of them.

    A unit's category is where its uniform u falls on [0, 1) (inverse CDF).
    Given its category i, ``(u - low_i) / width_i`` is again uniform on [0, 1)
    and independent of i: the unit's own uniform for what follows (its delay,
    whether a stall completes, its retry delay), so one uniform decides an
    attempt and all of its aftermath without consuming another stream.
    """

    __slots__ = ("edges", "low", "size", "width")

    def __init__(self, probs: np.ndarray):
        self.edges = cumulative(probs)
        self.low = np.concatenate(([0.0], self.edges))
        width = np.concatenate((self.edges, [1.0])) - self.low
        self.width = np.where(width > 0, width, 1.0)  # empty ones are never hit
        self.size = len(self.low)
        self.low.setflags(write=False)  # a table may serve many replications
        self.width.setflags(write=False)

    def of(self, uniforms: np.ndarray) -> np.ndarray:
        """Each unit's category."""
        return self.edges.searchsorted(uniforms, side="right")

    def counts(self, uniforms: np.ndarray) -> np.ndarray:
        """How many units fall in each category."""
        return np.bincount(self.of(uniforms), minlength=self.size)

    def within(self, uniforms: np.ndarray, category) -> np.ndarray:
        """The fresh uniforms of units known to be in ``category`` (or categories)."""
        rest = (uniforms - self.low[category]) / self.width[category]
        return np.minimum(rest, BELOW_ONE, out=rest)

    def split(self, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each unit's category and its fresh uniform for what follows."""
        categories = self.of(uniforms)
        return categories, self.within(uniforms, categories)


def below(uniforms: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Units whose uniform falls below ``share`` (yes), and each one's fresh uniform."""
    yes = uniforms < share
    rest = np.where(
        yes,
        uniforms / max(share, 1e-300),
        (uniforms - share) / max(1.0 - share, 1e-300),
    )
    return yes, np.minimum(rest, BELOW_ONE, out=rest)


class _Key(ISeedSequence):
    """A Philox key as a seed: ``Philox(key=...)`` would first gather entropy
    from the system for a seed it then drops (about 12 of the 15 us a stream's
    generator costs, and the block engine makes one per replication, column
    and purpose); a seed whose state is the key gives the same generator."""

    __slots__ = ("words",)

    def __init__(self, key: np.ndarray):
        self.words = key

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        if n_words != len(self.words) or np.dtype(dtype) != np.uint64:
            raise ValueError("a Philox key is two 64-bit words")
        return self.words.copy()


class _Source:
    """The replication's counter-based generator, shared by its keyed streams.

    Every read first sets the counter, so streams never consume each other's
    numbers: a read is a pure function of (key, counter, length).
    """

    def __init__(self, seed: int, replication: int, twin: int = 0):
        name = f"migsim:{int(seed)}:{int(replication)}"
        if twin:  # a twin's day-to-day randomness is its own
            name += f":twin:{int(twin)}"
        digest = hashlib.sha256(name.encode())
        self.key = np.frombuffer(digest.digest()[:16], dtype=np.uint64).copy()
        # numpy takes any ISeedSequence; its stubs name SeedSequence alone
        self._seed = cast(np.random.SeedSequence, _Key(self.key))
        self.bits = np.random.Philox(self._seed)
        self.generator = np.random.Generator(self.bits)
        self._buffer = np.zeros(4, dtype=np.uint64)

    def stream(self, column: int, purpose: int, owner: int) -> np.random.Generator:
        """A generator of its own reading stream (owner, purpose, column) from
        its first uniform on: read sequentially, in any sizes, it gives the
        stream's k-th uniform as its k-th (Philox keeps a partial block)."""
        counter = np.array([0, column, purpose, owner], dtype=np.uint64)
        return np.random.Generator(np.random.Philox(self._seed, counter=counter))

    def at(self, block: int, column: int, purpose: int, owner: int):
        """The generator, positioned so its next word is block ``block + 1``'s first."""
        self.bits.state = {
            "bit_generator": "Philox",
            "state": {
                "counter": np.array([block, column, purpose, owner], dtype=np.uint64),
                "key": self.key,
            },
            "buffer": self._buffer,
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }
        return self.generator


class _UnitStream:
    """Uniforms of one (owner, purpose, column): the k-th unit gets the k-th."""

    __slots__ = ("_buffer", "_chunk", "_generator", "_pos")

    def __init__(self, source: _Source, column: int, purpose: int, owner: int):
        # The stream's own generator, set once at its first block: it stays
        # positioned at the next word, so no refill pays for setting a shared
        # generator's state again.
        self._generator = source.stream(column, purpose, owner)
        self._buffer = np.empty(0)
        self._pos = 0
        self._chunk = FIRST_CHUNK

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` uniforms on [0, 1) (a read-only view)."""
        end = self._pos + n
        if end > len(self._buffer):
            self._refill(n)
            end = n
        out = self._buffer[self._pos : end]
        self._pos = end
        return out

    def _refill(self, n: int) -> None:
        tail = self._buffer[self._pos :]
        words = max(self._chunk, n - len(tail))
        words += -words % 4  # whole blocks
        fresh = self._generator.random(words)
        self._chunk = min(2 * self._chunk, MAX_CHUNK)
        self._buffer = np.concatenate([tail, fresh]) if len(tail) else fresh
        self._pos = 0


class UnitStreams:
    """Per-unit uniforms of one (owner, purpose), a stream per ``column``.

    A column is whatever indexes the units in the caller: a segment's class x
    attempts made, so the k-th second attempt of a class has its own uniform
    whatever the first attempts did.
    """

    __slots__ = ("_names", "_source", "_streams")

    def __init__(self, source: _Source, owner: str, purpose: str):
        self._source = source
        self._names = (_wide_key(purpose), _wide_key(owner))
        self._streams: dict[int, _UnitStream] = {}

    def generator(self, column: int) -> np.random.Generator:
        """A fresh generator of ``column``'s stream from its first uniform on
        (for the block engine, which reads a stream itself)."""
        return self._source.stream(column, *self._names)

    def take(self, column: int, n: int) -> np.ndarray:
        """The next ``n`` uniforms of ``column``'s stream."""
        stream = self._streams.get(column)
        if stream is None:
            stream = self._streams[column] = _UnitStream(
                self._source, column, *self._names
            )
        return stream.take(n)


class Streams:
    """The random streams of replication ``replication`` under run seed ``seed``.

    Adding a cohort or a scenario section adds streams; it never shifts the
    numbers another cohort draws, because each stream depends only on the run
    seed, the replication and its own names (see the module docstring).
    """

    #: 0 for a replication; k >= 1 for its k-th twin (`migsim.sim.inputs`), whose
    #: per-unit and per-day streams are its own
    twin = 0

    def __init__(self, seed: int, replication: int):
        self.seed = seed
        self.replication = replication
        self._generators: dict[tuple[str, str], np.random.Generator] = {}
        self._units: dict[tuple[str, str], UnitStreams] = {}
        self._source: _Source | None = None

    def get(self, owner: str, purpose: str) -> np.random.Generator:
        """A generator for draws made once per replication, up front."""
        key = (owner, purpose)
        generator = self._generators.get(key)
        if generator is None:
            sequence = np.random.SeedSequence(
                self.seed,
                spawn_key=(self.replication, _name_key(owner), _name_key(purpose)),
            )
            generator = self._generators[key] = np.random.default_rng(sequence)
        return generator

    def _counter(self) -> _Source:
        if self._source is None:
            self._source = _Source(self.seed, self.replication, self.twin)
        return self._source

    def units(self, owner: str, purpose: str) -> UnitStreams:
        """Per-unit uniforms of (owner, purpose): ``take(column, n)``."""
        key = (owner, purpose)
        streams = self._units.get(key)
        if streams is None:
            streams = self._units[key] = UnitStreams(self._counter(), owner, purpose)
        return streams

    def on_day(self, owner: str, purpose: str, day: int) -> np.random.Generator:
        """A generator for one draw on ``day`` of (owner, purpose).

        Use it at once: the next call on this replication's streams moves it.
        """
        return self._counter().at(
            0, int(day), _wide_key(f"day:{purpose}"), _wide_key(owner)
        )
