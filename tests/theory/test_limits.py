"""Limit laws of J J^T and H_L from a NetworkSpec: hand checks, identities, Monte Carlo."""

import math

import numpy as np
import pytest
from montecarlo import assert_mean_within
from spectral_distance import d2_distance, kolmogorov, rigidity

from freeness_lab import NetworkSpec
from freeness_lab.simulate import sample_network
from freeness_lab.theory import (
    chi,
    d2_law,
    fim_dual_law,
    fim_dual_mean_variance,
    fixed_point,
    free_product,
    jacobian_law,
    post_activation_moments,
    preactivation_variances,
)
from freeness_lab.theory.laws import MarchenkoPastur, bernoulli


@pytest.mark.parametrize("depth", [1, 2, 5, 40, 1000])
def test_relu_critical_hand_checks(depth):
    """ReLU, sigma_w^2 = 2, sigma_b = 0: mean 1 and m_2 = L + 1 (orthogonal), 2L + 1 (Gaussian)."""
    for weights, m2 in (("orthogonal", depth + 1), ("gaussian", 2 * depth + 1)):
        law = jacobian_law(NetworkSpec("relu", weights, depth=depth, width=1, sigma_w=2**0.5))
        np.testing.assert_allclose(law.moments(2), [1.0, m2], rtol=1e-10)


@pytest.mark.parametrize("weights, s1", [("orthogonal", 0.0), ("gaussian", -1.0)])
@pytest.mark.parametrize("act, sigma_w, sigma_b", [("tanh", 1.3, 0.2), ("hard_tanh", 1.1, 0.05),
                                                   ("erf", 0.9, 0.3)])
def test_variance_identity_identical_layers(act, sigma_w, sigma_b, weights, s1):
    """m_2/m_1^2 - 1 = L (mu_2/mu_1^2 - 1 - s_1) at the fixed point (``docs/conventions.md``,
    "Objects and conventions")."""
    depth = 7
    spec = NetworkSpec(act, weights, depth=depth, width=1, sigma_w=sigma_w, sigma_b=sigma_b)
    law = jacobian_law(spec, at_fixed_point=True)
    q = fixed_point(act, sigma_w, sigma_b)
    mu = d2_law(act, q).moments(2)
    m = law.moments(2)
    np.testing.assert_allclose(m[0], chi(act, q, sigma_w) ** depth, rtol=1e-12)
    np.testing.assert_allclose(m[1] / m[0] ** 2 - 1, depth * (mu[1] / mu[0] ** 2 - 1 - s1),
                               rtol=1e-10)


def test_depth_one_closed_forms():
    """One layer: orthogonal gives sigma_w^(2k) mu_k; Gaussian gives D^2 boxtimes MP."""
    spec = NetworkSpec("tanh", "orthogonal", depth=1, width=1, sigma_w=1.4, sigma_b=0.1, q0=0.7)
    q = preactivation_variances(spec)[0]
    np.testing.assert_allclose(jacobian_law(spec).moments(5),
                               1.4 ** (2 * np.arange(1, 6)) * d2_law("tanh", q).moments(5),
                               rtol=1e-11)
    spec = NetworkSpec("hard_tanh", "gaussian", depth=1, width=1, sigma_w=1.2, q0=0.5)
    p = d2_law("hard_tanh", preactivation_variances(spec)[0]).atoms[1, 1]
    direct = free_product(bernoulli(p), MarchenkoPastur(1.0, 1.44))
    np.testing.assert_allclose(jacobian_law(spec).moments(5), direct.moments(5), rtol=1e-12)


def test_non_stationary_vs_fixed_point():
    spec = NetworkSpec("tanh", "gaussian", depth=6, width=1, sigma_w=1.5, sigma_b=0.1, q0=3.0)
    qs = preactivation_variances(spec)
    expected = np.prod([chi("tanh", q, 1.5) for q in qs])
    np.testing.assert_allclose(jacobian_law(spec).moments(1)[0], expected, rtol=1e-12)
    q_star = fixed_point("tanh", 1.5, 0.1)
    np.testing.assert_allclose(jacobian_law(spec, at_fixed_point=True).moments(1)[0],
                               chi("tanh", q_star, 1.5) ** 6, rtol=1e-12)


