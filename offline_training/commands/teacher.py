"""``bci-train teacher``: CLIP soft labels for the stimulus images (cached)."""

from __future__ import annotations

import argparse

import numpy as np

from bci_stream.io.safe_write import check_writable_target
from offline_training.commands._common import TEACHER_DEFAULTS, add_command, load


def add_parser(sub) -> None:
    p = add_command(sub, "teacher", help="CLIP soft labels for the stimulus images (cached)")
    p.add_argument("--data", required=True, nargs="+", metavar="SPEC", help="data SPEC(s): which images, which classes")
    p.add_argument("--images", required=True, help="folder of stimulus images (<id>.JPEG or <synset>/<id>.JPEG)")
    p.add_argument("--out", required=True, help="cache file (.safetensors)")
    p.add_argument("--model", default=TEACHER_DEFAULTS["model"], help="open_clip model name")
    p.add_argument("--pretrained", default=TEACHER_DEFAULTS["pretrained"], help="open_clip tag or local checkpoint path")
    p.add_argument("--model-config", help="JSON config of a custom open_clip model")
    p.add_argument("--batch-size", type=int, default=TEACHER_DEFAULTS["batch_size"], help="images per forward pass")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from offline_training.training.teacher import TeacherConfig, compute_soft_labels

    check_writable_target(args.out)
    trials = load(args.data).trials
    config = TeacherConfig(model=args.model, pretrained=args.pretrained, model_config=args.model_config,
                           batch_size=args.batch_size)
    path = compute_soft_labels(trials.image_ids.tolist(), args.images, trials.class_names, config, args.out)
    print(f"teacher {config.name}: soft labels for {len(np.unique(trials.image_ids))} images -> {path}")
