"""Trials: what every dataset loader returns, and what the trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass
class Trials:
    """Epoched EEG with labels and bookkeeping.

    Attributes
    ----------
    eeg : float32, shape ``(n_trials, n_channels, n_times)``, in ``unit``; time 0 is the
        sample at ``tmin`` seconds from stimulus onset.
    labels : int64, shape ``(n_trials,)``, class index into ``class_names``.
    image_ids : str, shape ``(n_trials,)``: which stimulus image (the teacher's key).
    subjects : int64, shape ``(n_trials,)``.
    runs : int64, shape ``(n_trials,)``: recording block / run, for the block control.
    sfreq : Hz.
    ch_names : channel names, length ``n_channels``.
    class_ids : e.g. ImageNet synsets, one per class.
    class_names : readable names, one per class.
    tmin : seconds from stimulus onset to the first sample.
    source : where the data came from (a data spec or a path).
    splits : named index splits, e.g. ``{"by-image-0": {"train": idx, "val": idx, "test": idx}}``.
    soft_labels : optional ``(n_trials, n_classes)`` teacher probabilities provided by the loader
        (the phantom's class-similarity labels); image-based teachers produce theirs separately.
    sessions : int64, shape ``(n_trials,)``: recording session (default all 0), for by-session splits.
    dropped : trials the loader left out, by reason (e.g. ``{"markers without a class (rt)": 74}``).
    unit : what the samples are in, taken from the data: "uV", "V", or "a.u." for data that were
        standardised before we saw them (ImageNet-EEG's public release).
    preprocessing : :meth:`bci_stream.contract.preprocessing.Preprocessing.to_dict` of what was applied to
        the samples (causally) after loading; empty when nothing was.
    """

    eeg: np.ndarray
    labels: np.ndarray
    image_ids: np.ndarray
    subjects: np.ndarray
    runs: np.ndarray
    sfreq: float
    ch_names: list[str]
    class_ids: list[str]
    class_names: list[str]
    tmin: float = 0.0
    source: str = ""
    splits: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    soft_labels: np.ndarray | None = None
    sessions: np.ndarray | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    unit: str = "uV"
    preprocessing: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)  # {"asr": AsrState.to_dict()} when loaded with ASR

    def __post_init__(self) -> None:
        self.eeg = np.asarray(self.eeg, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.image_ids = np.asarray(self.image_ids).astype(str)
        self.subjects = np.asarray(self.subjects, dtype=np.int64)
        self.runs = np.asarray(self.runs, dtype=np.int64)
        self.sessions = np.zeros(len(self.labels), np.int64) if self.sessions is None \
            else np.asarray(self.sessions, dtype=np.int64)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistency."""
        if self.eeg.ndim != 3:
            raise ValueError(f"eeg must be (n_trials, n_channels, n_times); got {self.eeg.shape}")
        n, n_ch, _ = self.eeg.shape
        for name in ("labels", "image_ids", "subjects", "runs", "sessions"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"{name} has shape {arr.shape}; expected ({n},)")
        if len(self.ch_names) != n_ch:
            raise ValueError(f"{len(self.ch_names)} channel names for {n_ch} channels")
        if len(self.class_ids) != len(self.class_names):
            raise ValueError("class_ids and class_names differ in length")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(f"labels outside 0..{len(self.class_names) - 1}")
        if self.soft_labels is not None and self.soft_labels.shape != (n, len(self.class_names)):
            raise ValueError(f"soft_labels has shape {self.soft_labels.shape}; expected {(n, len(self.class_names))}")

    def __len__(self) -> int:
        return self.eeg.shape[0]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: np.ndarray) -> Trials:
        """Trials at ``index`` (indices or a boolean mask); splits are dropped."""
        index = np.asarray(index)
        return replace(
            self,
            eeg=self.eeg[index],
            labels=self.labels[index],
            image_ids=self.image_ids[index],
            subjects=self.subjects[index],
            runs=self.runs[index],
            sessions=self.sessions[index],
            splits={},
            soft_labels=None if self.soft_labels is None else self.soft_labels[index],
        )

    def without_non_finite(self, chunk: int = 256) -> Trials:
        """These trials less those holding a NaN or an infinite sample (one NaN poisons the normalisation
        of every trial), counted in ``dropped`` by reason; ``splits`` keep their trials (renumbered).
        Raises ``ValueError`` when no trial is left. Checked ``chunk`` trials at a time (bounded memory)."""
        bad = np.zeros(len(self), bool)
        for i in range(0, len(self), chunk):  # one pass over the data; the rare bad trials get a second look
            bad[i : i + chunk] = ~np.isfinite(self.eeg[i : i + chunk]).all(axis=(1, 2))
        if not bad.any():
            return self
        nan = np.zeros(len(self), bool)
        nan[bad] = np.isnan(self.eeg[bad]).any(axis=(1, 2))
        inf = bad & ~nan
        keep = ~(nan | inf)
        if not keep.any():
            raise ValueError(f"{self.source}: every trial holds NaN or infinite samples ({int(nan.sum())} NaN, "
                             f"{int(inf.sum())} infinite); repair or re-export the recording")
        dropped = dict(self.dropped)
        for reason, mask in (("trials with NaN samples", nan), ("trials with infinite samples", inf)):
            if mask.any():
                dropped[reason] = dropped.get(reason, 0) + int(mask.sum())
        new_index = np.cumsum(keep) - 1  # old trial i -> new index, where kept
        splits = {name: {part: new_index[idx[keep[idx]]] for part, idx in
                         ((part, np.asarray(idx, dtype=np.int64)) for part, idx in parts.items())}
                  for name, parts in self.splits.items()}
        return replace(self.subset(keep), splits=splits, dropped=dropped)

    def crop(self, start: int, stop: int) -> Trials:
        """Keep samples ``start:stop`` of each trial (``tmin`` moves accordingly)."""
        if not 0 <= start < stop <= self.eeg.shape[-1]:
            raise ValueError(f"crop {start}:{stop} outside trials of {self.eeg.shape[-1]} samples")
        return replace(self, eeg=self.eeg[..., start:stop], tmin=self.tmin + start / self.sfreq)

    def summary(self) -> str:
        n, ch, t = self.eeg.shape
        text = (
            f"{n} trials x {ch} ch x {t} samples @ {self.sfreq:g} Hz, {self.n_classes} classes, "
            f"{len(np.unique(self.subjects))} subjects, {len(np.unique(self.image_ids))} images ({self.source})"
        )
        if self.dropped:
            text += f"; dropped {sum(self.dropped.values())}: " + ", ".join(f"{k}: {v}" for k, v in self.dropped.items())
        return text
