"""The ``pennington2018`` study: Pennington, Schoenholz & Ganguli (AISTATS 2018), universality
of J J^T at large depth.

Orthogonal weights at criticality with every layer at a q* chosen so that
mu_2 / mu_1^2 - 1 = sigma_0^2 / L (double scaling; ``DESIGN.md`` section 2). Then

    S_{J J^T}(z) -> exp(-sigma_0^2 z / (1 + z))   for {0,1}-valued phi' (hard tanh),
    S_{J J^T}(z) -> exp(-sigma_0^2 z)             for smooth phi' (tanh, erf),

so densities of different activations of one class collapse onto one curve as L grows.
ReLU (mu_2/mu_1^2 - 1 = 1 at any q) cannot be tuned to this regime and has no such limit.

Checks (exact moments by S-transform series, :func:`freeness_lab.theory.jacobian_law`; the
limits' moments from their S-series):

1. For each class, d(L) = max_{k=3,4} |m_k(L) - m_k(limit)| / m_k(limit) decreases with L,
   with the local log-log exponent between the two largest depths at most MAX_RATE
   (asymptotically -1 for the Bernoulli class, -1/2 for the smooth class: see EXPECTED_RATE).
2. Collapse: the moment spread within the smooth class (tanh vs erf) shrinks with L and is
   below a tenth of the gap between the classes at the largest L.

The claims are theory (``experiment.figure``: ``sigma0_sq``, ``depths``, ``classes``), computed
in the report. The cells are the app's (``sweep.axes.depth``: the Monte Carlo depths,
``sweep.widths``: M, orthogonal weights): a trial draws, for every activation, one network at
the q* matched to the cell's depth, with its own SeedSequence child (the trial's content-keyed
seed, spawn key extended by the activation's index), and stores its eigenvalues. The sup
distances between the pooled empirical cdfs (within and across classes) are reported in
``fig2_mc_cdf_distances.parquet`` and ``summary.md``, and the histograms at the largest Monte
Carlo depth are drawn over the piecewise-linear theory densities.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import optimize

from freeness_lab.harness.figures import Check, check_keys
from freeness_lab.harness.markdown import markdown_table
from freeness_lab.harness.plots import save_figure
from freeness_lab.harness.schema import ExperimentConfig, RunConfig
from freeness_lab.harness.stats import empirical_cdf, sup_cdf_distance
from freeness_lab.harness.studies.base import Columns, Params, ReportInput, Study, StudyReport
from freeness_lab.simulate import jacobian_spectrum
from freeness_lab.spec import NetworkSpec, SpecError
from freeness_lab.theory.limits import jacobian_law
from freeness_lab.theory.meanfield import d2_moments
from freeness_lab.theory.predictions import critical_point
from freeness_lab.theory.series import s_to_moments, series_exp

N_MOMENTS = 4
#: asymptotic d(L) ~ L^rate: every order of the Bernoulli S-transform is in its limit, so the
#: error is O(1/L); for smooth phi' the third free cumulant of D^2 (skewness O(1) at small q)
#: leaves L kappa_3 ~ sigma_0^3 L^(-1/2) in log S
EXPECTED_RATE = {"bernoulli": -1.0, "smooth": -0.5}
#: the check: local exponent between the two largest depths at most this (pre-asymptotic
#: exponents of the smooth class are -0.3..-0.4 at L = 16..256)
MAX_RATE = {"bernoulli": -0.9, "smooth": -0.3}


#: the figure's parameters (``experiment.figure``) when the preset gives none
DEFAULTS: dict[str, Any] = {
    "sigma0_sq": 1.0,
    # depths of the theory claims
    "depths": [4, 16, 64, 256],
    # {0,1}-valued phi' (Bernoulli class) and smooth phi'
    "classes": {"bernoulli": ["hard_tanh"], "smooth": ["tanh", "erf"]},
}
#: grid of the empirical cdfs
CDF_GRID = np.linspace(0, 6, 601)


def figure_params(e: ExperimentConfig) -> dict[str, Any]:
    """``experiment.figure`` over :data:`DEFAULTS`."""
    return {**DEFAULTS, **(e.figure or {})}


def params(e: ExperimentConfig) -> Params:
    """sigma_0^2 and the activations: what a trial's networks depend on."""
    p = figure_params(e)
    return (("sigma0_sq", float(p["sigma0_sq"])),
            ("classes", {c: list(a) for c, a in p["classes"].items()}))


