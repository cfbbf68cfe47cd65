"""Run a validated experiment into an output directory: cells, tables, plots, summary.

This is the library entry point behind the Hydra app; it takes the output directory as an
argument (Hydra's runtime config is unset under the compose API, ``docs/conventions.md``
section 5)::

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
``plots/*.png``             histograms over densities; freeness defects vs M, all words
``summary.md``              each study's section: verdicts, PASS/FAIL claims
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

import pandas as pd

from freeness_lab.harness import storage
from freeness_lab.harness.cells import CELL_FORMAT, Cell, plan_cells
from freeness_lab.harness.locking import run_folder_lock
from freeness_lab.harness.provenance import git_state, package_versions
from freeness_lab.harness.runner import RunStats, run_cells
from freeness_lab.harness.schema import RunConfig
from freeness_lab.harness.studies import STUDIES, ReportInput
from freeness_lab.harness.summary import write_summary
from freeness_lab.harness.workers import sigterm_as_interrupt


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
        reports = []
        for name in run.experiment.studies:
            report = STUDIES[name].report(ReportInput(run=run, tables=dict(tables),
                                                      plot_dir=plot_dir,
                                                      cells_seconds=cells_seconds))
            tables.update(report.tables)
            result.plots += report.plots
            reports.append(report)
        for name, df in tables.items():
            path = out_dir / f"{name}.parquet"
            storage.write_table(path, df, prov)
            result.tables[name] = path
        result.summary, result.failed_checks = write_summary(
            out_dir / "summary.md", run=run, stats=stats, tables=result.tables, plots=result.plots,
            reports=reports)
        meta["finished"] = dt.datetime.now(dt.UTC).isoformat()
        meta["failed_checks"] = result.failed_checks
        storage.write_json(out_dir / "metadata.json", meta)
        return result

