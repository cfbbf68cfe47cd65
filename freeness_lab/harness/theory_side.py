"""Theory predictions for the ``spectrum`` study, degrading gracefully.

For each network variant, the limit laws (M -> infinity) of J J^T and H_L from
:func:`freeness_lab.theory.jacobian_law` and :func:`freeness_lab.theory.fim_dual_law`:
exact moments m_1..m_n by S-transform series (Pennington, Schoenholz & Ganguli 2018;
Hayase & Karakida 2021), the variance m_2 - m_1^2, the atoms, and the density of the
continuous part (Newton solver) for the plots.

Failures are told apart: only :class:`~freeness_lab.theory.TheoryUnavailable`, which the
theory side raises on purpose where a prediction is known to be missing, makes a prediction
*unavailable* (verdict ``no theory``, reason in the summary; failing under
``experiment.fail_on_disagreement``). Any other exception, or moments that are not finite, is
a *theory error*: the run goes on, and the check fails (a verifier that turned a bug into
"no theory" would say PASS on a broken theory).

Rectangular networks (``network.width_ratios``): the theory is that of each cell's own layer
widths N_l = max(1, round(r_l M)) (the limit law of its width ratios), one per variant and M;
J J^T adds its atom at 0 (:data:`~freeness_lab.harness.spectrum.ZERO_MASS`). H_L of a
rectangular network is ``unavailable`` while :func:`freeness_lab.theory.fim_dual_law`
raises :class:`~freeness_lab.theory.TheoryUnavailable` for it, and fills in by itself once it
does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from freeness_lab.harness.schema import Shape
from freeness_lab.harness.spectrum import (
    WEIGHT_QUANTITIES,
    WEIGHTS,
    ZERO_MASS,
    quantity_names,
    shape_moments,
)
from freeness_lab.spec import NetworkSpec
from freeness_lab.theory import WEIGHT_TRACE_ORDERS, TheoryUnavailable, limits, weight_trace_means

#: status of a prediction: there, deliberately not covered, or failed
STATUSES: tuple[str, ...] = ("ok", "unavailable", "error")


#: solved limit laws of this process, by (factory, spec at width 1): a law's support
#: quadrature, once solved, serves every density, cdf and trial that needs it
_LAWS: dict[tuple[Any, NetworkSpec], Any] = {}
#: at most this many laws are kept (oldest dropped first)
MAX_LAWS = 32


def law_key(spec: NetworkSpec, matrix: str) -> tuple[Any, NetworkSpec]:
    """The cache key of the limit law of ``matrix`` for ``spec``: (its factory, the spec at
    width 1 -- a square network's width does not enter its limit law)."""
    factory = limits.jacobian_law if matrix == "JJT" else limits.fim_dual_law
    return factory, spec.with_width(1) if spec.widths is None else spec


def _keep(key: tuple[Any, NetworkSpec], law: Any) -> None:
    if len(_LAWS) >= MAX_LAWS:
        _LAWS.pop(next(iter(_LAWS)))
    _LAWS[key] = law


def limit_law(spec: NetworkSpec, matrix: str):
    """The law object of ``matrix`` (``"JJT"`` or ``"H_L"``) for ``spec``'s network, built
    once per process and spec (the width of a square spec does not enter the limit law). The
    factory is part of the key, so that a replaced theory (a test's broken one) is never
    answered from the cache."""
    return _cached(law_key(spec, matrix), spec)


def _cached(key: tuple[Any, NetworkSpec], spec: NetworkSpec):
    if key not in _LAWS:
        _keep(key, key[0](spec))
    return _LAWS[key]


def solved_laws(spec: NetworkSpec, matrices: tuple[str, ...]
                ) -> dict[tuple[Any, NetworkSpec], tuple[NetworkSpec, Any]]:
    """The certified supports of the limit laws of ``matrices`` for ``spec``, solved in this
    process (support, quadrature, and the tables of the cdf, partial mean and quantile that
    a trial's spectral check reads), by their cache key, with the spec: a parallel run
    certifies each once, in one of its workers (:func:`~freeness_lab.harness.runner.
    task_laws`), and its main process sends them with the tasks that use them and installs
    them for its report (:func:`install_laws`), so that no other process solves them again
    (0.1-0.6 s each for ReLU, seconds for tanh). The support alone is sent, not the law (tens
    of kB, where a smooth activation's law with its contour rules pickles to tens of MB). A law
    that fails here, has no certified support, or that a replaced factory (defined outside
    :mod:`freeness_lab.theory.limits`) made, is left out: the worker builds it itself, as
    without this. (From the cache itself, not :func:`limit_law`: a test that replaces that
    function replaces it in this process only, and the worker's trials never saw it.)"""
    out = {}
    for matrix in matrices:
        key = law_key(spec, matrix)
        if getattr(key[0], "__module__", None) != limits.__name__:
            continue
        try:
            law = _cached(key, spec)
            if not hasattr(law, "adopt_support"):
                continue
            mean = np.asarray(law.moments(1), float)[:1]
            law.continuous_mass(), law.support()
            law.cdf(mean), law.partial_mean(mean), law.quantile(np.array([0.5]))
            out[key] = (spec, law.certified_support)
        except Exception:  # noqa: BLE001 -- the worker meets (and reports) it itself
            continue
    return out


def clear_laws() -> None:
    """Forget every limit law of this process (a fresh worker's state)."""
    _LAWS.clear()


def install_laws(laws: dict[tuple[Any, NetworkSpec], tuple[NetworkSpec, Any]]) -> None:
    """Build the laws of :func:`solved_laws` (certified by another process) in this process's
    cache, each taking the certified support sent instead of certifying its own."""
    for key, (spec, support) in laws.items():
        _cached(key, spec).adopt_support(support)


@dataclass(frozen=True)
class TheoryMoments:
    """Moments of one limit law, or why there are none.

    Attributes
    ----------
    values : dict of str to float
        ``m1..mn`` and ``variance``; empty unless ``status`` is ``"ok"``.
    atoms : numpy.ndarray
        (k, 2) array of (location, mass).
    note : str
        Empty, or why the prediction is missing.
    status : {"ok", "unavailable", "error"}
        See the module docstring.
    """

    values: dict[str, float]
    atoms: np.ndarray
    note: str = ""
    status: str = "ok"


def _failure(err: BaseException) -> tuple[str, str]:
    """(status, note) of an exception raised by the theory side."""
    if isinstance(err, TheoryUnavailable):
        return "unavailable", f"unavailable: {err}"
    return "error", f"theory error: {type(err).__name__}: {err}"


def theory_moments(spec: NetworkSpec, matrix: str, n_moments: int) -> TheoryMoments:
    """Exact moments m_1..m_n, variance and atoms of the limit law of ``matrix``."""
    try:
        law = limit_law(spec, matrix)
        m = np.asarray(law.moments(max(2, n_moments)), dtype=float)
        atoms = np.asarray(law.atoms, dtype=float).reshape(-1, 2)
    except Exception as err:  # noqa: BLE001 -- classified, reported, and failing (docstring)
        status, note = _failure(err)
        return TheoryMoments({}, np.empty((0, 2)), f"{matrix}: {note}", status)
    if m.shape != (max(2, n_moments),) or not np.all(np.isfinite(m)):
        return TheoryMoments({}, atoms, f"{matrix}: theory error: moments {m.tolist()} are "
                             f"not {max(2, n_moments)} finite numbers", "error")
    values = {f"m{k}": float(m[k - 1]) for k in range(1, n_moments + 1)}
    values["variance"] = float(m[1] - m[0] ** 2)
    values.update(zip(quantity_names(n_moments)[n_moments + 1:],
                      shape_moments(m[:n_moments]).tolist(), strict=True))
    if spec.widths is not None:
        values[ZERO_MASS] = float(atoms[atoms[:, 0] == 0.0, 1].sum())
    return TheoryMoments(values, atoms)


def weight_theory(spec: NetworkSpec) -> TheoryMoments:
    """Exact means of the weight-sampler quantities (:data:`~freeness_lab.harness.spectrum.
    WEIGHT_QUANTITIES`) for ``spec``'s ensemble."""
    try:
        means = weight_trace_means(spec.weights)
        values = {q: float(means[k])
                  for q, k in zip(WEIGHT_QUANTITIES, WEIGHT_TRACE_ORDERS, strict=True)}
    except Exception as err:  # noqa: BLE001 -- classified, reported, and failing (docstring)
        status, note = _failure(err)
        return TheoryMoments({}, np.empty((0, 2)), f"{WEIGHTS}: {note}", status)
    return TheoryMoments(values, np.empty((0, 2)))


def theory_density(spec: NetworkSpec, matrix: str, x: np.ndarray
                   ) -> tuple[np.ndarray | None, str, str]:
    """Density of the continuous part of the limit law at ``x``.

    Returns
    -------
    density : numpy.ndarray or None
        None when there is none.
    note : str
        Empty, or why there is no density.
    status : {"ok", "unavailable", "error"}
        ``"error"`` for an exception other than
        :class:`~freeness_lab.theory.TheoryUnavailable`: the plot says so, and the summary
        counts it as a failing check.
    """
    try:
        return np.asarray(limit_law(spec, matrix).density(np.asarray(x, float)), float), "", "ok"
    except Exception as err:  # noqa: BLE001 -- classified, reported, and failing (docstring)
        status, note = _failure(err)
        return None, f"density {note}", status


def stage(items: list, desc: str, progress: bool) -> Iterable:
    """``items`` under a progress bar, for a stage after the cells (theory, plots)."""
    return tqdm(items, desc=desc, unit="step", disable=not progress or not items, leave=False)


def theory_table(variants: list[NetworkSpec], matrices: tuple[str, ...], n_moments: int, *,
                 progress: bool = False, shapes: list[Shape | None] | None = None
                 ) -> tuple[pd.DataFrame, dict[tuple[int, str], TheoryMoments]]:
    """Tidy theory table (one row per variant x matrix x quantity) and the raw results.

    ``matrices`` are the spectra (limit laws); the weight-sampler rows
    (:func:`weight_theory`) are added for every variant. The raw results are keyed by
    (variant index, matrix). Every quantity has a row; where
    the prediction is missing, ``theory`` is NaN and ``status`` says why (``"unavailable"``
    or ``"error"``). ``shapes`` (one per variant, all given or none): the theory of each
    variant at that shape's layer widths, its rows labelled with the shape's
    ``width_ratios``, ``width`` (M) and ``widths`` columns, and J J^T's
    :data:`~freeness_lab.harness.spectrum.ZERO_MASS` row.
    """
    shapes = [None] * len(variants) if shapes is None else shapes
    labelled = any(shape is not None for shape in shapes)
    rows, raw = [], {}
    jobs = [(i, spec if shape is None else shape.spec(spec), shape, matrix)
            for i, (spec, shape) in enumerate(zip(variants, shapes, strict=True))
            for matrix in (*matrices, WEIGHTS)]
    for i, spec, shape, matrix in stage(jobs, "theory", progress):
        if matrix == WEIGHTS:
            res, names = weight_theory(spec), list(WEIGHT_QUANTITIES)
        else:
            res, names = theory_moments(spec, matrix, n_moments), quantity_names(n_moments)
            if matrix == "JJT" and shape is not None:
                names.append(ZERO_MASS)
        raw[(i, matrix)] = res
        label = {} if shape is None else {"width_ratios": shape.label()["width_ratios"],
                                          "width": shape.width, "widths": shape.label()["widths"]}
        for quantity in names:
            rows.append({"activation": spec.activation, "weights": spec.weights,
                         "depth": spec.depth, "sigma_w": spec.sigma_w, "sigma_b": spec.sigma_b,
                         "q0": spec.q0, **label, "matrix": matrix, "quantity": quantity,
                         "theory": res.values.get(quantity, np.nan), "status": res.status})
    columns = ["activation", "weights", "depth", "sigma_w", "sigma_b", "q0",
               *(["width_ratios", "width", "widths"] if labelled else []), "matrix",
               "quantity", "theory", "status"]
    return pd.DataFrame(rows, columns=columns), raw
