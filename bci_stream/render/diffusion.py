"""Diffusion renderer: the class name in a prompt, through a diffusers text-to-image pipeline.

Default ``stabilityai/sd-turbo``: 1-4 steps, guidance 0, fp16 on CUDA. Loads from a local folder or
the local hub cache only (there is no network at run time); a missing model raises
:class:`RendererError` saying how to get it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from bci_stream._env import set_offline_environment
from bci_stream.render.base import RenderConfig, RendererBase, RendererError

set_offline_environment()  # before diffusers imports huggingface_hub (also when imported on its own)

log = logging.getLogger(__name__)


def looks_like_path(model: str) -> bool:
    """True for a string meant as a folder (``/x``, ``./x``, ``~/x``, ``a/b/c``), False for a hub id
    (``org/name``)."""
    return (model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") > 1
            or model.endswith("/") or Path(model).expanduser().exists())


def load_text2image(model: str, device: str = "auto", taesd: str | None = None, compile_unet: bool = False):
    """``AutoPipelineForText2Image`` from a folder or a cached hub id, on ``device`` (fp16 on CUDA);
    ``compile_unet``: the UNet through ``torch.compile`` with CUDA graphs (CUDA only: 1-step renders are
    bound by kernel launches; 40 -> 14-20 ms at 512 x 512 with TAESD on an H100)."""
    from diffusers import AutoPipelineForText2Image

    return load_pipeline(AutoPipelineForText2Image, model, device, taesd, compile_unet)


def load_pipeline(pipeline_class, model: str, device: str = "auto", taesd: str | None = None,
                  compile_unet: bool = False):
    """``pipeline_class.from_pretrained`` of a folder or a cached hub id, offline, on ``device`` (fp16 on
    CUDA), optionally with a TAESD decoder and a compiled UNet; returns ``(pipe, device)``. A model that
    cannot be loaded raises :class:`RendererError` saying how to get it (the one home of that message,
    for the text-prompt and the embedding-conditioned renderers)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    local = Path(model).expanduser()
    is_folder = looks_like_path(model)
    if is_folder and not local.is_dir():
        raise RendererError(
            f"no diffusers folder at {local}: pass a folder written by a pipeline's save_pretrained, or a hub id "
            "(e.g. stabilityai/sd-turbo) already in the local Hugging Face cache"
        )
    source = str(local) if is_folder else model
    try:
        pipe = pipeline_class.from_pretrained(source, dtype=dtype, local_files_only=True)
    except Exception as err:
        first = (str(err).splitlines() or [""])[0]
        if is_folder:
            raise RendererError(f"cannot load the diffusers folder {local}: {type(err).__name__}: {first}") from err
        raise RendererError(
            f"cannot load hub id {model!r} from the local Hugging Face cache ({type(err).__name__}: {first}). "
            f"There is no network at run time: on a connected machine run `hf download {model}` "
            "(or save_pretrained a pipeline to a folder) and pass --diffusion-model PATH."
        ) from err
    if taesd:
        from diffusers import AutoencoderTiny

        pipe.vae = AutoencoderTiny.from_pretrained(taesd, dtype=dtype, local_files_only=True)
    pipe = pipe.to(device)
    if device == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)  # faster convolutions on tensor cores
        if compile_unet:
            pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead", fullgraph=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe, device


class DiffusionRenderer(RendererBase):
    """Renders ``config.prompt.format(name=...)`` seeded per class; optional img2img from the last frame."""

    kind = "diffusion"

    def __init__(self, config: RenderConfig, pipe=None):
        import torch

        self.config = config
        self.pipe, self.device = (pipe, pipe.device.type) if pipe is not None else load_text2image(
            config.diffusion_model, config.device, config.taesd, config.compile)
        self._torch = torch
        self._img2img = None
        self._previous = None
        self._prompt_embeds: dict[str, object] = {}
        if config.img2img_strength > 0:
            from diffusers import AutoPipelineForImage2Image

            self._img2img = AutoPipelineForImage2Image.from_pipe(self.pipe)

    def render(self, class_index: int, class_name: str) -> np.ndarray:
        c = self.config
        generator = self._torch.Generator(device="cpu").manual_seed(c.seed + class_index)
        prompt = c.prompt.format(name=class_name)
        t0 = time.perf_counter()
        with self._torch.inference_mode():
            text = self._text_inputs(prompt)
            if self._img2img is not None and self._previous is not None:
                steps = max(c.steps, int(np.ceil(1 / c.img2img_strength)))
                image = self._img2img(**text, image=self._previous, strength=c.img2img_strength,
                                      num_inference_steps=steps, guidance_scale=0.0, generator=generator).images[0]
            else:
                image = self.pipe(**text, num_inference_steps=c.steps, guidance_scale=0.0, height=c.size,
                                  width=c.size, generator=generator).images[0]
        self._previous = image
        log.debug("rendered %r in %.3f s", prompt, time.perf_counter() - t0)
        return np.asarray(image.convert("RGB"))

    def _text_inputs(self, prompt: str) -> dict:
        """``prompt_embeds`` computed once per prompt (the text encoder is a fifth of a 1-step SD-Turbo
        render) for Stable-Diffusion pipelines; other pipelines get the prompt itself."""
        from diffusers import StableDiffusionPipeline

        if not isinstance(self.pipe, StableDiffusionPipeline):
            return {"prompt": prompt}
        if prompt not in self._prompt_embeds:
            self._prompt_embeds[prompt] = self.pipe.encode_prompt(prompt, self.pipe.device, 1, False)[0]
        return {"prompt_embeds": self._prompt_embeds[prompt]}
