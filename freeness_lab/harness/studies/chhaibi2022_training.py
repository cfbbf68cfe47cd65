"""The ``chhaibi2022_training`` study: Chhaibi, Daouda & Kahn (NeurIPS 2022), spectral metrics of
J J^T at initialization against the performance of the trained network (the density side is
:mod:`freeness_lab.harness.studies.chhaibi2022`, whose ``experiment.figure`` it shares).

Cells, of its own: ``n_architectures`` distinct MLPs 64 -> h_1 .. h_k -> 10 (k in
``hidden_layers``; h_1 = 64 r_1, h_{i+1} = h_i r_{i+1}, r in ``ratios``, clipped to
[``min_width``, ``max_width``]) with a gain in ``gains`` (ReLU, Gaussian weights,
sigma_w = gain sqrt 2) and sigma_b in ``sigma_bs``, drawn from the run's seed by the
content-keyed scheme (:func:`architectures`); ``repeats`` trials each. A trial trains one
network (its initialization and its batch order from the trial's content-keyed seed) by SGD
with cross-entropy (:func:`freeness_lab.simulate.training.train`) on scikit-learn's digits
(1797 8x8 images, shipped with scikit-learn; features standardized with the training split's
statistics, so q0 ~ 1; the split drawn from the run's seed, the same for every cell).

Report: the metrics of each architecture's limit law of J J^T at initialization, by the same
code as the width profiles (:func:`~freeness_lab.harness.jacobian_metrics.theory_metrics`;
widths N_0..N_L, D^L included, although the trained network's readout is linear): log10 of
q_0.5 and q_0.9 of the nonzero part, of m_1 and of m_2 / m_1^2, and |log10 q_0.9| (distance
from isometry; added after seeing an inverted U of test accuracy against log10 q_0.9, so a
post-hoc metric, reported but not claimed). Each is correlated with the per-architecture mean
of log10(final training loss) and of the test accuracy (Pearson and Spearman, 95 % Fisher-z
intervals, :func:`~freeness_lab.harness.stats.correlation`). Diverged runs are kept in the
table, flagged, and left out of the means; architectures with no finished run are counted.

Claims (``check_correlations``; at the CI size they are reported, not checked: 10
architectures detect only |r| > 0.63): the Pearson correlation of log10 q_0.9 with
log10(final training loss) has a 95 % interval that excludes 0 (the paper's public code
reports -0.87 over 131 MNIST architectures), and so does its correlation with test accuracy.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd

from freeness_lab.harness.chhaibi_plots import plot_correlations
from freeness_lab.harness.figures import Check
from freeness_lab.harness.jacobian_metrics import log10_metrics, theory_metrics
from freeness_lab.harness.schema import ExperimentConfig, RunConfig, Shape
from freeness_lab.harness.stats import correlation
from freeness_lab.harness.studies.base import Columns, Params, ReportInput, Study, StudyReport
from freeness_lab.harness.studies.chhaibi2022 import cell_rows, figure_params, validate
from freeness_lab.rng import content_seed
from freeness_lab.simulate.training import accuracy, init_mlp, train
from freeness_lab.spec import NetworkSpec, SpecError

#: the figure's training keys (``experiment.figure``), entering every cell's key
KEYS = ("n_architectures", "hidden_layers", "ratios", "gains", "sigma_bs", "min_width",
        "max_width", "epochs", "lr", "batch_size", "test_fraction")
#: the correlated metrics (theory, at init) and targets (mean over an architecture's runs)
METRICS = ("log10_q90", "log10_q50", "abs_log10_q90", "log10_m1", "log10_norm_m2")
TARGETS = ("log10_final_loss", "test_accuracy")
RUNS, ARCHS, CORR = "chhaibi2022_runs", "chhaibi2022_architectures", "chhaibi2022_correlations"
#: the digits' input dimension and classes
INPUTS, CLASSES = 64, 10


@functools.lru_cache(maxsize=4)
def digits(entropy: int, test_fraction: float) -> tuple[np.ndarray, ...]:
    """The standardized digits split of a run: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    gen = np.random.default_rng(content_seed(entropy, {"data": "digits",
                                                      "test_fraction": test_fraction}, 0))
    order = gen.permutation(len(data.target))
    n_test = int(round(test_fraction * order.size))
    test, tr = order[:n_test], order[n_test:]
    x = data.data.astype(float)
    mean, sd = x[tr].mean(axis=0), x[tr].std(axis=0)
    sd[sd == 0] = 1.0
    x = (x - mean) / sd
    return x[tr], data.target[tr], x[test], data.target[test]


def arch_spec(widths: tuple[int, ...], gain: float, sigma_b: float) -> tuple[NetworkSpec, Shape]:
    """An architecture's network (ReLU, Gaussian, sigma_w = gain sqrt 2, q0 = 1) and its shape
    (M = 64, ratios N_l / 64: exact in binary)."""
    spec = NetworkSpec("relu", "gaussian", len(widths) - 1, widths=widths,
                       sigma_w=gain * math.sqrt(2.0), sigma_b=sigma_b, q0=1.0)
    return spec, Shape(INPUTS, tuple(w / INPUTS for w in widths))


