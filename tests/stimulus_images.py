"""A small folder of pictures in the gallery layout (``<class>/*.jpg``), drawn with PIL for tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw


def make_image_folder(root: Path, classes: list[str], per_class: int = 3, px: int = 32) -> Path:
    """``root/<class>/<class>_<i>.jpg``: a coloured square with a class-specific shape."""
    for k, cls in enumerate(classes):
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (px, px), ((40 * k) % 256, (90 * i) % 256, 160))
            ImageDraw.Draw(img).ellipse([4 + k, 4 + i, px - 4, px - 4], fill=(255, 255, 255))
            img.save(folder / f"{cls}_{i}.jpg")
    return root
