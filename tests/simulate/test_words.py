"""Word notation and normalized traces of words against dense brute-force products."""

import math

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.simulate.network import sample_network
from freeness_lab.simulate.words import (
    Letter,
    WordEvaluator,
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
    """tr of the product of the dense matrices, formed explicitly."""
    m = net.spec.width
    hs = [net.truncated(layer).fim_dual() for layer in range(1, net.spec.depth + 1)]
    p = np.eye(m)
    for x in letters:
        if x.name == "W":
            a = net.weights[x.layer - 1].T if x.transpose else net.weights[x.layer - 1]
        elif x.name == "D":
            a = np.diag(net.derivatives[x.layer - 1])
        else:
            a = hs[x.layer - 1]
        a = np.linalg.matrix_power(a, x.power)
        if x.centered:
            a = a - np.trace(a) / m * np.eye(m)
        p = p @ a
    return np.trace(p) / m


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


def test_square_networks_only():
    spec = NetworkSpec("tanh", "gaussian", depth=2, widths=(5, 6, 6))
    with pytest.raises(ValueError, match="square"):
        WordEvaluator(sample_network(spec, rng=0))


def test_matmul_count():
    assert matmul_count("D1 D2") == 0
    assert matmul_count("W2 D1 W2^T D2") == 0
    assert matmul_count("D2 W2 D1 W1 W1^T D1 W2^T D2") == 2
    assert matmul_count("W1^3 D1") == 1
    assert matmul_count("W1^3c D1 W2") == 2  # W1^3 formed (2), then 2 dense factors (0)