def matched_q_star(activation: str, target: float) -> float:
    """q* with mu_2(q*)/mu_1(q*)^2 - 1 = target (Brent's method on log q in [1e-5, 50])."""
    def excess(log_q: float) -> float:
        mu = d2_moments(activation, float(np.exp(log_q)), 2)
        return mu[1] / mu[0] ** 2 - 1 - target

    return float(np.exp(optimize.brentq(excess, np.log(1e-5), np.log(50.0), xtol=1e-14)))


def matched_spec(activation: str, sigma0_sq: float, depth: int, width: int) -> NetworkSpec:
    """The orthogonal network at the edge of chaos with every layer at the q* of
    :func:`matched_q_star` (mu_2/mu_1^2 - 1 = sigma_0^2 / L)."""
    q = matched_q_star(activation, sigma0_sq / depth)
    sw, sb, q0 = critical_point(activation, q)
    return NetworkSpec(activation, "orthogonal", depth, width, sw, sb, q0)


def trial(spec: NetworkSpec, seed: np.random.SeedSequence,
          cell_params: dict[str, Any]) -> dict[str, Columns]:
    """One trial: one matched network per activation, every eigenvalue of its J J^T."""
    cols: dict[str, list[Any]] = {"activation": [], "class": [], "value": []}
    acts = [(c, a) for c, names in cell_params["classes"].items() for a in names]
    for i, (cls, act) in enumerate(acts):
        s = matched_spec(act, cell_params["sigma0_sq"], spec.depth, spec.width)
        child = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i))
        eigs = jacobian_spectrum(s, np.random.default_rng(child))
        cols["activation"].append(np.repeat(act, eigs.size))
        cols["class"].append(np.repeat(cls, eigs.size))
        cols["value"].append(eigs)
    return {"fig2_eigenvalues": {k: np.concatenate(v) for k, v in cols.items()}}


def rows_per_trial(spec: NetworkSpec, e: ExperimentConfig) -> int:
    """M eigenvalues per activation."""
    return spec.width * sum(len(a) for a in figure_params(e)["classes"].values())


def validate(run: RunConfig) -> None:
    """The figure's keys, classes and theory depths, and orthogonal weights.

    Raises
    ------
    SpecError
        Naming ``experiment.figure.<key>`` or ``network.weights``.
    """
    p = figure_params(run.experiment)
    check_keys(p, DEFAULTS, "experiment.figure")
    s0 = p["sigma0_sq"]
    if isinstance(s0, bool) or not isinstance(s0, int | float) or not s0 > 0:
        raise SpecError("experiment.figure.sigma0_sq", f"must be a number > 0, got {s0!r}")
    classes = p["classes"]
    if not isinstance(classes, dict) or not classes or not set(classes) <= set(MAX_RATE):
        raise SpecError("experiment.figure.classes", f"must map some of {', '.join(MAX_RATE)} "
                        f"to activations, got {classes!r}")
    for cls, acts in classes.items():
        for act in acts:
            try:
                matched_spec(act, float(s0), 4, 1)
            except (ValueError, ArithmeticError) as err:
                raise SpecError(f"experiment.figure.classes.{cls}", f"{act}: {err}") from None
    depths = p["depths"]
    if (not isinstance(depths, list | tuple) or len(depths) < 2
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in depths)
            or list(depths) != sorted(set(depths))):
        raise SpecError("experiment.figure.depths", f"must be >= 2 increasing depths, got "
                        f"{depths!r}")
    if {s.weights for s in run.variants()} != {"orthogonal"}:
        raise SpecError("network.weights", "figure 2 is about orthogonal weights: use "
                        "weights=orthogonal")


