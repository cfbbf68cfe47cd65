"""Plain numpy training of the MLP of a :class:`~freeness_lab.spec.NetworkSpec`.

The trained network is the spec's MLP with a linear readout (``docs/conventions.md`` section 2)::

    h^l = W^l x^{l-1} + b^l,   x^l = phi(h^l)  (l < L),   output f(x^0) = h^L,

initialized with the project's conventions: Gaussian W^l_ij ~ N(0, sigma_w^2 / N_{l-1}) or
scaled Haar orthogonal W^l (:func:`~freeness_lab.simulate.ensembles.sample_weight`), biases
b^l_i ~ N(0, sigma_b^2). Draw order: W^1, b^1, W^2, b^2, ... -- the order of
:func:`~freeness_lab.simulate.network.sample_network` once its input is given, so that
``init_mlp(spec, seed)`` and ``sample_network(spec, seed, x0)`` hold the same parameters.

Batches are rows: inputs X of shape (B, N_0), outputs of shape (B, N_L). Losses (means over
the batch):

- ``"cross_entropy"``: -(1/B) sum_b log softmax(f(x_b))_{y_b}, integer labels y_b.
- ``"mse"``: (1 / (2 B N_L)) sum_b ||f(x_b) - y_b||^2. With this normalization one full-batch
  gradient step on a single input moves the output by -eta H_L (f - y) to first order, where
  H_L = (1/N_L) G G^T, G = d h^L / d theta, is the FIM dual of
  :meth:`~freeness_lab.simulate.network.SampledNetwork.fim_dual` (Hayase & Karakida 2021).
  The linearized dynamics f_t - y = (I - eta H_L)^t (f_0 - y) are stable iff
  eta < 2 / lambda_max(H_L).

Training is mini-batch SGD (:func:`train`). A run whose loss becomes non-finite, or exceeds
``explode_factor`` times its initial loss, is flagged as diverged (with the step and the
reason) and stopped; it is never silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from freeness_lab.activations import Activation
from freeness_lab.rng import RngLike, as_generator
from freeness_lab.simulate.ensembles import sample_weight
from freeness_lab.spec import NetworkSpec

__all__ = ["LOSSES", "MLP", "TrainResult", "accuracy", "init_mlp", "loss_and_gradient",
           "train"]

#: loss names accepted by :func:`loss_and_gradient` and :func:`train`
LOSSES: tuple[str, ...] = ("cross_entropy", "mse")


@dataclass(eq=False)
class MLP:
    """Parameters of an MLP with a linear readout.

    Attributes
    ----------
    weights : list of numpy.ndarray
        W^1..W^L, W^l of shape (N_l, N_{l-1}).
    biases : list of numpy.ndarray
        b^1..b^L, b^l of shape (N_l,).
    activation : Activation
        phi, applied after layers 1..L-1.
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: Activation

    @property
    def depth(self) -> int:
        """Number of layers L."""
        return len(self.weights)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output f(X) = h^L for a batch X (B, N_0), and the cache for :meth:`backward`.

        The cache is [x^0, h^1, x^1, ..., h^{L-1}, x^{L-1}] (row batches).
        """
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.weights[0].shape[1]:
            raise ValueError(f"x: must have shape (B, N_0) with N_0 = "
                             f"{self.weights[0].shape[1]}, got {x.shape}")
        cache = [x]
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = x @ w.T
            h += b
            x = self.activation.phi(h)
            cache += [h, x]
        out = x @ self.weights[-1].T
        out += self.biases[-1]
        return out, cache

    def backward(self, cache: list[np.ndarray],
                 grad_out: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradients (dW^1..dW^L, db^1..db^L) of a scalar loss with d loss / d f = grad_out.

        Backpropagation: delta^L = grad_out, dW^l = delta^l^T x^{l-1}, db^l = sum_b delta^l,
        delta^{l-1} = (delta^l W^l) * phi'(h^{l-1}).
        """
        delta = grad_out
        dws: list[np.ndarray] = [np.empty(0)] * self.depth
        dbs: list[np.ndarray] = [np.empty(0)] * self.depth
        for layer in range(self.depth - 1, -1, -1):
            x_prev = cache[2 * layer]
            dws[layer] = delta.T @ x_prev
            dbs[layer] = delta.sum(axis=0)
            if layer:
                delta = (delta @ self.weights[layer]) * self.activation.dphi(cache[2 * layer - 1])
        return dws, dbs

    def predict(self, x: np.ndarray) -> np.ndarray:
        """f(X) = h^L, shape (B, N_L)."""
        return self.forward(x)[0]

    def is_finite(self) -> bool:
        """True when every parameter is finite."""
        return all(np.all(np.isfinite(p)) for p in (*self.weights, *self.biases))


