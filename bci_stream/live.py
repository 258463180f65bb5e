"""The live loop: LSL in -> ring buffer -> decoder -> LSL outlet, JSONL log, renderer, viewer state.

Acquisition and decoding share one thread and one tight loop (pull what is ready, then every hop
that is due). Nothing here touches Qt or waits on the renderer: the renderer is offered the newest
decision through a non-blocking latest-wins slot and the viewer polls :class:`SharedState`.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pylsl
from threadpoolctl import threadpool_limits

from bci_stream.decoder import Decoder
from bci_stream.markers import MarkerSource
from bci_stream.publish import JsonlLog, Prediction, PredictionOutlet, top_k
from bci_stream.ring_buffer import RingBuffer
from bci_stream.source import LSLSource, SourceConfig, StreamLostError
from bci_stream.state import SharedState

log = logging.getLogger(__name__)

GIL_SWITCH_INTERVAL_S = 0.0005


@contextmanager
def decoding_priority() -> Iterator[None]:
    """Settings of the process while the decoding loop runs.

    - One BLAS thread: a second one busy-waits a whole core between the small STFT products
      (111 % vs 12 % CPU for the same p50, tools/bench_latency.py) and competes with acquisition.
    - A 0.5 ms GIL switch interval instead of Python's 5 ms: another Python thread (the viewer, or a
      renderer run in-process) holds the GIL up to that long before the decoding thread gets it back
      (beside an in-process renderer on an H200 machine: decision p99 5.7 -> 5.0 ms; the child-process
      renderer leaves it at 1.6 ms, tools/bench_render.py --decoder).
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        sys.setswitchinterval(previous)


@dataclass(frozen=True)
class LiveConfig:
    """How the live session runs.

    Attributes
    ----------
    stream : EEG stream name (None: first stream of type EEG).
    markers : marker stream name (None: no markers in continuous mode; the first
        "Markers" stream in event mode).
    mode : "continuous" (a decision every hop) or "event" (one per stimulus marker, once its
        epoch is complete).
    hop : seconds between decisions in continuous mode (None: the model card's).
    smoothing : decisions averaged (continuous mode).
    log_path : JSONL session log (None: none).
    outlet_name : name of the predictions LSL outlet.
    lost_after : seconds without samples before the stream counts as lost.
    resolve_timeout : seconds to wait for the stream at start.
    buffer_seconds : ring buffer length.
    providers : ONNX Runtime providers: "auto", "cpu" or "cuda".
    """

    stream: str | None = None
    markers: str | None = None
    mode: str = "continuous"
    hop: float | None = None
    smoothing: int = 1
    log_path: Path | None = None
    outlet_name: str = "bci-stream-predictions"
    lost_after: float = 1.0
    resolve_timeout: float = 10.0
    buffer_seconds: float = 6.0
    providers: str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in ("continuous", "event"):
            raise ValueError(f"mode must be 'continuous' or 'event'; got {self.mode!r}")


