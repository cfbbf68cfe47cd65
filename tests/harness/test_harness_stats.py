"""Tests of freeness_lab.harness.stats beyond the figure helpers (tests/harness/test_figures.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from freeness_lab.harness import stats as S


def test_mean_se_is_sd_over_sqrt_t():
    v = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    mean, se = S.mean_se(v)
    np.testing.assert_array_equal(mean, v.mean(axis=0))
    np.testing.assert_array_equal(se, v.std(axis=0, ddof=1) / math.sqrt(3))
    m1, s1 = S.mean_se(v[:, 0])
    assert (float(m1), float(s1)) == (3.0, 2.0 / math.sqrt(3))


def test_grouped_mean_se_matches_mean_se_per_group():
    df = pd.DataFrame({"g": ["a", "a", "b", "b", "b"], "x": [1.0, 2.0, 4.0, 5.0, 9.0]})
    out = S.grouped_mean_se(df, ["g"], "x").set_index("g")
    for g, sub in df.groupby("g"):
        mean, se = S.mean_se(sub["x"].to_numpy())
        assert out.loc[g, "mean"] == pytest.approx(mean, rel=1e-15)
        assert out.loc[g, "se"] == pytest.approx(se, rel=1e-15)
        assert out.loc[g, "trials"] == len(sub)
    assert list(out.reset_index().columns) == ["g", "mean", "trials", "se"]


def test_weighted_lstsq_variances_and_exact_fits():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    design = np.column_stack([np.ones_like(x), x])
    y = 2 - 0.5 * x + np.array([0.1, -0.1, 0.1, -0.1])
    var = np.array([0.01, 0.04, 0.09, 0.16])
    a = S.weighted_lstsq(design, y, var=var)
    b = S.weighted_lstsq(design, y, np.sqrt(var))
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12)
    # two points, two parameters: the line through them, SEs from the weights alone
    beta, err, chi2_dof = S.weighted_lstsq(design[:2], y[:2], var=var[:2])
    np.testing.assert_allclose(design[:2] @ beta, y[:2], rtol=1e-12)
    cov = np.linalg.inv(design[:2].T @ (design[:2] / var[:2, None]))
    np.testing.assert_allclose(err, np.sqrt(np.diag(cov)), rtol=1e-12)
    assert math.isnan(chi2_dof)
    with pytest.raises(ValueError, match="more points"):
        S.weighted_lstsq(design[:2], y[:2])
    with pytest.raises(ValueError, match="var"):
        S.weighted_lstsq(design, y, var=np.zeros(4))
