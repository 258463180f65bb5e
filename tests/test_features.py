import numpy as np
import pytest
import scipy.signal

from bci_stream.contract.features import (
    ErpConfig,
    Features,
    RollingSpectrogram,
    SpectrogramConfig,
    erp_batch,
    spectrogram,
    spectrogram_batch,
)


def reference(x, fs=1000.0, nperseg=40):
    return np.abs(scipy.signal.stft(x, fs, nperseg=nperseg)[2])


def test_seed_shape_and_golden_values(rng):
    x = rng.standard_normal((128, 440)).astype(np.float32) * 20
    out = spectrogram(x)
    assert out.shape == (128, 21, 23) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("n_times", "nperseg"), [(n, p) for n in (40, 41, 99, 440, 500, 1001) for p in (16, 40, 64) if n >= p])
def test_matches_scipy_for_any_length(rng, n_times, nperseg):
    x = rng.standard_normal((3, n_times))
    cfg = SpectrogramConfig(nperseg=nperseg)
    out = spectrogram(x, cfg)
    ref = reference(x, nperseg=nperseg)
    assert out.shape == ref.shape == (3, cfg.n_freqs(), cfg.n_frames(n_times))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6)


def test_batch_equals_single_and_log(rng):
    x = rng.standard_normal((4, 8, 440)).astype(np.float32)
    batch = spectrogram_batch(x)
    for i in range(4):
        np.testing.assert_array_equal(batch[i], spectrogram(x[i]))
    logged = spectrogram_batch(x, SpectrogramConfig(log=True))
    np.testing.assert_allclose(logged, np.log(batch + 1e-6), rtol=1e-5, atol=1e-5)


def test_sinusoid_lands_in_its_bin():
    t = np.arange(440) / 1000.0
    x = np.sin(2 * np.pi * 100.0 * t)[None]  # 100 Hz = bin 4 at 25 Hz resolution
    out = spectrogram(x)
    assert out[0, :, 5:-5].mean(axis=1).argmax() == 4
    assert SpectrogramConfig().freqs()[4] == 100.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="n_channels, n_times"):
        spectrogram(np.zeros(440))
    with pytest.raises(ValueError, match="shorter than one STFT segment"):
        spectrogram(np.zeros((2, 10)))


def test_reused_buffers_never_leak_between_calls(rng):
    """The live path reuses buffers per window shape: results must not depend on earlier calls."""
    first = rng.standard_normal((16, 440)).astype(np.float32) * 50
    second = rng.standard_normal((16, 440)).astype(np.float32)
    spectrogram(first)
    out = np.empty((16, 21, 23), np.float32)
    result = spectrogram(second.T.copy().T, out=out)  # a non-contiguous view, as the ring buffer gives
    assert result is out
    np.testing.assert_allclose(out, reference(second), rtol=1e-5, atol=1e-6)
    kept = spectrogram(first)
    spectrogram(second)
    np.testing.assert_allclose(kept, reference(first), rtol=1e-5, atol=1e-5)  # returned arrays are not reused


# --- feature contract v2: spectrogram modes and fmax, the erp kind, one dispatcher ----------------------
def test_complex_mode_is_scipys_stft_real_then_imaginary_up_to_fmax(rng):
    x = rng.standard_normal((5, 440)).astype(np.float32) * 20
    cfg = SpectrogramConfig(mode="complex", fmax=60.0)
    out = spectrogram(x, cfg)
    ref = scipy.signal.stft(x, 1000.0, nperseg=40)[2][:, :3]  # bins 0, 25, 50 Hz
    assert cfg.n_bins() == 3 and out.shape == (5, 6, 23) == (5, cfg.n_rows(), cfg.n_frames(440))
    np.testing.assert_allclose(out[:, :3], ref.real, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[:, 3:], ref.imag, rtol=1e-4, atol=1e-5)
    batch = spectrogram_batch(np.stack([x, 2 * x]), cfg)
    np.testing.assert_allclose(batch[1], 2 * out, rtol=1e-5, atol=1e-5)  # linear in the samples


