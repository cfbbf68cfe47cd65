"""Edge fits: the density at the ends of the support where it is (x - e)^(+-1/2) times an
analytic function.

Near such an edge the Newton system is ill-conditioned, and the bisection of
:mod:`~freeness_lab.theory.density.support` stops short of it; the fitted profile gives the
edge (the zero of the fit) and the density closer to it than the solver reaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.density.chaining import TOL_STALL_EDGE
from freeness_lab.theory.newton import lilypads

__all__ = ["EDGE_FIT_DISTANCE", "EdgeFit", "edge_fits", "fitted_profile"]

#: the first fit point's distance from a bisected edge, relative to the interval's width
EDGE_FIT_DISTANCE = 1e-8


@dataclass(frozen=True)
class EdgeFit:
    """rho ~ f(t)^power near an edge, f = polynomial ``coef`` (highest degree first) in
    t / T, t = side (x - at) the distance from the bisected edge ``at`` into the interval;
    ``edge``: the zero of f (the fitted edge), entry (row, column) of the intervals."""

    row: int
    column: int
    edge: float
    at: float
    side: float
    T: float
    power: float
    coef: np.ndarray


def edge_fits(law, bisected: np.ndarray) -> list[EdgeFit]:
    """The density of ``law`` (a :class:`~freeness_lab.theory.density.solved.SolvedLaw`) at
    the ends of its ``bisected`` intervals, fitted where it is (x - e)^(+-1/2) times
    an analytic function (every edge of a free convolution of these laws we know of).

    Then f = rho^2 (square root) or rho^-2 (inverse square root) is analytic with a simple
    zero at the edge e. Near e the Newton system is ill-conditioned: its equations are
    sums of logarithms of size ~ |log d| that cancel to O(d) at relative distance d from
    the edge (Bernoulli(1/2) boxtimes Bernoulli(1/2) at x = 1: log(w + 1/2) + log(w - 1/2)
    - 2 log w + log zeta, w ~ d^(-1/2)), so rounding of ~5e-15 moves the solution by
    5e-15 / d (the real parts of such sums are formed without the cancellation,
    :class:`~freeness_lab.theory.log_terms.TermsInR`, but a chain's other equations keep
    some): the bisection, which takes a point the solver does not reach for outside,
    stopped 1e-12 short of that edge. The fit uses the density at distances T, 2T, 4T
    inside the bisected edge (T = EDGE_FIT_DISTANCE times the interval's width, at
    least 1e-10 |e|), solved nearly on the axis: the profile is accepted when both
    log-log slopes are within 0.01 of +-1/2 (the analytic factor and the edge's offset
    change them by ~T / width and ~1e-12 / T), and the quadratic through (t_k, f_k)
    gives the edge as its zero nearest t = 0, accepted within T / 10. Its error: the
    Lagrange weights at 0 of the nodes 1, 2, 4 sum to 5 in absolute value, so data
    accurate to eta move it by ~10 eta T (eta ~ 1e-11 at T = 1e-6 width), and the cubic
    term c_3 t^3 of f by 8 (c_3 / c_1) T^3, c_3 / c_1 ~ the inverse square of the
    distance to the nearest other singular point (1e-13 at T = 1e-6 width for the top
    edge of Bernoulli(0.3) boxtimes Bernoulli(0.6), 0.011 from the pole of its density
    at 1; 4e-16 at T = 1e-8 width). Measured at T = 1e-8 width: the inverse square-root
    edge of Bernoulli(1/2) boxtimes Bernoulli(1/2) to 2e-16 (bisection: 8e-14 short),
    the square-root edges of Bernoulli(0.3) boxtimes Bernoulli(0.6) to 4e-16 (bisection:
    1e-15), the arcsine edges of ReLU's H_3 with orthogonal weights to ~1e-14 relative
    (bisection: 2e-12).
    """
    base = law.base_atom
    cands = []  # (row, column, edge, side, T) of the edges to fit
    for row, (a, b) in enumerate(bisected):
        for column, (edge, side) in enumerate(((a, 1.0), (b, -1.0))):
            if side > 0 and a == base:
                continue  # the base point: log panels, a power law
            T = max(EDGE_FIT_DISTANCE * (b - a), 1e-10 * abs(edge))
            if 4 * T > 0.25 * (b - a):
                continue
            cands.append((row, column, edge, side, T))
    if not cands:
        return []
    # all edges in one solve: every edge's three points with its own starting height (the
    # walks are independent, so each edge gets the result of its own solve, at one call's
    # cost). Im zeta = 1e-12 t: at a square-root edge the analytic part of G leaks
    # ~ eps / sqrt(t) (relative) through the Poisson kernel, which would move the zero of
    # the fit by ~10 (eps / t) sqrt(t) T
    t = np.array([c[4] for c in cands])[:, None] * np.array([1.0, 2.0, 4.0])
    x = np.array([c[2] for c in cands])[:, None] + np.array([c[3] for c in cands])[:, None] * t
    y_start = np.repeat([law.y_start(xe) for xe in x], 3)
    res = lilypads(law.system, x.ravel(), 1e-12 * t.ravel(), y_start=y_start,
                   tol_stall=TOL_STALL_EDGE)
    rho_all = law.continuous_density(res).reshape(x.shape)
    conv_all = res.converged.reshape(x.shape)
    fits = []
    for (row, column, edge, side, T), tk, rho, conv in zip(cands, t, rho_all, conv_all,
                                                           strict=True):
        if not (conv.all() and np.all(rho > 0)):
            continue
        slopes = np.diff(np.log(rho)) / math.log(2.0)
        for power in (0.5, -0.5):
            if np.all(np.abs(slopes - power) < 0.01):
                break
        else:
            continue
        coef = np.polyfit(tk / T, rho ** (1.0 / power), 2)
        roots = np.roots(coef)
        roots = roots[np.isreal(roots)].real
        if not len(roots) or np.min(np.abs(roots)) > 0.1:
            continue
        tau = float(roots[np.argmin(np.abs(roots))])
        fits.append(EdgeFit(row, column, edge + side * tau * T, edge, side, T, power, coef))
    return fits


def fitted_profile(fits: list[EdgeFit], x: np.ndarray, rho: np.ndarray, conv: np.ndarray
                   ) -> None:
    """Set rho (and conv) at the points x that did not converge closer to a fitted edge than
    the solver reaches (rounding in its equations moves the solution by ~5e-15 / d at
    relative distance d) to the edge's fitted profile (+inf at an inverse square-root edge
    itself); in place."""
    for fit in fits:
        t = fit.side * (x - fit.at)
        zone = ~conv & (fit.side * (x - fit.edge) >= 0) & (t < fit.T)
        f = np.polynomial.polynomial.polyval(t[zone] / fit.T, fit.coef[::-1])
        rho[zone] = np.where(f > 0, np.abs(f) ** fit.power, np.inf if fit.power < 0 else 0)
        conv[zone] = True
