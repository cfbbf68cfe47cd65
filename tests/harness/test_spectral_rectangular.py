"""The spectral check on rectangular networks (issue 15, part 3): each trial's ESD against the
limit and the paired law of its own widths (:mod:`freeness_lab.harness.spectral_references`),
the square-only controls recorded as ``unavailable`` and not claimed, and the spectrum study
with ``network.width_ratios`` and ``experiment.spectral_trials`` end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.harness import run_experiment, spectral_check, validate_config
from freeness_lab.harness.app import prevalidate
from freeness_lab.harness.spectral_check import NOT_CLAIMED, fit_distances, trial_rows
from freeness_lab.harness.spectral_distance import compare, noise_floor
from freeness_lab.harness.spectral_references import empirical_d2_laws
from freeness_lab.harness.spectral_report import failing
from freeness_lab.simulate import sample_network
from freeness_lab.theory import fim_dual_chain_law, jacobian_product_law

#: ReLU at the edge of chaos, depth 3, N = (M, M/2, M, 3M/2): every layer changes dimension
RATIOS = (1, 0.5, 1, 1.5)
VARIANT = ["activation", "weights", "depth", "sigma_w", "sigma_b", "q0"]


def _spec(weights: str, m: int) -> NetworkSpec:
    return NetworkSpec("relu", weights, depth=3, widths=tuple(round(r * m) for r in RATIOS),
                       sigma_w=2**0.5)


def _trial_table(weights: str, m: int, trials: int, paired=None, monkeypatch=None
                 ) -> pd.DataFrame:
    """The spectral check's rows of ``trials`` networks at M = ``m`` (and the paired law
    replaced by ``paired`` when given)."""
    if paired is not None:
        monkeypatch.setattr(spectral_check, "paired_law", paired)
    spec, frames = _spec(weights, m), []
    for t in range(trials):
        seed = np.random.SeedSequence(11, spawn_key=(m, t))
        net = sample_network(spec, np.random.default_rng(seed))
        spectra = {"JJT": net.jacobian_spectrum(), "H_L": net.fim_dual_spectrum()}
        rows = pd.DataFrame(trial_rows(net, spectra, seed, include_bias=True))
        frames.append(rows.assign(activation="relu", weights=weights, depth=3,
                                  sigma_w=spec.sigma_w, sigma_b=0.0, q0=1.0, width=m, trial=t,
                                  widths="-".join(map(str, spec.layer_widths))))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_rectangular_trials_against_their_own_paired_law(weights):
    """M = 64, widths 64-32-64-96, 4 trials: limit and paired are ``ok``, the paired
    Kolmogorov distance is below the limit one on average (measured, orthogonal / Gaussian:
    J J^T 0.017 / 0.018 vs 0.034, H_L 0.016 / 0.023 vs 0.66 / 0.67 -- the limit law's atoms
    sit at the mean-field shifts, not the trial's), and the paired
    law's atom at 0 of J J^T (rank deficiency: dead units and the narrow layer) and its
    atom of H_L at c_2 carry exactly the ESD's fractions there."""
    table = _trial_table(weights, 64, 4)
    square_only = table["reference"].eq("classical") | table["network"].eq("cyclic")
    assert (table.loc[square_only, "status"] == "unavailable").all()
    assert (table.loc[~square_only, "status"] == "ok").all()
    kolmogorov = table[(table["metric"] == "kolmogorov") & ~square_only]
    mean = kolmogorov.groupby(["matrix", "reference"])["value"].mean()
    for matrix in ("JJT", "H_L"):
        assert mean[(matrix, "paired")] < 0.04
        assert mean[(matrix, "paired")] < mean[(matrix, "limit")]
    atoms = table[(table["metric"] == "atom") & (table["reference"] == "paired")]
    jjt = atoms[atoms["matrix"] == "JJT"]
    assert len(jjt) == 4 and (jjt["point"] == 0).all()
    assert (jjt["value"] >= 1 - 32 / 96).all()  # at least the narrow layer's deficit
    np.testing.assert_allclose(jjt["law"], jjt["value"], atol=1e-9)
    hl = atoms[atoms["matrix"] == "H_L"]
    assert (hl.groupby("trial").size() >= 1).all()
    lowest = hl.loc[hl.groupby("trial")["point"].idxmin()]
    np.testing.assert_allclose(lowest["law"], lowest["value"], atol=1e-9)


def test_the_square_paired_law_on_a_rectangular_trial_is_far_and_not_free(monkeypatch):
    """The failure path: the paired law built as if the network were square (the widths and
    ratios ignored) misplaces the atoms (J J^T: mass at 0 max_l P(D_l = 0) ~ 1/2 instead of
    >= 2/3; H_L: no atom at c_2), so its Kolmogorov distance does not shrink with M
    (measured at M = 64: J J^T 0.15 against 0.013 for the right paired law, H_L 0.10
    against 0.016), and the fit calls it ``not free``, a failing verdict where ``free`` is
    expected."""

    def square_paired(net, matrix, include_bias, **kwargs):
        d2 = empirical_d2_laws(net)
        if matrix == "JJT":
            law = jacobian_product_law(d2, net.spec.weights, net.spec.sigma_w)
        else:
            m = net.spec.layer_widths[-1]
            shifts = [(float(x @ x) + 1.0) / m for x in net.activations[:-1]]
            law = fim_dual_chain_law(d2[:-1], shifts, net.spec.weights, net.spec.sigma_w)
        return law.pointwise(0.005 / max(net.spec.layer_widths))

    spec = _spec("orthogonal", 64)
    net = sample_network(spec, np.random.default_rng(3))
    for matrix, eigs in (("JJT", net.jacobian_spectrum()), ("H_L", net.fim_dual_spectrum())):
        floor = noise_floor(eigs, max(spec.layer_widths), spec.depth)
        right = compare(eigs, spectral_check.paired_law(net, matrix, True), floor).kolmogorov
        wrong = compare(eigs, square_paired(net, matrix, True), floor).kolmogorov
        assert wrong > 0.08 and wrong > 4 * right, (matrix, right, wrong)

    table = pd.concat([_trial_table("orthogonal", m, 3, square_paired, monkeypatch)
                       for m in (32, 64)], ignore_index=True)
    fits = fit_distances(table, VARIANT)
    paired = fits[(fits["reference"] == "paired") & (fits["network"] == "sampled")
                  & (fits["metric"] == "kolmogorov")]
    assert list(paired["verdict"]) == ["not free", "not free"], paired.to_string()
    assert failing(paired, strict=False).all()


def test_square_only_comparisons_of_rectangular_networks_are_not_claimed():
    """The classical and cyclic comparisons of a rectangular table are ``unavailable`` in
    every row: not claimed (no ``expected``), never failing, even under strict; the same rows
    of a square table (no ``widths`` column) keep their claim (``no theory``, failing under
    strict: tests/harness/test_spectral_check.py)."""
    table = pd.concat([_trial_table("gaussian", m, 2) for m in (16, 32)], ignore_index=True)
    fits = fit_distances(table, VARIANT)
    controls = fits[fits["reference"].eq("classical") | fits["network"].eq("cyclic")]
    assert len(controls) == 4 and (controls["verdict"] == NOT_CLAIMED).all()
    assert (controls["expected"] == "").all()
    assert not failing(controls, strict=True).any()
    square = fit_distances(table.drop(columns="widths"), VARIANT)
    claimed = square[(square["reference"] == "classical") & (square["metric"] == "kolmogorov")]
    assert list(claimed["verdict"]) == ["no theory"] and list(claimed["expected"]) == ["not free"]


RUN = {"network": {"depth": 3, "weights": "gaussian"},
       "sweep": {"widths": [16, 32], "trials": 3,
                 "axes": {"width_ratios": [[1, 2, 1, 1], [1, 0.5, 1, 1.5]]}},
       "experiment": {"studies": ["spectrum"], "moments": 2, "eigenvalues": False,
                      "spectral_trials": 2},
       "n_jobs": 1, "progress": False}


def test_spectrum_study_with_width_ratios_and_spectral_trials_end_to_end(tmp_path):
    assert prevalidate(["experiment=spectrum", "network.width_ratios=[1,2,2,1]"]) is None
    run = validate_config(RUN)
    first = run_experiment(run, tmp_path)
    assert (first.stats.computed, first.stats.reused) == (4, 0)
    assert first.failed_checks == 0
    spectrum = pd.read_parquet(first.tables["spectrum"])
    distance = pd.read_parquet(first.tables["spectral_distance"])
    for t in (spectrum, distance):
        assert set(t["width_ratios"]) == {"1:2:1:1", "1:0.5:1:1.5"}
    assert set(distance["trial"]) == {0, 1}  # spectral_trials of the 3 trials
    ok = distance[distance["status"] == "ok"]
    assert set(ok["reference"]) == {"limit", "paired"} and set(ok["matrix"]) == {"JJT", "H_L"}
    fits = pd.read_parquet(first.tables["spectral_fits"])
    kolmogorov = fits[fits["metric"] == "kolmogorov"]
    assert len(kolmogorov) == 2 * 6  # per shape: six comparisons
    claimed = kolmogorov[kolmogorov["expected"] != ""]
    assert len(claimed) == 4 and set(claimed["reference"]) == {"paired"}
    assert np.isfinite(claimed["slope"]).all()
    summary = first.summary.read_text()
    assert "## Spectral distances" in summary and "1:0.5:1:1.5" in summary
    assert NOT_CLAIMED in summary
    again = run_experiment(run, tmp_path)
    assert (again.stats.computed, again.stats.reused) == (0, 4)
    pd.testing.assert_frame_equal(pd.read_parquet(again.tables["spectral_distance"]),
                                  distance)
