"""Smooth activations end to end: ``python benchmarks/bench_smooth.py [--deep] [names...]``.

For each smooth activation, both ensembles, depths 3 and 10 (and 50 with ``--deep``), near
criticality (sigma_b = 0.1; sigma_w critical where there is one, else 1.6), a fresh
J J^T law is taken from spec to a 1000-point density: law, certified support, density on
1000 points across it. Timed twice in the same run:

* ``fit``: the Newton systems sum psi of every law of phi'(h)^2 through its certified rational
  fit (:class:`~freeness_lab.theory.newton.rational_rule.RationalRule`, the default);
* ``rule``: through the contour rule itself (``smooth_d2.RATIONAL_FIT = False``: the
  implementation before the fit).

Baseline: ReLU with Gaussian weights, depth 5, the same pipeline in the same run. Columns:
seconds for each path, the speed-up rule / fit, the fit path against the ReLU baseline, and
max |rho_fit - rho_rule| / max rho_rule over the 1000 points (the fit must leave the density
unchanged). Pass activation names to run a subset, e.g. ``tanh gelu``.
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


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore", RuntimeWarning)
    depths = (3, 10, 50) if "--deep" in argv else (3, 10)
    names = [a for a in argv if not a.startswith("--")] or list(SMOOTH)
    base = NetworkSpec("relu", "gaussian", depth=5, width=1, sigma_w=2**0.5, sigma_b=0.0)
    t_relu = min(end_to_end(base)[0] for _ in range(3))
    print(f"baseline ReLU Gaussian depth 5: {t_relu:.3f} s")
    print(f"{'case':<26}{'fit':>9}{'rule':>9}{'speed-up':>10}{'fit / ReLU':>12}"
          f"{'max |d rho|':>13}")
    for act in names:
        sw = sigma_w(act)
        for weights in ("orthogonal", "gaussian"):
            for depth in depths:
                spec = NetworkSpec(act, weights, depth=depth, width=1, sigma_w=sw,
                                   sigma_b=SIGMA_B)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
