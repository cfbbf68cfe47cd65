"""The cdf between known points by the integrated density: blocks of the pointwise law.

Between two points a < b where the cdf F_c and the partial mean of the continuous part are
known (legs of the comb, :mod:`~freeness_lab.theory.density.contour_cdf`), the density is
solved on the axis at BLOCK_NODES Gauss-Legendre points of [a, b], and its Legendre
interpolant (and that of t rho(t)) integrated from a gives both at any point inside. A block
is accepted only when the integral over [a, b] reproduces F_c(b) - F_c(a) within the
tolerance and the interpolant's last coefficients are below it: inside the bulk, where the
density is analytic on the scale of the block, that costs BLOCK_NODES solves instead of a leg
per point, each node walked from the lowest node of the leg at the nearer end of its block
(:class:`LegBottoms`: 2-4 rounds, where it came down from the far field in ~16; a walk that
fails, or reaches another root, fails its block); a block across an edge or a gap fails and
is cut, down to a leg at every point
(:func:`integrate_blocks`, for :class:`~freeness_lab.theory.density.pointwise.PointwiseLaw`).
Where that happened the interval is kept as rough (:attr:`Pieces.rough`): a point asked for
later inside it gets the block between the two legs around it (:func:`between_legs`), and
its own leg where that block fails, without the blocks of 16 and 4 points that failed there
(the spectral check's Wasserstein crossings, between eigenvalues: 34 of 524 points of a
trial's H_L at M = 1024 cost three rounds of legs and two of blocks before).
"""

from __future__ import annotations

import warnings

import numpy as np

from freeness_lab.theory.density.chaining import CHAINED
from freeness_lab.theory.density.contour_cdf import Lowest, antiderivatives
from freeness_lab.theory.density.panels import gauss_legendre
from freeness_lab.theory.newton import lilypads

__all__ = ["AXIS_ROUNDS", "BLOCK", "BLOCK_NODES", "LegBottoms", "Pieces", "between_legs",
           "fit_blocks", "integrate_blocks"]

#: a leg at every BLOCK-th point asked for (a power of 4); in between, the density integrated
BLOCK = 16
#: Gauss-Legendre points of the density per block
BLOCK_NODES = 8
#: rounds of a node's walk from the leg at its block's end (:func:`_axis_density`): inside
#: the bulk 2-4; a walk still short of its node then is crossing an edge or a gap, where
#: the block fails anyway
AXIS_ROUNDS = 4


class Pieces:
    """The accepted blocks: their ends, F_c and partial mean at the left end, and the
    Legendre coefficients of both antiderivatives (from the left end, times the half-width);
    and the rough intervals, where blocks failed down to a leg at every point."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.rough: list[tuple[float, float]] = []

    def in_rough(self, y: np.ndarray) -> np.ndarray:
        """Whether each y lies in a rough interval (ends included)."""
        if not self.rough:
            return np.zeros(y.shape, dtype=bool)
        lo, hi = np.array(self.rough).T
        return ((y[:, None] >= lo) & (y[:, None] <= hi)).any(-1)

    def add(self, a: np.ndarray, b: np.ndarray, F_a: np.ndarray, P_a: np.ndarray,
            coef: np.ndarray) -> None:
        self.parts.append((a, b, F_a, P_a, coef))

    def lookup(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(F_c, partial mean, not found) at y: from a block y lies strictly inside."""
        F, P = np.full(y.size, np.nan), np.full(y.size, np.nan)
        if not self.parts:
            return F, P, np.ones(y.size, dtype=bool)
        a, b, F_a, P_a = (np.concatenate([p[i] for p in self.parts]) for i in range(4))
        coef = np.concatenate([p[4] for p in self.parts], axis=1)
        order = np.argsort(a)
        a, b, F_a, P_a, coef = a[order], b[order], F_a[order], P_a[order], coef[:, order]
        k = np.clip(np.searchsorted(a, y, side="right") - 1, 0, a.size - 1)
        found = (y > a[k]) & (y < b[k])
        if found.any():
            kk = k[found]
            u = 2.0 * (y[found] - a[kk]) / (b[kk] - a[kk]) - 1.0
            basis = np.polynomial.legendre.legvander(u, coef.shape[-1] - 1)
            part = np.einsum("pk,cpk->cp", basis, coef[:, kk]).real
            F[found], P[found] = F_a[kk] + part[0], P_a[kk] + part[1]
        return F, P, ~found


