"""RowsInR: log-terms as columns, each equal to its single-row TermsInR; SumsInR: sums of them."""

from __future__ import annotations

import numpy as np
import pytest

from freeness_lab.theory.log_terms import RowsInR, SumsInR, TermsInR


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


def test_per_row_offsets_and_variables_equal_single_row_terms_bitwise():
    # rows of two layers: each its own c and its own column of r
    rows = np.array([[1.0, 0.0, 0.5], [1.0, 0.7, 1.0], [1.0, 1.0, 2.0], [1.0, 0.3, 1.0]])
    c = np.array([1.0, 0.7, 0.7, 1.0])
    columns = np.array([0, 1, 1, 0])
    rng = np.random.default_rng(1)
    r = rng.normal(size=(30, 2)) * 3 + 1j * rng.uniform(-3.0, 0.0, size=(30, 2))
    r[:3] = [[25.0 - 0.1j, -30.0 - 1.0j], [40.0 - 3.0j, 30.0 - 0.5j], [-30.0 - 1.0j, 0.1j]]
    val, slope = RowsInR(rows, c, columns).value_and_slope(r, np.exp(r))
    assert val.shape == (30, 4)
    for j, row in enumerate(rows):
        v1, s1 = TermsInR(row[None], c[j]).value_and_slope(r[:, columns[j]])
        np.testing.assert_array_equal(val[:, j], v1)
        np.testing.assert_array_equal(slope[:, j], s1)


def test_sums_equal_terms_in_r():
    """Each sum of SumsInR is its TermsInR to rounding: shared rows, a vanishing alpha', a
    constant row (beta = 0), rows that cancel (e summing to 0), an empty sum, and |e^r| large
    (the real part with Re r taken exactly)."""
    groups = [np.array([[2.0, 1.0, 1.0], [-1.0, 0.0, 1.0], [0.5, 0.3, 2.0]]),
              np.array([[1.0, 1.0, 1.0]]),
              np.array([[1.0, 0.6, 1.0], [-1.0, 1.0, 3.0], [1.5, 2.0, 0.0]]),
              np.array([[1.0, 1.0, 1.0], [-1.0, 1.0, 0.5]]),
              np.empty((0, 3))]
    c = np.array([1.0, 1.0, 0.6, 0.6, 1.0])
    columns = np.array([0, 0, 1, 1, 0])
    rng = np.random.default_rng(2)
    r = rng.normal(size=(50, 2)) * 3 + 1j * rng.uniform(-3.0, 0.0, size=(50, 2))
    r[:4] = [[25.0 - 0.1j, -30.0 - 1.0j], [40.0 - 3.0j, 30.0 - 0.5j], [-30.0 - 1.0j, 0.1j],
             [12.0 - 2.0j, 12.0 - 2.0j]]
    val, slope = SumsInR(groups, c, columns).value_and_slope(r, np.exp(r))
    assert val.shape == slope.shape == (50, 5)
    for g, rows in enumerate(groups):
        v1, s1 = TermsInR(rows, c[g]).value_and_slope(r[:, columns[g]].copy())
        np.testing.assert_allclose(val[:, g], v1, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(slope[:, g], s1, rtol=1e-14, atol=1e-14)
    # the sum whose terms cancel where |e^r| is large: log(1 + m) - log(1 + m / 2) -> log 2
    big = r[:, 1].real > 20
    assert big.any()
    m = np.exp(r[big, 1]) - 0.6
    np.testing.assert_allclose(val[big, 3].real, np.log(np.abs((1 + m) / (1 + m / 2))),
                               rtol=1e-15)
