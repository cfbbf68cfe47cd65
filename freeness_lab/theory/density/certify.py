"""The support of a solved law, certified by its mass: contour integrals of G over each component.

The scan of :mod:`~freeness_lab.theory.density.support` sees a component of the support only
where one of its points falls, and a gap only where a point falls into it. A free product of
discrete laws (the paired laws of a sampled network: D_l^2 laws of M atoms) has components
of mass 1/M near its edges, narrower than any fixed scan; missed, they lose their mass, or
they put a gap inside a panel of the support quadrature, whose Gauss-Legendre rule then
integrates a density with square-root edges inside it (measured on a paired H_3 at M = 1024:
mass off by 7e-4).

Certificate: the mass of the law between two points a < b outside its support is a contour
integral of its Cauchy transform (Cauchy's theorem on the half disc over [a, b]; G is analytic
in the upper half-plane and across the real axis at a and b):

    mu((a, b)) = (1/pi) Im int_{C} G(z) dz,   C: z = c + r e^{i theta}, theta from 0 to pi,

c, r the centre and radius of [a, b], atoms inside included (:func:`contour_mass`). Along C the
solver works far from the axis except near a and b, and the integrand is analytic in theta
except at the images of the nearest edges, at distance ~d/r from the ends (d: distance from the
end to the support): composite Gauss-Legendre on panels graded geometrically toward both ends
from d/r integrates it to rounding. Each component of the found support, with half of each
neighbouring gap, gets such an integral, compared with the support quadrature's mass there
(:func:`component_check`); a component whose two masses disagree is scanned again, finely and
graded toward its edges (:func:`rescan_points`), and the whole quadrature rebuilt, until they
agree (:func:`certify_support`). The check runs when the quadrature's total mass or first moment
is off (both free): the laws of the tests' networks pass at once.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.density.chaining import TOL_STALL_EDGE
from freeness_lab.theory.density.edges import EdgeFit, edge_fits
from freeness_lab.theory.density.log_panels import refine_panels
from freeness_lab.theory.density.panels import gauss_legendre
from freeness_lab.theory.density.quadrature import support_quadrature
from freeness_lab.theory.density.support import (
    EPS_EDGE,
    GEOMETRIC_RATIO,
    assemble,
    bisect_edges,
    bisected_intervals,
    inside,
)

__all__ = ["MASS_TOL", "REFINE_ROUNDS", "CertifiedSupport", "certify_support",
           "component_masses", "contour_mass", "hidden_mass", "rescan_points"]

#: the default relative mass (and first-moment) defect of the support quadrature that calls
#: for the component check, and the agreement asked of a component's two masses
#: (:attr:`~freeness_lab.theory.density.solved.SolvedLaw.mass_tol`): the accuracy the limit
#: laws' quadratures are tested to (most reach 1e-10; deep or one-factor smooth products,
#: 1e-7 -- a missed component costs at least 1e-4 at M <= 1e4)
MASS_TOL = 1e-6
#: rounds of refinement (rescans of the components that fail the check)
REFINE_ROUNDS = 4
#: Gauss-Legendre nodes per panel of the contour integrals
CONTOUR_NODES = 16
#: linear points of a rescan (besides those graded toward the component's edges)
RESCAN_LINEAR = 200
#: the mass in a gap of the found support is localized (by contour masses of halves) to this
#: fraction of its width, then scanned with RESCAN_LINEAR / 4 points
GAP_RESOLUTION = 1e-3


@dataclass(frozen=True)
class CertifiedSupport:
    """The support of a solved law and its quadrature, checked against contour masses.

    Attributes
    ----------
    bisected : ndarray (K, 2)
        Intervals of the continuous part as bisected (:mod:`~freeness_lab.theory.density.
        support`, refined where the check asked for it).
    edge_fits : list of EdgeFit
        The edges with a fitted (inverse) square-root profile.
    intervals : ndarray (K, 2)
        ``bisected`` with the fitted edges moved to the zeros of their fits.
    quadrature : tuple
        (x, w, rho, panels, tail): :func:`~freeness_lab.theory.density.quadrature.
        support_quadrature` on ``intervals``.
    mass_defect : float
        The quadrature's mass (plus the atoms) minus 1.
    refined : int
        Rounds of refinement that were needed.
    """

    bisected: np.ndarray
    edge_fits: list[EdgeFit]
    intervals: np.ndarray
    quadrature: tuple
    mass_defect: float
    refined: int


def _fitted(bisected: np.ndarray, fits: list[EdgeFit]) -> np.ndarray:
    iv = bisected.copy()
    for fit in fits:
        iv[fit.row, fit.column] = fit.edge
    return iv


def _defects(law, quadrature: tuple) -> tuple[float, float]:
    """(mass defect, relative first-moment defect) of a support quadrature."""
    x, w, rho, panels, tail = quadrature
    mass = float((w * rho).sum() + tail.sum()) + law.atom_mass
    m1 = float((x * w * rho).sum() + (panels[:, 3] * tail).sum())
    if len(law.atoms):
        m1 += float(law.atoms[:, 0] @ law.atoms[:, 1])
    exact = float(law.moments(1)[0])
    return mass - 1.0, (m1 / exact - 1.0) if exact else m1


def certify_support(law) -> CertifiedSupport:
    """The support of ``law`` (a :class:`~freeness_lab.theory.density.solved.SolvedLaw`)
    and its quadrature, refined until every component's quadrature mass equals its
    contour mass (module docstring): a component that fails is rescanned
    (:func:`rescan_points`); when the rescan finds nothing new, its panels are halved
    adaptively (:func:`~freeness_lab.theory.density.log_panels.refine_panels`). A
    RuntimeWarning where REFINE_ROUNDS rounds do not reconcile them (the remaining defect is
    ``mass_defect``)."""
    bisected = bisected_intervals(law)
    scale = max(1.0 - law.atom_mass, 1e-300)
    cache: dict = {}
    suspects = np.empty((0, 2))  # panels the adaptive refinement could not converge
    for rounds in range(REFINE_ROUNDS + 1):
        fits = edge_fits(law, bisected)
        intervals = _fitted(bisected, fits)
        quadrature = support_quadrature(law, intervals)
        mass, moment = _defects(law, quadrature)
        if not len(intervals) or (abs(mass) <= law.mass_tol * scale
                                   and abs(moment) <= law.mass_tol):
            break
        ends = _ends(law, intervals)
        bad = _failing(law, intervals, quadrature, ends, cache)
        rescanned, looked = bisected, len(suspects) > 0
        if bad and rounds < REFINE_ROUNDS:
            rescanned = _rescanned(law, bisected, ends, bad, suspects, cache)
        unchanged = rescanned.shape == bisected.shape and np.allclose(rescanned, bisected,
                                                                       rtol=1e-12, atol=0)
        if bad and unchanged:
            # nothing new in the failing components: their panels may be too coarse (the
            # panels that do not converge are where the next rescan looks)
            quadrature, suspects = _refined_panels(law, intervals, quadrature, ends, bad)
            mass, moment = _defects(law, quadrature)
            bad = _failing(law, intervals, quadrature, ends, cache)
        # done: agreed, out of rounds, or a rescan that looked at the panels found nothing
        if not bad or rounds == REFINE_ROUNDS or (unchanged and (looked or not len(suspects))):
            if bad or abs(mass) > law.mass_tol * scale:
                warnings.warn(f"support of {law!r}: the quadrature's mass is off by "
                              f"{mass:.2e} (first moment {moment:.2e}) after {rounds} "
                              f"rescans; {len(bad)} components disagree with their "
                              f"contour masses", RuntimeWarning, stacklevel=4)
            break
        bisected = rescanned
    return CertifiedSupport(bisected, fits, intervals, quadrature, mass, rounds)


def _ends(law, intervals: np.ndarray) -> np.ndarray:
    """The contour ends around each component: the midpoints of the gaps between them,
    below the first (base - w / 2: the law lives on [base, inf)) and above the last."""
    base = law.base_atom
    a, b = intervals[:, 0], intervals[:, 1]
    left = min(a[0], base) - 0.5 * (b[0] - a[0])
    right = b[-1] + 0.5 * (b[-1] - a[-1])
    return np.concatenate([[left], 0.5 * (b[:-1] + a[1:]), [right]])


def contour_mass(law, a: float, b: float, near_a: float, near_b: float) -> float:
    """mu((a, b)) for a < b outside the support (atoms included), as (1/pi) Im of the
    integral of G over the upper half circle on [a, b] (module docstring).

    Parameters
    ----------
    law : SolvedLaw
    a, b : float
        The ends, outside the support.
    near_a, near_b : float
        Their distances to the nearest point of the support or atom: the panels are graded
        toward the ends from these (over the radius).
    """
    c, r = 0.5 * (a + b), 0.5 * (b - a)
    t, wt = gauss_legendre(CONTOUR_NODES)
    cuts = []
    for d in (near_b, near_a):
        delta = min(max(d / r, 1e-15), 0.5 * math.pi)
        cuts.append(delta * 2.0 ** np.arange(int(math.log2(0.5 * math.pi / delta)) + 1))
    theta = np.unique(np.concatenate([[0.0, 0.5 * math.pi, math.pi], cuts[0],
                                      math.pi - cuts[1]]))
    theta = theta[(theta >= 0) & (theta <= math.pi)]
    mid, half = 0.5 * (theta[1:] + theta[:-1]), 0.5 * np.diff(theta)
    nodes = (mid[:, None] + half[:, None] * t).ravel()
    weights = (half[:, None] * wt).ravel()
    z = c + r * np.exp(1j * nodes)
    res = law.solve(z.real, z.imag, tol_stall=TOL_STALL_EDGE)
    if not res.converged.all():
        return math.nan
    return float((weights * res.cauchy * 1j * (z - c)).sum().imag / math.pi)


def component_masses(law, intervals: np.ndarray, quadrature: tuple, ends: np.ndarray,
                     cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(contour, quadrature) mass between consecutive ``ends`` (around each component of
    ``intervals``), the atoms between them included (:func:`contour_mass`; ``cache``:
    contour masses already known, by their arguments)."""
    cache = {} if cache is None else cache
    x, w, rho, panels, tail = quadrature
    marks = np.concatenate([intervals.ravel(), law.atoms[:, 0]])
    exact, quad = [], []
    for a, b in zip(ends[:-1], ends[1:], strict=True):
        key = (a, b, *(float(np.min(np.abs(marks - e))) for e in (a, b)))
        if key not in cache:
            cache[key] = contour_mass(law, *key)
        exact.append(cache[key])
        q = float((w * rho)[(x > a) & (x < b)].sum()
                  + tail[(panels[:, 0] > a) & (panels[:, 1] < b)].sum())
        if len(law.atoms):
            q += float(law.atoms[(law.atoms[:, 0] > a) & (law.atoms[:, 0] < b), 1].sum())
        quad.append(q)
    return np.array(exact), np.array(quad)


