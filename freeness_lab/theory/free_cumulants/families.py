"""Families of jointly distributed variables, free from each other, and their constructors.

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
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from freeness_lab.theory.free_cumulants.cumulants import as_sequence
from freeness_lab.theory.free_cumulants.partitions import moebius_table, noncrossing_partitions

#: a joint moment functional: word (tuple of base letters) -> normalized trace
MomentFunctional = Callable[[tuple[str, ...]], float]

__all__ = ["Element", "Family", "MomentFunctional", "circular_family", "commutative_family",
           "haar_unitary_family", "univariate_family"]


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
            for p, mu in zip(noncrossing_partitions(k), moebius_table(k), strict=True):
                total += mu * math.prod(
                    self.moment(tuple(t for j in block for t in items[j])) for block in p)
            self._cumulant_cache[items] = total
        return self._cumulant_cache[items]


def univariate_family(letter: str, moments: Sequence[float]) -> Family:
    """One variable with moments m_1, m_2, ... (m_k = tr(a^k)).

    Raises
    ------
    ValueError
        When a word needs a moment of order above ``len(moments)`` (names letter and order).
    """
    m = as_sequence(f"moments[{letter!r}]", moments)

    def moment(word: tuple[str, ...]) -> float:
        k = len(word)
        if k > len(m):
            raise ValueError(f"moments[{letter!r}]: the word needs m_{k} but only "
                             f"m_1..m_{len(m)} were given")
        return float(m[k - 1])

    return Family([letter], moment)


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
