"""Gallery index: the images an embedding model's decisions are retrieved from, in one safetensors file.

An embedding model (card ``output_kind == "embedding"``) outputs a unit vector in an image-embedding
space (``card.embedding_spec().space``); its decision is the gallery's nearest images. The index is
built once (``bci-stream index``) and holds, per image (row):

- ``embeddings`` ``(N, D)`` float32 unit rows (tensor), in the space named by ``space``;
- ``thumbnails`` ``(N, h, w, 3)`` uint8 (tensor, optional) for the viewer;
- ``ids`` (the image id: ``"<synset>_<n>"`` or the file stem) and ``labels`` (the class or concept
  name, "" if unknown), JSON lists in the metadata;
- ``space`` (``"open_clip:<model>/<tag or weights file name>"`` or
  ``"phantom:seed=<s>,dim=<d>,classes=<n>,images=<m>,spread=<x>"``)
  and ``checkpoint_sha256`` (of the image model's weights file; "" for a hub tag or the phantom).

File layout (safetensors: tensors and string metadata, never a pickle)::

    metadata: format = "bci-stream-gallery", version = "1", space, checkpoint_sha256,
              ids = JSON list[str], labels = JSON list[str]
    tensors:  embeddings float32 (N, D), thumbnails uint8 (N, h, w, 3) (optional)

:func:`load_gallery` refuses what is not such a file (corrupt, foreign, newer, inconsistent) with
one line naming the problem and the next step.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GALLERY_FORMAT = "bci-stream-gallery"
GALLERY_VERSION = 1
UNIT_TOLERANCE = 1e-3  # |‖row‖ - 1| allowed (float32 rounding after normalisation is ~1e-7)
REBUILD = "rebuild it with `bci-stream index`"


class GalleryError(ValueError):
    """A gallery index file is missing, unreadable, foreign, newer than this version, or inconsistent."""


@dataclass(frozen=True)
class GalleryIndex:
    """Images to retrieve from, embedded in one space.

    Attributes
    ----------
    embeddings : ``(N, D)`` float32, unit rows (cosine similarity = dot product).
    ids : image id per row (``"n02106662_3"``, a file stem), unique.
    labels : class / concept name per row ("" if unknown).
    space : the embedding space (see :class:`bci_stream.contract.model_card.EmbeddingSpec`).
    checkpoint_sha256 : sha256 of the image model's weights file ("" for a hub tag or the phantom).
    thumbnails : ``(N, h, w, 3)`` uint8, or None.
    """

    embeddings: np.ndarray
    ids: list[str]
    labels: list[str]
    space: str
    checkpoint_sha256: str = ""
    thumbnails: np.ndarray | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise GalleryError("gallery index: " + "; ".join(problems))

    @property
    def size(self) -> int:
        """Rows (images)."""
        return int(self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return int(self.embeddings.shape[1])

    def similarities(self, embedding: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Cosine similarity of ``embedding`` ``(D,)`` (unit length) with every row: ``(N,)`` float32
        (written into ``out`` if given)."""
        return np.matmul(self.embeddings, embedding.astype(np.float32, copy=False), out=out)

    def search(self, embedding: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows most similar to ``embedding`` ``(D,)``: ``(rows (k,) int64, similarities (k,)
        float32)``, most similar first (``argpartition``: O(N), then the k sorted)."""
        sims = self.similarities(embedding)
        rows = top_rows(sims, k)
        return rows, sims[rows]

    def classes(self) -> tuple[list[str], list[str], np.ndarray]:
        """The gallery's classes: ``(class_ids, class_names, row_class (N,) int64)``.

        Names are the distinct labels in order of first appearance (an unlabelled row is its own
        class, named by its id). A class's id is the ``<prefix>`` its rows' ids share as
        ``<prefix>_<n>`` (the ImageNet-style synset), else its name.
        """
        names = [label or image_id for label, image_id in zip(self.labels, self.ids)]
        order = list(dict.fromkeys(names))
        index = {name: k for k, name in enumerate(order)}
        row_class = np.array([index[name] for name in names], np.int64)
        ids = []
        for k, name in enumerate(order):
            prefixes = {i.rsplit("_", 1)[0] if "_" in i else None for i in np.asarray(self.ids)[row_class == k]}
            prefix = prefixes.pop() if len(prefixes) == 1 else None
            ids.append(prefix or name)
        if len(set(ids)) != len(ids):  # two classes sharing an id prefix: fall back to the names
            ids = list(order)
        return ids, order, row_class

    def describe(self) -> str:
        """One line, e.g. ``"2000 images (40 classes), 64-d, space phantom:seed=0,dim=64, thumbnails 64 px"``."""
        thumbs = f"thumbnails {self.thumbnails.shape[1]} px" if self.thumbnails is not None else "no thumbnails"
        n_classes = len(set(self.labels) - {""}) or "no"
        return f"{self.size} images ({n_classes} classes), {self.dim}-d, space {self.space}, {thumbs}"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in ``chunk``-byte pieces (index files, image model weights)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def top_rows(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``values``, largest first (int64)."""
    k = max(1, min(k, len(values)))
    if k == len(values):
        return np.argsort(-values, kind="stable")
    part = np.argpartition(-values, k - 1)[:k]
    return part[np.argsort(-values[part], kind="stable")]


def _problems(g: GalleryIndex) -> list[str]:
    """What is inconsistent in ``g`` ([] if nothing)."""
    e = g.embeddings
    if not isinstance(e, np.ndarray) or e.ndim != 2 or e.dtype != np.float32 or e.shape[0] < 1 or e.shape[1] < 1:
        return [f"embeddings must be a non-empty float32 (N, D) array; got "
                f"{getattr(e, 'dtype', type(e).__name__)} {getattr(e, 'shape', '')}"]
    n = e.shape[0]
    problems = []
    if not np.isfinite(e).all():
        problems.append(f"{int((~np.isfinite(e).all(axis=1)).sum())} embedding rows are not finite")
    else:
        norms = np.linalg.norm(e, axis=1)
        off = np.abs(norms - 1) > UNIT_TOLERANCE
        if off.any():
            problems.append(f"{int(off.sum())} embedding rows are not unit length (e.g. row {int(np.flatnonzero(off)[0])}: "
                            f"norm {norms[off][0]:.4g}); normalise them (L2)")
    for name, values in (("ids", g.ids), ("labels", g.labels)):
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"{name} must be a list of strings")
        elif len(values) != n:
            problems.append(f"{len(values)} {name} for {n} embedding rows")
    if isinstance(g.ids, list) and len(set(g.ids)) != len(g.ids):
        counts: dict[str, int] = {}
        for image_id in g.ids:
            counts[image_id] = counts.get(image_id, 0) + 1
        twice = next(i for i, n in counts.items() if n > 1)
        problems.append(f"image ids must be unique; {twice!r} appears twice")
    if not isinstance(g.space, str) or not g.space:
        problems.append("space must name the embedding model (e.g. open_clip:ViT-B-32/openai)")
    if not isinstance(g.checkpoint_sha256, str):
        problems.append("checkpoint_sha256 must be a string")
    t = g.thumbnails
    if t is not None and (not isinstance(t, np.ndarray) or t.dtype != np.uint8 or t.ndim != 4 or t.shape[0] != n
                          or t.shape[3] != 3):
        problems.append(f"thumbnails must be uint8 ({n}, h, w, 3); got {getattr(t, 'dtype', type(t).__name__)} "
                        f"{getattr(t, 'shape', '')}")
    return problems


