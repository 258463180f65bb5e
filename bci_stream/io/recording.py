"""Recording: one continuous EEG record with its stimulus markers, whatever file it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MNE_SUFFIXES = {".fif", ".edf", ".bdf", ".vhdr", ".set", ".gdf", ".cnt"}


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


def read_recording(path: str | Path, **kwargs) -> Recording:
    """Read an EEG recording with markers; the format follows the file name.

    ``.xdf`` (LabRecorder; pyxdf), ``.fif .edf .bdf .vhdr .set .gdf .cnt`` (MNE), ``.pth``
    (EEG-ImageNet, trials laid end to end). Keyword arguments go to the format's reader.
    """
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"no recording at {path}")
    suffix = path.suffix.lower()
    if suffix == ".xdf" or path.name.lower().endswith(".xdfz"):
        from bci_stream.io.xdf import read_xdf

        return read_xdf(path, **kwargs)
    if suffix in MNE_SUFFIXES:
        from bci_stream.io.mne_raw import read_mne

        return read_mne(path, **kwargs)
    if suffix == ".pth":
        from bci_stream.io.eegimagenet import read_eegimagenet_continuous

        return read_eegimagenet_continuous(path, **kwargs)
    raise RecordingError(
        f"{path.name}: unknown recording format {suffix!r}; expected .xdf, .pth or one of {sorted(MNE_SUFFIXES)}"
    )
