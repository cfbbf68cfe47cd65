"""The ``pennington2017`` study: Pennington, Schoenholz & Ganguli (NIPS 2017), Figs. 1-2.

Spectra of J J^T at criticality, orthogonal vs Gaussian weights. The cells are the app's
(``sweep.axes``: weights x depth, ``sweep.widths``: M); a trial draws, for every critical
case (activation, q*) of ``experiment.figure.cases``, one network at the edge of chaos with
every layer at q* (:func:`freeness_lab.theory.predictions.critical_point`), with its own
SeedSequence child (the trial's content-keyed seed, spawn key extended by the case index),
and records the normalized variance m_2/m_1^2 - 1 of its spectrum, the fraction of
eigenvalues within a factor ``band`` of 1, and every eigenvalue (for the histograms).

Claims checked (:func:`check`):

1. The variance of the spectrum of J J^T grows linearly in L with slope
   mu_2 / mu_1^2 - 1 - s_1 (mu_k = E phi'(h)^{2k} at q*, s_1 = 0 orthogonal, -1 Gaussian;
   ``docs/conventions.md``): the finite-width model m_2/m_1^2 - 1 = a L + b L^2/M is fitted
   to the Monte Carlo means with fixed weights 1/L^2, so that a is a fixed linear combination
   of independent means, its SE is exact and its Welch-Satterthwaite degrees of freedom give
   a Student-t tolerance at the two-sided level of ``experiment.z_max``.
2. The series moments of :func:`freeness_lab.theory.jacobian_law` give that closed-form
   variance at every depth (relative difference < 1e-8).
3. Orthogonal hard tanh at small q* stays near isometry where ReLU and Gaussian weights do
   not: at the largest depth the fraction of eigenvalues in [1/band, band] is > 0.9 for it and
   < 0.5 for every ReLU and every Gaussian network.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from freeness_lab.harness.figures import Check, check_cases, check_keys, spectrum_panel
from freeness_lab.harness.markdown import markdown_table
from freeness_lab.harness.plots import save_figure
from freeness_lab.harness.schema import ExperimentConfig, RunConfig
from freeness_lab.harness.studies.base import Columns, Params, ReportInput, Study, StudyReport
from freeness_lab.simulate import jacobian_spectrum
from freeness_lab.spec import NetworkSpec, SpecError
from freeness_lab.theory.limits import jacobian_law
from freeness_lab.theory.meanfield import d2_moments
from freeness_lab.theory.predictions import critical_point

#: the figure's parameters (``experiment.figure``) when the preset gives none
DEFAULTS: dict[str, Any] = {
    "cases": [{"activation": "relu", "q_star": 1.0},
              {"activation": "hard_tanh", "q_star": 0.015625},
              {"activation": "hard_tanh", "q_star": 0.5},
              {"activation": "erf", "q_star": 0.5}],
    "band": 2.0,
    "isometric_case": {"activation": "hard_tanh", "q_star": 0.015625, "weights": "orthogonal"},
    # depths drawn in fig1_spectra.png (None: every depth of the sweep)
    "spectra_depths": None,
}


def figure_params(e: ExperimentConfig) -> dict[str, Any]:
    """``experiment.figure`` over :data:`DEFAULTS`."""
    return {**DEFAULTS, **(e.figure or {})}


def params(e: ExperimentConfig) -> Params:
    """The critical cases and the band (they change the per-trial numbers)."""
    p = figure_params(e)
    return (("cases", [dict(c) for c in p["cases"]]), ("band", float(p["band"])))


def case_spec(case: dict[str, Any], spec: NetworkSpec) -> NetworkSpec:
    """The cell's network (weights, depth, width) at the critical point of a case."""
    sw, sb, q0 = critical_point(case["activation"], float(case["q_star"]))
    return NetworkSpec(case["activation"], spec.weights, spec.depth, spec.width, sw, sb, q0)


