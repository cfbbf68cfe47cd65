"""Where the contour rule of the law of phi'(h)^2 ends on each side, and where the Gaussian
mass beyond goes (:func:`rule_ends`, for :class:`~freeness_lab.theory.laws.smooth_d2.
SmoothD2Law`).

h ~ N(0, q) is integrated on |h| <= H = min(Z_CUT sqrt(q), 2 H_flat), H_flat where g = phi'^2
is flat to 1e-17 (:func:`~freeness_lab.theory.meanfield.flat_beyond`). When H = 2 H_flat the
contour returns to the real axis from H_flat on and the mass beyond is lumped at g(+-H):
exact to double precision where g has a positive limit (SiLU and GELU on the right: g(H) = 1
to 1e-17), and where that mass is below LUMP_MASS. Deep SiLU and GELU layers, whose q^l grows
without bound, have 10-50 % of their mass beyond on the left, where g -> 0 (at q = 1e5,
SiLU's g runs from 1e-61 at H down to 1e-800): there the rule goes on, and the mass at
g < ~1e-258 moves to an atom at 0 through a smooth window (:class:`RuleEnd`).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import optimize, special

from freeness_lab.activations import get_activation
from freeness_lab.theory.meanfield import Z_CUT, flat_beyond

__all__ = ["G_FLOOR", "LUMP_MASS", "TAIL_EFOLDS", "WINDOW_EFOLDS", "WINDOW_SIGMAS", "RuleEnd",
           "in_tail", "rule_ends", "turn_to_tail", "window"]

#: Gaussian mass beyond H up to which it is lumped at g(+-H)
LUMP_MASS = 1e-17
#: where a window is needed, the rule ends at g = G_FLOOR, WINDOW_SIGMAS widths below the
#: window's centre, and a width spans WINDOW_EFOLDS e-folds of g
G_FLOOR = 1e-290
WINDOW_EFOLDS, WINDOW_SIGMAS = 8.0, 9.0
#: the contour turns to its tail form over this many e-folds of g beyond H
TAIL_EFOLDS = 4.0


class RuleEnd(NamedTuple):
    """Where the rule ends on one side (distances |s| from 0).

    Attributes
    ----------
    end : float
        The rule covers |s| <= end on this side.
    taper : float or None
        The contour returns to the real axis from |s| = taper on (None: it does not).
    centre, width : float or None
        The window Phi((centre - |h|) / width) on this side (None: no window).
    atom : float
        The mass the window moves to 0.
    tail : (float, float) or None
        Where the rule goes on beyond H (window), the contour's deformation turns from its
        bulk form to the tail's over this range of |s| (the first TAIL_EFOLDS e-folds of g).
    """

    end: float
    taper: float | None
    centre: float | None
    width: float | None
    atom: float
    tail: tuple[float, float] | None = None


def rule_ends(activation: str, q: float) -> tuple[RuleEnd, RuleEnd]:
    """Where the contour rule of the law of g(h) = phi'(h)^2, h ~ N(0, q), ends on the left
    and on the right (module docstring).

    Where more than LUMP_MASS lies beyond H on a side where g -> 0, the continuous part is
    multiplied by the window W(h) = Phi((c - |h|) / d), entire in h, so the contour
    integral keeps its value, and the mass it takes, E[1 - W(h)] = Phi(-c / sqrt(q + d^2))
    (h + d Z ~ N(0, q + d^2)), is an atom at 0. The centre c is where
    g = G_FLOOR e^(WINDOW_SIGMAS WINDOW_EFOLDS) (1.1e-259) and the rule ends at
    c + WINDOW_SIGMAS d, where g = G_FLOOR and W = 1e-19 (no taper, no tail): the law
    changes at g below ~1e-250 only (its moments by less than 1e-250), and smoothly: a
    width d spans WINDOW_EFOLDS e-folds of g, so that the density of a product of such laws
    decays smoothly below it too (:func:`~freeness_lab.theory.density.deep.deep_mass`).

    Parameters
    ----------
    activation : str
        A smooth registered activation.
    q : float
        The variance of h.

    Returns
    -------
    (RuleEnd, RuleEnd)
        Left, right.
    """
    act = get_activation(activation)
    sq = math.sqrt(q)
    flat = flat_beyond(activation)
    H = min(Z_CUT * sq, 2.0 * flat)
    top = Z_CUT * sq
    out = []
    for sign in (-1.0, 1.0):
        plain = RuleEnd(H, flat if H == 2.0 * flat else None, None, None, 0.0)
        limit = float(act.dphi(np.array([sign * 1e4]))[0]) ** 2
        if (limit > 0 or H == top or special.ndtr(-H / sq) <= LUMP_MASS
                or _log_excess(activation, sign, top, G_FLOOR) > 0):
            out.append(plain)
            continue
        # g = G_FLOOR within a few hundred of 0, however large q: bracketed by doubling from
        # H (capped at top, beyond which g < G_FLOOR already)
        bracket = min(_doubled_bracket(activation, sign, H, G_FLOOR), top)
        end, centre, turned = _window_points(
            activation, sign, H, bracket, G_FLOOR,
            G_FLOOR * math.exp(WINDOW_SIGMAS * WINDOW_EFOLDS), TAIL_EFOLDS)
        width = (end - centre) / WINDOW_SIGMAS
        atom = float(special.ndtr(-centre / math.sqrt(q + width**2)))
        out.append(RuleEnd(end, None, centre, width, atom, (H, turned)) if atom > LUMP_MASS
                   else plain)
    return out[0], out[1]


def _log_excess(activation: str, sign: float, s: float, level: float) -> float:
    """log g(sign s) - log level, g = phi'^2 from phi' continued to complex h (no
    cancellation in the tails: 1 - tanh^2 is 0 beyond 19)."""
    g = abs(complex(get_activation(activation).analytic_dphi(np.array([sign * s + 0j]))[0]))
    return math.log(max(g**2, 1e-320)) - math.log(level)


@functools.lru_cache(maxsize=256)
def _doubled_bracket(activation: str, sign: float, H: float, floor: float) -> float:
    """The first 2^k H (k >= 0) where g has fallen to ``floor``."""
    bracket = H
    while _log_excess(activation, sign, bracket, floor) > 0:
        bracket *= 2.0
    return bracket


@functools.lru_cache(maxsize=256)
def _window_points(activation: str, sign: float, H: float, bracket: float, floor: float,
                   centre_level: float, tail_efolds: float) -> tuple[float, float, float]:
    """(end, centre, turned) of a side's window (:func:`rule_ends`): where g falls to
    ``floor`` (G_FLOOR), to ``centre_level``, and ``tail_efolds`` e-folds below g(H), each
    in [H, bracket]. They depend on q only through the bracket (H = 2 flat_beyond wherever
    a side has a window), so the layers of a deep network share them (every argument is
    part of the cache's key): SiLU at depth 1000 found them 2 x 1000 times, 0.57 s of its
    0.66 s."""
    args = (activation, sign)
    end = optimize.brentq(lambda s: _log_excess(*args, s, floor), H, bracket, xtol=1e-12)
    centre = optimize.brentq(lambda s: _log_excess(*args, s, centre_level), H, end,
                             xtol=1e-12)
    turned_level = math.exp(_log_excess(*args, H, 1.0) - tail_efolds)
    turned = optimize.brentq(lambda s: _log_excess(*args, s, turned_level), H, end,
                             xtol=1e-12)
    return end, centre, turned


def window(ends: tuple[RuleEnd, RuleEnd], h: np.ndarray) -> np.ndarray:
    """The product of the windows Phi((c - |h|) / d) of both sides at complex h (1 where a
    side has none; |h| continued analytically as -h on the left, h on the right)."""
    out = np.ones(np.shape(h), dtype=complex)
    for sign, side in zip((-1.0, 1.0), ends, strict=True):
        if side.centre is not None:
            out = out * special.ndtr((side.centre - sign * h) / side.width)
    return out


def turn_to_tail(ends: tuple[RuleEnd, RuleEnd], s: np.ndarray, r: np.ndarray, dr: np.ndarray,
                 D: np.ndarray, dD: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The contour's deformation D(s), D'(s) turned to pi / (2 r) beyond H on a windowed
    side, by a cubic step over ``RuleEnd.tail`` (r = (log g)' there, g ~ e^(-|r s|)):
    arg g(h) ~ -r D = -pi/2, so a real zeta's poles 1 / (zeta - g) lie pi / (2 |r|) above
    and below the contour, and panels can be pi / |r| wide (:func:`in_tail`)."""
    for sign, side in zip((-1.0, 1.0), ends, strict=True):
        if side.tail is None:
            continue
        a, b = side.tail
        x = np.clip((sign * s - a) / (b - a), 0.0, 1.0)
        step, dstep = x * x * (3.0 - 2.0 * x), 6.0 * x * (1.0 - x) * sign / (b - a)
        safe = np.where(r != 0, r, 1.0)
        D_tail = np.where(r != 0, 0.5 * math.pi / safe, D)
        dD_tail = np.where(r != 0, -0.5 * math.pi * dr / safe**2, dD)
        D, dD = D + step * (D_tail - D), dD + step * (dD_tail - dD) + dstep * (D_tail - D)
    return D, dD


def in_tail(ends: tuple[RuleEnd, RuleEnd], s: np.ndarray) -> np.ndarray:
    """Whether s lies beyond the turn of the contour on a windowed side
    (:func:`turn_to_tail`), where only the poles' distance bounds a panel's width."""
    out = np.zeros(np.shape(s), dtype=bool)
    for sign, side in zip((-1.0, 1.0), ends, strict=True):
        if side.tail is not None:
            out |= sign * s > side.tail[1]
    return out
