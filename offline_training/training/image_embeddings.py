"""Image embeddings the embedding objective trains towards: one unit vector per stimulus image id, in a
named space (torch-free).

They come from the semantic phantom (its images' latent embeddings: what CLIP would give for the picture,
never the map to the EEG) or from an embedding cache written by ``bci-train embed-images`` (a gallery
index file, :mod:`bci_stream.retrieval.index`: open_clip image embeddings keyed by image id).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageEmbeddings:
    """Embeddings keyed by image id.

    Attributes
    ----------
    ids : image ids, one per row (``Trials.image_ids`` values).
    embeddings : float32 ``(n_images, dim)``, unit rows.
    space : the embedding space, ``"open_clip:<model>/<pretrained>"`` or ``"phantom:seed=<s>,dim=<d>,classes=<n>,images=<m>,spread=<x>"``
        (a card, a gallery index and a renderer must agree on it).
    checkpoint_sha256 : sha256 of the image model's weights file ("" for a hub tag or the phantom).
    """

    ids: list[str]
    embeddings: np.ndarray
    space: str
    checkpoint_sha256: str = ""

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def rows_of(self, image_ids) -> np.ndarray:
        """Row of each image id ``(n,)``; a one-line error names the ids the cache lacks."""
        index = {image_id: i for i, image_id in enumerate(self.ids)}
        rows = np.array([index.get(str(i), -1) for i in image_ids], dtype=np.int64)
        if (rows < 0).any():
            missing = sorted({str(i) for i, r in zip(image_ids, rows) if r < 0})
            raise ValueError(f"no image embedding for {len(missing)} image id(s) (e.g. {missing[0]!r}) in the "
                             f"{self.space} embeddings; embed those images with `bci-train embed-images` (ids are "
                             "file stems) or check that the data's image ids name the stimulus files")
        return rows

    def for_trials(self, image_ids) -> np.ndarray:
        """The embedding of each trial's image, float32 ``(n_trials, dim)``."""
        return self.embeddings[self.rows_of(image_ids)]


def from_phantom(phantom) -> ImageEmbeddings:
    """Every image of a semantic :class:`bci_stream.sources.phantom.Phantom` (its latent embeddings, not ``W``)."""
    ids, embeddings = phantom.embeddings_by_image_id()
    return ImageEmbeddings(ids, embeddings.astype(np.float32), phantom.embedding_space, "")


def load_image_embeddings(path: str) -> ImageEmbeddings:
    """An embedding cache written by ``bci-train embed-images`` (a gallery index ``.safetensors`` file)."""
    from bci_stream.retrieval.index import load_gallery

    index = load_gallery(path)
    return ImageEmbeddings(list(index.ids), np.asarray(index.embeddings, np.float32), index.space,
                           index.checkpoint_sha256)
