"""Run a validated experiment into an output directory: cells, tables, plots, summary.

This is the library entry point behind the Hydra app; it takes the output directory as an
argument (Hydra's runtime config is unset under the compose API, ``DESIGN.md`` section 5)::

    >>> from freeness_lab.harness import run_experiment, validate_config
    >>> run = validate_config({"sweep": {"widths": [32, 64], "trials": 2}})
    >>> result = run_experiment(run, "results/scratch")        # doctest: +SKIP

Outputs in ``out_dir`` (tables are tidy parquet, provenance in the schema metadata):

==========================  ==============================================================
``spectrum.parquet``        one row per cell x trial x matrix x quantity (m_k, variance)
``eigenvalues.parquet``     one row per cell x trial x matrix x eigenvalue
``theory.parquet``          one row per variant x matrix x quantity (limit-law prediction)
``spectrum_check.parquet``  per variant x width x matrix x quantity: mean, SE, theory, z
``freeness.parquet``        one row per cell x trial x word: trace and paired free prediction
``freeness_check.parquet``  per variant x word x ensemble x M: defect, SE, z (freeness module)
``freeness_fits.parquet``   per variant x word x ensemble: decay slope in M and verdict
``plots/*.png``             histograms over densities; freeness defects vs M
``summary.md``              verdict of each check
``metadata.json``           resolved config, seeds, versions, git state, cell counts
==========================  ==============================================================
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from freeness_lab.harness import storage
from freeness_lab.harness.cells import CELL_FORMAT, Cell, plan_cells
from freeness_lab.harness.compare import VARIANT_COLUMNS, compare, verdicts
from freeness_lab.harness.config import RunConfig
from freeness_lab.harness.deadline import TimeLimitExceeded, time_limit
from freeness_lab.harness.freeness_study import freeness_report
from freeness_lab.harness.locking import run_folder_lock
from freeness_lab.harness.plots import spectrum_histogram
from freeness_lab.harness.provenance import git_state, package_versions
from freeness_lab.harness.runner import RunStats, run_cells
from freeness_lab.harness.spectrum import MATRICES
from freeness_lab.harness.summary import write_summary
from freeness_lab.harness.theory_side import stage, theory_density, theory_table
from freeness_lab.harness.workers import sigterm_as_interrupt

#: points of the theory density drawn under each histogram
DENSITY_POINTS = 400
#: each density drawn under a histogram may take the cells' computing time divided by the
#: number of plots, and at least this long (then the plot says it was cut short)
MIN_DENSITY_SECONDS = 15.0


@dataclass
class RunResult:
    """What :func:`run_experiment` produced.

    Attributes
    ----------
    out_dir : Path
        The run folder.
    stats : RunStats
        Cells in the plan, computed now, reused.
    tables : dict of str to Path
        Written tables by name (empty while the run is incomplete).
    plots : list of Path
    summary : Path or None
    failed_checks : int
        Checks whose verdict is ``disagrees`` / ``not free`` where ``free`` was expected.
    """

    out_dir: Path
    stats: RunStats
    tables: dict[str, Path] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    summary: Path | None = None
    failed_checks: int = 0


def provenance(run: RunConfig) -> dict[str, Any]:
    """What every table carries: config identity, seed entropy, git state, versions.

    Runtime-only settings (n_jobs, progress) are left out so that tables are byte-for-byte
    the same whatever they were.
    """
    return {"config": run.identity(), "seed_entropy": run.seed, "git": git_state(),
            "versions": package_versions(), "cell_format": CELL_FORMAT,
            "spawn_key": "SeedSequence(seed_entropy, spawn_key=row.spawn_key)"}


def _assemble(out_dir: Path, cells: list[Cell]) -> dict[str, pd.DataFrame]:
    parts: dict[str, list[pd.DataFrame]] = {}
    for cell in cells:
        for name, df in storage.read_cell(out_dir, cell.key).items():
            parts.setdefault(name, []).append(df)
    return {name: pd.concat(dfs, ignore_index=True) for name, dfs in parts.items()}


def _slug(spec: Any) -> str:
    return (f"{spec.activation}-{spec.weights}-L{spec.depth}-sw{spec.sigma_w:.4g}"
            f"-sb{spec.sigma_b:g}-q{spec.q0:g}").replace("(", "").replace(")", "")


def _spectrum_plots(run: RunConfig, eigs: pd.DataFrame, raw: dict, plot_dir: Path,
                    cells_seconds: float) -> tuple[list[Path], list[str]]:
    """Histograms over the theory densities; returns the plots and the theory errors.

    Each density gets ``max(MIN_DENSITY_SECONDS, cells_seconds / number of plots)`` of wall
    time (:func:`~freeness_lab.harness.deadline.time_limit`): past it the plot is drawn
    without the curve and says so, so that drawing stays proportionate to computing.
    """
    width = max(run.sweep.widths)
    jobs = [(i, spec, matrix) for i, spec in enumerate(run.variants()) for matrix in MATRICES]
    seconds = max(MIN_DENSITY_SECONDS, cells_seconds / max(1, len(jobs)))
    paths, errors = [], []
    for i, spec, matrix in stage(jobs, "plots", run.progress):
        label = {c: getattr(spec, c) for c in VARIANT_COLUMNS}
        sel = eigs[(eigs["width"] == width)
                   & np.logical_and.reduce([eigs[c] == v for c, v in label.items()])]
        values = sel.loc[sel["matrix"] == matrix, "value"].to_numpy()
        if values.size == 0:
            continue
        lo, hi = float(values.min()), float(np.quantile(values, 0.995))
        x = np.linspace(lo, hi, DENSITY_POINTS)
        title = (f"{matrix}: {spec.activation}, {spec.weights}, L={spec.depth}, "
                 f"sigma_w={spec.sigma_w:.4g}, sigma_b={spec.sigma_b:g}, M={width}")
        try:
            with time_limit(seconds):
                f, note, status = theory_density(spec.with_width(width), matrix, x)
        except TimeLimitExceeded:
            f, note, status = None, f"density not drawn: it took over {seconds:.3g} s", "ok"
        if status == "error":
            errors.append(f"{title}: {note}")
        theory = raw[(i, matrix)]
        path = plot_dir / f"spectrum_{matrix}_{_slug(spec)}.png"
        paths.append(spectrum_histogram(values, path, title=title,
                                        density=None if f is None else (x, f),
                                        atoms=theory.atoms, note=note or theory.note))
    return paths, errors


def run_experiment(run: RunConfig, out_dir: Path | str, *,
                   resolved_config: dict[str, Any] | None = None) -> RunResult:
    """Compute (or resume) every cell of ``run`` in ``out_dir``, then write tables and reports.

    Parameters
    ----------
    run : RunConfig
        A validated config (:func:`~freeness_lab.harness.config.validate_config`).
    out_dir : path
        The run folder (created if needed). Finished cells already there are reused.
    resolved_config : dict, optional
        The full resolved config (e.g. with Hydra's overrides), kept in ``metadata.json``.

    Returns
    -------
    RunResult
        With ``stats.complete`` False when ``run.max_new_cells`` stopped the run early (then
        no table is written yet).

    Raises
    ------
    RunFolderBusy
        At once, when another run holds ``out_dir``
        (:func:`~freeness_lab.harness.locking.run_folder_lock`, held for the whole run).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the lock is held for the whole run (a second run: RunFolderBusy); SIGTERM stops the
    # table and plot stages as it stops the cells, like Ctrl-C
    with run_folder_lock(out_dir), sigterm_as_interrupt():
        started = dt.datetime.now(dt.UTC).isoformat()
        cells = plan_cells(run)
        clock = time.perf_counter()
        stats = run_cells(cells, out_dir, n_jobs=run.n_jobs, progress=run.progress,
                          max_new_cells=run.max_new_cells)
        cells_seconds = time.perf_counter() - clock
        result = RunResult(out_dir=out_dir, stats=stats)
        meta = {"provenance": provenance(run), "resolved_config": resolved_config,
                "runtime": {"n_jobs": run.n_jobs, "progress": run.progress,
                            "max_new_cells": run.max_new_cells},
                "started": started, "cells": dataclasses.asdict(stats),
                "cell_keys": [c.key for c in cells], "complete": stats.complete}
        if not stats.complete:
            storage.write_json(out_dir / "metadata.json", meta)
            return result
        prov = provenance(run)
        tables = _assemble(out_dir, cells)
        plot_dir = out_dir / "plots"
        plot_dir.mkdir(exist_ok=True)
        spectrum_verdicts = freeness_verdicts = None
        theory_errors: list[str] = []
        freeness_errors: list[str] = []
        if "spectrum" in tables:
            theory, raw = theory_table(run.variants(), MATRICES, run.experiment.moments,
                                       progress=run.progress)
            check = compare(tables["spectrum"], theory)
            tables["theory"], tables["spectrum_check"] = theory, check
            spectrum_verdicts = verdicts(check, run.experiment.z_max)
            spectrum_verdicts.attrs["notes"] = sorted({r.note for r in raw.values() if r.note})
            if "eigenvalues" in tables:
                plots, theory_errors = _spectrum_plots(run, tables["eigenvalues"], raw, plot_dir,
                                                       cells_seconds)
                result.plots += plots
        if "freeness" in tables:
            extra, freeness_verdicts, paths, freeness_errors = freeness_report(
                tables["freeness"], plot_dir)
            tables.update(extra)
            result.plots += paths
        for name, df in tables.items():
            path = out_dir / f"{name}.parquet"
            storage.write_table(path, df, prov)
            result.tables[name] = path
        result.summary, result.failed_checks = write_summary(
            out_dir / "summary.md", run=run, stats=stats, tables=result.tables, plots=result.plots,
            spectrum_verdicts=spectrum_verdicts, freeness_verdicts=freeness_verdicts,
            theory_errors=theory_errors, freeness_errors=freeness_errors)
        meta["finished"] = dt.datetime.now(dt.UTC).isoformat()
        meta["failed_checks"] = result.failed_checks
        storage.write_json(out_dir / "metadata.json", meta)
        return result

