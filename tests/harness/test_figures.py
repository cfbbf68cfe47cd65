"""Tests of freeness_lab.harness.figures and small-size runs of every paper figure: the app's
figure presets (every ``conf/experiment/<name>.yaml`` with a CI-size ``<name>_small.yaml``)
through the app; full sizes under ``slow``."""

from __future__ import annotations

import dataclasses
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from freeness_lab import NetworkSpec, SpecError
from freeness_lab.harness import figures as F
from freeness_lab.harness import jacobian_metrics as JM
from freeness_lab.harness import run_experiment, validate_config
from freeness_lab.harness import stats as S
from freeness_lab.harness.storage import read_provenance
from freeness_lab.simulate import jacobian_spectrum
from freeness_lab.theory import meanfield
from freeness_lab.theory.predictions import critical_point

ROOT = Path(__file__).resolve().parents[2]
#: the app's figure presets: every experiment preset with a CI-size preset beside it
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")
                 if p.with_name(f"{p.stem}_small.yaml").is_file())
FIG4 = "experiments/fig4_collins_hayase/run.py"


def test_linear_fit_matches_the_ordinary_least_squares_formulas():
    gen = np.random.default_rng(0)
    x = np.arange(10.0)
    y = 1.5 + 0.3 * x + gen.standard_normal(10)
    fit = S.linear_fit(x, y)
    ref = stats.linregress(x, y)
    assert fit.slope == pytest.approx(ref.slope, rel=1e-12)
    assert fit.intercept == pytest.approx(ref.intercept, rel=1e-12)
    assert fit.slope_se == pytest.approx(ref.stderr, rel=1e-10)
    assert fit.intercept_se == pytest.approx(ref.intercept_stderr, rel=1e-10)


def test_weighted_fit_recovers_an_exact_line_and_inflates_errors_for_misfit():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    fit = S.linear_fit(x, 2 - 0.5 * x, se=np.ones(4))
    assert (fit.intercept, fit.slope) == (pytest.approx(2), pytest.approx(-0.5))
    # exact data: chi^2 = 0, so the SEs are the weights' own, (X^T W X)^-1
    cov = np.linalg.inv(np.column_stack([np.ones(4), x]).T @ np.column_stack([np.ones(4), x]))
    assert fit.slope_se == pytest.approx(math.sqrt(cov[1, 1]))
    noisy = S.linear_fit(x, 2 - 0.5 * x + np.array([1, -1, 1, -1.0]), se=np.full(4, 0.01))
    assert noisy.chi2_dof > 1 and noisy.slope_se > 0.01 * math.sqrt(cov[1, 1])
    with pytest.raises(ValueError, match="se"):
        S.linear_fit(x, x, se=np.zeros(4))


def test_correlation_interval_is_fisher_z():
    gen = np.random.default_rng(1)
    x = gen.standard_normal(40)
    y = 0.6 * x + gen.standard_normal(40)
    c = S.correlation(x, y)
    r = stats.pearsonr(x, y)[0]
    half = 1.959963984540054 / math.sqrt(37)
    assert c.r == pytest.approx(r)
    assert (c.low, c.high) == (pytest.approx(math.tanh(math.atanh(r) - half)),
                               pytest.approx(math.tanh(math.atanh(r) + half)))
    s = S.correlation(x, y, method="spearman")
    assert s.r == pytest.approx(stats.spearmanr(x, y)[0])
    assert s.high - s.low > c.high - c.low  # the 1.06 variance factor
    with pytest.raises(ValueError, match="method"):
        S.correlation(x, y, method="kendall")
    with pytest.raises(ValueError, match="finite"):
        S.correlation(np.r_[x[:-1], np.nan], y)


def test_correlation_interval_covers_the_true_value():
    """Coverage of the 95 % interval over 400 bivariate normal samples (n = 30, rho = 0.5):
    binomial SE of the coverage is 0.011."""
    gen = np.random.default_rng(2)
    cov = [[1, 0.5], [0.5, 1]]
    hits = 0
    for _ in range(400):
        c = S.correlation(*gen.multivariate_normal([0, 0], cov, 30).T)
        hits += c.low < 0.5 < c.high
    assert abs(hits / 400 - 0.95) < 4 * math.sqrt(0.95 * 0.05 / 400)


