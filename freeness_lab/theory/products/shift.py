"""The Hayase-Karakida shift laws: c + X (:class:`ShiftedLaw`) and the shift chain.

mu_1 = delta_{start}, mu_{l+1} = c_l + (F_l boxtimes mu_l)^{(r_l)} (:class:`ShiftChainLaw`,
one :class:`ShiftLayer` per step; ^{(r)} is the change of dimension of a rectangular layer,
psi -> r psi, identity for r = 1): moments layer by layer (S-series of mu_l times that of F_l,
reversion, times r_l, binomial shift), atoms by Belinschi's rule, the change of dimension, then
the shift, density by the block-tridiagonal Newton system
(:class:`~freeness_lab.theory.newton.chain.ChainSystem`). The shift X -> c + X acts on moments
binomially and moves atoms: (c + mu)({c + a}) = mu({a}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.checks import moment_order
from freeness_lab.theory.density.pointwise import PointwiseLaw
from freeness_lab.theory.density.solved import SolvedLaw
from freeness_lab.theory.errors import TheoryUnavailable
from freeness_lab.theory.laws import SmoothD2Law, SpectralLaw
from freeness_lab.theory.log_terms import LogTerms
from freeness_lab.theory.newton import ChainLayer, ChainSystem, ImplicitFactor
from freeness_lab.theory.products.atoms import change_dimension, power_atoms, product_atoms
from freeness_lab.theory.products.free_product import Factor, FreeProduct, one_factor_of
from freeness_lab.theory.series import (
    moments_to_s,
    reversion,
    s_to_moments,
    series_exp,
    series_log,
    shift_moments,
)

__all__ = ["ShiftChainLaw", "ShiftLayer", "ShiftedLaw"]


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

    def _partial_mean(self, x: np.ndarray) -> np.ndarray:
        # E[c + Y; c + Y <= x] = c F_Y(x - c) + E[Y; Y <= x - c]
        return (self.shift * self.inner._cdf(x - self.shift)
                + self.inner._partial_mean(x - self.shift))

    def _quantile(self, p: np.ndarray) -> np.ndarray:
        return self.inner._quantile(p) + self.shift

    def support(self) -> tuple[float, float]:
        lo, hi = self.inner.support()
        return lo + self.shift, hi + self.shift

    def intervals(self) -> np.ndarray:
        return self.inner.intervals() + self.shift

    def support_bound(self) -> float:
        return self.shift + self.inner.support_bound()

    def pointwise(self, tol: float) -> PointwiseLaw:
        """This law by contour integrals at given points (:class:`~freeness_lab.theory.
        density.pointwise.PointwiseLaw`): the inner law's, moved by the shift."""
        return PointwiseLaw(self, self.inner, self.shift, tol=tol, label=self.label)

    def quadrature(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, w, rho = self.inner.quadrature()
        return x + self.shift, w, rho

    def continuous_mass(self) -> float:
        return self.inner.continuous_mass()

    def density_moments(self, n: int) -> np.ndarray:
        """m_1..m_n of c + X from the inner density and atoms."""
        return self.inner.density_moments(n, shift=self.shift)


@dataclass(frozen=True)
class ShiftLayer:
    """One step mu_{l+1} = shift + (factors boxtimes mu_l)^{(ratio)} of a shift chain.

    ``ratio`` r = N_l / N_{l+1} > 0 moves the product from dimension N_l to N_{l+1} before the
    shift: the same nonzero spectrum, psi -> r psi (moments times r, the mass at 0 becomes
    1 - r (1 - p_0), the other masses times r). r > 1 (a contracting layer) needs the
    product's mass at 0 to be at least 1 - 1/r, as the rank of W^T W makes it; 1: square.
    """

    factors: tuple[Factor, ...]
    shift: float
    ratio: float = 1.0

    def __post_init__(self) -> None:
        if not (self.ratio > 0 and np.isfinite(self.ratio)):
            raise ValueError(f"ratio: must be a finite number > 0, got {self.ratio!r}")


class ShiftChainLaw(SolvedLaw):
    """mu_1 = delta_{start}, mu_{l+1} = c_l + (F_l boxtimes mu_l)^{(r_l)}: the Hayase-Karakida
    recursion (r_l = N_l / N_{l+1} the change of dimension of a rectangular layer, 1 square).

    Moments layer by layer (S-series of mu_l times that of F_l, reversion, times r_l, binomial
    shift); atoms by Belinschi's rule, the change of dimension, then the shift; density by the
    block-tridiagonal Newton system.

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
            if lay.ratio != 1:
                zero = float(atoms[atoms[:, 0] == 0, 1].sum())
                if 1.0 - lay.ratio * (1.0 - zero) < -1e-12:
                    raise ValueError(f"ratio: {lay.ratio} needs a mass >= 1 - 1/ratio at 0 "
                                     f"before the change of dimension, got {zero}")
                atoms = change_dimension(atoms, lay.ratio)
            self._zero_masses.append(float(atoms[atoms[:, 0] == 0, 1].sum()))
            atoms = np.column_stack([atoms[:, 0] + lay.shift, atoms[:, 1]])
        self.atoms = atoms
        self._moment_cache: dict[int, np.ndarray] = {}
        self.base_atom = self.layers[-1].shift if self.layers else 0.0

    def __repr__(self) -> str:
        return f"ShiftChainLaw({self.label or len(self.layers)} layers)"

    def layer_moments(self, n: int) -> np.ndarray:
        """Rows l = 0..L-1: moments m_1..m_n of mu_{l+1} (row 0: delta_start); n >= 1."""
        return self._layer_moments(moment_order(n))

    def _layer_moments(self, n: int) -> np.ndarray:
        """:meth:`layer_moments` for a checked n, computed once per n (per instance)."""
        if n not in self._moment_cache:
            self._moment_cache[n] = self._layer_moments_uncached(n)
        return self._moment_cache[n]

    def _layer_moments_uncached(self, n: int) -> np.ndarray:
        m = self.start ** np.arange(1, n + 1, dtype=float)
        rows = [m]
        for lay in self.layers:
            log_s = FreeProduct(list(lay.factors)).log_s_series(n) + series_log(moments_to_s(m))
            s0 = log_s[0]
            mom = s_to_moments(series_exp(log_s - np.eye(1, n)[0] * s0))
            mom = mom * np.exp(-s0 * np.arange(1, n + 1))
            if lay.ratio != 1:
                mom = lay.ratio * mom  # psi -> r psi
            m = shift_moments(mom, lay.shift)
            rows.append(m)
        return np.array(rows)

    def _moments(self, n: int) -> np.ndarray:
        return self._layer_moments(n)[-1]

    def support_bound(self) -> float:
        """b_1 = start, b_{l+1} = c_l + b_l prod_i b_i^{k_i} over the layer's factors (the
        norm of c + A H A^* is at most c + |A|^2 |H|)."""
        bound = self.start
        for lay in self.layers:
            bound = lay.shift + bound * math.prod(f.law.support_bound() ** f.power
                                                  for f in lay.factors)
        return bound

    def singular_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Orthogonal weights (every layer: one smooth D^2 law nu_l times point masses):
        mu_{l+1} = c_l + a_l nu_l boxtimes mu_l bends sharply at c_l + a_l t p, t a singular
        value of nu_l (stationary values, limits) and p one of mu_l's (its base included):
        panels across them lost up to 1e-3 of GELU's H_3 mass. Kept as cuts while there are
        at most 64 of them: power points (log panels on their right) where t is a limit
        (GELU's (x - 1)^(1/q - 1)) or p a power point, square-root points otherwise."""
        points, power = np.array([self.start]), np.array([False])
        for lay in self.layers:
            one = one_factor_of(SmoothD2Law, lay.factors)
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
        inside = points > self.base_atom
        return points[inside & ~power], points[inside & power]

    def build_system(self) -> ChainSystem:
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
                    nu = ImplicitFactor(f.law.psi_rule, 1.0, 1.0,
                                        reversion(f.law.moments(8)), f.law.rule_zero_mass)
                else:
                    folded = terms.scaled(f.power)
                    const += folded.const
                    rows.append(folded.rows)
            # far-field data: moments of Y_l = mu_{l+1} - shift and S_F series
            y_m = shift_moments(mom[l + 1], -lay.shift)
            fs = FreeProduct(list(lay.factors))
            s_f = series_exp(fs.log_s_series(2))
            layers.append(ChainLayer(LogTerms(const, np.concatenate(rows or
                                                                         [np.empty((0, 3))])),
                                     nu, prev_shift, lay.shift, self._zero_masses[l],
                                     (y_m[0], y_m[1]),
                                     (s_f[0], s_f[1]), lay.ratio))
            prev_shift = lay.shift
        return ChainSystem(layers)

    def _density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.layers:  # delta_start: no continuous part (and no system)
            return np.zeros(x.shape), np.ones(x.shape, dtype=bool)
        return super()._density(x)
