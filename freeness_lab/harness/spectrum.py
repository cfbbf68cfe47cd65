"""The ``spectrum`` study: Monte Carlo spectra of J J^T and H_L against their limit laws.

Per trial (one random MLP, :func:`freeness_lab.simulate.sample_network`):

* J J^T, J = D^L W^L ... D^1 W^1, eigenvalues as squared singular values of J;
* H_L, the M x M dual of the single-input Fisher information (Hayase & Karakida 2021);

recorded as the normalized-trace moments m_k = tr(A^k) = mean(lambda^k), k = 1..n, the
spectral variance m_2 - m_1^2, the scale-free shape m_k / m_1^k, k = 2..n (the per-trial
fluctuation of the scale, through the sampled D_l, cancels there: its SE is 2-3 times
smaller than that of m_k), and (optionally) every eigenvalue. The weight sampler is checked
in the same table (matrix ``W``): Tr(W^l / sigma_w) and Tr((W^l / sigma_w)^2) averaged over
the layers, whose exact means at every M are 0 and 1
(:func:`freeness_lab.simulate.weight_traces`, :func:`freeness_lab.theory.weight_trace_means`;
square layers only: a rectangular network's W rows average over its square layers, and
has none when no layer is square).

Rectangular networks (``network.width_ratios``): J J^T is N_L x N_L and has N_L eigenvalues
(structural zeros included), H_L is N_L x N_L; a layer narrower than the output gives J J^T
an atom at 0, so their J J^T rows add :data:`ZERO_MASS`, the fraction of eigenvalues at or
below the noise floor (:func:`~freeness_lab.harness.spectral_distance.noise_floor`), against
the limit law's atom at 0. Square networks keep exactly their rows of before (no such row).
The theory side,
:func:`freeness_lab.theory.jacobian_law` / :func:`freeness_lab.theory.fim_dual_law` (S-transform
products, Pennington, Schoenholz & Ganguli 2017/2018), gives the same moments of the limit
law and its density (:mod:`freeness_lab.harness.theory_side`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from freeness_lab.harness.spectral_distance import noise_floor
from freeness_lab.simulate import sample_network, spectral_moments, weight_traces
from freeness_lab.spec import NetworkSpec

#: the spectral check of one trial: (net, spectra, seed, include_bias) -> columns
SpectralRows = Callable[[Any, dict[str, np.ndarray], np.random.SeedSequence, bool],
                        dict[str, list]]
#: labels of the matrices whose spectra are recorded (moments, eigenvalues, plots)
MATRICES: tuple[str, ...] = ("JJT", "H_L")
#: label of the weight-sampler rows, and their quantities (unnormalized traces)
WEIGHTS = "W"
WEIGHT_QUANTITIES: tuple[str, ...] = ("Tr(W)", "Tr(W^2)")
#: quantity of a rectangular network's J J^T rows: its fraction of zero eigenvalues
ZERO_MASS = "mass(0)"


def zero_mass(eigs: np.ndarray, spec: NetworkSpec) -> float:
    """Fraction of ``eigs`` at or below the noise floor 2 (L+1) N eps lambda_max (N: the
    largest layer width; :func:`~freeness_lab.harness.spectral_distance.noise_floor`)."""
    floor = noise_floor(eigs, max(spec.layer_widths), spec.depth)
    return float(np.mean(eigs <= floor))


def quantity_names(n_moments: int) -> list[str]:
    """``m1..mn``, ``variance``, then ``m2/m1^2..mn/m1^n``: the quantities of each spectrum."""
    return ([f"m{k}" for k in range(1, n_moments + 1)] + ["variance"]
            + [f"m{k}/m1^{k}" for k in range(2, n_moments + 1)])


def shape_moments(moments: np.ndarray) -> np.ndarray:
    """m_k / m_1^k for k = 2..n, from m_1..m_n (NaN when m_1 = 0: e.g. a deep ReLU network at
    small M whose Jacobian vanished; the check then calls it ``invalid``)."""
    m = np.asarray(moments, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return m[1:] / m[0] ** np.arange(2, m.size + 1)


def trial_index(seed: np.random.SeedSequence) -> int:
    """The trial's index within its cell: the last word of its spawn key
    (:meth:`freeness_lab.harness.cells.Cell.spawn_key`)."""
    return int(seed.spawn_key[-1]) if seed.spawn_key else 0


def spectrum_trial(spec: NetworkSpec, seed: np.random.SeedSequence,
                   params: dict[str, Any], spectral_rows: SpectralRows | None = None
                   ) -> dict[str, dict[str, Any]]:
    """One trial: sample a network and record the spectra of J J^T and H_L.

    Parameters
    ----------
    spec : NetworkSpec
        The network at width M.
    seed : numpy.random.SeedSequence
        This (cell, trial)'s child sequence.
    params : dict
        ``moments`` (int), ``eigenvalues`` (bool), ``fim_include_bias`` (bool),
        ``spectral_trials`` (int: the trials, by index, that get the spectral check).
    spectral_rows : callable, optional
        ``spectral_rows(net, spectra, seed, include_bias)``: the spectral check's columns of
        this trial (:func:`freeness_lab.harness.spectral_check.trial_rows`, passed in by the
        study), for the trials ``spectral_trials`` selects.

    Returns
    -------
    dict
        Column dicts: ``"spectrum"`` (matrix, quantity, value; the matrices of
        :data:`MATRICES` and :data:`WEIGHTS`) and, when requested,
        ``"eigenvalues"`` (matrix, index, value) and ``"spectral_distance"``
        (:func:`freeness_lab.harness.spectral_check.trial_rows`).
    """
    net = sample_network(spec, np.random.default_rng(seed))
    spectra = {"JJT": net.jacobian_spectrum(),
               "H_L": net.fim_dual_spectrum(include_bias=params["fim_include_bias"])}
    names = quantity_names(params["moments"])
    matrix, quantity, value = [], [], []
    for label, eigs in spectra.items():
        moments = spectral_moments(eigs, params["moments"])
        matrix += [label] * len(names)
        quantity += names
        value += [*moments.tolist(), float(np.var(eigs)), *shape_moments(moments).tolist()]
        if spec.widths is not None and label == "JJT":
            matrix.append(label)
            quantity.append(ZERO_MASS)
            value.append(zero_mass(eigs, spec))
    square = [w for w in net.weights if w.shape[0] == w.shape[1]]
    if square:
        matrix += [WEIGHTS] * len(WEIGHT_QUANTITIES)
        quantity += list(WEIGHT_QUANTITIES)
        value += weight_traces(square, spec.sigma_w).tolist()
    out: dict[str, dict[str, Any]] = {
        "spectrum": {"matrix": matrix, "quantity": quantity, "value": value}}
    if params["eigenvalues"]:
        out["eigenvalues"] = {
            "matrix": np.repeat(list(spectra), [e.size for e in spectra.values()]),
            "index": np.concatenate([np.arange(e.size) for e in spectra.values()]),
            "value": np.concatenate(list(spectra.values()))}
    if spectral_rows is not None and trial_index(seed) < params.get("spectral_trials", 0):
        out["spectral_distance"] = spectral_rows(net, spectra, seed,
                                                 params["fim_include_bias"])
    return out