def limit_moments(cls: str, sigma0_sq: float, n: int) -> np.ndarray:
    """m_1..m_n of the law with S = exp(-sigma_0^2 z/(1+z)) (bernoulli) or exp(-sigma_0^2 z)."""
    k = np.arange(n)
    if cls == "bernoulli":   # -sigma_0^2 z / (1 + z) = sum_{k>=1} -sigma_0^2 (-1)^(k-1) z^k
        b = np.where(k >= 1, -sigma0_sq * (-1.0) ** (k - 1), 0.0)
    else:
        b = np.where(k == 1, -sigma0_sq, 0.0)
    return s_to_moments(series_exp(b))


def theory_table(p: dict[str, Any]) -> pd.DataFrame:
    """Series moments m_1..m_4 of :func:`~freeness_lab.theory.jacobian_law` at the matched q*
    per (activation, depth), the class limits' and the distance max_{k=3,4} |m_k - limit|/limit."""
    s0 = float(p["sigma0_sq"])
    limits = {cls: limit_moments(cls, s0, N_MOMENTS) for cls in p["classes"]}
    rows = []
    for cls, names in p["classes"].items():
        for act in names:
            for depth in p["depths"]:
                spec = matched_spec(act, s0, depth, 1)
                m = jacobian_law(spec).moments(N_MOMENTS)
                rel = np.abs(m[2:] - limits[cls][2:]) / limits[cls][2:]
                rows.append({"class": cls, "activation": act, "depth": depth,
                             "q_star": matched_q_star(act, s0 / depth), "sigma_w": spec.sigma_w,
                             "sigma_b": spec.sigma_b,
                             **{f"m{k + 1}": m[k] for k in range(N_MOMENTS)},
                             **{f"limit_m{k + 1}": limits[cls][k] for k in range(N_MOMENTS)},
                             "dist_to_limit": float(rel.max())})
    return pd.DataFrame(rows)


def check(p: dict[str, Any], table: pd.DataFrame) -> list[Check]:
    """The two claims of the figure (module docstring) from the theory table."""
    checks = []
    for cls, g in table.groupby("class", sort=False):
        d = g.groupby("depth")["dist_to_limit"].max().sort_index()
        depths, dist = d.index.to_numpy(float), d.to_numpy()
        rate = float(np.log(dist[-1] / dist[-2]) / np.log(depths[-1] / depths[-2]))
        ok = bool(np.all(np.diff(dist) < 0) and rate <= MAX_RATE[cls])
        checks.append(Check(
            f"{cls} class -> S-transform limit", ok,
            f"decreasing in L, local exponent {rate:.2f} <= {MAX_RATE[cls]} (asymptotic "
            f"{EXPECTED_RATE[cls]}); max rel. error of m3, m4: " + ", ".join(
                f"L={int(L)}: {x:.2e}" for L, x in zip(depths, dist, strict=True))))
    smooth = p["classes"].get("smooth", [])
    if len(smooth) >= 2 and "bernoulli" in p["classes"]:
        piv = table.pivot(index="depth", columns="activation", values="m3")
        within = (piv[smooth].max(axis=1) - piv[smooth].min(axis=1)) / piv[smooth].mean(axis=1)
        between = (piv[smooth].mean(axis=1) - piv[p["classes"]["bernoulli"]].mean(axis=1)).abs()
        between = between / piv[smooth].mean(axis=1)
        ok = bool(np.all(np.diff(within.to_numpy()) < 0)
                  and within.iloc[-1] < 0.1 * between.iloc[-1])
        checks.append(Check(
            "collapse within the smooth class, not across classes", ok,
            "relative m3 spread within smooth: " + ", ".join(
                f"L={L}: {w:.2e}" for L, w in within.items())
            + f"; gap between classes at L={within.index[-1]}: {between.iloc[-1]:.3f}"))
    return checks


