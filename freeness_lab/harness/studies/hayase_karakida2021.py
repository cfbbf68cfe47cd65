"""The ``hayase_karakida2021`` study: Hayase & Karakida (AISTATS 2021), the spectrum of H_L,
its atoms and its mean vs depth (the learning-rate threshold eta ~ 2 / lambda_max(H_L) is the
companion study :mod:`freeness_lab.harness.studies.hayase_karakida2021_training`, whose
docstring derives it from the loss normalization).

H_L = (1/M) G G^T, G = d h^L / d theta (``DESIGN.md`` section 2), the M x M dual of the
single-input Fisher information; theory: :func:`freeness_lab.theory.fim_dual_law`
(mu_{l+1} = qhat_l + nu_l boxtimes w boxtimes mu_l); Monte Carlo:
:meth:`SampledNetwork.fim_dual` (without the bias terms, whose 1/M contribution vanishes in
the limit).

Cells: the app's, at the two widths ``sweep.widths`` = (M/2, M) of one orthogonal network
variant; a trial draws, for every critical case (activation, q*) of
``experiment.figure.cases``, one network of depth max(mean_depths, spectrum_depth) with its own
SeedSequence child (the trial's content-keyed seed, spawn key extended by the case index), and
records every eigenvalue of H_{spectrum_depth} and the mean tr(H_l)/M at every mean depth.

Checks (the report, theory through :func:`freeness_lab.theory.fim_dual_law`):

Monte Carlo statistics are extrapolated to M = infinity from widths M/2 and M (Richardson,
m_inf = 2 m(M) - m(M/2)): at M = 200 the finite-width bias of the mean of H_l (hard tanh) is
about 2 %, several standard errors (the O(1/M) dependence of D_l on W_l, as in the freeness
study).

1. H_L at L = ``spectrum_depth``: Monte Carlo moments m_1, m_2 within z_max SE of the theory,
   and each atom's mass within z_max SE of the Monte Carlo fraction of eigenvalues at it
   (the largest group of eigenvalues equal to 1e-9 relative near the predicted location; the
   location moves by O(M^-1/2) with ||x^l||^2 / M).
   The density drawn (Newton solver) must reproduce the exact series moments m_1, m_2
   (with the atoms) to 1e-3.
2. The mean of H_l grows with l as the theory's m_1(l + 1) = qhat_l + chi m_1(l); Monte Carlo
   within z_max SE at every depth.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from freeness_lab.harness.figures import Check, check_int_list, check_keys, spectrum_panel
from freeness_lab.harness.plots import save_figure
from freeness_lab.harness.schema import ExperimentConfig, RunConfig
from freeness_lab.harness.stats import mean_se
from freeness_lab.harness.studies.base import Columns, Params, ReportInput, Study, StudyReport
from freeness_lab.simulate import sample_network
from freeness_lab.spec import NetworkSpec, SpecError
from freeness_lab.theory.limits import fim_dual_law
from freeness_lab.theory.predictions import critical_point

#: the density of the limit law (Newton solver) must give the series moments to this precision
DENSITY_RTOL = 1e-3
#: the atom's eigenvalues are searched within this fraction of its location (and of the
#: distance to the nearest other atom): the location moves with ||x^l||^2 / M = qhat_l + O(M^-1/2)
ATOM_WINDOW = 0.5
#: the figure's parameters (``experiment.figure``, shared with the training study) when the
#: preset gives none
DEFAULTS: dict[str, Any] = {
    "spectrum_depth": 3,
    "cases": [{"activation": "relu", "q_star": 1.0}, {"activation": "hard_tanh", "q_star": 0.5}],
    "mean_depths": [1, 2, 3, 4, 6],
    "train_case": {"activation": "hard_tanh", "q_star": 0.2},
    "train_depths": [2, 4, 8],
    # eta = factor * 2 / lambda_max(theory)
    "eta_factors": [0.5, 0.71, 0.84, 1.19, 1.41, 2.0],
    "steps": 60,
    # a run is "unstable" when its loss exceeds this multiple of the initial loss
    "unstable_factor": 10.0,
    "boundary_factor": 1.5,
}


def figure_params(e: ExperimentConfig) -> dict[str, Any]:
    """``experiment.figure`` over :data:`DEFAULTS`."""
    return {**DEFAULTS, **(e.figure or {})}


def critical_spec(case: dict[str, Any], depth: int, width: int) -> NetworkSpec:
    """The orthogonal network at the edge of chaos with every layer at the case's q*."""
    sw, sb, q0 = critical_point(case["activation"], float(case["q_star"]))
    return NetworkSpec(case["activation"], "orthogonal", depth, width, sw, sb, q0)


