"""An embedding model's decision: the gallery images nearest to the decoded embedding.

:class:`Retriever` turns the network's output ``(D,)`` into

- the top-k gallery rows with their ids, labels, cosine similarities and scores
  ``softmax(logit_scale * similarity)`` over the whole gallery (:class:`Retrieval`);
- a decision in the gallery's classes (:meth:`bci_stream.retrieval.index.GalleryIndex.classes`), so that
  everything built for classifiers works unchanged: class probabilities = the sum of the scores of
  each class's images, and the top-5 classes ranked by their nearest image (the first is the class
  of the top-1 image).

**Scoring in event mode.** A stimulus marker names its class through the gallery: a marker equal to
a row's id (``"<synset>_<n>"`` for the phantom) is that row's class; a class name or class id, or
``<class id>_<n>``, names that class (:class:`bci_stream.live.scoring.MarkerTruth`). A retrieval is a hit
when the **top-1 image's label** is the stimulus's class; top-5 counts the classes of the five
nearest classes. Chance is one over the gallery's classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bci_stream.live.scoring import MarkerTruth
from bci_stream.retrieval.index import GalleryIndex, top_rows

N_TOP_CLASSES = 5


@dataclass
class Retrieval:
    """The nearest gallery images of one decision, most similar first.

    Attributes
    ----------
    rows : gallery row indices ``(k,)``.
    ids, labels : the rows' image ids and labels.
    similarities : cosine similarities ``(k,)`` float32.
    scores : ``softmax(logit_scale * similarity)`` over the whole gallery, of these rows ``(k,)``.
    embedding : the decoded embedding ``(D,)`` (unit length) the rows were retrieved for.
    log_embedding : the JSONL log writes the embedding too (``--publish-embedding``).
    """

    rows: np.ndarray
    ids: list[str]
    labels: list[str]
    similarities: np.ndarray
    scores: np.ndarray
    embedding: np.ndarray
    log_embedding: bool = False

    def to_record(self) -> dict:
        """JSON-able fields of the JSONL decision record (``topk_*``, and ``embedding`` if logged)."""
        record = {"topk_rows": [int(r) for r in self.rows], "topk_ids": self.ids, "topk_labels": self.labels,
                  "topk_similarities": [round(float(s), 6) for s in self.similarities],
                  "topk_scores": [round(float(s), 6) for s in self.scores]}
        if self.log_embedding:
            record["embedding"] = [round(float(v), 6) for v in self.embedding]
        return record


class Retriever:
    """Decisions of an embedding model from ``gallery``.

    Parameters
    ----------
    gallery : the index (already checked against the card: same space and dimension).
    k : images per decision.
    logit_scale : the card's ``embedding.logit_scale`` (InfoNCE's inverse temperature).
    keep_embedding : also log the embedding (JSONL); the LSL outlet has its own switch.
    gallery_file, gallery_sha256 : where the index came from (the outlet's ``desc``, the session log).
    """

    def __init__(self, gallery: GalleryIndex, k: int = 5, logit_scale: float = 1.0, keep_embedding: bool = False,
                 gallery_file: str = "", gallery_sha256: str = ""):
        if k < 1:
            raise ValueError(f"top-k must be >= 1; got {k}")
        self.gallery, self.k = gallery, min(k, gallery.size)
        self.logit_scale = np.float32(logit_scale)
        self.keep_embedding = keep_embedding
        self.gallery_file, self.gallery_sha256 = gallery_file, gallery_sha256
        self.class_ids, self.class_names, self.row_class = gallery.classes()
        # rows grouped by class (a permutation), so per-class sums and maxima are one reduceat each
        self._by_class = np.argsort(self.row_class, kind="stable")
        counts = np.bincount(self.row_class, minlength=len(self.class_names))
        self._starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
        self._sims = np.empty(gallery.size, np.float32)
        self._work = np.empty(gallery.size, np.float32)
        self._grouped = np.empty(gallery.size, np.float32)
        self._ids, self._labels = np.asarray(gallery.ids, dtype=object), np.asarray(gallery.labels, dtype=object)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def truth(self, marker_classes: dict[str, str] | None = None) -> MarkerTruth:
        """What a stimulus marker shows, in the gallery's classes (see the module docstring):
        a row's id names its row's class; ``marker_classes`` (marker -> class id) adds to it."""
        by_id = {image_id: self.class_ids[c] for image_id, c in zip(self.gallery.ids, self.row_class)}
        return MarkerTruth(self.class_ids, self.class_names, {**by_id, **(marker_classes or {})})

    def decide(self, output: np.ndarray) -> tuple[np.ndarray, list[int], Retrieval]:
        """``output`` ``(D,)`` (the network's embedding, or a smoothed mean of several) →
        ``(class probabilities (n_classes,), top-5 class indices, Retrieval)``."""
        embedding = output / np.float32(np.linalg.norm(output) or 1.0)
        sims = self.gallery.similarities(embedding, out=self._sims)
        rows = top_rows(sims, self.k)
        z = self._work
        np.subtract(sims, sims[rows[0]], out=z)  # the top row holds the maximum: exp never overflows
        z *= self.logit_scale
        np.exp(z, out=z)
        total = z.sum()
        np.take(z, self._by_class, out=self._grouped)
        probabilities = np.add.reduceat(self._grouped, self._starts) / total
        np.take(sims, self._by_class, out=self._grouped)
        best = np.maximum.reduceat(self._grouped, self._starts)
        first = int(self.row_class[rows[0]])  # the top-1 image's class leads, whatever ties say
        top = [first] + [int(c) for c in top_rows(best, N_TOP_CLASSES + 1) if c != first][: N_TOP_CLASSES - 1]
        retrieval = Retrieval(rows=rows, ids=list(self._ids[rows]), labels=list(self._labels[rows]),
                              similarities=sims[rows].copy(), scores=z[rows] / total, embedding=embedding,
                              log_embedding=self.keep_embedding)
        return probabilities.astype(np.float32), top, retrieval
