"""The statistics shared by the studies and the paper figures, each with its formula.

- :func:`mean_se`: the mean over trials and its standard error sd / sqrt(T), sd with
  ``ddof=1``; :func:`grouped_mean_se`, the same per group of a tidy table.
- :func:`weighted_lstsq`, :func:`linear_fit`: (weighted) least squares y = X beta with
  standard errors; the covariance (X^T W X)^-1 is scaled by max(1, chi^2 / dof) (Birge ratio)
  so that a fit worse than its stated errors widens the SEs instead of hiding the misfit.
- :func:`correlation`: Pearson or Spearman correlation with a confidence interval by Fisher's
  z-transform, atanh(r) +- z_{1-alpha/2} s, s = 1 / sqrt(n - 3) (Pearson) or
  sqrt(1.06 / (n - 3)) (Spearman; Fieller, Hartley & Pearson, Biometrika 44, 1957).
- :func:`empirical_cdf`, :func:`sup_cdf_distance`: the right-continuous empirical cdf of a
  sample, and sup_x |F(x) - G(x)| on a grid (Kolmogorov distance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["Correlation", "LinearFit", "correlation", "empirical_cdf", "grouped_mean_se",
           "linear_fit", "mean_se", "sup_cdf_distance", "weighted_lstsq"]


def mean_se(values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over trials (axis 0) and its standard error sd / sqrt(T), sd with ``ddof=1``.

    Parameters
    ----------
    values : array_like, shape (T, ...)
        Per-trial values.

    Returns
    -------
    (mean, se) : numpy.ndarray or numpy.float64
        Over axis 0 (scalars for a 1-D input); the SE is NaN for a single trial.
    """
    v = np.asarray(values, dtype=float)
    return v.mean(axis=0), v.std(axis=0, ddof=1) / np.sqrt(v.shape[0])


