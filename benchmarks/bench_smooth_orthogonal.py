"""Smooth activations, orthogonal weights: ``python benchmarks/bench_smooth_orthogonal.py``.

With orthogonal weights the law of D^2 = phi'(h)^2 of every layer enters the Newton system
through its contour rule (:class:`~freeness_lab.theory.laws.smooth_d2.SmoothD2Law`, 5,000 to 40,000
complex nodes), and psi of each factor is a sum over those nodes at every Newton step. For
each case the whole density computation of J J^T (support finding + the support quadrature,
a fresh law each time) is timed twice in the same run:

* ``clustered``: :class:`~freeness_lab.theory.newton.quadrature_rule.QuadratureRule` (the
  nodes cut into clusters of 256; far clusters by their Laurent series, near ones summed directly);
* ``direct``: the baseline, every node summed directly for every point (``CLUSTER_SIZE``
  set above the node count).

``mom err``: worst relative error of m_1..m_3 recovered from the density against the exact
series moments, for each variant; ``max |d rho|``: worst difference of the two densities
relative to max(rho). ``--quick`` runs the depth-3 cases only.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from freeness_lab import NetworkSpec
from freeness_lab.theory import jacobian_law
from freeness_lab.theory.newton import quadrature_rule

#: (activation, depth, sigma_w, sigma_b)
CASES = [("tanh", 3, 1.0, 0.1), ("gelu", 3, 1.6, 0.1), ("tanh", 10, 1.0, 0.1),
         ("erf", 10, 1.0, 0.1), ("silu", 3, 1.6, 0.1)]


def _run(spec: NetworkSpec, cluster_size: int):
    """(seconds, density, moment error) of a fresh law's support quadrature."""
    saved = quadrature_rule.CLUSTER_SIZE
    quadrature_rule.CLUSTER_SIZE = cluster_size
    try:
        t = time.perf_counter()
        law = jacobian_law(spec)
        _, _, rho = law.quadrature()
        elapsed = time.perf_counter() - t
    finally:
        quadrature_rule.CLUSTER_SIZE = saved
    err = float(np.max(np.abs(law.density_moments(3) / law.moments(3) - 1.0)))
    return elapsed, rho, err


def main(argv: list[str]) -> int:
    cases = [c for c in CASES if c[1] <= 3] if "--quick" in argv else CASES
    print(f"{'case':<22}{'nodes/law':>10}{'clustered':>11}{'direct':>9}{'speed-up':>10}"
          f"{'mom err (cl / dir)':>22}{'max |d rho|':>13}")
    for act, depth, sw, sb in cases:
        spec = NetworkSpec(act, "orthogonal", depth=depth, width=1, sigma_w=sw, sigma_b=sb)
        nodes = np.mean([len(f.law.nodes) for f in jacobian_law(spec).product.factors
                         if hasattr(f.law, "nodes")])
        t_cl, rho_cl, err_cl = _run(spec, quadrature_rule.CLUSTER_SIZE)
        t_dir, rho_dir, err_dir = _run(spec, 10**12)
        diff = float(np.max(np.abs(rho_cl - rho_dir)) / np.max(rho_dir))
        print(f"{act + ', L=' + str(depth):<22}{nodes:>10.0f}{t_cl:>10.2f}s{t_dir:>8.2f}s"
              f"{t_dir / t_cl:>9.1f}x{err_cl:>11.1e} / {err_dir:.1e}{diff:>13.1e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
