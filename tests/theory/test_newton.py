"""The Newton lilypads solver: densities against exact series moments, convergence reports,
robustness (no hang, every point converged)."""

import warnings

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.theory import d2_law, fim_dual_law, jacobian_law
from freeness_lab.theory.laws import d2_factor
from freeness_lab.theory.newton import (
    LogZetaSystem,
    QuadratureRule,
    from_either,
    lilypads,
    psi_quadrature,
)
from freeness_lab.theory.newton.quadrature_rule import LAZY_PAIRS

GAINS = {"relu": 2**0.5, "hard_tanh": 1.0, "tanh": 1.0, "erf": 1.0, "sigmoid": 1.0,
         "silu": 1.6, "gelu": 1.6}


def _spec(act, weights, depth, **kw):
    sigma_b = 0.0 if act == "relu" else 0.1
    return NetworkSpec(act, weights, depth=depth, width=1, sigma_w=GAINS[act], sigma_b=sigma_b,
                       **kw)


def _cases():
    """The issue's activations (ReLU, hard tanh, tanh, erf) in both ensembles at depths 1, 3,
    10, 50; sigmoid too (with Gaussian weights and sigma_w = 1 the law shrinks like 16^-L: its
    scale is 1e-61 at depth 50); SiLU and GELU at sigma_w = 1.6 (q^l grows without bound,
    phi' has a zero, and the mass below 1e-300 is recovered in log zeta: 6e-5 of it for SiLU
    at depth 10). At depth 50 their last 20 layers put 10-50 % of their mass at
    phi'^2 < 1e-230, an atom at 0 (``theory/laws/d2_ends.py``), and the product's continuous
    part reaches x ~ e^-5000 (``theory/density/deep.py``): those four cases take 8-28 s each
    (they were ``slow``, 2.5-6.5 minutes each, until the solver's fixed costs came down)."""
    for act in ("relu", "hard_tanh", "tanh", "erf", "sigmoid", "silu", "gelu"):
        for weights in ("orthogonal", "gaussian"):
            for depth in (1, 3, 10, 50):
                yield pytest.param(act, weights, depth, id=f"{act}-{weights}-{depth}")


@pytest.mark.parametrize("act, weights, depth", list(_cases()))
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
    res = lilypads(law.system, np.array([0.5]), 1e-10, y_start=10.0, max_rounds=1)
    assert not res.converged[0]
    with pytest.warns(RuntimeWarning, match="did not converge"):
        assert np.isnan(law.cauchy(np.array([1.0 + 0j])))[0]


@pytest.mark.parametrize("act, weights", [("silu", "gaussian"), ("tanh", "orthogonal")])
def test_log_zeta_solver_matches_plain(act, weights):
    """The solver in ell = log zeta (used below 1e-300) gives zeta G(zeta) equal to the
    plain solver's at representable points, near 0 and in the bulk, walking from one start
    straight in log zeta over up to 600 units of log x."""
    law = jacobian_law(_spec(act, weights, 3))
    x = np.geomspace(1e-250, law.scale, 40)
    plain = law.solve(x, chain=False)
    assert plain.converged.all()
    ell = np.log(plain.zeta)
    start = (np.full(x.shape, ell[-1]), np.tile(plain.unknowns[-1], (x.size, 1)))
    deep = lilypads(LogZetaSystem(law.system), ell.real, ell.imag, y_start=1.0,
                    start=start, log_zeta=True)
    assert deep.converged.all()
    np.testing.assert_allclose(deep.cauchy, plain.zeta * plain.cauchy, rtol=1e-9)
    with pytest.raises(ValueError, match="log_zeta"):
        lilypads(LogZetaSystem(law.system), ell.real, ell.imag, y_start=1.0, log_zeta=True)


