"""Markdown helpers of ``summary.md``: tables, compacted columns, verdict counts."""

from __future__ import annotations

import pandas as pd


def fmt(x: object) -> str:
    """A table entry: floats to 4 significant digits, anything else as ``str``."""
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def markdown_table(df: pd.DataFrame) -> list[str]:
    """The lines of a markdown table of ``df`` (header, rule, one line per row)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return lines


def compact(df: pd.DataFrame, keep: list[str]) -> pd.DataFrame:
    """Columns that vary across rows (variant columns constant over the run are dropped)."""
    varying = [c for c in df.columns if c not in keep and df[c].nunique(dropna=False) > 1]
    return df[[c for c in df.columns if c in varying or c in keep]]


def counts(verdict: pd.Series) -> str:
    """``"3 agrees, 1 disagrees"``: how many of each verdict."""
    return ", ".join(f"{n} {v}" for v, n in verdict.value_counts().items())