def test_atoms():
    law = jacobian_law(NetworkSpec("relu", "orthogonal", depth=6, width=1, sigma_w=1.3))
    np.testing.assert_allclose(law.atoms, [[0.0, 0.5]])
    # orthogonal hard tanh: atom at sigma_w^(2L) of mass 1 - sum_l P(|h^l| > 1)
    spec = NetworkSpec("hard_tanh", "orthogonal", depth=3, width=1, sigma_w=1.05, q0=0.1)
    p = [d2_law("hard_tanh", q).atoms[1, 1] for q in preactivation_variances(spec)]
    law = jacobian_law(spec)
    np.testing.assert_allclose(law.atoms, [[0.0, 1 - min(p)], [1.05**6, sum(p) - 2]])
    # H_L for ReLU: atom at qhat_{L-1} of mass 1/2 (half the units are dead)
    spec = NetworkSpec("relu", "orthogonal", depth=4, width=1, sigma_w=2**0.5)
    qhat = post_activation_moments(spec)
    np.testing.assert_allclose(fim_dual_law(spec).atoms, [[qhat[3], 0.5]])


def test_rectangular_gaussian_depth_one():
    """N_1 x N_0 Gaussian layer: D^2 boxtimes MP(ratio N_1/N_0); at 0 the larger of the two
    masses (Belinschi): half the rows are dead and rank W = N_0 = N_1 / 2."""
    spec = NetworkSpec("relu", "gaussian", depth=1, widths=(300, 600), sigma_w=2**0.5)
    law = jacobian_law(spec)
    direct = free_product(bernoulli(0.5), MarchenkoPastur(2.0, 2.0))
    np.testing.assert_allclose(law.moments(5), direct.moments(5), rtol=1e-12)
    np.testing.assert_allclose(law.atoms, [[0.0, 0.5]])


def test_fim_mean_variance_recursion_is_the_series():
    for weights in ("orthogonal", "gaussian"):
        spec = NetworkSpec("tanh", weights, depth=6, width=1, sigma_w=1.2, sigma_b=0.3, q0=0.8)
        law = fim_dual_law(spec)
        mv = fim_dual_mean_variance(spec)
        for layer in range(1, 7):
            m = law.layer_moments(2)[layer - 1]
            np.testing.assert_allclose([m[0], m[1] - m[0] ** 2], mv[layer - 1], rtol=1e-11,
                                       atol=1e-14)


@pytest.mark.parametrize("kind", ["jacobian", "fim"])
def test_empirical_spectrum_against_limit_cdf(kind):
    """Kolmogorov distance of the ESD at M = 1000 below 4 log(M) / M + sum_l Delta_l, and
    smaller than at M = 250 (fixed seeds). 4 log(M) / M: rigidity of the eigenvalues of
    these orthogonally invariant models around the free convolution of their own marginals;
    Delta_l: the Kolmogorov distance of the sample's D_l^2 to the law of phi'(h)^2, O(1/sqrt(M)),
    which free multiplicative convolution does not increase (bound derived in
    ``test_fim_dual_orthogonal_mc.py``). Gaussian weights and tanh: no atom. H_L is compared
    with the law at the sample's own shifts qhat_l = ||x^l||^2 / M, whose O(1/sqrt(M))
    fluctuation would otherwise move the whole spectrum (and the density spike at its lower
    edge) -- a separate, classical effect. J J^T involves D_1..D_L, H_L only D_1..D_(L-1)."""
    spec = NetworkSpec("tanh", "gaussian", depth=3, width=1, sigma_w=1.3, sigma_b=0.1)
    qs = preactivation_variances(spec)
    dist, bound = {}, {}
    for width in (250, 1000):
        net = sample_network(spec.with_width(width), rng=20260 + width)
        if kind == "jacobian":
            law, eigs, layers = jacobian_law(spec), net.jacobian_spectrum(), spec.depth
        else:
            qhat = [float(a @ a) / width for a in net.activations]
            law = fim_dual_law(spec, qhat=qhat)
            eigs, layers = net.fim_dual_spectrum(include_bias=False), spec.depth - 1
        dist[width] = kolmogorov(law, eigs)
        bound[width] = rigidity(width) + sum(d2_distance(spec, net.preactivations[l], qs[l])
                                             for l in range(layers))
    assert dist[1000] < bound[1000], (dist, bound)
    assert dist[1000] < dist[250], dist


