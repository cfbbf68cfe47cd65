"""Newton "lilypads" solver for the Cauchy transform of free multiplicative convolutions.

Equations (``../shared/DESIGN.md`` section 2). Write zeta for the spectral variable,
G(zeta) = int dmu / (zeta - t), m = psi(1/zeta) = zeta G(zeta) - 1.

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

*Lilypads homotopy* (Chhaibi, Daouda, Kahn 2022): every grid point starts far in the upper
half-plane, zeta = x + i Y, where the series psi(z) = sum m_k z^k gives the solution, and
walks down in t = log Im zeta toward its target x + i eps. A step is predicted along the
tangent dv/dzeta and corrected by Newton; it is accepted only when the Newton iterates
contract -- the affine-covariant Kantorovich estimate theta = |dv_2| / |dv_1| <= 1/4
(Deuflhard, *Newton Methods for Nonlinear Problems*, 2004, section 5.1), i.e. the predicted
point lies in the ball where Newton converges quadratically -- and converge to ``tol``.
A rejected step is halved; an accepted one is rescaled by sqrt(theta_target / theta).
Every point has its own step, all points move together (vectorized, no loop per point),
and every loop has a cap: a point that runs out of budget is reported as not converged.

*Log zeta*: both systems depend on zeta only through log zeta' (zeta' = zeta, or
zeta - qhat_n for a chain), so :class:`LogZetaSystem` solves them with ell = log zeta' as
the coordinate, at points no double can represent (deep products put mass at x ~ e^-1000).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.branches import log_lower, log_upper
from freeness_lab.theory.log_terms import LogTerms, TermsInR
from freeness_lab.theory.series import reversion

#: points are kept in the closed lower (upper) half-plane up to this relative tolerance
_HALF_PLANE_TOL = 1e-9


def _psi_quadrature(nodes: np.ndarray, weights: np.ndarray, omega: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """psi(omega) = sum_j w_j omega t_j / (1 - omega t_j), 1 + psi = sum_j w_j / (1 - omega t_j)
    (no cancellation when psi -> -1) and omega psi'(omega), by direct summation."""
    inv = 1.0 / (1.0 - omega[..., None] * nodes)
    r = inv - 1.0
    # (a * w).sum(-1), not a @ w: complex matrix-vector products through BLAS were 5000x
    # slower here (thread contention on a shared 2-core machine)
    psi = (r * weights).sum(-1)
    one_psi = (inv * weights).sum(-1)
    dpsi = (r * inv * weights).sum(-1)
    return psi, one_psi, dpsi


#: clusters of the clustered rule hold this many nodes (padded with zero weights)
_CLUSTER_SIZE = 256
#: a cluster is far from zeta when |zeta - c| > _FAR_RATIO rho (c, rho: its centre and radius)
_FAR_RATIO = 4.0
#: Laurent terms per far cluster: the tail is below (1 / _FAR_RATIO)^K ~ 1e-17 of its mass
_LAURENT_TERMS = 28


