"""Verdicts of the spectrum check: a right theory agrees, a wrong one turns the check red."""

import numpy as np
import pandas as pd
import pytest

from freeness_lab.harness.compare import compare, familywise_p, verdicts

VARIANT = dict(activation="relu", weights="orthogonal", depth=3, sigma_w=1.4, sigma_b=0.0, q0=1.0)


def _spectrum(means_by_width, trials, noise, rng):
    rows = []
    for width, mean in means_by_width.items():
        for t, v in enumerate(mean + noise / width * rng.standard_normal(trials)):
            rows.append({**VARIANT, "width": width, "trial": t, "matrix": "JJT",
                         "quantity": "m1", "value": v})
    return pd.DataFrame(rows)


def _theory(value):
    return pd.DataFrame([{**VARIANT, "matrix": "JJT", "quantity": "m1", "theory": value}])


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def test_right_theory_agrees(rng):
    table = _spectrum({64: 1.0, 128: 1.0, 256: 1.0}, trials=20, noise=5.0, rng=rng)
    (verdict,) = verdicts(compare(table, _theory(1.0)), z_max=4.0)["verdict"]
    assert verdict == "agrees"


def test_wrong_theory_disagrees(rng):
    # Monte Carlo sits at 1.0 at every M; a theory 5 % off is ~20 SE away at M = 256
    table = _spectrum({64: 1.0, 128: 1.0, 256: 1.0}, trials=20, noise=5.0, rng=rng)
    out = verdicts(compare(table, _theory(1.05)), z_max=4.0)
    assert out["verdict"].item() == "disagrees"
    assert abs(out["z"].item()) > 10


def test_finite_size_bias_is_converging(rng):
    # a 1/M bias much larger than the noise: not within noise, but shrinking at rate M^-1
    table = _spectrum({m: 1.0 + 8.0 / m for m in (64, 128, 256)}, trials=50, noise=0.5,
                      rng=rng)
    assert verdicts(compare(table, _theory(1.0)), z_max=4.0)["verdict"].item() == "converging"


def test_familywise_p_uses_student_t_and_the_number_of_checks():
    # with 6 trials, |t| = 4.5 is not rare enough to survive 64 simultaneous checks ...
    assert familywise_p(4.5, trials=6, n_checks=64) > 2 * 3.2e-5
    # ... while the same t from 1000 trials, or a far larger t, is
    assert familywise_p(4.5, trials=1000, n_checks=1) < 1e-4
    assert familywise_p(40.0, trials=6, n_checks=64) < 1e-4
    assert np.isnan(familywise_p(3.0, trials=1, n_checks=1))
