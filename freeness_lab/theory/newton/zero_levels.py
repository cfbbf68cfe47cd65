"""A quadrature rule's sums near 0, level by level (:class:`ZeroLevels`).

The lower tail of a deep product evaluates each law of phi'(h)^2 at |zeta| from 1e-3 down to
1e-300 of its scale, where the contour rule crowds its nodes: a smooth phi' is tiny over
long stretches of h, and half the nodes of a tanh rule (70% of a GELU rule) lie within
2e-3 of 0, spread over tens to hundreds of decades. Around 0 the clusters of
:class:`~freeness_lab.theory.newton.quadrature_rule.QuadratureRule` (cut along the real axis)
are all near a tiny zeta, so it sums each of them directly or by its own series.

Here the rule is cut radially instead, as the fast multipole method cuts space around a
point. With b = ``BASE`` (sqrt 2), h = ``HALF`` (1) and r_k = r0 b^-k, the point's level is
the k with r_k / b < |zeta| <= r_k, and a node's shell the j with r_j / b < |t| <= r_j. At
level k,

* the nodes of shells j <= k - h - 1 (|t| > b^h |zeta|) enter through one Taylor series
  about 0, sum_n zeta^n sum_j w_j t_j^-(n+1), ratio below b^-h;
* the nodes of shells j >= k + h + 1 (|t| < b^-h |zeta|) through one Laurent series about 0,
  sum_n zeta^-(n+1) sum_j w_j t_j^n, ratio below b^-h;
* the nodes of the 2 h + 1 shells k - h .. k + h (a factor b^(2h+1) ~ 2.8 in |t|) directly.

``TERMS`` (120) terms leave b^-(h TERMS) ~ 1e-18 of each series' absolute sum; points deep
inside their levels (or below the deepest) need fewer, and go in blocks sorted by the terms
they need. The
coefficients of every level are built at once: each node's contribution at the level it
enters, summed per level, then recurrences that rescale one level's series to the next
(multiplications by b^-n only). A point then costs two series and the nodes of its three
shells, whatever its depth: the values of the rule's direct sum to rounding (tested to
1e-11 relative, 1 + psi included where it is 1e-150), 2-4 times faster than the clustered
rule on the points of a support search, and the only route there that does not grow with
the number of nodes near 0.
"""

from __future__ import annotations

import math

import numpy as np

from freeness_lab.theory.newton.quadrature_rule import powers

__all__ = ["BASE", "TERMS", "ZeroLevels"]

#: the ratio between consecutive levels, and the shells on either side of a point's level
#: summed directly: the series converge like BASE^-HALF
BASE, HALF = math.sqrt(2.0), 1
#: terms of each series: BASE^(-HALF TERMS) below 1e-18 of its absolute sum left out
TERMS = math.ceil(18 * math.log(10) / (HALF * math.log(BASE)))
#: nodes per block when the coefficients are built, points per block when evaluated
BLOCK, POINT_BLOCK = 1024, 512
#: columns (n >= 1, all n, n) against the terms n = 0 .. TERMS of a series: its partial sums
_SUMS = np.stack([np.arange(TERMS + 1) >= 1, np.ones(TERMS + 1), np.arange(TERMS + 1.0)],
                 axis=1).astype(float)


