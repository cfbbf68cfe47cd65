"""Truncated power series and the moment <-> S-transform correspondence.

Conventions: ``docs/conventions.md``, section "Objects and conventions". For a law mu on
[0, inf) with moments m_k = int t^k dmu(t):

    psi_mu(z) = sum_{k>=1} m_k z^k = int z t / (1 - z t) dmu(t),
    chi_mu    = psi_mu^{-1}  (compositional inverse, chi(m) = m / m_1 + O(m^2)),
    S_mu(m)   = chi_mu(m) (1 + m) / m,        S_{mu boxtimes nu} = S_mu S_nu

(Voiculescu 1987; Pennington, Schoenholz, Ganguli 2018, eq. (7)-(9)). Everything here is a
truncated power series stored as a numpy array whose LAST axis holds coefficients, vectorized
over the leading axes so that many series (e.g. the 2L factors of a Jacobian) are handled in
one call. Two layouts are used:

* a *series with constant term* ``a[..., k] = [x^k] a(x)``, k = 0..n-1 (S-transforms);
* a *moment series* ``m[..., k] = m_{k+1}``, k = 0..n-1, i.e. psi without its zero constant
  term (moments, chi).

Costs are O(n^2) vector operations for products, O(n^3) for reversion; n (the number of
moments) is small, the leading axes may be long.
"""

from __future__ import annotations

from math import comb

import numpy as np


def series_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Truncated Cauchy product: c_k = sum_{j<=k} a_j b_{k-j}, k = 0..n-1 (broadcast)."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    n = a.shape[-1]
    c = np.zeros(a.shape, dtype=np.result_type(a, b))
    for j in range(n):
        c[..., j:] += a[..., j : j + 1] * b[..., : n - j]
    return c


def series_inv(a: np.ndarray) -> np.ndarray:
    """Reciprocal 1 / a(x) of a series with a_0 != 0: b_k = -(1/a_0) sum_{j=1}^k a_j b_{k-j}."""
    a = np.asarray(a)
    n = a.shape[-1]
    b = np.zeros(a.shape, dtype=np.result_type(a, float))
    b[..., 0] = 1.0 / a[..., 0]
    for k in range(1, n):
        b[..., k] = -np.sum(a[..., 1 : k + 1] * b[..., k - 1 :: -1][..., :k], axis=-1) * b[..., 0]
    return b


def series_log(a: np.ndarray) -> np.ndarray:
    """log a(x) for a_0 > 0, from (log a)' = a'/a:
    b_0 = log a_0, b_k = (a_k - (1/k) sum_{j=1}^{k-1} j b_j a_{k-j}) / a_0."""
    a = np.asarray(a, dtype=float)
    n = a.shape[-1]
    b = np.zeros(a.shape)
    b[..., 0] = np.log(a[..., 0])
    for k in range(1, n):
        j = np.arange(1, k)
        acc = np.sum(j * b[..., 1:k] * a[..., k - 1 : 0 : -1], axis=-1) if k > 1 else 0.0
        b[..., k] = (a[..., k] - acc / k) / a[..., 0]
    return b


def series_exp(b: np.ndarray) -> np.ndarray:
    """exp b(x): a_0 = e^{b_0}, a_k = (1/k) sum_{j=1}^k j b_j a_{k-j}."""
    b = np.asarray(b, dtype=float)
    n = b.shape[-1]
    a = np.zeros(b.shape)
    a[..., 0] = np.exp(b[..., 0])
    for k in range(1, n):
        j = np.arange(1, k + 1)
        a[..., k] = np.sum(j * b[..., 1 : k + 1] * a[..., k - 1 :: -1][..., :k], axis=-1) / k
    return a


def reversion(f: np.ndarray) -> np.ndarray:
    """Compositional inverse of f(x) = sum_{k>=1} f_k x^k (moment layout), f_1 != 0.

    Lagrange inversion: [y^k] f^{-1}(y) = (1/k) [x^{k-1}] (x / f(x))^k.
    """
    f = np.asarray(f)
    n = f.shape[-1]
    h = series_inv(f)  # x / f(x) = 1 / (f_1 + f_2 x + ...)
    g = np.zeros(f.shape, dtype=h.dtype)
    power = h
    for k in range(1, n + 1):
        g[..., k - 1] = power[..., k - 1] / k
        if k < n:
            power = series_mul(power, h)
    return g


def rescale_argument(a: np.ndarray, c: float | np.ndarray) -> np.ndarray:
    """Coefficients of a(c x): a_k c^k (series with constant term)."""
    a = np.asarray(a)
    k = np.arange(a.shape[-1])
    return a * np.power.outer(np.asarray(c, dtype=float), k)


def moments_to_s(m: np.ndarray) -> np.ndarray:
    """S-transform series s_0..s_{n-1} from moments m_1..m_n (m_1 != 0).

    chi = psi^{-1} by :func:`reversion`; S(m) = (chi(m)/m)(1 + m), so
    s_0 = c_1 and s_k = c_{k+1} + c_k.
    """
    c = reversion(m)
    s = c.copy()
    s[..., 1:] += c[..., :-1]
    return s


def s_to_moments(s: np.ndarray) -> np.ndarray:
    """Moments m_1..m_n from the S-transform series s_0..s_{n-1}.

    chi(m)/m = S(m)/(1 + m), i.e. c_{k+1} = sum_{j<=k} (-1)^{k-j} s_j; then psi = chi^{-1}.
    """
    s = np.asarray(s, dtype=float)
    n = s.shape[-1]
    alt = (-1.0) ** np.arange(n)
    c = np.cumsum(s * alt, axis=-1) * alt
    return reversion(c)


def shift_moments(m: np.ndarray, a: float) -> np.ndarray:
    """Moments of a + X from those of X: m'_k = sum_{j=0}^k binom(k, j) a^{k-j} m_j (m_0 = 1)."""
    m = np.asarray(m, dtype=float)
    n = m.shape[-1]
    full = np.concatenate([np.ones(m.shape[:-1] + (1,)), m], axis=-1)
    out = np.zeros(m.shape)
    for k in range(1, n + 1):
        coef = np.array([comb(k, j) * a ** (k - j) for j in range(k + 1)])
        out[..., k - 1] = full[..., : k + 1] @ coef
    return out
