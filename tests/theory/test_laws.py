"""Building-block laws and their closed forms; free products (moments, atoms, density)."""

from dataclasses import replace
from math import comb

import numpy as np
import pytest
from scipy import integrate, optimize

from freeness_lab import NetworkSpec
from freeness_lab.activations import get_activation
from freeness_lab.theory import (
    d2_law,
    fim_dual_law,
    jacobian_law,
    post_activation_moments,
    preactivation_variances,
)
from freeness_lab.theory.laws import (
    DiscreteLaw,
    MarchenkoPastur,
    QuadratureLaw,
    SmoothD2Law,
    bernoulli,
    d2_factor,
    delta,
)
from freeness_lab.theory.products import Factor, FreeProduct, free_product, product_atoms


@pytest.mark.parametrize("ratio, scale", [(1.0, 1.0), (0.5, 3.0), (2.0, 0.7)])
def test_marchenko_pastur_density_and_moments(ratio, scale):
    """Narayana moments = integrals of the closed-form density (plus the atom at 0)."""
    mp = MarchenkoPastur(ratio, scale)
    lo, hi = mp.edges
    c, h = 0.5 * (lo + hi), 0.5 * (hi - lo)
    mass = [integrate.quad(lambda th, k=k: mp.density(c + h * np.cos(th)) * h * np.sin(th)
                           * (c + h * np.cos(th)) ** k, 0, np.pi, epsabs=1e-13)[0]
            for k in range(0, 5)]
    np.testing.assert_allclose(mass[0] + mp.atom_mass, 1.0, atol=1e-9)
    np.testing.assert_allclose(mass[1:], mp.moments(4), rtol=1e-9)
    if ratio == 1.0:
        catalan = [comb(2 * k, k) / (k + 1) for k in range(1, 5)]
        np.testing.assert_allclose(mp.moments(4), np.array(catalan) * scale ** np.arange(1, 5))


def test_marchenko_pastur_transforms():
    mp = MarchenkoPastur(0.5, 2.0)
    zeta = np.array([5.0 + 1j, -1.0 + 0.5j, 1.0 + 1e-3j])
    lo, hi = mp.edges
    direct = [integrate.quad(lambda t, z=z, part=part: getattr(mp.density(t) / (z - t), part),
                             lo, hi, limit=400, epsabs=1e-12)[0] for z in zeta
              for part in ("real", "imag")]
    np.testing.assert_allclose(mp.cauchy(zeta), np.array(direct[0::2]) + 1j * np.array(
        direct[1::2]), rtol=1e-6)
    m = np.array([0.1, -0.05 + 0.02j])
    np.testing.assert_allclose(mp.s_transform(m), 1 / (2.0 * (1 + 0.5 * m)))
    np.testing.assert_allclose(mp.s_series(5), (-0.5) ** np.arange(5) / 2.0, atol=1e-12)


def test_discrete_law_transforms():
    b = bernoulli(0.3, 2.0)
    np.testing.assert_allclose(b.moments(3), 0.3 * 2.0 ** np.arange(1, 4))
    np.testing.assert_allclose(b.cdf([-1, 0, 1, 2]), [0, 0.7, 0.7, 1.0])
    m = np.array([0.05, -0.1 + 0.03j])
    # S(m) = (1 + m) / (a (p + m)), against the series from the moments
    np.testing.assert_allclose(b.s_transform(m), (1 + m) / (2.0 * (0.3 + m)))
    s = b.s_series(12)
    np.testing.assert_allclose(np.polynomial.polynomial.polyval(0.01, s),
                               b.s_transform(np.array(0.01)).real, rtol=1e-12)
    assert delta(3.0).log_s_terms[0] == pytest.approx(-np.log(3.0))
    assert DiscreteLaw([1.0, 2.0], [0.5, 0.5]).log_s_terms is None


@pytest.mark.parametrize("locations, masses, field", [
    ([-1.0], [1.0], "locations"), ([1.0, 2.0], [0.5, 0.6], "masses")])
