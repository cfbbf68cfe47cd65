"""Harness storage: cell manifests, damaged cells recomputed, faults inside the writers, unique
temporaries, and the run-folder lock (in-process; the process-level checks -- kill -9,
SIGTERM, a concurrent command -- are in ``test_harness_robustness.py``)."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from freeness_lab.harness import run_experiment, storage, validate_config
from freeness_lab.harness.cells import plan_cells
from freeness_lab.harness.locking import LOCK_FILE, RunFolderBusy, run_folder_lock
from freeness_lab.harness.runner import run_cells
from freeness_lab.harness.storage import CELLS_DIR, MANIFEST, CellDamaged

# two spectrum cells, no eigenvalues (no histogram plots): a run takes well under a second
RUN = {"sweep": {"widths": [16, 24], "trials": 2},
       "experiment": {"studies": ["spectrum"], "eigenvalues": False},
       "n_jobs": 1, "progress": False}


def _run():
    return validate_config(RUN)


def _tables(out_dir: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(Path(out_dir).glob("*.parquet"))}


def _assert_same_tables(a: Path, b: Path) -> None:
    ta, tb = _tables(a), _tables(b)
    assert ta and sorted(ta) == sorted(tb)
    for name in ta:
        assert ta[name].equals(tb[name]), name


def _temporaries(out_dir: Path) -> list[Path]:
    return [*Path(out_dir).glob(".tmp-*"), *(Path(out_dir) / CELLS_DIR).glob(".tmp-*")]


@pytest.fixture(scope="module")
def intact(tmp_path_factory) -> Path:
    """A finished run folder, never modified (tests copy it)."""
    out = tmp_path_factory.mktemp("intact")
    run_experiment(_run(), out)
    return out


def _copy(intact: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(intact, out)
    return out


# -- manifest ------------------------------------------------------------------------------

def test_finished_cell_carries_a_manifest_of_its_files(tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    folder = storage.write_cell(tmp_path, "spectrum-abc", {"spectrum": df, "eigenvalues": df})
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["key"] == "spectrum-abc"
    assert sorted(manifest["files"]) == ["eigenvalues.parquet", "spectrum.parquet"]
    for name, entry in manifest["files"].items():
        assert entry["size"] == (folder / name).stat().st_size
        assert len(entry["sha256"]) == 64
    assert storage.verify_cell(tmp_path, "spectrum-abc")
    assert not storage.verify_cell(tmp_path, "spectrum-other")  # absent: not finished, no error
    tables = storage.read_cell(tmp_path, "spectrum-abc")
    assert sorted(tables) == ["eigenvalues", "spectrum"] and tables["spectrum"].equals(df)
    assert _temporaries(tmp_path) == []


def _damage(out_dir: Path, how: str) -> str:
    """Damage the first spectrum cell of a finished run folder; returns its key."""
    cells = sorted((out_dir / CELLS_DIR).glob("spectrum-*"))
    folder, other = cells[0], cells[1]
    target = folder / "spectrum.parquet"
    if how == "file missing":
        target.unlink()
    elif how == "no files":
        for p in folder.iterdir():
            p.unlink()
    elif how == "file truncated":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif how == "garbage file":
        target.write_bytes(b"not a parquet file")
    elif how == "file from another cell":
        shutil.copy(other / "spectrum.parquet", target)
    elif how == "manifest missing":
        (folder / MANIFEST).unlink()
    elif how == "manifest garbage":
        (folder / MANIFEST).write_text("{not json")
    elif how == "manifest from another cell":
        shutil.copy(other / MANIFEST, folder / MANIFEST)
    elif how == "unlisted parquet":
        shutil.copy(target, folder / "extra.parquet")
    else:
        raise AssertionError(how)
    return folder.name


DAMAGES = ["file missing", "no files", "file truncated", "garbage file",
           "file from another cell", "manifest missing", "manifest garbage",
           "manifest from another cell", "unlisted parquet"]


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_cell_is_not_finished_and_says_why_in_one_line(intact, tmp_path, how):
    out = _copy(intact, tmp_path)
    key = _damage(out, how)
    with pytest.raises(CellDamaged) as err:
        storage.verify_cell(out, key)
    message = str(err.value)
    assert key in message and "\n" not in message
    assert not storage.is_finished(out, key)


# the must-show cases, end to end
@pytest.mark.parametrize("how", ["file missing", "file truncated", "file from another cell",
                                 "manifest missing", "no files", "garbage file"])
def test_damaged_cell_is_reported_recomputed_and_tables_equal_intact_run(intact, tmp_path,
                                                                         how, caplog):
    out = _copy(intact, tmp_path)
    for table in out.glob("*.parquet"):  # the re-run must rebuild every table
        table.unlink()
    key = _damage(out, how)
    with caplog.at_level(logging.WARNING, logger="freeness_lab.harness"):
        result = run_experiment(_run(), out)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and key in lines[0] and "\n" not in lines[0]
    assert "damaged" in lines[0] and "recomputing" in lines[0]
    total = len(plan_cells(_run()))
    assert (result.stats.computed, result.stats.reused, result.stats.damaged) == (1, total - 1, 1)
    assert storage.verify_cell(out, key)
    assert (out / CELLS_DIR / f"damaged-{key}").is_dir()  # moved aside, not lost
    _assert_same_tables(intact, out)


def test_cell_of_an_older_version_without_manifest_is_recomputed(intact, tmp_path):
    out = _copy(intact, tmp_path)
    for manifest in (out / CELLS_DIR).glob(f"*/{MANIFEST}"):
        manifest.unlink()
    result = run_experiment(_run(), out)
    assert result.stats.computed == result.stats.damaged == len(plan_cells(_run()))
    _assert_same_tables(intact, out)


# -- faults inside the writers -------------------------------------------------------------

class Injected(Exception):
    """The fault raised by the tests."""


def _half_then_raise(path: Path, data: bytes) -> None:
    Path(path).write_bytes(data[: len(data) // 2])
    raise Injected(f"fault while writing {Path(path).name}")


def _hook(monkeypatch, point, fault):
    """Set storage's testing hook: ``fault(path)`` at each write's ``point``."""
    def hook(at, path):
        if at == point:
            fault(path)
    monkeypatch.setattr(storage, "FAULT_HOOK", hook)


def _write_half(path):
    _half_then_raise(path, Path(path).read_bytes())


def _raise_before_rename(path):
    raise Injected("fault before the rename")


def _interrupt_in_table(path):
    Path(path).write_bytes(b"PAR1 half")
    raise KeyboardInterrupt  # Ctrl-C (or SIGTERM) in the middle of a write


#: fault -> (storage's write point, what happens there at the second cell)
FAULTS = {"table file half written": ("parquet", _write_half),
          "manifest half written": ("manifest", _write_half),
          "before the rename": ("publish", _raise_before_rename),
          "Ctrl-C in a table file": ("parquet", _interrupt_in_table)}


def _fault_at_second_cell(monkeypatch, calls, point, action):
    """Record every write at ``point`` in ``calls``; ``action(path)`` at the second one."""
    def fault(path):
        calls.append(path)
        if len(calls) == 2:  # the second cell: the first one is finished and must be kept
            action(path)
    _hook(monkeypatch, point, fault)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_in_cell_writer_leaves_no_partial_file_and_rerun_is_identical(intact, tmp_path,
                                                                            monkeypatch,
                                                                            fault):
    out, calls = tmp_path / "run", []
    with monkeypatch.context() as patch:
        _fault_at_second_cell(patch, calls, *FAULTS[fault])
        with pytest.raises((Injected, KeyboardInterrupt)):
            run_experiment(_run(), out)
    assert len(calls) == 2
    assert _temporaries(out) == []
    cells = [p for p in (out / CELLS_DIR).iterdir()]
    assert len(cells) == 1 and storage.verify_cell(out, cells[0].name)  # the finished one
    assert not list(out.glob("*.parquet"))
    result = run_experiment(_run(), out)
    assert (result.stats.reused, result.stats.damaged) == (1, 0)
    _assert_same_tables(intact, out)


@pytest.mark.parametrize("writer", ["write_table", "write_json"])
def test_fault_in_table_writer_leaves_old_file_and_no_temporary(tmp_path, monkeypatch, writer):
    path = tmp_path / ("t.parquet" if writer == "write_table" else "t.json")
    df = pd.DataFrame({"a": [1, 2]})

    def write(value):
        if writer == "write_table":
            storage.write_table(path, df.assign(a=value), {"v": value})
        else:
            storage.write_json(path, {"v": value})

    def read():
        return (int(pd.read_parquet(path)["a"].iloc[0]) if writer == "write_table"
                else json.loads(path.read_text())["v"])

    write(1)
    if writer == "write_table":
        _hook(monkeypatch, "parquet", lambda p: _half_then_raise(p, b"PAR1" * 100))
    else:
        _hook(monkeypatch, "json", lambda p: _half_then_raise(p, b"{" * 50))
    with pytest.raises(Injected):
        write(2)
    monkeypatch.undo()
    assert read() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_concurrent_writers_of_one_table_never_share_a_temporary(tmp_path, monkeypatch):
    """A writer that starts while another is between its write and its rename (two runs
    re-writing a finished folder's tables at once) must not take the other's temporary."""
    path, df = tmp_path / "t.parquet", pd.DataFrame({"a": [1, 2]})
    nested = []

    def interleaved(p):
        if not nested:
            nested.append(p)
            storage.write_table(path, df, {"v": 1})  # the other writer, in between
    _hook(monkeypatch, "parquet", interleaved)
    storage.write_table(path, df, {"v": 1})
    assert pd.read_parquet(path).equals(df)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# -- the run-folder lock -------------------------------------------------------------------

def _hold_in_thread(out_dir: Path):
    """Hold ``out_dir``'s lock in another thread until the returned event is set."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with run_folder_lock(out_dir):
            held.set()
            release.wait(30)
    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    return thread, release


def test_second_run_into_a_busy_folder_fails_at_once_and_touches_nothing(tmp_path):
    out = tmp_path / "run"
    cells_dir = out / CELLS_DIR
    cells_dir.mkdir(parents=True)
    in_progress = cells_dir / ".tmp-spectrum-x-123"  # the holder's cell being written
    in_progress.mkdir()
    thread, release = _hold_in_thread(out)
    try:
        with pytest.raises(RunFolderBusy) as err:
            run_experiment(_run(), out)
        with pytest.raises(RunFolderBusy):
            run_cells(plan_cells(_run()), out)
    finally:
        release.set()
        thread.join()
    message = str(err.value)
    assert "busy" in message and str(out) in message and "\n" not in message
    assert in_progress.is_dir()  # the start-up clean-up did not remove the holder's temporary
    assert sorted(p.name for p in cells_dir.iterdir()) == [in_progress.name]
    result = run_experiment(_run(), out)  # the lock is free again; the stale temporary goes
    assert result.stats.complete and not in_progress.exists()


def test_lock_is_reentrant_in_its_thread_and_released_after(tmp_path):
    with run_folder_lock(tmp_path) as lock_file:
        with run_folder_lock(tmp_path):
            run_cells([], tmp_path)
        assert lock_file == tmp_path / LOCK_FILE
    thread, release = _hold_in_thread(tmp_path)  # free: another thread can take it
    release.set()
    thread.join()
