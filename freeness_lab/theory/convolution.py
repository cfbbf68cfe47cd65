"""Free multiplicative convolution and the shift: exact moments, atoms, and solved densities.

Moments (exact, by series; Voiculescu 1987, Pennington-Schoenholz-Ganguli 2018):

    log S_{boxtimes_i mu_i(a_i .)^{k_i}}(m) = sum_i k_i log S_i(a_i m)  (+ explicit terms),

so the product's moments follow from one sum of log-series and one series reversion, for any
number of factors (identical factors are a power; depth 1000 costs the same as depth 10). The
series are normalized (S(0) = 1, the mean kept as a log) so that deep products do not
overflow. The shift X -> c + X acts on moments binomially.

Atoms (Belinschi 2003, "The atoms of the free multiplicative convolution of two probability
distributions"): for laws on [0, inf) and a, b > 0,

    (mu boxtimes nu)({ab}) = max(0, mu({a}) + nu({b}) - 1),
    (mu boxtimes nu)({0})  = max(mu({0}), nu({0})),

and the shift moves atoms: (c + mu)({c + a}) = mu({a}).

Densities come from the Newton "lilypads" solver (:mod:`freeness_lab.theory.newton`):
:class:`SolvedLaw` turns a system into a law object -- density on arbitrary x (solved there,
no interpolation), support found from the law (scan + bisection on where the density vanishes,
window from the moments), a graded Gauss-Legendre quadrature of the density on the support
(for moments and the cdf), cdf and quantiles.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.checks import moment_order
from freeness_lab.theory.errors import TheoryUnavailable
from freeness_lab.theory.log_terms import LogTerms, no_terms
from freeness_lab.theory.laws import MarchenkoPastur, QuadratureLaw, SmoothD2Law, SpectralLaw
from freeness_lab.theory.newton import (
    ChainLayer,
    ChainSystem,
    ImplicitFactor,
    LogZetaSystem,
    NewtonResult,
    ProductSystem,
    lilypads,
)
from freeness_lab.theory.series import (
    moments_to_s,
    rescale_argument,
    reversion,
    s_to_moments,
    series_exp,
    series_log,
    shift_moments,
)

#: masses below this are rounding noise, not atoms
_ATOM_TOL = 1e-14
#: relative Im zeta for locating edges: the Poisson tail of a square-root edge is
#: ~ eps / sqrt(distance), far below the threshold on x rho(x) at this eps
_EPS_EDGE = 1e-15
#: a chained walk (from a neighbour's solution) that needs many rounds gives up early: the
#: point then comes down from the far field
_CHAINED = {"max_rounds": 16, "step_min": 0.03}
#: stall tolerance (log-variables) of the points near an edge (support scan, bisection,
#: quadrature nodes down to 1e-12 of the width from an edge)
_TOL_STALL_EDGE = 1e-3
#: relative distance from an edge below which the support quadrature puts no panel end
_EDGE_GAP = 1e-6
#: adaptive panels in log(x - origin): the budget (relative to the continuous mass) for the
#: sum of their error estimates, the most halvings (_panels makes three log panels of up to
#: ~190 e-folds of x each; 2^-40 of that is 2e-10 e-folds) and the most panels added to a law
#: (erf, Gaussian weights, depth 6: 27)
_LOG_PANEL_TOL = 1e-11
_LOG_SPLIT_MAX = 40
_LOG_PANELS_MAX = 256
#: edge fits (SolvedLaw._edge_fits): the first fit point's distance from a bisected edge,
#: relative to the interval's width
_EDGE_FIT_DISTANCE = 1e-8
#: moments used for the far-field start and the window
_N_SERIES = 24
#: deep blocks below the log panels at 0 (product laws; u = log x, solved in log zeta): the
#: first panel's width in u (doubling), the relative mass left to the power-law tail when
#: they stop, and the lowest u (|omega| of the D^2 factors stays below ~1e60 above it)
_DEEP_WIDTH = 64.0
_DEEP_TOL = 1e-15
_DEEP_U_MIN = -2.0e4
#: Gauss-Legendre nodes and weights on [-1, 1] by order
_GL = functools.cache(np.polynomial.legendre.leggauss)


# --------------------------------------------------------------------------- atoms

def _merge_atoms(locations: list[float], masses: list[float]) -> np.ndarray:
    out: dict[float, float] = {}
    for a, p in zip(locations, masses, strict=True):
        if p > _ATOM_TOL:
            out[a] = out.get(a, 0.0) + p
    return np.array(sorted(out.items()), dtype=float).reshape(-1, 2)


def product_atoms(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Atoms of mu boxtimes nu from the atoms (rows (location, mass)) of mu and nu (Belinschi).

    Examples
    --------
    >>> product_atoms(np.array([[0, .5], [1, .5]]), np.array([[0, .5], [1, .5]]))
    array([[0. , 0.5]])
    """
    first, second = np.reshape(first, (-1, 2)), np.reshape(second, (-1, 2))
    z1 = first[first[:, 0] == 0, 1].sum()
    z2 = second[second[:, 0] == 0, 1].sum()
    locs, masses = [0.0], [max(z1, z2)]
    for a, p in first[first[:, 0] > 0]:
        for b, q in second[second[:, 0] > 0]:
            if p + q > 1:
                locs.append(a * b)
                masses.append(p + q - 1)
    return _merge_atoms(locs, masses)


def power_atoms(atoms: np.ndarray, k: int) -> np.ndarray:
    """Atoms of the k-fold free multiplicative power of a law with these atoms."""
    out = np.array([[1.0, 1.0]])  # delta_1, the unit
    for _ in range(k):
        nxt = product_atoms(out, atoms)
        if nxt.shape == out.shape and np.allclose(nxt, out, rtol=0, atol=1e-15):
            break  # stationary (e.g. only the atom at 0 is left)
        out = nxt
    return out


# --------------------------------------------------------------------------- products

@dataclass(frozen=True)
class Factor:
    """One factor mu_i(a_i .) of a free product, taken to the power k_i (identical factors)."""

    law: SpectralLaw
    power: int = 1
    scale: float = 1.0


class FreeProduct:
    """The free multiplicative convolution boxtimes_i mu_i(a_i .)^{k_i} (+ explicit S-terms).

    Parameters
    ----------
    factors : sequence of Factor
    extra : LogTerms, optional
        Further explicit log S-terms (the dimension changes of rectangular networks).
    """

    def __init__(self, factors: list[Factor], extra: LogTerms | None = None):
        self.factors = list(factors)
        self.extra = extra if extra is not None else no_terms()
        self.degenerate = any(f.law.mean == 0 for f in self.factors)

    def log_s_series(self, n: int) -> np.ndarray:
        """Coefficients of log S(m) up to m^{n-1} (one vectorized reversion for all factors)."""
        n = moment_order(n)
        mom = np.array([f.law.moments(n) for f in self.factors]).reshape(-1, n)
        logs = series_log(moments_to_s(mom))
        scales = np.array([f.scale for f in self.factors], dtype=float)
        powers = np.array([f.power for f in self.factors], dtype=float)
        total = (powers[:, None] * rescale_argument(logs, scales)).sum(0)
        return total + self.extra.rows_series(n) + np.eye(1, n)[0] * self.extra.const

    def normalized_moments(self, n: int) -> tuple[np.ndarray, float]:
        """(moments of X / m_1, log m_1): from the normalized S-series exp(log S - log S(0))
        and one reversion (no overflow for deep, high-gain products)."""
        log_s = self.log_s_series(n)
        return s_to_moments(series_exp(log_s - np.eye(1, n)[0] * log_s[0])), -log_s[0]

    def moments(self, n: int) -> np.ndarray:
        """m_1..m_n (normalized moments rescaled by m_1^k)."""
        n = moment_order(n)
        if self.degenerate:
            return np.zeros(n)
        normalized, log_mean = self.normalized_moments(n)
        return normalized * np.exp(np.arange(1, n + 1) * log_mean)

    def atoms(self) -> np.ndarray:
        """Belinschi's atoms of the product (square case: all argument scales 1)."""
        out = np.array([[1.0, 1.0]])
        for f in self.factors:
            out = product_atoms(out, power_atoms(f.law.atoms, f.power))
        return out

    def system(self, zero_mass: float) -> ProductSystem:
        """The Newton system: explicit factors folded into log-terms, the others implicit.

        ``zero_mass`` is the product's mass at 0 (see :class:`ProductSystem`)."""
        const, rows, implicit = self.extra.const, [self.extra.rows.reshape(-1, 3)], []
        for f in self.factors:
            terms = f.law.log_s_terms
            if terms is not None:
                c, r = terms
                const += f.power * c
                r = np.reshape(r, (-1, 3)).copy()
                r[:, 0] *= f.power
                r[:, 2] *= f.scale
                rows.append(r)
            else:
                nodes, weights = f.law.nodes_weights
                implicit.append(ImplicitFactor(nodes, weights, float(f.power), float(f.scale),
                                               reversion(f.law.moments(8))))
        return ProductSystem(LogTerms(const, np.concatenate(rows)), implicit,
                             self.moments(8), zero_mass)


