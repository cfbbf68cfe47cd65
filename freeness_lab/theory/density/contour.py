"""Exact masses of a solved law between points outside its support, by Cauchy's theorem.

The mass of the law between two points a < b outside its support is a contour integral of
its Cauchy transform (G is analytic in the upper half-plane and across the real axis at a and
b):

    mu((a, b)) = (1/pi) Im int_{C} G(z) dz,   C: z = c + r e^{i theta}, theta from 0 to pi,

c, r the centre and radius of [a, b], atoms inside included (:func:`contour_mass`). Along C
the solver works far from the axis except near a and b, and the integrand is analytic in theta
except at the images of the nearest edges, at distance ~d/r from the ends (d: distance from
the end to the support): composite Gauss-Legendre on panels graded geometrically toward both
ends from d/r integrates it to rounding. With an end inside the support (where the density is
smooth) the same integral is the difference of the cdf, converging more slowly.
"""

from __future__ import annotations

import math

import numpy as np

from freeness_lab.theory.density.chaining import TOL_STALL_EDGE
from freeness_lab.theory.density.panels import gauss_legendre

__all__ = ["CONTOUR_NODES", "component_masses", "contour_mass"]

#: Gauss-Legendre nodes per panel of the contour integrals
CONTOUR_NODES = 16


def contour_mass(law, a: float, b: float, near_a: float, near_b: float) -> float:
    """mu((a, b)) for a < b outside the support (atoms included), as (1/pi) Im of the
    integral of G over the upper half circle on [a, b] (module docstring).

    Parameters
    ----------
    law : SolvedLaw
    a, b : float
        The ends, outside the support.
    near_a, near_b : float
        Their distances to the nearest point of the support or atom: the panels are graded
        toward the ends from these (over the radius).
    """
    c, r = 0.5 * (a + b), 0.5 * (b - a)
    t, wt = gauss_legendre(CONTOUR_NODES)
    cuts = []
    for d in (near_b, near_a):
        delta = min(max(d / r, 1e-15), 0.5 * math.pi)
        cuts.append(delta * 2.0 ** np.arange(int(math.log2(0.5 * math.pi / delta)) + 1))
    theta = np.unique(np.concatenate([[0.0, 0.5 * math.pi, math.pi], cuts[0],
                                      math.pi - cuts[1]]))
    theta = theta[(theta >= 0) & (theta <= math.pi)]
    mid, half = 0.5 * (theta[1:] + theta[:-1]), 0.5 * np.diff(theta)
    nodes = (mid[:, None] + half[:, None] * t).ravel()
    weights = (half[:, None] * wt).ravel()
    z = c + r * np.exp(1j * nodes)
    res = law.solve(z.real, z.imag, tol_stall=TOL_STALL_EDGE)
    if not res.converged.all():
        return math.nan
    return float((weights * res.cauchy * 1j * (z - c)).sum().imag / math.pi)


def component_masses(law, intervals: np.ndarray, quadrature: tuple, ends: np.ndarray,
                     cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(contour, quadrature) mass between consecutive ``ends`` (around each component of
    ``intervals``), the atoms between them included (:func:`contour_mass`; ``cache``:
    contour masses already known, by their arguments)."""
    cache = {} if cache is None else cache
    x, w, rho, panels, tail = quadrature
    marks = np.concatenate([intervals.ravel(), law.atoms[:, 0]])
    exact, quad = [], []
    for a, b in zip(ends[:-1], ends[1:], strict=True):
        key = (a, b, *(float(np.min(np.abs(marks - e))) for e in (a, b)))
        if key not in cache:
            cache[key] = contour_mass(law, *key)
        exact.append(cache[key])
        q = float((w * rho)[(x > a) & (x < b)].sum()
                  + tail[(panels[:, 0] > a) & (panels[:, 1] < b)].sum())
        if len(law.atoms):
            q += float(law.atoms[(law.atoms[:, 0] > a) & (law.atoms[:, 0] < b), 1].sum())
        quad.append(q)
    return np.array(exact), np.array(quad)
