"""The markdown summary of a run: what ran, the verdict of each check, where the files are."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from freeness_lab.harness.compare import failing
from freeness_lab.harness.config import RunConfig
from freeness_lab.harness.runner import RunStats


def _fmt(x: object) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _markdown(df: pd.DataFrame) -> list[str]:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return lines


def _compact(df: pd.DataFrame, keep: list[str]) -> pd.DataFrame:
    """Columns that vary across rows (variant columns constant over the run are dropped)."""
    varying = [c for c in df.columns if c not in keep and df[c].nunique(dropna=False) > 1]
    return df[[c for c in df.columns if c in varying or c in keep]]


def _counts(verdict: pd.Series) -> str:
    return ", ".join(f"{n} {v}" for v, n in verdict.value_counts().items())


def write_summary(path: Path, *, run: RunConfig, stats: RunStats, tables: dict[str, Path],
                  plots: list[Path], spectrum_verdicts: pd.DataFrame | None,
                  freeness_verdicts: pd.DataFrame | None,
                  theory_errors: list[str] | None = None,
                  freeness_errors: list[str] | None = None) -> tuple[Path, int]:
    """Write ``summary.md``; return its path and the number of failing checks.

    A spectrum check fails when its verdict is failing
    (:func:`~freeness_lab.harness.compare.failing`: ``disagrees``, ``theory error``,
    ``invalid``, and ``no theory`` under ``experiment.fail_on_disagreement``); a freeness
    check when it contradicts its ``expected`` column (a word expected free called
    ``not free``, or a negative control called ``free``), or, under
    ``fail_on_disagreement``, when it is ``inconclusive``, and always when it is ``theory
    error`` (its limit prediction raised; ``freeness_errors`` says why). Each entry of
    ``theory_errors`` (e.g. a density that raised) is one more failing check.
    """
    e, s = run.experiment, run.sweep
    lines = [f"# freeness-lab run: {e.name}", "",
             f"- studies: {', '.join(e.studies)}; widths M = {list(s.widths)}; "
             f"{s.trials} trials per cell; seed {run.seed}",
             f"- base network: {run.network}; swept axes: {dict(s.axes) or 'none'}",
             f"- cells: {stats.total} ({stats.computed} computed now, {stats.reused} reused)", ""]
    strict = e.fail_on_disagreement
    failed = len(theory_errors or [])
    if theory_errors:
        lines += ["## Theory errors (failing)", ""]
        lines += [f"- {err}" for err in theory_errors]
        lines.append("")
    if spectrum_verdicts is not None:
        bad = failing(spectrum_verdicts["verdict"], strict)
        failed += int(bad.sum())
        lines += ["## Spectrum: Monte Carlo moments vs limit law (largest M)", "",
                  f"Verdicts: {_counts(spectrum_verdicts['verdict'])}. "
                  f"`agrees`: |z| <= {e.z_max:g} at the largest M, or its Student-t p-value "
                  f"times the number of checks (Bonferroni) above 2 Phi(-{e.z_max:g}); "
                  "`converging`: the defect "
                  "shrinks at every M with log-log slope <= -1/2 (finite-M bias); "
                  "`disagrees`: neither; `no theory`: not covered by the theory side "
                  f"({'failing' if strict else 'not failing'} in this run); "
                  "`theory error`, `invalid`: the theory raised or gave non-finite moments, "
                  "or the Monte Carlo values are not finite (failing).", ""]
        lines += _markdown(_compact(spectrum_verdicts, ["matrix", "quantity", "width", "mean",
                                                        "se", "theory", "z", "p_familywise",
                                                        "slope", "verdict"]))
        for note in spectrum_verdicts.attrs.get("notes", []):
            lines.append(f"\nTheory note: {note}")
        lines.append("")
    if freeness_verdicts is not None:
        v, expected = freeness_verdicts["verdict"], freeness_verdicts["expected"]
        bad = (((expected == "free") & (v == "not free"))
               | ((expected == "not free") & (v == "free")))
        bad |= v == "theory error"
        if strict:
            bad |= v == "inconclusive"
        failed += int(bad.sum())
        lines += ["## Freeness: mixed-moment defects vs M", "",
                  f"Verdicts: {_counts(freeness_verdicts['verdict'])}.", ""]
        cols = ["word", "ensemble", "expected", "slope", "slope_se", "z_last", "verdict"]
        variant = ["activation", "depth", "sigma_w", "sigma_b", "q0"]
        lines += _markdown(_compact(freeness_verdicts[[*variant, *cols]], cols))
        lines += [f"\nTheory error (failing): {err}" for err in freeness_errors or []]
        lines.append("")
    lines += [f"**{'FAIL' if failed else 'PASS'}**: {failed} failing check(s).", "",
              "## Files", ""]
    lines += [f"- table `{p.name}`" for p in tables.values()]
    lines += [f"- plot `plots/{p.name}`" for p in plots]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path, failed
