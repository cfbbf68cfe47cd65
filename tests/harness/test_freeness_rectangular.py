"""The freeness study on rectangular networks (issue 15, part 3b).

Words are typed by their dimensions: a given inconsistent word is refused in one line before
any work; the preset keeps its consistent words (the others listed as skipped, with their
reason) and adds a control consistent in every shape. The paired and limit predictions follow
the rectangular rules of :mod:`freeness_lab.theory.free_cumulants.rectangular`; the defects
of consistent words decay like 1/M (fitted slope, as the square study's verdicts), the
control is flagged, and the square rule applied to a rectangular word turns its verdict red.
"""

import math

import numpy as np
import pandas as pd
import pytest
from montecarlo import assert_mean_within

from freeness_lab import NetworkSpec, SpecError
from freeness_lab.harness import freeness as fr
from freeness_lab.harness import run_experiment, validate_config
from freeness_lab.harness.app import prevalidate
from freeness_lab.harness.studies.freeness import failing_words
from freeness_lab.simulate.network import sample_network
from freeness_lab.simulate.words import WordEvaluator
from freeness_lab.theory.free_cumulants import free_moment

NETWORK = {"activation": "tanh", "depth": 2, "sigma_w": 1.2, "sigma_b": 0.1}
SHAPES = [[1, 2, 1], [1, 0.5, 1.5]]
WIDTHS = (32, 64, 128, 256)
TRIALS = 30


def freeness_run(out, *, shapes=SHAPES, widths=WIDTHS, trials=TRIALS, words=None,
                 ensembles=("orthogonal", "gaussian"), seed=0):
    run = validate_config({"network": NETWORK,
                           "sweep": {"widths": list(widths), "trials": trials,
                                     "axes": {"weights": list(ensembles),
                                              "width_ratios": shapes}},
                           "experiment": {"name": "rect", "studies": ["freeness"],
                                          "words": words},
                           "seed": seed, "n_jobs": 1, "progress": False})
    return run_experiment(run, out)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    result = freeness_run(tmp_path_factory.mktemp("rect") / "run")
    return (pd.read_parquet(result.tables["freeness_check"]),
            pd.read_parquet(result.tables["freeness_fits"]), result)


@pytest.mark.parametrize(("word", "position", "mismatch"), [
    ("W1 D1c W1^T D1c", 2, "N_0 = 1M columns against N_1 = 2M rows"),
    ("D1c D2c D1c D2c", 2, "N_1 = 2M columns against N_2 = 1M rows"),
    ("W2 D2c W2 D2c", 2, "N_1 = 2M columns against N_2 = 1M rows"),
    ("W2 D1", 2, "N_1 = 2M columns against N_2 = 1M rows"),
])
def test_inconsistent_word_is_refused_in_one_line(word, position, mismatch):
    config = {"network": {**NETWORK, "width_ratios": [1, 2, 1]},
              "sweep": {"widths": [16, 32], "trials": 2},
              "experiment": {"studies": ["freeness"], "words": ["W2 D1c W2^T D2c", word]},
              "n_jobs": 1, "progress": False}
    with pytest.raises(SpecError) as err:
        validate_config(config)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"experiment.words: word {word!r}: "), line
    assert f"position {position}" in line and line.endswith(
        f"{mismatch} (depth 2, width ratios 1:2:1)"), line
    # the app's override path says the same in one line, before any work
    message = prevalidate(["experiment=freeness", "network.depth=2",
                           "network.width_ratios=[1,2,1]", f"experiment.words=['{word}']"])
    assert message is not None and "\n" not in message and mismatch in message
    # the same word is accepted in a square network
    validate_config({**config, "network": NETWORK})


def test_square_only_studies_still_refuse_width_ratios():
    message = prevalidate(["experiment=spectrum", "experiment.spectral_trials=0",
                           "experiment.studies=[spectrum,freeness,pennington2017]",
                           "network.width_ratios=[1,2,2,1]"])
    assert message.startswith("network.width_ratios: the pennington2017 study handles square")
    assert prevalidate(["experiment=freeness", "network.width_ratios=[1,2,2,1]"]) is None


def test_ratios_that_round_to_equal_widths_are_refused():
    message = prevalidate(["experiment=freeness", "network.width_ratios=[1,1.004,2,1]"])
    assert message.startswith("network.width_ratios: ratios r_0 = 1 and r_1 = 1.004 give "
                              "equal widths 64 at M = 64"), message