def trial(spec: NetworkSpec, seed: np.random.SeedSequence,
          cell_params: dict[str, Any]) -> dict[str, Columns]:
    """One trial: one network per critical case, its spectrum's summaries and eigenvalues."""
    band = cell_params["band"]
    rows: dict[str, list[Any]] = {k: [] for k in ("activation", "q_star", "sigma_w", "sigma_b",
                                                 "q0", "m1", "norm_var", "frac_in_band")}
    eig_cols: dict[str, list[Any]] = {"activation": [], "q_star": [], "value": []}
    for i, case in enumerate(cell_params["cases"]):
        s = case_spec(case, spec)
        child = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i))
        eigs = jacobian_spectrum(s, np.random.default_rng(child))
        m1 = float(eigs.mean())
        for k, v in (("activation", s.activation), ("q_star", float(case["q_star"])),
                     ("sigma_w", s.sigma_w), ("sigma_b", s.sigma_b), ("q0", s.q0), ("m1", m1),
                     ("norm_var", float(eigs.var()) / m1**2),
                     ("frac_in_band", float(np.mean((eigs > 1 / band) & (eigs < band))))):
            rows[k].append(v)
        eig_cols["activation"].append(np.repeat(s.activation, eigs.size))
        eig_cols["q_star"].append(np.full(eigs.size, float(case["q_star"])))
        eig_cols["value"].append(eigs)
    return {"fig1_trials": rows,
            "fig1_eigenvalues": {k: np.concatenate(v) for k, v in eig_cols.items()}}


def rows_per_trial(spec: NetworkSpec, e: ExperimentConfig) -> int:
    """One summary row and M eigenvalue rows per case."""
    return len(figure_params(e)["cases"]) * (1 + spec.width)


def validate(run: RunConfig) -> None:
    """The figure's keys, cases (each with a critical point) and sweep (weights, depths).

    Raises
    ------
    SpecError
        Naming ``experiment.figure.<key>``, or ``sweep.axes.depth`` / ``sweep.widths``.
    """
    p = figure_params(run.experiment)
    check_keys(p, DEFAULTS, "experiment.figure")
    check_cases(p["cases"], "experiment.figure.cases")
    band = p["band"]
    if isinstance(band, bool) or not isinstance(band, int | float) or not band > 1:
        raise SpecError("experiment.figure.band", f"must be a number > 1, got {band!r}")
    iso = p["isometric_case"]
    if not isinstance(iso, dict) or {k: v for k, v in iso.items() if k != "weights"} not in [
            dict(c) for c in p["cases"]]:
        raise SpecError("experiment.figure.isometric_case", f"must be one of the cases with "
                        f"its weights, got {iso!r}")
    depths = run.sweep.axes.get("depth", (run.network.depth,))
    drawn = p["spectra_depths"]
    if drawn is not None and (not isinstance(drawn, list | tuple) or not drawn
                              or not set(drawn) <= set(depths)):
        raise SpecError("experiment.figure.spectra_depths", f"must be null or a non-empty list "
                        f"of the sweep's depths {list(depths)}, got {drawn!r}")
    if len(depths) < 3:
        raise SpecError("sweep.axes.depth", "the variance-slope fit a L + b L^2/M needs >= 3 "
                        f"depths, got {list(depths)}")
    if len(run.sweep.widths) != 1:
        raise SpecError("sweep.widths", f"figure 1 runs one width M, got {list(run.sweep.widths)}")


#: the columns naming a case of the figure
CASE = ["activation", "q_star", "weights"]


