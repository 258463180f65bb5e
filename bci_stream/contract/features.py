"""THE spectrogram: one implementation shared by the trainer, the live decoder and the viewer.

The seed lineage (Ferrante et al. 2023) takes samples 20-460 of each 1 kHz trial and computes
``scipy.signal.stft(x, 1000, nperseg=40)`` magnitudes, giving ``(128, 21, 23)`` per trial.
:func:`spectrogram` reproduces ``scipy.signal.stft`` to float32 precision (golden test in
``tests/``): the padded signal is cut into hop-long blocks, each block multiplied once by the
windowed DFT matrix (one BLAS call per block of all channels), and each frame is the sum of its
blocks' parts; buffers are reused for single windows. :class:`RollingSpectrogram` is the live
path: a window that moved by whole hops computes only its new frames, bit-identical to
:func:`spectrogram` (the same per-block calls and sums). :func:`spectrogram_batch` is the same code
on ``(n_trials, n_channels, n_times)``. Timings: README, Benchmarks (``tools/bench_features.py``).

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
from collections.abc import Callable
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


def _aligned_empty(shape: tuple[int, ...], dtype=np.float32, align: int = 64) -> np.ndarray:
    """An empty array whose data start on an ``align``-byte boundary (so a BLAS whose results could
    depend on alignment sees the same alignment in the full and the incremental path)."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(n + align, np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset : offset + n].view(dtype).reshape(shape)


@lru_cache(maxsize=16)
def _block_dft(window: str, nperseg: int, hop: int, n_bins: int) -> np.ndarray:
    """``(hop, k * 2 * n_bins)`` float32, ``k = nperseg // hop``: the windowed DFT's ``k`` hop-long row
    blocks side by side, so that one product of a hop-long signal block gives its part of each of
    the ``k`` frames that contain it (``[:, j * 2 * n_bins : (j + 1) * 2 * n_bins]`` for the frame
    in which it is the ``j``-th block)."""
    dft = _windowed_dft(window, nperseg, n_bins)
    k = nperseg // hop
    return np.ascontiguousarray(np.concatenate([dft[j * hop : (j + 1) * hop] for j in range(k)], axis=1))


