"""Atoms of free multiplicative convolutions: Belinschi's rules and the change of dimension.

For laws on [0, inf) and a, b > 0 (Belinschi 2003, "The atoms of the free multiplicative
convolution of two probability distributions"):

    (mu boxtimes nu)({ab}) = max(0, mu({a}) + nu({b}) - 1),
    (mu boxtimes nu)({0})  = max(mu({0}), nu({0})),

and the shift moves atoms: (c + mu)({c + a}) = mu({a}). Moving a law from dimension N to
N / r (same nonzero spectrum) gives zero mass 1 - r (1 - p_0) and other masses times r.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ATOM_TOL", "change_dimension", "merge_atoms", "power_atoms", "product_atoms"]

#: masses below this are rounding noise, not atoms
ATOM_TOL = 1e-14


def merge_atoms(locations: list[float], masses: list[float]) -> np.ndarray:
    """Rows (location, mass), sorted, equal locations merged, masses <= ATOM_TOL dropped."""
    out: dict[float, float] = {}
    for a, p in zip(locations, masses, strict=True):
        if p > ATOM_TOL:
            out[a] = out.get(a, 0.0) + p
    return np.array(sorted(out.items()), dtype=float).reshape(-1, 2)


def product_atoms(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Atoms of mu boxtimes nu from the atoms (rows (location, mass)) of mu and nu (Belinschi).

    Examples
    --------
    >>> product_atoms(np.array([[0, .5], [1, .5]]), np.array([[0, .5], [1, .5]]))
    array([[0. , 0.5]])
    """
    first, second = np.reshape(first, (-1, 2)), np.reshape(second, (-1, 2))
    z1 = first[first[:, 0] == 0, 1].sum()
    z2 = second[second[:, 0] == 0, 1].sum()
    a, p = first[first[:, 0] > 0].T
    b, q = second[second[:, 0] > 0].T
    # p + q > 1 needs p > 1 - max q and q > 1 - max p: for laws with many small atoms
    # (masses 1/M) no pair survives this prefilter, and the outer product stays tiny
    if len(a) and len(b):
        keep_a, keep_b = p > 1.0 - q.max(), q > 1.0 - p.max()
        a, p, b, q = a[keep_a], p[keep_a], b[keep_b], q[keep_b]
    pair = p[:, None] + q[None, :] > 1.0  # row-major: the order of the pairs (a_i, b_j)
    i, j = np.nonzero(pair)
    locs = [0.0, *(a[i] * b[j]).tolist()]
    masses = [max(z1, z2), *(p[i] + q[j] - 1.0).tolist()]
    return merge_atoms(locs, masses)


def power_atoms(atoms: np.ndarray, k: int) -> np.ndarray:
    """Atoms of the k-fold free multiplicative power of a law with these atoms."""
    out = np.array([[1.0, 1.0]])  # delta_1, the unit
    for _ in range(k):
        nxt = product_atoms(out, atoms)
        if nxt.shape == out.shape and np.allclose(nxt, out, rtol=0, atol=1e-15):
            break  # stationary (e.g. only the atom at 0 is left)
        out = nxt
    return out


def change_dimension(atoms: np.ndarray, r: float) -> np.ndarray:
    """Atoms of a law moved from dimension N to N / r (same nonzero spectrum)."""
    zero = atoms[atoms[:, 0] == 0, 1].sum()
    rest = atoms[atoms[:, 0] > 0]
    rows = [[0.0, 1.0 - r * (1.0 - zero)]] + [[a, r * p] for a, p in rest]
    out = np.array([row for row in rows if row[1] > ATOM_TOL], dtype=float)
    return out.reshape(-1, 2)
