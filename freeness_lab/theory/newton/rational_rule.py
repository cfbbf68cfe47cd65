"""A certified rational fit of a contour rule's Cauchy transform (:class:`RationalRule`).

The law of phi'(h)^2 for a smooth phi enters the Newton systems through its contour rule:
thousands of complex nodes, summed at every Newton step of every point
(:class:`~freeness_lab.theory.newton.quadrature_rule.QuadratureRule`). Its Cauchy transform
G(zeta) = sum_j w_j / (zeta - t_j) is analytic on the closed upper half-plane except at a few
singular points on the real axis, whatever the rule's size: the law's singular values
(0, the stationary values of g = phi'^2, its limits at +-infinity). There a rational
function of a few dozen terms, found by the AAA algorithm (Nakatsukasa, Sete & Trefethen,
SIAM J. Sci. Comput. 40 (2018) A1494; :func:`~freeness_lab.theory.newton.aaa.aaa`, scipy's
``AAA`` with an updated QR factorization of its Loewner matrix), reproduces it to rounding,
and costs a few hundred flops per point instead of the rule's tens of thousands. The rule's
G at the fit's sample points is summed by :func:`~freeness_lab.theory.newton.cauchy_sum.
cauchy_sum` (to rounding).

The region and its certificate. Omega = {Im zeta >= 0, |zeta - c| <= R} minus the discs
|zeta - b| < r_b around the singular points b (c, R: the centre and twice the radius of the
rule's nodes; r_b = 2 ``DISC`` times the largest singular point, ``ZERO_DISC`` at 0, where the
singular points within it join it). The fit's error e = r_fit - G is analytic in Omega when
no pole of the fit lies in it, so |e| is largest on the boundary (maximum modulus
principle): the real segment between the discs, the discs' upper half-circles and the arc
|zeta - c| = R. AAA fits G on boundary points of the region with discs of half these radii,
graded geometrically toward them; a pole it puts at the edge of such a disc, to follow the
singularity there, lies inside Omega's discs. The fit is accepted when its error at these
points and at the midpoints between them outside Omega's discs, and on Omega's half-circles,
is below ``FIT_TOL`` max |G|, and no pole lies in Omega (tried once more on twice as many
points); otherwise the rule is used everywhere (:attr:`RationalRule.fitted` is False,
:attr:`RationalRule.error` says by how much the fit missed). The fit answers in Omega where
|Im G| >= ``rule_stack.IM_FLOOR`` max |G|: an absolute error, however small, would swamp the tiny
imaginary parts the support search measures near the axis outside the support (and where a
density is tiny). Elsewhere:

* |zeta - c| > R: G's Laurent series about c (every node within R / 2 of c: 56 terms
  leave 2^-56 of the mass);
* |zeta| within the disc around 0 (either half-plane): the rule by levels about 0
  (:class:`~freeness_lab.theory.newton.zero_levels.ZeroLevels`, the rule's values to
  rounding; the lower tail of a deep product lives there);
* inside another disc, below the real axis (a Newton iterate overshooting) or below the
  floor of Im G: the rule itself.

Real nodes of the rule (the Gaussian tails lumped at g(+-H)) are atoms with tiny masses:
they are summed exactly, on top of the fit of the other nodes.
"""

from __future__ import annotations

import math

import numpy as np

from freeness_lab.theory.newton.aaa import aaa
from freeness_lab.theory.newton.blas import one_blas_thread
from freeness_lab.theory.newton.cauchy_sum import cauchy_sum
from freeness_lab.theory.newton.quadrature_rule import QuadratureRule, powers
from freeness_lab.theory.newton.rule_stack import RuleStack
from freeness_lab.theory.newton.zero_levels import ZeroLevels

__all__ = ["DISC", "FIT_TOL", "MAX_TERMS", "RationalRule"]

