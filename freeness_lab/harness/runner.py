"""Execute the cells of a run in parallel, write each finished cell atomically, resume.

One place parallelises (``docs/conventions.md`` section 4): a flat joblib pool over the tasks of all
unfinished cells (a task is one trial of a cell), with
BLAS pinned to one thread in every worker and in the sequential path alike -- so that n_jobs
changes the wall time and nothing else. Each task seeds itself from its own
:meth:`~freeness_lab.harness.cells.Cell.seed_sequence`, hence identical tables for any n_jobs
and any order of completion. A cell is written (:func:`~freeness_lab.harness.storage.write_cell`)
as soon as its last task returns; a re-run skips the finished cells (folder with a matching
manifest, :func:`~freeness_lab.harness.storage.verify_cell`) and appends one line per newly
computed cell to ``computed_cells.log``. A damaged cell folder is reported in one warning line,
moved aside to ``cells/damaged-<key>`` and recomputed.

Robustness (:mod:`freeness_lab.harness.workers`, :mod:`freeness_lab.harness.locking`): the run
holds the run folder's lock (a second run into it raises
:class:`~freeness_lab.harness.locking.RunFolderBusy`); workers exit by themselves when the main
process dies (even by SIGKILL) and are shut down at the end of the run; SIGTERM stops a run
like Ctrl-C (``KeyboardInterrupt``, finished cells kept).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from freeness_lab.harness import storage
from freeness_lab.harness.cells import Cell
from freeness_lab.harness.locking import run_folder_lock
from freeness_lab.harness.studies import STUDIES
from freeness_lab.harness.studies.base import Columns
from freeness_lab.harness.theory_side import install_laws, law_key, solved_laws
from freeness_lab.harness.workers import sigterm_as_interrupt, worker_pool
from freeness_lab.simulate import single_blas_thread
from freeness_lab.theory import limits

log = logging.getLogger(__name__)

#: one line per cell computed (not reused) by any run in this folder
COMPUTED_LOG = "computed_cells.log"

Task = tuple[Cell, tuple[int, ...]]
#: (cell key, trials, task output)
Result = tuple[str, tuple[int, ...], Any]


def run_task(cell: Cell, trials: tuple[int, ...]) -> dict[str, list[Columns]]:
    """The trials of one task of a cell: the study's per-trial columns, each with its
    ``trial`` and ``spawn_key`` in front (:attr:`~freeness_lab.harness.studies.base.Study.
    trial`)."""
    study = STUDIES[cell.study]
    params = dict(cell.params)
    parts: dict[str, list[Columns]] = {}
    for t in trials:
        for name, cols in study.trial(cell.spec, cell.seed_sequence(t), params).items():
            cols = {"trial": t, "spawn_key": ",".join(map(str, cell.spawn_key(t))), **cols}
            parts.setdefault(name, []).append(cols)
    return parts


def cell_tasks(cell: Cell) -> list[tuple[int, ...]]:
    """A cell's tasks: one per trial."""
    return [(t,) for t in range(cell.trials)]


_PINNED: list[Any] = []


def _pin_worker_blas() -> None:
    """Pin BLAS to one thread for the pool worker's lifetime."""
    if not _PINNED:
        _PINNED.append(threadpool_limits(limits=1, user_api="blas"))


def _run_in_worker(cell: Cell, trials: tuple[int, ...], laws: dict | None = None
                   ) -> tuple[str, tuple[int, ...], Any]:
    """Task body in a pool worker: pin BLAS to one thread for the worker's lifetime, and build
    the limit laws on the supports the main process sent (:func:`task_laws`)."""
    _pin_worker_blas()
    if laws:
        install_laws(laws)
    return cell.key, trials, run_task(cell, trials)


def _certify_in_worker(spec, matrix: str) -> dict:
    """:func:`~freeness_lab.harness.theory_side.solved_laws` of one limit law, in a pool
    worker (BLAS pinned as for the trials)."""
    _pin_worker_blas()
    return solved_laws(spec, (matrix,))


def task_laws(tasks: list[Task], parallel: joblib.Parallel) -> list[dict]:
    """Per task, the limit laws its trials compare with (:attr:`~freeness_lab.harness.
    studies.base.Study.limit_laws`), each certified once, by the pool's workers in parallel
    before any trial starts (a ReLU law takes 0.1-0.6 s, a tanh law seconds: the main
    process certified them one after the other before the pool started), their supports
    sent with the tasks (:func:`~freeness_lab.harness.theory_side.solved_laws`) so that no
    worker certifies them again, and installed here too (the report reads them). A law
    whose factory, as this process sees it, is not :mod:`freeness_lab.theory.limits`' (a
    test's replaced theory) is not taken: this process builds its own, as the workers do
    without it."""
    wanted = []
    unique: dict[tuple[Any, Any], tuple[Any, str]] = {}
    for cell, trials in tasks:
        matrices = STUDIES[cell.study].limit_laws(cell.spec, dict(cell.params), trials)
        keys = [law_key(cell.spec, m) for m in matrices]
        for key, m in zip(keys, matrices, strict=True):
            unique.setdefault(key, (cell.spec, m))
        wanted.append(keys)
    certified: dict = {}
    if unique:
        for part in parallel(joblib.delayed(_certify_in_worker)(spec, m)
                             for spec, m in unique.values()):
            certified.update({k: v for k, v in part.items()
                              if getattr(k[0], "__module__", None) == limits.__name__})
    install_laws(certified)
    return [{k: certified[k] for k in keys if k in certified} for keys in wanted]


