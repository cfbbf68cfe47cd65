"""One run at a time per run folder: an exclusive ``flock`` on ``<out_dir>/.freeness-lab.lock``.

:func:`run_folder_lock` is held for the whole of a run (cells, tables, reports). A second run
into the same folder does not wait: it raises :class:`RunFolderBusy` at once, whose message is
one line naming the folder and the holder's pid. Holding the lock is what makes the start-up
clean-up of temporaries safe (no live run can own them).

The lock is re-entrant within one thread (:func:`~freeness_lab.harness.experiment.run_experiment`
holds it and :func:`~freeness_lab.harness.runner.run_cells` takes it again); another thread of
the same process is refused like another process. The kernel drops the lock when its holder
dies, even by SIGKILL, so a stale lock file never blocks a re-run. Where ``fcntl`` is missing
(not POSIX) the run proceeds unlocked; where the file system refuses locks, it proceeds with
a warning.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: name of the lock file inside a run folder (it is never deleted: deleting races the lock)
LOCK_FILE = ".freeness-lab.lock"


class RunFolderBusy(RuntimeError):
    """Another live run holds the lock of this run folder (the message is one line)."""


@dataclass
class _Held:
    thread: int
    fd: int | None
    depth: int = 1


_HELD: dict[Path, _Held] = {}
_HELD_GUARD = threading.Lock()


def _holder_pid(fd: int) -> str:
    """The pid written into the lock file by its holder ('?' when unreadable)."""
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return "?"
    return text if text.isdigit() else "?"


def _busy(out_dir: Path, pid: str) -> RunFolderBusy:
    return RunFolderBusy(f"run folder {out_dir} is busy: another run (pid {pid}) is writing "
                         f"into it; re-run the same command when it has finished")


def _acquire(out_dir: Path) -> int | None:
    """Open and lock the folder's lock file without waiting; the fd, or None when unlockable."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return None
    fd = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder_pid(fd)
        os.close(fd)
        raise _busy(out_dir, pid) from None
    except OSError as err:  # e.g. a network file system without flock
        os.close(fd)
        log.warning("cannot lock %s (%s); concurrent runs into it are not detected",
                    out_dir, err.strerror or err)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@contextmanager
def run_folder_lock(out_dir: Path | str) -> Iterator[Path]:
    """Hold the exclusive lock of a run folder for the duration of the ``with`` block.

    Parameters
    ----------
    out_dir : path
        The run folder (created if needed).

    Yields
    ------
    Path
        The lock file.

    Raises
    ------
    RunFolderBusy
        At once, when another process (or another thread of this one) holds the lock: the
        second run does not wait, it says in one line that the folder is busy.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ident = out_dir.resolve()
    me = threading.get_ident()
    with _HELD_GUARD:
        held = _HELD.get(ident)
        if held is not None and held.thread != me:
            raise _busy(out_dir, f"{os.getpid()}, another thread")
        if held is None:
            held = _HELD[ident] = _Held(thread=me, fd=_acquire(out_dir), depth=0)
        held.depth += 1
    try:
        yield out_dir / LOCK_FILE
    finally:
        with _HELD_GUARD:
            held.depth -= 1
            if held.depth == 0:
                del _HELD[ident]
                if held.fd is not None:
                    os.close(held.fd)  # closing the only fd releases the flock
