"""Mean field against closed forms, an independent fixed-point iteration, and Monte Carlo."""

import math

import numpy as np
import pytest
from montecarlo import assert_mean_within
from scipy import integrate, special

from freeness_lab import NetworkSpec, get_activation
from freeness_lab.theory import meanfield as mf


def _quad_expect(f, q):
    """E[f(h)], h ~ N(0, q), by adaptive quadrature: independent of the project's rule."""
    s = math.sqrt(q)
    val, _ = integrate.quad(lambda z: f(s * z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
                            -12, 12, points=[0.0], epsabs=1e-14, epsrel=1e-13, limit=400)
    return val


@pytest.mark.parametrize("sigma_w", [0.5, 1.0, math.sqrt(2.0), 1.7])
def test_relu_chi_closed_form(sigma_w):
    # ReLU: phi'^2 is Bernoulli(1/2) on {0, 1} whatever q, so chi = sigma_w^2 / 2
    for q in (0.1, 1.0, 7.0):
        assert mf.chi("relu", q, sigma_w) == pytest.approx(sigma_w**2 / 2, rel=1e-14)


@pytest.mark.parametrize("q", [0.05, 0.5, 1.0, 3.0])
def test_hard_tanh_atoms_closed_form(q):
    law = mf.d2_law("hard_tanh", q)
    p_inside = math.erf(1.0 / math.sqrt(2.0 * q))  # P(|h| < 1)
    p_outside = math.erfc(1.0 / math.sqrt(2.0 * q))  # 1 - p_inside without cancellation
    np.testing.assert_allclose(law.atoms, [[0.0, p_outside], [1.0, p_inside]], rtol=1e-13)
    assert law.continuous_mass == 0.0


def test_leaky_relu_atoms():
    law = mf.d2_law("leaky_relu(0.2)", 2.0)
    np.testing.assert_allclose(law.atoms, [[0.04, 0.5], [1.0, 0.5]], rtol=1e-14)
    np.testing.assert_allclose(law.moments(2), [0.5 * (0.04 + 1), 0.5 * (0.04**2 + 1)])


@pytest.mark.parametrize("q", [0.01, 0.3, 2.0, 50.0])
def test_erf_d2_moments_closed_form(q):
    # phi = erf: phi'(h)^2 = (4/pi) exp(-2 h^2), E[exp(-2k h^2)] = 1/sqrt(1 + 4 k q)
    expected = [(4 / math.pi) ** k / math.sqrt(1 + 4 * k * q) for k in (1, 2, 3, 4)]
    np.testing.assert_allclose(mf.d2_moments("erf", q, 4), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "silu", "gelu"])
@pytest.mark.parametrize("q", [0.02, 1.0, 9.0, 400.0])
def test_smooth_d2_moments_against_adaptive_quadrature(name, q):
    act = get_activation(name)
    for k in (1, 2, 3):
        expected = _quad_expect(lambda h, k=k: act.dphi(np.asarray(h)) ** (2 * k), q)
        assert mf.d2_moments(name, q, 3)[k - 1] == pytest.approx(expected, rel=1e-10, abs=1e-15)


@pytest.mark.parametrize("name", ["relu", "hard_tanh", "leaky_relu(0.1)", "linear", "tanh",
                                  "erf", "silu"])
@pytest.mark.parametrize("q", [0.1, 1.0, 6.0])
def test_post_activation_moment(name, q):
    act = get_activation(name)
    expected = _quad_expect(lambda h: act.phi(np.asarray(h)) ** 2, q)
    assert mf.post_activation_moment(name, q) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("name", ["tanh", "erf", "sigmoid", "silu", "gelu"])
def test_post_activation_moment_with_affine_tails(name):
    """At q where the tails beyond affine_beyond are taken in closed form, E[phi^2] equals
    the uniform composite rule over +-Z_CUT sqrt(q) (still affordable there) to rounding,
    and SciPy's adaptive quadrature (split at the affine points) to 1e-10."""
    act = get_activation(name)
    H = mf.affine_beyond(name)
    for factor in (1.5, 4.0):
        q = (factor * mf.AFFINE_TAILS * H / mf.Z_CUT) ** 2
        got = mf.post_activation_moment(name, q)
        uniform = mf.gaussian_expectation(lambda h: act.phi(h) ** 2, q)
        assert got == pytest.approx(uniform, rel=1e-14)
        s = math.sqrt(q)
        ref, _ = integrate.quad(
            lambda z, s=s: float(act.phi(np.array([s * z]))[0]) ** 2 * math.exp(-0.5 * z * z)
            / math.sqrt(2 * math.pi), -12, 12, points=[-H / s, 0.0, H / s], epsabs=1e-14,
            epsrel=1e-13, limit=400)
        assert got == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("name", ["tanh", "silu", "gelu"])
def test_post_activation_moment_with_affine_tails_against_monte_carlo(name, global_seed):
    """E[phi(h)^2] at a q whose tails are taken in closed form, against 200,000 Gaussian
    samples (4 SE); a law missing its tails (the quadrature over +-affine_beyond alone) is
    rejected by the same samples."""
    act = get_activation(name)
    H = mf.affine_beyond(name)
    q = (3.0 * mf.AFFINE_TAILS * H / mf.Z_CUT) ** 2
    rng = np.random.default_rng(20261207 + global_seed)
    samples = act.phi(math.sqrt(q) * rng.standard_normal(200_000)) ** 2
    assert_mean_within(samples, mf.post_activation_moment(name, q))
    h, w = mf.gaussian_quadrature(q, H)
    with pytest.raises(AssertionError):
        assert_mean_within(samples, float(np.dot(w, act.phi(h) ** 2)))


