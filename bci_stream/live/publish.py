"""Where decisions go: an LSL outlet of class probabilities and a JSONL session log."""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pylsl

if TYPE_CHECKING:
    from bci_stream.retrieval.retriever import Retrieval

log = logging.getLogger(__name__)


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
    truth, hit : event mode: the class the stimulus marker shows (:mod:`bci_stream.live.scoring`; None when
        it names none) and whether the top class is it.
    ood_rms, ood_bias : the out-of-distribution monitor's running RMS and mean of the features'
        z-scores (in distribution about 1 and 0; see :mod:`bci_stream.live.ood`).
    retrieval : an embedding model's decision: the nearest gallery images
        (:class:`bci_stream.retrieval.retriever.Retrieval`; None for classifiers). ``probabilities`` and ``top5``
        are then over the gallery's classes (:class:`bci_stream.retrieval.retriever.Retriever`).
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
    truth: int | None = None  # event mode: the class the marker shows (None: unknown)
    hit: bool | None = None  # event mode: top-1 == truth
    extra: dict = field(default_factory=dict)
    retrieval: Retrieval | None = None

    def to_record(self, class_names: list[str]) -> dict:
        """The JSONL decision record. A retrieval decision writes its ``topk_*`` fields and the class
        probabilities of its top-5 classes only (``top5_probabilities``; a gallery may hold
        thousands of classes), and ``truth_name`` beside ``truth``."""
        record = {
            "t_lsl": self.t_lsl,
            "t_emitted": self.t_emitted,
            "window_end_sample": self.window_end_sample,
            "latency_ms": round(self.latency_ms, 4),
            "top5": self.top5,
            "top5_names": [class_names[i] for i in self.top5],
            "ood_rms": round(self.ood_rms, 3) if np.isfinite(self.ood_rms) else None,
            "ood_bias": round(self.ood_bias, 3) if np.isfinite(self.ood_bias) else None,
        }
        if self.retrieval is None:
            record["probabilities"] = [round(float(p), 6) for p in self.probabilities]
        else:
            record["top5_probabilities"] = [round(float(self.probabilities[i]), 6) for i in self.top5]
            record.update(self.retrieval.to_record())
        if self.marker is not None:
            record["marker"] = self.marker
            record["truth"] = self.truth
            record["hit"] = self.hit
            if self.retrieval is not None:
                record["truth_name"] = class_names[self.truth] if self.truth is not None else None
        record.update(self.extra)
        return record


def top_k(probabilities: np.ndarray, k: int = 5) -> list[int]:
    """Indices of the ``k`` largest probabilities, largest first."""
    k = min(k, len(probabilities))
    part = np.argpartition(-probabilities, k - 1)[:k]
    return [int(i) for i in part[np.argsort(-probabilities[part])]]


def predictions_info(name: str, source_id: str, labels: list[str], model: dict | None = None,
                     n_classes: int | None = None) -> pylsl.StreamInfo:
    """The ``StreamInfo`` of a predictions outlet: type ``Predictions``, double, irregular rate, one
    channel per label, described as the XDF meta-data conventions do (``desc/channels/channel`` with
    ``label``, ``unit``, ``type``). The first ``n_classes`` channels are probabilities (unit
    "probability"), the rest :data:`PredictionOutlet.EXTRA`. ``model`` (:func:`model_desc`) adds
    ``desc/model`` (name, file, hashes, output kind) and ``desc/classes/class`` (index, id, name)."""
    from bci_stream.lsl.stream_meta import add_channels

    info = pylsl.StreamInfo(name, "Predictions", len(labels), pylsl.IRREGULAR_RATE, pylsl.cf_double64, source_id)
    n_classes = len(labels) if n_classes is None else n_classes
    units = ["probability"] * n_classes + [EXTRA_UNITS.get(label, "") for label in labels[n_classes:]]
    types = ["Probability"] * n_classes + [EXTRA_TYPES.get(label, "Misc") for label in labels[n_classes:]]
    add_channels(info.desc(), labels, units, types)
    if model:
        node = info.desc().append_child("model")
        for key in ("name", "file", "sha256", "card_sha256", "output_kind", "card_format", "student", "training_data"):
            node.append_child_value(key, str(model.get(key, "")))
        classes = info.desc().append_child("classes")
        for i, (cid, cname) in enumerate(zip(model.get("class_ids", []), model.get("class_names", []))):
            c = classes.append_child("class")
            c.append_child_value("index", str(i))
            c.append_child_value("id", str(cid))
            c.append_child_value("name", str(cname))
    return info


#: units and types of the outlet's non-probability channels (``desc/channels/channel``)
EXTRA_UNITS = {**{f"top{i}": "index" for i in range(1, 6)}, "window_end_sample": "samples", "latency_ms": "ms",
               "t_emitted": "s", "repeats": "count"}
