"""Rescans of the components of a support that fail their mass check (:mod:`~freeness_lab.
theory.density.certify`).

A failing run of neighbouring components is scanned again between the gaps around it: points
graded toward every edge, linear ones across, dense ones where the adaptive panels did not
converge and where a gap holds mass (a narrow component no scan point fell in, localized by
contour masses of halves: :func:`hidden_mass`); the new flips are bisected in one call, a flip
whose bracket holds a known edge being that edge (:func:`rescanned`).
"""

from __future__ import annotations

import math

import numpy as np

from freeness_lab.theory.density.chaining import TOL_STALL_EDGE
from freeness_lab.theory.density.contour import contour_mass
from freeness_lab.theory.density.support import (
    EPS_EDGE,
    GEOMETRIC_RATIO,
    assemble,
    bisect_edges,
    inside,
)

__all__ = ["GAP_RESOLUTION", "RESCAN_LINEAR", "consecutive_runs", "gaps_around", "hidden_mass",
           "rescan_points", "rescanned"]

#: linear points of a rescan (besides those graded toward the component's edges)
RESCAN_LINEAR = 200
#: the mass in a gap of the found support is localized (by contour masses of halves) to this
#: fraction of its width, then scanned with RESCAN_LINEAR / 4 points
GAP_RESOLUTION = 1e-3


