"""Monte Carlo against theory for the ``spectrum`` study: means, standard errors, verdicts.

For each variant, width M, matrix and quantity q (m_k or the variance), over T trials:
mean, standard error SE = sd / sqrt(T), defect = mean - theory, z = defect / SE.

Verdict per (variant, matrix, quantity), judged on the M sweep. With few trials the SE is
itself noisy (z follows Student's t with T - 1 degrees of freedom, not a normal law), and a
run makes many checks at once, so "within noise" is a family-wise test: the two-sided t
p-value of each check, multiplied by the number of checks of the run (Bonferroni), is
compared with the normal tail 2 Phi(-z_max). With 6 trials and 64 checks a plain |z| <= 4
rule raises a false alarm in about half of all runs; this one in fewer than 1 in 10^4.

* ``agrees``: the family-wise p-value at the largest M is above 2 Phi(-z_max) (the defect
  is within Monte Carlo noise);
* ``converging``: |z| > z_max at the largest M, but |defect| decreases at every step of the
  sweep and its log-log slope against M is <= -1/2 (a finite-M bias, O(1/M) for normalized
  traces of products of Haar / Gaussian matrices, larger than the noise);
* ``disagrees``: otherwise -- a wrong theory or sampler keeps an O(1) defect;
* ``no theory``: the theory side deliberately gives no prediction
  (:class:`~freeness_lab.theory.TheoryUnavailable`; reason in the summary);
* ``theory error``: the theory side raised any other exception, or returned moments that are
  not finite;
* ``invalid``: the Monte Carlo mean or its SE is not a finite number (overflow, or NaN from
  the sampler), or there are fewer than 2 trials: there is nothing to judge.

Rectangular networks (``network.width_ratios``): the tables carry ``width_ratios`` (part of
the variant) and ``widths``, the theory table one row set per width M (each cell's own layer
widths), and a quantity with SE = 0 (the structural zero mass of J J^T) is judged exactly.

``theory error`` and ``invalid`` always fail a run; ``no theory`` fails it under
``experiment.fail_on_disagreement`` (:data:`FAILING`, :func:`failing`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from freeness_lab.harness.stats import grouped_mean_se

#: columns naming a network variant (everything in a cell's label but the width)
VARIANT_COLUMNS: list[str] = ["activation", "weights", "depth", "sigma_w", "sigma_b", "q0"]
#: label columns of rectangular cells only (``network.width_ratios``): the shape, the same at
#: every M, and the layer widths at M
SHAPE_COLUMN, WIDTHS_COLUMN = "width_ratios", "widths"
#: slope of log|defect| vs log M at or below which a shrinking defect counts as converging
CONVERGING_SLOPE = -0.5
#: a Monte Carlo mean with SE = 0 agrees with theory when within this relative tolerance
EXACT_RTOL = 1e-9
#: verdicts that always fail a run
FAILING: tuple[str, ...] = ("disagrees", "theory error", "invalid")
#: verdicts that fail a run in regression-suite mode (``experiment.fail_on_disagreement``)
FAILING_STRICT: tuple[str, ...] = (*FAILING, "no theory")


def failing(verdict: pd.Series, strict: bool) -> pd.Series:
    """Boolean mask of the failing verdicts (``strict``: regression-suite mode)."""
    return verdict.isin(FAILING_STRICT if strict else FAILING)


def variant_columns(table: pd.DataFrame) -> list[str]:
    """:data:`VARIANT_COLUMNS`, and the shape's ``width_ratios`` in a table of rectangular
    cells."""
    return [*VARIANT_COLUMNS, *([SHAPE_COLUMN] if SHAPE_COLUMN in table.columns else [])]


def aggregate_trials(spectrum: pd.DataFrame) -> pd.DataFrame:
    """Mean, SE and trial count per variant x width x matrix x quantity (x layer widths, for
    rectangular cells)."""
    widths = [WIDTHS_COLUMN] if WIDTHS_COLUMN in spectrum.columns else []
    return grouped_mean_se(spectrum, [*variant_columns(spectrum), "width", *widths, "matrix",
                                      "quantity"], "value")


def compare(spectrum: pd.DataFrame, theory: pd.DataFrame) -> pd.DataFrame:
    """Aggregated Monte Carlo table joined with theory: defect, relative defect, z-score.

    A theory table with ``width`` (rectangular cells: the theory of each cell's layer
    widths) is joined per width too. A quantity that is exact at every trial (SE = 0: the
    structural zero mass of a rectangular J J^T) has z = 0 when it equals theory to
    :data:`EXACT_RTOL`, else +-inf.
    """
    agg = aggregate_trials(spectrum)
    shaped = [c for c in (SHAPE_COLUMN, "width", WIDTHS_COLUMN) if c in theory.columns]
    out = agg.merge(theory, on=[*VARIANT_COLUMNS, *shaped, "matrix", "quantity"], how="left")
    out["theory"] = out["theory"].astype(float)
    out["defect"] = out["mean"] - out["theory"]
    out["rel_defect"] = out["defect"] / out["theory"].abs()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["z"] = out["defect"] / out["se"]
    exact = (out["se"] == 0) & np.isfinite(out["defect"])
    if exact.any():
        equal = out["defect"].abs() <= EXACT_RTOL * np.maximum(1.0, out["theory"].abs())
        out.loc[exact, "z"] = np.where(equal[exact], 0.0,
                                       np.sign(out.loc[exact, "defect"]) * np.inf)
    return out


def _loglog_slope(width: np.ndarray, defect: np.ndarray) -> float:
    ok = np.isfinite(defect) & (defect > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(width[ok]), np.log(defect[ok]), 1)[0])


def familywise_p(z: float, trials: int, n_checks: int) -> float:
    """Bonferroni-corrected two-sided p-value of a t statistic with ``trials - 1`` dof."""
    if not np.isfinite(z) or trials < 2:
        return float("nan")
    return float(min(1.0, n_checks * 2.0 * stats.t.sf(abs(z), df=trials - 1)))


def verdicts(comparison: pd.DataFrame, z_max: float) -> pd.DataFrame:
    """One verdict per variant x matrix x quantity (see the module docstring)."""
    rows = []
    keys = [*variant_columns(comparison), "matrix", "quantity"]
    widths = [WIDTHS_COLUMN] if WIDTHS_COLUMN in comparison.columns else []
    groups = list(comparison.groupby(keys, sort=False))
    alpha = 2.0 * stats.norm.sf(z_max)
    for key, g in groups:
        g = g.sort_values("width")
        last = g.iloc[-1]
        absdef = g["defect"].abs().to_numpy(float)
        slope = _loglog_slope(g["width"].to_numpy(float), absdef)
        p_family = familywise_p(float(last["z"]), int(last["trials"]), len(groups))
        status = last.get("status", "ok")
        if status == "error":
            verdict = "theory error"
        elif status == "unavailable" or pd.isna(status):
            verdict = "no theory"
        elif not (np.isfinite(last["theory"]) and np.all(np.isfinite(g[["mean", "se"]]))
                  and last["trials"] >= 2):
            verdict = "invalid"
        elif abs(last["z"]) <= z_max or p_family > alpha:
            verdict = "agrees"
        elif len(g) > 1 and np.all(np.diff(absdef) < 0) and slope <= CONVERGING_SLOPE:
            verdict = "converging"
        else:
            verdict = "disagrees"
        rows.append({**dict(zip(keys, key, strict=True)), "width": int(last["width"]),
                     **{c: last[c] for c in widths},
                     "mean": last["mean"], "se": last["se"], "theory": last["theory"],
                     "z": last["z"], "p_familywise": p_family, "slope": slope,
                     "verdict": verdict})
    return pd.DataFrame(rows)
