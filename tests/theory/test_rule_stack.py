"""Several certified fits evaluated at once (:class:`RuleStack`) against each rule alone.

The Newton systems evaluate every layer's law of phi'(h)^2 in one stacked call: the padded
tables (discs, barycentric forms, Laurent coefficients, levels about 0) must give each
column what its own rule gives, wherever the point falls, and a stack holding a rule that
cannot be stacked must fall back to one call per rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from freeness_lab.theory.laws.smooth_d2 import SmoothD2Law
from freeness_lab.theory.meanfield import d2_law
from freeness_lab.theory.newton import rule_stack
from freeness_lab.theory.newton.quadrature_rule import (
    DIRECT_PAIRS,
    ClusterStack,
    QuadratureRule,
    powers,
    psi_quadrature,
)
from freeness_lab.theory.newton.rule_stack import RuleStack


def laws() -> list[SmoothD2Law]:
    """Laws with different singular points, disc counts, fit sizes and levels about 0."""
    return [SmoothD2Law(d2_law(act, q)) for act, q in
            (("tanh", 0.05), ("gelu", 3.0), ("erf", 0.7), ("silu", 0.3), ("sigmoid", 2.0))]


def omega_columns(rules, rng: np.random.Generator, n: int = 400) -> np.ndarray:
    """omega = 1 / zeta per column: zeta near each rule's support and singular points (both
    half-planes), in its disc at 0 down to 1e-200 of it, and far away."""
    cols = []
    for r in rules:
        top = r.radius
        pieces = [rng.uniform(-0.2, 1.2, n) * top / 2 + 1j * top * 10.0 ** rng.uniform(-9, 0, n),
                  rng.choice(r.singular, n) + r.discs.max() * rng.uniform(0.1, 3, n)
                  * np.exp(1j * rng.uniform(-0.3, np.pi + 0.3, n)),
                  r.zero_radius * 10.0 ** rng.uniform(-200, 0, n)
                  * np.exp(1j * rng.uniform(-0.3, np.pi + 0.3, n)),
                  r.centre + top * rng.uniform(1.01, 5, n) * np.exp(1j * rng.uniform(-3, 3, n))]
        zeta = np.concatenate(pieces)
        cols.append(1.0 / rng.permutation(zeta))
    return np.stack(cols, axis=-1)


def test_stack_equals_each_rule_and_the_contour_rules():
    """Column k of the stack is rule k's fit path to rounding (psi, 1 + psi: 1e-13; omega psi',
    a derivative that cancels near the barycentric form's support points: 1e-11), and within
    1e-9 (omega psi': 1e-7, as in test_rational_rule) of its contour rule, the reference the
    fits are certified against."""
    ls = laws()
    rules = [law.psi_rule for law in ls]
    assert all(r.fitted for r in rules)
    stack = RuleStack(rules)
    assert stack.stacked
    omega = omega_columns(rules, np.random.default_rng(0))
    stacked = stack.psi_parts(omega)
    for k, (law, r) in enumerate(zip(ls, rules, strict=True)):
        alone = r.psi_parts(omega[:, k])
        ref = QuadratureRule(law.nodes, law.weights).psi_parts(omega[:, k])
        for a, b, c, tol in zip((p[:, k] for p in stacked), alone, ref,
                                ((1e-13, 1e-9), (1e-13, 1e-9), (1e-11, 1e-7)), strict=True):
            assert np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)) <= tol[0], law
            assert np.max(np.abs(a - c) / np.maximum(np.abs(c), 1.0)) <= tol[1], law


def test_far_sums_in_one_product_or_rule_by_rule(monkeypatch):
    """Beyond the fits' regions (|zeta - c| > R), the Laurent sums of a batch against every
    rule's coefficients at once (FAR_BATCH or fewer points) and rule by rule agree to 1e-14."""
    rules = [law.psi_rule for law in laws()]
    rng = np.random.default_rng(3)
    zeta = np.stack([r.centre + r.radius * rng.uniform(1.01, 20, 300)
                     * np.exp(1j * rng.uniform(-3, 3, 300)) for r in rules], axis=-1)
    stack = RuleStack(rules)
    monkeypatch.setattr(rule_stack, "FAR_BATCH", 10**9)
    once = stack.psi_parts(1.0 / zeta)
    monkeypatch.setattr(rule_stack, "FAR_BATCH", 0)
    by_rule = stack.psi_parts(1.0 / zeta)
    for a, b in zip(once, by_rule, strict=True):
        assert np.all(np.isfinite(a))
        assert np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)) <= 1e-14


