"""Random MLP: forward pass, Jacobian and its spectrum, the FIM dual H_L, reproducibility.

Conventions under test (``freeness_lab.simulate.network``): J = D^L W^L ... D^1 W^1 =
d x^L / d x^0; H_L = (1/M) G G^T with G = d h^L / d theta, theta = every entry of the W^l
(and of the b^l when ``include_bias``), M = N_L the output width.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from freeness_lab.rng import spawn_generators
from freeness_lab.simulate import (
    EXPLICIT_FIM_MAX_WIDTH,
    jacobian_spectrum,
    moments_across_trials,
    sample_network,
    single_blas_thread,
)
from freeness_lab.spec import NetworkSpec

SQRT2 = 2.0**0.5


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """BLAS pinned to one thread: on a shared 2-core machine two OpenBLAS threads competing
    with other processes ran 10x slower here (docs/conventions.md section 4)."""
    with single_blas_thread():
        yield


# --------------------------------------------------------------------------- Monte Carlo


@pytest.mark.parametrize(("weights", "variance"), [("orthogonal", 3.0), ("gaussian", 6.0)])
def test_relu_critical_jacobian_mean_and_variance(weights: str, variance: float) -> None:
    """ReLU, sigma_w^2 = 2, sigma_b = 0, q0 = 1, L = 3 at M = 1000: the spectrum of J J^T has
    mean 1 and variance L = 3 (orthogonal) or 2L = 6 (Gaussian) (docs/conventions.md section 2,
    checks by hand: S-transforms of Bernoulli(1/2) and of sigma_w^2 I resp. Marchenko-Pastur), each
    within 4 standard errors across trials of the per-trial spectral mean / variance."""
    spec = NetworkSpec("relu", weights, depth=3, width=1000, sigma_w=SQRT2, sigma_b=0.0, q0=1.0)
    spectra = [jacobian_spectrum(spec, gen) for gen in spawn_generators(2024, 12)]
    summary = moments_across_trials(spectra, 2)
    assert abs(summary.mean[0] - 1.0) < 4 * summary.se[0]
    assert abs(summary.variance_mean - variance) < 4 * summary.variance_se
    # the checks have power: the SEs are small against the ensemble gap of 3
    assert summary.variance_se < 0.5


# --------------------------------------------------------------------------- Jacobian


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("widths", [None, (6, 9, 4, 7), (9, 5, 8, 12)], ids=str)
def test_jacobian_matches_central_differences(weights: str, widths) -> None:
    """jacobian() = d x^L / d x^0 with x^L = phi(forward(x^0)), by central differences
    (tanh; truncation O(eps^2), rounding O(1e-16 / eps) ~ 1e-11 at eps = 1e-5)."""
    spec = NetworkSpec("tanh", weights, depth=3, width=8, sigma_w=1.5, sigma_b=0.4, q0=0.8,
                       widths=widths)
    net = sample_network(spec, rng=3)
    x0, eps = net.activations[0], 1e-5
    n0 = x0.size
    plus = net.spec.act.phi(net.forward(x0[:, None] + eps * np.eye(n0)))
    minus = net.spec.act.phi(net.forward(x0[:, None] - eps * np.eye(n0)))
    j_fd = (plus - minus) / (2 * eps)
    j = net.jacobian()
    assert j.shape == (spec.layer_widths[-1], n0)
    assert np.allclose(j, j_fd, rtol=0, atol=1e-8)
    assert np.abs(j).max() > 1e-2  # not trivially zero
    # forward() at x^0 reproduces the stored pass
    assert np.allclose(net.forward(x0), net.preactivations[-1], rtol=1e-14, atol=1e-14)
    # the layer Jacobians multiply to J
    prod = np.eye(n0)
    for layer_j in net.layer_jacobians():
        prod = layer_j @ prod
    assert np.allclose(prod, j, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("widths", [None, (5, 9, 9, 11), (11, 9, 9, 5)], ids=str)
def test_jacobian_spectrum_is_spectrum_of_j_jt(widths) -> None:
    """Squared singular values = eigenvalues of J J^T (ascending, N_L of them, with N_L - N_0
    structural zeros when N_0 < N_L)."""
    spec = NetworkSpec("relu", "gaussian", depth=3, width=9, sigma_w=SQRT2, widths=widths)
    net = sample_network(spec, rng=8)
    eigs = net.jacobian_spectrum()
    j = net.jacobian()
    n_out, n_in = j.shape
    assert eigs.shape == (n_out,) and np.all(np.diff(eigs) >= 0)
    assert np.allclose(eigs, np.linalg.eigvalsh(j @ j.T), atol=1e-12 * eigs.max())
    if n_in < n_out:
        assert np.all(eigs[: n_out - n_in] == 0.0) and np.all(eigs[n_out - n_in:] > 0)


def test_deep_spectrum_keeps_small_eigenvalues() -> None:
    """eigvalsh(J J^T) resolves eigenvalues only down to ~eps * lambda_max; the SVD route down
    to ~eps * sqrt(lambda_max lambda_min), relative error ~2 eps cond(J). Here cond(J) ~ 1e10:
    the smallest eigenvalue must match 1 / sigma_max(J^{-1})^2 within 1e-5 relative (5x the
    bound), J^{-1} formed as the product of the well-conditioned layer inverses."""
    spec = NetworkSpec("tanh", "gaussian", depth=7, width=40, sigma_w=1.0)
    net = sample_network(spec, rng=2)
    eigs = net.jacobian_spectrum()
    j_inv = np.eye(40)
    for layer_j in net.layer_jacobians():
        j_inv = j_inv @ np.linalg.inv(layer_j)
    smallest = 1.0 / np.linalg.svd(j_inv, compute_uv=False)[0] ** 2
    assert eigs[0] < 1e-16 * eigs[-1]  # below what eigvalsh(J J^T) can resolve
    assert eigs[0] == pytest.approx(smallest, rel=1e-5)


# --------------------------------------------------------------------------- FIM dual H_L

FIM_CASES = [(w, a, widths) for w in ("orthogonal", "gaussian") for a in ("tanh", "relu")
             for widths in (None, (20, 32, 12, 24))]


@pytest.mark.parametrize("include_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(("weights", "activation", "widths"), FIM_CASES, ids=str)
def test_fim_dual_recursion_equals_explicit_gram(weights, activation, widths,
                                                 include_bias) -> None:
    """H_L by the recursion equals (1/M) G G^T from the explicit parameter Jacobian, to 1e-10.

    Normalization M = N_L (= width 32 when square). theta = all W^l entries, plus all b^l
    entries when include_bias (raw, standard parametrization: each bias adds (1/M) B_l B_l^T,
    i.e. H_1 = (qhat_0 + 1/M) I and H_{l+1} = (qhat_l + 1/M) I + W D H_l D W^T)."""
    spec = NetworkSpec(activation, weights, depth=3, width=32, sigma_w=1.4, sigma_b=0.3,
                       q0=1.2, widths=widths)
    net = sample_network(spec, rng=5)
    h_rec, h_exp = net.fim_dual(include_bias), net.fim_dual_explicit(include_bias)
    assert h_rec.shape == (spec.layer_widths[-1],) * 2
    assert np.max(np.abs(h_rec - h_exp)) < 1e-10
    # H_L = shift I + PSD, shift = (||x^{L-1}||^2 + beta) / M
    x_prev = net.activations[-2]
    shift = (x_prev @ x_prev + include_bias) / spec.layer_widths[-1]
    assert net.fim_dual_spectrum(include_bias)[0] >= shift * (1 - 1e-12)


def test_fim_dual_equals_finite_difference_parameter_gram() -> None:
    """(1/M) G G^T with G = d h^L / d theta by central differences of forward() over every
    weight and bias entry: checks the parameter set and normalization themselves."""
    spec = NetworkSpec("tanh", "gaussian", depth=2, width=5, sigma_w=1.2, sigma_b=0.5,
                       widths=(4, 6, 5))
    net = sample_network(spec, rng=9)
    x0, eps, columns = net.activations[0], 1e-6, []
    for param in [*net.weights, *net.biases]:
        for idx in np.ndindex(param.shape):
            saved = param[idx]
            param[idx] = saved + eps
            plus = net.forward(x0)
            param[idx] = saved - eps
            minus = net.forward(x0)
            param[idx] = saved
            columns.append((plus - minus) / (2 * eps))
    g = np.stack(columns, axis=1)
    assert np.allclose(net.fim_dual(include_bias=True), g @ g.T / 5, rtol=0, atol=1e-8)
    n_w = sum(w.size for w in net.weights)
    g_w = g[:, :n_w]
    assert np.allclose(net.fim_dual(include_bias=False), g_w @ g_w.T / 5, rtol=0, atol=1e-8)


def test_fim_dual_explicit_refuses_large_widths() -> None:
    spec = NetworkSpec("relu", "orthogonal", depth=2, width=EXPLICIT_FIM_MAX_WIDTH + 1)
    with pytest.raises(ValueError, match="fim_dual_explicit"):
        sample_network(spec, rng=0).fim_dual_explicit()


@pytest.mark.parametrize("include_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_fim_dual_mean_follows_sample_recursion(weights: str, include_bias: bool) -> None:
    """m_1(l+1) = qhat_l + beta/M + chi_l m_1(l), chi_l = sigma_w^2 tr(D_l^2), m_1(l) = tr(H_l),
    all from the SAME sample (a check of the simulation code, not of theory).

    At finite M the step is exact up to two zero-mean fluctuations (ReLU: the sign flip
    W^l -> S W^l, b^l -> S b^l leaves the law and diag H_l unchanged and swaps D_l on the
    flipped rows, so d_i^2 is uncorrelated with (H_l)_ii):
    - sigma_w^2 cov_i(d_i^2, (H_l)_ii), SE sigma_w^2 sd(d^2) sd(diag H_l) / sqrt(M);
    - Gaussian only, tr(W A W^T) - sigma_w^2 tr(A) with A = D_l H_l D_l and W = W^{l+1}
      independent of A, SE sigma_w^2 sqrt(2 tr(A^2)) / M.
    Each step is checked within 4 combined SEs; beta = 1 with biases, 0 without."""
    m, sigma_w = 400, SQRT2
    spec = NetworkSpec("relu", weights, depth=5, width=m, sigma_w=sigma_w, sigma_b=0.2)
    net = sample_network(spec, rng=31)
    beta = 1.0 if include_bias else 0.0
    h = [net.truncated(l).fim_dual(include_bias) for l in range(1, spec.depth + 1)]
    assert np.trace(h[0]) / m == pytest.approx(spec.q0 + beta / m, rel=1e-12)
    for l in range(1, spec.depth):  # step from H_l (h[l-1]) to H_{l+1} (h[l])
        x, d = net.activations[l], net.derivatives[l - 1]
        qhat, chi = x @ x / m, sigma_w**2 * np.mean(d**2)
        m1, m1_next = np.trace(h[l - 1]) / m, np.trace(h[l]) / m
        defect = m1_next - (qhat + beta / m + chi * m1)
        a = (d[:, None] * h[l - 1]) * d[None, :]
        se2 = (sigma_w**2 * np.std(d**2) * np.std(np.diag(h[l - 1]))) ** 2 / m
        if weights == "gaussian":
            se2 += 2 * sigma_w**4 * np.sum(a * a) / m / m**2
        rounding = 1e-12 * m1_next  # H_1 = shift I: then both SEs vanish
        assert abs(defect) < 4 * np.sqrt(se2) + rounding, (l, defect, np.sqrt(se2))
        assert abs(defect) < 0.05 * m1_next


# --------------------------------------------------------------------------- reproducibility

ARRAY_LISTS = ("weights", "biases", "preactivations", "activations", "derivatives")


def test_same_seed_same_network_int_or_generator() -> None:
    spec = NetworkSpec("tanh", "orthogonal", depth=3, width=16, sigma_w=1.1, sigma_b=0.2)
    a = sample_network(spec, rng=77)
    b = sample_network(spec, rng=np.random.default_rng(77))
    c = sample_network(spec, rng=78)
    for name in ARRAY_LISTS:
        assert all(np.array_equal(u, v) for u, v in zip(getattr(a, name), getattr(b, name),
                                                         strict=True))
    assert not np.array_equal(a.weights[0], c.weights[0])
    assert np.array_equal(a.jacobian_spectrum(), b.jacobian_spectrum())
    assert np.array_equal(a.fim_dual(), b.fim_dual())


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize(("depth", "widths"), [(1, None), (4, None), (3, (20, 35, 10, 25)),
                                               (3, (30, 12, 12, 18))], ids=str)
def test_streaming_spectrum_identical_to_stored(weights: str, depth: int, widths) -> None:
    spec = NetworkSpec("relu", weights, depth=depth, width=24, sigma_w=SQRT2, sigma_b=0.1,
                       widths=widths)
    stored = sample_network(spec, rng=404).jacobian_spectrum()
    streamed = jacobian_spectrum(spec, rng=np.random.default_rng(404))
    assert np.array_equal(stored, streamed)
    x0 = np.linspace(-1.0, 1.0, spec.layer_widths[0])
    assert np.array_equal(sample_network(spec, 5, x0=x0).jacobian_spectrum(),
                          jacobian_spectrum(spec, 5, x0=x0))


def test_streaming_spectrum_keeps_few_matrices() -> None:
    """Peak traced memory of the streaming path stays near 3 M x M matrices (W^l, the running
    product and its update), while a stored network holds all L weights."""
    m, depth = 256, 8
    spec = NetworkSpec("relu", "orthogonal", depth=depth, width=m, sigma_w=SQRT2)
    unit = m * m * 8
    tracemalloc.start()
    try:
        jacobian_spectrum(spec, rng=1)
        _, peak_stream = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        net = sample_network(spec, rng=1)
        _, peak_stored = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_stream < 3.5 * unit
    assert peak_stored > depth * unit
    assert len(net.weights) == depth


def test_default_input_has_exact_q0_and_given_input_is_used() -> None:
    spec = NetworkSpec("relu", "gaussian", depth=2, width=50, sigma_w=1.0, q0=2.5,
                       widths=(30, 50, 40))
    net = sample_network(spec, rng=0)
    x0 = net.activations[0]
    assert x0.shape == (30,) and x0 @ x0 / 30 == pytest.approx(2.5, rel=1e-13)
    given = np.ones(30)
    assert np.array_equal(sample_network(spec, rng=0, x0=given).activations[0], given)
    with pytest.raises(ValueError, match=r"^x0:"):
        sample_network(spec, rng=0, x0=np.ones(29))
    with pytest.raises(ValueError, match=r"^rng:"):
        sample_network(spec, rng=None)


def test_stored_lists_are_consistent() -> None:
    """h^l = W^l x^{l-1} + b^l, x^l = phi(h^l), d^l = phi'(h^l); biases ~ sigma_b; truncation
    keeps the first layers of the same draw."""
    spec = NetworkSpec("tanh", "gaussian", depth=3, width=12, sigma_w=1.3, sigma_b=0.5,
                       widths=(7, 12, 9, 10))
    net = sample_network(spec, rng=12)
    act = spec.act
    assert [len(getattr(net, n)) for n in ARRAY_LISTS] == [3, 3, 3, 4, 3]
    for l in range(3):
        w, b, h = net.weights[l], net.biases[l], net.preactivations[l]
        assert w.shape == (spec.layer_widths[l + 1], spec.layer_widths[l])
        assert np.allclose(h, w @ net.activations[l] + b, rtol=1e-14, atol=1e-14)
        assert np.array_equal(net.activations[l + 1], act.phi(h))
        assert np.array_equal(net.derivatives[l], act.dphi(h))
    sub = net.truncated(2)
    assert sub.spec.depth == 2 and sub.spec.layer_widths == (7, 12, 9)
    assert np.array_equal(sub.preactivations[-1], net.preactivations[1])
    with pytest.raises(ValueError, match=r"^depth:"):
        net.truncated(4)
    zero_bias = sample_network(NetworkSpec("tanh", "gaussian", depth=1, width=5), rng=1)
    assert np.all(zero_bias.biases[0] == 0.0)


def test_with_weights_reruns_the_forward_pass_and_permuted_is_a_cyclic_shift():
    spec = NetworkSpec("tanh", "orthogonal", depth=3, width=12, sigma_w=1.3, sigma_b=0.2)
    net = sample_network(spec, rng=4)
    same = net.with_weights(net.weights)
    for a, b in zip(same.activations + same.derivatives, net.activations + net.derivatives,
                    strict=True):
        np.testing.assert_array_equal(a, b)
    perm = net.permuted()
    shift = np.roll(np.eye(12), 1, axis=0)
    np.testing.assert_array_equal(perm.weights[1], 1.3 * shift)
    np.testing.assert_array_equal(perm.biases[2], net.biases[2])
    h1 = 1.3 * shift @ net.activations[0] + net.biases[0]
    np.testing.assert_allclose(perm.preactivations[0], h1, rtol=1e-15)
    np.testing.assert_allclose(perm.activations[1], np.tanh(h1), rtol=1e-15)
    with pytest.raises(ValueError, match="weights"):
        net.with_weights(net.weights[:2])
