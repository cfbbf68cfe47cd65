"""The study registry: a study is one module's ``Study`` and one registry entry; nothing else
in the harness names it (config, cells, runner, budget, experiment, summary, collect)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from freeness_lab import NetworkSpec, SpecError
from freeness_lab.harness import run_experiment, validate_config
from freeness_lab.harness.cells import plan_cells
from freeness_lab.harness.studies import STUDIES, ReportInput, Study, StudyReport


def _trial(spec, seed, params):
    x = np.random.default_rng(seed).standard_normal(spec.width)
    return {"toy": {"quantity": ["mean", "max"], "value": [float(x.mean()), float(x.max())]}}


def _report(inp: ReportInput) -> StudyReport:
    toy = inp.tables["toy"]
    means = toy[toy["quantity"] == "mean"].groupby("width")["value"].mean().reset_index()
    bad = int((means["value"].abs() > 1).sum())
    return StudyReport(tables={"toy_check": means}, failed=bad,
                       section=["## Toy: means of Gaussian vectors", "",
                                f"{len(means)} widths, {bad} failing", ""])


def _validate(run):
    if run.sweep.trials < 3:
        raise SpecError("sweep.trials", "the toy study needs >= 3 trials")


TOY = Study(name="toy", params=lambda e: (("version", 1),), trial=_trial, tables=("toy",),
            report_tables=("toy_check",), report=_report, rows_per_trial=lambda s, e: 2,
            validate=_validate)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(STUDIES, "toy", TOY)


def test_a_registered_study_runs_end_to_end(toy, tmp_path):
    run = validate_config({"experiment": {"studies": ["toy"], "name": "toy"},
                           "sweep": {"widths": [8, 16], "trials": 3}, "n_jobs": 1,
                           "progress": False})
    result = run_experiment(run, tmp_path / "run")
    assert set(result.tables) == {"toy", "toy_check"}
    toy_table = pd.read_parquet(result.tables["toy"])
    assert len(toy_table) == 2 * 3 * 2 and (toy_table["study"] == "toy").all()
    assert {"trial", "spawn_key", "seed", "width"} <= set(toy_table.columns)
    text = result.summary.read_text()
    assert "## Toy: means of Gaussian vectors" in text and "**PASS**" in text
    again = run_experiment(run, tmp_path / "run")
    assert (again.stats.computed, again.stats.reused) == (0, 2)


def test_a_registered_study_brings_its_own_config_rules(toy):
    with pytest.raises(SpecError, match=r"sweep\.trials.*toy study"):
        validate_config({"experiment": {"studies": ["toy"]}, "sweep": {"trials": 2}})
    allowed = ", ".join(STUDIES)
    assert allowed.startswith("spectrum, freeness, ") and allowed.endswith(", toy")
    with pytest.raises(SpecError, match=rf"experiment\.studies.*allowed: {allowed}"):
        validate_config({"experiment": {"studies": ["toys"]}})


def _grid_trial(spec, seed, params):
    return {"toy_grid": {"value": [float(np.random.default_rng(seed).standard_normal())]}}


def _own_grid(widths):
    return lambda run: [(NetworkSpec("tanh", w, 2, width=m, sigma_w=1.1), 4)
                        for w in ("orthogonal", "gaussian") for m in widths]


GRIDDED = dataclasses.replace(TOY, name="toy_grid", trial=_grid_trial, tables=("toy_grid",),
                              report_tables=(), report=lambda inp: StudyReport(),
                              validate=lambda run: None, grid=_own_grid((5, 7)))


def test_a_study_with_its_own_grid_runs_beside_the_sweep(toy, monkeypatch, tmp_path):
    """A study's ``grid`` gives its cells (other networks, widths and trials than the
    sweep's); the sweep's studies keep the sweep; both resume by their cells' keys."""
    monkeypatch.setitem(STUDIES, "toy_grid", GRIDDED)
    run = validate_config({"experiment": {"studies": ["toy", "toy_grid"], "name": "toy"},
                           "sweep": {"widths": [8, 16], "trials": 3}, "n_jobs": 1,
                           "progress": False})
    cells = [(c.study, c.spec.activation, c.spec.weights, c.spec.width, c.trials)
             for c in plan_cells(run)]
    assert cells == [("toy", "relu", "orthogonal", 8, 3), ("toy", "relu", "orthogonal", 16, 3),
                     *[("toy_grid", "tanh", w, m, 4) for w in ("orthogonal", "gaussian")
                       for m in (5, 7)]]
    result = run_experiment(run, tmp_path / "run")
    grid_table = pd.read_parquet(result.tables["toy_grid"])
    assert len(grid_table) == 4 * 4 and set(grid_table["width"]) == {5, 7}
    assert set(pd.read_parquet(result.tables["toy"])["width"]) == {8, 16}
    again = run_experiment(run, tmp_path / "run")
    assert (again.stats.computed, again.stats.reused) == (0, 6)


def test_the_budget_counts_a_study_s_own_grid(monkeypatch):
    monkeypatch.setitem(STUDIES, "toy_grid", dataclasses.replace(
        GRIDDED, grid=_own_grid((10**6,))))
    with pytest.raises(SpecError, match="of memory"):
        validate_config({"experiment": {"studies": ["toy_grid"]}, "progress": False})
