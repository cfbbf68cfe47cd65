"""Spectral laws: atoms plus an absolutely continuous part, and the building blocks.

A law mu on [0, inf) is described by its atoms (location, mass) and the transforms

    G(zeta)  = int dmu(t) / (zeta - t)                         Cauchy transform,
    psi(z)   = int z t / (1 - z t) dmu(t) = sum_k m_k z^k        moment transform,
               psi(z) = (1/z) G(1/z) - 1,
    S(m)     = chi(m) (1 + m) / m,  chi = psi^{-1}              S-transform.

The density of the continuous part is -Im G(x + i 0) / pi with the atoms' poles removed
(Stieltjes inversion). The interface is modelled on ``scipy.stats`` distributions:
``moments(n)``, ``density(x)``, ``cdf(x)``, ``quantile(p)``, ``support()``, ``atoms``.

Building blocks (``../shared/DESIGN.md`` section 2):

* :func:`delta` -- the law of sigma^2 I, S = 1 / sigma^2;
* :class:`DiscreteLaw` -- finitely many atoms, e.g. the law of D^2 = phi'(h)^2 for a
  piecewise-linear phi (ReLU: {0: 1/2, 1: 1/2}); for {0: 1 - p, a: p},
  S(m) = (1 + m) / (a (p + m));
* :class:`MarchenkoPastur` -- the law of W W^T, W of shape N_out x N_in with i.i.d. entries of
  variance s / N_in, ratio c = N_out / N_in: S(m) = 1 / (s (1 + c m)), moments
  m_k = s^k sum_{j=1}^k Narayana(k, j) c^{j-1};
* :class:`QuadratureLaw` -- a law given by a quadrature (nodes, weights);
* :class:`SmoothD2Law` -- the law of phi'(h)^2, h ~ N(0, q), for a smooth phi
  (:func:`d2_factor`), with G(zeta) accurate on and near its support (contour rule in the
  complex h-plane) and its density.

Explicit S-transforms are exposed as *log-terms*: log S(m) = const + sum_j e_j log(alpha_j +
beta_j m) with alpha_j > 0, beta_j >= 0, which the Newton solver uses to eliminate the
factor's subordination unknown (:mod:`freeness_lab.theory.newton`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from freeness_lab.activations import get_activation
from freeness_lab.theory._checks import (
    moment_order,
    probabilities,
    real_points,
    spectral_points,
)
from freeness_lab.theory.errors import TheoryUnavailable
from freeness_lab.theory.meanfield import Z_CUT, D2Law, _flat_beyond
from freeness_lab.theory.series import moments_to_s

#: log S(m) = const + sum_j e_j log(alpha_j + beta_j m): (const, rows (e_j, alpha_j, beta_j))
LogTerms = tuple[float, np.ndarray]


def _empty_atoms() -> np.ndarray:
    return np.empty((0, 2))


class SpectralLaw:
    """Base class of a law on [0, inf): atoms plus an absolutely continuous part.

    The public methods -- :meth:`moments`, :meth:`cauchy`, :meth:`density`, :meth:`cdf`,
    :meth:`quantile` -- check their arguments here, once for every law
    (:mod:`freeness_lab.theory._checks`), and call the hooks a subclass implements:
    ``_moments(n)``, ``_cauchy(zeta)``, ``_density(x)``, ``_cdf(x)``, ``_quantile(p)`` and
    ``_continuous_intervals()``. The contract they then guarantee:

    * ``moments(n)``: n an integer >= 1, else a ``ValueError`` naming ``n``;
    * NaN in gives NaN out, elementwise, in ``cauchy``, ``density``, ``cdf`` and
      ``quantile`` (the hooks never see it); ``density(+-inf) = 0``, ``cdf(-inf) = 0``,
      ``cdf(inf) = 1``;
    * ``density`` is exactly 0 outside the support of the continuous part: at x < 0, in the
      gaps between its intervals and beyond its top edge (the hooks see only points inside);
    * ``cdf`` lies in [0, 1] (rounding of the hooks' quadratures is clipped);
    * ``quantile(p)``: p outside [0, 1] is a ``ValueError`` naming ``p`` (a number that is
      not a probability is the caller's mistake; NaN is a missing value);
    * a law without a density, cdf or quantile raises
      :class:`~freeness_lab.theory.errors.TheoryUnavailable`, whatever the argument.

    Subclasses provide ``_moments``, ``_cauchy`` and :attr:`atoms`; the others are optional.
    ``log_s_terms`` is ``None`` unless the S-transform is an explicit product of powers of
    affine functions of m.
    """

    #: rows (location, mass)
    atoms: np.ndarray = _empty_atoms()

    # -- the public interface: argument checks, then the hooks
    def moments(self, n: int) -> np.ndarray:
        """m_1..m_n, m_k = int t^k dmu(t).

        Parameters
        ----------
        n : int
            Number of moments, >= 1.

        Returns
        -------
        ndarray of shape (n,)

        Raises
        ------
        ValueError
            If n is not an integer >= 1.
        """
        return self._moments(moment_order(n))

    def cauchy(self, zeta: np.ndarray) -> np.ndarray:
        """G(zeta) = int dmu(t) / (zeta - t) in the closed upper half-plane.

        Parameters
        ----------
        zeta : complex array_like
            Im zeta >= 0; NaN entries give NaN.

        Returns
        -------
        complex ndarray of the shape of ``zeta``

        Raises
        ------
        ValueError
            If an entry has Im zeta < 0 or is not a number.
        """
        zeta = spectral_points(zeta)
        flat = zeta.ravel()
        ok = ~np.isnan(flat)
        if ok.all():
            return np.asarray(self._cauchy(flat), dtype=complex).reshape(zeta.shape)
        out = np.full(flat.shape, complex(np.nan, np.nan))
        out[ok] = self._cauchy(flat[ok])
        return out.reshape(zeta.shape)

    def density(self, x: np.ndarray, *, return_converged: bool = False):
        """Density of the absolutely continuous part (atoms excluded).

        Parameters
        ----------
        x : array_like of float
            Points; NaN gives NaN, +-inf gives 0.
        return_converged : bool
            Also return per-point flags: False where the value is NaN (a NaN input, or a
            solver that did not converge there), True elsewhere.

        Returns
        -------
        rho : ndarray of the shape of ``x``
            Exactly 0 outside the support of the continuous part.
        converged : bool ndarray, only with ``return_converged``
        """
        x = real_points(x)
        flat = x.ravel()
        rho = np.zeros(flat.shape)
        conv = np.ones(flat.shape, dtype=bool)
        nan = np.isnan(flat)
        rho[nan], conv[nan] = np.nan, False
        inside = np.isfinite(flat) & (flat >= 0)  # laws on [0, inf)
        if inside.any():
            inside[inside] = self._in_continuous_support(flat[inside])
        # called even with no point inside: a law without a density says so for any x
        rho[inside], conv[inside] = self._density(flat[inside])
        rho, conv = rho.reshape(x.shape), conv.reshape(x.shape)
        return (rho, conv) if return_converged else rho

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(X <= x).

        Parameters
        ----------
        x : array_like of float
            Points; NaN gives NaN, cdf(-inf) = 0, cdf(inf) = 1.

        Returns
        -------
        ndarray of the shape of ``x``, in [0, 1]
        """
        x = real_points(x)
        flat = x.ravel()
        finite = np.isfinite(flat)
        if finite.all():
            return np.clip(self._cdf(flat), 0.0, 1.0).reshape(x.shape)
        out = np.where(flat > 0, 1.0, 0.0)  # +-inf
        out[np.isnan(flat)] = np.nan
        out[finite] = np.clip(self._cdf(flat[finite]), 0.0, 1.0)
        return out.reshape(x.shape)

    def quantile(self, p: np.ndarray) -> np.ndarray:
        """The inverse cdf: the smallest x with cdf(x) >= p.

        Parameters
        ----------
        p : array_like of float
            Probabilities in [0, 1]; NaN gives NaN.

        Returns
        -------
        ndarray of the shape of ``p``

        Raises
        ------
        ValueError
            If an entry lies outside [0, 1] (or is not a real number).
        """
        p = probabilities(p)
        flat = p.ravel()
        ok = ~np.isnan(flat)
        out = np.full(flat.shape, np.nan)
        out[ok] = self._quantile(flat[ok])
        return out.reshape(p.shape)

    # -- hooks
    def _moments(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rho, converged) at points x (1-d, finite, inside the support; possibly empty)."""
        raise TheoryUnavailable(f"{type(self).__name__}: no density")

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        """P(X <= x) at finite points x."""
        raise TheoryUnavailable(f"{type(self).__name__}: no cdf")

    def _quantile(self, p: np.ndarray) -> np.ndarray:
        """The inverse cdf at p in [0, 1] (1-d)."""
        raise TheoryUnavailable(f"{type(self).__name__}: no quantile")

    def _continuous_intervals(self) -> np.ndarray | None:
        """Rows (a, b): the intervals carrying the continuous part; None when unknown (the
        density is then only set to 0 at x < 0)."""
        return None

    def _in_continuous_support(self, x: np.ndarray) -> np.ndarray:
        """Whether each x (finite, >= 0) lies in a closed interval of the continuous part."""
        iv = self._continuous_intervals()
        if iv is None:
            return np.ones(x.shape, dtype=bool)
        iv = np.reshape(iv, (-1, 2))
        if not len(iv):
            return np.zeros(x.shape, dtype=bool)
        if len(iv) == 1:
            return (x >= iv[0, 0]) & (x <= iv[0, 1])
        j = np.searchsorted(iv[:, 0], x, side="right") - 1  # last interval starting <= x
        return (j >= 0) & (x <= iv[np.maximum(j, 0), 1])

    @property
    def log_s_terms(self) -> LogTerms | None:
        """Explicit S-transform as log-terms, or None."""
        return None

    @property
    def atom_mass(self) -> float:
        """Total mass of the atoms."""
        return float(self.atoms[:, 1].sum()) if len(self.atoms) else 0.0

    @property
    def mean(self) -> float:
        """m_1."""
        return float(self.moments(1)[0])

    @property
    def var(self) -> float:
        """m_2 - m_1^2."""
        m = self.moments(2)
        return float(m[1] - m[0] ** 2)

    def psi(self, z: np.ndarray) -> np.ndarray:
        """psi(z) = sum_k m_k z^k = (1/z) G(1/z) - 1, for z in the closed lower half-plane
        (NaN entries give NaN)."""
        z = np.asarray(z)
        if z.dtype.kind not in "iufc" or np.any(z.imag > 0):
            raise ValueError("z: must be complex numbers in the closed lower half-plane "
                             "(Im z <= 0)")
        zeta = 1.0 / z.astype(complex)
        return zeta * self.cauchy(zeta) - 1.0

    def s_series(self, n: int) -> np.ndarray:
        """s_0..s_{n-1}, the Taylor coefficients of S at m = 0 (from the exact moments)."""
        return moments_to_s(self.moments(n))

    def s_transform(self, m: np.ndarray) -> np.ndarray:
        """S(m), for laws with an explicit S-transform."""
        terms = self.log_s_terms
        if terms is None:
            raise TheoryUnavailable(f"{type(self).__name__}: S-transform has no closed form; "
                                      f"use s_series(n)")
        const, rows = terms
        m = np.asarray(m, dtype=complex)
        out = np.full(m.shape, math.exp(const), dtype=complex)
        for e, a, b in rows:
            out = out * (a + b * m) ** e
        return out

    def _atom_cdf(self, x: np.ndarray) -> np.ndarray:
        if not len(self.atoms):
            return np.zeros(np.shape(x))
        return (self.atoms[:, 1] * (np.asarray(x)[..., None] >= self.atoms[:, 0])).sum(-1)


def _check_atoms(locations: np.ndarray, masses: np.ndarray) -> np.ndarray:
    loc = np.atleast_1d(np.asarray(locations, dtype=float))
    mass = np.atleast_1d(np.asarray(masses, dtype=float))
    if loc.shape != mass.shape or loc.ndim != 1:
        raise ValueError("locations, masses: must be 1-d arrays of the same length")
    if np.any(loc < 0) or not np.all(np.isfinite(loc)):
        raise ValueError("locations: must be finite and >= 0 (laws on [0, inf))")
    if np.any(mass < 0) or abs(mass.sum() - 1.0) > 1e-12:
        raise ValueError(f"masses: must be >= 0 and sum to 1, got sum {mass.sum()!r}")
    keep = mass > 0
    order = np.argsort(loc[keep])
    return np.column_stack([loc[keep][order], mass[keep][order]])


class DiscreteLaw(SpectralLaw):
    """A law with finitely many atoms sum_j p_j delta_{a_j}, a_j >= 0.

    psi(z) = sum_j p_j a_j z / (1 - a_j z). For one atom at a > 0, S = 1/a; for two atoms
    {0: 1 - p, a: p}, psi(z) = p a z / (1 - a z) gives chi(m) = m / (a (p + m)) and
    S(m) = (1 + m) / (a (p + m)). Other discrete laws have no closed-form S (the Newton
    solver then keeps a subordination unknown for them).
    """

    def __init__(self, locations: np.ndarray, masses: np.ndarray):
        self.atoms = _check_atoms(locations, masses)

    def __repr__(self) -> str:
        return f"DiscreteLaw(atoms={self.atoms.tolist()})"

    @property
    def nodes_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(locations, masses) as a quadrature of psi."""
        return self.atoms[:, 0], self.atoms[:, 1]

    def _moments(self, n: int) -> np.ndarray:
        k = np.arange(1, n + 1)
        return np.power.outer(self.atoms[:, 0], k).T @ self.atoms[:, 1]

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        return (self.atoms[:, 1] / (zeta[..., None] - self.atoms[:, 0])).sum(-1)

    def _continuous_intervals(self) -> np.ndarray:
        return np.empty((0, 2))  # no continuous part: the density is 0

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(x.shape), np.ones(x.shape, dtype=bool)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return self._atom_cdf(x)

    def _quantile(self, p: np.ndarray) -> np.ndarray:
        """The smallest atom whose cumulative mass reaches p (p = 0: the smallest atom)."""
        cum = np.cumsum(self.atoms[:, 1])
        cum[-1] = 1.0  # the masses sum to 1 up to rounding
        return self.atoms[np.searchsorted(cum, p, side="left"), 0]

    def support(self) -> tuple[float, float]:
        """(smallest atom, largest atom)."""
        return float(self.atoms[0, 0]), float(self.atoms[-1, 0])

    @property
    def log_s_terms(self) -> LogTerms | None:
        loc, mass = self.atoms[:, 0], self.atoms[:, 1]
        if len(loc) == 1 and loc[0] > 0:
            return -math.log(loc[0]), np.empty((0, 3))
        if len(loc) == 2 and loc[0] == 0:
            a, p = loc[1], mass[1]
            return -math.log(a), np.array([[1.0, 1.0, 1.0], [-1.0, p, 1.0]])
        return None


def delta(a: float) -> DiscreteLaw:
    """The point mass at a >= 0 (the law of a I; e.g. a = sigma_w^2 for W W^T, W orthogonal)."""
    return DiscreteLaw([a], [1.0])


def bernoulli(p: float, a: float = 1.0) -> DiscreteLaw:
    """The law (1 - p) delta_0 + p delta_a: a projection of trace p, scaled by a."""
    if not 0 <= p <= 1:
        raise ValueError(f"p: must be in [0, 1], got {p!r}")
    return DiscreteLaw([0.0, a], [1.0 - p, p])


def narayana(k: int, j: int) -> int:
    """Narayana number N(k, j) = binom(k, j) binom(k, j - 1) / k."""
    return math.comb(k, j) * math.comb(k, j - 1) // k


@dataclass(frozen=True, repr=True)
class MarchenkoPastur(SpectralLaw):
    """Marchenko-Pastur law of W W^T, W N_out x N_in with entries of variance ``scale`` / N_in.

    Parameters
    ----------
    ratio : float
        c = N_out / N_in > 0. For c > 1 there is an atom at 0 of mass 1 - 1/c.
    scale : float
        s > 0, the mean of the law.

    Notes
    -----
    Edges lambda_pm = s (1 pm sqrt c)^2; density sqrt((lambda_+ - x)(x - lambda_-)) /
    (2 pi s c x) on [lambda_-, lambda_+]; G(zeta) = (zeta - s (1 - c) -
    sqrt((zeta - lambda_-)(zeta - lambda_+))) / (2 s c zeta); S(m) = 1 / (s (1 + c m))
    (Marchenko, Pastur 1967; Voiculescu 1987).
    """

    ratio: float = 1.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("ratio", "scale"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be a finite number > 0, got {v!r}")

    @property
    def atoms(self) -> np.ndarray:  # type: ignore[override]
        if self.ratio > 1:
            return np.array([[0.0, 1.0 - 1.0 / self.ratio]])
        return _empty_atoms()

    @property
    def edges(self) -> tuple[float, float]:
        """(lambda_-, lambda_+)."""
        r = math.sqrt(self.ratio)
        return self.scale * (1 - r) ** 2, self.scale * (1 + r) ** 2

    def _moments(self, n: int) -> np.ndarray:
        c, s = self.ratio, self.scale
        return np.array([s**k * sum(narayana(k, j) * c ** (j - 1) for j in range(1, k + 1))
                         for k in range(1, n + 1)], dtype=float)

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        lo, hi = self.edges
        c, s = self.ratio, self.scale
        root = np.sqrt(zeta - lo) * np.sqrt(zeta - hi)  # the branch ~ zeta at infinity
        return (zeta - s * (1 - c) - root) / (2 * s * c * zeta)

    def _continuous_intervals(self) -> np.ndarray:
        return np.array([self.edges])

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.edges
        inside = (x > lo) & (x < hi)
        xs = np.where(inside, x, 0.5 * (lo + hi))
        rho = np.sqrt((hi - xs) * (xs - lo)) / (2 * math.pi * self.scale * self.ratio * xs)
        return np.where(inside, rho, 0.0), np.ones(x.shape, dtype=bool)

    def support(self) -> tuple[float, float]:
        """(lambda_-, lambda_+), or (0, lambda_+) when there is an atom at 0."""
        lo, hi = self.edges
        return (0.0 if self.ratio > 1 else lo), hi

    @property
    def log_s_terms(self) -> LogTerms:
        return -math.log(self.scale), np.array([[-1.0, 1.0, self.ratio]])


class QuadratureLaw(SpectralLaw):
    """A continuous law known through a quadrature: E f(X) = sum_i w_i f(t_i) (+ atoms).

    Used for the law of D^2 = phi'(h)^2 with smooth phi (:class:`~freeness_lab.theory.
    meanfield.D2Law`): the quadrature is exact to rounding for f smooth on the range of
    phi'^2, e.g. the moments and G(zeta), psi(z) away from that range. No density or cdf
    (the law is only used as a factor of a free product).
    """

    def __init__(self, nodes: np.ndarray, weights: np.ndarray, label: str = ""):
        self.nodes = np.asarray(nodes, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.label = label

    def __repr__(self) -> str:
        return f"QuadratureLaw({self.label or len(self.nodes)})"

    @property
    def nodes_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(nodes, weights)."""
        return self.nodes, self.weights

    def _moments(self, n: int) -> np.ndarray:
        k = np.arange(1, n + 1)
        return np.power.outer(self.nodes, k).T @ self.weights

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        return (self.weights / (zeta[..., None] - self.nodes)).sum(-1)

    def support(self) -> tuple[float, float]:
        """(min node, max node)."""
        return float(self.nodes.min()), float(self.nodes.max())


#: deformation h(s) = s - i D(s), D = c g g' / (g'^2 + kappa^2 g^2): the constant c
_DEFORM_C = 0.6
#: Gauss-Legendre nodes per panel of the contour rule
_CONTOUR_GL = np.polynomial.legendre.leggauss(16)
#: geometric grading toward a stationary point of g stops at this distance (times sqrt(q))
_GRADING_FLOOR = 1e-9
#: within this distance (times sqrt(q)) of a double zero h0 of g (phi' = 0: SiLU, GELU) the
#: rule is built in the local variable sigma = h - h0 (s - h0 would keep 16 - k digits at
#: 10^-k) from the Taylor series of phi' at h0, graded with ratio 4 down to
#: _ZERO_GRADING_FLOOR: psi(omega) has poles at h0 +- (g''(h0) omega / 2)^(-1/2), and deep
#: products need |omega| up to ~1e60 (their density near 0 is ~ x^(delta - 1) with a small
#: delta: the subordination points of the D^2 factors reach omega ~ e^100 at x ~ e^-10000)
_ZERO_LOCAL = 1e-3
_ZERO_GRADING_FLOOR = 1e-40
_ZERO_RATIO = 2.0
#: Taylor terms of phi' at a double zero of g (the tail at |sigma| <= 1e-3 is below 1e-30)
_ZERO_TAYLOR_TERMS = 12
#: radius and points of the Cauchy integrals giving g', g'' at real s (inside the strip of
#: analyticity of every registered phi': the nearest singularity is tanh's, at i pi / 2)
_CAUCHY_RADIUS, _CAUCHY_POINTS = 0.25, 32
#: a stationary point of g with g below this fraction of max g is a (double) zero of g
_ZERO_OF_G = 1e-20


def _expit(h: np.ndarray) -> np.ndarray:
    """The logistic function continued to complex h: 1 / (1 + e^-h), as e^h / (1 + e^h)
    for Re h < 0 ((1 + tanh(h / 2)) / 2 cancels to rounding noise below Re h ~ -30, which
    the D^2 law of SiLU reaches once q ~ 100: deep networks with sigma_w > 1)."""
    h = np.asarray(h)
    e = np.exp(-np.abs(h.real) - 1j * np.sign(h.real) * h.imag)  # e^-h or e^h, |e| <= 1
    return np.where(h.real >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


#: phi' continued analytically where the registry's phi' accepts real input only
_COMPLEX_DPHI = {
    "tanh": lambda h: 1.0 / np.cosh(h) ** 2,  # 1 - tanh^2 cancels to 0 for |h| > 19
    "sigmoid": lambda h: 0.25 / np.cosh(0.5 * h) ** 2,
    "silu": lambda h: _expit(h) * (1.0 + h * _expit(-h)),
}

#: phi'(h) - 1 without cancellation for Re h > 0, where phi' -> 1 (SiLU, GELU): the
#: derivatives of g = phi'^2 in that tail are those of g - 1 = (phi' - 1)(phi' + 1), and
#: taking them from g itself would leave only rounding noise once |g - 1| < 1e-16
_COMPLEX_DPHI_MINUS_ONE = {
    "silu": lambda h: _expit(-h) * (h * _expit(h) - 1.0),
    "gelu": lambda h: h * np.exp(-0.5 * h * h) / math.sqrt(2 * math.pi) - special.ndtr(-h),
}


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
    1e-3 sqrt(q), within which a local rule in sigma = h - h0 is graded with ratio 4 down to
    1e-40 sqrt(q): :meth:`_zero_rule`), no wider than min(1/4, sqrt(q)/2, 1/(2 |r|), 2 |D|)
    (the last keeps the pole of a real zeta one half-width from the panel),
    on |h| <= H = min(10 sqrt(q), 2 H_flat), H_flat where g is flat to 1e-17
    (:func:`~freeness_lab.theory.meanfield.d2_law`). When H = 2 H_flat, D is tapered to 0
    on H_flat < |s| < H; the Gaussian mass beyond +-H sits at g(+-H). Moments are those of ``d2``.

    Parameters
    ----------
    d2 : D2Law
        The law of D^2 for a smooth activation (no atoms).

    Attributes
    ----------
    stationary_values, limit_values : ndarray
        Where the density may be singular inside (0, max g]: g at its stationary points
        (inverse square roots) and its positive limits at +-infinity (SiLU, GELU: 1, where
        GELU's density is ~ (t - 1)^(1/q - 1) on the right); values below 1e-12 max g are left
        to the singularity at 0.
    tail_values : ndarray
        g(-H), g(H) when positive: where the Gaussian tails beyond +-H sit.
    nodes, weights : complex ndarray
        The contour rule: G(zeta) = sum_j weights_j / (zeta - nodes_j), Im zeta >= 0, and
        psi(z) = sum_j weights_j z nodes_j / (1 - z nodes_j), Im z <= 0.
    """

    def __init__(self, d2: D2Law):
        if len(d2.atoms):
            raise ValueError(f"d2: must be the law of phi'(h)^2 for a smooth phi; "
                             f"{d2.activation} has atoms")
        self.d2 = d2
        act = get_activation(d2.activation)
        self._dphi = _COMPLEX_DPHI.get(act.name, act.dphi)
        self._dphi_minus_one = _COMPLEX_DPHI_MINUS_ONE.get(act.name)
        self.nodes, self.weights = self._contour_rule()

    def __repr__(self) -> str:
        return f"SmoothD2Law({self.d2.activation}, q={self.d2.q:.6g})"

    def g(self, h: np.ndarray) -> np.ndarray:
        """g(h) = phi'(h)^2 for real or complex h."""
        return self._dphi(h) ** 2

    def _derivatives(self, s: np.ndarray) -> tuple[np.ndarray, ...]:
        """(g, g', g'', g''') at real s; the derivatives by Cauchy's integral formula on a
        circle (trapezoidal rule, spectrally accurate for g analytic in the disc)."""
        theta = 2 * np.pi * np.arange(_CAUCHY_POINTS) / _CAUCHY_POINTS
        circle = _CAUCHY_RADIUS * np.exp(1j * theta)
        points = s[:, None] + circle
        vals = self.g(points)
        if self._dphi_minus_one is not None:  # g - 1 for s > 0: same derivatives
            dev = self._dphi_minus_one(points[s > 0])
            vals[s > 0] = dev * (dev + 2.0)
        out = [self.g(s).real]
        for k in (1, 2, 3):
            coef = (vals * np.exp(-1j * k * theta)).mean(1).real
            out.append(math.factorial(k) * coef / _CAUCHY_RADIUS**k)
        return tuple(out)

    def _rate(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The deformation rate r = sign(g') sqrt((g'/g)^2 + (g''/g')^2) and r' at real s.

        |r| is the inverse of the length over which g moves by a fraction of its distance
        to the nearest value it approaches: its zero (g'/g, e.g. the tanh tails), a
        stationary value (g''/g' ~ 1/(s - p)) or an asymptote (g''/g' ~ -s in the SiLU and
        GELU tails, where g -> 1 and g'/g -> 0). r = 0 where g underflows.
        """
        g, d1, d2, d3 = self._derivatives(s)
        ok = (g > 1e-280) & (d1 != 0)
        g, d1 = np.where(ok, g, 1.0), np.where(ok, d1, 1.0)
        a, b = d1 / g, d2 / d1
        da, db = d2 / g - a**2, d3 / d1 - b**2
        norm = np.hypot(a, b)
        r = np.where(ok, np.sign(d1) * norm, 0.0)
        dr = np.where(ok, np.sign(d1) * (a * da + b * db) / norm, 0.0)
        return r, dr

    def _stationary_points(self, H: float) -> np.ndarray:
        """Zeros of g' in (-H, H): sign changes on a fine grid, refined by Brent's method."""
        grid = np.linspace(-H, H, 4001)

        def dg(s):
            return self._derivatives(np.atleast_1d(np.asarray(s, dtype=float)))[1]

        vals = np.where(self.g(grid).real > 1e-280, dg(grid), 0.0)
        out = []
        for i in np.nonzero(vals[:-1] * vals[1:] < 0)[0]:
            out.append(optimize.brentq(lambda s: dg(s)[0], grid[i], grid[i + 1], xtol=1e-15))
        return np.unique(out)

    def _deformation(self, s: np.ndarray, *, taper: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """D(s) = c r / (r^2 + kappa^2) T(s), D'(s) and r (r: :meth:`_rate`).

        T = 1, except when the rule stops at H = 2 H_flat (g flat to 1e-17 beyond H_flat):
        there T = cos^2(pi/2 (|s| - H_flat) / (H - H_flat)) on H_flat < |s| < H brings the
        contour back to the real axis at +-H, where the Gaussian tails are attached as real
        nodes (g is constant there to 1e-17, so the contour's shape does not matter).
        """
        r, dr = self._rate(s)
        den = r**2 + self._kappa2
        D, dD = _DEFORM_C * r / den, _DEFORM_C * dr * (self._kappa2 - r**2) / den**2
        if taper and self._taper_from is not None:
            a, H = self._taper_from, self._H
            theta = 0.5 * math.pi * np.clip((np.abs(s) - a) / (H - a), 0.0, 1.0)
            slope = np.where(np.abs(s) > a, 0.5 * math.pi / (H - a) * np.sign(s), 0.0)
            D, dD = D * np.cos(theta) ** 2, dD * np.cos(theta) ** 2 - D * np.sin(2 * theta) * slope
        return D, dD, r

    def _panels(self, H: float, stationary: np.ndarray) -> np.ndarray:
        """Panel edges on [-H, H]: graded (ratio 2) toward the stationary points, then split
        until no wider than min(1/4, sqrt(q)/2, 1/(2 |r|), 2 |D|) at their midpoints.

        For real zeta = g(s0) the integrand has a pole at distance |D(s0)| from the real
        s-axis; a panel no wider than 2 |D| keeps it one half-width away, where 16-point
        Gauss-Legendre converges like (1 + sqrt 2)^-32 ~ 1e-12 (the bound matters where g
        is nearly linear: r, hence D, is small there).
        """
        sq = math.sqrt(self.d2.q)
        edges = [-H, H, *stationary]
        if self._taper_from is not None:  # the taper's second derivative jumps there
            edges += [-self._taper_from, self._taper_from]
        for p in stationary:
            # down to the local rule's panel at a double zero of g
            floor = (_ZERO_LOCAL if p in self._zeros else _GRADING_FLOOR) * sq
            for side in (-1.0, 1.0):
                d = H
                while d > floor:
                    edges.append(p + side * d)
                    d *= 0.5
                if p in self._zeros:
                    edges.append(p + side * _ZERO_LOCAL * sq)
        edges = np.unique(np.clip(edges, -H, H))
        edges = edges[~np.isin(edges, self._zeros)]
        width_max = min(0.25, 0.5 * sq)
        for _ in range(60):
            mid = 0.5 * (edges[1:] + edges[:-1])
            D, _, rate = self._deformation(mid, taper=False)
            limit = np.minimum(width_max, 0.5 / np.maximum(np.abs(rate), 1e-300))
            limit = np.minimum(limit, np.where(D != 0, 2.0 * np.abs(D), np.inf))
            # the panels touching a stationary point are graded already (r ~ 1 / |s - p|
            # would split them down to rounding)
            graded = np.isin(edges[:-1], stationary) | np.isin(edges[1:], stationary)
            wide = (np.diff(edges) > limit) & ~self._in_local(mid) & ~graded
            if not wide.any():
                break
            edges = np.unique(np.concatenate([edges, mid[wide]]))
        return edges

    def _contour_rule(self) -> tuple[np.ndarray, np.ndarray]:
        q = self.d2.q
        # beyond twice the point where g is flat to 1e-17 the mass sits at g(+-H) (< 1e-34
        # for tanh, erf, sigmoid): a cheaper rule, and (log g)' there is rounding noise
        flat = _flat_beyond(self.d2.activation)
        H = min(Z_CUT * math.sqrt(q), 2.0 * flat)
        self._H = H
        self._taper_from = flat if H == 2.0 * flat else None
        stationary = self._stationary_points(H)
        ends = self.g(np.concatenate([stationary, [-H, H]])).real
        # singular values of the density: stationary values and the limits at +-infinity
        # (those below 1e-12 of the top belong to the singularity at 0)
        top = ends.max()
        self.stationary_values = np.unique(ends[:-2][ends[:-2] > 1e-12 * top])
        limits = get_activation(self.d2.activation).dphi(np.array([-1e4, 1e4])) ** 2
        self.limit_values = np.unique(limits[limits > 1e-12 * top])
        self._range = float(ends.min()), float(ends.max())
        # kappa^2 from the extrema of g with g > 0; at a double zero of g (phi' = 0: SiLU,
        # GELU) (log g)'' is infinite and D ~ c (s - h0) / sqrt 5 turns the contour there
        nonzero = self.g(stationary).real > _ZERO_OF_G * ends.max()
        extrema, self._zeros = stationary[nonzero], stationary[~nonzero]
        curv = np.abs(self._log_curvature(extrema))
        self._kappa2 = float(np.max(curv[np.isfinite(curv)], initial=1.0))
        edges = self._panels(H, stationary)
        t, wt = _CONTOUR_GL
        mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
        keep = ~self._in_local(mid)  # those panels come from the local rules
        mid, half = mid[keep], half[keep]
        s = (mid[:, None] + half[:, None] * t).ravel()
        ws = (half[:, None] * wt).ravel()
        D, dD, _ = self._deformation(s)
        h = s - 1j * D
        w = ws * (1.0 - 1j * dD) * np.exp(-0.5 * h * h / q) / math.sqrt(2 * math.pi * q)
        g = self.g(h)
        for p in self._zeros:
            g_loc, w_loc = self._zero_rule(p)
            g, w = np.concatenate([g, g_loc]), np.concatenate([w, w_loc])
        tail = special.ndtr(-H / math.sqrt(q))
        # the tails sit at g(+-H): real nodes, i.e. poles of G on the axis, which the support
        # quadrature of a single scaled factor cuts at (tail_values)
        tails = self.g(np.array([-H, H])).real
        self.tail_values = np.unique(tails[tails > 0])
        nodes = np.concatenate([g, tails.astype(complex)])
        weights = np.concatenate([w, [tail, tail]])
        return nodes, weights / self.d2.weights.sum()

    def _in_local(self, s: np.ndarray) -> np.ndarray:
        """Whether s lies within the local rule of a double zero of g."""
        near = np.abs(s[:, None] - self._zeros) < _ZERO_LOCAL * math.sqrt(self.d2.q)
        return near.any(axis=1)

    def _zero_rule(self, h0: float) -> tuple[np.ndarray, np.ndarray]:
        """Contour rule on |s - h0| <= _ZERO_LOCAL sqrt(q) around a double zero h0 of g.

        In sigma = s - h0 the contour is h = h0 + sigma (1 - i k_pm) on either side,
        k_pm = D(h0 +- sigma_loc) / sigma_loc (continuous with the outer rule, on Plemelj's
        side as D ~ c sigma / sqrt 5 is), and g(h) = (sum_k b_k tau^k)^2, tau = h - h0, with
        b_k the Taylor coefficients of phi' at h0 (b_0 = phi'(h0) is rounding noise: the zero
        is taken at h0 exactly, which moves the law by ~1e-16). Panels are graded with ratio
        4 from sigma_loc down to _ZERO_GRADING_FLOOR sqrt(q) (16-point Gauss-Legendre on
        [a, 4a] with the singularity of 1/g at 0: error ~ 3^-32), and one panel covers
        [-floor, floor].

        Returns
        -------
        nodes, weights : complex ndarray
            g(h_j) and the weights p_q(h_j) h'(s_j) w_j.
        """
        q = self.d2.q
        sq = math.sqrt(q)
        loc = _ZERO_LOCAL * sq
        theta = 2 * np.pi * np.arange(2 * _CAUCHY_POINTS) / (2 * _CAUCHY_POINTS)
        vals = self._dphi(h0 + _CAUCHY_RADIUS * np.exp(1j * theta))
        k = np.arange(_ZERO_TAYLOR_TERMS + 1)
        b = (vals[None, :] * np.exp(-1j * np.outer(k, theta))).mean(1).real
        b = b / _CAUCHY_RADIUS**k
        b[0] = 0.0
        levels = int(math.ceil(math.log(_ZERO_LOCAL / _ZERO_GRADING_FLOOR, _ZERO_RATIO)))
        ends = loc * _ZERO_RATIO ** -np.arange(levels + 1.0)
        t, wt = _CONTOUR_GL
        slope_r = self._deformation(np.array([h0 + loc]))[0][0] / loc
        slope_l = self._deformation(np.array([h0 - loc]))[0][0] / -loc
        nodes, weights = [], []
        for sign, slope in ((1.0, slope_r), (-1.0, slope_l)):
            lo, hi = ends[1:], ends[:-1]
            sigma = sign * (0.5 * (lo + hi)[:, None] + 0.5 * (hi - lo)[:, None] * t).ravel()
            ws = (0.5 * (hi - lo)[:, None] * wt).ravel()
            if sign > 0:  # the middle panel [-floor, floor], on the right side's slope
                sigma = np.concatenate([sigma, ends[-1] * t])
                ws = np.concatenate([ws, ends[-1] * wt])
            tau = sigma * (1.0 - 1j * slope)
            dphi = np.polynomial.polynomial.polyval(tau, b)
            h = h0 + tau
            nodes.append(dphi * dphi)
            weights.append(ws * (1.0 - 1j * slope) * np.exp(-0.5 * h * h / q)
                           / math.sqrt(2 * math.pi * q))
        return np.concatenate(nodes), np.concatenate(weights)

    def _log_curvature(self, s: np.ndarray) -> np.ndarray:
        """(log g)'' = g''/g - (g'/g)^2 (infinite at zeros of g)."""
        g, d1, d2, _ = self._derivatives(s)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(g > 0, d2 / g - (d1 / g) ** 2, np.inf)

    @property
    def nodes_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The complex contour rule (nodes, weights) (valid for psi(z), Im z <= 0)."""
        return self.nodes, self.weights

    def _moments(self, n: int) -> np.ndarray:
        """mu_1..mu_n from the real quadrature of ``d2``, normalized to mass 1."""
        return self.d2.moments(n) / self.d2.weights.sum()

    def _cauchy(self, zeta: np.ndarray) -> np.ndarray:
        """G(zeta) for zeta in the closed upper half-plane, the real axis included."""
        return (self.weights / (zeta[..., None] - self.nodes)).sum(-1)

    def _continuous_intervals(self) -> np.ndarray:
        return np.array([self._range])  # g is continuous: its range is one interval

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-Im G(x + i0) / pi, by the contour rule evaluated on the real axis."""
        return -self._cauchy(x.astype(complex)).imag / math.pi, np.ones(x.shape, dtype=bool)

    def support(self) -> tuple[float, float]:
        """(min g, max g) over |h| <= H (at the stationary points of g or at +-H)."""
        return self._range


@functools.cache
def _dphi_has_zero(name: str) -> bool:
    """Whether phi' changes sign on [-20, 20] (SiLU, GELU: g = phi'^2 has a double zero)."""
    d = get_activation(name).dphi(np.linspace(-20.0, 20.0, 4001))
    return bool(np.any(d[:-1] * d[1:] < 0))


def d2_factor(d2: D2Law, *, near_support: bool = True
              ) -> DiscreteLaw | SmoothD2Law | QuadratureLaw:
    """The law of D^2 as a building block.

    Exact atoms for a piecewise-linear phi. For a smooth phi, with ``near_support`` (the
    default): the push-forward law with its contour rule (:class:`SmoothD2Law`), whose G is
    accurate on and near the support (one stationary point of g = phi'^2 for tanh, erf,
    sigmoid; three for SiLU and GELU, one a double zero of g). With ``near_support=False``:
    the real quadrature of ``d2`` as a :class:`QuadratureLaw`: accurate where G is evaluated
    away from the support, and 5 to 20 times cheaper. Networks with Gaussian weights
    qualify: the Marchenko-Pastur factor of every layer keeps the subordination points of
    the D^2 factors off their support (checked by the density-vs-series-moments tests of
    ``tests/test_newton.py``) -- except for a phi' with a zero (SiLU, GELU): the law then
    has a density ~ t^(-1/2) at 0, a real quadrature's smallest node cuts it off, and the
    subordination points of the D^2 factors do approach 0 as x -> 0 (deep products put
    their mass at x ~ e^-1000); those always get the contour rule.
    """
    if len(d2.atoms):
        return DiscreteLaw(d2.atoms[:, 0], d2.atoms[:, 1] / d2.atoms[:, 1].sum())
    if near_support or _dphi_has_zero(d2.activation):
        return SmoothD2Law(d2)
    nodes, weights = d2.nodes.copy(), d2.weights / d2.weights.sum()
    # the Gaussian tails beyond the flat region are lumped at phi'(+-inf)^2, which may be 0:
    # a spurious atom at 0 that would give the product an atom at 0; it moves to the
    # smallest positive node
    zero = nodes == 0
    if zero.any() and (~zero).any():
        smallest = np.argmin(np.where(zero, np.inf, nodes))
        weights[smallest] += weights[zero].sum()
        nodes, weights = nodes[~zero], weights[~zero]
    return QuadratureLaw(nodes, weights, label=f"{d2.activation}, q={d2.q:.6g}")