def grouped_mean_se(df: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Mean, SE = sd / sqrt(T) (``ddof=1``) and trial count T of ``column`` per group.

    Returns
    -------
    pandas.DataFrame
        The ``keys`` columns (in order of first appearance), then ``mean``, ``trials``, ``se``.
    """
    out = df.groupby(keys, sort=False)[column].agg(mean="mean", sd="std",
                                                   trials="count").reset_index()
    out["se"] = out.pop("sd") / np.sqrt(out["trials"])
    return out


@dataclass(frozen=True)
class LinearFit:
    """y = intercept + slope x, with standard errors (:func:`linear_fit`)."""

    intercept: float
    slope: float
    intercept_se: float
    slope_se: float
    chi2_dof: float


def weighted_lstsq(design: np.ndarray, y: Sequence[float], se: Sequence[float] | None = None,
                   *, var: Sequence[float] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Least squares y ~ design @ beta, weighted by 1 / se^2 (or 1 / var) when given.

    beta = (X^T W X)^-1 X^T W y; Cov(beta) = (X^T W X)^-1 times max(1, chi^2 / dof)
    (weighted; Birge ratio) or times the residual variance chi^2 / dof (unweighted, W = I).
    A weighted fit with no degree of freedom left (as many points as parameters) passes
    through its points: its SEs are the weights' own and chi^2 / dof is NaN.

    Parameters
    ----------
    design : numpy.ndarray, shape (n, k)
    y : array_like, shape (n,)
    se : array_like, shape (n,), optional
        Standard errors of ``y`` (weights 1 / se^2).
    var : array_like, shape (n,), optional
        Variances of ``y`` (weights 1 / var), instead of ``se``.

    Returns
    -------
    (beta, se_beta, chi2_dof)

    Raises
    ------
    ValueError
        With fewer points than parameters (or no degree of freedom left unweighted), or
        non-positive ``se`` / ``var``.
    """
    design = np.asarray(design, float)
    y = np.asarray(y, float)
    n, k = design.shape
    weighted = se is not None or var is not None
    if y.shape != (n,) or n < k or (n == k and not weighted):
        raise ValueError(f"y: need more points than parameters ({k}), got {y.shape}")
    if not weighted:
        w = np.ones(n)
    else:
        s = np.asarray(se if var is None else var, float)
        if s.shape != (n,) or not np.all(s > 0):
            raise ValueError(f"{'se' if var is None else 'var'}: must be positive, one per "
                             f"point")
        w = 1.0 / s**2 if var is None else 1.0 / s
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    beta = cov @ (design.T @ (w * y))
    if n == k:
        return beta, np.sqrt(np.diag(cov)), math.nan
    chi2_dof = float(np.sum(w * (y - design @ beta) ** 2)) / (n - k)
    cov = cov * (chi2_dof if not weighted else max(1.0, chi2_dof))
    return beta, np.sqrt(np.diag(cov)), chi2_dof


def linear_fit(x: Sequence[float], y: Sequence[float],
               se: Sequence[float] | None = None) -> LinearFit:
    """Least-squares line y = a + b x through (x, y) (:func:`weighted_lstsq`, X = [1, x]).

    Raises
    ------
    ValueError
        With fewer than three points (no standard error), or non-positive ``se``.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise ValueError(f"x, y: need two 1-D arrays of equal length >= 3, got {x.shape} and "
                         f"{y.shape}")
    beta, err, chi2_dof = weighted_lstsq(np.column_stack([np.ones_like(x), x]), y, se)
    return LinearFit(float(beta[0]), float(beta[1]), float(err[0]), float(err[1]), chi2_dof)


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient with its confidence interval (:func:`correlation`)."""

    method: str
    r: float
    low: float
    high: float
    n: int
    p_value: float
    level: float

    def __str__(self) -> str:
        return (f"{self.method} r = {self.r:+.3f}, {100 * self.level:.0f}% CI "
                f"[{self.low:+.3f}, {self.high:+.3f}], n = {self.n}, p = {self.p_value:.2g}")


def correlation(x: Sequence[float], y: Sequence[float], *, method: str = "pearson",
                level: float = 0.95) -> Correlation:
    """Pearson or Spearman correlation of (x, y) with a Fisher-z confidence interval.

    CI = tanh(atanh(r) +- z_{(1+level)/2} s), s = 1/sqrt(n-3) for Pearson and
    sqrt(1.06/(n-3)) for Spearman (Fieller, Hartley & Pearson 1957). Non-finite pairs are
    refused (the caller reports what it excluded).

    Raises
    ------
    ValueError
        For an unknown ``method``, fewer than 4 pairs, or non-finite values.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method: must be 'pearson' or 'spearman', got {method!r}")
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 4:
        raise ValueError(f"x, y: need two 1-D arrays of equal length >= 4, got {x.shape} and "
                         f"{y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x, y: must be finite (exclude and report failed runs first)")
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    res = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
    r, p = float(res[0]), float(res[1])
    n = x.size
    s = (1.0 if method == "pearson" else math.sqrt(1.06)) / math.sqrt(n - 3)
    zq = float(stats.norm.ppf(0.5 + level / 2))
    zr = math.atanh(max(-1 + 1e-15, min(1 - 1e-15, r)))
    return Correlation(method, r, math.tanh(zr - zq * s), math.tanh(zr + zq * s), n, p, level)


def empirical_cdf(sample: np.ndarray, x: np.ndarray) -> np.ndarray:
    """F_n(x) = #{sample <= x} / n."""
    s = np.sort(np.asarray(sample, float))
    return np.searchsorted(s, np.asarray(x, float), side="right") / s.size


def sup_cdf_distance(f: np.ndarray, g: np.ndarray) -> float:
    """Kolmogorov distance sup |F - G| of two cdfs tabulated on the same grid."""
    return float(np.max(np.abs(np.asarray(f, float) - np.asarray(g, float))))
