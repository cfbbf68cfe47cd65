"""The Newton system of a free multiplicative convolution (arrow-structured Jacobian).

Conventions: ``docs/conventions.md``, section "Numerics". Write zeta for the spectral
variable, G(zeta) = int dmu / (zeta - t), m = psi(1/zeta) = zeta G(zeta) - 1.

*Product* mu = boxtimes_i mu_i(a_i .) (each factor i with power k_i, its S-transform taken
at a_i m -- a_i = 1 in the square case): chi_mu(m) = 1/zeta, i.e.

    F_0 = log m - log(1 + m) + log S_mu(m) + log zeta = 0,   log S_mu = sum_i k_i log S_i(a_i m).

A factor whose S is explicit (sigma^2 I, Marchenko-Pastur, {0, a}-valued laws) enters
through its log-terms; any other factor keeps one subordination unknown
u_i = log chi_i(a_i m) (Belinschi-Bercovici subordination, omega_i = e^{u_i}) with

    F_i = log psi_i(e^{u_i}) - log a_i - log m = 0,
    log S_i(a_i m) = u_i + log(1 + a_i m) - log(a_i m).

Unknowns v = (r = log(m + 1 - p_0), u_1..u_K), p_0 the mass at 0 (r stays well conditioned
as zeta -> 0, where m -> p_0 - 1): the Jacobian is an *arrow* matrix, solved in O(K) per
point; identical factors share one unknown (power k_i).
"""

from __future__ import annotations

import numpy as np

from freeness_lab.theory.branches import log_lower, log_upper
from freeness_lab.theory.log_terms import LogTerms, RowsInR, TermsInR
from freeness_lab.theory.newton.implicit import ImplicitFactor, implicit_equation
from freeness_lab.theory.newton.protocol import HALF_PLANE_TOL
from freeness_lab.theory.newton.rule_stack import RuleStack

__all__ = ["ProductSystem"]


