"""Free cumulants over non-crossing partitions, and free predictions of mixed moments.

Combinatorics of free probability (Nica & Speicher, *Lectures on the Combinatorics of Free
Probability*, LMS Lecture Notes 335, 2006, Lectures 9-11):

- NC(n): the non-crossing partitions of {0, ..., n-1}; |NC(n)| = Catalan(n).
- Kreweras complement K(pi) = pi^{-1} gamma, pi read as the permutation whose cycles are its
  blocks in increasing order, gamma = (0 1 ... n-1) (Lecture 18). |pi| + |K(pi)| = n + 1.
- Moebius function of the NC lattice: mu(pi, 1_n) = prod_{V in K(pi)} s_{|V|},
  s_k = (-1)^(k-1) Catalan(k-1) (Lecture 10), so that the free cumulants are

      kappa_n(a_1, ..., a_n) = sum_{pi in NC(n)} mu(pi, 1_n) prod_{V in pi} tr(prod_{i in V} a_i)

  (products inside a block in increasing order), and conversely the moment-cumulant formula
  tr(a_1 ... a_n) = sum_{pi in NC(n)} prod_{V in pi} kappa_{|V|}(a_V).
- Freeness = vanishing of mixed cumulants (Lecture 11): when the a_i come from mutually free
  families, only partitions whose every block lies inside one family contribute, so the trace
  of ANY word is a polynomial in the joint moments of each family alone. That polynomial is
  the *free prediction* computed by :func:`free_moment`.

Families
--------
A :class:`Family` is a set of jointly distributed (possibly non-commuting, possibly dependent)
variables with a joint moment functional on words in its *base letters*; it may also name
*elements* (:class:`Element`): a product of base letters, optionally centered
(x - tr(x) 1). Constructors for the laws that occur in random MLPs:

- :func:`univariate_family` (one variable, moments m_1, m_2, ...),
- :func:`haar_unitary_family` (the pair (u, u*) of a Haar unitary, scaled: the limit law of
  (W, W^T) for Haar orthogonal W = sigma_w O),
- :func:`circular_family` (the pair (c, c*), the limit of (W, W^T) for Gaussian W),
- :func:`commutative_family` (commuting variables with a joint classical law, e.g. the
  D_l = diag(phi'(h^l)), which are NOT free among themselves),
- :class:`Family` itself for any moment functional (e.g. measured on a sampled network).

The public entry point for the simplest case is :func:`free_mixed_moment`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: a set partition of {0..n-1}: blocks as increasing tuples, sorted by their least element
Partition = tuple[tuple[int, ...], ...]
#: a joint moment functional: word (tuple of base letters) -> normalized trace
MomentFunctional = Callable[[tuple[str, ...]], float]

__all__ = [
    "Element",
    "Family",
    "circular_family",
    "commutative_family",
    "free_cumulants_to_moments",
    "free_mixed_moment",
    "free_moment",
    "haar_unitary_family",
    "kreweras_complement",
    "moebius_to_top",
    "moments_to_free_cumulants",
    "multiplicative_convolution_moments",
    "noncrossing_partitions",
    "univariate_family",
]


def _check_order(name: str, n: object) -> int:
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
    n = _check_order("n", n)
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


def _check_partition(partition: Iterable[Iterable[int]], n: int | None) -> tuple[Partition, int]:
    blocks = tuple(tuple(sorted(int(i) for i in b)) for b in partition)
    points = sorted(i for b in blocks for i in b)
    size = len(points) if n is None else _check_order("n", n)
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
    blocks, n = _check_partition(partition, n)
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


def _catalan(k: int) -> int:
    return math.comb(2 * k, k) // (k + 1)


def moebius_to_top(partition: Iterable[Iterable[int]], n: int | None = None) -> int:
    """Moebius function mu(pi, 1_n) of the non-crossing partition lattice.

    mu(pi, 1_n) = prod_{V in K(pi)} (-1)^(|V|-1) Catalan(|V|-1): the interval [pi, 1_n] is
    isomorphic to [0, K(pi)], a product of full lattices NC(|V|), and
    mu(0_k, 1_k) = (-1)^(k-1) Catalan(k-1) (Nica & Speicher 2006, Lecture 10).
    """
    return math.prod((-1) ** (len(v) - 1) * _catalan(len(v) - 1)
                     for v in kreweras_complement(partition, n))


@functools.cache
def _moebius_table(n: int) -> tuple[int, ...]:
    """mu(pi, 1_n) for pi in ``noncrossing_partitions(n)``, same order."""
    return tuple(moebius_to_top(p, n) for p in noncrossing_partitions(n))


@functools.cache
def _size_types(n: int, moebius: bool) -> tuple[tuple[tuple[int, ...], int], ...]:
    """NC(n) grouped by the multiset of block sizes: (sizes, sum of mu(pi, 1_n) or count)."""
    weights = _moebius_table(n) if moebius else (1,) * len(noncrossing_partitions(n))
    types: Counter[tuple[int, ...]] = Counter()
    for p, w in zip(noncrossing_partitions(n), weights, strict=True):
        types[tuple(sorted(len(b) for b in p))] += w
    return tuple((sizes, w) for sizes, w in types.items() if w)


def _as_sequence(name: str, values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be a 1-D sequence of finite numbers, got {values!r}")
    return arr


def moments_to_free_cumulants(moments: Sequence[float]) -> np.ndarray:
    """Free cumulants kappa_1..kappa_n of one variable from its moments m_1..m_n.

    Moebius inversion over NC(k): kappa_k = sum_{pi in NC(k)} mu(pi, 1_k) prod_{V in pi}
    m_{|V|} (Nica & Speicher 2006, Lecture 11). Semicircle: kappa = (0, 1, 0, 0, ...);
    free Poisson of rate lambda: kappa_k = lambda for all k.

    Parameters
    ----------
    moments : sequence of float
        m_1, ..., m_n (normalized traces of the powers).

    Returns
    -------
    numpy.ndarray
        kappa_1, ..., kappa_n.

    Examples
    --------
    >>> moments_to_free_cumulants([0.0, 1.0, 0.0, 2.0])  # semicircle: m_4 = Catalan(2) = 2
    array([0., 1., 0., 0.])
    """
    m = np.concatenate([[1.0], _as_sequence("moments", moments)])
    return np.array([sum(w * math.prod(m[s] for s in sizes) for sizes, w in _size_types(k, True))
                     for k in range(1, len(m))])


def free_cumulants_to_moments(cumulants: Sequence[float]) -> np.ndarray:
    """Moments m_1..m_n of one variable from its free cumulants kappa_1..kappa_n.

    Moment-cumulant formula m_k = sum_{pi in NC(k)} prod_{V in pi} kappa_{|V|}, the inverse of
    :func:`moments_to_free_cumulants`.
    """
    c = np.concatenate([[1.0], _as_sequence("cumulants", cumulants)])
    return np.array([sum(w * math.prod(c[s] for s in sizes) for sizes, w in _size_types(k, False))
                     for k in range(1, len(c))])


@dataclass(frozen=True)
class Element:
    """An element of a family: the product of the base letters ``word``, centered or not.

    ``Element(("D1", "D1"), centered=True)`` is D1^2 - tr(D1^2) 1.
    """

    word: tuple[str, ...]
    centered: bool = False


class Family:
    """Jointly distributed variables, free from the variables of every other family.

    Parameters
    ----------
    letters : iterable of str
        The base letters.
    moment : callable
        Joint moment functional: a tuple of base letters -> tr of their product (in order).
        Called with non-empty words only (tr of the empty word is 1); results are memoized.
    elements : mapping of str to Element, optional
        Extra names (tokens) for products of base letters, possibly centered; a word in this
        family may use base letters and element names.

    Notes
    -----
    Centered elements are expanded multilinearly: with x~ = x - tr(x),
    tr(y_1 ... y_k) = sum over the subsets S of centered positions of
    prod_{i in S} (-tr(x_i)) tr(prod_{i not in S} x_i). Cumulants of a sequence of items
    (each item a tuple of tokens, multiplied together) follow by Moebius inversion over NC(k).
    A Family memoizes moments and cumulants: build a new one when the law changes.
    """

    def __init__(self, letters: Iterable[str], moment: MomentFunctional,
                 elements: Mapping[str, Element] | None = None):
        self.letters = frozenset(letters)
        self.elements = dict(elements or {})
        clash = self.letters & set(self.elements)
        if clash:
            raise ValueError(f"elements: names {sorted(clash)} are also base letters")
        for name, el in self.elements.items():
            bad = [x for x in el.word if x not in self.letters]
            if not el.word or bad:
                raise ValueError(f"elements: {name!r} must be a non-empty word in the base "
                                 f"letters {sorted(self.letters)}, got {el.word!r}")
        self._moment_fn = moment
        self._base_cache: dict[tuple[str, ...], float] = {}
        self._moment_cache: dict[tuple[str, ...], float] = {}
        self._cumulant_cache: dict[tuple[tuple[str, ...], ...], float] = {}

    def with_elements(self, elements: Mapping[str, Element]) -> Family:
        """A new family with the same law and these extra element names (fresh caches)."""
        return Family(self.letters, self._moment_fn, {**self.elements, **elements})

    @property
    def tokens(self) -> frozenset[str]:
        """Every name a word may use for this family: base letters and element names."""
        return self.letters | frozenset(self.elements)

    def _element(self, token: str) -> Element:
        if token in self.elements:
            return self.elements[token]
        if token in self.letters:
            return Element((token,))
        raise ValueError(f"token {token!r} is not in this family; allowed: "
                         f"{sorted(self.tokens)}")

    def _base(self, word: tuple[str, ...]) -> float:
        if not word:
            return 1.0
        if word not in self._base_cache:
            self._base_cache[word] = self._moment_fn(word)
        return self._base_cache[word]

    def moment(self, word: Sequence[str]) -> float:
        """tr of the product of the tokens of ``word`` (in order), centering expanded."""
        word = tuple(word)
        if word in self._moment_cache:
            return self._moment_cache[word]
        els = [self._element(t) for t in word]
        centered = [i for i, e in enumerate(els) if e.centered]
        total = 0.0
        for r in range(len(centered) + 1):
            for subset in itertools.combinations(centered, r):
                coef = math.prod(-self._base(els[i].word) for i in subset)
                rest = tuple(x for i, e in enumerate(els) if i not in subset for x in e.word)
                total += coef * self._base(rest)
        self._moment_cache[word] = total
        return total

    def cumulant(self, items: Sequence[Sequence[str]]) -> float:
        """Free cumulant kappa_k(y_1, ..., y_k), y_j the product of the tokens of items[j].

        kappa_k = sum_{pi in NC(k)} mu(pi, 1_k) prod_{V in pi} tr(prod_{j in V} y_j).
        """
        items = tuple(tuple(it) for it in items)
        if items not in self._cumulant_cache:
            k = len(items)
            total = 0.0
            for p, mu in zip(noncrossing_partitions(k), _moebius_table(k), strict=True):
                total += mu * math.prod(
                    self.moment(tuple(t for j in block for t in items[j])) for block in p)
            self._cumulant_cache[items] = total
        return self._cumulant_cache[items]


@functools.cache
def _compatible_partitions(colors: tuple[int, ...]) -> tuple[Partition, ...]:
    """The partitions in NC(n) whose every block is monochromatic."""
    return tuple(p for p in noncrossing_partitions(len(colors))
                 if all(len({colors[i] for i in b}) == 1 for b in p))


def free_moment(word: Sequence[str], families: Sequence[Family]) -> float:
    """Free prediction tr(a_1 ... a_n) for letters from mutually free families.

    Moment-cumulant formula restricted by freeness (mixed cumulants vanish):

        tr(a_1 ... a_n) = sum_{pi in NC(n), each block inside one family}
                          prod_{V in pi} kappa_{|V|}(a_V),

    with the cumulants of each family from its own joint moments (:meth:`Family.cumulant`).
    Cyclically adjacent letters of the same family are first multiplied into one element
    (tr is cyclic and the product lies in that family's algebra), which shortens the sum.

    Parameters
    ----------
    word : sequence of str
        Tokens, each a base letter or element name of exactly one family.
    families : sequence of Family
        Mutually free families.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For a token of no family or of two families.

    Examples
    --------
    >>> a = univariate_family("a", [1.0, 2.0])
    >>> b = univariate_family("b", [1.0, 3.0])
    >>> free_moment(["a", "b", "a", "b"], [a, b])  # 2*1 + 1*3 - 1*1
    4.0
    """
    owner: dict[str, int] = {}
    for index, fam in enumerate(families):
        for tok in fam.tokens:
            if tok in owner:
                raise ValueError(f"families: token {tok!r} belongs to two families "
                                 f"(#{owner[tok]} and #{index})")
            owner[tok] = index
    word = tuple(word)
    unknown = sorted({t for t in word if t not in owner})
    if unknown:
        raise ValueError(f"word: tokens {unknown} belong to no family; known tokens: "
                         f"{sorted(owner)}")
    if not word:
        return 1.0
    colors = [owner[t] for t in word]
    starts = [i for i in range(len(word)) if colors[i] != colors[i - 1]]
    if not starts:
        return families[colors[0]].moment(word)
    shift = starts[0]
    word, colors = word[shift:] + word[:shift], colors[shift:] + colors[:shift]
    items, item_colors = [], []
    for i, (tok, col) in enumerate(zip(word, colors, strict=True)):
        if i and col == colors[i - 1]:
            items[-1].append(tok)
        else:
            items.append([tok])
            item_colors.append(col)
    items_t = [tuple(it) for it in items]
    total = 0.0
    for p in _compatible_partitions(tuple(item_colors)):
        total += math.prod(families[item_colors[b[0]]].cumulant([items_t[j] for j in b])
                           for b in p)
    return total


def univariate_family(letter: str, moments: Sequence[float]) -> Family:
    """One variable with moments m_1, m_2, ... (m_k = tr(a^k)).

    Raises
    ------
    ValueError
        When a word needs a moment of order above ``len(moments)`` (names letter and order).
    """
    m = _as_sequence(f"moments[{letter!r}]", moments)

    def moment(word: tuple[str, ...]) -> float:
        k = len(word)
        if k > len(m):
            raise ValueError(f"moments[{letter!r}]: the word needs m_{k} but only "
                             f"m_1..m_{len(m)} were given")
        return float(m[k - 1])

    return Family([letter], moment)


def free_mixed_moment(word: str, moments: Mapping[str, Sequence[float]]) -> float:
    """tr(a_1 ... a_n) for one-letter names of mutually free variables, from their moments.

    Each distinct character of ``word`` is one variable, free from the others, with moments
    ``moments[letter] = (m_1, m_2, ...)``. Computed by the moment-cumulant formula over
    non-crossing partitions (:func:`free_moment`).

    Parameters
    ----------
    word : str
        E.g. ``"abab"`` or ``"abac"``; whitespace is ignored.
    moments : mapping of str to sequence of float
        m_1, m_2, ... of each letter, at least up to the letter's count in the word.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For a letter missing from ``moments`` or too few moments of a letter.

    Examples
    --------
    >>> m = {"a": [1.0, 2.0], "b": [0.5, 1.0]}
    >>> free_mixed_moment("abab", m)  # m2(a) m1(b)^2 + m1(a)^2 m2(b) - m1(a)^2 m1(b)^2
    1.25
    """
    if not isinstance(word, str):
        raise ValueError(f"word: must be a string of one-letter variable names, got {word!r}")
    letters = [c for c in word if not c.isspace()]
    missing = sorted(set(letters) - set(moments))
    if missing:
        raise ValueError(f"moments: no moments given for letters {missing} of word {word!r}")
    families = [univariate_family(c, moments[c]) for c in sorted(set(letters))]
    return float(free_moment(letters, families))


def haar_unitary_family(u: str, u_star: str, scale: float = 1.0) -> Family:
    """The pair (s u, s u*) for a Haar unitary u: the limit law of (W, W^T), W = s O Haar.

    Since u is unitary, a word in u, u* equals u^(#u - #u*), and tr(u^k) = [k = 0] for a
    Haar unitary, so tr(word) = s^n [#u = #u*] (Haar orthogonal O has the same limit
    *-distribution). The free cumulants follow by Moebius inversion; the only non-zero ones
    are the alternating kappa_{2n}(u, u*, ..., u, u*) = kappa_{2n}(u*, u, ..., u*, u)
    = (-1)^(n-1) Catalan(n-1) s^(2n) (the cumulants of a Haar unitary; checked against
    the Moebius inversion in the tests).
    """
    if u == u_star:
        raise ValueError(f"u_star: must differ from u, got {u!r} for both")
    scale = float(scale)

    def moment(word: tuple[str, ...]) -> float:
        return scale ** len(word) if word.count(u) == word.count(u_star) else 0.0

    return Family([u, u_star], moment)


def circular_family(c: str, c_star: str, scale: float = 1.0) -> Family:
    """The pair (s c, s c*) for a circular element: the limit law of (W, W^T), W Gaussian.

    Defined by its free cumulants: kappa_2(c, c*) = kappa_2(c*, c) = s^2, all others 0
    (Nica & Speicher 2006, Lecture 11), so tr(word) = s^n times the number of non-crossing
    pairings of the word in which every pair joins one c with one c*; e.g.
    tr((c c*)^k) = s^(2k) Catalan(k) (the Marchenko-Pastur moments of W W^T).
    """
    if c == c_star:
        raise ValueError(f"c_star: must differ from c, got {c!r} for both")
    scale = float(scale)

    def moment(word: tuple[str, ...]) -> float:
        n = len(word)
        if n % 2:
            return 0.0
        count = sum(1 for p in noncrossing_partitions(n)
                    if all(len(b) == 2 and word[b[0]] != word[b[1]] for b in p))
        return scale ** n * count

    return Family([c, c_star], moment)


def commutative_family(letters: Sequence[str],
                       joint_moment: Callable[[tuple[int, ...]], float]) -> Family:
    """Commuting variables (x_1, ..., x_k) with a joint classical law.

    tr(word) depends only on how often each letter occurs:
    tr(word) = joint_moment((e_1, ..., e_k)) = E[x_1^e_1 ... x_k^e_k]. This is the D family of
    an MLP: the D_l = diag(phi'(h^l)) commute and are NOT free among themselves; in the mean
    field limit joint_moment factorizes over layers, prod_l E[phi'(h^l)^(e_l)].
    """
    letters = tuple(letters)
    if len(set(letters)) != len(letters):
        raise ValueError(f"letters: must be distinct, got {letters!r}")
    index = {x: i for i, x in enumerate(letters)}

    def moment(word: tuple[str, ...]) -> float:
        exps = [0] * len(letters)
        for x in word:
            exps[index[x]] += 1
        return float(joint_moment(tuple(exps)))

    return Family(letters, moment)


def multiplicative_convolution_moments(a: Sequence[float], b: Sequence[float],
                                       n: int) -> np.ndarray:
    """Moments m_1..m_n of mu_a boxtimes mu_b: m_k = tr((a b)^k) for free a, b.

    Computed from the moment-cumulant formula over NC(2k) (:func:`free_mixed_moment`), an
    independent route to the S-transform product S_{a b} = S_a S_b. Needs n moments of each.
    """
    n = _check_order("n", n)
    moments = {"a": a, "b": b}
    return np.array([free_mixed_moment("ab" * k, moments) for k in range(1, n + 1)])
