"""psi of several certified fits at once (:class:`RuleStack`): one evaluation per Newton step.

A free product of L laws of phi'(h)^2 (or a chain of L layers) evaluates psi of each law at
every Newton step: L calls on the same few dozen points, each paying numpy's per-call
overhead a dozen times over (classification, far field, fit, the levels near 0). Stacked,
the L columns go through each of these once: the tables of the L fits (centres, discs,
barycentric forms, Laurent coefficients, levels about 0) are padded to a common size, and
every point gathers the rows of its own column. Where a point falls in none of them (inside
a disc other than 0's, below the real axis, where Im G is below the floor) its rule sums it,
column by column, as :class:`~freeness_lab.theory.newton.rational_rule.RationalRule` does.

A single :class:`~freeness_lab.theory.newton.rational_rule.RationalRule` evaluates through a
stack of one: the same code, the same numbers. Clustered quadrature rules of one table
shape (the discrete laws of a trial's values), or small ones padded to one (the Gaussian
D^2 quadratures), stack their clusters instead
(:class:`~freeness_lab.theory.newton.quadrature_rule.ClusterStack`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from freeness_lab.theory.newton.quadrature_rule import ClusterStack, powers
from freeness_lab.theory.newton.zero_levels import ZeroLevels

__all__ = ["FAR_BATCH", "IM_FLOOR", "RuleStack"]

#: the fit answers only where |Im G| is at least this times max |G| on the boundary of its
#: region: its absolute error (at most FIT_TOL max |G|) is then at most 1e-7 of Im G
IM_FLOOR = 1e-4
#: a padded real node sits here (weight 0): its terms vanish without a division by zero
_FAR_NODE = -1e300
#: up to this many points beyond the fits' regions are summed against every rule's Laurent
#: coefficients in one product; more, rule by rule (:meth:`RuleStack._far_parts`)
FAR_BATCH = 400


class RuleStack:
    """(psi, 1 + psi, omega psi') of K rules at omega of shape (..., K), column k by rule k.

    Parameters
    ----------
    rules : list of PsiRule
        When every one is a fitted :class:`~freeness_lab.theory.newton.rational_rule.
        RationalRule`, their tables are stacked; when every one is a clustered
        :class:`~freeness_lab.theory.newton.quadrature_rule.QuadratureRule` that stack
        (:meth:`~freeness_lab.theory.newton.quadrature_rule.ClusterStack.fits`; a refused fit
        counts as its rule), their clusters (:class:`~freeness_lab.theory.
        newton.quadrature_rule.ClusterStack`: a network of refused fits gives its rules'
        density bit for bit); otherwise the fitted ones are stacked (when two or more) and
        each other column is evaluated by its own rule (a deep GELU network with one layer
        whose fit failed its certificate: 49 columns in one call, not 50 calls).
    """

    def __init__(self, rules: list):
        self.rules = list(rules)
        #: the fits answer where |Im G| >= im_floor max |G| (IM_FLOOR; :meth:`floor`)
        self.im_floor = IM_FLOOR
        # clustered quadrature rules only (discrete laws of a trial's values, the real
        # quadratures of D^2 laws, refused fits: their rules): their clusters stacked
        quadratures = [r.rule if getattr(r, "fitted", None) is False else r for r in self.rules]
        self._clusters = ClusterStack(quadratures) if ClusterStack.fits(quadratures) else None
        fitted = np.array([getattr(r, "fitted", False) is True for r in self.rules], bool)
        self.stacked = bool(self.rules) and bool(fitted.all())
        #: (columns of the fitted rules, their stack, the other columns) when only some are
        self._partial = None
        if not self.stacked:
            if self._clusters is None and fitted.sum() >= 2:
                cols = np.flatnonzero(fitted)
                self._partial = (cols, RuleStack([self.rules[k] for k in cols]),
                                 np.flatnonzero(~fitted))
            return
        R = self.rules
        K = len(R)
        self._centre = np.array([r.centre for r in R])
        self._radius = np.array([r.radius for r in R])
        self._scale = np.array([r.scale for r in R])
        self._fit_mass = np.array([r.fit_mass for r in R])
        self._far = np.stack([r.far for r in R])  # (K, FAR_TERMS, 3)
        # the same, (FAR_TERMS, 3 K): every column's sums by one matrix product
        self._far_rows = np.ascontiguousarray(self._far.transpose(1, 0, 2).reshape(
            self._far.shape[1], -1))
        # singular points and their discs, padded with NaN (never within a disc)
        S = max(len(r.singular) for r in R)
        self._sing = np.full((K, S), np.nan)
        self._disc = np.zeros((K, S))
        # barycentric forms, padded with weight 0 at a support point of their own
        M = max(r.terms for r in R)
        self._support = np.empty((K, M), dtype=complex)
        self._values = np.zeros((K, M), dtype=complex)
        self._bary = np.zeros((K, M), dtype=complex)
        A = max(len(r.atoms[0]) for r in R)
        self._atom_t = np.full((K, A), _FAR_NODE, dtype=complex)
        self._atom_w = np.zeros((K, A), dtype=complex)
        for k, r in enumerate(R):
            self._sing[k, :len(r.singular)] = r.singular
            self._disc[k, :len(r.singular)] = r.discs
            self._support[k] = r.support_points[0]
            self._support[k, :r.terms] = r.support_points
            self._values[k, :r.terms] = r.support_values
            self._bary[k, :r.terms] = r.bary_weights
            t, w = r.atoms
            self._atom_t[k, :len(t)], self._atom_w[k, :len(t)] = t, w
        # the levels about 0 (radius -1: the rule has none)
        zeros = [r.zero for r in R]
        self._zero_radius = np.array([-1.0 if z is None else r.zero_radius
                                      for r, z in zip(R, zeros, strict=True)])
        members = [z for z in zeros if z is not None]
        self._zero = (members[0] if len(members) == 1 else ZeroLevels.stack(members)
                      if members else None)
        self._member = np.cumsum([z is not None for z in zeros]) - 1

    @contextmanager
    def floor(self, im_floor: float) -> Iterator[None]:
        """The fits answer where |Im G| >= ``im_floor`` max |G| inside this block (a partial
        stack's fitted columns too): where only the complex value's relative accuracy
        matters, not that of a tiny imaginary part (the deep-mass comb along the imaginary
        axis, :mod:`~freeness_lab.theory.density.deep`)."""
        stacks = [self] + ([self._partial[1]] if self._partial is not None else [])
        saved = [st.im_floor for st in stacks]
        for st in stacks:
            st.im_floor = im_floor
        try:
            yield
        finally:
            for st, v in zip(stacks, saved, strict=True):
                st.im_floor = v

    def psi_parts(self, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(psi, 1 + psi, omega psi') at omega (shape (..., K)): the fits on their regions,
        the Laurent series beyond them, the levels about 0 in the disc at 0, each rule
        elsewhere."""
        K = len(self.rules)
        if self._clusters is not None:
            return self._clusters.psi_parts(omega)
        if self._partial is not None:
            cols, stack, others = self._partial
            om = np.asarray(omega, dtype=complex)
            out = [np.empty(om.shape, dtype=complex) for _ in range(3)]
            for o, v in zip(out, stack.psi_parts(om[..., cols]), strict=True):
                o[..., cols] = v
            for k in others:
                for o, v in zip(out, self.rules[k].psi_parts(om[..., k]), strict=True):
                    o[..., k] = v
            return tuple(out)
        if not self.stacked:
            parts = [r.psi_parts(omega[..., k]) for k, r in enumerate(self.rules)]
            return tuple(np.stack(p, axis=-1) for p in zip(*parts, strict=True))
        shape = np.shape(omega)
        om = np.asarray(omega, dtype=complex).reshape(-1, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            zeta = 1.0 / om
        col = np.broadcast_to(np.arange(K), om.shape)
        far = ~(np.abs(zeta - self._centre) <= self._radius)  # omega = 0 included
        with np.errstate(invalid="ignore"):
            disc = (np.abs(zeta[..., None] - self._sing) < self._disc).any(-1)
        fit = ~far & (zeta.imag >= 0) & ~disc
        out = [np.empty(om.shape, dtype=complex) for _ in range(3)]
        if far.any():
            for o, v in zip(out, self._far_parts(om[far], col[far]), strict=True):
                o[far] = v
        if fit.any():
            *parts, g = self._fit_parts(zeta[fit], col[fit])
            for o, v in zip(out, parts, strict=True):
                o[fit] = v
            # the rule where Im G is too small for the fit's absolute error (near the real
            # axis outside the support, or where the density is tiny), or on a support point
            # of the barycentric form
            fit[fit] = ((np.abs(g.imag) >= self.im_floor * self._scale[col[fit]])
                        & np.logical_and.reduce([np.isfinite(p) for p in parts]))
        rest = ~far & ~fit
        zero = rest & (np.abs(zeta) <= self._zero_radius)
        if zero.any():
            for o, v in zip(out, self._zero.psi_parts(zeta[zero],
                                                      self._member[col[zero]]), strict=True):
                o[zero] = v
            rest &= ~zero
        for k in np.unique(col[rest]):
            here = rest & (col == k)
            for o, v in zip(out, self.rules[k].rule.psi_parts(om[here]), strict=True):
                o[here] = v
        return tuple(o.reshape(shape) for o in out)

    def _far_parts(self, omega: np.ndarray, col: np.ndarray):
        """(psi, 1 + psi, omega psi') by the Laurent series about each rule's centre c, in
        omega = 1 / zeta: x = 1 / (zeta - c) = omega / (1 - c omega) and
        zeta x = 1 / (1 - c omega), finite at omega = 0."""
        zx = 1.0 / (1.0 - self._centre[col] * omega)
        x = omega * zx
        y = x * (0.5 * self._radius[col])
        # |y| <= 1/2 and |A_k|, |B_k| <= sum |w|: n terms leave y_max^n of it, 2^-56 at most
        terms = self._far.shape[1]
        y_max = float(np.abs(y).max())
        n = terms if not y_max < 0.5 else int(min(terms, max(  # NaN: all terms
            2, math.ceil(terms * math.log(0.5) / math.log(max(y_max, 1e-300))))))
        # sum_k A_k y^k, B_k y^k, (k + 1) B_k y^k: a few points against every rule's
        # coefficients at once (one product, the column picked after), many rule by rule
        # (not the coefficients gathered per point: (P, n, 3) copied, 3x slower at P = 5000)
        yk = powers(y, n)
        if y.size <= FAR_BATCH:
            s = (yk.T @ self._far_rows[:n]).reshape(y.size, -1, 3)[np.arange(y.size), col].T
        else:
            s = np.empty((3, y.size), dtype=complex)
            for k in np.unique(col):
                at = np.nonzero(col == k)[0]
                s[:, at] = (yk[:, at].T @ self._far[k, :n]).T
        s0, s1, s2 = s
        return s1 * x, s0 * zx, s2 * x * zx

    def _fit_parts(self, zeta: np.ndarray, col: np.ndarray):
        """(psi, 1 + psi, omega psi') by the barycentric fits plus the real nodes, and G."""
        bary, values = self._bary[col], self._values[col]
        inv = 1.0 / (zeta[:, None] - self._support[col])
        bw = inv * bary
        den = bw.sum(1)
        g = (bw * values).sum(1) / den
        bwi = bw * inv
        dg = (-(bwi * values).sum(1) + g * bwi.sum(1)) / den
        t, w = self._atom_t[col], self._atom_w[col]
        inv_t = 1.0 / (zeta[:, None] - t)
        g_t = (inv_t * w).sum(1)
        one_psi = zeta * (g + g_t)
        psi = (g * zeta - self._fit_mass[col]) + (inv_t * t * w).sum(1)
        dpsi = -zeta * (g + zeta * dg) + zeta * (inv_t * inv_t * t * w).sum(1)
        return psi, one_psi, dpsi, g