def test_preset_keeps_consistent_words_and_lists_the_others(study):
    table, fits, result = study
    for shape, label in ((SHAPES[0], "1:2:1"), (SHAPES[1], "1:0.5:1.5")):
        kept = fr.study_words(2, None, shape, "M")
        skipped = fr.skipped_words(2, shape)
        assert len(kept) - len(fr.rectangular_controls(2)) + len(skipped) == len(
            fr.default_words(2) + fr.negative_controls(2))
        assert {r[0] for r in skipped} >= {"W1 D1c W1^T D1c", "D1c D2c D1c D2c [layers split]",
                                           "W1 D1c W1^T D1c W1 D1c W1^T D1c [W=permutation]"}
        assert set(fits.loc[fits["width_ratios"] == label, "word"]) == {sw.label for sw in kept}
    text = result.summary.read_text()
    assert "Preset words skipped in rectangular networks:" in text
    listed = [line for line in text.splitlines() if line.startswith("- skipped ")]
    assert len(listed) == len(set(listed)) == sum(len(fr.skipped_words(2, s)) for s in SHAPES)
    assert ("- skipped W1 D1 W1^T D1 [transpose split] (depth 2, width ratios 1:2:1): word "
            "'W1 D1 W1^T D1': W1 (N_1 x N_0 = 2M x 1M) is followed at position 2 by D1 "
            "(N_1 x N_1 = 2M x 2M): N_0 = 1M columns against N_1 = 2M rows") in text
    # where the permutation control's word is consistent, it is skipped for its square shift
    assert ("W1 D1c W1^T D1c W1 D1c W1^T D1c [W=permutation]", "word 'W1 D1c W1^T D1c W1 D1c "
            "W1^T D1c [W=permutation]': the permutation control needs a square network") in \
        fr.skipped_words(2, (1, 1, 2))
    # equal ratios: a square network in all but name, nothing skipped
    assert fr.skipped_words(2, (2, 2, 2)) == []
    assert len(fr.study_words(2, None, (2, 2, 2))) == len(
        fr.default_words(2) + fr.negative_controls(2) + fr.rectangular_controls(2))


def test_cells_carry_their_shapes(study):
    table, _, result = study
    assert set(table["width_ratios"]) == {"1:2:1", "1:0.5:1.5"}
    got = table.groupby(["width_ratios", "M"])["widths"].unique()
    assert list(got[("1:0.5:1.5", 32)]) == ["32-16-48"]
    assert list(got[("1:2:1", 256)]) == ["256-512-256"]
    assert result.failed_checks == 0


@pytest.mark.parametrize("ensemble", ["orthogonal", "gaussian"])
def test_consistent_words_decay_like_one_over_m(study, ensemble):
    _, fits, _ = study
    rows = fits[(fits["expected"] == "free") & (fits["ensemble"] == ensemble)]
    assert len(rows) == sum(len(fr.study_words(2, None, s)) - 1 for s in SHAPES)
    for r in rows.itertuples():
        assert abs(r.z_inf) < fr.Z_WITHIN_NOISE, r
        assert r.slope / r.slope_se < -fr.SLOPE_SIGNIFICANCE, r
        assert abs(r.slope + 1) < 3 * r.slope_se + 0.3, r  # 1/M, not M^-1/2
        assert r.verdict == "free", r


def test_rectangular_control_is_flagged_at_every_m(study):
    table, fits, _ = study
    controls = table[table["expected"] == "not free"]
    assert len(controls) == len(SHAPES) * 2 * len(WIDTHS)
    assert (controls["z"].abs() >= fr.Z_NOT_FREE).all()
    assert (fits.loc[fits["expected"] == "not free", "verdict"] == "not free").all()


def test_limit_predictions_against_monte_carlo(study):
    # the limit prediction at each cell's widths, against the mean of 30 trials at M = 256:
    # within 4 SE plus an O(1/M) allowance of 2/M (relative) for the finite-size bias (the
    # words whose limit is 0, centered and alternating, have an absolute O(1/M) bias: their
    # paired defects' decay is checked above)
    table, _, _ = study
    last = table[(table["M"] == WIDTHS[-1]) & (table["free_limit"].abs() > 1e-12)]
    assert len(last) == 2 * len(SHAPES) * 3
    for r in last.itertuples():
        if r.expected == "free":
            allowed = 4 * r.empirical_se + 2 / WIDTHS[-1] * abs(r.free_limit)
            assert abs(r.empirical - r.free_limit) <= allowed, r


