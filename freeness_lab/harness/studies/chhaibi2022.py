"""The ``chhaibi2022`` study: Chhaibi, Daouda & Kahn (NeurIPS 2022), J J^T across width-ratio
profiles -- Newton-solver densities under Monte Carlo histograms, and the spectral metrics
q_0.5, q_0.9 (:mod:`freeness_lab.harness.jacobian_metrics`) against the profile. The training
side of the figure (metrics at init vs performance) is
:mod:`freeness_lab.harness.studies.chhaibi2022_training`, which shares ``experiment.figure``.

Cells, of its own (``experiment.figure``): every profile of ``profiles`` (a name, the width
ratios r_0..r_L, a gain: ReLU, sigma_w = gain sqrt 2, sigma_b = 0, q0 = 1, and optionally its
``weights``) in each of its ensembles (default: ``weights``), at the widths
N_l = max(1, round(r_l M)) of M = ``width``
(:class:`~freeness_lab.harness.schema.Shape`), ``trials`` networks each. A trial samples one
network (the cell's content-keyed seed), keeps every eigenvalue of J J^T and its metrics.
The presets' profiles: a bottleneck, an expanding and a contracting network (ratios 1/4..4)
at depth 3 and gain 1, each with one narrowest layer (the module docstring of
``jacobian_metrics``: a tie biases the Monte Carlo quantiles), and figure 5's density panels
(the script's architectures, widths relative to 64).

Claim per cell: each Monte Carlo metric (q50, q90 of the nonzero part, m1; mean +- SE over
networks, :func:`~freeness_lab.harness.stats.mean_se`) lies within t SE of the limit law's
(:func:`~freeness_lab.harness.jacobian_metrics.theory_metrics`), t the Student-t quantile
with T - 1 degrees of freedom at the two-sided level of ``experiment.z_max`` normal SEs (the
SE of a mean of T values is itself estimated; figure 1's lesson, experiments/README.md).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from freeness_lab.harness.chhaibi_plots import plot_densities, plot_metrics
from freeness_lab.harness.figures import Check, check_ensembles, check_keys
from freeness_lab.harness.jacobian_metrics import (
    METRICS,
    QUANTILES,
    esd_metrics,
    quantile_name,
    theory_metrics,
)
from freeness_lab.harness.markdown import markdown_table
from freeness_lab.harness.schema import ExperimentConfig, RunConfig, Shape, ratios_label
from freeness_lab.harness.stats import mean_se
from freeness_lab.harness.studies.base import Columns, Params, ReportInput, Study, StudyReport
from freeness_lab.simulate import jacobian_spectrum
from freeness_lab.spec import NetworkSpec, SpecError

_FIELD = "experiment.figure"
#: the figure's parameters (``experiment.figure``, both studies) when the preset gives none
DEFAULTS: dict[str, Any] = {
    # the width-ratio profiles (this study)
    "width": 128,
    "trials": 12,
    "weights": ["gaussian", "orthogonal"],
    "profiles": [
        {"name": "bottleneck", "width_ratios": [1, 0.5, 0.25, 1], "gain": 1.0},
        {"name": "expanding", "width_ratios": [0.25, 1, 2, 4], "gain": 1.0},
        {"name": "contracting", "width_ratios": [4, 2, 1, 0.5], "gain": 1.0},
    ],
    # the training grid (studies.chhaibi2022_training)
    "n_architectures": 10,
    "repeats": 2,
    "hidden_layers": [2, 3],
    "ratios": [0.25, 0.5, 1.0, 2.0, 4.0],
    "gains": [0.25, 0.5, 1.0, 2.0, 4.0],
    "sigma_bs": [0.0, 0.1],
    "min_width": 8,
    "max_width": 64,
    "epochs": 4,
    "lr": 0.01,
    "batch_size": 64,
    "test_fraction": 0.25,
    # the correlation claims (False: reported, not checked; too few architectures)
    "check_correlations": False,
}
#: the keys of one profile (``weights`` optional)
PROFILE_KEYS = ("name", "width_ratios", "gain", "weights")
#: the per-trial tables
TRIALS, EIGENVALUES, TABLE = "chhaibi2022_spectra", "chhaibi2022_eigenvalues", "chhaibi2022_metrics"
#: the metrics claimed per cell (the zero mass and norm_m2 are reported)
CLAIMED = (*(quantile_name(p) for p in QUANTILES), "m1")


def figure_params(e: ExperimentConfig) -> dict[str, Any]:
    """``experiment.figure`` over :data:`DEFAULTS`."""
    return {**DEFAULTS, **(e.figure or {})}


def profile_spec(profile: dict[str, Any], weights: str, width: int) -> tuple[NetworkSpec, Shape]:
    """A profile's ReLU network (sigma_w = gain sqrt 2, sigma_b = 0, q0 = 1) at M = ``width``,
    with its shape."""
    ratios = tuple(float(r) for r in profile["width_ratios"])
    shape = Shape(int(width), ratios)
    spec = NetworkSpec("relu", weights, len(ratios) - 1, widths=shape.widths,
                       sigma_w=float(profile["gain"]) * math.sqrt(2.0), sigma_b=0.0, q0=1.0)
    return spec, shape


def cells(p: dict[str, Any]) -> list[tuple[dict[str, Any], str, NetworkSpec, Shape]]:
    """(profile, weights, spec, shape) of every cell, in order."""
    out = []
    for profile in p["profiles"]:
        for weights in profile.get("weights", p["weights"]):
            out.append((profile, weights, *profile_spec(profile, weights, p["width"])))
    return out


def grid(run: RunConfig) -> list[tuple[NetworkSpec, int, Shape]]:
    """The study's cells: profiles x their ensembles at M = ``width``, ``trials`` each."""
    p = figure_params(run.experiment)
    return [(spec, int(p["trials"]), shape) for _, _, spec, shape in cells(p)]


