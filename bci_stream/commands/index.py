"""``bci-stream index``: build the gallery an embedding model retrieves from (one safetensors file)."""

from __future__ import annotations

import sys

from bci_stream.commands._common import HelpFormatter
from bci_stream.commands._types import int_range, non_negative_int, positive_int

EPILOG = """examples:
  bci-stream index images/ --model ViT-H-14 --pretrained laion2b_s32b_b79k --out things-test.safetensors
  bci-stream index images/ --model ViT-B-32 --pretrained /models/open_clip_model.safetensors --out idx.safetensors
  bci-stream index --phantom --seed 0 --embed-dim 64 --out phantom-gallery.safetensors

labels: the first folder under DIR (DIR/<concept>/*.jpg); for files directly in DIR named <synset>_<n>
(ImageNet-EEG), the synset's class name; else the file stem. ids: the file stem (as stimulus markers name it).
"""

PHANTOM_THUMB = 64  # px: the phantom's thumbnails are drawn cards


def add_parser(sub, parents) -> None:
    from bci_stream.sources.phantom import PhantomConfig

    phantom = PhantomConfig()
    p = sub.add_parser("index", help="build a gallery index for an embedding model", parents=parents,
                       formatter_class=HelpFormatter, epilog=EPILOG,
                       description="Embed every image under DIR once with an open_clip image tower (offline: a "
                                   "pretrained tag in the local cache, or a weights file) and write the gallery "
                                   "index (embeddings, ids, labels, thumbnails, the space's name and weights hash) "
                                   "as one .safetensors file; or write the semantic phantom's gallery (--phantom).")
    p.add_argument("dir", nargs="?", default=None, help="folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="the index file to write (.safetensors)")
    p.add_argument("--model", default=None, help="open_clip model name (e.g. ViT-H-14)")
    p.add_argument("--pretrained", default=None,
                   help="open_clip pretrained tag (must be in the local cache) or weights file (.safetensors preferred)")
    p.add_argument("--model-config", default=None, help="JSON config of a custom open_clip model")
    p.add_argument("--thumb", type=positive_int, default=96, help="thumbnail side, pixels")
    p.add_argument("--batch", type=positive_int, default=32, help="images per forward pass")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where the image tower runs")
    p.add_argument("--phantom", action="store_true", help="the semantic phantom's gallery (one row per phantom image)")
    p.add_argument("--seed", type=non_negative_int, default=phantom.seed, help="--phantom: the headset's seed")
    p.add_argument("--embed-dim", type=positive_int, default=64, help="--phantom: embedding dimension")
    p.add_argument("--classes", type=int_range(1, 40), default=phantom.n_classes, help="--phantom: classes")
    p.add_argument("--images", type=positive_int, default=phantom.images_per_class, help="--phantom: images per class")
    p.set_defaults(func=run)


def run(args) -> int:
    from bci_stream.io.safe_write import check_writable_target
    from bci_stream.retrieval.index import save_gallery

    check_writable_target(args.out)  # a device, FIFO or read-only folder is said before the embedding work
    if args.phantom:
        if args.dir or args.model or args.pretrained:
            raise ValueError("--phantom builds the phantom's gallery: drop DIR, --model and --pretrained")
        gallery = _phantom_gallery(args)
    else:
        if not (args.dir and args.model and args.pretrained):
            raise ValueError("name the images and the image model: bci-stream index DIR --model NAME --pretrained "
                             "TAG_OR_FILE --out idx.safetensors (or --phantom)")
        gallery = _image_gallery(args)
    path = save_gallery(gallery, args.out)
    print(f"wrote {path}: {gallery.describe()}", flush=True)
    return 0


def _phantom_gallery(args):
    from bci_stream.retrieval.index import phantom_gallery
    from bci_stream.sources.phantom import Phantom, PhantomConfig

    config = PhantomConfig(n_classes=args.classes, images_per_class=args.images, seed=args.seed, semantic=True,
                           embed_dim=args.embed_dim)
    return phantom_gallery(Phantom(config), thumb=min(args.thumb, PHANTOM_THUMB))


def _image_gallery(args):
    from functools import partial

    from bci_stream.retrieval.image_embedder import ImageEmbedder, folder_gallery

    def progress(done: int, total: int) -> None:
        if sys.stdout.isatty():
            print(f"\r  {done}/{total}", end="" if done < total else "\n", flush=True)

    embedder = partial(ImageEmbedder, args.model, args.pretrained, device=args.device, model_config=args.model_config)
    return folder_gallery(args.dir, embedder, batch=args.batch, thumb=args.thumb, progress=progress)
