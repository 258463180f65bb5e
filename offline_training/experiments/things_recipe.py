"""THINGS-EEG2 zero-shot recipe: the standard 200-way test (200 test concepts, one image each, disjoint from
the 1,654 training concepts), intra-subject and leave-subject-out, in the anchors' table layout.

- **intra-subject**: train on subject s's training images, test on s's 200 test images.
- **leave-subject-out**: train on every other subject's training images, test on s's 200 test images.

Each fit holds out :func:`~offline_training.training.splits.by_class_val_count` training concepts for validation
(early stopping); the test part's repetitions are averaged (one trial per test image, as the anchors test).
Candidates are the 200 test images' own embeddings (``per="image"``); figures are subject averages (± std)
of top-1/top-5, each subject's with its Wilson 95 % CI in ``table.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bci_stream.contract.trials import Trials
from bci_stream.io.safe_write import write_text
from offline_training.training.config import TrainConfig
from offline_training.training.image_embeddings import ImageEmbeddings
from offline_training.training.splits import PARTS, by_class_val_count

# (method, intra-subject top-1, top-5, leave-subject-out top-1, top-5), %, 200-way, subject average; None: not given here
ANCHORS = (
    ("NICE (Song et al., ICLR 2024)", 15.6, 42.8, None, None),
    ("ATM (Li et al., NeurIPS 2024)", None, None, None, None),
    ("UBP (Wu et al., CVPR 2025)", 50.9, 79.7, None, None),
)
MODES = ("intra", "loso")


@dataclass(frozen=True)
class ThingsRecipe:
    """Where THINGS-EEG2 lives and what to run.

    Attributes
    ----------
    eeg_root : folder of ``sub-XX/preprocessed_eeg_{training,test}.npy`` (the preprocessed release).
    metadata : the release's ``image_metadata.npy`` (image file names and concepts, in EEG order).
    subjects : subject numbers (THINGS-EEG2: 1-10).
    modes : "intra" and/or "loso".
    average_train : average each training image's repetitions (one trial per image: 4x less data, faster).
    window : seconds from stimulus onset the model sees.
    """

    eeg_root: str
    metadata: str
    subjects: tuple[int, ...] = tuple(range(1, 11))
    modes: tuple[str, ...] = MODES
    average_train: bool = False
    window: tuple[float, float] = (0.0, 0.8)


def subject_folder(root: str | Path, subject: int) -> Path:
    """``root/sub-XX`` (two digits, as the release names them)."""
    return Path(root) / f"sub-{subject:02d}"


def load_parts(recipe: ThingsRecipe, train_subjects: list[int], test_subject: int) -> tuple[Trials, dict]:
    """Training trials of ``train_subjects`` and the averaged test trials of ``test_subject`` as one
    :class:`Trials`, with the split: validation = some training concepts, test = the test part."""
    from offline_training.datasets import concat_trials
    from offline_training.datasets.things_eeg2 import load_things_eeg2

    avg = "1" if recipe.average_train else "0"
    parts = [load_things_eeg2(str(subject_folder(recipe.eeg_root, s)), part="training", subject=str(s), average=avg,
                              metadata=recipe.metadata) for s in train_subjects]
    test = load_things_eeg2(str(subject_folder(recipe.eeg_root, test_subject)), part="test", subject=str(test_subject),
                            average="1", metadata=recipe.metadata)
    trials = concat_trials(parts + [test])
    is_test = np.zeros(len(trials), bool)
    is_test[len(trials) - len(test):] = True
    train_classes = np.unique(trials.labels[~is_test])
    if np.isin(trials.labels[is_test], train_classes).any():
        raise ValueError("THINGS-EEG2 test concepts must not be training concepts; check --metadata")
    n_val = by_class_val_count(len(train_classes))
    val_classes = np.random.default_rng([0, 31]).permutation(train_classes)[:n_val]
    role = np.where(is_test, "test", np.where(np.isin(trials.labels, val_classes), "val", "train"))
    return trials, {p: np.flatnonzero(role == p) for p in PARTS}


def run_recipe(recipe: ThingsRecipe, config: TrainConfig, targets: ImageEmbeddings, out: str | Path,
               progress: bool = True) -> dict:
    """Every (mode, subject) fit under ``out/<mode>/sub-XX``, then ``out/table.md`` and ``out/table.json``.
    Returns ``{mode: {"per_subject": {s: metrics}, "top1": mean, "top5": mean, "top1_std", "top5_std"}}``."""
    from offline_training.experiments.pipeline import for_data
    from offline_training.experiments.zero_shot import print_zero_shot, train_and_test_embedding

    out = Path(out)
    results: dict = {}
    for mode in recipe.modes:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        per = {}
        for s in recipe.subjects:
            train_subjects = [s] if mode == "intra" else [o for o in recipe.subjects if o != s]
            if not train_subjects:
                raise ValueError("leave-subject-out needs at least 2 subjects")
            trials, split = load_parts(recipe, train_subjects, s)
            fitted = for_data(config, trials, window=recipe.window)
            print(f"{mode} subject {s}: {trials.summary()}", flush=True)
            metrics = train_and_test_embedding(trials, "by-class", fitted, out / mode / f"sub-{s:02d}", targets,
                                               split=split, per="image", progress=progress,
                                               name=f"{config.student} + InfoNCE ({mode}, subject {s})")
            print_zero_shot(metrics)
            per[s] = metrics
        results[mode] = summarise(per)
    write_text(out / "table.json", json.dumps(results, indent=1, default=float))
    write_text(out / "table.md", table_markdown(results, config))
    print((out / "table.md").read_text())
    return results


def summarise(per_subject: dict[int, dict]) -> dict:
    """Subject average and std of top-1/top-5 (as the anchors report), with each subject's figures."""
    top1 = np.array([m["top1"] for m in per_subject.values()])
    top5 = np.array([m["top5"] for m in per_subject.values()])
    return {"top1": float(top1.mean()), "top5": float(top5.mean()),
            "top1_std": float(top1.std()), "top5_std": float(top5.std()), "k": next(iter(per_subject.values()))["k"],
            "per_subject": {int(s): {k: m[k] for k in ("top1", "top1_ci", "top5", "top5_ci", "n", "k")}
                            for s, m in per_subject.items()}}


