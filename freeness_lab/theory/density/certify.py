"""The support of a solved law, certified by its mass: contour integrals of G over each component.

The scan of :mod:`~freeness_lab.theory.density.support` sees a component of the support only
where one of its points falls, and a gap only where a point falls into it. A free product of
discrete laws (the paired laws of a sampled network: D_l^2 laws of M atoms) has components
of mass k/M near its edges, narrower than any fixed scan; missed, they lose their mass, or
they put a gap inside a panel of the support quadrature, whose Gauss-Legendre rule then
integrates a density with square-root edges inside it (measured on a paired H_3 at M = 1024:
mass off by 7e-4).

Certificate (:func:`certify_support`): where the support quadrature's mass or first moment
is off (both free to check: the limit laws pass at once), each component of the found
support, with half of each neighbouring gap, gets its exact mass by a contour integral of G
(:mod:`~freeness_lab.theory.density.contour`), compared with its quadrature mass; a run of
components whose two masses disagree is scanned again (:mod:`~freeness_lab.theory.density.
rescan`), and when the rescan finds nothing new their panels are halved adaptively, until the
masses agree to the law's ``mass_tol`` or a RuntimeWarning reports what is left.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.density.contour import component_masses
from freeness_lab.theory.density.edges import EdgeFit, edge_fits
from freeness_lab.theory.density.log_panels import refine_panels
from freeness_lab.theory.density.quadrature import quadrature_moments, support_quadrature
from freeness_lab.theory.density.rescan import rescanned as rescan
from freeness_lab.theory.density.support import bisected_intervals

__all__ = ["MASS_TOL", "REFINE_ROUNDS", "CertifiedSupport", "certify_support"]

#: the default relative mass (and first-moment) defect of the support quadrature that calls
#: for the component check, and the agreement asked of a component's two masses
#: (:attr:`~freeness_lab.theory.density.solved.SolvedLaw.mass_tol`): the accuracy the limit
#: laws' quadratures are tested to (most reach 1e-10; deep or one-factor smooth products,
#: 1e-7 -- a missed component costs at least 1e-4 at M <= 1e4)
MASS_TOL = 1e-6
#: rounds of refinement (rescans of the components that fail the check; a paired H_3 of
#: orthogonal tanh at M = 2048, 44 components, took 5)
REFINE_ROUNDS = 8


@dataclass(frozen=True)
class CertifiedSupport:
    """The support of a solved law and its quadrature, checked against contour masses.

    Attributes
    ----------
    bisected : ndarray (K, 2)
        Intervals of the continuous part as bisected (:mod:`~freeness_lab.theory.density.
        support`, refined where the check asked for it).
    edge_fits : list of EdgeFit
        The edges with a fitted (inverse) square-root profile.
    intervals : ndarray (K, 2)
        ``bisected`` with the fitted edges moved to the zeros of their fits.
    quadrature : tuple
        (x, w, rho, panels, tail): :func:`~freeness_lab.theory.density.quadrature.
        support_quadrature` on ``intervals``.
    mass_defect : float
        The quadrature's mass (plus the atoms) minus 1.
    refined : int
        Rounds of refinement that were needed.
    """

    bisected: np.ndarray
    edge_fits: list[EdgeFit]
    intervals: np.ndarray
    quadrature: tuple
    mass_defect: float
    refined: int


def _fitted(bisected: np.ndarray, fits: list[EdgeFit]) -> np.ndarray:
    iv = bisected.copy()
    for fit in fits:
        iv[fit.row, fit.column] = fit.edge
    return iv


def _defects(law, quadrature: tuple) -> tuple[float, float]:
    """(mass defect, relative first-moment defect) of a support quadrature (plus atoms)."""
    mass, m1 = quadrature_moments(quadrature, law.atoms, 1)
    exact = float(law.moments(1)[0])
    return float(mass) - 1.0, (float(m1) / exact - 1.0) if exact else float(m1)


def certify_support(law) -> CertifiedSupport:
    """The support of ``law`` (a :class:`~freeness_lab.theory.density.solved.SolvedLaw`)
    and its quadrature, refined until every component's quadrature mass equals its
    contour mass to its ``mass_tol`` (module docstring): a run of components that fails is
    rescanned (:func:`~freeness_lab.theory.density.rescan.rescanned`); when the rescan finds
    nothing new, their panels are halved adaptively (:func:`~freeness_lab.theory.density.
    log_panels.refine_panels`). A RuntimeWarning where REFINE_ROUNDS rounds do not reconcile
    them (the remaining defect is ``mass_defect``)."""
    bisected = bisected_intervals(law)
    scale = max(1.0 - law.atom_mass, 1e-300)
    cache: dict = {}
    suspects = np.empty((0, 2))  # panels the adaptive refinement could not converge
    for rounds in range(REFINE_ROUNDS + 1):
        fits = edge_fits(law, bisected)
        intervals = _fitted(bisected, fits)
        quadrature = support_quadrature(law, intervals)
        mass, moment = _defects(law, quadrature)
        if not len(intervals) or (abs(mass) <= law.mass_tol * scale
                                   and abs(moment) <= law.mass_tol):
            break
        ends = _ends(law, intervals)
        bad = _failing(law, intervals, quadrature, ends, cache)
        rescanned, looked = bisected, len(suspects) > 0
        if bad and rounds < REFINE_ROUNDS:
            rescanned = rescan(law, bisected, ends, bad, suspects, cache)
        unchanged = rescanned.shape == bisected.shape and np.allclose(rescanned, bisected,
                                                                       rtol=1e-12, atol=0)
        if bad and unchanged:
            # nothing new in the failing components: their panels may be too coarse (the
            # panels that do not converge are where the next rescan looks)
            quadrature, suspects = _refined_panels(law, intervals, quadrature, ends, bad)
            mass, moment = _defects(law, quadrature)
            bad = _failing(law, intervals, quadrature, ends, cache)
        # done: agreed, out of rounds, or a rescan that looked at the panels found nothing
        if not bad or rounds == REFINE_ROUNDS or (unchanged and (looked or not len(suspects))):
            if bad or abs(mass) > law.mass_tol * scale:
                warnings.warn(f"support of {law!r}: the quadrature's mass is off by "
                              f"{mass:.2e} (first moment {moment:.2e}) after {rounds} "
                              f"rescans; {len(bad)} components disagree with their "
                              f"contour masses", RuntimeWarning, stacklevel=4)
            break
        bisected = rescanned
    return CertifiedSupport(bisected, fits, intervals, quadrature, mass, rounds)


def _ends(law, intervals: np.ndarray) -> np.ndarray:
    """The contour ends around each component: the midpoints of the gaps between them,
    below the first (base - w / 2: the law lives on [base, inf)) and above the last."""
    base = law.base_atom
    a, b = intervals[:, 0], intervals[:, 1]
    left = min(a[0], base) - 0.5 * (b[0] - a[0])
    right = b[-1] + 0.5 * (b[-1] - a[-1])
    return np.concatenate([[left], 0.5 * (b[:-1] + a[1:]), [right]])


def _failing(law, intervals: np.ndarray, quadrature: tuple, ends: np.ndarray,
             cache: dict) -> list[int]:
    """The components whose two masses (:func:`component_masses`) differ by more than their
    share of the law's ``mass_tol`` (1 - atom mass)."""
    exact, quad = component_masses(law, intervals, quadrature, ends, cache)
    # each component's share of the tolerance: half of it in proportion to its mass, at
    # least half over the number of components, so that the shares add up to at most it
    total = max(1.0 - law.atom_mass, 1e-300)
    share = 0.5 * np.maximum(np.abs(exact) / total, 1.0 / len(exact))
    return [int(k) for k in np.nonzero(~(np.abs(exact - quad) <= law.mass_tol * total
                                          * share))[0]]


