"""The step control of the deep comb's line (:class:`freeness_lab.theory.density.deep.DeepComb`):
panels doubled while resolved, halved where a walk fails, and a wall where every walk fails
approached by halving the distance to it -- on a stub whose walks fail where told to."""

from __future__ import annotations

import math

import numpy as np
import pytest

from freeness_lab.theory.density import deep
from freeness_lab.theory.density.panels import gauss_legendre

N_GL = 12


def _comb(fails):
    """A comb whose walks return e^u (a resolved integrand) at every node, or fail where
    ``fails(top, lo)`` (the panel's ends) says so; the failed walks are counted."""
    comb = object.__new__(deep.DeepComb)
    comb.t, comb.wt = gauss_legendre(N_GL)
    comb.total, comb.error, comb.bound, comb.rest = 1.0, 0.0, math.inf, math.inf
    comb.legendre = (np.polynomial.legendre.legvander(comb.t, N_GL - 1).T * comb.wt
                     * ((2 * np.arange(N_GL) + 1) / 2.0)[:, None])
    comb.failed, comb.walks = 0, 0
    comb.rules = None  # no fits: the line's floor unchanged

    def solve(ell, start_ell, start_v):
        comb.walks += 1
        top, lo = float(np.real(start_ell)), float(np.min(ell.real))
        if fails(top, lo):
            comb.failed += 1
            return None, None
        return 1e-300 * np.exp(ell.real), np.zeros((ell.size, 1), dtype=complex)

    comb.solve = solve
    return comb


def _stop_at(u_stop):
    return lambda u, zg: 0.0 if u[-1] <= u_stop else None


def test_wall_below_the_certified_point_costs_a_few_failed_walks():
    """Every walk reaching below -2431 fails, the mass below -2428 is certified: the line gets
    there with at most 3 failed walks (doubling into the wall after every panel: 13)."""
    comb = _comb(lambda top, lo: lo < -2431.0)
    _, top, _, below = comb.line(0.5 * math.pi, -640.0, -640.0 + 1j, np.zeros(1), _stop_at(-2428))
    assert below == 0.0 and -2431.0 <= top <= -2428.0
    assert comb.failed <= 3


def test_line_stops_next_to_a_wall_it_cannot_pass():
    """A wall with mass still uncertified above it: the line stops within two narrowest panels
    of it, in a bounded number of walks (closing in on it by halving must not go on forever)."""
    comb = _comb(lambda top, lo: lo < -1000.0)
    _, top, _, below = comb.line(0.5 * math.pi, -640.0, -640.0 + 1j, np.zeros(1), _stop_at(-5000))
    assert below is None
    assert -1000.0 <= top <= -1000.0 + 2 * deep.DEEP_MIN_WIDTH
    assert comb.walks < 60


@pytest.mark.parametrize("longest", [40.0, 100.0])
def test_walks_that_fail_by_their_length_are_passed(longest):
    """Walks fail when longer than ``longest`` in u (not below a point): the line goes on past
    every failure, with shorter panels, to the certified point."""
    comb = _comb(lambda top, lo: top - lo > longest)
    _, top, _, below = comb.line(0.5 * math.pi, -640.0, -640.0 + 1j, np.zeros(1), _stop_at(-3000))
    assert below == 0.0 and top <= -3000.0


@pytest.mark.slow
def test_the_relaxed_floor_leaves_the_deep_mass_of_gelu_at_depth_50(monkeypatch):
    """GELU, orthogonal, depth 50 (sigma_w 1.6, sigma_b 0.1): along the imaginary axis the
    fits answer down to DEEP_IM_FLOOR (inner subordination points just above the negative
    real axis went to the rule's sums: 9.8 -> 3.6 s for this mass), the same mass below the
    support quadrature as with the default floor, to 1e-12 of the law's (the comb's panels
    are resolved to 1e-13 each; measured 7e-14)."""
    from freeness_lab import NetworkSpec
    from freeness_lab.theory import jacobian_law
    from freeness_lab.theory.density import tail
    from freeness_lab.theory.newton.rule_stack import IM_FLOOR

    masses = []
    real = tail.deep_mass
    monkeypatch.setattr(tail, "deep_mass", lambda *a: masses.append(real(*a)) or masses[-1])
    spec = NetworkSpec("gelu", "orthogonal", depth=50, width=1, sigma_w=1.6, sigma_b=0.1)
    for floor in (deep.DEEP_IM_FLOOR, IM_FLOOR):
        monkeypatch.setattr(deep, "DEEP_IM_FLOOR", floor)
        jacobian_law(spec).support()
    assert len(masses) == 2 and masses[0] > 0
    assert masses[0] == pytest.approx(masses[1], rel=0, abs=1e-12)
