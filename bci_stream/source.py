"""LSL EEG source: resolve, check against the model card, pull into a preallocated buffer."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pylsl
from pylsl.util import LostError
from pylsl.util import TimeoutError as LSLTimeoutError

from bci_stream.clock import ClockCorrection

log = logging.getLogger(__name__)


_DTYPES = {pylsl.cf_float32: np.float32, pylsl.cf_double64: np.float64, pylsl.cf_int32: np.int32,
           pylsl.cf_int16: np.int16}


class StreamMismatchError(ValueError):
    """The stream is not what the model needs (channels, rate, format)."""


class StreamLostError(RuntimeError):
    """The stream went away (outlet closed, or no data for longer than the timeout)."""


@dataclass(frozen=True)
class SourceConfig:
    """Which stream to read and how.

    Attributes
    ----------
    name : LSL stream name (``None``: the first stream of ``stream_type``).
    stream_type : LSL content type to look for, e.g. "EEG".
    resolve_timeout : seconds to wait for the stream at start.
    max_buflen : seconds liblsl may queue for us; small so a stall can never build a backlog.
    lost_after : seconds without a sample before the stream counts as lost.
    max_chunk : most samples taken per pull.
    """

    name: str | None = None
    stream_type: str = "EEG"
    resolve_timeout: float = 10.0
    max_buflen: int = 2
    lost_after: float = 1.0
    max_chunk: int = 1024


def resolve(name: str | None, stream_type: str, timeout: float) -> pylsl.StreamInfo | None:
    """First stream with that name (or type when name is None), or None after ``timeout`` s."""
    prop, value = ("name", name) if name else ("type", stream_type)
    found = pylsl.resolve_byprop(prop, value, minimum=1, timeout=timeout)
    return found[0] if found else None


def stream_channel_labels(info: pylsl.StreamInfo) -> list[str]:
    """Channel labels from the stream's ``desc/channels``; empty strings where there are none."""
    labels = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty() and len(labels) < info.channel_count():
        labels.append(ch.child_value("label"))
        ch = ch.next_sibling("channel")
    labels += [""] * (info.channel_count() - len(labels))
    return labels


def channel_index(stream_labels: list[str], wanted: list[str], stream_name: str = "stream") -> np.ndarray:
    """Positions of ``wanted`` channels in ``stream_labels`` (exact match, else case-insensitive).

    Extra stream channels (triggers, ``SAMPLE_INDEX``) are ignored; missing ones raise
    :class:`StreamMismatchError` naming them.
    """
    exact = {label: i for i, label in enumerate(stream_labels)}
    folded = {label.lower(): i for i, label in enumerate(stream_labels)}
    index, missing = [], []
    for ch in wanted:
        i = exact.get(ch, folded.get(ch.lower()))
        (missing.append(ch) if i is None else index.append(i))
    if missing:
        raise StreamMismatchError(
            f"{stream_name} has {len(stream_labels)} channels; the model needs {len(wanted)}, "
            f"missing {len(missing)}: {', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}"
        )
    return np.asarray(index)