class LiveSession:
    """Owns the inlet, buffer, decoder and outputs; :meth:`run` is the loop.

    ``renderer`` (optional) needs ``submit(prediction)`` that never blocks; every callable in
    ``listeners`` is called with each :class:`Prediction` on the loop thread (keep them quick).
    """

    def __init__(self, decoder: Decoder, config: LiveConfig = LiveConfig(), renderer=None,
                 state: SharedState | None = None, listeners: list[Callable[[Prediction], None]] | None = None):
        card = decoder.card
        self.decoder, self.config, self.card, self.renderer = decoder, config, card, renderer
        self.listeners = list(listeners or [])
        self.source = LSLSource(card.ch_names, card.sfreq, SourceConfig(
            name=config.stream, lost_after=config.lost_after, resolve_timeout=config.resolve_timeout))
        self.window = card.window_samples
        self.offset = card.offset_samples
        self.hop = max(1, int(round((config.hop or card.hop) * card.sfreq)))
        capacity = max(int(config.buffer_seconds * card.sfreq), 2 * (self.window + self.offset))
        self.ring = RingBuffer(card.n_channels, capacity)
        self.state = state or SharedState()
        self.state.update(class_names=list(card.class_names), provider=decoder.provider, stream_name=config.stream or "")
        self.decoder.reset(smoothing=config.smoothing)
        self.outlet: PredictionOutlet | None = None
        self.jsonl = JsonlLog(config.log_path, card.class_names, on_error=self.state.report_log_error) \
            if config.log_path else None
        want_markers = config.mode == "event" or config.markers is not None
        self.markers = MarkerSource(config.markers) if want_markers else None
        self._pending: list[tuple[float, str]] = []
        self._next_end: int | None = None
        self._stop = threading.Event()
        self._deadline: float | None = None
        self._features_shown = np.zeros(card.feature_shape(), np.float32)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Connect to the stream (and markers); raises if it is absent or does not fit the model."""
        if not self.source.connect():
            raise StreamLostError(
                f"no LSL stream {'named ' + repr(self.config.stream) if self.config.stream else 'of type EEG'} "
                f"found within {self.config.resolve_timeout:g} s"
            )
        self.state.update(stream_status="connected", stream_name=self.source.info.name())
        if self.markers is not None and not self.markers.connect(timeout=2.0):
            if self.config.mode == "event":
                raise StreamLostError(f"no marker stream {self.config.markers or '(type Markers)'} found for event mode")
            self.markers = None
        self.outlet = PredictionOutlet(self.card.class_names, name=self.config.outlet_name)
        if self.jsonl:
            self.jsonl.event("session_start", stream=self.source.info.name(), mode=self.config.mode,
                             provider=self.decoder.provider, hop_samples=self.hop, model_classes=self.card.n_classes)

    def stop(self) -> None:
        self._stop.set()

    def set_recording(self, path: str | Path | None) -> None:
        """Start writing the JSONL log to ``path`` (None: stop and close the current one)."""
        previous, self.jsonl = self.jsonl, JsonlLog(path, self.card.class_names,
                                                     on_error=self.state.report_log_error) if path else None
        if previous is not None:
            previous.close()
        self.state.update(message=f"recording to {path}" if path else "recording stopped")

    def switch_renderer(self, kind: str) -> None:
        """Replace the renderer by one of ``kind`` ("gallery", "diffusion", "none"), keeping its settings."""
        from dataclasses import replace

        from bci_stream.render import RenderConfig, RenderWorker

        old, self.renderer = self.renderer, None
        if old is not None:
            old.stop()
        self.state.update(renderer_error="", renderer_kind=kind)
        if kind != "none":
            base = old.config if old is not None else RenderConfig()
            self.renderer = RenderWorker(replace(base, kind=kind), list(self.card.class_names), self.state,
                                         list(self.card.class_ids)).start()

    def close(self) -> None:
        self.source.close()
        self.state.update(stream_status="stopped")
        if self.jsonl:
            self.jsonl.event("session_end", decisions=self.state.n_decisions, lost_samples=self.source.lost_samples)
            self.jsonl.close()
        self.outlet = None

    def run(self, seconds: float | None = None) -> None:
        """Loop until :meth:`stop` or ``seconds`` elapse (LSL clock). Connects first if needed."""
        if self.outlet is None:
            self.start()
        self._deadline = None if seconds is None else pylsl.local_clock() + seconds
        try:
            with decoding_priority():
                while not self._stop.is_set() and not self._past_deadline():
                    self.step(timeout=0.05)
        finally:
            self.close()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and pylsl.local_clock() >= self._deadline

    # --- one turn of the loop -----------------------------------------------------------------
    def step(self, timeout: float = 0.05) -> None:
        """Pull what is ready (waiting up to ``timeout`` s), then make every decision that is due."""
        try:
            samples, stamps = self.source.pull(timeout)
        except StreamLostError as err:
            self._recover(err)
            return
        if len(stamps):
            self.ring.write(samples, stamps)
        if self.markers is not None:
            self._pending.extend(self.markers.pull())
        if self.config.mode == "continuous":
            self._continuous()
        else:
            self._event_locked()

    def _continuous(self) -> None:
        ring = self.ring
        if ring.count - ring.start_index < self.window:
            return
        if self._next_end is None or ring.count - self._next_end > 5 * self.hop:
            self._next_end = ring.count  # first window, or skip a backlog rather than fall behind
        while self._next_end <= ring.count:
            self._decide(self._next_end, marker=None)
            self._next_end += self.hop
        if self._pending:
            with self.state.lock:
                self.state.markers.extend(self._pending)
                self.state.last_marker = self._pending[-1][1]
            self._pending.clear()

    def _event_locked(self) -> None:
        keep = []
        latest_t = self.ring.latest(1)[1][0] if self.ring.available else -np.inf
        half_sample = 0.5 / self.card.sfreq
        for t, text in self._pending:
            if t - half_sample > latest_t:
                keep.append((t, text))  # its onset sample has not arrived yet
                continue
            onset = self.ring.nearest_index(t, tolerance=2 * half_sample)  # the sample nearest the marker
            if onset is None:
                if self.jsonl:
                    self.jsonl.event("marker_dropped", marker=text, t_marker=t, reason="no buffered sample at its time")
                continue
            end = onset + self.offset + self.window
            if end > self.ring.count:
                keep.append((t, text))
                continue
            with self.state.lock:
                self.state.markers.append((t, text))
                self.state.last_marker = text
            self._decide(end, marker=text)
        self._pending = keep

    def _decide(self, end: int, marker: str | None) -> None:
        data, times = self.ring.window(end, self.window)
        window = data.T  # (n_channels, n_times) view
        reason = _bad_window(window, self.card.ch_names)
        if reason:
            self.state.update(n_withheld=self.state.n_withheld + 1, withheld_reason=reason)
            if self.jsonl:
                self.jsonl.event("withheld", window_end_sample=end, t_lsl=float(times[-1]), reason=reason, marker=marker)
            return
        probs = self.decoder.classify(window)
        if marker is None:
            probs = self.decoder.smooth(probs)
        t_lsl = float(times[-1])
        t_emitted = pylsl.local_clock()
        p = Prediction(t_lsl=t_lsl, t_emitted=t_emitted, probabilities=probs, top5=top_k(probs, 5),
                       window_end_sample=end, latency_ms=(t_emitted - t_lsl) * 1e3, marker=marker)
        self.outlet.push(p)
        if self.renderer is not None:
            self.renderer.submit(p)
        if self.jsonl:
            self.jsonl.prediction(p)
        st = self.state
        with st.lock:
            st.n_decisions += 1
            st.probabilities, st.top5 = probs, p.top5
            st.latencies.append(p.latency_ms)
            st.lost_samples = self.source.lost_samples
            np.copyto(self._features_shown, self.decoder.last_features)  # no allocation on the hot path
            st.features = self._features_shown
        for listener in self.listeners:
            listener(p)

    def _recover(self, err: Exception) -> None:
        """Report the loss, keep the app alive, reconnect when the stream returns, log the gap."""
        t_lost = pylsl.local_clock()
        last_t = float(self.ring.latest(1)[1][0]) if self.ring.available else None
        log.warning("stream lost: %s; waiting for it to return", err)
        self.state.update(stream_status="lost", message=str(err))
        if self.jsonl:
            self.jsonl.event("stream_lost", reason=str(err), last_sample=self.ring.count, t_last_sample=last_t)
        self.ring.reset()
        self.decoder.reset()
        self._next_end = None
        self._pending.clear()
        while not self._stop.is_set() and not self._past_deadline():
            if self.source.connect(timeout=1.0):  # liblsl answers a resolve after ~0.5 s
                down = pylsl.local_clock() - t_lost
                log.warning("stream back after %.2f s", down)
                with self.state.lock:
                    self.state.stream_status = "connected"
                    self.state.gaps.append((t_lost, down))
                    self.state.message = f"stream back after {down:.2f} s"
                if self.jsonl:
                    self.jsonl.event("stream_restored", seconds_down=round(down, 3), resume_sample=self.ring.count)
                return


def _bad_window(window: np.ndarray, ch_names: list[str]) -> str:
    """Why a window ``(n_channels, n_times)`` must not be classified ("" if it is fine)."""
    def named(mask: np.ndarray) -> str:
        bad = [ch_names[i] for i in np.flatnonzero(mask)]
        return f"{len(bad)} channel(s): {', '.join(bad[:6])}{' ...' if len(bad) > 6 else ''}"

    if not np.isfinite(window).all():
        return "non-finite samples (NaN/Inf) on " + named(~np.isfinite(window).all(axis=1))
    flat = window.max(axis=1) == window.min(axis=1)
    if flat.any():
        return "flat-lined signal on " + named(flat)
    return ""
