"""Embedding-conditioned renderer: the decoded image embedding through a diffusers unCLIP pipeline.

An embedding model (card output kind "embedding") decodes a unit vector in an image-embedding space
(e.g. OpenCLIP ViT-H-14). ``StableUnCLIPImg2ImgPipeline`` (SD 2.1 unCLIP) draws an image from exactly
such a vector: its ``image_embeds`` input is the CLIP image embedding of the picture to vary, and
the UNet is conditioned on it through its class embedding.

Why unCLIP rather than IP-Adapter (``ip_adapter_image_embeds``):

* unCLIP's conditioning *is* the pooled CLIP image embedding, the vector the decoder is trained to
  reach; IP-Adapter turns the same vector into extra cross-attention tokens through an adapter
  trained beside a text prompt, so a second set of weights (and a prompt) sits between the EEG and
  the picture.
* unCLIP was trained with noise augmentation of that embedding (``noise_level``): it is built to
  draw from an imprecise embedding, which a decoded EEG embedding always is; the same knob trades
  faithfulness for variety.
* One pipeline class with its own image encoder folder: the space it expects can be read from the
  pipeline itself (:func:`pipeline_space`) and checked against the card, with no adapter file whose
  encoder must be matched by hand.

The space rule: a card whose ``embedding.space`` differs from the pipeline's is refused
(:func:`check_space`, a one-line :class:`RendererError` naming both); the render worker then shows
the top-1 retrieved gallery image instead. The decoded vector is L2-normalised while the pipeline's
image encoder gives unnormalised embeddings, so it is rescaled to the norm of the embeddings the
pipeline was trained on (:func:`typical_norm`, from its image normaliser's statistics).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from bci_stream._env import set_offline_environment
from bci_stream.render.base import RenderConfig, RendererBase, RendererError
from bci_stream.render.diffusion import load_pipeline, looks_like_path

set_offline_environment()  # before diffusers imports huggingface_hub (also when imported on its own)

log = logging.getLogger(__name__)

# The image encoders of the published SD 2.1 unCLIP pipelines, by hub id.
KNOWN_SPACES = {
    "stabilityai/stable-diffusion-2-1-unclip": "open_clip:ViT-H-14/laion2b_s32b_b79k",
    "stabilityai/stable-diffusion-2-1-unclip-small": "open_clip:ViT-L-14/openai",
    "diffusers/stable-diffusion-2-1-unclip-i2i-h": "open_clip:ViT-H-14/laion2b_s32b_b79k",
    "diffusers/stable-diffusion-2-1-unclip-i2i-l": "open_clip:ViT-L-14/openai",
}
# The same encoders by architecture (a saved copy of those pipelines in a folder):
# (hidden_size, num_hidden_layers, patch_size, projection_dim) of the CLIPVisionModelWithProjection.
ENCODER_SPACES = {
    (1280, 32, 14, 1024): "open_clip:ViT-H-14/laion2b_s32b_b79k",
    (1024, 24, 14, 768): "open_clip:ViT-L-14/openai",
}


def pipeline_space(model: str, given: str | None = None) -> str:
    """The embedding space of ``model``'s image encoder: ``given`` if set, else the known hub id's, else
    read from the image encoder's ``config.json`` (folder or local hub cache) and matched by
    architecture. Raises :class:`RendererError` when it cannot be told."""
    if given:
        return given
    if model in KNOWN_SPACES:
        return KNOWN_SPACES[model]
    config = _image_encoder_config(model)
    if config is not None:
        key = tuple(config.get(k) for k in ("hidden_size", "num_hidden_layers", "patch_size", "projection_dim"))
        if key in ENCODER_SPACES:
            return ENCODER_SPACES[key]
    raise RendererError(
        f"cannot tell which embedding space the image encoder of {model} uses: pass --embedding-space "
        "(e.g. open_clip:ViT-H-14/laion2b_s32b_b79k for SD 2.1 unCLIP) naming the image model whose "
        "embeddings the pipeline was trained on"
    )


def _image_encoder_config(model: str) -> dict | None:
    """The pipeline's ``image_encoder/config.json`` from a folder or the local hub cache, or None."""
    if looks_like_path(model):
        path = Path(model).expanduser() / "image_encoder" / "config.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "image_encoder/config.json")
        path = Path(cached) if isinstance(cached, str) else None
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_space(decoder_space: str, pipeline_space: str, model: str) -> None:
    """Refuse a decoder whose embeddings are not in the pipeline's space (one line naming both)."""
    if decoder_space != pipeline_space:
        raise RendererError(
            f"the model decodes embeddings in {decoder_space!r} but the unCLIP pipeline {model} draws from "
            f"{pipeline_space!r}: train the model on that space's image embeddings, or pass --embedding-space "
            "only if the pipeline's image encoder really is the model's"
        )


