"""Shared state between the decoding loop (writer) and the viewer / renderer (readers)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RenderedImage:
    """A picture from the renderer: ``image`` (H, W, 3) uint8, for class ``class_index``, and the
    decision it shows (so a picture can be traced back to its stimulus: ``tools/bench_e2e.py``)."""

    image: np.ndarray
    class_index: int
    class_name: str
    t_created: float  # LSL seconds
    kind: str  # "diffusion" | "gallery"
    seconds: float  # render time
    t_decision: float | None = None  # the decision's t_lsl (its window's last sample), LSL seconds
    marker: str | None = None  # the stimulus marker of an event-locked decision
    t_marker: float | None = None  # that marker's LSL time


_NOT_SHOWN = ("lock", "latencies", "markers", "picture_listeners")  # not in a snapshot (markers: copied)


@dataclass
class SharedState:
    """Everything the viewer shows. Writers update fields under ``lock``; readers call :meth:`snapshot`.

    Latency figures are over the last ``latencies.maxlen`` decisions.
    """

    class_names: list[str] = field(default_factory=list)
    stream_status: str = "connecting"  # connecting | connected | lost | reconnected | stopped
    stream_name: str = ""
    marker_status: str = "none"  # none | connected | lost
    marker_stream: str = ""
    provider: str = ""
    n_decisions: int = 0
    n_withheld: int = 0
    n_skipped: int = 0  # continuous decisions skipped to catch up after a backlog
    withheld_reason: str = ""
    ood_rms: float = float("nan")  # out-of-distribution monitor (bci_stream.live.ood)
    ood_bias: float = float("nan")
    ood_warning: str = ""
    event_accuracy: dict = field(default_factory=dict)  # RunningAccuracy.summary() in event mode
    event_recent: list = field(default_factory=list)  # (marker, truth, decided, hit) of the last decisions
    lost_samples: int = 0
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (t_lost, seconds down)
    probabilities: np.ndarray | None = None
    top5: list[int] = field(default_factory=list)
    retrieval: dict | None = None  # embedding models: the last decision's {rows, ids, labels, similarities}
    features: np.ndarray | None = None  # (n_channels, n_freqs, n_frames) of the last window
    latencies: deque = field(default_factory=lambda: deque(maxlen=1000))
    markers: deque = field(default_factory=lambda: deque(maxlen=50))  # (t_lsl, text)
    image: RenderedImage | None = None
    renderer_kind: str = "none"
    renderer_fps: float = 0.0
    renderer_error: str = ""
    message: str = ""
    model: str = ""  # the model file decoding now (swap_decoder changes it)
    model_since: float = float("nan")  # LSL time it went live
    recording: dict = field(default_factory=dict)  # bci_stream.recording.labrecorder.RecordStatus as a dict ({} when none)
    calibration: dict = field(default_factory=dict)  # bci_stream.recording.calibrate progress ({} when not calibrating)
    accumulation: dict = field(default_factory=dict)  # bci_stream.live.accumulate.Accumulator.summary() ({}: off)
    channel_events: dict = field(default_factory=dict)  # ChannelEvents.summary() at the end ({}: none)
    adaptation: dict = field(default_factory=dict)  # session adaptation: FeatureRecentring.summary() once ready ({}: not yet / off)
    log_error: str = ""  # the JSONL log could not be written (see publish.JsonlLog); "" while it is fine
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # called (no argument, on the renderer's thread) after each new picture: the viewer is told, not polling
    picture_listeners: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def update(self, **fields) -> None:
        with self.lock:
            for key, value in fields.items():
                setattr(self, key, value)

    def record_decision(self, probabilities: np.ndarray, top5: list[int], latency_ms: float, lost_samples: int,
                        ood: tuple[float, float, str], features: np.ndarray,
                        accuracy: tuple[dict, list] | None = None, retrieval=None) -> None:
        """One decision, under the lock (the decoding loop's only write per decision): its
        probabilities, latency, the lost-sample count, the OOD monitor ``(rms, bias, warning)``, the
        features (copied into a buffer kept here: no allocation per decision), in event mode the
        running accuracy ``(summary, recent)``, and an embedding model's nearest images
        (a :class:`bci_stream.retrieval.retriever.Retrieval`, kept as rows, ids, labels and similarities)."""
        with self.lock:
            self.n_decisions += 1
            self.probabilities, self.top5 = probabilities, top5
            if retrieval is not None:
                self.retrieval = {"rows": retrieval.rows, "ids": retrieval.ids, "labels": retrieval.labels,
                                  "similarities": retrieval.similarities}
            self.latencies.append(latency_ms)
            self.lost_samples = lost_samples
            self.ood_rms, self.ood_bias, self.ood_warning = ood
            if accuracy is not None:
                self.event_accuracy, self.event_recent = accuracy
            if self.features is None or self.features.shape != features.shape:
                self.features = np.empty_like(features)
            np.copyto(self.features, features)

    def show_image(self, image: RenderedImage, **fields) -> None:
        """A new picture (and other ``fields``), under the lock; then every picture listener is told."""
        with self.lock:
            self.image = image
            for key, value in fields.items():
                setattr(self, key, value)
        self._picture_changed()

    def current_image(self) -> RenderedImage | None:
        """The newest picture (None before the first)."""
        with self.lock:
            return self.image

    def _picture_changed(self) -> None:
        for listener in list(self.picture_listeners):
            listener()

    def add_gap(self, start: float, seconds_down: float) -> None:
        """The stream is back after ``seconds_down`` s without data (from LSL time ``start``)."""
        with self.lock:
            self.stream_status = "connected"
            self.gaps.append((start, seconds_down))
            self.message = f"stream back after {seconds_down:.2f} s without data"

    def add_markers(self, markers: list[tuple[float, str]]) -> None:
        """Record stimulus markers ``[(t_lsl, text)]`` for the viewer."""
        if markers:
            with self.lock:
                self.markers.extend(markers)

    def report_log_error(self, message: str) -> None:
        """``JsonlLog(on_error=...)``: the session log failed (``message``) or recovered with nothing
        lost (""); shown in the status line and the summary."""
        self.update(log_error=message)

    def latency_percentiles(self) -> tuple[float, float]:
        """(p50, p99) decision latency in ms over recent decisions (nan when none)."""
        with self.lock:
            values = np.array(self.latencies)
        if values.size == 0:
            return float("nan"), float("nan")
        return float(np.percentile(values, 50)), float(np.percentile(values, 99))

    def summary(self) -> dict:
        """The session's closing figures: decisions, withheld windows, latency p50/p99 (ms), lost
        samples, gaps, ``log_error`` ("" unless the JSONL log lost records), and the accumulation's,
        the events channel's and the session adaptation's summaries ({} when off)."""
        p50, p99 = self.latency_percentiles()
        with self.lock:
            return {"n_decisions": self.n_decisions, "n_withheld": self.n_withheld, "n_skipped": self.n_skipped,
                    "p50": p50, "p99": p99, "lost_samples": self.lost_samples, "gaps": len(self.gaps),
                    "seconds_down": round(sum(d for _, d in self.gaps), 3), "marker_status": self.marker_status,
                    "ood_warning": self.ood_warning, "log_error": self.log_error,
                    "event_accuracy": dict(self.event_accuracy), "accumulation": dict(self.accumulation),
                    "channel_events": dict(self.channel_events), "adaptation": dict(self.adaptation)}

    def snapshot(self) -> dict:
        """A consistent shallow copy of the fields, for the GUI thread."""
        with self.lock:
            out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in _NOT_SHOWN}
            out["markers"] = list(self.markers)
            out["n_latencies"] = len(self.latencies)
        out["latency_p50"], out["latency_p99"] = self.latency_percentiles()
        return out
