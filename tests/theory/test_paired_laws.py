"""Paired laws: free products and shift chains whose factors are DiscreteLaw's with many atoms.

A trial's empirical law of D_l^2 (M atoms of mass 1/M) enters the Newton solver as an
implicit factor (no closed-form S). The references: the M-point quantiles of a two-atom law
{0: 1 - p, a: p} *are* that law, whose S is explicit -- as a DiscreteLaw (equal atoms merged:
the explicit two-atom law; its product with delta(s) is the scaled Bernoulli) and as M
unmerged atoms without a closed-form S (:class:`UnmergedLaw`: the solver's path for a law of
M atoms, against the closed form); and for distinct atoms, the moments of the density (support
quadrature) against the exact series moments.
"""

import math

import numpy as np
import pytest
from montecarlo import assert_mean_within
from scipy import integrate

from freeness_lab.simulate.ensembles import haar_orthogonal
from freeness_lab.theory import (
    DiscreteLaw,
    Factor,
    MarchenkoPastur,
    ShiftChainLaw,
    ShiftLayer,
    bernoulli,
    delta,
    free_product,
)

M = 64


def quantiles(p: float, a: float, m: int = M) -> np.ndarray:
    """The m-point quantiles of {0: 1 - p, a: p} (m p of them at a)."""
    k = round(m * p)
    return np.r_[np.zeros(m - k), np.full(k, a)]


class UnmergedLaw(DiscreteLaw):
    """A DiscreteLaw whose atoms are kept as given (equal locations not merged) and that
    claims no explicit S: the Newton solver keeps a subordination unknown summed over all
    its rows, as for M distinct atoms."""

    def __init__(self, locations: np.ndarray, masses: np.ndarray):
        self.atoms = np.column_stack([locations, masses])

    log_s_terms = None


def quantile_law(p: float, a: float, m: int = M) -> UnmergedLaw:
    """The m-point quantiles of {0: 1 - p, a: p} as m unmerged atoms of mass 1/m."""
    return UnmergedLaw(quantiles(p, a, m), np.full(m, 1.0 / m))


def spread_law(seed: int, m: int = M) -> DiscreteLaw:
    """m distinct atoms in [0.2, 1] of mass 1/m (like a sampled phi'(h)^2 of tanh)."""
    return DiscreteLaw(np.random.default_rng(seed).uniform(0.2, 1.0, m), np.full(m, 1.0 / m))


def test_quantile_law_times_delta_is_scaled_bernoulli():
    """{0: 1/4, 2: 3/4} as 64 atoms of a DiscreteLaw (merged to two), times delta(1.5): the
    atoms {0: 1/4, 3: 3/4}, no continuous part."""
    d = DiscreteLaw(quantiles(0.75, 2.0), np.full(M, 1.0 / M))
    np.testing.assert_allclose(d.atoms, [[0.0, 0.25], [2.0, 0.75]], rtol=0, atol=1e-15)
    law = free_product(d, delta(1.5))
    np.testing.assert_allclose(law.atoms, [[0.0, 0.25], [3.0, 0.75]], rtol=0, atol=1e-14)
    x = np.array([-1.0, 0.0, 1.0, 2.9, 3.0, 4.0])
    np.testing.assert_allclose(law.cdf(x), [0, 0.25, 0.25, 0.25, 1, 1], atol=1e-12)


def test_free_product_of_quantile_laws_matches_closed_form():
    """Two free projections as 64 atoms each (implicit factors) against the same product of
    the two-atom laws (explicit S): cdf and density agree to 1e-9, and the mass is 1."""
    paired = free_product(quantile_law(0.5, 1.0), quantile_law(0.75, 2.0))
    exact = free_product(bernoulli(0.5), bernoulli(0.75, 2.0))
    np.testing.assert_allclose(paired.atoms, exact.atoms, atol=1e-14)
    np.testing.assert_allclose(paired.intervals(), exact.intervals(), rtol=1e-10)
    x = np.linspace(0.0, 2.2, 91)
    np.testing.assert_allclose(paired.cdf(x), exact.cdf(x), atol=1e-9)
    np.testing.assert_allclose(paired.density(x[1:-1]), exact.density(x[1:-1]), rtol=1e-9,
                               atol=1e-9)
    assert abs(paired.continuous_mass() + paired.atom_mass - 1.0) < 1e-9


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_paired_jacobian_law_density_moments(weights):
    """J J^T of a depth-3 paired law (three laws of 64 distinct atoms, three weight laws):
    the moments of its density equal the series moments to 1e-8, mass 1 to 1e-9, and the
    quantiles invert the cdf."""
    w = delta(1.21) if weights == "orthogonal" else MarchenkoPastur(1.0, 1.21)
    law = free_product(*(spread_law(s) for s in range(3)), w, w, w)
    np.testing.assert_allclose(law.density_moments(4), law.moments(4), rtol=1e-8)
    assert abs(law.continuous_mass() + law.atom_mass - 1.0) < 1e-9
    p = np.linspace(0.1, 0.9, 9)
    np.testing.assert_allclose(law.cdf(law.quantile(p)), p, atol=1e-9)


