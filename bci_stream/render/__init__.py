"""Pictures of the decoded class: diffusion (diffusers), gallery (exemplar images or a drawn card), none.

:class:`RenderWorker` runs a renderer on its own thread behind a latest-wins slot, so decoding
never waits for it. Importing this package puts the Hugging Face libraries offline
(:mod:`bci_stream._env`): there is no network at run time.
"""

from bci_stream._env import set_offline_environment

set_offline_environment()  # before anything below can import huggingface_hub

# ruff: noqa: E402

from bci_stream.render.base import RenderConfig, RendererError
from bci_stream.render.worker import RenderWorker

__all__ = ["RenderConfig", "RenderWorker", "RendererError"]
