"""Rectangular words: free predictions when the letters live in different dimensions.

A word in a network of widths N_0..N_L (notation: :mod:`freeness_lab.simulate.words`) is a
chain of rectangular letters -- W_l is N_l x N_{l-1}, D_l and H_l are N_l x N_l -- whose value
is tr_N(word) = Tr(word) / N, N the rows of its first letter. Two rules turn its free
prediction into the scalar machinery of this package (non-crossing partitions, free cumulants
by Moebius inversion, :func:`~freeness_lab.theory.free_cumulants.free_moment`).

Rule 1: freeness with amalgamation over the block projections
--------------------------------------------------------------
Put every distinct width b in its own block: the space is the direct sum of C^{N_b}, p_b the
projection on block b, and B = span{p_b} (commutative). A letter mapping block c to block r is
p_r x p_c; the B-valued expectation is E(x) = sum_b p_b tr_{N_b}(p_b x p_b). The families --
each weight pair (W_l, W_l^T), the D's together, each H_l -- are taken free with amalgamation
over B (rectangular freeness, Benaych-Georges, PTRF 144 (2009); for the square network B = C
and this is the scalar freeness of Collins & Hayase). The B-valued moment-cumulant formula
E(a_1 ... a_n) = sum_{pi in NC(n)} kappa_pi[a_1, ..., a_n] nests B-valued cumulants; since B
is commutative and spanned by the p_b, each nested value is a scalar times the p_b of the gap
it sits in, and the sum collapses to the scalar formula with

- every (sub)word's moment normalized in its OWN dimension: the rows of its first letter
  (E(x) = p_r tr_{N_r}(x) for x closing on block r);
- the moment of a sub-word that does not chain or does not close equal to 0 (E of an
  off-diagonal element of the direct sum; a product of letters that do not chain is 0 there);
- the free cumulants of each family by Moebius inversion of these moments, as for scalars.

A term of a partition is non-zero only if every block's letters chain and close, and a
rotation of the word changes the normalization: tr_{N_a}(XY) = (N_b / N_a) tr_{N_b}(YX)
(the trace of the direct sum, sum_b N_b tr_{N_b} E, is cyclic). ``free_moment(..., rows=)``
applies that factor when it rotates. For a square network every rule above is the identity.

Rule 2: a rectangular weight as the compression of a square one
----------------------------------------------------------------
The law of one weight pair on chained, closed words in W, W^T: with K = max(N_out, N_in) and
P_out, P_in the coordinate projections of C^K on the first N_out and N_in coordinates
(nested: P_out P_in = P_min, tr_K(P_n) = n / K),

    W = s P_out X P_in,   tr_{N_r}(word) = (K / N_r) s^n tr_K(embedded word),

X a Haar unitary (orthogonal weights: W = sigma_w sqrt(max(1, N_out / N_in)) times the
N_out x N_in block of a Haar orthogonal matrix of size K, so s = sigma_w
sqrt(max(1, N_out / N_in))) or a circular element of variance 1 (Gaussian weights, entries
of variance sigma_w^2 / N_in: s = sigma_w sqrt(K / N_in)). X is free from the deterministic
projections (Haar and Gaussian matrices are asymptotically free from constant ones). The
embedded word is x_1 b_1 x_2 b_2 ... x_n b_n, x_j in {X, X*} and b_j = P_{c_j} the
projection on the columns of letter j (P_{c_j} P_{r_{j+1}} = P_{c_j}: the word chains), so
the free moment is the compression formula (Nica & Speicher 2006, Theorem 14.4)

    tr_K(x_1 b_1 ... x_n b_n) = sum_{pi in NC(n)} kappa_pi[x_1, ..., x_n] tr_{K(pi)}[b_1, ..., b_n],

K(pi) the Kreweras complement, kappa the free cumulants of {X, X*} (Moebius inversion of
its moments) and tr_K of a product of nested projections min(N) / K: compression by
projections of ratios N_out / K and N_in / K, through the same free cumulants (a sum over
NC(n), where the generic :func:`free_moment` of the 3n embedded tokens would sum over
NC(2n)). Closed forms it reproduces
(``tests/theory/test_free_cumulants_rectangular.py``): tr_{N_out}(W W^T) = sigma_w^2,
tr_{N_in}(W^T W) = sigma_w^2 N_out / N_in; orthogonal, N_out >= N_in: W^T W = s^2 I and
W W^T = s^2 Q, Q a projection of trace N_in / N_out; Gaussian: tr_{N_out}((W W^T)^k) the
Marchenko-Pastur moments sigma_w^(2k) sum_j Narayana(k, j) c^(j-1), c = N_out / N_in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from freeness_lab.theory.free_cumulants.families import (
    Family,
    circular_family,
    haar_unitary_family,
)
from freeness_lab.theory.free_cumulants.partitions import (
    kreweras_complement,
    noncrossing_partitions,
)

__all__ = ["chain_rows", "rectangular_weight_family"]


def chain_rows(word: Sequence[str], shapes: dict[str, tuple[float, float]]) -> float | None:
    """The rows of a word's first letter when its letters chain and close, else ``None``.

    ``shapes[token] = (rows, cols)``, compared by equality.
    """
    if not word:
        return None
    for a, b in zip(word, (*word[1:], word[0]), strict=True):
        if shapes[a][1] != shapes[b][0]:
            return None
    return shapes[word[0]][0]


def rectangular_weight_family(w: str, w_t: str, n_out: float, n_in: float, sigma: float,
                              *, haar: bool) -> Family:
    """The pair (W, W^T) of an N_out x N_in weight at the limit (module docstring, rule 2).

    Parameters
    ----------
    w, w_t : str
        The names of W and W^T.
    n_out, n_in : float
        N_out, N_in (or their ratios: only N_out / N_in matters).
    sigma : float
        sigma_w (E ||W x||^2 / N_out = sigma_w^2 ||x||^2 / N_in in both ensembles).
    haar : bool
        Haar orthogonal weights (else Gaussian).

    Returns
    -------
    Family
        Its moment functional gives tr_{N_r} of a word in ``w``, ``w_t`` (N_r the rows of the
        first letter), and 0 for a word that does not chain or close (rule 1).
    """
    n_out, n_in, sigma = float(n_out), float(n_in), float(sigma)
    k = max(n_out, n_in)
    scale = sigma * (max(1.0, n_out / n_in) if haar else k / n_in) ** 0.5
    square = haar_unitary_family("x", "x*") if haar else circular_family("x", "x*")
    shapes = {w: (n_out, n_in), w_t: (n_in, n_out)}
    unit = {w: ("x",), w_t: ("x*",)}

    def moment(word: tuple[str, ...]) -> float:
        rows = chain_rows(word, shapes)
        if rows is None:
            return 0.0
        xs = [unit[t] for t in word]
        cols = [shapes[t][1] for t in word]  # b_j = P_{cols of letter j}
        total = 0.0
        for pi in noncrossing_partitions(len(word)):
            kappa = math.prod(square.cumulant([xs[j] for j in b]) for b in pi)
            if kappa:
                total += kappa * math.prod(min(cols[j] for j in b) / k
                                           for b in kreweras_complement(pi, len(word)))
        return scale ** len(word) * k / rows * total

    return Family([w, w_t], moment)
