"""Figure 1, Pennington, Schoenholz & Ganguli (NIPS 2017), Figs. 1-2: an alias of the app's
preset.

    python experiments/fig1_pennington2017/run.py [size=small|full] [overrides...]

runs ``freeness-lab experiment=pennington2017[_small] [overrides...]``
(``conf/experiment/pennington2017.yaml``): the study
:mod:`freeness_lab.harness.studies.pennington2017` (spectra of J J^T at criticality, the
variance slope mu_2/mu_1^2 - 1 - s_1 in depth, the series law against the closed form, near
isometry of orthogonal hard tanh). Outputs, resume and provenance are the app's (README,
"Outputs"); claims in ``summary.md``.
"""

import sys

from freeness_lab.harness.app import figure_main

if __name__ == "__main__":
    sys.exit(figure_main("pennington2017"))
