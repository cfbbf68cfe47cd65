"""The spectral check's report: fits and verdicts, plots, and its section of ``summary.md``.

From the per-trial ``spectral_distance`` table (:mod:`freeness_lab.harness.spectral_check`):

* ``spectral_fits`` (:func:`~freeness_lab.harness.spectral_check.fit_distances`);
* ``plots/spectral_distance_<variant>.png``: RMS Kolmogorov and Wasserstein-1 distances vs M
  (log-log, error bars: SE), every comparison, with its fitted slope;
* ``plots/cdf_<matrix>_<variant>.png``: at the largest M, trial 0, the ESD's cdf against
  the limit and the paired cdf at the points the check compared (that trial's ``cdf`` rows:
  no law is solved here), the Kolmogorov point of the paired law marked;
* on request (:func:`panel_plot`, e.g. figure 4's ``plots/fig4_spectral.png``), every variant
  on one figure: the claimed (Kolmogorov) distance of J J^T and H_L to the paired law against
  the distance to the limit law, one panel per network and ensemble.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from freeness_lab.harness.compare import VARIANT_COLUMNS, variant_columns
from freeness_lab.harness.markdown import compact, counts, markdown_table
from freeness_lab.harness.plots import save_figure
from freeness_lab.harness.schema import RunConfig
from freeness_lab.harness.spectral_check import CLAIMED_METRIC, fit_distances, per_width

__all__ = ["failing", "panel_plot", "spectral_report"]

_STYLE = {"limit": "--", "paired": "-", "classical": ":"}
#: how the matrices are named on the plots
_MATRIX_LABEL = {"JJT": "J J^T", "H_L": "H_L"}


def failing(fits: pd.DataFrame, strict: bool) -> pd.Series:
    """Failing fits: a verdict contradicting ``expected``, ``theory error``, and under
    ``strict`` (``experiment.fail_on_disagreement``) ``inconclusive`` and ``no theory``."""
    v, expected = fits["verdict"], fits["expected"]
    bad = (((expected == "free") & (v == "not free"))
           | ((expected == "not free") & (v == "free")) | (v == "theory error"))
    if strict:
        bad |= (expected != "") & v.isin(["inconclusive", "no theory"])
    return bad


def _slug(variant: dict) -> str:
    return "-".join(f"{k}{v:g}" if isinstance(v, float) else f"{v}".replace(":", "_")
                    for k, v in variant.items())


def distance_plot(stats: pd.DataFrame, fits: pd.DataFrame, path: Path, title: str) -> Path:
    """RMS distance vs M per comparison, both metrics, log-log, with the fitted slopes."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric in zip(axes, ("kolmogorov", "wasserstein1"), strict=True):
        for key, g in stats[stats["metric"] == metric].groupby(
                ["network", "matrix", "reference"], sort=False):
            g = g.sort_values("width")
            f = fits[(fits["metric"] == metric) & (fits["network"] == key[0])
                     & (fits["matrix"] == key[1]) & (fits["reference"] == key[2])]
            slope = float(f["slope"].iloc[0]) if len(f) else math.nan
            ax.errorbar(g["width"], g["rms"], yerr=g["rms_se"], marker="o", capsize=2,
                        ls=_STYLE.get(key[2], "-"),
                        label=f"{key[1]} vs {key[2]}"
                              f"{' [cyclic W]' if key[0] == 'cyclic' else ''}: slope {slope:.2f}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width M")
        ax.set_ylabel(f"RMS {metric} distance over trials")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.12, top=0.91, wspace=0.2)
    return save_figure(fig, path, tight=False)


def _guides(ax: plt.Axes, widths: np.ndarray, start: float) -> None:
    """Grey dotted guides M^-1/2 and M^-1 from ``start`` at the smallest width."""
    m = np.array([widths.min(), widths.max()], float)
    for power in (0.5, 1.0):
        ax.plot(m, start * (m / m[0]) ** -power, ":", color="0.6", lw=1,
                label=f"M^-{power:g}" if power < 1 else "M^-1")


