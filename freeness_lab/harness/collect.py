"""Collect the tables of several runs (a multirun sweep, or any folders) into one DataFrame.

Command line (``freeness-lab-collect`` or ``python -m freeness_lab.harness.collect``)::

    freeness-lab-collect results/spectrum/multirun-1a2b3c4d5e6f --table spectrum -o all.parquet

Every folder given is searched recursively for ``<table>.parquet`` files written by the
harness (those with provenance metadata); each row gets a ``run`` column (the run folder,
relative to the common parent) and the run's ``seed``/config travel in the rows' own columns.
In a notebook::

    >>> from freeness_lab.harness import collect_results
    >>> df = collect_results(["results/spectrum"], table="spectrum_check")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from freeness_lab.harness.storage import CELLS_DIR, read_provenance
from freeness_lab.harness.studies import STUDIES

#: tables a run may write: every registered study's per-trial and report tables
TABLES: tuple[str, ...] = tuple(name for s in STUDIES.values()
                                for name in (*s.tables, *s.report_tables))


def find_tables(dirs: Iterable[Path | str], table: str) -> list[Path]:
    """Paths of ``<table>.parquet`` of every harness run under ``dirs`` (sorted, no cells)."""
    if table not in TABLES:
        raise ValueError(f"table: unknown table {table!r}; allowed: {', '.join(TABLES)}")
    found = set()
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise ValueError(f"dirs: {d} is not a directory")
        for p in d.rglob(f"{table}.parquet"):
            if CELLS_DIR not in p.relative_to(d).parts[:-1]:
                found.add(p.resolve())
    return sorted(found)


def collect_results(dirs: Iterable[Path | str], table: str = "spectrum") -> pd.DataFrame:
    """One DataFrame of ``table`` from every run under ``dirs``, with a ``run`` column.

    Parameters
    ----------
    dirs : iterable of path
        Run folders, sweep folders, or any parents of them.
    table : str
        One of :data:`TABLES`.

    Returns
    -------
    pandas.DataFrame
        Rows of every run, in path order; ``run`` is each run folder relative to the common
        parent of all of them.

    Raises
    ------
    ValueError
        For an unknown table, a missing folder, or no run holding the table.
    """
    paths = [p for p in find_tables(dirs, table) if _is_harness_table(p)]
    if not paths:
        raise ValueError(f"dirs: no harness run with a {table}.parquet table under "
                         f"{', '.join(map(str, dirs))}")
    root = Path(os.path.commonpath([p.parent for p in paths]))
    frames = []
    for p in paths:
        df = pd.read_parquet(p)
        run = p.parent.relative_to(root).as_posix() if p.parent != root else p.parent.name
        df.insert(0, "run", run)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _is_harness_table(path: Path) -> bool:
    try:
        read_provenance(path)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``freeness-lab-collect``."""
    parser = argparse.ArgumentParser(prog="freeness-lab-collect", description=__doc__.split(
        "\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="run or sweep folders")
    parser.add_argument("--table", default="spectrum", choices=TABLES)
    parser.add_argument("-o", "--output", type=Path,
                        help="write the collected table here (.parquet or .csv)")
    args = parser.parse_args(argv)
    try:
        df = collect_results(args.dirs, args.table)
    except ValueError as err:
        print(f"freeness-lab-collect: error: {err}", file=sys.stderr)
        return 2
    try:
        if args.output is None:
            print(df.to_string(max_rows=40))
        else:  # the output's folder is created if missing
            args.output.parent.mkdir(parents=True, exist_ok=True)
            if args.output.suffix == ".csv":
                df.to_csv(args.output, index=False)
            else:
                df.to_parquet(args.output, index=False)
    except OSError as err:
        print(f"freeness-lab-collect: error: output: {err.strerror or err}: "
              f"{err.filename or args.output}", file=sys.stderr)
        return 1
    print(f"freeness-lab-collect: {len(df)} rows from {df['run'].nunique()} runs"
          + (f" -> {args.output}" if args.output else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