class ProductSystem:
    """Arrow-structured system for a free multiplicative convolution (module docstring).

    The main unknown is r = log(zeta G(zeta) - p_0) = log(m + 1 - p_0), p_0 the mass at 0:
    it stays well conditioned as zeta -> 0 (where m -> p_0 - 1), as zeta -> infinity and
    near atoms.

    Parameters
    ----------
    explicit : LogTerms
        Sum of the log-terms of all explicit factors (with powers and argument scales).
    implicit : list of ImplicitFactor
    psi_series : ndarray
        m_1..m_n of the product, for the far-field start psi(z) ~ sum m_k z^k.
    zero_mass : float
        p_0, the mass of the product at 0.
    """

    def __init__(self, explicit: LogTerms, implicit: list[ImplicitFactor],
                 psi_series: np.ndarray, zero_mass: float = 0.0):
        self.implicit = implicit
        self.rules = RuleStack([f.rule for f in implicit])  # every psi at once
        c_w = 1.0 - sum(f.power for f in implicit)
        # log m (power c_w) and -log(1 + m) join the explicit rows
        rows = [explicit.rows.reshape(-1, 3), np.array([[c_w, 0.0, 1.0], [-1.0, 1.0, 1.0]])]
        const = explicit.const
        for f in implicit:  # k (u + log(1 + a m) - log a - log m)
            rows.append(np.array([[f.power, 1.0, f.scale]]))
            const -= f.power * np.log(f.scale)
        self.c = 1.0 - zero_mass
        self.p0 = zero_mass
        self.const = const
        self.terms = TermsInR(np.concatenate(rows), self.c)
        # every factor's log(a m) and log(1 - p + a m) at once: one column each
        self.log_am = RowsInR(np.array([[1.0, 0.0, f.scale] for f in implicit]), self.c)
        self.log_1am = RowsInR(np.array([[1.0, 1.0 - f.atom, f.scale] for f in implicit]),
                               self.c)
        self.powers = np.array([f.power for f in implicit])
        self.psi_series = np.asarray(psi_series, dtype=float)
        self.size = 1 + len(implicit)
        self.cauchy_index = 0
        self.zero_mass = zero_mass

    def initial(self, zeta: np.ndarray) -> np.ndarray:
        """Far-field start: m = sum_k m_k zeta^-k and u_i = log chi_i(a_i m) by series."""
        z = 1.0 / zeta
        m = np.polynomial.polynomial.polyval(z, np.concatenate([[0.0], self.psi_series]))
        v = np.empty(zeta.shape + (self.size,), dtype=complex)
        v[..., 0] = log_lower(m + self.c)
        for i, f in enumerate(self.implicit):
            om = np.polynomial.polynomial.polyval(f.scale * m,
                                                  np.concatenate([[0.0], f.chi_series]))
            v[..., 1 + i] = log_lower(om)
        return v

    def _parts(self, v: np.ndarray, zeta: np.ndarray, *, residual: bool = True,
               log_zeta: np.ndarray | None = None
               ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Residuals and Jacobian entries of the arrow system at (v, zeta).

        Parameters
        ----------
        v : complex ndarray, shape (..., size)
            Unknowns (r, u_1..u_K).
        zeta : complex ndarray
            Spectral points.
        residual : bool
            Whether F_0 is needed; without it (the tangent needs the Jacobian only) its
            logarithms are not evaluated and None is returned in its place.
        log_zeta : complex ndarray, optional
            log zeta, used in F_0 instead of log(zeta) (``zeta`` is then ignored): the one
            place where zeta enters, so points below the smallest double are reachable.

        Returns
        -------
        f0, d0, hi, fi, gi
            F_0, dF_0/dr, and dF_i/dr, F_i, dF_i/du_i of the implicit factors, shape
            (..., K): every factor at once (the rules through their stack, the log-terms
            as columns of :class:`~freeness_lab.theory.log_terms.RowsInR`).
        """
        r = v[..., 0]
        if residual:
            val, d0 = self.terms.value_and_slope(r)
            f0 = self.const + val + (log_upper(zeta) if log_zeta is None else log_zeta)
        else:
            f0, d0 = None, self.terms.slope(r)
        if not self.implicit:
            empty = np.empty(r.shape + (0,), dtype=complex)
            return f0, d0, empty, empty, empty
        u = v[..., 1:]
        parts = self.rules.psi_parts(np.exp(u))
        er = np.exp(r)
        fi, gi, hi = implicit_equation(parts, self.log_am, self.log_1am, r, er=er)
        if residual:
            f0 = f0 + (u * self.powers).sum(-1)
        return f0, d0, hi, fi, gi

    def _arrow_solve(self, d0, hi, gi, r0, ri) -> np.ndarray:
        """Solve J x = (r0, r_1..r_K) for the arrow Jacobian
        [[d0, k_1 .. k_K], [h_1, g_1, 0 ..], [h_2, 0, g_2, ..], ...] (hi, gi, ri of shape
        (..., K); ri None for zeros)."""
        x = np.empty(d0.shape + (self.size,), dtype=complex)
        den = d0 - (self.powers * hi / gi).sum(-1)
        if ri is None:
            x[..., 0] = r0 / den
            x[..., 1:] = -hi * x[..., :1] / gi
        else:
            x[..., 0] = (r0 - (self.powers * ri / gi).sum(-1)) / den
            x[..., 1:] = (ri - hi * x[..., :1]) / gi
        return x

    def newton_step(self, v: np.ndarray, zeta: np.ndarray | None, *,
                    log_zeta: np.ndarray | None = None) -> np.ndarray:
        """-J^{-1} F(v; zeta) (zeta given as ``log_zeta`` instead: :class:`~freeness_lab.
        theory.newton.log_zeta.LogZetaSystem`)."""
        f0, d0, h, fi, gi = self._parts(v, zeta, log_zeta=log_zeta)
        return self._arrow_solve(d0, h, gi, -f0, -fi)

    def tangent(self, v: np.ndarray, zeta: np.ndarray | None, *,
                log_zeta: np.ndarray | None = None) -> np.ndarray:
        """dv/dzeta = -J^{-1} dF/dzeta (only F_0 depends on zeta, through log zeta); with
        ``log_zeta``, dv/d log zeta."""
        _, d0, h, fi, gi = self._parts(v, zeta, residual=False)
        rhs = -1.0 / zeta if log_zeta is None else -np.ones_like(d0)
        return self._arrow_solve(d0, h, gi, rhs, None)

    def residual(self, v: np.ndarray, zeta: np.ndarray | None, *,
                 log_zeta: np.ndarray | None = None) -> np.ndarray:
        """max |F_i(v; zeta)| over the equations (F_0 and every F_i), per point.

        Parameters
        ----------
        v : complex ndarray, shape (..., size)
        zeta : complex ndarray or None
        log_zeta : complex ndarray, optional
            log zeta in place of ``zeta`` (:class:`~freeness_lab.theory.newton.log_zeta.
            LogZetaSystem`).

        Returns
        -------
        float ndarray, shape (...)
        """
        f0, _, _, fi, _ = self._parts(v, zeta, log_zeta=log_zeta)
        return np.maximum(np.abs(f0), np.abs(fi).max(-1, initial=0.0))

    def valid(self, v: np.ndarray) -> np.ndarray:
        """m and every omega_i in the closed lower half-plane, all finite."""
        ok = np.logical_and.reduce(np.isfinite(v), axis=-1)
        z = np.exp(v)
        return ok & np.logical_and.reduce(z.imag <= HALF_PLANE_TOL * np.abs(z), axis=-1)

    def cauchy(self, v: np.ndarray, zeta: np.ndarray, *, drop_zero_atom: bool = False
               ) -> np.ndarray:
        """G(zeta) = (1 + m) / zeta = (e^r + p_0) / zeta; without the atom at 0 on request.

        Near zeta = 0 (quadrature panels reach 1e-280) the quotient may overflow to inf; that is
        the value, not an error, so the floating-point warning is silenced.
        """
        with np.errstate(over="ignore"):
            return (np.exp(v[..., 0]) + (0.0 if drop_zero_atom else self.p0)) / zeta

    def cauchy_slope(self, v: np.ndarray, zeta: np.ndarray, *, drop_zero_atom: bool = False
                     ) -> np.ndarray:
        """dG/dzeta along the solution (tangent dv/dzeta)."""
        dr = self.tangent(v, zeta)[..., 0]
        g = self.cauchy(v, zeta, drop_zero_atom=drop_zero_atom)
        return (np.exp(v[..., 0]) * dr - g) / zeta
