"""A renderer in a child process, so that its Python work never competes with decoding for the GIL.

A 1-step SD-Turbo render is bound by Python launching CUDA kernels: run on a thread of the decoding
process it holds the GIL often enough to raise the decisions' p99 several-fold; from a child process
the decisions keep their latency, the decoding process only receives each finished picture
(``tools/bench_render.py --decoder``; figures in the README's benchmark section).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time

import numpy as np

from bci_stream.render.base import RenderConfig, RendererBase, RendererError

log = logging.getLogger(__name__)


def build_in_process(config: RenderConfig, decoder_space: str | None = None):
    """The pipeline renderer of ``config.kind`` in this process: ``DiffusionRenderer`` ("diffusion") or
    ``EmbeddingDiffusionRenderer`` ("embedding-diffusion", checked against ``decoder_space``)."""
    if config.kind == "embedding-diffusion":
        from bci_stream.render.embedding_diffusion import EmbeddingDiffusionRenderer

        return EmbeddingDiffusionRenderer(config, decoder_space=decoder_space)
    from bci_stream.render.diffusion import DiffusionRenderer

    return DiffusionRenderer(config)


def _serve(config: RenderConfig, decoder_space: str | None, conn) -> None:
    """Child process: build the renderer, then answer ``(method, args)`` jobs (``render(index, name)``
    or ``render_embedding(embedding, row)``) with pictures."""
    try:
        renderer = build_in_process(config, decoder_space)
    except Exception as err:  # missing weights, no CUDA, space mismatch: the parent reports it and falls back
        conn.send(("error", describe_error(err)))
        return
    conn.send(("ready", f"{renderer.kind} on {renderer.device}"))
    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if job is None:
            return
        method, args = job
        draw = renderer.render_embedding if method == "render_embedding" else renderer.render
        try:
            conn.send(("image", draw(*args)))
        except Exception as err:  # CUDA OOM, pipeline error
            conn.send(("error", describe_error(err)))


def describe_error(err: Exception) -> str:
    """The child's error for the parent, which wraps it in a RendererError (so a RendererError's own
    message goes without its type: no "RendererError: RendererError: ...")."""
    return str(err) if isinstance(err, RendererError) else f"{type(err).__name__}: {err}"


class ProcessRenderer(RendererBase):
    """The renderer :func:`build_in_process` builds for ``config``, run in a child process: the
    :class:`~bci_stream.render.diffusion.DiffusionRenderer` ("diffusion") or the
    :class:`~bci_stream.render.embedding_diffusion.EmbeddingDiffusionRenderer` ("embedding-diffusion",
    which refuses a ``decoder_space`` other than its pipeline's).

    Raises :class:`RendererError` at construction if the child cannot build it (the child's own
    message), and from :meth:`render` / :meth:`render_embedding` if rendering fails or the child has died.
    """

    def __init__(self, config: RenderConfig, start_timeout: float = 900.0, render_timeout: float = 120.0,
                 decoder_space: str | None = None):
        self.kind = config.kind
        self.draws_embeddings = config.kind == "embedding-diffusion"
        self.render_timeout = render_timeout
        context = mp.get_context("spawn")  # never fork a process that holds CUDA or LSL threads
        self._conn, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(config, decoder_space, child_end),
                                       name="bci-stream-renderer", daemon=True)
        self.process.start()
        child_end.close()
        status, payload = self._receive(start_timeout)
        if status != "ready":
            self.close()
            raise RendererError(payload)
        self.description = payload
        log.info("renderer process %d: %s", self.process.pid, payload)

    def render(self, class_index: int, class_name: str) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 picture of the class, rendered in the child."""
        return self._ask("render", (class_index, class_name))

    def render_embedding(self, embedding: np.ndarray, row: int) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 picture of the decoded ``embedding`` (D,), rendered in the child."""
        return self._ask("render_embedding", (np.asarray(embedding, dtype=np.float32), int(row)))

    def _ask(self, method: str, args: tuple) -> np.ndarray:
        try:
            self._conn.send((method, args))
        except (BrokenPipeError, OSError) as err:
            raise RendererError(self._ended()) from err
        status, payload = self._receive(self.render_timeout)
        if status != "image":
            raise RendererError(payload)
        return payload

    def close(self) -> None:
        """Ask the child to stop; end it if it does not within 5 s."""
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        self._conn.close()

    def _receive(self, timeout: float) -> tuple[str, object]:
        deadline = time.monotonic() + timeout
        while not self._conn.poll(0.2):
            if not self.process.is_alive():
                return "error", self._ended()
            if time.monotonic() > deadline:
                return "error", f"renderer process gave no answer within {timeout:g} s"
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            return "error", self._ended()

    def _ended(self) -> str:
        self.process.join(timeout=1)
        return f"renderer process ended (exit code {self.process.exitcode})"
