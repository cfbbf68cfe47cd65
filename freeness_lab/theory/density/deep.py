"""The mass of a product law or chain below its support quadrature, far below the smallest
double (:func:`deep_mass`), and the power-law remainder (:func:`power_law_rest`).

Deep products put a sizeable mass far below 1e-300: every factor whose density is singular
at 0 (Marchenko-Pastur, the D^2 law of a phi' with a zero) flattens rho ~ x^(delta - 1)
(delta ~ 1 / the number of such factors), and deep SiLU and GELU layers put 10-50 % of their
mass below 1e-258 (an atom at 0 of their laws: :mod:`~freeness_lab.theory.laws.d2_ends`),
so that the product's continuous part reaches x ~ e^-5000 and ends there at an edge; a
chain's quadrature stops at 1e-11 b (x = b + y keeps no more of y), and GELU's H_3 has
1.3e-3 of its mass below.
"""

from __future__ import annotations

import math
import warnings
from contextlib import nullcontext

import numpy as np

from freeness_lab.theory.density.panels import gauss_legendre
from freeness_lab.theory.newton import LogZetaSystem, lilypads

__all__ = ["DEEP_ARG", "DEEP_BOUND", "DEEP_IM_FLOOR", "DEEP_MIN_WIDTH", "DEEP_PANEL_TOL",
           "DEEP_ROUNDS", "DEEP_TOL", "DEEP_U_MIN", "DEEP_WIDTH", "DeepComb", "deep_mass",
           "power_law_rest"]

#: arg zeta' of the comb's line (:func:`deep_mass`); its first panel's width in u (doubling
#: while resolved), the narrowest panel, and the lowest u (|omega| of the D^2 factors
#: stays below ~1e60 above it)
DEEP_ARG = 0.5 * math.pi
DEEP_WIDTH = 64.0
DEEP_MIN_WIDTH = 0.25
DEEP_U_MIN = -2.0e4
#: the mass left below where the comb stops, and the accuracy asked of each of its panels
#: (both relative to the continuous mass)
DEEP_TOL = 1e-15
DEEP_PANEL_TOL = 1e-13
#: where the comb cannot go on, the certified bound on the mass below accepted as the rest
#: (relative to the continuous mass; half of it is added, and counted as its error)
DEEP_BOUND = 1e-9
#: rounds of each walk (they are short: from the panel above, 2-10 rounds); a walk that
#: needs more meets a singular point and its panel is halved (30, not 60: GELU orthogonal at
#: depth 10 spent 4 x 60 rounds on doubled panels that failed near the comb's end, 546
#: rounds in all, 378 with 30, the same mass and moments to all digits)
DEEP_ROUNDS = 30
#: the fits answer along the line at DEEP_ARG where |Im G| >= this times max |G| (there the
#: fit's absolute error FIT_TOL max |G| is at most 1e-2 of Im G; :meth:`DeepComb.fits`)
DEEP_IM_FLOOR = 1e-9


def power_law_rest(u: np.ndarray, f: np.ndarray, u_end: float) -> float:
    """int_-inf^u_end f(u) du for f = C e^(delta u) fitted at two points u[0] < u[1]
    (f = x rho(x), u = log x: the mass below x = e^u_end of a density rho ~ x^(delta - 1));
    inf when f does not decay (delta <= 0) or is not positive."""
    if not (np.all(np.isfinite(f)) and f[0] > 0 and f[1] > f[0]):
        return math.inf
    delta = math.log(f[1] / f[0]) / (u[1] - u[0])
    return float(f[0] * math.exp(delta * (u_end - u[0])) / delta)


