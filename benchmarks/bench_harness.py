"""Harness benchmark: parallel efficiency of a sweep, and harness overhead per cell.

Run: ``python benchmarks/bench_harness.py`` (about 2 minutes on 2 cores).

1. Parallel efficiency: the same ``spectrum`` sweep (two ensembles x widths, trials per cell)
   through :func:`freeness_lab.harness.runner.run_cells` with n_jobs = 1 and n_jobs = 2, each in
   a fresh folder; speed-up = t(1) / t(2) (target >= 1.7 on 2 cores), with the worker pool
   already started (its start-up, paid once per run, is printed separately).
2. Overhead: the bare computation -- a plain loop calling
   :func:`freeness_lab.harness.spectrum.spectrum_trial` for every (cell, trial) with BLAS pinned
   to one thread -- against ``run_cells(n_jobs=1)`` on the same cells (seeding, assembling the
   tidy tables, atomic parquet writes, the resume bookkeeping); overhead per cell =
   (t_harness - t_bare) / cells, also as a percentage of the bare time (target < 5 %).
Median of a few repeats.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from joblib.externals.loky import get_reusable_executor

from freeness_lab.harness.cells import plan_cells
from freeness_lab.harness.config import validate_config
from freeness_lab.harness.runner import run_cells
from freeness_lab.harness.spectrum import spectrum_trial
from freeness_lab.simulate import single_blas_thread

REPEATS = 3


def _config(widths: list[int], trials: int):
    return validate_config({"network": {"depth": 3},
                            "sweep": {"widths": widths, "trials": trials,
                                      "axes": {"weights": ["orthogonal", "gaussian"]}},
                            "experiment": {"studies": ["spectrum"], "eigenvalues": True,
                                           "spectral_trials": 0},
                            "progress": False})


def _time_harness(cells, n_jobs: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        stats = run_cells(cells, Path(d), n_jobs=n_jobs)
        elapsed = time.perf_counter() - t0
    assert stats.computed == len(cells)
    return elapsed


def _time_bare(cells) -> float:
    t0 = time.perf_counter()
    with single_blas_thread():
        for c in cells:
            params = dict(c.params)
            for t in range(c.trials):
                spectrum_trial(c.spec, c.seed_sequence(t), params)
    return time.perf_counter() - t0


def _pool_startup() -> float:
    """Time to start two loky workers and run one tiny cell set (paid once per run)."""
    get_reusable_executor().shutdown(wait=True)
    cells = plan_cells(_config([8], 2))
    return _time_harness(cells, 2)


def main() -> None:
    print(f"worker pool start-up (paid once per run): {_pool_startup():.2f} s\n")
    print("1. parallel efficiency (spectrum sweep, 2 ensembles, depth 3, warm pool)")
    print(f"{'widths':>22} {'tasks':>6} {'n_jobs=1 s':>11} {'n_jobs=2 s':>11} {'speed-up':>9}")
    for widths, trials in (([128, 256], 16), ([256, 384, 512], 8)):
        cells = plan_cells(_config(widths, trials))
        t1 = statistics.median(_time_harness(cells, 1) for _ in range(REPEATS))
        t2 = statistics.median(_time_harness(cells, 2) for _ in range(REPEATS))
        print(f"{str(widths):>22} {len(cells) * trials:>6} {t1:>11.3f} {t2:>11.3f} "
              f"{t1 / t2:>8.2f}x")
    print("\n2. harness overhead per cell vs the bare computation (n_jobs=1)")
    print(f"{'widths':>22} {'cells':>6} {'bare s':>9} {'harness s':>10} {'per cell ms':>12} "
          f"{'overhead':>9}")
    for widths, trials in (([64, 128], 8), ([256, 384], 8), ([512], 4)):
        cells = plan_cells(_config(widths, trials))
        bare = statistics.median(_time_bare(cells) for _ in range(REPEATS))
        harness = statistics.median(_time_harness(cells, 1) for _ in range(REPEATS))
        per_cell = (harness - bare) / len(cells)
        print(f"{str(widths):>22} {len(cells):>6} {bare:>9.3f} {harness:>10.3f} "
              f"{1e3 * per_cell:>12.2f} {100 * (harness - bare) / bare:>8.1f}%")


if __name__ == "__main__":
    main()
