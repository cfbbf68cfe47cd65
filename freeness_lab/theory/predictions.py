"""Limit predictions used by the harness's studies: the critical point at a given q*, the
moments of phi'(h), and the law of each free family of a word at M -> infinity.

- :func:`critical_point`: (sigma_w, sigma_b, q0) of the network at the edge of chaos whose
  every layer sits at the fixed point q*.
- :func:`dphi_moment`: E[phi'(h)^k], h ~ N(0, q), the moments of the diagonal D_l in the
  limit.
- :func:`limit_family`: the law (:class:`~freeness_lab.theory.free_cumulants.Family`) of one
  family of letters -- a weight pair (W_l, W_l^T), the D's, or H_l -- at the limit marginals,
  for the free predictions of mixed moments (:func:`~freeness_lab.theory.free_moment`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import replace

from scipy import special

from freeness_lab.spec import NetworkSpec
from freeness_lab.theory import meanfield
from freeness_lab.theory.free_cumulants import (
    Family,
    circular_family,
    commutative_family,
    haar_unitary_family,
    rectangular_weight_family,
    univariate_family,
)
from freeness_lab.theory.limits import fim_dual_law

__all__ = ["FAMILY_KINDS", "critical_point", "dphi_moment", "limit_family"]

#: kinds of letter families: a weight pair, the diagonal derivatives, one H_l
FAMILY_KINDS: tuple[str, ...] = ("W", "D", "H")


def critical_point(activation: str, q_star: float) -> tuple[float, float, float]:
    """(sigma_w, sigma_b, q0) of a network at the edge of chaos with every layer at q*.

    chi = sigma_w^2 mu_1(q*) = 1 gives sigma_w^2 = 1 / mu_1(q*), with mu_1(q) = E[phi'(h)^2],
    h ~ N(0, q); the fixed-point equation q* = sigma_w^2 qhat(q*) + sigma_b^2, with
    qhat(q) = E[phi(h)^2], gives sigma_b^2 = q* - qhat(q*) / mu_1(q*) (Pennington, Schoenholz,
    Ganguli 2017). The input must have q0 = ||x^0||^2 / N_0 = qhat(q*) (a post-activation
    moment) so that q^1 = sigma_w^2 q0 + sigma_b^2 = q*.

    Parameters
    ----------
    activation : str
        A registry name (:mod:`freeness_lab.activations`).
    q_star : float
        The fixed point q* > 0 of the variance map.

    Returns
    -------
    (sigma_w, sigma_b, q0) : tuple of float

    Raises
    ------
    ValueError
        When sigma_b^2 would be negative (no critical network has this q*).
    """
    mu1 = float(meanfield.d2_moments(activation, q_star, 1)[0])
    qhat = meanfield.post_activation_moment(activation, q_star)
    sb2 = q_star - qhat / mu1
    if sb2 < -1e-12 * q_star:
        raise ValueError(f"q_star: {activation} has no critical point with q* = {q_star:g} "
                         f"(sigma_b^2 = {sb2:.3g} < 0)")
    return 1.0 / math.sqrt(mu1), math.sqrt(max(sb2, 0.0)), qhat


def dphi_moment(spec: NetworkSpec, q: float, k: int) -> float:
    """E[phi'(h)^k], h ~ N(0, q), for the activation of ``spec``.

    For a piecewise-linear phi with pieces (a_j, b_j, s_j) (slope s_j on [a_j, b_j]) it is
    exact: sum_j (Phi(b_j / sqrt q) - Phi(a_j / sqrt q)) s_j^k, Phi the standard normal cdf;
    for a smooth one, Gaussian quadrature
    (:func:`freeness_lab.theory.meanfield.gaussian_expectation`).

    Parameters
    ----------
    spec : NetworkSpec
        Its activation is used.
    q : float
        Variance of h.
    k : int
        Order of the moment, k >= 0.

    Returns
    -------
    float
    """
    act = spec.act
    if act.pieces is None:
        return float(meanfield.gaussian_expectation(lambda h: act.dphi(h) ** k, q))
    s = math.sqrt(q)
    return float(sum((special.ndtr(b / s) - special.ndtr(a / s)) * slope**k
                     for a, b, slope in act.pieces))


def limit_family(spec: NetworkSpec, kind: str, names: Sequence[str], layers: Sequence[int],
                 *, haar: bool, order: int = 0) -> Family:
    """The law of one family of letters at the limit marginals (M -> infinity).

    - ``"W"``: the pair (W_l, W_l^T) is sigma_w times a Haar unitary pair (u, u*) when
      ``haar``, a circular pair (c, c*) otherwise (Gaussian weights); a family holding only
      one of the two (the "transpose" split) has the same law. When N_l != N_{l-1} (a
      rectangular ``spec``), the compression of that pair by projections
      (:func:`~freeness_lab.theory.free_cumulants.rectangular_weight_family`).
    - ``"D"``: the D_l are commuting, independent across layers, with moments
      E[D_l^k] = :func:`dphi_moment` (spec, q^l, k) at the mean-field variance q^l, so that
      tr(D_{l1}^{e1} ... ) = prod_l E[phi'(h_l)^{e_l}]; in a rectangular ``spec``, 0 when
      the layers with e_l > 0 differ in width (the product does not chain: rule 1 of
      :mod:`~freeness_lab.theory.free_cumulants.rectangular`).
    - ``"H"``: H_l alone, with the moments m_1..m_order of its limit law
      (:func:`freeness_lab.theory.fim_dual_law` of the depth-l network, its own widths
      N_0..N_l in a rectangular ``spec``).

    Parameters
    ----------
    spec : NetworkSpec
        The network (a square one's width is not used; a rectangular one's layer widths give
        the ratios of the changes of dimension).
    kind : {"W", "D", "H"}
        The family's kind (:data:`FAMILY_KINDS`).
    names : sequence of str
        The family's base letters, e.g. ``["W2", "W2^T"]``, ``["D1", "D2"]``, ``["H2"]``.
    layers : sequence of int
        The layer of each name (1-based).
    haar : bool
        Haar unitary (orthogonal weights, or a deterministic permutation treated as Haar)
        rather than circular weights.
    order : int
        For ``"H"``: the highest moment the word needs.

    Returns
    -------
    Family

    Raises
    ------
    ValueError
        For an unknown ``kind``.
    """
    names = list(names)
    widths = spec.layer_widths
    if kind == "W":
        u, ut = f"W{layers[0]}", f"W{layers[0]}^T"
        n_out, n_in = widths[layers[0]], widths[layers[0] - 1]
        if n_out != n_in:
            pair = rectangular_weight_family(u, ut, n_out, n_in, spec.sigma_w, haar=haar)
        else:
            pair = (haar_unitary_family(u, ut, spec.sigma_w) if haar
                    else circular_family(u, ut, spec.sigma_w))
        return Family(names, pair.moment)
    if kind == "D":
        q = meanfield.preactivation_variances(spec)
        layers = list(layers)

        @functools.cache
        def joint(exps: tuple[int, ...]) -> float:
            if len({widths[ell] for ell, e in zip(layers, exps, strict=True) if e}) > 1:
                return 0.0
            return math.prod(dphi_moment(spec, q[ell - 1], e)
                             for ell, e in zip(layers, exps, strict=True) if e)
        return commutative_family(names, joint)
    if kind == "H":
        depth = int(layers[0])
        h_law = fim_dual_law(replace(spec, depth=depth, widths=None if spec.widths is None
                                     else spec.widths[:depth + 1]))
        return univariate_family(names[0], h_law.moments(order))
    raise ValueError(f"kind: must be one of {', '.join(FAMILY_KINDS)}, got {kind!r}")
