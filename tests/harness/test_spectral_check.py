"""The spectral check's references, fits and verdicts (:mod:`freeness_lab.harness.
spectral_check`, :mod:`~freeness_lab.harness.spectral_references`): closed forms of the
paired law, the verdict logic on synthetic decays, and the failure paths (a reference that
raises, a theory that does not cover it)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from freeness_lab import NetworkSpec
from freeness_lab.harness import spectral_check
from freeness_lab.harness.spectral_check import fit_distances, trial_rows
from freeness_lab.harness.spectral_distance import compare, noise_floor
from freeness_lab.harness.spectral_references import paired_law
from freeness_lab.harness.spectral_report import failing
from freeness_lab.simulate import sample_network
from freeness_lab.theory import TheoryUnavailable

VARIANT = ["activation", "weights", "depth", "sigma_w", "sigma_b", "q0"]


def _projections_cdf(x: float, a: float, b: float) -> float:
    """cdf of the free product of two projections of traces a, b (the law of PQP):
    (1 - min(a, b)) delta_0 + max(a + b - 1, 0) delta_1 + sqrt((l+ - t)(t - l-)) /
    (2 pi t (1 - t)) on [l-, l+], l+- = a + b - 2ab +- sqrt(4ab(1 - a)(1 - b))."""
    mid, half = a + b - 2 * a * b, math.sqrt(4 * a * b * (1 - a) * (1 - b))
    lo, hi = mid - half, mid + half

    def rho(t: float) -> float:
        return math.sqrt(max((hi - t) * (t - lo), 0.0)) / (2 * math.pi * t * (1 - t))

    cont = integrate.quad(rho, lo, min(max(x, lo), hi), limit=200, epsabs=1e-13)[0]
    return (1 - min(a, b)) + cont + (max(a + b - 1, 0.0) if x >= 1 else 0.0)


def test_paired_law_of_two_atom_marginals_is_the_free_product_of_projections() -> None:
    """ReLU, depth 2, orthogonal: D_l^2 are projections of the sampled traces p_1, p_2, so
    the paired law of J J^T is sigma_w^4 times the law of P Q P at those traces."""
    spec = NetworkSpec("relu", "orthogonal", depth=2, width=300, sigma_w=2**0.5)
    net = sample_network(spec, np.random.default_rng(5))
    p1, p2 = (float(np.mean(d > 0)) for d in net.derivatives)
    assert p1 != p2  # empirical masses, not the mean-field 1/2
    law = paired_law(net, "JJT", include_bias=False)
    scale = spec.sigma_w**4
    for x in (0.05, 0.2, 0.5, 0.8, 0.97):
        assert law.cdf(np.array([scale * x]))[0] == pytest.approx(
            _projections_cdf(x, p1, p2), abs=1e-9)


def test_paired_law_of_depth_two_relu_h_l_is_its_exact_spectrum() -> None:
    """H_2 = c_1 I + c_0 W D_1^2 W^T: with D_1^2 a projection of rank k its spectrum is
    c_1 (M - k times) and c_1 + c_0 sigma_w^2 (k times), which the paired law must match."""
    spec = NetworkSpec("relu", "orthogonal", depth=2, width=128, sigma_w=2**0.5)
    net = sample_network(spec, np.random.default_rng(6))
    eigs = net.fim_dual_spectrum(include_bias=True)
    law = paired_law(net, "H_L", include_bias=True)
    c = compare(eigs, law, noise_floor(eigs, 128, 2))
    assert c.kolmogorov == pytest.approx(0.0, abs=1e-12)
    assert [mass for _, _, mass in c.atoms] == pytest.approx([frac for _, frac, _ in c.atoms])


def _synthetic(slope: float, level: float, widths=(64, 128, 256, 512, 1024), trials=10,
               spread=0.15, seed=0) -> pd.DataFrame:
    """A spectral_distance table whose paired Kolmogorov distance is level * (M/64)^slope
    times lognormal noise."""
    gen = np.random.default_rng(seed)
    rows = []
    for m in widths:
        for t in range(trials):
            d = level * (m / 64) ** slope * math.exp(spread * gen.standard_normal())
            rows.append({"activation": "relu", "weights": "orthogonal", "depth": 3,
                         "sigma_w": 1.4, "sigma_b": 0.0, "q0": 1.0, "width": m, "trial": t,
                         "network": "sampled", "matrix": "JJT", "reference": "paired",
                         "metric": "kolmogorov", "point": 0.0, "value": d, "law": math.nan,
                         "status": "ok"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("slope, level, expected", [
    (-1.0, 0.05, "free"),           # free: 1/M
    (-0.85, 0.05, "free"),          # free up to logarithms
    (0.0, 0.3, "not free"),         # a distance that does not shrink
    (-0.5, 0.05, "inconclusive"),   # only the marginals converging
    (-0.3, 0.2, "not free"),        # shrinking, but to a positive limit at this rate
])
def test_verdicts_on_synthetic_decays(slope: float, level: float, expected: str) -> None:
    fits = fit_distances(_synthetic(slope, level), VARIANT)
    (verdict,) = fits["verdict"]
    assert verdict == expected, fits.to_string()
    assert fits["expected"].iloc[0] == "free"
    assert bool(failing(fits, strict=True).iloc[0]) == (expected != "free")


@pytest.mark.parametrize("seed", range(10))
def test_a_noisy_constant_distance_is_not_free(seed: int) -> None:
    """A control at four widths, six trials: a distance ~0.5 that does not decay, with 12 %
    noise per trial (the cyclic control's spread; 40 of 40 seeds give ``not free``)."""
    fits = fit_distances(_synthetic(0.0, 0.5, widths=(64, 128, 256, 512), trials=6,
                                    spread=0.12, seed=seed), VARIANT)
    assert fits["verdict"].iloc[0] == "not free", fits.to_dict("records")


def test_a_reference_that_raises_is_a_failing_theory_error(monkeypatch) -> None:
    spec = NetworkSpec("relu", "orthogonal", depth=3, width=32, sigma_w=2**0.5)

    def broken(*args, **kwargs):
        raise RuntimeError("solver diverged")

    def uncovered(*args, **kwargs):
        raise TheoryUnavailable("not covered")

    for replacement, word in ((broken, "theory error"), (uncovered, "no theory")):
        monkeypatch.setattr(spectral_check, "paired_law", replacement)
        frames = []
        for m in (32, 64):
            for t in range(3):
                seed = np.random.SeedSequence(1, spawn_key=(m, t))
                net = sample_network(spec.with_width(m), np.random.default_rng(seed))
                spectra = {"JJT": net.jacobian_spectrum(), "H_L": net.fim_dual_spectrum()}
                cols = pd.DataFrame(trial_rows(net, spectra, seed, include_bias=False))
                frames.append(cols.assign(activation="relu", weights="orthogonal", depth=3,
                                          sigma_w=spec.sigma_w, sigma_b=0.0, q0=1.0,
                                          width=m, trial=t))
        fits = fit_distances(pd.concat(frames, ignore_index=True), VARIANT)
        paired = fits[(fits["reference"] == "paired") & (fits["expected"] != "")]
        # sampled J J^T and H_L, and the cyclic control
        assert len(paired) == 3 and set(paired["verdict"]) == {word}
        assert failing(paired, strict=True).all()
        assert failing(paired, strict=False).all() == (word == "theory error")
        # the references that did not raise are untouched
        limit = fits[(fits["reference"] == "limit") & (fits["metric"] == "kolmogorov")]
        assert np.isfinite(limit["slope"]).all()


def test_a_reference_with_the_wrong_mass_is_a_theory_error(monkeypatch) -> None:
    """A paired law whose quadrature lost mass (a missed support component: 7e-3 at M = 512
    before the support was certified) is an error, not a distance: ``check_mass`` refuses
    it beyond MASS_DEFECT_MAX / M, and the trial's paired rows say ``error``."""
    spec = NetworkSpec("relu", "orthogonal", depth=3, width=64, sigma_w=2**0.5)
    seed = np.random.SeedSequence(3, spawn_key=(64, 0))
    net = sample_network(spec, np.random.default_rng(seed))
    good = paired_law(net, "JJT", False)
    spectral_check.check_mass(good, spectral_check.MASS_DEFECT_MAX / 64)  # certified

    class Lossy:
        """The paired law with 2 / M of its continuous mass missing."""

        def __init__(self, law):
            self.law = law
            self.atoms, self.atom_mass = law.atoms, law.atom_mass

        def continuous_mass(self) -> float:
            return self.law.continuous_mass() - 2.0 / 64

    with pytest.raises(ValueError, match="mass off by"):
        spectral_check.check_mass(Lossy(good), spectral_check.MASS_DEFECT_MAX / 64)
    monkeypatch.setattr(spectral_check, "paired_law", lambda *a, **k: Lossy(good))
    spectra = {"JJT": net.jacobian_spectrum(), "H_L": net.fim_dual_spectrum()}
    rows = pd.DataFrame(trial_rows(net, spectra, seed, include_bias=False))
    paired = rows[rows["reference"] == "paired"]
    assert len(paired) and (paired["status"] == "error").all()
    assert (rows[rows["reference"] == "limit"]["status"] == "ok").all()


def test_limit_laws_certified_once_serve_the_workers(monkeypatch) -> None:
    """A parallel run certifies the spectral check's limit laws once
    (theory_side.solved_laws, in a worker: test_limit_laws_certified_by_the_pool), and the
    workers build them on the certified supports it sends (install_laws): through pickle,
    the trial's rows bit for bit as with laws the worker certified itself; a law of a
    replaced factory is not sent; the spectrum study asks for them for its spectral trials
    only."""
    import pickle

    from freeness_lab.harness import theory_side
    from freeness_lab.harness.studies import spectrum as spectrum_study
    from freeness_lab.theory import limits

    spec = NetworkSpec("relu", "orthogonal", 3, 64, sigma_w=2**0.5)
    seed = np.random.SeedSequence(5)
    net = sample_network(spec, np.random.default_rng(seed))
    spectra = {"JJT": net.jacobian_spectrum(), "H_L": net.fim_dual_spectrum(False)}
    theory_side.clear_laws()
    own = trial_rows(net, spectra, seed, False)  # the worker solving them itself
    theory_side.clear_laws()
    sent = pickle.loads(pickle.dumps(theory_side.solved_laws(spec, ("JJT", "H_L"))))
    assert {k[0] for k in sent} == {limits.jacobian_law, limits.fim_dual_law}
    theory_side.clear_laws()
    theory_side.install_laws(sent)
    h_l = theory_side.limit_law(spec, "H_L")
    assert h_l.certified_support is sent[(limits.fim_dual_law, spec.with_width(1))][1]
    rows = trial_rows(net, spectra, seed, False)
    assert rows["status"] == own["status"]
    np.testing.assert_array_equal(np.array(rows["value"]), np.array(own["value"]))
    np.testing.assert_array_equal(np.array(rows["law"]), np.array(own["law"]))

    original = limits.jacobian_law

    def replaced(spec):  # works, but the worker never saw it: left to the worker
        return original(spec)
    monkeypatch.setattr(limits, "jacobian_law", replaced)
    assert list(theory_side.solved_laws(spec, ("JJT",))) == []
    p = {"spectral_trials": 4}
    assert spectrum_study.limit_laws(spec, p, (3,)) == ("JJT", "H_L")
    assert spectrum_study.limit_laws(spec, p, (4,)) == ()


def test_limit_laws_certified_by_the_pool(monkeypatch) -> None:
    """Before the trials, the pool's workers certify each limit law once (the cells of two
    widths share theirs), every task gets the supports of its laws, and the main process
    installs them (its report reads them); a law whose factory the main process sees
    replaced is not taken (the main process builds its own)."""
    from freeness_lab.harness import runner, theory_side, validate_config
    from freeness_lab.harness.cells import plan_cells
    from freeness_lab.harness.workers import worker_pool
    from freeness_lab.theory import limits

    run = validate_config({"sweep": {"widths": [16, 24], "trials": 2},
                           "experiment": {"studies": ["spectrum"], "spectral_trials": 2},
                           "n_jobs": 2, "progress": False})
    tasks = [(c, t) for c in plan_cells(run) for t in runner.cell_tasks(c)]
    theory_side.clear_laws()
    with worker_pool(2) as parallel:
        laws = runner.task_laws(tasks, parallel)
    specs = {c.spec.with_width(1) for c, _ in tasks}
    keys = {k for law in laws for k in law}
    assert keys == {(f, s) for f in (limits.jacobian_law, limits.fim_dual_law) for s in specs}
    for (cell, _), law in zip(tasks, laws, strict=True):
        assert set(law) == {theory_side.law_key(cell.spec, m) for m in ("JJT", "H_L")}
        for key, (_, support) in law.items():
            matrix = "JJT" if key[0] is limits.jacobian_law else "H_L"
            assert theory_side.limit_law(cell.spec, matrix).certified_support is support

    original = limits.jacobian_law

    def replaced(spec):  # the workers never see it
        return original(spec)
    monkeypatch.setattr(limits, "jacobian_law", replaced)
    theory_side.clear_laws()
    with worker_pool(2) as parallel:
        laws = runner.task_laws(tasks, parallel)
    assert {k[0] for law in laws for k in law} == {limits.fim_dual_law}
    theory_side.clear_laws()


def test_trial_zero_records_the_compared_cdfs_and_the_report_draws_them_without_a_law(
        monkeypatch, tmp_path) -> None:
    """The cyclic control's rows are its distances, floor and atoms (no quantiles or top
    against a law it is built not to follow). Trial 0 of a cell records the cdfs of the
    sampled network against the limit and the paired law (metric ``cdf``): at the points
    compared and on a grid, the ESD's fraction of eigenvalues at or below each point and
    the law's cdf there (against a fresh law, within the check's cdf tolerance); trial 1
    records none; where the grid's solves fail, the points compared are the curve. The
    report draws its cdf plots from these rows with every reference replaced by one that
    raises: no law is solved."""
    from freeness_lab.harness import spectral_references, validate_config
    from freeness_lab.harness.spectral_references import PAIRED_CDF_TOL, limit_law
    from freeness_lab.harness.spectral_report import spectral_report

    spec = NetworkSpec("relu", "orthogonal", depth=3, width=32, sigma_w=2**0.5)
    frames = []
    for m in (32, 48):
        for t in (0, 1):
            seed = np.random.SeedSequence(2, spawn_key=(m, t))
            net = sample_network(spec.with_width(m), np.random.default_rng(seed))
            spectra = {"JJT": net.jacobian_spectrum(), "H_L": net.fim_dual_spectrum(False)}
            rows = pd.DataFrame(trial_rows(net, spectra, seed, include_bias=False))
            curves = rows[rows["metric"] == "cdf"]
            # the cyclic control: its distances, no quantiles or top against its law
            assert set(rows[rows["network"] == "cyclic"]["metric"]) == {
                "kolmogorov", "wasserstein1", "floor", "atom"}
            paired = rows[(rows["network"] == "sampled") & (rows["reference"] == "paired")]
            assert {"quantile", "top"} <= set(paired["metric"])
            if t:
                assert curves.empty
            else:
                keys = set(curves[["network", "matrix", "reference"]].itertuples(
                    index=False, name=None))
                assert keys == spectral_check.CURVES
                for (_, matrix, reference), c in curves.groupby(
                        ["network", "matrix", "reference"]):
                    x, esd = c["point"].to_numpy(), c["value"].to_numpy()
                    assert np.all(np.diff(x) > 0) and len(x) >= spectral_check.CDF_POINTS
                    e = np.sort(spectra[matrix])
                    floor = noise_floor(e, m, 3)  # eigenvalues within it snap to atoms
                    assert np.all(esd >= np.searchsorted(e, x - floor, "left") / m)
                    assert np.all(esd <= np.searchsorted(e, x + floor, "right") / m)
                    law = (limit_law(net.spec, matrix) if reference == "limit"
                           else paired_law(net, matrix, False))
                    np.testing.assert_allclose(c["law"], law.cdf(x), rtol=0,
                                               atol=2 * PAIRED_CDF_TOL / m)
            frames.append(rows.assign(activation="relu", weights="orthogonal", depth=3,
                                      sigma_w=spec.sigma_w, sigma_b=0.0, q0=1.0, width=m,
                                      trial=t, spawn_key=f"{m},{t}"))

    def failing(*args, **kwargs):
        raise RuntimeError("the grid's solves failed")
    with monkeypatch.context() as m:  # the grid fails: the compared points are the curve
        m.setattr(spectral_check, "cdf_curve", failing)
        seed = np.random.SeedSequence(2, spawn_key=(32, 0))
        net = sample_network(spec, np.random.default_rng(seed))
        spectra = {"JJT": net.jacobian_spectrum(), "H_L": net.fim_dual_spectrum(False)}
        rows = pd.DataFrame(trial_rows(net, spectra, seed, include_bias=False))
        assert (rows["status"] == "ok").all()
        kept = rows[(rows["metric"] == "cdf") & (rows["matrix"] == "JJT")
                    & (rows["reference"] == "paired")]
        assert 0 < len(kept) < spectral_check.CDF_POINTS

    def unsolvable(*args, **kwargs):
        raise AssertionError("the report solved a law")
    for name in ("limit_law", "paired_law"):
        monkeypatch.setattr(spectral_references, name, unsolvable)
        monkeypatch.setattr(spectral_check, name, unsolvable)
    _, plots, _, _ = spectral_report(validate_config({}), pd.concat(frames, ignore_index=True),
                                     tmp_path)
    assert sorted(p.name.split("_relu")[0] for p in plots if p.name.startswith("cdf_")) == [
        "cdf_H_L", "cdf_JJT"]
