"""Argument checks of the public law interface, in one place.

Every law object (:class:`~freeness_lab.theory.laws.SpectralLaw` and its subclasses, and the
mean-field :class:`~freeness_lab.theory.meanfield.D2Law`) checks its arguments here, so that
a bad argument gives the same answer everywhere:

* a moment order ``n`` that is not an integer >= 1 is a ``ValueError`` naming ``n``;
* points ``x`` (density, cdf), probabilities ``p`` (quantile) and spectral points ``zeta``
  (Cauchy transform) must be real (``zeta``: complex) numbers; NaN is a missing value and is
  returned as NaN, elementwise, without reaching the numerics;
* a probability outside [0, 1] is a ``ValueError`` naming ``p``.

Kept free of the law classes (and of numerics) so that :mod:`freeness_lab.theory.meanfield`
can use it without an import cycle.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

__all__ = ["moment_order", "real_points", "probabilities", "spectral_points"]


def moment_order(n: object, name: str = "n") -> int:
    """The number of moments asked for, checked.

    Parameters
    ----------
    n : object
        Must be an integer >= 1 (Python or numpy integer; not a bool, not a float).
    name : str
        The argument's name, for the message.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Naming ``name`` and the allowed values.
    """
    if isinstance(n, bool | np.bool_) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"{name}: must be an integer >= 1 (the number of moments m_1..m_n), "
                         f"got {n!r}")
    return int(n)


def real_points(x: object, name: str = "x") -> np.ndarray:
    """``x`` as a float array (any shape; NaN and +-inf allowed).

    Raises
    ------
    ValueError
        Naming ``name`` when ``x`` holds something that is not a real number (a complex
        number, a bool, a string, None).
    """
    a = np.asarray(x)
    if a.dtype.kind not in "iuf":
        raise ValueError(f"{name}: must be real numbers (NaN is returned as NaN), got {x!r}")
    return a.astype(float, copy=False)


def probabilities(p: object, name: str = "p") -> np.ndarray:
    """``p`` as a float array with every non-NaN entry in [0, 1].

    Raises
    ------
    ValueError
        Naming ``name`` when an entry is not a real number or lies outside [0, 1] (NaN is a
        missing value, not an error).
    """
    p = real_points(p, name)
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"{name}: must lie in [0, 1] (NaN is returned as NaN), "
                         f"got {p[(p < 0) | (p > 1)].ravel()[:4].tolist()}")
    return p


def spectral_points(zeta: object, name: str = "zeta") -> np.ndarray:
    """``zeta`` as a complex array in the closed upper half-plane (NaN entries allowed).

    Raises
    ------
    ValueError
        Naming ``name`` when an entry is not a number or has a negative imaginary part.
    """
    a = np.asarray(zeta)
    if a.dtype.kind not in "iufc":
        raise ValueError(f"{name}: must be complex numbers, got {zeta!r}")
    z = a.astype(complex, copy=False)
    if np.any(z.imag < 0):
        raise ValueError(f"{name}: must lie in the closed upper half-plane (Im {name} >= 0)")
    return z