def test_shift_chain_of_quantile_laws_matches_closed_form():
    """A two-layer shift chain whose layers hold a 64-atom quantile law against the chain of
    the two-atom laws (explicit S): cdf agrees to 1e-9."""
    def chain(first, second):
        return ShiftChainLaw(0.8, [ShiftLayer((Factor(first), Factor(delta(1.5))), 0.3),
                                   ShiftLayer((Factor(second), Factor(delta(1.5))), 0.2)])

    paired = chain(quantile_law(0.75, 1.0), quantile_law(0.5, 0.8))
    exact = chain(bernoulli(0.75), bernoulli(0.5, 0.8))
    np.testing.assert_allclose(paired.intervals(), exact.intervals(), rtol=1e-10)
    lo, hi = exact.support()
    x = np.linspace(lo - 0.1, hi + 0.1, 91)
    np.testing.assert_allclose(paired.cdf(x), exact.cdf(x), atol=1e-9)


def test_shift_chain_of_spread_laws_density_moments():
    """H_L-shaped chain of 64-atom laws (Gaussian weights): density moments equal the series
    moments to 1e-8, mass 1 to 1e-9."""
    w = MarchenkoPastur(1.0, 1.21)
    law = ShiftChainLaw(0.8, [ShiftLayer((Factor(spread_law(l)), Factor(w)), q)
                              for l, q in ((0, 0.3), (1, 0.25))])
    np.testing.assert_allclose(law.density_moments(4), law.moments(4), rtol=1e-8)
    assert abs(law.continuous_mass() + law.atom_mass - 1.0) < 1e-9


def test_partial_mean_of_the_free_product_of_two_projections() -> None:
    """E[X; X <= x] of Bernoulli(a) boxtimes Bernoulli(b) (the law of PQP: atoms at 0 and 1,
    density sqrt((l+ - t)(t - l-)) / (2 pi t (1 - t)) on [l-, l+]) against the closed form
    integrated by quadrature; at the top of the support it is the mean a b."""
    a, b = 0.7, 0.45
    law = free_product(bernoulli(a), bernoulli(b))
    mid, half = a + b - 2 * a * b, math.sqrt(4 * a * b * (1 - a) * (1 - b))
    lo, hi = mid - half, mid + half

    def t_rho(t: float) -> float:
        return t * math.sqrt(max((hi - t) * (t - lo), 0.0)) / (2 * math.pi * t * (1 - t))

    for x in (lo + 0.1 * (hi - lo), 0.5 * (lo + hi), hi - 1e-3, 1.0):
        exact = integrate.quad(t_rho, lo, min(x, hi), epsabs=1e-13, limit=200)[0]
        exact += max(a + b - 1, 0.0) * (x >= 1.0)  # the atom at 1
        assert law.partial_mean(np.array([x]))[0] == pytest.approx(exact, abs=1e-9)
    assert law.partial_mean(np.array([np.inf]))[0] == pytest.approx(a * b, rel=1e-12)
    assert law.partial_mean(np.array([-1.0, np.nan]))[0] == 0.0


def test_partial_mean_against_monte_carlo_of_pqp(global_seed: int) -> None:
    """The same law sampled: P, Q projections of ranks a M, b M, Q rotated by a Haar
    orthogonal O; the per-trial (1/M) sum_i lambda_i 1{lambda_i <= x} of P O Q O^T P against
    partial_mean(x), within 4 SE plus 2 x / M (a finite-M allowance: rigidity moves the
    count of eigenvalues below x by O(1) of the M)."""
    a, b, m, trials = 0.7, 0.45, 200, 40
    law = free_product(bernoulli(a), bernoulli(b))
    x = np.array([0.2, 0.4, 0.6, 1.0])
    gen = np.random.default_rng(global_seed)
    p = np.diag((np.arange(m) < a * m).astype(float))
    q = np.diag((np.arange(m) < b * m).astype(float))
    samples = []
    for _ in range(trials):
        o = haar_orthogonal(m, gen)
        eigs = np.linalg.eigvalsh(p @ o @ q @ o.T @ p)
        samples.append([(eigs * (eigs <= t + 1e-9)).sum() / m for t in x])
    assert_mean_within(np.array(samples), law.partial_mean(x), bias=2 * x / m)
