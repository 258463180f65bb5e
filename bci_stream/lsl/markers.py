"""LSL marker inlet (string stimulus markers, e.g. from PsychoPy or the phantom).

Which marker stream belongs to an EEG stream is never a guess: by default it is the one named
``<eeg name>-markers`` (what ``bci-stream simulate`` and ``replay`` publish), else one from the
EEG stream's host whose source id extends the EEG's, else the only marker stream on that host;
several equally likely candidates are an error that lists them. A marker sender that restarts
(a PsychoPy outlet has no source id, so liblsl cannot recover it) is found again by a background
thread and the inlet swapped in, without holding up the decoding loop.
"""

from __future__ import annotations

import logging
import threading
import time

import pylsl
from pylsl.util import LostError
from pylsl.util import TimeoutError as LSLTimeoutError

from bci_stream.lsl.clock import ClockCorrection
from bci_stream.lsl.inlet import close_inlet, find_streams

log = logging.getLogger(__name__)


class MarkerStreamError(ValueError):
    """The marker stream cannot be chosen (several fit, or it is not a string stream)."""


def choose_marker_stream(candidates: list[pylsl.StreamInfo], eeg: pylsl.StreamInfo | None,
                         name: str | None = None) -> tuple[pylsl.StreamInfo | None, str]:
    """The marker stream for ``eeg`` among ``candidates`` and why it was chosen (None: none fits).

    Raises :class:`MarkerStreamError` when several fit equally and the choice would be a guess.
    """
    strings = [c for c in candidates if c.channel_format() == pylsl.cf_string]
    if name is not None:
        named = [c for c in candidates if c.name() == name]
        if named and not strings:
            raise MarkerStreamError(f"marker stream {name!r} is not a string stream")
        named = [c for c in named if c.channel_format() == pylsl.cf_string]
        if eeg is not None:  # the same name on several hosts: prefer the EEG's host
            named.sort(key=lambda c: c.hostname() != eeg.hostname())
        return (named[0], "named with --markers") if named else (None, "")
    if not strings:
        return None, ""
    if eeg is None:
        if len(strings) > 1:
            raise MarkerStreamError(f"several marker streams ({_names(strings)}); pass --markers NAME")
        return strings[0], "the only marker stream"
    rules = [
        (lambda c: c.name() == f"{eeg.name()}-markers", f"named after the EEG stream ({eeg.name()}-markers)"),
        (lambda c: c.hostname() == eeg.hostname() and bool(eeg.source_id())
         and c.source_id().startswith(eeg.source_id()), "same host and source as the EEG stream"),
        (lambda c: c.hostname() == eeg.hostname(), "the only marker stream on the EEG stream's host"),
    ]
    for rule, why in rules:
        fit = [c for c in strings if rule(c)]
        if len(fit) == 1 or (fit and why.startswith("named")):
            return fit[0], why
        if len(fit) > 1:
            raise MarkerStreamError(
                f"several marker streams could belong to EEG stream {eeg.name()!r} ({_names(fit)}); "
                "pass --markers NAME"
            )
    if len(strings) == 1:
        return strings[0], "the only marker stream on the network (another host)"
    raise MarkerStreamError(f"none of the marker streams ({_names(strings)}) belongs to EEG stream "
                            f"{eeg.name()!r}; pass --markers NAME")


def _names(infos: list[pylsl.StreamInfo]) -> str:
    return ", ".join(f"{c.name()!r} on {c.hostname()}" for c in infos)


class MarkerSource:
    """Non-blocking reader of a string marker stream: :meth:`pull` returns ``[(t_lsl, text)]``.

    ``status`` is "connected", "lost" (reconnecting in the background) or "none";
    ``changes`` collects ``(status, lsl_time)`` transitions for the session log.
    """

    def __init__(self, name: str | None, stream_type: str = "Markers", eeg: pylsl.StreamInfo | None = None):
        self.name = name
        self.stream_type = stream_type
        self.eeg = eeg
        self.inlet: pylsl.StreamInlet | None = None
        self.info: pylsl.StreamInfo | None = None
        self.clock: ClockCorrection | None = None
        self.status = "none"
        self.reason = ""  # why this stream was chosen
        self.others: list[str] = []  # the other marker streams seen
        self.changes: list[tuple[str, float]] = []
        self._swap: tuple[pylsl.StreamInlet, pylsl.StreamInfo] | None = None
        self._reconnecting: threading.Thread | None = None
        self._closed = threading.Event()

    def connect(self, timeout: float = 5.0) -> bool:
        """Choose and open the marker stream (see :func:`choose_marker_stream`); False if none is there."""
        candidates = []
        if self.name is None and self.eeg is not None:  # the usual case first, without waiting for others
            candidates = find_streams(f"{self.eeg.name()}-markers", self.stream_type, min(timeout, 1.0))
        if not candidates:
            candidates = find_streams(self.name, self.stream_type, timeout, gather=0.0 if self.name else 1.0)
        info, self.reason = choose_marker_stream(candidates, self.eeg, self.name)
        if info is None:
            return False
        self.others = [c.name() for c in candidates if c.uid() != info.uid()]
        opened = self._open(info, timeout=5.0)
        if opened is None:
            return False
        self.inlet, self.info = opened
        self.name = info.name()  # a reconnection looks for this stream again
        self.status = "connected"
        return True

    def _open(self, info: pylsl.StreamInfo, timeout: float) -> tuple[pylsl.StreamInlet, pylsl.StreamInfo] | None:
        inlet = pylsl.StreamInlet(info, max_buflen=60, recover=False)  # clock: ClockCorrection
        try:
            inlet.open_stream(timeout=timeout)
        except (LSLTimeoutError, LostError):
            return None
        self.clock = ClockCorrection(inlet, info.hostname())
        return inlet, info

    def pull(self) -> list[tuple[float, str]]:
        """Markers received since the last call, on this machine's LSL clock."""
        if self._swap is not None:
            (self.inlet, self.info), self._swap = self._swap, None
            self.status = "connected"
            self.changes.append(("connected", pylsl.local_clock()))
            log.warning("marker stream %r back", self.info.name())
        if self.inlet is None:
            return []
        try:
            values, stamps = self.inlet.pull_chunk(timeout=0.0)
        except LostError:
            self._lost()
            return []
        if not stamps:
            return []
        offset = self.clock.update()
        return [(float(t) + offset, str(v[0])) for v, t in zip(values, stamps)]

    def _lost(self) -> None:
        old = self.info
        self.inlet = None
        self.status = "lost"
        self.changes.append(("lost", pylsl.local_clock()))
        log.warning("marker stream %r lost; looking for it again", old.name())
        self._reconnecting = threading.Thread(target=self._reconnect, args=(old,), name="marker-reconnect",
                                              daemon=True)
        self._reconnecting.start()

    def _reconnect(self, old: pylsl.StreamInfo) -> None:
        """Background: wait for a new outlet of the same name (and host), open it, hand it over."""
        while not self._closed.is_set():
            fresh = [c for c in find_streams(old.name(), self.stream_type, 0.5)
                     if c.uid() != old.uid() and c.hostname() == old.hostname()]
            for info in fresh:
                opened = self._open(info, timeout=1.0)
                if opened is not None:
                    self._swap = opened
                    return
            time.sleep(0.05)

    def close(self) -> None:
        self._closed.set()
        close_inlet(self.inlet)
        self.inlet = None
