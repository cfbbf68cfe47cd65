"""The cdf of a solved law at given points by contour integrals of G, without its support.

For x_0 left of the support and any real x, by Stieltjes inversion and Cauchy's theorem
(G_c: the Cauchy transform of the continuous part, the atoms' poles removed; analytic in
the upper half-plane),

    F_c(x) = -(1/pi) Im int_{x_0}^{x} G_c(t + i0) dt
           = -(1/pi) [Re I(x_0) + Im H(x) - Re I(x)],
    I(x) = int_0^eta G_c(x + i y) dy,         H(x) = int_{x_0}^{x} G_c(t + i eta) dt,

along the path that goes up at x_0 to height eta, along Im z = eta, and down at x ("a
comb": one horizontal line shared by every point, one vertical leg per point). The partial
mean int_{x_0}^x t rho_c(t) dt is the same with z G_c(z) in place of G_c. No support, edge
or gap is needed, and a component of any width is counted with its mass:

* the horizontal line keeps a distance eta from every singularity on the real axis:
  composite Gauss-Legendre on panels of width eta integrates it to rounding (a singularity
  at two half-widths from a panel: error ~ 4.2^(-2n)), and its Legendre interpolant on each
  panel gives H at any x (:class:`Horizontal`);
* each leg is integrated in s = sqrt(y), where a square-root or inverse square-root edge at
  x itself is smooth, by adaptive bisection in s (:func:`legs`): a panel is accepted when its
  two halves agree with it within its share of the tolerance; an edge at distance d from x
  puts a branch point at |s| = sqrt(d), and the panels shrink to that size near s = 0 only.
  Close to the base point (0, where the density may be a power of x) the leg above y = d
  (the distance to it) is integrated in log y.

Every node is solved by the lilypads homotopy from a solved neighbour above it (in the
first panel of a leg, from the top of the leg or from a node of the panel above it; then
from its parent panel), so that the solution stays on the branch the far field selects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.density.chaining import CHAINED, TOL_STALL_EDGE
from freeness_lab.theory.density.panels import gauss_legendre
from freeness_lab.theory.newton import lilypads

__all__ = ["HORIZONTAL_NODES", "LEG_LEVELS", "LEG_NODES", "LEG_PANELS", "Horizontal", "Lowest",
           "antiderivatives", "horizontal", "legs", "solve_from"]

#: Gauss-Legendre nodes per panel of the horizontal line
HORIZONTAL_NODES = 12
#: Gauss-Legendre nodes per panel of a leg (in s = sqrt(y))
LEG_NODES = 8
#: bisection levels of a leg's panels at most (a panel 2^-40 of the leg), and panels open at
#: once on one leg at most (a leg refines near its singular points only: a few per level)
LEG_LEVELS = 40
LEG_PANELS = 64
#: the first panel of a leg: its nodes (indices, y increasing with them) solved top down in
#: these groups, each from the lowest node of the group above it (:func:`legs`)
LADDER = (list(range(LEG_NODES // 2, LEG_NODES)), list(range(LEG_NODES // 4, LEG_NODES // 2)),
          list(range(LEG_NODES // 4)))


def solve_from(law, x: np.ndarray, y: np.ndarray, z0: np.ndarray, v0: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(G_c, unknowns) at x + i y, each point walked from its solved neighbour z0 (solution
    v0); a point whose walk fails comes down from the far field (nan where that fails too)."""
    r = lilypads(law.system, x, y, y_start=law.y_start(x), start=(z0, v0),
                 tol_stall=TOL_STALL_EDGE, **CHAINED)
    v, conv = r.unknowns, r.converged
    if not conv.all():
        bad = ~conv
        rb = law.solve(x[bad], y[bad], chain=False, tol_stall=TOL_STALL_EDGE)
        v[bad], conv[bad] = rb.unknowns, rb.converged
    return law.continuous_cauchy(x + 1j * y, v, conv), v


