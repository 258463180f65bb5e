"""Evidence accumulation (bci_stream.live.accumulate): summed log-probabilities over repeats, the stopping
rules, the reset rules, and the prior divided out. Unit tests of the stage (no LSL)."""

import numpy as np
import pytest

from bci_stream.live.accumulate import AccumulateConfig, Accumulator, make_accumulator
from bci_stream.live.prediction import Prediction


def prediction(probs, marker="2", t=0.0) -> Prediction:
    probs = np.asarray(probs, np.float32)
    return Prediction(t_lsl=t, t_emitted=t, probabilities=probs, top5=[int(i) for i in np.argsort(-probs)],
                      window_end_sample=0, latency_ms=0.0, marker=marker)


def test_repeats_of_one_stimulus_combine_as_the_normalised_product_of_their_probabilities():
    stage = Accumulator(AccumulateConfig(enabled=True), 3)
    singles = [[0.5, 0.3, 0.2], [0.2, 0.6, 0.2], [0.3, 0.5, 0.2]]
    for i, probs in enumerate(singles):
        out = stage(prediction(probs, t=i))
    product = np.prod(singles, axis=0)
    np.testing.assert_allclose(out.probabilities, product / product.sum(), rtol=1e-6)
    assert out.top5[0] == 1 and out.extra["repeats"] == 3 and out.extra["accumulated"] is True
    assert out.extra["single_top1"] == 1 and out.extra["single_probabilities"] == pytest.approx(singles[-1], abs=1e-6)


def test_weak_agreeing_repeats_grow_more_confident_than_any_one_of_them():
    stage = Accumulator(AccumulateConfig(enabled=True), 2)
    tops = [float(stage(prediction([0.4, 0.6], t=i)).probabilities[1]) for i in range(10)]
    assert all(b > a for a, b in zip(tops, tops[1:])) and tops[-1] > 0.98  # averaging would stay at 0.6


def test_different_markers_accumulate_apart_and_a_sequence_accumulates_together():
    per_marker = Accumulator(AccumulateConfig(enabled=True), 2)
    assert [per_marker(prediction([0.4, 0.6], m)).extra["repeats"] for m in "abab"] == [1, 1, 2, 2]
    sequence = Accumulator(AccumulateConfig(enabled=True, group="sequence"), 2)
    assert [sequence(prediction([0.4, 0.6], m)).extra["repeats"] for m in "abab"] == [1, 2, 3, 4]


def test_the_confidence_threshold_makes_a_decision_final_and_the_next_repeat_starts_again():
    stage = Accumulator(AccumulateConfig(enabled=True, stop_confidence=0.9), 2)
    out = [stage(prediction([0.3, 0.7], t=i)) for i in range(5)]
    # 0.7/0.3 -> odds 2.33^k: 0.7, 0.845, 0.927 (final), then again 0.7, 0.845
    assert [o.extra["repeats"] for o in out] == [1, 2, 3, 1, 2]
    assert [o.extra["final"] for o in out] == [False, False, True, False, False]
    assert stage.summary()["final_decisions"] == 1 and stage.summary()["mean_repeats_final"] == 3


def test_max_repeats_stops_an_undecided_stimulus():
    stage = Accumulator(AccumulateConfig(enabled=True, stop_confidence=0.99, max_repeats=4), 2)
    out = [stage(prediction([0.5, 0.5], t=i)) for i in range(6)]
    assert [o.extra["repeats"] for o in out] == [1, 2, 3, 4, 1, 2] and out[3].extra["final"]


def test_a_reset_marker_and_a_timeout_start_every_accumulation_again():
    stage = Accumulator(AccumulateConfig(enabled=True, reset_markers=("target/*",), timeout=2.0), 2)
    assert [stage(prediction([0.4, 0.6], t=t)).extra["repeats"] for t in (0.0, 1.0)] == [1, 2]
    stage.markers([(1.5, "response"), (1.6, "target/B")])  # a new target
    assert stage(prediction([0.4, 0.6], t=1.7)).extra["repeats"] == 1 and stage.summary()["resets"] == 1
    assert stage(prediction([0.4, 0.6], t=5.0)).extra["repeats"] == 1  # 3.3 s since the last repeat


def test_the_prior_is_counted_once_not_once_per_repeat():
    prior = (0.8, 0.2)  # an oddball's classifier: its probabilities carry the 4:1 prior
    stage = Accumulator(AccumulateConfig(enabled=True, prior=prior), 2)
    singles = [[0.6, 0.4], [0.55, 0.45], [0.7, 0.3]]
    for probs in singles:
        out = stage(prediction(probs))
    likelihood = np.prod(np.array(singles) / prior, axis=0) * prior
    np.testing.assert_allclose(out.probabilities, likelihood / likelihood.sum(), rtol=1e-6)
    assert out.top5[0] == 1  # the plain sum would say class 0: it counts the 0.8 prior three times


def test_a_zero_probability_does_not_veto_its_class_for_ever():
    stage = Accumulator(AccumulateConfig(enabled=True), 2)
    stage(prediction([1.0, 0.0]))
    out = stage(prediction([1e-9, 1.0 - 1e-9]))
    assert np.isfinite(out.probabilities).all()


def test_bad_settings_are_refused_with_their_value():
    with pytest.raises(ValueError, match="stop confidence"):
        AccumulateConfig(enabled=True, stop_confidence=1.5)
    with pytest.raises(ValueError, match="max repeats"):
        AccumulateConfig(enabled=True, max_repeats=0)
    with pytest.raises(ValueError, match="prior has 3 values"):
        Accumulator(AccumulateConfig(enabled=True, prior=(0.2, 0.3, 0.5)), 2)
    with pytest.raises(ValueError, match="embedding model"):
        make_accumulator(AccumulateConfig(enabled=True), 2, embedding=True)
    assert make_accumulator(AccumulateConfig(), 2) is None  # off by default
    from bci_stream.live.config import LiveConfig

    with pytest.raises(ValueError, match="needs --mode event"):
        LiveConfig(accumulate=AccumulateConfig(enabled=True))
