"""Harness: runs the studies that compare simulation against theory, and writes their tables
and plots.

Entry points: the ``freeness-lab`` command (:mod:`freeness_lab.harness.app`, a Hydra app over
``conf/``), :func:`run_experiment` (library: a validated config and an output directory),
:func:`validate_config`, and :func:`collect_results` (tables of several runs in one
DataFrame). Usage: the README, section "Running experiments".

The names are imported lazily, so that a parallel worker importing one harness module does not
pay for matplotlib and the rest.
"""

import importlib

_EXPORTS = {"RunConfig": "config", "validate_config": "config", "RunResult": "experiment",
            "run_experiment": "experiment", "collect_results": "collect"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"freeness_lab.harness.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'freeness_lab.harness' has no attribute {name!r}")
