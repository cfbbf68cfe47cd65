"""AAA with an updated QR factorization (:func:`freeness_lab.theory.newton.aaa.aaa`) against
``scipy.interpolate.AAA``, the algorithm it follows step by step (Nakatsukasa, Sete &
Trefethen 2018): the same accuracy and terms on the contour rules' samples, exact rational
functions recovered, and its edge cases (budget, fewer rows than columns, doublets)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.interpolate import AAA

from freeness_lab.theory.laws.smooth_d2 import SmoothD2Law
from freeness_lab.theory.meanfield import d2_law
from freeness_lab.theory.newton import aaa as aaa_module
from freeness_lab.theory.newton.aaa import aaa
from freeness_lab.theory.newton.blas import one_blas_thread
from freeness_lab.theory.newton.rational_rule import (
    AAA_RTOL,
    CLEAN_UP_TOL,
    FIT_TOL,
    MAX_TERMS,
    RationalRule,
)

OPTIONS = {"rtol": AAA_RTOL * FIT_TOL, "max_terms": MAX_TERMS, "clean_up_tol": CLEAN_UP_TOL}


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Both AAAs with BLAS on one thread, as the fits run (a second thread made these small
    SVDs and products 10x slower on 2 shared cores)."""
    with one_blas_thread():
        yield


def boundary_samples(activation: str, q: float) -> tuple[np.ndarray, np.ndarray]:
    """The training points of a contour rule's fit and the rule's G there."""
    law = SmoothD2Law(d2_law(activation, q))
    fast = law.psi_rule
    z = np.concatenate(fast._boundary(0.5, 1))
    return z, fast._rule_cauchy(z)


@pytest.mark.parametrize("activation, q", [("tanh", 0.5), ("sigmoid", 3.0), ("silu", 500.0),
                                           ("gelu", 20.0)])