def load_unclip(model: str, device: str = "auto", taesd: str | None = None, compile_unet: bool = False):
    """``StableUnCLIPImg2ImgPipeline`` from a folder or a cached hub id, offline; ``(pipe, device)``."""
    from diffusers import StableUnCLIPImg2ImgPipeline

    return load_pipeline(StableUnCLIPImg2ImgPipeline, model, device, taesd, compile_unet)


def typical_norm(pipe) -> float:
    """Root-mean-square norm of the embeddings the pipeline was trained on: its image normaliser holds
    their per-dimension mean and std, so E|x|^2 = sum(mean^2 + std^2)."""
    normalizer = pipe.image_normalizer
    mean = normalizer.mean.detach().float().cpu().numpy()
    std = normalizer.std.detach().float().cpu().numpy()
    return float(np.sqrt(np.sum(mean**2 + std**2)))


class EmbeddingDiffusionRenderer(RendererBase):
    """Draws ``render_embedding(embedding (D,), row)``: the unit vector scaled to the pipeline's norm,
    seeded per gallery row (``config.seed + row``) so a retrieved image keeps its look.

    ``decoder_space`` (the card's ``embedding.space``): checked against the pipeline's space before
    the pipeline is loaded; None skips the check (the caller did it).
    """

    kind = "embedding-diffusion"
    draws_embeddings = True  # the worker sends it embedding decisions (render_embedding)

    def __init__(self, config: RenderConfig, pipe=None, decoder_space: str | None = None):
        import torch

        self.config = config
        self.space = pipeline_space(config.diffusion_model, config.embedding_space)
        if decoder_space is not None:
            check_space(decoder_space, self.space, config.diffusion_model)
        self.pipe, self.device = (pipe, pipe.device.type) if pipe is not None else load_unclip(
            config.diffusion_model, config.device, config.taesd, config.compile)
        self._torch = torch
        self.dim = int(self.pipe.image_normalizer.mean.shape[-1])
        self.norm = config.embedding_norm or typical_norm(self.pipe)
        guidance = config.embedding_guidance > 1.0
        with torch.inference_mode():  # the empty prompt, encoded once (the text encoder is not needed per picture)
            self._prompt, self._negative = self.pipe.encode_prompt("", self.pipe.device, 1, guidance)

    def render_embedding(self, embedding: np.ndarray, row: int) -> np.ndarray:
        """An ``(size, size, 3)`` uint8 picture of the decoded ``embedding`` (D,) (L2-normalised here);
        ``row``: the top-1 retrieved gallery row, which seeds the generator."""
        c = self.config
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.dim or not np.all(np.isfinite(vector)) or not np.any(vector):
            raise RendererError(f"the unCLIP pipeline needs a finite non-zero {self.dim}-d embedding, got "
                                f"{vector.shape[0]}-d{'' if np.all(np.isfinite(vector)) else ' with non-finite values'}")
        vector = vector / np.linalg.norm(vector) * self.norm
        torch = self._torch
        generator = torch.Generator(device="cpu").manual_seed(c.seed + int(row))
        dtype = self._prompt.dtype
        t0 = time.perf_counter()
        with torch.inference_mode():
            image_embeds = torch.from_numpy(vector)[None].to(self.pipe.device, dtype)
            image = self.pipe(image_embeds=image_embeds, prompt_embeds=self._prompt,
                              negative_prompt_embeds=self._negative, num_inference_steps=c.embedding_steps,
                              guidance_scale=c.embedding_guidance, noise_level=c.noise_level, height=c.size,
                              width=c.size, generator=generator).images[0]
        log.debug("rendered row %d from its embedding in %.3f s", row, time.perf_counter() - t0)
        return np.asarray(image.convert("RGB"))
