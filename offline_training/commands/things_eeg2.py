"""``bci-train things-eeg2``: THINGS-EEG2 200-way zero-shot (intra-subject, leave-subject-out) in the anchors' table."""

from __future__ import annotations

import argparse

from offline_training.commands._common import add_command, add_student_arg, train_config_from


def add_parser(sub) -> None:
    from offline_training.experiments.things_recipe import MODES, RECIPE_CONFIG, ThingsRecipe

    r, d = ThingsRecipe("", ""), RECIPE_CONFIG
    p = add_command(sub, "things-eeg2", help="THINGS-EEG2 200-way zero-shot (intra-subject, leave-subject-out) in the "
                                             "anchors' table")
    p.add_argument("--eeg", required=True, help="folder of sub-XX/preprocessed_eeg_{training,test}.npy")
    p.add_argument("--metadata", required=True, help="the release's image_metadata.npy (image files and concepts)")
    p.add_argument("--embeddings", required=True, metavar="CACHE",
                   help="`bci-train embed-images` of the release's training_images/ and test_images/ (one cache)")
    p.add_argument("--out", required=True, help="folder: <mode>/sub-XX run folders, table.md, table.json")
    p.add_argument("--subjects", default=f"{r.subjects[0]}-{r.subjects[-1]}", help="e.g. 1-10 or 1,3 (default %(default)s)")
    p.add_argument("--mode", nargs="+", choices=MODES, default=list(r.modes), help="(default: both)")
    p.add_argument("--average-train", action="store_true", help="average each training image's repetitions")
    p.add_argument("--window", type=float, nargs=2, default=list(r.window), metavar=("START", "STOP"),
                   help="seconds from stimulus onset the model sees (default %(default)s)")
    add_student_arg(p, d.student, aliases=False)
    for flag, value, what in (("--epochs", d.epochs, int), ("--patience", d.patience, int),
                              ("--batch-size", d.batch_size, int), ("--lr", d.lr, float), ("--seed", d.seed, int),
                              ("--mse-weight", d.mse_weight, float)):
        p.add_argument(flag, type=what, default=value, help="(default %(default)s)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """THINGS-EEG2 200-way zero-shot, intra-subject and leave-subject-out, in the anchors' table layout."""
    from offline_training.experiments.things_recipe import (
        ThingsRecipe,
        parse_subjects,
        run_recipe,
        with_defaults,
    )
    from offline_training.training.image_embeddings import load_image_embeddings

    recipe = ThingsRecipe(eeg_root=args.eeg, metadata=args.metadata, subjects=parse_subjects(args.subjects),
                          modes=tuple(args.mode), average_train=args.average_train, window=tuple(args.window))
    config = train_config_from(student=args.student, objective="embedding", epochs=args.epochs, patience=args.patience,
                               batch_size=args.batch_size, lr=args.lr, seed=args.seed, mse_weight=args.mse_weight,
                               threads=args.threads, device=args.device)
    run_recipe(recipe, with_defaults(config), load_image_embeddings(args.embeddings), args.out)
