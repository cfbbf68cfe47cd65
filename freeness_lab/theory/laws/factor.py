"""The law of D^2 = phi'(h)^2 as a building block of a free product (:func:`d2_factor`).

Exact atoms for a piecewise-linear phi; for a smooth phi either the contour rule
(:class:`~freeness_lab.theory.laws.smooth_d2.SmoothD2Law`, accurate on and near the support)
or the real quadrature of :func:`~freeness_lab.theory.meanfield.d2_law` as a
:class:`~freeness_lab.theory.laws.elementary.QuadratureLaw` (accurate away from it).
"""

from __future__ import annotations

import functools

import numpy as np

from freeness_lab.activations import get_activation
from freeness_lab.theory.laws.elementary import DiscreteLaw, QuadratureLaw
from freeness_lab.theory.laws.smooth_d2 import SmoothD2Law
from freeness_lab.theory.meanfield import D2Law

__all__ = ["d2_factor", "dphi_has_zero"]


@functools.cache
def dphi_has_zero(name: str) -> bool:
    """Whether phi' changes sign on [-20, 20] (SiLU, GELU: g = phi'^2 has a double zero)."""
    d = get_activation(name).dphi(np.linspace(-20.0, 20.0, 4001))
    return bool(np.any(d[:-1] * d[1:] < 0))


def d2_factor(d2: D2Law, *, near_support: bool = True, fit_from: object = None
              ) -> DiscreteLaw | SmoothD2Law | QuadratureLaw:
    """The law of D^2 as a building block.

    ``fit_from``: the factor of the previous layer; a :class:`SmoothD2Law` there starts the
    fit of this one's (:class:`SmoothD2Law` ``fit_from``), anything else is ignored.

    Exact atoms for a piecewise-linear phi. For a smooth phi, with ``near_support`` (the
    default): the push-forward law with its contour rule (:class:`SmoothD2Law`), whose G is
    accurate on and near the support (one stationary point of g = phi'^2 for tanh, erf,
    sigmoid; three for SiLU and GELU, one a double zero of g). With ``near_support=False``:
    the real quadrature of ``d2`` as a :class:`QuadratureLaw`: accurate where G is evaluated
    away from the support, and 5 to 20 times cheaper. Networks with Gaussian weights
    qualify: the Marchenko-Pastur factor of every layer keeps the subordination points of
    the D^2 factors off their support (checked by the density-vs-series-moments tests of
    ``tests/test_newton.py``) -- except for a phi' with a zero (SiLU, GELU): the law then
    has a density ~ t^(-1/2) at 0, a real quadrature's smallest node cuts it off, and the
    subordination points of the D^2 factors do approach 0 as x -> 0 (deep products put
    their mass at x ~ e^-1000); those always get the contour rule.
    """
    if len(d2.atoms):
        return DiscreteLaw(d2.atoms[:, 0], d2.atoms[:, 1] / d2.atoms[:, 1].sum())
    if near_support or dphi_has_zero(d2.activation):
        return SmoothD2Law(d2, fit_from if isinstance(fit_from, SmoothD2Law) else None)
    nodes, weights = d2.nodes.copy(), d2.weights / d2.weights.sum()
    # the Gaussian tails beyond the flat region are lumped at phi'(+-inf)^2, which may be 0:
    # a spurious atom at 0 that would give the product an atom at 0; it moves to the
    # smallest positive node
    zero = nodes == 0
    if zero.any() and (~zero).any():
        smallest = np.argmin(np.where(zero, np.inf, nodes))
        weights[smallest] += weights[zero].sum()
        nodes, weights = nodes[~zero], weights[~zero]
    return QuadratureLaw(nodes, weights, label=f"{d2.activation}, q={d2.q:.6g}")
