"""The limit law of H_L for rectangular widths (``theory/limits.py`` module docstring).

mu_1 = delta_{c_0}, mu_{l+1} = c_l + (nu_l boxtimes w_l boxtimes mu_l)^(r_l),
c_l = qhat_l N_l / N_L, r_l = N_l / N_{l+1}, w_l the law of W_{l+1}^T W_{l+1} in dimension N_l.

**Monte Carlo and the 1/M bias.** The spectral moments of a sampled H_L (the explicit
parameter-Jacobian Gram at widths <= 64, the recursion ``fim_dual()`` at twice those widths)
have mean m_k (1 + b_k / M + O(M^-2)): an expansion in 1/M (Gaussian and Haar orthogonal
weights; the shifts ||x^l||^2 / M fluctuate by O(M^-1/2), which enters the mean at O(1/M)).
b_k is not small here (measured, 1000-3000 trials per width: b_2 up to 12, b_3 up to 28 for
the expanding shape, whose narrowest layer has 16 units), so the bias exceeds the standard
error of a few hundred trials at M = 64. Measured at widths x1, x2 and x4 of each shape, M b_k
was the same at the three widths within its standard error, as an O(1/M) bias must be. The
tests therefore compare the Richardson extrapolation 2 E_{2M} - E_M = m_k + O(M^-2), with
standard error sqrt(4 SE_{2M}^2 + SE_M^2), within 4 standard errors; the same measurements put
the O(M^-2) remainder below 1.7 of its (10 times smaller) standard errors.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from montecarlo import assert_mean_within, standard_error
from spectral_distance import ATOM_RTOL

from freeness_lab import NetworkSpec
from freeness_lab.simulate import sample_network, single_blas_thread
from freeness_lab.theory import (
    Factor,
    ShiftChainLaw,
    ShiftedLaw,
    ShiftLayer,
    d2_law,
    fim_dual_chain_law,
    fim_dual_law,
    fim_dual_mean_variance,
    post_activation_moments,
    preactivation_variances,
)
from freeness_lab.theory.laws import MarchenkoPastur, bernoulli, d2_factor, delta

#: ratios r_l = N_l / N_{l+1} in 1/4..4
SHAPES = {"bottleneck": (48, 48, 12, 48), "expanding": (16, 16, 32, 64),
          "contracting": (64, 64, 32, 16)}
#: (sigma_w, sigma_b): ReLU at criticality, tanh off it
ACTS = {"relu": (2**0.5, 0.0), "tanh": (1.3, 0.1)}
N_TRIALS = 400
MOMENTS = 3


def _spec(shape: str, weights: str, act: str, scale: int = 1) -> NetworkSpec:
    widths = tuple(scale * n for n in SHAPES[shape])
    sigma_w, sigma_b = ACTS[act]
    return NetworkSpec(act, weights, depth=len(widths) - 1, widths=widths, sigma_w=sigma_w,
                       sigma_b=sigma_b)


def _moments(eigs: np.ndarray) -> np.ndarray:
    return np.array([np.mean(eigs**k) for k in range(1, MOMENTS + 1)])


@functools.cache
def _monte_carlo(shape: str, weights: str, act: str, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Spectral moments m_1..m_3 of H_L (no bias parameters) per trial: (explicit Gram at the
    shape's widths, recursion at twice them), N_TRIALS each, fixed seeds."""
    out = []
    for scale in (1, 2):
        spec = _spec(shape, weights, act, scale)
        rows = []
        rng = np.random.default_rng([seed, scale, list(SHAPES).index(shape),
                                     weights == "gaussian", act == "tanh"])
        with single_blas_thread():
            for child in rng.spawn(N_TRIALS):
                net = sample_network(spec, child)
                h = (net.fim_dual_explicit(include_bias=False) if scale == 1
                     else net.fim_dual(include_bias=False))
                rows.append(_moments(np.linalg.eigvalsh(h)))
        out.append(np.array(rows))
    return out[0], out[1]


