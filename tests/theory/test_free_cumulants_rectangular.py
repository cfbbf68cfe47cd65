"""Free predictions of rectangular words (:mod:`freeness_lab.theory.free_cumulants.rectangular`).

Rule 2 (a rectangular weight pair as the compression of a square free pair) against closed
forms; rule 1 (freeness with amalgamation over the block projections, own-dimension traces)
against two independent routes: the rectangular S-transform law of J J^T
(:func:`freeness_lab.theory.jacobian_law`, series products), and, for Gaussian weights, a
brute-force embedding of the WHOLE word in one dimension K = max N_l with scalar freeness
(every W_l = sigma_w sqrt(K / N_{l-1}) P_l C_l P_{l-1}, the C_l circular, free from the
commutative family of the coordinate projections P_l and the D's).
"""

import math
from dataclasses import replace

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.simulate.words import dimension_mismatch, letter_layers, parse_word
from freeness_lab.theory import jacobian_law, meanfield
from freeness_lab.theory.free_cumulants import (
    Family,
    chain_rows,
    circular_family,
    commutative_family,
    free_moment,
    rectangular_weight_family,
)
from freeness_lab.theory.predictions import dphi_moment, limit_family

SIGMA = 1.3


def narayana(k, j):
    return math.comb(k, j) * math.comb(k, j - 1) // k


@pytest.mark.parametrize("n_out, n_in", [(2, 1), (1, 2), (3, 2), (1, 3)])
def test_weight_family_closed_forms(n_out, n_in):
    s2 = SIGMA**2
    for haar in (True, False):
        f = rectangular_weight_family("W", "W^T", n_out, n_in, SIGMA, haar=haar)
        assert f.moment(("W", "W^T")) == pytest.approx(s2, rel=1e-13)
        assert f.moment(("W^T", "W")) == pytest.approx(s2 * n_out / n_in, rel=1e-13)
        assert f.cumulant([("W",), ("W^T",)]) == pytest.approx(s2, rel=1e-13)
        assert f.cumulant([("W^T",), ("W",)]) == pytest.approx(s2 * n_out / n_in, rel=1e-13)
        # words that do not chain or do not close have B-valued expectation 0
        for word in [("W",), ("W^T",), ("W", "W"), ("W", "W^T", "W"), ("W^T", "W^T", "W")]:
            assert f.moment(word) == 0.0
        for k in (2, 3, 4):
            out, inn = f.moment(("W", "W^T") * k), f.moment(("W^T", "W") * k)
            if haar:  # the larger side is an isometry: s^2 I, the other s^2 Q, tr Q = ratio
                big = SIGMA ** (2 * k) * max(1, n_out / n_in) ** k
                small = n_in / n_out if n_out >= n_in else n_out / n_in
                expect = (big * small, big) if n_out >= n_in else (big, big * small)
            else:  # Marchenko-Pastur, c = N_out / N_in, and tr_in = c tr_out
                c = n_out / n_in
                mp = SIGMA ** (2 * k) * sum(narayana(k, j) * c ** (j - 1)
                                            for j in range(1, k + 1))
                expect = (mp, c * mp)
            assert (out, inn) == pytest.approx(expect, rel=1e-12), (haar, k)
    gauss = rectangular_weight_family("W", "W^T", n_out, n_in, SIGMA, haar=False)
    # Gaussian: B-valued circular, every cumulant but kappa_2 vanishes
    assert gauss.cumulant([("W",), ("W^T",), ("W",), ("W^T",)]) == pytest.approx(0, abs=1e-12)
    assert gauss.cumulant([("W^T",), ("W",)] * 3) == pytest.approx(0, abs=1e-12)


def test_square_weight_family_is_the_square_pair():
    for haar in (True, False):
        f = rectangular_weight_family("W", "W^T", 5, 5, SIGMA, haar=haar)
        for word in [("W", "W^T"), ("W", "W", "W^T", "W^T"), ("W", "W^T") * 3]:
            expect = (SIGMA ** len(word) if haar else
                      circular_family("W", "W^T", SIGMA).moment(word))
            assert f.moment(word) == pytest.approx(expect, rel=1e-12)


def test_chain_rows():
    shapes = {"a": (2, 1), "b": (1, 2), "d": (2, 2)}
    assert chain_rows(("a", "b"), shapes) == 2
    assert chain_rows(("b", "a"), shapes) == 1
    assert chain_rows(("a", "b", "d"), shapes) == 2
    assert chain_rows(("a", "d"), shapes) is None  # does not chain
    assert chain_rows(("d", "a"), shapes) is None  # chains, does not close
    assert chain_rows((), shapes) is None


# --------------------------------------------------------------- whole words, two routes

WIDTHS = (3, 5, 2, 4)  # N_0..N_3 (only the ratios matter in the limit)
SPEC = NetworkSpec("tanh", "gaussian", depth=3, widths=WIDTHS, sigma_w=SIGMA, sigma_b=0.2)
WORDS = ["W2 D1 W2^T D2", "W2^T D2^2 W2 D1", "W2 D1 W2^T D2 W2 D1^2 W2^T D2",
         "D2 W2 D1 W1 W1^T D1 W2^T D2", "W3 W2 D1 W2^T W3^T D3", "W2 D1 W2^T",
         "W3^T D3 W3 D2 W2 W2^T D2", "D1 W2^T D2 W2 D1 W2^T D2^2 W2"]


def expand(word, depth):
    """The letters of a word with powers written out (D1^2 -> D1 D1; no centering here)."""
    return [x.base for x in parse_word(word, depth) for _ in range(x.power)]


