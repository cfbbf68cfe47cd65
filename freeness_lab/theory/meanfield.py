"""Mean-field theory of a random MLP: variance map, fixed point, chi, and the law of D^2.

For h ~ N(0, q) (Poole et al. 2016; Pennington, Schoenholz, Ganguli 2017):

    qhat(q)   = E[phi(h)^2]                          post-activation second moment
    q^{l+1}   = sigma_w^2 qhat(q^l) + sigma_b^2,     q^1 = sigma_w^2 q0 + sigma_b^2
    chi(q)    = sigma_w^2 E[phi'(h)^2]               criticality (edge of chaos): chi(q*) = 1
    mu_k(q)   = E[phi'(h)^(2k)]                      moments of the law of D^2 = phi'(h)^2

Here q0 = ||x^0||^2 / N_0 is the INPUT's second moment and qhat_l = ||x^l||^2 / M a
post-activation moment; q^l is a pre-activation variance. Conventions:
``docs/conventions.md``, section "Objects and conventions".

Gaussian expectations are exact for piecewise-linear activations (truncated-normal moments on
each linear piece) and use Gauss-Hermite quadrature for smooth ones, with the quadrature
error estimated by comparing two orders (:func:`gaussian_expectation`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from freeness_lab.activations import Activation, get_activation
from freeness_lab.spec import NetworkSpec
from freeness_lab.theory.checks import moment_order

ActivationLike = str | Activation

#: Gaussian tail cut: P(|z| > Z_CUT) = 1.5e-23 is below double precision
Z_CUT = 10.0
#: a smooth phi's E[phi^2] takes its affine tails in closed form once the rule's half-width
#: Z_CUT sqrt(q) exceeds this many times the point where phi turns affine (affine_beyond)
AFFINE_TAILS = 4.0
#: Gauss-Legendre nodes per panel of the composite rule
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)


class MeanFieldError(ValueError):
    """The mean-field recursion has no fixed point (or no critical point) for these inputs."""


def _panel_count(half_width: float, q: float) -> int:
    """Panels on [-H, H]: width <= 1/4 (features of phi at unit scale) and <= sqrt(q)/2
    (the Gaussian weight), so that 8-point Gauss-Legendre panels are exact to rounding for
    integrands analytic in a strip around the real axis (tanh: poles at +-i pi/2)."""
    width = min(0.25, 0.5 * math.sqrt(q))
    return max(4, math.ceil(2 * half_width / width))


def gaussian_quadrature(q: float, half_width: float | None = None,
                        panels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes h_i and probability weights w_i with sum_i w_i f(h_i) ~= E[f(h)], h ~ N(0, q).

    Composite 8-point Gauss-Legendre on [-H, H] (H = Z_CUT sqrt(q) by default) against the
    N(0, q) density. The weights sum to P(|h| < H); the caller accounts for the tails.
    """
    H = Z_CUT * math.sqrt(q) if half_width is None else half_width
    n = _panel_count(H, q) if panels is None else panels
    edges = np.linspace(-H, H, n + 1)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    h = (mid[:, None] + half[:, None] * _GL_NODES[None, :]).ravel()
    w = (half[:, None] * _GL_WEIGHTS[None, :]).ravel()
    w = w * np.exp(-0.5 * h * h / q) / math.sqrt(2 * math.pi * q)
    return h, w


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], q: float,
                         *, return_error: bool = False) -> float | tuple[float, float]:
    """E[f(h)] for h ~ N(0, q), f smooth, by composite Gauss-Legendre quadrature.

    The error estimate is the difference with the rule on half as many panels, a
    conservative bound for integrands analytic in a strip around the real axis. Tails beyond
    Z_CUT standard deviations (mass 1.5e-23) are dropped. Piecewise-linear activations have
    exact formulas instead (:func:`post_activation_moment`, :func:`d2_law`).
    """
    h, w = gaussian_quadrature(q)
    value = float(np.dot(w, f(h)))
    if not return_error:
        return value
    H = Z_CUT * math.sqrt(q)
    h2, w2 = gaussian_quadrature(q, H, max(2, _panel_count(H, q) // 2))
    return value, abs(value - float(np.dot(w2, f(h2))))


def _piece_moments(a: float, b: float, q: float) -> tuple[float, float, float]:
    """(P, E[h 1], E[h^2 1]) over a < h < b for h ~ N(0, q): truncated-normal moments."""
    s = math.sqrt(q)
    al, be = a / s, b / s

    def pdf(t: float) -> float:
        return 0.0 if math.isinf(t) else math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)

    def tpdf(t: float) -> float:
        return 0.0 if math.isinf(t) else t * pdf(t)

    # upper tail by symmetry: 1 - Phi(x) loses digits for x > 0
    p = special.ndtr(-al) - special.ndtr(-be) if al > 0 else special.ndtr(be) - special.ndtr(al)
    return p, s * (pdf(al) - pdf(be)), q * (p + tpdf(al) - tpdf(be))


def post_activation_moment(activation: ActivationLike, q: float) -> float:
    """qhat(q) = E[phi(h)^2], h ~ N(0, q): exact for piecewise-linear phi, quadrature otherwise.

    On a linear piece (a, b) with phi(x) = c + s x, the contribution is
    c^2 P + 2 c s E[h 1] + s^2 E[h^2 1] (truncated-normal moments). A smooth phi is affine to
    rounding beyond +-H (:func:`affine_beyond`); for q with Z_CUT sqrt(q) > ``AFFINE_TAILS`` H
    those tails are such pieces and the quadrature covers [-H, H] only (its panels would
    otherwise grow like sqrt(q)).
    """
    act = get_activation(activation)
    if q <= 0:
        return float(act.phi(np.zeros(1))[0] ** 2)
    if act.pieces is None:
        flat = affine_beyond(act.name)
        if Z_CUT * math.sqrt(q) <= AFFINE_TAILS * flat:
            return gaussian_expectation(lambda h: act.phi(h) ** 2, q)
        # q so large that most of the rule's panels would lie where phi is affine to
        # rounding (beyond +-flat): the quadrature inside, the truncated-normal moments of
        # the affine pieces outside (panels ~ sqrt(q) otherwise: 1.4 s per layer at q = 1e9,
        # GELU at sigma_w = 1.6 and depth 1000 did not finish)
        h, w = gaussian_quadrature(q, flat)
        total = float(np.dot(w, act.phi(h) ** 2))
        ends = act.dphi(np.array([-flat - 1.0, flat + 1.0]))
        pieces = ((-math.inf, -flat, float(ends[0])), (flat, math.inf, float(ends[1])))
    else:
        total, pieces = 0.0, act.pieces
    for a, b, slope in pieces:
        mid = 0.5 * (a + b) if math.isfinite(a) and math.isfinite(b) else (
            (a + 1.0) if math.isfinite(a) else (b - 1.0) if math.isfinite(b) else 0.0)
        c = float(act.phi(np.array([mid]))[0]) - slope * mid
        p, e1, e2 = _piece_moments(a, b, q)
        total += c * c * p + 2 * c * slope * e1 + slope * slope * e2
    return total


def variance_map(activation: ActivationLike, q: float, sigma_w: float, sigma_b: float) -> float:
    """One step of the length map: sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2."""
    return sigma_w**2 * post_activation_moment(activation, q) + sigma_b**2


def preactivation_variances(spec: NetworkSpec) -> np.ndarray:
    """Pre-activation variances q^1..q^L from the input.

    q^1 = sigma_w^2 q0 + sigma_b^2 and q^{l+1} = sigma_w^2 qhat_l + sigma_b^2.
    """
    qs = np.empty(spec.depth)
    q = spec.sigma_w**2 * spec.q0 + spec.sigma_b**2
    for layer in range(spec.depth):
        qs[layer] = q
        q = variance_map(spec.activation, q, spec.sigma_w, spec.sigma_b)
    return qs


def post_activation_moments(spec: NetworkSpec) -> np.ndarray:
    """qhat_0..qhat_{L}: qhat_0 = q0 (the input), qhat_l = E[phi(h^l)^2] for l >= 1."""
    qs = preactivation_variances(spec)
    return np.concatenate([[spec.q0], [post_activation_moment(spec.activation, q) for q in qs]])


def fixed_point(activation: ActivationLike, sigma_w: float, sigma_b: float,
                *, q_start: float = 1.0, q_max: float = 1e8) -> float:
    """The fixed point q* = sigma_w^2 qhat(q*) + sigma_b^2 reached from q_start.

    Solved by bracketing the root of g(q) = variance_map(q) - q with Brent's method after
    locating a sign change by iterating the map (stable fixed points attract the iteration).

    Raises
    ------
    MeanFieldError
        When the iterates diverge (e.g. ReLU with sigma_w^2 > 2, or linear with sigma_w > 1)
        or the only fixed point is q = 0 with sigma_b = 0 (the signal dies out): both are
        reported with the parameters.
    """
    act = get_activation(activation)

    def g(q: float) -> float:
        return variance_map(act, q, sigma_w, sigma_b) - q

    q = float(q_start)
    for _ in range(10_000):
        q_next = variance_map(act, q, sigma_w, sigma_b)
        if not math.isfinite(q_next) or q_next > q_max:
            raise MeanFieldError(f"no finite fixed point of the variance map for {act.name} "
                                 f"with sigma_w={sigma_w:g}, sigma_b={sigma_b:g}: q^l grows "
                                 f"without bound")
        if abs(q_next - q) <= 1e-14 * max(1.0, q):
            q = q_next
            break
        # once the iterates bracket a root, refine with Brent's method
        if g(q) * g(q_next) < 0:
            lo, hi = sorted((q, q_next))
            q = float(optimize.brentq(g, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps))
            break
        q = q_next
    else:
        raise MeanFieldError(f"variance map for {act.name} with sigma_w={sigma_w:g}, "
                             f"sigma_b={sigma_b:g} did not settle in 10000 iterations")
    if q < 1e-12 and sigma_b == 0:
        raise MeanFieldError(f"the only fixed point for {act.name} with sigma_w={sigma_w:g}, "
                             f"sigma_b=0 is q*=0 (the signal vanishes with depth)")
    return q


def d2_moments(activation: ActivationLike, q: float, n: int) -> np.ndarray:
    """mu_k = E[phi'(h)^(2k)], k = 1..n, h ~ N(0, q): the moments of the law of D^2."""
    return d2_law(activation, q).moments(n)


def chi(activation: ActivationLike, q: float, sigma_w: float) -> float:
    """chi = sigma_w^2 E[phi'(h)^2], h ~ N(0, q): the mean squared singular value per layer."""
    return sigma_w**2 * float(d2_moments(activation, q, 1)[0])


def critical_sigma_w(activation: ActivationLike, sigma_b: float,
                     *, bracket: tuple[float, float] = (1e-3, 20.0)) -> tuple[float, float]:
    """The edge of chaos: sigma_w with chi(q*(sigma_w, sigma_b), sigma_w) = 1.

    Returns
    -------
    (sigma_w, q_star)
        q_star is nan for a positively homogeneous phi (ReLU, leaky ReLU, linear) at
        sigma_b = 0, where chi = sigma_w^2 mu_1 does not depend on q and every q is fixed.

    Raises
    ------
    MeanFieldError
        When chi - 1 does not change sign on ``bracket`` (no critical point, e.g. a
        saturating activation whose chi stays below 1).
    """
    act = get_activation(activation)
    homogeneous = act.pieces is not None and all(
        math.isinf(a) or a == 0 for a, _, _ in act.pieces)
    if homogeneous and sigma_b == 0:
        # positively homogeneous phi: chi does not depend on q and every q is a fixed point
        # at criticality, so q* is reported as nan
        return 1.0 / math.sqrt(float(d2_moments(act, 1.0, 1)[0])), math.nan

    def excess(sw: float) -> float:
        return chi(act, fixed_point(act, sw, sigma_b), sw) - 1.0

    lo, hi = bracket
    grid = np.geomspace(lo, hi, 60)
    prev = None
    for a in grid:
        try:
            val = excess(a)
        except MeanFieldError:
            prev = None
            continue
        if prev is not None and prev[1] * val < 0:
            sw = optimize.brentq(excess, prev[0], a, xtol=1e-13)
            return sw, fixed_point(act, sw, sigma_b)
        prev = (a, val)
    raise MeanFieldError(f"no critical sigma_w for {act.name} with sigma_b={sigma_b:g} in "
                         f"sigma_w in [{lo:g}, {hi:g}]")


@functools.cache
def affine_beyond(name: str) -> float:
    """H such that phi(h) equals its asymptote c + s h (s = phi'(+-1e4)) to 1e-16 relative
    (1e-16 absolute where |phi| < 1) for all |h| >= H: e.g. 18.5 for tanh (1 - tanh h =
    2 e^(-2h)), 37 for the sigmoid."""
    act = get_activation(name)
    grid = np.arange(0.0, 400.0, 0.5)
    dev = np.zeros_like(grid)
    for side in (-1.0, 1.0):
        far = side * 1e4
        s = float(act.dphi(np.array([far]))[0])
        c = float(act.phi(np.array([far]))[0]) - s * far
        phi = act.phi(side * grid)
        dev = np.maximum(dev, np.abs(phi - (c + s * side * grid)) / np.maximum(1.0, np.abs(phi)))
    bad = np.nonzero(dev > 1e-16)[0]
    return float(grid[bad[-1] + 1]) if len(bad) else 0.5


@functools.cache
def flat_beyond(name: str) -> float:
    """H such that phi'(h)^2 equals its limit at +-infinity to 1e-17 for all |h| >= H.

    Beyond H the law of phi'(h)^2 is lumped into two nodes at the limits, which keeps the
    quadrature small when q is large (e.g. tanh at q = 100) without losing accuracy.
    """
    act = get_activation(name)
    grid = np.arange(0.0, 400.0, 0.5)
    dev = np.maximum(np.abs(act.dphi(grid) ** 2 - act.dphi(np.array([1e4]))[0] ** 2),
                     np.abs(act.dphi(-grid) ** 2 - act.dphi(np.array([-1e4]))[0] ** 2))
    bad = np.nonzero(dev > 1e-17)[0]
    return float(grid[bad[-1] + 1]) if len(bad) else 0.5


@dataclass(frozen=True)
class D2Law:
    """The law of D^2 = phi'(h)^2, h ~ N(0, q): exact atoms plus a continuous part.

    Attributes
    ----------
    atoms : ndarray of shape (k, 2)
        Rows (location, mass); exact for piecewise-linear phi, empty for smooth phi.
    nodes, weights : ndarray
        The continuous part as a quadrature in h: E[f(D^2)] over the continuous part
        ~= sum_i weights_i f(nodes_i), nodes_i = phi'(h_i)^2 (composite Gauss-Legendre in h
        against the N(0, q) density, see :func:`gaussian_quadrature`; where phi'^2 is flat to
        1e-17 the tails are lumped into two nodes at phi'(+-infinity)^2). Accurate to rounding
        for f smooth on the range of phi'^2. Empty for piecewise-linear phi.
    activation, q : the parameters.
    """

    activation: str
    q: float
    atoms: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray

    @property
    def continuous_mass(self) -> float:
        """Mass of the continuous part (1 for smooth phi, 0 for piecewise-linear phi)."""
        return float(self.weights.sum())

    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """E[f(D^2)] for a vectorized f (applied to the atom locations and the nodes)."""
        total = 0.0
        if len(self.atoms):
            total = np.tensordot(self.atoms[:, 1], f(self.atoms[:, 0]), axes=(0, 0))
        if len(self.nodes):
            total = total + np.tensordot(self.weights, f(self.nodes), axes=(0, 0))
        return total

    def moments(self, n: int) -> np.ndarray:
        """mu_1..mu_n, mu_k = E[phi'(h)^(2k)] (n: an integer >= 1, else a ValueError)."""
        k = np.arange(1, moment_order(n) + 1)
        return np.asarray(self.expect(lambda x: np.power.outer(x, k)), dtype=float)


def d2_law(activation: ActivationLike, q: float) -> D2Law:
    """The law of D^2 = phi'(h)^2 for h ~ N(0, q).

    Piecewise-linear phi (ReLU, leaky ReLU, hard tanh, linear): atoms at slope^2 with mass
    P(h in piece), merged by location; e.g. ReLU: {0: 1/2, 1: 1/2}; hard tanh:
    {1: erf(1/sqrt(2q)), 0: 1 - erf(1/sqrt(2q))}. Smooth phi: quadrature nodes in h.
    """
    act = get_activation(activation)
    if not (q > 0 and math.isfinite(q)):
        raise ValueError(f"q: must be a finite number > 0, got {q!r}")
    if act.pieces is not None:
        masses: dict[float, float] = {}
        for a, b, slope in act.pieces:
            p, _, _ = _piece_moments(a, b, q)
            masses[slope * slope] = masses.get(slope * slope, 0.0) + p
        atoms = np.array(sorted((loc, m) for loc, m in masses.items() if m > 0), dtype=float)
        return D2Law(act.name, q, atoms, np.empty(0), np.empty(0))
    H = min(Z_CUT * math.sqrt(q), flat_beyond(act.name))
    h, w = gaussian_quadrature(q, H)
    tail = special.ndtr(-H / math.sqrt(q))
    limits = act.dphi(np.array([-1e4, 1e4])) ** 2
    nodes = np.concatenate([act.dphi(h) ** 2, limits])
    weights = np.concatenate([w, [tail, tail]])
    return D2Law(act.name, q, np.empty((0, 2)), nodes, weights)
