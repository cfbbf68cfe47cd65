"""The words of the freeness study: the preset (default words and negative controls), given
words, and which of them a rectangular network can hold.

A :class:`StudyWord` is a word (notation: :mod:`freeness_lab.simulate.words`) with the
freeness assumption it is tested under and the verdict a correct harness must reach. In a
rectangular network (``network.width_ratios``) a word must be dimensionally consistent
(:func:`freeness_lab.simulate.words.dimension_mismatch`): a GIVEN word that is not
(``experiment.words``) is refused by the config check, in one line naming the word, the
position and the mismatching dimensions -- the user asked for it; the PRESET keeps its
consistent words and lists the others as skipped, each with that line
(:func:`skipped_words`) -- refusing would make the preset unusable on most shapes -- and adds
a control consistent in every shape (:func:`rectangular_controls`). The permutation control
is skipped too (the cyclic shift is square). Square networks: every word, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from freeness_lab.simulate.words import (
    check_dimensions,
    dimension_mismatch,
    format_word,
    parse_word,
)

__all__ = ["DETERMINISTIC_WEIGHTS", "SPLITS", "StudyWord", "default_words",
           "negative_controls", "rectangular_controls", "skipped_words", "study_words"]

#: how a study word groups its letters into mutually free families
SPLITS = ("none", "layers", "transpose")
#: deterministic weights that replace the sampled ones in a control
DETERMINISTIC_WEIGHTS = ("permutation",)


@dataclass(frozen=True)
class StudyWord:
    """A word of the freeness study and the freeness assumption it is tested under.

    Checked on construction (a :class:`ValueError` says which field is wrong); the preset's
    words come from :func:`default_words`, :func:`negative_controls` and
    :func:`rectangular_controls`.

    Attributes
    ----------
    word : str
        In the notation of :mod:`freeness_lab.simulate.words`.
    group : str
        Word family for tables and plots, e.g. ``"within layer"``.
    split : {"none", "layers", "transpose"}
        ``"none"``: the Collins-Hayase families -- (W_l, W_l^T) for each l, (D_1..D_L)
        jointly, H_l alone. ``"layers"``: each D_l its own family (wrong: they commute).
        ``"transpose"``: W_l and W_l^T two free copies (wrong: dependent).
    weights : {"permutation"} or None
        Replace every W^l by sigma_w times the cyclic shift P e_i = e_(i+1) (a control);
        None: the spec's random weights.
    expected : {"free", "not free"}
        What a correct harness must conclude.
    """

    word: str
    group: str
    split: str = "none"
    weights: str | None = None
    expected: str = "free"

    def __post_init__(self) -> None:
        parse_word(self.word)
        if self.split not in SPLITS:
            raise ValueError(f"split: must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.weights is not None and self.weights not in DETERMINISTIC_WEIGHTS:
            raise ValueError(f"weights: must be None or one of "
                             f"{', '.join(DETERMINISTIC_WEIGHTS)}, got {self.weights!r}")
        if self.expected not in ("free", "not free"):
            raise ValueError(f"expected: must be 'free' or 'not free', got {self.expected!r}")

    @property
    def label(self) -> str:
        """The canonical word, tagged with its assumption when it is not the default one."""
        word = format_word(parse_word(self.word))
        tags = ([f"{self.split} split"] if self.split != "none" else []) + (
            [f"W={self.weights}"] if self.weights else [])
        return f"{word} [{', '.join(tags)}]" if tags else word


def _check_depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
        raise ValueError(f"depth: the default words need depth >= 2, got {depth!r}")
    return depth


def default_words(depth: int) -> tuple[StudyWord, ...]:
    """The default word set for a network of ``depth`` >= 2 layers.

    Pairs within one layer (W_l with its own D_l, which depends on W_l), across layers (W_2
    conjugating D_1 against D_2, the 2-layer tr(J J^T), two weight pairs interleaved), words of
    length 8, and the pair (H_l, D_l) that the H_L recursion relies on.
    """
    last = _check_depth(depth)
    words = [
        ("W1 D1c W1^T D1c", "within layer"),
        (f"W{last} D{last} W{last}^T D{last}^2", "within layer"),
        ("W2 D2c W2 D2c", "within layer"),
        ("W2 D1c W2^T D2c", "across layers"),
        ("D2 W2 D1 W1 W1^T D1 W2^T D2", "across layers"),
        ("W1 D1c W2 D2c W1^T D1c W2^T D2c", "across layers"),
        ("W2 D2c W2^T D2c W2 D2c W2^T D2c", "length 8"),
        ("W2 D1c W2^T D2c W2 D1c W2^T D2c", "length 8"),
        ("H2c D2c H2c D2c", "H-D pair"),
        (f"H{last} D{last}^2 H{last} D{last}^2", "H-D pair"),
        ("H2 D2c H2 D2c H2 D2c", "H-D pair"),
    ]
    return tuple(StudyWord(w, g) for w, g in words)


def negative_controls(depth: int) -> tuple[StudyWord, ...]:
    """Words under a wrong freeness assumption; each must be flagged "not free" at every M.

    - D_1, D_2 treated as free: tr(D1c D2c D1c D2c) = tr(D1c^2) tr(D2c^2) (classical), not 0.
    - W = sigma_w P (a fixed cyclic shift) treated as Haar: its *-moments are exactly those
      of a Haar unitary (tr(P^k) = 0 for 0 < k < M), but P D1c P^T is diagonal and commutes
      with D1c, so the alternating word of length 8 is sigma_w^4 tr((P D1c P^T)^2 D1c^2),
      not 0. (The identity is no control: sigma_w I is a scalar, free from everything; only
      its marginal differs from Haar, and the paired prediction rightly calls it free.)
    - (W_1, W_1^T) as two free copies: tr(W1 D1 W1^T D1) = sigma_w^2 tr(D1)^2 + O(1/M),
      while two free Haar unitaries give tr(u) tr(v*) (...) = 0.
    """
    _check_depth(depth)
    return (
        StudyWord("D1c D2c D1c D2c", "control", split="layers", expected="not free"),
        StudyWord("W1 D1c W1^T D1c W1 D1c W1^T D1c", "control", weights="permutation",
                  expected="not free"),
        StudyWord("W1 D1 W1^T D1", "control", split="transpose", expected="not free"),
    )


def rectangular_controls(depth: int) -> tuple[StudyWord, ...]:
    """The negative control of a rectangular network (the preset's own, consistent in every
    shape): (W_2, W_2^T) as two free copies in tr_{N_1}(W2^T D2 W2 D1) = sigma_w^2
    (N_2 / N_1) tr(D2) tr(D1) + O(1/M), while the free copies give 0 (tr W_2 = 0, or
    O(M^-1/2) when N_1 = N_2)."""
    _check_depth(depth)
    return (StudyWord("W2^T D2 W2 D1", "control", split="transpose", expected="not free"),)


def _preset(depth: int, dims: tuple[float, ...] | None, unit: str
            ) -> tuple[tuple[StudyWord, ...], list[tuple[str, str]]]:
    """The default words and controls for these dimensions, and the skipped ones with why."""
    words = default_words(depth) + negative_controls(depth)
    if dims is None:
        return words, []
    kept, skipped = [], []
    for sw in words:
        why = dimension_mismatch(sw.word, dims, unit)
        if why is None and sw.weights is not None and len(set(dims)) > 1:
            why = f"word {sw.label!r}: the {sw.weights} control needs a square network"
        if why is None:
            kept.append(sw)
        else:
            skipped.append((sw.label, why))
    return tuple(kept) + rectangular_controls(depth), skipped


def skipped_words(depth: int, dims: Sequence[float] | None, unit: str = "M"
                  ) -> list[tuple[str, str]]:
    """The preset words a rectangular network leaves out, each with its one-line reason
    (a dimension mismatch, :func:`freeness_lab.simulate.words.dimension_mismatch`, or a
    control that needs a square network); empty for a square network (``dims`` None)."""
    return _preset(depth, None if dims is None else tuple(dims), unit)[1]


def study_words(depth: int, words: Sequence[str] | None,
                dims: Sequence[float] | None = None, unit: str = "") -> tuple[StudyWord, ...]:
    """Words of the study: :func:`default_words` and :func:`negative_controls`, or ``words``
    (each tested under the Collins-Hayase families, expected free).

    Parameters
    ----------
    depth : int
    words : sequence of str or None
        ``None``: the preset.
    dims : sequence of float, optional
        N_0..N_L of a rectangular network (widths, or width ratios with ``unit="M"``). The
        preset then keeps its dimensionally consistent words, less the permutation control
        (:func:`skipped_words` lists the others), plus :func:`rectangular_controls`; a given
        word must be consistent. ``None``: a square network, every word consistent.
    unit : str
        Appended to the dimensions in messages.

    Raises
    ------
    ValueError
        For a depth below 2 (default words), a malformed word, a letter of a layer beyond
        ``depth``, or (with ``dims``) a dimensionally inconsistent given word, in one line
        naming the word, the position and the mismatching dimensions.
    """
    if words is None:
        return _preset(depth, None if dims is None else tuple(dims), unit)[0]
    out = tuple(StudyWord(w, "custom") for w in words)
    for sw in out:
        parse_word(sw.word, depth)
        if dims is not None:
            check_dimensions(sw.word, tuple(dims), unit)
    return out