def test_exploding_silu_gelu_depth_1000_has_finite_moments():
    """sigma_w = 1.6: q^l grows like 1.28^l to 1e107 at depth 1000; the length map takes the
    affine tails in closed form (its panels grew like sqrt(q): the law never got built).
    m_1, m_2 ~ 1e107, 1e217 (m_3 and up exceed the floating-point range)."""
    from freeness_lab.theory import jacobian_law

    for name in ("silu", "gelu"):
        spec = NetworkSpec(name, "orthogonal", depth=1000, width=1, sigma_w=1.6, sigma_b=0.1)
        q = mf.preactivation_variances(spec)
        assert np.all(np.isfinite(q)) and q[-1] > 1e100
        m = jacobian_law(spec).moments(2)
        assert np.all(np.isfinite(m)) and np.all(m > 0) and m[1] > m[0] ** 2


def test_post_activation_moment_closed_forms():
    assert mf.post_activation_moment("relu", 3.0) == pytest.approx(1.5, rel=1e-15)
    assert mf.post_activation_moment("linear", 3.0) == pytest.approx(3.0, rel=1e-15)


def test_gaussian_expectation_error_estimate():
    value, err = mf.gaussian_expectation(np.cos, 2.0, return_error=True)
    assert value == pytest.approx(math.exp(-1.0), rel=1e-13)  # E cos(h) = exp(-q/2)
    assert err < 1e-10


@pytest.mark.parametrize(("sigma_w", "sigma_b"), [(1.5, 0.1), (1.2, 0.3), (2.5, 0.05)])
def test_tanh_fixed_point_against_independent_iteration(sigma_w, sigma_b):
    q = 1.0
    for _ in range(2000):  # plain iteration of the variance map with adaptive quadrature
        q = sigma_w**2 * _quad_expect(lambda h: math.tanh(h) ** 2, q) + sigma_b**2
    assert mf.fixed_point("tanh", sigma_w, sigma_b) == pytest.approx(q, rel=1e-9)


def test_fixed_point_errors():
    with pytest.raises(mf.MeanFieldError, match="grows without bound"):
        mf.fixed_point("relu", math.sqrt(3.0), 0.0)
    with pytest.raises(mf.MeanFieldError, match="q\\*=0"):
        mf.fixed_point("tanh", 0.5, 0.0)


def test_critical_sigma_w():
    sw, q_star = mf.critical_sigma_w("relu", 0.0)
    assert sw == pytest.approx(math.sqrt(2.0), rel=1e-14) and math.isnan(q_star)
    for name, sigma_b in [("tanh", 0.05), ("tanh", 0.3), ("hard_tanh", 0.1), ("erf", 0.2)]:
        sw, q_star = mf.critical_sigma_w(name, sigma_b)
        assert mf.chi(name, q_star, sw) == pytest.approx(1.0, abs=1e-9)
        assert mf.variance_map(name, q_star, sw, sigma_b) == pytest.approx(q_star, rel=1e-9)
    # tanh at sigma_b -> 0: critical sigma_w -> 1 (chi = sigma_w^2 at q* = 0)
    assert mf.critical_sigma_w("tanh", 1e-3)[0] == pytest.approx(1.0, abs=1e-2)


def test_layer_variances_follow_the_input():
    spec = NetworkSpec("tanh", "gaussian", depth=4, width=10, sigma_w=1.3, sigma_b=0.2, q0=0.7)
    qs = mf.preactivation_variances(spec)
    qhat = mf.post_activation_moments(spec)
    assert qs[0] == pytest.approx(1.3**2 * 0.7 + 0.2**2)  # q^1 uses the INPUT's q0
    assert qhat[0] == 0.7
    for layer in range(1, 4):
        assert qs[layer] == pytest.approx(1.3**2 * qhat[layer] + 0.2**2, rel=1e-14)
        assert qhat[layer] == pytest.approx(mf.post_activation_moment("tanh", qs[layer - 1]))


@pytest.mark.parametrize("name", ["tanh", "hard_tanh", "silu"])
def test_d2_moments_against_monte_carlo(name, global_seed):
    """E[phi'(h)^(2k)] against a sample mean, within 4 standard errors (fixed seed)."""
    rng = np.random.default_rng(20261125 + global_seed)
    q = 1.7
    h = rng.normal(0.0, math.sqrt(q), size=400_000)
    d2 = get_activation(name).dphi(h) ** 2
    theory = mf.d2_moments(name, q, 3)
    assert_mean_within(d2[:, None] ** np.arange(1, 4), theory)


def test_d2_law_rejects_bad_q():
    with pytest.raises(ValueError, match="q: must be"):
        mf.d2_law("tanh", -1.0)


def test_hard_tanh_erf_identity():
    # P(|h| < 1) = erf(1 / sqrt(2q)) = 2 Phi(1/sqrt(q)) - 1
    q = 0.37
    assert math.erf(1 / math.sqrt(2 * q)) == pytest.approx(2 * special.ndtr(1 / math.sqrt(q)) - 1)