def _richardson_z(samples: tuple[np.ndarray, np.ndarray], expected: np.ndarray) -> np.ndarray:
    """(2 E_{2M} - E_M - expected) / SE, per moment (module docstring)."""
    small, large = samples
    est = 2.0 * large.mean(0) - small.mean(0)
    se = np.sqrt(4.0 * standard_error(large) ** 2 + standard_error(small) ** 2)
    return (est - expected) / se


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_moments_against_explicit_gram(shape, weights, act, global_seed):
    """m_1..m_3 of fim_dual_law against the Monte Carlo means of the explicit Gram's spectral
    moments, 1/M bias removed by Richardson extrapolation, within 4 standard errors."""
    law = fim_dual_law(_spec(shape, weights, act))
    z = _richardson_z(_monte_carlo(shape, weights, act, global_seed), law.moments(MOMENTS))
    assert np.all(np.abs(z) <= 4.0), (shape, weights, act, z)


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_square_formula_on_a_rectangular_net_is_detected(weights, global_seed):
    """Failure path: the same comparison turns red for the square recursion applied to a
    rectangular network -- with the right shifts c_l but no change of dimension (r_l = 1,
    w_l = w), and with the widths ignored altogether (the square law of the same
    activation). Measured (seeds 0-2, N_TRIALS = 400): the right law within 1.9 SE, the wrong
    ones 10-27 SE off in m_2 and m_3 (the change of dimension leaves m_1 alone:
    m_1(l + 1) = c_l + chi_l m_1(l) either way)."""
    shape, act = "bottleneck", "relu"
    spec = _spec(shape, weights, act)
    samples = _monte_carlo(shape, weights, act, global_seed)
    n = np.array(spec.layer_widths, dtype=float)
    nus = [d2_factor(d2_law(act, q), near_support=True)
           for q in preactivation_variances(spec)[:-1]]
    shifts = post_activation_moments(spec)[: spec.depth] * n[:-1] / n[-1]
    no_ratio = fim_dual_chain_law(nus, shifts, weights, spec.sigma_w)
    square = fim_dual_law(spec.with_width(48))
    assert np.all(np.abs(_richardson_z(samples, fim_dual_law(spec).moments(MOMENTS))) <= 4.0)
    for wrong in (no_ratio, square):
        z = _richardson_z(samples, wrong.moments(MOMENTS))
        assert np.max(np.abs(z)) > 8.0, z  # twice the tolerance of the right law


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("widths", [(48, 48, 12, 48), (16, 16, 32, 64), (64, 64, 32, 16),
                                    (30, 20, 60), (10, 40, 10, 40, 10)], ids=str)
def test_relu_critical_mean_by_hand(widths, weights):
    """ReLU, sigma_w^2 = 2, sigma_b = 0, q0 = 1: qhat_l = 1 and chi_l = 1, so
    m_1(H_L) = sum_{l<L} c_l = sum_{l<L} N_l / N_L."""
    spec = NetworkSpec("relu", weights, depth=len(widths) - 1, widths=widths, sigma_w=2**0.5)
    np.testing.assert_allclose(fim_dual_law(spec).moments(1), sum(widths[:-1]) / widths[-1],
                               rtol=1e-12)


@pytest.mark.parametrize("act", ["relu", "tanh", "hard_tanh"])
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("widths", [(48, 48, 12, 48), (16, 16, 32, 64), (64, 64, 32, 16),
                                    (30, 20, 60), (30, 60, 20), (10, 40, 10, 40, 10)], ids=str)
