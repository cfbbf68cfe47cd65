"""Free cumulants of one variable: the moment-cumulant formula over NC(n), both ways.

kappa_n = sum_{pi in NC(n)} mu(pi, 1_n) prod_{V in pi} m_{|V|} and conversely
m_n = sum_{pi in NC(n)} prod_{V in pi} kappa_{|V|} (Nica & Speicher 2006, Lectures 10-11).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from freeness_lab.theory.free_cumulants.partitions import size_types

__all__ = ["as_sequence", "free_cumulants_to_moments", "moments_to_free_cumulants"]


def as_sequence(name: str, values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be a 1-D sequence of finite numbers, got {values!r}")
    return arr


def moments_to_free_cumulants(moments: Sequence[float]) -> np.ndarray:
    """Free cumulants kappa_1..kappa_n of one variable from its moments m_1..m_n.

    Moebius inversion over NC(k): kappa_k = sum_{pi in NC(k)} mu(pi, 1_k) prod_{V in pi}
    m_{|V|} (Nica & Speicher 2006, Lecture 11). Semicircle: kappa = (0, 1, 0, 0, ...);
    free Poisson of rate lambda: kappa_k = lambda for all k.

    Parameters
    ----------
    moments : sequence of float
        m_1, ..., m_n (normalized traces of the powers).

    Returns
    -------
    numpy.ndarray
        kappa_1, ..., kappa_n.

    Examples
    --------
    >>> moments_to_free_cumulants([0.0, 1.0, 0.0, 2.0])  # semicircle: m_4 = Catalan(2) = 2
    array([0., 1., 0., 0.])
    """
    m = np.concatenate([[1.0], as_sequence("moments", moments)])
    return np.array([sum(w * math.prod(m[s] for s in sizes) for sizes, w in size_types(k, True))
                     for k in range(1, len(m))])


def free_cumulants_to_moments(cumulants: Sequence[float]) -> np.ndarray:
    """Moments m_1..m_n of one variable from its free cumulants kappa_1..kappa_n.

    Moment-cumulant formula m_k = sum_{pi in NC(k)} prod_{V in pi} kappa_{|V|}, the inverse of
    :func:`moments_to_free_cumulants`.
    """
    c = np.concatenate([[1.0], as_sequence("cumulants", cumulants)])
    return np.array([sum(w * math.prod(c[s] for s in sizes) for sizes, w in size_types(k, False))
                     for k in range(1, len(c))])
