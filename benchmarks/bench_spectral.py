"""Spectral-check benchmark: its cost per trial against the trial's own Monte Carlo, and the
default study's wall time with and without it.

Run: ``python benchmarks/bench_spectral.py`` (a few minutes on 2 cores).

1. Per trial, depth 3, near criticality (tanh sigma_w 1.1, sigma_b 0.05; ReLU sigma_w^2 = 2),
   orthogonal and Gaussian weights, M = 256, 512, 1024: the Monte Carlo of one trial
   (sampling, the Jacobian, both spectra) is the baseline; against it the spectral check of
   that trial (:func:`freeness_lab.harness.spectral_check.trial_rows`, the limit laws already
   solved, as in every trial but a worker's first) and its parts: the paired J J^T and H_L
   laws solved at the trial's eigenvalues (target: at most the Monte Carlo) by contour
   integrals (the check's path) and, for comparison, through their certified support and
   quadrature (the former path), the cyclic control, the classical product.
2. The default study (``freeness-lab`` with no argument: ReLU, both ensembles, M = 64..256)
   run by :func:`freeness_lab.harness.experiment.run_experiment` with n_jobs = 2 in a fresh
   folder, with ``experiment.spectral_trials`` 4 (its default) and 0 (target ratio <= 1.3):
   each run in a fresh process (timed from the call, imports excluded), as the command line
   runs it -- in one process the second run would find the limit laws solved by the first
   (:func:`freeness_lab.harness.theory_side.limit_law` keeps them) -- alternately,
   ``REPEATS`` times each, the minimum reported (the machine is shared).
BLAS pinned to one thread in part 1, as in the harness's trials.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from freeness_lab import NetworkSpec
from freeness_lab.harness.spectral_check import trial_rows
from freeness_lab.harness.spectral_distance import compare, noise_floor
from freeness_lab.harness.spectral_references import (
    CONTROL_CDF_TOL,
    PAIRED_CDF_TOL,
    classical_law,
    limit_law,
    paired_law,
)
from freeness_lab.simulate import sample_network, single_blas_thread

CASES = (("tanh", "orthogonal", 1.1, 0.05), ("tanh", "gaussian", 1.1, 0.05),
         ("relu", "orthogonal", 2**0.5, 0.0), ("relu", "gaussian", 2**0.5, 0.0))
WIDTHS = (256, 512, 1024)


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _monte_carlo(spec: NetworkSpec, seed: np.random.SeedSequence):
    net = sample_network(spec, np.random.default_rng(seed))
    return net, {"JJT": net.jacobian_spectrum(), "H_L": net.fim_dual_spectrum(False)}


def _paired(eigs: np.ndarray, net, matrix: str, weights: str | None = None,
            tol: float | None = None, certified: bool = False, control: bool = False):
    """The paired comparison as the check makes it (contour integrals at the eigenvalues), or
    through the law's certified support and quadrature (``certified``, the former path);
    ``control``: as the check compares the cyclic control (its distances only)."""
    m, depth = net.spec.width, net.spec.depth
    law = paired_law(net, matrix, False, weights, tol)
    if certified:
        law = law.law
        getattr(law, "inner", law).mass_tol = law_tol(m, tol)
    if control:
        return compare(eigs, law, noise_floor(eigs, m, depth), levels=(), top=False)
    return compare(eigs, law, noise_floor(eigs, m, depth))


def law_tol(m: int, tol: float | None) -> float:
    """The certified path's mass tolerance: the cdf tolerance of the check."""
    return PAIRED_CDF_TOL / m if tol is None else tol


def _classical(eigs: np.ndarray, net, seed: np.random.SeedSequence):
    return compare(eigs, classical_law(net, seed), noise_floor(eigs, net.spec.width, 3))


def per_trial() -> None:
    print("1. one trial: Monte Carlo vs the spectral check (limit laws warm), seconds")
    print(f"{'case':>22} {'M':>5} {'MC':>7} {'check':>7} {'ratio':>6} {'paired J+H':>10} "
          f"{'ratio':>6} {'certified':>9} {'ratio':>6} {'cyclic':>7} {'classical':>9}")
    for act, ens, sw, sb in CASES:
        for m in WIDTHS:
            spec = NetworkSpec(act, ens, depth=3, width=m, sigma_w=sw, sigma_b=sb)
            seed = np.random.SeedSequence(0, spawn_key=(m,))
            with single_blas_thread():
                for matrix in ("JJT", "H_L"):  # warm: solved once per process
                    limit_law(spec, matrix).cdf(np.array([1.0]))

                (net, spectra), t_mc = _timed(_monte_carlo, spec, seed)
                t_check = _timed(trial_rows, net, spectra, seed, False)[1]
                t_paired = sum(_timed(_paired, eigs, net, matrix)[1]
                               for matrix, eigs in spectra.items())
                t_cert = sum(_timed(_paired, eigs, net, matrix, None, None, True)[1]
                             for matrix, eigs in spectra.items())
                cyc = net.permuted()
                t_cyc = _timed(_paired, cyc.jacobian_spectrum(), cyc, "JJT", "orthogonal",
                               CONTROL_CDF_TOL, False, True)[1]
                t_cl = _timed(_classical, spectra["JJT"], net, seed)[1]
            print(f"{act + ' ' + ens:>22} {m:>5} {t_mc:>7.3f} {t_check:>7.3f} "
                  f"{t_check / t_mc:>5.1f}x {t_paired:>10.3f} {t_paired / t_mc:>5.1f}x "
                  f"{t_cert:>9.3f} {t_cert / t_mc:>5.1f}x {t_cyc:>7.3f} {t_cl:>9.3f}")


#: runs of each configuration in part 2 (the minimum is reported)
REPEATS = 3
#: one run of the default study in a fresh process: prints its wall time (imports excluded)
_RUN = """
import sys, tempfile, time
from pathlib import Path
from hydra import compose, initialize_config_dir
from freeness_lab.harness.app import config_dir, register_resolvers
from freeness_lab.harness.config import validate_config
from freeness_lab.harness.experiment import run_experiment
register_resolvers()
with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
    cfg = compose(config_name="config", overrides=sys.argv[1:])
run = validate_config(cfg)
with tempfile.TemporaryDirectory() as d:
    t0 = time.perf_counter()
    run_experiment(run, Path(d))
    print(time.perf_counter() - t0)
"""


def default_study() -> None:
    print(f"\n2. the default study, n_jobs = 2, fresh folder and process, min of {REPEATS}")
    times: dict[int, list[float]] = {0: [], 4: []}
    for _ in range(REPEATS):
        for flag in times:
            out = subprocess.run([sys.executable, "-c", _RUN, f"experiment.spectral_trials={flag}",
                                  "n_jobs=2", "progress=false"], check=True,
                                 capture_output=True, text=True).stdout
            times[flag].append(float(out.split()[-1]))
    for flag, t in times.items():
        print(f"  spectral_trials={flag}: {min(t):7.1f} s  (runs: "
              f"{', '.join(f'{v:.1f}' for v in t)})")
    print(f"  ratio with / without: {min(times[4]) / min(times[0]):.2f}x (target <= 1.3)")


if __name__ == "__main__":
    per_trial()
    default_study()
