"""The freeness study: Haar orthogonal (and Gaussian) words verified, negative controls flagged.

The study runs through the harness's cells (``run_experiment`` with a ``RunConfig``, the same
pipeline as ``freeness-lab experiment=freeness``). The statistical design (paired defects,
extrapolation in 1/M, slope of the RMS defect) is in the docstring of
:mod:`freeness_lab.harness.freeness`. The M sweep and the trial count below
were checked against a 100-trial run per M: the bias / spread ratio of every default word is
at most about 1 and constant in M, so the raw z at the largest M grows like sqrt(trials) (it
reaches 4 to 11 at 30 to 100 trials: reported, not asserted), while the extrapolated z_inf
stays O(1) and every control is tens of SE away from its (wrong) free value at every M.
"""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from montecarlo import assert_mean_within
from scipy import integrate

from freeness_lab import NetworkSpec, SpecError
from freeness_lab.harness import freeness as fr
from freeness_lab.harness import run_experiment, validate_config
from freeness_lab.harness.storage import read_provenance
from freeness_lab.theory import fim_dual_law, meanfield
from freeness_lab.theory.predictions import dphi_moment, limit_family

NETWORK = {"activation": "tanh", "depth": 3, "sigma_w": 1.2, "sigma_b": 0.1}
WIDTHS = (32, 64, 128, 256)
TRIALS = 30


def freeness_run(out, *, network=NETWORK, widths=WIDTHS, trials=TRIALS, seed=0, n_jobs=2,
                 ensembles=("orthogonal", "gaussian"), words=None, name="freeness"):
    """Run the freeness study of the app into ``out``; the validated config and the result."""
    run = validate_config({"network": network,
                           "sweep": {"widths": list(widths), "trials": trials,
                                     "axes": {"weights": list(ensembles)}},
                           "experiment": {"name": name, "studies": ["freeness"],
                                          "words": words},
                           "seed": seed, "n_jobs": n_jobs, "progress": False})
    return run, run_experiment(run, out)


def tables_of(result):
    return {name: pd.read_parquet(path) for name, path in result.tables.items()}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    _, result = freeness_run(tmp_path_factory.mktemp("freeness") / "run")
    tables = tables_of(result)
    return tables["freeness_check"], tables["freeness_fits"], result


def test_table_shape_and_columns(study):
    table, fits, result = study
    words = fr.default_words(3) + fr.negative_controls(3)
    assert len(table) == len(words) * 2 * len(WIDTHS)
    assert set(table["ensemble"]) == {"orthogonal", "gaussian"}
    for col in ["word", "ensemble", "M", "empirical", "se", "free_value", "defect", "z",
                "free_limit", "rms_defect"]:
        assert table[col].notna().all(), col
    assert read_provenance(result.tables["freeness_check"])["seed_entropy"] == 0
    per_trial = pd.read_parquet(result.tables["freeness"])
    assert (per_trial["seed"] == 0).all()
    assert len(per_trial) == len(words) * 2 * len(WIDTHS) * TRIALS
    # the fits table recomputed from the stored statistics is the stored one
    for ens, g in table.groupby("ensemble"):
        refit = fr.fit_decay(g.drop(columns=["activation", "depth", "sigma_w", "sigma_b", "q0"]))
        stored = fits[fits["ensemble"] == ens].reset_index(drop=True)
        pd.testing.assert_frame_equal(refit, stored[refit.columns], check_exact=True)


@pytest.mark.parametrize("ensemble", ["orthogonal", "gaussian"])
def test_default_words_verified_free(study, ensemble):
    _, fits, _ = study
    rows = fits[(fits["expected"] == "free") & (fits["ensemble"] == ensemble)]
    assert len(rows) == len(fr.default_words(3))
    for r in rows.itertuples():
        assert abs(r.z_inf) < fr.Z_WITHIN_NOISE, r
        assert r.slope < -0.5 and r.slope / r.slope_se < -fr.SLOPE_SIGNIFICANCE, r
        assert r.verdict == "free", r


