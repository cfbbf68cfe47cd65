"""Harness configuration: compose-API tests of conf/, validation of every field, error lines."""

from __future__ import annotations

import shlex

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from freeness_lab import SpecError
from freeness_lab.harness import app
from freeness_lab.harness.app import config_dir, describe_error, prevalidate, register_resolvers
from freeness_lab.harness.cells import plan_cells
from freeness_lab.harness.config import RunConfig, validate_config
from freeness_lab.theory.predictions import critical_point


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


@pytest.mark.parametrize("experiment", ["default", "spectrum", "freeness", "check",
                                        "collins_hayase2023"])
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian", "both"])
def test_every_experiment_preset_validates(composed, experiment, weights):
    run = validate_config(composed(f"experiment={experiment}", f"weights={weights}"))
    assert run.experiment.name == experiment
    assert run.paths.results == "results"
    ensembles = {s.weights for s in run.variants()}
    assert ensembles == ({"orthogonal", "gaussian"} if weights == "both" else {weights})


def test_check_preset_sweeps_activations(composed):
    run = validate_config(composed("experiment=check"))
    assert {s.activation for s in run.variants()} == {"relu", "hard_tanh", "tanh", "erf"}
    assert run.experiment.fail_on_disagreement


@pytest.mark.parametrize("group", ["network", "activation", "sweep", "paths"])
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


def test_q_star_sets_the_critical_point_and_enters_the_identity_only_when_set(composed):
    run = validate_config(composed("activation=tanh", "network.q_star=0.5"))
    sw, sb, q0 = critical_point("tanh", 0.5)
    assert (run.network.sigma_w, run.network.sigma_b, run.network.q0) == (sw, sb, q0)
    assert {s.sigma_w for s in run.variants()} == {sw}
    assert run.identity()["network"]["q_star"] == 0.5
    assert "q_star" not in validate_config(composed()).identity()["network"]
    fig4 = validate_config(composed("experiment=collins_hayase2023"))
    assert fig4.network.q_star == 0.5 and fig4.network.sigma_w == sw
    assert fig4.experiment.studies == ("freeness", "spectral_check")
    # the spectral panel's cells are its own: ReLU and tanh at their critical points
    assert {c["activation"] for c in fig4.experiment.spectral_grid["cases"]} == {"relu", "tanh"}
    small = validate_config(composed("experiment=collins_hayase2023",
                                     "sweep=collins_hayase2023_small"))
    assert small.sweep.widths == (32, 64, 128) and small.sweep.trials == 30
    message = prevalidate(["activation=relu", "network.q_star=0.5", "network.sigma_b=1"])
    assert message is None  # relu: sigma_b = 0 at every q*, the given one is replaced


def test_paths_results_moves_the_run_folder_and_not_its_hash(composed):
    a = OmegaConf.select(composed(hydra_cfg=True), "hydra.run.dir")
    b = OmegaConf.select(composed("paths.results=/scratch/r", hydra_cfg=True), "hydra.run.dir")
    assert b == "/scratch/r/" + a.removeprefix("results/")
    assert validate_config(composed("paths.results=/scratch/r")).paths.results == "/scratch/r"


def test_run_dir_is_under_results_and_ignores_runtime_fields(composed):
    a = composed("n_jobs=1", hydra_cfg=True)
    b = composed("n_jobs=2", "progress=false", hydra_cfg=True)
    c = composed("seed=1", hydra_cfg=True)
    dir_a = OmegaConf.select(a, "hydra.run.dir")
    assert dir_a.startswith("results/default/")
    assert dir_a == OmegaConf.select(b, "hydra.run.dir")
    assert dir_a != OmegaConf.select(c, "hydra.run.dir")


#: the spectrum study alone (no spectral check): the context of most rectangular cases below
SPECTRUM = "experiment=spectrum experiment.spectral_trials=0"