class ZeroLevels:
    """(psi, 1 + psi, omega psi') of a quadrature rule at |zeta| <= r0, by levels about 0.

    Parameters
    ----------
    nodes, weights : complex ndarray
        The rule: psi(omega) = sum_j w_j t_j / (zeta - t_j), zeta = 1 / omega.
    r0 : float
        The radius of the region served (level 0 is r0 / 4 < |zeta| <= r0).

    Notes
    -----
    In zeta (the :class:`~freeness_lab.theory.newton.quadrature_rule.QuadratureRule`
    conventions), 1 + psi = zeta sum_j w_j / (zeta - t_j), psi = sum_j w_j t_j / (zeta - t_j)
    and omega psi'(omega) = zeta sum_j w_j t_j / (zeta - t_j)^2. At level k, with
    s = zeta / r_k and u = r_k / zeta, the Taylor part is

        1 + psi = -sum_(n>=1) tau_n s^n,  psi = -sum_(n>=0) tau_n s^n,
        omega psi' = sum_n n tau_n s^n,

    tau_n = sum w (r_k / t)^n over shells j <= k - h - 1, and the Laurent part

        1 + psi = sum_(n>=0) gamma_n u^n,  psi = sum_(n>=1) gamma_n u^n,
        omega psi' = sum_n n gamma_n u^n,

    gamma_n = sum w (t / r_k)^n over shells j >= k + h + 1. From level k - 1 to k,
    tau_n -> b^-n tau_n plus shell k - h - 1; from level k + 1 to k, gamma_n -> b^-n gamma_n
    plus shell k + h + 1.
    """

    def __init__(self, nodes: np.ndarray, weights: np.ndarray, r0: float):
        t = np.asarray(nodes, dtype=complex).ravel()
        w = np.asarray(weights, dtype=complex).ravel()
        self.r0 = float(r0)
        h = HALF
        with np.errstate(divide="ignore"):
            shell = np.floor(np.log(self.r0 / np.abs(t)) / math.log(BASE))
        # shells above -h - 1 behave as -h - 1 (Taylor at every level); t = 0 lies below
        # every shell
        shell = np.clip(np.nan_to_num(shell, posinf=1e6), -h - 1, 1e6).astype(np.int64)
        order = np.argsort(shell, kind="stable")
        self._t, self._w, shell = t[order], w[order], shell[order]
        deepest = int(shell[np.abs(self._t) > 0].max(initial=-h - 1))
        # levels 0 .. K: at K every nonzero node is in the Taylor part
        K = max(deepest + h + 1, 0)
        self.levels = K + 1
        r = self.r0 * BASE ** -np.arange(K + 1.0)
        self._r = r
        # the direct nodes of level k: shells k - h .. k + h, a contiguous range
        self._lo = np.searchsorted(shell, np.arange(K + 1) - h, side="left")
        self._hi = np.searchsorted(shell, np.arange(K + 1) + h, side="right")
        decay = BASE ** -np.arange(TERMS + 1.0)
        # Taylor: tau_m = sum w (r_k / t)^m (m = 0 .. TERMS) over shells <= k - h - 1; shell
        # j enters at level j + h + 1 (|r_k / t| < BASE^-h)
        taylor = shell <= K - h - 1
        enter = np.maximum(shell[taylor] + h + 1, 0)
        tau = _entering(r[enter] / self._t[taylor], self._w[taylor], enter, K)
        for k in range(1, K + 1):
            tau[k] += tau[k - 1] * decay
        # Laurent: gamma_m = sum w (t / r_k)^m over shells >= k + h + 1, from the deepest
        # level up; shell j enters at level j - h - 1 (|t / r_k| <= BASE^-(h+1))
        laurent = (shell >= h + 1) & (shell <= K + h)
        enter = shell[laurent] - h - 1
        gamma = _entering(self._t[laurent] / r[enter], self._w[laurent], enter, K)
        for k in range(K - 1, -1, -1):
            gamma[k] += gamma[k + 1] * decay
        # nodes at t = 0 (their shell clipped high) add w to 1 + psi at every level
        gamma[:, 0] += self._w[shell > K + h].sum()
        # stored transposed, (TERMS + 1, levels): a batch gathers rows n, one per term, laid
        # out like its powers
        self._tau, self._gamma = tau.T.copy(), gamma.T.copy()
        # one member (see stack): its first level, number of levels and radius
        self._first, self._count, self._r0 = np.zeros(1, int), np.array([K + 1]), np.array([r0])

    @classmethod
    def stack(cls, members: list[ZeroLevels]) -> ZeroLevels:
        """The levels of several rules in one table: ``psi_parts(zeta, member)`` evaluates
        each point through the rule ``member`` names (the Newton systems evaluate every
        layer's law at once)."""
        out = cls.__new__(cls)
        out.r0 = max(m.r0 for m in members)
        nodes = np.cumsum([0] + [len(m._t) for m in members])
        out._t = np.concatenate([m._t for m in members])
        out._w = np.concatenate([m._w for m in members])
        out._lo = np.concatenate([m._lo + n for m, n in zip(members, nodes, strict=False)])
        out._hi = np.concatenate([m._hi + n for m, n in zip(members, nodes, strict=False)])
        for name in ("_r", "_count", "_r0"):
            setattr(out, name, np.concatenate([getattr(m, name) for m in members]))
        out._tau = np.concatenate([m._tau for m in members], axis=1)
        out._gamma = np.concatenate([m._gamma for m in members], axis=1)
        out._first = np.cumsum(np.r_[0, out._count[:-1]])
        out.levels = int(out._count.sum())
        return out

    def level(self, zeta: np.ndarray, member: np.ndarray | int = 0) -> np.ndarray:
        """The level of each zeta (|zeta| <= r0 of its member): r_k / BASE < |zeta| <= r_k,
        the deepest at most (the index into the table of every member's levels)."""
        r0, last = self._r0[member], self._count[member] - 1
        with np.errstate(divide="ignore"):
            k = np.floor(np.log(r0 / np.abs(zeta)) / math.log(BASE))
        return self._first[member] + np.clip(np.nan_to_num(k, posinf=last), 0, last
                                             ).astype(np.int64)

    def psi_parts(self, zeta: np.ndarray, member: np.ndarray | int = 0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(psi, 1 + psi, omega psi') at zeta (1-d, |zeta| <= r0), through the rule
        ``member`` (per point, for a stack).

        The points go in blocks of at most ``POINT_BLOCK``, sorted by the terms their series
        need: a point deep inside its level, or below the deepest, needs one or two, one on
        a level's outer edge ``TERMS`` + 1 (and arrays of a few MB stay in the cache)."""
        zeta = np.asarray(zeta, dtype=complex)
        k = self.level(zeta, member)
        r = self._r[k]
        s = zeta / r
        # below the deepest level the Laurent part holds t = 0 only (u^0): u = 0 there
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            u = r / zeta
        u = np.where(np.abs(u) <= BASE, u, 0.0)
        # |s| <= 1 against |tau_n| <= sum |w| BASE^-(HALF n); |u| < BASE against |gamma_n| <=
        # sum |w| BASE^-((HALF + 1) n): n terms leave ratio^n of sum |w|, 1e-18 at most
        nt = _terms(np.abs(s) * BASE ** -HALF)
        nl = _terms(np.abs(u) * BASE ** -(HALF + 1))
        order = np.argsort(np.maximum(nt, nl), kind="stable")
        out = np.empty((3, len(zeta)), dtype=complex)
        for a in range(0, len(zeta), POINT_BLOCK):
            i = order[a:a + POINT_BLOCK]
            out[:, i] = self._block(zeta[i], k[i], s[i], u[i], int(nt[i].max()),
                                    int(nl[i].max()))
        return out[0], out[1], out[2]

    def _block(self, zeta, k, s, u, nt: int, nl: int) -> np.ndarray:
        """(psi, 1 + psi, omega psi') of a block of points (rows), with nt Taylor and nl
        Laurent terms."""
        ts = self._tau[:nt, k] * powers(s, nt)  # tau_n s^n, (nt, P)
        gu = self._gamma[:nl, k] * powers(u, nl)  # gamma_n u^n
        # the three partial sums of each series in one product: 1 + psi sums n >= 1 of the
        # Taylor part and all of the Laurent part, psi the reverse, omega psi' weighs by n;
        # partial sums, not differences (1 + psi may be far below tau_0 or gamma_0)
        t_sums = _SUMS[:nt].T @ ts  # (3, P): n >= 1, all, n
        l_sums = _SUMS[:nl].T @ gu
        out = np.stack([l_sums[0] - t_sums[1], l_sums[1] - t_sums[0], t_sums[2] + l_sums[2]])
        # the shells around the point, directly: the pairs (point, node) one after the
        # other, summed point by point
        lo, count = self._lo[k], self._hi[k] - self._lo[k]
        total = int(count.sum())
        if total:
            ends = np.cumsum(count)
            idx = np.arange(total) + np.repeat(lo - ends + count, count)
            t, w = self._t[idx], self._w[idx]
            z = np.repeat(zeta, count)
            inv = 1.0 / (z - t)
            a = w * inv
            at = a * t
            some = count > 0
            first = (ends - count)[some]
            out[0, some] += np.add.reduceat(at, first)
            out[1, some] += zeta[some] * np.add.reduceat(a, first)
            out[2, some] += zeta[some] * np.add.reduceat(at * inv, first)
        return out


def _terms(ratio: np.ndarray) -> np.ndarray:
    """Terms n (2 .. TERMS + 1) of series whose n-th term is below ratio^n: ratio^n <=
    1e-18 (2 where the ratio is 0)."""
    with np.errstate(divide="ignore"):
        n = np.ceil(-18 * math.log(10) / np.log(np.where(ratio > 0, ratio, 1e-300))) + 1
    return np.clip(np.nan_to_num(n, nan=TERMS + 1), 2, TERMS + 1).astype(np.int64)


def _entering(x: np.ndarray, w: np.ndarray, level: np.ndarray, K: int) -> np.ndarray:
    """sum of w x^m (m = 0 .. TERMS) over the nodes entering each level 0 .. K (``level``
    sorted), shape (K + 1, TERMS + 1)."""
    out = np.zeros((K + 1, TERMS + 1), dtype=complex)
    # in blocks of nodes: arrays of a few MB are reused, where one of tens of MB would pay
    # its page faults (slower than the products themselves)
    for a in range(0, len(x), BLOCK):
        block = slice(a, a + BLOCK)
        lv = level[block]
        starts = np.flatnonzero(np.r_[True, lv[1:] != lv[:-1]])
        wx = powers(x[block], TERMS + 1)  # rows m, contiguous along the nodes
        wx *= w[block]
        out[lv[starts]] += np.add.reduceat(wx, starts, axis=1).T
    return out