def params(e: ExperimentConfig) -> Params:
    """Cases, spectrum depth and mean depths (what a trial's networks depend on)."""
    p = figure_params(e)
    return (("cases", [dict(c) for c in p["cases"]]), ("spectrum_depth", p["spectrum_depth"]),
            ("mean_depths", list(p["mean_depths"])))


def trial(spec: NetworkSpec, seed: np.random.SeedSequence,
          cell_params: dict[str, Any]) -> dict[str, Columns]:
    """One trial: one network per case; the eigenvalues of H_{spectrum_depth} and the mean of
    H_l at every mean depth (without the bias terms)."""
    depth, mean_depths = cell_params["spectrum_depth"], cell_params["mean_depths"]
    eig = {"case": [], "value": []}
    means = {"case": [], "layer": [], "m1": []}
    for i, case in enumerate(cell_params["cases"]):
        label = f"{case['activation']} q*={case['q_star']:g}"
        child = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i))
        net = sample_network(critical_spec(case, max(max(mean_depths), depth), spec.width),
                             np.random.default_rng(child))
        values = net.truncated(depth).fim_dual_spectrum(include_bias=False)
        eig["case"].append(np.repeat(label, values.size))
        eig["value"].append(values)
        for layer in mean_depths:
            means["case"].append(label)
            means["layer"].append(layer)
            means["m1"].append(float(np.trace(net.truncated(layer).fim_dual(
                include_bias=False))) / spec.width)
    return {"fig3_eigenvalues": {k: np.concatenate(v) for k, v in eig.items()},
            "fig3_means": means}


def rows_per_trial(spec: NetworkSpec, e: ExperimentConfig) -> int:
    """M eigenvalues and one mean per mean depth, per case."""
    p = figure_params(e)
    return len(p["cases"]) * (spec.width + len(p["mean_depths"]))


def validate_figure(run: RunConfig) -> dict[str, Any]:
    """The figure's keys and values (both studies of the figure); returns them.

    Raises
    ------
    SpecError
        Naming ``experiment.figure.<key>``.
    """
    p = figure_params(run.experiment)
    check_keys(p, DEFAULTS, "experiment.figure")
    for name, cases in (("cases", p["cases"]), ("train_case", [p["train_case"]])):
        for case in cases:
            if not isinstance(case, dict) or set(case) != {"activation", "q_star"}:
                raise SpecError(f"experiment.figure.{name}", f"each case must be a mapping "
                                f"with keys activation, q_star, got {case!r}")
            try:
                critical_spec(case, 1, 1)
            except (ValueError, ArithmeticError, TypeError) as err:
                raise SpecError(f"experiment.figure.{name}", f"no critical point: {err}") from None
    for name in ("mean_depths", "train_depths"):
        check_int_list(p[name], f"experiment.figure.{name}")
    for name in ("spectrum_depth", "steps"):
        check_int_list([p[name]], f"experiment.figure.{name}")
    factors = p["eta_factors"]
    if (not isinstance(factors, list | tuple) or len(factors) < 2
            or list(factors) != sorted(set(factors)) or min(factors) <= 0):
        raise SpecError("experiment.figure.eta_factors", f"must be >= 2 increasing positive "
                        f"numbers, got {factors!r}")
    for name in ("unstable_factor", "boundary_factor"):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 1:
            raise SpecError(f"experiment.figure.{name}", f"must be a number > 1, got {v!r}")
    return p


def validate(run: RunConfig) -> None:
    """The figure's parameters and the two widths (M/2, M) of the extrapolation.

    Raises
    ------
    SpecError
        Naming ``experiment.figure.<key>`` or ``sweep.widths``.
    """
    validate_figure(run)
    w = run.sweep.widths
    if len(w) != 2 or w[1] != 2 * w[0]:
        raise SpecError("sweep.widths", f"figure 3 extrapolates to M = infinity from M/2 and M: "
                        f"give [M/2, M], got {list(w)}")
    if run.variants()[0].weights != "orthogonal" or len(run.variants()) != 1:
        raise SpecError("network.weights", "figure 3 is one orthogonal network variant: use "
                        "weights=orthogonal and no sweep.axes")


