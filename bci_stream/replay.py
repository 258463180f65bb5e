"""Replay a recorded file in real time as an LSL EEG stream plus a marker stream."""

from __future__ import annotations

import numpy as np

from bci_stream.io import Recording
from bci_stream.simulate import OutletConfig, PacedPusher


class RecordingReader:
    """``read(n) -> (data (n_ch, <=n), markers [(absolute_sample, text)])`` over a recording,
    wrapping around when ``loop``; absolute sample numbers keep counting across loops."""

    def __init__(self, recording: Recording, loop: bool = False):
        self.rec = recording
        self.loop = loop
        self.position = 0  # within the recording
        self.absolute = 0  # samples handed out
        self._onsets = np.array([s for s, _ in recording.events], dtype=np.int64)
        self._texts = [t for _, t in recording.events]

    def read(self, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        parts, markers, wanted = [], [], n
        while wanted > 0:
            if self.position >= self.rec.n_times:
                if not self.loop:
                    break
                self.position = 0
            stop = min(self.position + wanted, self.rec.n_times)
            lo, hi = np.searchsorted(self._onsets, [self.position, stop])
            markers += [(self.absolute + int(self._onsets[i]) - self.position, self._texts[i]) for i in range(lo, hi)]
            parts.append(self.rec.data[:, self.position : stop])
            self.absolute += stop - self.position
            wanted -= stop - self.position
            self.position = stop
        data = np.concatenate(parts, axis=1) if parts else np.zeros((len(self.rec.ch_names), 0), np.float32)
        return data, markers


def recording_pusher(recording: Recording, outlet: OutletConfig, speed: float = 1.0, loop: bool = False) -> PacedPusher:
    """A :class:`PacedPusher` that streams ``recording`` at ``speed`` x real time."""
    reader = RecordingReader(recording, loop=loop)
    unit = "microvolts" if recording.unit == "uV" else recording.unit
    return PacedPusher(reader.read, len(recording.ch_names), recording.sfreq, outlet, recording.ch_names,
                       speed=speed, unit=unit)
