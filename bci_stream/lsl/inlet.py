"""LSL EEG source: resolve, check against the model card, pull into a preallocated buffer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pylsl
from pylsl.util import LostError
from pylsl.util import TimeoutError as LSLTimeoutError

from bci_stream.contract.units import UnitError, assume_unit_hint, conversion_factor, normalise_unit
from bci_stream.lsl.clock import ClockCorrection

log = logging.getLogger(__name__)


_DTYPES = {pylsl.cf_float32: np.float32, pylsl.cf_double64: np.float64, pylsl.cf_int8: np.int8,
           pylsl.cf_int16: np.int16, pylsl.cf_int32: np.int32, pylsl.cf_int64: np.int64}
RESOLVE_POLL = 0.01  # seconds between looks at the background resolver: Ctrl-C and stop() act this soon, and a
# stream that came back is opened this soon after liblsl lists it
PROGRESS_FIRST = 1.0  # seconds of waiting before a wait's progress callback is first called (a present stream: never)
PROGRESS_EVERY = 5.0  # ... and then every this many seconds


class StreamMismatchError(ValueError):
    """The stream is not what the model needs (channels, rate, format, unit)."""


class StreamLostError(RuntimeError):
    """The stream went away (outlet closed, or no data for longer than the timeout)."""


@dataclass(frozen=True)
class SourceConfig:
    """Which stream to read and how.

    Attributes
    ----------
    name : LSL stream name (``None``: the first stream of ``stream_type`` that fits the model).
    stream_type : LSL content type to look for, e.g. "EEG" (``"eeg"``, mne-lsl's spelling, too).
    resolve_timeout : seconds to wait for the stream at start (< 0: until it appears or Ctrl-C).
    max_buflen : seconds liblsl may queue for us; small so a stall can never build a backlog.
    lost_after : seconds without a sample before the stream counts as lost (the inlet stays open:
        a sender that stalls and then catches up loses nothing).
    reopen_after : seconds without a sample before the inlet is closed and the stream looked for
        again (an outlet that vanished without closing its connection, e.g. a pulled network cable).
    max_chunk : most samples taken per pull.
    unit : the unit the model needs ("uV"...); samples are converted to it.
    assume_unit : the unit of the stream's samples, overriding what it declares (or that it
        declares none).
    events_channel : a trigger / photodiode channel of the stream read beside the model's channels
        (raw values, ``LSLSource.event_values``; :mod:`bci_stream.live.channel_events`).
    """

    name: str | None = None
    stream_type: str = "EEG"
    resolve_timeout: float = 10.0
    max_buflen: int = 2
    lost_after: float = 1.0
    reopen_after: float = 10.0
    max_chunk: int = 1024
    unit: str = "uV"
    assume_unit: str | None = None
    events_channel: str | None = None


def xpath_literal(value: str) -> str:
    """``value`` as an XPath 1.0 string literal (liblsl queries are XPath 1.0, which has no escapes):
    in ``'...'`` unless it holds a ``'``, then in ``"..."``; one holding both is a ``concat()`` of
    pieces that each fit one kind of quote."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    pieces = [f"'{part}'" for part in value.split("'")]
    return "concat(" + ", \"'\", ".join(pieces) + ")"


def _predicate(name: str | None, stream_type: str, source_id: str | None = None) -> str:
    """liblsl XPath predicate: by source id, else name, else type (any letter case of it); every
    value quoted by :func:`xpath_literal`, so a name like ``O'Brien`` is a query, not a syntax error."""
    if source_id:
        return f"source_id={xpath_literal(source_id)}"
    if name:
        return f"name={xpath_literal(name)}"
    spellings = sorted({stream_type, stream_type.upper(), stream_type.lower(), stream_type.capitalize()})
    return " or ".join(f"type={xpath_literal(t)}" for t in spellings)


