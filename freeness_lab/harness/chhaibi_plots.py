"""Plots of figure 5 (Chhaibi, Daouda & Kahn 2022; :mod:`freeness_lab.harness.studies.chhaibi2022`
and ``chhaibi2022_training``): densities of J J^T over Monte Carlo histograms, the spectral
metrics against the width-ratio profile, and the metric at initialization against the
performance after training.

Densities are drawn in log10 of the eigenvalue: the histogram of log10 lambda over the
nonzero eigenvalues (above the noise floor), normalized by the TOTAL number of eigenvalues,
sits on the law's continuous density in that variable, f(10^t) 10^t ln 10, and both have the
area 1 - (mass at 0).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from freeness_lab.harness.jacobian_metrics import QUANTILES, quantile_name
from freeness_lab.harness.plots import save_figure
from freeness_lab.harness.spectral_distance import noise_floor
from freeness_lab.theory.limits import jacobian_law

#: histogram bins and density points of a panel
BINS, POINTS = 60, 300
#: panels per row
COLUMNS = 4


def density_panel(ax: Any, values: np.ndarray, spec: Any, title: str) -> None:
    """One panel: histogram of log10 of the nonzero eigenvalues, the Newton-solver density."""
    law = jacobian_law(spec)
    nz = np.log10(values[values > noise_floor(values, max(spec.layer_widths), spec.depth)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hi = float(np.log10(law.quantile(0.999)))
    lo = min(float(nz.min()) if nz.size else hi - 1.0, hi - 1.0) - 0.3
    edges = np.linspace(lo, hi + 0.5, BINS + 1)
    counts, _ = np.histogram(nz, bins=edges)
    ax.stairs(counts / (values.size * np.diff(edges)), edges, fill=True, alpha=0.45,
              label="Monte Carlo")
    t = np.linspace(lo, hi + 0.5, POINTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dens = law.density(10**t) * 10**t * math.log(10)
    ax.plot(t, dens, "C3", lw=1.3, label="Newton solver")
    ax.set_title(title, fontsize=7)
    ax.set_xlabel("log10 eigenvalue of J J^T", fontsize=7)
    ax.tick_params(labelsize=6)


def plot_densities(entries: list[tuple[str, str, Any, Any, pd.DataFrame]], path: Path) -> Path:
    """One panel per (profile, weights, spec, shape, its eigenvalue rows)."""
    rows = max(1, math.ceil(len(entries) / COLUMNS))
    cols = min(COLUMNS, max(1, len(entries)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.7 * rows), squeeze=False)
    for ax, (name, weights, spec, shape, eigs) in zip(axes.flat, entries, strict=False):
        density_panel(ax, eigs["value"].to_numpy(), spec,
                      f"{name}, {weights}, N = {shape.label()['widths']}, "
                      f"sigma_w = {spec.sigma_w:.3g}")
    for ax in list(axes.flat)[len(entries):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6)
    fig.suptitle("J J^T: Monte Carlo histograms over the limit densities", fontsize=9)
    return save_figure(fig, path)


def plot_metrics(table: pd.DataFrame, path: Path) -> Path:
    """q_p of the nonzero part per (profile, ensemble): Monte Carlo mean +- SE (points with
    bars), limit law (horizontal ticks), log scale."""
    cells = table[["profile", "weights", "widths"]].drop_duplicates().reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(cells) + 2), 4.2))
    markers = {"gaussian": "o", "orthogonal": "s"}
    for k, p in enumerate(QUANTILES):
        sub = table[table["metric"] == quantile_name(p)].reset_index(drop=True)
        x = np.arange(len(sub)) + (k - 0.5) * 0.2
        for weights, m in markers.items():
            s = (sub["weights"] == weights).to_numpy()
            ax.errorbar(x[s], sub.loc[s, "mean"], yerr=sub.loc[s, "se"], fmt=m, color=f"C{k}",
                        ms=4, label=f"{quantile_name(p)} Monte Carlo ({weights})")
        ax.scatter(x, sub["theory"], marker="_", s=250, color="k",
                   label="limit law" if k == 0 else None)
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels([f"{r.profile}\n{r.weights}\n{r.widths}" for r in cells.itertuples()],
                       fontsize=6)
    ax.set_yscale("log")
    ax.set_ylabel("quantile of the nonzero spectrum of J J^T")
    ax.set_title("spectral metrics vs width-ratio profile", fontsize=9)
    ax.legend(fontsize=6)
    return save_figure(fig, path)


def plot_correlations(per_arch: pd.DataFrame, corr: pd.DataFrame, metric: str,
                      targets: tuple[str, ...], path: Path) -> Path:
    """``metric`` (theory, at init) against each target (mean over runs), one point per
    architecture, with the Pearson r and its interval."""
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 4), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        ax.scatter(per_arch[metric], per_arch[target], s=14)
        r = corr[(corr["metric"] == metric) & (corr["target"] == target)
                 & (corr["method"] == "pearson")].iloc[0]
        ax.set_title(f"Pearson r = {r.r:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}], "
                     f"n = {r.n}", fontsize=9)
        ax.set_xlabel(f"{metric} of J J^T at init (theory)")
        ax.set_ylabel(f"{target} (mean over runs)")
    return save_figure(fig, path)
