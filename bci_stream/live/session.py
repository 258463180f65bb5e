"""The live loop: LSL in -> ring buffer -> the decision -> stages -> sinks (LSL outlet, renderer,
scorer, JSONL log, viewer state, listeners).

Acquisition and decoding share one thread and one tight loop (pull what is ready, then every hop
that is due). :class:`LiveSession` only schedules windows: each due window goes to the decision
stage (:class:`~bci_stream.live.decision.Decision`), through ``session.stages``, then to every sink
of ``session.sinks`` in order (:mod:`bci_stream.live.interfaces`). Nothing here touches Qt or waits
on the renderer: the renderer is offered the newest decision through a non-blocking latest-wins slot.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pylsl
from threadpoolctl import threadpool_limits

from bci_stream.contract.artifacts import ArtifactChain, build_chain
from bci_stream.contract.model_card import ModelCard
from bci_stream.contract.preprocessing import CausalPreprocessor, Preprocessing, check_against_card
from bci_stream.live.accumulate import Accumulator, make_accumulator
from bci_stream.live.channel_events import make_channel_events
from bci_stream.live.config import LiveConfig
from bci_stream.live.decision import Decision, Withheld
from bci_stream.live.decoder import Decoder
from bci_stream.live.interfaces import Clock, MarkerInput, Outlet, Sink, Source, Stage
from bci_stream.live.prediction import Prediction
from bci_stream.live.ring_buffer import RingBuffer
from bci_stream.live.scoring import MarkerTruth, RunningAccuracy
from bci_stream.live.session_log import JsonlLog
from bci_stream.live.sinks import AdaptReport, CallbackSink, Scorer, SinkSlot, StateSink
from bci_stream.live.state import SharedState
from bci_stream.live.wait import ChunkWaiter
from bci_stream.lsl.inlet import LSLSource, SourceConfig, StreamLostError, describe_stream
from bci_stream.lsl.markers import MarkerSource
from bci_stream.lsl.outlets import PredictionOutlet, RetrievalOutlet
from bci_stream.render.base import RenderConfig
from bci_stream.retrieval.index import (
    GalleryError,
    GalleryIndex,
    check_gallery_fits_card,
    file_sha256,
    load_gallery,
)
from bci_stream.retrieval.retriever import Retriever

if TYPE_CHECKING:
    from bci_stream.render.worker import RenderWorker

log = logging.getLogger(__name__)

GIL_SWITCH_INTERVAL_S = 0.0005


@contextmanager
def decoding_priority() -> Iterator[None]:
    """Settings of the process while the decoding loop runs.

    - One BLAS thread: a second one busy-waits a whole core between the small STFT products and
      competes with acquisition (CPU figures: README, Benchmarks; ``tools/bench_latency.py``).
    - A 0.5 ms GIL switch interval instead of Python's 5 ms: another Python thread (the viewer, or a
      renderer run in-process) holds the GIL up to that long before the decoding thread gets it back
      (``tools/bench_render.py --decoder`` measures it; figures in the README).
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        sys.setswitchinterval(previous)


@dataclass(frozen=True)
class LiveSpec:
    """Everything :func:`build_session` builds a live session from (picklable: the viewer's decoding
    process receives it).

    Attributes
    ----------
    model : ONNX file with a model card.
    providers : ONNX Runtime providers ("auto", "cpu", "cuda").
    smoothing : decisions averaged in continuous mode.
    live : how the session runs.
    render : the renderer (None: none).
    seconds : stop after this long (None: until stopped).
    gallery_index : an embedding model's gallery (``bci-stream index``; required for those, refused
        for classifiers).
    """

    model: str
    providers: str = "auto"
    smoothing: int = 1
    live: LiveConfig = LiveConfig()
    render: RenderConfig | None = None
    seconds: float | None = None
    gallery_index: str | None = None