def params(e: ExperimentConfig) -> Params:
    """Nothing beyond the cell's spec and shape: the metrics' definitions are the code's."""
    return (("metrics", list(METRICS)),)


def trial(spec: NetworkSpec, seed: np.random.SeedSequence,
          cell_params: dict[str, Any]) -> dict[str, Columns]:
    """One network: its metrics and every eigenvalue of J J^T."""
    eigs = jacobian_spectrum(spec, np.random.default_rng(seed))
    return {TRIALS: {k: [v] for k, v in esd_metrics(eigs, spec).items()},
            EIGENVALUES: {"value": eigs}}


def rows_per_trial(spec: NetworkSpec, e: ExperimentConfig) -> int:
    """One metrics row and N_L eigenvalue rows."""
    return 1 + spec.layer_widths[-1]


def _positive(name: str, value: Any, integer: bool = False, low: float = 0.0) -> None:
    kind = int if integer else Real
    if isinstance(value, bool) or not isinstance(value, kind) or not low < value < math.inf:
        what = "an integer" if integer else "a finite number"
        raise SpecError(f"{_FIELD}.{name}", f"must be {what} > {low:g}, got {value!r}")


def validate_profiles(p: dict[str, Any]) -> None:
    """This study's keys: ``width``, ``trials``, ``weights``, ``profiles``.

    Raises
    ------
    SpecError
        Naming ``experiment.figure.<key>`` (a profile: ``profiles[i].<key>``).
    """
    _positive("width", p["width"], integer=True)
    _positive("trials", p["trials"], integer=True, low=2)
    check_ensembles(p["weights"], f"{_FIELD}.weights")
    profiles = p["profiles"]
    if not isinstance(profiles, list | tuple) or not profiles:
        raise SpecError(f"{_FIELD}.profiles", f"must be a non-empty list, got {profiles!r}")
    names = []
    for i, prof in enumerate(profiles):
        where = f"profiles[{i}]"
        if (not isinstance(prof, dict) or not {"name", "width_ratios", "gain"} <= set(prof)
                or not set(prof) <= set(PROFILE_KEYS)):
            raise SpecError(f"{_FIELD}.{where}", f"must be a mapping with keys name, "
                            f"width_ratios, gain (and optionally weights), got {prof!r}")
        names.append(prof["name"])
        ratios = prof["width_ratios"]
        if (not isinstance(ratios, list | tuple) or len(ratios) < 2
                or any(isinstance(r, bool) or not isinstance(r, Real) or not 0 < r < math.inf
                       for r in ratios)):
            raise SpecError(f"{_FIELD}.{where}.width_ratios", f"must be a list of >= 2 finite "
                            f"numbers > 0 (r_0..r_L), got {ratios!r}")
        _positive(f"{where}.gain", prof["gain"])
        if "weights" in prof:
            check_ensembles(prof["weights"], f"{_FIELD}.{where}.weights")
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise SpecError(f"{_FIELD}.profiles", f"names must be distinct non-empty strings, got "
                        f"{names!r}")


def validate(run: RunConfig) -> None:
    """The figure's keys (both studies') and the profiles (:func:`validate_profiles`); a
    :class:`SpecError` names ``experiment.figure.<key>``."""
    p = figure_params(run.experiment)
    check_keys(p, DEFAULTS, _FIELD)
    validate_profiles(p)


