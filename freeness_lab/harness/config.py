"""Structured configuration of a harness run, validated field by field before any work.

The Hydra config tree (``conf/`` at the repository top level) composes into a plain
``DictConfig``; :func:`validate_config` checks it against the dataclasses below and returns a
frozen :class:`RunConfig`. Every problem is reported as one :class:`~freeness_lab.SpecError`
naming the dotted field (``network.depth``, ``sweep.widths[1]``, ``experiment.studies``...) and
its allowed values. Network fields are checked by building :class:`~freeness_lab.NetworkSpec`
for every cell of the sweep, so the rules live in one place (``freeness_lab/spec.py``).

Hydra accepts ``+misspelled=1`` silently (``DESIGN.md`` section 5), so unknown keys are found
here by walking the resolved config against the dataclass schema.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

from omegaconf import DictConfig, OmegaConf

from freeness_lab.harness import budget
from freeness_lab.spec import NetworkSpec, SpecError

#: studies a run may contain (``experiment.studies``)
STUDIES: tuple[str, ...] = ("spectrum", "freeness")
#: network fields that ``sweep.axes`` may vary inside one run (the width has ``sweep.widths``)
AXIS_FIELDS: tuple[str, ...] = ("activation", "weights", "depth", "sigma_w", "sigma_b", "q0")
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
class NetworkConfig:
    """The base network of a run (a square :class:`~freeness_lab.NetworkSpec` minus its width)."""

    activation: str = "relu"
    weights: str = "orthogonal"
    depth: int = 3
    sigma_w: float = math.sqrt(2.0)
    sigma_b: float = 0.0
    q0: float = 1.0


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
        :data:`AXIS_FIELDS` is listed, ``null`` meaning "not swept".
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
        Subset of :data:`STUDIES`: ``spectrum`` (moments and eigenvalues of J J^T and H_L vs
        the free-probability limit laws) and ``freeness`` (mixed-moment defects vs M).
    moments : int
        Number of spectral moments m_1..m_n recorded per matrix and trial.
    eigenvalues : bool
        Also store every eigenvalue (needed for the histograms).
    fim_include_bias : bool
        Bias parameters in theta for H_L (an O(1/M) term the limit law does not have).
    words : tuple of str or None
        Words of the freeness study; ``None``: its default set.
    z_max : float
        A Monte Carlo mean agrees with theory when within ``z_max`` standard errors.
    fail_on_disagreement : bool
        Exit non-zero when a check disagrees (regression-suite mode).
    """

    name: str = "default"
    studies: tuple[str, ...] = STUDIES
    moments: int = 4
    eigenvalues: bool = True
    fim_include_bias: bool = False
    words: tuple[str, ...] | None = None
    z_max: float = 4.0
    fail_on_disagreement: bool = False


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
    seed: int = 0
    n_jobs: int = -1
    progress: bool = True
    max_new_cells: int | None = None
    force: bool = False

    def variants(self) -> list[NetworkSpec]:
        """The network variants of the sweep (product of ``sweep.axes``), width 1 placeholder."""
        base = dataclasses.asdict(self.network)
        names = list(self.sweep.axes)
        specs = []
        for values in itertools.product(*(self.sweep.axes[n] for n in names)):
            specs.append(NetworkSpec(**{**base, **dict(zip(names, values, strict=True))},
                                     width=1))
        return specs

    def identity(self) -> dict[str, Any]:
        """Everything that determines the run's numbers (not ``n_jobs``, ``progress``...)."""
        return {"network": dataclasses.asdict(self.network),
                "sweep": dataclasses.asdict(self.sweep),
                "experiment": dataclasses.asdict(self.experiment),
                "seed": self.seed}


#: fields that change how a run executes, never what it computes
RUNTIME_FIELDS: tuple[str, ...] = ("n_jobs", "progress", "max_new_cells", "force")

_SECTIONS: dict[str, type] = {"network": NetworkConfig, "sweep": SweepConfig,
                              "experiment": ExperimentConfig}


def _allowed(names: object) -> str:
    return ", ".join(str(n) for n in names)


def _check_keys(node: Mapping[str, Any], schema: type, prefix: str) -> None:
    names = [f.name for f in dataclasses.fields(schema)]
    for key in node:
        if key not in names:
            raise SpecError(f"{prefix}{key}", f"unknown key; allowed keys"
                            f"{' in ' + prefix.rstrip('.') if prefix else ''}: {_allowed(names)}")


