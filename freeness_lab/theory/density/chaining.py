"""Solving a law's Newton system at many points: grid chaining, and the quadrature nodes.

A grid of points is solved coarse to fine, each point starting from a solved neighbour
("chaining") instead of coming down from the far field (:func:`solve_chained`); the nodes of
the support quadrature are solved with a Poisson smoothing capped by their distance to the
nearest edge (:func:`node_solve`).
"""

from __future__ import annotations

import numpy as np

from freeness_lab.theory.newton import NewtonResult, lilypads

__all__ = ["CHAINED", "CHAIN_REACH", "DEEP_CHAIN", "DEEP_REACH", "LADDER_MIN", "LADDER_RATIO",
           "TOL_STALL_EDGE", "ladder", "node_solve", "solve_chained", "within_reach"]

#: a chained walk (from a neighbour's solution) that needs many rounds gives up early: the
#: point then comes down from the far field
CHAINED = {"max_rounds": 16, "step_min": 0.03}
#: a point chains from a solved neighbour within this (relative); in a product law's lower
#: tail, below DEEP_CHAIN times its scale, within a factor DEEP_REACH (:func:`within_reach`)
CHAIN_REACH = 0.25
DEEP_CHAIN, DEEP_REACH = 1e-6, 64.0
#: at least LADDER_MIN points of the far-field pass in that tail start from a ladder of
#: solutions down the imaginary axis, LADDER_RATIO apart (:func:`ladder`)
LADDER_MIN, LADDER_RATIO = 8, 1e8
#: stall tolerance (log-variables) of the points near an edge (support scan, bisection,
#: quadrature nodes down to 1e-12 of the width from an edge)
TOL_STALL_EDGE = 1e-3


def solve_chained(law, x: np.ndarray, eps: np.ndarray | float | None = None, *,
                  chain: bool = True, retries: bool = True, **options) -> NewtonResult:
    """Solve ``law`` (a :class:`~freeness_lab.theory.density.solved.SolvedLaw`) at
    zeta = x + i eps; eps defaults to eps_rel min(|x|, |x - base atom|).

    With ``chain`` (and eps > 0) the sorted grid is solved coarse-to-fine: every 2^J-th
    point comes down from the far field, then each level starts from its solved left (or
    right) neighbour when that neighbour is within reach (:func:`within_reach`: 25%, a
    factor 64 in a product law's lower tail). The points whose left neighbour is farther
    (known from the grid alone) come down from the far field together
    with the coarse points, in one walk; those whose chained walk fails come down from the
    far field afterwards, and with ``retries`` a walk from the far field that fails is tried
    from two other heights (a caller to whom a failed point costs little -- the density
    blocks of :mod:`~freeness_lab.theory.density.blocks`, where it fails its block -- may
    skip them: about 50 rounds for a few dozen points).
    """
    x = np.atleast_1d(np.asarray(x, dtype=float)).ravel()
    if eps is None:
        eps = law.default_eps(x)
    eps = np.broadcast_to(np.asarray(eps, dtype=float), x.shape)
    y_start = law.y_start(x)
    P = x.size
    if not chain or P < 64 or np.any(eps == 0):
        return lilypads(law.system, x, eps, y_start=y_start, **options)
    order = np.argsort(x, kind="stable")
    xs, es = x[order], eps[order]
    G = np.full(P, complex(np.nan, np.nan))
    V = np.zeros((P, law.system.size), dtype=complex)
    conv = np.zeros(P, dtype=bool)
    rounds = evals = 0
    stride = 1 << max(0, int(np.log2(P / 32)))
    solved = np.zeros(P, dtype=bool)
    # walked down from the far field at the first height: that walk is deterministic and
    # independent of its batch, so a failure there is not retried at the same height
    far_tried = np.zeros(P, dtype=bool)

    def run(idx, start=None, height=1.0):
        nonlocal rounds, evals
        opts = {**CHAINED, **options} if start is not None else options
        r = lilypads(law.system, xs[idx], es[idx], y_start=height * y_start,
                     start=start, **opts)
        G[idx], V[idx], conv[idx] = r.cauchy, r.unknowns, r.converged
        solved[idx] = True
        far_tried[idx] |= start is None and height == 1.0
        rounds += r.rounds
        evals += r.evaluations

    # the far-field pass takes the coarse points and, at once, every point whose left
    # neighbour at its level is not within reach (it depends on the grid alone): one walk
    # from the far field instead of one per level
    first = np.zeros(P, dtype=bool)
    first[::stride] = True
    first[-1] = True
    half = stride // 2
    while half:
        idx = np.arange(half, P, 2 * half)
        first[idx[~within_reach(law, xs[idx], xs[idx - half])]] = True
        half //= 2
    far = np.nonzero(first)[0]
    if law.base_atom == 0.0:
        # in the lower tail the far-field walks come down along the imaginary axis, the
        # same path for every point, dozens of rounds: they start from a ladder on it
        deep = far[(xs[far] > 0) & (xs[far] <= DEEP_CHAIN * law.scale) & (es[far] > 0)]
        if len(deep) >= LADDER_MIN:
            heights, v_rungs = ladder(law, float(xs[deep].max()), float(xs[deep].min()))
            # the lowest rung at or above each point
            j = len(heights) - 1 - np.searchsorted(heights[::-1], xs[deep], side="left")
            on = (j >= 0) & (j < len(heights))
            j = np.clip(j, 0, len(heights) - 1)
            on &= (heights[j] >= xs[deep]) & (heights[j] <= LADDER_RATIO * xs[deep])
            if on.any():
                run(deep[on], (1j * heights[j[on]], v_rungs[j[on]]))
                far = np.setdiff1d(far, deep[on])
    if len(far):
        run(far)
    while stride > 1:
        half = stride // 2
        idx = np.arange(half, P, stride)
        idx = idx[~solved[idx]]
        left, right = idx - half, np.minimum(idx + half, P - 1)
        nb = np.where(conv[left], left, right)
        # chain only from a neighbour within reach: a long walk close to the axis could be
        # captured by another root of the equations
        okn = conv[nb] & within_reach(law, xs[idx], xs[nb])
        if okn.any():
            run(idx[okn], (xs[nb[okn]] + 1j * es[nb[okn]], V[nb[okn]]))
        # at the last level no point chains from these: they join the far-field pass below
        if (~okn).any() and stride > 2:
            run(idx[~okn])
        stride = half
    # the rest come down from the far field; a point whose walk fails tries two other
    # starting heights (another path: a walk may pass too close to a branch point, as at
    # points of erf's H_3 1e-11 and 3e-8 above its base). The three heights run in one call
    # (the walks are independent: each point keeps its first success, else its last try,
    # as if tried one height after the other), and a point that came down at the first
    # height already is not walked there again (the same path: the same failure)
    retry = np.nonzero(~conv)[0]
    if len(retry) and (retries or not far_tried[retry].all()):
        tries = [retry[~far_tried[retry]], *([retry, retry] if retries else [])]
        idx = np.concatenate(tries)
        height = np.concatenate([np.full(len(t), h)
                                 for t, h in zip(tries, (1.0, 4.0, 0.25), strict=False)])
        r = lilypads(law.system, xs[idx], es[idx], y_start=height * y_start, **options)
        rounds += r.rounds
        evals += r.evaluations
        pending = np.ones(P, dtype=bool)
        start = 0
        for t in tries:
            part = slice(start, start + len(t))
            start += len(t)
            w = pending[t]
            G[t[w]], V[t[w]] = r.cauchy[part][w], r.unknowns[part][w]
            conv[t[w]] = r.converged[part][w]
            pending[t[w]] = ~r.converged[part][w]
    out = np.empty(P, dtype=int)
    out[order] = np.arange(P)
    return NewtonResult((xs + 1j * es)[out], G[out], conv[out], rounds, evals, V[out])


