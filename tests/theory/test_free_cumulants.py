"""Free cumulants and free predictions: closed forms, brute force over partitions, Monte Carlo."""

import itertools
import math

import numpy as np
import pytest
from montecarlo import assert_mean_within, standard_error

from freeness_lab.simulate.ensembles import haar_unitary, single_blas_thread
from freeness_lab.theory import (
    Element,
    Family,
    circular_family,
    commutative_family,
    free_cumulants_to_moments,
    free_mixed_moment,
    free_moment,
    haar_unitary_family,
    kreweras_complement,
    moebius_to_top,
    moments_to_free_cumulants,
    multiplicative_convolution_moments,
    noncrossing_partitions,
    univariate_family,
)


def catalan(k):
    return math.comb(2 * k, k) // (k + 1)


def set_partitions(points):
    """All set partitions of a list, by placing the first point (independent of the library)."""
    if not points:
        yield []
        return
    first, rest = points[0], points[1:]
    for p in set_partitions(rest):
        yield [[first], *p]
        for i in range(len(p)):
            yield p[:i] + [[first, *p[i]]] + p[i + 1:]


def crosses(p):
    """True when two blocks interleave: a < b < c < d with a, c in one block, b, d in another."""
    for x, y in itertools.permutations(p, 2):
        for a, c in itertools.combinations(sorted(x), 2):
            if any(a < b < c for b in y) and any(d > c or d < a for d in y):
                return True
    return False


def brute_nc(n):
    return {tuple(sorted(tuple(sorted(b)) for b in p))
            for p in set_partitions(list(range(n))) if not crosses(p)}


# ------------------------------------------------------------------ NC(n), Kreweras, Moebius


def test_nc_counts_are_catalan():
    assert [len(noncrossing_partitions(n)) for n in range(11)] == [catalan(n) for n in range(11)]


@pytest.mark.parametrize("n", range(1, 8))
def test_nc_matches_brute_force(n):
    got = noncrossing_partitions(n)
    assert len(set(got)) == len(got)
    assert set(got) == brute_nc(n)


def test_bad_partition_and_order():
    with pytest.raises(ValueError, match="partition"):
        kreweras_complement([[0, 2]], 3)
    with pytest.raises(ValueError, match="n"):
        noncrossing_partitions(-1)


@pytest.mark.parametrize("n", range(1, 8))
def test_kreweras_properties(n):
    full, singletons = (tuple(range(n)),), tuple((i,) for i in range(n))
    assert kreweras_complement(singletons) == full
    assert kreweras_complement(full) == singletons
    for p in noncrossing_partitions(n):
        k = kreweras_complement(p)
        assert len(p) + len(k) == n + 1
        # interleave i -> 2i, i' -> 2i + 1: pi union K(pi) is non-crossing
        union = [[2 * i for i in b] for b in p] + [[2 * i + 1 for i in b] for b in k]
        assert not crosses(union)
        # K^2 is the rotation i -> i - 1 (mod n)
        rotated = tuple(sorted(tuple(sorted((i - 1) % n for i in b)) for b in p))
        assert kreweras_complement(k) == rotated


def _refines(p, q):
    return all(any(set(b) <= set(c) for c in q) for b in p)


@pytest.mark.parametrize("n", range(1, 7))
def test_moebius_matches_lattice_recursion(n):
    # mu(pi, 1) = -sum_{pi < sigma <= 1} mu(sigma, 1), from the top down (brute force)
    parts = sorted(noncrossing_partitions(n), key=len)
    mu = {}
    for p in parts:
        mu[p] = 1 if len(p) == 1 else -sum(mu[s] for s in mu if s != p and _refines(p, s))
        assert moebius_to_top(p) == mu[p]


# ------------------------------------------------------------------ univariate cumulants