def _refined_panels(law, intervals: np.ndarray, quadrature: tuple, ends: np.ndarray,
                    bad: list[int]) -> tuple[tuple, np.ndarray]:
    """``quadrature`` with the panels of the components ``bad`` halved adaptively
    (:func:`~freeness_lab.theory.density.log_panels.refine_panels`; the budget, a tenth of the
    law's ``mass_tol``, shared in proportion to the panels' widths), and the (lo, hi) of the
    panels that did not converge (a hidden edge inside: the next rescan looks there)."""
    x, w, rho, panels, tail = quadrature
    n = law.n_gl
    todo = panels[:, 2] != 1  # the log panels are adaptive already
    inner = np.zeros(len(panels), dtype=bool)
    for k in bad:
        inner |= (panels[:, 0] >= ends[k]) & (panels[:, 1] <= ends[k + 1])
    todo &= inner
    width = panels[:, 1] - panels[:, 0]
    tol = 0.1 * law.mass_tol * (1.0 - law.atom_mass) * width / max(width[todo].sum(), 1e-300)
    # the solutions at the nodes only serve the log panels' walks: not needed here
    zeta = np.zeros(x.size, dtype=complex)
    unknowns = np.zeros((x.size, law.system.size), dtype=complex)
    new, xr, wr, rho, _, _, left = refine_panels(law, intervals, panels, x.reshape(-1, n),
                                                 w.reshape(-1, n), rho, zeta, unknowns, todo,
                                                 tol)
    tails = {tuple(row): t for row, t in zip(panels, tail, strict=True) if t}
    return ((xr.ravel(), wr.ravel(), rho, new,
             np.array([tails.get(tuple(row), 0.0) for row in new])), new[left, :2])


