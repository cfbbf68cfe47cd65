"""The ``spectral_check`` study: the spectral check on cells of its own.

The check itself is :mod:`freeness_lab.harness.spectral_check`: each trial's ESD of J J^T and
H_L against the ``limit`` law and against the ``paired`` law -- the free product of that
trial's own D_l^2 laws (and shifts, for H_L) -- with the ``classical`` (commuting product)
and ``cyclic`` (W_l = sigma_w P) controls, and verdicts from the decay of the distances in M.
The spectrum study runs it on the first ``experiment.spectral_trials`` trials of the sweep's
cells; this study runs it on a grid of its own (``experiment.spectral_grid``, over
:data:`DEFAULTS`), so that a run can fit the decay over a wider range of M than its other
studies need, with networks those studies do not sweep (figure 4,
``conf/experiment/collins_hayase2023.yaml``; ``experiment=check``).

Cells (:func:`grid`): one per case (activation, q*) of ``cases`` -- the network at the edge
of chaos with every layer at q* (:func:`freeness_lab.theory.predictions.critical_point`; ReLU
at q* = 1 is sigma_w^2 = 2, sigma_b = 0) -- x ``weights`` x ``widths``, depth ``depth``,
``trials`` networks each, every one of them compared. Depth 2 is refused with orthogonal
weights: H_2 = qhat_1 I + q0 sigma_w^2 W_2 D_1^2 W_2^T then has exactly the spectrum of its
paired law (a shift of the D_1^2 law), which tests nothing.

Claims (:func:`~freeness_lab.harness.spectral_report.spectral_report`, Kolmogorov distance):
for every case and ensemble, J J^T and H_L are ``free`` against their paired law (the slope
of log RMS distance on log M below -1/2 by 3 SE, the distance extrapolated to M = infinity
within noise), and the classical and cyclic controls are ``not free``. Plots: the panel
``plots/<panel>.png`` (:func:`~freeness_lab.harness.spectral_report.panel_plot`: paired vs
limit distance against M, one panel per case and ensemble) and the spectral check's own
(every comparison's distances, the cdf of one trial at the largest M, per variant).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from freeness_lab.harness.figures import check_cases, check_ensembles, check_int_list, check_keys
from freeness_lab.harness.schema import ExperimentConfig, RunConfig
from freeness_lab.harness.spectral_check import curve_rows, trial_rows
from freeness_lab.harness.spectral_references import CLASSICAL_SAMPLE
from freeness_lab.harness.spectral_report import panel_plot, spectral_report
from freeness_lab.harness.spectrum import MATRICES
from freeness_lab.harness.studies.base import Columns, Params, ReportInput, Study, StudyReport
from freeness_lab.harness.studies.spectrum import SPECTRAL_ROWS
from freeness_lab.simulate import sample_network
from freeness_lab.spec import NetworkSpec, SpecError
from freeness_lab.theory.predictions import critical_point

#: the per-trial table and the fits of the report
TABLE, FITS = "spectral_check_distance", "spectral_check_fits"
#: the study's cells (``experiment.spectral_grid``) when the config gives none
DEFAULTS: dict[str, Any] = {
    "cases": [{"activation": "relu", "q_star": 1.0}],
    "weights": ["orthogonal", "gaussian"],
    "depth": 3,
    "widths": [16, 32, 64, 128, 256],
    "trials": 6,
    # the panel's file name, plots/<panel>.png
    "panel": "spectral_panel",
}
_FIELD = "experiment.spectral_grid"


def grid_params(e: ExperimentConfig) -> dict[str, Any]:
    """``experiment.spectral_grid`` over :data:`DEFAULTS`."""
    return {**DEFAULTS, **(e.spectral_grid or {})}


def case_spec(case: dict[str, Any], weights: str, depth: int, width: int) -> NetworkSpec:
    """The network of a case at the edge of chaos with every layer at its q*."""
    sw, sb, q0 = critical_point(case["activation"], float(case["q_star"]))
    return NetworkSpec(case["activation"], weights, depth, width, sw, sb, q0)


def grid(run: RunConfig) -> list[tuple[NetworkSpec, int]]:
    """The study's cells: cases x weights x widths (module docstring), ``trials`` each."""
    p = grid_params(run.experiment)
    return [(case_spec(case, weights, int(p["depth"]), int(width)), int(p["trials"]))
            for case in p["cases"] for weights in p["weights"] for width in p["widths"]]