def test_a_lower_im_floor_lets_the_fits_answer_near_the_axis():
    """Just above the negative real axis, outside every law's support, Im G is far below
    IM_FLOOR max |G|: the rule answers (its values to rounding). Inside ``floor(1e-9)`` the
    fits answer there (other values, within 1e-9 of the rule's as everywhere in their
    regions); the floor is restored after the block, an exception included."""
    ls = laws()
    rules = [law.psi_rule for law in ls]
    stack = RuleStack(rules)
    rng = np.random.default_rng(7)
    zeta = np.stack([-r.radius * rng.uniform(0.02, 0.4, 200) + 1j * r.radius * 1e-6
                     for r in rules], axis=-1)
    omega = 1.0 / zeta
    refs = [QuadratureRule(law.nodes, law.weights).psi_parts(omega[:, k])
            for k, law in enumerate(ls)]
    default = stack.psi_parts(omega)
    with stack.floor(1e-9):
        assert stack.im_floor == 1e-9
        relaxed = stack.psi_parts(omega)
    assert stack.im_floor == rule_stack.IM_FLOOR
    for k, ref in enumerate(refs):
        for a, b, c in zip((p[:, k] for p in default), (p[:, k] for p in relaxed), ref,
                           strict=True):
            assert np.max(np.abs(a - c) / np.maximum(np.abs(c), 1.0)) <= 1e-13
            assert np.max(np.abs(b - c) / np.maximum(np.abs(c), 1.0)) <= 1e-9
    assert any(not np.array_equal(a, b) for a, b in zip(default, relaxed, strict=True))
    with pytest.raises(RuntimeError), stack.floor(0.0):
        raise RuntimeError
    assert stack.im_floor == rule_stack.IM_FLOOR


def test_stack_keeps_any_leading_shape():
    """omega of shape (2, 3, 200, K) gives parts of that shape, column by column."""
    rules = [law.psi_rule for law in laws()[:3]]
    omega = omega_columns(rules, np.random.default_rng(1), 300)
    stack = RuleStack(rules)
    flat = stack.psi_parts(omega)
    shaped = stack.psi_parts(omega.reshape(2, 3, 200, 3))
    for a, b in zip(flat, shaped, strict=True):
        np.testing.assert_array_equal(a, b.reshape(1200, 3))


def test_a_rule_that_cannot_be_stacked_falls_back_column_by_column(monkeypatch):
    """With one contour rule (no fit) among the fits, its column is its own call, bit for
    bit, and the fits are stacked: each their own fit's values to rounding, in one call of
    a stack of the two (a deep GELU network whose one layer's fit failed: one call for 49
    columns, not 49 calls). With a single fit left, every column is its own call."""
    ls = laws()[:3]
    rules = [ls[0].psi_rule, QuadratureRule(ls[1].nodes, ls[1].weights), ls[2].psi_rule]
    stack = RuleStack(rules)
    assert not stack.stacked
    omega = omega_columns(rules[::2], np.random.default_rng(2), 50)
    omega = np.stack([omega[:, 0], omega[:, 0], omega[:, 1]], axis=-1)
    calls = []
    original = RuleStack.psi_parts

    def counted(self, om):
        calls.append(len(self.rules))
        return original(self, om)
    monkeypatch.setattr(RuleStack, "psi_parts", counted)
    parts = stack.psi_parts(omega)
    assert calls == [3, 2]  # the stack, then its fits' stack (the rule: its own sums)
    for k, r in enumerate(rules):
        for a, b in zip((p[:, k] for p in parts), r.psi_parts(omega[:, k]), strict=True):
            if k == 1:
                np.testing.assert_array_equal(a, b)
            else:
                assert np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)) <= 1e-11
    single = RuleStack(rules[:2])
    for k, r in enumerate(rules[:2]):
        for a, b in zip((p[:, k] for p in single.psi_parts(omega[:, :2])),
                        r.psi_parts(omega[:, k]), strict=True):
            np.testing.assert_array_equal(a, b)


def _points(rng, n: int, zero: int, far: int, deepest: float = -14.0) -> np.ndarray:
    """(n, 3) test points of three rules: near their atoms, ``zero`` of them near 0 (down to
    |zeta| = 10^deepest) and ``far`` far away."""
    zeta = np.stack([rng.uniform(-0.5, 3.5, n) + 1j * 10.0 ** rng.uniform(-6, 0, n)
                     for _ in range(3)], axis=-1)
    zeta[:zero] = (10.0 ** rng.uniform(deepest, -3, (zero, 3))
                   * np.exp(1j * rng.uniform(0, 3, (zero, 3))))
    zeta[zero:zero + far] = 10.0 * np.exp(1j * rng.uniform(-3, 3, (far, 3)))
    return zeta


