"""Shared helpers of the paper-figure experiments (``experiments/fig*/run.py``).

Statistics (each with the formula it implements):

- :func:`linear_fit`: (weighted) least squares y = a + b x with standard errors; the
  covariance (X^T W X)^-1 is scaled by max(1, chi^2 / dof) (Birge ratio) so that a fit worse
  than its stated errors widens the SEs instead of hiding the misfit.
- :func:`correlation`: Pearson or Spearman correlation with a confidence interval by Fisher's
  z-transform, atanh(r) +- z_{1-alpha/2} s, s = 1 / sqrt(n - 3) (Pearson) or
  sqrt(1.06 / (n - 3)) (Spearman; Fieller, Hartley & Pearson, Biometrika 44, 1957).
- :func:`sup_cdf_distance`: sup_x |F(x) - G(x)| on a grid (Kolmogorov distance).
- :func:`empirical_cdf`: the right-continuous empirical cdf of a sample.

Output: one folder per run, ``results/<figure>/<run>/`` (:func:`output_dir`), holding the
PNGs, the CSVs behind them (:func:`write_csv`), ``metadata.json`` (config, git state,
package versions; :func:`write_metadata`) and ``summary.md`` with one PASS/FAIL line per
claim (:func:`write_summary`). Files are written atomically (temporary name, then
``os.replace``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from freeness_lab.harness.provenance import git_state, package_versions
from freeness_lab.harness.storage import write_json
from freeness_lab.theory import meanfield

__all__ = ["Check", "Correlation", "LinearFit", "check_config_keys", "correlation",
           "critical_point", "run_figure", "run_seeds", "spectrum_panel",
           "weighted_lstsq",
           "empirical_cdf", "linear_fit", "output_dir", "sup_cdf_distance", "write_csv",
           "write_metadata", "write_summary"]


@dataclass(frozen=True)
class Check:
    """One numeric check of a figure's claim.

    Attributes
    ----------
    name : str
        The claim, in a few words.
    passed : bool
        Whether the numbers support it at the stated tolerance.
    detail : str
        The numbers and the tolerance.
    """

    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        """``PASS: name -- detail`` (or ``FAIL``)."""
        return f"{'PASS' if self.passed else 'FAIL'}: {self.name} -- {self.detail}"


@dataclass(frozen=True)
class LinearFit:
    """y = intercept + slope x, with standard errors (:func:`linear_fit`)."""

    intercept: float
    slope: float
    intercept_se: float
    slope_se: float
    chi2_dof: float


def weighted_lstsq(design: np.ndarray, y: Sequence[float],
                   se: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Least squares y ~ design @ beta, weighted by 1 / se^2 when ``se`` is given.

    beta = (X^T W X)^-1 X^T W y; Cov(beta) = (X^T W X)^-1 times max(1, chi^2 / dof)
    (weighted; Birge ratio) or times the residual variance chi^2 / dof (unweighted, W = I).

    Returns
    -------
    (beta, se_beta, chi2_dof)

    Raises
    ------
    ValueError
        With no degree of freedom left, or non-positive ``se``.
    """
    design = np.asarray(design, float)
    y = np.asarray(y, float)
    n, k = design.shape
    if y.shape != (n,) or n <= k:
        raise ValueError(f"y: need more points than parameters ({k}), got {y.shape}")
    if se is None:
        w = np.ones(n)
    else:
        s = np.asarray(se, float)
        if s.shape != (n,) or not np.all(s > 0):
            raise ValueError("se: must be positive, one per point")
        w = 1.0 / s**2
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    beta = cov @ (design.T @ (w * y))
    chi2_dof = float(np.sum(w * (y - design @ beta) ** 2)) / (n - k)
    cov = cov * (chi2_dof if se is None else max(1.0, chi2_dof))
    return beta, np.sqrt(np.diag(cov)), chi2_dof


def linear_fit(x: Sequence[float], y: Sequence[float],
               se: Sequence[float] | None = None) -> LinearFit:
    """Least-squares line y = a + b x through (x, y) (:func:`weighted_lstsq`, X = [1, x]).

    Raises
    ------
    ValueError
        With fewer than three points (no standard error), or non-positive ``se``.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise ValueError(f"x, y: need two 1-D arrays of equal length >= 3, got {x.shape} and "
                         f"{y.shape}")
    beta, err, chi2_dof = weighted_lstsq(np.column_stack([np.ones_like(x), x]), y, se)
    return LinearFit(float(beta[0]), float(beta[1]), float(err[0]), float(err[1]), chi2_dof)


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient with its confidence interval (:func:`correlation`)."""

    method: str
    r: float
    low: float
    high: float
    n: int
    p_value: float
    level: float

    def __str__(self) -> str:
        return (f"{self.method} r = {self.r:+.3f}, {100 * self.level:.0f}% CI "
                f"[{self.low:+.3f}, {self.high:+.3f}], n = {self.n}, p = {self.p_value:.2g}")