def panel_plot(table: pd.DataFrame, fits: pd.DataFrame, path: Path) -> Path:
    """RMS Kolmogorov distance vs M of every variant on one figure.

    One panel per network (row: the variant's columns but the ensemble) and ensemble
    (column): J J^T and H_L of the sampled networks against their paired law (solid) and the
    limit law (dashed), log-log, SE bars, each fitted slope +- SE in the legend, guides
    M^-1/2 and M^-1, and the claimed verdicts in the panel's title.

    Parameters
    ----------
    table : pandas.DataFrame
        The per-trial ``spectral_distance`` rows.
    fits : pandas.DataFrame
        Their :func:`~freeness_lab.harness.spectral_check.fit_distances`.
    path : Path
    """
    keys = [*VARIANT_COLUMNS, "network", "matrix", "reference", "metric"]
    rows = table[(table["metric"] == CLAIMED_METRIC) & (table["network"] == "sampled")
                 & table["reference"].isin(["paired", "limit"])]
    stats = per_width(rows, keys)
    fits = fits[(fits["metric"] == CLAIMED_METRIC) & (fits["network"] == "sampled")]
    networks = [c for c in VARIANT_COLUMNS if c != "weights"]
    cases = list(dict.fromkeys(stats[networks].itertuples(index=False, name=None)))
    ensembles = list(dict.fromkeys(stats["weights"]))
    fig, axes = plt.subplots(len(cases), len(ensembles), squeeze=False,
                             figsize=(5.6 * len(ensembles), 4.6 * len(cases)))
    for (i, case), (j, ens) in ((a, b) for a in enumerate(cases) for b in enumerate(ensembles)):
        ax, label = axes[i, j], {**dict(zip(networks, case, strict=True)), "weights": ens}
        sel = np.logical_and.reduce([stats[c] == v for c, v in label.items()])
        fsel = fits[np.logical_and.reduce([fits[c] == v for c, v in label.items()])]
        said = []
        for k, matrix in enumerate(_MATRIX_LABEL):
            for reference in ("paired", "limit"):
                g = stats[sel & (stats["matrix"] == matrix) & (stats["reference"] == reference)
                          ].sort_values("width")
                f = fsel[(fsel["matrix"] == matrix) & (fsel["reference"] == reference)]
                if g.empty or f.empty:
                    continue
                r = f.iloc[0]
                ax.errorbar(g["width"], g["rms"], yerr=g["rms_se"], ls=_STYLE[reference],
                            marker="o" if reference == "paired" else "s", ms=4, capsize=2,
                            color=f"C{k}", label=f"{_MATRIX_LABEL[matrix]} vs {reference}: "
                            f"slope {r.slope:.2f} ± {r.slope_se:.2f}")
                if r.verdict:
                    said.append(f"{_MATRIX_LABEL[matrix]} {r.verdict}")
        if sel.any():
            _guides(ax, stats.loc[sel, "width"].to_numpy(), float(stats.loc[sel, "rms"].max()))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width M")
        ax.set_ylabel("RMS Kolmogorov distance")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        ax.set_title(f"{label['activation']}, {ens}, L={label['depth']}, "
                     f"sigma_w^2={label['sigma_w'] ** 2:.3g}\npaired: {', '.join(said)}",
                     fontsize=9)
    fig.suptitle("ESD vs its paired free product (solid) and vs the limit law (dashed)",
                 fontsize=10)
    return save_figure(fig, path)


