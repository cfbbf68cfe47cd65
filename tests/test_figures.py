"""Tests of freeness_lab.harness.figures and small-size runs of every paper figure
(experiments/fig*/run.py) through Hydra's compose API; full sizes under ``slow``."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from scipy import stats

from freeness_lab.harness import figures as F
from freeness_lab.harness import stats as S
from freeness_lab.harness.storage import read_provenance
from freeness_lab.theory import meanfield
from freeness_lab.theory.predictions import critical_point

ROOT = Path(__file__).resolve().parents[1]
#: figures with their own Hydra config (figure 4 is a preset of the app, tested below)
FIGURES = ("fig1_pennington2017", "fig2_pennington2018", "fig3_hayase2021",
           "fig5_chhaibi2022")
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


def test_cdf_helpers_and_config_validation():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(S.empirical_cdf([1.0, 2.0], x), [0, 0.5, 1, 1])
    assert S.sup_cdf_distance([0, 0.5, 1], [0, 0.25, 1]) == 0.25
    with pytest.raises(ValueError, match="misspelled"):
        F.check_config_keys({"figure": 1, "misspelled": 2}, F.CONFIG_KEYS)


def _load(figure: str):
    spec = importlib.util.spec_from_file_location(f"_exp_{figure}",
                                                  ROOT / "experiments" / figure / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_small(figure: str, tmp_path: Path) -> tuple[int, Path]:
    with initialize_config_dir(config_dir=str(ROOT / "experiments" / figure),
                               version_base="1.3"):
        cfg = compose("config", overrides=["size=small", "run=ci",
                                           f"results_root={tmp_path}"])
    status = F.run_figure(OmegaConf.to_container(cfg, resolve=True), _load(figure).compute)
    return status, tmp_path / figure / "ci"


def _summary_lines(out: Path) -> list[str]:
    return [ln for ln in (out / "summary.md").read_text().splitlines()
            if ln.startswith(("- PASS", "- FAIL"))]


@pytest.mark.parametrize("figure", FIGURES[:3])
def test_small_figure_runs_and_its_checks_pass(figure, tmp_path):
    status, out = _run_small(figure, tmp_path)
    lines = _summary_lines(out)
    assert lines and status == 0, "\n".join(ln for ln in lines if "FAIL" in ln)
    assert list(out.glob("*.png")) and list(out.glob("*.csv"))
    assert (out / "metadata.json").is_file()


def test_small_fig5_runs_trains_and_reports_every_correlation(tmp_path):
    """At CI size (10 architectures) the correlation claim has little power: the test checks
    the density checks, the bookkeeping of runs and that every correlation has a finite
    interval; the claim itself is checked at full size (slow)."""
    _, out = _run_small("fig5_chhaibi2022", tmp_path)
    lines = _summary_lines(out)
    assert all(ln.startswith("- PASS") for ln in lines if "J J^T mean" in ln)
    assert sum("correlates with" in ln for ln in lines) == 2
    runs = pd.read_csv(out / "fig5_runs.csv")
    assert len(runs) == 10 * 2 and runs["diverged"].dtype == bool
    assert runs.loc[~runs["diverged"], "test_accuracy"].between(0, 1).all()
    corr = pd.read_csv(out / "fig5_correlations.csv")
    assert len(corr) == 6 * 2 * 2
    assert np.all(corr["ci_low"] <= corr["r"]) and np.all(corr["r"] <= corr["ci_high"])


def test_unknown_keys_are_refused(tmp_path):
    with initialize_config_dir(config_dir=str(ROOT / "experiments" / FIGURES[0]),
                               version_base="1.3"):
        cfg = compose("config", overrides=["size=small", "run=ci", f"results_root={tmp_path}",
                                           "+sizes.small.widht=3"])
    with pytest.raises(ValueError, match="widht"):
        F.run_figure(OmegaConf.to_container(cfg, resolve=True), _load(FIGURES[0]).compute)
    with initialize_config_dir(config_dir=str(ROOT / "experiments" / FIGURES[0]),
                               version_base="1.3"):
        cfg = compose("config", overrides=["size=huge", "run=ci", f"results_root={tmp_path}"])
    with pytest.raises(ValueError, match="size"):
        F.run_figure(OmegaConf.to_container(cfg, resolve=True), _load(FIGURES[0]).compute)


@pytest.mark.slow
@pytest.mark.parametrize("figure", FIGURES)
def test_full_size_figure_command(figure, tmp_path):
    """The documented command, full size, from the repository root (see experiments/README.md
    for runtimes)."""
    proc = subprocess.run([sys.executable, f"experiments/{figure}/run.py", "run=slow-test",
                           f"results_root={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "ALL CHECKS PASS" in (tmp_path / figure / "slow-test" / "summary.md").read_text()


def _fig4(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, FIG4, *args, f"hydra.run.dir={out}",
                           "progress=false"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    return proc, out


def test_small_fig4_is_the_app_preset_its_claims_pass_and_it_resumes(tmp_path):
    proc, out = _fig4(tmp_path, "size=small")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = _summary_lines(out)
    assert len(lines) == 2 * 14 and all(ln.startswith("- PASS") for ln in lines), lines
    assert sum(" is not free -- " in ln for ln in lines) == 2 * 3
    assert "**PASS**" in (out / "summary.md").read_text()
    plots = list((out / "plots").glob("*.png"))
    assert len(plots) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in plots)
    prov = read_provenance(out / "freeness_fits.parquet")
    assert prov["config"]["network"]["q_star"] == 0.5
    assert prov["config"]["experiment"]["name"] == "collins_hayase2023"
    fits = pd.read_parquet(out / "freeness_fits.parquet")
    assert (fits["verdict"] == fits["expected"]).all()
    again, _ = _fig4(tmp_path, "size=small")  # every cell reused, the same tables
    assert again.returncode == 0 and "computed 0, reused 6" in again.stderr + again.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(out / "freeness_fits.parquet"), fits)


def test_fig4_alias_refuses_an_unknown_size(tmp_path):
    proc, out = _fig4(tmp_path, "size=huge")
    assert proc.returncode == 2 and "size: must be one of small, full" in proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_full_size_fig4_command(tmp_path):
    proc, out = _fig4(tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "**PASS**" in (out / "summary.md").read_text()