@pytest.mark.parametrize(("args", "field"), [
    ("network.activation=foo", "network.activation"),
    ("activation=foo", "activation"),
    ("sweep.widths=[16,-3]", "sweep.widths[1]"),
    ("network.depth=-1", "network.depth"),
    ("network.widht=3", "network.widht"),
    ("+misspelled=1", "misspelled"),
    ("+network.foo=2", "network.foo"),
    ("+experiment.zmax=3", "experiment.zmax"),
    ("sweep.trials=abc", "sweep.trials"),
    ("sweep.axes.depth=[0,2]", "sweep.axes.depth[0]"),
    ("sweep.axes.foo=[1]", "sweep.axes.foo"),
    ("experiment=nope", "experiment"),
    ("experiment.studies=[spectra]", "experiment.studies"),
    ("n_jobs=0", "n_jobs"),
    ("seed=-1", "seed"),
    ("network.sigma_w=0", "network.sigma_w"),
    ("weights=uniform", "weights"),
    ("network.weights=uniform", "network.weights"),
    ("sweep.widths=[16", "sweep.widths"),
    ("network.depth=2,3", "network.depth"),
    ("experiment=freeness network.depth=1", "network.depth"),
    ("experiment=freeness sweep.widths=[16]", "sweep.widths"),
    ("hydra/launcher=nope", "hydra/launcher"),
    # impossible values: refused before any work (issue 11, item 3)
    ("network.depth=1000000000", "network.depth"),
    ("sweep.axes.depth=[2,100000]", "sweep.axes.depth[1]"),
    ("sweep.widths=[1000000,2000000]", "sweep.widths"),
    ("sweep.trials=1000000000", "sweep.trials"),
    ("seed=18446744073709551616", "seed"),
    ("network.sigma_w=1e300", "network.sigma_w"),
    ("network.sigma_w=1e-300", "network.sigma_w"),
    ("network.sigma_w=1e-300 network.sigma_b=0.1", "network.sigma_w"),
    ("network.sigma_w=3 network.depth=300", "network.sigma_w"),
    ("sweep.axes.sigma_w=[1.4,1e300]", "sweep.axes.sigma_w"),
    ("experiment.moments=500", "experiment.moments"),
    ("experiment=spectrum experiment.moments=16 network.sigma_w=2.5 network.depth=40",
     "experiment.moments"),
    # one trial gives no standard error (item 4)
    ("experiment=spectrum sweep.trials=1", "sweep.trials"),
    ("sweep.trials=1", "sweep.trials"),
    # smaller ones (item 10)
    ("experiment.name=..", "experiment.name"),
    ("experiment.name=.hidden", "experiment.name"),
    ("network=3", "network"),
    ("sweep=nope,tiny", "sweep"),
    # the critical point at q* and the results root (issue 12, item 5)
    ("network.q_star=-1", "network.q_star"),
    ("network.q_star=abc", "network.q_star"),
    ("activation=tanh network.q_star=0.5 sweep.axes.sigma_w=[1,2]", "sweep.axes.sigma_w"),
    ("paths.results=", "paths.results"),
    ("+paths.root=x", "paths.root"),
    ("paths=nope", "paths"),
    # rectangular networks (issue 15): network.width_ratios and sweep.axes.width_ratios
    ("network.width_ratios=[1,2]", "network.width_ratios"),  # depth 3: four entries
    ("network.width_ratios=[1,2,3,4,5]", "network.width_ratios"),
    ("network.width_ratios=[1,0,1,1]", "network.width_ratios[1]"),
    ("network.width_ratios=[1,1,-2,1]", "network.width_ratios[2]"),
    ("network.width_ratios=[1,a,1,1]", "network.width_ratios[1]"),
    ("network.width_ratios=[1,1,1,true]", "network.width_ratios[3]"),
    ("network.width_ratios=[1,inf,1,1]", "network.width_ratios[1]"),
    ("network.width_ratios=abc", "network.width_ratios"),
    ("network.width_ratios=2", "network.width_ratios"),
    (f"{SPECTRUM} sweep.axes.width_ratios=[[1,2,2,1],[1,2]]", "sweep.axes.width_ratios[1]"),
    (f"{SPECTRUM} sweep.axes.width_ratios=[1,2,2,1]", "sweep.axes.width_ratios[0]"),
    (f"{SPECTRUM} sweep.axes.width_ratios=[[1,2,2,1],[1,2,2,1]]", "sweep.axes.width_ratios"),
    (f"{SPECTRUM} sweep.axes.width_ratios=[[1,0,2,1]]", "sweep.axes.width_ratios[0][1]"),
    (f"{SPECTRUM} sweep.axes.depth=[2,3] network.width_ratios=[1,2,2,1]", "sweep.axes.depth"),
    # studies that handle square networks only refuse a rectangular config
    (f"{SPECTRUM} experiment.studies=[spectrum,freeness,pennington2017] "
     "network.width_ratios=[1,2,2,1]", "network.width_ratios"),
    (f"{SPECTRUM} experiment.studies=[spectrum,spectral_check] network.width_ratios=[1,2,2,1]",
     "network.width_ratios"),
    (f"{SPECTRUM} experiment.studies=[pennington2018] sweep.axes.width_ratios=[[1,2,2,1]]",
     "sweep.axes.width_ratios"),
    # the freeness study refuses a given word that is dimensionally inconsistent (part 3b)
    ("experiment=freeness sweep.axes.width_ratios=[[1,2,2,1]] "
     "experiment.words=\"['W1 D1c W1^T D1c']\"", "experiment.words"),
])
def test_bad_override_gives_one_line_naming_the_field(args, field):
    """``args`` as typed after ``freeness-lab`` (split like a shell)."""
    message = prevalidate(shlex.split(args))
    assert message is not None
    assert "\n" not in message
    assert message.startswith(f"{field}:"), message


def test_force_lets_a_run_past_the_memory_estimate():
    big = {"sweep": {"widths": [1_000_000, 2_000_000]}}
    with pytest.raises(SpecError, match="set force=true") as err:
        validate_config(big)
    assert "TiB of memory" in str(err.value) and "this machine has" in str(err.value)
    run = validate_config({**big, "force": True})
    assert run.force and run.identity() == validate_config(
        {"sweep": {"widths": [1_000_000, 2_000_000]}, "force": True}).identity()
    assert "force" not in run.identity()  # runtime-only: not in the run's hash


def test_n_jobs_is_capped_at_the_available_cores():
    from freeness_lab.harness.budget import available_cores

    assert validate_config({"n_jobs": 10_000}).n_jobs == available_cores()
    assert validate_config({"n_jobs": -1}).n_jobs == -1


def test_unquoted_activation_arguments_parse():
    assert prevalidate(["network.activation=leaky_relu(0.2)"]) is None
    assert prevalidate(["sweep.axes.activation=[relu,leaky_relu(0.1234567)]"]) is None
    assert app.quote_activation_arguments(["network.activation=leaky_relu(0.2)", "seed=1"]) == [
        "network.activation='leaky_relu(0.2)'", "seed=1"]
    # already quoted: unchanged
    assert app.quote_activation_arguments(["network.activation='leaky_relu(2)'"]) == [
        "network.activation='leaky_relu(2)'"]
    run = validate_config({"network": {"activation": "leaky_relu(0.1234567)"}})
    assert run.network.activation == "leaky_relu(0.1234567)"  # not rounded to 6 digits


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