@dataclass
class Horizontal:
    """int_{x_0}^x g(t) dt and int_{x_0}^x t g(t) dt for g(t) = G_c(t + i eta), x in
    [x_0, x_1]: the Legendre interpolant of g on each panel, integrated exactly.

    Attributes
    ----------
    edges : ndarray (n + 1,)      panel ends, x_0 .. x_1
    eta : float                   the height of the line
    coef : ndarray (2, n, k + 1)  per panel, Legendre coefficients (in the panel's variable
                                  u in [-1, 1]) of the antiderivatives from the panel's left
                                  end of g and of z g (z = t + i eta), times the half-width
    cumulative : ndarray (2, n + 1)  both integrals from x_0 to each panel end
    nodes : ndarray (N,)          the line's nodes t (increasing) where the system converged
    unknowns : ndarray (N, size)  its solution there (the tops of the legs start from them)
    """

    edges: np.ndarray
    eta: float
    coef: np.ndarray
    cumulative: np.ndarray
    nodes: np.ndarray
    unknowns: np.ndarray

    def start(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(z0, v0): the node of the line nearest each x (t + i eta) and its solution."""
        i = np.clip(np.searchsorted(self.nodes, x), 1, len(self.nodes) - 1)
        i = np.where(x - self.nodes[i - 1] < self.nodes[i] - x, i - 1, i)
        return self.nodes[i] + 1j * self.eta, self.unknowns[i]

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H(x), Hz(x)) for x in [x_0, x_1] (clipped there)."""
        x = np.clip(x, self.edges[0], self.edges[-1])
        j = np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, len(self.edges) - 2)
        a, b = self.edges[j], self.edges[j + 1]
        u = 2.0 * (x - a) / (b - a) - 1.0
        basis = np.polynomial.legendre.legvander(u, self.coef.shape[-1] - 1)
        part = np.einsum("pk,cpk->cp", basis, self.coef[:, j])
        return self.cumulative[0, j] + part[0], self.cumulative[1, j] + part[1]


