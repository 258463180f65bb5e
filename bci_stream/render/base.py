"""Renderer configuration and the interface every renderer implements.

A renderer draws a decision: ``render(class_index, class_name)`` for a classifier's decision
(diffusion, gallery), ``render_embedding(embedding, row)`` for an embedding model's decision
(embedding-diffusion; the retrieval fallback shows the gallery's thumbnail of ``row``; such a
renderer says ``draws_embeddings = True``). Both return an ``(H, W, 3)`` uint8 picture.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


class RendererError(RuntimeError):
    """A renderer cannot be built or failed to render (missing weights, out of memory, ...)."""


class RendererBase:
    """The whole :class:`bci_stream.live.interfaces.Renderer` interface with neutral defaults: a
    renderer overrides what it draws (``render``, or ``render_embedding`` with
    ``draws_embeddings = True``) and ``close`` when it holds something to release."""

    kind = "none"
    draws_embeddings = False

    def render(self, class_index: int, class_name: str) -> np.ndarray:
        raise RendererError(f"the {self.kind} renderer draws embeddings, not classes")

    def render_embedding(self, embedding: np.ndarray, row: int) -> np.ndarray:
        raise RendererError(f"the {self.kind} renderer draws classes, not embeddings")

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class RenderConfig:
    """What to render and when.

    Attributes
    ----------
    kind : "diffusion" (text prompt), "embedding-diffusion" (the decoded image embedding through an
        unCLIP pipeline; :mod:`bci_stream.render.embedding_diffusion`), "gallery" or "none".
    diffusion_model : diffusers folder or hub id (must be in the local cache offline); for
        "embedding-diffusion" a ``StableUnCLIPImg2ImgPipeline`` (default :data:`UNCLIP_MODEL` when the
        CLI is not given one).
    steps : denoising steps (SD-Turbo: 1-4).
    size : output side, pixels.
    prompt : template with ``{name}`` for the class name.
    seed : generator seed (per class: ``seed + class_index``; per retrieved gallery row for embedding
        decisions: ``seed + row``) so a class or an image keeps its look.
    device : "auto" (CUDA if available), "cpu", "cuda".
    taesd : folder of a TAESD tiny autoencoder to decode faster (optional).
    img2img_strength : > 0 starts from the previous frame (smoother live output).
    gallery_dir : folder with exemplar images per class.
    min_confidence : decisions below this probability are not rendered.
    interval : seconds after which the same class is rendered again (0: only on change).
    compile : torch.compile the UNet with CUDA graphs (CUDA only; the first renders take a minute).
    in_process : run the diffusion renderer on a thread of this process instead of a child process
        (the child keeps its Python work off the decoding thread's GIL; see render/process.py).
    embedding_space : "embedding-diffusion": the space of the pipeline's image encoder, e.g.
        ``"open_clip:ViT-H-14/laion2b_s32b_b79k"``; None: derived from the pipeline (known hub ids, else
        its image encoder's architecture). Must equal the decoder card's ``embedding.space``.
    embedding_steps : "embedding-diffusion": denoising steps (SD 2.1 unCLIP is not distilled: ~20).
    embedding_guidance : "embedding-diffusion": classifier-free guidance against a zero embedding
        (> 1 doubles the UNet batch; 1: off).
    noise_level : "embedding-diffusion": unCLIP's noise augmentation of the embedding, 0-999 (higher:
        freer variations of the decoded embedding).
    embedding_norm : "embedding-diffusion": the norm the decoded unit vector is scaled to before the
        pipeline (whose image encoder gives unnormalised embeddings); 0: the root-mean-square norm of
        the embeddings the pipeline was trained on, from its image normaliser's mean and std.
    min_similarity : embedding decisions whose top-1 cosine similarity is below this are not rendered.
    """

    kind: str = "gallery"
    diffusion_model: str = "stabilityai/sd-turbo"
    steps: int = 1
    size: int = 512
    prompt: str = "an image of a {name}"
    seed: int = 0
    device: str = "auto"
    taesd: str | None = None
    img2img_strength: float = 0.0
    gallery_dir: str | None = None
    min_confidence: float = 0.0
    interval: float = 0.0
    compile: bool = False
    in_process: bool = False
    embedding_space: str | None = None
    embedding_steps: int = 20
    embedding_guidance: float = 10.0
    noise_level: int = 0
    embedding_norm: float = 0.0
    min_similarity: float = -1.0

    def with_kind(self, kind: str) -> RenderConfig:
        """These settings for renderer ``kind`` (the viewer's renderer switch); a pipeline left at one
        diffusion kind's default becomes the other's (SD-Turbo cannot draw from an embedding)."""
        defaults = {"diffusion": RenderConfig.diffusion_model, "embedding-diffusion": UNCLIP_MODEL}
        model = defaults[kind] if kind in defaults and self.diffusion_model in defaults.values() else self.diffusion_model
        return replace(self, kind=kind, diffusion_model=model)


UNCLIP_MODEL = "stabilityai/stable-diffusion-2-1-unclip"  # the default "embedding-diffusion" pipeline
RENDER_KINDS = ("none", "gallery", "diffusion", "embedding-diffusion")