class StreamFinder:
    """A liblsl ``ContinuousResolver`` for one predicate (source id, else name, else type), polled.

    liblsl's blocking resolve cannot be interrupted (a ``--resolve-timeout -1`` wait ignored Ctrl-C);
    the resolver searches in liblsl's background thread while :meth:`wait` looks at its results every
    ``RESOLVE_POLL`` s, so Ctrl-C and ``stop`` act at once. Kept alive across the attempts to find a
    lost stream again, it notices the stream one resolve wave after it returns (the wave's period is
    liblsl's ``[tuning]``: see :mod:`bci_stream.lsl.config`); made anew for each attempt, every
    attempt would start from an empty list.
    """

    def __init__(self, name: str | None, stream_type: str, source_id: str | None = None):
        self.resolver = pylsl.ContinuousResolver(pred=_predicate(name, stream_type, source_id), forget_after=2.0)

    def wait(self, timeout: float, stop: threading.Event | None = None, gather: float = 0.0,
             progress: Callable[[float], None] | None = None) -> list[pylsl.StreamInfo]:
        """Streams found, waiting up to ``timeout`` s (< 0: forever; [] when ``stop`` is set). Once one
        is found, waits ``gather`` s more to collect the others (to choose among several). Streams
        that just closed can still be listed for a few seconds: callers open them with a timeout.
        ``progress(seconds_waited)`` is called after ``PROGRESS_FIRST`` s without a stream, then every
        ``PROGRESS_EVERY`` s (what a user waiting at a terminal sees)."""
        start = time.monotonic()
        deadline = None if timeout < 0 else start + timeout
        report_at = start + PROGRESS_FIRST
        while True:
            found = self.resolver.results()
            if found:
                if gather > 0:
                    time.sleep(gather)
                    found = self.resolver.results() or found
                return list(found)
            now = time.monotonic()
            if (stop is not None and stop.is_set()) or (deadline is not None and now >= deadline):
                return []
            if progress is not None and now >= report_at:
                progress(now - start)
                report_at += PROGRESS_EVERY
            time.sleep(RESOLVE_POLL)


def find_streams(name: str | None, stream_type: str, timeout: float, stop: threading.Event | None = None,
                 source_id: str | None = None, gather: float = 0.0,
                 progress: Callable[[float], None] | None = None) -> list[pylsl.StreamInfo]:
    """Streams matching (source id, else name, else type), waiting up to ``timeout`` s (< 0: forever);
    one :class:`StreamFinder` for one wait (see there)."""
    return StreamFinder(name, stream_type, source_id).wait(timeout, stop, gather, progress)


def stream_channel_labels(info: pylsl.StreamInfo) -> list[str]:
    """Channel labels from the stream's ``desc/channels``; empty strings where there are none."""
    return _channel_field(info, "label")


def stream_channel_units(info: pylsl.StreamInfo) -> list[str]:
    """Channel units from the stream's ``desc/channels`` as written; empty strings where there are none."""
    return _channel_field(info, "unit")


def _channel_field(info: pylsl.StreamInfo, key: str) -> list[str]:
    values = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty() and len(values) < info.channel_count():
        values.append(ch.child_value(key))
        ch = ch.next_sibling("channel")
    return values + [""] * (info.channel_count() - len(values))


def channel_index(stream_labels: list[str], wanted: list[str], stream_name: str = "stream") -> np.ndarray:
    """Positions of ``wanted`` channels in ``stream_labels`` (exact match, else case-insensitive).

    Extra stream channels (triggers, ``SAMPLE_INDEX``) are ignored; missing ones raise
    :class:`StreamMismatchError` naming them.
    """
    index, missing = _match_channels(stream_labels, wanted)
    if missing:
        raise StreamMismatchError(f"{stream_name}: {_missing_text(stream_labels, wanted, missing)}")
    return index


def _match_channels(stream_labels: list[str], wanted: list[str]) -> tuple[np.ndarray, list[str]]:
    exact = {label: i for i, label in enumerate(stream_labels)}
    folded = {label.lower(): i for i, label in enumerate(stream_labels)}
    index, missing = [], []
    for ch in wanted:
        i = exact.get(ch, folded.get(ch.lower()))
        (missing.append(ch) if i is None else index.append(i))
    return np.asarray(index), missing


def _missing_text(stream_labels: list[str], wanted: list[str], missing: list[str]) -> str:
    return (f"has {len(stream_labels)} channels; the model needs {len(wanted)}, missing {len(missing)}: "
            f"{', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}")


def close_inlet(inlet: pylsl.StreamInlet | None) -> None:
    """Close an inlet's stream, whatever state its outlet is in."""
    if inlet is not None:
        try:
            inlet.close_stream()
        except Exception:  # already gone
            pass


def describe_stream(info: pylsl.StreamInfo) -> dict:
    """Identity of a stream for logs: name, type, source_id, host, rate, channels, format."""
    return {"name": info.name(), "type": info.type(), "source_id": info.source_id(), "host": info.hostname(),
            "sfreq": info.nominal_srate(), "channels": info.channel_count(), "format": info.channel_format()}