def cell_rows(table: pd.DataFrame, spec: NetworkSpec, shape: Shape) -> pd.DataFrame:
    """A cell's rows of a per-trial table (its ensemble, width ratios and sigma_w)."""
    return table[(table["weights"] == spec.weights)
                 & (table["width_ratios"] == ratios_label(shape.ratios))
                 & np.isclose(table["sigma_w"], spec.sigma_w, rtol=1e-12, atol=0)]


def check(trials: pd.DataFrame, p: dict[str, Any], z_max: float
          ) -> tuple[pd.DataFrame, list[Check], dict[tuple[str, str], dict[str, float]]]:
    """The metrics table (theory, MC mean and SE, z, tolerance per cell x metric), one claim
    per cell (module docstring), and the theory per (profile, weights)."""
    rows, claims, theory = [], [], {}
    level = float(stats.norm.cdf(z_max))
    for profile, weights, spec, shape in cells(p):
        sel = cell_rows(trials, spec, shape)
        n = len(sel)
        tol = float(stats.t.ppf(level, n - 1)) if n > 1 else math.inf
        name = f"J J^T metrics, {profile['name']} (N = {shape.label()['widths']}), {weights}"
        try:
            th = theory_metrics(spec)
        except (ArithmeticError, ValueError, RuntimeError) as err:
            claims.append(Check(name, False, f"theory error: {err}"))
            continue
        theory[(profile["name"], weights)] = th
        parts, ok = [], True
        for metric in METRICS:
            mean, se = (float(v) for v in mean_se(sel[metric].to_numpy()))
            z = (mean - th[metric]) / se if se > 0 else (0.0 if mean == th[metric] else math.inf)
            passed = bool(abs(z) < tol) if np.isfinite(z) else False
            rows.append({"profile": profile["name"], "weights": weights,
                         "width_ratios": ratios_label(shape.ratios),
                         "widths": shape.label()["widths"], "gain": float(profile["gain"]),
                         "metric": metric, "theory": th[metric], "mean": mean, "se": se,
                         "trials": n, "z": z, "tolerance": tol,
                         "claimed": metric in CLAIMED, "passed": passed})
            if metric in CLAIMED:
                ok &= passed
                parts.append(f"{metric} {mean:.4g} +- {se:.2g} vs {th[metric]:.4g} "
                             f"(z = {z:+.2f})")
        claims.append(Check(name, ok, "Monte Carlo vs limit law: " + "; ".join(parts)
                            + f"; |z| < t_{n - 1} = {tol:.2f} (the two-sided level of "
                            f"{z_max:g} sigma); zero mass {th['zero_mass']:.4g}"))
    return pd.DataFrame(rows), claims, theory


def report(inp: ReportInput) -> StudyReport:
    """The metrics table, the claims, the density and metrics plots, the section."""
    p = figure_params(inp.run.experiment)
    table, claims, theory = check(inp.tables[TRIALS], p, inp.run.experiment.z_max)
    eigs = inp.tables[EIGENVALUES]
    plots = [plot_densities([(prof["name"], w, spec, shape, cell_rows(eigs, spec, shape))
                             for prof, w, spec, shape in cells(p)
                             if (prof["name"], w) in theory],
                            inp.plot_dir / "chhaibi2022_densities.png"),
             plot_metrics(table, inp.plot_dir / "chhaibi2022_metrics.png")]
    shown = table[table["metric"].isin(CLAIMED)][
        ["profile", "weights", "widths", "metric", "theory", "mean", "se", "z"]]
    lines = ["## Figure 5: Chhaibi, Daouda, Kahn (NeurIPS 2022), J J^T across width-ratio "
             "profiles", "",
             f"ReLU at M = {p['width']} (N_l = round(r_l M)), {p['trials']} networks per "
             "(profile, ensemble); q_p: the p-quantile of the nonzero part of the spectrum "
             "(the law's atom at 0 removed), mean +- SE over networks against the limit law "
             "(Newton solver). Plots: `plots/chhaibi2022_densities.png`, "
             "`plots/chhaibi2022_metrics.png`.", "", *markdown_table(shown.round(5)), "",
             "Claims:", "", *(f"- {c.line()}" for c in claims), ""]
    return StudyReport(tables={TABLE: table}, plots=plots, section=lines,
                       failed=sum(not c.passed for c in claims))


STUDY = Study(name="chhaibi2022", params=params, trial=trial, tables=(TRIALS, EIGENVALUES),
              report_tables=(TABLE,), report=report, rows_per_trial=rows_per_trial,
              validate=validate, grid=grid)
