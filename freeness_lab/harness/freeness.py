"""Asymptotic freeness of layerwise Jacobians: mixed moments against free predictions vs M.

The claim under test (Collins & Hayase, CMP 2023, Haar orthogonal weights; the Gaussian case
in the literature too): as M -> infinity the families (W_1, W_1^T), ..., (W_L, W_L^T),
(D_1, ..., D_L) and -- as a consequence used by the H_L recursion of Hayase & Karakida
(AISTATS 2021) -- (H_l, D_l) become asymptotically free, although D_l depends on W_l.

For every word (notation: :mod:`freeness_lab.simulate.words`) and every width M, each trial
gives the empirical trace e_t = tr(word) on one sampled network and the free prediction p_t
of the same word at the EMPIRICAL marginals of the same network: the joint moments of each
family measured on that sample, combined by the moment-cumulant formula over non-crossing
partitions (:func:`freeness_lab.theory.free_moment`). The free prediction at the LIMIT
marginals (Haar unitary or circular pairs scaled by sigma_w; the mean-field law of the D's,
independent across layers; the limit law of H_l by the same free calculus) is reported too.

Statistics
----------
Why pair: a normalized trace of M iid diagonal entries fluctuates by O(M^-1/2), so against
the limit marginals the per-trial error is dominated by how well each MARGINAL has converged,
not by freeness. Subtracting the prediction at the same trial's marginals cancels that: for
free-in-the-limit families, the paired per-trial defect delta_t = e_t - p_t has a mean (the
finite-M bias b/M) and a spread (c/M, second-order freeness) both of order 1/M. The bias is
intrinsic to REAL weights and to the MLP: E tr(O A O B) = tr(AB)/M for Haar orthogonal O
(and real Gaussian W), and D_l depends on W_l through the rank-one constraint
W_l x^{l-1} = h^l - b^l. Measured with 100 trials per M (tanh, depth 3, M = 32..128) the ratio
r = b/c is constant in M and reaches about 1 for several natural words (e.g.
``W2 D2c W2 D2c``, ``H2c D2c H2c D2c``). Hence:

- ``defect`` = |mean_t delta_t|, ``se`` its standard error, ``z`` = mean / se at each M.
  With bias b/M and spread c/M, z ~ r sqrt(T) does NOT shrink with M: a raw "|z| < 4 at the
  largest M" holds only for T < (4 / r)^2 trials and says nothing about M -> infinity.
- The verdict therefore tests the defect EXTRAPOLATED to M = infinity: a weighted
  least-squares fit mean delta(M) = delta_inf + b / M over the sweep (weights 1 / se^2, SE
  inflated by the Birge ratio sqrt(chi^2 / dof) when the fit is worse than its errors), and
  ``z_inf`` = delta_inf / se(delta_inf). Under freeness the remaining bias is O(M^-2)
  against an SE of O(M^-1 T^-1/2), so z_inf -> 0 as M grows at any fixed T: a sound check.
  A non-free word has delta_inf = O(1), thousands of SE from 0.
- The decay exponent is fitted to the root-mean-square paired defect
  ``rms_defect`` = sqrt(mean_t delta_t^2) = sqrt(bias^2 + variance) (a consistent estimate
  with relative error ~ 1 / sqrt(2T)), not to |mean|: at large M |mean| is mostly noise and
  log|mean| of a noise-dominated mean has an unbounded left tail. Under freeness
  rms_defect ~ M^-1 (slope -1); a merely converging marginal would give -1/2; a non-free
  word gives 0. Weighted least squares of log rms_defect on log M, weights from the delta
  method var(log rms) = (se(mean delta^2) / (2 mean delta^2))^2, slope SE inflated by the
  Birge ratio.
- Verdict: ``"free"`` when |z_inf| < ``Z_WITHIN_NOISE`` and the slope is negative with
  slope / se < -``SLOPE_SIGNIFICANCE``; ``"not free"`` when |z| >= ``Z_NOT_FREE`` at every
  M; otherwise ``"inconclusive"``. The raw z at the largest M is reported as ``z_last``.

Negative controls (:func:`negative_controls`) are words evaluated under a deliberately wrong
freeness assumption; the harness must call each "not free" at every M: D_1 and D_2 treated
as free (they commute and are classically independent); a deterministic weight (a fixed
cyclic permutation) in place of Haar, treated as Haar; and (W_1, W_1^T) treated as two free
copies.

The study runs inside the harness's cells (:mod:`freeness_lab.harness.studies.freeness`):
one cell per network variant (the ensemble included) and width M, each trial seeded by its
cell's content-keyed SeedSequence child (:mod:`freeness_lab.harness.cells`), BLAS pinned to
one thread in every trial, so the tables are identical for any ``n_jobs``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from freeness_lab.harness.freeness_words import (
    StudyWord,
    default_words,
    negative_controls,
    rectangular_controls,
    skipped_words,
    study_words,
)
from freeness_lab.harness.stats import mean_se, weighted_lstsq
from freeness_lab.simulate.ensembles import single_blas_thread
from freeness_lab.simulate.network import sample_network
from freeness_lab.simulate.words import Letter, WordEvaluator, letter_layers, parse_word
from freeness_lab.spec import NetworkSpec
from freeness_lab.theory.free_cumulants import Element, Family, chain_rows, free_moment
from freeness_lab.theory.predictions import limit_family

__all__ = [
    "SLOPE_SIGNIFICANCE",
    "StudyWord",
    "Z_NOT_FREE",
    "Z_WITHIN_NOISE",
    "default_words",
    "fit_decay",
    "negative_controls",
    "rectangular_controls",
    "skipped_words",
    "study_words",
    "trial_values",
]

#: |z_inf| below this: the defect extrapolated to M = infinity is within noise
Z_WITHIN_NOISE = 4.0
#: the fitted slope must be below -SLOPE_SIGNIFICANCE standard errors
SLOPE_SIGNIFICANCE = 3.0
#: |z| at least this at every M: the word is flagged "not free"
Z_NOT_FREE = 8.0

# --------------------------------------------------------------------------- families


def _family_key(x: Letter, split: str) -> tuple[object, ...]:
    if x.name == "W":
        return ("W", x.layer, x.transpose) if split == "transpose" else ("W", x.layer)
    if x.name == "D":
        return ("D", x.layer) if split == "layers" else ("D",)
    return ("H", x.layer)


def _elements(letters: Sequence[Letter]) -> dict[str, Element]:
    """Element names for the powered / centered letters (tokens = canonical letter strings)."""
    return {str(x): Element((str(x.base),) * x.power, x.centered)
            for x in letters if x != x.base}


def _families(letters: Sequence[Letter], split: str,
              law: Callable[[tuple[object, ...], list[Letter]], Family]) -> list[Family]:
    """Free families of a word's letters; ``law(key, base letters)`` gives each family's law."""
    groups: dict[tuple[object, ...], list[Letter]] = {}
    for x in letters:
        groups.setdefault(_family_key(x, split), []).append(x)
    out = []
    for key, members in groups.items():
        bases = sorted({x.base for x in members}, key=str)
        out.append(law(key, bases).with_elements(_elements(members)))
    return out


def _empirical_law(trace: Callable[[str], float],
                   widths: tuple[int, ...] | None = None) -> Callable[..., Family]:
    """Family laws measured on one network: base-letter words evaluated by ``trace``.

    A rectangular network (``widths``): a sub-word that does not chain and close has moment
    0 (rule 1 of :mod:`freeness_lab.theory.free_cumulants.rectangular`); the others are
    normalized by the rows of their first letter (:class:`WordEvaluator`)."""
    def law(key: tuple[object, ...], bases: list[Letter]) -> Family:
        if widths is None:
            return Family([str(b) for b in bases], lambda w: trace(" ".join(w)))
        shapes = {str(b): tuple(widths[i] for i in letter_layers(b)) for b in bases}

        def moment(w: tuple[str, ...]) -> float:
            return 0.0 if chain_rows(w, shapes) is None else trace(" ".join(w))
        return Family([str(b) for b in bases], moment)
    return law


def _rows(spec: NetworkSpec, letters: Sequence[Letter]) -> list[int] | None:
    """The rows of each letter of a rectangular network's word (``free_moment``'s ``rows``),
    ``None`` for a square network."""
    if spec.widths is None:
        return None
    return [spec.layer_widths[letter_layers(x)[0]] for x in letters]


def _limit_law(spec: NetworkSpec, weights: str | None,
               letters: Sequence[Letter]) -> Callable[..., Family]:
    """Family laws at the limit marginals (:func:`freeness_lab.theory.predictions.
    limit_family`); a deterministic weight is treated as Haar."""
    haar = weights is not None or spec.weights == "orthogonal"

    def law(key: tuple[object, ...], bases: list[Letter]) -> Family:
        order = sum(x.power for x in letters if _family_key(x, "none") == key)
        return limit_family(spec, str(key[0]), [str(b) for b in bases],
                            [b.layer for b in bases], haar=haar, order=order)

    return law


# --------------------------------------------------------------------------- one trial


def trial_values(spec: NetworkSpec, words: Sequence[StudyWord],
                 seed: np.random.SeedSequence | int) -> np.ndarray:
    """One trial: the empirical trace and the paired free prediction of every word.

    Samples ``sample_network(spec, seed)`` (and, for controls, the same input and biases with
    deterministic weights), then for each word tr(word) and its free prediction at this
    network's own marginals. In a rectangular network (``spec.widths``) every word must be
    dimensionally consistent; its prediction follows rule 1 of
    :mod:`freeness_lab.theory.free_cumulants.rectangular`.

    Returns
    -------
    numpy.ndarray, shape (len(words), 2)
        Columns: empirical trace, free prediction at the empirical marginals.
    """
    out = np.empty((len(words), 2))
    widths = None if spec.widths is None else spec.layer_widths
    with single_blas_thread():
        net = sample_network(spec, np.random.default_rng(seed))
        evaluators: dict[str | None, WordEvaluator] = {None: WordEvaluator(net)}
        traces: dict[str | None, Callable[[str], float]] = {}
        for i, sw in enumerate(words):
            if sw.weights not in evaluators:
                evaluators[sw.weights] = WordEvaluator(net.permuted())
            if sw.weights not in traces:
                traces[sw.weights] = functools.cache(evaluators[sw.weights])
            letters = parse_word(sw.word, spec.depth)
            fams = _families(letters, sw.split, _empirical_law(traces[sw.weights], widths))
            out[i, 0] = evaluators[sw.weights](letters)
            out[i, 1] = free_moment([str(x) for x in letters], fams, _rows(spec, letters))
    return out


def limit_prediction(spec: NetworkSpec, sw: StudyWord) -> float:
    """Free prediction of a study word at the LIMIT marginals (M -> infinity) of ``spec``
    (a rectangular ``spec``: at the ratios of its layer widths)."""
    letters = parse_word(sw.word, spec.depth)
    fams = _families(letters, sw.split, _limit_law(spec, sw.weights, letters))
    return float(free_moment([str(x) for x in letters], fams, _rows(spec, letters)))


# --------------------------------------------------------------------------- the study


def cell_statistics(values: np.ndarray) -> dict[str, float]:
    """Summary statistics of one (word, ensemble, M) cell from per-trial (e_t, p_t)."""
    e, p = values[:, 0], values[:, 1]
    delta = e - p
    mean, se = map(float, mean_se(delta))
    ms, ms_se = map(float, mean_se(delta**2))
    z = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    e_mean, e_se = map(float, mean_se(e))
    return {
        "empirical": e_mean, "empirical_se": e_se,
        "free_value": float(p.mean()), "defect": abs(mean), "signed_defect": mean, "se": se,
        "z": z, "rms_defect": math.sqrt(ms),
        "rms_se": 0.5 * ms_se / math.sqrt(ms) if ms > 0 else 0.0,
    }


def fit_decay(table: pd.DataFrame) -> pd.DataFrame:
    """Decay exponent, extrapolated defect and verdict per (word, ensemble).

    Two weighted least-squares fits over the M sweep (module docstring):
    log rms_defect = a + slope log M, and mean delta = delta_inf + b / M.

    Returns
    -------
    pandas.DataFrame
        One row per (word, ensemble): ``word, group, expected, ensemble, slope, slope_se,
        defect_inf`` (delta_inf), ``se_inf, z_inf, bias_coef`` (b: the finite-M bias is
        b / M), ``z_last`` (raw z at the largest M), ``min_abs_z`` (over M),
        ``defect_last, se_last`` and ``verdict`` in {"free", "not free", "inconclusive"}.
    """
    rows = []
    for (word, ens), cell in table.groupby(["word", "ensemble"], sort=False):
        cell = cell.sort_values("M")
        m = cell["M"].to_numpy(float)
        rms, rms_se = cell["rms_defect"].to_numpy(), cell["rms_se"].to_numpy()
        mean, se = cell["signed_defect"].to_numpy(), cell["se"].to_numpy()
        slope = slope_se = delta_inf = se_inf = bias = math.nan
        if np.all(rms > 0) and np.all(rms_se > 0):
            beta, err, _ = weighted_lstsq(np.column_stack([np.ones_like(m), np.log(m)]),
                                          np.log(rms), var=(rms_se / rms) ** 2)
            slope, slope_se = float(beta[1]), float(err[1])
        if np.all(se > 0):
            beta, err, _ = weighted_lstsq(np.column_stack([np.ones_like(m), 1.0 / m]), mean,
                                          var=se**2)
            delta_inf, se_inf, bias = float(beta[0]), float(err[0]), float(beta[1])
        z_inf = delta_inf / se_inf if se_inf > 0 else math.nan
        last = cell.iloc[-1]
        min_abs_z = float(np.min(np.abs(cell["z"].to_numpy())))
        if (abs(z_inf) < Z_WITHIN_NOISE and slope < 0
                and slope / slope_se < -SLOPE_SIGNIFICANCE):
            verdict = "free"
        elif min_abs_z >= Z_NOT_FREE:
            verdict = "not free"
        else:
            verdict = "inconclusive"
        rows.append({"word": word, "group": last["group"], "expected": last["expected"],
                     "ensemble": ens, "slope": slope, "slope_se": slope_se,
                     "defect_inf": delta_inf, "se_inf": se_inf, "z_inf": z_inf,
                     "bias_coef": bias, "z_last": float(last["z"]), "min_abs_z": min_abs_z,
                     "defect_last": float(last["defect"]), "se_last": float(last["se"]),
                     "verdict": verdict})
    return pd.DataFrame(rows)
