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
* :class:`QuadratureLaw` -- a continuous law given by a quadrature (nodes, weights), e.g. the
  law of phi'(h)^2 for a smooth phi (:func:`d2_factor`).

Explicit S-transforms are exposed as *log-terms*: log S(m) = const + sum_j e_j log(alpha_j +
beta_j m) with alpha_j > 0, beta_j >= 0, which the Newton solver uses to eliminate the
factor's subordination unknown (:mod:`freeness_lab.theory.newton`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.meanfield import D2Law
from freeness_lab.theory.series import moments_to_s

#: log S(m) = const + sum_j e_j log(alpha_j + beta_j m): (const, rows (e_j, alpha_j, beta_j))
LogTerms = tuple[float, np.ndarray]


def _empty_atoms() -> np.ndarray:
    return np.empty((0, 2))


class SpectralLaw:
    """Base class of a law on [0, inf): atoms plus an absolutely continuous part.

    Subclasses provide :meth:`moments`, :meth:`cauchy` and :attr:`atoms`; the others have
    generic implementations here. ``log_s_terms`` is ``None`` unless the S-transform is an
    explicit product of powers of affine functions of m.
    """

    #: rows (location, mass)
    atoms: np.ndarray = _empty_atoms()

    def moments(self, n: int) -> np.ndarray:
        """m_1..m_n, m_k = int t^k dmu(t)."""
        raise NotImplementedError

    def cauchy(self, zeta: np.ndarray) -> np.ndarray:
        """G(zeta) = int dmu(t) / (zeta - t) for zeta off the support (upper half-plane)."""
        raise NotImplementedError

    def density(self, x: np.ndarray) -> np.ndarray:
        """Density of the absolutely continuous part (atoms excluded)."""
        raise NotImplementedError(f"{type(self).__name__} has no density")

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
        """psi(z) = sum_k m_k z^k = (1/z) G(1/z) - 1, for z in the lower half-plane."""
        z = np.asarray(z, dtype=complex)
        zeta = 1.0 / z
        return zeta * self.cauchy(zeta) - 1.0

    def s_series(self, n: int) -> np.ndarray:
        """s_0..s_{n-1}, the Taylor coefficients of S at m = 0 (from the exact moments)."""
        return moments_to_s(self.moments(n))

    def s_transform(self, m: np.ndarray) -> np.ndarray:
        """S(m), for laws with an explicit S-transform."""
        terms = self.log_s_terms
        if terms is None:
            raise NotImplementedError(f"{type(self).__name__}: S-transform has no closed form; "
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

    def moments(self, n: int) -> np.ndarray:
        k = np.arange(1, n + 1)
        return np.power.outer(self.atoms[:, 0], k).T @ self.atoms[:, 1]

    def cauchy(self, zeta: np.ndarray) -> np.ndarray:
        zeta = np.asarray(zeta, dtype=complex)
        return (self.atoms[:, 1] / (zeta[..., None] - self.atoms[:, 0])).sum(-1)

    def density(self, x: np.ndarray) -> np.ndarray:
        """Zero: a discrete law has no continuous part."""
        return np.zeros(np.shape(x))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(X <= x)."""
        return self._atom_cdf(x)

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

    def moments(self, n: int) -> np.ndarray:
        c, s = self.ratio, self.scale
        return np.array([s**k * sum(narayana(k, j) * c ** (j - 1) for j in range(1, k + 1))
                         for k in range(1, n + 1)], dtype=float)

    def cauchy(self, zeta: np.ndarray) -> np.ndarray:
        zeta = np.asarray(zeta, dtype=complex)
        lo, hi = self.edges
        c, s = self.ratio, self.scale
        root = np.sqrt(zeta - lo) * np.sqrt(zeta - hi)  # the branch ~ zeta at infinity
        return (zeta - s * (1 - c) - root) / (2 * s * c * zeta)

    def density(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        lo, hi = self.edges
        inside = (x > lo) & (x < hi)
        xs = np.where(inside, x, 0.5 * (lo + hi))
        rho = np.sqrt((hi - xs) * (xs - lo)) / (2 * math.pi * self.scale * self.ratio * xs)
        return np.where(inside, rho, 0.0)

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

    def moments(self, n: int) -> np.ndarray:
        k = np.arange(1, n + 1)
        return np.power.outer(self.nodes, k).T @ self.weights

    def cauchy(self, zeta: np.ndarray) -> np.ndarray:
        zeta = np.asarray(zeta, dtype=complex)
        return (self.weights / (zeta[..., None] - self.nodes)).sum(-1)

    def support(self) -> tuple[float, float]:
        """(min node, max node)."""
        return float(self.nodes.min()), float(self.nodes.max())


def d2_factor(d2: D2Law) -> DiscreteLaw | QuadratureLaw:
    """The law of D^2 as a building block: exact atoms (piecewise-linear phi) or quadrature."""
    if len(d2.atoms):
        return DiscreteLaw(d2.atoms[:, 0], d2.atoms[:, 1] / d2.atoms[:, 1].sum())
    nodes, weights = d2.nodes.copy(), d2.weights / d2.weights.sum()
    # the Gaussian tails beyond the flat region are lumped at phi'(+-inf)^2, which is 0 for
    # tanh, erf, sigmoid: a spurious atom at 0 (mass ~1e-23) that would give the product an
    # atom at 0. It moves to the smallest positive node (moments change by < 1e-23 t_min).
    zero = nodes == 0
    if zero.any() and (~zero).any():
        smallest = np.argmin(np.where(zero, np.inf, nodes))
        weights[smallest] += weights[zero].sum()
        nodes, weights = nodes[~zero], weights[~zero]
    return QuadratureLaw(nodes, weights, label=f"{d2.activation}, q={d2.q:.6g}")
