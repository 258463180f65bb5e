"""Sinks of the live loop that are not a transport of their own (:class:`bci_stream.live.interfaces.Sink`):
the scorer, the viewer's shared state, plain callbacks, and a slot whose sink can be replaced while the
session runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from bci_stream.contract.adaptation import FeatureRecentring
from bci_stream.live.interfaces import Sink, Source
from bci_stream.live.prediction import Prediction
from bci_stream.live.scoring import MarkerTruth, RunningAccuracy
from bci_stream.live.state import SharedState

S = TypeVar("S", bound=Sink)
log = logging.getLogger(__name__)


class SinkSlot(Generic[S]):
    """A sink that may be replaced or emptied while the session runs (the viewer's renderer switch
    and recording button, the outlet made at ``start()``): pushes go to ``sink``, nowhere when None."""

    def __init__(self, sink: S | None = None):
        self.sink = sink

    def push(self, prediction: Prediction) -> None:
        if self.sink is not None:
            self.sink.push(prediction)

    def replace(self, sink: S | None) -> S | None:
        """Put ``sink`` in; returns the one it replaces (not closed: the caller decides)."""
        old, self.sink = self.sink, sink
        return old

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


class CallbackSink:
    """A callable ``f(prediction)`` as a sink (the ``listeners`` of :class:`~bci_stream.live.session.LiveSession`)."""

    def __init__(self, callback: Callable[[Prediction], None]):
        self.callback = callback

    def push(self, prediction: Prediction) -> None:
        self.callback(prediction)

    def close(self) -> None:
        """Nothing to release."""


class Scorer:
    """A sink of the live loop: an event-mode decision's ``truth`` and ``hit`` (set on the decision,
    for the sinks after this one) and the running accuracy of the session (``accuracy``). It sits
    after the outlet and the renderer: scoring is bookkeeping, not latency."""

    def __init__(self, truth: MarkerTruth, n_classes: int):
        self.truth, self.n_classes = truth, n_classes
        self.accuracy = RunningAccuracy(n_classes)

    def push(self, p: Prediction) -> None:
        if p.marker is not None:
            p.truth = self.truth.class_of(p.marker)
            p.hit = self.accuracy.add(p.marker, p.truth, p.top5, p.probabilities)

    def restart(self, truth: MarkerTruth) -> RunningAccuracy:
        """Score afresh against ``truth`` (a swapped model's); returns the accuracy so far."""
        before, self.truth, self.accuracy = self.accuracy, truth, RunningAccuracy(self.n_classes)
        return before

    def close(self) -> None:
        """Nothing to release."""


class StateSink:
    """Each decision into the viewer's :class:`SharedState` (its one write under the lock per
    decision): probabilities, latency, the source's lost samples, the OOD monitor, the features,
    the running accuracy of an event-mode decision (from ``scorer``, which runs before it) and an
    embedding model's nearest images."""

    def __init__(self, state: SharedState, scorer: Scorer, source: Source):
        self.state, self.scorer, self.source = state, scorer, source

    def push(self, p: Prediction) -> None:
        accuracy = self.scorer.accuracy
        self.state.record_decision(p.probabilities, p.top5, p.latency_ms, self.source.lost_samples,
                                   (p.ood_rms, p.ood_bias, p.ood_warning), p.features,
                                   (accuracy.summary(), list(accuracy.recent)) if p.marker is not None else None,
                                   retrieval=p.retrieval)

    def close(self) -> None:
        """Nothing to release (the session marks the stream stopped)."""


class AdaptReport:
    """A sink: the moment label-free session adaptation becomes ready (the decoder's re-centring has
    its ``windows`` inputs): one ``adaptation_ready`` event of the JSONL log (``event``) with
    :meth:`FeatureRecentring.summary`, a log line and the viewer's ``state.adaptation``. ``recentring``
    gives the running decoder's (None: off); a swapped model's starts afresh and is reported again."""

    def __init__(self, event: Callable[..., None], state: SharedState,
                 recentring: Callable[[], FeatureRecentring | None]):
        self.event, self.state, self.recentring = event, state, recentring
        self._reported: FeatureRecentring | None = None

    def push(self, p: Prediction) -> None:
        if p.adapt_state == "off" or p.adapt_state == "recentred":  # off, or reported already
            return
        rec = self.recentring()
        if rec is None or not rec.ready or rec is self._reported:
            return
        self._reported = rec
        summary = rec.summary()
        log.info("session adaptation ready: the features are re-centred on the statistics of this session's "
                 "first %d decisions (centre shift %.2f z, spread ratio %.2f)", summary["windows"],
                 summary["shift_z"], summary["spread_ratio"])
        self.event("adaptation_ready", window_end_sample=p.window_end_sample, t_lsl=p.t_lsl, **summary)
        self.state.update(adaptation=summary, message=f"session adaptation ready after {summary['windows']} decisions")

    def close(self) -> None:
        """Nothing to release."""
