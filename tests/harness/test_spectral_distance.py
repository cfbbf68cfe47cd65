"""Exact Kolmogorov and Wasserstein-1 distances of an ESD to a law
(:mod:`freeness_lab.harness.spectral_distance`), against independent computations: scipy's
one- and two-sample statistics, a dense grid, and a closed-form law with atoms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from freeness_lab import NetworkSpec
from freeness_lab.harness.spectral_distance import compare, noise_floor
from freeness_lab.harness.spectral_references import paired_law
from freeness_lab.simulate import sample_network
from freeness_lab.theory import DiscreteLaw, bernoulli, delta, free_product, jacobian_law


def _grid_distances(eigs: np.ndarray, law, floor: float, n: int = 400_001
                    ) -> tuple[float, float]:
    """Brute force: sup and trapezoid integral of |F_n - F| on a dense grid from the floor,
    the eigenvalues and their left neighbours (1e-12 below) added to the grid."""
    x = np.sort(eigs)
    hi = max(x[-1], law.support()[1]) * 1.02
    pts = x[x >= floor]
    g = np.unique(np.concatenate([np.linspace(floor, hi, n), pts, pts * (1 - 1e-12)]))
    g = g[g >= floor]
    gap = np.abs(np.searchsorted(x, g, side="right") / x.size - law.cdf(g))
    return float(gap.max()), float(integrate.trapezoid(gap, g))


def test_two_discrete_laws_match_scipy_two_sample_statistics() -> None:
    gen = np.random.default_rng(0)
    eigs = gen.gamma(2.0, size=300)
    sample = gen.gamma(2.2, size=2400)
    c = compare(eigs, DiscreteLaw.empirical(sample), floor=0.0)
    assert c.kolmogorov == pytest.approx(stats.ks_2samp(eigs, sample).statistic, abs=1e-14)
    assert c.wasserstein1 == pytest.approx(stats.wasserstein_distance(eigs, sample), rel=1e-12)


def test_ties_and_shared_atoms_match_scipy() -> None:
    """Repeated values on both sides: the one-sided limits at the atoms."""
    eigs = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 2.5, 4.0])
    sample = np.array([0.0, 1.0, 1.0, 2.0, 2.5, 2.5, 3.0, 5.0])
    c = compare(eigs, DiscreteLaw.empirical(sample), floor=0.0)
    assert c.kolmogorov == pytest.approx(stats.ks_2samp(eigs, sample).statistic, abs=1e-14)
    assert c.wasserstein1 == pytest.approx(stats.wasserstein_distance(eigs, sample), rel=1e-12)


def test_continuous_law_matches_scipy_kstest_and_a_dense_grid() -> None:
    """tanh network, J J^T limit law (no atom): scipy's one-sample KS; W1 on a dense grid."""
    spec = NetworkSpec("tanh", "orthogonal", depth=2, width=150, sigma_w=1.1, sigma_b=0.05)
    eigs = sample_network(spec, np.random.default_rng(1)).jacobian_spectrum()
    law = jacobian_law(spec)
    assert not len(law.atoms)
    c = compare(eigs, law, floor=0.0)
    assert c.kolmogorov == pytest.approx(stats.kstest(eigs, law.cdf).statistic, abs=1e-9)
    _, w1 = _grid_distances(eigs, law, 0.0)
    assert c.wasserstein1 == pytest.approx(w1, rel=1e-5)


