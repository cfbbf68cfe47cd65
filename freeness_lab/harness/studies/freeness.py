"""The ``freeness`` study: cells of trials, then the analysis of
:mod:`freeness_lab.harness.freeness` (which owns all the freeness logic).

A trial is :func:`freeness_lab.harness.freeness.trial_values` on the cell's network with the
cell's (cell, trial) SeedSequence child: the empirical trace of each word and its free
prediction at the same network's empirical marginals. The per-trial rows are the tidy table
``freeness.parquet``; :func:`freeness_report` turns them into the freeness module's table (one
row per word x ensemble x M, its statistics and limit-marginal prediction), the decay fits and
verdicts (:func:`~freeness_lab.harness.freeness.fit_decay`) and the defect-vs-M plots
(:func:`~freeness_lab.harness.freeness.plot_defect_decay`, and every word on one axis,
:func:`~freeness_lab.harness.freeness.plot_overlay`), per network variant; :func:`report`
adds one PASS/FAIL claim per word to its section of ``summary.md``.

Rectangular networks (``network.width_ratios``, ``sweep.axes.width_ratios``): words are typed
by their dimensions (:func:`freeness_lab.simulate.words.dimension_mismatch`, at the width
ratios); a given word that is inconsistent is refused by :func:`validate` in one line, the
preset keeps its consistent words and lists the others, with their reason, in the section
(:mod:`freeness_lab.harness.freeness_words`). Each cell's paired and limit predictions follow
the rectangular rules of :mod:`freeness_lab.theory.free_cumulants.rectangular` at its own
layer widths; fits and verdicts are per shape.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from freeness_lab.harness import freeness as fr
from freeness_lab.harness.markdown import compact, counts, markdown_table
from freeness_lab.harness.plots import freeness_overlay, plot_defect_decay
from freeness_lab.harness.schema import ExperimentConfig, RunConfig, Shape
from freeness_lab.harness.studies.base import Columns, Params, ReportInput, Study, StudyReport
from freeness_lab.spec import NetworkSpec, SpecError
from freeness_lab.theory import TheoryUnavailable

#: verdict of a word whose limit prediction failed (always failing)
THEORY_ERROR = "theory error"

#: variant columns of the freeness tables (the ensemble is the freeness module's "ensemble")
VARIANT = ["activation", "depth", "sigma_w", "sigma_b", "q0"]
#: the shape column of a rectangular run's tables (:meth:`Shape.label`), and its widths
SHAPE, WIDTHS = "width_ratios", "widths"


def _dims(spec: NetworkSpec) -> tuple[int, ...] | None:
    """The layer widths a rectangular cell's words are typed by (``None``: square)."""
    return None if spec.widths is None else spec.layer_widths


def params(e: ExperimentConfig) -> Params:
    """The words of the study (``None``: the default set)."""
    return (("words", None if e.words is None else list(e.words)),)


def freeness_trial(spec: NetworkSpec, seed: np.random.SeedSequence,
                   cell_params: dict[str, Any]) -> dict[str, Columns]:
    """One trial: per word, the empirical trace and the paired free prediction
    (:func:`~freeness_lab.harness.freeness.trial_values`), one row per word."""
    words = fr.study_words(spec.depth, cell_params["words"], _dims(spec))
    values = fr.trial_values(spec, words, seed)
    return {"freeness": {"word": [sw.label for sw in words],
                         "group": [sw.group for sw in words],
                         "split": [sw.split for sw in words],
                         "control": [sw.weights or "random" for sw in words],
                         "expected": [sw.expected for sw in words],
                         "empirical": [float(emp) for emp, _ in values],
                         "free_value": [float(pred) for _, pred in values]}}


def rows_per_trial(spec: NetworkSpec, e: ExperimentConfig) -> int:
    """One row per word."""
    return len(fr.study_words(spec.depth, e.words, _dims(spec)))


