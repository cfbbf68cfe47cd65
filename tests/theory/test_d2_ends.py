"""Where the contour rule of the law of phi'(h)^2 ends, and the window that moves the mass of
deep SiLU / GELU layers at g < ~1e-230 to an atom at 0 (``theory/laws/d2_ends.py``); the
mass of their products below the support quadrature (``density/deep.py``, the comb)."""

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize, special

import freeness_lab.theory.density.deep as deep
import freeness_lab.theory.laws.d2_ends as d2_ends
from freeness_lab.activations import get_activation
from freeness_lab.theory import d2_law, free_product
from freeness_lab.theory.laws import d2_factor
from freeness_lab.theory.meanfield import Z_CUT, flat_beyond

#: deep-layer variances: SiLU and GELU at sigma_w = 1.6 reach them near depth 50
DEEP = [("silu", 1e5), ("gelu", 3.6e5)]


def _gaussian_mass_below(act: str, q: float, level: float) -> float:
    """P(g(h) < level, h < 0), h ~ N(0, q), for g decreasing to 0 in the left tail: from the
    crossing found here (not by the code under test)."""
    dphi = get_activation(act).dphi

    def f(s):
        return math.log(max(float(dphi(np.array([-s]))[0]) ** 2, 1e-320)) - math.log(level)

    return float(special.ndtr(-optimize.brentq(f, 5.0, 5000.0, xtol=1e-13) / math.sqrt(q)))


@pytest.mark.parametrize("act, q", [(a, q) for a in ("tanh", "sigmoid", "silu")
                                     for q in (0.5, 8.0, 70.0)]
                         + [("erf", 0.5), ("erf", 3.0), ("gelu", 0.5), ("gelu", 8.0)])
def test_no_window_below_the_deep_regime(act, q):
    """Where the Gaussian mass beyond the flat cut is below 1e-17, or g is still above 1e-290
    at 10 sqrt(q) (tanh, sigmoid: g ~ e^(-4|h|), e^(-2|h|)), nothing changes: both sides end
    at min(10 sqrt(q), 2 H_flat) and the law has no atom. (Networks at depths <= 10 and
    sigma_w <= 1.6 stay there; erf from q ~ 5 and GELU from q ~ 10 do not: their g falls
    like e^(-2 h^2), e^(-h^2).)"""
    ends = d2_ends.rule_ends(act, q)
    H = min(Z_CUT * math.sqrt(q), 2.0 * flat_beyond(act))
    assert all(e.end == H and e.centre is None and e.atom == 0.0 for e in ends)
    assert len(d2_factor(d2_law(act, q)).atoms) == 0


@pytest.mark.parametrize("act, q", DEEP)
def test_window_moves_only_the_mass_below_1e230(act, q):
    """The atom is the mass the window takes, E[1 - W(h)] (adaptive quadrature over h), and
    lies between the Gaussian mass where g < G_FLOOR (all taken) and where g < 1e-230
    (nothing above is taken, to 1e-16)."""
    left, right = d2_ends.rule_ends(act, q)
    assert right.centre is None and left.centre is not None
    p = lambda h: math.exp(-h * h / (2 * q)) / math.sqrt(2 * math.pi * q)  # noqa: E731
    taken = integrate.quad(lambda h: p(h) * (1.0 - d2_ends.window((left, right), h).real),
                           -left.centre - 12 * left.width, -left.centre + 12 * left.width,
                           epsabs=1e-15, epsrel=1e-12)[0]
    taken += special.ndtr((-left.centre - 12 * left.width) / math.sqrt(q))
    np.testing.assert_allclose(left.atom, taken, rtol=1e-10)
    assert _gaussian_mass_below(act, q, d2_ends.G_FLOOR) < left.atom
    assert left.atom < _gaussian_mass_below(act, q, 1e-230) + 1e-16
    law = d2_factor(d2_law(act, q))
    np.testing.assert_allclose(law.atoms, [[0.0, left.atom]], rtol=1e-13)


@pytest.mark.parametrize("act, q", DEEP)
def test_windowed_law_cauchy_against_quadrature(act, q):
    """G of the windowed law (contour rule, atom included) against scipy's adaptive
    quadrature of E[W(h) / (zeta - g(h))] + atom / zeta, at |zeta| from 1e-240 to the top
    of the support; its weights sum to 1 and its moments are those of d2."""
    law = d2_factor(d2_law(act, q))
    ends = d2_ends.rule_ends(act, q)
    dphi = get_activation(act).dphi
    sq = math.sqrt(q)
    edges = np.concatenate([-np.geomspace(1e-3, 12 * sq, 120)[::-1], [0.0],
                            np.geomspace(1e-3, 12 * sq, 120)])

    def reference(z):
        def f(h, part):
            val = (math.exp(-h * h / (2 * q)) / math.sqrt(2 * math.pi * q)
                   * d2_ends.window(ends, h) / (z - float(dphi(np.array([h]))[0]) ** 2))
            return getattr(complex(val), part)

        out = sum(integrate.quad(f, a, b, args=(part,), epsabs=0, epsrel=1e-13, limit=200)[0]
                  * (1j if part == "imag" else 1.0)
                  for a, b in zip(edges[:-1], edges[1:], strict=True)
                  for part in ("real", "imag"))
        return out + law.atoms[0, 1] / z

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for x in (1e-240, 1e-120, 1e-30, 0.3 * law.support()[1], 0.9 * law.support()[1]):
            z = x * np.exp(0.5j)
            np.testing.assert_allclose(law.cauchy(np.array([z]))[0], reference(z), rtol=1e-10)
    np.testing.assert_allclose(law.weights.sum(), 1.0, atol=1e-13)
    k = np.arange(1, 4)
    np.testing.assert_allclose((law.nodes[:, None] ** k * law.weights[:, None]).sum(0).real,
                               law.moments(3), rtol=1e-12)