def test_fim_mean_and_variance_against_monte_carlo(global_seed):
    """tr H_L and the spectral variance tr H_L^2 - (tr H_L)^2 over trials at M = 400, against
    m_1(l+1) = qhat_l + chi_l m_1(l) and its variance analogue, within 4 standard errors plus
    the O(1/M) finite-width bias (bounded by 2/M relative)."""
    spec = NetworkSpec("tanh", "gaussian", depth=3, width=400, sigma_w=1.2, sigma_b=0.2, q0=1.0)
    mean, var = fim_dual_mean_variance(spec)[-1]
    rng = np.random.default_rng(7 + global_seed)
    stats = []
    for child in rng.spawn(16):
        e = sample_network(spec, child).fim_dual_spectrum(include_bias=False)
        stats.append((e.mean(), e.var()))
    assert_mean_within(stats, [mean, var], bias=2.0 / spec.width * np.abs([mean, var]))


def test_fim_relu_orthogonal_depth3_is_an_arcsine_law():
    """Independent closed form (free projections, Voiculescu): ReLU, sigma_w^2 = 2, sigma_b = 0,
    orthogonal. mu_2 = qhat_1 + 2 q0 Q and D_2^2 = P with P, Q free projections of trace 1/2,
    so H_3 = qhat_2 + 2 qhat_1 P + 4 q0 PQP. PQP on the range of P is the arcsine law on [0, 1]
    (no atom: Belinschi mass 1/2 + 1/2 - 1 = 0), so mu_3 = 1/2 delta_{qhat_2} + 1/2 arcsine on
    [qhat_2 + 2 qhat_1, qhat_2 + 2 qhat_1 + 4 q0], with inverse square-root edges."""
    q0 = 0.7
    spec = NetworkSpec("relu", "orthogonal", depth=3, width=1, sigma_w=2**0.5, q0=q0)
    qhat = post_activation_moments(spec)
    law = fim_dual_law(spec)
    lo, width = qhat[2] + 2 * qhat[1], 4 * q0
    np.testing.assert_allclose(law.atoms, [[qhat[2], 0.5]], rtol=1e-12)
    np.testing.assert_allclose(law.intervals(), [[lo, lo + width]], rtol=1e-12)
    t = np.array([1e-6, 1e-4, 0.1, 0.37, 0.5, 0.8, 0.9999, 1 - 1e-6])
    x = lo + width * t
    exact = 0.5 / (np.pi * np.sqrt(t * (1 - t))) / width
    np.testing.assert_allclose(law.density(x), exact, rtol=1e-6)
    cdf = 0.5 + (1 / np.pi) * np.arcsin(np.sqrt(t))
    np.testing.assert_allclose(law.cdf(x), cdf, atol=1e-7)


