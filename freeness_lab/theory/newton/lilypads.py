"""The lilypads homotopy: every point walks from the far field (or a neighbour) to its target.

*Lilypads homotopy* (Chhaibi, Daouda, Kahn 2022): every grid point starts far in the upper
half-plane, zeta = x + i Y, where the series psi(z) = sum m_k z^k gives the solution, and
walks down in t = log Im zeta toward its target x + i eps. A step is predicted along the
tangent dv/dzeta and corrected by Newton; it is accepted only when the Newton iterates
contract -- the affine-covariant Kantorovich estimate theta = |dv_2| / |dv_1| <= 1/4
(Deuflhard, *Newton Methods for Nonlinear Problems*, 2004, section 5.1), i.e. the predicted
point lies in the ball where Newton converges quadratically -- and converge to ``tol``.
A rejected step is halved; an accepted one is rescaled by sqrt(theta_target / theta).
Every point has its own step, all points move together (vectorized, no loop per point),
and every loop has a cap: a point that runs out of budget is reported as not converged.

The pieces: :mod:`~freeness_lab.theory.newton.far_field` (the start),
:mod:`~freeness_lab.theory.newton.path` (the walks), :mod:`~freeness_lab.theory.newton.
corrector` (Newton with its certificate); the step control is here. The system is anything
that fulfils :class:`~freeness_lab.theory.newton.protocol.NewtonSystem`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from freeness_lab.theory.newton.blas import one_blas_thread
from freeness_lab.theory.newton.corrector import correct
from freeness_lab.theory.newton.far_field import far_field_start
from freeness_lab.theory.newton.path import Paths
from freeness_lab.theory.newton.protocol import NewtonSystem

__all__ = ["NewtonResult", "from_either", "lilypads"]


@dataclass
class NewtonResult:
    """Output of :func:`lilypads`.

    Attributes
    ----------
    zeta : complex ndarray      the target points x + i eps
    cauchy : complex ndarray    G(zeta) (nan where not converged)
    converged : bool ndarray    per point
    rounds : int                homotopy rounds used
    evaluations : int           Newton steps evaluated (over all points, vectorized)
    unknowns : complex ndarray  the solution of the system at every point
    """

    zeta: np.ndarray
    cauchy: np.ndarray
    converged: np.ndarray
    rounds: int
    evaluations: int
    unknowns: np.ndarray


def _one_blas_thread(solver):
    """``solver`` with BLAS pinned to one thread (:mod:`~freeness_lab.theory.newton.blas`)."""
    @functools.wraps(solver)
    def pinned(*args, **kwargs):
        with one_blas_thread():
            return solver(*args, **kwargs)
    return pinned


@_one_blas_thread
@np.errstate(all="ignore")  # rejected trial steps may overflow; they are caught by the checks
def lilypads(system: NewtonSystem, x: np.ndarray, eps: np.ndarray | float, *,
             y_start: float | np.ndarray,
             start: tuple[np.ndarray, np.ndarray] | None = None,
             tol: float = 1e-12, tol_stall: float = 1e-7, max_rounds: int = 300,
             max_newton: int = 8,
             theta_max: float = 0.25, theta_target: float = 0.18, tol_path: float = 1e-8,
             step_start: float = 2.0, step_max: float = 30.0, step_min: float = 1e-7,
             zero_floor: float = 1e-16, log_zeta: bool = False,
             partner: np.ndarray | None = None) -> NewtonResult:
    """Solve ``system`` at zeta = x + i eps for every x by the lilypads homotopy.

    Parameters
    ----------
    system : NewtonSystem
        The equations (:mod:`~freeness_lab.theory.newton.protocol`).
    x : ndarray of float
        Real parts of the targets.
    eps : float or ndarray
        Imaginary parts of the targets, >= 0. eps = 0 asks for the boundary value on the
        real axis: the vertical walk stops at ``zero_floor * max(|x|, y_start)`` and a last
        straight segment reaches the axis.
    y_start : float or ndarray of float
        Starting height (one for all points, or per point: the walks are independent, so a
        batch of separate solves gives each point the result of its own solve), where the
        far-field series start is accurate; raised (x8, at most 8 times) for points whose
        start does not converge.
    start : (zeta0, v0), optional
        Known solutions v0 at nearby points zeta0 (a neighbour on the grid, "chaining"):
        each point then walks from zeta0 to its target along zeta0 (target/zeta0)^s,
        s in [0, 1], instead of coming down from the far field.
    tol : float
        Convergence: max-norm of the Newton step (in the log-variables, i.e. relative).
    tol_stall : float
        A point whose Newton steps stop contracting below this (rounding level of an
        ill-conditioned point, e.g. a square-root edge) after two steps counts as converged,
        provided the residuals of its equations (logarithmic: relative) are below it too.
    max_rounds, max_newton : int
        Caps on homotopy rounds and on Newton steps per round.
    theta_max, theta_target : float
        Kantorovich contraction bound for accepting a step, and the target contraction that
        sets the next step length.
    tol_path : float
        Convergence required at intermediate points of a path (the end point needs ``tol``).
    step_start, step_max : float
        First and largest vertical steps, in t = log Im zeta.
    step_min : float
        A point whose step (as a fraction of its path) falls below this fails.
    log_zeta : bool
        Work in ell = log zeta: the targets ``x + i eps`` are ell itself (eps = arg zeta, in
        (0, pi)), ``system`` is a :class:`LogZetaSystem`, ``start`` is required (as
        (ell0, v0)) and each walk is straight in ell. The result's ``zeta`` holds ell and its
        ``cauchy`` holds zeta G(zeta).
    partner : ndarray of int, optional
        Each point's partner (an index): two walks to one target from two starts, where the
        caller needs one. A point stops, reported not converged, once its partner has
        converged (the support's bisection chains every point from both ends of its bracket:
        the walk from the wrong side of the edge fails only after its round budget, and
        would set every call's number of rounds).

    Returns
    -------
    NewtonResult
    """
    x = np.atleast_1d(np.asarray(x, dtype=float))
    eps = np.broadcast_to(np.asarray(eps, dtype=float), x.shape).copy()
    if np.any(eps < 0) or not np.all(np.isfinite(eps)):
        raise ValueError("eps: must be finite and >= 0")
    if log_zeta and (start is None or np.any((eps <= 0) | (eps >= np.pi))):
        raise ValueError("log_zeta: needs a start and targets with 0 < Im ell < pi")
    P = x.size
    target = x + 1j * eps
    y_stop = np.where(eps > 0, eps, zero_floor * np.maximum(np.abs(x), y_start))
    # path of each point: vertical, x + i exp(t0 + s (t1 - t0)), or straight, za -> zb
    t1 = np.log(y_stop)
    za = np.zeros(P, dtype=complex)
    zb = target.copy()
    if start is None:
        lin = np.zeros(P, dtype=bool)
        v, y, started, evaluations = far_field_start(system, x, y_stop, y_start, tol)
        t0 = np.log(y)
        ds = np.minimum(step_start / np.maximum(t0 - t1, 1e-300), 1.0)
    else:
        evaluations = 0
        t0 = np.zeros(P)
        ds = np.ones(P)
        lin = np.ones(P, dtype=bool)
        za = np.asarray(start[0], dtype=complex).copy()
        v = np.asarray(start[1], dtype=complex).copy()
        started = system.valid(v)
    # t0, t1 are fixed from here on: the vertical span and its largest step (as a fraction)
    span = t1 - t0
    ds_vert = step_max / np.maximum(-span, 1e-300)

    paths = Paths(x, t0, span, lin, za, zb, log_zeta)

    s = np.zeros(P)
    zeta_cur = paths.point(np.arange(P), s)
    done = np.zeros(P, dtype=bool)
    failed = ~started
    tang = np.zeros_like(v)
    if started.any():
        tang[started] = system.tangent(v[started], zeta_cur[started])
    rounds = 0
    for rounds in range(1, max_rounds + 1):  # noqa: B007 -- reported
        if partner is not None:
            failed |= done[partner] & ~done
        idx = np.nonzero(~done & ~failed)[0]
        if not len(idx):
            break
        s_new = np.minimum(s[idx] + ds[idx], 1.0)
        final = s_new >= 1.0
        zeta_new = paths.point(idx, s_new)
        vk = v[idx] + tang[idx] * (zeta_new - zeta_cur[idx])[:, None]
        vk, accept, theta, evals = correct(system, vk, zeta_new,
                                           np.where(final, tol, tol_path), tol=tol,
                                           tol_stall=tol_stall, theta_max=theta_max,
                                           max_newton=max_newton)
        evaluations += evals
        acc = idx[accept]
        v[acc] = vk[accept]
        zeta_cur[acc] = zeta_new[accept]
        s[acc] = s_new[accept]
        grow = np.clip(np.sqrt(theta_target / np.maximum(theta[accept], 1e-12)), 0.5, 4.0)
        ds_max = np.where(lin[acc], 1.0, ds_vert[acc])
        ds[acc] = np.minimum(ds[acc] * grow, ds_max)
        # a vertical walk that ends above a real-axis target continues straight down
        fin = acc[final[accept]]
        to_axis = ~lin[fin] & (eps[fin] == 0)
        if to_axis.any():
            jump = fin[to_axis]
            paths.to_axis(jump, zeta_cur[jump])
            s[jump] = 0.0
            ds[jump] = 1.0
        done[fin[~to_axis]] = True
        live_acc = acc[~done[acc]]
        if len(live_acc):
            tang[live_acc] = system.tangent(v[live_acc], zeta_cur[live_acc])
        if len(acc) < len(idx):
            rej = idx[~accept]
            ds[rej] *= 0.5
            failed[rej] |= ds[rej] < step_min
    G = np.full(P, complex(np.nan, np.nan))
    if done.any():
        G[done] = system.cauchy(v[done], target[done])
    return NewtonResult(target, G, done.copy(), rounds, evaluations, v)


def from_either(system: NewtonSystem, x: np.ndarray, eps: np.ndarray | float,
                first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray],
                **options) -> tuple[np.ndarray, np.ndarray]:
    """(unknowns, converged) at the targets x + i eps (as :func:`lilypads`'), each walked
    from two starts at once, ``first`` and ``second`` ((zeta0, v0) each, one row per
    target), the first walk to arrive stopping the other (``partner``): where a target may
    lie on either side of an edge (the ends of a bisection's bracket, a log panel's
    converged neighbours below and above a node), the walk from the wrong side fails at the
    branch point. Where both arrive, the first start's solution."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    n = x.size
    eps = np.broadcast_to(np.asarray(eps, dtype=float), x.shape)
    r = lilypads(system, np.tile(x, 2), np.tile(eps, 2),
                 start=(np.concatenate([first[0], second[0]]),
                        np.concatenate([first[1], second[1]])),
                 partner=np.r_[np.arange(n, 2 * n), np.arange(n)], **options)
    use_second = r.converged[n:] & ~r.converged[:n]
    unknowns = np.where(use_second[:, None], r.unknowns[n:], r.unknowns[:n])
    return unknowns, r.converged[:n] | r.converged[n:]
