"""The contract between :func:`~freeness_lab.theory.newton.lilypads.lilypads` and a system.

The homotopy never asks what a system is: it calls the methods of :class:`NewtonSystem`
(the product system, the chain system and their log-zeta form all provide them), and a
solved law and :class:`~freeness_lab.theory.newton.log_zeta.LogZetaSystem` call those of
:class:`LawSystem` in addition.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["HALF_PLANE_TOL", "LawSystem", "NewtonSystem"]

#: points are kept in the closed lower (upper) half-plane up to this relative tolerance
HALF_PLANE_TOL = 1e-9


class NewtonSystem(Protocol):
    """What the lilypads homotopy calls: unknowns v of shape (P, size) at points zeta (P,)."""

    #: number of unknowns per point
    size: int

    def initial(self, zeta: np.ndarray) -> np.ndarray:
        """Far-field start at zeta far in the upper half-plane (series)."""

    def newton_step(self, v: np.ndarray, zeta: np.ndarray) -> np.ndarray:
        """-J^{-1} F(v; zeta)."""

    def tangent(self, v: np.ndarray, zeta: np.ndarray) -> np.ndarray:
        """dv/dzeta along the solution."""

    def residual(self, v: np.ndarray, zeta: np.ndarray) -> np.ndarray:
        """max |F(v; zeta)| over the equations, per point."""

    def valid(self, v: np.ndarray) -> np.ndarray:
        """Whether v lies on the branch of the solution (half-planes, finite), per point."""

    def cauchy(self, v: np.ndarray, zeta: np.ndarray, *, drop_zero_atom: bool = False
               ) -> np.ndarray:
        """The Cauchy transform read off the solution."""


class LawSystem(NewtonSystem, Protocol):
    """A system of a solved law: also solvable in log zeta' and with dG/dzeta."""

    #: index of the unknown r = log(zeta' G(zeta) - p_0) of the top layer
    cauchy_index: int
    #: p_0, the mass at the base point that r leaves out
    zero_mass: float

    def newton_step(self, v: np.ndarray, zeta: np.ndarray | None, *,
                    log_zeta: np.ndarray | None = None) -> np.ndarray:
        """-J^{-1} F(v; zeta), zeta' given as its log instead with ``log_zeta``."""

    def tangent(self, v: np.ndarray, zeta: np.ndarray | None, *,
                log_zeta: np.ndarray | None = None) -> np.ndarray:
        """dv/dzeta (dv/d log zeta' with ``log_zeta``)."""

    def residual(self, v: np.ndarray, zeta: np.ndarray | None, *,
                 log_zeta: np.ndarray | None = None) -> np.ndarray:
        """max |F| over the equations, per point."""

    def cauchy_slope(self, v: np.ndarray, zeta: np.ndarray, *, drop_zero_atom: bool = False
                     ) -> np.ndarray:
        """dG/dzeta along the solution."""
