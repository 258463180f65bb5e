"""Replay a recorded file in real time as an LSL EEG stream plus a marker stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bci_stream.io import Recording, RecordingError, read_recording
from bci_stream.sources.simulate import OutletConfig, PacedPusher


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


def with_events_channel(recording: Recording, channel: str) -> tuple[Recording, dict[str, int]]:
    """``recording`` with its markers also written as a trigger channel ``channel`` (the code at each
    marker's sample, 0 elsewhere), as an amplifier's trigger input carries them; and the code of each
    marker text. A marker that is an integer keeps it as its code; other texts are numbered 1, 2, ...
    in sorted order, after the largest integer code.

    Raises :class:`RecordingError` when the recording already has a channel of that name."""
    if channel.lower() in (c.lower() for c in recording.ch_names):
        raise RecordingError(f"{recording.source} already has a channel {channel!r}; name the events channel "
                             "--events-from another name")
    texts = sorted({t for _, t in recording.events})
    codes = {t: int(t) for t in texts if t.lstrip("-").isdigit() and int(t) != 0}
    start = max(codes.values(), default=0)
    codes |= {t: start + i + 1 for i, t in enumerate(t for t in texts if t not in codes)}
    row = np.zeros((1, recording.n_times), np.float32)
    for sample, text in recording.events:
        row[0, sample] = codes[text]
    return Recording(data=np.concatenate([recording.data, row]), sfreq=recording.sfreq,
                     ch_names=[*recording.ch_names, channel], events=recording.events, unit=recording.unit,
                     source=recording.source), codes


REPLAY_KINDS = ("xdf", "mne", "csv", "fif", "edf", "bdf", "vhdr", "set", "recording", "eegimagenet")


def read_replay_spec(spec: str, **options) -> tuple[Path, Recording]:
    """The recording a replay names: ``[KIND:]FILE[,key=value,...]``, the trainer's data-spec form for
    one file (a file that exists is taken whole, :mod:`bci_stream.io.paths`); ``key=value`` options go
    to the file's reader (``eeg_stream=``, ``marker_stream=``, ``unit=`` for XDF, ``events=``,
    ``event_id=``, ``events_from=`` for MNE files, ``event_id=``, ``sfreq=`` for CSV...).
    ``options``: more reader options (from command-line flags); the spec's win."""
    from bci_stream.io.paths import split_path_options

    rest = spec
    kind, colon, tail = spec.partition(":")
    if colon and kind.lower() in REPLAY_KINDS and not Path(spec.split(",")[0]).exists():
        rest = tail
    path, spec_options = split_path_options(rest)
    if path is None:
        raise RecordingError(f"{spec!r} names no file; write FILE[,key=value,...]")
    if Path(path).is_dir():
        raise RecordingError(f"{path} is a folder; replay streams one recording: name a file in it")
    return Path(path), read_recording(path, **(options | spec_options))
