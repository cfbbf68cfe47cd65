"""Monte Carlo side of freeness-lab: weight ensembles, random MLPs, Jacobians, H_L and
empirical spectral moments.

Never imports :mod:`freeness_lab.theory` (``docs/conventions.md`` section 3).
"""

from freeness_lab.simulate.ensembles import (
    gaussian_matrix,
    haar_orthogonal,
    haar_unitary,
    orthogonal_block,
    plain_qr_orthogonal,
    sample_weight,
    single_blas_thread,
)
from freeness_lab.simulate.network import (
    EXPLICIT_FIM_MAX_WIDTH,
    SampledNetwork,
    jacobian_spectrum,
    sample_network,
)
from freeness_lab.simulate.spectra import (
    MomentSummary,
    moments_across_trials,
    spectral_moments,
    weight_traces,
)

__all__ = [
    "EXPLICIT_FIM_MAX_WIDTH",
    "MomentSummary",
    "SampledNetwork",
    "gaussian_matrix",
    "haar_orthogonal",
    "haar_unitary",
    "jacobian_spectrum",
    "moments_across_trials",
    "orthogonal_block",
    "plain_qr_orthogonal",
    "sample_network",
    "sample_weight",
    "single_blas_thread",
    "spectral_moments",
    "weight_traces",
]
