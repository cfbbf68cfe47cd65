"""Random number generation: one ``numpy.random.Generator`` per independent task.

Monte Carlo work is seeded through :class:`numpy.random.SeedSequence`, one way only
(:func:`content_seed`): the child of the run's entropy for one trial of one task is
``SeedSequence(entropy, spawn_key=content_words(identity) + (trial,))``, keyed by the
task's content (its ``identity``), never by its position. A child is identified by its
``spawn_key`` so any single trial can be regenerated with :func:`generator_for`.
Never share one Generator between parallel tasks: each worker would receive a pickled copy
in the same state and draw the same numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

RngLike = np.random.Generator | int | np.random.SeedSequence | None


def as_generator(rng: RngLike) -> np.random.Generator:
    """Return a Generator: ``rng`` itself, or a new PCG64 seeded from an int / SeedSequence.

    ``None`` is refused: randomness in this project is always passed explicitly.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("rng: pass a numpy.random.Generator, a SeedSequence or an int seed")
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer | np.random.SeedSequence):
        raise ValueError(f"rng: expected a numpy.random.Generator, a SeedSequence or an int "
                         f"seed, got {type(rng).__name__}")
    return np.random.default_rng(rng)


def generator_for(entropy: int, spawn_key: Sequence[int]) -> np.random.Generator:
    """The Generator of the task with this root ``entropy`` and ``spawn_key``.

    ``generator_for(e, k)`` draws the same numbers as the child of
    ``SeedSequence(e)`` reached by ``spawn`` calls along ``k``.
    """
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key)))


def spawn_generators(seed: RngLike, n: int) -> list[np.random.Generator]:
    """``n`` statistically independent Generators spawned from ``seed``.

    An int or SeedSequence is spawned through SeedSequence; a Generator through
    ``Generator.spawn`` (which advances nothing in the parent's stream).
    """
    if isinstance(seed, np.random.Generator):
        return seed.spawn(n)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.default_rng(child) for child in ss.spawn(n)]


def content_digest(obj: Any) -> bytes:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys, no spaces, tuples as lists)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode()).digest()


def content_words(identity: Any) -> tuple[int, ...]:
    """Four 32-bit words (little-endian) of :func:`content_digest` (identity): the content's
    part of every spawn key."""
    d = content_digest(identity)
    return tuple(int.from_bytes(d[4 * i:4 * i + 4], "little") for i in range(4))


def content_seed(entropy: int, identity: Any, trial: int) -> np.random.SeedSequence:
    """The SeedSequence of one trial of the task ``identity`` under the root ``entropy``.

    ``SeedSequence(entropy, spawn_key=content_words(identity) + (trial,))``: the same numbers
    whatever the order of the tasks or the number of workers.

    Parameters
    ----------
    entropy : int
        Root entropy (the run's seed).
    identity : JSON-serialisable
        What the task computes (e.g. a cell's study and network spec).
    trial : int
        Index of the trial within the task, >= 0.
    """
    return np.random.SeedSequence(entropy, spawn_key=(*content_words(identity), trial))
