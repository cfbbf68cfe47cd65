"""Benchmark of the simulation side: cost per trial of the spectrum of J J^T, peak memory, and
parallel trials without BLAS oversubscription.

Run: ``python benchmarks/bench_simulate.py`` (about 3 minutes on 2 quiet cores;
``--quick`` drops M = 2048 and the M = 4096 memory run).

1. Time per trial of ``jacobian_spectrum`` (streaming) and of
   ``sample_network(...).jacobian_spectrum()`` (stored), ReLU, orthogonal, sigma_w^2 = 2,
   depth 10, M in {256, 1024, 2048}, against the FLOOR timed in the same run: the bare calls a
   trial cannot avoid -- per layer one M x M Gaussian draw and its QR (LAPACK dgeqrf + dorgqr
   in place), the L - 1 matrix products, one values-only SVD (gesdd). A second floor uses the
   plain numpy calls (``numpy.linalg.qr``, ``numpy.linalg.svd``). Median of a few repeats,
   variants interleaved (M = 2048: streaming and floor only, no warm-up). Target:
   streaming / floor <= 1.2.
2. Peak memory of one trial in a fresh subprocess, in units of one M x M float64 matrix:
   tracemalloc peak (numpy buffers) and resident-set growth (peak RSS, reset through
   /proc/self/clear_refs, minus RSS before the trial): streaming at M = 4096, depth 10, and,
   for comparison, streaming and stored at M = 1024.
3. Throughput of 4 trials (M = 1024, depth 10): sequential vs joblib ``n_jobs=2`` with BLAS
   pinned to one thread per worker (``single_blas_thread``).

BLAS threads (``--blas-threads``, sections 1 and 2): by default the library's own count on a
quiet machine, but 1 when the load average already reaches the CPU count -- two OpenBLAS threads
competing with other processes on a shared 2-core machine ran 10-20x slower here and drowned
the ratios (``docs/conventions.md``, "Numerics": BLAS threads). For the same reason section 3
skips its unpinned sequential run on a busy machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import scipy.linalg
from joblib import Parallel, delayed
from scipy.linalg import lapack
from threadpoolctl import threadpool_info, threadpool_limits

from freeness_lab.rng import spawn_generators
from freeness_lab.simulate import jacobian_spectrum, sample_network, single_blas_thread
from freeness_lab.spec import NetworkSpec

DEPTH = 10


def _spec(m: int) -> NetworkSpec:
    return NetworkSpec("relu", "orthogonal", depth=DEPTH, width=m, sigma_w=2**0.5)


def floor_lapack(m: int, gen: np.random.Generator) -> np.ndarray:
    """The unavoidable calls: L x (Gaussian draw + in-place QR), L - 1 products, one SVD."""
    lwork = int(lapack.dgeqrf_lwork(m, m)[0])
    a = None
    for _ in range(DEPTH):
        qr, tau, _, _ = lapack.dgeqrf(gen.standard_normal((m, m)).T, lwork=lwork, overwrite_a=1)
        q, _, _ = lapack.dorgqr(qr, tau, lwork=lwork, overwrite_a=1)
        a = q if a is None else q @ a
    return scipy.linalg.svd(a.T, compute_uv=False, overwrite_a=True, check_finite=False)


def floor_numpy(m: int, gen: np.random.Generator) -> np.ndarray:
    """The same with plain numpy calls."""
    a = None
    for _ in range(DEPTH):
        q, _ = np.linalg.qr(gen.standard_normal((m, m)))
        a = q if a is None else q @ a
    return np.linalg.svd(a, compute_uv=False)


VARIANTS = {
    "streaming jacobian_spectrum": lambda m, gen: jacobian_spectrum(_spec(m), gen),
    "stored sample_network(...)": lambda m, gen: sample_network(_spec(m), gen).jacobian_spectrum(),
    "floor (LAPACK calls)": floor_lapack,
    "floor (numpy.linalg calls)": floor_numpy,
}


LARGE_M = 2048  # from here on: streaming and LAPACK floor only, no warm-up


def time_trials(sizes: list[int], repeats: dict[int, int]) -> None:
    print(f"\n== 1. time per trial, ReLU orthogonal, depth {DEPTH} "
          f"(BLAS threads: {_blas_threads()}) ==")
    print(f"{'M':>6}  {'variant':<30} {'median s':>9}  {'/ floor':>8}  {'/ numpy floor':>13}")
    for m in sizes:
        gen = np.random.default_rng(m)
        variants = {name: fn for name, fn in VARIANTS.items()
                    if m < LARGE_M or name in ("streaming jacobian_spectrum",
                                               "floor (LAPACK calls)")}
        if m < LARGE_M:
            for fn in variants.values():  # warm-up (allocator, BLAS buffers)
                fn(m, gen)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(repeats[m]):
            for name, fn in variants.items():
                t0 = time.perf_counter()
                fn(m, gen)
                times[name].append(time.perf_counter() - t0)
        med = {name: statistics.median(ts) for name, ts in times.items()}
        numpy_floor = med.get("floor (numpy.linalg calls)", float("nan"))
        for name, t in med.items():
            print(f"{m:>6}  {name:<30} {t:>9.3f}  {t / med['floor (LAPACK calls)']:>8.2f}  "
                  f"{t / numpy_floor:>13.2f}")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def _memory_child(path: str, m: int, threads: int | None) -> None:
    """Run in a fresh interpreter: one trial, print peaks in units of M*M*8 bytes as JSON."""
    spec, unit = _spec(m), m * m * 8
    if threads is not None:
        threadpool_limits(threads, user_api="blas")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    base_rss = _status_kib("VmRSS")
    tracemalloc.start()
    t0 = time.perf_counter()
    if path == "streaming":
        jacobian_spectrum(spec, 0)
    else:
        sample_network(spec, 0).jacobian_spectrum()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = (_status_kib("VmHWM") - base_rss) * 1024
    print(json.dumps({"traced": peak / unit, "rss": rss / unit, "seconds": seconds}))


def memory(cases: list[tuple[str, int]], threads: int | None) -> None:
    print(f"\n== 2. peak memory of one trial, depth {DEPTH}, in units of M*M*8 bytes ==")
    print(f"{'path':<10} {'M':>6}  {'tracemalloc peak':>16}  {'RSS growth':>13}  {'s':>7}")
    for path, m in cases:
        cmd = [sys.executable, __file__, "--memory-child", path, str(m)]
        if threads is not None:
            cmd += ["--blas-threads", str(threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{path:<10} {m:>6}  {r['traced']:>16.2f}  {r['rss']:>13.2f}  {r['seconds']:>7.1f}")


def _pinned_trial(m: int, gen: np.random.Generator) -> np.ndarray:
    with single_blas_thread():
        return jacobian_spectrum(_spec(m), gen)


def _timed_sequential(m: int, trials: int) -> tuple[float, list[np.ndarray]]:
    gens = spawn_generators(2024, trials)
    t0 = time.perf_counter()
    spectra = [jacobian_spectrum(_spec(m), g) for g in gens]
    return time.perf_counter() - t0, spectra


def parallel_throughput(m: int, trials: int, busy: bool) -> None:
    print(f"\n== 3. {trials} trials, M = {m}, depth {DEPTH}: sequential vs joblib n_jobs=2 ==")
    with Parallel(n_jobs=2) as pool:
        pool(delayed(_pinned_trial)(64, g) for g in spawn_generators(1, 2))  # start workers
        t0 = time.perf_counter()
        par = pool(delayed(_pinned_trial)(m, g) for g in spawn_generators(2024, trials))
        t_par = time.perf_counter() - t0
    with single_blas_thread():
        t_seq1, seq1 = _timed_sequential(m, trials)
    rows = [("sequential, BLAS pinned to 1", t_seq1)]
    if busy:
        print(f"(sequential with {_blas_threads()} BLAS threads skipped: machine busy, load "
              f"average {os.getloadavg()[0]:.1f} >= {os.cpu_count()} CPUs)")
    else:
        t_seq, seq = _timed_sequential(m, trials)
        rows.insert(0, (f"sequential, BLAS threads {_blas_threads()}", t_seq))
        close = all(np.allclose(a, b, rtol=1e-9) for a, b in zip(par, seq, strict=True))
        print(f"parallel spectra match the default-thread sequential ones: {close} (allclose)")
    rows.append(("joblib n_jobs=2, BLAS pinned to 1 per worker", t_par))
    same = all(np.array_equal(a, b) for a, b in zip(par, seq1, strict=True))
    print(f"parallel spectra equal the pinned sequential ones bitwise: {same}")
    print(f"{'mode':<44} {'s':>7}  {'trials/s':>8}  {'throughput / first row':>22}")
    for name, t in rows:
        print(f"{name:<44} {t:>7.2f}  {trials / t:>8.2f}  {rows[0][1] / t:>22.2f}")


def _blas_threads() -> str:
    return ",".join(sorted({str(i["num_threads"]) for i in threadpool_info()
                            if i["user_api"] == "blas"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip M = 2048 and M = 4096")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="BLAS threads for sections 1 and 2 (default: the library's own "
                             "count, or 1 when the machine is busy)")
    parser.add_argument("--memory-child", nargs=2, metavar=("PATH", "M"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child[0], int(args.memory_child[1]), args.blas_threads)
        return
    sys.stdout.reconfigure(line_buffering=True)
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    busy = os.getloadavg()[0] >= (os.cpu_count() or 1)
    threads = args.blas_threads if args.blas_threads is not None else (1 if busy else None)
    sizes = [256, 1024] if args.quick else [256, 1024, LARGE_M]
    with threadpool_limits(threads, user_api="blas"):
        time_trials(sizes, repeats={256: 7, 1024: 3, LARGE_M: 3})
    cases = [("streaming", 1024), ("stored", 1024)]
    memory(cases if args.quick else [*cases, ("streaming", 4096)], threads)
    parallel_throughput(1024, trials=4, busy=busy)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (timings on a shared machine "
          f"drift; ratios compare variants timed in the same run)")


if __name__ == "__main__":
    main()