class QuadratureRule:
    """psi(omega), 1 + psi and omega psi' of a quadrature rule (nodes t_j, weights w_j), fast.

    In zeta = 1 / omega,

        1 + psi = zeta sum_j w_j / (zeta - t_j),   psi = sum_j w_j t_j / (zeta - t_j),
        omega psi'(omega) = zeta sum_j w_j t_j / (zeta - t_j)^2.

    The nodes are sorted by real part and cut into clusters of ``_CLUSTER_SIZE``; for a
    cluster whose centre c and radius rho satisfy |zeta - c| > 4 rho, the sums are its Laurent
    series sum_k A_k / (zeta - c)^(k+1), A_k = sum_j w_j (t_j - c)^k (28 terms: the remainder
    is below 4^-28 ~ 1e-17 of the cluster's mass; the one-level scheme of the fast multipole
    method); the other clusters are summed directly (:func:`_psi_quadrature`). A point near
    the support of a law of D^2 (thousands of contour nodes) meets a few clusters only, which
    makes the evaluation several times cheaper than direct summation, with the same values to
    rounding. Rules smaller than two clusters are summed directly.
    """

    def __init__(self, nodes: np.ndarray, weights: np.ndarray):
        nodes = np.asarray(nodes, dtype=complex).ravel()
        weights = np.asarray(weights, dtype=complex).ravel()
        self.nodes, self.weights = nodes, weights
        self.clustered = nodes.size >= 2 * _CLUSTER_SIZE
        if not self.clustered:
            return
        order = np.argsort(nodes.real, kind="stable")
        C = -(-nodes.size // _CLUSTER_SIZE)
        pad = C * _CLUSTER_SIZE - nodes.size
        t = np.concatenate([nodes[order], np.full(pad, nodes[order[-1]])])
        w = np.concatenate([weights[order], np.zeros(pad, dtype=complex)])
        self._t = t.reshape(C, _CLUSTER_SIZE)
        self._w = w.reshape(C, _CLUSTER_SIZE)
        lo = self._t.real.min(1) + 1j * self._t.imag.min(1)
        hi = self._t.real.max(1) + 1j * self._t.imag.max(1)
        self._centre = 0.5 * (lo + hi)
        d = self._t - self._centre[:, None]
        # moments in d / rho (no overflow, whatever the radius; rho = 0 for identical nodes)
        self._radius = np.maximum(np.abs(d).max(1), 1e-300)
        powers = (d / self._radius[:, None])[:, :, None] ** np.arange(_LAURENT_TERMS)
        # columns: A_k, B_k (for 1 + psi and psi), (k + 1) B_k (for omega psi')
        a = np.einsum("cs,csk->ck", self._w, powers)
        b = np.einsum("cs,csk->ck", self._w * self._t, powers)
        self._moments = np.stack([a, b, b * np.arange(1, _LAURENT_TERMS + 1)], axis=-1)

    def psi_parts(self, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(psi, 1 + psi, omega psi') at omega (any shape)."""
        if not self.clustered:
            return _psi_quadrature(self.nodes, self.weights, omega)
        shape = np.shape(omega)
        om = np.asarray(omega, dtype=complex).ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            zeta = 1.0 / om
        diff = zeta[:, None] - self._centre
        far = np.abs(diff) > _FAR_RATIO * self._radius
        x = np.where(far, 1.0 / np.where(far, diff, 1.0), 0.0)  # 1 / (zeta - c), (P, C)
        y = x * self._radius  # |y| < 1/3 where far
        yk = np.empty(y.shape + (_LAURENT_TERMS,), dtype=complex)
        yk[..., 0] = 1.0
        np.cumprod(np.broadcast_to(y[..., None], y.shape + (_LAURENT_TERMS - 1,)), axis=-1,
                   out=yk[..., 1:])  # y^0 .. y^(K-1)
        sums = np.einsum("pck,ckj->pcj", yk, self._moments)  # (P, C, 3)
        s0 = (sums[..., 0] * x).sum(-1)
        s1 = (sums[..., 1] * x).sum(-1)
        s2 = (sums[..., 2] * x * x).sum(-1)
        psi, one_psi, dpsi = s1, zeta * s0, zeta * s2
        near_p, near_c = np.nonzero(~far)
        if len(near_p):
            p, o, d = _psi_quadrature(self._t[near_c], self._w[near_c], om[near_p])
            psi = psi + _scatter(near_p, p, om.size)
            one_psi = one_psi + _scatter(near_p, o, om.size)
            dpsi = dpsi + _scatter(near_p, d, om.size)
        return psi.reshape(shape), one_psi.reshape(shape), dpsi.reshape(shape)


def _scatter(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """out[i] = sum of values[index == i] (complex bincount)."""
    return (np.bincount(index, values.real, size)
            + 1j * np.bincount(index, values.imag, size))


def _implicit_equation(rule: QuadratureRule, u, log_am: TermsInR, log_1am: TermsInR, r):
    """psi(e^u) = a m, as log psi - log(a m) where |1 + a m| >= 1/2 and as
    log(1 + psi) - log(1 + a m) near a m = -1 (both sides then lose nothing to cancellation).
    Returns (F, dF/du, dF/dr)."""
    psi, one_psi, dpsi = rule.psi_parts(np.exp(u))
    la, dla = log_am.value_and_slope(r)
    l1, dl1 = log_1am.value_and_slope(r)
    near = np.abs(np.exp(l1)) < 0.5
    F = np.where(near, log_lower(one_psi) - l1, log_lower(psi) - la)
    dF_du = np.where(near, dpsi / one_psi, dpsi / psi)
    dF_dr = np.where(near, -dl1, -dla)
    return F, dF_du, dF_dr


@dataclass(frozen=True)
class ImplicitFactor:
    """A factor without explicit S: psi through a quadrature, power k, argument scale a."""

    nodes: np.ndarray
    weights: np.ndarray
    power: float
    scale: float
    chi_series: np.ndarray  # chi_i coefficients c_1..c_n, for the far-field start

    @functools.cached_property
    def rule(self) -> QuadratureRule:
        """The nodes and weights as a fast :class:`QuadratureRule`."""
        return QuadratureRule(self.nodes, self.weights)


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
        self.log_am = [TermsInR(np.array([[1.0, 0.0, f.scale]]), self.c) for f in implicit]
        self.log_1am = [TermsInR(np.array([[1.0, 1.0, f.scale]]), self.c) for f in implicit]
        self.psi_series = np.asarray(psi_series, dtype=float)
        self.size = 1 + len(implicit)

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
               ) -> tuple[np.ndarray | None, np.ndarray, list[np.ndarray], list[np.ndarray],
                          list[np.ndarray]]:
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
            F_0, dF_0/dr, and per implicit factor dF_i/dr, F_i, dF_i/du_i.
        """
        r = v[..., 0]
        if residual:
            val, d0 = self.terms.value_and_slope(r)
            f0 = self.const + val + (log_upper(zeta) if log_zeta is None else log_zeta)
        else:
            f0, d0 = None, self.terms.slope(r)
        fi, gi, hi = [], [], []
        for i, f in enumerate(self.implicit):
            u = v[..., 1 + i]
            F, g, h = _implicit_equation(f.rule, u, self.log_am[i],
                                         self.log_1am[i], r)
            if residual:
                f0 = f0 + f.power * u
            fi.append(F)
            gi.append(g)
            hi.append(h)
        return f0, d0, hi, fi, gi

    def _arrow_solve(self, d0, hi, gi, r0, ri) -> np.ndarray:
        """Solve J x = (r0, r_1..r_K) for the arrow Jacobian
        [[d0, k_1 .. k_K], [h_1, g_1, 0 ..], [h_2, 0, g_2, ..], ...]."""
        num, den = r0, d0
        for f, g, h, r in zip(self.implicit, gi, hi, ri, strict=True):
            num = num - f.power * r / g
            den = den - f.power * h / g
        x = np.empty(r0.shape + (self.size,), dtype=complex)
        x[..., 0] = num / den
        for i, (g, h, r) in enumerate(zip(gi, hi, ri, strict=True)):
            x[..., 1 + i] = (r - h * x[..., 0]) / g
        return x

    def newton_step(self, v: np.ndarray, zeta: np.ndarray | None, *,
                    log_zeta: np.ndarray | None = None) -> np.ndarray:
        """-J^{-1} F(v; zeta) (zeta given as ``log_zeta`` instead: :class:`LogZetaSystem`)."""
        f0, d0, h, fi, gi = self._parts(v, zeta, log_zeta=log_zeta)
        return self._arrow_solve(d0, h, gi, -f0, [-f for f in fi])

    def tangent(self, v: np.ndarray, zeta: np.ndarray | None, *,
                log_zeta: np.ndarray | None = None) -> np.ndarray:
        """dv/dzeta = -J^{-1} dF/dzeta (only F_0 depends on zeta, through log zeta); with
        ``log_zeta``, dv/d log zeta."""
        _, d0, h, fi, gi = self._parts(v, zeta, residual=False)
        rhs = -1.0 / zeta if log_zeta is None else -np.ones_like(d0)
        return self._arrow_solve(d0, h, gi, rhs, [np.zeros_like(f) for f in fi])

    def residual(self, v: np.ndarray, zeta: np.ndarray | None, *,
                 log_zeta: np.ndarray | None = None) -> np.ndarray:
        """max |F_i(v; zeta)| over the equations (F_0 and every F_i), per point.

        Parameters
        ----------
        v : complex ndarray, shape (..., size)
        zeta : complex ndarray or None
        log_zeta : complex ndarray, optional
            log zeta in place of ``zeta`` (:class:`LogZetaSystem`).

        Returns
        -------
        float ndarray, shape (...)
        """
        f0, _, _, fi, _ = self._parts(v, zeta, log_zeta=log_zeta)
        return np.max(np.abs(np.stack([f0, *fi], axis=-1)), axis=-1)

    def valid(self, v: np.ndarray) -> np.ndarray:
        """m and every omega_i in the closed lower half-plane, all finite."""
        ok = np.logical_and.reduce(np.isfinite(v), axis=-1)
        z = np.exp(v)
        return ok & np.logical_and.reduce(z.imag <= _HALF_PLANE_TOL * np.abs(z), axis=-1)

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


class LogZetaSystem:
    """A product or chain system in the coordinate ell = log zeta' (for :func:`lilypads`
    with ``log_zeta=True``), zeta' = zeta - b, b the law's base point (0 for a product,
    qhat_n for a chain).

    Both systems depend on zeta through log zeta' alone (F_0 of a product, P_n of a chain),
    so they can be solved at points that double precision cannot represent: deep products
    put mass at x ~ e^-1000 (each factor whose density is singular at 0 makes
    rho ~ x^(delta - 1) flatter), and x = b + y keeps no digit of y below 1e-16 b. The
    tangent is dv/d ell = -J^{-1} dF/d ell (dF/d ell = 1 in that one equation), and the
    Cauchy transform is returned as zeta' G(zeta) = e^r + p_0 (r: the top layer's main
    unknown), which stays representable: y rho = -Im zeta' G / pi on the axis.

    Parameters
    ----------
    system : ProductSystem or ChainSystem
    """

    def __init__(self, system: ProductSystem | ChainSystem):
        self.system = system
        self.size = system.size
        if isinstance(system, ChainSystem):
            self._top, self._p0 = 3 * (system.n - 1), system.layers[-1].zero_mass
        else:
            self._top, self._p0 = 0, system.p0

    def newton_step(self, v: np.ndarray, ell: np.ndarray) -> np.ndarray:
        """-J^{-1} F(v; b + e^ell)."""
        return self.system.newton_step(v, None, log_zeta=ell)

    def tangent(self, v: np.ndarray, ell: np.ndarray) -> np.ndarray:
        """dv/d ell."""
        return self.system.tangent(v, None, log_zeta=ell)

    def residual(self, v: np.ndarray, ell: np.ndarray) -> np.ndarray:
        """max |F(v; b + e^ell)| over the equations, per point."""
        return self.system.residual(v, None, log_zeta=ell)

    def valid(self, v: np.ndarray) -> np.ndarray:
        """As the system's ``valid``."""
        return self.system.valid(v)

    def cauchy(self, v: np.ndarray, ell: np.ndarray, *, drop_zero_atom: bool = False
               ) -> np.ndarray:
        """zeta' G(zeta) = e^r + p_0 (note: not G); without the atom at b on request."""
        return np.exp(v[..., self._top]) + (0.0 if drop_zero_atom else self._p0)


@dataclass(frozen=True)
class ChainLayer:
    """Layer l of the shift chain: Y_l = F_l boxtimes mu_l, mu_{l+1} = qhat_l + Y_l.

    ``terms``: log S of the explicit part of F_l; ``nu``: the implicit factor of F_l (or None);
    ``qhat_prev`` = qhat_{l-1}, ``qhat`` = qhat_l; ``zero_mass``: the mass of Y_l at 0;
    ``y_moments`` = (m_1, m_2) of Y_l and ``f_s`` = (s_0, s_1) of S_{F_l}, for the far-field
    start.
    """

    terms: LogTerms
    nu: ImplicitFactor | None
    qhat_prev: float
    qhat: float
    zero_mass: float
    y_moments: tuple[float, float]
    f_s: tuple[float, float]


class ChainSystem:
    """Block-tridiagonal system for the Hayase-Karakida shift chain (module docstring).

    Unknowns per layer l = 1..n: (r_l = log(m_l + 1 - p0_l), s_l = log(xi_l - qhat_{l-1}),
    u_l), p0_l the mass of Y_l at 0; u_l is a dummy (equation u_l = 0) when nu_l has an
    explicit S. s_l is log zeta'_{l-1}, the point where layer l - 1 is evaluated.
    """

    def __init__(self, layers: list[ChainLayer]):
        self.layers = layers
        self.n = len(layers)
        self.size = 3 * self.n
        self.c = np.array([1.0 - lay.zero_mass for lay in layers])
        self.terms = []
        for lay, c in zip(layers, self.c, strict=True):
            rows = [lay.terms.rows.reshape(-1, 3)]
            if lay.nu is not None:  # log S_nu(m) = u + log(1 + m) - log m
                rows.append(np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 1.0]]))
            self.terms.append(TermsInR(np.concatenate(rows), c))
        self.log_m = [TermsInR(np.array([[1.0, 0.0, 1.0]]), c) for c in self.c]
        self.log_1m = [TermsInR(np.array([[1.0, 1.0, 1.0]]), c) for c in self.c]

    def initial(self, zeta: np.ndarray) -> np.ndarray:
        """Far-field start, layer by layer from the top: m_l ~ m_1/z' + m_2/z'^2,
        xi_l = z' S_F(m_l) with S_F ~ s_0 + s_1 m."""
        v = np.zeros(zeta.shape + (self.size,), dtype=complex)
        xi = zeta
        for l in range(self.n - 1, -1, -1):
            lay = self.layers[l]
            zp = xi - lay.qhat
            m = lay.y_moments[0] / zp + lay.y_moments[1] / zp**2
            xi = zp * (lay.f_s[0] + lay.f_s[1] * m)
            v[..., 3 * l] = log_lower(m + self.c[l])
            v[..., 3 * l + 1] = log_upper(xi - lay.qhat_prev)
            if lay.nu is not None:
                om = np.polynomial.polynomial.polyval(
                    m, np.concatenate([[0.0], lay.nu.chi_series]))
                v[..., 3 * l + 2] = log_lower(om)
        return v

    def _blocks(self, v: np.ndarray, zeta: np.ndarray | None,
                log_zeta: np.ndarray | None = None):
        """Residuals F (.., n, 3) and blocks A (diag), B (upper), C (lower) (.., n, 3, 3).

        With zeta'_l = e^{s_{l+1}} (zeta - qhat_n at the top), xi_l = qhat_{l-1} + e^{s_l} and
        L_l = log(1 + m_l) (L_{-1} = 0: mu_0 - q0 = delta_0):

            P_l = -log xi_l + log S_{F_l}(m_l) + log zeta'_l                 (xi = z' S_F(m)),
            Q_l = L_l - log xi_l - L_{l-1} + s_l   (1 + m_l = xi_l G_{mu_l}(xi_l), G_{mu_l}(xi)
                                                   = (1 + m_{l-1}) / (xi - qhat_{l-1})).

        No difference of nearly equal numbers is formed: xi_l - qhat_{l-1} is the unknown
        itself, so the subordination point may approach an atom of mu_l (or its base point)
        at the edges of the support without losing digits. ``log_zeta`` gives
        log(zeta - qhat_n) directly (``zeta`` is then ignored, and dzeta is d/d log zeta').
        """
        shape = (zeta if log_zeta is None else log_zeta).shape
        n = self.n
        F = np.zeros(shape + (n, 3), dtype=complex)
        A = np.zeros(shape + (n, 3, 3), dtype=complex)
        B = np.zeros(shape + (n, 3, 3), dtype=complex)
        C = np.zeros(shape + (n, 3, 3), dtype=complex)
        r = v[..., 0::3]
        s = v[..., 1::3]
        u = v[..., 2::3]
        es = np.exp(s)
        dzeta = None
        L_prev, dL_prev = None, None
        for l, lay in enumerate(self.layers):
            xi = lay.qhat_prev + es[..., l]
            log_xi = log_upper(xi)
            dlog_xi = es[..., l] / xi  # d log xi_l / d s_l
            val, slope = self.terms[l].value_and_slope(r[..., l])
            if l == n - 1 and log_zeta is not None:
                top, dzeta = log_zeta, 1.0
            elif l == n - 1:
                top = log_upper(zeta - lay.qhat)
                dzeta = 1.0 / (zeta - lay.qhat)
            else:
                top = s[..., l + 1]
                B[..., l, 0, 1] = 1.0
            F[..., l, 0] = -log_xi + lay.terms.const + val + top
            A[..., l, 0, 0] = slope
            A[..., l, 0, 1] = -dlog_xi
            L, dL = self.log_1m[l].value_and_slope(r[..., l])
            F[..., l, 1] = L - log_xi + s[..., l]
            A[..., l, 1, 0] = dL
            A[..., l, 1, 1] = 1.0 - dlog_xi
            if l > 0:
                F[..., l, 1] -= L_prev
                C[..., l, 1, 0] = -dL_prev
            L_prev, dL_prev = L, dL
            # R_l
            if lay.nu is None:
                F[..., l, 2] = u[..., l]
                A[..., l, 2, 2] = 1.0
            else:
                Fl, g, h = _implicit_equation(lay.nu.rule, u[..., l],
                                              self.log_m[l], self.log_1m[l], r[..., l])
                F[..., l, 2] = Fl
                A[..., l, 2, 0] = h
                A[..., l, 2, 2] = g
                F[..., l, 0] += u[..., l]
                A[..., l, 0, 2] = 1.0
        return F, A, B, C, dzeta

    @staticmethod
    def _inv3(M: np.ndarray) -> np.ndarray:
        """Inverses of a stack of 3 x 3 matrices by the adjugate (vectorized; LAPACK's batched
        solve costs a call per matrix)."""
        a, b, c = M[..., 0, 0], M[..., 0, 1], M[..., 0, 2]
        d, e, f = M[..., 1, 0], M[..., 1, 1], M[..., 1, 2]
        g, h, i = M[..., 2, 0], M[..., 2, 1], M[..., 2, 2]
        co = np.stack([np.stack([e * i - f * h, c * h - b * i, b * f - c * e], -1),
                       np.stack([f * g - d * i, a * i - c * g, c * d - a * f], -1),
                       np.stack([d * h - e * g, b * g - a * h, a * e - b * d], -1)], -2)
        det = a * co[..., 0, 0] + b * co[..., 1, 0] + c * co[..., 2, 0]
        return co / det[..., None, None]

    def _thomas(self, A, B, C, r) -> np.ndarray:
        """Block Thomas algorithm: C_l x_{l-1} + A_l x_l + B_l x_{l+1} = r_l."""
        n = self.n
        inv = [self._inv3(A[..., 0, :, :])]
        rp = [r[..., 0, :]]
        for l in range(1, n):
            X = inv[-1] @ B[..., l - 1, :, :]
            y = (inv[-1] @ rp[-1][..., None])[..., 0]
            inv.append(self._inv3(A[..., l, :, :] - C[..., l, :, :] @ X))
            rp.append(r[..., l, :] - (C[..., l, :, :] @ y[..., None])[..., 0])
        x = np.empty(r.shape, dtype=complex)
        x[..., n - 1, :] = (inv[n - 1] @ rp[n - 1][..., None])[..., 0]
        for l in range(n - 2, -1, -1):
            rhs = rp[l] - (B[..., l, :, :] @ x[..., l + 1, :, None])[..., 0]
            x[..., l, :] = (inv[l] @ rhs[..., None])[..., 0]
        return x.reshape(r.shape[:-2] + (self.size,))

    def newton_step(self, v: np.ndarray, zeta: np.ndarray | None, *,
                    log_zeta: np.ndarray | None = None) -> np.ndarray:
        """-J^{-1} F(v; zeta) (zeta - qhat_n given as its log instead: ``log_zeta``)."""
        F, A, B, C, _ = self._blocks(v, zeta, log_zeta)
        return self._thomas(A, B, C, -F)

    def tangent(self, v: np.ndarray, zeta: np.ndarray | None, *,
                log_zeta: np.ndarray | None = None) -> np.ndarray:
        """dv/dzeta: only P_n depends on zeta, through log(zeta - qhat_n); with
        ``log_zeta``, dv/d log(zeta - qhat_n)."""
        F, A, B, C, dzeta = self._blocks(v, zeta, log_zeta)
        r = np.zeros(F.shape, dtype=complex)
        r[..., self.n - 1, 0] = -dzeta
        return self._thomas(A, B, C, r)

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
        ok &= np.all(lower.imag <= _HALF_PLANE_TOL * np.abs(lower), axis=-1)
        upper = z[..., 1::3]
        return ok & np.all(upper.imag >= -_HALF_PLANE_TOL * np.abs(upper), axis=-1)

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