def params(e: ExperimentConfig) -> Params:
    """The bias option of H_L (the grid's parameters are in each cell's spec and trials)."""
    return (("fim_include_bias", e.fim_include_bias),)


def trial(spec: NetworkSpec, seed: np.random.SeedSequence,
          cell_params: dict[str, Any]) -> dict[str, Columns]:
    """One trial: the spectral check's rows of one sampled network
    (:func:`~freeness_lab.harness.spectral_check.trial_rows`)."""
    bias = cell_params["fim_include_bias"]
    net = sample_network(spec, np.random.default_rng(seed))
    spectra = {"JJT": net.jacobian_spectrum(), "H_L": net.fim_dual_spectrum(include_bias=bias)}
    return {TABLE: trial_rows(net, spectra, seed, bias)}


def rows_per_trial(spec: NetworkSpec, e: ExperimentConfig) -> int:
    """The spectral check's rows of one trial: :data:`SPECTRAL_ROWS`, one ``atom`` row
    per atom of the classical control's law, up to one per draw (``CLASSICAL_SAMPLE`` x M,
    where phi' takes more than two values), and trial 0's cdf rows spread over the trials
    (:func:`~freeness_lab.harness.spectral_check.curve_rows`)."""
    return (SPECTRAL_ROWS + CLASSICAL_SAMPLE * spec.width
            + curve_rows(max(spec.layer_widths), int(grid_params(e)["trials"])))


def validate(run: RunConfig) -> None:
    """The grid's keys and values.

    Raises
    ------
    SpecError
        Naming ``experiment.spectral_grid.<key>``.
    """
    p = grid_params(run.experiment)
    check_keys(p, DEFAULTS, _FIELD)
    weights = p["weights"]
    check_ensembles(weights, f"{_FIELD}.weights")
    (depth,) = check_int_list([p["depth"]], f"{_FIELD}.depth", 2)
    if depth == 2 and "orthogonal" in weights:
        raise SpecError(f"{_FIELD}.depth", "must be >= 3 with orthogonal weights: at depth 2 "
                        "the spectrum of H_2 is its paired law exactly (a shift of the D_1^2 "
                        "law), which tests nothing")
    widths = check_int_list(p["widths"], f"{_FIELD}.widths", 2)
    if len(set(widths)) < 2 or len(set(widths)) != len(widths):
        raise SpecError(f"{_FIELD}.widths", f"must be >= 2 distinct widths (the fits in M), "
                        f"got {widths!r}")
    check_int_list([p["trials"]], f"{_FIELD}.trials", 2)
    panel = p["panel"]
    if not isinstance(panel, str) or not panel.isidentifier():
        raise SpecError(f"{_FIELD}.panel", f"must be a file name of letters, digits and '_', "
                        f"got {panel!r}")
    check_cases(p["cases"], f"{_FIELD}.cases")


def report(inp: ReportInput) -> StudyReport:
    """Fits and verdicts, the panel, the spectral check's plots and its section."""
    p = grid_params(inp.run.experiment)
    table = inp.tables[TABLE]
    fits, plots, lines, failed = spectral_report(inp.run, table, inp.plot_dir)
    panel = panel_plot(table, fits, inp.plot_dir / f"{p['panel']}.png")
    cases = ", ".join(f"{c['activation']} (q* = {c['q_star']:g})" for c in p["cases"])
    grid_line = (f"Study `spectral_check`, on cells of its own (panel `plots/{panel.name}`): "
                 f"{cases} at the edge of chaos x {', '.join(p['weights'])} weights, depth "
                 f"{p['depth']}, M = {list(p['widths'])}, {p['trials']} networks per cell, "
                 "each compared. The limit distance of H_L stays near the mass of its atoms "
                 "where the limit law has atoms (ReLU): their locations move with "
                 "||x^l||^2 / M = qhat_l + O(M^-1/2).")
    return StudyReport(tables={FITS: fits}, plots=[panel, *plots],
                       section=[*lines[:2], grid_line, "", *lines[2:]], failed=failed)


def limit_laws(spec: NetworkSpec, p: dict[str, Any], trials: tuple[int, ...]
               ) -> tuple[str, ...]:
    """Every trial compares with both limit laws."""
    return MATRICES


STUDY = Study(name="spectral_check", params=params, trial=trial, tables=(TABLE,),
              report_tables=(FITS,), report=report, rows_per_trial=rows_per_trial,
              validate=validate, grid=grid, limit_laws=limit_laws)