def architectures(p: dict[str, Any], entropy: int) -> list[tuple[NetworkSpec, Shape]]:
    """``n_architectures`` distinct (widths, gain, sigma_b) of the grid, drawn from the
    run's entropy and the grid's content (module docstring).

    Raises
    ------
    SpecError
        When the grid has fewer distinct architectures than asked for.
    """
    grid = {k: p[k] for k in KEYS}
    gen = np.random.default_rng(content_seed(entropy, {"study": "chhaibi2022_training",
                                                      "grid": grid}, 0))
    seen: list[tuple[Any, ...]] = []
    for _ in range(1000 * int(p["n_architectures"])):
        widths, h = [INPUTS], float(INPUTS)
        for _ in range(int(gen.choice(p["hidden_layers"]))):
            h = float(np.clip(h * gen.choice(p["ratios"]), p["min_width"], p["max_width"]))
            widths.append(int(h))
        arch = ((*widths, CLASSES), float(gen.choice(p["gains"])),
                float(gen.choice(p["sigma_bs"])))
        if arch not in seen:
            seen.append(arch)
        if len(seen) == p["n_architectures"]:
            return [arch_spec(*a) for a in seen]
    raise SpecError("experiment.figure.n_architectures", f"the grid has only {len(seen)} "
                    f"distinct architectures, got {p['n_architectures']}")


def grid(run: RunConfig) -> list[tuple[NetworkSpec, int, Shape]]:
    """The study's cells: the architectures, ``repeats`` training runs each."""
    p = figure_params(run.experiment)
    return [(spec, int(p["repeats"]), shape) for spec, shape in architectures(p, run.seed)]


def params(e: ExperimentConfig) -> Params:
    """The training's parameters (the architecture is the cell's spec)."""
    p = figure_params(e)
    return tuple((k, p[k]) for k in ("epochs", "lr", "batch_size", "test_fraction"))


def trial(spec: NetworkSpec, seed: np.random.SeedSequence,
          cell_params: dict[str, Any]) -> dict[str, Columns]:
    """One training run: initialization and batch order from the trial's seed's children."""
    x_tr, y_tr, x_te, y_te = digits(int(seed.entropy), float(cell_params["test_fraction"]))
    init, order = (np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i))
                   for i in range(2))
    mlp = init_mlp(spec, np.random.default_rng(init))
    res = train(mlp, x_tr, y_tr, loss="cross_entropy", lr=cell_params["lr"],
                epochs=cell_params["epochs"], batch_size=cell_params["batch_size"],
                rng=np.random.default_rng(order))
    finite = math.isfinite(res.final_loss) and res.final_loss > 0
    return {RUNS: {"gain": [spec.sigma_w / math.sqrt(2.0)], "diverged": [bool(res.diverged)],
                   "diverged_at": [-1 if res.diverged_at is None else int(res.diverged_at)],
                   "reason": [res.reason or ""], "final_loss": [float(res.final_loss)],
                   "log10_final_loss": [math.log10(res.final_loss) if finite else math.nan],
                   "test_accuracy": [math.nan if res.diverged
                                     else accuracy(mlp, x_te, y_te)]}}


def rows_per_trial(spec: NetworkSpec, e: ExperimentConfig) -> int:
    """One row per training run."""
    return 1


def _check(name: str, ok: bool, allowed: str, value: Any) -> None:
    if not ok:
        raise SpecError(f"experiment.figure.{name}", f"must be {allowed}, got {value!r}")


def _numbers(p: dict[str, Any], name: str, low: float, integer: bool = False) -> None:
    v = p[name]
    kind = int if integer else (int, float)
    _check(name, isinstance(v, list | tuple) and bool(v) and all(
        not isinstance(x, bool) and isinstance(x, kind) and low <= x < math.inf for x in v),
        f"a non-empty list of {'integers' if integer else 'numbers'} >= {low:g}", v)


def validate_training(run: RunConfig) -> None:
    """The figure's keys (:func:`~.chhaibi2022.validate`) and the training grid's.

    Raises
    ------
    SpecError
        Naming ``experiment.figure.<key>``.
    """
    validate(run)
    p = figure_params(run.experiment)
    for name, low in (("n_architectures", 4), ("repeats", 2), ("min_width", 1),
                      ("max_width", 1), ("epochs", 1), ("batch_size", 1)):
        v = p[name]
        _check(name, not isinstance(v, bool) and isinstance(v, int) and v >= low,
               f"an integer >= {low}", v)
    _check("max_width", p["max_width"] >= p["min_width"], "at least min_width", p["max_width"])
    _numbers(p, "hidden_layers", 1, integer=True)
    for name in ("ratios", "gains"):
        _numbers(p, name, 1e-300)
    _numbers(p, "sigma_bs", 0.0)
    lr, frac = p["lr"], p["test_fraction"]
    _check("lr", not isinstance(lr, bool) and isinstance(lr, int | float)
           and 0 < lr < math.inf, "a finite number > 0", lr)
    _check("test_fraction", not isinstance(frac, bool) and isinstance(frac, int | float)
           and 0 < frac < 1, "a number in (0, 1)", frac)
    _check("check_correlations", isinstance(p["check_correlations"], bool), "true or false",
           p["check_correlations"])
    architectures(p, run.seed)


