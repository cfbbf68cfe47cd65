"""Solved laws: densities, supports, quadratures and cdfs from a Newton system.

* :mod:`~freeness_lab.theory.density.solved` -- :class:`SolvedLaw`, the law object;
* :mod:`~freeness_lab.theory.density.chaining` -- solving a grid of points (chaining);
* :mod:`~freeness_lab.theory.density.support` -- the support: scan and bisection;
* :mod:`~freeness_lab.theory.density.edges` -- +-1/2-power edge fits;
* :mod:`~freeness_lab.theory.density.panels` -- graded panels in x, log x and sqrt x;
* :mod:`~freeness_lab.theory.density.log_panels` -- adaptive refinement of the log panels;
* :mod:`~freeness_lab.theory.density.tail` -- the mass below the lowest log panels;
* :mod:`~freeness_lab.theory.density.deep` -- far below them, by a comb in log zeta;
* :mod:`~freeness_lab.theory.density.quadrature` -- the support quadrature;
* :mod:`~freeness_lab.theory.density.cdf` -- cdf and quantiles.
"""

from freeness_lab.theory.density.solved import SolvedLaw

__all__ = ["SolvedLaw"]