def antiderivatives(values: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Legendre coefficients (in u in [-1, 1]) of the antiderivatives from u = -1 of the
    interpolants of ``values`` (..., panels, n) at the n Gauss-Legendre points of each panel,
    times its half-width ``half``: the coefficients by the Gauss rule (exact for the
    interpolant of degree n - 1), then integrated exactly."""
    n = values.shape[-1]
    u, w = gauss_legendre(n)
    vander = np.polynomial.legendre.legvander(u, n - 1)
    coef = np.einsum("...pj,jk->...pk", values, vander * w[:, None]) * (np.arange(n) + 0.5)
    return np.polynomial.legendre.legint(coef, lbnd=-1, axis=-1) * half[:, None]


def horizontal(law, edges: np.ndarray, eta: float,
               known: dict[tuple[float, float], tuple[np.ndarray, ...]] | None = None
               ) -> Horizontal:
    """:class:`Horizontal` of ``law`` (a :class:`~freeness_lab.theory.density.solved.
    SolvedLaw`) on the panels ``edges`` at height ``eta`` (nan where a node did not
    converge). ``known`` holds (G_c, unknowns, converged) at the nodes of panels already
    solved, by their ends (a refinement keeps most panels: only the new ones are solved),
    and receives the new."""
    n = HORIZONTAL_NODES
    u, _ = gauss_legendre(n)
    a, b = edges[:-1], edges[1:]
    t = 0.5 * (a + b)[:, None] + 0.5 * (b - a)[:, None] * u  # (panels, n)
    known = {} if known is None else known
    keys = list(zip(a.tolist(), b.tolist(), strict=True))
    new = np.array([k not in known for k in keys])
    if new.any():
        res = law.solve(t[new].ravel(), np.full(t[new].size, eta))
        g = law.continuous_cauchy(t[new].ravel() + 1j * eta, res.unknowns, res.converged)
        rows = zip(g.reshape(-1, n), res.unknowns.reshape(len(g) // n, n, -1),
                   res.converged.reshape(-1, n), strict=True)
        known.update(zip([k for k, f in zip(keys, new, strict=True) if f], rows, strict=True))
    g, v, ok = (np.stack([known[k][i] for k in keys]) for i in range(3))
    integral = antiderivatives(np.stack([g, g * (t + 1j * eta)]), 0.5 * (b - a))
    full = np.polynomial.legendre.legval(1.0, np.moveaxis(integral, -1, 0))
    cumulative = np.concatenate([np.zeros((2, 1), dtype=complex), np.cumsum(full, axis=1)],
                                axis=1)
    return Horizontal(edges, eta, integral, cumulative, t[ok], v[ok])


class Lowest:
    """Per leg, its converged node nearest the real axis and the solution there (the start
    of the density's nodes next to it: :func:`~freeness_lab.theory.density.blocks.
    fit_blocks`).

    Attributes
    ----------
    z : complex ndarray (P,)         the node x + i y (nan where none converged)
    unknowns : complex ndarray (P, size)
    """

    def __init__(self, P: int, size: int):
        self.z = np.full(P, complex(np.nan, np.nan))
        self.unknowns = np.zeros((P, size), dtype=complex)

    def update(self, col: np.ndarray, z: np.ndarray, v: np.ndarray, g: np.ndarray) -> None:
        """Take the nodes z (K, m) of legs ``col`` (K,), solutions v (K, m, size), where G
        (``g``) is finite and lower than the node kept."""
        y = np.where(np.isfinite(g), z.imag, np.inf)
        j = np.argmin(y, axis=1)
        rows = np.arange(len(col))
        y = y[rows, j]
        kept = np.where(np.isnan(self.z.imag), np.inf, self.z.imag)
        order = np.argsort(y, kind="stable")
        leg, first = np.unique(col[order], return_index=True)
        best = order[first]  # per leg of col, its row with the lowest node
        take = y[best] < kept[leg]
        leg, best = leg[take], best[take]
        self.z[leg] = z[best, j[best]]
        self.unknowns[leg] = v[best, j[best]]


def legs(law, x: np.ndarray, eta: float, tol: float, line: Horizontal | None = None,
         low: Lowest | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(I(x), Iz(x), converged): int_0^eta G_c(x + i y) dy and int_0^eta (x + i y)
    G_c(x + i y) dy for every x, by adaptive bisection (module docstring).

    The leg is integrated in s = sqrt(y). A point at distance d < eta / 16 above the base
    point (0, or a chain's last shift, where the density may be singular) sees G vary over
    every octave of y between d and eta: there the leg is cut at y = d, and its upper part
    integrated in tau = log y, where that variation is smooth. Each piece's panels share its
    half of ``tol`` in proportion to their width (a piece alone gets all of it); a panel is
    accepted when |Q(panel) - Q(left half) - Q(right half)| is below its share, and the
    halves are kept. ``converged`` is False for a leg with a node the solver did not reach
    or a panel still failing after LEG_LEVELS bisections. The top of each leg is solved
    from the nearest node of the horizontal ``line`` (a short walk along Im z = eta), or
    from the far field without one. ``low`` (:class:`Lowest`), when given, receives each
    leg's converged node nearest the axis.
    """
    x = np.asarray(x, dtype=float)
    P, m = x.size, LEG_NODES
    u, w = gauss_legendre(m)
    if line is None or not line.nodes.size:
        top = law.solve(x, np.full(P, eta))
        top_v, ok = top.unknowns, top.converged.copy()
    else:
        g, top_v = solve_from(law, x, np.full(P, eta), *line.start(x))
        ok = np.isfinite(g)
    total = np.zeros((2, P), dtype=complex)
    low = Lowest(P, top_v.shape[-1]) if low is None else low
    # nearest node of the parent panel for each node of a half, by the rule's geometry
    parent = [np.argmin(np.abs((u[:, None] + side) / 2 - u[None, :]), axis=1)
              for side in (-1.0, 1.0)]

    def nodes(kind, lo, hi):
        t = 0.5 * (lo + hi)[:, None] + 0.5 * (hi - lo)[:, None] * u  # (K, m)
        y = np.where(kind[:, None] == 1, np.exp(t), t * t)
        return y, np.where(kind[:, None] == 1, y, 2.0 * t) * w * 0.5 * (hi - lo)[:, None]

    def sums(col, y, dy, g):
        z = x[col][:, None] + 1j * y
        return np.stack([(g * dy).sum(1), (g * z * dy).sum(1)]), z

    def quad(col, kind, lo, hi, z0, v0):
        y, dy = nodes(kind, lo, hi)
        g, v = solve_from(law, np.repeat(x[col], m), y.ravel(), z0.ravel(),
                          v0.reshape(-1, v0.shape[-1]))
        g = g.reshape(y.shape)
        q, z = sums(col, y, dy, g)
        return q, z, v.reshape(len(col), m, -1), g

    def descend(col, kind, lo, hi, v_top):
        # the first panel of each piece, its nodes solved top down in LADDER groups, each
        # group from the lowest node of the group above it (from the top of the leg, a walk
        # down to the lowest node crosses three decades of y, or tens in log y, and ends
        # in a retry from the far field for a few nodes in every call)
        y, dy = nodes(kind, lo, hi)
        g = np.empty(y.shape, dtype=complex)
        v = np.empty((*y.shape, v_top.shape[-1]), dtype=complex)
        z0, v0 = x[col] + 1j * eta, v_top
        for group in LADDER:
            k = len(group)
            gg, vv = solve_from(law, np.repeat(x[col], k), y[:, group].ravel(),
                                np.repeat(z0, k), np.repeat(v0, k, axis=0))
            g[:, group], v[:, group] = gg.reshape(-1, k), vv.reshape(-1, k, v0.shape[-1])
            z0, v0 = x[col] + 1j * y[:, group[0]], v[:, group[0]]
        q, z = sums(col, y, dy, g)
        return q, z, v, g

    d = x - law.base_atom
    near = ok & (d > 0) & (d < eta / 16.0)
    col = np.concatenate([np.arange(P)[ok], np.arange(P)[near]])
    kind = np.concatenate([np.zeros(ok.sum(), dtype=int), np.ones(near.sum(), dtype=int)])
    split = np.where(near, d, eta)[col]
    lo = np.where(kind == 1, np.log(split), 0.0)
    hi = np.where(kind == 1, math.log(eta), np.sqrt(split))
    pieces = np.where(near[col], 2.0, 1.0)
    unit = tol / pieces / (hi - lo)  # tolerance per unit width of the panel variable
    q, zn, vn, g = descend(col, kind, lo, hi, top_v[col])
    low.update(col, zn, vn, g)
    scale = np.abs(x) + eta
    for _ in range(LEG_LEVELS):
        if not col.size:
            break
        mid = 0.5 * (lo + hi)
        # both halves of every open panel in one solve (each node walks on its own)
        K = col.size
        both = quad(np.tile(col, 2), np.tile(kind, 2), np.concatenate([lo, mid]),
                    np.concatenate([mid, hi]),
                    np.concatenate([zn[:, parent[0]], zn[:, parent[1]]]),
                    np.concatenate([vn[:, parent[0]], vn[:, parent[1]]]))
        low.update(np.tile(col, 2), both[1], both[2], both[3])
        halves = [(both[0][:, :K], both[1][:K], both[2][:K]),
                  (both[0][:, K:], both[1][K:], both[2][K:])]
        q_half = halves[0][0] + halves[1][0]
        err = np.abs(q_half - q)
        share = unit * (hi - lo)
        good = (err[0] <= share) & (err[1] <= share * scale[col])
        np.add.at(total, (slice(None), col[good]), q_half[:, good])
        # a leg whose panels keep failing everywhere (a node the solver cannot reach) would
        # double its panels at every level: it fails once it holds LEG_PANELS of them
        open_panels = np.bincount(col[~good], minlength=P)
        crowded = open_panels > LEG_PANELS // 2
        ok[crowded] = False
        keep = ~good & ~crowded[col]
        col, kind, unit = (np.concatenate([a[keep], a[keep]]) for a in (col, kind, unit))
        lo, hi = np.concatenate([lo[keep], mid[keep]]), np.concatenate([mid[keep], hi[keep]])
        q = np.concatenate([halves[0][0][:, keep], halves[1][0][:, keep]], axis=1)
        zn = np.concatenate([halves[0][1][keep], halves[1][1][keep]])
        vn = np.concatenate([halves[0][2][keep], halves[1][2][keep]])
    ok[col] = False
    return total[0], total[1], ok
