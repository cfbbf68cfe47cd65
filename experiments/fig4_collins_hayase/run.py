"""Figure 4, Collins & Hayase (CMP 2023): an alias of the app's preset.

    python experiments/fig4_collins_hayase/run.py [size=small|full] [overrides...]

runs ``freeness-lab experiment=collins_hayase2023[_small] [overrides...]``
(``conf/experiment/collins_hayase2023.yaml``; ``_small`` is
``sweep=collins_hayase2023_small``): the freeness study of the app
(:mod:`freeness_lab.harness.studies.freeness`), tanh at the edge of chaos with every layer
at q* = 0.5 (``network.q_star``), depth 2, Haar orthogonal and Gaussian weights. For each word
in (W_l, W_l^T) and D_l (and H_l), the paired defect between the empirical trace and the free
prediction at the same sample's marginals, over a sweep of M, with negative controls (D_1 and
D_2 treated as free; a deterministic permutation as if it were Haar; W_1 and W_1^T treated as
free copies).

Check (one PASS/FAIL claim per word and ensemble in ``summary.md``): every word's verdict
(:func:`~freeness_lab.harness.freeness.fit_decay`) is the one expected -- "free" (defect
extrapolated to M = infinity within noise and RMS defect decaying with a significantly
negative log-log slope) for the words of the theorem, "not free" (|z| >= 8 at every M) for
every negative control -- in both ensembles. Outputs, resume and provenance are the app's
(README, "Outputs").
"""

import sys

from freeness_lab.harness.app import figure_main

if __name__ == "__main__":
    sys.exit(figure_main("collins_hayase2023"))
