"""The evaluation protocols' folds (MOABB's names): no test trial is ever in training."""

import numpy as np
import pytest

from bci_stream.contract.trials import Trials
from offline_training.experiments.evaluate import scores
from offline_training.experiments.protocols import cross_session, cross_subject, within_session


def _trials(n_subjects=3, n_sessions=2, n_runs=2, per_run=12, n_classes=4):
    rows = [(s, ses, ses * n_runs + r) for s in range(1, n_subjects + 1) for ses in range(n_sessions)
            for r in range(n_runs) for _ in range(per_run)]
    subj, sess, runs = (np.array(c) for c in zip(*rows))
    labels = np.arange(len(rows)) % n_classes
    return Trials(eeg=np.zeros((len(rows), 2, 8)), labels=labels, image_ids=labels.astype(str), subjects=subj,
                  runs=runs, sfreq=100.0, ch_names=["a", "b"], class_ids=[str(k) for k in range(n_classes)],
                  class_names=[str(k) for k in range(n_classes)], sessions=sess)


def test_within_session_k_fold_stays_in_its_session_and_covers_it():
    t = _trials()
    folds = within_session(t, k=4)
    assert len(folds) == 3 * 2 * 4
    for f in folds:
        assert not np.intersect1d(f.train, f.test).size
        both = np.concatenate([f.train, f.test])
        assert len(np.unique(t.subjects[both])) == 1 and len(np.unique(t.sessions[both])) == 1
    for s in (1, 2, 3):  # each trial of a session is tested exactly once
        tested = np.concatenate([f.test for f in folds if f.subject == s])
        assert np.array_equal(np.sort(tested), np.flatnonzero(t.subjects == s))


@pytest.mark.parametrize("group", ["session", "run"])
def test_cross_session_leaves_whole_recordings_out(group):
    t = _trials()
    keys = t.sessions if group == "session" else t.runs
    for pool in (False, True):
        folds = cross_session(t, group=group, pool_subjects=pool)
        assert len(folds) == 3 * (2 if group == "session" else 4)
        for f in folds:
            held = np.unique(keys[f.test])
            assert len(held) == 1 and np.all(t.subjects[f.test] == f.subject)
            mine = f.train[t.subjects[f.train] == f.subject]
            assert not np.isin(keys[mine], held).any()  # the held-out recording never trains
            assert not np.intersect1d(f.train, f.test).size
            assert (t.subjects[f.train] != f.subject).any() == pool


def test_cross_subject_calibration_slice_is_the_first_trials_of_each_class_and_never_tested():
    t = _trials()
    folds = cross_subject(t, calibration=0.25)
    assert len(folds) == 3
    for f in folds:
        mine = np.flatnonzero(t.subjects == f.subject)
        calib = np.intersect1d(f.train, mine)
        for ses in (0, 1):  # a quarter of each class of each session: its first trials in time
            for c in range(4):
                idx = mine[(t.sessions[mine] == ses) & (t.labels[mine] == c)]
                assert np.array_equal(np.intersect1d(calib, idx), idx[: round(0.25 * len(idx))])
        assert not np.intersect1d(f.train, f.test).size
        assert np.array_equal(np.sort(np.concatenate([calib, f.test])), mine)
    plain = cross_subject(t)
    assert all(not (t.subjects[f.train] == f.subject).any() for f in plain)


def test_cross_subject_calibration_covers_every_class_when_a_session_starts_with_one_class():
    t = _trials()
    blocked = np.concatenate([np.sort(t.labels[t.subjects == s]) for s in (1, 2, 3)])  # each subject: 0s first
    t = Trials(eeg=t.eeg, labels=blocked, image_ids=blocked.astype(str), subjects=t.subjects, runs=t.runs,
               sfreq=t.sfreq, ch_names=t.ch_names, class_ids=t.class_ids, class_names=t.class_names, sessions=t.sessions)
    for f in cross_subject(t, calibration=0.25):
        calib = f.train[t.subjects[f.train] == f.subject]
        assert set(t.labels[calib]) == {0, 1, 2, 3}  # the first quarter in time of each session would hold one class
        assert set(t.labels[f.test]) == {0, 1, 2, 3}


def test_binary_scores_have_auc_and_no_top_k_at_or_above_the_classes():
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 2
    p1 = np.clip(0.5 + 0.3 * (labels - 0.5) + 0.2 * rng.standard_normal(40), 0.01, 0.99)
    m = scores(np.stack([1 - p1, p1], 1), labels)
    assert m["top3"] is None and m["top5"] is None
    assert 0.5 < m["auc"] <= 1 and m["auc_ci"][0] < m["auc"] < m["auc_ci"][1]
    assert 0 <= m["balanced_accuracy"] <= 1
    four = scores(rng.dirichlet(np.ones(4), 40), np.arange(40) % 4)
    assert four["top3"] is not None and four["top5"] is None and "auc" not in four