def test_fmax_keeps_the_low_bins_of_magnitude_and_log(rng):
    x = rng.standard_normal((3, 440))
    full = spectrogram(x)
    low = spectrogram(x, SpectrogramConfig(fmax=100.0))
    np.testing.assert_allclose(low, full[:, :5], rtol=1e-5, atol=1e-6)
    logged = spectrogram(x, SpectrogramConfig(mode="log", fmax=100.0))
    np.testing.assert_allclose(logged, np.log(full[:, :5] + 1e-6), rtol=1e-4, atol=1e-4)


def test_legacy_log_flag_is_log_mode_and_bad_modes_are_refused():
    assert SpectrogramConfig(log=True).mode == "log" and SpectrogramConfig(mode="log").log is True
    assert SpectrogramConfig().mode == "magnitude" and SpectrogramConfig().log is False
    with pytest.raises(ValueError, match="mode"):
        SpectrogramConfig(mode="phase")
    with pytest.raises(ValueError, match="kind"):
        Features("wavelet")


def test_erp_is_lfilter_valid_part_decimated_and_upfirdn(rng):
    x = rng.standard_normal((4, 440)) * 10
    cfg = ErpConfig(cutoff=45.0, numtaps=41, decimate=8)
    out = erp_batch(x.astype(np.float32), cfg)
    h = cfg.taps()
    golden = scipy.signal.lfilter(h, 1.0, x, axis=-1)[..., cfg.numtaps - 1 :: cfg.decimate]
    assert out.shape == (4, 1, cfg.n_out(440)) == (4, 1, golden.shape[-1])
    np.testing.assert_allclose(out[:, 0], golden, rtol=1e-4, atol=1e-4)
    # the same samples as upfirdn's full convolution, valid part only
    full = scipy.signal.upfirdn(h, x, up=1, down=1)
    np.testing.assert_allclose(out[:, 0], full[:, cfg.numtaps - 1 : 440 : cfg.decimate], rtol=1e-4, atol=1e-4)
    # a DC input passes with unit gain; a tone far above the cut-off does not
    t = np.arange(440) / 1000.0
    tones = np.stack([np.ones(440), np.sin(2 * np.pi * 200 * t)]).astype(np.float32)
    y = erp_batch(tones, cfg)[:, 0]
    np.testing.assert_allclose(y[0], 1.0, rtol=1e-5)
    assert np.abs(y[1]).max() < 0.01


def test_erp_is_stateless_and_writes_into_out_without_leaks(rng):
    cfg = ErpConfig()
    big = rng.standard_normal((16, 440)).astype(np.float32) * 100
    small = rng.standard_normal((16, 440)).astype(np.float32)
    feats = Features("erp", erp=cfg)
    out = np.empty(feats.shape(16, 440), np.float32)
    feats.window(big, out=out)
    result = feats.window(small.T.copy().T, out=out)  # non-contiguous input, as the ring buffer gives
    assert result is out
    # bit-identical on every BLAS kernel: erp_batch gives BLAS the same layout whatever the input's
    np.testing.assert_array_equal(out.view(np.uint32), erp_batch(small, cfg).view(np.uint32))
    with pytest.raises(ValueError, match="shorter than the ERP filter"):
        erp_batch(np.zeros((2, 10), np.float32), cfg)


@pytest.mark.parametrize("features", [Features(), Features(spectrogram=SpectrogramConfig(mode="complex", fmax=60.0)),
                                      Features(spectrogram=SpectrogramConfig(mode="log")), Features("erp")])
def test_dispatcher_batch_equals_window_and_shape(rng, features):
    x = rng.standard_normal((3, 6, 440)).astype(np.float32)
    batch = features.batch(x)
    assert batch.shape == (3, *features.shape(6, 440))
    for i in range(3):
        np.testing.assert_allclose(features.window(x[i]), batch[i], rtol=1e-5, atol=1e-6)
    assert features.linear == (features.kind == "erp" or features.spectrogram.mode == "complex")