def test_semicircle_cumulants():
    m = [0.0 if k % 2 else float(catalan(k // 2)) for k in range(1, 11)]
    np.testing.assert_allclose(moments_to_free_cumulants(m), [0, 1] + [0] * 8, atol=1e-12)


@pytest.mark.parametrize("lam", [0.3, 1.0, 2.5])
def test_free_poisson_cumulants(lam):
    # moments: Narayana polynomials sum_k N(n, k) lam^k
    m = [sum(math.comb(n, k) * math.comb(n, k - 1) / n * lam**k for k in range(1, n + 1))
         for n in range(1, 10)]
    np.testing.assert_allclose(moments_to_free_cumulants(m), [lam] * 9, rtol=1e-12)
    np.testing.assert_allclose(free_cumulants_to_moments([lam] * 9), m, rtol=1e-12)


def test_low_order_cumulant_formulas():
    rng = np.random.default_rng(1)
    m1, m2, m3, m4 = rng.normal(size=4)
    k = moments_to_free_cumulants([m1, m2, m3, m4])
    expected = [m1, m2 - m1**2, m3 - 3 * m1 * m2 + 2 * m1**3,
                m4 - 4 * m1 * m3 - 2 * m2**2 + 10 * m1**2 * m2 - 5 * m1**4]
    np.testing.assert_allclose(k, expected, rtol=1e-12, atol=1e-12)


def test_round_trip():
    m = np.random.default_rng(2).normal(size=9)
    np.testing.assert_allclose(free_cumulants_to_moments(moments_to_free_cumulants(m)), m,
                               rtol=1e-11, atol=1e-11)


# ------------------------------------------------------------------ mixed moments


def test_abab_and_aabb_closed_forms():
    a, b = [1.3, 2.9, 4.0, 9.1], [-0.4, 1.7, -0.2, 5.0]
    m = {"a": a, "b": b}
    assert free_mixed_moment("abab", m) == pytest.approx(
        a[1] * b[0] ** 2 + a[0] ** 2 * b[1] - a[0] ** 2 * b[0] ** 2, rel=1e-13)
    assert free_mixed_moment("aabb", m) == pytest.approx(a[1] * b[1], rel=1e-13)
    assert free_mixed_moment("ab", m) == pytest.approx(a[0] * b[0], rel=1e-13)
    assert free_mixed_moment("a b a", m) == pytest.approx(a[1] * b[0], rel=1e-13)


def _brute_mixed(word, cumulants):
    """sum over non-crossing, monochromatic set partitions of prod kappa (brute force)."""
    total = 0.0
    for p in set_partitions(list(range(len(word)))):
        if crosses(p) or any(len({word[i] for i in b}) > 1 for b in p):
            continue
        total += math.prod(cumulants[word[b[0]]][len(b) - 1] for b in p)
    return total


@pytest.mark.parametrize("word", ["abab", "abac", "aabb", "abcabc", "abacbc", "aabab",
                                  "abcbca", "ababab", "abcd", "aabbab"])
def test_free_mixed_moment_brute_force(word):
    rng = np.random.default_rng(len(word) * 7 + sum(map(ord, word)))
    letters = sorted(set(word))
    kappa = {c: rng.normal(size=len(word)) for c in letters}
    moments = {c: [_brute_mixed(c * k, kappa) for k in range(1, len(word) + 1)]
               for c in letters}
    assert free_mixed_moment(word, moments) == pytest.approx(_brute_mixed(word, kappa),
                                                             rel=1e-12, abs=1e-12)


def test_free_mixed_moment_errors():
    with pytest.raises(ValueError, match="letters"):
        free_mixed_moment("abc", {"a": [1.0], "b": [1.0]})
    with pytest.raises(ValueError, match="m_2"):
        free_mixed_moment("aab", {"a": [1.0], "b": [1.0]})
    with pytest.raises(ValueError, match="word"):
        free_mixed_moment(["a", "b"], {"a": [1.0], "b": [1.0]})


def test_free_moment_errors():
    a = univariate_family("a", [1.0, 2.0])
    with pytest.raises(ValueError, match="two families"):
        free_moment(["a"], [a, univariate_family("a", [1.0])])
    with pytest.raises(ValueError, match="no family"):
        free_moment(["a", "z"], [a])
    with pytest.raises(ValueError, match="elements"):
        Family(["x"], lambda w: 1.0, {"y": Element(("q",))})


def test_centered_elements_alternating_vanish():
    a = univariate_family("a", [0.7, 1.9, 3.0, 8.0]).with_elements({"ac": Element(("a",), True)})
    b = univariate_family("b", [1.5, 2.6, 5.0, 9.0]).with_elements(
        {"b2c": Element(("b", "b"), True)})
    assert free_moment(["ac", "b2c", "ac", "b2c"], [a, b]) == pytest.approx(0.0, abs=1e-13)
    assert free_moment(["ac", "ac"], [a]) == pytest.approx(1.9 - 0.7**2, rel=1e-13)
    # abab formula with m1(ac) = 0: tr(ac b ac b) = tr(ac^2) tr(b)^2
    assert free_moment(["ac", "b", "ac", "b"], [a, b]) == pytest.approx(
        (1.9 - 0.7**2) * 1.5**2, rel=1e-12)
    assert free_moment(["ac", "b2c", "ac", "b"], [a, b]) == pytest.approx(0.0, abs=1e-13)


def test_haar_unitary_cumulants():
    s = 1.3
    fam = haar_unitary_family("u", "v", s)
    for n in range(1, 5):
        alt = [("u",), ("v",)] * n
        assert fam.cumulant(alt) == pytest.approx((-1) ** (n - 1) * catalan(n - 1) * s ** (2 * n),
                                                  rel=1e-12)
        assert fam.cumulant(alt[::-1]) == pytest.approx(fam.cumulant(alt), rel=1e-12)
    assert fam.cumulant([("u",), ("u",), ("v",), ("v",)]) == pytest.approx(0.0, abs=1e-12)
    assert fam.cumulant([("u",)]) == 0.0
    with pytest.raises(ValueError, match="u_star"):
        haar_unitary_family("u", "u")


def test_circular_moments():
    s = 0.8
    fam = circular_family("c", "d", s)
    for k in range(1, 5):
        assert fam.moment(("c", "d") * k) == pytest.approx(catalan(k) * s ** (2 * k), rel=1e-13)
    assert fam.moment(("c", "c", "d", "d")) == pytest.approx(s**4, rel=1e-13)
    assert fam.moment(("c", "c")) == 0.0
    assert fam.cumulant([("c",), ("d",)]) == pytest.approx(s**2, rel=1e-13)
    assert fam.cumulant([("c",), ("d",), ("c",), ("d",)]) == pytest.approx(0.0, abs=1e-13)


def test_commutative_family_is_classical():
    joint = {(2, 2): 0.3, (1, 0): 0.5, (0, 1): 0.2, (1, 1): 0.11, (2, 0): 0.4, (0, 2): 0.1,
             (2, 1): 0.07, (1, 2): 0.05}
    fam = commutative_family(["x", "y"], lambda e: joint[e])
    assert fam.moment(("x", "y", "x", "y")) == fam.moment(("x", "x", "y", "y")) == 0.3
    assert free_moment(["x", "y", "x", "y"], [fam]) == 0.3
    with pytest.raises(ValueError, match="distinct"):
        commutative_family(["x", "x"], lambda e: 1.0)


def test_fuss_catalan_product_of_free_poissons():
    # free Poisson(1) boxtimes free Poisson(1): Fuss-Catalan numbers C(3k, k) / (2k + 1)
    mp = [catalan(k) for k in range(1, 6)]
    np.testing.assert_allclose(multiplicative_convolution_moments(mp, mp, 5),
                               [math.comb(3 * k, k) / (2 * k + 1) for k in range(1, 6)],
                               rtol=1e-12)


def test_abab_monte_carlo_haar_unitary(global_seed):
    # tr(A U B U* A U B U*) for U Haar unitary: free prediction at the empirical marginals;
    # E[defect] = O(1/M^2) (unitary Weingarten), spread O(1/M)
    m, trials = 200, 12
    rng = np.random.default_rng(5 + global_seed)
    a = np.where(rng.random(m) < 0.3, 2.0, -0.5)
    b = rng.exponential(size=m)
    defects = []
    pred = free_mixed_moment("abab", {"a": [a.mean(), (a**2).mean()],
                                      "b": [b.mean(), (b**2).mean()]})
    with single_blas_thread():
        for t in range(trials):
            u = haar_unitary(m, rng=100 + t + 1000 * global_seed)
            y = a[:, None] * ((u * b[None, :]) @ u.conj().T)
            defects.append(np.vdot(y.T.conj(), y).real / m - pred)  # tr(y y) / M
    assert_mean_within(defects, 0.0, bias=10 / m**2)
    se = standard_error(defects)
    # the classical (commuting) value is far away: the test can tell
    classical = (a**2).mean() * (b**2).mean()
    assert abs(classical - pred) > 100 * se


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("activation", ["relu", "hard_tanh", "tanh"])
def test_h_recursion_by_free_cumulants_matches_the_series_engine(activation, weights):
    """Moments of H_l by two independent routes: the Hayase-Karakida recursion computed here
    with free cumulants on NC partitions (boxtimes via the Kreweras complement), against
    ``fim_dual_law`` (S-transform series products and moment shifts)."""
    from dataclasses import replace

    from freeness_lab import NetworkSpec
    from freeness_lab.theory import fim_dual_law, meanfield

    spec = NetworkSpec(activation, weights, depth=4, width=1, sigma_w=1.3, sigma_b=0.2, q0=0.8)
    n, k = 4, np.arange(1, 5)
    qhat, q = meanfield.post_activation_moments(spec), meanfield.preactivation_variances(spec)
    catalan = np.array([math.comb(2 * j, j) / (j + 1) for j in k])
    m = qhat[0] ** k  # H_1 = q0 I
    for layer in range(1, spec.depth + 1):
        expected = fim_dual_law(replace(spec, depth=layer)).moments(n)
        np.testing.assert_allclose(m, expected, rtol=1e-12)
        x = multiplicative_convolution_moments(meanfield.d2_moments(activation, q[layer - 1], n),
                                               m, n)
        w2 = spec.sigma_w ** (2 * k)
        x = multiplicative_convolution_moments(x, w2 * catalan, n) if weights == "gaussian" \
            else x * w2
        full = np.concatenate([[1.0], x])  # shift by qhat_l: binomial expansion
        m = np.array([sum(math.comb(j, i) * qhat[layer] ** (j - i) * full[i]
                          for i in range(j + 1)) for j in k])