def test_fim_hard_tanh_orthogonal_depth3_support_from_free_projections():
    """Orthogonal hard tanh at sigma_w^2 p = 1 with q^l = q* (the fig3 case): D_l^2 = P_l, free
    projections of trace p = P(|h| < 1), mu_2 = q + s q Q, s = sigma_w^2, so
    H_3 = q + s q P + s^2 q PQP. PQP (traces p, p > 1/2) has an atom at 1 of mass 2p - 1 and a
    continuous part on [0, 4p(1 - p)] (Voiculescu): H_3 has atoms q (1 - p) and q(1 + s + s^2)
    (2p - 1), and its continuous part lies on [q(1 + s), q(1 + s) + s^2 q 4p(1 - p)]."""
    q_star = 0.5
    p = float(d2_law("hard_tanh", q_star).atoms[1, 1])
    s = 1.0 / p
    # qhat* = E hardtanh(h)^2, h ~ N(0, q*) (closed form), and sigma_b from q* = s qhat* + sigma_b^2
    a = 1.0 / math.sqrt(q_star)
    q = q_star * (math.erf(a / math.sqrt(2)) - a * math.sqrt(2 / math.pi) * math.exp(-a * a / 2)) \
        + math.erfc(a / math.sqrt(2))
    spec = NetworkSpec("hard_tanh", "orthogonal", depth=3, width=1, sigma_w=s**0.5,
                       sigma_b=(q_star - s * q) ** 0.5, q0=q)
    np.testing.assert_allclose(preactivation_variances(spec), q_star, rtol=1e-10)
    np.testing.assert_allclose(post_activation_moments(spec), q, rtol=1e-10)
    law = fim_dual_law(spec)
    np.testing.assert_allclose(law.atoms, [[q, 1 - p], [q * (1 + s + s * s), 2 * p - 1]],
                               rtol=1e-9)
    lo = q * (1 + s)
    np.testing.assert_allclose(law.intervals(), [[lo, lo + s * s * q * 4 * p * (1 - p)]],
                               rtol=1e-9)
    np.testing.assert_allclose(law.continuous_mass(), 1 - law.atom_mass, atol=1e-8)


@pytest.mark.parametrize("act", ["silu", "gelu"])
def test_silu_gelu_spectral_moments_against_monte_carlo(act, global_seed):
    """J J^T with orthogonal weights (phi' has a zero: three stationary points of phi'^2):
    the spectral mean tr(J J^T) and variance tr((J J^T)^2) - tr(J J^T)^2 over 16 trials at
    M = 400 against m_1 and m_2 - m_1^2 of jacobian_law, within 4 standard errors plus the
    O(1/M) finite-width bias (bounded by 2/M relative); the law's density is checked against
    its series moments and the push-forward closed form in test_newton / test_laws."""
    spec = NetworkSpec(act, "orthogonal", depth=2, width=400, sigma_w=1.6, sigma_b=0.1)
    m = jacobian_law(spec).moments(2)
    mean, var = m[0], m[1] - m[0] ** 2
    stats = []
    for child in np.random.default_rng(11 + global_seed).spawn(16):
        e = sample_network(spec, child).jacobian_spectrum()
        stats.append((e.mean(), e.var()))
    assert_mean_within(stats, [mean, var], bias=2.0 / spec.width * np.abs([mean, var]))


@pytest.mark.parametrize("act", ["silu", "gelu"])
def test_silu_gelu_fim_cdf_against_monte_carlo(act, global_seed):
    """H_3 with orthogonal weights (a shift chain through two D^2 laws whose phi' has a zero;
    its density bends at products of their singular values and has mass within 1e-11 of its
    base): the fraction of eigenvalues of the sampled H_3 below the law's 10/30/50/70/90 %
    quantiles (the law's cdf, from its density quadrature) over 16 trials at M = 400, within
    4 standard errors of the trial means plus the finite-width bias 4 log(M) / M of the
    Kolmogorov distance (tests/theory/spectral_distance.py)."""
    spec = NetworkSpec(act, "orthogonal", depth=3, width=400, sigma_w=1.6, sigma_b=0.1)
    law = fim_dual_law(spec)
    p = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    t = law.quantile(p)
    np.testing.assert_allclose(law.cdf(t), p, atol=1e-9)
    fractions = []
    for child in np.random.default_rng(13 + global_seed).spawn(16):
        e = sample_network(spec, child).fim_dual_spectrum()
        fractions.append((e[:, None] <= t).mean(0))
    assert_mean_within(fractions, p, bias=4 * np.log(spec.width) / spec.width)
