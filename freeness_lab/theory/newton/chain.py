"""The Newton system of the Hayase-Karakida shift chain (block-tridiagonal Jacobian).

Conventions: ``docs/conventions.md``, section "Numerics".

*Shift chain* (the Hayase-Karakida recursion for H_L): mu_1 = delta_{q0},
mu_{l+1} = qhat_l + Y_l, Y_l = F_l boxtimes mu_l. At layer l, Y_l is evaluated at
zeta'_l = xi_{l+1} - qhat_l (xi_L = zeta) with m_l = psi_{Y_l}(1/zeta'_l), and the
subordination point xi_l of mu_l (psi_{mu_l}(1/xi_l) = m_l) satisfies
xi_l = zeta'_l S_{F_l}(m_l), while 1 + psi_{mu_l}(1/xi) = xi G_{mu_l}(xi) =
xi (1 + m_{l-1}) / (xi - qhat_{l-1}) (m_0 = 0, qhat_0 = q0), both taken in logarithms. The
Jacobian is block tridiagonal (blocks of 3: log(m_l + 1 - p0_l), log(xi_l - qhat_{l-1}) =
log zeta'_{l-1} -- no cancellation when xi_l approaches an atom of mu_l, as it does at the
edges of the support --, and u_l when nu_l has no explicit S), solved by block elimination
in O(L) per point.

*Change of dimension* (rectangular widths): Y_l = r_l-compression of Ytilde_l = F_l boxtimes
mu_l, psi_{Y_l} = r_l psi_{Ytilde_l} (r_l = N_l / N_{l+1}). The unknown m_l stays
psi_{Y_l}(1/zeta'_l) (so G_{mu_{l+1}} keeps its form), and the subordination of layer l uses
mtilde_l = m_l / r_l: xi_l = zeta'_l S_{F_l}(m_l / r_l), 1 + m_l / r_l = xi_l G_{mu_l}(xi_l).
Every log-term of layer l is then taken in m / r_l (beta_j / r_l); since
mtilde_l + 1 - ptilde0_l = (m_l + 1 - p0_l) / r_l, the offset of the main unknown is unchanged.
r_l = 1 is the square chain, number for number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.branches import log_lower, log_upper
from freeness_lab.theory.log_terms import LogTerms, TermsInR
from freeness_lab.theory.newton.implicit import ImplicitFactor, implicit_equation
from freeness_lab.theory.newton.protocol import HALF_PLANE_TOL
from freeness_lab.theory.newton.rule_stack import RuleStack

__all__ = ["ChainLayer", "ChainSystem"]


@dataclass(frozen=True)
class ChainLayer:
    """Layer l of the shift chain: Y_l = F_l boxtimes mu_l, mu_{l+1} = qhat_l + Y_l.

    ``terms``: log S of the explicit part of F_l; ``nu``: the implicit factor of F_l (or None);
    ``qhat_prev`` = qhat_{l-1}, ``qhat`` = qhat_l; ``zero_mass``: the mass of Y_l at 0;
    ``y_moments`` = (m_1, m_2) of Y_l and ``f_s`` = (s_0, s_1) of S_{F_l}, for the far-field
    start; ``ratio`` = r_l = N_l / N_{l+1}, the change of dimension from Ytilde_l = F_l boxtimes
    mu_l to Y_l (1: square).
    """

    terms: LogTerms
    nu: ImplicitFactor | None
    qhat_prev: float
    qhat: float
    zero_mass: float
    y_moments: tuple[float, float]
    f_s: tuple[float, float]
    ratio: float = 1.0


class ChainSystem:
    """Block-tridiagonal system for the Hayase-Karakida shift chain (module docstring).

    Unknowns per layer l = 1..n: (r_l = log(m_l + 1 - p0_l), s_l = log(xi_l - qhat_{l-1}),
    u_l), p0_l the mass of Y_l at 0; u_l is a dummy (equation u_l = 0) when nu_l has an
    explicit S. s_l is log zeta'_{l-1}, the point where layer l - 1 is evaluated. Layer l's
    own terms (S_{F_l}, log(1 + m / r_l) of Q_l, those of the implicit factor) are taken in
    m / r_l; log(1 + m_l) enters Q_{l+1} undivided (module docstring).
    """

    def __init__(self, layers: list[ChainLayer]):
        self.layers = layers
        self.n = len(layers)
        self.size = 3 * self.n
        self.implicit_layers = np.array([l for l, lay in enumerate(layers)
                                         if lay.nu is not None], dtype=int)
        self.rules = RuleStack([layers[l].nu.rule for l in self.implicit_layers])
        # layer -> its column in the stack
        self.column = {int(l): j for j, l in enumerate(self.implicit_layers)}
        self.c = np.array([1.0 - lay.zero_mass for lay in layers])
        self.terms = []
        for lay, c in zip(layers, self.c, strict=True):
            rows = [lay.terms.rows.reshape(-1, 3)]
            if lay.nu is not None:  # log S_nu(m) = u + log(1 + m) - log m
                rows.append(np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 1.0]]))
            self.terms.append(TermsInR(self._in_m_over_r(np.concatenate(rows), lay), c))
        self.log_m = [TermsInR(self._in_m_over_r(np.array([[1.0, 0.0, 1.0]]), lay), c)
                      for lay, c in zip(layers, self.c, strict=True)]
        self.log_1m = [TermsInR(self._in_m_over_r(np.array([[1.0, 1.0, 1.0]]), lay), c)
                       for lay, c in zip(layers, self.c, strict=True)]
        # log(1 + m_l), undivided, for Q_{l+1}; the same object as log_1m[l] when r_l = 1
        self.log_1m_full = [t if lay.ratio == 1 else TermsInR(np.array([[1.0, 1.0, 1.0]]), c)
                            for t, lay, c in zip(self.log_1m, layers, self.c, strict=True)]
        # the implicit factor's log(1 - p + m) when it has an atom at 0 (ImplicitFactor)
        self.log_1pm = {l: TermsInR(self._in_m_over_r(np.array([[1.0, 1.0 - lay.nu.atom, 1.0]]),
                                                      lay), c)
                        for l, (lay, c) in enumerate(zip(layers, self.c, strict=True))
                        if lay.nu is not None and lay.nu.atom > 0}

    @staticmethod
    def _in_m_over_r(rows: np.ndarray, lay: ChainLayer) -> np.ndarray:
        """Rows (e, alpha, beta) of sum e log(alpha + beta m / r_l): beta / r_l (unchanged
        rows when r_l = 1)."""
        if lay.ratio == 1:
            return rows
        rows = np.array(rows, dtype=float)
        rows[:, 2] /= lay.ratio
        return rows

    @property
    def cauchy_index(self) -> int:
        """Index of r_n, the top layer's main unknown."""
        return 3 * (self.n - 1)

    @property
    def zero_mass(self) -> float:
        """The mass of Y_n at 0 (the atom of mu_L at qhat_n)."""
        return self.layers[-1].zero_mass

    def initial(self, zeta: np.ndarray) -> np.ndarray:
        """Far-field start, layer by layer from the top: m_l ~ m_1/z' + m_2/z'^2,
        xi_l = z' S_F(m_l) with S_F ~ s_0 + s_1 m."""
        v = np.zeros(zeta.shape + (self.size,), dtype=complex)
        xi = zeta
        for l in range(self.n - 1, -1, -1):
            lay = self.layers[l]
            zp = xi - lay.qhat
            m = lay.y_moments[0] / zp + lay.y_moments[1] / zp**2
            mt = m if lay.ratio == 1 else m / lay.ratio  # psi of F_l boxtimes mu_l
            xi = zp * (lay.f_s[0] + lay.f_s[1] * mt)
            v[..., 3 * l] = log_lower(m + self.c[l])
            v[..., 3 * l + 1] = log_upper(xi - lay.qhat_prev)
            if lay.nu is not None:
                om = np.polynomial.polynomial.polyval(
                    mt, np.concatenate([[0.0], lay.nu.chi_series]))
                v[..., 3 * l + 2] = log_lower(om)
        return v

    def _blocks(self, v: np.ndarray, zeta: np.ndarray | None,
                log_zeta: np.ndarray | None = None):
        """Residuals F (.., n, 3), diagonal blocks A (.., n, 3, 3) and the one nonzero entry
        of each lower block, c (.., n): C_l = c_l e_1 e_0^T (c_0 = 0); every upper block is
        B_l = e_0 e_1^T (P_l depends on layer l + 1 through s_{l+1} alone), so neither is
        stored (the block algebra of :meth:`_thomas` is then a few products per layer).

        With zeta'_l = e^{s_{l+1}} (zeta - qhat_n at the top), xi_l = qhat_{l-1} + e^{s_l},
        L_l = log(1 + m_l) (L_{-1} = 0: mu_0 - q0 = delta_0) and Lt_l = log(1 + m_l / r_l)
        (= L_l when r_l = 1):

            P_l = -log xi_l + log S_{F_l}(m_l / r_l) + log zeta'_l    (xi = z' S_F(mtilde)),
            Q_l = Lt_l - log xi_l - L_{l-1} + s_l   (1 + mtilde_l = xi_l G_{mu_l}(xi_l),
                                        G_{mu_l}(xi) = (1 + m_{l-1}) / (xi - qhat_{l-1})).

        No difference of nearly equal numbers is formed: xi_l - qhat_{l-1} is the unknown
        itself, so the subordination point may approach an atom of mu_l (or its base point)
        at the edges of the support without losing digits. ``log_zeta`` gives
        log(zeta - qhat_n) directly (``zeta`` is then ignored, and dzeta is d/d log zeta').
        """
        shape = (zeta if log_zeta is None else log_zeta).shape
        n = self.n
        F = np.empty(shape + (n, 3), dtype=complex)
        A = np.zeros(shape + (n, 3, 3), dtype=complex)
        c = np.zeros(shape + (n,), dtype=complex)
        r = v[..., 0::3]
        s = v[..., 1::3]
        u = v[..., 2::3]
        es = np.exp(s)
        er = np.exp(r)
        dzeta = None
        L_prev, dL_prev = None, None
        # psi of every implicit factor at once (columns: the layers with one)
        parts = (self.rules.psi_parts(np.exp(u[..., self.implicit_layers]))
                 if len(self.implicit_layers) else None)
        for l, lay in enumerate(self.layers):
            xi = lay.qhat_prev + es[..., l]
            log_xi = log_upper(xi)
            dlog_xi = es[..., l] / xi  # d log xi_l / d s_l
            val, slope = self.terms[l].value_and_slope(r[..., l], er[..., l])
            if l == n - 1 and log_zeta is not None:
                top, dzeta = log_zeta, 1.0
            elif l == n - 1:
                top = log_upper(zeta - lay.qhat)
                dzeta = 1.0 / (zeta - lay.qhat)
            else:
                top = s[..., l + 1]
            F[..., l, 0] = -log_xi + lay.terms.const + val + top
            A[..., l, 0, 0] = slope
            A[..., l, 0, 1] = -dlog_xi
            L, dL = self.log_1m[l].value_and_slope(r[..., l], er[..., l])
            F[..., l, 1] = L - log_xi + s[..., l]
            A[..., l, 1, 0] = dL
            A[..., l, 1, 1] = 1.0 - dlog_xi
            if l > 0:
                F[..., l, 1] -= L_prev
                c[..., l] = -dL_prev
            if self.log_1m_full[l] is self.log_1m[l]:
                L_prev, dL_prev = L, dL
            else:
                L_prev, dL_prev = self.log_1m_full[l].value_and_slope(r[..., l], er[..., l])
            # R_l
            if lay.nu is None:
                F[..., l, 2] = u[..., l]
                A[..., l, 2, 2] = 1.0
            else:
                atom = self.log_1pm.get(l)
                Fl, g, h = implicit_equation([p[..., self.column[l]] for p in parts],
                                             self.log_m[l], self.log_1m[l] if atom is None
                                             else atom, r[..., l], er=er[..., l],
                                             l1=(L, dL) if atom is None else None)
                F[..., l, 2] = Fl
                A[..., l, 2, 0] = h
                A[..., l, 2, 2] = g
                F[..., l, 0] += u[..., l]
                A[..., l, 0, 2] = 1.0
        return F, A, c, dzeta

    @staticmethod
    def _inv3(M: np.ndarray) -> np.ndarray:
        """Inverses of a stack of 3 x 3 matrices by the adjugate (vectorized; LAPACK's batched
        solve costs a call per matrix), written into one preallocated array."""
        a, b, c = M[..., 0, 0], M[..., 0, 1], M[..., 0, 2]
        d, e, f = M[..., 1, 0], M[..., 1, 1], M[..., 1, 2]
        g, h, i = M[..., 2, 0], M[..., 2, 1], M[..., 2, 2]
        co = np.empty(M.shape, dtype=complex)
        co[..., 0, 0] = e * i - f * h
        co[..., 0, 1] = c * h - b * i
        co[..., 0, 2] = b * f - c * e
        co[..., 1, 0] = f * g - d * i
        co[..., 1, 1] = a * i - c * g
        co[..., 1, 2] = c * d - a * f
        co[..., 2, 0] = d * h - e * g
        co[..., 2, 1] = b * g - a * h
        co[..., 2, 2] = a * e - b * d
        det = a * co[..., 0, 0] + b * co[..., 1, 0] + c * co[..., 2, 0]
        co /= det[..., None, None]
        return co

    def _thomas(self, A, c, r) -> np.ndarray:
        """Block Thomas algorithm: C_l x_{l-1} + A_l x_l + B_l x_{l+1} = r_l, with
        B_l = e_0 e_1^T and C_l = c_l e_1 e_0^T (:meth:`_blocks`): the Schur complement
        A_l - C_l A'_{l-1}^{-1} B_{l-1} changes entry (1, 1) alone, by c_l (A'^{-1})_{00}, the
        reduced right side r_l - C_l y_{l-1} entry 1 alone, and B_l x_{l+1} is
        (x_{l+1}[1], 0, 0)."""
        n = self.n
        Ap = A.copy()
        rp = r.copy()
        inv = [self._inv3(Ap[..., 0, :, :])]
        for l in range(1, n):
            y0 = np.einsum("...j,...j->...", inv[-1][..., 0, :], rp[..., l - 1, :])
            Ap[..., l, 1, 1] -= c[..., l] * inv[-1][..., 0, 0]
            rp[..., l, 1] -= c[..., l] * y0
            inv.append(self._inv3(Ap[..., l, :, :]))
        x = np.empty(r.shape, dtype=complex)
        x[..., n - 1, :] = np.einsum("...ij,...j->...i", inv[n - 1], rp[..., n - 1, :])
        for l in range(n - 2, -1, -1):
            rhs = rp[..., l, :].copy()
            rhs[..., 0] -= x[..., l + 1, 1]
            x[..., l, :] = np.einsum("...ij,...j->...i", inv[l], rhs)
        return x.reshape(r.shape[:-2] + (self.size,))

    def newton_step(self, v: np.ndarray, zeta: np.ndarray | None, *,
                    log_zeta: np.ndarray | None = None) -> np.ndarray:
        """-J^{-1} F(v; zeta) (zeta - qhat_n given as its log instead: ``log_zeta``)."""
        F, A, c, _ = self._blocks(v, zeta, log_zeta)
        return self._thomas(A, c, -F)

    def tangent(self, v: np.ndarray, zeta: np.ndarray | None, *,
                log_zeta: np.ndarray | None = None) -> np.ndarray:
        """dv/dzeta: only P_n depends on zeta, through log(zeta - qhat_n); with
        ``log_zeta``, dv/d log(zeta - qhat_n)."""
        F, A, c, dzeta = self._blocks(v, zeta, log_zeta)
        r = np.zeros(F.shape, dtype=complex)
        r[..., self.n - 1, 0] = -dzeta
        return self._thomas(A, c, r)

    def residual(self, v: np.ndarray, zeta: np.ndarray | None, *,
                 log_zeta: np.ndarray | None = None) -> np.ndarray:
        """max |F| over the 3 n equations (P_l, Q_l, R_l), per point."""
        F = self._blocks(v, zeta, log_zeta)[0]
        return np.max(np.abs(F), axis=(-2, -1))

    def valid(self, v: np.ndarray) -> np.ndarray:
        """m_l, omega_l in the closed lower half-plane, xi_l in the closed upper one."""
        ok = np.all(np.isfinite(v), axis=-1)
        z = np.exp(v)
        lower = np.concatenate([z[..., 0::3], z[..., 2::3]], axis=-1)
        ok &= np.all(lower.imag <= HALF_PLANE_TOL * np.abs(lower), axis=-1)
        upper = z[..., 1::3]
        return ok & np.all(upper.imag >= -HALF_PLANE_TOL * np.abs(upper), axis=-1)

    def cauchy(self, v: np.ndarray, zeta: np.ndarray, *, drop_zero_atom: bool = False
               ) -> np.ndarray:
        """G_{mu_L}(zeta) = (1 + m_n) / (zeta - qhat_n); the atom of Y_n at 0 (the atom of
        mu_L at qhat_n) left out on request."""
        top = self.layers[-1]
        p0 = 0.0 if drop_zero_atom else top.zero_mass
        return (np.exp(v[..., 3 * (self.n - 1)]) + p0) / (zeta - top.qhat)

    def cauchy_slope(self, v: np.ndarray, zeta: np.ndarray, *, drop_zero_atom: bool = False
                     ) -> np.ndarray:
        """dG_{mu_L}/dzeta along the solution (tangent dv/dzeta)."""
        k = 3 * (self.n - 1)
        dr = self.tangent(v, zeta)[..., k]
        g = self.cauchy(v, zeta, drop_zero_atom=drop_zero_atom)
        return (np.exp(v[..., k]) * dr - g) / (zeta - self.layers[-1].qhat)
