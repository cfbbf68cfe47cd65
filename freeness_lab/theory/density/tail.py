"""The mass of a solved law below the lowest panel of each log block.

With y = x - origin, y rho ~ C y^delta below a log block (base point, power points), so the
rest is y0 rho(y0) / delta (:func:`~freeness_lab.theory.density.deep.power_law_rest`);
where x rho is still sizeable at the lowest node of a product law's block at 0, the mass
below is integrated in log zeta (:func:`~freeness_lab.theory.density.deep.deep_mass`).
"""

from __future__ import annotations

import math

import numpy as np

from freeness_lab.theory.density.deep import DEEP_TOL, deep_mass, power_law_rest

__all__ = ["log_block_tails"]


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
