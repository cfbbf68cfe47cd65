"""Building a smooth law's Newton system: ``python benchmarks/bench_fit.py [--depths=3,10,50]
[--repeat=N] [names...]``.

For each smooth activation, both ensembles, depths 3, 10 and 50 (``spec_of`` of
``bench_smooth``: near criticality), the seconds of a fresh J J^T law's ``system`` (the
contour rules, their certified rational fits, the levels about 0), best of ``--repeat``
(default 1). Baseline, in the same run: the same build with ``scipy.interpolate.AAA`` in
place of :func:`~freeness_lab.theory.newton.aaa.aaa` for the fits (``scipy.stats``, which
its clean-up imports lazily, imported beforehand). Columns: seconds, scipy / own, and for
the default build the fits certified, the most terms and the largest certified error.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import scipy.stats  # noqa: F401 -- scipy AAA's lazy import, out of the timings
from bench_smooth import SMOOTH, spec_of
from scipy.interpolate import AAA

from freeness_lab.theory import jacobian_law
from freeness_lab.theory.laws.smooth_d2 import SmoothD2Law
from freeness_lab.theory.newton import rational_rule


def scipy_aaa(z, f, **options):
    """scipy's AAA, its warnings left to the certificate (as the fits did before)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return AAA(z, f, **options)


def system_time(act: str, weights: str, depth: int, repeat: int) -> tuple[float, list]:
    """(best seconds, the psi rules of the last) of fresh laws' systems."""
    best = np.inf
    for _ in range(repeat):
        law = jacobian_law(spec_of(act, weights, depth))
        t0 = time.perf_counter()
        law.system  # noqa: B018
        best = min(best, time.perf_counter() - t0)
    return best, [f.law.psi_rule for f in law.product.factors if isinstance(f.law, SmoothD2Law)]


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore", RuntimeWarning)
    repeat = next((int(a.split("=")[1]) for a in argv if a.startswith("--repeat=")), 1)
    depths = tuple(int(d) for d in next((a.split("=")[1] for a in argv
                                         if a.startswith("--depths=")), "3,10,50").split(","))
    names = [a for a in argv if not a.startswith("--")] or list(SMOOTH)
    print(f"{'case':<26}{'system':>9}{'scipy AAA':>11}{'ratio':>7}{'fitted':>9}{'terms':>7}"
          f"{'max error':>11}")
    own = rational_rule.aaa
    for act in names:
        for weights in ("orthogonal", "gaussian"):
            for depth in depths:
                t, rules = system_time(act, weights, depth, repeat)
                rational_rule.aaa = scipy_aaa
                try:
                    t_ref, _ = system_time(act, weights, depth, repeat)
                finally:
                    rational_rule.aaa = own
                fitted = sum(r.fitted for r in rules)
                terms = max((r.terms for r in rules), default=0)
                err = max((r.error for r in rules if r.fitted), default=np.nan)
                print(f"{act + ' ' + weights[:5] + ' L=' + str(depth):<26}{t:>8.3f}s"
                      f"{t_ref:>10.3f}s{t_ref / max(t, 1e-9):>6.1f}x{fitted:>5}/{len(rules):<3}"
                      f"{terms:>7}{err:>11.1e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
