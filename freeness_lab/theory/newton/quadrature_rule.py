"""Fast sums of a quadrature rule: psi(omega), 1 + psi and omega psi' (:class:`QuadratureRule`).

A factor without an explicit S-transform enters the Newton systems through psi of its
quadrature (nodes t_j, weights w_j; thousands of complex contour nodes for the law of
phi'(h)^2 of a smooth phi). The rule's nodes are cut into clusters, and a cluster far from the
point is summed through its Laurent series (the one-level scheme of the fast multipole
method); the others directly (:func:`psi_quadrature`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLUSTER_SIZE", "DIRECT_PAIRS", "FAR_RATIO", "LAURENT_TERMS", "LAZY_PAIRS", "PAD_NODE",
           "SMALL_CLUSTER_SIZE", "SMALL_RULE", "ClusterStack", "QuadratureRule", "cluster_series",
           "powers", "psi_quadrature", "scatter"]


def psi_quadrature(nodes: np.ndarray, weights: np.ndarray, omega: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """psi(omega) = sum_j w_j omega t_j / (1 - omega t_j), 1 + psi = sum_j w_j / (1 - omega t_j)
    (no cancellation when psi -> -1) and omega psi'(omega), by direct summation."""
    inv = 1.0 / (1.0 - omega[..., None] * nodes)
    r = inv - 1.0
    # (a * w).sum(-1), not a @ w: complex matrix-vector products through BLAS are much
    # slower here when threads contend for the cores
    psi = (r * weights).sum(-1)
    one_psi = (inv * weights).sum(-1)
    dpsi = (r * inv * weights).sum(-1)
    return psi, one_psi, dpsi


#: clusters of the clustered rule hold this many nodes (padded with zero weights); rules of
#: fewer than SMALL_RULE nodes (discrete laws of a trial's M values, the real quadratures of
#: D^2 laws) use clusters of SMALL_CLUSTER_SIZE: 20-25% faster for them, slower for the
#: contour rules of 3,000 to 40,000 nodes
CLUSTER_SIZE = 256
SMALL_CLUSTER_SIZE, SMALL_RULE = 128, 2048
#: a cluster is far from zeta when |zeta - c| > FAR_RATIO rho (c, rho: its centre and radius)
FAR_RATIO = 4.0
#: Laurent terms per far cluster: the tail is below (1 / FAR_RATIO)^K ~ 1e-17 of its mass
LAURENT_TERMS = 28
#: the centre of the empty clusters that pad a rule in a :class:`ClusterStack`
PAD_NODE = 1e300
#: a batch of at most this many (point, node) pairs is summed directly over every node: for
#: a point or two the clustered scheme's fixed cost (~40 array operations) exceeds the direct
#: sums' (a trial's K = 3 laws of M = 1024 atoms: one point 160 -> 25 us, two 190 -> 55 us)
DIRECT_PAIRS = 8192
#: a rule sums a batch of at most this many (point, node) pairs directly (~1 ms), and builds
#: its cluster tables at the first larger one (28 ms for a GELU D^2 rule of 25,000 nodes:
#: the direct sums of ~100 points; the rule behind a certified fit answers a point or a few
#: dozen per law, a few at a time, and never builds them)
LAZY_PAIRS = 1 << 17


