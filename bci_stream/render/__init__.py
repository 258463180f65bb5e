"""Pictures of the decoded class: diffusion (diffusers), gallery (exemplar images or a drawn card), none.

:class:`RenderWorker` runs a renderer on its own thread behind a latest-wins slot, so decoding
never waits for it.
"""

from bci_stream.render.base import RenderConfig, RendererError
from bci_stream.render.worker import RenderWorker

__all__ = ["RenderConfig", "RenderWorker", "RendererError"]
