"""Plots of the studies: spectrum histograms over the theory density
(:func:`spectrum_histogram`), freeness defects vs M (:func:`plot_defect_decay`,
:func:`freeness_overlay`).

Spectrum histograms: one figure per network variant and matrix (J J^T, H_L), at the largest
width of the sweep, eigenvalues pooled over trials. The histogram is normalised by the TOTAL
number of eigenvalues, so that its area over the window is the fraction of the spectrum in it and it
sits on the density of the continuous part of the limit law (which integrates to one minus the
atoms' mass); atoms of the limit law are drawn as vertical lines labelled with their mass.
The window is [min, 99.5 % quantile] of the sample: heavy tails (deep ReLU) are cut, and the
cut mass is written in the title.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

#: quantile of the sample closing the histogram window
UPPER_QUANTILE = 0.995
BINS = 80



def save_figure(fig: plt.Figure, path: Path | str, *, dpi: int = 110, tight: bool = True
                ) -> Path:
    """Lay out, write as PNG and close a matplotlib figure; returns the path.

    The folder is created if missing; the PNG is written to a temporary name beside it and
    moved into place with ``os.replace``, so a reader never sees half a file. ``tight``:
    matplotlib's tight layout (a draw of every text to measure it: a third of the time of
    a figure of two panels); a figure laid out by its maker (``subplots_adjust``) passes
    False.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    if tight:
        fig.tight_layout()
    fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path

def spectrum_histogram(eigs: np.ndarray, path: Path, *, title: str,
                       density: tuple[np.ndarray, np.ndarray] | None = None,
                       atoms: np.ndarray | None = None, note: str = "") -> Path:
    """Write a PNG of the histogram of ``eigs`` with the theory density and atoms.

    Parameters
    ----------
    eigs : numpy.ndarray
        Pooled eigenvalues.
    path : path
        Output PNG.
    title : str
        Figure title.
    density : (x, f) arrays, optional
        Theory density of the continuous part on a grid.
    atoms : (k, 2) array, optional
        (location, mass) of the limit law's atoms.
    note : str
        Shown under the title (e.g. why the density is missing).
    """
    eigs = np.asarray(eigs, float)
    lo, hi = float(eigs.min()), float(np.quantile(eigs, UPPER_QUANTILE))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, BINS + 1)
    counts, _ = np.histogram(eigs, bins=edges)
    heights = counts / (eigs.size * np.diff(edges))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.stairs(heights, edges, fill=True, alpha=0.45, label=f"Monte Carlo ({eigs.size} eigenvalues)")
    # y range from the bulk, not from an atom's bin or an integrable spike of the density
    positive = heights[heights > 0]
    top = float(np.quantile(positive, 0.95)) if positive.size else 1.0
    if density is not None:
        x, f = density
        ax.plot(x, f, color="C3", lw=1.6, label="limit law density")
        finite = f[np.isfinite(f)]
        top = max(top, float(np.quantile(finite, 0.9)) if finite.size else 0.0)
    for loc, mass in (atoms if atoms is not None else np.empty((0, 2))):
        ax.axvline(loc, color="C2", ls="--", lw=1.2)
        ax.annotate(f"atom {mass:.3g}", (loc, 0.9 * 1.3 * top), color="C2", fontsize=8)
    ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)
    ax.set_xlim(lo, hi)
    cut = float(np.mean(eigs > hi))
    ax.set_title(f"{title}\n{note}" if note else title, fontsize=9)
    ax.set_xlabel(f"eigenvalue (window cuts {cut:.1%} of the sample)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_defect_decay(table: pd.DataFrame, fits: pd.DataFrame, path: Path | str) -> Path:
    """Log-log plot of the RMS paired defect vs M, one panel per word family, fitted slopes.

    Orthogonal weights solid, Gaussian dashed; the legend gives each word's slope +- SE.
    Writes a PNG (matplotlib Agg) to ``path`` and returns it.
    """
    groups = list(dict.fromkeys(table["group"]))
    ncol = min(3, len(groups))
    nrow = math.ceil(len(groups) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.5 * ncol, 4.2 * nrow), squeeze=False)
    slopes = {(r.word, r.ensemble): (r.slope, r.slope_se) for r in fits.itertuples()}
    for ax, group in zip(axes.ravel(), groups, strict=False):
        sub = table[table["group"] == group]
        for k, word in enumerate(dict.fromkeys(sub["word"])):
            color = f"C{k % 10}"
            for ens, style in (("orthogonal", "-o"), ("gaussian", "--s")):
                cell = sub[(sub["word"] == word) & (sub["ensemble"] == ens)].sort_values("M")
                if cell.empty:
                    continue
                slope, se = slopes.get((word, ens), (math.nan, math.nan))
                ax.errorbar(cell["M"], cell["rms_defect"], yerr=cell["rms_se"], fmt=style,
                            color=color, ms=4, capsize=2,
                            label=f"{word} [{ens[:4]}] slope {slope:.2f}±{se:.2f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(group)
        ax.set_xlabel("M")
        ax.set_ylabel("RMS paired defect")
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    return save_figure(fig, path, dpi=120)


def freeness_overlay(table: pd.DataFrame, fits: pd.DataFrame, path: Path | str) -> Path:
    """Every word of the freeness study on one log-log axis (RMS paired defect vs M).

    Words expected free blue, negative controls red; orthogonal weights solid, Gaussian
    dashed; the legend gives the median fitted slope of each kind. Writes a PNG to ``path``
    and returns it.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for (_word, ens), cell in table.groupby(["word", "ensemble"], sort=False):
        cell = cell.sort_values("M")
        control = cell["expected"].iloc[0] == "not free"
        ax.plot(cell["M"], cell["rms_defect"], "-" if ens == "orthogonal" else "--",
                color="C3" if control else "C0", alpha=0.7, lw=1, marker=".")
    for expected, color in (("free", "C0"), ("not free", "C3")):
        sub = fits[fits["expected"] == expected]
        kind = "theorem words" if expected == "free" else "controls"
        ax.plot([], [], color=color, label=f"{kind}: median slope {sub['slope'].median():.2f} "
                f"({len(sub)} fits)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("M")
    ax.set_ylabel("RMS paired freeness defect")
    ax.set_title("orthogonal (solid) and Gaussian (dashed) weights", fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