def _cell(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std is not None else "")


def table_markdown(results: dict | None, config: TrainConfig | None = None) -> str:
    """The anchors' layout: 200-way zero-shot top-1/top-5 (%), subject averages, intra-subject and
    leave-subject-out; the last row is this run ("yours", empty when ``results`` is None)."""
    lines = ["| method | intra-subject top-1 | intra-subject top-5 | leave-subject-out top-1 | leave-subject-out top-5 |",
             "|---|---|---|---|---|"]
    for name, *values in ANCHORS:
        lines.append(f"| {name} | " + " | ".join("—" if v is None else f"{v:.1f}" for v in values) + " |")
    results = results or {}
    cells = []
    for mode in MODES:
        r = results.get(mode)
        cells += [_cell(r["top1"], r["top1_std"]), _cell(r["top5"], r["top5_std"])] if r else ["", ""]
    label = f"yours ({config.student} + InfoNCE)" if config is not None and results else "yours"
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("\n200-way zero-shot retrieval on THINGS-EEG2's test set (200 concepts never trained on, one image "
                 "each, repetitions averaged); top-k in %, mean ± std over subjects; chance top-1 0.5 %, top-5 2.5 %.")
    return "\n".join(lines) + "\n"


def parse_subjects(text: str) -> tuple[int, ...]:
    """``"1-10"`` or ``"1,3,5"`` → subject numbers."""
    out: list[int] = []
    for item in filter(None, text.split(",")):
        lo, dash, hi = item.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if dash else [int(lo)]
    return tuple(out)


# the recipe's training defaults (``bci-train things-eeg2``'s): EEGNet, batches of 256, the embedding objective
RECIPE_CONFIG = TrainConfig(student="eegnet", batch_size=256, objective="embedding", kd=False)


def with_defaults(config: TrainConfig) -> TrainConfig:
    """The recipe's training config: the embedding objective."""
    return replace(config, objective="embedding", kd=False)
