"""A factor without an explicit S-transform: its subordination unknown and equation.

Such a factor i (power k_i, argument scale a_i) keeps one unknown u_i = log chi_i(a_i m)
(Belinschi-Bercovici subordination, omega_i = e^{u_i}) with the equation

    F_i = log psi_i(e^{u_i}) - log a_i - log m = 0,

psi_i summed over the factor's rule: its quadrature (:class:`~freeness_lab.theory.newton.
quadrature_rule.QuadratureRule`) or a certified rational fit of it (:class:`~freeness_lab.
theory.newton.rational_rule.RationalRule`); it is shared by the product and the chain
systems.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from freeness_lab.theory.branches import log_lower
from freeness_lab.theory.log_terms import TermsInR

__all__ = ["ImplicitFactor", "PsiRule", "implicit_equation", "implicit_residual"]


class PsiRule(Protocol):
    """What a factor's rule provides: (psi, 1 + psi, omega psi') at any array of omega."""

    def psi_parts(self, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(psi, 1 + psi, omega psi') at omega (any shape)."""


def implicit_equation(parts, log_am: TermsInR, log_1am: TermsInR, r, *, er=None):
    """psi(e^u) = a m, as log psi - log(a m) where |1 - p + a m| >= 1/2 and as
    log(1 + psi - p) - log(1 - p + a m) near a m = p - 1 (both sides then lose nothing to
    cancellation; p the factor's mass at 0, ``log_1am`` its log(1 - p + a m), the rule's
    "1 + psi" its 1 + psi - p: :class:`ImplicitFactor`). Returns (F, dF/du, dF/dr).

    ``parts`` = (psi, 1 + psi, omega psi') at omega = e^u (the factor's rule, evaluated by
    the caller for all its factors at once: :class:`~freeness_lab.theory.newton.rule_stack.
    RuleStack`). ``er`` = e^r, when the caller has it."""
    return implicit_residual(parts, log_am.value_and_slope(r, er),
                             log_1am.value_and_slope(r, er))


def implicit_residual(parts, la, l1):
    """:func:`implicit_equation` from the log-terms evaluated by the caller: ``la`` =
    (log(a m), its d/dr), ``l1`` = (log(1 - p + a m), its d/dr) (the chain system takes them
    from the one evaluation of all its log-terms). Returns (F, dF/du, dF/dr)."""
    psi, one_psi, dpsi = parts
    la, dla = la
    l1, dl1 = l1
    near = np.abs(np.exp(l1)) < 0.5
    F = np.where(near, log_lower(one_psi) - l1, log_lower(psi) - la)
    dF_du = np.where(near, dpsi / one_psi, dpsi / psi)
    dF_dr = np.where(near, -dl1, -dla)
    return F, dF_du, dF_dr


@dataclass(frozen=True)
class ImplicitFactor:
    """A factor without explicit S: psi through its rule (the law's ``psi_rule``), power k,
    argument scale a, mass p at 0.

    With an atom at 0 the rule holds the continuous part only (its "1 + psi" is
    1 + psi - p, the weights summing to 1 - p), and the equation near a m = -1 is
    log(1 + psi - p) = log(1 - p + a m): as zeta -> 0, 1 + psi tends to p and the
    information is all in 1 + psi - p (for the factor whose atom is the product's,
    1 - p + m = e^r exactly: :class:`~freeness_lab.theory.log_terms.TermsInR`)."""

    rule: PsiRule
    power: float
    scale: float
    chi_series: np.ndarray  # chi_i coefficients c_1..c_n, for the far-field start
    atom: float = 0.0

