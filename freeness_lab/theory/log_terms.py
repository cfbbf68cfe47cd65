"""Explicit S-transforms as log-terms: the one representation, its series and its evaluation.

A building block whose S-transform is a product of powers of affine functions of m
(sigma^2 I, Marchenko-Pastur, {0, a}-valued laws, the dimension changes of rectangular
networks) is given by its *log-terms*

    log S(m) = const + sum_j e_j log(alpha_j + beta_j m),   alpha_j > 0, beta_j >= 0,

stored as :class:`LogTerms` (``const``, rows (e_j, alpha_j, beta_j)). The free product adds
them (powers multiply e_j, argument scales a multiply beta_j), the moment series uses their
Taylor series (:meth:`LogTerms.rows_series`), and the Newton solver eliminates the factor's
subordination unknown with them, evaluated in its main unknown r = log(m + c)
(:class:`TermsInR`; :mod:`freeness_lab.theory.newton`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from freeness_lab.theory.branches import log_lower

__all__ = ["LogTerms", "RowsInR", "SumsInR", "TermsInR", "no_terms"]


class LogTerms(NamedTuple):
    """log S(m) = const + sum_j e_j log(alpha_j + beta_j m), rows (e_j, alpha_j, beta_j).

    A named tuple: ``const, rows = terms`` unpacks it.
    """

    const: float
    rows: np.ndarray

    def scaled(self, power: float, scale: float = 1.0) -> LogTerms:
        """The log-terms of S(a m)^k: const and every e_j times k, every beta_j times a."""
        rows = np.reshape(self.rows, (-1, 3)).copy()
        rows[:, 0] *= power
        rows[:, 2] *= scale
        return LogTerms(power * self.const, rows)

    def rows_series(self, n: int) -> np.ndarray:
        """Coefficients up to m^{n-1} of the rows' part sum_j e_j log(alpha_j + beta_j m)
        = sum_j e_j [log alpha_j + sum_k (-1)^{k+1} (beta_j / alpha_j)^k m^k / k] (the
        constant is added by the caller, after its own terms: the order of the sums is
        kept)."""
        out = np.zeros(n)
        k = np.arange(1, n)
        for e, a, b in np.reshape(self.rows, (-1, 3)):
            out[0] += e * math.log(a)
            out[1:] += e * (-1.0) ** (k + 1) * (b / a) ** k / k
        return out

    def evaluate(self, m: np.ndarray) -> np.ndarray:
        """S(m) = e^const prod_j (alpha_j + beta_j m)^e_j (complex)."""
        m = np.asarray(m, dtype=complex)
        out = np.full(m.shape, math.exp(self.const), dtype=complex)
        for e, a, b in self.rows:
            out = out * (a + b * m) ** e
        return out


def no_terms() -> LogTerms:
    """S = 1: no constant, no rows."""
    return LogTerms(0.0, np.empty((0, 3)))


class TermsInR:
    """sum_j e_j log(alpha_j + beta_j m) evaluated in the variable r = log(m + c).

    With m = e^r - c, alpha + beta m = alpha' + beta e^r, alpha' = alpha - beta c; an alpha'
    that vanishes analytically (the factor whose mass at 0 is the law's) is set to 0 exactly,
    so that the term is log(beta) + r with no cancellation as zeta -> 0. Where |e^r| is
    large (|m| -> inf at an inverse square-root edge) the real part is formed without the
    cancellation of the terms ~ Re r (:meth:`real_part_large`).

    Parameters
    ----------
    rows : ndarray (J, 3)
        Rows (e_j, alpha_j, beta_j) of a :class:`LogTerms` (its constant is the caller's).
    c : float
        The offset of the variable r = log(m + c).
    """

    def __init__(self, rows: np.ndarray, c: float):
        rows = np.reshape(rows, (-1, 3))
        self.e, self.beta = rows[:, 0].copy(), rows[:, 2].copy()
        alpha = rows[:, 1] - rows[:, 2] * c
        small = np.abs(alpha) <= 1e-14 * np.maximum(np.abs(rows[:, 1]), np.abs(rows[:, 2] * c))
        self.alpha = np.where(small, 0.0, alpha)
        self.zero = small & (self.beta > 0)
        self.log_beta = np.log(np.where(self.beta > 0, self.beta, 1.0))

        keep = (self.e != 0) & ~self.zero
        # exact terms: sum over vanishing alpha' of e (log beta + r)
        self.zero_const = float(np.sum(self.e[self.zero] * self.log_beta[self.zero]))
        self.zero_slope = float(np.sum(self.e[self.zero]))
        # identical (alpha', beta) rows (e.g. the 1 + m of every Bernoulli factor) merge
        pairs = np.column_stack([self.alpha[keep], self.beta[keep]])
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        e = np.zeros(len(uniq))
        np.add.at(e, inverse.ravel(), self.e[keep])
        nz = e != 0
        self.e, self.alpha, self.beta = e[nz], uniq[nz, 0], uniq[nz, 1]
        self.log_beta = np.log(np.where(self.beta > 0, self.beta, 1.0))
        # Re r above which every term has |beta e^r| > 2^10 |alpha'| (see real_part_large;
        # never with a constant term, beta = 0)
        ratio = np.abs(self.alpha) / np.where(self.beta > 0, self.beta, np.nan)
        self.r_big = (math.log(1024.0 * max(float(ratio.max()), 1e-300))
                      if len(ratio) and np.all(self.beta > 0) else math.inf)
        # one term log(alpha' + e^r) and nothing else (see value_and_slope)
        self.plain = bool(len(self.e) == 1 and self.e[0] == 1.0 and self.beta[0] == 1.0
                          and self.zero_const == 0.0 and self.zero_slope == 0.0)

    def value_and_slope(self, r: np.ndarray, er: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """(sum e log(alpha' + beta e^r), d/dr of it), vectorized over the terms.

        Parameters
        ----------
        r : complex ndarray
            The main unknown.
        er : complex ndarray, optional
            e^r, when the caller has it (a Newton system evaluates several sums at one r:
            the exponential is then taken once).

        Returns
        -------
        (complex ndarray, complex ndarray)
            The sum and its slope. A single term e = beta = 1 (log(1 + m), called thousands
            of times on a few dozen points by the chain system) skips the reductions: the
            same numbers, fewer array operations.
        """
        if not len(self.e):
            return (self.zero_const + self.zero_slope * r,
                    np.full(r.shape, self.zero_slope, dtype=complex))
        if er is None:
            er = np.exp(r)
        if self.plain:
            t = self.alpha[0] + er
            val, slope = log_lower(t), er / t
            big = r.real > self.r_big
            if big.any():
                val[big] = self.real_part_large(r[big], er[big][..., None]) + 1j * val[big].imag
            return val, slope
        val = self.zero_const + self.zero_slope * r
        ber = er[..., None] * self.beta
        t = self.alpha + ber
        logs = log_lower(t)
        val = val + np.add.reduce(logs * self.e, axis=-1)
        slope = self.zero_slope + np.add.reduce(ber / t * self.e, axis=-1)
        big = r.real > self.r_big
        if big.any():
            val[big] = self.real_part_large(r[big], ber[big]) + 1j * val[big].imag
        return val, slope

    def real_part_large(self, r: np.ndarray, ber: np.ndarray) -> np.ndarray:
        """Re of the sum where |e^r| exceeds 2^10 |alpha' / beta| for every term (|m| large:
        near an inverse square-root edge, where the sum is O(d) at relative distance d and
        its terms ~ Re r ~ log(1 / d) / 2 would cancel to 16 - log10(1 / d) digits):
        Re log(alpha' + beta e^r) = log beta + Re r + log|1 + alpha' / (beta e^r)|, and the
        terms ~ Re r cancel in their coefficient (exact) instead."""
        z = self.alpha / ber
        corr = 0.5 * np.log1p(2.0 * z.real + (z.real**2 + z.imag**2))
        return (self.zero_const + float(self.e @ self.log_beta)
                + (self.zero_slope + self.e.sum()) * r.real + np.add.reduce(corr * self.e, axis=-1))

    def slope(self, r: np.ndarray) -> np.ndarray:
        """d/dr of sum e log(alpha' + beta e^r) alone (no logarithm is evaluated).

        Parameters
        ----------
        r : complex ndarray
            The main unknown.

        Returns
        -------
        complex ndarray
            The slope, equal bit for bit to the second output of :meth:`value_and_slope`.
        """
        if not len(self.e):
            return np.full(r.shape, self.zero_slope, dtype=complex)
        ber = np.exp(r)[..., None] * self.beta
        return self.zero_slope + np.add.reduce(ber / (self.alpha + ber) * self.e, axis=-1)


class RowsInR:
    """log(alpha_j + beta_j m) and its slope for each row j on its own, in r = log(m + c):
    the terms of :class:`TermsInR` (rows with e_j = 1) before their sum, shape (..., J).

    The implicit factors of a product (:class:`~freeness_lab.theory.newton.product.
    ProductSystem`) each have log(a_i m) and log(1 - p_i + a_i m); evaluated as the J columns
    of one array, a Newton step pays numpy's per-call overhead once instead of once per
    factor. Each column equals the single-row :class:`TermsInR` bit for bit: alpha' = alpha -
    beta c set to 0 where it vanishes analytically (the term is then log beta + r), and the
    real part formed without cancellation where |e^r| is large (:meth:`TermsInR.
    real_part_large`). Rows may have their own offsets c_j and read their own variable
    r_{k_j} (``columns``: the layers of a chain, :class:`SumsInR`).

    Parameters
    ----------
    rows : ndarray (J, 3)
        Rows (1, alpha_j, beta_j), beta_j > 0.
    c : float or ndarray (J,)
        The offset of the variable r = log(m + c), or of each row's.
    columns : int ndarray (J,), optional
        Row j is taken in r[..., k_j] (r then has a last axis of the variables); without
        them every row is taken in r itself.
    """

    def __init__(self, rows: np.ndarray, c: float | np.ndarray,
                 columns: np.ndarray | None = None):
        rows = np.reshape(rows, (-1, 3))
        if np.any(rows[:, 0] != 1.0) or np.any(rows[:, 2] <= 0):
            raise ValueError("rows: each must be (1, alpha, beta) with beta > 0")
        self.columns = None if columns is None else np.asarray(columns, dtype=int)
        self.beta = rows[:, 2].copy()
        alpha = rows[:, 1] - rows[:, 2] * c
        self.zero = np.abs(alpha) <= 1e-14 * np.maximum(np.abs(rows[:, 1]),
                                                        np.abs(rows[:, 2] * c))
        self.alpha = np.where(self.zero, 0.0, alpha)
        self.any_zero = bool(self.zero.any())
        self.log_beta = np.log(self.beta)
        # Re r above which |beta e^r| > 2^10 |alpha'| (never for a vanishing alpha')
        self.r_big = np.where(self.zero, np.inf,
                              np.log(1024.0 * np.maximum(np.abs(self.alpha) / self.beta,
                                                         1e-300)))

    def _take(self, r: np.ndarray, er: np.ndarray | None):
        """(r, e^r) of every row, shape (..., J) or (..., 1)."""
        if self.columns is None:
            r = np.asarray(r)[..., None]
            return r, (np.exp(r) if er is None else np.asarray(er)[..., None])
        r = np.asarray(r)[..., self.columns]
        return r, (np.exp(r) if er is None else np.asarray(er)[..., self.columns])

    def _correction(self, ber: np.ndarray) -> np.ndarray:
        """log|1 + alpha' / (beta e^r)| without cancellation (:meth:`TermsInR.
        real_part_large`)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.alpha / ber
            return 0.5 * np.log1p(2.0 * z.real + (z.real**2 + z.imag**2))

    def value_and_slope(self, r: np.ndarray, er: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """(log(alpha'_j + beta_j e^r), its d/dr), shape r.shape + (J,) (with ``columns``:
        r.shape[:-1] + (J,)), at the main unknown r (with ``columns``: the variables along
        the last axis; e^r given as ``er`` when the caller has it, as in
        :meth:`TermsInR.value_and_slope`)."""
        r, er = self._take(r, er)
        ber = er * self.beta
        t = self.alpha + ber
        if self.any_zero:  # those columns are log beta + r (t may underflow to 0 there)
            t = np.where(self.zero, 1.0, t)
        val, slope = log_lower(t), ber / t
        if self.any_zero:
            val = np.where(self.zero, self.log_beta + r, val)
            slope = np.where(self.zero, 1.0 + 0j, slope)
        big = r.real > self.r_big
        if big.any():
            val = np.where(big, (self.log_beta + r.real + self._correction(ber))
                           + 1j * val.imag, val)
        return val, slope

    def real_less_r(self, r: np.ndarray, er: np.ndarray | None = None) -> np.ndarray:
        """Re log(alpha'_j + beta_j e^r) - Re r = log beta_j + log|1 + alpha'_j / (beta_j
        e^r)| where Re r exceeds row j's threshold (log beta_j for a vanishing alpha'), 0
        elsewhere: a sum of rows whose e_j nearly cancel takes its Re r exactly where all its
        rows are above their thresholds (:class:`SumsInR`). Shape as :meth:`value_and_slope`'s.
        """
        r, er = self._take(r, er)
        big = r.real > self.r_big
        return np.where(self.zero, self.log_beta,
                        np.where(big, self.log_beta + self._correction(er * self.beta), 0.0))


class SumsInR:
    """G sums of log-terms at once: sum_j e_gj log(alpha_gj + beta_gj m_g), sum g taken in
    its own variable r_{k_g} = log(m_g + c_g) -- the :class:`TermsInR` of the G layers of a
    shift chain (:class:`~freeness_lab.theory.newton.chain.ChainSystem`) in one evaluation.

    The distinct rows (alpha_j, beta_j, c_j, k_j) of all sums are the columns of one
    :class:`RowsInR`; the sums are its values times the (J, G) matrix of the e_gj. Rows with
    beta = 0 are the constant e log alpha; where Re r_{k_g} exceeds every threshold of sum g's
    rows (|m| large: :meth:`TermsInR.real_part_large`) its real part is
    sum_j e_gj (Re log(...) - Re r) + (sum_j e_gj) Re r, the terms ~ Re r cancelling in their
    coefficient.

    Parameters
    ----------
    groups : list of ndarray (J_g, 3)
        Rows (e, alpha, beta) of each sum.
    c : ndarray (G,)
        The offset of each sum's variable.
    columns : int ndarray (G,)
        The variable of each sum: r[..., k_g].
    """

    def __init__(self, groups: list[np.ndarray], c: np.ndarray, columns: np.ndarray):
        G = len(groups)
        self.columns = np.asarray(columns, dtype=int)
        self.const = np.zeros(G)
        keys: dict[tuple[float, float, float, int], int] = {}
        entries = []  # (row, sum, e)
        for g, rows in enumerate(groups):
            for e, a, b in np.reshape(rows, (-1, 3)):
                if e == 0:
                    continue
                if b == 0:
                    self.const[g] += e * math.log(a)
                    continue
                key = (float(a), float(b), float(c[g]), int(self.columns[g]))
                entries.append((keys.setdefault(key, len(keys)), g, e))
        uniq = np.array(list(keys), dtype=float).reshape(-1, 4)
        self.rows = RowsInR(np.column_stack([np.ones(len(uniq)), uniq[:, :2]]), uniq[:, 2],
                            uniq[:, 3].astype(int))
        weights = np.zeros((len(uniq), G))
        for j, g, e in entries:
            weights[j, g] += e
        self.weights = weights.astype(complex)
        self.real_weights = weights
        self.e_sum = weights.sum(0)
        self.any_const = bool(self.const.any())
        # threshold of each sum: the largest of its rows' that are not exact (none: never)
        inexact = (weights != 0) & ~self.rows.zero[:, None]
        r_big = np.where(inexact, self.rows.r_big[:, None], -np.inf).max(0, initial=-np.inf)
        self.r_big = np.where(inexact.any(0), r_big, np.inf)

    def value_and_slope(self, r: np.ndarray, er: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """(the G sums, their d/dr_{k_g}), shape r.shape[:-1] + (G,).

        Parameters
        ----------
        r : complex ndarray (..., K)
            The variables.
        er : complex ndarray (..., K), optional
            e^r, when the caller has it.
        """
        val, slope = self.rows.value_and_slope(r, er)
        val = val @ self.weights
        if self.any_const:
            val = val + self.const
        slope = slope @ self.weights
        re = np.asarray(r).real[..., self.columns]
        big = re > self.r_big
        if big.any():
            real = (self.rows.real_less_r(r, er) @ self.real_weights + self.const
                    + self.e_sum * re)
            val = np.where(big, real + 1j * val.imag, val)
        return val, slope
