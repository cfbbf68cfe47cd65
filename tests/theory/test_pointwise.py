"""Laws evaluated pointwise by contour integrals (:class:`~freeness_lab.theory.density.
pointwise.PointwiseLaw`): cdf, partial mean, quantiles and the top edge against closed forms
(the free product of two projections of trace 1/2: an atom of 1/2 at 0 and the arcsine law
on [0, 1], inverse square-root edges at both ends) and against the certified support
quadrature (an independent route: support search, graded panels, contour masses) on paired
laws of sampled tanh and ReLU layers; the failure paths (an unresolved leg, a comb too
short for the support) are reported, never silently wrong.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from montecarlo import assert_mean_within

from freeness_lab.activations import get_activation
from freeness_lab.simulate.ensembles import haar_orthogonal
from freeness_lab.theory import (
    DiscreteLaw,
    bernoulli,
    fim_dual_chain_law,
    free_product,
    jacobian_product_law,
)
from freeness_lab.theory.density import blocks, contour_cdf, pointwise


def _projections():
    """P Q P for free projections of trace 1/2: 1/2 delta_0 + density 1/(2 pi sqrt(x(1-x)))
    on [0, 1]."""
    return free_product(bernoulli(0.5), bernoulli(0.5))


def test_cdf_partial_mean_quantiles_and_edges_of_two_projections() -> None:
    """F(x) = 1/2 + arcsin(sqrt x) / pi, E[X; X <= x] = (arcsin(sqrt x) - sqrt(x (1-x)))
    / (2 pi), Q(p) = sin^2(pi (p - 1/2)) (p > 1/2), edges 0 and 1: to the tolerance asked,
    at points down to 1e-8 of the inverse square-root edges."""
    tol = 1e-8
    law = _projections().pointwise(tol)
    x = np.concatenate([[1e-8, 1e-4], np.linspace(0.01, 0.99, 41), [1 - 1e-4, 1 - 1e-8]])
    s = np.arcsin(np.sqrt(x))
    np.testing.assert_allclose(law.cdf(x), 0.5 + s / math.pi, atol=4 * tol)
    np.testing.assert_allclose(law.partial_mean(x),
                               (s - np.sqrt(x * (1 - x))) / (2 * math.pi), atol=4 * tol)
    assert law.cdf(np.array([-0.5, 2.0])) == pytest.approx([0.0, 1.0], abs=4 * tol)
    p = np.array([0.3, 0.55, 0.7, 0.9, 0.99])
    exact = np.where(p > 0.5, np.sin(math.pi * (p - 0.5)) ** 2, 0.0)
    np.testing.assert_allclose(law.quantile(p), exact, atol=1e-4)
    assert law.continuous_mass() == pytest.approx(0.5, abs=tol)
    assert law.top_edge == pytest.approx(1.0, rel=1e-6)
    assert law.support() == pytest.approx((0.0, 1.0), abs=1e-6)


def _sampled_d2(seed: int, q: float, m: int) -> DiscreteLaw:
    """The empirical law of tanh'(h)^2 at m draws of h ~ N(0, q) (a sampled layer's)."""
    h = np.random.default_rng(seed).normal(0.0, math.sqrt(q), m)
    return DiscreteLaw.empirical(get_activation("tanh").dphi(h) ** 2)


def _paired(matrix: str, m: int):
    d2 = [_sampled_d2(s, q, m) for s, q in ((1, 1.21), (2, 0.53), (3, 0.33))]
    if matrix == "JJT":
        return jacobian_product_law(d2, "orthogonal", 1.1)
    return fim_dual_chain_law(d2[:2], [1.0, 0.4398, 0.2736], "orthogonal", 1.1)


@pytest.mark.parametrize("matrix", ["JJT", "H_L"])
def test_paired_tanh_law_agrees_with_its_certified_quadrature(matrix: str) -> None:
    """At the points a spectral check asks for (a sample's eigenvalues, here the law's own
    quantiles at 256 levels, and points near its edges), the pointwise cdf and partial mean
    equal those of the certified support quadrature (mass to 1e-8) within the tolerance
    asked (0.005 / M), and so does the top edge."""
    m = 256
    law = _paired(matrix, m)
    inner = getattr(law, "inner", law)
    inner.mass_tol = 1e-8
    tol = 0.005 / m
    pw = law.pointwise(tol)
    lo, hi = law.support()
    x = np.sort(np.concatenate([law.quantile((np.arange(m) + 0.5) / m),
                                lo + (hi - lo) * np.array([1e-6, 1e-3, 0.999, 1 - 1e-6])]))
    np.testing.assert_allclose(pw.cdf(x), law.cdf(x), atol=tol)
    np.testing.assert_allclose(pw.partial_mean(x), law.partial_mean(x), atol=tol * hi)
    assert abs(pw.continuous_mass() + pw.atom_mass - 1.0) <= tol
    assert pw.top_edge == pytest.approx(law.support()[1], rel=1e-6)
    assert pw.support()[0] <= law.support()[0]
    p = np.linspace(0.1, 0.9, 9)
    np.testing.assert_allclose(pw.quantile(p), law.quantile(p), atol=1e-3 * hi)


@pytest.mark.parametrize("gap", [1e-1, 1e-3, 1e-6])
def test_top_near_a_point_is_within_its_fraction_of_the_gap(gap: float) -> None:
    """top_near(x) (the spectral check's ``top``: x the largest eigenvalue) finds the top
    edge to GAP_REL of its distance from x, or to EDGE_REL: the closed-form edge 1 of two
    projections and the certified top of a paired tanh law, from below and from above."""
    from freeness_lab.theory.density.pointwise import EDGE_REL, GAP_REL

    pw = _projections().pointwise(1e-8)
    paired = _paired("JJT", 128)
    for law, top in ((pw, 1.0), (paired.pointwise(0.005 / 128), paired.support()[1])):
        for x in (top * (1 - gap), top * (1 + gap)):
            law.cdf(np.array([x]))
            bound = max(GAP_REL * abs(x - top), 4 * EDGE_REL * top)
            assert abs(law.top_near(x) - top) <= bound
        assert "top_edge" not in law.__dict__  # top_edge itself still to EDGE_REL
        assert law.top_edge == pytest.approx(top, rel=1e-6)


def test_an_atom_on_top_of_the_continuous_part_is_the_top_without_an_edge_search(
        monkeypatch) -> None:
    """Two free projections of trace 0.8: atoms 0.2 delta_0 and 0.6 delta_1, the
    continuous part on [0, 0.64] (l+ = a + b - 2ab + sqrt(4ab(1-a)(1-b))): top_near is the
    atom 1, from below and above it, with the edge search disabled; a ReLU H_3 chain whose
    atoms lie inside its continuous part still gets its edge (the certified top)."""
    law = free_product(bernoulli(0.8), bernoulli(0.8)).pointwise(1e-8)
    assert law.atoms[:, 0].max() == pytest.approx(1.0)
    assert law.top_edge == pytest.approx(0.64, rel=1e-6)
    calls = []
    original = pointwise.bisect_edges
    monkeypatch.setattr(pointwise, "bisect_edges", lambda *a, **k: calls.append(1) or
                        original(*a, **k))
    fresh = free_product(bernoulli(0.8), bernoulli(0.8)).pointwise(1e-8)
    for x in (0.99, 1.0, 1.01):
        assert fresh.top_near(x) == pytest.approx(1.0, abs=1e-12)
    assert not calls
    layers = [DiscreteLaw.empirical(np.r_[np.zeros(k), 2.0 * np.ones(100 - k)])
              for k in (47, 55)]
    chain = fim_dual_chain_law(layers, [1.0, 0.52, 0.48], "gaussian", 1.0)
    top = chain.support()[1]
    assert chain.atoms[:, 0].max() < 0.5 * top
    assert chain.pointwise(1e-7).top_near(0.99 * top) == pytest.approx(top, rel=1e-3)
    assert calls


def test_atom_on_top_against_sampled_projections(global_seed: int) -> None:
    """Monte Carlo: P O Q O^T P, projections of rank 0.8 M (O Haar): its top eigenvalue is 1,
    repeated 0.6 M times (dim of the two ranges' intersection), which top_near returns
    without an edge search, the atom's mass equal to that fraction; the largest eigenvalue
    below it sits near the continuous part's edge 0.64 (within 4 SE over trials plus its
    finite-M gap, ~ n^(-2/3) of the part's width for its n = 0.2 M eigenvalues). Projections
    of trace 0.8 and 0.7 (a wrong theory) put mass 0.5 at the atom, their edge (0.75)
    outside that."""
    m, trials = 200, 12
    p = np.diag((np.arange(m) < 4 * m // 5).astype(float))
    gen = np.random.default_rng(global_seed)
    law = free_product(bernoulli(0.8), bernoulli(0.8)).pointwise(1e-8)
    below = []
    for _ in range(trials):
        o = haar_orthogonal(m, gen)
        eigs = np.linalg.eigvalsh(p @ o @ p @ o.T @ p)
        at_one = np.abs(eigs - 1.0) < 1e-9
        assert law.top_near(float(eigs[-1])) == pytest.approx(eigs[-1], abs=1e-10)
        assert at_one.mean() == pytest.approx(law.atoms[law.atoms[:, 0] > 0.5, 1][0],
                                              abs=1e-12)
        below.append(eigs[~at_one].max())
    gap = law.top_edge * (0.2 * m) ** (-2 / 3)
    assert_mean_within(np.array(below)[:, None], np.array([law.top_edge]), bias=gap)
    wrong = free_product(bernoulli(0.8), bernoulli(0.7)).pointwise(1e-8)
    assert abs(wrong.atoms[wrong.atoms[:, 0] > 0.5, 1][0] - 0.6) > 0.05
    with pytest.raises(AssertionError):
        assert_mean_within(np.array(below)[:, None], np.array([wrong.top_edge]), bias=gap)


def test_paired_relu_chain_with_atoms_agrees_with_its_certified_quadrature() -> None:
    """A ReLU H_3 chain of sampled two-atom layers: atoms at the shifts (Belinschi, then
    the shift) and a continuous part; cdf on both sides of every atom, and its quantiles
    inside the atoms' jumps are the atoms."""
    layers = [DiscreteLaw.empirical(np.r_[np.zeros(k), 2.0 * np.ones(100 - k)])
              for k in (47, 55)]
    law = fim_dual_chain_law(layers, [1.0, 0.52, 0.48], "gaussian", 1.0)
    law.mass_tol = 1e-9
    pw = law.pointwise(1e-7)
    atoms = law.atoms[:, 0]
    lo, hi = law.support()
    # and one ulp above the base point (the chain's last shift, an atom), where x - base has
    # no digits left: counted as at the base
    x = np.sort(np.concatenate([np.linspace(lo, hi, 97), atoms, atoms - 1e-6, atoms + 1e-6,
                                [np.nextafter(law.base_atom, np.inf)]]))
    np.testing.assert_allclose(pw.cdf(x), law.cdf(x), atol=1e-7)
    np.testing.assert_allclose(pw.partial_mean(x), law.partial_mean(x), atol=1e-7 * hi)
    for a, mass in law.atoms:
        below = float(pw.cdf(np.array([a]))[0]) - mass
        assert pw.quantile(np.array([below + 0.5 * mass]))[0] == pytest.approx(a)


def test_same_points_give_the_same_numbers() -> None:
    """Reproducible: a fresh law gives identical numbers at the same points."""
    x = np.linspace(0.05, 1.2, 50)
    first = _paired("JJT", 128).pointwise(1e-5).cdf(x)
    np.testing.assert_array_equal(first, _paired("JJT", 128).pointwise(1e-5).cdf(x))


def test_a_refined_horizontal_line_reuses_its_kept_panels() -> None:
    """The comb's line solves only the panels a refinement adds (``known``): equal to the
    line solved at once on the final panels to 1e-12 (the walks differ: rounding)."""
    law = _paired("H_L", 128)
    eta = law.scale / 32
    edges = np.linspace(-eta, 1.5 * law.support()[1], 9)
    known: dict = {}
    contour_cdf.horizontal(law, edges, eta, known)
    assert len(known) == 8
    finer = np.sort(np.concatenate([edges, 0.5 * (edges[:-1] + edges[1:])[::3]]))
    reused = contour_cdf.horizontal(law, finer, eta, known)
    assert len(known) == 8 + 2 * 3
    fresh = contour_cdf.horizontal(law, finer, eta)
    x = np.linspace(edges[0], edges[-1], 200)
    for a, b in zip(reused(x), fresh(x), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


def test_legs_from_the_line_equal_legs_from_the_far_field() -> None:
    """The tops of the legs walked from the nearest node of the comb's line give the legs
    of tops solved from the far field (1e-12 of their size)."""
    pw = _paired("H_L", 128).pointwise(1e-5)
    line = pw.comb[0]
    x = np.linspace(0.05, 0.95, 9) * line.edges[-1]
    z0, _ = line.start(x)
    assert np.all(np.abs(z0.real - x) <= np.diff(line.nodes).max())
    near = contour_cdf.legs(pw.solved, x, line.eta, 1e-6, line)
    far = contour_cdf.legs(pw.solved, x, line.eta, 1e-6)
    assert near[2].all() and far[2].all()
    for a, b in zip(near[:2], far[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


class _FarField:
    """Leg bottoms that give no start: every density node of the blocks from the far field
    (the path before the walks from the legs)."""

    def __init__(self, size: int):
        self.size = size

    def add(self, y, low) -> None:
        pass

    def __call__(self, y):
        return np.full(y.size, complex(np.nan, np.nan)), np.zeros((y.size, self.size), complex)


class _WrongStarts:
    """Leg bottoms that start every block's nodes from the leg at the largest point asked:
    on the far side of the support for most blocks."""

    def __init__(self, size: int):
        self.true = blocks.LegBottoms(size)

    def add(self, y, low) -> None:
        self.true.add(y, low)

    def __call__(self, y):
        z, v = self.true(y)
        return np.full(y.size, z[-1]), np.repeat(v[-1:], y.size, axis=0)


def _bulk_points(law, m: int) -> np.ndarray:
    return np.sort(law.quantile((np.arange(m) + 0.5) / m))


def test_block_nodes_walk_from_the_legs_to_the_far_field_values(monkeypatch) -> None:
    """The density nodes of the blocks walk from the lowest node of the leg at the nearer
    end of their block, in at most AXIS_ROUNDS rounds each, where they took ~16 from the
    far field: the cdf and partial mean equal those of far-field nodes (1e-11; the same
    blocks accepted, the nodes' solutions equal to rounding: a walk that fails, crossing an
    edge, does so in a block that fails from the far field too)."""
    law = _paired("H_L", 128)
    x = _bulk_points(law, 256)
    walks = []
    lilypads = blocks.lilypads
    monkeypatch.setattr(blocks, "lilypads", lambda *a, **k: walks.append(
        lilypads(*a, **k)) or walks[-1])
    pw = law.pointwise(1e-5)
    F, P = pw.cdf(x), pw.partial_mean(x)
    assert walks and all(w.rounds <= blocks.AXIS_ROUNDS for w in walks)
    far = law.pointwise(1e-5)
    far._bottoms = _FarField(law.system.size)
    np.testing.assert_allclose(F, far.cdf(x), rtol=0, atol=1e-11)
    np.testing.assert_allclose(P, far.partial_mean(x), rtol=0, atol=1e-11)
    accepted = [sum(len(p[0]) for p in law_._pieces.parts) for law_ in (pw, far)]
    assert accepted[0] == accepted[1] > 0


def test_block_nodes_from_wrong_starts_fail_their_blocks_not_the_cdf() -> None:
    """Nodes started from a leg on the far side of the support either fail their walk
    (their block fails: legs) or reach a solution the block's checks test: the cdf stays
    within its tolerance of the certified quadrature's."""
    law = _paired("H_L", 128)
    law.mass_tol = 1e-8
    x = _bulk_points(law, 256)
    pw = law.pointwise(1e-5)
    pw._bottoms = _WrongStarts(law.system.size)
    np.testing.assert_allclose(pw.cdf(x), law.cdf(x), rtol=0, atol=1e-5)


def test_a_point_in_a_rough_interval_gets_the_block_between_its_legs(monkeypatch) -> None:
    """Where blocks failed down to a leg at every point (an edge), a point asked for later
    gets the block between the two legs around it (:func:`~freeness_lab.theory.density.
    blocks.between_legs`), or its own leg where that block fails -- at most one call of
    ``legs``, for at most the points asked, never the blocks of four and sixteen that
    failed there -- with the value of its own leg within the tolerance."""
    law = _paired("H_L", 128)
    tol = 1e-5
    pw = law.pointwise(tol)
    x = np.sort(pw.quantile(np.linspace(0.002, 0.998, 400)))
    pw.cdf(x)
    rough = pw._pieces.rough
    assert rough
    lo, hi = rough[-1]
    later = np.unique(np.linspace(lo, hi, 7)[1:-1] + pw.shift)
    assert pw._pieces.in_rough(later - pw.shift).all()
    calls, fits = [], []
    legs = pointwise.legs
    monkeypatch.setattr(pointwise, "legs", lambda *a: calls.append(a[1].size) or legs(*a))
    fit = blocks.fit_blocks
    monkeypatch.setattr(blocks, "fit_blocks", lambda *a: fits.append(len(a[2])) or fit(*a))
    F = pw.cdf(later)
    # some from the blocks between their legs (here 2 of 5), the others by legs
    assert len(calls) <= 1 and sum(calls) < later.size
    assert len(fits) == 1
    alone = law.pointwise(tol)
    np.testing.assert_allclose(F, [alone.cdf(np.array([v]))[0] for v in later], rtol=0,
                               atol=tol)


def test_an_unresolved_leg_is_nan_with_a_warning(monkeypatch) -> None:
    """Legs that cannot reach their tolerance (refinement cut to one level) give nan and a
    RuntimeWarning naming how many: never a number that was not converged."""
    monkeypatch.setattr(contour_cdf, "LEG_LEVELS", 1)
    law = _projections().pointwise(1e-12)
    with pytest.warns(RuntimeWarning, match="failed on"):
        F = law.cdf(np.array([1e-6, 0.5, 1 - 1e-6]))
    assert np.isnan(F).any()


def test_a_comb_that_stops_inside_the_support_shows_in_its_mass(monkeypatch) -> None:
    """The comb ends beyond the support bound; a wrong bound (half the true one) leaves mass
    beyond it, and the continuous mass says so (the spectral check turns it into an error)."""
    law = _paired("JJT", 128)
    monkeypatch.setattr(type(law), "support_bound", lambda self: 0.5 * law.support()[1])
    pw = law.pointwise(1e-5)
    assert 1.0 - pw.continuous_mass() - pw.atom_mass > 0.01


def test_a_leg_the_solver_cannot_reach_fails_without_refining_forever(monkeypatch) -> None:
    """Nodes that never converge (nan) would make every panel fail at every level: the leg
    is given up once it holds LEG_PANELS panels, not after 2^LEG_LEVELS."""
    law = _projections()
    calls = []

    def unreachable(law, x, y, z0, v0):
        calls.append(x.size)
        return np.full(x.size, complex(np.nan, np.nan)), np.asarray(v0).copy()

    monkeypatch.setattr(contour_cdf, "solve_from", unreachable)
    _, _, ok = contour_cdf.legs(law, np.array([0.3, 0.6]), 0.05, 1e-8)
    assert not ok.any()
    assert sum(calls) <= 2 * 4 * contour_cdf.LEG_PANELS * contour_cdf.LEG_NODES  # 2 legs


def test_a_top_component_the_scan_misses_is_found_on_the_cdf(monkeypatch) -> None:
    """When no scanned point is inside (a top component narrower than the scan's spacing,
    forced here), the top is where the mass above falls to the tolerance: the cdf bisected,
    no warning, within the resolution of the tolerance of the true edge 1."""
    from freeness_lab.theory.density import pointwise

    monkeypatch.setattr(pointwise, "inside", lambda law, y, res: np.zeros(y.shape, bool))
    law = _projections().pointwise(1e-6)
    law.cdf(np.array([0.5, 0.9]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        top = law.top_edge
    # mass above 1 - d is sqrt(d) / pi here: d <= (pi tol)^2 ~ 1e-11
    assert 1.0 - 1e-9 < top < 1.0 + 1e-6


def test_cdf_against_the_eigenvalues_of_sampled_projections(global_seed: int) -> None:
    """Monte Carlo: P O Q O^T P (projections of rank M/2, O Haar) has the law of two free
    projections; the fraction of its eigenvalues <= x over trials matches the pointwise cdf
    within 4 SE plus 2/M (the ESD's finite-M offset), and the law of projections of trace
    1/2 and 0.6 (a wrong theory) is far outside that."""
    m, trials = 200, 30
    x = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    p = np.diag((np.arange(m) < m // 2).astype(float))
    gen = np.random.default_rng(global_seed)
    fractions = []
    for _ in range(trials):
        o = haar_orthogonal(m, gen)
        eigs = np.linalg.eigvalsh(p @ o @ p @ o.T @ p)
        fractions.append(np.mean(eigs[:, None] <= x, axis=0))
    fractions = np.array(fractions)
    assert_mean_within(fractions, _projections().pointwise(1e-8).cdf(x), bias=2.0 / m)
    wrong = free_product(bernoulli(0.5), bernoulli(0.6)).pointwise(1e-8).cdf(x)
    assert np.max(np.abs(fractions.mean(0) - wrong)) > 0.05
