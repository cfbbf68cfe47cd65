"""The laws each sampled spectrum is compared with (:mod:`freeness_lab.harness.spectral_distance`).

For one trial (one sampled network ``net``) and each matrix (J J^T, H_L):

* ``limit``: the limit law (:func:`freeness_lab.theory.jacobian_law`,
  :func:`freeness_lab.theory.fim_dual_law`), the same for every trial of a spec (built once per
  process). Its distance to the ESD is dominated by how far each sampled D_l^2 law is from its
  mean-field law, an O(M^-1/2) effect that says nothing about freeness.
* ``paired``: the free product of the trial's OWN marginals, by the same Newton solver: for
  J J^T the empirical laws of D_l^2 (a :class:`~freeness_lab.theory.DiscreteLaw` of the M
  values phi'(h_i^l)^2, an exact two-atom law where phi' takes two values) with the weight
  factors (:func:`freeness_lab.theory.jacobian_product_law`); for H_L the Hayase-Karakida chain
  with the same empirical D_l^2 laws and the trial's own shifts (||x^l||^2 + beta) / M
  (:func:`freeness_lab.theory.fim_dual_chain_law`). If the layerwise Jacobians are
  asymptotically free, the ESD's distance to it decays like 1/M up to logarithms (the
  optimal-scale local laws of free convolutions of fixed matrices rotated by Haar matrices:
  Bao, Erdos & Schnelli, *Adv. Math.* 319 (2017), for sums; their multiplicative analogues
  for products, e.g. Ji, *IMRN* (2021)), i.e. much faster than to the limit law. (Here D_l
  depends on W_l, through the rank-one constraint W_l x^{l-1} = h^l - b^l: the rate is
  measured, not assumed.)
* ``classical``: a wrong theory, as a control: the law of the product of INDEPENDENT draws
  from the same marginals, as if the factors commuted -- sigma_w^(2L) prod_l d_l^2 (orthogonal)
  or prod_l d_l^2 lambda_l (Gaussian, lambda_l an eigenvalue of this trial's W_l W_l^T), as an
  empirical law of ``CLASSICAL_SAMPLE`` x M draws (J J^T only).

And the spectral negative control ``cyclic``: the same input and biases with every W_l
replaced by sigma_w times the cyclic shift P (:meth:`~freeness_lab.simulate.network.
SampledNetwork.permuted`), whose J J^T is diagonal, compared with ITS paired free product
(J J^T only): not free at any M.

Rectangular widths N_0..N_L (``network.width_ratios``): the limit law is that of the trial's
own widths; the paired law is the rectangular product of the same construction
(:func:`~freeness_lab.theory.jacobian_product_law` with ``widths``, the D_l^2 laws with N_l
atoms each), for H_L the chain with the changes of dimension r_l = N_l / N_{l+1} and the
shifts (||x^l||^2 + beta) / N_L (:meth:`~freeness_lab.simulate.network.SampledNetwork.
fim_dual` normalizes by the output width). The classical product and the cyclic control
are defined for square networks only: the classical product draws, per layer, one of the M
values of D_l^2 and one eigenvalue of W_l W_l^T as if every factor lived in one dimension
(a rectangular layer's change of rank is a draw of no marginal), and a cyclic shift is
square. For a rectangular network they raise :class:`~freeness_lab.theory.
TheoryUnavailable` (:data:`SQUARE_ONLY`): its trial records them as ``unavailable``, and the
fits do not claim them (:func:`freeness_lab.harness.spectral_check.fit_distances`).
"""

from __future__ import annotations

import numpy as np

from freeness_lab.harness.theory_side import limit_law
from freeness_lab.simulate.network import SampledNetwork
from freeness_lab.theory import (
    DiscreteLaw,
    SpectralLaw,
    TheoryUnavailable,
    fim_dual_chain_law,
    jacobian_product_law,
)

__all__ = ["CLASSICAL_SAMPLE", "CONTROL_CDF_TOL", "PAIRED_CDF_TOL", "SQUARE_ONLY",
           "classical_law", "cyclic_network", "limit_law", "paired_law"]

#: (network, reference) comparisons defined for square networks only (module docstring)
SQUARE_ONLY = frozenset({("sampled", "classical"), ("cyclic", "paired")})

