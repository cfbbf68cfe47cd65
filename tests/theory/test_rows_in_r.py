"""RowsInR: the implicit factors' log-terms as columns, each equal to its single-row TermsInR."""

from __future__ import annotations

import numpy as np
import pytest

from freeness_lab.theory.log_terms import RowsInR, TermsInR


@pytest.mark.parametrize("c", [1.0, 0.7])
def test_columns_equal_single_row_terms_bitwise(c):
    # log(a m), log(1 - p + a m) with p = 1 - c (alpha' = 0: the factor whose atom is the
    # law's), a plain 1 + m, and a large |e^r| (the real part without cancellation)
    rows = np.array([[1.0, 0.0, 0.5], [1.0, c, 1.0], [1.0, 1.0, 2.0], [1.0, 0.3, 1.0]])
    rng = np.random.default_rng(0)
    r = rng.normal(size=40) * 3 + 1j * rng.uniform(-3.0, 0.0, size=40)
    r[:3] = [25.0 - 0.1j, 40.0 - 3.0j, -30.0 - 1.0j]
    er = np.exp(r)
    val, slope = RowsInR(rows, c).value_and_slope(r, er)
    assert val.shape == slope.shape == (40, 4)
    for j, row in enumerate(rows):
        v1, s1 = TermsInR(row[None], c).value_and_slope(r, er)
        np.testing.assert_array_equal(val[:, j], v1)
        np.testing.assert_array_equal(slope[:, j], s1)
    # without e^r given: the same numbers
    v2, s2 = RowsInR(rows, c).value_and_slope(r)
    np.testing.assert_array_equal(v2, val)
    np.testing.assert_array_equal(s2, slope)


def test_vanishing_alpha_is_exact():
    # 1 - p + m with p = 1 - c: log(e^r) = r exactly, slope 1, however small e^r
    val, slope = RowsInR(np.array([[1.0, 0.25, 1.0]]), 0.25).value_and_slope(
        np.array([-800.0 - 0.5j]))
    assert val[0, 0] == -800.0 - 0.5j and slope[0, 0] == 1.0


@pytest.mark.parametrize("row", [[2.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
def test_bad_rows_refused(row):
    with pytest.raises(ValueError, match="rows"):
        RowsInR(np.array([row]), 1.0)
