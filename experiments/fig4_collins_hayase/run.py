"""Collins & Hayase (CMP 2023): freeness defects of layerwise Jacobians vs M.

A thin wrapper over the freeness study (:mod:`freeness_lab.harness.freeness`): for each word
in (W_l, W_l^T) and D_l (and H_l), the paired defect between the empirical trace and the free
prediction at the same sample's marginals, over a sweep of M, for Haar orthogonal and Gaussian
weights, with negative controls (D_1 and D_2 treated as free; a deterministic permutation as
if it were Haar; W_1 and W_1^T treated as free copies).

Check: every word's verdict (:func:`~freeness_lab.harness.freeness.fit_decay`) is the one
expected -- "free" (defect extrapolated to M = infinity within noise and RMS defect decaying
with a significantly negative log-log slope) for the words of the theorem, "not free"
(|z| >= 8 at every M) for every negative control -- in both ensembles.
The network sits at the edge of chaos with every layer at q* (``network.q_star``).
"""

from __future__ import annotations

from pathlib import Path

from freeness_lab import NetworkSpec
from freeness_lab.harness import figures as F
from freeness_lab.harness.freeness import fit_decay, run_freeness_study, write_freeness_outputs

PARAMS = ("network", "widths", "trials", "n_jobs")


def compute(p: dict, seed: int, out: Path) -> tuple[list[F.Check], list[str]]:
    """Run the freeness study, write its table, fits and plot, check the verdicts."""
    F.check_config_keys(p, PARAMS, "sizes.<size>.")
    net = p["network"]
    sw, sb, q0 = F.critical_point(net["activation"], net["q_star"])
    spec = NetworkSpec(net["activation"], "orthogonal", net["depth"], min(p["widths"]), sw, sb,
                       q0)
    table = run_freeness_study(spec, p["widths"], p["trials"], seed, n_jobs=p["n_jobs"])
    fits = fit_decay(table)
    paths = write_freeness_outputs(table, out, fits)
    paths["overlay"] = _overlay(table, fits, out / "fig4_defects_with_controls.png")
    checks = []
    for r in fits.itertuples():
        checks.append(F.Check(
            f"{r.word} [{r.ensemble}] is {r.expected}", r.verdict == r.expected,
            f"verdict {r.verdict}; slope {r.slope:.2f} +- {r.slope_se:.2f}, "
            f"z_inf {r.z_inf:.2f}, min |z| {r.min_abs_z:.1f}"))
    notes = [f"{net['activation']} depth {net['depth']} at q*={net['q_star']:g} "
             f"(sigma_w={sw:.4f}, sigma_b={sb:.4f}); M in {p['widths']}, {p['trials']} "
             f"networks per (ensemble, M).",
             "Files: " + ", ".join(path.name for path in paths.values()) + "."]
    return checks, notes


def _overlay(table, fits, path: Path) -> Path:
    """All words on one log-log axis: theorem words (blue, orthogonal solid / Gaussian
    dashed) and negative controls (red), with the median fitted slope of each kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    F.save_figure(fig, path)
    return path


#: Hydra entry point: ``python experiments/fig4_collins_hayase/run.py [size=small]``
main = F.figure_app(compute, __file__)


if __name__ == "__main__":
    main()
