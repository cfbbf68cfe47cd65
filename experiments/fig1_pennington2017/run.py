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

from freeness_lab.harness.app import main
from freeness_lab.harness.figures import app_arguments

if __name__ == "__main__":
    try:
        arguments = app_arguments("pennington2017", sys.argv[1:])
    except ValueError as err:
        print(f"run.py: error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(arguments))