# --------------------------------------------------------------------------- solved laws

def _panel_var(x: np.ndarray, kind: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Panel variable u of x: x (kind 0), log(x - origin) (1), sqrt(x - origin) (2, a left
    edge at origin), sqrt(origin - x) (3, a right edge)."""
    d = np.where(kind == 3, origin - x, x - origin)
    d = np.where(kind == 0, 1.0, np.maximum(d, 0.0))
    with np.errstate(divide="ignore"):
        return np.where(kind == 0, x, np.where(kind == 1, np.log(d), np.sqrt(d)))


def _panel_x(u: np.ndarray, kind: np.ndarray, origin: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """(x, dx/du): the inverse of :func:`_panel_var`."""
    e = np.exp(np.where(kind == 1, u, 0.0))
    x = np.select([kind == 1, kind == 2, kind == 3], [origin + e, origin + u * u,
                                                      origin - u * u], u)
    dx = np.select([kind == 1, kind == 2, kind == 3], [e, 2 * u, -2 * u], 1.0)
    return x, dx


@dataclass(frozen=True)
class _EdgeFit:
    """rho ~ f(t)^power near an edge, f = polynomial ``coef`` (highest degree first) in
    t / T, t = side (x - at) the distance from the bisected edge ``at`` into the interval;
    ``edge``: the zero of f (the fitted edge), entry (row, column) of the intervals."""

    row: int
    column: int
    edge: float
    at: float
    side: float
    T: float
    power: float
    coef: np.ndarray


def _one_factor_of(kind: type, factors: list[Factor] | tuple[Factor, ...]
                   ) -> tuple[SpectralLaw, float, list[Factor]] | None:
    """(nu, c, others) when ``factors`` hold exactly one factor of type ``kind``, with power 1:
    nu, the product c of the point masses among the rest, and the rest that are not point
    masses; None otherwise."""
    mine = [f for f in factors if isinstance(f.law, kind)]
    if len(mine) != 1 or mine[0].power != 1:
        return None
    rest = [f for f in factors if f is not mine[0]]
    points = [f for f in rest if len(f.law.atoms) == 1 and f.law.atoms[0, 1] == 1]
    scale = math.prod(f.law.atoms[0, 0] ** f.power for f in points)
    return mine[0].law, scale, [f for f in rest if not any(f is g for g in points)]


def _power_law_rest(u: np.ndarray, f: np.ndarray, u_end: float) -> float:
    """int_-inf^u_end f(u) du for f = C e^(delta u) fitted at two points u[0] < u[1]
    (f = x rho(x), u = log x: the mass below x = e^u_end of a density rho ~ x^(delta - 1));
    inf when f does not decay (delta <= 0) or is not positive."""
    if not (np.all(np.isfinite(f)) and f[0] > 0 and f[1] > f[0]):
        return math.inf
    delta = math.log(f[1] / f[0]) / (u[1] - u[0])
    return float(f[0] * math.exp(delta * (u_end - u[0])) / delta)


class SolvedLaw(SpectralLaw):
    """A law whose Cauchy transform comes from a Newton system (lilypads).

    Subclasses set ``atoms`` and implement ``moments(n)`` and ``_build_system()``.

    Attributes
    ----------
    eps_rel : float
        Densities are -Im G(x + i eps_rel |x|) / pi (atoms removed): the Poisson smoothing
        is relative, so the density is resolved on every scale, down to x -> 0.
    n_gl : int
        Gauss-Legendre nodes per panel of the support quadrature.
    """

    eps_rel: float = 1e-10
    n_gl: int = 12

    @functools.cached_property
    def _system(self):
        return self._build_system()

    def _build_system(self):
        raise NotImplementedError

    @functools.cached_property
    def scale(self) -> float:
        """Window scale from the moments: max_k m_k^{1/k}, k <= 24 (a lower bound of the
        right edge that is within a small factor of it)."""
        k = np.arange(1, _N_SERIES + 1)
        if isinstance(self, FreeProductLaw) and not self.product.degenerate:
            m, log_mean = self.product.normalized_moments(_N_SERIES)
            return float(np.exp(log_mean) * np.max(np.abs(m) ** (1.0 / k)))
        return float(np.max(np.abs(self.moments(_N_SERIES)) ** (1.0 / k)))

    # -- solving
    def _y_start(self, x: np.ndarray) -> float:
        """Far-field starting height: well above the support and the points."""
        return 8.0 * self.scale + 2.0 * float(np.max(np.abs(x), initial=0.0))

    def solve(self, x: np.ndarray, eps: np.ndarray | float | None = None, *,
              chain: bool = True, **options) -> NewtonResult:
        """Solve at zeta = x + i eps; eps defaults to eps_rel min(|x|, |x - base atom|).

        With ``chain`` (and eps > 0) the sorted grid is solved coarse-to-fine: every 2^J-th
        point comes down from the far field, then each level starts from its solved left (or
        right) neighbour when that neighbour is within 25% of it. The points whose left
        neighbour is farther (known from the grid alone) come down from the far field together
        with the coarse points, in one walk; those whose chained walk fails come down from the
        far field afterwards.
        """
        x = np.atleast_1d(np.asarray(x, dtype=float)).ravel()
        if eps is None:
            eps = self._default_eps(x)
        eps = np.broadcast_to(np.asarray(eps, dtype=float), x.shape)
        y_start = self._y_start(x)
        P = x.size
        if not chain or P < 64 or np.any(eps == 0):
            return lilypads(self._system, x, eps, y_start=y_start, **options)
        order = np.argsort(x, kind="stable")
        xs, es = x[order], eps[order]
        G = np.full(P, complex(np.nan, np.nan))
        V = np.zeros((P, self._system.size), dtype=complex)
        conv = np.zeros(P, dtype=bool)
        rounds = evals = 0
        stride = 1 << max(0, int(np.log2(P / 32)))
        solved = np.zeros(P, dtype=bool)

        def run(idx, start=None, height=1.0):
            nonlocal rounds, evals
            opts = {**_CHAINED, **options} if start is not None else options
            r = lilypads(self._system, xs[idx], es[idx], y_start=height * y_start,
                         start=start, **opts)
            G[idx], V[idx], conv[idx] = r.cauchy, r.unknowns, r.converged
            solved[idx] = True
            rounds += r.rounds
            evals += r.evaluations

        # the far-field pass takes the coarse points and, at once, every point whose left
        # neighbour at its level is not within 25% (it depends on the grid alone): one walk
        # from the far field instead of one per level
        first = np.zeros(P, dtype=bool)
        first[::stride] = True
        first[-1] = True
        half = stride // 2
        while half:
            idx = np.arange(half, P, 2 * half)
            first[idx[xs[idx] - xs[idx - half] > 0.25 * np.abs(xs[idx])]] = True
            half //= 2
        run(np.nonzero(first)[0])
        while stride > 1:
            half = stride // 2
            idx = np.arange(half, P, stride)
            idx = idx[~solved[idx]]
            left, right = idx - half, np.minimum(idx + half, P - 1)
            nb = np.where(conv[left], left, right)
            # chain only from a neighbour within 25% (relative): a long walk close to the
            # axis could be captured by another root of the equations
            okn = conv[nb] & (np.abs(xs[idx] - xs[nb]) <= 0.25 * np.abs(xs[idx]))
            if okn.any():
                run(idx[okn], (xs[nb[okn]] + 1j * es[nb[okn]], V[nb[okn]]))
            if (~okn).any():
                run(idx[~okn])
            stride = half
        # the rest come down from the far field; a point whose walk fails tries two other
        # starting heights (another path: a walk may pass too close to a branch point --
        # erf's H_3 lost two points 1e-11 and 3e-8 above its base that way)
        retry = np.nonzero(~conv)[0]
        for height in (1.0, 4.0, 0.25):
            if not len(retry):
                break
            run(retry, height=height)
            retry = retry[~conv[retry]]
        out = np.empty(P, dtype=int)
        out[order] = np.arange(P)
        return NewtonResult((xs + 1j * es)[out], G[out], conv[out], rounds, evals, V[out])

    def _default_eps(self, x: np.ndarray) -> np.ndarray:
        """Im zeta of the density at x: relative to the distance from 0 or from the base atom
        (the shift of a chain), where the density may be singular; at distance d from a
        singular point inside the support, an inverse square root there leaks
        ~ eps / d^(3/2) through the Poisson kernel, so eps <= 1e-8 d sqrt(d / scale) keeps
        that below 1e-8."""
        near = np.minimum(np.abs(x), np.abs(x - self._base_atom))
        eps = self.eps_rel * np.maximum(near, 1e-300 * self.scale)
        singular = np.concatenate(self._singular)
        if len(singular):
            gap = np.min(np.abs(x[:, None] - singular), axis=1)
            cap = 1e-8 * gap * np.sqrt(gap / self.scale)
            eps = np.maximum(np.minimum(eps, cap), 1e-300 * self.scale)
        return eps

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        """G(zeta) for zeta in the closed upper half-plane (nan + warning if not converged)."""
        res = self.solve(zeta.real.ravel(), zeta.imag.ravel(), chain=False)
        self._warn(res)
        return res.cauchy.reshape(zeta.shape)

    @staticmethod
    def _warn(res: NewtonResult) -> None:
        bad = int((~res.converged).sum())
        if bad:
            warnings.warn(f"Newton solver did not converge at {bad} of {res.converged.size} "
                          f"points (returned as nan)", RuntimeWarning, stacklevel=3)

    #: location of the atom that the system's main unknown leaves out exactly
    _base_atom: float = 0.0

    def _continuous_density(self, res: NewtonResult) -> np.ndarray:
        G = np.full(res.zeta.shape, complex(np.nan, np.nan))
        ok = res.converged
        G[ok] = self._system.cauchy(res.unknowns[ok], res.zeta[ok], drop_zero_atom=True)
        for a, p in self.atoms:
            if a != self._base_atom:
                G = G - p / (res.zeta - a)
        return -G.imag / math.pi

    def _leak(self, res: NewtonResult) -> np.ndarray:
        """eps |G_c'(zeta)| / pi: the Poisson leak of the continuous part at zeta = x + i eps,
        i.e. the density seen at a point x outside the support (G_c real analytic there)."""
        out = np.full(res.zeta.shape, np.inf)
        ok = res.converged
        z = res.zeta[ok]
        dG = self._system.cauchy_slope(res.unknowns[ok], z, drop_zero_atom=True)
        for a, p in self.atoms:
            if a != self._base_atom:
                dG = dG + p / (z - a) ** 2
        out[ok] = z.imag * np.abs(dG) / math.pi
        return out

    def _continuous_intervals(self) -> np.ndarray:
        return self._intervals

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Density of the continuous part at x inside the support (solved at each x, atoms
        removed; nan and a RuntimeWarning where the solver did not converge).

        Im zeta is :meth:`_default_eps`, and at most 1e-3 of the distance d to the nearest
        edge, atom or singular point (as at the nodes of the support quadrature): the
        Poisson kernel smooths an inverse square-root edge, -Im (d + i eps)^(-1/2) / pi
        = d^(-1/2) (1 - 3/8 (eps / d)^2 + ...) / pi, so the value there is the boundary
        value to (3/8) 1e-6. The solution is as ill-conditioned as d is small (Newton steps
        stall at ~1e-16 / d, relative): those points get the stall tolerance of the edge
        points of the support search and quadrature. Closer to a fitted edge than the solver
        reaches (:attr:`_edge_fits`; ~3e-13 relative at the inverse square-root edge of
        Bernoulli(1/2) boxtimes Bernoulli(1/2)) the value is the edge's fitted profile (+inf
        at an inverse square-root edge itself).
        """
        if not x.size:
            return np.zeros(0), np.ones(0, dtype=bool)
        eps = self._default_eps(x)
        edges = np.concatenate([self._intervals.ravel(), self._cuts])
        near = np.zeros(x.shape, dtype=bool)
        if len(edges):
            d_edge = np.min(np.abs(x[:, None] - edges), axis=1)
            near = 1e-3 * d_edge < eps
            eps = np.where(near, np.maximum(1e-3 * d_edge, 1e-300 * self.scale), eps)
        rho = np.full(x.shape, np.nan)
        conv = np.zeros(x.shape, dtype=bool)
        for group, options in ((~near, {}), (near, {"tol_stall": _TOL_STALL_EDGE})):
            if group.any():
                res = self.solve(x[group], eps[group], **options)
                rho[group], conv[group] = self._continuous_density(res), res.converged
        for fit in self._edge_fits:
            # closer to an edge than the solver reaches (rounding in its equations moves the
            # solution by ~5e-15 / d at relative distance d): the edge's fitted profile
            t = fit.side * (x - fit.at)
            zone = ~conv & (fit.side * (x - fit.edge) >= 0) & (t < fit.T)
            f = np.polynomial.polynomial.polyval(t[zone] / fit.T, fit.coef[::-1])
            rho[zone] = np.where(f > 0, np.abs(f) ** fit.power, np.inf if fit.power < 0 else 0)
            conv[zone] = True
        self._warn(NewtonResult(x, rho, conv, 0, 0, np.empty((x.size, 0))))
        return rho, conv

    # -- support and quadrature
    @functools.cached_property
    def _intervals(self) -> np.ndarray:
        """Intervals of the continuous part: :attr:`_bisected_intervals` with the edges that
        have a square-root or inverse square-root profile moved to the zero of their fit
        (:attr:`_edge_fits`)."""
        iv = self._bisected_intervals.copy()
        for fit in self._edge_fits:
            iv[fit.row, fit.column] = fit.edge
        return iv

    @functools.cached_property
    def _edge_fits(self) -> list[_EdgeFit]:
        """The density at the ends of the intervals, fitted where it is (x - e)^(+-1/2) times
        an analytic function (every edge of a free convolution of these laws we know of).

        Then f = rho^2 (square root) or rho^-2 (inverse square root) is analytic with a simple
        zero at the edge e. Near e the Newton system is ill-conditioned: its equations are
        sums of logarithms of size ~ |log d| that cancel to O(d) at relative distance d from
        the edge (Bernoulli(1/2) boxtimes Bernoulli(1/2) at x = 1: log(w + 1/2) + log(w - 1/2)
        - 2 log w + log zeta, w ~ d^(-1/2)), so rounding of ~5e-15 moves the solution by
        5e-15 / d (the real parts of such sums are now formed without the cancellation,
        :class:`~freeness_lab.theory.newton._Terms`, but a chain's other equations keep
        some): the bisection, which takes a point the solver does not reach for outside,
        stopped 1e-12 short of that edge. The fit uses the density at distances T, 2T, 4T
        inside the bisected edge (T = _EDGE_FIT_DISTANCE times the interval's width, at
        least 1e-10 |e|), solved nearly on the axis: the profile is accepted when both
        log-log slopes are within 0.01 of +-1/2 (the analytic factor and the edge's offset
        change them by ~T / width and ~1e-12 / T), and the quadratic through (t_k, f_k)
        gives the edge as its zero nearest t = 0, accepted within T / 10. Its error: the
        Lagrange weights at 0 of the nodes 1, 2, 4 sum to 5 in absolute value, so data
        accurate to eta move it by ~10 eta T (eta ~ 1e-11 at T = 1e-6 width), and the cubic
        term c_3 t^3 of f by 8 (c_3 / c_1) T^3, c_3 / c_1 ~ the inverse square of the
        distance to the nearest other singular point (1e-13 at T = 1e-6 width for the top
        edge of Bernoulli(0.3) boxtimes Bernoulli(0.6), 0.011 from the pole of its density
        at 1; 4e-16 at T = 1e-8 width). Measured at T = 1e-8 width: the inverse square-root
        edge of Bernoulli(1/2) boxtimes Bernoulli(1/2) to 2e-16 (bisection: 8e-14 short),
        the square-root edges of Bernoulli(0.3) boxtimes Bernoulli(0.6) to 4e-16 (bisection:
        1e-15), the arcsine edges of ReLU's H_3 with orthogonal weights to ~1e-14 relative
        (bisection: 2e-12).
        """
        fits = []
        base = self._base_atom
        for row, (a, b) in enumerate(self._bisected_intervals):
            for column, (edge, side) in enumerate(((a, 1.0), (b, -1.0))):
                if side > 0 and a == base:
                    continue  # the base point: log panels, a power law
                T = max(_EDGE_FIT_DISTANCE * (b - a), 1e-10 * abs(edge))
                if 4 * T > 0.25 * (b - a):
                    continue
                t = T * np.array([1.0, 2.0, 4.0])
                x = edge + side * t
                # Im zeta = 1e-12 t: at a square-root edge the analytic part of G leaks
                # ~ eps / sqrt(t) (relative) through the Poisson kernel, which would move the
                # zero of the fit by ~10 (eps / t) sqrt(t) T
                res = self.solve(x, 1e-12 * t, tol_stall=_TOL_STALL_EDGE, chain=False)
                rho = self._continuous_density(res)
                if not (res.converged.all() and np.all(rho > 0)):
                    continue
                slopes = np.diff(np.log(rho)) / math.log(2.0)
                for power in (0.5, -0.5):
                    if np.all(np.abs(slopes - power) < 0.01):
                        break
                else:
                    continue
                coef = np.polyfit(t / T, rho ** (1.0 / power), 2)
                roots = np.roots(coef)
                roots = roots[np.isreal(roots)].real
                if not len(roots) or np.min(np.abs(roots)) > 0.1:
                    continue
                tau = float(roots[np.argmin(np.abs(roots))])
                fits.append(_EdgeFit(row, column, edge + side * tau * T, edge, side, T, power,
                                     coef))
        return fits

    @functools.cached_property
    def _bisected_intervals(self) -> np.ndarray:
        """Intervals of the continuous part: scan, then bisection of every edge.

        Everything runs in y = x - base (base = 0, or the last shift of a chain: the support
        lies in [base, inf) and the density may be singular at base): a scan of y geometric
        from 1e-30 of the window and linear, Im zeta = _EPS_EDGE y, a point is inside when
        y rho > 1e-9 (1 - atom mass), and every edge is bisected in log y."""
        if self.atom_mass > 1.0 - 1e-12:
            return np.empty((0, 2))  # purely atomic
        base = self._base_atom
        tau = 1e-9 * (1.0 - self.atom_mass)
        m = self.moments(2)
        sd = math.sqrt(max(m[1] - m[0] ** 2, 0.0))
        y_hi = 4.0 * self.scale
        # below 1e-12 of a nonzero base, x = base + y keeps less than 4 digits of y
        y_min = max(1e-30 * y_hi, 1e-12 * abs(base))

        def inside(y, res):
            # above the threshold, and well above the Poisson leak of a nearby edge (an
            # inverse square-root edge leaks ~ eps / distance^(3/2) outside the support)
            rho = self._continuous_density(res)
            return res.converged & (y * rho > tau) & (rho > 8.0 * self._leak(res))

        for _ in range(12):
            grid = np.unique(np.concatenate([
                np.geomspace(y_min, y_hi, 240), np.linspace(0, y_hi, 401)[1:],
                np.clip(np.linspace(m[0] - base - 12 * sd, m[0] - base + 12 * sd, 201),
                        0, y_hi)]))
            grid = grid[grid > 0]
            res = self.solve(base + grid, _EPS_EDGE * grid, tol_stall=_TOL_STALL_EDGE)
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
            zm = base + mid + 1j * _EPS_EDGE * mid
            r = lilypads(self._system, np.tile(base + mid, 2), _EPS_EDGE * np.tile(mid, 2),
                         y_start=self._y_start(base + mid),
                         start=(base + ends + 1j * _EPS_EDGE * ends,
                                np.concatenate([v_lo, v_hi])),
                         **_CHAINED)
            use_hi = r.converged[E:] & ~r.converged[:E]
            conv = r.converged[:E] | r.converged[E:]
            v_mid = np.where(use_hi[:, None], r.unknowns[E:], r.unknowns[:E])
            if not conv.all():
                bad = ~conv
                rv = self.solve(base + mid[bad], _EPS_EDGE * mid[bad], chain=False,
                                tol_stall=_TOL_STALL_EDGE)
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

    @functools.cached_property
    def _cuts(self) -> np.ndarray:
        """Points inside the support where the density may be singular: the atoms and
        :meth:`_singular_points` (the support quadrature splits its panels there)."""
        return np.concatenate([self.atoms[:, 0], *self._singular])

    @functools.cached_property
    def _singular(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_singular_points`, computed once."""
        return self._singular_points()

    def _singular_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Singular points of the density other than atoms and edges: (square-root points,
        power points), the latter with rho ~ (x - c)^(delta - 1) on their right (the support
        quadrature puts log panels there, like at the base point). None by default."""
        return np.empty(0), np.empty(0)

    def intervals(self) -> np.ndarray:
        """Rows (a, b): the intervals carrying the continuous part of the law."""
        return self._intervals.copy()

    def support(self) -> tuple[float, float]:
        """(lo, hi): the smallest and largest point of the support (atoms included)."""
        pts = np.concatenate([self._intervals.ravel(), self.atoms[:, 0]])
        return float(pts.min()), float(pts.max())

    def _panels(self, levels: int = 18, zero_levels: int = 60) -> np.ndarray:
        """Panels (lo, hi, kind, origin): each interval, split at the atoms inside it, graded
        geometrically (ratio 1/4) toward both ends, where the density has algebraic
        singularities (kind 0: Gauss-Legendre in x). An interval starting at the base atom
        (0, or the last shift of a chain) is graded down to 4^-zero_levels of its width, then
        covered by three panels in log(x - origin) (kind 1) down to 1e-280 of its width (1e-11
        of the origin when it is not 0: x = origin + y keeps 5 digits of y there), where
        (x - origin) rho(x) is a smooth, slowly varying power (deep networks put a sizeable
        mass there). The other ends are graded down to _EDGE_GAP (relative), and the panels
        touching them are Gauss-Legendre in u = sqrt(|x - edge|) (kinds 2 and 3), where an
        edge singularity (x - edge)^(+-1/2) is a polynomial."""
        out = []
        base = self._base_atom
        power = set(self._singular[1])
        for a, b in self._intervals:
            # no cut within _EDGE_GAP (relative) of an end or of another cut
            inner = [c for c in np.unique(self._cuts)
                     if a + _EDGE_GAP * abs(a) < c < b - _EDGE_GAP * abs(b)]
            cuts = [a]
            for c in inner:
                if c - cuts[-1] > _EDGE_GAP * abs(c):
                    cuts.append(c)
            cuts.append(b)
            for c, d in zip(cuts[:-1], cuts[1:], strict=True):
                w = d - c
                singular = c == base or c in power
                lv = zero_levels if singular else levels
                left = c + w * 0.125 * 0.25 ** np.arange(lv, -1, -1)
                right = d - w * 0.125 * 0.25 ** np.arange(levels + 1)
                mid = np.linspace(c + 0.125 * w, d - 0.125 * w, 7)
                pts = np.unique(np.concatenate([left, mid, right, [d]]))
                # x - c is resolved down to 1e-280 w at c = 0, to ~1e-16 |c| elsewhere
                floor = max(1e-280 * w, 1e-300) if c == 0 else 1e-11 * abs(c)
                # no panel end closer than _EDGE_GAP (relative) to an edge that is not the base
                # point: near an inverse square-root edge the solution is ill-conditioned (Newton
                # steps stall at ~1e-16 / distance), and the sqrt-variable end panels need none
                pts = pts[(pts - c > (10 * floor if singular else _EDGE_GAP * abs(c)))
                          & (d - pts >= _EDGE_GAP * abs(d)) | (pts == d)]
                # the last panel, and the first one when c is not the base point, in
                # u = sqrt(|x - edge|) (kinds 3 and 2): an algebraic edge singularity
                # (x - edge)^(+-1/2) becomes a polynomial in u
                if singular:
                    if len(pts) and pts[0] - c > 10 * floor:
                        logs = c + np.geomspace(floor, pts[0] - c, 4)
                        out += [(lo, hi, 1, c) for lo, hi in zip(logs[:-1], logs[1:],
                                                                 strict=True)]
                    else:
                        pts = np.concatenate([[c], pts])
                else:
                    out.append((c, pts[0], 2, c))
                if len(pts) > 1:
                    out += [(lo, hi, 0, c) for lo, hi in zip(pts[:-2], pts[1:-1], strict=True)]
                    out.append((pts[-2], d, 3, d))
        return np.array(out, dtype=float).reshape(-1, 4)

    def _panel_rule(self, panels: np.ndarray, hi: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Legendre nodes and weights (rows: panels) for int_lo^hi f(x) dx in the panel
        variable u (:func:`_panel_var`); ``hi`` overrides the panels' upper ends."""
        t, wt = _GL(self.n_gl)
        lo, kind, origin = panels[:, 0], panels[:, 2], panels[:, 3]
        hi = panels[:, 1] if hi is None else hi
        a = _panel_var(lo, kind, origin)[:, None]
        b = _panel_var(hi, kind, origin)[:, None]
        h = 0.5 * (b - a)
        x, dx = _panel_x(a + h + h * t, kind[:, None], origin[:, None])
        return x, h * wt * dx

    @functools.cached_property
    def _quadrature(self):
        panels = self._panels()
        if not len(panels):
            empty = np.empty(0)
            return empty, empty, empty, np.empty((0, 4)), empty
        x, w = self._panel_rule(panels)
        res = self._node_solve(x.ravel())
        rho, zeta, unknowns = self._continuous_density(res), res.zeta, res.unknowns
        panels, x, w, rho, zeta, unknowns = self._refine_log_panels(panels, x, w, rho, zeta,
                                                                    unknowns)
        # mass below the lowest panel of each log block (base point, power points): with
        # y = x - origin, y rho ~ C y^delta, so the rest is y0 rho(y0) / delta
        tail = np.zeros(len(panels))
        log = panels[:, 2] == 1
        first = np.nonzero(log & ~np.concatenate([[False], log[:-1]]))[0]
        r = rho.reshape(len(panels), -1)
        for i in first:
            rest, bottom = math.inf, math.inf
            if np.all(np.isfinite(r[i, :2])):
                y = x[i, :2] - panels[i, 3]
                bottom = y[0] * r[i, 0]
                rest = _power_law_rest(np.log(y), y * r[i, :2], math.log(panels[i, 0]
                                                                           - panels[i, 3]))
            # x rho still sizeable at the lowest node of a product law's block at 0, and not
            # a power law with a negligible rest: integrate below it in log zeta
            deep = not (rest <= _DEEP_TOL * (1.0 - self.atom_mass)
                        or bottom <= _DEEP_TOL * (1.0 - self.atom_mass))
            if deep and panels[i, 3] == self._base_atom:
                j, base = i * self.n_gl, self._base_atom
                rest = self._deep_mass(math.log(panels[i, 0] - base), zeta[j] - base,
                                       unknowns[j], rest)
            tail[i] = rest if np.isfinite(rest) else 0.0
        return x.ravel(), w.ravel(), rho, panels, tail

    def _node_solve(self, x: np.ndarray) -> NewtonResult:
        """The solution at quadrature nodes x.

        Poisson smoothing at most 1e-3 of the distance to the nearest edge: an inverse
        square-root edge (free projections) keeps its mass. The solution there is as
        ill-conditioned as the distance is small (the Newton steps stall at ~1e-16 / distance
        in the log-variables, relative), hence the looser stall tolerance.
        """
        edges = np.concatenate([self._intervals.ravel(), self._cuts])
        d_edge = np.min(np.abs(x[:, None] - edges), axis=1)
        near = np.minimum(np.abs(x), np.abs(x - self._base_atom))
        eps = np.minimum(self.eps_rel * near, 1e-3 * d_edge)
        res = self.solve(x, np.maximum(eps, 1e-300 * self.scale), tol_stall=_TOL_STALL_EDGE)
        self._warn(res)
        return res

    def _refine_log_panels(self, panels: np.ndarray, x: np.ndarray, w: np.ndarray,
                           rho: np.ndarray, zeta: np.ndarray, unknowns: np.ndarray
                           ) -> tuple[np.ndarray, ...]:
        """Split the panels in u = log(x - origin) (kind 1) until their integrals converge.

        A log panel may span hundreds of e-folds of x with a sizeable mass (erf, Gaussian
        weights, depth 6: 10 % of the mass below 1e-30, and one 12-point panel across 186
        e-folds was 1.7e-5 off). Each one's rule Q is compared with the sum Q_2 of the rules
        of its two halves (split at the midpoint in u); where |Q - Q_2| exceeds its share of
        the budget _LOG_PANEL_TOL (1 - atom mass) -- in proportion to its length in u, so
        that the accepted panels' estimates add up to at most the budget -- and the accuracy
        eta |Q_2| of the integrand's values, both halves are tested in turn; otherwise the
        halves are kept (Q_2, the better of the two). eta = 1e-12 (the Newton solution's
        relative accuracy) + 2^-52 |origin| / (lo - origin): the nodes are doubles
        x = origin + y, whose y keeps only 16 - log10(|origin| / y) digits (5 at the floor
        1e-11 |origin| of a chain's log block). A panel whose nodes did not converge (nan,
        already warned about) is not split further, and no more than _LOG_PANELS_MAX panels
        are added in all (then a warning).

        Parameters
        ----------
        panels : ndarray (P, 4)
            (lo, hi, kind, origin), sorted.
        x, w : ndarray (P, n_gl)
            Nodes and weights (:meth:`_panel_rule`).
        rho : ndarray (P n_gl,)
            The density at the nodes.
        zeta, unknowns : ndarray (P n_gl,), (P n_gl, size)
            The points solved at and their solutions (the deep-mass walk starts there).

        Returns
        -------
        panels, x, w, rho, zeta, unknowns
            As given, with the log panels refined (still sorted).
        """
        n = self.n_gl
        log = panels[:, 2] == 1
        if not log.any():
            return panels, x, w, rho, zeta, unknowns
        P = len(panels)
        rows = list(panels)
        blocks = [[x[i], w[i], rho[i * n:(i + 1) * n], zeta[i * n:(i + 1) * n],
                   unknowns[i * n:(i + 1) * n]] for i in range(P)]
        u_len = np.abs(np.diff(_panel_var(panels[:, :2], panels[:, 2:3], panels[:, 3:4]),
                               axis=1))[:, 0]
        budget = _LOG_PANEL_TOL * (1.0 - self.atom_mass) / u_len[log].sum()
        todo = list(log)
        added = 0
        for _ in range(_LOG_SPLIT_MAX):
            idx = [i for i, t in enumerate(todo) if t]
            if not idx or added + len(idx) > _LOG_PANELS_MAX:
                break
            added += len(idx)
            halves = []
            for i in idx:
                lo, hi, kind, origin = rows[i]
                mid = origin + math.exp(0.5 * (math.log(lo - origin) + math.log(hi - origin)))
                halves += [(lo, mid, kind, origin), (mid, hi, kind, origin)]
            halves = np.array(halves, dtype=float)
            xh, wh = self._panel_rule(halves)
            parents = [blocks[i] for i in idx for _ in (0, 1)]
            rh, zh, vh = self._log_panel_nodes(halves, xh, parents)
            new_rows, new_blocks, new_todo = [], [], []
            k = 0
            for row, block, t in zip(rows, blocks, todo, strict=True):
                if not t:
                    new_rows.append(row)
                    new_blocks.append(block)
                    new_todo.append(False)
                    continue
                parent = float(block[1] @ block[2])
                pair = (2 * k, 2 * k + 1)
                child = float(sum(wh[j] @ rh[j] for j in pair))
                length = abs(_panel_var(row[1], 1, row[3]) - _panel_var(row[0], 1, row[3]))
                eta = 1e-12 + 2.0**-52 * abs(row[3]) / (row[0] - row[3])
                tol = max(budget * length, eta * abs(child))
                split = bool(np.isfinite(child) and abs(parent - child) > tol)
                for j in pair:
                    new_rows.append(halves[j])
                    new_blocks.append([xh[j], wh[j], rh[j], zh[j], vh[j]])
                    new_todo.append(split)
                k += 1
            rows, blocks, todo = new_rows, new_blocks, new_todo
        if any(todo):
            warnings.warn(f"support quadrature: {sum(todo)} panels in log x did not converge "
                          f"({added} added, at most {_LOG_PANELS_MAX}; {_LOG_SPLIT_MAX} "
                          f"halvings)", RuntimeWarning, stacklevel=4)
        return (np.array(rows, dtype=float), np.array([b[0] for b in blocks]),
                np.array([b[1] for b in blocks]), np.concatenate([b[2] for b in blocks]),
                np.concatenate([b[3] for b in blocks]), np.concatenate([b[4] for b in blocks]))

    def _log_panel_nodes(self, halves: np.ndarray, x: np.ndarray, parents: list
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The density, points and solutions at the nodes x (rows: panels ``halves``) of the
        halves of log panels, ``parents`` holding the parent panel's block (x, w, rho, zeta,
        unknowns) for each.

        Log panels at 0 (origin 0, a product law's base) are solved in ell = log zeta
        (:class:`~freeness_lab.theory.newton.LogZetaSystem`, as :meth:`_deep_mass` does):
        each node walks straight in ell from the parent's node nearest to it in log x --
        from the far field, a walk down to x ~ 1e-200 costs tens of rounds, and refining
        three log panels of erf's J J^T at depth 10 (orthogonal) doubled the cost of the
        whole quadrature that way. zeta' = y (1 + i eps_rel) there, as at the other nodes
        near 0. Other nodes (and those whose walk fails) are solved as the quadrature's.
        """
        n, P = self.n_gl, len(halves)
        size = parents[0][4].shape[1]
        rho, zeta = np.full((P, n), np.nan), np.full((P, n), np.nan + 0j)
        v = np.zeros((P, n, size), dtype=complex)
        done = np.zeros((P, n), dtype=bool)
        at_zero = (halves[:, 3] == 0) & (self._base_atom == 0)
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
            system = LogZetaSystem(self._system)
            phi = math.atan(self.eps_rel)
            res = lilypads(system, u.ravel(), np.full(u.size, phi), y_start=1.0,
                           log_zeta=True, start=(ell0, v0))
            zg = system.cauchy(res.unknowns, res.zeta, drop_zero_atom=True)
            f = -(zg / (1 + 1j * self.eps_rel)).imag / math.pi  # y rho
            ok = res.converged & np.all(np.isfinite(v0), axis=1)
            rr = rho[rows].ravel()
            rr[ok] = f[ok] / x[rows].ravel()[ok]
            rho[rows] = rr.reshape(-1, n)
            zeta[rows] = np.exp(res.zeta).reshape(-1, n)
            v[rows] = res.unknowns.reshape(-1, n, size)
            done[rows] = ok.reshape(-1, n)
        if not done.all():
            res = self._node_solve(x[~done])
            rho[~done] = self._continuous_density(res)
            zeta[~done], v[~done] = res.zeta, res.unknowns
        return rho, zeta, v

    def _deep_mass(self, u_top: float, zeta0: complex, v0: np.ndarray, rest: float
                   ) -> float:
        """Mass of the continuous part in (b, b + e^u_top), b the base point (0 for a product,
        the last shift of a chain).

        Deep products put a sizeable mass far below the smallest double: every factor whose
        density is singular at 0 (Marchenko-Pastur, the D^2 law of a phi' with a zero)
        flattens rho ~ x^(delta - 1) (delta ~ 1 / the number of such factors), and the
        power law sets in only far below 1e-300 (SiLU, orthogonal weights, depth 50: mass
        0.45 below it); a chain's quadrature stops at 1e-11 b (x = b + y keeps no more of
        y), and GELU's H_3 has 1.3e-3 of its mass below. With y = x - b = e^u,
        int rho dx = int y rho du, and y rho = -Im zeta' G / pi at zeta' = y (1 + i eps_rel):
        a function of log zeta' alone, solved by
        :class:`~freeness_lab.theory.newton.LogZetaSystem` (no zeta is formed). Panels of
        Gauss-Legendre in u go down from u_top with doubling widths, each chained from the
        lowest point of the one above (a walk straight in log zeta), until the power-law
        remainder x rho / delta (delta from the two lowest nodes) is below _DEEP_TOL, or u
        reaches _DEEP_U_MIN, where that remainder is added. Where a panel does not converge
        (a single factor: its omega = 1 / zeta overflows below e^-700; some chains right
        below 1e-11 b), the power-law remainder estimated from above is used, as it is
        everywhere else (a warning when there is none: rho not a decaying power).

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
        system = LogZetaSystem(self._system)
        t, wt = _GL(self.n_gl)
        phi = math.atan(self.eps_rel)
        ell0, mass, width, top = np.log(zeta0), 0.0, _DEEP_WIDTH, u_top
        total = 1.0 - self.atom_mass
        while rest > _DEEP_TOL * total and top > _DEEP_U_MIN:
            lo = max(top - width, _DEEP_U_MIN)
            u = 0.5 * (top + lo) - 0.5 * (top - lo) * t  # from the top down
            ell = u + 1j * phi
            res = lilypads(system, u, np.full(u.shape, phi), y_start=1.0, log_zeta=True,
                           start=(np.full(u.shape, ell0), np.tile(v0, (len(u), 1))))
            if not res.converged.all():
                break
            zg = system.cauchy(res.unknowns, ell, drop_zero_atom=True)
            f = -(zg / (1 + 1j * self.eps_rel)).imag / math.pi
            mass += float(0.5 * (top - lo) * (wt * f).sum())
            rest = _power_law_rest(u[-2:][::-1], f[-2:][::-1], lo)
            ell0, v0, top, width = ell[-1], res.unknowns[-1], lo, 2.0 * width
        if not np.isfinite(rest):
            warnings.warn(f"deep mass: the density is not a decaying power at "
                          f"x - b = e^{top:.0f}, where the solver stops: the mass below is "
                          f"missing", RuntimeWarning, stacklevel=4)
            return mass
        return mass + rest

    def quadrature(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(nodes, weights, density): int f(x) rho(x) dx ~= sum_i w_i f(x_i) rho_i.

        Composite Gauss-Legendre on panels graded toward the edges and atoms of the support
        (in log x near 0); the grid is chosen from the law (its support), not a fixed window.
        """
        nodes, weights, rho, _, _ = self._quadrature
        return nodes.copy(), weights.copy(), rho.copy()

    def continuous_mass(self) -> float:
        """int rho(x) dx by the support quadrature plus the power-law tails below the log
        panels (at 0: below 1e-280 of the interval) (should be 1 - atom_mass)."""
        _, w, rho, _, tail = self._quadrature
        return float((w * rho).sum() + tail.sum())

    def density_moments(self, n: int, shift: float = 0.0) -> np.ndarray:
        """m_1..m_n recovered from the density (quadrature and log-block tails) plus the
        atoms: a check of the solver against the exact series moments; with ``shift`` c, those
        of c + X (every point moved by c, no binomial expansion)."""
        x, w, rho, panels, tail = self._quadrature
        k = np.arange(1, moment_order(n) + 1)
        cont = (np.power.outer(x + shift, k) * (w * rho)[:, None]).sum(0)
        cont = cont + (np.power.outer(panels[:, 3] + shift, k) * tail[:, None]).sum(0)
        if len(self.atoms):
            cont = cont + (np.power.outer(self.atoms[:, 0] + shift, k)
                           * self.atoms[:, 1:]).sum(0)
        return cont

    @functools.cached_property
    def _panel_antiderivatives(self) -> np.ndarray:
        """Legendre coefficients (columns: panels) of t -> int_{-1}^t of the panel integrand,
        from its values at the Gauss-Legendre nodes (discrete Legendre transform, exact for
        polynomials of degree < n_gl; the cdf is then as accurate as the quadrature)."""
        x, w, rho, panels, _ = self._quadrature
        n = self.n_gl
        t, wt = _GL(n)
        f = (w * rho).reshape(len(panels), n) / wt  # integrand values in the panel variable
        V = np.polynomial.legendre.legvander(t, n - 1)
        coef = (V.T * wt) @ f.T * ((2 * np.arange(n) + 1) / 2)[:, None]
        return np.polynomial.legendre.legint(coef, lbnd=-1, axis=0)

    @functools.cached_property
    def _panel_turning_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(t, F): per panel (rows), the real zeros t in (-1, 1) of its Legendre interpolant
        and the antiderivative F there (padded with +inf, -inf).

        Where a panel's integrand varies by many decades (the lowest log panel of a deep
        product: x rho from 1e-28 to 1e-22 over 90 e-folds, a mass far below the refinement
        tolerance) its interpolant dips below 0 between the nodes, and the antiderivative
        decreases there by ~1e-22: the cdf uses its running maximum over the panel (the
        largest of F(t) and F at the zeros below t), capped at the panel's mass."""
        C = self._panel_antiderivatives
        n = C.shape[0] - 1
        roots = np.full((C.shape[1], n), np.inf)
        values = np.full((C.shape[1], n), -np.inf)
        deriv = np.polynomial.legendre.legder(C, axis=0)
        for j in range(C.shape[1]):
            d = np.polynomial.legendre.legtrim(deriv[:, j])
            if len(d) < 2 or not np.all(np.isfinite(d)):
                continue
            r = np.polynomial.legendre.legroots(d)
            r = r[(np.abs(np.imag(r)) < 1e-8) & (np.abs(np.real(r)) < 1.0)].real
            roots[j, :len(r)] = r
            values[j, :len(r)] = np.polynomial.legendre.legval(r, C[:, j])
        return roots, values

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        """P(X <= x): atoms plus the integral of the density -- whole panels from the support
        quadrature, the partial panel by integrating the Legendre interpolant of the density
        at that panel's Gauss-Legendre nodes."""
        flat = x.ravel()
        out = self.atom_cdf(flat)
        _, w, rho, panels, tail = self._quadrature
        if not len(panels):
            return out.reshape(x.shape)
        # a panel mass below 0 is rounding noise of a density ~ 0: the cdf does not decrease
        pm = np.maximum((w * rho).reshape(len(panels), -1).sum(1), 0.0)
        # whole panels below x, and the tails of the log blocks starting at or below x
        cum = np.concatenate([[0.0], np.cumsum(pm + tail)])
        full = np.searchsorted(panels[:, 1], flat, side="right")
        last = np.minimum(full, len(panels) - 1)
        started = (full < len(panels)) & (flat >= panels[last, 0])
        out = out + cum[full] + np.where(started, tail[last], 0.0)
        inside = (full < len(panels)) & (flat > panels[last, 0])
        if inside.any():
            idx = np.nonzero(inside)[0]
            pan = panels[full[idx]]
            lo, hi, at = (_panel_var(v, pan[:, 2], pan[:, 3])
                          for v in (pan[:, 0], pan[:, 1], flat[idx]))
            tau = np.clip(2 * (at - lo) / (hi - lo) - 1, -1.0, 1.0)
            C = self._panel_antiderivatives[:, full[idx]]
            part = (np.polynomial.legendre.legvander(tau, C.shape[0] - 1) * C.T).sum(1)
            # monotone within the panel (:attr:`_panel_turning_points`), and in [0, mass]
            roots, values = (a[full[idx]] for a in self._panel_turning_points)
            part = np.maximum(part, np.where(roots < tau[:, None], values, -np.inf).max(1))
            out[idx] += np.clip(part, 0.0, pm[full[idx]])
        return out.reshape(x.shape)

    def _quantile(self, p: np.ndarray) -> np.ndarray:
        """Inverse cdf: the panel from the cumulative table, then bisection within it."""
        flat = p.ravel()
        lo0, hi0 = self.support()
        # bracket with the panel table, refine by bisection on the exact cdf
        panels = self._quadrature[3]
        grid = np.concatenate([panels[:, 0], panels[-1:, 1]])
        grid = np.unique(np.concatenate([grid, self.atoms[:, 0], [lo0, hi0]]))
        cg = self.cdf(grid)
        j = np.clip(np.searchsorted(cg, flat, side="left"), 1, len(grid) - 1)
        lo, hi = grid[j - 1], grid[j]
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < flat
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
            if np.all(hi - lo <= 1e-10 * np.maximum(hi, 1e-300)):
                break
        return hi.reshape(p.shape)


class FreeProductLaw(SolvedLaw):
    """Law of a free multiplicative convolution: exact moments by series, Belinschi atoms,
    density by the Newton solver.

    Parameters
    ----------
    product : FreeProduct
    atoms : ndarray, optional
        Rows (location, mass); computed from the factors (square case) when omitted.
    label : str
    """

    def __init__(self, product: FreeProduct, atoms: np.ndarray | None = None, label: str = ""):
        self.product = product
        self.atoms = product.atoms() if atoms is None else np.reshape(atoms, (-1, 2))
        self.label = label

    def __repr__(self) -> str:
        return f"FreeProductLaw({self.label or len(self.product.factors)} factors)"

    @functools.lru_cache(maxsize=8)  # noqa: B019 -- a law object is immutable
    def _moments(self, n: int) -> np.ndarray:
        return self.product.moments(n)

    def _singular_points(self) -> tuple[np.ndarray, np.ndarray]:
        """A single D^2 factor of a smooth phi times point masses (orthogonal weights, depth
        1) is a scaled push-forward law: its density is singular at the scaled stationary
        values of g = phi'^2 (inverse square roots) and, on their right, at its positive
        limits at +-infinity (GELU: rho ~ (x - 1)^(1/q - 1)), and its contour rule's tail
        nodes (poles on the axis; the mass above them spans many decades, as at 0). Times a
        Marchenko-Pastur factor too (Gaussian weights, depth 1), the scaled stationary values
        are kept as cuts."""
        one = _one_factor_of(SmoothD2Law, self.product.factors)
        if one is None or len(self.product.extra.rows):
            return np.empty(0), np.empty(0)
        nu, scale, others = one
        if not others:
            return (scale * nu.stationary_values,
                    scale * np.concatenate([nu.limit_values, nu.tail_values]))
        if (len(others) == 1 and isinstance(others[0].law, MarchenkoPastur)
                and others[0].power == 1 and others[0].law.ratio == 1):
            # ... times one Marchenko-Pastur (Gaussian weights, depth 1): MP smooths the
            # inverse square roots, but the density still bends sharply at the scaled
            # stationary values (GELU: 16-point panels across 0.043 lost 1.6e-6 of mass)
            return others[0].law.scale * scale * nu.stationary_values, np.empty(0)
        return np.empty(0), np.empty(0)

    def _build_system(self) -> ProductSystem:
        one = _one_factor_of(QuadratureLaw, self.product.factors)
        if one is not None and not one[2] and not len(self.product.extra.rows):
            # a scaled law of phi'(h)^2 alone (orthogonal weights, depth 1): its quadrature
            # is a discrete measure, no free convolution smooths it into a density
            raise TheoryUnavailable("density of a single smooth D^2 factor (orthogonal "
                                      "weights, depth 1) is not available; moments are exact")
        return self.product.system(float(self.atoms[self.atoms[:, 0] == 0, 1].sum()))

    def s_series(self, n: int) -> np.ndarray:
        """s_0..s_{n-1} of the product's S-transform (n >= 1)."""
        return series_exp(self.product.log_s_series(n))


def free_product(*laws: SpectralLaw) -> FreeProductLaw:
    """mu_1 boxtimes ... boxtimes mu_n of building-block laws (identical objects grouped)."""
    groups: dict[int, Factor] = {}
    for law in laws:
        f = groups.get(id(law))
        groups[id(law)] = Factor(law, 1 if f is None else f.power + 1)
    return FreeProductLaw(FreeProduct(list(groups.values())))


class ShiftedLaw(SpectralLaw):
    """The law of c + X, X ~ ``inner`` (a :class:`SolvedLaw`): every quantity is the inner
    law's at x - c, and the support quadrature is the inner one with its nodes moved by c
    (x - c near c is never formed: no digits of it are lost).

    Parameters
    ----------
    inner : SolvedLaw
    shift : float
        c >= 0.
    label : str
    """

    def __init__(self, inner: SolvedLaw, shift: float, label: str = ""):
        if not shift >= 0:
            raise ValueError(f"shift: must be >= 0, got {shift!r}")
        self.inner, self.shift, self.label = inner, float(shift), label
        self.atoms = inner.atoms + np.array([self.shift, 0.0])

    def __repr__(self) -> str:
        return f"ShiftedLaw({self.label or repr(self.inner)}, shift={self.shift:.6g})"

    def _moments(self, n: int) -> np.ndarray:
        return shift_moments(self.inner.moments(n), self.shift)

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        return self.inner._cauchy(zeta - self.shift)

    def _continuous_intervals(self) -> np.ndarray:
        return self.inner._continuous_intervals() + self.shift

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.inner._density(x - self.shift)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return self.inner._cdf(x - self.shift)

    def _quantile(self, p: np.ndarray) -> np.ndarray:
        return self.inner._quantile(p) + self.shift

    def support(self) -> tuple[float, float]:
        lo, hi = self.inner.support()
        return lo + self.shift, hi + self.shift

    def intervals(self) -> np.ndarray:
        return self.inner.intervals() + self.shift

    def quadrature(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, w, rho = self.inner.quadrature()
        return x + self.shift, w, rho

    def continuous_mass(self) -> float:
        return self.inner.continuous_mass()

    def density_moments(self, n: int) -> np.ndarray:
        """m_1..m_n of c + X from the inner density and atoms."""
        return self.inner.density_moments(n, shift=self.shift)


# --------------------------------------------------------------------------- shift chain

@dataclass(frozen=True)
class ShiftLayer:
    """One step mu_{l+1} = shift + (factors boxtimes mu_l) of a shift chain."""

    factors: tuple[Factor, ...]
    shift: float


class ShiftChainLaw(SolvedLaw):
    """mu_1 = delta_{start}, mu_{l+1} = c_l + (F_l boxtimes mu_l): the Hayase-Karakida law.

    Moments layer by layer (S-series of mu_l times that of F_l, reversion, binomial shift);
    atoms by Belinschi's rule then the shift; density by the block-tridiagonal Newton system.

    Parameters
    ----------
    start : float
        mu_1 = delta_start (q0 for H_L), > 0.
    layers : sequence of ShiftLayer
    """

    def __init__(self, start: float, layers: list[ShiftLayer], label: str = ""):
        if not start > 0:
            raise ValueError(f"start: must be > 0, got {start!r}")
        self.start = float(start)
        self.layers = list(layers)
        self.label = label
        atoms = np.array([[self.start, 1.0]])
        self._zero_masses = []
        for lay in self.layers:
            for f in lay.factors:
                atoms = product_atoms(atoms, power_atoms(f.law.atoms, f.power))
            self._zero_masses.append(float(atoms[atoms[:, 0] == 0, 1].sum()))
            atoms = np.column_stack([atoms[:, 0] + lay.shift, atoms[:, 1]])
        self.atoms = atoms
        self._base_atom = self.layers[-1].shift if self.layers else 0.0

    def __repr__(self) -> str:
        return f"ShiftChainLaw({self.label or len(self.layers)} layers)"

    def layer_moments(self, n: int) -> np.ndarray:
        """Rows l = 0..L-1: moments m_1..m_n of mu_{l+1} (row 0: delta_start); n >= 1."""
        return self._layer_moments(moment_order(n))

    @functools.lru_cache(maxsize=8)  # noqa: B019 -- a law object is immutable
    def _layer_moments(self, n: int) -> np.ndarray:
        m = self.start ** np.arange(1, n + 1, dtype=float)
        rows = [m]
        for lay in self.layers:
            log_s = FreeProduct(list(lay.factors)).log_s_series(n) + series_log(moments_to_s(m))
            s0 = log_s[0]
            mom = s_to_moments(series_exp(log_s - np.eye(1, n)[0] * s0))
            mom = mom * np.exp(-s0 * np.arange(1, n + 1))
            m = shift_moments(mom, lay.shift)
            rows.append(m)
        return np.array(rows)

    def _moments(self, n: int) -> np.ndarray:
        return self._layer_moments(n)[-1]

    def _singular_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Orthogonal weights (every layer: one smooth D^2 law nu_l times point masses):
        mu_{l+1} = c_l + a_l nu_l boxtimes mu_l bends sharply at c_l + a_l t p, t a singular
        value of nu_l (stationary values, limits) and p one of mu_l's (its base included):
        panels across them lost up to 1e-3 of GELU's H_3 mass. Kept as cuts while there are
        at most 64 of them: power points (log panels on their right) where t is a limit
        (GELU's (x - 1)^(1/q - 1)) or p a power point, square-root points otherwise."""
        points, power = np.array([self.start]), np.array([False])
        for lay in self.layers:
            one = _one_factor_of(SmoothD2Law, lay.factors)
            if one is None or one[2]:
                return np.empty(0), np.empty(0)
            nu, scale, _ = one
            values = np.concatenate([[0.0], nu.stationary_values, nu.limit_values])
            limit = np.arange(len(values)) > len(nu.stationary_values)
            points = (lay.shift + scale * np.outer(values, points)).ravel()
            power = (limit[:, None] | power[None, :]).ravel()
            points, first = np.unique(points, return_index=True)
            power = power[first]
            if len(points) > 64:
                return np.empty(0), np.empty(0)
        inside = points > self._base_atom
        return points[inside & ~power], points[inside & power]

    def _build_system(self) -> ChainSystem:
        n = 4
        mom = self.layer_moments(n)
        layers, prev_shift = [], self.start
        for l, lay in enumerate(self.layers):
            const, rows, nu = 0.0, [], None
            for f in lay.factors:
                terms = f.law.log_s_terms
                if terms is None:
                    if nu is not None or f.power != 1 or f.scale != 1:
                        raise TheoryUnavailable("shift chain: at most one factor per layer "
                                                  "without an explicit S-transform")
                    nodes, weights = f.law.nodes_weights
                    nu = ImplicitFactor(nodes, weights, 1.0, 1.0,
                                        reversion(f.law.moments(8)))
                else:
                    c, r = terms
                    const += f.power * c
                    r = np.reshape(r, (-1, 3)).copy()
                    r[:, 0] *= f.power
                    rows.append(r)
            # far-field data: moments of Y_l = mu_{l+1} - shift and S_F series
            y_m = shift_moments(mom[l + 1], -lay.shift)
            fs = FreeProduct(list(lay.factors))
            s_f = series_exp(fs.log_s_series(2))
            layers.append(ChainLayer(LogTerms(const, np.concatenate(rows or
                                                                         [np.empty((0, 3))])),
                                     nu, prev_shift, lay.shift, self._zero_masses[l],
                                     (y_m[0], y_m[1]),
                                     (s_f[0], s_f[1])))
            prev_shift = lay.shift
        return ChainSystem(layers)

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.layers:  # delta_start: no continuous part (and no system)
            return np.zeros(x.shape), np.ones(x.shape, dtype=bool)
        return super()._density(x)


__all__ = [
    "Factor",
    "FreeProduct",
    "FreeProductLaw",
    "ShiftChainLaw",
    "ShiftLayer",
    "ShiftedLaw",
    "SolvedLaw",
    "free_product",
    "power_atoms",
    "product_atoms",
]
