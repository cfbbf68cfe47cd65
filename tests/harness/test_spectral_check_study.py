"""The ``spectral_check`` study (the spectral check on cells of its own): its grid, its config
rules, and its claims turning red on a damaged spectrum or a wrong reference, through
``run_experiment`` (trials in-process, ``n_jobs=1``, where the patches act). Its passing
runs are figure 4's small preset (``tests/harness/test_figures.py``)."""

from __future__ import annotations

import pandas as pd
import pytest

from freeness_lab import SpecError
from freeness_lab.harness import run_experiment, spectral_check, validate_config
from freeness_lab.harness.cells import plan_cells
from freeness_lab.harness.spectral_references import limit_law
from freeness_lab.harness.studies import spectral_check as study


def _config(**grid) -> dict:
    return {"experiment": {"studies": ["spectral_check"], "name": "grid",
                           "fail_on_disagreement": True, "spectral_grid": grid},
            "n_jobs": 1, "progress": False}


def test_cells_are_the_grid_s_own_at_each_case_s_critical_point():
    run = validate_config(_config(cases=[{"activation": "relu", "q_star": 1.0},
                                         {"activation": "tanh", "q_star": 0.5}],
                                  widths=[16, 32], trials=3))
    cells = plan_cells(run)
    assert [(c.spec.activation, c.spec.weights, c.spec.width, c.trials) for c in cells] == [
        (a, w, m, 3) for a in ("relu", "tanh") for w in ("orthogonal", "gaussian")
        for m in (16, 32)]
    relu = cells[0].spec
    assert (relu.depth, relu.sigma_w**2, relu.sigma_b) == (3, pytest.approx(2.0), 0.0)
    tanh = cells[-1].spec  # critical at q* = 0.5: sigma_b > 0, q^1 = sigma_w^2 q0 + sigma_b^2
    assert tanh.sigma_w**2 * tanh.q0 + tanh.sigma_b**2 == pytest.approx(0.5)


def test_the_grid_enters_the_run_s_identity_only_when_set():
    assert "spectral_grid" not in validate_config({}).identity()["experiment"]
    run = validate_config(_config(trials=3))
    assert run.identity()["experiment"]["spectral_grid"] == {"trials": 3}


@pytest.mark.parametrize(("grid", "field"), [
    ({"widht": [16, 32]}, r"spectral_grid\.widht: unknown key"),
    ({"widths": [16]}, r"spectral_grid\.widths: must be >= 2 distinct"),
    ({"widths": [16, 16, 32]}, r"spectral_grid\.widths"),
    ({"trials": 1}, r"spectral_grid\.trials"),
    ({"depth": 2}, r"spectral_grid\.depth: must be >= 3 with orthogonal"),
    ({"weights": ["haar"]}, r"spectral_grid\.weights"),
    ({"cases": [{"activation": "relu"}]}, r"spectral_grid\.cases\[0\]: must be a mapping"),
    ({"cases": [{"activation": "tanh", "q_star": -1.0}]},
     r"spectral_grid\.cases\[0\]: no critical point"),
    ({"panel": "../x"}, r"spectral_grid\.panel"),
])
def test_bad_grid_values_are_refused_naming_the_field(grid, field):
    with pytest.raises(SpecError, match=field):
        validate_config(_config(**grid))
    with pytest.raises(SpecError, match=r"experiment\.spectral_grid: must be null or a mapping"):
        validate_config({"experiment": {"spectral_grid": [1, 2]}})


def test_depth_two_is_allowed_with_gaussian_weights_only():
    run = validate_config(_config(depth=2, weights=["gaussian"], trials=2))
    assert {c.spec.depth for c in plan_cells(run)} == {2}


def _damaged_spectra(monkeypatch):
    """Every spectrum 5 % too large (a damaged sampler or cell)."""
    original = study.trial_rows
    monkeypatch.setattr(study, "trial_rows", lambda net, spectra, seed, bias: original(
        net, {k: 1.05 * v for k, v in spectra.items()}, seed, bias))


def _wrong_reference(monkeypatch):
    """The limit law where the paired law belongs (its distance decays like M^-1/2 at best)."""
    monkeypatch.setattr(spectral_check, "paired_law",
                        lambda net, matrix, bias, weights=None: limit_law(net.spec, matrix))


@pytest.mark.parametrize("damage", [_damaged_spectra, _wrong_reference])
def test_a_damaged_spectrum_or_a_wrong_reference_turns_the_paired_claims_red(
        damage, monkeypatch, tmp_path):
    damage(monkeypatch)
    run = validate_config(_config(weights=["orthogonal"], widths=[16, 32, 64, 128], trials=4,
                                  panel="fig"))
    result = run_experiment(run, tmp_path / "run")
    fits = pd.read_parquet(result.tables["spectral_check_fits"])
    paired = fits[(fits["network"] == "sampled") & (fits["reference"] == "paired")
                  & (fits["expected"] == "free")]
    assert len(paired) == 2 and "free" not in set(paired["verdict"]), paired.to_dict("records")
    assert result.failed_checks >= 2
    text = result.summary.read_text()
    for matrix in ("JJT", "H_L"):
        assert (f"- FAIL: {matrix} [sampled, orthogonal, relu] vs paired (kolmogorov) is free"
                in text)
    assert "**FAIL**" in text and (tmp_path / "run" / "plots" / "fig.png").is_file()
