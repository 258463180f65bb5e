"""The causal preprocessing chain: one implementation, chunking-invariant, carried in the card."""

import numpy as np
import pytest
from scipy.signal import butter, sosfilt, sosfilt_zi

from bci_stream.contract.preprocessing import (
    CausalPreprocessor,
    FilterDesign,
    Preprocessing,
    PreprocessingError,
    check_against_card,
    preprocess_continuous,
    preprocess_epochs,
)

CH = ["O1", "Oz", "O2", "POz"]
BANDPASS = Preprocessing(filters=(FilterDesign("bandpass", (1.0, 40.0)), FilterDesign("notch", (50.0,))),
                         reference="average")


def signal(n=3000, sfreq=1000.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sfreq
    drift = 80 * np.sin(2 * np.pi * 0.2 * t)
    return (rng.standard_normal((len(CH), n)) * 10 + drift + 30).astype(np.float32)


def test_chunked_stream_equals_the_whole_recording_bit_for_bit():
    data = signal()
    whole = preprocess_continuous(BANDPASS, data, CH, 1000.0)
    chain = CausalPreprocessor(BANDPASS, CH, 1000.0)
    rng = np.random.default_rng(1)
    parts, start = [], 0
    while start < data.shape[1]:
        n = int(rng.integers(1, 60))  # irregular chunks, as an amplifier driver pushes them
        parts.append(chain.process(data[:, start : start + n].T))
        start += n
    np.testing.assert_array_equal(np.concatenate(parts).T, whole)


def test_chain_is_reference_then_scipy_sosfilt_from_the_first_samples_steady_state():
    data = signal().astype(np.float64)
    referenced = data - data.mean(axis=0)
    sos = np.concatenate([f.sos(1000.0) for f in BANDPASS.filters])
    zi = sosfilt_zi(sos)[:, :, None] * referenced[:, 0][None, None, :]
    expected, _ = sosfilt(sos, referenced, axis=1, zi=np.swapaxes(zi, 1, 2))
    got = preprocess_continuous(BANDPASS, data.astype(np.float32), CH, 1000.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    assert abs(got[:, 1000:].mean()) < 1.0  # the 30 uV offset and the 0.2 Hz drift are gone


def test_decimation_keeps_every_kth_sample_and_its_stamp_across_chunks():
    pre = Preprocessing(filters=(FilterDesign("lowpass", (100.0,)),), decimate=4)
    data = signal()
    stamps = np.arange(data.shape[1]) / 1000.0
    whole = preprocess_continuous(pre, data, CH, 1000.0)
    assert whole.shape == (len(CH), 750)
    chain = CausalPreprocessor(pre, CH, 1000.0)
    out, kept = [], []
    for start in range(0, data.shape[1], 7):
        x, t = chain.process_stamped(data[:, start : start + 7].T, stamps[start : start + 7])
        out.append(x)
        kept.append(t)
    np.testing.assert_array_equal(np.concatenate(out).T, whole)
    np.testing.assert_array_equal(np.concatenate(kept), stamps[::4])
    assert chain.out_sfreq == 250.0


def test_epochs_are_filtered_each_from_its_own_first_sample():
    pre = Preprocessing(filters=(FilterDesign("highpass", (1.0,)),))
    data = signal()
    epochs = np.stack([data[:, s : s + 500] for s in (0, 700, 1900)])
    got = preprocess_epochs(pre, epochs, CH, 1000.0)
    for i, epoch in enumerate(epochs):
        np.testing.assert_array_equal(got[i], preprocess_continuous(pre, epoch, CH, 1000.0))


def test_reset_after_a_gap_restarts_at_the_new_first_sample():
    pre = Preprocessing(filters=(FilterDesign("highpass", (0.5,)),))
    data = signal()
    chain = CausalPreprocessor(pre, CH, 1000.0)
    chain.process(data[:, :1000].T)
    chain.reset()
    after = chain.process(data[:, 2000:].T).T
    np.testing.assert_array_equal(after, preprocess_continuous(pre, data[:, 2000:], CH, 1000.0))


def test_standardisation_and_named_reference():
    pre = Preprocessing(reference="Oz,O2", standardise_mean=(1.0, 2.0, 3.0, 4.0), standardise_std=(2.0,) * 4)
    data = signal()
    got = preprocess_continuous(pre, data, CH, 1000.0)
    ref = data.astype(np.float64) - data[[1, 2]].astype(np.float64).mean(axis=0)
    expected = (ref - np.array([1.0, 2.0, 3.0, 4.0])[:, None]) / 2.0
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


def test_identity_passes_samples_through_untouched():
    chain = CausalPreprocessor(Preprocessing(), CH, 1000.0)
    x = signal().T
    assert chain.process(x) is x and Preprocessing().describe() == "none"


def test_card_dict_round_trip_carries_sos_and_checks_it():
    d = BANDPASS.to_dict(1000.0)
    assert len(d["filters"][0]["sos"]) == 4 and d["reference"] == "average"
    again = Preprocessing.from_dict(d)
    assert again == BANDPASS
    stored = Preprocessing.stored_sos(d)
    np.testing.assert_array_equal(check_against_card(again, stored, 1000.0), stored)
    d["filters"][0]["sos"][0][0] *= 1.5  # hand-edited coefficients are named, not obeyed
    with pytest.raises(PreprocessingError, match="do not match"):
        check_against_card(again, Preprocessing.stored_sos(d), 1000.0)
    assert "bandpass 1-40 Hz" in BANDPASS.describe() and "average reference" in BANDPASS.describe()


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="bandpass", freqs=(40.0, 1.0)), "increasing"),
    (dict(kind="lowpass", freqs=(1.0, 2.0)), "takes 1"),
    (dict(kind="comb", freqs=(1.0,)), "unknown filter kind"),
    (dict(kind="highpass", freqs=(-1.0,)), "positive"),
])
def test_bad_filter_descriptions_are_named(kwargs, message):
    with pytest.raises(PreprocessingError, match=message):
        FilterDesign(**kwargs)


