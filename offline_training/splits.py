"""Train/validation/test splits, each named, because every accuracy must say which split it is on.

- ``by-image``: test images never seen in training (the EEG-ImageNet ``block_splits_by_image`` files,
  or 80/10/10 of each class's images).
- ``by-block``: whole recording blocks/runs held out (Li et al. 2020's control for block designs).
- ``loso-<s>``: leave subject ``s`` out.
- ``shuffled``: the by-image split with training labels permuted (must land near chance).
"""

from __future__ import annotations

import numpy as np

from bci_stream.trials import Trials

Split = dict[str, np.ndarray]


def by_image(trials: Trials, seed: int = 0, fractions: tuple[float, float] = (0.1, 0.1)) -> Split:
    """The loader's own by-image split if it has one, else hold out images per class."""
    if "by-image" in trials.splits:
        return trials.splits["by-image"]
    rng = np.random.default_rng(seed)
    role = {}
    for k in range(trials.n_classes):
        images = np.unique(trials.image_ids[trials.labels == k])
        rng.shuffle(images)
        n_test = max(1, int(round(fractions[1] * len(images)))) if len(images) > 2 else 0
        n_val = max(1, int(round(fractions[0] * len(images)))) if len(images) > 2 else 0
        for i, img in enumerate(images):
            role[img] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    r = np.array([role[i] for i in trials.image_ids])
    return {name: np.flatnonzero(r == name) for name in ("train", "val", "test")}


def by_block(trials: Trials, seed: int = 0) -> Split:
    """Hold out whole runs/blocks: for each class, one of its blocks goes to test and one to validation
    (rotating over subjects/sessions), so no test trial shares a block with a training trial."""
    rng = np.random.default_rng(seed)
    role = np.full(len(trials), "train", dtype="<U5")
    blocks_per_class = {}
    for run in np.unique(trials.runs):
        classes = np.unique(trials.labels[trials.runs == run])
        for k in classes:
            blocks_per_class.setdefault(int(k), []).append(int(run))
    for k, runs in sorted(blocks_per_class.items()):
        if len(runs) < 3:
            continue
        chosen = rng.permutation(runs)
        for name, run in (("test", chosen[0]), ("val", chosen[1])):
            role[(trials.runs == run) & (trials.labels == k)] = name
    if not (role == "test").any():
        raise ValueError("by-block split needs each class recorded in at least 3 blocks/runs")
    return {name: np.flatnonzero(role == name) for name in ("train", "val", "test")}


def leave_subject_out(trials: Trials, subject: int, seed: int = 0) -> Split:
    """Test on ``subject``; validation is 10 % of the other subjects' trials."""
    test = np.flatnonzero(trials.subjects == subject)
    if len(test) == 0:
        raise ValueError(f"no trials of subject {subject}")
    rest = np.flatnonzero(trials.subjects != subject)
    rest = np.random.default_rng(seed).permutation(rest)
    n_val = max(1, len(rest) // 10)
    return {"train": np.sort(rest[n_val:]), "val": np.sort(rest[:n_val]), "test": test}


def make_split(trials: Trials, name: str, seed: int = 0) -> Split:
    """Split by name: ``by-image``, ``by-block``, ``shuffled`` (by-image indices), ``loso-<subject>``."""
    if name in ("by-image", "shuffled"):
        return by_image(trials, seed)
    if name == "by-block":
        return by_block(trials, seed)
    if name.startswith("loso-"):
        return leave_subject_out(trials, int(name.split("-", 1)[1]), seed)
    raise ValueError(f"unknown split {name!r}; use by-image, by-block, shuffled or loso-<subject>")


def shuffled_labels(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A permutation of ``labels`` (the shuffled-label control's training targets)."""
    return np.random.default_rng([seed, 17]).permutation(labels)
