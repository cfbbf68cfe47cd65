"""The markdown summary of a run: what ran, the verdict of each check, where the files are.

Each study writes its own section (:attr:`~freeness_lab.harness.studies.base.StudyReport.
section`); this module puts them together under one header, the theory errors first, and
the run's PASS / FAIL line.
"""

from __future__ import annotations

from pathlib import Path

from freeness_lab.harness.runner import RunStats
from freeness_lab.harness.schema import RunConfig
from freeness_lab.harness.studies import StudyReport


def write_summary(path: Path, *, run: RunConfig, stats: RunStats, tables: dict[str, Path],
                  plots: list[Path], reports: list[StudyReport]) -> tuple[Path, int]:
    """Write ``summary.md``; return its path and the number of failing checks.

    The failing checks are those of each study's section (``StudyReport.failed``; the rules
    are the studies', e.g. :func:`freeness_lab.harness.compare.failing`) plus one per theory
    error outside them (``StudyReport.errors``, e.g. a density that raised while plotting).
    """
    e, s = run.experiment, run.sweep
    lines = [f"# freeness-lab run: {e.name}", "",
             f"- studies: {', '.join(e.studies)}; widths M = {list(s.widths)}; "
             f"{s.trials} trials per cell; seed {run.seed}",
             f"- base network: {run.network}; swept axes: {dict(s.axes) or 'none'}",
             f"- cells: {stats.total} ({stats.computed} computed now, {stats.reused} reused)", ""]
    errors = [err for r in reports for err in r.errors]
    failed = len(errors) + sum(r.failed for r in reports)
    if errors:
        lines += ["## Theory errors (failing)", ""]
        lines += [f"- {err}" for err in errors]
        lines.append("")
    for r in reports:
        lines += r.section
    lines += [f"**{'FAIL' if failed else 'PASS'}**: {failed} failing check(s).", "",
              "## Files", ""]
    lines += [f"- table `{p.name}`" for p in tables.values()]
    lines += [f"- plot `plots/{p.name}`" for p in plots]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path, failed
