"""Word notation and normalized traces of words against dense brute-force products."""

import math

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.simulate.network import sample_network
from freeness_lab.simulate.words import (
    Letter,
    WordEvaluator,
    check_dimensions,
    dimension_mismatch,
    format_word,
    matmul_count,
    parse_word,
    word_trace,
)

WORDS = ["W2 D1 W2^T D2", "D1 W2 D1c", "D1", "D1c D2^2c D1", "W1", "H2", "H3c",
         "W1^T^2c D1 W1 D3 H3c D2", "W2 W2^T", "D2 W2 D1 W1 W1^T D1 W2^T D2",
         "H2 D2^2 H2 D2^2", "(D1 - tr D1) W1^T^3", "W3^2 D3 W1^T D2c W2 H2 D1^3",
         "D3 W3 W2 W1"]


def brute(net, letters):
    """tr of the product of the dense matrices, formed explicitly (normalized by the rows of
    the first letter)."""
    hs = [net.truncated(layer).fim_dual() for layer in range(1, net.spec.depth + 1)]
    p = None
    for x in letters:
        if x.name == "W":
            a = net.weights[x.layer - 1].T if x.transpose else net.weights[x.layer - 1]
        elif x.name == "D":
            a = np.diag(net.derivatives[x.layer - 1])
        else:
            a = hs[x.layer - 1]
        if x.power != 1:
            a = np.linalg.matrix_power(a, x.power)
        if x.centered:
            a = a - np.trace(a) / len(a) * np.eye(len(a))
        p = a if p is None else p @ a
    return np.trace(p) / len(p)


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_traces_match_dense_products(weights):
    spec = NetworkSpec("tanh", weights, depth=3, width=24, sigma_w=1.3, sigma_b=0.2)
    net = sample_network(spec, rng=3)
    ev = WordEvaluator(net)
    for w in WORDS:
        assert ev(w) == pytest.approx(brute(net, parse_word(w)), rel=1e-11, abs=1e-13), w


def test_exact_identities():
    spec = NetworkSpec("relu", "orthogonal", depth=2, width=30, sigma_w=math.sqrt(2.0), q0=1.7)
    net = sample_network(spec, rng=0)
    assert word_trace(net, "W1 W1^T") == pytest.approx(2.0, rel=1e-13)
    assert word_trace(net, "W2^T D1^2 W2") == pytest.approx(2.0 * word_trace(net, "D1"),
                                                            rel=1e-13)
    assert word_trace(net, "D1c") == pytest.approx(0.0, abs=1e-15)
    assert word_trace(net, "H1") == pytest.approx(1.7 + 1 / 30, rel=1e-13)  # qhat_0 + 1/M


def test_parse_and_format():
    letters = parse_word("  W2^T^3c   D1^2 (D1 - tr D1) H3 ")
    assert letters == (Letter("W", 2, True, 3, True), Letter("D", 1, power=2),
                       Letter("D", 1, centered=True), Letter("H", 3))
    assert format_word(letters) == "W2^T^3c D1^2 D1c H3"
    assert parse_word(format_word(letters)) == letters
    assert parse_word(letters) == letters
    assert letters[0].base == Letter("W", 2, True)


@pytest.mark.parametrize("bad, match", [
    ("W0", "'W0'"), ("X1", "'X1'"), ("D1^T", "applies to W only"), ("", "empty"),
    ("W1 ^2", "'\\^2'"), ("W1^0", "'W1\\^0'"), ("(D1 - tr D2)", "same X"),
    ("W1^2^T", "'W1\\^2\\^T'"),
])
def test_bad_words(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_word(bad)


def test_layer_out_of_range():
    with pytest.raises(ValueError, match="depth 2"):
        parse_word("W1 D3", depth=2)
    net = sample_network(NetworkSpec("tanh", "gaussian", depth=2, width=8), rng=0)
    with pytest.raises(ValueError, match="'H3'"):
        word_trace(net, "H3")
    with pytest.raises(ValueError, match="Letter"):
        parse_word([("W", 1)])


#: consistent in widths (5, 7, 4, 7): N_2 = 4 against N_1 = N_3 = 7
RECT_WORDS = ["W2 D1 W2^T D2", "W2^T D2c W2 D1c", "D1 W2^T D2 W2", "H2c D2c H2c D2c",
              "D3 W3 D2 W2 W2^T D2 W3^T D3", "W1^T D1 W1", "W3 W2 D1c W2^T W3^T D3^2",
              "W3^T D3^2c W3 H2^2 W3^T D3 W3 D2", "D1 W1 W1^T D1^2c", "W3 W2 W1 W1^T W2^T W3^T",
              "D1c D3c D1c D3^2"]


def test_rectangular_traces_match_dense_products():
    spec = NetworkSpec("tanh", "gaussian", depth=3, widths=(5, 7, 4, 7), sigma_w=1.3,
                       sigma_b=0.2)
    net = sample_network(spec, rng=3)
    ev = WordEvaluator(net)
    for w in RECT_WORDS:
        assert dimension_mismatch(w, spec.layer_widths) is None, w
        assert ev(w) == pytest.approx(brute(net, parse_word(w)), rel=1e-11, abs=1e-13), w
    # rotation keeps Tr: tr_{N_1}(W2^T D2 W2 D1) = (N_2 / N_1) tr_{N_2}(W2 D1 W2^T D2)
    assert ev("W2^T D2 W2 D1") == pytest.approx(4 / 7 * ev("W2 D1 W2^T D2"), rel=1e-12)


@pytest.mark.parametrize("word, match", [
    ("W1 D1c W1^T D1c", r"^word 'W1 D1c W1\^T D1c': W1 \(N_1 x N_0 = 7 x 5\) is followed at "
                        r"position 2 by D1c \(N_1 x N_1 = 7 x 7\): N_0 = 5 columns against "
                        r"N_1 = 7 rows$"),
    ("W2 D2c W2 D2c", r"position 2 by D2c .*: N_1 = 7 columns against N_2 = 4 rows$"),
    ("D1 D2", r"position 2 by D2 .*: N_1 = 7 columns against N_2 = 4 rows$"),
    ("W2 D1", r"^word 'W2 D1': D1 \(N_1 x N_1 = 7 x 7\) at position 2 does not close the "
              r"trace on position 1, W2 \(N_2 x N_1 = 4 x 7\): N_1 = 7 columns against "
              r"N_2 = 4 rows$"),
    ("W2^2 D1", r"W2\^2 \(N_2 x N_1 = 4 x 7\) at position 1 is not square"),
    ("D1 W2c W1", r"W2c .* at position 2 is not square"),
])
def test_inconsistent_word_is_refused_in_one_line(word, match):
    spec = NetworkSpec("tanh", "gaussian", depth=3, widths=(5, 7, 4, 7))
    ev = WordEvaluator(sample_network(spec, rng=0))
    with pytest.raises(ValueError, match=match) as err:
        ev(word)
    assert "\n" not in str(err.value)
    assert check_dimensions(word, (1, 1, 1, 1)) == parse_word(word)  # square: consistent
    ratios = dimension_mismatch(word, (1, 1.5, 0.75, 1.5), "M")
    assert ratios is not None and "\n" not in ratios and "M columns against" in ratios \
        or "not square" in ratios


def test_matmul_count():
    assert matmul_count("D1 D2") == 0
    assert matmul_count("W2 D1 W2^T D2") == 0
    assert matmul_count("D2 W2 D1 W1 W1^T D1 W2^T D2") == 2
    assert matmul_count("W1^3 D1") == 1
    assert matmul_count("W1^3c D1 W2") == 2  # W1^3 formed (2), then 2 dense factors (0)