def test_clustered_quadrature_rules_stack_to_their_direct_sums():
    """Three discrete laws of 600 atoms (the paired laws of a trial) and a refused fit's
    rule do not mix; the three stack, and each column equals the direct sums of its own
    nodes to 1e-12, near the atoms, near 0 and far away."""
    rng = np.random.default_rng(3)
    rules = [QuadratureRule(np.sort(rng.gamma(2.0, s, 600)) + 0j, rng.dirichlet(np.ones(600)))
             for s in (0.2, 0.5, 1.0)]
    assert ClusterStack.fits(rules) and not ClusterStack.fits(rules + [laws()[0].psi_rule])
    big = QuadratureRule(np.linspace(0.1, 2.0, 4096) + 0j, np.full(4096, 1 / 4096))
    assert big.table_shape[1] != rules[0].table_shape[1]  # clusters of another size
    with pytest.raises(ValueError, match="one table shape"):
        ClusterStack(rules[:2] + [big])
    zeta = _points(rng, 600, 100, 50)
    stacked = RuleStack(rules).psi_parts(1.0 / zeta)
    for k, r in enumerate(rules):
        direct = psi_quadrature(r.nodes, r.weights, 1.0 / zeta[:, k])
        for a, b in zip((p[:, k] for p in stacked), direct, strict=True):
            assert np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)) <= 1e-12, k


def test_rules_of_different_sizes_stack_padded_to_their_direct_sums():
    """Rules under SMALL_RULE nodes with different numbers of clusters (the real quadratures
    of a Gaussian network's D^2 laws: 344-672 nodes at depth 10) stack, the smaller ones
    padded with empty clusters: each column equals the direct sums of its own nodes to
    1e-12, in large batches (clusters) and in small ones (every node, padding included),
    near the atoms, near 0 down to |zeta| = 1e-250 (|omega| = 1e250: the padding's nodes
    must not overflow there) and far away."""
    rng = np.random.default_rng(6)
    rules = [QuadratureRule(np.sort(rng.gamma(2.0, s, n)) + 0j, rng.dirichlet(np.ones(n)))
             for s, n in ((0.2, 672), (0.5, 300), (1.0, 440))]
    assert len({r.table_shape[0] for r in rules}) == 3
    # contour rules (thousands of nodes, clusters of CLUSTER_SIZE) of different sizes are
    # not padded: each sums its own column
    big = [QuadratureRule(np.linspace(0.1, 2.0, n) + 0j, np.full(n, 1 / n)) for n in (3000, 5000)]
    assert ClusterStack.fits(rules) and not ClusterStack.fits(big)
    stack = RuleStack(rules)
    m = 400
    omega = 1.0 / _points(rng, m, 80, 40, deepest=-250.0)
    batches = [stack.psi_parts(omega)] + [stack.psi_parts(omega[i:i + 2]) for i in range(0, m, 2)]
    small = [np.concatenate(p) for p in zip(*batches[1:], strict=True)]
    for parts in (batches[0], small):
        for k, r in enumerate(rules):
            direct = psi_quadrature(r.nodes, r.weights, omega[:, k])
            for a, b in zip((p[:, k] for p in parts), direct, strict=True):
                assert np.all(np.isfinite(a))
                assert np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)) <= 1e-12, k


def test_a_small_batch_is_summed_directly_as_the_clusters_sum_it():
    """A batch of at most DIRECT_PAIRS (point, node) pairs is summed over every node
    (a trial's Newton steps on one or two points): each point equals its value in a large
    batch (the clustered scheme: far clusters by Laurent series, clusters near 0 by Taylor
    series, the rest directly) to 1e-13, near the atoms, near 0 and far away."""
    rng = np.random.default_rng(4)
    rules = [QuadratureRule(np.sort(rng.gamma(2.0, s, 1024)) + 0j, rng.dirichlet(np.ones(1024)))
             for s in (0.2, 0.5, 1.0)]
    stack = ClusterStack(rules)
    n = 300
    omega = 1.0 / _points(rng, n, 60, 30)
    clustered = stack.psi_parts(omega)
    per_batch = max(1, DIRECT_PAIRS // (3 * 1024))
    assert 3 * 1024 * per_batch <= DIRECT_PAIRS < 3 * 1024 * n
    for i in range(0, n, per_batch):
        for a, b in zip(stack.psi_parts(omega[i:i + per_batch]), clustered, strict=True):
            ref = b[i:i + per_batch]
            assert np.max(np.abs(a - ref) / np.maximum(np.abs(ref), 1.0)) <= 1e-13, i


def test_powers_by_doubling():
    """x^0 .. x^(n-1) by doubling: the powers in polar form, |x|^k e^(i k arg x), to rounding,
    for any n (the block lengths of the doubling are not powers of 2 in general)."""
    x = np.random.default_rng(5).uniform(0.05, 0.9, (4, 7)) * np.exp(1j * np.arange(7))
    for n in (1, 2, 3, 5, 8, 28, 29, 121):
        k = np.arange(n)[:, None, None]
        exact = np.abs(x) ** k * np.exp(1j * k * np.angle(x))
        assert powers(x, n).shape == (n, 4, 7)
        np.testing.assert_allclose(powers(x, n), exact, rtol=1e-13, atol=0)
