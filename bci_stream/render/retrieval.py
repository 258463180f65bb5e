"""Retrieval "renderer": the top-1 retrieved gallery image's thumbnail, for an embedding model's decision.

What the live app shows for an embedding decision when there is no embedding-conditioned renderer,
or when it fails or refuses the model (space mismatch): the gallery index
(:class:`bci_stream.retrieval.index.GalleryIndex`) keeps a thumbnail per row; without one, a drawn card
with the row's label or image id.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from bci_stream.render.base import RendererBase
from bci_stream.render.exemplars import card, fit_square


class RetrievalRenderer(RendererBase):
    """``render_embedding(embedding, row)`` -> the thumbnail of ``row``, ``(size, size, 3)`` uint8.

    ``thumbnail_of(row)``: the row's picture ``(h, w, 3)`` uint8, or None; ``name_of(row)``: the
    row's label or image id (shown on the card when there is no thumbnail, and with the picture).
    """

    kind = "retrieval"
    draws_embeddings = True

    def __init__(self, thumbnail_of: Callable[[int], np.ndarray | None] | None = None,
                 name_of: Callable[[int], str] | None = None, size: int = 512):
        self.thumbnail_of = thumbnail_of or (lambda row: None)
        self.name_of = name_of or (lambda row: f"gallery row {row}")
        self.size = size

    @classmethod
    def from_gallery(cls, index, size: int = 512) -> RetrievalRenderer:
        """From a gallery index: its ``thumbnails`` (N, h, w, 3) uint8 or None, ``labels`` and ``ids``."""
        thumbnails = index.thumbnails

        def thumbnail_of(row: int) -> np.ndarray | None:
            return None if thumbnails is None else thumbnails[row]

        def name_of(row: int) -> str:
            return index.labels[row] or index.ids[row]

        return cls(thumbnail_of, name_of, size)

    def render_embedding(self, embedding: np.ndarray, row: int) -> np.ndarray:
        thumbnail = self.thumbnail_of(row)
        if thumbnail is None:
            return card(self.name_of(row), row, self.size)
        image = Image.fromarray(np.ascontiguousarray(thumbnail, dtype=np.uint8)).convert("RGB")
        return np.asarray(image if image.size == (self.size, self.size) else fit_square(image, self.size))
