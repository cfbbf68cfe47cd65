"""What a run will cost and whether its numbers stay representable, from its config alone.

Checked by :func:`~freeness_lab.harness.config.validate_config` before any work starts, so
that an impossible run is refused in one line instead of crashing after its folder exists.

Cost model (one trial of a cell at width M and depth L, float64, BLAS on one thread):

- memory (M: the largest layer width of a rectangular network, ``network.width_ratios``):
  the sampled network keeps its L weight matrices, and the Jacobian, H_L and the SVD
  workspace add a few more M x M arrays: ``(L + 6) * 8 M^2`` bytes per worker; the run's
  tables are assembled in memory (``TABLE_ROW_BYTES`` per row, rows per trial as the study
  says, e.g. ``2 M`` eigenvalue rows per spectrum trial), twice over while they are
  concatenated;
- time: a QR, two products and the H_L update per layer, one SVD and one eigvalsh at the
  end: ``SECONDS_PER_CUBE * M^3 * (L + 1/2)`` seconds per trial (fitted on this project's
  2-core reference machine: within a factor 2 of measured trials for M = 256..1024,
  L = 3..300); a study's ``time_factor`` scales it (the freeness study evaluates its words
  on top, counted as twice that).

Numeric range (mean field, :mod:`freeness_lab.theory.meanfield`): the pre-activation variances
q^l must stay within ``[Q_MIN, Q_MAX]`` (h^2 and phi(h)^2 representable), and the k-th
moments of J J^T and H_L, whose scale is m_1^k, must stay finite and non-zero in float64 for
k up to ``experiment.moments``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from freeness_lab.spec import NetworkSpec, SpecError
from freeness_lab.theory import meanfield

#: seconds per M^3 per layer of one spectrum trial (see the module docstring)
SECONDS_PER_CUBE = 1.0e-9
#: bytes of one tidy-table row once assembled in pandas (label columns included)
TABLE_ROW_BYTES = 200
#: a run may use at most this fraction of the machine's memory (without ``force``)
MEMORY_FRACTION = 0.8
#: a run may take at most this long on this machine (without ``force``)
MAX_WALL_SECONDS = 30 * 86400.0
#: pre-activation variances outside this range overflow h^2 or lose phi(h) to underflow
Q_MIN, Q_MAX = 1e-100, 1e100
#: |log m_1| * n must stay below this for m_n to be a normal float64 (log(1.8e308) = 709.8)
LOG_RANGE = 700.0


@dataclass(frozen=True)
class Budget:
    """Estimated cost of a run.

    Made by :func:`estimate`; :func:`check_budget` refuses the run when it exceeds this
    machine's memory or the time limit.

    Attributes
    ----------
    peak_bytes : float
        Peak memory: the workers' trials plus the assembled tables.
    table_bytes : float
        Memory of the tables assembled at the end (included in ``peak_bytes``).
    cpu_seconds : float
        Total CPU time of all trials.
    wall_seconds : float
        ``cpu_seconds`` spread over ``workers``.
    workers : int
        Parallel workers the estimate assumes.
    """

    peak_bytes: float
    table_bytes: float
    cpu_seconds: float
    wall_seconds: float
    workers: int


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit below it, e.g. ``'7.3 TiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_seconds(s: float) -> str:
    """A duration in s, min, h or days (3 significant digits)."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def machine_memory() -> int:
    """Bytes of memory this process may use: physical memory, or a smaller cgroup limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max",
                       "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return int(total)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def largest_width(spec: NetworkSpec) -> int:
    """M of a square network; max_l N_l of a rectangular one (what the estimates use)."""
    return max(spec.layer_widths)


def trial_bytes(spec: NetworkSpec) -> float:
    """Peak memory of one trial: ``(L + 6) * 8 M^2`` bytes (module docstring; M the largest
    layer width of a rectangular network)."""
    return (spec.depth + 6) * 8.0 * largest_width(spec)**2


def trial_seconds(spec: NetworkSpec, time_factor: float = 1.0) -> float:
    """CPU seconds of one trial: a spectrum trial times ``time_factor`` (module docstring; M
    the largest layer width of a rectangular network)."""
    return SECONDS_PER_CUBE * largest_width(spec)**3 * (spec.depth + 0.5) * time_factor


@dataclass(frozen=True)
class CellCost:
    """What the estimate needs of one cell.

    :func:`~freeness_lab.harness.config.validate_config` makes one per planned cell and passes
    them all to :func:`estimate`.

    Attributes
    ----------
    spec : NetworkSpec
        The network at its width M.
    trials : int
    rows_per_trial : int
        Table rows one trial adds (the study's ``rows_per_trial``).
    time_factor : float
        Cost of a trial relative to a spectrum trial (the study's ``time_factor``).
    """

    spec: NetworkSpec
    trials: int
    rows_per_trial: int
    time_factor: float = 1.0


def estimate(cells: list[CellCost], workers: int) -> Budget:
    """Estimated cost of computing ``cells`` on ``workers`` parallel workers (trials run side
    by side, each with its own network in memory)."""
    rows = cpu = largest = 0.0
    for c in cells:
        rows += c.trials * c.rows_per_trial
        cpu += c.trials * trial_seconds(c.spec, c.time_factor)
        largest = max(largest, trial_bytes(c.spec))
    tables = 2.0 * rows * TABLE_ROW_BYTES
    return Budget(peak_bytes=workers * largest + tables, table_bytes=tables, cpu_seconds=cpu,
                  wall_seconds=cpu / max(1, workers), workers=workers)


def check_budget(budget: Budget, *, dominant_field: str) -> None:
    """Refuse a run that cannot fit in memory or would take longer than the limit.

    Raises
    ------
    SpecError
        Naming ``dominant_field`` (or ``sweep.trials`` when the tables dominate), with the
        estimate, the machine's limit and how to go past it (``force=true``).
    """
    memory = machine_memory()
    hint = "lower it, or set force=true to run anyway"
    if budget.peak_bytes > MEMORY_FRACTION * memory:
        field = ("sweep.trials" if budget.table_bytes > budget.peak_bytes / 2
                 else dominant_field)
        raise SpecError(field, f"the run needs an estimated {format_bytes(budget.peak_bytes)}"
                        f" of memory (tables {format_bytes(budget.table_bytes)}, "
                        f"{budget.workers} worker(s)) but this machine has "
                        f"{format_bytes(memory)}; {hint}")
    if budget.wall_seconds > MAX_WALL_SECONDS:
        raise SpecError(dominant_field, f"the run would take an estimated "
                        f"{format_seconds(budget.wall_seconds)} on {budget.workers} worker(s), "
                        f"more than the {format_seconds(MAX_WALL_SECONDS)} allowed; {hint}")


def check_numeric_range(spec: NetworkSpec, n_moments: int, field: str) -> None:
    """Refuse a network whose mean-field variances or spectral moments leave float64.

    The pre-activation variances q^l (from q0, :func:`~freeness_lab.theory.meanfield.
    preactivation_variances`) must lie in [``Q_MIN``, ``Q_MAX``]; the means of J J^T
    (prod_l chi_l) and of H_L (m_1(l+1) = qhat_l + chi_l m_1(l), Hayase-Karakida) must satisfy
    ``n_moments * |log m_1| <= LOG_RANGE``, so that m_1..m_n neither overflow nor underflow.

    Raises
    ------
    SpecError
        Naming ``field`` (e.g. ``network.sigma_w``), the offending quantity and the range.
    """
    def refuse(what: str) -> SpecError:
        return SpecError(field, f"{what} for {_describe(spec)}; choose sigma_w, sigma_b, q0 "
                         f"or depth that keep the mean field within float64")

    try:
        with np.errstate(all="ignore"):
            qs = np.asarray(meanfield.preactivation_variances(spec), dtype=float)
    except (ArithmeticError, ValueError) as err:
        raise refuse(f"the mean-field variances q^l leave float64 ({err})") from None
    bad = ~np.isfinite(qs) | (qs < Q_MIN) | (qs > Q_MAX)
    if bad.any():
        l = int(np.argmax(bad)) + 1
        raise refuse(f"the pre-activation variance q^{l} = {qs[l - 1]:.3g} is outside "
                     f"[{Q_MIN:g}, {Q_MAX:g}] (h^2 would overflow or phi(h) underflow)")
    with np.errstate(all="ignore"):
        qhat = np.asarray(meanfield.post_activation_moments(spec), dtype=float)
        mu1 = np.array([meanfield.d2_moments(spec.activation, q, 1)[0] for q in qs])
        log_chi = 2.0 * math.log(spec.sigma_w) + np.log(mu1)
        log_j = float(np.sum(log_chi))
        log_h = math.log(spec.q0)
        for l in range(1, spec.depth):  # log m_1(l+1) = log(qhat_l + chi_l m_1(l))
            log_h = float(np.logaddexp(np.log(qhat[l]), log_chi[l - 1] + log_h))
    for matrix, log_m1 in (("J J^T", log_j), ("H_L", log_h)):
        if not math.isfinite(log_m1) or n_moments * abs(log_m1) > LOG_RANGE:
            size = (f"about 10^{log_m1 / math.log(10):.4g}" if math.isfinite(log_m1)
                    else "not representable")
            raise SpecError(field, f"the mean eigenvalue of {matrix} is {size} for "
                            f"{_describe(spec)}, so its moments up to m_{n_moments} leave "
                            f"float64 (need moments * |ln m_1| <= {LOG_RANGE:g}); choose "
                            f"sigma_w or depth closer to criticality, or fewer moments")


def _describe(spec: NetworkSpec) -> str:
    return (f"{spec.activation}, {spec.weights}, depth {spec.depth}, sigma_w {spec.sigma_w:g}, "
            f"sigma_b {spec.sigma_b:g}, q0 {spec.q0:g}")
