"""Kolmogorov distances between an empirical spectral distribution and a limit law, shared by
the Monte Carlo tests of ``test_limits.py`` and ``test_fim_dual_orthogonal_mc.py`` (the bound
4 log(M) / M + sum_l Delta_l is derived in the module docstring of the latter)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from freeness_lab import NetworkSpec
from freeness_lab.theory import DiscreteLaw, d2_law

#: eigenvalues within this fraction of max |eigenvalue| of an atom are at the atom
#: (eigvalsh's error is ~1e-13 of the norm; a continuous-part eigenvalue lands this close to an
#: atom with probability ~ M * density * 1e-9)
ATOM_RTOL = 1e-9


def rigidity(width: int) -> float:
    """4 log(M) / M: the ESD's distance to the free convolution of its own marginals."""
    return 4.0 * math.log(width) / width


def one_sided(law, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F(x-), F(x)) at ``points``: the cdf less the mass of an atom sitting exactly there."""
    atoms = np.reshape(law.atoms, (-1, 2))
    right = law.cdf(points)
    return right - (atoms[:, 1] * (points[:, None] == atoms[:, 0])).sum(1), right


def kolmogorov(law, samples: np.ndarray) -> float:
    """sup_x |F_M(x) - F(x)| between the empirical law of ``samples`` and ``law``.

    ``law`` has ``cdf`` (right-continuous) and ``atoms`` (rows location, mass). Samples within
    ``ATOM_RTOL`` of an atom are moved onto it (rounding of eigvalsh). F_M is a step function and
    F is continuous between its atoms, so the supremum is attained as a one-sided limit at an
    eigenvalue or an atom: both F(x) and F(x-) are compared there with F_M(x) and F_M(x-).
    """
    x = np.asarray(samples, dtype=float).copy()
    atoms = np.reshape(law.atoms, (-1, 2))
    tol = ATOM_RTOL * max(np.abs(x).max(), 1.0)
    for loc in atoms[:, 0]:
        x[np.abs(x - loc) <= tol] = loc
    x = np.sort(x)
    points = np.unique(np.concatenate([x, atoms[:, 0]]))
    left, right = one_sided(law, points)
    n = len(x)
    emp_right = np.searchsorted(x, points, side="right") / n
    emp_left = np.searchsorted(x, points, side="left") / n
    return float(max(np.abs(emp_right - right).max(), np.abs(emp_left - left).max()))


def d2_distance(spec: NetworkSpec, h: np.ndarray, q: float) -> float:
    """Delta = d_K(empirical law of phi'(h_i)^2, law of phi'(h)^2 with h ~ N(0, q)).

    Piecewise-linear phi: against the exact atoms of ``d2_law`` (hard tanh: |phat - p|).
    Smooth phi with phi'^2 even and non-increasing in |h|: the Kolmogorov-Smirnov distance of
    |h_i| to the half-normal law of scale sqrt(q), since the events {phi'(h)^2 <= t} are among
    the {|h| >= r} (an upper bound on Delta, equal to it when phi'^2 is strictly decreasing in
    |h|, as for tanh and erf).
    """
    act = spec.act
    if act.is_piecewise_linear:
        atoms = d2_law(spec.activation, q).atoms
        return kolmogorov(DiscreteLaw(atoms[:, 0], atoms[:, 1]), act.dphi(h) ** 2)
    return float(stats.kstest(np.abs(h), stats.halfnorm(scale=math.sqrt(q)).cdf).statistic)