class DeepComb:
    """The solves and integrals of :func:`deep_mass` for one law."""

    def __init__(self, law):
        self.system = LogZetaSystem(law.system)
        self.rules = getattr(law.system, "rules", None)  # the layers' fits (:meth:`fits`)
        self.t, self.wt = gauss_legendre(law.n_gl)
        self.total = 1.0 - law.atom_mass
        self.axis_arg = math.atan(law.eps_rel)
        self.error = 0.0  # the error estimates of the panels taken
        self.bound = math.inf  # the bound on the mass below the comb's last panel
        self.rest = math.inf  # the power-law remainder below the axis line's last panel
        # the Legendre coefficients of a function from its values at the nodes
        n = law.n_gl
        self.legendre = (np.polynomial.legendre.legvander(self.t, n - 1).T * self.wt
                         * ((2 * np.arange(n) + 1) / 2.0)[:, None])

    def solve(self, ell, start_ell, start_v):
        """(zeta' G_c, unknowns) at ell by straight walks from a solved point, or Nones."""
        res = lilypads(self.system, ell.real, ell.imag, y_start=1.0, log_zeta=True,
                       start=(np.full(ell.shape, start_ell), np.tile(start_v, (len(ell), 1))),
                       max_rounds=DEEP_ROUNDS)
        if not res.converged.all():
            return None, None
        return self.system.cauchy(res.unknowns, ell, drop_zero_atom=True), res.unknowns

    def fits(self, arg: float):
        """Along arg zeta' = DEEP_ARG the layers' fits answer down to DEEP_IM_FLOOR (the
        line's integrand, zeta' G_c on the imaginary axis, has an imaginary part of its own
        size: an inner layer's absolute error of FIT_TOL max |G| is a relative one there;
        the rule's sums, where the default floor refuses the fit -- inner subordination
        points just above the negative real axis, deep SiLU and GELU layers --, cost ten
        times more); elsewhere (the axis line, the legs) the default floor."""
        if self.rules is None or arg != DEEP_ARG:
            return nullcontext()
        return self.rules.floor(DEEP_IM_FLOOR)

    def leg(self, u, lo, hi, start_ell, start_v):
        """int zeta' G_c d ell up the leg at u, arg zeta' from lo to hi, or None."""
        ell = u + 1j * (lo + 0.5 * (hi - lo) * (1.0 + self.t))
        zg, _ = self.solve(ell, start_ell, start_v)
        return None if zg is None else 0.5j * (hi - lo) * (self.wt * zg).sum()

    def line(self, arg, top, ell, v, done):
        """int zeta' G_c du along arg zeta' = arg from u = top down, panel by panel, until
        ``done(u, zg)`` (the nodes from the top down and the panel's lower end) gives the
        mass below, or a panel cannot be resolved. Returns (integral, u reached, its
        solution (ell, v), mass below or None)."""
        integral, width = 0.0, DEEP_WIDTH
        wall = -math.inf  # the highest lower end of a panel whose walks failed
        rejected = False  # the last panel tried was halved: the next is not doubled
        while top > DEEP_U_MIN:
            # no panel reaches past the midpoint to the wall (one that did failed there);
            # next to it, panels are tried as before it (a wall of one long walk, not of
            # the line, is passed by shorter ones)
            if top - wall < 2.0 * DEEP_MIN_WIDTH:
                wall = -math.inf
            lo = max(top - width, DEEP_U_MIN, 0.5 * (top + wall))
            u = np.concatenate([0.5 * (top + lo) - 0.5 * (top - lo) * self.t, [lo]])
            with self.fits(arg):
                zg, sol = self.solve(u + 1j * arg, ell, v)
            if zg is None:
                wall = max(wall, lo)
            error = (math.inf if zg is None
                     else 0.5 * (top - lo) * np.abs(self.legendre[-2:] @ zg[:-1]).sum())
            if error > DEEP_PANEL_TOL * self.total and top - lo > DEEP_MIN_WIDTH:
                width, rejected = 0.5 * (top - lo), True
                continue
            if zg is None:
                break
            # a narrowest panel not resolved (at an edge of the density) counts its error
            self.error += error
            integral += 0.5 * (top - lo) * (self.wt * zg[:-1]).sum()
            ell, v = lo + 1j * arg, sol[-1]
            width, top, rejected = (top - lo) * (1.0 if rejected else 2.0), lo, False
            below = done(u, zg)
            if below is not None:
                return integral, top, (ell, v), below
        return integral, top, (ell, v), None

    def checked(self, mass: float) -> float:
        """``mass``, with a warning when the panels' error estimates exceed 1e-9 of the
        continuous mass."""
        if self.error > 1e-9 * self.total:
            warnings.warn(f"deep mass: panels at an edge of the density leave an error of up "
                          f"to {self.error:.1e}", RuntimeWarning, stacklevel=7)
        return mass

    def certified(self, u, zg):
        """0 once the mass below the line's end is certified below DEEP_TOL (at
        zeta' = i y: mass below y <= 2 Re zeta' G_c, kept as ``bound``), else None."""
        self.bound = 2.0 * zg[-1].real
        return 0.0 if self.bound <= DEEP_TOL * self.total else None

    def power_rest(self, u, zg):
        """The power-law remainder below the axis line's end (kept as ``rest``) once below
        DEEP_TOL, else None."""
        f = -zg[-3:-1][::-1].imag / math.pi  # the two lowest nodes, from the bottom
        self.rest = power_law_rest(u[-3:-1][::-1], f, u[-1])
        return self.rest if self.rest <= DEEP_TOL * self.total else None


