#!/usr/bin/env python
"""An embedding model for the semantic phantom, before (or beside) ``bci-train fit --objective embedding``.

Two kinds, both exported through the real path (``write_onnx(WithL2Norm(...))``, parity-checked, with an
embedding card in the phantom's space ``phantom:seed=<seed>,dim=<dim>,classes=<n>,images=<m>,spread=<x>``):

- ``--kind ridge`` (default): a linear map from the erp features to the image embeddings, fitted in closed
  form (ridge) on one phantom subject's training session; prints its retrieval top-1 on held-out images
  (by-image split, 40-class gallery) with a 95 % Wilson interval. For the viewer screenshot and demos.
- ``--kind twin --like MODEL``: MODEL's own architecture and features (e.g. the demo Deep4Net) with a
  ``dim``-wide head, untrained: the same network cost as the classifier, for ``tools/bench_latency.py
  --model-b`` (latency, not accuracy).

    python tools/build_embedding_model.py --channels 32 --out /tmp/emb32.onnx --gallery /tmp/gallery.safetensors
    python tools/build_embedding_model.py --kind twin --like bci_stream/data/demo/model.onnx --out /tmp/twin.onnx
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bci_stream.contract.features import ErpConfig  # noqa: E402
from bci_stream.contract.model_card import ModelCard  # noqa: E402
from bci_stream.live.stats import wilson_interval  # noqa: E402
from bci_stream.retrieval.index import phantom_gallery, save_gallery  # noqa: E402
from bci_stream.sources.phantom import Phantom, PhantomConfig  # noqa: E402


def fit_ridge(phantom: Phantom, out: Path, ridge: float, seed: int) -> dict:
    """Closed-form ridge from normalised erp features to the image embeddings; exported; held-out figures."""
    import torch

    from offline_training.training.export import WithL2Norm, write_onnx

    c = phantom.config
    trials = phantom.trials(subjects=[1])
    card = ModelCard(sfreq=c.sfreq, ch_names=list(phantom.ch_names), class_ids=list(phantom.class_ids),
                     class_names=list(phantom.class_names), feature_kind="erp", erp=ErpConfig(sfreq=c.sfreq),
                     output_kind="embedding", training_data=f"phantom semantic seed={c.seed} subject 1 session 0",
                     split="by-image", teacher="phantom image embeddings",
                     architecture={"student": "linear (ridge)", "ridge": ridge},
                     embedding={"dim": c.embed_dim, "space": phantom.embedding_space, "normalisation": "l2",
                                "logit_scale": 20.0})
    start = card.offset_samples
    features = card.features()
    feats = np.stack([features.window(x[:, start : start + card.window_samples]) for x in trials.eeg])
    split = trials.splits["by-image"]
    mean, std = feats[split["train"]].mean(axis=(0, 3)), feats[split["train"]].std(axis=(0, 3)) + 1e-6
    x = ((feats - mean[None, ..., None]) / std[None, ..., None]).reshape(len(feats), -1)
    y = np.stack([phantom.image_embedding(i) for i in trials.image_ids])
    xt, yt = x[split["train"]], y[split["train"]]
    weights = np.linalg.solve(xt.T @ xt + ridge * np.eye(x.shape[1]), xt.T @ yt)  # (p, dim)
    pred = x[split["test"]] @ weights
    ids, gallery = phantom.embeddings_by_image_id()
    rows = np.argmax(pred @ gallery.T, axis=1)
    nearest_class = np.array([ids[r].rsplit("_", 1)[0] for r in rows])  # the class of the nearest image
    hits = int((nearest_class == np.array(trials.class_ids)[trials.labels[split["test"]]]).sum())
    n = len(rows)
    lo, hi = wilson_interval(hits, n)
    card = replace(card, norm_mean=mean.tolist(), norm_std=std.tolist(),
                   evaluation={"retrieval_top1": hits / n, "retrieval_top1_ci": [lo, hi], "n": n,
                               "gallery": f"{len(ids)} phantom images, {c.n_classes} classes"})
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x.shape[1], c.embed_dim, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.from_numpy(weights.T.astype(np.float32)))
    write_onnx(WithL2Norm(net), card, out, doc="bci-stream ridge embedding model (phantom)")
    return {"split": "by-image (held-out images, subject 1)", "top1": hits / n, "ci": (lo, hi), "n": n,
            "chance": 1 / c.n_classes}


def build_twin(like: Path, out: Path, phantom: Phantom) -> None:
    """``like``'s architecture and card with an embedding head in the phantom's space, untrained."""
    from offline_training.students import build_from_card_architecture
    from offline_training.training.export import WithL2Norm, write_onnx

    card = ModelCard.from_onnx(like)
    dim = phantom.config.embed_dim
    card = replace(card, output_kind="embedding", class_ids=[], class_names=[], marker_classes={},
                   embedding={"dim": dim, "space": phantom.embedding_space, "normalisation": "l2", "logit_scale": 20.0},
                   architecture={**card.architecture, "n_outputs": dim}, evaluation={},
                   training_data="untrained (latency twin of " + like.name + ")")
    net = build_from_card_architecture(card.architecture)
    write_onnx(WithL2Norm(net), card, out, doc=f"bci-stream embedding twin of {like.name} (untrained)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["ridge", "twin"], default="ridge")
    parser.add_argument("--like", help="--kind twin: the classifier whose architecture and features to copy")
    parser.add_argument("--channels", type=int, default=32, help="--kind ridge: phantom channels")
    parser.add_argument("--seed", type=int, default=0, help="the phantom's seed")
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--ridge", type=float, default=1000.0, help="--kind ridge: L2 penalty")
    parser.add_argument("--out", required=True, help="the ONNX file to write")
    parser.add_argument("--gallery", help="also write the phantom's gallery index here")
    args = parser.parse_args()

    channels = args.channels
    if args.kind == "twin":
        if not args.like:
            sys.exit("--kind twin needs --like MODEL")
        channels = ModelCard.from_onnx(args.like).n_channels
    phantom = Phantom(PhantomConfig(n_channels=channels, seed=args.seed, semantic=True, embed_dim=args.embed_dim))
    out = Path(args.out)
    if args.kind == "ridge":
        r = fit_ridge(phantom, out, args.ridge, args.seed)
        print(f"ridge embedding model: {r['split']}, retrieval top-1 (nearest image's class, 40 classes) "
              f"{r['top1']:.3f} [95 % CI {r['ci'][0]:.3f}, {r['ci'][1]:.3f}], n={r['n']}, chance {r['chance']:.3f}")
    else:
        build_twin(Path(args.like), out, phantom)
    print(f"wrote {out}")
    if args.gallery:
        print(f"wrote {save_gallery(phantom_gallery(phantom), args.gallery)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
