"""The live session in a child process, mirrored into the viewer's process.

Qt paints the window while holding the GIL (milliseconds a frame); a decoding thread in the same
process waited for it, and its latency tripled (README, *Live use*). Here the decoding loop owns its
process: a publisher thread there sends the viewer ~30 snapshots a second (the shared state, the
shown group's spectrogram, the traces reduced to min/max per column with an optional display
filter, channel health) and each new picture once, the moment the renderer has it; it takes the viewer's commands (channels, display
filter, start/stop the JSONL log, switch renderer, stop). It never imports Qt.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci_stream.live.extras import SessionExtras
from bci_stream.live.session import LiveSession, LiveSpec, build_session
from bci_stream.live.state import RenderedImage, SharedState
from bci_stream.viewer.display import DisplayFilter, channel_health, trace_view
from bci_stream.viewer.protocol import PUBLISH_HZ, TRACE_POINTS, TRACE_SECONDS

log = logging.getLogger(__name__)


def _decode(spec: LiveSpec, conn) -> None:
    """Child process: run the session; publish snapshots and obey commands on a second thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the viewer, which stops us in order
    from bci_stream.lsl.config import fast_resolve_in_this_process

    fast_resolve_in_this_process()  # the decoder finds a returning stream fastest (over our loopback config)
    state = SharedState()
    try:
        session = build_session(spec, state)
        session.start()
        extras = SessionExtras.start(session, spec.providers)  # --record, --watch-model
    except Exception as err:  # no stream, wrong channels, model without a card: said in the parent
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    qt = sorted(m for m in ("PyQt6", "pyqtgraph") if m in sys.modules)  # must stay empty: see the module doc
    conn.send(("ready", {"stream": session.source.info.name(), "provider": session.decoder.provider,
                         "session": session.describe(), "qt_modules": qt}))
    finished = threading.Event()
    publisher = threading.Thread(target=_publish, args=(session, conn, finished), name="viewer-publisher",
                                 daemon=True)
    publisher.start()
    try:
        session.run(seconds=spec.seconds)
    finally:
        extras.stop()
        finished.set()
        publisher.join(timeout=2)
        try:
            conn.send(("done", state.summary() | {"recording_error": (state.recording or {}).get("error", "")}))
        except (BrokenPipeError, OSError):
            pass


@dataclass
class _Shown:
    """What the viewer asked to be sent (its channel group and display filter), and the last picture sent."""

    channels: np.ndarray
    display: DisplayFilter = DisplayFilter()
    image: RenderedImage | None = None


def _publish(session: LiveSession, conn, finished: threading.Event) -> None:
    """The state ``PUBLISH_HZ`` times a second, and each new picture as soon as it is ready (the
    renderer's thread wakes this one: ``SharedState.picture_listeners``); the viewer's commands."""
    shown = _Shown(np.arange(min(16, session.card.n_channels)))
    picture = threading.Event()
    session.state.picture_listeners.append(picture.set)
    next_state = time.monotonic()
    while not finished.is_set():
        try:
            if time.monotonic() >= next_state:
                next_state = time.monotonic() + 1.0 / PUBLISH_HZ
                _obey(session, conn, shown)
                _send_state(session, conn, shown)
            if picture.wait(max(0.0, next_state - time.monotonic())):
                picture.clear()
                image = session.state.current_image()
                if image is not None and image is not shown.image:
                    shown.image = image
                    conn.send(("image", image))
        except (EOFError, BrokenPipeError, OSError):  # the viewer is gone: stop decoding
            session.stop()
            return


def _obey(session: LiveSession, conn, shown: _Shown) -> None:
    """The viewer's commands received since the last turn."""
    while conn.poll():
        command, value = conn.recv()
        if command == "channels":
            shown.channels = np.asarray(value, dtype=int)
        elif command == "display_filter":
            shown.display = DisplayFilter(**value)
        elif command == "record":
            try:
                session.set_recording(value)
            except (OSError, ValueError) as err:  # a path that cannot be written: said, not fatal
                session.state.update(message=f"cannot record: {err}")
        elif command == "renderer":
            session.switch_renderer(value)
        elif command == "swap_model":  # the viewer's "load model…": refused models leave a message
            session.swap_model(value)
        elif command == "stop":
            session.stop()


def _send_state(session: LiveSession, conn, shown: _Shown) -> None:
    """One snapshot: the state, the shown group's spectrogram, channel health, the traces (and the
    picture if it was not sent yet)."""
    card = session.card
    snap = session.state.snapshot()
    if snap["features"] is not None and len(shown.channels):
        snap["features"] = snap["features"][shown.channels].mean(axis=0)  # the shown group's spectrogram
    if snap["image"] is shown.image:
        snap["image"] = None  # sent once: the viewer keeps it
    else:
        shown.image = snap["image"]
    recent, _ = session.ring.snapshot(int(card.sfreq), slice(None), 1)
    snap["health"] = channel_health(recent.T, card.ch_names)
    conn.send(("state", snap, trace_view(session.ring, TRACE_SECONDS, card.sfreq, shown.channels, TRACE_POINTS,
                                         shown.display)))