def init_mlp(spec: NetworkSpec, rng: RngLike) -> MLP:
    """Draw the parameters of ``spec``'s MLP (weights then bias, layer after layer).

    W^l from :func:`~freeness_lab.simulate.ensembles.sample_weight` (Gaussian variance
    sigma_w^2 / N_{l-1}, or sigma_w sqrt(max(1, N_l / N_{l-1})) times a Haar block), then
    b^l = sigma_b z, z ~ N(0, I) (drawn even when sigma_b = 0).

    Parameters
    ----------
    spec : NetworkSpec
        Activation, ensemble, widths N_0..N_L, sigma_w, sigma_b (q0 is not used).
    rng : numpy.random.Generator or int
        Source of randomness.

    Examples
    --------
    >>> spec = NetworkSpec("relu", "gaussian", depth=2, widths=(4, 8, 3), sigma_w=2 ** 0.5)
    >>> [w.shape for w in init_mlp(spec, rng=0).weights]
    [(8, 4), (3, 8)]
    """
    gen = as_generator(rng)
    widths = spec.layer_widths
    weights, biases = [], []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        weights.append(np.ascontiguousarray(
            sample_weight(spec.weights, n_out, n_in, spec.sigma_w, gen)))
        b = gen.standard_normal(n_out)
        b *= spec.sigma_b
        biases.append(b)
    return MLP(weights, biases, spec.act)


def loss_and_gradient(loss: str, out: np.ndarray,
                      target: np.ndarray) -> tuple[float, np.ndarray]:
    """Batch-mean loss and its gradient d loss / d out.

    Parameters
    ----------
    loss : {"cross_entropy", "mse"}
        ``cross_entropy``: -(1/B) sum_b log softmax(out_b)[target_b], gradient
        (softmax(out) - onehot(target)) / B; ``target`` holds integer labels (B,).
        ``mse``: (1 / (2 B N)) ||out - target||_F^2, gradient (out - target) / (B N);
        ``target`` has the shape of ``out`` (B, N).
    out : numpy.ndarray
        Network outputs (B, N).
    target : numpy.ndarray
        Labels or regression targets.
    """
    b, n = out.shape
    if loss == "cross_entropy":
        labels = np.asarray(target)
        if labels.shape != (b,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"target: cross_entropy needs integer labels of shape ({b},), got "
                             f"{labels.dtype} {labels.shape}")
        logp = out - special.logsumexp(out, axis=1, keepdims=True)
        value = -float(np.mean(logp[np.arange(b), labels]))
        grad = np.exp(logp)
        grad[np.arange(b), labels] -= 1.0
        grad /= b
        return value, grad
    if loss == "mse":
        if target.shape != out.shape:
            raise ValueError(f"target: mse needs the output's shape {out.shape}, "
                             f"got {target.shape}")
        resid = out - target
        return float(np.sum(resid * resid)) / (2 * b * n), resid / (b * n)
    raise ValueError(f"loss: must be one of {', '.join(LOSSES)}, got {loss!r}")


