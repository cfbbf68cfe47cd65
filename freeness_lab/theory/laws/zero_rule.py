"""The contour rule near a double zero of g = phi'^2 (phi' = 0: SiLU, GELU).

Within ZERO_LOCAL sqrt(q) of a double zero h0 of g the rule of
:class:`~freeness_lab.theory.laws.smooth_d2.SmoothD2Law` is built in the local variable
sigma = h - h0 (s - h0 would keep 16 - k digits at 10^-k) from the Taylor series of phi' at
h0, graded with ratio ZERO_RATIO = 2 down to ZERO_GRADING_FLOOR sqrt(q): psi(omega) has poles
at h0 +- (g''(h0) omega / 2)^(-1/2), and deep products need |omega| up to ~1e60 (their
density near 0 is ~ x^(delta - 1) with a small delta: the subordination points of the D^2
factors reach omega ~ e^100 at x ~ e^-10000).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["ZERO_GRADING_FLOOR", "ZERO_LOCAL", "ZERO_RATIO", "ZERO_TAYLOR_TERMS",
           "taylor_coefficients", "zero_rule"]

#: half-width (times sqrt(q)) of the local rule around a double zero of g
ZERO_LOCAL = 1e-3
#: the local rule's grading stops at this distance (times sqrt(q)) from the zero
ZERO_GRADING_FLOOR = 1e-40
#: ratio of consecutive panel ends of the local rule's grading
ZERO_RATIO = 2.0
#: Taylor terms of phi' at a double zero of g (the tail at |sigma| <= 1e-3 is below 1e-30)
ZERO_TAYLOR_TERMS = 12


def taylor_coefficients(dphi: Callable[[np.ndarray], np.ndarray], h0: float,
                        radius: float, points: int) -> np.ndarray:
    """b_0..b_K (K = ZERO_TAYLOR_TERMS), the Taylor coefficients of phi' at h0, by Cauchy's
    integral formula on the circle |h - h0| = ``radius`` (trapezoidal rule, 2 ``points``
    points); b_0 = phi'(h0) is rounding noise at a zero and is set to 0 (the zero is taken
    at h0 exactly, which moves the law by ~1e-16)."""
    theta = 2 * np.pi * np.arange(2 * points) / (2 * points)
    vals = dphi(h0 + radius * np.exp(1j * theta))
    k = np.arange(ZERO_TAYLOR_TERMS + 1)
    b = (vals[None, :] * np.exp(-1j * np.outer(k, theta))).mean(1).real
    b = b / radius**k
    b[0] = 0.0
    return b


def zero_rule(b: np.ndarray, h0: float, q: float, slope_r: float, slope_l: float,
              gl: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Contour rule on |s - h0| <= ZERO_LOCAL sqrt(q) around a double zero h0 of g.

    In sigma = s - h0 the contour is h = h0 + sigma (1 - i k_pm) on either side,
    k_pm = D(h0 +- sigma_loc) / sigma_loc (continuous with the outer rule, on Plemelj's
    side as D ~ c sigma / sqrt 5 is), and g(h) = (sum_k b_k tau^k)^2, tau = h - h0, with
    b_k the Taylor coefficients of phi' at h0 (:func:`taylor_coefficients`). Panels are
    graded with ratio ZERO_RATIO = 2 from sigma_loc down to ZERO_GRADING_FLOOR sqrt(q)
    (16-point Gauss-Legendre on [a, 2a], the singularity of 1/g at 0 three half-widths from
    the panel's centre: error ~ (3 + sqrt 8)^-32), and one panel covers [-floor, floor].

    Parameters
    ----------
    b : ndarray
        Taylor coefficients of phi' at h0, b_0 = 0.
    h0, q : float
        The double zero and the variance of h.
    slope_r, slope_l : float
        k_+ and k_-: D(h0 +- sigma_loc) / (+- sigma_loc), D the outer rule's deformation.
    gl : (ndarray, ndarray)
        Gauss-Legendre nodes and weights on [-1, 1] of one panel.

    Returns
    -------
    nodes, weights : complex ndarray
        g(h_j) and the weights p_q(h_j) h'(s_j) w_j.
    """
    sq = math.sqrt(q)
    loc = ZERO_LOCAL * sq
    levels = int(math.ceil(math.log(ZERO_LOCAL / ZERO_GRADING_FLOOR, ZERO_RATIO)))
    ends = loc * ZERO_RATIO ** -np.arange(levels + 1.0)
    t, wt = gl
    nodes, weights = [], []
    for sign, slope in ((1.0, slope_r), (-1.0, slope_l)):
        lo, hi = ends[1:], ends[:-1]
        sigma = sign * (0.5 * (lo + hi)[:, None] + 0.5 * (hi - lo)[:, None] * t).ravel()
        ws = (0.5 * (hi - lo)[:, None] * wt).ravel()
        if sign > 0:  # the middle panel [-floor, floor], on the right side's slope
            sigma = np.concatenate([sigma, ends[-1] * t])
            ws = np.concatenate([ws, ends[-1] * wt])
        tau = sigma * (1.0 - 1j * slope)
        dphi = np.polynomial.polynomial.polyval(tau, b)
        h = h0 + tau
        nodes.append(dphi * dphi)
        weights.append(ws * (1.0 - 1j * slope) * np.exp(-0.5 * h * h / q)
                       / math.sqrt(2 * math.pi * q))
    return np.concatenate(nodes), np.concatenate(weights)
