"""The corrector of the lilypads homotopy: Newton steps with a contraction certificate.

A predicted point is accepted only when the Newton iterates contract -- every step at most
theta_max times the previous one (the affine-covariant Kantorovich estimate theta =
|dv_2| / |dv_1|; Deuflhard, *Newton Methods for Nonlinear Problems*, 2004, section 5.1), i.e.
the predicted point lies in the ball where Newton converges quadratically -- and converge
to the tolerance, lie on the solution's branch (``valid``) and, when they stalled above the
tolerance, satisfy the equations (``residual``).
"""

from __future__ import annotations

import numpy as np

from freeness_lab.theory.newton.protocol import NewtonSystem

__all__ = ["correct"]


def correct(system: NewtonSystem, vk: np.ndarray, zeta: np.ndarray, tol_end: np.ndarray, *,
            tol: float, tol_stall: float, theta_max: float, max_newton: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Newton from the predicted unknowns vk at zeta.

    Parameters
    ----------
    system : NewtonSystem
    vk : complex ndarray (P, size)
        The predicted unknowns.
    zeta : complex ndarray (P,)
    tol_end : ndarray (P,)
        The convergence required of each point (``tol`` at a path's end, looser before).
    tol, tol_stall, theta_max, max_newton
        As in :func:`~freeness_lab.theory.newton.lilypads.lilypads`.

    Returns
    -------
    vk : complex ndarray
        The corrected unknowns.
    accept : bool ndarray
        Converged, certified and valid.
    theta : ndarray
        The contraction |dv_2| / |dv_1| (0 where the first step met the tolerance).
    evaluations : int
        Newton steps evaluated.
    """
    evaluations = 0
    ok = np.logical_and.reduce(np.isfinite(vk), axis=-1)
    n = len(vk)
    conv = np.zeros(n, dtype=bool)
    first = np.full(n, np.inf)
    prev = np.full(n, np.inf)
    theta = np.zeros(n)
    by_stall = np.zeros(n, dtype=bool)
    for k in range(max_newton):
        live = ok & ~conv
        if live.all():
            d = system.newton_step(vk, zeta)
        elif live.any():
            d = np.zeros_like(vk)
            d[live] = system.newton_step(vk[live], zeta[live])
        else:
            break
        evaluations += 1
        # ufunc reductions: the np.max / np.all wrappers cost more than the work here.
        # A point that is not live has d = 0, hence nrm = 0: it passes every test below
        # unchanged, and it never becomes live again, so no test needs a "live &".
        nrm = np.maximum.reduce(np.abs(d), axis=-1)
        ok &= np.isfinite(nrm)
        if k == 0:
            first = nrm
        elif k == 1:
            theta = np.where(first > tol, nrm / np.maximum(first, 1e-300), 0.0)
        # certificate: every Newton step at most theta_max times the previous one, until
        # the steps reach rounding level (near an edge the Jacobian is nearly singular and
        # the attainable accuracy is above tol: a stalled step below tol_stall counts;
        # prev = inf at k = 0, so nothing is slow or stalled there)
        slow = nrm > theta_max * prev
        stalled = (nrm <= tol_stall) & slow
        ok &= ~(slow & (nrm > tol) & ~stalled)
        step_ok = live & ok
        vk = np.where(step_ok[:, None], vk + d, vk)
        by_stall |= step_ok & ~conv & stalled & (nrm > tol_end)
        conv |= step_ok & ((nrm <= tol_end) | stalled)
        prev = nrm
    accept = ok & conv & system.valid(vk)
    if (accept & by_stall).any():
        # a stalled point is a root only if the equations hold there: near a singular
        # point of the variables (the chain's log xi_l as xi_l -> 0, where G = 0 in a gap)
        # the steps are small because the Jacobian is large, not because the iterate is
        # converged (in a gap of ReLU's H_3 a stalled iterate can leave a residual of 0.45)
        j = np.nonzero(accept & by_stall)[0]
        accept[j[~(system.residual(vk[j], zeta[j]) <= tol_stall)]] = False
    return vk, accept, theta, evaluations
