"""Exact finite-M moments of the weight ensembles: what the samplers must reproduce.

For a square M x M matrix O = W / sigma_w, Haar orthogonal or Gaussian with O_ij ~ N(0, 1/M),
the second moments of the entries are the same (Weingarten calculus for O(M) at order 2):

    E[O_ij O_kl] = delta_ik delta_jl / M,

hence at every M >= 1, E Tr(O) = sum_i E O_ii = 0 and
E Tr(O^2) = sum_ij E O_ij O_ji = sum_i E O_ii^2 = 1 (the terms i != j vanish). These are not
M -> infinity limits: a sampler that is off at any M (plain QR without the sign fix, a wrong
variance) shows up at that M.
"""

from __future__ import annotations

from freeness_lab.spec import WEIGHT_ENSEMBLES

__all__ = ["WEIGHT_TRACE_ORDERS", "weight_trace_means"]

#: orders k of the traces Tr(O^k) with an exact finite-M mean here
WEIGHT_TRACE_ORDERS: tuple[int, ...] = (1, 2)


def weight_trace_means(weights: str) -> dict[int, float]:
    """E Tr((W / sigma_w)^k) for k in :data:`WEIGHT_TRACE_ORDERS` (module docstring).

    Parameters
    ----------
    weights : {"orthogonal", "gaussian"}

    Returns
    -------
    dict of int to float
        ``{1: 0.0, 2: 1.0}`` for both ensembles, at every width.
    """
    if weights not in WEIGHT_ENSEMBLES:
        raise ValueError(f"weights: must be one of {', '.join(WEIGHT_ENSEMBLES)}, "
                         f"got {weights!r}")
    return {1: 0.0, 2: 1.0}
