"""Support benchmark: the certified support of a law against a 1000-point density call of it.

Run: ``python benchmarks/bench_support.py`` (about two minutes on 2 cores).

For each law (limit laws of J J^T and H_L, and paired laws: the free products of one sampled
network's own D_l^2 laws), times in one run, CPU seconds of this process:

* ``scan+bisect``: the support scan and the bisection of its edges
  (:func:`freeness_lab.theory.density.support.bisected_intervals`);
* ``certified``: the whole certified support -- scan, bisection, edge fits, the support
  quadrature, and where its mass is off the contour masses, rescans and adaptive panels
  (:attr:`~freeness_lab.theory.density.solved.SolvedLaw.certified_support`, a fresh law);
* ``density``: a 1000-point density call on the support, once the support is known -- the
  baseline (issue 14: "support and edges at the cost of a few density calls");

with the ratios to the density call, the number of components, the certification rounds and
the mass defect of the quadrature.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from freeness_lab import NetworkSpec
from freeness_lab.harness.spectral_references import paired_law
from freeness_lab.simulate import sample_network, single_blas_thread
from freeness_lab.theory import fim_dual_law, jacobian_law
from freeness_lab.theory.density.support import bisected_intervals

LIMIT = [("relu", "gaussian", 5, 2**0.5, 0.0, "J"), ("relu", "orthogonal", 3, 2**0.5, 0.0, "H"),
         ("tanh", "orthogonal", 3, 1.1, 0.05, "J"), ("tanh", "orthogonal", 10, 1.05, 0.05, "J"),
         ("erf", "gaussian", 3, 1.0, 0.05, "J"), ("gelu", "orthogonal", 3, 1.6, 0.1, "J")]
PAIRED = [("relu", "orthogonal", 256, "JJT"), ("relu", "orthogonal", 256, "H_L"),
          ("tanh", "orthogonal", 1024, "JJT"), ("tanh", "orthogonal", 1024, "H_L"),
          ("tanh", "gaussian", 1024, "H_L")]


def _cpu(fn):
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


def _limit(act: str, ens: str, depth: int, sw: float, sb: float, mat: str):
    spec = NetworkSpec(act, ens, depth=depth, width=1, sigma_w=sw, sigma_b=sb)
    return lambda: (jacobian_law if mat == "J" else fim_dual_law)(spec)


def _paired(act: str, ens: str, m: int, matrix: str):
    sw, sb = (1.1, 0.05) if act != "relu" else (2**0.5, 0.0)
    spec = NetworkSpec(act, ens, depth=3, width=m, sigma_w=sw, sigma_b=sb)
    with single_blas_thread():
        net = sample_network(spec, np.random.default_rng(np.random.SeedSequence(0, spawn_key=(m,))))
    return lambda: paired_law(net, matrix, False)


def row(name: str, build) -> None:
    law = build()
    law.moments(24)
    _, t_scan = _cpu(lambda: bisected_intervals(law))
    law = build()
    law.moments(24)
    support, t_cert = _cpu(lambda: law.certified_support)
    lo, hi = law.support()
    x = np.linspace(lo, hi, 1002)[1:-1]
    _, t_dens = _cpu(lambda: law.density(x))
    print(f"{name:28s} {t_scan:8.2f} {t_cert:9.2f} {t_dens:8.3f} {t_scan / t_dens:7.1f}x "
          f"{t_cert / t_dens:7.1f}x {len(support.intervals):5d} {support.refined:6d} "
          f"{support.mass_defect:+10.1e}", flush=True)


def main() -> None:
    warnings.simplefilter("ignore", RuntimeWarning)
    print(f"{'law':28s} {'scan+bis':>8s} {'certified':>9s} {'density':>8s} {'scan/d':>8s} "
          f"{'cert/d':>8s} {'comps':>5s} {'rounds':>6s} {'mass defect':>10s}")
    for act, ens, depth, sw, sb, mat in LIMIT:
        row(f"{act} {ens[:5]} {mat}{depth}", _limit(act, ens, depth, sw, sb, mat))
    for act, ens, m, matrix in PAIRED:
        row(f"paired {act} {ens[:5]} {matrix} M={m}", _paired(act, ens, m, matrix))


if __name__ == "__main__":
    main()
