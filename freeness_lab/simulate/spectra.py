"""Empirical spectral moments: normalized-trace moments of sampled spectra and their errors.

For a spectrum lambda_1..lambda_M (eigenvalues of an M x M matrix A) the k-th moment is the
normalized trace m_k = tr(A^k) = (1/M) sum_i lambda_i^k (``DESIGN.md`` section 2). Across
independent trials each m_k is averaged and given its standard error
SE = s / sqrt(T) (s the sample standard deviation, ddof = 1, over T trials).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np

__all__ = ["MomentSummary", "moments_across_trials", "spectral_moments"]


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
