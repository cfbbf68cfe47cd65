"""The ``hayase_karakida2021_training`` study: Hayase & Karakida (AISTATS 2021), the
learning-rate threshold eta ~ 2 / lambda_max(H_L) (the spectrum side is
:mod:`freeness_lab.harness.studies.hayase_karakida2021`, whose ``experiment.figure`` it shares).

Loss normalization behind the threshold: full-batch gradient descent on ONE input with
loss (1 / (2M)) ||h^L(x) - y||^2 moves the output by -eta (1/M) G G^T (h^L - y) = -eta H_L r
to first order, so r_t = (I - eta H_L)^t r_0: stable iff eta < 2 / lambda_max(H_L) (with
biases as parameters, H_L gains (1/M) I per layer, negligible). The paper's "2/L" is this
threshold with its normalization qhat ~ 1: at criticality the mean of H_L is
sum_l qhat_{l-1} ~ L qhat*, so 2 / lambda_max ~ 2 / (L qhat*) here.

Cells: the figure's (widths M/2 and M); a trial is one training network per depth of
``train_depths`` (orthogonal ``train_case`` at criticality, its input x^0 with
||x^0||^2 = qhat* M, a target y = f(x^0) + 0.1 sqrt(q*) xi), drawn from the trial's
content-keyed seed (spawn key extended by the depth's index), and trained by full-batch GD
(:func:`freeness_lab.simulate.training.train`) for ``steps`` steps at every
eta = factor x 2 / lambda_max(theory) of ``eta_factors``. lambda_max(theory) is extrapolated
from the exact moments of :func:`freeness_lab.theory.fim_dual_law`
(m_{k+1}/m_k = a + b/k, k = 20..39).

Check (3. of the figure): for every width, depth and training network, the measured boundary
between stable and unstable runs (loss above ``unstable_factor`` x its initial value within
``steps`` steps; geometric mean of the last stable and first unstable factor) lies within a
factor ``boundary_factor`` of 2 / lambda_max (theory), and every factor above it is unstable.
Runs that end non-finite or at 1e6 x the initial loss are "diverged"; unstable runs that come
back are catapults (Lewkowycz et al. 2020).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from freeness_lab.harness.figures import Check
from freeness_lab.harness.plots import save_figure
from freeness_lab.harness.schema import ExperimentConfig, RunConfig
from freeness_lab.harness.stats import weighted_lstsq
from freeness_lab.harness.studies.base import Columns, Params, ReportInput, Study, StudyReport
from freeness_lab.harness.studies.hayase_karakida2021 import (
    critical_spec,
    figure_params,
    validate_figure,
)
from freeness_lab.simulate import sample_network
from freeness_lab.simulate.training import init_mlp, train
from freeness_lab.spec import NetworkSpec, SpecError
from freeness_lab.theory.limits import fim_dual_law

#: a run whose loss reaches this multiple of its initial loss is stopped as diverged
EXPLODE_FACTOR = 1e6


def params(e: ExperimentConfig) -> Params:
    """The training grid: case, depths, learning-rate factors, steps, instability factor."""
    p = figure_params(e)
    return tuple((k, p[k]) for k in ("train_case", "train_depths", "eta_factors", "steps",
                                     "unstable_factor"))


def lambda_max_from_moments(law: Any, n: int = 40) -> float:
    """Upper edge of the support from exact moments: m_{k+1}/m_k = a + b/k fitted for
    k = n/2..n-1, edge = a (the ratio tends to the edge from below; an atom at the edge makes
    it converge geometrically). The series moments lose accuracy beyond order ~50, hence
    n = 40; the result is never below the largest atom."""
    m = np.asarray(law.moments(n + 1), float)
    k = np.arange(n // 2, n)
    ratio = m[k] / m[k - 1]
    beta, _, _ = weighted_lstsq(np.column_stack([np.ones(k.size), 1.0 / k]), ratio)
    top_atom = float(law.atoms[:, 0].max()) if len(law.atoms) else 0.0
    return max(float(beta[0]), top_atom)


def trial(spec: NetworkSpec, seed: np.random.SeedSequence,
          cell_params: dict[str, Any]) -> dict[str, Columns]:
    """One trial: one training network per depth, trained at every learning-rate factor."""
    case, width = cell_params["train_case"], spec.width
    rows: dict[str, list[Any]] = {k: [] for k in (
        "train_depth", "factor", "eta", "lambda_max_theory", "lambda_max_mc", "qhat_star",
        "peak_loss_ratio", "unstable", "diverged", "diverged_at", "final_loss")}
    for i, depth in enumerate(cell_params["train_depths"]):
        s = critical_spec(case, depth, width)
        gen = np.random.default_rng(np.random.SeedSequence(seed.entropy,
                                                           spawn_key=(*seed.spawn_key, i)))
        x0 = gen.standard_normal(width)
        x0 *= math.sqrt(s.q0 * x0.size / float(x0 @ x0))
        net_seed = int(gen.integers(2**63))
        net = sample_network(s, net_seed, x0=x0)
        lam_mc = float(net.fim_dual_spectrum(include_bias=True)[-1])
        lam_th = lambda_max_from_moments(fim_dual_law(s))
        f0 = net.forward(x0)
        y = f0 + 0.1 * math.sqrt(case["q_star"]) * gen.standard_normal(f0.size)
        for factor in cell_params["eta_factors"]:
            eta = factor * 2.0 / lam_th
            res = train(init_mlp(s, net_seed), x0[None, :], y[None, :], loss="mse", lr=eta,
                        epochs=cell_params["steps"], rng=0, explode_factor=EXPLODE_FACTOR)
            peak = float(np.max(res.losses) / res.losses[0]) if not res.diverged else math.inf
            for k, v in (("train_depth", depth), ("factor", float(factor)), ("eta", eta),
                         ("lambda_max_theory", lam_th), ("lambda_max_mc", lam_mc),
                         ("qhat_star", s.q0), ("peak_loss_ratio", peak),
                         ("unstable", bool(res.diverged
                                           or peak > cell_params["unstable_factor"])),
                         ("diverged", bool(res.diverged)),
                         ("diverged_at", -1 if res.diverged_at is None else res.diverged_at),
                         ("final_loss", float(res.final_loss))):
                rows[k].append(v)
    return {"fig3_training": rows}


def rows_per_trial(spec: NetworkSpec, e: ExperimentConfig) -> int:
    """One row per (depth, learning-rate factor)."""
    p = figure_params(e)
    return len(p["train_depths"]) * len(p["eta_factors"])


def validate(run: RunConfig) -> None:
    """The figure's parameters (:func:`~.hayase_karakida2021.validate_figure`) and orthogonal
    weights in every variant; a :class:`SpecError` names ``experiment.figure.<key>`` or
    ``network.weights``."""
    validate_figure(run)
    if {s.weights for s in run.variants()} != {"orthogonal"}:
        raise SpecError("network.weights", "figure 3 trains orthogonal networks: use "
                        "weights=orthogonal")


def boundaries(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (width, depth, network): the last stable and first unstable factor, their
    geometric mean (the boundary, in units of 2 / lambda_max(theory)), whether every factor
    above it is unstable, and the thresholds 2/lambda_max (theory, MC) and 2/(L qhat*)."""
    rows = []
    for (width, depth, t), g in runs.groupby(["width", "train_depth", "trial"]):
        g = g.sort_values("factor")
        unstable = g["unstable"].to_numpy()
        first = int(np.argmax(unstable)) if unstable.any() else len(g)
        lo = g["factor"].iloc[first - 1] if first > 0 else math.nan
        hi = g["factor"].iloc[first] if first < len(g) else math.nan
        rows.append({"width": int(width), "depth": int(depth), "trial": int(t),
                     "stable_below": lo, "unstable_from": hi, "boundary": math.sqrt(lo * hi),
                     "monotone": bool(unstable[first:].all()),
                     "eta_theory": 2.0 / g["lambda_max_theory"].iloc[0],
                     "eta_mc": 2.0 / g["lambda_max_mc"].iloc[0],
                     "eta_depth": 2.0 / (depth * g["qhat_star"].iloc[0])})
    return pd.DataFrame(rows)