def test_law_with_atoms_and_floor_matches_a_dense_grid() -> None:
    """ReLU J J^T: an atom of mass 1/2 at 0 (below the floor) -- the fraction below the
    floor is compared with F(floor) -- and a free product with an atom above the floor."""
    spec = NetworkSpec("relu", "orthogonal", depth=3, width=200, sigma_w=2**0.5)
    eigs = sample_network(spec, np.random.default_rng(2)).jacobian_spectrum()
    law = jacobian_law(spec)
    floor = noise_floor(eigs, 200, 3)
    c = compare(eigs, law, floor)
    d_k, w1 = _grid_distances(eigs, law, floor)
    assert c.kolmogorov == pytest.approx(d_k, abs=1e-9)
    assert c.wasserstein1 == pytest.approx(w1, rel=1e-5)
    (loc, frac, mass), = c.atoms
    assert loc == 0 and mass == pytest.approx(0.5) and frac == c.below_floor[0]
    # without the floor the computed zeros (~1e-17) sit left of the atom: d_K ~ its mass
    assert compare(eigs, law, 0.0).kolmogorov > 0.4 > c.kolmogorov

    # an atom at 2 (Bernoulli(0.7) boxtimes Bernoulli(0.6), scaled: mass 0.3 at 2)
    law2 = free_product(bernoulli(0.7, 1.0), bernoulli(0.6, 1.0), delta(2.0))
    assert np.any(np.isclose(law2.atoms[:, 0], 2.0))
    gen = np.random.default_rng(3)
    sample = np.concatenate([np.full(90, 2.0) + 1e-15, gen.uniform(0.01, 2.0, 210)])
    c2 = compare(sample, law2, 1e-12)
    d_k2, w12 = _grid_distances(np.where(np.abs(sample - 2.0) < 1e-12, 2.0, sample), law2,
                                1e-12)
    assert c2.kolmogorov == pytest.approx(d_k2, abs=1e-9)
    assert c2.wasserstein1 == pytest.approx(w12, rel=1e-5)
    at2 = [a for a in c2.atoms if a[0] == pytest.approx(2.0)]
    assert at2 and at2[0][1] == pytest.approx(0.3) and at2[0][2] == pytest.approx(0.3)


class _Located:
    """A law without its ``tol``: every crossing of the Wasserstein sum located."""

    def __init__(self, law):
        self.inner = law

    def __getattr__(self, name: str):
        if name == "tol":
            raise AttributeError(name)
        return getattr(self.inner, name)


@pytest.mark.parametrize("matrix", ["JJT", "H_L"])
def test_bounded_crossings_keep_w1_within_their_budget(matrix: str, monkeypatch) -> None:
    """A paired law computed to tol (tanh, orthogonal, M = 256): the crossings of F_n and F
    whose bounds are tightest are taken at the middle of their bounds, not located; W_1 then
    stays within tol (t_last - t_0) / 4 of W_1 with every crossing located, and fewer
    quantiles are asked for."""
    spec = NetworkSpec("tanh", "orthogonal", depth=3, width=256, sigma_w=1.1, sigma_b=0.05)
    net = sample_network(spec, np.random.default_rng(4))
    eigs = net.jacobian_spectrum() if matrix == "JJT" else net.fim_dual_spectrum(False)
    law = paired_law(net, matrix, False)
    floor = noise_floor(eigs, 256, 3)
    asked = []
    quantile = type(law).quantile
    monkeypatch.setattr(type(law), "quantile",
                        lambda self, p: asked.append(np.size(p)) or quantile(self, p))
    bounded = compare(eigs, law, floor, levels=(), top=False)
    n_bounded = sum(asked)
    located = compare(eigs, _Located(law), floor, levels=(), top=False)
    span = eigs.max() - floor
    assert abs(bounded.wasserstein1 - located.wasserstein1) <= law.tol * span / 4
    assert n_bounded < sum(asked) - n_bounded


def test_quantiles_and_top_edge() -> None:
    law = DiscreteLaw.empirical(np.arange(1.0, 11.0))
    c = compare(np.arange(1.0, 11.0), law, floor=0.0)
    assert c.kolmogorov == pytest.approx(0.0, abs=1e-14)
    assert c.wasserstein1 == pytest.approx(0.0, abs=1e-13)
    for p, esd_q, law_q in c.quantiles:
        assert esd_q == law_q == np.ceil(10 * p - 1e-12)
    assert c.top == (10.0, 10.0)


def test_bad_eigenvalues_are_refused() -> None:
    with pytest.raises(ValueError, match="eigenvalues"):
        compare(np.array([1.0, np.nan]), delta(1.0), 0.0)
    with pytest.raises(ValueError, match="eigenvalues"):
        compare(np.array([]), delta(1.0), 0.0)