def test_solver_runs_with_one_blas_thread():
    """lilypads pins BLAS to one thread (its products are small; a second thread only
    synchronizes), and gives it back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    law = jacobian_law(_spec("tanh", "gaussian", 3))
    system = law.system
    seen = []

    class Recording:
        """The law's system, recording the BLAS threads at every Newton step."""

        def __getattr__(self, name):
            return getattr(system, name)

        def newton_step(self, *args, **kwargs):
            seen.append(max(i["num_threads"] for i in threadpool_info()
                            if i["user_api"] == "blas"))
            return system.newton_step(*args, **kwargs)

    with threadpool_limits(limits=2, user_api="blas"):
        res = lilypads(Recording(), np.array([0.3, 0.7]), 1e-3, y_start=8 * law.scale)
        after = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    assert res.converged.all() and seen and set(seen) == {1}
    assert after == 2


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


@pytest.mark.parametrize("act, weights", [("tanh", "orthogonal"), ("silu", "gaussian"),
                                          ("relu", "gaussian")])
def test_lower_tail_chains_and_agrees_with_independent_points(act, weights):
    """In a product law's lower tail the grid chains over factors up to DEEP_REACH (a
    geometric grid of ratio 1.6 over 200 decades): few points come down from the far field,
    and G equals the independent solves'."""
    law = jacobian_law(_spec(act, weights, 3))
    system, points = law.system, [0]

    class Counting:
        """The law's system, counting the points of every Newton step."""

        def __getattr__(self, name):
            return getattr(system, name)

        def newton_step(self, v, *args, **kwargs):
            points[0] += v.shape[0]
            return system.newton_step(v, *args, **kwargs)

    law.__dict__["system"] = Counting()
    x = np.geomspace(1e-300, 1e-100, 1000)
    chained = law.solve(x)
    work, points[0] = points[0], 0
    single = law.solve(x, chain=False)
    assert chained.converged.all() and single.converged.all()
    np.testing.assert_allclose(chained.cauchy, single.cauchy, rtol=1e-9)
    # the walks from the far field (~100 Newton steps each) are the independent solves'
    # cost; chained, most points take a few steps from a neighbour
    assert work < 0.25 * points[0]


def test_lower_tail_starts_from_a_ladder_down_the_imaginary_axis(monkeypatch):
    """The far-field pass's points of the lower tail start from a ladder of solutions at
    i y, LADDER_RATIO apart, each walked from the one above (the far-field walks all come
    down the imaginary axis): its rungs are the independent solves there, the grid's points
    the independent solves' (the far-field walk of every coarse point is gone: most of the
    tail's cost); where a rung's walk fails the ladder ends, and the points below it come
    down from the far field, as before."""
    from freeness_lab.theory.density import chaining

    law = jacobian_law(_spec("erf", "orthogonal", 3))
    heights, v = chaining.ladder(law, 1e-100, 1e-300)
    assert heights[0] == 1e-100 and heights[-2] > 1e-300 >= heights[-1]
    np.testing.assert_allclose(heights[:-1] / heights[1:], chaining.LADDER_RATIO, rtol=1e-12)
    rungs = law.solve(np.zeros(len(heights)), heights, chain=False)
    assert rungs.converged.all()
    np.testing.assert_allclose(v, rungs.unknowns, rtol=0, atol=1e-10)
    x = np.geomspace(1e-300, 1e-100, 1000)
    single = law.solve(x, chain=False)
    original, far = chaining.lilypads, []

    def counting(system, x, eps, **kwargs):
        if kwargs.get("start") is None and len(x) > 1:
            far.append(len(x))
        return original(system, x, eps, **kwargs)
    monkeypatch.setattr(chaining, "lilypads", counting)
    chained = law.solve(x)
    assert chained.converged.all() and not far
    np.testing.assert_allclose(chained.cauchy, single.cauchy, rtol=1e-9)

    def failing(system, x, eps, **kwargs):  # the ladder's walk to 1e-180 fails
        r = counting(system, x, eps, **kwargs)
        if len(x) == 1 and x[0] == 0 and 1e-181 < eps[0] < 1e-179:
            r.converged[:] = False
        return r
    monkeypatch.setattr(chaining, "lilypads", failing)
    cut = chaining.ladder(law, 1e-100, 1e-300)[0]
    assert cut[-1] > 1e-180
    fallback = law.solve(x)
    assert fallback.converged.all() and far  # below the ladder: from the far field
    np.testing.assert_allclose(fallback.cauchy, single.cauchy, rtol=1e-9)