#: half the radius of the discs left to the rule around each singular point, relative to the
#: largest one
DISC = 1e-3
#: the radius of the disc around 0, relative to the largest singular point (the singular
#: values below it -- where the rule's tails end -- join it). Smaller discs cost more terms
#: and do not take the lower tail of a deep product (x ~ 1e-12) from the rule: its factors
#: are then evaluated within 1e-6 of 0
ZERO_DISC = 2 * DISC
#: the fit is accepted when its error on the boundary of its region is below this times
#: max |G| there
FIT_TOL = 1e-11
#: AAA's removal of spurious pole-zero pairs (Froissart doublets): poles whose residue is
#: below this times the typical |G| times their distance to the nearest sample point (the
#: default, 1e-13, leaves some on the real axis, with residues ~1e-15)
CLEAN_UP_TOL = 1e-10
#: at most this many terms in the barycentric form (the AAA budget)
MAX_TERMS = 150
#: AAA stops at this fraction of FIT_TOL on its training points (the margin the midpoints
#: and the half-circles of the certificate need)
AAA_RTOL = 0.01
#: boundary points per end of each real gap between discs, and per half-circle
GAP_POINTS, ARC_POINTS = 32, 20
#: Laurent terms beyond |zeta - c| = R (the nodes lie within R / 2 of c)
FAR_TERMS = 56
#: nodes per block of the far moments' powers (:meth:`RationalRule._far_moments`)
FAR_CHUNK = 2048


def _graded(a: float, b: float, first_a: float, first_b: float, n: int) -> np.ndarray:
    """Points of [a, b], its ends included: n from each end toward the middle, geometric
    from ``first_a`` (``first_b``) at a (b), and the middle."""
    half = 0.5 * (b - a)
    if half <= 2.0 * max(first_a, first_b):
        return np.linspace(a, b, 9)
    from_a = np.geomspace(first_a, half, n + 1)[:-1]
    from_b = np.geomspace(first_b, half, n + 1)[:-1]
    return np.concatenate([[a], a + from_a, [a + half], (b - from_b)[::-1], [b]])