def validate(run: RunConfig) -> None:
    """The freeness study needs two widths, two trials and words valid at every depth; in a
    rectangular network every given word dimensionally consistent (one line naming the
    mismatch), and layers of different ratios of different widths at every M (words are
    typed by the ratios, cells by their widths)."""
    if len(run.sweep.widths) < 2:
        raise SpecError("sweep.widths", "the freeness study fits a decay in M: give at least "
                        "2 widths")
    if run.sweep.trials < 2:
        raise SpecError("sweep.trials", "the freeness study needs >= 2 trials (standard errors)")
    for spec, ratios in run.shaped_variants():
        try:
            fr.study_words(spec.depth, run.experiment.words, ratios, "M")
        except ValueError as err:
            field = "experiment.words" if run.experiment.words else "network.depth"
            where = f"depth {spec.depth}" + ("" if ratios is None else
                                             f", width ratios {Shape(1, ratios).label()[SHAPE]}")
            raise SpecError(field, f"{err} ({where})") from None
        for m in () if ratios is None else run.sweep.widths:
            widths = Shape(m, ratios).widths
            for j, i in itertools.combinations(range(len(ratios)), 2):
                if (ratios[i] == ratios[j]) != (widths[i] == widths[j]):
                    raise SpecError(run.rectangular() or "network.width_ratios",
                                    f"ratios r_{j} = {ratios[j]:g} and r_{i} = {ratios[i]:g} "
                                    f"give equal widths {widths[i]} at M = {m}: the freeness "
                                    f"study types words by the ratios; change the ratios or "
                                    f"sweep.widths")


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
        limits = {label: _limit(spec_e, sw) for label, sw in by_label.items()} \
            if WIDTHS not in g_ens else {}
        for (m, word), g in g_ens.groupby(["width", "word"], sort=False):
            sw = by_label[word]
            values = g.sort_values("trial")[["empirical", "free_value"]].to_numpy()
            row = {"word": word, "group": sw.group, "split": sw.split,
                   "weights": sw.weights or "random", "expected": sw.expected, "ensemble": ens,
                   "M": int(m), "trials": len(values), **fr.cell_statistics(values)}
            if WIDTHS in g:  # rectangular: the limit at this cell's own widths
                row[WIDTHS] = str(g[WIDTHS].iloc[0])
                widths = tuple(int(n) for n in row[WIDTHS].split("-"))
                limits[word] = _limit(NetworkSpec(spec.activation, ens, spec.depth,
                                                  widths=widths, sigma_w=spec.sigma_w,
                                                  sigma_b=spec.sigma_b, q0=spec.q0), sw)
            row["free_limit"] = limits[word][0]
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
    columns = VARIANT + ([SHAPE] if SHAPE in per_trial else [])
    for key, g in per_trial.groupby(columns, sort=False):
        variant = dict(zip(columns, key, strict=True))
        spec = NetworkSpec(variant["activation"], "orthogonal", int(variant["depth"]), width=1,
                           sigma_w=variant["sigma_w"], sigma_b=variant["sigma_b"],
                           q0=variant["q0"])
        ratios = (tuple(float(r) for r in variant[SHAPE].split(":")) if SHAPE in variant
                  else None)
        words = fr.study_words(spec.depth, None, ratios)
        labels = set(g["word"])
        if not labels <= {sw.label for sw in words}:
            words = fr.study_words(spec.depth, sorted(labels), ratios)
        slug = "-".join(f"{k}{v:g}" if isinstance(v, float) else f"{v}"
                        for k, v in variant.items() if k != SHAPE)
        if ratios is not None:
            slug += "-r" + variant[SHAPE].replace(":", "_")
        errors: dict[tuple[str, str], str] = {}
        table = _study_table(g, spec, words, errors)
        fit = fr.fit_decay(table)
        for (word, ens), why in errors.items():
            fit.loc[(fit["word"] == word) & (fit["ensemble"] == ens), "verdict"] = THEORY_ERROR
            theory_errors.append(f"freeness {word} [{ens}], {slug}: limit prediction: {why}")
        plots.append(plot_defect_decay(table, fit, Path(plot_dir) / f"freeness_{slug}.png"))
        plots.append(freeness_overlay(table, fit, Path(plot_dir) / f"freeness_all_{slug}.png"))
        checks.append(table.assign(**variant)[[*columns, *table.columns]])
        fits.append(fit.assign(**variant)[[*columns, *fit.columns]])
    check, fit = pd.concat(checks, ignore_index=True), pd.concat(fits, ignore_index=True)
    return {"freeness_check": check, "freeness_fits": fit}, fit, plots, theory_errors


