"""Figure 2, Pennington, Schoenholz & Ganguli (AISTATS 2018): an alias of the app's preset.

    python experiments/fig2_pennington2018/run.py [size=small|full] [overrides...]

runs ``freeness-lab experiment=pennington2018[_small] [overrides...]``
(``conf/experiment/pennington2018.yaml``): the study
:mod:`freeness_lab.harness.studies.pennington2018` (double scaling
mu_2/mu_1^2 - 1 = sigma_0^2 / L: convergence of the moments to the S-transform limit of each
class, collapse within the smooth class; Monte Carlo sup-cdf distances reported). Outputs,
resume and provenance are the app's (README, "Outputs"); claims in ``summary.md``.
"""

import sys

from freeness_lab.harness.app import figure_main

if __name__ == "__main__":
    sys.exit(figure_main("pennington2018"))
