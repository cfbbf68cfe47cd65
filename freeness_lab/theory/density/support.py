"""The support of a solved law's continuous part: scan, then bisection of every edge.

Everything runs in y = x - base (base = 0, or the last shift of a chain: the support lies
in [base, inf) and the density may be singular at base). A point is inside when
y rho(y) > 1e-9 (1 - atom mass) and rho is well above the Poisson leak of a nearby edge
(:meth:`~freeness_lab.theory.density.solved.SolvedLaw.leak`).
"""

from __future__ import annotations

import math

import numpy as np

from freeness_lab.theory.density.chaining import CHAINED, TOL_STALL_EDGE
from freeness_lab.theory.newton import NewtonResult, from_either

__all__ = ["EPS_EDGE", "assemble", "bisect_edges", "bisected_intervals", "inside",
           "scan_intervals"]

#: relative Im zeta for locating edges: the Poisson tail of a square-root edge is
#: ~ eps / sqrt(distance), far below the threshold on x rho(x) at this eps
EPS_EDGE = 1e-15
#: ratio of the geometric part of the scan: within the chaining reach of solve_chained;
#: below 1e-12 of the window, where the scan only asks whether the support reaches the base
#: point, a sparser ratio
GEOMETRIC_RATIO, SPARSE_RATIO = 1.2, 4.0
#: bisection levels replayed per solver call (2^levels - 1 points per bracket)
BISECTION_LEVELS = 4


def inside(law, y: np.ndarray, res: NewtonResult) -> np.ndarray:
    """Whether the points y = x - base solved in ``res`` (Im zeta = EPS_EDGE y) lie in the
    support: y rho > 1e-9 (1 - atom mass), and rho well above the Poisson leak of a nearby
    edge (an inverse square-root edge leaks ~ eps / distance^(3/2) outside the support)."""
    rho = law.continuous_density(res)
    tau = 1e-9 * (1.0 - law.atom_mass)
    return res.converged & (y * rho > tau) & (rho > 8.0 * law.leak(res))


def bisected_intervals(law) -> np.ndarray:
    """Intervals of the continuous part of ``law`` (a :class:`~freeness_lab.theory.density.
    solved.SolvedLaw`): scan, then bisection of every edge.

    Everything runs in y = x - base (base = 0, or the last shift of a chain: the support
    lies in [base, inf) and the density may be singular at base): a scan of y geometric
    from 1e-12 of the window (ratio GEOMETRIC_RATIO: each point chains from its neighbour),
    sparser (SPARSE_RATIO) down to 1e-30 of it, and linear, Im zeta = EPS_EDGE y, classified
    by :func:`inside`, and every edge bisected in log y (:func:`scan_intervals`)."""
    if law.atom_mass > 1.0 - 1e-12:
        return np.empty((0, 2))  # purely atomic
    base = law.base_atom
    m = law.moments(2)
    sd = math.sqrt(max(m[1] - m[0] ** 2, 0.0))
    y_hi = 4.0 * law.scale
    # below 1e-12 of a nonzero base, x = base + y keeps less than 4 digits of y
    y_min = max(1e-30 * y_hi, 1e-12 * abs(base))
    for _ in range(12):
        # below y_small only whether some point is inside matters (zero_start, below): the
        # grid is sparser there (those points come down from the far field, not chained)
        y_small = max(1e-12 * y_hi, 1e3 * y_min)
        n_geo = int(math.log(y_hi / y_small) / math.log(GEOMETRIC_RATIO)) + 1
        n_sparse = int(math.log(y_small / y_min) / math.log(SPARSE_RATIO)) + 1
        grid = np.unique(np.concatenate([
            y_hi * GEOMETRIC_RATIO ** -np.arange(n_geo),
            y_small * SPARSE_RATIO ** -np.arange(1, n_sparse),
            np.linspace(0, y_hi, 401)[1:],
            np.clip(np.linspace(m[0] - base - 12 * sd, m[0] - base + 12 * sd, 201),
                    0, y_hi)]))
        grid = grid[grid > 0]
        res = law.solve(base + grid, EPS_EDGE * grid, tol_stall=TOL_STALL_EDGE)
        pos = inside(law, grid, res)
        if not pos[-40:].any():
            break
        y_hi *= 4.0
    else:
        raise RuntimeError("support: the density does not vanish at 4^12 times the scale")
    # density at y < y_small (1e-12 y_hi, or the lowest points of the scan): a density
    # vanishing slowly at base (y rho(y) -> 0, flipping around the threshold): the
    # interval starts at base
    small = grid < y_small
    zero_start = bool(pos[small].any())
    pos[small] = zero_start
    return scan_intervals(law, grid, res, pos, zero_start)


