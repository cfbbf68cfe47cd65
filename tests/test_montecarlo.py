"""The shared Monte Carlo tolerance and seed parsing turn red on the inputs they must reject."""

import numpy as np
import pytest
from montecarlo import assert_mean_within, parse_seeds, standard_error


def test_parse_seeds_ranges_and_lists():
    assert parse_seeds("0") == [0]
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds(" 2-2 , 5 ") == [2, 5]


@pytest.mark.parametrize("text", ["", "a", "-3", "3-x", ","])
def test_parse_seeds_rejects_with_the_variable_name(text):
    with pytest.raises(ValueError, match="FREENESS_LAB_SEEDS"):
        parse_seeds(text)


def test_standard_error_is_the_sample_sd_over_sqrt_n():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert standard_error(x) == pytest.approx(np.std(x, ddof=1) / 2.0)


def test_assert_mean_within_accepts_truth_and_rejects_a_shift(global_seed):
    rng = np.random.default_rng(global_seed)
    samples = rng.normal(1.0, 1.0, size=(400, 3))  # SE = 0.05
    assert_mean_within(samples, [1.0, 1.0, 1.0])
    with pytest.raises(AssertionError, match="SE"):
        assert_mean_within(samples, 1.5)  # 10 SE away
    assert_mean_within(samples, 1.5, bias=0.6)  # unless the stated bias covers it
    with pytest.raises(ValueError, match="at least 2"):
        assert_mean_within(samples[:1], 1.0)
