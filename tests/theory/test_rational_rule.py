"""The certified rational fit of a contour rule (:class:`RationalRule`) against the rule itself.

The contour rules of :class:`SmoothD2Law` are the reference (``RATIONAL_FIT = False`` keeps
them callable): the fit must reproduce their G on and near the support to 1e-9, for every
registered smooth activation at the q^l of near-critical networks of depths 1 to 50, and it
must never answer where its certificate fails: a tiny budget, or a G that is not a Cauchy
transform (a pole in the upper half-plane), leaves every point to the rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.activations import ACTIVATION_NAMES, get_activation
from freeness_lab.theory import jacobian_law
from freeness_lab.theory.laws import smooth_d2
from freeness_lab.theory.laws.smooth_d2 import SmoothD2Law
from freeness_lab.theory.meanfield import (
    MeanFieldError,
    critical_sigma_w,
    d2_law,
    variance_map,
)
from freeness_lab.theory.newton import rational_rule
from freeness_lab.theory.newton.quadrature_rule import QuadratureRule
from freeness_lab.theory.newton.rational_rule import FIT_TOL, RationalRule

SMOOTH = ("tanh", "erf", "sigmoid", "silu", "gelu")
SIGMA_B = 0.1


def layer_variances(activation: str, depths=(1, 2, 3, 10, 50)) -> list[float]:
    """q^l (q^0 = 1) at the layers ``depths`` of a network at criticality, or with
    sigma_w = 1.6 where there is none (SiLU, GELU: q^l then drifts, to 64,000 at depth 50
    for GELU)."""
    try:
        sw, _ = critical_sigma_w(activation, SIGMA_B)
    except MeanFieldError:
        sw = 1.6
    q, out = 1.0, []
    for l in range(1, max(depths) + 1):
        if l in depths:
            out.append(q)
        q = variance_map(activation, q, sw, SIGMA_B)
    return out


def probe_points(law: SmoothD2Law, rng: np.random.Generator) -> np.ndarray:
    """zeta on the real axis across and beyond the support, at heights 1e-8..1 times its
    top above it, near every singular value, and far away."""
    top = law.support()[1]
    x = rng.uniform(-0.2, 1.2, 600) * top
    heights = top * 10.0 ** rng.uniform(-8, 0, 600)
    sing = np.concatenate([[0.0], law.stationary_values, law.limit_values])
    near = (rng.choice(sing, 300) + top * 10.0 ** rng.uniform(-5, -1, 300)
            * np.exp(1j * rng.uniform(0, np.pi, 300)))
    far = top * (3 + 10 * rng.random(100)) * np.exp(1j * rng.uniform(0, np.pi, 100))
    return np.concatenate([x + 0j, rng.choice(x, 600) + 1j * heights, near, far])


def assert_agrees(fast, rule, zeta, rtol, zero_mass=0.0):
    """(psi, 1 + psi, omega psi') and G = (1 + psi) / zeta of two rules agree at zeta
    (``zero_mass``: an atom at 0 that ``fast`` leaves out, added to its 1 + psi)."""
    omega = 1.0 / zeta
    psi, one_psi, dpsi = fast.psi_parts(omega)
    for name, a, b in zip(("psi", "1 + psi", "omega psi'"), (psi, one_psi + zero_mass, dpsi),
                          rule.psi_parts(omega), strict=True):
        bad = np.abs(a - b) > rtol * np.maximum(np.abs(b), 1.0)
        assert not bad.any(), f"{name} at {zeta[bad][:3]}: {a[bad][:3]} vs {b[bad][:3]}"


@pytest.mark.parametrize("chained", [False, True])
@pytest.mark.parametrize("activation", SMOOTH)
def test_fit_reproduces_contour_rule(activation, chained):
    """G of the fit within 1e-9 of the contour rule's (psi, 1 + psi: the same; omega psi',
    a derivative: 1e-7), at the q^l of depths 1, 2, 3, 10, 50, on and near the support (the
    fit leaves out an atom at 0, GELU's at depth 50: it is added back); ``chained``: each
    fit started from the one at the depth before (``fit_from``, as a network's layers are:
    here from q^l far apart too), which it is, but where that fit failed its certificate."""
    rng = np.random.default_rng(0)
    previous, started = None, []
    for q in layer_variances(activation):
        law = SmoothD2Law(d2_law(activation, q), fit_from=previous if chained else None)
        fast = law.psi_rule
        previous = law
        started.append(fast.started)
        assert isinstance(fast, RationalRule) and fast.fitted, (q, fast.error)
        assert fast.error <= FIT_TOL
        zeta = probe_points(law, rng)
        rule = QuadratureRule(law.nodes, law.weights)
        omega = 1.0 / zeta
        g_fast = (fast.psi_parts(omega)[1] + law.rule_zero_mass) / zeta
        g_rule = rule.psi_parts(omega)[1] / zeta
        err = np.abs(g_fast - g_rule) / np.maximum(np.abs(g_rule), 1.0)
        assert err.max() <= 1e-9, (activation, q, zeta[np.argmax(err)], err.max())
        assert_agrees(fast, rule, zeta[np.abs(zeta) > 1e-3 * law.support()[1]], 1e-7,
                      law.rule_zero_mass)
    assert started[0] == 0 and (sum(s > 0 for s in started) >= 2 if chained
                                else not any(started))


def test_a_started_fit_that_fails_its_certificate_is_made_from_scratch(monkeypatch):
    """A fit from the previous layer's support points that misses the certificate (its
    AAA cut to 5 terms here) is made again from scratch: certified, ``started`` 0; and a
    start that is no fitted rule (the rule of a refused fit, None) is ignored."""
    before = SmoothD2Law(d2_law("tanh", 0.5)).psi_rule
    law = SmoothD2Law(d2_law("tanh", 0.45))
    args = (law.nodes, law.weights, [0.0, *law.stationary_values, *law.support()])
    original = rational_rule.aaa

    def cut(z, f, *, start=None, **options):
        return original(z, f, **{**options, "max_terms": 5} if start is not None else options,
                        start=start)
    monkeypatch.setattr(rational_rule, "aaa", cut)
    again = RationalRule(*args, start=before)
    assert again.fitted and again.started == 0 and again.error <= FIT_TOL
    monkeypatch.undo()
    warm = RationalRule(*args, start=before)
    assert warm.fitted and warm.started == before.terms and warm.error <= FIT_TOL
    for start in (before.rule, None):
        assert RationalRule(*args, start=start).started == 0


def test_far_field_is_the_rule_to_rounding():
    """Beyond twice the nodes' radius the Laurent series about the centre gives the rule's
    sums to rounding."""
    law = SmoothD2Law(d2_law("tanh", 0.4))
    fast = law.psi_rule
    zeta = fast.centre + fast.radius * (1.01 + 5 * np.random.default_rng(1).random(300)) \
        * np.exp(1j * np.linspace(-np.pi, np.pi, 300))
    assert_agrees(fast, QuadratureRule(law.nodes, law.weights), zeta, 1e-13)
    psi, one_psi, dpsi = fast.psi_parts(np.zeros(2, dtype=complex))  # omega = 0
    assert np.all(psi == 0) and np.allclose(one_psi, 1) and np.all(dpsi == 0)


def test_tiny_budget_is_not_certified_and_falls_back():
    """Five terms cannot reach the tolerance: the fit reports its error and every point is
    summed by the rule, bit for bit."""
    law = SmoothD2Law(d2_law("gelu", 1.0))
    poor = RationalRule(law.nodes, law.weights, [0.0, *law.stationary_values, 1.0],
                        max_terms=5)
    assert not poor.fitted and poor.terms == 0 and poor.error > FIT_TOL
    zeta = probe_points(law, np.random.default_rng(2))
    for a, b in zip(poor.psi_parts(1 / zeta), poor.rule.psi_parts(1 / zeta), strict=True):
        np.testing.assert_array_equal(a, b)


def test_pole_in_upper_half_plane_is_never_fitted():
    """A "law" whose G has a pole above the axis (not a Cauchy transform of a measure) breaks
    the premise of the certificate: the fit must not be accepted."""
    law = SmoothD2Law(d2_law("tanh", 0.5))
    nodes = np.concatenate([law.nodes, [0.5 + 0.05j]])
    weights = np.concatenate([law.weights * (1 - 1e-3), [1e-3]])
    bad = RationalRule(nodes, weights, [0.0, *law.stationary_values, *law.support()])
    assert not bad.fitted


def test_density_with_a_failed_fit_is_the_rule_density(monkeypatch):
    """A network whose every fit is refused (budget 5) gives the rule's density exactly; with
    the fits, the density agrees with the rule's to 1e-9 of its maximum."""
    spec = NetworkSpec("tanh", "orthogonal", depth=3, width=1, sigma_w=1.0, sigma_b=SIGMA_B)
    monkeypatch.setattr(smooth_d2, "RATIONAL_FIT", False)
    ref_law = jacobian_law(spec)
    x = np.linspace(*ref_law.support(), 202)[1:-1]
    ref = ref_law.density(x)
    monkeypatch.setattr(smooth_d2, "RATIONAL_FIT", True)
    monkeypatch.setattr(RationalRule.__init__, "__kwdefaults__", {"max_terms": 5,
                                                                   "start": None})
    refused = jacobian_law(spec)
    assert not any(f.law.psi_rule.fitted for f in refused.product.factors
                   if isinstance(f.law, SmoothD2Law))
    np.testing.assert_array_equal(refused.density(x), ref)
    monkeypatch.undo()
    fitted = jacobian_law(spec)
    assert np.abs(fitted.density(x) - ref).max() <= 1e-9 * ref.max()


def test_every_registered_smooth_activation_is_covered():
    """The activations with a smooth phi' are exactly those tested here."""
    smooth = {get_activation(name).name for name in ACTIVATION_NAMES
              if get_activation(name).pieces is None}
    assert smooth == set(SMOOTH)
