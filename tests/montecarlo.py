"""Monte Carlo tolerances in units of the standard error, and the seeds tests run under.

One place for the rule every Monte Carlo test uses: a mean agrees with its prediction when it is
within z standard errors plus a stated deterministic finite-size allowance.
"""

from __future__ import annotations

import numpy as np

SEEDS_VARIABLE = "FREENESS_LAB_SEEDS"


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``; a ``ValueError`` naming the variable otherwise."""
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            low, _, high = part.partition("-")
            seeds += range(int(low), int(high or low) + 1)
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise ValueError(f"{SEEDS_VARIABLE}={text!r}: expected non-negative integers and "
                         f"ranges separated by commas, e.g. 0-19 or 0-4,17")
    return seeds


def standard_error(samples: np.ndarray) -> np.ndarray:
    """Standard error of the mean over axis 0 (unbiased variance, n - 1)."""
    samples = np.asarray(samples, dtype=float)
    return samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])


def assert_mean_within(samples: np.ndarray, expected: object, *, z: float = 4.0,
                       bias: object = 0.0) -> None:
    """Assert |mean(samples) - expected| <= z SE + bias, elementwise over axis 0.

    ``bias`` is the deterministic finite-size allowance (e.g. O(1/M) terms) that a test states
    and justifies; ``z`` = 4 gives a false alarm rate of 6e-5 per checked value under a normal
    mean.
    """
    samples = np.asarray(samples, dtype=float)
    if samples.shape[0] < 2:
        raise ValueError("samples: need at least 2 along axis 0 for a standard error")
    mean, se = samples.mean(axis=0), standard_error(samples)
    excess = np.abs(mean - np.asarray(expected, dtype=float)) - (z * se + np.asarray(bias))
    assert np.all(excess <= 0), (f"Monte Carlo mean {mean} vs expected {expected}: "
                                 f"{np.abs(mean - expected) / se} SE, allowed {z} SE + {bias}")