def _block_products(blocks: np.ndarray, dcat: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """THE product of the block path: ``blocks`` ``(..., n_channels, hop)`` @ ``dcat`` → ``(...,
    n_channels, k * 2 * n_bins)``, one BLAS call per ``(n_channels, hop)`` block.

    OpenBLAS gives a row of a product bits that depend on the product's height (its kernels
    treat the rows of a panel differently): one call per block of ``n_channels`` rows is what makes
    a block's product the same whether it is computed with the whole window (full path) or alone
    (:class:`RollingSpectrogram`), hence the bit-identical incremental features.
    """
    return np.matmul(blocks, dcat, out=out)


def _sum_frames(parts: list[np.ndarray], out: np.ndarray) -> np.ndarray:
    """``out = parts[0] + parts[1] + ...`` in that order (the order both paths use)."""
    np.copyto(out, parts[0])
    for part in parts[1:]:
        out += part
    return out


def _apply_mode(spec: np.ndarray, config: SpectrogramConfig, mag: np.ndarray) -> np.ndarray:
    """Feature rows from ``spec`` ``(..., 2 * n_bins)`` [real | imaginary] (overwritten), contiguous:
    ``spec`` itself (complex), else ``|.|`` or its log written into ``mag`` ``(..., n_bins)``."""
    if config.mode == "complex":
        return spec
    n_bins = config.n_bins()
    np.multiply(spec, spec, out=spec)  # power of the real and imaginary parts
    np.add(spec[..., :n_bins], spec[..., n_bins:], out=mag)
    np.sqrt(mag, out=mag)
    if config.mode == "log":
        mag += np.float32(config.log_eps)
        np.log(mag, out=mag)
    return mag


class _Workspace:
    """Buffers reused across calls for one window shape: the live path then allocates nothing
    large per hop (fresh >128 kB arrays each call cost page faults and doubled the time)."""

    def __init__(self, n_channels: int, n_blocks: int, n_frames: int, config: SpectrogramConfig, k: int):
        width = 2 * config.n_bins()
        self.padded = np.zeros((1, n_channels, n_blocks * config.hop), np.float32)  # the pads are never written
        self.products = _aligned_empty((1, n_blocks, n_channels, k * width))
        self.spec = np.empty((1, n_frames, n_channels, width), np.float32)
        self.mag = np.empty((1, n_frames, n_channels, config.n_bins()), np.float32)


_local = threading.local()


def _workspace(n_channels: int, n_blocks: int, n_frames: int, config: SpectrogramConfig, k: int) -> _Workspace:
    cache = _local.__dict__.setdefault("workspaces", {})
    key = (n_channels, n_blocks, n_frames, config.nperseg, config.hop, k, config.n_bins())
    if key not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[key] = _Workspace(n_channels, n_blocks, n_frames, config, k)
    return cache[key]


def _block_path(x: np.ndarray, config: SpectrogramConfig, ws: _Workspace | None) -> tuple[np.ndarray, np.ndarray]:
    """Block-path STFT of ``x`` ``(L, n_channels, n_times)`` float32 (``nperseg % hop == 0``):
    (feature rows ``(L, n_frames, n_channels, n_rows)``, block products ``(L, n_blocks, n_channels,
    k * 2 * n_bins)``). Buffers from ``ws`` when given (they are overwritten by the next call)."""
    n_sets, n_channels, n_times = x.shape
    hop, nperseg, n_bins = config.hop, config.nperseg, config.n_bins()
    half, k, width = nperseg // 2, nperseg // hop, 2 * n_bins
    n_frames = config.n_frames(n_times)
    n_blocks = n_frames + k - 1
    # 1. the padded signal (scipy's zero boundary), cut into hop-long blocks: (L, n_blocks, n_channels, hop)
    padded = ws.padded if ws else np.zeros((n_sets, n_channels, n_blocks * hop), np.float32)
    padded[:, :, half : half + n_times] = x
    blocks = padded.reshape(n_sets, n_channels, n_blocks, hop).transpose(0, 2, 1, 3)
    # 2. every block times the k DFT row blocks, one (n_channels, hop) product per block
    products = _block_products(blocks, _block_dft(config.window, nperseg, hop, n_bins),
                               out=ws.products if ws else None)
    # 3. frame f = sum over j of block f + j's part j
    spec = ws.spec if ws else np.empty((n_sets, n_frames, n_channels, width), np.float32)
    _sum_frames([products[:, j : j + n_frames, :, j * width : (j + 1) * width] for j in range(k)], spec)
    # 4. magnitude / log / complex
    mag = ws.mag if ws else np.empty((n_sets, n_frames, n_channels, n_bins), np.float32)
    return _apply_mode(spec, config, mag), products


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
    lead = x.shape[:-1]
    if nperseg % hop == 0 and x.ndim >= 2:
        # Frames overlap by whole hops (scipy's default: half a segment): split the padded signal into
        # hop-long blocks; each block's product with the DFT serves the k frames it is part of.
        k = nperseg // hop
        n_channels = x.shape[-2]
        ws = _workspace(n_channels, n_frames + k - 1, n_frames, config, k) if x.ndim == 2 else None
        rows, _ = _block_path(x.reshape(-1, n_channels, n_times), config, ws)  # (L, n_frames, n_channels, n_rows)
        result = rows.reshape(lead[:-1] + rows.shape[1:])
        moved = np.moveaxis(result, -3, -1)  # (..., n_channels, n_rows, n_frames)
        if out is None:
            return np.ascontiguousarray(moved) if ws is None else moved.copy()  # never a view of the workspace
        np.copyto(out, moved)
        return out
    dft = _windowed_dft(config.window, nperseg, n_freqs)  # (nperseg, 2 * n_freqs)
    total = (n_frames - 1) * hop + nperseg
    padded = np.zeros(lead + (total,), dtype=np.float32)
    padded[..., half : half + n_times] = x
    spec = sliding_window_view(padded, nperseg, axis=-1)[..., ::hop, :] @ dft  # (..., n_frames, 2 * n_freqs)
    mag = _apply_mode(spec, config, np.empty(lead + (n_frames, n_freqs), np.float32))
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


class RollingSpectrogram:
    """The live spectrogram of a sliding window, computing only what the newest samples change.

    A window that moves by ``s`` STFT hops keeps its interior frames (those made of window samples
    only), shifted by ``s`` columns; new are its ``s`` newest interior frames and its boundary frames
    (the first and last ``nperseg // 2 // hop``, which contain scipy's zero padding and so change
    with every move). Each new hop-long block of samples is multiplied by the DFT once, by the same
    :func:`_block_products` call as in :func:`spectrogram` (one ``(n_channels, hop)`` product per
    block), frames are summed in the same order and the mode applied by the same code: the columns
    are bit-identical to the full computation's (golden test in ``tests/test_features.py``).

    Columns are written into the caller's arrays, finished there by ``finish`` (the decoder's
    scaling and normalisation: any function of ``(n_channels, n_rows, n_columns)`` columns that
    treats every column alike, so shifted columns stay right). The caller alternates two output
    arrays: :meth:`roll` reads the previous one and writes the next (an in-place shift would make
    numpy copy through a temporary).

    Exact only where blocks line up: ``nperseg % hop == 0``, ``(nperseg // 2) % hop == 0``, windows
    of a whole number of hops that move by whole hops; :meth:`supports` says so, :meth:`shift_for`
    says when a window can be rolled (else call :meth:`full`).

    Parameters
    ----------
    config : STFT parameters (every mode: magnitude, log, complex; any ``fmax``).
    n_channels, n_times : window shape.
    """

    def __init__(self, config: SpectrogramConfig, n_channels: int, n_times: int):
        if not self.supports(config, n_times):
            raise ValueError(f"no incremental spectrogram for nperseg {config.nperseg}, hop {config.hop}, "
                             f"{n_times}-sample windows (blocks do not line up); use the full computation")
        self.config = config
        self.n_channels, self.n_times = n_channels, n_times
        hop, width = config.hop, 2 * config.n_bins()
        self.k = config.nperseg // hop
        self.edge = (config.nperseg // 2) // hop  # zero blocks before (and after) the window's samples
        self.n_x = n_times // hop  # blocks of samples in a window
        self.n_frames = config.n_frames(n_times)
        self.n_rows = config.n_rows()
        self._dcat = _block_dft(config.window, config.nperseg, hop, config.n_bins())
        self._ws = _Workspace(n_channels, self.n_frames + self.k - 1, self.n_frames, config, self.k)
        # products of the window's blocks, each stored twice so that any n_x consecutive ones are contiguous
        self._ring = _aligned_empty((2 * self.n_x, n_channels, self.k * width))
        self._first = 0  # ring slot of the window's first block
        self._zero_lead = np.empty((self.edge, n_channels, self.k * width), np.float32)
        self._zero_tail = np.empty((self.edge, n_channels, self.k * width), np.float32)
        self._block = _aligned_empty((n_channels, hop))
        most = self.n_x - self.k  # largest move that keeps an interior frame
        self._spec = np.empty((2 * self.edge + most, n_channels, width), np.float32)
        self._mag = np.empty((2 * self.edge + most, n_channels, config.n_bins()), np.float32)
        self.end: int | None = None  # absolute index one past the last sample of the last window

    @staticmethod
    def supports(config: SpectrogramConfig, n_times: int) -> bool:
        """True when windows of ``n_times`` samples can be rolled exactly with ``config``."""
        hop, half = config.hop, config.nperseg // 2
        return (config.nperseg % hop == 0 and half % hop == 0 and n_times % hop == 0
                and n_times // hop > config.nperseg // hop)

    def reset(self) -> None:
        """Forget the last window (after a gap or a reset of the stream): the next one is computed in full."""
        self.end = None

    def shift_for(self, end: int | None) -> int:
        """Hops the window moved since the last one if the window ending at ``end`` (absolute sample
        index, exclusive) can be rolled from it, else 0 (compute it in full)."""
        if end is None or self.end is None:
            return 0
        moved = end - self.end
        hop = self.config.hop
        if moved <= 0 or moved % hop:
            return 0
        s = moved // hop
        return s if s <= self.n_x - self.k else 0

    def full(self, window: np.ndarray, end: int | None, out: np.ndarray,
             finish: Callable[[np.ndarray], object] | None = None) -> np.ndarray:
        """All columns of ``window`` ``(n_channels, n_times)`` into ``out`` ``(n_channels, n_rows,
        n_frames)`` (:func:`spectrogram`'s code), then ``finish(out)``; remembers the blocks for :meth:`roll`."""
        x = np.asarray(window, dtype=np.float32)[None]
        rows, products = _block_path(x, self.config, self._ws)
        np.copyto(out, np.moveaxis(rows[0], 0, -1))
        if finish is not None:
            finish(out)
        e, n = self.edge, self.n_x
        self._ring[:n] = products[0, e : e + n]
        self._ring[n:] = products[0, e : e + n]
        self._first = 0
        self._zero_lead[:] = products[0, :e]
        self._zero_tail[:] = products[0, e + n :]
        self.end = end
        return out

    def roll(self, window: np.ndarray, end: int, previous: np.ndarray, out: np.ndarray,
             finish: Callable[[np.ndarray], object] | None = None) -> np.ndarray:
        """Columns of ``window`` (ending at absolute sample ``end``; ``shift_for(end)`` > 0) into
        ``out``: the kept interior columns from ``previous`` (the last window's finished output),
        the new ones computed and passed through ``finish``. ``previous`` and ``out`` must differ."""
        s = self.shift_for(end)
        if s == 0:
            raise ValueError(f"window ending at sample {end} cannot be rolled from the last one (ended at {self.end})")
        hop, n, e, k, n_frames = self.config.hop, self.n_x, self.edge, self.k, self.n_frames
        width = 2 * self.config.n_bins()
        # 1. products of the s new blocks (the window's last s), each computed alone and stored twice
        for i in range(s):
            start = self.n_times - (s - i) * hop
            np.copyto(self._block, window[:, start : start + hop])
            slot = (self._first + i) % n  # the slot of a block that left the window
            _block_products(self._block, self._dcat, out=self._ring[slot])
            self._ring[slot + n if slot < n else slot - n] = self._ring[slot]
        self._first = (self._first + s) % n
        blocks = self._ring[self._first : self._first + n]  # (n_x, n_channels, k * width)

        def block(p: int) -> np.ndarray:  # product of padded block p of the new window
            if p < e:
                return self._zero_lead[p]
            if p >= e + n:
                return self._zero_tail[p - e - n]
            return blocks[p - e]

        # 2. the new frames: the leading boundary ones, then the s newest interior and the trailing boundary
        frames = list(range(e)) + list(range(n_frames - e - s, n_frames))
        for i, f in enumerate(frames):
            _sum_frames([block(f + j)[:, j * width : (j + 1) * width] for j in range(k)], self._spec[i])
        m = len(frames)
        rows = _apply_mode(self._spec[:m], self.config, self._mag[:m])  # (m, n_channels, n_rows)
        # 3. assemble: kept interior columns, shifted; new columns, finished
        np.copyto(out[..., e : n_frames - e - s], previous[..., e + s : n_frames - e])
        for lo, hi, first in ((0, e, 0), (n_frames - e - s, n_frames, e)):
            if hi > lo:
                cols = out[..., lo:hi]
                np.copyto(cols, np.moveaxis(rows[first : first + hi - lo], 0, -1))
                if finish is not None:
                    finish(cols)
        self.end = end
        return out


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
    # C order whatever the caller holds (the live ring gives a transposed view): BLAS picks its kernel
    # and summation order by memory layout, so only the same layout gives the same bits on every CPU
    # (SkylakeX's kernel differs from Haswell's/Zen's in the last bits between layouts). Offline
    # trials and live windows thus take the very same BLAS call: train/serve parity to the bit.
    x = np.ascontiguousarray(x, dtype=np.float32)
    np.matmul(x, m, out=out[..., 0, :])  # one matrix product
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
