"""Spectral metrics of J J^T at initialization (Chhaibi, Daouda & Kahn, NeurIPS 2022), from the
limit law (theory) and from one sampled spectrum (Monte Carlo), with the same definitions.

J J^T is N_L x N_L and carries an atom at 0: the output layer's D^L (ReLU: mass 1/2) and, for a
rectangular network, rank min(N_0, .., N_L) < N_L (a bottleneck, an expanding network). Its
median then sits inside the atom, so the quantile metrics are those of the **nonzero part**:

    q_p = F^-1(m_0 + p (1 - m_0)),   m_0 = the law's mass at 0,

i.e. the p-quantile of the law conditioned on (0, inf) (with m_0 = 1/2, q_0.9 is the full
law's 0.95-quantile). Metrics (:data:`METRICS`): ``zero_mass`` (m_0), ``q50``, ``q90``
(:data:`QUANTILES`), ``m1`` = tr(J J^T) and ``norm_m2`` = m_2 / m_1^2.

Monte Carlo (:func:`esd_metrics`): the eigenvalues at or below the noise floor
(:func:`~freeness_lab.harness.spectral_distance.noise_floor`, at the largest layer width)
are the zeros; q_p is the sample quantile of the others with the midpoint rule (``hazen``:
the k-th of n sorted values at level (k - 1/2) / n), whose level is unbiased to first order
in 1/n -- the rule ``ceil(p n)``-th value is biased by about 1/(2n) in level, several SE
with a few dozen nonzero eigenvalues and 8 networks (measured while writing this module).
m1 and norm_m2 are those of the whole spectrum (zeros included), as in the law.

A finite-width bias to keep away from: the number of nonzero eigenvalues of a ReLU network
is the smallest of N_0 and the active counts of D^1..D^L (about N_l / 2 each, Binomial
fluctuations). When two of them tie in the limit (a square network: every layer), the
minimum of two Binomials sits O(sqrt N) below their mean, so the nonzero part is biased by
O(N^-1/2), as large as one network's fluctuation: the mean over T networks is then off by
about sqrt(T) SE (square, M = 128, 8 networks: 3 SE on q50). Profiles are therefore chosen
with one narrowest layer (``studies.chhaibi2022``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from freeness_lab.harness.spectral_distance import noise_floor
from freeness_lab.spec import NetworkSpec
from freeness_lab.theory.limits import jacobian_law

__all__ = ["METRICS", "QUANTILES", "esd_metrics", "log10_metrics", "quantile_name",
           "theory_metrics", "zero_mass"]

#: quantile levels of the nonzero part
QUANTILES: tuple[float, ...] = (0.5, 0.9)


def quantile_name(p: float) -> str:
    """``q50`` for p = 0.5."""
    return f"q{round(100 * p)}"


#: the metrics, in table order
METRICS: tuple[str, ...] = ("zero_mass", *(quantile_name(p) for p in QUANTILES), "m1",
                            "norm_m2")


def zero_mass(law: Any) -> float:
    """The law's mass at 0 (its atom there, or 0)."""
    atoms = np.reshape(law.atoms, (-1, 2))
    return float(atoms[atoms[:, 0] == 0, 1].sum())


def theory_metrics(spec: NetworkSpec) -> dict[str, float]:
    """:data:`METRICS` of the limit law of J J^T at ``spec``'s widths
    (:func:`~freeness_lab.theory.jacobian_law`, the Newton solver's quantile)."""
    law = jacobian_law(spec)
    m0 = zero_mass(law)
    levels = np.array([m0 + p * (1.0 - m0) for p in QUANTILES])
    with warnings.catch_warnings():  # the solver's convergence notes, not errors
        warnings.simplefilter("ignore")
        q = np.atleast_1d(law.quantile(levels))
    m1, m2 = (float(v) for v in law.moments(2))
    return {"zero_mass": m0, **{quantile_name(p): float(v) for p, v in zip(QUANTILES, q,
                                                                            strict=True)},
            "m1": m1, "norm_m2": m2 / m1**2}


def esd_metrics(eigenvalues: np.ndarray, spec: NetworkSpec) -> dict[str, float]:
    """:data:`METRICS` of one sampled spectrum of J J^T (module docstring)."""
    eigs = np.asarray(eigenvalues, float)
    floor = noise_floor(eigs, max(spec.layer_widths), spec.depth)
    nonzero = eigs[eigs > floor]
    q = (np.quantile(nonzero, QUANTILES, method="hazen") if nonzero.size
         else np.full(len(QUANTILES), math.nan))
    m1 = float(eigs.mean())
    return {"zero_mass": 1.0 - nonzero.size / eigs.size,
            **{quantile_name(p): float(v) for p, v in zip(QUANTILES, q, strict=True)},
            "m1": m1, "norm_m2": float(np.mean(eigs**2)) / m1**2 if m1 > 0 else math.nan}


def log10_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The training correlations' metrics: log10 of the quantiles, of m1 and of norm_m2, and
    |log10 q90| (the distance from isometry; a post-hoc metric, see the training study)."""
    out = {f"log10_{k}": math.log10(metrics[k]) for k in (*(quantile_name(p)
                                                             for p in QUANTILES), "m1",
                                                           "norm_m2")}
    out["abs_log10_q90"] = abs(out["log10_q90"])
    return out
