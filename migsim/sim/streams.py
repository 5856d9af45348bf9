"""Random streams: one generator per (owner, purpose) of one replication.

Replication k of a run draws only from streams derived from ``(seed, k)`` and
the stream's own names, so its numbers do not depend on the worker count, on
which other replications run, or on the cohorts and sections added beside it.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["Streams", "replication_seed"]


def _name_key(name: str) -> int:
    """A stable 32-bit key for a stream name (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def replication_seed(seed: int, replication: int) -> np.random.SeedSequence:
    """The seed sequence of replication k: the k-th child of ``SeedSequence(seed)``."""
    return np.random.SeedSequence(seed, spawn_key=(replication,))


class Streams:
    """Independent generators per (owner, purpose), keyed by stable names.

    Adding a cohort or a scenario section adds streams; it never shifts the
    numbers another cohort draws, because each stream's seed depends only on the
    run seed, the replication and its own names.
    """

    def __init__(self, seed: int, replication: int):
        self.seed = seed
        self.replication = replication
        self._generators: dict[tuple[str, str], np.random.Generator] = {}

    def get(self, owner: str, purpose: str) -> np.random.Generator:
        key = (owner, purpose)
        generator = self._generators.get(key)
        if generator is None:
            sequence = np.random.SeedSequence(
                self.seed,
                spawn_key=(self.replication, _name_key(owner), _name_key(purpose)),
            )
            generator = self._generators[key] = np.random.default_rng(sequence)
        return generator
