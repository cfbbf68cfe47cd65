"""Spectral laws: the interface and the building blocks of free products.

* :mod:`~freeness_lab.theory.laws.base` -- :class:`SpectralLaw`, the interface (atoms plus an
  absolutely continuous part, argument checks once for every law);
* :mod:`~freeness_lab.theory.laws.elementary` -- :func:`delta`, :class:`DiscreteLaw`,
  :func:`bernoulli`, :class:`MarchenkoPastur`, :class:`QuadratureLaw`;
* :mod:`~freeness_lab.theory.laws.smooth_d2` -- :class:`SmoothD2Law`, the law of phi'(h)^2
  for a smooth phi with its contour rule (its local rule at a double zero of phi'^2:
  :mod:`~freeness_lab.theory.laws.zero_rule`);
* :mod:`~freeness_lab.theory.laws.factor` -- :func:`d2_factor`, the law of D^2 as a factor.

Explicit S-transforms are :class:`~freeness_lab.theory.log_terms.LogTerms`. Conventions:
``docs/conventions.md``, section "Objects and conventions".
"""

from freeness_lab.theory.laws.base import SpectralLaw
from freeness_lab.theory.laws.elementary import (
    DiscreteLaw,
    MarchenkoPastur,
    QuadratureLaw,
    bernoulli,
    delta,
    narayana,
)
from freeness_lab.theory.laws.factor import d2_factor
from freeness_lab.theory.laws.smooth_d2 import SmoothD2Law

__all__ = ["DiscreteLaw", "MarchenkoPastur", "QuadratureLaw", "SmoothD2Law", "SpectralLaw",
           "bernoulli", "d2_factor", "delta", "narayana"]