def _failing(law, intervals: np.ndarray, quadrature: tuple, ends: np.ndarray,
             cache: dict) -> list[int]:
    """The components whose two masses (:func:`component_masses`) differ by more than their
    share of the law's ``mass_tol`` (1 - atom mass)."""
    exact, quad = component_masses(law, intervals, quadrature, ends, cache)
    # each component's share of the tolerance: half of it in proportion to its mass, at
    # least half over the number of components, so that the shares add up to at most it
    total = max(1.0 - law.atom_mass, 1e-300)
    share = 0.5 * np.maximum(np.abs(exact) / total, 1.0 / len(exact))
    return [int(k) for k in np.nonzero(~(np.abs(exact - quad) <= law.mass_tol * total
                                          * share))[0]]


def _refined_panels(law, intervals: np.ndarray, quadrature: tuple, ends: np.ndarray,
                    bad: list[int]) -> tuple[tuple, np.ndarray]:
    """``quadrature`` with the panels of the components ``bad`` halved adaptively
    (:func:`~freeness_lab.theory.density.log_panels.refine_panels`; the budget, a tenth of the
    law's ``mass_tol``, shared in proportion to the panels' widths), and the (lo, hi) of the
    panels that did not converge (a hidden edge inside: the next rescan looks there)."""
    x, w, rho, panels, tail = quadrature
    n = law.n_gl
    todo = panels[:, 2] != 1  # the log panels are adaptive already
    inner = np.zeros(len(panels), dtype=bool)
    for k in bad:
        inner |= (panels[:, 0] >= ends[k]) & (panels[:, 1] <= ends[k + 1])
    todo &= inner
    width = panels[:, 1] - panels[:, 0]
    tol = 0.1 * law.mass_tol * (1.0 - law.atom_mass) * width / max(width[todo].sum(), 1e-300)
    # the solutions at the nodes only serve the log panels' walks: not needed here
    zeta = np.zeros(x.size, dtype=complex)
    unknowns = np.zeros((x.size, law.system.size), dtype=complex)
    new, xr, wr, rho, _, _, left = refine_panels(law, intervals, panels, x.reshape(-1, n),
                                                 w.reshape(-1, n), rho, zeta, unknowns, todo,
                                                 tol)
    tails = {tuple(row): t for row, t in zip(panels, tail, strict=True) if t}
    return ((xr.ravel(), wr.ravel(), rho, new,
             np.array([tails.get(tuple(row), 0.0) for row in new])), new[left, :2])


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
    edges = np.concatenate([[a], components.ravel(), [b]])
    for lo, hi in components:
        width = hi - lo
        x += [lo + 0.5 * width * steps, hi - 0.5 * width * steps]
    for left, right in zip(edges[:-1:2], edges[1::2], strict=True):  # the gaps
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


