"""Empirical spectral moments: normalized-trace moments of sampled spectra and their errors.

For a spectrum lambda_1..lambda_M (eigenvalues of an M x M matrix A) the k-th moment is the
normalized trace m_k = tr(A^k) = (1/M) sum_i lambda_i^k (``docs/conventions.md`` section 2). Across
independent trials each m_k is averaged and given its standard error
SE = s / sqrt(T) (s the sample standard deviation, ddof = 1, over T trials).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np

__all__ = ["MomentSummary", "moments_across_trials", "spectral_moments", "weight_traces"]


def _check_order(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, Integral) or int(n) < 1:
        raise ValueError(f"n: the number of moments must be an integer >= 1, got {n!r}")
    return int(n)


def _check_spectrum(eigs: object, name: str = "eigs") -> np.ndarray:
    e = np.asarray(eigs, dtype=float)
    if e.ndim != 1 or e.size == 0 or not np.all(np.isfinite(e)):
        raise ValueError(f"{name}: must be a non-empty 1-D array of finite eigenvalues, "
                         f"got shape {e.shape}")
    return e


def spectral_moments(eigs: np.ndarray, n: int) -> np.ndarray:
    """Normalized-trace moments m_1..m_n of one spectrum: m_k = mean(eigs ** k).

    Parameters
    ----------
    eigs : array_like
        The M eigenvalues of a matrix A (1-D, finite).
    n : int
        Number of moments, >= 1.

    Returns
    -------
    numpy.ndarray
        Shape (n,): [tr(A), tr(A^2), ..., tr(A^n)].

    Examples
    --------
    >>> spectral_moments(np.array([0.0, 1.0, 2.0]), 3)
    array([1.        , 1.66666667, 3.        ])
    """
    n, e = _check_order(n), _check_spectrum(eigs)
    return np.mean(np.cumprod(np.broadcast_to(e, (n, e.size)), axis=0), axis=1)


def weight_traces(weights: Sequence[np.ndarray], sigma_w: float) -> np.ndarray:
    """Unnormalized traces Tr(O) and Tr(O^2) of O = W / sigma_w, averaged over the layers.

    A check of the weight sampler itself, not of any M -> infinity limit: for Haar O(M) and for
    Gaussian O_ij ~ N(0, 1/M) alike, E Tr(O) = 0 and E Tr(O^2) = 1 exactly at every M
    (:func:`freeness_lab.theory.weight_trace_means`), while e.g. the Q factor of a plain QR
    has E Tr(Q) of order -sqrt(M). Tr(O^2) = sum_ij O_ij O_ji costs O(M^2).

    Parameters
    ----------
    weights : sequence of numpy.ndarray
        The square weight matrices W^1..W^L.
    sigma_w : float
        Their scale.

    Returns
    -------
    numpy.ndarray
        Shape (2,): [mean_l Tr(O_l), mean_l Tr(O_l^2)].
    """
    if not weights or any(w.ndim != 2 or w.shape[0] != w.shape[1] for w in weights):
        raise ValueError("weights: must be a non-empty sequence of square matrices")
    tr1 = [float(np.trace(w)) / sigma_w for w in weights]
    tr2 = [float(np.sum(w * w.T)) / sigma_w**2 for w in weights]
    return np.array([np.mean(tr1), np.mean(tr2)])


def _mean_and_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and its standard error (NaN for a single trial)."""
    t = values.shape[0]
    se = (np.std(values, axis=0, ddof=1) / np.sqrt(t) if t > 1
          else np.full(values.shape[1:], np.nan))
    return values.mean(axis=0), se


@dataclass(frozen=True)
class MomentSummary:
    """Moments of T spectra, averaged over trials with standard errors.

    Attributes
    ----------
    per_trial : numpy.ndarray
        (T, n): m_1..m_n of each trial.
    mean, se : numpy.ndarray
        (n,): mean over trials of each m_k and its standard error (NaN if T = 1).
    variance : numpy.ndarray
        (T,): the spectrum's variance m_2 - m_1^2 in each trial (computed as the mean squared
        deviation from m_1, which is exact in exact arithmetic and does not cancel).
    variance_mean, variance_se : float
        Mean over trials of ``variance`` and its standard error (NaN if T = 1).
    """

    per_trial: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    variance: np.ndarray
    variance_mean: float
    variance_se: float

    @property
    def n_trials(self) -> int:
        """Number of trials T."""
        return self.per_trial.shape[0]


def moments_across_trials(spectra: Sequence[np.ndarray], n: int) -> MomentSummary:
    """Mean and standard error over trials of m_1..m_n and of the spectral variance.

    Parameters
    ----------
    spectra : sequence of array_like
        One spectrum per independent trial (lengths may differ).
    n : int
        Number of moments, >= 1.

    Returns
    -------
    MomentSummary
    """
    n = _check_order(n)
    if isinstance(spectra, np.ndarray) and spectra.ndim == 1:
        raise ValueError("spectra: expected a sequence of spectra (one per trial), got a "
                         "single 1-D array; wrap it in a list")
    checked = [_check_spectrum(e, f"spectra[{i}]") for i, e in enumerate(spectra)]
    if not checked:
        raise ValueError("spectra: need at least one spectrum")
    per_trial = np.stack([spectral_moments(e, n) for e in checked])
    variance = np.array([np.var(e) for e in checked])
    mean, se = _mean_and_se(per_trial)
    v_mean, v_se = _mean_and_se(variance[:, None])
    return MomentSummary(per_trial=per_trial, mean=mean, se=se, variance=variance,
                         variance_mean=float(v_mean[0]), variance_se=float(v_se[0]))
