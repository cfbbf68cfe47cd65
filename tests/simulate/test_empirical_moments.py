"""Empirical spectral moments and their standard errors across trials."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from freeness_lab.simulate import gaussian_matrix, moments_across_trials, spectral_moments


def test_moments_of_a_small_spectrum_by_hand() -> None:
    # eigenvalues 0, 1, 2: m_k = (1 + 2^k) / 3
    assert np.allclose(spectral_moments([0.0, 1.0, 2.0], 4), [1.0, 5 / 3, 3.0, 17 / 3],
                       rtol=1e-15)
    assert spectral_moments(np.array([-2.0]), 3).tolist() == [-2.0, 4.0, -8.0]


def test_moments_equal_normalized_traces_of_powers() -> None:
    """m_k = tr(A^k) = Tr(A^k) / M, computed from the matrix instead of its eigenvalues."""
    gen = np.random.default_rng(0)
    g = gen.standard_normal((30, 30))
    a = (g + g.T) / np.sqrt(60)
    expected = [np.trace(np.linalg.matrix_power(a, k)) / 30 for k in range(1, 7)]
    assert np.allclose(spectral_moments(np.linalg.eigvalsh(a), 6), expected, rtol=1e-10,
                       atol=1e-13)


def test_standard_errors_by_hand() -> None:
    """Trials with spectra {1, 1} and {3, 3}: per-trial m_1 = 1, 3 -> mean 2, sample sd sqrt 2,
    SE = sqrt(2) / sqrt(2) = 1; m_2 = 1, 9 -> mean 5, SE 4; spectral variance 0 in both."""
    s = moments_across_trials([np.array([1.0, 1.0]), np.array([3.0, 3.0])], 2)
    assert s.n_trials == 2
    assert np.allclose(s.per_trial, [[1.0, 1.0], [3.0, 9.0]])
    assert np.allclose(s.mean, [2.0, 5.0]) and np.allclose(s.se, [1.0, 4.0])
    assert np.allclose(s.variance, [0.0, 0.0]) and s.variance_mean == 0.0 and s.variance_se == 0
    # a spectrum {0, 2}: variance m_2 - m_1^2 = 2 - 1 = 1; lengths may differ across trials
    s2 = moments_across_trials([np.array([0.0, 2.0]), np.array([1.0, 1.0, 1.0])], 1)
    assert np.allclose(s2.variance, [1.0, 0.0]) and s2.variance_se == pytest.approx(0.5)


def test_single_trial_has_nan_standard_error() -> None:
    s = moments_across_trials([np.array([1.0, 2.0])], 2)
    assert np.allclose(s.mean, [1.5, 2.5]) and np.all(np.isnan(s.se))
    assert np.isnan(s.variance_se)


def test_wishart_moments_within_standard_errors() -> None:
    """W N x N with entries N(0, 1/N): E tr(W W^T) = 1, E tr((W W^T)^2) = 2 + 1/N and
    E[m_2 - m_1^2] = 1 + 1/N - 2/N^4 exactly (Gaussian moment counting); each within 4 SE."""
    n, trials = 60, 200
    w = gaussian_matrix(n, n, rng=3, batch=trials)
    spectra = list(np.linalg.eigvalsh(w @ np.swapaxes(w, 1, 2)))
    s = moments_across_trials(spectra, 2)
    assert abs(s.mean[0] - 1.0) < 4 * s.se[0]
    assert abs(s.mean[1] - (2 + 1 / n)) < 4 * s.se[1]
    assert abs(s.variance_mean - (1 + 1 / n - 2 / n**4)) < 4 * s.variance_se


def test_standard_error_coverage() -> None:
    """Calibration of the SE: over 2000 repetitions of T = 20 trials of 100 iid N(1, 1)
    'eigenvalues' (m_1 = 1, m_2 = 2; per-trial moments near-Gaussian, m_1 exactly), the
    interval mean +- t_{0.975, 19} SE covers the truth 95% of the time (binomial SE 0.5%;
    allow 4 of them)."""
    reps, trials, size = 2000, 20, 100
    gen = np.random.default_rng(42)
    t_crit = stats.t.ppf(0.975, trials - 1)
    covered = np.zeros(2)
    for _ in range(reps):
        s = moments_across_trials(list(gen.normal(1.0, 1.0, size=(trials, size))), 2)
        covered += np.abs(s.mean - [1.0, 2.0]) < t_crit * s.se
    rate = covered / reps
    assert np.all(np.abs(rate - 0.95) < 4 * np.sqrt(0.95 * 0.05 / reps)), rate


@pytest.mark.parametrize(("call", "field"), [
    (lambda: spectral_moments([1.0], 0), "n"),
    (lambda: spectral_moments([], 2), "eigs"),
    (lambda: spectral_moments(np.ones((2, 2)), 2), "eigs"),
    (lambda: spectral_moments([1.0, np.nan], 2), "eigs"),
    (lambda: moments_across_trials([], 2), "spectra"),
    (lambda: moments_across_trials(np.ones(3), 2), "spectra"),
    (lambda: moments_across_trials([np.ones(3), np.array([np.inf])], 2), r"spectra\[1\]"),
    (lambda: moments_across_trials([np.ones(3)], 1.5), "n"),
])
def test_bad_input_names_the_argument(call, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        call()
