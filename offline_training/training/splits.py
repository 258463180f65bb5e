"""Train/validation/test splits, each named, because every accuracy must say which split it is on.

- ``by-image``: test images never seen in training (the ImageNet-EEG ``block_splits_by_image`` files,
  or 80/10/10 of each class's images). Needs at least 3 distinct images per class.
- ``by-block``: per class, whole recording blocks/runs held out (Li et al. 2020's control for block
  designs); when images recur across blocks (THINGS-EEG2 shows each in every session), the held-out
  blocks are tested on held-out images only and no training trial shows a test image.
- ``by-run`` / ``by-session``: whole runs / sessions (of any class) held out for validation and test.
- ``time-blocked``: within each recording, the last 20 % of each class's trials (in time order) test,
  the 20 % before them validation: contiguous blocks, stratified by class, never interleaved neighbours.
- ``by-class``: whole classes held out (zero-shot, for embedding models): :data:`BY_CLASS_TEST` classes test,
  :func:`by_class_val_count` classes validation, the rest train, drawn by ``seed``; every trial of a held-out
  class (all subjects, all images) is in its part, so test classes are never seen in training.
- ``loso-<s>``: leave subject ``s`` out.
- ``shuffled``: the ``auto`` split with training labels permuted (must land near chance).
- ``auto``: by-image when the trials name several images per class; else by-session or by-run when
  there are at least 3; else time-blocked. :func:`resolve_split` says which and why.

:func:`check_split` runs before any training: every part non-empty, index- and image-disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bci_stream.contract.trials import Trials

Split = dict[str, np.ndarray]
PARTS = ("train", "val", "test")
NAMES = ("auto", "by-image", "by-class", "by-block", "by-run", "by-session", "time-blocked", "shuffled", "loso-<subject>")
BY_CLASS_TEST = 10  # held-out classes of the by-class split (the 10-way zero-shot)


class SplitError(ValueError):
    """A split cannot mean what its name says on these trials (empty part, shared images, ...)."""


def images_per_class(trials: Trials) -> np.ndarray:
    """Distinct image ids of each class, shape ``(n_classes,)`` (0 for classes without trials)."""
    return np.array([len(np.unique(trials.image_ids[trials.labels == k])) for k in range(trials.n_classes)])


def names_images(trials: Trials) -> bool:
    """True when image ids name stimuli rather than classes: some class has more than one image id.
    (When markers code classes, each class has one "image" and image-disjointness cannot apply.)"""
    return bool((images_per_class(trials) > 1).any())


def _groups(trials: Trials, key: str) -> np.ndarray:
    """Integer id per trial of its (subject, session[, run])."""
    cols = [trials.subjects, trials.sessions] + ([trials.runs] if key == "run" else [])
    _, ids = np.unique(np.stack(cols, axis=1), axis=0, return_inverse=True)
    return ids.ravel()


def resolve_split(trials: Trials, name: str = "auto") -> tuple[str, str]:
    """``(split name, why)``: ``auto`` becomes the most meaningful split these trials allow."""
    if name == "shuffled":
        base, why = resolve_split(trials, "auto")
        return "shuffled", f"labels permuted on the {base} split ({why})"
    if name != "auto":
        return name, "asked for"
    if "by-image" in trials.splits:
        return "by-image", "the dataset's own by-image split"
    present = images_per_class(trials)
    present = present[present > 0]
    if names_images(trials) and (present >= 3).all():
        return "by-image", f"at least {present.min()} distinct images per class"
    n_sessions = len(np.unique(_groups(trials, "session")))
    if n_sessions >= 3:
        return "by-session", f"{n_sessions} sessions, images do not repeat enough for by-image"
    n_runs = len(np.unique(_groups(trials, "run")))
    if n_runs >= 3:
        return "by-run", f"{n_runs} runs, images do not repeat enough for by-image"
    return "time-blocked", (f"{n_runs} run(s) and {'one image' if not names_images(trials) else 'under 3 images'} "
                            "per class: the last 20 % of each class's trials in time are the test set")


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
    return {name: np.flatnonzero(r == name) for name in PARTS}


def by_class_val_count(n_classes: int) -> int:
    """Validation classes of the by-class split: an eighth of the classes, at least 2."""
    return max(2, n_classes // 8)


def by_class(trials: Trials, seed: int = 0, n_test: int = BY_CLASS_TEST, n_val: int | None = None) -> Split:
    """Hold out whole classes: ``n_test`` test classes, ``n_val`` (default :func:`by_class_val_count`)
    validation classes, the rest training; a seeded permutation of the classes present, so the same seed
    holds out the same classes on every machine. Needs at least ``n_test + n_val + 2`` classes."""
    present = np.unique(trials.labels)
    n_val = by_class_val_count(len(present)) if n_val is None else n_val
    if len(present) < n_test + n_val + 2:
        raise SplitError(f"by-class split holds out {n_test} test and {n_val} validation classes and needs 2 more to "
                         f"train on; these trials have {len(present)} classes")
    order = np.random.default_rng([seed, 31]).permutation(present)
    role = np.full(len(trials), "train", dtype="<U5")
    role[np.isin(trials.labels, order[:n_test])] = "test"
    role[np.isin(trials.labels, order[n_test : n_test + n_val])] = "val"
    return {name: np.flatnonzero(role == name) for name in PARTS}


def held_out_classes(trials: Trials, split: Split, part: str = "test") -> np.ndarray:
    """Class indices of ``part`` that no training trial has (sorted): the zero-shot classes."""
    return np.setdiff1d(trials.labels[split[part]], trials.labels[split["train"]])


def _purge_shared_images(trials: Trials, role: np.ndarray) -> np.ndarray:
    """Drop training (and validation) trials that show an image of a held-out part: a block split must
    not train on the images it tests (THINGS-EEG2 repeats every image in every session)."""
    if not names_images(trials):
        return role
    test_images = set(trials.image_ids[role == "test"])
    role = role.copy()
    role[(role != "test") & np.isin(trials.image_ids, list(test_images))] = "none"
    val_images = set(trials.image_ids[role == "val"])
    role[(role == "train") & np.isin(trials.image_ids, list(val_images))] = "none"
    return role


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
        raise SplitError("by-block split needs each class recorded in at least 3 blocks/runs")
    if _images_recur_across_runs(trials):  # THINGS-EEG2: every image in every session
        image_role = np.full(len(trials), "none", dtype="<U5")
        for part, idx in by_image(trials, seed).items():
            image_role[idx] = part
        role[role != image_role] = "none"  # held-out blocks, tested on held-out images only
    role = _purge_shared_images(trials, role)
    return {name: np.flatnonzero(role == name) for name in PARTS}


def _images_recur_across_runs(trials: Trials) -> bool:
    if not names_images(trials):
        return False
    pairs = np.unique(np.stack([trials.image_ids, trials.runs.astype(str)], axis=1), axis=0)
    return len(pairs) > len(np.unique(trials.image_ids))


def by_group(trials: Trials, key: str, seed: int = 0, fractions: tuple[float, float] = (0.2, 0.2)) -> Split:
    """Whole runs (``key="run"``) or sessions (``"session"``) held out: about ``fractions`` (val, test)
    of them, at least one each."""
    groups = _groups(trials, key)
    unique = np.unique(groups)
    if len(unique) < 3:
        raise SplitError(f"by-{key} split needs at least 3 {key}s; these trials have {len(unique)}")
    order = np.random.default_rng(seed).permutation(unique)
    n_test = max(1, int(round(fractions[1] * len(unique))))
    n_val = max(1, int(round(fractions[0] * len(unique))))
    role = np.full(len(trials), "train", dtype="<U5")
    role[np.isin(groups, order[:n_test])] = "test"
    role[np.isin(groups, order[n_test : n_test + n_val])] = "val"
    role = _purge_shared_images(trials, role)
    return {name: np.flatnonzero(role == name) for name in PARTS}


def time_blocked(trials: Trials, fractions: tuple[float, float] = (0.2, 0.2)) -> Split:
    """Per recording and class, trials in time (index) order: the last ``fractions[1]`` test, the
    ``fractions[0]`` before them validation, the rest training. Each part is one contiguous block of
    that class's trials, so no test trial sits between two training trials of its class."""
    role = np.full(len(trials), "train", dtype="<U5")
    groups = _groups(trials, "run")
    for g in np.unique(groups):
        for k in np.unique(trials.labels[groups == g]):
            idx = np.flatnonzero((groups == g) & (trials.labels == k))  # time order within the recording
            n_test = int(round(fractions[1] * len(idx))) if len(idx) >= 3 else 0
            n_val = int(round(fractions[0] * len(idx))) if len(idx) >= 3 else 0
            n_test, n_val = max(n_test, int(len(idx) >= 3)), max(n_val, int(len(idx) >= 3))
            role[idx[len(idx) - n_test :]] = "test"
            role[idx[len(idx) - n_test - n_val : len(idx) - n_test]] = "val"
    return {name: np.flatnonzero(role == name) for name in PARTS}