def test_negative_controls_flagged_at_every_m(study):
    table, fits, _ = study
    controls = table[table["expected"] == "not free"]
    assert len(controls) == len(fr.negative_controls(3)) * 2 * len(WIDTHS)
    assert (controls["z"].abs() >= fr.Z_NOT_FREE).all()
    assert (fits.loc[fits["expected"] == "not free", "verdict"] == "not free").all()
    # and their defect does not decay
    assert (fits.loc[fits["expected"] == "not free", "slope"].abs() < 0.2).all()


def test_paired_defect_cancels_marginal_fluctuations(study):
    # an uncentered word: the paired spread (O(1/M)) is far below the spread against the
    # limit marginals (O(M^-1/2))
    table, _, _ = study
    row = table[(table["word"] == "W3 D3 W3^T D3^2") & (table["ensemble"] == "orthogonal")
                & (table["M"] == 256)].iloc[0]
    assert row["se"] < 0.2 * row["empirical_se"]


def _dphi_moment(q, k):
    """E[tanh'(h)^k], h ~ N(0, q), by adaptive quadrature (independent of the project's rule)."""
    s = math.sqrt(q)
    val, _ = integrate.quad(lambda z: (1 - math.tanh(s * z) ** 2) ** k
                            * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
                            -12, 12, epsabs=1e-15, epsrel=1e-13, limit=400)
    return val


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_limit_predictions_closed_forms(weights):
    spec = NetworkSpec("tanh", weights, depth=3, width=64, sigma_w=1.2, sigma_b=0.1)
    q = meanfield.preactivation_variances(spec)
    s2 = spec.sigma_w**2
    e = [[_dphi_moment(q[i], k) for k in range(5)] for i in range(3)]

    def limit(word):
        return fr.limit_prediction(spec, fr.StudyWord(word, "x"))

    # tr(W D1 W^T D2) = sigma^2 tr(D1) tr(D2) (both ensembles)
    assert limit("W2 D1 W2^T D2") == pytest.approx(s2 * e[0][1] * e[1][1], rel=1e-10)
    # 2-layer tr(J J^T) = chi_1 chi_2
    assert limit("D2 W2 D1 W1 W1^T D1 W2^T D2") == pytest.approx(
        s2**2 * e[0][2] * e[1][2], rel=1e-10)
    # D family: classical, independent across layers; D1, D2 alternating = product of moments
    assert limit("D1 D2 D1 D2") == pytest.approx(e[0][2] * e[1][2], rel=1e-10)
    # tr(W W^T W W^T): sigma^4 (orthogonal), 2 sigma^4 (Marchenko-Pastur)
    assert limit("W1 W1^T W1 W1^T") == pytest.approx(
        s2**2 * (1 if weights == "orthogonal" else 2), rel=1e-12)
    # H_2 mean: m1(H_2) = qhat_1 + chi_1 qhat_0 (docs/conventions.md: m1(l+1) = qhat_l + chi m1(l))
    qhat = meanfield.post_activation_moments(spec)
    assert limit("H2") == pytest.approx(qhat[1] + s2 * e[0][2] * qhat[0], rel=1e-10)
    # free (H_2, D_2): tr(H2 D2 H2 D2) by the abab formula from the marginals
    m_h = fim_dual_law(replace(spec, depth=2)).moments(2)
    assert limit("H2 D2 H2 D2") == pytest.approx(
        m_h[1] * e[1][1] ** 2 + m_h[0] ** 2 * e[1][2] - m_h[0] ** 2 * e[1][1] ** 2, rel=1e-10)


