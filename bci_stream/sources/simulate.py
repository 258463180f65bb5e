"""Stream the phantom headset (or any array source) as a real LSL EEG outlet plus a marker outlet."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import pylsl

from bci_stream.sources.phantom import LIVE_SESSION, Phantom, PhantomConfig

log = logging.getLogger(__name__)

COUNTER_CHANNEL = "SAMPLE_INDEX"


@dataclass(frozen=True)
class OutletConfig:
    """How an EEG source appears on the network.

    Attributes
    ----------
    name : LSL stream name; the marker stream is ``f"{name}-markers"``.
    source_id : LSL source id (unique per device; lets inlets recover after a restart).
    chunk : seconds of data per push (amplifiers typically push every 5-20 ms).
    counter : append a ``SAMPLE_INDEX`` misc channel (the running sample number). The stream is then
        ``cf_double64`` so the counter stays exact to 2**53 samples (float32 is exact only to 2**24:
        4.7 h at 1 kHz).
    """

    name: str = "bci-stream-phantom"
    source_id: str = "bci-stream-phantom"
    chunk: float = 0.01
    counter: bool = False


def make_eeg_outlet(ch_names: list[str], sfreq: float, config: OutletConfig, unit: str = "microvolts",
                    manufacturer: str = "bci-stream") -> pylsl.StreamOutlet:
    """An EEG outlet with labelled channels (and ``SAMPLE_INDEX`` when ``config.counter``, in a
    ``cf_double64`` stream so the count is exact beyond 2**24)."""
    if not sfreq > 0:
        raise ValueError(f"sampling rate must be > 0 Hz; got {sfreq:g}")
    names = list(ch_names) + ([COUNTER_CHANNEL] if config.counter else [])
    fmt = pylsl.cf_double64 if config.counter else pylsl.cf_float32
    info = pylsl.StreamInfo(config.name, "EEG", len(names), sfreq, fmt, config.source_id)
    info.desc().append_child_value("manufacturer", manufacturer)
    channels = info.desc().append_child("channels")
    for ch in names:
        child = channels.append_child("channel")
        child.append_child_value("label", ch)
        child.append_child_value("unit", "samples" if ch == COUNTER_CHANNEL else unit)
        child.append_child_value("type", "MISC" if ch == COUNTER_CHANNEL else "EEG")
    chunk_samples = max(1, int(round(config.chunk * sfreq)))
    return pylsl.StreamOutlet(info, chunk_size=chunk_samples, max_buffered=60)


def make_marker_outlet(config: OutletConfig) -> pylsl.StreamOutlet:
    """A string marker outlet (irregular rate), as stimulus software such as PsychoPy writes."""
    info = pylsl.StreamInfo(f"{config.name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                            f"{config.source_id}-markers")
    return pylsl.StreamOutlet(info)


class PacedPusher:
    """Pushes ``(n_channels, n)`` blocks in real time: each chunk leaves when its last sample is due,
    stamped with the time it was due (as an amplifier with its own clock stamps it). In :meth:`run`
    each chunk is read (generated) before it is due and pushed the moment it is: an amplifier's
    samples exist when they are due, so the generator's compute time never shows as latency in the
    receiver.

    ``read(n) -> (data (n_ch, n) float32, markers [(absolute_sample, text)])`` supplies the data.
    """

    def __init__(self, read, n_channels: int, sfreq: float, config: OutletConfig,
                 ch_names: list[str], speed: float = 1.0, unit: str = "microvolts"):
        if speed <= 0:
            raise ValueError(f"speed must be > 0; got {speed}")
        self.read = read
        self.sfreq = sfreq
        self.config = config
        self.speed = speed
        self.chunk_samples = max(1, int(round(config.chunk * sfreq)))
        self.eeg = make_eeg_outlet(ch_names, sfreq, config, unit=unit)
        self.markers = make_marker_outlet(config)
        self.n_channels = n_channels
        self.sent = 0
        self.t0_lsl: float | None = None  # set by run()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready: tuple[int, list] | None = None  # (samples, markers) of the chunk read ahead into _buf
        # float64 with a counter (the outlet is cf_double64 then): sample numbers stay exact past 2**24
        self._buf = np.empty((self.chunk_samples, n_channels + int(config.counter)),
                             np.float64 if config.counter else np.float32)

    def read_ahead(self, limit: int | None = None) -> None:
        """Read the next chunk into the push buffer now (if not read yet): :meth:`push_once` then only
        pushes it. ``limit``: samples in all; the chunk is cut there (empty once it is reached)."""
        if self._ready is not None:
            return
        wanted = self.chunk_samples if limit is None else max(0, min(self.chunk_samples, limit - self.sent))
        if wanted == 0:
            self._ready = (0, [])
            return
        data, markers = self.read(wanted)
        n = data.shape[1]
        self._buf[:n, : self.n_channels] = data.T
        if self.config.counter:
            self._buf[:n, -1] = np.arange(self.sent, self.sent + n, dtype=np.float64)
        self._ready = (n, markers)

    def push_once(self, t0_lsl: float | None = None) -> bool:
        """Push the next chunk now (read first unless :meth:`read_ahead` did); False when the source is
        exhausted. Its last sample is stamped with the time it was due on a schedule that started at
        LSL time ``t0_lsl`` (default: now)."""
        self.read_ahead()
        (n, markers), self._ready = self._ready, None
        if n == 0:
            return False
        buf = self._buf[:n]
        period = 1.0 / (self.sfreq * self.speed)  # real seconds between samples at this speed
        stamp = pylsl.local_clock() if t0_lsl is None else t0_lsl + (self.sent + n) * period
        if self.speed == 1.0:
            self.eeg.push_chunk(buf, stamp)  # liblsl back-dates the others at the nominal rate: the same stamps
        else:  # liblsl would back-date at the nominal rate, overlapping the chunks: stamp every sample
            self.eeg.push_chunk(buf, (stamp - period * np.arange(n - 1, -1, -1)).tolist())
        last = self.sent + n - 1
        for sample, text in markers:
            self.markers.push_sample([text], stamp - (last - sample) * period)  # its sample's stamp
        self.sent += n
        return True

    def run(self, duration: float | None = None, on_chunk=None) -> None:
        """Push in real time until ``duration`` seconds of data are out, the source ends, or :meth:`stop`.

        Each chunk's last sample is stamped with the time it was due (as an amplifier with its own
        clock stamps it), not when it left: a chunk pushed late after a stall keeps stamps that never
        overlap the previous chunk's, at any ``speed``.
        """
        t0_lsl = pylsl.local_clock()  # first: a sample is never stamped after the moment it is pushed
        self.t0_lsl = t0_lsl  # sample i is stamped t0_lsl + (i + 1) / (sfreq * speed) (bci_stream.sources.listen reads it)
        t0 = time.perf_counter()
        rate = self.sfreq * self.speed
        limit = None if duration is None else int(round(duration * self.sfreq))
        while not self._stop.is_set() and (limit is None or self.sent < limit):
            self.read_ahead(limit)  # generate before the chunk is due, push when it is
            n = self._ready[0]
            if n == 0:  # the source ended: no wait for a chunk that will never come
                break
            due = (self.sent + n) / rate  # a short last chunk is due when its own last sample is
            delay = t0 + due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if not self.push_once(t0_lsl):
                break
            if on_chunk is not None:
                on_chunk(self)

    def start(self, duration: float | None = None) -> PacedPusher:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self.run, args=(duration,), name="lsl-pusher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Stop and take the outlets off the network."""
        self.stop()
        del self.eeg, self.markers


def phantom_pusher(phantom_config: PhantomConfig, outlet: OutletConfig, subject: int = 1,
                   isi: float = 0.5, blocks: bool = False, session: int = LIVE_SESSION) -> PacedPusher:
    """A :class:`PacedPusher` streaming a continuous phantom subject in recording ``session``
    (default :data:`~bci_stream.sources.phantom.LIVE_SESSION`: not the training data)."""
    phantom = Phantom(phantom_config)
    stream = phantom.new_stream(subject=subject, isi=isi, blocks=blocks, session=session)

    def read(n: int):
        data, markers = stream.read(n)
        return data, [(sample, text) for sample, text, _ in markers]

    return PacedPusher(read, phantom_config.n_channels, phantom_config.sfreq, outlet, phantom.ch_names)