def deep_mass(law, u_top: float, zeta0: complex, v0: np.ndarray, rest: float) -> float:
    """Mass of the continuous part of ``law`` in (b, b + e^u_top), b the base point (0 for a
    product, the last shift of a chain); module docstring for where it lies.

    *The comb in log zeta'.* With zeta' = zeta - b = e^ell and G_c the continuous part's
    Cauchy transform, the mass in (b + e^u_b, b + e^u_top) is -(1/pi) Im int G_c dzeta over
    a path above the axis (Cauchy), i.e. -(1/pi) Im of int zeta' G_c d ell along: up from
    ell = u_b to u_b + i a, along Im ell = a to u_top + i a, down to u_top (zeta' G_c = e^r
    has no atom; :class:`~freeness_lab.theory.newton.log_zeta.LogZetaSystem`). First
    a = DEEP_ARG: zeta' on the imaginary axis, away from the density's edges. Each leg is one
    Gauss-Legendre panel in arg zeta'; the line is cut into panels in u from u_top down,
    doubling from DEEP_WIDTH while resolved (the last two Legendre coefficients of the
    integrand at its nodes, times the width, below DEEP_PANEL_TOL of the continuous mass),
    halved down to DEEP_MIN_WIDTH where not resolved or not converged (a narrowest panel that
    converges but is not resolved -- at an edge of the density -- is taken, and its error
    estimate counted: a warning when their sum exceeds 1e-9 of the continuous mass); the
    panel after a halving keeps its width, and no panel reaches past the midpoint between
    its top and the highest lower end of a panel whose walks failed (past a wall where every
    walk fails -- GELU orthogonal at depth 10, just below its edge at x ~ e^-2430 -- the line
    closes in on it by halving the distance, instead of a failed walk of DEEP_ROUNDS rounds
    at every doubling: 9 such walks -> 2, 0.50 -> 0.19 s, the same mass to 2e-16). It
    stops at u_b where
    the mass below is certified: at zeta' = i y, Re zeta' G_c = int y^2 / (y^2 + t^2)
    d mu_c(t) >= mu_c(t <= y) / 2, so the mass below y is at most 2 Re zeta' G_c, and the
    comb stops once that is below DEEP_TOL of the continuous mass (it is left out). Where the
    line cannot go on once the bound is below DEEP_BOUND (a product's factor with the largest
    atom at 0 has its subordination point -> infinity as x -> 0, and past e^700 it overflows:
    GELU at depth 50, below x ~ e^-2500), half the bound is the rest, and the other half its
    error.

    Where the comb does not converge (some chains' walks below 1e-25 b), the line is walked
    along the axis instead, at arg zeta' = atan(eps_rel), from u_top down: the density
    itself, x rho by the same panels in u, until the power-law remainder from its two lowest
    nodes is below DEEP_TOL (the legs are then 1e-10 long and left out). Where that walk
    stops too, or reaches DEEP_U_MIN, the power-law remainder from its last panel (from the
    quadrature's nodes if none) is the rest, with a warning unless it is below DEEP_BOUND of
    the continuous mass.

    Parameters
    ----------
    u_top : float
        log(x - b) at the lowest panel end of the support quadrature at b.
    zeta0, v0 : complex, ndarray
        zeta - b at a solved point near there (the lowest node) and its unknowns.
    rest : float
        The power-law remainder below u_top estimated from the quadrature's nodes (inf
        when rho is not a decaying power there).

    Returns
    -------
    float
    """
    comb = DeepComb(law)
    ell0 = np.log(zeta0)
    top_leg = comb.leg(u_top, 0.0, DEEP_ARG, ell0, v0)
    _, v = comb.solve(np.array([u_top + 1j * DEEP_ARG]), ell0, v0)
    if top_leg is not None and v is not None:
        line, u_b, (ell, v), below = comb.line(DEEP_ARG, u_top, u_top + 1j * DEEP_ARG, v[0],
                                               comb.certified)
        if below is None and comb.bound <= DEEP_BOUND * comb.total:
            # stopped (the subordination points of a factor with the largest atom at 0
            # outgrow e^700) where little is left: half the bound, +- half
            below = 0.5 * comb.bound
            comb.error += below
        bottom_leg = None if below is None else comb.leg(u_b, 0.0, DEEP_ARG, ell, v)
        if bottom_leg is not None:
            return comb.checked(float(-(line + bottom_leg - top_leg).imag / math.pi + below))
    # the comb's line cannot go on: walk along the axis instead
    comb.error, comb.rest = 0.0, rest
    line, u_b, _, below = comb.line(comb.axis_arg, u_top, ell0, v0, comb.power_rest)
    if below is None:
        # stopped: the power-law remainder from its last panel (from above if none), with
        # a warning unless it is below DEEP_BOUND
        if not comb.rest <= DEEP_BOUND * comb.total:
            _uncertain(comb.rest, u_b)
        below = comb.rest if np.isfinite(comb.rest) else 0.0
    return comb.checked(float(-line.imag / math.pi + below))


def _uncertain(rest: float, u: float) -> None:
    """Warn that the comb of :func:`deep_mass` stopped with ``rest`` left uncertified."""
    message = (f"deep mass: the comb below the support quadrature does not reach a point "
               f"with no mass below (stopped at x - b = e^{u:.0f})")
    if np.isfinite(rest):
        warnings.warn(f"{message}: the power-law remainder {rest:.1e} is used",
                      RuntimeWarning, stacklevel=7)
    else:
        warnings.warn(f"{message}, and the density is not a decaying power: the mass below is "
                      f"missing", RuntimeWarning, stacklevel=7)
