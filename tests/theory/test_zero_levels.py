"""A rule's sums near 0 by levels (:class:`ZeroLevels`) against direct summation.

The levels about 0 replace the clustered rule where a deep product evaluates the laws of
phi'(h)^2 (|zeta| from 1e-3 down to 1e-300 of their scale): they must give the same
(psi, 1 + psi, omega psi') as summing every node, pointwise and relatively (1 + psi may be
1e-150 there, far below the series' leading coefficients).
"""

from __future__ import annotations

import numpy as np
import pytest

from freeness_lab.theory.laws.smooth_d2 import SmoothD2Law
from freeness_lab.theory.meanfield import d2_law
from freeness_lab.theory.newton.quadrature_rule import psi_quadrature
from freeness_lab.theory.newton.zero_levels import ZeroLevels

RTOL = 1e-11


def assert_direct(fast, nodes, weights, zeta):
    """The three sums of ``fast`` at zeta equal the direct ones to RTOL, pointwise."""
    names = ("psi", "1 + psi", "omega psi'")
    for name, a, b in zip(names, fast(zeta), psi_quadrature(nodes, weights, 1.0 / zeta),
                          strict=True):
        err = np.abs(a - b) / np.abs(b)
        assert err.max() <= RTOL, (name, zeta[np.argmax(err)], err.max())


def points(r0: float, rng: np.random.Generator, n: int = 3000) -> np.ndarray:
    """|zeta| log-uniform from 1e-300 r0 to r0, both half-planes."""
    return r0 * 10.0 ** rng.uniform(-300, 0, n) * np.exp(1j * rng.uniform(-0.5, 3.6, n))


def test_synthetic_rule_at_every_level():
    """Complex nodes over 40 decades (and beyond r0), real nodes, a node at 0: every level,
    points below the deepest one and exactly on a level's edge."""
    rng = np.random.default_rng(0)
    n = 4000
    nodes = 10.0 ** rng.uniform(-40, 1, n) * np.exp(-1j * rng.uniform(0, 1.0, n))
    nodes[:50] = nodes[:50].real  # real nodes
    nodes[50] = 0.0
    weights = rng.uniform(0.5, 1.5, n) * np.exp(1j * rng.uniform(-0.3, 0.3, n)) / n
    r0 = 1e-2
    zl = ZeroLevels(nodes, weights, r0)
    assert zl.levels > 100
    zeta = np.concatenate([points(r0, rng), r0 * 2.0 ** -np.arange(0, 120, 0.5) * 1j])
    assert_direct(zl.psi_parts, nodes, weights, zeta)


@pytest.mark.parametrize("activation", ("tanh", "erf", "sigmoid", "silu", "gelu"))
def test_contour_rules_near_zero(activation):
    """Each smooth law's contour rule (two variances, GELU's nodes reach 1e-139): the levels
    and the fit's routing through them equal direct summation from its disc at 0 down to
    1e-300 of it."""
    rng = np.random.default_rng(1)
    for q in (0.05, 4.0):
        law = SmoothD2Law(d2_law(activation, q))
        fast = law.psi_rule
        assert fast.zero is not None and fast.zero_radius > 0
        zeta = points(fast.zero_radius, rng, 500)
        assert_direct(fast.zero.psi_parts, law.nodes, law.weights, zeta)
        assert_direct(lambda z, f=fast: f.psi_parts(1.0 / z), law.nodes, law.weights, zeta)