#: draws of the classical product per eigenvalue (its own sampling error ~ (8 M)^-1/2)
CLASSICAL_SAMPLE = 8
#: the paired laws' cdf is computed to this over M (:class:`~freeness_lab.theory.density.
#: pointwise.PointwiseLaw`; its components carry masses k / M, and a Kolmogorov distance of
#: O(1/M) is what they are compared with)
PAIRED_CDF_TOL = 0.005
#: the cyclic control's paired law is computed to this only: its Kolmogorov distance to the
#: cyclic network's spectrum stays O(0.1) at every M, which no error below 1e-3 can hide
CONTROL_CDF_TOL = 1e-3


def empirical_d2_laws(net: SampledNetwork) -> list[DiscreteLaw]:
    """The empirical law of D_l^2 = phi'(h^l)^2 of each layer of one sampled network."""
    return [DiscreteLaw.empirical(d**2) for d in net.derivatives]


def paired_law(net: SampledNetwork, matrix: str, include_bias: bool,
               weights: str | None = None, tol: float | None = None) -> SpectralLaw:
    """The free product of ``net``'s own marginals for ``matrix`` (module docstring), its cdf,
    partial mean and quantiles at the points asked for by contour integrals of its Cauchy
    transform (:meth:`~freeness_lab.theory.density.solved.SolvedLaw.pointwise`): the free
    product of discrete laws with M atoms has components of mass k/M near its edges, which
    a support search finds one by one; the contour integrals count them wherever they lie.

    Parameters
    ----------
    net : SampledNetwork
        One trial's network, square or rectangular (module docstring).
    matrix : {"JJT", "H_L"}
    include_bias : bool
        H_L with the bias parameters: each shift is (||x^l||^2 + 1) / M.
    weights : {"orthogonal", "gaussian"}, optional
        The law of W_l W_l^T assumed; default the spec's ensemble ("orthogonal" for the
        cyclic control, whose sigma_w P is orthogonal).
    tol : float, optional
        The error asked of the cdf; default PAIRED_CDF_TOL / max_l N_l (M for a square
        network).
    """
    spec = net.spec
    weights = spec.weights if weights is None else weights
    d2 = empirical_d2_laws(net)
    n = spec.layer_widths
    tol = PAIRED_CDF_TOL / max(n) if tol is None else tol
    square = spec.is_square
    if matrix == "JJT":
        law = jacobian_product_law(d2, weights, spec.sigma_w, widths=None if square else n,
                                   label="paired J J^T")
    else:
        beta = 1.0 if include_bias else 0.0
        shifts = [(float(x @ x) + beta) / n[-1] for x in net.activations[:-1]]
        ratios = None if square else [a / b for a, b in zip(n[1:-1], n[2:], strict=True)]
        law = fim_dual_chain_law(d2[:-1], shifts, weights, spec.sigma_w, ratios=ratios,
                                 label="paired H_L")
    # a depth-1 H_L is a point mass: a law of its own, exact
    return law.pointwise(tol) if hasattr(law, "pointwise") else law


def classical_law(net: SampledNetwork, seed: np.random.SeedSequence) -> DiscreteLaw:
    """The classical (commuting, independent) product of ``net``'s marginals for J J^T, as
    the empirical law of ``CLASSICAL_SAMPLE`` x M draws from a stream of ``seed``'s own
    (module docstring); :class:`~freeness_lab.theory.TheoryUnavailable` for a rectangular
    network."""
    spec = net.spec
    if not spec.is_square:
        raise TheoryUnavailable("the classical product is defined for square networks only "
                                f"(widths {spec.layer_widths})")
    m, n = spec.width, CLASSICAL_SAMPLE * spec.width
    gen = np.random.default_rng(np.random.SeedSequence(seed.entropy,
                                                       spawn_key=(*seed.spawn_key, 1)))
    product = np.ones(n)
    for d, w in zip(net.derivatives, net.weights, strict=True):
        product *= d[gen.integers(0, m, n)] ** 2
        if spec.weights == "orthogonal":
            product *= spec.sigma_w**2
        else:
            product *= np.maximum(np.linalg.eigvalsh(w @ w.T), 0.0)[gen.integers(0, m, n)]
    return DiscreteLaw.empirical(product)


def cyclic_network(net: SampledNetwork) -> SampledNetwork:
    """The cyclic control of ``net`` (:meth:`~freeness_lab.simulate.network.SampledNetwork.
    permuted`); :class:`~freeness_lab.theory.TheoryUnavailable` for a rectangular network
    (a cyclic shift is square)."""
    if not net.spec.is_square:
        raise TheoryUnavailable("the cyclic control is defined for square networks only "
                                f"(widths {net.spec.layer_widths})")
    return net.permuted()
