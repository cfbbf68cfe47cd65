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
from freeness_lab.harness.spectral_report import failing
from freeness_lab.simulate import sample_network, single_blas_thread

VARIANT = ["activation", "weights", "depth", "sigma_w", "sigma_b", "q0"]
#: (activation, ensemble, sigma_w, sigma_b) near criticality, (widths, trials). In CI: the
#: activations whose phi' takes two values (exact two-atom D-laws); slow (``pytest -m slow``,
#: about 4 minutes on 2 cores): the smooth ones, at larger widths -- at the CI size their
#: verdicts are right (seeds 0-2) but not every assertion holds: tanh orthogonal's paired
#: J J^T slope is -0.70 and its classical control inconclusive at seed 1, and erf's
#: classical control is not 8 SE above the paired distance at M = 32.
CI_SIZE = ((32, 64, 128, 256), 5)
SLOW_SIZE = ((64, 128, 256, 512), 8)
CASES = [
    pytest.param("relu", "orthogonal", 2**0.5, 0.0, CI_SIZE, id="relu-orthogonal"),
    pytest.param("relu", "gaussian", 2**0.5, 0.0, CI_SIZE, id="relu-gaussian"),
    pytest.param("hard_tanh", "orthogonal", 1.05, 0.05, CI_SIZE, id="hard_tanh-orthogonal"),
    pytest.param("tanh", "orthogonal", 1.1, 0.05, SLOW_SIZE, id="tanh-orthogonal",
                 marks=pytest.mark.slow),
    pytest.param("tanh", "gaussian", 1.1, 0.05, SLOW_SIZE, id="tanh-gaussian",
                 marks=pytest.mark.slow),
    pytest.param("erf", "gaussian", 1.0, 0.05, SLOW_SIZE, id="erf-gaussian",
                 marks=pytest.mark.slow),
]


def _table(spec: NetworkSpec, seed: int, widths: tuple[int, ...], trials: int
           ) -> pd.DataFrame:
    frames = []
    with single_blas_thread():
        for m in widths:
            for t in range(trials):
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


@pytest.mark.parametrize("activation, weights, sigma_w, sigma_b, size", CASES)
def test_paired_distance_decays_like_one_over_m_and_controls_do_not(
        activation: str, weights: str, sigma_w: float, sigma_b: float,
        size: tuple[tuple[int, ...], int], global_seed: int) -> None:
    spec = NetworkSpec(activation, weights, depth=3, width=1, sigma_w=sigma_w,
                       sigma_b=sigma_b)
    widths, trials = size
    table = _table(spec, global_seed, widths, trials)
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
        for m in widths:
            c, p = stats.loc[(*control, m)], stats.loc[("sampled", "JJT", "paired", m)]
            assert c["mean"] - p["mean"] > 8 * math.hypot(c["sem"], p["sem"]), (control, m)


@pytest.mark.parametrize("scale, expected", [(1.05, ("inconclusive", "not free")),
                                             (1.25, ("not free",))])
def test_damaged_eigenvalues_turn_the_check_red(scale: float, expected: tuple[str, ...],
                                                global_seed: int) -> None:
    """The same ReLU networks, each J J^T spectrum scaled (a damaged cell): the paired
    distance no longer decays; the verdict is never ``free``, so the check fails under
    ``fail_on_disagreement``, and a large enough damage is ``not free`` outright."""
    spec = NetworkSpec("relu", "orthogonal", depth=3, width=1, sigma_w=2**0.5)
    rows = []
    widths, trials = CI_SIZE
    for m in widths:
        for t in range(trials):
            ss = np.random.SeedSequence(global_seed, spawn_key=(m, t, 7))
            net = sample_network(spec.with_width(m), np.random.default_rng(ss))
            eigs = scale * net.jacobian_spectrum()
            c = compare(eigs, paired_law(net, "JJT", False), noise_floor(eigs, m, 3))
            rows.append({"activation": "relu", "weights": "orthogonal", "depth": 3,
                         "sigma_w": spec.sigma_w, "sigma_b": 0.0, "q0": 1.0, "width": m,
                         "trial": t, "network": "sampled", "matrix": "JJT",
                         "reference": "paired", "metric": "kolmogorov", "point": 0.0,
                         "value": c.kolmogorov, "law": math.nan, "status": "ok"})
    fits = fit_distances(pd.DataFrame(rows), VARIANT)
    assert fits["verdict"].iloc[0] in expected, fits.to_dict("records")
    assert failing(fits, strict=True).iloc[0]