EXTRA_TYPES = {**{f"top{i}": "ClassIndex" for i in range(1, 6)}, "window_end_sample": "SampleIndex",
               "latency_ms": "Latency", "t_emitted": "Timestamp", "repeats": "Repeats"}


def model_desc(card, model_path: str | Path = "", model_sha256: str = "") -> dict:
    """What a predictions outlet says about its model: ``name`` (the file's stem), ``file``, ``sha256``
    (of the ONNX file), ``card_sha256`` (of the card's JSON: two files with one card decide alike),
    ``output_kind``, ``card_format``, ``student``, ``training_data``, ``class_ids``, ``class_names``."""
    import hashlib

    return {"name": Path(model_path).stem if model_path else "", "file": str(model_path), "sha256": model_sha256,
            "card_sha256": hashlib.sha256(card.to_json().encode()).hexdigest(), "output_kind": card.output_kind,
            "card_format": card.format_version, "student": card.architecture.get("student", ""),
            "training_data": card.training_data, "class_ids": list(card.class_ids),
            "class_names": list(card.class_names)}


class PredictionOutlet:
    """LSL outlet: one channel per class (labels = class names), then ``top1..top5`` (class indices),
    ``window_end_sample``, ``latency_ms``, ``t_emitted``, then the ``extra`` fields of
    :attr:`Prediction.extra` asked for (e.g. ``repeats`` with accumulation on; NaN when a decision
    has none); each sample stamped with ``t_lsl``.
    ``model`` (:func:`model_desc`) goes into the stream's ``desc`` (:func:`predictions_info`)."""

    EXTRA = ["top1", "top2", "top3", "top4", "top5", "window_end_sample", "latency_ms", "t_emitted"]

    def __init__(self, class_names: list[str], name: str = "bci-stream-predictions", source_id: str | None = None,
                 model: dict | None = None, extra: tuple[str, ...] = ()):
        self.n_classes = len(class_names)
        self.source_id = source_id or f"{name}-outlet"
        self.extra = tuple(extra)
        self._end = self.n_classes + len(self.EXTRA)  # where the extra fields begin
        info = predictions_info(name, self.source_id, list(class_names) + self.EXTRA + list(self.extra), model=model,
                                n_classes=self.n_classes)
        self.outlet = pylsl.StreamOutlet(info)
        self._sample = np.zeros(info.channel_count(), np.float64)

    def push(self, p: Prediction) -> None:
        s = self._sample
        s[: self.n_classes] = p.probabilities
        s[self.n_classes : self.n_classes + len(p.top5)] = p.top5
        s[self._end - 3 : self._end] = (p.window_end_sample, p.latency_ms, p.t_emitted)
        for i, key in enumerate(self.extra):
            s[self._end + i] = p.extra.get(key, np.nan)
        self.outlet.push_sample(s, p.t_lsl)


class LogOpenError(RuntimeError):
    """The JSONL session log cannot be opened for writing (a folder, no permission, ...)."""


def finite_json(record: dict) -> str:
    """``record`` as one JSON line; non-finite floats (never valid JSON) become ``null``.

    ``json.dumps`` writes NaN as a bare ``NaN`` that strict readers refuse; the common case (all
    finite) pays one ``allow_nan=False`` attempt only.
    """
    try:
        return json.dumps(record, allow_nan=False)
    except ValueError:
        return json.dumps(_nulls_for_non_finite(record), allow_nan=False)


def _nulls_for_non_finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _nulls_for_non_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulls_for_non_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _nulls_for_non_finite(value.item())
    return value


