"""The ``spectrum`` study: Monte Carlo spectra of J J^T and H_L against their limit laws.

Per trial (one random MLP, :func:`freeness_lab.simulate.sample_network`):

* J J^T, J = D^L W^L ... D^1 W^1, eigenvalues as squared singular values of J;
* H_L, the M x M dual of the single-input Fisher information (Hayase & Karakida 2021);

recorded as the normalized-trace moments m_k = tr(A^k) = mean(lambda^k), k = 1..n, the
spectral variance m_2 - m_1^2, and (optionally) every eigenvalue. The theory side,
:func:`freeness_lab.theory.jacobian_law` / :func:`freeness_lab.theory.fim_dual_law` (S-transform
products, Pennington, Schoenholz & Ganguli 2017/2018), gives the same moments of the limit
law and its density (:mod:`freeness_lab.harness.theory_side`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from freeness_lab.simulate import sample_network, spectral_moments
from freeness_lab.spec import NetworkSpec

#: matrix labels in the tables
MATRICES: tuple[str, ...] = ("JJT", "H_L")


def quantity_names(n_moments: int) -> list[str]:
    """``m1..mn`` then ``variance``: the quantities recorded per matrix and trial."""
    return [f"m{k}" for k in range(1, n_moments + 1)] + ["variance"]


def spectrum_trial(spec: NetworkSpec, seed: np.random.SeedSequence,
                   params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One trial: sample a network and record the spectra of J J^T and H_L.

    Parameters
    ----------
    spec : NetworkSpec
        The network at width M.
    seed : numpy.random.SeedSequence
        This (cell, trial)'s child sequence.
    params : dict
        ``moments`` (int), ``eigenvalues`` (bool), ``fim_include_bias`` (bool).

    Returns
    -------
    dict
        Column dicts: ``"spectrum"`` (matrix, quantity, value) and, when requested,
        ``"eigenvalues"`` (matrix, index, value).
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
        value += [*moments.tolist(), float(np.var(eigs))]
    out: dict[str, dict[str, Any]] = {
        "spectrum": {"matrix": matrix, "quantity": quantity, "value": value}}
    if params["eigenvalues"]:
        out["eigenvalues"] = {
            "matrix": np.repeat(list(spectra), [e.size for e in spectra.values()]),
            "index": np.concatenate([np.arange(e.size) for e in spectra.values()]),
            "value": np.concatenate(list(spectra.values()))}
    return out