@pytest.mark.parametrize("act, q", DEEP)
def test_windowed_law_against_monte_carlo(act, q):
    """Monte Carlo of the true law of phi'(h)^2 (no window, h ~ N(0, q) sampled): the
    fraction of samples with g < 1e-230 bounds the atom from above and the fraction with
    g < G_FLOOR from below, and E[1 / (zeta - g(h))] equals the windowed law's G at
    |zeta| >= 1e-100 (the window changes G there by less than 1e-100 relative), each within
    4 standard errors (fixed seed)."""
    rng = np.random.default_rng(20261207)
    h = rng.normal(0.0, math.sqrt(q), 200_000)
    g = get_activation(act).dphi(h) ** 2
    law = d2_factor(d2_law(act, q))
    atom = law.atom_mass
    for level, side in ((1e-230, 1.0), (d2_ends.G_FLOOR, -1.0)):
        frac = np.mean(g < level)
        se = math.sqrt(frac * (1 - frac) / len(h))
        assert side * (frac - atom) > -4 * se, (level, frac, atom, se)
    for x in (1e-100, 1e-20, 0.3 * law.support()[1]):
        z = x * np.exp(0.5j)
        samples = z / (z - g)  # zeta G: bounded, its SE is meaningful at every scale
        se = np.abs(samples.std()) / math.sqrt(len(h))
        ours = z * law.cauchy(np.array([z]))[0]
        assert abs(samples.mean() - ours) < 4 * se, (x, samples.mean(), ours, se)


def _two_layer_product():
    return free_product(*(d2_factor(d2_law("silu", q)) for q in (1e5, 5e4)))


def test_product_does_not_see_where_the_window_sits(monkeypatch):
    """The density of a product of windowed laws at x >= 1e-200 is the same whether the
    windows sit at g ~ 1e-259 or 1e-249 (G_FLOOR 1e-290 or 1e-280): the atom at 0 stands for
    mass far below anything the product shows."""
    x = np.geomspace(1e-200, 0.5, 7)
    first = _two_layer_product().density(x)
    monkeypatch.setattr(d2_ends, "G_FLOOR", 1e-280)
    second = _two_layer_product().density(x)
    assert np.all(first > 0)
    np.testing.assert_allclose(second, first, rtol=1e-9)


def test_deep_mass_through_the_edge_of_the_continuous_part():
    """Two deep SiLU layers: the product's continuous part runs down to x ~ e^-1100 and ends
    there; the comb below the support quadrature gets its mass, so the quadrature's mass is
    1 - the atom (Belinschi: the larger factor atom) with no warning."""
    law = _two_layer_product()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        law.quadrature()
    np.testing.assert_allclose(law.atom_mass, d2_factor(d2_law("silu", 1e5)).atoms[0, 1],
                               rtol=1e-14)
    np.testing.assert_allclose(law.continuous_mass(), 1.0 - law.atom_mass, atol=1e-8)


def test_deep_mass_that_cannot_be_certified_is_reported(monkeypatch):
    """A comb stopped before the mass below is certified (its floor raised above the
    product's lowest mass) warns, and the support's mass check fails."""
    monkeypatch.setattr(deep, "DEEP_U_MIN", -700.0)
    law = _two_layer_product()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        law.quadrature()
    messages = [str(w.message) for w in record]
    assert any(m.startswith("deep mass: the comb") for m in messages)
    assert any("mass is off" in m for m in messages)


def test_lumped_tails_miss_the_mass_at_zero(monkeypatch):
    """The product of two layers puts at least the first factor's mass below 1e-230 (its
    atom, the sampled fraction: test_windowed_law_against_monte_carlo) below 1e-200, since
    the second factor's g stays below 2. The windowed laws do; with the deep tails lumped
    at g(-H) ~ 1e-61, as before the window existed, the product has no mass there at all.
    (Its support quadrature used to fail to converge too; the log panels' floor,
    :mod:`~freeness_lab.theory.density.log_panels`, now integrates the lumped law as
    accurately as the windowed one: the law, not the quadrature, is what is wrong.)"""
    bound = d2_factor(d2_law("silu", 1e5)).atom_mass
    assert bound > 0.1
    windowed = _two_layer_product()
    assert windowed.cdf(np.array([1e-200]))[0] >= bound
    monkeypatch.setattr(d2_ends, "LUMP_MASS", 1.0)
    lumped = _two_layer_product()
    assert lumped.atom_mass == 0.0
    assert lumped.cdf(np.array([1e-200]))[0] < 1e-6 < bound
