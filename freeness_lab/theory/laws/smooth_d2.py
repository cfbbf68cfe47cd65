"""The law of phi'(h)^2, h ~ N(0, q), for a smooth phi: the contour rule of its Cauchy transform.

G(zeta) = E[1 / (zeta - g(h))], g = phi'^2, is integrated along a contour deformed into the
complex h-plane (Cauchy's theorem), so that it is accurate on and near the support, the
real axis included, where -Im G(x) / pi is the density (:class:`SmoothD2Law`). The local rule
at a double zero of g (SiLU, GELU) is :mod:`freeness_lab.theory.laws.zero_rule`; the complex
phi' of each activation is :attr:`freeness_lab.activations.Activation.analytic_dphi`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, special

from freeness_lab.activations import get_activation
from freeness_lab.theory.laws.base import SpectralLaw, empty_atoms
from freeness_lab.theory.laws.d2_ends import RuleEnd, in_tail, rule_ends, turn_to_tail, window
from freeness_lab.theory.laws.zero_rule import ZERO_LOCAL, taylor_coefficients, zero_rule
from freeness_lab.theory.meanfield import D2Law
from freeness_lab.theory.newton.implicit import PsiRule
from freeness_lab.theory.newton.quadrature_rule import QuadratureRule
from freeness_lab.theory.newton.rational_rule import RationalRule

__all__ = ["CAUCHY_POINTS", "CAUCHY_RADIUS", "CONTOUR_GL", "DEFORM_C", "GRADING_FLOOR",
           "RATIONAL_FIT", "ZERO_OF_G", "SmoothD2Law"]

#: deformation h(s) = s - i D(s), D = c g g' / (g'^2 + kappa^2 g^2): the constant c
DEFORM_C = 0.6
#: Gauss-Legendre nodes per panel of the contour rule
CONTOUR_GL = np.polynomial.legendre.leggauss(16)
#: geometric grading toward a stationary point of g stops at this distance (times sqrt(q))
GRADING_FLOOR = 1e-9
#: radius and points of the Cauchy integral giving the Taylor coefficients of phi' at a
#: double zero of g (inside the strip of analyticity of every registered phi': the nearest
#: singularity is tanh's, at i pi / 2)
CAUCHY_RADIUS, CAUCHY_POINTS = 0.25, 32
#: a stationary point of g with g below this fraction of max g is a (double) zero of g
ZERO_OF_G = 1e-20
#: whether the Newton systems sum psi through the rule's certified rational fit (False: the
#: rule itself everywhere -- the reference the fit is tested and benchmarked against)
RATIONAL_FIT = True


class SmoothD2Law(SpectralLaw):
    """The law nu of g(h) = phi'(h)^2, h ~ N(0, q), phi smooth, with an accurate Cauchy
    transform on and near its support.

    nu is the push-forward of N(0, q) by g: its density is the sum over the branches
    h = g^{-1}(t) of p_q(h) / |g'(h)|, with integrable singularities |t - g(h*)|^{-1/2} at
    the stationary values of g. A quadrature with nodes g(h_j), h_j real, is a discrete
    measure, and its G(zeta) is wrong within a node spacing of the support. Here
    G(zeta) = E[1 / (zeta - g(h))] is integrated along a deformed contour in the complex
    h-plane (Cauchy's theorem: g and the Gaussian density are analytic in a strip):

        G(zeta) = int p_q(h(s)) h'(s) / (zeta - g(h(s))) ds,   h(s) = s - i D(s),
        D(s) = c r / (r^2 + kappa^2),   r = sign(g') sqrt((g'/g)^2 + (g''/g')^2),   c = 0.6,

    so that Im g(h(s)) ~= -D g' <= 0 (D has the sign of g'): the contour passes on Plemelj's
    side of every pole for zeta in the closed upper half-plane, and the rule is accurate up
    to and ON the real axis, where -Im G(x) / pi is the density. |r| is the inverse length
    over which g moves by a fraction of its distance to the value it approaches: its zero
    (g'/g: the tanh, erf, sigmoid tails), a stationary value (g''/g' ~ 1/(s - p): D vanishes
    linearly there and the contour turns by atan(c)), or an asymptote (g''/g' ~ -s in the
    SiLU and GELU tails, where g -> 1 and g'/g -> 0; their derivatives there are taken from
    g - 1 = (phi' - 1)(phi' + 1) without cancellation). At a double zero of g (phi' = 0:
    SiLU, GELU) D ~ c (s - h0) / sqrt 5. kappa^2 = the largest |(log g)''| at an extremum
    with g > 0, so |D| <= c / (2 kappa) stays inside the strip of analyticity.
    Composite 16-point Gauss-Legendre in s, panels graded geometrically (ratio 2) toward
    the stationary points of g down to 1e-9 sqrt(q) (at a double zero h0 of g, down to
    1e-3 sqrt(q), within which a local rule in sigma = h - h0 is graded with ratio 2 down to
    1e-40 sqrt(q): :mod:`~freeness_lab.theory.laws.zero_rule`), no wider than
    min(1/4, sqrt(q)/2, 1/(2 |r|), 2 |D|) (the last keeps the pole of a real zeta one
    half-width from the panel), on |h| <= H = min(10 sqrt(q), 2 H_flat), H_flat where g is
    flat to 1e-17 (:func:`~freeness_lab.theory.meanfield.d2_law`). When H = 2 H_flat, D is
    tapered to 0 on H_flat < |s| < H; the Gaussian mass beyond +-H sits at g(+-H) -- except
    on a side where g -> 0 with more than 1e-17 of the mass beyond (deep SiLU and GELU
    layers): there the rule goes on to g = 1e-290 under a smooth window that moves the mass
    at g below ~1e-258 to an atom at 0 (:mod:`~freeness_lab.theory.laws.d2_ends`; the atom
    is a node of the rule at 0). Moments are those of ``d2`` (the atom changes them by less
    than 1e-250).

    Parameters
    ----------
    d2 : D2Law
        The law of D^2 for a smooth activation (no atoms).
    fit_from : SmoothD2Law, optional
        The previous layer's law (same activation, nearby q): its certified fit starts
        this law's (:attr:`psi_rule`; ``RationalRule`` ``start``).

    Attributes
    ----------
    stationary_values, limit_values : ndarray
        Where the density may be singular inside (0, max g]: g at its stationary points
        (inverse square roots) and its positive limits at +-infinity (SiLU, GELU: 1, where
        GELU's density is ~ (t - 1)^(1/q - 1) on the right); values below 1e-12 max g are left
        to the singularity at 0.
    tail_values : ndarray
        g(-H), g(H) when positive: where the Gaussian tails beyond +-H are lumped.
    atoms : ndarray
        The atom at 0 of a windowed side, else none.
    nodes, weights : complex ndarray
        The contour rule: G(zeta) = sum_j weights_j / (zeta - nodes_j), Im zeta >= 0, and
        psi(z) = sum_j weights_j z nodes_j / (1 - z nodes_j), Im z <= 0.
    """

    def __init__(self, d2: D2Law, fit_from: SmoothD2Law | None = None):
        if len(d2.atoms):
            raise ValueError(f"d2: must be the law of phi'(h)^2 for a smooth phi; "
                             f"{d2.activation} has atoms")
        if fit_from is not None and fit_from.d2.activation != d2.activation:
            raise ValueError(f"fit_from: must be a law of {d2.activation}, got {fit_from!r}")
        self.d2 = d2
        self._fit_from = fit_from
        act = get_activation(d2.activation)
        self._dphi = act.analytic_dphi
        self._jet = act.dphi_jet

    @functools.cached_property
    def _rule(self) -> tuple[np.ndarray, np.ndarray]:
        """The contour rule (nodes, weights), built on first use (moments do not need it)."""
        return self._contour_rule()

    @property
    def nodes(self) -> np.ndarray:
        """The contour rule's nodes g(h(s_j)) (complex)."""
        return self._rule[0]

    @property
    def weights(self) -> np.ndarray:
        """The contour rule's weights (complex; they sum to 1)."""
        return self._rule[1]

    @property
    def stationary_values(self) -> np.ndarray:
        """g at its stationary points, above 1e-12 max g (class docstring)."""
        self._rule  # noqa: B018 -- built with the rule
        return self._stationary_values

    @property
    def limit_values(self) -> np.ndarray:
        """The positive limits of g at +-infinity, above 1e-12 max g (class docstring)."""
        self._rule  # noqa: B018 -- built with the rule
        return self._limit_values

    @property
    def tail_values(self) -> np.ndarray:
        """g(-H), g(H) when positive: where the Gaussian tails beyond +-H sit."""
        self._rule  # noqa: B018 -- built with the rule
        return self._tail_values

    def __repr__(self) -> str:
        return f"SmoothD2Law({self.d2.activation}, q={self.d2.q:.6g})"

    def g(self, h: np.ndarray) -> np.ndarray:
        """g(h) = phi'(h)^2 for real or complex h."""
        return self._dphi(h) ** 2

    def _derivatives(self, s: np.ndarray) -> tuple[np.ndarray, ...]:
        """(g, g', g'', g''') at real s from the jet (p, p', p'', p''') of p = phi', g = p^2."""
        p, d1, d2, d3 = self._jet(np.asarray(s, dtype=float))
        return p * p, 2.0 * p * d1, 2.0 * (d1 * d1 + p * d2), 2.0 * (3.0 * d1 * d2 + p * d3)

    def _rate(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The deformation rate r = sign(g') sqrt((g'/g)^2 + (g''/g')^2) and r' at real s
        (|r|: class docstring); r = 0 where g is below 1e-300."""
        g, d1, d2, d3 = self._derivatives(s)
        ok = (g > 1e-300) & (d1 != 0)
        g, d1 = np.where(ok, g, 1.0), np.where(ok, d1, 1.0)
        a, b = d1 / g, d2 / d1
        da, db = d2 / g - a**2, d3 / d1 - b**2
        norm = np.hypot(a, b)
        r = np.where(ok, np.sign(d1) * norm, 0.0)
        dr = np.where(ok, np.sign(d1) * (a * da + b * db) / norm, 0.0)
        return r, dr

    def _stationary_points(self, H: float) -> np.ndarray:
        """Zeros of g' in (-H, H): sign changes on a fine grid, refined by Brent's method,
        and the grid points where g' vanishes exactly (s = 0 for an even phi')."""
        grid = np.linspace(-H, H, 4001)

        def dg(s):
            return self._derivatives(np.atleast_1d(np.asarray(s, dtype=float)))[1]

        live = self.g(grid).real > 1e-280
        vals = np.where(live, dg(grid), 0.0)
        out = list(grid[live & (vals == 0)])
        for i in np.nonzero(vals[:-1] * vals[1:] < 0)[0]:
            out.append(optimize.brentq(lambda s: dg(s)[0], grid[i], grid[i + 1], xtol=1e-15))
        return np.unique(out)

    def _deformation(self, s: np.ndarray, *, taper: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """D(s), D'(s) and r (r: :meth:`_rate`): D = c r / (r^2 + kappa^2) T(s), turned to
        pi / (2 r) beyond H on a windowed side (:func:`~freeness_lab.theory.laws.d2_ends.
        turn_to_tail`). T = 1, except on a side where the rule stops at H = 2 H_flat (g flat
        to 1e-17 beyond H_flat): there T = cos^2(pi/2 (|s| - H_flat) / (H - H_flat)) brings
        the contour back to the real axis at H, where the tail is a real node."""
        r, dr = self._rate(s)
        den = r**2 + self._kappa2
        D, dD = DEFORM_C * r / den, DEFORM_C * dr * (self._kappa2 - r**2) / den**2
        D, dD = turn_to_tail(self._sides, s, r, dr, D, dD)
        if not taper:
            return D, dD, r
        for sign, side in zip((-1.0, 1.0), self._sides, strict=True):
            H, a = side.end, side.taper
            if a is None:
                continue
            side = sign * s > a
            theta = 0.5 * math.pi * np.clip((sign * s - a) / (H - a), 0.0, 1.0)
            slope = np.where(side, 0.5 * math.pi / (H - a) * sign, 0.0)
            D, dD = D * np.cos(theta) ** 2, dD * np.cos(theta) ** 2 - D * np.sin(2 * theta) * slope
        return D, dD, r

    @functools.cached_property
    def _sides(self) -> tuple[RuleEnd, RuleEnd]:
        """Where the rule ends, left and right (:mod:`~freeness_lab.theory.laws.d2_ends`)."""
        return rule_ends(self.d2.activation, self.d2.q)

    @functools.cached_property
    def atoms(self) -> np.ndarray:
        """The atom at 0 of a windowed side (:attr:`_sides`), else none."""
        mass = sum(side.atom for side in self._sides) / self.d2.weights.sum()
        return np.array([[0.0, mass]]) if mass > 0 else empty_atoms()

    def _panels(self, H: float, stationary: np.ndarray) -> np.ndarray:
        """Panel edges on the rule's range (:attr:`_sides`): graded (ratio 2, from H on)
        toward the stationary points, then split until no wider than
        min(1/4, sqrt(q)/2, 1/(2 |r|), 2 |D|) at their midpoints (2 |D| alone beyond the
        turn of a windowed side's tail: :meth:`_deformation`).

        For real zeta = g(s0) the integrand has a pole at distance |D(s0)| from the real
        s-axis; a panel no wider than 2 |D| keeps it one half-width away, where 16-point
        Gauss-Legendre converges like (1 + sqrt 2)^-32 ~ 1e-12 (the bound matters where g
        is nearly linear: r, hence D, is small there).
        """
        sq = math.sqrt(self.d2.q)
        left, right = self._sides
        edges = [-left.end, right.end, *stationary]
        # the taper's second derivative jumps at its start, the tail turn's at both ends
        edges += [e for e in (None if left.taper is None else -left.taper, right.taper)
                  if e is not None]
        edges += [sign * e for sign, side in ((-1.0, left), (1.0, right))
                  if side.tail is not None for e in side.tail]
        for p in stationary:
            # down to the local rule's panel at a double zero of g
            floor = (ZERO_LOCAL if p in self._zeros else GRADING_FLOOR) * sq
            for side in (-1.0, 1.0):
                d = H
                while d > floor:
                    edges.append(p + side * d)
                    d *= 0.5
                if p in self._zeros:
                    edges.append(p + side * ZERO_LOCAL * sq)
        edges = np.unique(np.clip(edges, -left.end, right.end))
        edges = edges[~np.isin(edges, self._zeros)]
        width_max = min(0.25, 0.5 * sq)
        # only the halves of the panels split last are checked again (a panel's limit
        # depends on its midpoint alone)
        lo, hi = edges[:-1], edges[1:]
        kept = [edges]
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            D, _, rate = self._deformation(mid, taper=False)
            limit = np.minimum(width_max, 0.5 / np.maximum(np.abs(rate), 1e-300))
            # beyond the tail turn only the poles' distance bounds the width
            limit = np.where(in_tail(self._sides, mid), np.inf, limit)
            limit = np.minimum(limit, np.where(D != 0, 2.0 * np.abs(D), np.inf))
            # the panels touching a stationary point are graded already (r ~ 1 / |s - p|
            # would split them down to rounding)
            graded = np.isin(lo, stationary) | np.isin(hi, stationary)
            wide = (hi - lo > limit) & ~self._in_local(mid) & ~graded
            if not wide.any():
                break
            kept.append(mid[wide])
            lo, hi, mid = lo[wide], hi[wide], mid[wide]
            lo, hi = np.concatenate([lo, mid]), np.concatenate([mid, hi])
        return np.unique(np.concatenate(kept))

    def _contour_rule(self) -> tuple[np.ndarray, np.ndarray]:
        q = self.d2.q
        # beyond twice the point where g is flat to 1e-17 the mass sits at g(+-H) (< 1e-34
        # for tanh, erf, sigmoid), or in the atom at 0 (_sides): a cheaper rule, and
        # (log g)' there is rounding noise
        left, right = self._sides
        H = min(left.end, right.end)  # a window's side reaches farther
        stationary = self._stationary_points(H)
        ends = self.g(np.concatenate([stationary, [-left.end, right.end]])).real
        # singular values of the density: stationary values and the limits at +-infinity
        # (those below 1e-12 of the top belong to the singularity at 0)
        top = ends.max()
        self._stationary_values = np.unique(ends[:-2][ends[:-2] > 1e-12 * top])
        limits = get_activation(self.d2.activation).dphi(np.array([-1e4, 1e4])) ** 2
        self._limit_values = np.unique(limits[limits > 1e-12 * top])
        self._range = float(ends.min()), float(ends.max())
        # kappa^2 from the extrema of g with g > 0; at a double zero of g (phi' = 0: SiLU,
        # GELU) (log g)'' is infinite and D ~ c (s - h0) / sqrt 5 turns the contour there
        nonzero = self.g(stationary).real > ZERO_OF_G * ends.max()
        extrema, self._zeros = stationary[nonzero], stationary[~nonzero]
        curv = np.abs(self._log_curvature(extrema))
        self._kappa2 = float(np.max(curv[np.isfinite(curv)], initial=1.0))
        edges = self._panels(H, stationary)
        t, wt = CONTOUR_GL
        mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
        keep = ~self._in_local(mid)  # those panels come from the local rules
        mid, half = mid[keep], half[keep]
        s = (mid[:, None] + half[:, None] * t).ravel()
        ws = (half[:, None] * wt).ravel()
        D, dD, _ = self._deformation(s)
        h = s - 1j * D
        w = ws * (1.0 - 1j * dD) * np.exp(-0.5 * h * h / q) / math.sqrt(2 * math.pi * q)
        w = w * window(self._sides, h)
        g = self.g(h)
        for p in self._zeros:
            g_loc, w_loc = self._zero_rule(p)
            g, w = np.concatenate([g, g_loc]), np.concatenate([w, w_loc])
        # the tails not windowed sit at g(+-H): real nodes, i.e. poles of G on the axis,
        # which the support quadrature of a single scaled factor cuts at (tail_values); the
        # atom at 0 is a node too: it adds its mass to 1 + psi, and nothing to psi or to
        # -Im G on the real axis
        tails = self.g(np.array([-left.end, right.end])).real
        mass = np.array([0.0 if side.centre is not None
                         else special.ndtr(-side.end / math.sqrt(q)) for side in (left, right)])
        self._tail_values = np.unique(tails[(tails > 0) & (mass > 0)])
        atom = self.atoms[:, 1] * self.d2.weights.sum()
        nodes = np.concatenate([g, tails.astype(complex), np.zeros(len(atom))])
        weights = np.concatenate([w, mass, atom])
        return nodes, weights / self.d2.weights.sum()

    def _in_local(self, s: np.ndarray) -> np.ndarray:
        """Whether s lies within the local rule of a double zero of g."""
        near = np.abs(s[:, None] - self._zeros) < ZERO_LOCAL * math.sqrt(self.d2.q)
        return near.any(axis=1)

    def _zero_rule(self, h0: float) -> tuple[np.ndarray, np.ndarray]:
        """The local rule around the double zero h0 of g (:func:`~freeness_lab.theory.laws.
        zero_rule.zero_rule`), continued from this rule's deformation at h0 +- sigma_loc."""
        q = self.d2.q
        loc = ZERO_LOCAL * math.sqrt(q)
        b = taylor_coefficients(self._dphi, h0, CAUCHY_RADIUS, CAUCHY_POINTS)
        slope_r = self._deformation(np.array([h0 + loc]))[0][0] / loc
        slope_l = self._deformation(np.array([h0 - loc]))[0][0] / -loc
        return zero_rule(b, h0, q, slope_r, slope_l, CONTOUR_GL)

    def _log_curvature(self, s: np.ndarray) -> np.ndarray:
        """(log g)'' = g''/g - (g'/g)^2 (infinite at zeros of g)."""
        g, d1, d2, _ = self._derivatives(s)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(g > 0, d2 / g - (d1 / g) ** 2, np.inf)

    @property
    def nodes_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The complex contour rule (nodes, weights) (valid for psi(z), Im z <= 0)."""
        return self.nodes, self.weights

    @functools.cached_property
    def psi_rule(self) -> PsiRule:
        """psi for the Newton systems: the contour rule through its certified rational fit
        (:class:`~freeness_lab.theory.newton.rational_rule.RationalRule`; the rule itself
        in discs of relative radius 2e-3 around the singular values -- 0, the stationary
        values and the limits of g, the ends of its range -- and wherever the fit is not
        certified), or the rule alone when ``RATIONAL_FIT`` is False. The atom at 0, if any,
        is left out (:attr:`rule_zero_mass`). With ``fit_from``, its fit starts it."""
        nodes, weights = self.nodes, self.weights
        if len(self.atoms):
            nodes, weights = nodes[:-1], weights[:-1]  # the atom is the last node
        if not RATIONAL_FIT:
            return QuadratureRule(nodes, weights)
        singular = np.concatenate([[0.0], self.stationary_values, self.limit_values,
                                   self.support()])
        previous, self._fit_from = self._fit_from, None  # not kept alive once used
        return RationalRule(nodes, weights, singular, start=getattr(previous, "psi_rule", None))

    @property
    def rule_zero_mass(self) -> float:
        """The atom at 0, left out of ``psi_rule``."""
        return float(self.atoms[0, 1]) if len(self.atoms) else 0.0

    def _moments(self, n: int) -> np.ndarray:
        """mu_1..mu_n from the real quadrature of ``d2``, normalized to mass 1."""
        return self.d2.moments(n) / self.d2.weights.sum()

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        """G(zeta) for zeta in the closed upper half-plane, the real axis included."""
        return (self.weights / (zeta[..., None] - self.nodes)).sum(-1)

    def _continuous_intervals(self) -> np.ndarray:
        self._rule  # noqa: B018 -- the range is found with the rule
        return np.array([self._range])  # g is continuous: its range is one interval

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-Im G(x + i0) / pi, by the contour rule evaluated on the real axis."""
        return -self._cauchy(x.astype(complex)).imag / math.pi, np.ones(x.shape, dtype=bool)

    def support(self) -> tuple[float, float]:
        """(min g, max g) over |h| <= H (at the stationary points of g or at +-H)."""
        self._rule  # noqa: B018 -- the range is found with the rule
        return self._range
