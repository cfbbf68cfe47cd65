"""Panels of the support quadrature: graded Gauss-Legendre panels, in x, log x or sqrt x.

Each interval of the support, split at the atoms and singular points inside it, is graded
geometrically toward both ends (:func:`support_panels`); each panel has a variable u in
which its integrand is smooth (:func:`panel_var`, :func:`panel_x`): x (kind 0), log(x -
origin) (1, toward the base point, where (x - origin) rho is a slowly varying power),
sqrt(x - origin) (2, a left edge) or sqrt(origin - x) (3, a right edge), where an edge
singularity (x - edge)^(+-1/2) becomes a polynomial.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["EDGE_GAP", "gauss_legendre", "panel_rule", "panel_var", "panel_x",
           "support_panels"]

#: relative distance from an edge below which the support quadrature puts no panel end
EDGE_GAP = 1e-6
#: Gauss-Legendre nodes and weights on [-1, 1] by order
gauss_legendre = functools.cache(np.polynomial.legendre.leggauss)


def panel_var(x: np.ndarray, kind: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Panel variable u of x: x (kind 0), log(x - origin) (1), sqrt(x - origin) (2, a left
    edge at origin), sqrt(origin - x) (3, a right edge)."""
    d = np.where(kind == 3, origin - x, x - origin)
    d = np.where(kind == 0, 1.0, np.maximum(d, 0.0))
    with np.errstate(divide="ignore"):
        return np.where(kind == 0, x, np.where(kind == 1, np.log(d), np.sqrt(d)))


def panel_x(u: np.ndarray, kind: np.ndarray, origin: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """(x, dx/du): the inverse of :func:`panel_var`."""
    e = np.exp(np.where(kind == 1, u, 0.0))
    x = np.select([kind == 1, kind == 2, kind == 3], [origin + e, origin + u * u,
                                                      origin - u * u], u)
    dx = np.select([kind == 1, kind == 2, kind == 3], [e, 2 * u, -2 * u], 1.0)
    return x, dx


def support_panels(law, intervals: np.ndarray, levels: int = 18, zero_levels: int = 60
                   ) -> np.ndarray:
    """Panels (lo, hi, kind, origin) of ``law`` (a :class:`~freeness_lab.theory.density.
    solved.SolvedLaw`) on its support ``intervals``: each interval, split at the atoms
    inside it, graded
    geometrically (ratio 1/4) toward both ends, where the density has algebraic
    singularities (kind 0: Gauss-Legendre in x). An interval starting at the base atom
    (0, or the last shift of a chain) is graded down to 4^-zero_levels of its width, then
    covered by three panels in log(x - origin) (kind 1) down to 1e-280 of its width (1e-11
    of the origin when it is not 0: x = origin + y keeps 5 digits of y there), where
    (x - origin) rho(x) is a smooth, slowly varying power (deep networks put a sizeable
    mass there). The other ends are graded down to EDGE_GAP (relative), and the panels
    touching them are Gauss-Legendre in u = sqrt(|x - edge|) (kinds 2 and 3), where an
    edge singularity (x - edge)^(+-1/2) is a polynomial."""
    out = []
    base = law.base_atom
    power = set(law.singular[1])
    for a, b in intervals:
        # no cut within EDGE_GAP (relative) of an end or of another cut
        inner = [c for c in np.unique(law.cuts)
                 if a + EDGE_GAP * abs(a) < c < b - EDGE_GAP * abs(b)]
        cuts = [a]
        for c in inner:
            if c - cuts[-1] > EDGE_GAP * abs(c):
                cuts.append(c)
        cuts.append(b)
        for c, d in zip(cuts[:-1], cuts[1:], strict=True):
            w = d - c
            singular = c == base or c in power
            lv = zero_levels if singular else levels
            left = c + w * 0.125 * 0.25 ** np.arange(lv, -1, -1)
            right = d - w * 0.125 * 0.25 ** np.arange(levels + 1)
            mid = np.linspace(c + 0.125 * w, d - 0.125 * w, 7)
            pts = np.unique(np.concatenate([left, mid, right, [d]]))
            # x - c is resolved down to 1e-280 w at c = 0, to ~1e-16 |c| elsewhere
            floor = max(1e-280 * w, 1e-300) if c == 0 else 1e-11 * abs(c)
            # no panel end closer than EDGE_GAP (relative) to an edge that is not the base
            # point: near an inverse square-root edge the solution is ill-conditioned (Newton
            # steps stall at ~1e-16 / distance), and the sqrt-variable end panels need none
            pts = pts[(pts - c > (10 * floor if singular else EDGE_GAP * abs(c)))
                      & (d - pts >= EDGE_GAP * abs(d)) | (pts == d)]
            # the last panel, and the first one when c is not the base point, in
            # u = sqrt(|x - edge|) (kinds 3 and 2): an algebraic edge singularity
            # (x - edge)^(+-1/2) becomes a polynomial in u
            if singular:
                if len(pts) and pts[0] - c > 10 * floor:
                    logs = c + np.geomspace(floor, pts[0] - c, 4)
                    out += [(lo, hi, 1, c) for lo, hi in zip(logs[:-1], logs[1:],
                                                             strict=True)]
                else:
                    pts = np.concatenate([[c], pts])
            else:
                out.append((c, pts[0], 2, c))
            if len(pts) > 1:
                out += [(lo, hi, 0, c) for lo, hi in zip(pts[:-2], pts[1:-1], strict=True)]
                out.append((pts[-2], d, 3, d))
    return np.array(out, dtype=float).reshape(-1, 4)


def panel_rule(n_gl: int, panels: np.ndarray, hi: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights (rows: panels) for int_lo^hi f(x) dx in the panel
    variable u (:func:`panel_var`); ``hi`` overrides the panels' upper ends."""
    t, wt = gauss_legendre(n_gl)
    lo, kind, origin = panels[:, 0], panels[:, 2], panels[:, 3]
    hi = panels[:, 1] if hi is None else hi
    a = panel_var(lo, kind, origin)[:, None]
    b = panel_var(hi, kind, origin)[:, None]
    h = 0.5 * (b - a)
    x, dx = panel_x(a + h + h * t, kind[:, None], origin[:, None])
    return x, h * wt * dx
