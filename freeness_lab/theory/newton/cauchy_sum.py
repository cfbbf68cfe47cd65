"""G(zeta) = sum_j w_j / (zeta - t_j) of a quadrature rule at a few hundred points, fast
(:func:`cauchy_sum`): the values a rational fit of the rule is trained and certified on.

:class:`~freeness_lab.theory.newton.quadrature_rule.QuadratureRule` sums psi, 1 + psi and
omega psi' at once, with clusters sized for the Newton steps. Here only G is needed, at the
boundary points of a fit's region (:mod:`~freeness_lab.theory.newton.rational_rule`), all
at |zeta| >= r:

* the nodes with |t| < r / 4 (half or more of a contour rule: its nodes crowd at 0) enter
  through one Laurent series about 0, sum_n zeta^-(n+1) sum_j w_j t_j^n: ratio below 1/4,
  ``TERMS`` (28) terms leave 4^-28 ~ 1e-17 of their mass;
* the others are sorted by real part and cut into clusters of about sqrt(2 N) nodes (the
  cost of a far cluster's series, per point, against that of a near cluster's nodes); a
  cluster with centre c and radius rho enters through its Laurent series
  sum_k A_k / (zeta - c)^(k+1), A_k = sum_j w_j (t_j - c)^k, where |zeta - c| > 4 rho (the
  one-level scheme of the fast multipole method, the same 28 terms, by Horner's rule), and
  node by node elsewhere.
"""

from __future__ import annotations

import math

import numpy as np

from freeness_lab.theory.newton.quadrature_rule import powers, scatter

__all__ = ["FAR_RATIO", "TERMS", "cauchy_sum"]

#: a cluster (or the nodes near 0) enters through its series where the point is this many
#: radii away; TERMS terms then leave FAR_RATIO^-TERMS ~ 1e-17 of its mass
FAR_RATIO, TERMS = 4.0, 28


def cauchy_sum(nodes: np.ndarray, weights: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    """sum_j weights_j / (zeta - nodes_j) at zeta (1-d; no zeta at a node), to rounding
    (module docstring)."""
    t = np.asarray(nodes, dtype=complex).ravel()
    w = np.asarray(weights, dtype=complex).ravel()
    zeta = np.asarray(zeta, dtype=complex)
    if not len(zeta):
        return np.zeros(0, dtype=complex)
    rho = float(np.abs(zeta).min()) / FAR_RATIO
    inner = np.abs(t) < rho
    g = _clusters(t[~inner], w[~inner], zeta)
    if inner.any():
        moments = powers(t[inner] / rho, TERMS) @ w[inner]
        g += (moments @ powers(rho / zeta, TERMS)) / zeta
    return g


def _clusters(t: np.ndarray, w: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    """The clustered sum (module docstring)."""
    N = len(t)
    if N == 0:
        return np.zeros(len(zeta), dtype=complex)
    size = int(2 ** np.clip(round(math.log2(math.sqrt(2.0 * N))), 4, 8))
    C = -(-N // size)
    order = np.argsort(t.real, kind="stable")
    pad = C * size - N
    tc = np.concatenate([t[order], np.full(pad, t[order[-1]])]).reshape(C, size)
    wc = np.concatenate([w[order], np.zeros(pad, dtype=complex)]).reshape(C, size)
    centre = 0.5 * (tc.real.min(1) + tc.real.max(1)) + 0.5j * (tc.imag.min(1) + tc.imag.max(1))
    d = tc - centre[:, None]
    radius = np.maximum(np.abs(d).max(1), 1e-300)
    # A_k / rho^k, shape (K, C)
    moments = np.einsum("cs,kcs->kc", wc, powers(d / radius[:, None], TERMS))
    diff = zeta[:, None] - centre  # (P, C)
    far = np.abs(diff) > FAR_RATIO * radius
    x = np.where(far, 1.0 / np.where(far, diff, 1.0), 0.0)
    y = x * radius
    # sum_k (A_k / rho^k) y^k by Horner's rule, in place
    acc = np.repeat(moments[-1][None], len(zeta), axis=0)
    for a in moments[-2::-1]:
        acc *= y
        acc += a
    g = (acc * x).sum(-1)
    p, c = np.nonzero(~far)
    if len(p):
        near = (wc[c] / (zeta[p, None] - tc[c])).sum(-1)
        g += scatter(p, near, len(zeta))
    return g