class LSLSource:
    """One EEG inlet whose channels are picked by name for a model.

    ``pull(timeout)`` returns the model's channels ``(n_samples, n_channels)`` float32 in the model's
    unit and their LSL timestamps (clock-corrected to this machine), or raises :class:`StreamLostError`.
    After the first connection the source stays with that stream (its source id, else its name),
    so a reconnection never moves to another device's stream, and one resolver keeps looking for it
    until it is back (:class:`StreamFinder`).

    With a counter channel (``counter_channel``, e.g. ``SAMPLE_INDEX``): ``lost_samples`` counts the
    samples missing while connected (never expected), ``gap_samples`` those the source counted while
    the connection was down (the cost of an outage and of the reconnection), ``last_gap_samples``
    the latter for the latest reconnection (None before the first chunk after it, or when the
    counter started again, e.g. the device restarted).
    """

    def __init__(self, ch_names: list[str], sfreq: float, config: SourceConfig = SourceConfig(),
                 counter_channel: str = "SAMPLE_INDEX", clock: Callable[[], float] = pylsl.local_clock):
        self.ch_names = list(ch_names)
        self.clock_now = clock  # LSL seconds; how long the stream has been silent is measured on it (tests script it)
        self.sfreq = sfreq
        self.config = config
        self.counter_channel = counter_channel
        self.inlet: pylsl.StreamInlet | None = None
        self.info: pylsl.StreamInfo | None = None
        self.lost_samples = 0
        self.gap_samples = 0
        self.last_gap_samples: int | None = None
        self.clock: ClockCorrection | None = None
        self.rejected: list[tuple[str, str]] = []  # (stream name, why it does not fit) at the first connection
        self.candidates: list[str] = []  # names of the other streams that fit
        self.unit_note = ""  # how samples are converted, e.g. "V -> uV (x 1e+06)"
        self.stop_event = threading.Event()  # set to abandon a wait for the stream
        self.on_wait: Callable[[float], None] | None = None  # progress of the first wait (StreamFinder.wait)
        self._locked: tuple[str, str] | None = None  # (name, source_id) once connected
        self._next_counter: int | None = None  # None: the next chunk is a connection's first
        self._counter_before: int | None = None  # the counter's next value after the last sample received
        self._finder: StreamFinder | None = None  # looking for the locked stream again, kept across attempts
        self._idle_since: float | None = None
        self.stalled = False  # silent for lost_after, inlet still open
        self._scale: np.ndarray | float = 1.0
        self._counter: int | None = None  # the counter channel's index in the stream (None: it has none)
        self._events: int | None = None
        self.event_values = np.empty(0)  # the events channel's values of the last pull (config.events_channel)

    # --- connection --------------------------------------------------------------------------
    def connect(self, timeout: float | None = None) -> bool:
        """Resolve and open the stream; False if none is there within ``timeout`` s.

        Without a stream name, every stream of the type is considered and the first that fits the
        model (rate, channels, format, unit) is taken. Raises :class:`StreamMismatchError` naming
        each candidate's problems when none fits.
        """
        cfg = self.config
        timeout = cfg.resolve_timeout if timeout is None else timeout
        name, source_id = self._locked if self._locked else (cfg.name, None)
        gather = 1.0 if (self._locked is None and cfg.name is None) else 0.0  # choose among all EEG streams
        if self._locked:  # one resolver for every attempt: it lists the stream one resolve wave after it returns
            self._finder = self._finder or StreamFinder(name, cfg.stream_type, source_id)
            found = self._finder.wait(timeout, self.stop_event)
        else:
            found = find_streams(name, cfg.stream_type, timeout, self.stop_event, source_id=source_id, gather=gather,
                                 progress=self.on_wait)
        if not found:
            return False
        # a stale answer from an outlet that just closed makes info() wait its whole timeout:
        # keep it to the caller's timeout so the reconnect loop tries again soon
        wait = max(0.5, min(5.0, timeout if timeout > 0 else 5.0))
        rejected, fitting = self._sort_candidates(found, wait)
        if not fitting:
            if not rejected:
                return False
            if len(rejected) == 1:
                raise StreamMismatchError(f"stream {rejected[0][0]!r} does not fit the model: {rejected[0][1]}")
            raise StreamMismatchError("no stream fits the model: " + " | ".join(f"{n!r}: {why}" for n, why in rejected))
        return self._open(*fitting[0], wait, rejected, fitting)

    def _sort_candidates(self, found: list[pylsl.StreamInfo], wait: float) -> tuple[list, list]:
        """``(rejected, fitting)``: ``[(name, problems)]`` of the streams that do not fit the model and
        ``[(inlet, full info)]`` of those that do (streams whose full description never came are left out)."""
        rejected, fitting = [], []
        for info in found:
            inlet = pylsl.StreamInlet(info, max_buflen=self.config.max_buflen, recover=False)  # clock: ClockCorrection
            try:
                full = inlet.info(timeout=wait)
            except (LSLTimeoutError, LostError):  # a stale answer from an outlet that just went away
                continue
            problems = self.problems(full)
            if problems:
                rejected.append((full.name(), "; ".join(problems)))
            else:
                fitting.append((inlet, full))
        return rejected, fitting

    def _open(self, inlet: pylsl.StreamInlet, full: pylsl.StreamInfo, wait: float, rejected: list,
              fitting: list) -> bool:
        """Open the chosen stream (``inlet``, its full description); False if it went away meanwhile."""
        cfg = self.config
        self.problems(full)  # the unit conversion of the stream taken, not of the last one checked
        labels = stream_channel_labels(full)
        self._index, _ = _match_channels(labels, self.ch_names)
        self._identity = np.array_equal(self._index, np.arange(len(self.ch_names))) and full.channel_count() == len(self.ch_names)
        self._counter = labels.index(self.counter_channel) if self.counter_channel in labels else None
        self._events = labels.index(cfg.events_channel) if cfg.events_channel in labels else None
        self._buf = np.empty((cfg.max_chunk, full.channel_count()), _DTYPES[full.channel_format()])
        try:
            inlet.open_stream(timeout=wait)
        except (LSLTimeoutError, LostError):
            return False
        # a remote stream's first clock-offset estimate blocks: take it now, not in the first pull
        self.clock = ClockCorrection(inlet, full.hostname(), first_timeout=wait)
        if self._locked is None:
            self.rejected = rejected
            self.candidates = [f.name() for _, f in fitting[1:]]
            self._locked = (full.name(), full.source_id())
        self.inlet, self.info = inlet, full
        self._finder = None  # its background thread stops: nothing to look for until the next loss
        if self._next_counter is not None:  # else no sample came on the last connection: the one before counts
            self._counter_before = self._next_counter
        self._next_counter = None
        self.last_gap_samples = None
        self._idle_since = None
        self.stalled = False
        log.info("connected to %r (%d ch @ %g Hz, source_id %r)", full.name(), full.channel_count(),
                 full.nominal_srate(), full.source_id())
        return True

    def problems(self, info: pylsl.StreamInfo) -> list[str]:
        """Everything that keeps ``info`` (a full stream description) from fitting the model: rate,
        format, missing channels and unit, all reported together (empty: it fits). Sets the unit
        conversion for the model's channels as a side effect when the unit is fine."""
        problems = []
        if abs(info.nominal_srate() - self.sfreq) > 1e-6 * self.sfreq:
            problems.append(f"runs at {info.nominal_srate():g} Hz; the model needs {self.sfreq:g} Hz")
        if info.channel_format() not in _DTYPES:
            problems.append(f"is not numeric (LSL channel format {info.channel_format()})")
        labels = stream_channel_labels(info)
        index, missing = _match_channels(labels, self.ch_names)
        if missing:
            problems.append(_missing_text(labels, self.ch_names, missing))
        elif self.config.events_channel and self.config.events_channel not in labels:
            problems.append(f"has no channel {self.config.events_channel!r} for --events-from (channels: "
                            f"{', '.join(labels[:12])}{' ...' if len(labels) > 12 else ''})")
        else:
            try:
                self._scale, self.unit_note = self._unit_scale(stream_channel_units(info), index)
            except UnitError as err:
                problems.append(str(err))
        return problems

    def _unit_scale(self, units: list[str], index: np.ndarray) -> tuple[np.ndarray | float, str]:
        """Per-channel factors from the stream's units (or ``assume_unit``) to the model's unit."""
        wanted = self.config.unit
        hint = assume_unit_hint(wanted)
        if self.config.assume_unit:
            found = [self.config.assume_unit] * len(index)
        else:
            found = [units[i] for i in index]
            unknown = sorted({u for u in found if normalise_unit(u) is None})
            if unknown:
                what = "declares no unit" if unknown == [""] else f"declares unit(s) {unknown}"
                raise UnitError(f"{what} for the model's channels; the model needs {wanted}: {hint}")
        try:
            factors = np.array([conversion_factor(u, wanted) for u in found], np.float32)
        except UnitError as err:
            raise UnitError(f"{err} (the model was trained on {wanted}); {hint}") from err
        kinds = sorted({normalise_unit(u) for u in found})
        note = f"{'/'.join(kinds)} -> {normalise_unit(wanted)}"
        if np.all(factors == factors[0]):
            return float(factors[0]), note + (f" (x {factors[0]:g})" if factors[0] != 1 else "")
        return factors, note + " (per channel)"

    @property
    def has_counter(self) -> bool:
        """True when the connected stream has the counter channel (lost samples are counted)."""
        return self._counter is not None

    @property
    def is_open(self) -> bool:
        """True while the inlet is open (a stalled stream still is: its later samples are read as usual)."""
        return self.inlet is not None

    def close(self) -> None:
        """Close the inlet; the counter's next value is kept, so the first sample after a reconnection
        tells how many samples the source counted meanwhile."""
        close_inlet(self.inlet)
        self.inlet = None
        self._finder = None  # made again by the next connect(), if there is one

    # --- data -----------------------------------------------------------------------------
    def pull(self, timeout: float) -> tuple[np.ndarray, np.ndarray]:
        """Wait up to ``timeout`` s for the first sample, then take all that is ready.

        Returns ``(samples (n, n_model_channels) float32, timestamps (n,) float64 LSL seconds)``;
        ``n`` may be 0. Raises :class:`StreamLostError` when the outlet is gone (closed; ``inlet`` is
        then None), once when it has sent nothing for ``config.lost_after`` s (``inlet`` stays open
        and later samples are returned as usual), and after ``config.reopen_after`` s of silence
        (closed, to be looked for again).
        """
        if self.inlet is None:
            raise StreamLostError("not connected")
        try:
            view, stamps = self.inlet.pull_chunk(timeout=timeout, max_samples=self.config.max_chunk,
                                                 dest_obj=self._buf, min_samples=1, as_numpy=True)
        except LostError as err:
            self.close()
            raise StreamLostError(f"stream {self.info.name()!r} closed") from err
        now = self.clock_now()
        n = len(stamps)
        if n == 0:
            if self._idle_since is None:
                self._idle_since = now
            idle = now - self._idle_since
            if idle > self.config.reopen_after:
                name = self.info.name()
                self.close()
                raise StreamLostError(f"no data from {name!r} for {idle:.0f} s; looking for the stream again")
            if idle > self.config.lost_after and not self.stalled:
                self.stalled = True
                raise StreamLostError(f"no data from {self.info.name()!r} for {self.config.lost_after:g} s")
            self.event_values = np.empty(0)
            return np.empty((0, len(self.ch_names)), np.float32), np.empty(0)
        self._idle_since = None
        if self._events is not None:  # raw, before the unit scale: trigger codes are not microvolts
            self.event_values = view[:, self._events].astype(np.float64)
        self.stalled = False
        if self._counter is not None:
            self._count_lost(view[:, self._counter])
        samples = (view if self._identity else view[:, self._index]).astype(np.float32, copy=False)
        if not (isinstance(self._scale, float) and self._scale == 1.0):
            samples = samples * self._scale  # the model's unit (a new array: the pull buffer stays raw)
        return samples, self.clock.apply(np.asarray(stamps))

    def _count_lost(self, counter: np.ndarray) -> None:
        values = counter.astype(np.int64)
        if self._next_counter is None:  # a connection's first chunk: what the source counted while we were away
            self._count_gap(int(values[0]))
        elif values[0] > self._next_counter:
            self.lost_samples += int(values[0] - self._next_counter)
        steps = np.diff(values)
        self.lost_samples += int(np.clip(steps - 1, 0, None).sum())
        self._next_counter = int(values[-1]) + 1

    def _count_gap(self, first: int) -> None:
        """Samples between the last connection's last sample and this one's first (``first``, the counter)."""
        if self._counter_before is None:  # the first connection
            return
        missing = first - self._counter_before
        self.last_gap_samples = missing if missing >= 0 else None  # a counter that started again says nothing
        self.gap_samples += max(missing, 0)