class LegBottoms:
    """The lowest converged node of each leg solved (:class:`~freeness_lab.theory.density.
    contour_cdf.Lowest`), by the leg's point: where the density's nodes of the blocks that
    end there start (:func:`fit_blocks`)."""

    def __init__(self, size: int):
        self.size = size
        self._at: dict[float, tuple[complex, np.ndarray]] = {}

    def add(self, y: np.ndarray, low: Lowest) -> None:
        """The lowest nodes ``low`` of the legs at the points y."""
        self._at.update(zip(y.tolist(), zip(low.z.tolist(), low.unknowns, strict=True),
                            strict=True))

    def points(self) -> np.ndarray:
        """The points of the legs solved, sorted."""
        return np.array(sorted(self._at), dtype=float)

    def __call__(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(z, unknowns) at the lowest node of the leg at each y (nan where none)."""
        none = (complex(np.nan, np.nan), np.zeros(self.size, dtype=complex))
        got = [self._at.get(v, none) for v in y.tolist()]
        return (np.array([g[0] for g in got], dtype=complex),
                np.array([g[1] for g in got], dtype=complex).reshape(-1, self.size))


def _axis_density(law, t: np.ndarray, starts) -> np.ndarray:
    """The continuous density at the nodes t (K, m) of K blocks: each node walks from the
    lowest node of the leg at the end of its block nearer to it (``starts(side)``: (z,
    unknowns) there for the left (side 0) and the right (1) ends, nan where none; the
    other end where that one has none), at most AXIS_ROUNDS rounds (nan where it fails:
    it fails its block, which is then cut); from the far field where neither end has one
    (``starts`` None: every node)."""
    K, m = t.shape
    x = t.ravel()
    rho = np.full(x.size, np.nan)
    have = np.zeros(x.size, dtype=bool)
    if starts is not None:
        right = np.tile(np.arange(m) >= m // 2, K)
        block = np.repeat(np.arange(K), m)
        (za, va), (zb, vb) = starts(0), starts(1)
        near = np.where(right, ~np.isnan(zb[block]), np.isnan(za[block]))  # from b
        z0 = np.where(near, zb[block], za[block])
        v0 = np.where(near[:, None], vb[block], va[block])
        have = ~np.isnan(z0)
        if have.any():
            xs = x[have]
            r = lilypads(law.system, xs, law.default_eps(xs), y_start=law.y_start(xs),
                         start=(z0[have], v0[have]), **{**CHAINED, "max_rounds": AXIS_ROUNDS})
            rho[have] = law.continuous_density(r)
    if not have.all():
        rho[~have] = law.continuous_density(law.solve(x[~have], retries=False))
    return rho.reshape(K, m)


def fit_blocks(law, y: np.ndarray, pairs: np.ndarray, F: np.ndarray, P: np.ndarray,
               tol: float, pieces: Pieces, bottom: LegBottoms | None = None) -> np.ndarray:
    """Fill ``F``, ``P`` (F_c and the partial mean of ``law``'s continuous part, known at the
    ends) strictly inside the blocks y[a] < y < y[b] (rows (a, b) of ``pairs``) that pass
    their checks (module docstring), and add those to ``pieces``; returns which passed. The
    density's nodes walk from the lowest nodes of the legs at the blocks' ends (``bottom``;
    without it, from the far field)."""
    lo, hi = pairs[:, 0], pairs[:, 1]
    m = BLOCK_NODES
    u, _ = gauss_legendre(m)
    a, b = y[lo], y[hi]
    t = 0.5 * (a + b)[:, None] + 0.5 * (b - a)[:, None] * u
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a failed node fails its block
        # a node that fails fails its block (cut, then legs): no retries from other heights
        starts = None if bottom is None else (lambda side: bottom(y[pairs[:, side]]))
        rho = _axis_density(law, t, starts)
    integral = antiderivatives(np.stack([rho, rho * t]), 0.5 * (b - a))
    total = np.polynomial.legendre.legval(1.0, np.moveaxis(integral, -1, 0))[0]
    good = ((np.abs(total - (F[hi] - F[lo])) <= tol)
            & (np.abs(integral[0, :, -3:]).sum(-1) <= tol) & np.isfinite(total))
    if good.any():
        pieces.add(a[good], b[good], F[lo][good], P[lo][good], integral[:, good])
    for k in np.nonzero(good)[0]:
        idx = np.arange(lo[k] + 1, hi[k])
        z = 2.0 * (y[idx] - a[k]) / (b[k] - a[k]) - 1.0
        part = np.polynomial.legendre.legval(z, integral[:, k].T)
        F[idx] = F[lo[k]] + part[0].real
        P[idx] = P[lo[k]] + part[1].real
    return good


def integrate_blocks(law, y: np.ndarray, known, tol: float, pieces: Pieces,
                     bottom: LegBottoms | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(F_c, partial mean) of ``law`` at the sorted points y: ``known`` (legs, cached) at
    every BLOCK-th point (the anchors); between two anchors a and b, F_c(a) plus the integral
    of the Legendre interpolant of the density at BLOCK_NODES Gauss points of [a, b] (solved
    on the axis), accepted when it reproduces F_c(b) - F_c(a) within tol and its last
    coefficients are below tol (:func:`fit_blocks`). The blocks that fail are done again
    with anchors four times as dense, all at once, down to a leg at every point; the
    intervals that get there join ``pieces.rough``. ``bottom``: the lowest nodes of the legs
    ``known`` solved, where the density's nodes start (:func:`fit_blocks`)."""
    n = y.size
    F, P = np.full(n, np.nan), np.full(n, np.nan)
    segments = [(0, n - 1)]
    block = BLOCK
    while segments:
        anchors = np.unique(np.concatenate(
            [np.concatenate([np.arange(a, b, block), [b]]) for a, b in segments]))
        F[anchors], P[anchors] = known(y[anchors])
        if block == 1:
            pieces.rough.extend((float(y[a]), float(y[b])) for a, b in segments)
            break
        pairs = np.array([(a, b) for lo, hi in segments
                          for a, b in zip(np.arange(lo, hi, block),
                                          np.minimum(np.arange(lo, hi, block) + block, hi),
                                          strict=True) if b - a > 1], dtype=int)
        if not len(pairs):
            break
        good = fit_blocks(law, y, pairs, F, P, tol, pieces, bottom)
        segments = [(a, b) for (a, b), g in zip(pairs.tolist(), good, strict=True) if not g]
        block = max(1, block // 4)
    return F, P


def between_legs(law, y: np.ndarray, bottom: LegBottoms, known, tol: float, pieces: Pieces
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F_c, partial mean, found) at the sorted points y of rough intervals (where blocks
    failed down to a leg at every point, :attr:`Pieces.rough`): the points between two
    neighbouring legs (``bottom``'s points, ``known`` there) form one block (:func:`fit_blocks`;
    the density between two neighbouring eigenvalues is smooth but for an edge or a gap
    inside it, where the block fails). ``found`` is False where that block failed or y has
    no leg on one side: those points need legs of their own (the caller's)."""
    F, P = np.full(y.size, np.nan), np.full(y.size, np.nan)
    at = bottom.points()
    i = np.searchsorted(at, y)
    inner = (i > 0) & (i < at.size)
    if not inner.any():
        return F, P, np.zeros(y.size, dtype=bool)
    a, b = at[i[inner] - 1], at[i[inner]]
    ends = np.unique(np.concatenate([a, b]))
    ys = np.unique(np.concatenate([ends, y[inner]]))
    Fy, Py = np.full(ys.size, np.nan), np.full(ys.size, np.nan)
    k = np.searchsorted(ys, ends)
    Fy[k], Py[k] = known(ends)
    pairs = np.unique(np.column_stack([np.searchsorted(ys, a), np.searchsorted(ys, b)]),
                      axis=0)
    fit_blocks(law, ys, pairs, Fy, Py, tol, pieces, bottom)
    j = np.searchsorted(ys, y[inner])
    F[inner], P[inner] = Fy[j], Py[j]
    return F, P, np.isfinite(F) & np.isfinite(P)