def test_discrete_law_rejects_bad_input(locations, masses, field):
    with pytest.raises(ValueError, match=field):
        DiscreteLaw(locations, masses)


def test_marchenko_pastur_rejects_bad_ratio():
    with pytest.raises(ValueError, match="ratio"):
        MarchenkoPastur(0.0, 1.0)


def test_d2_factor():
    relu = d2_factor(d2_law("relu", 1.7))
    np.testing.assert_allclose(relu.atoms, [[0.0, 0.5], [1.0, 0.5]])
    tanh = d2_factor(d2_law("tanh", 0.8))
    assert isinstance(tanh, SmoothD2Law)
    for act in ("silu", "gelu"):  # three stationary points of phi'^2, one a double zero
        assert isinstance(d2_factor(d2_law(act, 0.8)), SmoothD2Law)
    # a real quadrature away from the support, except where phi' has a zero (the law's
    # t^(-1/2) singularity at 0 is reached by deep products)
    assert isinstance(d2_factor(d2_law("tanh", 0.8), near_support=False), QuadratureLaw)
    assert isinstance(d2_factor(d2_law("silu", 0.8), near_support=False), SmoothD2Law)
    np.testing.assert_allclose(tanh.moments(3), d2_law("tanh", 0.8).moments(3), rtol=1e-14)


def test_belinschi_atoms():
    half = np.array([[0.0, 0.5], [1.0, 0.5]])
    np.testing.assert_allclose(product_atoms(half, half), [[0.0, 0.5]])
    a = np.array([[0.0, 0.1], [1.0, 0.9]])
    b = np.array([[0.0, 0.3], [2.0, 0.7]])
    np.testing.assert_allclose(product_atoms(a, b), [[0.0, 0.3], [2.0, 0.6]])
    np.testing.assert_allclose(product_atoms(a, np.array([[3.0, 1.0]])), [[0.0, 0.1], [3.0, 0.9]])


def test_free_product_moments_closed_forms():
    # MP boxtimes MP boxtimes MP: Fuss-Catalan; delta scales
    mp = MarchenkoPastur(1.0, 1.0)
    law = FreeProduct([Factor(mp, 3), Factor(delta(2.0), 1)])
    exact = [comb(4 * n, n) / (3 * n + 1) * 2.0**n for n in range(1, 7)]
    np.testing.assert_allclose(law.moments(6), exact, rtol=1e-12)
    # mixed moment rule tr(abab) for free a, b
    a, b = bernoulli(0.3, 1.5), MarchenkoPastur(0.5, 2.0)
    ma, mb = a.moments(2), b.moments(2)
    m2 = ma[1] * mb[0] ** 2 + ma[0] ** 2 * mb[1] - ma[0] ** 2 * mb[0] ** 2
    np.testing.assert_allclose(free_product(a, b).moments(2), [ma[0] * mb[0], m2], rtol=1e-13)


def test_solved_density_matches_closed_forms():
    """The Newton solver on a one-factor product reproduces the Marchenko-Pastur density, and
    on Bernoulli x Bernoulli the closed-form law of P Q P (an independent formula)."""
    mp = MarchenkoPastur(1.0, 2.0)
    law = free_product(mp)
    x = np.linspace(0.05, 7.9, 40)
    np.testing.assert_allclose(law.density(x), mp.density(x), rtol=1e-8, atol=1e-12)
    p, r = 0.3, 0.6
    law = free_product(bernoulli(p), bernoulli(r))
    np.testing.assert_allclose(law.atoms, [[0.0, 0.7]])
    root = np.sqrt(4 * p * r * (1 - p) * (1 - r))
    lo, hi = p + r - 2 * p * r - root, p + r - 2 * p * r + root
    x = np.linspace(lo, hi, 42)[1:-1]
    exact = np.sqrt((hi - x) * (x - lo)) / (2 * np.pi * x * (1 - x))
    np.testing.assert_allclose(law.density(x), exact, rtol=1e-8)
    # edges located to the solver's accuracy near a square-root edge
    np.testing.assert_allclose(law.intervals(), [[lo, hi]], rtol=1e-8)
    np.testing.assert_allclose(law.continuous_mass(), 0.3, rtol=1e-9)