def plot(p: dict[str, Any], runs: pd.DataFrame, path: Path) -> Path:
    """Stable, catapult and diverged runs in (L, eta), with 2/lambda_max (theory and MC)."""
    widths = sorted(int(w) for w in runs["width"].unique())
    fig, axes = plt.subplots(1, len(widths), figsize=(4.6 * len(widths), 3.8), squeeze=False)
    style = {(False, False): ("o", "C2", "stable"), (True, False): ("^", "C1", "catapult"),
             (True, True): ("x", "C3", "diverged")}
    for ax, width in zip(axes[0], widths, strict=True):
        w = runs[runs["width"] == width]
        for (unst, div), (mk, col, lab) in style.items():
            sub = w[(w["unstable"] == unst) & (w["diverged"] == div)]
            ax.scatter(sub["train_depth"], sub["eta"], marker=mk, color=col, label=lab)
        b = w.groupby("train_depth").agg(th=("lambda_max_theory", "first"),
                                         mc=("lambda_max_mc", "mean")).reset_index()
        ax.plot(b["train_depth"], 2 / b["th"], "k-", label="2/lambda_max (theory)")
        ax.plot(b["train_depth"], 2 / b["mc"], "k:", label="2/lambda_max (MC, mean)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("depth L")
        ax.set_ylabel("learning rate eta")
        ax.set_title(f"{p['train_case']['activation']} q*={p['train_case']['q_star']:g}, "
                     f"M={width}, {p['steps']} GD steps", fontsize=8)
        ax.legend(fontsize=6)
    return save_figure(fig, path)


def report(inp: ReportInput) -> StudyReport:
    """The threshold claim, the boundaries table, the plot and the section."""
    p = figure_params(inp.run.experiment)
    runs = inp.tables["fig3_training"]
    bounds = boundaries(runs)
    f = p["boundary_factor"]
    ok = bool(np.all((bounds["boundary"] > 1 / f) & (bounds["boundary"] < f))
              and bounds["monotone"].all())
    per = bounds.groupby(["width", "depth"]).agg(lo=("boundary", "min"), hi=("boundary", "max"),
                                                 eta=("eta_theory", "first")).reset_index()
    claim = Check(
        "divergence boundary ~ 2/lambda_max(H_L)", ok,
        f"boundary in units of 2/lambda_max(theory) within [1/{f:g}, {f:g}] for every one of "
        f"{len(bounds)} networks, every larger factor unstable: " + ", ".join(
            f"M={r.width} L={r.depth}: {r.lo:.3f}..{r.hi:.3f} (2/lambda_max = {r.eta:.3g})"
            for r in per.itertuples()))
    n_cat = int((runs["unstable"] & ~runs["diverged"]).sum())
    lines = ["## Figure 3: Hayase, Karakida (AISTATS 2021), the learning-rate threshold", "",
             f"Training: {len(runs)} runs, {int(runs['unstable'].sum())} unstable, "
             f"{int(runs['diverged'].sum())} diverged (non-finite or {EXPLODE_FACTOR:g} x "
             f"initial loss), {n_cat} catapults (unstable, then recovered).", "", "Claims:", "",
             f"- {claim.line()}", ""]
    return StudyReport(tables={"fig3_boundary": bounds},
                       plots=[plot(p, runs, inp.plot_dir / "fig3_training.png")],
                       section=lines, failed=int(not ok))


STUDY = Study(name="hayase_karakida2021_training", params=params, trial=trial,
              tables=("fig3_training",), report_tables=("fig3_boundary",), report=report,
              rows_per_trial=rows_per_trial, time_factor=20.0, validate=validate)
