"""Harness configuration: compose-API tests of conf/, validation of every field, error lines."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from freeness_lab import SpecError
from freeness_lab.harness.app import config_dir, describe_error, prevalidate, register_resolvers
from freeness_lab.harness.cells import plan_cells
from freeness_lab.harness.config import RunConfig, validate_config


@pytest.fixture
def composed():
    register_resolvers()

    def _compose(*overrides: str, hydra_cfg: bool = False):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=hydra_cfg)
    return _compose


def test_default_config_composes_and_validates(composed):
    run = validate_config(composed())
    assert isinstance(run, RunConfig)
    assert run.experiment.studies == ("spectrum", "freeness")
    assert run.sweep.axes == {"weights": ("orthogonal", "gaussian")}
    assert len(run.sweep.widths) >= 2
    # two ensembles x widths x two studies
    assert len(plan_cells(run)) == 2 * 2 * len(run.sweep.widths)


@pytest.mark.parametrize("experiment", ["default", "spectrum", "freeness", "check"])
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian", "both"])
def test_every_experiment_preset_validates(composed, experiment, weights):
    run = validate_config(composed(f"experiment={experiment}", f"weights={weights}"))
    assert run.experiment.name == experiment
    ensembles = {s.weights for s in run.variants()}
    assert ensembles == ({"orthogonal", "gaussian"} if weights == "both" else {weights})


def test_check_preset_sweeps_activations(composed):
    run = validate_config(composed("experiment=check"))
    assert {s.activation for s in run.variants()} == {"relu", "hard_tanh", "tanh", "erf"}
    assert run.experiment.fail_on_disagreement


@pytest.mark.parametrize("group", ["network", "activation", "sweep"])
def test_every_group_option_validates(composed, group):
    for path in sorted((config_dir() / group).glob("*.yaml")):
        validate_config(composed(f"{group}={path.stem}"))


@pytest.mark.parametrize("launcher", ["parallel", "local", "slurm"])
def test_launcher_configs_compose(composed, launcher):
    cfg = composed(f"hydra/launcher={launcher}", hydra_cfg=True)
    target = cfg.hydra.launcher._target_
    assert ("Joblib" if launcher == "parallel" else "submitit") in target
    if launcher == "slurm":
        assert cfg.hydra.launcher.cpus_per_task >= 1


def test_run_dir_is_under_results_and_ignores_runtime_fields(composed):
    a = composed("n_jobs=1", hydra_cfg=True)
    b = composed("n_jobs=2", "progress=false", hydra_cfg=True)
    c = composed("seed=1", hydra_cfg=True)
    dir_a = OmegaConf.select(a, "hydra.run.dir")
    assert dir_a.startswith("results/default/")
    assert dir_a == OmegaConf.select(b, "hydra.run.dir")
    assert dir_a != OmegaConf.select(c, "hydra.run.dir")


@pytest.mark.parametrize(("overrides", "field"), [
    (["network.activation=foo"], "network.activation"),
    (["activation=foo"], "activation"),
    (["sweep.widths=[16,-3]"], "sweep.widths[1]"),
    (["network.depth=-1"], "network.depth"),
    (["network.widht=3"], "network.widht"),
    (["+misspelled=1"], "misspelled"),
    (["+network.foo=2"], "network.foo"),
    (["+experiment.zmax=3"], "experiment.zmax"),
    (["sweep.trials=abc"], "sweep.trials"),
    (["sweep.axes.depth=[0,2]"], "sweep.axes.depth[0]"),
    (["sweep.axes.foo=[1]"], "sweep.axes.foo"),
    (["experiment=nope"], "experiment"),
    (["experiment.studies=[spectra]"], "experiment.studies"),
    (["n_jobs=0"], "n_jobs"),
    (["seed=-1"], "seed"),
    (["network.sigma_w=0"], "network.sigma_w"),
    (["weights=uniform"], "weights"),
    (["network.weights=uniform"], "network.weights"),
    (["sweep.widths=[16"], "sweep.widths"),
    (["network.depth=2,3"], "network.depth"),
    (["experiment=freeness", "network.depth=1"], "network.depth"),
    (["experiment=freeness", "sweep.widths=[16]"], "sweep.widths"),
    (["hydra/launcher=nope"], "hydra/launcher"),
])
def test_bad_override_gives_one_line_naming_the_field(overrides, field):
    message = prevalidate(overrides)
    assert message is not None
    assert "\n" not in message
    assert message.startswith(f"{field}:"), message


def test_multirun_sweep_values_are_each_validated():
    assert prevalidate(["network.depth=2,3"], multirun=True) is None
    message = prevalidate(["network.depth=2,0"], multirun=True)
    assert message.startswith("network.depth:")


def test_allowed_values_are_listed():
    assert "relu" in prevalidate(["network.activation=foo"])
    assert "orthogonal" in prevalidate(["network.weights=uniform"])
    assert "depth" in prevalidate(["network.widht=3"])  # the allowed keys


def test_validation_reuses_network_spec_rules():
    with pytest.raises(SpecError) as err:
        validate_config({"network": {"sigma_b": -1.0}})
    assert err.value.field == "network.sigma_b"
    assert describe_error(err.value).startswith("network.sigma_b:")
    # NetworkSpec normalizes names: an alias resolves to the canonical activation
    assert validate_config({"network": {"activation": "swish"}}).network.activation == "silu"
