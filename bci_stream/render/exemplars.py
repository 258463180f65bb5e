"""Gallery renderer: an exemplar image of the class from a folder, or a drawn card with its name."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bci_stream.render.base import RendererBase

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class GalleryRenderer(RendererBase):
    """Picks the class's images from ``folder`` in turn.

    A class's images are ``folder/<synset or name>/*`` or ``folder/<synset>_*.*`` (the ImageNet-EEG
    stimulus naming). Without a folder, or with no image for the class, draws a card.
    """

    kind = "gallery"

    def __init__(self, class_names: list[str], class_ids: list[str] | None = None, folder: str | None = None,
                 size: int = 512):
        self.class_names = class_names
        self.class_ids = class_ids or class_names
        self.size = size
        self.folder = Path(folder) if folder else None
        if self.folder is not None and not self.folder.is_dir():
            raise FileNotFoundError(f"gallery folder {self.folder} does not exist")
        self._images: dict[int, list[Path]] = {}
        self._turn: dict[int, int] = {}

    def _files(self, index: int) -> list[Path]:
        if index not in self._images:
            found: list[Path] = []
            if self.folder is not None:
                for key in (self.class_ids[index], self.class_names[index]):
                    sub = self.folder / key
                    if sub.is_dir():
                        found += sorted(p for p in sub.iterdir() if p.suffix.lower() in SUFFIXES)
                found += sorted(p for p in self.folder.glob(f"{self.class_ids[index]}_*") if p.suffix.lower() in SUFFIXES)
            self._images[index] = found
        return self._images[index]

    def render(self, class_index: int, class_name: str) -> np.ndarray:
        files = self._files(class_index)
        if files:
            turn = self._turn.get(class_index, 0)
            self._turn[class_index] = turn + 1
            with Image.open(files[turn % len(files)]) as im:
                return np.asarray(fit_square(im.convert("RGB"), self.size))
        return card(class_name, class_index, self.size)


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square and resize to ``size``."""
    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
    return image.crop(box).resize((size, size), Image.Resampling.BICUBIC)


def card(text: str, index: int, size: int = 512) -> np.ndarray:
    """A coloured card with ``text`` in the middle, ``(size, size, 3)`` uint8 (colour from ``index``)."""
    r, g, b = colorsys.hsv_to_rgb((index * 0.618) % 1.0, 0.45, 0.55)
    image = Image.new("RGB", (size, size), (int(r * 255), int(g * 255), int(b * 255)))
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=max(12, size // 10))
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    box = draw.textbbox((0, 0), text, font=font)
    draw.text(((size - (box[2] - box[0])) / 2, (size - (box[3] - box[1])) / 2), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)