@dataclass
class NewtonResult:
    """Output of :func:`lilypads`.

    Attributes
    ----------
    zeta : complex ndarray      the target points x + i eps
    cauchy : complex ndarray    G(zeta) (nan where not converged)
    converged : bool ndarray    per point
    rounds : int                homotopy rounds used
    evaluations : int           Newton steps evaluated (over all points, vectorized)
    unknowns : complex ndarray  the solution of the system at every point
    """

    zeta: np.ndarray
    cauchy: np.ndarray
    converged: np.ndarray
    rounds: int
    evaluations: int
    unknowns: np.ndarray


def chi_series_of(moments: np.ndarray) -> np.ndarray:
    """Series of chi = psi^{-1} from moments m_1..m_n (for far-field starts)."""
    return reversion(np.asarray(moments, dtype=float))


@np.errstate(all="ignore")  # rejected trial steps may overflow; they are caught by the checks
def lilypads(system, x: np.ndarray, eps: np.ndarray | float, *, y_start: float,
             start: tuple[np.ndarray, np.ndarray] | None = None,
             tol: float = 1e-12, tol_stall: float = 1e-7, max_rounds: int = 300,
             max_newton: int = 8,
             theta_max: float = 0.25, theta_target: float = 0.18, tol_path: float = 1e-8,
             step_start: float = 2.0, step_max: float = 30.0, step_min: float = 1e-7,
             zero_floor: float = 1e-16, log_zeta: bool = False) -> NewtonResult:
    """Solve ``system`` at zeta = x + i eps for every x by the lilypads homotopy.

    Parameters
    ----------
    system : ProductSystem or ChainSystem
    x : ndarray of float
        Real parts of the targets.
    eps : float or ndarray
        Imaginary parts of the targets, >= 0. eps = 0 asks for the boundary value on the
        real axis: the vertical walk stops at ``zero_floor * max(|x|, y_start)`` and a last
        straight segment reaches the axis.
    y_start : float
        Starting height, where the far-field series start is accurate; raised (x8, at
        most 8 times) for points whose start does not converge.
    start : (zeta0, v0), optional
        Known solutions v0 at nearby points zeta0 (a neighbour on the grid, "chaining"):
        each point then walks from zeta0 to its target along zeta0 (target/zeta0)^s,
        s in [0, 1], instead of coming down from the far field.
    tol : float
        Convergence: max-norm of the Newton step (in the log-variables, i.e. relative).
    tol_stall : float
        A point whose Newton steps stop contracting below this (rounding level of an
        ill-conditioned point, e.g. a square-root edge) after two steps counts as converged,
        provided the residuals of its equations (logarithmic: relative) are below it too.
    max_rounds, max_newton : int
        Caps on homotopy rounds and on Newton steps per round.
    theta_max, theta_target : float
        Kantorovich contraction bound for accepting a step, and the target contraction that
        sets the next step length.
    tol_path : float
        Convergence required at intermediate points of a path (the end point needs ``tol``).
    step_start, step_max : float
        First and largest vertical steps, in t = log Im zeta.
    step_min : float
        A point whose step (as a fraction of its path) falls below this fails.
    log_zeta : bool
        Work in ell = log zeta: the targets ``x + i eps`` are ell itself (eps = arg zeta, in
        (0, pi)), ``system`` is a :class:`LogZetaSystem`, ``start`` is required (as
        (ell0, v0)) and each walk is straight in ell. The result's ``zeta`` holds ell and its
        ``cauchy`` holds zeta G(zeta).

    Returns
    -------
    NewtonResult
    """
    x = np.atleast_1d(np.asarray(x, dtype=float))
    eps = np.broadcast_to(np.asarray(eps, dtype=float), x.shape).copy()
    if np.any(eps < 0) or not np.all(np.isfinite(eps)):
        raise ValueError("eps: must be finite and >= 0")
    if log_zeta and (start is None or np.any((eps <= 0) | (eps >= np.pi))):
        raise ValueError("log_zeta: needs a start and targets with 0 < Im ell < pi")
    P = x.size
    target = x + 1j * eps
    y_stop = np.where(eps > 0, eps, zero_floor * np.maximum(np.abs(x), y_start))
    evaluations = 0
    v = np.zeros((P, system.size), dtype=complex)
    # path of each point: vertical, x + i exp(t0 + s (t1 - t0)), or linear, za + s (zb - za)
    t0 = np.zeros(P)
    t1 = np.log(y_stop)
    za = np.zeros(P, dtype=complex)
    zb = target.copy()
    ds = np.ones(P)
    if start is None:
        lin = np.zeros(P, dtype=bool)
        y = np.maximum(np.full(P, float(y_start)), 2 * y_stop)
        started = np.zeros(P, dtype=bool)
        for _ in range(8):  # far-field start, raised where Newton does not converge
            idx = np.nonzero(~started)[0]
            if not len(idx):
                break
            zeta = x[idx] + 1j * y[idx]
            vi = system.initial(zeta)
            ok = np.ones(len(idx), dtype=bool)
            conv = np.zeros(len(idx), dtype=bool)
            for _ in range(30):
                d = system.newton_step(vi, zeta)
                evaluations += 1
                nrm = np.max(np.abs(d), axis=-1)
                ok &= np.isfinite(nrm)
                vi = np.where((ok & ~conv)[:, None], vi + d, vi)
                conv |= ok & (nrm <= tol)
                if np.all(conv | ~ok):
                    break
            conv &= system.valid(vi)
            v[idx[conv]] = vi[conv]
            started[idx[conv]] = True
            y[idx[~conv]] *= 8.0
        t0 = np.log(y)
        ds = np.minimum(step_start / np.maximum(t0 - t1, 1e-300), 1.0)
    else:
        lin = np.ones(P, dtype=bool)
        za = np.asarray(start[0], dtype=complex).copy()
        v = np.asarray(start[1], dtype=complex).copy()
        started = system.valid(v)
    # t0, t1 are fixed from here on: the vertical span and its largest step (as a fraction)
    span = t1 - t0
    ds_vert = step_max / np.maximum(-span, 1e-300)

    def path(i: np.ndarray, s: np.ndarray) -> np.ndarray:
        # vertical: geometric in Im zeta; straight: geometric za (zb/za)^s (it stays in the
        # closed upper half-plane and resolves every scale), linear when an end is 0
        vert = x[i] + 1j * np.exp(t0[i] + s * span[i])
        on_line = lin[i]
        if not on_line.any():
            return vert
        a, b = za[i], zb[i]
        if log_zeta:
            return a + s * (b - a)
        geo = (a != 0) & (b != 0)
        la = log_upper(np.where(geo, a, 1.0))
        lb = log_upper(np.where(geo, b, 1.0))
        straight = np.where(geo, np.exp(la + s * (lb - la)), a + s * (b - a))
        return np.where(on_line, straight, vert)

    s = np.zeros(P)
    zeta_cur = path(np.arange(P), s)
    done = np.zeros(P, dtype=bool)
    failed = ~started
    tang = np.zeros_like(v)
    if started.any():
        tang[started] = system.tangent(v[started], zeta_cur[started])
    rounds = 0
    for rounds in range(1, max_rounds + 1):  # noqa: B007 -- reported
        idx = np.nonzero(~done & ~failed)[0]
        if not len(idx):
            break
        s_new = np.minimum(s[idx] + ds[idx], 1.0)
        final = s_new >= 1.0
        zeta_new = path(idx, s_new)
        vk = v[idx] + tang[idx] * (zeta_new - zeta_cur[idx])[:, None]
        ok = np.logical_and.reduce(np.isfinite(vk), axis=-1)
        conv = np.zeros(len(idx), dtype=bool)
        first = np.full(len(idx), np.inf)
        prev = np.full(len(idx), np.inf)
        theta = np.zeros(len(idx))
        tol_end = np.where(final, tol, tol_path)
        by_stall = np.zeros(len(idx), dtype=bool)
        for k in range(max_newton):
            live = ok & ~conv
            if live.all():
                d = system.newton_step(vk, zeta_new)
            elif live.any():
                d = np.zeros_like(vk)
                d[live] = system.newton_step(vk[live], zeta_new[live])
            else:
                break
            evaluations += 1
            # ufunc reductions: the np.max / np.all wrappers cost more than the work here.
            # A point that is not live has d = 0, hence nrm = 0: it passes every test below
            # unchanged, and it never becomes live again, so no test needs a "live &".
            nrm = np.maximum.reduce(np.abs(d), axis=-1)
            ok &= np.isfinite(nrm)
            if k == 0:
                first = nrm
            elif k == 1:
                theta = np.where(first > tol, nrm / np.maximum(first, 1e-300), 0.0)
            # certificate: every Newton step at most theta_max times the previous one, until
            # the steps reach rounding level (near an edge the Jacobian is nearly singular and
            # the attainable accuracy is above tol: a stalled step below tol_stall counts;
            # prev = inf at k = 0, so nothing is slow or stalled there)
            slow = nrm > theta_max * prev
            stalled = (nrm <= tol_stall) & slow
            ok &= ~(slow & (nrm > tol) & ~stalled)
            step_ok = live & ok
            vk = np.where(step_ok[:, None], vk + d, vk)
            by_stall |= step_ok & ~conv & stalled & (nrm > tol_end)
            conv |= step_ok & ((nrm <= tol_end) | stalled)
            prev = nrm
        accept = ok & conv & system.valid(vk)
        if (accept & by_stall).any():
            # a stalled point is a root only if the equations hold there: near a singular
            # point of the variables (the chain's log xi_l as xi_l -> 0, where G = 0 in a gap)
            # the steps are small because the Jacobian is large, not because the iterate is
            # converged (ReLU's H_3 took a residual of 0.45 for a density of 7e-5 in a gap)
            j = np.nonzero(accept & by_stall)[0]
            accept[j[~(system.residual(vk[j], zeta_new[j]) <= tol_stall)]] = False
        acc = idx[accept]
        v[acc] = vk[accept]
        zeta_cur[acc] = zeta_new[accept]
        s[acc] = s_new[accept]
        grow = np.clip(np.sqrt(theta_target / np.maximum(theta[accept], 1e-12)), 0.5, 4.0)
        ds_max = np.where(lin[acc], 1.0, ds_vert[acc])
        ds[acc] = np.minimum(ds[acc] * grow, ds_max)
        # a vertical walk that ends above a real-axis target continues straight down
        fin = acc[final[accept]]
        to_axis = ~lin[fin] & (eps[fin] == 0)
        if to_axis.any():
            jump = fin[to_axis]
            lin[jump] = True
            za[jump] = zeta_cur[jump]
            s[jump] = 0.0
            ds[jump] = 1.0
        done[fin[~to_axis]] = True
        live_acc = acc[~done[acc]]
        if len(live_acc):
            tang[live_acc] = system.tangent(v[live_acc], zeta_cur[live_acc])
        if len(acc) < len(idx):
            rej = idx[~accept]
            ds[rej] *= 0.5
            failed[rej] |= ds[rej] < step_min
    G = np.full(P, complex(np.nan, np.nan))
    if done.any():
        G[done] = system.cauchy(v[done], target[done])
    return NewtonResult(target, G, done.copy(), rounds, evaluations, v)
