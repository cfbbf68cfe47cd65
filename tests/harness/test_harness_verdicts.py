"""Sound verdicts: the regression suite (``experiment=check``) turns red on a broken theory
(one that raises, one whose moments or scale are 5 % off) and on a broken sampler (QR without
the sign fix), says ``no theory`` only where the theory side says so on purpose, and never
judges a non-finite number; the plots' densities stay within a time budget.

The Monte Carlo of the check suite is computed once (``check_cells``); a test of a broken
theory re-runs the suite on a copy of its folder, where every cell is reused and only the
theory side, the verdicts and the report run again (the theory side runs in the main
process, where the patches act). The sampler patch needs its trials in-process
(``n_jobs=1``).
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import freeness_lab.simulate.ensembles as ensembles
from freeness_lab.harness import app, run_experiment, theory_side, validate_config
from freeness_lab.harness.compare import compare, verdicts
from freeness_lab.harness.studies import spectrum as spectrum_study
from freeness_lab.theory import TheoryUnavailable, limits


def _check_run(out_dir, *overrides: str):
    app.register_resolvers()
    with initialize_config_dir(config_dir=str(app.config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=check", "progress=false", *overrides])
    return run_experiment(validate_config(cfg), out_dir)


@pytest.fixture(scope="module")
def check_cells(tmp_path_factory):
    """The check suite's moment checks (its ``spectrum`` study) run once with the right
    theory and sampler: (folder, result). Its ``spectral_check`` cells are those of the
    small figure-4 preset, whose claims ``tests/harness/test_figures.py`` runs, and whose
    failure paths are in ``tests/harness/test_spectral_check_study.py``."""
    out = tmp_path_factory.mktemp("check") / "run"
    return out, _check_run(out, "n_jobs=2", "experiment.studies=[spectrum]")


def _rerun(check_cells, tmp_path, *overrides: str):
    """The check suite again on a copy of ``check_cells``' folder (cells reused)."""
    out = tmp_path / "run"
    shutil.copytree(check_cells[0], out)
    result = _check_run(out, "n_jobs=2", "experiment.studies=[spectrum]", *overrides)
    assert result.stats.computed == 0
    return result


def _verdicts(result) -> pd.Series:
    """The verdicts of the spectrum section's table (the moments checks)."""
    text = result.summary.read_text().split("\n## Spectrum:", 1)[1].split("\n## ", 1)[0]
    return pd.Series([line.split("|")[-2].strip() for line in text.splitlines()
                      if line.startswith("| ") and not line.startswith("| activation")])


class _Scaled:
    """A law whose moments are off: m_k * factor (``power=False``) or the law scaled by
    ``factor`` (m_k * factor^k)."""

    def __init__(self, law, factor: float, power: bool):
        self._law, self._factor, self._power = law, factor, power

    def moments(self, n: int) -> np.ndarray:
        k = np.arange(1, n + 1)
        return np.asarray(self._law.moments(n)) * (self._factor ** k if self._power
                                                  else self._factor)

    def __getattr__(self, name: str):
        return getattr(self._law, name)


def _off_by(monkeypatch, matrix: str, factor: float, power: bool) -> None:
    original = theory_side.limit_law

    def patched(spec, which):
        law = original(spec, which)
        return _Scaled(law, factor, power) if which == matrix else law
    monkeypatch.setattr(theory_side, "limit_law", patched)


def test_right_theory_and_sampler_pass_the_check_suite(check_cells):
    result = check_cells[1]
    assert result.failed_checks == 0, result.summary.read_text()
    assert set(_verdicts(result)) <= {"agrees", "converging"}
    assert "**PASS**" in result.summary.read_text()


@pytest.mark.parametrize(("matrix", "power"), [
    ("JJT", False),    # every moment of J J^T 5 % off
    ("H_L", False),    # every moment of H_L 5 % off
    ("JJT", True),     # the J J^T law scaled by 1.05
    ("H_L", True),     # the H_L law scaled by 1.05
])
def test_theory_five_percent_off_fails_the_check_suite(check_cells, tmp_path, monkeypatch,
                                                       matrix, power):
    _off_by(monkeypatch, matrix, 1.05, power)
    result = _rerun(check_cells, tmp_path)
    assert result.failed_checks > 0
    assert "disagrees" in set(_verdicts(result))
    assert "**FAIL**" in result.summary.read_text()


