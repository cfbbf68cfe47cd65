"""A solved law evaluated at given points by contour integrals, without its support.

:class:`PointwiseLaw` answers ``cdf``, ``partial_mean``, ``quantile``, ``support`` and
``continuous_mass`` of a :class:`~freeness_lab.theory.density.solved.SolvedLaw` (moved by a
shift) from the comb of :mod:`~freeness_lab.theory.density.contour_cdf`: one horizontal line
at height eta shared by every point and one vertical leg per point. Its cost is a few dozen
solves per point asked for, whatever the structure of the support: the law of a free product
of discrete laws with M atoms (one sampled network's own marginals, the spectral check's
paired law) has components of mass k/M near its edges, which a support search must find one
by one before its quadrature is right; here a component is counted with its mass wherever it
lies, and the mass of the whole law is checked (:meth:`PointwiseLaw.continuous_mass`, from a
point beyond the support bound).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from freeness_lab.theory.density.blocks import (
    LegBottoms,
    Pieces,
    between_legs,
    integrate_blocks,
)
from freeness_lab.theory.density.contour_cdf import Horizontal, Lowest, horizontal, legs
from freeness_lab.theory.density.support import EPS_EDGE, bisect_edges, inside
from freeness_lab.theory.laws import SpectralLaw

__all__ = ["ETA_FRACTION", "PointwiseLaw"]

#: height of the comb's horizontal line, over the law's moment scale (~ its top edge)
ETA_FRACTION = 1.0 / 32.0
#: geometric growth of the horizontal panels beyond the moment window
PANEL_GROWTH = 1.5
#: refinement rounds of the horizontal panels (a panel is halved while the last Legendre
#: coefficients of its interpolant exceed its share of the tolerance)
HORIZONTAL_ROUNDS = 8
#: points of the scan for the top edge of the support (then bisected to EDGE_REL), doubled
#: up to EDGE_ROUNDS times
EDGE_SCAN = 64
EDGE_REL = 1e-7
EDGE_ROUNDS = 4
#: the top edge asked for near a point x (:meth:`PointwiseLaw.top_near`: x the largest
#: eigenvalue) is bisected to this fraction of its distance from x, or to EDGE_REL
GAP_REL = 1e-2
#: a quantile is interpolated linearly between known points of the cdf whose cdf differs by
#: at most QUANTILE_STEP or that are this close (over the moment scale): the error is then a
#: small fraction of the bracket (~ its width times its relative change of density); wider
#: brackets are cut in 9 first, at most QUANTILE_ROUNDS times
QUANTILE_STEP = 1e-2
QUANTILE_WIDTH = 1e-8
QUANTILE_ROUNDS = 8


class PointwiseLaw(SpectralLaw):
    """``law`` (moments, atoms, Cauchy transform) with its cdf, partial mean and quantiles at
    given points by contour integrals of G (:mod:`~freeness_lab.theory.density.contour_cdf`).

    Parameters
    ----------
    law : SpectralLaw
        The law itself: ``solved`` or ``shift + solved``.
    solved : SolvedLaw
        The law whose Newton system is solved.
    shift : float
        ``law`` is ``solved`` moved by this.
    tol : float
        The error asked of the cdf at every point (each leg gets pi tol / 4, the horizontal
        line pi tol / 8).
    label : str
    """

    def __init__(self, law: SpectralLaw, solved, shift: float = 0.0, *, tol: float,
                 label: str = ""):
        if not tol > 0:
            raise ValueError(f"tol: must be > 0, got {tol!r}")
        self.law, self.solved, self.shift, self.tol = law, solved, float(shift), float(tol)
        self.label = label
        self.atoms = np.reshape(law.atoms, (-1, 2))
        # every point where the cdf is known: (x, F(x)) with F(a-) before F(a) at an atom
        self._knots: list[tuple[np.ndarray, np.ndarray]] = []
        self._leg_cache: dict[float, tuple[float, float]] = {}
        self._bottoms = LegBottoms(solved.system.size)  # where block nodes start
        self._pieces = Pieces()  # the accepted blocks
        self._tops: dict[tuple[float, float], float] = {}  # top_near's edges

    def __repr__(self) -> str:
        return f"PointwiseLaw({self.label or repr(self.law)}, tol={self.tol:.1e})"

    def _moments(self, n: int) -> np.ndarray:
        return self.law.moments(n)

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        return self.law.cauchy(zeta)

    # -- the comb: horizontal line and the legs at its ends
    @functools.cached_property
    def comb(self) -> tuple[Horizontal, np.ndarray, float]:
        """(horizontal line, (I, Iz) of the legs at its ends, continuous mass up to its
        right end), in the solved law's coordinates (x - shift)."""
        law = self.solved
        eta = ETA_FRACTION * law.scale
        bound = law.support_bound()
        right = bound * (1.0 + 1e-3) + eta
        window = min(right, 4.0 * law.scale)
        n_uniform = max(1, math.ceil((window + eta) / eta))
        edges = list(np.linspace(-eta, window, n_uniform + 1))
        while edges[-1] < right:
            edges.append(min(right, edges[-1] + (PANEL_GROWTH - 1.0) * (edges[-1] + eta)))
        line = self._refined_line(np.array(edges), eta)
        ends = np.array([edges[0], edges[-1]])
        I, Iz, ok = legs(law, ends, eta, math.pi * self.tol / 4.0, line)
        if not ok.all():
            warnings.warn(f"{self!r}: the solver failed on a leg at an end of the comb",
                          RuntimeWarning, stacklevel=2)
        H, _ = line(ends[1:])
        mass = float(-(I[0].real + H[0].imag - I[1].real) / math.pi)
        return line, np.stack([I, Iz]), mass

    def _refined_line(self, edges: np.ndarray, eta: float) -> Horizontal:
        """:func:`horizontal` on ``edges``, panels halved while the two last Legendre
        coefficients of their interpolant exceed their share of pi tol / 8."""
        span, known = edges[-1] - edges[0], {}  # G_c at the panels solved (kept ones reused)
        for _ in range(HORIZONTAL_ROUNDS):
            line = horizontal(self.solved, edges, eta, known)
            width = np.diff(edges)
            # the antiderivative's last coefficients: the interpolant's truncation error
            tail = np.abs(line.coef[0, :, -3:]).sum(-1)
            bad = ~(tail <= math.pi * self.tol / 8.0 * width / span)
            if not bad.any():
                return line
            edges = np.sort(np.concatenate([edges, 0.5 * (edges[:-1] + edges[1:])[bad]]))
        warnings.warn(f"{self!r}: the horizontal line of the comb is not resolved to "
                      f"{self.tol:.1e}", RuntimeWarning, stacklevel=3)
        return line

    @property
    def atomic(self) -> bool:
        """Whether the law is purely atomic (its atoms carry all but 1e-12 of the mass)."""
        return self.atom_mass > 1.0 - 1e-12

    def continuous_mass(self) -> float:
        """The mass of the continuous part, from the comb up to beyond the support bound
        (should be 1 - atom_mass: the check of the comb's line and its end legs); 0 for a
        purely atomic law."""
        return 0.0 if self.atomic else self.comb[2]

    def _continuous(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F_c, partial mean of the continuous part) at x (law coordinates)."""
        if self.atomic:
            return np.zeros(x.shape), np.zeros(x.shape)
        line, ends, mass = self.comb
        y = x - self.shift
        lo, hi = line.edges[0], line.edges[-1]
        F, P = np.zeros(y.shape), np.zeros(y.shape)
        beyond = y >= hi
        F[beyond] = mass
        P[beyond] = np.nan  # not asked for by the interface: the mean is known from m_1
        # the continuous part has no mass at or below the base point (0, or a chain's last
        # shift: the support lies above it); within 1e-12 of a nonzero base, x = base + d
        # keeps less than 4 digits of d (as in the support search): counted as at the base
        base = self.solved.base_atom
        inner = (y > max(lo, base + 1e-12 * abs(base))) & ~beyond
        if inner.any():
            F[inner], P[inner] = self._legs(y[inner])
        return F, P + self.shift * F

    def _legs(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F_c, partial mean of the continuous part) at y (solved coordinates) inside the
        comb, each point solved once (a later call reuses it): from an accepted block;
        inside a rough interval by the block between the legs around it (:func:`~freeness_
        lab.theory.density.blocks.between_legs`), else its own leg; else :func:`~freeness_
        lab.theory.density.blocks.integrate_blocks`."""
        new = np.unique(y[[v not in self._leg_cache for v in y.tolist()]])
        if new.size:
            F, P, fresh = self._pieces.lookup(new)
            rough = fresh & self._pieces.in_rough(new)  # blocks failed there
            if rough.any():  # one block between the legs around, else a leg of its own
                idx = np.nonzero(rough)[0]
                F[idx], P[idx], found = between_legs(self.solved, new[idx], self._bottoms,
                                                     self._known, self.tol, self._pieces)
                if not found.all():
                    F[idx[~found]], P[idx[~found]] = self._known(new[idx[~found]])
            if (fresh & ~rough).any():
                F[fresh & ~rough], P[fresh & ~rough] = integrate_blocks(
                    self.solved, new[fresh & ~rough], self._known, self.tol, self._pieces,
                    self._bottoms)
            for v, f, p in zip(new.tolist(), F.tolist(), P.tolist(), strict=True):
                self._leg_cache[v] = (f, p)
        out = np.array([self._leg_cache[v] for v in y.tolist()]).reshape(-1, 2)
        return out[:, 0], out[:, 1]

    def _at_legs(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F_c, partial mean) at y by one leg each (nan and a warning where the solver
        failed)."""
        line, ends, _ = self.comb
        low = Lowest(y.size, self.solved.system.size)
        I, Iz, ok = legs(self.solved, y, line.eta, math.pi * self.tol / 4.0, line, low)
        self._bottoms.add(y, low)
        H, Hz = line(y)
        F = -(ends[0, 0].real + H.imag - I.real) / math.pi
        P = -(ends[1, 0].real + Hz.imag - Iz.real) / math.pi
        if not ok.all():
            warnings.warn(f"{self!r}: the solver failed on {int((~ok).sum())} of {ok.size} "
                          f"legs (nan)", RuntimeWarning, stacklevel=5)
        return np.where(ok, F, np.nan), np.where(ok, P, np.nan)

    def _known(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F_c, partial mean) at y by legs, each point's leg computed once (cached)."""
        todo = np.unique(y[[v not in self._leg_cache for v in y.tolist()]])
        if todo.size:
            F, P = self._at_legs(todo)
            for v, f, p in zip(todo.tolist(), F.tolist(), P.tolist(), strict=True):
                self._leg_cache[v] = (f, p)
        out = np.array([self._leg_cache[v] for v in y.tolist()]).reshape(-1, 2)
        return out[:, 0], out[:, 1]

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        Fc, _ = self._continuous(x)
        F = Fc + self.atom_cdf(x)
        self._add_knots(x, F)
        return F

    def _partial_mean(self, x: np.ndarray) -> np.ndarray:
        _, Pc = self._continuous(x)
        atoms = self.atoms
        if not self.atomic:
            beyond = x - self.shift >= self.comb[0].edges[-1]
            Pc = np.where(beyond, float(self.law.moments(1)[0])
                          - (atoms[:, 0] * atoms[:, 1]).sum(), Pc)
        if len(atoms):
            Pc = Pc + (atoms[:, 0] * atoms[:, 1] * (x[:, None] >= atoms[:, 0])).sum(-1)
        return Pc

    # -- quantiles from the known points of the cdf
    def _add_knots(self, x: np.ndarray, F: np.ndarray) -> None:
        ok = np.isfinite(F)
        self._knots.append((np.asarray(x, dtype=float)[ok], F[ok]))

    @functools.cached_property
    def _atom_knots(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, F(a-)) and (a, F(a)) at every atom a."""
        a = self.atoms[:, 0]
        if not a.size:
            return np.empty(0), np.empty(0)
        right = self._continuous(a)[0] + self.atom_cdf(a)
        return np.concatenate([a, a]), np.concatenate([right - self.atoms[:, 1], right])

    def _knot_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every known (x, F(x)), sorted: the comb's ends, both sides of each atom, and every
        point the cdf was asked at."""
        parts = [self._atom_knots, *self._knots]
        if not self.atomic:
            line, _, mass = self.comb
            parts.append((line.edges[[0, -1]] + self.shift,
                          np.array([0.0, mass + self.atom_mass])))
        x = np.concatenate([p[0] for p in parts])
        F = np.concatenate([p[1] for p in parts])
        order = np.lexsort((F, x))
        return x[order], np.maximum.accumulate(F[order])

    def _quantile(self, p: np.ndarray) -> np.ndarray:
        """Inverse cdf: linear inside the bracket of known points around p, the brackets wider
        than QUANTILE_STEP in cdf (and QUANTILE_WIDTH of the scale in x) first cut by the
        cdf at 8 points each."""
        width = QUANTILE_WIDTH * self.solved.scale
        for _ in range(QUANTILE_ROUNDS):
            kx, kF = self._knot_table()
            i = np.clip(np.searchsorted(kF, p, side="left"), 1, kx.size - 1)
            gap = kx[i] - kx[i - 1]
            wide = (gap > width) & (kF[i] - kF[i - 1] > QUANTILE_STEP)
            if not wide.any():
                break
            cut = kx[i - 1][wide, None] + gap[wide, None] * np.arange(1, 9) / 9.0
            self._cdf(np.unique(cut))
        kx, kF = self._knot_table()
        i = np.clip(np.searchsorted(kF, p, side="left"), 1, kx.size - 1)
        x0, x1, F0, F1 = kx[i - 1], kx[i], kF[i - 1], kF[i]
        t = np.where(F1 > F0, (p - F0) / np.where(F1 > F0, F1 - F0, 1.0), 1.0)
        out = x0 + np.clip(t, 0.0, 1.0) * (x1 - x0)
        if np.any(p <= 0.0) or np.any(p >= 1.0):
            lo, hi = self.support()
            out = np.where(p <= 0.0, lo, np.where(p >= 1.0, hi, out))
        return out

    # -- the support's top
    @functools.cached_property
    def top_edge(self) -> float:
        """The top edge of the continuous part (law coordinates), to EDGE_REL: a scan of
        EDGE_SCAN points, geometric in the distance from the largest known point of the cdf
        with mass above it (the largest point asked for, in the spectral check) up to the
        comb's end, its last flip bisected (:func:`~freeness_lab.theory.density.support.
        bisect_edges`); the scan is made twice as dense, up to EDGE_ROUNDS times, while the
        mass above the edge found exceeds tol (a component it missed); failing that (a top
        component narrower than the scan's spacing), the point where the mass above falls
        to tol, by bisection on the cdf. nan for a purely atomic law."""
        return self._top_edge(math.nan, 0.0)

    def top_near(self, x: float, gap_rel: float = GAP_REL) -> float:
        """The top of the support (atoms included), as ``support()[1]``, for a comparison of
        x with it: the edge of :attr:`top_edge`, its bisection (in the scan or on the cdf)
        stopped at a bracket within max(EDGE_REL (edge + |base|), ``gap_rel`` d(x, bracket))
        <= max(EDGE_REL (edge + |base|), ``gap_rel`` |x - edge|): |x - top| exact to
        ``gap_rel`` relative, or the edge to EDGE_REL where x is that close to it (the
        spectral check's ``top`` metric, x the largest eigenvalue: trials scatter its gap by
        tens of percent; a gap of 1e-2 bisected to EDGE_REL costs twice the solves). An
        atom above which the continuous part holds at most tol of mass (the resolution of
        the cdf) is the top itself, without a search for the edge below it (H_L of ReLU
        networks with orthogonal weights: its top eigenvalue, repeated, is often an atom of
        the paired law)."""
        key = (float(x), float(gap_rel))
        if "top_edge" in self.__dict__:  # known to EDGE_REL already
            edge = self.top_edge
        elif key not in self._tops:
            edge = self._tops[key] = (math.nan if self._atom_on_top()
                                      else self._top_edge(*key))
        else:
            edge = self._tops[key]
        return float(max([edge, *self.atoms[:, 0]], key=lambda v: -math.inf if math.isnan(v)
                         else v))

    def _atom_on_top(self) -> bool:
        """Whether the largest atom has at most tol of the continuous part's mass above it."""
        if self.atomic or not len(self.atoms):
            return False
        top = np.array([self.atoms[:, 0].max()])
        return bool(self.comb[2] - self._continuous(top)[0][0] <= self.tol)

    def _top_edge(self, near: float, gap_rel: float) -> float:
        """:attr:`top_edge`; each bisection stopped at gap_rel of the distance of ``near``
        (law coordinates, nan: none) from its bracket (:meth:`top_near`)."""
        if self.atomic:
            return math.nan
        law, (line, _, mass) = self.solved, self.comb
        base = law.base_atom
        near = near - self.shift

        def rel(lo: float, hi: float) -> float:  # (lo, hi): the bracket in y = x - base
            d = max(base + lo - near, near - base - hi, 0.0) if near == near else 0.0
            return max(EDGE_REL, gap_rel * d / (hi + abs(base)))

        kx = np.concatenate([np.empty(0), *(k[0] for k in self._knots)])
        kF = np.concatenate([np.empty(0), *(k[1] for k in self._knots)]) - self.atom_cdf(kx)
        kx = kx - self.shift
        known = kx[(mass - kF > self.tol) & (kx > base)]
        start = known.max() if known.size else base
        n, edge, above = EDGE_SCAN, math.nan, math.inf
        for _ in range(EDGE_ROUNDS):
            d = (line.edges[-1] - start) * np.concatenate([[0.0], np.geomspace(1e-9, 1.0, n)])
            y = start + d - base
            y = y[y > 0]
            res = law.solve(base + y, EPS_EDGE * y)
            # near an atom of mass p the rounding of its pole (~1e-12 p / d at distance d)
            # passes the density threshold of :func:`inside` (~1e-9 / y): such points are
            # not taken as inside
            d = np.abs(base + y[:, None] - law.atoms[:, 0])
            clear = np.all(d > 1e-3 * law.atoms[:, 1] * (base + y[:, None]), axis=1)
            pos = inside(law, y, res) & clear
            n *= 2
            if not pos.any():
                continue
            k = int(len(pos) - 1 - np.argmax(pos[::-1]))
            v = res.unknowns
            edge = base + y[-1] if k == len(pos) - 1 else float(bisect_edges(
                law, y[k:k + 1], y[k + 1:k + 2], v[k:k + 1], v[k + 1:k + 2],
                np.array([False]), rel(y[k], y[k + 1]))[0])
            above = mass - self._continuous(np.array([edge + self.shift]))[0][0]
            if above <= self.tol:
                return edge + self.shift
        # a top component narrower than the scan's spacing: the point where the mass above
        # falls to tol, by bisection on the cdf (the edge to the resolution of tol)
        lo, hi = max(start, base), line.edges[-1]
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if mass - self._continuous(np.array([mid + self.shift]))[0][0] > self.tol:
                lo = mid
            else:
                hi = mid
            if hi - lo <= rel(lo - base, hi - base) * hi:
                break
        above = mass - self._continuous(np.array([hi + self.shift]))[0][0]
        if not above <= self.tol:
            warnings.warn(f"{self!r}: mass {above:.1e} above the top edge found "
                          f"({hi + self.shift:.6g})", RuntimeWarning, stacklevel=2)
        return hi + self.shift

    def support(self) -> tuple[float, float]:
        """(lo, hi): hi the largest point of the support (:attr:`top_edge`, atoms included);
        lo the smallest atom or the base point (0, or the shift: the law has no mass below
        it), which bounds the support from below -- the lowest edge itself is not searched
        (nothing here asks for it)."""
        base = self.solved.base_atom + self.shift
        lo = min([base, *self.atoms[:, 0]])
        hi = max([self.top_edge, *self.atoms[:, 0]], key=lambda v: -math.inf if math.isnan(v)
                 else v)
        return float(lo), float(hi)