class JsonlLog:
    """Append-only JSON-lines session log written by a background thread.

    The hot path only appends to a bounded queue (``max_queue`` records; when the writer falls
    behind, the oldest are dropped and counted, so memory stays flat). The writer writes whole lines
    at least every ``flush_every`` s, so a crash loses at most that much. A write that fails (disk
    full, I/O error) is cut back to the last whole line, reported once through ``on_error(message)``
    and retried every ``retry_every`` s; decoding never notices and :meth:`close` never raises.
    Events (stream lost/restored, withheld windows) share the file. The file is opened at once (a
    path that cannot be written is refused before decoding starts); one this log created and
    never wrote a record to is removed at :meth:`close`.

    Attributes (read any time): ``written`` records on disk, ``dropped`` records lost (queue full
    or given up at close), ``error`` the current write error ("" if none), ``failed`` whether
    records were lost. ``on_error`` gets a one-line message when writing fails, "" when it recovers
    with nothing lost, and the final :meth:`summary_line` at close if records were lost.
    """

    def __init__(self, path: str | Path, class_names: list[str], flush_every: float = 0.5,
                 on_error: Callable[[str], None] | None = None, max_queue: int = 4096, retry_every: float = 1.0):
        self.path = Path(path)
        self.class_names = class_names
        self.on_error = on_error
        from bci_stream.io.safe_write import WriteTargetError, check_writable_target

        try:  # appended to in place (never renamed): a FIFO would block the open, a folder cannot be opened
            check_writable_target(self.path, create=True, append=True)
        except WriteTargetError as err:
            raise LogOpenError(f"cannot write the session log: {err}") from None
        try:
            self._created = not self.path.exists()  # ours to remove at close if it never got a record
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise LogOpenError(f"cannot write the session log {self.path}: {err.strerror or err}; "
                               "pass --log a writable file path") from err
        self._good_size = _size(self._fd)  # the file ends in a whole line here
        self._queue: deque = deque(maxlen=max_queue)
        self._pending: deque[bytes] = deque(maxlen=max_queue)  # encoded lines not yet on disk
        self._flush_every, self._retry_every = flush_every, retry_every
        self.written = 0
        self._dropped_queue = 0  # counted on the decoding thread
        self._dropped_writer = 0  # counted on the writer thread
        self.error = ""
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="jsonl-log", daemon=True)
        self._thread.start()

    # --- decoding side (never blocks, never raises) ---------------------------------------------
    def prediction(self, p: Prediction) -> None:
        self._put(p)

    def event(self, kind: str, **fields) -> None:
        self._put({"event": kind, "t": pylsl.local_clock(), **fields})

    def _put(self, item) -> None:
        if len(self._queue) == self._queue.maxlen:
            self._dropped_queue += 1  # the deque drops its oldest record on append
        self._queue.append(item)

    @property
    def dropped(self) -> int:
        """Records lost: pushed out of a full queue, or not written when the log closed."""
        return self._dropped_queue + self._dropped_writer

    # --- writer side ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self._flush_every):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        """Encode what is queued and write it (or keep it for the next try while the disk fails)."""
        while self._queue:
            item = self._queue.popleft()
            record = item.to_record(self.class_names) if isinstance(item, Prediction) else item
            if len(self._pending) == self._pending.maxlen:
                self._dropped_writer += 1
            self._pending.append((finite_json(record) + "\n").encode())
        if not self._pending or (self.error and time.monotonic() < self._retry_at):
            return
        header = b""
        if self.error and self.dropped:  # writable again after a failure: say what is missing
            header = (finite_json({"event": "log_records_dropped", "t": pylsl.local_clock(), "dropped": self.dropped,
                                   "error": self.error}) + "\n").encode()
        try:
            self._write_all(header + b"".join(self._pending))
        except OSError as err:
            self._fail(err)
            return
        self.written += len(self._pending)
        self._pending.clear()
        if self.error:
            log.warning("session log %s writable again (%d records lost)", self.path, self.dropped)
            self.error = ""
            self._report(self.summary_line() if self.dropped else "")  # "": nothing lost, the problem is over

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            if n == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[n:]
        self._good_size += len(data)

    def _fail(self, err: OSError) -> None:
        """Cut the file back to its last whole line, remember the error, report it once per episode."""
        try:
            os.ftruncate(self._fd, self._good_size)
        except OSError:
            pass  # /dev/full and pipes cannot be truncated; nothing was kept there anyway
        first = not self.error
        self.error = str(err.strerror or err)
        self._retry_at = time.monotonic() + self._retry_every
        if first:
            log.error("cannot write the session log %s: %s; decoding goes on, records are kept (up to %d) "
                      "and retried", self.path, self.error, self._pending.maxlen)
            self._report(self.summary_line())

    @property
    def failed(self) -> bool:
        """True when records were lost (or the log cannot be written now)."""
        return bool(self.error) or self.dropped > 0

    def _report(self, message: str) -> None:
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # noqa: BLE001 - a broken callback must not stop the log
                log.exception("log error callback failed")

    def summary_line(self) -> str:
        """One line on the log's health, e.g. ``"log /x.jsonl: No space left on device; 0 records written,
        120 lost"``."""
        state = self.error or ("writable again" if self.dropped else "ok")
        return f"log {self.path}: {state}; {self.written} records written, {self.dropped} lost"

    def close(self) -> None:
        """Write what is queued (one last try), stop the writer and close the file. Never raises."""
        if self._closed:
            return
        self._closed = True
        self._retry_at = 0.0
        self._stop.set()
        self._thread.join(timeout=5)
        if self._pending:  # the last try failed too: those records are lost
            self._dropped_writer += len(self._pending)
            self._pending.clear()
        try:
            os.close(self._fd)
        except OSError as err:
            self.error = str(err.strerror or err)
        if self._created and self.written == 0 and not self.failed and self._good_size == 0:
            try:  # opened early to refuse a bad path at once; a session stopped before its first record
                self.path.unlink()  # (Ctrl-C while waiting for the stream) leaves no empty file behind
            except OSError:
                pass
        if self.failed:
            self._report(self.summary_line())


def _size(fd: int) -> int:
    try:
        return os.fstat(fd).st_size
    except OSError:
        return 0
