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
from freeness_lab.theory.log_terms import LogTerms, SumsInR
from freeness_lab.theory.newton.implicit import ImplicitFactor, implicit_residual
from freeness_lab.theory.newton.protocol import HALF_PLANE_TOL
from freeness_lab.theory.newton.rule_stack import RuleStack

__all__ = ["ChainLayer", "ChainSystem"]


def _run(idx: np.ndarray) -> slice | np.ndarray:
    """``idx`` as a slice where it is a run of consecutive integers (basic indexing: a view,
    no gather), else the array itself."""
    if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return slice(int(idx[0]), int(idx[0]) + len(idx))
    return idx


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
        n = self.n = len(layers)
        self.size = 3 * n
        self.implicit_layers = np.array([l for l, lay in enumerate(layers)
                                         if lay.nu is not None], dtype=int)
        self.rules = RuleStack([layers[l].nu.rule for l in self.implicit_layers])
        self.c = np.array([1.0 - lay.zero_mass for lay in layers])
        self.const = np.array([lay.terms.const for lay in layers])
        self.qhat_prev = np.array([lay.qhat_prev for lay in layers])
        # 1 where layer l has an implicit factor (its u_l enters P_l), 0 where u_l is a dummy
        self.has_nu = np.zeros(n)
        self.has_nu[self.implicit_layers] = 1.0
        # every log-term of every layer, one sum each (SumsInR), in this order: log S_{F_l}
        # (with log S_nu(m) = u + log(1 + m) - log m), log(1 + m_l / r_l), then log(1 + m_l)
        # undivided for Q_{l+1} where r_l != 1, log(m_l / r_l) and the implicit factor's
        # log(1 - p + m_l / r_l) when it has an atom at 0 (ImplicitFactor)
        groups = []
        for lay in layers:
            rows = [lay.terms.rows.reshape(-1, 3)]
            if lay.nu is not None:
                rows.append(np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 1.0]]))
            groups.append(self._in_m_over_r(np.concatenate(rows), lay))
        groups += [self._in_m_over_r(np.array([[1.0, 1.0, 1.0]]), lay) for lay in layers]
        column = list(range(n)) * 2

        def add(rows: np.ndarray, l: int) -> int:
            groups.append(rows)
            column.append(l)
            return len(groups) - 1

        self.full = np.array([n + l if lay.ratio == 1 else add(np.array([[1.0, 1.0, 1.0]]), l)
                              for l, lay in enumerate(layers)], dtype=int)
        impl = [layers[l] for l in self.implicit_layers]
        self.log_m = np.array([add(self._in_m_over_r(np.array([[1.0, 0.0, 1.0]]), lay), l)
                               for l, lay in zip(self.implicit_layers, impl, strict=True)],
                              dtype=int)
        self.log_1pm = np.array(
            [n + l if lay.nu.atom == 0 else
             add(self._in_m_over_r(np.array([[1.0, 1.0 - lay.nu.atom, 1.0]]), lay), l)
             for l, lay in zip(self.implicit_layers, impl, strict=True)], dtype=int)
        self.sums = SumsInR(groups, self.c[column], np.array(column))
        # the same indices as slices where they are runs (every layer implicit, no atom, a
        # square chain): views instead of gathers at every step
        self.impl = _run(self.implicit_layers)
        self.full_prev = _run(self.full[:-1])
        self.log_m, self.log_1pm = _run(self.log_m), _run(self.log_1pm)

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
        """Residuals F (.., n, 3), the entries of the diagonal blocks and the one nonzero entry
        of each lower block, every layer at once.

        A_l = [[a00, a01, a02], [a10, a11, 0], [a20, 0, a22]] (a02 = 1 and (a20, a22) the
        implicit equation's (dR/dr, dR/du) where layer l has an implicit factor, (0, 0, 1)
        otherwise: ``has_nu``), C_l = c_l e_1 e_0^T (c_0 = 0); every upper block is
        B_l = e_0 e_1^T (P_l depends on layer l + 1 through s_{l+1} alone), so neither is
        stored (the block algebra of :meth:`_thomas` is then a few products per layer).
        Returns F, (a00, a01, a10, a11, a20, a22) each of shape (..., n) and
        -(c_1..c_{n-1}) = dL_0..dL_{n-2} (dL_l = d log(1 + m_l) / dr_l), and dP_n/dzeta.

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
        The log-terms of all layers are one :class:`~freeness_lab.theory.log_terms.SumsInR`
        evaluation, the implicit factors one rule stack's and one implicit equation's.
        """
        n, impl = self.n, self.impl
        r, s, u = v[..., 0::3], v[..., 1::3], v[..., 2::3]
        es = np.exp(s)
        er = np.exp(r)
        xi = self.qhat_prev + es
        log_xi = log_upper(xi)
        dlog_xi = es / xi  # d log xi_l / d s_l
        val, slope = self.sums.value_and_slope(r, er)
        F = np.empty(r.shape + (3,), dtype=complex)
        # log zeta'_l: s_{l+1}, log(zeta - qhat_n) at the top
        F[..., :-1, 0] = s[..., 1:]
        if log_zeta is not None:
            F[..., -1, 0], dzeta = log_zeta, 1.0
        else:
            zp = zeta - self.layers[-1].qhat
            F[..., -1, 0], dzeta = log_upper(zp), 1.0 / zp
        F[..., 0] = -log_xi + self.const + val[..., :n] + F[..., 0] + u * self.has_nu
        F[..., 1] = val[..., n:2 * n] - log_xi + s
        F[..., 1:, 1] -= val[..., self.full_prev]
        k = len(self.implicit_layers)
        if k:  # psi of every implicit factor at once (columns: the layers with one)
            parts = self.rules.psi_parts(np.exp(u[..., impl]))
            Fi, g, h = implicit_residual(parts, (val[..., self.log_m], slope[..., self.log_m]),
                                         (val[..., self.log_1pm], slope[..., self.log_1pm]))
        if k == n:
            F[..., 2], a20, a22 = Fi, h, g
        else:  # R_l = u_l for the dummies
            F[..., 2] = u
            a20, a22 = np.zeros(r.shape, dtype=complex), np.ones(r.shape, dtype=complex)
            if k:
                F[..., impl, 2] = Fi
                a20[..., impl], a22[..., impl] = h, g
        return F, (slope[..., :n], -dlog_xi, slope[..., n:2 * n], 1.0 - dlog_xi, a20, a22,
                   slope[..., self.full_prev]), dzeta

    def _thomas(self, jac, b) -> np.ndarray:
        """Block Thomas algorithm: C_l x_{l-1} + A_l x_l + B_l x_{l+1} = b_l, with
        B_l = e_0 e_1^T and C_l = c_l e_1 e_0^T (:meth:`_blocks`): the Schur complement
        A'_l = A_l - C_l A'_{l-1}^{-1} B_{l-1} changes entry (1, 1) alone, to
        e_l = a11_l - c_l (A'^{-1}_{l-1})_{00}, the reduced right side b'_l = b_l - C_l
        A'^{-1}_{l-1} b'_{l-1} entry 1 alone, and B_l x_{l+1} is (x_{l+1}[1], 0, 0).

        With a12 = a21 = 0 the adjugate of A'_l is a few products: det = e P - Q
        (P = a00 a22 - a02 a20, Q = a01 a10 a22), (A'^{-1})_{00} = e a22 / det and
        (A'^{-1} b')_0 = (e R - a01 a22 b'_1) / det (R = a22 b_0 - a02 b_2), so the forward
        recurrence carries these two numbers per point; then y_l = A'^{-1}_l b'_l for every
        layer at once, the backward recurrence x_{l,1} = y_{l,1} + (a10 a22 / det) x_{l+1,1},
        and x_l = y_l - x_{l+1,1} A'^{-1}_l e_0 at once."""
        a00, a01, a10, a11, a20, a22, dl = jac
        a02, n = self.has_nu, self.n
        b0, b1, b2 = b[..., 0], b[..., 1].copy(), b[..., 2]
        P = a00 * a22 - a02 * a20
        Q = a01 * a10 * a22
        S = a01 * a22
        R = a22 * b0 - a02 * b2
        e = a11.copy()
        for l in range(n - 1):
            # ((A'^{-1})_00, (A'^{-1} b')_0) of layer l = (e a22, e R - a01 a22 b'_1) / det
            el = e[..., l]
            det = el * P[..., l] - Q[..., l]
            e[..., l + 1] += dl[..., l] * (el * a22[..., l] / det)
            b1[..., l + 1] += dl[..., l] * ((el * R[..., l] - S[..., l] * b1[..., l]) / det)
        det = e * P - Q
        y1 = (P * b1 - a10 * R) / det
        k = a10 * a22 / det
        x = np.empty(b.shape, dtype=complex)
        x1 = x[..., 1]
        x1[..., n - 1] = y1[..., n - 1]
        for l in range(n - 2, -1, -1):
            x1[..., l] = y1[..., l] + k[..., l] * x1[..., l + 1]
        nxt = np.zeros(e.shape, dtype=complex)  # x_{l+1,1}
        nxt[..., :-1] = x1[..., 1:]
        x[..., 0] = (e * (R - a22 * nxt) - S * b1) / det
        x[..., 2] = (a20 * (a01 * b1 - e * (b0 - nxt)) + (a00 * e - a01 * a10) * b2) / det
        return x.reshape(b.shape[:-2] + (self.size,))

    def newton_step(self, v: np.ndarray, zeta: np.ndarray | None, *,
                    log_zeta: np.ndarray | None = None) -> np.ndarray:
        """-J^{-1} F(v; zeta) (zeta - qhat_n given as its log instead: ``log_zeta``)."""
        F, jac, _ = self._blocks(v, zeta, log_zeta)
        return self._thomas(jac, -F)

    def tangent(self, v: np.ndarray, zeta: np.ndarray | None, *,
                log_zeta: np.ndarray | None = None) -> np.ndarray:
        """dv/dzeta: only P_n depends on zeta, through log(zeta - qhat_n); with
        ``log_zeta``, dv/d log(zeta - qhat_n)."""
        F, jac, dzeta = self._blocks(v, zeta, log_zeta)
        b = np.zeros(F.shape, dtype=complex)
        b[..., self.n - 1, 0] = -dzeta
        return self._thomas(jac, b)

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
