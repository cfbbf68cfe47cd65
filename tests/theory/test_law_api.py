"""The public law interface on bad input (issue 11, item 8): one contract for every law object.

Every law reachable from ``freeness_lab.theory`` -- the building blocks, the solved free
products, the shifted and shift-chain laws that ``jacobian_law`` / ``fim_dual_law`` return --
answers a bad argument the same way (``SpectralLaw``'s docstring): ``moments(n)`` with n not an
integer >= 1 is a ValueError naming ``n``; NaN in ``density`` / ``cdf`` / ``quantile`` /
``cauchy`` gives NaN out, elementwise, with no exception and no warning; a probability outside
[0, 1] is a ValueError naming ``p``; the density is exactly 0 outside the support; the cdf lies
in [0, 1] and is non-decreasing; a capability a law lacks is ``TheoryUnavailable`` whatever the
argument; the limit-law entry points name ``spec`` when it is not a NetworkSpec.
"""

import functools
import warnings

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.theory import (
    DiscreteLaw,
    Factor,
    MarchenkoPastur,
    ShiftChainLaw,
    ShiftLayer,
    TheoryUnavailable,
    bernoulli,
    d2_factor,
    d2_law,
    delta,
    fim_dual_law,
    fim_dual_mean_variance,
    free_product,
    jacobian_law,
)

#: name -> (factory, capabilities); the solved laws are built once per session (their support
#: search and quadrature are the expensive part and are shared by the tests below)
LAWS = {
    "discrete": (lambda: DiscreteLaw([0.5, 2.0], [0.3, 0.7]), "dcq"),
    "delta": (lambda: delta(2.0), "dcq"),
    "bernoulli": (lambda: bernoulli(0.3, 2.0), "dcq"),
    "marchenko_pastur": (lambda: MarchenkoPastur(0.5, 2.0), "d"),
    "quadrature_d2": (lambda: d2_factor(d2_law("tanh", 0.8), near_support=False), ""),
    "smooth_d2": (lambda: d2_factor(d2_law("tanh", 0.8)), "d"),
    # atom at 0 (mass 0.7), continuous part on [0.091, 0.989]: a gap below it
    "free_product": (lambda: free_product(bernoulli(0.3), bernoulli(0.6)), "dcq"),
    "jacobian_law": (lambda: jacobian_law(NetworkSpec("relu", "gaussian", depth=2, width=1,
                                                      sigma_w=1.3, sigma_b=0.3)), "dcq"),
    # depth 2: a ShiftedLaw (MP x Bernoulli, shifted by qhat_1)
    "shifted": (lambda: fim_dual_law(NetworkSpec("relu", "gaussian", depth=2, width=1,
                                                 sigma_w=1.3, sigma_b=0.3)), "dcq"),
    # the class fim_dual_law returns from depth 3 on (tests/theory/test_theory_defects.py checks
    # one against its closed form); one layer here, 0.4 + (MP x Bernoulli(1/2) x delta_0.7):
    # an atom at its base 0.4, then a gap before the continuous part
    "shift_chain": (lambda: ShiftChainLaw(0.7, [ShiftLayer(
        (Factor(bernoulli(0.5)), Factor(MarchenkoPastur(1.0, 1.69))), 0.4)]), "dcq"),
}


@functools.cache
def _law(name):
    return LAWS[name][0]()


def _has(name, what):
    return what in LAWS[name][1]


def _probe(law):
    """A few points of the support (finite, >= 0): the atoms and the middle of the support."""
    lo, hi = law.support()
    return np.array([lo, 0.5 * (lo + hi), hi])


BAD_ORDERS = [0, -1, 2.5, True, "3", None, float("nan"), np.float64(2.0)]


@pytest.mark.parametrize("name", list(LAWS))
@pytest.mark.parametrize("n", BAD_ORDERS, ids=repr)
def test_moments_rejects_bad_order(name, n):
    with pytest.raises(ValueError, match=r"^n: must be an integer >= 1"):
        _law(name).moments(n)


@pytest.mark.parametrize("name", list(LAWS))
def test_moments_accepts_numpy_integers(name):
    law = _law(name)
    np.testing.assert_array_equal(law.moments(np.int64(3)), law.moments(3))
    assert law.moments(1).shape == (1,)


