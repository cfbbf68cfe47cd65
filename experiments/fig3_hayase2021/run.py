"""Hayase & Karakida (AISTATS 2021): spectrum of H_L, its atoms, its mean, and the
learning-rate threshold eta ~ 2 / lambda_max(H_L).

H_L = (1/M) G G^T, G = d h^L / d theta (``DESIGN.md`` section 2), the M x M dual of the
single-input Fisher information; theory: :func:`freeness_lab.theory.fim_dual_law`
(mu_{l+1} = qhat_l + nu_l boxtimes w boxtimes mu_l); Monte Carlo:
:meth:`SampledNetwork.fim_dual` (without the bias terms, whose 1/M contribution vanishes in
the limit).

Loss normalization behind the threshold: full-batch gradient descent on ONE input with
loss (1 / (2M)) ||h^L(x) - y||^2 moves the output by -eta (1/M) G G^T (h^L - y) = -eta H_L r
to first order, so r_t = (I - eta H_L)^t r_0: stable iff eta < 2 / lambda_max(H_L) (with
biases as parameters, H_L gains (1/M) I per layer, negligible). The paper's "2/L" is this
threshold with its normalization qhat ~ 1: at criticality the mean of H_L is
sum_l qhat_{l-1} ~ L qhat*, so 2 / lambda_max ~ 2 / (L qhat*) here.

Checks:

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
3. Training (orthogonal hard tanh at criticality, dynamical isometry): the measured boundary
   between stable and unstable runs (loss above ``unstable_factor`` x its initial value within
   ``steps`` steps) lies within a factor ``boundary_factor`` of 2 / lambda_max (theory) at
   every depth. lambda_max(theory) is extrapolated from the exact moments
   (m_{k+1}/m_k = a + b/k, k = 40..79). Runs that end non-finite or at 1e6 x the initial loss
   are "diverged"; unstable runs that come back are catapults (Lewkowycz et al. 2020).
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
from freeness_lab.simulate import sample_network  # noqa: E402
from freeness_lab.simulate.training import init_mlp, train  # noqa: E402
from freeness_lab.theory.limits import fim_dual_law  # noqa: E402

PARAMS = ("spectrum_depth", "cases", "width", "trials", "mean_depths", "train_case",
          "train_width", "train_depths", "eta_factors", "steps", "unstable_factor",
          "boundary_factor", "z_max")
#: the density of the limit law (Newton solver) must give the series moments to this precision
DENSITY_RTOL = 1e-3
#: the atom's eigenvalues are searched within this fraction of its location (and of the
#: distance to the nearest other atom): the location moves with ||x^l||^2 / M = qhat_l + O(M^-1/2)
ATOM_WINDOW = 0.5


def lambda_max_from_moments(law, n: int = 40) -> float:
    """Upper edge of the support from exact moments: m_{k+1}/m_k = a + b/k fitted for
    k = n/2..n-1, edge = a (the ratio tends to the edge from below; an atom at the edge makes
    it converge geometrically). The series moments lose accuracy beyond order ~50, hence
    n = 40; the result is never below the largest atom."""
    m = np.asarray(law.moments(n + 1), float)
    k = np.arange(n // 2, n)
    ratio = m[k] / m[k - 1]
    beta, _, _ = F.weighted_lstsq(np.column_stack([np.ones(k.size), 1.0 / k]), ratio)
    top_atom = float(law.atoms[:, 0].max()) if len(law.atoms) else 0.0
    return max(float(beta[0]), top_atom)


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
    def mean_se(v: np.ndarray) -> tuple[float, float]:
        return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))

    (mh, sh), (mf, sf) = mean_se(np.asarray(values_half)), mean_se(np.asarray(values_full))
    return 2 * mf - mh, max(math.sqrt(4 * sf**2 + sh**2), 1e-12)


def _spec(case: dict, depth: int, width: int) -> NetworkSpec:
    sw, sb, q0 = F.critical_point(case["activation"], case["q_star"])
    return NetworkSpec(case["activation"], "orthogonal", depth, width, sw, sb, q0)


def compute(p: dict, seed: int, out: Path) -> tuple[list[F.Check], list[str]]:
    """Spectra, atoms, mean vs depth, the training grid; checks and plots."""
    F.check_config_keys(p, PARAMS, "sizes.<size>.")
    ss_spec, ss_train = np.random.SeedSequence(seed).spawn(2)
    checks, spectra, mean_rows, atom_rows = [], {}, [], []
    widths = (p["width"] // 2, p["width"])
    seeds = ss_spec.spawn(len(p["cases"]) * len(widths) * p["trials"])
    depth = p["spectrum_depth"]
    max_depth = max(max(p["mean_depths"]), depth)
    for i, case in enumerate(p["cases"]):
        label = f"{case['activation']} q*={case['q_star']:g}"
        law = fim_dual_law(_spec(case, depth, p["width"]))
        eigs, means = {}, {}
        for j, width in enumerate(widths):
            eigs[width], means[width] = [], []
            for t in range(p["trials"]):
                child = seeds[(i * len(widths) + j) * p["trials"] + t]
                net = sample_network(_spec(case, max_depth, width), np.random.default_rng(child))
                eigs[width].append(net.truncated(depth).fim_dual_spectrum(include_bias=False))
                means[width].append([float(np.trace(net.truncated(l).fim_dual(
                    include_bias=False))) / width for l in p["mean_depths"]])
        spectra[label] = (law, eigs[p["width"]])
        m_th = law.moments(2)
        mc = {w: np.array([[e.mean(), np.mean(e**2)] for e in eigs[w]]) for w in widths}
        for k in range(2):
            est, se = extrapolate(mc[widths[0]][:, k], mc[widths[1]][:, k])
            checks.append(F.Check(f"H_{depth} moment m{k + 1}, {label}",
                                  abs(est - m_th[k]) < p["z_max"] * se,
                                  f"MC at M->inf {est:.5g} +- {se:.2g} (M={widths[1]}: "
                                  f"{mc[widths[1]][:, k].mean():.5g}) vs theory {m_th[k]:.5g}"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dm = np.asarray(law.density_moments(2), float)
        rel = float(np.max(np.abs(dm - m_th) / m_th)) if np.all(np.isfinite(dm)) else math.inf
        checks.append(F.Check(f"H_{depth} Newton density reproduces the exact moments, {label}",
                              rel < DENSITY_RTOL,
                              f"m1, m2 from density + atoms {np.round(dm, 5).tolist()} vs "
                              f"series {np.round(m_th, 5).tolist()} (max rel. diff {rel:.2g} "
                              f"< {DENSITY_RTOL:g})"))
        for loc, mass in law.atoms:
            fr = {w: np.array([atom_fraction(e, loc, law.atoms[:, 0]) for e in eigs[w]])
                  for w in widths}
            # the count of eigenvalues at an atom is unbiased (e.g. the zeros of D_l): no
            # extrapolation, which would only add the noise of the half-width trials
            v = fr[widths[1]]
            est, se = float(v.mean()), max(float(v.std(ddof=1)), 1e-12) / math.sqrt(v.size)
            atom_rows.append({"case": label, "location": loc, "mass": mass,
                              "mc_fraction": est, "mc_se": se, "width": widths[1],
                              "mc_fraction_half_width": fr[widths[0]].mean()})
            checks.append(F.Check(f"H_{depth} atom at {loc:.4g}, {label}",
                                  abs(est - mass) < p["z_max"] * se,
                                  f"mass {mass:.4f} vs MC fraction {est:.4f} +- {se:.2g} "
                                  f"(M={widths[1]}; M={widths[0]}: {fr[widths[0]].mean():.4f})"))
        arr = {w: np.array(means[w]) for w in widths}
        for j, l in enumerate(p["mean_depths"]):
            th = fim_dual_law(_spec(case, l, p["width"])).moments(1)[0]
            est, se = extrapolate(arr[widths[0]][:, j], arr[widths[1]][:, j])
            mean_rows.append({"case": label, "depth": l, "theory_m1": th,
                              "mc_m1": arr[widths[1]][:, j].mean(),
                              "mc_se": arr[widths[1]][:, j].std(ddof=1) / math.sqrt(p["trials"]),
                              "mc_m1_extrapolated": est, "mc_extrapolated_se": se})
    mean_df = pd.DataFrame(mean_rows)
    for label, g in mean_df.groupby("case", sort=False):
        z = np.abs(g["mc_m1_extrapolated"] - g["theory_m1"]) / g["mc_extrapolated_se"]
        checks.append(F.Check(
            f"mean of H_l grows with depth, {label}",
            bool(np.all(np.diff(g["theory_m1"]) > 0) and np.all(z < p["z_max"])),
            "m1 at M->inf: " + ", ".join(
                f"l={r.depth}: {r.mc_m1_extrapolated:.4g}+-{r.mc_extrapolated_se:.1g} "
                f"(th {r.theory_m1:.4g})" for r in g.itertuples())))
    F.write_csv(mean_df, out / "fig3_mean_vs_depth.csv")
    F.write_csv(pd.DataFrame(atom_rows), out / "fig3_atoms.csv")
    runs = _training(p, ss_train)
    F.write_csv(runs, out / "fig3_training.csv")
    bounds = _boundaries(runs)
    F.write_csv(bounds, out / "fig3_boundary.csv")
    f = p["boundary_factor"]
    ok = bool(np.all((bounds["boundary"] > 1 / f) & (bounds["boundary"] < f))
              and bounds["monotone"].all())
    checks.append(F.Check(
        "divergence boundary ~ 2/lambda_max(H_L)", ok,
        f"boundary in units of 2/lambda_max(theory) within [1/{f:g}, {f:g}]: " + ", ".join(
            f"L={r.depth}: {r.boundary:.3f} (2/lambda_max = {r.eta_theory:.3g})"
            for r in bounds.itertuples())))
    _plot(p, spectra, mean_df, runs, out / "fig3_hayase_karakida.png")
    n_cat = int((runs["unstable"] & ~runs["diverged"]).sum())
    notes = [f"Training: {len(runs)} runs, {int(runs['unstable'].sum())} unstable, "
             f"{int(runs['diverged'].sum())} diverged (non-finite or 1e6 x initial loss), "
             f"{n_cat} catapults (unstable, then recovered).",
             "Files: fig3_mean_vs_depth.csv, fig3_atoms.csv, fig3_training.csv, "
             "fig3_boundary.csv, fig3_hayase_karakida.png."]
    return checks, notes


def _training(p: dict, ss: np.random.SeedSequence) -> pd.DataFrame:
    case, rows = p["train_case"], []
    children = ss.spawn(len(p["train_depths"]))
    for depth, child in zip(p["train_depths"], children, strict=True):
        spec = _spec(case, depth, p["train_width"])
        gen = np.random.default_rng(child)
        x0 = gen.standard_normal(p["train_width"])
        x0 *= math.sqrt(spec.q0 * x0.size / float(x0 @ x0))
        net_seed = int(gen.integers(2**63))
        net = sample_network(spec, net_seed, x0=x0)
        lam_mc = float(net.fim_dual_spectrum(include_bias=True)[-1])
        lam_th = lambda_max_from_moments(fim_dual_law(spec))
        f0 = net.forward(x0)
        y = f0 + 0.1 * math.sqrt(case["q_star"]) * gen.standard_normal(f0.size)
        for factor in p["eta_factors"]:
            eta = factor * 2.0 / lam_th
            res = train(init_mlp(spec, net_seed), x0[None, :], y[None, :], loss="mse",
                        lr=eta, epochs=p["steps"], rng=0, explode_factor=1e6)
            peak = float(np.max(res.losses) / res.losses[0]) if not res.diverged else math.inf
            rows.append({"depth": depth, "eta": eta, "factor": factor, "lambda_max_theory":
                         lam_th, "lambda_max_mc": lam_mc, "width": p["train_width"],
                         "steps": p["steps"], "peak_loss_ratio": peak, "qhat_star": spec.q0,
                         "unstable": bool(res.diverged or peak > p["unstable_factor"]),
                         "diverged": res.diverged, "diverged_at": res.diverged_at,
                         "final_loss": res.final_loss})
    return pd.DataFrame(rows)


def _boundaries(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for depth, g in runs.groupby("depth"):
        g = g.sort_values("factor")
        unstable = g["unstable"].to_numpy()
        first = int(np.argmax(unstable)) if unstable.any() else len(g)
        lo = g["factor"].iloc[first - 1] if first > 0 else math.nan
        hi = g["factor"].iloc[first] if first < len(g) else math.nan
        rows.append({"depth": depth, "stable_below": lo, "unstable_from": hi,
                     "boundary": math.sqrt(lo * hi), "monotone": bool(unstable[first:].all()),
                     "eta_theory": 2.0 / g["lambda_max_theory"].iloc[0],
                     "eta_mc": 2.0 / g["lambda_max_mc"].iloc[0],
                     "eta_depth": 2.0 / (depth * g["qhat_star"].iloc[0])})
    return pd.DataFrame(rows)


def _plot(p: dict, spectra: dict, mean_df: pd.DataFrame, runs: pd.DataFrame,
          path: Path) -> None:
    n = len(spectra)
    fig, axes = plt.subplots(1, n + 2, figsize=(4.2 * (n + 2), 3.8))
    for ax, (label, (law, eigs)) in zip(axes, spectra.items(), strict=False):
        pooled = np.concatenate(eigs)
        lo, hi = float(pooled.min()), float(pooled.max())
        x = np.linspace(lo, hi, 250)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dens = law.density(x)
        F.spectrum_panel(ax, pooled, x=x, density=dens, atoms=law.atoms,
                         window=(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo)),
                         title=f"H_{p['spectrum_depth']}: {label}, M={p['width']}")
        ax.legend(fontsize=6)
    ax = axes[n]
    for k, (label, g) in enumerate(mean_df.groupby("case", sort=False)):
        ax.errorbar(g["depth"], g["mc_m1"], yerr=g["mc_se"], fmt="o", color=f"C{k}",
                    label=f"{label} MC")
        ax.plot(g["depth"], g["theory_m1"], "-", color=f"C{k}", label=f"{label} theory")
    ax.set_xlabel("depth l")
    ax.set_ylabel("mean of H_l spectrum")
    ax.legend(fontsize=6)
    ax = axes[n + 1]
    style = {(False, False): ("o", "C2", "stable"), (True, False): ("^", "C1", "catapult"),
             (True, True): ("x", "C3", "diverged")}
    for (unst, div), (mk, col, lab) in style.items():
        sub = runs[(runs["unstable"] == unst) & (runs["diverged"] == div)]
        ax.scatter(sub["depth"], sub["eta"], marker=mk, color=col, label=lab)
    b = runs.groupby("depth").first().reset_index()
    ax.plot(b["depth"], 2 / b["lambda_max_theory"], "k-", label="2/lambda_max (theory)")
    ax.plot(b["depth"], 2 / b["lambda_max_mc"], "k:", label="2/lambda_max (MC)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("depth L")
    ax.set_ylabel("learning rate eta")
    ax.set_title(f"{p['train_case']['activation']} q*={p['train_case']['q_star']:g}, "
                 f"M={p['train_width']}, {p['steps']} GD steps", fontsize=8)
    ax.legend(fontsize=6)
    F.save_figure(fig, path)


#: Hydra entry point: ``python experiments/fig3_hayase2021/run.py [size=small]``
main = F.figure_app(compute, __file__)


if __name__ == "__main__":
    main()
