"""Figure 5, Chhaibi, Daouda & Kahn (NeurIPS 2022): an alias of the app's preset.

    python experiments/fig5_chhaibi2022/run.py [size=small|full] [overrides...]

runs ``freeness-lab experiment=chhaibi2022[_small] [overrides...]``
(``conf/experiment/chhaibi2022.yaml``): the studies
:mod:`freeness_lab.harness.studies.chhaibi2022` (Newton-solver densities of J J^T under
Monte Carlo histograms and the metrics q_0.5, q_0.9 across width-ratio profiles and the
figure's density panels) and :mod:`freeness_lab.harness.studies.chhaibi2022_training` (the
metrics at init of a grid of MLPs against their final loss and test accuracy on
scikit-learn's digits). Outputs, resume and provenance are the app's (README, "Outputs");
claims in ``summary.md``.
"""

import sys

from freeness_lab.harness.app import figure_main

if __name__ == "__main__":
    sys.exit(figure_main("chhaibi2022"))
