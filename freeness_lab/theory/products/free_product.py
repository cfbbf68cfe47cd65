"""The free multiplicative convolution of building blocks: series moments, atoms, Newton system.

Moments (exact, by series; Voiculescu 1987, Pennington-Schoenholz-Ganguli 2018):

    log S_{boxtimes_i mu_i(a_i .)^{k_i}}(m) = sum_i k_i log S_i(a_i m)  (+ explicit terms),

so the product's moments follow from one sum of log-series and one series reversion, for any
number of factors (identical factors are a power; depth 1000 costs the same as depth 10). The
series are normalized (S(0) = 1, the mean kept as a log) so that deep products do not
overflow. Atoms by Belinschi's rule (:mod:`~freeness_lab.theory.products.atoms`); the Newton
system folds the explicit factors into log-terms and keeps a subordination unknown for the
others (:class:`~freeness_lab.theory.newton.product.ProductSystem`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.checks import moment_order
from freeness_lab.theory.laws import SpectralLaw
from freeness_lab.theory.log_terms import LogTerms, no_terms
from freeness_lab.theory.newton import ImplicitFactor, ProductSystem
from freeness_lab.theory.products.atoms import power_atoms, product_atoms
from freeness_lab.theory.series import (
    moments_to_s,
    rescale_argument,
    reversion,
    s_to_moments,
    series_exp,
    series_log,
)

__all__ = ["Factor", "FreeProduct", "one_factor_of"]


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
                folded = terms.scaled(f.power, f.scale)
                const += folded.const
                rows.append(folded.rows)
            else:
                implicit.append(ImplicitFactor(f.law.psi_rule, float(f.power), float(f.scale),
                                               reversion(f.law.moments(8)), f.law.rule_zero_mass))
        return ProductSystem(LogTerms(const, np.concatenate(rows)), implicit,
                             self.moments(8), zero_mass)


def one_factor_of(kind: type, factors: list[Factor] | tuple[Factor, ...]
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