def atom_fraction(eigs: np.ndarray, loc: float, others: np.ndarray) -> float:
    """Fraction of eigenvalues in the largest group of equal values (1e-9 relative) within
    ATOM_WINDOW x min(loc, distance to the nearest other atom) of ``loc``."""
    gaps = np.abs(others - loc)
    width = ATOM_WINDOW * min([loc, *gaps[gaps > 0]])
    near = np.sort(eigs[np.abs(eigs - loc) <= width])
    if near.size == 0:
        return 0.0
    breaks = np.nonzero(np.diff(near) > 1e-9 * max(loc, 1e-12))[0]
    sizes = np.diff(np.concatenate([[0], breaks + 1, [near.size]]))
    return float(sizes.max()) / eigs.size


def extrapolate(values_half: np.ndarray, values_full: np.ndarray) -> tuple[float, float]:
    """Richardson extrapolation to M = infinity from widths M/2 and M, bias b/M assumed:
    m_inf = 2 m(M) - m(M/2), SE = sqrt(4 SE(M)^2 + SE(M/2)^2) (independent trials)."""
    (mh, sh), (mf, sf) = mean_se(values_half), mean_se(values_full)
    return float(2 * mf - mh), max(math.sqrt(4 * sf**2 + sh**2), 1e-12)


def _per_trial_moments(eigs: pd.DataFrame, width: int, case: str) -> np.ndarray:
    sel = eigs[(eigs["width"] == width) & (eigs["case"] == case)]
    return np.array([[g.mean(), np.mean(g**2)] for _, g in sel.groupby("trial")["value"]])


