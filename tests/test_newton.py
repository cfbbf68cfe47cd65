"""The Newton lilypads solver: densities against exact series moments, convergence reports,
robustness (no hang, every point converged)."""

import warnings

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.theory import fim_dual_law, jacobian_law
from freeness_lab.theory.newton import lilypads

GAINS = {"relu": 2**0.5, "hard_tanh": 1.0, "tanh": 1.0, "erf": 1.0, "sigmoid": 1.0}


def _spec(act, weights, depth, **kw):
    sigma_b = 0.0 if act == "relu" else 0.1
    return NetworkSpec(act, weights, depth=depth, width=1, sigma_w=GAINS[act], sigma_b=sigma_b,
                       **kw)


def _cases():
    for act in ("relu", "hard_tanh", "tanh", "erf", "sigmoid"):
        for weights in ("orthogonal", "gaussian"):
            for depth in (1, 3, 10, 50):
                if act == "sigmoid" and weights == "gaussian":
                    continue
                marks = []
                smooth_orthogonal = act in ("tanh", "erf", "sigmoid") and weights == "orthogonal"
                if smooth_orthogonal and (depth >= 10 or act == "erf"):
                    # many distinct contour-rule D^2 laws (SmoothD2Law): 15-90 s each
                    marks.append(pytest.mark.slow)
                yield pytest.param(act, weights, depth, marks=marks,
                                   id=f"{act}-{weights}-{depth}")


@pytest.mark.parametrize("act, weights, depth", _cases())
def test_density_reproduces_exact_moments(act, weights, depth):
    """int rho = 1 - atom mass, rho >= 0, and m_1..m_3 of density + atoms equal the series
    moments to 1e-6 relative (the two are computed independently: series reversion vs the
    Newton solver on the support quadrature)."""
    law = jacobian_law(_spec(act, weights, depth))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a non-converged point would warn
        x, w, rho = law.quadrature()
    assert np.all(np.isfinite(rho))
    if len(rho):
        assert rho.min() >= -1e-10 * rho.max()
    np.testing.assert_allclose(law.continuous_mass(), 1.0 - law.atom_mass, atol=1e-6)
    np.testing.assert_allclose(law.density_moments(3), law.moments(3), rtol=1e-6)


def test_solver_refuses_to_claim_convergence():
    # eps = 0 exactly on the atom of an orthogonal hard-tanh network at sigma_w^(2L) = 1
    law = jacobian_law(_spec("hard_tanh", "orthogonal", 3))
    assert np.any(law.atoms[:, 0] == 1.0)
    res = law.solve(np.array([1.0, 0.5]), eps=0.0)
    assert not res.converged[0] and np.isnan(res.cauchy[0])
    assert res.converged[1]
    # a budget of one homotopy round cannot reach the axis from the far field
    res = lilypads(law._system, np.array([0.5]), 1e-10, y_start=10.0, max_rounds=1)
    assert not res.converged[0]
    with pytest.warns(RuntimeWarning, match="did not converge"):
        assert np.isnan(law.cauchy(np.array([1.0 + 0j])))[0]


def test_cauchy_far_field_matches_series():
    law = jacobian_law(_spec("tanh", "gaussian", 4))
    zeta = np.array([40.0 + 30j, -25.0 + 5j, 3.0 + 60j])
    m = law.moments(30)
    series = (1 + np.polynomial.polynomial.polyval(1 / zeta, np.concatenate([[0], m]))) / zeta
    np.testing.assert_allclose(law.cauchy(zeta), series, rtol=1e-11)


def test_chaining_agrees_with_independent_points():
    law = jacobian_law(_spec("relu", "gaussian", 5))
    x = np.linspace(0.01, law.support()[1] * 0.999, 300)
    chained = law.solve(x)
    single = law.solve(x, chain=False)
    assert chained.converged.all() and single.converged.all()
    np.testing.assert_allclose(chained.cauchy, single.cauchy, rtol=1e-9)


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_robust_over_depths_and_gains(weights):
    """Deep, high-gain ReLU networks (where the reference code never returns): every point of
    a grid spanning the support converges, within the iteration caps."""
    for depth in (10, 200):
        for gain2 in (1.5, 2.0, 3.0):
            law = jacobian_law(NetworkSpec("relu", weights, depth=depth, width=1,
                                           sigma_w=gain2**0.5))
            hi = law.scale * 10.0
            x = np.geomspace(1e-12 * hi, hi, 200)
            res = law.solve(x)
            assert res.converged.all(), (depth, gain2)


@pytest.mark.parametrize("act, weights, depth", [
    ("relu", "gaussian", 4), ("relu", "orthogonal", 3), ("relu", "orthogonal", 4),
    ("hard_tanh", "orthogonal", 3), ("hard_tanh", "orthogonal", 5), ("hard_tanh", "gaussian", 3),
    ("tanh", "orthogonal", 4), ("tanh", "gaussian", 4)])
def test_fim_density_reproduces_exact_moments(act, weights, depth):
    """H_L (shift chain): int rho = 1 - atom mass, rho >= 0, m_1..m_3 of density + atoms equal
    the series moments to 1e-6 relative. Orthogonal ReLU / hard tanh put inverse square-root
    edges (free projections) and atoms inside the support."""
    law = fim_dual_law(_spec(act, weights, depth))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, rho = law.quadrature()
    assert np.all(np.isfinite(rho)) and rho.min() >= -1e-10 * rho.max()
    np.testing.assert_allclose(law.continuous_mass(), 1.0 - law.atom_mass, atol=1e-6)
    np.testing.assert_allclose(law.density_moments(3), law.moments(3), rtol=1e-6)
