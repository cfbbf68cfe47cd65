"""The law of a free product: exact moments by series, Belinschi atoms, density by Newton.

:class:`FreeProductLaw` is the :class:`~freeness_lab.theory.density.solved.SolvedLaw` of a
:class:`~freeness_lab.theory.products.free_product.FreeProduct`; :func:`free_product` builds
one from building-block laws.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from freeness_lab.theory.density.solved import N_SERIES, SolvedLaw
from freeness_lab.theory.errors import TheoryUnavailable
from freeness_lab.theory.laws import MarchenkoPastur, QuadratureLaw, SmoothD2Law, SpectralLaw
from freeness_lab.theory.newton import ProductSystem
from freeness_lab.theory.products.free_product import Factor, FreeProduct, one_factor_of
from freeness_lab.theory.series import series_exp

__all__ = ["FreeProductLaw", "free_product"]


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
        self._moment_cache: dict[int, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"FreeProductLaw({self.label or len(self.product.factors)} factors)"

    def _moments(self, n: int) -> np.ndarray:
        """The product's series moments, computed once per n (per instance)."""
        if n not in self._moment_cache:
            self._moment_cache[n] = self.product.moments(n)
        return self._moment_cache[n]

    @functools.cached_property
    def scale(self) -> float:
        """Window scale from the normalized moments (no overflow for deep, high-gain
        products): m_1 max_k (m_k / m_1^k)^{1/k}, k <= 24."""
        if self.product.degenerate:
            return super().scale
        k = np.arange(1, N_SERIES + 1)
        m, log_mean = self.product.normalized_moments(N_SERIES)
        return float(np.exp(log_mean) * np.max(np.abs(m) ** (1.0 / k)))

    def singular_points(self) -> tuple[np.ndarray, np.ndarray]:
        """A single D^2 factor of a smooth phi times point masses (orthogonal weights, depth
        1) is a scaled push-forward law: its density is singular at the scaled stationary
        values of g = phi'^2 (inverse square roots) and, on their right, at its positive
        limits at +-infinity (GELU: rho ~ (x - 1)^(1/q - 1)), and its contour rule's tail
        nodes (poles on the axis; the mass above them spans many decades, as at 0). Times a
        Marchenko-Pastur factor too (Gaussian weights, depth 1), the scaled stationary values
        are kept as cuts."""
        one = one_factor_of(SmoothD2Law, self.product.factors)
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
            # stationary values (GELU: 16-point panels across them miss 1.6e-6 of the mass)
            return others[0].law.scale * scale * nu.stationary_values, np.empty(0)
        return np.empty(0), np.empty(0)

    def support_bound(self) -> float:
        """prod_i b_i^{k_i}, b_i the support bound of factor i (the norm of a product of
        positive operators is at most the product of their norms); the support itself where
        a factor has an argument scale or the product extra S-terms (rectangular)."""
        extra, factors = self.product.extra, self.product.factors
        if len(np.reshape(extra.rows, (-1, 3))) or extra.const or any(f.scale != 1.0
                                                                       for f in factors):
            return self.support()[1]
        return math.prod(f.law.support_bound() ** f.power for f in factors)

    def build_system(self) -> ProductSystem:
        one = one_factor_of(QuadratureLaw, self.product.factors)
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
