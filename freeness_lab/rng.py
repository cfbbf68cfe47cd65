"""Random number generation: one ``numpy.random.Generator`` per independent task.

Monte Carlo work is seeded through :class:`numpy.random.SeedSequence`: a root sequence
made from the run's entropy spawns one child per (cell, trial). A child is identified by
its ``spawn_key`` so any single trial can be regenerated with :func:`generator_for`.
Never share one Generator between parallel tasks: each worker would receive a pickled copy
in the same state and draw the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

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