# --- the incremental (rolling) spectrogram: bit-identical to the full computation ---------------------
ROLLING_CONFIGS = [SpectrogramConfig(), SpectrogramConfig(mode="log"), SpectrogramConfig(mode="complex", fmax=60.0),
                   SpectrogramConfig(fmax=100.0), SpectrogramConfig(nperseg=40, noverlap=30)]


@pytest.mark.parametrize("config", ROLLING_CONFIGS, ids=lambda c: f"{c.mode}-fmax{c.fmax}-hop{c.hop}")
def test_rolling_spectrogram_equals_the_full_one_bit_for_bit_on_every_hop_of_a_long_stream(rng, config):
    """Every window of a stream, whichever way it was reached: steady hops, several hops at once, a
    move that is not a whole STFT hop, a jump longer than the window, a reset (gap) — the rolled
    columns, first and last (zero-padded) frames included, equal ``spectrogram``'s to the bit."""
    n_channels, n_times = 32, 440
    stream = (rng.standard_normal((8000, n_channels)) * 20).astype(np.float32)  # time-major, as the ring
    rolling = RollingSpectrogram(config, n_channels, n_times)
    shape = (n_channels, config.n_rows(), config.n_frames(n_times))
    outputs, turn = [np.empty(shape, np.float32), np.empty(shape, np.float32)], 0
    moves = [20] * 60 + [40, 60, 20, 10, 20, 25, 20, 500, 20, 420, 400, 20, "reset", 20, 20, 30, 20] * 3 + [20] * 40
    end, rolled, full = n_times, 0, 0
    for move in moves:
        if move == "reset":
            rolling.reset()
            continue
        end += move
        window = stream[end - n_times : end].T  # a non-contiguous (n_channels, n_times) view
        if rolling.shift_for(end):
            rolling.roll(window, end, outputs[turn], outputs[1 - turn])
            rolled += 1
        else:
            rolling.full(window, end, outputs[1 - turn])
            full += 1
        turn = 1 - turn
        expected = spectrogram(window, config)
        np.testing.assert_array_equal(outputs[turn].view(np.uint32), expected.view(np.uint32))
    assert rolled > 100 and full >= 10  # both paths ran, many times


def test_rolling_spectrogram_finishes_only_new_columns_and_refuses_what_it_cannot_roll(rng):
    """``finish`` (the decoder's normalisation) sees each column once; windows that do not line up
    with STFT blocks are refused and named."""
    config = SpectrogramConfig()
    rolling = RollingSpectrogram(config, 4, 440)
    stream = rng.standard_normal((2000, 4)).astype(np.float32)
    a, b = np.empty((4, 21, 23), np.float32), np.empty((4, 21, 23), np.float32)
    seen = []
    rolling.full(stream[:440].T, 440, a, finish=lambda cols: seen.append(cols.shape[-1]))
    rolling.roll(stream[40:480].T, 480, a, b, finish=lambda cols: seen.append(cols.shape[-1]))
    assert seen == [23, 1, 3]  # all 23; then the first frame, and 2 new interior frames + the last frame
    assert rolling.shift_for(490) == 0 and rolling.shift_for(480) == 0 and rolling.shift_for(None) == 0
    assert rolling.shift_for(500) == 1 and rolling.shift_for(480 + 20 * 20) == 20 and rolling.shift_for(480 + 21 * 20) == 0
    with pytest.raises(ValueError, match="cannot be rolled"):
        rolling.roll(stream[50:490].T, 490, b, a)
    assert not RollingSpectrogram.supports(SpectrogramConfig(nperseg=64), 440)  # 440 is not whole 32-sample hops
    assert not RollingSpectrogram.supports(SpectrogramConfig(nperseg=41), 440)
    with pytest.raises(ValueError, match="do not line up"):
        RollingSpectrogram(SpectrogramConfig(nperseg=64), 4, 440)