def test_filter_above_nyquist_and_unknown_reference_are_refused():
    with pytest.raises(PreprocessingError, match="Nyquist"):
        FilterDesign("lowpass", (70.0,)).sos(128.0)
    with pytest.raises(PreprocessingError, match="not among the model's channels"):
        CausalPreprocessor(Preprocessing(reference="M1,M2"), CH, 1000.0)


def test_butterworth_design_is_scipys():
    np.testing.assert_array_equal(FilterDesign("highpass", (0.5,), order=2).sos(250.0),
                                  butter(2, 0.5, btype="highpass", fs=250.0, output="sos"))


def test_non_finite_samples_never_enter_the_filter_state_and_chunking_does_not_change_it():
    """NaN on one channel for 500 samples: they come out NaN, the channel's filter starts again at
    the steady state of its next finite sample (as a fresh chain would), the other channels are
    filtered as if nothing happened, and 20-sample chunks give what one call gives."""
    from bci_stream.contract.preprocessing import CausalPreprocessor

    pre = Preprocessing(filters=(FilterDesign("bandpass", (5, 45)),))
    x = np.random.default_rng(0).standard_normal((3000, 3)) * 10 + 50
    x[1000:1500, 1] = np.nan
    chain = CausalPreprocessor(pre, ["a", "b", "c"], 250.0)
    parts, restarted = [], []
    for i in range(0, 3000, 20):
        parts.append(chain.process(x[i : i + 20]))
        restarted.append(chain.restarted)
    chunked = np.concatenate(parts)
    whole = CausalPreprocessor(pre, ["a", "b", "c"], 250.0).process(x)
    np.testing.assert_array_equal(chunked, whole)  # sosfilt is sample by sample: chunks change nothing
    assert np.isnan(whole[1000:1500, 1]).all() and np.isfinite(np.delete(whole, np.s_[1000:1500], axis=0)).all()
    fresh = CausalPreprocessor(pre, ["b"], 250.0).process(x[1500:, 1:2])
    np.testing.assert_array_equal(whole[1500:, 1:2], fresh)
    untouched = CausalPreprocessor(pre, ["a", "b", "c"], 250.0).process(np.nan_to_num(x))
    np.testing.assert_array_equal(whole[:, [0, 2]], untouched[:, [0, 2]])
    assert [i for i, r in enumerate(restarted) if r] == [75] and restarted[75] == (1,)  # once, at sample 1500
