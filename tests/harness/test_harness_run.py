"""Harness runs: the command end to end, determinism across n_jobs, resume after a kill,
multirun sweeps (basic and submitit-local launchers) collected into one DataFrame."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from freeness_lab.harness import collect_results, run_experiment, validate_config
from freeness_lab.harness.cells import plan_cells
from freeness_lab.harness.runner import COMPUTED_LOG
from freeness_lab.harness.storage import CELLS_DIR, read_provenance
from freeness_lab.rng import generator_for
from freeness_lab.simulate import sample_network
from freeness_lab.spec import NetworkSpec

SMALL = ["sweep=tiny", "progress=false"]


def _cli(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "freeness_lab", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, **kw)


def _run_dir(stdout: str) -> Path:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("freeness-lab: cells"))
    return Path(line.rsplit("-> ", 1)[1])


def _tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(run_dir.glob("*.parquet"))}


def _computed(run_dir: Path) -> list[str]:
    return (run_dir / COMPUTED_LOG).read_text().split()


def test_command_writes_tables_plots_and_summary(tmp_path):
    proc = _cli([*SMALL, "n_jobs=2"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = _run_dir(proc.stdout)
    assert run_dir.is_relative_to(tmp_path / "results" / "default")
    tables = _tables(run_dir)
    assert {"spectrum", "eigenvalues", "theory", "spectrum_check", "freeness",
            "freeness_check", "freeness_fits", "spectral_distance",
            "spectral_fits"} <= set(tables)
    # the spectral check: every trial (2, fewer than the default 4), 6 comparisons, both
    # ensembles
    spectral = tables["spectral_distance"]
    assert set(spectral["trial"]) == {0, 1} and (spectral["status"] == "ok").all()
    assert len(spectral.groupby(["weights", "width", "trial", "network", "matrix",
                                 "reference"])) == 2 * 2 * 2 * 6
    spectrum = tables["spectrum"]
    assert {"study", "activation", "weights", "depth", "width", "sigma_w", "sigma_b", "q0",
            "seed", "trial", "spawn_key", "matrix", "quantity", "value"} <= set(spectrum)
    # one row per cell x trial x matrix x quantity: 2 ensembles x 2 widths x 2 trials x
    # (2 spectra x (m1..m4, variance, m2/m1^2..m4/m1^4) + the weights' Tr(W), Tr(W^2))
    assert len(spectrum) == 2 * 2 * 2 * (2 * 8 + 2)
    assert set(spectrum["matrix"]) == {"JJT", "H_L", "W"}
    assert set(spectrum["weights"]) == {"orthogonal", "gaussian"}
    assert {"word", "trial", "spawn_key", "empirical", "free_value"} <= set(tables["freeness"])
    assert {"word", "ensemble", "slope", "verdict"} <= set(tables["freeness_fits"])
    plots = sorted(p.name for p in (run_dir / "plots").glob("*.png"))
    assert sum(p.startswith("spectrum_") for p in plots) == 4  # 2 ensembles x (JJT, H_L)
    assert any(p.startswith("freeness_") for p in plots)
    assert sum(p.startswith("spectral_distance_") for p in plots) == 2
    assert sum(p.startswith("cdf_") for p in plots) == 4
    summary = (run_dir / "summary.md").read_text()
    assert "## Spectrum" in summary and "## Freeness" in summary and "verdict" in summary
    assert "## Spectral distances" in summary
    prov = read_provenance(run_dir / "spectrum.parquet")
    assert {"config", "seed_entropy", "git", "versions"} <= set(prov)
    assert prov["config"]["sweep"]["widths"] == [16, 32]
    assert {"commit", "dirty"} <= set(prov["git"])
    assert prov["versions"]["numpy"] == np.__version__
    assert (run_dir / "metadata.json").is_file()
    assert not (tmp_path / "outputs").exists()


def test_spawn_key_of_a_row_regenerates_its_trial(tmp_path):
    run = validate_config({"sweep": {"widths": [16, 24], "trials": 2},
                           "experiment": {"studies": ["spectrum"], "eigenvalues": False},
                           "n_jobs": 1, "progress": False})
    run_experiment(run, tmp_path)
    spectrum = pd.read_parquet(tmp_path / "spectrum.parquet")
    row = spectrum[(spectrum["matrix"] == "JJT") & (spectrum["quantity"] == "m2")].iloc[-1]
    spec = NetworkSpec(row["activation"], row["weights"], int(row["depth"]),
                       width=int(row["width"]), sigma_w=row["sigma_w"])
    key = [int(k) for k in row["spawn_key"].split(",")]
    eigs = sample_network(spec, generator_for(int(row["seed"]), key)).jacobian_spectrum()
    assert np.mean(eigs**2) == row["value"]


def test_n_jobs_does_not_change_any_table(tmp_path):
    base = {"sweep": {"widths": [16, 24], "trials": 3,
                      "axes": {"weights": ["orthogonal", "gaussian"]}},
            "progress": False}
    files = {}
    for n_jobs in (1, 2):
        out = tmp_path / f"jobs{n_jobs}"
        run_experiment(validate_config({**base, "n_jobs": n_jobs}), out)
        files[n_jobs] = out
    names = sorted(p.name for p in files[1].glob("*.parquet"))
    assert names == sorted(p.name for p in files[2].glob("*.parquet"))
    for name in names:
        a, b = pq.read_table(files[1] / name), pq.read_table(files[2] / name)
        assert a.equals(b), name
        assert a.schema.metadata == b.schema.metadata, name


def test_cell_order_does_not_change_the_numbers(tmp_path):
    a = validate_config({"sweep": {"widths": [16, 24], "trials": 2},
                         "experiment": {"studies": ["spectrum"]}, "n_jobs": 1})
    b = validate_config({"sweep": {"widths": [24, 16], "trials": 2},
                         "experiment": {"studies": ["spectrum"]}, "n_jobs": 1})
    assert {c.key for c in plan_cells(a)} == {c.key for c in plan_cells(b)}
    run_experiment(a, tmp_path / "a")
    run_experiment(b, tmp_path / "b")
    keys = ["width", "trial", "matrix", "quantity"]
    ta = pd.read_parquet(tmp_path / "a" / "spectrum.parquet").sort_values(keys)
    tb = pd.read_parquet(tmp_path / "b" / "spectrum.parquet").sort_values(keys)
    assert np.array_equal(ta["value"].to_numpy(), tb["value"].to_numpy())


def test_killed_run_resumes_and_recomputes_only_unfinished_cells(tmp_path):
    args = ["experiment=spectrum", "weights=orthogonal", "sweep.widths=[96,112,128,144,160,176]",
            "sweep.trials=6", "network.depth=6", "n_jobs=1", "progress=false",
            "experiment.eigenvalues=false", "experiment.spectral_trials=0",
            "hydra.run.dir=run"]
    proc = subprocess.Popen([sys.executable, "-m", "freeness_lab", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cells = tmp_path / "run" / CELLS_DIR
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if cells.is_dir() and any(p.is_dir() and not p.name.startswith(".")
                                  for p in cells.iterdir()):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [p.name for p in cells.iterdir() if not p.name.startswith(".")]
    assert 1 <= len(finished) < 6, "the kill should land in the middle of the run"
    assert not (tmp_path / "run" / "spectrum.parquet").exists()
    assert _computed(tmp_path / "run") == finished or set(_computed(tmp_path / "run")) == set(
        finished)

    resumed = _cli(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"computed {6 - len(finished)}, reused {len(finished)}" in resumed.stdout
    log = _computed(tmp_path / "run")
    assert len(log) == 6 and len(set(log)) == 6  # each cell computed exactly once overall

    fresh = _cli([*args[:-1], "hydra.run.dir=fresh"], tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    for name in ("spectrum", "spectrum_check", "theory"):
        a = pq.read_table(tmp_path / "run" / f"{name}.parquet")
        b = pq.read_table(tmp_path / "fresh" / f"{name}.parquet")
        assert a.equals(b) and a.schema.metadata == b.schema.metadata, name

    again = _cli(args, tmp_path)
    assert "computed 0, reused 6" in again.stdout


# every other bad override is covered in-process by tests/harness/test_harness_config.py
@pytest.mark.parametrize("bad", [["network.activation=foo"], ["+misspelled=1"]])
def test_bad_override_exits_nonzero_with_one_line_and_no_folder(tmp_path, bad):
    proc = _cli(bad, tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    field = bad[0].lstrip("+").split("=")[0]
    assert lines[0].startswith(f"freeness-lab: error: {field}")
    assert not any(tmp_path.iterdir())


def test_multirun_2x2_is_collected_into_one_dataframe(tmp_path):
    proc = _cli(["-m", *SMALL, "experiment=spectrum", "weights=orthogonal",
                 "experiment.eigenvalues=false", "experiment.spectral_trials=0",
                 "network.depth=2,3", "activation=relu,tanh"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    sweeps = list((tmp_path / "results" / "spectrum").glob("multirun-*"))
    assert len(sweeps) == 1
    df = collect_results(sweeps, table="spectrum")
    assert df["run"].nunique() == 4
    assert set(zip(df["depth"], df["activation"], strict=True)) == {
        (2, "relu"), (3, "relu"), (2, "tanh"), (3, "tanh")}
    out = tmp_path / "all.csv"
    cli = subprocess.run([sys.executable, "-m", "freeness_lab.harness.collect", str(sweeps[0]),
                          "--table", "spectrum_check", "-o", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert pd.read_csv(out)["run"].nunique() == 4


def test_submitit_local_launcher_runs_the_cluster_code_path(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    proc = _cli(["-m", "hydra/launcher=local", *SMALL, "experiment=spectrum",
                 "experiment.eigenvalues=false", "experiment.spectral_trials=0",
                 "weights=gaussian", "seed=3,4"], tmp_path,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr
    sweep = next((tmp_path / "results" / "spectrum").glob("multirun-*"))
    assert any(sweep.glob(".submitit/*"))
    df = collect_results([sweep], table="spectrum")
    assert sorted(df["seed"].unique()) == [3, 4]


@pytest.mark.slow  # builds a wheel (~20 s, fetches the build backend); skips without it
def test_wheel_ships_the_config_tree_and_runs_from_it(tmp_path):
    """A regular (non-editable) install: the wheel carries conf/ as freeness_lab/conf."""
    import zipfile

    repo = Path(__file__).resolve().parents[2]
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(repo), "--no-deps",
                            "-w", str(tmp_path / "dist"), "-q"],
                           capture_output=True, text=True, timeout=300)
    if build.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip()[-200:]}")
    wheel = next((tmp_path / "dist").glob("freeness_lab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "freeness_lab/conf/config.yaml" in names
    assert "freeness_lab/conf/experiment/check.yaml" in names
    assert "freeness_lab/conf/hydra/launcher/slurm.yaml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    proc = _cli(["--cfg", "job"], work, env={**os.environ, "PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    check = subprocess.run([sys.executable, "-c", "import freeness_lab.harness.app as a; "
                            "print(a.config_dir())"], cwd=work, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(site)}, timeout=60)
    assert Path(check.stdout.strip()) == site / "freeness_lab" / "conf"
    assert "network:" in proc.stdout and "sweep:" in proc.stdout