def _concat_columns(chunks: list[Columns]) -> dict[str, Any]:
    """Concatenate column dicts; scalar entries are repeated to the chunk's length."""
    out: dict[str, list[Any]] = {}
    for chunk in chunks:
        n = max(len(v) for v in chunk.values() if not np.isscalar(v))
        for k, v in chunk.items():
            out.setdefault(k, []).append(np.repeat(v, n) if np.isscalar(v) else np.asarray(v))
    return {k: np.concatenate(v) for k, v in out.items()}


def _cell_tables(cell: Cell, parts: list[dict[str, list[Columns]]]) -> dict[str, pd.DataFrame]:
    """Assemble a cell's tables: label columns, then the task columns in trial order."""
    label = {**cell.label(), "seed": cell.entropy}
    chunks: dict[str, list[Columns]] = {}
    for part in parts:
        for name, cols in part.items():
            chunks.setdefault(name, []).extend(cols)
    tables = {}
    for name, cols in chunks.items():
        data = _concat_columns(cols)
        n = len(next(iter(data.values())))
        tables[name] = pd.DataFrame({**{k: np.repeat(v, n) for k, v in label.items()}, **data})
    return tables


@dataclass(frozen=True)
class RunStats:
    """How a run went: cells in the plan, newly computed, reused from a previous run.

    ``damaged`` counts the cell folders found damaged, moved aside and (unless
    ``max_new_cells`` stopped the run first) recomputed.
    """

    total: int
    computed: int
    reused: int
    damaged: int = 0

    @property
    def complete(self) -> bool:
        """True when every cell of the plan is finished."""
        return self.computed + self.reused == self.total


def _results(tasks: list[Task], n_jobs: int) -> Generator[Result, None, None]:
    if joblib.effective_n_jobs(n_jobs) == 1:
        with single_blas_thread():
            for cell, trials in tasks:
                yield cell.key, trials, run_task(cell, trials)
        return
    with worker_pool(n_jobs) as parallel:
        laws = task_laws(tasks, parallel)
        yield from parallel(joblib.delayed(_run_in_worker)(c, t, law)
                            for (c, t), law in zip(tasks, laws, strict=True))


@contextmanager
def _closing_quietly(results: Generator[Any, None, None]
                     ) -> Iterator[Generator[Any, None, None]]:
    """Close the results generator on exit, silencing joblib's "tasks cancelled" warning.

    Closing aborts the pool at once when the caller stops early (an exception, Ctrl-C): the
    exception is what the user must see, in one line.
    """
    try:
        yield results
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.close()


def _unfinished(cells: list[Cell], out_dir: Path) -> tuple[list[Cell], int]:
    """The cells still to compute, and how many of them were found damaged.

    A damaged cell folder is reported in one warning line and moved aside.
    """
    todo, damaged = [], 0
    for cell in cells:
        try:
            if storage.verify_cell(out_dir, cell.key):
                continue
        except storage.CellDamaged as err:
            aside = storage.discard_cell(out_dir, cell.key)
            log.warning("%s; moved to %s, recomputing it", err, aside.relative_to(out_dir))
            damaged += 1
        todo.append(cell)
    return todo, damaged


def run_cells(cells: Iterable[Cell], out_dir: Path | str, *, n_jobs: int = 1,
              progress: bool = False, max_new_cells: int | None = None) -> RunStats:
    """Compute every unfinished cell and write it into ``out_dir/cells``.

    Parameters
    ----------
    cells : iterable of Cell
        The plan (:func:`~freeness_lab.harness.cells.plan_cells`).
    out_dir : path
        The run folder.
    n_jobs : int
        joblib workers (-1: every core). Does not change any number.
    progress : bool
        Show a tqdm progress bar over tasks.
    max_new_cells : int, optional
        Compute at most this many unfinished cells, then return (re-run to continue).

    Returns
    -------
    RunStats

    Raises
    ------
    RunFolderBusy
        At once, when another run holds ``out_dir`` (:mod:`~freeness_lab.harness.locking`).
    KeyboardInterrupt
        On Ctrl-C, and on SIGTERM while the run is in progress: the finished cells are kept,
        the workers are gone, re-running resumes.
    """
    out_dir = Path(out_dir)
    cells = list(cells)
    with run_folder_lock(out_dir), sigterm_as_interrupt():
        return _run_locked(cells, out_dir, n_jobs=n_jobs, progress=progress,
                           max_new_cells=max_new_cells)


def _run_locked(cells: list[Cell], out_dir: Path, *, n_jobs: int, progress: bool,
                max_new_cells: int | None) -> RunStats:
    """:func:`run_cells` once the run folder is locked."""
    storage.remove_stale_temporaries(out_dir)
    todo, damaged = _unfinished(cells, out_dir)
    reused = len(cells) - len(todo)
    if max_new_cells is not None:
        todo = todo[:max_new_cells]
    tasks = [(c, trials) for c in todo for trials in cell_tasks(c)]
    pending = {c.key: len(cell_tasks(c)) for c in todo}
    by_key = {c.key: c for c in todo}
    parts: dict[str, list[tuple[tuple[int, ...], Any]]] = {k: [] for k in pending}
    computed = 0
    bar = tqdm(total=len(tasks), desc="trials", unit="task", disable=not progress or not tasks,
               leave=False)
    with bar, _closing_quietly(_results(tasks, n_jobs)) as results:
        for key, trials, result in results:
            bar.update(1)
            parts[key].append((trials, result))
            pending[key] -= 1
            if pending[key]:
                continue
            ordered = [r for _, r in sorted(parts.pop(key), key=lambda p: p[0])]
            storage.write_cell(out_dir, key, _cell_tables(by_key[key], ordered))
            with open(out_dir / COMPUTED_LOG, "a") as fh:
                fh.write(key + "\n")
            computed += 1
            log.debug("cell %s computed (%d/%d new)", key, computed, len(todo))
    return RunStats(total=len(cells), computed=computed, reused=reused, damaged=damaged)