def test_partner_walk_stops_when_its_partner_arrives():
    """Two walks to one target (as in the support's bisection): with ``partner`` the longer
    one stops, reported not converged, once the shorter has arrived; the arrival is the same
    solution as without partners, in fewer rounds."""
    law = jacobian_law(_spec("tanh", "gaussian", 3))
    top = law.support()[1]
    starts = law.solve(np.array([0.49 * top, 0.5 * top]), np.array([1e-3, 10.0 * top]),
                       chain=False)
    x = np.full(2, 0.5 * top)
    z0, v0 = starts.zeta, starts.unknowns
    alone = lilypads(law.system, x, 1e-3, y_start=1.0, start=(z0, v0))
    paired = lilypads(law.system, x, 1e-3, y_start=1.0, start=(z0, v0),
                      partner=np.array([1, 0]))
    assert alone.converged.all()
    assert paired.converged.tolist() == [True, False]
    assert paired.cauchy[0] == alone.cauchy[0] and np.isnan(paired.cauchy[1])
    assert paired.rounds < alone.rounds


def test_chained_solve_without_retries():
    """retries=False skips the far field's two other starting heights: fewer evaluations,
    the same values wherever a point converged, and failed points reported as such."""
    law = jacobian_law(_spec("tanh", "gaussian", 3))
    x = np.linspace(0.05, 0.9 * law.support()[1], 200)
    with_retries = law.solve(x, max_rounds=4)
    without = law.solve(x, max_rounds=4, retries=False)
    assert not without.converged.all()
    assert without.evaluations < with_retries.evaluations
    assert np.all(with_retries.converged[without.converged])
    both = without.converged
    np.testing.assert_array_equal(without.cauchy[both], with_retries.cauchy[both])
    assert np.all(np.isnan(without.cauchy[~without.converged]))


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


def _fim_cases():
    yield from [("relu", "gaussian", 4), ("relu", "orthogonal", 3), ("relu", "orthogonal", 4),
                ("hard_tanh", "orthogonal", 3), ("hard_tanh", "orthogonal", 5),
                ("hard_tanh", "gaussian", 3), ("tanh", "orthogonal", 4), ("tanh", "gaussian", 4),
                ("erf", "gaussian", 3), ("sigmoid", "orthogonal", 3), ("sigmoid", "gaussian", 3),
                ("silu", "gaussian", 3), ("erf", "orthogonal", 3), ("silu", "orthogonal", 3),
                ("gelu", "orthogonal", 3)]
    for act in ("tanh", "erf", "sigmoid", "silu", "gelu"):  # depth 2: a shifted free product
        for weights in ("orthogonal", "gaussian"):
            yield pytest.param(act, weights, 2, id=f"{act}-{weights}-2")


@pytest.mark.parametrize("act, weights, depth", list(_fim_cases()))
def test_fim_density_reproduces_exact_moments(act, weights, depth):
    """H_L (shift chain; depth 2: a shifted free product): int rho = 1 - atom mass,
    rho >= 0, m_1..m_3 of density + atoms equal the series moments to 1e-6 relative.
    Orthogonal ReLU / hard tanh put inverse square-root edges (free projections) and atoms
    inside the support; orthogonal smooth phi at depth 2 is a shifted push-forward law,
    singular at the stationary values of phi'^2, and at depth 3 bends sharply at their
    products with H_2's singular points (GELU's H_3 also has 1.3e-3 of its mass within
    1e-11 of its base: integrated in log(zeta - base))."""
    law = fim_dual_law(_spec(act, weights, depth))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, rho = law.quadrature()
    assert np.all(np.isfinite(rho)) and rho.min() >= -1e-10 * rho.max()
    np.testing.assert_allclose(law.continuous_mass(), 1.0 - law.atom_mass, atol=1e-6)
    np.testing.assert_allclose(law.density_moments(3), law.moments(3), rtol=1e-6)


