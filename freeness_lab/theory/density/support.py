"""The support of a solved law's continuous part: scan, then multisection of every edge.

Everything runs in y = x - base (base = 0, or the last shift of a chain: the support lies
in [base, inf) and the density may be singular at base). A point is inside when
y rho(y) > 1e-9 (1 - atom mass) and rho is well above the Poisson leak of a nearby edge
(:meth:`~freeness_lab.theory.density.solved.SolvedLaw.leak`).
"""

from __future__ import annotations

import math

import numpy as np

from freeness_lab.theory.density.chaining import CHAINED, TOL_STALL_EDGE
from freeness_lab.theory.newton import NewtonResult, lilypads

__all__ = ["EPS_EDGE", "bisected_intervals"]

#: points per bracket and call of the edge multisection (3 bits per call)
MULTISECT = 7
#: brackets wider than this (relative) and away from atoms keep every flip of ``inside`` as
#: an edge (a gap, a short interval); the others keep the first (the rest: noise)
SPLIT_WIDTH = 1e-6
#: relative Im zeta for locating edges: the Poisson tail of a square-root edge is
#: ~ eps / sqrt(distance), far below the threshold on x rho(x) at this eps
EPS_EDGE = 1e-15


def bisected_intervals(law) -> np.ndarray:
    """Intervals of the continuous part of ``law`` (a :class:`~freeness_lab.theory.density.
    solved.SolvedLaw`): scan, then multisection of every edge (:func:`_multisect`).

    Everything runs in y = x - base (base = 0, or the last shift of a chain: the support
    lies in [base, inf) and the density may be singular at base): a scan of y geometric
    from 1e-30 of the window and linear, Im zeta = EPS_EDGE y, a point is inside when
    y rho > 1e-9 (1 - atom mass), and every edge is refined in log y."""
    if law.atom_mass > 1.0 - 1e-12:
        return np.empty((0, 2))  # purely atomic
    base = law.base_atom
    tau = 1e-9 * (1.0 - law.atom_mass)
    m = law.moments(2)
    sd = math.sqrt(max(m[1] - m[0] ** 2, 0.0))
    y_hi = 4.0 * law.scale
    # below 1e-12 of a nonzero base, x = base + y keeps less than 4 digits of y
    y_min = max(1e-30 * y_hi, 1e-12 * abs(base))

    def inside(y, res):
        # above the threshold, and well above the Poisson leak of a nearby edge (an
        # inverse square-root edge leaks ~ eps / distance^(3/2) outside the support)
        rho = law.continuous_density(res)
        return res.converged & (y * rho > tau) & (rho > 8.0 * law.leak(res))

    for _ in range(12):
        grid = np.unique(np.concatenate([
            np.geomspace(y_min, y_hi, 240), np.linspace(0, y_hi, 401)[1:],
            np.clip(np.linspace(m[0] - base - 12 * sd, m[0] - base + 12 * sd, 201),
                    0, y_hi)]))
        grid = grid[grid > 0]
        res = law.solve(base + grid, EPS_EDGE * grid, tol_stall=TOL_STALL_EDGE)
        pos = inside(grid, res)
        if not pos[-40:].any():
            break
        y_hi *= 4.0
    else:
        raise RuntimeError("support: the density does not vanish at 4^12 times the scale")
    if not pos.any():
        return np.empty((0, 2))
    # density at y < 1e-12 y_hi (or the lowest points of the scan): a density vanishing
    # slowly at base (y rho(y) -> 0, flipping around the threshold): the interval starts
    # at base
    small = grid < max(1e-12 * y_hi, 1e3 * y_min)
    zero_start = bool(pos[small].any())
    pos[small] = zero_start
    change = np.nonzero(pos[1:] != pos[:-1])[0]
    lo, hi = grid[change], grid[change + 1]
    rising = pos[change + 1]
    lo, hi, rising = _multisect(law, base, lo, hi, rising, res.unknowns[change],
                                res.unknowns[change + 1], inside)
    edges = base + np.where(rising, lo, hi)
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


