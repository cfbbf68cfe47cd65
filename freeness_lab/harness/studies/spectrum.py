"""The ``spectrum`` study: Monte Carlo spectra of J J^T and H_L against their limit laws.

Per trial: :func:`freeness_lab.harness.spectrum.spectrum_trial` (moments, variance, scale-free
moments, the weight-sampler traces, optionally every eigenvalue). Report: the limit-law
moments (:func:`~freeness_lab.harness.theory_side.theory_table`), the Monte Carlo table joined
with them and the verdicts (:mod:`freeness_lab.harness.compare`), histograms over the theory
densities (each density under a time budget, :data:`MIN_DENSITY_SECONDS`), and its section of
``summary.md``.

Rectangular networks (``network.width_ratios``, ``sweep.axes.width_ratios``): the theory of
each cell's own layer widths (J J^T with its atom at 0 against the fraction of zero
eigenvalues; H_L by :func:`~freeness_lab.theory.fim_dual_law` with its changes of dimension),
the verdicts per shape; the spectral check (``experiment.spectral_trials``) compares each
trial with the limit and the paired law of its own widths, fitted per shape (its classical
and cyclic controls are square-only: ``unavailable``, not claimed;
:mod:`~freeness_lab.harness.spectral_references`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from freeness_lab.harness.compare import (
    SHAPE_COLUMN,
    VARIANT_COLUMNS,
    compare,
    failing,
    verdicts,
)
from freeness_lab.harness.deadline import TimeLimitExceeded, time_limit
from freeness_lab.harness.markdown import compact, counts, markdown_table
from freeness_lab.harness.plots import spectrum_histogram
from freeness_lab.harness.schema import ExperimentConfig, RunConfig, Shape
from freeness_lab.harness.spectral_check import curve_rows, trial_rows
from freeness_lab.harness.spectral_report import spectral_report
from freeness_lab.harness.spectrum import MATRICES, spectrum_trial
from freeness_lab.harness.studies.base import Params, ReportInput, Study, StudyReport
from freeness_lab.harness.theory_side import TheoryMoments, stage, theory_density, theory_table
from freeness_lab.spec import NetworkSpec

#: rows of the spectral_distance table per trial (6 comparisons x about 16 metrics)
SPECTRAL_ROWS = 100
#: points of the theory density drawn under each histogram
DENSITY_POINTS = 400
#: each density drawn under a histogram may take the cells' computing time divided by the
#: number of plots, and at least this long (then the plot says it was cut short)
MIN_DENSITY_SECONDS = 15.0


def params(e: ExperimentConfig) -> Params:
    """Moments, eigenvalues, the bias option of H_L and the spectral distances: what a
    spectrum cell depends on."""
    return (("moments", e.moments), ("eigenvalues", e.eigenvalues),
            ("fim_include_bias", e.fim_include_bias),
            ("spectral_trials", e.spectral_trials))


def rows_per_trial(spec: NetworkSpec, e: ExperimentConfig) -> int:
    """Moment rows of both matrices, 2 M eigenvalue rows when they are stored, and the
    spectral-distance rows (:data:`SPECTRAL_ROWS`, and trial 0's cdf rows spread over the
    spectral trials: :func:`~freeness_lab.harness.spectral_check.curve_rows`)."""
    spectral = (SPECTRAL_ROWS + curve_rows(max(spec.layer_widths), e.spectral_trials)
                if e.spectral_trials else 0)
    return 2 * (e.moments + 1) + (2 * spec.width if e.eigenvalues else 0) + spectral


def shaped_cells(run: RunConfig) -> tuple[list[NetworkSpec], list[Shape | None]]:
    """The variants the theory is computed for, with their shapes: the run's variants
    (square), or each rectangular variant at every M of the sweep (its own layer widths)."""
    if run.rectangular() is None:
        variants = run.variants()
        return variants, [None] * len(variants)
    pairs = [(spec, Shape(width, ratios)) for spec, ratios in run.shaped_variants()
             for width in run.sweep.widths]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def range_moments(e: ExperimentConfig) -> int:
    """The spectrum study records m_1..m_n of J J^T and H_L."""
    return e.moments


def _slug(spec: Any, shape: Shape | None = None) -> str:
    shaped = "" if shape is None else f"-r{shape.label()[SHAPE_COLUMN].replace(':', '_')}"
    return (f"{spec.activation}-{spec.weights}-L{spec.depth}-sw{spec.sigma_w:.4g}"
            f"-sb{spec.sigma_b:g}-q{spec.q0:g}{shaped}").replace("(", "").replace(")", "")


def spectrum_plots(run: RunConfig, eigs: pd.DataFrame, raw: dict[tuple[int, str], TheoryMoments],
                   plot_dir: Path, cells_seconds: float) -> tuple[list[Path], list[str]]:
    """Histograms over the theory densities; returns the plots and the theory errors.

    Each density gets ``max(MIN_DENSITY_SECONDS, cells_seconds / number of plots)`` of wall
    time (:func:`~freeness_lab.harness.deadline.time_limit`): past it the plot is drawn
    without the curve and says so, so that drawing stays proportionate to computing.
    """
    width = max(run.sweep.widths)
    variants, shapes = shaped_cells(run)
    jobs = [(i, spec, shape, matrix)
            for i, (spec, shape) in enumerate(zip(variants, shapes, strict=True))
            for matrix in MATRICES if shape is None or shape.width == width]
    seconds = max(MIN_DENSITY_SECONDS, cells_seconds / max(1, len(jobs)))
    paths, errors = [], []
    for i, spec, shape, matrix in stage(jobs, "plots", run.progress):
        label = {c: getattr(spec, c) for c in VARIANT_COLUMNS}
        if shape is not None:
            label[SHAPE_COLUMN] = shape.label()[SHAPE_COLUMN]
        sel = eigs[(eigs["width"] == width)
                   & np.logical_and.reduce([eigs[c] == v for c, v in label.items()])]
        values = sel.loc[sel["matrix"] == matrix, "value"].to_numpy()
        if values.size == 0:
            continue
        lo, hi = float(values.min()), float(np.quantile(values, 0.995))
        x = np.linspace(lo, hi, DENSITY_POINTS)
        title = (f"{matrix}: {spec.activation}, {spec.weights}, L={spec.depth}, "
                 f"sigma_w={spec.sigma_w:.4g}, sigma_b={spec.sigma_b:g}, M={width}"
                 + ("" if shape is None else f", N={shape.label()['widths']}"))
        try:
            with time_limit(seconds):
                f, note, status = theory_density(
                    spec.with_width(width) if shape is None else shape.spec(spec), matrix, x)
        except TimeLimitExceeded:
            f, note, status = None, f"density not drawn: it took over {seconds:.3g} s", "ok"
        if status == "error":
            errors.append(f"{title}: {note}")
        theory = raw[(i, matrix)]
        path = plot_dir / f"spectrum_{matrix}_{_slug(spec, shape)}.png"
        paths.append(spectrum_histogram(values, path, title=title,
                                        density=None if f is None else (x, f),
                                        atoms=theory.atoms, note=note or theory.note))
    return paths, errors


def section(run: RunConfig, spectrum_verdicts: pd.DataFrame, notes: list[str]
            ) -> tuple[list[str], int]:
    """The spectrum section of ``summary.md`` and its number of failing checks
    (:func:`~freeness_lab.harness.compare.failing`)."""
    e = run.experiment
    strict = e.fail_on_disagreement
    failed = int(failing(spectrum_verdicts["verdict"], strict).sum())
    lines = ["## Spectrum: Monte Carlo moments vs limit law (largest M)", "",
             f"Verdicts: {counts(spectrum_verdicts['verdict'])}. "
             f"`agrees`: |z| <= {e.z_max:g} at the largest M, or its Student-t p-value "
             f"times the number of checks (Bonferroni) above 2 Phi(-{e.z_max:g}); "
             "`converging`: the defect "
             "shrinks at every M with log-log slope <= -1/2 (finite-M bias); "
             "`disagrees`: neither; `no theory`: not covered by the theory side "
             f"({'failing' if strict else 'not failing'} in this run); "
             "`theory error`, `invalid`: the theory raised or gave non-finite moments, "
             "or the Monte Carlo values are not finite (failing).", ""]
    lines += markdown_table(compact(spectrum_verdicts, [SHAPE_COLUMN, "matrix", "quantity",
                                                        "width", "widths", "mean",
                                                        "se", "theory", "z", "p_familywise",
                                                        "slope", "verdict"]))
    for note in notes:
        lines.append(f"\nTheory note: {note}")
    lines.append("")
    return lines, failed


def report(inp: ReportInput) -> StudyReport:
    """Theory table, checks, verdicts, histograms and summary section of the study."""
    run = inp.run
    variants, shapes = shaped_cells(run)
    theory, raw = theory_table(variants, MATRICES, run.experiment.moments,
                               progress=run.progress, shapes=shapes)
    check = compare(inp.tables["spectrum"], theory)
    out = StudyReport(tables={"theory": theory, "spectrum_check": check})
    spectrum_verdicts = verdicts(check, run.experiment.z_max)
    if "eigenvalues" in inp.tables:
        out.plots, out.errors = spectrum_plots(run, inp.tables["eigenvalues"], raw,
                                               inp.plot_dir, inp.cells_seconds)
    notes = sorted({r.note for r in raw.values() if r.note})
    out.section, out.failed = section(run, spectrum_verdicts, notes)
    if "spectral_distance" in inp.tables:
        fits, plots, lines, failed = spectral_report(run, inp.tables["spectral_distance"],
                                                     inp.plot_dir)
        out.tables["spectral_fits"] = fits
        out.plots += plots
        out.section += lines
        out.failed += failed
    return out


def trial(spec: NetworkSpec, seed: np.random.SeedSequence, p: dict[str, Any]
          ) -> dict[str, dict[str, Any]]:
    """One spectrum trial (:func:`~freeness_lab.harness.spectrum.spectrum_trial`) with the
    spectral check's rows (:func:`~freeness_lab.harness.spectral_check.trial_rows`)."""
    return spectrum_trial(spec, seed, p, spectral_rows=trial_rows)


def limit_laws(spec: NetworkSpec, p: dict[str, Any], trials: tuple[int, ...]
               ) -> tuple[str, ...]:
    """The limit laws of the spectral check, for trials it runs on (the first
    ``spectral_trials``)."""
    return MATRICES if min(trials) < p.get("spectral_trials", 0) else ()


STUDY = Study(name="spectrum", params=params, trial=trial,
              tables=("spectrum", "eigenvalues", "spectral_distance"),
              report_tables=("theory", "spectrum_check", "spectral_fits"),
              report=report, rows_per_trial=rows_per_trial, range_moments=range_moments,
              rectangular=True, limit_laws=limit_laws)
