"""Evaluation protocols named as MOABB names them, as explicit folds over :class:`Trials`.

- ``within-session`` (MOABB ``WithinSessionEvaluation``): per subject and session, stratified k-fold.
- ``cross-session`` (``CrossSessionEvaluation``): per subject, leave one session out; with
  ``group="run"`` leave one recording out (one-session sets such as the Muse recordings). With
  ``pool_subjects`` the other subjects' trials join the training part (pre-training on other subjects,
  calibrated on the target's training sessions: no trial of the held-out session is seen).
- ``cross-subject`` (``CrossSubjectEvaluation``): leave one subject out; ``calibration`` moves the first
  fraction (in time) of each class in each of the test subject's sessions to training (stratified: every
  class the session has is calibrated, in its share), the rest is tested.

Every fold is checked: non-empty, train and test disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bci_stream.contract.trials import Trials

PROTOCOLS = ("within-session", "cross-session", "cross-subject")


@dataclass(frozen=True)
class Fold:
    """One train/test split of one subject: indices into the trials, and a name for reports."""

    subject: int
    name: str
    train: np.ndarray
    test: np.ndarray


def _checked(fold: Fold) -> Fold:
    if len(fold.train) == 0 or len(fold.test) == 0:
        raise ValueError(f"fold {fold.name} of subject {fold.subject} has an empty part")
    if np.intersect1d(fold.train, fold.test).size:
        raise ValueError(f"fold {fold.name} of subject {fold.subject}: train and test share trials")
    return fold


def within_session(trials: Trials, k: int = 4, seed: int = 0) -> list[Fold]:
    """Stratified ``k``-fold inside each (subject, session)."""
    from sklearn.model_selection import StratifiedKFold

    folds = []
    for s in np.unique(trials.subjects):
        for ses in np.unique(trials.sessions[trials.subjects == s]):
            idx = np.flatnonzero((trials.subjects == s) & (trials.sessions == ses))
            n_splits = min(k, int(np.bincount(trials.labels[idx]).max()))
            n_splits = min(n_splits, int(np.bincount(trials.labels[idx])[np.unique(trials.labels[idx])].min()))
            if n_splits < 2:
                continue
            cv = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
            for i, (a, b) in enumerate(cv.split(idx, trials.labels[idx])):
                folds.append(_checked(Fold(int(s), f"session {ses} fold {i + 1}", idx[a], idx[b])))
    return folds


def cross_session(trials: Trials, group: str = "session", pool_subjects: bool = False) -> list[Fold]:
    """Per subject, leave one ``group`` ("session" or "run") out; ``pool_subjects``: the other subjects'
    trials train too."""
    keys = trials.sessions if group == "session" else trials.runs
    folds = []
    for s in np.unique(trials.subjects):
        mine = trials.subjects == s
        groups = np.unique(keys[mine])
        if len(groups) < 2:
            raise ValueError(f"cross-session needs 2 {group}s of subject {s}; it has {len(groups)}")
        for g in groups:
            test = np.flatnonzero(mine & (keys == g))
            train = np.flatnonzero((mine & (keys != g)) | (~mine if pool_subjects else np.zeros_like(mine)))
            folds.append(_checked(Fold(int(s), f"{group} {g} out", train, test)))
    return folds


def calibration_slice(idx: np.ndarray, labels: np.ndarray, fraction: float) -> np.ndarray:
    """The first ``fraction`` (in time: ``idx`` is in time order) of each class's trials among ``idx``, at least
    one per class when ``fraction`` > 0 and the class has 2 trials or more, so a calibration slice never
    misses a class (a session whose first quarter is all rest would otherwise calibrate no flicker class).
    Returns sorted indices (a subset of ``idx``)."""
    if fraction <= 0:
        return np.array([], int)
    out = []
    for c in np.unique(labels[idx]):
        mine = idx[labels[idx] == c]
        n = int(round(fraction * len(mine)))
        out.append(mine[: max(n, 1) if len(mine) > 1 else n])
    return np.sort(np.concatenate(out))


def cross_subject(trials: Trials, calibration: float = 0.0) -> list[Fold]:
    """Leave one subject out; ``calibration`` (0..1): the first fraction of each class in each of the test
    subject's sessions, in time order (:func:`calibration_slice`), moves to training (MOABB's
    cross-subject evaluation with a calibration slice)."""
    if len(np.unique(trials.subjects)) < 2:
        raise ValueError("cross-subject needs 2 subjects")
    folds = []
    for s in np.unique(trials.subjects):
        mine = np.flatnonzero(trials.subjects == s)
        calib = []
        for ses in np.unique(trials.sessions[mine]):
            idx = mine[trials.sessions[mine] == ses]  # loader order is time order within a session
            calib.append(calibration_slice(idx, trials.labels, calibration))
        calib = np.concatenate(calib) if calib else np.array([], int)
        train = np.sort(np.concatenate([np.flatnonzero(trials.subjects != s), calib]))
        folds.append(_checked(Fold(int(s), f"subject {s} out" + (f", {calibration:.0%} calibration" if calibration else ""),
                                   train, np.setdiff1d(mine, calib))))
    return folds


def make_folds(trials: Trials, protocol: str, **kwargs) -> list[Fold]:
    """Folds of ``protocol`` (one of :data:`PROTOCOLS`)."""
    if protocol == "within-session":
        return within_session(trials, **kwargs)
    if protocol == "cross-session":
        return cross_session(trials, **kwargs)
    if protocol == "cross-subject":
        return cross_subject(trials, **kwargs)
    raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