def _multisect(law, base: float, lo: np.ndarray, hi: np.ndarray, rising: np.ndarray,
               v_lo: np.ndarray, v_hi: np.ndarray, inside
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brackets [lo, hi] (in y) of the edges, refined in log y to 1e-13 relative: (lo, hi,
    rising), sorted, one row per edge found.

    Multisection: every call puts MULTISECT points geometrically inside every bracket, and
    every sub-bracket across which ``inside`` flips becomes a bracket of the next call, i.e.
    log2(MULTISECT + 1) = 3 bits per call instead of bisection's 1: ~14 calls instead of
    ~40, each of 2 E MULTISECT points (the calls are dominated by their rounds, not by their
    points, as long as few points are solved; more points per call cost more than the
    rounds they save for factors with thousands of atoms). A bracket of the scan may hold
    three (five, ...) edges -- a gap and a short interval finer than the scan, as in the
    law of an empirical D^2 of a thousand atoms -- and then every one of them is kept while
    the bracket is wider than SPLIT_WIDTH and holds no atom (bisection kept one and lost
    the short interval or filled the gap: 1e-3 of the mass of a paired H_3 at M = 1024).
    Each point is chained from the solutions at both ends of its bracket (a short walk
    parallel to the axis; the walk from the side of the edge the point is not on fails at
    the branch point and is dropped -- with the default stall tolerance: a loose one would
    let it settle on the real branch -- and it stops as soon as the other walk has converged:
    the call lasts as long as the walks that succeed, not the ~16 rounds of the failing ones);
    a point neither walk reaches comes straight down from the far field.
    """
    K = MULTISECT
    frac = np.arange(1, K + 1) / (K + 1)
    for _ in range(60):
        if np.all(hi - lo <= 1e-13 * (hi + abs(base))):
            break
        E = len(lo)
        pts = lo[:, None] * (hi / lo)[:, None] ** frac  # (E, K), geometric in the bracket
        flat = pts.ravel()
        ends = np.concatenate([np.repeat(lo, K), np.repeat(hi, K)])
        n = E * K
        r = lilypads(law.system, np.tile(base + flat, 2), EPS_EDGE * np.tile(flat, 2),
                     y_start=law.y_start(base + flat),
                     start=(base + ends + 1j * EPS_EDGE * ends,
                            np.concatenate([np.repeat(v_lo, K, axis=0),
                                            np.repeat(v_hi, K, axis=0)])),
                     partner=np.r_[np.arange(n, 2 * n), np.arange(n)], **CHAINED)
        use_hi = r.converged[n:] & ~r.converged[:n]
        conv = r.converged[:n] | r.converged[n:]
        v_pts = np.where(use_hi[:, None], r.unknowns[n:], r.unknowns[:n])
        if not conv.all():
            bad = ~conv
            rv = law.solve(base + flat[bad], EPS_EDGE * flat[bad], chain=False,
                           tol_stall=TOL_STALL_EDGE)
            v_pts[bad], conv[bad] = rv.unknowns, rv.converged
        rm = NewtonResult(base + flat + 1j * EPS_EDGE * flat, np.zeros(n, complex), conv, 0,
                          0, v_pts)
        # inside-flags along every bracket, ends included; each flip is a new bracket
        flags = np.column_stack([~rising, inside(flat, rm).reshape(E, K), rising])
        at = np.column_stack([lo, pts, hi])
        v_at = np.concatenate([v_lo[:, None], v_pts.reshape(E, K, -1), v_hi[:, None]], axis=1)
        e, j = np.nonzero(flags[:, 1:] != flags[:, :-1])  # row-major: sorted by position
        # a narrow bracket keeps its first flip only: the others are the solver's noise at
        # an edge (rounding moves the solution by ~1e-16 / d at relative distance d)
        # (and so does a bracket next to an atom: the atom's pole leaves noise there too)
        first = np.r_[True, e[1:] != e[:-1]]
        atom_y = law.atoms[:, 0] - base
        near_atom = ((atom_y >= (1 - 1e-3) * lo[:, None])
                     & (atom_y <= (1 + 1e-3) * hi[:, None])).any(1)
        wide = ((hi - lo > SPLIT_WIDTH * (hi + abs(base))) & ~near_atom)[e]
        e, j = e[first | wide], j[first | wide]
        lo, hi, rising = at[e, j], at[e, j + 1], flags[e, j + 1]
        v_lo, v_hi = v_at[e, j], v_at[e, j + 1]
    return lo, hi, rising
