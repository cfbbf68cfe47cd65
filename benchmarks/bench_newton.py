"""Benchmark of the Newton lilypads solver: ``python benchmarks/bench_newton.py``.

For each case, a density grid on the support (the law's own graded Gauss-Legendre grid, so
that moments can be recovered from it; 528 to 1056 points):

* ``solver``: the vectorized, chained lilypads solve of the whole grid (median of 5);
* ``baseline``: an independent per-point solver written for the benchmark
  (``baseline_subordination.py``: ``scipy.optimize.root`` on the subordination equations from
  a far-field continuation start, at the same targets x + i eps and xtol 1e-13), run once on
  every ``stride``-th grid point and scaled by ``stride`` (``*`` in the table) when the whole
  grid would take too long;
* ``conv``: % of points converged (baseline: of the points it ran on); ``mom err``: worst
  relative error of m_1..m_3 recovered from the density (+ atoms) against the exact series
  moments (baseline: only when it ran on the whole grid);
* ``rel diff``: worst relative difference of the two densities where both converged, the
  number of points above 1e-8, and the worst difference relative to max(rho) (the points above
  1e-8 sit within ~1e-8 of a square-root edge, where the density at eps = 1e-10 |x| is
  ill-conditioned).

Then the time of the exact series moments at depth 1000 (law construction included; every
activation, both ensembles, against ReLU orthogonal), and the
anchor case (ReLU, Gaussian, depth 5) on a uniform 1000-point grid over the support, with the
baseline on every 10th point. Support finding (scan + bisection of the edges) is timed
separately: it is done once per law and cached.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from baseline_subordination import SubordinationBaseline

from freeness_lab import NetworkSpec
from freeness_lab.theory import jacobian_law

#: (activation, weights, depth, sigma_w, sigma_b, baseline stride)
CASES = [("hard_tanh", "orthogonal", 10, 1.0, 0.1, 1), ("tanh", "gaussian", 50, 1.0, 0.1, 25),
         ("relu", "orthogonal", 100, 2**0.5, 0.0, 1)]


def _timed(fn, repeat: int = 5):
    """(median wall time over ``repeat`` calls, last output)."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def _baseline(law, res, stride: int):
    """Baseline on every ``stride``-th target of ``res``: (time scaled to the whole grid,
    indices, density, converged)."""
    idx = np.arange(0, res.zeta.size, stride)
    base = SubordinationBaseline(law)
    t = time.perf_counter()
    rho, conv, _ = base.density(res.zeta.real[idx], res.zeta.imag[idx])
    return (time.perf_counter() - t) * res.zeta.size / len(idx), idx, rho, conv


def _agreement(rho_solver, rho_base, both) -> str:
    a, b = rho_solver[both], rho_base[both]
    rel = np.abs(a - b) / np.abs(a)
    scaled = np.max(np.abs(a - b)) / np.max(np.abs(a))
    return f"{rel.max():9.1e} {(rel > 1e-8).sum():4d} {scaled:9.1e}"


def _moment_error(law, x, w, rho) -> float:
    k = np.arange(1, 4)
    dens = (np.power.outer(x, k) * (w * rho)[:, None]).sum(0)
    if len(law.atoms):
        dens = dens + (np.power.outer(law.atoms[:, 0], k) * law.atoms[:, 1:]).sum(0)
    return float(np.max(np.abs(dens / law.moments(3) - 1)))


def main() -> None:
    warnings.simplefilter("ignore", RuntimeWarning)
    print(f"{'case':30s} {'points':>6s} {'support s':>9s} {'solver s':>9s} {'baseline s':>11s} "
          f"{'ratio':>7s} {'conv % (solver/base)':>20s} {'mom err (solver/base)':>21s} "
          f"{'rel diff':>9s} {'>1e-8':>5s} {'diff/max':>9s}")
    for act, weights, depth, sw, sb, stride in CASES:
        law = jacobian_law(NetworkSpec(act, weights, depth=depth, width=1, sigma_w=sw,
                                       sigma_b=sb))
        t_support, _ = _timed(law.intervals, 1)
        x, w, _ = law.quadrature()
        t_solve, res = _timed(lambda law=law, x=x: law.solve(x))
        rho = law.continuous_density(res)
        t_base, idx, rho_b, conv_b = _baseline(law, res, stride)
        err_b = f"{_moment_error(law, x, w, rho_b):9.1e}" if stride == 1 else "   (subset)"
        mark = "*" if stride > 1 else " "
        print(f"{act + ', ' + weights + ', L=' + str(depth):30s} {len(x):6d} {t_support:9.3f} "
              f"{t_solve:9.3f} {t_base:10.2f}{mark} {t_base / t_solve:7.1f} "
              f"{100 * res.converged.mean():9.1f} / {100 * conv_b.mean():5.1f}   "
              f"{_moment_error(law, x, w, rho):9.1e} / {err_b:9s} "
              f"{_agreement(rho[idx], rho_b, conv_b & res.converged[idx])}")
    print("* baseline run on every stride-th point only, time scaled to the whole grid")

    print()
    # law construction included: the laws of D^2 build their contour rules on first use, so
    # moments alone never pay for them (issue 14: tanh orthogonal within 10x of ReLU)
    base = None
    for weights in ("orthogonal", "gaussian"):
        for act in ("relu", "tanh", "erf", "sigmoid", "silu", "gelu"):
            sw, sb = (2**0.5, 0.0) if act == "relu" else (1.0, 0.1)
            spec = NetworkSpec(act, weights, depth=1000, width=1, sigma_w=sw, sigma_b=sb)
            t, m = _timed(lambda spec=spec: jacobian_law(spec).moments(10), 3)
            base = t if base is None else base
            print(f"exact series moments m_1..m_10, {act}, {weights}, depth 1000: "
                  f"{t * 1e3:7.1f} ms ({t / base:4.1f}x ReLU orthogonal; m_2 = {m[1]:.6g})")

    law = jacobian_law(NetworkSpec("relu", "gaussian", depth=5, width=1, sigma_w=2**0.5))
    lo, hi = law.support()
    grid = np.linspace(lo, hi, 1002)[1:-1]
    law.solve(grid)  # warm-up (system construction)
    t, res = _timed(lambda: law.solve(grid), 9)
    t_quad, resq = _timed(lambda: law.solve(law.quadrature()[0]), 5)
    t_base, idx, rho_b, conv_b = _baseline(law, res, 10)
    rho = law.continuous_density(res)
    print(f"anchor ReLU, Gaussian, L=5: uniform 1000-point grid {t * 1e3:.1f} ms "
          f"({100 * res.converged.mean():.0f}% converged); support quadrature grid "
          f"({resq.converged.size} points) {t_quad * 1e3:.1f} ms, moments error "
          f"{np.max(np.abs(law.density_moments(3) / law.moments(3) - 1)):.1e} "
          f"(reference code: ~90 ms, moments within 0.3%)")
    print(f"anchor baseline (every 10th point, scaled x10): {t_base * 1e3:.0f} ms, ratio "
          f"{t_base / t:.0f}, {100 * conv_b.mean():.0f}% converged; rel diff, >1e-8, "
          f"diff/max: {_agreement(rho[idx], rho_b, conv_b & res.converged[idx])}")


if __name__ == "__main__":
    main()