def predict(spec, word):
    """The free prediction of a word at the limit marginals of ``spec`` (rule 1)."""
    letters = expand(word, spec.depth)
    haar = spec.weights == "orthogonal"
    groups = {}
    for x in letters:
        groups.setdefault(("W", x.layer) if x.name == "W" else ("D",), set()).add(str(x))
    fams = [limit_family(spec, key[0], sorted(names), [int(n[1]) for n in sorted(names)],
                         haar=haar) for key, names in groups.items()]
    rows = [spec.layer_widths[letter_layers(x)[0]] for x in letters]
    return free_moment([str(x) for x in letters], fams, rows)


def embedded(spec, word):
    """The same word embedded in dimension K = max N_l, scalar freeness (Gaussian only)."""
    widths, k = spec.layer_widths, max(spec.layer_widths)
    q = meanfield.preactivation_variances(spec)
    letters = expand(word, spec.depth)
    proj = [f"P{i}" for i in range(len(widths))]
    diag = [f"D{i}" for i in range(1, spec.depth + 1)]

    def joint(exps):  # nested coordinate projections and D_l on the first N_l coordinates
        p_exps, d_exps = exps[:len(proj)], exps[len(proj):]
        used = [widths[i] for i, e in enumerate(p_exps) if e]
        used += [widths[i + 1] for i, e in enumerate(d_exps) if e]
        return (min(used) / k if used else 1.0) * math.prod(
            dphi_moment(spec, q[i], e) for i, e in enumerate(d_exps) if e)

    fams = [commutative_family(proj + diag, joint)]
    tokens, scale = [], 1.0
    for x in letters:
        if x.name == "W":
            r, c = letter_layers(x)
            tokens += [f"P{r}", f"C{x.layer}*" if x.transpose else f"C{x.layer}", f"P{c}"]
            scale *= SIGMA * math.sqrt(k / widths[x.layer - 1])
        else:
            tokens.append(f"D{x.layer}")
    for layer in {x.layer for x in letters if x.name == "W"}:
        fams.append(circular_family(f"C{layer}", f"C{layer}*"))
    rows = widths[letter_layers(letters[0])[0]]
    return scale * k / rows * free_moment(tokens, fams)


@pytest.mark.parametrize("word", WORDS)
def test_rule_matches_the_embedding_in_one_dimension(word):
    assert dimension_mismatch(word, WIDTHS) is None
    assert predict(SPEC, word) == pytest.approx(embedded(SPEC, word), rel=1e-12)


def test_wick_closed_form_of_a_length_8_word():
    """Gaussian, leading-order Wick: tr_{N_2}(W D1 W^T D2 W D1^2 W^T D2) = sigma^4 (m(D1)
    m(D1^2) m(D2^2) + (N_2 / N_1) m(D1^3) m(D2)^2); the square rule (c = 1) differs."""
    q = meanfield.preactivation_variances(SPEC)
    d1 = [dphi_moment(SPEC, q[0], k) for k in range(4)]
    d2 = [dphi_moment(SPEC, q[1], k) for k in range(4)]
    for widths in (WIDTHS, (1, 1, 1, 1)):
        c = widths[2] / widths[1]
        spec = replace(SPEC, widths=widths)
        expect = SIGMA**4 * (d1[1] * d1[2] * d2[2] + c * d1[3] * d2[1] ** 2)
        assert predict(spec, "W2 D1 W2^T D2 W2 D1^2 W2^T D2") == pytest.approx(expect,
                                                                                rel=1e-12)
    assert abs(predict(SPEC, "W2 D1 W2^T D2 W2 D1^2 W2^T D2")
               - predict(replace(SPEC, widths=(1, 1, 1, 1)), "W2 D1 W2^T D2 W2 D1^2 W2^T D2")
               ) > 0.05


def test_rotation_rescales_by_the_ratio_of_dimensions():
    for word in WORDS:
        letters = expand(word, 3)
        for s in range(1, len(letters)):
            rotated = " ".join(str(x) for x in letters[s:] + letters[:s])
            n0 = WIDTHS[letter_layers(letters[0])[0]]
            ns = WIDTHS[letter_layers(letters[s])[0]]
            assert predict(SPEC, rotated) == pytest.approx(n0 / ns * predict(SPEC, word),
                                                           rel=1e-11), (word, s)


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("widths", [(2, 1, 3), (1, 2, 1), (3, 3, 1), (1, 1, 1)])
def test_jacobian_moments_match_the_s_transform_route(weights, widths):
    """tr_{N_L}((J J^T)^k) by rule 1 against the rectangular S-transform law of J J^T."""
    spec = NetworkSpec("tanh", weights, depth=2, widths=widths, sigma_w=SIGMA, sigma_b=0.2)
    jjt = "D2 W2 D1 W1 W1^T D1 W2^T D2"
    law = jacobian_law(spec).moments(2)
    assert predict(spec, jjt) == pytest.approx(law[0], rel=1e-11)
    assert predict(spec, f"{jjt} {jjt}") == pytest.approx(law[1], rel=1e-11)


def test_rectangular_d_family_vanishes_across_dimensions():
    f = limit_family(SPEC, "D", ["D1", "D2", "D3"], [1, 2, 3], haar=True)
    assert isinstance(f, Family)
    q = meanfield.preactivation_variances(SPEC)
    assert f.moment(("D1", "D3")) == 0.0  # N_1 = 5 != N_3 = 4: the product does not chain
    assert f.moment(("D1", "D1")) == pytest.approx(dphi_moment(SPEC, q[0], 2), rel=1e-14)
    same = replace(SPEC, widths=(3, 5, 2, 5))
    g = limit_family(same, "D", ["D1", "D3"], [1, 3], haar=True)
    assert g.moment(("D1", "D3")) == pytest.approx(
        dphi_moment(same, q[0], 1) * dphi_moment(same, q[2], 1), rel=1e-14)
    assert np.isfinite(predict(same, "D1 D3 W3^T D3 W3"))
