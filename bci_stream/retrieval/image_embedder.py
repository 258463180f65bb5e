"""open_clip image encoder: image files in, L2-normalised embeddings out (for gallery indexes).

Weights come from an open_clip ``pretrained`` tag (which must already be in the local Hugging Face
cache: there is no network at run time, :mod:`bci_stream._env`) or a local weights file
(``.safetensors``, preferred; ``.bin``/``.pt``/``.pth`` are read with ``torch.load(weights_only=True)``
and refused if they ask to run code). A custom architecture is registered from its JSON config
(``model_config``), as ``bci-train teacher`` does.

The embedding **space** is ``"open_clip:<model>/<tag or weights file name>"`` and the weights'
identity ``sha256`` of the file ("" for a tag): a card, a gallery index and an image-conditioned
renderer must agree on both (:func:`bci_stream.retrieval.index.check_gallery_fits_card`).

Needs the ``[train]`` layer (torch, open_clip); the live decoder never imports this module.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bci_stream._env import set_offline_environment
from bci_stream.retrieval.index import GalleryIndex, file_sha256

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
PICKLED_SUFFIXES = (".bin", ".pt", ".pth")


class ImageModelError(RuntimeError):
    """The image model cannot be loaded (unknown name, weights absent offline, unsafe or corrupt file)."""


def is_weights_file(pretrained: str) -> bool:
    """``pretrained`` names a local file (an existing path, or one ending in a weights suffix) rather than a tag."""
    return bool(pretrained) and (Path(pretrained).exists() or pretrained.lower().endswith(WEIGHT_SUFFIXES))


def image_space(model: str, pretrained: str) -> str:
    """The embedding space string of open_clip ``model`` with ``pretrained`` (tag or weights file)."""
    tag = Path(pretrained).name if is_weights_file(pretrained) else pretrained
    return f"open_clip:{model}/{tag}"


class ImageEmbedder:
    """An open_clip image tower: ``embed(images)`` → ``(n, D)`` float32 unit rows.

    Parameters
    ----------
    model : open_clip model name (``"ViT-B-32"``, or the name of ``model_config``).
    pretrained : a pretrained tag in the local cache (e.g. ``"laion2b_s34b_b79k"``) or a weights file.
    device : "auto" (CUDA when available), "cpu" or "cuda".
    model_config : JSON file of a custom open_clip model config, registered first.
    """

    def __init__(self, model: str, pretrained: str, device: str = "auto", model_config: str | None = None):
        set_offline_environment()  # before open_clip imports huggingface_hub
        import open_clip
        import torch

        if model_config:
            config_path = Path(model_config)
            if not config_path.is_file():
                raise ImageModelError(f"no open_clip model config at {config_path}")
            open_clip.add_model_config(str(config_path.resolve()))
        if model not in open_clip.list_models():
            raise ImageModelError(f"unknown open_clip model {model!r}: `python -c 'import open_clip; "
                                  "print(open_clip.list_models())'` lists them; a custom one needs --model-config")
        self.model_name, self.pretrained = model, pretrained
        self.checkpoint_sha256 = ""
        if is_weights_file(pretrained):
            weights = Path(pretrained).resolve()
            if not weights.is_file():
                raise ImageModelError(f"no weights file at {weights}")
            if weights.suffix.lower() not in WEIGHT_SUFFIXES:
                raise ImageModelError(f"{weights.name}: weights must be {', '.join(WEIGHT_SUFFIXES)} "
                                      "(safetensors preferred)")
            self.checkpoint_sha256 = file_sha256(weights)
            pretrained = str(weights)
        self.space = image_space(model, self.pretrained)
        self.device = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        try:  # weights_only: a pickled checkpoint is read as tensors only, never as code
            net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=pretrained or None,
                                                                       device=self.device, weights_only=True)
        except pickle.UnpicklingError as err:
            raise ImageModelError(f"{Path(pretrained).name} asks to run code when unpickled and is refused "
                                  f"({' '.join(str(err).split())[:120]}); convert it to .safetensors") from err
        except Exception as err:  # noqa: BLE001 - open_clip raises many kinds; one line for the user
            where = ("the weights file" if self.checkpoint_sha256 else
                     "the local Hugging Face cache (no network here): copy the weights there, or pass the weights "
                     "file with --pretrained /path/open_clip_model.safetensors")
            raise ImageModelError(f"cannot load open_clip {model!r} with pretrained={self.pretrained!r} from {where}: "
                                  f"{' '.join(str(err).split())[:200]}") from err
        self.net, self.preprocess = net.eval(), preprocess
        self.dim = int(getattr(net.visual, "output_dim", 0) or net.text_projection.shape[-1])

    def embed(self, images: Sequence) -> np.ndarray:
        """PIL images → ``(n, D)`` float32 unit rows (open_clip's own preprocessing)."""
        import torch

        with torch.no_grad():
            x = torch.stack([self.preprocess(im.convert("RGB")) for im in images]).to(self.device)
            feats = self.net.encode_image(x).float()
            feats = torch.nn.functional.normalize(feats, dim=-1)
        return feats.cpu().numpy().astype(np.float32)

    def embed_files(self, paths: Sequence[str | Path], batch: int = 32, thumb: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Embed image files in batches: ``(embeddings (n, D) float32, thumbnails (n, thumb, thumb, 3)
        uint8 or None)``; each file is decoded once. Raises naming a file that is not a readable image.
        ``progress(done, total)`` is called after each batch."""
        from PIL import Image, UnidentifiedImageError

        from bci_stream.render.exemplars import fit_square

        paths = [Path(p) for p in paths]
        out = np.empty((len(paths), self.dim), np.float32)
        thumbs = np.empty((len(paths), thumb, thumb, 3), np.uint8) if thumb else None
        for start in range(0, len(paths), batch):
            images = []
            for k, path in enumerate(paths[start : start + batch], start):
                try:
                    with Image.open(path) as im:
                        image = im.convert("RGB")
                except (OSError, UnidentifiedImageError) as err:
                    raise ImageModelError(f"{path} is not a readable image ({err}); remove it or replace it") from err
                images.append(image)
                if thumbs is not None:
                    thumbs[k] = np.asarray(fit_square(image, thumb))
            out[start : start + len(images)] = self.embed(images)
            if progress is not None:
                progress(start + len(images), len(paths))
        return out, thumbs


def embed_image_files(paths: Sequence[str | Path], model: str, pretrained: str, batch: int = 32,
                      device: str = "auto", model_config: str | None = None) -> tuple[np.ndarray, str, str]:
    """Embed image files with an open_clip image tower: ``(embeddings (n, D) float32 unit rows, space,
    checkpoint sha256)`` (see :class:`ImageEmbedder`)."""
    embedder = ImageEmbedder(model, pretrained, device=device, model_config=model_config)
    embeddings, _ = embedder.embed_files(paths, batch=batch)
    return embeddings, embedder.space, embedder.checkpoint_sha256


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def list_images(root: str | Path) -> tuple[list[Path], list[str], list[str]]:
    """The images under ``root`` (recursively, sorted) with an id and a label each: ``(paths, ids, labels)``.

    - label: the first folder under ``root`` (``root/<concept>/...``: THINGS, ImageNet); for a file
      directly in ``root`` named ``<prefix>_<n>`` (ImageNet-EEG's ``<synset>_<n>.JPEG``), the prefix,
      or its class name when it is an ImageNet-EEG synset; else the file stem.
    - id: the file stem (the stimulus id markers use); the path under ``root`` without its suffix
      when two files share a stem.
    """
    from bci_stream.contract.classes import eegimagenet_classes

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no image folder at {root}")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    names = {c.synset: c.name for c in eegimagenet_classes()}
    labels = []
    for path in paths:
        parts = path.relative_to(root).parts
        prefix, _, number = path.stem.rpartition("_")
        flat = prefix if prefix and number.isdigit() else path.stem
        labels.append(parts[0] if len(parts) > 1 else names.get(flat, flat))
    stems = [p.stem for p in paths]
    repeated = {s for s in stems if stems.count(s) > 1} if len(set(stems)) != len(stems) else set()
    ids = [p.relative_to(root).with_suffix("").as_posix() if p.stem in repeated else p.stem for p in paths]
    return paths, ids, labels


def folder_gallery(folder: str | Path, open_embedder: Callable[[], ImageEmbedder], batch: int = 32, thumb: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> GalleryIndex:
    """Every image under ``folder`` (id = file stem, label = its sub-folder) embedded once by the
    :class:`bci_stream.retrieval.image_embedder.ImageEmbedder` that ``open_embedder()`` loads (after the
    images are found: no model is loaded for an empty folder), with ``thumb``-pixel thumbnails when given:
    what ``bci-stream index DIR`` and ``bci-train embed-images`` both write. ``progress(done, total)``
    after each batch. Raises ``ValueError`` when there is no image."""
    paths, ids, labels = list_images(folder)
    if not paths:
        raise ValueError(f"no images (.jpg, .jpeg, .png, .bmp, .webp) under {folder}")
    embedder = open_embedder()
    print(f"embedding {len(paths)} images from {folder} with {embedder.space} on {embedder.device}", flush=True)
    embeddings, thumbnails = embedder.embed_files(paths, batch=batch, thumb=thumb or None, progress=progress)
    return GalleryIndex(embeddings=embeddings, ids=ids, labels=labels, space=embedder.space,
                        checkpoint_sha256=embedder.checkpoint_sha256, thumbnails=thumbnails)
