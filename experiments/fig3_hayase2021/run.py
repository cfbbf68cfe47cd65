"""Figure 3, Hayase & Karakida (AISTATS 2021): an alias of the app's preset.

    python experiments/fig3_hayase2021/run.py [size=small|full] [overrides...]

runs ``freeness-lab experiment=hayase_karakida2021[_small] [overrides...]``
(``conf/experiment/hayase_karakida2021.yaml``): the studies
:mod:`freeness_lab.harness.studies.hayase_karakida2021` (H_L at L = 3: moments and atoms vs
``fim_dual_law``, the Newton density's moments, the mean of H_l vs l) and
:mod:`freeness_lab.harness.studies.hayase_karakida2021_training` (full-batch GD across
(eta, L): the stable/unstable boundary within a factor 1.5 of 2/lambda_max(H_L)). Outputs,
resume and provenance are the app's (README, "Outputs"); claims in ``summary.md``.
"""

import sys

from freeness_lab.harness.app import figure_main

if __name__ == "__main__":
    sys.exit(figure_main("hayase_karakida2021"))