MC_WORDS = ["W2^T D2^2 W2 D1", "W2 D1 W2^T D2 W2 D1^2 W2^T D2", "W2 D1c W2^T D2 W2 D1c W2^T",
            "W3^T D3 W3 D2 W2 W2^T D2", "H2 D2^2 H2 D2^2"]


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_rectangular_words_against_monte_carlo(weights, global_seed):
    """A depth-3 network of widths (M, 2M, M/2, 3M/2), M = 160, 12 trials: each word's mean
    within 4 SE of its limit free prediction (at these widths), plus 3/M (relative) for the
    O(1/M) finite-size bias; and the square rule's prediction is far outside."""
    spec = NetworkSpec("tanh", weights, depth=3, widths=(160, 320, 80, 240), sigma_w=1.2,
                       sigma_b=0.1)
    square = NetworkSpec("tanh", weights, depth=3, width=1, sigma_w=1.2, sigma_b=0.1)
    values = np.array([[WordEvaluator(sample_network(spec, rng=1000 * global_seed + t))(w)
                        for w in MC_WORDS] for t in range(12)])
    limits = np.array([fr.limit_prediction(spec, fr.StudyWord(w, "custom")) for w in MC_WORDS])
    assert_mean_within(values, limits, bias=3 / 160 * np.abs(limits))
    wrong = np.array([fr.limit_prediction(square, fr.StudyWord(w, "custom"))
                      for w in MC_WORDS[:4]])
    se = values.std(axis=0, ddof=1)[:4] / math.sqrt(len(values))
    assert np.all(np.abs(values.mean(axis=0)[:4] - wrong) > 8 * se)


def test_the_square_rule_turns_the_verdict_red(tmp_path, monkeypatch):
    """tr_{N_2}(W2 D1 W2^T): free_moment rotates it to D1 W2^T W2, whose trace is in
    dimension N_1; without the change of dimension (the square rule) the paired prediction
    is N_2 / N_1 times too small, and the verdict turns from free to not free (failing)."""
    words = ["W2 D1 W2^T", "W2 D1c W2^T D2c"]
    kwargs = {"shapes": [[1, 2, 1]], "widths": (32, 64, 128), "trials": 10, "words": words,
              "ensembles": ("orthogonal",)}
    right = pd.read_parquet(freeness_run(tmp_path / "right", **kwargs).tables["freeness_fits"])
    assert (right["verdict"] == "free").all(), right

    def square_rule(word, families, rows=None):
        return free_moment(word, families)
    monkeypatch.setattr(fr, "free_moment", square_rule)
    result = freeness_run(tmp_path / "wrong", **kwargs)
    wrong = pd.read_parquet(result.tables["freeness_fits"]).set_index("word")
    assert wrong.loc["W2 D1 W2^T", "verdict"] == "not free"
    assert wrong.loc["W2 D1 W2^T", "min_abs_z"] > 50
    assert wrong.loc["W2 D1c W2^T D2c", "verdict"] == "free"  # no rotation: unaffected
    assert failing_words(wrong.reset_index(), strict=False).sum() == 1
    assert result.failed_checks == 1 and "FAIL" in result.summary.read_text()


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_equal_widths_reduce_to_the_square_rule(weights):
    """Every rectangular rule is the identity when all widths are equal: the same draw gives
    the same per-trial values (traces and paired predictions) and limit predictions."""
    square = NetworkSpec("tanh", weights, depth=2, width=24, sigma_w=1.2, sigma_b=0.1)
    equal = NetworkSpec("tanh", weights, depth=2, widths=(24, 24, 24), sigma_w=1.2,
                        sigma_b=0.1)
    words = fr.study_words(2, None)
    assert fr.study_words(2, None, equal.layer_widths) == words + fr.rectangular_controls(2)
    words = words + fr.rectangular_controls(2)
    np.testing.assert_array_equal(fr.trial_values(square, words, 5),
                                  fr.trial_values(equal, words, 5))
    for sw in words:
        assert fr.limit_prediction(equal, sw) == pytest.approx(
            fr.limit_prediction(square, sw), rel=1e-13, abs=1e-15)