def _quiet(fn, *args):
    """fn(*args) with every warning an error (a NaN must not reach the solver)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args)


@pytest.mark.parametrize("name", list(LAWS))
def test_nan_in_nan_out(name):
    law = _law(name)
    good = _probe(law)
    x = np.array([np.nan, good[1], np.nan])
    for method, cap in (("density", "d"), ("cdf", "c")):
        fn = getattr(law, method)
        if not _has(name, cap):
            for arg in (np.nan, x, good[1]):  # whatever the argument
                with pytest.raises(TheoryUnavailable):
                    fn(arg)
            continue
        assert np.isnan(_quiet(fn, np.nan))
        out = _quiet(fn, x)
        assert out.shape == x.shape and np.isnan(out[[0, 2]]).all() and np.isfinite(out[1])
        np.testing.assert_array_equal(out[1], fn(good[1:2])[0])
    if _has(name, "q"):
        p = np.array([0.5, np.nan])
        out = _quiet(law.quantile, p)
        assert np.isnan(out[1]) and np.isfinite(out[0])
        assert np.isnan(_quiet(law.quantile, np.nan))
    else:
        with pytest.raises(TheoryUnavailable):
            law.quantile(0.5)
    z = np.array([np.nan + 1j, complex(good[1], 1.0), complex(1.0, np.nan)])
    g = _quiet(law.cauchy, z)
    assert np.isnan(g[[0, 2]]).all() and np.isfinite(g[1])


@pytest.mark.parametrize("name", [n for n in LAWS if _has(n, "q")])
@pytest.mark.parametrize("p", [-0.1, 1.5, -np.inf, np.inf, [0.5, 2.0]], ids=repr)
def test_quantile_rejects_p_outside_unit_interval(name, p):
    with pytest.raises(ValueError, match=r"^p: must lie in \[0, 1\]"):
        _law(name).quantile(p)


@pytest.mark.parametrize("name", list(LAWS))
@pytest.mark.parametrize("bad", ["abc", None, 1 + 2j, [1.0, "x"]], ids=repr)
def test_points_must_be_real(name, bad):
    law = _law(name)
    for method, cap in (("density", "d"), ("cdf", "c")):
        if _has(name, cap):
            with pytest.raises(ValueError, match=r"^x: must be real numbers"):
                getattr(law, method)(bad)


@pytest.mark.parametrize("name", list(LAWS))
def test_cauchy_rejects_lower_half_plane(name):
    with pytest.raises(ValueError, match=r"^zeta: must lie in the closed upper half-plane"):
        _law(name).cauchy(np.array([1.0 - 1e-3j]))


@pytest.mark.parametrize("name", [n for n in LAWS if _has(n, "d")])
def test_density_is_exactly_zero_outside_the_support(name):
    """x < 0, beyond the top of the support, +-inf, and the gaps (below an interval that does
    not start at 0, between an atom and an interval): exactly 0 (no Poisson leak ~1e-12)."""
    law = _law(name)
    lo, hi = law.support()
    x = [-1.0, -1e-300, hi * (1 + 1e-9) + 1e-300, 2 * hi + 1, 1e300, np.inf, -np.inf]
    iv = law.intervals() if hasattr(law, "intervals") else None
    if name == "marchenko_pastur":
        iv = np.array([law.edges])
    if iv is not None and len(iv):
        x.append(0.5 * iv[0, 0])  # below the first interval (0 when it starts at 0: skipped)
        x += list(0.5 * (iv[1:, 0] + iv[:-1, 1]))  # between intervals
        x = [v for v in x if not (iv[0, 0] == 0 and v == 0)]
    rho = _quiet(law.density, np.array(x))
    assert np.all(rho == 0.0), dict(zip(x, rho, strict=True))


@pytest.mark.parametrize("name", [n for n in LAWS if _has(n, "c")])
def test_cdf_in_unit_interval_and_monotone(name):
    law = _law(name)
    lo, hi = law.support()
    x = np.concatenate([[-np.inf, -1.0, 0.0], np.linspace(lo, hi, 401),
                        lo + (hi - lo) * np.geomspace(1e-12, 1e-3, 30), [2 * hi + 1, np.inf]])
    x = np.sort(x)
    F = _quiet(law.cdf, x)
    assert np.all((F >= 0) & (F <= 1))
    assert np.all(np.diff(F) >= 0), x[np.nonzero(np.diff(F) < 0)[0]]
    assert F[0] == 0.0 and F[-1] == 1.0


@pytest.mark.parametrize("entry", [jacobian_law, fim_dual_law, fim_dual_mean_variance])
@pytest.mark.parametrize("spec", [None, "relu", {"activation": "relu"}, 3], ids=repr)
def test_limit_laws_name_a_non_spec_argument(entry, spec):
    with pytest.raises(ValueError, match=r"^spec: must be a NetworkSpec"):
        entry(spec)
