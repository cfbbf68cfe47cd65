"""The schema of a harness run: frozen dataclasses, one per config section.

:func:`freeness_lab.harness.config.validate_config` checks a composed Hydra config against
these classes, field by field, and returns a :class:`RunConfig`. This module is the bottom of
the harness's configuration: it imports only :mod:`freeness_lab.spec`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from freeness_lab.spec import NetworkSpec

#: the studies of a run by default (``experiment.studies``; every registered study is
#: allowed, :data:`freeness_lab.harness.studies.STUDIES`)
DEFAULT_STUDIES: tuple[str, ...] = ("spectrum", "freeness")
#: network fields that ``sweep.axes`` may vary inside one run (the width has ``sweep.widths``);
#: with ``network.q_star`` set, sigma_w, sigma_b and q0 are the critical point's and not swept
AXIS_FIELDS: tuple[str, ...] = ("activation", "weights", "depth", "sigma_w", "sigma_b", "q0",
                                "width_ratios")
#: deepest network a run accepts: the mean field, the series moments and the Newton solver are
#: linear in depth, and a trial keeps its L weight matrices (``harness.budget``)
MAX_DEPTH = 10_000
#: most spectral moments per matrix: m_k^(1/k) tends to the top of the support, so higher
#: moments measure a handful of top eigenvalues (an SE that no longer means anything) and
#: leave the float64 range within a few hundred orders
MAX_MOMENTS = 16
#: seeds are stored in the int64 ``seed`` column of every table
MAX_SEED = 2**63 - 1
#: every study needs a standard error, hence at least this many trials per cell
MIN_TRIALS = 2


@dataclass(frozen=True)
class Shape:
    """The layer widths of a rectangular network at one swept width M.

    A cell of a rectangular network carries its shape (:attr:`~freeness_lab.harness.cells.
    Cell.shape`); a square network has none.

    Attributes
    ----------
    width : int
        The swept width M (``sweep.widths``; the ``width`` column of the tables).
    ratios : tuple of float
        ``network.width_ratios`` r_0..r_L: N_l = max(1, round(r_l M)) (Python's ``round``,
        halves to even).
    """

    width: int
    ratios: tuple[float, ...]

    @property
    def widths(self) -> tuple[int, ...]:
        """N_0..N_L at this M."""
        return tuple(max(1, round(r * self.width)) for r in self.ratios)

    def spec(self, variant: NetworkSpec) -> NetworkSpec:
        """``variant`` (any width) with these layer widths."""
        return dataclasses.replace(variant, widths=self.widths)

    def label(self) -> dict[str, str]:
        """The shape's table columns: ``width_ratios`` ("1:2:1", the same at every M) and
        ``widths`` ("64-128-64")."""
        return {"width_ratios": ratios_label(self.ratios),
                "widths": "-".join(str(n) for n in self.widths)}


def ratios_label(ratios: tuple[float, ...]) -> str:
    """``width_ratios`` as a table value, e.g. ``"1:0.5:1"``."""
    return ":".join(f"{r:.12g}" for r in ratios)


@dataclass(frozen=True)
class NetworkConfig:
    """The base network of a run (a :class:`~freeness_lab.NetworkSpec` minus its width).

    Attributes
    ----------
    q_star : float or None
        When set, the network sits at the edge of chaos with every layer at this fixed point
        q*: validation replaces ``sigma_w``, ``sigma_b`` and ``q0`` by
        :func:`freeness_lab.theory.predictions.critical_point` (activation, q*).
    width_ratios : tuple of float or None
        ``None``: a square network (every N_l = M). Else r_0..r_L (depth + 1 finite numbers
        > 0): at each swept width M the layer widths are N_l = max(1, round(r_l M))
        (:class:`Shape`), and ``M`` stays the ``width`` of the tables.
    """

    activation: str = "relu"
    weights: str = "orthogonal"
    depth: int = 3
    sigma_w: float = math.sqrt(2.0)
    sigma_b: float = 0.0
    q0: float = 1.0
    q_star: float | None = None
    width_ratios: tuple[float, ...] | None = None

    def spec_fields(self) -> dict[str, Any]:
        """The fields of the :class:`~freeness_lab.NetworkSpec` (all but ``q_star`` and
        ``width_ratios``)."""
        fields = dataclasses.asdict(self)
        fields.pop("q_star")
        fields.pop("width_ratios")
        return fields


@dataclass(frozen=True)
class SweepConfig:
    """The cells of a run: the product of ``axes`` (network fields) and ``widths`` (M).

    Attributes
    ----------
    widths : tuple of int
        Widths M, one cell per width and network variant.
    trials : int
        Independent networks per cell.
    axes : dict of str to tuple
        Network fields varied inside the run, e.g. ``{"weights": ("orthogonal", "gaussian")}``;
        each value replaces the field of :class:`NetworkConfig`. In the YAML every field of
        :data:`AXIS_FIELDS` is listed, ``null`` meaning "not swept". ``width_ratios``
        sweeps network shapes, each a list of depth + 1 ratios (no null entry: a run's
        networks are all square or all rectangular).
    """

    widths: tuple[int, ...] = (64, 128, 256)
    trials: int = 8
    axes: dict[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentConfig:
    """What each cell computes and how the run is judged.

    Attributes
    ----------
    name : str
        Label of the experiment (names the results folder).
    studies : tuple of str
        Registered studies (:data:`freeness_lab.harness.studies.STUDIES`): ``spectrum``
        (moments and eigenvalues of J J^T and H_L vs the free-probability limit laws) and
        ``freeness`` (mixed-moment defects vs M).
    moments : int
        Number of spectral moments m_1..m_n recorded per matrix and trial.
    eigenvalues : bool
        Also store every eigenvalue (needed for the histograms).
    spectral_trials : int
        Spectrum study: the first ``spectral_trials`` trials of each cell (all of them when
        there are fewer; 0: none) also compare their whole spectrum with the limit law and
        with the free product of their own marginals (Kolmogorov and Wasserstein-1 distances
        vs M, the controls; :mod:`freeness_lab.harness.spectral_check`). Off in the
        library unless set; the app's default experiment sets 4
        (``conf/experiment/default.yaml``).
    fim_include_bias : bool
        Bias parameters in theta for H_L (an O(1/M) term the limit law does not have).
    words : tuple of str or None
        Words of the freeness study; ``None``: its default set.
    z_max : float
        A Monte Carlo mean agrees with theory when within ``z_max`` standard errors.
    fail_on_disagreement : bool
        Exit non-zero when a check disagrees (regression-suite mode).
    figure : dict or None
        Parameters of a paper-figure study (``conf/experiment/<paper>.yaml``): its cases,
        grids and claim thresholds; ``None``: the study's defaults. Its keys are the study's
        own and are checked by the study's ``validate`` (each error names
        ``experiment.figure.<key>``).
    spectral_grid : dict or None
        The cells of the ``spectral_check`` study (the spectral check on networks, widths and
        trials of its own: cases, weights, depth, widths, trials, and the name of its panel
        plot); ``None``: the study's defaults. Checked by the study's ``validate`` (each error
        names ``experiment.spectral_grid.<key>``).
    """

    name: str = "default"
    studies: tuple[str, ...] = DEFAULT_STUDIES
    moments: int = 4
    eigenvalues: bool = True
    spectral_trials: int = 0
    fim_include_bias: bool = False
    words: tuple[str, ...] | None = None
    z_max: float = 4.0
    fail_on_disagreement: bool = False
    figure: dict[str, Any] | None = None
    spectral_grid: dict[str, Any] | None = None


@dataclass(frozen=True)
class PathsConfig:
    """Where runs are written (runtime-only: no number depends on it).

    Attributes
    ----------
    results : str
        The results root: a run goes to ``<results>/<experiment.name>/<config hash>/``
        (``conf/config.yaml``; the library entry point takes its folder as an argument).
    """

    results: str = "results"


@dataclass(frozen=True)
class RunConfig:
    """A validated harness run.

    Attributes
    ----------
    seed : int
        Root entropy of the run's ``numpy.random.SeedSequence``.
    n_jobs : int
        joblib workers for the (cell, trial) tasks; -1 uses every core. Runtime-only: it does
        not change any number.
    progress : bool
        Show a progress bar (runtime-only).
    max_new_cells : int or None
        Stop after computing this many new cells (a budget for time-limited jobs; re-run to
        continue). Runtime-only.
    force : bool
        Run even when the estimated memory or time (:mod:`freeness_lab.harness.budget`)
        exceeds this machine's limits. Runtime-only.
    """

    network: NetworkConfig = field(default_factory=NetworkConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    n_jobs: int = -1
    progress: bool = True
    max_new_cells: int | None = None
    force: bool = False

    def shaped_variants(self) -> list[tuple[NetworkSpec, tuple[float, ...] | None]]:
        """The network variants of the sweep (product of ``sweep.axes``), width 1
        placeholder, each with its width ratios (``None``: square)."""
        base = {**self.network.spec_fields(), "width_ratios": self.network.width_ratios}
        names = list(self.sweep.axes)
        out = []
        for values in itertools.product(*(self.sweep.axes[n] for n in names)):
            fields = {**base, **dict(zip(names, values, strict=True))}
            ratios = fields.pop("width_ratios")
            out.append((NetworkSpec(**fields, width=1), ratios))
        return out

    def variants(self) -> list[NetworkSpec]:
        """The network variants of the sweep (product of ``sweep.axes``), width 1 placeholder
        (a variant per shape of ``sweep.axes.width_ratios``: :meth:`shaped_variants`)."""
        return [spec for spec, _ in self.shaped_variants()]

    def rectangular(self) -> str | None:
        """The config field that makes the run's networks rectangular, or ``None``."""
        if "width_ratios" in self.sweep.axes:
            return "sweep.axes.width_ratios"
        return None if self.network.width_ratios is None else "network.width_ratios"

    def identity(self) -> dict[str, Any]:
        """Everything that determines the run's numbers (not ``n_jobs``, ``progress``...)."""
        network = dataclasses.asdict(self.network)
        if self.network.q_star is None:  # not part of the identity unless used
            network.pop("q_star")
        if self.network.width_ratios is None:  # likewise: square runs keep their identity
            network.pop("width_ratios")
        experiment = dataclasses.asdict(self.experiment)
        if self.experiment.spectral_grid is None:  # likewise
            experiment.pop("spectral_grid")
        return {"network": network,
                "sweep": dataclasses.asdict(self.sweep),
                "experiment": experiment,
                "seed": self.seed}


#: fields that change how a run executes, never what it computes
RUNTIME_FIELDS: tuple[str, ...] = ("n_jobs", "progress", "max_new_cells", "force", "paths")