def test_h_limit_moments_against_monte_carlo(global_seed):
    # H_2 = qhat_1 + W2 D1 H1 D1 W2^T: limit m_2 vs the empirical tr(H2^2) at M = 400
    from freeness_lab.simulate.network import sample_network
    from freeness_lab.simulate.words import word_trace

    spec = NetworkSpec("tanh", "gaussian", depth=2, width=400, sigma_w=1.2, sigma_b=0.1)
    vals = [word_trace(sample_network(spec, rng=s + 100 * global_seed), "H2 H2")
            for s in range(8)]
    limit = fim_dual_law(spec).moments(2)[1]
    # the 1/M bias term of H and O(1/M) finite-size effects: allow 3/M besides 4 SE
    assert_mean_within(vals, limit, bias=3 / 400 * limit)


def test_results_identical_for_any_n_jobs_and_width_order(tmp_path):
    # the default words at depth 2 include the three negative controls (one with the
    # deterministic permutation weights)
    net = {"activation": "relu", "depth": 2, "sigma_w": math.sqrt(2)}
    _, a = freeness_run(tmp_path / "a", network=net, widths=(16, 24), trials=3, seed=7,
                        n_jobs=1)
    _, b = freeness_run(tmp_path / "b", network=net, widths=(24, 16), trials=3, seed=7,
                        n_jobs=2)
    keys = ["weights", "width", "trial", "word"]
    ta, tb = tables_of(a), tables_of(b)
    assert set(ta) == set(tb) == {"freeness", "freeness_check", "freeness_fits"}
    for name, sort in (("freeness", keys), ("freeness_check", ["ensemble", "M", "word"]),
                       ("freeness_fits", ["ensemble", "word"])):
        x = ta[name].sort_values(sort).reset_index(drop=True)
        y = tb[name].sort_values(sort).reset_index(drop=True)
        pd.testing.assert_frame_equal(x, y, check_exact=True)


def test_trial_values_single_family_word_is_exact():
    spec = NetworkSpec("tanh", "orthogonal", depth=2, width=20)
    vals = fr.trial_values(spec, [fr.StudyWord("D1 D2^2c D1", "x"),
                                  fr.StudyWord("W1 W1^T W1^2", "x")], seed=1)
    np.testing.assert_allclose(vals[:, 0], vals[:, 1], rtol=1e-12, atol=1e-14)


def test_fit_decay_verdicts_on_synthetic_cells():
    ms = np.array([32, 64, 128, 256])
    rows = []
    for word, mean, se, rms in [("free", 0.3 / ms, 0.3 / ms, 0.5 / ms),
                                ("stuck", 0.1 + 0 * ms, 0.001 + 0 * ms, 0.1 + 0 * ms),
                                ("biased", 0.3 / ms + 0.01, 0.3 / ms / 10, 0.5 / ms + 0.01)]:
        for m, a, b, c in zip(ms, mean, se, rms, strict=True):
            rows.append({"word": word, "ensemble": "orthogonal", "group": "g", "expected": "",
                         "M": m, "signed_defect": a, "defect": abs(a), "se": b, "z": a / b,
                         "rms_defect": c, "rms_se": 0.1 * c})
    fits = fr.fit_decay(pd.DataFrame(rows)).set_index("word")
    assert fits.loc["free", "verdict"] == "free"
    assert fits.loc["free", "slope"] == pytest.approx(-1.0, abs=1e-12)
    assert fits.loc["free", "z_inf"] == pytest.approx(0.0, abs=1e-9)
    assert fits.loc["stuck", "verdict"] == "not free"
    # a constant offset under a decaying bias: z_inf far from 0, not called free
    assert fits.loc["biased", "verdict"] != "free"


def test_outputs_written(study):
    _, _, result = study
    for p in [*result.tables.values(), *result.plots, result.summary]:
        assert p.exists() and p.stat().st_size > 0
    assert result.plots and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
                                for p in result.plots)
    assert {"freeness", "freeness_check", "freeness_fits"} <= set(result.tables)
    text = result.summary.read_text()
    assert "**PASS**" in text and text.count("- PASS: ") == 2 * 14


