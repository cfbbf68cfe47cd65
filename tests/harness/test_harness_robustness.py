"""Harness runs under process faults: kill -9 and SIGTERM of a running ``freeness-lab`` (no
worker left behind, finished cells kept, identical tables after the re-run), a second run into
a busy folder, and no idle workers after a normal run. Linux (/proc) only."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from freeness_lab.harness import run_experiment, storage, validate_config
from freeness_lab.harness.cells import plan_cells
from freeness_lab.harness.locking import RunFolderBusy
from freeness_lab.harness.runner import COMPUTED_LOG
from freeness_lab.harness.workers import sigterm_as_interrupt

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

# 5 cells of about 0.4 s each on 2 cores (2 s in all): slow enough to be stopped mid-run
ARGS = ["experiment=spectrum", "weights=orthogonal", "experiment.eigenvalues=false",
        "experiment.spectral_trials=0",
        "network.depth=10", "sweep.widths=[224,256,288,320,352]", "sweep.trials=2",
        "n_jobs=2", "progress=false"]


def _composed_run():
    from hydra import compose, initialize_config_dir

    from freeness_lab.harness.app import config_dir, register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return validate_config(compose(config_name="config", overrides=ARGS))


@pytest.fixture(scope="module")
def run():
    return _composed_run()


@pytest.fixture(scope="module")
def uninterrupted(run, tmp_path_factory) -> tuple[Path, list[int]]:
    """The same run, uninterrupted, in-process with 2 workers; and the workers left after it."""
    out = tmp_path_factory.mktemp("reference")
    assert run.n_jobs == 2 and run_experiment(run, out).stats.complete
    return out, _workers(_descendants(os.getpid()))


@pytest.fixture(scope="module")
def reference(uninterrupted) -> Path:
    return uninterrupted[0]


def _assert_same_tables(a: Path, b: Path) -> None:
    ta = {p.stem: pd.read_parquet(p) for p in sorted(a.glob("*.parquet"))}
    tb = {p.stem: pd.read_parquet(p) for p in sorted(b.glob("*.parquet"))}
    assert ta and sorted(ta) == sorted(tb)
    for name in ta:
        assert ta[name].equals(tb[name]), name


def _start(out: Path) -> subprocess.Popen:
    """Start the command into ``out``; its output goes to files beside ``out`` (not pipes,
    which a process left behind would hold open)."""
    with open(f"{out}.stdout", "w") as stdout, open(f"{out}.stderr", "w") as stderr:
        return subprocess.Popen([sys.executable, "-m", "freeness_lab", *ARGS,
                                 f"hydra.run.dir={out}"], cwd=out.parent,
                                stdout=stdout, stderr=stderr, text=True)


def _output(out: Path) -> tuple[str, str]:
    return Path(f"{out}.stdout").read_text(), Path(f"{out}.stderr").read_text()


def _finished(out: Path) -> list[str]:
    log = out / COMPUTED_LOG
    return log.read_text().split() if log.exists() else []


def _wait_for_a_finished_cell(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 180
    while not _finished(out):
        assert proc.poll() is None, f"the run ended early: {_output(out)}"
        assert time.monotonic() < deadline, "no cell finished in time"
        time.sleep(0.01)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the state on (index 0)


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``: pid -> start time (to tell a reused pid apart)."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
            starts[int(entry.name)] = fields[19]
    out, todo = {}, [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out[child] = starts[child]
            todo.append(child)
    return out


def _alive(procs: dict[int, str]) -> list[int]:
    """Those still running (a zombie, or a pid reused by another process, counts as dead)."""
    return [pid for pid, start in procs.items()
            if (f := _stat(pid)) is not None and f[0] not in "ZX" and f[19] == start]


def _assert_all_dead(procs: dict[int, str], within: float) -> None:
    deadline = time.monotonic() + within
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(procs), f"still running {within} s later: {_alive(procs)}"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _workers(procs: dict[int, str]) -> list[int]:
    """The loky workers among ``procs``."""
    return [pid for pid in procs if b"LokyProcess" in _cmdline(pid)]


def _start_until_a_cell_is_finished(tmp_path: Path
                                    ) -> tuple[subprocess.Popen, Path, dict[int, str]]:
    """Start the command, wait for its first finished cell; the process, its output folder
    and its process tree (computing in workers)."""
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for_a_finished_cell(proc, out)
    tree = _descendants(proc.pid)
    assert _workers(tree), "the run should be computing in workers"
    return proc, out, tree


def _resume_and_compare(run, out: Path, reference: Path) -> None:
    finished = _finished(out)
    assert 1 <= len(finished) < len(plan_cells(run)), "the stop should land mid-run"
    for key in finished:  # the finished cells are kept, intact
        assert storage.verify_cell(out, key)
    result = run_experiment(dataclasses.replace(run, n_jobs=1), out)  # same tables, any n_jobs
    assert (result.stats.reused, result.stats.damaged) == (len(finished), 0)
    assert result.stats.computed == len(plan_cells(run)) - len(finished)
    assert not list(out.glob(".tmp-*")) and not list((out / "cells").glob(".tmp-*"))
    _assert_same_tables(reference, out)


def test_kill_9_of_the_main_process_leaves_no_worker_and_rerun_is_identical(run, reference,
                                                                            tmp_path):
    proc, out, tree = _start_until_a_cell_is_finished(tmp_path)
    proc.kill()
    proc.wait()
    _assert_all_dead(tree, within=10)
    _resume_and_compare(run, out, reference)


def test_sigterm_stops_the_command_like_ctrl_c_and_rerun_is_identical(run, reference,
                                                                      tmp_path):
    proc, out, tree = _start_until_a_cell_is_finished(tmp_path)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert time.monotonic() - sent < 10, "SIGTERM should stop the run quickly"
    stderr = _output(out)[1]
    # stopped by KeyboardInterrupt (as Ctrl-C), not by SIGTERM's default action
    assert proc.returncode not in (0, -signal.SIGTERM), stderr
    assert "KeyboardInterrupt" in stderr or "interrupted" in stderr
    _assert_all_dead(tree, within=2)
    _resume_and_compare(run, out, reference)


def test_second_run_into_a_busy_folder_says_so_in_one_line(run, reference, tmp_path):
    out = tmp_path / "run"
    first = _start(out)
    _wait_for_a_finished_cell(first, out)
    with pytest.raises(RunFolderBusy) as err:
        run_experiment(run, out)
    message = str(err.value)
    assert "\n" not in message and "busy" in message and str(first.pid) in message
    first.wait(timeout=180)
    stdout, stderr = _output(out)
    assert first.returncode == 0, stderr
    assert "computed 5, reused 0" in stdout
    assert sorted(_finished(out)) == sorted(c.key for c in plan_cells(run))  # each once
    _assert_same_tables(reference, out)


def test_normal_run_leaves_no_idle_worker(uninterrupted):
    _, workers_after = uninterrupted
    assert workers_after == []  # not idling for loky's 300 s


def test_sigterm_raises_keyboard_interrupt_only_inside_the_block():
    before = signal.getsignal(signal.SIGTERM)
    if before != signal.SIG_DFL:
        pytest.skip("SIGTERM already has a handler in this test process")
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt() as installed:
            assert installed
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at the next bytecode boundary
    assert signal.getsignal(signal.SIGTERM) == before
