"""Chhaibi, Daouda & Kahn (NeurIPS 2022): J J^T densities by the Newton solver, and spectral
metrics at initialization against performance after training.

Part A: limit densities of J J^T (:func:`freeness_lab.theory.jacobian_law`, Newton solver)
for ReLU MLPs with Gaussian weights across depths, rectangular widths and gains
(sigma_w = gain sqrt 2), over Monte Carlo histograms of log10 of the nonzero eigenvalues at
``mc_scale`` times the widths. Check: Monte Carlo mean of the spectrum within 4 SE of the
theory's m_1 in every panel.

Part B: a grid of MLPs 64 -> h_1 .. h_k -> 10 on scikit-learn's digits (1797 8x8 images,
features standardized with the training split's statistics, so q0 ~ 1), trained by SGD with
cross-entropy (:mod:`freeness_lab.simulate.training`), ``repeats`` runs (seeds) per
architecture. Metrics at initialization from the limit law of J J^T of the architecture
(widths N_0..N_L, D^L included; the trained network's readout is linear): log10 of its 0.9,
0.75 and 0.6 quantiles (the lower ones sit just above the atom of mass 1/2 at zero that the
ReLU output layer puts there), log10 m_1, log10 (m_2/m_1^2), and |log10 q_0.9| (distance from
isometry; added after seeing the inverted-U of test accuracy against log10 q_0.9, so a
post-hoc metric, reported but not checked). Each metric is correlated with
the per-architecture mean of log10(final training loss) and of the test accuracy (Pearson and
Spearman, 95 % Fisher-z intervals). Diverged runs are kept in the CSV, flagged, and left out
of the means; architectures with no finished run are counted in the summary.

Check: the Pearson correlation of log10 q_0.9 with log10(final training loss) has a 95 %
interval that excludes 0 (the paper's public code reports -0.87 over 131 MNIST
architectures), and so does its correlation with test accuracy.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from freeness_lab import NetworkSpec  # noqa: E402
from freeness_lab.harness import figures as F  # noqa: E402
from freeness_lab.harness.plots import save_figure  # noqa: E402
from freeness_lab.simulate import jacobian_spectrum  # noqa: E402
from freeness_lab.simulate.training import accuracy, init_mlp, train  # noqa: E402
from freeness_lab.theory.limits import jacobian_law  # noqa: E402

PARAMS = ("panels", "mc_scale", "mc_trials", "n_architectures", "repeats", "hidden_layers",
          "ratios", "gains", "sigma_bs", "min_width", "max_width", "epochs", "lr",
          "batch_size", "test_fraction")
METRICS = ("log10_q90", "log10_q75", "log10_q60", "log10_m1", "log10_norm_var",
           "abs_log10_q90")
TARGETS = ("log10_final_loss", "test_accuracy")


def digits(test_fraction: float, rng: np.random.Generator):
    """Standardized digits split: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = rng.permutation(len(data.target))
    n_test = int(round(test_fraction * order.size))
    test, tr = order[:n_test], order[n_test:]
    x = data.data.astype(float)
    mean, sd = x[tr].mean(axis=0), x[tr].std(axis=0)
    sd[sd == 0] = 1.0
    x = (x - mean) / sd
    return x[tr], data.target[tr], x[test], data.target[test]


