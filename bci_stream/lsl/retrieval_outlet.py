"""LSL outlets of an embedding model's decisions (retrieval from a gallery index).

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

import numpy as np
import pylsl

from bci_stream.retrieval.index import GalleryIndex
from bci_stream.live.publish import Prediction, predictions_info

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

    def push(self, p: Prediction) -> None:
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
