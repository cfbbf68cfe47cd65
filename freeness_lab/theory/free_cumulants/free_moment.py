"""Free predictions of mixed moments: the trace of a word in mutually free families.

Freeness = vanishing of mixed cumulants (Nica & Speicher 2006, Lecture 11): when the a_i
come from mutually free families, only partitions whose every block lies inside one family
contribute, so the trace of ANY word is a polynomial in the joint moments of each family
alone. That polynomial is the *free prediction* computed by :func:`free_moment`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from freeness_lab.theory.free_cumulants.families import Family, univariate_family
from freeness_lab.theory.free_cumulants.partitions import (
    Partition,
    check_order,
    noncrossing_partitions,
)

__all__ = ["compatible_partitions", "free_mixed_moment", "free_moment",
           "multiplicative_convolution_moments"]


@functools.cache
def compatible_partitions(colors: tuple[int, ...]) -> tuple[Partition, ...]:
    """The partitions in NC(n) whose every block is monochromatic."""
    return tuple(p for p in noncrossing_partitions(len(colors))
                 if all(len({colors[i] for i in b}) == 1 for b in p))


def free_moment(word: Sequence[str], families: Sequence[Family],
                rows: Sequence[float] | None = None) -> float:
    """Free prediction tr(a_1 ... a_n), a float, for letters from mutually free families.

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
    rows : sequence of float, optional
        A rectangular word (:mod:`~freeness_lab.theory.free_cumulants.rectangular`, rule 1):
        the dimension each token maps into. The value is then tr in dimension ``rows[0]``,
        each family's moments must be normalized in their own first token's dimension (0 for
        a word that does not chain and close), and the rotation to a family boundary at
        position s multiplies the sum by rows[s] / rows[0]. ``None``: one dimension.

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
    ratio = 1.0 if rows is None else float(rows[shift]) / float(rows[0])
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
    for p in compatible_partitions(tuple(item_colors)):
        total += math.prod(families[item_colors[b[0]]].cumulant([items_t[j] for j in b])
                           for b in p)
    return total if rows is None else total * ratio


def free_mixed_moment(word: str, moments: Mapping[str, Sequence[float]]) -> float:
    """tr(a_1 ... a_n), a float, for one-letter names of mutually free variables, from their
    moments.

    Each distinct character of ``word`` is one variable, free from the others, with moments
    ``moments[letter] = (m_1, m_2, ...)``. Computed by the moment-cumulant formula over
    non-crossing partitions (:func:`free_moment`).

    Parameters
    ----------
    word : str
        E.g. ``"abab"`` or ``"abac"``; whitespace is ignored.
    moments : mapping of str to sequence of float
        m_1, m_2, ... of each letter, at least up to the letter's count in the word.

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


def multiplicative_convolution_moments(a: Sequence[float], b: Sequence[float],
                                       n: int) -> np.ndarray:
    """Moments m_1..m_n of mu_a boxtimes mu_b: m_k = tr((a b)^k) for free a, b.

    Computed from the moment-cumulant formula over NC(2k) (:func:`free_mixed_moment`), an
    independent route to the S-transform product S_{a b} = S_a S_b. Needs n moments of each.
    """
    n = check_order("n", n)
    moments = {"a": a, "b": b}
    return np.array([free_mixed_moment("ab" * k, moments) for k in range(1, n + 1)])
