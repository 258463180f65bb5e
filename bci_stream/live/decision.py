"""The decision stage: a window of the ring buffer -> a :class:`~bci_stream.live.prediction.Prediction`
(or the reason it is withheld). Classify, check, smooth (continuous mode), retrieve (embedding models)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bci_stream.live.decoder import Decoder
from bci_stream.live.interfaces import Clock
from bci_stream.live.prediction import Prediction, top_k
from bci_stream.retrieval.retriever import Retriever


@dataclass(frozen=True)
class Withheld:
    """A window not decided, and why (``reason``, one line naming the channels)."""

    reason: str


class Decision:
    """Makes the decision of one window. ``decoder`` is replaced by a model swap; ``retriever`` turns
    an embedding model's output into retrieval from its gallery; ``clock`` stamps the emission."""

    def __init__(self, decoder: Decoder, retriever: Retriever | None, clock: Clock):
        self.decoder, self.retriever, self.clock = decoder, retriever, clock

    def decide(self, window: np.ndarray, times: np.ndarray, end: int, marker: str | None,
               t_marker: float | None = None) -> Prediction | Withheld:
        """``window`` ``(n_channels, n_times)`` ending before sample ``end``, stamped ``times``;
        ``marker``: the stimulus of an event-locked window (such decisions are not smoothed)."""
        reason = bad_window(window, self.decoder.card.ch_names)
        if reason:
            return Withheld(reason)
        adapt = self.decoder.recentring  # the statistics this window is normalised with: as before classify
        adapt_state = "off" if adapt is None else ("recentred" if adapt.ready else "calibrating")
        probs = self.decoder.classify(window, end)  # only the new frames when it moved by whole STFT hops
        if not np.isfinite(probs).all():  # e.g. samples so large the features overflow float32
            return Withheld("non-finite decision (input beyond float32 range after the features)")
        if marker is None:
            probs = self.decoder.smooth(probs)  # of an embedding model: the mean embedding (renormalised by retrieval)
        retrieval = None
        if self.retriever is not None:
            probs, top5, retrieval = self.retriever.decide(probs)
        else:
            top5 = top_k(probs, 5)
        t_lsl, t_emitted = float(times[-1]), self.clock()
        ood = self.decoder.ood
        return Prediction(t_lsl=t_lsl, t_emitted=t_emitted, probabilities=probs, top5=top5, window_end_sample=end,
                          latency_ms=(t_emitted - t_lsl) * 1e3, marker=marker, ood_rms=ood.rms, ood_bias=ood.bias,
                          retrieval=retrieval, t_marker=t_marker, ood_warning=ood.warning,
                          features=self.decoder.last_features, adapt_state=adapt_state,
                          adapt_windows=adapt.n if adapt is not None else 0)


def bad_window(window: np.ndarray, ch_names: list[str]) -> str:
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
