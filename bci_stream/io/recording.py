"""Recording: one continuous EEG record with its stimulus markers, whatever file it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class RecordingError(ValueError):
    """A recording file is missing, corrupt, or lacks what is needed (an EEG stream, markers)."""


@dataclass
class Recording:
    """Continuous EEG plus markers.

    Attributes
    ----------
    data : float32, shape ``(n_channels, n_times)``, in ``unit``.
    sfreq : Hz.
    ch_names : length ``n_channels``.
    events : ``(sample_index, marker_text)`` pairs, sample indices into ``data``, sorted.
    unit : "uV" for EEG in microvolts, "a.u." for pre-standardised data.
    source : the file it came from.
    """

    data: np.ndarray
    sfreq: float
    ch_names: list[str]
    events: list[tuple[int, str]] = field(default_factory=list)
    unit: str = "uV"
    source: str = ""

    def __post_init__(self) -> None:
        self.data = np.ascontiguousarray(self.data, dtype=np.float32)
        if self.data.ndim != 2 or self.data.shape[0] != len(self.ch_names):
            raise RecordingError(f"data {self.data.shape} does not match {len(self.ch_names)} channel names")
        if self.sfreq <= 0:
            raise RecordingError(f"{self.source}: sampling rate must be > 0 Hz; got {self.sfreq}")
        self.events = sorted((int(s), str(t)) for s, t in self.events)

    @property
    def n_times(self) -> int:
        return self.data.shape[1]

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.n_times / self.sfreq