def leave_subject_out(trials: Trials, subject: int, seed: int = 0) -> Split:
    """Test on ``subject``; validation is 10 % of the other subjects' trials. When every subject saw the
    same images (the phantom, ImageNet-EEG), it is crossed with the by-image split: the subject's held-out
    images test, the other subjects' training images train, so no test image was ever trained on."""
    test = np.flatnonzero(trials.subjects == subject)
    if len(test) == 0:
        raise SplitError(f"no trials of subject {subject}; subjects: {np.unique(trials.subjects).tolist()}")
    others = trials.subjects != subject
    if names_images(trials) and np.isin(trials.image_ids[test], trials.image_ids[others]).any():
        parts = by_image(trials, seed)
        mine = trials.subjects == subject
        return {"train": np.sort(parts["train"][others[parts["train"]]]),
                "val": np.sort(parts["val"][others[parts["val"]]]),
                "test": np.sort(parts["test"][mine[parts["test"]]])}
    rest = np.flatnonzero(others)
    rest = np.random.default_rng(seed).permutation(rest)
    n_val = max(1, len(rest) // 10)
    return {"train": np.sort(rest[n_val:]), "val": np.sort(rest[:n_val]), "test": test}


def check_split_name(name: str) -> None:
    """Raise :class:`SplitError` for a name no split has (before any data is loaded)."""
    fixed = ("auto", "by-image", "by-class", "by-block", "by-run", "by-session", "time-blocked", "shuffled")
    if name not in fixed and not (name.startswith("loso-") and name[5:].lstrip("-").isdigit()):
        raise SplitError(f"unknown split {name!r}; use {', '.join(NAMES)}")


def _make(trials: Trials, name: str, seed: int) -> Split:
    if name == "by-image":
        return by_image(trials, seed)
    if name == "by-block":
        return by_block(trials, seed)
    if name == "by-class":
        return by_class(trials, seed)
    if name in ("by-run", "by-session"):
        return by_group(trials, name.split("-", 1)[1], seed)
    if name == "time-blocked":
        return time_blocked(trials)
    if name.startswith("loso-"):
        try:
            subject = int(name.split("-", 1)[1])
        except ValueError:
            raise SplitError(f"split {name!r}: the subject must be a number, e.g. loso-2") from None
        return leave_subject_out(trials, subject, seed)
    raise SplitError(f"unknown split {name!r}; use {', '.join(NAMES)}")


def make_split(trials: Trials, name: str = "auto", seed: int = 0, check: bool = True) -> Split:
    """Split by name (see module docstring; ``auto`` and ``shuffled`` resolve first), checked with
    :func:`check_split` unless ``check=False``."""
    check_classes(trials)
    resolved, _ = resolve_split(trials, name)
    if resolved == "shuffled":
        resolved, _ = resolve_split(trials, "auto")
    split = _make(trials, resolved, seed)
    if check:
        check_split(trials, split, resolved, seed)
    return split


def check_classes(trials: Trials) -> None:
    """Refuse data with fewer than two classes present: a classifier of one class is always right, and its
    p-value against "chance" (1.0) means nothing."""
    present = np.unique(trials.labels)
    if len(present) < 2:
        what = f"one class ({trials.class_names[int(present[0])]!r}, {len(trials)} trials)" if len(present) else "no trials"
        raise SplitError(f"the data hold {what}: training needs at least two classes; check the data SPEC's "
                         "classes=/mapping=/markers= (which markers are classes)")


def split_problem(trials: Trials, split: Split, name: str) -> str:
    """Why ``split`` cannot be trained and tested on ("" when it can)."""
    for part in PARTS:
        if len(split.get(part, ())) == 0:
            return f"its {part} part is empty"
    for part in PARTS:
        idx = np.asarray(split[part])
        if idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= len(trials):
            return f"its {part} part indexes trials outside 0..{len(trials) - 1} (e.g. {idx.max()}): a split of other data"
    if name != "by-class" and len(np.unique(trials.labels[split["train"]])) < 2:
        only = trials.class_names[int(trials.labels[split["train"][0]])]
        return f"its train part holds one class ({only!r}): nothing to tell apart"
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if np.intersect1d(split[a], split[b]).size:
            return f"{a} and {b} share trials"
    if name == "by-class":  # zero-shot: the parts must share no class at all
        for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
            shared = np.intersect1d(trials.labels[split[a]], trials.labels[split[b]])
            if shared.size:
                return f"{a} and {b} share class {trials.class_names[shared[0]]!r}"
    if names_images(trials):
        for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
            shared = np.intersect1d(trials.image_ids[split[a]], trials.image_ids[split[b]])
            if shared.size:
                return f"{a} and {b} share {shared.size} image(s) (e.g. {shared[0]!r})"
    missing = np.setdiff1d(trials.labels[split["test"]], trials.labels[split["train"]])
    if missing.size and name != "by-class":
        return f"test classes {[trials.class_names[k] for k in missing[:3]]} have no training trials"
    return ""


def working_splits(trials: Trials, seed: int = 0, exclude: str = "") -> list[str]:
    """The split names that pass :func:`check_split` on these trials."""
    ok = []
    for name in ("by-image", "by-session", "by-run", "by-block", "time-blocked"):
        if name == exclude:
            continue
        try:
            if not split_problem(trials, _make(trials, name, seed), name):
                ok.append(name)
        except SplitError:
            continue
    return ok


def check_split(trials: Trials, split: Split, name: str, seed: int = 0) -> None:
    """Raise :class:`SplitError` (one line: what is wrong, which split would work) unless every part is
    non-empty, the parts share no trial and, when trials name images, no image."""
    problem = split_problem(trials, split, name)
    if problem:
        works = working_splits(trials, seed, exclude=name)
        hint = f"use --split {works[0]}" if works else "no split works on these trials: record more trials or runs"
        raise SplitError(f"split {name!r} cannot be used: {problem}; {hint}")


def clean_training(eeg: np.ndarray, labels: np.ndarray, train: np.ndarray, reject: float | None) -> np.ndarray:
    """The training indices ``train`` whose epoch ``eeg[i]`` ``(ch, t)`` has a peak-to-peak amplitude below
    ``reject`` (signal unit, e.g. µV) on every channel: MNE's ``Epochs(reject=...)`` rule, applied to the
    training part only, so every test trial still gets a decision (as live). ``None``: all of them.

    Why: a few blink or movement epochs (hundreds of µV on the Muse's frontal and temporal sites) dominate
    a covariance or LDA fitted on ~1000 trials; with them dropped, LDA on Muse faces vs houses goes from
    AUC 0.61 to 0.68 on the same folds. A training part the rule would leave with fewer classes is kept whole."""
    if reject is None:
        return train
    keep = train[np.ptp(eeg[train], axis=-1).max(1) < reject]
    return keep if np.unique(labels[keep]).size == np.unique(labels[train]).size else train


@dataclass(frozen=True)
class RunSplit:
    """A training run's split, resolved once (by :func:`resolve_run_split`) and passed down to every step
    that needs it: the fit, the test, the references, ``split.json``.

    Attributes
    ----------
    name : the split actually used ("by-image", "shuffled", ... never "auto").
    reason : why that split (``auto``'s choice, "asked for", "given").
    parts : ``train`` / ``val`` / ``test`` trial indices (``train`` after the ``reject`` rule).
    rejected : training epochs the ``reject`` rule left out.
    made : the parts as made, before the ``reject`` rule (what the references and the drift probe fit on,
        as they always have: the rule is the students' training option).
    """

    name: str
    reason: str
    parts: dict[str, np.ndarray]
    rejected: int = 0
    made: dict[str, np.ndarray] | None = None

    @property
    def unrejected(self) -> dict[str, np.ndarray]:
        """The parts before the ``reject`` rule."""
        return self.made if self.made is not None else self.parts

    @property
    def test(self) -> np.ndarray:
        return self.parts["test"]

    def to_json(self, **extra) -> dict:
        """What ``split.json`` holds (indices as lists) plus ``extra`` entries."""
        return {"name": self.name, "reason": self.reason, "rejected_train": self.rejected, **extra,
                **{k: np.asarray(v).tolist() for k, v in self.parts.items()}}


def resolve_run_split(trials: Trials, name: str = "auto", seed: int = 0, reject: float | None = None,
                      given: Split | None = None, reason: str = "") -> RunSplit:
    """The split of a run, resolved, made and checked once (:func:`make_split`'s steps, each once): ``auto``
    becomes a named split (:func:`resolve_split`), ``shuffled`` the parts of ``auto``; ``given`` parts (e.g.
    THINGS-EEG2's own test set) are checked instead of made. Then the ``reject`` rule
    (:func:`clean_training`) on the training part. :class:`SplitError` says which split would work."""
    check_classes(trials)
    if given is not None:
        check_split(trials, given, name, seed)
        resolved, why, parts = name, reason or "given", {k: np.asarray(v) for k, v in given.items()}
    else:
        resolved, why = resolve_split(trials, name)
        base = resolve_split(trials, "auto")[0] if resolved == "shuffled" else resolved
        parts = _make(trials, base, seed)
        check_split(trials, parts, base, seed)
        why = reason or why
    kept = clean_training(trials.eeg, trials.labels, parts["train"], reject)
    return RunSplit(resolved, why, {**parts, "train": kept}, len(parts["train"]) - len(kept), parts)
