"""Where decisions go: an LSL outlet of class probabilities and a JSONL session log."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pylsl


@dataclass
class Prediction:
    """One decision (the contract shared by the LSL outlet and the JSONL log).

    Attributes
    ----------
    t_lsl : LSL time of the window's last sample, seconds.
    t_emitted : LSL time the decision was published, seconds.
    probabilities : ``(n_classes,)``, sums to 1.
    top5 : class indices, most probable first.
    window_end_sample : absolute index of the sample after the window (stream sample count).
    latency_ms : ``(t_emitted - t_lsl) * 1000``.
    marker : the stimulus marker the window is locked to (event mode), else None.
    ood_rms, ood_bias : the out-of-distribution monitor's running RMS and mean of the features'
        z-scores (in distribution about 1 and 0; see :mod:`bci_stream.ood`).
    """

    t_lsl: float
    t_emitted: float
    probabilities: np.ndarray
    top5: list[int]
    window_end_sample: int
    latency_ms: float
    marker: str | None = None
    ood_rms: float = float("nan")
    ood_bias: float = float("nan")
    extra: dict = field(default_factory=dict)

    def to_record(self, class_names: list[str]) -> dict:
        record = {
            "t_lsl": self.t_lsl,
            "t_emitted": self.t_emitted,
            "window_end_sample": self.window_end_sample,
            "latency_ms": round(self.latency_ms, 4),
            "top5": self.top5,
            "top5_names": [class_names[i] for i in self.top5],
            "probabilities": [round(float(p), 6) for p in self.probabilities],
            "ood_rms": round(self.ood_rms, 3) if np.isfinite(self.ood_rms) else None,
            "ood_bias": round(self.ood_bias, 3) if np.isfinite(self.ood_bias) else None,
        }
        if self.marker is not None:
            record["marker"] = self.marker
        record.update(self.extra)
        return record


def top_k(probabilities: np.ndarray, k: int = 5) -> list[int]:
    """Indices of the ``k`` largest probabilities, largest first."""
    k = min(k, len(probabilities))
    part = np.argpartition(-probabilities, k - 1)[:k]
    return [int(i) for i in part[np.argsort(-probabilities[part])]]


class PredictionOutlet:
    """LSL outlet: one channel per class (labels = class names), then ``top1..top5`` (class indices),
    ``window_end_sample``, ``latency_ms``, ``t_emitted``; each sample stamped with ``t_lsl``."""

    EXTRA = ["top1", "top2", "top3", "top4", "top5", "window_end_sample", "latency_ms", "t_emitted"]

    def __init__(self, class_names: list[str], name: str = "bci-stream-predictions", source_id: str | None = None):
        self.n_classes = len(class_names)
        self.source_id = source_id or f"{name}-outlet"
        info = pylsl.StreamInfo(name, "Predictions", self.n_classes + len(self.EXTRA), pylsl.IRREGULAR_RATE,
                                pylsl.cf_double64, self.source_id)
        channels = info.desc().append_child("channels")
        for label in list(class_names) + self.EXTRA:
            channels.append_child("channel").append_child_value("label", label)
        self.outlet = pylsl.StreamOutlet(info)
        self._sample = np.zeros(info.channel_count(), np.float64)

    def push(self, p: Prediction) -> None:
        s = self._sample
        s[: self.n_classes] = p.probabilities
        s[self.n_classes : self.n_classes + len(p.top5)] = p.top5
        s[-3:] = (p.window_end_sample, p.latency_ms, p.t_emitted)
        self.outlet.push_sample(s, p.t_lsl)


class JsonlLog:
    """Append-only JSON-lines session log written by a background thread.

    The hot path only enqueues; the writer flushes to the OS at least every ``flush_every`` s,
    so a crash loses at most that much. Events (stream lost/restored, withheld windows) share the file.
    """

    def __init__(self, path: str | Path, class_names: list[str], flush_every: float = 0.5):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.class_names = class_names
        self._file = self.path.open("a", encoding="utf-8")
        self._queue: queue.Queue = queue.Queue()
        self._flush_every = flush_every
        self._thread = threading.Thread(target=self._run, name="jsonl-log", daemon=True)
        self._thread.start()

    def prediction(self, p: Prediction) -> None:
        self._queue.put(p)

    def event(self, kind: str, **fields) -> None:
        self._queue.put({"event": kind, "t": pylsl.local_clock(), **fields})

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._flush_every)
            except queue.Empty:
                continue
            if item is None:
                break
            batch = [item]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            stop = batch[-1] is None
            for it in batch:
                if it is None:
                    continue
                record = it.to_record(self.class_names) if isinstance(it, Prediction) else it
                self._file.write(json.dumps(record) + "\n")
            self._file.flush()
            if stop:
                break

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        self._file.close()