def _roots(act: str, q: float, x: float) -> np.ndarray:
    """The real h in [-14 sqrt(q), 14 sqrt(q)] with phi'(h)^2 = x: sign changes on a grid of
    spacing 1e-4 sqrt(q), refined by Brent's method."""
    from scipy import optimize

    a = get_activation(act)

    def g(h):
        return a.dphi(np.atleast_1d(h)) ** 2

    grid = np.linspace(-14, 14, 280_001) * np.sqrt(q)
    v = g(grid) - x
    return np.array([optimize.brentq(lambda s: g(s)[0] - x, grid[i], grid[i + 1], xtol=1e-15,
                                     rtol=1e-15) for i in np.nonzero(v[:-1] * v[1:] < 0)[0]])


def _push_forward_density(act: str, q: float, t: np.ndarray) -> np.ndarray:
    """Closed form: the sum over the branches h = g^{-1}(t) of p_q(h) / |g'(h)|,
    g = phi'^2 (roots by :func:`_roots`, g' by a central difference)."""
    a = get_activation(act)

    def g(h):
        return a.dphi(h) ** 2

    out = []
    for x in t:
        h = _roots(act, q, x)
        dg = (g(h + 1e-6) - g(h - 1e-6)) / 2e-6
        out.append(np.sum(np.exp(-h * h / (2 * q)) / np.sqrt(2 * np.pi * q) / np.abs(dg)))
    return np.array(out)


@pytest.mark.parametrize("act, q", [("tanh", 1.01), ("tanh", 0.08), ("erf", 0.4),
                                    ("erf", 10.0), ("sigmoid", 1.01), ("silu", 1.3),
                                    ("gelu", 0.6), ("gelu", 3.0)])
def test_smooth_d2_cauchy_against_adaptive_quadrature(act, q):
    """G_nu(x + i eps) by the contour rule vs scipy.integrate.quad of E[1 / (zeta - g(h))]
    over h, near the top edge and inside the support."""
    nu = d2_factor(d2_law(act, q))
    a = get_activation(act)
    top = nu.support()[1]
    H = 10 * np.sqrt(q)

    def p(h):
        return np.exp(-h * h / (2 * q)) / np.sqrt(2 * np.pi * q)

    for x in (0.3 * top, 0.9 * top, 0.999 * top):
        z = x + 1e-3j * top
        f = [lambda h, part=part, z=z: getattr(p(h) / (z - a.dphi(np.array([h]))[0] ** 2), part)
             for part in ("real", "imag")]
        points = np.concatenate([[0.0], _roots(act, q, x)])  # the near-poles
        ref = [integrate.quad(fi, -H, H, points=points, limit=2000, epsabs=1e-13,
                              epsrel=1e-11)[0] for fi in f]
        np.testing.assert_allclose(nu.cauchy(np.array([z]))[0], ref[0] + 1j * ref[1],
                                   rtol=1e-9)
    np.testing.assert_allclose(nu.weights.sum(), 1.0, atol=1e-13)
    k = np.arange(1, 4)
    np.testing.assert_allclose((nu.nodes[:, None] ** k * nu.weights[:, None]).sum(0).real,
                               nu.moments(3), rtol=1e-12)