def test_mean_variance_recursion_is_the_series(widths, weights, act):
    """The closed recursion of fim_dual_mean_variance (tr(ab) = tr a tr b, Var/mean^2 adding
    up in dimension N_l, then m_k -> r m_k) equals the series moments, layer by layer."""
    spec = NetworkSpec(act, weights, depth=len(widths) - 1, widths=widths, sigma_w=1.2,
                       sigma_b=0.2, q0=0.8)
    law, mv = fim_dual_law(spec), fim_dual_mean_variance(spec)
    rows = (law.layer_moments(2) if isinstance(law, ShiftChainLaw)
            else law.moments(2)[None, :])
    np.testing.assert_allclose(rows[:, 0], mv[-len(rows):, 0], rtol=1e-11)
    np.testing.assert_allclose(rows[:, 1] - rows[:, 0] ** 2, mv[-len(rows):, 1], rtol=1e-10,
                               atol=1e-14)


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("act", ["relu", "tanh", "hard_tanh"])
@pytest.mark.parametrize("widths", [(30, 20, 60), (30, 60, 20)], ids=str)
def test_depth_two_two_routes(widths, act, weights):
    """Depth 2 (a shifted free product with the S-transform change of dimension
    S(m / r) (1 + m) / (r + m)) against a one-layer shift chain (psi -> r psi): the same
    series moments and atoms."""
    spec = NetworkSpec(act, weights, depth=2, widths=widths, sigma_w=1.2, sigma_b=0.2, q0=0.8)
    law = fim_dual_law(spec)
    assert isinstance(law, ShiftedLaw)
    n0, n1, n2 = widths
    qhat = post_activation_moments(spec)
    s, c = 1.44, n2 / n1
    w = (MarchenkoPastur(1 / c, s * c) if weights == "gaussian"
         else delta(s * c) if c >= 1 else bernoulli(c, s))
    nu = d2_factor(d2_law(act, preactivation_variances(spec)[0]), near_support=True)
    chain = ShiftChainLaw(qhat[0] * n0 / n2,
                          [ShiftLayer((Factor(nu), Factor(w)), qhat[1] * n1 / n2, n1 / n2)])
    np.testing.assert_allclose(chain.moments(6), law.moments(6), rtol=1e-12)
    np.testing.assert_allclose(chain.atoms, law.atoms, rtol=1e-12)


def _density_cases():
    for shape in SHAPES.values():
        for weights in ("orthogonal", "gaussian"):
            for act in ACTS:
                yield shape, weights, act
    yield (16, 16, 32, 64), "orthogonal", "hard_tanh"  # three atoms inside the support
    yield (30, 20, 60), "orthogonal", "tanh"  # push-forward law plus an atom
    yield (30, 20, 60), "gaussian", "tanh"
    yield (30, 60, 20), "gaussian", "relu"
    yield (10, 40, 10, 40, 10), "orthogonal", "tanh"


@pytest.mark.parametrize("widths, weights, act", list(_density_cases()), ids=str)
def test_density_reproduces_series_moments(widths, weights, act):
    """Newton density (chain system with per-layer ratios): int rho = 1 - atom mass, rho >= 0,
    m_1..m_3 of density + atoms equal the series moments to 1e-6 relative."""
    sigma_w, sigma_b = ACTS.get(act, (1.1, 0.05))
    law = fim_dual_law(NetworkSpec(act, weights, depth=len(widths) - 1, widths=widths,
                                   sigma_w=sigma_w, sigma_b=sigma_b))
    _, _, rho = law.quadrature()
    assert np.all(np.isfinite(rho)) and rho.min() >= -1e-10 * rho.max()
    np.testing.assert_allclose(law.continuous_mass(), 1.0 - law.atom_mass, atol=1e-6)
    np.testing.assert_allclose(law.density_moments(3), law.moments(3), rtol=1e-6)


def test_purely_atomic_depth_two():
    """Orthogonal ReLU, widths (30, 20, 60): H_2 = c_1 + c_0 s (N_2/N_1) W P W^T with P a
    projection, so mu_2 = (1 - r/2) delta_{c_1} + (r/2) delta_{c_1 + 2 c_0 / r}, r = 1/3."""
    spec = NetworkSpec("relu", "orthogonal", depth=2, widths=(30, 20, 60), sigma_w=2**0.5)
    c0, c1, r = 30 / 60, 20 / 60, 1 / 3
    law = fim_dual_law(spec)
    np.testing.assert_allclose(law.atoms, [[c1, 1 - r / 2], [c1 + 2 * c0 / r, r / 2]],
                               rtol=1e-12)
    assert law.continuous_mass() == 0.0


ATOM_CASES = [("bottleneck", "orthogonal", "relu", 1 - 12 / 48 / 2),
              ("bottleneck", "gaussian", "relu", 1 - 12 / 48 / 2),
              ("bottleneck", "gaussian", "tanh", 1 - 12 / 48),
              ("expanding", "orthogonal", "relu", 1 - 32 / 64 / 2),
              ("expanding", "gaussian", "tanh", 1 - 32 / 64)]


