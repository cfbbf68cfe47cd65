"""The mass of a solved law below the lowest panel of each log block.

With y = x - origin, y rho ~ C y^delta below a log block (base point, power points), so the
rest is y0 rho(y0) / delta (:func:`power_law_rest`); where x rho is still sizeable at the
lowest node of a product law's block at 0, the mass below is integrated in log zeta
(:func:`deep_mass`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from freeness_lab.theory.density.panels import gauss_legendre
from freeness_lab.theory.newton import LogZetaSystem, lilypads

__all__ = ["DEEP_TOL", "DEEP_U_MIN", "DEEP_WIDTH", "deep_mass", "log_block_tails",
           "power_law_rest"]

#: deep blocks below the log panels at 0 (product laws; u = log x, solved in log zeta): the
#: first panel's width in u (doubling), the relative mass left to the power-law tail when
#: they stop, and the lowest u (|omega| of the D^2 factors stays below ~1e60 above it)
DEEP_WIDTH = 64.0
DEEP_TOL = 1e-15
DEEP_U_MIN = -2.0e4


def power_law_rest(u: np.ndarray, f: np.ndarray, u_end: float) -> float:
    """int_-inf^u_end f(u) du for f = C e^(delta u) fitted at two points u[0] < u[1]
    (f = x rho(x), u = log x: the mass below x = e^u_end of a density rho ~ x^(delta - 1));
    inf when f does not decay (delta <= 0) or is not positive."""
    if not (np.all(np.isfinite(f)) and f[0] > 0 and f[1] > f[0]):
        return math.inf
    delta = math.log(f[1] / f[0]) / (u[1] - u[0])
    return float(f[0] * math.exp(delta * (u_end - u[0])) / delta)


def log_block_tails(law, panels: np.ndarray, x: np.ndarray, rho: np.ndarray,
                    zeta: np.ndarray, unknowns: np.ndarray) -> np.ndarray:
    """Per panel: the mass below it when it is the lowest panel of a log block, else 0.

    Parameters
    ----------
    law : SolvedLaw
    panels : ndarray (P, 4)
        (lo, hi, kind, origin), sorted.
    x : ndarray (P, n_gl)
        The nodes.
    rho, zeta, unknowns : ndarray
        The density, the points solved at and their solutions at the nodes (flat).

    Returns
    -------
    ndarray (P,)
    """
    # mass below the lowest panel of each log block (base point, power points): with
    # y = x - origin, y rho ~ C y^delta, so the rest is y0 rho(y0) / delta
    tail = np.zeros(len(panels))
    log = panels[:, 2] == 1
    first = np.nonzero(log & ~np.concatenate([[False], log[:-1]]))[0]
    r = rho.reshape(len(panels), -1)
    for i in first:
        rest, bottom = math.inf, math.inf
        if np.all(np.isfinite(r[i, :2])):
            y = x[i, :2] - panels[i, 3]
            bottom = y[0] * r[i, 0]
            rest = power_law_rest(np.log(y), y * r[i, :2], math.log(panels[i, 0]
                                                                       - panels[i, 3]))
        # x rho still sizeable at the lowest node of a product law's block at 0, and not
        # a power law with a negligible rest: integrate below it in log zeta
        deep = not (rest <= DEEP_TOL * (1.0 - law.atom_mass)
                    or bottom <= DEEP_TOL * (1.0 - law.atom_mass))
        if deep and panels[i, 3] == law.base_atom:
            j, base = i * law.n_gl, law.base_atom
            rest = deep_mass(law, math.log(panels[i, 0] - base), zeta[j] - base,
                                   unknowns[j], rest)
        tail[i] = rest if np.isfinite(rest) else 0.0
    return tail


def deep_mass(law, u_top: float, zeta0: complex, v0: np.ndarray, rest: float) -> float:
    """Mass of the continuous part of ``law`` in (b, b + e^u_top), b the base point (0 for a
    product, the last shift of a chain).

    Deep products put a sizeable mass far below the smallest double: every factor whose
    density is singular at 0 (Marchenko-Pastur, the D^2 law of a phi' with a zero)
    flattens rho ~ x^(delta - 1) (delta ~ 1 / the number of such factors), and the
    power law sets in only far below 1e-300 (SiLU, orthogonal weights, depth 50: mass
    0.45 below it); a chain's quadrature stops at 1e-11 b (x = b + y keeps no more of
    y), and GELU's H_3 has 1.3e-3 of its mass below. With y = x - b = e^u,
    int rho dx = int y rho du, and y rho = -Im zeta' G / pi at zeta' = y (1 + i eps_rel):
    a function of log zeta' alone, solved by
    :class:`~freeness_lab.theory.newton.log_zeta.LogZetaSystem` (no zeta is formed). Panels of
    Gauss-Legendre in u go down from u_top with doubling widths, each chained from the
    lowest point of the one above (a walk straight in log zeta), until the power-law
    remainder x rho / delta (delta from the two lowest nodes) is below DEEP_TOL, or u
    reaches DEEP_U_MIN, where that remainder is added. Where a panel does not converge
    (a single factor: its omega = 1 / zeta overflows below e^-700; some chains right
    below 1e-11 b), the power-law remainder estimated from above is used, as it is
    everywhere else (a warning when there is none: rho not a decaying power).

    Parameters
    ----------
    u_top : float
        log(x - b) at the lowest panel end of the support quadrature at b.
    zeta0, v0 : complex, ndarray
        zeta - b at a solved point near there (the lowest node) and its unknowns.
    rest : float
        The power-law remainder below u_top estimated from the quadrature's nodes (inf
        when rho is not a decaying power there).

    Returns
    -------
    float
    """
    system = LogZetaSystem(law.system)
    t, wt = gauss_legendre(law.n_gl)
    phi = math.atan(law.eps_rel)
    ell0, mass, width, top = np.log(zeta0), 0.0, DEEP_WIDTH, u_top
    total = 1.0 - law.atom_mass
    while rest > DEEP_TOL * total and top > DEEP_U_MIN:
        lo = max(top - width, DEEP_U_MIN)
        u = 0.5 * (top + lo) - 0.5 * (top - lo) * t  # from the top down
        ell = u + 1j * phi
        res = lilypads(system, u, np.full(u.shape, phi), y_start=1.0, log_zeta=True,
                       start=(np.full(u.shape, ell0), np.tile(v0, (len(u), 1))))
        if not res.converged.all():
            break
        zg = system.cauchy(res.unknowns, ell, drop_zero_atom=True)
        f = -(zg / (1 + 1j * law.eps_rel)).imag / math.pi
        mass += float(0.5 * (top - lo) * (wt * f).sum())
        rest = power_law_rest(u[-2:][::-1], f[-2:][::-1], lo)
        ell0, v0, top, width = ell[-1], res.unknowns[-1], lo, 2.0 * width
    if not np.isfinite(rest):
        warnings.warn(f"deep mass: the density is not a decaying power at "
                      f"x - b = e^{top:.0f}, where the solver stops: the mass below is "
                      f"missing", RuntimeWarning, stacklevel=6)
        return mass
    return mass + rest
