import numpy as np
import pytest
import scipy.signal

from bci_stream.features import SpectrogramConfig, spectrogram, spectrogram_batch


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
