"""Spampinato et al. 2017 ImageNet-EEG (PerceiveLab) as Trials, with the official by-image splits.

Keeps trials with 450 <= T <= 600 samples (as the seed lineage does) that also hold the 460 samples
used (so 450 <= T < 460 is dropped too); every dropped trial is counted by reason in ``Trials.dropped``.
Time 0 is stimulus onset,
so ``crop_start=20, crop_stop=460`` in the trainer takes the seed's samples 20-460.
Splits file ``block_splits_by_image_{all,single}.pth``: ``splits[k][train|val|test]`` index the
file's ``dataset`` list; indices of dropped trials are dropped from the split.
"""

from __future__ import annotations

import numpy as np

from bci_stream.contract.classes import eegimagenet_classes
from bci_stream.contract.trials import Trials
from bci_stream.io.eegimagenet import SFREQ, default_channel_names, load_eegimagenet, safe_torch_load
from bci_stream.io.recording import RecordingError


def load_eegimagenet_trials(path: str, splits: str | None = None, split: str = "0", subject: str | None = None,
                            min_len: str = "450", max_len: str = "600", length: str = "460") -> Trials:
    """Trials of an ImageNet-EEG file.

    Parameters
    ----------
    path : ``eeg_*.pth``.
    splits : ``block_splits_by_image_*.pth`` (optional); ``split`` picks its fold.
    subject : keep one subject (1-6).
    min_len, max_len : keep trials with this many samples (inclusive).
    length : samples kept per trial (from onset); 460 covers the seed's 20-460 crop (trials shorter
        than that are dropped too).
    """
    f = load_eegimagenet(path)
    lo, hi, n_keep = int(min_len), int(max_len), int(length)
    mine = [i for i in range(len(f.eeg)) if subject is None or f.subjects[i] == int(subject)]
    dropped: dict[str, int] = {}
    for reason, bad in ((f"shorter than {lo} samples", lambda t: t < lo),
                        (f"{lo} <= T < {n_keep} samples (shorter than length={n_keep})", lambda t: lo <= t < n_keep),
                        (f"longer than {hi} samples", lambda t: t > hi)):
        n = sum(bad(f.eeg[i].shape[1]) for i in mine)
        if n:
            dropped[f"trials {reason}"] = n
    keep = [i for i in mine if lo <= f.eeg[i].shape[1] <= hi and f.eeg[i].shape[1] >= n_keep]
    if not keep:
        raise RecordingError(f"{path}: no trials with {max(lo, n_keep)} <= T <= {hi} samples"
                             f"{f' for subject {subject}' if subject else ''}")
    eeg = np.stack([f.eeg[i][:, :n_keep] for i in keep]).astype(np.float32)
    names = {c.synset: c.name for c in eegimagenet_classes()}
    trials = Trials(
        eeg=eeg,
        labels=f.labels[keep],
        image_ids=np.array([f.image_names[f.images[i]] if f.images[i] < len(f.image_names) else str(f.images[i]) for i in keep]),
        subjects=f.subjects[keep],
        runs=_blocks(f.labels[keep], f.subjects[keep]),
        sfreq=SFREQ,
        ch_names=default_channel_names(eeg.shape[1]),
        class_ids=list(f.synsets),
        class_names=[names.get(s, s) for s in f.synsets],
        tmin=0.0,
        source=f"eegimagenet:{path}",
        dropped=dropped,
        unit="a.u.",  # the public release is band-passed and z-scored: arbitrary units, not microvolts
    )
    if splits:
        trials.splits["by-image"] = _official_split(splits, int(split), keep, len(f.eeg), path)
    return trials


def _blocks(labels: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Block ids: a new block whenever the class or subject changes in recording order."""
    change = np.r_[True, (labels[1:] != labels[:-1]) | (subjects[1:] != subjects[:-1])]
    return np.cumsum(change) - 1


def _official_split(path: str, fold: int, keep: list[int], n_trials: int, data: str) -> dict[str, np.ndarray]:
    """Fold ``fold`` of a ``block_splits_*.pth`` file renumbered to the ``keep`` trials (of ``n_trials`` in
    ``data``); an index outside the file's trials (a split of another release) is refused."""
    content = safe_torch_load(path)
    try:
        folds = content["splits"]
        chosen = folds[fold]
    except (KeyError, IndexError, TypeError) as err:
        raise RecordingError(f"{path}: no split fold {fold} (expected splits[k]['train'|'val'|'test'])") from err
    position = {orig: new for new, orig in enumerate(keep)}
    out = {}
    for part in ("train", "val", "test"):
        if part not in chosen:
            raise RecordingError(f"{path}: split {fold} has no {part!r} list")
        try:
            indices = [int(i) for i in chosen[part]]
        except (TypeError, ValueError):
            raise RecordingError(f"{path}: split {fold} {part!r} holds something other than trial indices") from None
        outside = [i for i in indices if not 0 <= i < n_trials]
        if outside:
            raise RecordingError(f"{path}: split {fold} {part!r} indexes trial {max(outside, key=abs)} but {data} "
                                 f"holds {n_trials} trials; give the splits file of the same release")
        out[part] = np.array(sorted(position[i] for i in indices if i in position), dtype=np.int64)
    return out