class RationalRule:
    """(psi, 1 + psi, omega psi') of a contour rule through a certified AAA fit of its G.

    Parameters
    ----------
    nodes, weights : complex ndarray
        The rule: G(zeta) = sum_j weights_j / (zeta - nodes_j), accurate on the closed upper
        half-plane. Real nodes are summed exactly, the others fitted.
    singular : array of float
        The real points where G may be singular (0, the stationary values, the limits of g,
        the ends of its range): each keeps a disc (radii ``discs``, module docstring) where
        the rule is summed.
    max_terms : int
        The AAA budget (``MAX_TERMS``).
    start : PsiRule, optional
        The rule of a nearby G (the previous layer of a network, whose q^l differs
        little): when it is a fitted RationalRule, AAA starts from the sample points
        nearest its support points, all at once, and its greedy steps go on from there
        (:func:`~freeness_lab.theory.newton.aaa.aaa`: a few steps instead of 50-80, for a
        few more terms). The certificate is the same; a fit from it that fails the
        certificate is made again from scratch.

    Attributes
    ----------
    fitted : bool
        Whether the fit met its certificate (module docstring); if not, every point is
        summed by the rule.
    started : int
        Support points the accepted fit started from (``start``; 0: from scratch).
    error : float
        The fit's largest error on the boundary of its region, relative to max |G| there.
    terms : int
        Terms of the barycentric form (0 when not fitted).
    scale : float
        max |G| on the boundary of the region (NaN when no fit was made).
    rule : QuadratureRule
        The rule itself (summed where the fit does not answer).
    zero, zero_radius : ZeroLevels or None, float
        The rule by levels about 0, for |zeta| <= ``zero_radius`` (the disc holding 0);
        None when not fitted or when no disc holds 0.
    centre, radius, singular, discs
        c, R, the sorted singular points and their discs' radii.
    support_points, support_values, bary_weights : complex ndarray
        The barycentric form r(z) = sum_j b_j v_j / (z - z_j) / sum_j b_j / (z - z_j) of
        the fitted nodes' G (when fitted).
    atoms, fit_mass
        (t, w) of the rule's real nodes (summed exactly) and the mass of the others.
    far : complex ndarray (FAR_TERMS, 3)
        The Laurent coefficients about c (:meth:`_far_moments`).
    """

    def __init__(self, nodes: np.ndarray, weights: np.ndarray, singular: np.ndarray, *,
                 max_terms: int = MAX_TERMS, start: object = None):
        nodes = np.asarray(nodes, dtype=complex).ravel()
        weights = np.asarray(weights, dtype=complex).ravel()
        self.rule = QuadratureRule(nodes, weights)
        real = nodes.imag == 0
        self.atoms = nodes[real], weights[real]
        self.fit_mass = weights[~real].sum()
        singular = np.unique(np.asarray(singular, dtype=float))
        self.centre = complex(0.5 * (nodes.real.min() + nodes.real.max()))
        self.radius = 2.0 * float(np.abs(nodes - self.centre).max())
        self.singular = singular
        top = float(np.abs(singular).max(initial=self.radius / 2))
        # disc radii: 2 DISC top; at 0 (with the singular points within it) ZERO_DISC top
        near_zero = singular <= ZERO_DISC * top
        zero_r = max(ZERO_DISC * top, 2.0 * float(singular[near_zero].max(initial=0.0)))
        self.discs = np.where(near_zero, zero_r, 2.0 * DISC * top)
        self.fitted, self.error, self.terms, self.scale = False, math.inf, 0, math.nan
        self.started = 0
        # at_zero: the disc holding 0, where the rule by levels about 0 answers (with the
        # fit; without it, the rule answers everywhere)
        at_zero = np.abs(singular) <= self.discs
        self.zero_radius = float((np.abs(singular) + self.discs)[at_zero].max(initial=0.0))
        # BLAS threads only slow these small products down (several times over when other
        # processes hold the cores)
        with one_blas_thread():
            self._far_moments(nodes, weights)
            self._fit(max_terms, start.support_points
                      if isinstance(start, RationalRule) and start.fitted else None)
            self.zero = (ZeroLevels(nodes, weights, self.zero_radius)
                         if self.fitted and self.zero_radius > 0 else None)
        self._stack = RuleStack([self]) if self.fitted else None

    # -- the fit and its certificate ----------------------------------------------------------
    def _boundary(self, shrink: float, density: int) -> list[np.ndarray]:
        """Points on the boundary of the region with the discs shrunk by ``shrink``, one
        array per piece (sorted along it): the real gaps between the (merged) discs, graded
        toward them, the discs' half-circles (:meth:`_arcs`) and the outer arc."""
        c, R = self.centre.real, self.radius
        cuts, first = [c - R], [R]
        for b, r in zip(self.singular, shrink * self.discs, strict=True):  # sorted: merge
            if len(cuts) > 1 and b - r <= cuts[-1]:
                if b + r > cuts[-1]:
                    cuts[-1], first[-1] = b + r, 0.1 * r
            else:
                cuts += [b - r, b + r]
                first += [0.1 * r, 0.1 * r]
        cuts.append(c + R)
        first.append(R)
        pieces = [_graded(a, b, min(fa, 0.1 * (b - a)), min(fb, 0.1 * (b - a)),
                          density * GAP_POINTS).astype(complex)
                  for a, b, fa, fb in zip(cuts[::2], cuts[1::2], first[::2], first[1::2],
                                          strict=True) if b > a]
        pieces += self._arcs(shrink, density * ARC_POINTS)
        # the outer arc without its ends (the ends of the real segment)
        theta = np.linspace(0.0, math.pi, 2 * density * ARC_POINTS)[1:-1]
        pieces.append(c + R * np.exp(1j * theta))
        return [p for p in pieces if len(p) > 1]

    def _arcs(self, shrink: float, n: int) -> list[np.ndarray]:
        """n points on each half-circle |zeta - b| = shrink r_b, Im zeta > 0, outside the other
        discs (its ends lie on the real gaps)."""
        theta = np.linspace(0.0, math.pi, n)[1:-1]
        out = []
        for b, r in zip(self.singular, shrink * self.discs, strict=True):
            arc = b + r * np.exp(1j * theta)
            out.append(arc[~self._in_discs(arc, shrink * (1.0 - 1e-12))])
        return out

    def _in_discs(self, zeta: np.ndarray, shrink: float = 1.0) -> np.ndarray:
        """Whether zeta lies in a disc around a singular point (radii ``discs`` times
        ``shrink``)."""
        if not len(self.singular):
            return np.zeros(np.shape(zeta), dtype=bool)
        return (np.abs(zeta[:, None] - self.singular) < shrink * self.discs).any(1)

    def _fit(self, max_terms: int, start: np.ndarray | None) -> None:
        """AAA on the boundary with discs of radius disc / 2; the certificate on the boundary
        with discs of radius ``disc``: the training points, the midpoints between them and
        the half-circles of radius ``disc`` (twice as dense), and no pole in that region --
        a pole the fit puts at the edge of a training disc, to follow the singularity, is
        then inside a disc. A fit from ``start`` that fails it is made again from scratch;
        one from scratch that fails it, once more on twice as many points."""
        samples: dict[int, tuple] = {}
        tries = [(1, start)] if start is not None and len(start) else []
        for density, first in [*tries, (1, None), (2, None)]:
            if density not in samples:
                pieces = self._boundary(0.5, density)
                z = np.concatenate(pieces)
                check = np.concatenate([0.5 * (p[1:] + p[:-1]) for p in pieces]
                                       + self._arcs(1.0, 2 * density * ARC_POINTS))
                # the certificate's region: the training points and midpoints outside its
                # discs
                z_out = ~self._in_discs(z, 1.0 - 1e-9)
                check = check[~self._in_discs(check, 1.0 - 1e-9)]
                samples[density] = (z, check, z_out,
                                    self._rule_cauchy(np.concatenate([z, check])))
            z, check, z_out, g = samples[density]
            try:
                fit = aaa(z, g[:len(z)], rtol=AAA_RTOL * FIT_TOL, max_terms=max_terms,
                          clean_up_tol=CLEAN_UP_TOL, start=first)
                poles = fit.poles()
            except (ValueError, np.linalg.LinAlgError):
                continue
            at = np.concatenate([z[z_out], check])
            g = np.concatenate([g[:len(z)][z_out], g[len(z):]])
            self.scale = float(np.abs(g).max())
            self.error = float(np.abs(fit(at) - g).max()) / self.scale
            in_region = ((poles.imag >= 0) & (np.abs(poles - self.centre) <= self.radius)
                         & ~self._in_discs(poles))
            if self.error <= FIT_TOL and not in_region.any():
                break
        else:
            return
        self.fitted, self.terms = True, len(fit.support_points)
        self.started = 0 if first is None else len(first)
        self.support_points = fit.support_points
        self.support_values = fit.support_values
        self.bary_weights = fit.weights

    def _rule_cauchy(self, zeta: np.ndarray) -> np.ndarray:
        """G of the fitted (non-real) nodes at zeta (:func:`~freeness_lab.theory.newton.
        cauchy_sum.cauchy_sum`: the rule's sum to rounding, G only)."""
        fitted = self.rule.nodes.imag != 0
        return cauchy_sum(self.rule.nodes[fitted], self.rule.weights[fitted], zeta)

    # -- the far field -------------------------------------------------------------------------
    def _far_moments(self, nodes: np.ndarray, weights: np.ndarray) -> None:
        """Columns A_k = sum w (t - c)^k / rho^k, B_k = sum w t (t - c)^k / rho^k and
        (k + 1) B_k, rho = R / 2; the powers FAR_CHUNK nodes at a time (the powers of a
        GELU rule's 41,000 nodes at once are 37 MB: 7-44 ms a layer, in chunks 3-4 ms)."""
        d = (nodes - self.centre) / (0.5 * self.radius)
        wt = np.stack([weights, weights * nodes], axis=-1)  # (N, 2)
        sums = np.zeros((FAR_TERMS, 2), dtype=complex)
        for s in range(0, len(d), FAR_CHUNK):
            sums += powers(d[s:s + FAR_CHUNK], FAR_TERMS) @ wt[s:s + FAR_CHUNK]
        b = sums[:, 1]
        self.far = np.stack([sums[:, 0], b, b * np.arange(1, FAR_TERMS + 1)], axis=-1)

    # -- evaluation ----------------------------------------------------------------------------
    def psi_parts(self, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(psi, 1 + psi, omega psi') at omega (any shape): the fit on its region, the
        Laurent series beyond it, the levels about 0 in the disc at 0, the rule elsewhere
        (module docstring; through a :class:`~freeness_lab.theory.newton.rule_stack.
        RuleStack` of one)."""
        if not self.fitted:
            return self.rule.psi_parts(omega)
        om = np.asarray(omega, dtype=complex)
        return tuple(p[..., 0] for p in self._stack.psi_parts(om[..., None]))