def _int(name: str, value: object, low: int, high: int | None = None, why: str = "") -> int:
    """``value`` as an int in [low, high]; otherwise a SpecError naming ``name`` (and ``why``
    the upper bound exists)."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if (isinstance(value, bool) or not isinstance(value, Integral) or int(value) < low
            or (high is not None and int(value) > high)):
        raise SpecError(name, f"must be {allowed}{f' ({why})' if why else ''}, got {value!r}")
    return int(value)


_DEPTH_WHY = "the mean field, series moments and Newton solver are linear in depth"


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SpecError(name, f"must be true or false, got {value!r}")
    return value


def _seq(name: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise SpecError(name, f"must be a list, got {value!r}")
    if not value:
        raise SpecError(name, "must not be empty")
    return tuple(value)


def _network(node: Mapping[str, Any]) -> NetworkConfig:
    _check_keys(node, NetworkConfig, "network.")
    values = {**dataclasses.asdict(NetworkConfig()), **node}
    try:
        spec = NetworkSpec(**values, width=1)
    except SpecError as err:
        raise SpecError(f"network.{err.field}", str(err).split(": ", 1)[1]) from None
    _int("network.depth", spec.depth, 1, MAX_DEPTH, _DEPTH_WHY)
    return NetworkConfig(**{k: getattr(spec, k) for k in values})


def _sweep(node: Mapping[str, Any], network: NetworkConfig) -> SweepConfig:
    _check_keys(node, SweepConfig, "sweep.")
    widths = _seq("sweep.widths", node.get("widths", SweepConfig.widths))
    widths = tuple(_int(f"sweep.widths[{i}]", w, 1) for i, w in enumerate(widths))
    if len(set(widths)) != len(widths):
        raise SpecError("sweep.widths", f"must not repeat a width, got {list(widths)}")
    trials = node.get("trials", SweepConfig.trials)
    if isinstance(trials, Integral) and not isinstance(trials, bool) and 0 <= trials < MIN_TRIALS:
        raise SpecError("sweep.trials", f"must be >= {MIN_TRIALS}: every study needs a "
                        f"standard error over trials, got {trials!r}")
    trials = _int("sweep.trials", trials, MIN_TRIALS)
    raw_axes = node.get("axes") or {}
    if not isinstance(raw_axes, Mapping):
        raise SpecError("sweep.axes", f"must be a mapping of network field to a list of "
                        f"values, got {raw_axes!r}")
    axes: dict[str, tuple[Any, ...]] = {}
    base = dataclasses.asdict(network)
    for name, values in raw_axes.items():
        if values is None:  # a null axis is not swept
            continue
        if name not in AXIS_FIELDS:
            raise SpecError(f"sweep.axes.{name}", f"unknown axis; allowed: {_allowed(AXIS_FIELDS)}"
                            f" (widths go in sweep.widths)")
        checked = []
        for i, v in enumerate(_seq(f"sweep.axes.{name}", values)):
            try:
                spec = NetworkSpec(**{**base, name: v}, width=1)
            except SpecError as err:
                raise SpecError(f"sweep.axes.{name}[{i}]", str(err).split(": ", 1)[1]) from None
            if name == "depth":
                _int(f"sweep.axes.depth[{i}]", spec.depth, 1, MAX_DEPTH, _DEPTH_WHY)
            checked.append(getattr(spec, name))
        if len(set(checked)) != len(checked):
            raise SpecError(f"sweep.axes.{name}", f"must not repeat a value, got {checked}")
        axes[name] = tuple(checked)
    return SweepConfig(widths=widths, trials=trials, axes=axes)


def _experiment(node: Mapping[str, Any]) -> ExperimentConfig:
    _check_keys(node, ExperimentConfig, "experiment.")
    d = ExperimentConfig()
    name = node.get("name", d.name)
    if (not isinstance(name, str) or not name or name.startswith(".")
            or any(c in name for c in "/\\ ")):
        raise SpecError("experiment.name", f"must be a non-empty name without '/', '\\', "
                        f"spaces or a leading '.' (it names a folder under results/), got "
                        f"{name!r}")
    studies = _seq("experiment.studies", node.get("studies", d.studies))
    for s in studies:
        if s not in STUDIES:
            raise SpecError("experiment.studies", f"unknown study {s!r}; allowed: "
                            f"{_allowed(STUDIES)}")
    if len(set(studies)) != len(studies):
        raise SpecError("experiment.studies", f"must not repeat a study, got {list(studies)}")
    words = node.get("words", d.words)
    if words is not None:
        words = _seq("experiment.words", words)
        for i, w in enumerate(words):
            if not isinstance(w, str) or not w.strip():
                raise SpecError(f"experiment.words[{i}]", f"must be a non-empty word, got {w!r}")
    z_max = node.get("z_max", d.z_max)
    if isinstance(z_max, bool) or not isinstance(z_max, Real) or not 0 < z_max < math.inf:
        raise SpecError("experiment.z_max", f"must be a finite number > 0, got {z_max!r}")
    return ExperimentConfig(
        name=name, studies=studies,
        moments=_int("experiment.moments", node.get("moments", d.moments), 1, MAX_MOMENTS,
                     "higher moments only measure the top few eigenvalues, and overflow"),
        eigenvalues=_bool("experiment.eigenvalues", node.get("eigenvalues", d.eigenvalues)),
        fim_include_bias=_bool("experiment.fim_include_bias",
                               node.get("fim_include_bias", d.fim_include_bias)),
        words=words, z_max=float(z_max),
        fail_on_disagreement=_bool("experiment.fail_on_disagreement",
                                   node.get("fail_on_disagreement", d.fail_on_disagreement)))


def validate_config(cfg: DictConfig | Mapping[str, Any]) -> RunConfig:
    """Check a composed config against the schema and return the frozen :class:`RunConfig`.

    Parameters
    ----------
    cfg : DictConfig or mapping
        The composed config (a ``hydra`` node, if present, is ignored). Interpolations are
        resolved first.

    Returns
    -------
    RunConfig

    Raises
    ------
    SpecError
        (a ``ValueError``) for the first unknown key or invalid value, naming the dotted field
        and the allowed values; network fields through :class:`~freeness_lab.NetworkSpec`.
    """
    if isinstance(cfg, DictConfig):
        node = OmegaConf.to_container(cfg, resolve=True)
    else:
        node = dict(cfg)
    node.pop("hydra", None)
    _check_keys(node, RunConfig, "")
    for section in _SECTIONS:
        value = node.get(section, {})
        if not isinstance(value, Mapping):
            raise SpecError(section, f"must be a mapping with keys "
                            f"{_allowed(f.name for f in dataclasses.fields(_SECTIONS[section]))}")
    network = _network(node.get("network", {}))
    sweep = _sweep(node.get("sweep", {}), network)
    experiment = _experiment(node.get("experiment", {}))
    seed = _int("seed", node.get("seed", RunConfig.seed), 0, MAX_SEED,
                "the int64 seed column of every table")
    n_jobs = node.get("n_jobs", RunConfig.n_jobs)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0 or n_jobs < -1:
        raise SpecError("n_jobs", f"must be a positive integer or -1 (all cores), got {n_jobs!r}")
    max_new = node.get("max_new_cells", None)
    if max_new is not None:
        max_new = _int("max_new_cells", max_new, 1)
    run = RunConfig(network=network, sweep=sweep, experiment=experiment, seed=seed,
                    n_jobs=min(int(n_jobs), budget.available_cores()),
                    progress=_bool("progress", node.get("progress", True)),
                    max_new_cells=max_new, force=_bool("force", node.get("force", False)))
    if "freeness" in experiment.studies:
        _check_freeness(run)
    _check_numeric_range(run)
    if not run.force:
        _check_budget(run)
    return run


def workers(run: RunConfig) -> int:
    """Parallel workers of a run: ``n_jobs``, or every available core for -1."""
    return budget.available_cores() if run.n_jobs == -1 else run.n_jobs


def _check_numeric_range(run: RunConfig) -> None:
    """Every variant's mean-field variances and moments stay in float64 (``harness.budget``)."""
    n = run.experiment.moments if "spectrum" in run.experiment.studies else 1
    for spec in run.variants():
        swept = [f for f in ("sigma_w", "depth") if f in run.sweep.axes]
        field = f"sweep.axes.{swept[0]}" if swept else "network.sigma_w"
        budget.check_numeric_range(spec, 1, field)
        if n > 1:
            budget.check_numeric_range(spec, n, "experiment.moments")


