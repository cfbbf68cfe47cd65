"""Cells of a run, their content hashes and their random streams.

A *cell* is one study on one network spec at one width M (a rectangular network: layer
widths from ``network.width_ratios`` at M, :class:`~freeness_lab.harness.schema.Shape`), with
its trials. Its random numbers come from
``numpy.random.SeedSequence(entropy, spawn_key=cell_words + (trial,))``
(``docs/conventions.md`` section 4): ``cell_words`` are four 32-bit words of the SHA-256 of
the cell's identity (study + every field of the spec; a rectangular cell adds its shape),
never of its position in the sweep, so a trial draws the same numbers whatever the order of
the cells, the number of workers, or the other cells of the run. Each row of a table stores
its spawn key, and :func:`freeness_lab.rng.generator_for` regenerates any single trial.

A cell's *content hash* (:attr:`Cell.key`) also covers the root entropy, the number of trials
and the study parameters: it names the cell's file, so a re-run finds finished cells by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from freeness_lab.harness.schema import RunConfig, Shape
from freeness_lab.harness.studies import STUDIES
from freeness_lab.harness.studies.base import grid_entries
from freeness_lab.rng import content_digest, content_seed, content_words
from freeness_lab.spec import NetworkSpec

#: bump when the content of cell files changes meaning (invalidates finished cells)
CELL_FORMAT = 2


@dataclass(frozen=True)
class Cell:
    """One study at one network spec and width, with its trials.

    Made by :func:`plan_cells`; its content (module docstring) gives its random streams
    (:meth:`seed_sequence`) and the name of its file (:attr:`key`).

    Attributes
    ----------
    study : str
        A registered study (:data:`freeness_lab.harness.studies.STUDIES`).
    spec : NetworkSpec
        The network, width M included.
    trials : int
        Number of independent networks.
    params : tuple of (str, value)
        Study parameters that change the numbers (moments, words...).
    entropy : int
        Root entropy of the run.
    shape : Shape or None
        A rectangular network's swept width M and width ratios (the spec holds the layer
        widths N_l); ``None`` for a square network (M is ``spec.width``).
    """

    study: str
    spec: NetworkSpec
    trials: int
    params: tuple[tuple[str, Any], ...]
    entropy: int
    shape: Shape | None = None

    def identity(self) -> dict[str, Any]:
        """What the random streams derive from: the study and every field of the spec, and
        the shape (M and ratios) of a rectangular network -- only then, so that a square
        cell keeps its identity, hence its key and seeds."""
        out = {"study": self.study, "spec": dataclasses.asdict(self.spec)}
        if self.shape is not None:
            out["shape"] = {"width": self.shape.width, "width_ratios": list(self.shape.ratios)}
        return out

    @property
    def cell_words(self) -> tuple[int, ...]:
        """Four 32-bit words of SHA-256(identity): the cell's part of every spawn key."""
        return content_words(self.identity())

    def spawn_key(self, trial: int) -> tuple[int, ...]:
        """Spawn key of one trial: ``cell_words + (trial,)``."""
        return (*self.cell_words, trial)

    def seed_sequence(self, trial: int) -> np.random.SeedSequence:
        """The SeedSequence child of the root entropy for this (cell, trial)
        (:func:`freeness_lab.rng.content_seed`)."""
        return content_seed(self.entropy, self.identity(), trial)

    @property
    def key(self) -> str:
        """Content hash naming the cell's file (identity, entropy, trials, params, format)."""
        content = {**self.identity(), "entropy": self.entropy, "trials": self.trials,
                   "params": [list(p) for p in self.params], "format": CELL_FORMAT}
        return f"{self.study}-{content_digest(content).hex()[:20]}"

    def label(self) -> dict[str, Any]:
        """Columns identifying the cell in the tidy tables; ``width`` is M, and a rectangular
        cell adds ``width_ratios`` and ``widths`` (:meth:`Shape.label`)."""
        s = self.spec
        out = {"study": self.study, "activation": s.activation, "weights": s.weights,
               "depth": s.depth, "width": s.width, "sigma_w": s.sigma_w,
               "sigma_b": s.sigma_b, "q0": s.q0}
        if self.shape is not None:
            out.update(width=self.shape.width, **self.shape.label())
        return out


def plan_cells(run: RunConfig) -> list[Cell]:
    """Every cell of a run: per study, in config order, its grid (by default network
    variants x widths of the sweep; :attr:`~freeness_lab.harness.studies.Study.grid`).

    The order only sets the order of the tables' rows; the numbers never depend on it.
    """
    cells = []
    for study in run.experiment.studies:
        params = STUDIES[study].params(run.experiment)
        for spec, trials, shape in grid_entries(STUDIES[study], run):
            cells.append(Cell(study, spec, trials, params, run.seed, shape))
    return cells
