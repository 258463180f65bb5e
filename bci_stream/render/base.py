"""Renderer configuration and the interface every renderer implements."""

from __future__ import annotations

from dataclasses import dataclass


class RendererError(RuntimeError):
    """A renderer cannot be built or failed to render (missing weights, out of memory, ...)."""


@dataclass(frozen=True)
class RenderConfig:
    """What to render and when.

    Attributes
    ----------
    kind : "diffusion", "gallery" or "none".
    diffusion_model : diffusers folder or hub id (must be in the local cache offline).
    steps : denoising steps (SD-Turbo: 1-4).
    size : output side, pixels.
    prompt : template with ``{name}`` for the class name.
    seed : generator seed (per class: ``seed + class_index``) so a class keeps its look.
    device : "auto" (CUDA if available), "cpu", "cuda".
    taesd : folder of a TAESD tiny autoencoder to decode faster (optional).
    img2img_strength : > 0 starts from the previous frame (smoother live output).
    gallery_dir : folder with exemplar images per class.
    min_confidence : decisions below this probability are not rendered.
    interval : seconds after which the same class is rendered again (0: only on change).
    compile : torch.compile the UNet with CUDA graphs (CUDA only; the first renders take a minute).
    in_process : run the diffusion renderer on a thread of this process instead of a child process
        (the child keeps its Python work off the decoding thread's GIL; see render/process.py).
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
