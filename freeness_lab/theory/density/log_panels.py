"""Adaptive refinement of the support quadrature's panels in log(x - origin).

A log panel may span hundreds of e-folds of x with a sizeable mass; each is halved (in u =
log(x - origin)) until its rule agrees with the sum of its halves' (:func:`refine_log_panels`),
the new nodes at 0 solved in log zeta from the parent's nodes (:func:`log_panel_nodes`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from freeness_lab.theory.density.chaining import CHAINED, node_solve
from freeness_lab.theory.density.panels import panel_rule, panel_var, panel_x
from freeness_lab.theory.newton import LogZetaSystem, from_either, lilypads

__all__ = ["LOG_PANELS_MAX", "LOG_PANEL_TOL", "LOG_SPLIT_MAX", "log_panel_nodes",
           "refine_log_panels", "refine_panels"]

#: adaptive panels in log(x - origin): the budget (relative to the continuous mass) for the
#: sum of their error estimates, the most halvings (support_panels makes three log panels of
#: up to ~190 e-folds of x each; 2^-40 of that is 2e-10 e-folds) and the most panels added
#: to a law (erf, Gaussian weights, depth 6: 27)
LOG_PANEL_TOL = 1e-11
LOG_SPLIT_MAX = 40
LOG_PANELS_MAX = 256


def refine_log_panels(law, intervals: np.ndarray, panels: np.ndarray, x: np.ndarray,
                      w: np.ndarray, rho: np.ndarray, zeta: np.ndarray, unknowns: np.ndarray
                      ) -> tuple[np.ndarray, ...]:
    """Split the panels in u = log(x - origin) (kind 1) until their integrals converge.

    A log panel may span hundreds of e-folds of x with a sizeable mass (erf, Gaussian
    weights, depth 6: 10 % of the mass below 1e-30, and one 12-point panel across 186
    e-folds was 1.7e-5 off). Each one's rule Q is compared with the sum Q_2 of the rules
    of its two halves (split at the midpoint in u); where |Q - Q_2| exceeds its share of
    the budget LOG_PANEL_TOL (1 - atom mass) -- in proportion to its length in u, so
    that the accepted panels' estimates add up to at most the budget --, the accuracy
    eta |Q_2| of the integrand's values, and a floor, half the budget over the most panels
    there can be (the log panels and LOG_PANELS_MAX), both halves are tested in turn;
    otherwise the halves are kept (Q_2, the better of the two). The estimates accepted add
    up to at most 1.5 times the budget. The floor stops the halving at an edge inside a log
    block that the support's scan cannot see (below 1e-30 of its window: sigmoid's J J^T at
    depth 3 starts at x = 2.2e-87), where the shares of ever shorter panels shrink with their
    length and the sqrt edge's error only like its power 3/2: 25 rounds of halving there, 13
    with the floor (the same mass and moments to two digits). eta = 1e-12 (the Newton solution's
    relative accuracy) + 2^-52 |origin| / (lo - origin): the nodes are doubles
    x = origin + y, whose y keeps only 16 - log10(|origin| / y) digits (5 at the floor
    1e-11 |origin| of a chain's log block). A panel whose nodes did not converge (nan,
    already warned about) is not split further, and no more than LOG_PANELS_MAX panels
    are added in all (then a warning).

    Parameters
    ----------
    intervals : ndarray (K, 2)
        The support the panels cover (the nodes' Poisson smoothing is capped by the
        distance to its edges: :func:`~freeness_lab.theory.density.chaining.node_solve`).
    panels : ndarray (P, 4)
        (lo, hi, kind, origin), sorted.
    x, w : ndarray (P, n_gl)
        Nodes and weights (:func:`panel_rule`).
    rho : ndarray (P n_gl,)
        The density at the nodes.
    zeta, unknowns : ndarray (P n_gl,), (P n_gl, size)
        The points solved at and their solutions (the deep-mass walk starts there).

    Returns
    -------
    panels, x, w, rho, zeta, unknowns
        As given, with the log panels refined (still sorted).
    """
    log = panels[:, 2] == 1
    if not log.any():
        return panels, x, w, rho, zeta, unknowns
    u_len = np.abs(np.diff(panel_var(panels[:, :2], panels[:, 2:3], panels[:, 3:4]),
                           axis=1))[:, 0]
    total = LOG_PANEL_TOL * (1.0 - law.atom_mass)
    *out, todo = refine_panels(law, intervals, panels, x, w, rho, zeta, unknowns, log,
                               total / u_len[log].sum() * u_len,
                               floor=0.5 * total / (int(log.sum()) + LOG_PANELS_MAX))
    if todo.any():
        warnings.warn(f"support quadrature: {int(todo.sum())} panels in log x did not "
                      f"converge (at most {LOG_PANELS_MAX} added, {LOG_SPLIT_MAX} halvings)",
                      RuntimeWarning, stacklevel=4)
    return tuple(out)


def refine_panels(law, intervals: np.ndarray, panels: np.ndarray, x: np.ndarray,
                  w: np.ndarray, rho: np.ndarray, zeta: np.ndarray, unknowns: np.ndarray,
                  todo: np.ndarray, tol: np.ndarray, floor: float = 0.0
                  ) -> tuple[np.ndarray, ...]:
    """Halve the panels marked ``todo`` (in their variable u, :func:`panel_var`) until the
    rule of each agrees with the sum of its halves' to its share ``tol`` (per panel, split
    in proportion to the length in u between halves), to ``floor``, or to the accuracy of
    the values.

    Arguments as :func:`refine_log_panels`, with ``todo`` (bool, per panel), ``tol`` (per
    panel) and ``floor``; returns as it does, and the mask of the returned panels that did
    not converge (at most LOG_PANELS_MAX panels added, LOG_SPLIT_MAX halvings).
    """
    n = law.n_gl
    P = len(panels)
    rows = list(panels)
    tols = list(tol)
    blocks = [[x[i], w[i], rho[i * n:(i + 1) * n], zeta[i * n:(i + 1) * n],
               unknowns[i * n:(i + 1) * n]] for i in range(P)]
    todo = list(todo)
    added = 0
    for _ in range(LOG_SPLIT_MAX):
        idx = [i for i, t in enumerate(todo) if t]
        if not idx or added + len(idx) > LOG_PANELS_MAX:
            break
        added += len(idx)
        halves = []
        for i in idx:
            lo, hi, kind, origin = rows[i]
            u = panel_var(np.array([lo, hi]), kind, origin)
            mid = float(panel_x(np.array([0.5 * (u[0] + u[1])]), kind, origin)[0][0])
            halves += [(lo, mid, kind, origin), (mid, hi, kind, origin)]
        halves = np.array(halves, dtype=float)
        xh, wh = panel_rule(law.n_gl, halves)
        parents = [blocks[i] for i in idx for _ in (0, 1)]
        rh, zh, vh = log_panel_nodes(law, intervals, halves, xh, parents)
        new_rows, new_blocks, new_todo, new_tols = [], [], [], []
        k = 0
        for row, block, t, tl in zip(rows, blocks, todo, tols, strict=True):
            if not t:
                new_rows.append(row)
                new_blocks.append(block)
                new_todo.append(False)
                new_tols.append(tl)
                continue
            parent = float(block[1] @ block[2])
            pair = (2 * k, 2 * k + 1)
            child = float(sum(wh[j] @ rh[j] for j in pair))
            if np.isfinite(parent) and not np.isfinite(child):
                # a node of the halves did not converge: the parent's rule stays
                new_rows.append(row)
                new_blocks.append(block)
                new_todo.append(False)
                new_tols.append(tl)
                k += 1
                continue
            # x = origin + y keeps only 16 - log10(|origin| / y) digits of y (log panels)
            eta = 1e-12 + (2.0**-52 * abs(row[3]) / (row[0] - row[3]) if row[2] == 1 else 0.0)
            split = bool(np.isfinite(child)
                         and abs(parent - child) > max(tl, floor, eta * abs(child)))
            u = panel_var(np.array([row[0], halves[2 * k][1], row[1]]), row[2], row[3])
            share = np.abs(np.diff(u)) / max(abs(u[2] - u[0]), 1e-300)
            for j, f in zip(pair, share, strict=True):
                new_rows.append(halves[j])
                new_blocks.append([xh[j], wh[j], rh[j], zh[j], vh[j]])
                new_todo.append(split)
                new_tols.append(tl * f)
            k += 1
        rows, blocks, todo, tols = new_rows, new_blocks, new_todo, new_tols
    return (np.array(rows, dtype=float), np.array([b[0] for b in blocks]),
            np.array([b[1] for b in blocks]), np.concatenate([b[2] for b in blocks]),
            np.concatenate([b[3] for b in blocks]), np.concatenate([b[4] for b in blocks]),
            np.array(todo, dtype=bool))


def log_panel_nodes(law, intervals: np.ndarray, halves: np.ndarray, x: np.ndarray,
                    parents: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The density, points and solutions at the nodes x (rows: panels ``halves``) of the
    halves of log panels of the support ``intervals``, ``parents`` holding the parent
    panel's block (x, w, rho, zeta, unknowns) for each.

    Log panels at 0 (origin 0, a product law's base) are solved in ell = log zeta
    (:class:`~freeness_lab.theory.newton.log_zeta.LogZetaSystem`, as :func:`deep_mass` does):
    each node walks straight in ell from the parent's node nearest to it in log x --
    from the far field, a walk down to x ~ 1e-200 costs tens of rounds, and refining
    three log panels of erf's J J^T at depth 10 (orthogonal) doubled the cost of the
    whole quadrature that way. zeta' = y (1 + i eps_rel) there, as at the other nodes
    near 0. Other nodes (and those whose walk fails) are solved as the quadrature's.
    """
    n, P = law.n_gl, len(halves)
    size = parents[0][4].shape[1]
    rho, zeta = np.full((P, n), np.nan), np.full((P, n), np.nan + 0j)
    v = np.zeros((P, n, size), dtype=complex)
    done = np.zeros((P, n), dtype=bool)
    at_zero = (halves[:, 2] == 1) & (halves[:, 3] == 0) & (law.base_atom == 0)
    if at_zero.any():
        rows = np.nonzero(at_zero)[0]
        u = np.log(x[rows])
        ell0, v0 = [], []
        for k, r in enumerate(rows):
            zp, vp = parents[r][3], parents[r][4]
            lp = np.log(zp)
            j = np.argmin(np.abs(lp.real[None, :] - u[k][:, None]), axis=1)
            ell0.append(lp[j])
            v0.append(vp[j])
        ell0, v0 = np.concatenate(ell0), np.concatenate(v0)
        system = LogZetaSystem(law.system)
        phi = math.atan(law.eps_rel)
        res = lilypads(system, u.ravel(), np.full(u.size, phi), y_start=1.0,
                       log_zeta=True, start=(ell0, v0), **CHAINED)
        res = _from_both_sides(system, u.ravel(), phi, res)
        zg = system.cauchy(res.unknowns, res.zeta, drop_zero_atom=True)
        f = -(zg / (1 + 1j * law.eps_rel)).imag / math.pi  # y rho
        ok = res.converged & np.all(np.isfinite(v0), axis=1)
        rr = rho[rows].ravel()
        rr[ok] = f[ok] / x[rows].ravel()[ok]
        rho[rows] = rr.reshape(-1, n)
        zeta[rows] = np.exp(res.zeta).reshape(-1, n)
        v[rows] = res.unknowns.reshape(-1, n, size)
        done[rows] = ok.reshape(-1, n)
    if not done.all():
        res = node_solve(law, x[~done], intervals)
        rho[~done] = law.continuous_density(res)
        zeta[~done], v[~done] = res.zeta, res.unknowns
    return rho, zeta, v


def _from_both_sides(system, u: np.ndarray, phi: float, res):
    """``res`` with its nodes that failed walked again from the nearest converged nodes
    below and above them in u (two walks each, the first to arrive stops the other): the
    walk from the parent's node fails at an edge between them (the support's lower edge
    inside a log block: sigmoid's J J^T at depth 10 starts near 1e-259), where the far
    field costs ~45 rounds per node."""
    bad = np.nonzero(~res.converged)[0]
    good = np.nonzero(res.converged)[0]
    if not len(bad) or not len(good):
        return res
    order = good[np.argsort(u[good], kind="stable")]
    k = np.searchsorted(u[order], u[bad])
    below, above = order[np.maximum(k - 1, 0)], order[np.minimum(k, len(order) - 1)]
    res.unknowns[bad], res.converged[bad] = from_either(
        system, u[bad], phi, (res.zeta[below], res.unknowns[below]),
        (res.zeta[above], res.unknowns[above]), y_start=1.0, log_zeta=True, **CHAINED)
    return res
