"""Benchmark of the paired laws: ``python benchmarks/bench_paired.py [M ...]``.

A *paired* law is the limit law built from one sampled network's own D_l^2 = phi'(h_l)^2
(a DiscreteLaw of M atoms of mass 1/M per layer, depth 3):

* ``J J^T``: free_product(D_1^2, D_2^2, D_3^2, w, w, w), w = delta(sigma_w^2) (orthogonal)
  or MarchenkoPastur(1, sigma_w^2) (Gaussian);
* ``H_L``: ShiftChainLaw(qhat_0, [ShiftLayer((D_l^2, w), qhat_l)]), qhat_l = mean x_l^2.

Each is timed from construction to the cdf at the M sorted Monte Carlo eigenvalues plus 9
quantiles (support, atoms, quadrature included). The baseline, measured in the same run, is
the trial's own Monte Carlo spectra ``net.jacobian_spectrum()`` + ``net.fim_dual_spectrum()``;
``ratio`` is theory time / Monte Carlo time, ``KS`` the Kolmogorov distance of the Monte
Carlo spectrum to the law (~1/M when the law is right).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from freeness_lab import NetworkSpec
from freeness_lab.simulate import sample_network
from freeness_lab.theory import (
    DiscreteLaw,
    Factor,
    MarchenkoPastur,
    ShiftChainLaw,
    ShiftLayer,
    delta,
    free_product,
)

#: (activation, weights, sigma_w)
CASES = [("tanh", "orthogonal", 1.1), ("tanh", "gaussian", 1.1),
         ("relu", "orthogonal", 2**0.5)]
#: quantile levels asked of every law
LEVELS = np.linspace(0.1, 0.9, 9)


def _zeroed(eigs: np.ndarray) -> np.ndarray:
    """The sorted spectrum with the rounded zeros (|x| < 1e-10 max |x|: the kernel of a ReLU
    Jacobian, computed as +-1e-16) set to 0, where the law's atom is."""
    x = np.sort(eigs)
    return np.where(np.abs(x) < 1e-10 * max(float(np.abs(x).max()), 1e-300), 0.0, x)


def _ks(eigs: np.ndarray, cdf: np.ndarray) -> float:
    """Kolmogorov distance of the empirical law of the sorted sample to the law's cdf, at the
    sample points (right limits: ties, e.g. the zeros, count once)."""
    empirical = np.searchsorted(eigs, eigs, side="right") / len(eigs)
    return float(np.max(np.abs(empirical - cdf)))


def _paired(net, spec: NetworkSpec, eigs: np.ndarray, kind: str) -> tuple[float, float]:
    """(seconds, KS) of the paired J J^T (``kind`` "J") or H_L (``kind`` "H") law."""
    M = spec.width
    sw2 = spec.sigma_w**2
    w = delta(sw2) if spec.weights == "orthogonal" else MarchenkoPastur(1.0, sw2)
    t = time.perf_counter()
    d2 = [DiscreteLaw(d**2, np.full(M, 1.0 / M)) for d in net.derivatives]
    if kind == "J":
        law = free_product(*d2, *([w] * len(d2)))
    else:
        qhat = [float(np.mean(x**2)) for x in net.activations]
        law = ShiftChainLaw(qhat[0], [ShiftLayer((Factor(d2[l - 1]), Factor(w)), qhat[l])
                                      for l in range(1, len(d2))])
    cdf = law.cdf(eigs)
    law.quantile(LEVELS)
    return time.perf_counter() - t, _ks(eigs, cdf)


def main(sizes: list[int]) -> None:
    print(f"{'case':<22}{'M':>6}{'MC s':>8}{'J s':>8}{'H s':>8}{'ratio':>8}"
          f"{'KS J':>8}{'KS H':>8}")
    for act, weights, sw in CASES:
        for M in sizes:
            spec = NetworkSpec(act, weights, depth=3, width=M, sigma_w=sw, sigma_b=0.05)
            net = sample_network(spec, np.random.default_rng(1))
            t = time.perf_counter()
            e, h = net.jacobian_spectrum(), net.fim_dual_spectrum()
            t_mc = time.perf_counter() - t
            e, h = _zeroed(e), _zeroed(h)
            t_j, ks_j = _paired(net, spec, e, "J")
            t_h, ks_h = _paired(net, spec, h, "H")
            print(f"{act + ' ' + weights:<22}{M:>6}{t_mc:>8.2f}{t_j:>8.2f}{t_h:>8.2f}"
                  f"{(t_j + t_h) / t_mc:>8.2f}{ks_j:>8.4f}{ks_h:>8.4f}", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [256, 512, 1024])
