"""Theory predictions for the ``spectrum`` study, degrading gracefully.

For each network variant, the limit laws (M -> infinity) of J J^T and H_L from
:func:`freeness_lab.theory.jacobian_law` and :func:`freeness_lab.theory.fim_dual_law`:
exact moments m_1..m_n by S-transform series (Pennington, Schoenholz & Ganguli 2018;
Hayase & Karakida 2021), the variance m_2 - m_1^2, the atoms, and the density of the
continuous part (Newton solver) for the plots. A piece that the theory side does not provide
(not implemented for this network, or not there yet) is reported as unavailable with its
reason instead of stopping the run; the summary says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from freeness_lab.spec import NetworkSpec

#: errors meaning "the theory side does not cover this", not "the theory side is wrong"
UNAVAILABLE = (ImportError, AttributeError, NotImplementedError)


def limit_law(spec: NetworkSpec, matrix: str):
    """The law object of ``matrix`` (``"JJT"`` or ``"H_L"``) for ``spec``'s network."""
    from freeness_lab.theory import limits

    factory = limits.jacobian_law if matrix == "JJT" else limits.fim_dual_law
    return factory(spec)


@dataclass(frozen=True)
class TheoryMoments:
    """Moments of one limit law, or why there are none.

    Attributes
    ----------
    values : dict of str to float
        ``m1..mn`` and ``variance``; empty when unavailable.
    atoms : numpy.ndarray
        (k, 2) array of (location, mass).
    note : str
        Empty, or the reason the prediction is missing.
    """

    values: dict[str, float]
    atoms: np.ndarray
    note: str = ""


def theory_moments(spec: NetworkSpec, matrix: str, n_moments: int) -> TheoryMoments:
    """Exact moments m_1..m_n, variance and atoms of the limit law of ``matrix``."""
    try:
        law = limit_law(spec, matrix)
        m = np.asarray(law.moments(max(2, n_moments)), dtype=float)
        atoms = np.asarray(getattr(law, "atoms", np.empty((0, 2))), dtype=float).reshape(-1, 2)
    except UNAVAILABLE as err:
        return TheoryMoments({}, np.empty((0, 2)), f"unavailable: {type(err).__name__}: {err}")
    values = {f"m{k}": float(m[k - 1]) for k in range(1, n_moments + 1)}
    values["variance"] = float(m[1] - m[0] ** 2)
    return TheoryMoments(values, atoms)


def theory_density(spec: NetworkSpec, matrix: str, x: np.ndarray) -> tuple[np.ndarray | None,
                                                                           str]:
    """Density of the continuous part of the limit law at ``x``, or ``(None, reason)``.

    The density only feeds the plots (the checks use the exact moments), so any failure of
    the solver is reported on the plot instead of stopping the run.
    """
    try:
        return np.asarray(limit_law(spec, matrix).density(np.asarray(x, float)), float), ""
    except UNAVAILABLE as err:
        return None, f"density unavailable: {type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 -- see docstring
        return None, f"density failed: {type(err).__name__}: {err}"


def theory_table(variants: list[NetworkSpec], matrices: tuple[str, ...],
                 n_moments: int) -> tuple[pd.DataFrame, dict[tuple[int, str], TheoryMoments]]:
    """Tidy theory table (one row per variant x matrix x quantity) and the raw results.

    The raw results are keyed by (variant index, matrix).
    """
    rows, raw = [], {}
    for i, spec in enumerate(variants):
        for matrix in matrices:
            res = theory_moments(spec, matrix, n_moments)
            raw[(i, matrix)] = res
            for quantity, value in res.values.items():
                rows.append({"activation": spec.activation, "weights": spec.weights,
                             "depth": spec.depth, "sigma_w": spec.sigma_w,
                             "sigma_b": spec.sigma_b, "q0": spec.q0, "matrix": matrix,
                             "quantity": quantity, "theory": value})
    columns = ["activation", "weights", "depth", "sigma_w", "sigma_b", "q0", "matrix",
               "quantity", "theory"]
    return pd.DataFrame(rows, columns=columns), raw
