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
every negative control -- in both ensembles.

The spectral panel (study :mod:`freeness_lab.harness.studies.spectral_check`, on cells of its
own, ``experiment.spectral_grid``): each network's whole spectrum of J J^T and H_L against the
paired law (the free product of its own D_l^2 laws) and the limit law, Kolmogorov distance vs
M, ReLU (sigma_w^2 = 2) and tanh (q* = 0.5) at the edge of chaos, depth 3, both ensembles
(small size: ReLU only); claims: J J^T and H_L ``free`` against their paired law, the
classical and cyclic controls ``not free``; ``plots/fig4_spectral.png``. Outputs, resume and
provenance are the app's (README, "Outputs").
"""

import sys

from freeness_lab.harness.app import figure_main

if __name__ == "__main__":
    sys.exit(figure_main("collins_hayase2023"))