def aggregate(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD and count over networks per (case, weights, depth), with the theory: the
    closed-form slope mu_2/mu_1^2 - 1 - s_1 (:func:`~freeness_lab.theory.meanfield.d2_moments`)
    and the series variance m_2/m_1^2 - 1 of :func:`~freeness_lab.theory.jacobian_law`."""
    agg = (trials.groupby([*CASE, "depth", "width", "sigma_w", "sigma_b", "q0"], sort=False)
           .agg(norm_var=("norm_var", "mean"), norm_var_sd=("norm_var", "std"),
                n=("norm_var", "size"), frac_in_band=("frac_in_band", "mean"),
                m1=("m1", "mean")).reset_index())
    agg["norm_var_se"] = agg["norm_var_sd"] / np.sqrt(agg["n"])
    slope, series = [], []
    for r in agg.itertuples():
        mu = d2_moments(r.activation, r.q_star, 2)
        slope.append(mu[1] / mu[0] ** 2 - 1 - (0.0 if r.weights == "orthogonal" else -1.0))
        m = jacobian_law(NetworkSpec(r.activation, r.weights, int(r.depth), int(r.width),
                                     r.sigma_w, r.sigma_b, r.q0)).moments(2)
        series.append(m[1] / m[0] ** 2 - 1)
    agg["closed_form_slope"] = slope
    agg["closed_form_norm_var"] = agg["depth"] * agg["closed_form_slope"]
    agg["theory_norm_var"] = series
    return agg


def slope_fit(depth: np.ndarray, width: int, mean: np.ndarray, sd: np.ndarray, n: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit mean = a L + b L^2/M with fixed weights 1/L^2: (a, b), their SEs, and the
    Welch-Satterthwaite degrees of freedom of a.

    With C = (X^T W X)^-1 X^T W (X = [L, L^2/M], W = diag(L^-2), fixed), (a, b) = C ybar is a
    linear combination of independent means, so Var(a) = sum_d C_0d^2 s_d^2 / n_d exactly
    (s_d the sample SD of the n_d networks at depth d), and
    nu = Var(a)^2 / sum_d (C_0d^2 s_d^2 / n_d)^2 / (n_d - 1) (Welch-Satterthwaite).
    Weights estimated from the same few networks (1 / se^2) would make C random and
    correlated with ybar, and the SE of a too small.
    """
    x = np.column_stack([depth, depth**2 / width])
    w = 1 / depth**2
    c = np.linalg.solve(x.T @ (w[:, None] * x), (x * w[:, None]).T)
    beta = c @ mean
    parts = c**2 * (sd**2 / n)
    var = parts.sum(axis=1)
    dof = var[0] ** 2 / np.sum(parts[0] ** 2 / (n - 1)) if var[0] > 0 else np.inf
    return beta, np.sqrt(var), float(dof)


def check(trials: pd.DataFrame, p: dict[str, Any], z_max: float
          ) -> tuple[pd.DataFrame, list[Check]]:
    """The aggregated table (with the fits) and the figure's claims (module docstring)."""
    agg = aggregate(trials)
    level = stats.norm.cdf(z_max)  # the two-sided level of z_max standard errors
    claims = []
    for (act, q, ens), g in agg.groupby(CASE, sort=False):
        g = g.sort_values("depth")
        theory = float(g["closed_form_slope"].iloc[0])
        beta, err, dof = slope_fit(g["depth"].to_numpy(float), int(g["width"].iloc[0]),
                                   g["norm_var"].to_numpy(), g["norm_var_sd"].to_numpy(),
                                   g["n"].to_numpy(float))
        t = float(stats.t.ppf(level, dof))
        tol = t * err[0] + 1e-9
        claims.append(Check(
            f"variance slope, {act} q*={q:g} {ens}", abs(beta[0] - theory) < tol,
            f"fit a = {beta[0]:.4g} +- {err[0]:.2g} vs mu2/mu1^2-1-s1 = {theory:.4g} "
            f"(|diff| {abs(beta[0] - theory):.2g} < t_{dof:.1f} SE = {t:.2f} SE + 1e-9, the "
            f"two-sided level of {z_max:g} sigma); finite-width term b L^2/M, "
            f"b = {beta[1]:.3g} +- {err[1]:.2g}"))
        dev = np.max(np.abs(g["theory_norm_var"] - g["closed_form_norm_var"])
                     / np.maximum(1.0, g["closed_form_norm_var"]))
        claims.append(Check(f"series law = closed form, {act} q*={q:g} {ens}", dev < 1e-8,
                            f"max relative difference {dev:.1e} < 1e-8 over L"))
    deepest = agg[agg["depth"] == agg["depth"].max()]
    iso, band = p["isometric_case"], p["band"]
    sel = ((deepest["activation"] == iso["activation"])
           & np.isclose(deepest["q_star"], iso["q_star"]) & (deepest["weights"] == iso["weights"]))
    others = deepest[(deepest["activation"] == "relu") | (deepest["weights"] == "gaussian")]
    iso_frac = float(deepest.loc[sel, "frac_in_band"].iloc[0])
    worst = float(others["frac_in_band"].max())
    claims.append(Check(
        f"near isometry at L={int(deepest['depth'].iloc[0])}: orthogonal hard tanh "
        f"q*={iso['q_star']:g} vs ReLU and Gaussian", iso_frac > 0.9 and worst < 0.5,
        f"fraction of eigenvalues in [1/{band:g}, {band:g}]: {iso_frac:.3f} (> 0.9) vs at most "
        f"{worst:.3f} (< 0.5); normalized variance "
        f"{float(deepest.loc[sel, 'norm_var'].iloc[0]):.3g} vs at least "
        f"{float(others['norm_var'].min()):.3g}"))
    return agg, claims


def variance_lines(agg: pd.DataFrame) -> list[str]:
    """The Monte Carlo variance vs the closed form, as a markdown table."""
    cols = [*CASE, "depth", "norm_var", "norm_var_se", "closed_form_norm_var", "frac_in_band"]
    return markdown_table(agg[cols].round(5))


def _label(act: str, q: float, ens: str) -> str:
    return f"{act} q*={q:g} {ens}"


def plot_spectra(eigs: pd.DataFrame, agg: pd.DataFrame, depths: list[int] | None,
                 path: Path) -> Path:
    """Histograms of the pooled eigenvalues per (case, depth) over the theory density, at
    ``depths`` (None: every depth)."""
    cases = list(agg.groupby(CASE, sort=False).groups)
    depths = sorted(agg["depth"].unique()) if depths is None else sorted(depths)
    fig, axes = plt.subplots(len(cases), len(depths),
                             figsize=(2.6 * len(depths), 1.9 * len(cases)), squeeze=False)
    for r, (act, q, ens) in enumerate(cases):
        for c, depth in enumerate(depths):
            row = agg[(agg["activation"] == act) & (agg["q_star"] == q)
                      & (agg["weights"] == ens) & (agg["depth"] == depth)].iloc[0]
            values = eigs.loc[(eigs["activation"] == act) & (eigs["q_star"] == q)
                              & (eigs["weights"] == ens) & (eigs["depth"] == depth),
                              "value"].to_numpy()
            hi = max(float(np.quantile(values, 0.98)), 1.5)
            law = jacobian_law(NetworkSpec(act, ens, int(depth), int(row.width), row.sigma_w,
                                           row.sigma_b, row.q0))
            x = np.linspace(hi / 400, hi, 200)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dens = law.density(x)
            spectrum_panel(axes[r, c], values, x=x, density=dens, atoms=law.atoms,
                           window=(0.0, hi), title=f"{_label(act, q, ens)}, L={depth}")
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"J J^T spectra at criticality: Monte Carlo (M={int(agg['width'].iloc[0])}) "
                 "vs free probability", fontsize=9)
    return save_figure(fig, path)