class MirroredState(SharedState):
    """The child's :class:`SharedState` as last received; :meth:`snapshot` returns it. A picture
    received tells the ``picture_listeners`` (on the receiving thread)."""

    def __init__(self, class_names: list[str]):
        super().__init__(class_names=class_names)
        self._latest: dict = {}

    def receive(self, snap: dict) -> None:
        """A snapshot of the child's state (its ``image`` None: the picture received last stays)."""
        new_picture = snap["image"] is not None and snap["image"] is not self.image
        with self.lock:
            if snap["image"] is None:
                snap["image"] = self.image
            self.image = snap["image"]
            if self.message:  # a message of this process (a saved screenshot) until the child has a new one
                snap["message"] = snap["message"] or self.message
            self._latest = snap
            self.renderer_kind = snap["renderer_kind"]
        if new_picture:
            self._picture_changed()

    def receive_image(self, image: RenderedImage) -> None:
        """A new picture, sent the moment it was ready."""
        with self.lock:
            self.image = image
            if self._latest:
                self._latest["image"] = image
        self._picture_changed()

    def snapshot(self) -> dict:
        with self.lock:
            latest = dict(self._latest)
        return latest or super().snapshot()  # nothing received yet: the initial state


class MirroredTraces:
    """The traces the child sent last (:func:`~bci_stream.viewer.display.trace_view`'s tuple);
    :meth:`select` and :meth:`set_filter` tell the child what to send."""

    def __init__(self, conn):
        self._conn = conn
        self._latest: tuple = (np.empty((0, 0), np.float32), np.empty(0), None)
        self.lock = threading.Lock()

    def receive(self, traces: tuple) -> None:
        with self.lock:
            self._latest = traces

    def select(self, channels: np.ndarray) -> None:
        with self.lock:
            self._latest = (np.empty((0, 0), np.float32), np.empty(0), None)
        self._conn.send(("channels", [int(c) for c in channels]))

    def set_filter(self, display: DisplayFilter) -> None:
        self._conn.send(("display_filter", {"highpass": display.highpass, "notch": display.notch}))

    def view(self, channels: np.ndarray, display: DisplayFilter) -> tuple:
        with self.lock:
            return self._latest

    def health(self, ch_names: list[str]) -> None:
        """None: the child sends channel health in its state."""
        return None


class DecodingProcess:
    """A live session in a child process, with the interface the viewer uses of a session.

    Raises ``RuntimeError`` with the child's message when the session cannot start (no stream,
    wrong channels or rate, a model without a card).
    """

    def __init__(self, spec: LiveSpec, start_timeout: float = 120.0):
        from bci_stream.contract.model_card import ModelCard
        from bci_stream.retrieval.index import load_gallery

        self.card = ModelCard.from_onnx(spec.model)
        # an embedding model's gallery, here too: the viewer draws its thumbnails (mapped from the file,
        # read as they are shown); its classes are the decisions' classes
        self.gallery = load_gallery(spec.gallery_index) if spec.gallery_index else None
        self.class_ids, class_names = (self.gallery.classes()[:2] if self.gallery is not None
                                       else (list(self.card.class_ids), list(self.card.class_names)))
        context = mp.get_context("spawn")
        self._conn, child_end = context.Pipe()
        self.process = context.Process(target=_decode, args=(spec, child_end), name="bci-stream-decoder", daemon=True)
        self.process.start()
        child_end.close()
        self.state = MirroredState(list(class_names))
        self.state.renderer_kind = spec.render.kind if spec.render is not None else "none"
        self.traces = MirroredTraces(self._conn)
        self.summary: dict | None = None
        if not self._conn.poll(start_timeout):
            self.process.terminate()
            raise RuntimeError(f"the decoding process did not start within {start_timeout:g} s")
        status, payload = self._conn.recv()
        if status != "ready":
            self.process.join(timeout=5)
            raise RuntimeError(payload)
        self.info = payload
        self._receiver = threading.Thread(target=self._receive, name="decoding-receiver", daemon=True)
        self._receiver.start()

    def _receive(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                return
            if message[0] == "image":
                self.state.receive_image(message[1])
            elif message[0] == "state":
                self.state.receive(message[1])
                self.traces.receive(message[2])
            elif message[0] == "done":
                self.summary = message[1]
                return

    # --- what the viewer calls -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process.is_alive() and self.summary is None

    def set_recording(self, path: str | Path | None) -> None:
        self._send("record", str(path) if path else None)

    def swap_model(self, path: str | Path) -> None:
        """Ask the decoder to hot-swap the model at ``path`` in (refused, with a message, if it does not fit)."""
        self._send("swap_model", str(path))

    def switch_renderer(self, kind: str) -> None:
        self._send("renderer", kind)

    def stop(self) -> None:
        self._send("stop", None)

    def join(self, timeout: float = 15.0) -> dict | None:
        """Wait for the child to finish; returns its summary (decisions, latency p50/p99, lost samples)."""
        self._receiver.join(timeout=timeout)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
        return self.summary

    def _send(self, command: str, value) -> None:
        try:
            self._conn.send((command, value))
        except (BrokenPipeError, OSError):
            pass  # already finished