def scan_intervals(law, grid: np.ndarray, res: NewtonResult, pos: np.ndarray,
                   zero_start: bool = False) -> np.ndarray:
    """The intervals (rows, in x) where the classification ``pos`` of the sorted scan
    points y = ``grid`` (solved in ``res``) holds, every flip bisected in log y to 1e-13
    relative (:func:`bisect_edges`); ``zero_start``: the first interval starts at the base
    point."""
    if not pos.any():
        return np.empty((0, 2))
    change = np.nonzero(pos[1:] != pos[:-1])[0]
    rising = pos[change + 1]
    edges = bisect_edges(law, grid[change], grid[change + 1], res.unknowns[change],
                         res.unknowns[change + 1], rising)
    return assemble(law, edges, rising, zero_start)


def bisect_edges(law, lo: np.ndarray, hi: np.ndarray, v_lo: np.ndarray, v_hi: np.ndarray,
                 rising: np.ndarray, rel: float = 1e-13) -> np.ndarray:
    """The edges (in x) inside the brackets [lo, hi] of y = x - base (solutions v_lo, v_hi
    at their ends, Im zeta = EPS_EDGE y), where :func:`inside` turns True (``rising``) or
    False as y grows: bisection in log y to ``rel`` relative, all brackets at once."""
    base = law.base_atom
    if not len(lo):
        return np.empty(0)
    # bisection on log y to 1e-13 relative, BISECTION_LEVELS levels per solve: every
    # dyadic point of the next levels of a bracket is solved at once, then the bisection's
    # choices are replayed on them (the same edges as one level per solve, in a quarter of
    # the solver calls). Each point is chained from the solutions at both ends of its
    # bracket (a short walk parallel to the axis; the walk from the side of the edge the
    # point is not on fails at the branch point and is dropped -- with the default stall
    # tolerance: a loose one would let it settle on the real branch -- and the first walk
    # to arrive stops the other: ``partner``); a point neither walk reaches comes straight
    # down from the far field
    E = len(lo)
    J = 2**BISECTION_LEVELS - 1
    n = E * J
    frac = np.arange(1, J + 1) / (J + 1)
    for _ in range(-(-60 // BISECTION_LEVELS)):
        if np.all(hi - lo <= rel * (hi + abs(base))):
            break
        # the dyadic points in log y, (E, J)
        u_lo, u_hi = np.log(lo), np.log(hi)
        pts = np.exp(u_lo[:, None] + (u_hi - u_lo)[:, None] * frac)
        flat = pts.ravel()
        ends = np.concatenate([np.repeat(lo, J), np.repeat(hi, J)])
        z_ends = base + ends + 1j * EPS_EDGE * ends
        v_pts, conv = from_either(law.system, base + flat, EPS_EDGE * flat,
                                  (z_ends[:n], np.repeat(v_lo, J, axis=0)),
                                  (z_ends[n:], np.repeat(v_hi, J, axis=0)),
                                  y_start=law.y_start(base + flat), **CHAINED)
        if not conv.all():
            bad = ~conv
            rv = law.solve(base + flat[bad], EPS_EDGE * flat[bad], chain=False,
                           tol_stall=TOL_STALL_EDGE)
            v_pts[bad], conv[bad] = rv.unknowns, rv.converged
        rm = NewtonResult(base + flat + 1j * EPS_EDGE * flat, np.zeros(n, complex), conv, 0,
                          0, v_pts)
        inside_hi = (inside(law, flat, rm) == np.repeat(rising, J)).reshape(E, J)
        v_pts = v_pts.reshape(E, J, -1)
        # replay the bisection: bracket (a, b) of dyadic indices, 0 and J + 1 the ends
        a, b = np.zeros(E, dtype=int), np.full(E, J + 1)
        rows = np.arange(E)
        for _ in range(BISECTION_LEVELS):
            mid = (a + b) // 2
            up = inside_hi[rows, mid - 1]
            b, a = np.where(up, mid, b), np.where(up, a, mid)
        new_lo = np.where(a > 0, pts[rows, np.maximum(a - 1, 0)], lo)
        new_hi = np.where(b <= J, pts[rows, np.minimum(b - 1, J - 1)], hi)
        v_lo = np.where((a > 0)[:, None], v_pts[rows, np.maximum(a - 1, 0)], v_lo)
        v_hi = np.where((b <= J)[:, None], v_pts[rows, np.minimum(b - 1, J - 1)], v_hi)
        lo, hi = new_lo, new_hi
    return base + np.where(rising, lo, hi)


def assemble(law, edges: np.ndarray, rising: np.ndarray, zero_start: bool = False
             ) -> np.ndarray:
    """Intervals (rows) from sorted ``edges`` where the support starts (``rising``) or
    ends; ``zero_start``: the first interval starts at the base point."""
    base = law.base_atom
    starts = list(edges[rising])
    ends = list(edges[~rising])
    if zero_start:
        starts.insert(0, base)
    # a start at the base atom is that point exactly
    starts = [base if abs(a - base) <= 1e-10 * max(abs(base), 1e-300) else a
              for a in starts]
    if len(starts) != len(ends):
        raise RuntimeError(f"support: unmatched edges {starts} / {ends}")
    return np.column_stack([starts, ends])
