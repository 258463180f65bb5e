"""Stimulus images and their marker texts: one home for the rule the presenter, the listening phantom
and the trainer's mapping file share.

A folder in the gallery layout, ``DIR/<class>/<image>.jpg`` (or .png/.jpeg/.bmp), is a set of
stimuli. Each image's marker is its **image id** ``<class>_<n>``: the file stem when it already has
that form (``n02106662_3437.jpg`` in ``n02106662/``, EEG-ImageNet's naming), else ``<class>_<stem>``
with the stem's underscores written as hyphens, so the class is always what precedes the last
underscore (the rule :func:`bci_stream.live.scoring.class_by_rule` and the trainer's EEG-ImageNet lookup use).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class StimulusError(ValueError):
    """A stimulus folder that cannot be presented (the message names the folder and what to do)."""


@dataclass(frozen=True)
class Stimulus:
    """One picture: its file, class (folder name) and marker text (image id)."""

    path: Path
    cls: str
    image_id: str


def image_id(cls: str, stem: str) -> str:
    """The marker of image ``stem`` in class folder ``cls`` (see the module docstring)."""
    rest = stem[len(cls) + 1:] if stem.startswith(cls + "_") else ""
    if rest and "_" not in rest:
        return stem
    return f"{cls}_{stem.replace('_', '-')}"


def class_of_image_id(marker: str) -> tuple[str, str]:
    """``(class, image part)`` of an image id (``("", marker)`` when it has no underscore)."""
    cls, _, rest = marker.rpartition("_")
    return cls, rest


def scan_images(directory: str | Path) -> list[Stimulus]:
    """Every image of ``DIR/<class>/*``, classes and files in sorted order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise StimulusError(f"no image folder at {directory}; give a folder of <class>/*.jpg")
    out = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                out.append(Stimulus(f, folder.name, image_id(folder.name, f.stem)))
    classes = {s.cls for s in out}
    if len(classes) < 2:
        raise StimulusError(f"{directory}: {len(out)} image(s) in {len(classes)} class folder(s); a decoder needs "
                            "at least two classes in the gallery layout <class>/*.jpg")
    ids = [s.image_id for s in out]
    if len(set(ids)) != len(ids):
        raise StimulusError(f"{directory}: two images share an id (e.g. a.jpg and a.png); rename one")
    return out


def write_mapping(stimuli: list[Stimulus], path: str | Path, class_order: list[str] | None = None) -> Path:
    """The trainer's mapping file (``marker<TAB>class_id``) for ``stimuli``: ``xdf:FILE,mapping=PATH``.
    The classes come out in file order: ``class_order`` (e.g. a running model's class ids, so that a
    model trained on it can replace that one) when it holds the same classes, else sorted."""
    path = Path(path)
    classes = sorted({s.cls for s in stimuli})
    if class_order is not None and sorted(class_order) == classes:
        classes = list(class_order)
    rank = {c: i for i, c in enumerate(classes)}
    rows = sorted(stimuli, key=lambda s: (rank[s.cls], s.image_id))
    path.write_text("marker\tclass_id\n" + "".join(f"{s.image_id}\t{s.cls}\n" for s in rows))
    return path


def stable_index(text: str, n: int) -> int:
    """A deterministic index in ``range(n)`` for ``text`` (CRC-32: the same in every process)."""
    return zlib.crc32(text.encode()) % n
