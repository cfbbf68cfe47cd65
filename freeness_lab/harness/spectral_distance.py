"""Distances of an empirical spectral distribution (ESD) to a law, exactly, above a noise floor.

For the eigenvalues lambda_1..lambda_n of one sampled matrix, F_n(x) = #{lambda_i <= x} / n,
and a law with cdf F (atoms allowed; any :class:`~freeness_lab.theory.SpectralLaw` with
``cdf``, ``partial_mean`` and ``quantile``, e.g. a solved free product, or a
:class:`~freeness_lab.theory.DiscreteLaw` for an empirical reference):

* **Kolmogorov** d_K = sup_{x >= f} |F_n(x) - F(x)|. F_n is a step function and F is
  continuous between its atoms, so the supremum is attained as a one-sided limit at an
  eigenvalue or an atom: F(x) and F(x-) = F(x) - F({x}) are compared there with F_n(x) and
  F_n(x-) (exact: the law's cdf at the sorted eigenvalues and their left limits, no grid).
* **Wasserstein-1** W_1 = int_f^inf |F_n(x) - F(x)| dx, exactly: between consecutive points
  t_j < t_{j+1} (eigenvalues and atoms) F_n = c_j is constant and F is continuous and
  monotone, so the integral is that of c_j - F on one side of the crossing x* = Q(c_j) and of
  F - c_j on the other, with int_a^b F = Phi(b) - Phi(a), Phi(x) = x F(x) - E[X; X <= x]
  (integration by parts; :meth:`~freeness_lab.theory.SpectralLaw.partial_mean`; Phi(x*)
  from F(x*), so that an inexact quantile costs only the second order); beyond
  the largest point int_t^inf (1 - F) = m_1 - E[X; X <= t] - t (1 - F(t)). Its error is that
  of the law's cdf and partial mean (about 1e-10 relative for the solved laws), plus, for a
  law computed to a tolerance tol (a paired law's ``tol``), at most tol (t_last - t_0) / 4
  from the crossings it bounds instead of locating them (:func:`_wasserstein1`).
* **The floor f.** Eigenvalues of J J^T are squared singular values of the product J of L
  matrix products, and H_L is formed by L products too. The normwise error of each product
  of M x M matrices is at most gamma_M ~ M eps (Higham, *Accuracy and Stability of Numerical
  Algorithms*, 2nd ed., Thm. 3.5), so ||dJ|| <~ (L + 1) M eps ||J|| with the SVD, and by
  Weyl's inequality every eigenvalue of J J^T may move by 2 ||J|| ||dJ|| <~
  2 (L + 1) M eps lambda_max. Below f = 2 (L + 1) M eps lambda_max an eigenvalue is within
  its error bound of 0 and its position means nothing: the comparison is censored there --
  the ESD's fraction below f is compared with F(f) (the first point of the Kolmogorov
  supremum), not their positions; the W_1 integral starts at f (the part below f is at most
  f). Without this, the atom of ReLU's law at 0 (computed as numbers ~1e-17) would give a
  Kolmogorov distance of its mass at every M.
* **Atoms.** Eigenvalues within f of an atom of the law above f count at the atom; the
  fraction counted at each atom is reported against its mass (an atom below f: the fraction
  below f).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["QUANTILE_LEVELS", "Comparison", "compare", "noise_floor"]

#: quantile levels compared between the ESD and the law
QUANTILE_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def noise_floor(eigenvalues: np.ndarray, width: int, depth: int) -> float:
    """f = 2 (L + 1) M eps lambda_max: the Weyl bound on the rounding of an eigenvalue of
    J J^T or H_L computed through L matrix products of width M (module docstring)."""
    top = float(np.max(np.abs(eigenvalues))) if np.size(eigenvalues) else 0.0
    return 2.0 * (depth + 1) * width * np.finfo(float).eps * top


@dataclass
class Comparison:
    """An ESD against one law.

    Attributes
    ----------
    kolmogorov : float
        d_K above the floor.
    kolmogorov_at : float
        Where the supremum is attained.
    wasserstein1 : float
        W_1 above the floor.
    floor : float
        The censoring point f.
    below_floor : tuple of float
        (ESD fraction below f, F(f)).
    atoms : list of tuple of float
        (location, ESD fraction counted there, mass) per atom of the law.
    quantiles : list of tuple of float
        (level p, ESD quantile, law quantile); an ESD quantile below the floor is reported
        as 0 (its position means nothing).
    top : tuple of float
        (largest eigenvalue, top of the law's support: where the law bisects for it, to
        1e-2 of their distance, :func:`_top`).
    cdf : tuple of ndarray
        (x, F_n(x), F(x)) at the points compared -- the floor, the eigenvalues above it
        (atoms snapped), the atoms above it -- increasing: both cdfs as the Kolmogorov
        supremum saw them (the check's cdf plots draw them, no law solved again).
    """

    kolmogorov: float
    kolmogorov_at: float
    wasserstein1: float
    floor: float
    below_floor: tuple[float, float]
    atoms: list[tuple[float, float, float]] = field(default_factory=list)
    quantiles: list[tuple[float, float, float]] = field(default_factory=list)
    top: tuple[float, float] = (np.nan, np.nan)
    cdf: tuple[np.ndarray, np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.empty(0), np.empty(0), np.empty(0)))


def _snap_to_atoms(x: np.ndarray, atoms: np.ndarray, floor: float
                   ) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """Eigenvalues within ``floor`` of an atom above the floor moved onto it; per atom the
    fraction counted there (below the floor: the fraction below it) and its mass."""
    x = x.copy()
    counted = []
    for loc, mass in atoms:
        if loc <= floor:
            at = x < floor
        else:
            at = np.abs(x - loc) <= floor
            x[at] = loc
        counted.append((float(loc), float(at.mean()), float(mass)))
    return x, counted


def _wasserstein1(law, t: np.ndarray, level: np.ndarray, F: np.ndarray,
                  F_left: np.ndarray) -> float:
    """int_{t_0}^inf |F_n - F| with F_n = ``level[j]`` on [t_j, t_{j+1}) (module docstring).

    Where F crosses c = F_n on (a, b), int_a^b |c - F| = |A| + (a part below
    2 min(c - F(a), F(b-) - c) (b - a)), A = c (b - a) - int_a^b F: the crossing is located
    (a quantile and the cdf there) except at the crossings whose bounds are tightest, taken
    at the middle of their bounds while half their widths add up to at most half the
    error the law's cdf tolerance (``law.tol``, 0 without one) already allows in W_1,
    tol (t_last - t_0): a paired law's crossings in its rough intervals (edges, where each
    costs a contour integral of its own) are mostly of those."""
    phi = t * F - law.partial_mean(t)  # Phi(t) = int_0^t F, continuous
    a, b, c = t[:-1], t[1:], level[:-1]
    Fa, Fb = F[:-1], F_left[1:]  # F on the open interval runs from F(a) to F(b-)
    area = phi[1:] - phi[:-1]  # int_a^b F
    total = np.where(c <= Fa, area - c * (b - a), c * (b - a) - area)
    cross = (c > Fa) & (c < Fb)
    if cross.any():
        A = (c * (b - a) - area)[cross]
        low = np.abs(A)
        high = np.minimum(A + 2.0 * (Fb - c)[cross] * (b - a)[cross],
                          -A + 2.0 * (c - Fa)[cross] * (b - a)[cross])
        width = np.maximum(high - low, 0.0)
        order = np.argsort(width, kind="stable")
        budget = 0.25 * getattr(law, "tol", 0.0) * (t[-1] - t[0])
        bounded = np.zeros(width.size, dtype=bool)
        bounded[order] = np.cumsum(0.5 * width[order]) <= budget
        idx = np.nonzero(cross)[0]
        total[idx[bounded]] = 0.5 * (low + np.maximum(high, low))[bounded]
        located = idx[~bounded]
        if located.size:
            ac, bc, cc = a[located], b[located], c[located]
            xs = np.clip(law.quantile(cc), ac, bc)
            # Phi at x* from F(x*) itself, not c: the sum below is then exact for any x* in
            # [a, b] but for the sign of the integrand between x* and the true crossing (an
            # error of order rho (x* - Q(c))^2: a quantile interpolated between known points
            # of the cdf suffices)
            phi_s = xs * law.cdf(xs) - law.partial_mean(xs)
            total[located] = (cc * (xs - ac) - (phi_s - phi[:-1][located])
                              + (phi[1:][located] - phi_s) - cc * (bc - xs))
    mean = float(law.moments(1)[0])
    beyond = mean - float(law.partial_mean(t[-1:])[0]) - t[-1] * (1.0 - F[-1])
    return float(np.sum(np.maximum(total, 0.0)) + max(beyond, 0.0))


def compare(eigenvalues: np.ndarray, law, floor: float,
            levels: tuple[float, ...] = QUANTILE_LEVELS, top: bool = True) -> Comparison:
    """The ESD of ``eigenvalues`` against ``law``, censored below ``floor``
    (module docstring).

    Parameters
    ----------
    eigenvalues : array of float
        One matrix's spectrum (any order).
    law : SpectralLaw
        With ``atoms``, ``cdf``, ``partial_mean``, ``quantile``, ``moments`` and
        ``support``.
    floor : float
        The censoring point f >= 0 (:func:`noise_floor`).
    levels : tuple of float
        Quantile levels (none: no quantile is computed).
    top : bool
        Whether to find the top of the law's support (else ``Comparison.top`` holds NaN
        for it).

    Returns
    -------
    Comparison
    """
    x0 = np.sort(np.asarray(eigenvalues, dtype=float).ravel())
    n = x0.size
    if n == 0 or not np.all(np.isfinite(x0)):
        raise ValueError("eigenvalues: must be a non-empty array of finite numbers")
    atoms = np.reshape(law.atoms, (-1, 2))
    x, counted = _snap_to_atoms(x0, atoms, floor)
    x = np.sort(x)
    above = x[x >= floor]
    points = np.unique(np.concatenate([[floor], above, atoms[atoms[:, 0] > floor, 0]]))
    F = law.cdf(points)
    if not np.all(np.isfinite(F)):
        raise ValueError(f"{law!r}: cdf not computed at {int((~np.isfinite(F)).sum())} of "
                         f"{F.size} points")
    mass_at = np.zeros(points.size)
    if len(atoms):
        idx = np.searchsorted(points, atoms[:, 0])
        hit = (idx < points.size) & (points[np.minimum(idx, points.size - 1)] == atoms[:, 0])
        np.add.at(mass_at, idx[hit], atoms[hit, 1])
    F_left = np.maximum(F - mass_at, 0.0)
    emp = np.searchsorted(x, points, side="right") / n
    emp_left = np.searchsorted(x, points, side="left") / n
    right_gap = np.abs(emp - F)
    left_gap = np.abs(emp_left - F_left)
    left_gap[0] = 0.0  # at the floor: only the fraction below it is compared
    j_r, j_l = int(np.argmax(right_gap)), int(np.argmax(left_gap))
    if right_gap[j_r] >= left_gap[j_l]:
        d_k, at = float(right_gap[j_r]), float(points[j_r])
    else:
        d_k, at = float(left_gap[j_l]), float(points[j_l])
    w1 = _wasserstein1(law, points, emp, F, F_left)
    p = np.asarray(levels, dtype=float)
    esd_q = x[np.clip(np.ceil(p * n).astype(int) - 1, 0, n - 1)]  # smallest x: F_n(x) >= p
    esd_q = np.where(esd_q < floor, 0.0, esd_q)
    law_q = law.quantile(p) if p.size else p
    return Comparison(
        kolmogorov=d_k, kolmogorov_at=at, wasserstein1=w1, floor=float(floor),
        below_floor=(float(np.mean(x0 < floor)), float(F[0])), atoms=counted,
        quantiles=[(float(a), float(b), float(c)) for a, b, c in zip(p, esd_q, law_q,
                                                                      strict=True)],
        top=(float(x0[-1]), _top(law, float(x0[-1])) if top else np.nan),
        cdf=(points, emp, F))


def _top(law, x_max: float) -> float:
    """The top of ``law``'s support, for a comparison with ``x_max``: a law that computes its
    top edge by bisection (:meth:`~freeness_lab.theory.density.pointwise.PointwiseLaw.
    top_near`) finds it to GAP_REL of its distance from x_max; any other, ``support()[1]``."""
    top_near = getattr(law, "top_near", None)
    return float(top_near(x_max) if top_near is not None else law.support()[1])
