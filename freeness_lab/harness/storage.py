"""Atomic storage of cells and tables: parquet with provenance in the schema metadata.

Layout of a run folder ``out_dir``::

    cells/<study>-<hash>/<table>.parquet   one folder per finished cell (atomic rename)
    <table>.parquet                        the run's tidy tables, rows in cell order
    metadata.json                          resolved config, seeds, versions, git state

A cell folder is written under a temporary name and renamed into place with ``os.replace``:
it either exists complete or not at all, so a run killed at any point resumes by skipping the
cells whose folder exists (``DESIGN.md`` section 5).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

#: key of the provenance JSON in each parquet file's schema metadata
METADATA_KEY = b"freeness_lab"
CELLS_DIR = "cells"


def cell_dir(out_dir: Path, key: str) -> Path:
    """Folder of a finished cell."""
    return Path(out_dir) / CELLS_DIR / key


def is_finished(out_dir: Path, key: str) -> bool:
    """True when the cell's folder exists (it is only ever created complete)."""
    return cell_dir(out_dir, key).is_dir()


def _write_parquet(path: Path, df: pd.DataFrame, provenance: Mapping[str, Any] | None) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    if provenance is not None:
        meta = dict(table.schema.metadata or {})
        meta[METADATA_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(meta)
    pq.write_table(table, path)


def write_cell(out_dir: Path, key: str, tables: Mapping[str, pd.DataFrame]) -> Path:
    """Write one finished cell's tables atomically (temporary folder + ``os.replace``).

    Returns the cell's folder.
    """
    final = cell_dir(out_dir, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=final.parent))
    try:
        for name, df in tables.items():
            _write_parquet(tmp / f"{name}.parquet", df, None)
        if final.is_dir():  # finished meanwhile by a concurrent run of the same cell
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_cell(out_dir: Path, key: str) -> dict[str, pd.DataFrame]:
    """The tables of a finished cell, by name."""
    folder = cell_dir(out_dir, key)
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete half-written cell folders left by an interrupted run; returns how many."""
    root = Path(out_dir) / CELLS_DIR
    stale = list(root.glob(".tmp-*")) if root.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


def write_table(path: Path, df: pd.DataFrame, provenance: Mapping[str, Any]) -> None:
    """Write a run table atomically, with ``provenance`` as JSON in the schema metadata."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    _write_parquet(tmp, df, provenance)
    os.replace(tmp, path)


def write_json(path: Path, obj: Mapping[str, Any]) -> None:
    """Write a JSON file atomically."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def read_provenance(path: Path) -> dict[str, Any]:
    """The provenance JSON stored in a run table's schema metadata."""
    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        raise ValueError(f"path: {path} carries no freeness_lab provenance metadata")
    return json.loads(meta[METADATA_KEY])
