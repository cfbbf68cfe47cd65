"""The interface of a spectral law: atoms plus an absolutely continuous part.

A law mu on [0, inf) is described by its atoms (location, mass) and the transforms

    G(zeta)  = int dmu(t) / (zeta - t)                         Cauchy transform,
    psi(z)   = int z t / (1 - z t) dmu(t) = sum_k m_k z^k        moment transform,
               psi(z) = (1/z) G(1/z) - 1,
    S(m)     = chi(m) (1 + m) / m,  chi = psi^{-1}              S-transform.

The density of the continuous part is -Im G(x + i 0) / pi with the atoms' poles removed
(Stieltjes inversion). The interface is modelled on ``scipy.stats`` distributions:
``moments(n)``, ``density(x)``, ``cdf(x)``, ``quantile(p)``, ``support()``, ``atoms``
(conventions: ``docs/conventions.md``, section "Objects and conventions").

Explicit S-transforms are exposed as log-terms (:class:`~freeness_lab.theory.log_terms.
LogTerms`), which the Newton solver uses to eliminate the factor's subordination unknown
(:mod:`freeness_lab.theory.newton`).
"""

from __future__ import annotations

import functools

import numpy as np

from freeness_lab.theory.checks import (
    moment_order,
    probabilities,
    real_points,
    spectral_points,
)
from freeness_lab.theory.errors import TheoryUnavailable
from freeness_lab.theory.log_terms import LogTerms
from freeness_lab.theory.newton.implicit import PsiRule
from freeness_lab.theory.newton.quadrature_rule import QuadratureRule
from freeness_lab.theory.series import moments_to_s

__all__ = ["SpectralLaw", "empty_atoms"]


def empty_atoms() -> np.ndarray:
    """No atoms: an empty (0, 2) array of rows (location, mass)."""
    return np.empty((0, 2))


class SpectralLaw:
    """Base class of a law on [0, inf): atoms plus an absolutely continuous part.

    The public methods -- :meth:`moments`, :meth:`cauchy`, :meth:`density`, :meth:`cdf`,
    :meth:`quantile` -- check their arguments here, once for every law
    (:mod:`freeness_lab.theory.checks`), and call the hooks a subclass implements:
    ``_moments(n)``, ``_cauchy(zeta)``, ``_density(x)``, ``_cdf(x)``, ``_partial_mean(x)``,
    ``_quantile(p)`` and
    ``_continuous_intervals()``. The contract they then guarantee:

    * ``moments(n)``: n an integer >= 1, else a ``ValueError`` naming ``n``;
    * NaN in gives NaN out, elementwise, in ``cauchy``, ``density``, ``cdf``,
      ``partial_mean`` and ``quantile`` (the hooks never see it); ``density(+-inf) = 0``,
      ``cdf(-inf) = 0``, ``cdf(inf) = 1``, ``partial_mean(-inf) = 0``,
      ``partial_mean(inf) = m_1``;
    * ``density`` is exactly 0 outside the support of the continuous part: at x < 0, in the
      gaps between its intervals and beyond its top edge (the hooks see only points inside);
    * ``cdf`` lies in [0, 1] (rounding of the hooks' quadratures is clipped);
    * ``quantile(p)``: p outside [0, 1] is a ``ValueError`` naming ``p`` (a number that is
      not a probability is the caller's mistake; NaN is a missing value);
    * a law without a density, cdf, partial mean or quantile raises
      :class:`~freeness_lab.theory.errors.TheoryUnavailable`, whatever the argument.

    Subclasses provide ``_moments``, ``_cauchy`` and :attr:`atoms`; the others are optional.
    ``log_s_terms`` is ``None`` unless the S-transform is an explicit product of powers of
    affine functions of m.
    """

    #: rows (location, mass)
    atoms: np.ndarray = empty_atoms()

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

    def partial_mean(self, x: np.ndarray) -> np.ndarray:
        """E[X; X <= x] = int_{[0, x]} t dmu(t), the first moment of the law below x.

        With it int_0^x F(t) dt = x F(x) - E[X; X <= x] (integration by parts), which gives
        the Wasserstein-1 distance of the law to an empirical law exactly.

        Parameters
        ----------
        x : array_like of float
            Points; NaN gives NaN, x = -inf gives 0, x = inf the mean.

        Returns
        -------
        ndarray of the shape of ``x``, in [0, m_1]
        """
        x = real_points(x)
        flat = x.ravel()
        finite = np.isfinite(flat)
        out = np.where(flat > 0, float(self.moments(1)[0]), 0.0)  # +-inf
        out[np.isnan(flat)] = np.nan
        # called even with no finite point: a law without it says so for any x
        out[finite] = np.clip(self._partial_mean(flat[finite]), 0.0, None)
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

    def _partial_mean(self, x: np.ndarray) -> np.ndarray:
        """E[X; X <= x] at finite points x."""
        raise TheoryUnavailable(f"{type(self).__name__}: no partial mean")

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

    @functools.cached_property
    def psi_rule(self) -> PsiRule:
        """psi(omega), 1 + psi and omega psi' for the Newton systems, where ``log_s_terms``
        is None: the clustered sums of ``nodes_weights`` (:class:`~freeness_lab.theory.
        newton.quadrature_rule.QuadratureRule`), built once per law."""
        return QuadratureRule(*self.nodes_weights)

    @property
    def rule_zero_mass(self) -> float:
        """The mass at 0 that ``psi_rule`` leaves out (its "1 + psi" is then 1 + psi minus
        it: :class:`~freeness_lab.theory.newton.implicit.ImplicitFactor`); 0 here."""
        return 0.0

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
        return terms.evaluate(m)

    def support_bound(self) -> float:
        """An upper bound of the support: its top, ``support()[1]``, by default (laws whose
        support costs a solve override it with a bound from their parts)."""
        support = getattr(self, "support", None)
        if support is None:
            raise TheoryUnavailable(f"{type(self).__name__}: no support")
        return float(support()[1])

    def atom_cdf(self, x: np.ndarray) -> np.ndarray:
        """The atoms' part of the cdf: the mass of the atoms at locations <= x."""
        if not len(self.atoms):
            return np.zeros(np.shape(x))
        return (self.atoms[:, 1] * (np.asarray(x)[..., None] >= self.atoms[:, 0])).sum(-1)