def per_architecture(run: RunConfig, runs: pd.DataFrame) -> pd.DataFrame:
    """Per architecture: its theory metrics at init, the means of the targets over its
    finished runs, and its counts of runs and diverged runs."""
    rows = []
    for spec, shape in architectures(figure_params(run.experiment), run.seed):
        sel = cell_rows(runs, spec, shape)
        sel = sel[np.isclose(sel["sigma_b"], spec.sigma_b, rtol=1e-12, atol=0)]
        done = sel[~sel["diverged"]]
        rows.append({"widths": shape.label()["widths"], "depth": spec.depth,
                     "gain": spec.sigma_w / math.sqrt(2.0), "sigma_w": spec.sigma_w,
                     "sigma_b": spec.sigma_b, **log10_metrics(theory_metrics(spec)),
                     "log10_final_loss": float(done["log10_final_loss"].mean()),
                     "test_accuracy": float(done["test_accuracy"].mean()),
                     "runs": len(done), "diverged": int(sel["diverged"].sum())})
    return pd.DataFrame(rows)


def correlations(per_arch: pd.DataFrame) -> pd.DataFrame:
    """Every metric x target x (Pearson, Spearman) over the architectures with a finished run."""
    done = per_arch[per_arch["runs"] > 0]
    rows = []
    for metric in METRICS:
        for target in TARGETS:
            for method in ("pearson", "spearman"):
                c = correlation(done[metric], done[target], method=method)
                rows.append({"metric": metric, "target": target, "method": method, "r": c.r,
                             "ci_low": c.low, "ci_high": c.high, "n": c.n,
                             "p_value": c.p_value})
    return pd.DataFrame(rows)


def report(inp: ReportInput) -> StudyReport:
    """Theory per architecture, the correlations, the claims (or their report), the plot."""
    p = figure_params(inp.run.experiment)
    runs = inp.tables[RUNS]
    per_arch = per_architecture(inp.run, runs)
    corr = correlations(per_arch)
    checked = bool(p["check_correlations"])
    claims, lines = [], []
    for target in TARGETS:
        r = corr[(corr["metric"] == "log10_q90") & (corr["target"] == target)
                 & (corr["method"] == "pearson")].iloc[0]
        c = Check(f"log10 q90 of J J^T at init correlates with {target}",
                  bool(r.ci_low > 0 or r.ci_high < 0),
                  f"Pearson r = {r.r:+.3f}, 95% CI [{r.ci_low:+.3f}, {r.ci_high:+.3f}], "
                  f"n = {r.n} architectures (paper, MNIST, final loss: -0.87 over 131)")
        claims.append(c)
        lines.append(f"- {c.line()}" if checked else
                     f"- not checked at this size: {c.name} -- {c.detail}")
    lost = int((per_arch["runs"] == 0).sum())
    section = [
        "## Figure 5: Chhaibi, Daouda, Kahn (NeurIPS 2022), metrics at init vs training", "",
        f"{len(per_arch)} architectures x {p['repeats']} runs (SGD lr {p['lr']}, batch "
        f"{p['batch_size']}, {p['epochs']} epochs, cross-entropy, scikit-learn digits, "
        f"{p['test_fraction']:g} held out); {int(runs['diverged'].sum())} runs diverged "
        f"(flagged in `{RUNS}.parquet`, left out of the means); {lost} architectures with no "
        f"finished run. Correlations with the per-architecture means (`{CORR}.parquet`):", "",
        *(f"- {r.metric} vs {r.target} ({r.method}): r = {r.r:+.3f} [{r.ci_low:+.3f}, "
          f"{r.ci_high:+.3f}]" for r in corr.itertuples()), "",
        "Claims:" if checked else f"Claims (not checked at this size: {len(per_arch)} "
        "architectures detect only a strong correlation; `check_correlations`):", "",
        *lines, ""]
    plot = plot_correlations(per_arch, corr, "log10_q90", TARGETS,
                             inp.plot_dir / "chhaibi2022_correlations.png")
    return StudyReport(tables={ARCHS: per_arch, CORR: corr}, plots=[plot], section=section,
                       failed=sum(not c.passed for c in claims) if checked else 0)


STUDY = Study(name="chhaibi2022_training", params=params, trial=trial, tables=(RUNS,),
              report_tables=(ARCHS, CORR), report=report, rows_per_trial=rows_per_trial,
              time_factor=300.0, validate=validate_training, grid=grid)
