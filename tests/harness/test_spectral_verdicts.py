"""The spectral check on sampled networks: the paired distance decays like 1/M (verdict
``free``) for J J^T and H_L, faster than the limit reference; the controls (the classical
product, the cyclic weights) are ``not free`` at every M; damaged eigenvalues turn it red.

Fixed seeds (``global_seed``); every threshold is a number of standard errors of the fits.
Activations: ReLU and tanh near criticality (the cases the check was designed on), and hard
tanh and erf, which it was not tuned on.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.harness.spectral_check import fit_distances, trial_rows
from freeness_lab.harness.spectral_distance import compare, noise_floor
from freeness_lab.harness.spectral_references import paired_law
from freeness_lab.simulate import sample_network, single_blas_thread

VARIANT = ["activation", "weights", "depth", "sigma_w", "sigma_b", "q0"]
WIDTHS = (64, 128, 256, 512)
TRIALS = 6
#: (activation, ensemble, sigma_w, sigma_b): near criticality
CASES = [("relu", "orthogonal", 2**0.5, 0.0), ("relu", "gaussian", 2**0.5, 0.0),
         ("tanh", "orthogonal", 1.1, 0.05), ("tanh", "gaussian", 1.1, 0.05),
         ("hard_tanh", "orthogonal", 1.05, 0.05), ("erf", "gaussian", 1.0, 0.05)]


def _table(spec: NetworkSpec, seed: int) -> pd.DataFrame:
    frames = []
    with single_blas_thread():
        for m in WIDTHS:
            for t in range(TRIALS):
                ss = np.random.SeedSequence(seed, spawn_key=(m, t))
                net = sample_network(spec.with_width(m), np.random.default_rng(ss))
                spectra = {"JJT": net.jacobian_spectrum(),
                           "H_L": net.fim_dual_spectrum(include_bias=False)}
                rows = pd.DataFrame(trial_rows(net, spectra, ss, include_bias=False))
                frames.append(rows.assign(
                    activation=spec.activation, weights=spec.weights, depth=spec.depth,
                    sigma_w=spec.sigma_w, sigma_b=spec.sigma_b, q0=spec.q0, width=m, trial=t))
    return pd.concat(frames, ignore_index=True)


def _fit(fits: pd.DataFrame, network: str, matrix: str, reference: str,
         metric: str = "kolmogorov") -> pd.Series:
    sel = fits[(fits["network"] == network) & (fits["matrix"] == matrix)
               & (fits["reference"] == reference) & (fits["metric"] == metric)]
    assert len(sel) == 1
    return sel.iloc[0]


@pytest.mark.parametrize("activation, weights, sigma_w, sigma_b", CASES)
def test_paired_distance_decays_like_one_over_m_and_controls_do_not(
        activation: str, weights: str, sigma_w: float, sigma_b: float, global_seed: int
) -> None:
    spec = NetworkSpec(activation, weights, depth=3, width=1, sigma_w=sigma_w,
                       sigma_b=sigma_b)
    table = _table(spec, global_seed)
    assert (table["status"] == "ok").all()
    fits = fit_distances(table, VARIANT)
    for matrix in ("JJT", "H_L"):
        paired = _fit(fits, "sampled", matrix, "paired")
        assert paired["slope"] < -0.7, paired.to_dict()
        assert paired["verdict"] == "free", paired.to_dict()
    if (activation, weights) == ("tanh", "orthogonal"):
        # the limit reference converges only as fast as the sampled D-laws: M^-1/2
        paired, limit = _fit(fits, "sampled", "JJT", "paired"), _fit(fits, "sampled", "JJT",
                                                                    "limit")
        gap = limit["slope"] - paired["slope"]
        assert gap > 3 * math.hypot(limit["slope_se"], paired["slope_se"]), (paired, limit)
    # both controls: not free, and above the paired distance by many SEs at every M
    dist = table[(table["metric"] == "kolmogorov")]
    stats = dist.groupby(["network", "matrix", "reference", "width"])["value"].agg(
        ["mean", "sem"])
    for control in (("cyclic", "JJT", "paired"), ("sampled", "JJT", "classical")):
        fit = _fit(fits, *control)
        assert fit["verdict"] == "not free", fit.to_dict()
        for m in WIDTHS:
            c, p = stats.loc[(*control, m)], stats.loc[("sampled", "JJT", "paired", m)]
            assert c["mean"] - p["mean"] > 8 * math.hypot(c["sem"], p["sem"]), (control, m)


def test_damaged_eigenvalues_are_not_free(global_seed: int) -> None:
    """The same ReLU networks, each J J^T spectrum scaled by 1.05 (a damaged cell): the
    paired distance no longer decays, and the verdict is not ``free``."""
    spec = NetworkSpec("relu", "orthogonal", depth=3, width=1, sigma_w=2**0.5)
    rows = []
    for m in WIDTHS:
        for t in range(TRIALS):
            ss = np.random.SeedSequence(global_seed, spawn_key=(m, t, 7))
            net = sample_network(spec.with_width(m), np.random.default_rng(ss))
            eigs = 1.05 * net.jacobian_spectrum()
            c = compare(eigs, paired_law(net, "JJT", False), noise_floor(eigs, m, 3))
            rows.append({"activation": "relu", "weights": "orthogonal", "depth": 3,
                         "sigma_w": spec.sigma_w, "sigma_b": 0.0, "q0": 1.0, "width": m,
                         "trial": t, "network": "sampled", "matrix": "JJT",
                         "reference": "paired", "metric": "kolmogorov", "point": 0.0,
                         "value": c.kolmogorov, "law": math.nan, "status": "ok"})
    (fit,) = fit_distances(pd.DataFrame(rows), VARIANT).itertuples()
    assert fit.verdict == "not free", fit
