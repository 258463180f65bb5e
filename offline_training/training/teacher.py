"""The teacher: an open_clip zero-shot classifier over the class names, run on the stimulus images.

Its per-image class probabilities are the soft labels the student distils. They are computed once
and cached (safetensors, keyed by image id), so training never recomputes them.

Weights come from an open_clip ``pretrained`` tag (e.g. ``laion2b_s34b_b79k``, which needs the
weights in the local hub cache — there is no network at run time) or a local checkpoint path. A
custom architecture is registered from its JSON config with ``model_config``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from tqdm.auto import tqdm

from bci_stream.io.safe_write import write_with

TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a close-up photo of a {}.",
    "a bright photo of a {}.",
    "a photo of the large {}.",
    "a photo of the small {}.",
    "art of the {}.",
)
IMAGE_SUFFIXES = (".JPEG", ".jpeg", ".jpg", ".JPG", ".png", ".PNG")


@dataclass(frozen=True)
class TeacherConfig:
    """open_clip teacher.

    Attributes
    ----------
    model : open_clip model name (e.g. "ViT-B-32", or the name in ``model_config``).
    pretrained : a pretrained tag, or a local checkpoint path (``.safetensors`` / ``.bin``).
    model_config : JSON file with a custom open_clip model config to register first.
    templates : prompt ensemble; each is formatted with the class name.
    batch_size : images per forward pass.
    device : "auto" (CUDA if available), "cpu" or "cuda".
    """

    model: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"
    model_config: str | None = None
    templates: tuple[str, ...] = TEMPLATES
    batch_size: int = 32
    device: str = "auto"

    @property
    def name(self) -> str:
        return f"open_clip:{self.model}/{Path(self.pretrained).name if self.pretrained else 'random'}"


class ClipTeacher:
    """Zero-shot CLIP classifier: ``probabilities(images)`` → ``(n_images, n_classes)``."""

    def __init__(self, config: TeacherConfig, class_names: list[str]):
        import open_clip

        self.config = config
        if config.model_config:
            open_clip.add_model_config(str(Path(config.model_config).resolve()))
        device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        pretrained = config.pretrained
        if pretrained and Path(pretrained).exists():
            pretrained = str(Path(pretrained).resolve())
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(config.model, pretrained=pretrained or None,
                                                                         device=device)
        except Exception as err:
            raise RuntimeError(
                f"cannot load open_clip {config.model!r} with pretrained={config.pretrained!r}: {err}. "
                "Offline, pass a local checkpoint path, or make sure the weights are in the hub cache."
            ) from err
        self.model, self.preprocess, self.device = model.eval(), preprocess, device
        self.tokenizer = open_clip.get_tokenizer(config.model)
        self.class_names = list(class_names)
        self.text_features = self._class_embeddings()

    @torch.no_grad()
    def _class_embeddings(self) -> torch.Tensor:
        """``(n_classes, dim)`` unit vectors: the mean of each class's prompt embeddings."""
        out = []
        for name in self.class_names:
            tokens = self.tokenizer([t.format(name) for t in self.config.templates]).to(self.device)
            emb = self.model.encode_text(tokens)
            emb = emb / emb.norm(dim=-1, keepdim=True)
            mean = emb.mean(0)
            out.append(mean / mean.norm())
        return torch.stack(out)

    @torch.no_grad()
    def probabilities(self, images: list) -> np.ndarray:
        """Class probabilities ``(n_images, n_classes)`` for PIL images (CLIP's own logit scale)."""
        x = torch.stack([self.preprocess(im.convert("RGB")) for im in images]).to(self.device)
        feats = self.model.encode_image(x)
        feats = feats / feats.norm(dim=-1, keepdim=True)
        logits = self.model.logit_scale.exp() * feats @ self.text_features.T
        return logits.softmax(dim=-1).float().cpu().numpy()


def find_image(image_dir: Path, image_id: str) -> Path | None:
    """``DIR/<id>.<ext>`` or ImageNet's ``DIR/<synset>/<id>.<ext>``."""
    synset = image_id.rsplit("_", 1)[0]
    for folder in (image_dir, image_dir / synset):
        for suffix in IMAGE_SUFFIXES:
            candidate = folder / f"{image_id}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def compute_soft_labels(image_ids: list[str], image_dir: str | Path, class_names: list[str], config: TeacherConfig,
                        cache: str | Path, progress: bool = True) -> Path:
    """Run the teacher on every image once and write ``cache`` (safetensors: ``probabilities``
    ``(n_images, n_classes)``; metadata: image ids, class names, teacher). Images already in an
    existing cache from the same teacher and classes are not recomputed."""
    from PIL import Image

    image_dir, cache = Path(image_dir), Path(cache)
    unique = list(dict.fromkeys(str(i) for i in image_ids))
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        old = load_soft_labels(cache)
        if old.class_names == list(class_names) and old.teacher == config.name:
            known = {i: old.probabilities[k] for k, i in enumerate(old.image_ids)}
    todo = [i for i in unique if i not in known]
    missing = [i for i in todo if find_image(image_dir, i) is None]
    if missing:
        raise FileNotFoundError(f"{len(missing)} stimulus images not found under {image_dir} (e.g. {missing[:3]})")
    if todo:
        teacher = ClipTeacher(config, class_names)
        for start in tqdm(range(0, len(todo), config.batch_size), desc="teacher", unit="batch",
                          disable=None if progress else True):  # None: no bar off a terminal
            batch = todo[start : start + config.batch_size]
            probs = teacher.probabilities([Image.open(find_image(image_dir, i)) for i in batch])
            known.update(zip(batch, probs))
    ids = sorted(known)
    tensors = {"probabilities": np.stack([known[i] for i in ids]).astype(np.float32)}
    metadata = {"image_ids": json.dumps(ids), "class_names": json.dumps(list(class_names)), "teacher": config.name}
    write_with(cache, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return cache


@dataclass
class SoftLabels:
    """Cached teacher output: ``probabilities[k]`` belongs to ``image_ids[k]``."""

    probabilities: np.ndarray
    image_ids: list[str]
    class_names: list[str]
    teacher: str

    def for_trials(self, image_ids: np.ndarray) -> np.ndarray:
        """Per-trial soft labels ``(n_trials, n_classes)``; raises naming images the cache lacks."""
        index = {i: k for k, i in enumerate(self.image_ids)}
        missing = sorted({str(i) for i in image_ids if str(i) not in index})
        if missing:
            raise KeyError(f"teacher cache lacks {len(missing)} images (e.g. {missing[:3]}); rerun `bci-train teacher`")
        return self.probabilities[[index[str(i)] for i in image_ids]]


def load_soft_labels(path: str | Path) -> SoftLabels:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    tensors = load_file(str(path))
    return SoftLabels(tensors["probabilities"], json.loads(meta.get("image_ids", "[]")),
                      json.loads(meta.get("class_names", "[]")), meta.get("teacher", ""))
