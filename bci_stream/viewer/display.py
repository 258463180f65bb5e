"""What the viewer draws, computed without Qt (in the decoding process, or beside a ring in tests).

- traces: the newest seconds of a channel group, optionally through a display-only high-pass /
  notch (zero-phase over the shown stretch: it never touches what the model gets), then reduced
  to at most ``points`` columns by keeping each bin's minimum and maximum (pyqtgraph's "peak"
  downsampling; ``[::step]`` would alias a 50 Hz line into slow waves);
- channel health over the last second: flat, railed or noisy channels, by name;
- the spectrogram of a channel group on Hz x ms axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import butter, iirnotch, sosfiltfilt, tf2sos

from bci_stream.contract.artifacts import channel_health  # noqa: F401  (its home: the live repair uses it too)

if TYPE_CHECKING:
    from bci_stream.contract.model_card import ModelCard


@dataclass(frozen=True)
class DisplayFilter:
    """Display-only filter of the traces: high-pass and notch, Hz (None: off)."""

    highpass: float | None = None
    notch: float | None = None

    def sos(self, sfreq: float) -> np.ndarray | None:
        sections = []
        if self.highpass:
            sections.append(butter(2, self.highpass, btype="highpass", fs=sfreq, output="sos"))
        if self.notch and self.notch < sfreq / 2:
            sections.append(tf2sos(*iirnotch(self.notch, 30.0, fs=sfreq)))
        return np.concatenate(sections) if sections else None

    def describe(self) -> str:
        parts = ([f"high-pass {self.highpass:g} Hz"] if self.highpass else []) + \
                ([f"notch {self.notch:g} Hz"] if self.notch else [])
        return ", ".join(parts) or "none"


DISPLAY_FILTERS = {"raw": DisplayFilter(), "high-pass 0.5 Hz": DisplayFilter(highpass=0.5),
                   "high-pass 1 Hz + notch 50 Hz": DisplayFilter(highpass=1.0, notch=50.0),
                   "high-pass 1 Hz + notch 60 Hz": DisplayFilter(highpass=1.0, notch=60.0)}


def peak_decimate(data: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """``data`` ``(n_channels, n)`` -> ``(n_channels, 2 * bins)`` min/max per bin and the sample
    offset of each column from the newest sample (<= 0), for at most ``points`` columns."""
    n = data.shape[1]
    step = max(1, int(np.ceil(2 * n / max(2, points))))
    if step == 1:
        return data, np.arange(n) - (n - 1.0)
    bins = n // step
    trimmed = data[:, n - bins * step :].reshape(data.shape[0], bins, step)
    out = np.empty((data.shape[0], 2 * bins), data.dtype)
    out[:, 0::2] = trimmed.min(axis=2)
    out[:, 1::2] = trimmed.max(axis=2)
    centres = (np.arange(bins) * step + step / 2) - (bins * step - 1.0)
    return out, np.repeat(centres, 2)


def trace_view(ring, seconds: float, sfreq: float, channels: np.ndarray, points: int,
               display_filter: DisplayFilter = DisplayFilter()) -> tuple[np.ndarray, np.ndarray, float | None]:
    """``(data (n_channels, columns) µV, times (columns,) s relative to the newest sample, LSL time of
    the newest sample or None)`` for the traces panel, from a :class:`RingBuffer`."""
    raw, t_last = ring.snapshot(int(seconds * sfreq), channels, 1)
    if t_last is None or raw.shape[1] < 2:
        return np.empty((len(channels), 0), np.float32), np.empty(0), None
    sos = display_filter.sos(sfreq)
    if sos is not None and raw.shape[1] > 3 * 6 * len(sos):  # sosfiltfilt needs some length
        raw = sosfiltfilt(sos, raw - raw[:, :1], axis=1).astype(np.float32)
    data, offsets = peak_decimate(raw, points)
    return data, offsets / sfreq, t_last


def spectrogram_extent(card: ModelCard | None) -> tuple[float, float, float, float] | None:
    """``(x0 ms, width ms, y0 Hz, height Hz)`` of the spectrogram image of a card's window, time from
    the window's first sample: frames centred on their segment (scipy's zero-padded boundary), bins
    on their frequency."""
    if card is None:
        return None
    if card.feature_kind == "erp":  # one row: the low-passed, decimated ERP
        return 0.0, 1000.0 * card.window_length, 0.0, 1.0
    spec = card.spectrogram
    hop_ms = 1000.0 * spec.hop / card.sfreq
    n_frames = spec.n_frames(card.window_samples)
    bin_hz = card.sfreq / spec.nperseg
    return -hop_ms / 2, n_frames * hop_ms, -bin_hz / 2, spec.n_freqs() * bin_hz