def _check_budget(run: RunConfig) -> None:
    """Refuse a run whose estimated memory or time exceeds this machine's limits."""
    from freeness_lab.harness.freeness_study import study_words

    e = run.experiment
    n_words = max((len(study_words(s.depth, e.words)) for s in run.variants()), default=0) \
        if "freeness" in e.studies else 0
    cells = [(study, spec.with_width(m), run.sweep.trials) for study in e.studies
             for spec in run.variants() for m in run.sweep.widths]
    estimate = budget.estimate(cells, workers(run), eigenvalues=e.eigenvalues,
                               n_moments=e.moments, n_words=n_words)
    dominant = "network.depth" if max(s.depth for s in run.variants()) > max(
        run.sweep.widths) else "sweep.widths"
    budget.check_budget(estimate, dominant_field=dominant)


def _check_freeness(run: RunConfig) -> None:
    """The freeness study needs two widths, two trials and words valid at every depth."""
    from freeness_lab.harness.freeness_study import study_words

    if len(run.sweep.widths) < 2:
        raise SpecError("sweep.widths", "the freeness study fits a decay in M: give at least "
                        "2 widths")
    if run.sweep.trials < 2:
        raise SpecError("sweep.trials", "the freeness study needs >= 2 trials (standard errors)")
    for spec in run.variants():
        try:
            study_words(spec.depth, run.experiment.words)
        except ValueError as err:
            field = "experiment.words" if run.experiment.words else "network.depth"
            raise SpecError(field, f"{err} (depth {spec.depth})") from None
