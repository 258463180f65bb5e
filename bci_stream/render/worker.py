"""The render worker: its own thread, fed through a size-1 latest-wins slot.

``submit`` never blocks and never queues: a newer decision replaces one not yet started, so
only the newest confident decision is rendered. Renders only when the decoded class changes (or
after ``interval`` seconds). Any failure is reported in the shared state and the worker falls
back to the gallery; decoding is never touched.
"""

from __future__ import annotations

import logging
import threading
import time

import pylsl

from bci_stream.render.base import RenderConfig, RendererError
from bci_stream.render.gallery import GalleryRenderer
from bci_stream.state import RenderedImage, SharedState

log = logging.getLogger(__name__)


class RenderWorker:
    def __init__(self, config: RenderConfig, class_names: list[str], state: SharedState | None = None,
                 class_ids: list[str] | None = None, renderer=None):
        self.config = config
        self.class_names, self.class_ids = class_names, class_ids
        self.state = state or SharedState()
        self._renderer = renderer
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
    def submit(self, prediction) -> bool:
        """Offer a decision; True if it took the slot (it may still be replaced before rendering)."""
        top = prediction.top5[0]
        if prediction.probabilities[top] < self.config.min_confidence:
            return False
        now = time.monotonic()
        if top == self._last_class and (self.config.interval <= 0 or now - self._last_time < self.config.interval):
            return False
        self._last_class, self._last_time = top, now
        with self._slot_lock:
            if self._slot is not None:
                self.n_dropped += 1  # a stale decision nobody rendered
            self._slot = (top, float(prediction.probabilities[top]), prediction.t_lsl, prediction.marker,
                          prediction.extra.get("t_marker"))
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

    def _close_renderer(self) -> None:
        close = getattr(self._renderer, "close", None)  # a renderer process
        if close is not None:
            close()

    def _build(self):
        kind = self.config.kind
        if kind == "diffusion" and self.config.in_process:
            from bci_stream.render.diffusion import DiffusionRenderer

            return DiffusionRenderer(self.config)
        if kind == "diffusion":
            from bci_stream.render.process import ProcessRenderer

            return ProcessRenderer(self.config)
        return GalleryRenderer(self.class_names, self.class_ids, self.config.gallery_dir, self.config.size)

    def _fall_back(self, err: Exception) -> None:
        what = str(err) if isinstance(err, RendererError) else f"{type(err).__name__}: {err}"
        message = f"{self.config.kind} renderer failed: {what}"
        log.error("%s; falling back to gallery", message)
        self._close_renderer()
        self.state.update(renderer_error=message, renderer_kind="gallery (fallback)")
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
        self.state.update(renderer_kind=self._renderer.kind if not self.state.renderer_error else "gallery (fallback)")
        while not self._stop.is_set():
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            with self._slot_lock:
                job, self._slot = self._slot, None
            if job is None:
                continue
            index, _, t_decision, marker, t_marker = job
            t0 = time.perf_counter()
            try:
                image = self._renderer.render(index, self.class_names[index])
            except Exception as err:  # CUDA OOM, pipeline error: the decoder never notices
                self._fall_back(err)
                continue
            seconds = time.perf_counter() - t0
            self._times = (self._times + [time.monotonic()])[-20:]
            span = self._times[-1] - self._times[0]
            fps = (len(self._times) - 1) / span if span > 0 else 0.0
            self.n_rendered += 1
            self.state.update(image=RenderedImage(image, index, self.class_names[index], pylsl.local_clock(),
                                                  self._renderer.kind, seconds, t_decision, marker, t_marker),
                              renderer_fps=fps)
