"""``python -m freeness_lab``: the same Hydra app as the ``freeness-lab`` command."""

import sys

from freeness_lab.harness.app import main

if __name__ == "__main__":
    sys.exit(main())