def cdf_plot(curves: dict[str, tuple[np.ndarray, ...]], path: Path, title: str,
             kolmogorov: tuple[float, float] | None = None) -> Path:
    """The ESD's cdf against each law's, as the check compared them, the paired law's
    Kolmogorov point marked.

    Parameters
    ----------
    curves : dict
        By reference name, (x, F_n(x), F(x), atoms): the points compared (the floor, the
        eigenvalues above it, the law's atoms above it), the ESD's and the law's cdf there,
        and the law's atoms above the floor (rows (location, mass)), drawn as jumps.
    path : Path
    title : str
    kolmogorov : (float, float), optional
        (x*, d_K) of the ESD against the paired law, as the trial's ``spectral_distance``
        rows hold them (not computed again here).
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    x, esd = next(iter(curves.values()))[:2]
    ax.step(x, esd, where="post", color="k", lw=1,
            label=f"ESD (censored below the floor {x[0]:.2g})")
    for name, (x, _, F, atoms) in curves.items():
        # the law's cdf is continuous but at its atoms: each atom's left limit F - mass
        # drawn before it
        xs = np.concatenate([x, atoms[:, 0]])
        Fs = np.concatenate([F, np.interp(atoms[:, 0], x, F) - atoms[:, 1]])
        order = np.lexsort((Fs, xs))
        ax.plot(xs[order], Fs[order], ls=_STYLE.get(name, "-"), label=f"{name} law")
    if kolmogorov is not None:
        ax.axvline(kolmogorov[0], color="r", lw=0.8, alpha=0.6,
                   label=f"paired d_K = {kolmogorov[1]:.3g}")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("cdf")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.92)
    return save_figure(fig, path, tight=False)


def _kolmogorov(rows: pd.DataFrame, matrix: str) -> tuple[float, float] | None:
    """(x*, d_K) of the sampled ``matrix`` against its paired law in ``rows`` (one trial's),
    or None where that comparison is not ``ok``."""
    r = rows[(rows["network"] == "sampled") & (rows["matrix"] == matrix)
             & (rows["reference"] == "paired") & (rows["metric"] == "kolmogorov")
             & (rows["status"] == "ok")]
    return (float(r["point"].iloc[0]), float(r["value"].iloc[0])) if len(r) else None


def _curves(rows: pd.DataFrame, matrix: str) -> dict[str, tuple[np.ndarray, ...]]:
    """The ``cdf`` rows of the sampled ``matrix`` in ``rows`` (one trial's), by reference
    (paired first): (x, F_n, F, atoms above the floor)."""
    out = {}
    for reference in ("paired", "limit"):
        mine = rows[(rows["network"] == "sampled") & (rows["matrix"] == matrix)
                    & (rows["reference"] == reference) & (rows["status"] == "ok")]
        curve = mine[mine["metric"] == "cdf"].sort_values("point")
        if curve.empty:
            continue
        x = curve["point"].to_numpy(float)
        atoms = mine[(mine["metric"] == "atom") & (mine["point"] > x[0])]
        out[reference] = (x, curve["value"].to_numpy(float), curve["law"].to_numpy(float),
                          atoms[["point", "law"]].to_numpy(float).reshape(-1, 2))
    return out


def _cdf_plots(table: pd.DataFrame, variant: dict, plot_dir: Path) -> list[Path]:
    """The cdf plots of trial 0 at the largest M, from its ``cdf`` rows (the curves the
    check compared: :data:`~freeness_lab.harness.spectral_check.CURVES`)."""
    width = int(table["width"].max())
    rows = table[(table["width"] == width) & (table["trial"] == 0)]
    paths = []
    for matrix in _MATRIX_LABEL:
        curves = _curves(rows, matrix)
        if not curves:  # neither law could be compared: nothing to draw
            continue
        widths = rows["widths"].iloc[0] if "widths" in rows.columns else None
        title = (f"{matrix}: {variant['activation']}, {variant['weights']}, "
                 f"L={variant['depth']}, M={width}, trial 0"
                 + ("" if widths is None or len(set(str(widths).split("-"))) == 1
                    else f", N={widths}"))
        path = plot_dir / f"cdf_{matrix}_{_slug(variant)}.png"
        paths.append(cdf_plot(curves, path, title,
                              _kolmogorov(rows, matrix) if "paired" in curves else None))
    return paths


def spectral_report(run: RunConfig, table: pd.DataFrame, plot_dir: Path
                    ) -> tuple[pd.DataFrame, list[Path], list[str], int]:
    """Fits, plots, the summary section and its number of failing checks.

    Parameters
    ----------
    run : RunConfig
    table : pandas.DataFrame
        The run's ``spectral_distance`` table.
    plot_dir : Path

    Returns
    -------
    (spectral_fits, plots, section lines, failed)
    """
    columns = variant_columns(table)  # with the shape's width_ratios, when rectangular
    fits = fit_distances(table, columns)
    keys = [*columns, "network", "matrix", "reference", "metric"]
    stats = per_width(table[table["metric"].isin(["kolmogorov", "wasserstein1"])], keys)
    plots = []
    for vkey, g in table.groupby(columns, sort=False):
        variant = dict(zip(columns, vkey, strict=True))
        sel = np.logical_and.reduce([stats[c] == v for c, v in variant.items()])
        fsel = np.logical_and.reduce([fits[c] == v for c, v in variant.items()])
        title = (f"{variant['activation']}, {variant['weights']}, L={variant['depth']}, "
                 f"sigma_w={variant['sigma_w']:.4g}, sigma_b={variant['sigma_b']:g}"
                 + (f", ratios {variant['width_ratios']}" if "width_ratios" in variant else ""))
        plots.append(distance_plot(stats[sel], fits[fsel],
                                   plot_dir / f"spectral_distance_{_slug(variant)}.png", title))
        plots += _cdf_plots(g, variant, plot_dir)
    bad = failing(fits, run.experiment.fail_on_disagreement)
    lines = ["## Spectral distances: whole spectra vs the limit law and the paired free "
             "product", "",
             "Per trial, the Kolmogorov and Wasserstein-1 distances of the ESD of J J^T and "
             "H_L (censored below the floating-point floor 2 (L+1) M eps lambda_max) to the "
             "`limit` law and to the `paired` law -- the free product of that trial's own "
             "D_l^2 laws (and shifts, for H_L) -- with two controls that must be `not free`: "
             "the `classical` (commuting) product of the same marginals, and the `cyclic` "
             "network (every W_l = sigma_w P, P a cyclic shift) against its own paired law. "
             "Fits over M: slope of log RMS distance on log M; d_inf from "
             "mean d = d_inf + b M^-1/2. `free`: slope below -1/2 by 3 SE and "
             "z_inf < 4; `not free`: z_inf >= 8, or a slope above -1/2 by 3 SE with z_inf >= 4; "
             "else `inconclusive`. The claims are the "
             "Kolmogorov verdicts (W_1 weighs the heavy upper tail: its verdicts are shown, "
             "not claimed).", "",
             f"Verdicts: {counts(fits.loc[fits['expected'] != '', 'verdict'])}.", ""]
    cols = ["network", "matrix", "reference", "metric", "slope", "slope_se", "d_inf", "z_inf",
            "rms_last", "expected", "verdict"]
    lines += markdown_table(compact(fits[[*columns, *cols]], cols))
    lines += ["", "Claims:", ""]
    for r, failed in zip(fits.itertuples(), bad, strict=True):
        if r.expected:
            shape = f", {r.width_ratios}" if "width_ratios" in columns else ""
            lines.append(f"- {'FAIL' if failed else 'PASS'}: {r.matrix} [{r.network}, "
                         f"{r.weights}, {r.activation}{shape}] vs {r.reference} ({r.metric}) is "
                         f"{r.expected} -- verdict {r.verdict}; slope {r.slope:.2f} +- "
                         f"{r.slope_se:.2f}, z_inf {r.z_inf:.2f}")
    lines.append("")
    return fits, plots, lines, int(bad.sum())