@pytest.mark.parametrize(("activation", "q_star"), [("hard_tanh", 0.5), ("erf", 0.3),
                                                    ("relu", 1.0)])
def test_critical_point_is_on_the_edge_of_chaos_at_q_star(activation, q_star):
    sw, sb, q0 = critical_point(activation, q_star)
    assert meanfield.chi(activation, q_star, sw) == pytest.approx(1.0, rel=1e-12)
    assert meanfield.variance_map(activation, q_star, sw, sb) == pytest.approx(q_star, rel=1e-12)
    # the input's second moment is a post-activation moment: q^1 = sw^2 q0 + sb^2 = q*
    assert sw**2 * q0 + sb**2 == pytest.approx(q_star, rel=1e-12)


def test_cdf_helpers():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(S.empirical_cdf([1.0, 2.0], x), [0, 0.5, 1, 1])
    assert S.sup_cdf_distance([0, 0.5, 1], [0, 0.25, 1]) == 0.25


def _summary_lines(out: Path) -> list[str]:
    return [ln for ln in (out / "summary.md").read_text().splitlines()
            if ln.startswith(("- PASS", "- FAIL"))]


def _app(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "freeness_lab", *args, f"hydra.run.dir={out}",
            "progress=false"]


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    """Each figure preset run once at its small size: name -> (completed process, folder)."""
    runs = {}

    def run(name: str) -> tuple[subprocess.CompletedProcess, Path]:
        if name not in runs:
            out = tmp_path_factory.mktemp(name) / "run"
            proc = subprocess.run(_app(out, f"experiment={name}_small"),
                                  cwd=ROOT, capture_output=True, text=True, timeout=1800)
            runs[name] = proc, out
        return runs[name]

    return run


def test_figure_parameters_are_validated_naming_the_field():
    base = {"sweep": {"widths": [16], "trials": 2, "axes": {"depth": [1, 2, 3]}},
            "progress": False}

    def figure(**fields):
        return validate_config({**base, "experiment": {"studies": ["pennington2017"],
                                                       "figure": fields}})

    assert figure().experiment.figure == {}
    with pytest.raises(SpecError, match=r"experiment\.figure\.bnad: unknown key"):
        figure(bnad=2.0)
    with pytest.raises(SpecError, match=r"experiment\.figure\.cases\[0\]"):
        figure(cases=[{"activation": "relu"}])
    with pytest.raises(SpecError, match=r"experiment\.figure\.band"):
        figure(band=0.5)
    with pytest.raises(SpecError, match=r"experiment\.figure\.spectra_depths"):
        figure(spectra_depths=[7])
    with pytest.raises(SpecError, match=r"sweep\.axes\.depth"):
        validate_config({**base, "sweep": {"widths": [16], "trials": 2},
                         "experiment": {"studies": ["pennington2017"]}})
    with pytest.raises(SpecError, match=r"experiment\.figure: must be null or a mapping"):
        validate_config({**base, "experiment": {"figure": [1]}})


