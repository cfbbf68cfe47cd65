"""The ``freeness`` study inside the harness: cells of trials, then the analysis of
:mod:`freeness_lab.harness.freeness` (which owns all the freeness logic).

A trial is :func:`freeness_lab.harness.freeness.trial_values` on the cell's network with the
cell's (cell, trial) SeedSequence child: the empirical trace of each word and its free
prediction at the same network's empirical marginals. The per-trial rows are the tidy table
``freeness.parquet``; :func:`freeness_report` turns them into the freeness module's table (one
row per word x ensemble x M, its statistics and limit-marginal prediction), the decay fits and
verdicts (:func:`~freeness_lab.harness.freeness.fit_decay`) and the defect-vs-M plots
(:func:`~freeness_lab.harness.freeness.plot_defect_decay`), per network variant.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from freeness_lab.harness import freeness as fr
from freeness_lab.harness.cells import Cell
from freeness_lab.spec import NetworkSpec
from freeness_lab.theory import TheoryUnavailable

#: verdict of a word whose limit prediction failed (always failing)
THEORY_ERROR = "theory error"

#: variant columns of the freeness tables (the ensemble is the freeness module's "ensemble")
_VARIANT = ["activation", "depth", "sigma_w", "sigma_b", "q0"]


def study_words(depth: int, words: tuple[str, ...] | list[str] | None) -> tuple[fr.StudyWord, ...]:
    """Words of the study: the freeness module's defaults and negative controls, or ``words``
    (each tested under the Collins-Hayase families, expected free). Raises ValueError."""
    if words is None:
        return fr.default_words(depth) + fr.negative_controls(depth)
    return tuple(fr.StudyWord(w, "custom") for w in words)


def freeness_trials(cell: Cell, trials: tuple[int, ...]) -> dict[str, Any]:
    """Columns of the per-trial rows of one freeness cell (one row per trial x word)."""
    words = study_words(cell.spec.depth, dict(cell.params)["words"])
    cols: dict[str, list[Any]] = {k: [] for k in ("trial", "spawn_key", "word", "group",
                                                  "split", "control", "expected",
                                                  "empirical", "free_value")}
    for t in trials:
        values = fr.trial_values(cell.spec, words, cell.seed_sequence(t))
        for sw, (emp, pred) in zip(words, values, strict=True):
            cols["trial"].append(t)
            cols["spawn_key"].append(",".join(map(str, cell.spawn_key(t))))
            cols["word"].append(sw.label)
            cols["group"].append(sw.group)
            cols["split"].append(sw.split)
            cols["control"].append(sw.weights or "random")
            cols["expected"].append(sw.expected)
            cols["empirical"].append(float(emp))
            cols["free_value"].append(float(pred))
    return cols


def _limit(spec: NetworkSpec, sw: fr.StudyWord) -> tuple[float, str]:
    """The limit prediction of a word and, when the theory failed, why ("" otherwise).

    :class:`~freeness_lab.theory.TheoryUnavailable` means "no theory": NaN, no error. Any
    other exception, or a non-finite value, is a theory error (the word's verdict is then
    ``theory error``, a failing check) instead of stopping the run.
    """
    try:
        value = fr.limit_prediction(spec, sw)
    except TheoryUnavailable:
        return math.nan, ""
    except Exception as err:  # noqa: BLE001 -- any theory failure is reported, not raised
        return math.nan, f"{type(err).__name__}: {err}"
    if not math.isfinite(value):
        return math.nan, f"non-finite limit prediction {value!r}"
    return value, ""


def _study_table(per_trial: pd.DataFrame, spec: NetworkSpec, words: tuple[fr.StudyWord, ...],
                 errors: dict[tuple[str, str], str]) -> pd.DataFrame:
    """The freeness module's table (word x ensemble x M) for one variant's trials; theory
    errors of the limit predictions go into ``errors`` by (word, ensemble)."""
    by_label = {sw.label: sw for sw in words}
    rows = []
    for ens, g_ens in per_trial.groupby("weights", sort=False):
        spec_e = NetworkSpec(spec.activation, ens, spec.depth, width=1, sigma_w=spec.sigma_w,
                             sigma_b=spec.sigma_b, q0=spec.q0)
        limits = {label: _limit(spec_e, sw) for label, sw in by_label.items()}
        for (m, word), g in g_ens.groupby(["width", "word"], sort=False):
            sw = by_label[word]
            values = g.sort_values("trial")[["empirical", "free_value"]].to_numpy()
            row = {"word": word, "group": sw.group, "split": sw.split,
                   "weights": sw.weights or "random", "expected": sw.expected, "ensemble": ens,
                   "M": int(m), "trials": len(values), **fr.cell_statistics(values),
                   "free_limit": limits[word][0]}
            if limits[word][1]:
                errors[word, ens] = limits[word][1]
            row["limit_defect"] = abs(row["empirical"] - row["free_limit"])
            row["limit_z"] = (row["empirical"] - row["free_limit"]) / row["empirical_se"] \
                if row["empirical_se"] > 0 else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def freeness_report(per_trial: pd.DataFrame, plot_dir: Path
                    ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, list[Path], list[str]]:
    """Statistics, fits, verdicts and plots of the freeness study, per network variant.

    Returns
    -------
    tables : dict
        ``freeness_check`` (word x ensemble x M statistics) and ``freeness_fits`` (decay
        slopes and verdicts), each with the variant columns in front.
    verdicts : pandas.DataFrame
        The fits table, for the summary.
    plots : list of Path
    theory_errors : list of str
        One line per (word, ensemble) whose limit prediction failed (verdict
        ``theory error``).
    """
    checks, fits, plots, theory_errors = [], [], [], []
    for key, g in per_trial.groupby(_VARIANT, sort=False):
        variant = dict(zip(_VARIANT, key, strict=True))
        spec = NetworkSpec(variant["activation"], "orthogonal", int(variant["depth"]), width=1,
                           sigma_w=variant["sigma_w"], sigma_b=variant["sigma_b"],
                           q0=variant["q0"])
        words = study_words(spec.depth, None)
        labels = set(g["word"])
        if not labels <= {sw.label for sw in words}:
            words = study_words(spec.depth, sorted(labels))
        slug = "-".join(f"{k}{v:g}" if isinstance(v, float) else f"{v}"
                        for k, v in variant.items())
        errors: dict[tuple[str, str], str] = {}
        table = _study_table(g, spec, words, errors)
        fit = fr.fit_decay(table)
        for (word, ens), why in errors.items():
            fit.loc[(fit["word"] == word) & (fit["ensemble"] == ens), "verdict"] = THEORY_ERROR
            theory_errors.append(f"freeness {word} [{ens}], {slug}: limit prediction: {why}")
        plots.append(fr.plot_defect_decay(table, fit, Path(plot_dir) / f"freeness_{slug}.png"))
        checks.append(table.assign(**variant)[[*_VARIANT, *table.columns]])
        fits.append(fit.assign(**variant)[[*_VARIANT, *fit.columns]])
    check, fit = pd.concat(checks, ignore_index=True), pd.concat(fits, ignore_index=True)
    return {"freeness_check": check, "freeness_fits": fit}, fit, plots, theory_errors
