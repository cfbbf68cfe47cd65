"""Activation registry: phi' is the derivative of phi, names and errors."""

import math

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


@pytest.mark.parametrize("name", ["tanh", "erf", "sigmoid", "silu", "gelu"])
def test_jet_is_the_derivatives_of_dphi(name):
    """(phi', .., phi'''') in closed form against phi' and against Cauchy's integral formula
    on the complex phi' (radius 0.25, 128 points: exact to rounding for these entire or
    strip-analytic functions), to 1e-13 of each derivative's largest value on [-8, 8]."""
    act = get_activation(name)
    x = np.linspace(-8.0, 8.0, 81)
    jet = act.dphi_jet(x)
    assert jet.shape == (4, x.size)
    # absolutely: 1 - tanh^2 (tanh's phi') keeps no relative accuracy in the tails
    np.testing.assert_allclose(jet[0], act.dphi(x), rtol=0, atol=1e-15)
    theta = 2 * np.pi * np.arange(128) / 128
    vals = act.analytic_dphi(x[:, None] + 0.25 * np.exp(1j * theta))
    for k in (1, 2, 3):
        ref = math.factorial(k) * (vals * np.exp(-1j * k * theta)).mean(1).real / 0.25**k
        assert np.abs(jet[k] - ref).max() <= 1e-13 * np.abs(ref).max(), (name, k)


def test_jet_tails_do_not_cancel():
    """Far in the tails the jet keeps its relative accuracy where 1 - tanh^2 is zero:
    phi'(20) of tanh is 4 e^-40 (to 1e-17), and phi'' / phi' = -2 tanh = -2 there."""
    jet = get_activation("tanh").dphi_jet(np.array([20.0, 300.0]))
    np.testing.assert_allclose(jet[0], 4 * np.exp([-40.0, -600.0]), rtol=1e-12)
    np.testing.assert_allclose(jet[1] / jet[0], -2.0, rtol=1e-12)
