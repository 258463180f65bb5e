"""The 40 classes of Spampinato et al. 2017 ImageNet-EEG (PerceiveLab): label index -> ImageNet synset -> readable name.

Order as in the perceivelab / BrainVis code (the labels stored in the ``.pth`` files index this list).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class ClassInfo:
    """One class: its label ``index``, ImageNet ``synset`` id and readable ``name``."""

    index: int
    synset: str
    name: str


@lru_cache(maxsize=1)
def eegimagenet_classes() -> tuple[ClassInfo, ...]:
    """The 40 ImageNet-EEG classes in label order."""
    text = resources.files("bci_stream.data").joinpath("eegimagenet_classes.tsv").read_text()
    rows = [line.split("\t") for line in text.strip().splitlines()[1:]]
    classes = tuple(ClassInfo(int(i), s, n) for i, s, n in rows)
    assert [c.index for c in classes] == list(range(len(classes))), "class table out of order"
    return classes


def class_names(n: int = 40) -> list[str]:
    """Readable names of the first ``n`` ImageNet-EEG classes."""
    return [c.name for c in eegimagenet_classes()[:n]]


def class_synsets(n: int = 40) -> list[str]:
    """ImageNet synset ids of the first ``n`` ImageNet-EEG classes."""
    return [c.synset for c in eegimagenet_classes()[:n]]
