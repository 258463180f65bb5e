"""One reference and the default student on one subject's cross-session fold of the real SSVEP Exo files."""

from pathlib import Path

import numpy as np
import pytest

from bci_stream.stats import chance_p_value

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
pytestmark = pytest.mark.skipif(not (REAL / "ssvep_exo").is_dir(), reason=f"real data not at {REAL}")


def test_cca_reference_and_ccanet_decode_a_held_out_session():
    from bci_stream.preprocessing import FilterDesign, Preprocessing
    from offline_training.datasets import load_trials
    from offline_training.protocols import cross_session
    from offline_training.real_eval import StudentFit, run_folds

    pre = Preprocessing(filters=(FilterDesign(kind="bandpass", freqs=(5.0, 45.0)),))
    trials = load_trials(f"mne:{REAL}/ssvep_exo/subject01,event_id=1:rest;2:13Hz;3:21Hz;4:17Hz,tmin=1,tmax=4",
                         progress=False, preprocessing=pre)
    fold = cross_session(trials)[:1]  # train on one session, test on the other
    assert np.unique(trials.sessions[fold[0].test]).size == 1
    assert not np.isin(trials.sessions[fold[0].train], trials.sessions[fold[0].test]).any()
    crop = (0, trials.eeg.shape[-1])
    labels = trials.labels[fold[0].test]
    for method, kind in (("cca+lda", "reference"), ("ccanet", "student")):
        probs = run_folds(method, kind, trials, fold, crop, StudentFit(epochs=3))["probabilities"][fold[0].test]
        assert np.allclose(probs.sum(1), 1, atol=1e-5)
        hits = int((probs.argmax(1) == labels).sum())
        assert chance_p_value(hits, len(labels), 0.25) < 0.05, (method, hits)  # 4 classes, 32 test trials
