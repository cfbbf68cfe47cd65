"""freeness-lab: asymptotic freeness of layerwise Jacobians of random MLPs, by Monte Carlo
against free-probability predictions.

Subpackages
-----------
simulate
    Monte Carlo side: weight ensembles, random MLPs, Jacobians, H_L, empirical moments.
theory
    Free-probability side: mean field, laws of D^2, S-transforms, free convolutions, the
    Newton solver for densities, free predictions of mixed moments.
harness
    Hydra runner, sweeps, storage, plots and reports.

``simulate`` and ``theory`` never import each other: they are two independent routes to the
same numbers, compared by the harness and the tests.
"""

from freeness_lab.activations import ACTIVATION_NAMES, Activation, get_activation
from freeness_lab.spec import WEIGHT_ENSEMBLES, NetworkSpec, SpecError

__all__ = [
    "ACTIVATION_NAMES",
    "Activation",
    "NetworkSpec",
    "SpecError",
    "WEIGHT_ENSEMBLES",
    "get_activation",
]
__version__ = "0.1.0"