def test_bad_inputs():
    with pytest.raises(ValueError, match="split"):
        fr.StudyWord("D1 D2", "g", split="none-such")
    with pytest.raises(ValueError, match="weights"):
        fr.StudyWord("D1 D2", "g", weights="identity")
    with pytest.raises(ValueError, match="bad letter"):
        fr.StudyWord("D1 Q2", "g")
    with pytest.raises(ValueError, match="depth"):
        fr.default_words(1)
    base = {"network": NETWORK, "experiment": {"studies": ["freeness"]}}
    with pytest.raises(SpecError, match=r"sweep\.widths.*at least 2 widths"):
        validate_config({**base, "sweep": {"widths": [32], "trials": 3}})
    with pytest.raises(SpecError, match=r"sweep\.trials.*>= 2"):
        validate_config({**base, "sweep": {"widths": [32, 64], "trials": 1}})
    with pytest.raises(SpecError, match=r"sweep\.axes\.weights\[0\].*haar"):
        validate_config({**base, "sweep": {"widths": [32, 64], "trials": 2,
                                           "axes": {"weights": ["haar"]}}})
    with pytest.raises(SpecError, match=r"experiment\.words.*depth 3"):
        validate_config({**base, "sweep": {"widths": [32, 64], "trials": 2},
                         "experiment": {"studies": ["freeness"], "words": ["W4"]}})


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 6))
def test_verdicts_hold_for_other_seeds(seed, tmp_path):
    # a Monte Carlo check must pass for any seed, not only the one CI runs (pytest -m slow)
    _, result = freeness_run(tmp_path / "run", seed=seed)
    fits = tables_of(result)["freeness_fits"]
    expected = np.where(fits["expected"] == "free", "free", "not free")
    assert (fits["verdict"] == expected).all(), fits[fits["verdict"] != expected]
    assert (fits.loc[fits["expected"] == "free", "slope"] < -0.5).all()


@pytest.mark.parametrize("activation", ["tanh", "relu", "hard_tanh"])
def test_dphi_moment_against_quadrature(activation):
    spec = NetworkSpec(activation, "orthogonal", depth=2, width=8)
    act = spec.act
    for q, k in [(0.3, 1), (1.7, 2), (0.9, 4)]:
        s = math.sqrt(q)
        ref, _ = integrate.quad(lambda z, s=s, k=k: float(act.dphi(np.array(s * z))) ** k
                                * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
                                -12, 12, points=[0.0, -1 / s, 1 / s], limit=400)
        assert dphi_moment(spec, q, k) == pytest.approx(ref, rel=1e-8, abs=1e-12)
    with pytest.raises(ValueError, match="kind"):
        limit_family(spec, "Q", ["Q1"], [1], haar=True)


def test_a_limit_prediction_that_raises_is_a_failing_theory_error(tmp_path, monkeypatch):
    real = fr.limit_prediction

    def broken(spec, sw):
        if sw.word == "W2 D1c W2^T D2c":
            raise ZeroDivisionError("injected")
        return real(spec, sw)
    monkeypatch.setattr(fr, "limit_prediction", broken)
    run = validate_config({"network": {"activation": "relu", "depth": 2},
                           "sweep": {"widths": [16, 24], "trials": 3,
                                     "axes": {"weights": ["orthogonal", "gaussian"]}},
                           "experiment": {"studies": ["freeness"], "name": "broken"},
                           "n_jobs": 1, "progress": False})
    result = run_experiment(run, tmp_path / "run")
    fits = pd.read_parquet(result.tables["freeness_fits"])
    bad = fits[fits["word"] == "W2 D1c W2^T D2c"]
    assert len(bad) == 2 and (bad["verdict"] == "theory error").all()
    assert (fits.loc[fits["word"] != "W2 D1c W2^T D2c", "verdict"] != "theory error").all()
    assert result.failed_checks >= 2
    text = result.summary.read_text()
    assert "ZeroDivisionError: injected" in text and "**FAIL**" in text
