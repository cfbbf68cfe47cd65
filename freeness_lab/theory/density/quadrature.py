"""The support quadrature of a solved law: int f(x) rho(x) dx ~= sum_i w_i f(x_i) rho_i.

Composite Gauss-Legendre on the panels of :mod:`~freeness_lab.theory.density.panels`
(graded toward the edges and atoms of the support, in log x near the base point), the
density solved at every node (:func:`~freeness_lab.theory.density.chaining.node_solve`), the
log panels refined (:mod:`~freeness_lab.theory.density.log_panels`), and the mass below the
lowest log panels added as tails (:mod:`~freeness_lab.theory.density.tail`).
"""

from __future__ import annotations

import numpy as np

from freeness_lab.theory.density.chaining import node_solve
from freeness_lab.theory.density.log_panels import refine_log_panels
from freeness_lab.theory.density.panels import panel_rule, support_panels
from freeness_lab.theory.density.tail import log_block_tails

__all__ = ["quadrature_moments", "support_quadrature"]


def support_quadrature(law, intervals: np.ndarray) -> tuple[np.ndarray, ...]:
    """(x, w, rho, panels, tail) of ``law`` (a :class:`~freeness_lab.theory.density.solved.
    SolvedLaw`) on its support ``intervals``: nodes, weights and density (flat), the panels
    (lo, hi, kind, origin) and per panel the mass below it (the lowest panel of a log block;
    else 0)."""
    panels = support_panels(law, intervals)
    if not len(panels):
        empty = np.empty(0)
        return empty, empty, empty, np.empty((0, 4)), empty
    x, w = panel_rule(law.n_gl, panels)
    res = node_solve(law, x.ravel(), intervals)
    rho, zeta, unknowns = law.continuous_density(res), res.zeta, res.unknowns
    panels, x, w, rho, zeta, unknowns = refine_log_panels(law, intervals, panels, x, w, rho,
                                                          zeta, unknowns)
    tail = log_block_tails(law, panels, x, rho, zeta, unknowns)
    return x.ravel(), w.ravel(), rho, panels, tail


def quadrature_moments(quadrature: tuple, atoms: np.ndarray, n: int, shift: float = 0.0
                       ) -> np.ndarray:
    """m_0..m_n of the law of c + X (c = ``shift``) from a support quadrature (its nodes and
    the log blocks' tails, each at its panel's origin) plus the ``atoms`` (rows location,
    mass); m_0 is the total mass."""
    x, w, rho, panels, tail = quadrature
    k = np.arange(n + 1)
    out = (np.power.outer(x + shift, k) * (w * rho)[:, None]).sum(0)
    out = out + (np.power.outer(panels[:, 3] + shift, k) * tail[:, None]).sum(0)
    if len(atoms):
        out = out + (np.power.outer(atoms[:, 0] + shift, k) * atoms[:, 1:]).sum(0)
    return out