def build_session(spec: LiveSpec, state: SharedState | None = None,
                  listeners: list[Callable[[Prediction], None]] | None = None, source: Source | None = None
                  ) -> LiveSession:
    """The one place a live session is assembled (headless CLI, the viewer's decoding process,
    calibration, benchmarks): decoder, session, renderer, and the path of each decision. Not yet
    connected: call ``start()``.

    A decision goes through ``session.stages`` (in order; each may change it or hold it back), then
    to every sink of ``session.sinks`` (in order: :meth:`LiveSession.standard_sinks`, then the
    ``listeners``). Adding a stage or a sink is one line here, e.g.
    ``session.stages.append(MyStage(...))`` or ``session.sinks.insert(1, MySink(...))``.
    """
    decoder = Decoder(spec.model, providers=spec.providers, smoothing=spec.smoothing, incremental=spec.live.incremental)
    retriever = None
    if spec.gallery_index is not None:
        retriever = open_retriever(spec.gallery_index, decoder.card, spec.live)
    session = LiveSession(decoder, spec.live, state=state, source=source, retriever=retriever)
    session.stages = []  # between the decision and the sinks
    session.sinks = session.standard_sinks() + [CallbackSink(f) for f in listeners or []]
    if spec.render is not None:
        session.renderer = make_renderer(spec.render, decoder.card, session.state, session.classes, session.gallery)
    return session


def open_retriever(gallery_index: str | Path, card: ModelCard, config: LiveConfig) -> Retriever:
    """The retriever of an embedding model (``card``) from the index file ``gallery_index``; refuses
    an index in another space or dimension, naming both."""
    gallery = load_gallery(gallery_index)
    check_gallery_fits_card(gallery, card, gallery_index)
    return Retriever(gallery, k=config.top_k, logit_scale=card.embedding_spec().logit_scale,
                     keep_embedding=config.publish_embedding, gallery_file=str(gallery_index),
                     gallery_sha256=file_sha256(gallery_index))


def make_renderer(config: RenderConfig, card: ModelCard, state: SharedState,
                  classes: tuple[list[str], list[str]] | None = None, gallery: GalleryIndex | None = None) -> RenderWorker:
    """A started render worker for ``config`` (see :mod:`bci_stream.render`); ``classes`` ``(ids,
    names)`` are the decision's classes (default: the card's; an embedding model's are its gallery's).
    An embedding model's worker also gets the card's embedding space (an "embedding-diffusion"
    renderer refuses another) and the ``gallery``, whose thumbnail of the top-1 retrieved image is
    shown without such a renderer or when it fails."""
    from bci_stream.render import RenderWorker

    ids, names = classes if classes is not None else (card.class_ids, card.class_names)
    if not card.is_embedding:
        return RenderWorker(config, list(names), state, list(ids)).start()
    from bci_stream.render.retrieval import RetrievalRenderer

    retrieval = RetrievalRenderer.from_gallery(gallery, config.size) if gallery is not None else None
    return RenderWorker(config, list(names), state, list(ids), retrieval=retrieval,
                        decoder_space=card.embedding_spec().space).start()


_OUTLETS_MADE = itertools.count(1)  # predictions outlets made by this process (the instance part of their source id)


def outlet_source_id(outlet_name: str, stream: pylsl.StreamInfo | None, model_sha256: str,
                     instance: str | None = None) -> str:
    """Source id of the predictions outlet: ``<name>@<host>:<key>:<instance>``, where ``key`` hashes
    this host, the input stream's source id (or name), the model's hash and the outlet name (what
    the decoder decodes; consumers may match on the prefix up to it) and ``instance`` is this
    decoder's own (default: process id and a per-process count), so two decoders of the same stream
    and model, in one process or two, never share one. A restarted decoder is a new instance: its
    consumers find it again by name (or by the prefix), not by LSL's source-id recovery."""
    given = (stream.source_id() or stream.name()) if stream is not None else "?"
    host = socket.gethostname()
    key = hashlib.sha1(f"{host}|{given}|{model_sha256}|{outlet_name}".encode()).hexdigest()[:16]
    instance = instance or f"{os.getpid()}-{next(_OUTLETS_MADE)}"
    return f"{outlet_name}@{host}:{key}:{instance}"


@dataclass
class _Outage:
    """A gap in the data being tracked: opened at the loss, closed by the first new sample."""

    t_lost: float  # LSL time the loss was noticed
    last_sample_t: float | None  # LSL stamp of the last sample before it
    lost_before: int = 0  # the source's lost_samples when it began
    reconnected: bool = False  # the inlet was opened again (the source's counter says what the gap cost)




class OodReport:
    """A sink: an out-of-distribution episode as one warning and one "cleared" (the log line, and the
    ``ood_warning`` / ``ood_cleared`` events of the JSONL log), not one per decision."""

    def __init__(self, event: Callable[..., None]):
        self.event, self.shown = event, ""

    def push(self, p: Prediction) -> None:
        if p.ood_warning == self.shown:
            return
        self.shown = p.ood_warning
        log.warning("%s", p.ood_warning or "input back within the training data's range")
        self.event("ood_warning" if p.ood_warning else "ood_cleared", message=p.ood_warning,
                   ood_rms=round(p.ood_rms, 3), ood_bias=round(p.ood_bias, 3))

    def close(self) -> None:
        """Nothing to release."""


