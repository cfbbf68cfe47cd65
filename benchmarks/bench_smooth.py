"""Smooth activations against ReLU: ``python benchmarks/bench_smooth.py [--deep] [names...]``.

Three tables, each with its baseline timed in the same run (issue 14's targets):

1. **End to end.** For each smooth activation, both ensembles, depths 3 and 10 (and 50 with
   ``--deep``), near criticality (sigma_b = 0.1; sigma_w critical where there is one, else
   1.6), a fresh J J^T law is taken from spec to a 1000-point density: law, certified
   support, density on 1000 points across it. Timed twice:

   * ``fit``: psi of every law of phi'(h)^2 through its certified rational fit
     (:class:`~freeness_lab.theory.newton.rational_rule.RationalRule`, the default, with the
     levels about 0 and all layers stacked);
   * ``rule``: through the contour rule itself (``smooth_d2.RATIONAL_FIT = False``, the
     reference the fits are tested against).

   Baseline: ReLU with Gaussian weights, depth 5, the same pipeline. Columns: seconds for
   each path, rule / fit, fit / ReLU, and max |rho_fit - rho_rule| / max rho_rule.
2. **Series moments at depth 1000** (m_1..m_6 of a fresh law, orthogonal weights) against
   ReLU orthogonal at depth 1000.
3. **The lower tail.** The density of erf and tanh, orthogonal, depth 16, at 1000 points of
   [1e-300, 1e-100] (the law's mass there is below 1e-20) against 1000 points of its bulk,
   per point.

Pass activation names to restrict table 1, e.g. ``tanh gelu``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from freeness_lab import NetworkSpec
from freeness_lab.theory import jacobian_law
from freeness_lab.theory.laws import smooth_d2
from freeness_lab.theory.meanfield import MeanFieldError, critical_sigma_w

SMOOTH = ("tanh", "erf", "sigmoid", "silu", "gelu")
SIGMA_B = 0.1


def end_to_end(spec: NetworkSpec) -> tuple[float, np.ndarray]:
    """(seconds, density) from a fresh law to its density at 1000 points of its support."""
    t0 = time.perf_counter()
    law = jacobian_law(spec)
    lo, hi = law.support()
    rho = law.density(np.linspace(lo, hi, 1002)[1:-1])
    return time.perf_counter() - t0, rho


def sigma_w(activation: str) -> float:
    try:
        return critical_sigma_w(activation, SIGMA_B)[0]
    except MeanFieldError:
        return 1.6


def spec_of(activation: str, weights: str, depth: int) -> NetworkSpec:
    if activation == "relu":
        return NetworkSpec("relu", weights, depth=depth, width=1, sigma_w=2**0.5, sigma_b=0.0)
    return NetworkSpec(activation, weights, depth=depth, width=1, sigma_w=sigma_w(activation),
                       sigma_b=SIGMA_B)


def end_to_end_table(names: list[str], depths: tuple[int, ...]) -> None:
    t_relu = min(end_to_end(spec_of("relu", "gaussian", 5))[0] for _ in range(3))
    print(f"baseline ReLU Gaussian depth 5: {t_relu:.3f} s")
    print(f"{'case':<26}{'fit':>9}{'rule':>9}{'speed-up':>10}{'fit / ReLU':>12}"
          f"{'max |d rho|':>13}")
    for act in names:
        for weights in ("orthogonal", "gaussian"):
            for depth in depths:
                spec = spec_of(act, weights, depth)
                t_fit, rho_fit = end_to_end(spec)
                smooth_d2.RATIONAL_FIT = False
                try:
                    t_rule, rho_rule = end_to_end(spec)
                finally:
                    smooth_d2.RATIONAL_FIT = True
                diff = float(np.max(np.abs(rho_fit - rho_rule)) / np.max(rho_rule))
                print(f"{act + ' ' + weights[:5] + ' L=' + str(depth):<26}{t_fit:>8.2f}s"
                      f"{t_rule:>8.2f}s{t_rule / t_fit:>9.1f}x{t_fit / t_relu:>11.0f}x"
                      f"{diff:>13.1e}", flush=True)


def moments_table() -> None:
    def seconds(act: str) -> float:
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            jacobian_law(spec_of(act, "orthogonal", 1000)).moments(6)
            best = min(best, time.perf_counter() - t0)
        return best

    t_relu = seconds("relu")
    print(f"\nseries moments m_1..m_6, orthogonal, depth 1000; ReLU: {t_relu * 1e3:.1f} ms")
    for act in SMOOTH:
        t = seconds(act)
        print(f"{act:<10}{t * 1e3:>9.1f} ms{t / t_relu:>8.1f}x ReLU", flush=True)


def tail_table() -> None:
    print("\ndensity per point, orthogonal, depth 16: 1000 points in [1e-300, 1e-100] "
          "against 1000 in the bulk")
    for act in ("erf", "tanh"):
        law = jacobian_law(spec_of(act, "orthogonal", 16))
        lo, hi = law.support()
        t0 = time.perf_counter()
        law.density(np.linspace(lo, hi, 1002)[1:-1])
        t_bulk = time.perf_counter() - t0
        t0 = time.perf_counter()
        law.density(np.geomspace(1e-300, 1e-100, 1000))
        t_tail = time.perf_counter() - t0
        print(f"{act:<10}bulk {t_bulk:6.2f} s  tail {t_tail:6.2f} s  ({t_tail / t_bulk:.0f}x)",
              flush=True)


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore", RuntimeWarning)
    depths = (3, 10, 50) if "--deep" in argv else (3, 10)
    names = [a for a in argv if not a.startswith("--")] or list(SMOOTH)
    end_to_end_table(names, depths)
    moments_table()
    tail_table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