def cdf_distances(eigs: pd.DataFrame) -> pd.DataFrame:
    """Sup distance between the pooled empirical cdfs of every pair of activations, per
    Monte Carlo depth and width (reported, not checked)."""
    rows = []
    for (depth, width), g in eigs.groupby(["depth", "width"], sort=True):
        acts = list(dict.fromkeys(g["activation"]))
        cdfs = {a: empirical_cdf(g.loc[g["activation"] == a, "value"].to_numpy(), CDF_GRID)
                for a in acts}
        for i, a in enumerate(acts):
            for b in acts[i + 1:]:
                rows.append({"depth": int(depth), "pair": f"{a} vs {b}", "width": int(width),
                             "sup_cdf_distance": sup_cdf_distance(cdfs[a], cdfs[b])})
    return pd.DataFrame(rows)


def plot(p: dict[str, Any], table: pd.DataFrame, eigs: pd.DataFrame, path: Path) -> Path:
    """Histograms at the largest Monte Carlo depth (with the piecewise-linear theory densities)
    and the distance to the class limit vs L."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    depth, width = int(eigs["depth"].max()), int(eigs["width"].max())
    sel = eigs[(eigs["depth"] == depth) & (eigs["width"] == width)]
    for k, act in enumerate(dict.fromkeys(sel["activation"])):
        ax.hist(sel.loc[sel["activation"] == act, "value"], bins=np.linspace(0, 5, 80),
                density=True, histtype="step", color=f"C{k}", label=f"{act} (MC, M={width})")
        spec = matched_spec(act, float(p["sigma0_sq"]), depth, width)
        if spec.act.is_piecewise_linear:
            x = np.linspace(0.02, 5, 120)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax.plot(x, jacobian_law(spec).density(x), color=f"C{k}", lw=1, ls="--",
                        label=f"{act} theory")
    ax.set_title(f"J J^T at L={depth}, sigma_0^2={p['sigma0_sq']:g} (orthogonal)", fontsize=9)
    ax.set_xlabel("eigenvalue")
    ax.legend(fontsize=7)
    ax = axes[1]
    for k, (act, g) in enumerate(table.groupby("activation", sort=False)):
        ax.loglog(g["depth"], g["dist_to_limit"], "o-", color=f"C{k}",
                  label=f"{act} ({g['class'].iloc[0]})")
    L = np.array(sorted(table["depth"].unique()), float)
    ax.loglog(L, table["dist_to_limit"].max() * L[0] / L, "k:", label="1/L")
    ax.set_xlabel("depth L")
    ax.set_ylabel("max rel. error of m3, m4 vs class limit")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def report(inp: ReportInput) -> StudyReport:
    """Theory table, the claims, the Monte Carlo cdf distances, the plot and the section."""
    p = figure_params(inp.run.experiment)
    table = theory_table(p)
    claims = check(p, table)
    eigs = inp.tables["fig2_eigenvalues"]
    distances = cdf_distances(eigs)
    limits = {c: np.round(limit_moments(c, float(p["sigma0_sq"]), N_MOMENTS), 4).tolist()
              for c in p["classes"]}
    lines = ["## Figure 2: Pennington, Schoenholz, Ganguli (AISTATS 2018), universality at "
             "large depth", "", f"sigma_0^2 = {p['sigma0_sq']:g}; limit moments m1..m4: "
             + "; ".join(f"{c}: {v}" for c, v in limits.items()), "",
             "Monte Carlo sup |F - G| between pooled empirical spectra (reported):", "",
             *markdown_table(distances.round(4)), "", "Claims:", "",
             *(f"- {c.line()}" for c in claims), ""]
    return StudyReport(tables={"fig2_moments": table, "fig2_mc_cdf_distances": distances},
                       plots=[plot(p, table, eigs, inp.plot_dir / "fig2_universality.png")],
                       section=lines, failed=sum(not c.passed for c in claims))


STUDY = Study(name="pennington2018", params=params, trial=trial, tables=("fig2_eigenvalues",),
              report_tables=("fig2_moments", "fig2_mc_cdf_distances"), report=report,
              rows_per_trial=rows_per_trial, time_factor=3.0, validate=validate)
