"""Pennington, Schoenholz & Ganguli (NIPS 2017), Figs. 1-2: spectra of J J^T at criticality.

Claims checked (``summary.md``):

1. The variance of the spectrum of J J^T grows linearly in the depth L with slope
   mu_2 / mu_1^2 - 1 - s_1 (mu_k = E phi'(h)^{2k} at q*, s_1 = 0 orthogonal, -1 Gaussian;
   ``DESIGN.md`` section 2): weighted least-squares fit of the Monte Carlo normalized variance
   m_2 / m_1^2 - 1 = a L + b L^2 / M (the second term models the finite-width correction,
   visible for Gaussian weights at L ~ sqrt(M)); |a - theory| < z_max SE(a).
2. The series moments of the limit law (:func:`freeness_lab.theory.jacobian_law`) give the
   same variance as that closed form at every depth.
3. Orthogonal hard tanh with small q* stays near isometry where ReLU and Gaussian weights do
   not: at the largest depth, the fraction of eigenvalues within a factor ``band`` of 1 is
   > 0.9 for it and < 0.5 for every ReLU and every Gaussian network.

Run: ``python experiments/fig1_pennington2017/run.py [size=small]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from freeness_lab import NetworkSpec  # noqa: E402
from freeness_lab.harness import figures as F  # noqa: E402
from freeness_lab.simulate import jacobian_spectrum  # noqa: E402
from freeness_lab.theory.limits import jacobian_law  # noqa: E402
from freeness_lab.theory.meanfield import d2_moments  # noqa: E402

PARAMS = ("width", "trials", "depths", "cases", "ensembles", "band", "isometric_case", "z_max")


def _label(case: dict, ens: str) -> str:
    return f"{case['activation']} q*={case['q_star']:g} {ens}"


def compute(p: dict, seed: int, out: Path) -> tuple[list[F.Check], list[str]]:
    """Monte Carlo spectra, theory, checks and plots of the figure."""
    F.check_config_keys(p, PARAMS, "sizes.<size>.")
    cells = [(c, e, L) for c in p["cases"] for e in p["ensembles"] for L in p["depths"]]
    seeds = F.run_seeds(seed, len(cells) * p["trials"])
    rows, pooled = [], {}
    for i, (case, ens, depth) in enumerate(cells):
        sw, sb, q0 = F.critical_point(case["activation"], case["q_star"])
        spec = NetworkSpec(case["activation"], ens, depth, p["width"], sw, sb, q0)
        mu = d2_moments(case["activation"], case["q_star"], 2)
        slope = mu[1] / mu[0] ** 2 - 1 - (0.0 if ens == "orthogonal" else -1.0)
        m = jacobian_law(spec).moments(2)
        eigs_all = []
        for t in range(p["trials"]):
            child = seeds[i * p["trials"] + t]
            eigs = jacobian_spectrum(spec, np.random.default_rng(child))
            eigs_all.append(eigs)
            m1 = float(eigs.mean())
            rows.append({"activation": case["activation"], "q_star": case["q_star"],
                         "weights": ens, "depth": depth, "width": p["width"], "trial": t,
                         "spawn_key": str(child.spawn_key), "sigma_w": sw, "sigma_b": sb,
                         "q0": q0, "m1": m1, "norm_var": float(eigs.var()) / m1**2,
                         "q90": float(np.quantile(eigs, 0.9)),
                         "frac_in_band": float(np.mean((eigs > 1 / p["band"])
                                                       & (eigs < p["band"]))),
                         "theory_m1": m[0], "theory_norm_var": m[1] / m[0] ** 2 - 1,
                         "closed_form_norm_var": depth * slope, "closed_form_slope": slope})
        pooled[_label(case, ens), depth] = (spec, np.concatenate(eigs_all))
    table = pd.DataFrame(rows)
    F.write_csv(table, out / "fig1_trials.csv")
    agg = (table.groupby(["activation", "q_star", "weights", "depth"], sort=False)
           .agg(norm_var=("norm_var", "mean"), norm_var_sd=("norm_var", "std"),
                n=("norm_var", "size"), frac_in_band=("frac_in_band", "mean"),
                m1=("m1", "mean"), theory_norm_var=("theory_norm_var", "first"),
                closed_form_norm_var=("closed_form_norm_var", "first"),
                closed_form_slope=("closed_form_slope", "first")).reset_index())
    agg["norm_var_se"] = agg["norm_var_sd"] / np.sqrt(agg["n"])
    F.write_csv(agg, out / "fig1_variance.csv")
    checks = _checks(p, agg)
    _plot_spectra(p, pooled, out / "fig1_spectra.png")
    _plot_variance(p, agg, out / "fig1_variance.png")
    notes = ["Monte Carlo: width M = {width}, {trials} networks per (case, weights, depth); "
             "variance = m_2/m_1^2 - 1 of each spectrum, mean +- SE over networks.".format(**p),
             "Files: fig1_trials.csv, fig1_variance.csv, fig1_spectra.png, fig1_variance.png."]
    return checks, notes


def _checks(p: dict, agg: pd.DataFrame) -> list[F.Check]:
    checks = []
    for (act, q, ens), g in agg.groupby(["activation", "q_star", "weights"], sort=False):
        g = g.sort_values("depth")
        theory = float(g["closed_form_slope"].iloc[0])
        se = np.maximum(g["norm_var_se"].to_numpy(), 1e-12)
        depth = g["depth"].to_numpy(float)
        # finite-width model: variance = a L + b L^2 / M; a is the M -> infinity slope
        beta, err, _ = F.weighted_lstsq(np.column_stack([depth, depth**2 / p["width"]]),
                                        g["norm_var"], se)
        tol = p["z_max"] * err[0] + 1e-9
        checks.append(F.Check(
            f"variance slope, {act} q*={q:g} {ens}", abs(beta[0] - theory) < tol,
            f"fit a = {beta[0]:.4g} +- {err[0]:.2g} vs mu2/mu1^2-1-s1 = {theory:.4g} "
            f"(|diff| {abs(beta[0] - theory):.2g} < {p['z_max']} SE + 1e-9); finite-width "
            f"term b L^2/M, b = {beta[1]:.3g} +- {err[1]:.2g}"))
        dev = np.max(np.abs(g["theory_norm_var"] - g["closed_form_norm_var"])
                     / np.maximum(1.0, g["closed_form_norm_var"]))
        checks.append(F.Check(f"series law = closed form, {act} q*={q:g} {ens}", dev < 1e-8,
                              f"max relative difference {dev:.1e} < 1e-8 over L"))
    deepest = agg[agg["depth"] == max(p["depths"])]
    iso = p["isometric_case"]
    sel = ((deepest["activation"] == iso["activation"]) & np.isclose(deepest["q_star"],
                                                                       iso["q_star"])
           & (deepest["weights"] == iso["weights"]))
    others = deepest[(deepest["activation"] == "relu") | (deepest["weights"] == "gaussian")]
    iso_frac = float(deepest.loc[sel, "frac_in_band"].iloc[0])
    worst = float(others["frac_in_band"].max())
    checks.append(F.Check(
        f"near isometry at L={max(p['depths'])}: orthogonal hard tanh q*={iso['q_star']:g} "
        f"vs ReLU and Gaussian", iso_frac > 0.9 and worst < 0.5,
        f"fraction of eigenvalues in [1/{p['band']:g}, {p['band']:g}]: {iso_frac:.3f} (> 0.9) "
        f"vs at most {worst:.3f} (< 0.5); normalized variance "
        f"{float(deepest.loc[sel, 'norm_var'].iloc[0]):.3g} vs at least "
        f"{float(others['norm_var'].min()):.3g}"))
    return checks


def _plot_spectra(p: dict, pooled: dict, path: Path) -> None:
    labels = list(dict.fromkeys(k[0] for k in pooled))
    depths = p["depths"]
    fig, axes = plt.subplots(len(labels), len(depths),
                             figsize=(2.6 * len(depths), 1.9 * len(labels)), squeeze=False)
    for r, label in enumerate(labels):
        for c, depth in enumerate(depths):
            spec, eigs = pooled[label, depth]
            lo, hi = 0.0, float(np.quantile(eigs, 0.98))
            hi = max(hi, 1.5)
            law = jacobian_law(spec)
            x = np.linspace(hi / 400, hi, 200)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dens = law.density(x)
            F.spectrum_panel(axes[r, c], eigs, x=x, density=dens, atoms=law.atoms,
                             window=(lo, hi), title=f"{label}, L={depth}")
    axes[0, 0].legend(fontsize=6)
    fig.suptitle("J J^T spectra at criticality: Monte Carlo (M={}) vs free probability"
                 .format(p["width"]), fontsize=9)
    F.save_figure(fig, path)


def _plot_variance(p: dict, agg: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for k, ((act, q, ens), g) in enumerate(agg.groupby(["activation", "q_star", "weights"],
                                                       sort=False)):
        g = g.sort_values("depth")
        color = f"C{k % 10}"
        ax.errorbar(g["depth"], g["norm_var"], yerr=g["norm_var_se"], fmt="o", color=color,
                    ms=4, label=f"{act} q*={q:g} {ens}")
        ax.plot(g["depth"], g["closed_form_norm_var"], "-", color=color, lw=1)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("depth L")
    ax.set_ylabel("m2/m1^2 - 1 of J J^T")
    ax.set_title("variance vs depth: Monte Carlo (points) vs L (mu2/mu1^2 - 1 - s1) (lines)",
                 fontsize=8)
    ax.legend(fontsize=6)
    F.save_figure(fig, path)


#: Hydra entry point: ``python experiments/fig1_pennington2017/run.py [size=small]``
main = F.figure_app(compute, __file__)


if __name__ == "__main__":
    main()
