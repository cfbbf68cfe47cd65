"""Weight ensembles: Haar orthogonal / unitary, rectangular orthogonal blocks, Gaussian.

Haar orthogonal O on O(n), n >= 4 (Diaconis & Shahshahani 1994; Diaconis & Evans 2001):
E Tr O = 0, E (Tr O)^2 = 1, E Tr(O^2) = 1, det O = +-1 with probability 1/2 each, and
(O_00 + 1) / 2 ~ Beta((n-1)/2, (n-1)/2) (a coordinate of a uniform point on S^(n-1)); the law
is invariant under O -> Q0 O. Every check is a z-score against its standard error (or a
p-value) at a fixed seed, and the SAME checks must reject the plain-QR sampler decisively.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_info

from freeness_lab.simulate import (
    gaussian_matrix,
    haar_orthogonal,
    haar_unitary,
    orthogonal_block,
    plain_qr_orthogonal,
    sample_weight,
    single_blas_thread,
)

N_SAMPLES = 20_000  # batched draws of small matrices
N_LOOP = 4_000  # unbatched (LAPACK path) draws, one call each


def _z(values: np.ndarray, expected: float) -> float:
    """|mean - expected| in units of the standard error of the mean."""
    return abs(values.mean() - expected) / (values.std(ddof=1) / np.sqrt(values.size))


def _haar_z_scores(o: np.ndarray, q0: np.ndarray, o_other: np.ndarray) -> dict[str, float]:
    """z-scores (|N(0,1)| under the Haar law) of the moment, determinant and law checks.

    ``o`` and ``o_other`` are independent stacks (k, n, n) from the sampler under test; ``q0``
    a fixed orthogonal matrix. KS p-values are turned into the matching two-sided z-score.
    """
    k, n, _ = o.shape
    tr = np.trace(o, axis1=1, axis2=2)
    tr_sq = np.trace(o @ o, axis1=1, axis2=2)
    n_pos = int(np.sum(np.linalg.det(o) > 0))
    z_of_p = lambda p: float(stats.norm.isf(max(p, 1e-300) / 2))  # noqa: E731
    beta_law = stats.beta((n - 1) / 2, (n - 1) / 2, loc=-1, scale=2)
    return {
        "E Tr O = 0": _z(tr, 0.0),
        "E (Tr O)^2 = 1": _z(tr**2, 1.0),
        "E Tr O^2 = 1": _z(tr_sq, 1.0),
        "det sign balanced": abs(n_pos - k / 2) / np.sqrt(k / 4),
        "O_00 law": z_of_p(stats.kstest(o[:, 0, 0], beta_law.cdf).pvalue),
        "left invariance": z_of_p(stats.ks_2samp(np.trace(o, axis1=1, axis2=2) + o[:, 0, 0],
                                                 np.trace(q0 @ o_other, axis1=1, axis2=2)
                                                 + (q0 @ o_other)[:, 0, 0]).pvalue),
    }


def _draw(sampler, n: int, seed: int, batched: bool) -> np.ndarray:
    if batched:
        return sampler(n, rng=seed, batch=N_SAMPLES)
    gen = np.random.default_rng(seed)
    return np.stack([sampler(n, rng=gen) for _ in range(N_LOOP)])


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "lapack-loop"])
@pytest.mark.parametrize("n", [4, 7])
def test_haar_orthogonal_passes_every_check(n: int, batched: bool) -> None:
    o = _draw(haar_orthogonal, n, 11, batched)
    assert np.allclose(o @ np.swapaxes(o, 1, 2), np.eye(n), atol=1e-12)
    q0 = haar_orthogonal(n, rng=99)
    z = _haar_z_scores(o, q0, _draw(haar_orthogonal, n, 12, batched))
    failed = {name: round(v, 2) for name, v in z.items() if v > 4}
    assert not failed, f"Haar sampler failed checks (z > 4): {failed}"


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "lapack-loop"])
@pytest.mark.parametrize("n", [4, 7])
def test_plain_qr_is_rejected_decisively(n: int, batched: bool) -> None:
    """The suite tells the wrong sampler from the right one at the same sample size."""
    q = _draw(plain_qr_orthogonal, n, 11, batched)
    assert np.allclose(q @ np.swapaxes(q, 1, 2), np.eye(n), atol=1e-12)  # orthogonal, not Haar
    z = _haar_z_scores(q, haar_orthogonal(n, rng=99), _draw(plain_qr_orthogonal, n, 12, batched))
    for name in ("E Tr O = 0", "det sign balanced", "O_00 law", "left invariance"):
        assert z[name] > 6, f"plain QR not rejected by {name!r}: z = {z[name]:.2f}"


@pytest.mark.parametrize(("n_out", "n_in"), [(7, 4), (4, 7), (6, 6)])
def test_orthogonal_block_shape_orthonormality_and_law(n_out: int, n_in: int) -> None:
    """Top-left block of a Haar matrix of size n = max: orthonormal columns (n_out >= n_in)
    or rows, and the (0, 0) entry follows the first-coordinate law of S^(n-1), symmetric."""
    scale = 1.7
    o = orthogonal_block(n_out, n_in, rng=5, scale=scale, batch=N_SAMPLES)
    assert o.shape == (N_SAMPLES, n_out, n_in)
    gram = (np.swapaxes(o, 1, 2) @ o if n_out >= n_in else o @ np.swapaxes(o, 1, 2)) / scale**2
    assert np.allclose(gram, np.eye(min(n_out, n_in)), atol=1e-12)
    n = max(n_out, n_in)
    law = stats.beta((n - 1) / 2, (n - 1) / 2, loc=-1, scale=2)
    assert stats.kstest(o[:, 0, 0] / scale, law.cdf).pvalue > 1e-4
    assert _z(o[:, -1, -1], 0.0) < 4  # a corner entry of the block is centered
    single = orthogonal_block(n_out, n_in, rng=5, scale=scale)
    assert single.shape == (n_out, n_in)
    gram1 = single.T @ single if n_out >= n_in else single @ single.T
    assert np.allclose(gram1 / scale**2, np.eye(min(n_out, n_in)), atol=1e-12)


def test_square_block_is_scaled_haar_with_same_draws() -> None:
    assert np.array_equal(orthogonal_block(6, 6, rng=3), haar_orthogonal(6, rng=3))
    assert np.allclose(orthogonal_block(6, 6, rng=3, scale=2.0), 2.0 * haar_orthogonal(6, rng=3),
                       rtol=1e-15, atol=0)


def test_haar_unitary_moments() -> None:
    """Haar U(n): E Tr U = 0, E |Tr U|^2 = 1 (n >= 1), E |U_00|^2 = 1/n; U unitary."""
    n = 5
    u = haar_unitary(n, rng=21, batch=N_SAMPLES)
    assert u.dtype == np.complex128
    assert np.allclose(u @ np.conj(np.swapaxes(u, 1, 2)), np.eye(n), atol=1e-12)
    tr = np.trace(u, axis1=1, axis2=2)
    assert _z(tr.real, 0.0) < 4 and _z(tr.imag, 0.0) < 4
    assert _z(np.abs(tr) ** 2, 1.0) < 4
    assert _z(np.abs(u[:, 0, 0]) ** 2, 1.0 / n) < 4
    single = haar_unitary(n, rng=21)
    assert single.shape == (n, n) and np.allclose(single @ single.conj().T, np.eye(n))


def test_haar_unitary_phase_fix_matters() -> None:
    """Phase of U_00 must be uniform (plain complex QR makes U_00 real negative): the
    circular mean of the phase is 0 within 4 SE (SE = sqrt(1/(2k)) per component)."""
    u = haar_unitary(4, rng=8, batch=N_SAMPLES)
    phase = u[:, 0, 0] / np.abs(u[:, 0, 0])
    se = np.sqrt(0.5 / N_SAMPLES)
    assert abs(phase.real.mean()) < 4 * se and abs(phase.imag.mean()) < 4 * se


@pytest.mark.parametrize(("n_out", "n_in", "sigma"), [(30, 30, 1.0), (20, 50, 1.4), (50, 20, 0.7)])
def test_gaussian_entry_variance(n_out: int, n_in: int, sigma: float) -> None:
    """Entries N(0, sigma^2 / n_in): mean 0 and E W_ij^2 = sigma^2 / n_in within 4 SE."""
    w = gaussian_matrix(n_out, n_in, rng=4, sigma=sigma, batch=100)
    assert w.shape == (100, n_out, n_in)
    entries = w.ravel()
    assert _z(entries, 0.0) < 4
    assert _z(entries**2, sigma**2 / n_in) < 4
    assert stats.kstest(entries * np.sqrt(n_in) / sigma, "norm").pvalue > 1e-4


@pytest.mark.parametrize("ensemble", ["orthogonal", "gaussian"])
@pytest.mark.parametrize(("n_out", "n_in"), [(40, 40), (60, 25), (25, 60)])
def test_sample_weight_preserves_norm_on_average(ensemble: str, n_out: int, n_in: int) -> None:
    """E ||W x||^2 / n_out = sigma_w^2 ||x||^2 / n_in in both ensembles (NetworkSpec)."""
    sigma_w, trials = 1.3, 400
    gen = np.random.default_rng(17)
    x = gen.standard_normal(n_in)
    ratio = np.array([np.sum((sample_weight(ensemble, n_out, n_in, sigma_w, gen) @ x) ** 2)
                      / n_out for _ in range(trials)]) / (sigma_w**2 * (x @ x) / n_in)
    if ensemble == "orthogonal" and n_out >= n_in:  # W^T W = sigma_w^2 (n_out/n_in) I: exact
        assert np.allclose(ratio, 1.0, rtol=1e-12)
    else:
        assert _z(ratio, 1.0) < 4


def test_reproducible_and_rng_kinds() -> None:
    for sampler in (haar_orthogonal, plain_qr_orthogonal, haar_unitary):
        a = sampler(6, rng=123)
        assert np.array_equal(a, sampler(6, rng=123))
        assert np.array_equal(a, sampler(6, rng=np.random.default_rng(123)))
        assert not np.array_equal(a, sampler(6, rng=124))
        assert np.array_equal(sampler(3, rng=7, batch=4), sampler(3, rng=7, batch=4))
    assert np.array_equal(gaussian_matrix(4, 5, rng=1), gaussian_matrix(4, 5, rng=1))


@pytest.mark.parametrize(("call", "field"), [
    (lambda: haar_orthogonal(0, rng=1), "n"),
    (lambda: haar_orthogonal(3, rng=1, batch=0), "batch"),
    (lambda: haar_unitary(2.5, rng=1), "n"),
    (lambda: gaussian_matrix(3, 3, rng=1, sigma=-1.0), "sigma"),
    (lambda: orthogonal_block(3, 0, rng=1), "n_in"),
    (lambda: orthogonal_block(3, 2, rng=1, scale=float("nan")), "scale"),
    (lambda: sample_weight("uniform", 3, 3, 1.0, rng=1), "ensemble"),
    (lambda: sample_weight("gaussian", 3, 3, 0.0, rng=1), "sigma_w"),
    (lambda: haar_orthogonal(3, rng=None), "rng"),
])
def test_bad_arguments_name_the_argument(call, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        call()


def test_single_blas_thread_pins_blas() -> None:
    with single_blas_thread():
        assert all(info["num_threads"] == 1 for info in threadpool_info()
                   if info["user_api"] == "blas")


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("n", [1, 2, 5, 64])
def test_weight_trace_means_against_monte_carlo(weights, n):
    """E Tr(O) = 0 and E Tr(O^2) = 1 at every width, both ensembles (theory side, by the
    order-2 Weingarten / Wick calculus), against the samplers through ``weight_traces``."""
    from freeness_lab.simulate import weight_traces
    from freeness_lab.theory import weight_trace_means

    rng = np.random.default_rng(2024 + n)
    draws = np.array([weight_traces([sample_weight(weights, n, n, 1.5, rng)], 1.5)
                      for _ in range(2_000)])
    expected = weight_trace_means(weights)
    for column, k in enumerate((1, 2)):
        values = draws[:, column]
        se = values.std(ddof=1) / np.sqrt(values.size)  # 0 for Tr(O^2) = 1 when n = 1
        assert abs(values.mean() - expected[k]) <= 4.5 * se + 1e-12, (k, values.mean())


def test_weight_traces_reject_plain_qr():
    from freeness_lab.simulate import weight_traces

    rng = np.random.default_rng(5)
    draws = np.array([weight_traces([plain_qr_orthogonal(64, rng)], 1.0) for _ in range(200)])
    assert _z(draws[:, 0], 0.0) > 30  # E Tr(Q) ~ -0.54 sqrt(M) for the plain Q factor
