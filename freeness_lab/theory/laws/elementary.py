"""The elementary building blocks: point masses, discrete laws, Marchenko-Pastur, quadratures.

* :func:`delta` -- the law of sigma^2 I, S = 1 / sigma^2;
* :class:`DiscreteLaw` -- finitely many atoms, e.g. the law of D^2 = phi'(h)^2 for a
  piecewise-linear phi (ReLU: {0: 1/2, 1: 1/2}); for {0: 1 - p, a: p},
  S(m) = (1 + m) / (a (p + m));
* :func:`bernoulli` -- (1 - p) delta_0 + p delta_a, a projection of trace p scaled by a;
* :class:`MarchenkoPastur` -- the law of W W^T, W of shape N_out x N_in with i.i.d. entries of
  variance s / N_in, ratio c = N_out / N_in: S(m) = 1 / (s (1 + c m)), moments
  m_k = s^k sum_{j=1}^k Narayana(k, j) c^{j-1};
* :class:`QuadratureLaw` -- a law given by a quadrature (nodes, weights).

Conventions: ``docs/conventions.md``, section "Objects and conventions".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.laws.base import SpectralLaw, empty_atoms
from freeness_lab.theory.log_terms import LogTerms

__all__ = ["DiscreteLaw", "MarchenkoPastur", "QuadratureLaw", "bernoulli", "check_atoms",
           "delta", "narayana"]


def check_atoms(locations: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Rows (location, mass) of the atoms, sorted, equal locations merged (their masses
    added), zero masses dropped; a ``ValueError`` for negative or non-finite locations,
    negative masses or a total other than 1.

    Merging keeps the law and its size small: an empirical law of M values that take few
    distinct values (phi'(h)^2 of ReLU: 0 and 1) becomes a two-atom law, whose S-transform
    is explicit, instead of a factor of M atoms for the Newton solver."""
    loc = np.atleast_1d(np.asarray(locations, dtype=float))
    mass = np.atleast_1d(np.asarray(masses, dtype=float))
    if loc.shape != mass.shape or loc.ndim != 1:
        raise ValueError("locations, masses: must be 1-d arrays of the same length")
    if np.any(loc < 0) or not np.all(np.isfinite(loc)):
        raise ValueError("locations: must be finite and >= 0 (laws on [0, inf))")
    if np.any(mass < 0) or abs(mass.sum() - 1.0) > 1e-12:
        raise ValueError(f"masses: must be >= 0 and sum to 1, got sum {mass.sum()!r}")
    keep = mass > 0
    merged, where = np.unique(loc[keep], return_inverse=True)  # sorted
    return np.column_stack([merged, np.bincount(where, mass[keep], len(merged))])


class DiscreteLaw(SpectralLaw):
    """A law with finitely many atoms sum_j p_j delta_{a_j}, a_j >= 0.

    psi(z) = sum_j p_j a_j z / (1 - a_j z). For one atom at a > 0, S = 1/a; for two atoms
    {0: 1 - p, a: p}, psi(z) = p a z / (1 - a z) gives chi(m) = m / (a (p + m)) and
    S(m) = (1 + m) / (a (p + m)). Other discrete laws have no closed-form S (the Newton
    solver then keeps a subordination unknown for them).
    """

    def __init__(self, locations: np.ndarray, masses: np.ndarray):
        self.atoms = check_atoms(locations, masses)

    @classmethod
    def empirical(cls, values: np.ndarray) -> DiscreteLaw:
        """The empirical law (1/n) sum_i delta_{v_i} of n values >= 0, equal values merged
        (an atom of mass k/n each: a two-valued phi'^2 gives an exact two-atom law)."""
        loc, count = np.unique(np.asarray(values, dtype=float).ravel(), return_counts=True)
        if not loc.size:
            raise ValueError("values: must hold at least one value")
        return cls(loc, count / count.sum())

    def __repr__(self) -> str:
        if len(self.atoms) > 8:
            return f"DiscreteLaw({len(self.atoms)} atoms in [{self.atoms[0, 0]:.6g}, " \
                   f"{self.atoms[-1, 0]:.6g}])"
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

    def _below(self, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """sum of ``weights`` over the atoms at locations <= x (sorted atoms: one
        ``searchsorted``, so that an empirical law of many atoms costs O(log K) per point)."""
        cum = np.concatenate([[0.0], np.cumsum(weights)])
        return cum[np.searchsorted(self.atoms[:, 0], x, side="right")]

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return self._below(x, self.atoms[:, 1])

    def _partial_mean(self, x: np.ndarray) -> np.ndarray:
        return self._below(x, self.atoms[:, 0] * self.atoms[:, 1])

    def _quantile(self, p: np.ndarray) -> np.ndarray:
        """The smallest atom whose cumulative mass reaches p (p = 0: the smallest atom); a
        cumulative mass within the rounding of its sum (8 eps per atom) of p reaches it (ten
        atoms of mass 0.1 sum to 0.7999999999999999 at the eighth)."""
        cum = np.cumsum(self.atoms[:, 1])
        cum[-1] = 1.0  # the masses sum to 1 up to rounding
        slack = 8.0 * np.finfo(float).eps * np.arange(1, cum.size + 1)
        return self.atoms[np.minimum(np.searchsorted(cum + slack, p, side="left"),
                                     cum.size - 1), 0]

    def support(self) -> tuple[float, float]:
        """(smallest atom, largest atom)."""
        return float(self.atoms[0, 0]), float(self.atoms[-1, 0])

    @property
    def log_s_terms(self) -> LogTerms | None:
        loc, mass = self.atoms[:, 0], self.atoms[:, 1]
        if len(loc) == 1 and loc[0] > 0:
            return LogTerms(-math.log(loc[0]), np.empty((0, 3)))
        if len(loc) == 2 and loc[0] == 0:
            a, p = loc[1], mass[1]
            return LogTerms(-math.log(a), np.array([[1.0, 1.0, 1.0], [-1.0, p, 1.0]]))
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
        return empty_atoms()

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
        return LogTerms(-math.log(self.scale), np.array([[-1.0, 1.0, self.ratio]]))


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