def save_gallery(index: GalleryIndex, path: str | Path) -> Path:
    """Write ``index`` to ``path`` (one ``.safetensors`` file); returns the path."""
    from safetensors.numpy import save_file

    from bci_stream.io.safe_write import write_with

    path = Path(path)
    tensors = {"embeddings": np.ascontiguousarray(index.embeddings)}
    if index.thumbnails is not None:
        tensors["thumbnails"] = np.ascontiguousarray(index.thumbnails)
    metadata = {"format": GALLERY_FORMAT, "version": str(GALLERY_VERSION), "space": index.space,
                "checkpoint_sha256": index.checkpoint_sha256, "ids": json.dumps(index.ids),
                "labels": json.dumps(index.labels)}
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return path


def load_gallery(path: str | Path, thumbnails: bool = True) -> GalleryIndex:
    """Read a gallery index written by :func:`save_gallery`; raises :class:`GalleryError` (one line:
    the problem and what to do) for anything else.

    ``thumbnails``: map the thumbnails from the file (read-only, paged in as they are shown: a
    gallery of 16 740 images at 96 px holds 460 MB of them); False: leave them out.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise GalleryError(f"no gallery index at {path}: build one with `bci-stream index`")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            names = set(f.keys())
            if meta.get("format") != GALLERY_FORMAT:
                raise GalleryError(f"{path} is a safetensors file but not a bci-stream gallery index "
                                   f"(format {meta.get('format')!r}); {REBUILD}")
            embeddings = f.get_tensor("embeddings") if "embeddings" in names else None
    except SafetensorError as err:
        raise GalleryError(f"{path} is not a readable safetensors file ({' '.join(str(err).split())[:160]}); "
                           f"{REBUILD}") from err
    except (OSError, ValueError, TypeError) as err:
        if isinstance(err, GalleryError):
            raise
        raise GalleryError(f"{path} is corrupt ({type(err).__name__}: {' '.join(str(err).split())[:160]}); "
                           f"{REBUILD}") from err
    version = meta.get("version", "")
    if not version.isdigit():
        raise GalleryError(f"{path} has no gallery format version; {REBUILD}")
    if int(version) > GALLERY_VERSION:
        raise GalleryError(f"{path} is gallery format {version}, newer than this bci-stream reads "
                           f"({GALLERY_VERSION}); upgrade bci-stream")
    if embeddings is None:
        raise GalleryError(f"{path} has no 'embeddings' tensor; {REBUILD}")
    try:
        ids, labels = json.loads(meta.get("ids", "null")), json.loads(meta.get("labels", "null"))
    except json.JSONDecodeError as err:
        raise GalleryError(f"{path}: its ids or labels are not valid JSON ({err}); {REBUILD}") from err
    thumbs = _map_tensor(path, "thumbnails") if thumbnails and "thumbnails" in names else None
    try:
        return GalleryIndex(embeddings=embeddings, ids=ids, labels=labels, space=meta.get("space", ""),
                            checkpoint_sha256=meta.get("checkpoint_sha256", ""), thumbnails=thumbs)
    except GalleryError as err:
        raise GalleryError(f"{path}: {err}; {REBUILD}") from err


def _map_tensor(path: Path, name: str) -> np.ndarray:
    """Tensor ``name`` of a safetensors file (already opened once by ``safe_open``, so its header is
    sound) as a read-only ``np.memmap``: the header gives its dtype, shape and byte range."""
    with path.open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    entry = header[name]
    dtype = {"U8": np.uint8, "F32": np.float32}.get(entry["dtype"])
    if dtype is None:
        raise GalleryError(f"{path}: tensor {name!r} has dtype {entry['dtype']}; {REBUILD}")
    start, end = entry["data_offsets"]
    shape = tuple(entry["shape"])
    if end - start != int(np.prod(shape)) * np.dtype(dtype).itemsize:
        raise GalleryError(f"{path}: tensor {name!r} has a byte range that does not match its shape; {REBUILD}")
    if end == start:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=8 + header_len + start, shape=shape)


def check_gallery_fits_card(gallery: GalleryIndex, card, gallery_path: str | Path = "the gallery index") -> None:
    """Raise :class:`GalleryError` unless ``gallery`` is in the card's embedding space (same space
    string, dimension and, where both name one, weights hash)."""
    if not card.is_embedding:
        raise GalleryError(f"--gallery-index is for embedding models; this model outputs {card.n_classes} "
                           "class probabilities (drop --gallery-index)")
    spec = card.embedding_spec()
    if gallery.space != spec.space or gallery.dim != spec.dim:
        raise GalleryError(f"{gallery_path} is in space {gallery.space!r} ({gallery.dim}-d) but the model's embedding "
                           f"is in {spec.space!r} ({spec.dim}-d): build the index in the model's space "
                           "(`bci-stream index DIR --model ... --pretrained ...`, or `--phantom` for a phantom model)")
    if gallery.checkpoint_sha256 and spec.checkpoint_sha256 and gallery.checkpoint_sha256 != spec.checkpoint_sha256:
        raise GalleryError(f"{gallery_path} was embedded with weights sha256 {gallery.checkpoint_sha256[:12]}… but the "
                           f"model was trained on {spec.checkpoint_sha256[:12]}… (same name {spec.space!r}, other "
                           "weights): rebuild the index with the model's weights file")


def phantom_gallery(phantom, thumb: int = 64) -> GalleryIndex:
    """The gallery of a semantic phantom (``PhantomConfig(semantic=True)``): one row per phantom image,
    class-major (row ``c * images_per_class + i`` is image ``i`` of class ``c``), id
    ``"<synset>_<i>"`` (the stream's markers), label the class name, embedding
    ``phantom.embeddings[c, i]``, thumbnail a ``thumb``-pixel card of the class colour with its
    name and the image number (:func:`bci_stream.render.exemplars.card`)."""
    from bci_stream.render.exemplars import card

    embeddings = getattr(phantom, "embeddings", None)
    if embeddings is None:
        raise GalleryError("this phantom has no semantic space: make it with PhantomConfig(semantic=True) "
                           "(`bci-stream simulate --semantic`)")
    n_classes, per_class, dim = embeddings.shape
    ids = [f"{phantom.class_ids[c]}_{i}" for c in range(n_classes) for i in range(per_class)]
    labels = [phantom.class_names[c] for c in range(n_classes) for _ in range(per_class)]
    thumbs = np.empty((n_classes * per_class, thumb, thumb, 3), np.uint8)
    for c in range(n_classes):
        base = card(phantom.class_names[c], c, thumb)
        for i in range(per_class):
            row = thumbs[c * per_class + i]
            row[:] = base
            _stamp_number(row, i)
    rows = embeddings.reshape(-1, dim).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return GalleryIndex(embeddings=rows, ids=ids, labels=labels, space=phantom.embedding_space, checkpoint_sha256="",
                        thumbnails=thumbs)


def _stamp_number(image: np.ndarray, number: int) -> None:
    """Write ``#number`` in the top-left corner of ``image`` ``(h, w, 3)`` uint8, in place."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(image)
    ImageDraw.Draw(picture).text((3, 2), f"#{number}", fill=(255, 255, 255))
    image[:] = np.asarray(picture)