def correlation(x: Sequence[float], y: Sequence[float], *, method: str = "pearson",
                level: float = 0.95) -> Correlation:
    """Pearson or Spearman correlation of (x, y) with a Fisher-z confidence interval.

    CI = tanh(atanh(r) +- z_{(1+level)/2} s), s = 1/sqrt(n-3) for Pearson and
    sqrt(1.06/(n-3)) for Spearman (Fieller, Hartley & Pearson 1957). Non-finite pairs are
    refused (the caller reports what it excluded).

    Raises
    ------
    ValueError
        For an unknown ``method``, fewer than 4 pairs, or non-finite values.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method: must be 'pearson' or 'spearman', got {method!r}")
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 4:
        raise ValueError(f"x, y: need two 1-D arrays of equal length >= 4, got {x.shape} and "
                         f"{y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x, y: must be finite (exclude and report failed runs first)")
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    res = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
    r, p = float(res[0]), float(res[1])
    n = x.size
    s = (1.0 if method == "pearson" else math.sqrt(1.06)) / math.sqrt(n - 3)
    zq = float(stats.norm.ppf(0.5 + level / 2))
    zr = math.atanh(max(-1 + 1e-15, min(1 - 1e-15, r)))
    return Correlation(method, r, math.tanh(zr - zq * s), math.tanh(zr + zq * s), n, p, level)


def empirical_cdf(sample: np.ndarray, x: np.ndarray) -> np.ndarray:
    """F_n(x) = #{sample <= x} / n."""
    s = np.sort(np.asarray(sample, float))
    return np.searchsorted(s, np.asarray(x, float), side="right") / s.size


def sup_cdf_distance(f: np.ndarray, g: np.ndarray) -> float:
    """Kolmogorov distance sup |F - G| of two cdfs tabulated on the same grid."""
    return float(np.max(np.abs(np.asarray(f, float) - np.asarray(g, float))))


def check_config_keys(cfg: Mapping[str, Any], allowed: Iterable[str], where: str = "") -> None:
    """Refuse keys outside ``allowed`` (Hydra accepts ``+misspelled=...`` silently).

    Raises
    ------
    ValueError
        Naming the first unknown key and the allowed ones.
    """
    allowed = tuple(allowed)
    for key in cfg:
        if key not in allowed and key != "hydra":
            raise ValueError(f"{where}{key}: unknown config key; allowed: {', '.join(allowed)}")


def output_dir(root: str | Path, figure: str, run: str) -> Path:
    """``root/figure/run``, created."""
    path = Path(root) / figure / run
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_figure(fig: Any, path: Path | str, *, dpi: int = 110) -> Path:
    """Lay out, write atomically as PNG and close a matplotlib figure; returns the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    fig.tight_layout()
    fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_csv(df: pd.DataFrame, path: Path | str) -> Path:
    """Write a table as CSV atomically; returns the path."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def write_metadata(out_dir: Path, config: Mapping[str, Any], **extra: Any) -> Path:
    """``metadata.json``: the resolved config, git commit and dirty flag, package versions."""
    path = Path(out_dir) / "metadata.json"
    write_json(path, {"config": dict(config), "git": git_state(),
                      "versions": package_versions(), **extra})
    return path


def write_summary(out_dir: Path, title: str, checks: Sequence[Check],
                  notes: Sequence[str] = ()) -> Path:
    """Write ``summary.md`` (title, one PASS/FAIL line per check, notes) and print it."""
    lines = [f"# {title}", "", *(f"- {c.line()}" for c in checks)]
    if notes:
        lines += ["", *notes]
    verdict = "ALL CHECKS PASS" if all(c.passed for c in checks) else "SOME CHECKS FAIL"
    lines += ["", f"**{verdict}** ({sum(c.passed for c in checks)}/{len(checks)})", ""]
    text = "\n".join(lines)
    path = Path(out_dir) / "summary.md"
    _atomic_text(path, text)
    print(text)
    return path


def critical_point(activation: str, q_star: float) -> tuple[float, float, float]:
    """(sigma_w, sigma_b, q0) of a network at the edge of chaos with every layer at q*.

    chi = sigma_w^2 mu_1(q*) = 1 gives sigma_w^2 = 1 / mu_1(q*); the fixed-point equation
    q* = sigma_w^2 qhat(q*) + sigma_b^2 gives sigma_b^2 = q* - qhat(q*) / mu_1(q*)
    (Pennington, Schoenholz, Ganguli 2017). The input must have q0 = ||x^0||^2 / N_0 =
    qhat(q*) (a post-activation moment) so that q^1 = sigma_w^2 q0 + sigma_b^2 = q*.

    Raises
    ------
    ValueError
        When sigma_b^2 would be negative (no critical network has this q*).
    """
    mu1 = float(meanfield.d2_moments(activation, q_star, 1)[0])
    qhat = meanfield.post_activation_moment(activation, q_star)
    sb2 = q_star - qhat / mu1
    if sb2 < -1e-12 * q_star:
        raise ValueError(f"q_star: {activation} has no critical point with q* = {q_star:g} "
                         f"(sigma_b^2 = {sb2:.3g} < 0)")
    return 1.0 / math.sqrt(mu1), math.sqrt(max(sb2, 0.0)), qhat