def test_every_figure_preset_is_found():
    assert {"collins_hayase2023", "pennington2017", "pennington2018",
            "hayase_karakida2021", "chhaibi2022"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_small_figure_preset_runs_through_the_app_and_its_claims_pass(preset, small_runs):
    proc, out = small_runs(preset)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = _summary_lines(out)
    assert lines and all(ln.startswith("- PASS") for ln in lines), lines
    assert "**PASS**" in (out / "summary.md").read_text()
    plots = list((out / "plots").glob("*.png"))
    assert plots and all(p.read_bytes()[:4] == b"\x89PNG" for p in plots)
    tables = list(out.glob("*.parquet"))
    assert tables
    for table in tables:
        assert read_provenance(table)["config"]["experiment"]["name"] == preset


def test_small_fig1_checks_every_case(small_runs):
    _, out = small_runs("pennington2017")
    lines = _summary_lines(out)
    assert sum("variance slope" in ln for ln in lines) == 8
    assert sum("series law = closed form" in ln for ln in lines) == 8
    assert sum("near isometry at L=16" in ln for ln in lines) == 1
    trials = pd.read_parquet(out / "fig1_trials.parquet")
    assert len(trials) == 8 * 4 * 8 and set(trials["activation"]) == {"relu", "hard_tanh", "erf"}
    assert {p.name for p in (out / "plots").glob("*.png")} == {"fig1_spectra.png",
                                                                "fig1_variance.png"}


def test_small_fig2_checks_both_classes_and_reports_every_pair(small_runs):
    _, out = small_runs("pennington2018")
    lines = _summary_lines(out)
    assert len(lines) == 3 and sum("class -> S-transform limit" in ln for ln in lines) == 2
    distances = pd.read_parquet(out / "fig2_mc_cdf_distances.parquet")
    assert len(distances) == 2 * 3 and distances["sup_cdf_distance"].between(0, 1).all()
    eigs = pd.read_parquet(out / "fig2_eigenvalues.parquet")
    assert len(eigs) == 2 * 2 * 3 * 150 and (eigs["weights"] == "orthogonal").all()


def test_small_fig3_checks_spectra_atoms_means_and_the_threshold(small_runs):
    _, out = small_runs("hayase_karakida2021")
    lines = _summary_lines(out)
    assert sum("atom at" in ln for ln in lines) == 3
    assert sum("mean of H_l grows" in ln for ln in lines) == 2
    assert sum("divergence boundary" in ln for ln in lines) == 1 and len(lines) == 12
    runs = pd.read_parquet(out / "fig3_training.parquet")
    assert len(runs) == 2 * 8 * 3 * 6 and runs["diverged"].dtype == bool
    bounds = pd.read_parquet(out / "fig3_boundary.parquet")
    assert len(bounds) == 2 * 8 * 3 and bounds["monotone"].all()


@pytest.mark.parametrize(("preset", "tables"), [
    ("pennington2018", ("fig2_eigenvalues", "fig2_moments", "fig2_mc_cdf_distances")),
    ("chhaibi2022", ("chhaibi2022_spectra", "chhaibi2022_runs", "chhaibi2022_metrics",
                     "chhaibi2022_correlations"))])
def test_a_killed_figure_run_resumes_to_the_same_tables(preset, tables, small_runs, tmp_path):
    """Figures 2 and 5 killed (SIGKILL) once a first cell is written, then run again: exactly
    the cells the killed run finished are reused, the others computed, and the tables equal
    those of the uninterrupted run."""
    _, reference = small_runs(preset)
    out = tmp_path / "run"
    args = _app(out, f"experiment={preset}_small", "n_jobs=1")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    log = out / "computed_cells.log"
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and not (
            log.is_file() and log.read_text().splitlines()):
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run finished before it could be killed"
    # cells the killed run finished: at least the first; another may have finished
    # between the poll and the kill (a fast machine)
    finished = len(log.read_text().splitlines())
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    counts = re.search(r"cells (\d+) \(computed (\d+), reused (\d+)\)",
                       again.stderr + again.stdout)
    total, computed, reused = map(int, counts.groups())
    assert reused == finished >= 1 and computed == total - finished
    for name in tables:
        pd.testing.assert_frame_equal(pd.read_parquet(out / f"{name}.parquet"),
                                      pd.read_parquet(reference / f"{name}.parquet"))


def test_small_fig5_checks_every_profile_trains_and_reports_every_correlation(small_runs):
    """Figure 5 at CI size: one claim per (profile, ensemble) from the metrics table, every
    training run kept (diverged ones flagged), every correlation with a finite interval; the
    correlation claims are reported, not checked (10 architectures; full size: slow)."""
    _, out = small_runs("chhaibi2022")
    lines = _summary_lines(out)
    assert len(lines) == 3 * 2 + 2 and all("J J^T metrics" in ln for ln in lines)
    for profile in ("bottleneck", "expanding", "contracting"):
        for ens in ("gaussian", "orthogonal"):
            assert sum(f"- PASS: J J^T metrics, {profile} " in ln and ln.split(" -- ")[0]
                       .endswith(ens) for ln in lines) == 1, (profile, ens)
    text = (out / "summary.md").read_text()
    assert text.count("- not checked at this size: log10 q90 of J J^T at init correlates "
                      "with ") == 2
    metrics = pd.read_parquet(out / "chhaibi2022_metrics.parquet")
    claimed = metrics[metrics["claimed"]]
    assert len(claimed) == 8 * 3 and claimed["passed"].all()
    assert (claimed["z"].abs() < claimed["tolerance"]).all()
    spectra = pd.read_parquet(out / "chhaibi2022_spectra.parquet")
    assert len(spectra) == 8 * 12 and spectra["spawn_key"].is_unique
    assert set(spectra["widths"]) >= {"128-64-32-128", "32-128-256-512", "512-256-128-64"}
    runs = pd.read_parquet(out / "chhaibi2022_runs.parquet")
    assert len(runs) == 10 * 2 and runs["diverged"].dtype == bool
    assert runs.loc[~runs["diverged"], "test_accuracy"].between(0, 1).all()
    assert runs["widths"].str.startswith("64-").all() and runs["widths"].str.endswith("-10").all()
    corr = pd.read_parquet(out / "chhaibi2022_correlations.parquet")
    assert len(corr) == 5 * 2 * 2
    assert np.all(corr["ci_low"] <= corr["r"]) and np.all(corr["r"] <= corr["ci_high"])
    assert {p.name for p in (out / "plots").glob("*.png")} == {
        "chhaibi2022_densities.png", "chhaibi2022_metrics.png", "chhaibi2022_correlations.png"}


def _fig5_profile(**figure):
    return validate_config({
        "experiment": {"name": "chhaibi2022", "studies": ["chhaibi2022"], "figure": {
            "width": 64, "trials": 12, "weights": ["gaussian"],
            "profiles": [{"name": "bottleneck", "width_ratios": [1, 0.5, 0.25, 1],
                          "gain": 1.0}], **figure}},
        "n_jobs": 1, "progress": False})


def test_fig5_claims_turn_red_on_a_wrong_law(monkeypatch, tmp_path):
    """The same networks pass against the limit law and fail against a law of the wrong
    scale (sigma_w off by 20 %: every quantile and m1 off by a factor 1.2^6 = 3)."""
    run = _fig5_profile()
    good = run_experiment(run, tmp_path / "good")
    assert good.failed_checks == 0
    real = JM.jacobian_law
    monkeypatch.setattr(JM, "jacobian_law", lambda spec: real(
        dataclasses.replace(spec, sigma_w=1.2 * spec.sigma_w)))
    bad = run_experiment(run, tmp_path / "bad")
    assert bad.stats.computed == 1 and bad.failed_checks == 1
    lines = _summary_lines(bad.out_dir)
    assert len(lines) == 1 and lines[0].startswith("- FAIL: J J^T metrics, bottleneck")
    metrics = pd.read_parquet(bad.out_dir / "chhaibi2022_metrics.parquet")
    assert not metrics.loc[metrics["claimed"], "passed"].any()
    assert "**FAIL**" in (bad.out_dir / "summary.md").read_text()


def test_fig5_parameters_are_validated_naming_the_field():
    with pytest.raises(SpecError, match=r"experiment\.figure\.widht: unknown key"):
        _fig5_profile(widht=3)
    with pytest.raises(SpecError, match=r"experiment\.figure\.profiles\[0\]\.width_ratios"):
        _fig5_profile(profiles=[{"name": "a", "width_ratios": [1, 0], "gain": 1.0}])
    with pytest.raises(SpecError, match=r"experiment\.figure\.profiles: names must be"):
        _fig5_profile(profiles=[{"name": "a", "width_ratios": [1, 1], "gain": 1.0}] * 2)
    with pytest.raises(SpecError, match=r"experiment\.figure\.trials"):
        _fig5_profile(trials=2)
    with pytest.raises(SpecError, match=r"experiment\.figure\.n_architectures: the grid "
                       r"has only 2 distinct"):
        validate_config({"experiment": {"studies": ["chhaibi2022_training"], "figure": {
            "hidden_layers": [1], "ratios": [1.0], "gains": [1.0], "sigma_bs": [0.0, 0.1]}}})


def test_fig5_metrics_of_the_nonzero_part_agree_between_law_and_sample():
    """The metrics' definitions: the law of J J^T of a Gaussian ReLU network 400-200-400 has
    an atom 3/4 at 0 (rank 100 = the active units of layer 1) and its q50 / q90 are those of
    the nonzero part; 32 sampled networks give the same zero mass, q50, q90 and m1 (within
    4 SE)."""
    spec = NetworkSpec("relu", "gaussian", 2, widths=(400, 200, 400), sigma_w=math.sqrt(2))
    th = JM.theory_metrics(spec)
    assert th["zero_mass"] == pytest.approx(0.75) and th["m1"] == pytest.approx(1.0)
    assert 0 < th["q50"] < th["q90"]
    gen = np.random.default_rng(0)
    mc = pd.DataFrame([JM.esd_metrics(jacobian_spectrum(spec, gen), spec) for _ in range(32)])
    for key in ("zero_mass", "q50", "q90", "m1"):
        mean, se = S.mean_se(mc[key].to_numpy())
        assert abs(mean - th[key]) < 4 * se, (key, mean, se, th[key])


def _fig4(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, FIG4, *args, f"hydra.run.dir={out}",
                           "progress=false"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    return proc, out


def test_small_fig4_claims_and_its_alias_resumes_the_app_run(small_runs, tmp_path):
    proc, out = small_runs("collins_hayase2023")
    lines = _summary_lines(out)
    # 14 words x 2 ensembles (3 controls each); the spectral panel: per ensemble, J J^T and
    # H_L free against their paired law, the classical and cyclic controls not free
    assert len(lines) == 2 * 14 + 2 * 4
    assert sum(" is not free -- " in ln for ln in lines) == 2 * 3 + 2 * 2
    for ens in ("orthogonal", "gaussian"):
        for matrix in ("JJT", "H_L"):
            claim = f"- PASS: {matrix} [sampled, {ens}, relu] vs paired (kolmogorov) is free "
            assert any(ln.startswith(f"{claim}-- verdict free;") for ln in lines), claim
    plots = {p.name for p in (out / "plots").glob("*.png")}
    assert "fig4_spectral.png" in plots and len(plots) == 2 + 1 + 2 + 2 * 2
    prov = read_provenance(out / "freeness_fits.parquet")
    assert prov["config"]["network"]["q_star"] == 0.5
    fits = pd.read_parquet(out / "freeness_fits.parquet")
    assert (fits["verdict"] == fits["expected"]).all()
    spectral = pd.read_parquet(out / "spectral_check_fits.parquet")
    claimed = spectral[spectral["expected"] != ""]
    assert len(claimed) == 2 * 4 and (claimed["verdict"] == claimed["expected"]).all()
    # the spectral cells are the grid's own: ReLU at sigma_w^2 = 2, depth 3, M = 16..256
    table = pd.read_parquet(out / "spectral_check_distance.parquet")
    assert set(table["activation"]) == {"relu"} and set(table["depth"]) == {3}
    assert np.allclose(table["sigma_w"] ** 2, 2) and table["width"].max() == 256
    # the alias runs the same command: every cell reused, the same tables
    again = subprocess.run([sys.executable, FIG4, "size=small", f"hydra.run.dir={out}",
                            "progress=false"], cwd=ROOT, capture_output=True, text=True,
                           timeout=1800)
    assert again.returncode == 0 and "computed 0, reused 16" in again.stderr + again.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(out / "freeness_fits.parquet"), fits)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "spectral_check_fits.parquet"),
                                  spectral)


def test_figure_alias_refuses_an_unknown_size(tmp_path):
    proc, out = _fig4(tmp_path, "size=huge")
    assert proc.returncode == 2 and "size: must be one of small, full" in proc.stderr
    assert not out.exists()
    assert F.app_arguments("pennington2017", ["size=small", "seed=1"]) == [
        "experiment=pennington2017_small", "seed=1"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_full_size_figure_preset(preset, tmp_path):
    """The documented command, full size (see experiments/README.md for runtimes)."""
    out = tmp_path / "run"
    proc = subprocess.run(_app(out, f"experiment={preset}"), cwd=ROOT, capture_output=True,
                          text=True, timeout=7200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "**PASS**" in (out / "summary.md").read_text()
