"""Atomic, verifiable storage of cells and tables: parquet with provenance in the schema metadata.

Layout of a run folder ``out_dir``::

    cells/<study>-<hash>/<table>.parquet   one folder per finished cell (atomic rename)
    cells/<study>-<hash>/manifest.json     the cell's key and its files' sizes and SHA-256
    cells/damaged-<study>-<hash>/          a damaged cell moved aside (then recomputed)
    <table>.parquet                        the run's tidy tables, rows in cell order
    metadata.json                          resolved config, seeds, versions, git state

A cell folder is written under a unique temporary name, its manifest last, and renamed into
place with ``os.replace``: it either exists complete or not at all (``docs/conventions.md``
section 5). A cell counts as finished only when its manifest is present and parseable, names the
cell's key, and matches every file (size and checksum) with no unlisted parquet file beside them
(:func:`verify_cell`); anything else -- a missing, truncated or foreign file, no manifest --
is a damaged cell (:class:`CellDamaged`, one line), which the runner reports, moves aside
(:func:`discard_cell`) and recomputes.

Every atomic write (cells, :func:`write_table`, :func:`write_json`) uses a temporary name
unique to the call (``.tmp-<name>-<random>``) and removes it on any exception, so no
half-written file is ever left under a final name, and concurrent writers never share a
temporary. Temporaries of a killed run are removed at the next start
(:func:`remove_stale_temporaries`), under the run-folder lock
(:mod:`freeness_lab.harness.locking`), so that no live run's temporaries can be removed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

#: key of the provenance JSON in each parquet file's schema metadata
METADATA_KEY = b"freeness_lab"
CELLS_DIR = "cells"
#: the manifest of a finished cell, written last
MANIFEST = "manifest.json"
#: version of the manifest's layout
MANIFEST_FORMAT = 1
#: prefix of every temporary file or folder (removed at the next start when left behind)
TMP_PREFIX = ".tmp-"
#: prefix under which a damaged cell folder is moved aside
DAMAGED_PREFIX = "damaged-"

FileEntry = dict[str, Any]

#: the named points of a write at which :data:`FAULT_HOOK` is called
FAULT_POINTS: tuple[str, ...] = ("parquet", "manifest", "publish", "json")
#: Testing hook, ``None`` outside tests: when set, every writer of this module calls
#: ``FAULT_HOOK(point, path)`` at each point of :data:`FAULT_POINTS` -- ``"parquet"`` after a
#: parquet file (a cell's table or a run table) is written to its temporary ``path``,
#: ``"manifest"`` after a cell's manifest is written, ``"publish"`` just before a complete
#: temporary cell folder ``path`` is renamed into place, ``"json"`` after a JSON file is
#: written to its temporary ``path``. A test injects a fault by raising there (or truncating
#: ``path`` first), e.g. ``monkeypatch.setattr(storage, "FAULT_HOOK", hook)``.
FAULT_HOOK: Callable[[str, Path], None] | None = None


def _fault_point(point: str, path: Path) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(point, path)


class CellDamaged(ValueError):
    """A cell folder exists but is not a valid finished cell (the message is one line)."""


def cell_dir(out_dir: Path, key: str) -> Path:
    """Folder of a finished cell."""
    return Path(out_dir) / CELLS_DIR / key


# -- unique temporaries --------------------------------------------------------------------

def _temp_name(parent: Path, name: str) -> Path:
    return parent / f"{TMP_PREFIX}{name}-{secrets.token_hex(6)}"


def _new_temp_file(parent: Path, name: str) -> Path:
    """Create an empty file under a fresh temporary name in ``parent`` (mode from the umask)."""
    while True:
        path = _temp_name(parent, name)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        return path


def _new_temp_dir(parent: Path, name: str) -> Path:
    """Create an empty folder under a fresh temporary name in ``parent``."""
    while True:
        path = _temp_name(parent, name)
        try:
            path.mkdir()
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a unique temporary path beside ``path``; on success move it onto ``path``.

    On any exception (KeyboardInterrupt included) the temporary is removed and the exception
    propagates: ``path`` is either the old file or the complete new one.
    """
    tmp = _new_temp_file(path.parent, path.name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- cells ---------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_entry(path: Path) -> FileEntry:
    """Size and SHA-256 of a written file, as its manifest entry."""
    return {"size": path.stat().st_size, "sha256": _sha256(path)}


def _write_parquet(path: Path, df: pd.DataFrame, provenance: Mapping[str, Any] | None) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    if provenance is not None:
        meta = dict(table.schema.metadata or {})
        meta[METADATA_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(meta)
    pq.write_table(table, path)
    _fault_point("parquet", path)


def _write_cell_file(folder: Path, name: str, df: pd.DataFrame) -> tuple[str, FileEntry]:
    """Write one table of a cell into ``folder``; its file name and manifest entry."""
    path = folder / f"{name}.parquet"
    _write_parquet(path, df, None)
    return path.name, _file_entry(path)


def _write_manifest(folder: Path, key: str, files: Mapping[str, FileEntry]) -> None:
    manifest = {"format": MANIFEST_FORMAT, "key": key, "files": dict(sorted(files.items()))}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    _fault_point("manifest", folder / MANIFEST)


def _publish(tmp: Path, final: Path) -> None:
    """Rename a complete temporary cell folder onto its final name."""
    _fault_point("publish", tmp)
    if final.exists():  # only without the run-folder lock: a concurrent writer got there first
        if is_finished(final.parent.parent, final.name):
            shutil.rmtree(tmp)
            return
        discard_cell(final.parent.parent, final.name)
    os.replace(tmp, final)


def write_cell(out_dir: Path, key: str, tables: Mapping[str, pd.DataFrame]) -> Path:
    """Write one finished cell's tables atomically, its manifest last.

    The files go into a fresh temporary folder, then ``manifest.json`` (each file's size and
    SHA-256, and ``key``), then the folder is renamed into place (``os.replace``). An
    exception at any step removes the temporary folder and propagates.

    Parameters
    ----------
    out_dir : path
        The run folder.
    key : str
        The cell's content hash (:attr:`~freeness_lab.harness.cells.Cell.key`).
    tables : mapping of str to DataFrame
        The cell's tables by name.

    Returns
    -------
    Path
        The cell's folder.
    """
    final = cell_dir(out_dir, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_dir(final.parent, key)
    try:
        files = dict(_write_cell_file(tmp, name, df) for name, df in tables.items())
        _write_manifest(tmp, key, files)
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _parse_manifest(text: str) -> dict[str, Any] | None:
    """The manifest as a dict when it has the expected layout, else None."""
    try:
        manifest = json.loads(text)
    except ValueError:
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None
    files = manifest.get("files")
    if not isinstance(manifest.get("key"), str) or not isinstance(files, dict) or not files:
        return None
    for name, entry in files.items():
        if (Path(name).name != name or not name.endswith(".parquet")
                or not isinstance(entry, dict) or not isinstance(entry.get("size"), int)
                or not isinstance(entry.get("sha256"), str)):
            return None
    return manifest


def _read_manifest(folder: Path, key: str) -> dict[str, FileEntry]:
    """The file entries of a cell's manifest; CellDamaged when absent, unreadable or foreign."""
    path = folder / MANIFEST
    if not path.is_file():
        raise CellDamaged(f"cell {key} is damaged: no {MANIFEST} (unfinished, or written by "
                          f"an older version)")
    try:
        manifest = _parse_manifest(path.read_text())
    except (OSError, UnicodeDecodeError):
        manifest = None
    if manifest is None:
        raise CellDamaged(f"cell {key} is damaged: {MANIFEST} is unreadable")
    if manifest["key"] != key:
        raise CellDamaged(f"cell {key} is damaged: its {MANIFEST} belongs to cell "
                          f"{manifest['key']!r}")
    return manifest["files"]


def _file_problem(path: Path, entry: FileEntry) -> str | None:
    """What is wrong with one listed file, or None when it matches its manifest entry."""
    if not path.is_file():
        return "is missing"
    size = path.stat().st_size
    if size != entry["size"]:
        return f"is {size} bytes, its manifest says {entry['size']}"
    if _sha256(path) != entry["sha256"]:
        return "does not match its checksum"
    return None


def verify_cell(out_dir: Path, key: str) -> bool:
    """Whether a cell is finished: False when its folder is absent, True when it is intact.

    Parameters
    ----------
    out_dir : path
        The run folder.
    key : str
        The cell's key.

    Returns
    -------
    bool

    Raises
    ------
    CellDamaged
        When the folder exists but is not a valid finished cell: no manifest or an unreadable
        or foreign one, a listed file missing or not matching its size and SHA-256, or a
        parquet file the manifest does not list. The message is one line.
    """
    folder = cell_dir(out_dir, key)
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise CellDamaged(f"cell {key} is damaged: {folder} is not a folder")
    files = _read_manifest(folder, key)
    for name, entry in sorted(files.items()):
        problem = _file_problem(folder / name, entry)
        if problem is not None:
            raise CellDamaged(f"cell {key} is damaged: {name} {problem}")
    unlisted = sorted(p.name for p in folder.glob("*.parquet") if p.name not in files)
    if unlisted:
        raise CellDamaged(f"cell {key} is damaged: {unlisted[0]} is not in its {MANIFEST}")
    return True


def is_finished(out_dir: Path, key: str) -> bool:
    """True when the cell is finished and intact (:func:`verify_cell`, damage counts False)."""
    try:
        return verify_cell(out_dir, key)
    except CellDamaged:
        return False


def discard_cell(out_dir: Path, key: str) -> Path:
    """Move a damaged cell folder aside to ``cells/damaged-<key>`` (replacing an older one).

    Returns
    -------
    Path
        Where it now is.
    """
    folder = cell_dir(out_dir, key)
    aside = folder.with_name(DAMAGED_PREFIX + key)
    if aside.exists() or aside.is_symlink():
        _remove(aside)
    os.replace(folder, aside)
    return aside


def read_cell(out_dir: Path, key: str) -> dict[str, pd.DataFrame]:
    """The tables of a finished cell, by name: only the files its manifest lists.

    Each file is read once, checked against its manifest entry and parsed from those bytes.

    Raises
    ------
    CellDamaged
        When the manifest is absent or invalid or a file does not match it.
    """
    folder = cell_dir(out_dir, key)
    tables = {}
    for name, entry in sorted(_read_manifest(folder, key).items()):
        try:
            data = (folder / name).read_bytes()
        except FileNotFoundError:
            raise CellDamaged(f"cell {key} is damaged: {name} is missing") from None
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise CellDamaged(f"cell {key} is damaged: {name} does not match its {MANIFEST}")
        tables[name.removesuffix(".parquet")] = pd.read_parquet(io.BytesIO(data))
    return tables


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete the temporaries an interrupted run left behind; returns how many.

    Removes ``cells/.tmp-*`` (half-written cells) and ``.tmp-*`` (half-written tables). Call
    it only while holding the run-folder lock
    (:func:`~freeness_lab.harness.locking.run_folder_lock`): a live run's temporaries would
    be removed too.
    """
    out_dir = Path(out_dir)
    stale = []
    for folder in (out_dir, out_dir / CELLS_DIR):
        if folder.is_dir():
            stale += folder.glob(f"{TMP_PREFIX}*")
    for p in stale:
        _remove(p)
    return len(stale)


# -- run tables ----------------------------------------------------------------------------

def write_table(path: Path, df: pd.DataFrame, provenance: Mapping[str, Any]) -> None:
    """Write a run table atomically, with ``provenance`` as JSON in the schema metadata."""
    path = Path(path)
    with _atomic_path(path) as tmp:
        _write_parquet(tmp, df, provenance)


def write_json(path: Path, obj: Mapping[str, Any]) -> None:
    """Write a JSON file atomically."""
    path = Path(path)
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    with _atomic_path(path) as tmp:
        tmp.write_text(text)
        _fault_point("json", tmp)


def read_provenance(path: Path) -> dict[str, Any]:
    """The provenance JSON stored in a run table's schema metadata."""
    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        raise ValueError(f"path: {path} carries no freeness_lab provenance metadata")
    return json.loads(meta[METADATA_KEY])
