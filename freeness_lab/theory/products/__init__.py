"""Free multiplicative convolutions and the Hayase-Karakida shift laws.

* :mod:`~freeness_lab.theory.products.atoms` -- Belinschi's atoms, the change of dimension;
* :mod:`~freeness_lab.theory.products.free_product` -- :class:`Factor`, :class:`FreeProduct`
  (series moments, atoms, Newton system);
* :mod:`~freeness_lab.theory.products.product_law` -- :class:`FreeProductLaw`,
  :func:`free_product`;
* :mod:`~freeness_lab.theory.products.shift` -- :class:`ShiftedLaw`, :class:`ShiftLayer`,
  :class:`ShiftChainLaw`.
"""

from freeness_lab.theory.products.atoms import change_dimension, power_atoms, product_atoms
from freeness_lab.theory.products.free_product import Factor, FreeProduct
from freeness_lab.theory.products.product_law import FreeProductLaw, free_product
from freeness_lab.theory.products.shift import ShiftChainLaw, ShiftedLaw, ShiftLayer

__all__ = ["Factor", "FreeProduct", "FreeProductLaw", "ShiftChainLaw", "ShiftLayer",
           "ShiftedLaw", "change_dimension", "free_product", "power_atoms", "product_atoms"]