def run_seeds(seed: int, n: int) -> list[np.random.SeedSequence]:
    """``SeedSequence(seed).spawn(n)``: one child per (cell, trial); store ``spawn_key``."""
    return np.random.SeedSequence(seed).spawn(n)


#: top-level keys of every figure config (experiments/fig*/config.yaml)
CONFIG_KEYS = ("figure", "title", "size", "seed", "results_root", "run", "sizes")


def run_figure(cfg: Mapping[str, Any],
               compute: Callable[[Mapping[str, Any], int, Path],
                                 tuple[list[Check], list[str]]]) -> int:
    """Validate a figure config, run ``compute(params, seed, out_dir)``, write the summary.

    ``params`` is ``cfg["sizes"][cfg["size"]]``; ``out_dir`` is
    ``results_root/figure/run``. Writes ``metadata.json`` before the work and ``summary.md``
    after it. Returns the exit status: 0 when every check passes, 1 otherwise.

    Raises
    ------
    ValueError
        For an unknown top-level key or an unknown ``size``.
    """
    check_config_keys(cfg, CONFIG_KEYS)
    sizes = cfg["sizes"]
    if cfg["size"] not in sizes:
        raise ValueError(f"size: must be one of {', '.join(sizes)}, got {cfg['size']!r}")
    out = output_dir(cfg["results_root"], cfg["figure"], str(cfg["run"]))
    write_metadata(out, cfg)
    checks, notes = compute(sizes[cfg["size"]], int(cfg["seed"]), out)
    write_summary(out, f"{cfg['title']} (size={cfg['size']})", checks, notes)
    return 0 if all(c.passed for c in checks) else 1


def figure_app(compute: Callable[[Mapping[str, Any], int, Path],
                                  tuple[list[Check], list[str]]],
               script: str | Path) -> Callable[[], None]:
    """The Hydra entry point of a figure script: ``config.yaml`` beside ``script``.

    ``main = figure_app(compute, __file__)`` then ``main()`` composes the config with the
    command-line overrides, runs :func:`run_figure` and exits with its status.
    """
    import hydra
    from omegaconf import DictConfig, OmegaConf

    @hydra.main(config_path=str(Path(script).resolve().parent), config_name="config",
                version_base="1.3")
    def main(cfg: DictConfig) -> None:
        status = run_figure(OmegaConf.to_container(cfg, resolve=True), compute)
        if status:
            raise SystemExit(status)

    return main


def spectrum_panel(ax: Any, eigs: np.ndarray, *, x: np.ndarray | None = None,
                   density: np.ndarray | None = None, atoms: np.ndarray | None = None,
                   window: tuple[float, float] | None = None, bins: int = 60,
                   title: str = "") -> None:
    """Histogram of pooled eigenvalues (normalized by the TOTAL count, so that it sits on the
    density of the continuous part) with the theory density and the atoms (vertical lines
    labelled with their mass)."""
    eigs = np.asarray(eigs, float)
    lo, hi = window if window is not None else (float(eigs.min()),
                                                float(np.quantile(eigs, 0.99)))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    counts, _ = np.histogram(eigs, bins=edges)
    heights = counts / (eigs.size * np.diff(edges))
    ax.stairs(heights, edges, fill=True, alpha=0.45, label="Monte Carlo")
    top = float(np.quantile(heights, 0.97)) if heights.size else 1.0
    if top <= 0 and heights.size:   # the sample sits in a few bins (e.g. an atom)
        top = float(heights.max())
    # a continuous part of negligible mass (the law is atoms) is not drawn
    if x is not None and density is not None and np.nanmax(density, initial=0.0) > 1e-8:
        ax.plot(x, density, color="C3", lw=1.3, label="theory")
        finite = density[np.isfinite(density)]
        top = max(top, float(np.quantile(finite, 0.97)) if finite.size else 0.0)
    for loc, mass in (atoms if atoms is not None else np.empty((0, 2))):
        if lo <= loc <= hi:
            ax.axvline(loc, color="k", ls=":", lw=1)
            ax.text(loc, 0.9 * top * 1.3, f" atom {mass:.2f}", fontsize=6)
    ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)
    ax.set_title(title, fontsize=7)
    ax.tick_params(labelsize=6)
