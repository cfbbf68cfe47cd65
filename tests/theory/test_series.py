"""Power-series machinery: products, reversion, moments <-> S-transform, closed forms."""

from math import comb

import numpy as np
import pytest
from scipy import integrate

from freeness_lab.theory.series import (
    moments_to_s,
    rescale_argument,
    reversion,
    s_to_moments,
    series_exp,
    series_inv,
    series_log,
    series_mul,
    shift_moments,
)


def test_inverse_log_exp_roundtrip():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 9))
    a[:, 0] = np.abs(a[:, 0]) + 0.5
    one = np.eye(1, 9)[0]
    np.testing.assert_allclose(series_mul(a, series_inv(a)), np.broadcast_to(one, a.shape),
                               atol=1e-12)
    np.testing.assert_allclose(series_exp(series_log(a)), a, rtol=1e-11, atol=1e-11)


def test_reversion_composes_to_identity():
    rng = np.random.default_rng(1)
    f = rng.normal(size=7)
    f[0] = 1.3
    g = reversion(f)
    y = 1e-3 * np.array([1.0, -2.0, 0.5])
    gy = np.polynomial.polynomial.polyval(y, np.concatenate([[0], g]))
    fgy = np.polynomial.polynomial.polyval(gy, np.concatenate([[0], f]))
    # truncation at order 7: error ~ y^8
    np.testing.assert_allclose(fgy, y, rtol=1e-15, atol=1e-20)


def test_s_of_delta_and_marchenko_pastur():
    a = 2.5
    np.testing.assert_allclose(moments_to_s(a ** np.arange(1, 8)), np.eye(1, 7)[0] / a,
                               atol=1e-15)
    catalan = np.array([comb(2 * k, k) / (k + 1) for k in range(1, 10)])
    # S = 1 / (1 + m) = sum (-1)^k m^k
    np.testing.assert_allclose(moments_to_s(catalan), (-1.0) ** np.arange(9), atol=1e-12)
    np.testing.assert_allclose(s_to_moments((-1.0) ** np.arange(9)), catalan, rtol=1e-13)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_fuss_catalan(k):
    """MP^{boxtimes k}: S = (1 + m)^-k, moments binom((k+1) n, n) / (k n + 1)."""
    n = 8
    log_s = k * series_log((-1.0) ** np.arange(n))
    m = s_to_moments(series_exp(log_s))
    exact = [comb((k + 1) * j, j) / (k * j + 1) for j in range(1, n + 1)]
    np.testing.assert_allclose(m, exact, rtol=1e-12)


def _projection_product_moments(p: float, r: float, n: int) -> np.ndarray:
    """Moments of P Q P for free projections of traces p, r from the closed-form law
    (Voiculescu): atoms 1 - min(p, r) at 0 and max(p + r - 1, 0) at 1, density
    sqrt((l+ - t)(t - l-)) / (2 pi t (1 - t)) on [l-, l+],
    l+- = p + r - 2pr +- sqrt(4pr(1-p)(1-r))."""
    root = np.sqrt(4 * p * r * (1 - p) * (1 - r))
    lo, hi = p + r - 2 * p * r - root, p + r - 2 * p * r + root
    c, h = 0.5 * (lo + hi), 0.5 * (hi - lo)

    def integrand(theta: float, k: int) -> float:
        t = c + h * np.cos(theta)
        return (h * np.sin(theta)) ** 2 * t ** (k - 1) / (2 * np.pi * (1 - t))

    cont = [integrate.quad(integrand, 0, np.pi, args=(k,), epsabs=1e-14, epsrel=1e-13)[0]
            for k in range(1, n + 1)]
    return np.array(cont) + max(p + r - 1, 0.0)


@pytest.mark.parametrize("p, r", [(0.5, 0.5), (0.3, 0.6), (0.8, 0.7)])
def test_bernoulli_boxtimes_bernoulli(p, r):
    """S of Bernoulli(p) is (1 + m) / (p + m); the product's moments match the closed-form
    law of P Q P for free projections (computed by quadrature, independently)."""
    n = 6

    def s_bern(q):
        return series_mul(np.eye(1, n)[0] + np.eye(1, n, 1)[0],
                          series_inv(q * np.eye(1, n)[0] + np.eye(1, n, 1)[0]))

    m = s_to_moments(series_mul(s_bern(p), s_bern(r)))
    np.testing.assert_allclose(m, _projection_product_moments(p, r, n), rtol=1e-10)


def test_rescale_and_shift():
    a = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(rescale_argument(a, 2.0), [1.0, 4.0, 12.0])
    # X in {0, 2} equally likely: moments 1, 2, 4; X + 1 in {1, 3}: 2, 5, 14
    np.testing.assert_allclose(shift_moments(np.array([1.0, 2.0, 4.0]), 1.0), [2.0, 5.0, 14.0])