def accuracy(mlp: MLP, x: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows of X whose largest output is at the label."""
    return float(np.mean(np.argmax(mlp.predict(x), axis=1) == np.asarray(labels)))


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    losses : numpy.ndarray
        Full training loss before training (index 0) and after each epoch.
    diverged : bool
        True when training was stopped because the loss or a parameter became non-finite,
        or the loss exceeded ``explode_factor`` times its initial value.
    diverged_at : int or None
        The SGD step (counted from 1) at which divergence was detected.
    reason : str
        Empty, ``"non-finite"`` or ``"exploding"``.
    final_loss : float
        Last full training loss (``inf`` when diverged).
    steps : int
        SGD steps taken.
    """

    losses: np.ndarray
    diverged: bool
    diverged_at: int | None
    reason: str
    final_loss: float
    steps: int


def _check_positive(name: str, value: object, integer: bool = False) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
          and math.isfinite(float(value)) and value > 0 and
          (not integer or float(value).is_integer()))
    if not ok:
        kind = "an integer >= 1" if integer else "a finite number > 0"
        raise ValueError(f"{name}: must be {kind}, got {value!r}")


def train(mlp: MLP, x: np.ndarray, y: np.ndarray, *, loss: str, lr: float, epochs: int,
          rng: RngLike, batch_size: int | None = None,
          explode_factor: float = 1e6) -> TrainResult:
    """Mini-batch SGD on (X, y), in place: theta <- theta - lr * grad of the batch-mean loss.

    Each epoch visits the rows of X once in a fresh random order (drawn from ``rng``), in
    batches of ``batch_size`` (the last one may be smaller); ``batch_size=None`` is full-batch
    gradient descent (one step per epoch, no shuffling).

    Parameters
    ----------
    mlp : MLP
        Trained in place.
    x, y : numpy.ndarray
        Inputs (n, N_0) and targets (labels (n,) or outputs (n, N_L), see
        :func:`loss_and_gradient`).
    loss : {"cross_entropy", "mse"}
    lr : float
        Learning rate eta > 0.
    epochs : int
        Passes over the data, >= 1.
    rng : numpy.random.Generator or int
        Source of the shuffling.
    batch_size : int, optional
        Mini-batch size, or None for full batch.
    explode_factor : float
        Divergence threshold on the loss, relative to the initial full training loss.

    Returns
    -------
    TrainResult
        Diverged runs are flagged and stopped at the step where it was detected.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: must be one of {', '.join(LOSSES)}, got {loss!r}")
    _check_positive("lr", lr)
    _check_positive("epochs", epochs, integer=True)
    _check_positive("explode_factor", explode_factor)
    if batch_size is not None:
        _check_positive("batch_size", batch_size, integer=True)
    gen = as_generator(rng)
    x, y = np.asarray(x, dtype=float), np.asarray(y)
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"y: must have {n} rows like x, got {y.shape[0]}")
    bs = n if batch_size is None else min(int(batch_size), n)
    first = loss_and_gradient(loss, mlp.predict(x), y)[0]
    losses, step = [first], 0
    limit = explode_factor * max(first, np.finfo(float).tiny)

    def stop(reason: str) -> TrainResult:
        return TrainResult(np.array(losses), True, step, reason, math.inf, step)

    # overflow is detected below (non-finite or exploding loss), not warned about
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(int(epochs)):
            order = np.arange(n) if batch_size is None else gen.permutation(n)
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                out, cache = mlp.forward(x[idx])
                value, grad = loss_and_gradient(loss, out, y[idx])
                step += 1
                if not math.isfinite(value):
                    return stop("non-finite")
                if value > limit:
                    return stop("exploding")
                dws, dbs = mlp.backward(cache, grad)
                for p, g in zip((*mlp.weights, *mlp.biases), (*dws, *dbs), strict=True):
                    p -= lr * g
            current = loss_and_gradient(loss, mlp.predict(x), y)[0]
            losses.append(current)
            if not (math.isfinite(current) and mlp.is_finite()):
                return stop("non-finite")
            if current > limit:
                return stop("exploding")
    return TrainResult(np.array(losses), False, None, "", losses[-1], step)
