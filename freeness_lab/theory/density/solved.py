"""The solved-law object: a law whose Cauchy transform comes from a Newton system.

:class:`SolvedLaw` turns a system (:mod:`freeness_lab.theory.newton`) into a law object --
density on arbitrary x (solved there, no interpolation), support found from the law (scan
and bisection on where the density vanishes, window from the moments; edge fits), a graded
Gauss-Legendre quadrature of the density on the support (for moments and the cdf), cdf and
quantiles. The work is done by the modules of :mod:`freeness_lab.theory.density`; the object
holds their results, computed once per law (cached per instance).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from freeness_lab.theory.checks import moment_order
from freeness_lab.theory.density.cdf import (
    cdf,
    panel_antiderivatives,
    panel_turning_points,
    partial_mean,
    quantile,
)
from freeness_lab.theory.density.certify import MASS_TOL, CertifiedSupport, certify_support
from freeness_lab.theory.density.chaining import TOL_STALL_EDGE, solve_chained
from freeness_lab.theory.density.edges import EdgeFit, fitted_profile
from freeness_lab.theory.density.pointwise import PointwiseLaw
from freeness_lab.theory.density.quadrature import quadrature_moments
from freeness_lab.theory.laws import SpectralLaw
from freeness_lab.theory.newton import LawSystem, NewtonResult

__all__ = ["N_SERIES", "SolvedLaw"]

#: moments used for the far-field start and the window
N_SERIES = 24


class SolvedLaw(SpectralLaw):
    """A law whose Cauchy transform comes from a Newton system (lilypads).

    Subclasses set ``atoms`` and implement ``_moments(n)`` and :meth:`build_system`; they may
    override :meth:`singular_points` and set :attr:`base_atom`.

    Attributes
    ----------
    eps_rel : float
        Densities are -Im G(x + i eps_rel |x|) / pi (atoms removed): the Poisson smoothing
        is relative, so the density is resolved on every scale, down to x -> 0.
    n_gl : int
        Gauss-Legendre nodes per panel of the support quadrature.
    mass_tol : float
        The relative mass defect of the support quadrature (and first-moment defect) the
        certified support accepts (:func:`~freeness_lab.theory.density.certify.
        certify_support`); set it on an instance before its support is computed.
    """

    eps_rel: float = 1e-10
    n_gl: int = 12
    mass_tol: float = MASS_TOL

    #: location of the atom that the system's main unknown leaves out exactly (0, or the
    #: last shift of a chain)
    base_atom: float = 0.0

    @functools.cached_property
    def system(self) -> LawSystem:
        """The Newton system (built once)."""
        return self.build_system()

    def build_system(self) -> LawSystem:
        """The law's Newton system (a subclass's job)."""
        raise NotImplementedError

    @functools.cached_property
    def scale(self) -> float:
        """Window scale from the moments: max_k m_k^{1/k}, k <= 24 (a lower bound of the
        right edge that is within a small factor of it)."""
        k = np.arange(1, N_SERIES + 1)
        return float(np.max(np.abs(self.moments(N_SERIES)) ** (1.0 / k)))

    # -- solving
    def y_start(self, x: np.ndarray) -> float:
        """Far-field starting height: well above the support and the points."""
        return 8.0 * self.scale + 2.0 * float(np.max(np.abs(x), initial=0.0))

    def solve(self, x: np.ndarray, eps: np.ndarray | float | None = None, *,
              chain: bool = True, **options) -> NewtonResult:
        """Solve at zeta = x + i eps (:func:`~freeness_lab.theory.density.chaining.
        solve_chained`); eps defaults to eps_rel min(|x|, |x - base atom|)."""
        return solve_chained(self, x, eps, chain=chain, **options)

    def default_eps(self, x: np.ndarray) -> np.ndarray:
        """Im zeta of the density at x: relative to the distance from 0 or from the base atom
        (the shift of a chain), where the density may be singular; at distance d from a
        singular point inside the support, an inverse square root there leaks
        ~ eps / d^(3/2) through the Poisson kernel, so eps <= 1e-8 d sqrt(d / scale) keeps
        that below 1e-8."""
        near = np.minimum(np.abs(x), np.abs(x - self.base_atom))
        eps = self.eps_rel * np.maximum(near, 1e-300 * self.scale)
        singular = np.concatenate(self.singular)
        if len(singular):
            gap = np.min(np.abs(x[:, None] - singular), axis=1)
            cap = 1e-8 * gap * np.sqrt(gap / self.scale)
            eps = np.maximum(np.minimum(eps, cap), 1e-300 * self.scale)
        return eps

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        """G(zeta) for zeta in the closed upper half-plane (nan + warning if not converged)."""
        res = self.solve(zeta.real.ravel(), zeta.imag.ravel(), chain=False)
        self.warn_unconverged(res)
        return res.cauchy.reshape(zeta.shape)

    @staticmethod
    def warn_unconverged(res: NewtonResult) -> None:
        """A RuntimeWarning counting the points of ``res`` that did not converge."""
        bad = int((~res.converged).sum())
        if bad:
            warnings.warn(f"Newton solver did not converge at {bad} of {res.converged.size} "
                          f"points (returned as nan)", RuntimeWarning, stacklevel=3)

    def continuous_cauchy(self, zeta: np.ndarray, unknowns: np.ndarray,
                          converged: np.ndarray) -> np.ndarray:
        """G_c(zeta): the Cauchy transform of the continuous part (the atoms' poles removed)
        from the system's solution ``unknowns`` at ``zeta`` (nan where not ``converged``)."""
        G = np.full(zeta.shape, complex(np.nan, np.nan))
        G[converged] = self.system.cauchy(unknowns[converged], zeta[converged],
                                          drop_zero_atom=True)
        for a, p in self.atoms:
            if a != self.base_atom:
                G = G - p / (zeta - a)
        return G

    def continuous_density(self, res: NewtonResult) -> np.ndarray:
        """-Im G_c(zeta) / pi at the points of ``res``: the atoms removed (nan where not
        converged)."""
        return -self.continuous_cauchy(res.zeta, res.unknowns, res.converged).imag / math.pi

    def leak(self, res: NewtonResult) -> np.ndarray:
        """eps |G_c'(zeta)| / pi: the Poisson leak of the continuous part at zeta = x + i eps,
        i.e. the density seen at a point x outside the support (G_c real analytic there)."""
        out = np.full(res.zeta.shape, np.inf)
        ok = res.converged
        z = res.zeta[ok]
        dG = self.system.cauchy_slope(res.unknowns[ok], z, drop_zero_atom=True)
        for a, p in self.atoms:
            if a != self.base_atom:
                dG = dG + p / (z - a) ** 2
        out[ok] = z.imag * np.abs(dG) / math.pi
        return out

    def _continuous_intervals(self) -> np.ndarray:
        return self.fitted_intervals

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Density of the continuous part at x inside the support (solved at each x, atoms
        removed; nan and a RuntimeWarning where the solver did not converge).

        Im zeta is :meth:`default_eps`, and at most 1e-3 of the distance d to the nearest
        edge, atom or singular point (as at the nodes of the support quadrature): the
        Poisson kernel smooths an inverse square-root edge, -Im (d + i eps)^(-1/2) / pi
        = d^(-1/2) (1 - 3/8 (eps / d)^2 + ...) / pi, so the value there is the boundary
        value to (3/8) 1e-6. The solution is as ill-conditioned as d is small (Newton steps
        stall at ~1e-16 / d, relative): those points get the stall tolerance of the edge
        points of the support search and quadrature. Closer to a fitted edge than the solver
        reaches (:attr:`edge_fits`; ~3e-13 relative at the inverse square-root edge of
        Bernoulli(1/2) boxtimes Bernoulli(1/2)) the value is the edge's fitted profile (+inf
        at an inverse square-root edge itself; :func:`~freeness_lab.theory.density.edges.
        fitted_profile`).
        """
        if not x.size:
            return np.zeros(0), np.ones(0, dtype=bool)
        eps = self.default_eps(x)
        edges = np.concatenate([self.fitted_intervals.ravel(), self.cuts])
        near = np.zeros(x.shape, dtype=bool)
        if len(edges):
            d_edge = np.min(np.abs(x[:, None] - edges), axis=1)
            near = 1e-3 * d_edge < eps
            eps = np.where(near, np.maximum(1e-3 * d_edge, 1e-300 * self.scale), eps)
        rho = np.full(x.shape, np.nan)
        conv = np.zeros(x.shape, dtype=bool)
        for group, options in ((~near, {}), (near, {"tol_stall": TOL_STALL_EDGE})):
            if group.any():
                res = self.solve(x[group], eps[group], **options)
                rho[group], conv[group] = self.continuous_density(res), res.converged
        fitted_profile(self.edge_fits, x, rho, conv)
        self.warn_unconverged(NewtonResult(x, rho, conv, 0, 0, np.empty((x.size, 0))))
        return rho, conv

    # -- support and quadrature
    @functools.cached_property
    def certified_support(self) -> CertifiedSupport:
        """The support, its edge fits and its quadrature, checked against contour masses
        (:func:`~freeness_lab.theory.density.certify.certify_support`), computed once."""
        return certify_support(self)

    def adopt_support(self, support: CertifiedSupport) -> None:
        """Take ``support`` as :attr:`certified_support`, unless this law has one: the
        certified support of an identical law (same class and arguments) computed elsewhere,
        e.g. by a run's main process for its workers (it is deterministic, so every number
        derived from it is the same as if certified here)."""
        self.__dict__.setdefault("certified_support", support)

    @property
    def fitted_intervals(self) -> np.ndarray:
        """Intervals of the continuous part: :attr:`bisected_intervals` with the edges that
        have a square-root or inverse square-root profile moved to the zero of their fit
        (:attr:`edge_fits`)."""
        return self.certified_support.intervals

    @property
    def edge_fits(self) -> list[EdgeFit]:
        """:func:`~freeness_lab.theory.density.edges.edge_fits` of the certified support."""
        return self.certified_support.edge_fits

    @property
    def bisected_intervals(self) -> np.ndarray:
        """The intervals as found by scan and bisection (:mod:`~freeness_lab.theory.density.
        support`), refined where the contour masses asked for it."""
        return self.certified_support.bisected

    @functools.cached_property
    def cuts(self) -> np.ndarray:
        """Points inside the support where the density may be singular: the atoms and
        :meth:`singular_points` (the support quadrature splits its panels there)."""
        return np.concatenate([self.atoms[:, 0], *self.singular])

    @functools.cached_property
    def singular(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`singular_points`, computed once."""
        return self.singular_points()

    def singular_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Singular points of the density other than atoms and edges: (square-root points,
        power points), the latter with rho ~ (x - c)^(delta - 1) on their right (the support
        quadrature puts log panels there, like at the base point). None by default."""
        return np.empty(0), np.empty(0)

    def pointwise(self, tol: float) -> PointwiseLaw:
        """This law by contour integrals at given points, without its support
        (:class:`~freeness_lab.theory.density.pointwise.PointwiseLaw`, cdf to ``tol``)."""
        return PointwiseLaw(self, self, tol=tol, label=getattr(self, "label", ""))

    def intervals(self) -> np.ndarray:
        """Rows (a, b): the intervals carrying the continuous part of the law."""
        return self.fitted_intervals.copy()

    def support(self) -> tuple[float, float]:
        """(lo, hi): the smallest and largest point of the support (atoms included)."""
        pts = np.concatenate([self.fitted_intervals.ravel(), self.atoms[:, 0]])
        return float(pts.min()), float(pts.max())

    @property
    def support_quadrature(self) -> tuple[np.ndarray, ...]:
        """(x, w, rho, panels, tail): :func:`~freeness_lab.theory.density.quadrature.
        support_quadrature` on the certified support."""
        return self.certified_support.quadrature

    def quadrature(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(nodes, weights, density): int f(x) rho(x) dx ~= sum_i w_i f(x_i) rho_i.

        Composite Gauss-Legendre on panels graded toward the edges and atoms of the support
        (in log x near 0); the grid is chosen from the law (its support), not a fixed window.
        """
        nodes, weights, rho, _, _ = self.support_quadrature
        return nodes.copy(), weights.copy(), rho.copy()

    def continuous_mass(self) -> float:
        """int rho(x) dx by the support quadrature plus the power-law tails below the log
        panels (at 0: below 1e-280 of the interval) (should be 1 - atom_mass)."""
        _, w, rho, _, tail = self.support_quadrature
        return float((w * rho).sum() + tail.sum())

    def density_moments(self, n: int, shift: float = 0.0) -> np.ndarray:
        """m_1..m_n recovered from the density (quadrature and log-block tails) plus the
        atoms: a check of the solver against the exact series moments; with ``shift`` c, those
        of c + X (every point moved by c, no binomial expansion)."""
        return quadrature_moments(self.support_quadrature, self.atoms, moment_order(n),
                                  shift)[1:]

    @functools.cached_property
    def panel_antiderivatives(self) -> np.ndarray:
        """:func:`~freeness_lab.theory.density.cdf.panel_antiderivatives`, computed once."""
        return panel_antiderivatives(self)

    @functools.cached_property
    def panel_mean_antiderivatives(self) -> np.ndarray:
        """:func:`~freeness_lab.theory.density.cdf.panel_antiderivatives` of t rho(t),
        computed once."""
        return panel_antiderivatives(self, power=1)

    @functools.cached_property
    def panel_turning_points(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~freeness_lab.theory.density.cdf.panel_turning_points`, computed once."""
        return panel_turning_points(self.panel_antiderivatives)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        """P(X <= x) (:func:`~freeness_lab.theory.density.cdf.cdf`)."""
        return cdf(self, x)

    def _partial_mean(self, x: np.ndarray) -> np.ndarray:
        """E[X; X <= x] (:func:`~freeness_lab.theory.density.cdf.partial_mean`)."""
        return partial_mean(self, x)

    def _quantile(self, p: np.ndarray) -> np.ndarray:
        """Inverse cdf (:func:`~freeness_lab.theory.density.cdf.quantile`)."""
        return quantile(self, p)