@pytest.mark.parametrize("shape, weights, act, base_mass", ATOM_CASES)
def test_atoms_against_degenerate_eigenvalues(shape, weights, act, base_mass, global_seed):
    """The atom at c_{L-1} has mass 1 - r_{L-1} (1 - p_0) (p_0 = 1/2 for ReLU's dead units, 0
    for tanh: by hand above); every atom of the law at the sample's own shifts
    (qhat_l = ||x^l||^2 / N_l) holds, on average over trials, its mass of exactly degenerate
    eigenvalues of the explicit Gram (within 4 SE; tanh: exactly, the rank is N_{L-1}).
    E.g. orthogonal ReLU, expanding: mu_2 is atomic (W^T W = s (N_2 / N_1) I), and H_3 has a
    second atom at c_2 + s (N_3 / N_2) c_1 of mass 1/8 (at finite width (a_2 - a_1)_+ / N_3
    eigenvalues, a_l the live units of layer l: generic intersections of subspaces)."""
    spec = _spec(shape, weights, act)
    law = fim_dual_law(spec)
    np.testing.assert_allclose(law.atoms[0], [law.layers[-1].shift, base_mass], rtol=1e-12)
    n = np.array(spec.layer_widths, dtype=float)
    fractions, masses = [], []
    rng = np.random.default_rng([global_seed, 17, ATOM_CASES.index(
        (shape, weights, act, base_mass))])
    with single_blas_thread():
        for child in rng.spawn(100):
            net = sample_network(spec, child)
            eigs = np.linalg.eigvalsh(net.fim_dual_explicit(include_bias=False))
            qhat = [float(x @ x) / n[l] for l, x in enumerate(net.activations[:-1])]
            own = fim_dual_law(spec, qhat=qhat)
            assert own.atoms.shape == law.atoms.shape
            tol = ATOM_RTOL * eigs.max()
            fractions.append([np.mean(np.abs(eigs - a) <= tol) for a in own.atoms[:, 0]])
            masses.append(own.atoms[:, 1])
    np.testing.assert_allclose(masses, np.broadcast_to(law.atoms[:, 1], np.shape(masses)),
                               rtol=1e-12)
    assert_mean_within(fractions, law.atoms[:, 1], bias=1e-12)


@pytest.mark.parametrize("act, weights, depth", [("relu", "orthogonal", 3),
                                                 ("tanh", "gaussian", 3),
                                                 ("tanh", "orthogonal", 2)])
def test_ratio_one_limit_is_the_square_law(act, weights, depth):
    """Square specs keep the square path (fim_dual_chain_law with ratios all 1 is it). The
    rectangular path at r_l = 1 - 1e-9 (change of dimension, m / r terms in the chain system,
    w_l at aspect ratio 1/r) tends to the square law: moments to 1e-7, atoms of mass > 1e-6,
    density to 1e-5."""
    spec = NetworkSpec(act, weights, depth=depth, width=1, sigma_w=1.3, sigma_b=0.1)
    square = fim_dual_law(spec)
    nus = [d2_factor(d2_law(act, q), near_support=weights == "orthogonal")
           for q in preactivation_variances(spec)[:-1]]
    shifts = post_activation_moments(spec)[:depth]
    same = fim_dual_chain_law(nus, shifts, weights, spec.sigma_w, ratios=[1.0] * (depth - 1))
    np.testing.assert_array_equal(same.moments(4), square.moments(4))
    near = fim_dual_chain_law(nus, shifts, weights, spec.sigma_w,
                              ratios=[1 - 1e-9] * (depth - 1))
    np.testing.assert_allclose(near.moments(4), square.moments(4), rtol=1e-7)
    big = near.atoms[near.atoms[:, 1] > 1e-6]
    np.testing.assert_allclose(big, square.atoms, rtol=1e-7)
    lo, hi = square.intervals()[0]
    x = lo + (hi - lo) * np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(near.density(x), square.density(x), rtol=1e-5)
