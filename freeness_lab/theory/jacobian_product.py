"""The law of J J^T from given laws of D_l^2, square or rectangular widths.

One construction serves both the limit law (:func:`freeness_lab.theory.jacobian_law`, the
mean-field laws of D_l^2) and the paired law of a sampled network (the empirical laws of its
own D_l^2, N_l atoms each): :func:`jacobian_product_law`.

Square widths: nu_1 boxtimes ... boxtimes nu_L boxtimes w^(boxtimes L), w the law of W W^T
(delta_{sigma_w^2}, orthogonal; Marchenko-Pastur(1, sigma_w^2), Gaussian).

Rectangular widths N_0..N_L (the :mod:`freeness_lab.theory.limits` module docstring): with
A_l = J_l J_l^T (N_l x N_l), A_l = D_l W_l A_{l-1} W_l^T D_l; the nonzero spectrum of
W A W^T is that of A W^T W in dimension N_{l-1}, and moving a law from dimension N_{l-1} to
N_l multiplies psi by r = N_{l-1} / N_l, S(m) -> S(m / r)(1 + m)/(r + m). With
kappa_l = N_L / N_l,

    S_{A_L}(m) = prod_l S_{nu_l}(kappa_l m) T_l(m),
    T_l = 1 / (sigma_w^2 (1 + kappa_{l-1} m))                         Gaussian,
    T_l = (1 + kappa_l m) / (sigma_w^2 (1 + kappa_{l-1} m)) if N_l >= N_{l-1},
          1 / sigma_w^2 otherwise                                      orthogonal,

i.e. one :class:`~freeness_lab.theory.products.Factor` (nu_l, 1, kappa_l) per layer and the
T_l as explicit :class:`~freeness_lab.theory.log_terms.LogTerms`. The atoms follow
Belinschi's rule layer by layer with the same changes of dimension (zero mass
1 - r (1 - p_0), other masses times r).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from freeness_lab.theory.laws import MarchenkoPastur, SpectralLaw, bernoulli, delta
from freeness_lab.theory.log_terms import LogTerms
from freeness_lab.theory.products import (
    Factor,
    FreeProduct,
    FreeProductLaw,
    change_dimension,
    product_atoms,
)

__all__ = ["jacobian_product_law", "weight_law", "wtw_law"]


def weight_law(weights: str, sigma_w: float) -> SpectralLaw:
    """Law of W W^T for square W: delta_{sigma_w^2} (orthogonal) or Marchenko-Pastur(1,
    sigma_w^2) (Gaussian); a ValueError naming ``weights`` or ``sigma_w`` otherwise."""
    if weights not in ("orthogonal", "gaussian"):
        raise ValueError(f"weights: must be 'orthogonal' or 'gaussian', got {weights!r}")
    if not sigma_w > 0:
        raise ValueError(f"sigma_w: must be > 0, got {sigma_w!r}")
    s = float(sigma_w) ** 2
    return delta(s) if weights == "orthogonal" else MarchenkoPastur(1.0, s)


def wtw_law(weights: str, sigma_w: float, c: float) -> SpectralLaw:
    """Law of W^T W in dimension N_in for W N_out x N_in, c = N_out / N_in (the spec's
    convention: Gaussian entries of variance sigma_w^2 / N_in; orthogonal sigma_w
    sqrt(max(1, c)) times a block of a Haar matrix)."""
    s = sigma_w**2
    if weights == "gaussian":
        return MarchenkoPastur(1.0 / c, s * c)
    return delta(s * c) if c >= 1 else bernoulli(c, s)


def _checked_widths(widths: Sequence[float], depth: int) -> np.ndarray:
    n = np.asarray(widths, dtype=float)
    if n.shape != (depth + 1,) or not np.all((n > 0) & np.isfinite(n)):
        raise ValueError(f"widths: must hold len(d2_laws) + 1 = {depth + 1} finite values > 0 "
                         f"(N_0..N_L), got {list(widths)}")
    return n


def jacobian_product_law(d2_laws: Sequence[SpectralLaw], weights: str, sigma_w: float, *,
                         widths: Sequence[float] | None = None, label: str = ""
                         ) -> FreeProductLaw:
    """Law of J J^T (N_L x N_L) for layers whose D_l^2 have the given laws, free from each
    other and from the weights (module docstring).

    With the mean-field laws of D_l^2 this is :func:`~freeness_lab.theory.jacobian_law`
    (which calls it for rectangular widths); with the empirical laws of one sampled
    network's D_l^2 (a :class:`~freeness_lab.theory.DiscreteLaw` of its N_l values per
    layer) it is the free product of that network's own marginals, the reference against
    which its spectrum measures freeness rather than the convergence of its marginals.

    Parameters
    ----------
    d2_laws : sequence of SpectralLaw
        nu_l, l = 1..L, each in dimension N_l.
    weights : {"orthogonal", "gaussian"}
        The ensemble of the W_l (the spec's conventions, rectangular included).
    sigma_w : float
        > 0.
    widths : sequence of L + 1 numbers, optional
        N_0..N_L (only their ratios enter); default, or all equal, square.
    label : str

    Returns
    -------
    FreeProductLaw
        Exact moments (series), atoms (Belinschi, with the changes of dimension),
        density / cdf / quantiles (Newton).
    """
    depth = len(d2_laws)
    if not depth:
        raise ValueError("d2_laws: must hold at least one law")
    w = weight_law(weights, sigma_w)
    n = None if widths is None else _checked_widths(widths, depth)
    if n is None or np.all(n == n[0]):
        factors = [Factor(nu) for nu in d2_laws] + [Factor(w, depth)]
        return FreeProductLaw(FreeProduct(factors), label=label)
    kappa = n[-1] / n
    factors = [Factor(nu, 1, float(kappa[l])) for l, nu in enumerate(d2_laws, start=1)]
    rows = []
    for l in range(1, depth + 1):
        if weights == "gaussian":
            rows.append([-1.0, 1.0, kappa[l - 1]])
        elif n[l] >= n[l - 1]:
            rows += [[1.0, 1.0, kappa[l]], [-1.0, 1.0, kappa[l - 1]]]
    extra = LogTerms(-depth * np.log(sigma_w**2), np.array(rows, dtype=float).reshape(-1, 3))
    atoms = np.array([[1.0, 1.0]])
    for l, nu in enumerate(d2_laws, start=1):
        atoms = product_atoms(atoms, wtw_law(weights, sigma_w, n[l] / n[l - 1]).atoms)
        atoms = change_dimension(atoms, n[l - 1] / n[l])
        atoms = product_atoms(atoms, nu.atoms)
    return FreeProductLaw(FreeProduct(factors, extra), atoms=atoms, label=label)