def test_theory_that_raises_is_a_failure_not_no_theory(check_cells, tmp_path, monkeypatch):
    def broken(spec, **kwargs):
        raise AttributeError("'NetworkSpec' object has no attribute 'q'")
    monkeypatch.setattr(limits, "jacobian_law", broken)
    result = _rerun(check_cells, tmp_path)
    table = pd.read_parquet(result.tables["spectrum_check"])
    assert set(table.loc[table["matrix"] == "JJT", "status"]) == {"error"}
    assert "theory error" in set(_verdicts(result))
    assert result.failed_checks > 0
    assert "AttributeError" in result.summary.read_text()


def test_deliberately_unavailable_theory_fails_only_in_regression_mode(check_cells, tmp_path,
                                                                      monkeypatch):
    def unavailable(spec, **kwargs):
        raise TheoryUnavailable("H_L: not covered for this network")
    monkeypatch.setattr(limits, "fim_dual_law", unavailable)
    strict = _rerun(check_cells, tmp_path / "strict")
    assert "no theory" in set(_verdicts(strict)) and "theory error" not in set(_verdicts(strict))
    assert strict.failed_checks > 0
    lenient = _rerun(check_cells, tmp_path / "lenient", "experiment.fail_on_disagreement=false")
    assert "no theory" in set(_verdicts(lenient))
    assert lenient.failed_checks == 0
    assert "not covered for this network" in lenient.summary.read_text()


def test_sampler_without_sign_fix_fails_the_check_suite(tmp_path, monkeypatch):
    original = ensembles.haar_columns

    def plain_qr(*args, **kwargs):
        return original(*args, **{**kwargs, "fix_signs": False})
    monkeypatch.setattr(ensembles, "haar_columns", plain_qr)
    result = _check_run(tmp_path / "run", "n_jobs=1", "weights=orthogonal",
                        "sweep.axes.activation=[relu]", "experiment.studies=[spectrum]")
    table = pd.read_parquet(result.tables["spectrum_check"])
    weights = table[(table["matrix"] == "W") & (table["width"] == 256)]
    # E Tr(Q) ~ -0.54 sqrt(M) for the plain Q factor, 0 for Haar: dozens of SE away
    assert weights.loc[weights["quantity"] == "Tr(W)", "z"].abs().min() > 10
    assert result.failed_checks > 0


def test_non_finite_monte_carlo_or_theory_is_invalid_and_failing():
    variant = dict(activation="relu", weights="orthogonal", depth=3, sigma_w=1.4, sigma_b=0.0,
                   q0=1.0)
    rows = [{**variant, "width": m, "trial": t, "matrix": "JJT", "quantity": "m9",
             "value": np.inf if m == 128 else 1.0 + 0.01 * t} for m in (64, 128) for t in range(4)]
    theory = pd.DataFrame([{**variant, "matrix": "JJT", "quantity": "m9", "theory": 1.0,
                            "status": "ok"}])
    out = verdicts(compare(pd.DataFrame(rows), theory), z_max=4.0)
    assert out["verdict"].item() == "invalid"


def test_density_of_the_plots_is_cut_at_its_time_budget(tmp_path, monkeypatch):
    def slow_density(spec, matrix, x):
        while True:  # a solver that never returns
            time.sleep(0.01)
    monkeypatch.setattr(spectrum_study, "theory_density", slow_density)
    monkeypatch.setattr(spectrum_study, "MIN_DENSITY_SECONDS", 0.3)
    run = validate_config({"experiment": {"studies": ["spectrum"]},
                           "sweep": {"widths": [16, 32], "trials": 2}, "n_jobs": 1,
                           "progress": False})
    start = time.perf_counter()
    result = run_experiment(run, tmp_path / "run")
    assert time.perf_counter() - start < 20
    assert len(result.plots) == 2 and result.failed_checks == 0


def test_density_that_raises_is_a_failing_check(tmp_path, monkeypatch):
    class _NoDensity(_Scaled):
        def density(self, x):
            raise RuntimeError("solver bug")
    original = theory_side.limit_law
    monkeypatch.setattr(theory_side, "limit_law",
                        lambda spec, m: _NoDensity(original(spec, m), 1.0, False))
    run = validate_config({"experiment": {"studies": ["spectrum"]},
                           "sweep": {"widths": [16, 32], "trials": 2}, "n_jobs": 1,
                           "progress": False})
    result = run_experiment(run, tmp_path / "run")
    text = result.summary.read_text()
    assert "Theory errors" in text and "RuntimeError: solver bug" in text
    assert result.failed_checks == 2  # one per plot: the moments still agree