def ladder(law, top: float, bottom: float) -> tuple[np.ndarray, np.ndarray]:
    """(heights, unknowns): solutions at i y for y = top, top / R, ... (R = LADDER_RATIO)
    down to ``bottom`` or below, the first from the far field, each next from the one above
    it (a walk straight down the imaginary axis, where the far-field walks of the points
    below it pass); fewer where a rung's walk fails."""
    n = int(np.ceil(np.log(top / bottom) / np.log(LADDER_RATIO))) + 1
    heights = top * LADDER_RATIO ** -np.arange(n, dtype=float)
    zero = np.zeros(1)
    v = np.empty((n, law.system.size), dtype=complex)
    for k, h in enumerate(heights):
        start = None if k == 0 else (np.array([1j * heights[k - 1]]), v[k - 1:k])
        r = lilypads(law.system, zero, np.array([h]), y_start=law.y_start(zero), start=start,
                     **(CHAINED if k else {}))
        if not r.converged[0]:
            return heights[:k], v[:k]
        v[k] = r.unknowns[0]
    return heights, v


def within_reach(law, x: np.ndarray, x_from: np.ndarray) -> np.ndarray:
    """Whether a point x may chain from a solved neighbour x_from: within CHAIN_REACH
    (relative); in a product law's lower tail (both below DEEP_CHAIN times its scale), within
    a factor DEEP_REACH.

    There the law is a slowly varying power of x, the same at every scale (the levels
    about 0 of :mod:`~freeness_lab.theory.newton.zero_levels`), and the chained walk is
    straight in log zeta: a factor 64 near 1e-200 is as short a walk as one near 1e-20
    (two rounds). A grid of 1000 points over [1e-300, 1e-100] (ratio 1.6) would otherwise
    come down from the far field point by point: 18-20 times the cost of 1000 points in the
    bulk (tanh, erf, orthogonal, depth 16), 2 times with it. Chained and independent solves
    agreed to 4e-12 (relative, in G) at 1000 points of [1e-300, 1e-7 scale] for seven
    activations, both ensembles, depths 3 and 16."""
    near = np.abs(x - x_from) <= CHAIN_REACH * np.abs(x)
    if law.base_atom != 0.0:
        return near
    deep = np.maximum(np.abs(x), np.abs(x_from)) <= DEEP_CHAIN * law.scale
    ratio = np.abs(x) / np.maximum(np.abs(x_from), 1e-300)
    return near | (deep & (ratio <= DEEP_REACH) & (ratio >= 1.0 / DEEP_REACH))


def node_solve(law, x: np.ndarray, intervals: np.ndarray) -> NewtonResult:
    """The solution of ``law`` at quadrature nodes x of its support ``intervals``.

    Poisson smoothing at most 1e-3 of the distance to the nearest edge: an inverse
    square-root edge (free projections) keeps its mass. The solution there is as
    ill-conditioned as the distance is small (the Newton steps stall at ~1e-16 / distance
    in the log-variables, relative), hence the looser stall tolerance.
    """
    edges = np.concatenate([intervals.ravel(), law.cuts])
    d_edge = np.min(np.abs(x[:, None] - edges), axis=1)
    near = np.minimum(np.abs(x), np.abs(x - law.base_atom))
    eps = np.minimum(law.eps_rel * near, 1e-3 * d_edge)
    res = law.solve(x, np.maximum(eps, 1e-300 * law.scale), tol_stall=TOL_STALL_EDGE)
    law.warn_unconverged(res)
    return res
