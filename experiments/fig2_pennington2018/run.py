"""Pennington, Schoenholz & Ganguli (AISTATS 2018): universality of J J^T at large depth.

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

Monte Carlo spectra (orthogonal networks of width M) are drawn at ``mc_depths``; the sup
distance between their empirical cdfs (within and across classes) is reported in the CSV and
the histograms are plotted.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import optimize  # noqa: E402

from freeness_lab import NetworkSpec  # noqa: E402
from freeness_lab.harness import figures as F  # noqa: E402
from freeness_lab.simulate import jacobian_spectrum  # noqa: E402
from freeness_lab.theory.limits import jacobian_law  # noqa: E402
from freeness_lab.theory.meanfield import d2_moments  # noqa: E402
from freeness_lab.theory.series import s_to_moments, series_exp  # noqa: E402

PARAMS = ("sigma0_sq", "depths", "classes", "width", "trials", "mc_depths")
N_MOMENTS = 4
#: asymptotic d(L) ~ L^rate: every order of the Bernoulli S-transform is in its limit, so the
#: error is O(1/L); for smooth phi' the third free cumulant of D^2 (skewness O(1) at small q)
#: leaves L kappa_3 ~ sigma_0^3 L^(-1/2) in log S
EXPECTED_RATE = {"bernoulli": -1.0, "smooth": -0.5}
#: the check: local exponent between the two largest depths at most this (pre-asymptotic
#: exponents of the smooth class are -0.3..-0.4 at L = 16..256)
MAX_RATE = {"bernoulli": -0.9, "smooth": -0.3}


def matched_q_star(activation: str, target: float) -> float:
    """q* with mu_2(q*)/mu_1(q*)^2 - 1 = target (Brent's method on log q in [1e-5, 50])."""
    def excess(log_q: float) -> float:
        mu = d2_moments(activation, float(np.exp(log_q)), 2)
        return mu[1] / mu[0] ** 2 - 1 - target

    return float(np.exp(optimize.brentq(excess, np.log(1e-5), np.log(50.0), xtol=1e-14)))


def limit_moments(cls: str, sigma0_sq: float, n: int) -> np.ndarray:
    """m_1..m_n of the law with S = exp(-sigma_0^2 z/(1+z)) (bernoulli) or exp(-sigma_0^2 z)."""
    k = np.arange(n)
    if cls == "bernoulli":   # -sigma_0^2 z / (1 + z) = sum_{k>=1} -sigma_0^2 (-1)^(k-1) z^k
        b = np.where(k >= 1, -sigma0_sq * (-1.0) ** (k - 1), 0.0)
    else:
        b = np.where(k == 1, -sigma0_sq, 0.0)
    return s_to_moments(series_exp(b))


def compute(p: dict, seed: int, out: Path) -> tuple[list[F.Check], list[str]]:
    """Theory moments vs the limits, Monte Carlo spectra, checks and plots."""
    F.check_config_keys(p, PARAMS, "sizes.<size>.")
    s0 = p["sigma0_sq"]
    acts = [(cls, a) for cls, names in p["classes"].items() for a in names]
    limits = {cls: limit_moments(cls, s0, N_MOMENTS) for cls in p["classes"]}
    rows, specs = [], {}
    for cls, act in acts:
        for depth in p["depths"]:
            q = matched_q_star(act, s0 / depth)
            sw, sb, q0 = F.critical_point(act, q)
            spec = NetworkSpec(act, "orthogonal", depth, p["width"], sw, sb, q0)
            specs[act, depth] = spec
            m = jacobian_law(spec).moments(N_MOMENTS)
            rel = np.abs(m[2:] - limits[cls][2:]) / limits[cls][2:]
            rows.append({"class": cls, "activation": act, "depth": depth, "q_star": q,
                         "sigma_w": sw, "sigma_b": sb,
                         **{f"m{k + 1}": m[k] for k in range(N_MOMENTS)},
                         **{f"limit_m{k + 1}": limits[cls][k] for k in range(N_MOMENTS)},
                         "dist_to_limit": float(rel.max())})
    table = pd.DataFrame(rows)
    F.write_csv(table, out / "fig2_moments.csv")
    mc = _monte_carlo(p, specs, seed)
    F.write_csv(mc, out / "fig2_mc_cdf_distances.csv")
    checks = _checks(p, table)
    _plot(p, table, specs, seed, out / "fig2_universality.png")
    notes = [f"sigma_0^2 = {s0:g}; limit moments m1..m4: "
             + "; ".join(f"{c}: {np.round(v, 4).tolist()}" for c, v in limits.items()),
             "Monte Carlo sup |F - G| between empirical spectra (fig2_mc_cdf_distances.csv):",
             *(f"  L={r.depth}: {r.pair}: {r.sup_cdf_distance:.3f}" for r in mc.itertuples()),
             "Files: fig2_moments.csv, fig2_mc_cdf_distances.csv, fig2_universality.png."]
    return checks, notes


def _monte_carlo(p: dict, specs: dict, seed: int) -> pd.DataFrame:
    acts = [a for names in p["classes"].values() for a in names]
    seeds = F.run_seeds(seed, len(p["mc_depths"]) * len(acts) * p["trials"])
    rows, it = [], iter(seeds)
    grid = np.linspace(0, 6, 601)
    for depth in p["mc_depths"]:
        cdfs = {}
        for act in acts:
            eigs = np.concatenate([
                jacobian_spectrum(specs[act, depth].with_width(p["width"]),
                                  np.random.default_rng(next(it)))
                for _ in range(p["trials"])])
            cdfs[act] = F.empirical_cdf(eigs, grid)
        for i, a in enumerate(acts):
            for b in acts[i + 1:]:
                rows.append({"depth": depth, "pair": f"{a} vs {b}", "width": p["width"],
                             "sup_cdf_distance": F.sup_cdf_distance(cdfs[a], cdfs[b])})
    return pd.DataFrame(rows)


def _checks(p: dict, table: pd.DataFrame) -> list[F.Check]:
    checks = []
    for cls, g in table.groupby("class", sort=False):
        d = g.groupby("depth")["dist_to_limit"].max().sort_index()
        depths, dist = d.index.to_numpy(float), d.to_numpy()
        rate = float(np.log(dist[-1] / dist[-2]) / np.log(depths[-1] / depths[-2]))
        ok = bool(np.all(np.diff(dist) < 0) and rate <= MAX_RATE[cls])
        checks.append(F.Check(
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
        checks.append(F.Check(
            "collapse within the smooth class, not across classes", ok,
            "relative m3 spread within smooth: " + ", ".join(
                f"L={L}: {w:.2e}" for L, w in within.items())
            + f"; gap between classes at L={within.index[-1]}: {between.iloc[-1]:.3f}"))
    return checks


def _plot(p: dict, table: pd.DataFrame, specs: dict, seed: int, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    depth = max(p["mc_depths"])
    gen = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    for k, act in enumerate(a for names in p["classes"].values() for a in names):
        eigs = np.concatenate([jacobian_spectrum(specs[act, depth], gen)
                               for _ in range(p["trials"])])
        ax.hist(eigs, bins=np.linspace(0, 5, 80), density=True, histtype="step",
                color=f"C{k}", label=f"{act} (MC, M={p['width']})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = np.linspace(0.02, 5, 120)
            if specs[act, depth].act.is_piecewise_linear:
                ax.plot(x, jacobian_law(specs[act, depth]).density(x), color=f"C{k}", lw=1,
                        ls="--", label=f"{act} theory")
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
    F.save_figure(fig, path)


#: Hydra entry point: ``python experiments/fig2_pennington2018/run.py [size=small]``
main = F.figure_app(compute, __file__)


if __name__ == "__main__":
    main()
