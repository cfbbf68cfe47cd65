"""Theory side: mean field, laws of D^2, free convolutions, the Newton solver, free predictions.

Never imports :mod:`freeness_lab.simulate`.
"""

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

__all__ = [
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
