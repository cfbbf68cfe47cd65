"""The certified support: contour masses of a solved law, and the refinement they drive.

The contour mass mu((a, b)) = (1/pi) Im int G over the upper half circle on [a, b] is checked
against closed forms (the free product of two projections: atoms at 0 and 1, a continuous part
of known mass). Free products of discrete laws of M atoms of mass 1/M -- the paired laws of a
sampled network -- carry components of mass k/M near their edges, narrower than the support
scan: the certified law finds them (every component's contour mass a multiple of 1/M, the
quadrature's mass and moments exact), where the plain scan lost up to 7e-4 of the mass; a
support that cannot be reconciled is reported, never returned silently.
"""

import math
import warnings

import numpy as np
import pytest

from freeness_lab.activations import get_activation
from freeness_lab.simulate.ensembles import haar_orthogonal
from freeness_lab.theory import (
    DiscreteLaw,
    bernoulli,
    fim_dual_chain_law,
    free_product,
    jacobian_product_law,
)
from freeness_lab.theory.density import certify, contour, rescan

M = 512


def test_contour_masses_of_the_free_product_of_two_projections() -> None:
    """Bernoulli(a) boxtimes Bernoulli(b): atoms 1 - min(a, b) at 0 and a + b - 1 at 1, the
    rest on [l-, l+] (0 < l- < l+ < 1); the contour masses between points of the gaps are
    those masses to rounding."""
    a, b = 0.7, 0.45
    law, lo, hi = _pqp(a, b)
    at0, at1 = 1 - min(a, b), a + b - 1
    cases = [((0.5 * lo, 0.5 * (hi + 1)), 1 - at0 - at1), ((-0.2, 0.5 * lo), at0),
             ((0.5 * (hi + 1), 1.3), at1), ((-0.2, 1.3), 1.0)]
    for (x0, x1), mass in cases:
        near = [min(abs(x - lo), abs(x - hi), abs(x), abs(x - 1)) for x in (x0, x1)]
        assert contour.contour_mass(law, x0, x1, *near) == pytest.approx(mass, abs=1e-12)


def _pqp(a: float, b: float):
    """Bernoulli(a) boxtimes Bernoulli(b) and its continuous support [l-, l+]."""
    mid, half = a + b - 2 * a * b, math.sqrt(4 * a * b * (1 - a) * (1 - b))
    return free_product(bernoulli(a), bernoulli(b)), mid - half, mid + half


def test_contour_mass_counts_the_eigenvalues_of_sampled_projections(global_seed: int) -> None:
    """Monte Carlo: P O Q O^T P with P, Q projections of ranks a M, b M and O Haar has
    exactly M - b M eigenvalues at 0 and (a + b - 1) M at 1 (dimensions of generic
    intersections of subspaces), the rest inside (0, 1): the fraction strictly between the
    gaps' midpoints is the contour mass there, with no sampling error at all."""
    a, b, m = 0.7, 0.45, 200
    law, lo, hi = _pqp(a, b)
    p = np.diag((np.arange(m) < a * m).astype(float))
    q = np.diag((np.arange(m) < b * m).astype(float))
    o = haar_orthogonal(m, np.random.default_rng(global_seed))
    eigs = np.linalg.eigvalsh(p @ o @ q @ o.T @ p)
    x0, x1 = 0.5 * lo, 0.5 * (hi + 1)
    inside = np.mean((eigs > x0) & (eigs < x1))
    mass = contour.contour_mass(law, x0, x1, lo - x0, 1 - x1)
    assert inside == pytest.approx(mass, abs=1e-10)


def test_hidden_mass_finds_a_component_in_a_gap_and_nothing_in_a_true_one() -> None:
    """Treating [l-, l+] of the law of PQP as a gap (as a scan that missed it would), the
    localization returns an interval overlapping it; the true gap (0, l-) between the atom
    at 0 and the support holds nothing."""
    law, lo, hi = _pqp(0.7, 0.45)
    cache: dict = {}
    found = rescan.hidden_mass(law, 0.5 * lo, 0.5 * (hi + 1), 1e-9, cache, 0.5 * lo)
    assert len(found) == 1 and found[0][0] < hi and found[0][1] > lo
    assert rescan.hidden_mass(law, 0.1 * lo, 0.9 * lo, 1e-9, cache, 0.1 * lo) == []


def _sampled_d2(seed: int, q: float, m: int = M) -> DiscreteLaw:
    """The empirical law of tanh'(h)^2 at m draws of h ~ N(0, q): m distinct atoms of mass
    1/m, as a sampled layer gives."""
    h = np.random.default_rng(seed).normal(0.0, math.sqrt(q), m)
    return DiscreteLaw.empirical(get_activation("tanh").dphi(h) ** 2)


def _paired(matrix: str, mass_tol: float | None = None, m: int = M):
    """A paired law as a tanh network of width m (orthogonal, sigma_w = 1.1) gives one: the
    structure that the fixed scan missed (measured: J J^T mass off by 1.2e-4 at M = 1024,
    H_3 by 7e-3 at M = 512)."""
    d2 = [_sampled_d2(s, q, m) for s, q in ((1, 1.21), (2, 0.53), (3, 0.33))]
    if matrix == "JJT":
        law = jacobian_product_law(d2, "orthogonal", 1.1)
    else:
        law = fim_dual_chain_law(d2[:2], [1.0, 0.4398, 0.2736], "orthogonal", 1.1)
    if mass_tol is not None:
        getattr(law, "inner", law).mass_tol = mass_tol
    return law


@pytest.mark.parametrize("matrix, m, mass_tol", [("JJT", M, None), ("H_L", 256, 0.005 / 256)])
def test_paired_law_of_sampled_tanh_layers_keeps_its_mass(matrix: str, m: int,
                                                          mass_tol: float | None) -> None:
    """Each component's contour mass is a multiple of 1/m (the atoms' mass), they add up to
    1, and the certified quadrature has the mass and the first moments of the law to its
    ``mass_tol`` (the default 1e-6; 0.005 / m, what the spectral check asks of a paired law,
    for H_3, whose density near its lower edge has a bump per eigenvalue). Both needed the
    refinement: the plain scan missed components."""
    law = _paired(matrix, mass_tol, m)
    tol = law.inner.mass_tol if hasattr(law, "inner") else law.mass_tol
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        support = law.certified_support
    ends = np.concatenate([[support.intervals[0, 0] - 1.0],
                           0.5 * (support.intervals[1:, 0] + support.intervals[:-1, 1]),
                           [support.intervals[-1, 1] + 1.0]])
    exact, quad = contour.component_masses(law, support.intervals,
                                                 support.quadrature, ends)
    assert support.refined >= 1
    np.testing.assert_allclose(exact * m, np.round(exact * m), atol=1e-8)
    assert exact.sum() == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(quad, exact, atol=tol)
    assert abs(law.continuous_mass() + law.atom_mass - 1.0) <= tol
    np.testing.assert_allclose(law.density_moments(3), law.moments(3), rtol=10 * tol)


def test_a_support_that_cannot_be_reconciled_is_reported(monkeypatch) -> None:
    """Without rescans (a broken refinement), the paired H_3 law misses components: a
    RuntimeWarning names the defect, and the law reports it (``mass_defect``)."""
    monkeypatch.setattr(certify, "REFINE_ROUNDS", 0)
    law = _paired("H_L")
    with pytest.warns(RuntimeWarning, match="mass is off"):
        defect = law.certified_support.mass_defect
    assert abs(defect) > 1e-4