def _runs(bad: list[int]) -> list[list[int]]:
    """``bad`` (sorted) cut into runs of consecutive indices."""
    runs: list[list[int]] = []
    for k in bad:
        if runs and runs[-1][-1] == k - 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def _gaps(a: float, b: float, components: np.ndarray) -> list[tuple[float, float]]:
    """The gaps of (a, b) around ``components`` (rows lo, hi), each shrunk by 1e-3 of its
    width at an edge (a contour's end must not sit near one; closer to the edges, the
    rescan's graded points look)."""
    edges = np.concatenate([[a], components.ravel(), [b]])
    out = []
    for k, (lo, hi) in enumerate(zip(edges[:-1:2], edges[1::2], strict=True)):
        pad = 1e-3 * (hi - lo)
        out.append((lo + (pad if k else 0.0), hi - (pad if k < len(components) else 0.0)))
    return [(lo, hi) for lo, hi in out if hi > lo]


def _rescanned(law, bisected: np.ndarray, ends: np.ndarray, bad: list[int],
               suspects: np.ndarray, cache: dict) -> np.ndarray:
    """``bisected`` with each run of consecutive components in ``bad`` replaced by the
    intervals of a rescan between the run's outer ``ends`` (:func:`rescan_points`; a run,
    because a hidden component may straddle the contour end between two failing ones): all
    rescans in one solve and their new edges in one bisection (a flip whose bracket holds a
    known edge is that edge); a run starting at the base point keeps that start; one whose
    rescan has an end inside the support is kept as it was. Scan points go also where the
    gaps of a run's region hold mass (:func:`hidden_mass`)."""
    base = law.base_atom
    runs = _runs(bad)
    tol = 0.5 * law.mass_tol * max(1.0 - law.atom_mass, 1e-300) / len(bisected)
    pts = []
    for r in runs:
        a, b = ends[r[0]], ends[r[-1] + 1]
        # the gaps of the run's region that hold mass: a component no scan point fell in
        hidden = [s for lo, hi in _gaps(a, b, bisected[r])
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
