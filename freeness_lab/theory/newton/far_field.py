"""The far-field start of the lilypads homotopy.

High in the upper half-plane, zeta = x + i Y, the series psi(z) = sum m_k z^k gives the
solution (each system's ``initial``), polished by Newton; where Newton does not converge the
height is raised (x8, at most 8 times).
"""

from __future__ import annotations

import numpy as np

from freeness_lab.theory.newton.protocol import NewtonSystem

__all__ = ["far_field_start"]


def far_field_start(system: NewtonSystem, x: np.ndarray, y_stop: np.ndarray, y_start: float,
                    tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Solutions at x + i y, y = max(y_start, 2 y_stop) raised where Newton fails.

    Parameters
    ----------
    system : NewtonSystem
    x : ndarray of float
        Real parts of the points.
    y_stop : ndarray of float
        Where each point's vertical walk ends (the start lies at least twice as high).
    y_start : float or ndarray of float
        The first starting height (per point, or one for all).
    tol : float
        Convergence of Newton (max-norm of the step).

    Returns
    -------
    v : complex ndarray (P, size)
        The solutions (0 where not started).
    y : ndarray
        The starting heights.
    started : bool ndarray
    evaluations : int
        Newton steps evaluated.
    """
    P = x.size
    evaluations = 0
    v = np.zeros((P, system.size), dtype=complex)
    y = np.maximum(np.broadcast_to(np.asarray(y_start, dtype=float), (P,)), 2 * y_stop)
    started = np.zeros(P, dtype=bool)
    for _ in range(8):  # far-field start, raised where Newton does not converge
        idx = np.nonzero(~started)[0]
        if not len(idx):
            break
        zeta = x[idx] + 1j * y[idx]
        vi = system.initial(zeta)
        ok = np.ones(len(idx), dtype=bool)
        conv = np.zeros(len(idx), dtype=bool)
        for _ in range(30):
            d = system.newton_step(vi, zeta)
            evaluations += 1
            nrm = np.max(np.abs(d), axis=-1)
            ok &= np.isfinite(nrm)
            vi = np.where((ok & ~conv)[:, None], vi + d, vi)
            conv |= ok & (nrm <= tol)
            if np.all(conv | ~ok):
                break
        conv &= system.valid(vi)
        v[idx[conv]] = vi[conv]
        started[idx[conv]] = True
        y[idx[~conv]] *= 8.0
    return v, y, started, evaluations
