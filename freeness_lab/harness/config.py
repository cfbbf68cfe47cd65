"""Structured configuration of a harness run, validated field by field before any work.

The Hydra config tree (``conf/`` at the repository top level) composes into a plain
``DictConfig``; :func:`validate_config` checks it against the schema's dataclasses and returns a
frozen :class:`RunConfig`. Every problem is reported as one :class:`~freeness_lab.SpecError`
naming the dotted field (``network.depth``, ``sweep.widths[1]``, ``experiment.studies``...) and
its allowed values. Network fields are checked by building :class:`~freeness_lab.NetworkSpec`
for every cell of the sweep, so the rules live in one place (``freeness_lab/spec.py``).

Hydra accepts ``+misspelled=1`` silently (``docs/conventions.md`` section 5), so unknown keys
are found here by walking the resolved config against the dataclass schema
(:mod:`freeness_lab.harness.schema`, re-exported here). Study-specific rules come from each
registered study (:data:`freeness_lab.harness.studies.STUDIES`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from omegaconf import DictConfig, OmegaConf

from freeness_lab.harness import budget
from freeness_lab.harness.schema import (
    AXIS_FIELDS,
    DEFAULT_STUDIES,
    MAX_DEPTH,
    MAX_MOMENTS,
    MAX_SEED,
    MIN_TRIALS,
    RUNTIME_FIELDS,
    ExperimentConfig,
    NetworkConfig,
    PathsConfig,
    RunConfig,
    SweepConfig,
)
from freeness_lab.harness.studies import STUDIES
from freeness_lab.harness.studies.base import grid_entries
from freeness_lab.spec import NetworkSpec, SpecError
from freeness_lab.theory.predictions import critical_point

#: network fields that ``network.q_star`` sets (the critical point) and sweeps may not vary;
#: the activation may be swept only without q_star, since its critical point differs
CRITICAL_FIELDS: tuple[str, ...] = ("activation", "sigma_w", "sigma_b", "q0")

__all__ = ["AXIS_FIELDS", "DEFAULT_STUDIES", "MAX_DEPTH", "MAX_MOMENTS", "MAX_SEED",
           "MIN_TRIALS", "RUNTIME_FIELDS", "ExperimentConfig", "NetworkConfig", "PathsConfig",
           "RunConfig", "SweepConfig", "validate_config", "workers"]

_SECTIONS: dict[str, type] = {"network": NetworkConfig, "sweep": SweepConfig,
                              "experiment": ExperimentConfig, "paths": PathsConfig}


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


def _q_star(values: dict[str, Any]) -> float | None:
    """``network.q_star``, checked; sets sigma_w, sigma_b, q0 of ``values`` to the critical
    point of the activation at q* (:func:`~freeness_lab.theory.predictions.critical_point`)."""
    q_star = values.pop("q_star")
    if q_star is None:
        return None
    if (isinstance(q_star, bool) or not isinstance(q_star, Real)
            or not 0 < q_star < math.inf):
        raise SpecError("network.q_star", f"must be null or a finite number > 0 (the fixed "
                        f"point q* of the critical network), got {q_star!r}")
    try:
        NetworkSpec(**values, width=1)  # the activation first: it names its own field
        sw, sb, q0 = critical_point(values["activation"], float(q_star))
    except SpecError as err:
        raise SpecError(f"network.{err.field}", str(err).split(": ", 1)[1]) from None
    except (ValueError, ArithmeticError) as err:
        raise SpecError("network.q_star", f"{str(err).split(': ', 1)[-1]}; allowed: null or "
                        f"a q* > 0 at which {values['activation']} has a critical point") from None
    values.update(sigma_w=sw, sigma_b=sb, q0=q0)
    return float(q_star)


def _ratios(name: str, value: object, depth: int) -> tuple[float, ...]:
    """Width ratios r_0..r_L: depth + 1 finite numbers > 0; otherwise a SpecError naming
    ``name`` (or its entry). ``network.width_ratios`` may also be null (checked by the
    caller); an entry of ``sweep.axes.width_ratios`` may not."""
    allowed = (f"a list of depth + 1 = {depth + 1} finite numbers > 0 (r_0..r_L: "
               f"N_l = max(1, round(r_l M)))")
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        null = "null (square) or " if name == "network.width_ratios" else ""
        raise SpecError(name, f"must be {null}{allowed}, got {value!r}")
    if len(value) != depth + 1:
        raise SpecError(name, f"must be {allowed}, got {len(value)} entries: {list(value)}")
    for i, r in enumerate(value):
        if isinstance(r, bool) or not isinstance(r, Real) or not 0 < float(r) < math.inf:
            raise SpecError(f"{name}[{i}]", f"must be a finite number > 0 (entries of "
                            f"{name}: {allowed}), got {r!r}")
    return tuple(float(r) for r in value)


def _network(node: Mapping[str, Any]) -> NetworkConfig:
    _check_keys(node, NetworkConfig, "network.")
    values = {**dataclasses.asdict(NetworkConfig()), **node}
    ratios = values.pop("width_ratios")
    q_star = _q_star(values)
    try:
        spec = NetworkSpec(**values, width=1)
    except SpecError as err:
        raise SpecError(f"network.{err.field}", str(err).split(": ", 1)[1]) from None
    _int("network.depth", spec.depth, 1, MAX_DEPTH, _DEPTH_WHY)
    if ratios is not None:
        ratios = _ratios("network.width_ratios", ratios, spec.depth)
    return NetworkConfig(**{k: getattr(spec, k) for k in values}, q_star=q_star,
                         width_ratios=ratios)


def _axis(name: str, values: object, base: dict[str, Any]) -> tuple[Any, ...]:
    """The checked values of ``sweep.axes.<name>`` (each as the field of a NetworkSpec, width
    ratios as :func:`_ratios`)."""
    checked = []
    for i, v in enumerate(_seq(f"sweep.axes.{name}", values)):
        if name == "width_ratios":
            checked.append(_ratios(f"sweep.axes.width_ratios[{i}]", v, base["depth"]))
            continue
        try:
            spec = NetworkSpec(**{**base, name: v}, width=1)
        except SpecError as err:
            raise SpecError(f"sweep.axes.{name}[{i}]", str(err).split(": ", 1)[1]) from None
        if name == "depth":
            _int(f"sweep.axes.depth[{i}]", spec.depth, 1, MAX_DEPTH, _DEPTH_WHY)
        checked.append(getattr(spec, name))
    if len(set(checked)) != len(checked):
        raise SpecError(f"sweep.axes.{name}", f"must not repeat a value, got "
                        f"{[list(c) if isinstance(c, tuple) else c for c in checked]}")
    return tuple(checked)


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
    base = network.spec_fields()
    if raw_axes.get("depth") is not None and (network.width_ratios is not None
                                              or raw_axes.get("width_ratios") is not None):
        raise SpecError("sweep.axes.depth", "cannot be swept with width ratios set (each "
                        "shape has depth + 1 ratios); allowed: null, or width_ratios null")
    for name, values in raw_axes.items():
        if values is None:  # a null axis is not swept
            continue
        if name not in AXIS_FIELDS:
            raise SpecError(f"sweep.axes.{name}", f"unknown axis; allowed: {_allowed(AXIS_FIELDS)}"
                            f" (widths go in sweep.widths)")
        if network.q_star is not None and name in CRITICAL_FIELDS:
            raise SpecError(f"sweep.axes.{name}", f"cannot be swept with network.q_star set (it "
                            f"fixes {', '.join(CRITICAL_FIELDS)}); allowed axes: "
                            f"{_allowed(f for f in AXIS_FIELDS if f not in CRITICAL_FIELDS)}")
        axes[name] = _axis(name, values, base)
    return SweepConfig(widths=widths, trials=trials, axes=axes)


def _mapping(name: str, value: object, what: str) -> dict[str, Any] | None:
    """``value`` as a dict, or None; otherwise a SpecError naming ``name``."""
    if value is not None and not isinstance(value, Mapping):
        raise SpecError(name, f"must be null or a mapping of {what}, got {value!r}")
    return None if value is None else dict(value)


def _paths(node: Mapping[str, Any]) -> PathsConfig:
    _check_keys(node, PathsConfig, "paths.")
    results = node.get("results", PathsConfig.results)
    if not isinstance(results, str) or not results.strip():
        raise SpecError("paths.results", f"must be a non-empty folder name or path (the "
                        f"results root), got {results!r}")
    return PathsConfig(results=results)


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
    figure = _mapping("experiment.figure", node.get("figure", d.figure),
                      "the figure study's parameters")
    spectral_grid = _mapping("experiment.spectral_grid",
                             node.get("spectral_grid", d.spectral_grid),
                             "the spectral_check study's cells")
    spectral_trials = _int("experiment.spectral_trials",
                           node.get("spectral_trials", d.spectral_trials), 0, None,
                           "0: off; else the first N trials of each cell, N >= 2")
    if spectral_trials == 1:
        raise SpecError("experiment.spectral_trials", "must be 0 (off) or >= 2 (a distance's "
                        "standard error needs two trials), got 1")
    return ExperimentConfig(
        name=name, studies=studies, spectral_trials=spectral_trials, figure=figure,
        spectral_grid=spectral_grid,
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
    run = RunConfig(network=network, sweep=sweep, experiment=experiment,
                    paths=_paths(node.get("paths", {})), seed=seed,
                    n_jobs=min(int(n_jobs), budget.available_cores()),
                    progress=_bool("progress", node.get("progress", True)),
                    max_new_cells=max_new, force=_bool("force", node.get("force", False)))
    _check_rectangular(run)
    for name in experiment.studies:
        STUDIES[name].validate(run)
    _check_numeric_range(run)
    if not run.force:
        _check_budget(run)
    return run


def workers(run: RunConfig) -> int:
    """Parallel workers of a run: ``n_jobs``, or every available core for -1."""
    return budget.available_cores() if run.n_jobs == -1 else run.n_jobs


def _check_rectangular(run: RunConfig) -> None:
    """Width ratios only with studies that handle rectangular networks (``Study.rectangular``)."""
    field = run.rectangular()
    if field is None:
        return
    allowed = [name for name, s in STUDIES.items() if s.rectangular]
    for name in run.experiment.studies:
        if not STUDIES[name].rectangular:
            raise SpecError(field, f"the {name} study handles square networks only; with width "
                            f"ratios set, experiment.studies may hold only: {_allowed(allowed)} "
                            f"(e.g. experiment=spectrum)")


def _check_numeric_range(run: RunConfig) -> None:
    """Every variant's mean-field variances and moments stay in float64 (``harness.budget``)."""
    n = max(STUDIES[s].range_moments(run.experiment) for s in run.experiment.studies)
    for spec in run.variants():
        swept = [f for f in ("sigma_w", "depth") if f in run.sweep.axes]
        field = f"sweep.axes.{swept[0]}" if swept else "network.sigma_w"
        budget.check_numeric_range(spec, 1, field)
        if n > 1:
            budget.check_numeric_range(spec, n, "experiment.moments")


def _check_budget(run: RunConfig) -> None:
    """Refuse a run whose estimated memory or time exceeds this machine's limits."""
    e = run.experiment
    cells = []
    for name in e.studies:
        study = STUDIES[name]
        for spec, trials, _ in grid_entries(study, run):
            cells.append(budget.CellCost(spec, trials, study.rows_per_trial(spec, e),
                                         study.time_factor))
    estimate = budget.estimate(cells, workers(run))
    dominant = "network.depth" if max(c.spec.depth for c in cells) > max(
        budget.largest_width(c.spec) for c in cells) else "sweep.widths"
    budget.check_budget(estimate, dominant_field=dominant)
