"""What a study is: the :class:`Study` record every study module fills in and registers.

A study contributes, for the harness around it (:mod:`freeness_lab.harness.cells`, ``runner``,
``config``, ``budget``, ``experiment``, ``summary``):

- ``params``: the experiment fields its numbers depend on (they enter the cell key);
- ``grid``: its cells, (network at width M, trials) -- by default the run's sweep
  (``sweep.axes`` x ``sweep.widths``, ``sweep.trials`` each); a study with axes of its own
  (other activations at their own critical points, other widths) gives its own;
- ``trial``: the computation of one trial of a cell (one sampled network), as columns of the
  per-trial tables it names in ``tables``;
- ``validate``, ``rows_per_trial``, ``time_factor``, ``range_moments``: what the config checks
  and the cost estimate need to know of it;
- ``report``: its theory, checks, plots and section of ``summary.md``, from the run's
  assembled per-trial tables (:class:`ReportInput` -> :class:`StudyReport`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from freeness_lab.harness.schema import ExperimentConfig, RunConfig, Shape
from freeness_lab.spec import NetworkSpec

#: columns of one table, as produced by one trial (scalars are repeated to the length)
Columns = dict[str, Any]
#: study parameters entering a cell's key: (name, value) pairs
Params = tuple[tuple[str, Any], ...]
#: one cell of a study's grid: (network at its width, trials), or (network, trials, shape)
#: for a rectangular network of the sweep (:class:`~freeness_lab.harness.schema.Shape`)
GridEntry = tuple[NetworkSpec, int] | tuple[NetworkSpec, int, Shape | None]


@dataclass(frozen=True)
class ReportInput:
    """What a study's report works from.

    Attributes
    ----------
    run : RunConfig
    tables : dict of str to pandas.DataFrame
        The run's assembled per-trial tables (every study's), by name.
    plot_dir : Path
        Where its PNGs go.
    cells_seconds : float
        Wall time the cells took (plots get a time budget in proportion).
    """

    run: RunConfig
    tables: dict[str, pd.DataFrame]
    plot_dir: Path
    cells_seconds: float


@dataclass
class StudyReport:
    """What a study's report produced.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        Tables written beside the per-trial ones (theory, checks, fits...).
    plots : list of Path
    section : list of str
        Its markdown section of ``summary.md``.
    failed : int
        Failing checks of the section.
    errors : list of str
        Theory failures outside the section's checks (one failing check each, listed under
        "Theory errors").
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    section: list[str] = field(default_factory=list)
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def no_check(run: RunConfig) -> None:
    """A study without config rules of its own."""


def one_moment(experiment: ExperimentConfig) -> int:
    """A study that records no spectral moment beyond the mean."""
    return 1


def no_limit_laws(spec: NetworkSpec, params: dict[str, Any], trials: tuple[int, ...]
                  ) -> tuple[str, ...]:
    """A study whose trials compare with no limit law."""
    return ()


def sweep_grid(run: RunConfig) -> list[GridEntry]:
    """The run's own cells: every variant of ``sweep.axes`` at every width of
    ``sweep.widths`` (variants outer), ``sweep.trials`` trials each; a rectangular variant
    (width ratios) with its :class:`~freeness_lab.harness.schema.Shape` at each M."""
    out: list[GridEntry] = []
    for variant, ratios in run.shaped_variants():
        for width in run.sweep.widths:
            if ratios is None:
                out.append((variant.with_width(width), run.sweep.trials))
            else:
                shape = Shape(width, ratios)
                out.append((shape.spec(variant), run.sweep.trials, shape))
    return out


def grid_entries(study: Study, run: RunConfig
                 ) -> list[tuple[NetworkSpec, int, Shape | None]]:
    """``study.grid(run)`` with every entry as (spec, trials, shape or None)."""
    return [(entry[0], entry[1], entry[2] if len(entry) > 2 else None)
            for entry in study.grid(run)]


@dataclass(frozen=True)
class Study:
    """A registered study (:data:`freeness_lab.harness.studies.STUDIES`).

    Attributes
    ----------
    name : str
        Its name in ``experiment.studies`` and in cell keys.
    params : callable
        ``params(experiment) -> Params``: the fields its numbers depend on.
    trial : callable
        ``trial(spec, seed_sequence, params) -> {table: Columns}``: one trial of a cell (the
        runner adds the ``trial`` and ``spawn_key`` columns and the cell's label).
    tables : tuple of str
        Per-trial tables it produces.
    report_tables : tuple of str
        Tables its report adds (``StudyReport.tables``).
    report : callable
        ``report(ReportInput) -> StudyReport``.
    rows_per_trial : callable
        ``rows_per_trial(spec, experiment) -> int``: table rows of one trial (memory estimate).
    time_factor : float
        Cost of one trial relative to a spectrum trial (:mod:`freeness_lab.harness.budget`).
    validate : callable
        ``validate(run)``: its own config rules; raises ``SpecError`` naming the field.
    range_moments : callable
        ``range_moments(experiment) -> int``: the highest moment of J J^T / H_L it records
        (the float64 range check).
    grid : callable
        ``grid(run) -> [(spec, trials)]``: its cells, each network at its width M with its
        number of trials (:func:`sweep_grid`, the run's sweep, unless the study has axes of
        its own; called after ``validate``); an entry may carry a third element, the
        :class:`~freeness_lab.harness.schema.Shape` of a rectangular network
        (:func:`grid_entries`).
    rectangular : bool
        Whether it handles rectangular networks (``network.width_ratios``); a run with width
        ratios and a study without is refused by the config check.
    limit_laws : callable
        ``limit_laws(spec, params, trials) -> matrices``: the limit laws (``"JJT"``,
        ``"H_L"``) those trials of a cell compare with (the spectral check's); a parallel run
        certifies each once, in one of its workers before the trials, and sends them with
        the tasks (:func:`~freeness_lab.harness.runner.task_laws`).
    """

    name: str
    params: Callable[[ExperimentConfig], Params]
    trial: Callable[[NetworkSpec, np.random.SeedSequence, dict[str, Any]], dict[str, Columns]]
    tables: tuple[str, ...]
    report_tables: tuple[str, ...]
    report: Callable[[ReportInput], StudyReport]
    rows_per_trial: Callable[[NetworkSpec, ExperimentConfig], int]
    time_factor: float = 1.0
    validate: Callable[[RunConfig], None] = no_check
    range_moments: Callable[[ExperimentConfig], int] = one_moment
    grid: Callable[[RunConfig], list[GridEntry]] = sweep_grid
    rectangular: bool = False
    limit_laws: Callable[[NetworkSpec, dict[str, Any], tuple[int, ...]],
                         tuple[str, ...]] = no_limit_laws