def rescan_points(law, a: float, b: float, components: np.ndarray, suspects: np.ndarray
                  ) -> np.ndarray:
    """Scan points x in (a, b), outside the support, around ``components`` (rows lo, hi):
    graded geometrically toward each lo and hi on both sides (ratio GEOMETRIC_RATIO, down to
    1e-7 of the width: closer, classifying a point is the bisection's job -- ill-conditioned
    solutions inside, the Poisson leak outside), RESCAN_LINEAR linear ones across (a, b) and
    RESCAN_LINEAR / 4 across each ``suspects`` panel (lo, hi) inside it."""
    steps = GEOMETRIC_RATIO ** -np.arange(int(math.log(1e7) / math.log(GEOMETRIC_RATIO)))
    x = [np.linspace(a, b, RESCAN_LINEAR + 2)[1:-1]]
    for s_lo, s_hi in suspects:
        if a < s_lo and s_hi < b:
            x.append(np.linspace(s_lo, s_hi, RESCAN_LINEAR // 4 + 2)[1:-1])
    for lo, hi in components:
        width = hi - lo
        x += [lo + 0.5 * width * steps, hi - 0.5 * width * steps]
    for left, right in gaps_around(a, b, components, pad=0.0):
        gap = right - left
        keep = steps[steps * gap >= 1e-7 * (b - a)]
        x += [left + 0.5 * gap * keep, right - 0.5 * gap * keep]
    if components[0, 0] == law.base_atom:  # below the graded ones, as the scan did
        x.append(np.array([law.base_atom + 1e-13 * (components[0, 1] - law.base_atom)]))
    x = np.concatenate(x)
    return np.unique(x[(x > max(a, law.base_atom)) & (x < b)])


def hidden_mass(law, a: float, b: float, tol: float, cache: dict, near: float | None = None
                ) -> list[tuple[float, float]]:
    """Where the gap (a, b) of the found support holds more than ``tol`` of mass: [] when
    its contour mass does not; else the interval found by halving while one half holds
    the mass -- a narrow component missed by the scan, localized to GAP_RESOLUTION of the
    width -- and stopping where both halves do (mass spread: the rescan's points go there).
    A half's end may lie inside the support, where the contour mass is the cdf's difference
    (resolved to ~1e-6: enough to say where the mass is). ``near``: the ends' distance to
    the support (default: a thousandth of the width)."""

    def mass(lo: float, hi: float, d_lo: float, d_hi: float) -> float:
        key = (lo, hi, d_lo, d_hi)
        if key not in cache:
            cache[key] = contour_mass(law, *key)
        return cache[key]

    d = (b - a) * 1e-3 if near is None else near
    lo, hi, d_lo, d_hi = a, b, d, d
    total = mass(lo, hi, d_lo, d_hi)
    if not abs(total) > tol:
        return []
    while hi - lo > GAP_RESOLUTION * (b - a):
        mid, d_mid = 0.5 * (lo + hi), 1e-3 * (hi - lo)
        left = mass(lo, mid, d_lo, d_mid)
        right = total - left
        if abs(left) > tol and abs(right) > tol:
            break
        lo, hi, d_lo, d_hi, total = ((lo, mid, d_lo, d_mid, left) if abs(left) > tol
                                     else (mid, hi, d_mid, d_hi, right))
    return [(lo, hi)]


def consecutive_runs(bad: list[int]) -> list[list[int]]:
    """``bad`` (sorted) cut into runs of consecutive indices."""
    runs: list[list[int]] = []
    for k in bad:
        if runs and runs[-1][-1] == k - 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def gaps_around(a: float, b: float, components: np.ndarray, pad: float = 1e-3
                ) -> list[tuple[float, float]]:
    """The gaps of (a, b) around ``components`` (rows lo, hi), each shrunk by ``pad`` of its
    width at an edge (a contour's end must not sit near one; closer to the edges, the
    rescan's graded points look)."""
    edges = np.concatenate([[a], components.ravel(), [b]])
    out = []
    for k, (lo, hi) in enumerate(zip(edges[:-1:2], edges[1::2], strict=True)):
        d = pad * (hi - lo)
        out.append((lo + (d if k else 0.0), hi - (d if k < len(components) else 0.0)))
    return [(lo, hi) for lo, hi in out if hi > lo]


def rescanned(law, bisected: np.ndarray, ends: np.ndarray, bad: list[int],
               suspects: np.ndarray, cache: dict) -> np.ndarray:
    """``bisected`` with each run of consecutive components in ``bad`` replaced by the
    intervals of a rescan between the run's outer ``ends`` (:func:`rescan_points`; a run,
    because a hidden component may straddle the contour end between two failing ones): all
    rescans in one solve and their new edges in one bisection (a flip whose bracket holds a
    known edge is that edge); a run starting at the base point keeps that start; one whose
    rescan has an end inside the support is kept as it was. Scan points go also where the
    gaps of a run's region hold mass (:func:`hidden_mass`)."""
    base = law.base_atom
    runs = consecutive_runs(bad)
    tol = 0.5 * law.mass_tol * max(1.0 - law.atom_mass, 1e-300) / len(bisected)
    pts = []
    for r in runs:
        a, b = ends[r[0]], ends[r[-1] + 1]
        # the gaps of the run's region that hold mass: a component no scan point fell in
        hidden = [s for lo, hi in gaps_around(a, b, bisected[r])
                  for s in hidden_mass(law, lo, hi, tol, cache, 1e-3 * (hi - lo))]
        pts.append(rescan_points(law, a, b, bisected[r],
                                 np.concatenate([suspects, np.reshape(hidden, (-1, 2))])))
    y = np.concatenate(pts) - base
    res = law.solve(base + y, EPS_EDGE * y, tol_stall=TOL_STALL_EDGE)
    pos = inside(law, y, res)
    known = bisected.ravel() - base
    flips = []  # per run: (edges, nan where to bisect, rising) or None
    lo_b, hi_b, v_lo, v_hi, up = [], [], [], [], []
    start = 0
    for r, p in zip(runs, pts, strict=True):
        idx = np.arange(start, start + len(p))
        start += len(p)
        pk = pos[idx]
        if bisected[r[0], 0] == base:
            pk[y[idx] < 1e-12 * (bisected[r[0], 1] - base)] = True
        if pk[-1] or (pk[0] and bisected[r[0], 0] != base):
            flips.append(None)
            continue
        change = idx[np.nonzero(pk[1:] != pk[:-1])[0]]
        rising = pk[change - idx[0] + 1]
        edge = np.full(len(change), math.nan)
        for j, c in enumerate(change):
            hit = known[(known >= y[c]) & (known <= y[c + 1])]
            if len(hit) == 1:
                edge[j] = base + hit[0]
            else:
                lo_b.append(y[c])
                hi_b.append(y[c + 1])
                v_lo.append(res.unknowns[c])
                v_hi.append(res.unknowns[c + 1])
                up.append(rising[j])
        flips.append((edge, rising))
    size = law.system.size
    found = iter(bisect_edges(law, np.array(lo_b), np.array(hi_b),
                              np.reshape(v_lo, (len(lo_b), size)),
                              np.reshape(v_hi, (len(hi_b), size)), np.array(up, dtype=bool)))
    rows = [bisected[[k]] for k in range(len(bisected)) if k not in bad]
    for r, f in zip(runs, flips, strict=True):
        if f is None:
            rows.append(bisected[r])
            continue
        edge, rising = f
        edge = np.array([e if e == e else next(found) for e in edge])
        rows.append(assemble(law, edge, rising, bisected[r[0], 0] == base))
    out = np.concatenate(rows)
    out = out[np.argsort(out[:, 0], kind="stable")]
    # components narrower than the bisection's resolution are none
    return out[out[:, 1] - out[:, 0] > 1e-12 * np.maximum(np.abs(out[:, 1]), 1e-300)]