@pytest.mark.parametrize("act, q", [("tanh", 1.0), ("erf", 3.0), ("gelu", 1.0)])
def test_clustered_rule_equals_direct_summation(act, q):
    """QuadratureRule (Laurent series of far clusters) against direct summation of the
    contour rule: psi, 1 + psi and omega psi' to 1e-12 relative, for zeta = 1/omega on and near
    the support (down to Im zeta = 1e-15) and far from it (|zeta| from 1e-30 to 100)."""
    nu = d2_factor(d2_law(act, q))
    rule = QuadratureRule(nu.nodes, nu.weights)
    assert rule.clustered
    rng = np.random.default_rng(5)
    top = nu.support()[1]
    zeta = np.concatenate([
        rng.uniform(-0.1, 1.1, 300) * top + 1j * top * 10.0 ** rng.uniform(-15, 0, 300),
        10.0 ** rng.uniform(-30, 2, 300) * np.exp(1j * rng.uniform(0, np.pi, 300))])
    direct = psi_quadrature(nu.nodes, nu.weights, 1.0 / zeta)
    for fast, ref in zip(rule.psi_parts(1.0 / zeta), direct, strict=True):
        np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=0)
    assert rule.tables_built


def test_rule_builds_its_tables_for_a_large_batch_only():
    """A batch of at most LAZY_PAIRS (point, node) pairs is summed directly, the same before
    and after the cluster tables exist; the first larger batch builds them."""
    nu = d2_factor(d2_law("gelu", 1.0))
    rule = QuadratureRule(nu.nodes, nu.weights)
    few = 1.0 / (np.array([0.3, 0.7]) * nu.support()[1] + 1e-3j)
    many = 1.0 / np.linspace(0.01, 1.0, 400) / nu.support()[1] * (1.0 + 0.01j)
    assert few.size * nu.nodes.size <= LAZY_PAIRS < many.size * nu.nodes.size
    first = rule.psi_parts(few)
    assert rule.clustered and not rule.tables_built
    for a, b in zip(first, psi_quadrature(nu.nodes, nu.weights, few), strict=True):
        np.testing.assert_array_equal(a, b)
    for fast, ref in zip(rule.psi_parts(many), psi_quadrature(nu.nodes, nu.weights, many),
                         strict=True):
        np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=0)
    assert rule.tables_built
    for a, b in zip(rule.psi_parts(few), first, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_walk_from_either_of_two_starts():
    """``from_either``: each target is walked from two starts at once; where one start
    cannot walk (here its unknowns are not a solution's: off the branch), the other's
    walk gives the point's solution, equal to a solve from the far field (1e-10), whichever
    of the two it is."""
    law = jacobian_law(_spec("tanh", "orthogonal", 3))
    lo, hi = law.support()
    x = lo + (hi - lo) * np.array([0.3, 0.5, 0.7])
    eps = 1e-3 * (hi - lo)
    ref = law.solve(x, np.full(3, eps), chain=False)
    near = law.solve(x * 1.01, np.full(3, eps), chain=False)
    z0 = x * 1.01 + 1j * eps
    broken = (z0, np.full_like(near.unknowns, np.nan))
    for first, second in ((broken, (z0, near.unknowns)), ((z0, near.unknowns), broken)):
        v, conv = from_either(law.system, x, eps, first, second, y_start=law.y_start(x))
        assert conv.all()
        np.testing.assert_allclose(v, ref.unknowns, rtol=0, atol=1e-10)
