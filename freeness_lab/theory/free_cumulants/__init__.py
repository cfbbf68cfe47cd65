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
A :class:`Family` is a set of jointly distributed variables with a joint moment functional on
words in its *base letters*, which may also name products of them (:class:`Element`). Its
constructors for the laws that occur in random MLPs (:func:`univariate_family`,
:func:`haar_unitary_family`, :func:`circular_family`, :func:`commutative_family`) and what
each of them models are listed in :mod:`~freeness_lab.theory.free_cumulants.families`.

The public entry point for the simplest case is :func:`free_mixed_moment`.

Modules: :mod:`~freeness_lab.theory.free_cumulants.partitions` (NC(n), Kreweras, Moebius),
:mod:`~freeness_lab.theory.free_cumulants.cumulants` (one variable),
:mod:`~freeness_lab.theory.free_cumulants.families` (families and their constructors),
:mod:`~freeness_lab.theory.free_cumulants.free_moment` (free predictions of words),
:mod:`~freeness_lab.theory.free_cumulants.rectangular` (words whose letters live in different
dimensions: freeness with amalgamation over the block projections, rectangular weights by
compression).
"""

from freeness_lab.theory.free_cumulants.cumulants import (
    free_cumulants_to_moments,
    moments_to_free_cumulants,
)
from freeness_lab.theory.free_cumulants.families import (
    Element,
    Family,
    MomentFunctional,
    circular_family,
    commutative_family,
    haar_unitary_family,
    univariate_family,
)
from freeness_lab.theory.free_cumulants.free_moment import (
    compatible_partitions,
    free_mixed_moment,
    free_moment,
    multiplicative_convolution_moments,
)
from freeness_lab.theory.free_cumulants.partitions import (
    Partition,
    kreweras_complement,
    moebius_table,
    moebius_to_top,
    noncrossing_partitions,
    size_types,
)
from freeness_lab.theory.free_cumulants.rectangular import (
    chain_rows,
    rectangular_weight_family,
)

__all__ = [
    "Element",
    "Family",
    "MomentFunctional",
    "Partition",
    "chain_rows",
    "circular_family",
    "clear_caches",
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
    "rectangular_weight_family",
    "univariate_family",
]


def clear_caches() -> None:
    """Empty the caches of the partition tables (NC(n), Moebius values, size types,
    compatible partitions): the next call computes them again (benchmarks time that)."""
    for cached in (noncrossing_partitions, moebius_table, size_types, compatible_partitions):
        cached.cache_clear()
