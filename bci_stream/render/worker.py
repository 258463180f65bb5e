"""The render worker: its own thread, fed through a size-1 latest-wins slot.

``submit`` (a classifier's decision) and ``submit_embedding`` (an embedding model's decision: the
decoded vector and the top-1 retrieved gallery row) never block and never queue: a newer decision
replaces one not yet started, so only the newest decision is rendered. Renders only when the
decoded class / retrieved top-1 changes (or after ``interval`` seconds). Any failure is reported in
the shared state and the worker falls back to the gallery (classes) or to the top-1 retrieved
image's thumbnail (embeddings); decoding is never touched.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import pylsl

from bci_stream.live.interfaces import Renderer
from bci_stream.live.prediction import Prediction
from bci_stream.live.state import RenderedImage, SharedState
from bci_stream.render.base import RenderConfig, RendererError
from bci_stream.render.exemplars import GalleryRenderer
from bci_stream.render.retrieval import RetrievalRenderer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    """A decision waiting in the slot: a class index, or a gallery row with the decoded embedding."""

    index: int  # class index, or the top-1 retrieved gallery row
    embedding: np.ndarray | None  # (D,) float32 for an embedding decision, else None
    t_decision: float | None
    marker: str | None
    t_marker: float | None


class RenderWorker:
    """Renders decisions on its own thread.

    ``retrieval``: what shows an embedding decision without a working embedding-conditioned renderer
    (default: a card naming the row); ``decoder_space``: the card's ``embedding.space`` for an
    embedding model (None for a classifier), checked against the "embedding-diffusion" pipeline's.
    """

    def __init__(self, config: RenderConfig, class_names: list[str], state: SharedState | None = None,
                 class_ids: list[str] | None = None, renderer: Renderer | None = None, retrieval: RetrievalRenderer | None = None,
                 decoder_space: str | None = None):
        self.config = config
        self.class_names, self.class_ids = class_names, class_ids
        self.state = state or SharedState()
        self._renderer = renderer
        self.retrieval = retrieval or RetrievalRenderer(size=config.size)
        self.decoder_space = decoder_space
        self._slot = None
        self._slot_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_class: int | None = None
        self._last_time = 0.0
        self.n_rendered = 0
        self.n_dropped = 0
        self._times: list[float] = []

    # --- decoding side (never blocks) -------------------------------------------------------
    def submit(self, prediction: Prediction) -> bool:
        """Offer a decision; True if it took the slot (it may still be replaced before rendering). An
        embedding model's decision (its ``retrieval``: :class:`bci_stream.retrieval.retriever.Retrieval`) goes on
        as :meth:`submit_embedding` of its decoded embedding and top-1 retrieved row."""
        retrieval = prediction.retrieval
        if retrieval is not None:
            return self.submit_embedding(retrieval.embedding, int(retrieval.rows[0]), float(retrieval.similarities[0]),
                                         prediction.t_lsl, prediction.marker, prediction.t_marker)
        top = prediction.top5[0]
        if prediction.probabilities[top] < self.config.min_confidence:
            return False
        return self._offer(top, None, prediction.t_lsl, prediction.marker, prediction.t_marker)

    def push(self, prediction: Prediction) -> None:
        """A sink of the live loop (:class:`bci_stream.live.interfaces.Sink`): :meth:`submit`."""
        self.submit(prediction)

    def submit_embedding(self, embedding: np.ndarray, top1_row: int, similarity: float = 1.0,
                         t_lsl: float | None = None, marker: str | None = None, t_marker: float | None = None) -> bool:
        """Offer an embedding decision: the decoded ``embedding`` (D,) (copied: the caller may reuse its
        buffer), the top-1 retrieved gallery row and its cosine ``similarity``; ``t_lsl``, ``marker``,
        ``t_marker`` as in a :class:`~bci_stream.live.prediction.Prediction`. True if it took the slot."""
        if similarity < self.config.min_similarity:
            return False
        return self._offer(int(top1_row), np.array(embedding, dtype=np.float32), t_lsl, marker, t_marker)

    def _offer(self, index: int, embedding: np.ndarray | None, t_lsl, marker, t_marker) -> bool:
        """Put a decision in the slot unless it shows what was last offered (within ``interval``)."""
        now = time.monotonic()
        if index == self._last_class and (self.config.interval <= 0 or now - self._last_time < self.config.interval):
            return False
        self._last_class, self._last_time = index, now
        with self._slot_lock:
            if self._slot is not None:
                self.n_dropped += 1  # a stale decision nobody rendered
            self._slot = _Job(index, embedding, t_lsl, marker, t_marker)
        self._wake.set()
        return True

    # --- worker side --------------------------------------------------------------------------
    def start(self) -> RenderWorker:
        self._thread = threading.Thread(target=self._run, name="renderer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._thread is None or not self._thread.is_alive():
            self._close_renderer()

    def close(self) -> None:
        """The session ended (:class:`bci_stream.live.interfaces.Sink`): :meth:`stop`."""
        self.stop()

    def _close_renderer(self) -> None:
        if self._renderer is not None:
            self._renderer.close()

    def _build(self):
        kind = self.config.kind
        if kind == "embedding-diffusion":
            self._check_space()  # here, before a child process spends a minute loading the pipeline
        if kind in ("diffusion", "embedding-diffusion"):
            from bci_stream.render.process import ProcessRenderer, build_in_process

            if self.config.in_process:
                return build_in_process(self.config, self.decoder_space)
            return ProcessRenderer(self.config, decoder_space=self.decoder_space)
        return GalleryRenderer(self.class_names, self.class_ids, self.config.gallery_dir, self.config.size)

    def _check_space(self) -> None:
        """Refuse a classifier, or an embedding model in another space than the pipeline's."""
        from bci_stream.render.embedding_diffusion import check_space, pipeline_space

        if self.decoder_space is None:
            raise RendererError("the embedding-diffusion renderer draws an embedding model's decisions, and this "
                                "model outputs class probabilities: use --renderer diffusion")
        model = self.config.diffusion_model
        check_space(self.decoder_space, pipeline_space(model, self.config.embedding_space), model)

    @property
    def _fallback_kind(self) -> str:
        return "retrieval" if self.config.kind == "embedding-diffusion" else "gallery"

    def _fall_back(self, err: Exception) -> None:
        what = str(err) if isinstance(err, RendererError) else f"{type(err).__name__}: {err}"
        message = f"{self.config.kind} renderer failed: {what}"
        log.error("%s; falling back to %s", message, self._fallback_kind)
        self._close_renderer()
        self.state.update(renderer_error=message, renderer_kind=f"{self._fallback_kind} (fallback)")
        folder = self.config.gallery_dir
        try:
            self._renderer = GalleryRenderer(self.class_names, self.class_ids, folder, self.config.size)
        except FileNotFoundError:
            self._renderer = GalleryRenderer(self.class_names, self.class_ids, None, self.config.size)

    def _run(self) -> None:
        if self._renderer is None:
            self.state.update(renderer_kind=f"{self.config.kind} (loading)")
            try:
                self._renderer = self._build()
            except Exception as err:  # missing weights, no CUDA, bad folder: report and fall back
                self._fall_back(err)
        self.state.update(renderer_kind=self._renderer.kind if not self.state.renderer_error
                          else f"{self._fallback_kind} (fallback)")
        while not self._stop.is_set():
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            with self._slot_lock:
                job, self._slot = self._slot, None
            if job is None:
                continue
            # an embedding decision goes to the renderer if it draws embeddings, else to retrieval
            renderer = self._renderer
            if job.embedding is not None and not renderer.draws_embeddings:
                renderer = self.retrieval
            t0 = time.perf_counter()
            try:
                if job.embedding is None:
                    name = self.class_names[job.index]
                    image = renderer.render(job.index, name)
                else:
                    name = self.retrieval.name_of(job.index)
                    image = renderer.render_embedding(job.embedding, job.index)
            except Exception as err:  # CUDA OOM, pipeline error, child died: the decoder never notices
                self._fall_back(err)
                continue
            seconds = time.perf_counter() - t0
            self._times = (self._times + [time.monotonic()])[-20:]
            span = self._times[-1] - self._times[0]
            fps = (len(self._times) - 1) / span if span > 0 else 0.0
            self.n_rendered += 1
            self.state.show_image(RenderedImage(image, job.index, name, pylsl.local_clock(), renderer.kind, seconds,
                                                job.t_decision, job.marker, job.t_marker), renderer_fps=fps)