def failing_words(fits: pd.DataFrame, strict: bool) -> pd.Series:
    """Boolean mask of the failing fits: a verdict contradicting ``expected`` (a word expected
    free called ``not free``, a negative control called ``free``), ``theory error``, and
    under ``strict`` (``experiment.fail_on_disagreement``) ``inconclusive``."""
    v, expected = fits["verdict"], fits["expected"]
    bad = (((expected == "free") & (v == "not free"))
           | ((expected == "not free") & (v == "free")) | (v == THEORY_ERROR))
    if strict:
        bad |= v == "inconclusive"
    return bad


def section(run: RunConfig, fits: pd.DataFrame, theory_errors: list[str]
            ) -> tuple[list[str], int]:
    """The freeness section of ``summary.md`` (verdict table, then one PASS/FAIL claim per
    word and ensemble) and its number of failing checks (:func:`failing_words`)."""
    bad = failing_words(fits, run.experiment.fail_on_disagreement)
    lines = ["## Freeness: mixed-moment defects vs M", "",
             f"Verdicts: {counts(fits['verdict'])}.", ""]
    cols = ["word", "ensemble", "expected", "slope", "slope_se", "z_last", "verdict"]
    shaped = [*VARIANT, *([SHAPE] if SHAPE in fits else [])]
    lines += markdown_table(compact(fits[[*shaped, *cols]], cols))
    lines += [f"\nTheory error (failing): {err}" for err in theory_errors]
    lines += skipped_lines(run)
    lines += ["", "Claims:", ""]
    for r, failed in zip(fits.itertuples(), bad, strict=True):
        lines.append(f"- {'FAIL' if failed else 'PASS'}: {r.word} [{r.ensemble}] is "
                     f"{r.expected} -- verdict {r.verdict}; slope {r.slope:.2f} +- "
                     f"{r.slope_se:.2f}, z_inf {r.z_inf:.2f}, min |z| {r.min_abs_z:.1f}")
    lines.append("")
    return lines, int(bad.sum())


def skipped_lines(run: RunConfig) -> list[str]:
    """The preset words a rectangular run left out, one line each with its reason."""
    if run.experiment.words is not None:
        return []
    out = []
    for depth, ratios in dict.fromkeys((s.depth, r) for s, r in run.shaped_variants()):
        for label, why in fr.skipped_words(depth, ratios):
            out.append(f"- skipped {label} (depth {depth}, width ratios "
                       f"{Shape(1, ratios).label()[SHAPE]}): {why}")
    return ["", "Preset words skipped in rectangular networks:", "", *out] if out else []


def report(inp: ReportInput) -> StudyReport:
    """Statistics, fits, verdicts, plots and summary section of the freeness study."""
    tables, fits, plots, theory_errors = freeness_report(inp.tables["freeness"], inp.plot_dir)
    lines, failed = section(inp.run, fits, theory_errors)
    return StudyReport(tables=tables, plots=plots, section=lines, failed=failed)


STUDY = Study(name="freeness", params=params, trial=freeness_trial, tables=("freeness",),
              report_tables=("freeness_check", "freeness_fits"), report=report,
              rows_per_trial=rows_per_trial, time_factor=2.0, validate=validate,
              rectangular=True)
