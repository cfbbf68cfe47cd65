"""A sampled random MLP: forward pass, input-output Jacobian and the FIM dual H_L.

The network of a :class:`~freeness_lab.spec.NetworkSpec` (``docs/conventions.md`` section 2)::

    h^l = W^l x^{l-1} + b^l,   x^l = phi(h^l),   D^l = diag(phi'(h^l)),   l = 1..L,

with widths N_0..N_L. Draw order from the generator (fixed, so that a seed names a network):
the input x^0 (when not given), then for l = 1..L the weight W^l followed by the bias b^l
(b^l = sigma_b * z, z ~ N(0, I), drawn even when sigma_b = 0, so changing sigma_b keeps the
same weights).

Two routes give the spectrum of J J^T: :meth:`SampledNetwork.jacobian_spectrum` on a stored
network, and the streaming :func:`jacobian_spectrum`, which keeps at most three N x N matrices
alive (the current weight, the running product and the new product) and returns the identical
array for the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg

from freeness_lab.activations import Activation
from freeness_lab.rng import RngLike, as_generator
from freeness_lab.simulate.ensembles import sample_weight
from freeness_lab.spec import NetworkSpec

__all__ = ["SampledNetwork", "jacobian_spectrum", "sample_network", "EXPLICIT_FIM_MAX_WIDTH"]

#: largest width for which :meth:`SampledNetwork.fim_dual_explicit` forms the parameter Jacobian
EXPLICIT_FIM_MAX_WIDTH = 64


def _input(spec: NetworkSpec, gen: np.random.Generator, x0: np.ndarray | None) -> np.ndarray:
    """x^0: the given vector (checked), or a Gaussian draw rescaled to ||x^0||^2 / N_0 = q0."""
    n0 = spec.layer_widths[0]
    if x0 is None:
        x = gen.standard_normal(n0)
        x *= math.sqrt(spec.q0 * n0 / float(x @ x))
        return x
    x = np.asarray(x0, dtype=float)
    if x.shape != (n0,) or not np.all(np.isfinite(x)):
        raise ValueError(f"x0: must be a finite 1-D array of N_0 = {n0} entries, "
                         f"got shape {x.shape}")
    return x


def _layers(spec: NetworkSpec, gen: np.random.Generator,
            x: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield (W^l, b^l, h^l, x^l, d^l) for l = 1..L, drawing W^l then b^l from ``gen``."""
    act, widths = spec.act, spec.layer_widths
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        w = sample_weight(spec.weights, n_out, n_in, spec.sigma_w, gen)
        b = gen.standard_normal(n_out)
        b *= spec.sigma_b
        h, x, d = _step(act, w, b, x)
        yield w, b, h, x, d
        del w  # the caller decides whether W^l outlives this step


