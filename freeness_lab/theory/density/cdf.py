"""The cdf, partial means and quantiles of a solved law, from its support quadrature.

Whole panels come from the quadrature; the partial panel at x from the antiderivative of the
Legendre interpolant of the integrand at that panel's Gauss-Legendre nodes
(:func:`panel_antiderivatives`), kept monotone (:func:`panel_turning_points`). The partial
mean E[X; X <= x] integrates t rho(t) the same way (:func:`partial_mean`). Quantiles
bracket p with the panel table and bisect on the cdf.
"""

from __future__ import annotations

import numpy as np

from freeness_lab.theory.density.panels import gauss_legendre, panel_var

__all__ = ["cdf", "panel_antiderivatives", "panel_turning_points", "partial_mean", "quantile"]


def panel_antiderivatives(law, power: int = 0) -> np.ndarray:
    """Legendre coefficients (columns: panels) of t -> int_{-1}^t of the panel integrand
    x^power rho(x) dx/dt, from its values at the Gauss-Legendre nodes (discrete Legendre
    transform, exact for polynomials of degree < n_gl; the cdf (power 0) and the partial
    mean (power 1) are then as accurate as the quadrature)."""
    x, w, rho, panels, _ = law.support_quadrature
    n = law.n_gl
    t, wt = gauss_legendre(n)
    # integrand values in the panel variable
    f = (x**power * w * rho).reshape(len(panels), n) / wt
    V = np.polynomial.legendre.legvander(t, n - 1)
    coef = (V.T * wt) @ f.T * ((2 * np.arange(n) + 1) / 2)[:, None]
    return np.polynomial.legendre.legint(coef, lbnd=-1, axis=0)


def panel_turning_points(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t, F): per panel (rows), the real zeros t in (-1, 1) of its Legendre interpolant
    and the antiderivative F there (padded with +inf, -inf).

    Where a panel's integrand varies by many decades (the lowest log panel of a deep
    product: x rho from 1e-28 to 1e-22 over 90 e-folds, a mass far below the refinement
    tolerance) its interpolant dips below 0 between the nodes, and the antiderivative
    decreases there by ~1e-22: the cdf uses its running maximum over the panel (the
    largest of F(t) and F at the zeros below t), capped at the panel's mass."""
    n = C.shape[0] - 1
    roots = np.full((C.shape[1], n), np.inf)
    values = np.full((C.shape[1], n), -np.inf)
    deriv = np.polynomial.legendre.legder(C, axis=0)
    for j in range(C.shape[1]):
        d = np.polynomial.legendre.legtrim(deriv[:, j])
        if len(d) < 2 or not np.all(np.isfinite(d)):
            continue
        r = np.polynomial.legendre.legroots(d)
        r = r[(np.abs(np.imag(r)) < 1e-8) & (np.abs(np.real(r)) < 1.0)].real
        roots[j, :len(r)] = r
        values[j, :len(r)] = np.polynomial.legendre.legval(r, C[:, j])
    return roots, values


def _integral_below(law, flat: np.ndarray, power: int, atoms_part: np.ndarray
                    ) -> np.ndarray:
    """``atoms_part`` plus int_{(0, x]} t^power rho(t) dt at points ``flat``: whole panels
    below x, the tails of the log blocks starting at or below x (their mass counted at the
    lower end of the panel for power 1), and the partial panel at x from its Legendre
    antiderivative
    (:func:`panel_antiderivatives`), in [0, the panel's integral]; for power 0 also monotone
    within the panel (:func:`panel_turning_points`)."""
    xq, w, rho, panels, tail = law.support_quadrature
    out = atoms_part
    if not len(panels):
        return out
    # a panel mass below 0 is rounding noise of a density ~ 0: the cdf does not decrease
    pm = np.maximum((xq**power * w * rho).reshape(len(panels), -1).sum(1), 0.0)
    tail = tail * panels[:, 0] ** power
    cum = np.concatenate([[0.0], np.cumsum(pm + tail)])
    full = np.searchsorted(panels[:, 1], flat, side="right")
    last = np.minimum(full, len(panels) - 1)
    started = (full < len(panels)) & (flat >= panels[last, 0])
    out = out + cum[full] + np.where(started, tail[last], 0.0)
    inside = (full < len(panels)) & (flat > panels[last, 0])
    if inside.any():
        idx = np.nonzero(inside)[0]
        pan = panels[full[idx]]
        lo, hi, at = (panel_var(v, pan[:, 2], pan[:, 3])
                      for v in (pan[:, 0], pan[:, 1], flat[idx]))
        tau = np.clip(2 * (at - lo) / (hi - lo) - 1, -1.0, 1.0)
        coef = law.panel_antiderivatives if power == 0 else law.panel_mean_antiderivatives
        C = coef[:, full[idx]]
        part = (np.polynomial.legendre.legvander(tau, C.shape[0] - 1) * C.T).sum(1)
        if power == 0:
            roots, values = (a[full[idx]] for a in law.panel_turning_points)
            part = np.maximum(part, np.where(roots < tau[:, None], values, -np.inf).max(1))
        out[idx] += np.clip(part, 0.0, pm[full[idx]])
    return out


def cdf(law, x: np.ndarray) -> np.ndarray:
    """P(X <= x): atoms plus the integral of the density -- whole panels from the support
    quadrature, the partial panel by integrating the Legendre interpolant of the density
    at that panel's Gauss-Legendre nodes (:func:`_integral_below`)."""
    flat = x.ravel()
    return _integral_below(law, flat, 0, law.atom_cdf(flat)).reshape(x.shape)


def partial_mean(law, x: np.ndarray) -> np.ndarray:
    """E[X; X <= x] = int_{[0, x]} t dmu(t): the atoms at locations <= x plus the integral
    of t rho(t) as in :func:`cdf` (:func:`_integral_below`, power 1).

    With it, int_0^x F(t) dt = x F(x) - E[X; X <= x] (integration by parts), which gives
    Wasserstein distances to an empirical law exactly."""
    flat = x.ravel()
    out = np.zeros(flat.shape)
    if len(law.atoms):
        out += (law.atoms[:, 0] * law.atoms[:, 1]
                * (flat[:, None] >= law.atoms[:, 0])).sum(-1)
    return _integral_below(law, flat, 1, out).reshape(x.shape)


def quantile(law, p: np.ndarray) -> np.ndarray:
    """Inverse cdf: the panel from the cumulative table, then bisection within it."""
    flat = p.ravel()
    lo0, hi0 = law.support()
    # bracket with the panel table, refine by bisection on the exact cdf
    panels = law.support_quadrature[3]
    grid = np.concatenate([panels[:, 0], panels[-1:, 1]])
    grid = np.unique(np.concatenate([grid, law.atoms[:, 0], [lo0, hi0]]))
    cg = law.cdf(grid)
    j = np.clip(np.searchsorted(cg, flat, side="left"), 1, len(grid) - 1)
    lo, hi = grid[j - 1], grid[j]
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        below = law.cdf(mid) < flat
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        if np.all(hi - lo <= 1e-10 * np.maximum(hi, 1e-300)):
            break
    return hi.reshape(p.shape)