@pytest.mark.parametrize("act", ["silu"])
def test_smooth_d2_psi_at_huge_omega(act):
    """1 + psi(omega) = E[1 / (1 - omega g(h))] for |omega| -> infinity (the subordination
    points of the D^2 factors of a deep product near x = 0) is dominated by the double zero
    h0 of g = phi'^2: with g ~ phi''(h0)^2 (h - h0)^2,

        1 + psi(omega) = pi p_q(h0) / (|phi''(h0)| sqrt(-omega)) (1 + O(|omega|^(-1/2))),

    phi'' in closed form (independent of the rule), at angles from nearly real to 0.3.
    (GELU's g also vanishes in its left tail, like h^2 phi(h)^2: there 1 + psi is dominated
    by the pole g(h) = 1 / omega at h ~ -7 to -11, not by h0.)"""
    q = 1.3
    nu = d2_factor(d2_law(act, q))
    a = get_activation(act)
    h0 = optimize.brentq(lambda h: a.dphi(np.array([h]))[0], -3.0, -0.1, xtol=1e-15)
    if act == "silu":
        s = 1.0 / (1.0 + np.exp(-h0))
        d2phi = s * (1 - s) * (2 + h0 * (1 - 2 * s))
    else:
        d2phi = np.exp(-0.5 * h0 * h0) / np.sqrt(2 * np.pi) * (2 - h0 * h0)
    p0 = np.exp(-h0 * h0 / (2 * q)) / np.sqrt(2 * np.pi * q)
    for size in (1e24, 1e40, 1e56):
        for angle in (1e-6, 0.3):
            omega = size * np.exp(-1j * angle)
            ours = (nu.weights / (1.0 - omega * nu.nodes)).sum()
            asymptote = np.pi * p0 / (abs(d2phi) * np.sqrt(-omega))
            np.testing.assert_allclose(ours, asymptote, rtol=1e-8)


def test_silu_d2_law_at_large_q():
    """SiLU's D^2 law at q = 100 (deep networks with sigma_w > 1 reach it): the logistic
    function continued to complex h has no cancellation in the left tail, where the rule
    now has mass (no spurious stationary points there), and the rule reproduces the
    moments and stays small (tens of thousands of nodes, not ~1e5)."""
    small, large = (d2_factor(d2_law("silu", q)) for q in (1.0, 100.0))
    np.testing.assert_allclose(large.stationary_values, small.stationary_values, rtol=1e-12)
    k = np.arange(1, 4)
    np.testing.assert_allclose((large.nodes[:, None] ** k * large.weights[:, None]).sum(0).real,
                               large.moments(3), rtol=1e-12)
    assert len(large.nodes) < 40_000


@pytest.mark.parametrize("act", ["tanh", "erf", "sigmoid", "silu", "gelu"])
def test_depth_one_density_is_the_push_forward(act):
    """Orthogonal depth 1: J J^T ~ sigma_w^2 phi'(h)^2; the Newton density of jacobian_law
    and nu.density (on the axis) equal the closed-form push-forward density, also on both
    sides of the singular values of SiLU and GELU (the local maximum of phi'^2 at h < 0 and
    its limit 1 at +infinity)."""
    sw = 1.2
    spec = NetworkSpec(act, "orthogonal", depth=1, width=1, sigma_w=sw, sigma_b=0.1)
    q = preactivation_variances(spec)[0]
    nu = d2_factor(d2_law(act, q))
    top = nu.support()[1]
    t = top * np.array([0.02, 0.2, 0.5, 0.8, 0.99, 0.9999])
    special = np.concatenate([nu.stationary_values, nu.limit_values])
    special = special[special < 0.999 * top]
    t = np.concatenate([t, np.outer(special, [0.999, 1.001]).ravel()])
    exact = _push_forward_density(act, q, t)
    np.testing.assert_allclose(nu.density(t), exact, rtol=1e-7)
    law = jacobian_law(spec)
    np.testing.assert_allclose(law.density(sw**2 * t) * sw**2, exact, rtol=1e-7)
    # H_2 = qhat_1 + q0 sigma_w^2 D_1^2 (orthogonal): the same law, scaled and shifted
    spec2 = replace(spec, depth=2)
    qhat = post_activation_moments(spec2)
    scale = spec.q0 * sw**2
    h2 = fim_dual_law(spec2)
    np.testing.assert_allclose(h2.density(qhat[1] + scale * t) * scale, exact, rtol=1e-7)
