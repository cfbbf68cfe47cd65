"""Non-crossing partitions, the Kreweras complement and the Moebius function of NC(n).

Nica & Speicher, *Lectures on the Combinatorics of Free Probability*, LMS Lecture Notes 335,
2006: NC(n), the non-crossing partitions of {0, ..., n-1}, |NC(n)| = Catalan(n); the
Kreweras complement K(pi) = pi^{-1} gamma, gamma = (0 1 ... n-1) (Lecture 18),
|pi| + |K(pi)| = n + 1; the Moebius function mu(pi, 1_n) = prod_{V in K(pi)} s_{|V|},
s_k = (-1)^(k-1) Catalan(k-1) (Lecture 10).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable

import numpy as np

#: a set partition of {0..n-1}: blocks as increasing tuples, sorted by their least element
Partition = tuple[tuple[int, ...], ...]

__all__ = ["Partition", "catalan", "check_order", "check_partition", "kreweras_complement",
           "moebius_table", "moebius_to_top", "noncrossing_partitions", "size_types"]


def check_order(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or int(n) < 0:
        raise ValueError(f"{name}: must be an integer >= 0, got {n!r}")
    return int(n)


@functools.cache
def noncrossing_partitions(n: int) -> tuple[Partition, ...]:
    """All non-crossing partitions of {0, ..., n-1} (cached; Catalan(n) of them).

    Enumerated by the largest element v of the block of 0: the points strictly between 0 and
    v together with v form an NC partition in which 0 joins the block of v, and the points
    after v form an independent NC partition. Every partition appears once.

    Parameters
    ----------
    n : int
        Number of points, >= 0 (NC(0) holds the empty partition).

    Returns
    -------
    tuple of Partition
        Blocks are increasing tuples, sorted by their least element.

    Examples
    --------
    >>> noncrossing_partitions(3)[:2]
    (((0,), (1,), (2,)), ((0,), (1, 2)))
    >>> len(noncrossing_partitions(4))  # Catalan(4); the crossing {0, 2}{1, 3} is missing
    14
    """
    n = check_order("n", n)
    if n == 0:
        return ((),)
    out = []
    for v in range(n):
        right = [tuple(tuple(i + v + 1 for i in b) for b in p)
                 for p in noncrossing_partitions(n - 1 - v)]
        if v == 0:
            left = [((0,),)]
        else:
            left = []
            for p in noncrossing_partitions(v):
                blocks = [tuple(i + 1 for i in b) for b in p]
                # 0 joins the block of v (the last point of the shifted partition)
                left.append(tuple(((0, *b) if b[-1] == v else b) for b in blocks))
        for lp in left:
            for rp in right:
                out.append(tuple(sorted(lp + rp)))
    return tuple(out)


def check_partition(partition: Iterable[Iterable[int]], n: int | None) -> tuple[Partition, int]:
    blocks = tuple(tuple(sorted(int(i) for i in b)) for b in partition)
    points = sorted(i for b in blocks for i in b)
    size = len(points) if n is None else check_order("n", n)
    if points != list(range(size)) or any(len(b) == 0 for b in blocks):
        raise ValueError(f"partition: must be a partition of {{0, ..., {size - 1}}} into "
                         f"non-empty blocks, got {partition!r}")
    return tuple(sorted(blocks)), size


def kreweras_complement(partition: Iterable[Iterable[int]], n: int | None = None) -> Partition:
    """Kreweras complement K(pi) = pi^{-1} gamma of a non-crossing partition of {0..n-1}.

    pi is read as the permutation sending each point to the next point of its block
    (cyclically), gamma(i) = i + 1 mod n (Nica & Speicher 2006, Lecture 18). With the points
    of K(pi) written i' between i and i + 1, pi and K(pi) together are non-crossing and
    K(pi) is the largest such partition; K(0_n) = 1_n, K(1_n) = 0_n, |pi| + |K(pi)| = n + 1.

    Parameters
    ----------
    partition : iterable of iterables of int
        A partition of {0, ..., n-1}.
    n : int, optional
        Number of points (default: the number of points in ``partition``).

    Returns
    -------
    Partition
        Blocks as increasing tuples sorted by least element.

    Examples
    --------
    >>> kreweras_complement([[0, 1], [2]])
    ((0,), (1, 2))
    """
    blocks, n = check_partition(partition, n)
    inverse = [0] * n
    for b in blocks:
        for j, i in enumerate(b):
            inverse[i] = b[j - 1]  # pi^{-1}(i): the previous point of the block, cyclically
    k = [inverse[(i + 1) % n] for i in range(n)]
    seen, out = [False] * n, []
    for start in range(n):
        if not seen[start]:
            cycle, i = [], start
            while not seen[i]:
                seen[i] = True
                cycle.append(i)
                i = k[i]
            out.append(tuple(sorted(cycle)))
    return tuple(sorted(out))


def catalan(k: int) -> int:
    return math.comb(2 * k, k) // (k + 1)


def moebius_to_top(partition: Iterable[Iterable[int]], n: int | None = None) -> int:
    """Moebius function mu(pi, 1_n) of the non-crossing partition lattice.

    mu(pi, 1_n) = prod_{V in K(pi)} (-1)^(|V|-1) Catalan(|V|-1): the interval [pi, 1_n] is
    isomorphic to [0, K(pi)], a product of full lattices NC(|V|), and
    mu(0_k, 1_k) = (-1)^(k-1) Catalan(k-1) (Nica & Speicher 2006, Lecture 10).
    """
    return math.prod((-1) ** (len(v) - 1) * catalan(len(v) - 1)
                     for v in kreweras_complement(partition, n))


@functools.cache
def moebius_table(n: int) -> tuple[int, ...]:
    """mu(pi, 1_n) for pi in ``noncrossing_partitions(n)``, same order."""
    return tuple(moebius_to_top(p, n) for p in noncrossing_partitions(n))


@functools.cache
def size_types(n: int, moebius: bool) -> tuple[tuple[tuple[int, ...], int], ...]:
    """NC(n) grouped by the multiset of block sizes: (sizes, sum of mu(pi, 1_n) or count)."""
    weights = moebius_table(n) if moebius else (1,) * len(noncrossing_partitions(n))
    types: Counter[tuple[int, ...]] = Counter()
    for p, w in zip(noncrossing_partitions(n), weights, strict=True):
        types[tuple(sorted(len(b) for b in p))] += w
    return tuple((sizes, w) for sizes, w in types.items() if w)

