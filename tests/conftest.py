"""Shared test fixtures: the Monte Carlo seed.

Monte Carlo tests take the ``global_seed`` fixture, so that they are not tuned to one seed: CI
runs each of them once (seed 0); ``FREENESS_LAB_SEEDS=0-19 python -m pytest ...`` (a range, a
comma list, or both: ``0-4,17``) runs each under every listed seed. With 20 seeds and the
4-sigma tolerances of ``montecarlo.assert_mean_within``, an honest test fails on about one seed
in 800 per checked value.
"""

from __future__ import annotations

import os

import pytest
from montecarlo import SEEDS_VARIABLE, parse_seeds


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "global_seed" in metafunc.fixturenames:
        seeds = parse_seeds(os.environ.get(SEEDS_VARIABLE, "0"))
        metafunc.parametrize("global_seed", seeds, ids=[f"seed{s}" for s in seeds])
