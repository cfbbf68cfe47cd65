"""Newton "lilypads" solver for the Cauchy transform of free multiplicative convolutions.

Conventions: ``docs/conventions.md``, section "Numerics".

* :mod:`~freeness_lab.theory.newton.protocol` -- the contract of a system
  (:class:`NewtonSystem`, :class:`LawSystem`);
* :mod:`~freeness_lab.theory.newton.product` -- the arrow system of a free product;
* :mod:`~freeness_lab.theory.newton.chain` -- the block-tridiagonal system of a shift chain;
* :mod:`~freeness_lab.theory.newton.implicit` -- a factor without explicit S (subordination);
* :mod:`~freeness_lab.theory.newton.quadrature_rule` -- fast psi sums of a quadrature rule;
* :mod:`~freeness_lab.theory.newton.rational_rule` -- their certified rational fit (AAA with
  an updated QR factorization, :mod:`~freeness_lab.theory.newton.aaa`, trained on G at the
  boundary of its region, :mod:`~freeness_lab.theory.newton.cauchy_sum`), with
  :mod:`~freeness_lab.theory.newton.zero_levels` (the sums near 0, level by level) and
  :mod:`~freeness_lab.theory.newton.rule_stack` (every factor's rule in one evaluation);
* :mod:`~freeness_lab.theory.newton.log_zeta` -- either system in ell = log zeta';
* :mod:`~freeness_lab.theory.newton.lilypads` -- the homotopy (with
  :mod:`~freeness_lab.theory.newton.far_field`, :mod:`~freeness_lab.theory.newton.path`,
  :mod:`~freeness_lab.theory.newton.corrector`; BLAS pinned to one thread,
  :mod:`~freeness_lab.theory.newton.blas`).
"""

from freeness_lab.theory.newton.chain import ChainLayer, ChainSystem
from freeness_lab.theory.newton.implicit import ImplicitFactor
from freeness_lab.theory.newton.lilypads import NewtonResult, from_either, lilypads
from freeness_lab.theory.newton.log_zeta import LogZetaSystem
from freeness_lab.theory.newton.product import ProductSystem
from freeness_lab.theory.newton.protocol import LawSystem, NewtonSystem
from freeness_lab.theory.newton.quadrature_rule import QuadratureRule, psi_quadrature

__all__ = ["ChainLayer", "ChainSystem", "ImplicitFactor", "LawSystem", "LogZetaSystem",
           "NewtonResult", "NewtonSystem", "ProductSystem", "QuadratureRule", "from_either",
           "lilypads", "psi_quadrature"]
