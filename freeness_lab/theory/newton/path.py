"""The paths of the lilypads homotopy: vertical walks and straight (chained) walks.

A point walks either vertically, zeta(s) = x + i exp(t0 + s (t1 - t0)), s in [0, 1]
(geometric in Im zeta, from the far field down to its target height), or straight from a
known solution za to its target zb: geometrically, za (zb / za)^s (it stays in the closed
upper half-plane and resolves every scale), linearly when an end is 0, and linearly in ell
when the coordinate is ell = log zeta itself.
"""

from __future__ import annotations

import numpy as np

from freeness_lab.theory.branches import log_upper

__all__ = ["Paths"]


class Paths:
    """The path of every point (vectorized; :meth:`point` at indices i and parameters s).

    Parameters
    ----------
    x : ndarray
        Real parts of the targets (the vertical walks).
    t0, span : ndarray
        log of the vertical walks' start heights and t1 - t0.
    lin : bool ndarray
        Which points walk straight (modified by :meth:`to_axis`).
    za, zb : complex ndarray
        Start and end of the straight walks.
    log_zeta : bool
        Straight walks are linear (the coordinate is ell = log zeta).
    """

    def __init__(self, x: np.ndarray, t0: np.ndarray, span: np.ndarray, lin: np.ndarray,
                 za: np.ndarray, zb: np.ndarray, log_zeta: bool):
        self.x, self.t0, self.span = x, t0, span
        self.lin, self.za, self.zb = lin, za, zb
        self.log_zeta = log_zeta

    def point(self, i: np.ndarray, s: np.ndarray) -> np.ndarray:
        """zeta of the points i at the path parameters s."""
        vert = self.x[i] + 1j * np.exp(self.t0[i] + s * self.span[i])
        on_line = self.lin[i]
        if not on_line.any():
            return vert
        a, b = self.za[i], self.zb[i]
        if self.log_zeta:
            return a + s * (b - a)
        geo = (a != 0) & (b != 0)
        la = log_upper(np.where(geo, a, 1.0))
        lb = log_upper(np.where(geo, b, 1.0))
        straight = np.where(geo, np.exp(la + s * (lb - la)), a + s * (b - a))
        return np.where(on_line, straight, vert)

    def to_axis(self, j: np.ndarray, zeta: np.ndarray) -> None:
        """The points j continue straight from zeta (a vertical walk that ended above a
        real-axis target goes straight down)."""
        self.lin[j] = True
        self.za[j] = zeta