def test_contour_rule_samples_as_scipy(activation, q):
    """On the samples of a certified fit: error below rtol max |f| as scipy's, within two
    terms of scipy's count, and the same residuals at the points to 1e-12 max |f|."""
    z, f = boundary_samples(activation, q)
    own = aaa(z, f, **OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = AAA(z, f, **OPTIONS)
    scale = np.abs(f).max()
    err_own = np.abs(own(z) - f).max() / scale
    err_ref = np.abs(ref(z) - f).max() / scale
    assert err_own <= max(10 * err_ref, AAA_RTOL * FIT_TOL), (err_own, err_ref)
    assert abs(len(own.support_points) - len(ref.support_points)) <= 2
    assert own.errors[-1] <= OPTIONS["rtol"] * scale


def test_a_start_from_a_nearby_fit_takes_a_few_steps():
    """tanh's rule at q = 0.55 fitted from the support points of its fit at q = 0.5 (the
    previous layer of a network): a few greedy steps instead of ~50, the tolerance met on
    the samples, and an error and terms near scipy's from scratch."""
    z0, f0 = boundary_samples("tanh", 0.5)
    before = aaa(z0, f0, **OPTIONS)
    z, f = boundary_samples("tanh", 0.55)
    warm = aaa(z, f, start=before.support_points, **OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = AAA(z, f, **OPTIONS)
    steps = len(warm.errors) - len(before.support_points)
    assert 0 <= steps <= 5 and len(ref.support_points) >= 40
    assert np.isnan(warm.errors[:-steps - 1]).all()
    scale = np.abs(f).max()
    assert warm.errors[-1] <= OPTIONS["rtol"] * scale
    err_ref = np.abs(ref(z) - f).max() / scale
    assert np.abs(warm(z) - f).max() / scale <= max(10 * err_ref, AAA_RTOL * FIT_TOL)
    assert abs(len(warm.support_points) - len(ref.support_points)) <= 6


def test_exact_rational_function_is_recovered():
    """f with three simple poles off the unit circle: three terms, the poles and residues to
    1e-10, and r = f between the samples."""
    poles = np.array([0.3 - 1.5j, -0.5 + 1.2j, 2.0 + 0.1j])
    res = np.array([1.0, 2.0 - 1.0j, 0.5j])

    def f(z):
        return (res / (z[:, None] - poles)).sum(1)

    z = np.exp(1j * np.linspace(0, 2 * np.pi, 200, endpoint=False))
    fit = aaa(z, f(z), rtol=1e-13, max_terms=20, clean_up_tol=1e-13)
    assert len(fit.support_points) == 4  # degree 3 over 3: four support points
    got = fit.poles()
    order = [np.argmin(np.abs(got - p)) for p in poles]
    np.testing.assert_allclose(got[order], poles, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fit.residues(got[order]), res, rtol=0, atol=1e-10)
    mid = 0.9 * np.exp(1j * np.linspace(0.01, 6, 50))
    np.testing.assert_allclose(fit(mid), f(mid), rtol=1e-11)


def test_budget_and_fewer_rows_than_columns():
    """A budget it cannot meet stops at max_terms (and interpolates at the support points);
    with more terms than half the points, the null space of the short Loewner matrix is
    taken, as scipy does, without failure."""
    z = np.linspace(-1, 1, 40) + 0j
    f = np.abs(z) ** 0.5
    fit = aaa(z, f, rtol=1e-15, max_terms=5, clean_up_tol=0.0)
    assert len(fit.errors) == 5 and len(fit.support_points) <= 5
    np.testing.assert_allclose(fit(fit.support_points), fit.support_values, rtol=1e-14)
    short = aaa(z, f, rtol=0.0, max_terms=30, clean_up_tol=0.0)
    assert len(short.errors) == 30
    np.testing.assert_allclose(short(short.support_points), short.support_values, rtol=1e-14)
    assert np.abs(short(z) - f).max() < np.abs(fit(z) - f).max()


def test_froissart_doublets_are_removed():
    """Noise (1e-12) below what the steps ask for (rtol 0, 60 terms) makes AAA place
    pole-zero pairs with tiny residues; the clean-up removes them as scipy's does: fewer
    than half the support points left by both, and the fit kept. (How many are left is
    decided by rounding in this regime: 13 here against scipy's 18 with BLAS on one thread,
    within 3 of each other on two; not compared.)"""
    rng = np.random.default_rng(3)
    z = np.linspace(-1, 1, 500) + 0j
    f = np.tan(2 * z) + 1e-12 * rng.standard_normal(500)
    fit = aaa(z, f, rtol=0.0, max_terms=60, clean_up_tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = AAA(z, f, rtol=0.0, max_terms=60, clean_up_tol=1e-10)
    assert len(fit.errors) == 60 and len(fit.support_points) < 30
    assert len(ref.support_points) < 30
    assert np.abs(fit(z) - f).max() < 1e-9


def test_lost_column_rebuilds_the_factorization(monkeypatch):
    """Forcing every new column to count as lost (and every row as of high leverage)
    rebuilds the factorization each step by Householder QR: the same fit."""
    z, f = boundary_samples("tanh", 0.5)
    ref = aaa(z, f, **OPTIONS)
    monkeypatch.setattr(aaa_module, "LOST", 2.0)
    monkeypatch.setattr(aaa_module, "LEVERAGE", -1.0)
    rebuilt = aaa(z, f, **OPTIONS)
    assert abs(len(rebuilt.support_points) - len(ref.support_points)) <= 2
    scale = np.abs(f).max()
    assert np.abs(rebuilt(z) - f).max() <= 10 * max(np.abs(ref(z) - f).max(),
                                                    OPTIONS["rtol"] * scale)


def test_sample_values_are_the_rule():
    """G at the samples (the nodes near 0 through one Laurent series) against the rule's
    direct sum, to 1e-13 of max |G|."""
    for activation, q in (("tanh", 1.0), ("gelu", 10.0)):
        law = SmoothD2Law(d2_law(activation, q))
        fast = law.psi_rule
        assert isinstance(fast, RationalRule)
        z = np.concatenate(fast._boundary(0.5, 1) + fast._arcs(1.0, 40))
        t, w = law.nodes, law.weights
        fitted = t.imag != 0
        ref = (w[fitted] / (z[:, None] - t[fitted])).sum(1)
        got = fast._rule_cauchy(z)
        assert np.abs(got - ref).max() <= 1e-13 * np.abs(ref).max()
