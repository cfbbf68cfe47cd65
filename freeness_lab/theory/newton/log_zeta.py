"""A product or chain system in the coordinate ell = log zeta' (:class:`LogZetaSystem`).

*Log zeta*: both systems depend on zeta only through log zeta' (zeta' = zeta, or
zeta - qhat_n for a chain), so :class:`LogZetaSystem` solves them with ell = log zeta' as
the coordinate, at points no double can represent (deep products put mass at x ~ e^-1000).
"""

from __future__ import annotations

import numpy as np

from freeness_lab.theory.newton.protocol import LawSystem

__all__ = ["LogZetaSystem"]


class LogZetaSystem:
    """A product or chain system in the coordinate ell = log zeta' (for
    :func:`~freeness_lab.theory.newton.lilypads.lilypads` with ``log_zeta=True``),
    zeta' = zeta - b, b the law's base point (0 for a product, qhat_n for a chain).

    Both systems depend on zeta through log zeta' alone (F_0 of a product, P_n of a chain),
    so they can be solved at points that double precision cannot represent: deep products
    put mass at x ~ e^-1000 (each factor whose density is singular at 0 makes
    rho ~ x^(delta - 1) flatter), and x = b + y keeps no digit of y below 1e-16 b. The
    tangent is dv/d ell = -J^{-1} dF/d ell (dF/d ell = 1 in that one equation), and the
    Cauchy transform is returned as zeta' G(zeta) = e^r + p_0 (r: the top layer's main
    unknown), which stays representable: y rho = -Im zeta' G / pi on the axis.

    Parameters
    ----------
    system : LawSystem
        A :class:`~freeness_lab.theory.newton.product.ProductSystem` or
        :class:`~freeness_lab.theory.newton.chain.ChainSystem`.
    """

    def __init__(self, system: LawSystem):
        self.system = system
        self.size = system.size
        self._top, self._p0 = system.cauchy_index, system.zero_mass

    def initial(self, zeta: np.ndarray) -> np.ndarray:
        """No far-field start in ell: a walk in log zeta' needs a start (:func:`lilypads`)."""
        raise ValueError("LogZetaSystem: no far-field start; lilypads needs a start")

    def newton_step(self, v: np.ndarray, ell: np.ndarray) -> np.ndarray:
        """-J^{-1} F(v; b + e^ell)."""
        return self.system.newton_step(v, None, log_zeta=ell)

    def tangent(self, v: np.ndarray, ell: np.ndarray) -> np.ndarray:
        """dv/d ell."""
        return self.system.tangent(v, None, log_zeta=ell)

    def residual(self, v: np.ndarray, ell: np.ndarray) -> np.ndarray:
        """max |F(v; b + e^ell)| over the equations, per point."""
        return self.system.residual(v, None, log_zeta=ell)

    def valid(self, v: np.ndarray) -> np.ndarray:
        """As the system's ``valid``."""
        return self.system.valid(v)

    def cauchy(self, v: np.ndarray, ell: np.ndarray, *, drop_zero_atom: bool = False
               ) -> np.ndarray:
        """zeta' G(zeta) = e^r + p_0 (note: not G); without the atom at b on request."""
        return np.exp(v[..., self._top]) + (0.0 if drop_zero_atom else self._p0)
