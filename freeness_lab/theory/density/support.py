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
from freeness_lab.theory.newton import NewtonResult, lilypads

__all__ = ["EPS_EDGE", "bisected_intervals"]

#: relative Im zeta for locating edges: the Poisson tail of a square-root edge is
#: ~ eps / sqrt(distance), far below the threshold on x rho(x) at this eps
EPS_EDGE = 1e-15


def bisected_intervals(law) -> np.ndarray:
    """Intervals of the continuous part of ``law`` (a :class:`~freeness_lab.theory.density.
    solved.SolvedLaw`): scan, then bisection of every edge.

    Everything runs in y = x - base (base = 0, or the last shift of a chain: the support
    lies in [base, inf) and the density may be singular at base): a scan of y geometric
    from 1e-30 of the window and linear, Im zeta = EPS_EDGE y, a point is inside when
    y rho > 1e-9 (1 - atom mass), and every edge is bisected in log y."""
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
    # bisection on log y to 1e-13 relative; each midpoint is chained from the solutions
    # at both ends of its bracket (a short walk parallel to the axis; the walk from the
    # side of the edge the midpoint is not on fails at the branch point and is dropped --
    # with the default stall tolerance: a loose one would let it settle on the real branch);
    # a midpoint neither walk reaches comes straight down from the far field
    v_lo, v_hi = res.unknowns[change], res.unknowns[change + 1]
    E = len(lo)
    for _ in range(60):
        if np.all(hi - lo <= 1e-13 * (hi + abs(base))):
            break
        mid = np.sqrt(lo * hi)
        ends = np.concatenate([lo, hi])
        zm = base + mid + 1j * EPS_EDGE * mid
        r = lilypads(law.system, np.tile(base + mid, 2), EPS_EDGE * np.tile(mid, 2),
                     y_start=law.y_start(base + mid),
                     start=(base + ends + 1j * EPS_EDGE * ends,
                            np.concatenate([v_lo, v_hi])),
                     **CHAINED)
        use_hi = r.converged[E:] & ~r.converged[:E]
        conv = r.converged[:E] | r.converged[E:]
        v_mid = np.where(use_hi[:, None], r.unknowns[E:], r.unknowns[:E])
        if not conv.all():
            bad = ~conv
            rv = law.solve(base + mid[bad], EPS_EDGE * mid[bad], chain=False,
                            tol_stall=TOL_STALL_EDGE)
            v_mid[bad], conv[bad] = rv.unknowns, rv.converged
        rm = NewtonResult(zm, np.zeros(E, complex), conv, 0, 0, v_mid)
        p = inside(mid, rm)
        inside_hi = p == rising
        hi = np.where(inside_hi, mid, hi)
        lo = np.where(inside_hi, lo, mid)
        v_hi = np.where(inside_hi[:, None], v_mid, v_hi)
        v_lo = np.where(inside_hi[:, None], v_lo, v_mid)
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
