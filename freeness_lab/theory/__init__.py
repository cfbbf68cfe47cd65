"""Theory side: mean field, laws of D^2, free convolutions, the Newton solver, free predictions.

Subpackages: :mod:`~freeness_lab.theory.laws` (the law interface and building blocks),
:mod:`~freeness_lab.theory.products` (free products, shift laws),
:mod:`~freeness_lab.theory.newton` (the lilypads solver), :mod:`~freeness_lab.theory.density`
(solved laws: density, support, quadrature, cdf), :mod:`~freeness_lab.theory.free_cumulants`
(combinatorics). Never imports :mod:`freeness_lab.simulate` or :mod:`freeness_lab.harness`.
"""

from freeness_lab.theory.density import SolvedLaw
from freeness_lab.theory.ensembles import WEIGHT_TRACE_ORDERS, weight_trace_means
from freeness_lab.theory.errors import TheoryUnavailable
from freeness_lab.theory.free_cumulants import (
    Element,
    Family,
    circular_family,
    commutative_family,
    free_cumulants_to_moments,
    free_mixed_moment,
    free_moment,
    haar_unitary_family,
    kreweras_complement,
    moebius_to_top,
    moments_to_free_cumulants,
    multiplicative_convolution_moments,
    noncrossing_partitions,
    univariate_family,
)
from freeness_lab.theory.jacobian_product import jacobian_product_law
from freeness_lab.theory.laws import (
    DiscreteLaw,
    MarchenkoPastur,
    QuadratureLaw,
    SpectralLaw,
    bernoulli,
    d2_factor,
    delta,
)
from freeness_lab.theory.limits import (
    fim_dual_chain_law,
    fim_dual_law,
    fim_dual_mean_variance,
    jacobian_law,
)
from freeness_lab.theory.meanfield import (
    D2Law,
    MeanFieldError,
    chi,
    critical_sigma_w,
    d2_law,
    d2_moments,
    fixed_point,
    gaussian_expectation,
    post_activation_moment,
    post_activation_moments,
    preactivation_variances,
    variance_map,
)
from freeness_lab.theory.products import (
    Factor,
    FreeProduct,
    FreeProductLaw,
    ShiftChainLaw,
    ShiftedLaw,
    ShiftLayer,
    free_product,
    power_atoms,
    product_atoms,
)

__all__ = [
    "DiscreteLaw",
    "Factor",
    "FreeProduct",
    "FreeProductLaw",
    "MarchenkoPastur",
    "QuadratureLaw",
    "ShiftChainLaw",
    "ShiftedLaw",
    "ShiftLayer",
    "SolvedLaw",
    "SpectralLaw",
    "TheoryUnavailable",
    "bernoulli",
    "d2_factor",
    "delta",
    "fim_dual_chain_law",
    "fim_dual_law",
    "fim_dual_mean_variance",
    "free_product",
    "jacobian_law",
    "jacobian_product_law",
    "power_atoms",
    "product_atoms",
    "Element",
    "Family",
    "circular_family",
    "commutative_family",
    "free_cumulants_to_moments",
    "free_mixed_moment",
    "free_moment",
    "haar_unitary_family",
    "kreweras_complement",
    "moebius_to_top",
    "moments_to_free_cumulants",
    "multiplicative_convolution_moments",
    "noncrossing_partitions",
    "univariate_family",
    "WEIGHT_TRACE_ORDERS",
    "weight_trace_means",
    "D2Law",
    "MeanFieldError",
    "chi",
    "critical_sigma_w",
    "d2_law",
    "d2_moments",
    "fixed_point",
    "gaussian_expectation",
    "post_activation_moment",
    "post_activation_moments",
    "preactivation_variances",
    "variance_map",
]
