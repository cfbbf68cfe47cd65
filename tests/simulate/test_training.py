"""Tests of freeness_lab.simulate.training: init conventions, gradients, the MSE normalization
behind the learning-rate threshold, and divergence detection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.simulate import sample_network
from freeness_lab.simulate.training import (
    accuracy,
    init_mlp,
    loss_and_gradient,
    train,
)


def _spec(**kw):
    base = dict(activation="tanh", weights="gaussian", depth=3, widths=(5, 7, 6, 4),
                sigma_w=1.3, sigma_b=0.2)
    base.update(kw)
    return NetworkSpec(**base)


def test_init_draws_the_parameters_of_sample_network():
    spec = NetworkSpec("relu", "orthogonal", depth=3, width=20, sigma_w=2**0.5, sigma_b=0.3)
    x0 = np.random.default_rng(1).standard_normal(20)
    net = sample_network(spec, 7, x0=x0)
    mlp = init_mlp(spec, 7)
    for a, b in zip(mlp.weights + mlp.biases, net.weights + net.biases, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(mlp.predict(x0[None, :])[0], net.forward(x0), rtol=1e-12)


def test_init_variances_follow_the_project_conventions():
    n = 400
    spec = NetworkSpec("relu", "gaussian", depth=1, widths=(n, n), sigma_w=1.7, sigma_b=0.4)
    mlp = init_mlp(spec, 3)
    w = mlp.weights[0].ravel()
    # sample variance of n^2 iid N(0, s^2): SE = s^2 sqrt(2 / (n^2 - 1))
    target = 1.7**2 / n
    assert abs(w.var() - target) < 5 * target * math.sqrt(2 / (w.size - 1))
    b = mlp.biases[0]
    assert abs(b.var() - 0.16) < 5 * 0.16 * math.sqrt(2 / (n - 1))
    orth = init_mlp(NetworkSpec("tanh", "orthogonal", depth=1, width=50, sigma_w=1.5), 4)
    np.testing.assert_allclose(orth.weights[0] @ orth.weights[0].T, 2.25 * np.eye(50),
                               atol=1e-12)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_backward_matches_finite_differences(loss):
    spec = _spec()
    mlp = init_mlp(spec, 0)
    gen = np.random.default_rng(1)
    x = gen.standard_normal((8, 5))
    y = gen.integers(0, 4, 8) if loss == "cross_entropy" else gen.standard_normal((8, 4))
    out, cache = mlp.forward(x)
    _, grad = loss_and_gradient(loss, out, y)
    dws, dbs = mlp.backward(cache, grad)
    h = 1e-6
    for params, grads in ((mlp.weights, dws), (mlp.biases, dbs)):
        for p, g in zip(params, grads, strict=True):
            idx = tuple(gen.integers(0, s) for s in p.shape)
            old = p[idx]
            p[idx] = old + h
            up = loss_and_gradient(loss, mlp.predict(x), y)[0]
            p[idx] = old - h
            down = loss_and_gradient(loss, mlp.predict(x), y)[0]
            p[idx] = old
            assert abs((up - down) / (2 * h) - g[idx]) < 1e-7 * max(1.0, abs(g[idx]))


def test_cross_entropy_closed_form():
    out = np.array([[0.0, 0.0], [math.log(3.0), 0.0]])
    value, grad = loss_and_gradient("cross_entropy", out, np.array([0, 1]))
    assert value == pytest.approx(0.5 * (math.log(2) + math.log(4)))
    np.testing.assert_allclose(grad, np.array([[-0.5, 0.5], [0.75, -0.75]]) / 2)


def test_mse_step_moves_the_output_by_minus_eta_h_l_residual():
    """(1/(2M)) ||f - y||^2 makes one GD step f -> f - eta H_L (f - y) + O(eta^2), with
    H_L = (1/M) G G^T the FIM dual (biases included): the normalization of the 2/lambda_max
    threshold."""
    m = 30
    spec = NetworkSpec("tanh", "orthogonal", depth=3, width=m, sigma_w=1.1, sigma_b=0.3)
    x0 = np.random.default_rng(2).standard_normal(m)
    net = sample_network(spec, 5, x0=x0)
    h_l = net.fim_dual(include_bias=True)
    y = np.random.default_rng(3).standard_normal(m)
    r0 = net.forward(x0) - y
    for eta in (1e-3, 1e-4):
        mlp = init_mlp(spec, 5)
        train(mlp, x0[None, :], y[None, :], loss="mse", lr=eta, epochs=1, rng=0)
        step = mlp.predict(x0[None, :])[0] - net.forward(x0)
        predicted = -eta * h_l @ r0
        # first order in eta: the relative error shrinks with eta
        assert np.linalg.norm(step - predicted) < 50 * eta * np.linalg.norm(predicted)


def test_training_reduces_the_loss_and_reports_accuracy():
    gen = np.random.default_rng(0)
    x = gen.standard_normal((200, 6))
    labels = (x[:, 0] + x[:, 1] > 0).astype(int)
    spec = NetworkSpec("relu", "gaussian", depth=2, widths=(6, 16, 2), sigma_w=2**0.5)
    mlp = init_mlp(spec, 1)
    res = train(mlp, x, labels, loss="cross_entropy", lr=0.1, epochs=20, rng=2, batch_size=32)
    assert not res.diverged and res.steps == 20 * 7
    assert res.losses[-1] < 0.5 * res.losses[0]
    assert accuracy(mlp, x, labels) > 0.9


def test_divergence_is_flagged_not_dropped():
    spec = _spec(sigma_w=3.0)
    gen = np.random.default_rng(0)
    x, y = gen.standard_normal((16, 5)), gen.standard_normal((16, 4))
    res = train(init_mlp(spec, 0), x, y, loss="mse", lr=1e3, epochs=50, rng=0)
    assert res.diverged and res.reason in ("exploding", "non-finite")
    assert res.final_loss == math.inf and res.diverged_at >= 1
    assert len(res.losses) >= 1
    nan_x = x.copy()
    nan_x[0, 0] = np.nan
    res = train(init_mlp(spec, 0), nan_x, y, loss="mse", lr=0.1, epochs=2, rng=0,
                explode_factor=1e300)
    assert res.diverged and res.reason == "non-finite"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"loss": "hinge"}, "loss"), ({"lr": -1.0}, "lr"), ({"epochs": 0}, "epochs"),
    ({"batch_size": 0}, "batch_size")])
def test_bad_arguments_name_the_field(kwargs, field):
    args = dict(loss="mse", lr=0.1, epochs=1, rng=0)
    args.update(kwargs)
    x, y = np.zeros((4, 5)), np.zeros((4, 4))
    with pytest.raises(ValueError, match=field):
        train(init_mlp(_spec(), 0), x, y, **args)
