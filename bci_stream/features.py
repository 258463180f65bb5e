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

Feature contract v2 (the model card's ``feature_kind``):

- ``spectrogram`` with ``mode`` ``magnitude`` (the seed's ``|stft|``), ``log`` (``log(|stft| + eps)``) or
  ``complex`` (real parts of the kept bins, then their imaginary parts, along the frequency axis: the
  phase the magnitude throws away), keeping the bins at or below ``fmax`` Hz.
- ``erp``: a fixed linear-phase FIR low-pass applied in "valid" mode inside the window, then every
  ``decimate``-th output (:func:`erp_batch`): stateless, so a window's features never depend on
  samples outside it, and one matrix product per window. Shape ``(n_channels, 1, n_out)`` so that
  every feature kind is a ``(channels, rows, columns)`` image with per-(channel, row) normalisation.

:class:`Features` is the one dispatcher the trainer and the live decoder both call.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SPECTROGRAM_MODES = ("magnitude", "log", "complex")
FEATURE_KINDS = ("spectrogram", "erp")


@dataclass(frozen=True)
class SpectrogramConfig:
    """STFT parameters; defaults are the seed lineage's (``scipy.signal.stft`` defaults, nperseg 40).

    Attributes
    ----------
    sfreq : sampling rate of the input, Hz.
    nperseg : samples per STFT segment.
    noverlap : overlapping samples between segments (``None`` -> ``nperseg // 2``).
    window : scipy window name.
    log : legacy (version-1 cards) spelling of ``mode="log"``; kept equal to ``mode == "log"``.
    log_eps : floor added before the log.
    mode : "magnitude" (``|stft|``), "log" (``log(|stft| + log_eps)``) or "complex" (real parts of
        the kept bins, then their imaginary parts: ``2 * n_bins`` rows).
    fmax : keep the bins at or below this frequency, Hz (``None``: all ``nperseg // 2 + 1``).
    """

    sfreq: float = 1000.0
    nperseg: int = 40
    noverlap: int | None = None
    window: str = "hann"
    log: bool = False
    log_eps: float = 1e-6
    mode: str = "magnitude"
    fmax: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in SPECTROGRAM_MODES:
            raise ValueError(f"spectrogram mode {self.mode!r} is not one of {SPECTROGRAM_MODES}")
        if self.log and self.mode == "magnitude":  # a version-1 card's log=True
            object.__setattr__(self, "mode", "log")
        if self.log and self.mode == "complex":
            raise ValueError("spectrogram log=True contradicts mode='complex'")
        object.__setattr__(self, "log", self.mode == "log")

    @property
    def hop(self) -> int:
        """Samples between frame starts."""
        return self.nperseg - (self.nperseg // 2 if self.noverlap is None else self.noverlap)

    def n_freqs(self) -> int:
        """Number of frequency bins (one-sided)."""
        return self.nperseg // 2 + 1

    def n_bins(self) -> int:
        """Number of kept frequency bins (those at or below ``fmax``; at least 1)."""
        if self.fmax is None:
            return self.n_freqs()
        return max(1, int(np.count_nonzero(self.freqs() <= self.fmax + 1e-9)))

    def n_rows(self) -> int:
        """Feature rows per channel: ``n_bins``, or ``2 * n_bins`` (real, imaginary) in complex mode."""
        return self.n_bins() * (2 if self.mode == "complex" else 1)

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
def _windowed_dft(window: str, nperseg: int, n_bins: int) -> np.ndarray:
    """``(nperseg, 2 * n_bins)`` float32: [real | imaginary] parts of the first ``n_bins`` DFT bins,
    window and scipy's ``1 / sum(window)`` scaling folded in."""
    from scipy.signal import get_window  # scipy.signal takes half a second to import: only when designing

    win = get_window(window, nperseg).astype(np.float64)
    win /= win.sum()
    angle = 2 * np.pi * np.outer(np.arange(nperseg), np.arange(n_bins)) / nperseg
    return np.concatenate([win[:, None] * np.cos(angle), -win[:, None] * np.sin(angle)], axis=1).astype(np.float32)


class _Workspace:
    """Buffers reused across calls for one window shape: the live path then allocates nothing
    large per hop (fresh >128 kB arrays each call cost page faults and doubled the time)."""

    def __init__(self, rows: int, n_blocks: int, n_frames: int, config: SpectrogramConfig, k: int):
        width = 2 * config.n_bins()
        self.padded = np.zeros((rows, n_blocks * config.hop), np.float32)  # the pads are never written
        self.parts = [np.empty((rows * n_blocks, width), np.float32) for _ in range(k)]
        self.spec = np.empty((rows, n_frames, width), np.float32)
        self.mag = np.empty((rows, n_frames, config.n_bins()), np.float32)


_local = threading.local()


def _workspace(rows: int, n_blocks: int, n_frames: int, config: SpectrogramConfig, k: int) -> _Workspace:
    cache = _local.__dict__.setdefault("workspaces", {})
    key = (rows, n_blocks, n_frames, config.nperseg, config.hop, k, config.n_bins())
    if key not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[key] = _Workspace(rows, n_blocks, n_frames, config, k)
    return cache[key]


def spectrogram_batch(x: np.ndarray, config: SpectrogramConfig = SpectrogramConfig(),
                      out: np.ndarray | None = None) -> np.ndarray:
    """STFT features of a batch of windows.

    Parameters
    ----------
    x : float array, shape ``(..., n_channels, n_times)`` (any leading dims), in signal units.
    config : STFT parameters.
    out : optional float32 array of the result's shape to write into.

    Returns
    -------
    float32 array, shape ``(..., n_channels, config.n_rows(), n_frames)``: ``|stft|`` of the kept bins
    as ``scipy.signal.stft(x, fs, nperseg=...)`` returns it, its log (mode "log"), or its real parts
    then its imaginary parts (mode "complex").
    """
    x = np.asarray(x, dtype=np.float32)
    half = config.nperseg // 2
    n_times = x.shape[-1]
    if n_times < config.nperseg:
        raise ValueError(f"window of {n_times} samples is shorter than one STFT segment ({config.nperseg})")
    n_frames = config.n_frames(n_times)
    hop, nperseg, n_freqs = config.hop, config.nperseg, config.n_bins()  # only the kept bins are computed
    dft = _windowed_dft(config.window, nperseg, n_freqs)  # (nperseg, 2 * n_freqs)
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
    if config.mode == "complex":  # (..., n_frames, [re | im]) -> (..., [re | im], n_frames)
        if out is None:
            return np.swapaxes(spec, -1, -2).copy()  # never a view of the reused workspace
        np.copyto(out, np.swapaxes(spec, -1, -2))
        return out
    np.multiply(spec, spec, out=spec)  # power of the real and imaginary parts
    mag = ws.mag.reshape(lead + (n_frames, n_freqs)) if ws else np.empty(lead + (n_frames, n_freqs), np.float32)
    np.add(spec[..., :n_freqs], spec[..., n_freqs:], out=mag)
    np.sqrt(mag, out=mag)
    if config.mode == "log":
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
    out : optional float32 ``(n_channels, config.n_rows(), n_frames)`` array to write into (the live path).

    Returns
    -------
    float32 array, shape ``(n_channels, config.n_rows(), n_frames)``.
    """
    if np.ndim(window) != 2:
        raise ValueError(f"spectrogram expects (n_channels, n_times); got shape {np.shape(window)}")
    return spectrogram_batch(window, config, out)


# --- ERP: in-window low-pass + decimation ---------------------------------------------------------
@dataclass(frozen=True)
class ErpConfig:
    """The ``erp`` feature: a linear-phase FIR low-pass in "valid" mode inside the window, decimated.

    Output sample ``j`` is ``sum_k h[k] * x[j * decimate + numtaps - 1 - k]``, i.e.
    ``scipy.signal.lfilter(h, 1, x)[..., numtaps - 1 :: decimate]`` (golden test in ``tests/``): only
    samples of the window enter, so the feature is stateless. Output ``j`` is centred on input sample
    ``j * decimate + (numtaps - 1) / 2``.

    Attributes
    ----------
    sfreq : input rate, Hz.
    cutoff : low-pass cut-off (-6 dB), Hz; below ``sfreq / (2 * decimate)`` to avoid aliasing.
    numtaps : FIR length (odd: linear phase with a whole-sample delay).
    decimate : keep every ``decimate``-th filtered sample.
    window : ``scipy.signal.firwin`` window.
    """

    sfreq: float = 1000.0
    cutoff: float = 45.0
    numtaps: int = 41
    decimate: int = 8
    window: str = "hamming"

    def taps(self) -> np.ndarray:
        """The FIR coefficients ``h``, float64, shape ``(numtaps,)`` (unit gain at DC)."""
        from scipy.signal import firwin

        return firwin(self.numtaps, self.cutoff, window=self.window, fs=self.sfreq)

    def n_out(self, n_times: int) -> int:
        """Output samples for a window of ``n_times`` samples."""
        return (n_times - self.numtaps) // self.decimate + 1

    def out_sfreq(self) -> float:
        """Rate of the output samples, Hz."""
        return self.sfreq / self.decimate

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=16)
def _erp_matrix(config: ErpConfig, n_times: int) -> np.ndarray:
    """``(n_times, n_out)`` float32 matrix whose column ``j`` is the FIR aligned on output ``j``."""
    h = config.taps()
    n_out = config.n_out(n_times)
    m = np.zeros((n_times, n_out), np.float64)
    for j in range(n_out):
        end = j * config.decimate + config.numtaps  # exclusive; x[end - 1 - k] * h[k]
        m[end - config.numtaps : end, j] = h[::-1]
    return m.astype(np.float32)


def erp_batch(x: np.ndarray, config: ErpConfig = ErpConfig(), out: np.ndarray | None = None) -> np.ndarray:
    """Low-passed, decimated windows.

    Parameters
    ----------
    x : float array, shape ``(..., n_channels, n_times)``, in signal units.
    config : filter and decimation.
    out : optional float32 array of the result's shape to write into.

    Returns
    -------
    float32 array, shape ``(..., n_channels, 1, config.n_out(n_times))`` in the input's units.
    """
    n_times = np.shape(x)[-1]
    if n_times < config.numtaps:
        raise ValueError(f"window of {n_times} samples is shorter than the ERP filter ({config.numtaps} taps)")
    m = _erp_matrix(config, n_times)
    lead = np.shape(x)[:-1]
    if out is None:
        out = np.empty(lead + (1, m.shape[1]), np.float32)
    x = np.asarray(x, dtype=np.float32)
    np.matmul(x, m, out=out[..., 0, :])  # one matrix product; no temporaries for a float32 window
    return out


# --- the dispatcher -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Features:
    """A feature kind and its parameters: what a model card's ``feature_kind``, ``spectrogram`` and
    ``erp`` fields say. Every kind gives ``(n_channels, n_rows, n_columns)`` per window.

    Attributes
    ----------
    kind : "spectrogram" or "erp".
    spectrogram : STFT parameters (used when ``kind == "spectrogram"``).
    erp : ERP filter and decimation (used when ``kind == "erp"``).
    """

    kind: str = "spectrogram"
    spectrogram: SpectrogramConfig = SpectrogramConfig()
    erp: ErpConfig = ErpConfig()

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature kind {self.kind!r} is not one of {FEATURE_KINDS}")

    def shape(self, n_channels: int, n_times: int) -> tuple[int, int, int]:
        """Per-window feature shape ``(n_channels, n_rows, n_columns)``."""
        if self.kind == "erp":
            return (n_channels, 1, self.erp.n_out(n_times))
        return (n_channels, self.spectrogram.n_rows(), self.spectrogram.n_frames(n_times))

    @property
    def linear(self) -> bool:
        """True when the features are linear in the samples (complex STFT, ERP): a signal scale
        then multiplies them, sign included."""
        return self.kind == "erp" or self.spectrogram.mode == "complex"

    def describe(self) -> str:
        """One line for reports and ``bci-stream info``."""
        if self.kind == "erp":
            e = self.erp
            return (f"erp: FIR low-pass {e.cutoff:g} Hz ({e.numtaps} taps, valid), every {e.decimate}th sample "
                    f"({e.out_sfreq():g} Hz)")
        s = self.spectrogram
        return f"spectrogram {s.mode}, nperseg {s.nperseg}" + (f", bins <= {s.fmax:g} Hz" if s.fmax is not None else "")

    def batch(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Features of ``(..., n_channels, n_times)`` windows → ``(..., n_channels, n_rows, n_columns)``."""
        if self.kind == "erp":
            return erp_batch(x, self.erp, out)
        return spectrogram_batch(x, self.spectrogram, out)

    def window(self, window: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Features of one ``(n_channels, n_times)`` window (the live path: pass ``out``)."""
        if np.ndim(window) != 2:
            raise ValueError(f"features expect (n_channels, n_times); got shape {np.shape(window)}")
        return self.batch(window, out)
