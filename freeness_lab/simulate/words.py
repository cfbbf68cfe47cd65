"""Words in the layerwise matrices of a sampled network, and their normalized traces.

Notation
--------
A word is a whitespace-separated product of letters, read left to right; its value is the
normalized trace tr(word) = Tr(word) / M. A letter is ``NAME LAYER [^T] [^POWER] [c]``:

``W2``
    the weight W^2 (M x M);
``W2^T``
    its transpose;
``D1``
    D^1 = diag(phi'(h^1));
``H3``
    the FIM dual H_3 of the first 3 layers (``SampledNetwork.truncated(3).fim_dual()``,
    Hayase & Karakida 2021; biases included);
``D1^2``, ``W2^T^3``
    powers (an integer >= 1 after ``^``; ``^T`` comes first);
``D1c``, ``D1^2c``
    centered letters X - tr(X) I (X the power, if any). The long form ``(D1 - tr D1)`` is
    accepted too and means ``D1c``.

Layers run from 1 to the network's depth. Examples: ``"W2 D1 W2^T D2"``,
``"W1 D1c W1^T D1c"``, ``"H2 D2^2 H2 D2^2"``.

Dimensions
----------
In a network of widths N_0..N_L a letter has a type (rows, cols): W_l is N_l x N_{l-1},
W_l^T is N_{l-1} x N_l, D_l and H_l are N_l x N_l. A word is *consistent* when consecutive
letters chain (the columns of each letter are the rows of the next), the last letter's columns
are the first letter's rows (the product is square: the trace closes), and every powered or
centered letter is square (:func:`dimension_mismatch`, :func:`check_dimensions`). Its value
is then tr(word) = Tr(word) / N, N the rows of its FIRST letter (the dimension in which the
trace closes; for a square network N = M). Cyclic rotation keeps Tr, not tr: rotating to a
letter with n rows multiplies tr by N / n. Every word is consistent in a square network.

Evaluation
----------
A word is evaluated without forming more products than it needs (:class:`WordEvaluator`):
consecutive diagonal letters (D's) are multiplied as vectors, the trace's cyclicity rotates
the word so that it starts with a dense letter, dense letters are multiplied left to right
with every diagonal applied as a column scaling, and the last product is never formed:
Tr(P A diag(d)) = sum_ij P_ij A_ji d_i. A word with k >= 2 dense letters costs k - 2
matrix-matrix products (:func:`matmul_count`); transposes are views.

Never imports :mod:`freeness_lab.theory`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from freeness_lab.simulate.network import SampledNetwork

__all__ = [
    "LETTER_FORMS",
    "Letter",
    "WordEvaluator",
    "check_dimensions",
    "dimension_mismatch",
    "format_word",
    "letter_layers",
    "matmul_count",
    "parse_word",
    "word_trace",
]

#: a one-line description of the allowed letters, used in error messages
LETTER_FORMS = ("W<l>, W<l>^T, D<l>, H<l> (layer l >= 1), optionally followed by ^<k> (power "
                "k >= 1) and/or c (centered: X - tr(X) I), e.g. W2^T, D1^2, D1c, H3; "
                "'(D1 - tr D1)' is accepted for D1c")

_LETTER = re.compile(r"^(?P<name>[WDH])(?P<layer>[1-9]\d*)(?P<t>\^T)?(?:\^(?P<power>[1-9]\d*))?"
                     r"(?P<c>c)?$")
_LONG_CENTERED = re.compile(r"\(\s*(?P<x>[^()\s]+)\s*-\s*tr\s*(?P<y>[^()\s]+)\s*\)")


@dataclass(frozen=True)
class Letter:
    """One letter of a word: a layerwise matrix, possibly transposed, powered, centered.

    Attributes
    ----------
    name : {"W", "D", "H"}
        Weight W^l, derivative D^l = diag(phi'(h^l)), or FIM dual H_l.
    layer : int
        l >= 1.
    transpose : bool
        W^T (weights only).
    power : int
        Exponent >= 1.
    centered : bool
        X - tr(X) I, X = the (transposed) power.
    """

    name: str
    layer: int
    transpose: bool = False
    power: int = 1
    centered: bool = False

    def __str__(self) -> str:
        return (f"{self.name}{self.layer}{'^T' if self.transpose else ''}"
                f"{f'^{self.power}' if self.power != 1 else ''}{'c' if self.centered else ''}")

    @property
    def is_diagonal(self) -> bool:
        """True for D letters (diagonal matrices, stored as vectors)."""
        return self.name == "D"

    @property
    def base(self) -> Letter:
        """The letter without power and centering, e.g. ``W2^T`` for ``W2^T^3c``."""
        return Letter(self.name, self.layer, self.transpose)


def _expand_long_form(word: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group("x") != m.group("y"):
            raise ValueError(f"word: bad centered letter {m.group(0)!r}: the form is "
                             f"'(X - tr X)' with the same X twice")
        return f" {m.group('x')}c "
    return _LONG_CENTERED.sub(repl, word)


def parse_word(word: str | Sequence[Letter], depth: int | None = None) -> tuple[Letter, ...]:
    """Parse a word (see the module docstring) into letters.

    Parameters
    ----------
    word : str or sequence of Letter
        E.g. ``"W2 D1 W2^T D2"``; a sequence of letters is checked and returned as a tuple.
    depth : int, optional
        The network's depth L: every layer index must lie in 1..L.

    Returns
    -------
    tuple of Letter

    Raises
    ------
    ValueError
        Naming the bad token and the allowed forms, or the layer out of range.

    Examples
    --------
    >>> [str(x) for x in parse_word("W2 (D1 - tr D1) W2^T D2^2")]
    ['W2', 'D1c', 'W2^T', 'D2^2']
    """
    if isinstance(word, str):
        tokens = _expand_long_form(word).split()
        if not tokens:
            raise ValueError("word: empty word; a word is a whitespace-separated product of "
                             f"letters: {LETTER_FORMS}")
        letters = []
        for tok in tokens:
            m = _LETTER.match(tok)
            if m is None:
                raise ValueError(f"word {word!r}: bad letter {tok!r}; allowed: {LETTER_FORMS}")
            if m.group("t") and m.group("name") != "W":
                raise ValueError(f"word {word!r}: bad letter {tok!r}: ^T applies to W only "
                                 f"(D and H are symmetric); allowed: {LETTER_FORMS}")
            letters.append(Letter(m.group("name"), int(m.group("layer")), bool(m.group("t")),
                                  int(m.group("power") or 1), bool(m.group("c"))))
    else:
        letters = list(word)
        if not letters or not all(isinstance(x, Letter) for x in letters):
            raise ValueError(f"word: must be a string or a non-empty sequence of Letter, "
                             f"got {word!r}")
    if depth is not None:
        for x in letters:
            if x.layer > depth:
                raise ValueError(f"word {format_word(letters)!r}: letter {str(x)!r} has layer "
                                 f"{x.layer} but the network has depth {depth} (layers 1..{depth})")
    return tuple(letters)


def format_word(letters: Iterable[Letter]) -> str:
    """The canonical string of a word: letters joined by single spaces."""
    return " ".join(str(x) for x in letters)


def letter_layers(x: Letter) -> tuple[int, int]:
    """(row layer, column layer) of a letter: W_l is N_l x N_{l-1}, W_l^T N_{l-1} x N_l,
    D_l and H_l N_l x N_l (the layer indices l of the widths N_l)."""
    if x.name != "W":
        return x.layer, x.layer
    return (x.layer - 1, x.layer) if x.transpose else (x.layer, x.layer - 1)


def dimension_mismatch(word: str | Sequence[Letter], dims: Sequence[object],
                       unit: str = "") -> str | None:
    """Why a word is not dimensionally consistent (module docstring), or ``None``.

    Parameters
    ----------
    word : str or sequence of Letter
    dims : sequence
        N_0..N_L, compared by equality: the layer widths, or the width ratios r_l of
        N_l = round(r_l M) (then ``unit="M"``).
    unit : str
        Appended to each dimension in the message.

    Returns
    -------
    str or None
        One line naming the word, the position (1-based) and the mismatching dimensions.

    Examples
    --------
    >>> dimension_mismatch("W2 D1 W2^T D2", (1, 2, 1), "M") is None
    True
    >>> why = dimension_mismatch("W1 D1c W1^T D1c", (1, 2, 1), "M")
    >>> why[:64]
    "word 'W1 D1c W1^T D1c': W1 (N_1 x N_0 = 2M x 1M) is followed at "
    >>> why.split(": ")[-1]
    'N_0 = 1M columns against N_1 = 2M rows'
    """
    letters = parse_word(word, len(dims) - 1)
    name = format_word(letters)

    def shape(x: Letter) -> str:
        r, c = letter_layers(x)
        return f"{x} (N_{r} x N_{c} = {dims[r]:g}{unit} x {dims[c]:g}{unit})"

    for i, x in enumerate(letters):
        r, c = letter_layers(x)
        if (x.power != 1 or x.centered) and dims[r] != dims[c]:
            return (f"word {name!r}: {shape(x)} at position {i + 1} is not square, so it "
                    f"cannot be powered or centered")
    for i, x in enumerate(letters):
        nxt = letters[(i + 1) % len(letters)]
        c, r = letter_layers(x)[1], letter_layers(nxt)[0]
        if dims[c] != dims[r]:
            where = (f"is followed at position {i + 2} by" if i + 1 < len(letters)
                     else f"at position {i + 1} does not close the trace on position 1,")
            return (f"word {name!r}: {shape(x)} {where} {shape(nxt)}: N_{c} = {dims[c]:g}"
                    f"{unit} columns against N_{r} = {dims[r]:g}{unit} rows")
    return None


def check_dimensions(word: str | Sequence[Letter], dims: Sequence[object],
                     unit: str = "") -> tuple[Letter, ...]:
    """The letters of a consistent word; raises ``ValueError`` (one line,
    :func:`dimension_mismatch`) for an inconsistent one."""
    why = dimension_mismatch(word, dims, unit)
    if why is not None:
        raise ValueError(why)
    return parse_word(word, len(dims) - 1)


def matmul_count(word: str | Sequence[Letter]) -> int:
    """Matrix-matrix products that :class:`WordEvaluator` spends on ``word``.

    A word with k dense factors (W or H letters counted with their powers, except centered
    dense letters, which count once and are formed separately) costs max(k - 2, 0); forming a
    centered power X^p - tr(X^p) I costs p - 1 more (cached per network).
    """
    letters = parse_word(word)
    dense = sum(1 if x.centered else x.power for x in letters if not x.is_diagonal)
    formed = sum(x.power - 1 for x in letters if not x.is_diagonal and x.centered)
    return max(dense - 2, 0) + formed


class WordEvaluator:
    """Normalized traces of words on one sampled network, with per-network caches.

    Parameters
    ----------
    net : SampledNetwork
        Square or rectangular; a word must be dimensionally consistent (module docstring),
        and its trace is normalized by the rows of its first letter.

    Notes
    -----
    Caches the diagonal letters (powers, centered), the FIM duals H_l and centered dense
    letters, so that evaluating many words on one network forms each of them once.
    """

    def __init__(self, net: SampledNetwork):
        self.net = net
        self.widths = net.spec.layer_widths
        self._diag: dict[Letter, np.ndarray] = {}
        self._dense: dict[Letter, np.ndarray] = {}

    def _diagonal(self, x: Letter) -> np.ndarray:
        if x not in self._diag:
            d = self.net.derivatives[x.layer - 1] ** x.power
            self._diag[x] = d - d.mean() if x.centered else d
        return self._diag[x]

    def _matrix(self, x: Letter) -> np.ndarray:
        """The matrix of a dense letter without power/centering (W, W^T as a view, H)."""
        if x.name == "W":
            w = self.net.weights[x.layer - 1]
            return w.T if x.transpose else w
        key = Letter("H", x.layer)
        if key not in self._dense:
            self._dense[key] = self.net.truncated(x.layer).fim_dual()
        return self._dense[key]

    def _dense_factors(self, x: Letter) -> list[np.ndarray]:
        """Factors whose product is the dense letter ``x`` (powers unrolled unless centered)."""
        base = self._matrix(x.base)
        if not x.centered:
            return [base] * x.power
        if x not in self._dense:
            p = base
            for _ in range(x.power - 1):
                p = p @ base
            c = np.array(p, copy=True)
            c[np.diag_indices_from(c)] -= np.trace(p) / p.shape[0]
            self._dense[x] = c
        return [self._dense[x]]

    def __call__(self, word: str | Sequence[Letter]) -> float:
        """tr(word) on this network."""
        if self.net.spec.is_square:
            letters = parse_word(word, self.net.spec.depth)
        else:
            letters = check_dimensions(word, self.widths)
        size = self.widths[letter_layers(letters[0])[0]]
        # factors: dense matrices and diagonal vectors, consecutive diagonals multiplied
        factors: list[np.ndarray] = []
        kinds: list[bool] = []  # True: diagonal vector
        for x in letters:
            if x.is_diagonal:
                d = self._diagonal(x)
                if kinds and kinds[-1]:
                    factors[-1] = factors[-1] * d
                else:
                    factors.append(d)
                    kinds.append(True)
            else:
                for f in self._dense_factors(x):
                    factors.append(f)
                    kinds.append(False)
        if len(factors) > 1 and kinds[0] and kinds[-1]:  # cyclicity: merge the wrap-around
            factors[-1] = factors[-1] * factors.pop(0)
            kinds.pop(0)
        if all(kinds):
            return float(np.mean(factors[0]))
        start = kinds.index(False)
        factors, kinds = factors[start:] + factors[:start], kinds[start:] + kinds[:start]
        # now factors = A_1 [d_1] A_2 [d_2] ... A_k [d_k]
        groups: list[tuple[np.ndarray, np.ndarray | None]] = []
        for f, is_diag in zip(factors, kinds, strict=True):
            if is_diag:
                groups[-1] = (groups[-1][0], f)
            else:
                groups.append((f, None))
        if len(groups) == 1:
            a, d = groups[0]
            diag = np.diagonal(a)
            return float(np.mean(diag if d is None else diag * d))
        p = None
        for a, d in groups[:-1]:
            p = a if p is None else p @ a
            if d is not None:
                p = p * d[None, :]
        a, d = groups[-1]
        if d is not None:
            p = p * d[:, None]  # Tr(P A diag(d)) = sum_ij d_i P_ij A_ji
        return float(np.einsum("ij,ji->", p, a)) / size


def word_trace(net: SampledNetwork, word: str | Sequence[Letter]) -> float:
    """tr(word) on one sampled network (a one-off :class:`WordEvaluator`).

    Examples
    --------
    >>> from freeness_lab import NetworkSpec
    >>> from freeness_lab.simulate.network import sample_network
    >>> net = sample_network(NetworkSpec("relu", "orthogonal", depth=2, width=50,
    ...                                  sigma_w=2 ** 0.5), rng=0)
    >>> round(word_trace(net, "W1 W1^T"), 12)  # W W^T = sigma_w^2 I
    2.0
    """
    return WordEvaluator(net)(word)