def plot_variance(agg: pd.DataFrame, path: Path) -> Path:
    """Normalized variance vs depth: Monte Carlo (points) vs the closed form (lines)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for k, ((act, q, ens), g) in enumerate(agg.groupby(CASE, sort=False)):
        g = g.sort_values("depth")
        ax.errorbar(g["depth"], g["norm_var"], yerr=g["norm_var_se"], fmt="o",
                    color=f"C{k % 10}", ms=4, label=_label(act, q, ens))
        ax.plot(g["depth"], g["closed_form_norm_var"], "-", color=f"C{k % 10}", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("depth L")
    ax.set_ylabel("m2/m1^2 - 1 of J J^T")
    ax.set_title("variance vs depth: Monte Carlo (points) vs L (mu2/mu1^2 - 1 - s1) (lines)",
                 fontsize=8)
    ax.legend(fontsize=6)
    return save_figure(fig, path)


def report(inp: ReportInput) -> StudyReport:
    """Theory, the three claims, the spectra and variance plots and the summary section."""
    p = figure_params(inp.run.experiment)
    agg, claims = check(inp.tables["fig1_trials"], p, inp.run.experiment.z_max)
    plots = [plot_spectra(inp.tables["fig1_eigenvalues"], agg, p["spectra_depths"],
                           inp.plot_dir / "fig1_spectra.png"),
             plot_variance(agg, inp.plot_dir / "fig1_variance.png")]
    failed = sum(not c.passed for c in claims)
    width = int(agg["width"].iloc[0])
    lines = ["## Figure 1: Pennington, Schoenholz, Ganguli (NIPS 2017), J J^T at criticality",
             "", f"Width M = {width}, {inp.run.sweep.trials} networks per (case, weights, "
             "depth); variance = m_2/m_1^2 - 1 of each spectrum, mean +- SE over networks.",
             "", *variance_lines(agg), "", "Claims:", "",
             *(f"- {c.line()}" for c in claims), ""]
    return StudyReport(tables={"fig1_variance": agg}, plots=plots, section=lines,
                       failed=failed)


STUDY = Study(name="pennington2017", params=params, trial=trial,
              tables=("fig1_trials", "fig1_eigenvalues"), report_tables=("fig1_variance",),
              report=report, rows_per_trial=rows_per_trial, time_factor=4.0,
              validate=validate)
