"""Time of building a smooth law's Newton system: ``python benchmarks/bench_fit.py [names...]``.

For each smooth activation, both ensembles, depths 3, 10 and 50 (``spec_of`` of
bench_smooth: near criticality), a fresh J J^T law's ``system`` (the contour rules, their
certified rational fits and levels about 0), best of ``--repeat`` (default 1), with
``scipy.stats`` imported beforehand (AAA's clean-up imports it lazily, once per process).
Columns: seconds, and per law of phi'(h)^2 the fit's terms and error (max over layers).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import scipy.stats  # noqa: F401 -- AAA's lazy import, out of the timings

from benchmarks.bench_smooth import SMOOTH, spec_of
from freeness_lab.theory import jacobian_law
from freeness_lab.theory.laws.smooth_d2 import SmoothD2Law


def system_time(act: str, weights: str, depth: int) -> tuple[float, list]:
    """(seconds, the fitted psi rules) of one fresh law's system."""
    law = jacobian_law(spec_of(act, weights, depth))
    t0 = time.perf_counter()
    law.system  # noqa: B018
    t = time.perf_counter() - t0
    rules = [f.law.psi_rule for f in law.product.factors if isinstance(f.law, SmoothD2Law)]
    return t, rules


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore", RuntimeWarning)
    repeat = next((int(a.split("=")[1]) for a in argv if a.startswith("--repeat=")), 1)
    depths = tuple(int(d) for d in next((a.split("=")[1] for a in argv
                                         if a.startswith("--depths=")), "3,10,50").split(","))
    names = [a for a in argv if not a.startswith("--")] or list(SMOOTH)
    print(f"{'case':<26}{'system':>9}{'fitted':>8}{'terms':>7}{'max error':>11}")
    for act in names:
        for weights in ("orthogonal", "gaussian"):
            for depth in depths:
                runs = [system_time(act, weights, depth) for _ in range(repeat)]
                t, rules = min(runs, key=lambda r: r[0])
                fitted = sum(r.fitted for r in rules)
                terms = max((r.terms for r in rules), default=0)
                err = max((r.error for r in rules if r.fitted), default=np.nan)
                print(f"{act + ' ' + weights[:5] + ' L=' + str(depth):<26}{t:>8.3f}s"
                      f"{fitted:>4}/{len(rules):<3}{terms:>7}{err:>11.1e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
