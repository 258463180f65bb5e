"""Test doubles of the live path's interfaces (timeflux.helpers.testing style): script the input, call
``session.step()``, look at what came out. Each implements its protocol of
:mod:`bci_stream.live.interfaces` in full, so the loop is tested as it runs (no member is probed).

    source, sink, markers = ScriptedSource(n_channels), CollectingSink(), ScriptedMarkers()
    session = LiveSession(decoder, LiveConfig(mode="event"), source=source, outlet=sink, markers=markers)
    source.feed(700); markers.queue = [(source.t0 + 0.05, "n02389026_1")]; session.step()
    sink.decisions  # the Predictions published
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pylsl

from bci_stream.live.prediction import Prediction
from bci_stream.lsl.inlet import StreamLostError


class FakeClock:
    """A clock (LSL seconds) that only moves when the code under test sleeps or a test sets ``t``;
    ``sleeps`` lists the sleeps asked for."""

    def __init__(self, t: float = 1000.0):
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class ScriptedSource:
    """A :class:`~bci_stream.live.interfaces.Source` that hands out the chunks it is given, stamped
    at ``sfreq`` from ``t0`` (100 s before it was made, on the LSL clock); raises
    :class:`StreamLostError` where the script says the stream is lost. Without a counter channel:
    ``has_counter`` False and every lost-sample figure 0."""

    def __init__(self, n_channels: int, sfreq: float = 1000.0, name: str = "scripted"):
        self.n_channels, self.sfreq, self.name = n_channels, sfreq, name
        self.t0 = pylsl.local_clock() - 100.0
        self.sent = 0
        self.queue: list = []
        self.connects = 0
        self.info: pylsl.StreamInfo | None = None
        self.lost_samples = 0
        self.gap_samples = 0
        self.last_gap_samples: int | None = None
        self.unit_note = ""
        self.event_values = np.empty(0)  # no --events-from channel
        self.rejected: list[tuple[str, str]] = []
        self.stop_event = threading.Event()
        self.on_wait: Callable[[float], None] | None = None
        self.open = False

    # --- the script ----------------------------------------------------------------------------
    def feed(self, n: int, gap: int = 0) -> None:
        """Queue ``n`` samples of noise (µV, std 10), ``gap`` samples after the previous ones (missing data)."""
        self.sent += gap
        data = np.random.default_rng(self.sent).standard_normal((n, self.n_channels)).astype(np.float32) * 10
        self.queue.append((data, self.t0 + (self.sent + np.arange(n)) / self.sfreq))
        self.sent += n

    def feed_array(self, data: np.ndarray) -> None:
        """Queue these samples ``(n, n_channels)``, right after the previous ones."""
        n = len(data)
        self.queue.append((np.asarray(data, np.float32), self.t0 + (self.sent + np.arange(n)) / self.sfreq))
        self.sent += n

    def lose(self) -> None:
        """The next pull raises :class:`StreamLostError` (the outlet went away)."""
        self.queue.append(StreamLostError("unplugged"))

    # --- the Source interface --------------------------------------------------------------------
    @property
    def has_counter(self) -> bool:
        return False

    @property
    def is_open(self) -> bool:
        return self.open

    def connect(self, timeout: float | None = None) -> bool:
        self.connects += 1
        self.open = True
        self.info = pylsl.StreamInfo(self.name, "EEG", self.n_channels, self.sfreq, pylsl.cf_float32,
                                     f"{self.name}-source")  # a description only: no outlet exists
        return True

    def pull(self, timeout: float) -> tuple[np.ndarray, np.ndarray]:
        if not self.queue:
            return np.empty((0, self.n_channels), np.float32), np.empty(0)
        item = self.queue.pop(0)
        if isinstance(item, Exception):
            self.open = False
            raise item
        return item

    def close(self) -> None:
        self.open = False


class ScriptedMarkers:
    """A :class:`~bci_stream.live.interfaces.MarkerInput`: ``queue`` holds ``(LSL time, text)`` for
    the next pull; ``changes`` the ``(status, t)`` transitions to report."""

    def __init__(self, name: str = "scripted-markers"):
        self.name: str | None = name
        self.queue: list[tuple[float, str]] = []
        self.changes: list[tuple[str, float]] = []
        self.status = "connected"
        self.reason = "scripted"
        self.others: list[str] = []
        self.info: pylsl.StreamInfo | None = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE,
                                                             pylsl.cf_string, f"{name}-source")

    def connect(self, timeout: float = 5.0) -> bool:
        self.status = "connected"
        return True

    def pull(self) -> list[tuple[float, str]]:
        out, self.queue = self.queue, []
        return out

    def close(self) -> None:
        self.status = "none"


class CollectingSink:
    """A :class:`~bci_stream.live.interfaces.Sink` (and outlet) that keeps every decision it is given
    in ``decisions``; ``closed`` once the session ended."""

    def __init__(self, source_id: str = "collecting-sink"):
        self.source_id = source_id
        self.decisions: list[Prediction] = []
        self.closed = False

    def push(self, prediction: Prediction) -> None:
        self.decisions.append(prediction)

    def close(self) -> None:
        self.closed = True
