"""THE spectrogram: one implementation shared by the trainer, the live decoder and the viewer.

The seed lineage (Ferrante et al. 2023) takes samples 20-460 of each 1 kHz trial and computes
``scipy.signal.stft(x, 1000, nperseg=40)`` magnitudes, giving ``(128, 21, 23)`` per trial.
:func:`spectrogram` reproduces ``scipy.signal.stft`` to float32 precision (golden test in
``tests/``) with matrix products of the signal's hop-long blocks and a precomputed windowed DFT
matrix (frames overlapping by whole hops share the blocks), reusing its buffers for single windows:
about half the time of ``scipy.signal.stft`` on a 128 x 440 window (0.29 vs 0.60 ms on one 2-core
development machine, 0.67 vs 1.04 ms on a slower one; ``tools/bench_features.py``) — what the 20 ms
live hop needs. :func:`spectrogram_batch`
is the same code on ``(n_trials, n_channels, n_times)``.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import get_window


@dataclass(frozen=True)
class SpectrogramConfig:
    """STFT parameters; defaults are the seed lineage's (``scipy.signal.stft`` defaults, nperseg 40).

    Attributes
    ----------
    sfreq : sampling rate of the input, Hz.
    nperseg : samples per STFT segment.
    noverlap : overlapping samples between segments (``None`` -> ``nperseg // 2``).
    window : scipy window name.
    log : if True return ``log(magnitude + log_eps)`` instead of the magnitude.
    log_eps : floor added before the log.
    """

    sfreq: float = 1000.0
    nperseg: int = 40
    noverlap: int | None = None
    window: str = "hann"
    log: bool = False
    log_eps: float = 1e-6

    @property
    def hop(self) -> int:
        """Samples between frame starts."""
        return self.nperseg - (self.nperseg // 2 if self.noverlap is None else self.noverlap)

    def n_freqs(self) -> int:
        """Number of frequency bins (one-sided)."""
        return self.nperseg // 2 + 1

    def n_frames(self, n_times: int) -> int:
        """Number of frames for an input of ``n_times`` samples (scipy's zero boundary + padding)."""
        padded = n_times + 2 * (self.nperseg // 2)
        extra = (-(padded - self.nperseg)) % self.hop
        return (padded + extra - self.nperseg) // self.hop + 1

    def freqs(self) -> np.ndarray:
        """Bin centre frequencies, Hz, shape ``(n_freqs,)``."""
        return np.fft.rfftfreq(self.nperseg, 1.0 / self.sfreq)

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=16)
def _windowed_dft(window: str, nperseg: int) -> np.ndarray:
    """``(nperseg, 2 * n_freqs)`` float32: [real | imaginary] parts of the DFT, window and scipy's
    ``1 / sum(window)`` scaling folded in."""
    win = get_window(window, nperseg).astype(np.float64)
    win /= win.sum()
    angle = 2 * np.pi * np.outer(np.arange(nperseg), np.arange(nperseg // 2 + 1)) / nperseg
    return np.concatenate([win[:, None] * np.cos(angle), -win[:, None] * np.sin(angle)], axis=1).astype(np.float32)


class _Workspace:
    """Buffers reused across calls for one window shape: the live path then allocates nothing
    large per hop (fresh >128 kB arrays each call cost page faults and doubled the time)."""

    def __init__(self, rows: int, n_blocks: int, n_frames: int, config: SpectrogramConfig, k: int):
        width = 2 * config.n_freqs()
        self.padded = np.zeros((rows, n_blocks * config.hop), np.float32)  # the pads are never written
        self.parts = [np.empty((rows * n_blocks, width), np.float32) for _ in range(k)]
        self.spec = np.empty((rows, n_frames, width), np.float32)
        self.mag = np.empty((rows, n_frames, config.n_freqs()), np.float32)


_local = threading.local()


def _workspace(rows: int, n_blocks: int, n_frames: int, config: SpectrogramConfig, k: int) -> _Workspace:
    cache = _local.__dict__.setdefault("workspaces", {})
    key = (rows, n_blocks, n_frames, config.nperseg, config.hop, k)
    if key not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[key] = _Workspace(rows, n_blocks, n_frames, config, k)
    return cache[key]


def spectrogram_batch(x: np.ndarray, config: SpectrogramConfig = SpectrogramConfig(),
                      out: np.ndarray | None = None) -> np.ndarray:
    """STFT magnitude of a batch of windows.

    Parameters
    ----------
    x : float array, shape ``(..., n_channels, n_times)`` (any leading dims), in signal units.
    config : STFT parameters.
    out : optional float32 array of the result's shape to write into.

    Returns
    -------
    float32 array, shape ``(..., n_channels, n_freqs, n_frames)``: ``|stft|`` as
    ``scipy.signal.stft(x, fs, nperseg=...)`` returns it (or its log when ``config.log``).
    """
    x = np.asarray(x, dtype=np.float32)
    half = config.nperseg // 2
    n_times = x.shape[-1]
    if n_times < config.nperseg:
        raise ValueError(f"window of {n_times} samples is shorter than one STFT segment ({config.nperseg})")
    n_frames = config.n_frames(n_times)
    hop, nperseg, n_freqs = config.hop, config.nperseg, config.n_freqs()
    dft = _windowed_dft(config.window, nperseg)  # (nperseg, 2 * n_freqs)
    lead = x.shape[:-1]
    if nperseg % hop == 0:
        # Frames overlap by whole hops (scipy's default: half a segment): split the padded signal into
        # hop-long blocks and sum per-block products, so every product is one contiguous 2-D matmul.
        k = nperseg // hop
        n_blocks = n_frames + k - 1
        rows = int(np.prod(lead))
        ws = _workspace(rows, n_blocks, n_frames, config, k) if x.ndim == 2 else None
        padded = ws.padded if ws else np.zeros((rows, n_blocks * hop), dtype=np.float32)
        padded[:, half : half + n_times] = x.reshape(rows, n_times)
        blocks = padded.reshape(-1, hop)
        spec = None
        for j in range(k):
            product = np.matmul(blocks, dft[j * hop : (j + 1) * hop], out=ws.parts[j] if ws else None)
            part = product.reshape(rows, n_blocks, 2 * n_freqs)[:, j : j + n_frames]
            if spec is None:
                spec = ws.spec if ws else np.empty((rows, n_frames, 2 * n_freqs), np.float32)
                np.copyto(spec, part)
            else:
                spec += part
        spec = spec.reshape(lead + (n_frames, 2 * n_freqs))
    else:
        ws = None
        total = (n_frames - 1) * hop + nperseg
        padded = np.zeros(lead + (total,), dtype=np.float32)
        padded[..., half : half + n_times] = x
        spec = sliding_window_view(padded, nperseg, axis=-1)[..., ::hop, :] @ dft  # (..., n_frames, 2 * n_freqs)
    np.multiply(spec, spec, out=spec)  # power of the real and imaginary parts
    mag = ws.mag.reshape(lead + (n_frames, n_freqs)) if ws else np.empty(lead + (n_frames, n_freqs), np.float32)
    np.add(spec[..., :n_freqs], spec[..., n_freqs:], out=mag)
    np.sqrt(mag, out=mag)
    if config.log:
        mag += np.float32(config.log_eps)
        np.log(mag, out=mag)
    if out is None:
        return np.ascontiguousarray(np.swapaxes(mag, -1, -2))
    np.copyto(out, np.swapaxes(mag, -1, -2))
    return out


def spectrogram(window: np.ndarray, config: SpectrogramConfig = SpectrogramConfig(),
                out: np.ndarray | None = None) -> np.ndarray:
    """Spectrogram of one window.

    Parameters
    ----------
    window : float array, shape ``(n_channels, n_times)``.
    config : STFT parameters.
    out : optional float32 ``(n_channels, n_freqs, n_frames)`` array to write into (the live path).

    Returns
    -------
    float32 array, shape ``(n_channels, n_freqs, n_frames)``.
    """
    if np.ndim(window) != 2:
        raise ValueError(f"spectrogram expects (n_channels, n_times); got shape {np.shape(window)}")
    return spectrogram_batch(window, config, out)
