"""``bci-train embed-images``: open_clip image embeddings of every image in DIR, cached by image id."""

from __future__ import annotations

import argparse

from bci_stream.io.safe_write import check_writable_target
from offline_training.commands._common import TEACHER_DEFAULTS, add_command


def add_parser(sub) -> None:
    p = add_command(sub, "embed-images", help="open_clip image embeddings of every image in DIR, cached by image id "
                                              "(the targets of fit --objective embedding)")
    p.add_argument("dir", help="folder of images, searched recursively (<concept>/<image>.jpg or <id>.JPEG); "
                               "the image id is the file stem")
    p.add_argument("--out", required=True, help="cache file (.safetensors; a gallery index: bci-stream live can "
                                                "retrieve from it too)")
    p.add_argument("--model", default=TEACHER_DEFAULTS["model"], help="open_clip model name (default %(default)s)")
    p.add_argument("--pretrained", default=TEACHER_DEFAULTS["pretrained"],
                   help="open_clip tag in the local cache, or a local weights file (default %(default)s)")
    p.add_argument("--model-config", help="JSON config of a custom open_clip model")
    p.add_argument("--batch-size", type=int, default=TEACHER_DEFAULTS["batch_size"], help="images per forward pass")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where the image tower runs")
    p.add_argument("--thumb", type=int, default=0, help="also store thumbnails of this side, pixels (default 0: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Embed every image under DIR once with an open_clip image tower; the cache is a gallery index file
    (:mod:`bci_stream.retrieval.index`) keyed by image id = file stem, the targets of ``fit --objective embedding``."""
    from functools import partial

    from bci_stream.retrieval.image_embedder import ImageEmbedder, folder_gallery
    from bci_stream.retrieval.index import save_gallery

    check_writable_target(args.out)  # a device, FIFO or read-only folder is said before the embedding work
    embedder = partial(ImageEmbedder, args.model, args.pretrained, device=args.device, model_config=args.model_config)
    cache = folder_gallery(args.dir, embedder, batch=args.batch_size, thumb=args.thumb)
    path = save_gallery(cache, args.out)
    print(f"wrote {path}: {cache.describe()}")
