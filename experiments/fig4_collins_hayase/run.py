"""Figure 4, Collins & Hayase (CMP 2023): an alias of the app's preset.

    python experiments/fig4_collins_hayase/run.py [size=small|full] [overrides...]

runs ``freeness-lab experiment=collins_hayase2023 [sweep=collins_hayase2023_small]
[overrides...]`` (``conf/experiment/collins_hayase2023.yaml``): the freeness study of the app
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

from __future__ import annotations

import sys

from freeness_lab.harness.app import main

#: ``size=...`` of this script -> the figure's sweep preset
SIZES = {"small": "collins_hayase2023_small", "full": "collins_hayase2023"}


def app_arguments(argv: list[str]) -> list[str]:
    """The app's command line for this script's arguments (``size=`` picks the sweep preset).

    Raises
    ------
    ValueError
        For a ``size`` other than those of :data:`SIZES`.
    """
    out = ["experiment=collins_hayase2023"]
    for arg in argv:
        key, eq, value = arg.partition("=")
        if key == "size" and eq:
            if value not in SIZES:
                raise ValueError(f"size: must be one of {', '.join(SIZES)}, got {value!r}")
            out.append(f"sweep={SIZES[value]}")
        else:
            out.append(arg)
    return out


if __name__ == "__main__":
    try:
        arguments = app_arguments(sys.argv[1:])
    except ValueError as err:
        print(f"run.py: error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(arguments))