class QuadratureRule:
    """psi(omega), 1 + psi and omega psi' of a quadrature rule (nodes t_j, weights w_j), fast.

    In zeta = 1 / omega,

        1 + psi = zeta sum_j w_j / (zeta - t_j),   psi = sum_j w_j t_j / (zeta - t_j),
        omega psi'(omega) = zeta sum_j w_j t_j / (zeta - t_j)^2.

    The nodes are sorted by real part and cut into clusters of ``CLUSTER_SIZE`` (of
    ``SMALL_CLUSTER_SIZE`` in a rule of fewer than ``SMALL_RULE`` nodes); for a cluster whose
    centre c and radius rho satisfy |zeta - c| > 4 rho, the sums are its Laurent series
    sum_k A_k / (zeta - c)^(k+1), A_k = sum_j w_j (t_j - c)^k (28 terms: the remainder is
    below 4^-28 ~ 1e-17 of the cluster's mass; the one-level scheme of the fast multipole
    method); for a cluster whose nodes all satisfy |t_j| > 4 |zeta|, its Taylor series about
    0, sum_k zeta^k sum_j w_j t_j^-(k+1) (the lower tail of deep products, where zeta is tiny
    and the clusters next to 0 are not far from it in the first sense); the other clusters
    are summed directly (:func:`psi_quadrature`). A point near the support of a law of D^2
    (thousands of contour nodes) meets a few clusters only, which makes the evaluation
    several times cheaper than direct summation, with the same values to rounding. Rules
    smaller than two clusters are summed directly, and so is any batch of at most LAZY_PAIRS
    (point, node) pairs: the tables are built for the first larger one.
    """

    def __init__(self, nodes: np.ndarray, weights: np.ndarray):
        nodes = np.asarray(nodes, dtype=complex).ravel()
        weights = np.asarray(weights, dtype=complex).ravel()
        self.nodes, self.weights = nodes, weights
        size = SMALL_CLUSTER_SIZE if nodes.size < SMALL_RULE else CLUSTER_SIZE
        self.clustered = nodes.size >= 2 * size
        #: (clusters, size) of the cluster tables, built at the first call that needs them
        self.table_shape = (-(-nodes.size // size), size)
        self._stack: ClusterStack | None = None
        self._tables = False

    @property
    def tables_built(self) -> bool:
        """Whether the cluster tables exist (:meth:`build_tables`)."""
        return self._tables

    def build_tables(self) -> None:
        """The cluster tables of a clustered rule (class docstring), once: the nodes sorted by
        real part and cut into clusters, each cluster's centre, radius and Laurent moments
        about its centre, and its Taylor moments about 0."""
        if not self.clustered or self._tables:
            return
        self._tables = True
        nodes, weights = self.nodes, self.weights
        C, size = self.table_shape
        order = np.argsort(nodes.real, kind="stable")
        pad = C * size - nodes.size
        t = np.concatenate([nodes[order], np.full(pad, nodes[order[-1]])])
        w = np.concatenate([weights[order], np.zeros(pad, dtype=complex)])
        self._t = t.reshape(C, size)
        self._w = w.reshape(C, size)
        lo = self._t.real.min(1) + 1j * self._t.imag.min(1)
        hi = self._t.real.max(1) + 1j * self._t.imag.max(1)
        self._centre = 0.5 * (lo + hi)
        d = self._t - self._centre[:, None]
        # moments in d / rho (no overflow, whatever the radius; rho = 0 for identical nodes)
        self._radius = np.maximum(np.abs(d).max(1), 1e-300)
        pw = powers(d / self._radius[:, None], LAURENT_TERMS)  # (K, C, S)
        # columns: A_k, B_k (for 1 + psi and psi), (k + 1) B_k (for omega psi')
        a = np.einsum("cs,kcs->ck", self._w, pw)
        b = np.einsum("cs,kcs->ck", self._w * self._t, pw)
        self._moments = np.stack([a, b, b * np.arange(1, LAURENT_TERMS + 1)], axis=-1)
        # Taylor series about 0, for |zeta| < r0 / FAR_RATIO (r0: the cluster's smallest |t|;
        # 0 when it holds t = 0): a_k = sum w (r0/t)^(k+1), b_k = sum w (r0/t)^k
        self._r0 = np.abs(self._t).min(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(self._t != 0, self._r0[:, None] / self._t, 0.0)
        pw = powers(inv, LAURENT_TERMS + 1)
        a0 = np.einsum("cs,kcs->ck", self._w, pw[1:])
        b0 = np.einsum("cs,kcs->ck", self._w, pw[:-1])
        self._taylor = np.stack([a0, b0, a0 * np.arange(1, LAURENT_TERMS + 1)], axis=-1)
        self._stack = ClusterStack([self])

    def psi_parts(self, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(psi, 1 + psi, omega psi') at omega (any shape): a batch of at most LAZY_PAIRS
        (point, node) pairs by direct summation, a larger one (of a clustered rule) through
        a :class:`ClusterStack` of one on its tables (:meth:`build_tables`, at the first
        such batch)."""
        om = np.asarray(omega, dtype=complex)
        if not self.clustered or om.size * self.nodes.size <= LAZY_PAIRS:
            return psi_quadrature(self.nodes, self.weights, om)
        self.build_tables()
        return tuple(p[..., 0] for p in self._stack.psi_parts(om[..., None]))


class ClusterStack:
    """(psi, 1 + psi, omega psi') of K clustered rules of one cluster size at omega of shape
    (..., K), column k by rule k, in one pass: the K rules' cluster tables stacked on a
    leading axis, each point meeting the clusters of its own column only (the scheme of
    :class:`QuadratureRule`). Rules of one table shape (the discrete laws of a trial's M
    values), or rules under SMALL_RULE nodes of different sizes (the real quadratures of the
    Gaussian D^2 laws: 344-672 nodes a layer for tanh at depth 10, where ten separate sums
    per Newton step cost several times one stacked sum), the smaller padded with empty
    clusters (nodes 0 of weight 0, whose direct terms are exactly 0 at any omega; centred
    at ``PAD_NODE``: always far, their series 0), which add exactly 0. The contour rules of
    a deep network (3,700 to 9,200 nodes for tanh, in clusters of CLUSTER_SIZE) are not
    padded: for erf at depth 10 that cost a third more than a sum per rule.

    Parameters
    ----------
    rules : list of QuadratureRule
        Clustered rules of one table shape, or under SMALL_RULE nodes (:meth:`fits`).
    """

    def __init__(self, rules: list[QuadratureRule]):
        if not self.fits(rules):
            raise ValueError("rules: must be clustered quadrature rules of one table shape, "
                             "or under SMALL_RULE nodes each")
        for r in rules:
            r.build_tables()
        C = max(r.table_shape[0] for r in rules)
        pads = {"_t": 0.0, "_w": 0.0, "_centre": PAD_NODE, "_radius": 1.0,
                "_r0": PAD_NODE, "_moments": 0.0, "_taylor": 0.0}
        for name, value in pads.items():
            tables = [getattr(r, name) for r in rules]
            setattr(self, name, np.stack([np.concatenate(
                [a, np.full((C - len(a),) + a.shape[1:], value, dtype=a.dtype)])
                for a in tables]))

    @staticmethod
    def fits(rules: list) -> bool:
        """Whether the rules are clustered quadrature rules with tables of one shape, or of
        rules under SMALL_RULE nodes (clusters of one size, padded)."""
        if not (rules and all(isinstance(r, QuadratureRule) and r.clustered for r in rules)):
            return False
        shapes = {r.table_shape for r in rules}
        return len(shapes) == 1 or {s[1] for s in shapes} == {SMALL_CLUSTER_SIZE}

    def psi_parts(self, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(psi, 1 + psi, omega psi') at omega, shape (..., K); a batch of at most
        DIRECT_PAIRS (point, node) pairs by direct summation over every node
        (:meth:`direct_parts`: the same values to rounding)."""
        shape = np.shape(omega)
        K = shape[-1]
        om = np.asarray(omega, dtype=complex).reshape(-1, K).T  # (K, P)
        if om.size * self._t[0].size <= DIRECT_PAIRS:
            return tuple(v.T.reshape(shape) for v in self.direct_parts(om))
        P = om.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            zeta = 1.0 / om
        diff = zeta[:, :, None] - self._centre[:, None]  # (K, P, C)
        radius = self._radius[:, None]
        far = np.abs(diff) > FAR_RATIO * radius
        x = np.where(far, 1.0 / np.where(far, diff, 1.0), 0.0)  # 1 / (zeta - c)
        y = x * radius  # |y| < 1/4 where far
        sums = cluster_series(y, self._moments)  # (K, P, C, 3)
        psi = (sums[..., 1] * x).sum(-1)
        one_psi = zeta * (sums[..., 0] * x).sum(-1)
        dpsi = zeta * (sums[..., 2] * x * x).sum(-1)
        # clusters whose nodes all lie 4 times farther from 0 than zeta: Taylor about 0
        r0 = self._r0[:, None]
        small = ~far & (np.abs(zeta)[:, :, None] < r0 / FAR_RATIO)
        for k in np.nonzero(small.any((1, 2)))[0]:  # rule by rule: its coefficients shared
            pp = np.nonzero(small[k].any(-1))[0]
            sm = small[k, pp]  # (R, C)
            y = np.where(sm, zeta[k, pp, None] / np.where(sm, self._r0[k], 1.0), 0.0)
            sums = cluster_series(y, self._taylor[k]) * sm[..., None]
            one_psi[k, pp] -= (sums[..., 0] * y).sum(-1)
            psi[k, pp] -= sums[..., 1].sum(-1)
            dpsi[k, pp] += (sums[..., 2] * y).sum(-1)
        near_k, near_p, near_c = np.nonzero(~far & ~small)
        if len(near_k):
            p, o, d = psi_quadrature(self._t[near_k, near_c], self._w[near_k, near_c],
                                     om[near_k, near_p])
            at = near_k * P + near_p
            psi = psi + scatter(at, p, K * P).reshape(K, P)
            one_psi = one_psi + scatter(at, o, K * P).reshape(K, P)
            dpsi = dpsi + scatter(at, d, K * P).reshape(K, P)
        return tuple(v.T.reshape(shape) for v in (psi, one_psi, dpsi))

    def direct_parts(self, om: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(psi, 1 + psi, omega psi') at om of shape (K, P), column k by direct summation
        over rule k's nodes (:func:`psi_quadrature`; the padding has weight 0)."""
        K = om.shape[0]
        return psi_quadrature(self._t.reshape(K, 1, -1), self._w.reshape(K, 1, -1), om)


def cluster_series(y: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """sum_k coef[..., c, k, :] y[..., p, c]^k, shape (..., P, C, J), for y of shape
    (..., P, C) and coef of shape (..., C, K, J) (leading axes broadcast): the powers built
    along k (:func:`powers`), then one batched matrix product per
    cluster (several times faster than ``cumprod`` and ``einsum`` over (P, C, K))."""
    yk = np.moveaxis(powers(y, coef.shape[-2]), 0, -1)  # (..., P, C, K)
    return np.swapaxes(np.swapaxes(yk, -2, -3) @ coef, -2, -3)


def powers(x: np.ndarray, n: int) -> np.ndarray:
    """x^0 .. x^(n-1), shape (n,) + x.shape, by doubling (x^(m+j) = x^m x^j for j < m, x^m
    the square of x^(m/2)): log2(n) products of contiguous blocks and as many squarings
    instead of n - 2 products (28 powers: 5 + 5 array operations instead of 26; each power
    after ~2 log2(n) roundings, against n - 1 for repeated products), and several times
    faster than complex ``**`` with an array of exponents."""
    out = np.empty((n,) + np.shape(x), dtype=complex)
    out[0] = 1.0
    if n > 1:
        out[1] = x
    m = 2
    while m < n:
        h = min(m, n - m)
        np.multiply(out[:h], out[m // 2] * out[m // 2], out=out[m:m + h])
        m *= 2
    return out


def scatter(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """out[i] = sum of values[index == i] (complex bincount)."""
    return (np.bincount(index, values.real, size)
            + 1j * np.bincount(index, values.imag, size))