def check(p: dict[str, Any], eigs: pd.DataFrame, means: pd.DataFrame, z_max: float
          ) -> tuple[list[Check], pd.DataFrame, pd.DataFrame]:
    """Claims 1 and 2 (module docstring); returns them, the atoms and the mean tables."""
    widths = sorted(int(w) for w in eigs["width"].unique())
    depth = p["spectrum_depth"]
    checks, atom_rows, mean_rows = [], [], []
    for case in p["cases"]:
        label = f"{case['activation']} q*={case['q_star']:g}"
        law = fim_dual_law(critical_spec(case, depth, widths[1]))
        m_th = law.moments(2)
        mc = {w: _per_trial_moments(eigs, w, label) for w in widths}
        for k in range(2):
            est, se = extrapolate(mc[widths[0]][:, k], mc[widths[1]][:, k])
            checks.append(Check(f"H_{depth} moment m{k + 1}, {label}",
                                abs(est - m_th[k]) < z_max * se,
                                f"MC at M->inf {est:.5g} +- {se:.2g} (M={widths[1]}: "
                                f"{mc[widths[1]][:, k].mean():.5g}) vs theory {m_th[k]:.5g}"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dm = np.asarray(law.density_moments(2), float)
        rel = float(np.max(np.abs(dm - m_th) / m_th)) if np.all(np.isfinite(dm)) else math.inf
        checks.append(Check(f"H_{depth} Newton density reproduces the exact moments, {label}",
                            rel < DENSITY_RTOL,
                            f"m1, m2 from density + atoms {np.round(dm, 5).tolist()} vs "
                            f"series {np.round(m_th, 5).tolist()} (max rel. diff {rel:.2g} "
                            f"< {DENSITY_RTOL:g})"))
        for loc, mass in law.atoms:
            fr = {w: np.array([atom_fraction(g.to_numpy(), loc, law.atoms[:, 0]) for _, g in
                               eigs[(eigs["width"] == w) & (eigs["case"] == label)]
                               .groupby("trial")["value"]]) for w in widths}
            # the count of eigenvalues at an atom is unbiased (e.g. the zeros of D_l): no
            # extrapolation, which would only add the noise of the half-width trials
            v = fr[widths[1]]
            est, se = float(v.mean()), max(float(v.std(ddof=1)), 1e-12) / math.sqrt(v.size)
            atom_rows.append({"case": label, "location": loc, "mass": mass,
                              "mc_fraction": est, "mc_se": se, "width": widths[1],
                              "mc_fraction_half_width": fr[widths[0]].mean()})
            checks.append(Check(f"H_{depth} atom at {loc:.4g}, {label}",
                                abs(est - mass) < z_max * se,
                                f"mass {mass:.4f} vs MC fraction {est:.4f} +- {se:.2g} "
                                f"(M={widths[1]}; M={widths[0]}: {fr[widths[0]].mean():.4f})"))
        for layer in p["mean_depths"]:
            th = fim_dual_law(critical_spec(case, layer, widths[1])).moments(1)[0]
            v = {w: means.loc[(means["width"] == w) & (means["case"] == label)
                              & (means["layer"] == layer)].sort_values("trial")["m1"].to_numpy()
                 for w in widths}
            est, se = extrapolate(v[widths[0]], v[widths[1]])
            mean_rows.append({"case": label, "depth": layer, "theory_m1": th,
                              "mc_m1": v[widths[1]].mean(),
                              "mc_se": v[widths[1]].std(ddof=1) / math.sqrt(v[widths[1]].size),
                              "mc_m1_extrapolated": est, "mc_extrapolated_se": se})
    mean_df = pd.DataFrame(mean_rows)
    for label, g in mean_df.groupby("case", sort=False):
        z = np.abs(g["mc_m1_extrapolated"] - g["theory_m1"]) / g["mc_extrapolated_se"]
        checks.append(Check(
            f"mean of H_l grows with depth, {label}",
            bool(np.all(np.diff(g["theory_m1"]) > 0) and np.all(z < z_max)),
            "m1 at M->inf: " + ", ".join(
                f"l={r.depth}: {r.mc_m1_extrapolated:.4g}+-{r.mc_extrapolated_se:.1g} "
                f"(th {r.theory_m1:.4g})" for r in g.itertuples())))
    return checks, pd.DataFrame(atom_rows), mean_df


def plot(p: dict[str, Any], eigs: pd.DataFrame, mean_df: pd.DataFrame, path: Path) -> Path:
    """H_L histograms over the theory densities (largest width) and the mean vs depth."""
    width = int(eigs["width"].max())
    n = len(p["cases"])
    fig, axes = plt.subplots(1, n + 1, figsize=(4.2 * (n + 1), 3.8))
    for ax, case in zip(axes, p["cases"], strict=False):
        label = f"{case['activation']} q*={case['q_star']:g}"
        law = fim_dual_law(critical_spec(case, p["spectrum_depth"], width))
        pooled = eigs.loc[(eigs["width"] == width) & (eigs["case"] == label), "value"].to_numpy()
        lo, hi = float(pooled.min()), float(pooled.max())
        x = np.linspace(lo, hi, 250)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dens = law.density(x)
        spectrum_panel(ax, pooled, x=x, density=dens, atoms=law.atoms,
                       window=(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo)),
                       title=f"H_{p['spectrum_depth']}: {label}, M={width}")
        ax.legend(fontsize=6)
    ax = axes[n]
    for k, (label, g) in enumerate(mean_df.groupby("case", sort=False)):
        ax.errorbar(g["depth"], g["mc_m1"], yerr=g["mc_se"], fmt="o", color=f"C{k}",
                    label=f"{label} MC")
        ax.plot(g["depth"], g["theory_m1"], "-", color=f"C{k}", label=f"{label} theory")
    ax.set(xlabel="depth l", ylabel="mean of H_l spectrum")
    ax.legend(fontsize=6)
    return save_figure(fig, path)


def report(inp: ReportInput) -> StudyReport:
    """Claims 1 and 2, the atoms and mean tables, the plot and the section."""
    p = figure_params(inp.run.experiment)
    eigs, means = inp.tables["fig3_eigenvalues"], inp.tables["fig3_means"]
    claims, atoms, mean_df = check(p, eigs, means, inp.run.experiment.z_max)
    lines = ["## Figure 3: Hayase, Karakida (AISTATS 2021), the spectrum of H_L", "",
             f"Widths M = {sorted(int(w) for w in eigs['width'].unique())}, "
             f"{inp.run.sweep.trials} networks per case and width.", "", "Claims:", "",
             *(f"- {c.line()}" for c in claims), ""]
    return StudyReport(tables={"fig3_atoms": atoms, "fig3_mean_vs_depth": mean_df},
                       plots=[plot(p, eigs, mean_df, inp.plot_dir / "fig3_spectra.png")],
                       section=lines, failed=sum(not c.passed for c in claims))


STUDY = Study(name="hayase_karakida2021", params=params, trial=trial,
              tables=("fig3_eigenvalues", "fig3_means"),
              report_tables=("fig3_atoms", "fig3_mean_vs_depth"), report=report,
              rows_per_trial=rows_per_trial, time_factor=4.0, validate=validate)
