"""Finite-difference checks of the hand-coded Newton Jacobians (issue 12).

The systems (:mod:`freeness_lab.theory.newton.product`, ``chain``; the arrow and block
tridiagonal solves inside them) form J = dF/dv by hand. Two checks through the public
protocol (:class:`~freeness_lab.theory.newton.protocol.NewtonSystem`), at converged solutions
v* on the support of each law:

- **Newton converges quadratically**: from v* + delta, one step -J^{-1} F leaves an error
  O(|delta|^2) when J is the Jacobian of F, but O(|delta|) when it is not. Measured as the
  ratio c(delta) = |error| / |delta| at |delta| = 1e-5 and 1e-6 (relative): c must fall by
  about 10 (allowed: at least 4), or sit at the rounding floor.
- **The tangent is dv/dzeta**: v is analytic in zeta, so the central difference
  (v(x + h) - v(x - h)) / 2h at fixed Im zeta equals ``tangent`` to O(h^2) (h = 1e-6 of the
  support's width: truncation ~1e-12, rounding ~1e-16 / h ~ 1e-10 relative).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.theory import (
    MarchenkoPastur,
    bernoulli,
    fim_dual_law,
    free_product,
    jacobian_law,
)

SQRT2 = 2.0**0.5


def _spec(act, weights, depth, sigma_w, sigma_b):
    return NetworkSpec(act, weights, depth=depth, width=100, sigma_w=sigma_w, sigma_b=sigma_b)


#: one law per kind of system: explicit factors only, Marchenko-Pastur factors, implicit
#: (quadrature-rule) factors, shift chains with atoms and with smooth layers
LAWS = {
    "bernoulli x MP": lambda: free_product(bernoulli(0.3), MarchenkoPastur(1.0, 1.0)),
    "J relu gaussian L3": lambda: jacobian_law(_spec("relu", "gaussian", 3, SQRT2, 0.0)),
    "J tanh orthogonal L2": lambda: jacobian_law(_spec("tanh", "orthogonal", 2, 1.1, 0.05)),
    "J erf gaussian L3": lambda: jacobian_law(_spec("erf", "gaussian", 3, 1.2, 0.05)),
    "H relu orthogonal L3": lambda: fim_dual_law(_spec("relu", "orthogonal", 3, SQRT2, 0.0)),
    "H tanh gaussian L3": lambda: fim_dual_law(_spec("tanh", "gaussian", 3, 1.1, 0.05)),
    "H tanh orthogonal L4": lambda: fim_dual_law(_spec("tanh", "orthogonal", 4, 1.1, 0.05)),
}


class _ScaledStep:
    """A system whose Newton step is 0.9 of the true one (a Jacobian 11 % too large)."""

    def __init__(self, system):
        self.system = system

    def newton_step(self, v, zeta):
        return 0.9 * self.system.newton_step(v, zeta)


@functools.cache
def _solved(name: str):
    """(law, x, eps, result) at 7 points inside the support: built once per module."""
    law = LAWS[name]()
    lo, hi = law.support()
    x = np.linspace(lo, hi, 9)[1:-1]
    eps = 1e-3 * (hi - lo)
    res = law.solve(x, eps)
    assert res.converged.all()
    return law, x, eps, res


def contraction(system, v: np.ndarray, zeta: np.ndarray, size: float, seed: int = 0) -> float:
    """max over points of |v* - (w + step(w))| / |w - v*|, w = v* + delta, |delta| ~ size |v*|."""
    rng = np.random.default_rng(seed)
    delta = size * np.abs(v) * (rng.standard_normal(v.shape) + 1j * rng.standard_normal(v.shape))
    w = v + delta
    error = w + system.newton_step(w, zeta) - v
    return float((np.abs(error).max(1) / np.abs(delta).max(1)).max())


def _is_quadratic(system, v, zeta) -> bool:
    c5, c6 = contraction(system, v, zeta, 1e-5), contraction(system, v, zeta, 1e-6)
    return c6 < 0.25 * c5 or c6 < 1e-8


@pytest.mark.parametrize("name", sorted(LAWS))
def test_newton_step_converges_quadratically(name):
    law, _, _, res = _solved(name)
    assert _is_quadratic(law.system, res.unknowns, res.zeta)
    # the check can tell: a Jacobian 11 % off converges linearly (c ~ 0.1 at every delta)
    assert not _is_quadratic(_ScaledStep(law.system), res.unknowns, res.zeta)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_tangent_is_the_derivative_of_the_solution(name):
    law, x, eps, res = _solved(name)
    lo, hi = law.support()
    h = 1e-6 * (hi - lo)
    fd = (law.solve(x + h, eps).unknowns - law.solve(x - h, eps).unknowns) / (2 * h)
    tangent = law.system.tangent(res.unknowns, res.zeta)
    rel = np.abs(fd - tangent).max(1) / np.abs(tangent).max(1)
    assert rel.max() < 1e-5, rel
    # and a wrong tangent (0.9 of it) is seen
    assert (np.abs(fd - 0.9 * tangent).max(1) / np.abs(tangent).max(1)).min() > 1e-2
