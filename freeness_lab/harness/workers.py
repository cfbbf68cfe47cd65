"""Worker processes that never outlive their run, and SIGTERM handled like Ctrl-C.

* :func:`worker_pool`: a ``joblib.Parallel`` over loky workers, each started with
  :func:`watch_parent` as its initializer: a daemon thread in the worker polls
  ``os.getppid()`` every :data:`WATCH_INTERVAL` seconds and ends the worker with ``os._exit``
  as soon as its parent (the run's main process) is gone, e.g. killed by SIGKILL. (Not
  ``prctl(PR_SET_PDEATHSIG)``: it fires when the creating *thread* exits, and loky spawns
  workers from a manager thread.) Idle workers are watched as well as busy ones.
  When the last pool of the process is done, joblib's reusable loky executor is shut down,
  so that its workers (about 190 MB each) do not idle for loky's 300 s timeout after a run
  (Ctrl-C already makes joblib kill them).
* :func:`sigterm_as_interrupt`: while a run is in progress, SIGTERM raises
  ``KeyboardInterrupt`` in the main thread, so that it stops a run exactly as Ctrl-C does.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import joblib

#: seconds between two checks of a worker's parent
WATCH_INTERVAL = 0.25
#: exit status of a worker whose parent died
ORPHAN_EXIT_STATUS = 70


def _watch(parent_pid: int, interval: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(ORPHAN_EXIT_STATUS)


def watch_parent(parent_pid: int, interval: float = WATCH_INTERVAL) -> None:
    """Worker initializer: end this process as soon as ``parent_pid`` is not its parent.

    Parameters
    ----------
    parent_pid : int
        Pid of the process that created the pool (the run's main process).
    interval : float
        Seconds between two checks.
    """
    if os.getppid() != parent_pid:
        os._exit(ORPHAN_EXIT_STATUS)
    threading.Thread(target=_watch, args=(parent_pid, interval), daemon=True,
                     name="freeness-lab-parent-watch").start()


_ACTIVE_POOLS = 0
_POOLS_GUARD = threading.Lock()


def _release_workers() -> None:
    """Shut joblib's reusable loky executor down, if there is one, and wait for its workers."""
    try:
        from joblib.externals.loky import reusable_executor
    except ImportError:  # pragma: no cover - joblib without its vendored loky
        return
    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


@contextmanager
def worker_pool(n_jobs: int) -> Iterator[joblib.Parallel]:
    """An unordered-generator ``joblib.Parallel`` whose loky workers die with this process.

    Call the pool inside the block. When the last pool of this process leaves its block, the
    reusable loky executor is shut down and its workers are waited for: the next pool starts
    fresh workers (about a second), instead of idle workers lingering for loky's 300 s.

    Parameters
    ----------
    n_jobs : int
        Number of workers (-1: every core).

    Yields
    ------
    joblib.Parallel
        Call it on ``joblib.delayed`` tasks; results come in order of completion.
    """
    global _ACTIVE_POOLS
    with _POOLS_GUARD:
        _ACTIVE_POOLS += 1
    try:
        with joblib.parallel_config(backend="loky", initializer=watch_parent,
                                    initargs=(os.getpid(),)):
            parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        yield parallel
    finally:
        with _POOLS_GUARD:  # held while releasing: no pool can start on a closing executor
            _ACTIVE_POOLS -= 1
            if _ACTIVE_POOLS == 0:
                _release_workers()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[bool]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` in the main thread (as Ctrl-C).

    Only the default action is replaced: outside the main thread, without SIGTERM (not
    POSIX), or when a handler is already installed (e.g. by a cluster launcher) or SIGTERM is
    ignored, nothing changes. The previous handler is restored on exit.

    Yields
    ------
    bool
        Whether the handler was installed.
    """
    sigterm = getattr(signal, "SIGTERM", None)
    install = (sigterm is not None and threading.current_thread() is threading.main_thread()
               and signal.getsignal(sigterm) == signal.SIG_DFL)
    if not install:
        yield False
        return
    signal.signal(sigterm, _interrupt)
    try:
        yield True
    finally:
        signal.signal(sigterm, signal.SIG_DFL)
