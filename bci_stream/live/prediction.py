"""One decision of the live loop (:class:`Prediction`), the value every stage and sink receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bci_stream.retrieval.retriever import Retrieval


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
    t_marker : event mode: the LSL time of the stimulus marker, seconds (None in continuous mode).
    ood_warning : the out-of-distribution monitor's warning after this window ("" in distribution).
    features : the decoder's normalised features of the window, ``(n_channels, n_rows, n_columns)``:
        a view of its buffer, valid only while the sinks run (copy it to keep it; not logged).
    extra : more fields for the JSONL record (a stage's own).
    adapt_state : label-free session adaptation (:mod:`bci_stream.contract.adaptation`): "off", or the
        statistics this decision's features were normalised with: "calibrating" (the training ones,
        while the session's first inputs are gathered) or "recentred" (the session's).
    adapt_windows : inputs the adaptation has gathered so far (0 when off). Both are in the JSONL
        record only when adaptation is on.
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
    t_marker: float | None = None
    ood_warning: str = ""
    features: np.ndarray | None = field(default=None, repr=False, compare=False)
    adapt_state: str = "off"
    adapt_windows: int = 0

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
        if self.t_marker is not None:
            record["t_marker"] = self.t_marker
        if self.adapt_state != "off":
            record["adapt_state"] = self.adapt_state
            record["adapt_windows"] = self.adapt_windows
        record.update(self.extra)
        return record


def top_k(probabilities: np.ndarray, k: int = 5) -> list[int]:
    """Indices of the ``k`` largest probabilities, largest first."""
    k = min(k, len(probabilities))
    part = np.argpartition(-probabilities, k - 1)[:k]
    return [int(i) for i in part[np.argsort(-probabilities[part])]]