def _step(act: Activation, w: np.ndarray, b: np.ndarray,
          x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One layer of the forward pass: h = W x + b, phi(h), phi'(h)."""
    h = w @ x
    h += b
    return h, act.phi(h), act.dphi(h)


def _accumulate(a: np.ndarray | None, w: np.ndarray, d: np.ndarray, *,
                reuse_w: bool) -> np.ndarray:
    """D W a (D = diag(d)) by row scaling; D W when ``a`` is None (in place if ``reuse_w``)."""
    if a is None:
        if reuse_w:
            w *= d[:, None]
            return w
        return w * d[:, None]
    out = w @ a
    out *= d[:, None]
    return out


def _squared_singular_values(j: np.ndarray) -> np.ndarray:
    """Eigenvalues of J J^T (ascending, N_out of them) as squared singular values of J.

    One values-only SVD (LAPACK gesdd) that overwrites ``j``; zeros pad the spectrum when
    J has fewer columns than rows.
    """
    n_out, n_in = j.shape
    s = scipy.linalg.svd(j if j.flags.f_contiguous else j.T, compute_uv=False,
                         overwrite_a=True, check_finite=False)
    eigs = np.zeros(n_out)
    eigs[n_out - s.size:] = s[::-1] ** 2
    return eigs


@dataclass(eq=False)
class SampledNetwork:
    """One draw of the random MLP of ``spec``, with its forward pass at the input x^0.

    Attributes
    ----------
    spec : NetworkSpec
        The network it was drawn from.
    weights : list of numpy.ndarray
        W^1..W^L, W^l of shape (N_l, N_{l-1}).
    biases : list of numpy.ndarray
        b^1..b^L.
    preactivations : list of numpy.ndarray
        h^1..h^L.
    activations : list of numpy.ndarray
        x^0..x^L (x^0 is the input).
    derivatives : list of numpy.ndarray
        d^1..d^L, d^l = phi'(h^l) so that D^l = diag(d^l) (1-D arrays, never diagonal matrices).
    """

    spec: NetworkSpec
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    preactivations: list[np.ndarray]
    activations: list[np.ndarray]
    derivatives: list[np.ndarray]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The map x^0 -> h^L with this network's weights and biases.

        Parameters
        ----------
        x : numpy.ndarray
            One input (N_0,) or a batch of inputs as columns (N_0, k).

        Returns
        -------
        numpy.ndarray
            h^L, shape (N_L,) or (N_L, k). The output x^L is ``spec.act.phi(forward(x))``,
            whose derivative in x^0 is :meth:`jacobian`.
        """
        x = np.asarray(x, dtype=float)
        if x.ndim not in (1, 2) or x.shape[0] != self.spec.layer_widths[0]:
            raise ValueError(f"x: must have shape (N_0,) or (N_0, k) with "
                             f"N_0 = {self.spec.layer_widths[0]}, got {x.shape}")
        h = None
        for w, b in zip(self.weights, self.biases, strict=True):
            h = w @ (x if h is None else self.spec.act.phi(h))
            h += b if x.ndim == 1 else b[:, None]
        return h

    def jacobian(self) -> np.ndarray:
        """J = D^L W^L ... D^1 W^1 = d x^L / d x^0, shape (N_L, N_0).

        Built left to right by row scaling (D^l W^l a = d^l[:, None] * (W^l a)): L - 1 matrix
        products, no diagonal matrix is formed.
        """
        a = None
        for w, d in zip(self.weights, self.derivatives, strict=True):
            a = _accumulate(a, w, d, reuse_w=False)
        return a

    def layer_jacobians(self) -> list[np.ndarray]:
        """[D^1 W^1, ..., D^L W^L] as (N_l, N_{l-1}) matrices (row-scaled W^l)."""
        return [w * d[:, None] for w, d in zip(self.weights, self.derivatives, strict=True)]

    def jacobian_spectrum(self) -> np.ndarray:
        """Eigenvalues of J J^T, ascending, N_L of them.

        Squared singular values of J (one values-only SVD; J J^T is never formed, since its
        eigenvalues lose the small ones to rounding at depth). When N_0 < N_L the N_L - N_0
        structural zeros are included. Identical to :func:`jacobian_spectrum` for the same
        spec, seed and input.
        """
        return _squared_singular_values(self.jacobian())

    def fim_dual(self, include_bias: bool = True) -> np.ndarray:
        """H_L = (1/M) G G^T with G = d h^L / d theta, by the Hayase-Karakida recursion.

        Parameters theta: every entry of W^1..W^L, and of b^1..b^L if ``include_bias``
        (raw entries, standard parametrization). Normalization: M = N_L, the output width
        (M = width for a square network). With B_l = d h^L / d h^l
        = W^L D^{L-1} ... W^{l+1} D^l (B_L = I), the chain rule gives
        d h^L / d W^l_ij = B_l e_i x^{l-1}_j and d h^L / d b^l_i = B_l e_i, hence

            G G^T = sum_l (||x^{l-1}||^2 + beta) B_l B_l^T,   beta = 1 if include_bias else 0,

        computed layer by layer (Hayase & Karakida, AISTATS 2021)::

            H_1     = (qhat_0 + beta/M) I,
            H_{l+1} = (qhat_l + beta/M) I + W^{l+1} D^l H_l D^l W^{l+1,T},
            qhat_l  = ||x^l||^2 / M   (square network: qhat_0 = q0).

        Each bias adds (1/M) I, which vanishes as M -> infinity: biases change the limit law
        only through sigma_b's effect on D^l and qhat_l. H_L >= qhat_{L-1} I.

        Returns
        -------
        numpy.ndarray
            Symmetric (N_L, N_L) matrix.
        """
        m, beta = self.spec.layer_widths[-1], 1.0 if include_bias else 0.0
        h = None
        for w, x_prev, d_prev in zip(self.weights, self.activations[:-1],
                                     [None, *self.derivatives[:-1]], strict=True):
            shift = (float(x_prev @ x_prev) + beta) / m
            if h is None:
                h = np.diag(np.full(w.shape[0], shift))
            else:
                t = w * d_prev[None, :]
                h = (t @ h) @ t.T
                h[np.diag_indices_from(h)] += shift
        return h

    def fim_dual_explicit(self, include_bias: bool = True) -> np.ndarray:
        """H_L = (1/M) G G^T from the explicit parameter Jacobian G (N_L x P), M = N_L.

        G is formed by backpropagation, B_L = I, B_{l-1} = B_l W^l D^{l-1}, with the blocks
        d h^L / d W^l = B_l (x) x^{l-1} (the (i, j) column is B_l[:, i] x^{l-1}_j) and
        d h^L / d b^l = B_l. Same parameters and normalization as :meth:`fim_dual`, which it
        checks; independent of the recursion.

        Raises
        ------
        ValueError
            If a width exceeds ``EXPLICIT_FIM_MAX_WIDTH`` (= 64): G has sum_l N_l N_{l-1}
            columns.
        """
        widths = self.spec.layer_widths
        if max(widths) > EXPLICIT_FIM_MAX_WIDTH:
            raise ValueError(f"fim_dual_explicit: widths must be <= {EXPLICIT_FIM_MAX_WIDTH} "
                             f"(G is N_L x sum N_l N_(l-1)), got max width {max(widths)}; "
                             f"use fim_dual()")
        n_out = widths[-1]
        b_l, blocks = np.eye(n_out), []
        for layer in range(self.spec.depth - 1, -1, -1):
            x_prev = self.activations[layer]
            blocks.append((b_l[:, :, None] * x_prev[None, None, :]).reshape(n_out, -1))
            if include_bias:
                blocks.append(b_l)
            if layer:
                b_l = (b_l @ self.weights[layer]) * self.derivatives[layer - 1][None, :]
        g = np.hstack(blocks)
        return (g @ g.T) / n_out

    def fim_dual_spectrum(self, include_bias: bool = True) -> np.ndarray:
        """Eigenvalues of :meth:`fim_dual` (ascending; ``eigvalsh``, H_L >= qhat_{L-1} I)."""
        return np.linalg.eigvalsh(self.fim_dual(include_bias))

    def with_weights(self, weights: list[np.ndarray]) -> SampledNetwork:
        """The same input and biases with other weights, the forward pass run again.

        Parameters
        ----------
        weights : list of numpy.ndarray
            One matrix W^l per layer, of the shapes of :attr:`weights`.

        Returns
        -------
        SampledNetwork
        """
        if len(weights) != len(self.weights) or any(
                w.shape != v.shape for w, v in zip(weights, self.weights, strict=True)):
            raise ValueError("weights: must have the number and shapes of the network's own")
        x = self.activations[0]
        net = SampledNetwork(self.spec, list(weights), list(self.biases), [], [x], [])
        for w, b in zip(weights, self.biases, strict=True):
            h, x, d = _step(self.spec.act, w, b, x)
            net.preactivations.append(h)
            net.activations.append(x)
            net.derivatives.append(d)
        return net

    def permuted(self) -> SampledNetwork:
        """:meth:`with_weights` every W^l = sigma_w P, P the cyclic shift P e_i = e_(i+1).

        A deterministic weight whose *-moments are those of a Haar unitary (the negative
        control of the freeness study). Square networks only.
        """
        if not self.spec.is_square:
            raise ValueError("permuted: needs a square network (widths=None)")
        m = self.spec.width
        return self.with_weights([self.spec.sigma_w * np.roll(np.eye(m), 1, axis=0)
                                  for _ in range(self.spec.depth)])

    def truncated(self, depth: int) -> SampledNetwork:
        """The sub-network made of layers 1..depth of this draw (shares the arrays).

        Gives per-layer quantities of one sample, e.g. ``truncated(l).fim_dual()`` = H_l
        (normalized by its own output width N_l).
        """
        if isinstance(depth, bool) or not isinstance(depth, int) or not (
                1 <= depth <= self.spec.depth):
            raise ValueError(f"depth: must be an integer in 1..{self.spec.depth}, "
                             f"got {depth!r}")
        widths = None if self.spec.widths is None else self.spec.widths[:depth + 1]
        return SampledNetwork(
            spec=replace(self.spec, depth=depth, widths=widths),
            weights=self.weights[:depth], biases=self.biases[:depth],
            preactivations=self.preactivations[:depth],
            activations=self.activations[:depth + 1], derivatives=self.derivatives[:depth])


def sample_network(spec: NetworkSpec, rng: RngLike,
                   x0: np.ndarray | None = None) -> SampledNetwork:
    """Draw the weights and biases of ``spec`` and run the forward pass at x^0.

    Parameters
    ----------
    spec : NetworkSpec
        The random MLP.
    rng : numpy.random.Generator or int
        Source of randomness (see module docstring for the draw order).
    x0 : numpy.ndarray, optional
        Input of N_0 entries, used as given. Default: a standard Gaussian vector drawn from
        ``rng`` and rescaled so that ||x^0||^2 / N_0 = q0 exactly.

    Returns
    -------
    SampledNetwork

    Examples
    --------
    >>> spec = NetworkSpec("relu", "orthogonal", depth=3, width=200, sigma_w=2 ** 0.5)
    >>> net = sample_network(spec, rng=0)
    >>> eigs = net.jacobian_spectrum()    # mean ~ 1, variance ~ L = 3 (docs/conventions.md s. 2)
    """
    gen = as_generator(rng)
    x = _input(spec, gen, x0)
    net = SampledNetwork(spec, [], [], [], [x], [])
    for w, b, h, x_l, d in _layers(spec, gen, x):
        net.weights.append(w)
        net.biases.append(b)
        net.preactivations.append(h)
        net.activations.append(x_l)
        net.derivatives.append(d)
    return net


def jacobian_spectrum(spec: NetworkSpec, rng: RngLike,
                      x0: np.ndarray | None = None) -> np.ndarray:
    """Eigenvalues of J J^T of a fresh draw of ``spec``, streaming over the layers.

    Same draws, arithmetic and result as ``sample_network(spec, rng, x0).jacobian_spectrum()``,
    but each W^l is dropped once used: at most three N x N matrices are alive at a time
    (W^l, the running product D^{l-1} W^{l-1} ... D^1 W^1 and its update), against L + 2 for
    the stored network.

    Parameters
    ----------
    spec : NetworkSpec
        The random MLP.
    rng : numpy.random.Generator or int
        Source of randomness.
    x0 : numpy.ndarray, optional
        Input, as in :func:`sample_network`.

    Returns
    -------
    numpy.ndarray
        N_L eigenvalues, ascending.
    """
    gen = as_generator(rng)
    a = None
    for w, _b, _h, _x, d in _layers(spec, gen, _input(spec, gen, x0)):
        a = _accumulate(a, w, d, reuse_w=True)
        del w
    return _squared_singular_values(a)