class LSLSource:
    """One EEG inlet whose channels are picked by name for a model.

    ``pull(timeout)`` returns the model's channels ``(n_samples, n_channels)`` float32 and their LSL
    timestamps (clock-corrected to this machine), or raises :class:`StreamLostError`.
    """

    def __init__(self, ch_names: list[str], sfreq: float, config: SourceConfig = SourceConfig(),
                 counter_channel: str = "SAMPLE_INDEX"):
        self.ch_names = list(ch_names)
        self.sfreq = sfreq
        self.config = config
        self.counter_channel = counter_channel
        self.inlet: pylsl.StreamInlet | None = None
        self.info: pylsl.StreamInfo | None = None
        self.lost_samples = 0
        self.clock: ClockCorrection | None = None
        self._next_counter: int | None = None
        self._idle_since: float | None = None

    # --- connection --------------------------------------------------------------------------
    def connect(self, timeout: float | None = None) -> bool:
        """Resolve and open the stream; False if it is not there within ``timeout`` s.

        Raises :class:`StreamMismatchError` if the stream does not fit the model.
        """
        cfg = self.config
        info = resolve(cfg.name, cfg.stream_type, cfg.resolve_timeout if timeout is None else timeout)
        if info is None:
            return False
        # a stale answer from an outlet that just closed makes info() wait its whole timeout:
        # keep it to the caller's timeout so the reconnect loop tries again soon
        wait = max(0.5, min(5.0, cfg.resolve_timeout if timeout is None else timeout))
        inlet = pylsl.StreamInlet(info, max_buflen=cfg.max_buflen, recover=False)  # clock: ClockCorrection
        try:
            full = inlet.info(timeout=wait)
        except (LSLTimeoutError, LostError):  # a stale answer from an outlet that just went away
            return False
        self.check(full)
        labels = stream_channel_labels(full)
        self._index = channel_index(labels, self.ch_names, f"stream {full.name()!r}")
        self._identity = np.array_equal(self._index, np.arange(len(self.ch_names))) and full.channel_count() == len(self.ch_names)
        self._counter = labels.index(self.counter_channel) if self.counter_channel in labels else None
        self._buf = np.empty((cfg.max_chunk, full.channel_count()), _DTYPES[full.channel_format()])
        try:
            inlet.open_stream(timeout=wait)
        except (LSLTimeoutError, LostError):
            return False
        # a remote stream's first clock-offset estimate blocks: take it now, not in the first pull
        self.clock = ClockCorrection(inlet, full.hostname(), first_timeout=wait)
        self.inlet, self.info = inlet, full
        self._idle_since = None
        log.info("connected to %r (%d ch @ %g Hz, source_id %r)", full.name(), full.channel_count(),
                 full.nominal_srate(), full.source_id())
        return True

    def check(self, info: pylsl.StreamInfo) -> None:
        """Raise :class:`StreamMismatchError` unless rate and format fit the model."""
        if abs(info.nominal_srate() - self.sfreq) > 1e-6 * self.sfreq:
            raise StreamMismatchError(
                f"stream {info.name()!r} runs at {info.nominal_srate():g} Hz; the model needs {self.sfreq:g} Hz"
            )
        if info.channel_format() not in _DTYPES:
            raise StreamMismatchError(f"stream {info.name()!r} is not numeric (LSL channel format {info.channel_format()})")

    def close(self) -> None:
        if self.inlet is not None:
            try:
                self.inlet.close_stream()
            except Exception:  # already gone
                pass
        self.inlet = None
        self._next_counter = None

    # --- data -----------------------------------------------------------------------------
    def pull(self, timeout: float) -> tuple[np.ndarray, np.ndarray]:
        """Wait up to ``timeout`` s for the first sample, then take all that is ready.

        Returns ``(samples (n, n_model_channels) float32, timestamps (n,) float64 LSL seconds)``;
        ``n`` may be 0. Raises :class:`StreamLostError` when the outlet is gone or has sent nothing
        for ``config.lost_after`` s.
        """
        if self.inlet is None:
            raise StreamLostError("not connected")
        try:
            view, stamps = self.inlet.pull_chunk(timeout=timeout, max_samples=self.config.max_chunk,
                                                 dest_obj=self._buf, min_samples=1, as_numpy=True)
        except LostError as err:
            self.close()
            raise StreamLostError(f"stream {self.info.name()!r} closed") from err
        now = pylsl.local_clock()
        n = len(stamps)
        if n == 0:
            if self._idle_since is None:
                self._idle_since = now
            elif now - self._idle_since > self.config.lost_after:
                name = self.info.name()
                self.close()
                raise StreamLostError(f"no data from {name!r} for {self.config.lost_after:g} s")
            return np.empty((0, len(self.ch_names)), np.float32), np.empty(0)
        self._idle_since = None
        if self._counter is not None:
            self._count_lost(view[:, self._counter])
        samples = view if self._identity else view[:, self._index]
        return samples.astype(np.float32, copy=False), self.clock.apply(np.asarray(stamps))

    def _count_lost(self, counter: np.ndarray) -> None:
        values = counter.astype(np.int64)
        if self._next_counter is not None and values[0] > self._next_counter:
            self.lost_samples += int(values[0] - self._next_counter)
        steps = np.diff(values)
        self.lost_samples += int(np.clip(steps - 1, 0, None).sum())
        self._next_counter = int(values[-1]) + 1
