"""The LSL outlets of the live decisions: class probabilities (:class:`PredictionOutlet`) and an
embedding model's retrieval (:class:`RetrievalOutlet`). Both are sinks of the live loop
(:class:`bci_stream.live.interfaces.Sink`): ``push(prediction)``, ``close()``.

An embedding model's outlets (retrieval from a gallery index):

**Predictions stream** ``<name>`` (type ``Predictions``, ``cf_double64``, irregular rate; each sample
stamped with the LSL time of the window's last sample), channels in this order (k = ``--top-k``,
default 5; D = the embedding's dimension)::

    top1_row ... topK_row                 gallery row index of the k nearest images (exact in float64)
    top1_similarity ... topK_similarity   their cosine similarity with the decoded embedding, [-1, 1]
    top1_score ... topK_score             softmax(logit_scale * similarity) over the whole gallery
    window_end_sample, latency_ms, t_emitted   as for classifiers
    emb_0 ... emb_{D-1}                   the decoded embedding (unit length), with --publish-embedding only

The stream's ``desc`` carries ``<retrieval>``: ``space``, ``checkpoint_sha256`` (the image model's
weights), ``gallery_file``, ``gallery_sha256`` (of the index file), ``gallery_size``, ``k``,
``logit_scale``, and ``ids`` (the gallery's image ids as a JSON list, row order) when the gallery has
at most :data:`MAX_IDS_IN_DESC` rows, else ``ids_in`` naming the index file.

**Companion stream** ``<name>-topk`` (type ``PredictionIds``, one ``cf_string`` channel, same time
stamps): per decision the JSON object ``{"ids": [...], "labels": [...], "similarities": [...],
"window_end_sample": n}``, so a client needs no gallery file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np
import pylsl

from bci_stream.retrieval.index import GalleryIndex


class Published(Protocol):
    """What the outlets read of a decision (:class:`bci_stream.live.prediction.Prediction`, declared here
    so that this transport layer never imports the live loop)."""

    t_lsl: float
    t_emitted: float
    probabilities: np.ndarray
    top5: list[int]
    window_end_sample: int
    latency_ms: float
    extra: dict  # a stage's own fields (e.g. ``repeats``)
    retrieval: object | None  # bci_stream.retrieval.retriever.Retrieval: rows, similarities, scores, embedding, ids, labels


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
    ``window_end_sample``, ``latency_ms``, ``t_emitted``, then the ``extra`` fields asked for (e.g.
    ``repeats`` with accumulation on); each sample stamped with ``t_lsl``.
    ``model`` (:func:`model_desc`) goes into the stream's ``desc`` (:func:`predictions_info`)."""

    EXTRA = ["top1", "top2", "top3", "top4", "top5", "window_end_sample", "latency_ms", "t_emitted"]

    def __init__(self, class_names: list[str], name: str = "bci-stream-predictions", source_id: str | None = None,
                 model: dict | None = None, extra: tuple[str, ...] = ()):
        self.n_classes = len(class_names)
        self.source_id = source_id or f"{name}-outlet"
        self.extra = tuple(extra)  # a stage's fields after the fixed ones (NaN when a decision has none)
        self._end = self.n_classes + len(self.EXTRA)  # where the extra fields begin
        info = predictions_info(name, self.source_id, list(class_names) + self.EXTRA + list(self.extra), model=model,
                                n_classes=self.n_classes)
        self.outlet = pylsl.StreamOutlet(info)
        self._sample = np.zeros(info.channel_count(), np.float64)

    def push(self, p: Published) -> None:
        s = self._sample
        s[: self.n_classes] = p.probabilities
        s[self.n_classes : self.n_classes + len(p.top5)] = p.top5
        s[self._end - 3 : self._end] = (p.window_end_sample, p.latency_ms, p.t_emitted)
        for i, key in enumerate(self.extra):
            s[self._end + i] = p.extra.get(key, np.nan)
        self.outlet.push_sample(s, p.t_lsl)

    def close(self) -> None:
        """Nothing to release: the stream goes with the last reference to this outlet."""


MAX_IDS_IN_DESC = 4096  # rows; the ids of larger galleries are in the index file (a stream's info stays small)
TAIL = ["window_end_sample", "latency_ms", "t_emitted"]


def retrieval_channel_labels(k: int, dim: int | None = None) -> list[str]:
    """The predictions stream's channel labels for ``k`` images (and a ``dim``-d embedding, if published)."""
    labels = [f"top{i}_{kind}" for kind in ("row", "similarity", "score") for i in range(1, k + 1)] + TAIL
    return labels + ([f"emb_{i}" for i in range(dim)] if dim else [])


class RetrievalOutlet:
    """The two LSL outlets of an embedding model; :meth:`push` publishes one decision on both."""

    def __init__(self, gallery: GalleryIndex, k: int, logit_scale: float, name: str = "bci-stream-predictions",
                 source_id: str | None = None, publish_embedding: bool = False, gallery_file: str | Path = "",
                 gallery_sha256: str = ""):
        self.k = k
        self.dim = gallery.dim if publish_embedding else 0
        self.source_id = source_id or f"{name}-outlet"
        labels = retrieval_channel_labels(k, self.dim or None)
        info = predictions_info(name, self.source_id, labels)
        desc = info.desc().append_child("retrieval")
        for key, value in (("space", gallery.space), ("checkpoint_sha256", gallery.checkpoint_sha256),
                           ("gallery_file", str(gallery_file)), ("gallery_sha256", gallery_sha256),
                           ("gallery_size", str(gallery.size)), ("k", str(k)), ("logit_scale", f"{logit_scale:g}")):
            desc.append_child_value(key, value)
        if gallery.size <= MAX_IDS_IN_DESC:
            desc.append_child_value("ids", json.dumps(gallery.ids))
        else:
            desc.append_child_value("ids_in", f"{gallery_file} (metadata 'ids', row order)")
        self.outlet = pylsl.StreamOutlet(info)
        ids_info = pylsl.StreamInfo(f"{name}-topk", "PredictionIds", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                    f"{self.source_id}-topk")
        ids_info.desc().append_child("channels").append_child("channel").append_child_value("label", "topk_json")
        self.ids_outlet = pylsl.StreamOutlet(ids_info)
        self._sample = np.zeros(len(labels), np.float64)

    def push(self, p: Published) -> None:
        r, s, k = p.retrieval, self._sample, self.k
        n = len(r.rows)
        s[0:n] = r.rows
        s[k : k + n] = r.similarities
        s[2 * k : 2 * k + n] = r.scores
        s[3 * k : 3 * k + 3] = (p.window_end_sample, p.latency_ms, p.t_emitted)
        if self.dim:
            s[3 * k + 3 :] = r.embedding
        self.outlet.push_sample(s, p.t_lsl)
        text = json.dumps({"ids": r.ids, "labels": r.labels, "similarities": [round(float(v), 5) for v in r.similarities],
                           "window_end_sample": p.window_end_sample})
        self.ids_outlet.push_sample([text], p.t_lsl)

    def close(self) -> None:
        """Nothing to release: the streams go with the last reference to this outlet."""
