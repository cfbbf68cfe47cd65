"""Rectangular networks in the harness (issue 15, parts 1 and 3a; the spectral check of
rectangular spectrum runs: ``test_spectral_rectangular.py``): ``network.width_ratios`` and
``sweep.axes.width_ratios`` validated, carried by cells, keys and tables; runs resume and do
not depend on n_jobs; square runs keep their keys, seeds and run folders."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from freeness_lab.harness import budget, run_experiment, validate_config
from freeness_lab.harness.app import config_dir, register_resolvers
from freeness_lab.harness.cells import plan_cells
from freeness_lab.harness.runner import COMPUTED_LOG
from freeness_lab.harness.schema import Shape
from freeness_lab.rng import generator_for
from freeness_lab.simulate import sample_network
from freeness_lab.spec import NetworkSpec

SHAPES = [[1, 2, 1], [1, 0.5, 1.5]]
RUN = {"network": {"depth": 2},
       "sweep": {"widths": [8, 16], "trials": 3, "axes": {"width_ratios": SHAPES}},
       "experiment": {"studies": ["spectrum"], "moments": 2, "eigenvalues": False},
       "n_jobs": 1, "progress": False}


def _compose(*overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_square_default_keeps_its_keys_seeds_and_run_folder():
    """Pinned at the commit before width ratios existed (bcf54b3): the spawn-key words of
    the default config's first cell and its run folder; its cell keys as of cell format 2
    (00f6929: the keys name the format, the seeds do not)."""
    cfg = _compose()
    assert OmegaConf.select(cfg, "hydra.run.dir") == "results/default/f418b2318dfd"
    run = validate_config(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))
    cells = plan_cells(run)
    keys = " ".join(c.key for c in cells)
    assert cells[0].key == "spectrum-12ca5151c411cd320ee5"
    assert hashlib.sha256(keys.encode()).hexdigest()[:16] == "93b34efa2cd3e205"
    assert cells[0].cell_words == (1940915776, 1931821428, 425859802, 3094805763)
    assert "width_ratios" not in run.identity()["network"]
    assert all(c.shape is None and "shape" not in c.identity() for c in cells)
    assert all({"width_ratios", "widths"}.isdisjoint(c.label()) for c in cells)


def test_shape_widths_round_and_stay_positive():
    shape = Shape(10, (1.0, 0.25, 0.01, 2.0))
    assert shape.widths == (10, 2, 1, 20)  # round(2.5) = 2 (halves to even), max(1, 0)
    assert shape.label() == {"width_ratios": "1:0.25:0.01:2", "widths": "10-2-1-20"}
    spec = shape.spec(NetworkSpec("relu", "gaussian", depth=3, width=1))
    assert spec.layer_widths == (10, 2, 1, 20)
    # the budget sizes a rectangular trial by its largest layer
    assert budget.trial_bytes(spec) == (3 + 6) * 8.0 * 20**2


def test_width_ratios_override_validates_and_keeps_m_as_the_width():
    cfg = _compose("experiment=spectrum", "experiment.spectral_trials=0",
                   "network.width_ratios=[1,2,1.5,0.5]", "sweep=tiny", "weights=orthogonal")
    run = validate_config(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))
    assert run.network.width_ratios == (1.0, 2.0, 1.5, 0.5)
    assert run.identity()["network"]["width_ratios"] == (1.0, 2.0, 1.5, 0.5)
    cells = plan_cells(run)
    assert [c.spec.layer_widths for c in cells] == [(16, 32, 24, 8), (32, 64, 48, 16)]
    assert [c.label()["width"] for c in cells] == [16, 32]
    assert cells[0].label()["widths"] == "16-32-24-8"
    # the run folder is not a square run's
    assert OmegaConf.select(cfg, "hydra.run.dir") != OmegaConf.select(
        _compose("experiment=spectrum", "experiment.spectral_trials=0", "sweep=tiny"),
        "hydra.run.dir")


def _run(out, **over):
    return run_experiment(validate_config({**RUN, **over}), out)


def test_two_shapes_in_one_run_resume_and_do_not_depend_on_n_jobs(tmp_path):
    first = _run(tmp_path / "a")
    assert (first.stats.computed, first.stats.reused) == (4, 0)
    assert first.failed_checks == 0
    spectrum = pd.read_parquet(first.tables["spectrum"])
    shapes = spectrum.groupby(["width_ratios", "width"])["widths"].unique()
    assert {k: list(v) for k, v in shapes.items()} == {
        ("1:2:1", 8): ["8-16-8"], ("1:2:1", 16): ["16-32-16"],
        ("1:0.5:1.5", 8): ["8-4-12"], ("1:0.5:1.5", 16): ["16-8-24"]}
    assert set(spectrum["matrix"]) == {"JJT", "H_L"}  # no square layer: no W rows
    # a row's spawn key regenerates its trial from the widths column
    row = spectrum[(spectrum["quantity"] == "m2") & (spectrum["matrix"] == "JJT")].iloc[-1]
    spec = NetworkSpec(row["activation"], row["weights"], int(row["depth"]),
                       widths=tuple(int(n) for n in row["widths"].split("-")),
                       sigma_w=row["sigma_w"])
    key = [int(k) for k in row["spawn_key"].split(",")]
    eigs = sample_network(spec, generator_for(int(row["seed"]), key)).jacobian_spectrum()
    assert np.mean(eigs**2) == row["value"]

    theory = pd.read_parquet(first.tables["theory"])
    hl = theory[theory["matrix"] == "H_L"]  # rectangular fim_dual_law
    assert (hl["status"] == "ok").all() and np.isfinite(hl["theory"]).all()
    check = pd.read_parquet(first.tables["spectrum_check"])
    zero = check[check["quantity"] == "mass(0)"].set_index(["width_ratios", "width"])
    # ReLU halves each layer's rank: 16-8-24 has rank 8/2 of 24 outputs, 16-32-16 rank 16/2
    assert zero.loc[("1:0.5:1.5", 16), "theory"] == pytest.approx(1 - 4 / 24, abs=1e-12)
    assert zero.loc[("1:2:1", 16), "theory"] == pytest.approx(1 - 8 / 16, abs=1e-12)
    summary = first.summary.read_text()
    assert "| no theory |" not in summary and "1:0.5:1.5" in summary and "mass(0)" in summary

    again = _run(tmp_path / "a")
    assert (again.stats.computed, again.stats.reused) == (0, 4)
    assert len((tmp_path / "a" / COMPUTED_LOG).read_text().split()) == 4

    _run(tmp_path / "b", n_jobs=2)
    names = sorted(p.name for p in (tmp_path / "a").glob("*.parquet"))
    assert names == sorted(p.name for p in (tmp_path / "b").glob("*.parquet"))
    for name in names:
        a, b = pq.read_table(tmp_path / "a" / name), pq.read_table(tmp_path / "b" / name)
        assert a.equals(b) and a.schema.metadata == b.schema.metadata, name


def test_structural_zero_mass_is_exact_and_h_l_has_its_theory(tmp_path):
    # tanh: phi' > 0, so J J^T of 16-8-16 has exactly half its eigenvalues at 0 (SE = 0)
    tanh = {"network": {"depth": 2, "activation": "tanh", "sigma_w": 1.1},
            "sweep": {"widths": [8, 16], "trials": 2, "axes": {}},
            "experiment": {**RUN["experiment"]}}
    run = validate_config({**RUN, **tanh, "network": {**tanh["network"],
                                                      "width_ratios": [1, 0.5, 1]}})
    result = run_experiment(run, tmp_path)
    check = pd.read_parquet(result.tables["spectrum_check"])
    zero = check[check["quantity"] == "mass(0)"]
    assert (zero["mean"] == 0.5).all() and (zero["se"] == 0).all() and (zero["z"] == 0).all()
    assert "| no theory |" not in result.summary.read_text()  # no H_L verdict says it
    theory = pd.read_parquet(result.tables["theory"])
    assert (theory.loc[theory["matrix"] == "H_L", "status"] == "ok").all()
