"""Activation registry: phi' is the derivative of phi, names and errors."""

import numpy as np
import pytest

from freeness_lab.activations import ACTIVATION_NAMES, get_activation

SMOOTH = ["tanh", "erf", "sigmoid", "silu", "gelu"]


@pytest.mark.parametrize("name", [n for n in ACTIVATION_NAMES])
def test_dphi_is_derivative_of_phi(name):
    act = get_activation(name)
    # stay off the kinks of piecewise-linear activations (0 and +-1)
    x = np.linspace(-3.1, 3.1, 41) + 0.013
    step = 1e-6
    numeric = (act.phi(x + step) - act.phi(x - step)) / (2 * step)
    np.testing.assert_allclose(act.dphi(x), numeric, atol=1e-8)


@pytest.mark.parametrize("name", ["relu", "hard_tanh", "linear", "leaky_relu(0.3)"])
def test_pieces_match_dphi(name):
    act = get_activation(name)
    assert act.is_piecewise_linear
    for a, b, slope in act.pieces:
        lo, hi = max(a, -50.0), min(b, 50.0)
        x = np.linspace(lo, hi, 9)[1:-1]
        np.testing.assert_array_equal(act.dphi(x), slope)


def test_smooth_activations_have_no_pieces():
    assert not any(get_activation(n).is_piecewise_linear for n in SMOOTH)


def test_known_values():
    x = np.array([-2.0, 0.5])
    np.testing.assert_allclose(get_activation("relu").phi(x), [0.0, 0.5])
    np.testing.assert_allclose(get_activation("hard_tanh").phi(np.array([-2.0, 0.5, 3.0])),
                               [-1.0, 0.5, 1.0])
    np.testing.assert_allclose(get_activation("leaky_relu(0.2)").phi(x), [-0.4, 0.5])
    np.testing.assert_allclose(get_activation("leaky_relu").phi(x), [-0.02, 0.5])
    np.testing.assert_allclose(get_activation("silu").phi(np.array([0.0])), [0.0])
    assert get_activation("swish") is get_activation("silu")


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        get_activation("softplusx")
    message = str(info.value)
    assert "softplusx" in message
    for name in ("relu", "hard_tanh", "tanh", "erf", "gelu", "leaky_relu"):
        assert name in message


def test_bad_leaky_slope():
    with pytest.raises(ValueError, match="slope"):
        get_activation("leaky_relu(abc)")
