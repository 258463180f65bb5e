"""``bci-train fit``: train one student (either objective), test it, write RUN_DIR once."""

from __future__ import annotations

import argparse

from bci_stream.io.safe_write import check_writable_folder
from offline_training.commands._common import (
    add_command,
    add_embedding_args,
    add_training_args,
    check_embeddings_source,
    class_oracle,
    fitted_config,
    image_embeddings,
    load,
    preprocessing_of,
    print_metrics,
    retrieval_oracle,
)
from offline_training.training.soft_labels import soft_labels_for  # the sweep's too (tests/test_sweep.py)


def add_parser(sub) -> None:
    p = add_command(sub, "fit", help="train one student, test it, write RUN_DIR")
    add_training_args(p)
    add_embedding_args(p)
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR's last checkpoint")
    p.add_argument("--asr", type=float, default=None, metavar="CUTOFF",
                   help="Artifact Subspace Reconstruction (meegkit) after the filters, calibrated on the data's "
                        "recordings (continuous specs; needs --highpass or --bandpass); CUTOFF in standard "
                        "deviations (5 aggressive, 20 conservative); stored in the card and applied live (default: off)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Checks first (split name, device, run folder, the embedding objective's targets), then the data
    (loaded once, with its phantom), the config at its rate, and one run: the classes objective with the
    teacher's soft labels, or the embedding objective (InfoNCE, k-way zero-shot retrieval on held-out
    classes: ``--split auto`` is ``by-class``), the phantom's oracle beside it."""
    from offline_training.training.device import resolve_device
    from offline_training.training.splits import check_split_name

    check_split_name(args.split)
    resolve_device(args.device)  # a missing GPU is said before any work
    check_writable_folder(args.out)  # and a run folder that cannot be written
    embedding = args.objective == "embedding"
    if embedding:
        check_embeddings_source(args.data, args.embeddings)  # said before the data loads
    data = load(args.data, preprocessing_of(args), asr=args.asr)
    config = fitted_config(args, data.trials)
    (_embedding if embedding else _classes)(args, data, config)


def _classes(args: argparse.Namespace, data, config) -> None:
    from offline_training.experiments.pipeline import train_and_test

    soft, teacher = soft_labels_for(data.trials, args.teacher, config.kd)
    metrics = train_and_test(data.trials, args.split, config, args.out, soft, teacher, oracle=class_oracle(data),
                             resume=args.resume)
    print_metrics(metrics)
    print(f"wrote {args.out}/metrics.json, report.md, confusion.png, learning_curve.png")


def _embedding(args: argparse.Namespace, data, config) -> None:
    from offline_training.experiments.zero_shot import print_zero_shot, train_and_test_embedding

    targets = image_embeddings(data, args.embeddings)
    split = "by-class" if args.split == "auto" else args.split
    metrics = train_and_test_embedding(data.trials, split, config, args.out, targets, oracle=retrieval_oracle(data),
                                       per=args.candidates, resume=args.resume)
    print_zero_shot(metrics)
    print(f"wrote {args.out}/metrics.json, report.md, learning_curve.png")
