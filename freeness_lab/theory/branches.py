"""Branches of the complex logarithm on which the Newton systems' unknowns live.

The subordination unknowns m = psi(1/zeta) and omega lie in the closed lower half-plane, the
spectral points zeta and the chain's xi in the closed upper one; their logarithms are taken
on the principal branch continued from that half-plane, so that a point on the real axis
(rounding may put it a hair on the wrong side) keeps the branch of its neighbours.
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_lower", "log_upper"]


def log_lower(z: np.ndarray) -> np.ndarray:
    """Principal log of the complex array z with Im z clipped to <= 0, a new complex array.

    A point of the upper half-plane is taken on the real axis; the negative axis itself,
    Im = +0, maps to +i pi, like :func:`log_upper`: the chain system's residuals at the base of
    H_L need the two to agree there -- with -i pi instead, erf at depth 4 loses a point at
    4e-10 above the base.
    """
    return _clipped_log(z, upper=False)


def log_upper(z: np.ndarray) -> np.ndarray:
    """Principal log of the complex array z continued from the upper half-plane (the negative
    axis maps to +i pi), a new complex array."""
    return _clipped_log(z, upper=True)


def _clipped_log(z: np.ndarray, upper: bool) -> np.ndarray:
    """np.log of z with Im z set to +0 where it is <= 0 (``upper``) or >= 0."""
    w = np.array(z, dtype=complex)
    im = w.imag
    im[(im <= 0) if upper else (im >= 0)] = 0.0
    return np.log(w)