class LiveSession:
    """Owns the inlet, buffer and decoder, and schedules the windows; :meth:`run` is the loop.

    Each decision goes through ``stages`` and then to ``sinks`` (:mod:`bci_stream.live.interfaces`;
    :func:`build_session` assembles them, :meth:`standard_sinks` is the default). ``outlet``,
    ``renderer`` (a render worker: never blocks) and the JSONL log (``config.log_path``) sit in
    slots of the sink list that may be filled or replaced while the session runs; every callable in
    ``listeners`` is called with each :class:`Prediction` on the loop thread (keep them quick).
    An embedding model needs a ``retriever`` (its decisions are retrieval from a gallery index,
    :mod:`bci_stream.retrieval.retriever`); its classes are then the gallery's. ``clock`` (default
    ``pylsl.local_clock``) is the session's time: latencies, the run's deadline, outage lengths, the
    wait for the next chunk and the log's event times.
    """

    def __init__(self, decoder: Decoder, config: LiveConfig | None = None, renderer: RenderWorker | None = None,
                 state: SharedState | None = None, listeners: list[Callable[[Prediction], None]] | None = None,
                 source: Source | None = None, markers: MarkerInput | None = None, outlet: Outlet | None = None,
                 retriever: Retriever | None = None, clock: Clock = pylsl.local_clock, stages: list[Stage] | None = None):
        self.clock = clock  # LSL seconds: deadlines, emission times, outages (tests script it)
        config = config or LiveConfig()
        card = decoder.card
        _check_retriever(decoder, retriever)
        self.decoder, self.config, self.card, self.retriever = decoder, config, card, retriever
        self.gallery = retriever.gallery if retriever is not None else None  # the renderer's thumbnails
        self.classes = (list(retriever.class_ids), list(retriever.class_names)) if retriever is not None else \
            (list(card.class_ids), list(card.class_names))  # (ids, names) the decisions are in
        self.class_names = self.classes[1]
        self.source: Source = source if source is not None else LSLSource(card.ch_names, card.input_sfreq, SourceConfig(
            name=config.stream, lost_after=config.lost_after, resolve_timeout=config.resolve_timeout,
            unit=card.signal_unit, assume_unit=config.assume_unit, events_channel=config.events.channel), clock=clock)
        self._make_buffers()
        self.state = state or SharedState()
        self.state.update(class_names=list(self.class_names), provider=decoder.provider, stream_name=config.stream or "")
        self.decoder.reset(smoothing=config.smoothing)
        self.decoder.set_adaptation(config.adapt)  # off by default; a swapped model starts it afresh
        self.want_markers = config.mode == "event" or config.markers is not None
        self.markers = markers  # None: chosen at start()
        self.accumulator: Accumulator | None = make_accumulator(config.accumulate, len(self.class_names),
                                                                retriever is not None)
        self.channel_events = make_channel_events(config.events, card.ch_names, on_pair=self._log_offset)
        self._pending: list[tuple[float, str]] = []
        self._next_end: int | None = None
        self._outage: _Outage | None = None
        self._started = False
        self.closed = False
        self._last_sample_t: float | None = None
        self._stop = threading.Event()
        self._deadline: float | None = None
        self.waiter = ChunkWaiter(config.wait, self.source, clock=clock, touch=decoder.touch)
        self._due: float | None = None  # local LSL time the next decision's last sample should arrive
        self._next_decoder: Decoder | None = None  # swap_decoder(): applied by the loop between two turns
        self.decision = Decision(decoder, retriever, clock)
        truth = retriever.truth(card.marker_classes) if retriever is not None else MarkerTruth.for_card(card)
        self.scorer = Scorer(truth, len(self.class_names))  # event mode: decisions scored against their stimulus
        self.outlet_slot: SinkSlot[Outlet] = SinkSlot(outlet)  # None: made at start()
        self.render_slot: SinkSlot[RenderWorker] = SinkSlot(renderer)
        self.log_slot: SinkSlot[JsonlLog] = SinkSlot(self._open_log(config.log_path) if config.log_path else None)
        self.stages: list[Stage] = list(stages or [])
        self.sinks: list[Sink] = self.standard_sinks() + [CallbackSink(f) for f in listeners or []]
        if self.accumulator is not None:  # repeats of one stimulus combined before any sink sees them
            self.stages.append(self.accumulator)
            self.sinks.append(CallbackSink(lambda p: self.state.update(accumulation=self.accumulator.summary())))
        self.state.update(model=self.decoder.model_path.name, model_since=self.clock())

    def _make_buffers(self) -> None:
        """The causal preprocessor, the window geometry (samples) and the ring buffer, from the card."""
        card, config = self.card, self.config
        pre = card.preprocessing_spec()
        chain = CausalPreprocessor(pre, list(card.ch_names), card.input_sfreq,
                                   sos=check_against_card(pre, Preprocessing.stored_sos(card.preprocessing),
                                                          card.input_sfreq))
        # bad-channel repair before the chain, the card's ASR after it; the chain itself when both are off
        self.preprocessor = build_chain(chain, list(card.ch_names), config.bad_channels, card.asr_state(),
                                        card.signal_unit)
        self.artifacts = self.preprocessor if isinstance(self.preprocessor, ArtifactChain) else None
        self.window = card.window_samples
        self.offset = card.offset_samples
        self.hop = max(1, int(round(config.hop * card.sfreq))) if config.hop else card.hop_samples
        capacity = max(int(config.buffer_seconds * card.sfreq), 2 * (self.window + self.offset))
        self.ring = RingBuffer(card.n_channels, capacity)

    def standard_sinks(self) -> list[Sink]:
        """Where each decision goes, in this order: out first (the outlet; the renderer is offered it),
        then the bookkeeping, which is not latency: scored (its truth and hit, for the sinks after
        it), logged, an OOD episode reported, the session adaptation's readiness reported, the
        viewer's state."""
        return [self.outlet_slot, self.render_slot, self.scorer, self.log_slot, OodReport(self._event),
                AdaptReport(self._event, self.state, lambda: self.decoder.recentring),
                StateSink(self.state, self.scorer, self.source)]

    # --- the slots and what they hold ---------------------------------------------------------
    @property
    def outlet(self) -> Outlet | None:
        return self.outlet_slot.sink

    @outlet.setter
    def outlet(self, outlet: Outlet | None) -> None:
        self.outlet_slot.replace(outlet)

    @property
    def renderer(self) -> RenderWorker | None:
        return self.render_slot.sink

    @renderer.setter
    def renderer(self, renderer: RenderWorker | None) -> None:
        self.render_slot.replace(renderer)

    @property
    def jsonl(self) -> JsonlLog | None:
        """The JSONL session log (None: not logging)."""
        return self.log_slot.sink

    @property
    def accuracy(self) -> RunningAccuracy:
        """The running accuracy of event-mode decisions (since the last model swap)."""
        return self.scorer.accuracy

    def _open_log(self, path: str | Path) -> JsonlLog:
        return JsonlLog(path, self.class_names, on_error=self.state.report_log_error, clock=self.clock)

    def _event(self, kind: str, **fields) -> None:
        """A session event in the JSONL log (nothing when not logging)."""
        if self.log_slot.sink is not None:
            self.log_slot.sink.event(kind, **fields)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Connect to the stream (and markers); raises if it is absent or does not fit the model."""
        cfg = self.config
        if not self.source.connect():
            if self._stop.is_set():
                raise KeyboardInterrupt  # stopped (Ctrl-C) while waiting for the stream
            wait = "" if cfg.resolve_timeout < 0 else f" within {cfg.resolve_timeout:g} s"
            raise StreamLostError(
                f"no LSL stream {'named ' + repr(cfg.stream) if cfg.stream else 'of type EEG'} found{wait}; "
                "is the amplifier's LSL app streaming? (`bci-stream --local` keeps discovery on this machine)"
            )
        info = self.source.info
        self.state.update(stream_status="connected", stream_name=info.name())
        self.decoder.check_stream(info)  # desc/reference, desc/filtering vs the card: warnings only
        if self.want_markers and self.markers is None:
            self.markers = self._connect_markers(info)
        self.state.update(marker_status=self.markers.status if self.markers else "none",
                          marker_stream=self.markers.info.name() if self.markers else "")
        if self.outlet is None:
            self.outlet = self._make_outlet(info)
        self._started = True
        self._event("session_start", **self.describe())

    def _connect_markers(self, info: pylsl.StreamInfo) -> MarkerSource | None:
        """The marker stream (``config.markers``, else the one beside ``info``); None if there is none
        in continuous mode, an error in event mode."""
        cfg = self.config
        markers = MarkerSource(cfg.markers, eeg=info)
        if markers.connect(timeout=2.0):
            return markers
        if cfg.mode == "event" and self.channel_events is None:  # --events-from: the channel gives the events
            raise StreamLostError(f"no marker stream {repr(cfg.markers) if cfg.markers else 'for ' + repr(info.name())} "
                                  "found for event mode; name one with --markers")
        return None

    def _make_outlet(self, info: pylsl.StreamInfo) -> Outlet:
        """The predictions outlet of this model (an embedding model's: its retrieval outlets)."""
        cfg = self.config
        source_id = outlet_source_id(cfg.outlet_name, info, self.decoder.model_sha256)
        if self.retriever is not None:
            r = self.retriever
            return RetrievalOutlet(r.gallery, r.k, float(r.logit_scale), name=cfg.outlet_name, source_id=source_id,
                                   publish_embedding=cfg.publish_embedding, gallery_file=r.gallery_file,
                                   gallery_sha256=r.gallery_sha256)
        return PredictionOutlet(self.card.class_names, name=cfg.outlet_name, source_id=source_id,
                                model=self.decoder.model_desc(),
                                extra=("repeats",) if self.accumulator is not None else ())

    def describe(self) -> dict:
        """What this session is: model (path, hash, card preprocessing), input stream, markers, outlet,
        software version — the ``session_start`` record, and what the CLI prints."""
        from bci_stream import __version__

        info = self.source.info
        stream = describe_stream(info) if info is not None else {}
        if self.source.unit_note:
            stream["unit"] = self.source.unit_note
        out = {
            "software": f"bci-stream {__version__}",
            "model": {"path": str(self.decoder.model_path), "sha256": self.decoder.model_sha256,
                      "classes": self.card.n_classes, "signal_unit": self.card.signal_unit,
                      "preprocessing": self.card.preprocessing_spec().describe()},
            "artifacts": self.artifacts.describe() if self.artifacts else {"bad_channels": "off", "asr": "off"},
            "stream": stream,
            "rejected_streams": [{"name": n, "why": why} for n, why in self.source.rejected],
            "markers": ({"name": self.markers.info.name(), "source_id": self.markers.info.source_id(),
                         "host": self.markers.info.hostname(), "why": self.markers.reason,
                         "others": self.markers.others} if self.markers else None),
            "outlet": ({"name": self.config.outlet_name, "source_id": self.outlet.source_id}
                       if self.outlet else None),
            "mode": self.config.mode, "provider": self.decoder.provider, "hop_samples": self.hop,
            "accumulate": self.config.accumulate.describe(),
            "adapt": self.config.adapt.to_dict(),
            "events_from": self.config.events.describe() if self.channel_events is not None else None,
        }
        if self.retriever is not None:
            r = self.retriever
            out["gallery"] = {"path": r.gallery_file, "sha256": r.gallery_sha256, "images": r.gallery.size,
                              "classes": r.n_classes, "space": r.gallery.space, "k": r.k}
        return out

    def stop(self) -> None:
        """End the loop (from a signal handler or another thread); also ends a wait for the stream."""
        self._stop.set()
        self.source.stop_event.set()

    def set_recording(self, path: str | Path | None) -> None:
        """Start writing the JSONL log to ``path`` (None: stop and close the current one)."""
        previous = self.log_slot.replace(self._open_log(path) if path else None)
        if previous is not None:
            previous.close()
        self.state.update(message=f"recording to {path}" if path else "recording stopped")

    def swap_model(self, path: str | Path) -> None:
        """Hot-swap the model file at ``path`` in (:meth:`swap_decoder`); one that cannot be read or
        does not fit leaves a message in the state instead, and the running model stays."""
        try:
            self.swap_decoder(Decoder(path, providers=self.config.providers, incremental=self.config.incremental))
        except Exception as err:  # a foreign or half-written file, another stream's model: said, not fatal
            self.state.update(message=f"model not swapped: {err}")

    def swap_decoder(self, new: Decoder) -> None:
        """Replace the model by ``new`` at the start of the loop's next turn (between two hops; call
        from any thread). Its card must fit the running stream (:func:`bci_stream.live.hotswap.check_swap`:
        channels, rates, unit, preprocessing, window, classes) or :class:`~bci_stream.live.hotswap.SwapRefused`
        is raised here and nothing changes. The inlet, ring buffer, filter state and outlet stay: no
        sample is lost and consumers keep their connection. Logged as ``model_swapped``."""
        from bci_stream.live.hotswap import check_swap

        check_swap(self.card, new.card, str(new.model_path))
        new.reset(smoothing=self.config.smoothing)
        new.set_adaptation(self.config.adapt)  # the new model's statistics are its own: gathered afresh
        self._next_decoder = new

    def _apply_swap(self) -> None:
        old, self.decoder, self._next_decoder = self.decoder, self._next_decoder, None
        self.card = self.decoder.card
        self.decision.decoder = self.decoder
        before = self.scorer.restart(MarkerTruth.for_card(self.card))  # its own marker_classes; scored afresh
        for stage in self.stages:
            stage.reset()
        self.waiter.touch = self.decoder.touch
        now = self.clock()
        self.state.update(model=self.decoder.model_path.name, model_since=now, adaptation={},  # gathered afresh
                          message=f"model swapped: {self.decoder.model_path.name}")
        log.info("model swapped: %s -> %s", old.model_path, self.decoder.model_path)
        self._event("model_swapped", old={"path": str(old.model_path), "sha256": old.model_sha256},
                    new={"path": str(self.decoder.model_path), "sha256": self.decoder.model_sha256},
                    sample=self.ring.count, lost_samples=self.source.lost_samples,
                    event_accuracy_before=before.summary() if self.config.mode == "event" else None)

    def switch_renderer(self, kind: str) -> None:
        """Replace the renderer by one of ``kind`` ("gallery", "diffusion", "embedding-diffusion", "none"),
        keeping its settings."""
        old = self.render_slot.replace(None)
        if old is not None:
            old.close()
        self.state.update(renderer_error="", renderer_kind=kind)
        if kind != "none":
            base = old.config if old is not None else RenderConfig()
            self.renderer = make_renderer(base.with_kind(kind), self.card, self.state, self.classes, self.gallery)

    def close(self) -> None:
        """Close the inlets, then every sink in order (the renderer stops, the log gets ``session_end``
        once the session had started; a log that got no record is removed: :class:`JsonlLog`). Once only."""
        if self.closed:
            return
        self.closed = True
        self.source.close()
        if self.markers is not None:
            self.markers.close()
        self.state.update(stream_status="stopped",
                          channel_events=self.channel_events.summary() if self.channel_events is not None else {})
        if self._started:
            st = self.state
            self._event("session_end", decisions=st.n_decisions, withheld=st.n_withheld,
                        skipped_backlog=st.n_skipped, lost_samples=self.source.lost_samples,
                        gap_samples=self.source.gap_samples,
                        gaps=len(st.gaps), seconds_down=round(sum(d for _, d in st.gaps), 3),
                        event_accuracy=self.accuracy.summary() if self.config.mode == "event" else None,
                        accumulation=st.accumulation or None, channel_events=st.channel_events or None)
        for sink in self.sinks:
            sink.close()
        self.outlet = None

    def run(self, seconds: float | None = None) -> None:
        """Loop until :meth:`stop` or ``seconds`` elapse (the session's clock). Connects first if needed."""
        if not self._started:
            self.start()
        self._deadline = None if seconds is None else self.clock() + seconds
        try:
            with decoding_priority():
                while not self._stop.is_set() and not self._past_deadline():
                    self.step(timeout=0.05)
        finally:
            self.close()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self.clock() >= self._deadline

    # --- one turn of the loop -----------------------------------------------------------------
    def step(self, timeout: float = 0.05) -> None:
        """Pull what is ready (waiting up to ``timeout`` s), then make every decision that is due."""
        if self._next_decoder is not None:
            self._apply_swap()
        try:
            samples, stamps = self.waiter.pull(timeout, self._due)
        except StreamLostError as err:
            self._recover(err)
            return
        if len(stamps):
            if self.channel_events is not None:  # edges stamped with their samples' raw stamps
                self.channel_events.feed(self.source.event_values, stamps)
            if self._outage is not None:
                self._data_resumed(float(stamps[0]))
            samples, stamps = self.preprocessor.process_stamped(samples, stamps)
            if self.preprocessor.restarted:
                self._filters_restarted(self.preprocessor.restarted, self.ring.count)
            if self.artifacts is not None:
                self._channel_changes(self.artifacts.drain_changes())
            self.ring.write(samples, stamps)
            if len(stamps):
                self._last_sample_t = float(stamps[-1])
        if self.markers is not None or self.channel_events is not None:
            received = self.markers.pull() if self.markers is not None else []
            if self.channel_events is not None:  # decisions follow the channel; LSL markers are timed against it
                received = self.channel_events.take(received)
            if self.accumulator is not None:
                self.accumulator.markers(received)  # reset markers (new target / sequence)
            if received and self.config.stimuli is not None and self.config.mode == "event":
                self.state.add_markers([m for m in received if not self.config.is_stimulus(m[1])])  # shown only
                received = [m for m in received if self.config.is_stimulus(m[1])]
            self._pending.extend(received)
            if self.markers is not None and self.markers.changes:
                self._marker_changes()
        if self.config.mode == "continuous":
            self._continuous()
        else:
            self._event_locked()
        if self.artifacts is not None:
            self.artifacts.idle()  # ASR updates later samples need: after the decisions, off their path

    def _continuous(self) -> None:
        ring = self.ring
        if ring.count - ring.start_index < self.window:
            return
        if self._next_end is None:
            self._next_end = ring.count  # the first window
        elif ring.count - self._next_end > 5 * self.hop:  # skip a backlog rather than fall behind; count it
            skipped = (ring.count - self._next_end) // self.hop
            self._next_end += skipped * self.hop
            self.state.update(n_skipped=self.state.n_skipped + skipped)
            self._event("backlog_skipped", decisions=skipped, resume_sample=self._next_end)
        while self._next_end <= ring.count:
            self._decide(self._next_end, marker=None)
            self._next_end += self.hop
        self._due = self.waiter.due((self._next_end - ring.count) / self.card.sfreq)
        if self._pending:
            self.state.add_markers(self._pending)
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
                self._event("marker_dropped", marker=text, t_marker=t, reason="no buffered sample at its time")
                continue
            end = onset + self.offset + self.window
            if end > self.ring.count:
                keep.append((t, text))
                continue
            self.state.add_markers([(t, text)])
            self._decide(end, marker=text, t_marker=t)
        self._pending = keep

    def _decide(self, end: int, marker: str | None, t_marker: float | None = None) -> None:
        """The window ending before sample ``end``: decided, through the stages, to every sink."""
        data, times = self.ring.window(end, self.window)
        p = self.decision.decide(data.T, times, end, marker, t_marker)  # the window: a (n_channels, n_times) view
        if isinstance(p, Withheld):
            reason = p.reason
            if self.artifacts is not None and self.artifacts.repair is not None and reason.startswith("non-finite"):
                reason = f"bad channel(s) not repaired (--bad-channels {self.config.bad_channels.mode}): {reason}"
            self.state.update(n_withheld=self.state.n_withheld + 1, withheld_reason=reason)
            self._event("withheld", window_end_sample=end, t_lsl=float(times[-1]), reason=reason, marker=marker)
            return
        for stage in self.stages:
            p = stage.process(p)
            if p is None:
                return
        for sink in self.sinks:
            sink.push(p)

    def _log_offset(self, pair: dict) -> None:
        """A channel event paired with the LSL marker of the same stimulus: their offset, logged."""
        self._event("event_offset", **pair)

    def _filters_restarted(self, channels: tuple[int, ...], ring_count: int) -> None:
        """Non-finite samples on ``channels`` (indices) were kept out of the filter state and their
        filters started again at the next finite sample (:class:`CausalPreprocessor`): say so once."""
        names = [self.card.ch_names[i] for i in channels]
        text = f"{', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
        log.warning("non-finite samples on %d channel(s) (%s): their filters started again at the next finite sample",
                    len(names), text)
        self.state.update(message=f"filters restarted after non-finite samples on {text}")
        self._event("filter_reset", reason="non-finite samples", channels=names, chunk_start_sample=ring_count)

    def _channel_changes(self, changes: list[dict]) -> None:
        """Log what the bad-channel stage changed: a channel interpolated (or withheld) from now on, or
        clean again; too many bad channels at once (their windows are withheld)."""
        repairing = self.config.bad_channels.mode == "repair"
        for c in changes:
            if c.get("withheld"):
                text = f"{len(c['channels'])} bad channel(s) (over {c['max_bad']}): windows withheld"
                self._event("channels_withheld", channels=c["channels"], max_bad=c["max_bad"], input_sample=c["sample"])
            else:
                what = ("interpolated" if repairing else "withheld") if c["bad"] else "clean again"
                text = f"channel {c['channel']} {what} ({c['reason']})"
                self._event("channel_repair", channel=c["channel"], bad=c["bad"],
                            interpolated=bool(c["bad"] and repairing), reason=c["reason"], input_sample=c["sample"])
            log.warning("%s", text)
            self.state.update(message=text)

    def _marker_changes(self) -> None:
        """Report the marker stream going away or coming back (reconnection runs in the background)."""
        for status, t in self.markers.changes:
            self.state.update(marker_status=status, message=f"marker stream {status}")
            self._event("markers_lost" if status == "lost" else "markers_restored",
                                 stream=self.markers.name, t=t)
        self.markers.changes.clear()

    def _recover(self, err: Exception) -> None:
        """Report the loss, keep the app alive, reconnect when the stream returns.

        The gap is logged when data flow again (:meth:`_data_resumed`), from the last sample before
        it to the first sample after, so a stalled sender whose outlet stays open (reconnected
        at once, silent for seconds) is one gap of the right length, not several short ones.
        """
        if self._outage is None:
            self._outage = _Outage(t_lost=self.clock(), last_sample_t=self._last_sample_t,
                                   lost_before=self.source.lost_samples)
            log.warning("stream lost: %s; waiting for it to return", err)
            self.state.update(stream_status="lost", message=str(err))
            self._event("stream_lost", reason=str(err), last_sample=self.ring.count,
                                 t_last_sample=self._last_sample_t)
        self.ring.reset()
        self.decoder.reset()  # smoothing and the incremental spectrogram start again
        self.decoder.ood.reset()
        self.preprocessor.reset()  # filters restart at the steady state of the first new sample
        if self.channel_events is not None:
            self.channel_events.detector.reset()
        self.waiter.forget()
        self._due = None
        self._next_end = None
        self._pending.clear()
        for stage in self.stages:
            stage.reset()
        if self.source.is_open:
            return  # silent but still connected: keep reading it (a stalled sender may catch up)
        while not self._stop.is_set() and not self._past_deadline():
            if self.source.connect(timeout=1.0):  # the source keeps looking between attempts: no delay added
                self._outage.reconnected = True
                self.state.update(stream_status="reconnected", message="stream reconnected; waiting for data")
                return

    def _data_resumed(self, first_t: float) -> None:
        """Close the open outage at the first new sample (LSL stamp ``first_t``)."""
        outage, self._outage = self._outage, None
        # silence as the decoder lived it: from the last sample's stamp (its arrival, on this clock) to
        # now; the data themselves may have no gap at all when the sender caught up after a stall
        start = outage.last_sample_t if outage.last_sample_t is not None else outage.t_lost
        down = max(0.0, self.clock() - start)
        data_gap = None if outage.last_sample_t is None else round(first_t - outage.last_sample_t, 4)
        missing = self._missing_samples(outage)
        log.warning("stream back: %.2f s without data", down)
        self.state.add_gap(start, down)
        self._event("stream_restored", seconds_down=round(down, 3), data_gap_seconds=data_gap,
                             missing_samples=missing, t_last_sample=outage.last_sample_t, t_first_sample=first_t,
                             resume_sample=self.ring.count)

    def _missing_samples(self, outage: _Outage) -> int | None:
        """Samples the source counted over ``outage`` that never arrived (its counter channel; None
        without one): 0 for a sender that stalled and caught up, the outage and the reconnection's
        samples for an outlet that went away."""
        if not self.source.has_counter:
            return None
        missing = self.source.lost_samples - outage.lost_before
        if outage.reconnected:
            across = self.source.last_gap_samples
            if across is None:  # the counter started again: what the gap cost is unknown
                return None
            missing += across
        return missing



def _check_retriever(decoder: Decoder, retriever: Retriever | None) -> None:
    """An embedding model decides by retrieval: refuse one without a retriever, or with a gallery
    in another space than its card's."""
    card = decoder.card
    if card.is_embedding and retriever is None:
        raise GalleryError(f"{decoder.model_path.name} is an embedding model ({card.embedding_spec().space}): its "
                           "decisions are retrieval; pass --gallery-index idx.safetensors (`bci-stream index` "
                           "builds one in its space)")
    if retriever is not None:
        check_gallery_fits_card(retriever.gallery, card)