def init_metrics(spec: NetworkSpec) -> dict[str, float]:
    """Spectral metrics of the limit law of J J^T at initialization."""
    law = jacobian_law(spec)
    m = law.moments(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = {p: float(law.quantile(p)) for p in (0.9, 0.75, 0.6)}
    return {"log10_q90": math.log10(q[0.9]), "abs_log10_q90": abs(math.log10(q[0.9])),
            "log10_q75": math.log10(q[0.75]),
            "log10_q60": math.log10(q[0.6]), "log10_m1": math.log10(m[0]),
            "log10_norm_var": math.log10(m[1] / m[0] ** 2)}


def architectures(p: dict, rng: np.random.Generator) -> list[dict]:
    """``n_architectures`` distinct (widths, gain, sigma_b) drawn from the grid."""
    seen, out = set(), []
    while len(out) < p["n_architectures"]:
        k = int(rng.choice(p["hidden_layers"]))
        widths, h = [64], 64.0
        for _ in range(k):
            h = float(np.clip(h * rng.choice(p["ratios"]), p["min_width"], p["max_width"]))
            widths.append(int(h))
        widths.append(10)
        arch = (tuple(widths), float(rng.choice(p["gains"])), float(rng.choice(p["sigma_bs"])))
        if arch not in seen:
            seen.add(arch)
            out.append({"widths": arch[0], "gain": arch[1], "sigma_b": arch[2]})
    return out


def _spec(widths, gain: float, sigma_b: float) -> NetworkSpec:
    return NetworkSpec("relu", "gaussian", len(widths) - 1, widths=tuple(widths),
                       sigma_w=gain * math.sqrt(2.0), sigma_b=sigma_b, q0=1.0)


def compute(p: dict, seed: int, out: Path) -> tuple[list[F.Check], list[str]]:
    """Densities, the training grid, the correlations; checks and plots."""
    F.check_config_keys(p, PARAMS, "sizes.<size>.")
    ss_dens, ss_data, ss_arch, ss_runs = np.random.SeedSequence(seed).spawn(4)
    checks = _densities(p, ss_dens, out)
    x_tr, y_tr, x_te, y_te = digits(p["test_fraction"], np.random.default_rng(ss_data))
    archs = architectures(p, np.random.default_rng(ss_arch))
    children = ss_runs.spawn(len(archs) * p["repeats"])
    rows = []
    for a, arch in enumerate(archs):
        spec = _spec(arch["widths"], arch["gain"], arch["sigma_b"])
        metrics = init_metrics(spec)
        for r in range(p["repeats"]):
            child = children[a * p["repeats"] + r]
            init_ss, shuffle_ss = child.spawn(2)
            mlp = init_mlp(spec, np.random.default_rng(init_ss))
            res = train(mlp, x_tr, y_tr, loss="cross_entropy", lr=p["lr"], epochs=p["epochs"],
                        batch_size=p["batch_size"], rng=np.random.default_rng(shuffle_ss))
            rows.append({"arch": a, "widths": "-".join(map(str, arch["widths"])),
                         "depth": spec.depth, "gain": arch["gain"], "sigma_w": spec.sigma_w,
                         "sigma_b": arch["sigma_b"], "repeat": r,
                         "spawn_key": str(child.spawn_key), **metrics,
                         "diverged": res.diverged, "diverged_at": res.diverged_at,
                         "reason": res.reason, "final_loss": res.final_loss,
                         "log10_final_loss": math.log10(res.final_loss)
                         if math.isfinite(res.final_loss) and res.final_loss > 0 else math.nan,
                         "test_accuracy": accuracy(mlp, x_te, y_te) if not res.diverged
                         else math.nan})
    runs = pd.DataFrame(rows)
    F.write_csv(runs, out / "fig5_runs.csv")
    done = runs[~runs["diverged"]]
    per_arch = (done.groupby("arch")
                .agg(**{m: (m, "first") for m in METRICS},
                     log10_final_loss=("log10_final_loss", "mean"),
                     test_accuracy=("test_accuracy", "mean"), runs=("repeat", "size"))
                .reset_index())
    F.write_csv(per_arch, out / "fig5_per_architecture.csv")
    corr_rows = []
    for metric in METRICS:
        for target in TARGETS:
            for method in ("pearson", "spearman"):
                c = F.correlation(per_arch[metric], per_arch[target], method=method)
                corr_rows.append({"metric": metric, "target": target, "method": method,
                                  "r": c.r, "ci_low": c.low, "ci_high": c.high, "n": c.n,
                                  "p_value": c.p_value})
    corr = pd.DataFrame(corr_rows)
    F.write_csv(corr, out / "fig5_correlations.csv")
    for target in TARGETS:
        row = corr[(corr.metric == "log10_q90") & (corr.target == target)
                   & (corr.method == "pearson")].iloc[0]
        checks.append(F.Check(
            f"log10 q90 of J J^T at init correlates with {target}",
            bool(row.ci_low > 0 or row.ci_high < 0),
            f"Pearson r = {row.r:+.3f}, 95% CI [{row.ci_low:+.3f}, {row.ci_high:+.3f}], "
            f"n = {row.n} architectures (paper, MNIST, final loss: -0.87 over 131)"))
    _plot_training(per_arch, corr, out / "fig5_correlations.png")
    n_fail = int(runs["diverged"].sum())
    lost = sorted(set(runs["arch"]) - set(per_arch["arch"]))
    notes = [f"{len(archs)} architectures x {p['repeats']} runs (SGD lr {p['lr']}, batch "
             f"{p['batch_size']}, {p['epochs']} epochs, {len(y_tr)} train / {len(y_te)} test "
             f"digits); {n_fail} runs diverged (flagged in fig5_runs.csv, left out of the "
             f"means); {len(lost)} architectures with no finished run: {lost}.",
             "Correlations with per-architecture means (fig5_correlations.csv):",
             *(f"  {r.metric} vs {r.target} ({r.method}): r = {r.r:+.3f} "
               f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]" for r in corr.itertuples()),
             "Files: fig5_densities.png, fig5_density_moments.csv, fig5_runs.csv, "
             "fig5_per_architecture.csv, fig5_correlations.csv, fig5_correlations.png."]
    return checks, notes


def _densities(p: dict, ss: np.random.SeedSequence, out: Path) -> list[F.Check]:
    panels = p["panels"]
    seeds = ss.spawn(len(panels) * p["mc_trials"])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    checks, rows = [], []
    for i, (panel, ax) in enumerate(zip(panels, axes[0], strict=True)):
        spec = _spec(panel["widths"], panel["gain"], 0.0)
        law = jacobian_law(spec)
        big = _spec([w * p["mc_scale"] for w in panel["widths"]], panel["gain"], 0.0)
        eigs = [jacobian_spectrum(big, np.random.default_rng(seeds[i * p["mc_trials"] + t]))
                for t in range(p["mc_trials"])]
        means = np.array([e.mean() for e in eigs])
        m1, se = means.mean(), means.std(ddof=1) / math.sqrt(means.size)
        th = law.moments(1)[0]
        rows.append({"widths": "-".join(map(str, panel["widths"])), "gain": panel["gain"],
                     "theory_m1": th, "mc_m1": m1, "mc_se": se, "mc_scale": p["mc_scale"]})
        checks.append(F.Check(f"J J^T mean, widths {panel['widths']} gain {panel['gain']:g}",
                              abs(m1 - th) < 4 * se,
                              f"MC {m1:.4g} +- {se:.2g} vs theory {th:.4g}"))
        pooled = np.concatenate(eigs)
        nz = np.log10(pooled[pooled > 1e-12 * pooled.max()])
        hi = float(np.log10(law.quantile(0.999)))
        lo = min(float(nz.min()), hi - 1.0) - 0.3
        ax.hist(nz, bins=np.linspace(lo, hi + 0.5, 70), density=False,
                weights=np.full(nz.size, 1.0 / (pooled.size * (hi + 0.5 - lo) / 69)),
                alpha=0.45, label=f"MC (widths x{p['mc_scale']})")
        t = np.linspace(lo, hi + 0.5, 300)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dens = law.density(10**t) * 10**t * math.log(10)
        ax.plot(t, dens, "C3", lw=1.3, label="Newton solver")
        ax.set_title(f"{panel['widths']}, sigma_w={spec.sigma_w:.2f}", fontsize=8)
        ax.set_xlabel("log10 eigenvalue of J J^T")
        ax.legend(fontsize=6)
    save_figure(fig, out / "fig5_densities.png")
    F.write_csv(pd.DataFrame(rows), out / "fig5_density_moments.csv")
    return checks


def _plot_training(per_arch: pd.DataFrame, corr: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, target in zip(axes, TARGETS, strict=True):
        ax.scatter(per_arch["log10_q90"], per_arch[target], s=14)
        r = corr[(corr.metric == "log10_q90") & (corr.target == target)
                 & (corr.method == "pearson")].iloc[0]
        ax.set_title(f"Pearson r = {r.r:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]", fontsize=9)
        ax.set_xlabel("log10 q_0.9 of J J^T at init (theory)")
        ax.set_ylabel(f"{target} (mean over runs)")
    save_figure(fig, path)


#: Hydra entry point: ``python experiments/fig5_chhaibi2022/run.py [size=small]``
main = F.figure_app(compute, __file__)


if __name__ == "__main__":
    main()
